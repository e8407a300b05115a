//! The CodeBuild project that redeploys on every push: its recent builds,
//! a build started and followed to its end, and where a build's log is.
//!
//! CodeBuild's console shows all of this; these exist so `deployer status`
//! and `deployer pipeline run|logs` answer "did my push deploy, and if not,
//! why?" in the terminal, with the failed phase and its reason rather than a
//! status to look up.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_codebuild::primitives::DateTime;
use aws_sdk_codebuild::types::{Build, BuildPhase, BuildPhaseType, SortOrderType, StatusType};
use serde::Serialize;
use thiserror::Error;

use crate::time_text::{self, rfc3339};

/// At most this many build ids go in one BatchGetBuilds call (its limit).
pub const MAX_BUILDS: usize = 100;

/// Why the pipeline could not be asked or followed.
#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(
        "the CodeBuild project `{project}` does not exist: is the pipeline enabled in the app \
         declaration (`stack.pipeline`) and the stack deployed?"
    )]
    ProjectNotFound {
        project: String,
        #[source]
        source: Box<aws_sdk_codebuild::Error>,
    },
    #[error("the CodeBuild project `{project}` has no builds yet")]
    NoBuilds { project: String },
    #[error("CodeBuild does not know the build `{build_id}`")]
    BuildNotFound { build_id: String },
    #[error(
        "no build #{number} among the last {MAX_BUILDS} builds of `{project}`: \
         `deployer status` lists the recent ones"
    )]
    NoBuildNumbered { project: String, number: i64 },
    #[error(
        "the build `{build_id}` is still running after {}; it goes on without us: \
         `deployer status` shows how it ends, `deployer pipeline logs --build {build_id}` \
         follows it again",
        time_text::duration(Duration::from_secs(waited.as_secs()))
    )]
    Timeout { build_id: String, waited: Duration },
    #[error("CodeBuild {operation} failed")]
    CodeBuild {
        operation: &'static str,
        #[source]
        source: Box<aws_sdk_codebuild::Error>,
    },
}

/// The phase a build failed in, and CodeBuild's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedPhase {
    /// `BUILD`, `INSTALL`, …
    pub phase: String,
    /// `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`, `CLIENT_ERROR`.
    pub status: String,
    /// The phase's context: `COMMAND_EXECUTION_ERROR: Error while executing
    /// command: make lambda. Reason: exit status 2`.
    pub reason: Option<String>,
}

impl fmt::Display for FailedPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.phase, self.status)?;
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// One build, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSummary {
    pub id: String,
    pub number: Option<i64>,
    /// The commit built: the resolved SHA when CodeBuild has one, else the
    /// requested source version (`refs/heads/main`).
    pub commit: Option<String>,
    /// `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`, `IN_PROGRESS`.
    pub status: String,
    /// RFC 3339, UTC.
    pub started: Option<String>,
    /// Until the end, or until now for a build in progress.
    pub duration_seconds: Option<i64>,
    pub failed_phase: Option<FailedPhase>,
}

impl BuildSummary {
    /// How a build ended, as `pipeline run` and `pipeline logs` close:
    /// `build ID STATUS in 4m 12s`, then the phase that failed, if any.
    pub(crate) fn write_ending(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = self
            .duration_seconds
            .map(|seconds| {
                format!(
                    " in {}",
                    time_text::duration(Duration::from_secs(seconds.unsigned_abs()))
                )
            })
            .unwrap_or_default();
        write!(f, "build {} {}{duration}", self.id, self.status)?;
        if let Some(failed) = &self.failed_phase {
            write!(f, "\n  failed in {failed}")?;
        }
        Ok(())
    }

