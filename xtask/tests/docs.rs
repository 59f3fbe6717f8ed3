//! The checked-in references are what the code generates (the same check as CI's
//! `cargo run -p xtask -- docs --check`, so `cargo test` catches a stale copy too), and every
//! metric the code emits is described in the engine's table.

use std::collections::BTreeSet;

use calpump_engine::diagnostics::catalogue;
use calpump_engine::metrics::{METRICS, descriptor};

#[test]
fn checked_in_references_match_the_code() {
    let root = xtask::workspace_root();
    let files = xtask::generate(&root).expect("generate");
    let problems = xtask::check(&root, &files);
    assert!(
        problems.is_empty(),
        "docs/reference is stale; run `cargo run -p xtask -- docs`:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_metric_the_code_emits_is_in_the_table() {
    let root = xtask::workspace_root();
    let emitted = xtask::metrics_ref::emitted(&root).expect("scan");
    let missing: Vec<String> = emitted
        .iter()
        .filter(|e| descriptor(&e.name).is_none())
        .map(|e| format!("{} (emitted in {})", e.name, e.file))
        .collect();
    assert!(
        missing.is_empty(),
        "add these to calpump_engine::metrics::METRICS:\n{}",
        missing.join("\n")
    );
    // The scan sees the metrics the runner, the plugin host, the daemon and both sinks emit.
    let names: BTreeSet<&str> = emitted.iter().map(|e| e.name.as_str()).collect();
    for expected in [
        "calpump_syncs_total",
        "calpump_sink_calls_total",
        "calpump_secret_expiry_days",
        "calpump_up",
        "calpump_plugin_doorsign_push_total",
        "calpump_plugin_database_upserted_total",
    ] {
        assert!(names.contains(expected), "{expected} not found by the scan");
    }
}

#[test]
fn the_references_name_every_code_metric_and_key() {
    let root = xtask::workspace_root();
    let files = xtask::generate(&root).expect("generate");
    let page = |name: &str| {
        files
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, text)| text.as_str())
            .expect(name)
    };
    for info in catalogue::all() {
        assert!(
            page("diagnostics.md").contains(info.en.remedy),
            "{}",
            info.code
        );
        assert!(
            page("diagnostics.de.md").contains(info.de.remedy),
            "{}",
            info.code
        );
    }
    for d in METRICS {
        assert!(
            page("metrics.md").contains(&format!("`{}`", d.name)),
            "{}",
            d.name
        );
    }
    let config = page("configuration.md");
    for key in [
        "`interval`",
        "`graph_url`",
        "`client_secret`",
        "`auth.kind`",
        "`reread_interval`",
        "`connect_timeout`",
        "`out_dir`",
        "`ssl_mode`",
    ] {
        assert!(config.contains(key), "configuration.md lacks {key}");
    }
    let abi = page("plugin-abi.md");
    for needle in [
        "`write_batch`",
        "`free_buf`",
        "### `Batch`",
        "### `TickResult`",
        "export_sink!(JsonLines)",
    ] {
        assert!(abi.contains(needle), "plugin-abi.md lacks {needle}");
    }
}
