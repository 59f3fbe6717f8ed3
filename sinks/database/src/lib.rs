//! Database sink: keeps tables of calendar events in SQLite, PostgreSQL or MariaDB/MySQL exactly
//! in step with Exchange, through sqlx's runtime query API.
//!
//! * [`DatabaseSink`] implements the SDK's [`Sink`]; [`sink_table`] is its ABI v1 table, which
//!   calpump links in and the `calpump-sink-database-plugin` cdylib exports unchanged.
//! * [`Config`] is the `[sinks.NAME]` table; [`CONFIG_SCHEMA`] its JSON Schema.
//! * The schema is in `migrations/<dialect>/`, applied on start (`src/migrate.rs`); the write
//!   path is in `src/write.rs` (its docs explain the transaction); `README.md` documents the
//!   tables and a query example.
//!
//! The sink owns a small multi-threaded tokio runtime, made in `create` and shut down when the
//! instance is dropped: the host's runtime never crosses the plugin boundary, and the host may
//! call `write_batch` from several threads at once.

mod config;
mod db;
mod dialect;
mod migrate;
mod nodelay;
mod read;
mod validate;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use calpump_plugin::sdk::HostHandle;
use calpump_plugin::{Batch, Sink, SinkError, SinkResult};

pub use config::{CONFIG_SCHEMA, Config, ConfigError, DeleteMode, SslMode, redact_url};
pub use dialect::Dialect;
pub use migrate::latest_version;
pub use read::StoredRow;
pub use validate::{MAX_JSON_BYTES, MAX_TEXT_BYTES};

/// Whether `TCP_NODELAY` is set on this process's TCP socket with these local and peer ports
/// (`None`: no such socket). For tests of the sqlx 0.9.0 workaround in `src/nodelay.rs`.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub use nodelay::is_set_for as tcp_nodelay_is_set;

use db::{ErrorClass, Pool, classify, describe};
use dialect::Names;

calpump_plugin::sink_table!(DatabaseSink);

/// State shared by every call of one instance.
struct Store {
    pool: Pool,
    names: Names,
    delete: DeleteMode,
    /// The URL without its password, for messages.
    url: String,
}

/// The database sink. See the crate documentation.
pub struct DatabaseSink {
    runtime: Option<tokio::runtime::Runtime>,
    store: Arc<Store>,
    schema_version: i64,
}

impl std::fmt::Debug for DatabaseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSink")
            .field("url", &self.store.url)
            .field("dialect", &self.store.names.dialect)
            .field("schema_version", &self.schema_version)
            .finish()
    }
}

/// Runs `fut` on `runtime` and waits for it from this (blocking) thread. The future runs on the
/// sink's own workers, so this works whether or not the caller is inside another runtime.
fn run_on<T, F>(runtime: &tokio::runtime::Runtime, fut: F) -> Result<T, SinkError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, SinkError>> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| SinkError::fatal("database sink: the database task ended without an answer"))?
}

fn sink_error(url: &str, what: &str, error: &sqlx::Error) -> SinkError {
    let message = format!("database sink ({url}): {what}: {}", describe(error));
    match classify(error) {
        ErrorClass::Retryable => SinkError::retryable(message),
        ErrorClass::Config => SinkError::config(message),
        ErrorClass::Row | ErrorClass::Fatal => SinkError::fatal(message),
    }
}

impl DatabaseSink {
    /// The engine this instance writes to.
    pub fn dialect(&self) -> Dialect {
        self.store.names.dialect
    }

    /// The schema version the database is at (after this instance's migrations).
    pub fn schema_version(&self) -> i64 {
        self.schema_version
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, SinkError> {
        self.runtime
            .as_ref()
            .ok_or_else(|| SinkError::fatal("database sink: used after shutdown"))
    }

    /// Every row (live and soft-deleted) the sink holds for (route, mailbox), or for one calendar
    /// of it, rebuilt as canonical events.
    pub fn read_rows(
        &self,
        route: &str,
        mailbox: &str,
        calendar: Option<&str>,
    ) -> Result<Vec<StoredRow>, SinkError> {
        let store = Arc::clone(&self.store);
        let (route, mailbox) = (route.to_string(), mailbox.to_string());
        let calendar = calendar.map(str::to_string);
        run_on(self.runtime()?, async move {
            read::read_rows(
                &store.pool,
                &store.names,
                &route,
                &mailbox,
                calendar.as_deref(),
            )
            .await
            .map_err(|e| match e {
                read::ReadError::Db(e) => sink_error(&store.url, "reading rows", &e),
                other => SinkError::fatal(format!("database sink ({}): {other}", store.url)),
            })
        })
    }
}

impl Sink for DatabaseSink {
    const NAME: &'static str = "database";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CONFIG_SCHEMA: &'static str = config::CONFIG_SCHEMA;

    fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        Config::check(config)
            .map(|(_, warnings)| warnings)
            .map_err(|e| SinkError::config(e.to_string()))
    }

