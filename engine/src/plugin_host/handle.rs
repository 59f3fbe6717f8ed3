//! [`SinkHandle`]: one instance of a sink plugin, called from blocking threads with a timeout.
//!
//! Every call runs on `spawn_blocking` (a plugin may block; tokio does not cross the boundary),
//! waits at most the configured timeout, always hands the plugin's out-buffer back to the
//! plugin's own `free_buf`, and maps the status to [`SinkCallErrorKind`]. The instance is
//! destroyed when the last handle (and the last call still running on a blocking thread) is
//! gone.
//!
//! A blocking call cannot be cancelled. When one outlives its timeout the instance is marked
//! **stuck** ([`SinkHandle::stuck`], shown in `/status`): every further call is refused
//! ([`SinkCallErrorKind::Stuck`], naming the sink and the stuck call) until the stuck call
//! returns, so no newer batch can be written and committed before a late, older one lands on
//! top of it, and stuck threads cannot pile up run after run (at most the calls that were
//! already running when the first one timed out). The runner commits nothing for a batch
//! whose call failed, so the route re-delivers from its last committed cursor once calls are
//! allowed again.

use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use calpump_plugin::abi::{HostApiV1, OwnedBuf, SinkPluginV1, Status, StrRef};
use calpump_plugin::{Batch, SinkResult, Tick, TickResult};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnostics::{Diagnostic, catalogue};
use crate::secret::redact;

/// How a sink call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkCallErrorKind {
    /// Passing: retry after a back-off.
    Retryable,
    /// The sink cannot go on (includes a plugin panic): the route stops.
    Fatal,
    /// The sink's configuration is wrong.
    Config,
    /// The call did not return within the timeout (it may still be running).
    Timeout,
    /// Refused: an earlier call on the instance outlived its timeout and has not returned yet.
    Stuck,
}

/// A failed sink call, with the plugin's text (secrets redacted).
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("sink `{sink}` {call}: {message}")]
pub struct SinkCallError {
    pub sink: String,
    pub call: &'static str,
    pub kind: SinkCallErrorKind,
    pub message: String,
}

impl SinkCallError {
    pub fn new(
        sink: &str,
        call: &'static str,
        kind: SinkCallErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            sink: sink.to_string(),
            call,
            kind,
            message: redact(&message.into()),
        }
    }

    pub(crate) fn from_status(sink: &str, call: &'static str, status: Status, text: &str) -> Self {
        let kind = match status {
            Status::RETRYABLE => SinkCallErrorKind::Retryable,
            Status::CONFIG_ERROR => SinkCallErrorKind::Config,
            _ => SinkCallErrorKind::Fatal,
        };
        let text = if text.trim().is_empty() {
            format!("failed with status {} and no message", status.0)
        } else {
            text.to_string()
        };
        Self::new(sink, call, kind, text)
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == SinkCallErrorKind::Retryable
    }

    /// `sink.Failed` with this error as detail.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::new(&catalogue::general::SINK_FAILED, self.to_string())
    }
}

/// Reads a plugin's out-buffer as text and frees it with the plugin's own `free_buf`.
///
/// # Safety
/// `buf` must come from a call of `table`'s plugin and not have been freed.
pub(crate) unsafe fn take_buf(table: &SinkPluginV1, buf: OwnedBuf) -> String {
    if buf.ptr.is_null() {
        return String::new();
    }
    // SAFETY: the buffer is valid until freed below.
    let text = String::from_utf8_lossy(unsafe { buf.as_bytes() }).into_owned();
    // SAFETY: handed back to the allocator that made it, exactly once.
    unsafe { (table.free_buf)(buf) };
    text
}

/// The plugin's instance pointer, owned by [`Instance`].
struct InstancePtr(*mut c_void);
// SAFETY: the ABI requires instances to be usable from any thread (see `calpump_plugin::abi`).
unsafe impl Send for InstancePtr {}
// SAFETY: as above; calls on one instance may run concurrently by contract.
unsafe impl Sync for InstancePtr {}

struct Instance {
    sink: String,
    plugin: String,
    table: &'static SinkPluginV1,
    ptr: InstancePtr,
    timeout: Duration,
    next_wakeup: Mutex<Option<DateTime<Utc>>>,
    /// Calls that outlived their timeout and are still running; the instance takes no call
    /// while there is one.
    stuck: Mutex<Option<StuckCall>>,
}

