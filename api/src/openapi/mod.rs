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

use crate::config::Operation;
use crate::preconditions::MAX_ENTITY_TAGS;
use crate::record::MAX_BODY_BYTES;
use crate::resource_map::ResourceMap;
use crate::response::json_response;

mod components;
mod paths;

use components::components;
use paths::{collection_path, item_path, ping_path};

use crate::index::IndexConfig;

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
pub const DOCS_PAGE: &str = include_str!("docs.html");

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
        let collection = collection_path(
            name,
            &allows,
            &resource.protected,
            &resource.indexes,
            gateway,
        );
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
fn tag_description(name: &str, resource: &crate::resource_map::ServedResource) -> String {
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
    for index in &resource.indexes {
        text.push_str(&format!(" {}", index_description(index)));
    }
    text
}

/// What index `index` serves, for the people reading the document.
pub(super) fn index_description(index: &IndexConfig) -> String {
    let partition = &index.partition_key;
    let mut text = format!(
        "Index `{}`: a list with `filters={}:eq:…` (a {}) is read from it",
        index.name, partition.name, partition.kind
    );
    if let Some(sort) = &index.sort_key {
        text.push_str(&format!(
            ", in order of `{}` (a {}), when it also has one condition on `{}` (eq lt le gt \
             ge begins_with) or `order={}`/`order=-{}`; a list ordered by `{}` holds only \
             records that have it",
            sort.name, sort.kind, sort.name, sort.name, sort.name, sort.name
        ));
    }
    text.push_str(
        ". Such a list is eventually consistent: it may miss a write of the last moment.",
    );
    text
}
