//! The sink loaded as a plugin: `cargo build -p calpump-sink-database-plugin`, load the `.so`
//! with libloading, call through its C ABI table — the conformance suite passes, and the same
//! batches give the same results and the same stored rows as the sink linked in.

mod common;

use std::sync::OnceLock;

use calpump_plugin::abi::{ABI_MAJOR, SINK_PLUGIN_V1_0_SIZE};
use calpump_plugin::conformance::generate::{EventGen, base_time, delta, snapshot, window};
use calpump_plugin::conformance::{SinkHandle, TableSink, run_all};
use calpump_plugin::{Batch, Sink, SinkErrorKind, SinkResult};
use common::{DbHarness, Engine, build_plugin, linked_table, load_table};
use serde_json::json;

/// Built once per test process (tests run in parallel).
fn plugin_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(build_plugin)
}

#[test]
fn plugin_table_is_the_linked_table() {
    let table = load_table(plugin_path()).expect("load the plugin");
    let linked = linked_table();
    assert_eq!(table.abi_major, ABI_MAJOR);
    assert_eq!(table.struct_size, SINK_PLUGIN_V1_0_SIZE);
    // SAFETY: static strings of the tables.
    let (name, schema, linked_schema) = unsafe {
        (
            table.name.to_string_lossy(),
            table.config_schema.to_string_lossy(),
            linked.config_schema.to_string_lossy(),
        )
    };
    assert_eq!(name, "database");
    assert_eq!(schema, linked_schema);
    let schema: serde_json::Value = serde_json::from_str(&schema).expect("config schema is JSON");
    assert_eq!(schema["required"], json!(["url"]));
    assert!(
        !std::ptr::eq(table, linked),
        "the loaded table must come from the .so, not from this binary"
    );

    // `check` through the ABI names the wrong key, and has no side effects.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("sub/never-created.db");
    let err = TableSink::check(
        table,
        &json!({"url": format!("sqlite://{}", file.display()), "tabel_prefix": "x"}),
    )
    .expect_err("unknown key");
    assert_eq!(err.kind, SinkErrorKind::Config);
    assert!(err.message.contains("tabel_prefix"), "{}", err.message);
    let warnings = TableSink::check(
        table,
        &json!({"url": format!("sqlite://{}", file.display())}),
    )
    .expect("valid config");
    assert!(
        warnings.iter().any(|w| w.contains("does not exist")),
        "{warnings:?}"
    );
    assert!(
        !file.parent().expect("parent").exists(),
        "check created something"
    );

    // A server that is not there: retryable, through the ABI too.
    let err = TableSink::create(
        table,
        &json!({"url": "postgres://postgres@127.0.0.1:1/none", "connect_timeout_secs": 2}),
    )
    .err()
    .expect("no server on port 1");
    assert_eq!(err.kind, SinkErrorKind::Retryable, "{}", err.message);
}

/// Not a test of its own: the helper process the SQLite harness reads through when the sink
/// under test is the loaded `.so` (see `common::Reader::Process`). Does nothing otherwise.
#[test]
fn helper_process_for_sqlite_reads() {
    common::serve_helper();
}

#[test]
fn plugin_so_sqlite_conformance() {
    run_all("plugin_so_sqlite_conformance", || {
        DbHarness::for_plugin(Engine::Sqlite, json!({}), plugin_path().to_string())
    });
}

#[test]
fn plugin_so_postgres_conformance() {
    run_all("plugin_so_postgres_conformance", || {
        DbHarness::for_plugin(
            Engine::Postgres,
            json!({ "delete": "hard" }),
            plugin_path().to_string(),
        )
    });
}

/// A sequence with snapshots, deltas, a vanished event, a revival and a rejected row.
fn sequence() -> Vec<Batch> {
    let (route, mb) = ("same", "room-same@contoso.test");
    let mut g = EventGen::new(1234);
    let w = window(base_time(), 14);
    let events = g.events(mb, "default", &w, 80);
    let mut with_bad = events.clone();
    with_bad[3].subject = "y".repeat(80_000);
    let mut second: Vec<_> = events[10..].to_vec();
    second.extend(g.events(mb, "default", &w, 5));
    let changed: Vec<_> = events[20..30].iter().map(|e| g.modify(e)).collect();
    vec![
        snapshot(route, mb, "default", w, with_bad, true, "r1"),
        snapshot(route, mb, "default", w, second, true, "r2"),
        delta(
            route,
            mb,
            "default",
            w,
            changed,
            vec![events[40].key().clone()],
            "r3",
        ),
        delta(route, mb, "default", w, events[..2].to_vec(), vec![], "r4"),
    ]
}

fn normalise(mut r: SinkResult) -> SinkResult {
    r.accepted.sort();
    r.rejected.sort_by(|a, b| a.key.cmp(&b.key));
    r
}

fn same_results(engine: Engine) {
    let table = load_table(plugin_path()).expect("load the plugin");
    let linked_h = DbHarness::new(engine, json!({}));
    let loaded_h = DbHarness::for_plugin(engine, json!({}), plugin_path().to_string());
    let linked =
        calpump_sink_database::DatabaseSink::create(linked_h.config.clone()).expect("linked");
    let loaded = TableSink::create(table, &loaded_h.config).expect("loaded");
    for (i, batch) in sequence().iter().enumerate() {
        let a = normalise(SinkHandle::write_batch(&linked, batch).expect("linked write"));
        let b = normalise(loaded.write_batch(batch).expect("loaded write"));
        assert_eq!(a, b, "{engine:?}: batch {i}: results differ");
        if i == 0 {
            assert_eq!(
                a.rejected.len(),
                1,
                "{engine:?}: the 80 kB subject is rejected"
            );
        }
    }
    let strip = |h: &DbHarness| -> Vec<_> {
        h.rows("same", "room-same@contoso.test", None)
            .into_iter()
            .map(|r| (r.event, r.content_hash, r.run_id, r.deleted_at.is_some()))
            .collect()
    };
    let (a, b) = (strip(&linked_h), strip(&loaded_h));
    assert_eq!(a.len(), 84, "{engine:?}");
    assert_eq!(
        a, b,
        "{engine:?}: stored rows differ between linked and loaded"
    );
}

#[test]
fn plugin_so_gives_the_same_results_as_linked_sqlite() {
    same_results(Engine::Sqlite);
}

#[test]
fn plugin_so_gives_the_same_results_as_linked_postgres() {
    same_results(Engine::Postgres);
}

#[test]
fn plugin_so_gives_the_same_results_as_linked_mariadb() {
    same_results(Engine::MariaDb);
}
