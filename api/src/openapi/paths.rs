//! The document's paths: each operation a resource allows, its parameters,
//! bodies, responses and links.

use serde_json::{Map, Value, json};

use super::{Gateway, index_description};
use crate::backend::VERSION_ATTRIBUTE;
use crate::config::Operation;
use crate::index::IndexConfig;
use crate::query::MAX_LIMIT;
use crate::record::{MAX_ATTRIBUTE_NAME_LEN, MAX_ATTRIBUTES, MAX_BODY_BYTES};

/// `GET /api/ping`.
pub(super) fn ping_path(gateway: Gateway) -> Value {
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

/// The `order` parameter of a list, when an index of the resource has a
/// sort key: its values are those sort keys, ascending or (`-`) descending.
fn order_parameter(indexes: &[IndexConfig]) -> Option<Value> {
    let mut values: Vec<String> = Vec::new();
    let mut served = Vec::new();
    for index in indexes {
        let Some(sort) = &index.sort_key else {
            continue;
        };
        for value in [sort.name.clone(), format!("-{}", sort.name)] {
            if !values.contains(&value) {
                values.push(value);
            }
        }
        served.push(format!(
            "`{}` with `filters={}:eq:…` (index `{}`)",
            sort.name, index.partition_key.name, index.name
        ));
    }
    if values.is_empty() {
        return None;
    }
    Some(json!({
        "name": "order",
        "in": "query",
        "description": format!(
            "Sort by an index's sort key: `attr` ascending, `-attr` descending, then by \
             `id`. Served only with the filter its index needs: {}; otherwise a 400. \
             Records without the attribute are not listed.",
            served.join("; ")
        ),
        "schema": { "type": "string", "enum": values },
    }))
}

/// `GET` (list) and `POST` on `/api/{name}`, as far as the resource allows them.
pub(super) fn collection_path(
    name: &str,
    allows: &dyn Fn(Operation) -> bool,
    protected: &[String],
    indexes: &[IndexConfig],
    gateway: Gateway,
) -> Map<String, Value> {
    let mut path = Map::new();
    if allows(Operation::List) {
        let mut parameters = vec![
            json!({ "$ref": "#/components/parameters/Limit" }),
            json!({ "$ref": "#/components/parameters/Offset" }),
            json!({ "$ref": "#/components/parameters/Fields" }),
            json!({ "$ref": "#/components/parameters/Filters" }),
        ];
        parameters.extend(order_parameter(indexes));
        let mut description = "A page of records, in a stable order: by a scan, in the \
                               store's order; from an index, by its sort key, then `id`. With \
                               `fields`, records hold only the named attributes (`id` too only \
                               when named)."
            .to_owned();
        for index in indexes {
            description.push(' ');
            description.push_str(&index_description(index));
        }
        path.insert(
            "get".to_owned(),
            json!({
                "operationId": format!("list_{name}"),
                "tags": [name],
                "summary": format!("List {name}, a page at a time"),
                "parameters": parameters,
                "responses": responses(json!({
                    "200": {
                        "description": description,
                        "headers": {
                            "x-request-id": { "$ref": "#/components/headers/RequestId" },
                            "x-served-by": { "$ref": "#/components/headers/ServedBy" },
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
pub(super) fn item_path(
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
