//! The real `calpump` binary with Graph profiles against the in-process simulator, into the
//! database sink (SQLite), rows read back through the sink's reader and compared field by field
//! with the simulator's truth (mapped to the canonical model as `tests/parity.rs` maps it).
//!
//! - client credentials with a secret and with a certificate (the simulator's fixture key pair);
//! - a route of 200 rooms (four room lists, all calendars) equal to the truth; after adds,
//!   changes, cancelled occurrences, moves between calendars and deletes, an incremental sync
//!   makes it equal again through delta requests — not one calendarView;
//! - injected 429 (with and without `Retry-After`, on the `$batch` and inside it), 503, 410,
//!   truncated and junk JSON and an HTML page: each sync finishes equal to the truth or fails
//!   with the catalogue's code in `--json`, the failed mailboxes untouched; with the fault gone
//!   the next sync makes everything equal — nothing lost, nothing doubled;
//! - the request budget: a full sync of 200 rooms in about 200/20 `$batch`es plus a token, and
//!   a sync without changes in one delta request per room, batched.

#[path = "common/binary.rs"]
mod binary;

use std::collections::BTreeSet;
use std::time::Duration;

use binary::*;
use calpump_simulator::{Fault, FaultRule, Protocol, SimConfig, catalogue};
use serde_json::json;

fn sim(rooms: u32, seed: u64) -> Env {
    Env::start(SimConfig {
        rooms,
        events_per_room: 16,
        users: 4,
        seed,
        ..SimConfig::default()
    })
}

/// The `[profiles.source]` body of a Graph profile (`secret` or `certificate`).
fn profile(env: &Env, credential: &str) -> String {
    let credential = match credential {
        "secret" => format!(
            "client_secret = {}",
            env.secret("graph-secret", catalogue::GRAPH_APP_SECRET)
        ),
        "certificate" => format!(
            "certificate = {}\nprivate_key = {}",
            env.file("graph-app.pem", catalogue::GRAPH_APP_CERT_PEM),
            env.secret("graph-app.key", catalogue::GRAPH_APP_KEY_PEM)
        ),
        other => panic!("unknown credential {other}"),
    };
    format!(
        "backend = \"graph\"\ntenant = {tenant}\nclient_id = {id}\n{credential}\nauthority = {authority}\ngraph_url = {graph}\n",
        tenant = q(catalogue::TENANT_DOMAIN),
        id = q(catalogue::GRAPH_APP_ID),
        authority = q(env.sim.authority()),
        graph = q(&env.sim.graph_url()),
    )
}

/// A route over the first `lists` room lists.
fn lists_route(lists: u32, calendars: &str) -> String {
    let names: Vec<String> = (1..=lists).map(|b| q(&format!("Building {b}"))).collect();
    format!(
        "room_lists = [{}]\ncalendars = \"{calendars}\"\nwindow = {{ past_days = 1, future_days = 14 }}\n",
        names.join(", ")
    )
}

fn all_rooms(lists: u32) -> Vec<String> {
    (1..=lists).flat_map(|b| rooms(b, 50)).collect()
}

