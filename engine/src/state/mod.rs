//! The state store: cursors, the item index, run history, mailbox status and rejected events.
//!
//! [`StateStore`] is async and backend-neutral; [`SqliteStateStore`] is the embedded default.
//! The design plans a PostgreSQL implementation later (several `calpump run` instances sharing
//! one state and claiming work items by lease), so nothing here assumes one process or SQLite.
//!
//! Invariants:
//! * A calendar's commit ([`CalendarCommit`]: cursor, item index changes, event count) is one
//!   transaction. A crash before it leaves the previous cursor, so the next run re-delivers.
//! * The run history holds runs of a route ([`RunKind::Sync`]) and events about it such as a
//!   backend switch ([`RunKind::Switch`], with a note); events are never reported as errors.
//! * Everything is keyed by [`CalendarKey`] = (route, mailbox, calendar, backend): a route that
//!   switches backend starts with fresh cursors and index, and its sinks dedupe by event key.
//! * What grows with time is pruned by the [`Retention`] (`[state] keep_runs`, `keep_days`):
//!   sync runs and rejections of events that are gone. Switches, the latest sync of every route,
//!   cursors, the item index and mailbox status are never pruned; they do not grow with time
//!   (the item index holds the events of a calendar's window: a complete snapshot replaces it,
//!   a delta removes what it removes, and every calendar is read in full when the window moves
//!   on each day).

pub(crate) mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use calpump_plugin::EventKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::source::Cursor;

pub use sqlite::SqliteStateStore;

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {location}: {source}")]
    Database {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("state store {location}: migration {version} ({name}) failed: {source}")]
    Migration {
        location: String,
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "state store {location} was written by a newer calpump (schema version {found}, this one knows up to {known}); upgrade calpump"
    )]
    TooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("state store holds an unreadable value in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// One calendar of one mailbox as read by one route through one backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarKey {
    pub route: String,
    /// Lower-case SMTP address.
    pub mailbox: String,
    /// Neutral calendar path.
    pub calendar: String,
    pub backend: String,
}

/// What the runner needs to know about a calendar before syncing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarState {
    pub cursor: Option<Cursor>,
    /// Events in the item index after the last commit (the empty-calendar guard compares a new
    /// snapshot with it).
    pub event_count: u64,
    pub last_commit: Option<DateTime<Utc>>,
}

/// How a commit changes a calendar's item index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    /// A complete snapshot: the index becomes exactly these (item id, key) pairs.
    Replace(Vec<(String, EventKey)>),
    /// A delta (or an incomplete snapshot): add or update these, remove those keys.
    Update {
        upserts: Vec<(String, EventKey)>,
        removed: Vec<EventKey>,
    },
}

/// One calendar's commit, applied in one transaction.
#[derive(Debug, Clone)]
pub struct CalendarCommit {
    pub key: CalendarKey,
    /// The new cursor; `None` removes the stored one (the next run reads in full).
    pub cursor: Option<Cursor>,
    pub index: IndexChange,
    pub at: DateTime<Utc>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Every mailbox synced.
    Ok,
    /// Some mailboxes failed; the others synced.
    Partial,
    /// The route stopped (a fatal sink error, no mailbox could be listed).
    Failed,
    /// Stopped by a shutdown signal after the batch in flight.
    Cancelled,
    /// The process died while the run was going on (found at the next start).
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "running" => RunStatus::Running,
            "ok" => RunStatus::Ok,
            "partial" => RunStatus::Partial,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => RunStatus::Interrupted,
        }
    }
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    pub mailboxes: u64,
    pub calendars: u64,
    pub upserts: u64,
    pub deletes: u64,
    pub rejected: u64,
    pub errors: u64,
}

/// What an entry of the run history records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A run of the route (sync, with counts and errors).
    #[default]
    Sync,
    /// `calpump migrate switch` re-pointed the route to another profile: an event, not a
    /// failure. Its [`RunRecord::note`] says from → to, by whom and when; its
    /// [`RunRecord::data`] holds the profiles and backends (`--back` reads them).
    Switch,
    /// A kind written by a newer calpump.
    #[serde(other)]
    Other,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Sync => "sync",
            RunKind::Switch => "switch",
            RunKind::Other => "other",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "sync" => RunKind::Sync,
            "switch" => RunKind::Switch,
            _ => RunKind::Other,
        }
    }
}

