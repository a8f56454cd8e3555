//! Part of a backup put back: some of its tables into the environment's database (`restore
//! --table`), or all of it into a new database beside it (`restore --into`).
//!
//! Tables come from a scratch copy that holds the backup: `pg_dump --table` of the copy is fed
//! to one `psql` session on the database, between `BEGIN` and a `COMMIT` sent only once the dump
//! finished well. In that transaction the tables are dropped (never with CASCADE: a view that
//! depends on one stops it), the foreign keys of other tables that point at them are dropped and
//! made again after the load (validated against the restored rows), and the dump makes the
//! tables anew with their rows, indexes, constraints, triggers and owned sequences.

use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};

use super::commits::WithoutOwnCommits;
use super::key::schema_and_table;
use super::psql::{hex_utf8, ident, literal, unhex};
use super::restore::ScratchDb;
use super::{MAINTENANCE_DB, Postgres};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::provider::tool::{check_new_database, drain_stderr};
use crate::provider::{CommitFailed, Inspection, Provider, Source};
use crate::scratch::Purpose;

/// PostgreSQL's longest name, in bytes: a longer one is cut short by the server.
const NAME_MAX: usize = 63;

/// What psql prints once the transaction committed.
const COMMITTED: &str = "faber-db: tables committed";

/// Loads the dump into `name`, a new database, made like the environment's (see
/// [`ScratchDb::create`]); it is recorded and marked as a scratch database until the load is
/// done and counted, then unmarked and forgotten: the user's database from then on.
pub(super) fn restore_into(
    pg: &Postgres,
    name: &str,
    format: Format,
    source: Source<'_>,
    migrations_table: Option<&str>,
    jobs: u32,
) -> Result<Inspection> {
    check_new_name(pg, name)?;
    let mut scratch = ScratchDb::create_as(pg, Purpose::Restore, name.to_string())?;
    let copied = scratch.load(format, source, jobs)?;
    let inspection = pg.inspect_loaded(name, migrations_table, copied.as_ref())?;
    pg.query_in(
        MAINTENANCE_DB,
        &format!("COMMENT ON DATABASE {} IS NULL", ident(name)),
    )?;
    scratch.became_target();
    Ok(inspection)
}

/// `name` can be a new database's: a name the server keeps as it is, of no database yet, and a
/// role that may create it.
pub(super) fn check_new_name(pg: &Postgres, name: &str) -> Result<()> {
    // The server cuts a longer name short, which could name another database.
    let too_long = (name.len() > NAME_MAX)
        .then(|| format!("{name} is longer than PostgreSQL's {NAME_MAX} bytes"));
    let exists = too_long.is_none()
        && !name.is_empty()
        && !name.chars().any(char::is_control)
        && !pg
            .query_in(
                MAINTENANCE_DB,
                &format!(
                    "SELECT 1 FROM pg_database WHERE datname = {}",
                    literal(name)
                ),
            )?
            .is_empty();
    check_new_database(name, too_long, "63 bytes", exists)?;
    let privileges = pg.restore_privileges()?;
    if !privileges.create_database {
        return Err(Error::config(format!(
            "restore --into makes a new database, and {} may not create databases on this server",
            privileges.role
        ))
        .with_hint(format!(
            "run it as a role with CREATEDB (ALTER ROLE {} CREATEDB), or restore into another environment whose server allows it",
            privileges.role
        )));
    }
    Ok(())
}

