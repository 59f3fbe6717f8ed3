//! The sync runner: one run of a route, from its mailboxes to its sinks.
//!
//! For each route: resolve its mailboxes (configured addresses, room lists) and list the
//! calendars the route reads (both with at most `route.concurrency` requests at once; the
//! default calendar needs no listing), plan one work item per (mailbox, calendar) with the
//! route's window, and hand them to [`Source::sync`] in chunks of [`Source::preferred_chunk`],
//! several chunks at once (at most `route.concurrency` calendars in flight). A chunk loads its
//! calendars' stored cursors and counts when it starts, so memory holds the cursors of the
//! chunks in flight, not of the whole tenant. Every batch the source yields goes to every sink of the route; a calendar's cursor,
//! item index and count are committed (one transaction) only after every sink flushed.
//!
//! * Removals the source names by item id are resolved through the item index.
//! * The empty-calendar guard: a snapshot that reads empty where the calendar held events is
//!   delivered with `complete = false` (sinks remove nothing) and not committed, with the
//!   warning `sync.EmptyCalendarGuard` — unless `--accept-empty` or `empty_guard = false`.
//!   Deltas likewise: while a calendar's deltas carry no upsert, their deletes are held until
//!   the calendar's end; if they would remove every event it held (deletes ≥ the stored count),
//!   they are not delivered and the calendar is not committed (same warning); otherwise they go
//!   out then. The first upsert releases held deletes at once.
//! * Sinks: retryable failures and a result's `retryable` items are retried with capped
//!   exponential back-off; rejected items are recorded per event. A fatal error, a timeout, or
//!   retries running out stop the route (reported as `sink.Failed`); cursors stay, so the next
//!   run re-delivers. A failing mailbox does not stop the others.
//! * Shutdown: every wait on the source (discovery, the next batch) and every retry back-off
//!   races it, so a run stops within moments of the signal; a batch already handed to a sink
//!   is finished, nothing uncommitted is committed, and the run ends `cancelled` — no error,
//!   no `sink.Failed`, nothing counted in `calpump_errors_total`. A fatal failure of the route
//!   interrupts the other chunks' source reads the same way.

mod chunks;
mod report;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calpump_plugin::{Batch, BatchKind, Event, EventKey, SCHEMA_VERSION, Window};
use chrono::{DateTime, NaiveTime, Utc};
use tokio::task::JoinSet;

use crate::config::{CalendarSelection, RouteConfig};
use crate::diagnostics::{Diagnostic, catalogue};
use crate::plugin_host::{SinkCallError, SinkCallErrorKind, SinkHandle};
use crate::shutdown::Shutdown;
use crate::source::{
    CalendarInfo, MailboxInfo, Removal, Source, SourceBatch, SyncEnd, SyncMessage, SyncOutput,
    SyncRequest,
};
use crate::state::{
    CalendarCommit, CalendarKey, ErrorRecord, IndexChange, MailboxOutcome, Rejection, RunCounts,
    RunStatus, StateError, StateStore,
};

pub use report::{MailboxReport, RouteReport, RunReport, ShadowReport};

/// A route ready to run: its configuration, its source and its sinks (in the route's order).
#[derive(Clone)]
pub struct RouteRuntime {
    pub config: RouteConfig,
    pub source: Arc<dyn Source>,
    pub sinks: Vec<SinkHandle>,
}

/// Capped exponential back-off for sink retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Calls in total (the first one included).
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failed call (1-based), with ±20 % jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let base = self.initial.saturating_mul(factor).min(self.max);
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        base.mul_f64(jitter).min(self.max)
    }
}

/// Progress callbacks (the CLI's progress bar).
pub trait RunObserver: Send + Sync {
    /// The route's calendars are known.
    fn planned(&self, _route: &str, _calendars: usize) {}
    /// One calendar finished (committed, failed, or held by the guard).
    fn calendar_done(&self, _route: &str, _mailbox: &str, _calendar: &str, _ok: bool) {}
}

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Shadow sources by route name (a route's `shadow_profile`, built by the caller): after
    /// the route's run, its window is also read through the shadow and compared with a full
    /// read through the route's own source ([`crate::migrate::compare_route`]); nothing read
    /// through the shadow reaches a sink or the state store. See [`ShadowReport`].
    pub shadows: BTreeMap<String, Arc<dyn Source>>,
    /// Ignore stored cursors (full re-read).
    pub full: bool,
    /// Apply a calendar that reads empty even where it held events.
    pub accept_empty: bool,
    pub retry: RetryPolicy,
    /// The instant the window is computed from (default: now).
    pub now: Option<DateTime<Utc>>,
    pub shutdown: Shutdown,
    pub observer: Option<Arc<dyn RunObserver>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shadows: BTreeMap::new(),
            full: false,
            accept_empty: false,
            retry: RetryPolicy::default(),
            now: None,
            shutdown: Shutdown::never(),
            observer: None,
        }
    }
}

/// The route's window: from midnight (UTC) `past_days` before `now` to the end of the day
/// `future_days` after it — whole days, so the window moves once a day.
pub fn route_window(route: &RouteConfig, now: DateTime<Utc>) -> Window {
    let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    Window {
        start: midnight - chrono::Duration::days(i64::from(route.window.past_days)),
        end: midnight + chrono::Duration::days(i64::from(route.window.future_days) + 1),
    }
}

/// A new run id: sortable by time, unique.
/// The clock of one run: the wall time read once, at its start; every later time of the run is
/// that start plus the monotonic time elapsed. A wall clock stepped back meanwhile (NTP, a VM
/// resumed) cannot make a run finish before it started, and `finished_at - started_at` is the
/// run's real duration.
#[derive(Debug, Clone, Copy)]
struct RunClock {
    started: DateTime<Utc>,
    origin: Instant,
}

impl RunClock {
    fn start() -> Self {
        Self::starting_at(Utc::now(), Instant::now())
    }

    fn starting_at(started: DateTime<Utc>, origin: Instant) -> Self {
        Self { started, origin }
    }

