//! Counters per profile and operation: requests, throttles, retries, errors — plain atomics,
//! read as plain data by [`Stats::snapshot`] (and for every live profile by [`snapshot_all`]),
//! so the daemon's `/metrics` can export them without this crate knowing its registry.
//!
//! [`HttpClient::send`](crate::http::HttpClient::send) counts requests, throttles (429, 503
//! with `Retry-After`) and errors (transport failures, non-2xx); [`retry`](crate::retry::retry)
//! counts retries. A backend counts what only it can see (an EWS `ErrorServerBusy` inside a
//! 200 body) with [`OpStats::throttle`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::Serialize;

/// The counters of one operation.
#[derive(Debug, Default)]
pub struct OpStats {
    requests: AtomicU64,
    throttles: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
}

impl OpStats {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn throttle(&self) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, operation: &str) -> OpSnapshot {
        OpSnapshot {
            operation: operation.to_string(),
            requests: self.requests.load(Ordering::Relaxed),
            throttles: self.throttles.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one operation at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpSnapshot {
    pub operation: String,
    pub requests: u64,
    pub throttles: u64,
    pub retries: u64,
    pub errors: u64,
}

/// One profile's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub profile: String,
    pub backend: String,
    /// Sorted by operation name.
    pub operations: Vec<OpSnapshot>,
    /// Days until the profile's secret or certificate expires (negative: expired), when known.
    pub secret_days_left: Option<i64>,
}

impl StatsSnapshot {
    /// The sum over all operations.
    pub fn total(&self) -> OpSnapshot {
        let mut total = OpSnapshot {
            operation: "*".to_string(),
            requests: 0,
            throttles: 0,
            retries: 0,
            errors: 0,
        };
        for op in &self.operations {
            total.requests += op.requests;
            total.throttles += op.throttles;
            total.retries += op.retries;
            total.errors += op.errors;
        }
        total
    }

    pub fn op(&self, operation: &str) -> Option<&OpSnapshot> {
        self.operations.iter().find(|o| o.operation == operation)
    }
}

/// The counters of one profile.
#[derive(Debug)]
pub struct Stats {
    profile: String,
    backend: String,
    ops: Mutex<BTreeMap<String, Arc<OpStats>>>,
    secret_days_left: AtomicI64,
    secret_days_known: AtomicBool,
}

fn registry() -> &'static Mutex<Vec<Weak<Stats>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Weak<Stats>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

impl Stats {
    fn build(profile: &str, backend: &str) -> Self {
        Self {
            profile: profile.to_string(),
            backend: backend.to_string(),
            ops: Mutex::new(BTreeMap::new()),
            secret_days_left: AtomicI64::new(0),
            secret_days_known: AtomicBool::new(false),
        }
    }

    /// A profile's counters, listed by [`snapshot_all`] while they live.
    pub fn register(profile: &str, backend: &str) -> Arc<Self> {
        let stats = Arc::new(Self::build(profile, backend));
        if let Ok(mut list) = registry().lock() {
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&stats));
        }
        stats
    }

    /// Counters that are not listed anywhere (tests, one-off probes).
    pub fn detached() -> Arc<Self> {
        Arc::new(Self::build("", ""))
    }

    pub fn backend(&self) -> &str {
        &self.backend
    }

    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The counters of an operation (created on first use). Hold on to the `Arc` on hot paths.
    pub fn op(&self, operation: &str) -> Arc<OpStats> {
        let mut ops = match self.ops.lock() {
            Ok(ops) => ops,
            Err(poisoned) => poisoned.into_inner(),
        };
        ops.entry(operation.to_string()).or_default().clone()
    }

    /// Records the days left before the secret or certificate expires (a gauge).
    pub fn set_secret_days_left(&self, days: Option<i64>) {
        match days {
            Some(d) => {
                self.secret_days_left.store(d, Ordering::Relaxed);
                self.secret_days_known.store(true, Ordering::Relaxed);
            }
            None => self.secret_days_known.store(false, Ordering::Relaxed),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let ops = match self.ops.lock() {
            Ok(ops) => ops,
            Err(poisoned) => poisoned.into_inner(),
        };
        StatsSnapshot {
            profile: self.profile.clone(),
            backend: self.backend.clone(),
            operations: ops.iter().map(|(name, op)| op.snapshot(name)).collect(),
            secret_days_left: self
                .secret_days_known
                .load(Ordering::Relaxed)
                .then(|| self.secret_days_left.load(Ordering::Relaxed)),
        }
    }
}

/// Snapshots of every registered profile's counters that is still alive.
pub fn snapshot_all() -> Vec<StatsSnapshot> {
    let live: Vec<Arc<Stats>> = match registry().lock() {
        Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => Vec::new(),
    };
    live.iter().map(|s| s.snapshot()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_profiles_are_listed_while_alive() {
        let stats = Stats::register("cloud-stats-test", "graph");
        let op = stats.op("calendarView");
        op.request();
        op.request();
        op.throttle();
        op.retry();
        stats.op("token").error();
        stats.set_secret_days_left(Some(12));
        let all = snapshot_all();
        let mine = all
            .iter()
            .find(|s| s.profile == "cloud-stats-test")
            .expect("listed");
        assert_eq!(mine.backend, "graph");
        assert_eq!(mine.secret_days_left, Some(12));
        let view = mine.op("calendarView").expect("op");
        assert_eq!(
            (view.requests, view.throttles, view.retries, view.errors),
            (2, 1, 1, 0)
        );
        let total = mine.total();
        assert_eq!((total.requests, total.errors), (2, 1));
        drop(op);
        drop(stats);
        assert!(
            !snapshot_all()
                .iter()
                .any(|s| s.profile == "cloud-stats-test")
        );
    }
}
