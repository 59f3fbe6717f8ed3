//! The fidelity proof: the Python EWS client `exchangelib` (from PyPI, not ours) connects with
//! Basic auth and impersonation (and NTLM), lists room lists and rooms, reads a room's calendar
//! view for a week and gets exactly the occurrences `/_sim/truth` names; it also reads the EWS
//! URL through SOAP Autodiscover. When exchangelib disagrees with the simulator, the simulator is
//! wrong.
//!
//! The venv lives in the target directory (`CARGO_TARGET_TMPDIR/ews-pyvenv`) and is created on
//! first use: `python3 -m venv`, `pip install exchangelib` (wheels from `/opt/wheels` if present,
//! else PyPI). A missing `python3` or a failed install fails the test: it never skips.
#![allow(clippy::unwrap_used)] // tests may unwrap

use calpump_simulator::{Protocol, SimConfig, Simulator, catalogue};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ews-pyvenv");
        let py = dir.join("bin/python");
        let ready = |py: &Path| {
            Command::new(py)
                .args(["-c", "import exchangelib, requests_ntlm"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ready(&py) {
            let st = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .expect("python3 is needed for the exchangelib fidelity test");
            assert!(st.success(), "python3 -m venv failed");
            let mut pip = Command::new(dir.join("bin/pip"));
            pip.args(["install", "--quiet", "--disable-pip-version-check"]);
            if Path::new("/opt/wheels").is_dir() {
                pip.args(["--find-links", "/opt/wheels"]);
            }
            let st = pip.arg("exchangelib").status().expect("pip runs");
            assert!(st.success(), "pip install exchangelib failed");
            assert!(ready(&py), "exchangelib does not import after install");
        }
        py
    })
    .clone()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ews_exchangelib.py")
}

fn cfg() -> SimConfig {
    SimConfig {
        rooms: 12,
        events_per_room: 32,
        users: 10,
        seed: 5,
        anchor: "2025-06-02T00:00:00Z".parse().ok(),
        ..SimConfig::default()
    }
}

async fn run(sim: &Simulator, user: &str, auth: &str, autodiscover: bool) -> Value {
    let py = venv();
    let (from, _) = sim.window();
    let start = from + chrono::Duration::days(1);
    let end = start + chrono::Duration::days(7);
    let out = tokio::process::Command::new(py)
        .arg(script())
        .env("SIM_BASE", sim.base_url())
        .env("SIM_USER", user)
        .env("SIM_PASS", catalogue::ACCOUNT_PASSWORD)
        .env("SIM_AUTH", auth)
        .env(
            "SIM_START",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .env(
            "SIM_END",
            end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .env(
            "SIM_CHECK_AUTODISCOVER",
            if autodiscover { "1" } else { "0" },
        )
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or("");
    let v: Value = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!("no JSON from the script\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    assert!(
        out.status.success() && v["ok"] == true,
        "exchangelib disagrees with the simulator: {v}\nstderr:\n{stderr}"
    );
    eprintln!("exchangelib ({auth}): {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_basic_auth_with_impersonation_reads_exactly_the_truth() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let v = run(&sim, catalogue::SVC_PUMP, "basic", true).await;
    assert!(v["instances"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert!(v["kinds"]["Occurrence"].as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(v["autodiscover_ews_url"], sim.ews_url());
    // The requests were counted, with the room as mailbox, and exchangelib anchored them.
    let stats = sim.control().stats();
    assert!(stats.operation(Protocol::Ews, "FindItem") >= 1);
    assert!(stats.operation(Protocol::Ews, "GetItem") >= 1);
    assert!(stats.operation(Protocol::Ews, "GetRoomLists") >= 1);
    let room = v["room"].as_str().unwrap_or_default().to_string();
    let log = calpump_simulator::ews::settings(sim.control()).requests();
    assert!(log.iter().any(|r| r.operation == "FindItem"
        && r.impersonated.as_deref() == Some(room.as_str())
        && r.anchor_mailbox.as_deref() == Some(room.as_str())
        && r.auth == "basic"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_ntlm_with_impersonation_reads_exactly_the_truth() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let v = run(&sim, "CONTOSO\\svc-pump", "ntlm", false).await;
    assert!(v["instances"].as_u64().unwrap_or(0) >= 10, "{v}");
    let log = calpump_simulator::ews::settings(sim.control()).requests();
    assert!(!log.is_empty() && log.iter().all(|r| r.auth == "ntlm"));
    sim.shutdown().await;
}
