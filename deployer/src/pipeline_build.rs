//! A deploy run by the pipeline's own build (`deployer deploy
//! --from-pipeline`, in CodeBuild): what it may change, and whether its
//! commit is still the one to deploy.
//!
//! Two rules, both checked after the change set is created and before it is
//! executed, so a refused or stale deploy changes nothing:
//!
//! - **The pipeline never changes itself.** Its role may deploy the
//!   application's resources, not its own role, project or log group: a
//!   pushed commit must not be able to widen the pipeline's rights. A change
//!   set that touches them (a `stack:` setting they derive from changed) is
//!   refused, naming the setting, with the command that deploys it from a
//!   workstation. [`refusals`] finds them; ARCHITECTURE.md says why this is
//!   a check in the build rather than a CloudFormation service role.
//! - **An older commit never deploys over a newer one.** Builds run side by
//!   side (the project has no concurrency limit, which would make CodeBuild
//!   refuse a push's build). Before executing, a build compares its commit
//!   (`CODEBUILD_RESOLVED_SOURCE_VERSION`) with the branch's tip, read from
//!   the repository ([`branch_tip`]); a build whose commit is no longer the
//!   tip stops without deploying, since the tip's own build deploys it. So
//!   every push ends deployed, or superseded by a newer commit that is.

use std::fmt;
use std::process::Stdio;

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::cloudformation::{ChangeSetPlan, ResourceChange};
use crate::settings::Arch;
use crate::template::{
    PARAM_ARTIFACT_BUCKET, PARAM_GITHUB_BRANCH, PARAM_GITHUB_REPOSITORY,
    PARAM_GITHUB_TOKEN_SECRET_ARN, PIPELINE_OWN_RESOURCES,
};

/// CodeBuild's variable holding the commit a build checked out (CodeBuild
/// user guide, "Environment variables in build environments").
pub const RESOLVED_SOURCE_VERSION: &str = "CODEBUILD_RESOLVED_SOURCE_VERSION";

/// Why a deploy from the pipeline stops.
#[derive(Debug, Error)]
pub enum PipelineBuildError {
    #[error(
        "--from-pipeline runs in the pipeline's CodeBuild build, which sets {RESOLVED_SOURCE_VERSION}; \
         it is not set here. From a workstation, deploy without --from-pipeline"
    )]
    NotInBuild,
    #[error("{0}")]
    Refused(Refused),
    #[error(
        "cannot read the tip of branch `{branch}` of {repository}: {reason}. The build must \
         know whether its commit is still the newest before it deploys"
    )]
    BranchTip {
        repository: String,
        branch: String,
        reason: String,
    },
    #[error("the deployed template of stack `{stack}` is not valid JSON")]
    DeployedTemplate {
        stack: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The changes a deploy from the pipeline may not make, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub changes: Vec<Refusal>,
}

/// One pipeline resource the change set would change, and the settings
/// that change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub logical_id: String,
    pub action: String,
    /// The settings of `infra/app.yaml` (or other causes) behind the change.
    pub settings: Vec<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "refusing to deploy from the pipeline: this commit changes the pipeline itself, \
             which a pushed commit may not do (it could widen the pipeline's own rights):"
        )?;
        for change in &self.changes {
            writeln!(
                f,
                "  {} {}: {}",
                change.action,
                change.logical_id,
                change.settings.join("; ")
            )?;
        }
        write!(
            f,
            "Deploy this commit from a workstation with the rights to change the pipeline \
             (`deployer deploy`); the pushes after it deploy from the pipeline again. Nothing \
             was changed."
        )
    }
}

/// The refused changes of a change set: every change to the pipeline's own
/// resources. `deployed` and `proposed` are the stack's current template and
/// the new one (JSON), to tell which of the role's statements change.
pub fn refusals(plan: &ChangeSetPlan, deployed: &Value, proposed: &Value) -> Vec<Refusal> {
    plan.changes
        .iter()
        .filter(|change| PIPELINE_OWN_RESOURCES.contains(&change.logical_id.as_str()))
        .map(|change| Refusal {
            logical_id: change.logical_id.clone(),
            action: change.action.clone(),
            settings: causes(change, deployed, proposed),
        })
        .collect()
}

