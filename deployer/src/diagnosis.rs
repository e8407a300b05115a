//! What a failed command prints: what went wrong and what to do about it, in
//! one or two lines, the way `sam` and `cdk` answer a missing credential.
//!
//! Every command's error ends up here (`main.rs`), whatever module raised it,
//! so the rules live in one place: the error's chain of sources is searched
//! for the SDK's own types (a [`CredentialsError`], a service's
//! [`ErrorMetadata`], a [`ConnectorError`]), never for the wording of our own
//! messages. The AWS call that failed is known from [`FailedCalls`], an
//! interceptor on every client, so the line can name it. The full chain is
//! printed only with `--verbose`.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, PoisonError};

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;

/// An AWS call that returned an error to the command, as the CLI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCall {
    /// `cloudformation`, `secretsmanager`, … (the AWS CLI's spelling).
    pub service: String,
    pub operation: String,
}

/// Remembers the last AWS call that failed; cheap to clone, one per command.
#[derive(Debug, Clone, Default)]
pub struct FailedCalls {
    last: Arc<Mutex<Option<FailedCall>>>,
}

impl FailedCalls {
    pub fn last(&self) -> Option<FailedCall> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Intercept for FailedCalls {
    fn name(&self) -> &'static str {
        "deployer-failed-calls"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.output_or_error().is_some_and(|r| r.is_ok()) {
            return Ok(());
        }
        if let Some(metadata) = cfg.load::<Metadata>() {
            let call = FailedCall {
                service: crate::verbose::service_name(metadata.service()),
                operation: metadata.name().to_owned(),
            };
            *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(call);
        }
        Ok(())
    }
}

/// Where the command was sending its calls, for the words of a diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Situation {
    /// `--profile` or `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `AWS_ENDPOINT_URL`: an emulator, or a proxy.
    pub endpoint: Option<String>,
    pub failed_call: Option<FailedCall>,
}

impl Situation {
    /// The situation as the environment and the command line set it.
    pub fn from_environment(profile_flag: Option<&str>, failed_call: Option<FailedCall>) -> Self {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            profile: profile_flag
                .map(str::to_owned)
                .or_else(|| non_empty("AWS_PROFILE")),
            endpoint: non_empty("AWS_ENDPOINT_URL"),
            failed_call,
        }
    }
}

/// What went wrong, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub problem: String,
    pub remedy: String,
}

