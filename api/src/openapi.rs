//! The OpenAPI 3.1 description of the API, served at `/openapi.json`, and the
//! `/docs` page that renders it.
//!
//! The document is built once, by [`document`], on its first request, from
//! the same [`ResourceMap`] the handlers serve: a path pair per resource, with only the operations the
//! resource allows, so the description cannot drift from what is routed. The
//! limits it states are the constants the parsers enforce ([`crate::record`],
//! [`crate::query`]). schemathesis (`make schemathesis`) checks the server
//! against it, so every schema here says exactly what the server accepts and
//! answers, no more and no less.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::backend::VERSION_ATTRIBUTE;
use crate::config::Operation;
use crate::mapper::ResourceMap;
use crate::preconditions::MAX_ENTITY_TAGS;
use crate::query::{DEFAULT_LIMIT, MAX_FIELDS, MAX_FILTERS, MAX_LIMIT};
use crate::record::{
    MAX_ATTRIBUTE_NAME_LEN, MAX_ATTRIBUTES, MAX_BODY_BYTES, MAX_ID_CHARS, MAX_ID_LEN,
};
use crate::response::json_response;

/// The OpenAPI version of [`document`]: 3.1, whose schemas are JSON Schema
/// 2020-12, because 3.0 cannot state the attribute-name limits (`propertyNames`).
pub const OPENAPI_VERSION: &str = "3.1.0";

/// [`crate::record::RecordId`]'s rules as a regular expression (its length is
/// `maxLength`): no control character (Unicode's Cc: U+0000-U+001F,
/// U+007F-U+009F), no `/`, and not `.` or `..`. Written without look-ahead so
/// every JSON Schema engine and generator (schemathesis' hypothesis included)
/// reads it the same way: a first character other than `.`, or `.` and a
/// non-dot, or `..` and anything, then anything.
pub const ID_PATTERN: &str = r"^(?:[^\u0000-\u001F\u007F-\u009F/.]|\.[^\u0000-\u001F\u007F-\u009F/.]|\.\.[^\u0000-\u001F\u007F-\u009F/])[^\u0000-\u001F\u007F-\u009F/]*$";

/// The `ETag` the router sends: a strong tag holding the record's version.
pub const ETAG_PATTERN: &str = r#"^"(0|[1-9][0-9]*)"$"#;

/// The value of `If-Match` / `If-None-Match` the router parses: `*`, or a
/// comma-separated list (empty elements allowed) of 1 to [`MAX_ENTITY_TAGS`]
/// entity tags, each `"..."` or `W/"..."` of visible ASCII but `"`.
fn entity_tags_pattern() -> String {
    let tag = r#"(?:W/)?"[!#-~]*""#;
    let more = MAX_ENTITY_TAGS - 1;
    format!(
        r"^(?:[ \t]*\*[ \t]*|[ \t,]*{tag}(?:[ \t]*,[ \t,]*{tag}){{0,{more}}}[ \t]*(?:,[ \t,]*)?)$"
    )
}

/// The document of a resource map, rendered on its first request and kept.
/// Not at start-up: building it was 40% of a start-up's instructions
/// (callgrind), and most processes, Lambda environments above all, never
/// serve it.
#[derive(Debug)]
pub struct ApiDescription {
    resources: Arc<ResourceMap>,
    json: OnceLock<Bytes>,
}

impl ApiDescription {
    pub fn new(resources: Arc<ResourceMap>) -> Self {
        Self {
            resources,
            json: OnceLock::new(),
        }
    }

    /// `GET /openapi.json`.
    pub fn json_response(&self) -> Response {
        let json = self
            .json
            .get_or_init(|| document(&self.resources).to_string().into());
        json_response(json.clone())
    }
}

/// `GET /docs`: a self-contained page (no CDN, nothing loaded but the
/// document) that renders the operations of `openapi.json`.
pub fn docs_response() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            // The page runs its own inline script and fetches only the document.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; \
                     style-src 'unsafe-inline'; connect-src 'self'",
                ),
            ),
        ],
        DOCS_PAGE,
    )
        .into_response()
}

/// The page of [`docs_response`]. It fetches `openapi.json` relative to its
/// own URL, so it also works behind API Gateway's `/prod` stage, and writes
/// everything with `textContent` (never HTML from the document).
pub const DOCS_PAGE: &str = include_str!("openapi_docs.html");