fn credential(name: &str) {
    let env = sim(5, 51);
    let rooms: Vec<String> = ["room-1.01", "room-1.02", "room-1.05"]
        .iter()
        .map(|r| format!("{r}@contoso.com"))
        .collect();
    let dir = env.dir(name, &profile(&env, name), &mailboxes_route(&rooms, "all"));
    let check = dir.run(&["check"]);
    assert!(
        check.status.success(),
        "{name}: check\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let run = dir.sync_ok(name);
    assert_eq!(run.calendars(), 4, "three defaults and Maintenance");
    let n = assert_sink_equals_truth(name, &env, &dir, &rooms, run.window(), true);
    assert!(n >= 30, "{name}: only {n} events");
    let stats = env.stats();
    assert_eq!(
        stats.operation(Protocol::Token, "token"),
        1,
        "{name}: one token for the run: {:?}",
        stats.by_operation
    );
    // Incremental with the same credential: a new event arrives.
    let at = env.sim.window().0 + chrono::Duration::days(2) + chrono::Duration::hours(13);
    env.control()
        .create_event(
            &rooms[2],
            &new_event(json!({
                "subject": format!("Booked, read with a {name}"),
                "start": at, "end": at + chrono::Duration::minutes(45)
            })),
        )
        .expect("create");
    for stage in ["delta round starts", "delta round follows"] {
        let run = dir.sync_ok(&format!("{name}: {stage}"));
        assert_sink_equals_truth(
            &format!("{name}: {stage}"),
            &env,
            &dir,
            &rooms,
            run.window(),
            true,
        );
    }
    eprintln!(
        "{name}: {n} events equal to the truth; last sync {:?}",
        run.took
    );
    env.shutdown();
}

#[test]
fn client_credentials_with_a_secret() {
    credential("secret");
}

#[test]
fn client_credentials_with_a_certificate() {
    credential("certificate");
}

/// 200 rooms with all their calendars; changes of every kind; delta requests only.
#[test]
fn route_of_200_rooms_then_incremental_after_changes_and_moves() {
    let env = sim(200, 53);
    let rooms = all_rooms(4);
    let c = env.control();
    let at = env.sim.window().0 + chrono::Duration::days(3) + chrono::Duration::hours(9);
    // An event in a sub-calendar, to be moved to the default calendar later.
    let r211 = "room-2.11@contoso.com";
    let back = c
        .create_event(
            r211,
            &new_event(json!({
                "subject": "In Maintenance, for now", "calendar": "Maintenance",
                "start": at, "end": at + chrono::Duration::hours(1)
            })),
        )
        .expect("create in Maintenance");
    let dir = env.dir(
        "two-hundred",
        &profile(&env, "secret"),
        &lists_route(4, "all"),
    );
    let run = dir.sync_ok("full sync");
    let window = run.window();
    assert_eq!(
        run.calendars(),
        220,
        "200 default calendars and 20 Maintenance"
    );
    let n = assert_sink_equals_truth("full sync", &env, &dir, &rooms, window, true);
    assert!(n > 200 * 10, "only {n} events");
    eprintln!(
        "Graph full sync of 200 rooms (220 calendars): {n} events in {:?}",
        run.took
    );
    // The next sync starts the delta rounds.
    let run = dir.sync_ok("second sync");
    assert_sink_equals_truth("second sync", &env, &dir, &rooms, window, true);
    eprintln!("Graph second sync (delta rounds start): {:?}", run.took);

    // Adds, changes, cancelled occurrences, moves both ways, deletes.
    let r101 = "room-1.01@contoso.com";
    let moved = single(&env, r101, 0);
    c.move_event(r101, &moved.goid, "Maintenance")
        .expect("move to Maintenance");
    c.move_event(r211, &back.goid, "Calendar")
        .expect("move back to Calendar");
    let r104 = "room-1.04@contoso.com";
    c.create_event(
        r104,
        &new_event(json!({
            "subject": "Added: Budget <Q3> & more", "location": "Room 1.04 — window side",
            "start": at, "end": at + chrono::Duration::minutes(45),
            "time_zone": "Pacific Standard Time", "sensitivity": "private", "show_as": "tentative",
            "categories": ["Red category"], "online": true,
            "attendees": [
                {"name": "Ann", "address": "ann@contoso.com", "type": "required", "response": "accepted"},
                {"name": "Bob", "address": "bob@contoso.com", "type": "optional", "response": "declined"}
            ]
        })),
    )
    .expect("create");
    c.create_event(
        "room-4.50@contoso.com",
        &new_event(json!({
            "subject": "Added all-day", "is_all_day": true, "time_zone": "Tokyo Standard Time",
            "start": at - chrono::Duration::hours(9), "end": at + chrono::Duration::hours(39),
        })),
    )
    .expect("create all-day");
    let r208 = "room-2.08@contoso.com";
    let s = single(&env, r208, 1);
    c.change_event(
        r208,
        &s.goid,
        None,
        &change(json!({
            "subject": "Changed in 2.08", "location": "Elsewhere", "categories": ["Blue category"],
            "show_as": "oof", "sensitivity": "confidential",
            "start": s.start + chrono::Duration::minutes(30), "end": s.end + chrono::Duration::minutes(60),
            "attendees": [{"name": "Carla", "address": "carla@contoso.com", "type": "required", "response": "tentativelyAccepted"}]
        })),
    )
    .expect("change");
    for r in ["room-3.12@contoso.com", "room-1.30@contoso.com"] {
        let o = occurrence(&env, r);
        c.cancel_occurrence(r, &o.goid, o.original_start.expect("original start"))
            .expect("cancel occurrence");
    }
    let r317 = "room-3.17@contoso.com";
    let o = occurrence(&env, r317);
    c.change_event(
        r317,
        &o.goid,
        o.original_start,
        &change(json!({
            "subject": "This one moved (exception)",
            "start": o.start + chrono::Duration::minutes(45), "end": o.end + chrono::Duration::minutes(45)
        })),
    )
    .expect("exception");
    let r419 = "room-4.19@contoso.com";
    c.delete_event(r419, &single(&env, r419, 0).goid)
        .expect("delete");
    let r423 = "room-4.23@contoso.com";
    c.delete_event(r423, &occurrence(&env, r423).goid)
        .expect("delete series");
    let r425 = "room-4.25@contoso.com";
    c.change_event(
        r425,
        &single(&env, r425, 0).goid,
        None,
        &change(json!({"is_cancelled": true})),
    )
    .expect("cancel meeting");

    c.reset_stats();
    let run = dir.sync_ok("incremental sync");
    assert_sink_equals_truth("incremental sync", &env, &dir, &rooms, window, true);
    let stats = env.stats();
    eprintln!(
        "Graph incremental sync of 200 rooms: {:?}, {} requests: {:?}",
        run.took, stats.total, stats.by_operation
    );
    assert_eq!(
        stats.operation(Protocol::Graph, "calendarView"),
        0,
        "no calendarView re-read: {:?}",
        stats.by_operation
    );
    let deltas = stats.operation(Protocol::Graph, "calendarView.delta");
    assert!(
        deltas >= run.calendars(),
        "one delta request per calendar at least: {deltas} for {}",
        run.calendars()
    );
    assert!(
        deltas <= run.calendars() + 20,
        "delta requests beyond one per calendar and a few pages: {deltas}"
    );
    assert_eq!(
        mailboxes_of(&stats, Protocol::Graph, "calendarView.delta"),
        rooms.iter().cloned().collect::<BTreeSet<_>>(),
        "every room asked for its changes"
    );
    let moved_row = dir
        .live(&[r101.to_string()])
        .into_values()
        .find(|e| e.subject == moved.subject && e.start == moved.start)
        .expect("the moved event is live");
    assert_eq!(
        moved_row.calendar, "Maintenance",
        "a move is an upsert in the new calendar"
    );
    env.shutdown();
}

/// `$batch`es per sync of 200 rooms (default calendars): the full read, the first delta round,
/// a sync without changes.
#[test]
fn request_budget_of_200_rooms() {
    let env = sim(200, 55);
    let rooms = all_rooms(4);
    let dir = env.dir(
        "budget",
        &profile(&env, "secret"),
        &lists_route(4, "default"),
    );
    let c = env.control();
    c.reset_stats();
    let run = dir.sync_ok("full sync");
    assert_sink_equals_truth("full sync", &env, &dir, &rooms, run.window(), false);
    let stats = env.stats();
    let batches = stats.operation(Protocol::Graph, "batch");
    let tokens = stats.operation(Protocol::Token, "token");
    eprintln!(
        "budget, full sync of 200 rooms: {batches} batches, {tokens} tokens, {} requests in all (sub-requests counted): {:?}, {:?}",
        stats.total, stats.by_operation, run.took
    );
    assert!(
        batches + tokens <= 15,
        "full sync: {batches} batches + {tokens} tokens: {:?}",
        stats.by_operation
    );
    assert_eq!(stats.operation(Protocol::Graph, "calendarView"), 200);

    c.reset_stats();
    let run = dir.sync_ok("first delta round");
    assert_sink_equals_truth("first delta round", &env, &dir, &rooms, run.window(), false);
    let stats = env.stats();
    eprintln!(
        "budget, first delta round: {} batches, {:?}, {:?}",
        stats.operation(Protocol::Graph, "batch"),
        stats.by_operation,
        run.took
    );
    assert!(stats.operation(Protocol::Graph, "batch") <= 10);
    assert_eq!(stats.operation(Protocol::Graph, "calendarView"), 0);

    c.reset_stats();
    let before = dir.rows(&rooms);
    let run = dir.sync_ok("sync without changes");
    let stats = env.stats();
    let batches = stats.operation(Protocol::Graph, "batch");
    eprintln!(
        "budget, sync without changes: {batches} batches, {:?}, {:?}",
        stats.by_operation, run.took
    );
    assert!(batches <= 10, "{batches} batches: {:?}", stats.by_operation);
    assert_eq!(
        stats.operation(Protocol::Graph, "calendarView.delta"),
        200,
        "one delta request per room"
    );
    assert_eq!(stats.operation(Protocol::Graph, "calendarView"), 0);
    assert_eq!(
        stats.operation(Protocol::Graph, "event"),
        0,
        "no completion reads"
    );
    assert_eq!(
        dir.rows(&rooms),
        before,
        "a sync without changes writes nothing"
    );
    env.shutdown();
}

// ---- Faults ----

fn fault_rooms() -> Vec<String> {
    ["room-1.02", "room-1.03", "room-1.04"]
        .iter()
        .map(|r| format!("{r}@contoso.com"))
        .collect()
}

/// The full read, the delta round that starts, the delta round that follows the link — each
/// with the fault — then the recovery.
fn scenario(env: &Env, name: &str, rules: &[FaultRule], expect: Expect) -> Vec<Run> {
    let dir = env.dir(
        name,
        &profile(env, "secret"),
        &mailboxes_route(&fault_rooms(), "default"),
    );
    fault_scenario(
        env,
        &dir,
        name,
        &fault_rooms(),
        &["full", "delta round starts", "delta round follows"],
        rules,
        expect,
    )
}

fn graph(fault: Fault) -> FaultRule {
    FaultRule::new(fault).protocol(Protocol::Graph)
}

#[test]
fn throttling_429_and_503_are_waited_out() {
    let env = sim(5, 57);
    let runs = scenario(
        &env,
        "429-retry-after",
        &[graph(Fault::Throttle {
            status: 429,
            retry_after: Some(1),
        })
        .operation("batch")
        .in_batch(false)
        .count(1)],
        Expect::Finishes,
    );
    for run in &runs[..3] {
        assert!(run.took >= Duration::from_secs(1), "Retry-After honoured");
    }
    scenario(
        &env,
        "429",
        &[graph(Fault::Throttle {
            status: 429,
            retry_after: None,
        })
        .operation("batch")
        .in_batch(false)
        .count(2)],
        Expect::Finishes,
    );
    let runs = scenario(
        &env,
        "429-inside-batch",
        &[
            graph(Fault::Throttle {
                status: 429,
                retry_after: Some(1),
            })
            .in_batch(true)
            .mailbox("room-1.02@contoso.com")
            .count(1),
            graph(Fault::Throttle {
                status: 429,
                retry_after: None,
            })
            .in_batch(true)
            .mailbox("room-1.03@contoso.com")
            .count(2),
        ],
        Expect::Finishes,
    );
    for run in &runs[..3] {
        assert!(
            run.took >= Duration::from_secs(1),
            "Retry-After honoured inside $batch"
        );
    }
    scenario(
        &env,
        "503",
        &[graph(Fault::Throttle {
            status: 503,
            retry_after: None,
        })
        .operation("batch")
        .in_batch(false)
        .count(1)],
        Expect::Finishes,
    );
    env.shutdown();
}

#[test]
fn cut_off_junk_and_html_answers() {
    let env = sim(5, 58);
    scenario(
        &env,
        "truncated-json",
        &[graph(Fault::TruncatedBody)
            .operation("batch")
            .in_batch(false)
            .count(2)],
        Expect::Finishes,
    );
    scenario(
        &env,
        "junk-json",
        &[graph(Fault::MalformedBody)
            .operation("batch")
            .in_batch(false)
            .count(1)],
        Expect::Finishes,
    );
    scenario(
        &env,
        "html-once",
        &[graph(Fault::HtmlLoginPage)
            .operation("batch")
            .in_batch(false)
            .count(1)],
        Expect::Either(&["http.HtmlInsteadOfApi"]),
    );
    // Every time: every mailbox of the batch fails with the diagnostic naming the URL and the
    // page; nothing of theirs changes.
    let runs = scenario(
        &env,
        "html-always",
        &[graph(Fault::HtmlLoginPage)
            .operation("batch")
            .in_batch(false)],
        Expect::FailsWith(&["http.HtmlInsteadOfApi"]),
    );
    for run in &runs[..3] {
        let failed: BTreeSet<String> = run.error_codes().into_iter().map(|(m, _)| m).collect();
        assert_eq!(
            failed,
            fault_rooms().into_iter().collect(),
            "{}",
            run.show()
        );
        assert!(
            run.stdout.contains("$batch"),
            "the URL is named:\n{}",
            run.show()
        );
    }
    env.shutdown();
}

/// A delta token the service no longer knows (410 `syncStateNotFound`): that calendar is read
/// in full again, the others continue their rounds; the sink equals the truth.
#[test]
fn a_410_reads_the_calendar_in_full_again() {
    let env = sim(5, 59);
    let rooms = fault_rooms();
    let dir = env.dir(
        "410",
        &profile(&env, "secret"),
        &mailboxes_route(&rooms, "default"),
    );
    let c = env.control();
    dir.sync_ok("full sync");
    dir.sync_ok("delta round starts");
    for round in 1..=2 {
        change_every_room(&env, &rooms, round);
        c.add_fault(
            graph(Fault::SyncStateNotFound)
                .operation("calendarView.delta")
                .mailbox(&rooms[1])
                .count(1),
        );
        c.reset_stats();
        let run = dir.sync();
        let stage = format!("410, round {round}");
        judge(
            &stage,
            &env,
            &dir,
            &rooms,
            &run,
            Expect::Finishes,
            &dir.rows(&[]),
        );
        assert!(c.faults().is_empty(), "{stage}: the 410 was met");
        let stats = env.stats();
        assert_eq!(
            mailboxes_of(&stats, Protocol::Graph, "calendarView"),
            BTreeSet::from([rooms[1].clone()]),
            "{stage}: only the calendar with the lost token is read in full: {:?}",
            stats.by_operation
        );
        eprintln!(
            "{stage}: warnings {:?}, {:?}",
            run.warning_codes(),
            run.took
        );
    }
    let run = dir.sync_ok("after the 410s");
    assert_sink_equals_truth("after the 410s", &env, &dir, &rooms, run.window(), false);
    env.shutdown();
}

/// `[state] keep_runs` and `keep_days` reach the state store the binary opens: with
/// `keep_runs = 2, keep_days = 0` five syncs leave the route's two newest runs; with the
/// defaults (100 runs, 14 days) all five stay. The events are untouched either way.
#[test]
fn state_retention_settings_take_effect() {
    let env = sim(2, 57);
    let rooms: Vec<String> = ["room-1.01", "room-1.02"]
        .iter()
        .map(|r| format!("{r}@contoso.com"))
        .collect();
    let route = mailboxes_route(&rooms, "default");
    let runs_left = |dir: &Dir| -> u64 {
        let out = std::process::Command::new("sqlite3")
            .arg(dir.path.join("state.db"))
            .arg("select count(*) from runs where kind = 'sync' and route = 'rooms'")
            .output()
            .expect("sqlite3 runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a count")
    };
    let pruned = env.dir("retention", &profile(&env, "secret"), &route);
    let config = pruned.path.join("calpump.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "path = \"state.db\"",
        "path = \"state.db\"\nkeep_runs = 2\nkeep_days = 0",
        1,
    );
    std::fs::write(&config, text).expect("config");
    let kept = env.dir("defaults", &profile(&env, "secret"), &route);
    for n in 1..=5 {
        pruned.sync_ok(&format!("pruned sync {n}"));
        kept.sync_ok(&format!("default sync {n}"));
    }
    assert_eq!(runs_left(&pruned), 2, "keep_runs = 2");
    assert_eq!(runs_left(&kept), 5, "the defaults keep them");
    assert_eq!(pruned.live(&rooms), kept.live(&rooms), "events untouched");
    assert!(!pruned.live(&rooms).is_empty());
    env.shutdown();
}
