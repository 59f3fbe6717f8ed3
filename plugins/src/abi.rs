//! The sink plugin C ABI, version 1.
//!
//! A sink plugin is a shared library (`.so`, `.dylib`, `.dll`) exporting one symbol,
//! [`SINK_ENTRY_SYMBOL`] (`calpump_sink_v1`): an `extern "C" fn() -> *const SinkPluginV1` that
//! returns a pointer to a table living as long as the library (libraries are never unloaded).
//!
//! # Rules of the table
//!
//! * The first three fields — `abi_major`, `abi_minor`, `struct_size` — keep their place in every
//!   version. The host reads them before anything else and refuses a different `abi_major` or a
//!   `struct_size` smaller than the fields it needs.
//! * New fields are only ever appended (and bump `abi_minor`); the host uses an appended field
//!   only when `struct_size` shows the plugin has it.
//! * Strings into the plugin are borrowed [`StrRef`]s, valid for the call only. Strings out of the
//!   plugin are [`OwnedBuf`]s allocated by the plugin and handed back to its own `free_buf`, so
//!   each side frees with the allocator that allocated.
//! * Payloads are UTF-8 JSON of the [`crate::model`] types (`schema_version`, unknown fields
//!   ignored). On [`Status::OK`] the out-buffer holds the call's JSON result (may be empty); on any
//!   other status it holds a human-readable error text.
//! * No call may unwind across the boundary; the SDK wraps every call in `catch_unwind`.
//! * The host calls `write_batch`, `flush` and `tick` from blocking threads, possibly several at
//!   once on one instance (different mailboxes): an instance must be thread-safe.

use std::ffi::c_void;

/// Incompatible changes bump this; the host refuses any other major version.
pub const ABI_MAJOR: u32 = 1;
/// Appended fields bump this.
pub const ABI_MINOR: u32 = 0;
/// The one entry symbol of a sink plugin, NUL-terminated for `dlsym`.
pub const SINK_ENTRY_SYMBOL: &[u8] = b"calpump_sink_v1\0";

/// The signature of [`SINK_ENTRY_SYMBOL`].
pub type SinkEntryFn = unsafe extern "C" fn() -> *const SinkPluginV1;

/// Outcome of every plugin call. A transparent `u32`, not a Rust enum, so an unknown value from
/// a newer plugin is not undefined behaviour.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    /// Success. The out-buffer holds the call's JSON result (`check`: the warnings,
    /// `write_batch`: a `SinkResult`, `tick`: a `TickResult`); calls without a result (`create`,
    /// `flush`) leave it empty.
    pub const OK: Status = Status(0);
    /// A passing failure (network, lock timeout): the host retries later.
    pub const RETRYABLE: Status = Status(1);
    /// The plugin cannot go on (the route stops and the error is reported).
    pub const FATAL: Status = Status(2);
    /// The configuration is wrong; retrying will not help until the admin changes it.
    pub const CONFIG_ERROR: Status = Status(3);
}

/// A borrowed UTF-8 string: valid only for the duration of the call that receives it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// First byte of the UTF-8 text; may be null when `len` is 0. Not NUL-terminated.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows a static string (the table's `name`, `version`, `config_schema`).
    pub const fn from_static(s: &'static str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Borrows `s` for one call; `s` must outlive the call.
    pub fn new(s: &str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The empty string (null pointer, length 0).
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null(),
            len: 0,
        }
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive the returned slice (or be null with
    /// `len == 0`).
    pub unsafe fn as_bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// Lossy UTF-8 view (invalid bytes become U+FFFD).
    ///
    /// # Safety
    /// As [`StrRef::as_bytes`].
    pub unsafe fn to_string_lossy(&self) -> String {
        // SAFETY: forwarded to the caller.
        String::from_utf8_lossy(unsafe { self.as_bytes() }).into_owned()
    }
}

/// A buffer allocated by the plugin and freed only by the same plugin's `free_buf`.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBuf {
    /// Start of the plugin's allocation; null for an empty buffer (nothing to free).
    pub ptr: *mut u8,
    /// Bytes of content (UTF-8 JSON or error text).
    pub len: usize,
    /// Size of the allocation in bytes, as the plugin's allocator needs it to free the buffer;
    /// the host never interprets it, it only hands the buffer back to `free_buf` unchanged.
    pub cap: usize,
}

