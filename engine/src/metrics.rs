//! The engine's metrics registry and its Prometheus text exposition (format 0.0.4).
//!
//! Hand-written rather than a crate: calpump needs counters, gauges and histograms with labels
//! that are only known at run time (plugins report their own metric names through the host
//! callbacks), and a rendering for `/metrics`. One process-wide registry, [`global`].
//!
//! Names follow Prometheus rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`); anything else is replaced by `_`.
//! Label values are escaped on output. A name is registered with the kind of its first use; a
//! later use with another kind is ignored (and logged once at debug level) instead of panicking.
//!
//! Every metric calpump exposes is described once, in [`METRICS`]: name, kind, labels and
//! meaning. Registration takes a family's `# HELP` text from there, the metrics reference
//! (`docs/reference/metrics.md`) is generated from it (`cargo run -p xtask -- docs`), and a test
//! of the xtask fails when the code emits a `calpump_…` metric the table lacks. Sink plugins'
//! metrics are exposed as `calpump_plugin_<name>` with a `plugin` label; the built-in sinks'
//! are in the table under that exposed name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Histogram bucket bounds in seconds (upper bounds; `+Inf` is implied).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    /// The Prometheus `# TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric calpump exposes, as the reference documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDescriptor {
    /// The exposed name (for plugin metrics: with the host's `calpump_plugin_` prefix).
    pub name: &'static str,
    pub kind: MetricKind,
    /// Label names, each with what its values are.
    pub labels: &'static [(&'static str, &'static str)],
    /// What it measures: the `# HELP` text.
    pub help: &'static str,
    /// Which part of calpump records it.
    pub recorded_by: &'static str,
    /// The helper of this module that records it (`record_request`), when callers record it
    /// through one rather than by name.
    pub via: Option<&'static str>,
}

/// The prefix the plugin host gives every metric a sink plugin reports.
pub const PLUGIN_PREFIX: &str = "calpump_plugin_";

