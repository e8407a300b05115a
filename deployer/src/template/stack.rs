//! Our stack: the template derived from an app declaration and its settings.
//!
//! Everything here is a function of `infra/app.yaml` (resources → tables,
//! their permissions and the Lambda's `API_RESOURCES`) and [`StackSettings`]
//! (names, sizes, retention, throttling, pipeline). Only what changes from one
//! deploy to the next, or from one environment to another, is a template
//! parameter: the artifact's bucket and key, and whether the pipeline exists.
//!
//! Physical names derive from the stack name (`<name>-api`, `<name>-api-role`,
//! `/aws/lambda/<name>-api`, ...), so logs, roles and functions are found by
//! name, and the CodeBuild role can be scoped to exactly them. Named IAM roles
//! make the deploy need `CAPABILITY_NAMED_IAM`.

use std::collections::BTreeMap;

use api::AppConfig;
use api::config::{API_KEY_ENV, BackendKind, Operation, RESOURCES_ENV, ResourceConfig};
use sha2::{Digest, Sha256};

use super::iam::{Policy, PolicyDocument, Statement};
use super::intrinsic::{Expr, regional_arn, sub_literal};
use super::model::{
    Accepted, Assertion, DeletionPolicy, Document, Duplicate, Output, Parameter, Resource, Rule,
};
use super::resources::{
    AccessLogSetting, ApiKey, ApiResource, CloudWatchLogsConfig, Code, Deployment,
    EndpointConfiguration, Environment, Function, Integration, LogGroup, LoggingConfig, Method,
    MethodSetting, Permission, Project, ProjectArtifacts, ProjectCache, ProjectEnvironment,
    ProjectLogsConfig, ProjectSource, ProjectTriggers, ProjectVariable, RestApi, Role, SourceAuth,
    SseSpecification, Stage, Table, ThrottleSettings, TracingConfig, UsagePlan, UsagePlanKey,
    UsagePlanStage, WebhookFilter,
};
use super::{
    CONDITION_PIPELINE, GITHUB_TOKEN_VARIABLE, OUTPUT_API_KEY_ID, OUTPUT_API_URL,
    OUTPUT_BUILD_PROJECT, OUTPUT_FUNCTION_LOG_GROUP, OUTPUT_FUNCTION_NAME, PARAM_ARTIFACT_BUCKET,
    PARAM_ARTIFACT_KEY, PARAM_ENABLE_PIPELINE, PARAM_GITHUB_BRANCH, PARAM_GITHUB_REPOSITORY,
    PARAM_GITHUB_TOKEN_SECRET_ARN, STAGE_NAME, TemplateError, table_logical_id, table_output_key,
};
use crate::settings::{Arch, StackSettings};

// Logical ids of the fixed resources. None ends in `Table`, the suffix of the
// per-resource tables, so the two can never collide.
const FUNCTION_ROLE: &str = "ApiFunctionRole";
const FUNCTION_LOG_GROUP: &str = "ApiFunctionLogGroup";
const FUNCTION: &str = "ApiFunction";
const API: &str = "Api";
const PROXY_RESOURCE: &str = "ApiProxyResource";
const ROOT_METHOD: &str = "ApiRootMethod";
const PROXY_METHOD: &str = "ApiProxyMethod";
const DEPLOYMENT_PREFIX: &str = "ApiDeployment";
const ACCESS_LOG_GROUP: &str = "ApiAccessLogGroup";
const STAGE: &str = "ApiStage";
const INVOKE_PERMISSION: &str = "ApiInvokePermission";
const API_KEY: &str = "ApiKey";
const USAGE_PLAN: &str = "ApiUsagePlan";
const USAGE_PLAN_KEY: &str = "ApiUsagePlanKey";
pub(super) const PIPELINE_LOG_GROUP: &str = "PipelineLogGroup";
pub(super) const PIPELINE_ROLE: &str = "PipelineRole";
pub(super) const PROJECT: &str = "PipelineProject";

const RULE_PIPELINE: &str = "PipelineNeedsGitHub";

/// IAM role and Lambda function names are at most 64 characters.
const NAME_LIMIT: usize = 64;

