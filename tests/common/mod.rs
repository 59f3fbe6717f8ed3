//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's target directory, from `cargo metadata`.
pub fn target_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
        PathBuf::from(doc["target_directory"].as_str().expect("target_directory"))
    })
    .clone()
}

/// Builds the test plugins as real cdylibs (`cargo test` does not build cdylib targets) into a
/// target directory of their own, and returns the directory holding the libraries.
pub fn test_plugins() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir().join("test-plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "calpump-test-recorder",
                "-p",
                "calpump-test-bad-abi",
                "-p",
                "calpump-test-panicky",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build of the test plugins runs");
        assert!(status.success(), "building the test plugins failed");
        target.join("debug")
    })
    .clone()
}

/// The file name of a cdylib on this platform.
pub fn lib_file(crate_lib_name: &str) -> String {
    if cfg!(target_os = "windows") {
        format!("{crate_lib_name}.dll")
    } else if cfg!(target_os = "macos") {
        format!("lib{crate_lib_name}.dylib")
    } else {
        format!("lib{crate_lib_name}.so")
    }
}

/// A fresh directory holding copies of the named test plugins (`recorder`, `bad_abi`,
/// `panicky`).
pub fn plugin_dir(parent: &Path, plugins: &[&str]) -> PathBuf {
    let built = test_plugins();
    let dir = parent.join("plugins");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    for name in plugins {
        let file = lib_file(&format!("calpump_test_{name}"));
        std::fs::copy(built.join(&file), dir.join(&file)).expect("copy plugin");
    }
    dir
}

/// What the recorder holds: key → content hash.
pub fn recorder_content(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let Ok(bytes) = std::fs::read(dir.join("content.json")) else {
        return Default::default();
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("content.json");
    doc["events"]
        .as_object()
        .expect("events")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["hash"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The batches the recorder logged.
pub fn recorder_batches(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("batches.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("batch line"))
        .collect()
}
