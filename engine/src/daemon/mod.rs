//! The daemon behind `calpump run`: every route on its interval (with jitter, never overlapping
//! itself), sink ticks at the earliest wake-up any sink asked for (at least once a minute), and
//! the HTTP server ([`http`]): `/`, `/healthz`, `/status`, `/metrics` and each sink's `out_dir`
//! under `/sinks/<sink>/` — a route in shadow mode (`shadow_profile`, compared after each run by
//! the runner) shows its last comparison in `/status` and as `calpump_shadow_differences{route}`
//! in `/metrics`; secret expiry ([`expiry`]) logged at start and daily, in `/status`
//! and as the gauge `calpump_secret_expiry_days`.
//!
//! On shutdown (the [`Shutdown`] signal, set by SIGINT/SIGTERM in the binary) no new run
//! starts, a run in progress finishes the batch in flight and stops, the server stops accepting,
//! the state store is closed, and [`Daemon::run`] returns `Ok`.

pub mod expiry;
mod html;
mod http;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calpump_plugin::{SCHEMA_VERSION, Tick};
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

use crate::plugin_host::SinkHandle;
use crate::runner::{RouteReport, RouteRuntime, RunOptions, run_route};
use crate::shutdown::Shutdown;
use crate::state::StateStore;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {listen}: {source}")]
    Bind {
        listen: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What `/status` knows about a route beyond the state store.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteBoard {
    pub running: bool,
    pub next_sync: Option<DateTime<Utc>>,
    pub last_report: Option<RouteReport>,
}

/// Shared between the scheduler and the HTTP handlers.
pub(crate) struct App {
    pub routes: Vec<RouteInfo>,
    pub sinks: Vec<SinkInfo>,
    pub state: Arc<dyn StateStore>,
    pub board: Mutex<BTreeMap<String, RouteBoard>>,
    pub started_at: DateTime<Utc>,
    /// The last expiry check's result (empty without a check).
    pub secrets: Mutex<Vec<expiry::SecretExpiry>>,
}

/// A route as `/status` shows it.
#[derive(Debug, Clone)]
pub(crate) struct RouteInfo {
    pub name: String,
    pub profile: String,
    pub backend: String,
    /// The route's `shadow_profile` (shadow mode), if any.
    pub shadow_profile: Option<String>,
    pub interval: Duration,
    pub sinks: Vec<String>,
    /// The route's mailboxes when the config names them all (no room lists): status rows of
    /// other mailboxes — taken out of the config since the last run — are not shown. With
    /// room lists the runner forgets such rows once it knows the lists' rooms.
    pub mailboxes: Option<BTreeSet<String>>,
}

impl RouteInfo {
    fn from_config(route: &RouteRuntime) -> Self {
        let config = &route.config;
        Self {
            name: config.name.clone(),
            profile: config.profile.clone(),
            backend: route.source.backend().to_string(),
            shadow_profile: config.shadow_profile.clone(),
            interval: config.interval,
            sinks: config.sinks.clone(),
            // Normalised as the runner records them.
            mailboxes: config.room_lists.is_empty().then(|| {
                config
                    .mailboxes
                    .iter()
                    .map(|m| m.trim().to_lowercase())
                    .collect()
            }),
        }
    }

    /// Whether a mailbox status row of this route belongs to it.
    fn has_mailbox(&self, mailbox: &str) -> bool {
        self.mailboxes.as_ref().is_none_or(|m| m.contains(mailbox))
    }
}

/// A sink as `/` and `/status` show it.
#[derive(Debug, Clone)]
pub(crate) struct SinkInfo {
    pub name: String,
    pub plugin: String,
    pub out_dir: Option<PathBuf>,
    pub handle: SinkHandle,
}

impl App {
    fn board(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RouteBoard>> {
        match self.board.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Everything the daemon runs.
pub struct Daemon {
    pub routes: Vec<RouteRuntime>,
    /// Every sink instance, with the directory to serve (its `out_dir` setting), if any.
    pub sinks: Vec<(SinkHandle, Option<PathBuf>)>,
    pub state: Arc<dyn StateStore>,
    /// The options each run gets (`shutdown` is replaced by the daemon's).
    pub options: RunOptions,
    /// Computes the profiles' secret and certificate expiry (`None`: nothing to watch).
    pub expiry: Option<expiry::ExpiryCheck>,
}

/// Binds the HTTP listener (so the caller can report the address before the daemon starts).
pub async fn bind(listen: &str) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Bind {
            listen: listen.to_string(),
            source,
        })
}

/// `interval` ± 10 %.
fn jittered(interval: Duration) -> Duration {
    let factor = 0.9 + rand::random::<f64>() * 0.2;
    interval.mul_f64(factor).max(Duration::from_secs(1))
}

impl Daemon {
    /// Runs until `shutdown` fires.
    pub async fn run(self, listener: TcpListener, shutdown: Shutdown) -> Result<(), DaemonError> {
        let app = Arc::new(App {
            routes: self.routes.iter().map(RouteInfo::from_config).collect(),
            sinks: self
                .sinks
                .iter()
                .map(|(h, dir)| SinkInfo {
                    name: h.name().to_string(),
                    plugin: h.plugin().to_string(),
                    out_dir: dir.clone(),
                    handle: h.clone(),
                })
                .collect(),
            state: Arc::clone(&self.state),
            board: Mutex::new(BTreeMap::new()),
            started_at: Utc::now(),
            secrets: Mutex::new(Vec::new()),
        });
        if let Some(check) = &self.expiry {
            // Before the server answers, so the first /status already shows it.
            expiry::refresh(&app, check);
        }
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, routes = self.routes.len(), sinks = self.sinks.len(), "calpump daemon listening");
        }

        let mut tasks = tokio::task::JoinSet::new();
        for route in self.routes.clone() {
            let app = Arc::clone(&app);
            let state = Arc::clone(&self.state);
            let options = RunOptions {
                shutdown: shutdown.clone(),
                ..self.options.clone()
            };
            tasks.spawn(route_loop(route, app, state, options));
        }
        tasks.spawn(tick_loop(Arc::clone(&app), shutdown.clone()));
        if let Some(check) = self.expiry.clone() {
            tasks.spawn(expiry::expiry_loop(
                Arc::clone(&app),
                check,
                shutdown.clone(),
            ));
        }

        let server = {
            let mut stop = shutdown.clone();
            let router = http::router(Arc::clone(&app));
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.wait().await })
                    .await
            })
        };

        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "a daemon task crashed");
            }
        }
        let served = server.await;
        self.state.close().await;
        tracing::info!("calpump daemon stopped");
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DaemonError::Serve(e)),
            Err(join) => Err(DaemonError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}

