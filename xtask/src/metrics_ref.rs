//! `docs/reference/metrics.md`: every metric of `calpump_engine::metrics::METRICS`, and the
//! scan of the sources that finds every metric the code emits (so a metric added without a
//! descriptor fails the xtask's tests and `docs --check`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use calpump_engine::metrics::{METRICS, MetricDescriptor, PLUGIN_PREFIX};

use crate::{Error, md, source};

/// Where metrics are emitted: the non-test Rust sources of the binary, the engine, the
/// backends and the sinks.
fn source_roots(root: &Path) -> Vec<PathBuf> {
    let mut roots = vec![
        root.join("src"),
        root.join("engine/src"),
        root.join("plugins/src"),
    ];
    for parent in ["backends", "sinks"] {
        if let Ok(entries) = std::fs::read_dir(root.join(parent)) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for dir in dirs {
                roots.push(dir.join("src"));
                roots.push(dir.join("plugin/src"));
            }
        }
    }
    roots.into_iter().filter(|r| r.is_dir()).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            if name != "tests" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

/// A file's text without its inline `#[cfg(test)] mod tests { … }` block.
fn without_tests(text: &str) -> String {
    let marker = "#[cfg(test)]\nmod tests {";
    match text.find(marker) {
        Some(start) => match source::block(&text[start..], "mod tests {") {
            Ok(block) => {
                let end = start + text[start..].find(block).unwrap_or(0) + block.len();
                format!("{}{}", &text[..start], &text[end..])
            }
            Err(_) => text[..start].to_string(),
        },
        None => text.to_string(),
    }
}

/// String literals that are exactly a metric-like name starting with `prefix`:
/// `"<prefix>[a-z0-9_]+"` (`calpump_` in the engine and backends; a sink's own name, e.g.
/// `doorsign_`, in `sinks/<name>/`, since the host adds `calpump_plugin_`).
fn name_literals(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    let needle = format!("\"{prefix}");
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if after[len..].starts_with('"') {
            out.push(after[..len].to_string());
        }
        rest = &after[len..];
    }
    out
}

/// One metric the code emits, and where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Emitted {
    /// The exposed name (plugin metrics with the host's prefix).
    pub name: String,
    pub file: String,
}

/// Every metric the sources emit: name literals (a sink's get the plugin prefix) and calls of
/// the helpers descriptors name in `via`. `engine/src/metrics.rs` itself (the table) is not
/// scanned for literals.
pub fn emitted(root: &Path) -> Result<Vec<Emitted>, Error> {
    let mut files = Vec::new();
    for dir in source_roots(root) {
        rust_files(&dir, &mut files);
    }
    let metrics_rs = root.join("engine/src/metrics.rs");
    let mut out = BTreeSet::new();
    for file in files {
        let text = without_tests(&source::read(&file)?);
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        if file == metrics_rs {
            continue;
        }
        let sink = rel
            .strip_prefix("sinks/")
            .and_then(|r| r.split('/').next())
            .map(str::to_string);
        let in_sink = sink.is_some();
        let prefix = match &sink {
            Some(name) => format!("{name}_"),
            None => "calpump_".to_string(),
        };
        for literal in name_literals(&text, &prefix) {
            let name = if in_sink {
                format!("{PLUGIN_PREFIX}{literal}")
            } else {
                literal
            };
            out.insert(Emitted {
                name,
                file: rel.clone(),
            });
        }
        for d in METRICS {
            if let Some(via) = d.via
                && text.contains(&format!("{via}("))
                && !text.contains(&format!("fn {via}("))
            {
                out.insert(Emitted {
                    name: d.name.to_string(),
                    file: rel.clone(),
                });
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn row(d: &MetricDescriptor) -> String {
    let labels: Vec<String> = d.labels.iter().map(|(l, _)| md::code(l)).collect();
    format!(
        "| [`{}`](#{}) | {} | {} | {} | {} |\n",
        d.name,
        d.name,
        d.kind.as_str(),
        labels.join(", "),
        md::cell(d.help),
        d.recorded_by
    )
}

fn details(d: &MetricDescriptor) -> String {
    let mut out = format!("<a id=\"{}\"></a>\n\n### `{}`\n\n", d.name, d.name);
    out.push_str(&format!(
        "**{}** · recorded by {} · {}\n\n",
        d.kind.as_str(),
        d.recorded_by,
        d.help
    ));
    if d.kind == calpump_engine::metrics::MetricKind::Histogram {
        out.push_str(
            "Exposed as `_bucket{le}`, `_sum` and `_count` series; buckets from 5 ms to 300 s.\n\n",
        );
    }
    if d.labels.is_empty() {
        out.push_str("No labels.\n\n");
    } else {
        for (label, meaning) in d.labels {
            out.push_str(&format!("- `{label}`: {meaning}\n"));
        }
        out.push('\n');
    }
    out
}

/// The page.
pub fn render(root: &Path) -> Result<String, Error> {
    let emitted: BTreeSet<String> = emitted(root)?.into_iter().map(|e| e.name).collect();
    let (live, idle): (Vec<&MetricDescriptor>, Vec<&MetricDescriptor>) =
        METRICS.iter().partition(|d| emitted.contains(d.name));
    let mut out = md::generated_note(
        "the metric table `calpump_engine::metrics::METRICS` (`engine/src/metrics.rs`) and a scan of the sources for the metrics they emit",
    );
    out.push_str("# Metrics reference\n\n");
    out.push_str(
        "`calpump run` serves Prometheus text (format 0.0.4) at `/metrics` on `[http] listen`. \
A series appears once something recorded it (a route that never synced has no `calpump_syncs_total` yet). \
Label values are escaped; mailbox addresses and route names appear as written in the config.\n\n",
    );
    out.push_str("| name | type | labels | meaning | recorded by |\n|---|---|---|---|---|\n");
    for d in &live {
        out.push_str(&row(d));
    }
    out.push('\n');
    out.push_str(&format!(
        "## Plugin metrics\n\n\
A sink plugin reports metrics through the host's `metric` callback (`calpump_plugin::sdk::counter`, `gauge`, or `metric` with a `metric_kind`). \
The host exposes each as `{PLUGIN_PREFIX}<name>` with the plugin's labels plus `plugin` (the plugin's name), \
so a plugin cannot shadow calpump's own metrics. The built-in sinks' metrics are in the table above under that exposed name.\n\n"
    ));
    out.push_str("## Each metric\n\n");
    for d in &live {
        out.push_str(&details(d));
    }
    if !idle.is_empty() {
        out.push_str("## Described, not recorded yet\n\n");
        out.push_str(
            "The engine defines these (with their helpers in `engine/src/metrics.rs`), but no code calls them yet, so `/metrics` does not show them.\n\n",
        );
        for d in &idle {
            out.push_str(&details(d));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_test_blocks() {
        let text = "let a = \"calpump_x_total\"; let b = \"calpump_engine::config\";\n\
                    let c = \"calpump_y_total{route\";\n#[cfg(test)]\nmod tests {\n fn t() { \"calpump_z_total\"; }\n}\n";
        assert_eq!(
            name_literals(text, "calpump_"),
            ["calpump_x_total", "calpump_z_total"]
        );
        assert_eq!(
            name_literals(&without_tests(text), "calpump_"),
            ["calpump_x_total"],
            "{}",
            without_tests(text)
        );
    }
}