// Checkov findings the stack accepts, each with the reason it does not apply;
// the reasons are written into the template's metadata. Anything checkov
// finds beyond these fails `make lint`. (Fixed instead of accepted: access
// logs, log retention, PITR; X-Ray, reserved concurrency and the API key when
// their settings are on.) The ones tied to a setting are accepted only while
// that setting is off, so checkov stays clean either way and a suppression
// never outlives its reason.
const NO_VPC: Accepted = Accepted {
    id: "CKV_AWS_117",
    reason: "The function reaches only DynamoDB, CloudWatch Logs and X-Ray through their public \
             AWS endpoints; a VPC would add NAT or endpoint costs and cold-start latency and \
             protect nothing the IAM role does not already confine.",
};
const NO_DLQ: Accepted = Accepted {
    id: "CKV_AWS_116",
    reason: "API Gateway invokes the function synchronously and returns its errors to the \
             client; Lambda only uses a dead-letter queue for asynchronous invocations.",
};
const NO_RESERVED_CONCURRENCY: Accepted = Accepted {
    id: "CKV_AWS_115",
    reason: "Load is capped by the prod stage's throttling (stack.throttle_rate/burst); \
             reserved concurrency would also take from the account's unreserved pool, which \
             new accounts cannot spare (the deploy fails below 10 unreserved). Set \
             stack.reserved_concurrency to reserve some.",
};
const NO_STAGE_TRACING: Accepted = Accepted {
    id: "CKV_AWS_73",
    reason: "X-Ray tracing is switched off in the declaration (stack.tracing: false); \
             requests are still in the stage's access log, with their request id.",
};
const NO_ENV_CMK: Accepted = Accepted {
    id: "CKV_AWS_173",
    reason: "The environment holds no secret (the resource mapping, log level and a runtime \
             flag); Lambda encrypts it at rest with its AWS managed key.",
};
const TABLE_AWS_OWNED_KEY: Accepted = Accepted {
    id: "CKV_AWS_119",
    reason: "The table is encrypted at rest with DynamoDB's default AWS owned key, at no \
             charge. A KMS key (stack.kms: true, the AWS managed aws/dynamodb key) is billed \
             per request; a customer managed key adds a key policy too, without a requirement \
             for either.",
};
const TABLE_AWS_MANAGED_KEY: Accepted = Accepted {
    id: "CKV_AWS_119",
    reason: "The table is encrypted with the AWS managed KMS key aws/dynamodb (stack.kms: \
             true); a customer managed key would add a key policy to maintain without a \
             requirement for it.",
};
const LOGS_SERVICE_KEY: Accepted = Accepted {
    id: "CKV_AWS_158",
    reason: "CloudWatch Logs encrypts every log group at rest; these logs (requests, the \
             function's lines, builds) hold no secret that would justify a customer managed \
             key and its key policy.",
};
const PUBLIC_API: Accepted = Accepted {
    id: "CKV_AWS_59",
    reason: "The CRUD API is public by design for now (as the original service); abuse is \
             bounded by stage throttling. Set stack.api_key to require an API key, and add an \
             authorizer before storing private data.",
};
const NO_API_CACHE: Accepted = Accepted {
    id: "CKV_AWS_120",
    reason: "Responses are live CRUD records; a stage cache would serve stale records after a \
             write, and it is billed per hour.",
};

/// Builds the template document of `app` deployed with `settings`.
pub(super) fn document(
    app: &AppConfig,
    settings: &StackSettings,
) -> Result<Document, TemplateError> {
    let names = Names::new(&settings.name)?;
    let tables = tables(app, settings)?;
    let mut doc = Document::new(format!(
        "{}: a CRUD API (API Gateway REST -> Lambda -> DynamoDB) and the CodeBuild project that \
         redeploys it. Rendered by `deployer render` from infra/app.yaml; edit that, not this.",
        settings.name
    ));
    parameters(&mut doc, settings)?;
    for table in &tables {
        add(&mut doc, &table.logical_id, table_resource(table, settings))?;
    }
    add_function(&mut doc, settings, &names, app, &tables)?;
    add_api(&mut doc, settings, &names)?;
    add_pipeline(&mut doc, settings, &names, &tables)?;
    outputs(&mut doc, settings, &tables)?;
    Ok(doc)
}

/// The physical names of the stack's resources.
struct Names {
    function: String,
    function_role: String,
    function_log_group: String,
    api: String,
    access_log_group: String,
    project: String,
    project_role: String,
    project_log_group: String,
}

impl Names {
    fn new(stack: &str) -> Result<Self, TemplateError> {
        let function = format!("{stack}-api");
        let project = format!("{stack}-deploy");
        let names = Self {
            function_role: format!("{function}-role"),
            function_log_group: format!("/aws/lambda/{function}"),
            api: function.clone(),
            access_log_group: format!("/aws/apigateway/{function}-access"),
            project_role: format!("{project}-role"),
            project_log_group: format!("/aws/codebuild/{project}"),
            function,
            project,
        };
        for (what, name) in [
            ("Lambda function name", &names.function),
            ("IAM role name", &names.function_role),
            ("IAM role name", &names.project_role),
        ] {
            if name.len() > NAME_LIMIT {
                return Err(TemplateError::NameTooLong {
                    what,
                    name: name.clone(),
                    limit: NAME_LIMIT,
                });
            }
        }
        Ok(names)
    }
}

/// A `dynamodb` resource of the declaration and the table that stores it.
struct TableSpec {
    resource: String,
    logical_id: String,
    table_name: String,
    operations: Vec<Operation>,
}

fn tables(app: &AppConfig, settings: &StackSettings) -> Result<Vec<TableSpec>, TemplateError> {
    let mut tables: Vec<TableSpec> = Vec::new();
    for (resource, declared) in &app.resources {
        if declared.backend != BackendKind::Dynamodb {
            continue;
        }
        let spec = TableSpec {
            resource: resource.clone(),
            logical_id: table_logical_id(resource),
            table_name: declared.table_name(resource, &settings.name),
            operations: declared.operations.clone(),
        };
        for other in &tables {
            if other.logical_id == spec.logical_id {
                return Err(TemplateError::DuplicateLogicalId {
                    logical_id: spec.logical_id,
                    first: other.resource.clone(),
                    second: spec.resource,
                });
            }
            if other.table_name == spec.table_name {
                return Err(TemplateError::DuplicateTableName {
                    table: spec.table_name,
                    first: other.resource.clone(),
                    second: spec.resource,
                });
            }
        }
        tables.push(spec);
    }
    Ok(tables)
}

fn add(doc: &mut Document, logical_id: &str, resource: Resource) -> Result<(), TemplateError> {
    doc.resources
        .insert(logical_id, resource)
        .map_err(duplicate_entry)
}

// --- Parameters, rules, conditions -------------------------------------------

