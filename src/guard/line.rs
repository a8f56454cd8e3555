//! A line read into the commands it would run: scripts given to a shell (`sh -c`, `eval`, a
//! heredoc fed to `bash`) followed, `cd` and `export` remembered for the commands after them.

use super::wrappers::{Unwrapped, skip_options, unwrap};
use super::{Invocation, basename};
use crate::shell::{self, Simple, Stdin};

/// The commands `line` would run, in order, `sh -c` and `eval` strings included.
pub fn invocations(line: &str) -> Vec<Invocation> {
    let mut out = Vec::new();
    let mut context = Context::default();
    collect(&shell::parse(line), 0, &mut context, &mut out);
    out
}

#[derive(Default, Clone)]
struct Context {
    vars: Vec<(String, String)>,
    dirs: Vec<String>,
}

fn collect(simples: &[Simple], depth: usize, context: &mut Context, out: &mut Vec<Invocation>) {
    let mut previous: Option<(Vec<String>, Option<Stdin>)> = None;
    for simple in simples {
        let Unwrapped {
            vars,
            words,
            ran,
            elevated,
            more_args,
        } = unwrap(simple);
        let piped_from = if simple.piped { previous.take() } else { None };
        previous = Some((words.clone(), simple.stdin.clone()));
        let invocation =
            |words: Vec<String>, piped_from: Option<Vec<String>>, context: &Context| {
                let mut all_vars = context.vars.clone();
                all_vars.extend(vars.clone());
                Invocation {
                    text: simple_text(simple),
                    words,
                    vars: all_vars,
                    stdin: simple.stdin.clone(),
                    piped_from,
                    dirs: context.dirs.clone(),
                    writes: simple.writes.clone(),
                    elevated,
                    more_args,
                }
            };
        let Some(first) = words.first() else {
            // Only wrappers (`sudo -i`, `env -S …`) or redirections (`> FILE`): it runs or
            // writes what cannot be told.
            if ran || !simple.writes.is_empty() {
                out.push(invocation(simple.words.clone(), None, context));
            } else {
                context.vars.extend(vars);
            }
            continue;
        };
        // What it runs is not seen: a script too deeply nested.
        let too_deep = depth >= shell::MAX_DEPTH;
        // The command itself counts too when it writes files or runs as another user.
        let plain = simple.writes.is_empty() && !elevated;
        match basename(first) {
            "cd" | "pushd" => {
                match skip_options(&words[1..], &[])
                    .first()
                    .map(|w| shell::display(w))
                {
                    Some(dir) if dir.starts_with('/') || dir.starts_with('~') => {
                        context.dirs = vec![dir];
                    }
                    Some(dir) if dir != "-" => context.dirs.push(dir),
                    _ => context.dirs.clear(),
                }
                continue;
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                for w in &words[1..] {
                    if let Some((k, v)) = w.split_once('=') {
                        context.vars.push((k.to_string(), v.to_string()));
                    }
                }
                continue;
            }
            "sh" | "bash" | "zsh" | "dash" | "ksh" if !too_deep => {
                let script = match shell_reads(&words[1..]) {
                    ShellReads::Script(script) => Some(script.clone()),
                    // `bash <<EOF`, `bash <<< '…'`, `echo '…' | bash`, `cat <<EOF | sh`.
                    ShellReads::Stdin => match (&simple.stdin, &piped_from) {
                        (Some(Stdin::Text(text)), _) => Some(text.clone()),
                        (None, Some((from, from_stdin))) => match from.first().map(|w| basename(w))
                        {
                            Some("echo" | "printf") => Some(
                                from[1..]
                                    .iter()
                                    .filter(|w| !w.starts_with('-'))
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                            Some("cat") if from.len() == 1 => match from_stdin {
                                Some(Stdin::Text(text)) => Some(text.clone()),
                                _ => None,
                            },
                            _ => None,
                        },
                        _ => None,
                    },
                    ShellReads::File => None,
                };
                if let Some(script) = script {
                    follow(&script, depth, context, &vars, out);
                    if plain {
                        continue;
                    }
                }
            }
            "eval" if !too_deep => {
                follow(&words[1..].join(" "), depth, context, &vars, out);
                if plain {
                    continue;
                }
            }
            // `script -qc 'cmd' /dev/null`: runs the command on a terminal of its own.
            "script" if !too_deep => {
                if let Some(command) = script_command(&words[1..]) {
                    follow(&command, depth, context, &vars, out);
                    if plain {
                        continue;
                    }
                }
            }
            _ => {}
        }
        out.push(invocation(words, piped_from.map(|(from, _)| from), context));
    }
}

/// The command util-linux `script` is given to run: `-c CMD`, `--command CMD`,
/// `--command=CMD`, or `c` last in a cluster of short options (`-qc CMD`, `-qec CMD`).
fn script_command(args: &[String]) -> Option<String> {
    let mut words = args.iter();
    while let Some(w) = words.next() {
        if let Some(command) = w.strip_prefix("--command=") {
            return Some(command.to_string());
        }
        let cluster = w.len() > 1 && w.starts_with('-') && !w.starts_with("--") && w.ends_with('c');
        if w == "--command" || cluster {
            return words.next().cloned();
        }
    }
    None
}

/// The commands of a script a command runs (`sh -c`, `eval`, a heredoc fed to a shell), one
/// level deeper, with the command's variables set.
fn follow(
    script: &str,
    depth: usize,
    context: &Context,
    vars: &[(String, String)],
    out: &mut Vec<Invocation>,
) {
    let mut inner = context.clone();
    inner.vars.extend(vars.iter().cloned());
    collect(
        &shell::parse_at(script, depth + 1),
        depth + 1,
        &mut inner,
        out,
    );
}

/// What a shell run with these arguments reads its commands from.
enum ShellReads<'a> {
    /// `-c SCRIPT` (`-c` alone or in a cluster: `-lc`, `-ce`, `-c -e`).
    Script(&'a String),
    /// No script file: standard input (`bash`, `bash -s`, `sh -`).
    Stdin,
    /// A script file.
    File,
}

fn shell_reads(args: &[String]) -> ShellReads<'_> {
    let (mut dash_c, mut dash_s) = (false, false);
    let mut i = 0;
    while let Some(w) = args.get(i) {
        i += 1;
        if w == "--" || w == "-" {
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            if matches!(long, "rcfile" | "init-file") {
                i += 1;
            }
            continue;
        }
        if let Some(body) = w.strip_prefix(['-', '+']).filter(|b| !b.is_empty()) {
            dash_c |= w.starts_with('-') && body.contains('c');
            dash_s |= body.contains('s');
            // `-o pipefail`, `+O extglob`: the option's name follows.
            if body.contains(['o', 'O']) {
                i += 1;
            }
        } else {
            i -= 1;
            break;
        }
    }
    match args.get(i) {
        Some(script) if dash_c => ShellReads::Script(script),
        None if dash_c => ShellReads::File,
        _ if dash_s => ShellReads::Stdin,
        None => ShellReads::Stdin,
        Some(_) => ShellReads::File,
    }
}

fn simple_text(s: &Simple) -> String {
    s.assigns
        .iter()
        .map(|(k, v)| format!("{k}={}", shell::display(v)))
        .chain(s.words.iter().map(|w| shell::display(w)))
        .collect::<Vec<_>>()
        .join(" ")
}
