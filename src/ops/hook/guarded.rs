//! What an agent's edit or shell command would do to faber-db's own files: a config that
//! protects less, backups removed or overwritten (issue 24, step 3).

use std::path::{Component, Path, PathBuf};

use crate::config::{self, Environment};
use crate::fsutil;
use crate::guard::files::Touch;

/// How the project's config `file` (at `root`) protects less as `after_text` than as
/// `before_text`: one line each, empty when it does not. Both are read the same way, from the
/// text alone. A config that does not read, before or after, is one line too: it cannot be
/// told.
pub fn weakened(root: &Path, file: &Path, before_text: &str, after_text: &str) -> Vec<String> {
    let before = match config::from_text(root, file, before_text) {
        Ok(before) => before,
        Err(e) => {
            return vec![format!(
                "the config does not read now ({}), so what the edit does to it cannot be told",
                e.one_line()
            )];
        }
    };
    let before = &before;
    let after = match config::from_text(root, file, after_text) {
        Ok(after) => after,
        Err(e) => return vec![format!("the config would no longer read: {}", e.one_line())],
    };
    let mut out = Vec::new();
    for (name, was) in &before.environments {
        let Some(now) = after.environments.get(name) else {
            if guards(was) {
                out.push(format!("environment `{name}` is removed"));
            }
            continue;
        };
        let lost = |what: &str, before: bool, after: bool, out: &mut Vec<String>| {
            if before && !after {
                out.push(format!("`{name}` loses {what}"));
            }
        };
        lost("protected", was.protected, now.protected, &mut out);
        lost(
            "backup_before_migrate",
            was.backup_before_migrate,
            now.backup_before_migrate,
            &mut out,
        );
        lost(
            "rollback_on_failure",
            was.rollback_on_failure,
            now.rollback_on_failure,
            &mut out,
        );
        if was.url != now.url && guards(was) {
            out.push(format!("`{name}`'s database URL is taken from elsewhere"));
        }
        if was.migrate_command != now.migrate_command && guards(was) {
            out.push(format!("`{name}`'s migrate_command changes"));
        }
        lost("rehearse", was.rehearse, now.rehearse, &mut out);
        lost("offsite", was.offsite, now.offsite, &mut out);
        lost("encrypt", was.encrypt, now.encrypt, &mut out);
        if guards(was)
            && now
                .exclude_table_data
                .iter()
                .any(|t| !was.exclude_table_data.contains(t))
        {
            out.push(format!(
                "`{name}`'s backups leave out more tables' rows (exclude_table_data)"
            ));
        }
        if was.backup_enforcement != now.backup_enforcement && was.protected {
            out.push(format!("`{name}`'s backup enforcement changes"));
        }
    }
    if before.hook.enabled && !after.hook.enabled {
        out.push("the Claude Code hook is turned off".into());
    }
    if before.hook.protected == config::HookProtected::Deny
        && after.hook.protected != config::HookProtected::Deny
    {
        out.push("the hook asks about protected migrations instead of refusing them".into());
    }
    if !after
        .hook
        .migrate_patterns
        .iter()
        .eq(before.hook.migrate_patterns.iter())
        && before
            .hook
            .migrate_patterns
            .iter()
            .any(|p| !after.hook.migrate_patterns.contains(p))
    {
        out.push("`[hook] migrate_patterns` loses patterns: those commands are no longer seen as migrations".into());
    }
    if before.safety != after.safety {
        out.push("the safety rules for destructive statements change".into());
    }
    if fsutil::resolved(&before.backup_dir) != fsutil::resolved(&after.backup_dir) {
        out.push(format!(
            "backups move to {} (those in {} are left behind)",
            after.backup_dir.display(),
            before.backup_dir.display()
        ));
    }
    out
}

/// Whether an environment has a guard an edit could take away.
fn guards(env: &Environment) -> bool {
    env.protected || env.backup_before_migrate || env.rollback_on_failure
}

/// What a path written or removed is to faber-db.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    /// The project's config (`config.toml` or `config.json`, whichever is read: writing the
    /// other one can replace it).
    Config,
    /// The backup directory, something in it, or a directory holding it.
    Backups,
    /// A protected environment's SQLite file.
    Database(String),
}

