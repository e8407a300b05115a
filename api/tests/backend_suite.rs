//! One behavioural suite, run against every backend: memory, the embedded
//! store, and DynamoDB (on the emulator).
//!
//! Each case is written once, drives the HTTP router (what a client sees),
//! and is instantiated per backend by `suite!` at the bottom, so the three
//! cannot drift apart. DynamoDB lists in hash order and may reformat number
//! text (`5.50` → `5.5`), so the cases compare sets of ids and numbers by value.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

mod addressing;
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use api::backend::dynamodb::DynamoDbBackend;
use api::backend::dynamodb::attribute::record_to_item;
use api::backend::embedded::EmbeddedStore;
use api::backend::memory::MemoryBackend;
use api::backend::{Backend, VERSION_ATTRIBUTE};
use api::index::{IndexConfig, KeyAttribute, KeyKind};
use api::record::{MAX_BODY_BYTES, NewRecord};
use api::{ResourceMap, ServedResource, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    Embedded,
    DynamoDb,
}

/// The router over one resource `things` of `kind`, holding `seed`; `None`
/// when that backend cannot run here (DynamoDB without an emulator, outside CI).
async fn things(kind: Kind, seed: Vec<Value>) -> Option<Router> {
    indexed_things(kind, seed, Vec::new()).await
}

/// [`things`] with secondary `indexes` (global secondary indexes of the
/// DynamoDB table).
async fn indexed_things(kind: Kind, seed: Vec<Value>, indexes: Vec<IndexConfig>) -> Option<Router> {
    let seed: Vec<NewRecord> = seed
        .iter()
        .map(|record| NewRecord::from_body(record.to_string().as_bytes()).unwrap())
        .collect();
    let backend: Arc<dyn Backend> = match kind {
        Kind::Memory => Arc::new(MemoryBackend::with_records(seed).unwrap()),
        Kind::Embedded => {
            let dir = support::ScratchDir::new("api-suite");
            let store = EmbeddedStore::open(&dir.path().join("api.redb")).unwrap();
            Arc::new(store.resource("things", seed).unwrap())
        }
        Kind::DynamoDb => {
            let config = support::emulator_config().await?;
            let client = aws_sdk_dynamodb::Client::new(&config);
            let table = support::unique_table("suite");
            support::create_indexed_table(&client, &table, &indexes).await;
            // As the deployer seeds a table: plain items without a version,
            // so seeds are at version 0 here as in the other backends.
            for record in seed {
                client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(record_to_item(&record.record)))
                    .send()
                    .await
                    .unwrap();
            }
            Arc::new(DynamoDbBackend::new(client, table))
        }
    };
    let resource = ServedResource {
        indexes,
        ..ServedResource::new(backend)
    };
    Some(router(ResourceMap::default().with("things", resource)))
}

struct Reply {
    status: StatusCode,
    body: Value,
    next_offset: Option<String>,
    etag: Option<String>,
    served_by: Option<String>,
}

async fn call(app: &Router, method: Method, uri: &str, body: impl Into<Body>) -> Reply {
    call_with(app, method, uri, &[], body).await
}

/// A request with extra `headers`.
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
    let request = request.body(body.into()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let next_offset = header(response.headers(), "next-offset");
    let etag = header(response.headers(), "etag");
    let served_by = header(response.headers(), "x-served-by");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Reply {
        status,
        body,
        next_offset,
        etag,
        served_by,
    }
}

fn header(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    Some(headers.get(name)?.to_str().unwrap().to_owned())
}

async fn get(app: &Router, uri: &str) -> Reply {
    call(app, Method::GET, uri, Body::empty()).await
}

fn ids(body: &Value) -> BTreeSet<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

/// `value` with every number rewritten to one canonical text, so `5.50`,
/// `5.5` and `55e-1` compare equal and `5.5` and `5.51` do not.
fn by_value(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(canonical_decimal(&n.to_string())),
        Value::Array(items) => Value::Array(items.iter().map(by_value).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), by_value(v))).collect())
        }
        other => other.clone(),
    }
}

fn canonical_decimal(text: &str) -> String {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap()),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let exponent = exponent - frac.len() as i64;
    let trimmed_end = digits.trim_end_matches('0');
    let exponent = exponent + (digits.len() - trimmed_end.len()) as i64;
    let significant = trimmed_end.trim_start_matches('0');
    if significant.is_empty() {
        return "0".to_owned();
    }
    format!(
        "{}{significant}e{exponent}",
        if negative { "-" } else { "" }
    )
}

