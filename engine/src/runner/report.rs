//! What a run reports: per route and mailbox, counts and the diagnostics met.

use calpump_plugin::Window;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::migrate::{MailboxComparison, Summary};
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
    /// Shadow mode's comparison after the run (a route with a `shadow_profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowReport>,
}

/// Shadow mode: the route read through its `shadow_profile` and compared with its own profile.
/// Never a failure of the run; nothing from the shadow reached a sink or the state store.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    pub profile: Option<String>,
    pub backend: String,
    pub compared_at: DateTime<Utc>,
    pub seconds: f64,
    /// Every mailbox read through both and nothing differs.
    pub clean: bool,
    /// Events only in one profile plus events whose fields differ.
    pub differences: usize,
    pub summary: Summary,
    /// Room lists the route's profile could not read.
    pub route_errors: Vec<Diagnostic>,
    /// Mailboxes that are not clean (the first 50).
    pub mailboxes: Vec<MailboxComparison>,
    pub mailboxes_truncated: bool,
    /// Stopped by shutdown before every mailbox was compared.
    pub interrupted: bool,
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
