//! Loaded as a `.so` from a plugin directory, the sink behaves exactly as linked in: the same
//! batches and ticks through the loaded table and through `sink_table()` give byte-identical
//! out_dirs — driven through the raw ABI, and through the host's `PluginRegistry` (built-in
//! registered first, then `load_dir` of a directory holding the `.so`, as calpump does: the file
//! replaces the built-in). The test builds the cdylib itself (`cargo test` does not build cdylib
//! targets).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use calpump_plugin::abi::{OwnedBuf, SINK_ENTRY_SYMBOL, SinkEntryFn, SinkPluginV1, Status, StrRef};
use calpump_plugin::{Batch, BatchKind, SCHEMA_VERSION, Sensitivity, SinkResult, Tick, TickResult};
use chrono::Duration;
use common::*;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the plugin (once per test binary) and returns the path of the shared library.
fn build_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_plugin_now).clone()
}

fn build_plugin_now() -> PathBuf {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(cargo())
        .args(["build", "-p", "calpump-sink-doorsign-plugin"])
        .current_dir(manifest_dir)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p calpump-sink-doorsign-plugin failed"
    );
    let metadata = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(manifest_dir)
        .output()
        .expect("cargo metadata");
    assert!(metadata.status.success());
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).expect("metadata JSON");
    let target = PathBuf::from(
        metadata["target_directory"]
            .as_str()
            .expect("target_directory"),
    );
    let file = format!(
        "{}calpump_doorsign{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = target.join("debug").join(file);
    assert!(path.is_file(), "{} not built", path.display());
    path
}

/// Loads the library (never unloaded, as the host does) and returns its table.
fn load(path: &PathBuf) -> &'static SinkPluginV1 {
    // SAFETY: loading our own plugin, whose initialisers are Rust's and harmless.
    let library = unsafe { libloading::Library::new(path) }.expect("load plugin");
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol has the ABI's entry signature.
    let entry: libloading::Symbol<'static, SinkEntryFn> =
        unsafe { library.get(SINK_ENTRY_SYMBOL) }.expect("calpump_sink_v1 exported");
    // SAFETY: the entry returns a pointer to a static table.
    let table = unsafe { entry() };
    assert!(!table.is_null());
    // SAFETY: non-null pointer to a static table.
    unsafe { &*table }
}

fn take(table: &SinkPluginV1, buf: OwnedBuf) -> String {
    // SAFETY: the buffer came from this table and is freed once, by it.
    let text = String::from_utf8_lossy(unsafe { buf.as_bytes() }).into_owned();
    unsafe { (table.free_buf)(buf) };
    text
}

/// Drives one table through the ABI: create, batches, tick, flush, destroy.
fn drive(
    table: &SinkPluginV1,
    config: &serde_json::Value,
    batches: &[Batch],
    tick: &Tick,
) -> (Vec<SinkResult>, TickResult) {
    let config = config.to_string();
    let mut out = OwnedBuf::empty();
    // SAFETY: valid arguments for the call.
    let status = unsafe { (table.check)(StrRef::new(&config), &mut out) };
    let report = take(table, out);
    assert_eq!(status, Status::OK, "{report}");

    let mut instance = std::ptr::null_mut();
    let mut out = OwnedBuf::empty();
    // SAFETY: as above; no host callbacks.
    let status = unsafe {
        (table.create)(
            StrRef::new(&config),
            std::ptr::null(),
            &mut instance,
            &mut out,
        )
    };
    let error = take(table, out);
    assert_eq!(status, Status::OK, "create: {error}");

    let mut results = Vec::new();
    for batch in batches {
        let json = serde_json::to_string(batch).expect("batch JSON");
        let mut out = OwnedBuf::empty();
        // SAFETY: instance from create.
        let status = unsafe { (table.write_batch)(instance, StrRef::new(&json), &mut out) };
        let text = take(table, out);
        assert_eq!(status, Status::OK, "write_batch: {text}");
        results.push(serde_json::from_str(&text).expect("SinkResult"));
    }
    let json = serde_json::to_string(tick).expect("tick JSON");
    let mut out = OwnedBuf::empty();
    // SAFETY: instance from create.
    let status = unsafe { (table.tick)(instance, StrRef::new(&json), &mut out) };
    let text = take(table, out);
    assert_eq!(status, Status::OK, "tick: {text}");
    let tick_result: TickResult = serde_json::from_str(&text).expect("TickResult");
    let mut out = OwnedBuf::empty();
    // SAFETY: instance from create.
    let status = unsafe { (table.flush)(instance, &mut out) };
    take(table, out);
    assert_eq!(status, Status::OK);
    // SAFETY: destroyed once.
    unsafe { (table.destroy)(instance) };
    (results, tick_result)
}

