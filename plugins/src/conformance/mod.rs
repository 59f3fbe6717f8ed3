//! The sink conformance suite: the behaviour every sink owes the engine, checked against a
//! real instance of the sink on real storage. Enabled by the `conformance` feature; meant for a
//! sink's tests (`[dev-dependencies] calpump-plugin = { …, features = ["conformance"] }`).
//!
//! A sink's test implements the small [`Harness`] trait — open a fresh instance (as after a
//! restart), read back what the sink holds for a (route, mailbox, calendar) as
//! `EventKey → content hash` with its deleted state, and hold a mailbox's stored data busy — and
//! calls [`run_all`]:
//!
//! ```ignore
//! #[test]
//! fn sqlite_conformance() {
//!     calpump_plugin::conformance::run_all("sqlite_conformance", || MyHarness::new());
//! }
//! ```
//!
//! The test's own name is needed because the crash check re-executes the test binary as a
//! child (`std::env::current_exe()` with `--exact NAME` and [`CHILD_ENV`] set), lets it write
//! batches, kills it with SIGKILL and checks what survived. In the child, `run_all` never calls
//! the `make` closure: it opens the sink with [`Harness::reopen`] from the parent's spec.
//!
//! The checks ([`CHECKS`]):
//! * `replay_changes_nothing` — the same batch twice (also through a fresh instance) changes
//!   nothing, not even the sink's revision marker;
//! * `complete_snapshot_removes_exactly_what_vanished` — including the window's edges, and
//!   never rows of another calendar, route, or outside the window;
//! * `incomplete_snapshot_removes_nothing`;
//! * `delta_applies_upserts_and_deletes` — and revives a deleted key that comes back;
//! * `crash_and_redelivery` — a killed writer leaves whole batches only, and re-delivery from
//!   the last acknowledged batch reaches the source's truth;
//! * `different_mailboxes_do_not_block_each_other` — while mailbox A's items are held busy,
//!   mailbox B's writes complete;
//! * `concurrent_routes` — several routes writing different mailboxes at once all succeed.

mod checks;
mod crash;
pub mod generate;
mod table;

use std::any::Any;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::model::{Batch, EventKey, SinkResult};
use crate::sdk::{Sink, SinkError};

pub use crash::CHILD_ENV;
pub use generate::{EventGen, Truth};
pub use table::TableSink;

/// What a sink holds for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The content hash of what is stored ([`crate::Event::content_hash`] of the event as the
    /// sink would give it back; a sink should recompute it from what it stored rather than echo
    /// a hash column, so a field that did not survive shows).
    pub content_hash: String,
    /// Soft-deleted (still visible as deleted).
    pub deleted: bool,
    /// An opaque marker that changes whenever the sink rewrites the item (e.g. its run id and
    /// write time); `None` if the sink has none. Replays must leave it alone.
    pub revision: Option<String>,
}

/// Everything a sink holds for one (route, mailbox, calendar).
pub type Contents = BTreeMap<EventKey, Stored>;

/// A guard that keeps a mailbox's stored items busy until dropped. See [`Harness::hold_mailbox`].
pub enum Hold {
    /// Writes to the held items wait until the guard drops (e.g. an open transaction holding row
    /// locks on them). Writes to other mailboxes must not wait.
    Exclusive(Box<dyn Any + Send>),
    /// Only a reader is held (e.g. a long read transaction in SQLite's WAL mode, where writers
    /// are serialised by design): no writer, of this mailbox or another, may wait for it.
    Shared(Box<dyn Any + Send>),
}

/// A sink instance as the suite drives it: the SDK's [`Sink`] linked in (every `Sink` is one),
/// or a plugin table called through the C ABI ([`TableSink`]).
pub trait SinkHandle: Send + Sync {
    fn write_batch(&self, batch: &Batch) -> Result<SinkResult, SinkError>;
    fn flush(&self) -> Result<(), SinkError>;
}

impl<S: Sink> SinkHandle for S {
    fn write_batch(&self, batch: &Batch) -> Result<SinkResult, SinkError> {
        Sink::write_batch(self, batch.clone())
    }
    fn flush(&self) -> Result<(), SinkError> {
        Sink::flush(self)
    }
}

