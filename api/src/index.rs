//! Secondary indexes: what `indexes:` in `app.yaml` declares, and the rules
//! a record must follow for DynamoDB to store it under such an index.
//!
//! An index has a partition key attribute and, optionally, a sort key
//! attribute, each declared as a string or a number. The deployer renders
//! each as a global secondary index of the resource's table; the API serves
//! a list from it when the query allows (see [`crate::plan`]). Memory and
//! the embedded store keep no index structure: they answer the same query
//! with the same records in the same order, computed from their records.
//!
//! DynamoDB refuses to write an item whose index key attribute has another
//! type than declared, is null, or is an empty string, and limits the
//! values' sizes (partition 2048 bytes, sort 1024 bytes: "Service, account,
//! and table quotas in Amazon DynamoDB", secondary indexes). Every backend
//! refuses the same bodies, with a 400 naming the attribute and the index
//! ([`IndexKeyProblem`]), checked at the edge before any backend call.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::record::{ID_FIELD, Record, SERVICE_ATTRIBUTES, shorten};

/// Most global secondary indexes DynamoDB allows per table (its default
/// quota, "Secondary indexes" in the DynamoDB quotas).
pub const MAX_INDEXES: usize = 20;
/// Longest partition key value of an index, in bytes (DynamoDB's limit).
pub const MAX_PARTITION_VALUE_BYTES: usize = 2048;
/// Longest sort key value of an index, in bytes (DynamoDB's limit).
pub const MAX_SORT_VALUE_BYTES: usize = 1024;
/// Longest name of an index key attribute, in bytes (DynamoDB's limit for
/// key attribute names).
pub const MAX_KEY_NAME_BYTES: usize = 255;

/// One entry of a resource's `indexes:`.
///
/// ```yaml
/// indexes:
///   - name: users-by-gender
///     partition_key: { name: gender, type: string }
///     sort_key: { name: age, type: number }   # optional
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// The index's name, as DynamoDB knows it: 3 to 255 of `A-Z a-z 0-9 _ - .`.
    pub name: String,
    pub partition_key: KeyAttribute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,
}

/// An index key: a top-level attribute and the type its values must have.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: KeyKind,
}

/// The type of an index key attribute. DynamoDB also allows binary keys;
/// a JSON record has no binary values, so they are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    String,
    Number,
}

impl KeyKind {
    /// DynamoDB's attribute type letter (`AttributeDefinitions`).
    pub fn attribute_type(self) -> &'static str {
        match self {
            KeyKind::String => "S",
            KeyKind::Number => "N",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::String => "string",
            KeyKind::Number => "number",
        })
    }
}

impl IndexConfig {
    /// The index's key attributes: the partition key, then the sort key.
    pub fn keys(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.partition_key).chain(&self.sort_key)
    }

    /// Whether the index holds `record`: DynamoDB's indexes are sparse, and
    /// hold the items that have every key attribute (of its declared type).
    pub fn holds(&self, record: &Record) -> bool {
        self.key_roles().all(|(_, key, max_bytes)| {
            record
                .get(&key.name)
                .is_some_and(|value| fits(key.kind, value, max_bytes))
        })
    }

    /// Each key with its role and the longest value DynamoDB stores in it.
    fn key_roles(&self) -> impl Iterator<Item = (&'static str, &KeyAttribute, usize)> {
        std::iter::once(("partition", &self.partition_key, MAX_PARTITION_VALUE_BYTES)).chain(
            self.sort_key
                .as_ref()
                .map(|key| ("sort", key, MAX_SORT_VALUE_BYTES)),
        )
    }
}

/// Whether DynamoDB stores `value` in a key of type `kind`.
fn fits(kind: KeyKind, value: &serde_json::Value, max_bytes: usize) -> bool {
    match (kind, value) {
        (KeyKind::String, serde_json::Value::String(s)) => !s.is_empty() && s.len() <= max_bytes,
        (KeyKind::Number, serde_json::Value::Number(_)) => true,
        _ => false,
    }
}

