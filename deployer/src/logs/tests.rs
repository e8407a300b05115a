//! `deployer logs` against a faked CloudWatch Logs (aws-smithy-mocks): the
//! pages followed to their end, a request found with its invocation's
//! lines, and `--follow` printing each line once.

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::operation::filter_log_events::{
    FilterLogEventsError, FilterLogEventsOutput,
};
use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::*;

const GROUP: &str = "/aws/lambda/shop-api";
const STREAM: &str = "2026/11/25/[$LATEST]0a1b2c";

/// An event of `STREAM` with id `id`.
fn event(id: &str, timestamp: i64, message: &str) -> FilteredLogEvent {
    event_in(STREAM, id, timestamp, message)
}

fn event_in(stream: &str, id: &str, timestamp: i64, message: &str) -> FilteredLogEvent {
    FilteredLogEvent::builder()
        .log_stream_name(stream)
        .event_id(id)
        .timestamp(timestamp)
        .ingestion_time(timestamp + 300)
        .message(message)
        .build()
}

/// The API's line for a request, as `api::logging` writes it in Lambda.
fn request_line(request_id: &str, status: u16, invocation: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-25T04:03:13.740156Z","level":"INFO","message":"request","request_id":"{request_id}","method":"GET","path":"/api/users/7","status":{status},"latency_ms":3.25,"target":"api::logging","span":{{"requestId":"{invocation}","name":"Lambda runtime invoke"}}}}"#
    )
}

fn error_line(request_id: &str, invocation: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-25T04:03:13.739000Z","level":"ERROR","message":"internal error","request_id":"{request_id}","error":"DynamoDB GetItem on table `shop-users` failed","target":"api::error","span":{{"requestId":"{invocation}","name":"Lambda runtime invoke"}}}}"#
    )
}

fn page(events: Vec<FilteredLogEvent>, next_token: Option<&str>) -> FilterLogEventsOutput {
    FilterLogEventsOutput::builder()
        .set_events(Some(events))
        .set_next_token(next_token.map(str::to_owned))
        .build()
}

fn messages(events: &[LogEvent]) -> Vec<&str> {
    events.iter().map(|event| event.message.as_str()).collect()
}

#[tokio::test]
async fn every_page_is_read_until_there_is_no_next_token() {
    // An empty page with a token is not the end (FilterLogEvents' docs).
    let first = mock!(Client::filter_log_events)
        .match_requests(|input| {
            input.log_group_name() == Some(GROUP)
                && input.start_time() == Some(1_000)
                && input.next_token().is_none()
                && input.filter_pattern().is_none()
        })
        .then_output(|| {
            page(
                vec![event("1", 1_000, "first"), event("2", 1_001, "second")],
                Some("page-2"),
            )
        });
    let empty = mock!(Client::filter_log_events)
        .match_requests(|input| input.next_token() == Some("page-2"))
        .then_output(|| page(Vec::new(), Some("page-3")));
    let last = mock!(Client::filter_log_events)
        .match_requests(|input| input.next_token() == Some("page-3"))
        .then_output(|| page(vec![event("3", 1_002, "third")], None));
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::Sequential,
        [&first, &empty, &last]
    );
    let events = FunctionLogs::new(client, GROUP)
        .recent(1_000, Selection::All)
        .await
        .unwrap();
    assert_eq!(messages(&events), ["first", "second", "third"]);
    assert_eq!(events[0].log_stream, STREAM);
    assert_eq!(events[0].event_id.as_deref(), Some("1"));
    for rule in [&first, &empty, &last] {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn errors_are_5xx_requests_error_lines_and_foreign_text() {
    let lines = vec![
        event("1", 1, "START RequestId: inv-1 Version: $LATEST"),
        event("2", 2, &request_line("ok-1", 200, "inv-1")),
        event("3", 3, &error_line("bad-1", "inv-2")),
        event("4", 4, &request_line("bad-1", 500, "inv-2")),
        event("5", 5, &request_line("gone-1", 404, "inv-3")),
        event(
            "6",
            6,
            "2026-11-25T04:03:16.740Z inv-4 Task timed out after 3.00 seconds",
        ),
        event("7", 7, "REPORT RequestId: inv-4\tDuration: 3000.00 ms"),
    ];
    let rule = mock!(Client::filter_log_events).then_output(move || page(lines.clone(), None));
    let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, [&rule]);
    let events = FunctionLogs::new(client, GROUP)
        .recent(0, Selection::Failures)
        .await
        .unwrap();
    let ids: Vec<&str> = events
        .iter()
        .filter_map(|event| event.event_id.as_deref())
        .collect();
    assert_eq!(ids, ["3", "4", "6"]);
}

