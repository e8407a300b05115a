//! `pipeline run|logs|token`: a CodeBuild build started and followed, a
//! build's log, the GitHub token's rotation.

use super::context::Context;
use super::{CommandError, Finished};
use crate::bootstrap::{self, TokenSource};
use crate::cli::{PipelineCommand, WaitOptions};
use crate::logs::LogEvent;
use crate::pipeline::{self, FollowOptions, PhaseReport};
use crate::pipeline_log::{self, BuildChoice};
use crate::template;

/// The deployed CodeBuild project's name, from the stack's outputs.
async fn build_project(context: &Context) -> Result<String, CommandError> {
    let outputs = context.stacks().outputs(context.stack()).await?;
    outputs
        .get(template::OUTPUT_BUILD_PROJECT)
        .map(str::to_owned)
        .ok_or_else(|| CommandError::NoPipeline {
            stack: context.stack().to_owned(),
        })
}

pub(super) async fn pipeline(
    context: &Context,
    command: PipelineCommand,
) -> Result<Finished, CommandError> {
    match command {
        PipelineCommand::Run { wait } => {
            let branch = context.pipeline_settings()?.branch.clone();
            let project = build_project(context).await?;
            let options = FollowOptions {
                timeout: wait.timeout(),
                ..FollowOptions::default()
            };
            let mut progress = |phase: &PhaseReport| eprintln!("{phase}");
            let outcome = pipeline::run(
                &context.codebuild(),
                &project,
                &branch,
                &options,
                &mut progress,
            )
            .await?;
            context.print(&outcome)?;
            Ok(if outcome.succeeded {
                Finished::Success
            } else {
                Finished::Failure
            })
        }
        PipelineCommand::Logs { build, wait } => pipeline_logs(context, build, &wait).await,
        // Needs no stack: the secret is the declaration's, and the next
        // build reads it.
        PipelineCommand::Token { github_token_file } => {
            let secret = &context.pipeline_settings()?.github_token_secret;
            let source = match github_token_file {
                Some(path) => TokenSource::File(path),
                None => TokenSource::Stdin,
            };
            let report =
                bootstrap::store_github_token(&context.secretsmanager(), secret, &source).await?;
            context.print(&report)?;
            Ok(Finished::Success)
        }
    }
}

/// `pipeline logs`: the chosen build's log on stdout, followed to the
/// build's end; its outcome on stderr, and as the exit status.
async fn pipeline_logs(
    context: &Context,
    choice: BuildChoice,
    wait: &WaitOptions,
) -> Result<Finished, CommandError> {
    let codebuild = context.codebuild();
    let build_id = match choice {
        // A build id names its project: no stack needed.
        BuildChoice::Id(id) => id,
        BuildChoice::Last => {
            pipeline::last_build_id(&codebuild, &build_project(context).await?).await?
        }
        BuildChoice::Number(number) => {
            let project = build_project(context).await?;
            pipeline::build_id_by_number(&codebuild, &project, number).await?
        }
    };
    eprintln!("build {build_id}:");
    let options = FollowOptions {
        poll_interval: context.polling.interval,
        timeout: wait.timeout(),
    };
    let mut print = |event: &LogEvent| {
        let text = event.message.trim_end_matches(['\n', '\r']).to_owned();
        context.print_event(event, Some(text))
    };
    let outcome = pipeline_log::follow(
        &codebuild,
        &context.cloudwatchlogs(),
        &build_id,
        &options,
        &mut print,
    )
    .await?;
    eprintln!("{outcome}");
    Ok(if outcome.succeeded {
        Finished::Success
    } else {
        Finished::Failure
    })
}
