//! Destructive SQL sent with a database client to a protected environment's database, or of a
//! kind the config forbids to any environment's: the answer, in words.

use super::{Answer, Decision, Invocation, Path, context, engine, record};
use engine::{Reached, Verdict};

/// Destructive SQL of a kind `safety.destructive_operations` forbids, sent to any environment's
/// database (or to one that cannot be told): deny, with the config's reason. Other destructive
/// SQL sent to a protected environment's database: ask.
pub(super) fn on_sql(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let ctx = context(dir, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    let sent = engine::sql_sent(&session, inv, dir)?;
    let (env, matched, answer) = match engine::judge_sql(&session, &sent, dir)? {
        Verdict::Forbidden { to, blocked } => {
            let blocked: Vec<String> = blocked
                .iter()
                .map(|(f, why)| {
                    format!(
                        "  {} (line {}): {} — not allowed: {why}",
                        f.what, f.line, f.excerpt
                    )
                })
                .collect();
            let at = match to {
                Reached::Server(e) => format!(
                    "the server of environment `{}`'s database (DROP DATABASE reaches every database on it)",
                    e.name
                ),
                Reached::Database(e) => format!("the database of environment `{}`", e.name),
                Reached::Untold => {
                    "a database that cannot be told before it runs (it may be an environment's)"
                        .to_string()
                }
            };
            let reason = format!(
                "faber-db: this sends SQL the project's safety.destructive_operations does not allow to {at}:\n{}\nIf it is intended, a person runs it by hand.",
                blocked.join("\n")
            );
            (
                to.env(),
                "forbidden SQL",
                Answer::new(Decision::Deny, reason),
            )
        }
        Verdict::Destructive(env) => {
            let mut what = sent
                .findings
                .iter()
                .map(|f| format!("  {} (line {}): {}", f.what, f.line, f.excerpt))
                .collect::<Vec<_>>()
                .join("\n");
            if sent.call.unknown_sql {
                if !what.is_empty() {
                    what.push('\n');
                }
                what.push_str("  SQL that cannot be told before it runs (a substitution, a variable with no known value, or another command's output)");
            }
            let reason = match env {
                Some(e) => format!(
                    "faber-db: this sends destructive SQL to the database of protected environment `{}`:\n{what}\nNo backup is taken for it: `faber-db backup {}` first if unsure.",
                    e.name, e.name
                ),
                None => format!(
                    "faber-db: this sends destructive SQL to a database that cannot be told before it runs (it may be a protected environment's):\n{what}"
                ),
            };
            (env, "destructive SQL", Answer::new(Decision::Ask, reason))
        }
    };
    let env = env.map(|e| e.name.as_str());
    Some(record(&session, line, env, None, matched, answer))
}
