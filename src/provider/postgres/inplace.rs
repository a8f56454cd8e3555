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
//! ([`privileges`]).

use std::io::Write;
use std::process::{ChildStdin, Stdio};

use super::commits::WithoutOwnCommits;
use super::{MAINTENANCE_DB, Postgres, ident, literal};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::method::{Blocked, RestorePrivileges};
use crate::provider::tool::{drain_stderr, random_suffix};
use crate::provider::{CommitFailed, Committed, InPlace, Source, Tables};

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

/// The objects the guard keeps: every object of another role in the user schemas, the columns
/// of its tables and composite types (a `CASCADE` from a type of the role's drops a column of
/// that type, with its data, and leaves the table), what hangs on another role's tables
/// (constraints, triggers, defaults, policies, rules), and its event triggers and extensions, by
/// description (a relation's row type and array types go with what they belong to). A SQL
/// expression giving a sorted `text[]`.
const OTHERS_OBJECTS: &str = "(SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM (\
    SELECT pg_describe_object('pg_class'::regclass, c.oid, 0) FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE USER_SCHEMA AND NOT pg_has_role(c.relowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_proc'::regclass, p.oid, 0) FROM pg_proc p \
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE USER_SCHEMA AND NOT pg_has_role(p.proowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_type'::regclass, t.oid, 0) FROM pg_type t \
        JOIN pg_namespace n ON n.oid = t.typnamespace WHERE USER_SCHEMA AND NOT pg_has_role(t.typowner, 'USAGE') \
        AND t.typrelid = 0 AND t.typcategory <> 'A' \
    UNION ALL SELECT pg_describe_object('pg_namespace'::regclass, n.oid, 0) FROM pg_namespace n \
        WHERE USER_SCHEMA AND NOT pg_has_role(n.nspowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_constraint'::regclass, k.oid, 0) FROM pg_constraint k \
        JOIN pg_class c ON c.oid = k.conrelid WHERE NOT pg_has_role(c.relowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_trigger'::regclass, g.oid, 0) FROM pg_trigger g \
        JOIN pg_class c ON c.oid = g.tgrelid WHERE NOT pg_has_role(c.relowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_attrdef'::regclass, a.oid, 0) FROM pg_attrdef a \
        JOIN pg_class c ON c.oid = a.adrelid WHERE NOT pg_has_role(c.relowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_policy'::regclass, y.oid, 0) FROM pg_policy y \
        JOIN pg_class c ON c.oid = y.polrelid WHERE NOT pg_has_role(c.relowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_rewrite'::regclass, w.oid, 0) FROM pg_rewrite w \
        JOIN pg_class c ON c.oid = w.ev_class WHERE NOT pg_has_role(c.relowner, 'USAGE') AND w.rulename <> '_RETURN' \
    UNION ALL SELECT pg_describe_object('pg_class'::regclass, c.oid, a.attnum) FROM pg_attribute a \
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE USER_SCHEMA AND c.relkind IN ('r', 'p', 'f', 'c') AND a.attnum > 0 AND NOT a.attisdropped \
        AND NOT pg_has_role(c.relowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_operator'::regclass, o.oid, 0) FROM pg_operator o \
        JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE USER_SCHEMA AND NOT pg_has_role(o.oprowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_opfamily'::regclass, f.oid, 0) FROM pg_opfamily f \
        JOIN pg_namespace n ON n.oid = f.opfnamespace WHERE USER_SCHEMA AND NOT pg_has_role(f.opfowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_opclass'::regclass, k.oid, 0) FROM pg_opclass k \
        JOIN pg_namespace n ON n.oid = k.opcnamespace WHERE USER_SCHEMA AND NOT pg_has_role(k.opcowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_collation'::regclass, l.oid, 0) FROM pg_collation l \
        JOIN pg_namespace n ON n.oid = l.collnamespace WHERE USER_SCHEMA AND NOT pg_has_role(l.collowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_conversion'::regclass, v.oid, 0) FROM pg_conversion v \
        JOIN pg_namespace n ON n.oid = v.connamespace WHERE USER_SCHEMA AND NOT pg_has_role(v.conowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_ts_config'::regclass, g.oid, 0) FROM pg_ts_config g \
        JOIN pg_namespace n ON n.oid = g.cfgnamespace WHERE USER_SCHEMA AND NOT pg_has_role(g.cfgowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_ts_dict'::regclass, d.oid, 0) FROM pg_ts_dict d \
        JOIN pg_namespace n ON n.oid = d.dictnamespace WHERE USER_SCHEMA AND NOT pg_has_role(d.dictowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_statistic_ext'::regclass, x.oid, 0) FROM pg_statistic_ext x \
        JOIN pg_namespace n ON n.oid = x.stxnamespace WHERE USER_SCHEMA AND NOT pg_has_role(x.stxowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_event_trigger'::regclass, e.oid, 0) FROM pg_event_trigger e \
        WHERE NOT pg_has_role(e.evtowner, 'USAGE') \
    UNION ALL SELECT pg_describe_object('pg_extension'::regclass, e.oid, 0) FROM pg_extension e \
        WHERE NOT pg_has_role(e.extowner, 'USAGE') \
    ) s(x))";

