//! The commands: where the declaration, the template, the artifact, the
//! bootstrap resources, CloudFormation, seeding and the pipeline meet.
//!
//! Results go to stdout (human text, or JSON with `--output json`, both from
//! the same `Serialize + Display` values); progress — stack events, build
//! output, seed lines — goes to stderr, so stdout stays parseable.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use api::AppConfig;
use api::config::BackendKind;
use api::record::NewRecord;
use api::resource_map::ResourceMapError;
use serde::Serialize;
use thiserror::Error;

use crate::artifacts::{self, ArtifactError, LambdaZip};
use crate::bootstrap::{self, ArtifactBucket, BootstrapError, TokenSource};
use crate::cli::{
    Cli, Command, DeployOptions, LogsOptions, OutputFormat, PipelineCommand, WaitOptions,
};
use crate::cloudformation::{
    ChangeSetPlan, CloudFormationError, DeployOutcome, PlanRequest, Polling, StackEvent, Stacks,
};
use crate::declaration::{Declaration, DeclarationError};
use crate::diagnosis::FailedCalls;
use crate::logs::{FunctionLogs, LogEvent, LogsError, Selection};
use crate::pipeline::{self, FollowOptions, PhaseReport, PipelineError};
use crate::pipeline_build::{self, Freshness, PipelineBuildError, Refused};
use crate::pipeline_log::{self, BuildChoice, BuildLogError};
use crate::seed::{self, Backoff, SeedError, TableSeed, TableSeedReport};
use crate::settings::StackSettings;
use crate::template::{self, TemplateError};
use crate::verbose::VerboseInterceptor;

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

/// Everything a command needs, resolved once.
struct Context {
    app: AppConfig,
    settings: StackSettings,
    /// Each resource's seed records, read and checked with the declaration.
    seeds: BTreeMap<String, Vec<NewRecord>>,
    output: OutputFormat,
    sdk: Option<aws_config::SdkConfig>,
    /// `--verbose`: attached to every client built below.
    verbose: Option<VerboseInterceptor>,
    /// Attached to every client: the failed call a diagnosis names.
    failed_calls: FailedCalls,
    polling: Polling,
}

/// A client of SDK crate `$sdk` from the builder `$builder`, with the
/// `--verbose` interceptor when it is on. A macro because each SDK crate has
/// its own builder type, with no trait in common for `interceptor`.
macro_rules! client {
    ($context:expr, $sdk:ident, $builder:expr) => {{
        let mut builder = $builder.interceptor($context.failed_calls.clone());
        if let Some(interceptor) = &$context.verbose {
            builder = builder.interceptor(interceptor.clone());
        }
        $sdk::Client::from_conf(builder.build())
    }};
    ($context:expr, $sdk:ident) => {
        client!($context, $sdk, $sdk::config::Builder::from($context.sdk()))
    };
}

impl Context {
    fn stack(&self) -> &str {
        &self.settings.name
    }

    fn sdk(&self) -> &aws_config::SdkConfig {
        // Commands that call AWS build the context with a configuration.
        self.sdk
            .as_ref()
            .unwrap_or_else(|| unreachable!("AWS configuration not loaded"))
    }

    fn region(&self) -> Result<String, CommandError> {
        self.sdk()
            .region()
            .map(ToString::to_string)
            .ok_or(CommandError::NoRegion)
    }

    // Every AWS client a command uses comes from here, so `--verbose` sees
    // every call.

    fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        client!(self, aws_sdk_cloudformation)
    }

    fn sts(&self) -> aws_sdk_sts::Client {
        client!(self, aws_sdk_sts)
    }

    fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        client!(self, aws_sdk_secretsmanager)
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        client!(self, aws_sdk_dynamodb)
    }

    fn codebuild(&self) -> aws_sdk_codebuild::Client {
        client!(self, aws_sdk_codebuild)
    }

    fn apigateway(&self) -> aws_sdk_apigateway::Client {
        client!(self, aws_sdk_apigateway)
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        client!(self, aws_sdk_iam)
    }

    fn cloudwatchlogs(&self) -> aws_sdk_cloudwatchlogs::Client {
        client!(self, aws_sdk_cloudwatchlogs)
    }

    /// S3 as `artifacts::s3_client` configures it (path-style addressing for
    /// an emulator), plus the interceptor.
    fn s3(&self) -> aws_sdk_s3::Client {
        let configured = artifacts::s3_client(self.sdk());
        client!(self, aws_sdk_s3, configured.config().to_builder())
    }

    fn stacks(&self) -> Stacks {
        Stacks::new(self.cloudformation()).with_polling(self.polling)
    }

    /// Prints a result on stdout, as text or JSON.
    fn print<T: Serialize + std::fmt::Display>(&self, value: &T) -> Result<(), CommandError> {
        match self.output {
            OutputFormat::Human => println!("{value}"),
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(value)
                    .map_err(|e| CommandError::Output(e.to_string()))?
            ),
        }
        Ok(())
    }

    /// Prints a log event on stdout as it comes: its text (`human`, or
    /// nothing when that is `None`), or the event as one line of JSON.
    /// Breaks once stdout is gone (`deployer logs | head`).
    fn print_event(&self, event: &LogEvent, human: Option<String>) -> ControlFlow<()> {
        let line = match self.output {
            OutputFormat::Human => match human {
                Some(text) => text,
                None => return ControlFlow::Continue(()),
            },
            OutputFormat::Json => match serde_json::to_string(event) {
                Ok(json) => json,
                Err(_) => return ControlFlow::Continue(()),
            },
        };
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}

/// Runs the command `cli` names; every AWS call that fails is recorded in
/// `failed_calls`, for the error report.
pub async fn run(cli: Cli, failed_calls: &FailedCalls) -> Result<Finished, CommandError> {
    // Everything the declaration says is checked here, before any build,
    // upload or AWS call.
    let Declaration {
        app,
        settings,
        seeds,
        ..
    } = Declaration::load(&cli.global.config, cli.global.stack_name.as_deref())?;
    let needs_aws = !matches!(cli.command, Command::Render { .. });
    let sdk = if needs_aws {
        let sdk = load_aws_config(cli.global.region.clone(), cli.global.profile.clone()).await;
        // Without a region the SDK fails every call with "Missing Region";
        // say so before the first one.
        if sdk.region().is_none() {
            return Err(CommandError::NoRegion);
        }
        Some(sdk)
    } else {
        None
    };
    let mut context = Context {
        app,
        seeds,
        settings,
        output: cli.global.output,
        sdk,
        verbose: cli.global.verbose.then(VerboseInterceptor::stderr),
        failed_calls: failed_calls.clone(),
        polling: Polling::default(),
    };
    if let Some(interval) = cli.global.poll_interval_ms {
        context.polling.interval = Duration::from_millis(interval);
    }

    match cli.command {
        Command::Render { write } => render(&context, write),
        Command::Diff(artifact) => diff(&context, artifact.artifact.as_deref()).await,
        Command::Deploy(options) => {
            deploy(&mut context, &options).await?;
            Ok(Finished::Success)
        }
        Command::Bootstrap {
            github_token_file,
            deploy: options,
        } => bootstrap(&mut context, github_token_file, &options).await,
        Command::Seed => seed(&context).await,
        Command::Status => status(&context).await,
        Command::Logs(options) => logs(&context, &options).await,
        Command::Pipeline(command) => pipeline(&context, command).await,
        Command::Destroy { yes, wait } => destroy(&mut context, yes, &wait).await,
    }
}

