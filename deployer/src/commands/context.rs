//! What every command that calls AWS shares: the checked declaration, the
//! SDK configuration, and the clients built from it, each with the
//! interceptors that record failed calls and print them under `--verbose`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::ControlFlow;
use std::time::Duration;

use api::AppConfig;
use api::record::NewRecord;
use serde::Serialize;

use super::CommandError;
use crate::artifacts;
use crate::bootstrap::ArtifactBucket;
use crate::cli::{GlobalOptions, OutputFormat};
use crate::cloudformation::{Polling, Stacks};
use crate::declaration::Declaration;
use crate::diagnosis::FailedCalls;
use crate::logs::LogEvent;
use crate::settings::{PipelineSettings, StackSettings};
use crate::verbose::VerboseInterceptor;

/// Everything a command that calls AWS needs, resolved once.
pub(super) struct Context {
    pub(super) app: AppConfig,
    pub(super) settings: StackSettings,
    /// Each resource's seed records, read and checked with the declaration.
    pub(super) seeds: BTreeMap<String, Vec<NewRecord>>,
    pub(super) output: OutputFormat,
    sdk: aws_config::SdkConfig,
    region: String,
    /// `--verbose`: attached to every client built below.
    verbose: Option<VerboseInterceptor>,
    /// Attached to every client: the failed call a diagnosis names.
    failed_calls: FailedCalls,
    pub(super) polling: Polling,
}

/// A client of SDK crate `$sdk` from the builder `$builder`, with the
/// `--verbose` interceptor when it is on. A macro because each SDK crate has
/// its own builder type, with no trait in common for `interceptor`.
macro_rules! client {
    ($context:expr, $sdk:ident, $builder:expr) => {{
        let mut builder = $builder.interceptor($context.failed_calls.clone());
        if let Some(interceptor) = &$context.verbose {
            builder = builder.interceptor(interceptor.clone());
        }
        $sdk::Client::from_conf(builder.build())
    }};
    ($context:expr, $sdk:ident) => {
        client!($context, $sdk, $sdk::config::Builder::from($context.sdk()))
    };
}

impl Context {
    /// Loads the AWS configuration: the standard chain, with the flags on
    /// top. An endpoint override (`AWS_ENDPOINT_URL`, for an emulator)
    /// applies to every client.
    pub(super) async fn connect(
        declaration: Declaration,
        global: &GlobalOptions,
        failed_calls: &FailedCalls,
    ) -> Result<Self, CommandError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &global.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        // Without a region the SDK fails every call with "Missing Region";
        // say so before the first one.
        let Some(region) = sdk.region().map(ToString::to_string) else {
            return Err(CommandError::NoRegion);
        };
        let mut polling = Polling::default();
        if let Some(interval) = global.poll_interval_ms {
            polling.interval = Duration::from_millis(interval);
        }
        Ok(Self {
            app: declaration.app,
            settings: declaration.settings,
            seeds: declaration.seeds,
            output: global.output,
            sdk,
            region,
            verbose: global.verbose.then(VerboseInterceptor::stderr),
            failed_calls: failed_calls.clone(),
            polling,
        })
    }

    pub(super) fn stack(&self) -> &str {
        &self.settings.name
    }

    /// The declaration's pipeline settings, or why there are none.
    pub(super) fn pipeline_settings(&self) -> Result<&PipelineSettings, CommandError> {
        self.settings
            .pipeline
            .as_ref()
            .ok_or_else(|| CommandError::NoPipeline {
                stack: self.stack().to_owned(),
            })
    }

    /// This stack's artifact bucket: the declared one, or the default for
    /// the account and region.
    pub(super) async fn artifact_bucket(&self) -> Result<ArtifactBucket, CommandError> {
        Ok(ArtifactBucket::resolve(&self.sts(), &self.settings, &self.region).await?)
    }

    fn sdk(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    pub(super) fn region(&self) -> &str {
        &self.region
    }

    // Every AWS client a command uses comes from here, so `--verbose` sees
    // every call.

    pub(super) fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        client!(self, aws_sdk_cloudformation)
    }

    pub(super) fn sts(&self) -> aws_sdk_sts::Client {
        client!(self, aws_sdk_sts)
    }

    pub(super) fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        client!(self, aws_sdk_secretsmanager)
    }

    pub(super) fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        client!(self, aws_sdk_dynamodb)
    }

    pub(super) fn codebuild(&self) -> aws_sdk_codebuild::Client {
        client!(self, aws_sdk_codebuild)
    }

    pub(super) fn apigateway(&self) -> aws_sdk_apigateway::Client {
        client!(self, aws_sdk_apigateway)
    }

    pub(super) fn iam(&self) -> aws_sdk_iam::Client {
        client!(self, aws_sdk_iam)
    }

    pub(super) fn cloudwatchlogs(&self) -> aws_sdk_cloudwatchlogs::Client {
        client!(self, aws_sdk_cloudwatchlogs)
    }

    /// S3 as `artifacts::s3_client` configures it (path-style addressing for
    /// an emulator), plus the interceptor.
    pub(super) fn s3(&self) -> aws_sdk_s3::Client {
        let configured = artifacts::s3_client(self.sdk());
        client!(self, aws_sdk_s3, configured.config().to_builder())
    }

    pub(super) fn stacks(&self) -> Stacks {
        Stacks::new(self.cloudformation()).with_polling(self.polling)
    }

    /// Prints a result on stdout, as text or JSON.
    pub(super) fn print<T: Serialize + std::fmt::Display>(
        &self,
        value: &T,
    ) -> Result<(), CommandError> {
        match self.output {
            OutputFormat::Human => println!("{value}"),
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(value)
                    .map_err(|e| CommandError::Output(e.to_string()))?
            ),
        }
        Ok(())
    }

    /// Prints a log event on stdout as it comes: its text (`human`, or
    /// nothing when that is `None`), or the event as one line of JSON.
    /// Breaks once stdout is gone (`deployer logs | head`).
    pub(super) fn print_event(&self, event: &LogEvent, human: Option<String>) -> ControlFlow<()> {
        let line = match self.output {
            OutputFormat::Human => match human {
                Some(text) => text,
                None => return ControlFlow::Continue(()),
            },
            OutputFormat::Json => match serde_json::to_string(event) {
                Ok(json) => json,
                Err(_) => return ControlFlow::Continue(()),
            },
        };
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}