fn parameters(doc: &mut Document, settings: &StackSettings) -> Result<(), TemplateError> {
    let mut artifact_bucket = Parameter::string(
        "The S3 bucket holding the Lambda zip (`deployer bootstrap` creates it).",
    )
    .allowed_pattern(
        "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens",
    );
    // The settings were checked when the declaration was loaded
    // (`declaration.rs`); the template only states them.
    if let Some(bucket) = &settings.artifact_bucket {
        artifact_bucket = artifact_bucket.default_value(bucket);
    }
    // The pipeline's GitHub values are parameters, not baked in, so the
    // template has one shape whatever the declaration says: the deployer
    // always passes the same parameters, cfn-lint and checkov always see the
    // pipeline, and a stack can switch it off. Their defaults come from
    // `stack.pipeline` in
    // infra/app.yaml, and CloudFormation uses a parameter's default whenever a
    // deploy does not pass it, so the declaration stays the source of truth.
    let pipeline = settings.pipeline.as_ref();
    let default = |value: Option<&String>| value.cloned().unwrap_or_default();
    let entries = [
        (PARAM_ARTIFACT_BUCKET, artifact_bucket),
        (
            PARAM_ARTIFACT_KEY,
            Parameter::string(
                "The S3 key of the Lambda zip, named by its SHA-256: a new build is a new key, \
                 an unchanged build no change.",
            )
            .allowed_pattern("^\\S+$", "a non-empty S3 key without spaces"),
        ),
        (
            PARAM_ENABLE_PIPELINE,
            Parameter::string(
                "Whether to create the CodeBuild project that redeploys on every push.",
            )
            .allowed_values(&["true", "false"])
            .default_value(if pipeline.is_some() { "true" } else { "false" }),
        ),
        (
            PARAM_GITHUB_REPOSITORY,
            Parameter::string(
                "The GitHub repository CodeBuild builds (stack.pipeline.repository).",
            )
            .default_value(default(pipeline.map(|p| &p.repository)))
            .allowed_pattern(
                "^(https://github\\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?$",
                "https://github.com/OWNER/REPO",
            ),
        ),
        (
            PARAM_GITHUB_BRANCH,
            Parameter::string("The branch whose pushes deploy (stack.pipeline.branch).")
                .default_value(default(pipeline.map(|p| &p.branch)))
                .allowed_pattern("^[A-Za-z0-9._/-]*$", "a branch name"),
        ),
        (
            PARAM_GITHUB_TOKEN_SECRET_ARN,
            Parameter::string(
                "The ARN of the Secrets Manager secret holding the GitHub token, never the \
                 token itself, or empty without a pipeline: `deployer deploy` looks up \
                 stack.pipeline.github_token_secret and always passes it.",
            )
            .allowed_pattern(
                "^(arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+)?$",
                "the ARN of a Secrets Manager secret",
            ),
        ),
    ];
    for (name, parameter) in entries {
        doc.parameters
            .insert(name, parameter)
            .map_err(duplicate_entry)?;
    }

    // Switching the pipeline on without its GitHub values is refused before
    // anything changes, rather than failing halfway through the deploy.
    let is_set =
        |parameter: &str| Expr::negate(Expr::equals(Expr::reference(parameter), Expr::literal("")));
    doc.rules
        .insert(
            RULE_PIPELINE,
            Rule {
                rule_condition: Some(pipeline_switch()),
                assertions: [
                    (PARAM_GITHUB_REPOSITORY, "stack.pipeline.repository"),
                    (PARAM_GITHUB_BRANCH, "stack.pipeline.branch"),
                    (
                        PARAM_GITHUB_TOKEN_SECRET_ARN,
                        "stack.pipeline.github_token_secret",
                    ),
                ]
                .into_iter()
                .map(|(parameter, setting)| Assertion {
                    assert: is_set(parameter),
                    assert_description: format!(
                        "EnablePipeline=true needs {parameter}: set {setting} in infra/app.yaml"
                    ),
                })
                .collect(),
            },
        )
        .map_err(duplicate_entry)?;
    doc.conditions
        .insert(CONDITION_PIPELINE, pipeline_switch())
        .map_err(duplicate_entry)
}

fn pipeline_switch() -> Expr {
    Expr::equals(
        Expr::reference(PARAM_ENABLE_PIPELINE),
        Expr::literal("true"),
    )
}

fn duplicate_entry(Duplicate(logical_id): Duplicate) -> TemplateError {
    TemplateError::Conflict(logical_id)
}

// --- Tables ---------------------------------------------------------------------

fn table_resource(table: &TableSpec, settings: &StackSettings) -> Resource {
    let (encryption, accepted) = if settings.kms {
        (
            SseSpecification::aws_managed_kms_key(),
            TABLE_AWS_MANAGED_KEY,
        )
    } else {
        (SseSpecification::aws_owned_key(), TABLE_AWS_OWNED_KEY)
    };
    Resource::new(Table::keyed_by_id(
        Expr::literal(table.table_name.clone()),
        encryption,
    ))
    // The records outlive the stack: a delete or a replacement keeps the
    // table. RetainExceptOnCreate (not Retain) on delete, so a first deploy
    // that fails and rolls back removes the empty table it just made, and
    // `deployer deploy --recreate` does not then fail on "already exists".
    .policies(DeletionPolicy::RetainExceptOnCreate, DeletionPolicy::Retain)
    .accepting(&[accepted])
}

/// The item actions the API calls for `operations`, and nothing else: the
/// union of what `api` declares per operation (`item_actions`, whose test
/// runs every variant of each operation against a faked table), in a
/// stable order.
fn item_actions(operations: &[Operation]) -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = Vec::new();
    for operation in Operation::all() {
        if !operations.contains(&operation) {
            continue;
        }
        for action in api::backend::dynamodb::item_actions(operation) {
            if !actions.contains(action) {
                actions.push(action);
            }
        }
    }
    actions
}

// --- Function -----------------------------------------------------------------

