//! Restoring MySQL/MariaDB in place, for a user whose privileges end at its own database (it may
//! not create the scratch database a swap loads into). MySQL's DDL is not transactional: the
//! target's tables, views, triggers, routines and events are dropped and the dump loaded into
//! it, after the safety backup; a failure midway leaves it incomplete, and the caller then
//! restores the safety backup the same way.

use super::objects;
use super::{Mysql, ident, literal};
use crate::error::{Cause, Error, Result};
use crate::format::Format;
use crate::provider::method::{Blocked, RestorePrivileges};
use crate::provider::{CommitFailed, Committed, InPlace, Provider, Source};

/// What the connected user may do towards restoring its database.
pub(super) fn privileges(my: &Mysql) -> Result<RestorePrivileges> {
    let account = my.scalar_in(None, "SELECT CURRENT_USER()")?;
    let target = &my.conn.dbname;
    let exists = my.exists()?;
    let (user, host) = account.rsplit_once('@').unwrap_or((&account, "%"));
    let grantee = format!("'{user}'@'{host}'");
    let shown = format!("{}@{}", literal(user), literal(host));
    let create = super::restore::probe_create_database(my);
    let swap = create.as_ref().err().map(|e| Blocked {
        reason: format!(
            "user {account} may not create databases other than {target} ({})",
            e.causes().first().map_or(e.message(), Cause::as_str)
        ),
        missing_grant: Some(format!(
            "GRANT ALL ON `{}\\_\\_faber\\_%`.* TO {shown} (the scratch databases a restore loads into)",
            target.replace('`', "``").replace('_', "\\_")
        )),
    });
    let in_place = if exists {
        let found = my.query_in(
            None,
            &format!(
                "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {g} \
                 AND PRIVILEGE_TYPE IN ('CREATE', 'DROP', 'INSERT') \
                 UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {g} \
                 AND PRIVILEGE_TYPE IN ('CREATE', 'DROP', 'INSERT') AND {t} LIKE TABLE_SCHEMA",
                g = literal(&grantee),
                t = literal(target)
            ),
        )?;
        let has = |p: &str| {
            found
                .iter()
                .any(|r| r.first().cloned().flatten().as_deref() == Some(p))
        };
        let missing: Vec<&str> = ["CREATE", "DROP", "INSERT"]
            .into_iter()
            .filter(|p| !has(p))
            .collect();
        (!missing.is_empty()).then(|| Blocked {
            reason: format!(
                "user {account} lacks {} on database {target}",
                missing.join(", ")
            ),
            missing_grant: Some(format!("GRANT ALL ON {}.* TO {shown}", ident(target))),
        })
    } else {
        Some(Blocked {
            reason: format!("database {target} does not exist"),
            missing_grant: Some(format!(
                "CREATE DATABASE {} (as an administrator)",
                ident(target)
            )),
        })
    };
    Ok(RestorePrivileges {
        role: account,
        create_database: create.is_ok(),
        swap,
        in_place,
    })
}

/// Drops the target's tables, views, triggers, routines and events, then loads the dump into it.
pub(super) fn restore(
    my: &Mysql,
    format: Format,
    source: Source<'_>,
    migrations_table: Option<&str>,
    options: &InPlace<'_>,
) -> Result<Committed, CommitFailed> {
    if format != Format::Sql {
        return Err(
            Error::config(format!("a {format} backup cannot be restored into MySQL")).into(),
        );
    }
    let target = my.conn.dbname.clone();
    if !my.exists()? {
        return Err(Error::config(format!(
            "database {target} does not exist; an in-place restore needs it"
        ))
        .into());
    }
    super::restore::clear_sessions(my, options.terminate_connections)?;
    let present = objects::present(my, &target)?;
    let tables = my.tables_of(&target)?;
    let mut script = format!(
        "SET SESSION lock_wait_timeout = 30;\nSET FOREIGN_KEY_CHECKS = 0;\n{}",
        objects::drop_script(&target, &present)
    );
    if !tables.is_empty() {
        let list: Vec<String> = tables
            .iter()
            .map(|t| format!("{}.{}", ident(&target), ident(t)))
            .collect();
        script.push_str(&format!("DROP TABLE IF EXISTS {};\n", list.join(", ")));
    }
    let incomplete = |e: Error| {
        CommitFailed::incomplete(
            Error::new(
                e.kind(),
                format!(
                    "the in-place restore of {target} failed midway; the database is incomplete"
                ),
            )
            .with_hints(e.hints())
            .or_hint("fix the cause and restore again")
            .caused_by(Cause::in_one_line(e)),
        )
    };
    my.run_script(Some(&target), script.as_bytes())
        .map_err(incomplete)?;
    match source {
        Source::Stream(stream) => {
            let mut stream = crate::testpoint::PauseMidway::new(stream, "restore:during-load");
            my.load(&target, Source::Stream(&mut stream))
        }
        other @ Source::Path(_) => my.load(&target, other),
    }
    .map_err(incomplete)?;
    let inspection = my
        .inspect(migrations_table, true)
        .map_err(|e| CommitFailed::from(e.add_hint("the restore is in place")))?;
    Ok(Committed {
        inspection,
        replaced: None,
        kept: Vec::new(),
    })
}
