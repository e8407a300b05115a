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
