//! The binary's error: a message and the exit code it maps to.

use std::fmt;
use std::process::ExitCode;

/// Exit codes: 0 ok, 1 failure, 2 bad usage or configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failure,
    Usage,
}

#[derive(Debug)]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Usage,
            message: message.into(),
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Failure,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            Kind::Failure => ExitCode::from(1),
            Kind::Usage => ExitCode::from(2),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<calpump_engine::config::ConfigError> for CliError {
    fn from(e: calpump_engine::config::ConfigError) -> Self {
        Self::usage(e.to_string())
    }
}

impl From<calpump_engine::state::StateError> for CliError {
    fn from(e: calpump_engine::state::StateError) -> Self {
        Self::failure(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, CliError>;