/// Replaces tables `keys` of `pg`'s database with those of `from`'s, in one transaction.
pub(super) fn replace_tables(
    pg: &Postgres,
    from: &Postgres,
    keys: &[String],
) -> Result<(), CommitFailed> {
    let names = keys
        .iter()
        .map(|key| {
            schema_and_table(key)
                .ok_or_else(|| Error::config(format!("{key} does not name one table")))
        })
        .collect::<Result<Vec<_>>>()?;
    for db in [pg, from] {
        refuse_partitions(db, &names)?;
    }
    let (drop_keys, add_keys) = foreign_keys_of_others(pg, &names)?;
    let mut prelude = String::from("SET lock_timeout = '60s';\nBEGIN;\n");
    for statement in &drop_keys {
        prelude.push_str(statement);
        prelude.push_str(";\n");
    }
    let qualified: Vec<String> = names
        .iter()
        .map(|(s, t)| format!("{}.{}", ident(s), ident(t)))
        .collect();
    prelude.push_str(&format!("DROP TABLE IF EXISTS {};\n", qualified.join(", ")));
    let mut epilogue = String::new();
    for statement in &add_keys {
        epilogue.push_str(statement);
        epilogue.push_str(";\n");
    }
    epilogue.push_str(&format!("COMMIT;\nSELECT '{COMMITTED}';\n"));

    let tools = pg.tools()?;
    let mut psql = pg.command(&tools.psql, &pg.conn.dbname);
    psql.args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut psql = psql
        .spawn()
        .map_err(|e| Error::new(Kind::ToolNotFound, "cannot run psql").caused_by(e))?;
    let psql_err = drain_stderr(&mut psql);
    let psql_out = psql
        .stdout
        .take()
        .map(|out| std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default()));
    let stdin = psql.stdin.take().expect("stdin is piped");
    let dumped = feed(
        from,
        keys,
        &names,
        pg.is_superuser()?,
        stdin,
        &prelude,
        &epilogue,
    );
    let status = crate::interrupt::wait_for(&mut psql);
    let stderr = psql_err.join().unwrap_or_default();
    let out = psql_out.and_then(|h| h.join().ok()).unwrap_or_default();
    if out.contains(COMMITTED) {
        // Whatever else was said: the tables are in.
        return Ok(());
    }
    let status = status.map_err(|e| Error::tool("psql did not finish").caused_by(e))?;
    if let Err(e) = dumped {
        return Err(e.add_hint("nothing was changed").into());
    }
    if !status.success() || !out.contains(COMMITTED) {
        return Err(psql_failure(&stderr).into());
    }
    Ok(())
}

/// Feeds psql the transaction's start, `pg_dump` of the tables from `from`, and — once the dump
/// ended well — the end that commits it. Returns the dump's failure, if any (psql then reaches
/// the end of its input inside the transaction, which the server rolls back).
fn feed(
    from: &Postgres,
    keys: &[String],
    names: &[(String, String)],
    superuser: bool,
    mut stdin: ChildStdin,
    prelude: &str,
    epilogue: &str,
) -> Result<()> {
    // psql stopped reading: its own error says why.
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    if let Err(e) = stdin.write_all(prelude.as_bytes()) {
        return if gone(&e) {
            Ok(())
        } else {
            Err(Error::tool("cannot write to psql").caused_by(e))
        };
    }
    let tools = from.tools()?;
    let mut dump = from.command(&tools.pg_dump, &from.conn.dbname);
    dump.args(["--no-password", "--strict-names", "--format=plain"]);
    // Owners are kept when this role may set them, as a restore's load does.
    if !superuser {
        dump.arg("--no-owner");
    }
    for (schema, table) in names {
        dump.arg(format!("--table={}.{}", pattern(schema), pattern(table)));
    }
    let mut child: Child = dump
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(Kind::ToolNotFound, "cannot run pg_dump").caused_by(e))?;
    let dump_err = drain_stderr(&mut child);
    let mut script = child.stdout.take().expect("stdout is piped");
    let mut without = WithoutOwnCommits::new(stdin);
    let copied = crate::pipeline::copy(&mut script, &mut without);
    let (mut stdin, finished) = without.finish();
    if copied.is_err() {
        let _ = child.kill();
    }
    drop(script);
    let status = crate::interrupt::wait_for(&mut child);
    let stderr = dump_err.join().unwrap_or_default();
    let dumped_well = matches!(&status, Ok(s) if s.success());
    if !dumped_well {
        let mut err = crate::provider::tool::failure("pg_dump", &stderr);
        err = Error::tool(format!(
            "the tables {} could not be read from the backup's scratch copy",
            keys.join(", ")
        ))
        .caused_by(err.one_line());
        return Err(err);
    }
    if let Err(e) = copied.and(finished) {
        return if gone(&e) {
            Ok(())
        } else {
            Err(Error::tool("cannot write to psql").caused_by(e))
        };
    }
    match stdin.write_all(epilogue.as_bytes()) {
        Err(e) if !gone(&e) => Err(Error::tool("cannot write to psql").caused_by(e)),
        _ => Ok(()),
    }
}

