//! Seed records into the deployed tables, as few calls as DynamoDB allows.
//!
//! Every record goes out in a BatchWriteItem `PutRequest`, 25 to a call (the
//! API's limit), so N records cost `ceil(N / 25)` calls when DynamoDB takes
//! them all. What it does not take (`UnprocessedItems`: throttling, a
//! partition split) is sent again after an exponential backoff with jitter,
//! a bounded number of times.
//!
//! Re-seeding overwrites: a `PutRequest` replaces the item with the seed's
//! version. That is the choice SAM and CDK users expect (seeding is
//! declarative: the repository's seed files say what those records are, and
//! running it twice leaves the same table), and the only one BatchWriteItem
//! offers at this price: it has no condition expressions, so "skip existing
//! ids" would need a read of every key first (twice the calls, and a race
//! with the API writing meanwhile) or one conditional PutItem per record (25
//! times the calls). The cost: a seeded record changed through the API is
//! reset to its seed by the next `deployer seed`. Records that are not in the
//! seed files are never touched, and nothing is ever deleted.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use api::backend::dynamodb::attribute::record_to_item;
use api::record::NewRecord;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use serde::Serialize;
use thiserror::Error;

/// BatchWriteItem's limit of requests per call.
pub const BATCH_SIZE: usize = 25;

/// Why a table could not be seeded.
#[derive(Debug, Error)]
pub enum SeedError {
    #[error(
        "seed for `{resource}` has the id `{id}` more than once: each record of a seed file \
         needs its own id"
    )]
    DuplicateId { resource: String, id: String },
    #[error("the table `{table}` does not exist: deploy the stack first (`deployer deploy`)")]
    NoTable {
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error(
        "table `{table}`: {remaining} items remain unwritten; DynamoDB still returned some as \
         unprocessed after {retries} retries (the table is throttled: run `deployer seed` \
         again, it is safe)"
    )]
    Unprocessed {
        table: String,
        remaining: usize,
        retries: u32,
    },
    #[error("table `{table}`: BatchWriteItem failed")]
    DynamoDb {
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error("table `{table}`: a record cannot be made into a request")]
    Request {
        table: String,
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
}

/// The records of one resource and the table they go to.
#[derive(Debug, Clone)]
pub struct TableSeed {
    /// The resource name (`users`), which progress lines show.
    pub resource: String,
    /// The table, as the stack's outputs name it.
    pub table: String,
    pub records: Vec<NewRecord>,
}

/// How unprocessed items are retried: the n-th retry waits between half and
/// all of `min(cap, base × 2^(n-1))` ("equal jitter": unlike full jitter it
/// never retries at once, so a throttled table gets room; the random half
/// keeps concurrent seeders from retrying in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retries of one batch's unprocessed items before giving up.
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    /// 8 retries, 50 ms doubling to at most 5 s: up to about 11 s for a
    /// batch, far beyond a throttling burst on an on-demand table.
    fn default() -> Self {
        Self {
            max_retries: 8,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The longest wait before retry `retry` (1 for the first).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base
            .checked_mul(1 << doublings)
            .map_or(self.cap, |wait| wait.min(self.cap))
    }

    /// The wait before retry `retry`, `random` choosing where in the upper
    /// half of the ceiling it falls.
    pub fn delay(&self, retry: u32, random: u64) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(random % spread.saturating_add(1))
    }
}

/// A random number for jitter without a dependency: each `RandomState` is
/// keyed afresh from the OS's randomness, and hashing with it mixes the key.
fn jitter_random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// Where seeding one table stands (after each call) or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSeedReport {
    pub resource: String,
    pub table: String,
    /// Items DynamoDB has taken.
    pub items_written: usize,
    pub items_total: usize,
    /// BatchWriteItem calls, retries included.
    pub calls: u32,
    /// Of those, calls resending unprocessed items.
    pub retries: u32,
}

impl fmt::Display for TableSeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}/{} items, {}",
            self.resource,
            self.items_written,
            self.items_total,
            plural(self.calls, "call", "calls")
        )?;
        if self.retries > 0 {
            write!(f, " ({})", plural(self.retries, "retry", "retries"))?;
        }
        Ok(())
    }
}

fn plural(count: u32, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Every table seeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    pub tables: Vec<TableSeedReport>,
}

impl SeedReport {
    pub fn items_written(&self) -> usize {
        self.tables.iter().map(|table| table.items_written).sum()
    }

    pub fn calls(&self) -> u32 {
        self.tables.iter().map(|table| table.calls).sum()
    }
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for table in &self.tables {
            writeln!(f, "{table}")?;
        }
        write!(
            f,
            "seeded {} into {} in {}",
            plural(self.items_written() as u32, "item", "items"),
            plural(self.tables.len() as u32, "table", "tables"),
            plural(self.calls(), "call", "calls")
        )
    }
}

