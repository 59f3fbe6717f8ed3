//! Real cdylib plugins, built by the test, loaded from a directory by the engine's plugin host
//! and driven by the runner: with the in-memory source, and (a sink failing in an incremental
//! run) with the Graph and EWS backends against the in-process simulator.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use calpump_engine::config::{CalendarSelection, RouteConfig, WindowConfig};
use calpump_engine::plugin_host::{PluginOrigin, PluginRegistry, SinkHandle};
use calpump_engine::runner::{RetryPolicy, RouteRuntime, RunOptions, route_window, run_route};
use calpump_engine::state::{RunStatus, SqliteStateStore, StateStore};
use calpump_engine::testing::{MemorySource, fixed_base};

fn route(name: &str, mailboxes: usize, sink: &str) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        profile: "memory".into(),
        shadow_profile: None,
        mailboxes: (0..mailboxes)
            .map(|m| format!("room-{m:02}@example.test"))
            .collect(),
        room_lists: vec![],
        calendars: CalendarSelection::Default,
        window: WindowConfig {
            past_days: 1,
            future_days: 7,
        },
        interval: Duration::from_secs(60),
        sinks: vec![sink.into()],
        concurrency: 1,
        empty_guard: true,
    }
}

fn options() -> RunOptions {
    RunOptions {
        now: Some(fixed_base() + chrono::Duration::days(2)),
        retry: RetryPolicy {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        ..RunOptions::default()
    }
}

async fn recorder(
    registry: &PluginRegistry,
    name: &str,
    settings: serde_json::Value,
) -> SinkHandle {
    registry
        .create_sink(name, "recorder", settings, Duration::from_secs(30))
        .await
        .expect("recorder sink")
}

fn truth(source: &MemorySource, route: &RouteConfig) -> BTreeMap<String, String> {
    let window = route_window(route, fixed_base() + chrono::Duration::days(2));
    source
        .truth(&window)
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect()
}

fn loaded(dir: &Path) -> PluginRegistry {
    let mut registry = PluginRegistry::new();
    let errors = registry.load_dir(dir);
    assert!(errors.is_empty(), "{errors:?}");
    registry
}

#[tokio::test]
async fn a_real_cdylib_is_loaded_from_a_directory_and_receives_batches() {
    let tmp = tempfile::tempdir().expect("tmp");
    let registry = loaded(&common::plugin_dir(tmp.path(), &["recorder"]));
    let info = registry.get("recorder").expect("recorder registered");
    assert!(
        matches!(&info.origin, PluginOrigin::File(f) if f.ends_with(common::lib_file("calpump_test_recorder")))
    );
    assert_eq!((info.abi_major, info.abi_minor), (1, 0));
    assert_eq!(info.config_schema["required"][0], "dir");

    let out = tmp.path().join("out");
    let source = Arc::new(MemorySource::generate("memory", 1, 3, 10, fixed_base()));
    let config = route("loaded", 3, "rec");
    let runtime = RouteRuntime {
        config: config.clone(),
        source: source.clone(),
        sinks: vec![recorder(&registry, "rec", serde_json::json!({ "dir": out })).await],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let report = run_route(&runtime, state, &options()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    let batches = common::recorder_batches(&out);
    assert_eq!(batches.len(), 3, "one snapshot per room");
    assert!(
        batches
            .iter()
            .all(|b| b["kind"] == "snapshot" && b["complete"] == true)
    );
    assert_eq!(common::recorder_content(&out), truth(&source, &config));
    // The plugin's own metric arrived through the host callback.
    let reported = calpump_engine::metrics::global().value(
        "calpump_plugin_recorder_batches_total",
        &[("plugin", "recorder"), ("route", "loaded")],
    );
    assert_eq!(reported, Some(3.0));
}

#[tokio::test]
async fn a_wrong_abi_major_is_refused_with_file_and_both_versions_and_the_rest_loads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = common::plugin_dir(tmp.path(), &["bad_abi", "recorder"]);
    let mut registry = PluginRegistry::new();
    let errors = registry.load_dir(&dir);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.contains(&common::lib_file("calpump_test_bad_abi")),
        "{text}"
    );
    assert!(
        text.contains("ABI 99.3") && text.contains("ABI 1.0"),
        "{text}"
    );
    assert_eq!(registry.refused().len(), 1);
    assert_eq!(registry.refused()[0].diagnostic.code(), "plugin.Refused");
    assert!(
        registry.get("future").is_none(),
        "nothing of the refused table is used"
    );
    assert!(
        registry.get("recorder").is_some(),
        "the good plugin beside it loads"
    );
}

#[tokio::test]
async fn a_panicking_write_batch_is_contained_and_the_process_goes_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let registry = loaded(&common::plugin_dir(tmp.path(), &["panicky", "recorder"]));
    let source = Arc::new(MemorySource::generate("memory", 2, 2, 5, fixed_base()));
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));

    let panicky = registry
        .create_sink(
            "boom",
            "panicky",
            serde_json::json!({}),
            Duration::from_secs(30),
        )
        .await
        .expect("panicky sink");
    let bad = RouteRuntime {
        config: route("bad", 2, "boom"),
        source: source.clone(),
        sinks: vec![panicky],
    };
    let report = run_route(&bad, state.clone(), &options()).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = &report.errors[0];
    assert_eq!(error.code(), "sink.Failed");
    assert!(
        error
            .detail()
            .contains("plugin panicked: panicky sink explodes"),
        "{error}"
    );
    assert!(
        state
            .calendars(Some("bad"))
            .await
            .expect("calendars")
            .is_empty(),
        "nothing committed past a failed sink"
    );

    // The same process goes on: another route with another plugin syncs.
    let out = tmp.path().join("out");
    let config = route("good", 2, "rec");
    let good = RouteRuntime {
        config: config.clone(),
        source: source.clone(),
        sinks: vec![recorder(&registry, "rec", serde_json::json!({ "dir": out })).await],
    };
    let report = run_route(&good, state, &options()).await;
    assert_eq!(report.status, RunStatus::Ok);
    assert_eq!(common::recorder_content(&out), truth(&source, &config));
}

