//! Real cdylib plugins, built by the test, loaded from a directory by the engine's plugin host
//! and driven by the runner with the in-memory source.

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
