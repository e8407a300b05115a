//! API Gateway events through the real `api` binary, as Lambda runs it.
//!
//! The router tests never see what happens between API Gateway and the router:
//! lambda_http turning an event into a request (stage prefix, base64 bodies,
//! the query string rebuilt from the parameter maps, merged headers), the
//! response turned back into JSON (`multiValueHeaders`, text or base64), and
//! `main.rs`'s Lambda branch with its layer (the gateway's request id, the
//! client's path given back by `lambda_path`, encoded or decoded as each
//! gateway hands it over). So each test starts
//! the binary exactly as Lambda starts `bootstrap` (the same environment
//! variables, `AWS_LAMBDA_RUNTIME_API` pointing at a stub of the Runtime API
//! on loopback) and feeds it events written from the AWS documentation's REST
//! API (v1) proxy format and HTTP API payload format 2.0 (`tests/events/`).
//!
//! Each test starts its own process: the memory backend lives in it, so the
//! tests share nothing and run in any order, in parallel.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

use std::io::Read as _;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, mpsc};

/// Longest wait for anything: a broken binary fails the test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(10);

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:crud-api";

// ---------------------------------------------------------------------------
// The harness: a Runtime API stub and the binary polling it.
// ---------------------------------------------------------------------------

/// One event handed to the function, under Lambda's invocation id.
#[derive(Debug)]
struct Invocation {
    id: String,
    event: Value,
}

/// What the function posted back to the Runtime API.
enum Report {
    Response {
        id: String,
        body: Value,
    },
    /// An invocation error or an init error, with the function's own words.
    Failure(String),
}

/// The stub's state: events waiting to be polled, and a channel for reports.
struct RuntimeApi {
    invocations: Mutex<mpsc::UnboundedReceiver<Invocation>>,
    reports: mpsc::UnboundedSender<Report>,
}

type Stub = State<Arc<RuntimeApi>>;

/// `GET .../invocation/next`: a long poll, answered once an event is queued,
/// as the real Runtime API does.
async fn next_invocation(State(api): Stub) -> Response {
    let Some(Invocation { id, event }) = api.invocations.lock().await.recv().await else {
        // The test is over; the process is being killed anyway.
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let headers = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            FUNCTION_ARN.to_owned(),
        ),
    ];
    (headers, axum::Json(event)).into_response()
}

async fn invocation_response(State(api): Stub, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let report = match serde_json::from_slice(&body) {
        Ok(body) => Report::Response { id, body },
        Err(error) => Report::Failure(format!(
            "invocation {id} answered with something that is not JSON ({error}): {}",
            String::from_utf8_lossy(&body)
        )),
    };
    let _ = api.reports.send(report);
    StatusCode::ACCEPTED
}

async fn invocation_error(State(api): Stub, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let failure = format!("invocation {id} failed: {}", String::from_utf8_lossy(&body));
    let _ = api.reports.send(Report::Failure(failure));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): Stub, body: Bytes) -> StatusCode {
    let failure = format!("initialisation failed: {}", String::from_utf8_lossy(&body));
    let _ = api.reports.send(Report::Failure(failure));
    StatusCode::ACCEPTED
}

