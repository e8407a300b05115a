//! The path a client sent, rebuilt from the API Gateway event.
//!
//! lambda_http (1.3, `build_request_uri`) makes the request URI by handing the
//! event's path to `url::Url::parse`, a WHATWG URL parser: a browser's rules
//! for what a person typed, not for a path a gateway already received. It
//! trims spaces and C0 controls at the end, drops tabs and newlines anywhere,
//! reads `\` as `/`, cuts the path at a `?` or `#` and resolves `.` and `..`
//! segments. Where the gateway hands the path over decoded, `GET
//! /api/mocks/000-1%20` reached the router as `/api/mocks/000-1`, and a
//! DELETE of `trim-test%09` deleted `trim-test`: one record's request acted on
//! another. [`restore_client_path`] puts back the path of the event itself,
//! so a request addresses exactly what it names, as it does on a local socket.
//!
//! Only `main.rs` calls it, and only in Lambda: nothing here decides where
//! the process runs.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::http::uri::{InvalidUri, InvalidUriParts, PathAndQuery};
use axum::http::{Request, Uri};
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use thiserror::Error;

/// Why an event's path could not be made the request's.
#[derive(Debug, Error)]
pub enum InvalidEventPath {
    /// API Gateway always sends a path starting with `/`; anything else is
    /// not a request path, and guessing one could address another record.
    #[error("the event's path {0:?} does not start with `/`")]
    NotAbsolute(String),
    #[error("the event's path cannot be a request URI: {0}")]
    Path(#[from] InvalidUri),
    #[error("the event's path cannot be a request URI: {0}")]
    Uri(#[from] InvalidUriParts),
}

/// lambda_http's switch for leaving the stage out of the path. The function's
/// environment is fixed when it starts, so reading it once reads what
/// lambda_http reads on every event.
static IGNORE_STAGE_IN_PATH: LazyLock<bool> =
    LazyLock::new(|| std::env::var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_ok());

/// Replaces the path of `request`, as lambda_http built it, with the event's
/// own (`path` of a REST API event, `rawPath` of an HTTP API one), under the
/// stage prefix lambda_http gives it, percent-encoded so that the router
/// decodes exactly the characters the client sent.
pub fn restore_client_path<B>(request: &mut Request<B>) -> Result<(), InvalidEventPath> {
    let raw = request.raw_http_path();
    if !raw.starts_with('/') {
        return Err(InvalidEventPath::NotAbsolute(raw.to_owned()));
    }
    let proxy = request
        .path_parameters_ref()
        .and_then(|parameters| parameters.first("proxy"));
    let form = PathForm::of(raw, proxy);
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        _ => None,
    };
    let staged = with_stage(stage, raw, *IGNORE_STAGE_IN_PATH);
    let path = form.encode(&staged);
    // The URL parser took what followed a `?` of the path for the start of
    // the query, and a `#` for a fragment that drops the query altogether.
    // Then the query is made again from the event's parameters, as
    // lambda_http makes a REST API's (an HTTP API's parameters are parsed
    // from its `rawQueryString`, so they hold the same names and values).
    let query: Option<Cow<str>> = if staged.contains(['?', '#']) {
        request
            .query_string_parameters_ref()
            .filter(|parameters| !parameters.is_empty())
            .map(|parameters| Cow::Owned(parameters.to_query_string()))
    } else {
        request.uri().query().map(Cow::Borrowed)
    };
    if path == request.uri().path() && matches!(query, None | Some(Cow::Borrowed(_))) {
        // The usual case: nothing the parser changes was in the path.
        return Ok(());
    }
    let path_and_query = match query {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}"))?,
        None => PathAndQuery::try_from(path.into_owned())?,
    };
    // Scheme and host stay as lambda_http found them in the event.
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    *request.uri_mut() = Uri::from_parts(parts)?;
    Ok(())
}

/// lambda_http's stage rule (`apigw_path_with_stage`): the path is prefixed
/// with `/{stage}` unless the prefix is switched off, there is no stage or
/// it is `$default` (an HTTP API's, served at the root), or the path already
/// starts with `/{stage}/`.
fn with_stage<'a>(stage: Option<&str>, path: &'a str, ignore_stage: bool) -> Cow<'a, str> {
    match stage {
        _ if ignore_stage => Cow::Borrowed(path),
        None | Some("$default") => Cow::Borrowed(path),
        Some(stage)
            if path
                .strip_prefix('/')
                .and_then(|rest| rest.strip_prefix(stage))
                .is_some_and(|rest| rest.starts_with('/')) =>
        {
            Cow::Borrowed(path)
        }
        Some(stage) => Cow::Owned(format!("/{stage}{path}")),
    }
}

