//! `deployer pipeline logs`: a build's log, printed from CloudWatch Logs as
//! it grows, until the build ends; how it ended is the exit status.
//!
//! A push that did not deploy is explained by its build's log, which
//! CodeBuild writes to the project's log group, one stream per build
//! (BatchGetBuilds gives both in `logs.groupName` and `logs.streamName`;
//! CodeBuild API reference, LogsLocation). The stream is created during the
//! build's PROVISIONING phase, so a queued build has none yet: the build is
//! polled for its status, and the stream read forward from where the last
//! read stopped, until the build is over and its stream read to the end.

use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

use aws_sdk_codebuild::types::Build;
use serde::Serialize;
use thiserror::Error;

use crate::logs::LogEvent;
use crate::pipeline::{self, BuildSummary, FollowOptions, PipelineError};

/// Why a build's log could not be printed.
#[derive(Debug, Error)]
pub enum BuildLogError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("CloudWatch Logs GetLogEvents on `{group}`, stream `{stream}`, failed")]
    CloudWatchLogs {
        group: String,
        stream: String,
        #[source]
        source: Box<aws_sdk_cloudwatchlogs::Error>,
    },
}

/// Which build: the last one, or one `deployer status` listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildChoice {
    Last,
    /// A build id, `project:uuid`.
    Id(String),
    /// A build number, `12` or `#12`.
    Number(i64),
}

impl FromStr for BuildChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix('#').unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits
                .parse()
                .map(Self::Number)
                .map_err(|_| format!("`{text}`: no build has that number"));
        }
        if text.trim().is_empty() {
            return Err("a build id (`project:uuid`) or number (`#12`)".to_owned());
        }
        Ok(Self::Id(text.to_owned()))
    }
}

/// How the build ended, for stderr and the exit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildLogOutcome {
    pub succeeded: bool,
    pub build: BuildSummary,
    /// Lines printed.
    pub lines: usize,
    /// Where the log should have been, when its stream was not there at the
    /// end: CodeBuild keeps a build longer than the log group keeps its log.
    pub missing_log: Option<String>,
    /// Whether the printing stopped early (stdout closed) while the build
    /// went on.
    pub stopped: bool,
}

impl fmt::Display for BuildLogOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.build.write_ending(f)?;
        if let Some(location) = &self.missing_log {
            write!(
                f,
                "\n  no log to print: {location} does not exist (any more); the log group's \
                 retention (`stack.log_retention_days`) may have expired it"
            )?;
        }
        Ok(())
    }
}

/// Reads one stream forward, from where the last read stopped.
struct StreamReader {
    group: String,
    stream: String,
    /// The last `nextForwardToken`, where the next read starts.
    token: Option<String>,
    /// Whether the stream was there at the last read.
    found: bool,
}

impl StreamReader {
    fn of(build: &Build) -> Option<Self> {
        let logs = build.logs()?;
        Some(Self {
            group: logs.group_name()?.to_owned(),
            stream: logs.stream_name()?.to_owned(),
            token: None,
            found: false,
        })
    }

    fn location(&self) -> String {
        format!("log group `{}`, stream `{}`", self.group, self.stream)
    }

    /// Hands `sink` every event after the last read, up to the end of the
    /// stream for now. GetLogEvents forward (`startFromHead`, "If you are
    /// using a previous nextForwardToken value as the nextToken in this
    /// operation, you must specify true for startFromHead") is at the end
    /// when it "returns the same token you passed in" (CloudWatch Logs API
    /// Reference, GetLogEvents). A stream not created yet is no error: the
    /// build has not reached PROVISIONING.
    async fn read(
        &mut self,
        logs: &aws_sdk_cloudwatchlogs::Client,
        sink: &mut dyn FnMut(&LogEvent) -> ControlFlow<()>,
        lines: &mut usize,
    ) -> Result<ControlFlow<()>, BuildLogError> {
        loop {
            let page = match logs
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.stream)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await
                .map_err(aws_sdk_cloudwatchlogs::Error::from)
            {
                Ok(page) => page,
                Err(aws_sdk_cloudwatchlogs::Error::ResourceNotFoundException(_)) => {
                    self.found = false;
                    return Ok(ControlFlow::Continue(()));
                }
                Err(error) => {
                    return Err(BuildLogError::CloudWatchLogs {
                        group: self.group.clone(),
                        stream: self.stream.clone(),
                        source: Box::new(error),
                    });
                }
            };
            self.found = true;
            for event in page.events() {
                *lines += 1;
                if sink(&LogEvent::from_output(event, &self.stream)).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            let next = page.next_forward_token().map(str::to_owned);
            if next.is_none() || next == self.token {
                return Ok(ControlFlow::Continue(()));
            }
            self.token = next;
        }
    }
}

