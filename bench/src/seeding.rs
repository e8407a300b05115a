//! Seeding on the emulator: `deployer seed`'s own code path
//! ([`deployer::seed::seed_tables`], BatchWriteItem 25 at a time) against the
//! AWS CLI writing the same items, one `put-item` process per item (the
//! original project's documented way) and `batch-write-item` in 25s.
//!
//! Only ever against an emulator: [`emulator_endpoint`] refuses an
//! `AWS_ENDPOINT_URL` that is not on loopback.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::Row;
use crate::setup::{Options, Paths, TempDir, unique};
use anyhow::{Context as _, bail};
use api::record::NewRecord;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Select,
    TableStatus,
};
use deployer::seed::{BATCH_SIZE, Backoff, TableSeed, seed_tables};
use serde_json::{Value, json};

/// `AWS_ENDPOINT_URL`, when it is an emulator on loopback.
pub fn emulator_endpoint() -> anyhow::Result<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL is not set: run under tools/with-emulator (make bench does)")?;
    let host = endpoint
        .trim_start_matches("http://")
        .split([':', '/'])
        .next()
        .unwrap_or_default();
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!(
            "AWS_ENDPOINT_URL={endpoint} is not on loopback; the benchmarks never leave this machine"
        );
    }
    Ok(endpoint)
}

/// The SDK client for the emulator (`tools/with-emulator` sets region and
/// test credentials).
pub async fn client() -> Client {
    Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// A table shaped as the stack makes them (hash key `id`, on demand), active.
pub async fn create_table(client: &Client, name: &str) -> anyhow::Result<()> {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .with_context(|| format!("cannot create table {name}"))?;
    wait_until_active(client, name).await
}

/// Waits until table `name` is ACTIVE.
pub async fn wait_until_active(client: &Client, name: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        let described = client.describe_table().table_name(name).send().await?;
        if described.table().and_then(|table| table.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("table {name} never became ACTIVE")
}

/// Items in `table`, by a paginated `Scan` with `Select: COUNT`.
pub async fn count_items(client: &Client, table: &str) -> anyhow::Result<u64> {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        count += u64::try_from(page.count()).unwrap_or_default();
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(count);
        }
    }
}

/// The record number `index` of every seeding run, shaped like the mocks.
pub fn record(index: usize) -> Value {
    json!({
        "id": format!("bench-{index:06}"),
        "name": format!("Item {index}"),
        "Description": format!("Some fancy description of item {index}..."),
        "value": index as f64 + 0.5,
    })
}

/// The same record in DynamoDB JSON, as the AWS CLI takes it.
pub fn record_item(index: usize) -> Value {
    json!({
        "id": { "S": format!("bench-{index:06}") },
        "name": { "S": format!("Item {index}") },
        "Description": { "S": format!("Some fancy description of item {index}...") },
        "value": { "N": format!("{}", index as f64 + 0.5) },
    })
}

/// How one way of seeding did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedRun {
    pub items: usize,
    /// BatchWriteItem calls (deployer), or processes started (AWS CLI).
    pub calls: u32,
    pub elapsed: Duration,
    /// Items the table holds afterwards.
    pub items_in_table: u64,
}

