//! The databases a restore creates for itself: where the dump is loaded, and where the target's
//! replaced tables are set aside; recorded in the project's ledger, and swept after killed runs.

use super::super::{Mysql, ident, literal};
use crate::error::{Cause, Error, Result};
use crate::provider::tool::{random_suffix, scratch_stem};
use crate::provider::{Provider, Replaced};
use crate::scratch::{self, Claim, Purpose};

/// A database faber-db created for itself, recorded in the project's ledger and dropped when
/// this value goes, unless kept.
pub(super) struct ScratchDb<'a> {
    pub(super) my: &'a Mysql,
    pub(super) name: String,
    /// Its record in the ledger, released once the database is gone.
    pub(super) claim: Option<Claim>,
    keep: bool,
}

impl<'a> ScratchDb<'a> {
    /// Creates `<target>__faber_<purpose>_<random>` (the target's name cut to 30 bytes), recorded
    /// in the ledger first and marked right after (MariaDB keeps a database's comment; on a
    /// server without them it goes unmarked, and no sweep ever drops it), with the target's
    /// character set and collation when it exists.
    pub(super) fn create(my: &'a Mysql, purpose: Purpose) -> Result<ScratchDb<'a>> {
        let name = format!(
            "{}__faber_{}_{}",
            scratch_stem(&my.conn.dbname),
            purpose.name_part(),
            random_suffix()
        );
        Self::create_as(my, purpose, name)
    }

    /// Creates database `name` as [`ScratchDb::create`] does: recorded first, then marked.
    /// `CREATE DATABASE` fails when `name` exists, so it is never someone else's.
    pub(super) fn create_as(
        my: &'a Mysql,
        purpose: Purpose,
        name: String,
    ) -> Result<ScratchDb<'a>> {
        let claim = my.ledger()?.claim(&my.server_id(), purpose, &name)?;
        let charset = my.charset_clause()?;
        if let Err(e) = my.query_in(None, &format!("CREATE DATABASE {}{charset}", ident(&name))) {
            claim.release();
            return Err(e);
        }
        // The marker is plain ASCII (a hex token): a string literal as it is, which COMMENT
        // takes where an expression would not do.
        let _ = my.query_in(
            None,
            &format!(
                "ALTER DATABASE {} COMMENT = '{}'",
                ident(&name),
                scratch::marker(&claim.entry().token)
            ),
        );
        Ok(ScratchDb {
            my,
            name,
            claim: Some(claim),
            keep: false,
        })
    }

    /// Leaves it in place, recorded, for a human or a sweep (as its record allows); returns its
    /// name.
    pub(super) fn keep(mut self) -> String {
        self.keep = true;
        self.name.clone()
    }

    /// Leaves it in place and hands over its record, held.
    pub(super) fn into_parts(mut self) -> (String, Option<Claim>) {
        self.keep = true;
        (self.name.clone(), self.claim.take())
    }
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let dropped = self.my.query_in(
            None,
            &format!("DROP DATABASE IF EXISTS {}", ident(&self.name)),
        );
        // Not dropped: its record stays, for the next run's sweep.
        if dropped.is_ok()
            && let Some(claim) = self.claim.take()
        {
            claim.release();
        }
    }
}

/// Drops the scratch databases killed runs left on this server: those the project's ledger
/// records, whose runs are dead, that still carry their record's marker, that nobody uses, and —
/// for tables a restore set aside — whose safety backup was taken. Returns their names. Any
/// other database, whatever its name, is never touched. Without `drop`, only the records of
/// databases that are gone are forgotten.
pub(in crate::provider::mysql) fn sweep(my: &Mysql, drop: bool) -> Result<scratch::Sweep> {
    let Some(ledger) = &my.ledger else {
        return Ok(scratch::Sweep::default());
    };
    let look = |name: &str| -> Result<Option<scratch::Seen>> {
        let exists = |sql: &str| my.query_in(None, &format!("{sql} = {}", literal(name)));
        // A server that keeps no database comments (Oracle MySQL) cannot show a marker: its
        // scratch databases are seen unmarked, and never dropped.
        let comment = if let Ok(rows) =
            exists("SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME")
        {
            match rows.into_iter().next() {
                None => return Ok(None),
                Some(row) => row.into_iter().next().flatten(),
            }
        } else {
            if exists("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME")?
                .is_empty()
            {
                return Ok(None);
            }
            None
        };
        Ok(Some(scratch::Seen {
            comment,
            in_use: !my.sessions_in(name)?.is_empty(),
        }))
    };
    let drop_db = |name: &str| {
        my.query_in(None, &format!("DROP DATABASE IF EXISTS {}", ident(name)))
            .map(|_| ())
    };
    ledger.sweep(&my.server_id(), drop, look, drop_db)
}

/// The target's tables, views, triggers, routines and events as they were before a restore,
/// set aside at the swap.
pub(super) struct ReplacedMysql {
    pub(super) my: Mysql,
    pub(super) name: String,
    pub(super) claim: Option<Claim>,
}

impl Replaced for ReplacedMysql {
    fn provider(&self) -> Box<dyn Provider> {
        Box::new(self.my.clone())
    }

    fn describe(&self) -> String {
        format!("database {}", self.name)
    }

    fn discard(mut self: Box<Self>) -> Result<()> {
        // Recorded first: if the drop fails or is killed, a later sweep may finish it.
        if let Some(claim) = &mut self.claim {
            claim.mark_disposable().map_err(|e| {
                Error::tool(format!("cannot record that {} may be dropped", self.name)).caused_by(e)
            })?;
        }
        self.my
            .query_in(
                None,
                &format!(
                    "SET SESSION lock_wait_timeout = 30; DROP DATABASE {}",
                    ident(&self.name)
                ),
            )
            .map_err(|e| {
                Error::tool(format!(
                    "the restore is in place, but database {}, which held the replaced data, could not be dropped",
                    self.name
                ))
                .caused_by(Cause::in_one_line(e))
                .with_hint("the next restore or verify --deep on this server drops it")
            })?;
        if let Some(claim) = self.claim.take() {
            claim.release();
        }
        Ok(())
    }
}
