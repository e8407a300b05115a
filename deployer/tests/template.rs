//! The rendered template: committed and fresh, deterministic, shaped as the
//! declaration says (tables, permissions, the Lambda's mapping, the pipeline),
//! least-privilege IAM, and deployable on the AWS emulator.
//!
//! `UPDATE_TEMPLATE=1 cargo test -p deployer --test template` rewrites
//! `infra/template.yaml` from `infra/app.yaml` (and `tests/data/template.yaml`
//! from `tests/data/app.yaml`, the example `make lint` checks with the
//! pipeline on).

#![allow(clippy::unwrap_used)]

#[path = "../../api/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use api::AppConfig;
use deployer::settings::StackSettings;
use deployer::template::{
    self, CONDITION_PIPELINE, OUTPUT_API_KEY_ID, OUTPUT_API_URL, OUTPUT_BUILD_PROJECT,
    OUTPUT_FUNCTION_LOG_GROUP, OUTPUT_FUNCTION_NAME, PARAM_ARTIFACT_BUCKET, PARAM_ARTIFACT_KEY,
    PARAM_ENABLE_PIPELINE, PARAM_GITHUB_BRANCH, PARAM_GITHUB_REPOSITORY,
    PARAM_GITHUB_TOKEN_SECRET_ARN, REQUIRED_CAPABILITY, Template, TemplateError, table_logical_id,
    table_output_key,
};
use serde_json::{Value, json};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(path: &Path) -> (AppConfig, StackSettings) {
    let app = AppConfig::load(path).unwrap();
    let settings = StackSettings::from_section(app.stack.as_ref()).unwrap();
    (app, settings)
}

/// The repository's own declaration and settings.
fn repository_declaration() -> (AppConfig, StackSettings) {
    load(&repository_root().join("infra/app.yaml"))
}

/// `tests/data/app.yaml`: every option the stack derives from, pipeline on.
fn example_declaration() -> (AppConfig, StackSettings) {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/app.yaml"))
}

/// A declaration given inline: `resources:` and an optional `stack:`.
fn declaration(yaml: &str) -> (AppConfig, StackSettings) {
    let app: AppConfig = serde_yaml::from_str(yaml).unwrap();
    let settings = StackSettings::from_section(app.stack.as_ref()).unwrap();
    (app, settings)
}

fn render(app: &AppConfig, settings: &StackSettings) -> Value {
    let template = template::build(app, settings).unwrap();
    let from_json: Value = serde_json::from_str(&template.to_json()).unwrap();
    let from_yaml: Value = serde_yaml::from_str(&template.to_yaml()).unwrap();
    assert_eq!(
        from_json, from_yaml,
        "YAML and JSON must carry the same template"
    );
    from_json
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .collect()
}

// --- The committed file -----------------------------------------------------------

/// Fails unless `committed` holds what `declaration` renders to; rewrites it
/// under `UPDATE_TEMPLATE`.
fn check_fresh(declaration: (AppConfig, StackSettings), committed: &Path) {
    let (app, settings) = declaration;
    let rendered = template::build(&app, &settings).unwrap().to_yaml();
    if std::env::var_os("UPDATE_TEMPLATE").is_some() {
        std::fs::write(committed, &rendered).unwrap();
        eprintln!("wrote {}", committed.display());
        return;
    }
    let text = std::fs::read_to_string(committed).unwrap_or_default();
    assert!(
        text == rendered,
        "{} is not what its declaration renders to. Regenerate it with\n  \
         UPDATE_TEMPLATE=1 cargo test -p deployer --test template\n\
         (or `deployer render`), review the diff and commit it.",
        committed.display()
    );
}

#[test]
fn the_committed_template_is_what_render_produces() {
    check_fresh(
        repository_declaration(),
        &repository_root().join(template::template_path()),
    );
}

