//! The documentation names only tests that exist.

#[test]
fn reliability_md_names_real_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/reliability.md")).unwrap();
    let mut sources = String::new();
    for dir in [
        "tests/it",
        "src",
        "src/config",
        "src/cmd",
        "src/keep",
        "src/provider",
        "src/provider/mysql",
        "src/provider/postgres",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(entry.path()).unwrap());
            }
        }
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