/// Every metric calpump exposes.
pub static METRICS: &[MetricDescriptor] = &[
    MetricDescriptor {
        name: "calpump_syncs_total",
        kind: MetricKind::Counter,
        labels: &[
            ("route", "the route's name"),
            (
                "status",
                "how the run ended: `ok`, `partial` (some mailboxes failed), `failed`, `cancelled`, `interrupted`",
            ),
        ],
        help: "Sync runs of a route, by how they ended.",
        recorded_by: "runner",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_sync_duration_seconds",
        kind: MetricKind::Histogram,
        labels: &[("route", "the route's name")],
        help: "Duration of a route's sync run.",
        recorded_by: "runner",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_errors_total",
        kind: MetricKind::Counter,
        labels: &[
            ("route", "the route's name"),
            (
                "code",
                "the diagnostic code (`entra.AADSTS7000222`, `ews.ErrorImpersonateUserDenied`; see the diagnostics reference)",
            ),
        ],
        help: "Errors met by sync runs, by diagnostic code.",
        recorded_by: "runner",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_events_total",
        kind: MetricKind::Counter,
        labels: &[
            ("route", "the route's name"),
            ("sink", "the sink's name (`[sinks.<name>]`)"),
            (
                "outcome",
                "`upsert`, `delete` (handed to the sink) or `rejected` (the sink refused the item)",
            ),
        ],
        help: "Events handed to sinks, by outcome.",
        recorded_by: "runner",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_calendars_synced_total",
        kind: MetricKind::Counter,
        labels: &[
            ("route", "the route's name"),
            (
                "kind",
                "`snapshot` (the whole window was read) or `delta` (changes since the cursor)",
            ),
        ],
        help: "Calendars committed, by how they were read.",
        recorded_by: "runner",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_mailbox_failing",
        kind: MetricKind::Gauge,
        labels: &[
            ("route", "the route's name"),
            ("mailbox", "the mailbox's address"),
        ],
        help: "1 while a mailbox's last attempt failed.",
        recorded_by: "runner",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_sink_calls_total",
        kind: MetricKind::Counter,
        labels: &[
            ("sink", "the sink's name"),
            (
                "call",
                "the plugin call: `create`, `write_batch`, `flush`, `tick`",
            ),
            (
                "status",
                "`ok`, `retryable`, `fatal`, `config` or `timeout` (the call outlived `[plugins] call_timeout`)",
            ),
        ],
        help: "Calls into sink plugins, by sink, call and outcome.",
        recorded_by: "plugin host",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_sink_call_duration_seconds",
        kind: MetricKind::Histogram,
        labels: &[("sink", "the sink's name"), ("call", "the plugin call")],
        help: "Duration of calls into sink plugins.",
        recorded_by: "plugin host",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_requests_total",
        kind: MetricKind::Counter,
        labels: &[
            ("backend", "`ews` or `graph`"),
            (
                "operation",
                "the request (`FindItem`, `calendarView`, `token`)",
            ),
            ("status", "the HTTP status or `error`"),
        ],
        help: "Requests sent to Exchange, by backend, operation and outcome.",
        recorded_by: "backends",
        via: Some("record_request"),
    },
    MetricDescriptor {
        name: "calpump_request_duration_seconds",
        kind: MetricKind::Histogram,
        labels: &[
            ("backend", "`ews` or `graph`"),
            ("operation", "the request"),
        ],
        help: "Duration of requests sent to Exchange.",
        recorded_by: "backends",
        via: Some("record_request"),
    },
    MetricDescriptor {
        name: "calpump_throttled_total",
        kind: MetricKind::Counter,
        labels: &[("backend", "`ews` or `graph`")],
        help: "Times the server throttled a request.",
        recorded_by: "backends",
        via: Some("record_throttle"),
    },
    MetricDescriptor {
        name: "calpump_shadow_comparisons_total",
        kind: MetricKind::Counter,
        labels: &[("route", "the route's name")],
        help: "Shadow comparisons of a route.",
        recorded_by: "runner (routes with `shadow_profile`)",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_shadow_differences",
        kind: MetricKind::Gauge,
        labels: &[("route", "the route's name")],
        help: "Events the route's shadow profile reads differently (only in one profile, or with fields that differ), at the last comparison.",
        recorded_by: "runner (routes with `shadow_profile`)",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_shadow_unreadable_mailboxes",
        kind: MetricKind::Gauge,
        labels: &[("route", "the route's name")],
        help: "Mailboxes the route's profile or its shadow profile could not read, at the last comparison.",
        recorded_by: "runner (routes with `shadow_profile`)",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_shadow_rewrites",
        kind: MetricKind::Gauge,
        labels: &[("route", "the route's name")],
        help: "Events equal through both profiles whose content hash still differs (a switch rewrites them once), at the last comparison.",
        recorded_by: "runner (routes with `shadow_profile`)",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_up",
        kind: MetricKind::Gauge,
        labels: &[],
        help: "1 while the daemon runs.",
        recorded_by: "daemon (`calpump run`)",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_secret_expiry_days",
        kind: MetricKind::Gauge,
        labels: &[("profile", "the profile's name")],
        help: "Days until the profile's secret or certificate expires (negative: expired).",
        recorded_by: "daemon (`calpump run`)",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_plugin_doorsign_push_total",
        kind: MetricKind::Counter,
        labels: &[
            ("plugin", "`doorsign`"),
            ("target", "`mqtt` or `openepaperlink`"),
            (
                "outcome",
                "`ok`, `retry` (failed, will be retried), `failed` (failed `push_retry.attempts` times, still retried), `abandoned` (dropped at shutdown)",
            ),
        ],
        help: "Door-sign pushes (MQTT, OpenEPaperLink), by target and outcome.",
        recorded_by: "doorsign sink",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_plugin_database_upserted_total",
        kind: MetricKind::Counter,
        labels: &[("plugin", "`database`"), ("route", "the route's name")],
        help: "Rows the database sink inserted or updated.",
        recorded_by: "database sink",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_plugin_database_unchanged_total",
        kind: MetricKind::Counter,
        labels: &[("plugin", "`database`"), ("route", "the route's name")],
        help: "Events the database sink skipped because their content hash had not changed.",
        recorded_by: "database sink",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_plugin_database_deleted_total",
        kind: MetricKind::Counter,
        labels: &[("plugin", "`database`"), ("route", "the route's name")],
        help: "Rows the database sink deleted (soft or hard), deletes and events gone from a complete snapshot.",
        recorded_by: "database sink",
        via: None,
    },
    MetricDescriptor {
        name: "calpump_plugin_database_rejected_total",
        kind: MetricKind::Counter,
        labels: &[("plugin", "`database`"), ("route", "the route's name")],
        help: "Events the database sink refused (a value it cannot store).",
        recorded_by: "database sink",
        via: None,
    },
];

