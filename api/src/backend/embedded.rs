//! The local embedded store: `dynamodb` resources served from a database file
//! on the developer's machine.
//!
//! `make run` serves every `dynamodb` resource from here, so a local run never
//! writes to a real table by accident, and its data survives restarts. It
//! reproduces the semantics of the [`memory`](super::memory) backend exactly
//! (create never overwrites, update never creates, the same item size limit,
//! the same paging through [`paginate`]), so a client cannot tell them apart
//! except that these records are still there after a restart.
//!
//! The database is [redb]: pure Rust, so a checkout builds with no C toolchain
//! (the reason we chose it over SQLite), with ACID transactions and crash-safe
//! commits, and keys kept sorted, so a list cursor resumes with a range scan.
//!
//! Layout of the one file: a table per resource, `records/<resource>`, mapping
//! the id to the record as compact JSON (with `arbitrary_precision`, numbers
//! keep their decimal text, so a record round-trips byte for byte); and the
//! table `meta/seeded`, which names every resource whose seed has been written.
//! A record's version is stored as the last attribute of its JSON,
//! [`VERSION_ATTRIBUTE`], and removed on every read, so the record itself
//! round-trips unchanged; seeds and files written before versions existed
//! have no such attribute and are at [`Version::UNWRITTEN`]. A write checks
//! the version and writes inside one write transaction, so it is atomic.
//! The two prefixes keep metadata apart from resources whatever their names.
//!
//! redb is synchronous and a write commit fsyncs, so every transaction runs on
//! tokio's blocking pool, never on an async worker.
//!
//! [redb]: https://docs.rs/redb

use std::error::Error as StdError;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use super::{
    Backend, BackendError, Expected, Page, VERSION_ATTRIBUTE, Version, Versioned, paginate, rules,
    start_after,
};
use crate::query::ListQuery;
use crate::record::{InvalidId, NewRecord, Record, RecordChanges, RecordId};

/// Which resources have had their seed written: resource name → how many seed
/// records were stored. Written in the transaction that writes the seed, so a
/// resource is either seeded and marked, or neither.
const SEEDED: TableDefinition<&str, u64> = TableDefinition::new("meta/seeded");

/// Prefix of the table holding one resource's records.
const RECORDS_TABLE_PREFIX: &str = "records/";

/// The page cache redb may fill. Its default is 1 GiB; a developer's store is
/// small, and a local `api` should not grow to that beside an editor.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The table of one resource: id → record as compact JSON.
type RecordsTable<'name> = TableDefinition<'name, &'static str, &'static [u8]>;

/// A failure of the store itself (I/O, a corrupt file), as opposed to an answer
/// such as "not found". Reaches the client only as a 500.
type StoreFault = Box<dyn StdError + Send + Sync>;

/// One database file holding every resource's records.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    database: Arc<Database>,
    path: Arc<Path>,
}

/// Why the store could not be opened or seeded.
#[derive(Debug, Error)]
pub enum EmbeddedStoreError {
    #[error("cannot create the directory {} for the embedded store", dir.display())]
    CreateDirectory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the embedded store {} is open in another process; is another `api` process running?",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("cannot open the embedded store {}", path.display())]
    Open {
        path: PathBuf,
        source: DatabaseError,
    },
    #[error(
        "cannot write the seed of resource `{resource}` into the embedded store {}",
        path.display()
    )]
    Seed {
        path: PathBuf,
        resource: String,
        source: StoreFault,
    },
}

