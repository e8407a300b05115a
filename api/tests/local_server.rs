//! The `api` binary as `make run` starts it: a real process on a real socket.
//!
//! Covers what only the binary does: reading `--config`, binding `--port`,
//! the first log line, refusing to start on a declaration it cannot serve,
//! shutting down cleanly on SIGTERM, and ids as hyper reads them from a
//! request line.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

mod addressing;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/app.yaml")
}

/// The binary, killed when dropped so a failing test leaves no process behind.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for one test's embedded store, removed when the test
/// is done with it.
fn data_dir() -> support::ScratchDir {
    support::ScratchDir::new("api-local")
}

impl Server {
    /// Starts the binary on a free port, its store in `data`, and waits until
    /// it listens. Returns it with its first log line.
    fn start(config: &Path, data: &Path) -> (Server, Value) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_api"))
            .args(["--port", "0", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "info")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("API_DYNAMODB")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next_line =
            || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
        let first = next_line();
        let mut line = first.clone();
        while line["message"] != "listening" {
            line = next_line();
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let port = line["url"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/api")
            .parse()
            .unwrap();
        (Server { child, port }, first)
    }

    /// Sends SIGTERM and waits (at most 10 s) for the process to exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One HTTP/1.1 request on a fresh connection; returns the status and body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = self.exchange(method, path, &[], body);
        (status, body)
    }

    /// One HTTP/1.1 request with extra `headers` on a fresh connection, the
    /// path sent as it is; returns the status, headers and body.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, HeaderMap, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let mut parsed = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            parsed.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        (status, parsed, body.to_owned())
    }
}

impl addressing::Http for Server {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> addressing::Reply {
        let (status, headers, body) = self.exchange(method.as_str(), path, headers, &body);
        addressing::Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: addressing::json_or_null(body.as_bytes()),
        }
    }
}

#[test]
fn serves_the_declared_resources_and_says_first_where_data_goes() {
    let data = data_dir();
    let (server, first_line) = Server::start(&repo_config(), data.path());
    assert_eq!(first_line["message"], "serving 2 resources");
    assert_eq!(
        first_line["resources"],
        format!(
            "mocks (memory), users (dynamodb: embedded store {}, not AWS)",
            data.path().join("api.redb").display()
        )
    );

    let (status, body) = server.request("GET", "/api/mocks", "");
    assert_eq!(status, 200);
    let records: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(records[0]["id"], "000-1");
    assert_eq!(records[1]["id"], "000-2");

    let (status, body) = server.request("GET", "/api/users", "");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!([
            {"id": "000-1", "full_name": "User X", "gender": "M"},
            {"id": "000-2", "full_name": "User Y", "gender": "F"}
        ])
    );
}

#[test]
fn users_created_over_http_survive_a_restart_and_seeds_are_not_replayed() {
    let data = data_dir();
    let (server, _) = Server::start(&repo_config(), data.path());
    let created = server.request(
        "POST",
        "/api/users",
        r#"{"id":"000-3","full_name":"User Z"}"#,
    );
    assert_eq!(created.0, 201);
    assert_eq!(server.request("DELETE", "/api/users/000-1", "").0, 204);
    assert!(server.terminate().success());

    let (server, _) = Server::start(&repo_config(), data.path());
    let (status, body) = server.request("GET", "/api/users/000-3", "");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"id":"000-3","full_name":"User Z"}"#)
    );
    assert_eq!(
        server.request("GET", "/api/users/000-1", "").0,
        404,
        "a deleted seed record stays deleted"
    );
}

/// Ids percent-encoded in request lines, as hyper parses them: the round trip
/// of every accepted id (a trailing `%20` addresses exactly `trail `), and
/// every refused one a 400 naming the rule (`%2F` naming `/`, a trailing
/// `%09` the control character), never a 500.
#[tokio::test]
async fn ids_travel_percent_encoded_in_request_lines() {
    let data = data_dir();
    let (server, _) = Server::start(&repo_config(), data.path());
    let accepted = addressing::accepted_ids();
    addressing::create_each(&server, "/api/users", &accepted).await;
    // curl sends a path's UTF-8 as it is: hyper takes it as if encoded.
    let (status, body) = server.request("GET", "/api/users/ürün-7", "");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"id":"ürün-7","name":"ürün-7"}"#)
    );
    addressing::address_each(&server, "/api/users", &accepted).await;
    for (id, reason) in addressing::refused_ids() {
        addressing::refuses(&server, "/api/users", &id, reason).await;
    }
}

#[test]
fn stops_cleanly_on_sigterm() {
    let data = data_dir();
    let (server, _) = Server::start(&repo_config(), data.path());
    assert_eq!(server.request("GET", "/api/ping", "").0, 200);
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn refuses_to_start_on_a_backend_it_does_not_know() {
    let scratch = data_dir();
    let dir = scratch.path();
    let config = dir.join("app.yaml");
    std::fs::write(&config, "resources:\n  users: { backend: redis }\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--port", "0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown variant `redis`, expected `memory` or `dynamodb`"),
        "{stderr}"
    );
}

#[test]
fn refuses_to_start_without_its_declaration() {
    let output = Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--port", "0", "--config", "/nonexistent/app.yaml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/app.yaml"),
        "{stderr}"
    );
}

#[test]
fn a_second_server_on_the_same_store_is_refused_clearly() {
    let data = data_dir();
    let (_first, _) = Server::start(&repo_config(), data.path());
    let output = Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--port", "0", "--config"])
        .arg(repo_config())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is another `api` process running?"),
        "{stderr}"
    );
}

/// Every `curl` line of the README, in order, against a fresh server: each must
/// get a 2xx, so the documentation cannot drift from the API.
#[test]
fn the_readme_curl_examples_work() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let data = data_dir();
    let (server, _) = Server::start(&repo_config(), data.path());
    let examples: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with("curl "))
        .collect();
    assert!(examples.len() >= 3, "the README shows curl examples");
    for example in examples {
        let command = example
            .split("   #")
            .next()
            .unwrap()
            .replace("localhost:8000", &format!("127.0.0.1:{}", server.port));
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{command} --max-time 10 -o /dev/null -w '%{{http_code}}'"
            ))
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && status.starts_with('2'),
            "{example}: status {status}, {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