/// One route: run, wait its interval (± jitter), again — never two runs of it at once.
async fn route_loop(
    route: RouteRuntime,
    app: Arc<App>,
    state: Arc<dyn StateStore>,
    options: RunOptions,
) {
    let name = route.config.name.clone();
    let mut shutdown = options.shutdown.clone();
    loop {
        if shutdown.is_triggered() {
            break;
        }
        app.board().entry(name.clone()).or_default().running = true;
        let report = run_route(&route, Arc::clone(&state), &options).await;
        let delay = jittered(route.config.interval);
        {
            let mut board = app.board();
            let entry = board.entry(name.clone()).or_default();
            entry.running = false;
            entry.last_report = Some(report);
            entry.next_sync =
                Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default());
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait() => break,
        }
    }
    if let Some(entry) = app.board().get_mut(&name) {
        entry.next_sync = None;
    }
}

/// Ticks every sink at the earliest wake-up any sink asked for, and at least once a minute.
async fn tick_loop(app: Arc<App>, mut shutdown: Shutdown) {
    const EVERY: Duration = Duration::from_secs(60);
    const CHECK: Duration = Duration::from_secs(5);
    // The first tick goes out at start, so sinks render before the first sync ends.
    let mut last_tick: Option<tokio::time::Instant> = None;
    loop {
        let now = Utc::now();
        let due_by_sink = app
            .sinks
            .iter()
            .filter_map(|s| s.handle.next_wakeup())
            .any(|at| at <= now);
        if due_by_sink || last_tick.is_none_or(|t| t.elapsed() >= EVERY) {
            tick_all(&app, now).await;
            last_tick = Some(tokio::time::Instant::now());
        }
        let since_tick = last_tick.map(|t| t.elapsed()).unwrap_or_default();
        let until_wakeup = app
            .sinks
            .iter()
            .filter_map(|s| s.handle.next_wakeup())
            .min()
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .unwrap_or(CHECK);
        let wait = until_wakeup
            .min(CHECK)
            .min(EVERY.saturating_sub(since_tick));
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
            _ = shutdown.wait() => break,
        }
    }
}

async fn tick_all(app: &App, now: DateTime<Utc>) {
    let statuses = match app.state.mailbox_status(None).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read mailbox health for the sinks' tick");
            Vec::new()
        }
    };
    for sink in &app.sinks {
        let routes: Vec<&RouteInfo> = app
            .routes
            .iter()
            .filter(|r| r.sinks.contains(&sink.name))
            .collect();
        let tick = Tick {
            schema_version: SCHEMA_VERSION,
            now,
            mailboxes: statuses
                .iter()
                .filter(|s| {
                    routes
                        .iter()
                        .any(|r| r.name == s.route && r.has_mailbox(&s.mailbox))
                })
                .map(|s| s.health())
                .collect(),
        };
        if let Err(e) = sink.handle.tick(&tick).await {
            tracing::warn!(sink = %sink.name, error = %e, "sink tick failed");
        }
    }
}

#[cfg(test)]
mod tests;
