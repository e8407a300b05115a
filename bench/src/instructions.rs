//! Instructions per request, counted by callgrind: unlike seconds, the count
//! is the same from one run to the next on a busy 2-core machine, so it tells
//! whether a change to the request path made it cheaper.
//!
//! A server runs under `valgrind --tool=callgrind`, answers one ping, then
//! `n` GETs in turn on one keep-alive connection, and is stopped with
//! SIGTERM (callgrind writes its totals as the process ends). The start-up,
//! the ping and the shutdown cost the same in every run, so the difference
//! between a run of `many` and one of `few` requests, divided by
//! `many - few`, is what one request costs, the server's share of the kernel
//! aside (callgrind counts user-space instructions only).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::http::{KeepAlive, free_port};
use crate::process::Running;
use crate::report::Row;
use crate::setup::{Options, Paths, TempDir, fill_mocks};

/// Whether `valgrind` can be run.
pub fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A server to count: its binary and arguments, `--port` aside.
#[derive(Debug, Clone)]
pub struct Server {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// What to do once the server answers: `prepare` (untimed, uncounted apart
/// from being the same in every run) and then `requests` GETs of `path`.
#[derive(Clone, Copy)]
pub struct Workload<'a> {
    pub path: &'a str,
    pub prepare: &'a dyn Fn(u16) -> anyhow::Result<()>,
}

impl std::fmt::Debug for Workload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Instructions one GET of `workload.path` costs: the difference between a
/// run of `many` GETs and one of `few`, per GET.
pub fn per_request(
    server: &Server,
    workload: Workload<'_>,
    few: usize,
    many: usize,
    work_dir: &Path,
) -> anyhow::Result<f64> {
    if many <= few {
        bail!("{many} requests are not more than {few}");
    }
    let small = total(server, workload, few, work_dir)?;
    let large = total(server, workload, many, work_dir)?;
    Ok((large as f64 - small as f64) / (many - few) as f64)
}

/// Instructions of a whole run: start, `workload.prepare`, `requests` GETs of
/// `workload.path` on one connection, shutdown.
pub fn total(
    server: &Server,
    workload: Workload<'_>,
    requests: usize,
    work_dir: &Path,
) -> anyhow::Result<u64> {
    let port = free_port()?;
    let out_file = work_dir.join(format!("callgrind.{port}.out"));
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&server.program)
        .args(&server.args)
        .args(["--port", &port.to_string()])
        .envs(server.env.iter().map(|(name, value)| (name, value)));
    let mut running = Running::spawn(&mut command)?;
    // Under valgrind a start takes a second or more.
    running.wait_for_ping(port, Duration::from_secs(120), Duration::from_millis(50))?;
    (workload.prepare)(port)?;
    let mut connection = KeepAlive::connect(port, workload.path)?;
    for _ in 0..requests {
        let status = connection.get()?;
        if !(200..300).contains(&status) {
            bail!("GET {} answered {status}", workload.path);
        }
    }
    drop(connection);
    running.terminate(Duration::from_secs(60))?;
    let text = std::fs::read_to_string(&out_file)
        .with_context(|| format!("callgrind wrote no {}", out_file.display()))?;
    let _ = std::fs::remove_file(&out_file);
    instructions_in(&text).with_context(|| format!("no totals in {}", out_file.display()))
}

/// The `summary:` (or, in older formats, `totals:`) line of a callgrind
/// output file: the instructions of the whole run.
fn instructions_in(callgrind_out: &str) -> Option<u64> {
    callgrind_out.lines().find_map(|line| {
        let count = line
            .strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))?;
        count.split_whitespace().next()?.parse().ok()
    })
}

// --- The section -----------------------------------------------------------

/// The section's rows, for `make bench`'s table.
pub fn run(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api, &paths.hello])?;
    if !valgrind_available() {
        bail!("valgrind is not installed (`apt-get install -y valgrind`; make bench tries)");
    }
    let section = "instructions";
    let work = TempDir::new("instructions")?;
    let data_dir = work.0.join("data");
    let api = Server {
        program: paths.api.clone(),
        args: vec![
            "--config".to_owned(),
            paths.app_yaml.display().to_string(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
        ],
        env: vec![("RUST_LOG".to_owned(), "info".to_owned())],
    };
    let hello = Server {
        program: paths.hello.clone(),
        args: Vec::new(),
        env: Vec::new(),
    };
    let nothing = |_port: u16| Ok(());
    let fill = |port: u16| fill_mocks(port, options.list_records);
    let (few, many) = (options.counted_few, options.counted_many);
    let run = |server: &Server, requests: usize| {
        let ping = Workload {
            path: "/api/ping",
            prepare: &nothing,
        };
        total(server, ping, requests, &work.0)
    };
    let count = |server: &Server, path: &str, prepare: &dyn Fn(u16) -> anyhow::Result<()>| {
        eprintln!("bench: callgrind, {few} and {many} GETs of {path}");
        let workload = Workload { path, prepare };
        per_request(server, workload, few, many, &work.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_total_is_read_from_the_summary_line() {
        let out =
            "# callgrind format\nversion: 1\nevents: Ir\nfn=(1) main\n3 42\nsummary: 1234567\n";
        assert_eq!(instructions_in(out), Some(1_234_567));
        assert_eq!(instructions_in("events: Ir\ntotals: 99\n"), Some(99));
        assert_eq!(instructions_in("events: Ir\nfn=main\n"), None);
    }
}
