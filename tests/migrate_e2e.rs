//! The EWS → Graph move end to end, with the real `calpump` binary, the in-process simulator,
//! the machine's PostgreSQL and door-sign pages: a route of 100 rooms syncs through its EWS
//! profile; `migrate verify` is clean; `migrate switch`; the next sync — through Graph, a full
//! read — changes no database row (content hash, `synced_at`, `run_id` all as they were) and
//! rewrites no door-sign file (same inode, mtime and bytes); an event changed in the simulator
//! then arrives through Graph as exactly one updated row; `--back` returns to EWS, again
//! without a row change.
//!
//! Going back reads EWS in full: the cursors EWS kept from before the switch know nothing of
//! what Graph delivered since, so `--back` drops them like a forward switch does — every room
//! read again, nothing duplicated or changed in the sink (SQLite), the switch back in the run
//! history.

mod migrate_support;

use std::collections::BTreeMap;

use calpump_engine::state::{RunKind, SqliteStateStore, StateStore};
use calpump_simulator::EventChange;
use calpump_simulator::control::Protocol;
use migrate_support as s;

/// Every row of `events`: key → (content hash, synced_at, run_id, deleted_at, subject).
fn rows(pg: &s::Postgres) -> BTreeMap<String, Vec<String>> {
    pg.query(
        "SELECT event_key, content_hash, synced_at::text, run_id, coalesce(deleted_at::text, '-'), subject
         FROM events WHERE route = 'rooms' ORDER BY event_key",
    )
    .into_iter()
    .map(|line| {
        let mut parts = line.split('|').map(str::to_string);
        let key = parts.next().unwrap_or_default();
        (key, parts.collect())
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_of_100_rooms_moves_from_ews_to_graph_without_a_row_or_page_changing() {
    let sim = s::simulator(100, 16, 11).await;
    let pg = s::Postgres::create("migrate_e2e");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let clock = (sim.window().0 + chrono::Duration::days(1) + chrono::Duration::hours(10))
        .format("%Y-%m-%dT%H:%M:%SZ");
    let config = format!(
        r#"{profiles}
[sinks.db]
plugin = "database"
url = "{url}"

[sinks.signs]
plugin = "doorsign"
out_dir = "signs"
time_zone = "UTC"
clock = {clock}

# All rooms of both buildings.
[[routes]]
name = "rooms"
profile = "online"   # EWS until the switch
room_lists = ["Building 1", "Building 2"]
window = {{ past_days = 1, future_days = 14 }}
sinks = ["db", "signs"]
"#,
        profiles = s::profiles(&sim),
        url = pg.url(),
    );
    let config_path = s::write_config(&dir, &config);
    let check = s::run(&dir, &["check"]);
    assert!(check.status.success(), "{}", s::text(&check));

    // 1. Through EWS.
    let out = s::run_async(&dir, &["sync"]).await;
    assert!(out.status.success(), "{}", s::text(&out));
    assert!(
        s::text(&out).contains("route rooms (ews): ok — 100 mailboxes"),
        "{}",
        s::text(&out)
    );
    let before = rows(&pg);
    let (start, end) = s::window(&sim);
    let truth: usize = (1..=2)
        .flat_map(|b| (1..=50).map(move |n| format!("room-{b}.{n:02}@contoso.com")))
        .map(|room| {
            sim.control()
                .truth(&room, None, start, end)
                .expect("truth")
                .len()
        })
        .sum();
    assert_eq!(before.len(), truth, "one row per event of the 100 rooms");
    assert!(before.values().all(|r| r[3] == "-"), "no row deleted");
    let signs = dir.join("signs");
    let pages = s::files(&signs);
    assert_eq!(
        pages.keys().filter(|p| p.starts_with("rooms")).count(),
        200,
        "an HTML and a JSON page per room: {:?}",
        pages.keys().take(5).collect::<Vec<_>>()
    );

    // A second sync through EWS, as a control: what does a sync that changes nothing rewrite?
    let out = s::run_async(&dir, &["sync"]).await;
    assert!(out.status.success(), "{}", s::text(&out));
    assert_eq!(rows(&pg), before, "a sync without changes changes no row");
    let control = s::files(&signs);
    let touched: Vec<std::path::PathBuf> = control
        .iter()
        .filter(|(p, v)| pages.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    // Nothing at all, the index included: same inode, mtime and bytes for every file.
    assert!(
        touched.is_empty(),
        "a sync without changes rewrote {touched:?}"
    );
    assert_eq!(control.len(), pages.len(), "no file added or removed");

    // 2. verify: clean, nothing a switch would rewrite.
    let out = s::run_async(
        &dir,
        &[
            "migrate", "verify", "--route", "rooms", "--to", "cloud", "--json",
        ],
    )
    .await;
    let doc = s::json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", s::text(&out));
    assert_eq!(doc["clean"], true);
    assert_eq!(doc["summary"]["compared"], 100);
    assert_eq!(doc["summary"]["current_events"], truth);
    assert_eq!(doc["summary"]["target_events"], truth);
    assert_eq!(
        doc["summary"]["rewrites"],
        0,
        "parity: {}",
        serde_json::to_string_pretty(&doc["mailboxes"].as_array().map(|m| {
            m.iter()
                .filter(|m| !m["rewrites"].as_array().is_none_or(Vec::is_empty))
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
        }))
        .unwrap_or_default()
    );
    let text = s::run_async(
        &dir,
        &["migrate", "verify", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert!(s::text(&text).contains("— clean"), "{}", s::text(&text));
    assert!(
        s::text(&text).contains("✓ 100 mailboxes read alike"),
        "{}",
        s::text(&text)
    );

    // 3. switch: the configuration is re-pointed in place.
    let out = s::run_async(
        &dir,
        &["migrate", "switch", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert!(out.status.success(), "{}", s::text(&out));
    let switched = std::fs::read_to_string(&config_path).expect("config");
    assert_eq!(
        switched,
        config.replace(
            "profile = \"online\"   # EWS until the switch",
            "profile = \"cloud\"   # EWS until the switch"
        ),
        "only the route's profile changed; comments and layout kept"
    );

    // 4. The first sync through Graph reads every calendar in full — and changes nothing.
    sim.control().reset_stats();
    let out = s::run_async(&dir, &["sync"]).await;
    assert!(out.status.success(), "{}", s::text(&out));
    assert!(
        s::text(&out).contains("route rooms (graph): ok — 100 mailboxes"),
        "{}",
        s::text(&out)
    );
    let stats = sim.control().stats();
    assert_eq!(
        stats.operation(calpump_simulator::Protocol::Graph, "calendarView"),
        100,
        "a full read of every room through Graph"
    );
    assert_eq!(
        stats.operation(calpump_simulator::Protocol::Ews, "FindItem"),
        0
    );
    let after = rows(&pg);
    assert_eq!(after.len(), before.len(), "no row added or lost");
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        changed.is_empty(),
        "{} rows changed by the first Graph sync, e.g. {:?}: before {:?} after {:?}",
        changed.len(),
        changed.first(),
        changed.first().and_then(|k| before.get(*k)),
        changed.first().and_then(|k| after.get(*k))
    );
    let pages_after = s::files(&signs);
    let rewritten: Vec<_> = pages_after
        .iter()
        .filter(|(p, v)| pages.get(*p) != Some(*v))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        rewritten.is_empty(),
        "door-sign files rewritten: {rewritten:?}"
    );
    for (p, (_, _, bytes)) in &pages_after {
        assert_eq!(&pages[p].2, bytes, "{}: content unchanged", p.display());
    }
    assert_eq!(pages_after.len(), pages.len());

    // The switch is in the run history; the EWS cursors are kept, Graph starts fresh.
    let state = SqliteStateStore::open(&dir.join("state.db"))
        .await
        .expect("state");
    // …as an event (kind `switch`, a note from → to), not as an error of a run.
    let runs = state.recent_runs(Some("rooms"), 10).await.expect("runs");
    let switches: Vec<_> = runs.iter().filter(|r| r.kind == RunKind::Switch).collect();
    assert_eq!(switches.len(), 1, "{runs:?}");
    assert!(
        switches[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("online (ews) → cloud (graph)")),
        "{runs:?}"
    );
    assert!(
        runs.iter().all(|r| r.errors.is_empty()),
        "no errors: {runs:?}"
    );
    let calendars = state.calendars(Some("rooms")).await.expect("calendars");
    assert_eq!(
        calendars
            .iter()
            .filter(|(k, s)| k.backend == "ews" && s.cursor.is_some())
            .count(),
        100
    );
    assert_eq!(
        calendars
            .iter()
            .filter(|(k, s)| k.backend == "graph" && s.cursor.is_some())
            .count(),
        100
    );
    state.close().await;

    // 5. A change in Exchange arrives through Graph as exactly one updated row.
    let meeting = s::single(&sim, "room-1.07@contoso.com", 2);
    sim.control()
        .change_event(
            "room-1.07@contoso.com",
            &meeting.goid,
            None,
            &EventChange {
                subject: Some("Budget review (moved to Graph)".into()),
                ..EventChange::default()
            },
        )
        .expect("change");
    let out = s::run_async(&dir, &["sync"]).await;
    assert!(out.status.success(), "{}", s::text(&out));
    let changed_rows = rows(&pg);
    let updated: Vec<(&String, &Vec<String>)> = changed_rows
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .collect();
    assert_eq!(changed_rows.len(), after.len());
    assert_eq!(updated.len(), 1, "exactly one row updated: {updated:?}");
    assert_eq!(updated[0].1[4], "Budget review (moved to Graph)");
    assert_ne!(updated[0].1[2], after[updated[0].0][2], "a new run_id");

    // 6. --back: EWS reads in full (its cursors from before the switch are dropped); the change
    // already is in the sinks.
    let out = s::run_async(&dir, &["migrate", "switch", "--route", "rooms", "--back"]).await;
    assert!(out.status.success(), "{}", s::text(&out));
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config"),
        config
    );
    let out = s::run_async(&dir, &["sync"]).await;
    assert!(out.status.success(), "{}", s::text(&out));
    assert!(
        s::text(&out).contains("route rooms (ews): ok"),
        "{}",
        s::text(&out)
    );
    assert_eq!(rows(&pg), changed_rows, "no row changed going back");
    sim.shutdown().await;
}

/// Every row of the SQLite sink's `events`: key → (content hash, synced_at, run_id, deleted_at,
/// subject).
fn sqlite_rows(db: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(
            "SELECT event_key, content_hash, synced_at, run_id, coalesce(deleted_at, '-'), subject
             FROM events WHERE route = 'rooms' ORDER BY event_key",
        )
        .output()
        .expect("sqlite3 runs (apt-get install sqlite3)");
    assert!(out.status.success(), "{}", s::text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let mut parts = line.split('|').map(str::to_string);
            let key = parts.next().unwrap_or_default();
            (key, parts.collect())
        })
        .collect()
}

fn sqlite_value(db: &std::path::Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs");
    assert!(out.status.success(), "{}", s::text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_back_reads_ews_in_full_without_stale_cursors_and_duplicates_nothing() {
    let sim = s::simulator(10, 16, 17).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let rooms = [
        "room-1.01@contoso.com",
        "room-1.02@contoso.com",
        "room-1.03@contoso.com",
        "room-1.04@contoso.com",
    ];
    s::write_config(
        &dir,
        &format!(
            r#"{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

[[routes]]
name = "rooms"
profile = "online"
mailboxes = [{mailboxes}]
sinks = ["db"]
"#,
            profiles = s::profiles(&sim),
            mailboxes = rooms
                .iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let db = dir.join("db.sqlite");
    let sync = |via: &'static str| {
        let dir = dir.clone();
        async move {
            let out = s::run_async(&dir, &["sync"]).await;
            assert!(out.status.success(), "{}", s::text(&out));
            assert!(
                s::text(&out).contains(&format!("route rooms ({via}): ok")),
                "{}",
                s::text(&out)
            );
        }
    };

    // EWS, then Graph; while on Graph one meeting is renamed and another deleted.
    sync("ews").await;
    let out = s::run_async(
        &dir,
        &["migrate", "switch", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert!(out.status.success(), "{}", s::text(&out));
    sync("graph").await;
    let renamed = s::single(&sim, rooms[1], 0);
    let deleted = s::single(&sim, rooms[2], 0);
    let c = sim.control();
    c.change_event(
        rooms[1],
        &renamed.goid,
        None,
        &EventChange {
            subject: Some("Renamed while on Graph".into()),
            ..EventChange::default()
        },
    )
    .expect("rename");
    c.delete_event(rooms[2], &deleted.goid).expect("delete");
    sync("graph").await;
    let on_graph = sqlite_rows(&db);
    assert!(
        on_graph
            .values()
            .any(|r| r[4] == "Renamed while on Graph" && r[3] == "-"),
        "the rename arrived through Graph"
    );

    // Back to EWS: its cursors from before the switch are dropped, the switch is recorded.
    let out = s::run_async(
        &dir,
        &["migrate", "switch", "--route", "rooms", "--back", "--json"],
    )
    .await;
    assert!(out.status.success(), "{}", s::text(&out));
    let doc = s::json(&out);
    assert_eq!(doc["back"], true, "{doc:#}");
    assert_eq!(doc["to"]["backend"], "ews");
    assert_eq!(doc["moved"]["calendars"], rooms.len(), "{doc:#}");
    assert_eq!(doc["moved"]["cursors_dropped"], rooms.len(), "{doc:#}");
    let state = SqliteStateStore::open(&dir.join("state.db"))
        .await
        .expect("state");
    let calendars = state.calendars(Some("rooms")).await.expect("calendars");
    let ews: Vec<_> = calendars
        .iter()
        .filter(|(k, _)| k.backend == "ews")
        .collect();
    assert_eq!(ews.len(), rooms.len());
    assert!(
        ews.iter().all(|(_, st)| st.cursor.is_none()),
        "no stale EWS cursor survives --back: {ews:?}"
    );
    for (key, st) in &ews {
        let graph = calendars
            .iter()
            .find(|(k, _)| k.backend == "graph" && k.mailbox == key.mailbox)
            .map(|(_, st)| st.event_count);
        assert_eq!(
            Some(st.event_count),
            graph,
            "the guard's count is Graph's: {key:?}"
        );
    }
    let switches = state
        .history(
            Some("rooms"),
            calpump_engine::state::HistoryFilter::Kind(RunKind::Switch),
            10,
        )
        .await
        .expect("switches");
    assert_eq!(switches.len(), 2, "{switches:?}");
    let note = switches[0].note.as_deref().unwrap_or_default();
    assert!(
        note.contains("route rooms switched back: cloud (graph) → online (ews)")
            && note.contains("the next sync reads in full"),
        "{note}"
    );
    assert_eq!(
        switches[0].data.as_ref().map(|d| d["back"].clone()),
        Some(true.into())
    );
    state.close().await;

    // The next sync through EWS reads every room in full and changes nothing in the sink.
    c.reset_stats();
    sync("ews").await;
    for room in rooms {
        assert!(
            s::count(&sim, Protocol::Ews, "FindItem", room) >= 1,
            "{room} read in full through EWS"
        );
    }
    let back = sqlite_rows(&db);
    let changed: Vec<&String> = back
        .iter()
        .filter(|(k, v)| on_graph.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert!(changed.is_empty(), "rows changed going back: {changed:?}");
    assert_eq!(back.len(), on_graph.len(), "no row added");
    assert_eq!(
        sqlite_value(
            &db,
            "SELECT count(*) FROM (SELECT mailbox, global_object_id, coalesce(original_start, '')
             FROM events WHERE deleted_at IS NULL GROUP BY 1, 2, 3 HAVING count(*) > 1)"
        ),
        "0",
        "no meeting twice"
    );
    let (start, end) = s::window(&sim);
    let truth: usize = rooms
        .iter()
        .map(|r| c.truth(r, None, start, end).expect("truth").len())
        .sum();
    assert_eq!(
        sqlite_value(&db, "SELECT count(*) FROM events WHERE deleted_at IS NULL"),
        truth.to_string(),
        "the sink holds the tenant, the deleted meeting soft-deleted"
    );

    // From the new cursors EWS is incremental again: one change, one row, one room read.
    let later = s::single(&sim, rooms[3], 1);
    c.change_event(
        rooms[3],
        &later.goid,
        None,
        &EventChange {
            subject: Some("Renamed back on EWS".into()),
            ..EventChange::default()
        },
    )
    .expect("rename");
    c.reset_stats();
    sync("ews").await;
    let after = sqlite_rows(&db);
    let updated: Vec<&Vec<String>> = after
        .iter()
        .filter(|(k, v)| back.get(*k) != Some(*v))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0][4], "Renamed back on EWS");
    for room in &rooms[..3] {
        assert_eq!(
            s::count(&sim, Protocol::Ews, "FindItem", room),
            0,
            "{room} unchanged: not read again"
        );
    }
    sim.shutdown().await;
}
