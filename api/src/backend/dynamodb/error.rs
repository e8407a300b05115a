//! DynamoDB's failures as [`BackendError`]s.
//!
//! Only the outcomes a client can act on get their own variant: a write too
//! large for an item, a value DynamoDB cannot store, and throttling (which
//! the SDK has already retried with backoff by the time we see it). Every
//! other failure is internal: a missing table, a denied permission, a
//! request this backend built wrong. Those travel as a [`TableError`], so
//! the one log line of the request names the table and the operation.
//!
//! `ConditionalCheckFailedException` is not mapped here: what a failed
//! condition means (the id exists, the id is missing) depends on the
//! operation, so each operation matches it on the SDK's typed error.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;

use crate::backend::BackendError;

/// A DynamoDB call on a table failed; the SDK's error is the source.
#[derive(Debug, Error)]
#[error("DynamoDB {operation} on table `{table}` failed")]
pub struct TableError {
    pub table: String,
    /// The DynamoDB operation, as AWS names it: `GetItem`, `Scan`, ...
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl TableError {
    pub fn new(
        table: &str,
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            table: table.to_owned(),
            operation,
            source: source.into(),
        }
    }
}

/// What a client is told to wait before retrying a throttled request. The
/// SDK has spent its own retries; a second is DynamoDB's token refill tick.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Error codes meaning "too many requests right now", after the SDK's retries.
/// `TransactionConflictException` is here too: another writer's transaction
/// holds the item, and it clears as soon as that transaction ends.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
];

/// Fragments of the `ValidationException` messages DynamoDB answers for a
/// value the client sent (in a record or a filter). Any other validation
/// failure is a request this backend built wrong: internal, not the client's.
const CLIENT_VALUE_REFUSALS: &[&str] = &[
    // A number beyond DynamoDB's range (magnitude 1E-130 to 9.99E+125) or
    // precision (38 significant digits), or an exponent it cannot read.
    "Number overflow",
    "Number underflow",
    "significant digits",
    "cannot be converted to a numeric value",
    // Documents nested deeper than 32 levels.
    "Nesting Levels have exceeded",
    // An update setting so many attributes that its SET expression passes
    // DynamoDB's 4 KB expression limit.
    "Expression size has exceeded",
    // A filter operand DynamoDB does not accept for its operator.
    "Incorrect operand type",
];

/// What a client is told to wait when the index a list reads is still being
/// built: backfilling takes minutes to hours, so asking every second would
/// only add load.
pub const INDEX_BUILDING_RETRY_AFTER_SECONDS: u64 = 30;

/// How DynamoDB refuses a Query on a global secondary index that an
/// UpdateTable added and is still filling from the table (`IndexStatus`
/// CREATING, `Backfilling` true): `Cannot read from backfilling global
/// secondary index: <name>`. CloudFormation does not wait for the backfill
/// when it adds an index to a table, so the function can be asked for such
/// a list before the index can serve it: a 503 with `Retry-After`, not a 500.
fn is_index_backfilling(message: &str) -> bool {
    message.contains("backfilling")
}

/// How DynamoDB said it refused an item over 400 KB: `Item size has exceeded
/// the maximum allowed size` (PutItem), `Item size to update has exceeded the
/// maximum allowed size` (UpdateItem).
fn is_item_too_large(message: &str) -> bool {
    message.starts_with("Item size") && message.contains("exceeded the maximum allowed size")
}

/// The outcome a failure means for the client.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    TooLarge,
    Invalid(String),
    Unavailable,
    IndexBuilding,
    Internal,
}

fn classify_service_error(code: Option<&str>, message: Option<&str>) -> Verdict {
    let message = message.unwrap_or_default();
    match code {
        Some("ValidationException") if is_item_too_large(message) => Verdict::TooLarge,
        Some("ValidationException") if is_index_backfilling(message) => Verdict::IndexBuilding,
        Some("ValidationException")
            if CLIENT_VALUE_REFUSALS
                .iter()
                .any(|fragment| message.contains(fragment)) =>
        {
            Verdict::Invalid(message.to_owned())
        }
        Some(code) if THROTTLING_CODES.contains(&code) => Verdict::Unavailable,
        _ => Verdict::Internal,
    }
}