/// A sink instance's calls that outlived their timeout and have not returned yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StuckCall {
    /// The first stuck call (`write_batch`, `flush`, `tick`).
    pub call: &'static str,
    /// When it was started.
    pub since: DateTime<Utc>,
    /// How many calls are stuck (the first and any that were running beside it).
    pub calls: usize,
}

/// Where one call is, guarded by the instance's `stuck` lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallState {
    Running,
    Returned,
    TimedOut,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the pointer came from this table's `create`, and no call is running (every
        // blocking call holds an `Arc<Instance>`).
        unsafe { (self.table.destroy)(self.ptr.0) };
    }
}

/// One sink instance (`[sinks.<name>]`), cheap to clone, shared by the routes that name it.
#[derive(Clone)]
pub struct SinkHandle {
    inner: Arc<Instance>,
}

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkHandle")
            .field("sink", &self.inner.sink)
            .field("plugin", &self.inner.plugin)
            .finish()
    }
}

/// Runs `f` on a blocking thread, waiting at most `timeout` (`create`: no instance yet).
async fn blocking<T: Send + 'static>(
    sink: &str,
    call: &'static str,
    timeout: Duration,
    f: impl FnOnce() -> Result<T, SinkCallError> + Send + 'static,
) -> Result<T, SinkCallError> {
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(f);
    let result = match tokio::time::timeout(timeout, task).await {
        Ok(joined) => joined_result(sink, call, joined),
        Err(_) => Err(timed_out(sink, call, timeout)),
    };
    record(sink, call, started, &result);
    result
}

fn joined_result<T>(
    sink: &str,
    call: &'static str,
    joined: Result<Result<T, SinkCallError>, tokio::task::JoinError>,
) -> Result<T, SinkCallError> {
    match joined {
        Ok(result) => result,
        Err(join) => Err(SinkCallError::new(
            sink,
            call,
            SinkCallErrorKind::Fatal,
            format!("the call crashed on its thread: {join}"),
        )),
    }
}

fn timed_out(sink: &str, call: &'static str, timeout: Duration) -> SinkCallError {
    SinkCallError::new(
        sink,
        call,
        SinkCallErrorKind::Timeout,
        format!(
            "no answer within {}; the sink takes no further call until this one returns",
            humantime::format_duration(timeout)
        ),
    )
}

/// The metrics of one call into a plugin (refused calls never reached it and are not counted).
fn record<T>(sink: &str, call: &'static str, started: Instant, result: &Result<T, SinkCallError>) {
    let status = match result {
        Ok(_) => "ok",
        Err(e) => match e.kind {
            SinkCallErrorKind::Retryable => "retryable",
            SinkCallErrorKind::Fatal => "fatal",
            SinkCallErrorKind::Config => "config",
            SinkCallErrorKind::Timeout => "timeout",
            SinkCallErrorKind::Stuck => return,
        },
    };
    let metrics = crate::metrics::global();
    metrics.inc(
        "calpump_sink_calls_total",
        "Calls into sink plugins, by sink, call and outcome.",
        &[("sink", sink), ("call", call), ("status", status)],
    );
    metrics.observe(
        "calpump_sink_call_duration_seconds",
        "Duration of calls into sink plugins.",
        &[("sink", sink), ("call", call)],
        started.elapsed().as_secs_f64(),
    );
}

/// Whole seconds, for messages.
fn seconds(d: chrono::TimeDelta) -> String {
    humantime::format_duration(Duration::from_secs(d.num_seconds().max(0) as u64)).to_string()
}