/// Not an extension's member (`cls`: its catalog, `id`: its oid).
fn own_object(cls: &str, id: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cls}'::regclass AND e.objid = {id} AND e.deptype = 'e')"
    )
}

/// The start of the transaction: BEGIN, then the drops of the role's own objects, guarded.
fn prelude() -> String {
    let others = OTHERS_OBJECTS.replace("USER_SCHEMA", USER_SCHEMA);
    let schemas = format!(
        "SELECT format('%I', n.nspname) AS q FROM pg_namespace n WHERE {USER_SCHEMA} \
         AND n.nspname <> 'public' AND pg_has_role(n.nspowner, 'USAGE') AND {}",
        own_object("pg_namespace", "n.oid")
    );
    let relations = format!(
        "SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
         WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS k, \
         format('%I.%I', n.nspname, c.relname) AS q \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {USER_SCHEMA} AND c.relkind IN ('v', 'm', 'f', 'p', 'r', 'S') \
         AND pg_has_role(c.relowner, 'USAGE') AND {} \
         ORDER BY CASE c.relkind WHEN 'v' THEN 0 WHEN 'm' THEN 1 WHEN 'f' THEN 2 WHEN 'p' THEN 3 \
         WHEN 'r' THEN 4 ELSE 5 END, 2",
        own_object("pg_class", "c.oid")
    );
    let routines = format!(
        "SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS q \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE {USER_SCHEMA} AND pg_has_role(p.proowner, 'USAGE') AND {} ORDER BY 1",
        own_object("pg_proc", "p.oid")
    );
    let types = format!(
        "SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS k, \
         format('%I.%I', n.nspname, t.typname) AS q \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE {USER_SCHEMA} AND pg_has_role(t.typowner, 'USAGE') AND {} \
         AND (t.typtype IN ('e', 'r', 'd') OR (t.typtype = 'c' AND \
              (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')) ORDER BY 2",
        own_object("pg_type", "t.oid")
    );
    format!(
        "BEGIN;\n\
         SET LOCAL lock_timeout = '30s';\n\
         SET LOCAL client_min_messages = warning;\n\
         {COMMIT_GUARD}\
         DO $faber_in_place$\n\
         DECLARE r record; kept text[]; still text[]; gone text;\n\
         BEGIN\n\
           PERFORM pg_catalog.set_config('search_path', '', true);\n\
           kept := {others};\n\
           FOR r IN {schemas} LOOP\n\
             EXECUTE 'DROP SCHEMA ' || r.q || ' CASCADE';\n\
           END LOOP;\n\
           FOR r IN {relations} LOOP\n\
             EXECUTE 'DROP ' || r.k || ' IF EXISTS ' || r.q || ' CASCADE';\n\
           END LOOP;\n\
           FOR r IN {routines} LOOP\n\
             EXECUTE 'DROP ROUTINE IF EXISTS ' || r.q || ' CASCADE';\n\
           END LOOP;\n\
           FOR r IN {types} LOOP\n\
             EXECUTE 'DROP ' || r.k || ' IF EXISTS ' || r.q || ' CASCADE';\n\
           END LOOP;\n\
           PERFORM pg_catalog.lo_unlink(l.oid) FROM pg_catalog.pg_largeobject_metadata l \
             WHERE pg_has_role(l.lomowner, 'USAGE');\n\
           still := {others};\n\
           SELECT string_agg(x, ', ') INTO gone FROM unnest(kept) x WHERE x <> ALL (still);\n\
           IF gone IS NOT NULL THEN\n\
             RAISE EXCEPTION '{GUARD_MARK}: %', gone;\n\
           END IF;\n\
         END\n\
         $faber_in_place$;\n"
    )
}