/// The text a failed command prints on stderr: `error: …` and, when the
/// error is one of the kinds below, what to do; with `verbose`, every cause.
pub fn report(error: &(dyn StdError + 'static), situation: &Situation, verbose: bool) -> String {
    let mut text = match diagnose(error, situation) {
        Some(diagnosis) => {
            let call = situation
                .failed_call
                .as_ref()
                .map_or(String::new(), |call| {
                    format!(" ({} {})", call.service, call.operation)
                });
            format!("error: {}{call}\n  {}", diagnosis.problem, diagnosis.remedy)
        }
        None => format!("error: {error}"),
    };
    if verbose {
        for cause in chain(error).skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
    }
    text
}

/// The kinds of failure a person can act on, found by the SDK's own error
/// types anywhere in `error`'s chain; `None` for the others, whose own
/// message says what happened.
pub fn diagnose(error: &(dyn StdError + 'static), situation: &Situation) -> Option<Diagnosis> {
    chain(error).find_map(|cause| {
        if let Some(credentials) = cause.downcast_ref::<CredentialsError>() {
            Some(credentials_problem(credentials, situation))
        } else if let Some(metadata) = cause.downcast_ref::<ErrorMetadata>() {
            service_problem(metadata, situation)
        } else if let Some(connector) = cause.downcast_ref::<ConnectorError>() {
            connection_problem(connector, situation)
        } else {
            None
        }
    })
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// Every message of the chain below `error`, lower-cased, for the few facts
/// the SDK keeps only in words (which provider of the chain failed).
fn chain_text(error: &(dyn StdError + 'static)) -> String {
    chain(error)
        .map(|e| e.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn sso_login(situation: &Situation) -> String {
    match &situation.profile {
        Some(profile) => format!("aws sso login --profile {profile}"),
        None => "aws sso login --profile NAME".to_owned(),
    }
}

fn credentials_problem(error: &CredentialsError, situation: &Situation) -> Diagnosis {
    let text = chain_text(error);
    let profile = situation
        .profile
        .as_deref()
        .map_or(String::new(), |p| format!(" (profile `{p}`)"));
    if text.contains("sso") {
        return Diagnosis {
            problem: format!(
                "the AWS SSO session could not provide credentials{profile}: it has expired or \
                 was never started"
            ),
            remedy: format!(
                "run `{}`, then run this command again",
                sso_login(situation)
            ),
        };
    }
    match error {
        CredentialsError::CredentialsNotLoaded(_) => Diagnosis {
            problem: format!("no AWS credentials found{profile}"),
            remedy: match &situation.profile {
                Some(name) => format!(
                    "check that profile `{name}` is in ~/.aws/config with credentials \
                     (`aws configure list-profiles`), or set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY"
                ),
                None => "set AWS_PROFILE to a profile of ~/.aws/config (for SSO, run `aws sso \
                         login` first), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    .to_owned(),
            },
        },
        CredentialsError::ProviderTimedOut(_) if text.contains("imds") => Diagnosis {
            problem: "no AWS credentials found: the EC2 instance metadata service (IMDS) did \
                      not answer"
                .to_owned(),
            remedy: "off EC2, set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; \
                     on EC2, give the instance a role"
                .to_owned(),
        },
        _ if text.contains("imds") => Diagnosis {
            problem: "no AWS credentials found: the EC2 instance metadata service (IMDS) \
                      refused or could not be reached"
                .to_owned(),
            remedy: "off EC2, set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                     (and AWS_EC2_METADATA_DISABLED=true to skip IMDS); on EC2, give the \
                     instance a role"
                .to_owned(),
        },
        CredentialsError::InvalidConfiguration(_) => Diagnosis {
            problem: format!(
                "the AWS configuration is invalid{profile}: {}",
                innermost(error)
            ),
            remedy: "fix ~/.aws/config or ~/.aws/credentials (`aws configure list` shows what \
                     is used)"
                .to_owned(),
        },
        _ => Diagnosis {
            problem: format!(
                "AWS credentials could not be loaded{profile}: {}",
                innermost(error)
            ),
            remedy: "check the profile with `aws sts get-caller-identity`".to_owned(),
        },
    }
}

/// The last message of the chain: the most specific one.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    chain(error)
        .last()
        .map_or_else(String::new, ToString::to_string)
}

fn service_problem(metadata: &ErrorMetadata, situation: &Situation) -> Option<Diagnosis> {
    let code = metadata.code()?;
    let message = metadata.message().unwrap_or_default();
    match code {
        // IAM's wording, the same in every service:
        // https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthorizationError"
        | "UnauthorizedAccess" => Some(access_denied(message)),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            Some(Diagnosis {
                problem: "the AWS credentials have expired".to_owned(),
                remedy: format!(
                    "refresh them (for SSO: `{}`) and run this command again",
                    sso_login(situation)
                ),
            })
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "InvalidSignatureException" => Some(Diagnosis {
            problem: format!("AWS does not accept these credentials ({code})"),
            remedy: "the access key is wrong, deleted or for another partition: check it with \
                     `aws sts get-caller-identity`"
                .to_owned(),
        }),
        // The SDK retried these already (standard mode, 3 attempts).
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "RequestThrottled"
        | "PriorRequestNotComplete" => Some(Diagnosis {
            problem: format!("AWS throttled the call ({code}), still after the SDK's retries"),
            remedy: "another process may be calling the same API; wait a minute and run \
                         this command again"
                .to_owned(),
        }),
        _ => None,
    }
}

/// "User: ARN is not authorized to perform: ACTION on resource: RESOURCE
/// [because …]" names who lacked which right on what; said back in that order.
fn access_denied(message: &str) -> Diagnosis {
    let parsed = message
        .split_once("User: ")
        .and_then(|(_, rest)| rest.split_once(" is not authorized to perform: "))
        .map(|(principal, rest)| {
            let (action, resource) = match rest.split_once(" on resource: ") {
                Some((action, resource)) => (action, Some(resource)),
                None => (rest, None),
            };
            let resource = resource.map(|r| {
                r.split_once(" because ")
                    .map_or(r, |(r, _)| r)
                    .trim_end_matches('.')
            });
            let action = action
                .split_once(" because ")
                .map_or(action, |(a, _)| a)
                .trim_end_matches('.');
            (
                principal.to_owned(),
                action.to_owned(),
                resource.map(str::to_owned),
            )
        });
    match parsed {
        Some((principal, action, resource)) => Diagnosis {
            problem: format!(
                "access denied: {principal} may not call {action}{}",
                resource.map_or(String::new(), |r| format!(" on {r}"))
            ),
            remedy: format!(
                "grant {action} to that role or user (or an administrator can), or run with \
                 credentials that have it"
            ),
        },
        None => Diagnosis {
            problem: format!("access denied: {message}"),
            remedy: "the credentials in use lack a permission this command needs; run with \
                     `--verbose` to see which call, and grant it"
                .to_owned(),
        },
    }
}

fn connection_problem(error: &ConnectorError, situation: &Situation) -> Option<Diagnosis> {
    if !(error.is_io() || error.is_timeout()) {
        return None;
    }
    let target = situation
        .endpoint
        .as_deref()
        .map_or("AWS".to_owned(), |e| format!("{e} (AWS_ENDPOINT_URL)"));
    let why = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        innermost(error)
    };
    Some(Diagnosis {
        problem: format!("could not reach {target}: {why}"),
        remedy: match &situation.endpoint {
            Some(_) => "is the emulator or proxy running there? unset AWS_ENDPOINT_URL to \
                        reach AWS itself"
                .to_owned(),
            None => "check the network connection (a proxy: HTTPS_PROXY) and the region".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    /// An error from a real client call, as a command would see it.
    async fn describe_stacks_failing_with(code: &str, message: &str) -> Box<dyn StdError> {
        let (code, message) = (code.to_owned(), message.to_owned());
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(move || {
            DescribeStacksError::generic(
                ErrorMetadata::builder()
                    .code(code.clone())
                    .message(message.clone())
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::Sequential, [&rule]);
        let error = client.describe_stacks().send().await.unwrap_err();
        Box::new(error)
    }

    #[tokio::test]
    async fn access_denied_names_the_principal_the_action_and_the_resource() {
        let error = describe_stacks_failing_with(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ana is not authorized to perform: \
             cloudformation:DescribeStacks on resource: \
             arn:aws:cloudformation:eu-west-1:123456789012:stack/shop/* because no \
             identity-based policy allows the cloudformation:DescribeStacks action",
        )
        .await;
        let diagnosis = diagnose(error.as_ref(), &Situation::default()).unwrap();
        assert_eq!(
            diagnosis.problem,
            "access denied: arn:aws:iam::123456789012:user/ana may not call \
             cloudformation:DescribeStacks on \
             arn:aws:cloudformation:eu-west-1:123456789012:stack/shop/*"
        );
        assert!(
            diagnosis
                .remedy
                .starts_with("grant cloudformation:DescribeStacks")
        );
    }

    #[tokio::test]
    async fn an_access_denied_without_iam_wording_is_said_as_it_came() {
        let error = describe_stacks_failing_with("AccessDeniedException", "Access denied").await;
        let diagnosis = diagnose(error.as_ref(), &Situation::default()).unwrap();
        assert_eq!(diagnosis.problem, "access denied: Access denied");
    }

    #[tokio::test]
    async fn throttling_and_expired_or_foreign_credentials_say_what_to_do() {
        let situation = Situation {
            profile: Some("shop-admin".into()),
            ..Situation::default()
        };
        for (code, problem, remedy) in [
            (
                "Throttling",
                "AWS throttled the call (Throttling)",
                "wait a minute",
            ),
            (
                "ExpiredToken",
                "the AWS credentials have expired",
                "aws sso login --profile shop-admin",
            ),
            (
                "InvalidClientTokenId",
                "AWS does not accept these credentials",
                "get-caller-identity",
            ),
        ] {
            let error = describe_stacks_failing_with(code, "whatever the service says").await;
            let diagnosis = diagnose(error.as_ref(), &situation).unwrap();
            assert!(
                diagnosis.problem.starts_with(problem),
                "{code}: {diagnosis:?}"
            );
            assert!(diagnosis.remedy.contains(remedy), "{code}: {diagnosis:?}");
        }
    }

    #[tokio::test]
    async fn other_service_errors_keep_their_own_message() {
        let error = describe_stacks_failing_with("ValidationError", "Template format error").await;
        assert_eq!(diagnose(error.as_ref(), &Situation::default()), None);
        let text = report(error.as_ref(), &Situation::default(), false);
        assert!(text.starts_with("error: "), "{text}");
    }

    #[test]
    fn missing_credentials_and_an_expired_sso_session_are_told_apart() {
        let situation = Situation {
            profile: Some("dev".into()),
            ..Situation::default()
        };
        let none = CredentialsError::not_loaded("no providers in chain provided credentials");
        let diagnosis = diagnose(&none, &situation).unwrap();
        assert_eq!(
            diagnosis.problem,
            "no AWS credentials found (profile `dev`)"
        );
        assert!(
            diagnosis
                .remedy
                .contains("profile `dev` is in ~/.aws/config")
        );
        let diagnosis = diagnose(&none, &Situation::default()).unwrap();
        assert!(diagnosis.remedy.starts_with("set AWS_PROFILE"));

        let sso =
            CredentialsError::provider_error("the SSO token has expired and cannot be refreshed");
        let diagnosis = diagnose(&sso, &situation).unwrap();
        assert!(diagnosis.problem.contains("SSO session"), "{diagnosis:?}");
        assert!(diagnosis.remedy.contains("aws sso login --profile dev"));

        let imds = CredentialsError::provider_error(
            "failed to load IMDS session token: request forbidden",
        );
        let diagnosis = diagnose(&imds, &Situation::default()).unwrap();
        assert!(diagnosis.problem.contains("IMDS"), "{diagnosis:?}");
    }

    #[test]
    fn the_report_is_two_lines_unless_verbose() {
        let situation = Situation {
            failed_call: Some(FailedCall {
                service: "cloudformation".into(),
                operation: "DescribeStacks".into(),
            }),
            ..Situation::default()
        };
        let error = CredentialsError::not_loaded("no providers in chain provided credentials");
        let short = report(&error, &situation, false);
        assert_eq!(short.lines().count(), 2, "{short}");
        assert!(
            short.starts_with("error: no AWS credentials found (cloudformation DescribeStacks)"),
            "{short}"
        );
        let long = report(&error, &situation, true);
        assert!(long.contains("caused by: no providers in chain"), "{long}");
    }
}