impl SinkHandle {
    pub(crate) async fn create(
        sink: &str,
        plugin: &str,
        table: &'static SinkPluginV1,
        host: &'static HostApiV1,
        settings: serde_json::Value,
        timeout: Duration,
    ) -> Result<Self, SinkCallError> {
        let sink_name = sink.to_string();
        let ptr = blocking(sink, "create", timeout, move || {
            let json = settings.to_string();
            let mut instance: *mut c_void = std::ptr::null_mut();
            let mut out = OwnedBuf::empty();
            // SAFETY: valid table, a string and host table valid for the call (the host table is
            // 'static), and out-pointers written at most once.
            let status = unsafe {
                (table.create)(
                    StrRef::new(&json),
                    host as *const HostApiV1,
                    &mut instance,
                    &mut out,
                )
            };
            // SAFETY: the buffer came from this plugin.
            let text = unsafe { take_buf(table, out) };
            if status != Status::OK {
                return Err(SinkCallError::from_status(
                    &sink_name, "create", status, &text,
                ));
            }
            if instance.is_null() {
                return Err(SinkCallError::new(
                    &sink_name,
                    "create",
                    SinkCallErrorKind::Fatal,
                    "the plugin returned no instance",
                ));
            }
            Ok(InstancePtr(instance))
        })
        .await?;
        tracing::debug!(sink, plugin, "sink instance created");
        Ok(Self {
            inner: Arc::new(Instance {
                sink: sink.to_string(),
                plugin: plugin.to_string(),
                table,
                ptr,
                timeout,
                next_wakeup: Mutex::new(None),
                stuck: Mutex::new(None),
            }),
        })
    }

    /// The sink's name (`[sinks.<name>]`).
    pub fn name(&self) -> &str {
        &self.inner.sink
    }

    /// The plugin it is an instance of.
    pub fn plugin(&self) -> &str {
        &self.inner.plugin
    }

