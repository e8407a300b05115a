//! The opaque `offset` cursor of a list.
//!
//! DynamoDB pages with an exclusive start key, not a numeric offset, so the
//! `offset` a client sends back is a token naming the last record position a
//! page covered. Every backend resumes strictly after that id. The token is
//! URL-safe base64 of a small JSON object: opaque to clients, extendable
//! (a composite key later) without breaking tokens already handed out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::record::RecordId;

/// Where the next page of a list starts: strictly after the record `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    after: RecordId,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorToken<'a> {
    after: &'a str,
}

/// A token that is not one this API handed out (or was altered).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("not a cursor returned by this API")]
pub struct InvalidCursor;

impl Cursor {
    pub fn after(id: &RecordId) -> Self {
        Self { after: id.clone() }
    }

    /// The id the page starts after.
    pub fn last_id(&self) -> &RecordId {
        &self.after
    }

    pub fn encode(&self) -> String {
        let token = CursorToken {
            after: self.after.as_str(),
        };
        // Serialising a struct of one string cannot fail.
        let json = serde_json::to_vec(&token).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(token: &str) -> Result<Self, InvalidCursor> {
        let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidCursor)?;
        let token: CursorToken<'_> = serde_json::from_slice(&json).map_err(|_| InvalidCursor)?;
        let after = RecordId::parse(token.after).map_err(|_| InvalidCursor)?;
        Ok(Self { after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let cursor = Cursor::after(&RecordId::parse("000-2").unwrap());
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
            Cursor::decode(&forged(r#"{"after":"a/b"}"#)),
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
}
