//! A route of rooms read through the Graph source into a collector equal to the simulator's
//! truth; after changes made through the control API, incremental syncs make it equal again,
//! with delta requests, not full re-reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calpump_engine::source::{CalendarInfo, Source};
use calpump_simulator::{EventChange, NewEvent};
use chrono::Duration;
use common::{Collector, Cred, assert_equal_to_truth, count, default_targets};
use serde_json::json;

/// The rooms' calendars a route with `calendars = "all"` reads: the default calendar of every
/// room, plus "Maintenance" where a room has one (the first room of each floor).
async fn targets(env: &common::Env, rooms: &[String]) -> Vec<(String, CalendarInfo)> {
    let mut out = Vec::new();
    for (i, m) in rooms.iter().enumerate() {
        if i % 10 == 0 {
            let calendars = env
                .source
                .calendars(&common::mailbox(m))
                .await
                .expect("calendars");
            assert_eq!(calendars[0].path, "default");
            assert!(
                calendars.iter().any(|c| c.path == "Maintenance"),
                "{calendars:?}"
            );
            out.extend(calendars.into_iter().map(|c| (m.clone(), c)));
        } else {
            out.push((m.clone(), CalendarInfo::default_calendar()));
        }
    }
    out
}

fn new_event(json: serde_json::Value) -> NewEvent {
    serde_json::from_value(json).expect("new event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_rooms_full_then_incremental_equal_the_truth() {
    let env = common::start(200, Cred::Secret).await;
    let rooms = common::rooms(200);
    let window = common::window(&env.sim);
    let targets = targets(&env, &rooms).await;
    assert_eq!(targets.len(), 220);
    let mut collector = Collector::default();

    // 1. Full read: calendarView, batched.
    let before = count(&env.source, "batch");
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(count(&env.source, "batched.calendarView"), 220);
    assert_eq!(count(&env.source, "batched.calendarView.delta"), 0);
    let full_batches = count(&env.source, "batch") - before;
    assert_eq!(
        full_batches, 11,
        "220 calendars whose windows fit in one page: 11 batches of 20"
    );
    assert_eq!(collector.snapshots, 220);

    // 2. Nothing changed: one delta round per calendar starts the change tracking.
    let before = count(&env.source, "batch");
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(count(&env.source, "batched.calendarView.delta"), 220);
    assert_eq!(
        count(&env.source, "batched.event"),
        0,
        "every entry keyed from the cursor"
    );
    assert_eq!(count(&env.source, "batch") - before, 11);

    // 3. Changes through the control API.
    let c = env.sim.control();
    let (a, b, f) = (rooms[3].clone(), rooms[17].clone(), rooms[10].clone()); // f: has "Maintenance"
    let truth_a = c.truth(&a, None, window.start, window.end).unwrap();
    let truth_b = c.truth(&b, None, window.start, window.end).unwrap();
    let truth_f = c.truth(&f, None, window.start, window.end).unwrap();
    let start = window.start + Duration::days(3) + Duration::hours(9);
    // An added single and an added weekly series.
    c.create_event(&a, &new_event(json!({
        "subject": "Added: budget review", "start": start, "end": start + Duration::hours(1),
        "location": "Room A", "time_zone": "Romance Standard Time",
        "attendees": [{"name": "Ann", "address": "ann@contoso.com", "type": "required", "response": "accepted"}]
    }))).unwrap();
    c.create_event(&b, &new_event(json!({
        "subject": "Added: weekly sync", "start": start + Duration::hours(2), "end": start + Duration::hours(3),
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]},
                       "range": {"type": "numbered", "numberOfOccurrences": 6}}
    }))).unwrap();
    // A changed single.
    let single = truth_a
        .iter()
        .find(|t| serde_json::to_value(t.kind).unwrap() == "singleInstance")
        .unwrap();
    c.change_event(
        &a,
        &single.goid,
        None,
        &EventChange {
            subject: Some("Changed subject".into()),
            location: Some("Elsewhere".into()),
            ..EventChange::default()
        },
    )
    .unwrap();
    // A cancelled occurrence and a changed occurrence (→ exception) of a series.
    let occurrences: Vec<_> = truth_b
        .iter()
        .filter(|t| serde_json::to_value(t.kind).unwrap() == "occurrence")
        .collect();
    assert!(
        occurrences.len() >= 2,
        "room {b} has a series in the window"
    );
    c.cancel_occurrence(
        &b,
        &occurrences[0].goid,
        occurrences[0].original_start.unwrap(),
    )
    .unwrap();
    let other = occurrences
        .iter()
        .find(|o| {
            o.goid != occurrences[0].goid || o.original_start != occurrences[0].original_start
        })
        .unwrap();
    c.change_event(
        &b,
        &other.goid,
        other.original_start,
        &EventChange {
            subject: Some("This one moved".into()),
            start: Some(other.start + Duration::minutes(30)),
            end: Some(other.end + Duration::minutes(30)),
            ..EventChange::default()
        },
    )
    .unwrap();
    // A meeting cancelled by its organizer (stays, marked cancelled).
    let to_cancel = truth_f
        .iter()
        .find(|t| serde_json::to_value(t.kind).unwrap() == "singleInstance" && !t.is_cancelled)
        .unwrap();
    c.change_event(
        &f,
        &to_cancel.goid,
        None,
        &EventChange {
            is_cancelled: Some(true),
            ..EventChange::default()
        },
    )
    .unwrap();
    // A move from the default calendar to "Maintenance", and one back.
    let to_move = truth_f
        .iter()
        .find(|t| {
            t.calendar == "Calendar"
                && t.goid != to_cancel.goid
                && serde_json::to_value(t.kind).unwrap() == "singleInstance"
        })
        .unwrap();
    c.move_event(&f, &to_move.goid, "Maintenance").unwrap();
    if let Some(back) = truth_f.iter().find(|t| t.calendar != "Calendar") {
        c.move_event(&f, &back.goid, "Calendar").unwrap();
    }
    // A deleted single and a deleted series.
    let gone = truth_a
        .iter()
        .find(|t| {
            serde_json::to_value(t.kind).unwrap() == "singleInstance" && t.goid != single.goid
        })
        .unwrap();
    c.delete_event(&a, &gone.goid).unwrap();
    let series = truth_a
        .iter()
        .find(|t| serde_json::to_value(t.kind).unwrap() != "singleInstance")
        .unwrap();
    c.delete_event(&a, &series.goid).unwrap();

    // 4. Incremental: the collector equals the truth again, through delta requests only.
    let views = count(&env.source, "batched.calendarView");
    let deltas = count(&env.source, "batched.calendarView.delta");
    let snapshots = collector.snapshots;
    let cursors_before = collector.cursors.clone();
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(
        count(&env.source, "batched.calendarView"),
        views,
        "no full re-read"
    );
    assert_eq!(
        count(&env.source, "batched.calendarView.delta"),
        deltas + 220
    );
    assert_eq!(collector.snapshots, snapshots, "changes arrive as deltas");
    assert!(
        collector.deltas >= 4,
        "deltas for the changed calendars: {}",
        collector.deltas
    );
    // The simulator saw the same.
    let sim_stats = env.sim.control().stats();
    assert_eq!(
        sim_stats
            .by_operation
            .get("graph calendarView")
            .copied()
            .unwrap_or(0),
        220
    );

    // 5. A replay: the sinks took the round but its cursors were never committed (a crash);
    // the same round again changes nothing.
    let mut replay = Collector {
        events: collector.events.clone(),
        cursors: cursors_before,
        ..Collector::default()
    };
    assert_eq!(replay.sync(&env.source, &targets, window).await, 0);
    assert_equal_to_truth(&env.sim, &replay, &targets, window);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credentials_read_and_follow_changes() {
    let env = common::start(20, Cred::Certificate).await;
    let rooms = common::rooms(20);
    let window = common::window(&env.sim);
    let targets = default_targets(&rooms);
    let mut collector = Collector::default();
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(
        count(&env.source, "token"),
        1,
        "one token for the whole sync"
    );
    let start = window.start + Duration::days(2) + Duration::hours(13);
    env.sim.control().create_event(&rooms[5], &new_event(json!({
        "subject": "Signed in with a certificate", "start": start, "end": start + Duration::minutes(45), "is_all_day": false
    }))).unwrap();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert!(
        collector
            .of(&rooms[5])
            .iter()
            .any(|e| e.subject == "Signed in with a certificate")
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_window_starts_a_new_delta_round() {
    let env = common::start(3, Cred::Secret).await;
    let rooms = common::rooms(3);
    let window = common::window(&env.sim);
    let targets = default_targets(&rooms);
    let mut collector = Collector::default();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    let moved = calpump_plugin::Window {
        start: window.start + Duration::days(1),
        end: window.end + Duration::days(1),
    };
    let views = count(&env.source, "batched.calendarView");
    let snapshots = collector.snapshots;
    assert_eq!(collector.sync(&env.source, &targets, moved).await, 0);
    assert_eq!(
        count(&env.source, "batched.calendarView"),
        views,
        "a delta round, not calendarView"
    );
    assert_eq!(
        collector.snapshots,
        snapshots + 3,
        "the new round is a snapshot of the new window"
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, moved);
    for c in collector.cursors.values() {
        assert_eq!(c.window, moved);
    }
    env.sim.shutdown().await;
}

/// A meeting moved out of the window between two incremental syncs leaves the collector (the
/// sign): a timed meeting moved days ahead (delta sends `@removed`), and an all-day event moved
/// to the first date after the window in a zone east of UTC — Graph still lists it (its instants,
/// local midnight in Berlin, begin before the window's end), as an upsert whose canonical dates
/// lie outside the window: it must become a removal of the known instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_moved_out_of_the_window_leaves_the_sign() {
    let env = common::start(3, Cred::Secret).await;
    let rooms = common::rooms(3);
    let window = common::window(&env.sim);
    let targets = default_targets(&rooms);
    let c = env.sim.control();
    let start = window.start + Duration::days(3) + Duration::hours(10);
    let timed = c
        .create_event(
            &rooms[0],
            &new_event(json!({
                "subject": "Moves far ahead", "start": start, "end": start + Duration::minutes(30)
            })),
        )
        .unwrap();
    let last_day = window.end - Duration::days(1);
    let all_day = c
        .create_event(
            &rooms[1],
            &new_event(json!({
                "subject": "All day, moves past the window", "start": last_day, "end": window.end,
                "is_all_day": true, "time_zone": "W. Europe Standard Time"
            })),
        )
        .unwrap();
    let mut collector = Collector::default();
    // Full read, the first delta round, then an incremental round with nothing new.
    for _ in 0..3 {
        assert_eq!(
            collector.sync(&env.source, &targets, window).await,
            0,
            "{:?}",
            collector.errors
        );
    }
    let has = |collector: &Collector, room: &str, subject: &str| {
        collector.of(room).iter().any(|e| e.subject == subject)
    };
    assert!(has(&collector, &rooms[0], "Moves far ahead"));
    assert!(has(&collector, &rooms[1], "All day, moves past the window"));

    let later = window.end + Duration::days(2) + Duration::hours(10);
    let change: calpump_simulator::EventChange =
        serde_json::from_value(json!({"start": later, "end": later + Duration::minutes(30)}))
            .unwrap();
    c.change_event(&rooms[0], &timed.goid, None, &change)
        .unwrap();
    let change: calpump_simulator::EventChange =
        serde_json::from_value(json!({"start": window.end, "end": window.end + Duration::days(1)}))
            .unwrap();
    c.change_event(&rooms[1], &all_day.goid, None, &change)
        .unwrap();
    let deltas = collector.deltas;
    let views = count(&env.source, "batched.calendarView");
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_eq!(
        count(&env.source, "batched.calendarView"),
        views,
        "incremental: delta, not calendarView"
    );
    assert!(collector.deltas > deltas, "the moves came as deltas");
    assert!(
        !has(&collector, &rooms[0], "Moves far ahead"),
        "the timed meeting left the window"
    );
    assert!(
        !has(&collector, &rooms[1], "All day, moves past the window"),
        "the all-day event moved to the day after the window is no longer on the sign: {:?}",
        collector
            .of(&rooms[1])
            .iter()
            .filter(|e| e.all_day && e.subject.starts_with("All day"))
            .map(|e| (e.start, e.end))
            .collect::<Vec<_>>()
    );
    env.sim.shutdown().await;
}

/// Every request calpump sends to Graph asks for immutable ids and UTC times: direct requests
/// and their `@odata.nextLink` pages (101 rooms are two `places` pages of `$top=100`), and
/// every `$batch` sub-request — calendarView and its next page (a room with more instances in
/// the window than calpump's page size), the delta rounds and their `$skiptoken` pages, the
/// `GET events/{id}` completions and the item counts. The simulator logs the `Prefer`
/// preferences each request carried; Graph passes none of the outer `$batch` request's on to
/// its sub-requests, so each one has to carry its own (the envelope itself reads nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graph_request_prefers_immutable_ids_and_utc() {
    use calpump_graph::client::PAGE_SIZE;
    use calpump_simulator::catalogue;

    let env = common::start(101, Cred::Secret).await;
    let log = calpump_simulator::graph::requests(env.sim.control());
    let window = common::window(&env.sim);

    // Discovery: rooms (two pages), a room's calendars (+ their item counts in a $batch), a
    // user's calendar.
    let rooms = env.source.rooms(None).await.expect("rooms");
    assert!(rooms.len() > 100, "two pages of rooms: {}", rooms.len());
    let first = common::room(1, 1);
    let calendars = env
        .source
        .calendars(&common::mailbox(&first))
        .await
        .expect("calendars");
    assert!(calendars.len() > 1, "{calendars:?}");
    env.source
        .resolve_mailbox(catalogue::SVC_PUMP)
        .await
        .expect("a user");

    // A room whose window holds more instances than one page.
    let big = common::room(1, 2);
    let extra = PAGE_SIZE + 10;
    for i in 0..extra {
        let start = window.start + Duration::hours(2) + Duration::minutes(20 * i as i64);
        env.sim
            .control()
            .create_event(
                &big,
                &new_event(json!({
                    "subject": format!("Filler {i}"), "start": start, "end": start + Duration::minutes(15)
                })),
            )
            .unwrap();
    }
    let mut targets: Vec<(String, CalendarInfo)> =
        calendars.into_iter().map(|c| (first.clone(), c)).collect();
    targets.extend(default_targets(&common::rooms(5)[1..]));
    let mut collector = Collector::default();
    // Full read (calendarView, paged), the first delta round (paged), then a round after a new
    // series and a changed single (completions through GET events/{id}).
    for _ in 0..2 {
        assert_eq!(
            collector.sync(&env.source, &targets, window).await,
            0,
            "{:?}",
            collector.errors
        );
    }
    assert!(collector.of(&big).len() > PAGE_SIZE);
    let room3 = common::room(1, 3);
    let start = window.start + Duration::days(2) + Duration::hours(8);
    env.sim.control().create_event(&room3, &new_event(json!({
        "subject": "Added: daily stand-up", "start": start, "end": start + Duration::minutes(15),
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "numberOfOccurrences": 5}}
    }))).unwrap();
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert!(count(&env.source, "batched.event") > 0, "completions ran");

    let requests = log.requests();
    let utc = |r: &calpump_simulator::graph::log::GraphRequestRecord| {
        r.timezone
            .as_deref()
            .is_some_and(|z| z.eq_ignore_ascii_case("UTC"))
    };
    let missing: Vec<_> = requests
        .iter()
        // The `$batch` envelope itself reads nothing; its sub-requests are logged one by one.
        .filter(|r| r.operation != "batch" || r.in_batch)
        .filter(|r| !r.immutable_id || !utc(r))
        .collect();
    assert!(
        missing.is_empty(),
        "requests without Prefer: IdType=\"ImmutableId\" and outlook.timezone=\"UTC\": {missing:#?}"
    );
    assert!(
        requests.iter().all(|r| r.operation != "unrouted"),
        "{requests:#?}"
    );
    // The log covers every kind of request the check is about.
    let next_page = |r: &calpump_simulator::graph::log::GraphRequestRecord| {
        r.query.to_ascii_lowercase().contains("skiptoken=")
    };
    let seen = |op: &str, in_batch: bool, next: bool| {
        requests
            .iter()
            .any(|r| r.operation == op && r.in_batch == in_batch && next_page(r) == next)
    };
    for (op, in_batch, next) in [
        ("places.rooms", false, false),
        ("places.rooms", false, true),
        ("calendars", false, false),
        ("calendar", false, false),
        ("events", true, false),
        ("calendarView", true, false),
        ("calendarView", true, true),
        ("calendarView.delta", true, false),
        ("calendarView.delta", true, true),
        ("event", true, false),
        ("batch", false, false),
    ] {
        assert!(
            seen(op, in_batch, next),
            "no {op} (in $batch: {in_batch}, next page: {next}) in {:#?}",
            requests
                .iter()
                .map(|r| (&r.operation, r.in_batch, &r.query))
                .collect::<Vec<_>>()
        );
    }
    // Collections keep calpump's page size on their next pages too.
    for r in requests
        .iter()
        .filter(|r| r.operation.starts_with("calendarView"))
    {
        assert_eq!(r.max_page_size, Some(PAGE_SIZE), "{r:?}");
    }
    env.sim.shutdown().await;
}
