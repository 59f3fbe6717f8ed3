use super::*;
use crate::config::WindowConfig;
use crate::plugin_host::PluginRegistry;
use crate::source::{MailboxKind, SourceError};
use crate::state::{CalendarState, SqliteStateStore};
use crate::testing::{FailPlan, MemorySource, MemoryStore, fixed_base, make_event, sink_table};

fn route(name: &str, mailboxes: &[&str], sinks: &[&str]) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        profile: "p".into(),
        shadow_profile: None,
        mailboxes: mailboxes.iter().map(|s| s.to_string()).collect(),
        room_lists: vec![],
        calendars: CalendarSelection::Default,
        window: WindowConfig {
            past_days: 1,
            future_days: 7,
        },
        interval: Duration::from_secs(60),
        sinks: sinks.iter().map(|s| s.to_string()).collect(),
        concurrency: 2,
        empty_guard: true,
    }
}

async fn sink(store: &str) -> SinkHandle {
    let mut registry = PluginRegistry::new();
    registry.register_builtin(sink_table()).expect("register");
    registry
        .create_sink(
            store,
            "memory",
            serde_json::json!({ "store": store }),
            Duration::from_secs(10),
        )
        .await
        .expect("create")
}

fn opts() -> RunOptions {
    RunOptions {
        now: Some(fixed_base() + chrono::Duration::days(2)),
        retry: RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        ..RunOptions::default()
    }
}

fn rooms(n: usize) -> Vec<String> {
    (0..n)
        .map(|m| format!("room-{m:02}@example.test"))
        .collect()
}

async fn setup(
    store: &str,
    mailboxes: usize,
) -> (
    Arc<MemorySource>,
    RouteRuntime,
    Arc<dyn StateStore>,
    Arc<MemoryStore>,
) {
    let source = Arc::new(MemorySource::generate(
        "memory",
        7,
        mailboxes,
        12,
        fixed_base(),
    ));
    let addresses = rooms(mailboxes);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let runtime = RouteRuntime {
        config: route("rooms", &refs, &[store]),
        source: source.clone(),
        sinks: vec![sink(store).await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    (source, runtime, state, MemoryStore::named(store))
}

fn window_of(runtime: &RouteRuntime) -> Window {
    route_window(&runtime.config, fixed_base() + chrono::Duration::days(2))
}

#[tokio::test]
async fn snapshots_then_deltas_reach_the_sink_and_match_the_truth() {
    let (source, runtime, state, store) = setup("runner-basic", 3).await;
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(report.counts.calendars, 3);
    let window = window_of(&runtime);
    assert!(!store.content().is_empty());
    assert_eq!(store.content(), source.truth(&window));
    assert!(
        store
            .batches()
            .iter()
            .all(|b| b.kind == BatchKind::Snapshot && b.complete)
    );
    let calendars = state.calendars(Some("rooms")).await.expect("calendars");
    assert_eq!(calendars.len(), 3);
    assert!(calendars.iter().all(|(_, s)| s.cursor.is_some()));

    // Changes, including removals named only by item id, arrive as deltas.
    source.mutate(11, 30, fixed_base());
    let before = store.batches().len();
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert!(
        report.counts.deletes > 0,
        "the mutations removed events: {report:#?}"
    );
    let new_batches = &store.batches()[before..];
    assert!(!new_batches.is_empty());
    assert!(new_batches.iter().all(|b| b.kind == BatchKind::Delta));
    assert_eq!(store.content(), source.truth(&window));
    assert_eq!(store.rows(), store.content().len(), "no key held twice");

    // Nothing changed: no batches at all.
    let before = store.batches().len();
    run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(store.batches().len(), before);

    // --full re-reads snapshots and still equals the truth.
    let full = RunOptions {
        full: true,
        ..opts()
    };
    run_route(&runtime, state.clone(), &full).await;
    assert_eq!(store.content(), source.truth(&window));
    let runs = state.recent_runs(Some("rooms"), 10).await.expect("runs");
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r.status == RunStatus::Ok));
}

#[tokio::test]
async fn a_calendar_that_suddenly_reads_empty_is_not_applied_without_the_flag() {
    let (source, runtime, state, store) = setup("runner-guard", 2).await;
    run_route(&runtime, state.clone(), &opts()).await;
    let held = store.content().len();
    assert!(held > 0);

    source.set_reads_empty("room-00@example.test", "default", true);
    // A full read makes the source answer with a snapshot.
    let full = RunOptions {
        full: true,
        ..opts()
    };
    let report = run_route(&runtime, state.clone(), &full).await;
    let room0 = &report.mailboxes[0];
    assert_eq!(
        room0.warnings[0].code(),
        "sync.EmptyCalendarGuard",
        "{report:#?}"
    );
    assert_eq!(store.content().len(), held, "nothing was removed");
    let last = store
        .batches()
        .into_iter()
        .rev()
        .find(|b| b.mailbox == "room-00@example.test")
        .expect("batch");
    assert!(!last.complete && last.kind == BatchKind::Snapshot);
    let status = state.mailbox_status(Some("rooms")).await.expect("status");
    assert_eq!(
        status[0].last_warning.as_ref().map(|w| w.code.as_str()),
        Some("sync.EmptyCalendarGuard")
    );

    let accept = RunOptions {
        full: true,
        accept_empty: true,
        ..opts()
    };
    let report = run_route(&runtime, state.clone(), &accept).await;
    assert!(report.mailboxes[0].warnings.is_empty());
    assert!(
        store.content().len() < held,
        "with --accept-empty the room's events are gone"
    );
    let key = CalendarKey {
        route: "rooms".into(),
        mailbox: "room-00@example.test".into(),
        calendar: "default".into(),
        backend: "memory".into(),
    };
    assert_eq!(
        state.calendar_state(&key).await.expect("state").event_count,
        0
    );
}

