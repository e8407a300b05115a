//! Typed properties of the CloudFormation resource types the stack uses.
//!
//! Only the properties we set are modelled; each struct serialises to exactly
//! the `Properties` CloudFormation documents for its type (PascalCase names,
//! optional ones left out rather than written as null). A property that
//! CloudFormation resolves at deploy time is an [`Expr`]; numbers and flags
//! are plain Rust values, so they cannot be quoted by mistake.

use std::collections::BTreeMap;

use serde::Serialize;

use super::iam::{Policy, PolicyDocument};
use super::intrinsic::Expr;

/// Declares the resource types: the `Properties` enum, its `Type` names and
/// a `From` for each struct, from one list.
macro_rules! resource_types {
    ($($variant:ident($properties:ident) = $type_name:literal,)+) => {
        /// The properties of one resource; the variant decides its `Type`.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Properties {
            $($variant($properties),)+
        }

        impl Properties {
            /// The CloudFormation type, `AWS::Service::Thing`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Properties::$variant(_) => $type_name,)+
                }
            }
        }

        $(impl From<$properties> for Properties {
            fn from(properties: $properties) -> Self {
                Properties::$variant(properties)
            }
        })+
    };
}

resource_types! {
    Table(Table) = "AWS::DynamoDB::Table",
    Role(Role) = "AWS::IAM::Role",
    LogGroup(LogGroup) = "AWS::Logs::LogGroup",
    Function(Function) = "AWS::Lambda::Function",
    Permission(Permission) = "AWS::Lambda::Permission",
    RestApi(RestApi) = "AWS::ApiGateway::RestApi",
    ApiResource(ApiResource) = "AWS::ApiGateway::Resource",
    Method(Method) = "AWS::ApiGateway::Method",
    Deployment(Deployment) = "AWS::ApiGateway::Deployment",
    Stage(Stage) = "AWS::ApiGateway::Stage",
    ApiKey(ApiKey) = "AWS::ApiGateway::ApiKey",
    UsagePlan(UsagePlan) = "AWS::ApiGateway::UsagePlan",
    UsagePlanKey(UsagePlanKey) = "AWS::ApiGateway::UsagePlanKey",
    Project(Project) = "AWS::CodeBuild::Project",
}

// --- DynamoDB ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    pub table_name: Expr,
    pub billing_mode: &'static str,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
    /// Left out when there is none, so a table without indexes renders as
    /// it always did. On demand, an index has no `ProvisionedThroughput`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    pub point_in_time_recovery_specification: PointInTimeRecoverySpecification,
    pub time_to_live_specification: TimeToLiveSpecification,
    #[serde(rename = "SSESpecification")]
    pub sse_specification: SseSpecification,
}

impl Table {
    /// A table as the API needs it: hash key `id` (S), on demand, point-in-time
    /// recovery, TTL on `ttl`, encrypted at rest as `encryption` says.
    pub fn keyed_by_id(table_name: Expr, encryption: SseSpecification) -> Self {
        Self {
            table_name,
            billing_mode: "PAY_PER_REQUEST",
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: "id".to_owned(),
                attribute_type: "S",
            }],
            key_schema: vec![KeySchemaElement::hash("id")],
            global_secondary_indexes: Vec::new(),
            point_in_time_recovery_specification: PointInTimeRecoverySpecification {
                point_in_time_recovery_enabled: true,
            },
            time_to_live_specification: TimeToLiveSpecification {
                attribute_name: "ttl".to_owned(),
                enabled: true,
            },
            sse_specification: encryption,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: String,
    pub attribute_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElement {
    pub attribute_name: String,
    pub key_type: &'static str,
}

impl KeySchemaElement {
    /// The partition key.
    pub fn hash(attribute_name: impl Into<String>) -> Self {
        Self {
            attribute_name: attribute_name.into(),
            key_type: "HASH",
        }
    }

    /// The sort key.
    pub fn range(attribute_name: impl Into<String>) -> Self {
        Self {
            attribute_name: attribute_name.into(),
            key_type: "RANGE",
        }
    }
}

/// A global secondary index of a table; its key attributes must be among
/// the table's `AttributeDefinitions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GlobalSecondaryIndex {
    pub index_name: String,
    /// The partition key (`HASH`), then the sort key (`RANGE`) if any.
    pub key_schema: Vec<KeySchemaElement>,
    pub projection: Projection,
}

