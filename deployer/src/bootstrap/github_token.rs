//! The GitHub token secret the CodeBuild source credential resolves.
//!
//! The token is read once, when the secret does not exist yet, from a file or
//! from a pipe, and goes straight into Secrets Manager. It is never a
//! command-line argument (the process list and shell history would show it),
//! never read from a terminal (it would be echoed: turning echo off needs a
//! terminal crate this project does without), and held in [`GitHubToken`],
//! whose `Debug` and `Display` print `***` and which cannot be serialised, so
//! no report, error or log line can carry it.

use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

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

/// Whether [`ensure_github_token`] stored a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretOutcome {
    Created,
    /// The secret exists; its value was neither read nor changed.
    AlreadyExisted,
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
        }
    }
}

/// Makes sure the secret `name` exists. An existing secret is left as it is
/// (rotating the token is `aws secretsmanager put-secret-value`, not a
/// bootstrap); a missing one is created from the token `source` holds,
/// which is read only then, so a second bootstrap needs no token.
pub async fn ensure_github_token(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    source: &TokenSource,
) -> Result<SecretReport, BootstrapError> {
    let secrets_error =
        |operation, error: aws_sdk_secretsmanager::Error| BootstrapError::SecretsManager {
            operation,
            name: name.to_owned(),
            source: error.into(),
        };
    match secrets.describe_secret().secret_id(name).send().await {
        Ok(found) if found.deleted_date().is_some() => {
            return Err(BootstrapError::SecretScheduledForDeletion {
                name: name.to_owned(),
            });
        }
        Ok(found) => {
            return Ok(SecretReport {
                name: name.to_owned(),
                arn: found.arn().map(str::to_owned),
                outcome: SecretOutcome::AlreadyExisted,
            });
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(error) => return Err(secrets_error("DescribeSecret", error.into())),
    }

    let token = read_token(source).await?;
    let created = secrets
        .create_secret()
        .name(name)
        .description(
            "GitHub personal access token for the CodeBuild source credential; \
             stored by `deployer bootstrap`",
        )
        .secret_string(token.expose())
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
        Err(error) => Err(secrets_error("CreateSecret", error.into())),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::operation::create_secret::{CreateSecretError, CreateSecretOutput};
    use aws_sdk_secretsmanager::operation::describe_secret::{
        DescribeSecretError, DescribeSecretOutput,
    };
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
                input.name() == Some("app/github-token") && input.secret_string() == Some(TOKEN)
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

    #[tokio::test]
    async fn an_existing_secret_is_left_and_no_token_is_read() {
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .then_output(|| DescribeSecretOutput::builder().arn("arn:secret").build());
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
