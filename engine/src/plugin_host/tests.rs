use super::*;
use calpump_plugin::{Batch, BatchKind, SCHEMA_VERSION, SinkResult, Window};
use calpump_plugin::{Sink, SinkError};
use chrono::{TimeZone, Utc};

struct Probe;

impl Sink for Probe {
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "0.1.0";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","required":["mode"]}"#;

    fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        match config.get("mode").and_then(|m| m.as_str()) {
            Some(_) => Ok(vec!["probe is for tests".into()]),
            None => Err(SinkError::config("`mode` is required")),
        }
    }

    fn create(config: serde_json::Value) -> Result<Self, SinkError> {
        if config.get("mode").and_then(|m| m.as_str()) == Some("refuse") {
            return Err(SinkError::config("cannot create in mode refuse"));
        }
        Ok(Probe)
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        match batch.route.as_str() {
            "panic" => panic!("probe exploded"),
            "slow" => {
                std::thread::sleep(Duration::from_millis(1500));
                Ok(SinkResult::all_accepted(&batch))
            }
            "busy" => Err(SinkError::retryable("busy, try later")),
            _ => Ok(SinkResult::all_accepted(&batch)),
        }
    }

    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

calpump_plugin::sink_table!(Probe);

fn batch(route: &str) -> Batch {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
        .single()
        .expect("time");
    Batch {
        schema_version: SCHEMA_VERSION,
        run_id: "r".into(),
        route: route.into(),
        mailbox: "room@contoso.com".into(),
        mailbox_name: None,
        calendar: "default".into(),
        kind: BatchKind::Delta,
        window: Window { start: t, end: t },
        upserts: vec![],
        deletes: vec![calpump_plugin::EventKey::from_stored("ev1-a")],
        complete: false,
    }
}

#[tokio::test]
async fn builtin_registers_checks_creates_and_maps_statuses() {
    let mut registry = PluginRegistry::new();
    registry.register_builtin(sink_table()).expect("register");
    let clash = registry.register_builtin(sink_table()).expect_err("clash");
    assert!(matches!(clash, PluginError::NameClash { .. }));
    assert!(clash.to_string().contains("`probe`"));

    let info = registry.get("probe").expect("info");
    assert_eq!(info.origin, PluginOrigin::Builtin);
    assert_eq!(info.config_schema["required"][0], "mode");

    let warnings = registry
        .check("probe", &serde_json::json!({"mode": "x"}))
        .expect("check");
    assert_eq!(warnings, vec!["probe is for tests".to_string()]);
    let err = registry
        .check("probe", &serde_json::json!({}))
        .expect_err("bad config");
    assert_eq!(err.kind, SinkCallErrorKind::Config);
    assert!(err.message.contains("`mode` is required"));
    let unknown = registry
        .check("nope", &serde_json::json!({}))
        .expect_err("unknown");
    assert!(unknown.message.contains("known: probe"));

    let refused = registry
        .create_sink(
            "s",
            "probe",
            serde_json::json!({"mode": "refuse"}),
            Duration::from_secs(5),
        )
        .await
        .expect_err("create refused");
    assert_eq!(refused.kind, SinkCallErrorKind::Config);

    let sink = registry
        .create_sink(
            "s",
            "probe",
            serde_json::json!({"mode": "x"}),
            Duration::from_millis(1000),
        )
        .await
        .expect("create");
    let result = sink.write_batch(&batch("ok")).await.expect("write");
    assert_eq!(result.accepted.len(), 1);
    sink.flush().await.expect("flush");

    let busy = sink.write_batch(&batch("busy")).await.expect_err("busy");
    assert!(busy.is_retryable());

    let panic = sink.write_batch(&batch("panic")).await.expect_err("panic");
    assert_eq!(panic.kind, SinkCallErrorKind::Fatal);
    assert!(
        panic.message.contains("plugin panicked: probe exploded"),
        "{panic}"
    );

    // The instance still works after a panic.
    sink.write_batch(&batch("ok")).await.expect("still alive");

    let slow_started = std::time::Instant::now();
    let slow = sink.write_batch(&batch("slow")).await.expect_err("timeout");
    assert_eq!(slow.kind, SinkCallErrorKind::Timeout);
    // The call still runs on its thread: the instance is stuck and refuses every call, naming
    // the sink and the stuck call, instead of starting another thread.
    let stuck = sink.stuck().expect("stuck after a timeout");
    assert_eq!((stuck.call, stuck.calls), ("write_batch", 1));
    for _ in 0..3 {
        let refused = sink.flush().await.expect_err("refused while stuck");
        assert_eq!(refused.kind, SinkCallErrorKind::Stuck);
        let text = refused.to_string();
        assert!(
            text.contains("sink `s` flush") && text.contains("`write_batch`"),
            "{text}"
        );
    }
    assert!(
        slow_started.elapsed() < Duration::from_millis(1400),
        "refusals do not wait"
    );
    // Once the stuck call returns, calls are taken again.
    while sink.stuck().is_some() {
        assert!(
            slow_started.elapsed() < Duration::from_secs(5),
            "the stuck call returned after 1.5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.write_batch(&batch("ok")).await.expect("calls resume");
}

#[test]
fn a_missing_directory_and_a_non_plugin_file_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut registry = PluginRegistry::new();
    let errors = registry.load_dir(&dir.path().join("missing"));
    assert!(matches!(errors[0], PluginError::Directory { .. }));

    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not an ELF file").expect("write");
    let errors = registry.load_dir(dir.path());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().contains("libfake.so"),
        "{}",
        errors[0]
    );
    assert_eq!(registry.refused().len(), 1);
    assert_eq!(registry.refused()[0].diagnostic.code(), "plugin.Refused");
    // Looking at the same file twice does not record it twice.
    registry.load_dir(dir.path());
    assert_eq!(registry.refused().len(), 1);
}

