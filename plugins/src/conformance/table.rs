//! [`TableSink`]: a sink instance driven through its C ABI table exactly as the host drives a
//! loaded plugin (JSON in, JSON out, buffers handed back to the plugin's `free_buf`).

use std::ffi::c_void;

use crate::abi::{OwnedBuf, SinkPluginV1, Status, StrRef};
use crate::model::{Batch, SinkResult};
use crate::sdk::{SinkError, SinkErrorKind};

use super::SinkHandle;

/// One instance created through a plugin table; destroyed on drop.
pub struct TableSink {
    table: &'static SinkPluginV1,
    instance: *mut c_void,
}

// SAFETY: the ABI requires instances to be usable from several threads at once (the host calls
// `write_batch` concurrently for different mailboxes).
unsafe impl Send for TableSink {}
// SAFETY: as above.
unsafe impl Sync for TableSink {}

fn error_of(status: Status, text: String) -> SinkError {
    SinkError {
        kind: match status {
            Status::RETRYABLE => SinkErrorKind::Retryable,
            Status::CONFIG_ERROR => SinkErrorKind::Config,
            _ => SinkErrorKind::Fatal,
        },
        message: text,
    }
}

/// Takes a buffer the plugin filled and returns it to the plugin's allocator.
fn take(table: &SinkPluginV1, buf: OwnedBuf) -> String {
    // SAFETY: the buffer was filled by this table's plugin during the call just made.
    let text = String::from_utf8_lossy(unsafe { buf.as_bytes() }).into_owned();
    // SAFETY: handed back exactly once to the allocator that made it.
    unsafe { (table.free_buf)(buf) };
    text
}

impl TableSink {
    /// Validates a configuration through the table's `check`; returns its warnings.
    pub fn check(
        table: &'static SinkPluginV1,
        config: &serde_json::Value,
    ) -> Result<Vec<String>, SinkError> {
        let json = config.to_string();
        let mut out = OwnedBuf::empty();
        // SAFETY: a valid table; borrowed input and a writable out-buffer for the call.
        let status = unsafe { (table.check)(StrRef::new(&json), &mut out) };
        let text = take(table, out);
        if status != Status::OK {
            return Err(error_of(status, text));
        }
        let report: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SinkError::fatal(format!("check returned unreadable JSON: {e}")))?;
        Ok(report["warnings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Creates an instance through the table's `create` (no host callbacks).
    ///
    /// `table` must be a v1 table whose library stays loaded for the rest of the process
    /// (calpump never unloads plugins; a test keeps its `libloading::Library` alive or leaks it).
    pub fn create(
        table: &'static SinkPluginV1,
        config: &serde_json::Value,
    ) -> Result<Self, SinkError> {
        let json = config.to_string();
        let mut instance = std::ptr::null_mut();
        let mut out = OwnedBuf::empty();
        // SAFETY: a valid table; borrowed input and writable out-pointers for the call.
        let status = unsafe {
            (table.create)(
                StrRef::new(&json),
                std::ptr::null(),
                &mut instance,
                &mut out,
            )
        };
        let text = take(table, out);
        if status != Status::OK {
            return Err(error_of(status, text));
        }
        if instance.is_null() {
            return Err(SinkError::fatal("create returned OK without an instance"));
        }
        Ok(Self { table, instance })
    }

    /// The table this instance was made by.
    pub fn table(&self) -> &'static SinkPluginV1 {
        self.table
    }
}

impl SinkHandle for TableSink {
    fn write_batch(&self, batch: &Batch) -> Result<SinkResult, SinkError> {
        let json = serde_json::to_string(batch)
            .map_err(|e| SinkError::fatal(format!("cannot encode the batch: {e}")))?;
        let mut out = OwnedBuf::empty();
        // SAFETY: the instance came from this table's `create` and is not destroyed.
        let status =
            unsafe { (self.table.write_batch)(self.instance, StrRef::new(&json), &mut out) };
        let text = take(self.table, out);
        if status != Status::OK {
            return Err(error_of(status, text));
        }
        serde_json::from_str(&text)
            .map_err(|e| SinkError::fatal(format!("write_batch returned unreadable JSON: {e}")))
    }

    fn flush(&self) -> Result<(), SinkError> {
        let mut out = OwnedBuf::empty();
        // SAFETY: as in `write_batch`.
        let status = unsafe { (self.table.flush)(self.instance, &mut out) };
        let text = take(self.table, out);
        if status != Status::OK {
            return Err(error_of(status, text));
        }
        Ok(())
    }
}

impl Drop for TableSink {
    fn drop(&mut self) {
        // SAFETY: the instance from `create`, destroyed exactly once.
        unsafe { (self.table.destroy)(self.instance) };
    }
}
