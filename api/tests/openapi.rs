//! `/openapi.json` and `/docs`: the document is structurally valid OpenAPI 3.1,
//! describes exactly the configured resources and their operations, and stays
//! within what client generators read (no boolean schemas, a relative server).
//!
//! The structural checks here are what a validator would refuse first
//! (required fields, dangling `$ref`s, undeclared path parameters, duplicate
//! operationIds); `make schemathesis` then loads the same document with a full
//! OpenAPI validator and tests the server against it.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use api::backend::embedded::EmbeddedStore;
use api::backend::memory::MemoryBackend;
use api::config::Operation;
use api::index::{IndexConfig, KeyAttribute, KeyKind};
use api::openapi::{API_KEY_SCHEME, ID_PATTERN, OPENAPI_VERSION, SERVER_URL, document};
use api::record::{MAX_BODY_BYTES, MAX_ID_CHARS, RecordId};
use api::resource_map::DynamoDbTarget;
use api::{AppConfig, ResourceMap, ServedResource, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The resources of the repository's `infra/app.yaml`, embedded store in a fresh directory.
fn repository_resources() -> ResourceMap {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/app.yaml");
    let config = AppConfig::load(&path).unwrap();
    let data = support::ScratchDir::new("api-openapi");
    let store = EmbeddedStore::open(&data.path().join("api.redb")).unwrap();
    ResourceMap::from_config(&config, &DynamoDbTarget::Embedded(store)).unwrap()
}

fn key(name: &str, kind: KeyKind) -> KeyAttribute {
    KeyAttribute {
        name: name.to_owned(),
        kind,
    }
}

/// `things` allowing everything (`ttl` protected, two indexes), `audit`
/// read-only, `inbox` create-only.
fn mixed_resources() -> ResourceMap {
    let resource = |operations: Vec<Operation>| ServedResource {
        backend: Arc::new(MemoryBackend::with_records(Vec::new()).unwrap()),
        operations,
        protected: Vec::new(),
        indexes: Vec::new(),
    };
    let things = ServedResource {
        protected: vec!["ttl".to_owned()],
        indexes: vec![
            IndexConfig {
                name: "things-by-kind".to_owned(),
                partition_key: key("kind", KeyKind::String),
                sort_key: None,
            },
            IndexConfig {
                name: "things-by-owner-rank".to_owned(),
                partition_key: key("owner", KeyKind::String),
                sort_key: Some(key("rank", KeyKind::Number)),
            },
        ],
        ..resource(Operation::all())
    };
    ResourceMap::default()
        .with("things", things)
        .with("audit", resource(vec![Operation::List, Operation::Get]))
        .with("inbox", resource(vec![Operation::Create]))
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, content_type, body)
}

/// The value a local `$ref` (`#/a/b`) points at, if any.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// Follows `$ref`s until a concrete object.
fn deref<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        value = resolve(doc, reference).unwrap_or_else(|| panic!("dangling {reference}"));
    }
    value
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(reference)) => out.push(reference),
                    _ => collect_refs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// Responses API Gateway answers itself: they never carry our `x-request-id`.
const GATEWAY_RESPONSES: [&str; 2] = ["#/components/responses/E403", "#/components/responses/E429"];

