//! The HTTP contract of DESIGN.md §2, driven through the router in-process.
//!
//! Every route, status code, header and error body a client can observe, on
//! the app as `make run` serves it. Concurrency and the behaviour every
//! backend shares are in `backend_suite.rs`.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

mod addressing;
mod support;

use std::sync::Arc;

use api::backend::embedded::EmbeddedStore;
use api::backend::memory::MemoryBackend;
use api::backend::{Backend, BackendError, Expected, Page, Versioned};
use api::query::ListQuery;
use api::record::{NewRecord, RecordChanges, RecordId};
use api::resource_map::DynamoDbTarget;
use api::{AppConfig, ResourceMap, ServedResource, router};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The app as `make run` serves it, its embedded store in a fresh directory.
fn app() -> Router {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/app.yaml");
    let config = AppConfig::load(&path).unwrap();
    let data = support::ScratchDir::new("api-contract");
    let store = EmbeddedStore::open(&data.path().join("api.redb")).unwrap();
    router(ResourceMap::from_config(&config, &DynamoDbTarget::Embedded(store)).unwrap())
}

/// An app with one resource `things` holding `count` records `t000`, `t001`, ...
fn app_with_things(count: usize) -> Router {
    let records = (0..count).map(|i| {
        NewRecord::from_body(
            json!({"id": format!("t{i:03}"), "n": i, "even": i % 2 == 0})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    });
    let backend = Arc::new(MemoryBackend::with_records(records).unwrap());
    router(ResourceMap::default().with("things", ServedResource::new(backend)))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `error` message of an error body, checking the body has that shape.
    fn error(&self) -> &str {
        let object = self.body.as_object().expect("error body is an object");
        assert_eq!(
            object.len(),
            1,
            "error body has only `error`: {}",
            self.body
        );
        object["error"].as_str().expect("`error` is a string")
    }
}

async fn call(app: &Router, method: Method, uri: &str, body: impl Into<Body>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json",
            "{uri}"
        );
        serde_json::from_slice(&raw).unwrap()
    };
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    call(app, Method::GET, uri, Body::empty()).await
}

fn ids(reply: &Reply) -> Vec<&str> {
    reply
        .body
        .as_array()
        .expect("a list is a JSON array")
        .iter()
        .map(|record| record["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn ping_answers_pong() {
    let reply = get(&app(), "/api/ping").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"result": "pong"}));
    assert_eq!(
        get(&app(), "/api/ping/").await.body,
        json!({"result": "pong"})
    );
}

#[tokio::test]
async fn list_returns_the_seeded_records_exactly() {
    let reply = get(&app(), "/api/mocks").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!([
            {"id": "000-1", "name": "Service", "Description": "Some fancy description...", "value": 50.0},
            {"id": "000-2", "name": "Gas Station", "Description": "Some fancy gas station...", "value": 1.5}
        ])
    );
    assert_eq!(reply.header("next-offset"), None);
    assert_eq!(reply.header("link"), None);
}

#[tokio::test]
async fn a_trailing_slash_is_served_like_the_path_without_it() {
    let app = app();
    for (with, without) in [
        ("/api/mocks/", "/api/mocks"),
        ("/api/mocks/000-1/", "/api/mocks/000-1"),
        ("/api/nope/", "/api/nope"),
    ] {
        let a = get(&app, with).await;
        let b = get(&app, without).await;
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{with}");
        assert_eq!(a.header("location"), None, "no redirect for {with}");
    }
}

#[tokio::test]
async fn get_by_id_returns_the_record_or_404() {
    let app = app();
    let found = get(&app, "/api/mocks/000-2").await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["name"], "Gas Station");

    let missing = get(&app, "/api/mocks/000-9").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error(), "no record with id `000-9`");

    let encoded = get(&app, "/api/mocks/000%2D1").await;
    assert_eq!(encoded.body["id"], "000-1", "the id is percent-decoded");
}

