//! The whole product on the emulator, as a user drives it: `deployer
//! bootstrap` a stack, call the deployed API through API Gateway, change a
//! setting and watch `diff` and `deploy`, break a creation and recover it
//! with `--recreate`, then `destroy` and find the data still there.
//!
//! The deployer runs as its real binary; the Lambda is the real `api`
//! binary, built for this machine and zipped as `bootstrap` with the seeds,
//! which the emulator runs as a local process behind its API Gateway.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

#[path = "../../api/tests/support/mod.rs"]
mod support;

mod deployed;

use deployed::{declaration, deployer, host_arch, host_lambda_zip, stderr, stdout, workspace};

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The artifact bucket a deployed stack's function reads its code from.
async fn outputs_bucket(sdk: &aws_config::SdkConfig, stack: &str) -> String {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let described = cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    described.stacks()[0]
        .parameters()
        .iter()
        .find(|parameter| parameter.parameter_key() == Some("ArtifactBucket"))
        .and_then(|parameter| parameter.parameter_value())
        .unwrap()
        .to_owned()
}

/// One HTTP/1.1 request to the emulator; returns status and body.
fn http(endpoint: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let response = deployed::http(endpoint, method, path, body);
    (response.status, response.body)
}

/// A stack whose creation fails on AWS and on the emulator alike: an SSM
/// parameter cannot be created as a SecureString through CloudFormation.
const FAILING_TEMPLATE: &str = r#"{"Resources": {"Secret": {"Type": "AWS::SSM::Parameter",
    "Properties": {"Type": "SecureString", "Value": "not allowed"}}}}"#;

