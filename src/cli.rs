//! The command line: clap's derive tree. One subcommand per file in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// calpump reads the calendars of Exchange mailboxes (rooms above all) through EWS or Microsoft
/// Graph and pumps them into sinks: door signs, databases and plugins.
#[derive(Debug, Parser)]
#[command(name = "calpump", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "calpump.toml",
        env = "CALPUMP_CONFIG"
    )]
    pub config: PathBuf,
    /// Language of diagnostics (`en`, `de`); default from LC_ALL / LC_MESSAGES / LANG.
    #[arg(long, global = true)]
    pub lang: Option<String>,
    /// Log line format on stderr (filter with RUST_LOG, e.g. `RUST_LOG=calpump=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter configuration and the key file for encrypted secrets.
    Init(InitArgs),
    /// Validate the configuration without touching the network.
    Check(CheckArgs),
    /// Work with secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// List the sink plugins found (built in and loaded), their ABI version and config schema.
    Plugins(PluginsArgs),
    /// Sync every route once.
    Sync(SyncArgs),
    /// Run the daemon: sync each route on its interval, serve door signs, /status and /metrics.
    Run,
    /// Run the built-in Exchange simulator (EWS, Graph, OAuth2 on loopback) until Ctrl-C.
    Simulator(SimulatorArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct SimulatorArgs {
    /// Room mailboxes (in room lists of 50).
    #[arg(long, default_value_t = 20)]
    pub rooms: u32,
    /// Calendar items per room (series count once and expand to more).
    #[arg(long, default_value_t = 32)]
    pub events: u32,
    /// Seed of the generated tenant: the same seed gives the same tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// TCP port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 5077)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct InitArgs {}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the issues as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Encrypt a value read from standard input (never from the command line) with the key
    /// file; prints `{ encrypted = "cp1:…" }` to paste into the configuration.
    Encrypt,
}

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync only this route.
    #[arg(long)]
    pub route: Option<String>,
    /// Ignore stored cursors: read every calendar's window in full.
    #[arg(long)]
    pub full: bool,
    /// Apply calendars that suddenly read empty (normally held back as a likely permission
    /// problem).
    #[arg(long)]
    pub accept_empty: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
