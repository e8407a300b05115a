//! What the end-to-end tests that deploy on the emulator share: the real
//! `deployer` binary run from the workspace, the host's `api` binary zipped
//! as a Lambda package, and a copy of `infra/` whose stack runs on this
//! machine's CPU.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// `deployer ARGS` from the workspace root, never on a terminal.
pub fn deployer_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .args(args)
        .current_dir(workspace())
        // The emulator answers at once; polling every 2 s would only wait.
        .env("DEPLOYER_POLL_INTERVAL_MS", "100")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    command
}

/// Runs `deployer ARGS` and echoes what it printed, for the test's log.
pub fn deployer(args: &[&str]) -> Output {
    let output = deployer_command(args).output().unwrap();
    eprintln!(
        "$ deployer {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `api` binary for this machine, zipped as a Lambda package: `bootstrap`
/// at the root (stripped of debug info when `strip` is there: 10 MB, not 60)
/// and the seeds under `infra/seed/`, where cargo-lambda's `--include` puts them.
pub fn host_lambda_zip(dir: &Path) -> PathBuf {
    let built = workspace().join("target/debug/api");
    assert!(
        built.exists(),
        "{} is missing: `cargo test --workspace` (make test) builds it",
        built.display()
    );
    let stripped = dir.join("bootstrap");
    let strip = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&built)
        .status();
    let binary = if matches!(strip, Ok(status) if status.success()) {
        stripped
    } else {
        built
    };
    let path = dir.join("lambda.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let executable = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", executable).unwrap();
    zip.write_all(&std::fs::read(binary).unwrap()).unwrap();
    for seed in std::fs::read_dir(workspace().join("infra/seed")).unwrap() {
        let seed = seed.unwrap().path();
        let name = format!("infra/seed/{}", seed.file_name().unwrap().to_string_lossy());
        zip.start_file(
            name,
            zip::write::SimpleFileOptions::default().unix_permissions(0o644),
        )
        .unwrap();
        zip.write_all(&std::fs::read(&seed).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// The host's CPU as `stack.arch` spells it: the emulator runs the zip's
/// `bootstrap` on this machine, and the deployer refuses a zip built for
/// another CPU than the stack's.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "arm64",
        other => panic!("no Lambda architecture runs {other} binaries"),
    }
}

/// A copy of `infra/` whose app.yaml ends with `stack_section` (`stack:` and
/// its settings, or nothing), its `arch` the host's.
pub fn declaration(dir: &Path, name: &str, stack_section: &str) -> PathBuf {
    let settings = stack_section
        .strip_prefix("stack:\n")
        .unwrap_or(stack_section);
    let stack_section = format!("stack:\n  arch: {}\n{settings}", host_arch());
    let infra = dir.join(name);
    std::fs::create_dir_all(infra.join("seed")).unwrap();
    for seed in std::fs::read_dir(workspace().join("infra/seed")).unwrap() {
        let seed = seed.unwrap().path();
        std::fs::copy(&seed, infra.join("seed").join(seed.file_name().unwrap())).unwrap();
    }
    let app = std::fs::read_to_string(workspace().join("infra/app.yaml")).unwrap();
    let path = infra.join("app.yaml");
    std::fs::write(&path, format!("{app}{stack_section}")).unwrap();
    path
}

/// A response from the emulator's API Gateway.
pub struct GatewayResponse {
    pub status: u16,
    /// The status line and headers, as received.
    pub head: String,
    pub body: String,
}

impl GatewayResponse {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(found, _)| found.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }
}

/// One HTTP/1.1 request to the emulator's gateway, with a JSON body when
/// `body` is not empty. Written by hand, not by an HTTP client, so that the
/// path goes out exactly as given (encoded or not).
pub fn http(endpoint: &str, method: &str, path: &str, body: &str) -> GatewayResponse {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    GatewayResponse {
        status: head[9..12].parse().unwrap(),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
