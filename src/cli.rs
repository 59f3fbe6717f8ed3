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
    /// Connection profiles: list them, test one step by step, add one.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// The mailboxes a profile can see — room lists, rooms, the routes' mailboxes — with their
    /// calendars and item counts, or why a mailbox can't be read.
    Mailboxes(MailboxesArgs),
    /// Move a route to another connection profile — from EWS to Microsoft Graph — without a
    /// blank door sign or a duplicated row: plan (permissions, scope, on-premises mailboxes),
    /// verify (both profiles read alike), switch (re-point the route, keep the sinks).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Zero set-up: start the built-in simulator, sync its rooms once into door-sign pages and
    /// SQLite, and print where they are.
    Demo(DemoArgs),
    /// Run the built-in Exchange simulator (EWS, Graph, OAuth2 on loopback) until Ctrl-C.
    Simulator(SimulatorArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's configuration, state, door signs and database.
    #[arg(long, default_value = "calpump-demo")]
    pub dir: std::path::PathBuf,
    /// Rooms in the simulated tenant.
    #[arg(long, default_value_t = 20)]
    pub rooms: u32,
    /// Seed of the simulated tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep running afterwards: serve the door signs and /status, sync every minute.
    #[arg(long)]
    pub serve: bool,
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

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// The profiles: backend, endpoint, sign-in, secret expiry (days left).
    List(ProfileListArgs),
    /// Run a profile's connection step by step (configuration, DNS/TLS, Autodiscover, token or
    /// handshake, first call, mailbox access, permissions) and explain every failure. Exit 0
    /// only when no step failed.
    Test(ProfileTestArgs),
    /// Add a profile: a walk-through on a terminal, or the same with flags for scripts. Stores
    /// secrets encrypted, tests the connection and writes the profile into the configuration
    /// without touching the rest of it.
    Add(Box<ProfileAddArgs>),
}

#[derive(Debug, Args)]
pub struct ProfileListArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProfileTestArgs {
    /// The profile (`[profiles.NAME]`).
    pub name: String,
    /// The mailbox to read in the mailbox-access step. Default: the profile's `probe_mailbox`,
    /// else the first mailbox of the first route using the profile.
    #[arg(long, visible_alias = "mailbox", value_name = "ADDRESS")]
    pub probe: Option<String>,
    /// Print the steps as JSON.
    #[arg(long)]
    pub json: bool,
    /// On a permission failure (consent, roles, impersonation, scope), retry with back-off for
    /// up to 15 minutes: such changes take minutes to reach Exchange.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` keeps trying (tests shorten it).
    #[arg(long, hide = true, env = "CALPUMP_WAIT_LIMIT", default_value = "15m")]
    pub wait_limit: String,
    /// The first pause of `--wait` (doubles up to 2 minutes).
    #[arg(long, hide = true, env = "CALPUMP_WAIT_FIRST", default_value = "15s")]
    pub wait_first: String,
}

