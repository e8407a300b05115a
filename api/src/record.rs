//! What a record is, and the rules a request body and an `id` must follow.
//!
//! Records are JSON objects of any shape; the only attribute the service
//! interprets is `id`. Every check a body or an id goes through lives here, so
//! the handlers and every backend agree on what is valid.

use std::fmt;

use serde_json::{Map, Value};
use thiserror::Error;

/// A stored record: a JSON object whose `id` attribute is a valid [`RecordId`].
pub type Record = Map<String, Value>;

/// The attribute that holds a record's identity.
pub const ID_FIELD: &str = "id";

/// Longest accepted id, in bytes. DynamoDB allows 2048 for a partition key;
/// 256 keeps ids readable in URLs and logs.
pub const MAX_ID_LEN: usize = 256;

/// Largest accepted request body, in bytes: DynamoDB's item size limit, so a
/// body the API accepts is a body every backend can store.
pub const MAX_BODY_BYTES: usize = 400 * 1024;

/// Largest record a backend stores, in bytes of compact JSON. DynamoDB counts
/// an item's size its own way (names plus values, numbers packed) and enforces
/// its 400 KB limit itself; the other backends hold records to this bound, so
/// an update that grows a record past it fails the same way everywhere.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Whether `record` fits within [`MAX_ITEM_BYTES`].
pub fn fits_item_limit(record: &Record) -> bool {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, record).is_ok() && counter.0 <= MAX_ITEM_BYTES
}

/// A record id that is safe to put in a URL path segment and a database key.
///
/// Rules: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits and `- _ . ~ : @`,
/// and not `.` or `..` (HTTP clients rewrite those path segments, so such a
/// record could never be read back).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);

/// Why a string is not a valid [`RecordId`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidId {
    #[error("`id` must not be empty")]
    Empty,
    #[error("`id` is {0} bytes long; the maximum is {MAX_ID_LEN}")]
    TooLong(usize),
    #[error(
        "`id` contains {0:?}; allowed are ASCII letters, digits and the characters - _ . ~ : @"
    )]
    ForbiddenCharacter(char),
    #[error("`id` must not be `.` or `..`")]
    DotSegment,
}

impl RecordId {
    /// Checks `raw` against the id rules.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        if raw.is_empty() {
            return Err(InvalidId::Empty);
        }
        if raw.len() > MAX_ID_LEN {
            return Err(InvalidId::TooLong(raw.len()));
        }
        if let Some(bad) = raw.chars().find(|c| !is_id_char(*c)) {
            return Err(InvalidId::ForbiddenCharacter(bad));
        }
        if raw == "." || raw == ".." {
            return Err(InvalidId::DotSegment);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':' | '@')
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request body was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidBody {
    #[error("request body is empty; expected a JSON object")]
    Empty,
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    #[error("request body must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("`id` is missing from the request body")]
    MissingId,
    #[error("`id` must be a string, got {0}")]
    IdNotAString(&'static str),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error(
        "`id` in the body ({body}) differs from the id in the path ({path}); an id cannot be changed"
    )]
    IdMismatch { body: String, path: String },
}

/// A validated body for a create: a JSON object with a valid `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub id: RecordId,
    pub record: Record,
}

impl NewRecord {
    pub fn from_body(body: &[u8]) -> Result<Self, InvalidBody> {
        let record = parse_object(body)?;
        let id = match record.get(ID_FIELD) {
            None => return Err(InvalidBody::MissingId),
            Some(Value::String(raw)) => RecordId::parse(raw)?,
            Some(other) => return Err(InvalidBody::IdNotAString(json_type(other))),
        };
        Ok(Self { id, record })
    }
}

/// A validated body for an update: the attributes to set on an existing record.
/// `id` never appears among them: the id of a record cannot change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordChanges(Record);

impl RecordChanges {
    /// Parses an update body for the record at `path_id`. A body `id` equal to
    /// the path's is accepted (clients often send the whole record back) and
    /// dropped; a different one is refused.
    pub fn from_body(body: &[u8], path_id: &RecordId) -> Result<Self, InvalidBody> {
        let mut changes = parse_object(body)?;
        if let Some(body_id) = changes.shift_remove(ID_FIELD)
            && body_id.as_str() != Some(path_id.as_str())
        {
            return Err(InvalidBody::IdMismatch {
                body: body_id.to_string(),
                path: path_id.to_string(),
            });
        }
        Ok(Self(changes))
    }