/// A newer build of the `probe` sink, as it would come in a plugin file.
mod newer {
    use calpump_plugin::{Batch, Sink, SinkError, SinkResult};

    pub struct NewerProbe;

    impl Sink for NewerProbe {
        const NAME: &'static str = "probe";
        const VERSION: &'static str = "0.2.0";
        const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;

        fn check(_config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
            Ok(vec!["the newer probe".into()])
        }

        fn create(_config: serde_json::Value) -> Result<Self, SinkError> {
            Ok(NewerProbe)
        }

        fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
            Ok(SinkResult::all_accepted(&batch))
        }

        fn flush(&self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    calpump_plugin::sink_table!(NewerProbe);
}

/// Registers `table` as if loaded from `file` (after its ABI check passed).
fn register_file(
    registry: &mut PluginRegistry,
    table: &'static SinkPluginV1,
    file: &str,
) -> Result<(), PluginError> {
    // SAFETY: a `sink_table!` table is a complete static v1 table.
    unsafe { registry.register(table, PluginOrigin::File(PathBuf::from(file)), file) }
}

fn used_check(registry: &PluginRegistry) -> Vec<String> {
    registry
        .check("probe", &serde_json::json!({"mode": "x"}))
        .expect("check")
}

#[test]
fn a_plugin_file_replaces_the_builtin_of_its_name_but_two_files_clash() {
    let mut registry = PluginRegistry::new();
    registry.register_builtin(sink_table()).expect("built-in");
    assert_eq!(
        used_check(&registry),
        vec!["probe is for tests".to_string()]
    );

    register_file(&mut registry, newer::sink_table(), "/opt/a/libprobe.so")
        .expect("a file replaces the built-in");
    let info = registry.get("probe").expect("probe");
    assert_eq!(info.origin, PluginOrigin::File("/opt/a/libprobe.so".into()));
    assert_eq!(info.version, "0.2.0");
    assert_eq!(info.replaces_builtin.as_deref(), Some("0.1.0"));
    assert_eq!(registry.plugins().count(), 1);
    // Every call now goes to the file's table.
    assert_eq!(used_check(&registry), vec!["the newer probe".to_string()]);

    let clash = register_file(&mut registry, sink_table(), "/opt/b/libprobe.so")
        .expect_err("two files with one name");
    assert!(matches!(clash, PluginError::NameClash { .. }));
    let text = clash.to_string();
    assert!(
        text.contains("`probe`")
            && text.contains("/opt/a/libprobe.so")
            && text.contains("/opt/b/libprobe.so"),
        "{text}"
    );
    // The first file stays in use.
    let info = registry.get("probe").expect("probe");
    assert_eq!(info.origin, PluginOrigin::File("/opt/a/libprobe.so".into()));
    assert_eq!(used_check(&registry), vec!["the newer probe".to_string()]);
}

#[test]
fn a_builtin_registered_after_a_file_of_its_name_leaves_the_file_in_place() {
    let mut registry = PluginRegistry::new();
    register_file(&mut registry, newer::sink_table(), "/opt/a/libprobe.so").expect("file");
    registry
        .register_builtin(sink_table())
        .expect("the built-in is known but not used");
    let info = registry.get("probe").expect("probe");
    assert_eq!(info.origin, PluginOrigin::File("/opt/a/libprobe.so".into()));
    assert_eq!(info.replaces_builtin.as_deref(), Some("0.1.0"));
    assert_eq!(used_check(&registry), vec!["the newer probe".to_string()]);

    // Two built-ins with one name are still an error, even when a file took their place.
    let clash = registry
        .register_builtin(sink_table())
        .expect_err("two built-ins");
    assert!(
        matches!(&clash, PluginError::NameClash { first, .. } if first == "the built-in one"),
        "{clash}"
    );
}
