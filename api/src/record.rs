//! What a record is, and the rules a request body and an `id` must follow.
//!
//! Records are JSON objects of any shape; the only attribute the service
//! interprets is `id`. Every check a body or an id goes through lives here, so
//! the handlers and every backend agree on what is valid.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use thiserror::Error;

/// A stored record: a JSON object whose `id` attribute is a valid [`RecordId`].
pub type Record = Map<String, Value>;

/// The attribute that holds a record's identity.
pub const ID_FIELD: &str = "id";

/// Longest accepted id, in bytes of UTF-8. DynamoDB allows 2048 for a
/// partition key; half of it leaves room for the percent-encoding of a URL
/// (and for a composite key later) while any id a person or a tool writes fits.
pub const MAX_ID_LEN: usize = 1024;

/// Longest id, in characters, that is sure to be within [`MAX_ID_LEN`] bytes
/// whatever it is made of (a character is at most 4 bytes of UTF-8). JSON
/// Schema counts characters, so this is the length the OpenAPI document can
/// promise; longer ids within the byte limit are accepted too.
pub const MAX_ID_CHARS: usize = MAX_ID_LEN / 4;

/// Largest accepted request body, in bytes: DynamoDB's item size limit, so a
/// body the API accepts is a body every backend can store.
pub const MAX_BODY_BYTES: usize = 400 * 1024;

/// Largest record a backend stores, in bytes of compact JSON. DynamoDB counts
/// an item's size its own way (names plus values, numbers packed) and enforces
/// its 400 KB limit itself; the other backends hold records to this bound, so
/// an update that grows a record past it fails the same way everywhere.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Most top-level attributes in one request body (`id` included). DynamoDB
/// has no such limit, but one UpdateItem can set only about 290 attributes
/// (its expressions are limited to 4 KB): 256 keeps every accepted body
/// writable in one call, on every backend.
pub const MAX_ATTRIBUTES: usize = 256;

/// Deepest nesting of arrays and objects inside a record: DynamoDB stores
/// documents up to 32 levels deep. Checked before the body is parsed, so a
/// 10,000-level body costs one linear scan, never a deep recursion.
pub const MAX_DEPTH: usize = 32;

/// Longest top-level attribute name, in characters (what JSON Schema's
/// `maxLength` counts, so the OpenAPI document states it exactly); bodies,
/// `fields` and `filters` share it, so every attribute can be queried.
/// DynamoDB allows 64 KB for an attribute name; 255 characters keeps names
/// readable and within the 255 bytes of an index key name for ASCII names.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 255;

/// Most significant digits in a number: DynamoDB's precision.
pub const MAX_NUMBER_DIGITS: usize = 38;

/// Largest decimal exponent of a number's first significant digit: DynamoDB
/// stores magnitudes up to 9.9999999999999999999999999999999999999E+125.
pub const MAX_NUMBER_EXPONENT: i128 = 125;

/// Smallest decimal exponent of a non-zero number: DynamoDB's 1E-130.
pub const MIN_NUMBER_EXPONENT: i128 = -130;

/// Attributes the API maintains itself, which no client may write on any
/// resource, whatever `protected:` says: the optimistic-concurrency version
/// (a client writing it could forge or reset the `ETag` of a record).
/// Any further attribute the API comes to maintain belongs here too.
pub const SERVICE_ATTRIBUTES: &[&str] = &[VERSION_ATTRIBUTE];

/// The attribute in which the DynamoDB and embedded stores keep a record's
/// version, beside the client's attributes. Clients may not write it (the
/// router refuses a body holding it, and every backend ignores it in what it
/// is given), never read it (every backend strips it from records), and may
/// not filter on it. The leading underscore keeps it apart from ordinary
/// attribute names; items written without it are at [`crate::backend::Version::UNWRITTEN`].
pub const VERSION_ATTRIBUTE: &str = "_version";

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

/// A record id: any string a URL path segment can carry, percent-encoded,
/// through every runtime the API has (a socket, API Gateway REST and HTTP
/// APIs in front of Lambda).
///
/// Rules: 1 to [`MAX_ID_LEN`] bytes of UTF-8, no control character (they
/// cannot be typed, logged or shown safely, and API Gateway and URL parsers
/// strip them from the ends of a path), no `/`, and not `.` or `..`. No
/// normalisation: `é` composed and `e` + U+0301 are two ids, as in DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);

