//! Logging to stderr through `tracing-subscriber` (`RUST_LOG` filters; `--log-format json`),
//! drawn around the progress bar when one is showing. Colours only on a terminal and only when
//! `NO_COLOR` is not set (<https://no-color.org>): redirected stderr (a file, a pipe, journald)
//! gets plain text.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Mutex, OnceLock};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

fn bar_slot() -> &'static Mutex<Option<ProgressBar>> {
    static SLOT: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();
    SLOT.get_or_init(|| Mutex::new(None))
}

/// Log lines are suspended around this bar while it shows (`None` removes it).
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    if let Ok(mut slot) = bar_slot().lock() {
        *slot = bar;
    }
}

/// A writer that collects one log line and writes it to stderr on drop, hiding the progress
/// bar meanwhile.
pub struct LineWriter(Vec<u8>);

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.0);
        let write = || {
            let _ = std::io::stderr().lock().write_all(&bytes);
        };
        let bar = bar_slot().lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

struct MakeLineWriter;

impl<'a> MakeWriter<'a> for MakeLineWriter {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Whether text logs may carry ANSI colours: stderr is a terminal and `NO_COLOR` is unset or
/// empty.
fn use_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the subscriber. `default` is the filter when RUST_LOG is not set.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(MakeLineWriter)
        .with_ansi(colour)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
