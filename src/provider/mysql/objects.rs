//! The views, triggers, routines and events of a MySQL database. `RENAME TABLE` moves a table to
//! another database with its rows, indexes, foreign keys and AUTO_INCREMENT counter, but none of
//! these: views, routines and events stay where they are, and a table that has triggers cannot
//! move at all ("Trigger in wrong schema"). So a restore reads them in the scratch database its
//! dump was loaded into and makes them again in the target as mysqldump does: each from the bytes
//! the server keeps of its `CREATE` statement (in the character set it was written in, read with
//! `character_set_results = binary`), with its DEFINER, under its own `sql_mode`, character set,
//! collation and (events) time zone.

use super::{Mysql, ident, literal};
use crate::error::{Error, Result};

/// A view, trigger, routine or event, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Named {
    /// `TRIGGER`, `EVENT`, `FUNCTION`, `PACKAGE`, `PACKAGE BODY`, `PROCEDURE` or `VIEW`.
    pub kind: &'static str,
    pub name: String,
}

impl Named {
    /// The statement that drops it from database `db`.
    fn drop_in(&self, db: &str) -> String {
        format!(
            "DROP {} IF EXISTS {}.{};\n",
            self.kind,
            ident(db),
            ident(&self.name)
        )
    }
}

/// One view, trigger, routine or event, as `SHOW CREATE` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Object {
    pub named: Named,
    /// The `CREATE` statement, in the character set `character_set_client` names.
    create: Vec<u8>,
    /// The session variables `create` ran under, to set again before it runs.
    settings: Vec<(&'static str, String)>,
    /// A view's columns, for the stand-in made before the views are.
    columns: Vec<String>,
}

impl Object {
    /// Its `CREATE` statement with the database qualifier `` `from`. `` replaced by
    /// `` `to`. ``. A view's definition names the database it is read in only where MySQL spells
    /// objects out in full; the scratch database's name is random, so it never stands for
    /// anything else — and only a qualifier (followed by a dot) is taken for it, never a table or
    /// column that happens to share its name.
    pub(super) fn moved(mut self, from: &str, to: &str) -> Object {
        let (from, to) = (
            format!("{}.", ident(from)).into_bytes(),
            format!("{}.", ident(to)).into_bytes(),
        );
        let mut out = Vec::with_capacity(self.create.len());
        let mut rest = self.create.as_slice();
        while let Some(at) = rest.windows(from.len()).position(|w| w == from.as_slice()) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(&to);
            rest = &rest[at + from.len()..];
        }
        out.extend_from_slice(rest);
        self.create = out;
        self
    }
}

/// The routine types of `information_schema.ROUTINES` (MariaDB's packages among them), in the
/// order they are made: a package before its body.
const ROUTINE_KINDS: [&str; 4] = ["FUNCTION", "PACKAGE", "PACKAGE BODY", "PROCEDURE"];

/// The views, triggers, routines and events of `db` in the order they are made again: triggers
/// (in the order they fire), events, routines, then views, which may call functions.
pub(super) fn read(my: &Mysql, db: &str) -> Result<Vec<Object>> {
    define(my, db, &present(my, db)?)
}

/// Every view, trigger, routine and event of `db`, in [`read`]'s order.
pub(super) fn present(my: &Mysql, db: &str) -> Result<Vec<Named>> {
    let db = literal(db);
    let sql = [
        format!(
            "SELECT 'TRIGGER', HEX(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER"
        ),
        format!(
            "SELECT 'EVENT', HEX(EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db} ORDER BY EVENT_NAME"
        ),
        format!(
            "SELECT ROUTINE_TYPE, HEX(ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {db} \
             ORDER BY ROUTINE_TYPE, ROUTINE_NAME"
        ),
        format!(
            "SELECT 'VIEW', HEX(TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db} ORDER BY TABLE_NAME"
        ),
    ]
    .join("; ");
    let mut out = Vec::new();
    for row in my.query_in(None, &sql)? {
        let [Some(kind), Some(name)] = row.as_slice() else {
            continue;
        };
        let kind = ["TRIGGER", "EVENT", "VIEW"]
            .into_iter()
            .chain(ROUTINE_KINDS)
            .find(|k| k == kind)
            .ok_or_else(|| Error::tool(format!("unknown kind of stored object: {kind}")))?;
        out.push(Named {
            kind,
            name: unhex(name)?,
        });
    }
    Ok(out)
}