/// Which attributes an index copies from the table's items.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    pub projection_type: &'static str,
}

impl Projection {
    /// Every attribute: a list served from the index returns whole records
    /// without reading the table again.
    pub fn all() -> Self {
        Self {
            projection_type: "ALL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PointInTimeRecoverySpecification {
    pub point_in_time_recovery_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLiveSpecification {
    pub attribute_name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SseSpecification {
    #[serde(rename = "SSEEnabled")]
    pub sse_enabled: bool,
    #[serde(rename = "SSEType", skip_serializing_if = "Option::is_none")]
    pub sse_type: Option<&'static str>,
}

impl SseSpecification {
    /// DynamoDB's default: encrypted with a key AWS owns, at no charge.
    /// `SSEEnabled: false` does not mean unencrypted: "If disabled (false) or
    /// not specified, server-side encryption is set to AWS owned key"
    /// (CloudFormation reference, AWS::DynamoDB::Table SSESpecification).
    pub fn aws_owned_key() -> Self {
        Self {
            sse_enabled: false,
            sse_type: None,
        }
    }

    /// The AWS managed key `aws/dynamodb`, whose use AWS KMS bills per
    /// request ("If enabled (true), server-side encryption type is set to KMS
    /// and an AWS managed key is used (AWS KMS charges apply)", same page).
    pub fn aws_managed_kms_key() -> Self {
        Self {
            sse_enabled: true,
            sse_type: Some("KMS"),
        }
    }
}

// --- IAM ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    /// Absent: CloudFormation generates a unique name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_name: Option<Expr>,
    pub description: String,
    pub assume_role_policy_document: PolicyDocument,
    pub policies: Vec<Policy>,
}

// --- CloudWatch Logs ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub log_group_name: Expr,
    pub retention_in_days: u32,
}

// --- Lambda -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Function {
    pub function_name: Expr,
    pub description: String,
    pub runtime: &'static str,
    pub handler: &'static str,
    pub architectures: Vec<&'static str>,
    pub memory_size: u32,
    pub timeout: u32,
    /// Absent: the function draws on the account's unreserved pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrent_executions: Option<u32>,
    pub role: Expr,
    pub code: Code,
    pub environment: Environment,
    pub logging_config: LoggingConfig,
    /// Absent: Lambda's default, `PassThrough` (no traces of its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing_config: Option<TracingConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Code {
    pub s3_bucket: Expr,
    pub s3_key: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    /// Sorted by name: the order Lambda shows them in.
    pub variables: BTreeMap<String, Expr>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    pub log_group: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfig {
    pub mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Permission {
    pub action: &'static str,
    pub function_name: Expr,
    pub principal: &'static str,
    pub source_arn: Expr,
}

// --- API Gateway (REST) -------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestApi {
    pub name: Expr,
    pub description: String,
    pub endpoint_configuration: EndpointConfiguration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfiguration {
    pub types: Vec<&'static str>,
}

/// `AWS::ApiGateway::Resource`: a path segment of the REST API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiResource {
    pub rest_api_id: Expr,
    pub parent_id: Expr,
    pub path_part: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Method {
    pub rest_api_id: Expr,
    pub resource_id: Expr,
    pub http_method: &'static str,
    pub authorization_type: &'static str,
    /// Left out when false (CloudFormation's default), so a stack without
    /// an API key renders as it always did.
    #[serde(skip_serializing_if = "is_false")]
    pub api_key_required: bool,
    pub integration: Integration,
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Integration {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub integration_http_method: &'static str,
    pub uri: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deployment {
    pub rest_api_id: Expr,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stage {
    pub stage_name: &'static str,
    pub description: String,
    pub rest_api_id: Expr,
    pub deployment_id: Expr,
    pub tracing_enabled: bool,
    pub method_settings: Vec<MethodSetting>,
    pub access_log_setting: AccessLogSetting,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MethodSetting {
    pub resource_path: &'static str,
    pub http_method: &'static str,
    pub throttling_rate_limit: u32,
    pub throttling_burst_limit: u32,
    pub metrics_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessLogSetting {
    pub destination_arn: Expr,
    pub format: String,
}

/// An API key: its value is generated by API Gateway and never appears in
/// the template or the stack's outputs, only its id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiKey {
    pub name: Expr,
    pub description: String,
    pub enabled: bool,
}

/// Which stages a key may call, and how fast.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsagePlan {
    pub usage_plan_name: Expr,
    pub description: String,
    pub api_stages: Vec<UsagePlanStage>,
    pub throttle: ThrottleSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsagePlanStage {
    pub api_id: Expr,
    pub stage: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleSettings {
    pub rate_limit: u32,
    pub burst_limit: u32,
}

/// Puts a key in a usage plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsagePlanKey {
    pub key_id: Expr,
    pub key_type: &'static str,
    pub usage_plan_id: Expr,
}

// --- CodeBuild ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Project {
    pub name: Expr,
    pub description: String,
    pub service_role: Expr,
    pub source: ProjectSource,
    pub triggers: ProjectTriggers,
    pub environment: ProjectEnvironment,
    pub artifacts: ProjectArtifacts,
    pub cache: ProjectCache,
    pub logs_config: ProjectLogsConfig,
    pub timeout_in_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectSource {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub location: Expr,
    pub build_spec: &'static str,
    pub git_clone_depth: u32,
    pub report_build_status: bool,
    pub auth: SourceAuth,
}

/// The credential this project's source uses, instead of the account's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceAuth {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub resource: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectTriggers {
    pub webhook: bool,
    /// Groups are OR-ed; the filters inside a group are AND-ed.
    pub filter_groups: Vec<Vec<WebhookFilter>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookFilter {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub pattern: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectEnvironment {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub compute_type: &'static str,
    pub image: &'static str,
    pub privileged_mode: bool,
    pub environment_variables: Vec<ProjectVariable>,
}

/// A build's environment variable; `SECRETS_MANAGER` ones CodeBuild reads
/// from the secret when the build starts and masks in the build's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectVariable {
    pub name: &'static str,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectArtifacts {
    #[serde(rename = "Type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectCache {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub location: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectLogsConfig {
    pub cloud_watch_logs: CloudWatchLogsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloudWatchLogsConfig {
    pub status: &'static str,
    pub group_name: Expr,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_uses_cloudformation_property_names() {
        let table = Table::keyed_by_id(Expr::literal("s-users"), SseSpecification::aws_owned_key());
        let properties = Properties::from(table);
        assert_eq!(properties.type_name(), "AWS::DynamoDB::Table");
        assert_eq!(
            serde_json::to_value(&properties).unwrap(),
            json!({
                "TableName": "s-users",
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true},
                "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": true},
                "SSESpecification": {"SSEEnabled": false}
            })
        );
        let table = Table::keyed_by_id(
            Expr::literal("s-users"),
            SseSpecification::aws_managed_kms_key(),
        );
        assert_eq!(
            serde_json::to_value(Properties::from(table)).unwrap()["SSESpecification"],
            json!({"SSEEnabled": true, "SSEType": "KMS"})
        );
    }

    #[test]
    fn an_index_uses_cloudformation_property_names() {
        let mut table =
            Table::keyed_by_id(Expr::literal("s-users"), SseSpecification::aws_owned_key());
        table.global_secondary_indexes.push(GlobalSecondaryIndex {
            index_name: "by-team-age".to_owned(),
            key_schema: vec![
                KeySchemaElement::hash("team"),
                KeySchemaElement::range("age"),
            ],
            projection: Projection::all(),
        });
        assert_eq!(
            serde_json::to_value(Properties::from(table)).unwrap()["GlobalSecondaryIndexes"],
            json!([{
                "IndexName": "by-team-age",
                "KeySchema": [
                    {"AttributeName": "team", "KeyType": "HASH"},
                    {"AttributeName": "age", "KeyType": "RANGE"}
                ],
                "Projection": {"ProjectionType": "ALL"}
            }])
        );
    }
}
