//! calpump's developer tasks. `cargo run -p xtask -- docs` writes the generated references in
//! `docs/reference/` from the code; `--check` compares instead of writing and fails with a
//! summary of what differs (CI runs it, and `tests/docs.rs` does the same under `cargo test`).
//!
//! | file | generated from |
//! |---|---|
//! | `configuration.md` | the config types' JSON Schemas (`schemars` derives: doc comments, serde defaults) and the sinks' `CONFIG_SCHEMA` |
//! | `diagnostics.md`, `diagnostics.de.md` | `calpump_engine::diagnostics::catalogue::all()` |
//! | `metrics.md` | `calpump_engine::metrics::METRICS` and a scan of the sources for emitted metrics |
//! | `plugin-abi.md` | `plugins/src/abi.rs` (docs, declarations, compiled offsets), the model's JSON Schemas, the example plugin |

pub mod abi_ref;
pub mod config_ref;
pub mod diagnostics_ref;
pub mod md;
pub mod metrics_ref;
pub mod schema_doc;
pub mod source;

use std::fmt;
use std::path::{Path, PathBuf};

use calpump_engine::diagnostics::Lang;

/// A task failed; the text says what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The workspace root (the xtask lives in `<root>/xtask`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the references go, relative to the root.
pub const REFERENCE_DIR: &str = "docs/reference";

/// Every generated file: path relative to the root, and content.
pub fn generate(root: &Path) -> Result<Vec<(PathBuf, String)>, Error> {
    let dir = Path::new(REFERENCE_DIR);
    Ok(vec![
        (dir.join("configuration.md"), config_ref::render(root)?),
        (
            dir.join("diagnostics.md"),
            diagnostics_ref::render(Lang::En),
        ),
        (
            dir.join("diagnostics.de.md"),
            diagnostics_ref::render(Lang::De),
        ),
        (dir.join("metrics.md"), metrics_ref::render(root)?),
        (dir.join("plugin-abi.md"), abi_ref::render(root)?),
    ])
}

/// Writes the files; returns the ones whose content changed.
pub fn write(root: &Path, files: &[(PathBuf, String)]) -> Result<Vec<PathBuf>, Error> {
    let mut changed = Vec::new();
    for (rel, content) in files {
        let path = root.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, content).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        changed.push(rel.clone());
    }
    Ok(changed)
}

/// Compares the files with the checked-in copies; returns one summary per differing file
/// (empty when everything is current).
pub fn check(root: &Path, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, content) in files {
        match std::fs::read_to_string(root.join(rel)) {
            Err(_) => problems.push(format!("{}: missing", rel.display())),
            Ok(current) if current == *content => {}
            Ok(current) => problems.push(format!(
                "{}: out of date\n{}",
                rel.display(),
                diff_summary(&current, content)
            )),
        }
    }
    // Files in the directory that nothing generates any more.
    if let Ok(entries) = std::fs::read_dir(root.join(REFERENCE_DIR)) {
        for entry in entries.flatten() {
            let rel = Path::new(REFERENCE_DIR).join(entry.file_name());
            if !files.iter().any(|(p, _)| *p == rel) {
                problems.push(format!(
                    "{}: not generated any more; delete it",
                    rel.display()
                ));
            }
        }
    }
    problems
}

/// A short line diff: counts, and the first few changed lines of each side.
pub fn diff_summary(old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let prefix = old_lines
        .iter()
        .zip(&new_lines)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old_lines[prefix..]
        .iter()
        .rev()
        .zip(new_lines[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let removed = &old_lines[prefix..old_lines.len() - suffix];
    let added = &new_lines[prefix..new_lines.len() - suffix];
    let mut out = format!(
        "  lines {}–{}: {} checked in, {} generated\n",
        prefix + 1,
        prefix + removed.len().max(added.len()),
        removed.len(),
        added.len()
    );
    const SHOWN: usize = 6;
    for line in removed.iter().take(SHOWN) {
        out.push_str(&format!("  - {}\n", shorten(line)));
    }
    if removed.len() > SHOWN {
        out.push_str(&format!("  - … {} more\n", removed.len() - SHOWN));
    }
    for line in added.iter().take(SHOWN) {
        out.push_str(&format!("  + {}\n", shorten(line)));
    }
    if added.len() > SHOWN {
        out.push_str(&format!("  + … {} more\n", added.len() - SHOWN));
    }
    out
}

fn shorten(line: &str) -> String {
    const MAX: usize = 160;
    if line.chars().count() > MAX {
        let cut: String = line.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_summary_names_the_changed_lines() {
        let s = diff_summary("a\nb\nc\nd\n", "a\nB\nx\nd\n");
        assert!(s.contains("lines 2–3: 2 checked in, 2 generated"), "{s}");
        assert!(s.contains("  - b\n  - c\n  + B\n  + x\n"), "{s}");
    }
}