/// The structural rules of OpenAPI 3.1 that a broken generator would break.
fn assert_valid_openapi(doc: &Value) {
    assert_eq!(doc["openapi"], OPENAPI_VERSION);
    assert!(doc["info"]["title"].is_string(), "info.title");
    assert!(doc["info"]["version"].is_string(), "info.version");
    let paths = doc["paths"].as_object().expect("paths is an object");

    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        assert!(
            reference.starts_with("#/components/") && resolve(doc, reference).is_some(),
            "$ref {reference} does not resolve"
        );
    }

    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let shared = item["parameters"].as_array().cloned().unwrap_or_default();
        for key in item.as_object().unwrap().keys() {
            assert!(
                key == "parameters" || METHODS.contains(&key.as_str()),
                "{path}: unexpected key {key}"
            );
        }
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let label = format!("{} {path}", method.to_uppercase());
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(operation_ids.insert(id.to_owned()), "duplicate {id}");

            let own = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let parameters: Vec<&Value> = shared
                .iter()
                .chain(own.iter())
                .map(|p| deref(doc, p))
                .collect();
            let mut declared = BTreeSet::new();
            for parameter in &parameters {
                let name = parameter["name"].as_str().expect("parameter name");
                let location = parameter["in"].as_str().expect("parameter in");
                assert!(
                    ["path", "query", "header", "cookie"].contains(&location),
                    "{label}: {name} in {location}"
                );
                assert!(parameter.get("schema").is_some(), "{label}: {name} schema");
                assert!(
                    declared.insert((name, location)),
                    "{label}: {name} declared twice"
                );
                if location == "path" {
                    assert_eq!(parameter["required"], true, "{label}: path {name}");
                    assert!(templated.contains(name), "{label}: {name} not in the path");
                }
            }
            for name in &templated {
                assert!(
                    declared.contains(&(*name, "path")),
                    "{label}: path parameter {name} not declared"
                );
            }

            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{label}: no responses");
            for (code, response) in responses {
                assert!(
                    code.len() == 3 && code.parse::<u16>().is_ok(),
                    "{label}: {code}"
                );
                let from_gateway = response["$ref"]
                    .as_str()
                    .is_some_and(|reference| GATEWAY_RESPONSES.contains(&reference));
                let response = deref(doc, response);
                assert!(
                    response["description"].is_string(),
                    "{label} {code}: description"
                );
                let headers = response["headers"].as_object();
                assert!(
                    from_gateway || headers.is_some_and(|h| h.contains_key("x-request-id")),
                    "{label} {code}: x-request-id"
                );
                for link in response["links"].as_object().into_iter().flatten() {
                    let target = link.1["operationId"].as_str().unwrap();
                    assert!(
                        all_operation_ids(doc).contains(target),
                        "{label}: link to {target}"
                    );
                }
            }
        }
    }
}

fn all_operation_ids(doc: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for method in METHODS {
            if let Some(id) = item.get(method).and_then(|op| op["operationId"].as_str()) {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// `(path, method)` pairs of the document, e.g. `("/audit", "get")`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((path.clone(), method.to_owned()));
            }
        }
    }
    found
}

#[tokio::test]
async fn served_document_is_valid_openapi_for_the_repository_declaration() {
    let resources = repository_resources();
    let expected = document(&resources);
    let app = router(resources);
    let (status, content_type, body) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, expected);
    assert_valid_openapi(&served);

    let mut want = BTreeSet::from([("/ping".to_owned(), "get".to_owned())]);
    for name in ["mocks", "users"] {
        for method in ["get", "post"] {
            want.insert((format!("/{name}"), method.to_owned()));
        }
        for method in ["get", "put", "delete"] {
            want.insert((format!("/{name}/{{id}}"), method.to_owned()));
        }
    }
    assert_eq!(operations(&served), want);
}

#[tokio::test]
async fn paths_follow_each_resources_operations() {
    let doc = document(&mixed_resources());
    assert_valid_openapi(&doc);
    let pairs = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        operations(&doc),
        pairs(&[
            ("/ping", "get"),
            ("/audit", "get"),
            ("/audit/{id}", "get"),
            ("/inbox", "post"),
            ("/things", "get"),
            ("/things", "post"),
            ("/things/{id}", "get"),
            ("/things/{id}", "put"),
            ("/things/{id}", "delete"),
        ])
    );
    // A create-only resource has no item path, and its 201 links nowhere.
    assert!(doc["paths"]["/inbox/{id}"].is_null());
    assert!(doc["paths"]["/inbox"]["post"]["responses"]["201"]["links"].is_null());
}

#[test]
fn a_create_links_to_the_operations_on_the_created_record() {
    let doc = document(&mixed_resources());
    let links = &doc["paths"]["/things"]["post"]["responses"]["201"]["links"];
    for (link, target) in [
        ("GetCreated", "get_things"),
        ("UpdateCreated", "update_things"),
        ("DeleteCreated", "delete_things"),
    ] {
        assert_eq!(links[link]["operationId"], target, "{link}");
        assert_eq!(links[link]["parameters"]["id"], "$response.body#/id");
    }
    assert_eq!(
        doc["paths"]["/things"]["post"]["responses"]["201"]["headers"]["Location"]["$ref"],
        "#/components/headers/Location"
    );
}

