//! The shape of a dump: plain SQL, PostgreSQL's custom or directory archive, or SQLite's own
//! database image.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain SQL text (`pg_dump -Fp`, `mysqldump`).
    Sql,
    /// `pg_dump -Fc`.
    Custom,
    /// `pg_dump -Fd`.
    Directory,
    /// A consistent image of an SQLite database file: its pages read in one transaction, or a copy
    /// made with SQLite's online backup API.
    Sqlite,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Sql => "sql",
            Format::Custom => "custom",
            Format::Directory => "directory",
            Format::Sqlite => "sqlite",
        }
    }

    /// The file-name extension of a dump in this format, before any compression suffix.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Sql => ".sql",
            Format::Custom => ".dump",
            Format::Directory => ".dir",
            Format::Sqlite => ".sqlite3",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sql" | "plain" => Ok(Format::Sql),
            "custom" => Ok(Format::Custom),
            "directory" => Ok(Format::Directory),
            "sqlite" => Ok(Format::Sqlite),
            other => Err(format!(
                "unknown format `{other}` (expected sql, custom or directory)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
