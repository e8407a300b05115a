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
//! the number attribute [`VERSION_ATTRIBUTE`] and never shows it in a record.
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
//! every expression with placeholders; `error` maps DynamoDB's failures.
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
use crate::cursor::{Cursor, IndexPosition};
use crate::plan::{IndexPlan, Plan};
use crate::query::{ListQuery, project};
use crate::record::{ID_FIELD, NewRecord, Record, RecordChanges, RecordId};

pub mod attribute;
mod error;
mod expression;

pub use error::TableError;

use attribute::{
    Item, from_attribute_value, item_to_record, item_version, to_attribute_value, versioned_item,
};
use error::backend_error;
use expression::{
    ID_ABSENT, IndexQueryExpressions, ScanExpressions, UpdateExpressions, WriteCondition, id_name,
};

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

/// Most Scan calls one filtered page makes. A filter that matches rarely
/// would otherwise scan the whole table within one request; with this bound
/// the page comes back short (possibly empty) with a cursor to go on from,
/// and a request costs at most this many 1 MB reads.
pub const MAX_SCANS_PER_PAGE: usize = 10;

/// Most items one Scan of a filtered page evaluates (its `Limit`). DynamoDB
/// also stops each Scan at 1 MB of items read.
pub const MAX_ITEMS_PER_FILTERED_SCAN: usize = 1000;

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

    /// A list's page by Scan (see [`Backend::list`]).
    async fn scan_page(&self, query: &ListQuery) -> Result<Page, BackendError> {
        let expressions = ScanExpressions::new(query.fields.as_deref(), &query.filters);
        let start_key = query
            .after
            .as_ref()
            .map(|cursor| Self::key(cursor.last_id()));
        self.fill_page(query, &ListRead::Scan(&expressions), start_key)
            .await
    }

    /// A list's page by Query on a secondary index: the key condition names
    /// the partition key's value and the sort key's condition, the other
    /// filters are the FilterExpression, and the index's order (descending
    /// with `ScanIndexForward = false`) is the page's.
    ///
    /// Without a filter expression one Query with `Limit = limit + 1` makes
    /// the page: it reads at most one item more than it lists, and that
    /// item only says whether a next page exists, so the last page has no
    /// cursor. With one, Queries go on from `LastEvaluatedKey` as the Scan
    /// of a filtered list does, at most [`MAX_SCANS_PER_PAGE`] of them.
    ///
    /// A global secondary index has no consistent reads (Query API
    /// reference, ConsistentRead): such a list may miss a write for a moment.
    async fn index_page(&self, query: &ListQuery, plan: &IndexPlan) -> Result<Page, BackendError> {
        let expressions = IndexQueryExpressions::new(query.fields.as_deref(), plan);
        let start_key = query
            .after
            .as_ref()
            .map(|cursor| self.index_start_key(cursor, plan))
            .transpose()?;
        self.fill_page(query, &ListRead::Index(plan, &expressions), start_key)
            .await
    }

    /// The page loop a Scan and a Query share.
    ///
    /// Unfiltered, one call asks for the room left (a Query one item more,
    /// to know whether another page follows) and makes the page. Filtered,
    /// DynamoDB applies the filter after `Limit` counted the items it read,
    /// so one call may match few or none: the page keeps reading until it
    /// holds `limit` matches or the items end, at most [`MAX_SCANS_PER_PAGE`]
    /// calls, each after the first reading as many items as the match rate
    /// so far says the missing matches need (`filtered_scan_limit`). When a
    /// call finds more than the page has room for, the page keeps the first
    /// ones and its cursor is after the last kept, so the next page starts
    /// with the others.
    async fn fill_page(
        &self,
        query: &ListQuery,
        list: &ListRead<'_>,
        mut start_key: Option<Item>,
    ) -> Result<Page, BackendError> {
        let filtered = list.filtered();
        let mut records = Vec::with_capacity(query.limit);
        let mut evaluated = 0;
        let mut calls = 0;
        loop {
            let room = query.limit - records.len();
            let limit = if filtered {
                filtered_scan_limit(room, evaluated, records.len())
            } else {
                room + list.lookahead()
            };
            let output = self
                .read(
                    list,
                    i32::try_from(limit).unwrap_or(i32::MAX),
                    start_key.take(),
                )
                .await?;
            calls += 1;
            evaluated += usize::try_from(output.scanned).unwrap_or_default();

            let mut items = output.items;
            if items.len() > room {
                items.truncate(room);
                let next = items
                    .last()
                    .map(|last| self.cursor_in(list, last))
                    .transpose()?;
                self.push_records(&mut records, items, query)?;
                return Ok(Page { records, next });
            }
            self.push_records(&mut records, items, query)?;

            let Some(last_evaluated) = output.last_evaluated else {
                return Ok(Page {
                    records,
                    next: None,
                });
            };
            if !filtered || records.len() == query.limit || calls == MAX_SCANS_PER_PAGE {
                let next = Some(self.cursor_in(list, &last_evaluated)?);
                return Ok(Page { records, next });
            }
            start_key = Some(last_evaluated);
        }
    }

    /// One Scan or Query of a list's page.
    async fn read(
        &self,
        list: &ListRead<'_>,
        limit: i32,
        start_key: Option<Item>,
    ) -> Result<Read, BackendError> {
        match list {
            ListRead::Scan(expressions) => {
                let output = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    // Like the other backends, a list shows every write that
                    // returned before it.
                    .consistent_read(true)
                    .limit(limit)
                    .set_exclusive_start_key(start_key)
                    .set_projection_expression(expressions.projection.clone())
                    .set_filter_expression(expressions.filter.clone())
                    .set_expression_attribute_names(expressions.names.clone())
                    .set_expression_attribute_values(expressions.values.clone())
                    .send()
                    .await
                    .map_err(|error| backend_error(&self.table, "Scan", error))?;
                Ok(Read {
                    scanned: output.scanned_count,
                    items: output.items.unwrap_or_default(),
                    last_evaluated: output.last_evaluated_key,
                })
            }
            ListRead::Index(plan, expressions) => {
                let output = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(&plan.index.name)
                    .key_condition_expression(&expressions.key_condition)
                    .scan_index_forward(!plan.descending)
                    .limit(limit)
                    .set_exclusive_start_key(start_key)
                    .set_projection_expression(expressions.projection.clone())
                    .set_filter_expression(expressions.filter.clone())
                    .set_expression_attribute_names(expressions.names.clone())
                    .set_expression_attribute_values(expressions.values.clone())
                    .send()
                    .await
                    .map_err(|error| backend_error(&self.table, "Query", error))?;
                Ok(Read {
                    scanned: output.scanned_count,
                    items: output.items.unwrap_or_default(),
                    last_evaluated: output.last_evaluated_key,
                })
            }
        }
    }

    /// The cursor after `item` (a listed item, or a `LastEvaluatedKey`).
    fn cursor_in(&self, list: &ListRead<'_>, item: &Item) -> Result<Cursor, BackendError> {
        match list {
            ListRead::Scan(_) => self.cursor_after(item),
            ListRead::Index(plan, _) => self.index_cursor(item, plan),
        }
    }

    /// The `ExclusiveStartKey` of a Query resuming after `cursor`: the
    /// table's key and the index's keys of the last item a page covered.
    fn index_start_key(&self, cursor: &Cursor, plan: &IndexPlan) -> Result<Item, BackendError> {
        let mut key = Self::key(cursor.last_id());
        key.insert(
            plan.index.partition_key.name.clone(),
            to_attribute_value(&plan.partition.to_json()),
        );
        if let Some(sort_key) = &plan.index.sort_key {
            // Query planning accepted the cursor only with a sort value.
            let value = cursor
                .index_position()
                .and_then(|position| position.sort.as_ref())
                .ok_or_else(|| self.internal("Query", "an index cursor without its sort key"))?;
            key.insert(sort_key.name.clone(), to_attribute_value(value));
        }
        Ok(key)
    }

    /// The cursor after `item` (a listed item, or a `LastEvaluatedKey`) in
    /// the index's order: its id and its sort key value.
    fn index_cursor(&self, item: &Item, plan: &IndexPlan) -> Result<Cursor, BackendError> {
        let id = self.cursor_after(item)?;
        let sort = match &plan.index.sort_key {
            None => None,
            Some(key) => {
                let value = item.get(&key.name).cloned().ok_or_else(|| {
                    self.internal(
                        "Query",
                        format!("an item of the index lacks `{}`", key.name),
                    )
                })?;
                Some(
                    from_attribute_value(value)
                        .map_err(|unreadable| self.internal("Query", unreadable))?,
                )
            }
        };
        Ok(Cursor::in_index(
            id.last_id(),
            IndexPosition {
                index: plan.index.name.clone(),
                sort,
            },
        ))
    }

    /// The id of an item DynamoDB returned, to resume a list after it.
    fn cursor_after(&self, item: &Item) -> Result<Cursor, BackendError> {
        let id = match item.get(ID_FIELD) {
            Some(AttributeValue::S(id)) => id,
            other => {
                return Err(self.internal(
                    "Scan",
                    format!("an item's key attribute `id` is {other:?}, not a string"),
                ));
            }
        };
        // Any key: items other tools wrote may have ids this API would not
        // create, and a list must page past them all the same.
        Ok(Cursor::after(id))
    }

    /// Converts listed items to records, keeping only the requested fields
    /// (the Scan also projected `id`, for the cursor).
    fn push_records(
        &self,
        records: &mut Vec<Record>,
        items: Vec<Item>,
        query: &ListQuery,
    ) -> Result<(), BackendError> {
        for item in items {
            let record = self.record("Scan", item)?;
            records.push(match &query.fields {
                Some(fields) => project(&record, fields),
                None => record,
            });
        }
        Ok(())
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
    /// a table), from the item after the cursor's id
    /// ([`DynamoDbBackend::scan_page`]); a list planned on a secondary index
    /// is a Query on it ([`DynamoDbBackend::index_page`]). Both fill the page
    /// the same way (`fill_page`).
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

/// The `Limit` of the next Scan of a filtered page that still has `room`
/// records to fill, after `evaluated` items gave `matched` matches.
///
/// The first Scan reads `room` items, as an unfiltered page would. After
/// that, the match rate so far predicts how many items hold `room` more
/// matches; counting one match more than seen keeps the estimate finite
/// while nothing has matched yet, and grows each next Scan geometrically.
/// Never fewer than `room`, never more than [`MAX_ITEMS_PER_FILTERED_SCAN`].
/// How a list's page is read: by Scan, or by Query on an index.
enum ListRead<'a> {
    Scan(&'a ScanExpressions),
    Index(&'a IndexPlan, &'a IndexQueryExpressions),
}

impl ListRead<'_> {
    /// Whether a filter expression may leave read items out.
    fn filtered(&self) -> bool {
        match self {
            ListRead::Scan(expressions) => expressions.filter.is_some(),
            ListRead::Index(_, expressions) => expressions.filter.is_some(),
        }
    }

    /// The items an unfiltered call asks for beyond the room left: a Scan's
    /// `LastEvaluatedKey` already says whether more may follow; a Query
    /// reads one item more, so that the last full page has no cursor.
    fn lookahead(&self) -> usize {
        match self {
            ListRead::Scan(_) => 0,
            ListRead::Index(..) => 1,
        }
    }
}

/// What one Scan or Query of a page returned.
struct Read {
    items: Vec<Item>,
    /// DynamoDB's `ScannedCount`: the items it read (and billed).
    scanned: i32,
    last_evaluated: Option<Item>,
}

fn filtered_scan_limit(room: usize, evaluated: usize, matched: usize) -> usize {
    let estimate = room
        .saturating_mul(evaluated.saturating_add(1))
        .div_ceil(matched + 1);
    estimate.clamp(room, MAX_ITEMS_PER_FILTERED_SCAN.max(room))
}

#[cfg(test)]
mod tests;