impl OwnedBuf {
    /// A buffer holding nothing (null pointer): what a call leaves in an out-parameter it does
    /// not fill. Freeing it is a no-op.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Hands a `Vec`'s allocation over to the other side (to come back through `free_buf`).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Self {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Reclaims a buffer made by [`OwnedBuf::from_vec`] in *this* binary.
    ///
    /// # Safety
    /// `self` must come from `OwnedBuf::from_vec` of the same allocator and not be freed twice.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: guaranteed by the caller: ptr/len/cap came from a Vec<u8> of this allocator.
            unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
        }
    }

    /// Borrowed view of the bytes.
    ///
    /// # Safety
    /// The buffer must be valid (not yet freed).
    pub unsafe fn as_bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// Log levels of [`HostApiV1::log`], as in `tracing` (1 = error … 5 = trace).
pub mod log_level {
    /// A failure the admin must act on (a write or push that keeps failing); `tracing::Level::ERROR`.
    pub const ERROR: u32 = 1;
    /// A problem the plugin worked around (a retry, a skipped item); `tracing::Level::WARN`.
    pub const WARN: u32 = 2;
    /// Normal operation worth a line in the log (started, a batch written); `tracing::Level::INFO`.
    pub const INFO: u32 = 3;
    /// Detail for diagnosing a problem, recorded when the host logs at debug level (`RUST_LOG`).
    pub const DEBUG: u32 = 4;
    /// Very verbose detail (every item), recorded only when the host logs at trace level.
    pub const TRACE: u32 = 5;
}

/// Metric kinds of [`HostApiV1::metric`].
pub mod metric_kind {
    /// Add `value` to a counter.
    pub const COUNTER: u32 = 1;
    /// Set a gauge to `value`.
    pub const GAUGE: u32 = 2;
    /// Record one observation (seconds) into a histogram.
    pub const HISTOGRAM: u32 = 3;
}

/// Callbacks the host passes to `create`; they live as long as the process.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostApiV1 {
    /// `size_of::<HostApiV1>()` as the host was compiled. Fields are only appended; a plugin
    /// uses a field only when `struct_size` shows the host has it (the SDK ignores a table
    /// smaller than the one it knows and runs without callbacks).
    pub struct_size: usize,
    /// Opaque host context passed back to every callback.
    pub ctx: *mut c_void,
    /// The most verbose level the host records (a [`log_level`] value); plugins skip formatting
    /// anything above it.
    pub max_level: u32,
    /// `log(ctx, level, target, message, fields_json)`: one log line from the plugin.
    pub log: Option<unsafe extern "C" fn(*mut c_void, u32, StrRef, StrRef, StrRef)>,
    /// `metric(ctx, kind, name, labels_json, value)`: one metric update from the plugin.
    pub metric: Option<unsafe extern "C" fn(*mut c_void, u32, StrRef, StrRef, f64)>,
}

// SAFETY: the host guarantees `ctx` and the callbacks are usable from any thread for the whole
// life of the process.
unsafe impl Send for HostApiV1 {}
// SAFETY: as above.
unsafe impl Sync for HostApiV1 {}

/// `create(config_json, host, out_instance, out_error)`.
pub type CreateFn =
    unsafe extern "C" fn(StrRef, *const HostApiV1, *mut *mut c_void, *mut OwnedBuf) -> Status;
