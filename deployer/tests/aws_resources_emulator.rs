//! The deployer's AWS operations against the emulator: the artifact bucket
//! and its hardening, the zip upload, the GitHub token secret, seeding, and
//! the CodeBuild pipeline; each run twice, since running twice must be harmless.
//!
//! Run with `tools/with-emulator cargo test -p deployer --test aws_resources_emulator`;
//! without an emulator every test skips (or fails, under `REQUIRE_EMULATOR`/`CI`).

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

#[path = "../../api/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::time::Duration;

use api::backend::dynamodb::attribute::item_to_record;
use api::record::NewRecord;
use aws_sdk_s3::types::{BucketVersioningStatus, ObjectOwnership, ServerSideEncryption};
use deployer::artifacts::{self, LambdaZip, UploadOutcome};
use deployer::bootstrap::{
    self, ArtifactBucket, BucketOutcome, SecretOutcome, TokenSource, ensure_bucket,
    ensure_github_token,
};
use deployer::pipeline::{self, FollowOptions};
use deployer::pipeline_log;
use deployer::seed::{self, Backoff, TableSeed};
use deployer::settings::{Arch, StackSettings};

const REGION: &str = "us-east-1";

fn unique(purpose: &str) -> String {
    format!("test-{purpose}-{}", uuid::Uuid::new_v4().simple())
}

/// The artifact bucket of a fresh stack, named uniquely for this test.
async fn fresh_bucket(config: &aws_config::SdkConfig) -> ArtifactBucket {
    let settings = StackSettings {
        artifact_bucket: Some(unique("artifacts")),
        ..StackSettings::default()
    };
    ArtifactBucket::resolve(&aws_sdk_sts::Client::new(config), &settings, REGION)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_bucket_is_created_once_and_hardened_every_time() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let s3 = artifacts::s3_client(&config);
    let bucket = fresh_bucket(&config).await;

    let first = ensure_bucket(&s3, &bucket).await.unwrap();
    assert_eq!(first.outcome, BucketOutcome::Created, "{first}");
    let second = ensure_bucket(&s3, &bucket).await.unwrap();
    assert_eq!(second.outcome, BucketOutcome::AlreadyExisted, "{second}");
    assert_eq!(second.hardening, first.hardening);
    assert!(second.to_string().contains(": already there; "), "{second}");

    // Read every setting back.
    let name = bucket.name.as_str();
    let block = s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .unwrap()
        .public_access_block_configuration
        .unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .unwrap()
        .server_side_encryption_configuration
        .unwrap();
    let default = encryption.rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap();
    assert_eq!(default.sse_algorithm(), &ServerSideEncryption::Aes256);
    let versioning = s3
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let mut prefixes: Vec<&str> = lifecycle
        .rules()
        .iter()
        .filter_map(|rule| rule.filter().and_then(|filter| filter.prefix()))
        .collect();
    prefixes.sort_unstable();
    assert_eq!(prefixes, ["api/", "codebuild-cache/"]);
    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(name)
        .send()
        .await
        .unwrap()
        .ownership_controls
        .unwrap();
    assert_eq!(
        ownership.rules()[0].object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );
    let policy = s3
        .get_bucket_policy()
        .bucket(name)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );
}

