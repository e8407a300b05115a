//! What a line of the function's log group says, and how `deployer logs`
//! prints it for a person.
//!
//! Three writers share the group. The API writes one JSON object per line
//! (`api/src/logging`): a `"message":"request"` line per request with
//! `request_id`, `method`, `path`, `status` and `latency_ms`, a few others
//! (start-up, `internal error` with the request id), and, under the Lambda
//! runtime, a `span` holding the invocation's `requestId`. Lambda writes its
//! own plain-text lines around each invocation, `START RequestId: …`, `END
//! RequestId: …`, `REPORT RequestId: …` with the duration and memory (AWS
//! Lambda Operator Guide, "How CloudWatch structures logs"). Anything else
//! is neither: a panic's message, the runtime's, or Lambda's "Task timed
//! out" notice; since the API writes nothing but JSON lines, such a line is
//! always worth a look.
//!
//! The parse never fails: a line it cannot read as one of ours is text.

use std::fmt;

use serde_json::{Map, Value};

/// One line of the log group, read.
#[derive(Debug, Clone, PartialEq)]
pub enum LogLine {
    /// The API's line for a request it answered.
    Request(RequestLine),
    /// Another JSON line of the API's: start-up, an internal error, …
    Event(EventLine),
    /// One of Lambda's own lines about an invocation.
    Platform(PlatformLine),
    /// Anything else, as written.
    Text(String),
}

/// The API's one line per request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine {
    /// The id the client got in `x-request-id` (API Gateway's, in Lambda).
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_ms: f64,
    /// The Lambda invocation that served it (the runtime span's `requestId`).
    pub invocation: Option<String>,
}

/// Another JSON line of the API's.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    /// `ERROR`, `WARN`, `INFO`, …
    pub level: String,
    pub message: String,
    pub request_id: Option<String>,
    pub invocation: Option<String>,
    /// The event's other fields, in the order written, values as text.
    pub fields: Vec<(String, String)>,
}

/// A line Lambda writes: `START`, `END`, `REPORT`, `INIT_START`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformLine {
    /// The first word: `START`, `END`, `REPORT`, `INIT_START`.
    pub kind: String,
    /// The invocation's `RequestId`, when the line names one.
    pub invocation: Option<String>,
    /// The `Name: value` fields after the request id, tab-separated as
    /// Lambda writes them (`Duration: 12.34 ms`, `Version: $LATEST`).
    pub fields: Vec<(String, String)>,
}

/// The first words of Lambda's own lines in the text log format. `INIT_*`,
/// `EXTENSION` and `TELEMETRY` are the execution environment's start-up.
const PLATFORM_KINDS: [&str; 7] = [
    "START",
    "END",
    "REPORT",
    "INIT_START",
    "INIT_REPORT",
    "EXTENSION",
    "TELEMETRY",
];

/// The members of an API line that are not its event's own fields.
const LINE_MEMBERS: [&str; 5] = ["timestamp", "level", "message", "target", "span"];

impl LogLine {
    /// Reads one event's message.
    pub fn parse(message: &str) -> Self {
        let trimmed = message.trim_end_matches(['\n', '\r']);
        if trimmed.starts_with('{')
            && let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed)
            && let Some(line) = api_line(&object)
        {
            return line;
        }
        platform_line(trimmed).unwrap_or_else(|| Self::Text(trimmed.to_owned()))
    }

    /// Whether this line tells of a failure: a request answered 5xx, an
    /// `ERROR` line, or text that is none of ours nor Lambda's bookkeeping
    /// (a panic, a crash, a timeout).
    pub fn is_failure(&self) -> bool {
        match self {
            Self::Request(request) => request.status >= 500,
            Self::Event(event) => event.level.eq_ignore_ascii_case("ERROR"),
            Self::Platform(_) => false,
            Self::Text(text) => !text.trim().is_empty(),
        }
    }

    /// Whether this line belongs to one of `ids`: a request id the API
    /// logged, or a Lambda invocation's `RequestId`.
    pub fn names_any(&self, ids: &[String]) -> bool {
        let named = |id: Option<&String>| id.is_some_and(|id| ids.contains(id));
        match self {
            Self::Request(request) => {
                ids.contains(&request.request_id) || named(request.invocation.as_ref())
            }
            Self::Event(event) => {
                named(event.request_id.as_ref()) || named(event.invocation.as_ref())
            }
            Self::Platform(platform) => named(platform.invocation.as_ref()),
            // Lambda's timeout notice is `<time> <RequestId> Task timed out…`.
            Self::Text(text) => text
                .split(|c: char| c.is_whitespace() || c == '"')
                .any(|word| ids.iter().any(|id| id == word)),
        }
    }

    /// The Lambda invocation this line was written in, when it says.
    pub fn invocation(&self) -> Option<&str> {
        match self {
            Self::Request(request) => request.invocation.as_deref(),
            Self::Event(event) => event.invocation.as_deref(),
            Self::Platform(platform) => platform.invocation.as_deref(),
            Self::Text(_) => None,
        }
    }

    /// Whether a person needs to see it: `END` says nothing its `REPORT`,
    /// the next line, does not say too.
    pub fn is_shown(&self) -> bool {
        !matches!(self, Self::Platform(platform) if platform.kind == "END")
    }
}