/// How the gateway handed over the path: encoded as the client sent it, or
/// decoded. Nothing in the event says which, and gateways differ:
///
/// - AWS REST APIs (and Function URLs) keep the client's encoding in `path`
///   (live captures in hotsock/voker#8, the basis of middleapi/standard-server
///   PR #93; localstack PR #7728 for REST: `%2B` stays `%2B`);
/// - AWS HTTP APIs decode `rawPath` (standard-server PR #93), all but `%25`
///   (ministack 1.5.33 `decode_http_api_path`, modelled on them);
/// - ministack's REST API proxy integration hands over `path` fully decoded.
///
/// The proxy parameter (`/{proxy+}`) is always decoded: when the path ends
/// with it, the path is decoded too. A path with nothing encoded reads the
/// same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathForm {
    Decoded,
    AsSent,
}

impl PathForm {
    fn of(raw_path: &str, proxy: Option<&str>) -> Self {
        let ends_with_proxy = proxy.is_some_and(|proxy| {
            raw_path
                .strip_suffix(proxy)
                .is_some_and(|head| head.ends_with('/'))
        });
        if ends_with_proxy {
            PathForm::Decoded
        } else {
            PathForm::AsSent
        }
    }

    /// The path as a request line carries it, which the router decodes back
    /// to exactly the characters the client meant.
    fn encode(self, path: &str) -> Cow<'_, str> {
        match self {
            // Every character is itself, a `%` too.
            PathForm::Decoded => Cow::from(utf8_percent_encode(path, NOT_UNRESERVED)),
            // A valid escape is the client's and is kept (so is a `%25` an
            // HTTP API left encoded); what cannot stand in an encoded path is
            // a character the gateway decoded, or sent as it came, and is
            // encoded. A `%` that starts no escape is itself, as the router
            // reads it locally.
            PathForm::AsSent => {
                let mut encoded = String::with_capacity(path.len());
                let mut rest = path;
                while let Some(at) = rest.find('%') {
                    encoded.extend(utf8_percent_encode(&rest[..at], NOT_PCHAR));
                    rest = &rest[at + 1..];
                    let escape = rest.as_bytes().get(..2);
                    if escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                        encoded.push('%');
                    } else {
                        encoded.push_str("%25");
                    }
                }
                encoded.extend(utf8_percent_encode(rest, NOT_PCHAR));
                Cow::Owned(encoded)
            }
        }
    }
}

