//! `/status` after a mailbox left the route: a typo'd address fails and shows as failing; once
//! the config names the right one, the daemon no longer lists the typo — not from its first
//! answer after the restart, not after the next run — and the state store forgot its row.

mod migrate_support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calpump_engine::state::{SqliteStateStore, StateStore};
use migrate_support as s;
use serde_json::Value;

const GOOD: &str = "room-1.01@contoso.com";
const TYPO: &str = "rom-1.02@contoso.com";
const FIXED: &str = "room-1.02@contoso.com";

fn config(sim: &calpump_simulator::Simulator, mailboxes: &[&str]) -> String {
    let list: Vec<String> = mailboxes.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        r#"[http]
listen = "127.0.0.1:0"

{profiles}
[sinks.signs]
plugin = "doorsign"
out_dir = "signs"
time_zone = "Europe/Berlin"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = [{list}]
interval = "1h"
sinks = ["signs"]
"#,
        profiles = s::profiles(sim),
        list = list.join(", ")
    )
}

fn start_daemon(dir: &Path) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    let mut child = s::command(dir, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn calpump run");
    let collected = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let sink = Arc::clone(&collected);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving http://").nth(1)
                && let Some(addr) = rest.split('/').next()
            {
                let _ = tx.send(addr.to_string());
            }
            sink.lock().expect("lock").push_str(&format!("{line}\n"));
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("daemon did not start: {}", collected.lock().expect("lock")));
    (child, addr.parse().expect("address"), collected)
}

fn stop(mut child: Child, log: &Mutex<String>) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{}", log.lock().expect("lock"));
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("calpump run did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The route's entry of `/status?format=json`.
fn route_status(addr: SocketAddr) -> Value {
    let (code, body) = s::get(addr, "/status?format=json", "application/json");
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).expect("status json");
    doc["routes"][0].clone()
}

fn mailbox<'a>(route: &'a Value, address: &str) -> Option<&'a Value> {
    route["mailboxes"]
        .as_array()?
        .iter()
        .find(|m| m["address"] == address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_fixed_in_the_config_no_longer_shows_as_failing_in_status() {
    let sim = s::simulator(4, 8, 7).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();

    // The typo: the daemon's first run fails the mailbox, and /status says so.
    s::write_config(&dir, &config(&sim, &[GOOD, TYPO]));
    let (child, addr, log) = start_daemon(&dir);
    let mut first = Value::Null;
    s::wait_for(
        "the typo failing in /status",
        Duration::from_secs(60),
        || {
            first = route_status(addr);
            mailbox(&first, TYPO).is_some_and(|m| !m["failing_since"].is_null())
        },
    )
    .await;
    let typo = mailbox(&first, TYPO).expect("typo listed");
    assert!(typo["last_error"]["code"].is_string(), "{typo}");
    let first_run = first["last_run"]["id"].clone();
    assert!(first_run.is_string(), "{first}");
    stop(child, &log);

    // Fixed and restarted: the typo is never listed again, and the next run reads the room.
    s::write_config(&dir, &config(&sim, &[GOOD, FIXED]));
    let (child, addr, log) = start_daemon(&dir);
    let mut now = Value::Null;
    s::wait_for("the next run in /status", Duration::from_secs(60), || {
        now = route_status(addr);
        assert!(
            mailbox(&now, TYPO).is_none(),
            "the removed mailbox is still listed: {now}"
        );
        now["last_run"]["id"] != first_run && now["last_run"]["status"] == "ok"
    })
    .await;
    for address in [GOOD, FIXED] {
        let m = mailbox(&now, address).unwrap_or_else(|| panic!("{address} not listed: {now}"));
        assert!(m["failing_since"].is_null(), "{m}");
        assert!(m["last_success"].is_string(), "{m}");
    }
    stop(child, &log);

    // The state store forgot the row, so a tick of the sinks or another reader sees none.
    let store = SqliteStateStore::open(&dir.join("state.db"))
        .await
        .expect("state");
    let rows: Vec<String> = store
        .mailbox_status(Some("rooms"))
        .await
        .expect("status")
        .into_iter()
        .map(|m| m.mailbox)
        .collect();
    store.close().await;
    assert_eq!(rows, vec![GOOD.to_string(), FIXED.to_string()]);
}