/// The definitions of `names` in `db`, in their order.
pub(super) fn define(my: &Mysql, db: &str, names: &[Named]) -> Result<Vec<Object>> {
    let mut out = Vec::with_capacity(names.len());
    // In chunks: one argument of the client's command line holds at most 128 KiB.
    for chunk in names.chunks(200) {
        let sql = std::iter::once("SET SESSION character_set_results = binary".to_string())
            .chain(
                chunk
                    .iter()
                    .map(|n| format!("SHOW CREATE {} {}", n.kind, ident(&n.name))),
            )
            .collect::<Vec<_>>()
            .join("; ");
        let rows = my.query_raw_in(Some(db), &sql)?;
        if rows.len() != chunk.len() {
            return Err(Error::tool(format!(
                "reading the views, triggers, routines and events of {db} gave {} definitions for {} objects",
                rows.len(),
                chunk.len()
            )));
        }
        for (named, row) in chunk.iter().zip(rows) {
            out.push(object(named.clone(), db, row)?);
        }
    }
    if !out.iter().any(|o| o.named.kind == "VIEW") {
        return Ok(out);
    }
    let columns = my.query_in(
        None,
        &format!(
            "SELECT HEX(c.TABLE_NAME), HEX(c.COLUMN_NAME) FROM information_schema.COLUMNS c \
             JOIN information_schema.VIEWS v ON v.TABLE_SCHEMA = c.TABLE_SCHEMA AND v.TABLE_NAME = c.TABLE_NAME \
             WHERE c.TABLE_SCHEMA = {} ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
            literal(db)
        ),
    )?;
    for row in columns {
        let [Some(view), Some(column)] = row.as_slice() else {
            continue;
        };
        let (view, column) = (unhex(view)?, unhex(column)?);
        if let Some(o) = out
            .iter_mut()
            .find(|o| o.named.kind == "VIEW" && o.named.name == view)
        {
            o.columns.push(column);
        }
    }
    Ok(out)
}

/// One row of `SHOW CREATE {kind}`: where its columns are differs by kind.
fn object(named: Named, db: &str, row: Vec<Option<Vec<u8>>>) -> Result<Object> {
    // Columns of the statement, sql_mode, time_zone and character_set_client (followed by
    // collation_connection).
    let (create, mode, zone, client) = match named.kind {
        "VIEW" => (1, None, None, 2),
        "EVENT" => (3, Some(1), Some(2), 4),
        // Triggers and routines.
        _ => (2, Some(1), None, 3),
    };
    let text = |i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let Some(statement) = row.get(create).cloned().flatten() else {
        return Err(Error::tool(format!(
            "cannot read the definition of {} {} in {db}",
            named.kind.to_lowercase(),
            named.name
        ))
        .with_hint("the user in the URL may not see it: it needs to be its DEFINER, or hold SHOW VIEW, TRIGGER, EVENT or SELECT on mysql.proc"));
    };
    let mut settings = Vec::new();
    if let Some(mode) = mode.and_then(text) {
        settings.push(("sql_mode", mode));
    }
    if let Some(zone) = zone.and_then(text) {
        settings.push(("time_zone", zone));
    }
    for (var, i) in [
        ("character_set_client", client),
        ("collation_connection", client + 1),
    ] {
        if let Some(value) = text(i) {
            settings.push((var, value));
        }
    }
    Ok(Object {
        named,
        create: statement,
        settings,
        columns: Vec::new(),
    })
}

fn unhex(hex_name: &str) -> Result<String> {
    hex::decode(hex_name)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Error::tool(format!(
                "the server gave a name that is not UTF-8: {hex_name}"
            ))
        })
}

/// Statements that drop `objects` from database `db`.
pub(super) fn drop_script<'o>(db: &str, objects: impl IntoIterator<Item = &'o Named>) -> String {
    objects.into_iter().map(|o| o.drop_in(db)).collect()
}

