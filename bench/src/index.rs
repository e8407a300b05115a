//! Lists served from a secondary index against lists that Scan, on the
//! emulator: a `users` table of 1,000, 10,000 and 100,000 items, 1% of them
//! matching `gender:eq:X`, listed 20 at a time by the api's own DynamoDB
//! backend, once planned as a Scan (no index declared) and once on the
//! index `users-by-gender`. Per first page: the items DynamoDB read (its
//! `ScannedCount`, what it bills), the calls made, and the latency. With 1%
//! matching everywhere a Scan's first page costs the same on every size
//! (about 2,000 items for 20 matches); what grows with the table is every
//! page of the list, so the section also follows the cursors to the end.
//!
//! The item and call counts are DynamoDB's semantics, which the emulator
//! implements; its latency is the emulator's (an in-process Python store
//! that walks every item even for an index query), not DynamoDB's.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, bail};
use api::backend::Backend;
use api::backend::dynamodb::DynamoDbBackend;
use api::index::{IndexConfig, KeyAttribute, KeyKind};
use api::query::ListQuery;
use api::record::NewRecord;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use deployer::seed::{Backoff, TableSeed, seed_tables};
use serde_json::json;

use crate::report::{Row, median, ms};
use crate::seeding::{client, emulator_endpoint, wait_until_active};
use crate::setup::{Options, unique};

const SECTION: &str = "index";
const INDEX: &str = "users-by-gender";
const PAGE: usize = 20;

/// The DynamoDB reads a list made: calls, and the items they read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Reads {
    calls: u64,
    scanned: u64,
}

/// Counts every Scan and Query a client makes, and their `ScannedCount`.
#[derive(Debug, Clone, Default)]
struct ReadCounter(Arc<Mutex<Reads>>);

impl ReadCounter {
    fn take(&self) -> Reads {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl Intercept for ReadCounter {
    fn name(&self) -> &'static str {
        "bench-read-counter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error() else {
            return Ok(());
        };
        let scanned = if let Some(scan) = output.downcast_ref::<ScanOutput>() {
            scan.scanned_count()
        } else if let Some(query) = output.downcast_ref::<QueryOutput>() {
            query.scanned_count()
        } else {
            return Ok(());
        };
        let mut reads = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        reads.calls += 1;
        reads.scanned += u64::try_from(scanned).unwrap_or_default();
        Ok(())
    }
}

/// The declaration's index: `gender`, a string, no sort key.
fn users_by_gender() -> IndexConfig {
    IndexConfig {
        name: INDEX.to_owned(),
        partition_key: KeyAttribute {
            name: "gender".to_owned(),
            kind: KeyKind::String,
        },
        sort_key: None,
    }
}

/// User `n` of a table: one in a hundred has gender X, the others F or M.
fn user(n: usize) -> anyhow::Result<NewRecord> {
    let gender = match n % 100 {
        0 => "X",
        odd if odd % 2 == 1 => "F",
        _ => "M",
    };
    let body = json!({
        "id": format!("user-{n:06}"),
        "full_name": format!("User {n}"),
        "gender": gender,
        "age": 18 + n % 60,
    });
    Ok(NewRecord::from_body(body.to_string().as_bytes())?)
}

