//! `diff`, `deploy` and `bootstrap`: the artifact built and uploaded, the
//! change set planned from the template, shown, checked (a pipeline build
//! may not change the pipeline, nor deploy a superseded commit) and executed.
//!
//! The function learns only the indexes DynamoDB can serve
//! (`crate::serving_indexes`): when one is still being built (added by this
//! deploy, or by an earlier one), the first change set leaves it out of
//! `API_RESOURCES`; `deploy` then waits for it to be ACTIVE and plans,
//! checks and executes a second change set that gives it to the function.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::context::Context;
use super::{CommandError, Finished, confirm, event_printer};
use crate::artifacts::{self, LambdaZip};
use crate::bootstrap::{self, TokenSource};
use crate::cli::{DeployOptions, OutputFormat};
use crate::cloudformation::{ChangeSetPlan, DeployOutcome, PlanRequest, StackState, Stacks};
use crate::index_changes::{self, IndexChangeError};
use crate::pipeline_build::{self, Freshness, PipelineBuildError, Refused};
use crate::serving_indexes::{self, Serving};
use crate::template::{self, ServingIndexes};

/// The Lambda zip: the given one, or a fresh cargo-lambda build.
async fn lambda_zip(context: &Context, given: Option<&Path>) -> Result<LambdaZip, CommandError> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => {
            eprintln!(
                "building the Lambda ({}) with cargo-lambda…",
                context.settings.arch
            );
            artifacts::build_lambda_zip(Path::new("."), context.settings.arch).await?
        }
    };
    Ok(LambdaZip::open(&path, context.settings.arch).await?)
}

/// The ARN of the pipeline's GitHub token secret, when the declaration has
/// a pipeline: the template's project names it as its source credential.
async fn github_token_arn(context: &Context) -> Result<Option<String>, CommandError> {
    match &context.settings.pipeline {
        Some(pipeline) => Ok(Some(
            bootstrap::github_token_arn(&context.secretsmanager(), &pipeline.github_token_secret)
                .await?,
        )),
        None => Ok(None),
    }
}

/// The change set request for this declaration, settings and artifact,
/// where the function learns the `serving` indexes.
async fn plan_request(
    context: &Context,
    bucket: &str,
    zip: &LambdaZip,
    options: Option<&DeployOptions>,
    serving: &ServingIndexes,
) -> Result<PlanRequest, CommandError> {
    let body = template::build_serving(&context.app, &context.settings, serving)?.to_json();
    let token_arn = github_token_arn(context).await?;
    let pipeline = if token_arn.is_some() { "true" } else { "false" };
    let mut request = PlanRequest::new(context.stack(), body)
        .capability(template::REQUIRED_CAPABILITY)
        .parameter(template::PARAM_ARTIFACT_BUCKET, bucket)
        .parameter(template::PARAM_ARTIFACT_KEY, zip.key())
        .parameter(template::PARAM_ENABLE_PIPELINE, pipeline)
        .parameter(
            template::PARAM_GITHUB_TOKEN_SECRET_ARN,
            token_arn.unwrap_or_default(),
        );
    if let Some(options) = options {
        request = request
            .recreate(options.recreate)
            .continue_rollback(options.continue_rollback);
    }
    Ok(request)
}

