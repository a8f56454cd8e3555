//! Restoring PostgreSQL in place, for a role that owns its database but may not create databases
//! (a managed service's database owner). Everything happens in ONE transaction, on one psql
//! session: the objects the role owns in the database's schemas are dropped (its own schemas
//! but `public` whole, with what is in them; in `public` and in other roles' schemas, its own
//! tables, views, sequences, routines and types), the dump is loaded, the row counts are compared
//! with the manifest, and only then COMMIT is sent. DDL is transactional: any failure — a
//! statement, the stream, a count, a signal, faber-db killed — leaves the database as it was.
//!
//! Objects of other roles are never dropped: a guard in the same transaction lists them before
//! the drops and fails the transaction if any is gone after (a `CASCADE` that reached a view of
//! theirs on one of our tables, say). A schema of the role's that holds objects of other roles is
//! found before anything starts, and the in-place method is then not offered
//! ([`privileges`]). The SQL sent around the dump is in `script`.

mod script;

use std::io::Write;
use std::process::{ChildStdin, Stdio};

use super::commits::WithoutOwnCommits;
use super::{MAINTENANCE_DB, Postgres, ident, literal};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::method::{Blocked, RestorePrivileges};
use crate::provider::tool::drain_stderr;
use crate::provider::{CommitFailed, Committed, InPlace, Source};
use script::{COMMIT_MARK, COUNT_MARK, GUARD_MARK, epilogue, prelude};

/// The schemas that hold user objects (`n`: `pg_namespace`).
const USER_SCHEMA: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'";

/// What the connected role may do towards restoring its database.
pub(super) fn privileges(pg: &Postgres) -> Result<RestorePrivileges> {
    let target = &pg.conn.dbname;
    let t = literal(target);
    let rows = pg.query_in(
        MAINTENANCE_DB,
        &format!(
            "SELECT current_user, r.rolsuper::text, r.rolcreatedb::text, \
             (SELECT pg_get_userbyid(d.datdba) FROM pg_database d WHERE d.datname = {t}), \
             (SELECT pg_has_role(d.datdba, 'USAGE')::text FROM pg_database d WHERE d.datname = {t}), \
             (SELECT has_database_privilege(d.oid, 'CREATE')::text FROM pg_database d WHERE d.datname = {t}), \
             (SELECT has_database_privilege(d.oid, 'TEMPORARY')::text FROM pg_database d WHERE d.datname = {t}) \
             FROM pg_roles r WHERE r.rolname = current_user"
        ),
    )?;
    let row = rows.into_iter().next().unwrap_or_default();
    let get = |i: usize| row.get(i).cloned().flatten();
    let role = get(0).unwrap_or_default();
    let superuser = get(1).as_deref() == Some("true");
    let create_database = superuser || get(2).as_deref() == Some("true");
    let owner = get(3);
    let owns = superuser || get(4).as_deref() == Some("true");
    let may_create_schemas = superuser || get(5).as_deref() == Some("true");
    // The commit guard of the in-place transaction is a temporary table's trigger.
    let may_create_temp = superuser || get(6).as_deref() == Some("true");
    let (r, d) = (ident(&role), ident(target));
    let swap = if !create_database {
        Some(Blocked {
            reason: format!("role {role} may not create databases (no CREATEDB)"),
            missing_grant: Some(format!("ALTER ROLE {r} CREATEDB")),
        })
    } else if owner.is_some() && !owns {
        Some(Blocked {
            reason: format!(
                "role {role} does not own database {target} (its owner is {}), which a swap renames",
                owner.as_deref().unwrap_or("?")
            ),
            missing_grant: Some(format!("ALTER DATABASE {d} OWNER TO {r}")),
        })
    } else {
        None
    };
    let in_place = if owner.is_none() {
        Some(Blocked {
            reason: format!(
                "database {target} does not exist, and only a role that may create databases can make it"
            ),
            missing_grant: Some(format!("ALTER ROLE {r} CREATEDB")),
        })
    } else if !may_create_schemas {
        Some(Blocked {
            reason: format!("role {role} may not create schemas in database {target}"),
            missing_grant: Some(format!("GRANT CREATE ON DATABASE {d} TO {r}")),
        })
    } else if !may_create_temp {
        Some(Blocked {
            reason: format!(
                "role {role} may not create temporary tables in database {target}, which the \
                 in-place transaction's guard against a COMMIT inside the backup is"
            ),
            missing_grant: Some(format!("GRANT TEMPORARY ON DATABASE {d} TO {r}")),
        })
    } else {
        let others = others_in_own_schemas(pg)?;
        (!others.is_empty()).then(|| Blocked {
            reason: format!(
                "schemas role {role} owns in {target} hold objects of other roles, which an in-place \
                 restore would have to drop with their schema: {}",
                others.join(", ")
            ),
            missing_grant: Some(format!(
                "make {r} their owner (ALTER … OWNER TO {r}), or have their owners move or drop them"
            )),
        })
    };
    Ok(RestorePrivileges {
        role,
        create_database,
        swap,
        in_place,
    })
}