/// Checks a resource's `indexes:`; the message names the index and the rule.
pub fn check_indexes(indexes: &[IndexConfig]) -> Result<(), String> {
    if indexes.len() > MAX_INDEXES {
        return Err(format!(
            "`indexes`: {} declared; DynamoDB allows at most {MAX_INDEXES} per table",
            indexes.len()
        ));
    }
    let mut types: Vec<&KeyAttribute> = Vec::new();
    for (position, index) in indexes.iter().enumerate() {
        check_index_name(&index.name)
            .map_err(|rule| format!("`indexes`: name {:?} {rule}", index.name))?;
        if indexes[..position].iter().any(|i| i.name == index.name) {
            return Err(format!("`indexes`: {:?} is declared twice", index.name));
        }
        let at = |what: &str| format!("`indexes`: {:?}: {what}", index.name);
        for key in index.keys() {
            check_key_name(&key.name).map_err(|rule| at(&rule))?;
            if let Some(other) = types
                .iter()
                .find(|k| k.name == key.name && k.kind != key.kind)
            {
                return Err(at(&format!(
                    "`{}` is declared a {} here and a {} in another index; a table \
                     defines each key attribute with one type",
                    key.name, key.kind, other.kind
                )));
            }
            types.push(key);
        }
        if let Some(sort) = &index.sort_key
            && sort.name == index.partition_key.name
        {
            return Err(at("the sort key must differ from the partition key"));
        }
    }
    Ok(())
}

/// DynamoDB's `IndexName` rule: 3 to 255 characters of `[a-zA-Z0-9_.-]`.
fn check_index_name(name: &str) -> Result<(), String> {
    if !(3..=255).contains(&name.len()) {
        return Err("must be 3 to 255 characters long".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "holds {c:?}: only letters, digits, `_`, `-` and `.` are allowed"
        ));
    }
    Ok(())
}

fn check_key_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_KEY_NAME_BYTES {
        return Err(format!(
            "key attribute {:?} must be 1 to {MAX_KEY_NAME_BYTES} bytes long",
            shorten(name)
        ));
    }
    if name == ID_FIELD {
        return Err(
            "`id` is the table's own key: an index on it would list what GET by id reads"
                .to_owned(),
        );
    }
    if SERVICE_ATTRIBUTES.contains(&name) {
        return Err(format!("`{name}` is the API's own attribute"));
    }
    Ok(())
}

/// A record attribute DynamoDB would refuse under an index.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("attribute `{attribute}` is the {role} key of index `{index}`: {rule}")]
pub struct IndexKeyProblem {
    pub attribute: String,
    pub index: String,
    pub role: &'static str,
    /// What the value must be, and what it is.
    pub rule: String,
}

/// Refuses the first attribute of `record` (a create body, or the attributes
/// an update sets) that DynamoDB could not store under one of `indexes`.
pub fn check_index_keys(record: &Record, indexes: &[IndexConfig]) -> Result<(), IndexKeyProblem> {
    for index in indexes {
        let roles = [
            (
                "partition",
                Some(&index.partition_key),
                MAX_PARTITION_VALUE_BYTES,
            ),
            ("sort", index.sort_key.as_ref(), MAX_SORT_VALUE_BYTES),
        ];
        for (role, key, max_bytes) in roles {
            let Some(key) = key else { continue };
            let Some(value) = record.get(&key.name) else {
                continue;
            };
            let fits = match (key.kind, value) {
                (KeyKind::String, serde_json::Value::String(s)) => {
                    !s.is_empty() && s.len() <= max_bytes
                }
                (KeyKind::Number, serde_json::Value::Number(_)) => true,
                _ => false,
            };
            if !fits {
                let expected = match key.kind {
                    KeyKind::String => format!("a non-empty string of at most {max_bytes} bytes"),
                    KeyKind::Number => "a number".to_owned(),
                };
                return Err(IndexKeyProblem {
                    attribute: key.name.clone(),
                    index: index.name.clone(),
                    role,
                    rule: format!("it must be {expected}, or absent; got {}", describe(value)),
                });
            }
        }
    }
    Ok(())
}

