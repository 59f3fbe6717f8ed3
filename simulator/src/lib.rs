//! An Exchange simulator on loopback: Microsoft Graph, an OAuth2 token endpoint and (in
//! [`ews`]) EWS, over one deterministic tenant.
//!
//! ```no_run
//! # async fn demo() -> Result<(), calpump_simulator::SimError> {
//! use calpump_simulator::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { rooms: 10, ..SimConfig::default() }).await?;
//! println!("Graph at {}/v1.0, tokens at {}", sim.base_url(), sim.token_url());
//! let truth = sim.control().truth("room-1.01@contoso.com", None, sim.window().0, sim.window().1);
//! sim.shutdown().await;
//! # let _ = truth; Ok(()) }
//! ```
//!
//! See `simulator/README.md` for the HTTP control API, the catalogue of apps and accounts, and
//! the tenant model's API for protocol modules.

#![recursion_limit = "256"]

pub mod auth;
pub mod catalogue;
pub mod control;
pub mod ews;
pub mod graph;
pub mod http;
pub mod tenant;

pub use catalogue::{AccountState, AppState};
pub use control::{
    Admission, Control, Fault, FaultRule, HiddenEvent, Protocol, RequestInfo, Stats,
};
pub use tenant::{ALL_CALENDARS, EventChange, EventRef, NewEvent, Tenant, TruthInstance};

use chrono::{DateTime, Duration, Utc};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How the simulator is shaped.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Room mailboxes (in room lists of 50, "Building N").
    pub rooms: u32,
    /// Generated calendar items per room (singles and series masters; series expand to more).
    pub events_per_room: u32,
    /// Generated users (besides the catalogue's service accounts).
    pub users: u32,
    /// Equipment mailboxes; `None` = one per 20 rooms (at least one).
    pub equipment: Option<u32>,
    pub seed: u64,
    /// The instant the generated calendars are laid around (`[anchor-1d, anchor+14d]` is
    /// populated). `None` = today 00:00 UTC.
    pub anchor: Option<DateTime<Utc>>,
    /// TCP port on 127.0.0.1; 0 = any free port.
    pub port: u16,
    /// Lifetime of issued access tokens.
    pub token_lifetime_secs: i64,
    /// Graph requests in flight per mailbox before 429 `ApplicationThrottled` (Exchange Online: 4).
    pub graph_concurrency_per_mailbox: usize,
    /// EWS concurrency limit per key the EWS module chooses; `None` = unlimited.
    pub ews_concurrency: Option<usize>,
    /// Unchanged mailboxes kept materialised (changed ones always are).
    pub cache_mailboxes: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rooms: 20,
            events_per_room: 32,
            users: 20,
            equipment: None,
            seed: 1,
            anchor: None,
            port: 0,
            token_lifetime_secs: 3599,
            graph_concurrency_per_mailbox: 4,
            ews_concurrency: None,
            cache_mailboxes: 512,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A running simulator. Dropping it without [`Simulator::shutdown`] leaves the server task
/// running until the runtime ends.
pub struct Simulator {
    addr: SocketAddr,
    base_url: String,
    control: Control,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Today 00:00 UTC.
pub fn default_anchor() -> DateTime<Utc> {
    let now = Utc::now();
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or(now)
}

impl Simulator {
    /// Builds the tenant and listens on 127.0.0.1 (loopback only).
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        if cfg.rooms > 100_000 || cfg.events_per_room > 10_000 || cfg.users > 100_000 {
            return Err(SimError::Config(
                "at most 100000 rooms/users and 10000 events per room".into(),
            ));
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port))
            .await
            .map_err(|source| SimError::Bind {
                port: cfg.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: cfg.port,
            source,
        })?;
        let base_url = format!("http://{addr}");
        let tenant = Arc::new(Tenant::new(tenant::TenantConfig {
            seed: cfg.seed,
            anchor: cfg.anchor.unwrap_or_else(default_anchor),
            users: cfg.users,
            rooms: cfg.rooms,
            equipment: cfg.equipment.unwrap_or((cfg.rooms / 20).max(1)),
            events_per_room: cfg.events_per_room,
            cache_mailboxes: cfg.cache_mailboxes,
        }));
        let control = Control::new(
            tenant,
            cfg.token_lifetime_secs,
            cfg.graph_concurrency_per_mailbox,
            cfg.ews_concurrency,
        );
        let state = http::AppState {
            control: control.clone(),
            base_url: Arc::from(base_url.as_str()),
        };
        let app = http::router(state);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let r = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<ews::ConnId>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        tracing::info!(%base_url, rooms = cfg.rooms, seed = cfg.seed, "exchange simulator listening");
        Ok(Simulator {
            addr,
            base_url,
            control,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graph base, `…/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// The token endpoint for the catalogue tenant (by domain).
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url,
            catalogue::TENANT_DOMAIN
        )
    }

    /// The token authority (what a profile's `authority` key takes).
    pub fn authority(&self) -> &str {
        &self.base_url
    }

    /// EWS endpoint URL (served by the EWS module).
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.base_url)
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    pub fn tenant(&self) -> &Tenant {
        self.control.tenant()
    }

    /// The populated window `[anchor-1d, anchor+14d]`.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let a = self.tenant().anchor();
        (a - Duration::days(1), a + Duration::days(14))
    }

    /// Stops listening and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}
