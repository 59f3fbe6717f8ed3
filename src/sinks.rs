//! The sinks linked into this binary. They register through the very same ABI table a loaded
//! plugin exports, so `cargo run` needs no extra build step.

use calpump_plugin::abi::SinkPluginV1;

/// Every built-in sink's table.
pub fn builtin_tables() -> Vec<&'static SinkPluginV1> {
    vec![
        calpump_sink_doorsign::sink_table(),
        calpump_sink_database::sink_table(),
    ]
}

/// Whether the built-in door-sign sink accepts `name` as its `time_zone` (an IANA name it
/// knows), so a starter configuration that writes it passes `calpump check`.
pub fn doorsign_accepts_time_zone(name: &str) -> bool {
    let probe = serde_json::json!({ "out_dir": "doorsigns", "time_zone": name });
    calpump_sink_doorsign::config::parse(&probe).is_ok()
}