/// Which entries of the run history to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryFilter {
    /// Every entry.
    All,
    /// Runs of the route ([`RunKind::Sync`]).
    Syncs,
    /// Everything else: events such as switches.
    Events,
    /// Entries of one kind.
    Kind(RunKind),
}

/// One entry of the run history: a sync of the route, or an event such as a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub route: String,
    /// What the entry records; entries stored before kinds existed are syncs.
    #[serde(default)]
    pub kind: RunKind,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub counts: RunCounts,
    /// Diagnostic codes and details of the run's errors (at most a few dozen).
    pub errors: Vec<ErrorRecord>,
    /// For people: what a non-sync entry did (a switch: from → to, by whom, when).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Machine-readable details of a non-sync entry (a switch's profiles and backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// A diagnostic as stored: code and detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub code: String,
    pub detail: String,
    /// The mailbox it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

impl ErrorRecord {
    pub fn from_diagnostic(d: &crate::diagnostics::Diagnostic, mailbox: Option<&str>) -> Self {
        Self {
            code: d.code().to_string(),
            detail: d.detail().to_string(),
            mailbox: mailbox.map(str::to_string),
        }
    }
}

/// The sync health of one mailbox of one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxStatus {
    pub route: String,
    pub mailbox: String,
    pub name: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// When the current streak of failures began (`None` when the last attempt succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<ErrorRecord>,
    /// The last warning (e.g. the empty-calendar guard held back deletes).
    pub last_warning: Option<ErrorRecord>,
}

impl MailboxStatus {
    /// As the sinks' ticks carry it.
    pub fn health(&self) -> calpump_plugin::MailboxHealth {
        calpump_plugin::MailboxHealth {
            route: self.route.clone(),
            mailbox: self.mailbox.clone(),
            mailbox_name: self.name.clone(),
            last_success: self.last_success,
            failing_since: self.failing_since,
            last_error: self.last_error.as_ref().map(|e| e.code.clone()),
        }
    }
}

/// An event a sink will not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub route: String,
    pub sink: String,
    pub mailbox: String,
    pub calendar: String,
    pub key: EventKey,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// How much history the store keeps. Applied by [`StateStore::prune`] (the SQLite store prunes
/// at the end of every run, in [`StateStore::finish_run`]).
///
/// * A **sync run** goes when it is older than `keep_days` **and** not among the newest
///   `keep_runs` sync runs of its route: both rules keep, neither deletes on its own. A run
///   still `running` and the latest sync of a route stay whatever the limits (`keep_runs = 0`
///   counts as 1).
/// * A **rejection** (an event a sink would not take) goes when it is older than `keep_days`
///   and its event is no longer in the route's item index (deleted in Exchange, or out of the
///   window): a rejection stays as long as the event does, and is cleared as before when a
///   sink accepts the event.
/// * Never pruned: events of the run history that are not syncs (a `migrate switch` and its
///   data, which `--back` reads), cursors, the item index (what a switch carries over), and
///   mailbox status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Sync runs kept per route however old (at least 1).
    pub keep_runs: u32,
    /// Sync runs and rejections younger than this many days are kept however many there are;
    /// 0 keeps by count only.
    pub keep_days: u32,
}

impl Retention {
    /// Sync runs kept per route by default, however old.
    pub const DEFAULT_KEEP_RUNS: u32 = 100;
    /// Days of sync runs and rejections kept by default, however many.
    pub const DEFAULT_KEEP_DAYS: u32 = 14;

    /// Entries started (rejections made) before this instant are past `keep_days`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::from(self.keep_days))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_runs: Self::DEFAULT_KEEP_RUNS,
            keep_days: Self::DEFAULT_KEEP_DAYS,
        }
    }
}

/// What [`StateStore::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneSummary {
    /// Sync runs of the run history.
    pub runs: u64,
    /// Rejections of events that are gone.
    pub rejections: u64,
}

