//! The `calpump` binary with an EWS profile against the in-process simulator: `sync` of a room
//! list into the recorder sink equals the simulator's truth, and again after the simulator
//! changed, cancelled an occurrence of and deleted events.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use calpump_plugin::{EventKey, GlobalObjectId};
use calpump_simulator::{EventChange, SimConfig, Simulator, catalogue};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CALPUMP_EWS_E2E_PW", catalogue::ACCOUNT_PASSWORD)
        .output()
        .expect("run calpump")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn truth_keys(sim: &Simulator, rooms: &[String]) -> BTreeSet<String> {
    let (start, end) = sim.window();
    let mut keys = BTreeSet::new();
    for room in rooms {
        for t in sim
            .control()
            // The route's window: [today-1d, today+15d) (whole days), the simulator's anchor
            // is today 00:00 UTC.
            .truth(
                room,
                Some("Calendar"),
                start,
                end + chrono::Duration::days(1),
            )
            .expect("truth")
        {
            let goid = GlobalObjectId::from_hex(&t.goid).expect("goid");
            let key = EventKey::derive(room, &goid, t.original_start).expect("key");
            keys.insert(key.as_str().to_string());
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_of_a_room_list_equals_the_truth_before_and_after_changes() {
    let sim = Simulator::start(SimConfig {
        rooms: 10,
        events_per_room: 16,
        seed: 3,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let tmp = tempfile::tempdir().expect("tmp");
    let plugins = common::plugin_dir(tmp.path(), &["recorder"]);
    let config = format!(
        r#"[state]
path = "state.db"

[plugins]
dirs = [{plugins}]

[profiles.onprem]
backend = "ews"
url = "{url}"
auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = {{ env = "CALPUMP_EWS_E2E_PW" }} }}
impersonation = true

[sinks.rec]
plugin = "recorder"
dir = "rec"

[[routes]]
name = "rooms"
profile = "onprem"
room_lists = ["building-1@contoso.com"]
window = {{ past_days = 1, future_days = 14 }}
sinks = ["rec"]
"#,
        plugins = toml::Value::String(plugins.display().to_string()),
        url = sim.ews_url(),
    );
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("config");
    let dir = tmp.path().to_path_buf();

    let check = run(&dir, &["check"]);
    assert!(check.status.success(), "{}", text(&check));

    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || run(&dir, &["sync"])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out));
    let rooms: Vec<String> = (1..=10)
        .map(|n| format!("room-1.{n:02}@contoso.com"))
        .collect();
    let have: BTreeSet<String> = common::recorder_content(&dir.join("rec"))
        .into_keys()
        .collect();
    assert_eq!(have, truth_keys(&sim, &rooms), "first sync");

    // Change the tenant: a changed subject, a cancelled occurrence, a deleted event.
    let c = sim.control();
    let (start, end) = sim.window();
    let t = c
        .truth(&rooms[0], Some("Calendar"), start, end)
        .expect("truth");
    let single = t
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("single");
    c.change_event(
        &rooms[0],
        &single.goid,
        None,
        &EventChange {
            subject: Some("Renamed".into()),
            ..EventChange::default()
        },
    )
    .expect("change");
    let t = c
        .truth(&rooms[1], Some("Calendar"), start, end)
        .expect("truth");
    let occ = t
        .iter()
        .find(|t| t.original_start.is_some())
        .expect("occurrence");
    c.cancel_occurrence(&rooms[1], &occ.goid, occ.original_start.expect("start"))
        .expect("cancel");
    let t = c
        .truth(&rooms[2], Some("Calendar"), start, end)
        .expect("truth");
    let gone = t
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("single");
    c.delete_event(&rooms[2], &gone.goid).expect("delete");
    c.reset_stats();

    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || run(&dir, &["sync"])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out));
    let have: BTreeSet<String> = common::recorder_content(&dir.join("rec"))
        .into_keys()
        .collect();
    assert_eq!(have, truth_keys(&sim, &rooms), "after the changes");
    let stats = c.stats();
    assert!(stats.operation(calpump_simulator::control::Protocol::Ews, "SyncFolderItems") >= 10);
    let reread: BTreeSet<String> = stats
        .entries
        .iter()
        .filter(|e| e.operation == "GetItem")
        .filter_map(|e| e.mailbox.clone())
        .collect();
    assert_eq!(reread, rooms[..3].iter().cloned().collect::<BTreeSet<_>>());
    sim.shutdown().await;
}