/// The one server, relative to the document's own URL. OpenAPI 3.1.0, Server
/// Object: its `url` "MAY be relative, to indicate that the host location is
/// relative to the location where the OpenAPI document is being served"; and
/// Paths Object: a path "is appended (no relative URL resolution) to the
/// expanded URL from the Server Object's `url` field". `./api` against
/// `http://127.0.0.1:8000/openapi.json` is `http://127.0.0.1:8000/api`, and
/// against `https://{id}.execute-api.{region}.amazonaws.com/prod/openapi.json`
/// it is `.../prod/api`: right in both places, without knowing the stage.
/// Not `.`: it resolves to a URL ending in `/`, and appending `/ping` to it
/// would give `//ping`.
pub const SERVER_URL: &str = "./api";

/// The name of the API key's security scheme (`stack.api_key: true`).
pub const API_KEY_SCHEME: &str = "ApiKey";

/// The OpenAPI document for `resources`. Paths are relative to [`SERVER_URL`]:
/// `/ping`, `/{resource}` and `/{resource}/{id}` are the router's
/// `/api/ping`, `/api/{resource}` and `/api/{resource}/{id}`.
pub fn document(resources: &ResourceMap) -> Value {
    let gateway = Gateway {
        api_key: resources.api_key_required(),
    };
    let mut paths = Map::new();
    paths.insert("/ping".to_owned(), ping_path(gateway));
    let mut tags = Vec::new();
    for name in resources.names() {
        let Some(resource) = resources.get(name) else {
            continue;
        };
        let allows = |operation| resource.allows(operation);
        let collection = collection_path(name, &allows, &resource.protected, gateway);
        if !collection.is_empty() {
            paths.insert(format!("/{name}"), Value::Object(collection));
        }
        let item = item_path(name, &allows, &resource.protected, gateway);
        if item.len() > 1 {
            paths.insert(format!("/{name}/{{id}}"), Value::Object(item));
        }
        tags.push(json!({ "name": name, "description": tag_description(name, resource) }));
    }
    let security = if gateway.api_key {
        json!([{ API_KEY_SCHEME: [] }])
    } else {
        // Explicitly none: every operation is open.
        json!([])
    };
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "CRUD API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "A generic CRUD API over the resources of `infra/app.yaml`. Every error \
                 body is `{{\"error\": \"...\"}}` (but API Gateway's own 403 and 429, \
                 `{{\"message\": \"...\"}}`). Request bodies are parsed as JSON whatever \
                 their Content-Type and may be up to {MAX_BODY_BYTES} bytes (413 beyond). \
                 A trailing slash is served like the path without it. Paths are relative \
                 to the server `{SERVER_URL}`, itself relative to this document's URL: \
                 `http://127.0.0.1:8000/api/...` locally, \
                 `https://{{api}}.execute-api.{{region}}.amazonaws.com/prod/api/...` behind \
                 API Gateway."
            ),
            // The workspace's `license` (Cargo.toml), an SPDX identifier.
            "license": { "name": env!("CARGO_PKG_LICENSE"), "identifier": env!("CARGO_PKG_LICENSE") },
        },
        "servers": [{
            "url": SERVER_URL,
            "description": "This API, where this document is served from: the local \
                            server, or the `prod` stage of API Gateway.",
        }],
        "security": security,
        "tags": tags,
        "paths": paths,
        "components": components(gateway),
    })
}

/// What API Gateway adds in front of the function, for the document: its own
/// 429 (stage throttling, always) and 403 (a missing or wrong `x-api-key`,
/// with `stack.api_key: true`). A local server answers neither.
#[derive(Debug, Clone, Copy)]
struct Gateway {
    api_key: bool,
}

impl Gateway {
    /// The statuses API Gateway answers itself on every method.
    fn errors(self) -> &'static [&'static str] {
        if self.api_key {
            &["403", "429"]
        } else {
            &["429"]
        }
    }
}

/// What a tag says of its resource: where it lives, what it allows.
fn tag_description(name: &str, resource: &crate::mapper::Resource) -> String {
    let operations = [
        (Operation::List, "list"),
        (Operation::Get, "get"),
        (Operation::Create, "create"),
        (Operation::Update, "update"),
        (Operation::Delete, "delete"),
    ]
    .iter()
    .filter(|(operation, _)| resource.allows(*operation))
    .map(|(_, label)| *label)
    .collect::<Vec<_>>()
    .join(", ");
    let mut text = format!(
        "The records of `{name}`, at `/api/{name}` and `/api/{name}/{{id}}`. Allowed: \
         {operations}; any other method is a 405."
    );
    if !resource.protected.is_empty() {
        let protected = resource
            .protected
            .iter()
            .map(|attribute| format!("`{attribute}`"))
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!(" Clients may not write {protected}."));
    }
    text
}