    fn create(config: serde_json::Value) -> Result<Self, SinkError> {
        let (config, warnings) =
            Config::check(&config).map_err(|e| SinkError::config(e.to_string()))?;
        let url = config.redacted_url();
        for warning in &warnings {
            tracing::warn!(url = %url, "database sink: {warning}");
        }
        let dialect = config
            .dialect()
            .map_err(|e| SinkError::config(e.to_string()))?;
        if dialect == Dialect::Sqlite {
            let path =
                config::sqlite_path(&config.url).map_err(|e| SinkError::config(e.to_string()))?;
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    SinkError::config(format!(
                        "database sink: cannot create directory {}: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("calpump-sink-db")
            .enable_all()
            .build()
            .map_err(|e| SinkError::fatal(format!("database sink: cannot start a runtime: {e}")))?;
        let names = Names::new(dialect, config.schema.as_deref(), &config.table_prefix);
        let connect = {
            let (config, names, url) = (config.clone(), names.clone(), url.clone());
            async move {
                let pool = Pool::connect(&config)
                    .await
                    .map_err(|e| sink_error(&url, "cannot connect", &e))?;
                match migrate::run(&pool, &names).await {
                    Ok(version) => Ok((pool, version)),
                    Err(e) => {
                        pool.close().await;
                        Err(match e {
                            migrate::MigrateError::Db(e) => sink_error(&url, "migrating", &e),
                            migrate::MigrateError::Locked => {
                                SinkError::retryable(format!("database sink ({url}): {e}"))
                            }
                            other => SinkError::fatal(format!("database sink ({url}): {other}")),
                        })
                    }
                }
            }
        };
        let (pool, schema_version) = match run_on(&runtime, connect) {
            Ok(ok) => ok,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        tracing::info!(
            url = %url,
            dialect = dialect.name(),
            schema_version,
            table_prefix = %config.table_prefix,
            delete = ?config.delete,
            "database sink ready"
        );
        Ok(Self {
            runtime: Some(runtime),
            store: Arc::new(Store {
                pool,
                names,
                delete: config.delete,
                url,
            }),
            schema_version,
        })
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        let store = Arc::clone(&self.store);
        // The batch runs on the sink's own runtime threads: report metrics through this
        // instance's host explicitly.
        let host = HostHandle::current();
        let counter = move |name: &str, labels: &[(&str, &str)], value: f64| {
            if let Some(host) = host {
                host.metric(
                    calpump_plugin::abi::metric_kind::COUNTER,
                    name,
                    labels,
                    value,
                );
            }
        };
        run_on(self.runtime()?, async move {
            let (route, run_id) = (batch.route.clone(), batch.run_id.clone());
            let (result, outcome) =
                match write::write_batch(&store.pool, &store.names, store.delete, batch).await {
                    Ok(ok) => ok,
                    Err(write::WriteError::Db(e)) => {
                        return Err(sink_error(&store.url, "writing a batch", &e));
                    }
                    Err(write::WriteError::Batch(reason)) => {
                        return Err(SinkError::fatal(format!(
                            "database sink: batch refused: {reason}"
                        )));
                    }
                };
            if let Err(e) = write::record_run(
                &store.pool,
                &store.names,
                &route,
                &run_id,
                &outcome,
                result.rejected.len(),
            )
            .await
            {
                // The batch itself is committed; only the run statistics lag behind.
                tracing::warn!(url = %store.url, route = %route, run_id = %run_id, error = %describe(&e),
                    "database sink: could not update run statistics");
            }
            let labels = [("route", route.as_str())];
            counter("database_upserted_total", &labels, outcome.upserted as f64);
            counter(
                "database_unchanged_total",
                &labels,
                outcome.unchanged as f64,
            );
            counter(
                "database_deleted_total",
                &labels,
                (outcome.deleted + outcome.vanished) as f64,
            );
            counter(
                "database_rejected_total",
                &labels,
                result.rejected.len() as f64,
            );
            for failure in &result.rejected {
                tracing::warn!(route = %route, key = %failure.key, reason = %failure.reason,
                    "database sink: event rejected");
            }
            Ok(result)
        })
    }

    /// Every batch is committed (durably: SQLite runs with `synchronous = FULL`) before
    /// `write_batch` returns, so there is nothing left to flush; this checks the database is
    /// still reachable so a lost server shows before the next batch.
    fn flush(&self) -> Result<(), SinkError> {
        let store = Arc::clone(&self.store);
        run_on(self.runtime()?, async move {
            let mut conn = store
                .pool
                .acquire()
                .await
                .map_err(|e| sink_error(&store.url, "flush", &e))?;
            conn.conn()
                .ping()
                .await
                .map_err(|e| sink_error(&store.url, "flush", &e))
        })
    }
}

impl Drop for DatabaseSink {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        // Close the pool on the sink's own runtime (SQLite checkpoints its WAL on close), wait
        // a bounded time, then stop the workers without blocking: `drop` may run anywhere.
        let store = Arc::clone(&self.store);
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            store.pool.close().await;
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(10));
        runtime.shutdown_background();
    }
}
