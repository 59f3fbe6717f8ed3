//! The SDK for sink authors: implement the safe [`Sink`] trait, then
//!
//! * `calpump_plugin::export_sink!(MySink);` in a `cdylib` crate to make a loadable plugin, or
//! * `calpump_plugin::sink_table!(MySink);` in a library that the host links in (it defines
//!   `pub fn sink_table() -> &'static SinkPluginV1` and no exported symbol), plus
//!   `calpump_plugin::export_entry!(my_crate::sink_table);` in a thin `cdylib` crate beside it.
//!
//! Both paths go through the very same table and shims. The shims wrap every call in
//! `catch_unwind` (a panic becomes a [`Status::FATAL`] with the panic message), translate JSON in
//! and out, and keep buffers on the allocator that made them. In a loaded plugin, the entry
//! symbol installs a `tracing` subscriber that forwards the plugin's log lines to the host, so
//! `tracing::info!` inside a plugin lands in the host's log; [`metric`] does the same for metrics.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use crate::abi::{self, HostApiV1, OwnedBuf, SinkPluginV1, Status, StrRef};
use crate::model::{Batch, SinkResult, Tick, TickResult};

/// How a sink call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// Passing: the engine retries later (with back-off) and the cursor does not move.
    Retryable,
    /// The sink cannot go on; the route stops and the error is reported.
    Fatal,
    /// The sink's configuration is wrong.
    Config,
}

/// An error from a sink, with a text an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub kind: SinkErrorKind,
    pub message: String,
}

impl SinkError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Retryable,
            message: message.into(),
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Fatal,
            message: message.into(),
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Config,
            message: message.into(),
        }
    }

    fn status(&self) -> Status {
        match self.kind {
            SinkErrorKind::Retryable => Status::RETRYABLE,
            SinkErrorKind::Fatal => Status::FATAL,
            SinkErrorKind::Config => Status::CONFIG_ERROR,
        }
    }
}

/// A sink, written in safe Rust. Instances are shared between threads: the host may call
/// `write_batch` for different mailboxes at the same time, so use interior mutability.
pub trait Sink: Send + Sync + Sized + 'static {
    /// The name the config's `plugin = "…"` refers to.
    const NAME: &'static str;
    const VERSION: &'static str;
    /// JSON Schema of the configuration table (shown by `calpump plugins`).
    const CONFIG_SCHEMA: &'static str;

    /// Validates a configuration without side effects (no connections, no files). Returns
    /// warnings; an `Err` names what is wrong.
    fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError>;

    /// Builds an instance (may connect, create directories, run migrations). A sink that needs
    /// async makes its own runtime here: the host's runtime does not cross the boundary.
    fn create(config: serde_json::Value) -> Result<Self, SinkError>;

    /// Applies one batch. Items that fail alone go into the result's `rejected` or `retryable`;
    /// an `Err` fails the whole batch.
    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError>;

    /// Makes everything written so far durable. The engine advances a cursor only after every
    /// sink of the route flushed.
    fn flush(&self) -> Result<(), SinkError>;

    /// Periodic call with the time and the sources' health; returns when to be called next.
    fn tick(&self, tick: Tick) -> Result<TickResult, SinkError> {
        let _ = tick;
        Ok(TickResult::default())
    }
}

/// Builds the table for `S`. Used by [`sink_table!`]; `const` so the table can be a `static`.
pub const fn table_for<S: Sink>() -> SinkPluginV1 {
    SinkPluginV1 {
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        struct_size: std::mem::size_of::<SinkPluginV1>(),
        name: StrRef::from_static(S::NAME),
        version: StrRef::from_static(S::VERSION),
        config_schema: StrRef::from_static(S::CONFIG_SCHEMA),
        create: shim_create::<S>,
        check: shim_check::<S>,
        write_batch: shim_write_batch::<S>,
        flush: shim_flush::<S>,
        tick: shim_tick::<S>,
        destroy: shim_destroy::<S>,
        free_buf: shim_free_buf,
    }
}

