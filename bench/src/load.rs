//! Throughput and latency with `wrk` on loopback: its output parsed into
//! requests per second, p50 and p99 (`--latency`), and what went wrong.

use std::process::Command;
use std::time::Duration;

use crate::http::free_port;
use crate::process::Running;
use crate::report::{Row, median};
use crate::setup::{Options, Paths, TempDir, fill_mocks, start_api, wait_ready};
use anyhow::{Context as _, bail};

/// wrk's shape for every run: 2 threads, 32 connections.
pub const THREADS: u32 = 2;
pub const CONNECTIONS: u32 = 32;

/// One wrk run.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses outside 2xx/3xx.
    pub non_success: u64,
    /// connect, read, write and timeout errors added up.
    pub socket_errors: u64,
}

/// Whether `wrk` is on the PATH.
pub fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|output| !output.stdout.is_empty() || !output.stderr.is_empty())
}

/// Runs wrk against `url` for `duration` and parses what it printed.
pub fn wrk(url: &str, duration: Duration) -> anyhow::Result<WrkRun> {
    let output = Command::new("wrk")
        .args([
            format!("-t{THREADS}"),
            format!("-c{CONNECTIONS}"),
            format!("-d{}s", duration.as_secs().max(1)),
            "--latency".to_owned(),
            url.to_owned(),
        ])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// Reads `Requests/sec:`, the 50% and 99% lines of the latency distribution,
/// `Non-2xx or 3xx responses:` and `Socket errors:` from wrk's report.
pub fn parse(text: &str) -> anyhow::Result<WrkRun> {
    let mut requests_per_sec = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut non_success = 0;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(value.trim().parse::<f64>()?);
        } else if let Some(value) = line.strip_prefix("50%") {
            p50_ms = Some(duration_ms(value.trim())?);
        } else if let Some(value) = line.strip_prefix("99%") {
            p99_ms = Some(duration_ms(value.trim())?);
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_success = value.trim().parse()?;
        } else if let Some(value) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in value.split(',') {
                let count = part
                    .split_whitespace()
                    .nth(1)
                    .context("a socket error count")?;
                socket_errors += count.parse::<u64>()?;
            }
        }
    }
    Ok(WrkRun {
        requests_per_sec: requests_per_sec.context("no Requests/sec line")?,
        p50_ms: p50_ms.context("no 50% line (was --latency given?)")?,
        p99_ms: p99_ms.context("no 99% line")?,
        non_success,
        socket_errors,
    })
}

/// wrk's durations (`812.00us`, `1.05ms`, `2.10s`, `1.00m`) in milliseconds.
fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("not a number: {text:?}"))?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        _ => bail!("unknown unit in {text:?}"),
    })
}

// --- The section -----------------------------------------------------------

#[derive(Debug)]
struct Target {
    name: &'static str,
    url: String,
    runs: Vec<WrkRun>,
}

/// The section's rows, for `make bench`'s table.
pub fn run(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    Paths::require(&[&paths.api, &paths.hello])?;
    if !wrk_available() {
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
        wrk(&target.url, Duration::from_secs(options.warmup))?;
    }
    for round in 0..options.rounds {
        for target in &mut targets {
            eprintln!(
                "bench: load round {}/{}: {}",
                round + 1,
                options.rounds,
                target.name
            );
            target
                .runs
                .push(wrk(&target.url, Duration::from_secs(options.duration))?);
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
        THREADS, CONNECTIONS, options.rounds, options.duration, options.warmup
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

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:4000/api/mocks/000-1
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.34us  301.20us  12.01ms   91.02%
    Req/Sec    26.11k     1.92k   30.12k    70.50%
  Latency Distribution
     50%  571.00us
     75%  702.00us
     90%  856.00us
     99%    1.73ms
  519766 requests in 10.00s, 121.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  51972.61
Transfer/sec:     12.11MB
";

    #[test]
    fn a_wrk_report_is_parsed() {
        assert_eq!(
            parse(REPORT).unwrap(),
            WrkRun {
                requests_per_sec: 51972.61,
                p50_ms: 0.571,
                p99_ms: 1.73,
                non_success: 7,
                socket_errors: 3,
            }
        );
        let clean = REPORT
            .lines()
            .filter(|line| !line.contains("errors") && !line.contains("Non-2xx"))
            .collect::<Vec<_>>()
            .join("\n");
        let run = parse(&clean).unwrap();
        assert_eq!((run.non_success, run.socket_errors), (0, 0));
        let no_latency = REPORT.replace("50%", "");
        assert!(parse(&no_latency).is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        let check = |text: &str, ms: f64| {
            let parsed = duration_ms(text).unwrap();
            assert!((parsed - ms).abs() < 1e-9, "{text}: {parsed}");
        };
        check("812.00us", 0.812);
        check("1.05ms", 1.05);
        check("2.10s", 2100.0);
        check("1.00m", 60_000.0);
        assert!(duration_ms("12").is_err());
        assert!(duration_ms("12parsecs").is_err());
    }
}
