//! JSON values to DynamoDB attribute values and back, without loss.
//!
//! A record is stored as an item, attribute by attribute, each JSON value as
//! the DynamoDB type that holds it exactly:
//!
//! | JSON          | DynamoDB                                   |
//! | ------------- | ------------------------------------------ |
//! | string        | `S` (the empty string too)                 |
//! | number        | `N`, carrying the number's decimal text    |
//! | `true`/`false`| `BOOL`                                     |
//! | `null`        | `NULL`                                     |
//! | array         | `L`                                        |
//! | object        | `M`                                        |
//!
//! Numbers never pass through a float: `serde_json` keeps a number's text
//! (feature `arbitrary_precision`), which goes to DynamoDB as is, and an `N`
//! coming back is parsed from its text. DynamoDB stores a number normalised,
//! so `5.50` may come back as `5.5` and `-1e-7` as `-0.0000001`: the same
//! value, another spelling. A number DynamoDB cannot hold (more than 38
//! significant digits, magnitude beyond 1E+126 or below 1E-130) is refused by
//! DynamoDB itself, as a validation error the backend reports to the client.
//!
//! This service never writes the other DynamoDB types, but other tools do; an
//! item holding them reads as JSON this way (and a record read like this and
//! written back is stored with the JSON types above, not the original ones):
//!
//! - `SS`: an array of strings; `NS`: an array of numbers;
//! - `B`: a string, the bytes in standard base64 with padding;
//! - `BS`: an array of such base64 strings.
//!
//! The API keeps each record's version in the item, as the number attribute
//! [`VERSION_ATTRIBUTE`]; [`item_to_record`] leaves it out of the record and
//! [`item_version`] reads it (absent: [`Version::UNWRITTEN`]).
//!
//! DynamoDB returns an item's attributes unordered. A record read back lists
//! `id` first, then the other attributes by name (nested objects by name too),
//! so the same item always reads as the same text.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};
use thiserror::Error;

use crate::backend::{VERSION_ATTRIBUTE, Version};
use crate::record::{ID_FIELD, Record};

/// A DynamoDB item: attribute names and their values.
pub type Item = HashMap<String, AttributeValue>;

/// An attribute of an item read from DynamoDB that has no JSON form.
///
/// Items this service writes always convert; this names the attribute of an
/// item some other writer left in a shape we cannot read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("attribute `{path}` cannot be read as JSON: {reason}")]
pub struct UnreadableAttribute {
    /// Where the value sits: `tags[2]`, `address.city`.
    pub path: String,
    pub reason: String,
}

/// The item that stores `record` (without a version; see [`versioned_item`]).
pub fn record_to_item(record: &Record) -> Item {
    record
        .iter()
        .map(|(name, value)| (name.clone(), to_attribute_value(value)))
        .collect()
}

/// The item that stores `record` at `version`. A version attribute in the
/// record is the client's forgery, and is replaced.
pub fn versioned_item(record: &Record, version: Version) -> Item {
    let mut item = record_to_item(record);
    item.insert(VERSION_ATTRIBUTE.to_owned(), version_value(version));
    item
}

/// The DynamoDB number of `version`.
pub fn version_value(version: Version) -> AttributeValue {
    AttributeValue::N(version.number().to_string())
}

/// The version of `item`: [`Version::UNWRITTEN`] when it has no version
/// attribute (another tool wrote it).
pub fn item_version(item: &Item) -> Result<Version, UnreadableAttribute> {
    let unreadable = |found: &dyn std::fmt::Debug| UnreadableAttribute {
        path: VERSION_ATTRIBUTE.to_owned(),
        reason: format!("the API's version must be a non-negative integer, found {found:?}"),
    };
    match item.get(VERSION_ATTRIBUTE) {
        None => Ok(Version::UNWRITTEN),
        Some(AttributeValue::N(text)) => text
            .parse::<u64>()
            .map(Version::new)
            .map_err(|_| unreadable(text)),
        Some(other) => Err(unreadable(other)),
    }
}

/// The DynamoDB value that holds `value` exactly.
pub fn to_attribute_value(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        // With `arbitrary_precision` this is the number's own decimal text.
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute_value).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(name, value)| (name.clone(), to_attribute_value(value)))
                .collect(),
        ),
    }
}

