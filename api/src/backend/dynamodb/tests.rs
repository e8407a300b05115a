//! The backend against a faked DynamoDB (aws-smithy-mocks, no network):
//! the request each operation sends, how each failure maps, and the list's
//! scan-and-cursor logic, including bounds the emulator cannot reach.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::scan::{ScanError, ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, ProvisionedThroughputExceededException,
    ResourceNotFoundException,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use serde_json::json;

use super::attribute::record_to_item;
use super::list::filtered_scan_limit;
use super::*;

const TABLE: &str = "test-users";

/// A backend whose DynamoDB calls `rules` answer.
fn mocked(rules: &[&Rule]) -> DynamoDbBackend {
    let client: Client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules);
    DynamoDbBackend::new(client, TABLE)
}

fn id(raw: &str) -> RecordId {
    RecordId::parse(raw).unwrap()
}

fn record(json: &str) -> Record {
    serde_json::from_str(json).unwrap()
}

fn service_error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// What the request log says of an internal or unavailable store: the
/// backend's error source and its own sources, on one line.
fn chain(error: &BackendError) -> String {
    let cause = match error {
        BackendError::Internal(cause) | BackendError::Unavailable { source: cause, .. } => cause,
        other => panic!("expected an error with a logged cause, got {other:?}"),
    };
    let mut text = cause.to_string();
    let mut source = cause.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn get_is_one_consistent_get_item() {
    let get = mock!(Client::get_item)
        .match_requests(|input| {
            input.table_name() == Some(TABLE)
                && input.consistent_read() == Some(true)
                && input.key().and_then(|key| key.get("id")) == Some(&AttributeValue::S("a".into()))
        })
        .then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(record_to_item(&record(r#"{"id":"a","n":5.50}"#))))
                .build()
        });
    let backend = mocked(&[&get]);
    assert_eq!(
        backend.get_versioned(&id("a")).await.unwrap(),
        Versioned {
            record: record(r#"{"id":"a","n":5.50}"#),
            version: Version::UNWRITTEN,
        },
        "an item without the version attribute is at version 0"
    );
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn the_version_attribute_is_read_and_never_shown() {
    let get = mock!(Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .item("id", AttributeValue::S("a".into()))
            .item("_version", AttributeValue::N("7".into()))
            .build()
    });
    assert_eq!(
        mocked(&[&get]).get_versioned(&id("a")).await.unwrap(),
        Versioned {
            record: record(r#"{"id":"a"}"#),
            version: Version::new(7),
        }
    );
    let forged = mock!(Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .item("id", AttributeValue::S("a".into()))
            .item("_version", AttributeValue::S("seven".into()))
            .build()
    });
    let error = mocked(&[&forged])
        .get_versioned(&id("a"))
        .await
        .unwrap_err();
    assert!(
        chain(&error).contains("attribute `_version` cannot be read as JSON"),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn get_of_a_missing_id_is_not_found() {
    let get = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
    let error = mocked(&[&get])
        .get_versioned(&id("gone"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(missing) if missing == id("gone")));
}

#[tokio::test]
async fn an_unreadable_item_is_internal_and_names_the_attribute() {
    let get = mock!(Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .item("id", AttributeValue::S("a".into()))
            .item("price", AttributeValue::N("12,5".into()))
            .build()
    });
    let error = mocked(&[&get]).get_versioned(&id("a")).await.unwrap_err();
    assert!(matches!(error, BackendError::Internal(_)));
    assert_eq!(
        chain(&error),
        "DynamoDB GetItem on table `test-users` failed: attribute `price` \
         cannot be read as JSON: number \"12,5\" is not a JSON number"
    );
}

#[tokio::test]
async fn create_is_a_put_that_never_overwrites() {
    let put = mock!(Client::put_item)
        .match_requests(|input| {
            input.condition_expression() == Some("attribute_not_exists(#id)")
                && input.expression_attribute_names()
                    == Some(&HashMap::from([("#id".into(), "id".into())]))
                && input.expression_attribute_values().is_none()
                && input.item().and_then(|item| item.get("n"))
                    == Some(&AttributeValue::N("5.50".into()))
                && input.item().and_then(|item| item.get("_version"))
                    == Some(&AttributeValue::N("1".into()))
        })
        .then_output(|| PutItemOutput::builder().build());
    let backend = mocked(&[&put]);
    let new = NewRecord::from_body(br#"{"id":"a","n":5.50}"#).unwrap();
    assert_eq!(
        backend.create_versioned(new).await.unwrap(),
        Versioned {
            record: record(r#"{"id":"a","n":5.50}"#),
            version: Version::CREATED,
        }
    );
    assert_eq!(put.num_calls(), 1);

    let taken = mock!(Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .build(),
        )
    });
    let new = NewRecord::from_body(br#"{"id":"a"}"#).unwrap();
    let error = mocked(&[&taken]).create_versioned(new).await.unwrap_err();
    assert!(matches!(error, BackendError::AlreadyExists(existing) if existing == id("a")));
}

#[tokio::test]
async fn update_sets_fields_on_an_existing_item_only() {
    let update = mock!(Client::update_item)
        .match_requests(|input| {
            input.update_expression()
                == Some("SET #n0 = :v0, #ver = if_not_exists(#ver, :zero) + :one")
                && input.condition_expression() == Some("attribute_exists(#id)")
                && input.return_values() == Some(&ReturnValue::AllNew)
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .set_attributes(Some(record_to_item(&record(
                    r#"{"n":2,"id":"a","_version":4}"#,
                ))))
                .build()
        });
    let changes = RecordChanges::from_body(br#"{"n":2}"#, &id("a")).unwrap();
    assert_eq!(
        mocked(&[&update])
            .update_if(&id("a"), changes, &Expected::Any)
            .await
            .unwrap(),
        Versioned {
            record: record(r#"{"id":"a","n":2}"#),
            version: Version::new(4),
        }
    );

    let missing = mock!(Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let changes = RecordChanges::from_body(br#"{"n":2}"#, &id("gone")).unwrap();
    let error = mocked(&[&missing])
        .update_if(&id("gone"), changes, &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)));
}

/// A failed condition, with the item as it was when `old` is given (`ALL_OLD`).
fn condition_failed(old: Option<&str>) -> ConditionalCheckFailedException {
    ConditionalCheckFailedException::builder()
        .set_item(old.map(|json| record_to_item(&record(json))))
        .build()
}

#[tokio::test]
async fn if_match_is_a_version_condition_and_all_old_tells_412_from_404() {
    let expected = Expected::OneOf(vec![Version::new(3)]);
    let stale = mock!(Client::update_item)
        .match_requests(|input| {
            input.condition_expression() == Some("attribute_exists(#id) AND (#ver = :e0)")
                && input
                    .expression_attribute_values()
                    .and_then(|v| v.get(":e0"))
                    == Some(&AttributeValue::N("3".into()))
                && input.return_values_on_condition_check_failure()
                    == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        })
        .then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(condition_failed(Some(
                r#"{"id":"a","_version":5}"#,
            )))
        });
    let changes = RecordChanges::from_body(br#"{"n":2}"#, &id("a")).unwrap();
    let error = mocked(&[&stale])
        .update_if(&id("a"), changes, &expected)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::PreconditionFailed { current, .. } if *current == Version::new(5)),
        "{error:?}"
    );
    assert_eq!(stale.num_calls(), 1, "one call, no read to tell why");

    let missing = mock!(Client::update_item)
        .then_error(|| UpdateItemError::ConditionalCheckFailedException(condition_failed(None)));
    let changes = RecordChanges::from_body(br#"{"n":2}"#, &id("a")).unwrap();
    let error = mocked(&[&missing])
        .update_if(&id("a"), changes, &expected)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)), "{error:?}");

    let stale_delete = mock!(Client::delete_item)
        .match_requests(|input| {
            input.condition_expression() == Some("attribute_exists(#id) AND (#ver = :e0)")
                && input.return_values_on_condition_check_failure()
                    == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        })
        .then_error(|| {
            DeleteItemError::ConditionalCheckFailedException(condition_failed(Some(
                r#"{"id":"a"}"#,
            )))
        });
    let error = mocked(&[&stale_delete])
        .delete_if(&id("a"), &expected)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::PreconditionFailed { current, .. } if *current == Version::UNWRITTEN),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_update_without_fields_checks_the_version_it_reads() {
    let get = mock!(Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .item("id", AttributeValue::S("a".into()))
            .item("_version", AttributeValue::N("2".into()))
            .build()
    });
    let backend = mocked(&[&get]);
    let stale = Expected::OneOf(vec![Version::new(1)]);
    let error = backend
        .update_if(&id("a"), RecordChanges::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::PreconditionFailed { .. }),
        "{error:?}"
    );
    let current = Expected::OneOf(vec![Version::new(2)]);
    let unchanged = backend
        .update_if(&id("a"), RecordChanges::default(), &current)
        .await
        .unwrap();
    assert_eq!(unchanged.version, Version::new(2));
    assert_eq!(get.num_calls(), 2);
}

