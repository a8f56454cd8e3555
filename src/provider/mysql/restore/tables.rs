//! Part of a backup put back: some of its tables into the environment's database (`restore
//! --table`), or all of it into a new database beside it (`restore --into`).
//!
//! Tables come from a scratch copy that holds the backup: `mysqldump` of those tables (each
//! dropped, made anew with its triggers, and filled) is fed to the client on the database.
//! MySQL commits every `DROP` and `CREATE` as it runs them, so a failure midway can leave a table
//! dropped or half loaded: the caller's safety backup holds it.

use std::process::Stdio;

use super::super::schema::unhex;
use super::super::{Mysql, ident, literal};
use super::scratch::ScratchDb;
use crate::error::{Error, Kind, Result};
use crate::provider::tool::{check_new_database, drain_stderr, feed};
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
    my.disable_events(name)?;
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
pub(in crate::provider::mysql) fn check_new_name(my: &Mysql, name: &str) -> Result<()> {
    let too_long = (name.chars().count() > NAME_MAX)
        .then(|| format!("{name} is longer than MySQL's {NAME_MAX} characters"));
    let exists = too_long.is_none()
        && !name.is_empty()
        && !name.chars().any(char::is_control)
        && !my
            .query_in(
                None,
                &format!(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                    literal(name)
                ),
            )?
            .is_empty();
    check_new_database(name, too_long, "64 characters", exists)?;
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
    // A table an open transaction holds stops the restore within 30 s, not at the server's
    // lock_wait_timeout (a year by default).
    let mut input =
        std::io::Read::chain(&b"SET SESSION lock_wait_timeout = 30;\n"[..], &mut script);
    let loaded = feed(load, Source::Stream(&mut input), "mysql");
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
    if err.one_line().contains("Lock wait timeout") {
        return Err(CommitFailed::incomplete(
            Error::new(
                Kind::Busy,
                format!(
                    "the tables {} are held by another session: the restore gave up waiting for them",
                    tables.join(", ")
                ),
            )
            .caused_by(err.one_line()),
        ));
    }
    Err(CommitFailed::incomplete(
        Error::tool(format!(
            "the tables {} were not all put back; they may be left dropped or half loaded",
            tables.join(", ")
        ))
        .caused_by(err.one_line()),
    ))
}

/// The foreign keys of other tables whose rows point at rows the restored `tables` lack now
/// (mysqldump loads with `FOREIGN_KEY_CHECKS=0`): `kids: 3 rows (foreign key kids_ibfk_1 to
/// parents)`.
pub(in crate::provider::mysql) fn dangling(my: &Mysql, tables: &[String]) -> Result<Vec<String>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let db = literal(&my.conn.dbname);
    let list = tables
        .iter()
        .map(|t| literal(t))
        .collect::<Vec<_>>()
        .join(", ");
    let keys = my.query_in(
        Some(&my.conn.dbname),
        &format!(
            "SELECT HEX(TABLE_NAME), HEX(CONSTRAINT_NAME), HEX(REFERENCED_TABLE_NAME), \
             GROUP_CONCAT(HEX(COLUMN_NAME) ORDER BY ORDINAL_POSITION), \
             GROUP_CONCAT(HEX(REFERENCED_COLUMN_NAME) ORDER BY ORDINAL_POSITION) \
             FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = {db} \
             AND REFERENCED_TABLE_SCHEMA = {db} AND REFERENCED_TABLE_NAME IN ({list}) \
             GROUP BY TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME ORDER BY 1, 2"
        ),
    )?;
    let mut found = Vec::new();
    for row in keys {
        let [
            Some(child),
            Some(name),
            Some(parent),
            Some(cols),
            Some(refs),
        ] = row.as_slice()
        else {
            continue;
        };
        let (Some(child), Some(name), Some(parent)) = (unhex(child), unhex(name), unhex(parent))
        else {
            continue;
        };
        let cols: Vec<String> = cols.split(',').filter_map(unhex).collect();
        let refs: Vec<String> = refs.split(',').filter_map(unhex).collect();
        if cols.is_empty() || cols.len() != refs.len() {
            continue;
        }
        let set = cols
            .iter()
            .map(|c| format!("c.{} IS NOT NULL", ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let on = cols
            .iter()
            .zip(&refs)
            .map(|(c, r)| format!("p.{} = c.{}", ident(r), ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let count = my.query_in(
            Some(&my.conn.dbname),
            &format!(
                "SELECT COUNT(*) FROM {} c WHERE {set} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {on})",
                ident(&child),
                ident(&parent)
            ),
        )?;
        let n = count
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default();
        if n != "0" && !n.is_empty() {
            found.push(format!(
                "{child}: {n} rows (foreign key {name} to {parent})"
            ));
        }
    }
    Ok(found)
}
