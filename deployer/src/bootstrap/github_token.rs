//! The GitHub token secret the CodeBuild project's source credential is.
//!
//! The secret holds the token in the JSON form CodeBuild reads, tagged as
//! CodeBuild expects, and the project names it as its own source credential:
//! CodeBuild reads it at every build, so storing a new token
//! ([`store_github_token`], `deployer pipeline token`) is the whole rotation.
//!
//! The token is read from a file or from a pipe, only when it is stored, and
//! goes straight into Secrets Manager. It is never a
//! command-line argument (the process list and shell history would show it),
//! never read from a terminal (it would be echoed: turning echo off needs a
//! terminal crate this project does without), and held in [`GitHubToken`],
//! whose `Debug` and `Display` print `***` and which cannot be serialised, so
//! no report, error or log line can carry it.

use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;
use serde::Serialize;

use super::BootstrapError;

/// A token is about 40 to 100 characters; more than this is not a token.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// A GitHub token. Deliberately neither `Serialize` nor `Clone`, and
/// printed as `***` whichever way it is formatted.
pub struct GitHubToken(String);

impl GitHubToken {
    /// The token in `raw`, trimmed; `from` names where it came from, for errors.
    pub fn parse(raw: &str, from: &str) -> Result<Self, BootstrapError> {
        let token = raw.trim();
        if token.is_empty() {
            return Err(BootstrapError::TokenEmpty {
                from: from.to_owned(),
            });
        }
        if token.chars().any(char::is_whitespace) {
            return Err(BootstrapError::TokenHasWhitespace {
                from: from.to_owned(),
            });
        }
        Ok(Self(token.to_owned()))
    }

    /// The token itself: only for the request that stores it.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GitHubToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GitHubToken(***)")
    }
}

impl fmt::Display for GitHubToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the token is read from when the secret must be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--github-token-file PATH`: the file holds the token alone.
    File(PathBuf),
    /// Standard input, which must be a pipe or a file, never a terminal.
    Stdin,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::File(path) => write!(f, "file {}", path.display()),
            TokenSource::Stdin => f.write_str("standard input"),
        }
    }
}

/// Reads the token from `source` (on a blocking thread: stdin and files are
/// blocking reads).
pub async fn read_token(source: &TokenSource) -> Result<GitHubToken, BootstrapError> {
    let source = source.clone();
    let from = source.to_string();
    tokio::task::spawn_blocking(move || read_token_blocking(&source))
        .await
        .map_err(|join_error| BootstrapError::TokenRead {
            from,
            source: std::io::Error::other(join_error),
        })?
}

fn read_token_blocking(source: &TokenSource) -> Result<GitHubToken, BootstrapError> {
    let from = source.to_string();
    let read_error = |source| BootstrapError::TokenRead {
        from: from.clone(),
        source,
    };
    let mut raw = String::new();
    match source {
        TokenSource::File(path) => {
            std::fs::File::open(path)
                .and_then(|file| file.take(MAX_TOKEN_BYTES).read_to_string(&mut raw))
                .map_err(read_error)?;
        }
        TokenSource::Stdin => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(BootstrapError::TokenFromTerminal);
            }
            stdin
                .lock()
                .take(MAX_TOKEN_BYTES)
                .read_to_string(&mut raw)
                .map_err(read_error)?;
        }
    }
    GitHubToken::parse(&raw, &from)
}

/// What [`ensure_github_token`] or [`store_github_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretOutcome {
    Created,
    /// The secret exists; its value was neither read nor changed.
    AlreadyExisted,
    /// A new token replaced the secret's value (a rotation).
    Updated,
}

/// The secret, by name: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretReport {
    pub name: String,
    pub arn: Option<String>,
    pub outcome: SecretOutcome,
}

impl fmt::Display for SecretReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            SecretOutcome::Created => write!(f, "GitHub token secret {}: created", self.name),
            SecretOutcome::AlreadyExisted => write!(
                f,
                "GitHub token secret {}: already there, left unchanged",
                self.name
            ),
            SecretOutcome::Updated => write!(
                f,
                "GitHub token secret {}: new token stored; the next build uses it",
                self.name
            ),
        }
    }
}

/// The tags CodeBuild looks for on a secret that holds a source credential,
/// and their values for a GitHub personal access token (CodeBuild user guide,
/// "Create and store a token in a Secrets Manager secret").
pub const CODEBUILD_SECRET_TAGS: [(&str, &str); 3] = [
    ("codebuild:source", ""),
    ("codebuild:source:type", "personal_access_token"),
    ("codebuild:source:provider", "github"),
];