/// Refuses, before anything is built, uploaded or planned, a deploy that
/// would make more than one global secondary index change to a table (see
/// `crate::index_changes`); tells on stderr which index each table gains or
/// loses.
async fn check_index_changes(context: &Context) -> Result<(), CommandError> {
    let stack = context.stack();
    let stacks = context.stacks();
    let unreadable = |which, source| IndexChangeError::Unreadable {
        which,
        stack: stack.to_owned(),
        source,
    };
    // Without a stack, or after its creation failed (whose tables went with
    // it), every table is created with all its indexes.
    let deployed = match stacks.state(stack).await? {
        StackState::Absent | StackState::CreationFailed => None,
        _ => stacks.deployed_template(stack).await?,
    };
    let deployed: Option<serde_json::Value> = deployed
        .map(|body| serde_json::from_str(&body))
        .transpose()
        .map_err(|source| unreadable("deployed", source))?;
    let proposed = template::build(&context.app, &context.settings)?.to_json();
    let proposed: serde_json::Value =
        serde_json::from_str(&proposed).map_err(|source| unreadable("proposed", source))?;
    let changes = index_changes::check(&context.app, deployed.as_ref(), &proposed)
        .map_err(IndexChangeError::TooMany)?;
    for table in changes {
        eprintln!("index change: {table}");
        if !table.added.is_empty() || !table.redefined.is_empty() {
            // CloudFormation starts an index's creation and goes on.
            eprintln!(
                "  DynamoDB fills a new index from the table's items after the change set; \
                 the function gets it once DescribeTable shows it ACTIVE"
            );
        }
    }
    Ok(())
}

/// Which declared indexes serve now; says on stderr which do not, and why.
async fn serving_now(context: &Context) -> Result<Serving, CommandError> {
    let found =
        serving_indexes::serving(&context.dynamodb(), &context.app, &context.settings).await?;
    for pending in &found.pending {
        eprintln!(
            "{pending}: {}; the function plans without it until it is ACTIVE",
            pending.state
        );
    }
    Ok(found)
}

/// What `diff` reports: the change set, never executed.
#[derive(Debug, Serialize)]
struct DiffReport {
    plan: ChangeSetPlan,
}

impl std::fmt::Display for DiffReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.plan.is_empty() {
            write!(
                f,
                "No changes: stack `{}` is up to date.",
                self.plan.stack_name
            )
        } else {
            write!(f, "{}", self.plan)
        }
    }
}

pub(super) async fn diff(
    context: &Context,
    artifact: Option<&Path>,
) -> Result<Finished, CommandError> {
    check_index_changes(context).await?;
    let serving = serving_now(context).await?;
    let zip = lambda_zip(context, artifact).await?;
    let bucket = context.artifact_bucket().await?;
    // The change set only names the key; nothing is uploaded for a diff.
    // What deploy would execute first: the function without the indexes
    // that cannot serve yet.
    let request = plan_request(context, &bucket.name, &zip, None, &serving.indexes).await?;
    let stacks = context.stacks();
    let plan = stacks
        .settle_and_plan(&request, &mut event_printer())
        .await?;
    if !plan.is_empty() {
        stacks.discard(&plan).await?;
    }
    if !serving.pending.is_empty() {
        eprintln!(
            "deploy would then wait for {} to be ACTIVE, and execute a second change set \
             giving the function {}",
            serving_indexes::list(&serving.pending),
            if serving.pending.len() == 1 {
                "it"
            } else {
                "them"
            }
        );
    }
    context.print(&DiffReport { plan })?;
    Ok(Finished::Success)
}

/// What `deploy` reports: its change set and, when it waited for indexes
/// to be ACTIVE, the second one that gave them to the function.
#[derive(Debug, Serialize)]
struct DeployReport {
    #[serde(flatten)]
    first: PassReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    indexes: Option<PassReport>,
}

impl std::fmt::Display for DeployReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.indexes {
            // The second outcome has the same outputs: once is enough.
            Some(second) if second.outcome.is_some() => write!(
                f,
                "The indexes DynamoDB was building are ACTIVE; a second change set gave them \
                 to the function.\n{second}"
            ),
            Some(second) => write!(f, "{}\n{second}", self.first),
            None => write!(f, "{}", self.first),
        }
    }
}

/// One change set: the plan and, when it ran, the outcome.
#[derive(Debug, Serialize)]
struct PassReport {
    plan: ChangeSetPlan,
    /// `None` when there was nothing to do, the user declined, or a newer
    /// commit superseded this pipeline build.
    outcome: Option<DeployOutcome>,
    declined: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    superseded: Option<Freshness>,
}