#[tokio::test]
async fn an_update_without_fields_is_one_consistent_get() {
    let update = mock!(Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let get = mock!(Client::get_item)
        .match_requests(|input| input.consistent_read() == Some(true))
        .then_output(|| GetItemOutput::builder().build());
    let backend = mocked(&[&update, &get]);
    let error = backend
        .update_if(&id("a"), RecordChanges::default(), &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)));
    assert_eq!((get.num_calls(), update.num_calls()), (1, 0));
}

#[tokio::test]
async fn delete_is_conditional() {
    let delete = mock!(Client::delete_item)
        .match_requests(|input| {
            input.condition_expression() == Some("attribute_exists(#id)")
                && input.expression_attribute_values().is_none()
        })
        .then_output(|| DeleteItemOutput::builder().build());
    mocked(&[&delete])
        .delete_if(&id("a"), &Expected::Any)
        .await
        .unwrap();

    let missing = mock!(Client::delete_item).then_error(|| {
        DeleteItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let error = mocked(&[&missing])
        .delete_if(&id("a"), &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::NotFound(_)));
}

#[tokio::test]
async fn item_size_refusals_are_too_large() {
    let put = mock!(Client::put_item).then_error(|| {
        PutItemError::generic(service_error(
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
        ))
    });
    let new = NewRecord::from_body(br#"{"id":"a"}"#).unwrap();
    let error = mocked(&[&put]).create_versioned(new).await.unwrap_err();
    assert!(matches!(error, BackendError::TooLarge), "{error:?}");

    let update = mock!(Client::update_item).then_error(|| {
        UpdateItemError::generic(service_error(
            "ValidationException",
            "Item size to update has exceeded the maximum allowed size",
        ))
    });
    let changes = RecordChanges::from_body(br#"{"n":1}"#, &id("a")).unwrap();
    let error = mocked(&[&update])
        .update_if(&id("a"), changes, &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::TooLarge), "{error:?}");
}

#[tokio::test]
async fn values_dynamodb_cannot_store_are_invalid() {
    let message = "Attempting to store more than 38 significant digits in a Number";
    let put = mock!(Client::put_item)
        .then_error(move || PutItemError::generic(service_error("ValidationException", message)));
    // Built directly: the body checks now refuse such a number before any
    // backend sees it; the backend must still map DynamoDB's refusal.
    let new = NewRecord {
        id: id("a"),
        record: record(r#"{"id":"a","n":1.000000000000000000000000000000000000001}"#),
    };
    let error = mocked(&[&put]).create_versioned(new).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Invalid(text) if text == message),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_filter_operand_dynamodb_cannot_hold_is_invalid() {
    let message = "ExpressionAttributeValues contains invalid value: Number overflow. Attempting \
                   to store a number with magnitude larger than supported range for key :v0";
    let scan = mock!(Client::scan)
        .then_error(move || ScanError::generic(service_error("ValidationException", message)));
    let query = ListQuery::parse(Some("filters=n:gt:1e200"), &[]).unwrap();
    let error = mocked(&[&scan]).list(&query).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Invalid(text) if text == message),
        "{error:?}"
    );
}

#[tokio::test]
async fn throttling_after_the_sdk_retries_is_unavailable() {
    let throttled = mock!(Client::put_item).then_error(|| {
        PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message(
                    "The level of configured provisioned throughput for the table was exceeded.",
                )
                // As the SDK deserialises it from DynamoDB's answer.
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        )
    });
    let client: Client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        &[&throttled],
        |config| config.retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5))
        )
    );
    let new = NewRecord::from_body(br#"{"id":"a"}"#).unwrap();
    let error = DynamoDbBackend::new(client, TABLE)
        .create_versioned(new)
        .await
        .unwrap_err();
    assert_eq!(throttled.num_calls(), 3, "the SDK retried first");
    let BackendError::Unavailable {
        retry_after_seconds,
        ..
    } = &error
    else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(*retry_after_seconds, 1);
    assert!(
        chain(&error).contains("DynamoDB PutItem on table `test-users` failed"),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn missing_tables_and_denied_access_are_internal_naming_the_table() {
    let missing = mock!(Client::get_item).then_error(|| {
        GetItemError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Requested resource not found")
                .build(),
        )
    });
    let error = mocked(&[&missing])
        .get_versioned(&id("a"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Internal(_)), "{error:?}");
    let line = chain(&error);
    assert!(
        line.starts_with("DynamoDB GetItem on table `test-users` failed: ")
            && line.contains("ResourceNotFoundException"),
        "{line}"
    );

    let denied = mock!(Client::delete_item).then_error(|| {
        DeleteItemError::generic(service_error(
            "AccessDeniedException",
            "User: arn:aws:sts::1:assumed-role/api is not authorized to perform: dynamodb:DeleteItem",
        ))
    });
    let error = mocked(&[&denied])
        .delete_if(&id("a"), &Expected::Any)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Internal(_)), "{error:?}");
    assert!(
        chain(&error).contains("DynamoDB DeleteItem on table `test-users` failed"),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn a_malformed_request_of_ours_is_internal_not_invalid() {
    let scan = mock!(Client::scan).then_error(|| {
        ScanError::generic(service_error(
            "ValidationException",
            "Invalid FilterExpression: Syntax error; token: \"<EOF>\"",
        ))
    });
    let error = mocked(&[&scan])
        .list(&ListQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Internal(_)), "{error:?}");
}

