//! What a run reports: per route and mailbox, counts and the diagnostics met.

use calpump_plugin::Window;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::state::{RunCounts, RunStatus};

/// The report of one `calpump sync` (every route run once).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub routes: Vec<RouteReport>,
}

impl RunReport {
    /// Whether any route failed or any mailbox could not be synced (`calpump sync` exits 1).
    pub fn any_failure(&self) -> bool {
        self.routes.iter().any(RouteReport::any_failure)
    }
}

/// One route's run.
#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    pub route: String,
    pub run_id: String,
    pub backend: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: RunStatus,
    pub counts: RunCounts,
    pub window: Window,
    pub mailboxes: Vec<MailboxReport>,
    /// Errors that stopped the route (a fatal sink error, a room list that cannot be read).
    pub errors: Vec<Diagnostic>,
}

impl RouteReport {
    pub fn any_failure(&self) -> bool {
        !self.errors.is_empty()
            || self.mailboxes.iter().any(|m| !m.errors.is_empty())
            || matches!(self.status, RunStatus::Failed | RunStatus::Partial)
    }
}

/// One mailbox of a route's run.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxReport {
    pub address: String,
    pub name: Option<String>,
    /// Calendars planned.
    pub calendars: u64,
    /// Calendars committed (or held by the empty-calendar guard).
    pub calendars_done: u64,
    pub upserts: u64,
    pub deletes: u64,
    pub rejected: u64,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}
