//! Stack settings: the `stack:` section of `infra/app.yaml`, with defaults.
//!
//! They live in the declaration, not only in flags, so the deploy CodeBuild
//! runs on every push builds the same stack a developer bootstrapped.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How the stack is built. Every field has a default; see `infra/app.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StackSettings {
    /// The CloudFormation stack name; also the prefix of table names.
    pub name: String,
    /// The Lambda's CPU architecture.
    pub arch: Arch,
    /// The Lambda's memory, in MB (128 to 10240).
    pub memory_mb: u32,
    /// The Lambda's timeout, in seconds (API Gateway gives up after 29).
    pub timeout_seconds: u32,
    /// How long the Lambda's and the stage's logs are kept, in days.
    pub log_retention_days: u32,
    /// Steady-state requests per second the `prod` stage lets through.
    pub throttle_rate: u32,
    /// Burst of requests the `prod` stage lets through.
    pub throttle_burst: u32,
    /// Require an API key (`x-api-key` header) on every method: the stack
    /// gets a key and a usage plan with the same throttling, and requests
    /// without the key get 403 from API Gateway before reaching the function.
    pub api_key: bool,
    /// Lambda reserved concurrency: the most instances the function may run
    /// at once, reserved from the account's pool. Absent: none reserved.
    pub reserved_concurrency: Option<u32>,
    /// X-Ray tracing on the function and the stage (and the function role's
    /// permission to send traces).
    pub tracing: bool,
    /// Encrypt the tables with the AWS managed KMS key `aws/dynamodb`
    /// (billed per request by AWS KMS, and the key's use is in CloudTrail)
    /// instead of DynamoDB's default AWS owned key (free). Both encrypt at
    /// rest.
    pub kms: bool,
    /// The artifact bucket; default `<name>-artifacts-<account>-<region>`.
    pub artifact_bucket: Option<String>,
    /// The CodeBuild pipeline; absent means no pipeline.
    pub pipeline: Option<PipelineSettings>,
}

impl Default for StackSettings {
    fn default() -> Self {
        Self {
            name: "serverless-api".to_owned(),
            arch: Arch::Arm64,
            memory_mb: 128,
            timeout_seconds: 10,
            log_retention_days: 30,
            throttle_rate: 50,
            throttle_burst: 100,
            api_key: false,
            reserved_concurrency: None,
            tracing: true,
            kms: false,
            artifact_bucket: None,
            pipeline: None,
        }
    }
}

/// The CodeBuild project that redeploys on every push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// The GitHub repository, `https://github.com/OWNER/REPO.git`.
    pub repository: String,
    /// The branch whose pushes deploy.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The Secrets Manager secret holding the GitHub token (never the token).
    #[serde(default = "default_token_secret")]
    pub github_token_secret: String,
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_token_secret() -> String {
    "serverless-api/github-token".to_owned()
}

/// The Lambda's CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Graviton: about 20% cheaper per GB-second than x86_64.
    Arm64,
    X86_64,
}

impl Arch {
    /// The name Lambda's `Architectures` property uses.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lambda_name())
    }
}

/// One rule of the declaration a value breaks: where (`stack.memory_mb`,
/// `resources.users.seed`) and what the rule is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path in the declaration.
    pub key: String,
    pub rule: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.rule)
    }
}

impl StackSettings {
    /// Reads the `stack:` section (`None`: all defaults). Its values are
    /// checked by [`StackSettings::problems`], which `declaration` runs.
    pub fn from_section(section: Option<&serde_yaml::Value>) -> Result<Self, Problem> {
        match section {
            // serde_yaml names the field (`unknown field `memroy_mb``, `pipeline:
            // missing field `repository``) but not the `stack.` above it.
            Some(value) => serde_yaml::from_value(value.clone())
                .map_err(|error| Problem::new("stack", error.to_string())),
            None => Ok(StackSettings::default()),
        }
    }