// ---------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------

async fn create_read_update_delete(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let created = call(
        &app,
        Method::POST,
        "/api/things",
        r#"{"id":"t-1","name":"one","n":1}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body, json!({"id":"t-1","name":"one","n":1}));

    let read = get(&app, "/api/things/t-1").await;
    assert_eq!(
        (read.status, read.body),
        (StatusCode::OK, json!({"id":"t-1","name":"one","n":1}))
    );

    let updated = call(
        &app,
        Method::PUT,
        "/api/things/t-1",
        r#"{"n":2,"extra":[true]}"#,
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    let expected = json!({"id":"t-1","name":"one","n":2,"extra":[true]});
    assert_eq!(by_value(&updated.body), by_value(&expected));
    assert_eq!(
        by_value(&get(&app, "/api/things/t-1").await.body),
        by_value(&expected)
    );

    let unchanged = call(&app, Method::PUT, "/api/things/t-1", "{}").await;
    assert_eq!(unchanged.status, StatusCode::OK);
    assert_eq!(by_value(&unchanged.body), by_value(&expected));

    let deleted = call(&app, Method::DELETE, "/api/things/t-1", Body::empty()).await;
    assert_eq!(
        (deleted.status, deleted.body),
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_eq!(
        get(&app, "/api/things/t-1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ids(&get(&app, "/api/things").await.body), set(&[]));
}

async fn duplicate_create_is_409_and_keeps_the_first(kind: Kind) {
    let Some(app) = things(kind, vec![json!({"id":"a","v":1})]).await else {
        return;
    };
    let reply = call(&app, Method::POST, "/api/things", r#"{"id":"a","v":2}"#).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(
        reply.body,
        json!({"error": "a record with id `a` already exists"})
    );
    assert_eq!(
        get(&app, "/api/things/a").await.body,
        json!({"id":"a","v":1})
    );
}

async fn update_and_delete_of_a_missing_id_are_404_and_create_nothing(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let reply = call(&app, Method::PUT, "/api/things/ghost", r#"{"v":1}"#).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, json!({"error": "no record with id `ghost`"}));
    let reply = call(&app, Method::PUT, "/api/things/ghost", "{}").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = call(&app, Method::DELETE, "/api/things/ghost", Body::empty()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/api/things/ghost").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ids(&get(&app, "/api/things").await.body), set(&[]));
}

async fn numbers_and_nested_values_round_trip(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let body = r#"{"id":"n","price":5.50,"tenth":0.1,"big":12345678901234567890,"tiny":-1e-7,"wide":1234567890123456789012345678.0123456789,"zero":0,"neg":-42,"flag":false,"none":null,"empty":"","deep":{"list":[1,"two",{"three":[3.0]}],"map":{}},"list":[]}"#;
    let sent: Value = serde_json::from_str(body).unwrap();
    let created = call(&app, Method::POST, "/api/things", body).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(by_value(&created.body), by_value(&sent));
    let read = get(&app, "/api/things/n").await;
    assert_eq!(by_value(&read.body), by_value(&sent));
    let listed = get(&app, "/api/things").await;
    assert_eq!(by_value(&listed.body[0]), by_value(&sent));
    // Values, not just text: 0.1 must not have become 0.1000000000000000055…
    assert_eq!(canonical_decimal(&read.body["tenth"].to_string()), "1e-1");
    assert_eq!(
        canonical_decimal(&read.body["big"].to_string()),
        "1234567890123456789e1"
    );
}

async fn fields_return_only_the_named_attributes(kind: Kind) {
    let seed = vec![
        json!({"id":"a","name":"A","status":"on","ttl":5,"value":1,"other":true}),
        json!({"id":"b","name":"B","value":2}),
    ];
    let Some(app) = things(kind, seed).await else {
        return;
    };
    let reply = get(&app, "/api/things?fields=name,status,ttl,value").await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut records = reply.body.as_array().unwrap().clone();
    records.sort_by_key(|r| r["name"].as_str().unwrap().to_owned());
    assert_eq!(
        records,
        vec![
            json!({"name":"A","status":"on","ttl":5,"value":1}),
            json!({"name":"B","value":2}),
        ]
    );
    let reply = get(&app, "/api/things?fields=id").await;
    assert_eq!(by_value(&reply.body).as_array().unwrap().len(), 2);
    assert!(
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.as_object().unwrap().len() == 1)
    );
}

/// A data set exercising every operator on the reserved words `name`,
/// `status`, `ttl` and `value`, with mixed types and missing attributes.
fn operator_records() -> Vec<Value> {
    vec![
        json!({"id":"a","name":"Alpha","status":"active","value":10,"ttl":100,"tags":["x","y"],"flag":true}),
        json!({"id":"b","name":"Beta","status":"inactive","value":2.5,"tags":["y",7],"flag":false,"note":null}),
        json!({"id":"c","name":"Gamma","status":"active","value":"10"}),
        json!({"id":"d","name":"alphabet","value":-3}),
    ]
}

async fn every_filter_operator(kind: Kind) {
    let Some(app) = things(kind, operator_records()).await else {
        return;
    };
    let cases: &[(&str, &[&str])] = &[
        ("value:eq:10", &["a"]),
        ("value:eq:10.0", &["a"]),
        ("value:eq:%2210%22", &["c"]),
        ("value:ne:10", &["b", "c", "d"]),
        ("status:ne:active", &["b"]),
        ("value:lt:5", &["b", "d"]),
        ("value:le:2.5", &["b", "d"]),
        ("value:gt:2.5", &["a"]),
        ("value:ge:10", &["a"]),
        ("value:gt:-100", &["a", "b", "d"]),
        ("name:lt:B", &["a"]),
        ("name:ge:a", &["d"]),
        ("name:begins_with:Al", &["a"]),
        ("name:begins_with:al", &["d"]),
        ("name:contains:ph", &["a", "d"]),
        ("tags:contains:y", &["a", "b"]),
        ("tags:contains:7", &["b"]),
        ("status:eq:active", &["a", "c"]),
        ("ttl:exists", &["a"]),
        ("ttl:not_exists", &["b", "c", "d"]),
        ("note:exists", &["b"]),
        ("flag:eq:false", &["b"]),
        ("flag:eq:true", &["a"]),
        ("status:eq:active,value:gt:1", &["a"]),
        ("missing:eq:1", &[]),
        ("missing:ne:1", &[]),
        (
            "[[%22status%22,%22eq%22,%22active%22],[%22value%22,%22eq%22,%2210%22]]",
            &["c"],
        ),
    ];
    for (filters, expected) in cases {
        let reply = get(&app, &format!("/api/things?filters={filters}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{filters}: {}", reply.body);
        assert_eq!(
            ids(&reply.body),
            set(expected),
            "{kind:?} filters={filters}"
        );
    }
}

async fn pagination_visits_every_record_exactly_once(kind: Kind) {
    let seed = (0..250)
        .map(|i| json!({"id": format!("p{i:03}"), "i": i}))
        .collect();
    let Some(app) = things(kind, seed).await else {
        return;
    };
    let mut seen = Vec::new();
    let mut uri = "/api/things?limit=7".to_owned();
    loop {
        let reply = get(&app, &uri).await;
        assert_eq!(reply.status, StatusCode::OK);
        let page = reply.body.as_array().unwrap();
        assert!(page.len() <= 7);
        seen.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        let Some(next) = reply.next_offset else { break };
        assert_eq!(page.len(), 7, "only the last page may be short");
        uri = format!("/api/things?limit=7&offset={next}");
        assert!(seen.len() <= 250, "more records listed than stored");
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a record was listed twice");
    assert_eq!(unique, (0..250).map(|i| format!("p{i:03}")).collect());
}

async fn a_filtered_page_fills_up_to_the_limit(kind: Kind) {
    let seed = (0..60)
        .map(|i| json!({"id": format!("f{i:02}"), "hit": i % 10 == 0}))
        .collect();
    let Some(app) = things(kind, seed).await else {
        return;
    };
    let first = get(&app, "/api/things?limit=4&filters=hit:eq:true").await;
    assert_eq!(first.body.as_array().unwrap().len(), 4, "{}", first.body);
    let mut seen = ids(&first.body);
    let mut next = first.next_offset;
    while let Some(offset) = next {
        let page = get(
            &app,
            &format!("/api/things?limit=4&filters=hit:eq:true&offset={offset}"),
        )
        .await;
        let page_ids = ids(&page.body);
        assert!(seen.is_disjoint(&page_ids), "a match was listed twice");
        seen.extend(page_ids);
        next = page.next_offset;
    }
    assert_eq!(seen, set(&["f00", "f10", "f20", "f30", "f40", "f50"]));
}

async fn oversized_records_are_refused_and_nothing_changes(kind: Kind) {
    let Some(app) = things(kind, vec![json!({"id":"small","v":1})]).await else {
        return;
    };
    let huge = json!({"id":"huge","blob":"x".repeat(MAX_BODY_BYTES)}).to_string();
    let reply = call(&app, Method::POST, "/api/things", huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        get(&app, "/api/things/huge").await.status,
        StatusCode::NOT_FOUND
    );

    // Two halves that each fit, but not together (over DynamoDB's 400 KB).
    let half = "y".repeat(220 * 1024);
    let reply = call(
        &app,
        Method::PUT,
        "/api/things/small",
        json!({"a": half}).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(
        &app,
        Method::PUT,
        "/api/things/small",
        json!({"b": half}).to_string(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    let record = get(&app, "/api/things/small").await.body;
    assert!(
        record.get("b").is_none(),
        "the refused update changed nothing"
    );
    assert_eq!(record["a"].as_str().unwrap().len(), half.len());
}

async fn concurrent_creates_of_one_id_give_one_201(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let body = json!({"id": "race", "attempt": i}).to_string();
                call(&app, Method::POST, "/api/things", body).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 99), "{kind:?}");
}

/// Ids with spaces, URL delimiters, `%`, non-ASCII in both normal forms:
/// created, read, updated, listed, filtered and deleted by their id alone.
async fn any_accepted_id_round_trips(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let accepted = addressing::accepted_ids();
    addressing::create_each(&app, "/api/things", &accepted).await;
    addressing::address_each(&app, "/api/things", &accepted).await;
    assert_eq!(ids(&get(&app, "/api/things").await.body), set(&[]));
}

// Optimistic concurrency: ETag, If-Match, If-None-Match.

/// `PUT /api/things/{id}` with `If-Match: if_match`.
async fn put_if(app: &Router, id: &str, if_match: &str, body: Value) -> Reply {
    let uri = format!("/api/things/{id}");
    call_with(
        app,
        Method::PUT,
        &uri,
        &[("if-match", if_match)],
        body.to_string(),
    )
    .await
}

async fn delete_if(app: &Router, id: &str, if_match: &str) -> Reply {
    let uri = format!("/api/things/{id}");
    call_with(
        app,
        Method::DELETE,
        &uri,
        &[("if-match", if_match)],
        Body::empty(),
    )
    .await
}

async fn two_writers_with_one_etag_give_one_200_and_one_412(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let created = call(
        &app,
        Method::POST,
        "/api/things",
        r#"{"id":"doc","owner":"none"}"#,
    )
    .await;
    assert_eq!(created.etag.as_deref(), Some("\"1\""));
    // Each round: every writer reads the record, then all PUT at once with
    // the ETag they read. Two writers as the issue says, then eight.
    for (round, writers) in [2, 2, 2, 8].into_iter().enumerate() {
        let mut etags = Vec::new();
        for _ in 0..writers {
            let read = get(&app, "/api/things/doc").await;
            assert_eq!(read.status, StatusCode::OK);
            etags.push(read.etag.unwrap());
        }
        assert!(etags.windows(2).all(|pair| pair[0] == pair[1]));
        let attempts: Vec<_> = etags
            .into_iter()
            .enumerate()
            .map(|(writer, etag)| {
                let app = app.clone();
                tokio::spawn(async move {
                    let body = json!({"owner": format!("writer {writer} of round {round}")});
                    (body.clone(), put_if(&app, "doc", &etag, body).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut refused = 0;
        for attempt in attempts {
            let (body, reply) = attempt.await.unwrap();
            match reply.status {
                StatusCode::OK => winners.push((body, reply)),
                StatusCode::PRECONDITION_FAILED => {
                    refused += 1;
                    let error = reply.body["error"].as_str().unwrap();
                    assert!(error.contains("has changed"), "{error}");
                }
                other => panic!("{kind:?}: unexpected {other}: {}", reply.body),
            }
        }
        assert_eq!(
            (winners.len(), refused),
            (1, writers - 1),
            "{kind:?} round {round}"
        );
        let (winning_body, winning_reply) = winners.pop().unwrap();
        let stored = get(&app, "/api/things/doc").await;
        assert_eq!(
            stored.body["owner"], winning_body["owner"],
            "the winner's write is stored"
        );
        assert_eq!(stored.body, winning_reply.body);
        assert_eq!(stored.etag, winning_reply.etag);
        assert_eq!(stored.etag, Some(format!("\"{}\"", round + 2)));
    }
}

async fn a_delete_with_a_stale_etag_is_412_and_the_record_stays(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    call(&app, Method::POST, "/api/things", r#"{"id":"d","v":1}"#).await;
    let updated = call(&app, Method::PUT, "/api/things/d", r#"{"v":2}"#).await;
    assert_eq!(updated.etag.as_deref(), Some("\"2\""));

    let refused = delete_if(&app, "d", "\"1\"").await;
    assert_eq!(
        refused.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body,
        json!({"error": "the record with id `d` has changed: If-Match expected ETag \"1\", \
                         the current ETag is \"2\"; read it again and retry"})
    );
    let kept = get(&app, "/api/things/d").await;
    assert_eq!(
        (kept.status, kept.body),
        (StatusCode::OK, json!({"id":"d","v":2}))
    );

    let deleted = delete_if(&app, "d", "\"7\", \"2\"").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app, "/api/things/d").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn if_match_on_a_missing_id_is_404_and_creates_nothing(kind: Kind) {
    let Some(app) = things(kind, vec![json!({"id":"here"})]).await else {
        return;
    };
    for if_match in ["*", "\"0\"", "\"1\""] {
        let reply = put_if(&app, "ghost", if_match, json!({"v": 1})).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "PUT If-Match: {if_match}"
        );
        let reply = delete_if(&app, "ghost", if_match).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "DELETE If-Match: {if_match}"
        );
    }
    assert_eq!(
        get(&app, "/api/things/ghost").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ids(&get(&app, "/api/things").await.body), set(&["here"]));
    // `*` on an existing record: any version.
    let reply = put_if(&app, "here", "*", json!({"v": 1})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        delete_if(&app, "here", "*").await.status,
        StatusCode::NO_CONTENT
    );
}

async fn the_etag_counts_writes(kind: Kind) {
    let Some(app) = things(kind, vec![]).await else {
        return;
    };
    let etag = |reply: &Reply| reply.etag.clone().unwrap();
    let created = call(&app, Method::POST, "/api/things", r#"{"id":"e","n":0}"#).await;
    assert_eq!(etag(&created), "\"1\"");
    assert_eq!(etag(&get(&app, "/api/things/e").await), "\"1\"");
    let first = call(&app, Method::PUT, "/api/things/e", r#"{"n":1}"#).await;
    assert_eq!(etag(&first), "\"2\"");
    assert_eq!(etag(&get(&app, "/api/things/e").await), "\"2\"");
    // Setting nothing writes nothing: same version.
    let nothing = put_if(&app, "e", "\"2\"", json!({})).await;
    assert_eq!(
        (nothing.status, etag(&nothing)),
        (StatusCode::OK, "\"2\"".into())
    );
    let stale_nothing = put_if(&app, "e", "\"1\"", json!({})).await;
    assert_eq!(stale_nothing.status, StatusCode::PRECONDITION_FAILED);
    let second = put_if(&app, "e", "\"2\"", json!({"n": 2})).await;
    assert_eq!(etag(&second), "\"3\"");
    let listed = put_if(&app, "e", "\"1\", \"3\"", json!({"n": 3})).await;
    assert_eq!(
        (listed.status, etag(&listed)),
        (StatusCode::OK, "\"4\"".into())
    );
    // If-Match compares strongly: a weak tag never matches.
    let weak = put_if(&app, "e", "W/\"4\"", json!({"n": 4})).await;
    assert_eq!(weak.status, StatusCode::PRECONDITION_FAILED);
    let bad = put_if(&app, "e", "4", json!({"n": 4})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"].as_str().unwrap().contains("if-match"),
        "{}",
        bad.body
    );
    assert_eq!(
        get(&app, "/api/things/e").await.body["n"],
        json!(3),
        "refusals wrote nothing"
    );

    // If-None-Match: 304 while the client's copy is current.
    let headers = [("if-none-match", "\"4\"")];
    let unchanged = call_with(&app, Method::GET, "/api/things/e", &headers, Body::empty()).await;
    assert_eq!(
        (unchanged.status, etag(&unchanged), unchanged.body),
        (StatusCode::NOT_MODIFIED, "\"4\"".into(), Value::Null)
    );
    let headers = [("if-none-match", "\"3\"")];
    let changed = call_with(&app, Method::GET, "/api/things/e", &headers, Body::empty()).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.body["n"], json!(3));
}

async fn a_record_written_without_a_version_is_version_0(kind: Kind) {
    // Seeds are written as another tool writes (no version attribute).
    let Some(app) = things(kind, vec![json!({"id":"old","v":"seed"})]).await else {
        return;
    };
    let read = get(&app, "/api/things/old").await;
    assert_eq!(read.etag.as_deref(), Some("\"0\""));
    assert_eq!(read.body, json!({"id":"old","v":"seed"}));
    let stale = put_if(&app, "old", "\"1\"", json!({"v": "x"})).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let updated = put_if(&app, "old", "\"0\"", json!({"v": "new"})).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.etag.as_deref(), Some("\"1\""));
    assert_eq!(updated.body, json!({"id":"old","v":"new"}));
    let again = put_if(&app, "old", "\"0\"", json!({"v": "lost"})).await;
    assert_eq!(again.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        delete_if(&app, "old", "\"0\"").await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        delete_if(&app, "old", "\"1\"").await.status,
        StatusCode::NO_CONTENT
    );
}

async fn bodies_never_show_the_version_attribute(kind: Kind) {
    let Some(app) = things(kind, vec![json!({"id":"seeded"})]).await else {
        return;
    };
    let has_version = |value: &Value| value.to_string().contains(VERSION_ATTRIBUTE);
    let created = call(&app, Method::POST, "/api/things", r#"{"id":"v","n":1}"#).await;
    assert_eq!(created.body, json!({"id":"v","n":1}));
    let updated = call(&app, Method::PUT, "/api/things/v", r#"{"n":2}"#).await;
    assert_eq!(by_value(&updated.body), by_value(&json!({"id":"v","n":2})));
    assert!(!has_version(&get(&app, "/api/things/v").await.body));
    for uri in [
        "/api/things",
        "/api/things?fields=_version",
        "/api/things?fields=id,_version",
        "/api/things?limit=1",
    ] {
        let listed = get(&app, uri).await;
        assert_eq!(listed.status, StatusCode::OK, "{uri}");
        assert!(!has_version(&listed.body), "{uri}: {}", listed.body);
    }
    // Clients may not write it, nor filter on it; the error names it.
    for (method, uri, body) in [
        (Method::POST, "/api/things", r#"{"id":"w","_version":9}"#),
        (Method::PUT, "/api/things/v", r#"{"_version":9}"#),
    ] {
        let reply = call(&app, method.clone(), uri, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {uri}");
        let error = reply.body["error"].as_str().unwrap();
        assert!(error.contains(VERSION_ATTRIBUTE), "{error}");
    }
    assert_eq!(
        get(&app, "/api/things/w").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/api/things/v").await.etag.as_deref(),
        Some("\"2\"")
    );
    let filtered = get(&app, "/api/things?filters=_version:exists").await;
    assert_eq!(filtered.status, StatusCode::BAD_REQUEST);
    assert!(
        filtered.body["error"]
            .as_str()
            .unwrap()
            .contains(VERSION_ATTRIBUTE)
    );
}

// ---------------------------------------------------------------------------
// Lists served from a secondary index: the same records, order and cursors
// on every backend.
// ---------------------------------------------------------------------------

fn key(name: &str, kind: KeyKind) -> KeyAttribute {
    KeyAttribute {
        name: name.to_owned(),
        kind,
    }
}

/// `by-gender` (partition `gender`) and `by-team-age` (partition `team`,
/// sort `age`, a number).
fn people_indexes() -> Vec<IndexConfig> {
    vec![
        IndexConfig {
            name: "by-gender".to_owned(),
            partition_key: key("gender", KeyKind::String),
            sort_key: None,
        },
        IndexConfig {
            name: "by-team-age".to_owned(),
            partition_key: key("team", KeyKind::String),
            sort_key: Some(key("age", KeyKind::Number)),
        },
    ]
}

/// 60 people: genders F, M, X in turn; teams red and blue in turn; ages
/// from 20 to 39 (so several share an age), except every seventh has none.
fn people() -> Vec<Value> {
    (0..60)
        .map(|i| {
            let gender = ["F", "M", "X"][i % 3];
            let team = ["red", "blue"][i % 2];
            let name = format!("{}{i}", ["Ana", "Bo", "Cy"][i % 3]);
            let mut person = json!({
                "id": format!("u{i:02}"),
                "gender": gender,
                "team": team,
                "name": name,
            });
            if i % 7 != 0 {
                person["age"] = json!(20 + (i * 13) % 20);
            }
            person
        })
        .collect()
}

/// Every page of `query`, following `next-offset`: the ids in order, and
/// what each page said served it.
async fn follow(app: &Router, query: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut listed = Vec::new();
    let mut served_by = BTreeSet::new();
    let mut uri = format!("/api/things?{query}");
    loop {
        let reply = get(app, &uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        served_by.extend(reply.served_by.clone());
        listed.extend(
            reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|record| record["id"].as_str().unwrap().to_owned()),
        );
        let Some(next) = reply.next_offset else {
            break;
        };
        uri = format!("/api/things?{query}&offset={next}");
        assert!(listed.len() <= 60, "more listed than stored: {listed:?}");
    }
    (listed, served_by)
}

/// The ids of `people()` passing `keep`, ordered by age then id.
fn by_age(keep: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut selected: Vec<(i64, String)> = people()
        .iter()
        .filter(|person| keep(person))
        .map(|person| {
            (
                person["age"].as_i64().unwrap(),
                person["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    selected.sort();
    selected.into_iter().map(|(_, id)| id).collect()
}

async fn an_eq_on_an_index_key_is_served_by_the_index(kind: Kind) {
    let Some(app) = indexed_things(kind, people(), people_indexes()).await else {
        return;
    };
    let (listed, served_by) = follow(&app, "limit=4&filters=gender:eq:F").await;
    let expected: Vec<String> = (0..60).step_by(3).map(|i| format!("u{i:02}")).collect();
    assert_eq!(
        listed, expected,
        "in id order (the index has no sort key), each once"
    );
    assert_eq!(served_by, set(&["index by-gender"]));

    // Other filters stay filters; the list still reads the index only.
    let (listed, served_by) = follow(
        &app,
        "limit=3&filters=gender:eq:F,name:begins_with:Ana,age:ge:30",
    )
    .await;
    let expected: Vec<String> = people()
        .iter()
        .filter(|p| p["gender"] == "F" && p["age"].as_i64().is_some_and(|age| age >= 30))
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(served_by, set(&["index by-gender"]));

    // A scan answers what no index can, with the same records.
    let (listed, served_by) = follow(&app, "limit=7&filters=gender:ne:F").await;
    assert_eq!(served_by, set(&["scan"]));
    let listed: BTreeSet<String> = listed.into_iter().collect();
    let expected: BTreeSet<String> = (0..60)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("u{i:02}"))
        .collect();
    assert_eq!(listed, expected);
}

async fn order_follows_the_sort_key_then_the_id(kind: Kind) {
    let Some(app) = indexed_things(kind, people(), people_indexes()).await else {
        return;
    };
    let red_with_age = |p: &Value| p["team"] == "red" && p.get("age").is_some();
    let ascending = by_age(red_with_age);
    assert!(ascending.len() > 20, "several pages, ties on age included");

    let (listed, served_by) = follow(&app, "limit=4&filters=team:eq:red&order=age").await;
    assert_eq!(
        listed, ascending,
        "people without an age are not in the index"
    );
    assert_eq!(served_by, set(&["index by-team-age"]));

    let (listed, _) = follow(&app, "limit=5&filters=team:eq:red&order=-age").await;
    let mut descending = ascending.clone();
    descending.reverse();
    assert_eq!(listed, descending, "descending reverses ties too");

    // A condition on the sort key is part of the key; fields keep the cursor.
    let over_29 = by_age(|p| red_with_age(p) && p["age"].as_i64().unwrap() > 29);
    let (listed, served_by) = follow(&app, "limit=3&filters=team:eq:red,age:gt:29").await;
    assert_eq!(listed, over_29);
    assert_eq!(served_by, set(&["index by-team-age"]));
    let page = get(
        &app,
        "/api/things?limit=3&filters=team:eq:red,age:gt:29&fields=name",
    )
    .await;
    assert_eq!(
        page.body[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name"],
        "only the named fields, though the cursor needs id and age"
    );
}

/// `follow`, for queries that ask for `fields` without `id`: counts records.
async fn count_pages(app: &Router, query: &str) -> usize {
    let mut count = 0;
    let mut uri = format!("/api/things?{query}");
    loop {
        let reply = get(app, &uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        count += reply.body.as_array().unwrap().len();
        let Some(next) = reply.next_offset else {
            return count;
        };
        uri = format!("/api/things?{query}&offset={next}");
    }
}

async fn index_rules_are_the_same_on_every_backend(kind: Kind) {
    let Some(app) = indexed_things(kind, people(), people_indexes()).await else {
        return;
    };
    let over_29 = by_age(|p| p["team"] == "red" && p["age"].as_i64().is_some_and(|age| age > 29));
    assert_eq!(
        count_pages(&app, "limit=3&filters=team:eq:red,age:gt:29&fields=name").await,
        over_29.len()
    );

    // `order` needs an index sorting by it, and its partition key's `eq`.
    for (query, fragment) in [
        ("order=name", "no index of this resource sorts by `name`"),
        ("order=age", "`filters=team:eq:…`"),
        ("filters=gender:eq:F&order=age", "`filters=team:eq:…`"),
        ("order=", ""),
        ("order=-", "`order` must be an attribute name"),
    ] {
        let reply = get(&app, &format!("/api/things?{query}")).await;
        if fragment.is_empty() {
            assert_eq!(reply.status, StatusCode::OK, "{query}");
            continue;
        }
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let error = reply.body["error"].as_str().unwrap();
        assert!(error.contains(fragment), "{query}: {error}");
    }

    // A cursor belongs to the plan that minted it.
    let page = get(&app, "/api/things?limit=2&filters=gender:eq:F").await;
    let offset = page.next_offset.unwrap();
    let reply = get(&app, &format!("/api/things?limit=2&offset={offset}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("`offset` was returned by a list served from index `by-gender`"),
        "{}",
        reply.body
    );

    // What DynamoDB cannot store under an index is refused everywhere, and
    // nothing is written.
    for (body, fragment) in [
        (
            json!({"id": "bad-1", "gender": 5}),
            "attribute `gender` is the partition key of index `by-gender`",
        ),
        (json!({"id": "bad-2", "team": ""}), "got an empty string"),
        (
            json!({"id": "bad-3", "age": "31"}),
            "`age` is the sort key of index `by-team-age`",
        ),
    ] {
        let reply = call(&app, Method::POST, "/api/things", body.to_string()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            reply.body["error"].as_str().unwrap().contains(fragment),
            "{}",
            reply.body
        );
        let id = body["id"].as_str().unwrap();
        assert_eq!(
            get(&app, &format!("/api/things/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let reply = call(
        &app,
        Method::PUT,
        "/api/things/u01",
        json!({"gender": null}).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(get(&app, "/api/things/u01").await.body["gender"], "M");
}

/// Instantiates every case for every backend.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::Kind::Memory).await })*
        }
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::Kind::Embedded).await })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::Kind::DynamoDb).await })*
        }
    };
}

suite!(
    create_read_update_delete,
    duplicate_create_is_409_and_keeps_the_first,
    update_and_delete_of_a_missing_id_are_404_and_create_nothing,
    numbers_and_nested_values_round_trip,
    fields_return_only_the_named_attributes,
    every_filter_operator,
    pagination_visits_every_record_exactly_once,
    a_filtered_page_fills_up_to_the_limit,
    oversized_records_are_refused_and_nothing_changes,
    concurrent_creates_of_one_id_give_one_201,
    any_accepted_id_round_trips,
    two_writers_with_one_etag_give_one_200_and_one_412,
    a_delete_with_a_stale_etag_is_412_and_the_record_stays,
    if_match_on_a_missing_id_is_404_and_creates_nothing,
    the_etag_counts_writes,
    a_record_written_without_a_version_is_version_0,
    bodies_never_show_the_version_attribute,
    an_eq_on_an_index_key_is_served_by_the_index,
    order_follows_the_sort_key_then_the_id,
    index_rules_are_the_same_on_every_backend,
);

#[test]
fn canonical_decimals_compare_values() {
    for (a, b) in [
        ("5.50", "5.5"),
        ("55e-1", "5.5"),
        ("-1e-7", "-0.0000001"),
        ("100", "1E2"),
        ("0.0", "0"),
    ] {
        assert_eq!(canonical_decimal(a), canonical_decimal(b), "{a} vs {b}");
    }
    assert_ne!(canonical_decimal("5.5"), canonical_decimal("5.51"));
    assert_ne!(canonical_decimal("-1"), canonical_decimal("1"));
}
