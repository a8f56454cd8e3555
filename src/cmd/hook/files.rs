//! An agent's command or edit that writes faber-db's config or removes its backups: the human
//! approves (issue 24, step 3).

use std::path::Path;

use super::{Answer, Decision, Invocation, context, record};
use crate::ops::hook::guarded::{self, Guarded};

/// A Bash command writing, replacing or removing faber-db's config or anything of its backup
/// directory (`sed -i`, `rm -rf`, `truncate`, `>`, `mv`, …): ask.
pub(super) fn on_files(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let paths = crate::guard::files::touched(inv);
    if paths.is_empty() {
        return None;
    }
    let ctx = context(dir, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    let lookup = |n: &str| {
        inv.var(n)
            .map(str::to_string)
            .or_else(|| std::env::var(n).ok())
    };
    let (mut config, mut backups) = (Vec::new(), Vec::new());
    for path in paths {
        // A path only running the command would tell is not judged (docs/plugin.md).
        let Some(path) = crate::shell::expand(&path, &lookup) else {
            continue;
        };
        match guarded::guarded(&session.config, dir, &path) {
            Some(Guarded::Config) => config.push(path),
            Some(Guarded::Backups) => backups.push(path),
            None => {}
        }
    }
    let mut what = Vec::new();
    if !config.is_empty() {
        what.push(format!(
            "it writes faber-db's config ({}), which says which environments are protected and backed up: approve only if it keeps them so",
            config.join(", ")
        ));
    }
    if !backups.is_empty() {
        what.push(format!(
            "it removes or overwrites faber-db's backups, their registry or the directory holding them ({}): approve only if you mean to lose them",
            backups.join(", ")
        ));
    }
    if what.is_empty() {
        return None;
    }
    let answer = Answer::new(Decision::Ask, format!("faber-db: {}.", what.join("; and ")));
    Some(record(&session, line, None, None, "faber-db files", answer))
}

/// Claude Code's `Edit`, `Write` or `MultiEdit` of a file (`input` is the tool's input): of
/// faber-db's config, when what it would leave protects less than now; of anything in the
/// backup directory, always. Ask, saying what.
pub(super) fn on_edit(tool: &str, input: &serde_json::Value, cwd: &Path) -> Option<Answer> {
    let file = input.get("file_path")?.as_str()?;
    let path = cwd.join(file);
    let ctx = context(path.parent()?, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    let shown = file.to_string();
    let reason = match guarded::guarded(&session.config, cwd, file)? {
        Guarded::Backups => format!(
            "faber-db: this {tool} writes into faber-db's backup directory ({shown}): backups, their registry and approvals are faber-db's own; approve only if you mean to change them."
        ),
        Guarded::Config => {
            let before = std::fs::read_to_string(&session.config.file).unwrap_or_default();
            let after = edited(tool, &before, input)?;
            let changes = guarded::weakened(&session.config, &after);
            if changes.is_empty() {
                return None;
            }
            format!(
                "faber-db: this {tool} of faber-db's config ({shown}) protects less:\n  {}\nApprove only if that is meant.",
                changes.join("\n  ")
            )
        }
    };
    let answer = Answer::new(Decision::Ask, reason);
    let line = format!("{tool} {shown}");
    Some(record(
        &session,
        &line,
        None,
        None,
        "faber-db config",
        answer,
    ))
}

/// `before` as the tool would leave it; `None` when the edit would not apply (Claude Code then
/// refuses it itself).
fn edited(tool: &str, before: &str, input: &serde_json::Value) -> Option<String> {
    let apply = |text: &str, edit: &serde_json::Value| -> Option<String> {
        let old = edit.get("old_string")?.as_str()?;
        let new = edit.get("new_string")?.as_str()?;
        if old.is_empty() || !text.contains(old) {
            return None;
        }
        Some(
            if edit.get("replace_all").and_then(serde_json::Value::as_bool) == Some(true) {
                text.replace(old, new)
            } else {
                text.replacen(old, new, 1)
            },
        )
    };
    match tool {
        "Write" => Some(input.get("content")?.as_str()?.to_string()),
        "Edit" => apply(before, input),
        "MultiEdit" => input
            .get("edits")?
            .as_array()?
            .iter()
            .try_fold(before.to_string(), |text, e| apply(&text, e)),
        _ => None,
    }
}