/// The batches both sides get: snapshots of two rooms (one private meeting, non-ASCII, HTML in a
/// subject), then a delta with a meeting across midnight.
fn batches() -> Vec<Batch> {
    let room = "room-1.01@contoso.com";
    let other = "Room-2@Contoso.com";
    let mut private = event(room, 3, "Secret", at(13, 0), at(14, 0));
    private.sensitivity = Sensitivity::Confidential;
    vec![
        batch(
            room,
            Some("Raum 1.01"),
            BatchKind::Snapshot,
            vec![
                event(room, 1, "Standup <b>", at(9, 0), at(10, 0)),
                event(room, 2, "Größenplanung", at(11, 0), at(12, 0)),
                private,
            ],
            vec![],
        ),
        batch(
            other,
            None,
            BatchKind::Snapshot,
            vec![event(
                "room-2@contoso.com",
                1,
                "Design",
                at(9, 40),
                at(10, 0),
            )],
            vec![],
        ),
        batch(
            room,
            None,
            BatchKind::Delta,
            vec![event(
                room,
                4,
                "Late",
                at(23, 0),
                at(23, 0) + Duration::hours(2),
            )],
            vec![],
        ),
    ]
}

fn tick() -> Tick {
    Tick {
        schema_version: SCHEMA_VERSION,
        now: at(9, 35),
        mailboxes: vec![],
    }
}