/// Defines `pub fn sink_table() -> &'static SinkPluginV1` for a [`Sink`] type, exporting no
/// symbol (for sinks the host links in).
#[macro_export]
macro_rules! sink_table {
    ($sink:ty) => {
        /// The plugin table of this sink (ABI v1).
        pub fn sink_table() -> &'static $crate::abi::SinkPluginV1 {
            static TABLE: $crate::abi::SinkPluginV1 = $crate::sdk::table_for::<$sink>();
            &TABLE
        }
    };
}

/// Exports the entry symbol `calpump_sink_v1` returning the table of `$table_fn()`.
/// Use once per `cdylib`.
#[macro_export]
macro_rules! export_entry {
    ($table_fn:path) => {
        /// The entry symbol the calpump host looks up (ABI v1).
        #[unsafe(no_mangle)]
        pub extern "C" fn calpump_sink_v1() -> *const $crate::abi::SinkPluginV1 {
            $crate::sdk::install_host_logging();
            $table_fn() as *const $crate::abi::SinkPluginV1
        }
    };
}

/// Both at once, for a plugin that is only ever loaded as a `cdylib`.
#[macro_export]
macro_rules! export_sink {
    ($sink:ty) => {
        $crate::sink_table!($sink);
        $crate::export_entry!(sink_table);
    };
}

/// The host callbacks of the first instance created in this binary: the fallback for log lines
/// of a loaded plugin (its `tracing` subscriber is process-wide) and for metrics reported from a
/// thread that never had a [`HostHandle`].
static HOST: OnceLock<HostApiV1> = OnceLock::new();

thread_local! {
    /// The host of the instance this thread is running a call for (set by the shims), so linked-in
    /// sinks — which share one binary and thus one `HOST` — report metrics under their own name.
    static CURRENT: std::cell::Cell<Option<HostApiV1>> = const { std::cell::Cell::new(None) };
}

fn read_host(host: *const HostApiV1) -> Option<HostApiV1> {
    if host.is_null() {
        return None;
    }
    // SAFETY: the host passes a valid pointer to a table that lives for the whole process; we
    // copy it only when its `struct_size` says it has every field we know.
    unsafe {
        let size = (*host).struct_size;
        if size < std::mem::size_of::<HostApiV1>() {
            return None;
        }
        Some(*host)
    }
}

/// The host callbacks of one sink instance. Cheap to copy; usable from any thread. Take it with
/// [`HostHandle::current`] during `create` (or any call) and use it — or [`HostHandle::enter`] —
/// on threads the sink starts itself, so their metrics carry the right plugin.
#[derive(Debug, Clone, Copy)]
pub struct HostHandle(HostApiV1);

impl HostHandle {
    /// The host of the call this thread is running, if any (else the first host of the binary).
    pub fn current() -> Option<Self> {
        CURRENT
            .with(|c| c.get())
            .or_else(|| HOST.get().copied())
            .map(HostHandle)
    }

    /// Runs `f` with this host as the thread's current one.
    pub fn enter<R>(self, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|c| c.replace(Some(self.0)));
        let result = f();
        CURRENT.with(|c| c.set(previous));
        result
    }

    /// Reports a metric through this host.
    pub fn metric(&self, kind: u32, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some(callback) = self.0.metric else {
            return;
        };
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
            .collect();
        let labels = serde_json::Value::Object(labels).to_string();
        // SAFETY: the host's callback takes borrowed strings valid for the call.
        unsafe {
            callback(
                self.0.ctx,
                kind,
                StrRef::new(name),
                StrRef::new(&labels),
                value,
            )
        };
    }
}

/// Reports a metric to the host of the current call (a no-op outside any call and before
/// `create`, or when the host takes no metrics). `labels` are `(name, value)` pairs.
pub fn metric(kind: u32, name: &str, labels: &[(&str, &str)], value: f64) {
    if let Some(host) = HostHandle::current() {
        host.metric(kind, name, labels, value);
    }
}