#[tokio::test]
async fn unknown_resources_and_routes_are_404_json() {
    let app = app();
    let reply = get(&app, "/api/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "no resource named `nope`");
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = call(&app, method, "/api/nope/1", "{}").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.error(), "no resource named `nope`");
    }
    let reply = call(&app, Method::POST, "/api/nope", r#"{"id":"1"}"#).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = get(&app, "/elsewhere").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "no route for GET /elsewhere");
    assert_eq!(
        get(&app, "/api/mocks/000-1/extra").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn methods_without_a_route_are_405_with_allow() {
    let app = app();
    let reply = call(&app, Method::PATCH, "/api/mocks/000-1", "{}").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "PATCH is not allowed on /api/mocks/000-1");
    assert_eq!(reply.header("allow"), Some("GET,HEAD,PUT,DELETE"));

    let reply = call(&app, Method::DELETE, "/api/mocks", "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("GET,HEAD,POST"));
}

#[tokio::test]
async fn operations_a_resource_does_not_allow_are_405() {
    let dir = support::ScratchDir::new("api-readonly");
    let path = dir.path().join("app.yaml");
    std::fs::write(
        &path,
        "resources:\n  codes: { backend: memory, operations: [list, get] }\n",
    )
    .unwrap();
    let app = router(
        ResourceMap::from_config(
            &AppConfig::load(&path).unwrap(),
            &DynamoDbTarget::Unavailable,
        )
        .unwrap(),
    );

    assert_eq!(get(&app, "/api/codes").await.status, StatusCode::OK);
    let reply = call(&app, Method::POST, "/api/codes", r#"{"id":"a"}"#).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "POST is not allowed on /api/codes");
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = call(&app, Method::DELETE, "/api/codes/a", "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("GET"));
    assert_eq!(
        get(&app, "/api/codes/a").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn create_returns_201_the_stored_record_and_its_location() {
    let app = app();
    // Numbers keep their decimal text: no f64 rounding, no lost trailing zero.
    // `wide` has 38 significant digits, the most DynamoDB (so the API) stores.
    let body = r#"{"id":"000-3","name":"Shop","value":5.50,"tags":["a",1,null],"nested":{"ok":true},"big":12345678901234567890,"tiny":-1e-7,"wide":123456789012345678901234567890.12345678,"empty":""}"#;
    let reply = call(&app, Method::POST, "/api/mocks", body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(String::from_utf8_lossy(&reply.raw), body);
    assert_eq!(reply.header("location"), Some("mocks/000-3"));
    let read_back = get(&app, "/api/mocks/000-3").await;
    assert_eq!(String::from_utf8_lossy(&read_back.raw), body);

    let reply = call(&app, Method::POST, "/api/mocks/", r#"{"id":"a:b@c"}"#).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("location"), Some("./a:b@c"));
    assert_eq!(get(&app, "/api/mocks/a:b@c").await.status, StatusCode::OK);
}

#[tokio::test]
async fn create_never_overwrites() {
    let app = app();
    let reply = call(
        &app,
        Method::POST,
        "/api/mocks",
        r#"{"id":"000-1","name":"Impostor"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.error(), "a record with id `000-1` already exists");
    assert_eq!(get(&app, "/api/mocks/000-1").await.body["name"], "Service");
}

#[tokio::test]
async fn the_body_is_json_whatever_the_content_type() {
    let app = app();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/mocks")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(r#"{"id":"curl-d"}"#))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_problem_and_store_nothing() {
    let app = app();
    let cases: &[(&str, &str)] = &[
        ("", "request body is empty; expected a JSON object"),
        (
            "{\"id\": \"x\",",
            "request body is not valid JSON: EOF while parsing a value at line 1 column 11",
        ),
        (
            "not json",
            "request body is not valid JSON: expected ident at line 1 column 2",
        ),
        ("[1,2]", "request body must be a JSON object, got an array"),
        (
            "\"text\"",
            "request body must be a JSON object, got a string",
        ),
        ("42", "request body must be a JSON object, got a number"),
        ("{}", "`id` is missing from the request body"),
        (r#"{"id":""}"#, "`id` must not be empty"),
        (r#"{"id":7}"#, "`id` must be a string, got a number"),
        (r#"{"id":["a"]}"#, "`id` must be a string, got an array"),
        (
            r#"{"id":"a/b"}"#,
            "`id` contains `/`, which cannot be used: behind API Gateway a `%2F` in the path \
             arrives as `/`, so the record could never be addressed",
        ),
        (
            r#"{"id":"a\u001fb"}"#,
            "`id` contains the control character U+001F; control characters are not allowed",
        ),
        (
            r#"{"id":".."}"#,
            "`id` must not be `.` or `..`: HTTP clients rewrite those path segments",
        ),
    ];
    for (body, message) in cases {
        let reply = call(&app, Method::POST, "/api/mocks", *body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error(), *message, "{body}");
    }
    assert_eq!(ids(&get(&app, "/api/mocks").await), ["000-1", "000-2"]);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_stores_nothing() {
    let app = app();
    let filler = "x".repeat(api::record::MAX_BODY_BYTES);
    let body = json!({"id": "huge", "filler": filler}).to_string();
    let reply = call(&app, Method::POST, "/api/mocks", body.clone()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error(), "request body is larger than 409600 bytes");
    assert_eq!(
        get(&app, "/api/mocks/huge").await.status,
        StatusCode::NOT_FOUND
    );

    let reply = call(&app, Method::PUT, "/api/mocks/000-1", body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn update_merges_and_returns_the_record() {
    let app = app();
    let reply = call(
        &app,
        Method::PUT,
        "/api/mocks/000-1",
        r#"{"value":51,"extra":{"a":[1]}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let expected = json!({"id":"000-1","name":"Service","Description":"Some fancy description...","value":51,"extra":{"a":[1]}});
    assert_eq!(reply.body, expected);
    assert_eq!(get(&app, "/api/mocks/000-1").await.body, expected);

    let reply = call(
        &app,
        Method::PUT,
        "/api/mocks/000-1/",
        r#"{"id":"000-1","name":null}"#,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the same id in the body is accepted"
    );
    assert_eq!(reply.body["name"], Value::Null);

    let reply = call(&app, Method::PUT, "/api/mocks/000-1", "{}").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "an empty change set is a no-op"
    );
    assert_eq!(reply.body["value"], 51);
}

#[tokio::test]
async fn update_never_creates_and_never_changes_the_id() {
    let app = app();
    let reply = call(&app, Method::PUT, "/api/mocks/000-9", r#"{"name":"ghost"}"#).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "no record with id `000-9`");
    assert_eq!(
        get(&app, "/api/mocks/000-9").await.status,
        StatusCode::NOT_FOUND
    );

    let reply = call(&app, Method::PUT, "/api/mocks/000-1", r#"{"id":"000-7"}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "`id` in the body (\"000-7\") differs from the id in the path (000-1); an id cannot be changed"
    );
    assert_eq!(
        get(&app, "/api/mocks/000-7").await.status,
        StatusCode::NOT_FOUND
    );

    for (body, message) in [
        ("[]", "request body must be a JSON object, got an array"),
        ("", "request body is empty; expected a JSON object"),
        (
            "{",
            "request body is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
    ] {
        let reply = call(&app, Method::PUT, "/api/mocks/000-1", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error(), message);
    }
    assert_eq!(get(&app, "/api/mocks/000-1").await.body["name"], "Service");
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let app = app();
    let reply = call(&app, Method::DELETE, "/api/mocks/000-2", Body::empty()).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.raw.is_empty());
    assert_eq!(
        get(&app, "/api/mocks/000-2").await.status,
        StatusCode::NOT_FOUND
    );

    let reply = call(&app, Method::DELETE, "/api/mocks/000-2", Body::empty()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "no record with id `000-2`");
}

#[tokio::test]
async fn invalid_path_ids_are_400() {
    let app = app();
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = call(&app, method.clone(), "/api/mocks/000-1%0A", "{}").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(
            reply.error(),
            "invalid id in the path: `id` contains the control character U+000A; control characters are not allowed"
        );
    }
    let reply = get(&app, "/api/mocks/%FF").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.error().starts_with("invalid path: "),
        "{}",
        reply.error()
    );
}

/// The round trip of `backend_suite` on the app as served, among its seeds.
#[tokio::test]
async fn any_accepted_id_round_trips_among_the_seeds() {
    let app = app();
    let accepted = addressing::accepted_ids();
    for collection in ["/api/mocks", "/api/users"] {
        addressing::create_each(&app, collection, &accepted).await;
        addressing::address_each(&app, collection, &accepted).await;
        assert_eq!(ids(&get(&app, collection).await), ["000-1", "000-2"]);
    }
}

/// A path segment is percent-decoded once and nothing more: `+` stays a plus,
/// hex digits may be lower case, characters a segment allows may go
/// unencoded, and no Unicode normalisation makes two ids one.
#[tokio::test]
async fn each_spelling_of_an_id_in_a_path_names_that_id_alone() {
    let app = app();
    for id in ["a+b@example.com", "a b", "caf\u{e9}", "100%", "x:y"] {
        let body = json!({ "id": id }).to_string();
        let created = call(&app, Method::POST, "/api/users", body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{id:?}");
    }
    let cases: &[(&str, &str, bool)] = &[
        ("a+b@example.com", "a+b@example.com", true),
        ("a%2Bb%40example.com", "a+b@example.com", true),
        ("a%2bb%40example.com", "a+b@example.com", true),
        ("a%20b", "a b", true),
        ("a%20b/", "a b", true),
        ("a+b", "a+b", false),
        ("caf%C3%A9", "caf\u{e9}", true),
        ("caf%c3%a9", "caf\u{e9}", true),
        ("cafe%CC%81", "cafe\u{301}", false),
        ("100%25", "100%", true),
        ("100%2525", "100%25", false),
        ("x:y", "x:y", true),
        ("x%3Ay", "x:y", true),
    ];
    for (segment, id, stored) in cases {
        let reply = get(&app, &format!("/api/users/{segment}")).await;
        if *stored {
            assert_eq!(reply.status, StatusCode::OK, "{segment}");
            assert_eq!(reply.body, json!({ "id": id }), "{segment}");
        } else {
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{segment}");
            assert_eq!(reply.error(), format!("no record with id `{id}`"));
        }
    }
}

/// `/` (as `%2F`), control characters (a trailing `%09` too), dot segments
/// and 1025 bytes: 400s naming the rule, whichever method; 1024 bytes are
/// accepted (`backend_suite`'s round trip).
#[tokio::test]
async fn ids_the_api_refuses_are_400_in_a_body_and_in_a_path() {
    let app = app();
    for (id, reason) in addressing::refused_ids() {
        addressing::refuses(&app, "/api/users", &id, reason).await;
    }
    assert_eq!(ids(&get(&app, "/api/users").await), ["000-1", "000-2"]);
}

#[tokio::test]
async fn pagination_visits_every_record_exactly_once() {
    let app = app_with_things(250);
    let mut seen = Vec::new();
    let mut uri = "/api/things?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let reply = get(&app, &uri).await;
        assert_eq!(reply.status, StatusCode::OK);
        pages += 1;
        seen.extend(ids(&reply).into_iter().map(str::to_owned));
        let Some(next) = reply.header("next-offset") else {
            assert_eq!(reply.header("link"), None);
            break;
        };
        assert_eq!(reply.body.as_array().unwrap().len(), 7);
        assert_eq!(
            reply.header("link"),
            Some(format!("<?limit=7&offset={next}>; rel=\"next\"").as_str())
        );
        uri = format!("/api/things?limit=7&offset={next}");
    }
    let expected: Vec<String> = (0..250).map(|i| format!("t{i:03}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 36, "250 = 35 full pages of 7 + one of 5");
}

#[tokio::test]
async fn default_limit_is_20_and_offset_0_or_empty_is_the_first_page() {
    let app = app_with_things(25);
    let first = get(&app, "/api/things").await;
    assert_eq!(ids(&first).len(), 20);
    assert!(first.header("next-offset").is_some());
    for uri in ["/api/things?offset=0", "/api/things?offset="] {
        assert_eq!(get(&app, uri).await.body, first.body, "{uri}");
    }
    let exact = app_with_things(20);
    assert_eq!(
        get(&exact, "/api/things").await.header("next-offset"),
        None,
        "a page ending on the last record has no next page"
    );
}

#[tokio::test]
async fn filtered_pages_fill_up_and_keep_the_query_in_the_link() {
    let app = app_with_things(30);
    let reply = get(&app, "/api/things?limit=5&filters=even:eq:true&fields=id,n").await;
    assert_eq!(ids(&reply), ["t000", "t002", "t004", "t006", "t008"]);
    assert_eq!(reply.body[1], json!({"id": "t002", "n": 2}));
    let next = reply.header("next-offset").unwrap();
    assert_eq!(
        reply.header("link").unwrap(),
        format!("<?limit=5&filters=even%3Aeq%3Atrue&fields=id%2Cn&offset={next}>; rel=\"next\"")
    );
    let reply = get(
        &app,
        &format!("/api/things?limit=5&filters=even:eq:true&offset={next}"),
    )
    .await;
    assert_eq!(ids(&reply), ["t010", "t012", "t014", "t016", "t018"]);
}

#[tokio::test]
async fn fields_and_filters_on_the_seeded_mocks() {
    let app = app();
    let cases: &[(&str, Value)] = &[
        (
            "fields=id,name",
            json!([{"id":"000-1","name":"Service"},{"id":"000-2","name":"Gas Station"}]),
        ),
        ("fields=value", json!([{"value":50.0},{"value":1.5}])),
        ("filters=value:gt:10&fields=id", json!([{"id":"000-1"}])),
        ("filters=value:le:1.5&fields=id", json!([{"id":"000-2"}])),
        (
            "filters=name:begins_with:Gas&fields=id",
            json!([{"id":"000-2"}]),
        ),
        (
            "filters=Description:contains:fancy&fields=id",
            json!([{"id":"000-1"},{"id":"000-2"}]),
        ),
        ("filters=name:ne:Service&fields=id", json!([{"id":"000-2"}])),
        ("filters=value:eq:50&fields=id", json!([{"id":"000-1"}])),
        ("filters=value:eq:\"50\"&fields=id", json!([])),
        (
            "filters=value:lt:100,name:eq:Service&fields=id",
            json!([{"id":"000-1"}]),
        ),
        (
            "filters=name:eq:\"Gas Station\"&fields=id",
            json!([{"id":"000-2"}]),
        ),
        ("filters=owner:exists", json!([])),
        (
            "filters=owner:not_exists&fields=id",
            json!([{"id":"000-1"},{"id":"000-2"}]),
        ),
        (
            "filters=[[\"value\",\"ge\",1.5],[\"name\",\"eq\",\"Gas Station\"]]&fields=id",
            json!([{"id":"000-2"}]),
        ),
    ];
    for (query, expected) in cases {
        let uri = format!(
            "/api/mocks?{}",
            query.replace(' ', "%20").replace('"', "%22")
        );
        let reply = get(&app, &uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
        assert_eq!(&reply.body, expected, "{query}");
    }
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_problem() {
    let app = app();
    let cases: &[(&str, &str)] = &[
        (
            "limit=abc",
            "`limit` must be an integer from 1 to 100, got \"abc\"",
        ),
        (
            "limit=-1",
            "`limit` must be an integer from 1 to 100, got \"-1\"",
        ),
        (
            "limit=1000000",
            "`limit` must be an integer from 1 to 100, got \"1000000\"",
        ),
        (
            "offset=garbage",
            "`offset` is not a cursor returned by this API: \"garbage\"",
        ),
        (
            "offset=eyJhZnRlciI6MX0",
            "`offset` is not a cursor returned by this API: \"eyJhZnRlciI6MX0\"",
        ),
        (
            "filters=gender",
            "`filters`: \"gender\" should be field:operator or field:operator:value",
        ),
        (
            "filters=gender:like:F",
            "`filters`: in \"gender:like:F\", unknown operator `like`; expected one of eq, ne, lt, le, gt, ge, begins_with, contains, exists, not_exists",
        ),
        (
            "filters=[[\"a\",\"eq\"",
            "`filters`: not a JSON array of [field, operator, value] arrays (EOF while parsing a list at line 1 column 10)",
        ),
        ("fields=id,,name", "`fields`: an attribute name is empty"),
        (
            "sort=name",
            "unknown query parameter `sort`; a list accepts limit, offset, fields, filters and order",
        ),
    ];
    for (query, message) in cases {
        let reply = get(&app, &format!("/api/mocks?{}", query.replace('"', "%22"))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.error(), *message, "{query}");
    }
}

/// A backend whose store is broken, to observe how failures reach clients.
#[derive(Debug)]
struct BrokenBackend;

#[derive(Debug, thiserror::Error)]
#[error("connection to db-7.internal:5432 refused (password=hunter2)")]
struct SecretDetail;

#[async_trait]
impl Backend for BrokenBackend {
    async fn list(&self, _: &ListQuery) -> Result<Page, BackendError> {
        Err(BackendError::Unavailable {
            retry_after_seconds: 2,
            source: Box::new(SecretDetail),
        })
    }
    async fn get_versioned(&self, _: &RecordId) -> Result<Versioned, BackendError> {
        Err(BackendError::Internal(Box::new(SecretDetail)))
    }
    async fn create_versioned(&self, _: NewRecord) -> Result<Versioned, BackendError> {
        Err(BackendError::Internal(Box::new(SecretDetail)))
    }
    async fn update_if(
        &self,
        _: &RecordId,
        _: RecordChanges,
        _: &Expected,
    ) -> Result<Versioned, BackendError> {
        Err(BackendError::Internal(Box::new(SecretDetail)))
    }
    async fn delete_if(&self, _: &RecordId, _: &Expected) -> Result<(), BackendError> {
        Err(BackendError::Internal(Box::new(SecretDetail)))
    }
}

#[tokio::test]
async fn internal_errors_are_500_with_the_request_id_and_no_internals() {
    let app =
        router(ResourceMap::default().with("broken", ServedResource::new(Arc::new(BrokenBackend))));
    let request = Request::builder()
        .uri("/api/broken/x")
        .header("x-request-id", "req-42")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"error": "internal error (request id req-42)"})
    );

    let reply = call(&app, Method::POST, "/api/broken", r#"{"id":"a"}"#).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = reply.header("x-request-id").unwrap();
    assert_eq!(
        reply.error(),
        format!("internal error (request id {request_id})")
    );
    assert!(!String::from_utf8_lossy(&reply.raw).contains("hunter2"));
}

#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after() {
    let app =
        router(ResourceMap::default().with("broken", ServedResource::new(Arc::new(BrokenBackend))));
    let reply = get(&app, "/api/broken").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("2"));
    assert_eq!(reply.error(), "the data store is temporarily unavailable");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = app();
    let first = get(&app, "/api/mocks").await;
    let second = get(&app, "/api/nope").await;
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_eq!(a.len(), 36, "a UUID: {a}");
    assert_ne!(a, b);
}

/// `call` with extra request headers.
async fn call_with(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap()
    };
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

#[tokio::test]
async fn etags_and_preconditions_on_every_resource() {
    let app = app();
    // mocks (memory) and users (embedded): seeds were written outside the
    // API, at version 0.
    for resource in ["mocks", "users"] {
        let seeded = get(&app, &format!("/api/{resource}")).await;
        let first = ids(&seeded)[0].to_owned();
        let uri = format!("/api/{resource}/{first}");
        let read = get(&app, &uri).await;
        assert_eq!(read.header("etag"), Some("\"0\""), "{uri}");
        assert!(read.headers.get("etag").is_some());

        let updated = call_with(
            &app,
            Method::PUT,
            &uri,
            &[("if-match", "\"0\"")],
            r#"{"x":1}"#,
        )
        .await;
        assert_eq!(updated.status, StatusCode::OK, "{uri}: {}", updated.body);
        assert_eq!(updated.header("etag"), Some("\"1\""));

        let stale = call_with(
            &app,
            Method::PUT,
            &uri,
            &[("if-match", "\"0\"")],
            r#"{"x":2}"#,
        )
        .await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            stale.error(),
            format!(
                "the record with id `{first}` has changed: If-Match expected ETag \"0\", \
                 the current ETag is \"1\"; read it again and retry"
            )
        );
        assert_eq!(stale.header("content-type"), Some("application/json"));
        assert_eq!(get(&app, &uri).await.body["x"], json!(1), "nothing written");

        let malformed = call_with(
            &app,
            Method::DELETE,
            &uri,
            &[("if-match", "1")],
            Body::empty(),
        )
        .await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            malformed.error(),
            "invalid if-match header: an entity tag must be quoted, as in \"3\""
        );

        let unchanged = call_with(
            &app,
            Method::GET,
            &uri,
            &[("if-none-match", "W/\"1\"")],
            Body::empty(),
        )
        .await;
        assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
        assert_eq!(unchanged.header("etag"), Some("\"1\""));
        assert!(unchanged.raw.is_empty());

        let deleted = call_with(
            &app,
            Method::DELETE,
            &uri,
            &[("if-match", "\"1\"")],
            Body::empty(),
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    }

    let created = call(&app, Method::POST, "/api/users", r#"{"id":"fresh"}"#).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let refused = call(
        &app,
        Method::POST,
        "/api/users",
        r#"{"id":"v","_version":3}"#,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.error().contains("`_version`"),
        "{}",
        refused.error()
    );
}