#[tokio::test]
async fn a_sink_failing_on_the_third_batch_loses_nothing_and_doubles_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let registry = loaded(&common::plugin_dir(tmp.path(), &["recorder"]));
    let out = tmp.path().join("out");
    let source = Arc::new(MemorySource::generate("memory", 3, 5, 10, fixed_base()));
    let config = route("rooms", 5, "rec");
    let state: Arc<dyn StateStore> = Arc::new(
        SqliteStateStore::open(&tmp.path().join("state.db"))
            .await
            .expect("state"),
    );

    // Run 1: the sink fails on its third batch.
    let failing = RouteRuntime {
        config: config.clone(),
        source: source.clone(),
        sinks: vec![
            recorder(
                &registry,
                "rec",
                serde_json::json!({ "dir": out, "fail_on_batch": 3 }),
            )
            .await,
        ],
    };
    let report = run_route(&failing, state.clone(), &options()).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(
        report.errors[0]
            .detail()
            .contains("fails on purpose at batch 3")
    );
    let cursors = state.calendars(Some("rooms")).await.expect("calendars");
    assert_eq!(
        cursors.len(),
        2,
        "the cursor of the third calendar stays where it was"
    );
    assert_eq!(common::recorder_batches(&out).len(), 2);

    // Meanwhile the calendars change.
    source.mutate(21, 25, fixed_base());

    // Run 2: the sink has recovered; the third calendar onwards is re-delivered in full, the
    // first two get their deltas.
    let healthy = RouteRuntime {
        config: config.clone(),
        source: source.clone(),
        sinks: vec![recorder(&registry, "rec", serde_json::json!({ "dir": out })).await],
    };
    let report = run_route(&healthy, state.clone(), &options()).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    let batches = common::recorder_batches(&out);
    let snapshots_of = |mailbox: &str| {
        batches
            .iter()
            .filter(|b| b["mailbox"] == mailbox && b["kind"] == "snapshot")
            .count()
    };
    assert_eq!(snapshots_of("room-02@example.test"), 1, "re-delivered once");
    assert_eq!(
        snapshots_of("room-00@example.test"),
        1,
        "not re-read in full"
    );
    assert_eq!(
        common::recorder_content(&out),
        truth(&source, &config),
        "nothing lost, nothing doubled"
    );
    assert_eq!(
        state
            .calendars(Some("rooms"))
            .await
            .expect("calendars")
            .len(),
        5
    );
}

// ---- A failing sink in an incremental run, against the simulator through a real backend ----
//
// The test above fails the sink in a route's *first* run, where "the cursor stays" means no
// cursor at all. These start from a route that synced successfully (every calendar has a
// cursor), change the tenant through the simulator's control API, and fail the recorder on its
// third batch of the incremental run that follows. What the runner specifies (engine/README.md,
// `runner` module docs): batches go to the route's sinks in order; a calendar is committed —
// cursor, item index and count in one transaction — when its source read is done and every sink
// flushed; a fatal sink error stops the route, so the calendar whose batch failed and every
// calendar after it keep their stored row, while calendars finished before the failure are
// committed. The next run re-delivers from the kept cursors: to every sink, a sink that already
// took the batch included (at-least-once; sinks upsert by key).