/// What a sink's test provides. Storage is shared by every instance the harness opens (one
/// database, one directory); the suite keeps its checks apart by route and mailbox names.
pub trait Harness: Sync {
    /// What another process needs to open the same sink on the same storage (typically the
    /// sink's configuration, plus e.g. a plugin path). Must be JSON.
    fn reopen_spec(&self) -> serde_json::Value;

    /// Opens a fresh instance from a [`Harness::reopen_spec`], as a restarted process would.
    /// Called in this process and in the crash check's child.
    fn reopen(spec: &serde_json::Value) -> Result<Box<dyn SinkHandle>, SinkError>
    where
        Self: Sized;

    /// What the sink holds for (route, mailbox, calendar), read from its storage (not from an
    /// instance's memory), including soft-deleted items.
    fn read_back(&self, route: &str, mailbox: &str, calendar: &str) -> Result<Contents, String>;

    /// Whether deletions stay visible as `deleted` in [`Harness::read_back`] (soft deletes);
    /// `false` if deleted items disappear.
    fn keeps_deleted(&self) -> bool;

    /// Keeps the stored items of (route, mailbox) busy the way a long write of that mailbox
    /// would, until the returned guard drops.
    fn hold_mailbox(&self, route: &str, mailbox: &str) -> Result<Hold, String>;
}

/// Opens a fresh instance of the harness's sink.
pub fn open<H: Harness>(harness: &H) -> Result<Box<dyn SinkHandle>, String> {
    H::reopen(&harness.reopen_spec()).map_err(|e| format!("opening the sink: {e}"))
}

type CheckFn<H> = fn(&H, &Ctx) -> Result<(), String>;

/// The checks, by name, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "replay_changes_nothing",
    "complete_snapshot_removes_exactly_what_vanished",
    "incomplete_snapshot_removes_nothing",
    "delta_applies_upserts_and_deletes",
    "crash_and_redelivery",
    "different_mailboxes_do_not_block_each_other",
    "concurrent_routes",
];

fn check_fn<H: Harness>(name: &str) -> Option<CheckFn<H>> {
    Some(match name {
        "replay_changes_nothing" => checks::replay_changes_nothing::<H>,
        "complete_snapshot_removes_exactly_what_vanished" => checks::complete_snapshot::<H>,
        "incomplete_snapshot_removes_nothing" => checks::incomplete_snapshot::<H>,
        "delta_applies_upserts_and_deletes" => checks::delta_check::<H>,
        "crash_and_redelivery" => crash::crash_and_redelivery::<H>,
        "different_mailboxes_do_not_block_each_other" => checks::no_blocking::<H>,
        "concurrent_routes" => checks::concurrent_routes::<H>,
        _ => return None,
    })
}

/// Per-run context of the checks: the test's name (for the crash child) and a nonce that keeps
/// route and mailbox names of separate runs apart.
pub struct Ctx {
    pub test_name: String,
    pub nonce: String,
}

impl Ctx {
    /// A route name for `check`.
    pub fn route(&self, check: &str, n: u32) -> String {
        format!("conf-{check}-{n}-{}", self.nonce)
    }
    /// A mailbox address for `check`.
    pub fn mailbox(&self, check: &str, n: u32) -> String {
        format!(
            "room{n}-{}-{}@conformance.test",
            check.replace('_', "-"),
            self.nonce
        )
    }
}

/// The outcome of each check.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<(String, Result<Duration, String>)>,
}

impl Report {
    pub fn failures(&self) -> Vec<(&str, &str)> {
        self.results
            .iter()
            .filter_map(|(name, r)| r.as_ref().err().map(|e| (name.as_str(), e.as_str())))
            .collect()
    }

    /// Panics listing every failed check.
    pub fn assert_ok(&self) {
        let failures = self.failures();
        if !failures.is_empty() {
            let text: Vec<String> = failures
                .iter()
                .map(|(name, error)| format!("  {name}: {error}"))
                .collect();
            panic!(
                "{} of {} conformance checks failed:\n{}",
                failures.len(),
                self.results.len(),
                text.join("\n")
            );
        }
    }
}

