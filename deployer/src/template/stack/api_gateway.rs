//! The REST API in front of the function: its proxy resource and methods, the
//! `prod` stage with throttling and access logs, and, with `api_key`, the key
//! and its usage plan; with the checkov findings they accept.

use super::*;

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

const NO_STAGE_TRACING: Accepted = Accepted {
    id: "CKV_AWS_73",
    reason: "X-Ray tracing is switched off in the declaration (stack.tracing: false); \
             requests are still in the stage's access log, with their request id.",
};

pub(super) fn add_api(
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
pub(super) fn add_api_key(
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
pub(super) fn access_log_format() -> String {
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
