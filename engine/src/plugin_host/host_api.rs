//! The host callbacks a plugin gets with `create`: its log lines become `tracing` events of the
//! host, its metrics go into the engine's registry. Every text from a plugin passes through
//! [`crate::secret::redact`] first: a plugin that logs its own configuration does not leak the
//! secrets calpump resolved for it.
//!
//! A plugin's metric `<name>` is exposed as `calpump_plugin_<name>` with the label `plugin`.
//! Nothing a plugin reports can make `/metrics` invalid: label names `le`, `quantile`, `__…`
//! and names Prometheus does not allow are dropped, and a metric whose name collides with an
//! existing family — registered with another type, or one of a histogram's `_bucket`, `_sum`,
//! `_count` series (either way round), or a counter's `_total` form — is refused (logged once).

use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

use calpump_plugin::abi::{HostApiV1, StrRef, log_level, metric_kind};
use tracing::level_filters::LevelFilter;

use crate::metrics::{MetricKind, PLUGIN_PREFIX};
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
        let kind = match kind {
            metric_kind::COUNTER => MetricKind::Counter,
            metric_kind::GAUGE => MetricKind::Gauge,
            metric_kind::HISTOGRAM => MetricKind::Histogram,
            _ => return,
        };
        let full = crate::metrics::sanitize_name(&format!("{PLUGIN_PREFIX}{name}"));
        if let Err(other) = claim(&full, kind) {
            warn_once(
                plugin,
                &full,
                &format!("a sink plugin's metric is refused: its name collides with {other}"),
            );
            return;
        }
        let labels: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&labels).unwrap_or_default();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in labels {
            if k == "plugin" {
                continue;
            }
            if !label_name_allowed(&k) {
                warn_once(
                    plugin,
                    &format!("{full}/{k}"),
                    "a sink plugin's metric label is dropped: `le`, `quantile`, names starting with `__` and names Prometheus does not allow are the host's",
                );
                continue;
            }
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            pairs.push((k, redact(&v)));
        }
        pairs.push(("plugin".to_string(), plugin.to_string()));
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let help = "Reported by a sink plugin.";
        let metrics = crate::metrics::global();
        match kind {
            MetricKind::Counter => metrics.counter_add(&full, help, &pairs, value),
            MetricKind::Gauge => metrics.gauge_set(&full, help, &pairs, value),
            MetricKind::Histogram => metrics.observe(&full, help, &pairs, value),
        }
    });
}

/// Whether a plugin may use `name` as a label: a Prometheus label name
/// (`[a-zA-Z_][a-zA-Z0-9_]*`), not reserved (`__…`), and not one the exposition gives a meaning
/// (`le` of histogram buckets, `quantile` of summaries). `plugin` is the host's and replaced.
fn label_name_allowed(name: &str) -> bool {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid && !name.starts_with("__") && name != "le" && name != "quantile"
}

/// The series names a family of `kind` named `name` puts on `/metrics`: a histogram's
/// `_bucket`, `_sum` and `_count`, a counter's name and its OpenMetrics `_total` form.
fn series_of(name: &str, kind: MetricKind) -> Vec<String> {
    match kind {
        MetricKind::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{name}{s}"))
            .chain(std::iter::once(name.to_string()))
            .collect(),
        MetricKind::Counter if !name.ends_with("_total") => {
            vec![name.to_string(), format!("{name}_total")]
        }
        _ => vec![name.to_string()],
    }
}

/// Every plugin metric family by name with its kind, and which family owns each series name.
#[derive(Default)]
struct Claims {
    families: HashMap<String, MetricKind>,
    series: HashMap<String, String>,
}

/// Registers plugin metric `name` of `kind`, or names the family it would collide with: one of
/// another kind under the same name, or one whose series (a histogram's `_bucket`, `_sum`,
/// `_count`) it would share. Plugin metrics only reach the registry through here, so the claims
/// cover every `calpump_plugin_…` family; the engine's own names never start with that prefix.
fn claim(name: &str, kind: MetricKind) -> Result<(), String> {
    static CLAIMS: OnceLock<Mutex<Claims>> = OnceLock::new();
    let mut claims = match CLAIMS.get_or_init(Mutex::default).lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(known) = claims.families.get(name) {
        return if *known == kind {
            Ok(())
        } else {
            Err(format!("`{name}`, already a {}", known.as_str()))
        };
    }
    let series = series_of(name, kind);
    if let Some(other) = series.iter().find_map(|s| claims.series.get(s)) {
        let other_kind = claims.families.get(other).map_or("metric", |k| k.as_str());
        return Err(format!("the series of {other_kind} `{other}`"));
    }
    claims.families.insert(name.to_string(), kind);
    for s in series {
        claims.series.insert(s, name.to_string());
    }
    Ok(())
}

/// Logs a refused metric or label once per plugin and what was refused.
fn warn_once(plugin: &str, what: &str, message: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut seen = match SEEN.get_or_init(Mutex::default).lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if seen.insert(format!("{plugin}\u{0}{what}")) {
        tracing::warn!(plugin, metric = %what, "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_and_collisions() {
        for ok in ["room", "_x", "a1", "Route"] {
            assert!(label_name_allowed(ok), "{ok}");
        }
        for bad in ["le", "quantile", "__name__", "__x", "9a", "a-b", "", "ä"] {
            assert!(!label_name_allowed(bad), "{bad}");
        }
        let h = "calpump_plugin_test_claims_seconds";
        claim(h, MetricKind::Histogram).expect("first");
        claim(h, MetricKind::Histogram).expect("same again");
        assert!(claim(h, MetricKind::Gauge).is_err());
        for series in ["_bucket", "_sum", "_count"] {
            let err = claim(&format!("{h}{series}"), MetricKind::Gauge).expect_err("collides");
            assert!(err.contains(h), "{err}");
        }
        let g = "calpump_plugin_test_claims_lag_count";
        claim(g, MetricKind::Gauge).expect("gauge");
        assert!(claim("calpump_plugin_test_claims_lag", MetricKind::Histogram).is_err());
        let c = "calpump_plugin_test_claims_writes";
        claim(c, MetricKind::Counter).expect("counter");
        assert!(claim(&format!("{c}_total"), MetricKind::Counter).is_err());
    }
}