#[tokio::test]
async fn a_failing_mailbox_does_not_stop_the_others() {
    let (source, runtime, state, store) = setup("runner-mailbox", 3).await;
    source.set_mailbox_failure(
        "room-01@example.test",
        Some(SourceError::new(Diagnostic::new(
            &catalogue::ews::IMPERSONATE_USER_DENIED,
            "The account does not have permission to impersonate the requested user.",
        ))),
    );
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Partial);
    assert!(report.any_failure());
    let failed = report
        .mailboxes
        .iter()
        .find(|m| m.address == "room-01@example.test")
        .expect("mb");
    assert_eq!(failed.errors[0].code(), "ews.ErrorImpersonateUserDenied");
    assert_eq!(
        report
            .mailboxes
            .iter()
            .filter(|m| m.errors.is_empty())
            .count(),
        2
    );
    let status = state.mailbox_status(Some("rooms")).await.expect("status");
    let row = status
        .iter()
        .find(|s| s.mailbox == "room-01@example.test")
        .expect("row");
    assert!(row.failing_since.is_some());
    assert_eq!(
        row.last_error.as_ref().map(|e| e.code.as_str()),
        Some("ews.ErrorImpersonateUserDenied")
    );
    assert!(
        store
            .batches()
            .iter()
            .all(|b| b.mailbox != "room-01@example.test")
    );
    assert_eq!(store.batches().len(), 2);

    source.set_mailbox_failure("room-01@example.test", None);
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok);
    assert_eq!(store.content(), source.truth(&window_of(&runtime)));
}

#[tokio::test]
async fn a_sink_failing_on_the_third_batch_keeps_the_cursor_and_the_next_run_catches_up() {
    let (source, mut runtime, state, store) = setup("runner-third", 5).await;
    runtime.config.concurrency = 1;
    store.set_fail(FailPlan {
        from_batch: Some(3),
        ..FailPlan::default()
    });
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.errors[0].code(), "sink.Failed");
    assert!(report.errors[0].detail().contains("fails on purpose"));
    let committed = state.calendars(Some("rooms")).await.expect("calendars");
    assert_eq!(
        committed.len(),
        2,
        "only the calendars before the failure advanced"
    );

    source.mutate(5, 20, fixed_base());
    store.set_fail(FailPlan::default());
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(store.content(), source.truth(&window_of(&runtime)));
    assert_eq!(store.rows(), store.content().len());
    assert_eq!(
        state
            .calendars(Some("rooms"))
            .await
            .expect("calendars")
            .len(),
        5
    );
}

#[tokio::test]
async fn retryable_items_are_resent_and_rejected_items_recorded() {
    let source = Arc::new(MemorySource::new("memory"));
    source.add_mailbox("a@example.test", Some("A"), MailboxKind::Room);
    let t = fixed_base() + chrono::Duration::days(2) + chrono::Duration::hours(9);
    for (i, subject) in ["plain", "flaky one", "poison pill"].iter().enumerate() {
        let id = format!("i{i}");
        let e = make_event(
            "a@example.test",
            "default",
            i as u64,
            &id,
            subject,
            t,
            t + chrono::Duration::hours(1),
        )
        .expect("event");
        source.put(&id, e);
    }
    let runtime = RouteRuntime {
        config: route("items", &["a@example.test"], &["runner-items"]),
        source: source.clone(),
        sinks: vec![sink("runner-items").await],
    };
    let store = MemoryStore::named("runner-items");
    store.set_fail(FailPlan {
        reject_subject: Some("poison".into()),
        retry_subject_once: Some("flaky".into()),
        ..FailPlan::default()
    });
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(report.counts.rejected, 1);
    assert_eq!(
        store.content().len(),
        2,
        "plain and flaky (after a retry) are in"
    );
    let batches = store.batches();
    assert_eq!(batches.len(), 2);
    assert_eq!(
        (batches[1].kind, batches[1].upserts),
        (BatchKind::Delta, 1),
        "the retry carries only the flaky item"
    );
    let rejections = state.rejections(Some("items")).await.expect("rejections");
    assert_eq!(rejections.len(), 1);
    assert!(rejections[0].reason.contains("poison"));
}

