//! Structured JSON logs: the subscriber, the request id, and one line per request.
//!
//! Each request gets an id (the caller's `x-request-id` when it is sane, else a
//! new UUID), echoed in the response's `x-request-id` header and carried in a
//! task-local so an internal error can be logged and answered with it.
//! `json_lines` writes the lines ([`JsonLines`]).

mod json_lines;

pub use json_lines::{JsonLines, LineSink};

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::request_id::is_plain_request_id;

/// The header a request id travels in, both ways.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Installs the JSON subscriber on stdout; `RUST_LOG` sets the level (default `info`).
pub fn init() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    // In Lambda, lambda_runtime runs each invocation in a span holding its
    // requestId (and X-Ray trace id); each line carries its span's fields, so
    // it names both ids.
    tracing_subscriber::registry()
        .with(JsonLines::new(std::io::stdout()).with_filter(filter))
        .init();
}

/// `RUST_LOG` as `level` and `target=level` directives (`info`,
/// `api=debug,warn`); unset or unreadable means `info`.
fn log_filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// The id of the request being served, or `-` outside one.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// The middleware that assigns each request its id and logs the request
/// once it is answered. A tower [`Layer`] of its own rather than axum's
/// `middleware::from_fn`, which clones the inner service into a new boxed
/// service on every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceRequestsLayer;

impl<S> Layer<S> for TraceRequestsLayer {
    type Service = TraceRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceRequests { inner }
    }
}

/// The service of [`TraceRequestsLayer`].
#[derive(Debug, Clone)]
pub struct TraceRequests<S> {
    inner: S,
}

impl<S> Service<Request> for TraceRequests<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = caller_request_id(request.headers()).unwrap_or_else(new_request_id);
        let method = request.method().clone();
        // Shares the request line's bytes: no copy of the path.
        let uri = request.uri().clone();
        // The handler runs when this future is polled: inside the scope.
        let answer = REQUEST_ID.scope(request_id, self.inner.call(request));
        Box::pin(async move {
            let mut answer = std::pin::pin!(answer);
            let mut response = answer.as_mut().await?;
            // The scope gives the id back: the line and the header use it
            // without a copy.
            let request_id = answer.as_mut().take_value().unwrap_or_default();
            let status = response.status().as_u16();
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            // Fields as `&str`, not `%` (Display): recorded as strings, not formatted.
            tracing::info!(
                request_id = request_id.as_str(),
                method = method.as_str(),
                path = uri.path(),
                status,
                latency_ms,
                "request"
            );
            if let Ok(value) = HeaderValue::try_from(request_id) {
                response
                    .headers_mut()
                    .insert(REQUEST_ID_HEADER.clone(), value);
            }
            Ok(response)
        })
    }
}

/// A new request id: a random (version 4) UUID from fastrand's per-thread
/// generator, which std's randomly keyed hasher seeds once per thread.
/// `Uuid::new_v4` asks the kernel instead, one `getrandom(2)` call per
/// request: a system call on the hot path that callgrind does not see. A
/// request id names log lines and guards nothing (callers may send their
/// own), so it must be unique, not unpredictable: the generator's 2^64
/// period keeps one thread's ids distinct, its random seeds keep threads and
/// processes apart.
fn new_request_id() -> String {
    let random = fastrand::u128(..).to_le_bytes();
    uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A caller's id is kept only if it is short and plain (UUID or base64
/// characters, as API Gateway's REST and HTTP API ids are), so it cannot
/// forge log structure or bloat every line.
fn caller_request_id(headers: &HeaderMap) -> Option<String> {
    let id = headers.get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    is_plain_request_id(id).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives() {
        use tracing::Level;
        let check = |rust_log: Option<&str>, target: &str, level: Level, enabled: bool| {
            assert_eq!(
                log_filter(rust_log).would_enable(target, &level),
                enabled,
                "RUST_LOG={rust_log:?} {target} {level}"
            );
        };
        check(None, "api", Level::INFO, true);
        check(None, "api", Level::DEBUG, false);
        check(Some("warn"), "api::logging", Level::INFO, false);
        check(Some("warn"), "api::logging", Level::WARN, true);
        check(Some("api=debug,warn"), "api::router", Level::DEBUG, true);
        check(Some("api=debug,warn"), "lambda_runtime", Level::INFO, false);
        check(Some("api=loud"), "api", Level::INFO, true);
    }

    fn header_with(request_id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            &REQUEST_ID_HEADER,
            HeaderValue::from_str(request_id).unwrap(),
        );
        headers
    }

    #[test]
    fn keeps_only_plain_caller_ids() {
        let check = |value: &str, kept: bool| {
            assert_eq!(
                caller_request_id(&header_with(value)).is_some(),
                kept,
                "{value:?}"
            );
        };
        check("c0ffee-12.ab_C", true);
        check("UvXAdI4PoAMEfUj=", true);
        check("", false);
        check("a b", false);
        check("a\"}", false);
        check(
            &"a".repeat(crate::request_id::MAX_REQUEST_ID_LEN + 1),
            false,
        );
        assert_eq!(caller_request_id(&HeaderMap::new()), None);
    }

    #[test]
    fn new_ids_are_distinct_version_4_uuids_on_every_thread() {
        let draw = || (0..10_000).map(|_| new_request_id()).collect::<Vec<_>>();
        let mut ids = draw();
        ids.extend(std::thread::spawn(draw).join().unwrap());
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            // Kept as is when it comes back as a caller's id.
            assert_eq!(
                caller_request_id(&header_with(id)).as_deref(),
                Some(id.as_str())
            );
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