impl EmbeddedStore {
    /// Opens (creating if needed, with its parent directories) the database
    /// file at `path`. Only one process may have it open at a time.
    ///
    /// Blocks on disk I/O: call it at start-up, before serving.
    pub fn open(path: &Path) -> Result<Self, EmbeddedStoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| EmbeddedStoreError::CreateDirectory {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let database = Database::builder()
            .set_cache_size(CACHE_BYTES)
            // A plain open trusts the file and may panic on one damaged outside
            // redb; checking turns that into an error naming the file. The check
            // reads the whole file, which for a developer's store is quick.
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|source| match source {
                // redb locks the file; a second writer, in any redb version, is refused.
                DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                    EmbeddedStoreError::Locked {
                        path: path.to_owned(),
                    }
                }
                source => EmbeddedStoreError::Open {
                    path: path.to_owned(),
                    source,
                },
            })?;
        Ok(Self {
            database: Arc::new(database),
            path: path.into(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The backend of `resource`. On the first call ever for this resource in
    /// this file, `seed` is written into it; later calls (later runs) never
    /// seed again, so records deleted over HTTP stay deleted. Of seed records
    /// sharing an id, the first is kept, as in the memory backend.
    ///
    /// Blocks on disk I/O: call it at start-up, before serving.
    pub fn resource(
        &self,
        resource: &str,
        seed: Vec<NewRecord>,
    ) -> Result<EmbeddedBackend, EmbeddedStoreError> {
        let table = format!("{RECORDS_TABLE_PREFIX}{resource}");
        self.seed_once(resource, RecordsTable::new(&table), seed)
            .map_err(|source| EmbeddedStoreError::Seed {
                path: self.path.to_path_buf(),
                resource: resource.to_owned(),
                source,
            })?;
        Ok(EmbeddedBackend {
            database: Arc::clone(&self.database),
            path: Arc::clone(&self.path),
            resource: resource.into(),
            table: table.into(),
        })
    }

    /// Creates the resource's table and writes its seed, unless an earlier run did.
    fn seed_once(
        &self,
        resource: &str,
        table: RecordsTable<'_>,
        seed: Vec<NewRecord>,
    ) -> Result<(), StoreFault> {
        let transaction = self.database.begin_write()?;
        let newly_seeded = {
            let mut seeded = transaction.open_table(SEEDED)?;
            if seeded.get(resource)?.is_some() {
                false
            } else {
                // Opening the table creates it, so even an empty seed leaves a
                // table for reads to open.
                let mut records = transaction.open_table(table)?;
                let mut written: u64 = 0;
                for new in seed {
                    if records.get(new.id.as_str())?.is_none() {
                        let json = encode(&new.record, Version::UNWRITTEN)?;
                        records.insert(new.id.as_str(), json.as_slice())?;
                        written += 1;
                    }
                }
                seeded.insert(resource, written)?;
                true
            }
        };
        // A seeded resource's table exists already: no commit, no fsync.
        if newly_seeded {
            transaction.commit()?;
        } else {
            transaction.abort()?;
        }
        Ok(())
    }
}

/// The records of one resource in the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    database: Arc<Database>,
    /// The database file, named in every error.
    path: Arc<Path>,
    resource: Arc<str>,
    /// The name of the resource's table in the file.
    table: Arc<str>,
}

/// Why the store failed an operation: logged in full, never shown to the client.
#[derive(Debug, Error)]
#[error("embedded store {}: {operation} on resource `{resource}` failed", path.display())]
struct StoreFailure {
    path: Arc<Path>,
    resource: Arc<str>,
    operation: &'static str,
    #[source]
    source: StoreFault,
}

/// An entry of the file that is not what this module writes: the file was
/// changed by something else.
#[derive(Debug, Error)]
enum CorruptEntry {
    #[error("the stored record `{id}` is not a JSON object")]
    Record {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the stored record `{id}` has `{VERSION_ATTRIBUTE}` {found}, not a non-negative integer"
    )]
    Version { id: String, found: String },
    #[error("the stored key {key:?} is not a valid record id")]
    Key {
        key: String,
        #[source]
        source: InvalidId,
    },
}

/// What a transaction returns: its answer to the request (a record, or a
/// refusal such as [`BackendError::NotFound`]), or a failure of the store.
type Outcome<T> = Result<Result<T, BackendError>, StoreFault>;