fn text_member<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// An API line: a JSON object with the members `json_lines.rs` writes.
fn api_line(object: &Map<String, Value>) -> Option<LogLine> {
    let level = text_member(object, "level")?;
    let message = text_member(object, "message").unwrap_or_default();
    let invocation = object
        .get("span")
        .and_then(|span| span.get("requestId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let request_id = text_member(object, "request_id").map(str::to_owned);
    if message == "request"
        && let (Some(request_id), Some(method), Some(path), Some(status)) = (
            request_id.clone(),
            text_member(object, "method"),
            text_member(object, "path"),
            object
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|status| u16::try_from(status).ok()),
        )
    {
        return Some(LogLine::Request(RequestLine {
            request_id,
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            latency_ms: object
                .get("latency_ms")
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            invocation,
        }));
    }
    let fields = object
        .iter()
        .filter(|(key, _)| !LINE_MEMBERS.contains(&key.as_str()) && *key != "request_id")
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect();
    Some(LogLine::Event(EventLine {
        level: level.to_owned(),
        message: message.to_owned(),
        request_id,
        invocation,
        fields,
    }))
}

/// `KIND RequestId: <id>\tName: value\t…`, or `KIND Name: value\t…` for
/// the lines of the environment's start-up.
fn platform_line(text: &str) -> Option<LogLine> {
    let (kind, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !PLATFORM_KINDS.contains(&kind) {
        return None;
    }
    let mut invocation = None;
    let mut fields = Vec::new();
    for part in rest
        .split('\t')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        // `START` puts `Version:` after the id with a space, not a tab.
        let mut remaining = part;
        if let Some(after) = remaining.strip_prefix("RequestId: ") {
            let (id, tail) = after.split_once(' ').unwrap_or((after, ""));
            invocation = Some(id.to_owned());
            remaining = tail.trim();
        }
        if remaining.is_empty() {
            continue;
        }
        match remaining.split_once(": ") {
            Some((name, value)) => fields.push((name.to_owned(), value.trim().to_owned())),
            None => fields.push((String::new(), remaining.to_owned())),
        }
    }
    Some(LogLine::Platform(PlatformLine {
        kind: kind.to_owned(),
        invocation,
        fields,
    }))
}

/// A millisecond timestamp as RFC 3339 UTC with milliseconds:
/// `2026-11-25T04:03:13.740Z`, the same width for every line.
pub fn format_timestamp(millis: i64) -> String {
    let seconds = aws_smithy_types::DateTime::from_secs(millis.div_euclid(1000))
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| millis.to_string());
    let seconds = seconds.trim_end_matches('Z');
    format!("{seconds}.{:03}Z", millis.rem_euclid(1000))
}

/// One line as a person reads it, after its time: no colours, no JSON.
#[derive(Debug)]
pub struct Human<'a>(pub &'a LogLine);