impl SeedRun {
    pub fn items_per_sec(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// `deployer seed` of `items` records into a new table, through the
/// deployer's own function. Building the records is not timed; turning
/// them into requests is (it is part of `seed_tables`).
pub async fn deployer_seed(client: &Client, table: &str, items: usize) -> anyhow::Result<SeedRun> {
    create_table(client, table).await?;
    let records = (0..items)
        .map(|index| NewRecord::from_body(record(index).to_string().as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let seed = TableSeed {
        resource: "bench".to_owned(),
        table: table.to_owned(),
        records,
    };
    let started = Instant::now();
    let report = seed_tables(client, &[seed], &Backoff::default(), &mut |_| {}).await?;
    let elapsed = started.elapsed();
    Ok(SeedRun {
        items: report.items_written(),
        calls: report.calls(),
        elapsed,
        items_in_table: count_items(client, table).await?,
    })
}

/// The AWS CLI for the emulator: its endpoint and region given explicitly
/// (CLI v1 reads `AWS_DEFAULT_REGION`, not `AWS_REGION`).
fn aws(cli: &Path, endpoint: &str) -> Command {
    let mut command = Command::new(cli);
    command
        .args([
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdin(Stdio::null());
    command
}

fn run_cli(command: &mut Command) -> anyhow::Result<String> {
    let output = command.output().context("cannot run the AWS CLI")?;
    if !output.status.success() {
        bail!(
            "the AWS CLI failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `aws dynamodb put-item`, one process per item, for records `0..items`.
pub fn cli_put_items(
    cli: &Path,
    endpoint: &str,
    table: &str,
    items: usize,
) -> anyhow::Result<(u32, Duration)> {
    let started = Instant::now();
    for index in 0..items {
        run_cli(aws(cli, endpoint).args([
            "dynamodb",
            "put-item",
            "--table-name",
            table,
            "--item",
            &record_item(index).to_string(),
        ]))?;
    }
    Ok((u32::try_from(items).unwrap_or(u32::MAX), started.elapsed()))
}

/// `aws dynamodb batch-write-item`, 25 items a process, for records
/// `0..items`; request files are written to `dir` before the clock starts.
/// Unprocessed items are not retried (the emulator returns none), but
/// counted in the error if there are any.
pub fn cli_batch_write(
    cli: &Path,
    endpoint: &str,
    table: &str,
    items: usize,
    dir: &Path,
) -> anyhow::Result<(u32, Duration)> {
    let mut files = Vec::new();
    for (number, start) in (0..items).step_by(BATCH_SIZE).enumerate() {
        let requests: Vec<Value> = (start..(start + BATCH_SIZE).min(items))
            .map(|index| json!({ "PutRequest": { "Item": record_item(index) } }))
            .collect();
        let path = dir.join(format!("batch-{number:05}.json"));
        std::fs::write(&path, json!({ table: requests }).to_string())?;
        files.push(path);
    }
    let started = Instant::now();
    let mut unprocessed = 0;
    for file in &files {
        let output = run_cli(aws(cli, endpoint).args([
            "dynamodb",
            "batch-write-item",
            "--request-items",
            &format!("file://{}", file.display()),
        ]))?;
        let answer: Value = serde_json::from_str(&output).unwrap_or_default();
        unprocessed += answer["UnprocessedItems"][table]
            .as_array()
            .map_or(0, Vec::len);
    }
    let elapsed = started.elapsed();
    if unprocessed > 0 {
        bail!("{unprocessed} items came back unprocessed");
    }
    Ok((u32::try_from(files.len()).unwrap_or(u32::MAX), elapsed))
}

// --- The section -----------------------------------------------------------

/// The section's rows, for `make bench`'s table.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    paths: &Paths,
    options: &Options,
) -> anyhow::Result<Vec<Row>> {
    let endpoint = emulator_endpoint()?;
    let section = "seeding";
    let client = runtime.block_on(client());
    let mut rows = Vec::new();
    let mut deployer_rate = None;
    for items in [1_000, 10_000] {
        let figure = format!("deployer seed, {items} items");
        match runtime.block_on(deployer_seed(&client, &unique("seed"), items)) {
            Ok(run) => {
                let expected = items.div_ceil(deployer::seed::BATCH_SIZE);
                deployer_rate.get_or_insert(run.items_per_sec());
                rows.push(
                    Row::new(
                        section,
                        format!("{figure}: rate"),
                        run.items_per_sec(),
                        "items/s",
                    )
                    .note(format!(
                        "{} items in {:.2} s; the table then holds {}",
                        run.items,
                        run.elapsed.as_secs_f64(),
                        run.items_in_table
                    )),
                );
                rows.push(
                    Row::new(
                        section,
                        format!("{figure}: BatchWriteItem calls"),
                        f64::from(run.calls),
                        "calls",
                    )
                    .note(format!("ceil(N/25) = {expected}")),
                );
            }
            Err(error) => rows.push(Row::skipped(section, figure, format!("{error:#}"))),
        }
    }

    let cli = paths.workspace.join(".venv/awscli/bin/aws");
    if !cli.is_file() {
        rows.push(Row::skipped(
            section,
            "aws cli",
            format!("{} is missing (make bench installs it)", cli.display()),
        ));
        return Ok(rows);
    }
    let extrapolate = |rate: f64, items: f64| items / rate;
    let figure = "aws cli put-item, 1 process per item";
    let table = unique("cli-put");
    let put = runtime
        .block_on(create_table(&client, &table))
        .and_then(|()| cli_put_items(&cli, &endpoint, &table, options.cli_puts));
    match put {
        Ok((calls, elapsed)) => {
            let rate = options.cli_puts as f64 / elapsed.as_secs_f64();
            let held = runtime
                .block_on(count_items(&client, &table))
                .unwrap_or_default();
            rows.push(
                Row::new(section, format!("{figure}: rate"), rate, "items/s")
                    .against("deployer seed 1000", deployer_rate)
                    .note(format!(
                        "measured on {} items ({calls} processes) in {:.1} s, table holds {held}; extrapolated: 1000 items ≈ {:.0} s, 10000 ≈ {:.0} s",
                        options.cli_puts,
                        elapsed.as_secs_f64(),
                        extrapolate(rate, 1_000.0),
                        extrapolate(rate, 10_000.0)
                    )),
            );
        }
        Err(error) => rows.push(Row::skipped(section, figure, format!("{error:#}"))),
    }
    let figure = "aws cli batch-write-item, 25 items per process";
    let table = unique("cli-batch");
    let work = TempDir::new("cli-batch")?;
    let batch = runtime
        .block_on(create_table(&client, &table))
        .and_then(|()| cli_batch_write(&cli, &endpoint, &table, options.cli_batch_items, &work.0));
    match batch {
        Ok((calls, elapsed)) => {
            let rate = options.cli_batch_items as f64 / elapsed.as_secs_f64();
            let held = runtime
                .block_on(count_items(&client, &table))
                .unwrap_or_default();
            rows.push(
                Row::new(section, format!("{figure}: rate"), rate, "items/s")
                    .against("deployer seed 1000", deployer_rate)
                    .note(format!(
                        "measured on {} items ({calls} processes) in {:.1} s, table holds {held}; extrapolated: 10000 items ≈ {:.0} s (400 processes)",
                        options.cli_batch_items,
                        elapsed.as_secs_f64(),
                        extrapolate(rate, 10_000.0)
                    )),
            );
        }
        Err(error) => rows.push(Row::skipped(section, figure, format!("{error:#}"))),
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_its_dynamodb_json_say_the_same() {
        let new_record = NewRecord::from_body(record(7).to_string().as_bytes()).unwrap();
        let item = api::backend::dynamodb::attribute::record_to_item(&new_record.record);
        let expected = record_item(7);
        assert_eq!(item.len(), 4);
        for (name, value) in &item {
            let (kind, text) = match value {
                aws_sdk_dynamodb::types::AttributeValue::S(text) => ("S", text),
                aws_sdk_dynamodb::types::AttributeValue::N(text) => ("N", text),
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(expected[name][kind], json!(text), "{name}");
        }
    }
}