#[test]
fn the_document_states_the_limits_the_parsers_enforce() {
    let doc = document(&mixed_resources());
    let id = &doc["components"]["schemas"]["Id"];
    assert_eq!(id["minLength"], 1);
    assert_eq!(id["pattern"], ID_PATTERN);
    // A response carries whatever key the table holds, other tools' included.
    for record in ["Record", "ListedRecord"] {
        let stored = deref(
            &doc,
            &doc["components"]["schemas"][record]["properties"]["id"],
        );
        assert_eq!(stored["type"], "string", "{record}");
        assert!(stored.get("pattern").is_none() && stored.get("maxLength").is_none());
    }
    // Protected and service attributes may not appear in a body: their names
    // are excluded, create and update alike.
    for (method, path) in [("post", "/things"), ("put", "/things/{id}")] {
        let body =
            &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        let names = &body["propertyNames"];
        assert_eq!(
            names["not"]["enum"],
            serde_json::json!(["ttl", api::backend::VERSION_ATTRIBUTE]),
            "{method}"
        );
        assert_eq!(names["maxLength"], api::record::MAX_ATTRIBUTE_NAME_LEN);
        assert_eq!(names["minLength"], 1);
        assert_eq!(body["maxProperties"], api::record::MAX_ATTRIBUTES);
    }
    let body =
        &doc["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], serde_json::json!(["id"]));
    let limit = &doc["components"]["parameters"]["Limit"]["schema"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (&Value::from(1), &Value::from(100), &Value::from(20))
    );
    assert!(
        doc["components"]["responses"]["E413"]["description"]
            .as_str()
            .unwrap()
            .contains(&MAX_BODY_BYTES.to_string())
    );
    for name in ["limit", "offset", "fields", "filters"] {
        let listed = doc["paths"]["/things"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| deref(&doc, p)["name"].as_str().unwrap())
            .any(|n| n == name);
        assert!(listed, "{name}");
    }
    let filters = doc["components"]["parameters"]["Filters"]["description"]
        .as_str()
        .unwrap();
    assert!(
        filters.contains("field:operator[:value]") && filters.contains("JSON array"),
        "{filters}"
    );
}

/// Where a boolean may stand in an OpenAPI document without being a schema:
/// the Parameter, Header and Request Body flags. Under `enum`, `const`,
/// `default` and examples a boolean is a value, not a schema.
const BOOLEAN_FIELDS: [&str; 7] = [
    "required",
    "deprecated",
    "explode",
    "allowReserved",
    "allowEmptyValue",
    "readOnly",
    "writeOnly",
];
const VALUE_FIELDS: [&str; 5] = ["enum", "const", "default", "example", "examples"];

/// The JSON pointers of every boolean schema (`true`/`false` where a schema
/// goes) in `value`.
fn boolean_schemas(value: &Value, pointer: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let here = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                match item {
                    Value::Bool(_) if !BOOLEAN_FIELDS.contains(&key.as_str()) => found.push(here),
                    _ if VALUE_FIELDS.contains(&key.as_str()) => {}
                    _ => boolean_schemas(item, &here, found),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let here = format!("{pointer}/{index}");
                match item {
                    Value::Bool(_) => found.push(here),
                    _ => boolean_schemas(item, &here, found),
                }
            }
        }
        _ => {}
    }
}

/// The declarations whose documents the generators must read: the
/// repository's, one with every kind of resource, and both with a key.
fn documents() -> Vec<(&'static str, Value)> {
    vec![
        ("repository", document(&repository_resources())),
        (
            "repository with api_key",
            document(&repository_resources().requiring_api_key(true)),
        ),
        ("mixed", document(&mixed_resources())),
        (
            "mixed with api_key",
            document(&mixed_resources().requiring_api_key(true)),
        ),
    ]
}

/// A list says how it can be ordered and which filters an index serves.
#[test]
fn lists_document_order_and_their_indexes() {
    let doc = document(&mixed_resources());
    let list = &doc["paths"]["/things"]["get"];
    let order = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "order")
        .expect("an `order` parameter");
    assert_eq!(
        order["schema"]["enum"],
        serde_json::json!(["rank", "-rank"])
    );
    let description = order["description"].as_str().unwrap();
    assert!(
        description.contains("`rank` with `filters=owner:eq:…` (index `things-by-owner-rank`)"),
        "{description}"
    );
    let reply = &list["responses"]["200"];
    let text = reply["description"].as_str().unwrap();
    for fragment in [
        "Index `things-by-kind`: a list with `filters=kind:eq:…` (a string) is read from it",
        "in order of `rank` (a number)",
        "eventually consistent",
    ] {
        assert!(text.contains(fragment), "{fragment}: {text}");
    }
    let served_by = deref(&doc, &reply["headers"]["x-served-by"]);
    assert!(
        served_by["description"]
            .as_str()
            .unwrap()
            .contains("index <name>")
    );
    // Without a sorted index there is nothing to order by.
    let audit = &doc["paths"]["/audit"]["get"]["parameters"];
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "order")
    );
}