/// A fake table of `count` items `i00000`, `i00001`, ... scanned in id order,
/// where the filter (whatever expression the request holds) keeps the ids
/// `matches` accepts. Like DynamoDB, `Limit` counts items read before the
/// filter, and a Scan that reached its `Limit` returns a `LastEvaluatedKey`.
fn fake_scan(count: usize, matches: fn(usize) -> bool) -> Rule {
    let ids: Arc<Vec<String>> = Arc::new((0..count).map(|i| format!("i{i:05}")).collect());
    mock!(Client::scan).then_compute_output(move |input: &ScanInput| {
        let start = match input.exclusive_start_key().and_then(|key| key.get("id")) {
            Some(AttributeValue::S(after)) => ids.partition_point(|id| id <= after),
            _ => 0,
        };
        let limit = usize::try_from(input.limit().unwrap()).unwrap();
        let read = &ids[start..(start + limit).min(ids.len())];
        let filtered = input.filter_expression().is_some();
        let items = read
            .iter()
            .filter(|id| !filtered || matches(number_of(id)))
            .map(|id| {
                HashMap::from([
                    ("id".to_owned(), AttributeValue::S(id.clone())),
                    ("n".to_owned(), AttributeValue::N(number_of(id).to_string())),
                ])
            })
            .collect::<Vec<_>>();
        let mut output = ScanOutput::builder()
            .set_items(Some(items))
            .scanned_count(i32::try_from(read.len()).unwrap());
        if read.len() == limit {
            output = output.last_evaluated_key("id", AttributeValue::S(read[limit - 1].clone()));
        }
        output.build()
    })
}

