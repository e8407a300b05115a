//! Stack settings: the `stack:` section of `infra/app.yaml`, with defaults.
//!
//! They live in the declaration, not only in flags, so the deploy CodeBuild
//! runs on every push builds the same stack a developer bootstrapped.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

/// Why the `stack:` section cannot be used.
#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("the `stack:` section of the app declaration is invalid")]
    Parse(#[from] serde_yaml::Error),
    #[error("stack setting `{setting}` is {value}; {expected}")]
    OutOfRange {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl StackSettings {
    /// Reads the `stack:` section (`None`: all defaults) and checks it.
    pub fn from_section(section: Option<&serde_yaml::Value>) -> Result<Self, SettingsError> {
        let settings: StackSettings = match section {
            Some(value) => serde_yaml::from_value(value.clone())?,
            None => StackSettings::default(),
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let out_of_range = |setting, value: String, expected| SettingsError::OutOfRange {
            setting,
            value,
            expected,
        };
        if !(128..=10240).contains(&self.memory_mb) {
            return Err(out_of_range(
                "memory_mb",
                self.memory_mb.to_string(),
                "Lambda allows 128 to 10240",
            ));
        }
        if !(1..=29).contains(&self.timeout_seconds) {
            return Err(out_of_range(
                "timeout_seconds",
                self.timeout_seconds.to_string(),
                "API Gateway waits at most 29 s, so 1 to 29",
            ));
        }
        // Zero would make API Gateway (or Lambda) refuse every request: a
        // switched-off API is `deployer destroy`, not a setting.
        if self.throttle_rate == 0 {
            return Err(out_of_range(
                "throttle_rate",
                "0".to_owned(),
                "at least 1 request per second",
            ));
        }
        if self.throttle_burst == 0 {
            return Err(out_of_range(
                "throttle_burst",
                "0".to_owned(),
                "at least 1 request",
            ));
        }
        if self.reserved_concurrency == Some(0) {
            return Err(out_of_range(
                "reserved_concurrency",
                "0".to_owned(),
                "at least 1 (0 would throttle every invocation); omit it to reserve none",
            ));
        }
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 100
            && self.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_name {
            return Err(out_of_range(
                "name",
                format!("{:?}", self.name),
                "a stack name is 1 to 100 letters, digits and `-`, starting with a letter",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<StackSettings, String> {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        StackSettings::from_section(Some(&value)).map_err(|e| match e {
            SettingsError::Parse(inner) => inner.to_string(),
            other => other.to_string(),
        })
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
            "stack setting `memory_mb` is 64; Lambda allows 128 to 10240",
        );
        refused("timeout_seconds: 60\n", "API Gateway waits at most 29 s");
        refused("name: 1abc\n", "stack setting `name` is \"1abc\"");
        refused("arch: mips\n", "unknown variant `mips`");
        refused("memroy_mb: 256\n", "unknown field `memroy_mb`");
        refused("throttle_rate: 0\n", "stack setting `throttle_rate` is 0");
        refused("throttle_burst: 0\n", "stack setting `throttle_burst` is 0");
        refused(
            "reserved_concurrency: 0\n",
            "stack setting `reserved_concurrency` is 0",
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
}