/// The descriptor of an exposed metric name.
pub fn descriptor(name: &str) -> Option<&'static MetricDescriptor> {
    METRICS.iter().find(|d| d.name == name)
}

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone)]
enum Value {
    Scalar(f64),
    Histogram {
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: MetricKind,
    series: BTreeMap<Labels, Value>,
}

/// A registry of metric families.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<String, Family>>,
}

/// The process-wide registry `/metrics` renders.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::default)
}

/// Replaces every character Prometheus does not allow in a metric or label name.
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut labels: Labels = pairs
        .iter()
        .map(|(k, v)| (sanitize_name(k), (*v).to_string()))
        .collect();
    labels.sort();
    labels.dedup_by(|a, b| a.0 == b.0);
    labels
}

impl Metrics {
    fn update(
        &self,
        name: &str,
        help: &str,
        kind: MetricKind,
        pairs: &[(&str, &str)],
        f: impl FnOnce(&mut Value),
    ) {
        let name = sanitize_name(name);
        let Ok(mut families) = self.families.lock() else {
            return;
        };
        let family = families.entry(name.clone()).or_insert_with(|| Family {
            // The table's text wins: one place says what a metric means.
            help: descriptor(&name).map_or(help, |d| d.help).to_string(),
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::debug!(metric = %name, "metric reported with two kinds; ignored");
            return;
        }
        let value = family
            .series
            .entry(labels(pairs))
            .or_insert_with(|| match kind {
                MetricKind::Histogram => Value::Histogram {
                    buckets: vec![0; BUCKETS.len()],
                    sum: 0.0,
                    count: 0,
                },
                _ => Value::Scalar(0.0),
            });
        f(value);
    }

    /// Adds `value` (≥ 0) to a counter.
    pub fn counter_add(&self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if value.is_nan() || value < 0.0 {
            return;
        }
        self.update(name, help, MetricKind::Counter, labels, |v| {
            if let Value::Scalar(x) = v {
                *x += value;
            }
        });
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &str, help: &str, labels: &[(&str, &str)]) {
        self.counter_add(name, help, labels, 1.0);
    }

    /// Sets a gauge.
    pub fn gauge_set(&self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.update(name, help, MetricKind::Gauge, labels, |v| {
            if let Value::Scalar(x) = v {
                *x = value;
            }
        });
    }

    /// Records one observation (in seconds) into a histogram.
    pub fn observe(&self, name: &str, help: &str, labels: &[(&str, &str)], seconds: f64) {
        if !seconds.is_finite() {
            return;
        }
        self.update(name, help, MetricKind::Histogram, labels, |v| {
            if let Value::Histogram {
                buckets,
                sum,
                count,
            } = v
            {
                for (bucket, bound) in buckets.iter_mut().zip(BUCKETS) {
                    if seconds <= *bound {
                        *bucket += 1;
                    }
                }
                *sum += seconds;
                *count += 1;
            }
        });
    }

    /// The current value of a counter or gauge (tests and `/status`).
    pub fn value(&self, name: &str, labels_: &[(&str, &str)]) -> Option<f64> {
        let families = self.families.lock().ok()?;
        match families
            .get(&sanitize_name(name))?
            .series
            .get(&labels(labels_))?
        {
            Value::Scalar(x) => Some(*x),
            Value::Histogram { count, .. } => Some(*count as f64),
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(families) = self.families.lock() else {
            return out;
        };
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, value) in &family.series {
                match value {
                    Value::Scalar(x) => {
                        let _ = writeln!(out, "{name}{} {}", render_labels(labels, None), num(*x));
                    }
                    Value::Histogram {
                        buckets,
                        sum,
                        count,
                    } => {
                        for (bucket, bound) in buckets.iter().zip(BUCKETS) {
                            let le = num(*bound);
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {bucket}",
                                render_labels(labels, Some(&le))
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            render_labels(labels, Some("+Inf"))
                        );
                        let _ = writeln!(
                            out,
                            "{name}_sum{} {}",
                            render_labels(labels, None),
                            num(*sum)
                        );
                        let _ =
                            writeln!(out, "{name}_count{} {count}", render_labels(labels, None));
                    }
                }
            }
        }
        out
    }
}

