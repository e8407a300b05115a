//! `make bench`'s runner: builds nothing, starts the release binaries it is
//! given, measures, prints one Markdown table and writes it as JSON under
//! `bench-results/`. It never fails on a figure: what cannot be measured
//! becomes a row saying why. Sections, in order:
//!
//! 1. `cold`: spawn → first answered request, api and the `hello` floor;
//! 2. `lambda`: Lambda-mode init against a Runtime API stub;
//! 3. `load`: wrk on get-by-id and list, next to the floor; peak RSS;
//! 4. `instructions`: a request's instructions under callgrind, api and floor;
//! 5. `package`: the Lambda zip and the release profile;
//! 6. `seed`: `deployer seed` and the AWS CLI on the emulator;
//! 7. `deploy`: a no-op `deployer deploy` on the emulator.
//!
//! Sections 6 and 7 need `AWS_ENDPOINT_URL` on loopback (`tools/with-emulator`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bench::cold_start::time_to_answers;
use bench::http::{self, free_port};
use bench::load::{self, WrkRun};
use bench::process::Running;
use bench::report::{Row, markdown, median, ms};
use bench::{deploy, instructions, lambda_init, package, seeding};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::json;

/// Measures the api and the deployer and prints a table; never asserts.
#[derive(Debug, Parser, Serialize)]
struct Options {
    /// The workspace: infra/app.yaml, Cargo.toml, .venv are found under it.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    workspace: PathBuf,
    /// Cargo's target directory (default: <workspace>/target).
    #[arg(long, env = "CARGO_TARGET_DIR")]
    target_dir: Option<PathBuf>,
    /// Where the JSON goes (default: <workspace>/bench-results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which sections to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cold,lambda,load,instructions,package,seed,deploy"
    )]
    sections: Vec<Section>,
    /// Cold starts of each binary (the median is reported).
    #[arg(long, default_value_t = 20)]
    starts: usize,
    /// Lambda-mode starts.
    #[arg(long, default_value_t = 10)]
    lambda_starts: usize,
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of wrk warm-up per target, not measured.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Measured wrk runs per target, interleaved across targets (medians).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// GETs in the shorter of the two callgrind runs of each figure.
    #[arg(long, default_value_t = 500)]
    counted_few: usize,
    /// GETs in the longer one: (Ir(many) - Ir(few)) / (many - few) per GET.
    #[arg(long, default_value_t = 2500)]
    counted_many: usize,
    /// Records POSTed to `mocks` before the load, so a list page is full.
    #[arg(long, default_value_t = 100)]
    list_records: usize,
    /// Items the AWS CLI writes one `put-item` process each (then extrapolated).
    #[arg(long, default_value_t = 200)]
    cli_puts: usize,
    /// Items the AWS CLI writes with `batch-write-item`, 25 a process.
    #[arg(long, default_value_t = 1000)]
    cli_batch_items: usize,
    /// No-op deploys after the first (the median is reported).
    #[arg(long, default_value_t = 3)]
    deploys: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Section {
    Cold,
    Lambda,
    Load,
    Instructions,
    Package,
    Seed,
    Deploy,
}

/// Where everything is.
#[derive(Debug)]
struct Paths {
    workspace: PathBuf,
    api: PathBuf,
    hello: PathBuf,
    deployer: PathBuf,
    app_yaml: PathBuf,
    out: PathBuf,
}