/// Up to five objects of other roles in the schemas (but `public`) the role owns: dropping such a
/// schema, as an in-place restore does before the dump makes it again, would drop them too.
fn others_in_own_schemas(pg: &Postgres) -> Result<Vec<String>> {
    let rows = pg.query_in(
        &pg.conn.dbname,
        &format!(
            "SELECT pg_describe_object(o.classid, o.objid, 0) || ' (owner ' || pg_get_userbyid(o.owner) || ')' \
             FROM (SELECT 'pg_class'::regclass::oid AS classid, c.oid AS objid, c.relnamespace AS ns, \
                          c.relowner AS owner FROM pg_class c WHERE c.relkind NOT IN ('i', 'I', 't') \
                   UNION ALL SELECT 'pg_proc'::regclass::oid, p.oid, p.pronamespace, p.proowner FROM pg_proc p \
                   UNION ALL SELECT 'pg_type'::regclass::oid, t.oid, t.typnamespace, t.typowner FROM pg_type t \
                             WHERE t.typtype IN ('e', 'r', 'd')) o \
             JOIN pg_namespace n ON n.oid = o.ns \
             WHERE {USER_SCHEMA} AND n.nspname <> 'public' AND pg_has_role(n.nspowner, 'USAGE') \
             AND NOT pg_has_role(o.owner, 'USAGE') \
             AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = o.classid AND e.objid = o.objid AND e.deptype = 'e') \
             ORDER BY 1 LIMIT 5"
        ),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// Replaces the target's content with the dump in one transaction (see the module's comment).
pub(super) fn restore(
    pg: &Postgres,
    format: Format,
    source: Source<'_>,
    migrations_table: Option<&str>,
    options: &InPlace<'_>,
) -> Result<Committed, CommitFailed> {
    if !matches!(format, Format::Sql | Format::Custom | Format::Directory) {
        return Err(Error::config(format!(
            "{format} backups cannot be restored into PostgreSQL"
        ))
        .into());
    }
    let target = pg.conn.dbname.clone();
    let tools = pg.tools()?;
    super::restore::clear_sessions(pg, options.terminate_connections)?;
    let no_owner = format != Format::Sql && !pg.is_superuser()?;
    let mut psql = pg.command(&tools.psql, &target);
    psql.env("PGCLIENTENCODING", "UTF8")
        .args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = psql.spawn().map_err(|e| {
        Error::new(
            Kind::ToolNotFound,
            format!("cannot run {}", tools.psql.display()),
        )
        .caused_by(e)
    })?;
    let stderr_reader = drain_stderr(&mut child);
    let stdin = child.stdin.take().expect("stdin is piped");
    crate::child::widen_pipe(&stdin);
    let loaded = match format {
        Format::Sql => load_plain(stdin, source),
        _ => load_archive(pg, &tools.pg_restore, no_owner, stdin, source),
    };
    // The dump is all in: from COMMIT on, a signal waits for psql (the commit is not cut short
    // halfway, and the answer is known).
    let mut hold = None;
    let mut commit_sent = false;
    let mut failure = None;
    match loaded {
        Ok(mut stdin) => {
            hold = Some(crate::interrupt::hold());
            commit_sent = stdin
                .write_all(epilogue(options.expected).as_bytes())
                .and_then(|()| stdin.flush())
                .is_ok();
        }
        // psql stopped reading: its own words say why.
        Err(None) => {}
        Err(Some(e)) => failure = Some(e),
    }
    // Without COMMIT, psql reaches the end of its input inside the transaction, which the
    // server then rolls back.
    let status = crate::interrupt::wait_for(&mut child);
    drop(hold);
    let stderr = stderr_reader.join().unwrap_or_default();
    let unchanged = |e: Error| {
        CommitFailed::from(e.add_hint(
            "nothing was changed: the in-place restore runs in one transaction, which was rolled back",
        ))
    };
    let status = status.map_err(|e| unchanged(Error::tool("psql did not finish").caused_by(e)))?;
    if !status.success() {
        return Err(unchanged(psql_failure(&target, &stderr)));
    }
    if let Some(e) = failure {
        return Err(unchanged(e));
    }
    if !commit_sent {
        return Err(unchanged(Error::tool(format!(
            "the in-place restore of {target} stopped before its end"
        ))));
    }
    crate::testpoint::pause("restore:in-place-committed");
    let in_place = |e: Error| CommitFailed::from(e.add_hint("the restore is in place"));
    let mut inspection = pg
        .inspect_db(&target, migrations_table, true)
        .map_err(in_place)?;
    // Tables of other roles the backup does not hold were kept, not restored.
    let mut kept = Vec::new();
    for key in tables_of_others(pg).map_err(in_place)? {
        if options.expected.is_some_and(|e| !e.contains_key(&key))
            && inspection.tables.remove(&key).is_some()
        {
            kept.push(key);
        }
    }
    Ok(Committed {
        inspection,
        replaced: None,
        kept,
    })
}

/// The manifest keys of the tables in the database that other roles own.
fn tables_of_others(pg: &Postgres) -> Result<Vec<String>> {
    let rows = pg.query_in(
        &pg.conn.dbname,
        &format!(
            "SELECT {}, {} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {USER_SCHEMA} AND c.relkind IN ('r', 'p') AND NOT pg_has_role(c.relowner, 'USAGE')",
            super::hex_utf8("n.nspname"),
            super::hex_utf8("c.relname")
        ),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [Some(s), Some(t)] => Some(super::key::table_key(&super::unhex(s)?, &super::unhex(t)?)),
            _ => None,
        })
        .collect())
}

