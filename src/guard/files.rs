//! The files a command writes, replaces or removes, from its words: redirections, and the
//! arguments of the tools that do (`rm`, `truncate`, `sed -i`, `cp`, `mv`, `tee`, `find
//! -delete`, …). The hook asks before any of them is faber-db's config or backups.

use super::Invocation;

/// The paths `inv` writes, replaces or removes, as written (variables and substitutions keep
/// their markers: a path that cannot be told is still listed).
pub fn touched(inv: &Invocation) -> Vec<String> {
    let mut out: Vec<String> = inv.writes.clone();
    let args = &inv.words[inv.words.len().min(1)..];
    match inv.program() {
        // Every operand is removed or rewritten.
        "rm" | "unlink" | "rmdir" | "shred" | "tee" => out.extend(operands(args, &[])),
        "truncate" => out.extend(operands(args, &["-s", "--size", "-r", "--reference"])),
        // In place: every operand but the script, when no `-e` gives it.
        "sed" | "perl" if in_place(inv.program(), args) => {
            let scripts = ["-e", "--expression", "-f", "--file", "-E"];
            let given = args.iter().any(|a| scripts.contains(&a.as_str()));
            let files = operands(args, &scripts);
            out.extend(files.into_iter().skip(usize::from(!given)));
        }
        // Sources leave, the destination is replaced.
        "mv" => out.extend(operands(args, &["-t", "--target-directory", "-S"])),
        "cp" | "install" | "ln" | "rsync" => {
            out.extend(operands(args, &["-t", "--target-directory", "-S", "-m", "-o", "-g"]).pop());
        }
        "dd" => out.extend(
            args.iter()
                .filter_map(|a| a.strip_prefix("of=").map(str::to_string)),
        ),
        // `find DIR … -delete`: what it starts from.
        "find" if args.iter().any(|a| a == "-delete") => out.extend(
            args.iter()
                .take_while(|a| !a.starts_with(['-', '(', '!']))
                .cloned(),
        ),
        _ => {}
    }
    out
}

/// Whether `sed` or `perl` edits its files in place (`-i`, `-i.bak`, `--in-place`, `-pi`).
fn in_place(program: &str, args: &[String]) -> bool {
    args.iter().any(|a| {
        a.starts_with("-i")
            || a.starts_with("--in-place")
            || (program == "perl" && a.starts_with('-') && !a.starts_with("--") && a.contains('i'))
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

    fn of(line: &str) -> Vec<String> {
        super::super::invocations(line)
            .iter()
            .flat_map(touched)
            .map(|p| crate::shell::display(&p))
            .collect()
    }

    #[test]
    fn the_files_a_command_writes_or_removes() {
        let b = ".fractary/plugins/faber-db/backups";
        assert_eq!(of(&format!("rm -rf {b}")), [b]);
        assert_eq!(of("rm -f -- -odd a"), ["-odd", "a"]);
        assert_eq!(of("truncate -s 0 x.db"), ["x.db"]);
        assert_eq!(of("sed -i 's/true/false/' c.toml"), ["c.toml"]);
        assert_eq!(of("sed -i.bak -e 's/a/b/' c.toml"), ["c.toml"]);
        assert_eq!(of("sed 's/a/b/' c.toml"), Vec::<String>::new());
        assert_eq!(of("perl -pi -e 's/a/b/' c.toml"), ["c.toml"]);
        assert_eq!(of("mv a b"), ["a", "b"]);
        assert_eq!(of("cp -r src dst"), ["dst"]);
        assert_eq!(of("echo x > c.toml"), ["c.toml"]);
        assert_eq!(of("echo x | tee -a c.toml"), ["c.toml"]);
        assert_eq!(of("dd if=/dev/zero of=x.db bs=1"), ["x.db"]);
        assert_eq!(of("find .fractary -name '*.zst' -delete"), [".fractary"]);
        assert_eq!(of("find . -name x"), Vec::<String>::new());
        assert_eq!(of("cat c.toml"), Vec::<String>::new());
        assert_eq!(of("bash -c 'rm -rf backups'"), ["backups"]);
    }
}