/// openapi-python-client, among others, refuses a document with a boolean
/// schema anywhere (`"_version": false` once was one).
#[test]
fn no_schema_is_a_boolean() {
    for (label, doc) in documents() {
        let mut found = Vec::new();
        boolean_schemas(&doc, "", &mut found);
        assert!(found.is_empty(), "{label}: boolean schemas at {found:?}");
    }
    // The walk does find one.
    let mut found = Vec::new();
    boolean_schemas(
        &serde_json::json!({"schema": {"properties": {"_version": false}}, "required": true}),
        "",
        &mut found,
    );
    assert_eq!(found, ["/schema/properties/_version"]);
}

/// RFC 3986 §5.2: a reference `./segment` against `base` is base's path up
/// to its last `/`, then `segment`.
fn resolve_against(base: &str, reference: &str) -> String {
    let segment = reference.strip_prefix("./").unwrap();
    let directory = &base[..=base.rfind('/').unwrap()];
    format!("{directory}{segment}")
}

/// One relative server entry is right locally and behind the `prod` stage.
#[test]
fn the_server_is_relative_to_the_document() {
    for (label, doc) in documents() {
        let servers = doc["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 1, "{label}");
        let url = servers[0]["url"].as_str().unwrap();
        assert_eq!(url, SERVER_URL);
        assert!(
            !url.contains("://") && !url.starts_with('/'),
            "{label}: {url}"
        );
        // Every path is appended to the resolved server URL, which must not
        // end in `/` (no `//` in between).
        for (document_url, ping) in [
            (
                "http://127.0.0.1:8000/openapi.json",
                "http://127.0.0.1:8000/api/ping",
            ),
            (
                "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/openapi.json",
                "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/api/ping",
            ),
        ] {
            let base = resolve_against(document_url, url);
            assert_eq!(format!("{base}/ping"), ping, "{label}");
            assert!(doc["paths"]["/ping"].is_object(), "{label}");
        }
    }
}

/// The scheme exists, and applies everywhere, exactly when the gateway asks
/// for a key; otherwise the document says plainly that nothing is needed.
#[test]
fn the_api_key_is_a_security_scheme_only_when_required() {
    for (label, doc) in documents() {
        let required = label.ends_with("with api_key");
        let schemes = &doc["components"]["securitySchemes"];
        if required {
            assert_eq!(
                schemes[API_KEY_SCHEME],
                serde_json::json!({
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": schemes[API_KEY_SCHEME]["description"],
                }),
                "{label}"
            );
            assert_eq!(
                doc["security"],
                serde_json::json!([{ API_KEY_SCHEME: [] }]),
                "{label}"
            );
        } else {
            assert!(schemes.is_null(), "{label}");
            assert_eq!(doc["security"], serde_json::json!([]), "{label}");
        }
        // No operation overrides it: API Gateway asks for the key on every
        // path, /api/ping included.
        for item in doc["paths"].as_object().unwrap().values() {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    assert!(operation.get("security").is_none(), "{label}");
                    let forbidden = &operation["responses"]["403"];
                    assert_eq!(forbidden.is_object(), required, "{label} {method}");
                }
            }
        }
    }
}

/// What the linter's recommended rules ask for: a 4xx on every operation,
/// described tags, a license.
#[test]
fn operations_tags_and_info_are_complete() {
    for (label, doc) in documents() {
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let codes: Vec<&String> =
                    operation["responses"].as_object().unwrap().keys().collect();
                assert!(
                    codes.iter().any(|code| code.starts_with('4')),
                    "{label}: {method} {path} has no 4xx in {codes:?}"
                );
                // API Gateway's throttling answers every method.
                assert!(
                    codes.contains(&&"429".to_owned()),
                    "{label}: {method} {path}"
                );
            }
        }
        let tags = doc["tags"].as_array().unwrap();
        assert!(!tags.is_empty());
        for tag in tags {
            let description = tag["description"].as_str().unwrap_or_default();
            assert!(
                description.contains(tag["name"].as_str().unwrap()),
                "{label}: {tag}"
            );
        }
        let license = &doc["info"]["license"];
        assert_eq!(license["name"], env!("CARGO_PKG_LICENSE"), "{label}");
        assert_eq!(license["identifier"], env!("CARGO_PKG_LICENSE"), "{label}");
    }
}

/// Each operation lists the 4xx statuses its handler can answer
/// (`router.rs`, `error.rs`), and no other.
#[test]
fn each_operation_lists_the_client_errors_it_answers() {
    let doc = document(&mixed_resources());
    let client_errors = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|code| code.starts_with('4'))
            .cloned()
            .collect()
    };
    for (path, method, expected) in [
        ("/ping", "get", &["429"][..]),
        ("/things", "get", &["400", "429"]),
        ("/things", "post", &["400", "409", "413", "429"]),
        ("/things/{id}", "get", &["400", "404", "429"]),
        ("/things/{id}", "put", &["400", "404", "412", "413", "429"]),
        ("/things/{id}", "delete", &["400", "404", "412", "429"]),
    ] {
        assert_eq!(client_errors(path, method), expected, "{method} {path}");
    }
}

