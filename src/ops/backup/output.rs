//! Where a backup's files go when `--output-dir` names a directory of the user's: never another
//! environment's directory or the registry's, however the path is spelled.

use std::path::{Path, PathBuf};

use crate::config::Environment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::session::Session;

/// `--output-dir DIR` as an absolute path (a relative one is taken from the current directory);
/// `None` when it is the environment's own directory (through a link or `..` as well). Inside
/// the backup directory, only that one is accepted: the others belong to the registry and the
/// other environments.
pub fn output_dir(session: &Session, env: &Environment, dir: &Path) -> Result<Option<PathBuf>> {
    let abs = std::path::absolute(dir).map_err(|e| {
        Error::config(format!("--output-dir {} cannot be resolved", dir.display())).caused_by(e)
    })?;
    if abs.exists() && !abs.is_dir() {
        return Err(
            Error::config(format!("--output-dir {} is not a directory", abs.display()))
                .with_hint("name a directory (it is created if absent)"),
        );
    }
    // Compared as they are on disk, so that `..` and links do not hide it.
    let store = fsutil::resolved(session.store.dir());
    let within = fsutil::resolved(&abs);
    if within.to_str().is_none() {
        return Err(Error::config(format!(
            "--output-dir {} is not UTF-8, which the registry cannot record",
            abs.display()
        ))
        .with_hint("name a directory whose path is UTF-8"));
    }
    if within == store.join(&env.name) {
        // The environment's own directory, however it was spelled: a backup like any other.
        return Ok(None);
    }
    if within.starts_with(&store) {
        return Err(Error::config(format!(
            "--output-dir {} is inside the backup directory",
            abs.display()
        ))
        .with_hint(format!(
            "leave --output-dir out to use {}, or name a directory outside it",
            session.ctx.show(&session.store.dir().join(&env.name))
        )));
    }
    Ok(Some(abs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testkit::{Project, at};

    #[test]
    fn only_a_directory_outside_the_backup_directory_or_the_environments_own_is_taken() {
        let p = Project::new();
        let ctx = p.ctx(at());
        let session = ctx.session().unwrap();
        let dev = session.env("dev").unwrap();
        let store = session.store.dir().to_path_buf();
        std::fs::create_dir_all(store.join("dev")).unwrap();
        std::fs::create_dir_all(store.join("production")).unwrap();
        // The environment's own directory, spelled with `..`: the default place.
        let own = store.join("production/../dev");
        assert_eq!(output_dir(&session, dev, &own).unwrap(), None);
        // Another environment's directory, or the registry's, is refused.
        for planted in [store.join("dev/../production"), store.clone()] {
            let e = output_dir(&session, dev, &planted).unwrap_err();
            assert!(e.message().contains("inside the backup directory"), "{e:?}");
        }
        // Through a link into the backup directory: refused as well.
        let link = p.root().join("elsewhere");
        std::os::unix::fs::symlink(store.join("production"), &link).unwrap();
        assert!(output_dir(&session, dev, &link).is_err());
        // A file is not a directory.
        let file = p.root().join("db/dev.sqlite3");
        let e = output_dir(&session, dev, &file).unwrap_err();
        assert!(e.message().contains("is not a directory"), "{e:?}");
        // A directory of the user's, absent or not, is taken as an absolute path.
        let mine = p.root().join("exports");
        assert_eq!(output_dir(&session, dev, &mine).unwrap(), Some(mine));
    }
}
