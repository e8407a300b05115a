//! A list's reads: a Scan of the table, or a Query of a secondary index
//! when the list was planned on one (`crate::plan`), each filling a page
//! the same way ([`DynamoDbBackend::fill_page`]).

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoDbBackend;
use super::attribute::{Item, from_attribute_value, to_attribute_value};
use super::error::backend_error;
use super::expression::{IndexQueryExpressions, ScanExpressions};
use crate::backend::{BackendError, Page};
use crate::cursor::{Cursor, IndexPosition};
use crate::plan::IndexPlan;
use crate::query::{ListQuery, project};
use crate::record::{ID_FIELD, Record};

/// Most calls (Scans, or Queries of an index) one filtered page makes. A
/// filter that matches rarely would otherwise read the whole table within one
/// request; with this bound
/// the page comes back short (possibly empty) with a cursor to go on from,
/// and a request costs at most this many 1 MB reads.
pub const MAX_SCANS_PER_PAGE: usize = 10;

/// Most items one call of a filtered page evaluates (its `Limit`). DynamoDB
/// also stops each call at 1 MB of items read.
pub const MAX_ITEMS_PER_FILTERED_SCAN: usize = 1000;

impl DynamoDbBackend {
    /// A list's page by Scan (see [`crate::backend::Backend::list`]).
    pub(super) async fn scan_page(&self, query: &ListQuery) -> Result<Page, BackendError> {
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
    pub(super) async fn index_page(
        &self,
        query: &ListQuery,
        plan: &IndexPlan,
    ) -> Result<Page, BackendError> {
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
}

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

/// The `Limit` of the next Scan of a filtered page that still has `room`
/// records to fill, after `evaluated` items gave `matched` matches.
///
/// The first Scan reads `room` items, as an unfiltered page would. After
/// that, the match rate so far predicts how many items hold `room` more
/// matches; counting one match more than seen keeps the estimate finite
/// while nothing has matched yet, and grows each next Scan geometrically.
/// Never fewer than `room`, never more than [`MAX_ITEMS_PER_FILTERED_SCAN`].
pub(super) fn filtered_scan_limit(room: usize, evaluated: usize, matched: usize) -> usize {
    let estimate = room
        .saturating_mul(evaluated.saturating_add(1))
        .div_ceil(matched + 1);
    estimate.clamp(room, MAX_ITEMS_PER_FILTERED_SCAN.max(room))
}
