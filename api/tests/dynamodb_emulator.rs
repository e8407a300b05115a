//! What only the DynamoDB backend can get wrong, checked on the emulator:
//! calls per request, item types and keys other tools write, number text, reserved
//! words, filters pushed down as expressions, scans that fill a filtered page,
//! DynamoDB's 400 KB item limit, and conditional writes under contention.
//!
//! The behaviour every backend shares (CRUD, paging, each operator) is the
//! shared suite's, in `backend_suite.rs`. Each test here makes its own table,
//! so they run in parallel on one emulator. Without an emulator they skip
//! (see `support`); `tools/with-emulator` starts one.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

mod addressing;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use api::backend::dynamodb::{DynamoDbBackend, MAX_SCANS_PER_PAGE};
use api::backend::{Backend, BackendError, Expected, Version};
use api::index::{IndexConfig, KeyAttribute, KeyKind};
use api::query::ListQuery;
use api::record::{NewRecord, Record, RecordChanges, RecordId};
use api::{ResourceMap, ServedResource, router};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
    query::QueryInput, scan::ScanInput, update_item::UpdateItemInput,
};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Records the name of every DynamoDB operation the client executes (once
/// per operation, however many attempts the SDK's retries make).
#[derive(Debug, Clone, Default)]
struct CallLog {
    operations: Arc<Mutex<Vec<&'static str>>>,
}

impl CallLog {
    /// The operations since the last call, clearing the log.
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.operations.lock().unwrap())
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let operation = if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            "DeleteItem"
        } else if input.downcast_ref::<ScanInput>().is_some() {
            "Scan"
        } else if input.downcast_ref::<QueryInput>().is_some() {
            "Query"
        } else {
            "other"
        };
        self.operations.lock().unwrap().push(operation);
        Ok(())
    }
}

/// A DynamoDB backend over a new table, its client, and its call log;
/// `None` when no emulator runs (the test skips).
async fn fresh_table(purpose: &str) -> Option<(DynamoDbBackend, Client, CallLog)> {
    fresh_indexed_table(purpose, &[]).await
}

/// [`fresh_table`] with global secondary `indexes`.
async fn fresh_indexed_table(
    purpose: &str,
    indexes: &[IndexConfig],
) -> Option<(DynamoDbBackend, Client, CallLog)> {
    let sdk_config = support::emulator_config().await?;
    let calls = CallLog::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config)
        .interceptor(calls.clone())
        .build();
    let client = Client::from_conf(config);
    let table = support::unique_table(purpose);
    support::create_indexed_table(&client, &table, indexes).await;
    calls.take();
    Some((DynamoDbBackend::new(client.clone(), table), client, calls))
}

fn id(raw: &str) -> RecordId {
    RecordId::parse(raw).unwrap()
}

fn new_record(json: Value) -> NewRecord {
    NewRecord::from_body(json.to_string().as_bytes()).unwrap()
}

fn changes(record_id: &str, json: Value) -> RecordChanges {
    RecordChanges::from_body(json.to_string().as_bytes(), &id(record_id)).unwrap()
}

/// Every record of a list, following the cursors; the Scan calls each page made.
async fn list_all(
    backend: &DynamoDbBackend,
    calls: &CallLog,
    query: &str,
) -> Vec<(Vec<Record>, usize)> {
    let mut query = ListQuery::parse(Some(query), &[]).unwrap();
    let mut pages = Vec::new();
    calls.take();
    loop {
        let page = backend.list(&query).await.unwrap();
        let scans = calls.take();
        assert!(scans.iter().all(|op| *op == "Scan"), "{scans:?}");
        pages.push((page.records, scans.len()));
        assert!(pages.len() < 500, "the cursors never end");
        match page.next {
            Some(next) => query.after = Some(next),
            None => return pages,
        }
    }
}

