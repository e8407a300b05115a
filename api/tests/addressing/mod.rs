//! Ids as people and other tools write them, and the client's side of their
//! round trips: written once, run over every transport (the router in-process,
//! the binary on a socket) and every backend.
//!
//! The client encodes an id its own way (every byte but letters and digits),
//! the server its own (`Location`), and a `Location` or `Link` is resolved as
//! a client resolves it (the `url` crate, WHATWG's rules), so neither side can
//! lean on the other's spelling.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use url::Url;

/// Ids the API accepts that a URL must carry encoded: spaces (inner, at
/// either end, alone), the characters a URL gives meaning to, non-ASCII in
/// both Unicode normal forms (two ids), an emoji sequence, a line separator
/// (not a control character), text that looks percent-encoded, dots that are
/// not a dot segment, the quotes and separators of the filter syntax, a JSON
/// literal, and the longest id (1024 bytes, 512 characters).
pub fn accepted_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "Ana María",
        "a+b@example.com",
        "ürün-7",
        "John Smith",
        "100%",
        "a#b",
        "a?b=c&d",
        "caf\u{e9}",
        "cafe\u{301}",
        " lead",
        "trail ",
        "\u{1F469}\u{1F3FD}\u{200D}\u{1F4BB} dev",
        "a%2Fb",
        "x,y:eq:\"q\"\\",
        "!$&'()*+,;=",
        " ",
        "line\u{2028}separator",
        "...",
        "null",
    ]
    .map(String::from)
    .into();
    ids.push("ü".repeat(512));
    ids
}

/// Ids the API refuses, each with what its error says.
pub fn refused_ids() -> Vec<(String, &'static str)> {
    let reasons: [(&str, &str); 5] = [
        ("a/b", "contains `/`"),
        ("tab\t", "the control character U+0009"),
        ("bell\u{7}ring", "the control character U+0007"),
        ("..", "must not be `.` or `..`"),
        (".", "must not be `.` or `..`"),
    ];
    let mut ids: Vec<(String, &str)> = reasons
        .into_iter()
        .map(|(id, reason)| (id.to_owned(), reason))
        .collect();
    ids.push((
        format!("{}x", "ü".repeat(512)),
        "is 1025 bytes long in UTF-8; the maximum is 1024",
    ));
    ids
}

/// What a client sees of a response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `null` when the body is empty.
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

/// One HTTP exchange, whatever carries it; `path` is sent as it is.
pub trait Http {
    fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> impl Future<Output = Reply>;
}

impl Http for Router {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: json_or_null(&bytes),
        }
    }
}

pub fn json_or_null(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap()
    }
}

/// `{collection}/{id}`, the id encoded as the client does.
pub fn path_of(collection: &str, id: &str) -> String {
    format!("{collection}/{}", utf8_percent_encode(id, NON_ALPHANUMERIC))
}

/// `reference` resolved against `path` on some origin, as a client does.
fn resolve(path: &str, reference: &str) -> Url {
    let base = Url::parse("http://api.test").unwrap().join(path).unwrap();
    base.join(reference).unwrap()
}

/// The path and query of `url`, as a request line holds them.
fn request_target(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// POSTs `{"id": id, "name": id}` for each id, alternately to `collection`
/// and `collection/`: 201, the record as sent, and a `Location` that resolves
/// to `collection/<one segment>` decoding to exactly the id, and reads it.
pub async fn create_each(http: &impl Http, collection: &str, ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let url = if i % 2 == 0 {
            collection.to_owned()
        } else {
            format!("{collection}/")
        };
        let record = json!({"id": id, "name": id});
        let created = http.send(Method::POST, &url, &[], record.to_string()).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{id:?}: {}",
            created.body
        );
        assert_eq!(created.body, record);
        let location = created.header("location").unwrap();
        let resolved = resolve(&url, location);
        assert_eq!(
            (resolved.query(), resolved.fragment()),
            (None, None),
            "{id:?}: Location {location}"
        );
        let segment = resolved
            .path()
            .strip_prefix(&format!("{collection}/"))
            .unwrap_or_else(|| panic!("{id:?}: Location {location} is not under {collection}"));
        assert!(!segment.contains('/'), "{id:?}: Location {location}");
        assert_eq!(
            percent_decode_str(segment).decode_utf8().unwrap(),
            id.as_str(),
            "Location {location}"
        );
        let read = http
            .send(Method::GET, resolved.path(), &[], String::new())
            .await;
        assert_eq!(
            (read.status, &read.body),
            (StatusCode::OK, &record),
            "{id:?}"
        );
    }
}

