//! The `deployer` binary.

use clap::Parser;
use deployer::cli::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::bail!("{:?} is not wired yet", cli.command)
}
