//! Part of a backup put back: some of its tables into the environment's database (`restore
//! --table`), or all of it into a new database beside it (`restore --into`).
//!
//! Tables come from a scratch copy that holds the backup: `mysqldump` of those tables (each
//! dropped, made anew with its triggers, and filled) is fed to the client on the database.
//! MySQL commits every `DROP` and `CREATE` as it runs them, so a failure midway can leave a table
//! dropped or half loaded: the caller's safety backup holds it.

use std::process::Stdio;

use super::super::{Mysql, ident, literal};
use super::scratch::ScratchDb;
use crate::error::{Error, Kind, Result};
use crate::provider::tool::{drain_stderr, feed};
use crate::provider::{CommitFailed, Inspection, Provider, Source};
use crate::scratch::Purpose;

/// MySQL's longest database name, in characters.
const NAME_MAX: usize = 64;

/// Loads the dump into `name`, a new database with the environment's character set; recorded
/// and marked as a scratch database until it is loaded and counted, then unmarked and
/// forgotten: the user's database from then on.
pub(in crate::provider::mysql) fn restore_into(
    my: &Mysql,
    name: &str,
    source: Source<'_>,
    migrations_table: Option<&str>,
) -> Result<Inspection> {
    check_new_name(my, name)?;
    let scratch = ScratchDb::create_as(my, Purpose::Restore, name.to_string())?;
    my.load(name, source)?;
    let mut at = my.clone();
    at.recorded_as = None;
    at.conn.dbname = name.to_string();
    let inspection = at.inspect(migrations_table, true)?;
    // A server without database comments has no marker to take off.
    let _ = my.query_in(
        None,
        &format!("ALTER DATABASE {} COMMENT = ''", ident(name)),
    );
    let (_, claim) = scratch.into_parts();
    if let Some(claim) = claim {
        claim.release();
    }
    Ok(inspection)
}

/// `name` can be a new database's: one the server takes, of no database yet.
fn check_new_name(my: &Mysql, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::config(format!("--into: {why}"))
            .with_hint("name a new database: up to 64 characters, no control characters")
    };
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("the name holds a control character"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(bad(&format!(
            "{name} is longer than MySQL's {NAME_MAX} characters"
        )));
    }
    let found = my.query_in(
        None,
        &format!(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            literal(name)
        ),
    )?;
    if !found.is_empty() {
        return Err(Error::config(format!(
            "database {name} already exists on the server; a restore --into makes a new database and never replaces one"
        ))
        .with_hint("choose another name, or drop that database yourself if nothing needs it"));
    }
    Ok(())
}

/// Replaces tables `tables` of `my`'s database with those of `from`'s.
pub(in crate::provider::mysql) fn replace_tables(
    my: &Mysql,
    from: &Mysql,
    tables: &[String],
) -> Result<(), CommitFailed> {
    let from_tools = from.tools()?;
    let mut dump = from.command(&from_tools.dump, from_tools.mariadb_client);
    dump.args([
        "--single-transaction",
        "--triggers",
        "--hex-blob",
        "--no-tablespaces",
        "--skip-dump-date",
    ])
    .arg(&from.conn.dbname)
    // Table names after `--`: one that begins with a dash is a name, not an option.
    .arg("--")
    .args(tables)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut dump = dump
        .spawn()
        .map_err(|e| Error::new(Kind::ToolNotFound, "cannot run mysqldump").caused_by(e))?;
    let dump_err = drain_stderr(&mut dump);
    let mut script = dump.stdout.take().expect("stdout is piped");
    let tools = my.tools()?;
    let mut load = my.command(&tools.client, tools.mariadb_client);
    load.arg("--max-allowed-packet=1G")
        .arg(format!("--database={}", my.conn.dbname));
    let loaded = feed(load, Source::Stream(&mut script), "mysql");
    if loaded.is_err() {
        let _ = dump.kill();
    }
    drop(script);
    let status = crate::interrupt::wait_for(&mut dump);
    let stderr = dump_err.join().unwrap_or_default();
    let dumped = matches!(&status, Ok(s) if s.success());
    let err = match (loaded, dumped) {
        (Ok(()), true) => return Ok(()),
        (Err(e), _) => e,
        (Ok(()), false) => crate::provider::tool::failure("mysqldump", &stderr),
    };
    Err(CommitFailed::incomplete(
        Error::tool(format!(
            "the tables {} were not all put back; they may be left dropped or half loaded",
            tables.join(", ")
        ))
        .caused_by(err.one_line()),
    ))
}
