//! The `deployer` binary.

use std::process::ExitCode;

use clap::Parser;
use deployer::cli::Cli;
use deployer::commands::{self, Finished};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    Ok(match commands::run(cli).await? {
        Finished::Success => ExitCode::SUCCESS,
        Finished::Failure => ExitCode::FAILURE,
    })
}