    fn started(&self) -> DateTime<Utc> {
        self.started
    }

    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Now on the run's clock: never before [`RunClock::started`].
    fn now(&self) -> DateTime<Utc> {
        chrono::TimeDelta::from_std(self.elapsed())
            .ok()
            .and_then(|d| self.started.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

pub fn new_run_id(at: DateTime<Utc>) -> String {
    format!(
        "{}-{:08x}",
        at.format("%Y%m%dT%H%M%S%.3fZ"),
        rand::random::<u32>()
    )
}

fn state_diag(e: &StateError) -> Diagnostic {
    Diagnostic::new(&catalogue::general::STATE_FAILED, e.to_string())
}

/// One calendar of the run.
///
/// Planned without its stored state; the cursor goes into `request` and the count into
/// `event_count` only when the item's chunk starts ([`load_states`]), so only the chunks in
/// flight hold cursors.
struct WorkItem {
    request: SyncRequest,
    key: CalendarKey,
    /// Events the calendar held at its last commit (what the empty-calendar guard compares).
    event_count: u64,
}

/// Per-mailbox tally while the run goes on.
#[derive(Default)]
struct Tally {
    name: Option<String>,
    calendars: u64,
    finished: u64,
    upserts: u64,
    deletes: u64,
    rejected: u64,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// What every chunk task shares.
struct Ctx {
    route: RouteRuntime,
    state: Arc<dyn StateStore>,
    opts: RunOptions,
    run_id: String,
    clock: RunClock,
    window: Window,
    /// The route must stop (fatal sink error, state store failure).
    stop: AtomicBool,
    /// Set with `stop`, for the waits that race it ([`Ctx::halted`]).
    halt: tokio::sync::watch::Sender<bool>,
    route_errors: Mutex<Vec<Diagnostic>>,
    tallies: Mutex<BTreeMap<String, Tally>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Ctx {
    fn name(&self) -> &str {
        &self.route.config.name
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.opts.shutdown.is_triggered()
    }

    /// Resolves once the route must stop or shutdown was asked for: every wait on something
    /// outside (the source, a back-off) races this.
    async fn halted(&self) {
        let mut stop = self.halt.subscribe();
        let mut shutdown = self.opts.shutdown.clone();
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => {}
            _ = shutdown.wait() => {}
        }
    }

    /// Runs `work` unless the route stops or shuts down first (`None`).
    async fn unless_halted<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = work => Some(out),
            _ = self.halted() => None,
        }
    }

    fn stop_with(&self, diagnostic: Diagnostic) {
        tracing::error!(route = %self.name(), code = diagnostic.code(), detail = %diagnostic.detail(), "route stopped");
        self.stop.store(true, Ordering::SeqCst);
        self.halt.send_replace(true);
        let mut errors = lock(&self.route_errors);
        if !errors.contains(&diagnostic) {
            errors.push(diagnostic);
        }
    }

    fn tally(&self, mailbox: &str, f: impl FnOnce(&mut Tally)) {
        f(lock(&self.tallies).entry(mailbox.to_string()).or_default());
    }
}

/// Why a calendar's processing ended early: the route must stop (a sink or the state store
/// failed), or shutdown interrupted a wait (not an error: the run ends `cancelled`). A source's
/// failure of one calendar arrives as its `Done` instead.
enum Abort {
    Route(Diagnostic),
    Cancelled,
}

/// One calendar in a chunk.
struct CalendarRun {
    item: WorkItem,
    finished: bool,
    failed: Option<Diagnostic>,
    guarded: bool,
    delivered: bool,
    /// Complete-snapshot index, when the calendar delivered one.
    replace: Option<Vec<(String, EventKey)>>,
    /// Delta index changes.
    upserts: HashMap<String, EventKey>,
    removed: Vec<EventKey>,
    /// What the empty-calendar guard compares deltas with: the stored event count, or the size
    /// of a complete snapshot delivered earlier in this run.
    base_count: u64,
    /// A delta of this calendar carried an upsert in this run (it does not go empty).
    upserts_seen: bool,
    /// Deletes held back by the guard until the calendar's end (or its first upsert) shows
    /// whether they would empty it.
    held_deletes: Vec<EventKey>,
}

impl CalendarRun {
    fn new(item: WorkItem) -> Self {
        Self {
            base_count: item.event_count,
            upserts_seen: false,
            held_deletes: Vec::new(),
            item,
            finished: false,
            failed: None,
            guarded: false,
            delivered: false,
            replace: None,
            upserts: HashMap::new(),
            removed: Vec::new(),
        }
    }

    fn index_change(&mut self) -> IndexChange {
        let upserts: Vec<(String, EventKey)> = self.upserts.drain().collect();
        match self.replace.take() {
            Some(mut items) => {
                // Changes after the snapshot in the same run apply on top of it.
                let removed: HashSet<&EventKey> = self.removed.iter().collect();
                items.retain(|(_, k)| !removed.contains(k));
                items.retain(|(id, _)| !upserts.iter().any(|(u, _)| u == id));
                items.extend(upserts);
                IndexChange::Replace(items)
            }
            None => IndexChange::Update {
                upserts,
                removed: std::mem::take(&mut self.removed),
            },
        }
    }
}

/// Marks runs a dead process left `running` as interrupted. Call once before the first run.
pub async fn recover(state: &dyn StateStore) -> Result<u64, StateError> {
    let n = state.mark_interrupted_runs().await?;
    if n > 0 {
        tracing::warn!(
            runs = n,
            "found runs interrupted by a crash or kill; their calendars are re-read from the last committed cursor"
        );
    }
    Ok(n)
}

/// Runs every route once, one after the other.
pub async fn run_routes(
    routes: &[RouteRuntime],
    state: Arc<dyn StateStore>,
    opts: &RunOptions,
) -> RunReport {
    let mut report = RunReport::default();
    for route in routes {
        if opts.shutdown.is_triggered() {
            break;
        }
        report
            .routes
            .push(run_route(route, Arc::clone(&state), opts).await);
    }
    report
}

/// Runs one route once. Never panics on a source, sink or state failure: everything ends up in
/// the report (and the state store's run history).
pub async fn run_route(
    route: &RouteRuntime,
    state: Arc<dyn StateStore>,
    opts: &RunOptions,
) -> RouteReport {
    // Taken first: every other time of the run (commits, mailbox outcomes, its end) is read
    // from this clock, so none precedes it.
    let clock = RunClock::start();
    let started = clock.started();
    let run_id = new_run_id(started);
    let name = route.config.name.clone();
    let window = route_window(&route.config, opts.now.unwrap_or(started));
    tracing::info!(route = %name, run = %run_id, backend = route.source.backend(), full = opts.full, "sync started");
    let ctx = Arc::new(Ctx {
        route: route.clone(),
        state: Arc::clone(&state),
        opts: opts.clone(),
        run_id: run_id.clone(),
        clock,
        window,
        stop: AtomicBool::new(false),
        halt: tokio::sync::watch::channel(false).0,
        route_errors: Mutex::new(Vec::new()),
        tallies: Mutex::new(BTreeMap::new()),
    });

    if let Err(e) = state.begin_run(&run_id, &name, started).await {
        ctx.stop_with(state_diag(&e));
    } else {
        execute(&ctx).await;
    }

    // Mailbox outcomes.
    let finished_at = clock.now();
    let cancelled = opts.shutdown.is_triggered();
    let tallies = std::mem::take(&mut *lock(&ctx.tallies));
    let mut mailboxes = Vec::new();
    let mut counts = RunCounts::default();
    let mut all_errors: Vec<ErrorRecord> = Vec::new();
    let (mut failed_mailboxes, mut ok_mailboxes) = (0u64, 0u64);
    for (address, tally) in tallies {
        let outcome = if let Some(first) = tally.errors.first() {
            failed_mailboxes += 1;
            Some(MailboxOutcome::Failure(ErrorRecord::from_diagnostic(
                first, None,
            )))
        } else if tally.finished == tally.calendars {
            ok_mailboxes += 1;
            Some(MailboxOutcome::Success {
                warning: tally
                    .warnings
                    .first()
                    .map(|w| ErrorRecord::from_diagnostic(w, None)),
            })
        } else {
            None
        };
        if let Some(outcome) = &outcome {
            if let Err(e) = state
                .record_mailbox(&name, &address, tally.name.as_deref(), finished_at, outcome)
                .await
            {
                ctx.stop_with(state_diag(&e));
            }
            crate::metrics::global().gauge_set(
                "calpump_mailbox_failing",
                "1 while a mailbox's last attempt failed.",
                &[("route", &name), ("mailbox", &address)],
                if matches!(outcome, MailboxOutcome::Failure(_)) {
                    1.0
                } else {
                    0.0
                },
            );
        }
        counts.mailboxes += 1;
        counts.calendars += tally.finished;
        counts.upserts += tally.upserts;
        counts.deletes += tally.deletes;
        counts.rejected += tally.rejected;
        counts.errors += tally.errors.len() as u64;
        all_errors.extend(
            tally
                .errors
                .iter()
                .map(|d| ErrorRecord::from_diagnostic(d, Some(&address))),
        );
        mailboxes.push(MailboxReport {
            address,
            name: tally.name,
            calendars: tally.calendars,
            calendars_done: tally.finished,
            upserts: tally.upserts,
            deletes: tally.deletes,
            rejected: tally.rejected,
            errors: tally.errors,
            warnings: tally.warnings,
        });
    }
    let route_errors = std::mem::take(&mut *lock(&ctx.route_errors));
    counts.errors += route_errors.len() as u64;
    all_errors.extend(
        route_errors
            .iter()
            .map(|d| ErrorRecord::from_diagnostic(d, None)),
    );
    let status = if !route_errors.is_empty() {
        RunStatus::Failed
    } else if cancelled {
        RunStatus::Cancelled
    } else if failed_mailboxes > 0 && ok_mailboxes == 0 {
        RunStatus::Failed
    } else if failed_mailboxes > 0 {
        RunStatus::Partial
    } else {
        RunStatus::Ok
    };
    if let Err(e) = state
        .finish_run(&run_id, finished_at, status, &counts, &all_errors)
        .await
    {
        tracing::error!(route = %name, error = %e, "cannot record the end of the run");
    }

    let metrics = crate::metrics::global();
    metrics.inc(
        "calpump_syncs_total",
        "Sync runs of a route, by how they ended.",
        &[("route", &name), ("status", status.as_str())],
    );
    metrics.observe(
        "calpump_sync_duration_seconds",
        "Duration of a route's sync run.",
        &[("route", &name)],
        clock.elapsed().as_secs_f64(),
    );
    for error in &all_errors {
        metrics.inc(
            "calpump_errors_total",
            "Errors met by sync runs, by diagnostic code.",
            &[("route", &name), ("code", &error.code)],
        );
    }
    tracing::info!(
        route = %name, run = %run_id, status = status.as_str(),
        mailboxes = counts.mailboxes, calendars = counts.calendars, upserts = counts.upserts,
        deletes = counts.deletes, rejected = counts.rejected, errors = counts.errors,
        seconds = clock.elapsed().as_secs_f64(), "sync finished"
    );
    let shadow = match opts.shadows.get(&name) {
        Some(shadow) if !opts.shutdown.is_triggered() => {
            shadow_compare(route, shadow, window, opts).await
        }
        _ => None,
    };
    RouteReport {
        shadow,
        route: name,
        run_id,
        backend: route.source.backend().to_string(),
        started_at: started,
        finished_at,
        status,
        counts,
        window,
        mailboxes,
        errors: route_errors,
    }
}

/// At most this many mailboxes with differences are kept in a [`ShadowReport`].
const SHADOW_MAILBOXES_KEPT: usize = 50;

/// Shadow mode: the route's window read through its own source and through the shadow, both in
/// full and without writing anything, compared as `calpump migrate verify` compares; the
/// counts go to the metrics (`calpump_shadow_differences{route}` …) and the log. `None` when
/// shutdown interrupted the reads (no comparison to report).
async fn shadow_compare(
    route: &RouteRuntime,
    shadow: &Arc<dyn Source>,
    window: Window,
    opts: &RunOptions,
) -> Option<ShadowReport> {
    let name = route.config.name.as_str();
    let clock = Instant::now();
    let compared_at = Utc::now();
    let mut shutdown = opts.shutdown.clone();
    let options = crate::migrate::CompareOptions {
        concurrency: route.config.concurrency,
        keep_clean: false,
        shutdown: opts.shutdown.clone(),
        ..crate::migrate::CompareOptions::default()
    };
    let compared =
        crate::migrate::compare_route(&route.source, shadow, &route.config, window, &options);
    let cmp = tokio::select! {
        cmp = compared => cmp,
        _ = shutdown.wait() => {
            tracing::info!(route = %name, "shadow comparison interrupted by shutdown");
            return None;
        }
    };
    let s = cmp.summary;
    let metrics = crate::metrics::global();
    metrics.gauge_set(
        "calpump_shadow_differences",
        "Events the route's shadow profile reads differently (only in one profile, or with fields that differ), at the last comparison.",
        &[("route", name)],
        s.differences() as f64,
    );
    metrics.gauge_set(
        "calpump_shadow_unreadable_mailboxes",
        "Mailboxes the route's profile or its shadow profile could not read, at the last comparison.",
        &[("route", name)],
        (s.unreadable_current + s.unreadable_target) as f64,
    );
    metrics.gauge_set(
        "calpump_shadow_rewrites",
        "Events equal through both profiles whose content hash still differs (a switch rewrites them once), at the last comparison.",
        &[("route", name)],
        s.rewrites as f64,
    );
    metrics.inc(
        "calpump_shadow_comparisons_total",
        "Shadow comparisons of a route.",
        &[("route", name)],
    );
    let clean = s.clean() && cmp.route_errors.is_empty();
    if clean {
        tracing::info!(
            route = %name, shadow = shadow.backend(), mailboxes = s.mailboxes,
            events = s.current_events, rewrites = s.rewrites,
            seconds = clock.elapsed().as_secs_f64(), "shadow comparison clean"
        );
    } else {
        tracing::warn!(
            route = %name, shadow = shadow.backend(), code = catalogue::migrate::SHADOW_DIFFERENCES.code,
            mailboxes = s.mailboxes, differences = s.differences(),
            only_in_route_profile = s.only_in_current, only_in_shadow = s.only_in_target,
            changed = s.changed, unreadable_route_profile = s.unreadable_current,
            unreadable_shadow = s.unreadable_target, rewrites = s.rewrites,
            seconds = clock.elapsed().as_secs_f64(), "shadow comparison found differences"
        );
    }
    let mut mailboxes = cmp.mailboxes;
    let truncated = mailboxes.len() > SHADOW_MAILBOXES_KEPT;
    mailboxes.truncate(SHADOW_MAILBOXES_KEPT);
    Some(ShadowReport {
        profile: route.config.shadow_profile.clone(),
        backend: shadow.backend().to_string(),
        compared_at,
        seconds: clock.elapsed().as_secs_f64(),
        clean,
        differences: s.differences(),
        summary: s,
        route_errors: cmp.route_errors,
        mailboxes,
        mailboxes_truncated: truncated,
        interrupted: cmp.interrupted,
    })
}

/// Runs `f` on every item, at most `limit` at once, and returns the results in the items'
/// order (`None` for a task that panicked). Dropping the future aborts the tasks.
async fn in_order<T, R, Fut>(items: Vec<T>, limit: usize, f: impl Fn(T) -> Fut) -> Vec<Option<R>>
where
    R: Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let mut items = items.into_iter().enumerate();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < limit.max(1) {
            let Some((i, item)) = items.next() else {
                break;
            };
            let work = f(item);
            tasks.spawn(async move { (i, work.await) });
        }
        match tasks.join_next().await {
            Some(Ok((i, r))) => results[i] = Some(r),
            Some(Err(join)) => {
                tracing::error!(error = %join, "a discovery task crashed");
            }
            None => break,
        }
    }
    results
}