/// What faber-db keeps of a project, as paths to compare a command's with.
pub struct Kept {
    configs: Vec<PathBuf>,
    backups: PathBuf,
    /// The names faber-db gives what it keeps there, for a pattern (`find -name …`).
    names: Vec<String>,
    databases: Vec<(String, PathBuf)>,
}

impl Kept {
    /// What `session`'s project keeps: its config files, its backups, and the files of its
    /// protected SQLite environments.
    pub fn of(session: &crate::session::Session) -> Kept {
        let config = &session.config;
        let plugin_dir = config.root.join(config::PLUGIN_DIR);
        let mut configs = vec![config.file.clone()];
        configs.extend(["config.toml", "config.json"].map(|n| plugin_dir.join(n)));
        let mut names: Vec<String> = [
            "backups.json",
            "history.jsonl",
            "backup-20260101-000000.sql.zst",
            "backup-20260101-000000.manifest.json",
            "backup-20260101-000000.sqlite3.gz",
            "backup-20260101-000000.dump",
            ".approvals",
        ]
        .map(str::to_string)
        .to_vec();
        names.extend(config.environments.keys().cloned());
        let databases = config
            .environments
            .values()
            .filter(|e| e.protected)
            .filter_map(|e| match session.url(e).ok()? {
                crate::provider::DatabaseUrl::Sqlite(path) => Some((e.name.clone(), path)),
                crate::provider::DatabaseUrl::Server { .. } => None,
            })
            .collect();
        Kept {
            configs,
            backups: lexical(&config.backup_dir),
            names,
            databases,
        }
    }

    /// What `path` (as the command names it, from `dir`) is to faber-db, when the command does
    /// `touch` to it. Paths are compared as written (`~` and `..` folded, globs matched) and as
    /// they resolve on disk (links). Writing a directory is not writing what is in it; removing
    /// it is.
    pub fn guarded(&self, dir: &Path, path: &str, touch: Touch) -> Vec<Guarded> {
        // Longer than the system's PATH_MAX, it names no file the command can reach (and each
        // resolve walks its every ancestor).
        if path.len() > 4096 {
            return Vec::new();
        }
        let path = match path.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map_or_else(|| dir.join(path), |h| Path::new(&h).join(rest)),
            None => dir.join(path),
        };
        let mut all: Vec<Guarded> = expand_braces(&path.to_string_lossy())
            .into_iter()
            .flat_map(|p| self.guarded_one(&lexical(Path::new(&p)), touch))
            .collect();
        all.dedup();
        all
    }

    /// Everything of faber-db's that `path` is, lies in or holds: the config first.
    fn guarded_one(&self, path: &Path, touch: Touch) -> Vec<Guarded> {
        let mut out = Vec::new();
        let removes = touch == Touch::Remove;
        let hits = |target: &Path| {
            let (within, holds) = meets(path, target, &self.names);
            let resolved = fsutil::resolved(path);
            let exact = |t: &Path| resolved == fsutil::resolved(t) || path == t;
            (within || exact(target), (holds && removes) || exact(target))
        };
        if self.configs.iter().any(|c| {
            let (within, holds) = hits(c);
            within || holds
        }) {
            out.push(Guarded::Config);
        }
        let (within, holds) = hits(&self.backups);
        let (r_within, r_holds) = {
            let r = fsutil::resolved(&self.backups);
            meets(&fsutil::resolved(path), &r, &self.names)
        };
        if within || holds || r_within || (r_holds && removes) {
            out.push(Guarded::Backups);
        }
        out.extend(self.databases.iter().filter_map(|(name, file)| {
            let (within, holds) = hits(file);
            (within || holds).then(|| Guarded::Database(name.clone()))
        }));
        out
    }
}