/// Rooms of the route, in its order; the runner reads them one after the other
/// (`concurrency = 1`), so the recorder's third batch is a known room's.
const ROOMS: usize = 8;
/// Rooms the tenant changes in: the recorder's batches of the incremental run are theirs, in
/// this order; its third (the index 4 room) fails.
const CHANGED: [usize; 5] = [1, 2, 4, 5, 7];
/// The room whose batch fails, and the first room not committed by the failing run.
const FAILING: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Graph,
    Ews,
}

/// The route's sinks: `rec` is the one that fails on its third batch in the incremental run;
/// `mirror` a healthy recorder before or after it in the route's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sinks {
    FailingAlone,
    HealthyFirst,
    HealthyLast,
}

/// A recorder's content with the mailbox of every event: key → (mailbox, content hash).
type Held = BTreeMap<String, (String, String)>;

fn held(dir: &Path) -> Held {
    let Ok(bytes) = std::fs::read(dir.join("content.json")) else {
        return Held::new();
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("content.json");
    doc["events"]
        .as_object()
        .expect("events")
        .iter()
        .map(|(k, v)| {
            let field = |name: &str| v[name].as_str().expect("recorder field").to_string();
            (k.clone(), (field("mailbox"), field("hash")))
        })
        .collect()
}

/// The part of `content` that belongs to `mailboxes`.
fn of_rooms(content: &Held, mailboxes: &[String]) -> Held {
    content
        .iter()
        .filter(|(_, (m, _))| mailboxes.contains(m))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What the state store holds for one calendar, as stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredCalendar {
    cursor_json: Option<String>,
    event_count: i64,
    last_commit: Option<String>,
    /// (item id, event key), sorted.
    index: Vec<(String, String)>,
}

/// Rows of the state database through the `sqlite3` command (read as stored, not through the
/// engine's store).
fn sqlite_json(db: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("sqlite3")
        .arg("-json")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).expect("sqlite3 json")
}

/// Every calendar of `route` in the state database, by mailbox.
fn stored(db: &Path, route: &str) -> BTreeMap<String, StoredCalendar> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut out: BTreeMap<String, StoredCalendar> = sqlite_json(
        db,
        &format!(
            "SELECT mailbox, calendar, cursor_json, event_count, last_commit FROM calendars \
             WHERE route = '{route}' ORDER BY mailbox"
        ),
    )
    .iter()
    .map(|r| {
        assert_eq!(r["calendar"], "default", "one calendar per room: {r}");
        (
            text(&r["mailbox"]).expect("mailbox"),
            StoredCalendar {
                cursor_json: text(&r["cursor_json"]),
                event_count: r["event_count"].as_i64().expect("event_count"),
                last_commit: text(&r["last_commit"]),
                index: Vec::new(),
            },
        )
    })
    .collect();
    for r in sqlite_json(
        db,
        &format!(
            "SELECT mailbox, item_id, event_key FROM item_index WHERE route = '{route}' \
             ORDER BY mailbox, item_id, event_key"
        ),
    ) {
        let mailbox = text(&r["mailbox"]).expect("mailbox");
        out.get_mut(&mailbox)
            .unwrap_or_else(|| panic!("an item index row without a calendar row: {r}"))
            .index
            .push((
                text(&r["item_id"]).expect("item_id"),
                text(&r["event_key"]).expect("event_key"),
            ));
    }
    out
}

/// Each room's item index holds exactly the keys of `truth` in that room, and its count says so.
fn assert_index_is(stored: &BTreeMap<String, StoredCalendar>, truth: &Held, label: &str) {
    for (mailbox, row) in stored {
        let indexed: std::collections::BTreeSet<&str> =
            row.index.iter().map(|(_, key)| key.as_str()).collect();
        let want: std::collections::BTreeSet<&str> = truth
            .iter()
            .filter(|(_, (m, _))| m == mailbox)
            .map(|(key, _)| key.as_str())
            .collect();
        assert_eq!(indexed, want, "{label}: the item index of {mailbox}");
        assert_eq!(
            row.event_count,
            want.len() as i64,
            "{label}: the event count of {mailbox}"
        );
    }
}