/// Why a string is not a valid [`RecordId`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidId {
    #[error("`id` must not be empty")]
    Empty,
    #[error("`id` is {0} bytes long in UTF-8; the maximum is {MAX_ID_LEN}")]
    TooLong(usize),
    #[error("`id` contains the control character U+{:04X}; control characters are not allowed", u32::from(*.0))]
    ControlCharacter(char),
    /// API Gateway decodes `%2F` to `/` before the function sees the path
    /// (HTTP APIs always, the REST API emulator too), so a record whose id
    /// holds a `/` could be created but never read, updated or deleted there.
    #[error(
        "`id` contains `/`, which cannot be used: behind API Gateway a `%2F` in \
         the path arrives as `/`, so the record could never be addressed"
    )]
    Slash,
    #[error("`id` must not be `.` or `..`: HTTP clients rewrite those path segments")]
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
        if let Some(control) = raw.chars().find(|c| c.is_control()) {
            return Err(InvalidId::ControlCharacter(control));
        }
        if raw.contains('/') {
            return Err(InvalidId::Slash);
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

/// Lets a map keyed by ids be searched by a plain key (a cursor's).
impl std::borrow::Borrow<str> for RecordId {
    fn borrow(&self) -> &str {
        &self.0
    }
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
    #[error("request body has {0} attributes; the maximum is {MAX_ATTRIBUTES}")]
    TooManyAttributes(usize),
    #[error("request body is nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("an attribute name is empty")]
    EmptyAttributeName,
    #[error(
        "attribute name `{name}` is {len} characters long; the maximum is {MAX_ATTRIBUTE_NAME_LEN}"
    )]
    AttributeNameTooLong { name: String, len: usize },
    #[error("duplicate attribute `{0}` in the request body")]
    DuplicateAttribute(String),
    #[error("attribute `{attribute}`: the number {number} cannot be stored: {reason}")]
    Number {
        attribute: String,
        number: String,
        reason: &'static str,
    },
    #[error("attribute `{0}` may not be written")]
    Protected(String),
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
                // Clipped: the body may hold a 400 KiB value here.
                body: shorten(&body_id.to_string()),
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

/// Refuses the first of `protected` (and [`SERVICE_ATTRIBUTES`]) that `record`
/// sets. A create or update body goes through this before it reaches a backend.
pub fn check_protected(record: &Record, protected: &[String]) -> Result<(), InvalidBody> {
    let refused = protected
        .iter()
        .map(String::as_str)
        .chain(SERVICE_ATTRIBUTES.iter().copied())
        .find(|name| record.contains_key(*name));
    match refused {
        Some(name) => Err(InvalidBody::Protected(name.to_owned())),
        None => Ok(()),
    }
}

fn parse_object(body: &[u8]) -> Result<Record, InvalidBody> {
    // RFC 8259 §8.1 lets a parser ignore a UTF-8 byte order mark; editors on
    // Windows write one, and `curl -d @file.json` sends it along.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidBody::Empty);
    }
    // The record object itself is level 0 of the nesting.
    if nesting_depth_exceeds(body, MAX_DEPTH + 1) {
        return Err(InvalidBody::TooDeep);
    }
    let record = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(other) => return Err(InvalidBody::NotAnObject(json_type(&other))),
        Err(err) => return Err(InvalidBody::NotJson(err.to_string())),
    };
    check_unique_keys(body)?;
    check_record(&record)?;
    Ok(record)
}

/// Whether the arrays and objects of `json` nest deeper than `max`. A byte
/// scan, not a parse: it must stay cheap and iterative for any input, valid
/// JSON or not (serde_json would stop at 128 levels with a less useful message).
fn nesting_depth_exceeds(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Refuses an object (at any level) that repeats a key. serde_json keeps the
/// last of duplicate keys silently; a client that sends `{"role":"user",
/// "role":"admin"}` meant something, and a proxy or validator in front of the
/// API that keeps the first would see another record than the one stored.
/// Runs on a body already known to be JSON nested at most [`MAX_DEPTH`] deep.
fn check_unique_keys(body: &[u8]) -> Result<(), InvalidBody> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let seed = UniqueKeys {
        duplicate: &duplicate,
        path: String::new(),
    };
    match seed.deserialize(&mut deserializer) {
        Ok(()) => Ok(()),
        Err(err) => Err(match duplicate.into_inner() {
            Some(path) => InvalidBody::DuplicateAttribute(path),
            None => InvalidBody::NotJson(err.to_string()),
        }),
    }
}

/// Walks a JSON document without building it, failing on a repeated key and
/// leaving the repeated key's path (`a.b[2].c`) in `duplicate`.
struct UniqueKeys<'a> {
    duplicate: &'a RefCell<Option<String>>,
    path: String,
}