/// Each id names a record `{"id": id, "name": id}` in `collection`, maybe
/// among others: each reads with an ETag, updates under `If-Match` (a stale
/// tag is refused naming the id), lists exactly once in pages of 2 followed
/// through `Link` (filtered or not), is found alone by a filter in both
/// syntaxes, and deletes under `If-Match`, after which it is a 404 naming it.
pub async fn address_each(http: &impl Http, collection: &str, ids: &[String]) {
    for id in ids {
        let path = path_of(collection, id);
        let read = http.send(Method::GET, &path, &[], String::new()).await;
        assert_eq!(
            (read.status, &read.body),
            (StatusCode::OK, &json!({"id": id, "name": id})),
            "{id:?}"
        );
        let etag = read.header("etag").unwrap();
        let change = json!({"seen": true}).to_string();
        let updated = http
            .send(Method::PUT, &path, &[("if-match", etag)], change.clone())
            .await;
        assert_eq!(
            (updated.status, &updated.body),
            (StatusCode::OK, &json!({"id": id, "name": id, "seen": true})),
            "{id:?}"
        );
        assert_ne!(updated.header("etag"), Some(etag));
        let stale = http
            .send(Method::PUT, &path, &[("if-match", etag)], change)
            .await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{id:?}");
        assert!(
            stale
                .error()
                .starts_with(&format!("the record with id `{id}` has changed")),
            "{}",
            stale.error()
        );
        // Spaces at an end are part of the id: the trimmed form is another.
        let trimmed = id.trim();
        if !trimmed.is_empty() && trimmed != id && !ids.iter().any(|other| other == trimmed) {
            let other = http
                .send(
                    Method::GET,
                    &path_of(collection, trimmed),
                    &[],
                    String::new(),
                )
                .await;
            assert_eq!(other.status, StatusCode::NOT_FOUND, "{trimmed:?}");
        }
    }

    let listed = list_all(http, &format!("{collection}?limit=2")).await;
    each_once(&listed, ids);
    // The `Link` of a filtered page carries the filter on: all but the first.
    let (first, rest) = ids.split_first().unwrap();
    let others = format!("name:ne:{}", serde_json::to_string(first).unwrap());
    let listed = list_all(http, &format!("{}&limit=2", filtered(collection, &others))).await;
    assert!(!listed.contains(first), "{others}: {listed:?}");
    each_once(&listed, rest);

    for id in ids {
        let quoted = serde_json::to_string(id).unwrap();
        for filters in [
            format!("name:eq:{quoted}"),
            json!([["id", "eq", id]]).to_string(),
        ] {
            let found = list_all(http, &filtered(collection, &filters)).await;
            assert_eq!(found, [id.as_str()], "filters={filters}");
        }
    }

    for id in ids {
        let path = path_of(collection, id);
        let read = http.send(Method::GET, &path, &[], String::new()).await;
        let etag = read.header("etag").unwrap();
        let deleted = http
            .send(Method::DELETE, &path, &[("if-match", etag)], String::new())
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{id:?}");
        for method in [Method::GET, Method::DELETE] {
            let gone = http.send(method, &path, &[], String::new()).await;
            assert_eq!(gone.status, StatusCode::NOT_FOUND, "{id:?}");
            assert_eq!(gone.error(), format!("no record with id `{id}`"));
        }
    }
}

/// Each of `ids` is in `listed` once (other records may be too).
fn each_once(listed: &[String], ids: &[String]) {
    for id in ids {
        let times = listed.iter().filter(|listed| *listed == id).count();
        assert_eq!(times, 1, "{id:?} listed {times} times in {listed:?}");
    }
}

/// The URL of `collection` listed with `filters`, form-encoded.
pub fn filtered(collection: &str, filters: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("filters", filters)
        .finish();
    format!("{collection}?{query}")
}

/// The ids of every page of the list at `url`, following each `Link`
/// (which must carry the `next-offset` cursor) until a page has none.
pub async fn list_all(http: &impl Http, url: &str) -> Vec<String> {
    let mut url = url.to_owned();
    let mut ids = Vec::new();
    loop {
        let page = http.send(Method::GET, &url, &[], String::new()).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
        ids.extend(
            page.body
                .as_array()
                .unwrap()
                .iter()
                .map(|record| record["id"].as_str().unwrap().to_owned()),
        );
        let Some(link) = page.header("link") else {
            assert_eq!(page.header("next-offset"), None);
            return ids;
        };
        let reference = link
            .strip_prefix('<')
            .and_then(|link| link.strip_suffix(">; rel=\"next\""))
            .unwrap_or_else(|| panic!("Link: {link}"));
        let next = resolve(&url, reference);
        let offset = next
            .query_pairs()
            .find(|(name, _)| name == "offset")
            .map(|(_, value)| value.into_owned());
        assert_eq!(
            offset.as_deref(),
            page.header("next-offset"),
            "Link: {link}"
        );
        url = request_target(&next);
        assert!(ids.len() < 10_000, "the pages never end");
    }
}

/// `id` is refused with `reason` in a body and in a path, by every method.
pub async fn refuses(http: &impl Http, collection: &str, id: &str, reason: &str) {
    let created = http
        .send(Method::POST, collection, &[], json!({"id": id}).to_string())
        .await;
    assert_eq!(created.status, StatusCode::BAD_REQUEST, "POST {id:?}");
    assert!(created.error().contains(reason), "{}", created.error());
    let path = path_of(collection, id);
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = http.send(method.clone(), &path, &[], "{}".into()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert!(
            reply.error().starts_with("invalid id in the path: ") && reply.error().contains(reason),
            "{method} {path}: {}",
            reply.error()
        );
    }
}