/// The cursor's value and window as stored.
fn cursor_of(row: &StoredCalendar) -> (String, serde_json::Value) {
    let json = row.cursor_json.as_deref().expect("a stored cursor");
    let cursor: serde_json::Value = serde_json::from_str(json).expect("cursor json");
    (
        cursor["value"].as_str().expect("cursor value").to_string(),
        cursor["window"].clone(),
    )
}

/// A simulator tenant, a route over its rooms through one backend, and the route's state.
struct SimRoute {
    sim: calpump_simulator::Simulator,
    backend: Backend,
    source: Arc<dyn calpump_engine::source::Source>,
    config: RouteConfig,
    rooms: Vec<String>,
    now: chrono::DateTime<chrono::Utc>,
    dir: std::path::PathBuf,
    db: std::path::PathBuf,
    state: Arc<dyn StateStore>,
    registry: PluginRegistry,
}

/// A `{ file = … }` secret reference to a file holding `value`.
fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).expect("secret file");
    format!(
        "{{ file = {} }}",
        toml::Value::String(path.display().to_string())
    )
}

impl SimRoute {
    async fn start(backend: Backend, dir: &Path) -> Self {
        use calpump_simulator::{SimConfig, Simulator, catalogue};
        // A fixed day, so a run near midnight cannot move the window between two runs.
        let anchor = chrono::DateTime::parse_from_rfc3339("2026-10-19T00:00:00Z")
            .expect("anchor")
            .with_timezone(&chrono::Utc);
        let sim = Simulator::start(SimConfig {
            rooms: ROOMS as u32,
            events_per_room: 12,
            seed: 11,
            anchor: Some(anchor),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let (profile, factory): (String, &dyn calpump_engine::source::SourceFactory) = match backend
        {
            Backend::Graph => (
                format!(
                    r#"tenant = "{tenant}"
                           client_id = "{id}"
                           client_secret = {secret}
                           authority = "{authority}"
                           graph_url = "{graph}""#,
                    tenant = catalogue::TENANT_DOMAIN,
                    id = catalogue::GRAPH_APP_ID,
                    secret = secret_file(dir, "graph-secret", catalogue::GRAPH_APP_SECRET),
                    authority = sim.authority(),
                    graph = sim.graph_url(),
                ),
                &calpump_graph::GraphFactory,
            ),
            Backend::Ews => (
                format!(
                    r#"url = "{url}"
                           auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = {pw} }}
                           impersonation = true"#,
                    url = sim.ews_url(),
                    pw = secret_file(dir, "ews-password", catalogue::ACCOUNT_PASSWORD),
                ),
                &calpump_ews::EwsFactory,
            ),
        };
        let table: toml::Table = toml::from_str(&profile).expect("profile");
        let secrets = calpump_engine::secret::SecretResolver::new(dir.join("calpump.key"));
        let ctx = calpump_engine::source::ProfileContext {
            name: "sim",
            settings: &table,
            secrets: &secrets,
        };
        let issues = factory.check(&ctx);
        assert!(issues.is_empty(), "{backend:?}: {issues:?}");
        let source = match factory.build(&ctx) {
            Ok(source) => source,
            Err(e) => panic!("{backend:?}: {e}"),
        };
        let rooms: Vec<String> = (1..=ROOMS)
            .map(|n| format!("room-1.{n:02}@contoso.com"))
            .collect();
        let config = RouteConfig {
            name: "sim-rooms".into(),
            profile: "sim".into(),
            mailboxes: rooms.clone(),
            window: WindowConfig {
                past_days: 1,
                future_days: 14,
            },
            // One calendar after the other: the recorder's third batch is a known room's.
            concurrency: 1,
            ..route("sim-rooms", 0, "rec")
        };
        let db = dir.join("state.db");
        let state: Arc<dyn StateStore> =
            Arc::new(SqliteStateStore::open(&db).await.expect("state"));
        Self {
            sim,
            backend,
            source,
            config,
            rooms,
            now: anchor + chrono::Duration::hours(12),
            dir: dir.to_path_buf(),
            db,
            state,
            registry: loaded(&common::plugin_dir(dir, &["recorder"])),
        }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            now: Some(self.now),
            retry: RetryPolicy {
                attempts: 2,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            ..RunOptions::default()
        }
    }

    fn out(&self, sink: &str) -> std::path::PathBuf {
        self.dir.join("out").join(sink)
    }