/// The record an item holds, `id` first and the other attributes by name,
/// without the version attribute.
pub fn item_to_record(mut item: Item) -> Result<Record, UnreadableAttribute> {
    item.remove(VERSION_ATTRIBUTE);
    let attributes = sorted_with_id_first(item);
    let mut record = Record::with_capacity(attributes.len());
    for (name, value) in attributes {
        let value = to_json(value)
            .map_err(|error| error.within(PathStep::Key(&name)).into_attribute_error())?;
        record.insert(name, value);
    }
    Ok(record)
}

/// The JSON value `value` holds.
pub fn from_attribute_value(value: AttributeValue) -> Result<Value, UnreadableAttribute> {
    to_json(value).map_err(Unreadable::into_top_level)
}

fn sorted_with_id_first(item: Item) -> Vec<(String, AttributeValue)> {
    let mut attributes: Vec<_> = item.into_iter().collect();
    attributes.sort_by(|(a, _), (b, _)| (a != ID_FIELD, a).cmp(&(b != ID_FIELD, b)));
    attributes
}

/// Why a value is unreadable, and the path to it, innermost step first:
/// the path is built while the error travels out of the recursion, so a
/// value that converts costs no path bookkeeping at all.
#[derive(Debug)]
struct Unreadable {
    reversed_path: Vec<String>,
    reason: String,
}

enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
}

impl Unreadable {
    fn new(reason: String) -> Self {
        Self {
            reversed_path: Vec::new(),
            reason,
        }
    }

    /// The same error, one step further out.
    fn within(mut self, step: PathStep<'_>) -> Self {
        self.reversed_path.push(match step {
            PathStep::Key(name) => format!(".{name}"),
            PathStep::Index(index) => format!("[{index}]"),
        });
        self
    }

    fn into_attribute_error(self) -> UnreadableAttribute {
        let path: String = self
            .reversed_path
            .iter()
            .rev()
            .map(String::as_str)
            .collect();
        UnreadableAttribute {
            path: path.strip_prefix('.').unwrap_or(&path).to_owned(),
            reason: self.reason,
        }
    }

    fn into_top_level(self) -> UnreadableAttribute {
        let mut error = self.into_attribute_error();
        if error.path.is_empty() {
            error.path = "(value)".to_owned();
        }
        error
    }
}

fn to_json(value: AttributeValue) -> Result<Value, Unreadable> {
    Ok(match value {
        AttributeValue::S(text) => Value::String(text),
        AttributeValue::N(text) => Value::Number(parse_number(&text)?),
        AttributeValue::Bool(flag) => Value::Bool(flag),
        // DynamoDB only has `NULL: true`; read any other flag as null too.
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(bytes) => Value::String(BASE64.encode(bytes.as_ref())),
        AttributeValue::Ss(texts) => Value::Array(texts.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(texts) => Value::Array(
            texts
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    parse_number(text)
                        .map(Value::Number)
                        .map_err(|error| error.within(PathStep::Index(index)))
                })
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::Bs(blobs) => Value::Array(
            blobs
                .iter()
                .map(|bytes: &Blob| Value::String(BASE64.encode(bytes.as_ref())))
                .collect(),
        ),
        AttributeValue::L(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    to_json(item).map_err(|error| error.within(PathStep::Index(index)))
                })
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::M(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            let mut object = Map::with_capacity(entries.len());
            for (name, value) in entries {
                let value = to_json(value).map_err(|error| error.within(PathStep::Key(&name)))?;
                object.insert(name, value);
            }
            Value::Object(object)
        }
        // A type added to DynamoDB after this SDK release.
        other => {
            return Err(Unreadable::new(format!(
                "a DynamoDB type this service does not know ({other:?})"
            )));
        }
    })
}