/// What in the declaration changes `change`, in words.
fn causes(change: &ResourceChange, deployed: &Value, proposed: &Value) -> Vec<String> {
    if change.action != "Modify" {
        return vec!["stack.pipeline (the pipeline switched on or off)".to_owned()];
    }
    let mut causes: Vec<String> = Vec::new();
    let mut add = |cause: String| {
        if !causes.contains(&cause) {
            causes.push(cause);
        }
    };
    for property in &change.properties {
        if let Some(setting) = property
            .causing_entity
            .as_deref()
            .and_then(parameter_setting)
        {
            add(setting.to_owned());
            continue;
        }
        let path = property.path.as_str();
        if change.logical_id == "PipelineRole" && path.starts_with("/Properties/Policies") {
            for sid in changed_statements(deployed, proposed) {
                add(statement_setting(&sid));
            }
        } else {
            add(property_setting(path).to_owned());
        }
    }
    if causes.is_empty() {
        causes.push("the pipeline's definition in this version of the deployer".to_owned());
    }
    causes
}

/// The setting behind a template parameter a change references.
fn parameter_setting(parameter: &str) -> Option<&'static str> {
    match parameter {
        PARAM_GITHUB_BRANCH => Some("stack.pipeline.branch"),
        PARAM_GITHUB_REPOSITORY => Some("stack.pipeline.repository"),
        PARAM_GITHUB_TOKEN_SECRET_ARN => Some("stack.pipeline.github_token_secret"),
        PARAM_ARTIFACT_BUCKET => Some("stack.artifact_bucket"),
        _ => None,
    }
}

/// The setting behind a property of the project or its log group.
fn property_setting(path: &str) -> &'static str {
    const BY_PREFIX: &[(&str, &str)] = &[
        ("/Properties/RetentionInDays", "stack.log_retention_days"),
        (
            "/Properties/Environment/EnvironmentVariables",
            "stack.pipeline.github_token_secret",
        ),
        (
            "/Properties/Environment",
            "stack.arch (the build runs on the function's CPU)",
        ),
        (
            "/Properties/Source/Auth",
            "stack.pipeline.github_token_secret",
        ),
        ("/Properties/Source", "stack.pipeline.repository"),
        ("/Properties/Triggers", "stack.pipeline.branch"),
        ("/Properties/Cache", "stack.artifact_bucket"),
    ];
    BY_PREFIX
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or(
            "the pipeline's definition in this version of the deployer",
            |(_, setting)| setting,
        )
}

/// What each statement of the pipeline role follows, by its `Sid` (see
/// `pipeline_statements` in `template/stack/pipeline.rs`; a test keeps the two in step).
pub(crate) const STATEMENT_SETTINGS: &[(&str, &str)] = &[
    ("ThisStackAndItsChangeSets", "stack.name"),
    ("ArtifactsAndBuildCache", "stack.artifact_bucket"),
    ("ArtifactBucket", "stack.artifact_bucket"),
    ("ApiFunction", "stack.name"),
    ("ApiFunctionRole", "stack.name"),
    ("PassApiFunctionRoleToLambda", "stack.name"),
    ("ThisApi", "stack.name"),
    (
        "Tables",
        "the tables of the dynamodb resources (one added, removed, or its `table:` renamed)",
    ),
    (
        "TableIndexes",
        "the tables of the dynamodb resources (one added, removed, or its `table:` renamed)",
    ),
    ("AppLogGroups", "stack.name"),
    ("FindLogGroups", "stack.name"),
    ("WriteOwnBuildLogs", "stack.name"),
    ("GitHubTokenSecret", "stack.pipeline.github_token_secret"),
    ("ThisApiKeyAndUsagePlan", "stack.api_key"),
];

fn statement_setting(sid: &str) -> String {
    let setting = STATEMENT_SETTINGS
        .iter()
        .find(|(known, _)| *known == sid)
        .map_or(
            "the deployer's rules for the pipeline's rights",
            |(_, setting)| setting,
        );
    format!("the pipeline's rights ({sid}): {setting}")
}

