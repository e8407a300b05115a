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
use api::index::IndexConfig;
use sha2::{Digest, Sha256};

use super::iam::{Policy, PolicyDocument, Statement};
use super::intrinsic::{Expr, regional_arn, sub_literal};
use super::model::{
    Accepted, Assertion, DeletionPolicy, Document, Duplicate, Output, Parameter, Resource, Rule,
};
use super::resources::{
    AccessLogSetting, ApiKey, ApiResource, AttributeDefinition, CloudWatchLogsConfig, Code,
    Deployment, EndpointConfiguration, Environment, Function, GlobalSecondaryIndex, Integration,
    KeySchemaElement, LogGroup, LoggingConfig, Method, MethodSetting, Permission, Project,
    ProjectArtifacts, ProjectCache, ProjectEnvironment, ProjectLogsConfig, ProjectSource,
    ProjectTriggers, ProjectVariable, Projection, RestApi, Role, SourceAuth, SseSpecification,
    Stage, Table, ThrottleSettings, TracingConfig, UsagePlan, UsagePlanKey, UsagePlanStage,
    WebhookFilter,
};
use super::{
    CONDITION_PIPELINE, GITHUB_TOKEN_VARIABLE, OUTPUT_API_KEY_ID, OUTPUT_API_URL,
    OUTPUT_BUILD_PROJECT, OUTPUT_FUNCTION_LOG_GROUP, OUTPUT_FUNCTION_NAME, PARAM_ARTIFACT_BUCKET,
    PARAM_ARTIFACT_KEY, PARAM_ENABLE_PIPELINE, PARAM_GITHUB_BRANCH, PARAM_GITHUB_REPOSITORY,
    PARAM_GITHUB_TOKEN_SECRET_ARN, STAGE_NAME, ServingIndexes, TemplateError, table_logical_id,
    table_output_key,
};
use crate::settings::{Arch, StackSettings};

mod api_gateway;
mod function;
mod outputs;
mod parameters;
mod pipeline;
mod tables;

use api_gateway::add_api;
use function::add_function;
use outputs::outputs;
use parameters::parameters;
use pipeline::add_pipeline;
use tables::{index_list_statement, item_actions, table_resource};

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
const LOGS_SERVICE_KEY: Accepted = Accepted {
    id: "CKV_AWS_158",
    reason: "CloudWatch Logs encrypts every log group at rest; these logs (requests, the \
             function's lines, builds) hold no secret that would justify a customer managed \
             key and its key policy.",
};

/// Builds the template document of `app` deployed with `settings`.
pub(super) fn document(
    app: &AppConfig,
    settings: &StackSettings,
    serving: &ServingIndexes,
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
    add_function(&mut doc, settings, &names, app, &tables, serving)?;
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
    /// Its global secondary indexes, in the declaration's order.
    indexes: Vec<IndexConfig>,
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
            indexes: declared.indexes.clone(),
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

fn duplicate_entry(Duplicate(logical_id): Duplicate) -> TemplateError {
    TemplateError::Conflict(logical_id)
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

#[cfg(test)]
mod tests {
    use super::api_gateway::access_log_format;
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

    fn table_with(operations: Vec<Operation>, index_names: &[&str]) -> TableSpec {
        let indexes = index_names
            .iter()
            .map(|name| {
                serde_json::from_value(serde_json::json!({
                    "name": name,
                    "partition_key": {"name": "gender", "type": "string"}
                }))
                .unwrap()
            })
            .collect();
        TableSpec {
            resource: "users".to_owned(),
            logical_id: "UsersTable".to_owned(),
            table_name: "shop-users".to_owned(),
            operations,
            indexes,
        }
    }

    /// A list served from an index is a Query on the index's own ARN:
    /// granted on exactly the declared indexes, and only with `list`.
    #[test]
    fn index_lists_are_granted_on_exactly_the_declared_indexes() {
        let index_arn = |index: &str| {
            serde_json::json!({"Fn::Sub": format!(
                "arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:\
                 table/shop-users/index/{index}"
            )})
        };
        let statement =
            index_list_statement(&table_with(Operation::all(), &["by-gender", "by.team_2"]))
                .unwrap();
        assert_eq!(
            serde_json::to_value(statement).unwrap(),
            serde_json::json!({
                "Sid": "UsersTableIndexes",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": [index_arn("by-gender"), index_arn("by.team_2")]
            })
        );
        assert!(index_list_statement(&table_with(Operation::all(), &[])).is_none());
        // Without `list` nothing reads an index.
        let no_list = vec![Operation::Get, Operation::Create];
        assert!(index_list_statement(&table_with(no_list, &["by-gender"])).is_none());
        assert!(index_list_statement(&table_with(vec![Operation::List], &["by-gender"])).is_some());
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
