//! A plugin built for a future ABI major version (99): the host must refuse it, naming the file
//! and both versions, before calling anything else in its table.

use calpump_plugin::abi::SinkPluginV1;
use calpump_plugin::{Batch, Sink, SinkError, SinkResult};

pub struct Future;

impl Sink for Future {
    const NAME: &'static str = "future";
    const VERSION: &'static str = "9.0.0";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;

    fn check(_config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn create(_config: serde_json::Value) -> Result<Self, SinkError> {
        Ok(Future)
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        Ok(SinkResult::all_accepted(&batch))
    }

    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

static TABLE: SinkPluginV1 = {
    let mut table = calpump_plugin::sdk::table_for::<Future>();
    table.abi_major = 99;
    table.abi_minor = 3;
    table
};

/// The entry symbol, returning a table that claims ABI 99.3.
#[unsafe(no_mangle)]
pub extern "C" fn calpump_sink_v1() -> *const SinkPluginV1 {
    &TABLE
}
