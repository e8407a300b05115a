//! The HTTP surface: routes, handlers, and the headers of the contract.
//!
//! [`router`] is the whole application as an axum `Router`; the binary serves
//! it over a socket or through the Lambda runtime, and tests call it directly.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use crate::backend::{Expected, Version};
use crate::config::Operation;
use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::logging::TraceRequestsLayer;
use crate::mapper::{Resource, ResourceMap};
use crate::openapi::{ApiDescription, docs_response};
use crate::query::ListQuery;
use crate::record::{MAX_BODY_BYTES, NewRecord, RecordChanges, RecordId};

/// The response header carrying the next page's `offset` cursor.
pub static NEXT_OFFSET_HEADER: HeaderName = HeaderName::from_static("next-offset");

/// Builds the application over `resources`.
pub fn router(resources: ResourceMap) -> Router {
    let state = Arc::new(resources);
    // Described from the map the handlers serve: it cannot drift.
    let description = Arc::new(ApiDescription::new(Arc::clone(&state)));
    // Each route is also served with a trailing slash, without a redirect:
    // behind API Gateway a redirect would drop the `/prod` stage.
    Router::new()
        .route(
            "/openapi.json",
            get(move || std::future::ready(description.json_response())),
        )
        .route("/docs", get(|| std::future::ready(docs_response())))
        .route("/api/ping", get(ping))
        .route("/api/ping/", get(ping))
        .route("/api/{resource}", get(list).post(create))
        .route("/api/{resource}/", get(list).post(create))
        .route("/api/{resource}/{id}", get(read).put(update).delete(delete))
        .route(
            "/api/{resource}/{id}/",
            get(read).put(update).delete(delete),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // One `layer` call, not one per layer: axum wraps every route once
        // per call, in a boxed service whose future is boxed on every request.
        .layer((TraceRequestsLayer, DefaultBodyLimit::max(MAX_BODY_BYTES)))
}

type Resources = State<Arc<ResourceMap>>;

async fn ping() -> Json<serde_json::Value> {
    Json(json!({ "result": "pong" }))
}

async fn list(
    State(resources): Resources,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw_query): RawQuery,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(name) = path?;
    let resource = find(&resources, &name, Operation::List, &method, &uri)?;
    let query = ListQuery::parse(raw_query.as_deref())?;
    let page = resource.backend.list_json(&query).await?;
    let mut response = json_response(page.body);
    if let Some(next) = page.next {
        add_next_page_headers(&mut response, &next, raw_query.as_deref());
    }
    Ok(response)
}

async fn read(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(
        &resources,
        &name,
        Operation::Get,
        request.method(),
        request.uri(),
    )?;
    let id = RecordId::parse(&id)?;
    let unchanged_if = entity_tags(request.headers(), &header::IF_NONE_MATCH)?;
    let stored = resource.backend.get_json(&id).await?;
    let mut response = match unchanged_if {
        Some(tags) if tags.matches_weakly(stored.version) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        _ => json_response(stored.body),
    };
    add_etag(&mut response, stored.version);
    Ok(response)
}

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

async fn create(
    State(resources): Resources,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    request: Request,
) -> Result<Response, ApiError> {
    let Path(name) = path?;
    let resource = find(&resources, &name, Operation::Create, &method, &uri)?;
    // The body is read only once the resource is known to accept it.
    let body = Bytes::from_request(request, &()).await?;
    let new = NewRecord::from_body(&body)?;
    resource.check_writable(&new.record)?;
    let location = created_location(&uri, &name, &new.id);
    let stored = resource.backend.create_versioned(new).await?;
    let mut response = (StatusCode::CREATED, Json(stored.record)).into_response();
    add_etag(&mut response, stored.version);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn update(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    uri: Uri,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(&resources, &name, Operation::Update, &method, &uri)?;
    let id = RecordId::parse(&id)?;
    let expected = if_match(request.headers())?;
    let body = Bytes::from_request(request, &()).await?;
    let changes = RecordChanges::from_body(&body, &id)?;
    resource.check_writable(changes.fields())?;
    let stored = resource.backend.update_if(&id, changes, &expected).await?;
    let mut response = Json(stored.record).into_response();
    add_etag(&mut response, stored.version);
    Ok(response)
}

async fn delete(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(&resources, &name, Operation::Delete, &method, &uri)?;
    let id = RecordId::parse(&id)?;
    let expected = if_match(&headers)?;
    resource.backend.delete_if(&id, &expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method,
        path: uri.path().to_owned(),
    }
}

/// For methods no route has (PATCH, ...); axum adds the `Allow` header.
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
        allow: Vec::new(),
    }
}

