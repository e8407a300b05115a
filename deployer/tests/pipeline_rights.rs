//! The pipeline role's rights, evaluated offline against what
//! CloudFormation's resource handlers need: the emulator enforces no IAM, so
//! this is where a push that would fail with AccessDenied mid-deploy on AWS
//! is caught.
//!
//! The source is CloudFormation's resource provider schemas, which cfn-lint
//! ships (`cfnlint/data/schemas`, in `make lint`'s venv): each type's
//! `handlers.{create,update,delete}.permissions` lists the IAM actions its
//! handler may call. Those lists are supersets (the log group's update
//! handler lists Firehose and S3 actions for delivery features): every
//! action this test does not require is in [`NOT_APPLICABLE`] with the reason,
//! and every action the role grants must be required by some handler or be
//! one of the build's own calls ([`BUILD_OWN_CALLS`]).
//!
//! What CI may run: the update handler of every application resource (a code
//! push updates the function; each `stack:` setting the pipeline may deploy
//! updates some of them), and the Deployment's create and delete (a route
//! change makes a new one; adding or removing an index updates its table,
//! whose indexes are checked too). Adding, removing or renaming a table, the API key
//! and every pipeline resource change the pipeline role itself, which
//! `deploy --from-pipeline` refuses before executing (`pipeline_build.rs`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use api::AppConfig;
use deployer::settings::StackSettings;
use serde_json::Value;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const API_ID: &str = "a1b2c3d4e5";
const RESOURCE_ID: &str = "r1s2t3";
const DEPLOYMENT_ID: &str = "d1e2f3";
const API_KEY_ID: &str = "k1l2m3n4o5";
const USAGE_PLAN_ID: &str = "p1q2r3";
const BUCKET: &str = "shop-artifacts-123456789012-eu-west-1";
const ARTIFACT_KEY: &str = "api/0123abcd.zip";
const SECRET_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:serverless-api/github-token-AbCdEf";

