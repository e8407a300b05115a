//! The Lambda zip: built with cargo-lambda (or given with `--artifact`),
//! checked for the function's architecture, rewritten in a canonical form,
//! and uploaded to the artifact bucket under the SHA-256 of those bytes.
//!
//! The key is the content hash of the canonical zip, so the template changes
//! exactly when the code does: the same source built again (every push in
//! CodeBuild) is neither uploaded again nor redeployed, and the code of every
//! earlier deploy stays in the (versioned) bucket for a rollback.

mod zip_archive;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bootstrap::ArtifactBucket;
use crate::settings::Arch;

pub use zip_archive::{BOOTSTRAP, Entry, ZipProblem, canonical_zip, check_lambda_zip, entries};

/// The workspace package that is the Lambda.
pub const LAMBDA_PACKAGE: &str = "api";
/// The directory, relative to the workspace root, shipped inside the zip:
/// `cargo lambda build --include infra/seed` stores its files under the same
/// relative path (`infra/seed/users.json`), so in Lambda they sit at
/// `/var/task/infra/seed/…`, beside `bootstrap`.
pub const SEED_DIR: &str = "infra/seed";
/// Where the build leaves the zip, relative to the workspace root.
pub const BUILT_ZIP: &str = "target/lambda/api/bootstrap.zip";
/// The folder of the artifact bucket holding Lambda zips.
pub const KEY_PREFIX: &str = "api/";

/// Anything a dependency's error can be, kept as the source of ours.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the Lambda zip could not be built, read or uploaded.
#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error(
        "cargo-lambda is not installed (looked in {venv} and on PATH): run `make lambda`, \
         which installs the pinned version into .venv, or pass `--artifact PATH` with a \
         zip you built"
    )]
    CargoLambdaMissing { venv: PathBuf },
    #[error("could not start `cargo lambda build`")]
    BuildStart(#[source] io::Error),
    #[error(
        "`cargo lambda build` failed ({status}); its output is above. For arm64 the Rust \
         target must be installed: `rustup target add aarch64-unknown-linux-gnu` \
         (`make lambda` does it)"
    )]
    BuildFailed { status: ExitStatus },
    #[error("the Lambda zip {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read the Lambda zip {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a usable Lambda zip: {problem}")]
    Invalid { path: PathBuf, problem: ZipProblem },
    #[error(
        "access denied reading s3://{bucket}/{key}: either the bucket is not account \
         {owner}'s (bucket names are global: run `deployer bootstrap` in this region, or set \
         `artifact_bucket` in the app declaration's `stack:` section), or the deployer lacks \
         s3:GetObject, s3:PutObject and s3:ListBucket on it (without ListBucket S3 answers \
         403 instead of 404 for a missing object)"
    )]
    AccessDenied {
        bucket: String,
        /// The account every call named as the bucket's expected owner.
        owner: String,
        key: String,
        #[source]
        source: BoxError,
    },
    #[error("the artifact bucket `{bucket}` does not exist: run `deployer bootstrap` first")]
    NoBucket {
        bucket: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "the artifact bucket `{bucket}` is in another region than the one configured: \
         pass that region (`--region`) or another bucket (`artifact_bucket` in the \
         app declaration's `stack:` section)"
    )]
    BucketElsewhere {
        bucket: String,
        #[source]
        source: BoxError,
    },
    #[error("S3 {operation} of s3://{bucket}/{key} failed")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
}

/// The S3 client for `config`, with path-style addressing when an endpoint
/// is configured (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, or a profile's
/// `endpoint_url`): an emulator on `127.0.0.1:PORT` has no DNS for
/// `BUCKET.127.0.0.1`, so virtual-hosted addressing cannot reach it.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = uses_path_style(
        config.endpoint_url(),
        std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
    );
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

fn uses_path_style(endpoint_url: Option<&str>, s3_endpoint_set: bool) -> bool {
    endpoint_url.is_some() || s3_endpoint_set
}