/// The `Sid`s of the pipeline role's statements that differ between the two
/// templates (added, removed or changed), in the proposed order.
fn changed_statements(deployed: &Value, proposed: &Value) -> Vec<String> {
    let statements = |template: &Value| -> Vec<(String, Value)> {
        template["Resources"]["PipelineRole"]["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|policy| {
                policy["PolicyDocument"]["Statement"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|statement| {
                let sid = statement["Sid"].as_str().unwrap_or("(no Sid)").to_owned();
                (sid, statement)
            })
            .collect()
    };
    let (before, after) = (statements(deployed), statements(proposed));
    let mut changed: Vec<String> = Vec::new();
    for (sid, statement) in &after {
        if !before
            .iter()
            .any(|(old, value)| old == sid && value == statement)
        {
            changed.push(sid.clone());
        }
    }
    for (sid, _) in &before {
        if !after.iter().any(|(new, _)| new == sid) && !changed.contains(sid) {
            changed.push(sid.clone());
        }
    }
    changed
}

/// The pipeline builds on the function's CPU (its image follows
/// `stack.arch`), so a declaration whose `arch` is not this machine's changed
/// `stack.arch`, which changes the project itself: refused before a build
/// that could not work anyway (the other CPU's Rust target is not there).
pub fn check_build_host(arch: Arch, host: &str) -> Result<(), PipelineBuildError> {
    let host_arch = match host {
        "x86_64" => Some(Arch::X86_64),
        "aarch64" => Some(Arch::Arm64),
        _ => None,
    };
    if host_arch == Some(arch) {
        return Ok(());
    }
    Err(PipelineBuildError::Refused(Refused {
        changes: vec![Refusal {
            logical_id: "PipelineProject".to_owned(),
            action: "Modify".to_owned(),
            settings: vec![format!(
                "stack.arch is {arch}, but this build runs on {host}: the project's image \
                 follows stack.arch"
            )],
        }],
    }))
}

/// The commit this build checked out, from CodeBuild's environment.
pub fn build_commit() -> Result<String, PipelineBuildError> {
    std::env::var(RESOLVED_SOURCE_VERSION)
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .map(|commit| commit.trim().to_owned())
        .ok_or(PipelineBuildError::NotInBuild)
}

/// Whether this build's commit is still the one to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "freshness", rename_all = "snake_case")]
pub enum Freshness {
    /// The commit is the branch's tip.
    Tip { commit: String },
    /// A newer commit is on the branch; its own build deploys it.
    Superseded {
        commit: String,
        tip: String,
        branch: String,
    },
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Freshness::Tip { commit } => write!(f, "commit {} is the branch tip", short(commit)),
            Freshness::Superseded {
                commit,
                tip,
                branch,
            } => write!(
                f,
                "Not deployed: commit {} is no longer the tip of `{branch}` (now {}); the \
                 build of {} deploys it, so an older commit never deploys over a newer one.",
                short(commit),
                short(tip),
                short(tip)
            ),
        }
    }
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// Compares `commit` with the tip of `branch` in `repository`.
pub async fn freshness(
    repository: &str,
    branch: &str,
    commit: &str,
    token: Option<&str>,
) -> Result<Freshness, PipelineBuildError> {
    let tip = branch_tip(repository, branch, token).await?;
    Ok(if tip.eq_ignore_ascii_case(commit) {
        Freshness::Tip {
            commit: commit.to_owned(),
        }
    } else {
        Freshness::Superseded {
            commit: commit.to_owned(),
            tip,
            branch: branch.to_owned(),
        }
    })
}

