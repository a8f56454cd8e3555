//! The other sessions using the target: seen, waited for, ended when asked, or refused.

use super::super::{Mysql, literal};
use crate::error::Result;
use crate::provider::OtherSession;

impl Mysql {
    /// The other sessions using `db`, as the server lists them now.
    pub(super) fn sessions_in(&self, db: &str) -> Result<Vec<OtherSession>> {
        Ok(self
            .query_in(
                None,
                &format!(
                    "SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE DB = {} \
                     AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed' ORDER BY ID",
                    literal(db)
                ),
            )?
            .into_iter()
            .filter_map(|row| {
                let mut fields = row.into_iter();
                Some(OtherSession {
                    id: fields.next().flatten()?,
                    user: fields.next().flatten(),
                    application: None,
                    client: fields.next().flatten(),
                })
            })
            .collect())
    }
}

/// The other sessions using the target database (none when it does not exist): what the swap
/// would find in its way. The sessions of the tools faber-db itself just ran (the safety
/// backup's mysqldump, the checks) can linger a moment after their clients exit, while the
/// server closes them: only a session still there after a short wait is someone else's. The
/// pre-flight and the commit ask this same question.
pub(in crate::provider::mysql) fn other_sessions(my: &Mysql) -> Result<Vec<OtherSession>> {
    let target = &my.conn.dbname;
    let mut others = my.sessions_in(target)?;
    for _ in 0..SESSION_SETTLE_TRIES {
        if others.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        others = my.sessions_in(target)?;
    }
    Ok(others)
}

/// What [`other_sessions`] cannot see: without PROCESS (or SUPER), the server lists a user's
/// own sessions only, and an application connected as another user is not among them.
pub(in crate::provider::mysql) fn sessions_unseen(my: &Mysql) -> Result<Option<String>> {
    let account = my.scalar_in(None, "SELECT CURRENT_USER()")?;
    let (user, host) = account.rsplit_once('@').unwrap_or((&account, "%"));
    let found = my.query_in(
        None,
        &format!(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {} \
             AND PRIVILEGE_TYPE IN ('PROCESS', 'SUPER')",
            literal(&format!("'{user}'@'{host}'"))
        ),
    )?;
    Ok(found.is_empty().then(|| {
        format!(
            "sessions of other users cannot be seen: {account} lacks the PROCESS privilege \
             (GRANT PROCESS ON *.* TO {}@{}); make sure no application is connected as another user",
            literal_shown(user),
            literal_shown(host)
        )
    }))
}

/// `s` as a quoted MySQL string, as a person would type it in a grant.
fn literal_shown(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// How many times (200 ms apart) a restore looks again before it takes the sessions using the
/// target for another client's.
const SESSION_SETTLE_TRIES: u32 = 10;

/// Ends the other sessions using the target when `terminate`, else refuses (exit 7) while there
/// are any.
pub(in crate::provider::mysql) fn clear_sessions(my: &Mysql, terminate: bool) -> Result<()> {
    let target = &my.conn.dbname;
    if terminate {
        for session in my.sessions_in(target)? {
            // A session that ended meanwhile is fine.
            let _ = my.query_in(
                None,
                &format!("KILL {}", session.id.parse::<u64>().unwrap_or(0)),
            );
        }
    }
    // The sessions of the tools faber-db itself just ran linger a moment: other_sessions waits
    // for them to close.
    let others = other_sessions(my)?;
    if !others.is_empty() {
        return Err(crate::provider::sessions_busy(target, &others));
    }
    Ok(())
}