#[tokio::test]
async fn a_request_comes_with_every_line_of_its_invocation() {
    let other_stream = "2026/11/25/[$LATEST]ffff";
    // The API's lines that name the request, in one stream.
    let named = mock!(Client::filter_log_events)
        .match_requests(|input| {
            input.filter_pattern() == Some("\"c0ffee-1\"") && input.log_stream_names().is_empty()
        })
        .then_output(|| {
            page(
                vec![
                    event("20", 2_000, &error_line("c0ffee-1", "inv-A")),
                    event("21", 2_001, &request_line("c0ffee-1", 500, "inv-A")),
                    // Contains the text, names another request: not shown.
                    event("22", 2_002, &request_line("c0ffee-10", 200, "inv-B")),
                ],
                None,
            )
        });
    // Then the invocation's, searched in that stream only.
    let served = mock!(Client::filter_log_events)
        .match_requests(|input| {
            input.filter_pattern() == Some("\"inv-A\"")
                && input.log_stream_names() == [STREAM.to_owned()]
        })
        .then_output(move || {
            page(
                vec![
                    event("19", 1_999, "START RequestId: inv-A Version: $LATEST"),
                    event("20", 2_000, &error_line("c0ffee-1", "inv-A")),
                    event("21", 2_001, &request_line("c0ffee-1", 500, "inv-A")),
                    event("23", 2_003, "END RequestId: inv-A"),
                    event(
                        "24",
                        2_003,
                        "REPORT RequestId: inv-A\tDuration: 4.00 ms\tBilled Duration: 5 ms\t\
                         Memory Size: 256 MB\tMax Memory Used: 20 MB",
                    ),
                    // An emulator may match loosely: another invocation's line.
                    event_in(other_stream, "30", 2_004, "START RequestId: inv-AB"),
                ],
                None,
            )
        });
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::Sequential,
        [&named, &served]
    );
    let now = UNIX_EPOCH + Duration::from_secs(600);
    let since: Since = "10m".parse().unwrap();
    let events = FunctionLogs::new(client, GROUP)
        .request("c0ffee-1", since, now)
        .await
        .unwrap();
    let ids: Vec<&str> = events
        .iter()
        .filter_map(|event| event.event_id.as_deref())
        .collect();
    assert_eq!(ids, ["19", "20", "21", "23", "24"], "each once, in order");

    let printed: Vec<String> = events.iter().filter_map(LogEvent::human).collect();
    assert_eq!(
        printed,
        [
            "1970-01-01T00:00:01.999Z START inv-A Version: $LATEST",
            "1970-01-01T00:00:02.000Z ERROR internal error request_id=c0ffee-1 \
             error=\"DynamoDB GetItem on table `shop-users` failed\"",
            "1970-01-01T00:00:02.001Z 500 GET    /api/users/7                        3.2 ms \
             c0ffee-1",
            "1970-01-01T00:00:02.003Z REPORT inv-A 4.00 ms (billed 5 ms), 20 of 256 MB",
        ]
    );
}

#[tokio::test]
async fn a_request_not_in_the_window_says_to_look_further_back() {
    let rule = mock!(Client::filter_log_events)
        .match_requests(|input| input.start_time() == Some(400_000))
        .then_output(|| page(Vec::new(), None));
    let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, [&rule]);
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    let error = FunctionLogs::new(client, GROUP)
        .request("c0ffee-1", "10m".parse().unwrap(), now)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no line of `/aws/lambda/shop-api` names request `c0ffee-1` in the last 10m: for an \
         older request, look further back (`--since 1d`)"
    );
}