impl PassReport {
    /// Whether the stack is now as this pass's template says: executed, or
    /// nothing to do (not declined, not superseded).
    fn went_through(&self) -> bool {
        !self.declined && self.superseded.is_none()
    }
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.outcome, &self.superseded) {
            (Some(outcome), _) => write!(f, "{outcome}"),
            (None, Some(superseded)) => write!(f, "{superseded}"),
            (None, None) if self.declined => {
                write!(f, "Not deployed: the change set was deleted.")
            }
            (None, None) => write!(
                f,
                "No changes: stack `{}` is up to date.",
                self.plan.stack_name
            ),
        }
    }
}

/// What a build of the pipeline knows before it deploys: its commit, and
/// where to read the branch tip.
struct PipelineBuild {
    commit: String,
    repository: String,
    branch: String,
    /// CodeBuild's `GITHUB_TOKEN`, from the secret; none for a public
    /// repository read without it.
    token: Option<String>,
}

impl PipelineBuild {
    fn from_environment(context: &Context) -> Result<Self, CommandError> {
        let pipeline = context.pipeline_settings()?;
        pipeline_build::check_build_host(context.settings.arch, std::env::consts::ARCH)?;
        Ok(Self {
            commit: pipeline_build::build_commit()?,
            repository: pipeline.repository.clone(),
            branch: pipeline.branch.clone(),
            token: std::env::var(template::GITHUB_TOKEN_VARIABLE)
                .ok()
                .filter(|token| !token.is_empty()),
        })
    }

    /// The pipeline's rules on a planned change set: a superseded commit
    /// stops (returned), a change to the pipeline itself is refused.
    async fn check(
        &self,
        context: &Context,
        stacks: &Stacks,
        plan: &ChangeSetPlan,
        proposed: &str,
    ) -> Result<Option<Freshness>, CommandError> {
        let freshness = pipeline_build::freshness(
            &self.repository,
            &self.branch,
            &self.commit,
            self.token.as_deref(),
        )
        .await?;
        if matches!(freshness, Freshness::Superseded { .. }) {
            return Ok(Some(freshness));
        }
        eprintln!("{freshness}");
        let deployed = match stacks.deployed_template(context.stack()).await? {
            Some(body) => serde_json::from_str(&body).map_err(|source| {
                PipelineBuildError::DeployedTemplate {
                    stack: context.stack().to_owned(),
                    source,
                }
            })?,
            None => serde_json::Value::Null,
        };
        let proposed: serde_json::Value = serde_json::from_str(proposed)
            .map_err(|e| CommandError::Output(format!("the rendered template: {e}")))?;
        let changes = pipeline_build::refusals(plan, &deployed, &proposed);
        if changes.is_empty() {
            Ok(None)
        } else {
            Err(PipelineBuildError::Refused(Refused { changes }).into())
        }
    }
}