/// Handler permissions that do not apply to this template, by resource type
/// (`*` for any), each with the reason.
const NOT_APPLICABLE: &[(&str, &str, &str)] = &[
    // Lambda
    (
        "AWS::Lambda::Function",
        "ec2:DescribeSecurityGroups",
        "no VpcConfig",
    ),
    (
        "AWS::Lambda::Function",
        "ec2:DescribeSubnets",
        "no VpcConfig",
    ),
    ("AWS::Lambda::Function", "ec2:DescribeVpcs", "no VpcConfig"),
    (
        "AWS::Lambda::Function",
        "elasticfilesystem:DescribeMountTargets",
        "no FileSystemConfigs",
    ),
    (
        "AWS::Lambda::Function",
        "s3files:ListMountTargets",
        "no FileSystemConfigs",
    ),
    (
        "AWS::Lambda::Function",
        "kms:CreateGrant",
        "no KmsKeyArn: Lambda's own key",
    ),
    (
        "AWS::Lambda::Function",
        "kms:Decrypt",
        "no KmsKeyArn: Lambda's own key",
    ),
    (
        "AWS::Lambda::Function",
        "kms:DescribeKey",
        "no KmsKeyArn: Lambda's own key",
    ),
    (
        "AWS::Lambda::Function",
        "kms:GenerateDataKey",
        "no KmsKeyArn: Lambda's own key",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PutRuntimeManagementConfig",
        "no RuntimeManagementConfig",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PutFunctionCodeSigningConfig",
        "no CodeSigningConfigArn",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:DeleteFunctionCodeSigningConfig",
        "no CodeSigningConfigArn",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:GetCodeSigningConfig",
        "reads a code signing config, a resource this template has none of",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PutFunctionRecursionConfig",
        "no RecursiveLoop",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PutFunctionScalingConfig",
        "no FunctionScalingConfig",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PassCapacityProvider",
        "no CapacityProviderConfig",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:AssociateRuntimeAlias",
        "no runtime alias",
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PublishVersion",
        "no AutoPublish: no versions",
    ),
    // Logs
    ("AWS::Logs::LogGroup", "logs:AssociateKmsKey", "no KmsKeyId"),
    (
        "AWS::Logs::LogGroup",
        "logs:DisassociateKmsKey",
        "no KmsKeyId",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutDataProtectionPolicy",
        "no DataProtectionPolicy",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:CreateLogDelivery",
        "no delivery configuration",
    ),
    (
        "AWS::Logs::LogGroup",
        "s3:REST.PUT.OBJECT",
        "no delivery to S3",
    ),
    (
        "AWS::Logs::LogGroup",
        "firehose:TagDeliveryStream",
        "no delivery to Firehose",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutIndexPolicy",
        "no FieldIndexPolicies",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:DeleteIndexPolicy",
        "no FieldIndexPolicies",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:DescribeIndexPolicies",
        "account-level, for FieldIndexPolicies this template never sets",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutResourcePolicy",
        "no ResourcePolicyDocument",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:DeleteResourcePolicy",
        "no ResourcePolicyDocument",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:DescribeResourcePolicies",
        "account-level, for a ResourcePolicyDocument this template never sets",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutLogGroupDeletionProtection",
        "no DeletionProtection",
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutBearerTokenAuthentication",
        "no BearerTokenAuthentication",
    ),
    // DynamoDB
    (
        "AWS::DynamoDB::Table",
        "dynamodb:CreateTable",
        "a table is never created by CI",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:CreateTableReplica",
        "no Replicas",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:AssociateTableReplica",
        "no Replicas",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:UpdateContributorInsights",
        "no ContributorInsightsSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:UpdateKinesisStreamingDestination",
        "no KinesisStreamSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:EnableKinesisStreamingDestination",
        "no KinesisStreamSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:DisableKinesisStreamingDestination",
        "no KinesisStreamSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:PutResourcePolicy",
        "no ResourcePolicy",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:DeleteResourcePolicy",
        "no ResourcePolicy",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:Scan",
        "no ImportSourceSpecification: no data is copied",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:Query",
        "no ImportSourceSpecification: no data is copied",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:UpdateItem",
        "no ImportSourceSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:PutItem",
        "no ImportSourceSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:GetItem",
        "no ImportSourceSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:DeleteItem",
        "no ImportSourceSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "dynamodb:BatchWriteItem",
        "no ImportSourceSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "kinesis:DescribeStream",
        "no KinesisStreamSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "kinesis:PutRecords",
        "no KinesisStreamSpecification",
    ),
    (
        "AWS::DynamoDB::Table",
        "iam:CreateServiceLinkedRole",
        "for replicas and contributor insights, which this template has none of",
    ),
    (
        "AWS::DynamoDB::Table",
        "kms:CreateGrant",
        "no KMSMasterKeyId: the AWS owned key, or the AWS managed aws/dynamodb key, which \
         needs no grant from the caller",
    ),
    (
        "AWS::DynamoDB::Table",
        "kms:DescribeKey",
        "no KMSMasterKeyId",
    ),
    (
        "AWS::DynamoDB::Table",
        "kms:ListAliases",
        "no KMSMasterKeyId",
    ),
    (
        "AWS::DynamoDB::Table",
        "kms:RevokeGrant",
        "no KMSMasterKeyId",
    ),
    // IAM (the function's role)
    (
        "AWS::IAM::Role",
        "iam:AttachRolePolicy",
        "no ManagedPolicyArns",
    ),
    (
        "AWS::IAM::Role",
        "iam:DetachRolePolicy",
        "no ManagedPolicyArns",
    ),
    (
        "AWS::IAM::Role",
        "iam:PutRolePermissionsBoundary",
        "no PermissionsBoundary",
    ),
    (
        "AWS::IAM::Role",
        "iam:DeleteRolePermissionsBoundary",
        "no PermissionsBoundary",
    ),
    // API Gateway
    (
        "AWS::ApiGateway::RestApi",
        "apigateway:UpdateRestApiPolicy",
        "no Policy",
    ),
    (
        "AWS::ApiGateway::RestApi",
        "s3:GetObject",
        "no BodyS3Location",
    ),
    (
        "AWS::ApiGateway::RestApi",
        "iam:PassRole",
        "no CloudWatchRoleArn on the API",
    ),
    (
        "AWS::ApiGateway::Method",
        "iam:PassRole",
        "no Integration.Credentials",
    ),
];

/// Handler permissions IAM also evaluates on each index of a table, when
/// the call names one: the update handler reads the table's whole model
/// back, each index's contributor insights included, and
/// DescribeContributorInsights with an `IndexName` is authorised on the
/// index's ARN (its resource types are `table` and, optionally, `index`).
const PER_INDEX: &[(&str, &str)] = &[(
    "AWS::DynamoDB::Table",
    "dynamodb:DescribeContributorInsights",
)];

