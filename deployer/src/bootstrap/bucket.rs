//! The artifact bucket: its name, its creation, and its hardening.
//!
//! The bucket holds only Lambda zips, but whoever can write to it controls the
//! code the stack runs, so it is private, owner-only, encrypted, versioned (a
//! deleted or overwritten zip can be recovered, and a rollback always finds
//! its code) and reachable only over TLS.
//!
//! Encryption is SSE-S3 (AES256), not SSE-KMS: the zips are no secret (they
//! are built from the repository), SSE-S3 costs nothing per request, and it
//! needs no key policy granting CloudFormation, Lambda and CodeBuild
//! `kms:Decrypt`, one more thing that can break a deploy. An organisation that
//! requires KMS can create the bucket itself and name it in `artifact_bucket`:
//! an existing bucket's KMS default encryption is kept, never downgraded.

use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{BootstrapError, BoxError};
use crate::settings::{MAX_BUCKET_NAME_LEN, StackSettings, bucket_name_problem};

/// The default encryption the bucket is given, as reports name it.
pub const ENCRYPTION: &str = "SSE-S3 (AES256)";

/// The folder of the bucket holding CodeBuild's cache (the cargo registry
/// and `target/`): the project's `Cache.Location` is `<bucket>/<this>`.
pub const CODEBUILD_CACHE_PREFIX: &str = "codebuild-cache";
/// Days a replaced or deleted Lambda zip stays recoverable.
const NONCURRENT_ZIP_DAYS: i32 = 30;
/// Days a replaced CodeBuild cache stays: CodeBuild rewrites the whole cache
/// (hundreds of MB) after every build, and versioning would keep every one.
const NONCURRENT_CACHE_DAYS: i32 = 1;

/// Hex digits of the stack name's hash kept when a long stack name is cut.
const NAME_HASH_LEN: usize = 8;

/// The bucket Lambda zips are uploaded to, and whose it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactBucket {
    pub name: String,
    pub region: String,
    /// The account the bucket must belong to: every call names it as the
    /// expected owner, so a same-named bucket of another account is refused.
    pub account_id: String,
    /// `aws`, `aws-cn`, `aws-us-gov`: the ARN partition of the policy.
    pub partition: String,
}

impl ArtifactBucket {
    /// The bucket for `settings` in `region`: `settings.artifact_bucket`, or
    /// [`default_bucket_name`] for this account. Asks STS who the caller is.
    pub async fn resolve(
        sts: &aws_sdk_sts::Client,
        settings: &StackSettings,
        region: &str,
    ) -> Result<Self, BootstrapError> {
        if region.is_empty() {
            return Err(BootstrapError::NoRegion);
        }
        let identity = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| BootstrapError::Identity(error.into()))?;
        let account_id = identity.account().unwrap_or_default().to_owned();
        // The caller's own ARN says which partition this is (`arn:aws-cn:…`).
        let partition = identity
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|partition| !partition.is_empty())
            .unwrap_or("aws")
            .to_owned();
        let name = match &settings.artifact_bucket {
            Some(name) => name.clone(),
            None => default_bucket_name(&settings.name, &account_id, region),
        };
        Self::new(name, region, account_id, partition)
    }

    /// A bucket with a checked name.
    pub fn new(
        name: String,
        region: &str,
        account_id: String,
        partition: String,
    ) -> Result<Self, BootstrapError> {
        if let Some(problem) = bucket_name_problem(&name) {
            return Err(BootstrapError::InvalidBucketName { name, problem });
        }
        Ok(Self {
            name,
            region: region.to_owned(),
            account_id,
            partition,
        })
    }

    pub fn arn(&self) -> String {
        format!("arn:{}:s3:::{}", self.partition, self.name)
    }
}