/// The pattern, run by a regex engine on the id rules' edge cases, must
/// accept and refuse exactly what `RecordId::parse` does (lengths are
/// `maxLength`'s job). Its `\uXXXX` escapes and classes mean the same in the
/// `regex` crate and in ECMA-262, the dialect OpenAPI patterns are written in.
/// Whether the document's `Id` schema accepts `id`: its `minLength` and
/// `pattern`, and one of its `anyOf` bounds (each a `maxLength` in
/// characters, with a `pattern` or not). A regex engine stands in for the
/// ECMA-262 one.
fn id_schema_accepts(schema: &Value, id: &str) -> bool {
    let chars = id.chars().count() as u64;
    let matches = |pattern: &Value| {
        pattern
            .as_str()
            .is_none_or(|p| regex::Regex::new(p).unwrap().is_match(id))
    };
    chars >= schema["minLength"].as_u64().unwrap()
        && matches(&schema["pattern"])
        && schema["anyOf"].as_array().unwrap().iter().any(|bound| {
            chars <= bound["maxLength"].as_u64().unwrap() && matches(&bound["pattern"])
        })
}

/// The id's length rule counts bytes of UTF-8, which JSON Schema cannot: the
/// schema accepts only ids the server accepts (any 256 characters, ASCII up to
/// 1024), and refuses every over-long ASCII one, so the boundary clients and
/// fuzzers probe is exact.
#[test]
fn the_id_schema_accepts_only_ids_the_server_accepts() {
    let doc = document(&mixed_resources());
    let schema = &doc["components"]["schemas"]["Id"];
    let server_accepts = |id: &str| RecordId::parse(id).is_ok();
    let cases = [
        ("i".repeat(1024), true),
        ("i".repeat(1025), false),
        ("🦀".repeat(MAX_ID_CHARS), true),
        ("🦀".repeat(MAX_ID_CHARS + 1), false),
        ("é".repeat(MAX_ID_CHARS), true),
        (format!("{}é", "i".repeat(1022)), false),
        ("Ana María".to_owned(), true),
    ];
    for (id, schema_accepts) in &cases {
        assert_eq!(
            id_schema_accepts(schema, id),
            *schema_accepts,
            "{} characters, {} bytes",
            id.chars().count(),
            id.len()
        );
        if *schema_accepts {
            assert!(server_accepts(id), "schema-valid but refused: {id}");
        }
    }
    // Where the schema is conservative: the server takes these, the schema
    // does not promise them.
    assert!(server_accepts(&format!("{}é", "i".repeat(1022))));
    assert!(server_accepts(&"é".repeat(MAX_ID_CHARS + 1)));
    assert!(!server_accepts(&"é".repeat(513)));
}

#[test]
fn the_id_pattern_agrees_with_the_id_rules() {
    let pattern = regex::Regex::new(ID_PATTERN).unwrap();
    for id in [
        "000-1",
        "a",
        ".a",
        "..a",
        "...",
        "a.",
        "a..",
        ".",
        "..",
        "",
        "a/b",
        "/",
        "a b",
        " ",
        "é",
        "cafe\u{301}",
        "@:~_-",
        ".-",
        "..-",
        "a%2F",
        "100%",
        "a+b@example.com",
        "Ana María",
        "ürün-7",
        "a#b?c",
        "日本",
        "🦀",
        "a\tb",
        "a\nb",
        "\r",
        "\u{0}",
        "a\u{7f}",
        "a\u{85}",
        "a\u{9f}",
        "a\u{a0}",
        "a\u{200b}",
        ". a",
        "..\u{1}",
    ] {
        assert_eq!(
            pattern.is_match(id),
            RecordId::parse(id).is_ok(),
            "{id:?} by the pattern vs the rules"
        );
    }
}

#[tokio::test]
async fn docs_is_a_self_contained_page_rendering_the_document() {
    let app = router(mixed_resources());
    let (status, content_type, body) = get(&app, "/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    // Relative, so it resolves to /openapi.json here and to /prod/openapi.json
    // behind API Gateway.
    assert!(page.contains(r#"fetch("openapi.json")"#));
    // Nothing from another origin: tests and users never need the network.
    for external in ["http://", "https://", "//cdn", "src=\"/"] {
        assert!(!page.contains(external), "{external}");
    }
    let (status, _, _) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
}