#[test]
fn the_loaded_plugin_writes_exactly_what_the_linked_sink_writes() {
    let plugin = build_plugin();
    let loaded = load(&plugin);
    let linked = calpump_sink_doorsign::sink_table();
    assert_eq!(loaded.abi_major, linked.abi_major);
    assert_eq!(loaded.struct_size, linked.struct_size);
    // SAFETY: static strings of the tables.
    let (name, schema) = unsafe {
        (
            loaded.name.to_string_lossy(),
            loaded.config_schema.to_string_lossy(),
        )
    };
    assert_eq!(name, "doorsign");
    assert_eq!(schema, calpump_sink_doorsign::CONFIG_SCHEMA);

    let batches = batches();
    let tick = tick();

    let dir_loaded = tempfile::tempdir().expect("tmp");
    let dir_linked = tempfile::tempdir().expect("tmp");
    let cfg = |dir: &std::path::Path| config(dir, serde_json::json!({"language": "de"}));
    let (results_loaded, tick_loaded) = drive(loaded, &cfg(dir_loaded.path()), &batches, &tick);
    let (results_linked, tick_linked) = drive(linked, &cfg(dir_linked.path()), &batches, &tick);
    assert_eq!(results_loaded, results_linked);
    assert_eq!(tick_loaded, tick_linked);
    assert_eq!(results_loaded[0].accepted.len(), 3);
    assert!(results_loaded[0].next_wakeup.is_some());

    let files_loaded = tree(dir_loaded.path());
    let files_linked = tree(dir_linked.path());
    assert!(
        files_loaded.len() >= 12,
        "{:?}",
        files_loaded.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        files_loaded.keys().collect::<Vec<_>>(),
        files_linked.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (path, bytes) in &files_loaded {
        // `out_dir` itself differs between the two runs and is not written into any file.
        assert!(bytes == &files_linked[path], "{} differs", path.display());
    }
}

/// Drives one sink instance of `registry` through the host's `SinkHandle`: batches, tick, flush.
async fn drive_handle(
    registry: &calpump_engine::plugin_host::PluginRegistry,
    out_dir: &Path,
) -> (Vec<SinkResult>, TickResult) {
    let config = config(out_dir, serde_json::json!({"language": "de"}));
    let warnings = registry.check("doorsign", &config).expect("check");
    assert!(warnings.is_empty(), "{warnings:?}");
    let sink = registry
        .create_sink(
            "signs",
            "doorsign",
            config,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("create");
    let mut results = Vec::new();
    for batch in &batches() {
        results.push(sink.write_batch(batch).await.expect("write_batch"));
    }
    let tick = sink.tick(&tick()).await.expect("tick");
    sink.flush().await.expect("flush");
    (results, tick)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_by_the_plugin_host_from_a_directory_it_replaces_the_builtin_and_writes_the_same() {
    use calpump_engine::plugin_host::{PluginOrigin, PluginRegistry};

    let plugin = tokio::task::spawn_blocking(build_plugin)
        .await
        .expect("join");
    let plugins = tempfile::tempdir().expect("tmp");
    let file = plugins.path().join(plugin.file_name().expect("file name"));
    std::fs::copy(&plugin, &file).expect("copy the plugin");
    let file = file.canonicalize().expect("canonical");

    // As calpump builds its registry: the built-in first, then the plugin directories.
    let mut with_file = PluginRegistry::new();
    with_file
        .register_builtin(calpump_sink_doorsign::sink_table())
        .expect("built-in");
    let errors = with_file.load_dir(plugins.path());
    assert!(errors.is_empty(), "{errors:?}");
    assert!(with_file.refused().is_empty(), "{:?}", with_file.refused());
    let info = with_file.get("doorsign").expect("doorsign");
    assert_eq!(info.origin, PluginOrigin::File(file.clone()));
    assert_eq!(
        info.replaces_builtin.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        info.config_schema,
        serde_json::from_str::<serde_json::Value>(calpump_sink_doorsign::CONFIG_SCHEMA)
            .expect("schema JSON")
    );

    let mut builtin_only = PluginRegistry::new();
    builtin_only
        .register_builtin(calpump_sink_doorsign::sink_table())
        .expect("built-in");
    assert_eq!(
        builtin_only.get("doorsign").expect("doorsign").origin,
        PluginOrigin::Builtin
    );

    let dir_loaded = tempfile::tempdir().expect("tmp");
    let dir_linked = tempfile::tempdir().expect("tmp");
    let (results_loaded, tick_loaded) = drive_handle(&with_file, dir_loaded.path()).await;
    let (results_linked, tick_linked) = drive_handle(&builtin_only, dir_linked.path()).await;
    assert_eq!(results_loaded, results_linked);
    assert_eq!(tick_loaded, tick_linked);
    assert_eq!(results_loaded[0].accepted.len(), 3);

    let files_loaded = tree(dir_loaded.path());
    let files_linked = tree(dir_linked.path());
    assert!(files_loaded.len() >= 12, "{:?}", files_loaded.keys());
    assert_eq!(
        files_loaded.keys().collect::<Vec<_>>(),
        files_linked.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (path, bytes) in &files_loaded {
        assert!(bytes == &files_linked[path], "{} differs", path.display());
    }

    // A second file of the same name in another directory is refused, naming both files; the
    // first stays in use.
    let more = tempfile::tempdir().expect("tmp");
    let second = more.path().join(plugin.file_name().expect("file name"));
    std::fs::copy(&plugin, &second).expect("copy the plugin");
    let errors = with_file.load_dir(more.path());
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.contains(&file.display().to_string())
            && text.contains(
                &second
                    .canonicalize()
                    .expect("canonical")
                    .display()
                    .to_string()
            ),
        "{text}"
    );
    assert_eq!(
        with_file.get("doorsign").expect("doorsign").origin,
        PluginOrigin::File(file)
    );
}