/// The commit `refs/heads/<branch>` points at in `repository`, read with
/// `git ls-remote` (one request, no clone). With `token`, git sends it as
/// GitHub's HTTPS basic credentials through its environment (never on the
/// command line, where the process list shows it). git's own configuration
/// applies, `url.<base>.insteadOf` included.
pub async fn branch_tip(
    repository: &str,
    branch: &str,
    token: Option<&str>,
) -> Result<String, PipelineBuildError> {
    let failed = |reason: String| PipelineBuildError::BranchTip {
        repository: repository.to_owned(),
        branch: branch.to_owned(),
        reason,
    };
    let reference = format!("refs/heads/{branch}");
    let mut command = tokio::process::Command::new("git");
    command
        .args(["ls-remote", "--", repository, &reference])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(token) = token {
        // Appended to whatever GIT_CONFIG_* entries the environment has.
        let index = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|count| count.parse::<usize>().ok())
            .unwrap_or(0);
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        command
            .env("GIT_CONFIG_COUNT", (index + 1).to_string())
            .env(
                format!("GIT_CONFIG_KEY_{index}"),
                "http.https://github.com/.extraHeader",
            )
            .env(
                format!("GIT_CONFIG_VALUE_{index}"),
                format!("Authorization: Basic {credentials}"),
            );
    }
    let output = command
        .output()
        .await
        .map_err(|error| failed(format!("cannot run git ({error})")))?;
    if !output.status.success() {
        // git's message names the remote and the reason; it never holds the
        // header, which is not part of any URL.
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!(
            "git ls-remote failed ({}): {}",
            output.status,
            stderr.trim()
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let (commit, name) = line.split_once('\t')?;
            (name == reference).then(|| commit.to_owned())
        })
        .ok_or_else(|| failed("the branch does not exist there".to_owned()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use serde_json::json;

    use super::*;
    use crate::cloudformation::{ChangeSetKind, PropertyChange};

    fn plan(changes: Vec<ResourceChange>) -> ChangeSetPlan {
        ChangeSetPlan {
            stack_name: "shop".to_owned(),
            stack_id: None,
            change_set_name: "cs".to_owned(),
            change_set_id: None,
            kind: ChangeSetKind::Update,
            recreated_from: None,
            changes,
        }
    }

    fn modify(logical_id: &str, kind: &str, paths: &[(&str, Option<&str>)]) -> ResourceChange {
        ResourceChange {
            action: "Modify".to_owned(),
            logical_id: logical_id.to_owned(),
            physical_id: None,
            resource_type: kind.to_owned(),
            replacement: Some("False".to_owned()),
            policy_action: None,
            properties: paths
                .iter()
                .map(|(path, causing)| PropertyChange {
                    path: (*path).to_owned(),
                    change_type: Some("Modify".to_owned()),
                    before: None,
                    after: None,
                    requires_recreation: Some("Never".to_owned()),
                    change_source: Some(
                        if causing.is_some() {
                            "ParameterReference"
                        } else {
                            "DirectModification"
                        }
                        .to_owned(),
                    ),
                    causing_entity: causing.map(str::to_owned),
                    evaluation: Some("Static".to_owned()),
                })
                .collect(),
        }
    }

    fn role(statements: Value) -> Value {
        json!({"Resources": {"PipelineRole": {"Properties": {"Policies": [
            {"PolicyDocument": {"Statement": statements}}
        ]}}}})
    }

    #[test]
    fn application_changes_pass_and_pipeline_changes_are_refused_naming_the_setting() {
        let none = json!({});
        // A code push: only the function changes.
        let code = plan(vec![modify(
            "ApiFunction",
            "AWS::Lambda::Function",
            &[("/Properties/Code/S3Key", Some("ArtifactKey"))],
        )]);
        assert!(refusals(&code, &none, &none).is_empty());

        // log_retention_days: the app's groups may change, the pipeline's not.
        let retention = plan(vec![
            modify(
                "ApiFunctionLogGroup",
                "AWS::Logs::LogGroup",
                &[("/Properties/RetentionInDays", None)],
            ),
            modify(
                "PipelineLogGroup",
                "AWS::Logs::LogGroup",
                &[("/Properties/RetentionInDays", None)],
            ),
        ]);
        let refused = refusals(&retention, &none, &none);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].logical_id, "PipelineLogGroup");
        assert_eq!(refused[0].settings, ["stack.log_retention_days"]);

        // The branch, through its parameter.
        let branch = plan(vec![modify(
            "PipelineProject",
            "AWS::CodeBuild::Project",
            &[("/Properties/Triggers/FilterGroups", Some("GitHubBranch"))],
        )]);
        assert_eq!(
            refusals(&branch, &none, &none)[0].settings,
            ["stack.pipeline.branch"]
        );
        let arch = plan(vec![modify(
            "PipelineProject",
            "AWS::CodeBuild::Project",
            &[("/Properties/Environment/Image", None)],
        )]);
        assert!(refusals(&arch, &none, &none)[0].settings[0].starts_with("stack.arch"));
    }

    /// The role's policy is one property: which statements differ says which
    /// setting changed it.
    #[test]
    fn a_changed_role_names_the_statements_and_their_settings() {
        let deployed = role(json!([
            {"Sid": "ThisApi", "Action": ["apigateway:GET"]},
            {"Sid": "Tables", "Resource": ["t1"]}
        ]));
        let proposed = role(json!([
            {"Sid": "ThisApi", "Action": ["apigateway:GET"]},
            {"Sid": "Tables", "Resource": ["t1", "t2"]},
            {"Sid": "ThisApiKeyAndUsagePlan", "Action": ["apigateway:GET"]}
        ]));
        let change = plan(vec![modify(
            "PipelineRole",
            "AWS::IAM::Role",
            &[("/Properties/Policies", None)],
        )]);
        let refused = refusals(&change, &deployed, &proposed);
        assert_eq!(
            refused[0].settings,
            [
                "the pipeline's rights (Tables): the tables of the dynamodb resources (one \
                 added, removed, or its `table:` renamed)",
                "the pipeline's rights (ThisApiKeyAndUsagePlan): stack.api_key"
            ]
        );
        let message = PipelineBuildError::Refused(Refused { changes: refused }).to_string();
        assert!(message.contains("Modify PipelineRole: "), "{message}");
        assert!(message.contains("`deployer deploy`"), "{message}");
        assert!(message.ends_with("Nothing was changed."), "{message}");
    }

    /// A statement added to the pipeline role without a line in
    /// STATEMENT_SETTINGS would be refused with no setting to name.
    #[test]
    fn every_statement_of_the_pipeline_role_names_its_setting() {
        let app: api::AppConfig = serde_yaml::from_str(
            "resources:\n  users: { backend: dynamodb }\nstack:\n  api_key: true\n  \
             pipeline: { repository: https://github.com/o/r }\n",
        )
        .unwrap();
        let settings = crate::settings::StackSettings::from_section(app.stack.as_ref()).unwrap();
        let template: Value =
            serde_json::from_str(&crate::template::build(&app, &settings).unwrap().to_json())
                .unwrap();
        let statements = template["Resources"]["PipelineRole"]["Properties"]["Policies"][0]
            ["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone();
        assert!(statements.len() > 10);
        for statement in statements {
            let sid = statement["Sid"].as_str().unwrap();
            assert!(
                STATEMENT_SETTINGS.iter().any(|(known, _)| *known == sid),
                "statement {sid} of the pipeline role has no setting in STATEMENT_SETTINGS"
            );
        }
    }

    #[test]
    fn switching_the_pipeline_is_refused_too() {
        let mut added = modify("PipelineProject", "AWS::CodeBuild::Project", &[]);
        added.action = "Remove".to_owned();
        let refused = refusals(&plan(vec![added]), &json!({}), &json!({}));
        assert_eq!(
            refused[0].settings[0],
            "stack.pipeline (the pipeline switched on or off)"
        );
    }

    #[test]
    fn the_build_runs_on_the_stacks_cpu() {
        assert!(check_build_host(Arch::X86_64, "x86_64").is_ok());
        assert!(check_build_host(Arch::Arm64, "aarch64").is_ok());
        let error = check_build_host(Arch::X86_64, "aarch64").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("stack.arch is x86_64, but this build runs on aarch64"),
            "{message}"
        );
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Against a real repository on disk: the tip is read, an older commit
    /// is superseded, a missing branch is an error, not "fresh".
    #[tokio::test]
    async fn the_branch_tip_decides_whether_a_build_deploys() {
        let dir = std::env::temp_dir().join(format!("deployer-tip-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "--quiet", "--initial-branch=main"]);
        git(&dir, &["commit", "--quiet", "--allow-empty", "-m", "one"]);
        let older = git(&dir, &["rev-parse", "HEAD"]);
        git(&dir, &["commit", "--quiet", "--allow-empty", "-m", "two"]);
        let newer = git(&dir, &["rev-parse", "HEAD"]);
        let repository = dir.to_str().unwrap();

        assert_eq!(branch_tip(repository, "main", None).await.unwrap(), newer);
        assert_eq!(
            freshness(repository, "main", &newer, Some("ghp_unused"))
                .await
                .unwrap(),
            Freshness::Tip {
                commit: newer.clone()
            }
        );
        let stale = freshness(repository, "main", &older, None).await.unwrap();
        assert!(matches!(stale, Freshness::Superseded { .. }));
        assert!(
            stale.to_string().starts_with(&format!(
                "Not deployed: commit {} is no longer the tip of `main` (now {})",
                &older[..7],
                &newer[..7]
            )),
            "{stale}"
        );
        let error = branch_tip(repository, "release", None).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the branch does not exist there"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn uuid_like() -> String {
        format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        )
    }
}