impl fmt::Display for Human<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            LogLine::Request(request) => write!(
                f,
                "{} {:<6} {:<32} {:>9} {}",
                request.status,
                request.method,
                request.path,
                format!("{:.1} ms", request.latency_ms),
                request.request_id
            ),
            LogLine::Event(event) => {
                write!(f, "{:<5} {}", event.level, event.message)?;
                if let Some(id) = &event.request_id {
                    write!(f, " request_id={id}")?;
                }
                for (name, value) in &event.fields {
                    write!(f, " {name}={}", quoted_if_spaced(value))?;
                }
                Ok(())
            }
            LogLine::Platform(platform) => {
                write!(f, "{}", platform.kind)?;
                if let Some(id) = &platform.invocation {
                    write!(f, " {id}")?;
                }
                if platform.kind == "REPORT" {
                    return write!(f, " {}", report_summary(&platform.fields));
                }
                for (name, value) in &platform.fields {
                    if name.is_empty() {
                        write!(f, " {value}")?;
                    } else {
                        write!(f, " {name}: {value}")?;
                    }
                }
                Ok(())
            }
            LogLine::Text(text) => write!(f, "{text}"),
        }
    }
}

fn quoted_if_spaced(value: &str) -> String {
    if value.is_empty() || value.contains(char::is_whitespace) || value.contains('"') {
        serde_json::Value::from(value).to_string()
    } else {
        value.to_owned()
    }
}