impl Paths {
    fn new(options: &Options) -> anyhow::Result<Self> {
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
    fn require(binaries: &[&Path]) -> anyhow::Result<()> {
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
struct TempDir(PathBuf);

impl TempDir {
    fn new(purpose: &str) -> anyhow::Result<Self> {
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

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let paths = Paths::new(&options)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for section in &options.sections {
        eprintln!(
            "bench: {section:?} ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        let result = match section {
            Section::Cold => cold_start(&paths, &options),
            Section::Lambda => runtime.block_on(lambda(&paths, &options)),
            Section::Load => throughput(&paths, &options),
            Section::Instructions => instructions(&paths, &options),
            Section::Package => package_size(&paths),
            Section::Seed => seed(&runtime, &paths, &options),
            Section::Deploy => deploy(&paths, &options),
        };
        match result {
            Ok(section_rows) => rows.extend(section_rows),
            Err(error) => {
                eprintln!("bench: {section:?} not measured: {error:#}");
                rows.push(Row::skipped(
                    &format!("{section:?}").to_lowercase(),
                    "(whole section)",
                    format!("{error:#}"),
                ));
            }
        }
    }
    let table = markdown(&rows);
    println!("{table}");
    let written = write_json(&paths, &options, &rows)?;
    eprintln!(
        "bench: done in {:.0} s; {} and {}",
        started.elapsed().as_secs_f64(),
        written.display(),
        paths.out.join("latest.json").display()
    );
    Ok(())
}

fn write_json(paths: &Paths, options: &Options, rows: &[Row]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&paths.out)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let document = json!({
        "generated_unix": now,
        "machine": machine(),
        "git": git_describe(&paths.workspace),
        "options": options,
        "rows": rows,
    });
    let text = serde_json::to_string_pretty(&document)?;
    let path = paths.out.join(format!("bench-{now}.json"));
    std::fs::write(&path, &text)?;
    std::fs::write(paths.out.join("latest.json"), &text)?;
    Ok(path)
}

/// CPUs, CPU model and kernel: figures mean little without them.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|line| {
        line.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, model)| model.trim().to_owned())
    });
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu_model": model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|text| text.trim().to_owned()).ok(),
    })
}

/// `git describe --always --dirty`, when git is there.
fn git_describe(workspace: &Path) -> Option<String> {
    let output = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn median_ms(durations: &[Duration]) -> Option<f64> {
    median(&durations.iter().copied().map(ms).collect::<Vec<_>>())
}

/// `infra/app.yaml` with every resource in memory (seed paths made
/// absolute), so the cold start without the embedded store can be told apart.
fn all_memory_config(paths: &Paths, dir: &Path) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(&paths.app_yaml)?;
    let infra = paths.workspace.join("infra");
    let memory = text
        .replace("backend: dynamodb", "backend: memory")
        .replace("seed: ", &format!("seed: {}/", infra.display()));
    let path = dir.join("app-all-memory.yaml");
    std::fs::write(&path, memory)?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// 1. Cold start
// ---------------------------------------------------------------------------

fn cold_start(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api, &paths.hello])?;
    let section = "cold start";
    let work = TempDir::new("cold")?;
    let memory_config = all_memory_config(paths, &work.0)?;
    let spawn_api = |config: &Path, data_dir: &Path, paths_to_get: &[&str]| {
        let port = free_port()?;
        time_to_answers(
            Command::new(&paths.api)
                .arg("--config")
                .arg(config)
                .arg("--data-dir")
                .arg(data_dir)
                .args(["--port", &port.to_string()]),
            port,
            paths_to_get,
        )
    };
    let both = ["/api/ping", "/api/mocks/000-1"];
    // Every `make run` but the first finds its store: one untimed start
    // creates it.
    let kept_store = work.0.join("data-kept");
    spawn_api(&paths.app_yaml, &kept_store, &both)?;
    let (mut api_ping, mut api_get, mut first_ping) = (Vec::new(), Vec::new(), Vec::new());
    let (mut memory_ping, mut memory_get, mut hello_ping) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so a slow moment of the machine hits every variant alike.
    for start in 0..options.starts {
        let times = spawn_api(&paths.app_yaml, &kept_store, &both)?;
        api_ping.push(times[0]);
        api_get.push(times[1]);
        let fresh_store = work.0.join(format!("data-{start}"));
        first_ping.push(spawn_api(&paths.app_yaml, &fresh_store, &both[..1])?[0]);
        let times = spawn_api(&memory_config, &work.0.join("data-unused"), &both)?;
        memory_ping.push(times[0]);
        memory_get.push(times[1]);
        let port = free_port()?;
        let times = time_to_answers(
            Command::new(&paths.hello).args(["--port", &port.to_string()]),
            port,
            &["/api/ping"],
        )?;
        hello_ping.push(times[0]);
    }
    let floor = median_ms(&hello_ping);
    let starts = format!("median of {} starts", options.starts);
    let row = |figure: &str, times: &[Duration]| {
        Row::new(section, figure, median_ms(times).unwrap_or_default(), "ms")
            .against("hello", floor)
    };
    Ok(vec![
        Row::new(
            section,
            "hello (floor): spawn → GET /api/ping",
            floor.unwrap_or_default(),
            "ms",
        )
        .note(starts.clone()),
        row("api, infra/app.yaml: spawn → GET /api/ping", &api_ping).note(format!(
            "{starts}; users on the embedded store, which exists (every start but the first)"
        )),
        row(
            "api, infra/app.yaml: spawn → GET /api/mocks/000-1",
            &api_get,
        )
        .note("the request after the ping, on a new connection"),
        row(
            "api, infra/app.yaml, first start: spawn → GET /api/ping",
            &first_ping,
        )
        .note("creates and seeds the store (a new redb file, synced to disk)"),
        row("api, all memory: spawn → GET /api/ping", &memory_ping)
            .note("every resource in memory: no embedded store to open"),
        row("api, all memory: spawn → GET /api/mocks/000-1", &memory_get),
    ])
}