fn add_function(
    doc: &mut Document,
    settings: &StackSettings,
    names: &Names,
    app: &AppConfig,
    tables: &[TableSpec],
) -> Result<(), TemplateError> {
    let mut statements = vec![
        Statement::allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![Expr::get_att(FUNCTION_LOG_GROUP, "Arn")],
        )
        .sid("WriteOwnLogs"),
    ];
    for table in tables {
        let actions = item_actions(&table.operations);
        if actions.is_empty() {
            continue;
        }
        statements.push(
            Statement::allow(&actions, vec![Expr::get_att(&table.logical_id, "Arn")])
                .sid(format!("{}Items", table.logical_id)),
        );
    }
    // X-Ray accepts trace data only on `*`: it has no resource-level
    // permissions. The two actions write traces and nothing else, and are
    // granted only while tracing is on.
    if settings.tracing {
        statements.push(
            Statement::allow(
                &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                vec![Expr::literal("*")],
            )
            .sid("WriteTraces"),
        );
    }
    let role_description = if settings.tracing {
        "exactly the item actions it uses on its tables, its own log group, X-Ray"
    } else {
        "exactly the item actions it uses on its tables, its own log group"
    };
    add(
        doc,
        FUNCTION_ROLE,
        Resource::new(Role {
            role_name: Some(Expr::literal(names.function_role.clone())),
            description: format!("{}: {role_description}.", names.function),
            assume_role_policy_document: PolicyDocument::trust("lambda.amazonaws.com", false),
            policies: vec![Policy {
                policy_name: "api-function".to_owned(),
                policy_document: PolicyDocument::new(statements),
            }],
        }),
    )?;
    add(
        doc,
        FUNCTION_LOG_GROUP,
        log_group(&names.function_log_group, settings, None),
    )?;

    let mut variables = BTreeMap::new();
    variables.insert(RESOURCES_ENV.to_owned(), api_resources(app, tables));
    // The function never checks the key (API Gateway does), but its OpenAPI
    // document says whether callers need one.
    variables.insert(
        API_KEY_ENV.to_owned(),
        Expr::literal(settings.api_key.to_string()),
    );
    // lambda_http would otherwise put the stage in front of the path
    // (`/prod/api/...`) and no route would match.
    variables.insert(
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH".to_owned(),
        Expr::literal("true"),
    );
    variables.insert("RUST_LOG".to_owned(), Expr::literal("info"));
    let mut accepted = vec![NO_VPC, NO_DLQ];
    if settings.reserved_concurrency.is_none() {
        accepted.push(NO_RESERVED_CONCURRENCY);
    }
    accepted.push(NO_ENV_CMK);
    add(
        doc,
        FUNCTION,
        Resource::new(Function {
            function_name: Expr::literal(names.function.clone()),
            description: format!("The CRUD API of {}.", settings.name),
            runtime: "provided.al2023",
            handler: "bootstrap",
            architectures: vec![settings.arch.lambda_name()],
            memory_size: settings.memory_mb,
            timeout: settings.timeout_seconds,
            // A cap on what one API can cost or do to its tables, taken
            // from the account's pool (which must keep 10 unreserved).
            reserved_concurrent_executions: settings.reserved_concurrency,
            role: Expr::get_att(FUNCTION_ROLE, "Arn"),
            code: Code {
                s3_bucket: Expr::reference(PARAM_ARTIFACT_BUCKET),
                s3_key: Expr::reference(PARAM_ARTIFACT_KEY),
            },
            environment: Environment { variables },
            // Naming the log group makes Lambda wait for it (with its
            // retention) instead of creating one that keeps logs forever.
            logging_config: LoggingConfig {
                log_group: Expr::reference(FUNCTION_LOG_GROUP),
            },
            // Traces cost nothing below X-Ray's free tier and show where a
            // slow request spent its time (API Gateway, Lambda, DynamoDB).
            tracing_config: settings.tracing.then_some(TracingConfig { mode: "Active" }),
        })
        .accepting(&accepted),
    )
}

/// `API_RESOURCES`: the declaration's `resources:` map as the function reads
/// it, with each table's name filled in by CloudFormation. Same schema as
/// app.yaml; memory resources keep their seed (shipped in the zip), dynamodb
/// ones get `table` (seeding tables is the deployer's job, not start-up's).
fn api_resources(app: &AppConfig, tables: &[TableSpec]) -> Expr {
    let mut mapping = serde_json::Map::new();
    for (resource, declared) in &app.resources {
        mapping.insert(resource.clone(), resource_entry(declared, resource, tables));
    }
    // Only the `${TableLogicalId}` slots are Sub syntax: every literal that
    // could hold `${` (a seed path) was escaped when the entry was built.
    Expr::sub(serde_json::Value::Object(mapping).to_string())
}

fn resource_entry(
    declared: &ResourceConfig,
    resource: &str,
    tables: &[TableSpec],
) -> serde_json::Value {
    let mut entry = serde_json::Map::new();
    entry.insert("backend".to_owned(), declared.backend.to_string().into());
    match declared.backend {
        BackendKind::Memory => {
            if let Some(seed) = &declared.seed {
                entry.insert(
                    "seed".to_owned(),
                    sub_literal(&seed.to_string_lossy()).into(),
                );
            }
        }
        BackendKind::Dynamodb => {
            if let Some(table) = tables.iter().find(|t| t.resource == resource) {
                entry.insert(
                    "table".to_owned(),
                    format!("${{{}}}", table.logical_id).into(),
                );
            }
        }
    }
    if declared.operations != Operation::all() {
        let operations: Vec<serde_json::Value> = declared
            .operations
            .iter()
            .map(|operation| operation_name(*operation).into())
            .collect();
        entry.insert("operations".to_owned(), operations.into());
    }
    if !declared.protected.is_empty() {
        let names: Vec<serde_json::Value> = declared
            .protected
            .iter()
            .map(|name| sub_literal(name).into())
            .collect();
        entry.insert("protected".to_owned(), names.into());
    }
    serde_json::Value::Object(entry)
}