fn ping_path(gateway: Gateway) -> Value {
    json!({
        "get": {
            "operationId": "ping",
            "summary": "Liveness check",
            "responses": responses(json!({
                "200": {
                    "description": "The service is up.",
                    "headers": { "x-request-id": { "$ref": "#/components/headers/RequestId" } },
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["result"],
                        "properties": { "result": { "type": "string", "enum": ["pong"] } },
                        // Only `result`: `required` and one member at most,
                        // rather than a boolean schema (`additionalProperties: false`).
                        "maxProperties": 1,
                    } } },
                },
            }), &[], gateway),
        },
    })
}

/// `GET` (list) and `POST` on `/api/{name}`, as far as the resource allows them.
fn collection_path(
    name: &str,
    allows: &dyn Fn(Operation) -> bool,
    protected: &[String],
    gateway: Gateway,
) -> Map<String, Value> {
    let mut path = Map::new();
    if allows(Operation::List) {
        path.insert(
            "get".to_owned(),
            json!({
                "operationId": format!("list_{name}"),
                "tags": [name],
                "summary": format!("List {name}, a page at a time"),
                "parameters": [
                    { "$ref": "#/components/parameters/Limit" },
                    { "$ref": "#/components/parameters/Offset" },
                    { "$ref": "#/components/parameters/Fields" },
                    { "$ref": "#/components/parameters/Filters" },
                ],
                "responses": responses(json!({
                    "200": {
                        "description": "A page of records, in a stable order. With `fields`, \
                                        records hold only the named attributes (`id` too only \
                                        when named).",
                        "headers": {
                            "x-request-id": { "$ref": "#/components/headers/RequestId" },
                            "next-offset": { "$ref": "#/components/headers/NextOffset" },
                            "Link": { "$ref": "#/components/headers/Link" },
                        },
                        "content": { "application/json": { "schema": {
                            "type": "array",
                            "maxItems": MAX_LIMIT,
                            "items": { "$ref": "#/components/schemas/ListedRecord" },
                        } } },
                    },
                }), &["400", "500", "503"], gateway),
            }),
        );
    }
    if allows(Operation::Create) {
        let mut created = json!({
            "description": "Created; the stored record.",
            "headers": {
                "x-request-id": { "$ref": "#/components/headers/RequestId" },
                "Location": { "$ref": "#/components/headers/Location" },
                "ETag": { "$ref": "#/components/headers/ETag" },
            },
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Record" } } },
        });
        let links = record_links(name, allows);
        if !links.is_empty() {
            created["links"] = Value::Object(links);
        }
        path.insert(
            "post".to_owned(),
            json!({
                "operationId": format!("create_{name}"),
                "tags": [name],
                "summary": format!("Create a record in {name}; never overwrites"),
                "requestBody": {
                    "required": true,
                    "description": format!(
                        "A JSON object of any shape with a string `id`; at most \
                         {MAX_BODY_BYTES} bytes."
                    ),
                    "content": { "application/json": { "schema": body_schema(true, protected) } },
                },
                "responses": responses(
                    json!({ "201": created }),
                    &["400", "409", "413", "500", "503"],
                    gateway,
                ),
            }),
        );
    }
    path
}