fn number_of(fake_id: &str) -> usize {
    fake_id[1..].parse().unwrap()
}

/// Follows the cursors from the first page to the last, returning the ids of
/// each page and the Scan calls each page made.
async fn pages(backend: &DynamoDbBackend, scan: &Rule, query: &str) -> Vec<(Vec<String>, usize)> {
    let mut query = ListQuery::parse(Some(query), &[]).unwrap();
    let mut pages = Vec::new();
    loop {
        let calls_before = scan.num_calls();
        let page = backend.list(&query).await.unwrap();
        let ids = page
            .records
            .iter()
            .map(|record| record["id"].as_str().unwrap().to_owned())
            .collect();
        pages.push((ids, scan.num_calls() - calls_before));
        assert!(pages.len() < 1000, "the cursors never end");
        match page.next {
            Some(next) => query.after = Some(next),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn an_unfiltered_page_is_one_scan() {
    let scan = fake_scan(25, |_| true);
    let backend = mocked(&[&scan]);
    let pages = pages(&backend, &scan, "limit=10").await;
    let sizes: Vec<_> = pages
        .iter()
        .map(|(ids, calls)| (ids.len(), *calls))
        .collect();
    // 25 items: the third page is short, and ends the list.
    assert_eq!(sizes, [(10, 1), (10, 1), (5, 1)]);
    let all: Vec<String> = pages.into_iter().flat_map(|(ids, _)| ids).collect();
    assert_eq!(all, (0..25).map(|i| format!("i{i:05}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_filtered_page_fills_up_across_scans_and_lists_each_match_once() {
    let scan = fake_scan(60, |i| i % 10 == 3);
    let backend = mocked(&[&scan]);
    let pages = pages(&backend, &scan, "limit=4&filters=n:exists").await;
    let all: Vec<String> = pages.iter().flat_map(|(ids, _)| ids.clone()).collect();
    assert_eq!(
        all,
        ["i00003", "i00013", "i00023", "i00033", "i00043", "i00053"]
    );
    assert_eq!(pages[0].0.len(), 4, "the first page is full: {pages:?}");
    assert!(pages.iter().all(|(_, calls)| *calls <= MAX_SCANS_PER_PAGE));
}

#[tokio::test]
async fn a_sparse_filter_stops_after_the_scan_bound_with_a_cursor() {
    // No item matches: the first page gives up after MAX_SCANS_PER_PAGE.
    let scan = fake_scan(20_000, |_| false);
    let backend = mocked(&[&scan]);
    let query = ListQuery::parse(Some("limit=5&filters=n:exists"), &[]).unwrap();
    let page = backend.list(&query).await.unwrap();
    assert_eq!(scan.num_calls(), MAX_SCANS_PER_PAGE);
    assert!(page.records.is_empty());
    let next = page.next.expect("a cursor to go on from");
    // It resumes after the last item read, not from the start.
    assert!(next.last_id() > "i00100", "{next:?}");
}

#[tokio::test]
async fn projection_drops_the_id_it_needed_for_the_cursor() {
    let scan = fake_scan(3, |_| true);
    let backend = mocked(&[&scan]);
    let query = ListQuery::parse(Some("limit=2&fields=n"), &[]).unwrap();
    let page = backend.list(&query).await.unwrap();
    assert_eq!(
        serde_json::Value::from(
            page.records
                .into_iter()
                .map(serde_json::Value::Object)
                .collect::<Vec<_>>()
        ),
        json!([{"n": 0}, {"n": 1}])
    );
    assert_eq!(
        page.next.map(|c| c.last_id().to_string()),
        Some("i00001".into())
    );
}

/// Other tools may write ids this API would not create (`/`, a control
/// character); a list still pages past them, and resumes at that very key.
#[tokio::test]
async fn a_list_pages_past_ids_other_tools_wrote() {
    for foreign in ["a/b", "tab\there", "x".repeat(2000).as_str()] {
        let key = foreign.to_owned();
        let first = mock!(Client::scan)
            .match_requests(|input| input.exclusive_start_key().is_none())
            .then_output(move || {
                ScanOutput::builder()
                    .items(HashMap::from([(
                        "id".into(),
                        AttributeValue::S(key.clone()),
                    )]))
                    .last_evaluated_key("id", AttributeValue::S(key.clone()))
                    .build()
            });
        let key = foreign.to_owned();
        let second = mock!(Client::scan)
            .match_requests(move |input| {
                input
                    .exclusive_start_key()
                    .and_then(|start| start.get("id"))
                    == Some(&AttributeValue::S(key.clone()))
            })
            .then_output(|| ScanOutput::builder().build());
        let backend = mocked(&[&first, &second]);
        let mut query = ListQuery::parse(Some("limit=1"), &[]).unwrap();
        let page = backend.list(&query).await.unwrap();
        let next = page.next.unwrap();
        assert_eq!(next.last_id(), foreign);
        query.after = Some(api_cursor(&next.encode()));
        let rest = backend.list(&query).await.unwrap();
        assert!(
            rest.records.is_empty() && rest.next.is_none(),
            "{foreign:?}"
        );
    }
}

fn api_cursor(token: &str) -> crate::cursor::Cursor {
    crate::cursor::Cursor::decode(token).unwrap()
}

#[test]
fn filtered_scans_grow_with_the_match_rate() {
    let check = |room, evaluated, matched, expected| {
        assert_eq!(
            filtered_scan_limit(room, evaluated, matched),
            expected,
            "room {room}, {matched} of {evaluated} matched"
        );
    };
    check(4, 0, 0, 4);
    check(4, 4, 0, 20);
    check(4, 24, 0, 100);
    check(2, 24, 2, 17);
    check(10, 100, 100, 10);
    check(100, 100_000, 0, MAX_ITEMS_PER_FILTERED_SCAN);
    check(100, usize::MAX - 1, 0, MAX_ITEMS_PER_FILTERED_SCAN);
}

#[cfg(feature = "server")]
/// Every variant of each operation, sent through the router to a table whose
/// every call succeeds, calls only the actions [`item_actions`] declares for
/// that operation; together they call every declared action. This is what
/// the Lambda role is granted (deployer, `template/stack/function.rs`), and IAM would
/// deny anything else in Lambda with a 500.
#[tokio::test]
async fn each_operation_calls_only_the_actions_its_role_is_granted() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use crate::config::Operation;
    use crate::resource_map::{ResourceMap, ServedResource};

    // At version 1, so `If-Match: "1"` holds.
    let item = || versioned_item(&record(r#"{"id":"a","n":1}"#), Version::CREATED);
    let requests: &[(Operation, &str, &str, &str)] = &[
        (Operation::List, "GET", "/api/users", ""),
        (Operation::List, "GET", "/api/users?limit=2&fields=n", ""),
        (Operation::List, "GET", "/api/users?filters=n:gt:0", ""),
        (Operation::Get, "GET", "/api/users/a", ""),
        (
            Operation::Create,
            "POST",
            "/api/users",
            r#"{"id":"b","n":2}"#,
        ),
        (Operation::Update, "PUT", "/api/users/a", r#"{"n":3}"#),
        (Operation::Update, "PUT", "/api/users/a", r#"{}"#),
        (Operation::Update, "PUT", "/api/users/a", r#"{"id":"a"}"#),
        (Operation::Delete, "DELETE", "/api/users/a", ""),
    ];
    let mut called_by_any = std::collections::BTreeSet::new();
    for operation in Operation::all() {
        let get = mock!(Client::get_item)
            .then_output(move || GetItemOutput::builder().set_item(Some(item())).build());
        let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
        let update = mock!(Client::update_item).then_output(move || {
            UpdateItemOutput::builder()
                .set_attributes(Some(item()))
                .build()
        });
        let delete = mock!(Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
        let scan = mock!(Client::scan).then_output(move || {
            ScanOutput::builder()
                .items(item())
                .count(1)
                .scanned_count(1)
                .build()
        });
        let backend = mocked(&[&get, &put, &update, &delete, &scan]);
        let app = crate::router(
            ResourceMap::default().with("users", ServedResource::new(Arc::new(backend))),
        );
        for (_, method, uri, body) in requests.iter().filter(|r| r.0 == operation) {
            for if_match in [None, Some("\"1\"")] {
                let mut request = Request::builder().method(*method).uri(*uri);
                if let Some(tag) = if_match.filter(|_| matches!(*method, "PUT" | "DELETE")) {
                    request = request.header("if-match", tag);
                }
                let response = app
                    .clone()
                    .oneshot(request.body(Body::from(body.to_string())).unwrap())
                    .await
                    .unwrap();
                assert!(
                    response.status().is_success(),
                    "{method} {uri} {body}: {}",
                    response.status()
                );
                assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
        let called: Vec<&str> = [
            ("dynamodb:GetItem", &get),
            ("dynamodb:PutItem", &put),
            ("dynamodb:UpdateItem", &update),
            ("dynamodb:DeleteItem", &delete),
            ("dynamodb:Scan", &scan),
        ]
        .into_iter()
        .filter(|(_, rule)| rule.num_calls() > 0)
        .map(|(action, _)| action)
        .collect();
        let granted = item_actions(operation);
        for action in &called {
            assert!(
                granted.contains(action),
                "{operation:?} calls {action}, which its role is not granted: {granted:?}"
            );
        }
        called_by_any.extend(called);
    }
    let declared: std::collections::BTreeSet<&str> = Operation::all()
        .into_iter()
        .flat_map(|operation| item_actions(operation).iter().copied())
        .collect();
    assert_eq!(called_by_any, declared, "a declared action no path calls");
}

mod index_lists {
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};

    use super::*;
    use crate::index::{IndexConfig, KeyAttribute, KeyKind};

    fn by_team_age() -> Vec<IndexConfig> {
        vec![IndexConfig {
            name: "by-team-age".to_owned(),
            partition_key: KeyAttribute {
                name: "team".to_owned(),
                kind: KeyKind::String,
            },
            sort_key: Some(KeyAttribute {
                name: "age".to_owned(),
                kind: KeyKind::Number,
            }),
        }]
    }

    fn person(id: &str, age: u32) -> Item {
        record_to_item(&record(&format!(
            r#"{{"id":"{id}","team":"red","age":{age},"name":"n{id}"}}"#
        )))
    }

    /// The attribute a placeholder in `input`'s expressions stands for.
    fn names(input: &QueryInput) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = input
            .expression_attribute_names()
            .unwrap()
            .iter()
            .map(|(placeholder, name)| (placeholder.clone(), name.clone()))
            .collect();
        names.sort();
        names
    }

    /// DynamoDB's rule on a Query of a global secondary index (Query API
    /// reference, ConsistentRead): strongly consistent reads are not
    /// supported on one. Without other filters the page asks for one item
    /// more than it lists, to know whether another page follows.
    #[tokio::test]
    async fn an_index_list_is_one_query_on_the_index_that_dynamodb_accepts() {
        let query = mock!(Client::query)
            .match_requests(|input| {
                input.table_name() == Some(TABLE)
                    && input.index_name() == Some("by-team-age")
                    && input.key_condition_expression() == Some("#f0 = :v0 AND #f1 > :v1")
                    && input.consistent_read().is_none()
                    && input.limit() == Some(3)
                    && input.scan_index_forward() == Some(false)
                    && input.filter_expression().is_none()
                    && names(input)
                        == [
                            ("#f0".to_owned(), "team".to_owned()),
                            ("#f1".to_owned(), "age".to_owned()),
                        ]
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(person("c", 40))
                    .items(person("b", 35))
                    .items(person("a", 31))
                    .count(3)
                    .scanned_count(3)
                    .build()
            });
        let backend = mocked(&[&query]);
        let list = ListQuery::parse(
            Some("limit=2&filters=team:eq:red,age:gt:30&order=-age"),
            &by_team_age(),
        )
        .unwrap();
        let page = backend.list(&list).await.unwrap();
        assert_eq!(query.num_calls(), 1, "one call for the page");
        let ids: Vec<&str> = page
            .records
            .iter()
            .map(|record| record["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["c", "b"], "the extra item is not listed");
        let next = page.next.expect("a third item exists: a next page");
        assert_eq!(next.last_id(), "b");
        let position = next.index_position().unwrap();
        assert_eq!(position.index, "by-team-age");
        assert_eq!(position.sort, Some(json!(35)));
        assert!(INDEX_LIST_ACTIONS.contains(&"dynamodb:Query"));
    }

    #[tokio::test]
    async fn the_next_query_starts_at_the_cursors_index_position() {
        let query = mock!(Client::query)
            .match_requests(|input| {
                let start = input.exclusive_start_key().unwrap();
                start.len() == 3
                    && start["id"] == AttributeValue::S("b".to_owned())
                    && start["team"] == AttributeValue::S("red".to_owned())
                    && start["age"] == AttributeValue::N("35".to_owned())
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(person("a", 31))
                    .count(1)
                    .scanned_count(1)
                    .build()
            });
        let backend = mocked(&[&query]);
        let first = ListQuery::parse(
            Some("limit=2&filters=team:eq:red&order=-age"),
            &by_team_age(),
        )
        .unwrap();
        let cursor = crate::cursor::Cursor::in_index(
            "b",
            crate::cursor::IndexPosition {
                index: "by-team-age".to_owned(),
                sort: Some(json!(35)),
            },
        );
        let list = ListQuery {
            after: Some(cursor),
            ..first
        };
        let page = backend.list(&list).await.unwrap();
        assert_eq!(query.num_calls(), 1);
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.next, None, "fewer than limit + 1 items: the last page");
    }
}
