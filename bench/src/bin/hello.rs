//! The floor `make bench` measures the api against: a bare axum server that
//! answers `GET /api/ping` with `{"result":"pong"}` and nothing else.
//!
//! Same tokio runtime (multi-threaded, `#[tokio::main]`), same axum features
//! and the same release profile as the `api` binary, but no configuration,
//! no logging, no backends: whatever the api costs beyond this is its own.
//!
//!     hello [--port 8000]   # always on 127.0.0.1

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_argument(std::env::args().skip(1))?;
    let app = Router::new().route(
        "/api/ping",
        get(|| async { axum::Json(serde_json::json!({ "result": "pong" })) }),
    );
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// `--port N` (default 8000); anything else is an error.
fn port_argument(mut args: impl Iterator<Item = String>) -> Result<u16, String> {
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok(8000),
        (Some("--port"), Some(port), None) => port
            .parse()
            .map_err(|error| format!("--port {port}: {error}")),
        _ => Err("usage: hello [--port PORT]".to_owned()),
    }
}
