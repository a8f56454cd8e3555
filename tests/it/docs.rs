//! The documentation names only tests that exist.

#[test]
fn reliability_md_names_real_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/reliability.md")).unwrap();
    let mut sources = String::new();
    for dir in ["tests/it", "src"] {
        read_sources(&root.join(dir), &mut sources);
    }
    let mut named = 0;
    for line in doc.lines().filter(|l| l.starts_with('|')) {
        let Some(last) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        for name in last.split('`').skip(1).step_by(2) {
            named += 1;
            assert!(
                sources.contains(&format!("fn {name}(")),
                "docs/reliability.md names `{name}`, which is no test"
            );
        }
    }
    assert!(named > 30, "{named}");
}

/// The text of every `.rs` file under `dir`, at any depth (tests live beside the modules they
/// test, and modules are folders of files).
fn read_sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The front matter of a command file: its `key: value` lines.
fn front_matter(text: &str) -> Vec<(String, String)> {
    let body = text
        .strip_prefix("---\n")
        .and_then(|t| t.split_once("\n---\n"))
        .map_or_else(|| panic!("no front matter"), |(head, _)| head);
    body.lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or_else(|| panic!("`{l}`"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn command_files_allow_only_faber_db_and_run_real_subcommands() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long_runs = std::collections::BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(root.join("commands")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        files += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let front = front_matter(&text);
        let keys: Vec<&str> = front.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["description", "argument-hint", "allowed-tools"],
            "{name}"
        );
        assert_eq!(front[2].1, "Bash(faber-db:*)", "{name}");
        assert_eq!(
            text.matches("allowed-tools").count(),
            1,
            "{name}: one allowed-tools line"
        );
        // The same paragraph on long runs in every file.
        let section = text
            .split_once("\n## Long runs\n")
            .unwrap_or_else(|| panic!("{name} has no `## Long runs`"))
            .1
            .split("\n## ")
            .next()
            .unwrap()
            .to_string();
        assert!(section.contains("run_in_background"), "{name}");
        assert!(section.contains("history.jsonl"), "{name}");
        long_runs.insert(section);
        // Every `faber-db SUBCOMMAND` its ```sh blocks run is one the CLI has.
        let mut runs = 0;
        let mut in_sh = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_sh = line == "```sh";
                continue;
            }
            let Some(rest) = line.strip_prefix("faber-db ").filter(|_| in_sh) else {
                continue;
            };
            let sub = rest.split_whitespace().next().unwrap();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_faber-db"))
                .args([sub, "--help"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} runs `faber-db {sub}`, which the CLI does not have: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            runs += 1;
        }
        assert!(runs > 0, "{name} runs no faber-db command");
        // An agent asks before --yes; no file tells it to add --yes by itself.
        if text.contains("--yes") {
            assert!(
                text.contains("exit code 8")
                    || text.contains("exits 8")
                    || text.contains("exit 8")
                    || text.contains("confirmation"),
                "{name} mentions --yes but not when it is needed"
            );
        }
    }
    assert!(files >= 15, "{files}");
    assert_eq!(long_runs.len(), 1, "the Long runs paragraphs differ");
}
