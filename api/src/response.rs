//! What the router adds to a response beyond its body: a body that is JSON
//! already, the record's `ETag`, the created record's `Location` and the next
//! page's `next-offset` and `Link` headers, and how a list was served
//! (`x-served-by`). Its own module so that the router
//! and the OpenAPI document, which describes these headers, share them
//! without depending on each other.

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::backend::Version;
use crate::cursor::Cursor;
use crate::plan::Plan;
use crate::record::RecordId;

/// The response header carrying the next page's `offset` cursor.
pub static NEXT_OFFSET_HEADER: HeaderName = HeaderName::from_static("next-offset");

/// The response header of a list saying how it was served: `scan`, or
/// `index <name>` (see [`crate::plan`]).
pub static SERVED_BY_HEADER: HeaderName = HeaderName::from_static("x-served-by");

/// A 200 with a body that is JSON already (what `Json` would answer, without
/// serialising).
pub(crate) fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The ETag of a record at `version`: `"<version>"`.
pub fn etag(version: Version) -> String {
    format!("\"{version}\"")
}

pub(crate) fn add_etag(response: &mut Response, version: Version) {
    // From the String itself: `from_str` would copy it.
    if let Ok(value) = HeaderValue::try_from(etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// The new record's URL, relative to the request's. A relative reference
/// keeps whatever prefix the client used (API Gateway's `/prod` stage, which
/// the router never sees): `mocks/000-3` from `/prod/api/mocks`, and `./000-3`
/// from `/prod/api/mocks/`.
pub(crate) fn created_location(uri: &Uri, resource: &str, id: &RecordId) -> String {
    // An id may hold a space, `?`, `#`, `%` or `+`: all are encoded. The
    // reference always starts with a segment of ours, so a `:` in the id can
    // never read as a scheme.
    let id = utf8_percent_encode(id.as_str(), PATH_SEGMENT);
    if uri.path().ends_with('/') {
        format!("./{id}")
    } else {
        format!("{resource}/{id}")
    }
}

/// The bytes a path segment built from an id keeps as they are: RFC 3986's
/// unreserved characters (ALPHA DIGIT `-` `.` `_` `~`) and `:` `@`, which a
/// segment may hold. The other sub-delimiters (`+` above all, which some
/// servers read as a space) are encoded.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@');

/// `next-offset: <cursor>` and `Link: <?...&offset=<cursor>>; rel="next"`.
/// The link is a query-only reference: it resolves against the URL the client
/// called, stage prefix included, and keeps its other parameters.
pub(crate) fn add_next_page_headers(
    response: &mut Response,
    next: &Cursor,
    raw_query: Option<&str>,
) {
    let token = next.encode();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        if name != "offset" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("offset", &token);
    let link = format!("<?{}>; rel=\"next\"", query.finish());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&token) {
        headers.insert(NEXT_OFFSET_HEADER.clone(), value);
    }
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(header::LINK, value);
    }
}

/// `x-served-by: scan` or `x-served-by: index <name>`.
pub(crate) fn add_served_by(response: &mut Response, plan: &Plan) {
    // Index names are ASCII letters, digits, `_`, `-` and `.`: always a
    // valid header value.
    if let Ok(value) = HeaderValue::try_from(plan.served_by()) {
        response
            .headers_mut()
            .insert(SERVED_BY_HEADER.clone(), value);
    }
}