fn ids_of(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `value` with every number as one canonical decimal text, so that `5.50`
/// and `5.5` (DynamoDB normalises number text) compare equal, and nothing
/// that differs in value does.
fn by_value(value: &Value) -> Value {
    match value {
        Value::Number(number) => Value::String(canonical_decimal(&number.to_string())),
        Value::Array(items) => Value::Array(items.iter().map(by_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, value)| (name.clone(), by_value(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `-1.50e2` → `-15e1`: sign, significant digits, exponent.
fn canonical_decimal(text: &str) -> String {
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().unwrap()),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_end_matches('0');
    let exponent = exponent - i64::try_from(fraction.len()).unwrap()
        + i64::try_from(digits.len() - significant.len()).unwrap();
    match significant.trim_start_matches('0') {
        "" => "0".to_owned(),
        significant => format!("{sign}{significant}e{exponent}"),
    }
}

#[test]
fn canonical_decimals_compare_values() {
    for (a, b) in [
        ("5.50", "5.5"),
        ("-1e-7", "-0.0000001"),
        ("1E+3", "1000"),
        ("0.0", "0"),
    ] {
        assert_eq!(canonical_decimal(a), canonical_decimal(b), "{a} = {b}");
    }
    for (a, b) in [("5.5", "5.51"), ("1", "-1"), ("1e2", "1e3")] {
        assert_ne!(canonical_decimal(a), canonical_decimal(b), "{a} != {b}");
    }
}

#[tokio::test]
async fn each_single_record_request_is_one_dynamodb_call() {
    let Some((backend, _, calls)) = fresh_table("calls").await else {
        return;
    };
    let check = |expected: &str, what: &str| {
        assert_eq!(calls.take(), [expected], "{what}");
    };

    backend
        .create_versioned(new_record(json!({"id": "a", "n": 1})))
        .await
        .unwrap();
    check("PutItem", "create");
    let error = backend
        .create_versioned(new_record(json!({"id": "a"})))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::AlreadyExists(_)), "{error:?}");
    check("PutItem", "create of an existing id");

    assert_eq!(
        backend.get_versioned(&id("a")).await.unwrap().record["n"],
        json!(1)
    );
    check("GetItem", "get right after the create (consistent read)");
    let error = backend.get_versioned(&id("b")).await.unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");
    check("GetItem", "get of a missing id");

    let updated = backend
        .update_if(
            &id("a"),
            changes("a", json!({"n": 2, "m": "x"})),
            &Expected::Any,
        )
        .await
        .unwrap();
    assert_eq!(
        Value::Object(updated.record),
        json!({"id": "a", "m": "x", "n": 2})
    );
    check("UpdateItem", "update");
    let error = backend
        .update_if(&id("b"), changes("b", json!({"n": 2})), &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");
    check("UpdateItem", "update of a missing id");
    assert!(
        matches!(
            backend.get_versioned(&id("b")).await,
            Err(BackendError::NotFound(_))
        ),
        "it never creates"
    );
    calls.take();

    let unchanged = backend
        .update_if(&id("a"), changes("a", json!({"id": "a"})), &Expected::Any)
        .await
        .unwrap();
    assert_eq!(
        Value::Object(unchanged.record),
        json!({"id": "a", "m": "x", "n": 2})
    );
    check("GetItem", "update with no fields");
    let error = backend
        .update_if(&id("b"), changes("b", json!({})), &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");
    check("GetItem", "update with no fields of a missing id");

    backend.delete_if(&id("a"), &Expected::Any).await.unwrap();
    check("DeleteItem", "delete");
    let error = backend
        .delete_if(&id("a"), &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");
    check("DeleteItem", "delete of a missing id");
}

#[tokio::test]
async fn items_written_by_other_tools_read_as_documented() {
    let Some((backend, client, calls)) = fresh_table("foreign").await else {
        return;
    };
    let s = |text: &str| AttributeValue::S(text.to_owned());
    let n = |text: &str| AttributeValue::N(text.to_owned());
    client
        .put_item()
        .table_name(backend.table())
        .item("id", s("foreign"))
        .item("strings", AttributeValue::Ss(vec!["b".into(), "a".into()]))
        .item(
            "numbers",
            AttributeValue::Ns(vec!["1.50".into(), "-2".into()]),
        )
        .item(
            "binaries",
            AttributeValue::Bs(vec![Blob::new(b"hi".to_vec()), Blob::new(vec![0xff])]),
        )
        .item("binary", AttributeValue::B(Blob::new(b"hi\xff".to_vec())))
        .item(
            "nested",
            AttributeValue::M(
                [
                    (
                        "list".to_owned(),
                        AttributeValue::L(vec![
                            n("1"),
                            AttributeValue::Null(true),
                            AttributeValue::Bool(false),
                        ]),
                    ),
                    ("empty".to_owned(), s("")),
                ]
                .into(),
            ),
        )
        .item("nothing", AttributeValue::Null(true))
        .item("flag", AttributeValue::Bool(true))
        .item("big", n("12345678901234567890123456789012345678"))
        .send()
        .await
        .unwrap();
    calls.take();

    let record = Value::Object(backend.get_versioned(&id("foreign")).await.unwrap().record);
    // Sets are unordered in DynamoDB: compare their elements as sets.
    let elements = |value: &Value| -> BTreeSet<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|item| by_value(item).to_string())
            .collect()
    };
    assert_eq!(elements(&record["strings"]), elements(&json!(["a", "b"])));
    assert_eq!(elements(&record["numbers"]), elements(&json!([1.5, -2])));
    assert_eq!(
        elements(&record["binaries"]),
        elements(&json!(["aGk=", "/w=="]))
    );
    let mut rest = record.as_object().unwrap().clone();
    for set in ["strings", "numbers", "binaries"] {
        rest.shift_remove(set);
    }
    assert_eq!(
        by_value(&Value::Object(rest)),
        by_value(&json!({
            "id": "foreign",
            "big": 12345678901234567890123456789012345678u128,
            "binary": "aGn/",
            "flag": true,
            "nested": {"empty": "", "list": [1, null, false]},
            "nothing": null,
        })),
    );
    // The same record through a list.
    let listed = backend.list(&ListQuery::default()).await.unwrap();
    assert_eq!(listed.records.len(), 1);
    assert_eq!(Value::Object(listed.records[0].clone()), record);
}

/// Items other tools wrote, whatever their key: those with ids the API
/// accepts are fully addressable; those it refuses (`/`, a control character,
/// a dot segment, over 1024 bytes) still list, the list pages past each of them, a
/// filter finds them, and addressing one is a 400 naming the rule, never a 500.
#[tokio::test]
async fn items_other_tools_wrote_are_addressable_whatever_their_key() {
    let Some((backend, client, _)) = fresh_table("foreign-ids").await else {
        return;
    };
    let accepted = addressing::accepted_ids();
    let mut refused = addressing::refused_ids();
    // The longest key DynamoDB holds: cursors carry it too.
    refused.push(("ü".repeat(1024), "is 2048 bytes long"));
    let mut stored: Vec<String> = accepted.clone();
    stored.extend(refused.iter().map(|(id, _)| id.clone()));
    for id in &stored {
        client
            .put_item()
            .table_name(backend.table())
            .item("id", AttributeValue::S(id.clone()))
            .item("name", AttributeValue::S(id.clone()))
            .send()
            .await
            .unwrap();
    }
    let app = router(ResourceMap::default().with("things", ServedResource::new(Arc::new(backend))));

    // In pages of one, every item ends a page: its key is the next cursor.
    let mut listed = addressing::list_all(&app, "/api/things?limit=1").await;
    listed.sort();
    stored.sort();
    assert_eq!(listed, stored);
    for (id, reason) in &refused {
        let filters = json!([["id", "eq", id]]).to_string();
        let found =
            addressing::list_all(&app, &addressing::filtered("/api/things", &filters)).await;
        assert_eq!(found, [id.as_str()], "{id:?}");
        addressing::refuses(&app, "/api/things", id, reason).await;
    }

    addressing::address_each(&app, "/api/things", &accepted).await;
    let mut left = addressing::list_all(&app, "/api/things").await;
    left.sort();
    let mut refused_ids: Vec<String> = refused.into_iter().map(|(id, _)| id).collect();
    refused_ids.sort();
    assert_eq!(left, refused_ids, "refused ids are listed, never changed");
}

#[tokio::test]
async fn numbers_round_trip_by_value() {
    let Some((backend, _, _)) = fresh_table("numbers").await else {
        return;
    };
    let body = r#"{"id":"n","price":5.50,"tenth":0.1,"big":12345678901234567890,"tiny":-1e-7,
        "precise":1234567890123456789.0123456789012345678,"list":[0.10,2E+3],"map":{"x":-0.5}}"#;
    let created = backend
        .create_versioned(NewRecord::from_body(body.as_bytes()).unwrap())
        .await
        .unwrap()
        .record;
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        Value::Object(created),
        sent,
        "create answers the record as sent"
    );

    let read = Value::Object(backend.get_versioned(&id("n")).await.unwrap().record);
    assert_eq!(by_value(&read), by_value(&sent));

    let update = r#"{"price":99.990,"precise":-0.00000000000000000000000000000000000001}"#;
    let updated = backend
        .update_if(
            &id("n"),
            RecordChanges::from_body(update.as_bytes(), &id("n")).unwrap(),
            &Expected::Any,
        )
        .await
        .unwrap()
        .record;
    let mut expected = sent.as_object().unwrap().clone();
    RecordChanges::from_body(update.as_bytes(), &id("n"))
        .unwrap()
        .apply_to(&mut expected);
    assert_eq!(
        by_value(&Value::Object(updated)),
        by_value(&Value::Object(expected.clone()))
    );

    let listed = backend.list(&ListQuery::default()).await.unwrap();
    assert_eq!(
        by_value(&Value::Object(listed.records[0].clone())),
        by_value(&Value::Object(expected))
    );
}

#[tokio::test]
async fn reserved_words_work_as_fields_and_filters() {
    let Some((backend, _, _)) = fresh_table("reserved").await else {
        return;
    };
    for (record_id, status, value) in [
        ("a", "active", 5),
        ("b", "retired", 20),
        ("c", "active", 30),
    ] {
        backend
            .create_versioned(new_record(json!({
                "id": record_id, "name": format!("name {record_id}"), "status": status,
                "ttl": 1_700_000_000, "value": value, "size": 1,
            })))
            .await
            .unwrap();
    }
    let query = ListQuery::parse(Some(
        "fields=name,status,ttl,value&filters=status:eq:active,value:gt:10,ttl:exists,name:begins_with:name",
    ), &[])
    .unwrap();
    let page = backend.list(&query).await.unwrap();
    assert_eq!(
        Value::Array(page.records.into_iter().map(Value::Object).collect()),
        json!([{"name": "name c", "status": "active", "ttl": 1_700_000_000, "value": 30}]),
        "projected in request order, `id` dropped"
    );
}

/// Filter pushdown matches `Filter::matches` (the reference) record for
/// record, on values that tempt an implementation to differ: missing
/// attributes, other types, number text, lists, nulls.
#[tokio::test]
async fn pushed_down_filters_agree_with_the_reference_semantics() {
    let Some((backend, _, calls)) = fresh_table("parity").await else {
        return;
    };
    let records: Vec<Record> = [
        r#"{"id":"num","value":1.50,"big":12345678901234567890,"tags":["a",7],"name":"Gas Station"}"#,
        r#"{"id":"num-text","value":"1.5","tags":"a,7","name":"gas"}"#,
        r#"{"id":"null","value":null,"tags":[null,true],"name":""}"#,
        r#"{"id":"bool","value":true,"tags":[],"name":"Station"}"#,
        r#"{"id":"nested","value":{"a":1},"tags":[["a"]],"name":"Gas"}"#,
        r#"{"id":"neg","value":-1e-7,"tags":[7.0,"b"],"name":"Ga"}"#,
        r#"{"id":"none"}"#,
    ]
    .iter()
    .map(|body| serde_json::from_str(body).unwrap())
    .collect();
    for record in &records {
        backend
            .create_versioned(
                NewRecord::from_body(Value::Object(record.clone()).to_string().as_bytes()).unwrap(),
            )
            .await
            .unwrap();
    }
    let filters = [
        "value:eq:1.5",
        "value:eq:1.50",
        "value:eq:\"1.5\"",
        "value:ne:1.5",
        "value:ne:null",
        "value:eq:null",
        "value:eq:true",
        "value:ne:true",
        "value:lt:2",
        "value:le:1.5",
        "value:gt:0",
        "value:ge:-1e-7",
        "value:gt:\"1\"",
        "value:lt:\"2\"",
        "big:gt:12345678901234567889",
        "big:eq:12345678901234567890",
        "name:begins_with:Gas",
        "name:begins_with:",
        "name:contains:Sta",
        "name:gt:G",
        "name:lt:g",
        "name:eq:",
        "tags:contains:7",
        "tags:contains:a",
        "tags:contains:null",
        "tags:contains:true",
        "tags:contains:\"7\"",
        "value:contains:1",
        "value:exists",
        "value:not_exists",
        "missing:ne:x",
        "missing:exists",
        "missing:not_exists",
        "id:begins_with:num",
    ];
    let mut disagreements = Vec::new();
    for filter in filters {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .append_pair("filters", filter)
            .append_pair("limit", "100")
            .finish();
        let query = ListQuery::parse(Some(&encoded), &[]).unwrap();
        let expected: BTreeSet<String> = records
            .iter()
            .filter(|record| query.filters.iter().all(|f| f.matches(record)))
            .map(|record| record["id"].as_str().unwrap().to_owned())
            .collect();
        let listed: BTreeSet<String> = list_all(&backend, &calls, &encoded)
            .await
            .iter()
            .flat_map(|(records, _)| ids_of(records))
            .collect();
        if listed != expected {
            disagreements.push(format!(
                "{filter}: DynamoDB {listed:?}, reference {expected:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[tokio::test]
async fn a_filtered_page_fills_up_across_scans() {
    let Some((backend, _, calls)) = fresh_table("sparse").await else {
        return;
    };
    for i in 0..60 {
        let kind = if i % 10 == 7 { "match" } else { "other" };
        backend
            .create_versioned(new_record(
                json!({"id": format!("item-{i:02}"), "kind": kind}),
            ))
            .await
            .unwrap();
    }
    let pages = list_all(&backend, &calls, "limit=4&filters=kind:eq:match").await;
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|(records, _)| ids_of(records))
        .collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a match listed twice: {listed:?}"
    );
    assert_eq!(
        unique.into_iter().cloned().collect::<Vec<_>>(),
        (0..60)
            .filter(|i| i % 10 == 7)
            .map(|i| format!("item-{i:02}"))
            .collect::<Vec<_>>()
    );
    let (first_page, first_scans) = &pages[0];
    assert_eq!(first_page.len(), 4, "the first page is full: {pages:?}");
    assert!(
        *first_scans > 1,
        "it took more than one Scan to find 4 matches in 60"
    );
    assert!(pages.iter().all(|(_, scans)| *scans <= MAX_SCANS_PER_PAGE));
    // Without a filter, a page is one Scan.
    let unfiltered = list_all(&backend, &calls, "limit=25").await;
    assert_eq!(
        unfiltered
            .iter()
            .map(|(records, scans)| (records.len(), *scans))
            .collect::<Vec<_>>(),
        [(25, 1), (25, 1), (10, 1)]
    );
}

#[tokio::test]
async fn a_cursor_survives_the_deletion_of_its_item() {
    let Some((backend, _, _)) = fresh_table("resume").await else {
        return;
    };
    for i in 0..6 {
        backend
            .create_versioned(new_record(json!({"id": format!("r{i}")})))
            .await
            .unwrap();
    }
    let mut query = ListQuery::parse(Some("limit=2"), &[]).unwrap();
    let first = backend.list(&query).await.unwrap();
    let cursor = first.next.unwrap();
    // The cursor names an item that no longer exists: DynamoDB resumes from
    // its key's position all the same.
    backend
        .delete_if(&RecordId::parse(cursor.last_id()).unwrap(), &Expected::Any)
        .await
        .unwrap();
    query.after = Some(cursor);
    let mut seen = ids_of(&first.records);
    loop {
        let page = backend.list(&query).await.unwrap();
        seen.extend(ids_of(&page.records));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["r0", "r1", "r2", "r3", "r4", "r5"]);
}

/// Values DynamoDB cannot hold are the client's to fix: 400, not 500.
#[tokio::test]
async fn values_dynamodb_cannot_store_are_invalid() {
    let Some((backend, _, _)) = fresh_table("refused").await else {
        return;
    };
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let refused = [
        (
            "39 digits",
            r#"{"id":"a","n":123456789012345678901234567890123456789}"#.to_owned(),
        ),
        ("overflow", r#"{"id":"a","n":1e126}"#.to_owned()),
        ("underflow", r#"{"id":"a","n":1e-131}"#.to_owned()),
        ("nesting", json!({"id": "a", "deep": deep}).to_string()),
    ];
    // The API refuses these values before any backend sees them
    // (`record::NewRecord::from_body`); built directly here, they show that
    // DynamoDB's own refusal still maps to a 400, never a 500.
    for (what, body) in refused {
        let record: api::record::Record = serde_json::from_str(&body).unwrap();
        let error = backend
            .create_versioned(NewRecord {
                id: id("a"),
                record,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(error, BackendError::Invalid(_)),
            "{what}: {error:?}"
        );
        assert!(
            NewRecord::from_body(body.as_bytes()).is_err(),
            "{what} is refused at the API's edge too"
        );
    }
    // A filter operand out of range is refused the same way by DynamoDB,
    // but ministack does not validate a Scan's ExpressionAttributeValues:
    // the unit test `a_filter_operand_dynamodb_cannot_hold_is_invalid` fakes it.
}

/// A string attribute making a record of about `kib` KiB.
fn padding(kib: usize) -> String {
    "x".repeat(kib * 1024)
}

#[tokio::test]
async fn a_record_over_400_kb_is_too_large_and_not_stored() {
    let Some((backend, _, _)) = fresh_table("large").await else {
        return;
    };
    let error = backend
        .create_versioned(new_record(json!({"id": "big", "blob": padding(401)})))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::TooLarge), "{error:?}");
    assert!(matches!(
        backend.get_versioned(&id("big")).await,
        Err(BackendError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_update_past_400_kb_is_too_large_and_changes_nothing() {
    let Some((backend, _, _)) = fresh_table("grow").await else {
        return;
    };
    let original = backend
        .create_versioned(new_record(json!({"id": "grows", "first": padding(300)})))
        .await
        .unwrap()
        .record;
    let error = backend
        .update_if(
            &id("grows"),
            changes("grows", json!({"second": padding(150), "n": 1})),
            &Expected::Any,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::TooLarge), "{error:?}");
    assert_eq!(
        backend.get_versioned(&id("grows")).await.unwrap().record,
        original
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_creates_of_one_id_succeed_once() {
    let Some((backend, _, calls)) = fresh_table("race").await else {
        return;
    };
    let app = router(ResourceMap::default().with("users", ServedResource::new(Arc::new(backend))));
    let attempts = (0..100).map(|attempt| {
        let app = app.clone();
        tokio::spawn(async move {
            let request = Request::builder()
                .method(Method::POST)
                .uri("/api/users")
                .body(Body::from(
                    json!({"id": "same", "attempt": attempt}).to_string(),
                ))
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        })
    });
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for attempt in attempts.collect::<Vec<_>>() {
        *statuses.entry(attempt.await.unwrap().as_u16()).or_default() += 1;
    }
    assert_eq!(
        statuses,
        BTreeMap::from([
            (StatusCode::CREATED.as_u16(), 1),
            (StatusCode::CONFLICT.as_u16(), 99)
        ])
    );
    assert_eq!(calls.take().len(), 100, "one PutItem each");
}

/// Optimistic concurrency on items other tools wrote: no `_version` means
/// version 0, `If-Match: "0"` matches it, and its first update numbers it.
/// Every conditional write stays one call, failed or not, and tells 404
/// from 412 by itself (`ALL_OLD`).
#[tokio::test]
async fn an_item_written_without_a_version_is_version_0() {
    let Some((backend, client, calls)) = fresh_table("unversioned").await else {
        return;
    };
    client
        .put_item()
        .table_name(backend.table())
        .item("id", AttributeValue::S("legacy".into()))
        .item("n", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    calls.take();
    let version = |number| Expected::OneOf(vec![Version::new(number)]);

    let read = backend.get_versioned(&id("legacy")).await.unwrap();
    assert_eq!(read.version, Version::UNWRITTEN);
    assert_eq!(Value::Object(read.record), json!({"id": "legacy", "n": 1}));
    assert_eq!(calls.take(), ["GetItem"]);

    let error = backend
        .update_if(
            &id("legacy"),
            changes("legacy", json!({"n": 2})),
            &version(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::PreconditionFailed { current, .. } if current == Version::UNWRITTEN),
        "{error:?}"
    );
    assert_eq!(calls.take(), ["UpdateItem"], "a refused update is one call");

    let updated = backend
        .update_if(
            &id("legacy"),
            changes("legacy", json!({"n": 2})),
            &version(0),
        )
        .await
        .unwrap();
    assert_eq!(updated.version, Version::new(1));
    assert_eq!(
        Value::Object(updated.record),
        json!({"id": "legacy", "n": 2})
    );
    assert_eq!(calls.take(), ["UpdateItem"]);
    // The API now maintains the attribute in the item itself.
    let item = client
        .get_item()
        .table_name(backend.table())
        .key("id", AttributeValue::S("legacy".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item.get("_version"), Some(&AttributeValue::N("1".into())));
    calls.take();

    // Version 0 no longer matches; a missing id is 404 whatever is expected.
    let error = backend
        .delete_if(&id("legacy"), &version(0))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::PreconditionFailed { .. }),
        "{error:?}"
    );
    let error = backend
        .delete_if(&id("ghost"), &version(0))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");
    let error = backend
        .update_if(
            &id("ghost"),
            changes("ghost", json!({"n": 1})),
            &Expected::OneOf(vec![]),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");
    let error = backend
        .update_if(
            &id("legacy"),
            changes("legacy", json!({"n": 9})),
            &Expected::OneOf(vec![]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::PreconditionFailed { current, .. } if current == Version::new(1)),
        "{error:?}"
    );
    assert_eq!(
        calls.take(),
        ["DeleteItem", "DeleteItem", "UpdateItem", "UpdateItem"],
        "one call each, the reason told by ALL_OLD"
    );

    backend
        .delete_if(
            &id("legacy"),
            &Expected::OneOf(vec![Version::new(5), Version::new(1)]),
        )
        .await
        .unwrap();
    assert_eq!(calls.take(), ["DeleteItem"]);
    assert!(matches!(
        backend.get_versioned(&id("legacy")).await,
        Err(BackendError::NotFound(_))
    ));
}

/// An index-served page is one Query, whatever the table holds: 600 items,
/// 1% matching, pages of 2. (`make bench`, section `index`, counts the
/// items each page reads.)
#[tokio::test]
async fn a_page_served_from_an_index_is_one_query() {
    let by_kind = IndexConfig {
        name: "by-kind".to_owned(),
        partition_key: KeyAttribute {
            name: "kind".to_owned(),
            kind: KeyKind::String,
        },
        sort_key: None,
    };
    let Some((backend, _, calls)) =
        fresh_indexed_table("index", std::slice::from_ref(&by_kind)).await
    else {
        return;
    };
    for i in 0..600 {
        let kind = if i % 100 == 7 { "rare" } else { "common" };
        backend
            .create_versioned(new_record(json!({"id": format!("i{i:03}"), "kind": kind})))
            .await
            .unwrap();
    }
    let mut query = ListQuery::parse(Some("limit=2&filters=kind:eq:rare"), &[by_kind]).unwrap();
    calls.take();
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let page = backend.list(&query).await.unwrap();
        pages += 1;
        assert_eq!(calls.take(), ["Query"], "page {pages}");
        listed.extend(ids_of(&page.records));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, ["i007", "i107", "i207", "i307", "i407", "i507"]);
    assert_eq!(pages, 3, "the last full page knows it is the last");
}
