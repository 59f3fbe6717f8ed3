//! Shadow mode: a route on its EWS profile names a Graph `shadow_profile`. `calpump run` syncs
//! the route through EWS into its sink, then reads it through both and compares; the difference
//! count shows in `/metrics` (`calpump_shadow_differences{route}`) and `/status`, and nothing
//! read through the shadow reaches the sink or the state store.
//!
//! The shadow is the scoped app (Building 1 only), so a room of Building 2 is unreadable through
//! it; and a subject changed between the comparison's EWS read and its Graph read of a room (a
//! latency fault holds that Graph read) is one difference.

mod migrate_support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calpump_engine::state::{SqliteStateStore, StateStore};
use calpump_simulator::control::Protocol;
use calpump_simulator::{EventChange, Fault, FaultRule};
use migrate_support as s;
use serde_json::Value;

fn start_daemon(dir: &std::path::Path) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    let mut child = s::command(dir, &["run"])
        .stdout(Stdio::piped())
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

fn sqlite(db: &std::path::Path, sql: &str) -> Vec<String> {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs (apt-get install sqlite3)");
    assert!(out.status.success(), "{}", s::text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_counts_differences_in_metrics_and_status_and_writes_nothing_from_the_shadow() {
    let sim = s::simulator(60, 16, 41).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    s::write_config(
        &dir,
        &format!(
            r#"[http]
listen = "127.0.0.1:0"

{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

[[routes]]
name = "rooms"
profile = "online"
shadow_profile = "scoped"
mailboxes = ["room-1.01@contoso.com", "room-1.02@contoso.com", "room-2.01@contoso.com"]
interval = "1h"
sinks = ["db"]
"#,
            profiles = s::profiles(&sim)
        ),
    );
    let check = s::run(&dir, &["check"]);
    assert!(check.status.success(), "{}", s::text(&check));
    let room = "room-1.01@contoso.com";
    let renamed = s::single(&sim, room, 0);
    // A normal meeting (a private one is shown as `(private)`, see below).
    sim.control()
        .change_event(
            room,
            &renamed.goid,
            None,
            &EventChange {
                sensitivity: Some(calpump_simulator::tenant::model::Sensitivity::Normal),
                ..EventChange::default()
            },
        )
        .expect("normal");
    sim.control().add_fault(FaultRule {
        protocol: Some(Protocol::Graph),
        mailbox: Some(room.into()),
        operation: Some("calendarView".into()),
        count: Some(1),
        in_batch: None,
        fault: Fault::Latency { ms: 3000 },
    });

    let (mut child, addr, log) = start_daemon(&dir);
    // The comparison's Graph read of the room has begun (its EWS reads are done): rename.
    s::wait_for("the shadow's Graph read", Duration::from_secs(60), || {
        s::count(&sim, Protocol::Graph, "calendarView", room) >= 1
    })
    .await;
    sim.control()
        .change_event(
            room,
            &renamed.goid,
            None,
            &EventChange {
                subject: Some("Renamed while the shadow read".into()),
                ..EventChange::default()
            },
        )
        .expect("change");

    let mut status = Value::Null;
    s::wait_for(
        "the shadow comparison in /status",
        Duration::from_secs(60),
        || {
            let (code, body) = s::get(addr, "/status?format=json", "application/json");
            if code != 200 {
                return false;
            }
            status = serde_json::from_str(&body).unwrap_or(Value::Null);
            !status["routes"][0]["shadow"]["last"].is_null()
        },
    )
    .await;
    let shadow = &status["routes"][0]["shadow"];
    assert_eq!(shadow["profile"], "scoped", "{shadow:#}");
    let last = &shadow["last"];
    assert_eq!(last["clean"], false, "{last:#}");
    assert_eq!(last["differences"], 1, "{last:#}");
    assert_eq!(last["changed"], 1);
    assert_eq!(last["only_in_profile"], 0);
    assert_eq!(last["only_in_shadow"], 0);
    assert_eq!(last["unreadable_shadow"], 1);
    assert_eq!(last["unreadable_profile"], 0);
    assert_eq!(last["mailboxes_compared"], 2);
    let per_mailbox = last["mailbox_differences"].as_array().expect("mailboxes");
    let m = per_mailbox
        .iter()
        .find(|m| m["mailbox"] == room)
        .unwrap_or_else(|| panic!("{room} not listed: {last:#}"));
    assert_eq!(m["changed"][0]["subject"], renamed.subject.as_str());
    assert_eq!(m["changed"][0]["fields"][0]["field"], "subject");
    assert_eq!(
        m["changed"][0]["fields"][0]["target"],
        "Renamed while the shadow read"
    );
    let scoped_out = per_mailbox
        .iter()
        .find(|m| m["mailbox"] == "room-2.01@contoso.com")
        .expect("room-2.01 listed");
    assert_eq!(
        scoped_out["shadow_errors"][0]["code"],
        "graph.MailboxOutOfScope"
    );

    let (code, metrics) = s::get(addr, "/metrics", "text/plain");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("calpump_shadow_differences{route=\"rooms\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calpump_shadow_unreadable_mailboxes{route=\"rooms\"} 1"),
        "{metrics}"
    );
    let (code, page) = s::get(addr, "/status", "text/html");
    assert_eq!(code, 200);
    assert!(page.contains("<th>shadow</th>"), "{page}");
    assert!(page.contains("1 differences"), "{page}");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("calpump run did not stop: {}", log.lock().expect("lock"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", log.lock().expect("lock"));
    let log = log.lock().expect("lock").clone();
    assert!(log.contains("shadow comparison found differences"), "{log}");
    assert!(log.contains("sync.ShadowDifferences"), "{log}");

    // Nothing from the shadow reached the sink: one run of three batches (one per room), every
    // row read through EWS; the room the shadow could not read is in the sink all the same.
    let db = dir.join("db.sqlite");
    assert_eq!(
        sqlite(&db, "SELECT count(*), sum(batches) FROM runs"),
        ["1|3"],
        "the sink saw the route's own run only"
    );
    assert_eq!(
        sqlite(&db, "SELECT DISTINCT source_backend FROM events"),
        ["ews"]
    );
    let (start, end) = s::window(&sim);
    let truth: usize = [
        "room-1.01@contoso.com",
        "room-1.02@contoso.com",
        "room-2.01@contoso.com",
    ]
    .iter()
    .map(|r| {
        sim.control()
            .truth(r, None, start, end)
            .expect("truth")
            .len()
    })
    .sum();
    assert_eq!(
        sqlite(&db, "SELECT count(*) FROM events WHERE deleted_at IS NULL"),
        [truth.to_string()],
        "the sink holds what EWS read before the rename"
    );
    assert_eq!(
        sqlite(
            &db,
            &format!(
                "SELECT subject FROM events WHERE mailbox = '{room}' AND global_object_id = '{}'",
                renamed.goid
            )
        ),
        [renamed.subject.as_str()],
    );
    // … and nothing to the state store: cursors and index of the route's own backend only.
    let state = SqliteStateStore::open(&dir.join("state.db"))
        .await
        .expect("state");
    let calendars = state.calendars(Some("rooms")).await.expect("calendars");
    assert_eq!(calendars.len(), 3, "{calendars:?}");
    assert!(
        calendars
            .iter()
            .all(|(k, s)| k.backend == "ews" && s.cursor.is_some())
    );
    let runs = state.recent_runs(Some("rooms"), 10).await.expect("runs");
    assert_eq!(runs.len(), 1, "one run: the shadow comparison is not a run");
    state.close().await;
    sim.shutdown().await;
}

/// A private meeting that the shadow reads differently is in `/status` (JSON and HTML) and in
/// the log without its subject, organizer or location: `(private)`. A normal meeting's subject
/// is still shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_differences_of_private_meetings_show_no_subject_in_status_or_log() {
    use calpump_simulator::tenant::model::{Person, Sensitivity};
    let sim = s::simulator(20, 16, 43).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    s::write_config(
        &dir,
        &format!(
            r#"[http]
listen = "127.0.0.1:0"

{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

[[routes]]
name = "rooms"
profile = "online"
shadow_profile = "cloud"
mailboxes = ["room-1.01@contoso.com", "room-1.02@contoso.com"]
interval = "1h"
sinks = ["db"]
"#,
            profiles = s::profiles(&sim)
        ),
    );
    let room = "room-1.01@contoso.com";
    let c = sim.control();
    // Two meetings made private (one confidential) with text that must not leak, one normal.
    let renamed = s::single(&sim, room, 0);
    let hidden = s::single(&sim, room, 1);
    let normal = (2..)
        .map(|i| s::single(&sim, room, i))
        .find(|t| t.sensitivity == Sensitivity::Normal)
        .expect("a normal meeting");
    for (meeting, subject, sensitivity) in [
        (&renamed, "Salary talk Ann Example", Sensitivity::Private),
        (
            &hidden,
            "Medical leave Bob Example",
            Sensitivity::Confidential,
        ),
    ] {
        c.change_event(
            room,
            &meeting.goid,
            None,
            &EventChange {
                subject: Some(subject.into()),
                location: Some("Office of Carol Example".into()),
                sensitivity: Some(sensitivity),
                organizer: Some(Person {
                    name: "Dave Example".into(),
                    address: "dave.example@contoso.com".into(),
                }),
                ..EventChange::default()
            },
        )
        .expect("make private");
    }
    // Only through EWS: the confidential one; only through Graph: the normal one.
    c.hide_event(room, &hidden.goid, Protocol::Graph)
        .expect("hide from Graph");
    c.hide_event(room, &normal.goid, Protocol::Ews)
        .expect("hide from EWS");
    // The private one is renamed between the comparison's EWS and Graph reads.
    c.add_fault(FaultRule {
        protocol: Some(Protocol::Graph),
        mailbox: Some(room.into()),
        operation: Some("calendarView".into()),
        count: Some(1),
        in_batch: None,
        fault: Fault::Latency { ms: 3000 },
    });

    let (mut child, addr, log) = start_daemon(&dir);
    s::wait_for("the shadow's Graph read", Duration::from_secs(60), || {
        s::count(&sim, Protocol::Graph, "calendarView", room) >= 1
    })
    .await;
    c.change_event(
        room,
        &renamed.goid,
        None,
        &EventChange {
            subject: Some("Salary talk Ann Example (moved)".into()),
            ..EventChange::default()
        },
    )
    .expect("rename");

    let mut status = Value::Null;
    let mut body = String::new();
    s::wait_for(
        "the shadow comparison in /status",
        Duration::from_secs(60),
        || {
            let (code, text) = s::get(addr, "/status?format=json", "application/json");
            if code != 200 {
                return false;
            }
            status = serde_json::from_str(&text).unwrap_or(Value::Null);
            body = text;
            !status["routes"][0]["shadow"]["last"].is_null()
        },
    )
    .await;
    let last = &status["routes"][0]["shadow"]["last"];
    assert_eq!(last["clean"], false, "{last:#}");
    assert_eq!(
        (
            last["changed"].as_u64(),
            last["only_in_profile"].as_u64(),
            last["only_in_shadow"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{last:#}"
    );
    let m = last["mailbox_differences"]
        .as_array()
        .and_then(|l| l.iter().find(|m| m["mailbox"] == room))
        .unwrap_or_else(|| panic!("{room} not listed: {last:#}"));
    let changed = &m["changed"][0];
    assert_eq!(changed["subject"], "(private)", "{changed:#}");
    assert_eq!(changed["private"], true);
    assert_eq!(changed["fields"][0]["field"], "subject");
    assert_eq!(changed["fields"][0]["current"], "(private)");
    assert_eq!(changed["fields"][0]["target"], "(private)");
    assert_eq!(m["only_in_profile"][0]["subject"], "(private)");
    // A normal meeting keeps its subject.
    assert_eq!(m["only_in_shadow"][0]["subject"], normal.subject.as_str());
    assert!(m["only_in_shadow"][0].get("private").is_none());
    let (code, page) = s::get(addr, "/status", "text/html");
    assert_eq!(code, 200);
    assert!(page.contains("(private)"), "{page}");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Ok(Some(exit)) = child.try_wait() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("calpump run did not stop: {}", log.lock().expect("lock"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{}", log.lock().expect("lock"));
    let log = log.lock().expect("lock").clone();
    assert!(log.contains("shadow comparison found differences"), "{log}");
    for secret in ["Salary", "Medical", "Carol", "Dave", "dave.example"] {
        assert!(!body.contains(secret), "`{secret}` in /status: {body}");
        assert!(
            !page.contains(secret),
            "`{secret}` on the status page: {page}"
        );
        assert!(!log.contains(secret), "`{secret}` in the log: {log}");
    }
    sim.shutdown().await;
}