    /// Every rule a setting breaks: what AWS would refuse, found before any
    /// call (and before a build).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut check = |valid: bool, key: &str, value: String, expected: &str| {
            if !valid {
                problems.push(Problem::new(
                    format!("stack.{key}"),
                    format!("{value} is not allowed: {expected}"),
                ));
            }
        };
        check(
            (128..=10240).contains(&self.memory_mb),
            "memory_mb",
            self.memory_mb.to_string(),
            "Lambda allows 128 to 10240",
        );
        check(
            (1..=29).contains(&self.timeout_seconds),
            "timeout_seconds",
            self.timeout_seconds.to_string(),
            "API Gateway waits at most 29 s, so 1 to 29",
        );
        // Zero would make API Gateway (or Lambda) refuse every request: a
        // switched-off API is `deployer destroy`, not a setting.
        check(
            self.throttle_rate > 0,
            "throttle_rate",
            "0".to_owned(),
            "at least 1 request per second",
        );
        check(
            self.throttle_burst > 0,
            "throttle_burst",
            "0".to_owned(),
            "at least 1 request",
        );
        check(
            self.reserved_concurrency != Some(0),
            "reserved_concurrency",
            "0".to_owned(),
            "at least 1 (0 would throttle every invocation); omit it to reserve none",
        );
        check(
            is_stack_name(&self.name),
            "name",
            format!("{:?}", self.name),
            "a stack name is 1 to 100 letters, digits and `-`, starting with a letter",
        );
        if let Some(bucket) = &self.artifact_bucket
            && let Some(problem) = bucket_name_problem(bucket)
        {
            check(false, "artifact_bucket", format!("{bucket:?}"), &problem);
        }
        if let Some(pipeline) = &self.pipeline {
            check(
                is_github_repository(&pipeline.repository),
                "pipeline.repository",
                format!("{:?}", pipeline.repository),
                "https://github.com/OWNER/REPO (optionally ending in .git), what CodeBuild's \
                 GitHub source takes",
            );
            check(
                is_branch(&pipeline.branch),
                "pipeline.branch",
                format!("{:?}", pipeline.branch),
                "a git branch name: letters, digits, `.`, `_`, `/` and `-`, no `..` or `//`, \
                 not starting with `-`, `.` or `/`, not ending with `/`, `.` or `.lock`",
            );
            check(
                is_secret_name(&pipeline.github_token_secret),
                "pipeline.github_token_secret",
                format!("{:?}", pipeline.github_token_secret),
                "a Secrets Manager name: 1 to 512 of letters, digits and /_+=.@-",
            );
        }
        problems
    }
}

fn is_stack_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `https://github.com/OWNER/REPO`, optionally `.git`: what CodeBuild's
/// GitHub source accepts, and the template parameter's AllowedPattern.
fn is_github_repository(url: &str) -> bool {
    let Some(path) = url.strip_prefix("https://github.com/") else {
        return false;
    };
    let segment = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    matches!(path.split('/').collect::<Vec<_>>().as_slice(), [owner, repo] if segment(owner) && segment(repo))
}

/// `git check-ref-format`'s rules for a branch, on the characters the
/// template parameter allows.
/// https://git-scm.com/docs/git-check-ref-format
fn is_branch(branch: &str) -> bool {
    !branch.is_empty()
        && branch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !branch.starts_with(['-', '/'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.split('/').any(|part| part.starts_with('.'))
}

/// Secrets Manager's name rule (CreateSecret `Name`: 1 to 512 of
/// `[a-zA-Z0-9/_+=.@-]`).
fn is_secret_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

/// S3's rules for a general purpose bucket name, if `name` breaks one.
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
pub fn bucket_name_problem(name: &str) -> Option<String> {
    let problem = if !(3..=MAX_BUCKET_NAME_LEN).contains(&name.len()) {
        "it must be 3 to 63 characters long"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        "it may hold only lowercase letters, digits, `-` and `.`"
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        "it must start and end with a letter or a digit"
    } else if name.contains("..") {
        "it must not hold two `.` in a row"
    } else if name.split('.').count() == 4 && name.split('.').all(|part| part.parse::<u8>().is_ok())
    {
        "it must not look like an IP address"
    } else if ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        "it starts with a prefix S3 reserves (`xn--`, `sthree-`, `amzn-s3-demo-`)"
    } else if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        "it ends with a suffix S3 reserves"
    } else {
        return None;
    };
    Some(problem.to_owned())
}

