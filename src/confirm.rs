//! Confirmations before acting on a protected environment (DESIGN.md §7): never hang without a
//! terminal, never act on a wrong answer.

use std::io::IsTerminal;

use crate::config::Environment;
use crate::error::{Error, Result};

/// How strongly an action must be confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `Proceed with production backup? [y/N]`
    YesNo,
    /// The user types the environment's name.
    TypeName,
}

/// The phrase a destructive migration of a protected environment asks to be typed.
pub const DESTRUCTIVE_PHRASE: &str = "proceed-with-destructive-changes";

/// Asks for `phrase` to be typed before `action` on protected `env` (destructive migrations).
/// `allowed` (a flag such as `--allow-destructive`) answers for automation; `--yes` does not.
pub fn confirm_phrase(env: &Environment, action: &str, phrase: &str, allowed: bool) -> Result<()> {
    if !env.protected {
        return Ok(());
    }
    if crate::approval::must_approve(env) {
        // From an agent's shell: the flag, in the command the user approved.
        if !allowed {
            return Err(Error::aborted(format!(
                "{action} on protected environment `{}` from an agent's shell needs --allow-destructive in the command the user approves",
                env.name
            ))
            .with_hint("show the user the destructive statements; only if they accept them, run the command again with --allow-destructive and let the plugin's hook ask them"));
        }
        return crate::approval::approved(env, action);
    }
    if allowed {
        return Ok(());
    }
    let name = &env.name;
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::aborted(format!(
            "{action} on protected environment `{name}` needs confirmation"
        ))
        .with_hint(
            "there is no terminal to ask on; pass --allow-destructive to confirm from a script",
        ));
    }
    let _signals = crate::interrupt::prompt_guard();
    let typed = dialoguer::Input::<String>::with_theme(&dialoguer::theme::SimpleTheme)
        .with_prompt(format!("{action} on `{name}`: type {phrase} to go on"))
        .allow_empty(true)
        .interact_text()
        .unwrap_or_default();
    if typed.trim() == phrase {
        Ok(())
    } else {
        Err(Error::aborted(format!(
            "{action} on `{name}` was not confirmed; nothing was changed"
        )))
    }
}

/// Whether a confirmation of an action on `env` will be asked for at a terminal: a protected
/// environment, no `yes` (or a flag answering for it), and a terminal to ask on. The plan of
/// what the answer allows is shown first.
pub fn will_ask(env: &Environment, yes: bool) -> bool {
    env.protected
        && !yes
        && !crate::approval::must_approve(env)
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// Fails (exit 8) at once when `action` on `env` will need an answer and there is no terminal
/// to ask on: called before anything is taken or touched.
pub fn can_ask(env: &Environment, action: &str, yes: bool) -> Result<()> {
    crate::approval::can_go_on(env, action)?;
    if !env.protected || yes || crate::approval::must_approve(env) {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::aborted(format!(
            "{action} on protected environment `{}` needs confirmation",
            env.name
        ))
        .with_hint("there is no terminal to ask on; pass --yes to confirm from a script"));
    }
    Ok(())
}

/// Asks before `action` on `env` when it is protected. `yes` answers for automation.
pub fn confirm(env: &Environment, action: &str, ask: Ask, yes: bool) -> Result<()> {
    if !env.protected {
        return Ok(());
    }
    // From an agent's shell no answer counts but the approval the command's gate took: not
    // `--yes`, not a terminal's.
    if crate::approval::must_approve(env) {
        return crate::approval::approved(env, action);
    }
    if yes {
        return Ok(());
    }
    let name = &env.name;
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::aborted(format!(
            "{action} on protected environment `{name}` needs confirmation"
        ))
        .with_hint("there is no terminal to ask on; pass --yes to confirm from a script"));
    }
    let theme = dialoguer::theme::SimpleTheme;
    let _signals = crate::interrupt::prompt_guard();
    let answer = match ask {
        Ask::YesNo => dialoguer::Confirm::with_theme(&theme)
            .with_prompt(format!("Proceed with {name} {action}?"))
            .default(false)
            .interact()
            .unwrap_or(false),
        Ask::TypeName => dialoguer::Input::<String>::with_theme(&theme)
            .with_prompt(format!(
                "{action} on protected environment `{name}`: type its name to confirm"
            ))
            .allow_empty(true)
            .interact_text()
            .is_ok_and(|typed| typed.trim() == name),
    };
    if answer {
        Ok(())
    } else {
        Err(Error::aborted(format!(
            "{action} on `{name}` was not confirmed; nothing was changed"
        )))
    }
}
