//! What this binary is: its version, the commit it was built from and the target it was built
//! for (`build.rs`), as `faber-db --version` prints them and `doctor` compares them.

use std::sync::LazyLock;

/// This binary's version (Cargo.toml's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The target triple it was built for.
pub const TARGET: &str = env!("FABER_DB_TARGET");

/// `<short hash> <commit date>` of the commit it was built from; empty when it was not built
/// from a git checkout (a plugin's copy of the sources, a source archive).
pub const COMMIT: &str = env!("FABER_DB_COMMIT");

/// What `--version` prints after the name: `0.1.0 (d94e9ba2c 2026-12-06,
/// x86_64-unknown-linux-gnu)`, or `0.1.0 (x86_64-unknown-linux-gnu)` without a commit.
pub fn version_line() -> &'static str {
    static LINE: LazyLock<String> = LazyLock::new(|| line(VERSION, COMMIT, TARGET));
    &LINE
}

fn line(version: &str, commit: &str, target: &str) -> String {
    match (commit.is_empty(), target.is_empty()) {
        (false, false) => format!("{version} ({commit}, {target})"),
        (true, false) => format!("{version} ({target})"),
        (false, true) => format!("{version} ({commit})"),
        (true, true) => version.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_what_is_known() {
        assert_eq!(
            line("0.1.0", "d94e9ba2c 2026-12-06", "x86_64-unknown-linux-gnu"),
            "0.1.0 (d94e9ba2c 2026-12-06, x86_64-unknown-linux-gnu)"
        );
        assert_eq!(
            line("0.1.0", "", "aarch64-apple-darwin"),
            "0.1.0 (aarch64-apple-darwin)"
        );
        assert_eq!(line("0.1.0", "", ""), "0.1.0");
    }

    #[test]
    fn this_build_knows_its_target() {
        assert!(!TARGET.is_empty());
        assert!(version_line().starts_with(&format!("{VERSION} (")));
        assert!(version_line().ends_with(&format!("{TARGET})")));
    }
}