    /// Fresh sink instances (as a new process would make), in the route's order.
    async fn sinks(&self, sinks: Sinks, fail_on_batch: Option<u64>) -> Vec<SinkHandle> {
        let mut settings = serde_json::json!({ "dir": self.out("rec") });
        if let Some(n) = fail_on_batch {
            settings["fail_on_batch"] = n.into();
        }
        let rec = recorder(&self.registry, "rec", settings).await;
        let mirror = || {
            recorder(
                &self.registry,
                "mirror",
                serde_json::json!({ "dir": self.out("mirror") }),
            )
        };
        match sinks {
            Sinks::FailingAlone => vec![rec],
            Sinks::HealthyFirst => vec![mirror().await, rec],
            Sinks::HealthyLast => vec![rec, mirror().await],
        }
    }

    async fn run(&self, sinks: Vec<SinkHandle>) -> calpump_engine::runner::RouteReport {
        let mut config = self.config.clone();
        config.sinks = sinks.iter().map(|s| s.name().to_string()).collect();
        let runtime = RouteRuntime {
            config,
            source: self.source.clone(),
            sinks,
        };
        run_route(&runtime, self.state.clone(), &self.options()).await
    }

    /// The truth now: a full read of the route's window (no cursor, its own state, a recorder
    /// of its own), whose keys must be the simulator's own truth mapped to keys.
    async fn truth(&self, label: &str) -> Held {
        let out = self.dir.join("truth").join(label);
        let runtime = RouteRuntime {
            config: self.config.clone(),
            source: self.source.clone(),
            sinks: vec![recorder(&self.registry, "truth", serde_json::json!({ "dir": out })).await],
        };
        let state: Arc<dyn StateStore> =
            Arc::new(SqliteStateStore::in_memory().await.expect("state"));
        let opts = RunOptions {
            full: true,
            ..self.options()
        };
        let report = run_route(&runtime, state, &opts).await;
        assert_eq!(report.status, RunStatus::Ok, "{label}: {report:#?}");
        let content = held(&out);
        let window = route_window(&self.config, self.now);
        let mut keys = std::collections::BTreeSet::new();
        for room in &self.rooms {
            for t in self
                .sim
                .control()
                .truth(room, Some("Calendar"), window.start, window.end)
                .expect("truth")
            {
                let goid = calpump_plugin::GlobalObjectId::from_hex(&t.goid).expect("goid");
                let key =
                    calpump_plugin::EventKey::derive(room, &goid, t.original_start).expect("key");
                keys.insert(key.as_str().to_string());
            }
        }
        assert_eq!(
            content
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            keys,
            "{label}: a full read through {:?} is the simulator's truth",
            self.backend
        );
        content
    }

    /// The recorder's batches of one run, as (mailbox, kind, upserts, deletes, complete).
    fn batches(&self, sink: &str, run_id: &str) -> Vec<(String, String, u64, u64, bool)> {
        common::recorder_batches(&self.out(sink))
            .iter()
            .filter(|b| b["run_id"] == run_id)
            .map(|b| {
                (
                    b["mailbox"].as_str().expect("mailbox").to_string(),
                    b["kind"].as_str().expect("kind").to_string(),
                    b["upserts"].as_u64().expect("upserts"),
                    b["deletes"].as_u64().expect("deletes"),
                    b["complete"].as_bool().expect("complete"),
                )
            })
            .collect()
    }

    fn rooms_at(&self, indexes: &[usize]) -> Vec<String> {
        indexes.iter().map(|&i| self.rooms[i].clone()).collect()
    }

    fn key(
        &self,
        room: usize,
        goid: &str,
        original_start: Option<chrono::DateTime<chrono::Utc>>,
    ) -> String {
        let goid = calpump_plugin::GlobalObjectId::from_hex(goid).expect("goid");
        calpump_plugin::EventKey::derive(&self.rooms[room], &goid, original_start)
            .expect("key")
            .as_str()
            .to_string()
    }
}

/// What the tenant changes made: keys that must be gone, keys that must be new, keys whose
/// content must differ.
#[derive(Debug, Default)]
struct Changes {
    deleted: Vec<String>,
    added: Vec<String>,
    changed: Vec<String>,
}