/// `name` as a pg_dump pattern that matches it alone: in double quotes, where every character
/// stands for itself and `""` for a double quote.
pub(super) fn pattern(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Refuses what a table restore cannot put back whole: a partitioned table (dropping it drops
/// its partitions) or a partition (its indexes and constraints are its parent's).
fn refuse_partitions(db: &Postgres, names: &[(String, String)]) -> Result<()> {
    let parted = tables_where(db, names, "c.relkind = 'p' OR c.relispartition")?;
    if parted.is_empty() {
        return Ok(());
    }
    Err(Error::config(format!(
        "{} {} partitioned or a partition: a table restore puts back plain tables",
        parted.join(", "),
        if parted.len() == 1 { "is" } else { "are" }
    ))
    .with_hint("restore the backup --into a new database and copy the rows across by hand"))
}

/// Refuses, before anything is loaded or backed up, tables of `pg`'s database that a table
/// restore could not replace: partitioned ones and partitions, and those a view depends on
/// (the drop would fail).
pub(super) fn check_replaceable(pg: &Postgres, keys: &[String]) -> Result<()> {
    let names = keys
        .iter()
        .filter_map(|key| schema_and_table(key))
        .collect::<Vec<_>>();
    if names.is_empty() {
        return Ok(());
    }
    refuse_partitions(pg, &names)?;
    let viewed = tables_where(
        pg,
        &names,
        "EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid \
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = c.oid AND w.ev_class <> c.oid)",
    )?;
    if viewed.is_empty() {
        return Ok(());
    }
    Err(Error::tool(format!(
        "views depend on {}: a table restore drops and makes the table again, which they would not survive; nothing was changed",
        viewed.join(", ")
    ))
    .with_hint("restore the backup --into a new database and copy the rows across by hand, or name the tables only views of other tables use"))
}

/// The selected tables of `db` for which `condition` (on `pg_class c`) holds.
fn tables_where(db: &Postgres, names: &[(String, String)], condition: &str) -> Result<Vec<String>> {
    let rows = db.query_in(
        &db.conn.dbname,
        &format!(
            "SELECT {}, {} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE ({condition}) AND (n.nspname, c.relname) IN ({}) ORDER BY 1, 2",
            hex_utf8("n.nspname"),
            hex_utf8("c.relname"),
            pairs(names)
        ),
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| match row.as_slice() {
            [Some(s), Some(t)] => Some(super::key::table_key(&unhex(s)?, &unhex(t)?)),
            _ => None,
        })
        .collect())
}

/// `(schema, table), …` as SQL row literals.
fn pairs(names: &[(String, String)]) -> String {
    names
        .iter()
        .map(|(s, t)| format!("({}, {})", literal(s), literal(t)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The foreign keys of tables outside the selection that point at tables in it: the statements
/// that drop them, and those that make them again (names written in full, for pg_dump's empty
/// search path). A partitioned table's key is dropped and made once: the copies its partitions
/// inherit (`conparentid` set) go and come with it.
fn foreign_keys_of_others(
    pg: &Postgres,
    names: &[(String, String)],
) -> Result<(Vec<String>, Vec<String>)> {
    let selected = pairs(names);
    let rows = pg.query_in(
        &pg.conn.dbname,
        &format!(
            "SET search_path = ''; \
             SELECT {}, {} FROM pg_constraint k \
             JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace \
             JOIN pg_class r ON r.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace \
             WHERE k.contype = 'f' AND k.conparentid = 0 AND (rn.nspname, r.relname) IN ({selected}) \
             AND (cn.nspname, c.relname) NOT IN ({selected}) ORDER BY k.oid",
            hex_utf8("format('ALTER TABLE %I.%I DROP CONSTRAINT %I', cn.nspname, c.relname, k.conname)"),
            hex_utf8("format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', cn.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid))"),
        ),
    )?;
    let mut drops = Vec::new();
    let mut adds = Vec::new();
    for row in rows {
        if let [Some(d), Some(a)] = row.as_slice()
            && let (Some(d), Some(a)) = (unhex(d), unhex(a))
        {
            drops.push(d);
            adds.push(a);
        }
    }
    Ok((drops, adds))
}

/// Why the session that replaces the tables failed (nothing was changed: its transaction never
/// committed), from what psql printed.
fn psql_failure(stderr: &str) -> Error {
    let lines = crate::provider::tool::failure("psql", stderr);
    let text = lines.one_line();
    let mut err = Error::tool("the tables could not be replaced; nothing was changed");
    for c in lines.causes() {
        err = err.caused_by(c.as_str().replace("ERROR:  ", ""));
    }
    if text.contains("depend") {
        err.with_hint("other objects (views, say) depend on these tables; restore the backup --into a new database and copy the rows across by hand, or name the dependent tables too")
    } else if text.contains("violates foreign key constraint") {
        err.with_hint("rows of other tables refer to rows the backup's tables lack; restore those tables too (--table), or restore the backup --into a new database and copy the rows across by hand")
    } else if text.contains("lock timeout") {
        Error::new(Kind::Busy, err.message())
            .caused_by(text)
            .with_hint("sessions hold these tables; stop the application that uses them, then restore again")
    } else {
        err
    }
}