/// Parses DynamoDB's decimal text of a number, keeping that text.
fn parse_number(text: &str) -> Result<Number, Unreadable> {
    text.parse::<Number>()
        .map_err(|_| Unreadable::new(format!("number {text:?} is not a JSON number")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.to_owned())
    }
    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }
    fn m(entries: &[(&str, AttributeValue)]) -> AttributeValue {
        AttributeValue::M(
            entries
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
        )
    }

    /// `json` converts to `attribute` and `attribute` back to the same JSON
    /// text (numbers keep their text: no float on either way).
    fn check(json: &str, attribute: AttributeValue) {
        let value: Value = serde_json::from_str(json).unwrap();
        assert_eq!(to_attribute_value(&value), attribute, "JSON {json}");
        let back = from_attribute_value(attribute).unwrap();
        assert_eq!(back.to_string(), json, "back from DynamoDB");
    }

    #[test]
    fn json_round_trips_exactly() {
        check(r#""text""#, s("text"));
        check(r#""""#, s(""));
        check("true", AttributeValue::Bool(true));
        check("false", AttributeValue::Bool(false));
        check("null", AttributeValue::Null(true));
        check("0", n("0"));
        check("5.50", n("5.50"));
        check("0.1", n("0.1"));
        check("-1e-7", n("-1e-7"));
        check("1e+3", n("1e+3"));
        check("12345678901234567890", n("12345678901234567890"));
        check(
            "-1234567890123456789012345678.9012345678",
            n("-1234567890123456789012345678.9012345678"),
        );
        check("[]", AttributeValue::L(vec![]));
        check("{}", m(&[]));
        check(
            r#"[1,"a",null,[true]]"#,
            AttributeValue::L(vec![
                n("1"),
                s("a"),
                AttributeValue::Null(true),
                AttributeValue::L(vec![AttributeValue::Bool(true)]),
            ]),
        );
        check(
            r#"{"a":{"b":[0.10]},"z":""}"#,
            m(&[
                ("z", s("")),
                ("a", m(&[("b", AttributeValue::L(vec![n("0.10")]))])),
            ]),
        );
    }

    /// Types only other writers use read as JSON, as the module header says.
    fn check_read(attribute: AttributeValue, json: Value) {
        assert_eq!(
            from_attribute_value(attribute.clone()),
            Ok(json),
            "{attribute:?}"
        );
    }

    #[test]
    fn other_writers_types_read_as_documented() {
        check_read(
            AttributeValue::Ss(vec!["b".into(), "a".into()]),
            json!(["b", "a"]),
        );
        check_read(
            AttributeValue::Ns(vec!["1".into(), "2.5".into()]),
            json!([1, 2.5]),
        );
        check_read(
            AttributeValue::B(Blob::new(b"hi\xff".to_vec())),
            json!("aGn/"),
        );
        check_read(
            AttributeValue::Bs(vec![Blob::new(b"a".to_vec()), Blob::new(vec![])]),
            json!(["YQ==", ""]),
        );
        check_read(AttributeValue::Null(false), Value::Null);
        // DynamoDB's normalised spellings are valid JSON numbers (serde_json
        // writes the exponent mark lowercase: the same number).
        check_read(n("-1E-7"), serde_json::from_str("-1e-7").unwrap());
        assert_eq!(from_attribute_value(n("1E+3")).unwrap().to_string(), "1e+3");
    }

    #[test]
    fn records_read_id_first_then_by_name() {
        let item: Item = [
            ("zeta", n("1")),
            ("id", s("a")),
            ("alpha", m(&[("y", n("2")), ("x", n("3"))])),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        let record = item_to_record(item).unwrap();
        assert_eq!(
            Value::Object(record).to_string(),
            r#"{"id":"a","alpha":{"x":3,"y":2},"zeta":1}"#
        );
    }

    #[test]
    fn unreadable_attributes_are_named_by_path() {
        let item: Item = [
            ("id".to_owned(), s("a")),
            (
                "nested".to_owned(),
                m(&[("list", AttributeValue::L(vec![n("1"), n("1.")]))]),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            item_to_record(item),
            Err(UnreadableAttribute {
                path: "nested.list[1]".into(),
                reason: r#"number "1." is not a JSON number"#.into(),
            })
        );
        let set: Item = [("nums".to_owned(), AttributeValue::Ns(vec!["x".into()]))].into();
        assert_eq!(
            item_to_record(set).map_err(|e| e.to_string()),
            Err(
                r#"attribute `nums[0]` cannot be read as JSON: number "x" is not a JSON number"#
                    .into()
            )
        );
        assert_eq!(
            from_attribute_value(n("NaN")).map_err(|e| e.path),
            Err("(value)".into())
        );
    }

    #[test]
    fn a_record_becomes_an_item_attribute_by_attribute() {
        let record: Record =
            serde_json::from_str(r#"{"id":"a","price":5.50,"tags":["x"]}"#).unwrap();
        let item = record_to_item(&record);
        assert_eq!(item.len(), 3);
        assert_eq!(item["id"], s("a"));
        assert_eq!(item["price"], n("5.50"));
        assert_eq!(item["tags"], AttributeValue::L(vec![s("x")]));
    }
}
