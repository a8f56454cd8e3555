//! An agent's command or edit that writes faber-db's config or removes its backups: the human
//! approves (issue 24, step 3).

use std::path::{Path, PathBuf};

use super::{Answer, Decision, Invocation, context, record};
use crate::guard::files::Touch;
use crate::ops::hook::guarded::{self, Guarded, Kept};

/// A Bash command writing, replacing or removing faber-db's config, anything of its backup
/// directory, or a protected environment's SQLite file (`sed -i`, `rm -rf`, `truncate`, `>`,
/// `mv`, `git clean -x`, …): ask. Each path is judged against the project of the command's
/// directory and the project the path itself lies in (a monorepo's `api/`).
pub(super) fn on_files(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let paths = crate::guard::files::touched(inv);
    if paths.is_empty() {
        return None;
    }
    // `$PWD` is the directory the command runs in, not the hook's.
    let lookup = |n: &str| {
        inv.var(n)
            .map(str::to_string)
            .or_else(|| (n == "PWD").then(|| dir.display().to_string()))
            .or_else(|| std::env::var(n).ok())
    };
    let mut hits: Vec<(Guarded, String)> = Vec::new();
    let mut record_in = None;
    // Each project is read once, however many paths the command names.
    let mut projects: Vec<(PathBuf, Option<Kept>)> = Vec::new();
    for (path, touch) in paths {
        // A path only running the command would tell is not judged (docs/plugin.md).
        let Some(path) = crate::shell::expand(&path, &lookup) else {
            continue;
        };
        for root in roots_of(dir, &path) {
            let at = projects
                .iter()
                .position(|(r, _)| *r == root)
                .unwrap_or_else(|| {
                    projects.push((root.clone(), kept_in(&root)));
                    projects.len() - 1
                });
            let Some(kept) = &projects[at].1 else {
                continue;
            };
            for g in kept.guarded(dir, &path, touch) {
                hits.push((g, path.clone()));
                record_in.get_or_insert(root.clone());
            }
        }
    }
    let said = |kind: &dyn Fn(&Guarded) -> bool| -> Vec<String> {
        let mut v: Vec<String> = hits
            .iter()
            .filter(|(g, _)| kind(g))
            .map(|(_, p)| p.clone())
            .collect();
        v.dedup();
        v
    };
    let mut what = Vec::new();
    let config = said(&|g| *g == Guarded::Config);
    if !config.is_empty() {
        what.push(format!(
            "it writes or removes faber-db's config ({}), which says which environments are protected and backed up: approve only if it keeps them so",
            config.join(", ")
        ));
    }
    let backups = said(&|g| *g == Guarded::Backups);
    if !backups.is_empty() {
        what.push(format!(
            "it removes or overwrites faber-db's backups, their registry or the directory holding them ({}): approve only if you mean to lose them",
            backups.join(", ")
        ));
    }
    let databases = said(&|g| matches!(g, Guarded::Database(_)));
    if !databases.is_empty() {
        what.push(format!(
            "it removes or overwrites the database file of a protected environment ({})",
            databases.join(", ")
        ));
    }
    if what.is_empty() {
        return None;
    }
    let ctx = context(&record_in?, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    let answer = Answer::new(Decision::Ask, format!("faber-db: {}.", what.join("; and ")));
    Some(record(&session, line, None, None, "faber-db files", answer))
}

/// What the project at `root` keeps, when it has a config and its hook is on.
fn kept_in(root: &Path) -> Option<Kept> {
    let ctx = context(root, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    session.config.hook.enabled.then(|| Kept::of(&session))
}

/// The project roots a path is judged against: the command directory's, and the nearest one
/// holding the path (or its nearest existing ancestor).
fn roots_of(dir: &Path, path: &str) -> Vec<PathBuf> {
    let mut roots = vec![crate::config::find_root(dir)];
    let abs = dir.join(path);
    if let Some(existing) = abs.ancestors().find(|a| a.exists()) {
        let own = crate::config::find_root(existing);
        if !roots.contains(&own) {
            roots.push(own);
        }
    }
    roots
}

/// Claude Code's `Edit`, `Write` or `MultiEdit` of a file (`input` is the tool's input): of
/// faber-db's config, when what it would leave protects less than now, or cannot be told; of
/// anything in the backup directory or a protected SQLite file, always. Ask, saying what.
pub(super) fn on_edit(tool: &str, input: &serde_json::Value, cwd: &Path) -> Option<Answer> {
    let file = input.get("file_path")?.as_str()?;
    let path = cwd.join(file);
    let ctx = context(path.parent()?, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    let shown = file.to_string();
    let reason = match Kept::of(&session)
        .guarded(cwd, file, Touch::Write)
        .into_iter()
        .next()?
    {
        Guarded::Backups => format!(
            "faber-db: this {tool} writes into faber-db's backup directory ({shown}): backups, their registry and approvals are faber-db's own; approve only if you mean to change them."
        ),
        Guarded::Database(env) => format!(
            "faber-db: this {tool} writes the database file of protected environment `{env}` ({shown})."
        ),
        Guarded::Config => {
            // The file edited, which may be the config not read now (a config.toml beside the
            // config.json: it would be read instead).
            let config = &session.config;
            let current = std::fs::read_to_string(&config.file).unwrap_or_default();
            let edited_now = std::fs::read_to_string(&path).unwrap_or_default();
            let changes = match edited(tool, &edited_now, input) {
                None => vec!["what the edit makes of it cannot be told here (its text is not found as given)".to_string()],
                Some(after) if path == config.file || crate::fsutil::resolved(&path) == crate::fsutil::resolved(&config.file) => {
                    guarded::weakened(&config.root, &config.file, &current, &after)
                }
                // Only a config.toml beside the config.json is read instead of it.
                Some(_) if !(path.ends_with("config.toml") && config.file.ends_with("config.json")) => {
                    return None;
                }
                Some(after) => {
                    let mut c = vec![format!("it writes {shown}, which faber-db would read instead of {}", config.file.display())];
                    c.extend(guarded::weakened(&config.root, &path, &current, &after));
                    c
                }
            };
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