#[tokio::test]
async fn another_accounts_bucket_of_the_same_name_is_refused() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    // The emulator takes a 12-digit access key as the caller's account.
    let other_account = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "111122223333",
                "test",
                None,
                None,
                "another account",
            ))
            .force_path_style(true)
            .build(),
    );
    let bucket = fresh_bucket(&config).await;
    assert_ne!(bucket.account_id, "111122223333");
    other_account
        .create_bucket()
        .bucket(&bucket.name)
        .send()
        .await
        .unwrap();

    let error = ensure_bucket(&artifacts::s3_client(&config), &bucket)
        .await
        .unwrap_err();
    assert!(
        matches!(error, bootstrap::BootstrapError::BucketNotOurs { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("belongs to another AWS account"),
        "{error}"
    );
}

/// A Lambda zip holding an executable `bootstrap` for arm64 (the header of
/// a 64-bit little-endian ELF executable, machine 183), followed by `marker`.
fn lambda_zip(marker: &str) -> Vec<u8> {
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend_from_slice(&3u16.to_le_bytes());
    elf.extend_from_slice(&183u16.to_le_bytes());
    elf.extend_from_slice(marker.as_bytes());
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    writer.start_file("bootstrap", options).unwrap();
    writer.write_all(&elf).unwrap();
    writer.finish().unwrap().into_inner()
}

#[tokio::test]
async fn a_zip_is_uploaded_once_under_its_hash() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let s3 = artifacts::s3_client(&config);
    let bucket = fresh_bucket(&config).await;
    ensure_bucket(&s3, &bucket).await.unwrap();

    let bytes = lambda_zip(&unique("zip"));
    let path = std::env::temp_dir().join(format!("{}.zip", unique("lambda")));
    std::fs::write(&path, &bytes).unwrap();
    let zip = LambdaZip::open(&path, Arch::Arm64).await.unwrap();
    assert_eq!(zip.key(), artifacts::artifact_key(zip.bytes()));

    let first = artifacts::upload(&s3, &bucket, &zip).await.unwrap();
    assert_eq!(first.outcome, UploadOutcome::Uploaded, "{first}");
    let second = artifacts::upload(&s3, &bucket, &zip).await.unwrap();
    assert_eq!(second.outcome, UploadOutcome::AlreadyUploaded, "{second}");
    assert!(
        second.to_string().contains("unchanged, already uploaded"),
        "{second}"
    );

    let stored = s3
        .get_object()
        .bucket(&bucket.name)
        .key(zip.key())
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let body = stored.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), zip.bytes());
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn uploading_to_a_missing_bucket_says_bootstrap_first() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let s3 = artifacts::s3_client(&config);
    let zip = LambdaZip::from_bytes("z.zip".into(), lambda_zip("x"), Arch::Arm64).unwrap();
    // A bucket bootstrap never created.
    let missing = fresh_bucket(&config).await;
    let error = artifacts::upload(&s3, &missing, &zip).await.unwrap_err();
    assert!(
        error.to_string().contains("run `deployer bootstrap` first"),
        "{error}"
    );
}

#[tokio::test]
async fn the_token_secret_is_stored_once_and_never_shown() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let name = format!("{}/github-token", unique("app"));
    let token = format!("ghp_{}", uuid::Uuid::new_v4().simple());
    let file = std::env::temp_dir().join(unique("token"));
    std::fs::write(&file, format!("{token}\n")).unwrap();

    let first = ensure_github_token(&secrets, &name, &TokenSource::File(file.clone()))
        .await
        .unwrap();
    assert_eq!(first.outcome, SecretOutcome::Created);
    let stored = secrets
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    // CodeBuild's form of a source credential, the token trimmed, and the
    // tags CodeBuild looks for.
    let value: serde_json::Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"ServerType": "GITHUB", "AuthType": "PERSONAL_ACCESS_TOKEN", "Token": token})
    );
    let described = secrets
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    for (key, expected) in deployer::bootstrap::CODEBUILD_SECRET_TAGS {
        assert!(
            described
                .tags()
                .iter()
                .any(|tag| tag.key() == Some(key) && tag.value() == Some(expected)),
            "tag {key}: {:?}",
            described.tags()
        );
    }
    assert_eq!(
        deployer::bootstrap::github_token_arn(&secrets, &name)
            .await
            .unwrap(),
        described.arn().unwrap()
    );

    // The second run needs no token: the file is gone, and nothing changes.
    std::fs::remove_file(&file).unwrap();
    let second = ensure_github_token(&secrets, &name, &TokenSource::File(file))
        .await
        .unwrap();
    assert_eq!(second.outcome, SecretOutcome::AlreadyExisted);
    let still = secrets
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(still.version_id(), stored.version_id());

    // Rotation: one call stores the new token; the ARN the project names
    // stays the same, so no deploy is needed.
    let rotated = format!("ghp_{}", uuid::Uuid::new_v4().simple());
    let file = std::env::temp_dir().join(unique("rotated"));
    std::fs::write(&file, &rotated).unwrap();
    let third = deployer::bootstrap::store_github_token(&secrets, &name, &TokenSource::File(file))
        .await
        .unwrap();
    assert_eq!(third.outcome, SecretOutcome::Updated);
    let now = secrets
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert!(now.secret_string().unwrap().contains(&rotated));
    assert_eq!(now.arn(), stored.arn());
    assert!(!format!("{third} {third:?}").contains(&rotated));

    for report in [&first, &second] {
        for printed in [
            report.to_string(),
            format!("{report:?}"),
            serde_json::to_string(report).unwrap(),
        ] {
            assert!(!printed.contains(&token), "{printed}");
            assert!(printed.contains(&name), "{printed}");
        }
    }
}