/// The write requests for `seed`, 25 to a batch, in seed-file order. Ids
/// must be unique: DynamoDB refuses a batch naming one key twice, and a seed
/// file saying two things about one record is a mistake to report.
pub fn batches(seed: &TableSeed) -> Result<Vec<Vec<WriteRequest>>, SeedError> {
    let mut seen = HashSet::with_capacity(seed.records.len());
    let mut requests = Vec::with_capacity(seed.records.len());
    for new_record in &seed.records {
        if !seen.insert(new_record.id.as_str()) {
            return Err(SeedError::DuplicateId {
                resource: seed.resource.clone(),
                id: new_record.id.to_string(),
            });
        }
        let put = PutRequest::builder()
            .set_item(Some(record_to_item(&new_record.record)))
            .build()
            .map_err(|source| SeedError::Request {
                table: seed.table.clone(),
                source,
            })?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    Ok(requests
        .chunks(BATCH_SIZE)
        .map(<[WriteRequest]>::to_vec)
        .collect())
}

/// Writes every record of `seed` into its table. `progress` sees the report
/// after each call; the last one is returned.
pub async fn seed_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    seed: &TableSeed,
    backoff: &Backoff,
    progress: &mut dyn FnMut(&TableSeedReport),
) -> Result<TableSeedReport, SeedError> {
    let table = seed.table.as_str();
    let mut report = TableSeedReport {
        resource: seed.resource.clone(),
        table: table.to_owned(),
        items_written: 0,
        items_total: seed.records.len(),
        calls: 0,
        retries: 0,
    };
    for batch in batches(seed)? {
        let mut pending = batch;
        let mut retry = 0;
        loop {
            let sent = pending.len();
            let output = dynamodb
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|error| {
                    let error = aws_sdk_dynamodb::Error::from(error);
                    match error {
                        aws_sdk_dynamodb::Error::ResourceNotFoundException(_) => {
                            SeedError::NoTable {
                                table: table.to_owned(),
                                source: Box::new(error),
                            }
                        }
                        _ => SeedError::DynamoDb {
                            table: table.to_owned(),
                            source: Box::new(error),
                        },
                    }
                })?;
            let unprocessed = output
                .unprocessed_items
                .and_then(|mut by_table| by_table.remove(table))
                .unwrap_or_default();
            report.calls += 1;
            report.items_written += sent.saturating_sub(unprocessed.len());
            progress(&report);
            if unprocessed.is_empty() {
                break;
            }
            retry += 1;
            if retry > backoff.max_retries {
                return Err(SeedError::Unprocessed {
                    table: table.to_owned(),
                    remaining: report.items_total - report.items_written,
                    retries: backoff.max_retries,
                });
            }
            tokio::time::sleep(backoff.delay(retry, jitter_random())).await;
            report.retries += 1;
            pending = unprocessed;
        }
    }
    Ok(report)
}

