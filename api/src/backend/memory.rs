//! The `memory` backend: records in a process-local ordered map.
//!
//! For tests, demos and read-mostly reference data (the original's mocks). Its
//! contents live as long as the process; in Lambda that is one execution
//! environment, so writes are neither durable nor shared between instances.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use super::{Backend, BackendError, Page, paginate};
use crate::query::ListQuery;
use crate::record::{NewRecord, Record, RecordChanges, RecordId, fits_item_limit};

/// Records ordered by id, so a cursor (the last id of a page) resumes exactly.
///
/// A std `RwLock` is right here: it is never held across an `.await`, and
/// each critical section is a map lookup or a bounded page copy.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    records: RwLock<BTreeMap<RecordId, Record>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds seed records, keeping the first of any duplicated id.
    pub fn with_records(records: impl IntoIterator<Item = NewRecord>) -> Self {
        let mut map = BTreeMap::new();
        for new in records {
            map.entry(new.id).or_insert(new.record);
        }
        Self {
            records: RwLock::new(map),
        }
    }

    // A panic while holding the lock cannot leave a record half-written (every
    // write is one map operation), so a poisoned lock is still consistent.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<RecordId, Record>> {
        self.records.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<RecordId, Record>> {
        self.records.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn list(&self, query: &ListQuery) -> Result<Page, BackendError> {
        let records = self.read();
        let start = match &query.after {
            Some(cursor) => Bound::Excluded(cursor.last_id()),
            None => Bound::Unbounded,
        };
        Ok(paginate(
            records.range::<RecordId, _>((start, Bound::Unbounded)),
            query,
        ))
    }

    async fn get(&self, id: &RecordId) -> Result<Record, BackendError> {
        self.read()
            .get(id)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(id.clone()))
    }

    async fn create(&self, new: NewRecord) -> Result<Record, BackendError> {
        use std::collections::btree_map::Entry;
        if !fits_item_limit(&new.record) {
            return Err(BackendError::TooLarge);
        }
        match self.write().entry(new.id) {
            Entry::Occupied(existing) => Err(BackendError::AlreadyExists(existing.key().clone())),
            Entry::Vacant(slot) => Ok(slot.insert(new.record).clone()),
        }
    }

    async fn update(&self, id: &RecordId, changes: RecordChanges) -> Result<Record, BackendError> {
        let mut records = self.write();
        let record = records
            .get_mut(id)
            .ok_or_else(|| BackendError::NotFound(id.clone()))?;
        let mut updated = record.clone();
        changes.apply_to(&mut updated);
        if !fits_item_limit(&updated) {
            return Err(BackendError::TooLarge);
        }
        *record = updated;
        Ok(record.clone())
    }

    async fn delete(&self, id: &RecordId) -> Result<(), BackendError> {
        self.write()
            .remove(id)
            .map(drop)
            .ok_or_else(|| BackendError::NotFound(id.clone()))
    }
}