async fn wait_for_status(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
    wanted: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let described = cloudformation
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .unwrap();
        let status = described.stacks()[0]
            .stack_status()
            .unwrap()
            .as_str()
            .to_owned();
        if status == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stack {stack} is {status}, not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_serve_change_break_recover_and_destroy() {
    let Some(sdk) = support::emulator_config().await else {
        return;
    };
    let started = Instant::now();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let dir = std::env::temp_dir().join(format!("deployer-e2e-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let zip = host_lambda_zip(&dir);
    let zip = zip.to_str().unwrap();
    let stack = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let config = declaration(&dir, "base", "");
    let config = config.to_str().unwrap();

    // 1. Bootstrap: bucket, stack, seeds; the outputs, API URL first.
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &stack,
        "bootstrap",
        "--artifact",
        zip,
        "--yes",
    ]);
    assert!(run.status.success(), "bootstrap failed:\n{}", stderr(&run));
    let out = stdout(&run);
    assert!(
        out.contains(&format!("Stack `{stack}` is CREATE_COMPLETE.")),
        "{out}"
    );
    let outputs: Vec<&str> = out
        .lines()
        .skip_while(|line| !line.starts_with("Outputs:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert!(
        outputs[0].trim_start().starts_with("ApiUrl "),
        "API URL first: {outputs:?}"
    );
    let table = format!("{stack}-users");
    assert!(
        outputs.iter().any(|line| line
            .split_whitespace()
            .eq(["UsersTableName", table.as_str()])),
        "{outputs:?}"
    );
    assert!(out.contains("users: 2/2 items, 1 call"), "seeded: {out}");

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("{stack}-artifacts-000000000000-us-east-1");
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    assert!(
        s3.get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .is_ok()
    );

    // 2. The deployed API, through the emulator's API Gateway and Lambda.
    let api_url = outputs[0].split_whitespace().nth(1).unwrap();
    let api_id = api_url
        .trim_start_matches("https://")
        .split('.')
        .next()
        .unwrap();
    let base = format!("/restapis/{api_id}/prod/_user_request_/api/users");
    let (status, body) = http(&endpoint, "GET", &base, "");
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["000-1", "000-2"]);
    let (status, body) = http(
        &endpoint,
        "POST",
        &base,
        r#"{"id":"000-3","full_name":"User Z"}"#,
    );
    assert_eq!(
        (status, json(&body)),
        (201, json(r#"{"id":"000-3","full_name":"User Z"}"#))
    );
    let (status, _) = http(&endpoint, "POST", &base, r#"{"id":"000-3"}"#);
    assert_eq!(status, 409);
    let (status, body) = http(
        &endpoint,
        "PUT",
        &format!("{base}/000-3"),
        r#"{"gender":"F"}"#,
    );
    assert_eq!(
        (status, json(&body)["gender"].clone()),
        (200, Value::from("F"))
    );
    let (status, body) = http(&endpoint, "GET", &format!("{base}/000-3"), "");
    assert_eq!(
        (status, json(&body)["full_name"].clone()),
        (200, Value::from("User Z"))
    );
    let (status, _) = http(&endpoint, "DELETE", &format!("{base}/000-3"), "");
    assert_eq!(status, 204);
    let (status, body) = http(&endpoint, "GET", &format!("{base}/000-3"), "");
    assert_eq!(
        (status, json(&body)),
        (404, json(r#"{"error":"no record with id `000-3`"}"#))
    );
    // Ids as the client encodes them on the wire, which the emulator's API
    // Gateway hands to the function decoded.
    for (id, sent) in [
        ("Ana María", "Ana%20Mar%C3%ADa"),
        ("a+b@example.com", "a%2Bb%40example.com"),
        ("100%", "100%25"),
        ("a?b", "a%3Fb"),
    ] {
        let record = serde_json::json!({ "id": id, "full_name": "Ünal" });
        let (status, body) = http(&endpoint, "POST", &base, &record.to_string());
        assert_eq!((status, json(&body)), (201, record.clone()), "POST {id}");
        let path = format!("{base}/{sent}");
        let (status, body) = http(&endpoint, "PUT", &path, r#"{"gender":"F"}"#);
        assert_eq!((status, json(&body)["id"].clone()), (200, Value::from(id)));
        let (status, body) = http(&endpoint, "GET", &path, "");
        assert_eq!(
            (status, json(&body)["gender"].clone()),
            (200, Value::from("F"))
        );
        let (status, _) = http(&endpoint, "DELETE", &path, "");
        assert_eq!(status, 204, "DELETE {id}");
    }
    // What a URL parser would trim, drop or cut must not reach `000-1` or
    // the list: each names exactly its own id, or is refused.
    for (method, sent, answer) in [
        ("GET", "000-1%20", (404, "no record with id `000-1 `")),
        ("PUT", "000-1%0D", (400, "control character U+000D")),
        ("DELETE", "000-1%09", (400, "control character U+0009")),
        ("DELETE", "000-1%23", (404, "no record with id `000-1#`")),
        ("GET", "%15", (400, "control character U+0015")),
    ] {
        let path = format!("{base}/{sent}");
        let (status, body) = http(&endpoint, method, &path, r#"{"gender":"F"}"#);
        // Not `json`: a wrong answer may be a 204 with no body at all.
        let error = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|body| body["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        assert!(
            status == answer.0 && error.contains(answer.1),
            "{method} {sent}: {status} {body}"
        );
    }
    let (status, body) = http(&endpoint, "GET", &format!("{base}/000-1"), "");
    assert_eq!(
        (status, json(&body)),
        (
            200,
            json(r#"{"id":"000-1","full_name":"User X","gender":"M"}"#)
        )
    );

    // 3. A changed setting: diff shows exactly it, deploy applies it, and a
    //    second deploy has nothing to do.
    let bigger = declaration(&dir, "bigger", "stack:\n  memory_mb: 256\n");
    let bigger = bigger.to_str().unwrap();
    let run = deployer(&[
        "--config",
        bigger,
        "--stack-name",
        &stack,
        "--output",
        "json",
        "diff",
        "--artifact",
        zip,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let diff = json(&stdout(&run));
    let direct: Vec<(String, String)> = diff["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|change| {
            change["properties"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|property| property["change_source"] == "DirectModification")
                .map(move |property| {
                    (
                        change["logical_id"].as_str().unwrap().to_owned(),
                        property["path"].as_str().unwrap().to_owned(),
                    )
                })
        })
        .collect();
    assert_eq!(
        direct,
        [(
            "ApiFunction".to_owned(),
            "/Properties/MemorySize".to_owned()
        )]
    );
    let run = deployer(&[
        "--config",
        bigger,
        "--stack-name",
        &stack,
        "deploy",
        "--artifact",
        zip,
        "--yes",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).contains(&format!("Stack `{stack}` is UPDATE_COMPLETE.")),
        "{}",
        stdout(&run)
    );
    let run = deployer(&[
        "--config",
        bigger,
        "--stack-name",
        &stack,
        "deploy",
        "--artifact",
        zip,
        "--yes",
    ]);
    assert!(run.status.success());
    assert_eq!(
        stdout(&run).trim(),
        format!("No changes: stack `{stack}` is up to date.")
    );

    // Without a terminal and without --yes, nothing happens.
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &stack,
        "deploy",
        "--artifact",
        zip,
    ]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("pass --yes to deploy anyway"),
        "{}",
        stderr(&run)
    );

    // 4. A deploy that cannot work is refused before anything changes: the
    //    pipeline on, but no GitHub token secret stored yet.
    let with_pipeline = declaration(
        &dir,
        "pipeline",
        "stack:\n  pipeline:\n    repository: https://github.com/example/serverless-api.git\n",
    );
    let run = deployer(&[
        "--config",
        with_pipeline.to_str().unwrap(),
        "--stack-name",
        &stack,
        "deploy",
        "--artifact",
        zip,
        "--yes",
    ]);
    assert!(!run.status.success(), "the refused deploy exits non-zero");
    assert!(
        stderr(&run).contains("the secret `serverless-api/github-token` does not exist"),
        "names what is missing: {}",
        stderr(&run)
    );

    //    A deploy whose execution fails leaves the previous stack serving:
    //    new code whose object in the bucket is not a zip (as if corrupted),
    //    which Lambda refuses ("Could not unzip uploaded file"), so
    //    CloudFormation rolls the update back.
    let changed = dir.join("changed.zip");
    {
        let mut bytes =
            zip::ZipWriter::new_append(std::io::Cursor::new(std::fs::read(zip).unwrap())).unwrap();
        bytes
            .start_file(
                "infra/seed/changed.json",
                zip::write::SimpleFileOptions::default().unix_permissions(0o644),
            )
            .unwrap();
        bytes.write_all(b"[]").unwrap();
        std::fs::write(&changed, bytes.finish().unwrap().into_inner()).unwrap();
    }
    let arch = match host_arch() {
        "x86_64" => deployer::settings::Arch::X86_64,
        _ => deployer::settings::Arch::Arm64,
    };
    let key = deployer::artifacts::LambdaZip::open(&changed, arch)
        .await
        .unwrap()
        .key();
    let bucket = outputs_bucket(&sdk, &stack).await;
    deployer::artifacts::s3_client(&sdk)
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(b"not a zip".to_vec().into())
        .send()
        .await
        .unwrap();
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &stack,
        "deploy",
        "--artifact",
        changed.to_str().unwrap(),
        "--yes",
    ]);
    assert!(!run.status.success(), "the failed deploy exits non-zero");
    assert!(
        stderr(&run).contains("ApiFunction"),
        "names what failed: {}",
        stderr(&run)
    );
    let (status, _) = http(&endpoint, "GET", &base, "");
    assert_eq!(status, 200, "the previous stack still serves");

    // A stack whose first creation failed (ROLLBACK_COMPLETE) is explained,
    // and --recreate deletes and creates it again.
    let broken = format!("{stack}-broken");
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    cloudformation
        .create_stack()
        .stack_name(&broken)
        .template_body(FAILING_TEMPLATE)
        .send()
        .await
        .unwrap();
    wait_for_status(&cloudformation, &broken, "ROLLBACK_COMPLETE").await;
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &broken,
        "bootstrap",
        "--artifact",
        zip,
        "--yes",
    ]);
    assert!(!run.status.success());
    let report = stderr(&run);
    assert!(
        report.contains("ROLLBACK_COMPLETE") && report.contains("--recreate"),
        "{report}"
    );
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &broken,
        "bootstrap",
        "--artifact",
        zip,
        "--yes",
        "--recreate",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains(&format!("Stack `{broken}` is CREATE_COMPLETE.")));
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &broken,
        "destroy",
        "--yes",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));

    // 5. Destroy: the stack goes, the table stays with its items.
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &stack,
        "destroy",
        "--yes",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).contains(&format!("{stack}-users")),
        "names the kept table: {}",
        stdout(&run)
    );
    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &stack,
        "--verbose",
        "status",
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("does not exist"), "{}", stderr(&run));
    // --verbose: each AWS call on stderr, the failed one included.
    assert!(
        stderr(&run).contains("[aws] cloudformation DescribeStacks -> "),
        "{}",
        stderr(&run)
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let kept = dynamodb
        .scan()
        .table_name(format!("{stack}-users"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.count(), 2, "the seeded users survive the stack");

    eprintln!(
        "end-to-end run took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The commands of `buildspec.yaml`'s build phase.
fn build_phase_commands() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("buildspec.yaml")).unwrap();
    let buildspec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    buildspec["phases"]["build"]["commands"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|command| command.as_str().unwrap().to_owned())
        .collect()
}

/// Runs the build phase as CodeBuild would for a push of `commit`: from the
/// workspace, with CodeBuild's variables and the declaration `config`.
/// `git_remote` stands in for GitHub: git's `url.<base>.insteadOf` sends the
/// declared repository's URL to it.
fn run_build_phase(config: &Path, stack: &str, commit: &str, git_remote: &Path) -> Output {
    let script = build_phase_commands().join(" && ");
    let output = Command::new("bash")
        .args(["-eo", "pipefail", "-c", &script])
        .current_dir(workspace())
        .env("CI", "true")
        .env(
            "CODEBUILD_BUILD_ID",
            format!("{stack}-deploy:{}", uuid::Uuid::new_v4()),
        )
        .env("CODEBUILD_RESOLVED_SOURCE_VERSION", commit)
        .env("CODEBUILD_SOURCE_VERSION", commit)
        .env("CODEBUILD_WEBHOOK_HEAD_REF", "refs/heads/main")
        .env("CODEBUILD_WEBHOOK_EVENT", "PUSH")
        .env("GITHUB_TOKEN", "ghp_from_the_secret_0123456789")
        .env("DEPLOYER_CONFIG", config)
        .env("STACK_NAME", stack)
        .env("DEPLOYER_POLL_INTERVAL_MS", "100")
        .env("GIT_CONFIG_COUNT", "1")
        .env(
            "GIT_CONFIG_KEY_0",
            format!("url.{}.insteadOf", git_remote.display()),
        )
        .env(
            "GIT_CONFIG_VALUE_0",
            "https://github.com/example/serverless-api.git",
        )
        // The lambda profile's size optimisations (LTO, opt-level "z") only
        // cost build time here: the emulator runs the binary either way.
        .env("CARGO_PROFILE_LAMBDA_LTO", "false")
        .env("CARGO_PROFILE_LAMBDA_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_LAMBDA_CODEGEN_UNITS", "256")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "$ (build phase, commit {commit}) {script}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "e2e")
        .env("GIT_AUTHOR_EMAIL", "e2e@example.com")
        .env("GIT_COMMITTER_NAME", "e2e")
        .env("GIT_COMMITTER_EMAIL", "e2e@example.com")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The pipeline's build phase, run as CodeBuild runs it, against the
/// emulator: it builds the Lambda with cargo-lambda for the stack's CPU and
/// deploys it (the emulator runs that binary); the same source again is "No
/// changes" with no new object; a commit that is no longer the branch tip
/// does not deploy; a setting that changes the pipeline itself is refused.
#[tokio::test]
async fn the_build_phase_deploys_the_tip_for_the_stacks_cpu() {
    let Some(sdk) = support::emulator_config().await else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let dir = std::env::temp_dir().join(format!("deployer-build-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = format!("ci-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    // A secret of its own: the other test expects the default one missing.
    let pipeline = format!(
        "stack:\n  pipeline:\n    repository: https://github.com/example/serverless-api.git\n    \
         github_token_secret: {stack}/github-token\n"
    );
    let pipeline = pipeline.as_str();
    let config = declaration(&dir, "ci", pipeline);

    // GitHub's side: a branch with two commits; the newer is the tip.
    let remote = dir.join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    git(&remote, &["init", "--quiet", "--initial-branch=main"]);
    git(
        &remote,
        &["commit", "--quiet", "--allow-empty", "-m", "older"],
    );
    let older = git(&remote, &["rev-parse", "HEAD"]);
    git(
        &remote,
        &["commit", "--quiet", "--allow-empty", "-m", "newer"],
    );
    let tip = git(&remote, &["rev-parse", "HEAD"]);

    // A workstation bootstraps (the pipeline cannot create itself), with
    // the token stored first.
    let token = dir.join("token");
    std::fs::write(&token, "ghp_0123456789abcdef").unwrap();
    let config_arg = config.to_str().unwrap();
    let run = deployer(&[
        "--config",
        config_arg,
        "--stack-name",
        &stack,
        "pipeline",
        "token",
        "--github-token-file",
        token.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let host_zip = host_lambda_zip(&dir);
    let run = deployer(&[
        "--config",
        config_arg,
        "--stack-name",
        &stack,
        "bootstrap",
        "--artifact",
        host_zip.to_str().unwrap(),
        "--yes",
    ]);
    assert!(run.status.success(), "bootstrap: {}", stderr(&run));
    let bucket = outputs_bucket(&sdk, &stack).await;
    let s3 = deployer::artifacts::s3_client(&sdk);
    let objects = || async {
        s3.list_object_versions()
            .bucket(&bucket)
            .prefix("api/")
            .send()
            .await
            .unwrap()
            .versions()
            .len()
    };

    // 1. A push: the build phase builds with cargo-lambda for this CPU and
    //    deploys; the emulator runs that bootstrap behind the gateway.
    let run = run_build_phase(&config, &stack, &tip, &remote);
    assert!(run.status.success(), "build phase: {}", stderr(&run));
    assert!(
        stderr(&run).contains(&format!("building the Lambda ({})", host_arch())),
        "{}",
        stderr(&run)
    );
    assert!(stdout(&run).contains("UPDATE_COMPLETE"), "{}", stdout(&run));
    let api_id = api_id(&sdk, &stack).await;
    let (status, body) = http(
        &endpoint,
        "GET",
        &format!("/restapis/{api_id}/prod/_user_request_/api/ping"),
        "",
    );
    assert_eq!((status, body.as_str()), (200, r#"{"result":"pong"}"#));
    let after_first = objects().await;

    // 2. The same source built again, as a later push of the same tree
    //    would (every file newer): the same zip, no upload, no change.
    let now = std::time::SystemTime::now();
    for seed in std::fs::read_dir(workspace().join("infra/seed")).unwrap() {
        let file = std::fs::File::options()
            .append(true)
            .open(seed.unwrap().path())
            .unwrap();
        file.set_modified(now).unwrap();
    }
    let run = run_build_phase(&config, &stack, &tip, &remote);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("unchanged, already uploaded"),
        "{}",
        stderr(&run)
    );
    assert!(
        stdout(&run).contains(&format!("No changes: stack `{stack}` is up to date.")),
        "{}",
        stdout(&run)
    );
    assert_eq!(objects().await, after_first, "no new S3 object");

    // 3. A build of an older commit, with a change to deploy, finds it is no
    //    longer the tip: it stops, successfully, and changes nothing.
    let bigger = declaration(
        &dir,
        "bigger",
        &format!("{pipeline}  memory_mb: 256\n").replace("stack:\n", ""),
    );
    let run = run_build_phase(&bigger, &stack, &older, &remote);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).contains(&format!(
            "Not deployed: commit {} is no longer the tip of `main` (now {})",
            &older[..7],
            &tip[..7]
        )),
        "{}",
        stdout(&run)
    );
    assert_eq!(function_memory(&sdk, &stack).await, 128);
    //    The tip's own build deploys it.
    let run = run_build_phase(&bigger, &stack, &tip, &remote);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(function_memory(&sdk, &stack).await, 256);

    // 4. A setting that changes the pipeline itself is refused before the
    //    change set runs, naming the setting and the way to deploy it.
    let retention = declaration(
        &dir,
        "retention",
        &format!("{pipeline}  memory_mb: 256\n  log_retention_days: 90\n").replace("stack:\n", ""),
    );
    let run = run_build_phase(&retention, &stack, &tip, &remote);
    assert!(!run.status.success(), "refused: {}", stdout(&run));
    let refused = stderr(&run);
    assert!(
        refused.contains("PipelineLogGroup: stack.log_retention_days"),
        "{refused}"
    );
    assert!(refused.contains("`deployer deploy`"), "{refused}");
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let change_sets = cloudformation
        .list_change_sets()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let pending: Vec<_> = change_sets
        .summaries()
        .iter()
        .filter(|summary| {
            summary.execution_status()
                == Some(&aws_sdk_cloudformation::types::ExecutionStatus::Available)
        })
        .collect();
    assert!(pending.is_empty(), "no change set left behind: {pending:?}");
    assert_eq!(function_memory(&sdk, &stack).await, 256);
    //    From a workstation, the same declaration deploys.
    let run = deployer(&[
        "--config",
        retention.to_str().unwrap(),
        "--stack-name",
        &stack,
        "deploy",
        "--artifact",
        host_zip.to_str().unwrap(),
        "--yes",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));

    let run = deployer(&[
        "--config",
        config_arg,
        "--stack-name",
        &stack,
        "destroy",
        "--yes",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The id of the stack's REST API, from its `ApiUrl` output.
async fn api_id(sdk: &aws_config::SdkConfig, stack: &str) -> String {
    let described = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    let url = described.stacks()[0]
        .outputs()
        .iter()
        .find(|output| output.output_key() == Some("ApiUrl"))
        .and_then(|output| output.output_value())
        .unwrap()
        .to_owned();
    url.trim_start_matches("https://")
        .split('.')
        .next()
        .unwrap()
        .to_owned()
}

/// The function's memory in the template the stack last deployed: what
/// CloudFormation applied, or kept when nothing ran.
async fn function_memory(sdk: &aws_config::SdkConfig, stack: &str) -> i64 {
    let deployed = aws_sdk_cloudformation::Client::new(sdk)
        .get_template()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    json(deployed.template_body().unwrap())["Resources"]["ApiFunction"]["Properties"]["MemorySize"]
        .as_i64()
        .unwrap()
}

/// The indexes the function may plan lists of `resource` on: its
/// `API_RESOURCES` in the template the stack last deployed.
async fn function_indexes(sdk: &aws_config::SdkConfig, stack: &str, resource: &str) -> Vec<String> {
    let deployed = aws_sdk_cloudformation::Client::new(sdk)
        .get_template()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    let template = json(deployed.template_body().unwrap());
    let mapping = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
        ["API_RESOURCES"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .to_owned();
    json(&mapping)[resource]["indexes"]
        .as_array()
        .map(|indexes| {
            indexes
                .iter()
                .map(|index| index["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A Lambda zip the deployer accepts for this machine's CPU (its `bootstrap`
/// an ELF header, no program): for deploys whose function is never called.
fn placeholder_lambda_zip(dir: &Path) -> std::path::PathBuf {
    let machine: u16 = match host_arch() {
        "x86_64" => 62,
        _ => 183,
    };
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend_from_slice(&3u16.to_le_bytes());
    elf.extend_from_slice(&machine.to_le_bytes());
    let path = dir.join("placeholder.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let executable = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", executable).unwrap();
    zip.write_all(&elf).unwrap();
    zip.finish().unwrap();
    path
}

/// The names of the table's global secondary indexes, as DynamoDB has them.
async fn index_names(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let described = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .map(|index| index.index_name().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The change sets CloudFormation holds for `stack`, by id.
async fn change_set_ids(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Vec<String> {
    let listed = cloudformation
        .list_change_sets()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    listed
        .summaries()
        .iter()
        .filter_map(|summary| summary.change_set_id().map(str::to_owned))
        .collect()
}

/// Indexes on a live stack, as a user adds them: the table is created with
/// the declared index, one more deploys, and two more at once are refused
/// by `diff` and `deploy` alike, naming both, before any change set exists.
#[tokio::test(flavor = "multi_thread")]
async fn indexes_deploy_one_at_a_time() {
    let Some(sdk) = support::emulator_config().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("deployer-gsi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let zip = placeholder_lambda_zip(&dir);
    let zip = zip.to_str().unwrap();
    let stack = format!("gsi-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let config_path = declaration(&dir, "indexed", "");
    let config = config_path.to_str().unwrap();
    let table = format!("{stack}-users");
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let run_deployer = |command: &str| {
        deployer(&[
            "--config",
            config,
            "--stack-name",
            &stack,
            command,
            "--artifact",
            zip,
            "--yes",
        ])
    };
    let run_diff = || {
        deployer(&[
            "--config",
            config,
            "--stack-name",
            &stack,
            "diff",
            "--artifact",
            zip,
        ])
    };
    // infra/app.yaml's users, with `more` declared after its index.
    let declared = std::fs::read_to_string(&config_path).unwrap();
    let gender =
        "      - name: users-by-gender\n        partition_key: { name: gender, type: string }\n";
    assert!(declared.contains(gender), "{declared}");
    let declare = |more: &str| {
        std::fs::write(
            &config_path,
            declared.replace(gender, &format!("{gender}{more}")),
        )
        .unwrap();
    };

    // 1. A new stack: the table is created with its index, which serves
    // at once: one change set, nothing waited for.
    let run = run_deployer("bootstrap");
    assert!(run.status.success(), "bootstrap failed:\n{}", stderr(&run));
    assert_eq!(index_names(&dynamodb, &table).await, ["users-by-gender"]);
    assert_eq!(
        function_indexes(&sdk, &stack, "users").await,
        ["users-by-gender"]
    );
    assert!(!stderr(&run).contains("waiting for"), "{}", stderr(&run));

    // 2. One more index: shown by diff, then deployed.
    declare(
        "      - name: users-by-name\n        partition_key: { name: full_name, type: string }\n",
    );
    let run = run_diff();
    assert!(run.status.success(), "diff failed:\n{}", stderr(&run));
    assert!(
        stdout(&run).contains("UsersTable") && stdout(&run).contains("GlobalSecondaryIndexes"),
        "{}",
        stdout(&run)
    );
    assert!(
        stderr(&run).contains(&format!(
            "deploy would then wait for index users-by-name of table {table} to be ACTIVE, \
             and execute a second change set"
        )),
        "{}",
        stderr(&run)
    );
    let run = run_deployer("deploy");
    assert!(run.status.success(), "deploy failed:\n{}", stderr(&run));
    assert!(
        stderr(&run).contains(&format!(
            "index change: users (table {table}): adds users-by-name"
        )),
        "{}",
        stderr(&run)
    );
    assert_eq!(
        index_names(&dynamodb, &table).await,
        ["users-by-gender", "users-by-name"]
    );
    // The first change set gave the function only the index that served;
    // the deploy waited for the new one, and a second gave it.
    assert!(
        stderr(&run).contains(&format!(
            "index users-by-name of table {table}: not in the table yet; the function plans \
             without it"
        )),
        "{}",
        stderr(&run)
    );
    assert!(
        stderr(&run).contains(&format!(
            "waiting for index users-by-name of table {table} to be ACTIVE"
        )),
        "{}",
        stderr(&run)
    );
    assert!(
        stdout(&run).contains("a second change set gave them to the function"),
        "{}",
        stdout(&run)
    );
    assert_eq!(
        function_indexes(&sdk, &stack, "users").await,
        ["users-by-gender", "users-by-name"]
    );
    // Deployed again, everything serves: nothing to wait for.
    let run = run_deployer("deploy");
    assert!(run.status.success(), "deploy failed:\n{}", stderr(&run));
    assert!(!stderr(&run).contains("waiting for"), "{}", stderr(&run));

    // 3. Two more at once: refused, naming both, and nothing is planned.
    declare(
        "      - name: users-by-name\n        partition_key: { name: full_name, type: string }\n\
         \x20     - name: users-by-team\n        partition_key: { name: team, type: string }\n\
         \x20     - name: users-by-age\n        partition_key: { name: age, type: number }\n",
    );
    let change_sets = change_set_ids(&cloudformation, &stack).await;
    for run in [run_diff(), run_deployer("deploy")] {
        assert!(!run.status.success(), "{}", stdout(&run));
        let message = stderr(&run);
        assert!(
            message.contains(&format!(
                "users (table {table}): adds users-by-age, users-by-team"
            )),
            "{message}"
        );
        assert!(message.contains("declare one new index"), "{message}");
        assert!(
            !message.contains("uploaded"),
            "refused before the upload: {message}"
        );
    }
    assert_eq!(change_set_ids(&cloudformation, &stack).await, change_sets);
    assert_eq!(
        index_names(&dynamodb, &table).await,
        ["users-by-gender", "users-by-name"]
    );

    let run = deployer(&[
        "--config",
        config,
        "--stack-name",
        &stack,
        "destroy",
        "--yes",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