impl UniqueKeys<'_> {
    fn child(&self, step: fmt::Arguments<'_>) -> Self {
        Self {
            duplicate: self.duplicate,
            path: format!("{}{step}", self.path),
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(self.child(format_args!("[{index}]")))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    // With `arbitrary_precision`, serde_json hands a number over as a
    // one-entry map holding its text: it passes through here unharmed.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = if self.path.is_empty() {
                self.child(format_args!("{key}"))
            } else {
                self.child(format_args!(".{key}"))
            };
            if seen.contains(&key) {
                *self.duplicate.borrow_mut() = Some(shorten(&child.path));
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(child)?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// The limits on a parsed body: attribute count, names, numbers.
fn check_record(record: &Record) -> Result<(), InvalidBody> {
    if record.len() > MAX_ATTRIBUTES {
        return Err(InvalidBody::TooManyAttributes(record.len()));
    }
    for (name, value) in record {
        if name.is_empty() {
            return Err(InvalidBody::EmptyAttributeName);
        }
        let len = name.chars().count();
        if len > MAX_ATTRIBUTE_NAME_LEN {
            return Err(InvalidBody::AttributeNameTooLong {
                name: shorten(name),
                len,
            });
        }
        check_numbers(value, name)?;
    }
    Ok(())
}

/// Refuses any number in `value` that DynamoDB cannot store, naming the
/// attribute (`path`) that holds it. Recursion is bounded by [`MAX_DEPTH`].
fn check_numbers(value: &Value, path: &str) -> Result<(), InvalidBody> {
    match value {
        Value::Number(number) => {
            let text = number.to_string();
            match number_problem(&text) {
                Some(reason) => Err(InvalidBody::Number {
                    attribute: shorten(path),
                    number: shorten(&text),
                    reason,
                }),
                None => Ok(()),
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| check_numbers(item, &format!("{path}[{index}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(key, item)| check_numbers(item, &format!("{path}.{key}"))),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// Why DynamoDB could not store the JSON number `text`, if it could not.
/// Every backend refuses the same numbers, so a record the memory backend
/// accepts can move to DynamoDB unchanged.
fn number_problem(text: &str) -> Option<&'static str> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = || integer.bytes().chain(fraction.bytes());
    let leading_zeros = digits().take_while(|d| *d == b'0').count();
    let total = integer.len() + fraction.len();
    if leading_zeros == total {
        return None; // zero, whatever its exponent
    }
    let trailing_zeros = digits().rev().take_while(|d| *d == b'0').count();
    if total - leading_zeros - trailing_zeros > MAX_NUMBER_DIGITS {
        return Some("it has more than 38 significant digits, DynamoDB's precision");
    }
    let exponent = match exponent.map(|e| e.parse::<i128>()) {
        None => 0,
        Some(Ok(e)) => e,
        // An exponent beyond i128 is beyond any limit, on its side.
        Some(Err(_)) if exponent.is_some_and(|e| e.starts_with('-')) => i128::MIN / 2,
        Some(Err(_)) => i128::MAX / 2,
    };
    // The decimal exponent of the first significant digit: d.ddd × 10^adjusted.
    let adjusted = exponent + integer.len() as i128 - 1 - leading_zeros as i128;
    if adjusted > MAX_NUMBER_EXPONENT {
        Some("its magnitude is above 9.99E+125, DynamoDB's largest number")
    } else if adjusted < MIN_NUMBER_EXPONENT {
        Some("its magnitude is below 1E-130, DynamoDB's smallest non-zero number")
    } else {
        None
    }
}

/// Clips client input quoted back in an error message (a body, a query): the
/// first 64 characters and `…`.
pub(crate) fn shorten(input: &str) -> String {
    const MAX: usize = 64;
    match input.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &input[..end]),
        None => input.to_owned(),
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
        check_id("...", Ok(()));
        for any in [
            "Ana María",
            "a+b@example.com",
            "ürün-7",
            "John Smith",
            "100%",
            "a?b#c",
            " x ",
        ] {
            check_id(any, Ok(()));
        }
        // Composed and decomposed forms are different ids, both valid.
        check_id("\u{e9}", Ok(()));
        check_id("e\u{301}", Ok(()));
        check_id(&"x".repeat(MAX_ID_LEN), Ok(()));
        check_id(&"é".repeat(MAX_ID_LEN / 2), Ok(()));
        check_id(&"😀".repeat(MAX_ID_CHARS), Ok(()));
        check_id("", Err(InvalidId::Empty));
        check_id(&"x".repeat(MAX_ID_LEN + 1), Err(InvalidId::TooLong(1025)));
        check_id(
            &"😀".repeat(MAX_ID_CHARS + 1),
            Err(InvalidId::TooLong(1028)),
        );
        check_id("a/b", Err(InvalidId::Slash));
        for control in [
            '\0', '\t', '\n', '\r', '\u{15}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            check_id(
                &format!("a{control}"),
                Err(InvalidId::ControlCharacter(control)),
            );
        }
        check_id(".", Err(InvalidId::DotSegment));
        check_id("..", Err(InvalidId::DotSegment));
        assert_eq!(
            InvalidId::ControlCharacter('\t').to_string(),
            "`id` contains the control character U+0009; control characters are not allowed"
        );
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
    fn numbers_dynamodb_cannot_store_are_refused() {
        let cases: &[(&str, Option<&str>)] = &[
            ("0", None),
            ("-0.000e999999999999999999999999", None),
            ("5.50", None),
            ("12345678901234567890123456789012345678", None),
            ("123456789012345678901234567890123456780000", None),
            ("0.00012345678901234567890123456789012345678", None),
            (
                "123456789012345678901234567890123456789",
                Some("38 significant"),
            ),
            (
                "1.23456789012345678901234567890123456789",
                Some("38 significant"),
            ),
            ("9.9999999999999999999999999999999999999e125", None),
            ("-9.9999999999999999999999999999999999999E+125", None),
            ("1e126", Some("above")),
            ("10e125", Some("above")),
            ("1e400", Some("above")),
            ("1e99999999999999999999999999999999999999999", Some("above")),
            ("1e-130", None),
            ("0.1e-129", None),
            ("1e-131", Some("below")),
            (
                "-1e-99999999999999999999999999999999999999999",
                Some("below"),
            ),
        ];
        for (text, expected) in cases {
            let problem = number_problem(text);
            match expected {
                None => assert_eq!(problem, None, "{text}"),
                Some(fragment) => assert!(
                    problem.is_some_and(|p| p.contains(fragment)),
                    "{text}: {problem:?}"
                ),
            }
        }
    }

    #[test]
    fn body_limits() {
        let refused = |body: String, expected: InvalidBody| {
            assert_eq!(
                NewRecord::from_body(body.as_bytes()).map(|_| ()),
                Err(expected),
                "{}",
                &body[..body.len().min(80)]
            );
        };
        let nested = |levels: usize| {
            format!(
                r#"{{"id":"a","x":{}1{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(NewRecord::from_body(nested(MAX_DEPTH).as_bytes()).is_ok());
        refused(nested(MAX_DEPTH + 1), InvalidBody::TooDeep);
        refused(nested(10_000), InvalidBody::TooDeep);
        // Brackets inside strings are not nesting.
        let in_string = format!(
            r#"{{"id":"a","x":"{}\"{}"}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(NewRecord::from_body(in_string.as_bytes()).is_ok());

        let attributes = |count: usize| {
            let mut record = Record::new();
            record.insert("id".into(), "a".into());
            for i in 1..count {
                record.insert(format!("a{i}"), i.into());
            }
            Value::Object(record).to_string()
        };
        assert!(NewRecord::from_body(attributes(MAX_ATTRIBUTES).as_bytes()).is_ok());
        refused(
            attributes(MAX_ATTRIBUTES + 1),
            InvalidBody::TooManyAttributes(257),
        );

        refused(r#"{"id":"a","":1}"#.into(), InvalidBody::EmptyAttributeName);
        let long = "n".repeat(MAX_ATTRIBUTE_NAME_LEN + 1);
        refused(
            format!(r#"{{"id":"a","{long}":1}}"#),
            InvalidBody::AttributeNameTooLong {
                name: shorten(&long),
                len: 256,
            },
        );
        assert!(
            NewRecord::from_body(format!(r#"{{"id":"a","{}":1}}"#, &long[1..]).as_bytes()).is_ok()
        );

        refused(
            r#"{"id":"a","role":"user","role":"admin"}"#.into(),
            InvalidBody::DuplicateAttribute("role".into()),
        );
        refused(
            r#"{"id":"a","x":[1,{"k":1,"k":2}]}"#.into(),
            InvalidBody::DuplicateAttribute("x[1].k".into()),
        );
        refused(
            r#"{"id":"a","id":"b"}"#.into(),
            InvalidBody::DuplicateAttribute("id".into()),
        );
        refused(
            r#"{"id":"a","x":{"y":[1e400]}}"#.into(),
            InvalidBody::Number {
                attribute: "x.y[0]".into(),
                number: "1e+400".into(), // serde_json's spelling of it
                reason: "its magnitude is above 9.99E+125, DynamoDB's largest number",
            },
        );
        // A UTF-8 byte order mark is ignored.
        assert!(NewRecord::from_body(b"\xEF\xBB\xBF{\"id\":\"a\"}").is_ok());
    }

    #[test]
    fn protected_attributes_are_refused_by_name() {
        let record = |json: Value| json.as_object().cloned().unwrap();
        let protected = vec!["ttl".to_owned()];
        assert_eq!(
            check_protected(&record(serde_json::json!({"id":"a","x":1})), &protected),
            Ok(())
        );
        assert_eq!(
            check_protected(&record(serde_json::json!({"id":"a","ttl":1})), &protected),
            Err(InvalidBody::Protected("ttl".into()))
        );
        assert_eq!(
            check_protected(&record(serde_json::json!({"_version":1})), &[]),
            Err(InvalidBody::Protected("_version".into()))
        );
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