pub(super) async fn deploy(
    context: &mut Context,
    options: &DeployOptions,
) -> Result<(), CommandError> {
    // Refuse before creating anything: a script without --yes gets no
    // half-done deploy and no dangling change set.
    if !options.yes && !std::io::stdin().is_terminal() {
        return Err(CommandError::NeedsConfirmation { action: "deploy" });
    }
    let pipeline_build = if options.from_pipeline {
        Some(PipelineBuild::from_environment(context)?)
    } else {
        None
    };
    context.polling.timeout = options.wait.timeout();
    // Before the build and the upload: a refused deploy costs nothing.
    check_index_changes(context).await?;
    // Before the plan: the first change set gives the function only what
    // DynamoDB can serve.
    let serving = serving_now(context).await?;
    let zip = lambda_zip(context, options.artifact.artifact.as_deref()).await?;
    let bucket = context.artifact_bucket().await?;
    let s3 = context.s3();
    let upload = artifacts::upload(&s3, &bucket, &zip).await?;
    eprintln!("{upload}");

    // The region's API Gateway logging role, which the stage's access logs
    // need, is no stack resource: set here where nobody has. The pipeline
    // has no IAM rights for it, and needs none: its stack already exists.
    if pipeline_build.is_none() {
        let report = bootstrap::ensure_gateway_logging_role(
            &context.apigateway(),
            &context.iam(),
            &bucket,
            bootstrap::RoleWait::default(),
        )
        .await?;
        eprintln!("{report}");
    }

    let stacks = context.stacks();
    let request =
        plan_request(context, &bucket.name, &zip, Some(options), &serving.indexes).await?;
    let first = deploy_pass(
        context,
        &stacks,
        &request,
        options.yes,
        pipeline_build.as_ref(),
    )
    .await?;
    if serving.pending.is_empty() || !first.went_through() {
        return context.print(&DeployReport {
            first,
            indexes: None,
        });
    }

    // The stack is deployed; the function plans without the indexes still
    // being built. Wait for them, then give them to the function: the
    // second change set changes its `API_RESOURCES` and nothing else.
    for pending in &serving.pending {
        eprintln!(
            "waiting for {pending} to be ACTIVE; then a second change set gives it to the \
             function"
        );
    }
    let waited = serving_indexes::wait_until_serving(
        &context.dynamodb(),
        &context.app,
        &context.settings,
        context.polling,
        &mut |line| eprintln!("{line}"),
    )
    .await;
    if let Err(error) = waited {
        // What was deployed is reported; the error says what is left.
        context.print(&DeployReport {
            first,
            indexes: None,
        })?;
        return Err(error.into());
    }
    // No recreate, no rollback to continue: the first pass settled the stack.
    let request = plan_request(context, &bucket.name, &zip, None, &ServingIndexes::all()).await?;
    let second = deploy_pass(
        context,
        &stacks,
        &request,
        options.yes,
        pipeline_build.as_ref(),
    )
    .await?;
    context.print(&DeployReport {
        first,
        indexes: Some(second),
    })
}

/// One change set of a deploy: planned, shown, checked when a pipeline
/// build deploys (freshness, its own resources), confirmed unless `yes`,
/// and executed. A change set that does not run is deleted.
async fn deploy_pass(
    context: &Context,
    stacks: &Stacks,
    request: &PlanRequest,
    yes: bool,
    pipeline_build: Option<&PipelineBuild>,
) -> Result<PassReport, CommandError> {
    let plan = stacks
        .settle_and_plan(request, &mut event_printer())
        .await?;
    if plan.is_empty() {
        return Ok(PassReport {
            plan,
            outcome: None,
            declined: false,
            superseded: None,
        });
    }
    if context.output == OutputFormat::Human {
        println!("{plan}");
    }
    if let Some(build) = pipeline_build {
        let checked = build
            .check(context, stacks, &plan, &request.template_body)
            .await;
        if !matches!(checked, Ok(None)) {
            // Stale or refused: nothing of this change set may run.
            stacks.discard(&plan).await?;
        }
        if let Some(superseded) = checked? {
            return Ok(PassReport {
                plan,
                outcome: None,
                declined: false,
                superseded: Some(superseded),
            });
        }
    }
    if !yes && !confirm("deploy", "Deploy these changes?")? {
        stacks.discard(&plan).await?;
        return Ok(PassReport {
            plan,
            outcome: None,
            declined: true,
            superseded: None,
        });
    }
    let outcome = stacks.execute(&plan, &mut event_printer()).await?;
    Ok(PassReport {
        plan,
        outcome: Some(outcome),
        declined: false,
        superseded: None,
    })
}

pub(super) async fn bootstrap(
    context: &mut Context,
    github_token_file: Option<PathBuf>,
    options: &DeployOptions,
) -> Result<Finished, CommandError> {
    if let Some(pipeline) = &context.settings.pipeline {
        let secrets = context.secretsmanager();
        let source = match github_token_file {
            Some(path) => TokenSource::File(path),
            None => TokenSource::Stdin,
        };
        let report =
            bootstrap::ensure_github_token(&secrets, &pipeline.github_token_secret, &source)
                .await?;
        eprintln!("{report}");
    }
    let bucket = context.artifact_bucket().await?;
    let s3 = context.s3();
    eprintln!("{}", bootstrap::ensure_bucket(&s3, &bucket).await?);
    deploy(context, options).await?;
    super::seed::seed(context).await
}