/// The `api` binary in Lambda mode, with its Runtime API. Dropping it kills
/// the process, so a failing test leaves nothing behind.
struct Lambda {
    process: Child,
    invocations: mpsc::UnboundedSender<Invocation>,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Drop for Lambda {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Lambda {
    /// The function as the CloudFormation template configures it.
    async fn start() -> Self {
        Self::start_with_env(&[("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true")]).await
    }

    async fn start_with_env(extra_env: &[(&str, &str)]) -> Self {
        let (invocations, queued) = mpsc::unbounded_channel();
        let (reported, reports) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            invocations: Mutex::new(queued),
            reports: reported,
        });
        let stub = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runtime_api = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, stub).await });

        let process = Command::new(env!("CARGO_BIN_EXE_api"))
            // Whatever the developer's shell has, this test decides.
            .env_remove("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH")
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "crud-api")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("API_CONFIG", repo_path("infra/app.yaml"))
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            // Read by `log_lines` once the process is stopped.
            .stdout(Stdio::piped())
            // Read only once the process has exited, to explain a failure.
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            process,
            invocations,
            reports,
        }
    }

    /// Invokes the function with `event` and returns its response JSON
    /// (`statusCode`, `headers`/`multiValueHeaders`, `body`, `isBase64Encoded`).
    async fn invoke(&mut self, event: Value) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        let invocation = Invocation {
            id: id.clone(),
            event,
        };
        self.invocations.send(invocation).unwrap();
        match tokio::time::timeout(TIMEOUT, self.reports.recv()).await {
            Ok(Some(Report::Response { id: answered, body })) => {
                assert_eq!(answered, id, "a response for another invocation");
                body
            }
            Ok(Some(Report::Failure(failure))) => panic!("{failure}"),
            Ok(None) => unreachable!("the stub keeps its sender while it runs"),
            Err(_) => panic!("no response within {TIMEOUT:?}; {}", self.state()),
        }
    }

    /// Stops the function and returns the JSON lines it logged.
    fn log_lines(mut self) -> Vec<Value> {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let mut stdout = String::new();
        if let Some(mut pipe) = self.process.stdout.take() {
            let _ = pipe.read_to_string(&mut stdout);
        }
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// Whether the process still runs, and if not, what it said before dying.
    fn state(&mut self) -> String {
        match self.process.try_wait() {
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.process.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                format!("the binary exited ({status}): {stderr}")
            }
            _ => "the binary is still running".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// Events and responses.
// ---------------------------------------------------------------------------

fn repo_path(relative: &str) -> PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read_json(path: &FsPath) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// An event from `tests/events/`, as API Gateway sends it.
fn fixture(name: &str) -> Value {
    read_json(
        &FsPath::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/events")
            .join(name),
    )
}

/// The records the `mocks` resource starts with.
fn seed() -> Vec<Value> {
    serde_json::from_value(read_json(&repo_path("infra/seed/mocks.json"))).unwrap()
}

/// How a gateway hands the function the path a client sent (percent-encoded
/// on the wire), through a `/{proxy+}` resource or route.
#[derive(Debug, Clone, Copy)]
enum Gateway {
    /// The emulator's REST API (ministack): `path` and `pathParameters.proxy`
    /// both decoded.
    EmulatorRest,
    /// AWS's REST API: `path` as the client sent it, `pathParameters.proxy`
    /// decoded.
    AwsRest,
    /// An HTTP API (payload format 2.0) on its `$default` stage: `rawPath`
    /// decoded except `%25`, `pathParameters.proxy` decoded.
    HttpApi,
}

const GATEWAYS: [Gateway; 3] = [Gateway::EmulatorRest, Gateway::AwsRest, Gateway::HttpApi];

/// Decodes a path as the wire has it; a `%` that starts no escape stays.
fn decode(path: &str) -> String {
    percent_decode_str(path).decode_utf8().unwrap().into_owned()
}

/// The event `gateway` sends for `method path_and_query`, as the client put
/// it on the wire, with an optional JSON `body`.
fn gateway_event(gateway: Gateway, method: &str, sent: &str, body: Option<&str>) -> Value {
    let (path, query) = sent.split_once('?').unwrap_or((sent, ""));
    let decoded = decode(path);
    let proxy = decoded.trim_start_matches('/');
    match gateway {
        Gateway::EmulatorRest => rest_event_with(method, &decoded, proxy, query, body),
        Gateway::AwsRest => rest_event_with(method, path, proxy, query, body),
        Gateway::HttpApi => {
            let raw_path = path
                .split("%25")
                .map(decode)
                .collect::<Vec<_>>()
                .join("%25");
            http_event_with(method, &raw_path, proxy, query, body)
        }
    }
}

/// A REST API (v1) proxy event for `method path_and_query` with an optional
/// JSON `body`, as the emulator sends it (the path decoded): plain paths are
/// the same through every gateway.
fn rest_event(method: &str, path_and_query: &str, body: Option<&str>) -> Value {
    gateway_event(Gateway::EmulatorRest, method, path_and_query, body)
}

/// A REST API (v1) proxy event made from the GET fixture the way API Gateway
/// fills in a request through `ANY /{proxy+}` on stage `prod`.
fn rest_event_with(
    method: &str,
    path: &str,
    proxy: &str,
    query: &str,
    body: Option<&str>,
) -> Value {
    let mut event = fixture("rest-get-record.json");
    event["httpMethod"] = json!(method);
    event["path"] = json!(path);
    event["pathParameters"] = json!({ "proxy": proxy });
    let context = &mut event["requestContext"];
    context["httpMethod"] = json!(method);
    context["path"] = json!(format!("/prod{path}"));
    // Each request has its own id at API Gateway, as here.
    context["requestId"] = json!(uuid::Uuid::new_v4().to_string());
    if !query.is_empty() {
        // API Gateway sends the decoded parameters twice: the last value of
        // each name, and all of them.
        let mut last = Map::new();
        let mut all = Map::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            last.insert(name.to_string(), json!(value));
            let values = all.entry(name.to_string()).or_insert_with(|| json!([]));
            values.as_array_mut().unwrap().push(json!(value));
        }
        event["queryStringParameters"] = Value::Object(last);
        event["multiValueQueryStringParameters"] = Value::Object(all);
    }
    if let Some(body) = body {
        set_header(&mut event, "Content-Type", "application/json");
        event["body"] = json!(body);
    }
    event
}

/// An HTTP API (payload format 2.0) event made from the GET fixture the way
/// API Gateway fills in a request through the route `ANY /{proxy+}`.
fn http_event_with(
    method: &str,
    raw_path: &str,
    proxy: &str,
    query: &str,
    body: Option<&str>,
) -> Value {
    let mut event = fixture("http-get-record.json");
    event["routeKey"] = json!("ANY /{proxy+}");
    event["rawPath"] = json!(raw_path);
    event["rawQueryString"] = json!(query);
    event["pathParameters"] = json!({ "proxy": proxy });
    let context = &mut event["requestContext"];
    context["routeKey"] = json!("ANY /{proxy+}");
    context["http"]["method"] = json!(method);
    context["http"]["path"] = json!(raw_path);
    if !query.is_empty() {
        // Repeated names are joined with commas in payload format 2.0.
        let mut joined: Map<String, Value> = Map::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match joined.get_mut(name.as_ref()) {
                Some(Value::String(values)) => *values = format!("{values},{value}"),
                _ => {
                    joined.insert(name.to_string(), json!(value));
                }
            }
        }
        event["queryStringParameters"] = Value::Object(joined);
    }
    if let Some(body) = body {
        event["headers"]["content-type"] = json!("application/json");
        event["body"] = json!(body);
    }
    event
}

