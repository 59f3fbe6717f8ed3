//! calpump's Microsoft Graph backend: the [`Source`] for profiles with `backend = "graph"`.
//!
//! - [`GraphFactory`] checks a profile's keys offline and builds a [`GraphSource`];
//! - [`GraphSource`] reads room lists, rooms, users and calendars ([`discovery`]), syncs
//!   calendars through `calendarView` and `calendarView/delta` in `$batch`es of 20 ([`sync`]),
//!   and runs `calpump profile test` ([`probe`]);
//! - [`client`] sends every request with the same headers (`Prefer: IdType="ImmutableId"`,
//!   `Prefer: outlook.timezone="UTC"`), token cache, limits, retries and error mapping
//!   ([`error`]); [`model`] reads Graph's JSON leniently; [`mapping`] turns events into the
//!   canonical model; [`cursor`] is what a calendar's cursor holds.
//!
//! OAuth, HTTP set-up, retry, limits, counters and expiry come from `calpump-backend-common`;
//! the zone table from its `tz` module. Start with the README.

pub mod client;
pub mod config;
pub mod cursor;
pub mod discovery;
pub mod error;
pub mod mapping;
pub mod model;
pub mod probe;
pub mod sync;

use std::sync::Arc;

use async_trait::async_trait;
use calpump_backend_common::http::{HttpClient, display_url};
use calpump_backend_common::oauth::scopes;
use calpump_backend_common::retry::RetryPolicy;
use calpump_backend_common::stats::{Stats, StatsSnapshot};
use calpump_engine::config::ConfigIssue;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::source::{
    CalendarInfo, MailboxInfo, ProbeStep, ProfileContext, RoomList, Source, SourceError,
    SourceFactory, SyncOutput, SyncRequest,
};
use reqwest::Url;

pub use client::GraphClient;
pub use config::GraphProfile;

use crate::discovery::RoomCache;

/// The value of `backend = "…"` this crate serves.
pub const BACKEND: &str = mapping::BACKEND;

/// Calendars per [`Source::sync`] call: one `$batch`.
pub const CHUNK: usize = client::BATCH_LIMIT;

/// The Graph backend of one profile.
pub struct GraphSource {
    name: String,
    profile: GraphProfile,
    client: GraphClient,
    rooms: tokio::sync::Mutex<RoomCache>,
}

impl std::fmt::Debug for GraphSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSource")
            .field("profile", &self.name)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl GraphSource {
    /// Builds the source of a profile: resolves its secrets, sets up HTTP and the token cache.
    /// Touches no network. Counters are registered under the profile's name
    /// ([`calpump_backend_common::stats::snapshot_all`]).
    pub fn new(
        name: &str,
        settings: &toml::Table,
        secrets: &calpump_engine::secret::SecretResolver,
    ) -> Result<Self, SourceError> {
        let profile = GraphProfile::parse(settings).map_err(|issues| {
            let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
            SourceError::new(Diagnostic::new(
                &general::INTERNAL,
                format!(
                    "profile {name} is not valid (run `calpump check`): {}",
                    text.join("; ")
                ),
            ))
            .retryable(false)
        })?;
        let stats = Stats::register(name, BACKEND);
        let http = HttpClient::new(&profile.http)?.with_stats(stats.clone());
        let base = profile
            .policy()
            .check("graph_url", profile.graph_url())
            .map_err(|issue| {
                SourceError::new(Diagnostic::new(&general::INSECURE_URL, issue.message))
            })?;
        http.policy().ensure(&base)?;
        let tokens = profile.oauth.token_source(&http, secrets, scopes::GRAPH)?;
        let expiry = profile.oauth.expiry();
        for status in &expiry {
            if let Some(d) = &status.diagnostic {
                tracing::warn!(profile = name, code = d.code(), detail = %d.detail(), "secret expiry");
            }
        }
        stats.set_secret_days_left(expiry.iter().map(|s| s.days_left).min());
        tracing::debug!(profile = name, graph = %display_url(&base), "graph source ready");
        let client = GraphClient::new(
            http,
            tokens,
            base,
            profile.max_concurrency(),
            config::PER_MAILBOX_CONCURRENCY,
        );
        Ok(Self {
            name: name.to_string(),
            profile,
            client,
            rooms: tokio::sync::Mutex::new(RoomCache::default()),
        })
    }

    /// Replaces the retry policy (tests and benchmarks shorten it).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.client = self.client.with_retry(retry);
        self
    }

    pub fn profile(&self) -> &GraphProfile {
        &self.profile
    }

    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    /// Requests, throttles, retries and errors per operation: HTTP requests (`token`, `batch`,
    /// `calendars`, `places.rooms`, …) and sub-requests inside `$batch`es (`batched.calendarView`,
    /// `batched.calendarView.delta`, `batched.event`, `batched.events.count`).
    pub fn stats(&self) -> StatsSnapshot {
        self.client.stats().snapshot()
    }

    /// The Graph base in use.
    pub fn graph_url(&self) -> &Url {
        self.client.base()
    }
}

#[async_trait]
impl Source for GraphSource {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn preferred_chunk(&self) -> usize {
        CHUNK
    }

    async fn room_lists(&self) -> Result<Vec<RoomList>, SourceError> {
        self.list_room_lists().await
    }

    async fn rooms(&self, room_list: Option<&str>) -> Result<Vec<MailboxInfo>, SourceError> {
        self.list_rooms(room_list).await
    }

    async fn resolve_mailbox(&self, address: &str) -> Result<MailboxInfo, SourceError> {
        self.lookup_mailbox(address).await
    }

    async fn calendars(&self, mailbox: &MailboxInfo) -> Result<Vec<CalendarInfo>, SourceError> {
        self.list_calendars(mailbox).await
    }

    async fn sync(&self, work: Vec<SyncRequest>, out: SyncOutput) {
        sync::sync_chunk(&self.client, work, out).await;
    }

    async fn probe(&self, probe_mailbox: Option<&str>) -> Vec<ProbeStep> {
        self.run_probe(probe_mailbox).await
    }
}

/// Builds [`GraphSource`]s for `backend = "graph"` profiles.
#[derive(Debug, Default, Clone, Copy)]
pub struct GraphFactory;

impl SourceFactory for GraphFactory {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn check(&self, ctx: &ProfileContext<'_>) -> Vec<ConfigIssue> {
        let (profile, mut issues) = GraphProfile::parse_known(ctx.settings);
        if let Some(profile) = profile {
            issues.extend(profile.check(ctx.secrets));
        }
        issues
    }

    fn build(&self, ctx: &ProfileContext<'_>) -> Result<Arc<dyn Source>, SourceError> {
        Ok(Arc::new(GraphSource::new(
            ctx.name,
            ctx.settings,
            ctx.secrets,
        )?))
    }
}
