//! A file-backed sink plugin for calpump's end-to-end tests, loaded as a real cdylib.
//!
//! It keeps what it holds in `<dir>/content.json` (written atomically on `flush`, read back on
//! `create`, so it behaves like a durable sink across processes and crashes) and appends one
//! line per received batch to `<dir>/batches.jsonl`.
//!
//! Settings: `dir` (required); `fail_on_batch = N` fails the N-th `write_batch` call of this
//! instance (and every later one) with a fatal error, or a retryable one with
//! `fail_retryable = true`; `delay_ms` sleeps in every `write_batch`; `token` is accepted and,
//! like a careless plugin would, logged with the whole configuration (the host must redact it).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use calpump_plugin::{Batch, BatchKind, Sink, SinkError, SinkResult};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Held {
    pub mailbox: String,
    pub calendar: String,
    pub hash: String,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Content {
    events: BTreeMap<String, Held>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    dir: PathBuf,
    #[serde(default)]
    fail_on_batch: Option<u64>,
    #[serde(default)]
    fail_retryable: bool,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    token: Option<String>,
}

pub struct Recorder {
    settings: Settings,
    content: Mutex<Content>,
    calls: AtomicU64,
}

fn settings(config: &serde_json::Value) -> Result<Settings, SinkError> {
    serde_json::from_value(config.clone()).map_err(|e| SinkError::config(format!("recorder: {e}")))
}

impl Recorder {
    fn content_path(&self) -> PathBuf {
        self.settings.dir.join("content.json")
    }
}

impl Sink for Recorder {
    const NAME: &'static str = "recorder";
    const VERSION: &'static str = "0.1.0";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","required":["dir"],"properties":{"dir":{"type":"string"},"fail_on_batch":{"type":"integer"},"fail_retryable":{"type":"boolean"},"delay_ms":{"type":"integer"},"token":{"type":"string"}}}"#;

    fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        settings(config)?;
        Ok(Vec::new())
    }

    fn create(config: serde_json::Value) -> Result<Self, SinkError> {
        tracing::info!(
            has_token = config.get("token").is_some(),
            "recorder created with settings {config}"
        );
        let settings = settings(&config)?;
        let _ = &settings.token;
        std::fs::create_dir_all(&settings.dir).map_err(|e| {
            SinkError::config(format!("cannot create {}: {e}", settings.dir.display()))
        })?;
        let path = settings.dir.join("content.json");
        let content = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SinkError::fatal(format!("{} is damaged: {e}", path.display())))?,
            Err(_) => Content::default(),
        };
        Ok(Self {
            settings,
            content: Mutex::new(content),
            calls: AtomicU64::new(0),
        })
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.settings.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.settings.delay_ms));
        }
        if let Some(n) = self.settings.fail_on_batch
            && call >= n
        {
            let text = format!("recorder fails on purpose at batch {call}");
            return Err(if self.settings.fail_retryable {
                SinkError::retryable(text)
            } else {
                SinkError::fatal(text)
            });
        }
        calpump_plugin::sdk::counter("recorder_batches_total", &[("route", &batch.route)], 1.0);
        let line = serde_json::json!({
            "run_id": batch.run_id,
            "route": batch.route,
            "mailbox": batch.mailbox,
            "calendar": batch.calendar,
            "kind": batch.kind,
            "complete": batch.complete,
            "upserts": batch.upserts.len(),
            "deletes": batch.deletes.len(),
        });
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.settings.dir.join("batches.jsonl"))
            .map_err(|e| SinkError::retryable(format!("cannot append to the batch log: {e}")))?;
        writeln!(log, "{line}").map_err(|e| SinkError::retryable(e.to_string()))?;

        let mut content = self
            .content
            .lock()
            .map_err(|_| SinkError::fatal("poisoned"))?;
        let mut kept = Vec::new();
        for event in &batch.upserts {
            kept.push(event.key().as_str().to_string());
            content.events.insert(
                event.key().as_str().to_string(),
                Held {
                    mailbox: event.mailbox().to_string(),
                    calendar: event.calendar.clone(),
                    hash: event.content_hash(),
                    start: event.start,
                    end: event.end,
                },
            );
        }
        for key in &batch.deletes {
            content.events.remove(key.as_str());
        }
        if batch.kind == BatchKind::Snapshot && batch.complete {
            let window = batch.window;
            content.events.retain(|key, held| {
                held.mailbox != batch.mailbox
                    || held.calendar != batch.calendar
                    || kept.contains(key)
                    || !(held.start < window.end && held.end > window.start)
            });
        }
        Ok(SinkResult::all_accepted(&batch))
    }

    fn flush(&self) -> Result<(), SinkError> {
        let content = self
            .content
            .lock()
            .map_err(|_| SinkError::fatal("poisoned"))?;
        let bytes =
            serde_json::to_vec_pretty(&*content).map_err(|e| SinkError::fatal(e.to_string()))?;
        let path = self.content_path();
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| SinkError::retryable(format!("cannot write {}: {e}", path.display())))
    }
}

calpump_plugin::export_sink!(Recorder);
