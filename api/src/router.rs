//! The HTTP surface: routes, handlers, and the headers of the contract.
//!
//! [`router`] is the whole application as an axum `Router`; the binary serves
//! it over a socket or through the Lambda runtime, and tests call it directly.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::json;

use crate::config::Operation;
use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::logging::trace_requests;
use crate::mapper::{Resource, ResourceMap};
use crate::query::ListQuery;
use crate::record::{MAX_BODY_BYTES, NewRecord, RecordChanges, RecordId};

/// The response header carrying the next page's `offset` cursor.
pub static NEXT_OFFSET_HEADER: HeaderName = HeaderName::from_static("next-offset");

/// Builds the application over `resources`.
pub fn router(resources: ResourceMap) -> Router {
    let state = Arc::new(resources);
    // Each route is also served with a trailing slash, without a redirect:
    // behind API Gateway a redirect would drop the `/prod` stage.
    Router::new()
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(trace_requests))
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
    let query = ListQuery::parse(raw_query.as_deref())?;
    let page = resource.backend.list(&query).await?;
    let mut response = Json(page.records).into_response();
    if let Some(next) = page.next {
        add_next_page_headers(&mut response, &next, raw_query.as_deref());
    }
    Ok(response)
}

async fn read(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(&resources, &name, Operation::Get, &method, &uri)?;
    let id = RecordId::parse(&id)?;
    Ok(Json(resource.backend.get(&id).await?).into_response())
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
    let location = created_location(&uri, &name, &new.id);
    let stored = resource.backend.create(new).await?;
    let mut response = (StatusCode::CREATED, Json(stored)).into_response();
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
    let body = Bytes::from_request(request, &()).await?;
    let changes = RecordChanges::from_body(&body, &id)?;
    Ok(Json(resource.backend.update(&id, changes).await?).into_response())
}

async fn delete(
    State(resources): Resources,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    let Path((name, id)) = path?;
    let resource = find(&resources, &name, Operation::Delete, &method, &uri)?;
    let id = RecordId::parse(&id)?;
    resource.backend.delete(&id).await?;
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
) -> Result<&'a Resource, ApiError> {
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

/// The new record's URL, relative to the request's. A relative reference
/// keeps whatever prefix the client used (API Gateway's `/prod` stage, which
/// the router never sees): `mocks/000-3` from `/prod/api/mocks`, and `./000-3`
/// from `/prod/api/mocks/`.
fn created_location(uri: &Uri, resource: &str, id: &RecordId) -> String {
    if uri.path().ends_with('/') {
        format!("./{id}")
    } else {
        format!("{resource}/{id}")
    }
}

/// `next-offset: <cursor>` and `Link: <?...&offset=<cursor>>; rel="next"`.
/// The link is a query-only reference: it resolves against the URL the client
/// called, stage prefix included, and keeps its other parameters.
fn add_next_page_headers(response: &mut Response, next: &Cursor, raw_query: Option<&str>) {
    let token = next.encode();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        if name != "offset" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("offset", &token);
    let link = format!("<?{}>; rel=\"next\"", query.finish());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&token) {
        headers.insert(NEXT_OFFSET_HEADER.clone(), value);
    }
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(header::LINK, value);
    }
}
