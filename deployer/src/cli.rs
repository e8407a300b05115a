//! The command-line surface of `deployer`, in clap derive form.
//!
//! Help texts are written for someone deploying for the first time; global
//! flags have environment fallbacks so CodeBuild and a shell agree.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logs::Since;
use crate::pipeline_log::BuildChoice;

/// Deploys the CRUD API to AWS — API Gateway, Lambda, DynamoDB and a CodeBuild
/// pipeline — from one app declaration (infra/app.yaml), through CloudFormation
/// change sets.
///
/// First time: `deployer bootstrap --github-token-file token.txt`. After that,
/// every push deploys through CodeBuild, or run `deployer deploy` yourself.
/// AWS credentials and region come from the usual places (AWS_PROFILE,
/// AWS_REGION, ~/.aws/config, SSO); AWS_ENDPOINT_URL points every call at an
/// emulator.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// The app declaration: resources, backends, seeds and the `stack:` settings.
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_CONFIG",
        default_value = "infra/app.yaml"
    )]
    pub config: PathBuf,
    /// Stack name; overrides `stack.name` of the declaration.
    #[arg(long, global = true, env = "STACK_NAME")]
    pub stack_name: Option<String>,
    /// AWS region; overrides AWS_REGION and the profile's region.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named AWS profile from ~/.aws/config; overrides AWS_PROFILE.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// `human` for people, `json` for scripts: one document, or for `logs`
    /// and `pipeline logs` one JSON object per log event and line.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Print each AWS call on stderr as it completes: service, operation,
    /// HTTP status, duration. Never a request's or response's contents.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// How often to poll CloudFormation, and CloudWatch Logs and CodeBuild
    /// when following logs, in milliseconds (default 2000; an emulator
    /// answers at once, so its tests use less).
    #[arg(long, global = true, env = "DEPLOYER_POLL_INTERVAL_MS", hide = true)]
    pub poll_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CloudFormation template (or write it with --write); no AWS call.
    Render {
        /// Write infra/template.yaml instead of printing.
        #[arg(long)]
        write: bool,
    },
    #[command(flatten)]
    Aws(AwsCommand),
}

/// The commands that call AWS, so need a region and credentials.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Show what `deploy` would change, property by property, and change nothing.
    Diff(ArtifactOptions),
    /// First deployment: stores the GitHub token secret (when the pipeline is
    /// on), creates the hardened artifact bucket, deploys, then seeds the
    /// tables. Safe to run again.
    Bootstrap {
        /// File holding the GitHub personal access token for CodeBuild; without
        /// it the token is read from standard input (pipe it, never type it).
        #[arg(long)]
        github_token_file: Option<PathBuf>,
        #[command(flatten)]
        deploy: DeployOptions,
    },
    /// Build and upload the Lambda, create a change set, show it, execute it,
    /// follow the stack events and print the outputs.
    Deploy(DeployOptions),
    /// Write every resource's seed file into its deployed table (idempotent).
    Seed,
    /// Stack status, outputs, recent events and the last pipeline builds.
    #[command(alias = "outputs")]
    Status,
    /// The deployed API's log lines (CloudWatch Logs): one line per request
    /// with its time, status, method, path, latency and request id, and
    /// Lambda's lines around each invocation.
    ///
    /// A client that got `internal error (request id …)` or an
    /// `x-request-id` header: `deployer logs --request-id …` shows that
    /// request's lines and every line of the invocation that served it.
    Logs(LogsOptions),
    /// The CodeBuild pipeline.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Delete the stack. Tables and the artifact bucket are kept, with their data.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        wait: WaitOptions,
    },
}

/// Where the Lambda zip comes from.
#[derive(Debug, Clone, Args)]
pub struct ArtifactOptions {
    /// A Lambda zip to deploy (with `bootstrap` at its root) instead of building
    /// one with cargo-lambda.
    #[arg(long)]
    pub artifact: Option<PathBuf>,
}

/// Which log lines `logs` prints.
#[derive(Debug, Clone, Args)]
pub struct LogsOptions {
    /// How far back to look: 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "10m", value_name = "AGE")]
    pub since: Since,
    /// Keep printing new lines as they arrive, until Ctrl-C.
    #[arg(long, short = 'f', conflicts_with = "request_id")]
    pub follow: bool,
    /// Only this request's lines, and those of the Lambda invocation that
    /// served it: the `x-request-id` a client got back (a Lambda
    /// `RequestId` works too).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Only failures: requests answered 500 or more, `ERROR` lines, and
    /// anything the function printed that is not a log line of the API's
    /// nor Lambda's START/END/REPORT (a panic, a timeout).
    #[arg(long, conflicts_with = "request_id")]
    pub errors: bool,
}

