//! `/metrics` stays valid Prometheus text whatever a sink plugin reports: a plugin's label
//! names `le`, `quantile`, `__…` and names Prometheus does not allow are dropped, and a plugin
//! metric whose name collides with an existing family (a histogram's `_bucket`/`_sum`/`_count`
//! series, a name registered with another type) is refused. Checked two ways on the daemon's
//! real `/metrics`: Python's `prometheus_client.parser` (PyPI, in a venv under the target
//! directory, created on first use; a missing `python3` or a failed install fails the test) and
//! a strict check of the exposition format written here (the Python parser lets a stray `le`
//! label or a second family over a histogram's series pass).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use calpump_engine::daemon::{Daemon, bind};
use calpump_engine::plugin_host::PluginRegistry;
use calpump_engine::runner::RunOptions;
use calpump_engine::state::{SqliteStateStore, StateStore};
use calpump_plugin::abi::metric_kind;
use calpump_plugin::{Batch, BatchKind, SCHEMA_VERSION, Sink, SinkError, SinkResult, Window};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A plugin that reports every kind of hostile metric on each batch.
struct Hostile;

impl Sink for Hostile {
    const NAME: &'static str = "hostile";
    const VERSION: &'static str = "0.1.0";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;

    fn check(_config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn create(_config: serde_json::Value) -> Result<Self, SinkError> {
        Ok(Hostile)
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        use calpump_plugin::sdk::metric;
        let bad_labels: &[(&str, &str)] = &[
            ("room", "a\"b\\c\nd"),
            ("le", "0.5"),
            ("quantile", "0.9"),
            ("__name__", "evil"),
            ("__meta", "x"),
            ("9lives", "x"),
            ("a-b", "x"),
            ("", "x"),
            ("plugin", "someone-else"),
        ];
        metric(metric_kind::COUNTER, "writes_total", bad_labels, 1.0);
        metric(metric_kind::GAUGE, "queue_depth", bad_labels, 3.0);
        metric(metric_kind::HISTOGRAM, "write_seconds", bad_labels, 0.2);
        // Collisions with the histogram's series, and with a name of another type.
        metric(metric_kind::GAUGE, "write_seconds_bucket", &[], 1.0);
        metric(metric_kind::GAUGE, "write_seconds_sum", &[], 1.0);
        metric(metric_kind::COUNTER, "write_seconds_count", &[], 1.0);
        metric(metric_kind::GAUGE, "writes_total", &[("room", "x")], 7.0);
        metric(metric_kind::COUNTER, "queue_depth", &[], 1.0);
        // A histogram whose own series would collide with an earlier gauge.
        metric(metric_kind::GAUGE, "lag_seconds_count", &[], 2.0);
        metric(metric_kind::HISTOGRAM, "lag_seconds", &[], 0.1);
        Ok(SinkResult::all_accepted(&batch))
    }

    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

calpump_plugin::sink_table!(Hostile);

/// Python with `prometheus_client`, in a venv of its own under the target directory.
fn python() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prom-pyvenv");
        let py = dir.join("bin/python");
        let ready = |py: &Path| {
            Command::new(py)
                .args(["-c", "import prometheus_client.parser"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ready(&py) {
            let st = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .expect("python3 is needed to check /metrics with prometheus_client");
            assert!(st.success(), "python3 -m venv failed");
            let mut pip = Command::new(dir.join("bin/pip"));
            pip.args(["install", "--quiet", "--disable-pip-version-check"]);
            if Path::new("/opt/wheels").is_dir() {
                pip.args(["--find-links", "/opt/wheels"]);
            }
            let st = pip.arg("prometheus-client").status().expect("pip runs");
            assert!(st.success(), "pip install prometheus-client failed");
            assert!(
                ready(&py),
                "prometheus_client does not import after install"
            );
        }
        py
    })
    .clone()
}

/// Parses `text` with `prometheus_client.parser`; the families' names and sample names, or
/// the parser's error.
fn python_parse(text: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
try:
    out = {}
    for f in text_string_to_metric_families(sys.stdin.read()):
        out.setdefault(f.name, []).extend(s.name for s in f.samples)
    print(json.dumps(out))
except Exception as e:
    print("ERROR %s: %s" % (type(e).__name__, e))
"#;
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("python ends");
    let out = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.starts_with("ERROR") {
        return Err(out);
    }
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
}

fn valid_name(name: &str, colon: bool) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Splits `{a="x",b="y"}` into pairs, honouring the escapes `\\`, `\"`, `\n`.
fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("no `=\"` in {rest}"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {text}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated value in {text}")),
            }
        };
        out.push((name.to_string(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(out)
}

/// A strict check of the text format (0.0.4): every family's TYPE once and before its samples;
/// sample names are the family's (histograms: `_bucket` with `le`, `_sum`, `_count`); no
/// sample name belongs to two families; label names valid, not reserved, not repeated, `le`
/// only on buckets, `quantile` nowhere (calpump has no summaries); values are numbers.
fn strict_check(text: &str) -> Result<(), String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(help) = line.strip_prefix("# HELP ") {
            let name = help.split(' ').next().unwrap_or_default();
            if !valid_name(name, true) {
                return Err(format!("bad family name: {line}"));
            }
            continue;
        }
        if let Some(ty) = line.strip_prefix("# TYPE ") {
            let (name, kind) = ty.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            if !["counter", "gauge", "histogram"].contains(&kind) {
                return Err(format!("unexpected type: {line}"));
            }
            if types.insert(name.to_string(), kind.to_string()).is_some() {
                return Err(format!("family {name} declared twice"));
            }
            let series: Vec<String> = if kind == "histogram" {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect()
            } else {
                vec![name.to_string()]
            };
            for s in series {
                if let Some(other) = owner.insert(s.clone(), name.to_string()) {
                    return Err(format!("series {s} belongs to {other} and to {name}"));
                }
            }
            if let Some(other) = owner.get(name)
                && other != name
            {
                return Err(format!("family {name} is a series of {other}"));
            }
            current = Some((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (family, kind) = current
            .clone()
            .ok_or(format!("sample before TYPE: {line}"))?;
        let (series, rest) = match line.split_once('{') {
            Some((name, rest)) => {
                let (labels, value) = rest
                    .rsplit_once("} ")
                    .ok_or(format!("bad sample: {line}"))?;
                (
                    name.to_string(),
                    Some((labels.to_string(), value.to_string())),
                )
            }
            None => {
                let (name, value) = line.split_once(' ').ok_or(format!("bad sample: {line}"))?;
                (name.to_string(), Some((String::new(), value.to_string())))
            }
        };
        let (labels, value) = rest.unwrap_or_default();
        if owner.get(&series) != Some(&family) {
            return Err(format!(
                "sample {series} outside its family {family}: {line}"
            ));
        }
        if value != "+Inf" && value != "-Inf" && value != "NaN" && value.parse::<f64>().is_err() {
            return Err(format!("bad value: {line}"));
        }
        let labels = parse_labels(&labels)?;
        let mut seen = BTreeSet::new();
        for (name, _) in &labels {
            if !valid_name(name, false) || name.starts_with("__") {
                return Err(format!("bad label name {name:?}: {line}"));
            }
            if !seen.insert(name.clone()) {
                return Err(format!("label {name} twice: {line}"));
            }
            if name == "quantile" {
                return Err(format!("quantile label outside a summary: {line}"));
            }
        }
        let is_bucket = kind == "histogram" && series.ends_with("_bucket");
        if seen.contains("le") != is_bucket {
            return Err(format!("`le` must be on histogram buckets only: {line}"));
        }
    }
    Ok(())
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[test]
fn the_strict_check_catches_what_it_should() {
    let good = "# HELP a_seconds A.\n# TYPE a_seconds histogram\na_seconds_bucket{x=\"1\",le=\"+Inf\"} 1\na_seconds_sum{x=\"1\"} 0.2\na_seconds_count{x=\"1\"} 1\n# HELP b B.\n# TYPE b gauge\nb 1\n";
    strict_check(good).expect("valid");
    for bad in [
        "# TYPE b gauge\nb{le=\"1\"} 1\n",
        "# TYPE b gauge\nb{__x=\"1\"} 1\n",
        "# TYPE b gauge\nb{x=\"1\",x=\"2\"} 1\n",
        "# TYPE b gauge\nb{quantile=\"1\"} 1\n",
        "# TYPE a histogram\na_bucket{le=\"1\"} 1\n# TYPE a_sum gauge\na_sum 1\n",
        "# TYPE a_sum gauge\na_sum 1\n# TYPE a histogram\na_count 1\n",
        "# TYPE b gauge\n# TYPE b counter\nb 1\n",
        "# TYPE b gauge\nb x\n",
    ] {
        assert!(strict_check(bad).is_err(), "should fail: {bad}");
    }
}

#[tokio::test]
async fn plugin_metrics_cannot_break_the_metrics_page() {
    let mut registry = PluginRegistry::new();
    registry.register_builtin(sink_table()).expect("register");
    let sink = registry
        .create_sink(
            "hostile-sink",
            "hostile",
            serde_json::json!({}),
            Duration::from_secs(10),
        )
        .await
        .expect("create");
    let t = chrono::Utc::now();
    let batch = Batch {
        schema_version: SCHEMA_VERSION,
        run_id: "r".into(),
        route: "rooms".into(),
        mailbox: "room@contoso.com".into(),
        mailbox_name: None,
        calendar: "default".into(),
        kind: BatchKind::Delta,
        window: Window { start: t, end: t },
        upserts: vec![],
        deletes: vec![],
        complete: false,
    };
    // Twice: the collisions are refused every time, not only the first.
    for _ in 0..2 {
        sink.write_batch(&batch).await.expect("write");
    }
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let daemon = Daemon {
        routes: vec![],
        sinks: vec![(sink, None)],
        state,
        options: RunOptions::default(),
        expiry: None,
    };
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = calpump_engine::shutdown::channel();
    let running = tokio::spawn(daemon.run(listener, shutdown));
    let text = get(addr, "/metrics").await;
    trigger.trigger();
    running.await.expect("join").expect("daemon");

    if let Err(e) = strict_check(&text) {
        panic!("/metrics is not valid exposition text: {e}\n{text}");
    }
    let families = python_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(families.contains_key("calpump_sink_calls"), "{families:?}");

    // The plugin's metrics are there, with their good label and the host's `plugin` label only.
    for (family, kind) in [
        ("calpump_plugin_writes_total", "counter"),
        ("calpump_plugin_queue_depth", "gauge"),
        ("calpump_plugin_write_seconds", "histogram"),
        ("calpump_plugin_lag_seconds_count", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind}\n{text}"
        );
    }
    assert!(
        text.contains(
            "calpump_plugin_writes_total{plugin=\"hostile\",room=\"a\\\"b\\\\c\\nd\"} 2\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "calpump_plugin_queue_depth{plugin=\"hostile\",room=\"a\\\"b\\\\c\\nd\"} 3\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "calpump_plugin_write_seconds_bucket{plugin=\"hostile\",room=\"a\\\"b\\\\c\\nd\",le=\"0.25\"} 2\n"
        ),
        "{text}"
    );
    // Refused: every family over another one's series or name.
    for refused in [
        "# TYPE calpump_plugin_write_seconds_bucket",
        "# TYPE calpump_plugin_write_seconds_sum",
        "# TYPE calpump_plugin_write_seconds_count",
        "# TYPE calpump_plugin_lag_seconds histogram",
        "# TYPE calpump_plugin_writes_total gauge",
        "# TYPE calpump_plugin_queue_depth counter",
    ] {
        assert!(!text.contains(refused), "{refused}\n{text}");
    }
    for label in [
        "quantile=",
        "__name__",
        "__meta",
        "9lives",
        "a-b",
        "a_b=",
        "someone-else",
    ] {
        assert!(!text.contains(label), "{label}\n{text}");
    }
}