/// The name app.yaml uses for an operation.
fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::List => "list",
        Operation::Get => "get",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
    }
}

fn log_group(name: &str, settings: &StackSettings, condition: Option<&str>) -> Resource {
    Resource::new(LogGroup {
        log_group_name: Expr::literal(name),
        retention_in_days: settings.log_retention_days,
    })
    .when(condition)
    // Said explicitly, as for every stateful resource: logs go with the
    // stack. They expire after the retention anyway, and a kept group would
    // make the next stack of this name fail to create it ("already exists").
    .policies(DeletionPolicy::Delete, DeletionPolicy::Delete)
    .accepting(&[LOGS_SERVICE_KEY])
}

// --- API Gateway ----------------------------------------------------------------

fn add_api(
    doc: &mut Document,
    settings: &StackSettings,
    names: &Names,
) -> Result<(), TemplateError> {
    add(
        doc,
        API,
        Resource::new(RestApi {
            name: Expr::literal(names.api.clone()),
            description: format!(
                "The CRUD API of {}: every path goes to the function.",
                settings.name
            ),
            endpoint_configuration: EndpointConfiguration {
                types: vec!["REGIONAL"],
            },
        }),
    )?;
    let proxy_resource = ApiResource {
        rest_api_id: Expr::reference(API),
        parent_id: Expr::get_att(API, "RootResourceId"),
        path_part: "{proxy+}".to_owned(),
    };
    let method = |resource_id: Expr| Method {
        rest_api_id: Expr::reference(API),
        resource_id,
        http_method: "ANY",
        authorization_type: "NONE",
        // With a key, API Gateway answers 403 itself to a request without
        // a valid `x-api-key`: the function is never invoked (nor billed).
        api_key_required: settings.api_key,
        integration: Integration {
            kind: "AWS_PROXY",
            // Lambda is always invoked with POST, whatever the client sent.
            integration_http_method: "POST",
            uri: Expr::sub(
                "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/\
                 ${ApiFunction.Arn}/invocations",
            ),
        },
    };
    let root_method = method(Expr::get_att(API, "RootResourceId"));
    let proxy_method = method(Expr::reference(PROXY_RESOURCE));
    // A Deployment is a snapshot: CloudFormation never re-creates it when the
    // methods change, so the stage would keep serving the old ones. Naming it
    // after a hash of the routes makes a route change a new deployment.
    let routes = serde_json::to_vec(&(&proxy_resource, &root_method, &proxy_method))?;
    let deployment = format!(
        "{DEPLOYMENT_PREFIX}{}",
        &hex::encode(Sha256::digest(&routes))[..10]
    );
    add(doc, PROXY_RESOURCE, Resource::new(proxy_resource))?;
    // Without a key the methods are open (CKV_AWS_59); with one, checkov
    // sees ApiKeyRequired and the suppression would only be noise.
    let method_findings: &[Accepted] = if settings.api_key { &[] } else { &[PUBLIC_API] };
    add(
        doc,
        ROOT_METHOD,
        Resource::new(root_method).accepting(method_findings),
    )?;
    add(
        doc,
        PROXY_METHOD,
        Resource::new(proxy_method).accepting(method_findings),
    )?;
    add(
        doc,
        &deployment,
        Resource::new(Deployment {
            rest_api_id: Expr::reference(API),
            description: "The routes ANY / and ANY /{proxy+}.".to_owned(),
        })
        .depends_on(&[ROOT_METHOD, PROXY_METHOD]),
    )?;
    add(
        doc,
        ACCESS_LOG_GROUP,
        log_group(&names.access_log_group, settings, None),
    )?;
    add(
        doc,
        STAGE,
        Resource::new(Stage {
            stage_name: STAGE_NAME,
            description: "The only stage; its URL is the ApiUrl output.".to_owned(),
            rest_api_id: Expr::reference(API),
            deployment_id: Expr::reference(deployment.as_str()),
            tracing_enabled: settings.tracing,
            method_settings: vec![MethodSetting {
                resource_path: "/*",
                http_method: "*",
                throttling_rate_limit: settings.throttle_rate,
                throttling_burst_limit: settings.throttle_burst,
                // Per-method metrics are billed as custom metrics; the
                // API-level ones (count, latency, 4xx, 5xx) are free.
                metrics_enabled: false,
            }],
            access_log_setting: AccessLogSetting {
                // The group's ARN without the `:*` its Arn attribute ends in.
                destination_arn: regional_arn("logs", "log-group:${ApiAccessLogGroup}"),
                format: access_log_format(),
            },
        })
        // API Gateway refuses access logs until the region's CloudWatch role
        // is set: the deployer sets it before the change set where nobody
        // has (`bootstrap::ensure_gateway_logging_role`), not this stack.
        .accepting(if settings.tracing {
            &[NO_API_CACHE]
        } else {
            &[NO_API_CACHE, NO_STAGE_TRACING]
        }),
    )?;
    add(
        doc,
        INVOKE_PERMISSION,
        Resource::new(Permission {
            action: "lambda:InvokeFunction",
            function_name: Expr::get_att(FUNCTION, "Arn"),
            principal: "apigateway.amazonaws.com",
            // This API only, any stage, method and path.
            source_arn: regional_arn("execute-api", "${Api}/*"),
        }),
    )?;
    if settings.api_key {
        add_api_key(doc, settings, names)?;
    }
    Ok(())
}

