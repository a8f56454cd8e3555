//! SQL an agent sends straight to a database with a client: which of the config's environments
//! it reaches, and whether the config's safety rules forbid it there, or it is destructive SQL
//! for a protected environment's database.

use std::path::Path;

use crate::config::Environment;
use crate::guard::sql::{self, SqlCall};
use crate::guard::{Invocation, server_is, target_is};
use crate::session::Session;
use crate::sqlscan::{Finding, Kind};

/// The SQL a database client is given, when some of it is destructive or cannot be told.
#[derive(Debug)]
pub struct Sent {
    pub call: SqlCall,
    /// Its destructive statements.
    pub findings: Vec<Finding>,
}

/// Where forbidden SQL goes.
#[derive(Debug, Clone, Copy)]
pub enum Reached<'a> {
    /// The database of an environment.
    Database(&'a Environment),
    /// The server of an environment's database: `DROP DATABASE` reaches every database on it.
    Server(&'a Environment),
    /// A database that cannot be told before the command runs.
    Untold,
}

impl<'a> Reached<'a> {
    /// The environment reached, when told.
    pub fn env(self) -> Option<&'a Environment> {
        match self {
            Reached::Database(e) | Reached::Server(e) => Some(e),
            Reached::Untold => None,
        }
    }
}

/// What SQL sent to a database calls for.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// Statements of kinds `safety.destructive_operations` forbids, each with the config's
    /// reason, sent to an environment's database (any, protected or not) or to one that cannot
    /// be told: deny.
    Forbidden {
        to: Reached<'a>,
        blocked: Vec<(&'a Finding, String)>,
    },
    /// Destructive SQL (or SQL that cannot be told) sent to the database of a protected
    /// environment, or (`None`) to one that cannot be told while some environment is protected:
    /// ask.
    Destructive(Option<&'a Environment>),
}

/// The SQL `inv` sends, when it runs a database client and some of that SQL is destructive or
/// cannot be told before it runs. Variables come from the command, then the project's.
pub fn sql_sent(session: &Session, inv: &Invocation, dir: &Path) -> Option<Sent> {
    let lookup = |name: &str| {
        inv.var(name)
            .or_else(|| session.vars.get(name))
            .map(str::to_string)
    };
    let call = sql::call(inv, &lookup)?;
    let findings = call.findings(dir);
    if findings.is_empty() && !call.unknown_sql {
        return None;
    }
    Some(Sent { call, findings })
}

/// What `sent` calls for, judged against the config's environments and safety rules: forbidden
/// statements first, then destructive SQL for a protected environment; `None`, nothing.
pub fn judge_sql<'a>(session: &'a Session, sent: &'a Sent, dir: &Path) -> Option<Verdict<'a>> {
    if let Some(verdict) = forbidden(session, sent, dir) {
        return Some(verdict);
    }
    let call = &sent.call;
    let protected: Vec<&Environment> = session
        .config
        .environments
        .values()
        .filter(|e| e.protected)
        .collect();
    let hit = protected
        .iter()
        .find(|e| session.url(e).is_ok_and(|u| target_is(call, &u, dir)));
    match hit {
        Some(e) => Some(Verdict::Destructive(Some(*e))),
        None if call.target.unknown && !protected.is_empty() => Some(Verdict::Destructive(None)),
        None => None,
    }
}

/// Statements whose kind the config forbids, sent at an environment's database — any of them,
/// protected or not — or at one that cannot be told before it runs.
fn forbidden<'a>(session: &'a Session, sent: &'a Sent, dir: &Path) -> Option<Verdict<'a>> {
    let (call, safety) = (&sent.call, &session.config.safety);
    let blocked: Vec<&Finding> = sent
        .findings
        .iter()
        .filter(|f| safety.blocked(f.kind).is_some())
        .collect();
    if blocked.is_empty() {
        return None;
    }
    let environments = || session.config.environments.values();
    let mut hit = environments().find(|e| session.url(e).is_ok_and(|u| target_is(call, &u, dir)));
    let mut server = false;
    // DROP DATABASE names what it drops, and is sent from another database of the server (one
    // cannot drop the database it is connected to): it reaches every database of the server.
    if hit.is_none() && blocked.iter().any(|f| f.kind == Kind::DropDatabase) {
        hit = environments().find(|e| session.url(e).is_ok_and(|u| server_is(call, &u, dir)));
        server = hit.is_some();
    }
    let to = match hit {
        Some(e) if server => Reached::Server(e),
        Some(e) => Reached::Database(e),
        None if call.target.unknown => Reached::Untold,
        None => return None,
    };
    let blocked = blocked
        .into_iter()
        .filter(|f| !server || f.kind == Kind::DropDatabase)
        .filter_map(|f| Some((f, safety.blocked(f.kind)?)))
        .collect();
    Some(Verdict::Forbidden { to, blocked })
}