/// The resource named `name`, if it exists and allows `operation`.
fn find<'a>(
    resources: &'a ResourceMap,
    name: &str,
    operation: Operation,
    method: &Method,
    uri: &Uri,
) -> Result<&'a Resource, ApiError> {
    let resource = resources
        .get(name)
        .ok_or_else(|| ApiError::UnknownResource(name.to_owned()))?;
    if resource.allows(operation) {
        return Ok(resource);
    }
    let on_collection = matches!(operation, Operation::List | Operation::Create);
    let candidates: &[(Operation, Method)] = if on_collection {
        &[
            (Operation::List, Method::GET),
            (Operation::Create, Method::POST),
        ]
    } else {
        &[
            (Operation::Get, Method::GET),
            (Operation::Update, Method::PUT),
            (Operation::Delete, Method::DELETE),
        ]
    };
    Err(ApiError::MethodNotAllowed {
        method: method.clone(),
        path: uri.path().to_owned(),
        allow: candidates
            .iter()
            .filter(|(op, _)| resource.allows(*op))
            .map(|(_, m)| m.clone())
            .collect(),
    })
}

/// The new record's URL, relative to the request's. A relative reference
/// keeps whatever prefix the client used (API Gateway's `/prod` stage, which
/// the router never sees): `mocks/000-3` from `/prod/api/mocks`, and `./000-3`
/// from `/prod/api/mocks/`.
fn created_location(uri: &Uri, resource: &str, id: &RecordId) -> String {
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
fn add_next_page_headers(response: &mut Response, next: &Cursor, raw_query: Option<&str>) {
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

// ---------------------------------------------------------------------------
// Optimistic concurrency: `ETag`, `If-Match`, `If-None-Match` (RFC 9110 §8.8.3,
// §13.1.1, §13.1.2). A record's ETag is its version as a strong validator,
// `"3"`; the version travels only in this header, never in a body.
// ---------------------------------------------------------------------------

/// Most entity tags one `If-Match` or `If-None-Match` may list: enough for
/// any client, and far below DynamoDB's 100 operands of an `IN` condition.
pub const MAX_ENTITY_TAGS: usize = 16;

/// The ETag of a record at `version`: `"<version>"`.
pub fn etag(version: Version) -> String {
    format!("\"{version}\"")
}

fn add_etag(response: &mut Response, version: Version) {
    // From the String itself: `from_str` would copy it.
    if let Ok(value) = HeaderValue::try_from(etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// What `If-Match` asks of a write. Under the strong comparison `If-Match`
/// requires, a weak tag or a tag this API never issued matches no version.
fn if_match(headers: &HeaderMap) -> Result<Expected, ApiError> {
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
enum EntityTags<'a> {
    Any,
    List(Vec<EntityTag<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
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
    fn matches_weakly(&self, version: Version) -> bool {
        match self {
            EntityTags::Any => true,
            EntityTags::List(tags) => tags.iter().any(|tag| tag.version() == Some(version)),
        }
    }
}

/// The entity tags of every `name` header, or `None` without one. A value
/// that does not follow the grammar is a 400 naming the header: guessing
/// what a client meant by a precondition could write where it meant not to.
fn entity_tags<'a>(
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
    use super::*;

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
