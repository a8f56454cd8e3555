//! `restore ENV --into NAME` (the whole backup into a new database beside the environment's) and
//! `restore ENV --table T --schema S` (some tables put back into it): asked for as a protected
//! environment asks, run by the engine ([`restore::into`], [`restore::put_back`]), reported.

use serde_json::json;

use super::RestoreArgs;
use crate::Report;
use crate::approval::{self, Change};
use crate::config::Environment;
use crate::confirm::{self, Ask};
use crate::error::Result;
use crate::hints;
use crate::human;
use crate::ops::restore::{self, Request};
use crate::provider::{self, DatabaseUrl, Provider, ProviderKind};
use crate::registry::BackupRecord;
use crate::session::Session;
use crate::ui::{self, To, Ui};

/// `restore ENV --into NAME`.
pub(super) fn into(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    record: &BackupRecord,
    db: &dyn Provider,
    name: &str,
    args: &RestoreArgs,
) -> Result<Report> {
    let target = restore::target_name(session, db, name)?;
    // How to reach it: the environment's URL naming it, password hidden.
    let root = &session.config.root;
    let reach = DatabaseUrl::parse(
        &provider::url_naming(&session.raw_url(env)?, root, &target)?,
        root,
    )?
    .redacted();
    let what = if db.kind() == ProviderKind::Sqlite {
        "a new file"
    } else {
        "a new database"
    };
    let mut plan = format!(
        "restore {} into {what} {} ({reach}), beside `{}`'s database, which is left alone",
        ui.bold(&record.id),
        ui.bold(ui::printable(&target)),
        env.name
    );
    if args.with_globals {
        plan.push_str(", after making the roles and tablespaces it keeps that the server lacks");
    }
    // What the real run would refuse, the dry run refuses too.
    db.check_new_database(&target)?;
    if args.dry_run.dry_run {
        ui.line(format!("Would {plan}."));
        ui.line("Dry run: nothing was changed.");
        return Ok(Report::new()
            .with("dry_run", true)
            .with("backup", record)
            .with("into", json!({ "name": target, "url": reach })));
    }
    if confirm::will_ask(env, session.ctx.yes) {
        ui.say(To::Prompt, format!("About to {plan}."));
    }
    let change = Change {
        action: "restore",
        scope: Some(&env.name),
        backup: Some(record),
    };
    approval::gate(session, env, &change)?;
    confirm::confirm(env, "restore", Ask::YesNo, session.ctx.yes)?;
    ui.line(format!(
        "Restoring {} into {what} {}",
        ui.bold(&record.id),
        ui.bold(ui::printable(&target))
    ));
    let made = restore::into(
        session,
        env,
        db,
        record,
        &target,
        args.jobs,
        args.with_globals,
    )?;
    let rows: u64 = made.inspection.tables.values().map(|t| t.rows).sum();
    let mut report = Report::new()
        .with("backup", record)
        .with("environment", &env.name)
        .with("into", json!({ "name": made.name, "url": reach }))
        .with("globals", &made.globals)
        .with("tables", &made.inspection.tables)
        .with("migrations", &made.inspection.migrations)
        .with("row_count_differences", &made.diffs)
        .with("restored", true);
    if made.diffs.is_empty() {
        ui.ok(format!(
            "Restored {}, {}; row counts match the manifest",
            human::count(made.inspection.tables.len() as u64, "table"),
            human::count(rows, "row")
        ));
    }
    report.failure = made.failure(&ui::printable(&made.name));
    ui.line(format!("Connect with: {reach}"));
    Ok(report)
}