/// Why the in-place psql session failed, from what it printed.
fn psql_failure(target: &str, stderr: &str) -> Error {
    let lines = crate::provider::tool::failure("psql", stderr);
    let text = lines.one_line();
    let mut err = if text.contains(COMMIT_MARK) {
        Error::tool(format!(
            "the in-place restore of {target} stopped: the backup ends the transaction itself \
             before its end, which would have made half of it permanent"
        ))
    } else if text.contains(COUNT_MARK) {
        Error::verification(format!(
            "the backup loaded into {target}, but its row counts differ from the manifest"
        ))
    } else {
        Error::tool(format!("the in-place restore of {target} failed"))
    };
    for c in lines.causes() {
        err = err.caused_by(c.as_str().replace("ERROR:  ", ""));
    }
    if text.contains(COMMIT_MARK) {
        err.with_hint(
            "restore it as a role with CREATEDB that owns the database (a swap loads it into a \
             scratch database), or report the statement above to faber-db",
        )
    } else if text.contains(GUARD_MARK) {
        err.with_hint(
            "objects of other roles depend on objects this role owns; have their owners drop them \
             first, or restore as a role with CREATEDB that owns the database (a swap replaces it whole)",
        )
    } else if text.contains("already exists") {
        err.with_hint(
            "the backup makes an object that another role owns in this database, which an in-place \
             restore keeps; have its owner drop it, or restore as a role with CREATEDB that owns the database",
        )
    } else if text.contains("permission denied") || text.contains("must be owner") {
        err.with_hint("the role lacks a privilege the backup's statements need (an owner it may not set?); restore as the database's owner or a superuser")
    } else {
        err
    }
}