/// A table as the stack makes one for `users` with its index, active.
async fn create_users_table(client: &Client, name: &str) -> anyhow::Result<()> {
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(string("id")?)
        .attribute_definitions(string("gender")?)
        .key_schema(key("id", KeyType::Hash)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(INDEX)
                .key_schema(key("gender", KeyType::Hash)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .with_context(|| format!("cannot create table {name}"))?;
    wait_until_active(client, name).await
}

/// The first page of `filters=gender:eq:X`, planned with `indexes`, `runs`
/// times: the reads of one page (the same every run) and each run's latency.
async fn first_pages(
    backend: &DynamoDbBackend,
    counter: &ReadCounter,
    indexes: &[IndexConfig],
    runs: usize,
) -> anyhow::Result<(Reads, usize, Vec<f64>)> {
    let query = ListQuery::parse(Some(&format!("limit={PAGE}&filters=gender:eq:X")), indexes)?;
    let mut reads = Reads::default();
    let mut listed = 0;
    let mut latencies = Vec::with_capacity(runs);
    for _ in 0..runs {
        counter.take();
        let started = Instant::now();
        let page = backend.list(&query).await?;
        latencies.push(ms(started.elapsed()));
        reads = counter.take();
        listed = page.records.len();
    }
    Ok((reads, listed, latencies))
}

/// Every page of `filters=gender:eq:X`, planned with `indexes`: the reads,
/// the pages, the records listed and the time.
async fn every_page(
    backend: &DynamoDbBackend,
    counter: &ReadCounter,
    indexes: &[IndexConfig],
) -> anyhow::Result<(Reads, usize, usize, f64)> {
    let mut query = ListQuery::parse(Some(&format!("limit={PAGE}&filters=gender:eq:X")), indexes)?;
    counter.take();
    let started = Instant::now();
    let (mut pages, mut listed) = (0, 0);
    loop {
        let page = backend.list(&query).await?;
        pages += 1;
        listed += page.records.len();
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok((counter.take(), pages, listed, ms(started.elapsed()))),
        }
    }
}

pub fn run(runtime: &tokio::runtime::Runtime, options: &Options) -> anyhow::Result<Vec<Row>> {
    emulator_endpoint()?;
    runtime.block_on(async {
        let plain = client().await;
        let counter = ReadCounter::default();
        let counted = Client::from_conf(
            plain
                .config()
                .to_builder()
                .interceptor(counter.clone())
                .build(),
        );
        let mut rows = Vec::new();
        for &size in &options.index_sizes {
            let table = unique("bench-users");
            create_users_table(&plain, &table).await?;
            let records = (0..size).map(user).collect::<anyhow::Result<Vec<_>>>()?;
            let seed = TableSeed {
                resource: "users".to_owned(),
                table: table.clone(),
                records,
            };
            let loaded = Instant::now();
            seed_tables(&plain, &[seed], &Backoff::default(), &mut |_| {}).await?;
            eprintln!(
                "bench: index: {size} users loaded in {:.1} s",
                loaded.elapsed().as_secs_f64()
            );
            let backend = DynamoDbBackend::new(counted.clone(), table.clone());
            let matching = size / 100;
            let expected = matching.min(PAGE);
            let (scan, scan_listed, scan_ms) =
                first_pages(&backend, &counter, &[], options.index_runs).await?;
            let (index, index_listed, index_ms) =
                first_pages(&backend, &counter, &[users_by_gender()], options.index_runs).await?;
            if index_listed != expected {
                bail!("the index page of {size} users listed {index_listed}, not {expected}");
            }
            let label = |what: &str, path: &str| format!("{size} users, {path}: {what}");
            let note = format!(
                "first page of filters=gender:eq:X&limit={PAGE}; {matching} of {size} match; \
                 the scan listed {scan_listed}"
            );
            let scan_read = scan.scanned as f64;
            rows.push(
                Row::new(SECTION, label("items read", "scan"), scan_read, "items").note(&note),
            );
            rows.push(
                Row::new(
                    SECTION,
                    label("items read", INDEX),
                    index.scanned as f64,
                    "items",
                )
                .against("scan", Some(scan_read))
                .note(format!("at most limit + 1 = {}", PAGE + 1)),
            );
            rows.push(Row::new(
                SECTION,
                label("DynamoDB calls", "scan"),
                scan.calls as f64,
                "calls",
            ));
            rows.push(
                Row::new(
                    SECTION,
                    label("DynamoDB calls", INDEX),
                    index.calls as f64,
                    "calls",
                )
                .against("scan", Some(scan.calls as f64)),
            );
            let scan_median = median(&scan_ms);
            if let Some(value) = scan_median {
                rows.push(
                    Row::new(SECTION, label("latency", "scan"), value, "ms")
                        .note(format!("median of {} on the emulator", options.index_runs)),
                );
            }
            if let Some(value) = median(&index_ms) {
                rows.push(
                    Row::new(SECTION, label("latency", INDEX), value, "ms")
                        .against("scan", scan_median)
                        .note(format!("median of {} on the emulator", options.index_runs)),
                );
            }
            let mut scan_total = None;
            for (path, indexes) in [("scan", Vec::new()), (INDEX, vec![users_by_gender()])] {
                let (reads, pages, listed, elapsed) =
                    every_page(&backend, &counter, &indexes).await?;
                if listed != matching {
                    bail!("{path} listed {listed} of the {matching} matching users of {size}");
                }
                let total = reads.scanned as f64;
                let note = format!(
                    "all {matching} matches in {pages} pages, {} calls, {elapsed:.0} ms on the \
                     emulator",
                    reads.calls
                );
                let row = Row::new(
                    SECTION,
                    label("every page, items read", path),
                    total,
                    "items",
                );
                rows.push(match path {
                    INDEX => row.against("scan", scan_total).note(note),
                    _ => row.note(note),
                });
                scan_total.get_or_insert(total);
            }
        }
        Ok(rows)
    })
}