/// `REPORT`'s fields in a few words: `12.34 ms (billed 13 ms), 21 of 256
/// MB, init 45.67 ms`; fields this does not know follow as written.
fn report_summary(fields: &[(String, String)]) -> String {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    };
    let mut parts = Vec::new();
    if let Some(duration) = field("Duration") {
        match field("Billed Duration") {
            Some(billed) => parts.push(format!("{duration} (billed {billed})")),
            None => parts.push(duration.to_owned()),
        }
    }
    match (field("Max Memory Used"), field("Memory Size")) {
        (Some(used), Some(size)) => parts.push(format!(
            "{} of {size}",
            used.trim_end_matches(" MB").trim_end()
        )),
        (Some(used), None) => parts.push(format!("{used} used")),
        (None, Some(size)) => parts.push(format!("{size} memory")),
        (None, None) => {}
    }
    if let Some(init) = field("Init Duration") {
        parts.push(format!("init {init}"));
    }
    const SUMMARISED: [&str; 5] = [
        "Duration",
        "Billed Duration",
        "Max Memory Used",
        "Memory Size",
        "Init Duration",
    ];
    for (name, value) in fields {
        if !SUMMARISED.contains(&name.as_str()) {
            parts.push(if name.is_empty() {
                value.clone()
            } else {
                format!("{name}: {value}")
            });
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request line as `api::logging` writes it under the Lambda runtime.
    const REQUEST: &str = r#"{"timestamp":"2026-11-25T04:03:13.740156Z","level":"INFO","message":"request","request_id":"c0ffee-1","method":"GET","path":"/api/users/7","status":500,"latency_ms":12.345,"target":"api::logging","span":{"requestId":"8f507cfc-1","xrayTraceId":"Root=1-2","name":"Lambda runtime invoke"}}"#;
    /// The internal error line of the same request (`api/src/error.rs`).
    const INTERNAL_ERROR: &str = r#"{"timestamp":"2026-11-25T04:03:13.739000Z","level":"ERROR","message":"internal error","request_id":"c0ffee-1","error":"DynamoDB GetItem on table `shop-users` failed: ResourceNotFoundException","target":"api::error","span":{"requestId":"8f507cfc-1","name":"Lambda runtime invoke"}}"#;

    #[test]
    fn each_kind_of_line_reads_and_prints_on_one_line() {
        let check = |message: &str, printed: &str| {
            let line = LogLine::parse(message);
            assert_eq!(Human(&line).to_string(), printed, "{message}");
        };
        check(
            REQUEST,
            "500 GET    /api/users/7                       12.3 ms c0ffee-1",
        );
        check(
            INTERNAL_ERROR,
            "ERROR internal error request_id=c0ffee-1 error=\"DynamoDB GetItem on table \
             `shop-users` failed: ResourceNotFoundException\"",
        );
        check(
            r#"{"timestamp":"2026-11-25T04:03:13.740156Z","level":"INFO","message":"serving 1 resources","resources":"users (dynamodb: table shop-users)","target":"api"}"#,
            "INFO  serving 1 resources resources=\"users (dynamodb: table shop-users)\"",
        );
        check(
            "START RequestId: 8f507cfc-1 Version: $LATEST\n",
            "START 8f507cfc-1 Version: $LATEST",
        );
        check(
            "REPORT RequestId: 8f507cfc-1\tDuration: 12.34 ms\tBilled Duration: 13 ms\t\
             Memory Size: 256 MB\tMax Memory Used: 21 MB\tInit Duration: 45.67 ms\t\n",
            "REPORT 8f507cfc-1 12.34 ms (billed 13 ms), 21 of 256 MB, init 45.67 ms",
        );
        check(
            "INIT_START Runtime Version: provided:al2023.v85\tRuntime Version ARN: arn:x\n",
            "INIT_START Runtime Version: provided:al2023.v85 Runtime Version ARN: arn:x",
        );
        check(
            "thread 'main' panicked at api/src/main.rs:9:5:\n",
            "thread 'main' panicked at api/src/main.rs:9:5:",
        );
        // A JSON line that is not one of ours is text too.
        check(r#"{"foo":1}"#, r#"{"foo":1}"#);
    }

    #[test]
    fn a_request_line_keeps_its_fields_and_its_invocation() {
        let LogLine::Request(request) = LogLine::parse(REQUEST) else {
            panic!("not a request line");
        };
        assert_eq!(request.request_id, "c0ffee-1");
        assert_eq!(request.status, 500);
        assert_eq!(request.invocation.as_deref(), Some("8f507cfc-1"));
        assert!((request.latency_ms - 12.345).abs() < 1e-9);
    }

    #[test]
    fn failures_are_5xx_error_lines_and_foreign_text() {
        let check = |message: &str, failure: bool| {
            assert_eq!(LogLine::parse(message).is_failure(), failure, "{message}");
        };
        check(REQUEST, true);
        check(&REQUEST.replace("\"status\":500", "\"status\":503"), true);
        check(&REQUEST.replace("\"status\":500", "\"status\":404"), false);
        check(&REQUEST.replace("\"status\":500", "\"status\":200"), false);
        check(INTERNAL_ERROR, true);
        check(&INTERNAL_ERROR.replace("\"ERROR\"", "\"WARN\""), false);
        check("START RequestId: 8f507cfc-1 Version: $LATEST", false);
        check("REPORT RequestId: 8f507cfc-1\tDuration: 1 ms", false);
        check(
            "2026-11-25T04:03:16.740Z 8f507cfc-1 Task timed out after 3.00 seconds",
            true,
        );
        check("thread 'main' panicked at src/main.rs:9:5", true);
    }

    #[test]
    fn a_line_belongs_to_its_request_and_its_invocation() {
        let ids = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
        let request = LogLine::parse(REQUEST);
        assert!(request.names_any(&ids(&["c0ffee-1"])));
        assert!(request.names_any(&ids(&["8f507cfc-1"])));
        assert!(!request.names_any(&ids(&["c0ffee"])), "whole ids only");
        assert!(LogLine::parse(INTERNAL_ERROR).names_any(&ids(&["c0ffee-1"])));
        let start = LogLine::parse("START RequestId: 8f507cfc-1 Version: $LATEST");
        assert!(start.names_any(&ids(&["8f507cfc-1"])));
        assert!(!start.names_any(&ids(&["c0ffee-1"])));
        assert_eq!(start.invocation(), Some("8f507cfc-1"));
        let timeout = LogLine::parse("2026-11-25T04:03:16.740Z 8f507cfc-1 Task timed out");
        assert!(timeout.names_any(&ids(&["8f507cfc-1"])));
        assert!(!LogLine::parse("END RequestId: 8f507cfc-1").is_shown());
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_timestamp(1_795_575_057_123),
            "2026-11-25T02:50:57.123Z"
        );
        assert_eq!(
            format_timestamp(1_795_575_057_005),
            "2026-11-25T02:50:57.005Z"
        );
    }
}
