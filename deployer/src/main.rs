//! The `deployer` binary: parses the command line, runs the command, and
//! turns a failure into the lines `diagnosis` writes and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;
use deployer::cli::Cli;
use deployer::commands::{self, Finished};
use deployer::diagnosis::{FailedCalls, Situation, report};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.global.verbose;
    let profile = cli.global.profile.clone();
    let failed_calls = FailedCalls::default();
    match commands::run(cli, &failed_calls).await {
        Ok(Finished::Success) => ExitCode::SUCCESS,
        Ok(Finished::Failure) => ExitCode::FAILURE,
        Err(error) => {
            let situation = Situation::from_environment(profile.as_deref(), failed_calls.last());
            eprintln!("{}", report(&error, &situation, verbose));
            ExitCode::FAILURE
        }
    }
}