/// A script that makes `objects` (in [`read`]'s order) in the client's current database. Views
/// are first made as stand-ins with their columns, as in a dump, so that a view over a view finds
/// the one it reads whatever their order; each object's settings hold for its statement only.
pub(super) fn create_script(objects: &[Object]) -> Vec<u8> {
    let mut out = b"SET @faber_sql_mode = @@sql_mode, @faber_time_zone = @@time_zone, \
        @faber_character_set_client = @@character_set_client, \
        @faber_collation_connection = @@collation_connection;\n"
        .to_vec();
    let (views, others): (Vec<&Object>, Vec<&Object>) =
        objects.iter().partition(|o| o.named.kind == "VIEW");
    for o in others {
        push_create(&mut out, o);
    }
    for v in &views {
        let columns = if v.columns.is_empty() {
            "NULL".to_string()
        } else {
            v.columns
                .iter()
                .map(|c| format!("NULL AS {}", ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.extend_from_slice(
            format!(
                "CREATE VIEW {} AS SELECT {columns};\n",
                ident(&v.named.name)
            )
            .as_bytes(),
        );
    }
    for v in &views {
        out.extend_from_slice(
            format!("DROP VIEW IF EXISTS {};\n", ident(&v.named.name)).as_bytes(),
        );
        push_create(&mut out, v);
    }
    out
}

/// Appends `o`'s `CREATE` statement, between its settings and the session's own again. The
/// statement may hold `;` (a trigger's `BEGIN … END`): it ends with `;;`, as in a dump.
fn push_create(out: &mut Vec<u8>, o: &Object) {
    if !o.settings.is_empty() {
        let set: Vec<String> = o
            .settings
            .iter()
            .map(|(var, value)| format!("{var} = {}", literal(value)))
            .collect();
        out.extend_from_slice(format!("SET SESSION {};\n", set.join(", ")).as_bytes());
    }
    out.extend_from_slice(b"DELIMITER ;;\n");
    out.extend_from_slice(&o.create);
    out.extend_from_slice(b"\n;;\nDELIMITER ;\n");
    out.extend_from_slice(
        b"SET SESSION sql_mode = @faber_sql_mode, time_zone = @faber_time_zone, \
        character_set_client = @faber_character_set_client, \
        collation_connection = @faber_collation_connection;\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &'static str, name: &str, create: &[u8]) -> Object {
        Object {
            named: Named {
                kind,
                name: name.into(),
            },
            create: create.to_vec(),
            settings: vec![("character_set_client", "latin1".into())],
            columns: Vec::new(),
        }
    }

    #[test]
    fn views_stand_in_first_and_each_statement_runs_under_its_own_settings() {
        let mut trigger = object(
            "TRIGGER",
            "t`x",
            b"CREATE TRIGGER t BEGIN SET @a = 1; SET @b = 'caf\xe9'; END",
        );
        trigger.settings = vec![("sql_mode", "ANSI_QUOTES".into())];
        let mut view = object("VIEW", "v", b"CREATE VIEW `v` AS select 1 AS `a`, 2 AS `b`");
        view.columns = vec!["a".into(), "b".into()];
        let script = create_script(&[view, trigger.clone()]);
        let text = String::from_utf8_lossy(&script);
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        let mode = format!("SET SESSION sql_mode = {};", literal("ANSI_QUOTES"));
        assert!(at(&mode) < at("CREATE TRIGGER"));
        assert!(
            script.windows(4).any(|w| w == b"caf\xe9"),
            "the statement's bytes as they are"
        );
        assert!(at("CREATE TRIGGER") < at("CREATE VIEW `v` AS SELECT NULL AS `a`, NULL AS `b`;"));
        assert!(at("NULL AS `b`") < at("DROP VIEW IF EXISTS `v`"));
        assert!(at("DROP VIEW IF EXISTS `v`") < at("CREATE VIEW `v` AS select"));
        assert!(text.contains("END\n;;\nDELIMITER ;\n"));
        assert_eq!(
            drop_script("d`b", [&trigger.named]),
            "DROP TRIGGER IF EXISTS `d``b`.`t``x`;\n"
        );
    }

    #[test]
    fn only_the_scratch_qualifier_is_rewritten() {
        let v = object(
            "VIEW",
            "v",
            b"select `s__faber_restore_1`.`t`.`x` from `s__faber_restore_1`.`t`, `other`.`t`",
        )
        .moved("s__faber_restore_1", "shop");
        assert_eq!(
            v.create,
            b"select `shop`.`t`.`x` from `shop`.`t`, `other`.`t`".to_vec()
        );
    }
}