/// `GET`, `PUT` and `DELETE` on `/api/{name}/{id}`, as far as the resource
/// allows them; the map always holds the path-level `id` parameter.
fn item_path(
    name: &str,
    allows: &dyn Fn(Operation) -> bool,
    protected: &[String],
    gateway: Gateway,
) -> Map<String, Value> {
    let mut path = Map::new();
    path.insert(
        "parameters".to_owned(),
        json!([{ "$ref": "#/components/parameters/Id" }]),
    );
    let record_reply = |description: &str| {
        json!({
            "description": description,
            "headers": {
                "x-request-id": { "$ref": "#/components/headers/RequestId" },
                "ETag": { "$ref": "#/components/headers/ETag" },
            },
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Record" } } },
        })
    };
    if allows(Operation::Get) {
        path.insert(
            "get".to_owned(),
            json!({
                "operationId": format!("get_{name}"),
                "tags": [name],
                "summary": format!("Read one record of {name}"),
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatch" }],
                "responses": responses(
                    json!({
                        "200": record_reply("The record."),
                        "304": {
                            "description": "`If-None-Match` names the current ETag; no body.",
                            "headers": {
                                "x-request-id": { "$ref": "#/components/headers/RequestId" },
                                "ETag": { "$ref": "#/components/headers/ETag" },
                            },
                        },
                    }),
                    &["400", "404", "500", "503"],
                    gateway,
                ),
            }),
        );
    }
    if allows(Operation::Update) {
        path.insert(
            "put".to_owned(),
            json!({
                "operationId": format!("update_{name}"),
                "tags": [name],
                "summary": format!("Merge attributes into a record of {name}; never creates"),
                "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                "requestBody": {
                    "required": true,
                    "description": format!(
                        "The top-level attributes to set (`null` sets an attribute to null). \
                         `id` may be repeated but must equal the path's: an id never changes \
                         (a different one is a 400). At most {MAX_BODY_BYTES} bytes."
                    ),
                    "content": { "application/json": { "schema": body_schema(false, protected) } },
                },
                "responses": responses(
                    json!({ "200": record_reply("The whole record after the change.") }),
                    &["400", "404", "412", "413", "500", "503"],
                    gateway,
                ),
            }),
        );
    }
    if allows(Operation::Delete) {
        path.insert(
            "delete".to_owned(),
            json!({
                "operationId": format!("delete_{name}"),
                "tags": [name],
                "summary": format!("Delete a record of {name}"),
                "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                "responses": responses(json!({
                    "204": {
                        "description": "Deleted; no body.",
                        "headers": { "x-request-id": { "$ref": "#/components/headers/RequestId" } },
                    },
                }), &["400", "404", "412", "500", "503"], gateway),
            }),
        );
    }
    path
}

/// Links from a create's 201 to the operations on the created record, so a
/// client (and schemathesis' stateful phase) can chain them.
fn record_links(name: &str, allows: &dyn Fn(Operation) -> bool) -> Map<String, Value> {
    let mut links = Map::new();
    for (operation, link, verb) in [
        (Operation::Get, "GetCreated", "get"),
        (Operation::Update, "UpdateCreated", "update"),
        (Operation::Delete, "DeleteCreated", "delete"),
    ] {
        if allows(operation) {
            links.insert(
                link.to_owned(),
                json!({
                    "operationId": format!("{verb}_{name}"),
                    "parameters": { "id": "$response.body#/id" },
                    "description": format!("The `id` of the created record, to {verb} it."),
                }),
            );
        }
    }
    links
}

/// A create (`id` required) or update body: any JSON object within the
/// limits `record.rs` enforces, not writing the API's own attributes nor the
/// resource's `protected` ones.
fn body_schema(create: bool, protected: &[String]) -> Value {
    // Refused names are excluded through `propertyNames`, not as `false`
    // property schemas: openapi-python-client and other generators refuse a
    // boolean schema outright, and a name excluded here still says "400".
    let refused: Vec<&str> = protected
        .iter()
        .map(String::as_str)
        .chain([VERSION_ATTRIBUTE])
        .collect();
    let refused_list = refused
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let purpose = if create {
        "A new record: any JSON object with a valid string `id`."
    } else {
        "Attributes to merge; `id`, if present, must equal the path's."
    };
    let mut schema = json!({
        "type": "object",
        "description": format!(
            "{purpose} Attribute names are 1 to {MAX_ATTRIBUTE_NAME_LEN} characters; \
             {refused_list} may not be written (a 400 naming it)."
        ),
        "properties": { "id": { "$ref": "#/components/schemas/Id" } },
        "maxProperties": MAX_ATTRIBUTES,
        // maxLength counts characters (Unicode scalar values), as the server does.
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_ATTRIBUTE_NAME_LEN,
            "not": { "enum": refused },
        },
        "additionalProperties": { "$ref": "#/components/schemas/Value" },
    });
    if create {
        schema["required"] = json!(["id"]);
    }
    schema
}

