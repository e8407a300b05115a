//! `deployer --verbose`: one line on stderr per AWS call, as it completes.
//!
//! An SDK interceptor attached to every client the commands build (see
//! `commands/context.rs`). It writes the service, the operation, the HTTP
//! status (or that there was none), how long the call took and how many
//! attempts the retries made:
//!
//! ```text
//! [aws] cloudformation DescribeStacks -> 200 (41 ms)
//! [aws] s3 HeadObject -> 404 failed (12 ms)
//! [aws] sts GetCallerIdentity -> no response (3012 ms, 3 attempts)
//! ```
//!
//! It reads nothing but the operation's name, the response status and the
//! clock: never a request or response body, header, URI or parameter. Those
//! carry secrets (the GitHub token goes through `CreateSecret`, credentials
//! sign every request), and a verbose log ends up pasted into issues.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Where the lines go: stderr, or a test's buffer.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The interceptor. Cheap to clone: every client gets its own copy.
#[derive(Clone)]
pub struct VerboseInterceptor {
    sink: Sink,
}

impl fmt::Debug for VerboseInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerboseInterceptor").finish_non_exhaustive()
    }
}

impl Default for VerboseInterceptor {
    fn default() -> Self {
        Self::stderr()
    }
}

impl VerboseInterceptor {
    /// Prints each call on stderr (stdout stays the command's result).
    pub fn stderr() -> Self {
        Self::with_sink(|line| eprintln!("{line}"))
    }

    /// Hands each line to `sink` instead.
    pub fn with_sink(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            sink: Arc::new(sink),
        }
    }
}

/// How a call ended, as far as this log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status of the last response; `None` when none arrived
    /// (connection refused, timeout, a failure before sending).
    pub status: Option<u16>,
    /// Whether the SDK returned an error to the caller.
    pub failed: bool,
    /// Attempts made, retries included.
    pub attempts: u32,
}

/// One log line. Takes only names, numbers and the duration, so there is
/// nothing else it could print.
pub fn line(service: &str, operation: &str, outcome: Outcome, elapsed: Duration) -> String {
    let status = match outcome.status {
        Some(code) => code.to_string(),
        None => "no response".to_owned(),
    };
    // "no response" is a failure already; "200 failed" (a response that
    // did not parse) and "404 failed" are worth saying.
    let failed = if outcome.failed && outcome.status.is_some() {
        " failed"
    } else {
        ""
    };
    let attempts = if outcome.attempts > 1 {
        format!(", {} attempts", outcome.attempts)
    } else {
        String::new()
    };
    format!(
        "[aws] {} {operation} -> {status}{failed} ({} ms{attempts})",
        service_name(service),
        elapsed.as_millis()
    )
}

/// The SDK's service name as the AWS CLI spells it: `CloudFormation` →
/// `cloudformation`, `Secrets Manager` → `secretsmanager`.
pub(crate) fn service_name(sdk_name: &str) -> String {
    sdk_name
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// When the call started, kept in the call's own ConfigBag so concurrent
/// calls on one client never mix.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone, Copy)]
struct Attempts(u32);

impl Storable for Attempts {
    type Storer = StoreReplace<Self>;
}

impl Intercept for VerboseInterceptor {
    fn name(&self) -> &'static str {
        "deployer-verbose"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    // Each execution has its own ConfigBag, so the count starts at zero.
    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempts = cfg.load::<Attempts>().map_or(0, |a| a.0) + 1;
        cfg.interceptor_state().store_put(Attempts(attempts));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        let elapsed = cfg
            .load::<Started>()
            .map_or(Duration::ZERO, |started| started.0.elapsed());
        let outcome = Outcome {
            status: context.response().map(|r| r.status().as_u16()),
            failed: context.output_or_error().is_none_or(|r| r.is_err()),
            attempts: cfg.load::<Attempts>().map_or(0, |a| a.0),
        };
        (self.sink)(&line(service, operation, outcome, elapsed));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    #[test]
    fn a_line_names_the_service_the_operation_and_the_outcome() {
        let ok = Outcome {
            status: Some(200),
            failed: false,
            attempts: 1,
        };
        assert_eq!(
            line(
                "CloudFormation",
                "DescribeStacks",
                ok,
                Duration::from_millis(41)
            ),
            "[aws] cloudformation DescribeStacks -> 200 (41 ms)"
        );
        let not_found = Outcome {
            status: Some(404),
            failed: true,
            attempts: 1,
        };
        assert_eq!(
            line("S3", "HeadObject", not_found, Duration::from_millis(12)),
            "[aws] s3 HeadObject -> 404 failed (12 ms)"
        );
        let unreachable = Outcome {
            status: None,
            failed: true,
            attempts: 3,
        };
        assert_eq!(
            line(
                "Secrets Manager",
                "CreateSecret",
                unreachable,
                Duration::from_millis(3012)
            ),
            "[aws] secretsmanager CreateSecret -> no response (3012 ms, 3 attempts)"
        );
    }

    /// A real client call with a secret in its input: the line names the
    /// call and its outcome, and nothing of the request.
    #[tokio::test]
    async fn a_call_is_logged_without_its_request() {
        const TOKEN: &str = "ghp_THIS_MUST_NEVER_BE_PRINTED_0123456789";
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        let interceptor = VerboseInterceptor::with_sink(move |line| {
            sink.lock().unwrap().push(line.to_owned());
        });
        let created = mock!(aws_sdk_secretsmanager::Client::create_secret).then_output(|| {
            aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput::builder()
                .name("serverless-api/github-token")
                .build()
        });
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            &[&created],
            |config| config.interceptor(interceptor.clone())
        );
        client
            .create_secret()
            .name("serverless-api/github-token")
            .secret_string(TOKEN)
            .description("the GitHub token")
            .send()
            .await
            .unwrap();

        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let logged = &lines[0];
        assert!(
            logged.starts_with("[aws] secretsmanager CreateSecret -> "),
            "{logged}"
        );
        for request_part in [TOKEN, "ghp_", "github-token", "GitHub", "SecretString"] {
            assert!(!logged.contains(request_part), "{request_part} in {logged}");
        }
    }
}
