//! Helpers of the `profile_*` and `mailboxes` tests: the real `calpump` binary in a temporary
//! directory, against an in-process simulator.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calpump_simulator::{SimConfig, Simulator, catalogue};

pub const BIN: &str = env!("CARGO_BIN_EXE_calpump");

pub async fn simulator(rooms: u32) -> Simulator {
    Simulator::start(SimConfig {
        rooms,
        events_per_room: 16,
        seed: 9,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// `calpump ARGS` in `dir`, with no locale from the environment (tests pass `--lang`).
pub fn calpump(dir: &Path, args: &[&str]) -> Output {
    calpump_env(dir, args, &[])
}

pub fn calpump_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("LANG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("CALPUMP_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("calpump runs")
}

/// The same from async code.
pub async fn calpump_async(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        calpump(&dir, &args)
    })
    .await
    .expect("join")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn all_output(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A Graph profile for the simulator with the given app and secret.
pub fn graph_profile(sim: &Simulator, name: &str, client_id: &str, secret: &str) -> String {
    format!(
        "[profiles.{name}]\nbackend = \"graph\"\ntenant = \"{}\"\nclient_id = \"{client_id}\"\nclient_secret = {}\nauthority = \"{}\"\ngraph_url = \"{}\"\n",
        catalogue::TENANT_DOMAIN,
        toml_str(secret),
        sim.base_url(),
        sim.graph_url()
    )
}

/// An EWS profile (Basic, impersonation) for the simulator.
pub fn ews_profile(sim: &Simulator, name: &str, user: &str) -> String {
    format!(
        "[profiles.{name}]\nbackend = \"ews\"\nurl = \"{}\"\nauth = {{ kind = \"basic\", username = \"{user}\", password = {} }}\nimpersonation = true\n",
        sim.ews_url(),
        toml_str(catalogue::ACCOUNT_PASSWORD)
    )
}

/// A directory with `calpump.toml` holding `body` after a `[state]` section.
pub fn config_dir(body: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("calpump.toml");
    std::fs::write(&path, format!("[state]\npath = \"state.db\"\n\n{body}")).expect("config");
    (tmp, path)
}