/// All but RFC 3986's unreserved characters (ALPHA DIGIT `-` `.` `_` `~`)
/// and the `/` between segments: what a decoded path must encode.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// All but what an encoded path holds as it is (RFC 3986 `pchar` and `/`):
/// unreserved, the sub-delimiters `!$&'()*+,;=`, `:` and `@`. What is left
/// (space, controls, `"`, `#`, `<`, `>`, `?`, `[`, `\`, `]`, `^`, `` ` ``,
/// `{`, `|`, `}`, and every byte beyond ASCII) reached the gateway encoded.
const NOT_PCHAR: &AsciiSet = &NOT_UNRESERVED
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoded_path_encodes_everything_but_unreserved_and_slash() {
        let check = |path: &str, expected: &str| {
            assert_eq!(PathForm::Decoded.encode(path), expected, "{path:?}");
        };
        check("/api/mocks/000-1", "/api/mocks/000-1");
        check("/api/mocks/000-1 ", "/api/mocks/000-1%20");
        check("/api/mocks/\t000-1", "/api/mocks/%09000-1");
        check("/api/mocks/000-\r\n1", "/api/mocks/000-%0D%0A1");
        check("/api/mocks/\u{15}\u{7f}\u{85}", "/api/mocks/%15%7F%C2%85");
        check("/api/mocks/100%", "/api/mocks/100%25");
        check("/api/mocks/100%25", "/api/mocks/100%2525");
        check(
            "/api/mocks/a+b@example.com",
            "/api/mocks/a%2Bb%40example.com",
        );
        check("/api/mocks/a#b?c", "/api/mocks/a%23b%3Fc");
        check("/api/mocks/a\\b", "/api/mocks/a%5Cb");
        check("/api/mocks/café", "/api/mocks/caf%C3%A9");
        check("/api/mocks/cafe\u{301}", "/api/mocks/cafe%CC%81");
        check("/api/mocks/x/..", "/api/mocks/x/..");
        check("/api/mocks/~_.-", "/api/mocks/~_.-");
    }

    #[test]
    fn a_path_as_sent_keeps_escapes_and_pchars_and_encodes_the_rest() {
        let check = |path: &str, expected: &str| {
            assert_eq!(PathForm::AsSent.encode(path), expected, "{path:?}");
        };
        check("/api/mocks/000-1%20", "/api/mocks/000-1%20");
        check("/api/mocks/000-1 ", "/api/mocks/000-1%20");
        check("/api/mocks/000-1\t", "/api/mocks/000-1%09");
        check("/api/mocks/%2B+%2b", "/api/mocks/%2B+%2b");
        check("/api/mocks/a+b@x.com:1", "/api/mocks/a+b@x.com:1");
        check("/api/mocks/!$&'()*,;=", "/api/mocks/!$&'()*,;=");
        check("/api/mocks/100%25", "/api/mocks/100%25");
        check("/api/mocks/100%", "/api/mocks/100%25");
        check("/api/mocks/100%2", "/api/mocks/100%252");
        check("/api/mocks/%zz%%41", "/api/mocks/%25zz%25%41");
        check("/api/mocks/a?b#c", "/api/mocks/a%3Fb%23c");
        check(
            "/api/mocks/a\"<>[\\]^`{|}",
            "/api/mocks/a%22%3C%3E%5B%5C%5D%5E%60%7B%7C%7D",
        );
        check("/api/mocks/\u{15}\u{7f}\u{85}", "/api/mocks/%15%7F%C2%85");
        check("/api/mocks/café", "/api/mocks/caf%C3%A9");
        check("/api/mocks/caf%C3%A9", "/api/mocks/caf%C3%A9");
        check("/api/mocks/%2E%2E", "/api/mocks/%2E%2E");
    }

    #[test]
    fn the_path_is_decoded_when_it_ends_with_the_proxy_parameter() {
        let check = |path: &str, proxy: Option<&str>, expected: PathForm| {
            assert_eq!(PathForm::of(path, proxy), expected, "{path:?} {proxy:?}");
        };
        // The emulator's REST API, an HTTP API: both decoded.
        check("/api/mocks/a b", Some("api/mocks/a b"), PathForm::Decoded);
        check("/api/mocks/100%", Some("api/mocks/100%"), PathForm::Decoded);
        // AWS's REST API: the path as sent, the parameter decoded.
        check("/api/mocks/a%20b", Some("api/mocks/a b"), PathForm::AsSent);
        // An HTTP API keeps `%25` in rawPath, not in the parameter.
        check(
            "/api/mocks/100%25",
            Some("api/mocks/100%"),
            PathForm::AsSent,
        );
        // A proxy resource below the root.
        check(
            "/base/api/mocks/a b",
            Some("api/mocks/a b"),
            PathForm::Decoded,
        );
        // Not at a segment boundary: not the parameter.
        check("/api/mocks/xa b", Some("a b"), PathForm::AsSent);
        // No `{proxy+}` (an HTTP API's `$default` route).
        check("/api/mocks/a b", None, PathForm::AsSent);
    }

    #[test]
    fn the_stage_prefix_follows_lambda_http() {
        let check = |stage: Option<&str>, path: &str, ignore: bool, expected: &str| {
            assert_eq!(
                with_stage(stage, path, ignore),
                expected,
                "{stage:?} {path:?} ignore={ignore}"
            );
        };
        check(Some("prod"), "/api/mocks", false, "/prod/api/mocks");
        check(Some("prod"), "/api/mocks", true, "/api/mocks");
        check(Some("prod"), "/prod/api/mocks", false, "/prod/api/mocks");
        check(Some("prod"), "/prod", false, "/prod/prod");
        check(Some("prod"), "/production/x", false, "/prod/production/x");
        check(Some("$default"), "/api/mocks", false, "/api/mocks");
        check(None, "/api/mocks", false, "/api/mocks");
    }

    /// The whole rule on events as lambda_http turns them into requests.
    #[test]
    fn requests_get_back_the_path_of_their_event() {
        let rest = |path: &str, proxy: &str, query: &str| {
            let event = serde_json::json!({
                "resource": "/{proxy+}",
                "path": path,
                "httpMethod": "GET",
                "headers": {"Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"},
                "multiValueHeaders": {},
                "queryStringParameters": null,
                "multiValueQueryStringParameters": if query.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::json!({ "limit": [query] })
                },
                "pathParameters": {"proxy": proxy},
                "requestContext": {"stage": "$default", "httpMethod": "GET", "path": path},
                "body": null,
                "isBase64Encoded": false
            });
            lambda_http::request::from_str(&event.to_string()).unwrap()
        };
        let check = |mut request: lambda_http::Request, expected: &str| {
            restore_client_path(&mut request).unwrap();
            assert_eq!(
                request.uri().to_string(),
                format!("https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com{expected}")
            );
        };
        check(
            rest("/api/mocks/000-1 ", "api/mocks/000-1 ", ""),
            "/api/mocks/000-1%20",
        );
        check(
            rest("/api/mocks/000-1%20", "api/mocks/000-1 ", ""),
            "/api/mocks/000-1%20",
        );
        check(
            rest("/api/mocks/\u{15}", "api/mocks/\u{15}", ""),
            "/api/mocks/%15",
        );
        check(
            rest("/api/mocks/a?b", "api/mocks/a?b", ""),
            "/api/mocks/a%3Fb",
        );
        check(
            rest("/api/mocks/a?b", "api/mocks/a?b", "2"),
            "/api/mocks/a%3Fb?limit=2",
        );
        check(
            rest("/api/mocks/a#b", "api/mocks/a#b", "2"),
            "/api/mocks/a%23b?limit=2",
        );
        check(rest("/api/mocks", "api/mocks", "2"), "/api/mocks?limit=2");

        let mut relative = rest("api/mocks/000-1", "api/mocks/000-1", "");
        assert!(matches!(
            restore_client_path(&mut relative),
            Err(InvalidEventPath::NotAbsolute(path)) if path == "api/mocks/000-1"
        ));
    }
}
