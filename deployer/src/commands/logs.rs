//! `logs`: the function's log lines from CloudWatch Logs, recent, followed,
//! or one request's.

use std::time::SystemTime;

use super::context::Context;
use super::{CommandError, Finished};
use crate::cli::LogsOptions;
use crate::logs::{FunctionLogs, LogEvent, Selection};
use crate::template;

/// `logs`: the function's log group, from the stack's outputs.
pub(super) async fn logs(
    context: &Context,
    options: &LogsOptions,
) -> Result<Finished, CommandError> {
    // A missing stack says to bootstrap (CloudFormationError::StackNotFound).
    let outputs = context.stacks().outputs(context.stack()).await?;
    let group = outputs
        .get(template::OUTPUT_FUNCTION_LOG_GROUP)
        .ok_or_else(|| CommandError::MissingOutput {
            stack: context.stack().to_owned(),
            output: template::OUTPUT_FUNCTION_LOG_GROUP.to_owned(),
        })?
        .to_owned();
    let function_logs = FunctionLogs::new(context.cloudwatchlogs(), &group)
        .with_poll_interval(context.polling.interval);
    let selection = if options.errors {
        Selection::Failures
    } else {
        Selection::All
    };
    let now = SystemTime::now();
    let start = options.since.start_millis(now);
    let mut print = |event: &LogEvent| context.print_event(event, event.human());
    if options.follow {
        let interrupted = async {
            // Without a handler Ctrl-C would end the process mid-line;
            // with none installable, follow until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        function_logs
            .follow(start, selection, &mut print, interrupted)
            .await?;
        return Ok(Finished::Success);
    }
    let events = match &options.request_id {
        Some(id) => function_logs.request(id, options.since, now).await?,
        None => function_logs.recent(start, selection).await?,
    };
    if events.is_empty() {
        let what = if options.errors {
            "no failures"
        } else {
            "no lines"
        };
        eprintln!("{what} in the last {} of {group}", options.since);
    }
    for event in &events {
        if print(event).is_break() {
            break;
        }
    }
    Ok(Finished::Success)
}