/// Adds, changes and deletes in the rooms of [`CHANGED`], through the control API: in rooms
/// before the failing one, in it, and after it — among them a room whose only changes are
/// deletions (the runner holds such deletes until the calendar's end) and a cancelled
/// occurrence of a series.
fn change_tenant(r: &SimRoute) -> Changes {
    use calpump_simulator::{EventChange, NewEvent};
    let c = r.sim.control();
    let window = route_window(&r.config, r.now);
    let truth = |room: usize| {
        c.truth(&r.rooms[room], Some("Calendar"), window.start, window.end)
            .expect("truth")
    };
    let singles = |room: usize| -> Vec<calpump_simulator::TruthInstance> {
        let mut s: Vec<_> = truth(room)
            .into_iter()
            .filter(|t| t.original_start.is_none() && !t.is_all_day)
            .collect();
        s.sort_by(|a, b| a.goid.cmp(&b.goid));
        s
    };
    let new_event = |subject: &str, day: i64| -> NewEvent {
        let at = window.start + chrono::Duration::days(day) + chrono::Duration::hours(7);
        serde_json::from_value(serde_json::json!({
            "subject": subject, "start": at, "end": at + chrono::Duration::minutes(45)
        }))
        .expect("new event")
    };
    let rename = |room: usize, goid: &str, subject: &str| {
        c.change_event(
            &r.rooms[room],
            goid,
            None,
            &EventChange {
                subject: Some(subject.into()),
                ..EventChange::default()
            },
        )
        .expect("change");
        r.key(room, goid, None)
    };
    let mut changed = Vec::new();
    let mut deleted = Vec::new();
    let mut added = Vec::new();

    // Room 1: a rename and a deletion.
    let s = singles(1);
    assert!(s.len() >= 3, "room 1 has singles to change");
    changed.push(rename(1, &s[0].goid, "Renamed before the failure"));
    c.delete_event(&r.rooms[1], &s[1].goid).expect("delete");
    deleted.push(r.key(1, &s[1].goid, None));
    // Room 2: a new booking.
    let e = c
        .create_event(&r.rooms[2], &new_event("Booked before the failure", 3))
        .expect("create");
    added.push(r.key(2, &e.goid, None));
    // Room 4 (its batch fails): a new booking, a rename, a deletion.
    let s = singles(FAILING);
    assert!(s.len() >= 3, "room 4 has singles to change");
    let e = c
        .create_event(
            &r.rooms[FAILING],
            &new_event("Booked in the failing room", 4),
        )
        .expect("create");
    added.push(r.key(FAILING, &e.goid, None));
    changed.push(rename(FAILING, &s[0].goid, "Renamed in the failing room"));
    c.delete_event(&r.rooms[FAILING], &s[1].goid)
        .expect("delete");
    deleted.push(r.key(FAILING, &s[1].goid, None));
    // Room 5: deletions only.
    let s = singles(5);
    assert!(s.len() >= 4, "room 5 keeps events after two deletions");
    for t in &s[..2] {
        c.delete_event(&r.rooms[5], &t.goid).expect("delete");
        deleted.push(r.key(5, &t.goid, None));
    }
    // Room 7: a cancelled occurrence of a series and a moved meeting.
    let occurrence = truth(7)
        .into_iter()
        .find(|t| t.original_start.is_some())
        .expect("room 7 has a series in the window");
    let original = occurrence.original_start.expect("original start");
    c.cancel_occurrence(&r.rooms[7], &occurrence.goid, original)
        .expect("cancel");
    deleted.push(r.key(7, &occurrence.goid, Some(original)));
    let s = singles(7);
    let moved = s.first().expect("room 7 has a single");
    let at = moved.start + chrono::Duration::hours(1);
    c.change_event(
        &r.rooms[7],
        &moved.goid,
        None,
        &EventChange {
            start: Some(at),
            end: Some(at + (moved.end - moved.start)),
            ..EventChange::default()
        },
    )
    .expect("move");
    changed.push(r.key(7, &moved.goid, None));

    Changes {
        deleted,
        added,
        changed,
    }
}