/// The standard configuration chain, with the flags on top. An endpoint
/// override (`AWS_ENDPOINT_URL`, for an emulator) applies to every client.
async fn load_aws_config(region: Option<String>, profile: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

fn render(context: &Context, write: bool) -> Result<Finished, CommandError> {
    let yaml = template::build(&context.app, &context.settings)?.to_yaml();
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

/// The change set request for this declaration, settings and artifact.
async fn plan_request(
    context: &Context,
    bucket: &str,
    zip: &LambdaZip,
    options: Option<&DeployOptions>,
) -> Result<PlanRequest, CommandError> {
    let body = template::build(&context.app, &context.settings)?.to_json();
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

/// Prints stack events on stderr as they arrive.
fn event_printer() -> impl FnMut(&StackEvent) + Send {
    |event: &StackEvent| eprintln!("{event}")
}

async fn artifact_bucket(context: &Context) -> Result<ArtifactBucket, CommandError> {
    let sts = context.sts();
    Ok(ArtifactBucket::resolve(&sts, &context.settings, &context.region()?).await?)
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

async fn diff(context: &Context, artifact: Option<&Path>) -> Result<Finished, CommandError> {
    let zip = lambda_zip(context, artifact).await?;
    let bucket = artifact_bucket(context).await?;
    // The change set only names the key; nothing is uploaded for a diff.
    let request = plan_request(context, &bucket.name, &zip, None).await?;
    let stacks = context.stacks();
    let plan = stacks
        .settle_and_plan(&request, &mut event_printer())
        .await?;
    if !plan.is_empty() {
        stacks.discard(&plan).await?;
    }
    context.print(&DiffReport { plan })?;
    Ok(Finished::Success)
}

/// What `deploy` reports: the plan and, when it ran, the outcome.
#[derive(Debug, Serialize)]
struct DeployReport {
    plan: ChangeSetPlan,
    /// `None` when there was nothing to do, the user declined, or a newer
    /// commit superseded this pipeline build.
    outcome: Option<DeployOutcome>,
    declined: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    superseded: Option<Freshness>,
}

impl std::fmt::Display for DeployReport {
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
        let pipeline = pipeline_settings(context)?;
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

async fn deploy(context: &mut Context, options: &DeployOptions) -> Result<(), CommandError> {
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
    let zip = lambda_zip(context, options.artifact.artifact.as_deref()).await?;
    let bucket = artifact_bucket(context).await?;
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

    let request = plan_request(context, &bucket.name, &zip, Some(options)).await?;
    let stacks = context.stacks();
    let plan = stacks
        .settle_and_plan(&request, &mut event_printer())
        .await?;
    if plan.is_empty() {
        return context.print(&DeployReport {
            plan,
            outcome: None,
            declined: false,
            superseded: None,
        });
    }
    if context.output == OutputFormat::Human {
        println!("{plan}");
    }
    if let Some(build) = &pipeline_build {
        let checked = build
            .check(context, &stacks, &plan, &request.template_body)
            .await;
        if !matches!(checked, Ok(None)) {
            // Stale or refused: nothing of this change set may run.
            stacks.discard(&plan).await?;
        }
        if let Some(superseded) = checked? {
            return context.print(&DeployReport {
                plan,
                outcome: None,
                declined: false,
                superseded: Some(superseded),
            });
        }
    }
    if !options.yes && !confirm("deploy", "Deploy these changes?")? {
        stacks.discard(&plan).await?;
        return context.print(&DeployReport {
            plan,
            outcome: None,
            declined: true,
            superseded: None,
        });
    }
    let outcome = stacks.execute(&plan, &mut event_printer()).await?;
    context.print(&DeployReport {
        plan,
        outcome: Some(outcome),
        declined: false,
        superseded: None,
    })
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

async fn bootstrap(
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
    let bucket = artifact_bucket(context).await?;
    let s3 = context.s3();
    eprintln!("{}", bootstrap::ensure_bucket(&s3, &bucket).await?);
    deploy(context, options).await?;
    seed(context).await
}

/// The seeds of every `dynamodb` resource, with its table from the outputs.
async fn table_seeds(context: &Context) -> Result<Vec<TableSeed>, CommandError> {
    let stacks = context.stacks();
    if stacks.describe(context.stack(), 0).await?.is_none() {
        return Err(CommandError::NoStack {
            stack: context.stack().to_owned(),
        });
    }
    let outputs = stacks.outputs(context.stack()).await?;
    let mut seeds = Vec::new();
    for (resource, declared) in &context.app.resources {
        if declared.backend != BackendKind::Dynamodb {
            continue;
        }
        let Some(records) = context.seeds.get(resource) else {
            continue;
        };
        let key = template::table_output_key(resource);
        let table = outputs
            .get(&key)
            .ok_or_else(|| CommandError::MissingOutput {
                stack: context.stack().to_owned(),
                output: key.clone(),
            })?
            .to_owned();
        seeds.push(TableSeed {
            resource: resource.clone(),
            table,
            records: records.clone(),
        });
    }
    Ok(seeds)
}

async fn seed(context: &Context) -> Result<Finished, CommandError> {
    let seeds = table_seeds(context).await?;
    let dynamodb = context.dynamodb();
    // Progress while a table fills; the report on stdout has the final lines.
    let mut progress = |report: &TableSeedReport| {
        if report.items_written < report.items_total {
            eprintln!("{report}");
        }
    };
    let report = seed::seed_tables(&dynamodb, &seeds, &Backoff::default(), &mut progress).await?;
    context.print(&report)?;
    Ok(Finished::Success)
}

/// What `status` reports: the stack and, when it has one, its pipeline and
/// its API key.
#[derive(Debug, Serialize)]
struct StatusReport {
    stack: crate::cloudformation::StackReport,
    builds: Option<pipeline::RecentBuilds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<ApiKeyHint>,
}

/// How to read the stack's API key: its id and the command that prints the
/// value. The value itself is never fetched: a status goes into terminals,
/// CI logs and issues, and reading it needs `apigateway:GET` on the key,
/// which whoever runs the command can then use on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ApiKeyHint {
    id: String,
    read_with: String,
}

impl ApiKeyHint {
    fn new(id: &str, region: Option<&str>) -> Self {
        let region = region
            .map(|region| format!(" --region {region}"))
            .unwrap_or_default();
        Self {
            id: id.to_owned(),
            read_with: format!(
                "aws apigateway get-api-key --api-key {id} --include-value --query value \
                 --output text{region}"
            ),
        }
    }
}

impl std::fmt::Display for ApiKeyHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "API key {} (required as the x-api-key header; value not shown). Read it with:",
            self.id
        )?;
        write!(f, "  {}", self.read_with)
    }
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.stack)?;
        if let Some(api_key) = &self.api_key {
            write!(f, "\n\n{api_key}")?;
        }
        if let Some(builds) = &self.builds {
            write!(f, "\n\n{builds}")?;
        }
        Ok(())
    }
}

