//! What can go wrong driving a stack, in words for the person who ran
//! `deployer deploy`: what happened, to which stack, and what to do next.
//! The SDK's own errors stay attached as sources.

use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use thiserror::Error;

use super::report::OperationFailure;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A stack command that could not be carried out.
#[derive(Debug, Error)]
pub enum CloudFormationError {
    /// A CloudFormation call failed: permissions, throttling, a refused
    /// template, the network.
    #[error("CloudFormation {operation} failed for stack `{stack}`: {detail}")]
    Api {
        operation: &'static str,
        stack: String,
        /// The service's code and message, or the SDK's description.
        detail: String,
        #[source]
        source: BoxError,
    },

    #[error(
        "stack `{stack}` does not exist in this account and region; create it with `deployer \
         bootstrap` (or check --region and --stack-name)"
    )]
    StackNotFound { stack: String },

    #[error("stack `{stack}` is in {status}: {next_step}{}", reason_suffix(.reason))]
    CreationFailed {
        stack: String,
        status: String,
        reason: Option<String>,
        next_step: String,
    },

    #[error("stack `{stack}` is in UPDATE_ROLLBACK_FAILED: {next_step}{}", reason_suffix(.reason))]
    UpdateRollbackFailed {
        stack: String,
        reason: Option<String>,
        next_step: String,
    },

    #[error("stack `{stack}` is in {status}: {next_step}{}", reason_suffix(.reason))]
    NeedsAttention {
        stack: String,
        status: String,
        reason: Option<String>,
        next_step: String,
    },

    /// CloudFormation could not build the change set: a template or
    /// parameter error, a missing capability.
    #[error(
        "CloudFormation could not work out the changes to stack `{stack}` (change set \
         {change_set}): {reason}"
    )]
    ChangeSetFailed {
        stack: String,
        change_set: String,
        reason: String,
    },

    #[error(
        "the template is {size} bytes; CloudFormation takes at most {limit} bytes inline (a \
         larger one must be uploaded to S3 and passed by URL)"
    )]
    TemplateTooLarge { size: usize, limit: usize },

    #[error(
        "gave up after {} waiting for {activity} of stack `{stack}`{}; CloudFormation carries \
         on regardless: follow it with `deployer status`, or wait longer with `--timeout`",
        crate::time_text::duration(*.timeout),
        status_suffix(.status)
    )]
    Timeout {
        stack: String,
        /// What was awaited, e.g. "the deployment".
        activity: &'static str,
        timeout: Duration,
        /// The stack's (or change set's) status when we gave up.
        status: Option<String>,
    },

    #[error(
        "stack `{stack}` kept changing state (now {status}) while this command waited for it to \
         settle; run the command again"
    )]
    Unsettled { stack: String, status: String },

    /// The operation ran and failed: the stack's final status and every
    /// resource that failed, with its reason.
    #[error("{0}")]
    OperationFailed(Box<OperationFailure>),
}

fn reason_suffix(reason: &Option<String>) -> String {
    match reason {
        Some(reason) => format!(" (CloudFormation says: {reason})"),
        None => String::new(),
    }
}

fn status_suffix(status: &Option<String>) -> String {
    match status {
        Some(status) => format!(" (it is still {status})"),
        None => String::new(),
    }
}

/// Wraps an SDK error with the call and the stack it was for.
pub(crate) fn api_error<E, R>(
    operation: &'static str,
    stack: &str,
    error: SdkError<E, R>,
) -> CloudFormationError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // The service's own words, when it answered; otherwise what the SDK knows
    // (a timeout, a connection refused, a credentials problem), in full.
    let detail = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message.to_owned(),
        (Some(code), None) => code.to_owned(),
        (None, None) => DisplayErrorContext(&error).to_string(),
    };
    CloudFormationError::Api {
        operation,
        stack: stack.to_owned(),
        detail,
        source: Box::new(error),
    }
}

/// Whether `error` is CloudFormation saying the stack does not exist (a
/// `ValidationError`, as it has no dedicated code for that).
pub(crate) fn is_missing_stack<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    error.code() == Some("ValidationError")
        && error
            .message()
            .is_some_and(|message| message.contains("does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_wait_and_what_to_do() {
        let error = CloudFormationError::Timeout {
            stack: "demo".into(),
            activity: "the deployment",
            timeout: Duration::from_secs(1800),
            status: Some("UPDATE_IN_PROGRESS".into()),
        };
        assert_eq!(
            error.to_string(),
            "gave up after 30m waiting for the deployment of stack `demo` (it is still \
             UPDATE_IN_PROGRESS); CloudFormation carries on regardless: follow it with \
             `deployer status`, or wait longer with `--timeout`"
        );
    }

    #[test]
    fn a_failed_creation_explains_itself() {
        let error = CloudFormationError::CreationFailed {
            stack: "demo".into(),
            status: "ROLLBACK_COMPLETE".into(),
            reason: None,
            next_step: super::super::state::next_step("demo", "ROLLBACK_COMPLETE").unwrap(),
        };
        assert_eq!(
            error.to_string(),
            "stack `demo` is in ROLLBACK_COMPLETE: its first creation failed and CloudFormation \
             cannot update it; fix the cause, then run `deployer deploy --recreate` to delete it \
             and create it again"
        );
    }
}
