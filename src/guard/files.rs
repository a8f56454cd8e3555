//! The files a command writes, replaces or removes, from its words: redirections, and the
//! arguments of the tools that do (`rm`, `truncate`, `sed -i`, `cp`, `mv`, `tee`, `find
//! -delete`, `git clean`, …). The hook asks before any of them is faber-db's config, its
//! backups or a protected environment's database file.

use super::Invocation;

/// What a command does to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Writes or replaces the file (a redirection, `sed -i`, `cp` onto it): what is in a
    /// directory it names is not touched.
    Write,
    /// Removes or moves it away, and everything under it.
    Remove,
}

/// The paths `inv` writes, replaces or removes, as written (variables and substitutions keep
/// their markers), each with what it does to it. A `find` or `git clean` that starts from a
/// directory is listed with the name pattern it keeps to, when it gives one.
pub fn touched(inv: &Invocation) -> Vec<(String, Touch)> {
    let mut out: Vec<(String, Touch)> = inv
        .writes
        .iter()
        .map(|w| (w.clone(), Touch::Write))
        .collect();
    let args = &inv.words[inv.words.len().min(1)..];
    let remove = |paths: Vec<String>| paths.into_iter().map(|p| (p, Touch::Remove));
    let write = |paths: Vec<String>| paths.into_iter().map(|p| (p, Touch::Write));
    match inv.program() {
        "rm" | "unlink" | "rmdir" | "shred" | "trash" | "trash-put" | "rimraf" => {
            let mut paths = operands(args, &[]);
            // `find … | xargs rm`: the paths come from the command before it.
            if inv.more_args {
                paths.extend(piped_paths(inv));
            }
            out.extend(remove(paths));
        }
        "tee" => out.extend(write(operands(args, &[]))),
        "truncate" => out.extend(write(operands(
            args,
            &["-s", "--size", "-r", "--reference"],
        ))),
        "sed" | "perl" if in_place(inv.program(), args) => {
            let scripts = ["-e", "--expression", "-f", "--file", "-E"];
            let given = args.iter().any(|a| scripts.contains(&a.as_str()));
            let files = operands(args, &scripts);
            out.extend(write(files.into_iter().skip(usize::from(!given)).collect()));
        }
        "mv" => {
            let (target, mut rest) = with_target(args, &["-S"]);
            if target.is_none() {
                rest.pop()
                    .into_iter()
                    .for_each(|d| out.push((d, Touch::Write)));
            }
            out.extend(remove(rest));
            out.extend(write(target.into_iter().collect()));
        }
        "cp" | "install" | "ln" | "rsync" => {
            let (target, mut rest) = with_target(args, &["-S", "-m", "-o", "-g"]);
            out.extend(write(target.or_else(|| rest.pop()).into_iter().collect()));
            if inv.program() == "rsync" && args.iter().any(|a| a.starts_with("--remove-source")) {
                out.extend(remove(rest));
            }
        }
        "dd" => out.extend(write(
            args.iter()
                .filter_map(|a| a.strip_prefix("of=").map(str::to_string))
                .collect(),
        )),
        "find"
            if args
                .iter()
                .any(|a| a == "-delete" || a == "-exec" || a == "-execdir") =>
        {
            let starts: Vec<String> = args
                .iter()
                .skip_while(|a| matches!(a.as_str(), "-L" | "-H" | "-P"))
                .take_while(|a| !a.starts_with(['-', '(', '!']))
                .cloned()
                .collect();
            let starts = if starts.is_empty() {
                vec![".".to_string()]
            } else {
                starts
            };
            let pattern = name_pattern(args);
            out.extend(
                starts
                    .into_iter()
                    .map(|s| (with_pattern(&s, pattern), Touch::Remove)),
            );
        }
        "git" => out.extend(git(args)),
        _ => {}
    }
    out
}

