//! `kill -9` of a running sync at a random point, then a new run: the state is consistent and
//! the sink holds exactly what an uninterrupted run gives.
//!
//! Until a real backend exists this drives the engine with the in-memory source through a child
//! process: this test binary re-runs itself (`crash_child`, ignored in normal runs) with the
//! work described in environment variables, and the parent kills it with SIGKILL. The sink is
//! the file-backed recorder plugin, loaded as a real cdylib; the state is the SQLite store.
//! Once the simulator and a backend exist, the same scenario should run the real `calpump sync`
//! binary against the simulator.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use calpump_engine::config::{CalendarSelection, RouteConfig, WindowConfig};
use calpump_engine::plugin_host::PluginRegistry;
use calpump_engine::runner::{RetryPolicy, RouteRuntime, RunOptions, route_window, run_route};
use calpump_engine::state::{RunStatus, SqliteStateStore, StateStore};
use calpump_engine::testing::{MemorySource, fixed_base};

const SEED: u64 = 4242;
const MAILBOXES: usize = 8;
const EVENTS: usize = 15;
const MUTATIONS: usize = 60;

fn route() -> RouteConfig {
    RouteConfig {
        name: "rooms".into(),
        profile: "memory".into(),
        shadow_profile: None,
        mailboxes: (0..MAILBOXES)
            .map(|m| format!("room-{m:02}@example.test"))
            .collect(),
        room_lists: vec![],
        calendars: CalendarSelection::Default,
        window: WindowConfig {
            past_days: 1,
            future_days: 7,
        },
        interval: Duration::from_secs(60),
        sinks: vec!["rec".into()],
        concurrency: 2,
        empty_guard: true,
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    fixed_base() + chrono::Duration::days(2)
}

/// The tenant as of a phase: `base`, or `mutated` (base plus deterministic changes).
fn source(phase: &str) -> MemorySource {
    let source =
        MemorySource::generate("memory", SEED, MAILBOXES, EVENTS, fixed_base()).with_delta_batch(3);
    if phase == "mutated" {
        source.mutate(SEED, MUTATIONS, fixed_base());
    }
    source
}

/// The child: one sync of the phase in `CALPUMP_CRASH_PHASE`, in `CALPUMP_CRASH_DIR`.
#[tokio::test]
#[ignore = "run as a child process by kill_9_at_a_random_point_then_a_new_run_gives_the_uninterrupted_result"]
async fn crash_child() {
    let dir = PathBuf::from(std::env::var("CALPUMP_CRASH_DIR").expect("CALPUMP_CRASH_DIR"));
    let phase = std::env::var("CALPUMP_CRASH_PHASE").expect("CALPUMP_CRASH_PHASE");
    let mut registry = PluginRegistry::new();
    assert!(registry.load_dir(&dir.join("plugins")).is_empty());
    let sink = registry
        .create_sink(
            "rec",
            "recorder",
            serde_json::json!({ "dir": dir.join("out"), "delay_ms": 8 }),
            Duration::from_secs(30),
        )
        .await
        .expect("sink");
    let store = SqliteStateStore::open(&dir.join("state.db"))
        .await
        .expect("state");
    calpump_engine::runner::recover(&store)
        .await
        .expect("recover");
    let state: Arc<dyn StateStore> = Arc::new(store);
    let runtime = RouteRuntime {
        config: route(),
        source: Arc::new(source(&phase).with_batch_delay(Duration::from_millis(4))),
        sinks: vec![sink],
    };
    let options = RunOptions {
        now: Some(now()),
        retry: RetryPolicy {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        ..RunOptions::default()
    };
    let report = run_route(&runtime, state.clone(), &options).await;
    assert_eq!(report.status, RunStatus::Ok, "{report:#?}");
    state.close().await;
    std::fs::write(dir.join(format!("done-{phase}")), "ok").expect("marker");
}

/// Runs the child for `phase`; with `kill_after`, SIGKILLs it then (if it is still running).
/// Returns how long it ran and whether it finished on its own.
fn child(dir: &Path, phase: &str, kill_after: Option<Duration>) -> (Duration, bool) {
    let _ = std::fs::remove_file(dir.join(format!("done-{phase}")));
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CALPUMP_CRASH_DIR", dir)
        .env("CALPUMP_CRASH_PHASE", phase)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join(format!("child-{phase}.log"))).expect("log file"),
        ))
        .spawn()
        .expect("spawn child");
    if let Some(after) = kill_after {
        while started.elapsed() < after {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // SIGKILL: no destructor, no flush, no signal handler runs.
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    let finished = dir.join(format!("done-{phase}")).exists();
    if kill_after.is_none() {
        let log =
            std::fs::read_to_string(dir.join(format!("child-{phase}.log"))).unwrap_or_default();
        assert!(
            status.success() && finished,
            "child {phase} failed: {status}\n{log}"
        );
    }
    (started.elapsed(), finished)
}

fn setup(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    common::plugin_dir(&dir, &["recorder"]);
    dir
}

/// A pseudo-random fraction in [0, 1) from the clock (printed, so a failure can be replayed
/// by reading the log).
fn random_fraction(salt: u64) -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    let mut rng = calpump_engine::testing::Rng::new(nanos ^ salt.rotate_left(17));
    (rng.next_u64() % 10_000) as f64 / 10_000.0
}