/// Sets a request header in both maps of a REST event, as API Gateway does.
fn set_header(event: &mut Value, name: &str, value: &str) {
    event["headers"][name] = json!(value);
    event["multiValueHeaders"][name] = json!([value]);
}

fn status(reply: &Value) -> u64 {
    reply["statusCode"].as_u64().unwrap()
}

/// A response header by name (any case). REST responses carry headers in
/// `multiValueHeaders`, HTTP API ones in `headers`.
fn header<'a>(reply: &'a Value, name: &str) -> Option<&'a str> {
    let find = |map: &'a Value| {
        map.as_object()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    match find(&reply["multiValueHeaders"]) {
        Some(values) => values[0].as_str(),
        None => find(&reply["headers"])?.as_str(),
    }
}

/// The response body as JSON, checking it travels as JSON text: API Gateway
/// passes a base64 body through undecoded unless binary media types are set.
fn body_json(reply: &Value) -> Value {
    assert_eq!(reply["isBase64Encoded"], json!(false), "{reply:#}");
    let content_type = header(reply, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{reply:#}");
    serde_json::from_str(reply["body"].as_str().unwrap()).unwrap()
}

/// The message of an error response, checking the body is `{"error": "..."}`.
fn error_message(reply: &Value) -> String {
    let body = body_json(reply);
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 1, "{body}");
    object["error"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn reads_through_rest_events_answer_as_the_contract_says() {
    let mut lambda = Lambda::start().await;
    let seed = seed();
    let cases = [
        ("/api/ping", json!({ "result": "pong" })),
        ("/api/mocks", json!(seed)),
        ("/api/mocks/000-1", seed[0].clone()),
        ("/api/mocks/000-2/", seed[1].clone()),
    ];
    for (path, expected) in cases {
        let reply = lambda.invoke(rest_event("GET", path, None)).await;
        assert_eq!(status(&reply), 200, "GET {path}: {reply:#}");
        assert_eq!(body_json(&reply), expected, "GET {path}");
    }

    let reply = lambda
        .invoke(rest_event("GET", "/api/mocks/nope", None))
        .await;
    assert_eq!(status(&reply), 404, "{reply:#}");
    assert!(error_message(&reply).contains("nope"), "{reply:#}");
}

#[tokio::test]
async fn list_pages_follow_the_next_offset_and_link_headers() {
    let mut lambda = Lambda::start().await;
    let seed = seed();

    // `limit=1` arrives in both queryStringParameters and multiValueQueryStringParameters.
    let first = lambda.invoke(fixture("rest-list-first-page.json")).await;
    assert_eq!(status(&first), 200, "{first:#}");
    assert_eq!(body_json(&first), json!([seed[0]]));
    let offset = header(&first, "next-offset").expect("a next-offset header");
    let link = header(&first, "link").expect("a link header");
    let next = link
        .strip_prefix("<?")
        .and_then(|rest| rest.strip_suffix(r#">; rel="next""#))
        .unwrap_or_else(|| panic!("not a query-only rel=\"next\" link: {link}"));
    let params: Vec<&str> = next.split('&').collect();
    assert!(params.contains(&"limit=1"), "link keeps the limit: {link}");
    assert!(
        params.contains(&format!("offset={offset}").as_str()),
        "link carries the next-offset: {link}"
    );

    // Follow the link as a client would: its query on the path just called.
    let second = lambda
        .invoke(rest_event("GET", &format!("/api/mocks?{next}"), None))
        .await;
    assert_eq!(status(&second), 200, "{second:#}");
    assert_eq!(body_json(&second), json!([seed[1]]));
    assert_eq!(header(&second, "next-offset"), None, "{second:#}");
    assert_eq!(header(&second, "link"), None, "{second:#}");
}

#[tokio::test]
async fn create_stores_plain_and_base64_encoded_json_bodies() {
    let mut lambda = Lambda::start().await;
    let plain = fixture("rest-create-record.json");
    let encoded = fixture("rest-create-record-base64.json");
    let cases = [
        (&plain, plain["body"].as_str().unwrap().as_bytes().to_vec()),
        (
            &encoded,
            BASE64.decode(encoded["body"].as_str().unwrap()).unwrap(),
        ),
    ];
    for (event, body) in cases {
        let sent: Value = serde_json::from_slice(&body).unwrap();
        let id = sent["id"].as_str().unwrap();
        let reply = lambda.invoke(event.clone()).await;
        assert_eq!(status(&reply), 201, "POST {id}: {reply:#}");
        assert_eq!(body_json(&reply), sent, "POST {id}");
        // Relative, so it resolves under the `/prod` stage the client called.
        let location = format!("mocks/{id}");
        assert_eq!(header(&reply, "location"), Some(location.as_str()));

        let path = format!("/api/mocks/{id}");
        let stored = lambda.invoke(rest_event("GET", &path, None)).await;
        assert_eq!(status(&stored), 200, "GET {path}: {stored:#}");
        assert_eq!(body_json(&stored), sent, "GET {path}");
    }
}

#[tokio::test]
async fn create_refuses_duplicates_non_objects_and_oversized_bodies() {
    let mut lambda = Lambda::start().await;
    let created = lambda.invoke(fixture("rest-create-record.json")).await;
    assert_eq!(status(&created), 201, "{created:#}");

    let duplicate = lambda.invoke(fixture("rest-create-record.json")).await;
    assert_eq!(status(&duplicate), 409, "{duplicate:#}");
    error_message(&duplicate);

    let array = lambda
        .invoke(rest_event("POST", "/api/mocks", Some("[1,2]")))
        .await;
    assert_eq!(status(&array), 400, "{array:#}");
    let message = error_message(&array);
    assert!(message.contains("JSON object"), "{message}");

    // One byte over 400 KiB (DynamoDB's item size limit).
    let padding = "x".repeat(400 * 1024);
    let big = format!(r#"{{"id":"big","padding":"{padding}"}}"#);
    let too_large = lambda
        .invoke(rest_event("POST", "/api/mocks", Some(&big)))
        .await;
    assert_eq!(status(&too_large), 413, "{}", too_large["body"]);
    error_message(&too_large);
    let absent = lambda
        .invoke(rest_event("GET", "/api/mocks/big", None))
        .await;
    assert_eq!(status(&absent), 404, "{absent:#}");
}

#[tokio::test]
async fn update_merges_fields_and_never_creates() {
    let mut lambda = Lambda::start().await;
    let mut expected = seed()[0].clone();
    expected["value"] = json!(51);
    expected["open"] = json!(false);

    let body = r#"{"value": 51, "open": false}"#;
    let updated = lambda
        .invoke(rest_event("PUT", "/api/mocks/000-1", Some(body)))
        .await;
    assert_eq!(status(&updated), 200, "{updated:#}");
    assert_eq!(body_json(&updated), expected);
    let read = lambda
        .invoke(rest_event("GET", "/api/mocks/000-1", None))
        .await;
    assert_eq!(body_json(&read), expected);

    let missing = lambda
        .invoke(rest_event("PUT", "/api/mocks/000-9", Some(body)))
        .await;
    assert_eq!(status(&missing), 404, "{missing:#}");
    error_message(&missing);
    let still_missing = lambda
        .invoke(rest_event("GET", "/api/mocks/000-9", None))
        .await;
    assert_eq!(status(&still_missing), 404, "{still_missing:#}");
}

#[tokio::test]
async fn delete_answers_204_with_an_empty_body_then_the_record_is_gone() {
    let mut lambda = Lambda::start().await;
    let deleted = lambda
        .invoke(rest_event("DELETE", "/api/mocks/000-2", None))
        .await;
    assert_eq!(status(&deleted), 204, "{deleted:#}");
    assert_eq!(deleted["isBase64Encoded"], json!(false), "{deleted:#}");
    let body = deleted["body"].as_str().unwrap_or_default();
    assert!(body.is_empty(), "{deleted:#}");

    let gone = lambda
        .invoke(rest_event("GET", "/api/mocks/000-2", None))
        .await;
    assert_eq!(status(&gone), 404, "{gone:#}");
    error_message(&gone);
}

#[tokio::test]
async fn unknown_resources_are_404_and_unrouted_methods_405_with_allow() {
    let mut lambda = Lambda::start().await;
    let unknown = lambda
        .invoke(rest_event("GET", "/api/nothing-here", None))
        .await;
    assert_eq!(status(&unknown), 404, "{unknown:#}");
    error_message(&unknown);

    let patch = lambda
        .invoke(rest_event("PATCH", "/api/mocks", Some(r#"{"id":"000-1"}"#)))
        .await;
    assert_eq!(status(&patch), 405, "{patch:#}");
    error_message(&patch);
    let allow = header(&patch, "allow").unwrap_or_else(|| panic!("no allow header: {patch:#}"));
    for method in ["GET", "POST"] {
        assert!(allow.split(',').any(|m| m.trim() == method), "{allow}");
    }
}

#[tokio::test]
async fn the_response_request_id_is_the_rest_apis() {
    let mut lambda = Lambda::start().await;
    // A caller's own X-Request-Id loses to the gateway's, which is the one in
    // API Gateway's access log.
    let mut with_caller_id = rest_event("GET", "/api/ping", None);
    set_header(&mut with_caller_id, "X-Request-Id", "chosen-by-the-caller");
    let events = [
        fixture("rest-get-record.json"),
        fixture("rest-list-first-page.json"),
        fixture("rest-create-record.json"),
        fixture("rest-create-record-base64.json"),
        rest_event("GET", "/api/mocks/nope", None),
        with_caller_id,
    ];
    for event in events {
        let gateway_id = event["requestContext"]["requestId"].as_str().unwrap();
        let reply = lambda.invoke(event.clone()).await;
        assert_eq!(
            header(&reply, "x-request-id"),
            Some(gateway_id),
            "{reply:#}"
        );
    }
}

/// HTTP API request ids look like `UvXAdI4PoAMEfUj=`: main.rs copies it into
/// `x-request-id`, but logging.rs keeps a caller's id only if it is made of
/// letters, digits and `-_.`, so the `=` makes it replace the id with a new UUID.
#[tokio::test]
async fn the_response_request_id_is_the_http_apis() {
    let mut lambda = Lambda::start().await;
    let event = fixture("http-get-record.json");
    let gateway_id = event["requestContext"]["requestId"].as_str().unwrap();
    let reply = lambda.invoke(event.clone()).await;
    assert_eq!(
        header(&reply, "x-request-id"),
        Some(gateway_id),
        "{reply:#}"
    );
}

#[tokio::test]
async fn responses_are_json_text_not_base64() {
    let mut lambda = Lambda::start().await;
    let events = [
        rest_event("GET", "/api/ping", None),
        rest_event("GET", "/api/mocks", None),
        rest_event("GET", "/api/mocks/000-1", None),
        rest_event("GET", "/api/mocks/nope", None),
        rest_event("GET", "/api/mocks?limit=oops", None),
        rest_event("PATCH", "/api/mocks", None),
        fixture("rest-create-record.json"),
        fixture("http-get-record.json"),
    ];
    for event in events {
        let reply = lambda.invoke(event).await;
        // body_json checks isBase64Encoded and content-type.
        body_json(&reply);
    }
}

#[tokio::test]
async fn an_http_api_v2_event_reads_a_record() {
    let mut lambda = Lambda::start().await;
    let reply = lambda.invoke(fixture("http-get-record.json")).await;
    assert_eq!(status(&reply), 200, "{reply:#}");
    assert_eq!(body_json(&reply), seed()[0]);
}

/// Without AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH, lambda_http puts the REST
/// API's stage back in front of the path, and `/prod/api/mocks` matches no
/// route. This is why the CloudFormation template must set that variable.
#[tokio::test]
async fn without_ignore_stage_in_path_the_stage_prefix_matches_no_route() {
    let mut lambda = Lambda::start_with_env(&[]).await;
    let reply = lambda.invoke(rest_event("GET", "/api/mocks", None)).await;
    assert_eq!(status(&reply), 404, "{reply:#}");
    assert_eq!(
        body_json(&reply),
        json!({ "error": "no route for GET /prod/api/mocks" })
    );
}

/// In Lambda the deployer passes the resources in `API_RESOURCES` (as the
/// template renders it), and that mapping wins over any declaration file.
#[tokio::test]
async fn the_resources_mapping_comes_from_the_environment() {
    let mapping = json!({
        "mocks": {"backend": "memory", "seed": repo_path("infra/seed/mocks.json")},
        "codes": {"backend": "memory", "operations": ["list", "get"]}
    })
    .to_string();
    let mut lambda = Lambda::start_with_env(&[
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
        ("API_RESOURCES", &mapping),
        ("API_CONFIG", "/nonexistent/app.yaml"),
    ])
    .await;
    let reply = lambda.invoke(rest_event("GET", "/api/mocks", None)).await;
    assert_eq!(status(&reply), 200, "{reply:#}");
    assert_eq!(body_json(&reply), json!(seed()));
    let reply = lambda
        .invoke(rest_event("POST", "/api/codes", Some(r#"{"id":"a"}"#)))
        .await;
    assert_eq!(status(&reply), 405, "{reply:#}");
    let reply = lambda.invoke(rest_event("GET", "/api/users", None)).await;
    assert_eq!(
        status(&reply),
        404,
        "only the mapping's resources are served"
    );
}

/// Each request's log line carries API Gateway's request id (the one a 500
/// body quotes, and its access log shows) and the Lambda invocation's own.
#[tokio::test]
async fn log_lines_carry_the_gateway_and_lambda_request_ids() {
    let mut lambda = Lambda::start_with_env(&[
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
        ("RUST_LOG", "info"),
    ])
    .await;
    let event = rest_event("GET", "/api/mocks/000-1", None);
    let gateway_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = lambda.invoke(event).await;
    assert_eq!(status(&reply), 200, "{reply:#}");
    let lines = lambda.log_lines();
    let request_line = lines
        .iter()
        .find(|line| line["message"] == "request")
        .unwrap_or_else(|| panic!("no request line in {lines:#?}"));
    assert_eq!(request_line["request_id"], gateway_id.as_str());
    assert_eq!(request_line["status"], 200);
    let invocation_id = request_line["span"]["requestId"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        uuid::Uuid::parse_str(invocation_id).map(|_| ()),
        Ok(()),
        "{request_line}"
    );
}

/// What a request for one id must get, whichever gateway carried it.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// No record has this id: 404 naming exactly it.
    Absent(&'static str),
    /// Not an id at all: 400 whose message contains this.
    Refused(&'static str),
    /// Not a record's path: the router's own 404.
    NoRoute,
}

/// Ids a browser's URL parser (WHATWG, which lambda_http uses to build the
/// request URI) would turn into another one: spaces and C0 controls trimmed
/// at either end, tabs and newlines dropped anywhere, the path cut at `?` or
/// `#`, `\` read as `/`, dot segments resolved. Each is sent to `/api/mocks/`
/// percent-encoded, as a client sends it; `000-1` and `café` exist.
const ALTERED_IDS: [(&str, Outcome); 28] = [
    ("000-1%20", Outcome::Absent("000-1 ")),
    ("%20000-1", Outcome::Absent(" 000-1")),
    ("000-%201", Outcome::Absent("000- 1")),
    ("%20", Outcome::Absent(" ")),
    ("000-1%09", Outcome::Refused("U+0009")),
    ("%09000-1", Outcome::Refused("U+0009")),
    ("000-%091", Outcome::Refused("U+0009")),
    ("000-1%0D", Outcome::Refused("U+000D")),
    ("000-1%0A", Outcome::Refused("U+000A")),
    ("000-%0A1", Outcome::Refused("U+000A")),
    ("%00000-1", Outcome::Refused("U+0000")),
    ("000-1%15", Outcome::Refused("U+0015")),
    ("%15", Outcome::Refused("U+0015")),
    ("000-1%7F", Outcome::Refused("U+007F")),
    ("000-1%C2%85", Outcome::Refused("U+0085")),
    ("000-1%25", Outcome::Absent("000-1%")),
    ("000-1%2525", Outcome::Absent("000-1%25")),
    ("000-1%", Outcome::Absent("000-1%")),
    ("000-1%2B", Outcome::Absent("000-1+")),
    ("000-1+", Outcome::Absent("000-1+")),
    ("000-1%23", Outcome::Absent("000-1#")),
    ("000-1%23x", Outcome::Absent("000-1#x")),
    ("000-1%3F", Outcome::Absent("000-1?")),
    ("000-1%3Fx", Outcome::Absent("000-1?x")),
    ("000-1%5C", Outcome::Absent("000-1\\")),
    ("cafe%CC%81", Outcome::Absent("cafe\u{301}")),
    ("%2E%2E", Outcome::Refused("must not be `.` or `..`")),
    ("000-1/x/%2E%2E", Outcome::NoRoute),
];

/// Whether `reply` is `outcome`; if not, what it was instead.
fn outcome_mismatch(reply: &Value, outcome: Outcome) -> Option<String> {
    let (status, body) = (status(reply), reply["body"].as_str().unwrap_or_default());
    let message = serde_json::from_str::<Value>(body).ok().and_then(|body| {
        let object = body.as_object()?;
        let error = object.get("error")?.as_str()?.to_owned();
        (object.len() == 1).then_some(error)
    });
    let expected = match (outcome, status, &message) {
        (Outcome::Absent(id), 404, Some(message)) => {
            *message == format!("no record with id `{id}`")
        }
        (Outcome::Refused(fragment), 400, Some(message)) => message.contains(fragment),
        (Outcome::NoRoute, 404, Some(message)) => message.starts_with("no route for "),
        _ => false,
    };
    (!expected).then(|| format!("{status} {body}"))
}

fn assert_outcome(reply: &Value, outcome: Outcome, request: &str) {
    if let Some(instead) = outcome_mismatch(reply, outcome) {
        panic!("{request}: expected {outcome:?}, got {instead}");
    }
}

/// Puts the `mocks` records back as `records` (the whole list) if a request
/// changed them; says whether it had to, so a wrong write is reported once
/// and does not hide what the next requests would do.
async fn restore(lambda: &mut Lambda, records: &Value) -> bool {
    let now = body_json(&lambda.invoke(rest_event("GET", "/api/mocks", None)).await);
    if now == *records {
        return false;
    }
    for record in records.as_array().unwrap() {
        let path = format!("/api/mocks/{}", record["id"].as_str().unwrap());
        lambda.invoke(rest_event("DELETE", &path, None)).await;
        let body = record.to_string();
        let created = lambda
            .invoke(rest_event("POST", "/api/mocks", Some(&body)))
            .await;
        assert_eq!(status(&created), 201, "{created:#}");
    }
    true
}

/// Behind API Gateway a request addresses exactly the id it names, as it
/// does locally (`hostile_requests.rs`): never a record whose id a URL parser
/// made of it, nor the list. Reads, updates and deletes alike, through every
/// gateway's way of handing over the path.
#[tokio::test]
async fn every_id_addresses_exactly_itself_or_is_refused() {
    let mut lambda = Lambda::start().await;
    let cafe = lambda
        .invoke(rest_event("POST", "/api/mocks", Some(r#"{"id":"café"}"#)))
        .await;
    assert_eq!(status(&cafe), 201, "{cafe:#}");
    let before = body_json(&lambda.invoke(rest_event("GET", "/api/mocks", None)).await);

    let mut wrong = Vec::new();
    for gateway in GATEWAYS {
        for (sent, outcome) in ALTERED_IDS {
            let path = format!("/api/mocks/{sent}");
            for (method, body) in [
                ("GET", None),
                ("PUT", Some(r#"{"value": 1}"#)),
                ("DELETE", None),
            ] {
                let reply = lambda
                    .invoke(gateway_event(gateway, method, &path, body))
                    .await;
                let request = format!("{gateway:?} {method} {path}");
                if let Some(instead) = outcome_mismatch(&reply, outcome) {
                    wrong.push(format!("{request}: {instead}"));
                }
                if method != "GET" && restore(&mut lambda, &before).await {
                    wrong.push(format!("{request}: changed another record"));
                }
            }
        }
    }

    // All of them at once: which gateways and which characters, at a glance.
    assert!(wrong.is_empty(), "not the id sent:\n{}", wrong.join("\n"));
}

/// Ids with spaces, sub-delimiters, `%`, `#`, `?` and letters beyond ASCII
/// live a whole life through every gateway: created, found at the `Location`
/// the API gave and at the path a client encodes itself, listed, updated,
/// deleted. `café` composed and decomposed stay two records.
#[tokio::test]
async fn records_with_any_id_go_through_their_whole_life() {
    let ids = [
        "Ana María",
        "a+b@example.com",
        "ürün-7",
        "John Smith",
        "100%",
        "a#b",
        "a?b",
        "café",
        "cafe\u{301}",
    ];
    let mut lambda = Lambda::start().await;
    for gateway in GATEWAYS {
        let context = |what: &str, id: &str| format!("{gateway:?} {what} {id:?}");
        for id in ids {
            let record = json!({ "id": id, "step": "created" });
            let created = lambda
                .invoke(gateway_event(
                    gateway,
                    "POST",
                    "/api/mocks",
                    Some(&record.to_string()),
                ))
                .await;
            assert_eq!(
                status(&created),
                201,
                "{}: {created:#}",
                context("POST", id)
            );
            let location = header(&created, "location").unwrap().to_owned();
            let at_location = format!("/api/{location}");
            let encoded = format!("/api/mocks/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
            for path in [&at_location, &encoded] {
                let read = lambda
                    .invoke(gateway_event(gateway, "GET", path, None))
                    .await;
                assert_eq!(status(&read), 200, "{}: {read:#}", context("GET", path));
                assert_eq!(body_json(&read), record, "{}", context("GET", path));
            }
        }

        let listed = lambda
            .invoke(gateway_event(gateway, "GET", "/api/mocks", None))
            .await;
        let listed: Vec<String> = body_json(&listed)
            .as_array()
            .unwrap()
            .iter()
            .map(|record| record["id"].as_str().unwrap().to_owned())
            .collect();
        for id in ids {
            assert!(
                listed.iter().any(|listed| listed == id),
                "{gateway:?}: {id:?} in {listed:?}"
            );
        }

        for id in ids {
            let path = format!("/api/mocks/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
            let updated = lambda
                .invoke(gateway_event(
                    gateway,
                    "PUT",
                    &path,
                    Some(r#"{"step": "updated"}"#),
                ))
                .await;
            assert_eq!(status(&updated), 200, "{}: {updated:#}", context("PUT", id));
            assert_eq!(body_json(&updated), json!({ "id": id, "step": "updated" }));
        }
        for id in ids {
            let path = format!("/api/mocks/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
            let deleted = lambda
                .invoke(gateway_event(gateway, "DELETE", &path, None))
                .await;
            assert_eq!(
                status(&deleted),
                204,
                "{}: {deleted:#}",
                context("DELETE", id)
            );
            let gone = lambda
                .invoke(gateway_event(gateway, "GET", &path, None))
                .await;
            assert_outcome(&gone, Outcome::Absent(id), &context("GET after DELETE", id));
        }
    }
}

/// An event whose path is not a request path (API Gateway always sends one
/// starting with `/`) is refused, not guessed at, and answered like any
/// other request: with the gateway's request id.
#[tokio::test]
async fn an_event_path_that_is_not_absolute_is_refused() {
    let mut lambda = Lambda::start().await;
    let mut event = rest_event("GET", "/api/mocks/000-1", None);
    event["path"] = json!("api/mocks/000-1");
    let gateway_id = event["requestContext"]["requestId"].clone();
    let reply = lambda.invoke(event).await;
    assert_eq!(status(&reply), 400, "{reply:#}");
    let message = error_message(&reply);
    assert!(message.contains("api/mocks/000-1"), "{message}");
    assert_eq!(header(&reply, "x-request-id"), gateway_id.as_str());
}
