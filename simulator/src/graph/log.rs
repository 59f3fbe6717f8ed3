//! A log of the Graph requests a simulator saw — direct requests and each `$batch` sub-request
//! alike — with the `Prefer` preferences each one carried, so tests can check that a client
//! asks for immutable ids and UTC on every page (`concepts/outlook-immutable-id.md`,
//! `api-reference/v1.0/api/user-list-calendarview.md`, "Prefer: outlook.timezone").
//!
//! Sub-requests do not inherit the outer `$batch` request's `Prefer` (see `outer_prefer`), so
//! what is logged for them is what their own `headers` said.

use crate::control::Control;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

const MAX_LOG: usize = 20_000;

/// One Graph request as the simulator read it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphRequestRecord {
    /// As counted in `/_sim/stats` (`calendarView`, `calendarView.delta`, `event`, `batch`, …);
    /// `unrouted` for a path Graph does not serve.
    pub operation: String,
    pub method: String,
    /// The mailbox the request reads, when there is one.
    pub mailbox: Option<String>,
    /// A sub-request of a `$batch`.
    pub in_batch: bool,
    /// The query string as sent (a next page carries `$skiptoken`).
    pub query: String,
    /// `Prefer: IdType="ImmutableId"`.
    pub immutable_id: bool,
    /// `Prefer: outlook.timezone` as given.
    pub timezone: Option<String>,
    /// `Prefer: odata.maxpagesize`.
    pub max_page_size: Option<usize>,
}

/// The Graph request log of one simulator.
#[derive(Default)]
pub struct GraphLog {
    log: Mutex<VecDeque<GraphRequestRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GraphLog {
    pub(crate) fn record(&self, r: GraphRequestRecord) {
        let mut l = lock(&self.log);
        l.push_back(r);
        while l.len() > MAX_LOG {
            l.pop_front();
        }
    }

    /// The recorded requests, oldest first (at most the last 20 000).
    pub fn requests(&self) -> Vec<GraphRequestRecord> {
        lock(&self.log).iter().cloned().collect()
    }

    pub fn clear(&self) {
        lock(&self.log).clear();
    }
}

type Registry = Mutex<HashMap<usize, (Weak<crate::control::Shared>, Arc<GraphLog>)>>;

/// The Graph request log of a simulator (one per [`Control`], created on first use).
pub fn of(control: &Control) -> Arc<GraphLog> {
    static REG: OnceLock<Registry> = OnceLock::new();
    let reg = REG.get_or_init(|| Mutex::new(HashMap::new()));
    let key = Arc::as_ptr(&control.shared) as usize;
    let mut r = lock(reg);
    r.retain(|_, (w, _)| w.strong_count() > 0);
    if let Some((w, log)) = r.get(&key)
        && w.upgrade()
            .is_some_and(|s| Arc::ptr_eq(&s, &control.shared))
    {
        return log.clone();
    }
    let log = Arc::new(GraphLog::default());
    r.insert(key, (Arc::downgrade(&control.shared), log.clone()));
    log
}
