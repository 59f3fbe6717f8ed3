//! The `calpump` binary with a Graph profile against the in-process simulator: `sync` of a room
//! list into the recorder sink equals the simulator's truth; after changes the next syncs make
//! it equal again through delta requests (no calendarView re-reads), a few `$batch`es in all.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use calpump_plugin::{EventKey, GlobalObjectId};
use calpump_simulator::control::Protocol;
use calpump_simulator::{EventChange, NewEvent, SimConfig, Simulator, catalogue};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CALPUMP_GRAPH_E2E_SECRET", catalogue::GRAPH_APP_SECRET)
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

async fn sync(dir: &Path) {
    let out = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || run(&dir, &["sync"])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out));
}

fn truth_keys(sim: &Simulator, rooms: &[String]) -> BTreeSet<String> {
    let (start, end) = sim.window();
    let mut keys = BTreeSet::new();
    for room in rooms {
        // The route's window: [today-1d, today+15d) in whole days; the simulator's anchor is
        // today 00:00 UTC.
        for t in sim
            .control()
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
async fn graph_sync_of_a_room_list_equals_the_truth_before_and_after_changes() {
    let sim = Simulator::start(SimConfig {
        rooms: 30,
        events_per_room: 16,
        seed: 5,
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

[profiles.cloud]
backend = "graph"
tenant = "{tenant}"
client_id = "{client}"
client_secret = {{ env = "CALPUMP_GRAPH_E2E_SECRET" }}
authority = "{authority}"
graph_url = "{graph}"

[sinks.rec]
plugin = "recorder"
dir = "rec"

[[routes]]
name = "rooms"
profile = "cloud"
room_lists = ["Building 1"]
window = {{ past_days = 1, future_days = 14 }}
sinks = ["rec"]
"#,
        plugins = toml::Value::String(plugins.display().to_string()),
        tenant = catalogue::TENANT_DOMAIN,
        client = catalogue::GRAPH_APP_ID,
        authority = sim.authority(),
        graph = sim.graph_url(),
    );
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("config");
    let dir = tmp.path().to_path_buf();
    let check = run(&dir, &["check"]);
    assert!(check.status.success(), "{}", text(&check));

    // 1. Full sync: 30 rooms in two $batches.
    sync(&dir).await;
    let rooms: Vec<String> = (1..=30)
        .map(|n| format!("room-1.{n:02}@contoso.com"))
        .collect();
    let content = common::recorder_content(&dir.join("rec"));
    let have: BTreeSet<String> = content.keys().cloned().collect();
    assert_eq!(have, truth_keys(&sim, &rooms), "first sync");
    let c = sim.control();
    let stats = c.stats();
    assert_eq!(stats.operation(Protocol::Graph, "calendarView"), 30);
    assert_eq!(stats.operation(Protocol::Graph, "batch"), 2);

    // 2. Changes: a renamed single, a cancelled occurrence, a deleted event, a new event.
    let (start, end) = sim.window();
    let t = c
        .truth(&rooms[0], Some("Calendar"), start, end)
        .expect("truth");
    let single = t
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("single");
    let renamed_key = EventKey::derive(
        &rooms[0],
        &GlobalObjectId::from_hex(&single.goid).expect("goid"),
        None,
    )
    .expect("key")
    .as_str()
    .to_string();
    c.change_event(
        &rooms[0],
        &single.goid,
        None,
        &EventChange {
            subject: Some("Renamed through Graph".into()),
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
    let at = start + chrono::Duration::days(3) + chrono::Duration::hours(10);
    let new: NewEvent = serde_json::from_value(serde_json::json!({
        "subject": "Booked after the first sync", "start": at, "end": at + chrono::Duration::hours(1)
    }))
    .expect("new event");
    c.create_event(&rooms[3], &new).expect("create");
    c.reset_stats();

    // 3. The next syncs (the first starts the delta rounds, the second follows the links) make
    //    the sink equal again without one calendarView.
    sync(&dir).await;
    let have: BTreeSet<String> = common::recorder_content(&dir.join("rec"))
        .into_keys()
        .collect();
    assert_eq!(have, truth_keys(&sim, &rooms), "after the changes");
    let more = c
        .truth(&rooms[4], Some("Calendar"), start, end)
        .expect("truth");
    let another = more
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("single");
    c.delete_event(&rooms[4], &another.goid).expect("delete");
    sync(&dir).await;
    let after = common::recorder_content(&dir.join("rec"));
    let have: BTreeSet<String> = after.keys().cloned().collect();
    assert_eq!(have, truth_keys(&sim, &rooms), "after a delta round");
    assert_ne!(
        content.get(&renamed_key),
        after.get(&renamed_key),
        "the renamed event's content changed"
    );
    let stats = c.stats();
    assert_eq!(
        stats.operation(Protocol::Graph, "calendarView"),
        0,
        "no full re-read"
    );
    assert_eq!(stats.operation(Protocol::Graph, "calendarView.delta"), 60);
    assert!(
        stats.operation(Protocol::Graph, "batch") <= 6,
        "{:?}",
        stats.by_operation
    );
    let deltas = common::recorder_batches(&dir.join("rec"))
        .iter()
        .filter(|b| b["kind"] == "delta")
        .count();
    assert!(deltas >= 1, "changes arrived as deltas");
    sim.shutdown().await;
}