/// `git` subcommands that remove or rewrite files: `clean` (with `-x`/`-X` it removes ignored
/// files, where backups are kept), `rm`, `checkout --`/`restore` of paths, `reset --hard`,
/// `stash` of untracked files.
fn git(args: &[String]) -> Vec<(String, Touch)> {
    let Some(at) = args.iter().position(|a| !a.starts_with('-')) else {
        return Vec::new();
    };
    let (sub, rest) = (args[at].as_str(), &args[at + 1..]);
    let has = |flag: &str| {
        rest.iter().any(|a| {
            a == flag
                || (flag.len() == 2
                    && a.starts_with('-')
                    && !a.starts_with("--")
                    && a.contains(&flag[1..]))
        })
    };
    let paths = || {
        let p = operands(rest, &["-e", "--exclude", "-m", "--message"]);
        if p.is_empty() {
            vec![".".to_string()]
        } else {
            p
        }
    };
    match sub {
        "clean" if has("-x") || has("-X") => {
            paths().into_iter().map(|p| (p, Touch::Remove)).collect()
        }
        "rm" => operands(rest, &[])
            .into_iter()
            .map(|p| (p, Touch::Remove))
            .collect(),
        "checkout" | "restore" => {
            let after = rest.iter().position(|a| a == "--");
            let files: Vec<String> = match (sub, after) {
                (_, Some(i)) => rest[i + 1..].to_vec(),
                ("restore", None) => operands(rest, &["-s", "--source"]),
                _ => Vec::new(),
            };
            files.into_iter().map(|p| (p, Touch::Write)).collect()
        }
        "reset" if rest.iter().any(|a| a == "--hard") => vec![(".".to_string(), Touch::Write)],
        "stash"
            if has("-u")
                || has("-a")
                || rest
                    .iter()
                    .any(|a| a == "--include-untracked" || a == "--all") =>
        {
            vec![(".".to_string(), Touch::Remove)]
        }
        _ => Vec::new(),
    }
}

/// `DIR` with `find`'s `-name` pattern, as a glob under it (`DIR/*.pyc`); `DIR` alone when it
/// gives none.
fn with_pattern(dir: &str, pattern: Option<&str>) -> String {
    match pattern {
        Some(p) => format!("{}/**/{p}", dir.trim_end_matches('/')),
        None => dir.to_string(),
    }
}

/// The `-name`/`-iname` pattern of a `find`, when it gives exactly one and no `-o`.
fn name_pattern(args: &[String]) -> Option<&str> {
    if args.iter().any(|a| a == "-o" || a == "-or") {
        return None;
    }
    let mut names = args
        .windows(2)
        .filter(|w| w[0] == "-name" || w[0] == "-iname")
        .map(|w| w[1].as_str());
    let first = names.next()?;
    names.next().is_none().then_some(first)
}

/// The words of the command piped into this one (`echo a b | xargs rm`, `find … | xargs rm`:
/// its start paths), as paths.
fn piped_paths(inv: &Invocation) -> Vec<String> {
    let Some(from) = &inv.piped_from else {
        return Vec::new();
    };
    from.iter()
        .skip(1)
        .take_while(|w| !w.starts_with(['-', '(', '!']))
        .cloned()
        .collect()
}

/// `-t DIR` / `--target-directory=DIR`, and the other operands.
fn with_target(args: &[String], takes_value: &[&str]) -> (Option<String>, Vec<String>) {
    let mut target = None;
    let mut words = args.iter();
    let mut rest_args = Vec::new();
    while let Some(a) = words.next() {
        if a == "-t" || a == "--target-directory" {
            target = words.next().cloned();
        } else if let Some(t) = a.strip_prefix("--target-directory=") {
            target = Some(t.to_string());
        } else {
            rest_args.push(a.clone());
        }
    }
    (target, operands(&rest_args, takes_value))
}

