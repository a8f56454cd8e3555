//! A registered backup loaded into a scratch database that lives while a closure runs and is
//! always dropped after — on success, on error, and when a signal stops the work (a run killed
//! outright leaves it recorded in the ledger, and the next run on that server sweeps it; see
//! [`crate::scratch`]). And the choice of the server scratch databases go to, which `verify
//! --deep` shares: the one `verify_url_env` names, else the environment's own when its role may
//! create databases there.
//!
//! The closure gets the copy as a database to read and the URL that reaches it, for a child
//! process's environment only. That URL is built from the scratch server's own URL with the
//! copy's name put in, and checked to reach the copy — never the environment's database: a URL
//! that cannot be built or checked fails the run, it never falls back to the real one.

use crate::config::Environment;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::ops::{restore, verify};
use crate::provider::{self, DatabaseUrl, Provider, ScratchCopy, Source};
use crate::registry::BackupRecord;
use crate::session::Session;

/// Where an environment's scratch databases go.
pub struct Server {
    pub db: Box<dyn Provider>,
    /// The server's URL as written, password included, naming the environment's database: only
    /// ever turned into a scratch database's URL for a child process's environment.
    raw_url: String,
}

/// The server where `env`'s scratch databases go, `own` being its database: the one
/// `verify_url_env` names, else `own`'s server when its role may create databases there (an
/// error naming `what` needs it — "a deep check" — when it may not). What killed runs left there
/// is swept first (only what the ledger proves ours).
pub fn server(
    session: &Session,
    env: &Environment,
    own: Box<dyn Provider>,
    what: &str,
) -> Result<Server> {
    let server = if let Some((raw_url, db)) = session.scratch_server(env, &own.database_name())? {
        Server { db, raw_url }
    } else {
        let privileges = own.restore_privileges()?;
        if !privileges.create_database {
            return Err(Error::config(format!(
                "{what} loads the backup into a scratch database, and {} may not create databases on the server of `{}` ({what} needs verify_url_env set in [environments.{}])",
                privileges.role, env.name, env.name
            ))
            .with_hint(format!(
                "set verify_url_env = \"VAR\" in [environments.{}], VAR holding the URL of a server where faber-db may create scratch databases (a role with CREATEDB)",
                env.name
            )));
        }
        Server {
            db: own,
            raw_url: session.raw_url(env)?,
        }
    };
    let swept = server.db.sweep_scratch(true)?;
    for name in swept.dropped {
        session.events().warn(&format!(
            "dropped database {name}, left by an interrupted run"
        ));
    }
    for (name, why) in swept.failed {
        session.events().warn(&format!(
            "database {name}, left by an interrupted run, could not be dropped: {why}"
        ));
    }
    Ok(server)
}

/// A backup's copy, as the closure of [`with_copy`] gets it.
pub struct Copy<'a> {
    /// The copy, as a database to read.
    pub db: &'a dyn Provider,
    /// Its name on the scratch server (the file's path for SQLite): no secret.
    pub name: &'a str,
    /// The URL that reaches it, password included: for a child process's environment only,
    /// never for argv, logs or messages.
    pub url: &'a str,
    /// The secrets of that URL, to blank out of what is shown.
    pub secrets: &'a [String],
}

/// Loads `record` (a backup of `env`) into a new scratch database on `server`, runs `work` with
/// it, and drops it, whatever `work` returned. The backup's SHA-256 is checked as it streams: a
/// backup that changed since it was written never loads.
pub fn with_copy<T>(
    session: &Session,
    env: &Environment,
    server: &Server,
    record: &BackupRecord,
    work: impl FnOnce(&Copy<'_>) -> Result<T>,
) -> Result<T> {
    if record.provider != server.db.kind() {
        return Err(Error::config(format!(
            "backup {} is of a {} database; the scratch server of `{}` is {}",
            record.id,
            record.provider.as_str(),
            env.name,
            server.db.kind().as_str()
        )));
    }
    let located = session.store.locate(record)?;
    // Held while it loads: no cleanup or delete removes it meanwhile.
    let _held = crate::removal::hold(&located.data)?;
    let copy = if record.format == Format::Directory {
        verify::checksum_ok(session, record).map_err(|(e, _)| e)?;
        let copy = server.db.scratch_copy(
            record.format,
            Source::Path(&located.data),
            restore::default_jobs(),
        )?;
        // The tool read the files after they were checked: checked again now it is done.
        verify::checksum_ok(session, record).map_err(|(e, _)| e)?;
        copy
    } else {
        let decryption = crate::crypt::Decryption::of(&session.config, &session.vars, record)?;
        let mut decoder = restore::open_verified(&located.data, record, decryption.as_ref())?;
        let bar = session.events().bar(record.raw_size_bytes, "load");
        let mut source = crate::progress::Reader::new(&mut decoder, bar.as_ref());
        let copy = server
            .db
            .scratch_copy(record.format, Source::Stream(&mut source), 1);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        copy?
    };
    let url = reaching(session, env, server, copy.as_ref())?;
    let secrets = DatabaseUrl::parse(&url, &session.config.root)?.secrets();
    let result = work(&Copy {
        db: copy.provider(),
        name: copy.name(),
        url: &url,
        secrets: &secrets,
    });
    drop(copy);
    result
}

/// The URL of `copy`, built from `server`'s and checked: it must parse, name the copy (the
/// copy's file for SQLite, its database on the server), and not be `env`'s own URL.
fn reaching(
    session: &Session,
    env: &Environment,
    server: &Server,
    copy: &dyn ScratchCopy,
) -> Result<String> {
    let refused = |why: &str| {
        Error::tool(format!(
            "the scratch copy's URL could not be made ({why}); nothing was run against it"
        ))
    };
    let root = &session.config.root;
    let url = provider::url_naming(&server.raw_url, root, copy.name())
        .map_err(|e| refused(&e.one_line()))?;
    let parsed = DatabaseUrl::parse(&url, root).map_err(|e| refused(&e.one_line()))?;
    let names_copy = match &parsed {
        DatabaseUrl::Sqlite(path) => path.as_os_str() == copy.name(),
        DatabaseUrl::Server { .. } => {
            let options = provider::Options {
                row_count_max_table_size: env.row_count_max_table_size,
                ledger: None,
            };
            provider::open(&parsed, options)
                .is_ok_and(|reached| reached.database_name() == copy.name())
        }
    };
    if !names_copy {
        return Err(refused("it does not name the copy"));
    }
    let own = session.url(env)?;
    let own_database = match &own {
        DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        DatabaseUrl::Server { .. } => session.provider(env)?.1.database_name(),
    };
    if parsed == own || own_database == copy.name() {
        return Err(refused("it would reach the environment's own database"));
    }
    if parsed.kind() != own.kind() {
        return Err(refused("it is of another kind of database"));
    }
    Ok(url)
}