/// `check(config_json, out_report)`: validates a configuration without side effects; on OK the
/// report is JSON `{"warnings": [..]}`.
pub type CheckFn = unsafe extern "C" fn(StrRef, *mut OwnedBuf) -> Status;
/// `write_batch(instance, batch_json, out_result)`: on OK the result is a `SinkResult`.
pub type WriteBatchFn = unsafe extern "C" fn(*mut c_void, StrRef, *mut OwnedBuf) -> Status;
/// `flush(instance, out_error)`: make everything written so far durable.
pub type FlushFn = unsafe extern "C" fn(*mut c_void, *mut OwnedBuf) -> Status;
/// `tick(instance, tick_json, out_result)`: on OK the result is a `TickResult`.
pub type TickFn = unsafe extern "C" fn(*mut c_void, StrRef, *mut OwnedBuf) -> Status;
/// `destroy(instance)`.
pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
/// `free_buf(buf)`: frees a buffer this plugin allocated.
pub type FreeBufFn = unsafe extern "C" fn(OwnedBuf);

/// The sink plugin table, version 1.0. See the module documentation for the rules.
#[repr(C)]
#[derive(Debug)]
pub struct SinkPluginV1 {
    /// The ABI major version the plugin was built for: [`ABI_MAJOR`] of its `calpump-plugin`.
    /// The host refuses a table whose major version differs from its own.
    pub abi_major: u32,
    /// The ABI minor version the plugin was built for: [`ABI_MINOR`] of its `calpump-plugin`.
    /// Any minor version is accepted; it tells which appended fields the plugin may have
    /// (`struct_size` decides), and `calpump plugins` shows it.
    pub abi_minor: u32,
    /// `size_of::<SinkPluginV1>()` as the plugin was compiled.
    pub struct_size: usize,
    /// The plugin's name, used as `plugin = "…"` in the config.
    pub name: StrRef,
    /// The plugin's own version (e.g. its crate version, `"1.4.2"`), free-form text shown by
    /// `calpump plugins` and in the log when the plugin is loaded; the host does not compare it.
    pub version: StrRef,
    /// JSON Schema of the plugin's configuration table.
    pub config_schema: StrRef,
    pub create: CreateFn,
    pub check: CheckFn,
    pub write_batch: WriteBatchFn,
    pub flush: FlushFn,
    pub tick: TickFn,
    pub destroy: DestroyFn,
    pub free_buf: FreeBufFn,
}

// SAFETY: the table holds pointers to static strings and functions only.
unsafe impl Sync for SinkPluginV1 {}
// SAFETY: as above.
unsafe impl Send for SinkPluginV1 {}

/// The leading fields every table version shares; the host reads these first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TableHeader {
    /// As [`SinkPluginV1::abi_major`].
    pub abi_major: u32,
    /// As [`SinkPluginV1::abi_minor`].
    pub abi_minor: u32,
    /// As [`SinkPluginV1::struct_size`].
    pub struct_size: usize,
}

/// Size of the v1.0 table: the smallest `struct_size` a v1 host accepts.
pub const SINK_PLUGIN_V1_0_SIZE: usize = std::mem::size_of::<SinkPluginV1>();

#[cfg(test)]
mod tests {
    /// `docs/reference/plugin-abi.md` is generated from these doc comments: every public item,
    /// field and constant of this file says what it means (no blank cell in the reference).
    #[test]
    fn every_public_item_is_documented() {
        let source = include_str!("abi.rs");
        let body = source.split("#[cfg(test)]").next().unwrap_or(source);
        let lines: Vec<&str> = body.lines().collect();
        let mut undocumented = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with("pub ") {
                continue;
            }
            // The closest line above that is not an attribute must be a doc comment.
            let above = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#["));
            if above.is_some_and(|l| l.starts_with("///")) {
                continue;
            }
            // A function-pointer field is documented on its type alias (`pub type CreateFn`),
            // which the reference shows in the field's row.
            let alias_documented = trimmed
                .strip_suffix(',')
                .and_then(|f| f.split_once(": "))
                .is_some_and(|(_, ty)| {
                    lines.iter().enumerate().any(|(j, l)| {
                        l.starts_with(&format!("pub type {ty} "))
                            && j > 0
                            && lines[j - 1].trim_start().starts_with("///")
                    })
                });
            if !alias_documented {
                undocumented.push(format!("line {}: {}", i + 1, trimmed));
            }
        }
        assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
    }
}
