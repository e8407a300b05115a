//! The storage interface every resource is served through.
//!
//! A [`Backend`] stores the records of one resource. The HTTP layer holds each
//! as an `Arc<dyn Backend>` chosen at start-up by the resource map, so adding a data
//! source means implementing this trait, not touching a handler.
//!
//! Every record has a [`Version`], for optimistic concurrency: the HTTP layer
//! sends it as the `ETag` and a write given `If-Match` names the versions it
//! expects ([`Expected`]). Each backend checks the expectation and writes in
//! one atomic step, so of two clients writing with the same ETag exactly one
//! succeeds. The version is the API's, not the client's: it never appears in
//! a record, and stores that keep it inside the item ([`VERSION_ATTRIBUTE`])
//! strip it on the way out.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use thiserror::Error;

use crate::cursor::{Cursor, IndexPosition};
use crate::filter::compare_numbers;
use crate::plan::{IndexPlan, Plan};
use crate::query::{ListQuery, project};
use crate::record::{MAX_ITEM_BYTES, NewRecord, Record, RecordChanges, RecordId};

pub mod dynamodb;
#[cfg(feature = "embedded-store")]
pub mod embedded;
pub mod memory;
pub mod rules;

pub use crate::record::VERSION_ATTRIBUTE;

/// How many times a record has been written through the API: 1 after its
/// create, one more after each update that changed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u64);

impl Version {
    /// A record no API write has touched: written by another tool (a seed,
    /// the deployer, a script), or stored before versions existed.
    pub const UNWRITTEN: Version = Version(0);
    /// The version a create stores.
    pub const CREATED: Version = Version(1);

    pub const fn new(number: u64) -> Self {
        Self(number)
    }

    pub const fn number(self) -> u64 {
        self.0
    }

    /// The version after one more write. 2^64 writes do not happen; should
    /// they, the version stays at the maximum rather than wrapping to a
    /// version an old ETag could match.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A record with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub record: Record,
    pub version: Version,
}

/// A record as the JSON body a GET answers with, and its version.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordJson {
    pub body: Bytes,
    pub version: Version,
}

impl RecordJson {
    pub fn new(record: &Record, version: Version) -> Result<Self, BackendError> {
        Ok(Self {
            body: json_bytes(record)?,
            version,
        })
    }
}

/// One page of a list as the JSON array that answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageJson {
    pub body: Bytes,
    /// Where the next page starts; `None` when no further record may exist.
    pub next: Option<Cursor>,
}

impl PageJson {
    pub fn new(page: &Page) -> Result<Self, BackendError> {
        Ok(Self {
            body: json_bytes(&page.records)?,
            next: page.next.clone(),
        })
    }
}

/// `value` serialised. JSON values always serialise; a failure would be a
/// bug, reported as internal.
fn json_bytes(value: &impl serde::Serialize) -> Result<Bytes, BackendError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|error| BackendError::Internal(Box::new(error)))
}

/// What a write requires of the stored record's version (HTTP `If-Match`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expected {
    /// Any version: no `If-Match`, or `If-Match: *` (an update or delete
    /// requires an existing record anyway).
    #[default]
    Any,
    /// One of these versions; none at all when `If-Match` named only tags
    /// this API never issues, which no record can match.
    OneOf(Vec<Version>),
}

impl Expected {
    /// Whether a record at `current` meets the expectation.
    pub fn allows(&self, current: Version) -> bool {
        match self {
            Expected::Any => true,
            Expected::OneOf(versions) => versions.contains(&current),
        }
    }
}

impl fmt::Display for Expected {
    /// As ETags: `any version`, `"3"`, `"3" or "5"`, `no version this API issued`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Any => f.write_str("any version"),
            Expected::OneOf(versions) if versions.is_empty() => {
                f.write_str("no version this API issued")
            }
            Expected::OneOf(versions) => {
                for (i, version) in versions.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "\"{version}\"")?;
                }
                Ok(())
            }
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// Where the next page starts; `None` when no further record may exist.
    pub next: Option<Cursor>,
}

