//! The document's components: the schemas (ids, records, values, errors),
//! parameters, headers, shared responses and security schemes every path
//! refers to, with the limits the parsers enforce.

use serde_json::{Value, json};

use super::{API_KEY_SCHEME, ETAG_PATTERN, Gateway, ID_PATTERN, entity_tags_pattern};
use crate::query::{DEFAULT_LIMIT, MAX_FIELDS, MAX_FILTERS, MAX_LIMIT};
use crate::record::{MAX_ATTRIBUTE_NAME_LEN, MAX_BODY_BYTES, MAX_ID_CHARS, MAX_ID_LEN};

/// Every component of the document.
pub(super) fn components(gateway: Gateway) -> Value {
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
            "ServedBy": {
                "description": "How the list was read: `scan` (every record), or \
                                `index <name>` (a secondary index).",
                "required": true,
                "schema": { "type": "string", "pattern": "^(scan|index [A-Za-z0-9_.-]{3,255})$" },
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

/// An error response with the `{"error": ...}` body.
pub(super) fn error_response(description: &str) -> Value {
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