#[tokio::test]
async fn a_secret_scheduled_for_deletion_is_explained_not_recreated() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let name = format!("{}/github-token", unique("deleted"));
    secrets
        .create_secret()
        .name(&name)
        .secret_string("ghp_old")
        .send()
        .await
        .unwrap();
    secrets
        .delete_secret()
        .secret_id(&name)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let error = ensure_github_token(&secrets, &name, &TokenSource::Stdin)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            bootstrap::BootstrapError::SecretScheduledForDeletion { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_thousand_records_take_forty_calls_and_reseeding_is_harmless() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = support::unique_table("seed");
    support::create_table(&dynamodb, &table).await;
    let records: Vec<NewRecord> = (0..1000)
        .map(|index| {
            let body = serde_json::json!({
                "id": format!("user-{index:04}"),
                "name": format!("User {index}"),
                "age": 20 + index % 50,
                "tags": ["seeded", {"batch": index / 25}],
            });
            NewRecord::from_body(body.to_string().as_bytes()).unwrap()
        })
        .collect();
    let seed = TableSeed {
        resource: "users".to_owned(),
        table: table.clone(),
        records: records.clone(),
    };

    let mut lines = Vec::new();
    let report = seed::seed_tables(
        &dynamodb,
        std::slice::from_ref(&seed),
        &Backoff::default(),
        &mut |p| lines.push(p.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(report.calls(), 40, "{report}");
    assert_eq!(report.items_written(), 1000);
    assert_eq!(lines.len(), 40);
    assert_eq!(lines.last().unwrap(), "users: 1000/1000 items, 40 calls");
    assert_stored(&dynamodb, &table, &records).await;

    // Again: the same 40 calls, the same 1000 items, nothing else.
    let again = seed::seed_table(&dynamodb, &seed, &Backoff::default(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((again.items_written, again.calls), (1000, 40));
    assert_stored(&dynamodb, &table, &records).await;
}

/// The table holds exactly `records`, each as seeded.
async fn assert_stored(dynamodb: &aws_sdk_dynamodb::Client, table: &str, records: &[NewRecord]) {
    let mut stored = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        stored.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(stored.len(), records.len());
    let mut stored: Vec<serde_json::Value> = stored
        .into_iter()
        .map(|item| serde_json::Value::Object(item_to_record(item).unwrap()))
        .collect();
    stored.sort_by_key(|record| record["id"].as_str().unwrap().to_owned());
    for (stored, seeded) in stored.iter().zip(records) {
        // Compared as values: attribute order differs, numbers keep their value.
        let seeded = serde_json::Value::Object(seeded.record.clone());
        assert_eq!(
            serde_json::to_string(&sorted(stored)).unwrap(),
            serde_json::to_string(&sorted(&seeded)).unwrap()
        );
    }
}

fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), sorted(value)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

#[tokio::test]
async fn a_pipeline_build_is_run_followed_listed_and_its_log_printed() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    use aws_sdk_codebuild::types::{
        ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
        ProjectSource, SourceType,
    };
    let codebuild = aws_sdk_codebuild::Client::new(&config);
    let project = unique("deploy");
    codebuild
        .create_project()
        .name(&project)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::NoSource)
                .buildspec("version: 0.2\nphases:\n  build:\n    commands: [make lambda]\n")
                .build()
                .unwrap(),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::000000000000:role/codebuild")
        .send()
        .await
        .unwrap();

    let options = FollowOptions {
        poll_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(30),
    };
    let mut phases = Vec::new();
    let outcome = pipeline::run(&codebuild, &project, "release", &options, &mut |phase| {
        phases.push(phase.phase.clone())
    })
    .await
    .unwrap();
    assert!(outcome.succeeded, "{outcome}");
    assert!(phases.contains(&"BUILD".to_owned()), "{phases:?}");
    assert!(!phases.contains(&"COMPLETED".to_owned()), "{phases:?}");

    let recent = pipeline::recent_builds(&codebuild, &project, 5)
        .await
        .unwrap();
    assert_eq!(recent.builds.len(), 1, "{recent}");
    assert_eq!(recent.builds[0].id, outcome.build.id);
    assert_eq!(recent.builds[0].status, "SUCCEEDED");
    // The configured branch, not the repository's default one.
    let started = codebuild
        .batch_get_builds()
        .ids(&outcome.build.id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.builds()[0].source_version(),
        Some("refs/heads/release")
    );

    // Its log, as `pipeline logs` prints it. The emulator runs no build
    // command (its builds succeed at once, writing nothing), so the lines a
    // build writes go into the stream its record names, as CodeBuild would.
    assert_eq!(
        pipeline::last_build_id(&codebuild, &project).await.unwrap(),
        outcome.build.id
    );
    let build = pipeline::build(&codebuild, &outcome.build.id)
        .await
        .unwrap();
    let location = build.logs().unwrap();
    let (group, stream) = (
        location.group_name().unwrap(),
        location.stream_name().unwrap(),
    );
    assert_eq!(group, format!("/aws/codebuild/{project}"));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let written = [
        "[Container] Entering phase BUILD\n",
        "[Container] Running command make lambda\n",
        "[Container] Phase complete: BUILD State: SUCCEEDED\n",
    ];
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream);
    for (offset, line) in (0..).zip(written) {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + offset)
                .message(line)
                .build()
                .unwrap(),
        );
    }
    put.send().await.unwrap();
    let mut printed = Vec::new();
    let read = pipeline_log::follow(
        &codebuild,
        &logs,
        &outcome.build.id,
        &options,
        &mut |event| {
            printed.push(event.message.clone());
            std::ops::ControlFlow::Continue(())
        },
    )
    .await
    .unwrap();
    assert_eq!(printed, written);
    assert!(read.succeeded && read.missing_log.is_none(), "{read}");

    // A build whose stream is not there (expired, or never written).
    let silent = pipeline::run(&codebuild, &project, "release", &options, &mut |_| {})
        .await
        .unwrap();
    let read = pipeline_log::follow(&codebuild, &logs, &silent.build.id, &options, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert!(read.succeeded, "{read}");
    assert!(read.to_string().contains("no log to print"), "{read}");

    let error = pipeline::recent_builds(&codebuild, &unique("missing"), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(error, pipeline::PipelineError::ProjectNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_default_bucket_name_uses_the_emulators_account() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let sts = aws_sdk_sts::Client::new(&config);
    let account = sts
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .account
        .unwrap();
    let resolved = ArtifactBucket::resolve(&sts, &StackSettings::default(), REGION)
        .await
        .unwrap();
    assert_eq!(
        resolved.name,
        bootstrap::default_bucket_name("serverless-api", &account, REGION)
    );
    assert_eq!(resolved.account_id, account);
}

/// The region's API Gateway logging role, on the emulator's API Gateway and
/// IAM: a setting naming a deleted role is repaired with ours, ours is then
/// kept, and a role someone else set is never replaced.
#[tokio::test]
async fn the_regions_gateway_logging_role_is_repaired_never_replaced() {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    use deployer::bootstrap::{LoggingRoleOutcome, RoleWait, ensure_gateway_logging_role};
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let apigateway = aws_sdk_apigateway::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let account = fresh_bucket(&config).await;
    let wait = RoleWait {
        attempts: 3,
        delay: Duration::from_millis(10),
    };
    let point_at = |arn: String| {
        let apigateway = apigateway.clone();
        async move {
            apigateway
                .update_account()
                .patch_operations(
                    PatchOperation::builder()
                        .op(Op::Replace)
                        .path("/cloudwatchRoleArn")
                        .value(arn)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    };

    // What a rolled-back first create used to leave: a setting naming a
    // role that no longer exists.
    point_at(format!(
        "arn:aws:iam::{}:role/{}",
        account.account_id,
        unique("deleted")
    ))
    .await;
    let repaired = ensure_gateway_logging_role(&apigateway, &iam, &account, wait)
        .await
        .unwrap();
    assert_eq!(
        repaired.outcome,
        LoggingRoleOutcome::ReplacedMissing,
        "{repaired}"
    );
    let set = apigateway.get_account().send().await.unwrap();
    assert_eq!(set.cloudwatch_role_arn(), Some(repaired.role_arn.as_str()));
    let again = ensure_gateway_logging_role(&apigateway, &iam, &account, wait)
        .await
        .unwrap();
    assert_eq!(again.outcome, LoggingRoleOutcome::Kept);

    // Someone else's role, set in the console or by another tool: kept.
    let theirs = iam
        .create_role()
        .role_name(unique("their-logs"))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_owned();
    point_at(theirs.clone()).await;
    let kept = ensure_gateway_logging_role(&apigateway, &iam, &account, wait)
        .await
        .unwrap();
    assert_eq!(
        (kept.outcome, kept.role_arn.as_str()),
        (LoggingRoleOutcome::Kept, theirs.as_str())
    );
    let still = apigateway.get_account().send().await.unwrap();
    assert_eq!(still.cloudwatch_role_arn(), Some(theirs.as_str()));
}