async fn status(context: &Context) -> Result<Finished, CommandError> {
    let stacks = context.stacks();
    let stack =
        stacks
            .describe(context.stack(), 10)
            .await?
            .ok_or_else(|| CommandError::NoStack {
                stack: context.stack().to_owned(),
            })?;
    let outputs = stacks.outputs(context.stack()).await?;
    let builds = match outputs.get(template::OUTPUT_BUILD_PROJECT) {
        Some(project) => {
            let codebuild = context.codebuild();
            Some(pipeline::recent_builds(&codebuild, project, 5).await?)
        }
        None => None,
    };
    let region = context.sdk().region().map(ToString::to_string);
    let api_key = outputs
        .get(template::OUTPUT_API_KEY_ID)
        .map(|id| ApiKeyHint::new(id, region.as_deref()));
    context.print(&StatusReport {
        stack,
        builds,
        api_key,
    })?;
    Ok(Finished::Success)
}

/// The declaration's pipeline settings, or why there are none.
fn pipeline_settings(
    context: &Context,
) -> Result<&crate::settings::PipelineSettings, CommandError> {
    context
        .settings
        .pipeline
        .as_ref()
        .ok_or_else(|| CommandError::NoPipeline {
            stack: context.stack().to_owned(),
        })
}

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

async fn pipeline(context: &Context, command: PipelineCommand) -> Result<Finished, CommandError> {
    match command {
        PipelineCommand::Run { wait } => {
            let branch = pipeline_settings(context)?.branch.clone();
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
            let secret = &pipeline_settings(context)?.github_token_secret;
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

/// `logs`: the function's log group, from the stack's outputs.
async fn logs(context: &Context, options: &LogsOptions) -> Result<Finished, CommandError> {
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

async fn destroy(
    context: &mut Context,
    yes: bool,
    wait: &WaitOptions,
) -> Result<Finished, CommandError> {
    context.polling.timeout = wait.timeout();
    let question = format!(
        "Delete stack `{}`? Its tables and the artifact bucket are kept.",
        context.stack()
    );
    if !yes && !confirm("destroy the stack", &question)? {
        eprintln!("Nothing deleted.");
        return Ok(Finished::Success);
    }
    let outcome = context
        .stacks()
        .destroy(context.stack(), &mut event_printer())
        .await?;
    context.print(&outcome)?;
    if let Ok(bucket) = artifact_bucket(context).await {
        eprintln!(
            "The artifact bucket `{}` is not part of the stack and stays; empty and delete it \
             yourself when no stack uses it.",
            bucket.name
        );
    }
    Ok(Finished::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_hint_says_how_to_read_the_key() {
        let hint = ApiKeyHint::new("abc123", Some("eu-west-1"));
        assert_eq!(
            hint.read_with,
            "aws apigateway get-api-key --api-key abc123 --include-value --query value \
             --output text --region eu-west-1"
        );
        let text = hint.to_string();
        assert!(text.starts_with("API key abc123 (required as the x-api-key header"));
        assert!(text.contains("value not shown"));
        assert!(
            !ApiKeyHint::new("abc123", None)
                .read_with
                .contains("--region")
        );
    }
}
