//! An example sink plugin for calpump: appends each batch it receives as one JSON line to a file.
//!
//! Build: `cargo build --release` here, copy `target/release/libcalpump_example_jsonl_sink.so`
//! into a directory listed in calpump's `[plugins] dirs`, and configure
//!
//! ```toml
//! [sinks.audit]
//! plugin = "jsonl"
//! path = "batches.jsonl"
//! ```

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use calpump_plugin::{Batch, Sink, SinkError, SinkResult};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The file batches are appended to.
    path: PathBuf,
}

fn config(value: &serde_json::Value) -> Result<Config, SinkError> {
    serde_json::from_value(value.clone()).map_err(|e| SinkError::config(format!("jsonl: {e}")))
}

pub struct JsonLines {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Sink for JsonLines {
    const NAME: &'static str = "jsonl";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CONFIG_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "jsonl sink",
  "type": "object",
  "properties": { "path": { "type": "string", "description": "file the batches are appended to" } },
  "required": ["path"],
  "additionalProperties": false
}"#;

    fn check(value: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        config(value).map(|_| Vec::new())
    }

    fn create(value: serde_json::Value) -> Result<Self, SinkError> {
        let config = config(&value)?;
        tracing::info!(path = %config.path.display(), "jsonl sink ready");
        Ok(Self { path: config.path, lock: Mutex::new(()) })
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        let line = serde_json::to_string(&batch).map_err(|e| SinkError::fatal(e.to_string()))?;
        let _guard = self.lock.lock().map_err(|_| SinkError::fatal("a writer panicked"))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| SinkError::retryable(format!("{}: {e}", self.path.display())))?;
        writeln!(file, "{line}").map_err(|e| SinkError::retryable(e.to_string()))?;
        calpump_plugin::sdk::counter("jsonl_batches_total", &[("route", &batch.route)], 1.0);
        Ok(SinkResult::all_accepted(&batch))
    }

    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

calpump_plugin::export_sink!(JsonLines);