/// The secret's value in the form CodeBuild reads a source credential from:
/// `{"ServerType": "GITHUB", "AuthType": "PERSONAL_ACCESS_TOKEN", "Token": …}`
/// (same page). The pipeline's `GITHUB_TOKEN` variable reads its `Token` key.
fn codebuild_secret_string(token: &GitHubToken) -> String {
    serde_json::json!({
        "ServerType": "GITHUB",
        "AuthType": "PERSONAL_ACCESS_TOKEN",
        "Token": token.expose(),
    })
    .to_string()
}

fn tags() -> Vec<Tag> {
    CODEBUILD_SECRET_TAGS
        .iter()
        .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
        .collect()
}

/// What Secrets Manager knows of the secret `name`, if it exists.
async fn describe(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<Option<DescribeSecretOutput>, BootstrapError> {
    match secrets.describe_secret().secret_id(name).send().await {
        Ok(found) if found.deleted_date().is_some() => {
            Err(BootstrapError::SecretScheduledForDeletion {
                name: name.to_owned(),
            })
        }
        Ok(found) => Ok(Some(found)),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(secrets_error(name, "DescribeSecret", error.into())),
    }
}

fn secrets_error(
    name: &str,
    operation: &'static str,
    error: aws_sdk_secretsmanager::Error,
) -> BootstrapError {
    BootstrapError::SecretsManager {
        operation,
        name: name.to_owned(),
        source: error.into(),
    }
}

/// Whether the secret carries CodeBuild's tags, i.e. holds CodeBuild's form.
fn is_codebuild_secret(found: &DescribeSecretOutput) -> bool {
    found
        .tags()
        .iter()
        .any(|tag| tag.key() == Some(CODEBUILD_SECRET_TAGS[0].0))
}

/// The ARN of the secret `name`, which must exist and hold CodeBuild's form.
/// Deploys pass it to the template: the project reads the token from it.
pub async fn github_token_arn(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<String, BootstrapError> {
    let found = describe(secrets, name)
        .await?
        .ok_or_else(|| BootstrapError::SecretMissing {
            name: name.to_owned(),
        })?;
    if !is_codebuild_secret(&found) {
        return Err(BootstrapError::SecretNotForCodeBuild {
            name: name.to_owned(),
        });
    }
    found
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| BootstrapError::SecretMissing {
            name: name.to_owned(),
        })
}

/// Makes sure the secret `name` exists, in CodeBuild's form. An existing
/// one is left as it is (rotating the token is [`store_github_token`]); a
/// missing one is created from the token `source` holds, which is read only
/// then, so a second bootstrap needs no token.
pub async fn ensure_github_token(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    source: &TokenSource,
) -> Result<SecretReport, BootstrapError> {
    if let Some(found) = describe(secrets, name).await? {
        if !is_codebuild_secret(&found) {
            return Err(BootstrapError::SecretNotForCodeBuild {
                name: name.to_owned(),
            });
        }
        return Ok(SecretReport {
            name: name.to_owned(),
            arn: found.arn().map(str::to_owned),
            outcome: SecretOutcome::AlreadyExisted,
        });
    }
    let token = read_token(source).await?;
    create(secrets, name, token).await
}

/// Stores a new token in the secret `name` (creating it if missing): the one
/// command that rotates the pipeline's GitHub token. CodeBuild reads the
/// secret at every build, so the next build uses the new token; no deploy
/// is needed, and no other project's credential is touched.
pub async fn store_github_token(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    source: &TokenSource,
) -> Result<SecretReport, BootstrapError> {
    let found = describe(secrets, name).await?;
    let token = read_token(source).await?;
    let Some(found) = found else {
        return create(secrets, name, token).await;
    };
    let put = secrets
        .put_secret_value()
        .secret_id(name)
        .secret_string(codebuild_secret_string(&token))
        .send()
        .await;
    drop(token);
    put.map_err(|error| secrets_error(name, "PutSecretValue", error.into()))?;
    // A secret made before the pipeline used CodeBuild's form gets its tags.
    secrets
        .tag_resource()
        .secret_id(name)
        .set_tags(Some(tags()))
        .send()
        .await
        .map_err(|error| secrets_error(name, "TagResource", error.into()))?;
    Ok(SecretReport {
        name: name.to_owned(),
        arn: found.arn().map(str::to_owned),
        outcome: SecretOutcome::Updated,
    })
}

async fn create(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    token: GitHubToken,
) -> Result<SecretReport, BootstrapError> {
    let created = secrets
        .create_secret()
        .name(name)
        .description(
            "GitHub personal access token of the CodeBuild pipeline's source, in CodeBuild's \
             form; stored by `deployer bootstrap`, rotated by `deployer pipeline token`",
        )
        .secret_string(codebuild_secret_string(&token))
        .set_tags(Some(tags()))
        .send()
        .await;
    // The request held the token; nothing of it is kept past here. The SDK
    // marks `SecretString` sensitive, so even its own traces redact it.
    drop(token);
    match created {
        Ok(created) => Ok(SecretReport {
            name: name.to_owned(),
            arn: created.arn().map(str::to_owned),
            outcome: SecretOutcome::Created,
        }),
        // Another bootstrap stored one in the meantime: keep theirs.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            Ok(SecretReport {
                name: name.to_owned(),
                arn: None,
                outcome: SecretOutcome::AlreadyExisted,
            })
        }
        Err(error) => Err(secrets_error(name, "CreateSecret", error.into())),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::operation::create_secret::{CreateSecretError, CreateSecretOutput};
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
    use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueOutput;
    use aws_sdk_secretsmanager::operation::tag_resource::TagResourceOutput;
    use aws_sdk_secretsmanager::primitives::DateTime;
    use aws_sdk_secretsmanager::types::error::{LimitExceededException, ResourceNotFoundException};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const TOKEN: &str = "ghp_s3cr3tT0k3nValue0123456789abcdefABCD";

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("deployer-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn the_token_never_prints() {
        let token = GitHubToken::parse(&format!("  {TOKEN}\n"), "file t").unwrap();
        assert_eq!(token.expose(), TOKEN);
        assert_eq!(token.to_string(), "***");
        assert_eq!(format!("{token:?}"), "GitHubToken(***)");
        assert_eq!(format!("{token:#?}"), "GitHubToken(***)");
        assert_eq!(format!("{token:>10}"), "***");
    }

    #[test]
    fn empty_or_spaced_tokens_are_refused_without_showing_them() {
        let error = GitHubToken::parse(" \n\t", "file t").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the GitHub token read from file t is empty"
        );
        let error = GitHubToken::parse("ghp_one ghp_two", "standard input").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the GitHub token read from standard input contains whitespace: it must hold the \
             token alone"
        );
        assert!(!format!("{error:?}").contains("ghp_"));
    }

    #[tokio::test]
    async fn tokens_are_read_from_files() {
        let path = temp_file("token", &format!("{TOKEN}\n"));
        let token = read_token(&TokenSource::File(path)).await.unwrap();
        assert_eq!(token.expose(), TOKEN);

        let missing = TokenSource::File(PathBuf::from("/nonexistent/token"));
        let error = read_token(&missing).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read the GitHub token from file /nonexistent/token"
        );
    }

    fn not_found() -> DescribeSecretError {
        DescribeSecretError::ResourceNotFoundException(ResourceNotFoundException::builder().build())
    }

    #[tokio::test]
    async fn a_missing_secret_is_created_from_the_file() {
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_error(not_found);
        let create = mock!(aws_sdk_secretsmanager::Client::create_secret)
            .match_requests(|input| {
                let stored: serde_json::Value =
                    serde_json::from_str(input.secret_string().unwrap()).unwrap();
                input.name() == Some("app/github-token")
                    && stored
                        == serde_json::json!({
                            "ServerType": "GITHUB",
                            "AuthType": "PERSONAL_ACCESS_TOKEN",
                            "Token": TOKEN,
                        })
                    && has_codebuild_tags(input.tags())
            })
            .then_output(|| CreateSecretOutput::builder().arn("arn:secret").build());
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            [&describe, &create]
        );
        let source = TokenSource::File(temp_file("create", TOKEN));
        let report = ensure_github_token(&client, "app/github-token", &source)
            .await
            .unwrap();
        assert_eq!(report.outcome, SecretOutcome::Created);
        assert_eq!(create.num_calls(), 1);
        assert_eq!(
            report.to_string(),
            "GitHub token secret app/github-token: created"
        );
        for printed in [
            report.to_string(),
            format!("{report:?}"),
            serde_json::to_string(&report).unwrap(),
        ] {
            assert!(!printed.contains(TOKEN), "{printed}");
        }
    }

    /// CodeBuild finds a source credential's secret by these tags.
    fn has_codebuild_tags(tags: &[Tag]) -> bool {
        CODEBUILD_SECRET_TAGS.iter().all(|(key, value)| {
            tags.iter()
                .any(|tag| tag.key() == Some(*key) && tag.value() == Some(*value))
        })
    }

    fn codebuild_secret() -> DescribeSecretOutput {
        DescribeSecretOutput::builder()
            .arn("arn:secret")
            .set_tags(Some(tags()))
            .build()
    }

    #[tokio::test]
    async fn an_existing_secret_is_left_and_no_token_is_read() {
        let describe =
            mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(codebuild_secret);
        let create = mock!(aws_sdk_secretsmanager::Client::create_secret)
            .then_output(|| CreateSecretOutput::builder().build());
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&describe, &create]
        );
        // A source that cannot be read: it must not be needed.
        let source = TokenSource::File(PathBuf::from("/nonexistent/token"));
        let report = ensure_github_token(&client, "app/github-token", &source)
            .await
            .unwrap();
        assert_eq!(report.outcome, SecretOutcome::AlreadyExisted);
        assert_eq!(create.num_calls(), 0);
        assert_eq!(
            report.to_string(),
            "GitHub token secret app/github-token: already there, left unchanged"
        );
    }

    /// A secret holding the bare token (what bootstrap stored before the
    /// project had its own source credential) is not silently used.
    #[tokio::test]
    async fn a_secret_without_codebuild_form_says_how_to_store_it_again() {
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .then_output(|| DescribeSecretOutput::builder().arn("arn:secret").build());
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&describe]);
        let source = TokenSource::File(PathBuf::from("/nonexistent/token"));
        let error = ensure_github_token(&client, "app/t", &source)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("deployer pipeline token --github-token-file PATH"),
            "{error}"
        );
        let error = github_token_arn(&client, "app/t").await.unwrap_err();
        assert!(matches!(
            error,
            BootstrapError::SecretNotForCodeBuild { .. }
        ));

        let tagged =
            mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(codebuild_secret);
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&tagged]);
        assert_eq!(
            github_token_arn(&client, "app/t").await.unwrap(),
            "arn:secret"
        );
        let missing = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_error(not_found);
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&missing]);
        let error = github_token_arn(&client, "app/t").await.unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
    }

    /// Rotation: the new token replaces the value, in CodeBuild's form, and
    /// the tags are (re)applied; nothing else is touched, nothing printed.
    #[tokio::test]
    async fn storing_a_token_rotates_the_existing_secret() {
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .then_output(|| DescribeSecretOutput::builder().arn("arn:secret").build());
        let put = mock!(aws_sdk_secretsmanager::Client::put_secret_value)
            .match_requests(|input| {
                input.secret_id() == Some("app/t")
                    && input
                        .secret_string()
                        .is_some_and(|value| value.contains(&format!("\"Token\":\"{TOKEN}\"")))
            })
            .then_output(|| PutSecretValueOutput::builder().build());
        let tag = mock!(aws_sdk_secretsmanager::Client::tag_resource)
            .match_requests(|input| has_codebuild_tags(input.tags()))
            .then_output(|| TagResourceOutput::builder().build());
        let create = mock!(aws_sdk_secretsmanager::Client::create_secret)
            .then_output(|| CreateSecretOutput::builder().build());
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&describe, &put, &tag, &create]
        );
        let source = TokenSource::File(temp_file("rotate", TOKEN));
        let report = store_github_token(&client, "app/t", &source).await.unwrap();
        assert_eq!(report.outcome, SecretOutcome::Updated);
        assert_eq!(
            (put.num_calls(), tag.num_calls(), create.num_calls()),
            (1, 1, 0)
        );
        assert_eq!(
            report.to_string(),
            "GitHub token secret app/t: new token stored; the next build uses it"
        );
        assert!(!format!("{report} {report:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn a_secret_scheduled_for_deletion_is_explained() {
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(|| {
            DescribeSecretOutput::builder()
                .deleted_date(DateTime::from_secs(1_700_000_000))
                .build()
        });
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&describe]);
        let error = ensure_github_token(&client, "app/t", &TokenSource::Stdin)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("restore-secret --secret-id app/t"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_failed_create_does_not_carry_the_token() {
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_error(not_found);
        let create = mock!(aws_sdk_secretsmanager::Client::create_secret).then_error(|| {
            CreateSecretError::LimitExceededException(
                LimitExceededException::builder()
                    .message("too many secrets")
                    .build(),
            )
        });
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            [&describe, &create]
        );
        let source = TokenSource::File(temp_file("failed", TOKEN));
        let error = ensure_github_token(&client, "app/t", &source)
            .await
            .unwrap_err();
        let mut chain = format!("{error} {error:?}");
        let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&error);
        while let Some(inner) = cause {
            chain.push_str(&format!(" {inner} {inner:?}"));
            cause = inner.source();
        }
        assert!(chain.contains("too many secrets"), "{chain}");
        assert!(!chain.contains(TOKEN), "{chain}");
    }
}