// ---------------------------------------------------------------------------
// 2. Lambda-mode init
// ---------------------------------------------------------------------------

async fn lambda(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api])?;
    let section = "lambda init";
    let (mut polls, mut responses) = (Vec::new(), Vec::new());
    for _ in 0..options.lambda_starts {
        let start =
            lambda_init::start_once(&paths.api, &paths.app_yaml, "/api/mocks/000-1").await?;
        polls.push(start.first_poll);
        responses.push(start.first_response);
    }
    let note = format!(
        "median of {} starts; Runtime API stub on loopback, RUST_LOG=info, API_CONFIG=infra/app.yaml",
        options.lambda_starts
    );
    Ok(vec![
        Row::new(
            section,
            "api in Lambda mode: spawn → first /invocation/next",
            median_ms(&polls).unwrap_or_default(),
            "ms",
        )
        .note(note),
        Row::new(
            section,
            "api in Lambda mode: spawn → REST event GET /api/mocks/000-1 answered",
            median_ms(&responses).unwrap_or_default(),
            "ms",
        )
        .note("API Gateway REST (v1) proxy event, statusCode 200 checked"),
    ])
}

// ---------------------------------------------------------------------------
// 3. Throughput, latency and memory
// ---------------------------------------------------------------------------

/// Waits for a server started for the load section to answer its ping.
fn wait_ready(server: &mut Running, port: u16) -> anyhow::Result<()> {
    server.wait_for_ping(port, Duration::from_secs(10), Duration::from_millis(5))
}