/// The commit guard: a deferred trigger that fails any COMMIT of the transaction before the
/// epilogue has compared the row counts and set `faber.in_place_done` — a COMMIT inside the
/// dump (pg_dump's around large objects' data, which [`WithoutOwnCommits`] leaves out; any other)
/// rolls everything back instead of making half a load permanent.
const COMMIT_GUARD: &str = "CREATE TEMP TABLE faber_in_place_commit (x int) ON COMMIT DROP;\n\
    CREATE FUNCTION pg_temp.faber_in_place_commit() RETURNS trigger LANGUAGE plpgsql AS $faber_commit$\n\
    BEGIN\n\
      IF pg_catalog.current_setting('faber.in_place_done', true) IS DISTINCT FROM 'yes' THEN\n\
        RAISE EXCEPTION 'faber-db: the backup commits on its own before its end';\n\
      END IF;\n\
      RETURN NULL;\n\
    END\n\
    $faber_commit$;\n\
    CREATE CONSTRAINT TRIGGER faber_in_place_commit AFTER INSERT ON pg_temp.faber_in_place_commit \
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.faber_in_place_commit();\n\
    INSERT INTO pg_temp.faber_in_place_commit VALUES (1);\n";
/// What the commit guard's failure starts with.
const COMMIT_MARK: &str = "faber-db: the backup commits on its own before its end";
/// The end of the commit guard: the only COMMIT it lets through is the one after this.
const MAY_COMMIT: &str = "SET LOCAL faber.in_place_done = 'yes';\nCOMMIT;\n";

/// What the guard's failure starts with.
const GUARD_MARK: &str = "faber-db: an in-place restore would drop objects of other roles";
/// What a count that differs starts with.
const COUNT_MARK: &str = "faber-db: row counts differ from the manifest";

/// The end of the transaction: the row counts compared with `expected` (those counted exactly,
/// of tables a key names unambiguously), then COMMIT.
fn epilogue(expected: Option<&Tables>) -> String {
    let mut checks = String::new();
    for (key, stats) in expected.into_iter().flatten() {
        if stats.estimated {
            continue;
        }
        let Some((schema, table)) = super::key::schema_and_table(key) else {
            continue;
        };
        let qualified = format!("{}.{}", ident(&schema), ident(&table));
        checks.push_str(&format!(
            "IF to_regclass({q}) IS NULL THEN bad := bad || ', ' || {k} || ' missing'; \
             ELSE EXECUTE {count} INTO n; \
             IF n <> {rows} THEN bad := bad || ', ' || {k} || ' ' || {rows} || ' → ' || n; END IF; END IF;\n",
            q = literal(&qualified),
            k = literal(key),
            count = literal(&format!("SELECT count(*) FROM {qualified}")),
            rows = stats.rows,
        ));
    }
    if checks.is_empty() {
        return MAY_COMMIT.to_string();
    }
    // A dollar quote that nothing inside it holds.
    let tag = loop {
        let tag = format!("$faber_{}$", random_suffix());
        if !checks.contains(&tag) {
            break tag;
        }
    };
    format!(
        "DO {tag}\nDECLARE n bigint; bad text := '';\nBEGIN\n{checks}\
         IF bad <> '' THEN RAISE EXCEPTION '{COUNT_MARK}: %', substr(bad, 3); END IF;\nEND\n{tag};\n\
         {MAY_COMMIT}"
    )
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
        err = err.caused_by(c.replace("ERROR:  ", ""));
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
