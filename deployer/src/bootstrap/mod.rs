//! What must exist before the first deploy, and that the stack cannot own
//! (or must not: the region's API Gateway logging role, `gateway_logging`):
//! the artifact bucket the stack's Lambda code is read from (CloudFormation
//! reads the code from it while creating the stack, so the stack cannot create
//! it), and the Secrets Manager secret holding the GitHub token the CodeBuild
//! source credential resolves (a token must never be a template parameter).
//!
//! Both operations are idempotent: they report what they found or created,
//! and running `deployer bootstrap` twice changes nothing the second time
//! except re-applying the bucket's hardening, which is the same settings.

mod bucket;
mod gateway_logging;
mod github_token;

use thiserror::Error;

pub use bucket::{
    ArtifactBucket, BucketOutcome, BucketReport, CODEBUILD_CACHE_PREFIX, ENCRYPTION,
    default_bucket_name, ensure_bucket, tls_only_policy,
};
pub use gateway_logging::{
    LoggingRoleOutcome, LoggingRoleReport, RoleWait, ensure_gateway_logging_role, logging_role_name,
};
pub use github_token::{
    CODEBUILD_SECRET_TAGS, GitHubToken, SecretOutcome, SecretReport, TokenSource,
    ensure_github_token, github_token_arn, read_token, store_github_token,
};

/// Anything a dependency's error can be, kept as the source of ours.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the bucket or the secret could not be made ready. No variant ever
/// holds the token: errors are printed and logged.
#[derive(Debug, Error)]
pub enum BootstrapError {
    #[error(
        "cannot tell which AWS account this is (STS GetCallerIdentity failed): check your \
         credentials (`aws sts get-caller-identity`, `--profile`)"
    )]
    Identity(#[source] BoxError),
    #[error("no AWS region is configured: pass `--region` or set AWS_REGION")]
    NoRegion,
    #[error("`{name}` cannot be an S3 bucket name: {problem}")]
    InvalidBucketName { name: String, problem: String },
    #[error(
        "the bucket `{bucket}` exists but belongs to another AWS account (or your credentials \
         may not use it): S3 bucket names are global, so set another `artifact_bucket` in the \
         app declaration's `stack:` section"
    )]
    BucketNotOurs {
        bucket: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "the bucket `{bucket}` exists in region {actual_region}, not {expected_region}: deploy \
         in {actual_region} or set another `artifact_bucket`"
    )]
    BucketInAnotherRegion {
        bucket: String,
        expected_region: String,
        actual_region: String,
        #[source]
        source: BoxError,
    },
    #[error("S3 {operation} on bucket `{bucket}` failed")]
    S3 {
        operation: &'static str,
        bucket: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "refusing to read the GitHub token from a terminal: it would be echoed on screen and \
         could end up in your shell history. Pipe it in (`gh auth token | deployer bootstrap`) \
         or pass `--github-token-file PATH`"
    )]
    TokenFromTerminal,
    #[error("cannot read the GitHub token from {from}")]
    TokenRead {
        from: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the GitHub token read from {from} is empty")]
    TokenEmpty { from: String },
    #[error("the GitHub token read from {from} contains whitespace: it must hold the token alone")]
    TokenHasWhitespace { from: String },
    #[error(
        "the secret `{name}` is scheduled for deletion: restore it (`aws secretsmanager \
         restore-secret --secret-id {name}`) or choose another `github_token_secret`"
    )]
    SecretScheduledForDeletion { name: String },
    #[error(
        "the secret `{name}` does not exist: `deployer bootstrap` stores the GitHub token in it \
         (or `deployer pipeline token --github-token-file PATH`)"
    )]
    SecretMissing { name: String },
    #[error(
        "the secret `{name}` does not hold the token in CodeBuild's form (it has no \
         `codebuild:source` tag: it predates the pipeline's own source credential, or another \
         tool made it). Store the token again with `deployer pipeline token \
         --github-token-file PATH`, which writes that form and its tags"
    )]
    SecretNotForCodeBuild { name: String },
    #[error(
        "cannot check API Gateway's CloudWatch role for this region ({operation} failed): the \
         stage's access logs need it; a deploy from a workstation needs apigateway:GET and \
         apigateway:PATCH on /account, and iam:GetRole, iam:CreateRole, iam:PutRolePolicy and \
         iam:PassRole on the role"
    )]
    GatewayLogging {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("Secrets Manager {operation} on secret `{name}` failed")]
    SecretsManager {
        operation: &'static str,
        name: String,
        #[source]
        source: BoxError,
    },
}