/// Whether `sed` or `perl` edits its files in place (`-i`, `-i.bak`, `--in-place`, `-Ei`,
/// `-pi`).
fn in_place(program: &str, args: &[String]) -> bool {
    args.iter().any(|a| {
        if a.starts_with("--in-place") {
            return true;
        }
        let Some(cluster) = a.strip_prefix('-').filter(|c| !c.starts_with('-')) else {
            return false;
        };
        // The letters before `i` must all be flags (sed's -E -n -r -s -u -z; perl's -p -n -a
        // -l -s -w), so that `-Mstrict` or `-e` values are not taken for it.
        let flags = if program == "sed" { "Enrsuz" } else { "pnalsw" };
        cluster
            .split_once('i')
            .is_some_and(|(before, _)| before.chars().all(|c| flags.contains(c)))
    })
}

/// The words that are no option nor an option's value (`takes_value` names the options that
/// take the next word); everything after `--`.
fn operands(args: &[String], takes_value: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = args.iter();
    while let Some(a) = words.next() {
        if a == "--" {
            out.extend(words.cloned());
            break;
        }
        if takes_value.contains(&a.as_str()) {
            words.next();
        } else if !a.starts_with('-') || a == "-" {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(line: &str) -> Vec<(String, Touch)> {
        super::super::invocations(line)
            .iter()
            .flat_map(touched)
            .map(|(p, t)| (crate::shell::display(&p), t))
            .collect()
    }

    fn paths(line: &str) -> Vec<String> {
        of(line).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn the_files_a_command_writes_or_removes() {
        let b = ".fractary/plugins/faber-db/backups";
        assert_eq!(of(&format!("rm -rf {b}")), [(b.to_string(), Touch::Remove)]);
        assert_eq!(paths("rm -f -- -odd a"), ["-odd", "a"]);
        assert_eq!(
            of("truncate -s 0 x.db"),
            [("x.db".to_string(), Touch::Write)]
        );
        assert_eq!(paths("sed -i 's/true/false/' c.toml"), ["c.toml"]);
        assert_eq!(paths("sed -Ei 's/a/b/' c.toml"), ["c.toml"]);
        assert_eq!(paths("sed -i.bak -e 's/a/b/' c.toml"), ["c.toml"]);
        assert!(paths("sed 's/a/b/' c.toml").is_empty());
        assert!(paths("sed -n 's/a/b/p' c.toml").is_empty());
        assert_eq!(paths("perl -pi -e 's/a/b/' c.toml"), ["c.toml"]);
        assert!(paths("perl -Mstrict -e 'print 1' c.toml").is_empty());
        assert_eq!(
            of("mv a b"),
            [
                ("b".to_string(), Touch::Write),
                ("a".to_string(), Touch::Remove)
            ]
        );
        assert_eq!(paths("cp -r src dst"), ["dst"]);
        assert_eq!(paths("cp -t dst a b"), ["dst"]);
        assert_eq!(paths("echo x > c.toml"), ["c.toml"]);
        assert_eq!(paths("echo x | tee -a c.toml"), ["c.toml"]);
        assert_eq!(paths("dd if=/dev/zero of=x.db bs=1"), ["x.db"]);
        assert_eq!(
            paths("find .fractary -name '*.zst' -delete"),
            [".fractary/**/*.zst"]
        );
        assert_eq!(paths("find -name '*.pyc' -delete"), ["./**/*.pyc"]);
        assert_eq!(paths("find b -type f -exec rm {} +"), ["b"]);
        assert!(paths("find . -name x").is_empty());
        assert_eq!(paths("find b -mtime +0 | xargs rm"), ["b"]);
        assert!(paths("cat c.toml").is_empty());
        assert_eq!(paths("bash -c 'rm -rf backups'"), ["backups"]);
        assert_eq!(paths("git clean -fdx"), ["."]);
        assert!(paths("git clean -fd").is_empty());
        assert_eq!(paths("git rm -r .fractary"), [".fractary"]);
        assert_eq!(paths("git checkout -- c.toml"), ["c.toml"]);
        assert_eq!(paths("git restore c.toml"), ["c.toml"]);
        assert_eq!(paths("git reset --hard"), ["."]);
        assert_eq!(paths("git stash -u"), ["."]);
        assert!(paths("git status").is_empty());
    }
}