    /// The attributes to set, never including `id`.
    pub fn fields(&self) -> &Record {
        &self.0
    }

    /// Sets every changed attribute on `record`: a shallow merge, as the
    /// original service and DynamoDB's `SET` do.
    pub fn apply_to(&self, record: &mut Record) {
        for (name, value) in &self.0 {
            record.insert(name.clone(), value.clone());
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Record, InvalidBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidBody::Empty);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(InvalidBody::NotAnObject(json_type(&other))),
        Err(err) => Err(InvalidBody::NotJson(err.to_string())),
    }
}

/// The JSON type of `value`, with an article, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_id(raw: &str, expected: Result<(), InvalidId>) {
        assert_eq!(RecordId::parse(raw).map(|_| ()), expected, "id {raw:?}");
    }

    #[test]
    fn id_rules() {
        check_id("000-1", Ok(()));
        check_id("user@example.com", Ok(()));
        check_id("a:b~c_d.e", Ok(()));
        check_id(&"x".repeat(MAX_ID_LEN), Ok(()));
        check_id("...", Ok(()));
        check_id("", Err(InvalidId::Empty));
        check_id(&"x".repeat(MAX_ID_LEN + 1), Err(InvalidId::TooLong(257)));
        check_id("a/b", Err(InvalidId::ForbiddenCharacter('/')));
        check_id("a b", Err(InvalidId::ForbiddenCharacter(' ')));
        check_id("é", Err(InvalidId::ForbiddenCharacter('é')));
        check_id("a?b", Err(InvalidId::ForbiddenCharacter('?')));
        check_id(".", Err(InvalidId::DotSegment));
        check_id("..", Err(InvalidId::DotSegment));
    }

    fn check_new(body: &str, expected: Result<&str, InvalidBody>) {
        let parsed = NewRecord::from_body(body.as_bytes()).map(|new| new.id.to_string());
        assert_eq!(parsed, expected.map(str::to_owned), "body {body:?}");
    }

    #[test]
    fn create_bodies() {
        check_new(r#"{"id":"a","x":1}"#, Ok("a"));
        check_new("", Err(InvalidBody::Empty));
        check_new(" \n", Err(InvalidBody::Empty));
        check_new("[1]", Err(InvalidBody::NotAnObject("an array")));
        check_new(r#""id""#, Err(InvalidBody::NotAnObject("a string")));
        check_new("42", Err(InvalidBody::NotAnObject("a number")));
        check_new("null", Err(InvalidBody::NotAnObject("null")));
        check_new(r#"{"x":1}"#, Err(InvalidBody::MissingId));
        check_new(r#"{"id":7}"#, Err(InvalidBody::IdNotAString("a number")));
        check_new(r#"{"id":null}"#, Err(InvalidBody::IdNotAString("null")));
        check_new(
            r#"{"id":""}"#,
            Err(InvalidBody::InvalidId(InvalidId::Empty)),
        );
        assert!(matches!(
            NewRecord::from_body(b"{\"id\":"),
            Err(InvalidBody::NotJson(message)) if message.contains("EOF")
        ));
    }

    #[test]
    fn update_bodies_drop_a_matching_id_and_refuse_another() {
        let path_id = RecordId::parse("a").unwrap();
        let same = RecordChanges::from_body(br#"{"id":"a","x":1}"#, &path_id);
        assert_eq!(
            same.map(|c| c.fields().clone()),
            Ok(serde_json::json!({"x": 1}).as_object().cloned().unwrap())
        );
        assert_eq!(
            RecordChanges::from_body(br#"{"id":"b"}"#, &path_id),
            Err(InvalidBody::IdMismatch {
                body: "\"b\"".into(),
                path: "a".into()
            })
        );
        assert_eq!(
            RecordChanges::from_body(br#"{"id":1}"#, &path_id),
            Err(InvalidBody::IdMismatch {
                body: "1".into(),
                path: "a".into()
            })
        );
    }
}
