//! The `dynamodb` backend: one table per resource, hash key `id` (S).
//!
//! Each single-record request is exactly one DynamoDB call, whose condition
//! makes it atomic, so concurrent requests need no lock and no read first:
//!
//! | request           | call                                                        |
//! | ----------------- | ----------------------------------------------------------- |
//! | get               | `GetItem`, consistent: a record reads back once created     |
//! | create            | `PutItem` with `_version` 1 if `attribute_not_exists(id)`, else `AlreadyExists` |
//! | update            | `UpdateItem` `SET` the fields and `_version + 1` if the `WriteCondition` holds; `ALL_NEW` |
//! | update, no fields | `GetItem`, consistent: the record as it is, or `NotFound` (the version checked here) |
//! | delete            | `DeleteItem` if the `WriteCondition` holds                |
//! | list              | consistent `Scan`s, see [`DynamoDbBackend::list`]           |
//! | list, planned on an index | a `Query` on the index (eventually consistent): one, without other filters |
//!
//! Versions (optimistic concurrency): the API keeps each item's version in
//! the number attribute [`VERSION_ATTRIBUTE`](crate::record::VERSION_ATTRIBUTE)
//! and never shows it in a record.
//! The `WriteCondition` of an update or delete is `attribute_exists(id)`,
//! and with `If-Match` also a test of the version, so the check and the write
//! are one atomic call. When it fails, `ReturnValuesOnConditionCheckFailure =
//! ALL_OLD` returns the item as it was, if any: no item means `NotFound`, an
//! item means `PreconditionFailed` at its version; no second call is needed.
//! An item another tool wrote has no version attribute: it reads as version 0,
//! `If-Match: "0"` matches it, and its first update sets the attribute to 1.
//!
//! A create answers the record as sent; read back, DynamoDB may spell its
//! numbers differently (`5.50` as `5.5`), never with another value.
//!
//! [`attribute`] converts records to items and back; `expression` builds
//! every expression with placeholders; `list` reads a list's pages; `error`
//! maps DynamoDB's failures.
//! The 400 KB item limit is DynamoDB's own: this backend does not count
//! item sizes, it reports DynamoDB's refusal as [`BackendError::TooLarge`].

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_http_client::tls;

use super::{Backend, BackendError, Expected, Page, Version, Versioned, rules};
use crate::config::Operation;
use crate::plan::Plan;
use crate::query::ListQuery;
use crate::record::{ID_FIELD, NewRecord, Record, RecordChanges, RecordId};

pub mod attribute;
mod error;
mod expression;
mod list;

pub use error::TableError;
pub use list::{MAX_ITEMS_PER_FILTERED_SCAN, MAX_SCANS_PER_PAGE};

use attribute::{Item, item_to_record, item_version, versioned_item};
use error::backend_error;
use expression::{ID_ABSENT, UpdateExpressions, WriteCondition, id_name};

/// The DynamoDB actions, as IAM names them, that serving `operation` may
/// call: the table above, per operation. The deployer grants the Lambda's
/// role exactly these on each table, so a code path that starts calling
/// another action must say so here or be denied in Lambda (the emulator
/// enforces no IAM). `tests.rs` sends every variant of each operation through
/// the router and checks it calls nothing else.
pub fn item_actions(operation: Operation) -> &'static [&'static str] {
    match operation {
        Operation::List => &["dynamodb:Scan"],
        Operation::Get => &["dynamodb:GetItem"],
        Operation::Create => &["dynamodb:PutItem"],
        // An update that sets no field reads the record instead of writing.
        Operation::Update => &["dynamodb:UpdateItem", "dynamodb:GetItem"],
        Operation::Delete => &["dynamodb:DeleteItem"],
    }
}

/// The DynamoDB actions, as IAM names them, that a list served from a
/// secondary index calls, on the index (`table/<table>/index/<index>`): the
/// deployer grants them on each declared index of a resource that allows
/// `list`. IAM authorises a Query on an index against the index's ARN
/// ("Using IAM policy conditions for fine-grained access control", DynamoDB
/// developer guide).
pub const INDEX_LIST_ACTIONS: &[&str] = &["dynamodb:Query"];

/// The AWS configuration for DynamoDB: the standard chain (environment,
/// profiles, the Lambda execution role's variables, `AWS_ENDPOINT_URL`), over
/// an HTTPS client on rustls with ring. The SDK's default client uses aws-lc,
/// which is larger: ring keeps the Lambda zip under 3 MB.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}

/// The records of one resource in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoDbBackend {
    client: Client,
    table: String,
}