/// `<stack>-artifacts-<account>-<region>`, lowercase. Bucket names are
/// global, so the account and region make it ours alone. A name over S3's 63
/// characters keeps as much of the stack name as fits plus 8 hex digits of its
/// SHA-256, so two long stack names sharing a prefix still get two buckets,
/// and the same stack always gets the same one.
pub fn default_bucket_name(stack_name: &str, account_id: &str, region: &str) -> String {
    let stack = stack_name.to_lowercase();
    let suffix = format!("-artifacts-{account_id}-{region}").to_lowercase();
    if stack.len() + suffix.len() <= MAX_BUCKET_NAME_LEN {
        return format!("{stack}{suffix}");
    }
    let hash = hex::encode(Sha256::digest(stack.as_bytes()));
    let short_hash = &hash[..NAME_HASH_LEN];
    let room = MAX_BUCKET_NAME_LEN.saturating_sub(suffix.len() + 1 + NAME_HASH_LEN);
    // Stack names are ASCII (letters, digits, `-`), so any cut is a char boundary;
    // a `-` at the cut would double against the one before the hash.
    let kept = stack.get(..room).unwrap_or(&stack).trim_end_matches('-');
    if kept.is_empty() {
        format!("{short_hash}{suffix}")
    } else {
        format!("{kept}-{short_hash}{suffix}")
    }
}

/// The bucket policy: every request not made over TLS is denied, whoever
/// makes it (no scanner passes a bucket without it, and S3 alone allows HTTP).
pub fn tls_only_policy(bucket: &ArtifactBucket) -> String {
    let arn = bucket.arn();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn.clone(), format!("{arn}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })
    .to_string()
}

/// Whether [`ensure_bucket`] made the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketOutcome {
    Created,
    AlreadyExisted,
}

/// The bucket, whether this run created it, and the hardening now applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketReport {
    pub bucket: String,
    pub region: String,
    pub outcome: BucketOutcome,
    /// Each setting applied, in words.
    pub hardening: Vec<String>,
}

impl fmt::Display for BucketReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.outcome {
            BucketOutcome::Created => "created",
            BucketOutcome::AlreadyExisted => "already there",
        };
        write!(
            f,
            "artifact bucket {} ({}): {what}; {}",
            self.bucket,
            self.region,
            self.hardening.join(", ")
        )
    }
}

/// Makes sure `bucket` exists in its region, belongs to its account, and is
/// hardened: created if missing, and the hardening (re-)applied either way,
/// since each setting is a PUT of the whole configuration and so idempotent.
pub async fn ensure_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &ArtifactBucket,
) -> Result<BucketReport, BootstrapError> {
    let outcome = if bucket_exists(s3, bucket).await? {
        BucketOutcome::AlreadyExisted
    } else {
        create_bucket(s3, bucket).await?
    };
    let hardening = harden(s3, bucket, outcome).await?;
    Ok(BucketReport {
        bucket: bucket.name.clone(),
        region: bucket.region.clone(),
        outcome,
        hardening,
    })
}

async fn bucket_exists(
    s3: &aws_sdk_s3::Client,
    bucket: &ArtifactBucket,
) -> Result<bool, BootstrapError> {
    let error = match s3
        .head_bucket()
        .bucket(&bucket.name)
        .expected_bucket_owner(&bucket.account_id)
        .send()
        .await
    {
        Ok(_) => return Ok(true),
        Err(error) => error,
    };
    if error.as_service_error().is_some_and(|e| e.is_not_found()) {
        return Ok(false);
    }
    Err(classify_head_error(bucket, error))
}

/// HeadBucket errors carry no body: the status and `x-amz-bucket-region` say it all.
fn classify_head_error<E>(
    bucket: &ArtifactBucket,
    error: SdkError<E, HttpResponse>,
) -> BootstrapError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let actual_region = error
        .raw_response()
        .and_then(|response| response.headers().get("x-amz-bucket-region"))
        .map(str::to_owned);
    let name = bucket.name.clone();
    match (status, actual_region) {
        (_, Some(actual_region)) if actual_region != bucket.region => {
            BootstrapError::BucketInAnotherRegion {
                bucket: name,
                expected_region: bucket.region.clone(),
                actual_region,
                source: error.into(),
            }
        }
        // Another account's bucket, or ours with `expected_bucket_owner` not
        // matching: either way not one we may use.
        (Some(403), _) => BootstrapError::BucketNotOurs {
            bucket: name,
            source: error.into(),
        },
        _ => s3_error("HeadBucket", bucket, error),
    }
}