impl EmbeddedBackend {
    /// Runs `transaction` on the blocking pool: a read may wait on the disk and
    /// a write commit fsyncs, neither of which may stall an async worker.
    async fn run<T, F>(&self, operation: &'static str, transaction: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, RecordsTable<'_>) -> Outcome<T> + Send + 'static,
    {
        let database = Arc::clone(&self.database);
        let table = Arc::clone(&self.table);
        let outcome =
            tokio::task::spawn_blocking(move || transaction(&database, RecordsTable::new(&table)))
                .await;
        match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(fault)) => Err(self.failure(operation, fault)),
            // The transaction panicked; redb rolled it back.
            Err(join_error) => Err(self.failure(operation, Box::new(join_error))),
        }
    }

    fn failure(&self, operation: &'static str, source: StoreFault) -> BackendError {
        BackendError::Internal(Box::new(StoreFailure {
            path: Arc::clone(&self.path),
            resource: Arc::clone(&self.resource),
            operation,
            source,
        }))
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn list(&self, query: &ListQuery) -> Result<Page, BackendError> {
        let query = query.clone();
        self.run("list", move |database, table| {
            let transaction = database.begin_read()?;
            let records = transaction.open_table(table)?;
            let start = match start_after(&query) {
                Some(id) => Bound::Excluded(id),
                None => Bound::Unbounded,
            };
            let range = records.range::<&str>((start, Bound::Unbounded))?;
            // `paginate` reads lazily (a page reads its records and one more),
            // so entries are decoded as it asks; the first bad one ends the scan
            // and fails the list.
            let mut fault: Option<StoreFault> = None;
            let ordered = range.map_while(|entry| {
                let decoded = entry
                    .map_err(StoreFault::from)
                    .and_then(|(key, value)| decode_entry(key.value(), value.value()));
                match decoded {
                    Ok(entry) => Some(entry),
                    Err(error) => {
                        fault = Some(error);
                        None
                    }
                }
            });
            let page = paginate(ordered, &query);
            match fault {
                Some(fault) => Err(fault),
                None => Ok(Ok(page)),
            }
        })
        .await
    }

    async fn get_versioned(&self, id: &RecordId) -> Result<Versioned, BackendError> {
        let id = id.clone();
        self.run("get", move |database, table| {
            let transaction = database.begin_read()?;
            let records = transaction.open_table(table)?;
            Ok(stored(&records, &id)?.ok_or(BackendError::NotFound(id)))
        })
        .await
    }

    async fn create_versioned(&self, mut new: NewRecord) -> Result<Versioned, BackendError> {
        new.record = rules::record_to_create_within_limit(new.record)?;
        self.run("create", move |database, table| {
            let json = encode(&new.record, Version::CREATED)?;
            let transaction = database.begin_write()?;
            // The check and the insert share one write transaction, and redb
            // runs one writer at a time: no other create can come between them.
            let exists = {
                let mut records = transaction.open_table(table)?;
                let exists = records.get(new.id.as_str())?.is_some();
                if !exists {
                    records.insert(new.id.as_str(), json.as_slice())?;
                }
                exists
            };
            if exists {
                transaction.abort()?;
                return Ok(Err(BackendError::AlreadyExists(new.id)));
            }
            transaction.commit()?;
            Ok(Ok(Versioned {
                record: new.record,
                version: Version::CREATED,
            }))
        })
        .await
    }

    async fn update_if(
        &self,
        id: &RecordId,
        changes: RecordChanges,
        expected: &Expected,
    ) -> Result<Versioned, BackendError> {
        let id = id.clone();
        let expected = expected.clone();
        self.run("update", move |database, table| {
            // The version check, the read and the write share one write
            // transaction, and redb runs one writer at a time.
            let transaction = database.begin_write()?;
            let answer = {
                let mut records = transaction.open_table(table)?;
                let current = stored(&records, &id)?;
                match checked(&id, current, &expected) {
                    Err(refusal) => Err(refusal),
                    Ok(current) if !rules::sets_something(&changes) => Ok((current, false)),
                    Ok(current) => match rules::updated_record(&current.record, &changes) {
                        Ok(record) => {
                            let version = current.version.next();
                            records.insert(id.as_str(), encode(&record, version)?.as_slice())?;
                            Ok((Versioned { record, version }, true))
                        }
                        Err(refusal) => Err(refusal),
                    },
                }
            };
            if matches!(answer, Ok((_, true))) {
                transaction.commit()?;
            } else {
                transaction.abort()?;
            }
            Ok(answer.map(|(versioned, _)| versioned))
        })
        .await
    }

    async fn delete_if(&self, id: &RecordId, expected: &Expected) -> Result<(), BackendError> {
        let id = id.clone();
        let expected = expected.clone();
        self.run("delete", move |database, table| {
            let transaction = database.begin_write()?;
            let answer = {
                let mut records = transaction.open_table(table)?;
                let current = stored(&records, &id)?;
                let answer = checked(&id, current, &expected).map(drop);
                if answer.is_ok() {
                    records.remove(id.as_str())?;
                }
                answer
            };
            if answer.is_ok() {
                transaction.commit()?;
            } else {
                transaction.abort()?;
            }
            Ok(answer)
        })
        .await
    }
}