fn num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

/// For backends: one request to Microsoft (or the simulator) and how it ended.
pub fn record_request(backend: &str, operation: &str, status: &str, duration: Duration) {
    let m = global();
    m.inc(
        "calpump_requests_total",
        "Requests sent to Exchange, by backend, operation and outcome.",
        &[
            ("backend", backend),
            ("operation", operation),
            ("status", status),
        ],
    );
    m.observe(
        "calpump_request_duration_seconds",
        "Duration of requests sent to Exchange.",
        &[("backend", backend), ("operation", operation)],
        duration.as_secs_f64(),
    );
}

/// For backends: the server asked us to wait (EWS `ErrorServerBusy`, Graph 429/503).
pub fn record_throttle(backend: &str) {
    global().inc(
        "calpump_throttled_total",
        "Times the server throttled a request.",
        &[("backend", backend)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_escaped_labels() {
        let m = Metrics::default();
        m.inc(
            "calpump_syncs_total",
            "Syncs.",
            &[("route", "a\"b"), ("status", "ok")],
        );
        m.inc(
            "calpump_syncs_total",
            "Syncs.",
            &[("status", "ok"), ("route", "a\"b")],
        );
        m.gauge_set("up", "Up.", &[], 1.0);
        m.observe("d_seconds", "D.", &[("route", "r")], 0.3);
        m.gauge_set("up", "Up.", &[], 0.5);
        m.counter_add("calpump_syncs_total", "x", &[("route", "x")], -1.0);
        let text = m.render();
        assert!(text.contains("# TYPE calpump_syncs_total counter"));
        assert!(text.contains("calpump_syncs_total{route=\"a\\\"b\",status=\"ok\"} 2"));
        assert!(text.contains("up 0.5"));
        assert!(text.contains("d_seconds_bucket{route=\"r\",le=\"0.25\"} 0"));
        assert!(text.contains("d_seconds_bucket{route=\"r\",le=\"0.5\"} 1"));
        assert!(text.contains("d_seconds_bucket{route=\"r\",le=\"+Inf\"} 1"));
        assert!(text.contains("d_seconds_count{route=\"r\"} 1"));
        assert!(
            !text.contains("route=\"x\""),
            "negative counter steps are ignored"
        );
        assert_eq!(sanitize_name("9 bad-name"), "_9_bad_name");
        // A described metric takes its help from the table.
        assert!(text.contains(&format!(
            "# HELP calpump_syncs_total {}",
            descriptor("calpump_syncs_total").expect("described").help
        )));
        // A name first used as a gauge stays a gauge.
        m.inc("up", "Up.", &[]);
        assert_eq!(m.value("up", &[]), Some(0.5));
    }

    #[test]
    fn the_table_is_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for d in METRICS {
            assert!(seen.insert(d.name), "{} twice", d.name);
            assert_eq!(
                sanitize_name(d.name),
                d.name,
                "{} is not a Prometheus name",
                d.name
            );
            assert!(d.name.starts_with("calpump_"), "{}", d.name);
            match d.kind {
                MetricKind::Counter => assert!(d.name.ends_with("_total"), "{}", d.name),
                MetricKind::Histogram => assert!(d.name.ends_with("_seconds"), "{}", d.name),
                MetricKind::Gauge => assert!(!d.name.ends_with("_total"), "{}", d.name),
            }
            assert!(d.help.ends_with('.'), "{}: help is a sentence", d.name);
            if d.recorded_by.ends_with("sink") {
                assert!(d.name.starts_with(PLUGIN_PREFIX), "{}", d.name);
                assert!(d.labels.iter().any(|(l, _)| *l == "plugin"), "{}", d.name);
            }
        }
    }
}