/// How long to wait for CloudFormation.
#[derive(Debug, Clone, Args)]
pub struct WaitOptions {
    /// Give up waiting after this many seconds (what is waited for goes on:
    /// the stack operation, the build).
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    pub timeout: u64,
}

impl WaitOptions {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// Options of a deployment.
#[derive(Debug, Clone, Args)]
pub struct DeployOptions {
    #[command(flatten)]
    pub artifact: ArtifactOptions,
    /// Execute the change set without asking (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// If the stack's first creation failed (ROLLBACK_COMPLETE), delete it and
    /// create it again.
    #[arg(long)]
    pub recreate: bool,
    /// If an update's rollback failed (UPDATE_ROLLBACK_FAILED), continue the
    /// rollback first.
    #[arg(long)]
    pub continue_rollback: bool,
    /// Deploy as the pipeline's CodeBuild build (buildspec.yaml): refuse any
    /// change to the pipeline's own resources, and deploy only if this
    /// build's commit (CODEBUILD_RESOLVED_SOURCE_VERSION) is still the tip
    /// of the branch; otherwise stop, successfully, without deploying.
    #[arg(long)]
    pub from_pipeline: bool,
    #[command(flatten)]
    pub wait: WaitOptions,
}

/// The pipeline's commands.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Start a build of the configured branch and follow it to its result.
    Run {
        #[command(flatten)]
        wait: WaitOptions,
    },
    /// Print a build's log, the last build's unless --build says which, and
    /// follow it until the build ends; exits non-zero unless it succeeded.
    Logs {
        /// The build: its id (`project:uuid`) or its number (`#12`, as
        /// `deployer status` lists them).
        #[arg(long, value_name = "BUILD", default_value = "last", value_parser = parse_build_choice)]
        build: BuildChoice,
        #[command(flatten)]
        wait: WaitOptions,
    },
    /// Store a new GitHub token for the pipeline (rotation): the secret
    /// `stack.pipeline.github_token_secret` gets it, in the form CodeBuild
    /// reads, and the next build uses it. No deploy is needed.
    Token {
        /// File holding the new token; without it the token is read from
        /// standard input (pipe it, never type it).
        #[arg(long)]
        github_token_file: Option<PathBuf>,
    },
}

/// `last`, or what [`BuildChoice`] reads.
fn parse_build_choice(text: &str) -> Result<BuildChoice, String> {
    if text == "last" {
        Ok(BuildChoice::Last)
    } else {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn outputs_is_status() {
        let cli = Cli::try_parse_from(["deployer", "outputs", "--output", "json"]).unwrap();
        assert!(matches!(cli.command, Command::Aws(AwsCommand::Status)));
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert!(!cli.global.verbose);
    }

    #[test]
    fn logs_look_ten_minutes_back_unless_told() {
        let cli = Cli::try_parse_from(["deployer", "logs"]).unwrap();
        let Command::Aws(AwsCommand::Logs(options)) = cli.command else {
            panic!("not logs");
        };
        assert_eq!(options.since.to_string(), "10m");
        assert!(!options.follow && !options.errors);
        assert_eq!(options.request_id, None);

        let cli =
            Cli::try_parse_from(["deployer", "logs", "--since", "2h", "--errors", "-f"]).unwrap();
        let Command::Aws(AwsCommand::Logs(options)) = cli.command else {
            panic!("not logs");
        };
        assert_eq!(options.since.to_string(), "2h");
        assert!(options.follow && options.errors);

        for wrong in [
            &["deployer", "logs", "--since", "10"][..],
            &["deployer", "logs", "--request-id", "x", "--follow"],
            &["deployer", "logs", "--request-id", "x", "--errors"],
        ] {
            assert!(Cli::try_parse_from(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn pipeline_logs_take_the_last_build_unless_told() {
        let build = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Aws(AwsCommand::Pipeline(PipelineCommand::Logs { build, .. })) => build,
            other => panic!("{other:?}"),
        };
        assert_eq!(build(&["deployer", "pipeline", "logs"]), BuildChoice::Last);
        assert_eq!(
            build(&["deployer", "pipeline", "logs", "--build", "#7"]),
            BuildChoice::Number(7)
        );
        assert_eq!(
            build(&["deployer", "pipeline", "logs", "--build", "p:1"]),
            BuildChoice::Id("p:1".to_owned())
        );
    }

    #[test]
    fn verbose_is_global() {
        for args in [
            ["deployer", "--verbose", "status"],
            ["deployer", "status", "--verbose"],
            ["deployer", "-v", "status"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(cli.global.verbose, "{args:?}");
        }
    }
}