/// Actions the role grants for the build itself, not for a handler.
const BUILD_OWN_CALLS: &[(&str, &str)] = &[
    (
        "cloudformation:*",
        "the deployer drives the stack through change sets",
    ),
    (
        "s3:PutObject",
        "the deployer uploads the zip; CodeBuild writes its cache",
    ),
    (
        "s3:GetObject",
        "HeadObject before the upload; CodeBuild reads its cache",
    ),
    ("s3:ListBucket", "so a missing object is a 404, not a 403"),
    ("s3:GetBucketLocation", "CodeBuild's S3 cache"),
    ("s3:GetBucketAcl", "CodeBuild's S3 cache"),
    ("logs:CreateLogStream", "CodeBuild writes the build's log"),
    ("logs:PutLogEvents", "CodeBuild writes the build's log"),
    (
        "secretsmanager:GetSecretValue",
        "CodeBuild's source credential and GITHUB_TOKEN",
    ),
    (
        "secretsmanager:DescribeSecret",
        "the deployer looks the secret's ARN up",
    ),
];

// --- The schemas ----------------------------------------------------------------

fn schemas_dir() -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/lint/lib");
    let python = std::fs::read_dir(lib).ok()?.flatten().next()?.path();
    let dir = python.join("site-packages/cfnlint/data/schemas");
    dir.is_dir().then_some(dir)
}

struct Schemas {
    dir: PathBuf,
    index: BTreeMap<String, String>,
}

impl Schemas {
    fn load() -> Option<Self> {
        let Some(dir) = schemas_dir() else {
            assert!(
                std::env::var_os("REQUIRE_EMULATOR").is_none() && std::env::var_os("CI").is_none(),
                "cfn-lint's schemas are missing: `make lint` installs them into .venv/lint"
            );
            eprintln!("skipped: no cfn-lint schemas (make lint installs them)");
            return None;
        };
        let index_text = std::fs::read_to_string(dir.join("providers/us-east-1.json")).unwrap();
        let index: BTreeMap<String, String> = serde_json::from_str(&index_text).unwrap();
        Some(Self { dir, index })
    }