/// Adds to a counter in the host's metrics.
pub fn counter(name: &str, labels: &[(&str, &str)], value: f64) {
    metric(abi::metric_kind::COUNTER, name, labels, value);
}

/// Sets a gauge in the host's metrics.
pub fn gauge(name: &str, labels: &[(&str, &str)], value: f64) {
    metric(abi::metric_kind::GAUGE, name, labels, value);
}

/// Installs (once) the `tracing` subscriber that forwards this plugin's log lines to the host.
/// Called by the entry symbol of a loaded plugin; linked-in sinks log through the host's own
/// subscriber and never call this.
pub fn install_host_logging() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(forward::HostForwarder);
    });
}

mod forward {
    //! A minimal `tracing` subscriber: events become one host `log` call each; spans are not
    //! tracked (plugins get their context from the batch).
    use std::fmt::Write as _;

    use tracing::field::{Field, Visit};
    use tracing::span;
    use tracing::{Event, Level, Metadata, Subscriber};

    use super::HOST;
    use crate::abi::{StrRef, log_level};

    pub struct HostForwarder;

    fn level_number(level: &Level) -> u32 {
        match *level {
            Level::ERROR => log_level::ERROR,
            Level::WARN => log_level::WARN,
            Level::INFO => log_level::INFO,
            Level::DEBUG => log_level::DEBUG,
            Level::TRACE => log_level::TRACE,
        }
    }

    #[derive(Default)]
    struct Collect {
        message: String,
        fields: serde_json::Map<String, serde_json::Value>,
    }

    impl Visit for Collect {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.message.push_str(value);
            } else {
                self.fields.insert(field.name().into(), value.into());
            }
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.fields.insert(field.name().into(), value.into());
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.fields.insert(field.name().into(), value.into());
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.fields.insert(field.name().into(), value.into());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.message, "{value:?}");
            } else {
                self.fields
                    .insert(field.name().into(), format!("{value:?}").into());
            }
        }
    }

    impl Subscriber for HostForwarder {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            match HOST.get() {
                Some(host) => {
                    host.log.is_some() && level_number(metadata.level()) <= host.max_level
                }
                None => false,
            }
        }
        fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}
        fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            let Some(host) = HOST.get() else { return };
            let Some(log) = host.log else { return };
            let mut collect = Collect::default();
            event.record(&mut collect);
            let fields = serde_json::Value::Object(collect.fields).to_string();
            let metadata = event.metadata();
            // SAFETY: borrowed strings valid for the duration of the call.
            unsafe {
                log(
                    host.ctx,
                    level_number(metadata.level()),
                    StrRef::new(metadata.target()),
                    StrRef::new(&collect.message),
                    StrRef::new(&fields),
                )
            };
        }
        fn enter(&self, _span: &span::Id) {}
        fn exit(&self, _span: &span::Id) {}
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs `f`, turning a panic into a fatal status, and writes its text into `out`.
fn guarded(out: *mut OwnedBuf, f: impl FnOnce() -> Result<Vec<u8>, SinkError>) -> Status {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(bytes)) => (Status::OK, bytes),
        Ok(Err(err)) => (err.status(), err.message.into_bytes()),
        Err(payload) => (
            Status::FATAL,
            format!("plugin panicked: {}", panic_text(payload.as_ref())).into_bytes(),
        ),
    };
    if !out.is_null() {
        // SAFETY: the host passes a valid, writable out-pointer.
        unsafe { out.write(OwnedBuf::from_vec(bytes)) };
    }
    status
}

