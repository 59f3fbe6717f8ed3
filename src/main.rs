//! The `calpump` binary: parses the command line, calls the engine, prints. Exit codes: 0 ok,
//! 1 failure, 2 bad usage or configuration.

mod backends;
mod cli;
mod commands;
mod error;
mod expiry;
mod i18n;
mod logging;
mod setup;
mod sinks;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Run) {
        restore_default_sigpipe();
    }
    let default_filter = match cli.command {
        cli::Command::Sync(_) | cli::Command::Run | cli::Command::Demo(_) => "info",
        // migrate prints every mailbox's failure itself; the backends' per-mailbox warnings
        // would repeat them.
        cli::Command::Migrate(_) => "error",
        _ => "warn",
    };
    logging::init(cli.global.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::dispatch(cli));
    // Plugin calls still running on blocking threads (a hung sink) must not keep us alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Rust ignores SIGPIPE, so `calpump … | head` would panic on the next print. Commands that print
/// and exit get the Unix default back (die quietly when the reader goes away); the daemon keeps
/// ignoring it and handles write errors itself.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