fn start_api(paths: &Paths, data_dir: &Path, port: u16, rust_log: &str) -> anyhow::Result<Running> {
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
fn fill_mocks(port: u16, count: usize) -> anyhow::Result<()> {
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

#[derive(Debug)]
struct Target {
    name: &'static str,
    url: String,
    runs: Vec<WrkRun>,
}

fn throughput(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api, &paths.hello])?;
    if !load::wrk_available() {
        bail!("wrk is not installed (`apt-get install -y wrk`; make bench tries)");
    }
    let section = "load";
    let work = TempDir::new("load")?;
    let hello_port = free_port()?;
    let mut hello =
        Running::spawn(Command::new(&paths.hello).args(["--port", &hello_port.to_string()]))?;
    wait_ready(&mut hello, hello_port)?;
    let api_port = free_port()?;
    let api = start_api(paths, &work.0.join("api"), api_port, "info")?;
    let quiet_port = free_port()?;
    let quiet = start_api(paths, &work.0.join("quiet"), quiet_port, "warn")?;
    let idle = (hello.peak_rss_kib()?, api.peak_rss_kib()?);
    fill_mocks(api_port, options.list_records)?;
    fill_mocks(quiet_port, options.list_records)?;

    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    let mut targets = [
        ("hello GET /api/ping", url(hello_port, "/api/ping")),
        (
            "api get-by-id GET /api/mocks/000-1",
            url(api_port, "/api/mocks/000-1"),
        ),
        (
            "api list GET /api/mocks?limit=20",
            url(api_port, "/api/mocks?limit=20"),
        ),
        (
            "api get-by-id, RUST_LOG=warn (no request log line)",
            url(quiet_port, "/api/mocks/000-1"),
        ),
    ]
    .map(|(name, url)| Target {
        name,
        url,
        runs: Vec::new(),
    });
    for target in &targets {
        load::wrk(&target.url, Duration::from_secs(options.warmup))?;
    }
    for round in 0..options.rounds {
        for target in &mut targets {
            eprintln!(
                "bench: load round {}/{}: {}",
                round + 1,
                options.rounds,
                target.name
            );
            target.runs.push(load::wrk(
                &target.url,
                Duration::from_secs(options.duration),
            )?);
        }
    }
    let after = (hello.peak_rss_kib()?, api.peak_rss_kib()?, api.rss_kib()?);
    drop((hello, api, quiet));

    let pick = |target: &Target, figure: fn(&WrkRun) -> f64| {
        median(&target.runs.iter().map(figure).collect::<Vec<_>>())
    };
    let floor = &targets[0];
    let floor_rps = pick(floor, |run| run.requests_per_sec);
    let floor_p50 = pick(floor, |run| run.p50_ms);
    let floor_p99 = pick(floor, |run| run.p99_ms);
    let shape = format!(
        "wrk -t{} -c{} --latency, median of {} × {} s after {} s warm-up",
        load::THREADS,
        load::CONNECTIONS,
        options.rounds,
        options.duration,
        options.warmup
    );
    let mut rows = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        // The floor's own rows carry no ratio (it would be 1.00 by definition).
        let baseline = |value: Option<f64>| if index == 0 { None } else { value };
        let errors: u64 = target
            .runs
            .iter()
            .map(|run| run.non_success + run.socket_errors)
            .sum();
        let rps = target
            .runs
            .iter()
            .map(|run| format!("{:.0}", run.requests_per_sec))
            .collect::<Vec<_>>();
        rows.push(
            Row::new(
                section,
                format!("{}: throughput", target.name),
                pick(target, |run| run.requests_per_sec).unwrap_or_default(),
                "req/s",
            )
            .against("hello", baseline(floor_rps))
            .note(format!(
                "{shape}; runs {}; {errors} non-2xx or socket errors",
                rps.join(", ")
            )),
        );
        rows.push(
            Row::new(
                section,
                format!("{}: p50", target.name),
                pick(target, |run| run.p50_ms).unwrap_or_default(),
                "ms",
            )
            .against("hello", baseline(floor_p50)),
        );
        rows.push(
            Row::new(
                section,
                format!("{}: p99", target.name),
                pick(target, |run| run.p99_ms).unwrap_or_default(),
                "ms",
            )
            .against("hello", baseline(floor_p99)),
        );
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    let memory = "memory";
    rows.extend([
        Row::new(memory, "hello: peak RSS idle", mib(idle.0), "MiB").note("VmHWM after start and one request"),
        Row::new(memory, "api: peak RSS idle", mib(idle.1), "MiB")
            .against("hello", Some(mib(idle.0)))
            .note("VmHWM after start and one request (infra/app.yaml)"),
        Row::new(memory, "hello: peak RSS under load", mib(after.0), "MiB").note("VmHWM after every load round"),
        Row::new(memory, "api: peak RSS under load", mib(after.1), "MiB")
            .against("hello", Some(mib(after.0)))
            .note(format!(
                "VmHWM after {} records POSTed and every get-by-id and list round; VmRSS then {:.1} MiB",
                options.list_records,
                mib(after.2)
            )),
    ]);
    Ok(rows)
}

// ---------------------------------------------------------------------------
// 4. Instructions per request
// ---------------------------------------------------------------------------