#[tokio::test]
async fn room_lists_are_resolved_by_name_and_unknown_lists_are_reported() {
    let source = Arc::new(MemorySource::generate("memory", 3, 3, 4, fixed_base()));
    source.add_room_list(
        "building-a@example.test",
        "Building A",
        &["room-00@example.test", "room-02@example.test"],
    );
    let mut config = route("lists", &["room-00@example.test"], &["runner-lists"]);
    config.room_lists = vec!["building a".into(), "Building Z".into()];
    let runtime = RouteRuntime {
        config,
        source: source.clone(),
        sinks: vec![sink("runner-lists").await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let report = run_route(&runtime, state.clone(), &opts()).await;
    let addresses: Vec<&str> = report
        .mailboxes
        .iter()
        .map(|m| m.address.as_str())
        .collect();
    assert_eq!(
        addresses,
        vec!["room-00@example.test", "room-02@example.test"]
    );
    assert_eq!(report.errors[0].code(), "sync.RoomListNotFound");
    assert!(report.errors[0].detail().contains("Building A"));
}

#[tokio::test]
async fn shutdown_stops_between_batches_without_committing_unfinished_calendars() {
    let source = Arc::new(
        MemorySource::generate("memory", 9, 6, 5, fixed_base())
            .with_batch_delay(Duration::from_millis(30)),
    );
    let addresses = rooms(6);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let mut config = route("stop", &refs, &["runner-stop"]);
    config.concurrency = 1;
    let runtime = RouteRuntime {
        config,
        source: source.clone(),
        sinks: vec![sink("runner-stop").await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let (trigger, shutdown) = crate::shutdown::channel();
    let options = RunOptions { shutdown, ..opts() };
    let run = tokio::spawn({
        let state = state.clone();
        async move { run_route(&runtime, state, &options).await }
    });
    tokio::time::sleep(Duration::from_millis(75)).await;
    trigger.trigger();
    let report = run.await.expect("join");
    assert_eq!(report.status, RunStatus::Cancelled);
    let committed = state
        .calendars(Some("stop"))
        .await
        .expect("calendars")
        .len();
    assert!(committed < 6, "stopped early ({committed} committed)");
    assert_eq!(committed as u64, report.counts.calendars);
}

#[tokio::test]
async fn shadow_mode_compares_after_the_run_and_nothing_from_the_shadow_reaches_sink_or_state() {
    let source = Arc::new(MemorySource::generate("memory", 7, 3, 12, fixed_base()));
    let addresses = rooms(3);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let runtime = RouteRuntime {
        config: route("shadowed", &refs, &["runner-shadow"]),
        source: source.clone(),
        sinks: vec![sink("runner-shadow").await],
    };
    let store = MemoryStore::named("runner-shadow");
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    // The same tenant through another backend, with a few differences.
    let shadow = Arc::new(MemorySource::generate("shadow", 7, 3, 12, fixed_base()));
    let at = fixed_base() + chrono::Duration::days(2) + chrono::Duration::hours(3);
    let ev = |uid: u64, subject: &str| {
        make_event(
            "room-01@example.test",
            "default",
            uid,
            &format!("x{uid}"),
            subject,
            at,
            at + chrono::Duration::hours(1),
        )
        .expect("event")
    };
    source.put("x1", ev(1 << 40, "Board"));
    shadow.put("x1", ev(1 << 40, "Board (renamed)"));
    shadow.put("x2", ev(2 << 40, "Only in the shadow"));
    let mut options = opts();
    options
        .shadows
        .insert("shadowed".into(), shadow.clone() as Arc<dyn Source>);

    let report = run_route(&runtime, state.clone(), &options).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    let sh = report.shadow.expect("a shadow comparison");
    assert!(!sh.clean, "{sh:#?}");
    assert_eq!(
        (
            sh.summary.changed,
            sh.summary.only_in_target,
            sh.differences
        ),
        (1, 1, 2)
    );
    assert_eq!(sh.differences, sh.summary.differences());
    assert_eq!(sh.summary.compared, 3);
    assert!(!sh.mailboxes.is_empty() && sh.mailboxes.iter().all(|m| !m.clean()));
    assert_eq!(
        crate::metrics::global().value("calpump_shadow_differences", &[("route", "shadowed")]),
        Some(sh.differences as f64)
    );
    // The sink holds the route's own source, nothing of the shadow's; state likewise.
    assert_eq!(store.content(), source.truth(&window_of(&runtime)));
    assert!(
        store
            .batches()
            .iter()
            .all(|b| b.kind == BatchKind::Snapshot)
    );
    assert_eq!(
        store.batches().len(),
        3,
        "one snapshot per mailbox, none from the shadow"
    );
    let calendars = state.calendars(Some("shadowed")).await.expect("calendars");
    assert!(
        calendars.iter().all(|(k, _)| k.backend == "memory"),
        "{calendars:?}"
    );
    assert_eq!(
        state
            .recent_runs(Some("shadowed"), 10)
            .await
            .expect("runs")
            .len(),
        1
    );

    // A shadow that reads alike is clean, and the gauge goes back to 0.
    let twin = Arc::new(MemorySource::generate("twin", 7, 3, 12, fixed_base()));
    twin.put("x1", ev(1 << 40, "Board"));
    let mut options = opts();
    options
        .shadows
        .insert("shadowed".into(), twin as Arc<dyn Source>);
    let report = run_route(&runtime, state.clone(), &options).await;
    let sh = report.shadow.expect("a shadow comparison");
    assert!(sh.clean, "{sh:#?}");
    assert_eq!(
        crate::metrics::global().value("calpump_shadow_differences", &[("route", "shadowed")]),
        Some(0.0)
    );
    // Without the option there is no comparison.
    assert!(run_route(&runtime, state, &opts()).await.shadow.is_none());
}

/// A room of five events read through deltas (the way Graph reads after the first sync).
async fn delta_room(
    store: &str,
    delta_batch: usize,
) -> (Arc<MemorySource>, RouteRuntime, Arc<dyn StateStore>) {
    let source = Arc::new(MemorySource::new("memory").with_delta_batch(delta_batch));
    source.add_mailbox("room@example.test", Some("Room"), MailboxKind::Room);
    let t = fixed_base() + chrono::Duration::days(2) + chrono::Duration::hours(8);
    for i in 0..5u64 {
        let id = format!("i{i}");
        let start = t + chrono::Duration::hours(i as i64);
        let e = make_event(
            "room@example.test",
            "default",
            i,
            &id,
            &format!("Meeting {i}"),
            start,
            start + chrono::Duration::minutes(30),
        )
        .expect("event");
        source.put(&id, e);
    }
    let runtime = RouteRuntime {
        config: route("deltas", &["room@example.test"], &[store]),
        source: source.clone(),
        sinks: vec![sink(store).await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    (source, runtime, state)
}

fn room_key() -> CalendarKey {
    CalendarKey {
        route: "deltas".into(),
        mailbox: "room@example.test".into(),
        calendar: "default".into(),
        backend: "memory".into(),
    }
}

#[tokio::test]
async fn deltas_that_remove_every_event_are_held_back_without_the_flag() {
    // Removals in batches of two: the guard must hold all of them, not apply the first ones.
    let (source, runtime, state) = delta_room("runner-delta-guard", 2).await;
    let store = MemoryStore::named("runner-delta-guard");
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(store.content().len(), 5);
    let committed = state.calendar_state(&room_key()).await.expect("state");
    assert_eq!(committed.event_count, 5);

    for i in 0..5 {
        assert!(source.remove("room@example.test", "default", &format!("i{i}")));
    }
    for _ in 0..2 {
        let report = run_route(&runtime, state.clone(), &opts()).await;
        assert_eq!(report.counts.deletes, 0, "{report:#?}");
        assert_eq!(
            report.mailboxes[0].warnings.first().map(Diagnostic::code),
            Some("sync.EmptyCalendarGuard"),
            "{report:#?}"
        );
        assert_eq!(store.content().len(), 5, "the sink was not emptied");
        assert!(
            store.batches().iter().all(|b| b.deletes == 0),
            "no delete reached the sink: {:?}",
            store.batches()
        );
        let held = state.calendar_state(&room_key()).await.expect("state");
        assert_eq!(
            held.cursor, committed.cursor,
            "the cursor was not committed"
        );
        assert_eq!(held.event_count, 5);
    }
    let status = state.mailbox_status(Some("deltas")).await.expect("status");
    assert_eq!(
        status[0].last_warning.as_ref().map(|w| w.code.as_str()),
        Some("sync.EmptyCalendarGuard")
    );

    // `--accept-empty` lets the deletes through.
    let accept = RunOptions {
        accept_empty: true,
        ..opts()
    };
    let report = run_route(&runtime, state.clone(), &accept).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(report.counts.deletes, 5);
    assert!(report.mailboxes[0].warnings.is_empty());
    assert!(store.content().is_empty());
    assert_eq!(
        state
            .calendar_state(&room_key())
            .await
            .expect("state")
            .event_count,
        0
    );
}

#[tokio::test]
async fn deltas_that_keep_events_pass_the_guard_and_empty_guard_false_lets_all_through() {
    let (source, mut runtime, state) = delta_room("runner-delta-pass", 2).await;
    let store = MemoryStore::named("runner-delta-pass");
    run_route(&runtime, state.clone(), &opts()).await;
    let window = window_of(&runtime);

    // Two of five removed: applied.
    source.remove("room@example.test", "default", "i0");
    source.remove("room@example.test", "default", "i1");
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.counts.deletes, 2, "{report:#?}");
    assert!(report.mailboxes[0].warnings.is_empty());
    assert_eq!(store.content(), source.truth(&window));

    // Every old event removed but a new one added: not an empty calendar.
    for i in 2..5 {
        source.remove("room@example.test", "default", &format!("i{i}"));
    }
    let t = fixed_base() + chrono::Duration::days(3) + chrono::Duration::hours(10);
    let e = make_event(
        "room@example.test",
        "default",
        99,
        "i99",
        "New",
        t,
        t + chrono::Duration::hours(1),
    )
    .expect("event");
    source.put("i99", e);
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(
        (report.counts.upserts, report.counts.deletes),
        (1, 3),
        "{report:#?}"
    );
    assert!(report.mailboxes[0].warnings.is_empty());
    assert_eq!(store.content(), source.truth(&window));

    // `empty_guard = false`: the last event's removal goes through.
    runtime.config.empty_guard = false;
    source.remove("room@example.test", "default", "i99");
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.counts.deletes, 1, "{report:#?}");
    assert!(store.content().is_empty());
}

/// A sink over its own map whose `write_batch` can be made to stall once (it sleeps, then
/// applies the batch — late, as a plugin stuck in I/O would).
mod gated {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use calpump_plugin::{Batch, BatchKind, EventKey, Sink, SinkError, SinkResult};

    #[derive(Default)]
    pub struct Gate {
        pub stall_next: Option<Duration>,
        pub content: BTreeMap<EventKey, String>,
        pub calls: u64,
    }

    pub fn gate<T>(name: &str, f: impl FnOnce(&mut Gate) -> T) -> T {
        static GATES: OnceLock<Mutex<HashMap<String, Gate>>> = OnceLock::new();
        let gates = GATES.get_or_init(|| Mutex::new(HashMap::new()));
        let mut gates = gates.lock().unwrap_or_else(|p| p.into_inner());
        f(gates.entry(name.to_string()).or_default())
    }

    pub struct Gated {
        name: String,
    }

    impl Sink for Gated {
        const NAME: &'static str = "gated";
        const VERSION: &'static str = "0.1.0";
        const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;

        fn check(_config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
            Ok(Vec::new())
        }

        fn create(config: serde_json::Value) -> Result<Self, SinkError> {
            Ok(Self {
                name: config["gate"].as_str().unwrap_or_default().to_string(),
            })
        }

        fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
            if let Some(stall) = gate(&self.name, |g| {
                g.calls += 1;
                g.stall_next.take()
            }) {
                std::thread::sleep(stall);
            }
            let result = SinkResult::all_accepted(&batch);
            gate(&self.name, |g| {
                if batch.kind == BatchKind::Snapshot && batch.complete {
                    let keep: Vec<&EventKey> = batch.upserts.iter().map(|e| e.key()).collect();
                    g.content.retain(|k, _| keep.contains(&k));
                }
                for e in &batch.upserts {
                    g.content.insert(e.key().clone(), e.content_hash());
                }
                for k in &batch.deletes {
                    g.content.remove(k);
                }
            });
            Ok(result)
        }

        fn flush(&self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    calpump_plugin::sink_table!(Gated);
}

async fn gated_sink(name: &str, timeout: Duration) -> SinkHandle {
    let mut registry = PluginRegistry::new();
    registry
        .register_builtin(gated::sink_table())
        .expect("register");
    registry
        .create_sink(name, "gated", serde_json::json!({ "gate": name }), timeout)
        .await
        .expect("create")
}

#[tokio::test]
async fn a_write_that_outlives_its_timeout_cannot_overwrite_a_newer_batch() {
    let source = Arc::new(MemorySource::generate("memory", 5, 1, 6, fixed_base()));
    let sink = gated_sink("runner-stuck", Duration::from_millis(300)).await;
    let runtime = RouteRuntime {
        config: route("stuck", &["room-00@example.test"], &["runner-stuck"]),
        source: source.clone(),
        sinks: vec![sink.clone()],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let window = window_of(&runtime);
    let content = || gated::gate("runner-stuck", |g| g.content.clone());

    // Run 1: the snapshot's write stalls past the timeout; the route stops, nothing committed.
    gated::gate("runner-stuck", |g| {
        g.stall_next = Some(Duration::from_millis(1500))
    });
    let stalled_at = Instant::now();
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:#?}");
    assert!(
        report.errors[0].detail().contains("no answer within"),
        "{report:#?}"
    );
    assert!(
        state
            .calendars(Some("stuck"))
            .await
            .expect("cal")
            .is_empty()
    );

    // A new event; run 2 while the old write is still running.
    let t = fixed_base() + chrono::Duration::days(2) + chrono::Duration::hours(7);
    let new = make_event(
        "room-00@example.test",
        "default",
        1 << 44,
        "new-1",
        "Added while the sink was stuck",
        t,
        t + chrono::Duration::hours(1),
    )
    .expect("event");
    source.put("new-1", new);
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:#?}");
    let detail = report.errors[0].detail();
    assert!(
        detail.contains("runner-stuck") && detail.contains("write_batch"),
        "names the sink and the stuck call: {detail}"
    );
    assert!(
        state
            .calendars(Some("stuck"))
            .await
            .expect("cal")
            .is_empty(),
        "nothing committed while the sink is stuck"
    );
    assert_eq!(
        gated::gate("runner-stuck", |g| g.calls),
        1,
        "no second call reached the stuck instance"
    );

    // The stuck write returns (applying its old snapshot); the next run re-delivers.
    let rest = Duration::from_millis(1800).saturating_sub(stalled_at.elapsed());
    tokio::time::sleep(rest).await;
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(
        content(),
        source.truth(&window),
        "nothing lost, nothing stale"
    );
}

/// A source that answers `calendars` slowly (discovery of a route with `calendars = "all"`).
struct SlowCalendars {
    inner: Arc<MemorySource>,
    delay: Duration,
    /// `calendars` calls running now, and the most at once.
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    calls: std::sync::atomic::AtomicUsize,
    /// Calendar states the runner had loaded when `sync` was first called.
    loads: Option<Arc<std::sync::atomic::AtomicUsize>>,
    loads_at_first_sync: Mutex<Option<usize>>,
}

impl SlowCalendars {
    fn new(inner: Arc<MemorySource>, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            running: Default::default(),
            most: Default::default(),
            calls: Default::default(),
            loads: None,
            loads_at_first_sync: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl Source for SlowCalendars {
    fn backend(&self) -> &str {
        self.inner.backend()
    }
    fn preferred_chunk(&self) -> usize {
        self.inner.preferred_chunk()
    }
    async fn room_lists(&self) -> Result<Vec<crate::source::RoomList>, SourceError> {
        self.inner.room_lists().await
    }
    async fn rooms(&self, room_list: Option<&str>) -> Result<Vec<MailboxInfo>, SourceError> {
        self.inner.rooms(room_list).await
    }
    async fn resolve_mailbox(&self, address: &str) -> Result<MailboxInfo, SourceError> {
        self.inner.resolve_mailbox(address).await
    }
    async fn calendars(&self, mailbox: &MailboxInfo) -> Result<Vec<CalendarInfo>, SourceError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.calls.fetch_add(1, SeqCst);
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, SeqCst);
        self.inner.calendars(mailbox).await
    }
    async fn sync(&self, work: Vec<SyncRequest>, out: SyncOutput) {
        if let Some(loads) = &self.loads {
            let now = loads.load(std::sync::atomic::Ordering::SeqCst);
            lock(&self.loads_at_first_sync).get_or_insert(now);
        }
        self.inner.sync(work, out).await
    }
    async fn probe(&self, probe_mailbox: Option<&str>) -> Vec<crate::source::ProbeStep> {
        self.inner.probe(probe_mailbox).await
    }
}

/// Runs `runtime` and triggers shutdown after `after`; returns the report and how long the
/// run went on after the trigger.
async fn run_and_stop(
    runtime: RouteRuntime,
    state: Arc<dyn StateStore>,
    options: RunOptions,
    after: Duration,
) -> (RouteReport, Duration) {
    let (trigger, shutdown) = crate::shutdown::channel();
    let options = RunOptions {
        shutdown,
        ..options
    };
    let run = tokio::spawn(async move { run_route(&runtime, state, &options).await });
    tokio::time::sleep(after).await;
    let triggered = Instant::now();
    trigger.trigger();
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends")
        .expect("join");
    (report, triggered.elapsed())
}

fn assert_cancelled_cleanly(report: &RouteReport, stopped_in: Duration) {
    assert!(
        stopped_in < Duration::from_secs(3),
        "stopped {stopped_in:?} after the trigger"
    );
    assert_eq!(report.status, RunStatus::Cancelled, "{report:#?}");
    assert!(report.errors.is_empty(), "{report:#?}");
    assert!(
        report.mailboxes.iter().all(|m| m.errors.is_empty()),
        "{report:#?}"
    );
    assert_eq!(report.counts.errors, 0);
    assert_eq!(
        crate::metrics::global().value(
            "calpump_errors_total",
            &[("route", &report.route), ("code", "sink.Failed")]
        ),
        None,
        "a shutdown is not an error"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_slow_source() {
    let source = Arc::new(
        MemorySource::generate("memory", 9, 2, 5, fixed_base())
            .with_batch_delay(Duration::from_secs(20)),
    );
    let addresses = rooms(2);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let runtime = RouteRuntime {
        config: route("stop-slow-source", &refs, &["runner-stop-slow"]),
        source: source.clone(),
        sinks: vec![sink("runner-stop-slow").await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let (report, stopped_in) =
        run_and_stop(runtime, state.clone(), opts(), Duration::from_millis(200)).await;
    assert_cancelled_cleanly(&report, stopped_in);
    assert!(
        state
            .calendars(Some("stop-slow-source"))
            .await
            .expect("cal")
            .is_empty()
    );
    let runs = state
        .recent_runs(Some("stop-slow-source"), 1)
        .await
        .expect("runs");
    assert_eq!(runs[0].status, RunStatus::Cancelled);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_calendar_discovery() {
    let inner = Arc::new(MemorySource::generate("memory", 9, 2, 5, fixed_base()));
    let addresses = rooms(2);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let mut config = route("stop-discovery", &refs, &["runner-stop-discovery"]);
    config.calendars = CalendarSelection::All;
    let runtime = RouteRuntime {
        config,
        source: Arc::new(SlowCalendars::new(inner, Duration::from_secs(20))),
        sinks: vec![sink("runner-stop-discovery").await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let (report, stopped_in) =
        run_and_stop(runtime, state, opts(), Duration::from_millis(200)).await;
    assert_cancelled_cleanly(&report, stopped_in);
}

#[tokio::test]
async fn shutdown_during_a_sink_retry_is_a_cancellation_not_a_sink_failure() {
    let (_source, mut runtime, state, store) = setup("runner-stop-retry", 1).await;
    runtime.config.name = "stop-retry".into();
    store.set_fail(FailPlan {
        from_batch: Some(1),
        retryable: true,
        ..FailPlan::default()
    });
    let options = RunOptions {
        retry: RetryPolicy {
            attempts: 5,
            initial: Duration::from_secs(10),
            max: Duration::from_secs(10),
        },
        ..opts()
    };
    let (report, stopped_in) =
        run_and_stop(runtime, state.clone(), options, Duration::from_millis(300)).await;
    assert_cancelled_cleanly(&report, stopped_in);
    assert!(
        state
            .calendars(Some("stop-retry"))
            .await
            .expect("cal")
            .is_empty()
    );
}

/// What the runner handed the state store, in order: (`begin`, `commit`, `mailbox`, `finish`,
/// time).
type Times = Arc<Mutex<Vec<(&'static str, DateTime<Utc>)>>>;

/// A state store that counts `calendar_state` calls (what the runner loads: cursors and counts)
/// and keeps every time the runner hands it ([`Times`]).
struct CountingState {
    inner: SqliteStateStore,
    loads: Arc<std::sync::atomic::AtomicUsize>,
    times: Times,
}

impl CountingState {
    fn note(&self, what: &'static str, at: DateTime<Utc>) {
        lock(&self.times).push((what, at));
    }
}

#[async_trait::async_trait]
impl StateStore for CountingState {
    async fn calendar_state(&self, key: &CalendarKey) -> Result<CalendarState, StateError> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.calendar_state(key).await
    }
    async fn resolve_items(
        &self,
        key: &CalendarKey,
        item_ids: &[String],
    ) -> Result<HashMap<String, EventKey>, StateError> {
        self.inner.resolve_items(key, item_ids).await
    }
    async fn commit_calendar(&self, commit: &CalendarCommit) -> Result<(), StateError> {
        self.note("commit", commit.at);
        self.inner.commit_calendar(commit).await
    }
    async fn begin_run(
        &self,
        id: &str,
        route: &str,
        started_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.note("begin", started_at);
        self.inner.begin_run(id, route, started_at).await
    }
    async fn finish_run(
        &self,
        id: &str,
        finished_at: DateTime<Utc>,
        status: RunStatus,
        counts: &RunCounts,
        errors: &[ErrorRecord],
    ) -> Result<(), StateError> {
        self.note("finish", finished_at);
        self.inner
            .finish_run(id, finished_at, status, counts, errors)
            .await
    }
    async fn mark_interrupted_runs(&self) -> Result<u64, StateError> {
        self.inner.mark_interrupted_runs().await
    }
    async fn record_event(&self, entry: &crate::state::RunRecord) -> Result<(), StateError> {
        self.inner.record_event(entry).await
    }
    async fn history(
        &self,
        route: Option<&str>,
        filter: crate::state::HistoryFilter,
        limit: u32,
    ) -> Result<Vec<crate::state::RunRecord>, StateError> {
        self.inner.history(route, filter, limit).await
    }
    async fn record_mailbox(
        &self,
        route: &str,
        mailbox: &str,
        name: Option<&str>,
        at: DateTime<Utc>,
        outcome: &MailboxOutcome,
    ) -> Result<(), StateError> {
        self.note("mailbox", at);
        self.inner
            .record_mailbox(route, mailbox, name, at, outcome)
            .await
    }
    async fn mailbox_status(
        &self,
        route: Option<&str>,
    ) -> Result<Vec<crate::state::MailboxStatus>, StateError> {
        self.inner.mailbox_status(route).await
    }
    async fn forget_mailboxes(
        &self,
        route: &str,
        keep: &[String],
    ) -> Result<Vec<String>, StateError> {
        self.inner.forget_mailboxes(route, keep).await
    }
    async fn record_rejections(
        &self,
        route: &str,
        sink: &str,
        rejected: &[Rejection],
        accepted: &[EventKey],
    ) -> Result<(), StateError> {
        self.inner
            .record_rejections(route, sink, rejected, accepted)
            .await
    }
    async fn rejections(&self, route: Option<&str>) -> Result<Vec<Rejection>, StateError> {
        self.inner.rejections(route).await
    }
    async fn calendars(
        &self,
        route: Option<&str>,
    ) -> Result<Vec<(CalendarKey, CalendarState)>, StateError> {
        self.inner.calendars(route).await
    }
    async fn item_index(&self, key: &CalendarKey) -> Result<HashMap<String, EventKey>, StateError> {
        self.inner.item_index(key).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

#[tokio::test]
async fn cursors_are_loaded_per_chunk_and_discovery_runs_concurrently() {
    let mailboxes = 24;
    let inner = Arc::new(MemorySource::generate(
        "memory",
        3,
        mailboxes,
        12,
        fixed_base(),
    ));
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut slow = SlowCalendars::new(inner.clone(), Duration::from_millis(100));
    slow.loads = Some(loads.clone());
    let slow = Arc::new(slow);
    let addresses = rooms(mailboxes);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let mut config = route("discovery", &refs, &["runner-discovery"]);
    config.calendars = CalendarSelection::All;
    config.concurrency = 4;
    let runtime = RouteRuntime {
        config,
        source: slow.clone(),
        sinks: vec![sink("runner-discovery").await],
    };
    let state: Arc<dyn StateStore> = Arc::new(CountingState {
        inner: SqliteStateStore::in_memory().await.expect("state"),
        loads: loads.clone(),
        times: Arc::default(),
    });
    let started = Instant::now();
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(report.counts.calendars, mailboxes as u64);
    use std::sync::atomic::Ordering::SeqCst;
    // Discovery: one `calendars` call per mailbox, up to the route's concurrency at once.
    assert_eq!(slow.calls.load(SeqCst), mailboxes);
    assert_eq!(
        slow.most.load(SeqCst),
        4,
        "calendar discovery runs 4 at once"
    );
    assert!(
        started.elapsed() < Duration::from_millis(100 * mailboxes as u64 / 2),
        "discovery took {:?}",
        started.elapsed()
    );
    // Cursors: loaded chunk by chunk, not the whole tenant before the first request.
    let at_first = lock(&slow.loads_at_first_sync).expect("synced");
    assert!(
        at_first <= 4,
        "{at_first} calendar states loaded before the first request (chunks of 1, 4 in flight)"
    );
    assert_eq!(loads.load(SeqCst), mailboxes, "each calendar's state once");
    let window = window_of(&runtime);
    assert_eq!(
        MemoryStore::named("runner-discovery").content(),
        inner.truth(&window)
    );

    // The second run continues from the cursors loaded per chunk: deltas only.
    inner.mutate(3, 10, fixed_base());
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert!(
        report.mailboxes.iter().all(|m| m.warnings.is_empty()),
        "{report:#?}"
    );
    assert_eq!(
        MemoryStore::named("runner-discovery").content(),
        inner.truth(&window)
    );
    assert!(
        MemoryStore::named("runner-discovery").batches()[mailboxes..]
            .iter()
            .all(|b| b.kind == BatchKind::Delta)
    );

    // `calendars = "default"` asks the source for no calendar list at all.
    let calls = slow.calls.load(SeqCst);
    let mut runtime = runtime;
    runtime.config.calendars = CalendarSelection::Default;
    let report = run_route(&runtime, state, &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    assert_eq!(slow.calls.load(SeqCst), calls);
}

#[test]
fn the_run_clock_never_goes_back_when_the_wall_clock_does() {
    // The wall clock read at the run's start was a minute ahead and has been stepped back
    // (NTP) since: the system clock now reads before the start, the run's clock does not.
    let started = Utc::now() + chrono::TimeDelta::minutes(1);
    let clock = RunClock::starting_at(started, Instant::now());
    std::thread::sleep(Duration::from_millis(20));
    assert!(Utc::now() < started, "the simulated step");
    let finished = clock.now();
    assert!(finished >= started, "{finished} before {started}");
    assert!(
        finished - started >= chrono::TimeDelta::milliseconds(20),
        "the run's duration is the monotonic time elapsed: {}",
        finished - started
    );
}

#[tokio::test]
async fn a_run_records_its_start_first_and_its_end_last_on_one_clock() {
    let source = Arc::new(MemorySource::generate("memory", 5, 4, 12, fixed_base()));
    let addresses = rooms(4);
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let runtime = RouteRuntime {
        config: route("clock", &refs, &["runner-clock"]),
        source: source.clone(),
        sinks: vec![sink("runner-clock").await],
    };
    let times = Times::default();
    let state: Arc<dyn StateStore> = Arc::new(CountingState {
        inner: SqliteStateStore::in_memory().await.expect("state"),
        loads: Arc::default(),
        times: times.clone(),
    });
    let report = run_route(&runtime, state.clone(), &opts()).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);

    let times = lock(&times).clone();
    let kinds: Vec<&str> = times.iter().map(|(what, _)| *what).collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"finish"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "commit").count(),
        4,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "mailbox").count(),
        4,
        "{kinds:?}"
    );
    let (begin, finish) = (times[0].1, times[times.len() - 1].1);
    for (what, at) in &times {
        assert!(
            begin <= *at && *at <= finish,
            "{what} at {at} outside the run {begin} … {finish}"
        );
    }
    assert_eq!(report.started_at, begin);
    assert_eq!(report.finished_at, finish);

    let history = state
        .history(Some("clock"), crate::state::HistoryFilter::Syncs, 5)
        .await
        .expect("history");
    let run = history.first().expect("the run is recorded");
    let stored_end = run.finished_at.expect("finished");
    assert!(
        stored_end >= run.started_at,
        "stored run finished {stored_end} before it started {}",
        run.started_at
    );
}

#[tokio::test]
async fn a_mailbox_taken_out_of_the_route_no_longer_shows_as_failing() {
    let source = Arc::new(MemorySource::generate("memory", 4, 3, 4, fixed_base()));
    source.add_room_list(
        "building-a@example.test",
        "Building A",
        &["room-02@example.test"],
    );
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let store_sink = sink("runner-forget").await;
    let run = |mailboxes: &[&str], room_lists: &[&str]| {
        let mut config = route("forget", mailboxes, &["runner-forget"]);
        config.room_lists = room_lists.iter().map(|l| l.to_string()).collect();
        let runtime = RouteRuntime {
            config,
            source: source.clone(),
            sinks: vec![store_sink.clone()],
        };
        let state = state.clone();
        async move { run_route(&runtime, state, &opts()).await }
    };
    let failing = |state: Arc<dyn StateStore>| async move {
        state
            .mailbox_status(Some("forget"))
            .await
            .expect("status")
            .into_iter()
            .map(|m| (m.mailbox, m.failing_since.is_some()))
            .collect::<Vec<_>>()
    };
    let gauge = |mailbox: &str| {
        crate::metrics::global().value(
            "calpump_mailbox_failing",
            &[("route", "forget"), ("mailbox", mailbox)],
        )
    };

    // A typo: the mailbox fails and shows as failing.
    let report = run(&["room-00@example.test", "rom-01@example.test"], &[]).await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(
        failing(state.clone()).await,
        vec![
            ("rom-01@example.test".to_string(), true),
            ("room-00@example.test".to_string(), false),
        ]
    );
    assert_eq!(gauge("rom-01@example.test"), Some(1.0));

    // The typo fixed: the next run forgets it.
    let report = run(&["room-00@example.test", "room-01@example.test"], &[]).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        failing(state.clone()).await,
        vec![
            ("room-00@example.test".to_string(), false),
            ("room-01@example.test".to_string(), false),
        ]
    );
    assert_eq!(gauge("rom-01@example.test"), Some(0.0));

    // A room list that cannot be resolved leaves the route's mailboxes unknown: nothing is
    // forgotten, though room-01 is not among the addresses this run names.
    let report = run(&["room-00@example.test"], &["Building Z"]).await;
    assert_eq!(report.errors[0].code(), "sync.RoomListNotFound");
    assert_eq!(failing(state.clone()).await.len(), 2);

    // Rooms of a room list count as the route's mailboxes.
    let report = run(&["room-00@example.test"], &["Building A"]).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        failing(state.clone()).await,
        vec![
            ("room-00@example.test".to_string(), false),
            ("room-02@example.test".to_string(), false),
        ]
    );
}
