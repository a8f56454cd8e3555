//! Destructive SQL sent with a database client to a protected environment's database, or of a
//! kind the config forbids to any environment's.

use super::{
    Answer, Decision, Environment, Invocation, Path, Session, context, record, server_is, sql,
    target_is,
};
use crate::sqlscan::Kind;

/// Destructive SQL of a kind `safety.destructive_operations` forbids, sent to any environment's
/// database (or to one that cannot be told): deny, with the config's reason. Other destructive
/// SQL sent to a protected environment's database: ask.
pub(super) fn on_sql(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let ctx = context(dir, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
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
    if let Some(answer) = forbidden(line, &session, &call, &findings, dir) {
        return Some(answer);
    }
    let protected: Vec<&Environment> = session
        .config
        .environments
        .values()
        .filter(|e| e.protected)
        .collect();
    let hit = protected
        .iter()
        .find(|e| session.url(e).is_ok_and(|u| target_is(&call, &u, dir)));
    let mut what = findings
        .iter()
        .map(|f| format!("  {} (line {}): {}", f.what, f.line, f.excerpt))
        .collect::<Vec<_>>()
        .join("\n");
    if call.unknown_sql {
        if !what.is_empty() {
            what.push('\n');
        }
        what.push_str("  SQL that cannot be told before it runs (a substitution, a variable with no known value, or another command's output)");
    }
    let (env, reason) = match hit {
        Some(e) => (
            Some(e.name.as_str()),
            format!(
                "faber-db: this sends destructive SQL to the database of protected environment `{}`:\n{what}\nNo backup is taken for it: `faber-db backup {}` first if unsure.",
                e.name, e.name
            ),
        ),
        None if call.target.unknown && !protected.is_empty() => (
            None,
            format!(
                "faber-db: this sends destructive SQL to a database that cannot be told before it runs (it may be a protected environment's):\n{what}"
            ),
        ),
        None => return None,
    };
    let answer = Answer::new(Decision::Ask, reason);
    Some(record(&session, line, env, None, "destructive SQL", answer))
}

/// The denial of statements whose kind the config forbids, sent at an environment's database —
/// any of them, protected or not — or at one that cannot be told before it runs.
fn forbidden(
    line: &str,
    session: &Session,
    call: &sql::SqlCall,
    findings: &[crate::sqlscan::Finding],
    dir: &Path,
) -> Option<Answer> {
    let safety = &session.config.safety;
    let blocked: Vec<&crate::sqlscan::Finding> = findings
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
    let blocked: Vec<String> = blocked
        .iter()
        .filter(|f| !server || f.kind == Kind::DropDatabase)
        .filter_map(|f| {
            let why = safety.blocked(f.kind)?;
            Some(format!(
                "  {} (line {}): {} — not allowed: {why}",
                f.what, f.line, f.excerpt
            ))
        })
        .collect();
    let at = match hit {
        Some(e) if server => format!(
            "the server of environment `{}`'s database (DROP DATABASE reaches every database on it)",
            e.name
        ),
        Some(e) => format!("the database of environment `{}`", e.name),
        None if call.target.unknown => {
            "a database that cannot be told before it runs (it may be an environment's)".to_string()
        }
        None => return None,
    };
    let reason = format!(
        "faber-db: this sends SQL the project's safety.destructive_operations does not allow to {at}:\n{}\nIf it is intended, a person runs it by hand.",
        blocked.join("\n")
    );
    let answer = Answer::new(Decision::Deny, reason);
    Some(record(
        session,
        line,
        hit.map(|e| e.name.as_str()),
        None,
        "forbidden SQL",
        answer,
    ))
}
