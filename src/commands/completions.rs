//! `calpump completions <shell>`: a completion script on stdout.

use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Result;

pub fn run(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "calpump", &mut script);
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
    Ok(ExitCode::SUCCESS)
}
