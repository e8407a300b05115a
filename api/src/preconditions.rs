//! Optimistic concurrency: `If-Match` and `If-None-Match` (RFC 9110 §8.8.3,
//! §13.1.1, §13.1.2) parsed into what a write expects or a read may skip. A
//! record's ETag is its version as a strong validator, `"3"`; the version
//! travels only in that header, never in a body ([`crate::response::etag`]).

use axum::http::{HeaderMap, HeaderName, header};

use crate::backend::{Expected, Version};
use crate::error::ApiError;

/// Most entity tags one `If-Match` or `If-None-Match` may list: enough for
/// any client, and far below DynamoDB's 100 operands of an `IN` condition.
pub const MAX_ENTITY_TAGS: usize = 16;

/// What `If-Match` asks of a write. Under the strong comparison `If-Match`
/// requires, a weak tag or a tag this API never issued matches no version.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Expected, ApiError> {
    Ok(match entity_tags(headers, &header::IF_MATCH)? {
        None | Some(EntityTags::Any) => Expected::Any,
        Some(EntityTags::List(tags)) => {
            let mut versions: Vec<Version> = tags
                .iter()
                .filter(|tag| !tag.weak)
                .filter_map(|tag| tag.version())
                .collect();
            versions.sort_unstable();
            versions.dedup();
            Expected::OneOf(versions)
        }
    })
}

/// `*`, or a list of entity tags.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EntityTags<'a> {
    Any,
    List(Vec<EntityTag<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EntityTag<'a> {
    weak: bool,
    /// Between the quotes.
    opaque: &'a str,
}

impl EntityTag<'_> {
    /// The version this tag names, if it is one this API issues: a decimal
    /// integer without leading zeros (`"03"` is another tag than `"3"`).
    fn version(&self) -> Option<Version> {
        let number: u64 = self.opaque.parse().ok()?;
        (number.to_string() == self.opaque).then_some(Version::new(number))
    }
}

impl EntityTags<'_> {
    /// `If-None-Match`'s weak comparison: `*` matches any stored version.
    pub(crate) fn matches_weakly(&self, version: Version) -> bool {
        match self {
            EntityTags::Any => true,
            EntityTags::List(tags) => tags.iter().any(|tag| tag.version() == Some(version)),
        }
    }
}

/// The entity tags of every `name` header, or `None` without one. A value
/// that does not follow the grammar is a 400 naming the header: guessing
/// what a client meant by a precondition could write where it meant not to.
pub(crate) fn entity_tags<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<EntityTags<'a>>, ApiError> {
    let invalid = |reason: &str| ApiError::Malformed(format!("invalid {name} header: {reason}"));
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    let mut any = false;
    for value in values {
        let text = value
            .to_str()
            .map_err(|_| invalid("it is not visible ASCII"))?;
        if text.trim() == "*" {
            any = true;
            continue;
        }
        parse_entity_tags(text, &mut tags).map_err(invalid)?;
    }
    match (any, tags.len()) {
        (true, 0) => Ok(Some(EntityTags::Any)),
        (true, _) => Err(invalid("`*` cannot be combined with entity tags")),
        (false, 0) => Err(invalid(
            "expected `*` or a list of quoted entity tags such as \"3\"",
        )),
        (false, count) if count > MAX_ENTITY_TAGS => Err(invalid(&format!(
            "{count} entity tags; the maximum is {MAX_ENTITY_TAGS}"
        ))),
        (false, _) => Ok(Some(EntityTags::List(tags))),
    }
}

/// Appends the entity tags of one header value: `#( [ W/ ] DQUOTE *etagc DQUOTE )`,
/// empty list elements allowed.
fn parse_entity_tags<'a>(text: &'a str, tags: &mut Vec<EntityTag<'a>>) -> Result<(), &'static str> {
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(());
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(quoted) => (true, quoted),
            None => (false, rest),
        };
        let inner = quoted
            .strip_prefix('"')
            .ok_or("an entity tag must be quoted, as in \"3\"")?;
        let end = inner
            .find('"')
            .ok_or("an entity tag lacks its closing quote")?;
        let opaque = &inner[..end];
        // etagc: visible ASCII other than `"` (header values are ASCII here).
        if opaque.bytes().any(|byte| !byte.is_ascii_graphic()) {
            return Err("an entity tag holds a character outside visible ASCII");
        }
        tags.push(EntityTag { weak, opaque });
        rest = inner[end + 1..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(',') {
            return Err("entity tags must be separated by commas");
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::response::etag;

    fn headers(name: &HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn expected(values: &[&str]) -> Result<Expected, String> {
        if_match(&headers(&header::IF_MATCH, values)).map_err(|error| error.to_string())
    }

    fn versions(numbers: &[u64]) -> Expected {
        Expected::OneOf(numbers.iter().copied().map(Version::new).collect())
    }

    #[test]
    fn if_match_names_versions() {
        assert_eq!(expected(&[]), Ok(Expected::Any));
        assert_eq!(expected(&["*"]), Ok(Expected::Any));
        assert_eq!(expected(&[" * "]), Ok(Expected::Any));
        assert_eq!(expected(&["\"3\""]), Ok(versions(&[3])));
        assert_eq!(expected(&["\"0\""]), Ok(versions(&[0])));
        assert_eq!(expected(&["\"5\", \"3\",\"5\""]), Ok(versions(&[3, 5])));
        assert_eq!(expected(&["\"3\"", "\"4\""]), Ok(versions(&[3, 4])));
        assert_eq!(expected(&[",\"3\",,"]), Ok(versions(&[3])));
        // Tags this API never issues, or weak ones, match no version.
        assert_eq!(expected(&["W/\"3\""]), Ok(versions(&[])));
        assert_eq!(
            expected(&["\"03\", \"x\", \"\", \"-1\", \"+3\""]),
            Ok(versions(&[]))
        );
        assert_eq!(expected(&["\"18446744073709551616\""]), Ok(versions(&[])));
        assert_eq!(expected(&["\"a,b\""]), Ok(versions(&[])));
    }

    #[test]
    fn malformed_if_match_is_refused_naming_the_header() {
        for bad in [
            &["3"][..],
            &["\"3"],
            &["\"3\" \"4\""],
            &[""],
            &[" , "],
            &["*, \"3\""],
            &["*", "\"3\""],
            &["W/3"],
        ] {
            let error = expected(bad).unwrap_err();
            assert!(
                error.starts_with("invalid if-match header: "),
                "{bad:?}: {error}"
            );
        }
        let many = vec!["\"1\""; MAX_ENTITY_TAGS + 1].join(",");
        assert!(
            expected(&[&many])
                .unwrap_err()
                .contains("the maximum is 16")
        );
        let mut non_ascii = HeaderMap::new();
        non_ascii.insert(
            header::IF_MATCH,
            HeaderValue::from_bytes("\"é\"".as_bytes()).unwrap(),
        );
        assert!(if_match(&non_ascii).is_err());
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tags = |value: &str| {
            let map = headers(&header::IF_NONE_MATCH, &[value]);
            entity_tags(&map, &header::IF_NONE_MATCH)
                .unwrap()
                .unwrap()
                .matches_weakly(Version::new(3))
        };
        assert!(tags("\"3\""));
        assert!(tags("W/\"3\""));
        assert!(tags("\"1\", \"3\""));
        assert!(tags("*"));
        assert!(!tags("\"4\""));
        assert_eq!(etag(Version::new(3)), "\"3\"");
    }
}