/// The stored record if it exists at an `expected` version; else the refusal.
fn checked(
    id: &RecordId,
    current: Option<Versioned>,
    expected: &Expected,
) -> Result<Versioned, BackendError> {
    rules::check_version(id, current.as_ref().map(|c| c.version), expected)?;
    current.ok_or_else(|| rules::refusal(id, None, expected))
}

/// The stored form: the record, then its version unless it is
/// [`Version::UNWRITTEN`] (so a seed is stored exactly as it was given).
fn encode(record: &Record, version: Version) -> Result<Vec<u8>, serde_json::Error> {
    if version == Version::UNWRITTEN {
        return serde_json::to_vec(record);
    }
    let mut stored = record.clone();
    stored.insert(VERSION_ATTRIBUTE.to_owned(), version.number().into());
    serde_json::to_vec(&stored)
}

/// The record and version of a stored entry.
/// The record stored under `id`, if any, with its version.
fn stored(
    records: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &RecordId,
) -> Result<Option<Versioned>, StoreFault> {
    match records.get(id.as_str())? {
        Some(json) => Ok(Some(decode(id, json.value())?)),
        None => Ok(None),
    }
}

fn decode(id: &RecordId, json: &[u8]) -> Result<Versioned, CorruptEntry> {
    let mut record: Record =
        serde_json::from_slice(json).map_err(|source| CorruptEntry::Record {
            id: id.to_string(),
            source,
        })?;
    // `shift_remove` keeps the other attributes in their order.
    let version = match record.shift_remove(VERSION_ATTRIBUTE) {
        None => Version::UNWRITTEN,
        Some(value) => match value.as_u64() {
            Some(number) => Version::new(number),
            None => {
                return Err(CorruptEntry::Version {
                    id: id.to_string(),
                    found: value.to_string(),
                });
            }
        },
    };
    Ok(Versioned { record, version })
}