/// Builds the Lambda zip for `arch` with cargo-lambda, from the workspace at
/// `workspace_root`, and returns its path (`target/lambda/api/bootstrap.zip`).
///
/// cargo-lambda's output streams to this process's stderr as it runs (its
/// stdout too, so `--output json` stays clean); the seed directory goes into
/// the zip for the Lambda's memory resources.
pub async fn build_lambda_zip(workspace_root: &Path, arch: Arch) -> Result<PathBuf, ArtifactError> {
    // Absolute: cargo runs build scripts (and the C compiler wrapper that
    // finds zig through this PATH) from other directories, where a relative
    // `./.venv/bin` names nothing.
    let workspace_root = std::path::absolute(workspace_root).map_err(ArtifactError::BuildStart)?;
    let workspace_root = workspace_root.as_path();
    let venv_bin = workspace_root.join(".venv").join("bin");
    let search_path = search_path_with(&venv_bin, std::env::var_os("PATH"));
    let found = {
        let search_path = search_path.clone();
        tokio::task::spawn_blocking(move || cargo_lambda_on(&search_path))
            .await
            .unwrap_or(false)
    };
    if !found {
        return Err(ArtifactError::CargoLambdaMissing { venv: venv_bin });
    }
    let status = tokio::process::Command::new("cargo")
        .args(build_arguments(arch))
        .current_dir(workspace_root)
        .env("PATH", &search_path)
        .stdin(Stdio::null())
        .stdout(io::stderr())
        .stderr(Stdio::inherit())
        // A cancelled deploy (Ctrl-C, timeout) must not leave a build behind.
        .kill_on_drop(true)
        .status()
        .await
        .map_err(ArtifactError::BuildStart)?;
    if !status.success() {
        return Err(ArtifactError::BuildFailed { status });
    }
    Ok(workspace_root.join(BUILT_ZIP))
}

/// The arguments after `cargo`: a build of the api package with the `lambda`
/// profile (release, optimised for size) for `arch`, without its default
/// features (the local-only embedded store),
/// zipped with the seed directory, into `target/lambda` wherever
/// `CARGO_TARGET_DIR` points (so [`BUILT_ZIP`] is always where it lands).
/// `make lambda` runs the same build.
pub fn build_arguments(arch: Arch) -> Vec<String> {
    let arch_flag = match arch {
        Arch::Arm64 => "--arm64",
        Arch::X86_64 => "--x86-64",
    };
    [
        "lambda",
        "build",
        "--profile",
        "lambda",
        arch_flag,
        "--output-format",
        "zip",
        "--package",
        LAMBDA_PACKAGE,
        "--no-default-features",
        "--features",
        "server",
        "--include",
        SEED_DIR,
        "--lambda-dir",
        "target/lambda",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `PATH` with the repository's venv first: `make lambda` installs the pinned
/// cargo-lambda (and the zig it cross-compiles with) there.
fn search_path_with(venv_bin: &Path, path: Option<std::ffi::OsString>) -> std::ffi::OsString {
    let rest = path.iter().flat_map(std::env::split_paths);
    std::env::join_paths(std::iter::once(venv_bin.to_owned()).chain(rest))
        .unwrap_or_else(|_| venv_bin.as_os_str().to_owned())
}

fn cargo_lambda_on(search_path: &std::ffi::OsStr) -> bool {
    std::env::split_paths(search_path).any(|dir| dir.join("cargo-lambda").is_file())
}

/// A checked Lambda zip in memory, in its canonical form, with its content
/// hash.
pub struct LambdaZip {
    path: PathBuf,
    sha256: String,
    bytes: Vec<u8>,
}

impl fmt::Debug for LambdaZip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaZip")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("size_bytes", &self.bytes.len())
            .finish()
    }
}