/// Seeds each table in turn (one table at a time keeps the write rate, and
/// so the chance of throttling, that of a single seeder).
pub async fn seed_tables(
    dynamodb: &aws_sdk_dynamodb::Client,
    seeds: &[TableSeed],
    backoff: &Backoff,
    progress: &mut dyn FnMut(&TableSeedReport),
) -> Result<SeedReport, SeedError> {
    let mut tables = Vec::with_capacity(seeds.len());
    for seed in seeds {
        tables.push(seed_table(dynamodb, seed, backoff, progress).await?);
    }
    Ok(SeedReport { tables })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::operation::batch_write_item::{
        BatchWriteItemError, BatchWriteItemOutput,
    };
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn records(count: usize) -> Vec<NewRecord> {
        (0..count)
            .map(|index| {
                NewRecord::from_body(format!(r#"{{"id":"r{index}","n":{index}}}"#).as_bytes())
                    .unwrap()
            })
            .collect()
    }

    fn seed(count: usize) -> TableSeed {
        TableSeed {
            resource: "users".to_owned(),
            table: "app-users".to_owned(),
            records: records(count),
        }
    }

    #[test]
    fn records_are_batched_by_25() {
        let check = |count: usize, expected: &[usize]| {
            let sizes: Vec<usize> = batches(&seed(count))
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect();
            assert_eq!(sizes, expected, "{count} records");
        };
        check(0, &[]);
        check(1, &[1]);
        check(25, &[25]);
        check(26, &[25, 1]);
        check(1000, &[25; 40]);
        let batches = batches(&seed(26)).unwrap();
        let first = batches[0][0].put_request().unwrap().item();
        assert_eq!(first["id"].as_s().unwrap(), "r0");
        assert_eq!(first["n"].as_n().unwrap(), "0");
        assert_eq!(
            batches[1][0].put_request().unwrap().item()["id"]
                .as_s()
                .unwrap(),
            "r25"
        );
    }

    #[test]
    fn a_repeated_id_is_refused_before_any_call() {
        let mut twice = seed(3);
        twice.records.push(twice.records[1].clone());
        let error = batches(&twice).unwrap_err();
        assert_eq!(
            error.to_string(),
            "seed for `users` has the id `r1` more than once: each record of a seed file needs \
             its own id"
        );
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff::default();
        let ceilings: Vec<u128> = (1..=9)
            .map(|retry| backoff.ceiling(retry).as_millis())
            .collect();
        assert_eq!(ceilings, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.ceiling(1000), Duration::from_secs(5));
        for retry in 1..=9 {
            let ceiling = backoff.ceiling(retry);
            assert_eq!(backoff.delay(retry, 0), ceiling / 2);
            for _ in 0..50 {
                let delay = backoff.delay(retry, jitter_random());
                assert!(delay >= ceiling / 2 && delay <= ceiling, "{delay:?}");
            }
        }
        // The jitter does vary.
        let delays: HashSet<Duration> =
            (0..20).map(|_| backoff.delay(8, jitter_random())).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn progress_lines_read_as_sentences() {
        let mut report = TableSeedReport {
            resource: "users".to_owned(),
            table: "app-users".to_owned(),
            items_written: 2,
            items_total: 2,
            calls: 1,
            retries: 0,
        };
        assert_eq!(report.to_string(), "users: 2/2 items, 1 call");
        report.calls = 3;
        report.retries = 2;
        assert_eq!(report.to_string(), "users: 2/2 items, 3 calls (2 retries)");
        let all = SeedReport {
            tables: vec![report],
        };
        assert_eq!(
            all.to_string(),
            "users: 2/2 items, 3 calls (2 retries)\nseeded 2 items into 1 table in 3 calls"
        );
    }

    const FAST: Backoff = Backoff {
        max_retries: 3,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(4),
    };

    /// A BatchWriteItem answer leaving the last `left` requests of the call unprocessed.
    fn leaving(
        left: usize,
    ) -> impl Fn(
        &aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput,
    ) -> BatchWriteItemOutput {
        move |input| {
            let sent = &input.request_items().unwrap()["app-users"];
            let unprocessed = sent[sent.len() - left..].to_vec();
            let mut by_table = HashMap::new();
            if !unprocessed.is_empty() {
                by_table.insert("app-users".to_owned(), unprocessed);
            }
            BatchWriteItemOutput::builder()
                .set_unprocessed_items(Some(by_table))
                .build()
        }
    }

    #[tokio::test]
    async fn every_item_goes_out_in_ceil_n_over_25_calls() {
        let write =
            mock!(aws_sdk_dynamodb::Client::batch_write_item).then_compute_output(leaving(0));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&write]);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let report = seed_table(&client, &seed(60), &FAST, &mut |report| {
            seen.lock().unwrap().push(report.to_string());
        })
        .await
        .unwrap();
        assert_eq!(write.num_calls(), 3);
        assert_eq!(
            (report.items_written, report.calls, report.retries),
            (60, 3, 0)
        );
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "users: 25/60 items, 1 call",
                "users: 50/60 items, 2 calls",
                "users: 60/60 items, 3 calls"
            ]
        );
    }

    #[tokio::test]
    async fn unprocessed_items_are_resent_until_taken() {
        // First call: 10 of 25 left; second: 3 of those 10 left; third: all taken.
        let first = mock!(aws_sdk_dynamodb::Client::batch_write_item)
            .match_requests(|input| input.request_items().unwrap()["app-users"].len() == 25)
            .then_compute_output(leaving(10));
        let second = mock!(aws_sdk_dynamodb::Client::batch_write_item)
            .match_requests(|input| input.request_items().unwrap()["app-users"].len() == 10)
            .then_compute_output(leaving(3));
        let third = mock!(aws_sdk_dynamodb::Client::batch_write_item)
            .match_requests(|input| input.request_items().unwrap()["app-users"].len() == 3)
            .then_compute_output(leaving(0));
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&first, &second, &third]
        );
        let report = seed_table(&client, &seed(25), &FAST, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            (report.items_written, report.calls, report.retries),
            (25, 3, 2)
        );
        assert_eq!(
            report.to_string(),
            "users: 25/25 items, 3 calls (2 retries)"
        );
    }

    #[tokio::test]
    async fn retries_are_bounded_and_the_error_says_what_remains() {
        // 30 records: the first batch of 25 always leaves 5 behind.
        let write =
            mock!(aws_sdk_dynamodb::Client::batch_write_item).then_compute_output(leaving(5));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&write]);
        let error = seed_table(&client, &seed(30), &FAST, &mut |_| {})
            .await
            .unwrap_err();
        // One call plus FAST's 3 retries, then the 5 left and the 5 never sent remain.
        assert_eq!(write.num_calls(), 4);
        assert_eq!(
            error.to_string(),
            "table `app-users`: 10 items remain unwritten; DynamoDB still returned some as \
             unprocessed after 3 retries (the table is throttled: run `deployer seed` again, it \
             is safe)"
        );
    }

    #[tokio::test]
    async fn a_missing_table_says_deploy_first() {
        let write = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_error(|| {
            BatchWriteItemError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&write]);
        let error = seed_tables(&client, &[seed(1)], &FAST, &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the table `app-users` does not exist: deploy the stack first (`deployer deploy`)"
        );
    }

    #[tokio::test]
    async fn an_empty_seed_makes_no_call() {
        let write =
            mock!(aws_sdk_dynamodb::Client::batch_write_item).then_compute_output(leaving(0));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&write]);
        let report = seed_tables(&client, &[seed(0)], &FAST, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(write.num_calls(), 0);
        assert_eq!(report.tables[0].to_string(), "users: 0/0 items, 0 calls");
    }
}
