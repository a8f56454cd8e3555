//! Tells the binary what `faber-db --version` prints besides its version: the commit it was
//! built from (when it was built from a git checkout) and the target it was built for.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=FABER_DB_TARGET={target}");
    let commit = commit().unwrap_or_default();
    println!("cargo:rustc-env=FABER_DB_COMMIT={commit}");
}

/// `<short hash> <commit date>` of HEAD, or nothing outside a git checkout (a plugin copy, a
/// source archive). Asks to be run again when HEAD moves.
fn commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    // Only this repository's own checkout: not a git repository the sources sit inside.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = env::var("CARGO_MANIFEST_DIR").ok()?;
    if Path::new(&top).canonicalize().ok()? != Path::new(&here).canonicalize().ok()? {
        return None;
    }
    // HEAD, the branch it names (loose or packed), and HEAD's log, which every commit, checkout
    // and reset appends to even when the branch lives only in packed-refs.
    for rel in ["HEAD", "packed-refs", "logs/HEAD"] {
        watch(git(&["rev-parse", "--git-path", rel]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    let line = git(&["log", "-1", "--format=%h %cs", "--abbrev=9"])?;
    let ok = line
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    ok.then_some(line)
}

/// Runs the script again when `path` changes; a path that does not exist is not watched (cargo
/// would then run the script on every build).
fn watch(path: Option<String>) {
    if let Some(path) = path.filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
