//! The hostile-request catalogue: requests an attacker, a fuzzer or a broken
//! client sends, each with the answer the API must give.
//!
//! One data-driven test runs the whole catalogue, in order, through the router
//! in-process on the memory and on the embedded backend. Every answer must be
//! the expected status (and error text), a JSON error body no larger than
//! [`MAX_ERROR_BYTES`] (no reflection of a 100 KB input), never a 500 and never
//! a panic. Afterwards each store must hold exactly what the valid requests of
//! the catalogue wrote.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

mod support;

use api::backend::embedded::EmbeddedStore;
use api::resource_map::DynamoDbTarget;
use api::{AppConfig, ResourceMap, router};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The largest error body any hostile request may get back.
const MAX_ERROR_BYTES: usize = 1024;

/// `things` accepts everything but `ttl` and `owner`; `codes` is read-only.
fn app(backend: &str) -> Router {
    let scratch = support::ScratchDir::new("api-hostile");
    let dir = scratch.path();
    std::fs::write(dir.join("codes.json"), r#"[{"id":"c1","label":"one"}]"#).unwrap();
    let yaml = format!(
        "resources:\n  \
         things: {{ backend: {backend}, protected: [ttl, owner] }}\n  \
         codes: {{ backend: memory, read_only: true, seed: codes.json }}\n"
    );
    std::fs::write(dir.join("app.yaml"), yaml).unwrap();
    let config = AppConfig::load(&dir.join("app.yaml")).unwrap();
    let store = EmbeddedStore::open(&dir.join("api.redb")).unwrap();
    router(ResourceMap::from_config(&config, &DynamoDbTarget::Embedded(store)).unwrap())
}

/// One hostile (or, to prove the store, valid) request and what it must get.
struct Case {
    what: &'static str,
    method: Method,
    uri: String,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Vec<u8>,
    status: u16,
    /// A fragment the error message (or, on success, the body) must contain.
    fragment: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    uri: impl Into<String>,
    body: impl Into<Vec<u8>>,
) -> Case {
    Case {
        what,
        method,
        uri: uri.into(),
        headers: Vec::new(),
        body: body.into(),
        status: 0,
        fragment: "",
    }
}

impl Case {
    fn expect(mut self, status: u16, fragment: &'static str) -> Self {
        self.status = status;
        self.fragment = fragment;
        self
    }

    fn header(mut self, name: &'static str, value: &[u8]) -> Self {
        self.headers
            .push((name, HeaderValue::from_bytes(value).unwrap()));
        self
    }
}

fn post(what: &'static str, body: impl Into<Vec<u8>>) -> Case {
    case(what, Method::POST, "/api/things", body)
}

fn put(what: &'static str, id: &str, body: impl Into<Vec<u8>>) -> Case {
    case(what, Method::PUT, format!("/api/things/{id}"), body)
}

fn get(what: &'static str, uri: impl Into<String>) -> Case {
    case(what, Method::GET, uri, Vec::new())
}

fn nested(levels: usize) -> String {
    format!(
        r#"{{"id":"deep","x":{}1{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

fn catalogue() -> Vec<Case> {
    let ten_mb = {
        let mut body = br#"{"id":"huge","x":""#.to_vec();
        body.resize(10 * 1024 * 1024, b'a');
        body.extend_from_slice(br#""}"#);
        body
    };
    let many_attributes = {
        let mut record = serde_json::Map::new();
        record.insert("id".into(), "wide".into());
        for i in 0..256 {
            record.insert(format!("a{i}"), i.into());
        }
        Value::Object(record).to_string()
    };
    let cursor = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    // A URI over 64 KiB cannot be built (see the test): 60 KiB is the longest
    // query that reaches a handler at all.
    let long = "x".repeat(60 * 1024);
    let thousand_filters = vec!["n:gt:1"; 1000].join(",");
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let thousand_json_filters = encode(&format!("[{}]", vec![r#"["n","gt",1]"#; 1000].join(",")));
    let deep_json_filter = encode(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));

    vec![
        // The valid writes: the store must end up holding exactly these.
        post("a plain create", r#"{"id":"ok-1","n":1}"#).expect(201, "ok-1"),
        post("a create delivered as text/plain", r#"{"id":"ok-plain"}"#)
            .header("content-type", b"text/plain")
            .expect(201, "ok-plain"),
        post("a create with a UTF-8 byte order mark", b"\xEF\xBB\xBF{\"id\":\"ok-bom\"}".to_vec())
            .expect(201, "ok-bom"),
        post(
            "numbers at DynamoDB's limits",
            r#"{"id":"ok-digits","a":12345678901234567890123456789012345678,"b":-9.9999999999999999999999999999999999999e125,"c":1e-130}"#,
        )
        .expect(201, "12345678901234567890123456789012345678"),
        post("nesting at the limit (32)", nested(32).replace("deep", "ok-deep")).expect(201, "ok-deep"),
        put("a plain update", "ok-1", r#"{"m":"x"}"#).expect(200, r#""m":"x""#),
        post("a record to delete", r#"{"id":"ok-gone"}"#).expect(201, "ok-gone"),
        case("a DELETE with a body (ignored)", Method::DELETE, "/api/things/ok-gone", r#"{"id":"ok-1"}"#)
            .expect(204, ""),
        case("a GET with a body (ignored)", Method::GET, "/api/things/ok-1", ten_mb.clone())
            .expect(200, "ok-1"),
        // Bodies that are not JSON, or not one JSON object.
        post("invalid UTF-8 inside a string", b"{\"id\":\"a\xFF\"}".to_vec()).expect(400, "not valid JSON"),
        post("invalid UTF-8 outside strings", b"\xFF\xFE{}".to_vec()).expect(400, "not valid JSON"),
        post("UTF-16 JSON", b"\xFE\xFF\x00{\x00}".to_vec()).expect(400, "not valid JSON"),
        post("trailing garbage after the object", r#"{"id":"tg"} x"#).expect(400, "trailing characters"),
        post("two objects in a row", r#"{"id":"t1"}{"id":"t2"}"#).expect(400, "trailing characters"),
        post("a form body", "id=form&n=1")
            .header("content-type", b"application/x-www-form-urlencoded")
            .expect(400, "not valid JSON"),
        post("an XML body", "<id>xml</id>")
            .header("content-type", b"application/xml")
            .expect(400, "not valid JSON"),
        post("an empty body", "").expect(400, "empty"),
        post("an array body", r#"[{"id":"arr"}]"#).expect(400, "must be a JSON object"),
        post("NaN", r#"{"id":"nan","n":NaN}"#).expect(400, "not valid JSON"),
        post("Infinity", r#"{"id":"inf","n":Infinity}"#).expect(400, "not valid JSON"),
        // Sizes and shapes.
        post("a 10 MB body", ten_mb.clone()).expect(413, "larger than"),
        put("a 10 MB update", "ok-1", ten_mb).expect(413, "larger than"),
        post("JSON nested 10,000 levels", nested(10_000)).expect(400, "nested more than 32"),
        post("JSON nested 33 levels", nested(33)).expect(400, "nested more than 32"),
        post("a top-level array nested 100,000 levels", "[".repeat(100_000)).expect(400, "nested more than 32"),
        post("257 attributes", many_attributes).expect(400, "257 attributes; the maximum is 256"),
        post("an empty attribute name", r#"{"id":"e","":1}"#).expect(400, "attribute name is empty"),
        post("a 256-character attribute name", format!(r#"{{"id":"e","{}":1}}"#, "n".repeat(256)))
            .expect(400, "is 256 characters long; the maximum is 255"),
        // Duplicate keys: serde_json would keep the last silently.
        post("a duplicate attribute", r#"{"id":"dup","role":"user","role":"admin"}"#)
            .expect(400, "duplicate attribute `role`"),
        post("a duplicate id", r#"{"id":"dup","id":"ok-1"}"#).expect(400, "duplicate attribute `id`"),
        post("a duplicate key in a nested object", r#"{"id":"dup","x":[{"k":1,"k":2}]}"#)
            .expect(400, "duplicate attribute `x[0].k`"),
        put("a duplicate attribute in an update", "ok-1", r#"{"m":"y","m":"z"}"#)
            .expect(400, "duplicate attribute `m`"),
        // Numbers DynamoDB cannot store.
        post("1e400", r#"{"id":"big","n":1e400}"#).expect(400, "attribute `n`: the number 1e+400"),
        post("a 400-digit integer", format!(r#"{{"id":"big","n":{}}}"#, "9".repeat(400)))
            .expect(400, "more than 38 significant digits"),
        post("-1e400", r#"{"id":"big","n":-1e400}"#).expect(400, "above 9.99E+125"),
        post("1e-400", r#"{"id":"small","n":1e-400}"#).expect(400, "below 1E-130"),
        post("39 significant digits", r#"{"id":"big","n":1.00000000000000000000000000000000000001}"#)
            .expect(400, "38 significant"),
        put("a huge number nested in an update", "ok-1", r#"{"a":{"b":[1e126]}}"#)
            .expect(400, "attribute `a.b[0]`"),
        // Ids: any UTF-8 up to 1024 bytes, but no control characters, no
        // `/` (API Gateway decodes `%2F`), no dot segments.
        get("NUL in a path id", "/api/things/a%00b").expect(400, "U+0000"),
        put("NUL in an update's path id", "%00", r#"{"m":1}"#).expect(400, "U+0000"),
        post("NUL in a body id", r#"{"id":"a\u0000b"}"#).expect(400, "U+0000"),
        get("a trailing space in a path id", "/api/things/ok-1%20").expect(404, "ok-1 "),
        get("a leading space in a path id", "/api/things/%20ok-1").expect(404, " ok-1"),
        get("a trailing tab in a path id", "/api/things/ok-1%09").expect(400, "U+0009"),
        get("a trailing CR in a path id", "/api/things/ok-1%0D").expect(400, "U+000D"),
        get("a trailing LF in a path id", "/api/things/ok-1%0A").expect(400, "U+000A"),
        get("a lone control character as a path id", "/api/things/%15").expect(400, "U+0015"),
        get("DEL in a path id", "/api/things/ok-1%7F").expect(400, "U+007F"),
        get("a C1 control in a path id", "/api/things/ok-1%C2%85").expect(400, "U+0085"),
        case("a trailing tab in a DELETE id", Method::DELETE, "/api/things/ok-1%09", Vec::new())
            .expect(400, "U+0009"),
        put("a trailing space in an update's path id", "ok-1%20", r#"{"m":1}"#).expect(404, "ok-1 "),
        put("a trailing CR in an update's path id", "ok-1%0D", r#"{"m":1}"#).expect(400, "U+000D"),
        post("a tab in a body id", r#"{"id":"a\tb"}"#).expect(400, "U+0009"),
        get("invalid UTF-8 in the path", "/api/things/%FF").expect(400, "invalid path"),
        get("an overlong UTF-8 sequence in the path", "/api/things/%C0%AE%C0%AE").expect(400, "invalid path"),
        get("invalid UTF-8 in the resource name", "/api/%FF").expect(400, "invalid path"),
        get("é composed, absent", "/api/things/caf%C3%A9").expect(404, "café"),
        get("é decomposed, absent", "/api/things/cafe%CC%81").expect(404, "cafe\u{301}"),
        // A `%` not followed by two hex digits is taken literally, as WHATWG URL
        // parsers and API Gateway do.
        get("a lone `%` in a path id", "/api/things/100%").expect(404, "`100%`"),
        get("`..` as an id", "/api/things/..").expect(400, "`.` or `..`"),
        get("`%2e%2e` as an id", "/api/things/%2e%2e").expect(400, "`.` or `..`"),
        case("`%2e%2e` as a DELETE id", Method::DELETE, "/api/things/%2E%2E", Vec::new())
            .expect(400, "`.` or `..`"),
        get("`..%2F..` as an id", "/api/things/..%2F..%2Fetc%2Fpasswd").expect(400, "`/`"),
        get("`%2F` in an id", "/api/things/ok-1%2Fx").expect(400, "`/`"),
        post("`/` in a body id", r#"{"id":"a/b"}"#).expect(400, "`/`"),
        get("a traversal across segments", "/api/things/../../etc/passwd").expect(404, "no route"),
        get("a traversal in the resource name", "/api/..%2Fthings").expect(404, "no resource"),
        post("`..` as a body id", r#"{"id":".."}"#).expect(400, "`.` or `..`"),
        post("a 1025-byte id", format!(r#"{{"id":"{}"}}"#, "i".repeat(1025))).expect(400, "1025 bytes"),
        post("a 1026-byte id of two-byte characters", format!(r#"{{"id":"{}"}}"#, "é".repeat(513)))
            .expect(400, "1026 bytes"),
        get("a 10 KB path id", format!("/api/things/{}", "i".repeat(10 * 1024))).expect(400, "10240 bytes"),
        put(
            "a 300 KB id in an update body",
            "ok-1",
            format!(r#"{{"id":"{}"}}"#, "i".repeat(300 * 1024)),
        )
        .expect(400, "differs from the id in the path"),
        // Mass assignment.
        post("a protected attribute", r#"{"id":"p","ttl":1}"#).expect(400, "attribute `ttl` may not be written"),
        put("a protected attribute in an update", "ok-1", r#"{"owner":"mallory"}"#)
            .expect(400, "attribute `owner` may not be written"),
        post("the version attribute", r#"{"id":"v","_version":99}"#)
            .expect(400, "attribute `_version` may not be written"),
        put("the version attribute in an update", "ok-1", r#"{"_version":0}"#)
            .expect(400, "attribute `_version` may not be written"),
        case("a create on a read-only resource", Method::POST, "/api/codes", r#"{"id":"c2"}"#)
            .expect(405, "POST is not allowed"),
        case("an update on a read-only resource", Method::PUT, "/api/codes/c1", r#"{"label":"x"}"#)
            .expect(405, "PUT is not allowed"),
        case("a delete on a read-only resource", Method::DELETE, "/api/codes/c1", Vec::new())
            .expect(405, "DELETE is not allowed"),
        // Methods no route has.
        case("PATCH", Method::PATCH, "/api/things/ok-1", r#"{"n":2}"#).expect(405, "PATCH"),
        case("TRACE", Method::TRACE, "/api/things", Vec::new()).expect(405, "TRACE"),
        case("CONNECT", Method::CONNECT, "/api/things", Vec::new()).expect(405, "CONNECT"),
        case("OPTIONS", Method::OPTIONS, "/api/things/ok-1", Vec::new()).expect(405, "OPTIONS"),
        case("an invented method", Method::from_bytes(b"PROPFIND").unwrap(), "/api/things", Vec::new())
            .expect(405, "PROPFIND"),
        case("POST on a record", Method::POST, "/api/things/ok-1", r#"{"id":"ok-1"}"#).expect(405, ""),
        case("PUT on the collection", Method::PUT, "/api/things", r#"{"id":"ok-1"}"#).expect(405, ""),
        case("DELETE on the collection", Method::DELETE, "/api/things", Vec::new()).expect(405, ""),
        // Queries.
        get("a 60 KB unknown parameter", format!("/api/things?{long}=1"))
            .expect(400, "unknown query parameter"),
        get("a 60 KB `fields`", format!("/api/things?fields={long}")).expect(400, "`fields`"),
        get("a 60 KB `offset`", format!("/api/things?offset={long}")).expect(400, "`offset`"),
        get("an unknown parameter", "/api/things?debug=true").expect(400, "unknown query parameter `debug`"),
        get("invalid UTF-8 in the query", "/api/things?%FF=1").expect(400, "unknown query parameter"),
        get("a repeated parameter", "/api/things?limit=1&limit=100").expect(400, "more than once"),
        get("an empty filter", "/api/things?filters=").expect(200, "ok-1"),
        get("a filter without an operator", "/api/things?filters=n").expect(400, "`filters`"),
        get("an unknown operator", "/api/things?filters=n:regex:.*").expect(400, "`filters`"),
        get("1,000 conditions", format!("/api/things?filters={thousand_filters}"))
            .expect(400, "at most 20 conditions"),
        get("1,000 JSON conditions", format!("/api/things?filters={thousand_json_filters}"))
            .expect(400, "at most 20 conditions"),
        get("a JSON filter nested 10,000 levels", format!("/api/things?filters={deep_json_filter}"))
            .expect(400, "`filters`"),
        get("limit=1e9", "/api/things?limit=1e9").expect(400, "`limit`"),
        get("limit=1000000000", "/api/things?limit=1000000000").expect(400, "`limit`"),
        get("limit=-1", "/api/things?limit=-1").expect(400, "`limit`"),
        get("limit=0", "/api/things?limit=0").expect(400, "`limit`"),
        get("limit past u64", "/api/things?limit=18446744073709551616").expect(400, "`limit`"),
        get("an offset that is not base64", "/api/things?offset=%3Cscript%3E").expect(400, "`offset`"),
        get("a forged offset with an empty key", format!("/api/things?offset={}", cursor(r#"{"after":""}"#)))
            .expect(400, "`offset`"),
        get("a forged offset with a 2049-byte key", format!("/api/things?offset={}", cursor(&format!(r#"{{"after":"{}"}}"#, "k".repeat(2049)))))
            .expect(400, "`offset`"),
        // A cursor only positions a list: one naming a key this API would not
        // create (other tools may write such keys) pages on from there.
        get("a forged offset naming a key with a `/`", format!("/api/things?offset={}", cursor(r#"{"after":"ok-deep/x"}"#)))
            .expect(200, "ok-digits"),
        get("a forged offset with extra fields", format!("/api/things?offset={}", cursor(r#"{"after":"a","admin":true}"#)))
            .expect(400, "`offset`"),
        get("a negative numeric offset", "/api/things?offset=-1").expect(400, "`offset`"),
        get("a forged offset past every record", format!("/api/things?offset={}", cursor(r#"{"after":"zzz"}"#)))
            .expect(200, "[]"),
        // Headers.
        get("an x-request-id with non-ASCII bytes", "/api/ping")
            .header("x-request-id", b"\xFF\xFEid")
            .expect(200, "pong"),
        get("an x-request-id of 10 KB", "/api/ping")
            .header("x-request-id", "r".repeat(10 * 1024).as_bytes())
            .expect(200, "pong"),
        get("an x-request-id forging a log field", "/api/ping")
            .header("x-request-id", br#"a","level":"ERROR"#)
            .expect(200, "pong"),
    ]
}

#[tokio::test]
async fn the_hostile_request_catalogue() {
    // CR/LF cannot even be put in a header value: the http crate (and hyper
    // on the wire) refuse them before any handler could see them.
    for injected in [&b"abc\r\nx-admin: 1"[..], b"abc\nx", b"abc\rx", b"a\0b"] {
        assert!(HeaderValue::from_bytes(injected).is_err(), "{injected:?}");
    }

    // Nor can a URI over 64 KiB (a 100 KB query string): hyper answers 414
    // on the wire, API Gateway refuses far shorter ones.
    let long_uri = format!("/api/things?fields={}", "x".repeat(100 * 1024));
    assert!(axum::http::Uri::try_from(long_uri).is_err());

    let cases = catalogue();
    assert!(
        cases.len() >= 40,
        "the catalogue has {} requests",
        cases.len()
    );
    for backend in ["memory", "dynamodb"] {
        let app = app(backend);
        for case in &cases {
            let context = format!(
                "[{backend}] {}: {} {}",
                case.what,
                case.method,
                clip(&case.uri)
            );
            let mut request = Request::builder()
                .method(case.method.clone())
                .uri(&case.uri);
            for (name, value) in &case.headers {
                request = request.header(*name, value.clone());
            }
            let request = request.body(Body::from(case.body.clone())).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);

            assert_ne!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{context}: {text}"
            );
            assert_eq!(status.as_u16(), case.status, "{context}: {}", clip(&text));
            // Error fragments are matched in the decoded message, success
            // fragments in the body text.
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.to_string());
            assert!(
                message.contains(case.fragment),
                "{context}: {}",
                clip(&text)
            );
            if status.is_client_error() {
                assert_eq!(
                    headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
                    Some(&b"application/json"[..]),
                    "{context}"
                );
                let error: Value = serde_json::from_slice(&body).unwrap();
                assert!(error["error"].is_string(), "{context}: {text}");
                assert!(
                    body.len() <= MAX_ERROR_BYTES,
                    "{context}: {} bytes",
                    body.len()
                );
            }
            // A hostile request id is replaced, never echoed.
            if let Some((_, sent)) = case
                .headers
                .iter()
                .find(|(name, _)| *name == "x-request-id")
            {
                let answered = headers.get("x-request-id").unwrap();
                assert_ne!(answered, sent, "{context}");
            }
        }

        // The store holds exactly what the valid requests wrote.
        let request = Request::get("/api/things?limit=100")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let stored: Value = serde_json::from_slice(&body).unwrap();
        let deep: Value = serde_json::from_str(&nested(32)).unwrap();
        let expected = json!([
            {"id": "ok-1", "n": 1, "m": "x"},
            {"id": "ok-bom"},
            {"id": "ok-deep", "x": deep["x"]},
            {
                "id": "ok-digits",
                "a": 12345678901234567890123456789012345678_u128,
                "b": stored[3]["b"],
                "c": stored[3]["c"],
            },
            {"id": "ok-plain"},
        ]);
        assert_eq!(
            stored, expected,
            "[{backend}] the store after the catalogue"
        );
        // The numbers at the limits kept their value (their spelling is serde_json's).
        assert_eq!(
            stored[3]["b"].to_string().to_lowercase(),
            "-9.9999999999999999999999999999999999999e+125",
            "[{backend}]"
        );
        assert_eq!(
            stored[3]["c"].to_string().to_lowercase(),
            "1e-130",
            "[{backend}]"
        );

        let request = Request::get("/api/codes").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!([{"id": "c1", "label": "one"}]),
            "[{backend}] the read-only resource is untouched"
        );
    }
}

/// The start of a long URI or body, for assertion messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
