//! The host callbacks a plugin gets with `create`: its log lines become `tracing` events of the
//! host, its metrics go into the engine's registry. Every text from a plugin passes through
//! [`crate::secret::redact`] first: a plugin that logs its own configuration does not leak the
//! secrets calpump resolved for it.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

use calpump_plugin::abi::{HostApiV1, StrRef, log_level, metric_kind};
use tracing::level_filters::LevelFilter;

use crate::secret::redact;

/// The context behind `ctx`: which plugin is talking.
struct PluginCtx {
    plugin: String,
}

/// The callback table for a plugin name, made once per name and kept for the whole process
/// (the plugin may keep the pointer as long as it lives, which is forever).
pub(crate) fn host_api_for(plugin: &str) -> &'static HostApiV1 {
    static TABLES: OnceLock<Mutex<HashMap<String, &'static HostApiV1>>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut tables = match tables.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(api) = tables.get(plugin) {
        return api;
    }
    let ctx: &'static mut PluginCtx = Box::leak(Box::new(PluginCtx {
        plugin: plugin.to_string(),
    }));
    let api: &'static HostApiV1 = Box::leak(Box::new(HostApiV1 {
        struct_size: std::mem::size_of::<HostApiV1>(),
        ctx: ctx as *mut PluginCtx as *mut c_void,
        max_level: max_level(),
        log: Some(host_log),
        metric: Some(host_metric),
    }));
    tables.insert(plugin.to_string(), api);
    api
}

/// The most verbose level the host's subscriber records, as an ABI level number.
fn max_level() -> u32 {
    match LevelFilter::current() {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => log_level::ERROR,
        LevelFilter::WARN => log_level::WARN,
        LevelFilter::INFO => log_level::INFO,
        LevelFilter::DEBUG => log_level::DEBUG,
        _ => log_level::TRACE,
    }
}

/// # Safety
/// `ctx` must be a pointer made by [`host_api_for`].
unsafe fn plugin_name<'a>(ctx: *mut c_void) -> &'a str {
    if ctx.is_null() {
        return "unknown";
    }
    // SAFETY: the ctx is a leaked `PluginCtx` that lives forever.
    unsafe { &(*(ctx as *const PluginCtx)).plugin }
}

unsafe extern "C" fn host_log(
    ctx: *mut c_void,
    level: u32,
    target: StrRef,
    message: StrRef,
    fields: StrRef,
) {
    // A panic must not unwind into the plugin.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the plugin passes strings valid for the call; ctx is ours.
        let (plugin, target, message, fields) = unsafe {
            (
                plugin_name(ctx),
                target.to_string_lossy(),
                redact(&message.to_string_lossy()),
                redact(&fields.to_string_lossy()),
            )
        };
        let fields = if fields == "{}" {
            String::new()
        } else {
            fields
        };
        match level {
            log_level::ERROR => {
                tracing::error!(target: "calpump::plugin", plugin, plugin_target = %target, fields = %fields, "{message}")
            }
            log_level::WARN => {
                tracing::warn!(target: "calpump::plugin", plugin, plugin_target = %target, fields = %fields, "{message}")
            }
            log_level::INFO => {
                tracing::info!(target: "calpump::plugin", plugin, plugin_target = %target, fields = %fields, "{message}")
            }
            log_level::DEBUG => {
                tracing::debug!(target: "calpump::plugin", plugin, plugin_target = %target, fields = %fields, "{message}")
            }
            _ => {
                tracing::trace!(target: "calpump::plugin", plugin, plugin_target = %target, fields = %fields, "{message}")
            }
        }
    });
}

unsafe extern "C" fn host_metric(
    ctx: *mut c_void,
    kind: u32,
    name: StrRef,
    labels_json: StrRef,
    value: f64,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: as in `host_log`.
        let (plugin, name, labels) = unsafe {
            (
                plugin_name(ctx),
                name.to_string_lossy(),
                labels_json.to_string_lossy(),
            )
        };
        let labels: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&labels).unwrap_or_default();
        let mut pairs: Vec<(String, String)> = labels
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, redact(&v))
            })
            .filter(|(k, _)| k != "plugin")
            .collect();
        pairs.push(("plugin".to_string(), plugin.to_string()));
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let full = format!("calpump_plugin_{name}");
        let help = "Reported by a sink plugin.";
        let metrics = crate::metrics::global();
        match kind {
            metric_kind::COUNTER => metrics.counter_add(&full, help, &pairs, value),
            metric_kind::GAUGE => metrics.gauge_set(&full, help, &pairs, value),
            metric_kind::HISTOGRAM => metrics.observe(&full, help, &pairs, value),
            _ => {}
        }
    });
}
