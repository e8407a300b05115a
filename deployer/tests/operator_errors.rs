//! What a person sees when a command cannot reach AWS, with real failure
//! setups rather than faked errors: the `deployer` binary in an environment
//! with no credentials, no region, an SSO profile never logged in, or an
//! endpoint nobody listens on. Each must end with a non-zero exit and one or
//! two lines on stderr saying what to do; `--verbose` adds every cause.
//!
//! Nothing here reaches the network: the environment is emptied, the EC2
//! metadata service is off (it is not on loopback), and the one endpoint is a
//! closed loopback port.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn declaration() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/app.yaml")
}

/// `deployer ARGS status` in an environment holding only `vars` (and PATH),
/// with `home` as HOME so no ~/.aws of the machine is read.
fn status(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("--config")
        .arg(declaration())
        .args(args)
        .arg("status");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn empty_home() -> PathBuf {
    let home = std::env::temp_dir().join(format!("deployer-home-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Exit status 1, and stderr of exactly `lines` lines, the first `error: …`.
fn assert_fails_in(output: &Output, lines: usize) -> String {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), lines, "{text}");
    assert!(text.starts_with("error: "), "{text}");
    assert!(!text.contains("DispatchFailure"), "a debug dump: {text}");
    text
}

#[test]
fn no_credentials_says_how_to_provide_them() {
    let home = empty_home();
    let output = status(&home, &[("AWS_REGION", "eu-west-1")], &[]);
    let text = assert_fails_in(&output, 2);
    assert!(
        text.starts_with("error: no AWS credentials found (cloudformation DescribeStacks)"),
        "{text}"
    );
    assert!(text.contains("AWS_PROFILE") && text.contains("AWS_ACCESS_KEY_ID"));

    let verbose = status(&home, &[("AWS_REGION", "eu-west-1")], &["--verbose"]);
    let text = stderr(&verbose);
    assert!(text.contains("caused by: "), "{text}");
    assert!(
        text.contains("[aws] cloudformation DescribeStacks"),
        "{text}"
    );
}

#[test]
fn a_profile_that_does_not_exist_is_named() {
    let home = empty_home();
    let output = status(
        &home,
        &[("AWS_REGION", "eu-west-1"), ("AWS_PROFILE", "nope")],
        &[],
    );
    let text = assert_fails_in(&output, 2);
    assert!(text.contains("profile `nope`"), "{text}");
}

#[test]
fn an_sso_profile_never_logged_in_says_to_log_in() {
    let home = empty_home();
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile dev]\nsso_start_url = https://example.awsapps.com/start\n\
         sso_region = eu-west-1\nsso_account_id = 123456789012\nsso_role_name = Admin\n\
         region = eu-west-1\n",
    )
    .unwrap();
    let output = status(&home, &[], &["--profile", "dev"]);
    let text = assert_fails_in(&output, 2);
    assert!(text.contains("SSO session"), "{text}");
    assert!(text.contains("aws sso login --profile dev"), "{text}");
}

#[test]
fn no_region_is_said_before_any_call() {
    let home = empty_home();
    let output = status(
        &home,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
        ],
        &["--verbose"],
    );
    // One line, and no `[aws]` line: nothing was called.
    let text = assert_fails_in(&output, 1);
    assert!(text.contains("the AWS region is not set"), "{text}");
}

#[test]
fn an_endpoint_nobody_listens_on_is_named() {
    let home = empty_home();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let output = status(
        &home,
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
            ("AWS_ENDPOINT_URL", &endpoint),
        ],
        &[],
    );
    let text = assert_fails_in(&output, 2);
    assert!(
        text.starts_with(&format!(
            "error: could not reach {endpoint} (AWS_ENDPOINT_URL)"
        )),
        "{text}"
    );
    // The secret key is never printed.
    assert!(
        !text.contains("example\n") && !text.contains("AKIDEXAMPLE"),
        "{text}"
    );
}

/// `deployer ARGS` with the declaration `yaml` (in a fresh directory), and
/// credentials, a region and an endpoint that would answer nothing.
fn with_declaration(yaml: &str, args: &[&str]) -> Output {
    let home = empty_home();
    let file = home.join("app.yaml");
    std::fs::write(&file, yaml).unwrap();
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", closed_port()),
        )
        .current_dir(&home)
        .arg("--config")
        .arg(&file)
        .args(args)
        .output()
        .unwrap()
}

/// The declaration is checked before anything else: a deploy with a bad
/// branch and a missing seed lists both and stops, with no build (no
/// cargo-lambda output) and no AWS call (no `[aws]` line under --verbose).
#[test]
fn every_invalid_setting_is_reported_before_any_build_or_call() {
    let yaml = "resources:\n  users: { backend: dynamodb, seed: users.json }\nstack:\n  \
                memory_mb: 64\n  pipeline:\n    repository: https://github.com/o/r\n    \
                branch: 'feature..x'\n";
    for command in [
        &["--verbose", "deploy", "--yes"][..],
        &["render"],
        &["diff"],
        &["seed"],
    ] {
        let output = with_declaration(yaml, command);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {text}");
        assert!(text.starts_with("error: "), "{text}");
        assert!(text.contains("app.yaml cannot be deployed:"), "{text}");
        for key in [
            "stack.memory_mb",
            "stack.pipeline.branch",
            "resources.users.seed",
        ] {
            assert!(
                text.contains(&format!("`{key}`: ")),
                "{command:?} misses {key}: {text}"
            );
        }
        assert!(!text.contains("[aws]"), "an AWS call was made: {text}");
        assert!(
            !text.to_lowercase().contains("cargo"),
            "a build was started: {text}"
        );
        assert!(output.stdout.is_empty(), "{command:?}");
    }
}
