//! The command-line surface of `deployer`, in clap derive form.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Deploys the CRUD API to AWS: API Gateway, Lambda and DynamoDB from one
/// app declaration (infra/app.yaml), through CloudFormation change sets.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// The app declaration to deploy.
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_CONFIG",
        default_value = "infra/app.yaml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CloudFormation template; makes no AWS call.
    Render,
    /// Show what a deploy would change, without changing anything.
    Diff,
    /// First deploy: artifact bucket, GitHub token secret, stack, seed data.
    Bootstrap,
    /// Build and upload the Lambda, then create and execute a change set.
    Deploy,
    /// Write the seed files into the deployed tables.
    Seed,
    /// Show the stack's status, outputs and recent events.
    Status,
    /// Delete the stack (tables and the artifact bucket are kept).
    Destroy,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Render => "render",
            Command::Diff => "diff",
            Command::Bootstrap => "bootstrap",
            Command::Deploy => "deploy",
            Command::Seed => "seed",
            Command::Status => "status",
            Command::Destroy => "destroy",
        }
    }
}