#[derive(Debug, Args, Default)]
pub struct ProfileAddArgs {
    /// The profile's name (`[profiles.NAME]`).
    #[arg(long)]
    pub name: Option<String>,
    /// `graph`, or `ews` (with `--auth ntlm|basic` for Exchange on-premises, `--auth oauth` for
    /// Exchange Online).
    #[arg(long, value_parser = ["graph", "ews"])]
    pub backend: Option<String>,
    /// Replace a profile of the same name.
    #[arg(long)]
    pub force: bool,
    /// Write the profile without testing the connection.
    #[arg(long)]
    pub no_test: bool,
    /// Entra ID tenant: its primary domain or directory (tenant) id.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The app registration's Application (client) ID.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the secret (client secret, or the password) from standard input; it is stored
    /// encrypted with the key file.
    #[arg(long)]
    pub secret_stdin: bool,
    /// Instead: store a reference to this environment variable holding the secret.
    #[arg(long, value_name = "VAR", conflicts_with = "secret_stdin")]
    pub secret_env: Option<String>,
    /// Client credentials with a certificate: the PEM certificate uploaded to the app.
    #[arg(long, value_name = "PATH")]
    pub certificate: Option<String>,
    /// … and its PEM private key file.
    #[arg(long, value_name = "PATH")]
    pub private_key: Option<String>,
    /// When the secret or password expires (YYYY-MM-DD); calpump warns 30 days ahead.
    #[arg(long, value_name = "DATE")]
    pub secret_expires: Option<String>,
    /// Sign-in host (national clouds, the simulator). Default https://login.microsoftonline.com.
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
    /// Graph base URL. Default https://graph.microsoft.com/v1.0.
    #[arg(long, value_name = "URL")]
    pub graph_url: Option<String>,
    /// EWS: the endpoint, https://host/EWS/Exchange.asmx (default for `--auth oauth`: Exchange
    /// Online's).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// EWS: instead of `--url`, the e-mail address to run Autodiscover for.
    #[arg(long, value_name = "ADDRESS", conflicts_with = "url")]
    pub autodiscover: Option<String>,
    /// EWS with `--autodiscover`: an Autodiscover endpoint to try first.
    #[arg(long, value_name = "URL")]
    pub autodiscover_url: Option<String>,
    /// EWS: `ntlm` or `basic` (Exchange on-premises), `oauth` (Exchange Online).
    #[arg(long, value_parser = ["ntlm", "basic", "oauth"])]
    pub auth: Option<String>,
    /// EWS: the service account (`DOMAIN\\user` or UPN); with `--auth oauth` it selects the
    /// password grant.
    #[arg(long)]
    pub username: Option<String>,
    /// EWS on-premises: use ExchangeImpersonation (`--impersonation true|false`, default true).
    #[arg(long, value_name = "BOOL")]
    pub impersonation: Option<bool>,
    /// The mailbox `profile test` reads.
    #[arg(long, value_name = "ADDRESS")]
    pub probe_mailbox: Option<String>,
}

#[derive(Debug, Args)]
pub struct MailboxesArgs {
    /// The profile.
    pub profile: String,
    /// Show only mailboxes (and room lists) whose name or address contains this text
    /// (case-insensitive).
    #[arg(long)]
    pub filter: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Mailboxes read at the same time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Check that the target profile can read every mailbox of the route — token, permissions
    /// (Calendars.Read, Place.Read.All for room lists), RBAC for Applications / application
    /// access policy scope, mailbox in Exchange Online or still on-premises — and print what is
    /// missing and how to grant it; for on-premises mailboxes, the split into an EWS route and a
    /// Graph route. Exit 0 only when every mailbox can be read.
    Plan(MigratePlanArgs),
    /// Read the route's window through its profile and through the target, compare event by
    /// event (only in one, fields that differ, per mailbox; representational differences are
    /// normalised) and print a summary. Writes nothing. Exit 0 only when clean.
    Verify(MigrateVerifyArgs),
    /// Re-point the route to the target profile in the configuration (comments and layout
    /// kept) and give the new backend a fresh start (its next sync reads in full; the sinks
    /// keep their content and change only what differs). `--back` undoes the last switch.
    Switch(MigrateSwitchArgs),
}

#[derive(Debug, Args)]
pub struct MigratePlanArgs {
    /// The route (`[[routes]]` name).
    #[arg(long)]
    pub route: String,
    /// The profile the route would move to (a Graph profile). Default: the one
    /// `--write-profile` writes.
    #[arg(
        long,
        value_name = "PROFILE",
        required_unless_present = "write_profile"
    )]
    pub to: Option<String>,
    /// First derive a Graph profile named NAME from the route's EWS Office 365 profile (same
    /// tenant, client id and credential) and write it into the configuration; then plan with it.
    #[arg(long, value_name = "NAME")]
    pub write_profile: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MigrateVerifyArgs {
    /// The route (`[[routes]]` name).
    #[arg(long)]
    pub route: String,
    /// The profile to compare the route's profile with.
    #[arg(long, value_name = "PROFILE")]
    pub to: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MigrateSwitchArgs {
    /// The route (`[[routes]]` name).
    #[arg(long)]
    pub route: String,
    /// The profile the route moves to. With `--back`: default the profile the route had
    /// before its last switch.
    #[arg(long, value_name = "PROFILE", required_unless_present = "back")]
    pub to: Option<String>,
    /// Undo the route's last switch: back to its previous profile, continuing from that
    /// backend's cursors (kept by the switch).
    #[arg(long)]
    pub back: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}
