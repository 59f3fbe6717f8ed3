//! One file per command. Each returns `Ok(exit code)` or a [`CliError`](crate::error::CliError).

pub mod check;
pub mod completions;
pub mod demo;
pub mod init;
pub mod mailboxes;
pub mod migrate;
pub mod plugins;
pub mod profile;
pub mod profile_add;
pub mod run;
pub mod secret;
pub mod simulator;
pub mod sync;

use std::process::ExitCode;

use crate::cli::{Cli, Command, MigrateCommand, ProfileCommand, SecretCommand};
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
        Command::Profile(ProfileCommand::List(args)) => profile::list(global, &args),
        Command::Profile(ProfileCommand::Test(args)) => profile::test(global, &args).await,
        Command::Profile(ProfileCommand::Add(args)) => profile_add::run(global, &args).await,
        Command::Mailboxes(args) => mailboxes::run(global, &args).await,
        Command::Migrate(MigrateCommand::Plan(args)) => migrate::plan(global, &args).await,
        Command::Migrate(MigrateCommand::Verify(args)) => migrate::verify(global, &args).await,
        Command::Migrate(MigrateCommand::Switch(args)) => migrate::switch(global, &args).await,
        Command::Demo(args) => demo::run(global, &args).await,
        Command::Simulator(args) => simulator::run(&args).await,
        Command::Completions(args) => completions::run(&args),
    }
}