/// `restore ENV --table T --schema S`.
pub(super) fn tables(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    record: &BackupRecord,
    (url, db): (&DatabaseUrl, &dyn Provider),
    args: &RestoreArgs,
) -> Result<Report> {
    let keys = restore::select(record, &args.tables, &args.schemas)?;
    let listed = keys
        .iter()
        .map(|k| match record.tables.get(k) {
            // Put back as it is in the backup: empty.
            Some(t) if t.data_excluded => format!(
                "{} (schema only: its rows were left out of the backup, exclude_table_data)",
                ui::printable(k)
            ),
            t => format!(
                "{} ({})",
                ui::printable(k),
                human::count(t.map_or(0, |t| t.rows), "row")
            ),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let safety_reason = (!args.no_safety_backup).then_some("pre-restore");
    let how = if db.kind() == ProviderKind::Mysql {
        "table by table (MySQL commits each drop as it goes; a failure midway is undone from the safety backup)"
    } else {
        "in one transaction"
    };
    let head = format!(
        "put back from {} into {} ({}): {listed}",
        ui.bold(&record.id),
        ui.bold(&env.name),
        url.redacted()
    );
    let steps = [
        "load the backup into a scratch database (as verify --deep does)".to_string(),
        match safety_reason {
            Some(_) => format!("take a safety backup of `{}`", env.name),
            None => "take no safety backup (--no-safety-backup)".to_string(),
        },
        format!(
            "drop those tables and make them again from the backup {how}; every other table is left as it is"
        ),
    ];
    let say = |to: To, verb: &str| {
        ui.say(to, format!("{verb} {head}"));
        for (n, step) in steps.iter().enumerate() {
            ui.say(to, format!("  {}. {step}", n + 1));
        }
    };
    if args.dry_run.dry_run {
        say(To::Output, "Would");
        ui.line("Dry run: nothing was changed.");
        return Ok(Report::new()
            .with("dry_run", true)
            .with("backup", record)
            .with("tables", &keys)
            .with("safety_backup", safety_reason.is_some()));
    }
    if confirm::will_ask(env, session.ctx.yes) {
        say(To::Prompt, "Will");
    }
    let change = Change {
        action: "restore",
        scope: Some(&env.name),
        backup: Some(record),
    };
    approval::gate(session, env, &change)?;
    confirm::confirm(env, "restore", Ask::TypeName, session.ctx.yes)?;
    ui.line(format!(
        "Putting back {} from {} into {}",
        human::count(keys.len() as u64, "table"),
        ui.bold(&record.id),
        ui.bold(&env.name)
    ));
    let put = restore::put_back(
        session,
        env,
        db,
        record,
        &keys,
        &Request {
            event: "restore-tables",
            safety_reason,
            terminate_connections: false,
            jobs: args.jobs,
            in_place: false,
            method: None,
        },
    )?;
    let rows: u64 = put.counts.values().map(|t| t.rows).sum();
    if put.diffs.is_empty() {
        ui.ok(format!(
            "Put back {}, {}; row counts match the manifest",
            human::count(put.tables.len() as u64, "table"),
            human::count(rows, "row")
        ));
    }
    if let Some(s) = &put.safety {
        undo_line(session, ui, env, s, &put.tables)?;
    }
    let mut report = Report::new()
        .with("backup", record)
        .with("environment", &env.name)
        .with("tables_restored", &put.tables)
        .with("tables", &put.counts)
        .with("safety_backup", &put.safety)
        .with("row_count_differences", &put.diffs)
        .with("restored", true);
    report.failure = put.failure(env);
    Ok(report)
}

/// How to undo a table restore: the tables the safety backup `safety` holds put back from it;
/// one it does not hold did not exist before, and dropping it undoes it.
fn undo_line(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    safety: &str,
    tables: &[String],
) -> Result<()> {
    let reg = session.store.load()?;
    let held = reg
        .backups
        .iter()
        .find(|b| b.id == safety)
        .map(|b| &b.tables);
    let (kept, new): (Vec<&String>, Vec<&String>) = tables
        .iter()
        .partition(|t| held.is_some_and(|h| h.contains_key(*t)));
    for t in new {
        ui.line(format!(
            "{} did not exist before: drop it to undo its restore",
            ui::printable(t)
        ));
    }
    if kept.is_empty() {
        return Ok(());
    }
    let mut again = vec!["restore", env.name.as_str(), "--from", safety];
    for key in kept {
        again.extend(["--table", key.as_str()]);
    }
    ui.line(format!(
        "Undo with: {}",
        ui::printable(&hints::command_line(session, &again))
    ));
    Ok(())
}