/// Whether some path `pattern` matches lies inside `target` (or is it), and whether some lies
/// above it (holds it). `**` stands for any run of directories; a name pattern after it is
/// matched against `names` (what faber-db keeps) for inside, and `target`'s own components
/// for above.
fn meets(pattern: &Path, target: &Path, names: &[String]) -> (bool, bool) {
    let pc: Vec<String> = pattern
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let tc: Vec<String> = target
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut i = 0;
    while i < pc.len() && i < tc.len() && pc[i] != "**" {
        if !glob_match(&pc[i], &tc[i]) {
            return (false, false);
        }
        i += 1;
    }
    if i < pc.len() && pc[i] == "**" {
        let Some(last) = pc[i + 1..].last() else {
            return (true, true);
        };
        let holds = tc[i.min(tc.len())..].iter().any(|c| glob_match(last, c));
        let within = names.iter().any(|n| glob_match(last, n));
        return (within, holds);
    }
    if i == pc.len() {
        (pc.len() == tc.len(), true)
    } else {
        (true, false)
    }
}

/// Whether `name` matches the shell pattern `pattern` (`*`, `?`, `[…]`, `[!…]`). Linear in
/// their lengths times the stars: the last star is backtracked to, never more (a pattern in a
/// command cannot make the hook slow).
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
            continue;
        }
        if pi < p.len()
            && let Some(next) = one(&p[pi..], n[ni])
        {
            pi += next;
            ni += 1;
            continue;
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether the pattern's first element (`?`, a `[…]` class or a character) matches `c`, and
/// how many pattern characters it took.
fn one(p: &[char], c: char) -> Option<usize> {
    match p[0] {
        '?' => Some(1),
        '[' => {
            let Some(end) = p.iter().skip(1).position(|x| *x == ']').map(|e| e + 1) else {
                return (c == '[').then_some(1);
            };
            let set = &p[1..end];
            let (negate, set) = match set.first() {
                Some('!' | '^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut k = 0;
            while k < set.len() {
                if k + 2 < set.len() && set[k + 1] == '-' {
                    hit |= set[k] <= c && c <= set[k + 2];
                    k += 3;
                } else {
                    hit |= set[k] == c;
                    k += 1;
                }
            }
            (hit != negate).then_some(end + 1)
        }
        x => (x == c).then_some(1),
    }
}

/// `a/{b,c}/d` as `a/b/d` and `a/c/d` (one level of braces, as the shell would).
fn expand_braces(path: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (path.find('{'), path.find('}')) else {
        return vec![path.to_string()];
    };
    if close < open {
        return vec![path.to_string()];
    }
    path[open + 1..close]
        .split(',')
        .map(|alt| format!("{}{alt}{}", &path[..open], &path[close + 1..]))
        .collect()
}

/// `path` with `.` and `..` folded away, without touching the disk.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_meet_what_they_could_match() {
        let t = Path::new("/p/.fractary/plugins/faber-db/backups");
        let names = ["backups.json".to_string(), "backup-1.sql.zst".to_string()];
        let m = |p: &str| meets(Path::new(p), t, &names);
        assert_eq!(m("/p/.fractary"), (false, true));
        assert_eq!(m("/p/.fr*"), (false, true));
        assert_eq!(m("/p/.[!.]*"), (false, true));
        assert_eq!(m("/p/.fractary/*"), (false, true));
        assert_eq!(m("/p/.fractary/plugins/faber-db/backups/x"), (true, false));
        assert_eq!(m("/p/.fractary/plugins/faber-db/back*"), (true, true));
        assert_eq!(m("/p/*.log"), (false, false));
        assert_eq!(m("/p/src"), (false, false));
        assert_eq!(m("/p/**/*.pyc"), (false, false));
        assert_eq!(m("/p/**/*.zst"), (true, false));
        assert_eq!(m("/p/**/.fractary"), (false, true));
        assert_eq!(expand_braces("/a/{b,c}/d"), ["/a/b/d", "/a/c/d"]);
        assert!(glob_match("[a-c]x", "bx") && !glob_match("[!a-c]x", "bx"));
        assert!(glob_match("*.zst", "backup-1.sql.zst") && !glob_match("*.zst", "a.gz"));
        assert!(glob_match("b*k*p-?.s*", "backup-1.sql.zst"));
        // No blow-up on a hostile pattern.
        let long = "a".repeat(255);
        assert!(!glob_match(&format!("{}b", "*a".repeat(60)), &long));
    }
}