fn decode_entry(key: &str, json: &[u8]) -> Result<(RecordId, Record), StoreFault> {
    let id = RecordId::parse(key).map_err(|source| CorruptEntry::Key {
        key: key.to_owned(),
        source,
    })?;
    let record = decode(&id, json)?.record;
    Ok((id, record))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::record::MAX_ITEM_BYTES;

    /// A directory of its own under the system's temporary directory, removed
    /// when the test ends.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!("api-embedded-{}", uuid::Uuid::new_v4())))
        }

        /// The database file, two directories down so `open` must create them.
        fn database(&self) -> PathBuf {
            self.0.join("data").join("nested").join("api.redb")
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn new_record(value: Value) -> NewRecord {
        NewRecord::from_body(&serde_json::to_vec(&value).unwrap()).unwrap()
    }

    fn id(raw: &str) -> RecordId {
        RecordId::parse(raw).unwrap()
    }

    fn changes(value: Value, path_id: &str) -> RecordChanges {
        RecordChanges::from_body(&serde_json::to_vec(&value).unwrap(), &id(path_id)).unwrap()
    }

    fn as_json(record: Record) -> Value {
        Value::Object(record)
    }

    fn query(raw: &str) -> ListQuery {
        ListQuery::parse(Some(raw), &[]).unwrap()
    }

    /// A fresh store holding the resource `users` with `seed`.
    fn open_users(dir: &ScratchDir, seed: Vec<NewRecord>) -> (EmbeddedStore, EmbeddedBackend) {
        let store = EmbeddedStore::open(&dir.database()).unwrap();
        let users = store.resource("users", seed).unwrap();
        (store, users)
    }

    #[tokio::test]
    async fn crud_follows_the_memory_backend() {
        let dir = ScratchDir::new();
        let (_store, users) = open_users(&dir, Vec::new());

        let created = users
            .create_versioned(new_record(json!({"id": "a", "name": "Ann", "age": 30})))
            .await
            .unwrap();
        assert_eq!(
            as_json(created.record),
            json!({"id": "a", "name": "Ann", "age": 30})
        );
        assert!(matches!(
            users.create_versioned(new_record(json!({"id": "a", "name": "Other"}))).await,
            Err(BackendError::AlreadyExists(existing)) if existing == id("a")
        ));
        assert_eq!(
            as_json(users.get_versioned(&id("a")).await.unwrap().record),
            json!({"id": "a", "name": "Ann", "age": 30}),
            "a refused create leaves the record as it was"
        );

        let updated = users
            .update_if(
                &id("a"),
                changes(json!({"age": 31, "city": "Oslo"}), "a"),
                &Expected::Any,
            )
            .await
            .unwrap();
        let merged = json!({"id": "a", "name": "Ann", "age": 31, "city": "Oslo"});
        assert_eq!(as_json(updated.record), merged);
        assert_eq!(
            as_json(users.get_versioned(&id("a")).await.unwrap().record),
            merged
        );

        assert!(matches!(
            users.update_if(&id("b"), changes(json!({"x": 1}), "b"), &Expected::Any).await,
            Err(BackendError::NotFound(missing)) if missing == id("b")
        ));
        assert!(
            matches!(
                users.get_versioned(&id("b")).await,
                Err(BackendError::NotFound(_))
            ),
            "an update never creates"
        );

        users.delete_if(&id("a"), &Expected::Any).await.unwrap();
        assert!(matches!(
            users.get_versioned(&id("a")).await,
            Err(BackendError::NotFound(_))
        ));
        assert!(matches!(
            users.delete_if(&id("a"), &Expected::Any).await,
            Err(BackendError::NotFound(missing)) if missing == id("a")
        ));
        assert_eq!(
            users.list(&ListQuery::default()).await.unwrap(),
            Page::default()
        );
    }

    #[tokio::test]
    async fn resources_in_one_file_are_separate() {
        let dir = ScratchDir::new();
        let store = EmbeddedStore::open(&dir.database()).unwrap();
        let users = store.resource("users", Vec::new()).unwrap();
        let orders = store
            .resource("orders", vec![new_record(json!({"id": "o1"}))])
            .unwrap();
        users
            .create_versioned(new_record(json!({"id": "u1"})))
            .await
            .unwrap();

        let ids = |page: Page| -> Vec<Value> {
            page.records.into_iter().map(|r| r["id"].clone()).collect()
        };
        assert_eq!(
            ids(users.list(&ListQuery::default()).await.unwrap()),
            [json!("u1")]
        );
        assert_eq!(
            ids(orders.list(&ListQuery::default()).await.unwrap()),
            [json!("o1")]
        );
    }

    #[tokio::test]
    async fn records_survive_a_restart() {
        let dir = ScratchDir::new();
        let (store, users) = open_users(&dir, Vec::new());
        users
            .create_versioned(new_record(json!({"id": "kept", "n": 1})))
            .await
            .unwrap();
        drop((store, users));

        let (_store, users) = open_users(&dir, Vec::new());
        assert_eq!(
            as_json(users.get_versioned(&id("kept")).await.unwrap().record),
            json!({"id": "kept", "n": 1})
        );
    }

    #[tokio::test]
    async fn seeds_once_and_never_again() {
        let dir = ScratchDir::new();
        let seed = || {
            vec![
                new_record(json!({"id": "s1", "v": 1})),
                new_record(json!({"id": "s2", "v": 2})),
                // A duplicated id: the first is kept, as in the memory backend.
                new_record(json!({"id": "s1", "v": "duplicate"})),
            ]
        };
        let (store, users) = open_users(&dir, seed());
        let all = users.list(&ListQuery::default()).await.unwrap();
        assert_eq!(
            all.records.into_iter().map(as_json).collect::<Vec<_>>(),
            [json!({"id": "s1", "v": 1}), json!({"id": "s2", "v": 2})]
        );
        users.delete_if(&id("s1"), &Expected::Any).await.unwrap();
        users
            .update_if(&id("s2"), changes(json!({"v": 20}), "s2"), &Expected::Any)
            .await
            .unwrap();
        drop((store, users));

        let (_store, users) = open_users(&dir, seed());
        assert!(
            matches!(
                users.get_versioned(&id("s1")).await,
                Err(BackendError::NotFound(_))
            ),
            "a deleted seed record stays deleted"
        );
        assert_eq!(
            as_json(users.get_versioned(&id("s2")).await.unwrap().record),
            json!({"id": "s2", "v": 20}),
            "a changed seed record stays changed"
        );
    }

    #[tokio::test]
    async fn paging_visits_every_record_exactly_once() {
        let dir = ScratchDir::new();
        // Seeded in one transaction: 250 creates would be 250 fsyncs.
        let seed = (0..250)
            .map(|n| new_record(json!({"id": format!("r-{n:03}"), "n": n})))
            .collect();
        let (_store, users) = open_users(&dir, seed);

        let mut seen = Vec::new();
        let mut page_query = query("limit=7");
        let mut pages = 0;
        loop {
            let page = users.list(&page_query).await.unwrap();
            pages += 1;
            assert!(page.records.len() <= 7);
            seen.extend(
                page.records
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            match page.next {
                Some(next) => page_query.after = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (0..250).map(|n| format!("r-{n:03}")).collect();
        assert_eq!(seen, expected, "every record once, in id order");
        assert_eq!(
            pages, 36,
            "35 full pages and one of 5, with no empty page after"
        );
    }

    #[tokio::test]
    async fn lists_exactly_as_the_memory_backend() {
        let records = || {
            (0..40).map(|n| {
                new_record(json!({
                    "id": format!("{n:02}"),
                    "n": n,
                    "parity": if n % 2 == 0 { "even" } else { "odd" },
                    "name": format!("item {n}"),
                }))
            })
        };
        let dir = ScratchDir::new();
        let (_store, embedded) = open_users(&dir, records().collect());
        let memory = MemoryBackend::with_records(records()).unwrap();

        for raw in [
            "",
            "limit=5",
            "limit=100",
            "limit=3&filters=parity:eq:odd,n:gt:30",
            "limit=4&fields=name,id",
            "filters=n:ge:39",
            "limit=1&filters=n:ge:39",
            "filters=missing:exists",
        ] {
            let mut list_query = query(raw);
            // Follow the cursors to the end, comparing every page.
            loop {
                let expected = memory.list(&list_query).await.unwrap();
                let actual = embedded.list(&list_query).await.unwrap();
                assert_eq!(actual, expected, "?{raw} after {:?}", list_query.after);
                match expected.next {
                    Some(next) => list_query.after = Some(next),
                    None => break,
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_creates_of_one_id_succeed_once() {
        let dir = ScratchDir::new();
        let (_store, users) = open_users(&dir, Vec::new());
        let attempts: Vec<_> = (0..100)
            .map(|n| {
                let users = users.clone();
                tokio::spawn(async move {
                    users
                        .create_versioned(new_record(json!({"id": "contested", "writer": n})))
                        .await
                })
            })
            .collect();

        let mut winners = Vec::new();
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(record) => winners.push(record),
                Err(BackendError::AlreadyExists(existing)) => assert_eq!(existing, id("contested")),
                Err(other) => panic!("unexpected failure: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one create succeeds");
        assert_eq!(
            users.get_versioned(&id("contested")).await.unwrap().record,
            winners[0].record
        );
    }

    #[tokio::test]
    async fn numbers_and_nested_values_round_trip_byte_exactly() {
        let body = r#"{"id":"exact","v":5.50,"big":12345678901234567890,"tiny":-1e-7,"n":null,"e":"","deep":{"a":[1,{"b":true}]}}"#;
        let dir = ScratchDir::new();
        let (store, users) = open_users(&dir, Vec::new());
        let created = users
            .create_versioned(NewRecord::from_body(body.as_bytes()).unwrap())
            .await
            .unwrap()
            .record;
        assert_eq!(serde_json::to_string(&created).unwrap(), body);
        drop((store, users));

        let (_store, users) = open_users(&dir, Vec::new());
        let read = users.get_versioned(&id("exact")).await.unwrap().record;
        assert_eq!(serde_json::to_string(&read).unwrap(), body);
        let listed = users.list(&ListQuery::default()).await.unwrap();
        assert_eq!(serde_json::to_string(&listed.records[0]).unwrap(), body);
    }

    #[tokio::test]
    async fn oversize_records_are_refused_and_nothing_is_stored() {
        let dir = ScratchDir::new();
        let (_store, users) = open_users(&dir, Vec::new());
        let original = json!({"id": "small", "text": "short"});
        users
            .create_versioned(new_record(original.clone()))
            .await
            .unwrap();

        let huge = "x".repeat(MAX_ITEM_BYTES);
        assert!(matches!(
            users
                .update_if(
                    &id("small"),
                    changes(json!({"text": huge}), "small"),
                    &Expected::Any
                )
                .await,
            Err(BackendError::TooLarge)
        ));
        assert_eq!(
            as_json(users.get_versioned(&id("small")).await.unwrap().record),
            original,
            "a refused update leaves the record unchanged"
        );

        assert!(matches!(
            users
                .create_versioned(new_record(json!({"id": "big", "text": huge})))
                .await,
            Err(BackendError::TooLarge)
        ));
        assert!(matches!(
            users.get_versioned(&id("big")).await,
            Err(BackendError::NotFound(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn versions_live_in_the_file_and_never_in_a_record() {
        let dir = ScratchDir::new();
        let (store, users) = open_users(&dir, vec![new_record(json!({"id": "seed"}))]);
        // A record as a file from before versions holds it: no attribute.
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(RecordsTable::new("records/users"))
            .unwrap()
            .insert("old", br#"{"id":"old","n":1}"#.as_slice())
            .unwrap();
        transaction.commit().unwrap();
        let raw = |id: &str| {
            let transaction = store.database.begin_read().unwrap();
            let table = transaction
                .open_table(RecordsTable::new("records/users"))
                .unwrap();
            let value = table.get(id).unwrap().unwrap();
            String::from_utf8(value.value().to_vec()).unwrap()
        };

        for id_ in ["seed", "old"] {
            assert_eq!(
                users.get_versioned(&id(id_)).await.unwrap().version,
                Version::UNWRITTEN
            );
        }
        assert_eq!(raw("seed"), r#"{"id":"seed"}"#, "a seed is stored as given");
        let updated = users
            .update_if(
                &id("old"),
                changes(json!({"n": 2}), "old"),
                &Expected::OneOf(vec![Version::UNWRITTEN]),
            )
            .await
            .unwrap();
        assert_eq!(updated.version, Version::new(1));
        assert_eq!(raw("old"), r#"{"id":"old","n":2,"_version":1}"#);
        assert_eq!(
            as_json(users.get_versioned(&id("old")).await.unwrap().record),
            json!({"id": "old", "n": 2})
        );
        let listed = users.list(&ListQuery::default()).await.unwrap();
        assert!(
            listed
                .records
                .iter()
                .all(|record| !record.contains_key(VERSION_ATTRIBUTE))
        );

        // Twenty writers expecting version 1: one wins, the others are refused
        // at the version the winner wrote.
        let attempts: Vec<_> = (0..20)
            .map(|n| {
                let users = users.clone();
                tokio::spawn(async move {
                    users
                        .update_if(
                            &id("old"),
                            changes(json!({"writer": n}), "old"),
                            &Expected::OneOf(vec![Version::new(1)]),
                        )
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(record) => winners.push(record),
                Err(BackendError::PreconditionFailed { current, .. }) => {
                    assert_eq!(current, Version::new(2));
                }
                Err(other) => panic!("unexpected failure: {other}"),
            }
        }
        assert_eq!(winners.len(), 1);
        assert_eq!(users.get_versioned(&id("old")).await.unwrap(), winners[0]);
    }

    #[test]
    fn a_second_opener_is_refused_with_a_hint() {
        let dir = ScratchDir::new();
        let _first = EmbeddedStore::open(&dir.database()).unwrap();
        let second = EmbeddedStore::open(&dir.database());
        let Err(error @ EmbeddedStoreError::Locked { .. }) = second else {
            panic!("expected Locked, got {second:?}");
        };
        let message = error.to_string();
        assert!(
            message.contains(&dir.database().display().to_string())
                && message.contains("is another `api` process running?"),
            "{message}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_in_the_error() {
        let dir = ScratchDir::new();
        std::fs::create_dir_all(dir.database().parent().unwrap()).unwrap();
        std::fs::write(dir.database(), b"this is not a redb file, just some text").unwrap();
        let error = EmbeddedStore::open(&dir.database()).unwrap_err();
        assert!(
            matches!(error, EmbeddedStoreError::Open { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains(&dir.database().display().to_string()),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_corrupt_record_is_an_internal_error_naming_file_and_resource() {
        let dir = ScratchDir::new();
        let (store, users) = open_users(&dir, vec![new_record(json!({"id": "good"}))]);
        // Damage the file the way another program could: a value that is not JSON.
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(RecordsTable::new("records/users"))
            .unwrap()
            .insert("broken", b"{not json".as_slice())
            .unwrap();
        transaction.commit().unwrap();

        let describe = |error: BackendError| {
            let BackendError::Internal(source) = error else {
                panic!("expected an internal error, got {error:?}");
            };
            let mut chain = source.to_string();
            let mut cause = source.source();
            while let Some(next) = cause {
                chain.push_str(&format!(": {next}"));
                cause = next.source();
            }
            chain
        };
        let read = describe(users.get_versioned(&id("broken")).await.unwrap_err());
        assert!(
            read.contains(&dir.database().display().to_string())
                && read.contains("resource `users`")
                && read.contains("record `broken` is not a JSON object"),
            "{read}"
        );
        let listed = describe(users.list(&ListQuery::default()).await.unwrap_err());
        assert!(listed.contains("record `broken`"), "{listed}");
        // The other records are still served by id.
        assert!(users.get_versioned(&id("good")).await.is_ok());
    }
}