/// Why a backend operation failed.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("no record with id `{0}`")]
    NotFound(RecordId),
    #[error("a record with id `{0}` already exists")]
    AlreadyExists(RecordId),
    /// `If-Match` named versions the record is not at; nothing was written.
    #[error(
        "the record with id `{id}` has changed: If-Match expected ETag {expected}, \
         the current ETag is \"{current}\"; read it again and retry"
    )]
    PreconditionFailed {
        id: RecordId,
        expected: Expected,
        current: Version,
    },
    /// The record (after an update, the merged record) exceeds the item size
    /// limit every backend enforces: DynamoDB's 400 KB.
    #[error("the record would be larger than {MAX_ITEM_BYTES} bytes, the item size limit")]
    TooLarge,
    /// The store refused the request as invalid, for a reason the client can fix.
    #[error("the data store refused the request: {0}")]
    Invalid(String),
    /// The store is overloaded or briefly unreachable; the client may retry.
    #[error("the data store is temporarily unavailable")]
    Unavailable {
        retry_after_seconds: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else: a bug, a misconfiguration, a broken store. Logged in
    /// full, never shown to the client.
    #[error("backend failure: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The records of one resource.
///
/// Contract, shared by every implementation and checked by the same tests:
/// `create` never overwrites, `update` never creates and never changes the id,
/// `list` returns records in a stable order so that following `next` cursors
/// visits every record exactly once. Versions: a create stores
/// [`Version::CREATED`]; an update that sets at least one attribute stores the
/// next version, one that sets none writes nothing and keeps it; a write whose
/// [`Expected`] the stored version does not meet fails with
/// [`BackendError::PreconditionFailed`] and writes nothing, checked and
/// written atomically; a missing id is [`BackendError::NotFound`] whatever
/// was expected. No record a backend returns holds [`VERSION_ATTRIBUTE`], and
/// a backend ignores that attribute in what it is given.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// A page of records in a stable order. The query is valid: it was
    /// parsed at the edge (no filter on [`VERSION_ATTRIBUTE`], for one).
    async fn list(&self, query: &ListQuery) -> Result<Page, BackendError>;
    /// [`list`](Self::list) as the JSON array that answers it: by default the
    /// page serialised; the memory backend joins the bodies it keeps.
    async fn list_json(&self, query: &ListQuery) -> Result<PageJson, BackendError> {
        PageJson::new(&self.list(query).await?)
    }
    async fn get_versioned(&self, id: &RecordId) -> Result<Versioned, BackendError>;
    /// The record as the JSON body that answers a GET. By default its
    /// [`get_versioned`](Self::get_versioned) record serialised; a backend
    /// that keeps records serialised answers without copying or serialising.
    async fn get_json(&self, id: &RecordId) -> Result<RecordJson, BackendError> {
        let Versioned { record, version } = self.get_versioned(id).await?;
        RecordJson::new(&record, version)
    }
    /// Stores `new` at [`Version::CREATED`] if no record has its id; returns
    /// the stored record.
    async fn create_versioned(&self, new: NewRecord) -> Result<Versioned, BackendError>;
    /// Sets the given attributes on an existing record at an `expected`
    /// version; returns it after the change.
    async fn update_if(
        &self,
        id: &RecordId,
        changes: RecordChanges,
        expected: &Expected,
    ) -> Result<Versioned, BackendError>;
    /// Deletes an existing record at an `expected` version.
    async fn delete_if(&self, id: &RecordId, expected: &Expected) -> Result<(), BackendError>;
}

/// Where a store that keeps records in id order starts reading a list: after
/// the cursor's id for a scan; from the first record for a list served from
/// an index, whose order is not the id's.
pub fn start_after(query: &ListQuery) -> Option<&str> {
    match &query.plan {
        Plan::Scan => query.after.as_ref().map(Cursor::last_id),
        Plan::Index(_) => None,
    }
}

/// Builds a page from records in id order, read from [`start_after`]:
/// skips records failing a filter, projects `fields`, stops at `limit`; for
/// a list served from an index, in the index's order. The stores that keep
/// records sorted (memory, embedded) share this, so they cannot disagree on
/// paging.
pub fn paginate<K, R>(ordered: impl IntoIterator<Item = (K, R)>, query: &ListQuery) -> Page
where
    K: Borrow<RecordId>,
    R: Borrow<Record>,
{
    let (selected, next) = select_page(ordered, query, |record| record.borrow());
    let records = selected
        .iter()
        .map(|record| match &query.fields {
            Some(fields) => project(record.borrow(), fields),
            None => record.borrow().clone(),
        })
        .collect();
    Page { records, next }
}