/// Resolves mailboxes and calendars (at most `concurrency` requests at once), then runs the
/// chunks; each chunk loads its calendars' cursors when it starts.
async fn execute(ctx: &Arc<Ctx>) {
    let Some(items) = ctx.unless_halted(plan(ctx)).await else {
        return;
    };
    if ctx.stopping() {
        return;
    }
    if let Some(observer) = &ctx.opts.observer {
        observer.planned(ctx.name(), items.len());
    }

    let chunk = ctx.route.source.preferred_chunk().max(1);
    let parallel = (ctx.route.config.concurrency.max(1) / chunk).max(1);
    // A mailbox's calendars stay in one chunk (a move between them is seen whole).
    let mut pending = chunks::by_mailbox(items, chunk, |w| w.key.mailbox.as_str())
        .into_iter()
        .peekable();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < parallel && pending.peek().is_some() && !ctx.stopping() {
            if let Some(work) = pending.next() {
                tasks.spawn(run_chunk(Arc::clone(ctx), work));
            }
        }
        match tasks.join_next().await {
            Some(Ok(())) => {}
            Some(Err(join)) => ctx.stop_with(Diagnostic::new(
                &catalogue::general::INTERNAL,
                format!("a sync task of route {} crashed: {join}", ctx.name()),
            )),
            None => break,
        }
    }
}

