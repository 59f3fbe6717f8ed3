//! Fidelity: a third-party Graph client (Python `requests`, in a venv under `target/`) pages
//! through calendarView and calendarView/delta of a room and must get exactly `/_sim/truth`.
#![allow(clippy::unwrap_used)]

mod common;

use calpump_simulator::catalogue;
use std::path::PathBuf;
use std::process::Command;

/// `target/sim-pyenv` with `requests` installed (created once, then reused).
fn venv() -> PathBuf {
    // The test binary lives in target/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("sim-pyenv");
    let python = dir.join("bin").join("python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import requests"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ready {
        let st = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 must be installed");
        assert!(st.success(), "python3 -m venv failed");
        let st = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "requests"])
            .status()
            .expect("pip must run");
        assert!(st.success(), "pip install requests failed");
    }
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_client_sees_the_truth_through_calendar_view_and_delta() {
    let sim = common::start().await;
    let python = venv();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/graph_fidelity.py");
    for room in ["room-1.02@contoso.com", "room-1.01@contoso.com"] {
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .args([
                sim.base_url(),
                catalogue::TENANT_DOMAIN,
                catalogue::GRAPH_APP_ID,
                catalogue::GRAPH_APP_SECRET,
                room,
                "2025-06-01T00:00:00Z",
                "2025-06-16T00:00:00Z",
            ])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{room}: script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(stdout.starts_with("OK "), "{stdout}");
        eprintln!("{room}: {stdout}");
    }
    // The client really went through the simulator's Graph: token + pages were counted.
    let st = sim.control().stats();
    assert!(st.operation(calpump_simulator::Protocol::Graph, "calendarView") >= 4);
    assert!(st.operation(calpump_simulator::Protocol::Graph, "calendarView.delta") >= 4);
    assert_eq!(st.operation(calpump_simulator::Protocol::Token, "token"), 2);
    sim.shutdown().await;
}