fn instructions(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api, &paths.hello])?;
    if !instructions::valgrind_available() {
        bail!("valgrind is not installed (`apt-get install -y valgrind`; make bench tries)");
    }
    let section = "instructions";
    let work = TempDir::new("instructions")?;
    let data_dir = work.0.join("data");
    let api = instructions::Server {
        program: paths.api.clone(),
        args: vec![
            "--config".to_owned(),
            paths.app_yaml.display().to_string(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
        ],
        env: vec![("RUST_LOG".to_owned(), "info".to_owned())],
    };
    let hello = instructions::Server {
        program: paths.hello.clone(),
        args: Vec::new(),
        env: Vec::new(),
    };
    let nothing = |_port: u16| Ok(());
    let fill = |port: u16| fill_mocks(port, options.list_records);
    let (few, many) = (options.counted_few, options.counted_many);
    let run = |server: &instructions::Server, requests: usize| {
        let ping = instructions::Workload {
            path: "/api/ping",
            prepare: &nothing,
        };
        instructions::total(server, ping, requests, &work.0)
    };
    let count =
        |server: &instructions::Server, path: &str, prepare: &dyn Fn(u16) -> anyhow::Result<()>| {
            eprintln!("bench: callgrind, {few} and {many} GETs of {path}");
            let workload = instructions::Workload { path, prepare };
            instructions::per_request(server, workload, few, many, &work.0)
        };
    // The first start creates and seeds the store; every later run finds it,
    // as every `make run` but the first does.
    let first_start = run(&api, 0)?;
    let start = run(&api, 0)?;
    let hello_start = run(&hello, 0)?;
    let floor = count(&hello, "/api/ping", &nothing)?;
    let get = count(&api, "/api/mocks/000-1", &nothing)?;
    let list = count(&api, "/api/mocks?limit=20", &fill)?;
    let method = format!(
        "callgrind: (Ir of {many} GETs − Ir of {few}) / {}, one keep-alive connection; user space only",
        many - few
    );
    let millions = |count: u64| count as f64 / 1e6;
    Ok(vec![
        Row::new(
            section,
            "hello GET /api/ping: per request",
            floor,
            "instructions",
        )
        .note(method),
        Row::new(
            section,
            "api get-by-id GET /api/mocks/000-1: per request",
            get,
            "instructions",
        )
        .against("hello", Some(floor))
        .note("RUST_LOG=info: the request line is written (to /dev/null)"),
        Row::new(
            section,
            "api list GET /api/mocks?limit=20: per request",
            list,
            "instructions",
        )
        .against("hello", Some(floor))
        .note(format!(
            "a page of 20 of {} records",
            options.list_records + 2
        )),
        Row::new(
            section,
            "hello: start, one ping, shutdown",
            millions(hello_start),
            "M instructions",
        ),
        Row::new(
            section,
            "api, infra/app.yaml: start, one ping, shutdown",
            millions(start),
            "M instructions",
        )
        .against("hello", Some(millions(hello_start)))
        .note("the embedded store exists (every start but the first)"),
        Row::new(
            section,
            "api, infra/app.yaml, first start: start, one ping, shutdown",
            millions(first_start),
            "M instructions",
        )
        .against("hello", Some(millions(hello_start)))
        .note("creates and seeds the store"),
    ])
}

// ---------------------------------------------------------------------------
// 5. The Lambda package
// ---------------------------------------------------------------------------