async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &ArtifactBucket,
) -> Result<BucketOutcome, BootstrapError> {
    let mut request = s3
        .create_bucket()
        .bucket(&bucket.name)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced);
    // us-east-1 is S3's default location and refuses to be named as one.
    if bucket.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(bucket.region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(BucketOutcome::Created),
        // Another bootstrap created it between our HeadBucket and here.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            Ok(BucketOutcome::AlreadyExisted)
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_exists()) =>
        {
            Err(BootstrapError::BucketNotOurs {
                bucket: bucket.name.clone(),
                source: error.into(),
            })
        }
        Err(error) => Err(s3_error("CreateBucket", bucket, error)),
    }
}

/// Applies every hardening setting; returns them in words, in order.
async fn harden(
    s3: &aws_sdk_s3::Client,
    bucket: &ArtifactBucket,
    outcome: BucketOutcome,
) -> Result<Vec<String>, BootstrapError> {
    let name = bucket.name.as_str();
    let owner = bucket.account_id.as_str();
    let invalid =
        |operation| move |error: aws_sdk_s3::error::BuildError| s3_error(operation, bucket, error);

    // First, so that nothing that follows can ever make it public.
    s3.put_public_access_block()
        .bucket(name)
        .expected_bucket_owner(owner)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|error| s3_error("PutPublicAccessBlock", bucket, error))?;

    // ACLs off: every object belongs to the bucket owner, whoever uploads it.
    let ownership = OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()
                .map_err(invalid("PutBucketOwnershipControls"))?,
        )
        .build()
        .map_err(invalid("PutBucketOwnershipControls"))?;
    s3.put_bucket_ownership_controls()
        .bucket(name)
        .expected_bucket_owner(owner)
        .ownership_controls(ownership)
        .send()
        .await
        .map_err(|error| s3_error("PutBucketOwnershipControls", bucket, error))?;

    let kept_kms = match outcome {
        BucketOutcome::Created => None,
        BucketOutcome::AlreadyExisted => existing_kms_encryption(s3, bucket).await?,
    };
    let encryption_applied = match kept_kms {
        Some(algorithm) => format!("existing {algorithm} default encryption kept"),
        None => {
            set_sse_s3_encryption(s3, bucket).await?;
            format!("{ENCRYPTION} default encryption")
        }
    };

    s3.put_bucket_versioning()
        .bucket(name)
        .expected_bucket_owner(owner)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|error| s3_error("PutBucketVersioning", bucket, error))?;

    s3.put_bucket_lifecycle_configuration()
        .bucket(name)
        .expected_bucket_owner(owner)
        .lifecycle_configuration(lifecycle().map_err(invalid("PutBucketLifecycleConfiguration"))?)
        .send()
        .await
        .map_err(|error| s3_error("PutBucketLifecycleConfiguration", bucket, error))?;

    s3.put_bucket_policy()
        .bucket(name)
        .expected_bucket_owner(owner)
        .policy(tls_only_policy(bucket))
        .send()
        .await
        .map_err(|error| s3_error("PutBucketPolicy", bucket, error))?;

    Ok([
        "public access blocked".to_owned(),
        "bucket owner enforced (no ACLs)".to_owned(),
        encryption_applied,
        "versioning enabled".to_owned(),
        format!(
            "replaced versions expire after {NONCURRENT_ZIP_DAYS} days \
             ({CODEBUILD_CACHE_PREFIX}/ after {NONCURRENT_CACHE_DAYS})"
        ),
        "TLS-only bucket policy".to_owned(),
    ]
    .to_vec())
}

