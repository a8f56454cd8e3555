//! How a manifest names a PostgreSQL table: `name` in the `public` schema, `schema.name`
//! elsewhere, where a part that holds a `.` or a `"` is written in double quotes with `""` for a
//! quote (`"dot.ted"`, `sch."x.y"`, `"sch.x".y`). Any other character — a newline, a tab, a
//! quote `'`, unicode — is written as it is: a bare part holds no dot, so every key reads back
//! as one table. Names without a dot or a double quote have the key faber-db always gave them.
//!
//! Earlier versions joined the parts with a bare dot whatever they held; [`legacy`] gives that
//! form, so that their manifests compare equal to what is counted now.

/// The manifest's key of table `table` in schema `schema`.
pub fn table_key(schema: &str, table: &str) -> String {
    if schema == "public" {
        part(table)
    } else {
        format!("{}.{}", part(schema), part(table))
    }
}

/// One part of a key: as it is, or quoted when it holds a `.` or a `"`.
fn part(name: &str) -> String {
    if name.contains(['.', '"']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// The key an earlier faber-db gave the table of `key` (its parts joined by a bare dot), when
/// that differs.
pub fn legacy(key: &str) -> Option<String> {
    let old = split(key)?.join(".");
    (old != key).then_some(old)
}

/// The schema and table a key names (`public` when it names none), when it reads as one table.
pub fn schema_and_table(key: &str) -> Option<(String, String)> {
    let mut parts = split(key)?;
    match parts.len() {
        1 => Some(("public".to_string(), parts.pop()?)),
        2 => {
            let table = parts.pop()?;
            Some((parts.pop()?, table))
        }
        _ => None,
    }
}

/// The parts of a key: `[table]` or `[schema, table]`.
fn split(key: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut rest = key;
    loop {
        let after = if let Some(quoted) = rest.strip_prefix('"') {
            let mut part = String::new();
            let mut chars = quoted.char_indices();
            loop {
                match chars.next()? {
                    (i, '"') if quoted[i + 1..].starts_with('"') => {
                        part.push('"');
                        chars.next();
                    }
                    (i, '"') => {
                        parts.push(part);
                        break &quoted[i + 1..];
                    }
                    (_, c) => part.push(c),
                }
            }
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            parts.push(rest[..end].to_string());
            &rest[end..]
        };
        if after.is_empty() {
            return (parts.len() <= 2).then_some(parts);
        }
        rest = after.strip_prefix('.')?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_keep_their_keys_and_any_other_reads_back_as_one_table() {
        assert_eq!(table_key("public", "events"), "events");
        assert_eq!(table_key("audit", "log"), "audit.log");
        assert_eq!(table_key("public", "line\nbreak"), "line\nbreak");
        assert_eq!(table_key("public", "it's"), "it's");
        assert_eq!(table_key("public", "dot.ted"), "\"dot.ted\"");
        assert_eq!(table_key("public", "quo\"te"), "\"quo\"\"te\"");
        assert_eq!(table_key("sch", "x.y"), "sch.\"x.y\"");
        assert_eq!(table_key("sch.x", "y"), "\"sch.x\".y");
        assert_ne!(table_key("sch", "x.y"), table_key("sch.x", "y"));
        assert_ne!(table_key("public", "a.b"), table_key("a", "b"));
        let names = [
            "public",
            "t",
            "a.b",
            "\"",
            "\"\"",
            ".",
            "x\"y.z",
            "we.ird\nschema",
            "ünïcödé",
        ];
        for schema in names {
            for table in names {
                let key = table_key(schema, table);
                let parts = split(&key).unwrap();
                let expected: Vec<&str> = if schema == "public" {
                    vec![table]
                } else {
                    vec![schema, table]
                };
                assert_eq!(parts, expected, "{key}");
            }
        }
    }

    #[test]
    fn earlier_keys_are_the_parts_joined_by_a_dot() {
        assert_eq!(legacy("events"), None);
        assert_eq!(legacy("audit.log"), None);
        assert_eq!(legacy("\"dot.ted\"").as_deref(), Some("dot.ted"));
        assert_eq!(
            legacy("\"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\"").as_deref(),
            Some("Odd \"Schema\".Mixed.Case (t)")
        );
        assert_eq!(legacy("\"unterminated"), None);
    }
}
