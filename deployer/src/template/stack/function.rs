//! The Lambda function, its role, its log group and the `API_RESOURCES`
//! mapping it reads, with the checkov findings it accepts.

use super::*;

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

const NO_ENV_CMK: Accepted = Accepted {
    id: "CKV_AWS_173",
    reason: "The environment holds no secret (the resource mapping, log level and a runtime \
             flag); Lambda encrypts it at rest with its AWS managed key.",
};

pub(super) fn add_function(
    doc: &mut Document,
    settings: &StackSettings,
    names: &Names,
    app: &AppConfig,
    tables: &[TableSpec],
    serving: &ServingIndexes,
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
        if !actions.is_empty() {
            statements.push(
                Statement::allow(&actions, vec![Expr::get_att(&table.logical_id, "Arn")])
                    .sid(format!("{}Items", table.logical_id)),
            );
        }
        statements.extend(index_list_statement(table));
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
    variables.insert(
        RESOURCES_ENV.to_owned(),
        api_resources(app, tables, serving)?,
    );
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
/// Every resource carries its `indexes`, whatever its backend: the API plans
/// a list from them on memory as on DynamoDB; but only the `serving` ones,
/// so the function never plans on an index DynamoDB is still building.
pub(super) fn api_resources(
    app: &AppConfig,
    tables: &[TableSpec],
    serving: &ServingIndexes,
) -> Result<Expr, TemplateError> {
    let mut mapping = serde_json::Map::new();
    for (resource, declared) in &app.resources {
        mapping.insert(
            resource.clone(),
            resource_entry(declared, resource, tables, serving)?,
        );
    }
    // Only the `${TableLogicalId}` slots are Sub syntax: every literal that
    // could hold `${` (a seed path, an attribute name) was escaped when the
    // entry was built.
    Ok(Expr::sub(serde_json::Value::Object(mapping).to_string()))
}

pub(super) fn resource_entry(
    declared: &ResourceConfig,
    resource: &str,
    tables: &[TableSpec],
    serving: &ServingIndexes,
) -> Result<serde_json::Value, TemplateError> {
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
    // An index DynamoDB is still creating refuses every Query until it is
    // ACTIVE; the function plans without it (a Scan serves those lists)
    // until `deploy` tells it in a second change set.
    let indexes: Vec<&IndexConfig> = declared
        .indexes
        .iter()
        .filter(|index| serving.serves(resource, &index.name))
        .collect();
    if !indexes.is_empty() {
        // app.yaml's own shape, through the API's serde: what the function
        // parses back is what was declared.
        let indexes = serde_json::to_value(&indexes)?;
        entry.insert("indexes".to_owned(), sub_literals(indexes));
    }
    Ok(serde_json::Value::Object(entry))
}

/// `value` with every string in it escaped for `Fn::Sub` ([`sub_literal`]):
/// an attribute name may hold `${`.
fn sub_literals(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(sub_literal(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(sub_literals).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, field)| (name, sub_literals(field)))
                .collect(),
        ),
        other => other,
    }
}

/// The name app.yaml uses for an operation.
pub(super) fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::List => "list",
        Operation::Get => "get",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
    }
}
