//! The `Source` trait: what a backend (EWS, Graph, …) offers the engine.
//!
//! The engine knows no backend by name. A backend crate implements [`Source`] and a
//! [`SourceFactory`] that builds it from a profile's settings; the binary registers the factories
//! it links in. Everything a backend reports as a failure is a [`SourceError`] carrying a
//! [`Diagnostic`] from the catalogue, so every failure an admin meets has a name, a cause and a
//! remedy.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use calpump_plugin::{Event, EventKey, Window};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::ConfigIssue;
use crate::diagnostics::Diagnostic;
use crate::secret::SecretResolver;

/// What kind of mailbox an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MailboxKind {
    Room,
    Equipment,
    User,
    #[default]
    Unknown,
}

/// A mailbox a route reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxInfo {
    /// SMTP address, lower-case.
    pub address: String,
    pub name: Option<String>,
    pub kind: MailboxKind,
    /// The room list it was found through, if any.
    pub room_list: Option<String>,
}

/// A room list (EWS `GetRoomLists`, Graph `places/microsoft.graph.roomlist`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    pub address: String,
    pub name: Option<String>,
}

/// A calendar folder of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarInfo {
    /// The backend's id of the folder (EWS `FolderId`, Graph calendar id). Empty for "the
    /// mailbox's default calendar" when the backend can address it without an id.
    pub id: String,
    /// Backend-neutral path, unique in the mailbox and the same through EWS and Graph — flat,
    /// because Graph lists calendars without their folder hierarchy. This is what sinks see and
    /// what names the calendar's cursor. The rule (`calpump_backend_common::calendars`):
    /// - `"default"` for the main calendar;
    /// - else the calendar's display name (`"Maintenance"`; a blank name reads `"Calendar"`)
    ///   when no other calendar of the mailbox but the main one has that name
    ///   (case-insensitively) and it is not `"default"`;
    /// - else the name plus the first 8 hex digits of the SHA-256 of the folder's
    ///   backend-neutral identity (`"Maintenance (3f2a9c1e)"`, longer only if two paths would
    ///   still coincide): the folder's entry id inside its Exchange web service id, which EWS
    ///   (`FolderId`) and Graph (the calendar `id`, its REST spelling) both carry — so the path
    ///   does not depend on the order in which calendars are listed.
    pub path: String,
    pub name: String,
    pub is_default: bool,
    /// Number of items in the folder (series count once), when the backend reports it.
    pub item_count: Option<u64>,
}

impl CalendarInfo {
    /// The mailbox's default calendar, addressed without an id.
    pub fn default_calendar() -> Self {
        Self {
            id: String::new(),
            path: DEFAULT_CALENDAR.to_string(),
            name: "Calendar".to_string(),
            is_default: true,
            item_count: None,
        }
    }
}

/// The neutral path of a mailbox's main calendar.
pub const DEFAULT_CALENDAR: &str = "default";

/// A stored cursor: opaque to the engine, written by the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The backend's state (EWS SyncState, Graph deltaLink, plus whatever the source needs).
    pub value: String,
    /// The window the cursor's last full read covered.
    pub window: Window,
}

/// One unit of work: one calendar of one mailbox for one window.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub route: String,
    pub mailbox: MailboxInfo,
    pub calendar: CalendarInfo,
    pub window: Window,
    /// The cursor stored after the last successful sync, `None` on the first run or `--full`.
    pub cursor: Option<Cursor>,
}

/// An item the source reports as gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The source knows the canonical key.
    Key(EventKey),
    /// The source knows only its own item id (Graph `@removed`, EWS `Delete`); the engine maps
    /// it to a key through its item index and ignores ids it never delivered.
    Item(String),
}

/// What a source yields for one calendar.
#[derive(Debug, Clone)]
pub enum SourceBatch {
    /// Every event of the calendar in the window. A calendar's snapshot is one batch.
    Snapshot { events: Vec<Event> },
    /// Changes since the cursor. May come in several batches.
    Delta {
        upserts: Vec<Event>,
        removals: Vec<Removal>,
    },
}

/// The end of one calendar's sync.
#[derive(Debug, Clone)]
pub struct SyncEnd {
    /// The cursor to store once every sink flushed. `None` keeps no cursor (next run is full).
    pub cursor: Option<Cursor>,
}

/// Messages from a source to the runner, tagged with the index of the request in
/// [`Source::sync`]'s `work`.
#[derive(Debug)]
pub enum SyncMessage {
    Batch(usize, SourceBatch),
    Done(usize, Result<SyncEnd, SourceError>),
}

/// The channel a source writes its output into. Sending fails when the runner gave up on the
/// work (a sink failed, shutdown); the source should then stop and return.
#[derive(Debug, Clone)]
pub struct SyncOutput {
    tx: mpsc::Sender<SyncMessage>,
}

