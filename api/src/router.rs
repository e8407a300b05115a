//! The HTTP surface: routes, handlers, and the headers of the contract.
//!
//! [`router`] is the whole application as an axum `Router`; the binary serves
//! it over a socket or through the Lambda runtime, and tests call it directly.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::config::Operation;
use crate::error::ApiError;
use crate::logging::TraceRequestsLayer;
use crate::openapi::{ApiDescription, docs_response};
use crate::preconditions::{entity_tags, if_match};
use crate::query::ListQuery;
use crate::record::{MAX_BODY_BYTES, NewRecord, RecordChanges, RecordId};
use crate::resource_map::{ResourceMap, ServedResource};
use crate::response::{
    add_etag, add_next_page_headers, add_served_by, created_location, json_response,
};

/// Builds the application over `resources`.
pub fn router(resources: ResourceMap) -> Router {
    let state = Arc::new(resources);
    // Described from the map the handlers serve: it cannot drift.
    let description = Arc::new(ApiDescription::new(Arc::clone(&state)));
    // Each route is also served with a trailing slash, without a redirect:
    // behind API Gateway a redirect would drop the `/prod` stage.
    Router::new()
        .route(
            "/openapi.json",
            get(move || std::future::ready(description.json_response())),
        )
        .route("/docs", get(|| std::future::ready(docs_response())))
        .route("/api/ping", get(ping))
        .route("/api/ping/", get(ping))
        .route("/api/{resource}", get(list).post(create))
        .route("/api/{resource}/", get(list).post(create))
        .route("/api/{resource}/{id}", get(read).put(update).delete(delete))
        .route(
            "/api/{resource}/{id}/",
            get(read).put(update).delete(delete),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // One `layer` call, not one per layer: axum wraps every route once
        // per call, in a boxed service whose future is boxed on every request.
        .layer((TraceRequestsLayer, DefaultBodyLimit::max(MAX_BODY_BYTES)))
}

type Resources = State<Arc<ResourceMap>>;

async fn ping() -> Json<serde_json::Value> {
    Json(json!({ "result": "pong" }))
}

async fn list(
    State(resources): Resources,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw_query): RawQuery,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(name) = path?;
    let resource = find(&resources, &name, Operation::List, &method, &uri)?;
    let query = ListQuery::parse(raw_query.as_deref(), &resource.indexes)?;
    let page = resource.backend.list_json(&query).await?;
    let mut response = json_response(page.body);
    add_served_by(&mut response, &query.plan);
    if let Some(next) = page.next {
        add_next_page_headers(&mut response, &next, raw_query.as_deref());
    }
    Ok(response)
}

async fn read(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(
        &resources,
        &name,
        Operation::Get,
        request.method(),
        request.uri(),
    )?;
    let id = RecordId::parse(&id)?;
    let unchanged_if = entity_tags(request.headers(), &header::IF_NONE_MATCH)?;
    let stored = resource.backend.get_json(&id).await?;
    let mut response = match unchanged_if {
        Some(tags) if tags.matches_weakly(stored.version) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        _ => json_response(stored.body),
    };
    add_etag(&mut response, stored.version);
    Ok(response)
}

async fn create(
    State(resources): Resources,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    request: Request,
) -> Result<Response, ApiError> {
    let Path(name) = path?;
    let resource = find(&resources, &name, Operation::Create, &method, &uri)?;
    // The body is read only once the resource is known to accept it.
    let body = Bytes::from_request(request, &()).await?;
    let new = NewRecord::from_body(&body)?;
    resource.check_writable(&new.record)?;
    let location = created_location(&uri, &name, &new.id);
    let stored = resource.backend.create_versioned(new).await?;
    let mut response = (StatusCode::CREATED, Json(stored.record)).into_response();
    add_etag(&mut response, stored.version);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn update(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    uri: Uri,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(&resources, &name, Operation::Update, &method, &uri)?;
    let id = RecordId::parse(&id)?;
    let expected = if_match(request.headers())?;
    let body = Bytes::from_request(request, &()).await?;
    let changes = RecordChanges::from_body(&body, &id)?;
    resource.check_writable(changes.fields())?;
    let stored = resource.backend.update_if(&id, changes, &expected).await?;
    let mut response = Json(stored.record).into_response();
    add_etag(&mut response, stored.version);
    Ok(response)
}

async fn delete(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(&resources, &name, Operation::Delete, &method, &uri)?;
    let id = RecordId::parse(&id)?;
    let expected = if_match(&headers)?;
    resource.backend.delete_if(&id, &expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method,
        path: uri.path().to_owned(),
    }
}

/// For methods no route has (PATCH, ...); axum adds the `Allow` header.
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
        allow: Vec::new(),
    }
}

/// The resource named `name`, if it exists and allows `operation`.
fn find<'a>(
    resources: &'a ResourceMap,
    name: &str,
    operation: Operation,
    method: &Method,
    uri: &Uri,
) -> Result<&'a ServedResource, ApiError> {
    let resource = resources
        .get(name)
        .ok_or_else(|| ApiError::UnknownResource(name.to_owned()))?;
    if resource.allows(operation) {
        return Ok(resource);
    }
    let on_collection = matches!(operation, Operation::List | Operation::Create);
    let candidates: &[(Operation, Method)] = if on_collection {
        &[
            (Operation::List, Method::GET),
            (Operation::Create, Method::POST),
        ]
    } else {
        &[
            (Operation::Get, Method::GET),
            (Operation::Update, Method::PUT),
            (Operation::Delete, Method::DELETE),
        ]
    };
    Err(ApiError::MethodNotAllowed {
        method: method.clone(),
        path: uri.path().to_owned(),
        allow: candidates
            .iter()
            .filter(|(op, _)| resource.allows(*op))
            .map(|(_, m)| m.clone())
            .collect(),
    })
}