    /// `handlers.<handler>.permissions` of `kind`.
    fn permissions(&self, kind: &str, handler: &str) -> Vec<String> {
        let hash = self
            .index
            .get(kind)
            .unwrap_or_else(|| panic!("no schema for {kind}"));
        let text =
            std::fs::read_to_string(self.dir.join(format!("resources/{hash}.json"))).unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        schema["handlers"][handler]["permissions"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

// --- The template, with every intrinsic resolved -------------------------------------

fn render(yaml_path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(yaml_path);
    let app = AppConfig::load(&path).unwrap();
    let settings = StackSettings::from_section(app.stack.as_ref()).unwrap();
    serde_json::from_str(
        &deployer::template::build(&app, &settings)
            .unwrap()
            .to_json(),
    )
    .unwrap()
}

/// The values `Ref` and `${…}` stand for in the stack as deployed.
fn refs(template: &Value) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = [
        ("AWS::Partition", "aws"),
        ("AWS::Region", REGION),
        ("AWS::AccountId", ACCOUNT),
        ("AWS::StackName", "shop"),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("ArtifactBucket", BUCKET),
        ("ArtifactKey", ARTIFACT_KEY),
        ("GitHubTokenSecretArn", SECRET_ARN),
        ("Api", API_ID),
        ("ApiKey", API_KEY_ID),
        ("ApiUsagePlan", USAGE_PLAN_ID),
        ("ApiProxyResource", RESOURCE_ID),
        ("ApiStage", "prod"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (logical_id, resource) in template["Resources"].as_object().unwrap() {
        let name = |property: &str| resource["Properties"][property].as_str().map(str::to_owned);
        let value = match resource["Type"].as_str().unwrap() {
            "AWS::DynamoDB::Table" => name("TableName"),
            "AWS::Logs::LogGroup" => name("LogGroupName"),
            "AWS::IAM::Role" => name("RoleName"),
            "AWS::Lambda::Function" => name("FunctionName"),
            "AWS::ApiGateway::Deployment" => Some(DEPLOYMENT_ID.to_owned()),
            _ => None,
        };
        if let Some(value) = value {
            values.entry(logical_id.clone()).or_insert(value);
        }
    }
    values
}

/// The ARN `Fn::GetAtt [logical_id, Arn]` stands for.
fn arn_of(template: &Value, refs: &BTreeMap<String, String>, logical_id: &str) -> String {
    let name = &refs[logical_id];
    match template["Resources"][logical_id]["Type"].as_str().unwrap() {
        "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
        "AWS::Logs::LogGroup" => format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"),
        "AWS::IAM::Role" => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        "AWS::Lambda::Function" => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
        other => panic!("no ARN for {other}"),
    }
}

fn resolve(value: &Value, template: &Value, refs: &BTreeMap<String, String>) -> String {
    if let Some(text) = value.as_str() {
        return text.to_owned();
    }
    if let Some(name) = value["Ref"].as_str() {
        return refs
            .get(name)
            .unwrap_or_else(|| panic!("Ref {name}"))
            .clone();
    }
    if let Some(pair) = value["Fn::GetAtt"].as_array() {
        assert_eq!(pair[1], "Arn");
        return arn_of(template, refs, pair[0].as_str().unwrap());
    }
    if let Some(text) = value["Fn::Sub"].as_str() {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            match name.split_once('.') {
                Some((logical_id, "Arn")) => out.push_str(&arn_of(template, refs, logical_id)),
                _ => out.push_str(refs.get(name).unwrap_or_else(|| panic!("${{{name}}}"))),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        return out;
    }
    panic!("cannot resolve {value}");
}

// --- IAM, as far as these policies need --------------------------------------------

#[derive(Debug)]
struct Grant {
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
    /// `iam:PassedToService`, when the statement requires it.
    passed_to: Option<String>,
}

fn grants(template: &Value, refs: &BTreeMap<String, String>) -> Vec<Grant> {
    template["Resources"]["PipelineRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|statement| Grant {
            sid: statement["Sid"].as_str().unwrap().to_owned(),
            actions: statement["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
            resources: statement["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| resolve(r, template, refs))
                .collect(),
            passed_to: statement["Condition"]["StringEquals"]["iam:PassedToService"]
                .as_str()
                .map(str::to_owned),
        })
        .collect()
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn allowed(grants: &[Grant], action: &str, resource: &str, passed_to: Option<&str>) -> bool {
    grants.iter().any(|grant| {
        grant.actions.iter().any(|granted| granted == action)
            && grant
                .resources
                .iter()
                .any(|pattern| matches(pattern, resource))
            && grant
                .passed_to
                .as_deref()
                .is_none_or(|required| Some(required) == passed_to)
    })
}

#[test]
fn the_wildcard_match_is_iams() {
    assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/api/x.zip"));
    assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
    assert!(matches("*", "anything"));
    assert!(matches("a?c", "abc"));
    assert!(!matches("table/shop-users", "table/shop-users-2"));
}

// --- What each handler acts on -------------------------------------------------------

/// The ARN an action of `kind`'s handler is evaluated on, for resource
/// `logical_id`; `None` for actions no ARN of ours narrows (`*` only).
fn target(
    template: &Value,
    refs: &BTreeMap<String, String>,
    logical_id: &str,
    kind: &str,
    handler: &str,
    action: &str,
) -> (String, Option<&'static str>) {
    let apigateway = |path: String| format!("arn:aws:apigateway:{REGION}::{path}");
    match action {
        // CloudFormation passes the function's role to Lambda.
        "iam:PassRole" => (
            arn_of(template, refs, "ApiFunctionRole"),
            Some("lambda.amazonaws.com"),
        ),
        "s3:GetObject" | "s3:GetObjectVersion" => {
            (format!("arn:aws:s3:::{BUCKET}/{ARTIFACT_KEY}"), None)
        }
        "logs:DescribeLogGroups" => ("*".to_owned(), None),
        _ => {
            let arn = match kind {
                "AWS::ApiGateway::RestApi" => apigateway(format!("/restapis/{API_ID}")),
                "AWS::ApiGateway::Resource" => {
                    apigateway(format!("/restapis/{API_ID}/resources/{RESOURCE_ID}"))
                }
                "AWS::ApiGateway::Method" => apigateway(format!(
                    "/restapis/{API_ID}/resources/{RESOURCE_ID}/methods/ANY"
                )),
                "AWS::ApiGateway::Deployment"
                    if handler == "create" && action == "apigateway:POST" =>
                {
                    apigateway(format!("/restapis/{API_ID}/deployments"))
                }
                "AWS::ApiGateway::Deployment" => {
                    apigateway(format!("/restapis/{API_ID}/deployments/{DEPLOYMENT_ID}"))
                }
                "AWS::ApiGateway::Stage" => apigateway(format!("/restapis/{API_ID}/stages/prod")),
                "AWS::ApiGateway::ApiKey" => apigateway(format!("/apikeys/{API_KEY_ID}")),
                "AWS::ApiGateway::UsagePlan" => apigateway(format!("/usageplans/{USAGE_PLAN_ID}")),
                "AWS::ApiGateway::UsagePlanKey" => {
                    apigateway(format!("/usageplans/{USAGE_PLAN_ID}/keys/{API_KEY_ID}"))
                }
                _ => arn_of(template, refs, logical_id)
                    .trim_end_matches(":*")
                    .to_owned(),
            };
            (arn, None)
        }
    }
}

/// Every (handler, action) CI may need for `logical_id`, exclusions applied.
fn needed(schemas: &Schemas, kind: &str) -> Vec<(&'static str, String)> {
    let handlers: &[&'static str] = match kind {
        "AWS::ApiGateway::Deployment" => &["create", "update", "delete"],
        // Created with the API, never replaced: its function and API keep
        // their names and ids for the stack's life.
        "AWS::Lambda::Permission" => &[],
        _ => &["update"],
    };
    let mut needed = Vec::new();
    for handler in handlers {
        for action in schemas.permissions(kind, handler) {
            let excluded = NOT_APPLICABLE
                .iter()
                .any(|(k, a, _)| (*k == kind || *k == "*") && *a == action);
            if !excluded {
                needed.push((*handler, action));
            }
        }
    }
    needed
}

#[test]
fn the_pipeline_may_run_every_handler_a_push_can_start_and_nothing_more() {
    let Some(schemas) = Schemas::load() else {
        return;
    };
    for declaration in ["tests/data/app.yaml"] {
        let template = render(declaration);
        let refs = refs(&template);
        let grants = grants(&template, &refs);
        let mut missing = Vec::new();
        let mut used: Vec<(String, String)> = Vec::new();
        for (logical_id, resource) in template["Resources"].as_object().unwrap() {
            if deployer::template::PIPELINE_OWN_RESOURCES.contains(&logical_id.as_str()) {
                continue;
            }
            let kind = resource["Type"].as_str().unwrap();
            for (handler, action) in needed(&schemas, kind) {
                let (arn, passed_to) = target(&template, &refs, logical_id, kind, handler, &action);
                let mut arns = vec![arn.clone()];
                if PER_INDEX.contains(&(kind, action.as_str())) {
                    arns.extend(
                        resource["Properties"]["GlobalSecondaryIndexes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|index| {
                                format!("{arn}/index/{}", index["IndexName"].as_str().unwrap())
                            }),
                    );
                }
                for arn in arns {
                    if allowed(&grants, &action, &arn, passed_to) {
                        used.push((action.clone(), arn));
                    } else {
                        missing.push(format!(
                            "{logical_id} ({kind}) {handler}: {action} on {arn}"
                        ));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{declaration}: the pipeline role lacks what CloudFormation's handlers need:\n  {}",
            missing.join("\n  ")
        );
        let mut excess = Vec::new();
        for grant in &grants {
            for action in &grant.actions {
                let own = BUILD_OWN_CALLS
                    .iter()
                    .any(|(pattern, _)| matches(pattern, action));
                let by_handler = used.iter().any(|(used_action, arn)| {
                    used_action == action
                        && grant.resources.iter().any(|pattern| matches(pattern, arn))
                });
                if !own && !by_handler {
                    excess.push(format!("{} grants {action}", grant.sid));
                }
            }
        }
        assert!(
            excess.is_empty(),
            "{declaration}: the pipeline role grants what no handler it may run needs:\n  {}",
            excess.join("\n  ")
        );
    }
}

/// Every exclusion names an action that a handler of its type does list:
/// a stale line would hide nothing and mislead.
#[test]
fn every_exclusion_is_of_a_listed_permission() {
    let Some(schemas) = Schemas::load() else {
        return;
    };
    for (kind, action, reason) in NOT_APPLICABLE {
        assert!(!reason.is_empty());
        let listed = ["create", "update", "delete"].iter().any(|handler| {
            schemas
                .permissions(kind, handler)
                .iter()
                .any(|a| a == action)
        });
        assert!(listed, "{kind} lists no {action}");
    }
}
