//! A sink plugin whose `write_batch` always panics: the host must contain it (the SDK turns the
//! panic into a fatal status) and go on.

use calpump_plugin::{Batch, Sink, SinkError, SinkResult};

pub struct Panicky;

impl Sink for Panicky {
    const NAME: &'static str = "panicky";
    const VERSION: &'static str = "0.0.1";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;

    fn check(_config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn create(_config: serde_json::Value) -> Result<Self, SinkError> {
        Ok(Panicky)
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        panic!("panicky sink explodes on a batch of {}", batch.mailbox);
    }

    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

calpump_plugin::export_sink!(Panicky);