fn classify<E, R>(error: &SdkError<E, R>) -> Verdict
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(context) => {
            classify_service_error(context.err().code(), context.err().message())
        }
        // The SDK's retries ran out of time: DynamoDB is slow or out of
        // reach right now. A connection refused or a bad endpoint is not
        // transient, and stays internal.
        SdkError::TimeoutError(_) => Verdict::Unavailable,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Verdict::Unavailable,
        _ => Verdict::Internal,
    }
}

/// The [`BackendError`] for a failed DynamoDB call, `operation` on `table`.
pub fn backend_error<E, R>(
    table: &str,
    operation: &'static str,
    error: SdkError<E, R>,
) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match classify(&error) {
        Verdict::TooLarge => BackendError::TooLarge,
        Verdict::Invalid(message) => BackendError::Invalid(message),
        Verdict::Unavailable => BackendError::Unavailable {
            retry_after_seconds: RETRY_AFTER_SECONDS,
            source: Box::new(TableError::new(table, operation, error)),
        },
        Verdict::IndexBuilding => BackendError::Unavailable {
            retry_after_seconds: INDEX_BUILDING_RETRY_AFTER_SECONDS,
            source: Box::new(TableError::new(table, operation, error)),
        },
        Verdict::Internal => {
            BackendError::Internal(Box::new(TableError::new(table, operation, error)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, message: &str, expected: Verdict) {
        assert_eq!(
            classify_service_error(Some(code), Some(message)),
            expected,
            "{code}: {message}"
        );
    }

    #[test]
    fn service_errors_by_code_and_message() {
        check(
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
            Verdict::TooLarge,
        );
        check(
            "ValidationException",
            "Item size to update has exceeded the maximum allowed size",
            Verdict::TooLarge,
        );
        let overflow = "One or more parameter values were invalid: Number overflow. Attempting \
                        to store a number with magnitude larger than supported range";
        check(
            "ValidationException",
            overflow,
            Verdict::Invalid(overflow.into()),
        );
        let digits = "Attempting to store more than 38 significant digits in a Number";
        check(
            "ValidationException",
            digits,
            Verdict::Invalid(digits.into()),
        );
        let filter_operand = "ExpressionAttributeValues contains invalid value: Number underflow. \
                              Attempting to store a number with magnitude smaller than supported range \
                              for key :v0";
        check(
            "ValidationException",
            filter_operand,
            Verdict::Invalid(filter_operand.into()),
        );
        let nesting = "Nesting Levels have exceeded supported limits";
        check(
            "ValidationException",
            nesting,
            Verdict::Invalid(nesting.into()),
        );
        let wide_update = "Invalid UpdateExpression: Expression size has exceeded the maximum \
                           allowed size; expression size: 4200";
        check(
            "ValidationException",
            wide_update,
            Verdict::Invalid(wide_update.into()),
        );
        // Our own mistakes are not the client's to fix.
        check(
            "ValidationException",
            "Invalid FilterExpression: Syntax error; token: \")\", near: \"#f0)\"",
            Verdict::Internal,
        );
        check(
            "ValidationException",
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#f9}",
            Verdict::Internal,
        );
        check(
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
            Verdict::Unavailable,
        );
        check("ThrottlingException", "Rate exceeded", Verdict::Unavailable);
        check(
            "ValidationException",
            "Cannot read from backfilling global secondary index: users-by-gender",
            Verdict::IndexBuilding,
        );
        check(
            "RequestLimitExceeded",
            "Throughput exceeds the current throughput limit for your account.",
            Verdict::Unavailable,
        );
        check(
            "ResourceNotFoundException",
            "Requested resource not found",
            Verdict::Internal,
        );
        check(
            "AccessDeniedException",
            "User is not authorized to perform: dynamodb:PutItem",
            Verdict::Internal,
        );
        check(
            "InternalServerError",
            "Internal server error",
            Verdict::Internal,
        );
        assert_eq!(classify_service_error(None, None), Verdict::Internal);
    }
}