/// What versioning would otherwise keep forever. The zips are keyed by
/// their content hash and never overwritten, so current zips never expire
/// here: a rollback, or a stack not deployed for months, still finds its
/// code. Versions that were replaced or deleted expire after
/// [`NONCURRENT_ZIP_DAYS`]; the CodeBuild cache, rewritten by every build,
/// after [`NONCURRENT_CACHE_DAYS`]. Unfinished multipart uploads are
/// dropped after a day. (S3 user guide, "Lifecycle configuration elements":
/// `NoncurrentVersionExpiration`, `AbortIncompleteMultipartUpload`.)
fn lifecycle() -> Result<BucketLifecycleConfiguration, aws_sdk_s3::error::BuildError> {
    let rule = |id: &str, prefix: &str, noncurrent_days: i32| {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(noncurrent_days)
                    .build(),
            )
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build()
    };
    BucketLifecycleConfiguration::builder()
        .rules(rule(
            "replaced-build-cache",
            &format!("{CODEBUILD_CACHE_PREFIX}/"),
            NONCURRENT_CACHE_DAYS,
        )?)
        .rules(rule(
            "replaced-lambda-zips",
            crate::artifacts::KEY_PREFIX,
            NONCURRENT_ZIP_DAYS,
        )?)
        .build()
}

/// The KMS algorithm (`aws:kms`, `aws:kms:dsse`) of an existing bucket's
/// default encryption, if it has one: someone chose it on purpose, and it is
/// stronger than what [`ensure_bucket`] would set.
async fn existing_kms_encryption(
    s3: &aws_sdk_s3::Client,
    bucket: &ArtifactBucket,
) -> Result<Option<String>, BootstrapError> {
    let output = match s3
        .get_bucket_encryption()
        .bucket(&bucket.name)
        .expected_bucket_owner(&bucket.account_id)
        .send()
        .await
    {
        Ok(output) => output,
        // No configuration at all (buckets made before 2023): ours is set.
        Err(error) if error.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            return Ok(None);
        }
        Err(error) => return Err(s3_error("GetBucketEncryption", bucket, error)),
    };
    let algorithm = output
        .server_side_encryption_configuration()
        .and_then(|configuration| configuration.rules().first())
        .and_then(|rule| rule.apply_server_side_encryption_by_default())
        .map(|default| default.sse_algorithm().as_str().to_owned());
    Ok(algorithm.filter(|algorithm| algorithm.starts_with("aws:kms")))
}

async fn set_sse_s3_encryption(
    s3: &aws_sdk_s3::Client,
    bucket: &ArtifactBucket,
) -> Result<(), BootstrapError> {
    let invalid =
        |error: aws_sdk_s3::error::BuildError| s3_error("PutBucketEncryption", bucket, error);
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .map_err(invalid)?,
                )
                .build(),
        )
        .build()
        .map_err(invalid)?;
    s3.put_bucket_encryption()
        .bucket(&bucket.name)
        .expected_bucket_owner(&bucket.account_id)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(|error| s3_error("PutBucketEncryption", bucket, error))?;
    Ok(())
}