/// The route's work items: its mailboxes and, per mailbox, the calendars it reads — listed with
/// the route's concurrency (`calendars = "default"` lists nothing: the default calendar needs no
/// lookup). No state is loaded here.
async fn plan(ctx: &Arc<Ctx>) -> Vec<WorkItem> {
    let mailboxes = resolve_mailboxes(ctx).await;
    if !ctx.stopping() {
        forget_removed_mailboxes(ctx).await;
    }
    let listed = in_order(mailboxes, ctx.route.config.concurrency, |mailbox| {
        let ctx = Arc::clone(ctx);
        async move {
            let calendars = calendars_for(&ctx, &mailbox).await;
            (mailbox, calendars)
        }
    })
    .await;
    let mut items = Vec::new();
    for entry in listed {
        let Some((mailbox, calendars)) = entry else {
            ctx.stop_with(Diagnostic::new(
                &catalogue::general::INTERNAL,
                format!("listing the calendars of route {} crashed", ctx.name()),
            ));
            continue;
        };
        let calendars = match calendars {
            Ok(calendars) => calendars,
            Err(diagnostic) => {
                mailbox_failed(ctx, &mailbox.address, diagnostic);
                continue;
            }
        };
        ctx.tally(&mailbox.address, |t| t.calendars += calendars.len() as u64);
        for calendar in calendars {
            items.push(WorkItem {
                key: CalendarKey {
                    route: ctx.name().to_string(),
                    mailbox: mailbox.address.clone(),
                    calendar: calendar.path.clone(),
                    backend: ctx.route.source.backend().to_string(),
                },
                request: SyncRequest {
                    route: ctx.name().to_string(),
                    mailbox: mailbox.clone(),
                    calendar,
                    window: ctx.window,
                    cursor: None,
                },
                event_count: 0,
            });
        }
    }
    items
}

