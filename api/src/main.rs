//! The `api` binary: the same router under the Lambda runtime or on a socket.

use std::convert::Infallible;
use std::future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
#[cfg(feature = "embedded-store")]
use api::backend::embedded::EmbeddedStore;
use api::config::{BackendKind, RESOURCES_ENV};
use api::logging::TraceRequestsLayer;
use api::resource_map::DynamoDbTarget;
use api::{ApiError, AppConfig, ResourceMap, lambda_path, logging, router, server};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse as _, Response};
use clap::{Parser, ValueEnum};
use lambda_http::request::RequestContext;
use tower::{Layer as _, ServiceExt as _, service_fn};

/// Serves the CRUD API of an app declaration. Inside AWS Lambda (when
/// AWS_LAMBDA_RUNTIME_API is set) it answers API Gateway events; anywhere else
/// it is a plain HTTP server.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The app declaration: which resources exist and their backends.
    #[arg(long, env = "API_CONFIG", default_value = "infra/app.yaml")]
    config: PathBuf,
    /// Where `dynamodb` resources are served from. Locally the default is the
    /// embedded store, so a local run never writes to a real table by
    /// accident; in Lambda it is always DynamoDB.
    #[arg(long, env = "API_DYNAMODB", value_enum, default_value_t = DynamoDbChoice::Embedded)]
    dynamodb: DynamoDbChoice,
    /// Directory of the embedded store's database file.
    #[arg(long, env = "API_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Stack whose tables `dynamodb` resources use: `<stack>-<resource>`,
    /// unless app.yaml names the table.
    #[arg(long, env = "STACK_NAME", default_value = "serverless-api")]
    stack_name: String,
    /// Address to listen on (local server only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (local server only).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DynamoDbChoice {
    /// The local embedded store under --data-dir.
    Embedded,
    /// DynamoDB, through the standard AWS configuration chain
    /// (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).
    Aws,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init();
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let config = match std::env::var(RESOURCES_ENV) {
        // In Lambda the deployer passes the mapping; seeds ship in the zip.
        Ok(json) => AppConfig::from_resources_json(&json, packaged_infra_dir()?)?,
        Err(_) => AppConfig::load(&cli.config)?,
    };
    let dynamodb_choice = if in_lambda {
        DynamoDbChoice::Aws
    } else {
        cli.dynamodb
    };
    let uses_dynamodb = config
        .resources
        .values()
        .any(|resource| resource.backend == BackendKind::Dynamodb);
    let dynamodb = if uses_dynamodb {
        dynamodb_target(dynamodb_choice, &cli).await?
    } else {
        DynamoDbTarget::Unavailable
    };
    // The first line says where data goes, before anything can be written.
    tracing::info!(
        resources = %describe(&config, &dynamodb),
        "serving {} resources",
        config.resources.len()
    );
    let app = router(ResourceMap::from_config(&config, &dynamodb)?);

    if in_lambda {
        // Around the router, not through `Router::layer`: a route's layers
        // run once it is chosen, and the path must be right before that.
        let app = axum::Router::new()
            .fallback_service(app)
            .layer(axum::middleware::map_request(from_api_gateway));
        return lambda_http::run(app)
            .await
            .map_err(|error| anyhow::anyhow!(error));
    }

    let address = SocketAddr::new(cli.host, cli.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(url = %format!("http://{}/api", listener.local_addr()?), "listening");
    server::serve(listener, app, server::shutdown_signal()).await?;
    Ok(())
}

async fn dynamodb_target(choice: DynamoDbChoice, cli: &Cli) -> anyhow::Result<DynamoDbTarget> {
    Ok(match choice {
        DynamoDbChoice::Aws => {
            let sdk_config = api::backend::dynamodb::sdk_config().await;
            DynamoDbTarget::Aws {
                client: aws_sdk_dynamodb::Client::new(&sdk_config),
                stack_name: cli.stack_name.clone(),
            }
        }
        DynamoDbChoice::Embedded => embedded_store(&cli.data_dir)?,
    })
}

#[cfg(feature = "embedded-store")]
fn embedded_store(data_dir: &Path) -> anyhow::Result<DynamoDbTarget> {
    Ok(DynamoDbTarget::Embedded(EmbeddedStore::open(
        &data_dir.join("api.redb"),
    )?))
}

#[cfg(not(feature = "embedded-store"))]
fn embedded_store(_data_dir: &Path) -> anyhow::Result<DynamoDbTarget> {
    anyhow::bail!(
        "this build of `api` has no embedded store (it was built without the \
         `embedded-store` feature, as the Lambda zip is): use --dynamodb aws"
    )
}

/// `infra/` beside the executable: where the Lambda zip carries seed files.
fn packaged_infra_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the executable")?;
    Ok(exe
        .parent()
        .map_or_else(|| PathBuf::from("infra"), |dir| dir.join("infra")))
}

/// `mocks (memory), users (dynamodb: embedded store data/api.redb)`.
fn describe(config: &AppConfig, dynamodb: &DynamoDbTarget) -> String {
    config
        .resources
        .iter()
        .map(|(name, resource)| match (resource.backend, dynamodb) {
            #[cfg(feature = "embedded-store")]
            (BackendKind::Dynamodb, DynamoDbTarget::Embedded(store)) => {
                format!(
                    "{name} (dynamodb: embedded store {}, not AWS)",
                    store.path().display()
                )
            }
            (BackendKind::Dynamodb, DynamoDbTarget::Aws { stack_name, .. }) => {
                format!(
                    "{name} (dynamodb: table {})",
                    resource.table_name(name, stack_name)
                )
            }
            (backend, _) => format!("{name} ({backend})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The request as API Gateway received it, from the one lambda_http made of
/// its event: the gateway's request id, and the client's own path.
async fn from_api_gateway(request: Request) -> Result<Request, Response> {
    let mut request = with_gateway_request_id(request);
    match lambda_path::restore_client_path(&mut request) {
        Ok(()) => Ok(request),
        Err(error) => {
            // Answered through the logging layer, so the refusal has its log
            // line and `x-request-id` like every other answer.
            // `oneshot` calls the service once: the answer is there to take.
            let mut answer = Some(ApiError::from(error).into_response());
            let refuse =
                service_fn(move |_: Request| future::ready(Ok(answer.take().unwrap_or_default())));
            let logged = TraceRequestsLayer.layer(refuse).oneshot(request).await;
            Err(logged.unwrap_or_else(|never: Infallible| match never {}))
        }
    }
}

/// Uses API Gateway's request id as ours, so our log lines match its access log.
fn with_gateway_request_id(mut request: Request) -> Request {
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
