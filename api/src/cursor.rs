//! The opaque `offset` cursor of a list.
//!
//! DynamoDB pages with an exclusive start key, not a numeric offset, so the
//! `offset` a client sends back is a token naming the last record position a
//! page covered. Every backend resumes strictly after that id. The token is
//! URL-safe base64 of a small JSON object: opaque to clients, extendable
//! (a composite key later) without breaking tokens already handed out.
//!
//! The id is the stored key as it is, not a [`crate::record::RecordId`]: a
//! table other tools also write may hold ids this API would refuse to create
//! (a `/`, a control character), and a list must still page past them.
//!
//! A page served from a secondary index is ordered by the index's sort key,
//! then id, so its cursor also names the index and the last record's sort
//! key value: DynamoDB resumes a Query from the index key and the table key
//! (its `ExclusiveStartKey`), and memory and the embedded store from the same
//! position. Query planning checks a cursor belongs to the plan it is used
//! with.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest key a cursor carries: DynamoDB's limit for a partition key.
const MAX_KEY_BYTES: usize = 2048;

/// Where the next page of a list starts: strictly after the record `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    after: String,
    index: Option<IndexPosition>,
}

/// Where in an index's order a page ended: the index, and the last record's
/// sort key value (`None` for an index without a sort key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPosition {
    pub index: String,
    /// A JSON string or number.
    pub sort: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorToken<'a> {
    // Borrowed unless the JSON escapes a character (`"`, `\\`, a control).
    #[serde(borrow)]
    after: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    index: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sort: Option<serde_json::Value>,
}

/// A token that is not one this API handed out (or was altered).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("not a cursor returned by this API")]
pub struct InvalidCursor;

impl Cursor {
    /// The cursor of a page whose last record has the key `id`.
    pub fn after(id: &str) -> Self {
        Self {
            after: id.to_owned(),
            index: None,
        }
    }

    /// The cursor of a page served from an index, whose last record has the
    /// key `id` and is at `position` in the index.
    pub fn in_index(id: &str, position: IndexPosition) -> Self {
        Self {
            after: id.to_owned(),
            index: Some(position),
        }
    }

    /// The key the page starts after.
    pub fn last_id(&self) -> &str {
        &self.after
    }

    /// The index position the page starts after, for a page served from one.
    pub fn index_position(&self) -> Option<&IndexPosition> {
        self.index.as_ref()
    }

    pub fn encode(&self) -> String {
        let token = CursorToken {
            after: Cow::Borrowed(&self.after),
            index: self
                .index
                .as_ref()
                .map(|position| Cow::Borrowed(position.index.as_str())),
            sort: self
                .index
                .as_ref()
                .and_then(|position| position.sort.clone()),
        };
        // Serialising a struct of one string cannot fail.
        let json = serde_json::to_vec(&token).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(token: &str) -> Result<Self, InvalidCursor> {
        let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidCursor)?;
        let token: CursorToken<'_> = serde_json::from_slice(&json).map_err(|_| InvalidCursor)?;
        if token.after.is_empty() || token.after.len() > MAX_KEY_BYTES {
            return Err(InvalidCursor);
        }
        let index = match (token.index, token.sort) {
            (None, None) => None,
            (None, Some(_)) => return Err(InvalidCursor),
            (Some(index), sort) => {
                if !matches!(
                    sort,
                    None | Some(serde_json::Value::String(_) | serde_json::Value::Number(_))
                ) {
                    return Err(InvalidCursor);
                }
                Some(IndexPosition {
                    index: index.into_owned(),
                    sort,
                })
            }
        };
        Ok(Self {
            after: token.after.into_owned(),
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let cursor = Cursor::after("000-2");
        let token = cursor.encode();
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(Cursor::decode(&token), Ok(cursor));

        let forged = |json: &str| URL_SAFE_NO_PAD.encode(json);
        assert_eq!(Cursor::decode("not base64!"), Err(InvalidCursor));
        assert_eq!(Cursor::decode(&forged("[1]")), Err(InvalidCursor));
        assert_eq!(
            Cursor::decode(&forged(r#"{"after":""}"#)),
            Err(InvalidCursor)
        );
        assert_eq!(
            Cursor::decode(&forged(&format!(r#"{{"after":"{}"}}"#, "k".repeat(2049)))),
            Err(InvalidCursor)
        );
        assert_eq!(
            Cursor::decode(&forged(r#"{"after":"a","x":1}"#)),
            Err(InvalidCursor)
        );
        assert_eq!(
            Cursor::decode(&forged(r#"{"after":"a"}"#)).map(|c| c.last_id().to_string()),
            Ok("a".to_owned())
        );
    }

    #[test]
    fn an_index_position_round_trips_with_its_sort_value_exact() {
        let position = |sort: Option<serde_json::Value>| IndexPosition {
            index: "users-by-gender".to_owned(),
            sort,
        };
        let big: serde_json::Value = serde_json::from_str("12345678901234567890.50").unwrap();
        for sort in [None, Some(serde_json::json!("2026-12-04")), Some(big)] {
            let cursor = Cursor::in_index("000-7", position(sort.clone()));
            let decoded = Cursor::decode(&cursor.encode()).unwrap();
            assert_eq!(decoded, cursor);
            assert_eq!(decoded.index_position(), Some(&position(sort)));
        }
        assert_eq!(
            Cursor::decode(&Cursor::after("a").encode())
                .unwrap()
                .index_position(),
            None
        );

        let forged = |json: &str| URL_SAFE_NO_PAD.encode(json);
        for json in [
            r#"{"after":"a","sort":1}"#,
            r#"{"after":"a","index":"i","sort":true}"#,
            r#"{"after":"a","index":"i","sort":[1]}"#,
        ] {
            assert_eq!(Cursor::decode(&forged(json)), Err(InvalidCursor), "{json}");
        }
    }

    /// Ids the API would not create (other tools wrote them) still page.
    #[test]
    fn any_stored_key_round_trips() {
        for key in ["a/b", "tab\there", "Ana María", "e\u{301}", "100%", "?#&="] {
            let token = Cursor::after(key).encode();
            assert_eq!(Cursor::decode(&token).unwrap().last_id(), key);
        }
    }
}
