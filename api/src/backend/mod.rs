//! The storage interface every resource is served through.
//!
//! A [`Backend`] stores the records of one resource. The HTTP layer holds each
//! as an `Arc<dyn Backend>` chosen at start-up by the mapper, so adding a data
//! source means implementing this trait, not touching a handler.

use std::borrow::Borrow;

use async_trait::async_trait;
use thiserror::Error;

use crate::cursor::Cursor;
use crate::query::{ListQuery, project};
use crate::record::{MAX_ITEM_BYTES, NewRecord, Record, RecordChanges, RecordId};

pub mod dynamodb;
pub mod embedded;
pub mod memory;

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
/// visits every record exactly once.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    async fn list(&self, query: &ListQuery) -> Result<Page, BackendError>;
    async fn get(&self, id: &RecordId) -> Result<Record, BackendError>;
    /// Stores `new` if no record has its id; returns the stored record.
    async fn create(&self, new: NewRecord) -> Result<Record, BackendError>;
    /// Sets the given attributes on an existing record; returns it after the change.
    async fn update(&self, id: &RecordId, changes: RecordChanges) -> Result<Record, BackendError>;
    async fn delete(&self, id: &RecordId) -> Result<(), BackendError>;
}

/// Builds a page from records in id order that start after the query's cursor:
/// skips records failing a filter, projects `fields`, stops at `limit`. The
/// stores that keep records sorted (memory, embedded) share this, so they
/// cannot disagree on paging.
pub fn paginate<K, R>(ordered: impl IntoIterator<Item = (K, R)>, query: &ListQuery) -> Page
where
    K: Borrow<RecordId>,
    R: Borrow<Record>,
{
    let mut page = Page::default();
    let mut ordered = ordered.into_iter();
    for (id, record) in ordered.by_ref() {
        let record = record.borrow();
        if !query.filters.iter().all(|filter| filter.matches(record)) {
            continue;
        }
        page.records.push(match &query.fields {
            Some(fields) => project(record, fields),
            None => record.clone(),
        });
        if page.records.len() == query.limit {
            // A full page ending on the last record has no successor.
            if ordered.next().is_some() {
                page.next = Some(Cursor::after(id.borrow()));
            }
            break;
        }
    }
    page
}
