//! What every section of `make bench` shares: its options, where the
//! binaries and files are, scratch directories, and a local api started and
//! filled with records.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::http;
use crate::process::Running;
use crate::report::{median, ms};
use crate::seeding;

/// Measures the api and the deployer and prints a table; never asserts.
#[derive(Debug, Parser, Serialize)]
pub struct Options {
    /// The workspace: infra/app.yaml, Cargo.toml, .venv are found under it.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    pub workspace: PathBuf,
    /// Cargo's target directory (default: <workspace>/target).
    #[arg(long, env = "CARGO_TARGET_DIR")]
    pub target_dir: Option<PathBuf>,
    /// Where the JSON goes (default: <workspace>/bench-results).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which sections to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cold,lambda,load,instructions,package,seed,deploy,index"
    )]
    pub sections: Vec<Section>,
    /// Cold starts of each binary (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub starts: usize,
    /// Lambda-mode starts.
    #[arg(long, default_value_t = 10)]
    pub lambda_starts: usize,
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of wrk warm-up per target, not measured.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Measured wrk runs per target, interleaved across targets (medians).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// GETs in the shorter of the two callgrind runs of each figure.
    #[arg(long, default_value_t = 500)]
    pub counted_few: usize,
    /// GETs in the longer one: (Ir(many) - Ir(few)) / (many - few) per GET.
    #[arg(long, default_value_t = 2500)]
    pub counted_many: usize,
    /// Records POSTed to `mocks` before the load, so a list page is full.
    #[arg(long, default_value_t = 100)]
    pub list_records: usize,
    /// Items the AWS CLI writes one `put-item` process each (then extrapolated).
    #[arg(long, default_value_t = 200)]
    pub cli_puts: usize,
    /// Items the AWS CLI writes with `batch-write-item`, 25 a process.
    #[arg(long, default_value_t = 1000)]
    pub cli_batch_items: usize,
    /// No-op deploys after the first (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub deploys: usize,
    /// Table sizes of the `index` section, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub index_sizes: Vec<usize>,
    /// First pages listed per table and path in the `index` section (the
    /// median latency is reported).
    #[arg(long, default_value_t = 5)]
    pub index_runs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Cold,
    Lambda,
    Load,
    Instructions,
    Package,
    Seed,
    Deploy,
    Index,
}

/// Where everything is.
#[derive(Debug)]
pub struct Paths {
    pub workspace: PathBuf,
    pub api: PathBuf,
    pub hello: PathBuf,
    pub deployer: PathBuf,
    pub app_yaml: PathBuf,
    pub out: PathBuf,
}

impl Paths {
    pub fn new(options: &Options) -> anyhow::Result<Self> {
        let workspace = options
            .workspace
            .canonicalize()
            .with_context(|| format!("no workspace at {}", options.workspace.display()))?;
        let target = options
            .target_dir
            .clone()
            .unwrap_or_else(|| workspace.join("target"));
        let release = target.join("release");
        Ok(Self {
            api: release.join("api"),
            hello: release.join("hello"),
            deployer: release.join("deployer"),
            app_yaml: workspace.join("infra/app.yaml"),
            out: options
                .out
                .clone()
                .unwrap_or_else(|| workspace.join("bench-results")),
            workspace,
        })
    }

    /// The binaries a section needs, built (`make bench` builds them).
    pub fn require(binaries: &[&Path]) -> anyhow::Result<()> {
        for binary in binaries {
            if !binary.is_file() {
                bail!(
                    "{} is missing: `cargo build --release -p api -p deployer -p bench` (make bench does)",
                    binary.display()
                );
            }
        }
        Ok(())
    }
}

/// A directory under the system's temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(purpose: &str) -> anyhow::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("bench-{purpose}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn median_ms(durations: &[Duration]) -> Option<f64> {
    median(&durations.iter().copied().map(ms).collect::<Vec<_>>())
}

/// `infra/app.yaml` with every resource in memory (seed paths made
/// absolute), so the cold start without the embedded store can be told apart.
pub fn all_memory_config(paths: &Paths, dir: &Path) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(&paths.app_yaml)?;
    let infra = paths.workspace.join("infra");
    let memory = text
        .replace("backend: dynamodb", "backend: memory")
        .replace("seed: ", &format!("seed: {}/", infra.display()));
    let path = dir.join("app-all-memory.yaml");
    std::fs::write(&path, memory)?;
    Ok(path)
}

/// Waits for a server started for the load section to answer its ping.
pub fn wait_ready(server: &mut Running, port: u16) -> anyhow::Result<()> {
    server.wait_for_ping(port, Duration::from_secs(10), Duration::from_millis(5))
}

pub fn start_api(
    paths: &Paths,
    data_dir: &Path,
    port: u16,
    rust_log: &str,
) -> anyhow::Result<Running> {
    let mut server = Running::spawn(
        Command::new(&paths.api)
            .arg("--config")
            .arg(&paths.app_yaml)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--port", &port.to_string()])
            .env("RUST_LOG", rust_log),
    )?;
    wait_ready(&mut server, port)?;
    Ok(server)
}

/// POSTs `count` records to `mocks` and checks a list page is then full.
pub fn fill_mocks(port: u16, count: usize) -> anyhow::Result<()> {
    for index in 0..count {
        let body = seeding::record(index).to_string();
        let response = http::request(port, "POST", "/api/mocks", &body)?;
        if response.status != 201 {
            bail!(
                "POST /api/mocks answered {}: {}",
                response.status,
                response.body
            );
        }
    }
    let page = http::request(port, "GET", "/api/mocks?limit=20", "")?;
    let records: serde_json::Value = serde_json::from_str(&page.body)?;
    let length = records.as_array().map_or(0, Vec::len);
    if page.status != 200 || length != 20.min(count + 2) {
        bail!(
            "GET /api/mocks?limit=20 answered {} with {length} records",
            page.status
        );
    }
    Ok(())
}

pub fn unique(purpose: &str) -> String {
    format!(
        "bench-{purpose}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
