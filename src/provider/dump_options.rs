//! What a dump is asked for besides where it goes: the format, the migrations table to read,
//! the tables whose rows are left out, and how thoroughly an SQLite snapshot is checked.

use crate::format::Format;

/// The options of [`super::Provider::dump`].
#[derive(Debug, Clone, Copy)]
pub struct DumpOptions<'a> {
    pub format: Format,
    pub migrations_table: Option<&'a str>,
    /// Patterns of the tables whose rows are left out (see [`super::exclude`]); their schema is
    /// kept, and the returned counts mark them.
    pub exclude_data: &'a [String],
    /// SQLite: `PRAGMA integrity_check` on the snapshot instead of `quick_check`
    /// (`--full-check`, `sqlite_full_check`). Server databases' dumps ignore it.
    pub full_check: bool,
}

/// What a dump records in `verification.integrity_check` when its SQLite snapshot passed
/// `PRAGMA quick_check` rather than the full `integrity_check` ("ok").
pub const QUICK_CHECK_PASSED: &str = "quick";