/// The API key, and the usage plan that lets it call the `prod` stage.
///
/// A key only opens methods through a usage plan naming their stage. The
/// plan throttles with the stage's own limits, so a key holder gets no more
/// than anyone got before keys were required. The key's value is generated
/// by API Gateway: it is in no template, parameter or output, and `deployer
/// status` says how to read it (`aws apigateway get-api-key --include-value`).
fn add_api_key(
    doc: &mut Document,
    settings: &StackSettings,
    names: &Names,
) -> Result<(), TemplateError> {
    add(
        doc,
        API_KEY,
        Resource::new(ApiKey {
            name: Expr::literal(format!("{}-key", names.api)),
            description: format!(
                "The key clients send as `x-api-key` to the API of {}.",
                settings.name
            ),
            enabled: true,
        }),
    )?;
    add(
        doc,
        USAGE_PLAN,
        Resource::new(UsagePlan {
            usage_plan_name: Expr::literal(format!("{}-plan", names.api)),
            description: format!(
                "The keys that may call the {STAGE_NAME} stage of {}, throttled as the stage is.",
                names.api
            ),
            api_stages: vec![UsagePlanStage {
                api_id: Expr::reference(API),
                // `Ref` of the stage (its name), so the plan waits for it.
                stage: Expr::reference(STAGE),
            }],
            throttle: ThrottleSettings {
                rate_limit: settings.throttle_rate,
                burst_limit: settings.throttle_burst,
            },
        }),
    )?;
    add(
        doc,
        USAGE_PLAN_KEY,
        Resource::new(UsagePlanKey {
            key_id: Expr::reference(API_KEY),
            key_type: "API_KEY",
            usage_plan_id: Expr::reference(USAGE_PLAN),
        }),
    )
}

/// One JSON line per request: who, what, the outcome and where time went.
fn access_log_format() -> String {
    serde_json::json!({
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "path": "$context.path",
        "resourcePath": "$context.resourcePath",
        "protocol": "$context.protocol",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "integrationStatus": "$context.integrationStatus",
        "errorMessage": "$context.error.message"
    })
    .to_string()
}

// --- Pipeline -------------------------------------------------------------------

fn add_pipeline(
    doc: &mut Document,
    settings: &StackSettings,
    names: &Names,
    tables: &[TableSpec],
) -> Result<(), TemplateError> {
    let when = Some(CONDITION_PIPELINE);
    add(
        doc,
        PIPELINE_LOG_GROUP,
        log_group(&names.project_log_group, settings, when),
    )?;
    add(
        doc,
        PIPELINE_ROLE,
        Resource::new(Role {
            role_name: Some(Expr::literal(names.project_role.clone())),
            description: format!(
                "CodeBuild project {}: deploys stack {} and nothing else.",
                names.project, settings.name
            ),
            assume_role_policy_document: PolicyDocument::trust("codebuild.amazonaws.com", true),
            policies: vec![Policy {
                policy_name: "deploy-this-stack".to_owned(),
                policy_document: PolicyDocument::new(pipeline_statements(settings, names, tables)),
            }],
        })
        .when(when),
    )?;
    let (environment_type, image) = match settings.arch {
        // Amazon Linux 2023 images, building natively for the function's CPU.
        Arch::Arm64 => (
            "ARM_CONTAINER",
            "aws/codebuild/amazonlinux-aarch64-standard:3.0",
        ),
        Arch::X86_64 => (
            "LINUX_CONTAINER",
            "aws/codebuild/amazonlinux-x86_64-standard:5.0",
        ),
    };
    add(
        doc,
        PROJECT,
        Resource::new(Project {
            name: Expr::literal(names.project.clone()),
            description: format!(
                "Builds the Lambda zip and runs `deployer deploy` on every push to the branch \
                 (stack {}).",
                settings.name
            ),
            service_role: Expr::get_att(PIPELINE_ROLE, "Arn"),
            source: ProjectSource {
                kind: "GITHUB",
                location: Expr::reference(PARAM_GITHUB_REPOSITORY),
                build_spec: "buildspec.yaml",
                git_clone_depth: 1,
                report_build_status: true,
                // This project's own credential, read from the secret at
                // each build: not the account's one GitHub credential per
                // region (AWS::CodeBuild::SourceCredential), which other
                // projects and stacks share, which a second stack would
                // overwrite and a `destroy` delete for all, and which a
                // rotated secret never reaches (CloudFormation resolves a
                // dynamic reference only when the reference changes).
                // CodeBuild user guide, "Multiple access tokens in
                // CodeBuild": source-level credentials.
                auth: SourceAuth {
                    kind: "SECRETS_MANAGER",
                    resource: Expr::reference(PARAM_GITHUB_TOKEN_SECRET_ARN),
                },
            },
            triggers: ProjectTriggers {
                webhook: true,
                filter_groups: vec![vec![
                    WebhookFilter {
                        kind: "EVENT",
                        pattern: Expr::literal("PUSH"),
                    },
                    WebhookFilter {
                        kind: "HEAD_REF",
                        pattern: Expr::sub("^refs/heads/${GitHubBranch}$"),
                    },
                ]],
            },
            environment: ProjectEnvironment {
                kind: environment_type,
                // The smallest size: enough memory for the release build with
                // LTO, and the S3 cache keeps the registry and target/ warm.
                compute_type: "BUILD_GENERAL1_SMALL",
                image,
                privileged_mode: false,
                // The deploy compares this build's commit with the branch
                // tip before executing (a private repository needs the
                // token to list it). The secret holds CodeBuild's JSON form;
                // `:Token` is its key.
                environment_variables: vec![ProjectVariable {
                    name: GITHUB_TOKEN_VARIABLE,
                    kind: "SECRETS_MANAGER",
                    value: Expr::sub(format!("${{{PARAM_GITHUB_TOKEN_SECRET_ARN}}}:Token")),
                }],
            },
            // `deployer deploy` uploads the zip itself, under its hash.
            artifacts: ProjectArtifacts {
                kind: "NO_ARTIFACTS",
            },
            cache: ProjectCache {
                kind: "S3",
                location: Expr::sub(format!(
                    "${{ArtifactBucket}}/{}",
                    crate::bootstrap::CODEBUILD_CACHE_PREFIX
                )),
            },
            logs_config: ProjectLogsConfig {
                cloud_watch_logs: CloudWatchLogsConfig {
                    status: "ENABLED",
                    group_name: Expr::reference(PIPELINE_LOG_GROUP),
                },
            },
            timeout_in_minutes: 30,
            // No ConcurrentBuildLimit: with one, CodeBuild refuses a build
            // while another runs ("builds return an error if the number of
            // running builds reaches the concurrent build limit", CodeBuild
            // user guide, "Builds"), and a push during a build would never
            // deploy. Builds run side by side; CloudFormation runs one
            // update of the stack at a time, and a build whose commit is no
            // longer the branch tip does not deploy (`deploy --from-pipeline`).
        })
        .when(when),
    )
}