/// Prints (through `sink`) the log of the build `build_id` and follows it
/// until the build ends, polling every `options.poll_interval`; a build
/// still running after `options.timeout` is left running.
pub async fn follow(
    codebuild: &aws_sdk_codebuild::Client,
    logs: &aws_sdk_cloudwatchlogs::Client,
    build_id: &str,
    options: &FollowOptions,
    sink: &mut dyn FnMut(&LogEvent) -> ControlFlow<()>,
) -> Result<BuildLogOutcome, BuildLogError> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut reader: Option<StreamReader> = None;
    let mut lines = 0;
    let mut followed = false;
    loop {
        let build = pipeline::build(codebuild, build_id).await?;
        let finished = pipeline::is_finished(&build);
        if reader.is_none() {
            reader = StreamReader::of(&build);
        }
        let mut stopped = false;
        if let Some(reader) = reader.as_mut() {
            stopped = reader.read(logs, sink, &mut lines).await?.is_break();
            // The last lines may reach CloudWatch Logs after CodeBuild says
            // the build is over: one more read, a poll later.
            if finished && followed && !stopped {
                tokio::time::sleep(options.poll_interval).await;
                stopped = reader.read(logs, sink, &mut lines).await?.is_break();
            }
        }
        if finished || stopped {
            let summary = BuildSummary::from_build(&build, pipeline::now_secs());
            let missing_log = match &reader {
                Some(reader) if !reader.found && finished => Some(reader.location()),
                Some(_) => None,
                None if finished => Some("the build's CloudWatch Logs stream".to_owned()),
                None => None,
            };
            return Ok(BuildLogOutcome {
                succeeded: summary.succeeded(),
                build: summary,
                lines,
                missing_log,
                stopped: stopped && !finished,
            });
        }
        followed = true;
        if tokio::time::Instant::now() >= deadline {
            return Err(PipelineError::Timeout {
                build_id: build_id.to_owned(),
                waited: options.timeout,
            }
            .into());
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_cloudwatchlogs::operation::get_log_events::{
        GetLogEventsError, GetLogEventsOutput,
    };
    use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
    use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
    use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
    use aws_sdk_codebuild::types::{BuildPhase, BuildPhaseType, LogsLocation, StatusType};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const BUILD: &str = "shop-deploy:0f1e";
    const GROUP: &str = "/aws/codebuild/shop-deploy";
    const STREAM: &str = "0f1e";

    fn build(status: StatusType, with_logs: bool) -> Build {
        let finished = status != StatusType::InProgress;
        let mut build = Build::builder()
            .id(BUILD)
            .build_number(12)
            .build_status(status.clone())
            .build_complete(finished)
            .start_time(aws_sdk_codebuild::primitives::DateTime::from_secs(1_000))
            .set_end_time(
                finished.then(|| aws_sdk_codebuild::primitives::DateTime::from_secs(1_181)),
            );
        if with_logs {
            build = build.logs(
                LogsLocation::builder()
                    .group_name(GROUP)
                    .stream_name(STREAM)
                    .build(),
            );
        }
        if status == StatusType::Failed {
            build = build.phases(
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Build)
                    .phase_status(StatusType::Failed)
                    .build(),
            );
        }
        build.build()
    }

    fn builds(build: Build) -> BatchGetBuildsOutput {
        BatchGetBuildsOutput::builder().builds(build).build()
    }

    fn events(lines: &[&str], token: &str) -> GetLogEventsOutput {
        let mut output = GetLogEventsOutput::builder()
            .next_forward_token(token)
            .next_backward_token("b/0");
        for (index, line) in lines.iter().enumerate() {
            output = output.events(
                OutputLogEvent::builder()
                    .timestamp(1_000_000 + i64::try_from(index).unwrap())
                    .message(*line)
                    .build(),
            );
        }
        output.build()
    }

    /// GetLogEvents answering `token_in` (forward, from the head) with
    /// `lines` and `token_out`.
    fn read(
        token_in: Option<&'static str>,
        lines: &'static [&'static str],
        token_out: &'static str,
    ) -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
            .match_requests(move |input| {
                input.log_group_name() == Some(GROUP)
                    && input.log_stream_name() == Some(STREAM)
                    && input.start_from_head() == Some(true)
                    && input.next_token() == token_in
            })
            .then_output(move || events(lines, token_out))
    }

    fn options() -> FollowOptions {
        FollowOptions {
            poll_interval: Duration::from_millis(1),
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn a_running_build_is_printed_as_it_grows_until_it_ends() {
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .match_requests(|input| input.ids() == [BUILD])
            .sequence()
            // Queued: no stream yet.
            .output(|| builds(build(StatusType::InProgress, false)))
            // Provisioning: named, not created yet.
            .output(|| builds(build(StatusType::InProgress, true)))
            .output(|| builds(build(StatusType::InProgress, true)))
            .output(|| builds(build(StatusType::Succeeded, true)))
            .build();
        let codebuild = mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&polls]);
        let not_yet = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_error(|| {
            GetLogEventsError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let logs = mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::Sequential,
            [
                &not_yet,
                &read(None, &["[Container] Entering phase INSTALL\n"], "f/1"),
                &read(Some("f/1"), &["make lambda\n", "Finished\n"], "f/3"),
                &read(Some("f/3"), &[], "f/3"),
                // Over: the last lines, read until the token comes back.
                &read(
                    Some("f/3"),
                    &["Phase complete: BUILD State: SUCCEEDED\n"],
                    "f/4"
                ),
                &read(Some("f/4"), &[], "f/4"),
                // …and once more a poll later.
                &read(Some("f/4"), &[], "f/4"),
            ]
        );
        let mut printed = Vec::new();
        let outcome = follow(&codebuild, &logs, BUILD, &options(), &mut |event| {
            assert_eq!(event.log_stream, STREAM);
            printed.push(event.message.clone());
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        assert_eq!(
            printed,
            [
                "[Container] Entering phase INSTALL\n",
                "make lambda\n",
                "Finished\n",
                "Phase complete: BUILD State: SUCCEEDED\n",
            ]
        );
        assert!(outcome.succeeded);
        assert_eq!(outcome.lines, 4);
        assert_eq!(outcome.missing_log, None);
        assert_eq!(
            outcome.to_string(),
            "build shop-deploy:0f1e SUCCEEDED in 3m 01s"
        );
        assert_eq!(polls.num_calls(), 4);
    }

    #[tokio::test]
    async fn a_failed_build_is_read_once_and_fails() {
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .then_output(|| builds(build(StatusType::Failed, true)));
        let codebuild = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&polls]);
        let logs = mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::Sequential,
            [
                &read(None, &["make: *** [lambda] Error 2\n"], "f/1"),
                &read(Some("f/1"), &[], "f/1"),
            ]
        );
        let mut printed = 0;
        let outcome = follow(&codebuild, &logs, BUILD, &options(), &mut |_| {
            printed += 1;
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        assert!(!outcome.succeeded);
        assert_eq!(printed, 1);
        assert_eq!(polls.num_calls(), 1);
        assert_eq!(
            outcome.to_string(),
            "build shop-deploy:0f1e FAILED in 3m 01s\n  failed in BUILD FAILED"
        );
    }

    #[tokio::test]
    async fn a_build_whose_log_expired_says_so() {
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .then_output(|| builds(build(StatusType::Succeeded, true)));
        let codebuild = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&polls]);
        let gone = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_error(|| {
            GetLogEventsError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, [&gone]);
        let outcome = follow(&codebuild, &logs, BUILD, &options(), &mut |_| {
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        assert!(outcome.succeeded, "the build's status, whatever its log");
        assert!(
            outcome.to_string().contains(
                "no log to print: log group `/aws/codebuild/shop-deploy`, stream `0f1e` does \
                 not exist (any more)"
            ),
            "{outcome}"
        );
    }

    #[tokio::test]
    async fn a_build_still_running_at_the_timeout_is_left_running() {
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .then_output(|| builds(build(StatusType::InProgress, false)));
        let codebuild = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&polls]);
        let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, []);
        let options = FollowOptions {
            poll_interval: Duration::from_millis(5),
            timeout: Duration::from_millis(30),
        };
        let error = follow(&codebuild, &logs, BUILD, &options, &mut |_| {
            ControlFlow::Continue(())
        })
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`deployer pipeline logs --build shop-deploy:0f1e` follows it again"),
            "{error}"
        );
    }

    #[test]
    fn a_build_is_chosen_by_id_or_number() {
        assert_eq!("12".parse(), Ok(BuildChoice::Number(12)));
        assert_eq!("#12".parse(), Ok(BuildChoice::Number(12)));
        assert_eq!(
            "shop-deploy:0f1e".parse(),
            Ok(BuildChoice::Id("shop-deploy:0f1e".to_owned()))
        );
        assert!("".parse::<BuildChoice>().is_err());
    }
}
