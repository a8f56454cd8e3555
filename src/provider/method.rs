//! How a restore replaces a database's content, chosen once per restore from what the connected
//! role may do ([`super::Provider::restore_privileges`]):
//!
//! - **swap**: the backup is loaded into a scratch database on the same server, checked, and
//!   swapped in (PostgreSQL renames databases, MySQL moves tables). Needs a role that may create
//!   databases (PostgreSQL `CREATEDB`, MySQL `CREATE` on a database other than the target).
//! - **in place**: the target's own objects are dropped and the backup loaded into it. PostgreSQL
//!   does it in one transaction (a failure leaves the database as it was); MySQL after the
//!   safety backup, which is restored if the load fails. Needs only rights on the target itself
//!   — what a managed service's database owner has.
//!
//! The pre-flight checks (and `doctor`) read [`RestorePrivileges`] to say, before anything
//! changes, which method a restore would use and which grant is missing when neither is possible.

use serde::Serialize;

use crate::error::{Error, Kind, Result};

/// How a restore replaces a database's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RestoreMethod {
    /// Loaded into a scratch database, checked, then swapped in.
    #[serde(rename = "swap")]
    Swap,
    /// The target's own objects dropped and the backup loaded into it.
    #[serde(rename = "in-place")]
    InPlace,
}

impl RestoreMethod {
    /// `swap` or `in-place`, as the plan and the JSON output name it.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreMethod::Swap => "swap",
            RestoreMethod::InPlace => "in-place",
        }
    }
}

/// Why a restore method cannot be used by the connected role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// What stands in the way, for a person (`role app may not create databases (no CREATEDB)`).
    pub reason: String,
    /// The grant that would allow it (`ALTER ROLE app CREATEDB`), when a missing privilege is the
    /// cause; `None` when the method does not exist for this database (SQLite in place).
    pub missing_grant: Option<String>,
}

/// What the connected role may do towards restoring its database: read from the server, nothing
/// changed (a MySQL check creates a probe database and drops it at once, through the scratch
/// ledger). The answer of [`super::Provider::restore_privileges`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorePrivileges {
    /// The role (PostgreSQL) or account (MySQL) faber-db connects as, as the server names it.
    pub role: String,
    /// Whether it may create scratch databases on this server: what a swap, and `verify --deep`
    /// on the environment's own server, need.
    pub create_database: bool,
    /// Why a swap is not possible; `None` when it is.
    pub swap: Option<Blocked>,
    /// Why an in-place restore is not possible; `None` when it is.
    pub in_place: Option<Blocked>,
}

impl RestorePrivileges {
    /// Privileges of a database that is replaced whole by renaming a checked copy over it
    /// (SQLite): a swap, always; never in place.
    pub fn file_swap() -> RestorePrivileges {
        RestorePrivileges {
            role: String::new(),
            create_database: true,
            swap: None,
            in_place: Some(Blocked {
                reason: "an SQLite database is replaced whole, by renaming a checked copy over it"
                    .into(),
                missing_grant: None,
            }),
        }
    }
}

/// The method a restore will use and why, as the plan reports it (`plan.method`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodChoice {
    pub method: RestoreMethod,
    /// Why this method: asked for, or what the role may do.
    pub why: String,
}

/// What [`choose`] decides for `privileges`, as the pre-flight's `privileges` check says it:
/// `swap: …` or `in-place: …` with why, or the error that no method is possible.
pub fn shown(privileges: Result<RestorePrivileges>, in_place: bool) -> Result<String> {
    let c = choose(&privileges?, in_place)?;
    Ok(format!("{}: {}", c.method.as_str(), c.why))
}

/// Chooses the restore method: a swap when the role may, else in place; `in_place` forces the
/// in-place method (`--in-place`). Fails — exit 6 for a missing privilege, with a hint naming
/// the grant; exit 1 when the method does not exist here — when the method cannot be used.
pub fn choose(privileges: &RestorePrivileges, in_place: bool) -> Result<MethodChoice> {
    if in_place {
        return match &privileges.in_place {
            None => Ok(MethodChoice {
                method: RestoreMethod::InPlace,
                why: "asked for with --in-place".into(),
            }),
            Some(blocked) => Err(blocked_error(
                format!("an in-place restore is not possible: {}", blocked.reason),
                blocked,
            )),
        };
    }
    match (&privileges.swap, &privileges.in_place) {
        // A file database has no role: it is replaced whole (RestorePrivileges::file_swap).
        (None, _) if privileges.role.is_empty() => Ok(MethodChoice {
            method: RestoreMethod::Swap,
            why: "the database file is replaced whole, by renaming a checked copy over it".into(),
        }),
        (None, _) => Ok(MethodChoice {
            method: RestoreMethod::Swap,
            why: "the role may create databases: the backup is loaded and checked in a scratch \
                  database, then swapped in"
                .into(),
        }),
        (Some(swap), None) => Ok(MethodChoice {
            method: RestoreMethod::InPlace,
            why: format!(
                "{}: the target's own objects are replaced in place",
                swap.reason
            ),
        }),
        (Some(swap), Some(in_place)) => {
            let message = format!(
                "the role cannot restore this database: {}; and in place: {}",
                swap.reason, in_place.reason
            );
            let grants: Vec<&str> = [swap, in_place]
                .iter()
                .filter_map(|b| b.missing_grant.as_deref())
                .collect();
            let hint = match grants.as_slice() {
                [] => "restore as a role with more privileges".to_string(),
                [one] => format!("grant what is missing: {one}"),
                [first, second, ..] => format!(
                    "grant either of these, as an administrator: {first} (to swap a checked copy in), \
                     or {second} (to restore in place)"
                ),
            };
            Err(Error::new(Kind::Tool, message).with_hint(format!("{hint}; nothing was changed")))
        }
    }
}

fn blocked_error(message: String, blocked: &Blocked) -> Error {
    match &blocked.missing_grant {
        Some(grant) => Error::new(Kind::Tool, message).with_hint(format!(
            "grant what is missing, as an administrator: {grant}; or leave --in-place out; \
             nothing was changed"
        )),
        None => Error::config(message).with_hint("leave --in-place out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps, reason = "what the privileges hold")]
    fn blocked(grant: &str) -> Option<Blocked> {
        Some(Blocked {
            reason: format!("no {grant}"),
            missing_grant: Some(grant.into()),
        })
    }

    fn privileges(swap: Option<Blocked>, in_place: Option<Blocked>) -> RestorePrivileges {
        RestorePrivileges {
            role: "app".into(),
            create_database: swap.is_none(),
            swap,
            in_place,
        }
    }

    #[test]
    fn a_swap_when_possible_else_in_place_else_exit_6_naming_the_grants() {
        let both = privileges(None, None);
        assert_eq!(choose(&both, false).unwrap().method, RestoreMethod::Swap);
        assert_eq!(choose(&both, true).unwrap().method, RestoreMethod::InPlace);
        let owner = privileges(blocked("CREATEDB"), None);
        assert_eq!(
            choose(&owner, false).unwrap().method,
            RestoreMethod::InPlace
        );
        let neither = privileges(blocked("CREATEDB"), blocked("OWNER"));
        let e = choose(&neither, false).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        let hint = e.hints()[0].as_text().unwrap();
        assert!(
            hint.contains("CREATEDB") && hint.contains("OWNER"),
            "{hint}"
        );
        let e = choose(&privileges(None, blocked("OWNER")), true).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert!(e.hints()[0].as_text().unwrap().contains("OWNER"));
        let e = choose(&RestorePrivileges::file_swap(), true).unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }
}