impl DynamoDbBackend {
    /// A backend over `table`, through a client built once per process.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(id: &str) -> Item {
        HashMap::from([(ID_FIELD.to_owned(), AttributeValue::S(id.to_owned()))])
    }

    /// An internal error of `operation` on this table, caused by `cause`.
    fn internal(
        &self,
        operation: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackendError {
        BackendError::Internal(Box::new(TableError::new(&self.table, operation, cause)))
    }

    fn record(&self, operation: &'static str, item: Item) -> Result<Record, BackendError> {
        item_to_record(item).map_err(|unreadable| self.internal(operation, unreadable))
    }

    fn version(&self, operation: &'static str, item: &Item) -> Result<Version, BackendError> {
        item_version(item).map_err(|unreadable| self.internal(operation, unreadable))
    }

    fn versioned(&self, operation: &'static str, item: Item) -> Result<Versioned, BackendError> {
        let version = self.version(operation, &item)?;
        let record = self.record(operation, item)?;
        Ok(Versioned { record, version })
    }

    /// What a failed [`WriteCondition`] means, from the item as it was
    /// (`ALL_OLD`): none, the id is missing; else its version is not expected.
    fn condition_failed(
        &self,
        operation: &'static str,
        id: &RecordId,
        expected: &Expected,
        old: Option<&Item>,
    ) -> BackendError {
        match old.map(|item| self.version(operation, item)).transpose() {
            Ok(current) => rules::refusal(id, current, expected),
            Err(unreadable) => unreadable,
        }
    }

    /// A consistent GetItem: the record as it is now, or `NotFound`.
    async fn get_item(&self, id: &RecordId) -> Result<Versioned, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| backend_error(&self.table, "GetItem", error))?;
        match output.item {
            Some(item) => self.versioned("GetItem", item),
            None => Err(BackendError::NotFound(id.clone())),
        }
    }
}

#[async_trait]
impl Backend for DynamoDbBackend {
    /// A planned scan reads in DynamoDB's key order (hash order, stable for
    /// a table), from the item after the cursor's id (`scan_page`); a list
    /// planned on a secondary index is a Query on it (`index_page`). Both
    /// fill the page the same way (`fill_page`, in `list.rs`).
    ///
    /// DynamoDB stops a call at 1 MB, so a page of large records may hold
    /// fewer than `limit` and still have a cursor; that also keeps a page
    /// near 1 MB, far from Lambda's 6 MB response limit. A page has a cursor
    /// only when more may follow: DynamoDB returned a `LastEvaluatedKey`, or
    /// the page left matches out.
    async fn list(&self, query: &ListQuery) -> Result<Page, BackendError> {
        match &query.plan {
            Plan::Scan => self.scan_page(query).await,
            Plan::Index(plan) => self.index_page(query, plan).await,
        }
    }

    async fn get_versioned(&self, id: &RecordId) -> Result<Versioned, BackendError> {
        self.get_item(id).await
    }

    async fn create_versioned(&self, new: NewRecord) -> Result<Versioned, BackendError> {
        // DynamoDB enforces its item size limit itself.
        let record = rules::record_to_create(new.record);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(versioned_item(&record, Version::CREATED)))
            .condition_expression(ID_ABSENT)
            .set_expression_attribute_names(Some(id_name()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Versioned {
                record,
                version: Version::CREATED,
            }),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(BackendError::AlreadyExists(new.id))
            }
            Err(error) => Err(backend_error(&self.table, "PutItem", error)),
        }
    }

    async fn update_if(
        &self,
        id: &RecordId,
        changes: RecordChanges,
        expected: &Expected,
    ) -> Result<Versioned, BackendError> {
        let expressions = rules::sets_something(&changes)
            .then(|| UpdateExpressions::set(changes.fields(), versions(expected)))
            .flatten();
        let Some(expressions) = expressions else {
            // Nothing to write: the read is the whole request, and checking
            // the version it returned is as atomic as the read.
            let current = self.get_item(id).await?;
            rules::check_version(id, Some(current.version), expected)?;
            return Ok(current);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id.as_str())))
            .update_expression(expressions.update)
            .condition_expression(expressions.condition)
            .set_expression_attribute_names(Some(expressions.names))
            .set_expression_attribute_values(Some(expressions.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes {
                Some(item) => self.versioned("UpdateItem", item),
                None => Err(self.internal("UpdateItem", "ALL_NEW returned no attributes")),
            },
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Err(self.condition_failed("UpdateItem", id, expected, failed.item()))
                }
                _ => Err(backend_error(&self.table, "UpdateItem", error)),
            },
        }
    }

    async fn delete_if(&self, id: &RecordId, expected: &Expected) -> Result<(), BackendError> {
        let condition = WriteCondition::new(versions(expected));
        let values = (!condition.values.is_empty()).then_some(condition.values);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id.as_str())))
            .condition_expression(condition.condition)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(failed)) => {
                    Err(self.condition_failed("DeleteItem", id, expected, failed.item()))
                }
                _ => Err(backend_error(&self.table, "DeleteItem", error)),
            },
        }
    }
}

/// The versions a [`WriteCondition`] tests: `None` for any.
fn versions(expected: &Expected) -> Option<&[Version]> {
    match expected {
        Expected::Any => None,
        Expected::OneOf(versions) => Some(versions),
    }
}

#[cfg(test)]
mod tests;
