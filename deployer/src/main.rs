//! The `deployer` binary.

use clap::Parser;
use deployer::cli::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::bail!(
        "`deployer {}` is not implemented yet: this build only has the command-line surface",
        cli.command.name()
    )
}