fn s3_error(
    operation: &'static str,
    bucket: &ArtifactBucket,
    error: impl Into<BoxError>,
) -> BootstrapError {
    BootstrapError::S3 {
        operation,
        bucket: bucket.name.clone(),
        source: error.into(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::create_bucket::{CreateBucketError, CreateBucketOutput};
    use aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput;
    use aws_sdk_s3::operation::head_bucket::{HeadBucketError, HeadBucketOutput};
    use aws_sdk_s3::operation::put_bucket_encryption::PutBucketEncryptionOutput;
    use aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput;
    use aws_sdk_s3::operation::put_bucket_ownership_controls::PutBucketOwnershipControlsOutput;
    use aws_sdk_s3::operation::put_bucket_policy::PutBucketPolicyOutput;
    use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningOutput;
    use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
    use aws_sdk_s3::types::error::{BucketAlreadyExists, NotFound};
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    #[test]
    fn default_names_fit_s3_and_stay_distinct() {
        let check = |stack: &str, region: &str, expected: &str| {
            let name = default_bucket_name(stack, "123456789012", region);
            assert_eq!(name, expected, "{stack}");
            assert_eq!(bucket_name_problem(&name), None, "{name}");
        };
        check(
            "serverless-api",
            "us-east-1",
            "serverless-api-artifacts-123456789012-us-east-1",
        );
        check("Shop", "eu-west-3", "shop-artifacts-123456789012-eu-west-3");
        // Exactly 63: kept whole.
        check(
            "abcdefghijklmnopqrstuvwxyz",
            "us-gov-west-1",
            "abcdefghijklmnopqrstuvwxyz-artifacts-123456789012-us-gov-west-1",
        );
        // One more: cut, with the hash of the whole name.
        let long = default_bucket_name(
            "abcdefghijklmnopqrstuvwxyz0",
            "123456789012",
            "us-gov-west-1",
        );
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("abcdefghijklmnopq-"), "{long}");
        assert!(
            long.ends_with("-artifacts-123456789012-us-gov-west-1"),
            "{long}"
        );
        // A 100-character stack name (the longest CloudFormation takes).
        let longest = "a".repeat(99) + "b";
        let name = default_bucket_name(&longest, "123456789012", "ap-southeast-2");
        assert!(name.len() <= 63, "{name}");
        assert_eq!(bucket_name_problem(&name), None, "{name}");
        // Same stack, same bucket; a different tail, a different bucket.
        assert_eq!(
            name,
            default_bucket_name(&longest, "123456789012", "ap-southeast-2")
        );
        let other = "a".repeat(99) + "c";
        assert_ne!(
            name,
            default_bucket_name(&other, "123456789012", "ap-southeast-2")
        );
        // A cut landing on `-` does not make `--`.
        let dashed = "a".repeat(23) + "-" + &"b".repeat(30);
        let name = default_bucket_name(&dashed, "123456789012", "ap-southeast-2");
        assert!(!name.contains("--"), "{name}");
    }

    #[test]
    fn bucket_names_are_checked_as_s3_does() {
        let check = |name: &str, problem: Option<&str>| {
            let found = bucket_name_problem(name);
            match problem {
                None => assert_eq!(found, None, "{name}"),
                Some(fragment) => {
                    let found = found.unwrap_or_else(|| panic!("{name} accepted"));
                    assert!(found.contains(fragment), "{name}: {found}");
                }
            }
        };
        check("my-artifacts", None);
        check("my.artifacts.bucket", None);
        check("ab", Some("3 to 63"));
        check(&"a".repeat(64), Some("3 to 63"));
        check("My-Bucket", Some("lowercase"));
        check("my_bucket", Some("lowercase"));
        check("-bucket", Some("start and end"));
        check("bucket-", Some("start and end"));
        check("my..bucket", Some("two `.`"));
        check("192.168.5.4", Some("IP address"));
        check("xn--bucket", Some("reserves"));
        check("sthree-bucket", Some("reserves"));
        check("bucket-s3alias", Some("reserves"));
    }

    fn bucket(region: &str) -> ArtifactBucket {
        ArtifactBucket::new(
            "app-artifacts".to_owned(),
            region,
            "123456789012".to_owned(),
            "aws".to_owned(),
        )
        .unwrap()
    }

    #[test]
    fn the_policy_denies_every_request_without_tls() {
        let policy: serde_json::Value =
            serde_json::from_str(&tls_only_policy(&bucket("us-east-1"))).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Principal"], "*");
        assert_eq!(statement["Action"], "s3:*");
        assert_eq!(
            statement["Resource"],
            serde_json::json!(["arn:aws:s3:::app-artifacts", "arn:aws:s3:::app-artifacts/*"])
        );
        assert_eq!(
            statement["Condition"]["Bool"]["aws:SecureTransport"],
            "false"
        );
    }

    #[tokio::test]
    async fn resolve_uses_the_callers_account_and_partition() {
        let identity = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
            GetCallerIdentityOutput::builder()
                .account("210987654321")
                .arn("arn:aws-cn:iam::210987654321:user/dev")
                .build()
        });
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&identity]);
        let settings = StackSettings::default();
        let resolved = ArtifactBucket::resolve(&sts, &settings, "cn-north-1")
            .await
            .unwrap();
        assert_eq!(
            resolved.name,
            "serverless-api-artifacts-210987654321-cn-north-1"
        );
        assert_eq!(
            resolved.arn(),
            "arn:aws-cn:s3:::serverless-api-artifacts-210987654321-cn-north-1"
        );

        let named = StackSettings {
            artifact_bucket: Some("Not_Valid".to_owned()),
            ..StackSettings::default()
        };
        let error = ArtifactBucket::resolve(&sts, &named, "cn-north-1")
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`Not_Valid` cannot be an S3 bucket name"),
            "{error}"
        );
        let error = ArtifactBucket::resolve(&sts, &settings, "")
            .await
            .unwrap_err();
        assert!(matches!(error, BootstrapError::NoRegion));
    }

    /// Every hardening call answering success, counting calls.
    fn hardening_rules() -> Vec<Rule> {
        vec![
            mock!(aws_sdk_s3::Client::put_public_access_block)
                .match_requests(|input| {
                    let block = input.public_access_block_configuration().unwrap();
                    block.block_public_acls() == Some(true)
                        && block.ignore_public_acls() == Some(true)
                        && block.block_public_policy() == Some(true)
                        && block.restrict_public_buckets() == Some(true)
                        && input.expected_bucket_owner() == Some("123456789012")
                })
                .then_output(|| PutPublicAccessBlockOutput::builder().build()),
            mock!(aws_sdk_s3::Client::put_bucket_ownership_controls)
                .then_output(|| PutBucketOwnershipControlsOutput::builder().build()),
            mock!(aws_sdk_s3::Client::put_bucket_encryption)
                .match_requests(|input| {
                    let rule = &input
                        .server_side_encryption_configuration()
                        .unwrap()
                        .rules()[0];
                    rule.apply_server_side_encryption_by_default()
                        .unwrap()
                        .sse_algorithm()
                        == &ServerSideEncryption::Aes256
                })
                .then_output(|| PutBucketEncryptionOutput::builder().build()),
            mock!(aws_sdk_s3::Client::put_bucket_versioning)
                .match_requests(|input| {
                    input.versioning_configuration().unwrap().status()
                        == Some(&BucketVersioningStatus::Enabled)
                })
                .then_output(|| PutBucketVersioningOutput::builder().build()),
            mock!(aws_sdk_s3::Client::put_bucket_lifecycle_configuration)
                .match_requests(|input| {
                    let rules = input.lifecycle_configuration().unwrap().rules();
                    let days = |prefix: &str| {
                        rules
                            .iter()
                            .find(|rule| {
                                rule.filter().and_then(|filter| filter.prefix()) == Some(prefix)
                            })
                            .and_then(|rule| rule.noncurrent_version_expiration())
                            .and_then(|expiration| expiration.noncurrent_days())
                    };
                    // No rule expires current objects: a rollback needs its zip.
                    rules.iter().all(|rule| rule.expiration().is_none())
                        && days("codebuild-cache/") == Some(1)
                        && days("api/") == Some(30)
                        && input.expected_bucket_owner() == Some("123456789012")
                })
                .then_output(|| PutBucketLifecycleConfigurationOutput::builder().build()),
            mock!(aws_sdk_s3::Client::put_bucket_policy)
                .match_requests(|input| input.policy().unwrap().contains("aws:SecureTransport"))
                .then_output(|| PutBucketPolicyOutput::builder().build()),
        ]
    }

    #[tokio::test]
    async fn a_missing_bucket_is_created_with_its_location_then_hardened() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
        let create = mock!(aws_sdk_s3::Client::create_bucket)
            .match_requests(|input| {
                input
                    .create_bucket_configuration()
                    .and_then(|c| c.location_constraint())
                    == Some(&BucketLocationConstraint::EuWest3)
            })
            .then_output(|| CreateBucketOutput::builder().build());
        let mut rules = vec![head, create];
        rules.extend(hardening_rules());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &rules);
        let report = ensure_bucket(&s3, &bucket("eu-west-3")).await.unwrap();
        assert_eq!(report.outcome, BucketOutcome::Created);
        assert!(rules.iter().all(|rule| rule.num_calls() == 1));
        assert_eq!(
            report.to_string(),
            "artifact bucket app-artifacts (eu-west-3): created; public access blocked, bucket \
             owner enforced (no ACLs), SSE-S3 (AES256) default encryption, versioning enabled, \
             replaced versions expire after 30 days (codebuild-cache/ after 1), TLS-only bucket \
             policy"
        );
    }

    #[tokio::test]
    async fn us_east_1_is_created_without_a_location_constraint() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
        let create = mock!(aws_sdk_s3::Client::create_bucket)
            .match_requests(|input| input.create_bucket_configuration().is_none())
            .then_output(|| CreateBucketOutput::builder().build());
        let mut rules = vec![head, create];
        rules.extend(hardening_rules());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &rules);
        let report = ensure_bucket(&s3, &bucket("us-east-1")).await.unwrap();
        assert_eq!(report.outcome, BucketOutcome::Created);
    }

    #[tokio::test]
    async fn an_existing_bucket_is_only_hardened_again() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .match_requests(|input| input.expected_bucket_owner() == Some("123456789012"))
            .then_output(|| HeadBucketOutput::builder().build());
        let current = mock!(aws_sdk_s3::Client::get_bucket_encryption)
            .then_output(|| encryption_output(ServerSideEncryption::Aes256));
        let mut rules = vec![head, current];
        rules.extend(hardening_rules());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &rules);
        let report = ensure_bucket(&s3, &bucket("us-east-1")).await.unwrap();
        assert_eq!(report.outcome, BucketOutcome::AlreadyExisted);
        assert!(rules.iter().all(|rule| rule.num_calls() == 1));
        assert!(report.to_string().contains(": already there; "), "{report}");
        assert_eq!(
            serde_json::to_value(&report).unwrap()["outcome"],
            "already_existed"
        );
    }

    fn encryption_output(algorithm: ServerSideEncryption) -> GetBucketEncryptionOutput {
        GetBucketEncryptionOutput::builder()
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(algorithm)
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[tokio::test]
    async fn an_existing_kms_default_encryption_is_never_downgraded() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .then_output(|| HeadBucketOutput::builder().build());
        let current = mock!(aws_sdk_s3::Client::get_bucket_encryption)
            .then_output(|| encryption_output(ServerSideEncryption::AwsKms));
        let mut rules = vec![head, current];
        rules.extend(hardening_rules());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &rules);
        let report = ensure_bucket(&s3, &bucket("us-east-1")).await.unwrap();
        let put_encryption = &rules[4];
        assert_eq!(put_encryption.num_calls(), 0);
        assert!(
            report
                .hardening
                .contains(&"existing aws:kms default encryption kept".to_owned()),
            "{report}"
        );
    }

    #[tokio::test]
    async fn someone_elses_bucket_is_refused_clearly() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .sequence()
            .http_status(403, None)
            .build();
        let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&head]);
        let error = ensure_bucket(&s3, &bucket("us-east-1")).await.unwrap_err();
        assert!(
            error.to_string().starts_with(
                "the bucket `app-artifacts` exists but belongs to another AWS account"
            ),
            "{error}"
        );

        // The name was free at HeadBucket, taken at CreateBucket.
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
        let create = mock!(aws_sdk_s3::Client::create_bucket).then_error(|| {
            CreateBucketError::BucketAlreadyExists(BucketAlreadyExists::builder().build())
        });
        let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&head, &create]);
        let error = ensure_bucket(&s3, &bucket("us-east-1")).await.unwrap_err();
        assert!(
            matches!(error, BootstrapError::BucketNotOurs { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_bucket_in_another_region_names_that_region() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .sequence()
            .http_response(|| {
                let mut response = HttpResponse::new(
                    301.try_into().unwrap(),
                    aws_sdk_s3::primitives::SdkBody::empty(),
                );
                response
                    .headers_mut()
                    .insert("x-amz-bucket-region", "eu-central-1");
                response
            })
            .build();
        let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&head]);
        let error = ensure_bucket(&s3, &bucket("us-east-1")).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the bucket `app-artifacts` exists in region eu-central-1, not us-east-1: deploy in \
             eu-central-1 or set another `artifact_bucket`"
        );
    }
}