#[tokio::test]
async fn kill_9_at_a_random_point_then_a_new_run_gives_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().expect("tmp");

    // The uninterrupted reference.
    let reference = setup(tmp.path(), "reference");
    let (base_time, _) = child(&reference, "base", None);
    let (mutated_time, _) = child(&reference, "mutated", None);
    let expected = common::recorder_content(&reference.join("out"));
    let window = route_window(&route(), now());
    let truth: std::collections::BTreeMap<String, String> = source("mutated")
        .truth(&window)
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect();
    assert!(!truth.is_empty());
    assert_eq!(
        expected, truth,
        "the uninterrupted run equals the source's truth"
    );

    // The same work, killed at random points of both phases.
    let mut kills = 0;
    for round in 0..3u64 {
        let crashed = setup(tmp.path(), &format!("crashed-{round}"));
        let f1 = random_fraction(round * 2 + 1);
        let f2 = random_fraction(round * 2 + 2);
        let at1 = base_time.mul_f64(f1);
        let at2 = mutated_time.mul_f64(f2);
        eprintln!(
            "round {round}: kill base at {at1:?} of {base_time:?}, mutated at {at2:?} of {mutated_time:?}"
        );
        let (_, finished1) = child(&crashed, "base", Some(at1));
        kills += usize::from(!finished1);
        let (_, finished2) = child(&crashed, "mutated", Some(at2));
        kills += usize::from(!finished2);
        child(&crashed, "mutated", None);

        let content = common::recorder_content(&crashed.join("out"));
        assert_eq!(
            content, expected,
            "round {round}: the sink differs from the uninterrupted run"
        );

        // The state is consistent: every calendar committed at the final version, its item
        // index covering exactly the events the sink holds, and no run left `running`.
        let state = SqliteStateStore::open(&crashed.join("state.db"))
            .await
            .expect("state");
        let calendars = state.calendars(Some("rooms")).await.expect("calendars");
        assert_eq!(calendars.len(), MAILBOXES);
        let final_version = format!("mem:{}", source("mutated").version());
        let mut indexed = BTreeSet::new();
        for (key, cal) in &calendars {
            let cursor = cal.cursor.as_ref().expect("cursor");
            assert_eq!(cursor.value, final_version, "{key:?}");
            assert_eq!(cursor.window, window);
            let index = state.item_index(key).await.expect("index");
            assert_eq!(index.len() as u64, cal.event_count);
            indexed.extend(index.into_values().map(|k| k.as_str().to_string()));
        }
        let held: BTreeSet<String> = content.keys().cloned().collect();
        assert_eq!(indexed, held, "round {round}: item index and sink disagree");
        let runs = state.recent_runs(Some("rooms"), 100).await.expect("runs");
        assert!(
            runs.iter().all(|r| r.status != RunStatus::Running),
            "{runs:#?}"
        );
        assert_eq!(runs[0].status, RunStatus::Ok);
        let interrupted = runs
            .iter()
            .filter(|r| r.status == RunStatus::Interrupted)
            .count();
        assert!(interrupted <= 2);
        state.close().await;
    }
    eprintln!("{kills} of 6 children were killed mid-run");
    assert!(
        kills >= 1,
        "no child was killed mid-run: the kill points all came too late"
    );
}
