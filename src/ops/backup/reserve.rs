//! The backup's ID, reserved under the registry lock: the `.partial` file (or directory) it is
//! written into claims it. IDs are unique across environments, so a file of any environment with
//! an ID makes it taken.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Request;
use crate::config::Environment;
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil::{self, PartialDir, PartialFile};
use crate::ids;
use crate::removal;
use crate::session::Session;

/// Where a backup is written until it is complete.
pub(super) enum Partial {
    File(PartialFile),
    Dir(PartialDir),
}

/// A backup's ID, reserved, and where its data goes.
pub(super) struct Reserved {
    pub id: String,
    /// The entry's `file`, as every later command will find it.
    pub file: String,
    /// The path `file` stands for: where the data is moved when it is complete.
    pub final_path: PathBuf,
    pub partial: Partial,
    /// Writing to `--output-dir`: the claim of the ID in the environment's own directory, held
    /// until the backup is registered or has failed.
    pub claim: Option<PartialFile>,
}

/// Reserves the ID of a backup of `env` at `session`'s time, with `suffix` after it, written into
/// `env_dir`: under the registry lock, so that no other run can take the same ID.
pub(super) fn reserve(
    session: &Session,
    env: &Environment,
    request: &Request,
    env_dir: &Path,
    suffix: &str,
    format: Format,
) -> Result<Reserved> {
    let _lock = session.store.lock()?;
    // Made now, while there is room: a removal on a full disk needs them there.
    let _ = removal::prepare(&session.store);
    let id = unique_id(session, request, env_dir)?;
    // Writing elsewhere, the directory is recorded as this backup's before anything is written
    // there: the only way a directory outside the backup directory becomes one faber-db may
    // read and remove in.
    if request.output_dir.is_some() {
        session
            .store
            .remember_manifest(&env_dir.join(format!("{id}.manifest.json")))?;
    }
    let file = match &request.output_dir {
        Some(_) => env_dir
            .join(format!("{id}{suffix}"))
            .to_string_lossy()
            .into_owned(),
        None => format!("{}/{id}{suffix}", env.name),
    };
    let final_path = session.store.locator().locate(&id, &env.name, &file)?.data;
    // Writing elsewhere, the run then claims the ID in the environment's directory, where other
    // runs look, and says where it writes, for the sweep if it is killed.
    let claim = match &request.output_dir {
        Some(_) => Some(claim(session, env, &id, env_dir)?),
        None => None,
    };
    let partial = if format == Format::Directory {
        PartialDir::create(&final_path).map(Partial::Dir)
    } else {
        PartialFile::create(&final_path).map(Partial::File)
    }
    .map_err(|e| Error::io(Kind::Tool, "cannot create", &final_path, e))?;
    Ok(Reserved {
        id,
        file,
        final_path,
        partial,
        claim,
    })
}

/// The first ID from the time and label that no backup has: registered, being removed, or with a
/// file in the backup directory (or in `env_dir` when writing elsewhere). Under the lock.
fn unique_id(session: &Session, request: &Request, env_dir: &Path) -> Result<String> {
    let text = session.store.read_text()?;
    // A backup being removed keeps its ID until it is gone everywhere.
    let mut registered: HashSet<Cow<'_, str>> =
        session.store.ids(text.as_deref())?.into_iter().collect();
    registered.extend(
        removal::tombstoned(&session.store)
            .into_iter()
            .map(Cow::Owned),
    );
    let mut names = session.store.file_names();
    if request.output_dir.is_some() {
        names.extend(fsutil::file_names(env_dir));
    }
    let base = ids::base_id(session.ctx.now, request.label.as_deref());
    Ok(ids::unique_id(&base, |id| {
        let prefix = format!("{id}.");
        registered.contains(id) || names.iter().any(|n| n.starts_with(&prefix))
    }))
}

/// The claim of backup `id` of `env` written into `dir` (see [`fsutil::CLAIM_SUFFIX`]): held until
/// the backup is registered or has failed.
fn claim(session: &Session, env: &Environment, id: &str, dir: &Path) -> Result<PartialFile> {
    let path = session
        .store
        .env_dir(&env.name)?
        .join(format!("{id}{}", fsutil::CLAIM_SUFFIX));
    let claim =
        PartialFile::create(&path).map_err(|e| Error::io(Kind::Tool, "cannot create", &path, e))?;
    let mut file = claim.file();
    std::io::Write::write_all(&mut file, dir.as_os_str().as_encoded_bytes())
        .and_then(|()| claim.file().sync_all())
        .map_err(|e| Error::io(Kind::Tool, "cannot write", &path, e))?;
    Ok(claim)
}