#[tokio::test]
async fn a_request_id_that_cannot_be_one_is_refused_before_any_call() {
    let rule = mock!(Client::filter_log_events).then_output(|| page(Vec::new(), None));
    let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, [&rule]);
    let logs = FunctionLogs::new(client, GROUP);
    for id in ["", "a b", "x\"y", &"a".repeat(129)] {
        let error = logs
            .request(id, "1h".parse().unwrap(), SystemTime::now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, LogsError::NotARequestId(_)),
            "{id:?}: {error}"
        );
    }
    assert_eq!(rule.num_calls(), 0);
}

#[tokio::test]
async fn a_missing_log_group_is_named() {
    let rule = mock!(Client::filter_log_events).then_error(|| {
        FilterLogEventsError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("The specified log group does not exist.")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, [&rule]);
    let error = FunctionLogs::new(client, GROUP)
        .recent(0, Selection::All)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the log group `/aws/lambda/shop-api` does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn following_prints_each_line_once_late_ones_too() {
    let late = i64::try_from(LATE_ARRIVALS.as_millis()).unwrap();
    // Each poll asks again from the newest line seen, less the margin.
    let first = mock!(Client::filter_log_events)
        .match_requests(|input| input.start_time() == Some(50_000))
        .then_output(|| {
            page(
                vec![event("1", 100_000, "one"), event("2", 101_000, "two")],
                None,
            )
        });
    let second = mock!(Client::filter_log_events)
        .match_requests(move |input| input.start_time() == Some(101_000 - late))
        .then_output(|| {
            page(
                vec![
                    event("2", 101_000, "two"),
                    // Arrived after "two", written before it, in another stream.
                    event_in("other", "9", 100_500, "late"),
                    event("3", 105_000, "three"),
                ],
                None,
            )
        });
    let third = mock!(Client::filter_log_events)
        .match_requests(move |input| input.start_time() == Some(105_000 - late))
        .then_output(|| {
            page(
                vec![event("3", 105_000, "three"), event("4", 106_000, "four")],
                None,
            )
        });
    let client = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::Sequential,
        [&first, &second, &third]
    );
    let logs = FunctionLogs::new(client, GROUP).with_poll_interval(Duration::from_millis(1));
    let mut seen = Vec::new();
    logs.follow(
        50_000,
        Selection::All,
        &mut |event| {
            seen.push(event.message.clone());
            if seen.len() == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(seen, ["one", "two", "late", "three", "four"]);
}

#[tokio::test]
async fn following_ends_when_stopped() {
    let polls = mock!(Client::filter_log_events).then_output(|| page(Vec::new(), None));
    let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, [&polls]);
    let logs = FunctionLogs::new(client, GROUP).with_poll_interval(Duration::from_millis(5));
    let printed = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&printed);
    logs.follow(
        0,
        Selection::Failures,
        &mut |_| {
            *counter.lock().unwrap() += 1;
            ControlFlow::Continue(())
        },
        tokio::time::sleep(Duration::from_millis(40)),
    )
    .await
    .unwrap();
    assert!(polls.num_calls() >= 2, "{}", polls.num_calls());
    assert_eq!(*printed.lock().unwrap(), 0);
}

#[test]
fn since_is_a_number_and_a_unit() {
    for (text, seconds) in [("30s", 30), ("10m", 600), ("2h", 7_200), ("1d", 86_400)] {
        let since: Since = text.parse().unwrap();
        assert_eq!(since.duration(), Duration::from_secs(seconds), "{text}");
        assert_eq!(since.to_string(), text);
    }
    for text in [
        "",
        "m",
        "10",
        "1w",
        "-1m",
        "1.5h",
        " 1h",
        "1 h",
        "0m",
        "99999999999999d",
    ] {
        assert!(text.parse::<Since>().is_err(), "{text:?}");
    }
    let since: Since = "1m".parse().unwrap();
    assert_eq!(
        since.start_millis(UNIX_EPOCH + Duration::from_secs(100)),
        40_000
    );
    assert_eq!(since.start_millis(UNIX_EPOCH), 0, "never before the epoch");
}

#[test]
fn an_event_is_printed_as_json_as_cloudwatch_gave_it() {
    let event = LogEvent::from_filtered(&event("7", 1_500, "START RequestId: inv-1\n"));
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"timestamp":1500,"log_stream":"2026/11/25/[$LATEST]0a1b2c","event_id":"7","message":"START RequestId: inv-1\n"}"#
    );
}
