//! `calpump secret encrypt`: reads the value from stdin (never argv, so it stays out of shell
//! history and process lists) and prints `{ encrypted = "cp1:…" }`.

use std::io::Read as _;
use std::process::ExitCode;

use calpump_engine::config::Config;
use calpump_engine::secret::{Secret, SecretResolver};

use crate::cli::Global;
use crate::error::{CliError, Result};

/// The value without one trailing line break (what `echo` or a terminal adds).
fn trim_line_end(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

pub fn encrypt(global: &Global) -> Result<ExitCode> {
    let resolver = if global.config.exists() {
        crate::setup::load_config(&global.config)?.secret_resolver()
    } else {
        Config::default().secret_resolver()
    };
    if !resolver.key_file().exists() {
        return Err(CliError::usage(format!(
            "no key file at {}: `calpump init` creates one",
            resolver.key_file().display()
        )));
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::failure(format!("cannot read the value from stdin: {e}")))?;
    let secret = Secret::new(trim_line_end(&input));
    input.clear();
    if secret.expose().is_empty() {
        return Err(CliError::usage(
            "nothing to encrypt: pipe the value into stdin, e.g. `calpump secret encrypt < file`",
        ));
    }
    let sealed = SecretResolver::encrypt(&resolver, &secret)
        .map_err(|e| CliError::failure(e.to_string()))?;
    println!("{{ encrypted = \"{sealed}\" }}");
    Ok(ExitCode::SUCCESS)
}