/// The runner stopped listening.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the sync was cancelled")]
pub struct Cancelled;

impl SyncOutput {
    /// A channel with room for `capacity` messages (back-pressure keeps memory bounded).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<SyncMessage>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }

    pub async fn batch(&self, index: usize, batch: SourceBatch) -> Result<(), Cancelled> {
        self.tx
            .send(SyncMessage::Batch(index, batch))
            .await
            .map_err(|_| Cancelled)
    }

    pub async fn done(
        &self,
        index: usize,
        result: Result<SyncEnd, SourceError>,
    ) -> Result<(), Cancelled> {
        self.tx
            .send(SyncMessage::Done(index, result))
            .await
            .map_err(|_| Cancelled)
    }
}

/// A failure of a backend, always with its diagnostic.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{diagnostic}")]
pub struct SourceError {
    pub diagnostic: Diagnostic,
    /// Whether trying again later can succeed without the admin changing anything.
    pub retryable: bool,
    /// How long the server asked us to wait (throttling), when it said.
    pub retry_after: Option<Duration>,
}

impl SourceError {
    pub fn new(diagnostic: Diagnostic) -> Self {
        let retryable = diagnostic.info().retryable;
        Self {
            diagnostic,
            retryable,
            retry_after: None,
        }
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    pub fn code(&self) -> &str {
        self.diagnostic.code()
    }
}

impl From<Diagnostic> for SourceError {
    fn from(diagnostic: Diagnostic) -> Self {
        Self::new(diagnostic)
    }
}

/// One step of `calpump profile test`.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStep {
    /// Stable id (`"token"`, `"first-call"`, `"impersonation"` …).
    pub id: String,
    /// What the step does, in plain words (English; the CLI translates known ids).
    pub title: String,
    pub outcome: StepOutcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepOutcome {
    Passed {
        detail: String,
    },
    /// Passed, but something needs attention soon (a secret that expires in 20 days).
    Warning {
        detail: String,
        diagnostic: Diagnostic,
    },
    Failed {
        diagnostic: Diagnostic,
    },
    /// Not run because an earlier step failed.
    Skipped {
        reason: String,
    },
}

impl StepOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, StepOutcome::Failed { .. })
    }
}

/// A backend's reader of Exchange calendars.
#[async_trait]
pub trait Source: Send + Sync {
    /// The backend's name (`"ews"`, `"graph"`), recorded with cursors and source ids.
    fn backend(&self) -> &str;

    /// How many sync requests the runner should hand to one [`Source::sync`] call
    /// (Graph: 20 per `$batch`; EWS: a few).
    fn preferred_chunk(&self) -> usize {
        1
    }

    /// The room lists of the tenant or organisation.
    async fn room_lists(&self) -> Result<Vec<RoomList>, SourceError>;

    /// The rooms of a room list (by the list's address), or all rooms when `None`.
    async fn rooms(&self, room_list: Option<&str>) -> Result<Vec<MailboxInfo>, SourceError>;

    /// Looks up one address (validates a configured mailbox; fills its name and kind).
    async fn resolve_mailbox(&self, address: &str) -> Result<MailboxInfo, SourceError>;

    /// The calendar folders of a mailbox, main calendar first, with item counts.
    async fn calendars(&self, mailbox: &MailboxInfo) -> Result<Vec<CalendarInfo>, SourceError>;

    /// Syncs every request of `work`, writing batches and one `Done` per request into `out`
    /// (in any order; requests are independent). Returns when all are done or `out` is closed.
    async fn sync(&self, work: Vec<SyncRequest>, out: SyncOutput);

    /// Runs the connection step by step for `calpump profile test`: transport, token or
    /// handshake, first call, mailbox access on `probe_mailbox`, permissions.
    async fn probe(&self, probe_mailbox: Option<&str>) -> Vec<ProbeStep>;
}

/// What a factory gets to build a source from a profile.
pub struct ProfileContext<'a> {
    /// The profile's name (`[profiles.<name>]`).
    pub name: &'a str,
    /// The profile's table without `backend`.
    pub settings: &'a toml::Table,
    pub secrets: &'a SecretResolver,
}

/// Builds a backend's [`Source`] from a profile. One per backend, registered by the binary.
pub trait SourceFactory: Send + Sync {
    /// The value of `backend = "…"` this factory serves.
    fn backend(&self) -> &'static str;

    /// Validates a profile's settings without touching the network: unknown keys, wrong types,
    /// missing secrets, insecure URLs. Paths in the issues are relative to the profile table.
    fn check(&self, ctx: &ProfileContext<'_>) -> Vec<ConfigIssue>;

    /// Builds the source (resolves secrets; may not touch the network yet).
    fn build(&self, ctx: &ProfileContext<'_>) -> Result<Arc<dyn Source>, SourceError>;
}
