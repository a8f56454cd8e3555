//! A table's row count as a manifest records it: exact, the planner's estimate, or none at all
//! for a table whose rows the backup left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Row count of one table, as recorded in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub rows: u64,
    /// The count is the planner's estimate (`pg_class.reltuples`), not `count(*)`: the table
    /// was larger than `row_count_max_table_size`. Estimated counts are never compared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
    /// The backup holds the table's schema but none of its rows (`exclude_table_data`, see
    /// [`super::exclude`]): `rows` is 0, and the count is never compared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_excluded: bool,
}

impl TableStats {
    /// An exact count of `rows`.
    pub fn exact(rows: u64) -> TableStats {
        TableStats {
            rows,
            estimated: false,
            data_excluded: false,
        }
    }

    /// Whether the count may be compared with another: neither estimated nor of a table whose
    /// data the backup left out.
    pub fn is_comparable(&self) -> bool {
        !self.estimated && !self.data_excluded
    }
}

/// Row counts by table, as the manifest names them.
pub type Tables = BTreeMap<String, TableStats>;