#[test]
fn the_linted_pipeline_example_is_fresh() {
    check_fresh(
        example_declaration(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/template.yaml"),
    );
}

#[test]
fn rendering_is_deterministic_and_offline() {
    // `build` takes no client and reads no clock or environment: two builds
    // of one declaration are byte-identical, whatever AWS_* says.
    let (app, settings) = repository_declaration();
    let first = template::build(&app, &settings).unwrap();
    let second = template::build(&app, &settings).unwrap();
    assert_eq!(first.to_yaml(), second.to_yaml());
    assert_eq!(first.to_json(), second.to_json());
    assert!(
        first
            .to_yaml()
            .starts_with("# Rendered by `deployer render`")
    );
}

#[test]
fn the_interface_names_exist_in_the_template() {
    let (app, settings) = repository_declaration();
    let built = template::build(&app, &settings).unwrap();
    let value = render(&app, &settings);
    for parameter in [
        PARAM_ARTIFACT_BUCKET,
        PARAM_ARTIFACT_KEY,
        PARAM_ENABLE_PIPELINE,
        PARAM_GITHUB_REPOSITORY,
        PARAM_GITHUB_BRANCH,
        PARAM_GITHUB_TOKEN_SECRET_ARN,
    ] {
        assert!(built.has_parameter(parameter), "{parameter}");
    }
    let outputs: Vec<&String> = value["Outputs"].as_object().unwrap().keys().collect();
    assert_eq!(outputs.first().map(|k| k.as_str()), Some(OUTPUT_API_URL));
    for output in [
        OUTPUT_FUNCTION_NAME,
        OUTPUT_FUNCTION_LOG_GROUP,
        OUTPUT_BUILD_PROJECT,
    ] {
        assert!(value["Outputs"].get(output).is_some(), "{output}");
    }
    assert_eq!(
        value["Outputs"][OUTPUT_API_URL]["Value"],
        json!({"Fn::Sub":
            "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiStage}/api"})
    );
    assert_eq!(
        value["Resources"]["ApiStage"]["Properties"]["StageName"],
        "prod"
    );
    // Roles have fixed names: the deploy must acknowledge it.
    assert_eq!(REQUIRED_CAPABILITY, "CAPABILITY_NAMED_IAM");
    assert!(
        resources_of_type(&value, "AWS::IAM::Role")
            .iter()
            .any(|(_, role)| role["Properties"].get("RoleName").is_some())
    );
}

// --- Shaped by the declaration ----------------------------------------------------

/// One table per dynamodb resource, each kept when the stack goes, with
/// point-in-time recovery and TTL, named as the API expects.
#[test]
fn one_retained_table_per_dynamodb_resource() {
    for (app, settings) in [
        example_declaration(),
        declaration("resources:\n  users: { backend: dynamodb }\n"),
    ] {
        let value = render(&app, &settings);
        let dynamodb: Vec<(&String, _)> = app
            .resources
            .iter()
            .filter(|(_, r)| r.backend == api::config::BackendKind::Dynamodb)
            .collect();
        assert_eq!(
            resources_of_type(&value, "AWS::DynamoDB::Table").len(),
            dynamodb.len(),
            "{:?}",
            app.resources.keys()
        );
        for (resource, declared) in dynamodb {
            let logical_id = table_logical_id(resource);
            let table = &value["Resources"][&logical_id];
            let properties = &table["Properties"];
            let expected_name = declared.table_name(resource, &settings.name);
            assert_eq!(
                properties["TableName"],
                expected_name.as_str(),
                "{resource}"
            );
            assert_eq!(
                table["DeletionPolicy"], "RetainExceptOnCreate",
                "{resource}"
            );
            assert_eq!(table["UpdateReplacePolicy"], "Retain", "{resource}");
            assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST");
            assert_eq!(
                properties["KeySchema"],
                json!([{"AttributeName": "id", "KeyType": "HASH"}])
            );
            // `id`, then each index key once, by name; an index per
            // declared index, in the declared order, copying every attribute.
            let mut definitions = vec![json!({"AttributeName": "id", "AttributeType": "S"})];
            let mut keys: Vec<_> = declared
                .indexes
                .iter()
                .flat_map(|index| index.keys())
                .map(|key| (key.name.clone(), key.kind.attribute_type()))
                .collect();
            keys.sort();
            keys.dedup();
            definitions.extend(
                keys.into_iter()
                    .map(|(name, kind)| json!({"AttributeName": name, "AttributeType": kind})),
            );
            assert_eq!(
                properties["AttributeDefinitions"],
                Value::Array(definitions),
                "{resource}"
            );
            let indexes: Vec<Value> = declared
                .indexes
                .iter()
                .map(|index| {
                    let mut key_schema =
                        vec![json!({"AttributeName": index.partition_key.name, "KeyType": "HASH"})];
                    if let Some(sort) = &index.sort_key {
                        key_schema.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
                    }
                    json!({"IndexName": index.name, "KeySchema": key_schema,
                           "Projection": {"ProjectionType": "ALL"}})
                })
                .collect();
            if indexes.is_empty() {
                assert!(
                    properties.get("GlobalSecondaryIndexes").is_none(),
                    "{resource}"
                );
            } else {
                assert_eq!(
                    properties["GlobalSecondaryIndexes"],
                    Value::Array(indexes),
                    "{resource}"
                );
            }
            // On demand: neither the table nor an index has provisioned
            // throughput.
            assert!(!properties.to_string().contains("ProvisionedThroughput"));
            assert_eq!(
                properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
                true
            );
            assert_eq!(
                properties["TimeToLiveSpecification"],
                json!({"AttributeName": "ttl", "Enabled": true})
            );
            // DynamoDB's AWS owned key (free), not the AWS managed KMS key
            // that `SSEEnabled: true` selects, which KMS bills per request.
            assert_eq!(properties["SSESpecification"], json!({"SSEEnabled": false}));
            assert_eq!(
                value["Outputs"][table_output_key(resource)]["Value"],
                json!({"Ref": logical_id})
            );
        }
        let built = template::build(&app, &settings).unwrap();
        assert_eq!(
            built.retained_tables().len(),
            resources_of_type(&value, "AWS::DynamoDB::Table").len()
        );
    }
    let (app, settings) =
        declaration("resources:\n  users: { backend: dynamodb }\nstack: { kms: true }\n");
    let value = render(&app, &settings);
    assert_eq!(
        value["Resources"]["UsersTable"]["Properties"]["SSESpecification"],
        json!({"SSEEnabled": true, "SSEType": "KMS"}),
        "stack.kms opts in to the AWS managed key"
    );
    assert!(
        value["Resources"]["UsersTable"]["Metadata"]["checkov"]["skip"][0]["comment"]
            .as_str()
            .unwrap()
            .contains("aws/dynamodb")
    );

    let (app, settings) = example_declaration();
    let value = render(&app, &settings);
    assert_eq!(
        value["Resources"]["OrderItemsTable"]["Properties"]["TableName"],
        "shop-order_items"
    );
    assert_eq!(
        value["Resources"]["AuditTable"]["Properties"]["TableName"],
        "audit-log"
    );
    let users = &value["Resources"]["UsersTable"]["Properties"];
    assert_eq!(
        users["AttributeDefinitions"],
        json!([
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "age", "AttributeType": "N"},
            {"AttributeName": "gender", "AttributeType": "S"},
            {"AttributeName": "team", "AttributeType": "S"}
        ])
    );
    assert_eq!(
        users["GlobalSecondaryIndexes"],
        json!([
            {
                "IndexName": "users-by-gender",
                "KeySchema": [{"AttributeName": "gender", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            },
            {
                "IndexName": "users-by-team-age",
                "KeySchema": [
                    {"AttributeName": "team", "KeyType": "HASH"},
                    {"AttributeName": "age", "KeyType": "RANGE"}
                ],
                "Projection": {"ProjectionType": "ALL"}
            }
        ])
    );
    // A memory resource's indexes are the API's alone: no table has them.
    for (logical_id, table) in resources_of_type(&value, "AWS::DynamoDB::Table") {
        assert!(!table.to_string().contains("mocks-by-name"), "{logical_id}");
    }
}

/// `API_RESOURCES` is the declaration's mapping, with table names filled in
/// by CloudFormation and operations only where they are restricted.
#[test]
fn the_function_environment_carries_every_resource() {
    let (app, settings) = example_declaration();
    let value = render(&app, &settings);
    let function = &value["Resources"]["ApiFunction"]["Properties"];
    let variables = &function["Environment"]["Variables"];
    assert_eq!(variables["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"], "true");
    assert_eq!(variables["RUST_LOG"], "info");
    let mapping: Value =
        serde_json::from_str(variables["API_RESOURCES"]["Fn::Sub"].as_str().unwrap()).unwrap();
    let index = |name: &str, partition: &str, sort: Option<(&str, &str)>| {
        let mut index =
            json!({"name": name, "partition_key": {"name": partition, "type": "string"}});
        if let Some((sort, kind)) = sort {
            index["sort_key"] = json!({"name": sort, "type": kind});
        }
        index
    };
    assert_eq!(
        mapping,
        json!({
            "audit": {"backend": "dynamodb", "table": "${AuditTable}",
                      "operations": ["list", "get"],
                      "indexes": [index("audit-by-day", "day", Some(("at", "number")))]},
            "mocks": {"backend": "memory", "seed": "seed/mocks.json",
                      "indexes": [index("mocks-by-name", "name", None)]},
            "order_items": {"backend": "dynamodb", "table": "${OrderItemsTable}",
                            "operations": ["list", "get", "create"]},
            "users": {"backend": "dynamodb", "table": "${UsersTable}", "protected": ["ttl"],
                      "indexes": [
                          index("users-by-gender", "gender", None),
                          index("users-by-team-age", "team", Some(("age", "number")))
                      ]}
        })
    );
    for resource in app.resources.keys() {
        assert!(mapping.get(resource).is_some(), "{resource}");
    }
    // The mapping parses as the API's own declaration format.
    let as_declaration: AppConfig = serde_yaml::from_str(&format!("resources: {mapping}")).unwrap();
    assert_eq!(as_declaration.resources.len(), app.resources.len());
    // `stack.api_key` reaches the function, which reads it back as declared.
    let api_key = variables[api::config::API_KEY_ENV].as_str().unwrap();
    assert_eq!(api_key, "true");
    let from_environment =
        AppConfig::from_environment(&mapping.to_string(), Some(api_key), PathBuf::new()).unwrap();
    assert_eq!(from_environment.api_key, settings.api_key);
    let open = StackSettings {
        api_key: false,
        ..settings.clone()
    };
    let variables =
        &render(&app, &open)["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables[api::config::API_KEY_ENV], "false");

    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(function["Handler"], "bootstrap");
    assert_eq!(function["Architectures"], json!(["x86_64"]));
    assert_eq!(function["MemorySize"], 256);
    assert_eq!(function["FunctionName"], "shop-api");
    assert_eq!(
        function["Code"],
        json!({"S3Bucket": {"Ref": "ArtifactBucket"}, "S3Key": {"Ref": "ArtifactKey"}})
    );
    let log_group = &value["Resources"]["ApiFunctionLogGroup"]["Properties"];
    assert_eq!(log_group["LogGroupName"], "/aws/lambda/shop-api");
    assert_eq!(log_group["RetentionInDays"], 30);
}

/// What CloudFormation makes of an `Fn::Sub` string: each `${Name}` slot
/// replaced by `values[Name]`, each `${!` written as `${`.
fn substitute(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        rest = &rest[start + 2..];
        if let Some(literal) = rest.strip_prefix('!') {
            out.push_str("${");
            rest = literal;
            continue;
        }
        let end = rest.find('}').unwrap();
        let name = &rest[..end];
        let value = values
            .iter()
            .find(|(slot, _)| *slot == name)
            .unwrap_or_else(|| panic!("no value for ${{{name}}}"))
            .1;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The function reads back the indexes as declared, on every backend, once
/// CloudFormation has filled in the table names: attribute names holding
/// `${` included, which the template must escape for `Fn::Sub`.
#[test]
fn the_function_reads_back_the_declared_indexes() {
    let (app, settings) = declaration(
        "resources:\n  \
         notes:\n    backend: dynamodb\n    indexes:\n      \
         - name: notes-by-owner-rank\n        \
           partition_key: { name: \"${owner}\", type: string }\n        \
           sort_key: { name: \"rank$\", type: number }\n  \
         tags:\n    backend: memory\n    indexes:\n      \
         - name: tags-by-colour\n        partition_key: { name: colour, type: string }\n  \
         plain: { backend: dynamodb }\n",
    );
    let value = render(&app, &settings);
    let sub = value["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
        [api::config::RESOURCES_ENV]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(sub.contains(r#""name":"${!owner}""#), "{sub}");
    let json = substitute(
        sub,
        &[
            ("NotesTable", "serverless-api-notes"),
            ("PlainTable", "serverless-api-plain"),
        ],
    );
    let read_back = AppConfig::from_resources_json(&json, PathBuf::new()).unwrap();
    assert_eq!(read_back.resources.len(), 3);
    for (resource, declared) in &app.resources {
        assert_eq!(
            read_back.resources[resource].indexes, declared.indexes,
            "{resource}"
        );
    }
    assert_eq!(
        read_back.resources["notes"].indexes[0].partition_key.name,
        "${owner}"
    );
    assert_eq!(
        read_back.resources["notes"].table.as_deref(),
        Some("serverless-api-notes")
    );
    assert!(read_back.resources["plain"].indexes.is_empty());
}

/// Adding an index from a push must deploy from the pipeline: it changes the
/// table, the function's role and its `API_RESOURCES`, never the pipeline's
/// own resources (which `deploy --from-pipeline` refuses to change).
#[test]
fn adding_an_index_leaves_the_pipeline_alone() {
    let (app, settings) = example_declaration();
    let before = render(&app, &settings);
    let mut indexed = app.clone();
    indexed
        .resources
        .get_mut("order_items")
        .unwrap()
        .indexes
        .push(
            serde_json::from_value(json!({
                "name": "order-items-by-order",
                "partition_key": {"name": "order", "type": "string"}
            }))
            .unwrap(),
        );
    let after = render(&indexed, &settings);
    let changed: Vec<&String> = after["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(logical_id, resource)| before["Resources"][logical_id.as_str()] != **resource)
        .map(|(logical_id, _)| logical_id)
        .collect();
    assert_eq!(
        changed,
        ["OrderItemsTable", "ApiFunctionRole", "ApiFunction"]
    );
    for own in template::PIPELINE_OWN_RESOURCES {
        assert_eq!(before["Resources"][own], after["Resources"][own], "{own}");
    }
}

/// An index DynamoDB is still building is withheld from the function's
/// `API_RESOURCES` only: the table still declares it and the role may still
/// Query it, and the template names nothing else differently.
#[test]
fn only_serving_indexes_reach_the_function() {
    let (app, settings) = declaration(
        "resources:\n  users:\n    backend: dynamodb\n    indexes:\n      \
         - { name: users-by-age, partition_key: { name: age, type: number } }\n      \
         - { name: users-by-team, partition_key: { name: team, type: string } }\n",
    );
    let mut serving = template::ServingIndexes::all();
    serving.withhold("users", "users-by-age");
    let built = template::build_serving(&app, &settings, &serving).unwrap();
    let partial: Value = serde_json::from_str(&built.to_json()).unwrap();
    let full = render(&app, &settings);

    let index_names = |template: &Value| -> (Vec<String>, Vec<String>) {
        let variables =
            &template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"];
        let resources: Value =
            serde_json::from_str(variables["API_RESOURCES"]["Fn::Sub"].as_str().unwrap()).unwrap();
        let function = as_list(&resources["users"]["indexes"])
            .iter()
            .map(|index| index["name"].as_str().unwrap().to_owned())
            .collect();
        let table =
            as_list(&template["Resources"]["UsersTable"]["Properties"]["GlobalSecondaryIndexes"])
                .iter()
                .map(|index| index["IndexName"].as_str().unwrap().to_owned())
                .collect();
        (function, table)
    };
    assert_eq!(
        index_names(&full),
        (
            vec!["users-by-age".to_owned(), "users-by-team".to_owned()],
            vec!["users-by-age".to_owned(), "users-by-team".to_owned()]
        )
    );
    assert_eq!(
        index_names(&partial),
        (
            vec!["users-by-team".to_owned()],
            vec!["users-by-age".to_owned(), "users-by-team".to_owned()]
        )
    );
    // Only the function differs: its role keeps the Query grant on both.
    let changed: Vec<&String> = full["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(logical_id, resource)| partial["Resources"][logical_id.as_str()] != **resource)
        .map(|(logical_id, _)| logical_id)
        .collect();
    assert_eq!(changed, ["ApiFunction"]);
    // Withholding nothing is `build`.
    let all = template::build_serving(&app, &settings, &template::ServingIndexes::all()).unwrap();
    assert_eq!(
        all.to_json(),
        template::build(&app, &settings).unwrap().to_json()
    );
}

/// The function's role may do exactly the item actions of each resource's
/// operations, on exactly its table.
#[test]
fn the_function_role_follows_the_operations() {
    let (app, settings) = example_declaration();
    let value = render(&app, &settings);
    let statements = &value["Resources"]["ApiFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"];
    let for_table = |logical_id: &str| {
        statements
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Resource"] == json!([{"Fn::GetAtt": [logical_id, "Arn"]}]))
            .map(|s| s["Action"].clone())
    };
    let check = |logical_id: &str, actions: Value| {
        assert_eq!(for_table(logical_id), Some(actions), "{logical_id}");
    };
    check(
        "UsersTable",
        json!([
            "dynamodb:Scan",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem"
        ]),
    );
    check(
        "OrderItemsTable",
        json!(["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"]),
    );
    check("AuditTable", json!(["dynamodb:Scan", "dynamodb:GetItem"]));
    check(
        "ApiFunctionLogGroup",
        json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
    );
    // A list served from an index is a Query on that index, named by its
    // ARN: each declared index of each table whose resource lists.
    let index_statement = |sid: &str| {
        as_list(statements)
            .into_iter()
            .find(|s| s["Sid"] == sid)
            .map(|s| (s["Action"].clone(), s["Resource"].clone()))
    };
    let index_arn = |table: &str, index: &str| {
        json!({"Fn::Sub": format!(
            "arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{table}/index/{index}"
        )})
    };
    assert_eq!(
        index_statement("UsersTableIndexes"),
        Some((
            json!(api::backend::dynamodb::INDEX_LIST_ACTIONS),
            json!([
                index_arn("shop-users", "users-by-gender"),
                index_arn("shop-users", "users-by-team-age")
            ])
        ))
    );
    assert_eq!(
        index_statement("AuditTableIndexes"),
        Some((
            json!(["dynamodb:Query"]),
            json!([index_arn("audit-log", "audit-by-day")])
        ))
    );
    // No index, no statement; and the memory resource's index is no table's.
    assert_eq!(index_statement("OrderItemsTableIndexes"), None);
    assert!(!statements.to_string().contains("mocks-by-name"));

    // An update-only resource: an update without fields reads the record
    // (GetItem), so the role needs it though `get` is not an operation.
    let (app, settings) =
        declaration("resources:\n  notes: { backend: dynamodb, operations: [create, update] }\n");
    let value = render(&app, &settings);
    let statements = as_list(
        &value["Resources"]["ApiFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"],
    );
    let notes = statements
        .iter()
        .find(|s| s["Resource"] == json!([{"Fn::GetAtt": ["NotesTable", "Arn"]}]))
        .unwrap();
    assert_eq!(
        notes["Action"],
        json!([
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:GetItem"
        ])
    );

    // Indexes on a resource that does not list: nothing reads them.
    let (app, settings) = declaration(
        "resources:\n  notes:\n    backend: dynamodb\n    operations: [get, create]\n    \
         indexes: [{ name: notes-by-day, partition_key: { name: day, type: string } }]\n",
    );
    let value = render(&app, &settings);
    let role = &value["Resources"]["ApiFunctionRole"]["Properties"];
    assert!(!role.to_string().contains("notes-by-day"), "{role}");
    assert!(!role.to_string().contains("dynamodb:Query"), "{role}");
    assert!(
        value["Resources"]["NotesTable"]["Properties"]["GlobalSecondaryIndexes"].is_array(),
        "the table has its index all the same"
    );
}

/// The pipeline renders with the declaration's GitHub values when
/// `stack.pipeline` is set, and every pipeline resource waits on the switch.
#[test]
fn the_pipeline_renders_behind_its_condition() {
    let pipeline_types = ["AWS::CodeBuild::Project"];
    for ((app, settings), enabled, repository) in [
        (
            example_declaration(),
            "true",
            "https://github.com/acme/shop.git",
        ),
        (declaration("resources: {}\n"), "false", ""),
    ] {
        let value = render(&app, &settings);
        let parameters = &value["Parameters"];
        assert_eq!(
            parameters[PARAM_ENABLE_PIPELINE]["Default"], enabled,
            "{}",
            settings.name
        );
        assert_eq!(parameters[PARAM_GITHUB_REPOSITORY]["Default"], repository);
        assert_eq!(
            value["Conditions"][CONDITION_PIPELINE],
            json!({"Fn::Equals": [{"Ref": PARAM_ENABLE_PIPELINE}, "true"]})
        );
        for kind in pipeline_types {
            let found = resources_of_type(&value, kind);
            assert_eq!(found.len(), 1, "{kind}");
        }
        // The account's one GitHub credential per region is never the
        // stack's: another stack (or a console connection) shares it.
        assert!(
            resources_of_type(&value, "AWS::CodeBuild::SourceCredential").is_empty(),
            "a SourceCredential would clobber and delete the account's credential"
        );
        for logical_id in ["PipelineLogGroup", "PipelineRole", "PipelineProject"] {
            assert_eq!(
                value["Resources"][logical_id]["Condition"], CONDITION_PIPELINE,
                "{logical_id}"
            );
        }
        assert_eq!(
            value["Outputs"][OUTPUT_BUILD_PROJECT]["Condition"],
            CONDITION_PIPELINE
        );
        let project = &value["Resources"]["PipelineProject"]["Properties"];
        assert_eq!(
            project["Source"]["Auth"],
            json!({"Type": "SECRETS_MANAGER", "Resource": {"Ref": PARAM_GITHUB_TOKEN_SECRET_ARN}}),
            "the project's own credential, read from the secret at every build"
        );
        assert_eq!(
            project["Environment"]["EnvironmentVariables"],
            json!([{
                "Name": "GITHUB_TOKEN",
                "Type": "SECRETS_MANAGER",
                "Value": {"Fn::Sub": "${GitHubTokenSecretArn}:Token"}
            }])
        );
        // A concurrency limit makes CodeBuild refuse the build of a push
        // made while another build runs.
        assert!(project.get("ConcurrentBuildLimit").is_none());
        assert!(
            value["Resources"]["PipelineProject"]
                .get("DependsOn")
                .is_none()
        );
        // Enabling it without GitHub values is refused by a rule.
        assert!(value["Rules"]["PipelineNeedsGitHub"]["Assertions"].is_array());
    }

    let (app, settings) = example_declaration();
    let value = render(&app, &settings);
    assert_eq!(
        value["Parameters"][PARAM_GITHUB_BRANCH]["Default"],
        "release"
    );
    // An ARN ends in a suffix Secrets Manager chose: the deployer looks it
    // up by the declaration's name and passes it; it has no default.
    assert!(
        value["Parameters"][PARAM_GITHUB_TOKEN_SECRET_ARN]
            .get("Default")
            .is_none()
    );
    let secret = pipeline_statement(&value, "GitHubTokenSecret");
    assert_eq!(
        secret["Resource"],
        json!([{"Ref": PARAM_GITHUB_TOKEN_SECRET_ARN}])
    );
    let project = &value["Resources"]["PipelineProject"]["Properties"];
    assert_eq!(project["Name"], "shop-deploy");
    assert_eq!(project["Source"]["Type"], "GITHUB");
    assert_eq!(
        project["Source"]["Location"],
        json!({"Ref": "GitHubRepository"})
    );
    assert_eq!(project["Source"]["BuildSpec"], "buildspec.yaml");
    assert_eq!(
        project["Triggers"]["FilterGroups"],
        json!([[
            {"Type": "EVENT", "Pattern": "PUSH"},
            {"Type": "HEAD_REF", "Pattern": {"Fn::Sub": "^refs/heads/${GitHubBranch}$"}}
        ]])
    );
    // x86_64 in the example: the build runs on the function's CPU.
    assert_eq!(project["Environment"]["Type"], "LINUX_CONTAINER");
    assert_eq!(project["Cache"]["Type"], "S3");
    assert_eq!(project["LogsConfig"]["CloudWatchLogs"]["Status"], "ENABLED");

    let (app, settings) = declaration("resources: {}\nstack: { arch: arm64 }\n");
    let value = render(&app, &settings);
    assert_eq!(
        value["Resources"]["PipelineProject"]["Properties"]["Environment"]["Type"],
        "ARM_CONTAINER"
    );
    assert_eq!(
        value["Resources"]["ApiFunction"]["Properties"]["Architectures"],
        json!(["arm64"])
    );
}

/// The statement of the pipeline role with this `Sid`.
fn pipeline_statement(template: &Value, sid: &str) -> Value {
    let policies = &template["Resources"]["PipelineRole"]["Properties"]["Policies"];
    as_list(&policies[0]["PolicyDocument"]["Statement"])
        .into_iter()
        .find(|statement| statement["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in the pipeline role"))
}

/// The pipeline may touch exactly this stack's tables, by name: stack
/// `shop`'s rights must not reach stack `shop-staging`'s `shop-staging-users`,
/// and it never creates or deletes a table (the tables are retained; a new
/// one changes this policy, which CI refuses to deploy).
#[test]
fn the_pipeline_may_touch_only_this_stacks_tables() {
    let (app, settings) = example_declaration();
    let value = render(&app, &settings);
    let tables = pipeline_statement(&value, "Tables");
    let resources: Vec<String> = as_list(&tables["Resource"])
        .iter()
        .map(|arn| arn["Fn::Sub"].as_str().unwrap().to_owned())
        .collect();
    let arn = |table: &str| {
        format!(
            "arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{table}"
        )
    };
    assert_eq!(
        resources,
        [arn("audit-log"), arn("shop-order_items"), arn("shop-users")]
    );
    let actions = as_list(&tables["Action"]);
    // `deploy --from-pipeline` reads which indexes serve before it plans
    // (`deployer::serving_indexes`): DescribeTable on the table's ARN,
    // which covers its indexes.
    assert!(
        actions.contains(&json!("dynamodb:DescribeTable")),
        "{actions:?}"
    );
    for never in ["dynamodb:CreateTable", "dynamodb:DeleteTable"] {
        assert!(!actions.contains(&json!(never)), "{never}: {actions:?}");
    }
    // Without a table there is no table statement (an empty Resource is an
    // invalid policy).
    let (app, settings) =
        declaration("resources: {}\nstack:\n  pipeline: { repository: https://github.com/o/r }\n");
    let value = render(&app, &settings);
    let policies = &value["Resources"]["PipelineRole"]["Properties"]["Policies"];
    assert!(
        !as_list(&policies[0]["PolicyDocument"]["Statement"])
            .iter()
            .any(|statement| statement["Sid"] == "Tables")
    );
}

/// API Gateway's CloudWatch role is one setting per account and region:
/// as a stack resource, a failed first create deleted the role while the
/// setting kept naming it (every REST API of the region then logs nothing),
/// and each stack replaced the role another had set. The deployer sets it
/// only where nobody has (`bootstrap::ensure_gateway_logging_role`).
#[test]
fn the_regions_api_gateway_role_is_not_the_stacks() {
    for (app, settings) in [example_declaration(), repository_declaration()] {
        let value = render(&app, &settings);
        assert!(resources_of_type(&value, "AWS::ApiGateway::Account").is_empty());
        for (logical_id, role) in resources_of_type(&value, "AWS::IAM::Role") {
            assert!(
                !role["Properties"]["AssumeRolePolicyDocument"]
                    .to_string()
                    .contains("apigateway.amazonaws.com"),
                "{logical_id}: no role API Gateway assumes"
            );
        }
        assert!(value["Resources"]["ApiStage"].get("DependsOn").is_none());
    }
}

#[test]
fn what_cannot_be_deployed_is_refused() {
    let refused = |yaml: &str, fragment: &str| {
        let (app, settings) = declaration(yaml);
        let error = template::build(&app, &settings).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(fragment), "{yaml}: {message}");
        error
    };
    let error = refused(
        "resources:\n  order_items: { backend: dynamodb }\n  order-items: { backend: dynamodb }\n",
        "would both be stored in the table with logical id OrderItemsTable",
    );
    assert!(matches!(error, TemplateError::DuplicateLogicalId { .. }));
    refused(
        "resources:\n  a: { backend: dynamodb, table: t }\n  b: { backend: dynamodb, table: t }\n",
        "would both be stored in DynamoDB table t",
    );
    refused(
        &format!("resources: {{}}\nstack: {{ name: {} }}\n", "a".repeat(60)),
        "is longer than 64 characters",
    );
}

// --- Stack options ----------------------------------------------------------------

/// The checkov findings a resource accepts, by id.
fn checkov_skips(template: &Value, logical_id: &str) -> Vec<String> {
    as_list(&template["Resources"][logical_id]["Metadata"]["checkov"]["skip"])
        .iter()
        .map(|skip| skip["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every action any statement of the template allows.
fn all_actions(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    statements(template, String::new(), &mut found);
    found
        .iter()
        .flat_map(|(_, statement)| as_list(&statement["Action"]))
        .map(|action| action.as_str().unwrap().to_owned())
        .collect()
}

const API_KEY_TYPES: [&str; 3] = [
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
];

#[test]
fn stage_throttling_follows_the_settings() {
    let (app, settings) = example_declaration();
    let value = render(&app, &settings);
    assert_eq!(
        value["Resources"]["ApiStage"]["Properties"]["MethodSettings"],
        json!([{"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 20,
                "ThrottlingBurstLimit": 40, "MetricsEnabled": false}])
    );
    // A key holder gets the stage's limits, no more.
    assert_eq!(
        value["Resources"]["ApiUsagePlan"]["Properties"]["Throttle"],
        json!({"RateLimit": 20, "BurstLimit": 40})
    );

    let (app, settings) = declaration("resources: {}\n");
    let setting =
        &render(&app, &settings)["Resources"]["ApiStage"]["Properties"]["MethodSettings"][0];
    assert_eq!(
        (
            &setting["ThrottlingRateLimit"],
            &setting["ThrottlingBurstLimit"]
        ),
        (&json!(50), &json!(100))
    );
}

#[test]
fn an_api_key_is_required_on_every_method_when_asked() {
    let (app, settings) = example_declaration();
    assert!(settings.api_key);
    let on = render(&app, &settings);
    for kind in API_KEY_TYPES {
        assert_eq!(resources_of_type(&on, kind).len(), 1, "{kind}");
    }
    let resources = &on["Resources"];
    assert_eq!(
        resources["ApiKey"]["Properties"],
        json!({"Name": "shop-api-key", "Enabled": true,
               "Description": "The key clients send as `x-api-key` to the API of shop."})
    );
    assert_eq!(
        resources["ApiUsagePlan"]["Properties"]["ApiStages"],
        json!([{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "ApiStage"}}])
    );
    assert_eq!(
        resources["ApiUsagePlanKey"]["Properties"],
        json!({"KeyId": {"Ref": "ApiKey"}, "KeyType": "API_KEY",
               "UsagePlanId": {"Ref": "ApiUsagePlan"}})
    );
    for method in ["ApiRootMethod", "ApiProxyMethod"] {
        assert_eq!(
            resources[method]["Properties"]["ApiKeyRequired"], true,
            "{method}"
        );
        // checkov sees the key: no "public API" suppression to keep.
        assert!(
            !checkov_skips(&on, method).contains(&"CKV_AWS_59".to_owned()),
            "{method}"
        );
    }
    // The id is an output; the value is generated by API Gateway and is in
    // no template, parameter or output.
    assert_eq!(
        on["Outputs"][OUTPUT_API_KEY_ID]["Value"],
        json!({"Ref": "ApiKey"})
    );
    assert!(on["Outputs"][OUTPUT_API_KEY_ID].get("Condition").is_none());
    // CI can update this key and plan, nothing broader; creating them is
    // a change to its own rights, deployed from a workstation.
    let pipeline = on["Resources"]["PipelineRole"].to_string();
    assert!(!pipeline.contains("/apikeys\""), "{pipeline}");
    assert!(pipeline.contains("/usageplans/${ApiUsagePlan}/*"));

    let (app, mut settings) = example_declaration();
    settings.api_key = false;
    let off = render(&app, &settings);
    for kind in API_KEY_TYPES {
        assert!(resources_of_type(&off, kind).is_empty(), "{kind}");
    }
    for method in ["ApiRootMethod", "ApiProxyMethod"] {
        assert!(
            off["Resources"][method]["Properties"]
                .get("ApiKeyRequired")
                .is_none()
        );
        assert_eq!(checkov_skips(&off, method), ["CKV_AWS_59"], "{method}");
    }
    assert!(off["Outputs"].get(OUTPUT_API_KEY_ID).is_none());
    assert!(
        !off["Resources"]["PipelineRole"]
            .to_string()
            .contains("usageplans")
    );
    // Switching the key changes the methods, so the stage gets a new
    // deployment (a Deployment is a snapshot of the methods).
    let deployments = |template: &Value| -> Vec<String> {
        resources_of_type(template, "AWS::ApiGateway::Deployment")
            .into_iter()
            .map(|(id, _)| id.clone())
            .collect()
    };
    assert_ne!(deployments(&on), deployments(&off));
}

#[test]
fn reserved_concurrency_is_set_only_when_asked() {
    let (app, settings) = example_declaration();
    let on = render(&app, &settings);
    assert_eq!(
        on["Resources"]["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"],
        5
    );
    assert!(!checkov_skips(&on, "ApiFunction").contains(&"CKV_AWS_115".to_owned()));

    let (app, settings) = repository_declaration();
    assert_eq!(settings.reserved_concurrency, None);
    let off = render(&app, &settings);
    assert!(
        off["Resources"]["ApiFunction"]["Properties"]
            .get("ReservedConcurrentExecutions")
            .is_none()
    );
    assert!(checkov_skips(&off, "ApiFunction").contains(&"CKV_AWS_115".to_owned()));
}

#[test]
fn tracing_follows_the_setting_and_so_do_its_permissions() {
    let xray = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];
    for (app, settings) in [repository_declaration(), example_declaration()] {
        assert!(settings.tracing, "on by default");
        let on = render(&app, &settings);
        let resources = &on["Resources"];
        assert_eq!(
            resources["ApiFunction"]["Properties"]["TracingConfig"],
            json!({"Mode": "Active"})
        );
        assert_eq!(resources["ApiStage"]["Properties"]["TracingEnabled"], true);
        let actions = all_actions(&on);
        for action in xray {
            assert!(actions.iter().any(|a| a == action), "{action}");
        }
        assert_eq!(checkov_skips(&on, "ApiStage"), ["CKV_AWS_120"]);
    }

    let (app, settings) =
        declaration("resources:\n  users: { backend: dynamodb }\nstack: { tracing: false }\n");
    let off = render(&app, &settings);
    let resources = &off["Resources"];
    assert!(
        resources["ApiFunction"]["Properties"]
            .get("TracingConfig")
            .is_none()
    );
    assert_eq!(resources["ApiStage"]["Properties"]["TracingEnabled"], false);
    assert!(
        !all_actions(&off).iter().any(|a| a.starts_with("xray:")),
        "no X-Ray permission without tracing"
    );
    assert!(
        !resources["ApiFunctionRole"]["Properties"]["Description"]
            .as_str()
            .unwrap()
            .contains("X-Ray")
    );
    // The stage's missing X-Ray is accepted, with the setting as the reason.
    assert_eq!(
        checkov_skips(&off, "ApiStage"),
        ["CKV_AWS_120", "CKV_AWS_73"]
    );
    check_least_privilege(&off);
}

/// Every option at once still renders a least-privilege template.
#[test]
fn all_options_together_stay_least_privilege() {
    let (app, settings) = declaration(
        "resources:\n  users: { backend: dynamodb }\nstack:\n  api_key: true\n  \
         reserved_concurrency: 2\n  tracing: false\n  throttle_rate: 1\n  throttle_burst: 1\n",
    );
    let value = render(&app, &settings);
    check_least_privilege(&value);
    assert_eq!(
        resources_of_type(&value, "AWS::ApiGateway::UsagePlan").len(),
        1
    );
}

// --- IAM: least privilege ---------------------------------------------------------

/// Actions AWS authorises on `Resource: "*"` only; each is allowed on `*`
/// here, and nothing else is.
const ONLY_ON_ANY_RESOURCE: &[(&str, &str)] = &[
    (
        "xray:PutTraceSegments",
        "X-Ray has no resource-level permissions",
    ),
    (
        "xray:PutTelemetryRecords",
        "X-Ray has no resource-level permissions",
    ),
    (
        "logs:DescribeLogGroups",
        "a List action without a resource type: CloudFormation's log group handler and \
         API Gateway look groups up with it",
    ),
];

/// Every `{"Statement": [...]}` anywhere in the template, with where it is.
fn statements(value: &Value, path: String, found: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("Statement") {
                for (index, statement) in list.iter().enumerate() {
                    found.push((format!("{path}/Statement/{index}"), statement.clone()));
                }
            }
            for (key, child) in map {
                statements(child, format!("{path}/{key}"), found);
            }
        }
        Value::Array(list) => {
            for (index, child) in list.iter().enumerate() {
                statements(child, format!("{path}/{index}"), found);
            }
        }
        _ => {}
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn check_least_privilege(template: &Value) {
    let mut found = Vec::new();
    statements(template, String::new(), &mut found);
    assert!(
        found.len() > 10,
        "the walk found only {} statements",
        found.len()
    );
    for (path, statement) in &found {
        assert_eq!(statement["Effect"], "Allow", "{path}");
        let actions = as_list(&statement["Action"]);
        assert!(!actions.is_empty(), "{path}: no action");
        assert!(statement.get("NotAction").is_none(), "{path}: NotAction");
        assert!(
            statement.get("NotResource").is_none(),
            "{path}: NotResource"
        );
        for action in &actions {
            let action = action
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {action}"));
            let (service, name) = action.split_once(':').unwrap();
            assert!(
                !action.contains('*') && !name.is_empty() && !service.is_empty(),
                "{path}: wildcard action {action}"
            );
        }
        if statement.get("Principal").is_some() {
            // A trust policy: who may assume the role, no resource.
            assert_eq!(statement["Action"], json!(["sts:AssumeRole"]), "{path}");
            continue;
        }
        let resources = as_list(&statement["Resource"]);
        assert!(!resources.is_empty(), "{path}: no resource");
        if resources.contains(&json!("*")) {
            assert_eq!(resources.len(), 1, "{path}: `*` beside narrower resources");
            for action in &actions {
                let action = action.as_str().unwrap();
                assert!(
                    ONLY_ON_ANY_RESOURCE
                        .iter()
                        .any(|(allowed, _)| *allowed == action),
                    "{path}: {action} on `*`, but AWS authorises it on a narrower resource"
                );
            }
        }
    }
    // No managed policy at all, let alone a full-access one.
    let text = template.to_string();
    for forbidden in ["FullAccess", "AdministratorAccess", "PowerUserAccess"] {
        assert!(!text.contains(forbidden), "{forbidden} in the template");
    }
    for (logical_id, role) in resources_of_type(template, "AWS::IAM::Role") {
        for arn in as_list(&role["Properties"]["ManagedPolicyArns"]) {
            let arn = arn.to_string();
            assert!(
                !arn.contains("FullAccess") && !arn.contains("AdministratorAccess"),
                "{logical_id}: {arn}"
            );
        }
    }
}

#[test]
fn no_statement_grants_more_than_it_must() {
    for (app, settings) in [
        example_declaration(),
        declaration("resources:\n  users: { backend: dynamodb }\n"),
    ] {
        check_least_privilege(&render(&app, &settings));
    }
    let (app, settings) = repository_declaration();
    check_least_privilege(&render(&app, &settings));
}

#[test]
fn the_least_privilege_check_catches_wildcards() {
    let caught = |statement: Value| {
        let template = json!({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
            "Policies": [{"PolicyDocument": {"Statement": [statement]}}]}}}});
        // Pad the walk's minimum with harmless statements.
        let mut padded = template.clone();
        let list =
            padded["Resources"]["R"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_array_mut()
                .unwrap();
        for _ in 0..10 {
            list.push(json!({"Effect": "Allow", "Action": ["s3:GetObject"],
                             "Resource": ["arn:aws:s3:::b/*"]}));
        }
        std::panic::catch_unwind(|| check_least_privilege(&padded)).is_err()
    };
    assert!(caught(
        json!({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"})
    ));
    assert!(caught(
        json!({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"})
    ));
    assert!(caught(
        json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    ));
    assert!(caught(
        json!({"Effect": "Allow", "Action": "logs:DescribeLogGroups",
                          "Resource": ["*", "arn:aws:logs:::x"]})
    ));
    assert!(!caught(
        json!({"Effect": "Allow", "Action": "logs:DescribeLogGroups",
                           "Resource": "*"})
    ));
}

// --- On the emulator ---------------------------------------------------------------

/// The repository's template deploys (pipeline off: the emulator does not
/// accept `AWS::CodeBuild::SourceCredential`) and is deleted again.
#[tokio::test(flavor = "multi_thread")]
async fn the_template_deploys_on_the_emulator() {
    let Some(config) = support::emulator_config().await else {
        return;
    };
    let (app, settings) = repository_declaration();
    deploy_and_delete(&config, &app, settings.clone()).await;
    // The options the committed template leaves off: the emulator creates
    // the key, the usage plan and its key (and enforces the key: 403
    // without it), and accepts reserved concurrency without applying it.
    let mut options = settings;
    options.api_key = true;
    options.reserved_concurrency = Some(2);
    options.tracing = false;
    let outputs = deploy_and_delete(&config, &app, options).await;
    let key_id = outputs
        .iter()
        .find(|(k, _)| k == OUTPUT_API_KEY_ID)
        .map(|(_, v)| v.clone());
    assert!(
        key_id.is_some_and(|id| !id.is_empty()),
        "no {OUTPUT_API_KEY_ID} output in {outputs:?}"
    );
}

/// Creates a stack of `app` with `settings` (under a fresh name), checks its
/// outputs, deletes it and its retained table; returns the outputs.
async fn deploy_and_delete(
    config: &aws_config::SdkConfig,
    app: &AppConfig,
    mut settings: StackSettings,
) -> Vec<(String, String)> {
    use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

    // A stack of its own: names (tables, function) never meet another test's.
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    settings.name = format!("tpl-{}", &suffix[..12]);
    let built: Template = template::build(app, &settings).unwrap();

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("{}-artifacts", settings.name);
    let key = "lambda/0000-dummy.zip";
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(dummy_zip().into())
        .send()
        .await
        .unwrap();

    let cloudformation = aws_sdk_cloudformation::Client::new(config);
    let parameter = |key: &str, value: &str| {
        Parameter::builder()
            .parameter_key(key)
            .parameter_value(value)
            .build()
    };
    cloudformation
        .create_stack()
        .stack_name(&settings.name)
        .template_body(built.to_yaml())
        .capabilities(Capability::from(REQUIRED_CAPABILITY))
        .parameters(parameter(PARAM_ARTIFACT_BUCKET, &bucket))
        .parameters(parameter(PARAM_ARTIFACT_KEY, key))
        .parameters(parameter(PARAM_ENABLE_PIPELINE, "false"))
        // No default: without a pipeline, the deployer passes it empty.
        .parameters(parameter(PARAM_GITHUB_TOKEN_SECRET_ARN, ""))
        .send()
        .await
        .unwrap();

    let status = wait_for_stack(&cloudformation, &settings.name, "CREATE").await;
    if status != Some(StackStatus::CreateComplete) {
        let failures = failed_resources(&cloudformation, &settings.name).await;
        panic!("stack ended {status:?}; failed resources:\n{failures}");
    }
    let stack = cloudformation
        .describe_stacks()
        .stack_name(&settings.name)
        .send()
        .await
        .unwrap();
    let outputs: Vec<(String, String)> = stack.stacks()[0]
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_owned(),
                o.output_value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let output = |key: &str| {
        outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no output {key} in {outputs:?}"))
    };
    assert!(output(OUTPUT_API_URL).ends_with("/prod/api"), "{outputs:?}");
    assert_eq!(
        output(OUTPUT_FUNCTION_NAME),
        format!("{}-api", settings.name)
    );
    // `deployer logs` reads this group: the one the function writes to.
    assert_eq!(
        output(OUTPUT_FUNCTION_LOG_GROUP),
        format!("/aws/lambda/{}-api", settings.name)
    );
    assert_eq!(
        output(&table_output_key("users")),
        format!("{}-users", settings.name)
    );
    assert!(
        !outputs.iter().any(|(k, _)| k == OUTPUT_BUILD_PROJECT),
        "the pipeline is off: {outputs:?}"
    );

    cloudformation
        .delete_stack()
        .stack_name(&settings.name)
        .send()
        .await
        .unwrap();
    let status = wait_for_stack(&cloudformation, &settings.name, "DELETE").await;
    assert!(
        matches!(status, None | Some(StackStatus::DeleteComplete)),
        "delete ended {status:?}"
    );
    // The table outlived the stack, as its DeletionPolicy says; clean it up.
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let table = format!("{}-users", settings.name);
    dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("retained table {table} is gone: {e:?}"));
    dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    outputs
}

/// A zip holding an executable `bootstrap`; never invoked here.
fn dummy_zip() -> Vec<u8> {
    use std::io::Write as _;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(b"#!/bin/sh\nexit 1\n").unwrap();
    zip.finish().unwrap();
    buffer.into_inner()
}

/// Polls until the stack leaves `<operation>_IN_PROGRESS`; `None` when it is
/// gone. Fails after two minutes.
async fn wait_for_stack(
    client: &aws_sdk_cloudformation::Client,
    name: &str,
    operation: &str,
) -> Option<aws_sdk_cloudformation::types::StackStatus> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = match client.describe_stacks().stack_name(name).send().await {
            Ok(output) => output
                .stacks()
                .first()
                .and_then(|s| s.stack_status().cloned()),
            Err(_) => None,
        };
        let in_progress = status
            .as_ref()
            .is_some_and(|s| s.as_str().ends_with("_IN_PROGRESS"));
        if !in_progress {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{operation} of {name} still {status:?} after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn failed_resources(client: &aws_sdk_cloudformation::Client, name: &str) -> String {
    let events = client
        .describe_stack_events()
        .stack_name(name)
        .send()
        .await
        .unwrap();
    events
        .stack_events()
        .iter()
        .filter(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
        })
        .map(|e| {
            format!(
                "  {} ({}): {}",
                e.logical_resource_id().unwrap_or_default(),
                e.resource_type().unwrap_or_default(),
                e.resource_status_reason().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
