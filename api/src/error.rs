//! [`ApiError`]: the one place a failure becomes an HTTP response.
//!
//! Handlers return `Result<_, ApiError>`; every variant has exactly one status
//! and a `{"error": "..."}` body written for the client. Internal failures are
//! logged in full with the request id and answered with that id only.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

use crate::backend::BackendError;
use crate::lambda_path::InvalidEventPath;
use crate::logging::current_request_id;
use crate::query::InvalidQuery;
use crate::record::{InvalidBody, InvalidId, MAX_BODY_BYTES};
use crate::resource_map::Unwritable;

/// A request that could not be served, and why.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("no resource named `{0}`")]
    UnknownResource(String),
    #[error("no route for {method} {path}")]
    NoRoute { method: Method, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed {
        method: Method,
        path: String,
        /// The methods that are allowed, for the `Allow` header.
        allow: Vec<Method>,
    },
    #[error(transparent)]
    InvalidQuery(#[from] InvalidQuery),
    #[error(transparent)]
    InvalidBody(#[from] InvalidBody),
    #[error(transparent)]
    Unwritable(#[from] Unwritable),
    #[error("invalid id in the path: {0}")]
    InvalidId(#[from] InvalidId),
    /// An API Gateway event whose path cannot be the request's.
    #[error(transparent)]
    InvalidEventPath(#[from] InvalidEventPath),
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// A request the framework could not even parse (an unreadable body, a
    /// path that is not valid percent-encoded UTF-8).
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownResource(_) | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidQuery(_)
            | ApiError::InvalidBody(_)
            | ApiError::Unwritable(_)
            | ApiError::InvalidId(_)
            | ApiError::InvalidEventPath(_)
            | ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Backend(BackendError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Backend(BackendError::AlreadyExists(_)) => StatusCode::CONFLICT,
            ApiError::Backend(BackendError::PreconditionFailed { .. }) => {
                StatusCode::PRECONDITION_FAILED
            }
            ApiError::Backend(BackendError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Backend(BackendError::Invalid(_)) => StatusCode::BAD_REQUEST,
            ApiError::Backend(BackendError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Backend(BackendError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::Malformed(format!("invalid path: {}", rejection.body_text()))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge
        } else {
            ApiError::Malformed(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Backend(BackendError::Internal(source)) => {
                let request_id = current_request_id();
                tracing::error!(
                    request_id = %request_id,
                    error = %error_chain(source.as_ref()),
                    "internal error"
                );
                format!("internal error (request id {request_id})")
            }
            ApiError::Backend(BackendError::Unavailable { source, .. }) => {
                tracing::warn!(
                    request_id = %current_request_id(),
                    error = %error_chain(source.as_ref()),
                    "data store unavailable"
                );
                self.to_string()
            }
            _ => self.to_string(),
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        let headers = response.headers_mut();
        match &self {
            // An empty list means the router's own 405, where axum sets `Allow`.
            ApiError::MethodNotAllowed { allow, .. } if !allow.is_empty() => {
                let allow = allow
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(",");
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            ApiError::Backend(BackendError::Unavailable {
                retry_after_seconds,
                ..
            }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            _ => {}
        }
        response
    }
}

/// `error: cause: cause` on one line, for logs.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
