//! The commands: where the declaration, the template, the artifact, the
//! bootstrap resources, CloudFormation, seeding and the pipeline meet. One
//! module per command (or family of commands); this one dispatches, and holds
//! what they share: the error, the exit status, confirmation, event printing.
//!
//! Results go to stdout (human text, or JSON with `--output json`, both from
//! the same `Serialize + Display` values); progress — stack events, build
//! output, seed lines — goes to stderr, so stdout stays parseable.

mod context;
mod deploy;
mod destroy;
mod logs;
mod pipeline;
mod seed;
mod status;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use api::AppConfig;
use api::resource_map::ResourceMapError;
use thiserror::Error;

use self::context::Context;
use crate::artifacts::ArtifactError;
use crate::bootstrap::BootstrapError;
use crate::cli::{AwsCommand, Cli, Command};
use crate::cloudformation::{CloudFormationError, StackEvent};
use crate::declaration::{Declaration, DeclarationError};
use crate::diagnosis::FailedCalls;
use crate::index_changes::IndexChangeError;
use crate::logs::LogsError;
use crate::pipeline::PipelineError;
use crate::pipeline_build::PipelineBuildError;
use crate::pipeline_log::BuildLogError;
use crate::seed::SeedError;
use crate::serving_indexes::ServingIndexError;
use crate::settings::StackSettings;
use crate::template::{self, TemplateError};

/// Why a command failed. Each message is written for the person at the
/// terminal; the sources carry AWS's own words.
#[derive(Debug, Error)]
pub enum CommandError {
    #[error(transparent)]
    Declaration(#[from] DeclarationError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    CloudFormation(#[from] CloudFormationError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Mapper(#[from] ResourceMapError),
    #[error(transparent)]
    PipelineBuild(#[from] PipelineBuildError),
    #[error(transparent)]
    IndexChanges(#[from] IndexChangeError),
    #[error(transparent)]
    ServingIndexes(#[from] ServingIndexError),
    #[error(transparent)]
    Logs(#[from] LogsError),
    #[error(transparent)]
    BuildLog(#[from] BuildLogError),
    #[error(
        "refusing to {action} without confirmation: there is no terminal to ask on; \
         pass --yes to {action} anyway"
    )]
    NeedsConfirmation { action: &'static str },
    #[error(
        "stack `{stack}` does not exist; run `deployer bootstrap` (or `deployer deploy`) first"
    )]
    NoStack { stack: String },
    #[error(
        "stack `{stack}` has no output `{output}`: a stack deployed by an older deployer gains \
         it with `deployer deploy`; otherwise, is it this declaration's stack?"
    )]
    MissingOutput { stack: String, output: String },
    #[error(
        "stack `{stack}` has no pipeline: add a `pipeline:` section under `stack:` in the app \
         declaration and deploy"
    )]
    NoPipeline { stack: String },
    #[error("the AWS region is not set: pass --region, set AWS_REGION, or give your profile one")]
    NoRegion,
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Output(String),
}

/// What a command ended with, for the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Success,
    /// The command ran but what it reports failed (a pipeline build).
    Failure,
}

/// Runs the command `cli` names; every AWS call that fails is recorded in
/// `failed_calls`, for the error report.
pub async fn run(cli: Cli, failed_calls: &FailedCalls) -> Result<Finished, CommandError> {
    // Everything the declaration says is checked here, before any build,
    // upload or AWS call.
    let declaration = Declaration::load(&cli.global.config, cli.global.stack_name.as_deref())?;
    let command = match cli.command {
        // The one command that calls no AWS: no configuration, no region.
        Command::Render { write } => return render(&declaration.app, &declaration.settings, write),
        Command::Aws(command) => command,
    };
    let mut context = Context::connect(declaration, &cli.global, failed_calls).await?;
    match command {
        AwsCommand::Diff(artifact) => deploy::diff(&context, artifact.artifact.as_deref()).await,
        AwsCommand::Deploy(options) => {
            deploy::deploy(&mut context, &options).await?;
            Ok(Finished::Success)
        }
        AwsCommand::Bootstrap {
            github_token_file,
            deploy: options,
        } => deploy::bootstrap(&mut context, github_token_file, &options).await,
        AwsCommand::Seed => seed::seed(&context).await,
        AwsCommand::Status => status::status(&context).await,
        AwsCommand::Logs(options) => logs::logs(&context, &options).await,
        AwsCommand::Pipeline(command) => pipeline::pipeline(&context, command).await,
        AwsCommand::Destroy { yes, wait } => destroy::destroy(&mut context, yes, &wait).await,
    }
}

/// `render`: the template, printed or written to its place in `infra/`.
fn render(
    app: &AppConfig,
    settings: &StackSettings,
    write: bool,
) -> Result<Finished, CommandError> {
    let yaml = template::build(app, settings)?.to_yaml();
    if write {
        let path = PathBuf::from(template::template_path());
        std::fs::write(&path, &yaml).map_err(|source| CommandError::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    } else {
        print!("{yaml}");
    }
    Ok(Finished::Success)
}

/// Prints stack events on stderr as they arrive.
fn event_printer() -> impl FnMut(&StackEvent) + Send {
    |event: &StackEvent| eprintln!("{event}")
}

/// Asks `question` on the terminal; without one, refuses (scripts pass --yes).
fn confirm(action: &'static str, question: &str) -> Result<bool, CommandError> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::NeedsConfirmation { action });
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::Output(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