/// What a mailbox's attempt ended with.
#[derive(Debug, Clone)]
pub enum MailboxOutcome {
    Success { warning: Option<ErrorRecord> },
    Failure(ErrorRecord),
}

/// The state store. See the module documentation.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The stored cursor and counts of a calendar.
    async fn calendar_state(&self, key: &CalendarKey) -> Result<CalendarState, StateError>;

    /// Maps source item ids to event keys through the item index; unknown ids are absent.
    async fn resolve_items(
        &self,
        key: &CalendarKey,
        item_ids: &[String],
    ) -> Result<HashMap<String, EventKey>, StateError>;

    /// Applies one calendar's commit in one transaction.
    async fn commit_calendar(&self, commit: &CalendarCommit) -> Result<(), StateError>;

    /// Records the start of a run.
    async fn begin_run(
        &self,
        id: &str,
        route: &str,
        started_at: DateTime<Utc>,
    ) -> Result<(), StateError>;

    /// Records the end of a run. A store with a [`Retention`] then prunes (see
    /// [`StateStore::prune`]); a failed prune is logged, not returned: the run is recorded.
    async fn finish_run(
        &self,
        id: &str,
        finished_at: DateTime<Utc>,
        status: RunStatus,
        counts: &RunCounts,
        errors: &[ErrorRecord],
    ) -> Result<(), StateError>;

    /// Marks runs still `running` as `interrupted` (the process died during them). Call once at
    /// start-up, before new runs begin. Returns how many were marked.
    async fn mark_interrupted_runs(&self) -> Result<u64, StateError>;

    /// Records a finished entry that is not a sync run (an event such as a switch: its kind,
    /// note and data), in one statement.
    async fn record_event(&self, entry: &RunRecord) -> Result<(), StateError>;

    /// The most recent entries of the run history that `filter` selects, newest first (of one
    /// route, or all).
    async fn history(
        &self,
        route: Option<&str>,
        filter: HistoryFilter,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StateError>;

    /// The most recent entries of every kind, newest first (of one route, or all).
    async fn recent_runs(
        &self,
        route: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StateError> {
        self.history(route, HistoryFilter::All, limit).await
    }

    /// Records how a mailbox's attempt ended.
    async fn record_mailbox(
        &self,
        route: &str,
        mailbox: &str,
        name: Option<&str>,
        at: DateTime<Utc>,
        outcome: &MailboxOutcome,
    ) -> Result<(), StateError>;

    /// Mailbox status rows (of one route, or all), by route and address.
    async fn mailbox_status(&self, route: Option<&str>) -> Result<Vec<MailboxStatus>, StateError>;

    /// Forgets the status rows of `route`'s mailboxes that are not in `keep` (addresses as
    /// [`record_mailbox`](Self::record_mailbox) got them): mailboxes the route no longer has.
    /// Returns the addresses forgotten. Cursors and item indexes stay.
    async fn forget_mailboxes(
        &self,
        route: &str,
        keep: &[String],
    ) -> Result<Vec<String>, StateError>;

    /// Records rejected events (replacing an earlier rejection of the same key by the same sink)
    /// and forgets rejections of `accepted` keys.
    async fn record_rejections(
        &self,
        route: &str,
        sink: &str,
        rejected: &[Rejection],
        accepted: &[EventKey],
    ) -> Result<(), StateError>;

    /// Current rejections (of one route, or all).
    async fn rejections(&self, route: Option<&str>) -> Result<Vec<Rejection>, StateError>;

    /// Every calendar with a stored cursor or index (for tests and `status`).
    async fn calendars(
        &self,
        route: Option<&str>,
    ) -> Result<Vec<(CalendarKey, CalendarState)>, StateError>;

    /// The whole item index of a calendar, by item id.
    async fn item_index(&self, key: &CalendarKey) -> Result<HashMap<String, EventKey>, StateError>;

    /// Deletes the run history and rejections past the store's [`Retention`] (as of `now`) in
    /// one transaction. The default keeps everything (a store without retention).
    async fn prune(&self, now: DateTime<Utc>) -> Result<PruneSummary, StateError> {
        let _ = now;
        Ok(PruneSummary::default())
    }

    /// Closes connections after pending writes (shutdown).
    async fn close(&self);
}