/// `success` plus the shared error responses named by `errors`, and those
/// API Gateway answers itself.
fn responses(success: Value, errors: &[&str], gateway: Gateway) -> Value {
    let mut responses = match success {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut codes: Vec<&str> = errors.iter().chain(gateway.errors()).copied().collect();
    codes.sort_unstable();
    for code in codes {
        responses.insert(
            code.to_owned(),
            json!({ "$ref": format!("#/components/responses/E{code}") }),
        );
    }
    Value::Object(responses)
}

/// An error response with the `{"error": ...}` body.
fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { "x-request-id": { "$ref": "#/components/headers/RequestId" } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

/// A response API Gateway answers itself, `{"message": ...}`, without our
/// `x-request-id` (it never reaches the function).
fn gateway_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GatewayError" } } },
    })
}

fn components(gateway: Gateway) -> Value {
    let mut unavailable = error_response(
        "The data store is overloaded or unreachable; retry after `Retry-After` seconds.",
    );
    unavailable["headers"]["Retry-After"] = json!({ "$ref": "#/components/headers/RetryAfter" });
    let mut components = json!({
        "schemas": {
            "Id": {
                "type": "string",
                "minLength": 1,
                "pattern": ID_PATTERN,
                // JSON Schema counts characters; the rule counts bytes of
                // UTF-8. Any text of 256 characters fits 1024 bytes, and so
                // does ASCII up to 1024 characters: the schema accepts only
                // ids the server accepts, and refuses every over-long ASCII
                // one, the boundary clients and fuzzers probe.
                "anyOf": [
                    { "maxLength": MAX_ID_CHARS },
                    { "maxLength": MAX_ID_LEN, "pattern": "^[\\u0000-\\u007F]*$" },
                ],
                "description": format!(
                    "Any text of 1 to {MAX_ID_LEN} bytes of UTF-8 without control \
                     characters or `/`, and not `.` or `..`: up to {MAX_ID_CHARS} \
                     characters of any kind, or {MAX_ID_LEN} of ASCII. In a path, \
                     percent-encode it as one segment (`Ana María` is \
                     `Ana%20Mar%C3%ADa`). No Unicode normalisation: composed and \
                     decomposed forms are different ids."
                ),
            },
            // What a response may carry: an id this API created, or any key
            // another tool wrote to the table (DynamoDB allows any string of
            // up to 2048 bytes), which a list must still return.
            "StoredId": {
                "type": "string",
                "minLength": 1,
                "description": "The record's key as stored: an `Id`, or any other \
                                non-empty string another tool wrote to the table.",
            },
            "Record": {
                "type": "object",
                "description": "A stored record: a JSON object of any shape with its `id`. \
                                Numbers keep their decimal text.",
                "required": ["id"],
                "properties": { "id": { "$ref": "#/components/schemas/StoredId" } },
                "additionalProperties": {},
            },
            "ListedRecord": {
                "type": "object",
                "description": "A record of a list: whole, or only the attributes `fields` names.",
                "properties": { "id": { "$ref": "#/components/schemas/StoredId" } },
                "additionalProperties": {},
            },
            // Any JSON value whose numbers DynamoDB can store (magnitude 1E-130 to
            // 9.99E+125, or zero; at most 38 significant digits, which JSON
            // Schema cannot state), the rule `record.rs` applies to bodies.
            // Without `type` and `anyOf`, on purpose: each keyword applies only
            // to its own kind of value, so the schema is exact, and generators
            // read it as "any JSON" (openapi-python-client cannot parse a union
            // that contains itself; openapi-typescript takes `items` or
            // `additionalProperties` without `type` for an object). With no
            // `items` nor `properties` beside them, `unevaluatedItems` and
            // `unevaluatedProperties` apply to every element and member.
            "Value": {
                "description": "Any JSON value; numbers from 1E-130 to 9.99E+125 in \
                                magnitude, or 0, with at most 38 significant digits.",
                "minimum": -9.99e125,
                "maximum": 9.99e125,
                "not": {
                    "type": "number",
                    "exclusiveMinimum": -1e-130,
                    "exclusiveMaximum": 1e-130,
                    "not": { "const": 0 },
                },
                "unevaluatedItems": { "$ref": "#/components/schemas/Value" },
                "unevaluatedProperties": { "$ref": "#/components/schemas/Value" },
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": { "error": { "type": "string" } },
                // Only `error`, without a boolean schema (as the ping's answer).
                "maxProperties": 1,
            },
            "GatewayError": {
                "type": "object",
                "description": "An answer of API Gateway itself, not of the API.",
                "required": ["message"],
                "properties": { "message": { "type": "string" } },
            },
        },
        "parameters": {
            "Id": {
                "name": "id",
                "in": "path",
                "required": true,
                "description": "The record's id.",
                "schema": { "$ref": "#/components/schemas/Id" },
            },
            "Limit": {
                "name": "limit",
                "in": "query",
                "description": format!("Page size, 1 to {MAX_LIMIT}."),
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            "Offset": {
                "name": "offset",
                "in": "query",
                "description": "The opaque cursor of the previous page's `next-offset` \
                                header; absent, empty or `0` is the first page. Anything \
                                else is a 400.",
                "schema": { "type": "string" },
            },
            "Fields": {
                "name": "fields",
                "in": "query",
                "description": format!(
                    "Comma-separated attribute names (at most {MAX_FIELDS}, each 1 to \
                     {MAX_ATTRIBUTE_NAME_LEN} characters); only those are returned. Empty means \
                     whole records."
                ),
                "schema": { "type": "string" },
                "example": "id,name",
            },
            "Filters": {
                "name": "filters",
                "in": "query",
                "description": format!(
                    "Conditions that must all hold (at most {MAX_FILTERS}). Either \
                     `field:operator[:value]` separated by commas, or a JSON array of \
                     `[field, operator, value]` triples. Operators: eq ne lt le gt ge \
                     begins_with contains exists not_exists (the last two take no value). \
                     An unquoted value reading as a JSON number, true, false or null is \
                     that; double-quote (JSON string syntax) a value or field holding `,` \
                     or `:`, or to force a string."
                ),
                "schema": { "type": "string" },
                "example": "name:begins_with:Gas,value:lt:10",
            },
            "IfMatch": {
                "name": "If-Match",
                "in": "header",
                "description": "Write only if the record's current `ETag` is one of these \
                                (else 412, nothing written); `*` is any version.",
                "schema": { "type": "string", "pattern": entity_tags_pattern() },
            },
            "IfNoneMatch": {
                "name": "If-None-Match",
                "in": "header",
                "description": "Answer 304 without a body if the record's current `ETag` \
                                is one of these; `*` is any version.",
                "schema": { "type": "string", "pattern": entity_tags_pattern() },
            },
        },
        "headers": {
            "RequestId": {
                "description": "The request's id (the caller's own `x-request-id` when sane).",
                "required": true,
                "schema": { "type": "string", "minLength": 1 },
            },
            "NextOffset": {
                "description": "The `offset` of the next page; absent on the last page.",
                "schema": { "type": "string", "minLength": 1 },
            },
            "Link": {
                "description": "`<?...&offset=...>; rel=\"next\"`, relative to the called URL; \
                                absent on the last page.",
                "schema": { "type": "string" },
            },
            "Location": {
                "description": "The new record's URL, relative to the request's (`mocks/000-3`).",
                "required": true,
                "schema": { "type": "string", "minLength": 1 },
            },
            "ETag": {
                "description": "The record's version, for `If-Match` and `If-None-Match`.",
                "required": true,
                "schema": { "type": "string", "pattern": ETAG_PATTERN },
            },
            "RetryAfter": {
                "description": "Seconds to wait before retrying.",
                "required": true,
                "schema": { "type": "integer", "minimum": 0 },
            },
        },
        "responses": {
            "E400": error_response(
                "Invalid request: bad query parameter, body (not a JSON object, missing or \
                 invalid `id`, an `id` differing from the path's) or id."
            ),
            "E404": error_response("No record with this id."),
            "E409": error_response("A record with this id exists already."),
            "E412": error_response("`If-Match` does not match the record's `ETag`; nothing written."),
            "E413": error_response(&format!("The request body is larger than {MAX_BODY_BYTES} bytes, or the record would be.")),
            "E500": error_response("Internal error; the body quotes the request id of the log line."),
            "E503": unavailable,
            "E429": gateway_response(
                "Behind API Gateway only: the stage's throttling (`stack.throttle_rate` and \
                 `throttle_burst`) refused the request; retry later."
            ),
        },
    });
    if gateway.api_key {
        components["responses"]["E403"] = gateway_response(
            "Behind API Gateway only: no valid `x-api-key` header; the API was not called.",
        );
        components["securitySchemes"] = json!({
            API_KEY_SCHEME: {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "The stack's API key (`stack.api_key: true`), which API \
                                Gateway checks on every path, this document's included, \
                                before the API is called (403 without it). \
                                `deployer status` says how to read it. A local server \
                                does not check it.",
            },
        });
    }
    components
}