/// Loads the stored cursor and event count of a chunk's calendars (the cursor is left out with
/// `--full`). A state store failure stops the route.
async fn load_states(ctx: &Ctx, work: &mut [WorkItem]) -> Result<(), ()> {
    for item in work {
        match ctx.state.calendar_state(&item.key).await {
            Ok(state) => {
                item.event_count = state.event_count;
                item.request.cursor = if ctx.opts.full { None } else { state.cursor };
            }
            Err(e) => {
                ctx.stop_with(state_diag(&e));
                return Err(());
            }
        }
    }
    Ok(())
}

/// Once the route's mailboxes are known in full (every configured address, failing or not, and
/// every room of its room lists), the status of mailboxes it no longer has goes: a mailbox
/// taken out of the config, or a room that left its list, stops showing as failing in
/// `/status`, the sinks' ticks and `calpump_mailbox_failing`. Not called when resolving
/// stopped the route (a room list unreadable): then the set is incomplete.
async fn forget_removed_mailboxes(ctx: &Ctx) {
    let keep: Vec<String> = lock(&ctx.tallies).keys().cloned().collect();
    let gone = match ctx.state.forget_mailboxes(ctx.name(), &keep).await {
        Ok(gone) => gone,
        Err(e) => {
            tracing::warn!(route = %ctx.name(), error = %e, "cannot forget the status of mailboxes no longer in the route");
            return;
        }
    };
    let metrics = crate::metrics::global();
    for mailbox in gone {
        tracing::info!(route = %ctx.name(), mailbox = %mailbox, "mailbox no longer in the route; its status is forgotten");
        let labels = [("route", ctx.name()), ("mailbox", mailbox.as_str())];
        if metrics.value("calpump_mailbox_failing", &labels).is_some() {
            metrics.gauge_set(
                "calpump_mailbox_failing",
                "1 while a mailbox's last attempt failed.",
                &labels,
                0.0,
            );
        }
    }
}

fn mailbox_failed(ctx: &Ctx, address: &str, diagnostic: Diagnostic) {
    tracing::warn!(route = %ctx.name(), mailbox = %address, code = diagnostic.code(), detail = %diagnostic.detail(), "mailbox failed");
    ctx.tally(address, |t| t.errors.push(diagnostic));
}

/// The route's mailboxes: configured addresses first, then the rooms of its room lists, each
/// address once. Failures are recorded against the mailbox (or the route for a room list).
async fn resolve_mailboxes(ctx: &Arc<Ctx>) -> Vec<MailboxInfo> {
    let source = &ctx.route.source;
    let mut out: Vec<MailboxInfo> = Vec::new();
    let mut seen = HashSet::new();
    let mut wanted: Vec<String> = Vec::new();
    for address in &ctx.route.config.mailboxes {
        let normalized = address.trim().to_lowercase();
        if seen.insert(normalized.clone()) {
            wanted.push(normalized);
        }
    }
    // Looked up concurrently, taken in the configured order: an address that an earlier one
    // resolved to (an alias) is read once, under the earlier name.
    let mut aliases = HashSet::new();
    let resolved = in_order(wanted.clone(), ctx.route.config.concurrency, |address| {
        let source = Arc::clone(source);
        async move { source.resolve_mailbox(&address).await }
    })
    .await;
    for (normalized, result) in wanted.into_iter().zip(resolved) {
        if aliases.contains(&normalized) {
            continue;
        }
        ctx.tally(&normalized, |_| {});
        let result = result.unwrap_or_else(|| {
            Err(crate::source::SourceError::new(Diagnostic::new(
                &catalogue::general::INTERNAL,
                format!("looking up {normalized} crashed"),
            )))
        });
        match result {
            Ok(mut info) => {
                info.address = info.address.to_lowercase();
                let name = info.name.clone();
                ctx.tally(&normalized, |t| t.name = name);
                if info.address != normalized {
                    seen.insert(info.address.clone());
                    aliases.insert(info.address.clone());
                }
                out.push(MailboxInfo {
                    address: normalized,
                    ..info
                });
            }
            Err(e) => mailbox_failed(ctx, &normalized, e.diagnostic),
        }
    }
    if ctx.route.config.room_lists.is_empty() {
        return out;
    }
    let needs_lookup = ctx.route.config.room_lists.iter().any(|l| !l.contains('@'));
    let lists = if needs_lookup {
        match source.room_lists().await {
            Ok(lists) => lists,
            Err(e) => {
                ctx.stop_with(e.diagnostic);
                return out;
            }
        }
    } else {
        Vec::new()
    };
    for wanted in &ctx.route.config.room_lists {
        let address = if wanted.contains('@') {
            Some(wanted.trim().to_lowercase())
        } else {
            lists
                .iter()
                .find(|l| {
                    l.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(wanted.trim()))
                        || l.address.eq_ignore_ascii_case(wanted.trim())
                })
                .map(|l| l.address.to_lowercase())
        };
        let Some(address) = address else {
            let known: Vec<String> = lists
                .iter()
                .map(|l| l.name.clone().unwrap_or_else(|| l.address.clone()))
                .collect();
            ctx.stop_with(Diagnostic::new(
                &catalogue::general::ROOM_LIST_NOT_FOUND,
                format!(
                    "route {}: no room list `{wanted}` (the server has: {})",
                    ctx.name(),
                    known.join(", ")
                ),
            ));
            continue;
        };
        match source.rooms(Some(&address)).await {
            Ok(rooms) => {
                for mut room in rooms {
                    room.address = room.address.to_lowercase();
                    if seen.insert(room.address.clone()) {
                        let name = room.name.clone();
                        ctx.tally(&room.address, |t| t.name = name);
                        out.push(room);
                    }
                }
            }
            Err(e) => ctx.stop_with(e.diagnostic),
        }
    }
    out
}