    /// `now` (seconds since the epoch) ends the duration of a running build.
    pub fn from_build(build: &Build, now: i64) -> Self {
        let start = build.start_time().map(DateTime::secs);
        let end = build.end_time().map(DateTime::secs).or_else(|| {
            // Only a running build may run until now; a finished one without
            // an end time has no known duration.
            (build.build_status() == Some(&StatusType::InProgress)).then_some(now)
        });
        Self {
            id: build.id().unwrap_or_default().to_owned(),
            number: build.build_number(),
            commit: build
                .resolved_source_version()
                .or(build.source_version())
                .map(str::to_owned),
            status: status_name(build.build_status()),
            started: build.start_time().and_then(rfc3339),
            duration_seconds: start.zip(end).map(|(start, end)| (end - start).max(0)),
            failed_phase: build.phases().iter().find_map(failed_phase),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status == StatusType::Succeeded.as_str()
    }
}

impl fmt::Display for BuildSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self
            .number
            .map_or_else(|| self.id.clone(), |number| format!("#{number}"));
        let commit = self.commit.as_deref().map_or("-", short_commit);
        let started = self.started.as_deref().unwrap_or("-");
        let duration = self.duration_seconds.map_or_else(
            || "-".to_owned(),
            |seconds| time_text::duration(Duration::from_secs(seconds.unsigned_abs())),
        );
        write!(
            f,
            "{number:<6} {:<11} {commit:<10} {started:<20} {duration}",
            self.status
        )?;
        if let Some(failed) = &self.failed_phase {
            write!(f, "\n       failed in {failed}")?;
        }
        Ok(())
    }
}

/// The last builds of a project, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentBuilds {
    pub project: String,
    pub builds: Vec<BuildSummary>,
}

impl fmt::Display for RecentBuilds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.builds.is_empty() {
            return write!(f, "CodeBuild project {}: no builds yet", self.project);
        }
        write!(f, "CodeBuild project {}, last builds:", self.project)?;
        for build in &self.builds {
            write!(f, "\n  {build}")?;
        }
        Ok(())
    }
}

/// A phase that has ended, as `pipeline run` prints it while following.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub status: String,
    pub duration_seconds: Option<i64>,
    pub reason: Option<String>,
}

impl fmt::Display for PhaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<16} {:<9}", self.phase, self.status)?;
        if let Some(seconds) = self.duration_seconds {
            write!(
                f,
                " {}",
                time_text::duration(Duration::from_secs(seconds.unsigned_abs()))
            )?;
        }
        if let Some(reason) = &self.reason {
            write!(f, "  {reason}")?;
        }
        Ok(())
    }
}

/// Where a build's log is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLocation {
    pub build_id: String,
    /// CloudWatch Logs group and stream.
    pub group: Option<String>,
    pub stream: Option<String>,
    /// The CloudWatch console link CodeBuild gives.
    pub deep_link: Option<String>,
    /// The S3 console link, when the project also logs to S3.
    pub s3_deep_link: Option<String>,
}

impl fmt::Display for LogLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "build {}", self.build_id)?;
        match (&self.group, &self.stream) {
            (Some(group), Some(stream)) => {
                write!(f, "\n  CloudWatch Logs: group {group}, stream {stream}")?;
                write!(
                    f,
                    "\n  print it with:  deployer pipeline logs --build {}",
                    self.build_id
                )?;
            }
            (Some(group), None) => write!(f, "\n  CloudWatch Logs: group {group}")?,
            _ => write!(f, "\n  no CloudWatch Logs stream (yet)")?,
        }
        if let Some(link) = &self.deep_link {
            write!(f, "\n  console:        {link}")?;
        }
        if let Some(link) = &self.s3_deep_link {
            write!(f, "\n  S3 log:         {link}")?;
        }
        Ok(())
    }
}

/// How long to follow a build, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    pub poll_interval: Duration,
    /// A build still running after this is left running; the wait ends.
    pub timeout: Duration,
}

impl Default for FollowOptions {
    /// Every 5 s, for up to an hour (CodeBuild's own default build timeout).
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60 * 60),
        }
    }
}

/// How a followed build ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildOutcome {
    pub succeeded: bool,
    pub build: BuildSummary,
    pub log: Option<LogLocation>,
}