/// S3's longest bucket name.
pub const MAX_BUCKET_NAME_LEN: usize = 63;

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings, or every problem found, one per line.
    fn parse(yaml: &str) -> Result<StackSettings, String> {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let settings = StackSettings::from_section(Some(&value)).map_err(|p| p.to_string())?;
        let problems = settings.problems();
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            StackSettings::from_section(None).unwrap(),
            StackSettings::default()
        );
        let settings = parse(
            "name: shop\narch: x86_64\nmemory_mb: 256\npipeline:\n  repository: https://github.com/o/r.git\n",
        )
        .unwrap();
        assert_eq!(settings.name, "shop");
        assert_eq!(settings.arch, Arch::X86_64);
        assert_eq!(settings.memory_mb, 256);
        assert_eq!(settings.timeout_seconds, 10);
        assert!(!settings.api_key);
        assert_eq!(settings.reserved_concurrency, None);
        assert!(settings.tracing);
        assert!(!settings.kms, "KMS costs money per request: opt-in only");
        let pipeline = settings.pipeline.unwrap();
        assert_eq!(pipeline.branch, "main");
        assert_eq!(pipeline.github_token_secret, "serverless-api/github-token");
    }

    #[test]
    fn refuses_what_aws_would_refuse() {
        let refused = |yaml: &str, fragment: &str| {
            let message = parse(yaml).expect_err(yaml);
            assert!(message.contains(fragment), "{yaml}: {message}");
        };
        refused(
            "memory_mb: 64\n",
            "`stack.memory_mb`: 64 is not allowed: Lambda allows 128 to 10240",
        );
        refused("timeout_seconds: 60\n", "API Gateway waits at most 29 s");
        refused("name: 1abc\n", "`stack.name`: \"1abc\" is not allowed");
        refused("arch: mips\n", "unknown variant `mips`");
        refused("memroy_mb: 256\n", "`stack`: unknown field `memroy_mb`");
        refused(
            "throttle_rate: 0\n",
            "`stack.throttle_rate`: 0 is not allowed",
        );
        refused(
            "throttle_burst: 0\n",
            "`stack.throttle_burst`: 0 is not allowed",
        );
        refused(
            "reserved_concurrency: 0\n",
            "`stack.reserved_concurrency`: 0 is not allowed",
        );
        refused(
            "artifact_bucket: ab\n",
            "it must be 3 to 63 characters long",
        );
        refused(
            "pipeline: { repository: https://gitlab.com/a/b }\n",
            "`stack.pipeline.repository`",
        );
        refused("reserved_concurrency: -1\n", "expected u32");
        refused("api_key: maybe\n", "expected a boolean");
    }

    #[test]
    fn the_stack_options_parse() {
        let settings = parse(
            "throttle_rate: 5\nthrottle_burst: 10\napi_key: true\nreserved_concurrency: 3\n\
             tracing: false\n",
        )
        .unwrap();
        assert_eq!((settings.throttle_rate, settings.throttle_burst), (5, 10));
        assert!(settings.api_key);
        assert_eq!(settings.reserved_concurrency, Some(3));
        assert!(!settings.tracing);
    }

    #[test]
    fn github_settings_are_checked() {
        for (url, valid) in [
            ("https://github.com/o/r.git", true),
            ("https://github.com/o/r", true),
            ("https://github.com/o", false),
            ("https://github.com/o/r/x", false),
            ("http://github.com/o/r", false),
            ("https://gitlab.com/o/r", false),
        ] {
            assert_eq!(is_github_repository(url), valid, "{url}");
        }
        assert_eq!(
            bucket_name_problem("shop-artifacts-123456789012-eu-west-1"),
            None
        );
        for bucket in ["Shop", "ab", "shop-"] {
            assert!(bucket_name_problem(bucket).is_some(), "{bucket}");
        }
        assert!(is_secret_name("serverless-api/github-token"));
        assert!(!is_secret_name("a b"));
        assert!(!is_secret_name(&"s".repeat(513)));
    }
}
