//! One file per command. Each returns `Ok(exit code)` or a [`CliError`](crate::error::CliError).

pub mod check;
pub mod completions;
pub mod init;
pub mod plugins;
pub mod run;
pub mod secret;
pub mod simulator;
pub mod sync;

use std::process::ExitCode;

use crate::cli::{Cli, Command, SecretCommand};
use crate::error::Result;

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let global = &cli.global;
    match cli.command {
        Command::Init(_) => init::run(global),
        Command::Check(args) => check::run(global, &args),
        Command::Secret(SecretCommand::Encrypt) => secret::encrypt(global),
        Command::Plugins(args) => plugins::run(global, &args),
        Command::Sync(args) => sync::run(global, &args).await,
        Command::Run => run::run(global).await,
        Command::Simulator(args) => simulator::run(&args).await,
        Command::Completions(args) => completions::run(&args),
    }
}
