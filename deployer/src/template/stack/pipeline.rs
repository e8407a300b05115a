//! The CodeBuild project that redeploys on every push, its GitHub webhook,
//! its log group, and its role's statements, each naming the setting it
//! follows (what a push may change is decided from them).

use super::*;

pub(super) fn add_pipeline(
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
pub(super) fn pipeline_statements(
    settings: &StackSettings,
    names: &Names,
    tables: &[TableSpec],
) -> Vec<Statement> {
    let mut statements = vec![this_stack()];
    statements.extend(artifacts());
    statements.extend(api_function(names));
    statements.push(this_api());
    statements.extend(log_groups(names));
    statements.push(github_token_secret());
    statements.extend(existing_tables(tables));
    statements.extend(existing_tables_indexes(tables));
    if settings.api_key {
        statements.push(this_api_key_and_usage_plan());
    }
    statements
}

/// The stack and its change sets: what `deploy` itself calls.
fn this_stack() -> Statement {
    let stack = regional_arn("cloudformation", "stack/${AWS::StackName}/*");
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
    .sid("ThisStackAndItsChangeSets")
}

/// The zip's objects and CodeBuild's cache, in the artifact bucket.
fn artifacts() -> [Statement; 2] {
    let bucket = Expr::sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}");
    let objects = Expr::sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}/*");
    [
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
    ]
}

/// The function's update handler, and its role, passed to Lambda only.
fn api_function(names: &Names) -> [Statement; 3] {
    let function = regional_arn("lambda", &format!("function:{}", names.function));
    let function_role = Expr::sub(format!(
        "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{}",
        names.function_role
    ));
    [
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
    ]
}

/// An API Gateway ARN for `path` in this region.
fn api_gateway_arn(path: &str) -> Expr {
    Expr::sub(format!(
        "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::{path}"
    ))
}

/// This API and everything under it, named by its `Ref`: REST API ids are
/// generated by AWS, so once it exists CI may change this API and no other.
fn this_api() -> Statement {
    Statement::allow(
        &[
            "apigateway:GET",
            "apigateway:POST",
            "apigateway:PUT",
            "apigateway:PATCH",
            "apigateway:DELETE",
        ],
        vec![
            api_gateway_arn("/restapis/${Api}"),
            api_gateway_arn("/restapis/${Api}/*"),
        ],
    )
    .sid("ThisApi")
}

/// The function's and the access logs' groups (their retention and tags),
/// and the build's own log group, which it writes.
fn log_groups(names: &Names) -> [Statement; 3] {
    let app_log_groups = [&names.function_log_group, &names.access_log_group]
        .into_iter()
        .flat_map(|name| {
            [
                regional_arn("logs", &format!("log-group:{name}")),
                regional_arn("logs", &format!("log-group:{name}:*")),
            ]
        })
        .collect();
    [
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
    ]
}

/// The GitHub token: CodeBuild reads it with the project's role, for the
/// source and for the GITHUB_TOKEN variable; the deploy looks the secret's
/// ARN up by name. This secret only, by its ARN.
fn github_token_secret() -> Statement {
    Statement::allow(
        &[
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
        ],
        vec![Expr::reference(PARAM_GITHUB_TOKEN_SECRET_ARN)],
    )
    .sid("GitHubTokenSecret")
}

/// The update handler's rights on the existing tables, when there are any.
/// No CreateTable (a new table is a change to this policy, deployed from a
/// workstation) and no DeleteTable: the tables are retained on delete and
/// on replacement, and CloudFormation deletes one only when rolling back
/// its own creation, which CI never starts.
fn existing_tables(tables: &[TableSpec]) -> Option<Statement> {
    if tables.is_empty() {
        return None;
    }
    // Each table by its exact ARN, never by a `<stack>-*` prefix: stack
    // `shop`'s prefix would match stack `shop-staging`'s tables. Adding a
    // table therefore changes this policy, which the pipeline refuses to
    // deploy (see `crate::pipeline_build`): CI never creates a table.
    let table_arns = tables
        .iter()
        .map(|table| {
            regional_arn(
                "dynamodb",
                &format!("table/{}", sub_literal(&table.table_name)),
            )
        })
        .collect();
    Some(
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
    )
}

/// What the table's update handler reads on its indexes: each index's
/// contributor insights, which IAM authorises on the index's ARN when the
/// call names an index (DescribeContributorInsights takes `table` and,
/// optionally, `index` resources). Every index of the stack's tables, not
/// the declared ones: then adding an index leaves this policy as it is, and
/// a push that adds one deploys from the pipeline. Read-only, and `/index/*`
/// after the exact table name reaches no other table.
fn existing_tables_indexes(tables: &[TableSpec]) -> Option<Statement> {
    if tables.is_empty() {
        return None;
    }
    let index_arns = tables
        .iter()
        .map(|table| {
            regional_arn(
                "dynamodb",
                &format!("table/{}/index/*", sub_literal(&table.table_name)),
            )
        })
        .collect();
    Some(
        Statement::allow(&["dynamodb:DescribeContributorInsights"], index_arns).sid("TableIndexes"),
    )
}

/// This stack's API key and usage plan (`stack.api_key`). They are not
/// under the API's path, and their ids are generated: CI may update this
/// stack's key and plan only (named by their `Ref`), with what their update
/// handlers list. Creating them (switching `stack.api_key` on) changes this
/// policy, so it is deployed from a workstation.
fn this_api_key_and_usage_plan() -> Statement {
    Statement::allow(
        &[
            "apigateway:GET",
            "apigateway:PUT",
            "apigateway:PATCH",
            "apigateway:DELETE",
        ],
        vec![
            api_gateway_arn("/apikeys/${ApiKey}"),
            api_gateway_arn("/usageplans/${ApiUsagePlan}"),
            api_gateway_arn("/usageplans/${ApiUsagePlan}/*"),
        ],
    )
    .sid("ThisApiKeyAndUsagePlan")
}
