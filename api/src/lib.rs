//! A generic CRUD REST API over pluggable backends.
//!
//! A request passes through, in order:
//!
//! - [`logging`]: request id and the one JSON log line per request;
//! - [`mod@router`]: routes and handlers of the HTTP contract, with
//!   [`preconditions`] (`If-Match`, `If-None-Match`) and [`response`] (JSON
//!   bodies, `ETag`, `Location`, the next page's headers);
//! - [`query`] (lists) or [`record`] (bodies and ids): input parsed once into typed values;
//! - [`resource_map`]: the resource's [`backend::Backend`], chosen at start-up from [`config`];
//! - [`error`]: the only place a failure becomes a status and a JSON body.
//!
//! [`openapi`] describes all of it at `/openapi.json` (and `/docs`).
//! [`cursor`] is the opaque `offset` token; [`server`] serves the router on a
//! local socket; [`lambda_path`] gives a request from API Gateway back the
//! path its client sent. Whether the process runs in Lambda is known only to
//! `main.rs`.

pub mod backend;
pub mod config;
pub mod cursor;
#[cfg(feature = "server")]
pub mod error;
pub mod filter;
pub mod index;
#[cfg(feature = "server")]
pub mod lambda_path;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod openapi;
pub mod plan;
#[cfg(feature = "server")]
pub mod preconditions;
pub mod query;
pub mod record;
pub mod request_id;
pub mod resource_map;
#[cfg(feature = "server")]
pub mod response;
#[cfg(feature = "server")]
pub mod router;
#[cfg(feature = "server")]
pub mod server;

pub use config::AppConfig;
#[cfg(feature = "server")]
pub use error::ApiError;
pub use resource_map::{ResourceMap, ServedResource};
#[cfg(feature = "server")]
pub use router::router;
