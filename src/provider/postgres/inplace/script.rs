//! The SQL around the dump in the in-place transaction: the prelude that drops the role's own
//! objects under a guard for everyone else's, the guard against a COMMIT inside the dump, and
//! the epilogue that compares the row counts before the one COMMIT.

use super::super::{ident, key, literal};
use super::USER_SCHEMA;
use crate::provider::Tables;
use crate::provider::tool::random_suffix;

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
pub(super) fn own_object(cls: &str, id: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cls}'::regclass AND e.objid = {id} AND e.deptype = 'e')"
    )
}

/// The start of the transaction: BEGIN, then the drops of the role's own objects, guarded.
pub(super) fn prelude() -> String {
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
/// dump (pg_dump's around large objects' data, which
/// [`WithoutOwnCommits`](super::super::commits::WithoutOwnCommits) leaves out; any other) rolls
/// everything back instead of making half a load permanent.
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
pub(super) const COMMIT_MARK: &str = "faber-db: the backup commits on its own before its end";
/// The end of the commit guard: the only COMMIT it lets through is the one after this.
const MAY_COMMIT: &str = "SET LOCAL faber.in_place_done = 'yes';\nCOMMIT;\n";

/// What the guard's failure starts with.
pub(super) const GUARD_MARK: &str =
    "faber-db: an in-place restore would drop objects of other roles";
/// What a count that differs starts with.
pub(super) const COUNT_MARK: &str = "faber-db: row counts differ from the manifest";

/// The end of the transaction: the row counts compared with `expected` (those counted exactly,
/// of tables whose data the backup holds and a key names unambiguously), then COMMIT.
pub(super) fn epilogue(expected: Option<&Tables>) -> String {
    let mut checks = String::new();
    for (key, stats) in expected.into_iter().flatten() {
        if !stats.is_comparable() {
            continue;
        }
        let Some((schema, table)) = key::schema_and_table(key) else {
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