fn parse<T: serde::de::DeserializeOwned>(input: StrRef, what: &str) -> Result<T, SinkError> {
    // SAFETY: the host passes a string valid for the call.
    let bytes = unsafe { input.as_bytes() };
    serde_json::from_slice(bytes)
        .map_err(|e| SinkError::fatal(format!("the host sent an unreadable {what}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(value).map_err(|e| SinkError::fatal(format!("cannot encode result: {e}")))
}

unsafe extern "C" fn shim_create<S: Sink>(
    config: StrRef,
    host: *const HostApiV1,
    out_instance: *mut *mut c_void,
    out_error: *mut OwnedBuf,
) -> Status {
    guarded(out_error, || {
        let host = read_host(host);
        if let Some(api) = host {
            let _ = HOST.set(api);
        }
        let config: serde_json::Value =
            parse(config, "configuration").map_err(|e| SinkError::config(e.message))?;
        let create = || S::create(config);
        let sink = match host {
            Some(api) => HostHandle(api).enter(create)?,
            None => create()?,
        };
        let instance = Box::into_raw(Box::new(Instance { sink, host })) as *mut c_void;
        if !out_instance.is_null() {
            // SAFETY: valid out-pointer from the host.
            unsafe { out_instance.write(instance) };
        }
        Ok(Vec::new())
    })
}

unsafe extern "C" fn shim_check<S: Sink>(config: StrRef, out_report: *mut OwnedBuf) -> Status {
    guarded(out_report, || {
        let config: serde_json::Value =
            parse(config, "configuration").map_err(|e| SinkError::config(e.message))?;
        let warnings = S::check(&config)?;
        to_json(&serde_json::json!({ "warnings": warnings }))
    })
}

/// What `create` hands the host as the opaque instance: the sink and the host it was made for.
struct Instance<S> {
    sink: S,
    host: Option<HostApiV1>,
}

impl<S> Instance<S> {
    /// Runs `f` on the sink with this instance's host as the thread's current one.
    fn call<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        match self.host {
            Some(api) => HostHandle(api).enter(|| f(&self.sink)),
            None => f(&self.sink),
        }
    }
}

/// # Safety
/// `instance` must come from `shim_create::<S>` and not be destroyed.
unsafe fn instance<'a, S: Sink>(instance: *mut c_void) -> Result<&'a Instance<S>, SinkError> {
    if instance.is_null() {
        return Err(SinkError::fatal(
            "the host called a sink without an instance",
        ));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { &*(instance as *const Instance<S>) })
}

unsafe extern "C" fn shim_write_batch<S: Sink>(
    inst: *mut c_void,
    batch: StrRef,
    out_result: *mut OwnedBuf,
) -> Status {
    guarded(out_result, || {
        // SAFETY: the host passes the instance `create` returned.
        let sink = unsafe { instance::<S>(inst)? };
        let batch: Batch = parse(batch, "batch")?;
        let result = sink.call(|s| s.write_batch(batch))?;
        to_json(&result)
    })
}

unsafe extern "C" fn shim_flush<S: Sink>(inst: *mut c_void, out_error: *mut OwnedBuf) -> Status {
    guarded(out_error, || {
        // SAFETY: the host passes the instance `create` returned.
        let sink = unsafe { instance::<S>(inst)? };
        sink.call(|s| s.flush())?;
        Ok(Vec::new())
    })
}

unsafe extern "C" fn shim_tick<S: Sink>(
    inst: *mut c_void,
    tick: StrRef,
    out_result: *mut OwnedBuf,
) -> Status {
    guarded(out_result, || {
        // SAFETY: the host passes the instance `create` returned.
        let sink = unsafe { instance::<S>(inst)? };
        let tick: Tick = parse(tick, "tick")?;
        let result: TickResult = sink.call(|s| s.tick(tick))?;
        to_json(&result)
    })
}

unsafe extern "C" fn shim_destroy<S: Sink>(inst: *mut c_void) {
    if inst.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes the instance `create` returned, exactly once.
        drop(unsafe { Box::from_raw(inst as *mut Instance<S>) });
    }));
}