/// Feeds psql the transaction's start and a plain dump; returns its stdin for the end. `Err(None)`:
/// psql stopped reading.
fn load_plain(
    mut stdin: ChildStdin,
    source: Source<'_>,
) -> std::result::Result<ChildStdin, Option<Error>> {
    let gone = |e: std::io::Error| {
        (e.kind() != std::io::ErrorKind::BrokenPipe).then(|| {
            Error::verification("the backup's data stream is unreadable; nothing was changed")
                .caused_by(e)
        })
    };
    stdin.write_all(prelude().as_bytes()).map_err(gone)?;
    let mut script = WithoutOwnCommits::new(stdin);
    let mut file;
    let reader: &mut dyn std::io::Read = match source {
        Source::Stream(s) => s,
        Source::Path(p) => {
            file = std::fs::File::open(p)
                .map_err(|e| Some(Error::io(Kind::Verification, "cannot open", p, e)))?;
            &mut file
        }
    };
    let mut tail = TailReader::new(reader);
    crate::pipeline::copy(
        &mut crate::testpoint::PauseMidway::new(&mut tail, "restore:in-place-load"),
        &mut script,
    )
    .map_err(gone)?;
    let (stdin, finished) = script.finish();
    finished.map_err(gone)?;
    if !tail.ends_with_marker(super::DUMP_TRAILER) {
        return Err(Some(Error::verification(
            "the dump's completion trailer is missing; nothing was changed",
        )));
    }
    Ok(stdin)
}

/// Feeds psql the transaction's start and the script pg_restore makes of an archive; returns its
/// stdin for the end once pg_restore succeeded. `Err(None)`: psql stopped reading.
fn load_archive(
    pg: &Postgres,
    pg_restore: &std::path::Path,
    no_owner: bool,
    stdin: ChildStdin,
    source: Source<'_>,
) -> std::result::Result<ChildStdin, Option<Error>> {
    let mut cmd = pg.command(pg_restore, &pg.conn.dbname);
    cmd.arg("--file=-");
    if no_owner {
        cmd.arg("--no-owner");
    }
    let stream = match source {
        Source::Stream(s) => {
            cmd.stdin(Stdio::piped());
            Some(s)
        }
        Source::Path(p) => {
            cmd.arg(p);
            None
        }
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Some(Error::new(Kind::ToolNotFound, "cannot run pg_restore").caused_by(e)))?;
    let stderr_reader = drain_stderr(&mut child);
    let script = child.stdout.take().expect("stdout is piped");
    let into = child.stdin.take();
    std::thread::scope(|scope| {
        // The script goes to psql on a thread of its own while the archive goes to pg_restore.
        let copier = scope.spawn(move || {
            let mut stdin = stdin;
            let mut script = script;
            if let Err(e) = stdin.write_all(prelude().as_bytes()) {
                return (stdin, Err(e));
            }
            let mut without = WithoutOwnCommits::new(stdin);
            let copied = crate::pipeline::copy(&mut script, &mut without).map(|_| ());
            // The writer back, whatever is left in the filter written first.
            let (stdin, finished) = without.finish();
            (stdin, copied.and(finished))
        });
        let fed = match (stream, into) {
            (Some(stream), Some(mut into)) => {
                crate::child::widen_pipe(&into);
                crate::pipeline::copy(stream, &mut into).map(|_| ())
            }
            _ => Ok(()),
        };
        let status = crate::interrupt::wait_for(&mut child);
        let (stdin, copied) = copier
            .join()
            .map_err(|_| Some(Error::tool("the copy to psql failed")))?;
        let stderr = stderr_reader.join().unwrap_or_default();
        if let Err(e) = fed
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(Some(
                Error::verification("the backup's data stream is unreadable; nothing was changed")
                    .caused_by(e),
            ));
        }
        let status =
            status.map_err(|e| Some(Error::tool("pg_restore did not finish").caused_by(e)))?;
        if let Err(e) = copied {
            return Err((e.kind() != std::io::ErrorKind::BrokenPipe)
                .then(|| Error::tool("cannot give psql the restore script").caused_by(e)));
        }
        if !status.success() {
            return Err(Some(crate::provider::tool::failure("pg_restore", &stderr)));
        }
        Ok(stdin)
    })
}
