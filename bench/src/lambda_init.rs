//! Lambda-mode init: the api binary started as Lambda starts `bootstrap`
//! (`AWS_LAMBDA_RUNTIME_API` pointing at a stub of the Runtime API on
//! loopback), timed from spawn to its first poll for an event (the init
//! phase Lambda bills) and to its answer to one API Gateway REST event.
//!
//! Each start gets a stub of its own: a long poll left over from a killed
//! process can never take the next start's event.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::process::Running;
use crate::report::Row;
use crate::setup::{Options, Paths, median_ms};

const TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// What one start took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaStart {
    /// Spawn → first `GET …/invocation/next`: init done.
    pub first_poll: Duration,
    /// Spawn → the response to the event posted back.
    pub first_response: Duration,
}

#[derive(Debug)]
enum Seen {
    Poll(Instant),
    Response(Instant, Bytes),
    Failure(String),
}

#[derive(Debug)]
struct Stub {
    event: Mutex<Option<Value>>,
    seen: mpsc::UnboundedSender<Seen>,
}

/// `GET /2018-06-01/runtime/invocation/next`: the one event, then a poll
/// that never returns (as the real API holds it until the next invoke).
async fn next(State(stub): State<Arc<Stub>>) -> Response {
    let _ = stub.seen.send(Seen::Poll(Instant::now()));
    let event = stub.event.lock().ok().and_then(|mut event| event.take());
    let Some(event) = event else {
        return std::future::pending().await;
    };
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| (now + Duration::from_secs(30)).as_millis());
    let headers = [
        ("lambda-runtime-aws-request-id", REQUEST_ID.to_owned()),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench-api".to_owned(),
        ),
    ];
    (headers, axum::Json(event)).into_response()
}

async fn response(State(stub): State<Arc<Stub>>, body: Bytes) -> StatusCode {
    let _ = stub.seen.send(Seen::Response(Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn failure(State(stub): State<Arc<Stub>>, body: Bytes) -> StatusCode {
    let _ = stub
        .seen
        .send(Seen::Failure(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

/// An API Gateway REST (v1) proxy event for `GET path` on stage `prod`,
/// with the headers API Gateway always adds.
pub fn rest_get_event(path: &str) -> Value {
    let headers = json!({
        "Accept": "application/json",
        "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "bench",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https"
    });
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), json!([value])))
        .collect();
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": { "proxy": path.trim_start_matches('/') },
        "stageVariables": null,
        "requestContext": {
            "resourceId": "x7y8z9",
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "requestTime": "13/Mar/2024:14:05:07 +0000",
            "path": format!("/prod{path}"),
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "a1b2c3d4e5",
            "requestTimeEpoch": 1_710_338_707_123_u64,
            "requestId": "4f6c1e2a-8d3b-4c5e-9f70-1a2b3c4d5e6f",
            "identity": { "sourceIp": "203.0.113.10", "userAgent": "bench" },
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "apiId": "a1b2c3d4e5"
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// Starts `api` in Lambda mode with `config`, hands it `GET path` and times
/// the start. The function's own status code must be 200.
pub async fn start_once(api: &Path, config: &Path, path: &str) -> anyhow::Result<LambdaStart> {
    let (seen, mut reports) = mpsc::unbounded_channel();
    let stub = Arc::new(Stub {
        event: Mutex::new(Some(rest_get_event(path))),
        seen,
    });
    let routes = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(failure))
        .route("/2018-06-01/runtime/init/error", post(failure))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    let server = tokio::spawn(async move { axum::serve(listener, routes).await });
    let result = start_and_invoke(api, config, &runtime_api, &mut reports).await;
    server.abort();
    result
}

async fn start_and_invoke(
    api: &Path,
    config: &Path,
    runtime_api: &str,
    reports: &mut mpsc::UnboundedReceiver<Seen>,
) -> anyhow::Result<LambdaStart> {
    let mut command = Command::new(api);
    command
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        // As the stack configures the function.
        .env("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true")
        .env("RUST_LOG", "info")
        .env("API_CONFIG", config)
        .env_remove("API_RESOURCES")
        // `dynamodb` resources get an SDK client in Lambda mode. It must never
        // reach anything: test credentials, and an endpoint on loopback that
        // the event (a memory resource) never makes it call.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", format!("http://{runtime_api}"))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    let started = Instant::now();
    let mut function = Running::spawn(&mut command)?;
    let mut first_poll = None;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let seen = tokio::time::timeout_at(deadline, reports.recv()).await;
        match seen {
            Ok(Some(Seen::Poll(at))) => {
                first_poll.get_or_insert(at.duration_since(started));
            }
            Ok(Some(Seen::Response(at, body))) => {
                let reply: Value =
                    serde_json::from_slice(&body).context("the response is not JSON")?;
                if reply["statusCode"] != json!(200) {
                    bail!("the function answered {reply}");
                }
                return Ok(LambdaStart {
                    first_poll: first_poll.context("a response before any poll")?,
                    first_response: at.duration_since(started),
                });
            }
            Ok(Some(Seen::Failure(failure))) => bail!("the function reported an error: {failure}"),
            Ok(None) => bail!("the stub stopped"),
            Err(_) => {
                let state = function.exited().unwrap_or_else(|| "still runs".to_owned());
                bail!("no response within {TIMEOUT:?}; the function {state}");
            }
        }
    }
}

// --- The section -----------------------------------------------------------

/// The section's rows, for `make bench`'s table.
pub async fn run(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api])?;
    let section = "lambda init";
    let (mut polls, mut responses) = (Vec::new(), Vec::new());
    for _ in 0..options.lambda_starts {
        let start = start_once(&paths.api, &paths.app_yaml, "/api/mocks/000-1").await?;
        polls.push(start.first_poll);
        responses.push(start.first_response);
    }
    let note = format!(
        "median of {} starts; Runtime API stub on loopback, RUST_LOG=info, API_CONFIG=infra/app.yaml",
        options.lambda_starts
    );
    Ok(vec![
        Row::new(
            section,
            "api in Lambda mode: spawn → first /invocation/next",
            median_ms(&polls).unwrap_or_default(),
            "ms",
        )
        .note(note),
        Row::new(
            section,
            "api in Lambda mode: spawn → REST event GET /api/mocks/000-1 answered",
            median_ms(&responses).unwrap_or_default(),
            "ms",
        )
        .note("API Gateway REST (v1) proxy event, statusCode 200 checked"),
    ])
}