fn describe(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        serde_json::Value::String(s) => format!("a string of {} bytes", s.len()),
        serde_json::Value::Number(_) => "a number".to_owned(),
        serde_json::Value::Bool(_) => "a boolean".to_owned(),
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::Array(_) => "an array".to_owned(),
        serde_json::Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn index(name: &str, partition: (&str, KeyKind), sort: Option<(&str, KeyKind)>) -> IndexConfig {
        let key = |(name, kind): (&str, KeyKind)| KeyAttribute {
            name: name.to_owned(),
            kind,
        };
        IndexConfig {
            name: name.to_owned(),
            partition_key: key(partition),
            sort_key: sort.map(key),
        }
    }

    #[test]
    fn declarations_follow_dynamodbs_rules() {
        let by_gender = index("users-by-gender", ("gender", KeyKind::String), None);
        let by_age = index(
            "by_gender.age",
            ("gender", KeyKind::String),
            Some(("age", KeyKind::Number)),
        );
        assert_eq!(check_indexes(&[by_gender.clone(), by_age]), Ok(()));

        let refused = |indexes: &[IndexConfig], fragment: &str| {
            let message = check_indexes(indexes).expect_err(fragment);
            assert!(message.contains(fragment), "{message}");
        };
        refused(&[index("ab", ("g", KeyKind::String), None)], "3 to 255");
        refused(
            &[index("by gender", ("g", KeyKind::String), None)],
            "holds ' '",
        );
        refused(&[by_gender.clone(), by_gender.clone()], "declared twice");
        refused(
            &[index("by-id", ("id", KeyKind::String), None)],
            "table's own key",
        );
        refused(
            &[index("by-v", ("_version", KeyKind::Number), None)],
            "API's own",
        );
        refused(
            &[index("by-x", ("", KeyKind::String), None)],
            "1 to 255 bytes",
        );
        refused(
            &[index(
                "by-g",
                ("g", KeyKind::String),
                Some(("g", KeyKind::String)),
            )],
            "must differ",
        );
        refused(
            &[
                by_gender,
                index("by-g-n", ("gender", KeyKind::Number), None),
            ],
            "one type",
        );
        let many: Vec<IndexConfig> = (0..21)
            .map(|i| index(&format!("index-{i}"), ("g", KeyKind::String), None))
            .collect();
        refused(&many, "at most 20");
    }

    #[test]
    fn key_values_are_what_dynamodb_stores_under_the_index() {
        let indexes = [index(
            "users-by-gender",
            ("gender", KeyKind::String),
            Some(("age", KeyKind::Number)),
        )];
        let record = |value: serde_json::Value| value.as_object().unwrap().clone();
        for fine in [
            json!({"id": "a"}),
            json!({"id": "a", "gender": "F", "age": 31}),
            json!({"id": "a", "age": -1.5e3}),
            json!({"gender": "x".repeat(MAX_PARTITION_VALUE_BYTES)}),
        ] {
            assert_eq!(
                check_index_keys(&record(fine.clone()), &indexes),
                Ok(()),
                "{fine}"
            );
        }
        for (body, fragment) in [
            (json!({"gender": ""}), "got an empty string"),
            (json!({"gender": null}), "got null"),
            (
                json!({"gender": 5}),
                "must be a non-empty string of at most 2048 bytes",
            ),
            (
                json!({"gender": "x".repeat(MAX_PARTITION_VALUE_BYTES + 1)}),
                "got a string of 2049 bytes",
            ),
            (
                json!({"age": "31"}),
                "`age` is the sort key of index `users-by-gender`",
            ),
            (json!({"age": [1]}), "got an array"),
        ] {
            let problem = check_index_keys(&record(body.clone()), &indexes).expect_err("refused");
            assert!(problem.to_string().contains(fragment), "{body}: {problem}");
        }
    }
}