/// [`paginate`]'s selection, before any projection: the entries of a page
/// (`record_of` gives each one's record) and the next page's cursor.
pub fn select_page<K, T>(
    ordered: impl IntoIterator<Item = (K, T)>,
    query: &ListQuery,
    record_of: impl Fn(&T) -> &Record,
) -> (Vec<T>, Option<Cursor>)
where
    K: Borrow<RecordId>,
{
    match &query.plan {
        Plan::Scan => select_scan_page(ordered, query, record_of),
        Plan::Index(plan) => select_index_page(ordered, query, plan, record_of),
    }
}

fn select_scan_page<K, T>(
    ordered: impl IntoIterator<Item = (K, T)>,
    query: &ListQuery,
    record_of: impl Fn(&T) -> &Record,
) -> (Vec<T>, Option<Cursor>)
where
    K: Borrow<RecordId>,
{
    let mut selected = Vec::new();
    let mut ordered = ordered.into_iter();
    for (id, entry) in ordered.by_ref() {
        let record = record_of(&entry);
        if !query.filters.iter().all(|filter| filter.matches(record)) {
            continue;
        }
        selected.push(entry);
        if selected.len() == query.limit {
            // A full page ending on the last record has no successor.
            let next = ordered
                .next()
                .is_some()
                .then(|| Cursor::after(id.borrow().as_str()));
            return (selected, next);
        }
    }
    (selected, None)
}

/// A page of a list served from an index, computed from every record: those
/// the index holds (its key attributes present, of their declared types)
/// that meet every filter, ordered by the sort key and then id (reversed
/// when descending), from after the cursor's position. What DynamoDB's Query
/// on the index answers.
fn select_index_page<K, T>(
    records: impl IntoIterator<Item = (K, T)>,
    query: &ListQuery,
    plan: &IndexPlan,
    record_of: impl Fn(&T) -> &Record,
) -> (Vec<T>, Option<Cursor>)
where
    K: Borrow<RecordId>,
{
    let sort_key = plan.index.sort_key.as_ref().map(|key| key.name.as_str());
    let mut under: Vec<(Option<Value>, String, T)> = records
        .into_iter()
        .filter_map(|(id, entry)| {
            let record = record_of(&entry);
            if !plan.index.holds(record)
                || !query.filters.iter().all(|filter| filter.matches(record))
            {
                return None;
            }
            let sort = sort_key.and_then(|name| record.get(name)).cloned();
            Some((sort, id.borrow().as_str().to_owned(), entry))
        })
        .collect();
    under.sort_by(|(a_sort, a_id, _), (b_sort, b_id, _)| {
        index_order((a_sort.as_ref(), a_id), (b_sort.as_ref(), b_id))
    });
    if plan.descending {
        under.reverse();
    }
    if let Some(cursor) = &query.after {
        let at = (
            cursor
                .index_position()
                .and_then(|position| position.sort.as_ref()),
            cursor.last_id(),
        );
        let after = if plan.descending {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        under.retain(|(sort, id, _)| index_order((sort.as_ref(), id), at) == after);
    }
    let more = under.len() > query.limit;
    under.truncate(query.limit);
    let next = more.then(|| under.last()).flatten().map(|(sort, id, _)| {
        Cursor::in_index(
            id,
            IndexPosition {
                index: plan.index.name.clone(),
                sort: sort.clone(),
            },
        )
    });
    (under.into_iter().map(|(_, _, entry)| entry).collect(), next)
}

/// The order of records in an index: by the sort key's value (strings by
/// their UTF-8 bytes, numbers as numbers, as DynamoDB orders keys), then by
/// id.
fn index_order(a: (Option<&Value>, &str), b: (Option<&Value>, &str)) -> Ordering {
    let by_sort = match (a.0, b.0) {
        (Some(Value::String(a)), Some(Value::String(b))) => a.as_bytes().cmp(b.as_bytes()),
        (Some(Value::Number(a)), Some(Value::Number(b))) => {
            compare_numbers(a, b).unwrap_or(Ordering::Equal)
        }
        // One index holds one type per key (`IndexConfig::holds`).
        _ => Ordering::Equal,
    };
    by_sort.then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
}
