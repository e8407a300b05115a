//! The `api` binary: the same router under the Lambda runtime or on a socket.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use api::{AppConfig, ResourceMap, logging, router, server};
use axum::extract::Request;
use axum::http::HeaderValue;
use clap::Parser;
use lambda_http::request::RequestContext;

/// Serves the CRUD API of an app declaration. Inside AWS Lambda (when
/// AWS_LAMBDA_RUNTIME_API is set) it answers API Gateway events; anywhere else
/// it is a plain HTTP server.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The app declaration: which resources exist and their backends.
    #[arg(long, env = "API_CONFIG", default_value = "infra/app.yaml")]
    config: PathBuf,
    /// Address to listen on (local server only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (local server only).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init();
    let config = AppConfig::load(&cli.config)?;
    let resources = ResourceMap::from_config(&config)?;
    let summary: Vec<String> = config
        .resources
        .iter()
        .map(|(name, resource)| format!("{name} ({})", resource.backend))
        .collect();
    let app = router(resources);

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        tracing::info!(resources = %summary.join(", "), "serving Lambda invocations");
        let app = app.layer(axum::middleware::map_request(with_gateway_request_id));
        return lambda_http::run(app)
            .await
            .map_err(|error| anyhow::anyhow!(error));
    }

    let address = SocketAddr::new(cli.host, cli.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        resources = %summary.join(", "),
        url = %format!("http://{}/api", listener.local_addr()?),
        "listening"
    );
    server::serve(listener, app, server::shutdown_signal()).await?;
    Ok(())
}

/// Uses API Gateway's request id as ours, so our log lines match its access log.
async fn with_gateway_request_id(mut request: Request) -> Request {
    let gateway_id = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    if let Some(value) = gateway_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        request
            .headers_mut()
            .insert(logging::REQUEST_ID_HEADER.clone(), value);
    }
    request
}