/// The incremental-run scenario; see the comment above [`ROOMS`].
async fn fail_in_an_incremental_run(backend: Backend, sinks: Sinks) {
    // Shown with a failure's output: which of the scenarios a test loops over failed.
    println!("scenario: {backend:?} with {sinks:?}");
    let tmp = tempfile::tempdir().expect("tmp");
    let r = SimRoute::start(backend, tmp.path()).await;
    let names: Vec<&str> = match sinks {
        Sinks::FailingAlone => vec!["rec"],
        _ => vec!["rec", "mirror"],
    };
    let all = r.rooms.clone();
    let committed_rooms: Vec<String> = all[..FAILING].to_vec();
    let kept_rooms: Vec<String> = all[FAILING..].to_vec();
    let changed_rooms = r.rooms_at(&CHANGED);
    let incremental_kind = match backend {
        // Graph: the stored delta link → a delta of the changes.
        Backend::Graph => "delta",
        // EWS: SyncFolderItems finds changes → the window of that calendar is read again.
        Backend::Ews => "snapshot",
    };

    // 1. A successful sync: every calendar gets a cursor. Graph's first run reads through
    //    calendarView and its second starts the delta links; the incremental run then follows
    //    those links.
    let first_runs = match backend {
        Backend::Graph => 2,
        Backend::Ews => 1,
    };
    for n in 0..first_runs {
        let report = r.run(r.sinks(sinks, None).await).await;
        assert_eq!(report.status, RunStatus::Ok, "first sync {n}: {report:#?}");
    }
    let t1 = r.truth("t1").await;
    for sink in &names {
        assert_eq!(
            held(&r.out(sink)),
            t1,
            "{sink} holds the truth after the first sync"
        );
    }
    let before = stored(&r.db, "sim-rooms");
    assert_eq!(
        before.keys().cloned().collect::<Vec<_>>(),
        all,
        "every calendar has its row"
    );
    assert!(
        before
            .values()
            .all(|c| c.cursor_json.is_some() && !c.index.is_empty()),
        "every calendar has a cursor and an item index: {before:#?}"
    );
    assert_index_is(&before, &t1, "after the first sync");

    // 2. The tenant changes.
    let changes = change_tenant(&r);
    let t2 = r.truth("t2").await;
    for key in &changes.deleted {
        assert!(
            t1.contains_key(key) && !t2.contains_key(key),
            "{key} deleted"
        );
    }
    for key in &changes.added {
        assert!(!t1.contains_key(key) && t2.contains_key(key), "{key} added");
    }
    for key in &changes.changed {
        assert_ne!(t1.get(key), t2.get(key), "{key} changed");
        assert!(t2.contains_key(key));
    }
    for room in all.iter().filter(|m| !changed_rooms.contains(m)) {
        assert_eq!(
            of_rooms(&t1, std::slice::from_ref(room)),
            of_rooms(&t2, std::slice::from_ref(room)),
            "{room} did not change"
        );
    }

    // 3. The incremental run: `rec` fails on its third batch, the failing room's.
    let report = r.run(r.sinks(sinks, Some(3)).await).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:#?}");
    assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
    assert_eq!(report.errors[0].code(), "sink.Failed");
    assert!(
        report.errors[0]
            .detail()
            .contains("fails on purpose at batch 3"),
        "{}",
        report.errors[0]
    );
    let failed_run = report.run_id.clone();
    let after = stored(&r.db, "sim-rooms");
    for room in &kept_rooms {
        let (was, is) = (&before[room], &after[room]);
        assert_eq!(
            is.cursor_json, was.cursor_json,
            "{room}: the cursor stays byte for byte"
        );
        assert_eq!(cursor_of(is), cursor_of(was), "{room}: value and window");
        assert_eq!(
            is, was,
            "{room}: no commit at all (count, time, item index)"
        );
    }
    for room in &committed_rooms {
        assert_ne!(
            after[room].last_commit, before[room].last_commit,
            "{room} finished before the failure and was committed"
        );
    }
    let committed: BTreeMap<String, StoredCalendar> = after
        .iter()
        .filter(|(m, _)| committed_rooms.contains(m))
        .map(|(m, c)| (m.clone(), c.clone()))
        .collect();
    assert_index_is(&committed, &t2, "the rooms committed before the failure");
    for room in r.rooms_at(&[1, 2]) {
        let (value, window) = cursor_of(&after[&room]);
        assert_ne!(
            value,
            cursor_of(&before[&room]).0,
            "{room}: its accepted changes advanced the cursor"
        );
        assert_eq!(window, cursor_of(&before[&room]).1, "{room}: same window");
    }
    let delivered = |sink: &str, run: &str| -> Vec<String> {
        r.batches(sink, run).into_iter().map(|b| b.0).collect()
    };
    assert_eq!(
        delivered("rec", &failed_run),
        r.rooms_at(&[1, 2]),
        "rec took the batches before the failing one"
    );
    assert!(
        r.batches("rec", &failed_run)
            .iter()
            .all(|b| b.1 == incremental_kind),
        "{:?}",
        r.batches("rec", &failed_run)
    );
    // What each sink holds now: the committed rooms' new truth; the rooms after the failure
    // as before it, except that a sink which took the failing room's batch may hold it (it
    // flushed nothing of it, but a sink that applies on write would).
    let took_failing_batch = |sink: &str| sink == "mirror" && sinks == Sinks::HealthyFirst;
    for sink in &names {
        let content = held(&r.out(sink));
        assert_eq!(
            of_rooms(&content, &committed_rooms),
            of_rooms(&t2, &committed_rooms),
            "{sink}: the rooms committed before the failure hold the new truth"
        );
        let failing = std::slice::from_ref(&all[FAILING]);
        let now = of_rooms(&content, failing);
        if took_failing_batch(sink) {
            assert!(
                now == of_rooms(&t1, failing) || now == of_rooms(&t2, failing),
                "{sink}: the failing room as before or as now"
            );
        } else {
            assert_eq!(
                now,
                of_rooms(&t1, failing),
                "{sink}: the failed batch left no trace"
            );
        }
        assert_eq!(
            of_rooms(&content, &all[FAILING + 1..]),
            of_rooms(&t1, &all[FAILING + 1..]),
            "{sink}: the rooms after the failure are untouched"
        );
    }
    if names.contains(&"mirror") {
        let expected = if took_failing_batch("mirror") {
            r.rooms_at(&[1, 2, FAILING])
        } else {
            r.rooms_at(&[1, 2])
        };
        assert_eq!(
            delivered("mirror", &failed_run),
            expected,
            "the healthy sink got every batch up to the failing sink's failure"
        );
    }

    // 4. The sinks recover: the next run re-delivers the rooms from the failing one on, from
    //    the kept cursors, and only those.
    let report = r.run(r.sinks(sinks, None).await).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    let recovery = report.run_id.clone();
    let redelivered = r.rooms_at(&[FAILING, 5, 7]);
    for sink in &names {
        assert_eq!(
            delivered(sink, &recovery),
            redelivered,
            "{sink}: the changed rooms not committed, once each"
        );
        assert!(
            r.batches(sink, &recovery)
                .iter()
                .all(|b| b.1 == incremental_kind),
            "{sink}: read from the kept cursors, not in full: {:?}",
            r.batches(sink, &recovery)
        );
        let content = held(&r.out(sink));
        assert_eq!(content, t2, "{sink}: the sink equals the truth");
        for key in &changes.deleted {
            assert!(!content.contains_key(key), "{sink}: deletion of {key} lost");
        }
        for key in &changes.added {
            assert!(content.contains_key(key), "{sink}: {key} missing");
        }
        // Every changed room arrived exactly once at a sink that never took a batch twice;
        // a sink that took the failing room's batch before the failure takes it again.
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for run in [&failed_run, &recovery] {
            for room in delivered(sink, run) {
                *counts.entry(room).or_default() += 1;
            }
        }
        let mut expected: BTreeMap<String, usize> =
            changed_rooms.iter().map(|m| (m.clone(), 1)).collect();
        if took_failing_batch(sink) {
            expected.insert(all[FAILING].clone(), 2);
        }
        assert_eq!(
            counts, expected,
            "{sink}: deliveries per room over both runs"
        );
    }
    if took_failing_batch("mirror") {
        let first = r.batches("mirror", &failed_run);
        let again = r.batches("mirror", &recovery);
        assert_eq!(
            first.last(),
            again.first(),
            "the re-delivered batch is the one the failing run delivered"
        );
    }
    let recovered = stored(&r.db, "sim-rooms");
    assert_index_is(&recovered, &t2, "after the recovery");
    for room in &kept_rooms {
        assert_ne!(
            recovered[room].last_commit, before[room].last_commit,
            "{room} is committed now"
        );
        assert_eq!(cursor_of(&recovered[room]).1, cursor_of(&before[room]).1);
    }
    for room in &committed_rooms {
        assert_eq!(
            recovered[room].index, after[room].index,
            "{room}: nothing re-delivered, nothing re-indexed"
        );
    }

    // 5. Another run without changes delivers nothing: nothing doubled on the way.
    let report = r.run(r.sinks(sinks, None).await).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    for sink in &names {
        assert_eq!(r.batches(sink, &report.run_id), vec![], "{sink}");
        assert_eq!(held(&r.out(sink)), t2, "{sink}");
    }
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_incremental_run_failing_on_the_third_batch_keeps_the_cursors_and_recovers() {
    fail_in_an_incremental_run(Backend::Graph, Sinks::FailingAlone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_incremental_run_failing_on_the_third_batch_keeps_the_cursors_and_recovers() {
    fail_in_an_incremental_run(Backend::Ews, Sinks::FailingAlone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_sink_before_the_failing_one_takes_the_redelivery_idempotently() {
    for backend in [Backend::Graph, Backend::Ews] {
        fail_in_an_incremental_run(backend, Sinks::HealthyFirst).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_sink_after_the_failing_one_gets_each_batch_once() {
    for backend in [Backend::Graph, Backend::Ews] {
        fail_in_an_incremental_run(backend, Sinks::HealthyLast).await;
    }
}