/// The calendars of a mailbox the route reads.
async fn calendars_for(ctx: &Ctx, mailbox: &MailboxInfo) -> Result<Vec<CalendarInfo>, Diagnostic> {
    match &ctx.route.config.calendars {
        CalendarSelection::Default => Ok(vec![CalendarInfo::default_calendar()]),
        CalendarSelection::All => ctx
            .route
            .source
            .calendars(mailbox)
            .await
            .map_err(|e| e.diagnostic),
        CalendarSelection::Paths(paths) => {
            let all = ctx
                .route
                .source
                .calendars(mailbox)
                .await
                .map_err(|e| e.diagnostic)?;
            let mut out = Vec::new();
            for path in paths {
                match all.iter().find(|c| &c.path == path) {
                    Some(c) => out.push(c.clone()),
                    None => {
                        return Err(Diagnostic::new(
                            &catalogue::general::CALENDAR_NOT_FOUND,
                            format!(
                                "{}: no calendar `{path}` (it has: {})",
                                mailbox.address,
                                all.iter()
                                    .map(|c| c.path.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// One chunk: its calendars' state loaded, one `Source::sync` call, its messages consumed as
/// they come.
async fn run_chunk(ctx: Arc<Ctx>, mut work: Vec<WorkItem>) {
    if load_states(&ctx, &mut work).await.is_err() {
        return;
    }
    // The cursors move into the source's requests (held once).
    let requests: Vec<SyncRequest> = work
        .iter_mut()
        .map(|w| {
            let cursor = w.request.cursor.take();
            SyncRequest {
                cursor,
                ..w.request.clone()
            }
        })
        .collect();
    let mut calendars: Vec<CalendarRun> = work.into_iter().map(CalendarRun::new).collect();
    let (out, mut rx) = SyncOutput::channel(8);
    let source = Arc::clone(&ctx.route.source);
    let producer = tokio::spawn(async move { source.sync(requests, out).await });

    let total = calendars.len();
    let mut done = 0;
    while done < total && !ctx.stopping() {
        // The source may wait minutes (throttling, a slow server): shutdown does not.
        let Some(Some(message)) = ctx.unless_halted(rx.recv()).await else {
            break;
        };
        match message {
            SyncMessage::Batch(index, batch) => {
                let Some(cal) = calendars.get_mut(index) else {
                    tracing::warn!(route = %ctx.name(), index, "source sent a batch for an unknown request; ignored");
                    continue;
                };
                if cal.finished || cal.failed.is_some() {
                    continue;
                }
                match handle_batch(&ctx, cal, batch).await {
                    Ok(()) => {}
                    Err(Abort::Route(d)) => {
                        cal.failed = Some(d.clone());
                        ctx.stop_with(d);
                    }
                    Err(Abort::Cancelled) => break,
                }
            }
            SyncMessage::Done(index, result) => {
                let Some(cal) = calendars.get_mut(index) else {
                    continue;
                };
                if cal.finished {
                    continue;
                }
                cal.finished = true;
                done += 1;
                match result {
                    Err(e) if cal.failed.is_none() => cal.failed = Some(e.diagnostic),
                    Err(_) => {}
                    Ok(end) if cal.failed.is_none() => {
                        match finish_calendar(&ctx, cal, end).await {
                            Ok(()) => {}
                            Err(Abort::Route(d)) => {
                                cal.failed = Some(d.clone());
                                ctx.stop_with(d);
                            }
                            // Not committed, not failed: the next run takes it up again.
                            Err(Abort::Cancelled) => break,
                        }
                    }
                    Ok(_) => {}
                }
                let mailbox = cal.item.key.mailbox.clone();
                let path = cal.item.key.calendar.clone();
                match cal.failed.clone() {
                    Some(d) => {
                        // A route stop is reported once on the route, not on every mailbox.
                        if d.code() != catalogue::general::SINK_FAILED.code
                            && d.code() != catalogue::general::STATE_FAILED.code
                        {
                            mailbox_failed(&ctx, &mailbox, d);
                        }
                    }
                    None => ctx.tally(&mailbox, |t| t.finished += 1),
                }
                if let Some(observer) = &ctx.opts.observer {
                    observer.calendar_done(ctx.name(), &mailbox, &path, cal.failed.is_none());
                }
            }
        }
    }
    drop(rx);
    if ctx.stopping() {
        producer.abort();
    }
    let _ = producer.await;
    if done < total && !ctx.stopping() {
        for cal in calendars.iter().filter(|c| !c.finished) {
            mailbox_failed(
                &ctx,
                &cal.item.key.mailbox,
                Diagnostic::new(
                    &catalogue::general::INTERNAL,
                    format!(
                        "the {} source ended without finishing calendar {} of {}",
                        ctx.route.source.backend(),
                        cal.item.key.calendar,
                        cal.item.key.mailbox
                    ),
                ),
            );
        }
    }
}

fn guard_on(ctx: &Ctx) -> bool {
    ctx.route.config.empty_guard && !ctx.opts.accept_empty
}

/// Records the empty-calendar guard's warning for a calendar held back.
fn guard_warning(ctx: &Ctx, cal: &mut CalendarRun, what: String) {
    let d = Diagnostic::new(&catalogue::general::EMPTY_CALENDAR_GUARD, what);
    tracing::warn!(route = %ctx.name(), mailbox = %cal.item.key.mailbox, calendar = %cal.item.key.calendar, code = d.code(), detail = %d.detail(), "empty calendar held back");
    ctx.tally(&cal.item.key.mailbox, |t| t.warnings.push(d));
    cal.guarded = true;
}

/// Turns a source batch into a sink batch and delivers it to every sink.
async fn handle_batch(ctx: &Ctx, cal: &mut CalendarRun, batch: SourceBatch) -> Result<(), Abort> {
    let (kind, upserts, deletes, complete) = match batch {
        SourceBatch::Snapshot { events } => {
            if events.is_empty() && cal.item.event_count > 0 && guard_on(ctx) {
                let what = format!(
                    "route {}: calendar {} of {} reads empty but held {} events at the last sync",
                    ctx.name(),
                    cal.item.key.calendar,
                    cal.item.key.mailbox,
                    cal.item.event_count
                );
                guard_warning(ctx, cal, what);
                // Delivered as an incomplete snapshot: sinks remove nothing; not committed.
                (BatchKind::Snapshot, events, Vec::new(), false)
            } else {
                cal.replace = Some(
                    events
                        .iter()
                        .filter(|e| !e.source.item_id.is_empty())
                        .map(|e| (e.source.item_id.clone(), e.key().clone()))
                        .collect(),
                );
                cal.upserts.clear();
                cal.removed.clear();
                // Later deltas of this run are judged against what the snapshot holds.
                cal.base_count = events.len() as u64;
                cal.upserts_seen = false;
                cal.held_deletes.clear();
                (BatchKind::Snapshot, events, Vec::new(), true)
            }
        }
        SourceBatch::Delta { upserts, removals } => {
            let mut deletes: Vec<EventKey> = Vec::new();
            let mut unknown_ids = Vec::new();
            for removal in removals {
                match removal {
                    Removal::Key(k) => deletes.push(k),
                    Removal::Item(id) => {
                        if let Some(k) = cal.upserts.remove(&id) {
                            deletes.push(k);
                        } else if let Some(k) = cal
                            .replace
                            .as_ref()
                            .and_then(|r| r.iter().find(|(i, _)| *i == id).map(|(_, k)| k.clone()))
                        {
                            deletes.push(k);
                        } else {
                            unknown_ids.push(id);
                        }
                    }
                }
            }
            if !unknown_ids.is_empty() {
                let resolved = ctx
                    .state
                    .resolve_items(&cal.item.key, &unknown_ids)
                    .await
                    .map_err(|e| Abort::Route(state_diag(&e)))?;
                deletes.extend(
                    unknown_ids
                        .iter()
                        .filter_map(|id| resolved.get(id).cloned()),
                );
            }
            let upsert_keys: HashSet<&EventKey> = upserts.iter().map(Event::key).collect();
            deletes.retain(|k| !upsert_keys.contains(k));
            // A delete held earlier is void once its event comes back.
            cal.held_deletes.retain(|k| !upsert_keys.contains(k));
            if !upserts.is_empty() {
                cal.upserts_seen = true;
            }
            // The empty-calendar guard for deltas: while no upsert arrived, deletes wait for
            // the calendar's end, where `finish_calendar` tells whether they would empty it.
            if guard_on(ctx) && cal.base_count > 0 && !cal.upserts_seen {
                cal.held_deletes.append(&mut deletes);
            } else {
                deletes.append(&mut cal.held_deletes);
            }
            deletes.sort();
            deletes.dedup();
            for e in &upserts {
                if !e.source.item_id.is_empty() {
                    cal.upserts
                        .insert(e.source.item_id.clone(), e.key().clone());
                }
            }
            (BatchKind::Delta, upserts, deletes, false)
        }
    };
    send(ctx, cal, kind, upserts, deletes, complete).await
}

/// Delivers one batch of a calendar to every sink and tallies it.
async fn send(
    ctx: &Ctx,
    cal: &mut CalendarRun,
    kind: BatchKind,
    upserts: Vec<Event>,
    deletes: Vec<EventKey>,
    complete: bool,
) -> Result<(), Abort> {
    if kind == BatchKind::Delta && upserts.is_empty() && deletes.is_empty() {
        return Ok(());
    }
    if kind == BatchKind::Delta {
        cal.removed.extend(deletes.iter().cloned());
    }
    let mailbox = &cal.item.request.mailbox;
    let batch = Batch {
        schema_version: SCHEMA_VERSION,
        run_id: ctx.run_id.clone(),
        route: ctx.name().to_string(),
        mailbox: mailbox.address.clone(),
        mailbox_name: mailbox.name.clone(),
        calendar: cal.item.key.calendar.clone(),
        kind,
        window: ctx.window,
        upserts,
        deletes,
        complete,
    };
    let mut rejected_keys: HashSet<EventKey> = HashSet::new();
    for sink in &ctx.route.sinks {
        let delivered = deliver(ctx, sink, &batch).await?;
        let rejections: Vec<Rejection> = delivered
            .rejected
            .iter()
            .map(|f| Rejection {
                route: ctx.name().to_string(),
                sink: sink.name().to_string(),
                mailbox: batch.mailbox.clone(),
                calendar: batch.calendar.clone(),
                key: f.key.clone(),
                reason: crate::secret::redact(&f.reason),
                at: ctx.clock.now(),
            })
            .collect();
        for r in &rejections {
            tracing::warn!(route = %ctx.name(), sink = %sink.name(), mailbox = %r.mailbox, key = %r.key, reason = %r.reason, code = catalogue::general::SINK_REJECTED.code, "sink rejected an event");
            rejected_keys.insert(r.key.clone());
        }
        ctx.state
            .record_rejections(ctx.name(), sink.name(), &rejections, &delivered.accepted)
            .await
            .map_err(|e| Abort::Route(state_diag(&e)))?;
        let metrics = crate::metrics::global();
        let labels = |outcome| {
            [
                ("route", ctx.name()),
                ("sink", sink.name()),
                ("outcome", outcome),
            ]
        };
        metrics.counter_add(
            "calpump_events_total",
            "Events handed to sinks, by outcome.",
            &labels("upsert"),
            batch.upserts.len() as f64,
        );
        metrics.counter_add(
            "calpump_events_total",
            "Events handed to sinks, by outcome.",
            &labels("delete"),
            batch.deletes.len() as f64,
        );
        metrics.counter_add(
            "calpump_events_total",
            "Events handed to sinks, by outcome.",
            &labels("rejected"),
            rejections.len() as f64,
        );
    }
    cal.delivered = true;
    let (u, d, r) = (
        batch.upserts.len() as u64,
        batch.deletes.len() as u64,
        rejected_keys.len() as u64,
    );
    ctx.tally(&batch.mailbox, |t| {
        t.upserts += u;
        t.deletes += d;
        t.rejected += r;
    });
    Ok(())
}

/// What one sink did with a batch, over all its attempts.
#[derive(Default)]
struct Delivered {
    accepted: Vec<EventKey>,
    rejected: Vec<calpump_plugin::ItemFailure>,
}

/// Hands a batch to one sink, retrying retryable failures and retryable items. A sink that
/// fails for good stops the route ([`Abort::Route`] with `sink.Failed`); shutdown during a
/// back-off ends the delivery as [`Abort::Cancelled`] — not a failure of the sink.
async fn deliver(ctx: &Ctx, sink: &SinkHandle, batch: &Batch) -> Result<Delivered, Abort> {
    let policy = ctx.opts.retry;
    let mut pending = batch.clone();
    let mut out = Delivered::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sink.write_batch(&pending).await {
            Ok(result) => {
                out.accepted.extend(result.accepted);
                out.rejected.extend(result.rejected);
                if result.retryable.is_empty() {
                    return Ok(out);
                }
                if attempt >= policy.attempts {
                    return Err(Abort::Route(
                        SinkCallError::new(
                            sink.name(),
                            "write_batch",
                            SinkCallErrorKind::Retryable,
                            format!(
                                "{} events still not taken after {attempt} attempts (last reason: {})",
                                result.retryable.len(),
                                result.retryable[0].reason
                            ),
                        )
                        .diagnostic(),
                    ));
                }
                let keys: HashSet<EventKey> =
                    result.retryable.iter().map(|f| f.key.clone()).collect();
                tracing::info!(route = %ctx.name(), sink = %sink.name(), items = keys.len(), attempt, "sink asked to retry items");
                // A subset of a snapshot is not a snapshot: it goes again as a delta.
                pending = Batch {
                    kind: BatchKind::Delta,
                    complete: false,
                    upserts: batch
                        .upserts
                        .iter()
                        .filter(|e| keys.contains(e.key()))
                        .cloned()
                        .collect(),
                    deletes: batch
                        .deletes
                        .iter()
                        .filter(|k| keys.contains(*k))
                        .cloned()
                        .collect(),
                    ..batch.clone()
                };
            }
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                tracing::warn!(route = %ctx.name(), sink = %sink.name(), attempt, error = %e, "sink failed; retrying");
            }
            Err(e) => return Err(Abort::Route(e.diagnostic())),
        }
        back_off(ctx, policy.backoff(attempt)).await?;
    }
}

/// Waits before a retry, unless shutdown comes first. A route stopped by another calendar's
/// failure still lets this delivery finish its retries (its batch may be taken).
async fn back_off(ctx: &Ctx, wait: Duration) -> Result<(), Abort> {
    let mut shutdown = ctx.opts.shutdown.clone();
    if shutdown.is_triggered() {
        tracing::info!(route = %ctx.name(), "shutting down before a sink took a batch; the next run re-delivers it");
        return Err(Abort::Cancelled);
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => Ok(()),
        _ = shutdown.wait() => {
            tracing::info!(route = %ctx.name(), "shutting down before a sink took a batch; the next run re-delivers it");
            Err(Abort::Cancelled)
        }
    }
}

/// Flushes every sink (with retries) and commits the calendar.
async fn finish_calendar(ctx: &Ctx, cal: &mut CalendarRun, end: SyncEnd) -> Result<(), Abort> {
    if !cal.held_deletes.is_empty() {
        let mut held = std::mem::take(&mut cal.held_deletes);
        held.sort();
        held.dedup();
        if held.len() as u64 >= cal.base_count {
            let what = format!(
                "route {}: the changes to calendar {} of {} remove all {} events it held at the last sync and add none; the deletes were held back",
                ctx.name(),
                cal.item.key.calendar,
                cal.item.key.mailbox,
                cal.base_count
            );
            guard_warning(ctx, cal, what);
        } else {
            send(ctx, cal, BatchKind::Delta, Vec::new(), held, false).await?;
        }
    }
    if cal.delivered {
        for sink in &ctx.route.sinks {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match sink.flush().await {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() && attempt < ctx.opts.retry.attempts => {
                        tracing::warn!(route = %ctx.name(), sink = %sink.name(), attempt, error = %e, "flush failed; retrying");
                        back_off(ctx, ctx.opts.retry.backoff(attempt)).await?;
                    }
                    Err(e) => return Err(Abort::Route(e.diagnostic())),
                }
            }
        }
    }
    if cal.guarded {
        return Ok(());
    }
    let commit = CalendarCommit {
        key: cal.item.key.clone(),
        cursor: end.cursor,
        index: cal.index_change(),
        at: ctx.clock.now(),
    };
    ctx.state
        .commit_calendar(&commit)
        .await
        .map_err(|e| Abort::Route(state_diag(&e)))?;
    crate::metrics::global().inc(
        "calpump_calendars_synced_total",
        "Calendars committed, by how they were read.",
        &[
            ("route", ctx.name()),
            (
                "kind",
                if matches!(commit.index, IndexChange::Replace(_)) {
                    "snapshot"
                } else {
                    "delta"
                },
            ),
        ],
    );
    tracing::debug!(route = %ctx.name(), mailbox = %commit.key.mailbox, calendar = %commit.key.calendar, "calendar committed");
    Ok(())
}

#[cfg(test)]
mod tests;