/// What the CodeBuild role may do: deploy this stack's application part.
///
/// CloudFormation acts with the caller's permissions, so the role needs the
/// actions of every resource handler a push may start (the update handlers
/// of the application's resources, a Deployment's create and delete), each
/// on this stack's resources only (named ARNs, or this API's id), and
/// nothing more: `tests/pipeline_rights.rs` checks both ways against the
/// handlers' permission lists in CloudFormation's resource provider schemas.
/// It deliberately cannot change its own role, its project or log group, nor
/// create or delete a table: a pushed commit must not be able to widen the
/// pipeline's permissions. `deploy --from-pipeline` refuses such a change
/// before executing it; it is deployed from a workstation, as the first
/// deploy is.
fn pipeline_statements(
    settings: &StackSettings,
    names: &Names,
    tables: &[TableSpec],
) -> Vec<Statement> {
    let stack = regional_arn("cloudformation", "stack/${AWS::StackName}/*");
    let function = regional_arn("lambda", &format!("function:{}", names.function));
    let function_role = Expr::sub(format!(
        "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{}",
        names.function_role
    ));
    let bucket = Expr::sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}");
    let objects = Expr::sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}/*");
    let api_gateway = |path: &str| {
        Expr::sub(format!(
            "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::{path}"
        ))
    };
    // Each table by its exact ARN, never by a `<stack>-*` prefix: stack
    // `shop`'s prefix would match stack `shop-staging`'s tables. Adding a
    // table therefore changes this policy, which the pipeline refuses to
    // deploy (see `crate::pipeline_build`): CI never creates a table.
    let table_arns: Vec<Expr> = tables
        .iter()
        .map(|table| {
            regional_arn(
                "dynamodb",
                &format!("table/{}", sub_literal(&table.table_name)),
            )
        })
        .collect();
    let app_log_groups = [&names.function_log_group, &names.access_log_group]
        .into_iter()
        .flat_map(|name| {
            [
                regional_arn("logs", &format!("log-group:{name}")),
                regional_arn("logs", &format!("log-group:{name}:*")),
            ]
        })
        .collect();

    let mut statements = vec![
        Statement::allow(
            &[
                "cloudformation:CreateChangeSet",
                "cloudformation:DescribeChangeSet",
                "cloudformation:ExecuteChangeSet",
                "cloudformation:DeleteChangeSet",
                "cloudformation:ListChangeSets",
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:DescribeStackResource",
                "cloudformation:DescribeStackResources",
                "cloudformation:ListStackResources",
                "cloudformation:GetTemplate",
                "cloudformation:GetTemplateSummary",
                "cloudformation:ContinueUpdateRollback",
            ],
            vec![stack],
        )
        .sid("ThisStackAndItsChangeSets"),
        Statement::allow(
            &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            vec![objects],
        )
        .sid("ArtifactsAndBuildCache"),
        Statement::allow(
            &["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketAcl"],
            vec![bucket],
        )
        .sid("ArtifactBucket"),
        Statement::allow(
            &[
                "lambda:GetFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionRecursionConfig",
                "lambda:GetRuntimeManagementConfig",
            ],
            vec![function],
        )
        .sid("ApiFunction"),
        Statement::allow(
            &[
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
            ],
            vec![function_role.clone()],
        )
        .sid("ApiFunctionRole"),
        Statement::allow(&["iam:PassRole"], vec![function_role])
            .sid("PassApiFunctionRoleToLambda")
            .when(
                "StringEquals",
                "iam:PassedToService",
                Expr::literal("lambda.amazonaws.com"),
            ),
        // REST API ids are generated by AWS, so the API is named by its
        // `Ref` here: once it exists, CI may change this API and no other.
        Statement::allow(
            &[
                "apigateway:GET",
                "apigateway:POST",
                "apigateway:PUT",
                "apigateway:PATCH",
                "apigateway:DELETE",
            ],
            vec![
                api_gateway("/restapis/${Api}"),
                api_gateway("/restapis/${Api}/*"),
            ],
        )
        .sid("ThisApi"),
        Statement::allow(
            &[
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                // The update handler reads the group's whole model back.
                "logs:GetDataProtectionPolicy",
                "logs:ListTagsForResource",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            app_log_groups,
        )
        .sid("AppLogGroups"),
        // CloudFormation's log group handler looks groups up with
        // DescribeLogGroups, which AWS authorises on `*` only.
        Statement::allow(&["logs:DescribeLogGroups"], vec![Expr::literal("*")])
            .sid("FindLogGroups"),
        Statement::allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![Expr::get_att(PIPELINE_LOG_GROUP, "Arn")],
        )
        .sid("WriteOwnBuildLogs"),
        // CodeBuild reads the token with the project's role, for the source
        // and for the GITHUB_TOKEN variable; the deploy looks the secret's
        // ARN up by name. This secret only, by its ARN.
        Statement::allow(
            &[
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
            ],
            vec![Expr::reference(PARAM_GITHUB_TOKEN_SECRET_ARN)],
        )
        .sid("GitHubTokenSecret"),
    ];
    if !table_arns.is_empty() {
        statements.push(
            // The update handler's rights on the existing tables. No CreateTable
            // (a new table is a change to this policy, deployed from a
            // workstation) and no DeleteTable: the tables are retained on delete
            // and on replacement, and CloudFormation deletes one only when
            // rolling back its own creation, which CI never starts.
            Statement::allow(
                &[
                    "dynamodb:DescribeTable",
                    "dynamodb:UpdateTable",
                    "dynamodb:DescribeTimeToLive",
                    "dynamodb:UpdateTimeToLive",
                    "dynamodb:DescribeContinuousBackups",
                    "dynamodb:UpdateContinuousBackups",
                    "dynamodb:DescribeContributorInsights",
                    "dynamodb:DescribeKinesisStreamingDestination",
                    "dynamodb:GetResourcePolicy",
                    "dynamodb:ListTagsOfResource",
                    "dynamodb:TagResource",
                    "dynamodb:UntagResource",
                ],
                table_arns,
            )
            .sid("Tables"),
        );
    }
    if settings.api_key {
        // Keys and usage plans are not under the API's path, and their ids
        // are generated: CI may update this stack's key and plan only (named
        // by their `Ref`), with what their update handlers list. Creating
        // them (switching stack.api_key on) changes this policy, so it is
        // deployed from a workstation.
        statements.push(
            Statement::allow(
                &[
                    "apigateway:GET",
                    "apigateway:PUT",
                    "apigateway:PATCH",
                    "apigateway:DELETE",
                ],
                vec![
                    api_gateway("/apikeys/${ApiKey}"),
                    api_gateway("/usageplans/${ApiUsagePlan}"),
                    api_gateway("/usageplans/${ApiUsagePlan}/*"),
                ],
            )
            .sid("ThisApiKeyAndUsagePlan"),
        );
    }
    statements
}

// --- Outputs --------------------------------------------------------------------

fn outputs(
    doc: &mut Document,
    settings: &StackSettings,
    tables: &[TableSpec],
) -> Result<(), TemplateError> {
    let mut entries = vec![(
        OUTPUT_API_URL.to_owned(),
        Output {
            description: "The API's base URL: GET <ApiUrl>/ping answers pong.".to_owned(),
            condition: None,
            // `${ApiStage}` is the stage name: the URL exists once it does.
            value: Expr::sub(
                "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiStage}/api",
            ),
        },
    )];
    for table in tables {
        entries.push((
            table_output_key(&table.resource),
            Output {
                description: format!("The DynamoDB table of resource `{}`.", table.resource),
                condition: None,
                value: Expr::reference(table.logical_id.as_str()),
            },
        ));
    }
    entries.push((
        OUTPUT_FUNCTION_NAME.to_owned(),
        Output {
            description: "The Lambda function serving the API.".to_owned(),
            condition: None,
            value: Expr::reference(FUNCTION),
        },
    ));
    entries.push((
        OUTPUT_FUNCTION_LOG_GROUP.to_owned(),
        Output {
            description: "The CloudWatch Logs group of the function: `deployer logs` reads it."
                .to_owned(),
            condition: None,
            // A log group's `Ref` is its name, as `LoggingConfig.LogGroup` uses it.
            value: Expr::reference(FUNCTION_LOG_GROUP),
        },
    ));
    if settings.api_key {
        entries.push((
            OUTPUT_API_KEY_ID.to_owned(),
            Output {
                description: "The id of the API key (not its value): `aws apigateway get-api-key \
                              --api-key <id> --include-value` reads the value."
                    .to_owned(),
                condition: None,
                value: Expr::reference(API_KEY),
            },
        ));
    }
    entries.push((
        OUTPUT_BUILD_PROJECT.to_owned(),
        Output {
            description: "The CodeBuild project that deploys on every push.".to_owned(),
            condition: Some(CONDITION_PIPELINE.to_owned()),
            value: Expr::reference(PROJECT),
        },
    ));
    for (key, output) in entries {
        doc.outputs.insert(key, output).map_err(duplicate_entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_actions_follow_the_operations() {
        assert_eq!(
            item_actions(&[Operation::Get, Operation::List]),
            vec!["dynamodb:Scan", "dynamodb:GetItem"]
        );
        assert_eq!(item_actions(&Operation::all()).len(), 5);
        assert!(item_actions(&[]).is_empty());
        // An update without fields is a GetItem: update-only resources need
        // it, or such a request is a 500 in Lambda.
        assert_eq!(
            item_actions(&[Operation::Create, Operation::Update]),
            vec![
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:GetItem"
            ]
        );
    }

    #[test]
    fn long_stack_names_are_refused() {
        assert!(Names::new(&"a".repeat(52)).is_ok());
        match Names::new(&"a".repeat(53)) {
            Err(TemplateError::NameTooLong { what, limit, .. }) => {
                assert_eq!((what, limit), ("IAM role name", 64));
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn the_access_log_is_one_json_object() {
        let format: serde_json::Value = serde_json::from_str(&access_log_format()).unwrap();
        for key in ["requestId", "ip", "httpMethod", "path", "status", "latency"] {
            assert!(format.get(key).is_some(), "{key}");
        }
    }
}