fn package_size(paths: &Paths) -> anyhow::Result<Vec<Row>> {
    let section = "package";
    let cargo_toml = std::fs::read_to_string(paths.workspace.join("Cargo.toml"))?;
    let profile = format!(
        "[profile.lambda] {}; [profile.release] {}",
        package::profile_settings(&cargo_toml, "lambda"),
        package::profile_settings(&cargo_toml, "release")
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut rows = Vec::new();
    let zip = paths.workspace.join("target/lambda/api/bootstrap.zip");
    match std::fs::metadata(&zip) {
        Ok(metadata) => {
            let built = metadata.modified().ok();
            let sources = [
                paths.workspace.join("api/src"),
                paths.workspace.join("Cargo.lock"),
            ]
            .iter()
            .filter_map(|path| {
                if path.is_dir() {
                    package::newest_under(path)
                } else {
                    std::fs::metadata(path).and_then(|m| m.modified()).ok()
                }
            })
            .max();
            let freshness = match (built, sources) {
                (Some(built), Some(sources)) if built < sources => {
                    "STALE: older than api/src or Cargo.lock, rebuild with BENCH_LAMBDA=1 make bench"
                }
                _ => "newer than api/src and Cargo.lock",
            };
            rows.push(
                Row::new(
                    section,
                    "Lambda zip, arm64 (target/lambda/api/bootstrap.zip)",
                    mib(metadata.len()),
                    "MiB",
                )
                .note(format!("{} bytes; {freshness}; {profile}", metadata.len())),
            );
        }
        Err(_) => rows.push(Row::skipped(
            section,
            "Lambda zip, arm64 (target/lambda/api/bootstrap.zip)",
            format!("not built (BENCH_LAMBDA=1 make bench, or make lambda); {profile}"),
        )),
    }
    for (figure, binary) in [
        ("api release binary, host (target/release/api)", &paths.api),
        (
            "hello release binary, host (target/release/hello)",
            &paths.hello,
        ),
    ] {
        match std::fs::metadata(binary) {
            Ok(metadata) => rows.push(
                Row::new(section, figure, mib(metadata.len()), "MiB")
                    .note("stripped, uncompressed"),
            ),
            Err(error) => rows.push(Row::skipped(section, figure, error)),
        }
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// 6. Seeding
// ---------------------------------------------------------------------------

fn unique(purpose: &str) -> String {
    format!(
        "bench-{purpose}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn seed(
    runtime: &tokio::runtime::Runtime,
    paths: &Paths,
    options: &Options,
) -> anyhow::Result<Vec<Row>> {
    let endpoint = seeding::emulator_endpoint()?;
    let section = "seeding";
    let client = runtime.block_on(seeding::client());
    let mut rows = Vec::new();
    let mut deployer_rate = None;
    for items in [1_000, 10_000] {
        let figure = format!("deployer seed, {items} items");
        match runtime.block_on(seeding::deployer_seed(&client, &unique("seed"), items)) {
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
        .block_on(seeding::create_table(&client, &table))
        .and_then(|()| seeding::cli_put_items(&cli, &endpoint, &table, options.cli_puts));
    match put {
        Ok((calls, elapsed)) => {
            let rate = options.cli_puts as f64 / elapsed.as_secs_f64();
            let held = runtime
                .block_on(seeding::count_items(&client, &table))
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
        .block_on(seeding::create_table(&client, &table))
        .and_then(|()| {
            seeding::cli_batch_write(&cli, &endpoint, &table, options.cli_batch_items, &work.0)
        });
    match batch {
        Ok((calls, elapsed)) => {
            let rate = options.cli_batch_items as f64 / elapsed.as_secs_f64();
            let held = runtime
                .block_on(seeding::count_items(&client, &table))
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

// ---------------------------------------------------------------------------
// 7. Deploy
// ---------------------------------------------------------------------------

fn deploy(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    seeding::emulator_endpoint()?;
    Paths::require(&[&paths.api, &paths.deployer])?;
    let section = "deploy";
    let work = TempDir::new("deploy")?;
    let zip = deploy::host_lambda_zip(&paths.api, &paths.workspace.join("infra/seed"), &work.0)?;
    let zip = zip.to_str().context("a temp path that is not UTF-8")?;
    let app_yaml = deploy::host_declaration(&paths.workspace, &work.0)?;
    let config = app_yaml.to_str().context("a temp path that is not UTF-8")?;
    let stack = unique("stack");
    let common = ["--config", config, "--stack-name", &stack];
    let (_, first) = deploy::deployer(
        &paths.deployer,
        &paths.workspace,
        &[&common[..], &["bootstrap", "--artifact", zip, "--yes"]].concat(),
    )?;
    let mut no_ops = Vec::new();
    for _ in 0..options.deploys {
        let (stdout, elapsed) = deploy::deployer(
            &paths.deployer,
            &paths.workspace,
            &[&common[..], &["deploy", "--artifact", zip, "--yes"]].concat(),
        )?;
        if !stdout.contains("No changes") {
            bail!("a second deploy was not a no-op: {stdout}");
        }
        no_ops.push(elapsed);
    }
    let runs = no_ops
        .iter()
        .map(|run| format!("{:.2}", run.as_secs_f64()))
        .collect::<Vec<_>>();
    Ok(vec![
        Row::new(
            section,
            "first deploy: deployer bootstrap --artifact (bucket, stack, seed)",
            first.as_secs_f64(),
            "s",
        )
        .note("host release api zipped as bootstrap; DEPLOYER_POLL_INTERVAL_MS=100"),
        Row::new(
            section,
            "no-op deployer deploy --yes --artifact",
            median(&no_ops.iter().map(Duration::as_secs_f64).collect::<Vec<_>>())
                .unwrap_or_default(),
            "s",
        )
        .note(format!(
            "median of {} runs ({} s), each answering 'No changes'; DEPLOYER_POLL_INTERVAL_MS=100",
            options.deploys,
            runs.join(", ")
        )),
    ])
}
