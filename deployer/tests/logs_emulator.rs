//! `deployer logs` on the emulator, as someone chasing a failed request
//! uses it: the real `deployer` binary bootstraps a stack serving the real
//! `api` binary, a client calls the API through the emulator's API Gateway,
//! one request fails with `internal error (request id …)`, and `deployer
//! logs` finds it by that id, lists the failures, prints the events as JSON
//! and follows new lines until interrupted.
//!
//! The emulator's Lambda writes each invocation's lines to the function's
//! log group as Lambda does: `START`, what the function printed (the API's
//! own JSON lines), `END`, `REPORT`. So the lines read here are the API's
//! real lines, written by `api::logging` under the Lambda runtime.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

#[path = "../../api/tests/support/mod.rs"]
mod support;

mod deployed;

use deployed::{declaration, deployer, deployer_command, host_lambda_zip, stderr, stdout};

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A response and the request id the API gave it.
struct Response {
    status: u16,
    request_id: String,
    body: String,
}

/// One request without a body to the emulator's gateway.
fn http(endpoint: &str, method: &str, path: &str) -> Response {
    let response = deployed::http(endpoint, method, path, "");
    let request_id = response
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id in\n{}", response.head))
        .to_owned();
    Response {
        status: response.status,
        request_id,
        body: response.body,
    }
}

/// A child process, killed if the test ends before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_request_is_found_by_its_id() {
    let Some(sdk) = support::emulator_config().await else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let dir = std::env::temp_dir().join(format!("deployer-logs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = format!("logs-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let config = declaration(&dir, "infra", "");
    let config = config.to_str().unwrap();
    let on_stack = |args: &[&str]| {
        let mut all = vec!["--config", config, "--stack-name", &stack];
        all.extend_from_slice(args);
        deployer(&all)
    };

    // No stack yet: the usual answer, naming the command that makes one.
    let run = on_stack(&["logs"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("create it with `deployer bootstrap`"),
        "{}",
        stderr(&run)
    );

    let zip = host_lambda_zip(&dir);
    let run = on_stack(&["bootstrap", "--artifact", zip.to_str().unwrap(), "--yes"]);
    assert!(run.status.success(), "bootstrap failed:\n{}", stderr(&run));
    let api_id = stdout(&run)
        .lines()
        .find_map(|line| line.trim().strip_prefix("ApiUrl"))
        .and_then(|url| url.trim().strip_prefix("https://"))
        .and_then(|url| url.split('.').next())
        .unwrap()
        .to_owned();
    let users = format!("/restapis/{api_id}/prod/_user_request_/api/users");

    // A client's requests: one answered, then one the API cannot serve,
    // its table gone from under it.
    let listed = http(&endpoint, "GET", &users);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let table = format!("{stack}-users");
    aws_sdk_dynamodb::Client::new(&sdk)
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let failed = http(&endpoint, "GET", &format!("{users}/000-1"));
    assert_eq!(failed.status, 500, "{}", failed.body);
    let said: Value = serde_json::from_str(&failed.body).unwrap();
    assert_eq!(
        said["error"],
        format!("internal error (request id {})", failed.request_id),
        "the client is told the id it also got in x-request-id"
    );

    // All lines: one per request, with Lambda's around each invocation.
    let run = on_stack(&["logs"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let all = stdout(&run);
    // Time, then status, method and path, latency, and the request id last.
    let request_line = |id: &str| {
        let line = all
            .lines()
            .find(|line| line.ends_with(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{all}"));
        line.split_whitespace()
            .skip(1)
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(request_line(&listed.request_id), "200 GET /api/users");
    assert_eq!(request_line(&failed.request_id), "500 GET /api/users/000-1");
    assert!(
        all.lines().filter(|line| line.contains(" START ")).count() >= 2,
        "{all}"
    );
    assert!(all.lines().any(|line| line.contains(" REPORT ")), "{all}");
    assert!(
        !all.lines().any(|line| line.contains(" END ")),
        "END says nothing REPORT does not: {all}"
    );
    assert!(!all.contains("{\""), "no JSON for people: {all}");

    // The failed request by its id: its lines and its invocation's.
    let run = on_stack(&["logs", "--request-id", &failed.request_id]);
    assert!(run.status.success(), "{}", stderr(&run));
    let found = stdout(&run);
    let kinds: Vec<&str> = found
        .lines()
        .map(|line| line.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(kinds, ["START", "ERROR", "500", "REPORT"], "{found}");
    let invocation = found
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap();
    assert!(
        found.lines().last().unwrap().contains(invocation),
        "the REPORT of the same invocation: {found}"
    );
    assert!(
        found.contains(&format!("internal error request_id={}", failed.request_id))
            && found.contains(&table),
        "the error line names the request and the table: {found}"
    );
    assert!(!found.contains(&listed.request_id), "{found}");

    // The same, as the events CloudWatch Logs holds, one JSON object a line.
    let run = on_stack(&[
        "--output",
        "json",
        "logs",
        "--request-id",
        &failed.request_id,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let events: Vec<Value> = stdout(&run)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 5, "END included: {events:?}");
    let messages: Vec<&str> = events
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    let request: Value = messages
        .iter()
        .find_map(|message| {
            serde_json::from_str::<Value>(message)
                .ok()
                .filter(|line| line["message"] == "request")
        })
        .unwrap();
    assert_eq!(request["request_id"], failed.request_id.as_str());
    assert_eq!(request["status"], 500);
    assert_eq!(request["span"]["requestId"], invocation);
    assert!(
        events
            .iter()
            .all(|event| event["timestamp"].is_i64() && event["log_stream"].is_string())
    );

    // Only the failures.
    let run = on_stack(&["logs", "--errors", "--since", "1h"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let errors = stdout(&run);
    assert!(errors.contains(&failed.request_id), "{errors}");
    assert!(!errors.contains(&listed.request_id), "{errors}");
    assert!(!errors.contains(" START "), "{errors}");

    // An id no line names.
    let run = on_stack(&["logs", "--request-id", "no-such-request"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("names request `no-such-request` in the last 10m")
            && stderr(&run).contains("--since 1d"),
        "{}",
        stderr(&run)
    );

    // Following: a request made after it started shows up, and Ctrl-C
    // (SIGINT) ends it, successfully.
    let mut follower = Running(
        deployer_command(&[
            "--config",
            config,
            "--stack-name",
            &stack,
            "logs",
            "--follow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap(),
    );
    let (lines, received) = mpsc::channel();
    let output = follower.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // The line of the request `id`, which ends with it.
    let wait_for = |id: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(line) =
            received.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.ends_with(id) {
                return line;
            }
        }
        panic!("`deployer logs --follow` never printed the line of {id}");
    };
    // What came before it started, first.
    wait_for(&failed.request_id);
    let later = http(&endpoint, "GET", &format!("{users}/000-2"));
    let line = wait_for(&later.request_id);
    assert!(line.contains("GET    /api/users/000-2"), "{line}");
    let interrupt = Command::new("kill")
        .args(["-INT", &follower.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let ended = follower.0.wait().unwrap();
    assert!(ended.success(), "Ctrl-C ends a follow normally: {ended:?}");

    let run = on_stack(&["destroy", "--yes"]);
    assert!(run.status.success(), "{}", stderr(&run));
}