impl LambdaZip {
    /// Reads and checks the zip at `path`: it exists, is a zip, and has an
    /// executable `bootstrap` at its root, built for `arch`.
    pub async fn open(path: &Path, arch: Arch) -> Result<Self, ArtifactError> {
        let owned = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&owned).map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => ArtifactError::Missing(owned.clone()),
                _ => ArtifactError::Read {
                    path: owned.clone(),
                    source,
                },
            })?;
            Self::from_bytes(owned, bytes, arch)
        })
        .await
        .map_err(|join_error| ArtifactError::Read {
            path: path.to_owned(),
            source: io::Error::other(join_error),
        })?
    }

    /// Checks `bytes`, read from `path`, for a function on `arch`, and
    /// keeps their canonical form.
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>, arch: Arch) -> Result<Self, ArtifactError> {
        let invalid = |problem| ArtifactError::Invalid {
            path: path.clone(),
            problem,
        };
        check_lambda_zip(&bytes, arch).map_err(invalid)?;
        let bytes = canonical_zip(&bytes).map_err(invalid)?;
        Ok(Self {
            sha256: sha256_hex(&bytes),
            path,
            bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SHA-256 of the canonical zip's bytes, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn size_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The canonical zip, as it is uploaded.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The object key: `api/<sha256>.zip`; what the template's code key is.
    pub fn key(&self) -> String {
        key_for_hash(&self.sha256)
    }
}

/// The object key of a zip with these bytes.
pub fn artifact_key(zip_bytes: &[u8]) -> String {
    key_for_hash(&sha256_hex(zip_bytes))
}

fn key_for_hash(sha256: &str) -> String {
    format!("{KEY_PREFIX}{sha256}.zip")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What [`upload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadOutcome {
    Uploaded,
    /// An object with this key exists: same key, same bytes.
    AlreadyUploaded,
}

/// The uploaded zip: where it is and whether this run sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadReport {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub outcome: UploadOutcome,
}

impl fmt::Display for UploadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = human_size(self.size_bytes);
        match self.outcome {
            UploadOutcome::Uploaded => write!(
                f,
                "Lambda zip ({size}) uploaded to s3://{}/{}",
                self.bucket, self.key
            ),
            UploadOutcome::AlreadyUploaded => write!(
                f,
                "Lambda zip ({size}) unchanged, already uploaded: s3://{}/{}",
                self.bucket, self.key
            ),
        }
    }
}

/// `3.3 MiB`, `812 KiB`, `20 B`.
fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    match bytes {
        b if b >= MIB => format!("{}.{} MiB", b / MIB, (b % MIB) * 10 / MIB),
        b if b >= KIB => format!("{} KiB", b / KIB),
        b => format!("{b} B"),
    }
}

/// Uploads `zip` to `bucket` under [`LambdaZip::key`], unless an object with
/// that key is already there: the key is the content hash, so it holds these
/// very bytes.
///
/// Every call names the account the bucket must belong to
/// (`x-amz-expected-bucket-owner`): the default bucket name is predictable,
/// and in a region where `bootstrap` has not run, another account may own a
/// bucket of that name; S3 then answers 403 instead of storing our code in
/// it, or telling us it already has "our" zip (S3 user guide, "Verifying
/// bucket ownership with bucket owner condition").
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    artifact_bucket: &ArtifactBucket,
    zip: &LambdaZip,
) -> Result<UploadReport, ArtifactError> {
    let bucket = artifact_bucket.name.as_str();
    let owner = artifact_bucket.account_id.as_str();
    let key = zip.key();
    let report = |outcome| UploadReport {
        bucket: bucket.to_owned(),
        key: key.clone(),
        sha256: zip.sha256.clone(),
        size_bytes: zip.size_bytes(),
        outcome,
    };
    match s3
        .head_object()
        .bucket(bucket)
        .key(&key)
        .expected_bucket_owner(owner)
        .send()
        .await
    {
        Ok(_) => return Ok(report(UploadOutcome::AlreadyUploaded)),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(error) => return Err(head_object_error(bucket, owner, &key, error)),
    }
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .expected_bucket_owner(owner)
        .body(ByteStream::from(zip.bytes.clone()))
        .content_type("application/zip")
        // The bucket's default encryption does this too; saying it here keeps
        // the object encrypted even in a bucket someone set up without it.
        .server_side_encryption(ServerSideEncryption::Aes256)
        .metadata("sha256", zip.sha256())
        .send()
        .await
        .map_err(|error| {
            // A missing bucket also answers HeadObject with a bare 404, so it
            // is only named here.
            if error.code() == Some("NoSuchBucket") {
                ArtifactError::NoBucket {
                    bucket: bucket.to_owned(),
                    source: error.into(),
                }
            } else {
                ArtifactError::S3 {
                    operation: "PutObject",
                    bucket: bucket.to_owned(),
                    key: key.clone(),
                    source: error.into(),
                }
            }
        })?;
    Ok(report(UploadOutcome::Uploaded))
}

fn head_object_error<E>(
    bucket: &str,
    owner: &str,
    key: &str,
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> ArtifactError
where
    E: std::error::Error + Send + Sync + 'static,
{
    // HeadObject answers have no body, so only the status tells what went wrong.
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    match status {
        Some(403) => ArtifactError::AccessDenied {
            owner: owner.to_owned(),
            bucket,
            key,
            source: error.into(),
        },
        Some(301) => ArtifactError::BucketElsewhere {
            bucket,
            source: error.into(),
        },
        _ => ArtifactError::S3 {
            operation: "HeadObject",
            bucket,
            key,
            source: error.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::error::NotFound;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::zip_archive::tests::zip_of;
    use super::*;

    #[test]
    fn the_key_is_the_sha256_of_the_bytes() {
        // sha256("") and sha256("abc"), from FIPS 180-2.
        assert_eq!(
            artifact_key(b""),
            "api/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.zip"
        );
        assert_eq!(
            artifact_key(b"abc"),
            "api/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.zip"
        );
        let given = zip_of(&[("bootstrap", 0o755)], "");
        let zip = LambdaZip::from_bytes("a.zip".into(), given, Arch::Arm64).unwrap();
        // The key is the hash of the canonical bytes, which are uploaded.
        let bytes = zip.bytes().to_vec();
        assert_eq!(zip.key(), artifact_key(&bytes));
        assert_eq!(zip.size_bytes(), bytes.len() as u64);
        // One byte more is another key.
        let mut changed = bytes;
        changed.push(0);
        assert_ne!(artifact_key(&changed), zip.key());
    }

    #[test]
    fn build_arguments_spell_cargo_lambdas_flags() {
        let joined = |arch| build_arguments(arch).join(" ");
        assert_eq!(
            joined(Arch::Arm64),
            "lambda build --profile lambda --arm64 --output-format zip --package api \
             --no-default-features --features server --include infra/seed --lambda-dir \
             target/lambda"
        );
        assert!(joined(Arch::X86_64).contains(" --x86-64 "));
    }

    #[test]
    fn the_venv_comes_first_on_the_search_path() {
        let joined = search_path_with(Path::new("/repo/.venv/bin"), Some("/usr/bin:/bin".into()));
        assert_eq!(joined, "/repo/.venv/bin:/usr/bin:/bin");
        assert_eq!(search_path_with(Path::new("/v"), None), "/v");
    }

    #[test]
    fn cargo_lambda_is_looked_for_on_the_search_path() {
        let dir = std::env::temp_dir().join(format!("deployer-venv-{}", std::process::id()));
        let (empty, venv) = (dir.join("empty"), dir.join("venv"));
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(&venv).unwrap();
        std::fs::write(venv.join("cargo-lambda"), "").unwrap();
        assert!(!cargo_lambda_on(empty.as_os_str()));
        assert!(cargo_lambda_on(&search_path_with(
            &venv,
            Some(empty.into())
        )));
    }

    #[tokio::test]
    #[ignore = "builds the release Lambda with cargo-lambda (minutes); needs `make lambda` first"]
    async fn builds_the_lambda_zip_with_the_seeds_inside() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let path = build_lambda_zip(root, Arch::Arm64).await.unwrap();
        assert_eq!(path, root.join(BUILT_ZIP));
        let zip = LambdaZip::open(&path, Arch::Arm64).await.unwrap();
        let names: Vec<String> = entries(&std::fs::read(zip.path()).unwrap())
            .unwrap()
            .into_iter()
            .map(|entry| entry.name)
            .collect();
        assert!(names.contains(&"bootstrap".to_owned()), "{names:?}");
        assert!(
            names.contains(&"infra/seed/users.json".to_owned()),
            "{names:?}"
        );
    }

    #[test]
    fn path_style_addressing_only_with_an_endpoint_override() {
        assert!(!uses_path_style(None, false));
        assert!(uses_path_style(Some("http://127.0.0.1:4566"), false));
        assert!(uses_path_style(None, true));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(20), "20 B");
        assert_eq!(human_size(812 * 1024 + 5), "812 KiB");
        assert_eq!(human_size(3_460_300), "3.2 MiB");
    }

    #[tokio::test]
    async fn open_refuses_missing_and_unusable_files_with_their_path() {
        let dir = std::env::temp_dir().join(format!("deployer-artifacts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.zip");
        let error = LambdaZip::open(&missing, Arch::Arm64).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("the Lambda zip {} does not exist", missing.display())
        );

        let not_zip = dir.join("bootstrap");
        std::fs::write(&not_zip, b"\x7fELF").unwrap();
        let error = LambdaZip::open(&not_zip, Arch::Arm64).await.unwrap_err();
        assert!(
            error.to_string().starts_with(&format!(
                "{} is not a usable Lambda zip: it is not a readable zip archive (",
                not_zip.display()
            )),
            "{error}"
        );

        // A zip for the wrong CPU is refused before anything is uploaded.
        let x86 = dir.join("x86.zip");
        std::fs::write(&x86, zip_of(&[("bootstrap", 0o755)], "")).unwrap();
        let error = LambdaZip::open(&x86, Arch::X86_64).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("its `bootstrap` is built for arm64, but the function runs on x86_64"),
            "{error}"
        );

        let good = dir.join("good.zip");
        std::fs::write(&good, zip_of(&[("bootstrap", 0o755)], "")).unwrap();
        let zip = LambdaZip::open(&good, Arch::Arm64).await.unwrap();
        assert_eq!(zip.path(), good);
        assert_eq!(zip.sha256().len(), 64);
        // Debug names the zip; it does not dump megabytes of it.
        let debug = format!("{zip:?}");
        assert!(
            debug.ends_with(&format!("size_bytes: {} }}", zip.size_bytes())),
            "{debug}"
        );
        assert!(!debug.contains('['), "{debug}");
    }

    fn test_bucket() -> ArtifactBucket {
        ArtifactBucket::new(
            "bucket".to_owned(),
            "eu-west-1",
            "123456789012".to_owned(),
            "aws".to_owned(),
        )
        .unwrap()
    }

    fn test_zip() -> LambdaZip {
        LambdaZip::from_bytes(
            "z.zip".into(),
            zip_of(&[("bootstrap", 0o755)], ""),
            Arch::Arm64,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn an_object_already_there_is_not_uploaded_again() {
        let zip = test_zip();
        let key = zip.key();
        let head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(move |input| {
                input.key() == Some(key.as_str())
                    && input.expected_bucket_owner() == Some("123456789012")
            })
            .then_output(|| HeadObjectOutput::builder().build());
        let put = mock!(aws_sdk_s3::Client::put_object)
            .then_output(|| PutObjectOutput::builder().build());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&head, &put]);
        let report = upload(&s3, &test_bucket(), &zip).await.unwrap();
        assert_eq!(report.outcome, UploadOutcome::AlreadyUploaded);
        assert_eq!(put.num_calls(), 0);
        assert!(
            report.to_string().contains("unchanged, already uploaded"),
            "{report}"
        );
    }

    #[tokio::test]
    async fn a_missing_object_is_put_encrypted_under_its_hash() {
        let zip = test_zip();
        let key = zip.key();
        let head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|input| input.expected_bucket_owner() == Some("123456789012"))
            .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()));
        let put = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(move |input| {
                input.bucket() == Some("bucket")
                    && input.key() == Some(key.as_str())
                    && input.expected_bucket_owner() == Some("123456789012")
                    && input.server_side_encryption() == Some(&ServerSideEncryption::Aes256)
            })
            .then_output(|| PutObjectOutput::builder().build());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&head, &put]);
        let report = upload(&s3, &test_bucket(), &zip).await.unwrap();
        assert_eq!(report.outcome, UploadOutcome::Uploaded);
        assert_eq!(put.num_calls(), 1);
        assert_eq!(
            report.to_string(),
            format!(
                "Lambda zip ({} B) uploaded to s3://bucket/{}",
                zip.size_bytes(),
                zip.key()
            )
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["outcome"], "uploaded");
    }

    #[tokio::test]
    async fn a_403_on_head_explains_the_permissions() {
        let head = mock!(aws_sdk_s3::Client::head_object)
            .sequence()
            .http_status(403, None)
            .build();
        let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&head]);
        let error = upload(&s3, &test_bucket(), &test_zip()).await.unwrap_err();
        assert!(
            matches!(error, ArtifactError::AccessDenied { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("s3:ListBucket"));
        // A bucket of the same name in another account answers 403 too.
        assert!(
            error.to_string().contains("not account 123456789012's"),
            "{error}"
        );
    }
}