unsafe extern "C" fn shim_free_buf(buf: OwnedBuf) {
    // SAFETY: the buffer was made by `OwnedBuf::from_vec` in this binary.
    drop(unsafe { buf.into_vec() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BatchKind, SCHEMA_VERSION, Window};
    use chrono::{TimeZone, Utc};

    struct Echo;
    impl Sink for Echo {
        const NAME: &'static str = "echo";
        const VERSION: &'static str = "1.0.0";
        const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;
        fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
            if config.get("bad").is_some() {
                return Err(SinkError::config("`bad` is not allowed"));
            }
            Ok(vec![])
        }
        fn create(_config: serde_json::Value) -> Result<Self, SinkError> {
            Ok(Echo)
        }
        fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
            if batch.route == "panic" {
                panic!("boom in {}", batch.route);
            }
            Ok(SinkResult::all_accepted(&batch))
        }
        fn flush(&self) -> Result<(), SinkError> {
            Err(SinkError::retryable("disk busy"))
        }
    }

    crate::sink_table!(Echo);

    fn take(table: &SinkPluginV1, buf: OwnedBuf) -> String {
        // SAFETY: the buffer came from this table.
        let text = String::from_utf8_lossy(unsafe { buf.as_bytes() }).into_owned();
        // SAFETY: returned to the allocator that made it, once.
        unsafe { (table.free_buf)(buf) };
        text
    }

    fn batch(route: &str) -> String {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
            .single()
            .expect("time");
        serde_json::to_string(&Batch {
            schema_version: SCHEMA_VERSION,
            run_id: "r1".into(),
            route: route.into(),
            mailbox: "room@contoso.com".into(),
            mailbox_name: None,
            calendar: "default".into(),
            kind: BatchKind::Delta,
            window: Window { start: t, end: t },
            upserts: vec![],
            deletes: vec![crate::model::EventKey::from_stored("ev1-x")],
            complete: false,
        })
        .expect("json")
    }

    #[test]
    fn table_round_trip_contains_panics_and_reports_statuses() {
        let table = sink_table();
        assert_eq!(table.abi_major, abi::ABI_MAJOR);
        assert_eq!(table.struct_size, abi::SINK_PLUGIN_V1_0_SIZE);

        let mut out = OwnedBuf::empty();
        // SAFETY: valid arguments for the duration of the call.
        let status = unsafe { (table.check)(StrRef::new(r#"{"bad":1}"#), &mut out) };
        assert_eq!(status, Status::CONFIG_ERROR);
        assert!(take(table, out).contains("`bad`"));

        let mut instance = std::ptr::null_mut();
        let mut out = OwnedBuf::empty();
        // SAFETY: as above.
        let status =
            unsafe { (table.create)(StrRef::new("{}"), std::ptr::null(), &mut instance, &mut out) };
        assert_eq!(status, Status::OK);
        take(table, out);

        let good = batch("rooms");
        let mut out = OwnedBuf::empty();
        // SAFETY: as above.
        let status = unsafe { (table.write_batch)(instance, StrRef::new(&good), &mut out) };
        assert_eq!(status, Status::OK);
        let result: SinkResult = serde_json::from_str(&take(table, out)).expect("result");
        assert_eq!(result.accepted.len(), 1);

        let bad = batch("panic");
        let mut out = OwnedBuf::empty();
        // SAFETY: as above.
        let status = unsafe { (table.write_batch)(instance, StrRef::new(&bad), &mut out) };
        assert_eq!(status, Status::FATAL);
        assert!(take(table, out).contains("plugin panicked: boom in panic"));

        let mut out = OwnedBuf::empty();
        // SAFETY: as above.
        let status = unsafe { (table.write_batch)(instance, StrRef::new("{not json"), &mut out) };
        assert_eq!(status, Status::FATAL);
        assert!(take(table, out).contains("unreadable batch"));

        let mut out = OwnedBuf::empty();
        // SAFETY: as above.
        let status = unsafe { (table.flush)(instance, &mut out) };
        assert_eq!(status, Status::RETRYABLE);
        assert_eq!(take(table, out), "disk busy");

        // SAFETY: the instance from create, destroyed once.
        unsafe { (table.destroy)(instance) };
    }
}