    /// The earliest wake-up the sink asked for (from `write_batch` or `tick`) that has not been
    /// served by a tick yet.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        self.inner.next_wakeup.lock().ok().and_then(|g| *g)
    }

    fn note_wakeup(&self, at: Option<DateTime<Utc>>) {
        let Some(at) = at else { return };
        if let Ok(mut slot) = self.inner.next_wakeup.lock() {
            *slot = Some(match *slot {
                Some(existing) if existing <= at => existing,
                _ => at,
            });
        }
    }

    /// The calls of this instance that outlived their timeout and still run (`None`: it takes
    /// calls). While there is one, every call is refused with [`SinkCallErrorKind::Stuck`].
    pub fn stuck(&self) -> Option<StuckCall> {
        locked(&self.inner.stuck).clone()
    }

    /// Runs `f` on a blocking thread with the instance's timeout. Refused while a call is stuck;
    /// a call that outlives the timeout makes the instance stuck until it returns.
    async fn guarded<T: Send + 'static>(
        &self,
        call: &'static str,
        f: impl FnOnce(&Instance) -> Result<T, SinkCallError> + Send + 'static,
    ) -> Result<T, SinkCallError> {
        let inner = &self.inner;
        if let Some(stuck) = self.stuck() {
            let running = Utc::now() - stuck.since;
            return Err(SinkCallError::new(
                &inner.sink,
                call,
                SinkCallErrorKind::Stuck,
                format!(
                    "refused: its `{}` call has been running for {} (the timeout is {}) and has not returned{}; the sink takes calls again once it does, and the route then re-delivers what was not committed",
                    stuck.call,
                    seconds(running),
                    humantime::format_duration(inner.timeout),
                    if stuck.calls > 1 {
                        format!(" ({} calls stuck)", stuck.calls)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        let started = Instant::now();
        let started_at = Utc::now();
        let state = Arc::new(Mutex::new(CallState::Running));
        let mut task = tokio::task::spawn_blocking({
            let instance = Arc::clone(inner);
            let state = Arc::clone(&state);
            move || {
                let result = f(&instance);
                // Lock order: the instance's `stuck`, then the call's state.
                let mut stuck = locked(&instance.stuck);
                let mut state = locked(&state);
                if *state == CallState::TimedOut {
                    let left = match stuck.as_mut() {
                        Some(s) => {
                            s.calls = s.calls.saturating_sub(1);
                            s.calls
                        }
                        None => 0,
                    };
                    if left == 0 {
                        *stuck = None;
                    }
                    tracing::warn!(
                        sink = %instance.sink, call, seconds = started.elapsed().as_secs_f64(),
                        still_stuck = left, ok = result.is_ok(),
                        "a sink call returned after its timeout; its result is dropped (the route re-delivers from its last committed cursor)"
                    );
                }
                *state = CallState::Returned;
                result
            }
        });
        let result = match tokio::time::timeout(inner.timeout, &mut task).await {
            Ok(joined) => joined_result(&inner.sink, call, joined),
            Err(_) => {
                let returned = {
                    let mut stuck = locked(&inner.stuck);
                    let mut state = locked(&state);
                    if *state == CallState::Returned {
                        true
                    } else {
                        *state = CallState::TimedOut;
                        match stuck.as_mut() {
                            Some(s) => s.calls += 1,
                            None => {
                                *stuck = Some(StuckCall {
                                    call,
                                    since: started_at,
                                    calls: 1,
                                });
                            }
                        }
                        false
                    }
                };
                if returned {
                    // It returned just as the timeout fired: its result is there.
                    joined_result(&inner.sink, call, task.await)
                } else {
                    tracing::error!(
                        sink = %inner.sink, call, timeout = %humantime::format_duration(inner.timeout),
                        "a sink call outlived its timeout; the sink takes no call until it returns"
                    );
                    Err(timed_out(&inner.sink, call, inner.timeout))
                }
            }
        };
        record(&inner.sink, call, started, &result);
        result
    }

    /// Calls the plugin with a JSON payload and returns the OK text.
    async fn call_json(
        &self,
        call: &'static str,
        payload: String,
        f: fn(&SinkPluginV1) -> unsafe extern "C" fn(*mut c_void, StrRef, *mut OwnedBuf) -> Status,
    ) -> Result<String, SinkCallError> {
        self.guarded(call, move |inner| {
            let mut out = OwnedBuf::empty();
            let function = f(inner.table);
            // SAFETY: the instance is alive (the call holds an Arc), the payload lives for the
            // call.
            let status = unsafe { function(inner.ptr.0, StrRef::new(&payload), &mut out) };
            // SAFETY: the buffer came from this plugin.
            let text = unsafe { take_buf(inner.table, out) };
            if status == Status::OK {
                Ok(text)
            } else {
                Err(SinkCallError::from_status(&inner.sink, call, status, &text))
            }
        })
        .await
    }

    /// Hands one batch to the sink.
    pub async fn write_batch(&self, batch: &Batch) -> Result<SinkResult, SinkCallError> {
        let payload = serde_json::to_string(batch).map_err(|e| {
            SinkCallError::new(
                &self.inner.sink,
                "write_batch",
                SinkCallErrorKind::Fatal,
                format!("cannot encode the batch: {e}"),
            )
        })?;
        let text = self
            .call_json("write_batch", payload, |t| t.write_batch)
            .await?;
        let result: SinkResult = if text.trim().is_empty() {
            SinkResult::all_accepted(batch)
        } else {
            serde_json::from_str(&text).map_err(|e| {
                SinkCallError::new(
                    &self.inner.sink,
                    "write_batch",
                    SinkCallErrorKind::Fatal,
                    format!("the plugin answered with an unreadable result: {e}"),
                )
            })?
        };
        self.note_wakeup(result.next_wakeup);
        Ok(result)
    }

    /// Asks the sink to make everything written so far durable.
    pub async fn flush(&self) -> Result<(), SinkCallError> {
        self.guarded("flush", |inner| {
            let mut out = OwnedBuf::empty();
            // SAFETY: the instance is alive; `out` is written once.
            let status = unsafe { (inner.table.flush)(inner.ptr.0, &mut out) };
            // SAFETY: the buffer came from this plugin.
            let text = unsafe { take_buf(inner.table, out) };
            if status == Status::OK {
                Ok(())
            } else {
                Err(SinkCallError::from_status(
                    &inner.sink,
                    "flush",
                    status,
                    &text,
                ))
            }
        })
        .await
    }

    /// The periodic call. Clears the wake-up it serves and records the next one.
    pub async fn tick(&self, tick: &Tick) -> Result<TickResult, SinkCallError> {
        let payload = serde_json::to_string(tick).map_err(|e| {
            SinkCallError::new(
                &self.inner.sink,
                "tick",
                SinkCallErrorKind::Fatal,
                format!("cannot encode the tick: {e}"),
            )
        })?;
        if let Ok(mut slot) = self.inner.next_wakeup.lock()
            && slot.is_some_and(|at| at <= tick.now)
        {
            *slot = None;
        }
        let text = self.call_json("tick", payload, |t| t.tick).await?;
        let result: TickResult = serde_json::from_str(&text).unwrap_or_default();
        self.note_wakeup(result.next_wakeup);
        Ok(result)
    }
}