/// Runs the checks named in `only` (all of [`CHECKS`] when empty) and returns their outcome.
/// In a crash-check child process this never returns (see the module documentation).
pub fn run_checks<H: Harness>(test_name: &str, make: impl FnOnce() -> H, only: &[&str]) -> Report {
    if let Some(spec) = crash::child_spec(test_name) {
        crash::child_main::<H>(spec);
    }
    let harness = make();
    let nonce = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let ctx = Ctx {
        test_name: test_name.to_string(),
        nonce,
    };
    let mut report = Report::default();
    for name in CHECKS
        .iter()
        .filter(|n| only.is_empty() || only.contains(n))
    {
        let Some(check) = check_fn::<H>(name) else {
            continue;
        };
        let started = Instant::now();
        let outcome = check(&harness, &ctx).map(|()| started.elapsed());
        match &outcome {
            Ok(elapsed) => println!("conformance [{test_name}] {name}: ok ({elapsed:.2?})"),
            Err(e) => println!("conformance [{test_name}] {name}: FAILED: {e}"),
        }
        report.results.push((name.to_string(), outcome));
    }
    for name in only.iter().filter(|n| !CHECKS.contains(n)) {
        report
            .results
            .push((name.to_string(), Err("no such check".to_string())));
    }
    report
}

/// Runs every check and panics if any fails. `test_name` must be the calling `#[test]`
/// function's name as libtest knows it (the crash check re-runs exactly that test).
pub fn run_all<H: Harness>(test_name: &str, make: impl FnOnce() -> H) {
    run_checks(test_name, make, &[]).assert_ok();
}

/// Compares what a sink holds with the truth: the live items must be exactly the expected keys
/// with the expected hashes. Deleted items must not be expected ones.
pub fn compare(
    what: &str,
    expected: &BTreeMap<EventKey, String>,
    got: &Contents,
) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut differ = Vec::new();
    for (key, hash) in expected {
        match got.get(key) {
            None => missing.push(key.to_string()),
            Some(s) if s.deleted => missing.push(format!("{key} (marked deleted)")),
            Some(s) if s.content_hash != *hash => differ.push(key.to_string()),
            Some(_) => {}
        }
    }
    let extra: Vec<String> = got
        .iter()
        .filter(|(k, s)| !s.deleted && !expected.contains_key(*k))
        .map(|(k, _)| k.to_string())
        .collect();
    if missing.is_empty() && differ.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let show = |v: &[String]| {
        let mut s = v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 3 {
            s.push_str(&format!(" and {} more", v.len() - 3));
        }
        s
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing ({})", missing.len(), show(&missing)));
    }
    if !extra.is_empty() {
        parts.push(format!(
            "{} live that should not be ({})",
            extra.len(),
            show(&extra)
        ));
    }
    if !differ.is_empty() {
        parts.push(format!(
            "{} with other content ({})",
            differ.len(),
            show(&differ)
        ));
    }
    Err(format!(
        "{what}: expected {} live items, the sink holds {}: {}",
        expected.len(),
        got.values().filter(|s| !s.deleted).count(),
        parts.join("; ")
    ))
}

/// Checks a write succeeded with every item of the batch accepted and none rejected.
pub fn expect_all_accepted(
    what: &str,
    batch: &Batch,
    result: Result<SinkResult, SinkError>,
) -> Result<SinkResult, String> {
    let result = result.map_err(|e| format!("{what}: write_batch failed ({:?}): {e}", e.kind))?;
    if !result.rejected.is_empty() || !result.retryable.is_empty() {
        return Err(format!(
            "{what}: items not taken: rejected {:?}, retryable {:?}",
            result.rejected.iter().take(3).collect::<Vec<_>>(),
            result.retryable.iter().take(3).collect::<Vec<_>>()
        ));
    }
    let accepted: std::collections::HashSet<&EventKey> = result.accepted.iter().collect();
    let missing: Vec<&EventKey> = batch
        .upserts
        .iter()
        .map(|e| e.key())
        .chain(batch.deletes.iter())
        .filter(|k| !accepted.contains(k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{what}: {} items neither accepted nor rejected (e.g. {})",
            missing.len(),
            missing[0]
        ));
    }
    Ok(result)
}
