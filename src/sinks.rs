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