impl fmt::Display for BuildOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.build.write_ending(f)?;
        if !self.succeeded
            && let Some(log) = &self.log
        {
            write!(f, "\n{log}")?;
        }
        Ok(())
    }
}

/// The last `count` (at most [`MAX_BUILDS`]) builds of `project`, newest first.
pub async fn recent_builds(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
    count: usize,
) -> Result<RecentBuilds, PipelineError> {
    let ids = build_ids(codebuild, project, count.min(MAX_BUILDS)).await?;
    let builds = fetch_builds(codebuild, &ids).await?;
    let now = now_secs();
    Ok(RecentBuilds {
        project: project.to_owned(),
        builds: builds
            .iter()
            .map(|build| BuildSummary::from_build(build, now))
            .collect(),
    })
}

/// The source version that builds the tip of `branch`.
///
/// StartBuild without a source version builds the repository's *default*
/// branch, not the one the webhook deploys; a full ref is unambiguous (a tag
/// may share a branch's name). CodeBuild API reference, StartBuild
/// `sourceVersion` (GitHub: "If a branch name is specified, the branch's HEAD
/// commit ID is used. If not specified, the default branch's HEAD commit ID
/// is used"), and the user guide's "Specify a GitHub repository version with
/// a reference" (`refs/heads/branchname`).
pub fn branch_source_version(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// Starts a build of the tip of `branch` in `project` and follows it to its
/// end (see [`follow`]).
pub async fn run(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
    branch: &str,
    options: &FollowOptions,
    progress: &mut dyn FnMut(&PhaseReport),
) -> Result<BuildOutcome, PipelineError> {
    let started = codebuild
        .start_build()
        .project_name(project)
        .source_version(branch_source_version(branch))
        .send()
        .await
        .map_err(|error| project_error("StartBuild", project, error.into()))?;
    let build_id = started
        .build_value()
        .and_then(Build::id)
        .ok_or_else(|| PipelineError::BuildNotFound {
            build_id: format!("(StartBuild of {project} returned no build id)"),
        })?
        .to_owned();
    follow(codebuild, &build_id, options, progress).await
}

/// Polls the build `build_id` until it ends, handing each phase to
/// `progress` once, in order, as it ends.
pub async fn follow(
    codebuild: &aws_sdk_codebuild::Client,
    build_id: &str,
    options: &FollowOptions,
    progress: &mut dyn FnMut(&PhaseReport),
) -> Result<BuildOutcome, PipelineError> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut phases_reported = 0;
    loop {
        let build = fetch_builds(codebuild, &[build_id.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| PipelineError::BuildNotFound {
                build_id: build_id.to_owned(),
            })?;
        for phase in ended_phases(&build).skip(phases_reported) {
            progress(&phase_report(phase));
            phases_reported += 1;
        }
        if is_finished(&build) {
            let summary = BuildSummary::from_build(&build, now_secs());
            return Ok(BuildOutcome {
                succeeded: summary.succeeded(),
                log: log_of(&build),
                build: summary,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PipelineError::Timeout {
                build_id: build_id.to_owned(),
                waited: options.timeout,
            });
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// The build `build_id`, as CodeBuild describes it now.
pub async fn build(
    codebuild: &aws_sdk_codebuild::Client,
    build_id: &str,
) -> Result<Build, PipelineError> {
    fetch_builds(codebuild, &[build_id.to_owned()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| PipelineError::BuildNotFound {
            build_id: build_id.to_owned(),
        })
}

/// The id of `project`'s last build.
pub async fn last_build_id(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
) -> Result<String, PipelineError> {
    build_ids(codebuild, project, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| PipelineError::NoBuilds {
            project: project.to_owned(),
        })
}

/// The id of the build of `project` numbered `number` (`#12` in `status`),
/// looked for among its last [`MAX_BUILDS`] builds.
pub async fn build_id_by_number(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
    number: i64,
) -> Result<String, PipelineError> {
    let ids = build_ids(codebuild, project, MAX_BUILDS).await?;
    fetch_builds(codebuild, &ids)
        .await?
        .iter()
        .find(|build| build.build_number() == Some(number))
        .and_then(Build::id)
        .map(str::to_owned)
        .ok_or_else(|| PipelineError::NoBuildNumbered {
            project: project.to_owned(),
            number,
        })
}

/// The ids of the last `count` builds, newest first.
async fn build_ids(
    codebuild: &aws_sdk_codebuild::Client,
    project: &str,
    count: usize,
) -> Result<Vec<String>, PipelineError> {
    let listed = codebuild
        .list_builds_for_project()
        .project_name(project)
        .sort_order(SortOrderType::Descending)
        .send()
        .await
        .map_err(|error| project_error("ListBuildsForProject", project, error.into()))?;
    Ok(listed.ids().iter().take(count).cloned().collect())
}

/// The builds `ids` names, in that order (BatchGetBuilds has its own).
async fn fetch_builds(
    codebuild: &aws_sdk_codebuild::Client,
    ids: &[String],
) -> Result<Vec<Build>, PipelineError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let output = codebuild
        .batch_get_builds()
        .set_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|error| PipelineError::CodeBuild {
            operation: "BatchGetBuilds",
            source: Box::new(error.into()),
        })?;
    let mut builds = output.builds.unwrap_or_default();
    builds.sort_by_key(|build| {
        ids.iter()
            .position(|id| Some(id.as_str()) == build.id())
            .unwrap_or(usize::MAX)
    });
    Ok(builds)
}

fn project_error(
    operation: &'static str,
    project: &str,
    error: aws_sdk_codebuild::Error,
) -> PipelineError {
    match error {
        aws_sdk_codebuild::Error::ResourceNotFoundException(_) => PipelineError::ProjectNotFound {
            project: project.to_owned(),
            source: Box::new(error),
        },
        _ => PipelineError::CodeBuild {
            operation,
            source: Box::new(error),
        },
    }
}

/// Over when CodeBuild says so, or when its status is no longer in
/// progress (some emulators leave `buildComplete` out).
pub fn is_finished(build: &Build) -> bool {
    build.build_complete()
        || build
            .build_status()
            .is_some_and(|status| *status != StatusType::InProgress)
}

/// The phases that have ended, in order, stopping at the running one.
/// `COMPLETED` is only the marker of the end: the outcome reports it.
fn ended_phases(build: &Build) -> impl Iterator<Item = &BuildPhase> {
    build
        .phases()
        .iter()
        .take_while(|phase| phase.phase_status().is_some() || phase.end_time().is_some())
        .filter(|phase| phase.phase_type() != Some(&BuildPhaseType::Completed))
}

fn phase_report(phase: &BuildPhase) -> PhaseReport {
    PhaseReport {
        phase: phase_name(phase),
        status: status_name(phase.phase_status()),
        duration_seconds: phase.duration_in_seconds(),
        reason: phase_reason(phase),
    }
}

fn failed_phase(phase: &BuildPhase) -> Option<FailedPhase> {
    let status = phase.phase_status()?;
    if *status == StatusType::Succeeded || *status == StatusType::InProgress {
        return None;
    }
    Some(FailedPhase {
        phase: phase_name(phase),
        status: status.as_str().to_owned(),
        reason: phase_reason(phase),
    })
}

/// `STATUS_CODE: message` of the phase's contexts, where CodeBuild says why.
fn phase_reason(phase: &BuildPhase) -> Option<String> {
    let reasons: Vec<String> = phase
        .contexts()
        .iter()
        .filter_map(|context| {
            let message = context.message().filter(|message| !message.is_empty());
            match (
                context.status_code().filter(|code| !code.is_empty()),
                message,
            ) {
                (Some(code), Some(message)) => Some(format!("{code}: {message}")),
                (Some(code), None) => Some(code.to_owned()),
                (None, Some(message)) => Some(message.to_owned()),
                (None, None) => None,
            }
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn phase_name(phase: &BuildPhase) -> String {
    phase
        .phase_type()
        .map_or_else(|| "UNKNOWN".to_owned(), |kind| kind.as_str().to_owned())
}

fn status_name(status: Option<&StatusType>) -> String {
    status.map_or_else(|| "UNKNOWN".to_owned(), |status| status.as_str().to_owned())
}

fn log_of(build: &Build) -> Option<LogLocation> {
    let logs = build.logs()?;
    Some(LogLocation {
        build_id: build.id().unwrap_or_default().to_owned(),
        group: logs.group_name().map(str::to_owned),
        stream: logs.stream_name().map(str::to_owned),
        deep_link: logs.deep_link().map(str::to_owned),
        s3_deep_link: logs.s3_deep_link().map(str::to_owned),
    })
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A 40-hex-digit commit as its 7-digit abbreviation; anything else as is.
fn short_commit(commit: &str) -> &str {
    if commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        &commit[..7]
    } else {
        commit
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
    use aws_sdk_codebuild::operation::list_builds_for_project::{
        ListBuildsForProjectError, ListBuildsForProjectOutput,
    };
    use aws_sdk_codebuild::operation::start_build::StartBuildOutput;
    use aws_sdk_codebuild::types::error::ResourceNotFoundException;
    use aws_sdk_codebuild::types::{LogsLocation, PhaseContext};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const SHA: &str = "3f2a1b9c0d4e5f60718293a4b5c6d7e8f9012345";

    fn phase(kind: BuildPhaseType, status: Option<StatusType>, seconds: i64) -> BuildPhase {
        BuildPhase::builder()
            .phase_type(kind)
            .set_phase_status(status)
            .start_time(DateTime::from_secs(1_700_000_000))
            .duration_in_seconds(seconds)
            .build()
    }

    fn failed_build() -> Build {
        Build::builder()
            .id("app-deploy:1111")
            .build_number(12)
            .build_status(StatusType::Failed)
            .build_complete(true)
            .source_version("refs/heads/main")
            .resolved_source_version(SHA)
            .start_time(DateTime::from_secs(1_700_000_000))
            .end_time(DateTime::from_secs(1_700_000_252))
            .phases(phase(BuildPhaseType::Submitted, Some(StatusType::Succeeded), 0))
            .phases(phase(BuildPhaseType::Install, Some(StatusType::Succeeded), 61))
            .phases(
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Build)
                    .phase_status(StatusType::Failed)
                    .duration_in_seconds(190)
                    .contexts(
                        PhaseContext::builder()
                            .status_code("COMMAND_EXECUTION_ERROR")
                            .message("Error while executing command: make lambda. Reason: exit status 2")
                            .build(),
                    )
                    .build(),
            )
            .phases(phase(BuildPhaseType::Completed, None, 0))
            .logs(
                LogsLocation::builder()
                    .group_name("/aws/codebuild/app-deploy")
                    .stream_name("1111")
                    .deep_link("https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:group=/aws/codebuild/app-deploy;stream=1111")
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_summary_names_the_commit_duration_and_failed_phase() {
        let summary = BuildSummary::from_build(&failed_build(), 0);
        assert_eq!(summary.commit.as_deref(), Some(SHA));
        assert_eq!(summary.duration_seconds, Some(252));
        assert_eq!(summary.started.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert!(!summary.succeeded());
        assert_eq!(
            summary.failed_phase,
            Some(FailedPhase {
                phase: "BUILD".to_owned(),
                status: "FAILED".to_owned(),
                reason: Some(
                    "COMMAND_EXECUTION_ERROR: Error while executing command: make lambda. \
                     Reason: exit status 2"
                        .to_owned()
                ),
            })
        );
        assert_eq!(
            summary.to_string(),
            "#12    FAILED      3f2a1b9    2023-11-14T22:13:20Z 4m 12s\n       failed in BUILD \
             FAILED: COMMAND_EXECUTION_ERROR: Error while executing command: make lambda. \
             Reason: exit status 2"
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["failed_phase"]["phase"], "BUILD");
        assert_eq!(json["commit"], SHA);
    }

    #[test]
    fn a_running_build_lasts_until_now_and_its_commit_may_be_a_ref() {
        let build = Build::builder()
            .id("p:2")
            .build_status(StatusType::InProgress)
            .source_version("refs/heads/main")
            .start_time(DateTime::from_secs(1000))
            .build();
        let summary = BuildSummary::from_build(&build, 1045);
        assert_eq!(summary.duration_seconds, Some(45));
        assert_eq!(summary.commit.as_deref(), Some("refs/heads/main"));
        assert_eq!(summary.failed_phase, None);
        assert!(
            summary.to_string().contains("IN_PROGRESS refs/heads/main"),
            "{summary}"
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(short_commit(SHA), "3f2a1b9");
        assert_eq!(short_commit("main"), "main");
    }

    #[tokio::test]
    async fn recent_builds_come_newest_first_whatever_batch_get_returns() {
        let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project)
            .match_requests(|input| {
                input.project_name() == Some("app-deploy")
                    && input.sort_order() == Some(&SortOrderType::Descending)
            })
            .then_output(|| {
                ListBuildsForProjectOutput::builder()
                    .ids("p:3")
                    .ids("p:2")
                    .ids("p:1")
                    .build()
            });
        let get = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .match_requests(|input| input.ids() == ["p:3", "p:2"])
            .then_output(|| {
                let build = |id: &str| {
                    Build::builder()
                        .id(id)
                        .build_status(StatusType::Succeeded)
                        .build()
                };
                BatchGetBuildsOutput::builder()
                    .builds(build("p:2"))
                    .builds(build("p:3"))
                    .build()
            });
        let client = mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&list, &get]);
        let recent = recent_builds(&client, "app-deploy", 2).await.unwrap();
        let ids: Vec<&str> = recent.builds.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["p:3", "p:2"]);
        assert!(
            recent
                .to_string()
                .starts_with("CodeBuild project app-deploy, last builds:")
        );
    }

    #[tokio::test]
    async fn a_missing_project_says_so() {
        let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project).then_error(|| {
            ListBuildsForProjectError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&list]);
        let error = recent_builds(&client, "nope", 5).await.unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the CodeBuild project `nope` does not exist"),
            "{error}"
        );
    }

    /// The build as three successive polls see it.
    fn poll(step: usize) -> Build {
        let mut phases = vec![phase(
            BuildPhaseType::Submitted,
            Some(StatusType::Succeeded),
            0,
        )];
        if step >= 1 {
            phases.push(phase(
                BuildPhaseType::Provisioning,
                Some(StatusType::Succeeded),
                20,
            ));
            phases.push(phase(
                BuildPhaseType::Install,
                Some(StatusType::Succeeded),
                61,
            ));
        }
        phases.push(phase(
            if step >= 1 {
                BuildPhaseType::Build
            } else {
                BuildPhaseType::Provisioning
            },
            (step >= 2).then_some(StatusType::Succeeded),
            100,
        ));
        if step >= 2 {
            phases.push(phase(BuildPhaseType::Completed, None, 0));
        }
        Build::builder()
            .id("p:9")
            .build_status(if step >= 2 {
                StatusType::Succeeded
            } else {
                StatusType::InProgress
            })
            .build_complete(step >= 2)
            .start_time(DateTime::from_secs(1000))
            .set_end_time((step >= 2).then(|| DateTime::from_secs(1181)))
            .set_phases(Some(phases))
            .build()
    }

    #[tokio::test]
    async fn run_reports_each_phase_once_as_it_ends() {
        // The configured branch, never the repository's default one.
        let start = mock!(aws_sdk_codebuild::Client::start_build)
            .match_requests(|input| {
                input.project_name() == Some("app-deploy")
                    && input.source_version() == Some("refs/heads/release")
            })
            .then_output(|| StartBuildOutput::builder().build_value(poll(0)).build());
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .sequence()
            .output(|| BatchGetBuildsOutput::builder().builds(poll(0)).build())
            .output(|| BatchGetBuildsOutput::builder().builds(poll(1)).build())
            .output(|| BatchGetBuildsOutput::builder().builds(poll(2)).build())
            .build();
        let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&start, &polls]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let lines = seen.clone();
        let options = FollowOptions {
            poll_interval: Duration::from_millis(1),
            timeout: Duration::from_secs(10),
        };
        let outcome = run(&client, "app-deploy", "release", &options, &mut |phase| {
            lines.lock().unwrap().push(phase.phase.clone());
        })
        .await
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["SUBMITTED", "PROVISIONING", "INSTALL", "BUILD"]
        );
        assert!(outcome.succeeded);
        assert_eq!(outcome.build.duration_seconds, Some(181));
        assert_eq!(outcome.to_string(), "build p:9 SUCCEEDED in 3m 01s");
        assert_eq!(start.num_calls(), 1);
    }

    #[tokio::test]
    async fn following_gives_up_at_the_timeout() {
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds)
            .then_output(|| BatchGetBuildsOutput::builder().builds(poll(0)).build());
        let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&polls]);
        let options = FollowOptions {
            poll_interval: Duration::from_millis(5),
            timeout: Duration::from_millis(30),
        };
        let error = follow(&client, "p:9", &options, &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, PipelineError::Timeout { .. }), "{error:?}");
        assert!(polls.num_calls() >= 2);
    }

    #[tokio::test]
    async fn a_failed_run_shows_where_its_log_is() {
        let polls = mock!(aws_sdk_codebuild::Client::batch_get_builds).then_output(|| {
            BatchGetBuildsOutput::builder()
                .builds(failed_build())
                .build()
        });
        let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&polls]);
        let outcome = follow(
            &client,
            "app-deploy:1111",
            &FollowOptions::default(),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert!(!outcome.succeeded);
        let printed = outcome.to_string();
        assert!(
            printed.contains("failed in BUILD FAILED: COMMAND_EXECUTION_ERROR"),
            "{printed}"
        );
        assert!(
            printed.contains("print it with:  deployer pipeline logs --build app-deploy:1111"),
            "{printed}"
        );
    }

    #[tokio::test]
    async fn a_build_is_found_last_or_by_number() {
        let list = || {
            mock!(aws_sdk_codebuild::Client::list_builds_for_project).then_output(|| {
                ListBuildsForProjectOutput::builder()
                    .ids("app-deploy:1111")
                    .ids("app-deploy:0000")
                    .build()
            })
        };
        let last = list();
        let client = mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&last]);
        assert_eq!(
            last_build_id(&client, "app-deploy").await.unwrap(),
            "app-deploy:1111"
        );

        let (listed, described) = (
            list(),
            mock!(aws_sdk_codebuild::Client::batch_get_builds)
                .match_requests(|input| input.ids() == ["app-deploy:1111", "app-deploy:0000"])
                .then_output(|| {
                    BatchGetBuildsOutput::builder()
                        .builds(failed_build())
                        .builds(
                            Build::builder()
                                .id("app-deploy:0000")
                                .build_number(11)
                                .build(),
                        )
                        .build()
                }),
        );
        let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&listed, &described]);
        assert_eq!(
            build_id_by_number(&client, "app-deploy", 11).await.unwrap(),
            "app-deploy:0000"
        );
        let error = build_id_by_number(&client, "app-deploy", 9)
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no build #9 among the last 100 builds of `app-deploy`: `deployer status` lists \
             the recent ones"
        );

        let empty = mock!(aws_sdk_codebuild::Client::list_builds_for_project)
            .then_output(|| ListBuildsForProjectOutput::builder().build());
        let client = mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&empty]);
        let error = last_build_id(&client, "app-deploy").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the CodeBuild project `app-deploy` has no builds yet"
        );
    }
}
