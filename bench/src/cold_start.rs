//! Cold start: from just before `spawn` to the first answered request, as a
//! client polling the port sees it (a refused connection is retried every
//! 100 µs), then the following requests on new connections.

use std::net::TcpStream;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::http;
use crate::process::Running;
use std::path::Path;

use crate::http::free_port;
use crate::report::Row;
use crate::setup::{Options, Paths, TempDir, all_memory_config, median_ms};

/// Longest a start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_micros(100);

/// Spawns `command` (which must listen on `127.0.0.1:port`), GETs each of
/// `paths` in turn, and returns the time from spawn to each 200; the process
/// is killed afterwards. The first path is polled until it answers.
pub fn time_to_answers(
    command: &mut Command,
    port: u16,
    paths: &[&str],
) -> anyhow::Result<Vec<Duration>> {
    let started = Instant::now();
    let mut server = Running::spawn(command)?;
    let mut times = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        let stream = if index == 0 {
            first_connection(&mut server, port, started)?
        } else {
            TcpStream::connect(http::loopback(port))?
        };
        let response = http::send(stream, "GET", path, "")?;
        if response.status != 200 {
            bail!("GET {path} answered {}: {}", response.status, response.body);
        }
        times.push(started.elapsed());
    }
    Ok(times)
}

fn first_connection(
    server: &mut Running,
    port: u16,
    started: Instant,
) -> anyhow::Result<TcpStream> {
    loop {
        match TcpStream::connect(http::loopback(port)) {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                if let Some(exit) = server.exited() {
                    bail!("the server {exit}");
                }
                if started.elapsed() > START_TIMEOUT {
                    bail!("no connection after {START_TIMEOUT:?}: {error}");
                }
                sleep(RETRY);
            }
        }
    }
}

// --- The section -----------------------------------------------------------

/// The section's rows, for `make bench`'s table.
pub fn run(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
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
