//! Injected faults: throttling (with and without `Retry-After`, on the batch and inside it),
//! 503, 410, cut-off and junk bodies, an HTML page. The sync completes or fails with the
//! catalogue's diagnostic; afterwards the collector equals the truth — nothing lost, nothing
//! doubled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use calpump_simulator::{Fault, FaultRule, NewEvent, Protocol};
use chrono::Duration;
use common::{Collector, Cred, assert_equal_to_truth, count, default_targets};
use serde_json::json;

fn throttles(source: &calpump_graph::GraphSource, op: &str) -> u64 {
    source.stats().op(op).map_or(0, |o| o.throttles)
}

fn retries(source: &calpump_graph::GraphSource, op: &str) -> u64 {
    source.stats().op(op).map_or(0, |o| o.retries)
}

/// Adds an event so the next delta round has something to carry.
fn add_event(env: &common::Env, mailbox: &str, subject: &str) {
    let window = common::window(&env.sim);
    let start = window.start + Duration::days(4) + Duration::hours(10);
    let ev: NewEvent = serde_json::from_value(json!({
        "subject": subject, "start": start, "end": start + Duration::minutes(30)
    }))
    .unwrap();
    env.sim.control().create_event(mailbox, &ev).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_inside_and_outside_batch_is_waited_out() {
    let env = common::start(30, Cred::Secret).await;
    let rooms = common::rooms(30);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    let c = env.sim.control();
    let mut collector = Collector::default();

    // 429 with Retry-After inside the 200 of a $batch (three sub-requests of room 2).
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: Some(1),
        })
        .protocol(Protocol::Graph)
        .operation("calendarView")
        .mailbox(&rooms[2])
        .in_batch(true)
        .count(2),
    );
    // 429 without Retry-After inside the batch, another room.
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: None,
        })
        .protocol(Protocol::Graph)
        .operation("calendarView")
        .mailbox(&rooms[25])
        .in_batch(true)
        .count(2),
    );
    // 429 on the $batch request itself.
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: Some(1),
        })
        .protocol(Protocol::Graph)
        .operation("batch")
        .in_batch(false)
        .count(1),
    );
    let started = Instant::now();
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(throttles(&env.source, "batched.calendarView"), 4);
    assert_eq!(
        retries(&env.source, "batched.calendarView"),
        4,
        "only the failed items went again"
    );
    assert_eq!(throttles(&env.source, "batch"), 1);
    assert_eq!(count(&env.source, "batched.calendarView"), 30 + 4);
    assert!(c.faults().is_empty(), "every injected fault was hit");

    // 503 without Retry-After inside the batch of a delta round.
    c.add_fault(
        FaultRule::new(Fault::ServerError { status: 503 })
            .protocol(Protocol::Graph)
            .operation("calendarView.delta")
            .mailbox(&rooms[7])
            .in_batch(true)
            .count(2),
    );
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(retries(&env.source, "batched.calendarView.delta"), 2);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_that_never_ends_fails_only_its_mailbox() {
    let env = common::start(5, Cred::Secret).await;
    let rooms = common::rooms(5);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    let c = env.sim.control();
    let id = c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: None,
        })
        .protocol(Protocol::Graph)
        .mailbox(&rooms[1])
        .in_batch(true),
    );
    let mut collector = Collector::default();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 1);
    let (mailbox, _, error) = &collector.errors[0];
    assert_eq!(mailbox, &rooms[1]);
    assert_eq!(error.code(), "graph.Throttled");
    assert!(error.retryable);
    assert!(
        !collector
            .cursors
            .contains_key(&(rooms[1].clone(), "default".into())),
        "no cursor for the failed calendar"
    );
    // The others are in.
    let others: Vec<_> = targets
        .iter()
        .filter(|(m, _)| m != &rooms[1])
        .cloned()
        .collect();
    assert_equal_to_truth(&env.sim, &collector, &others, window);
    c.remove_fault(id);
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_is_dropped_and_the_window_read_again() {
    let env = common::start(6, Cred::Secret).await;
    let rooms = common::rooms(6);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    let c = env.sim.control();
    let mut collector = Collector::default();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    add_event(&env, &rooms[4], "After the reset");
    c.add_fault(
        FaultRule::new(Fault::SyncStateNotFound)
            .protocol(Protocol::Graph)
            .operation("calendarView.delta")
            .mailbox(&rooms[4])
            .count(1),
    );
    let views = count(&env.source, "batched.calendarView");
    let snapshots = collector.snapshots;
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_eq!(
        count(&env.source, "batched.calendarView"),
        views + 1,
        "one full read, of that room"
    );
    assert_eq!(collector.snapshots, snapshots + 1);
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert!(
        collector
            .of(&rooms[4])
            .iter()
            .any(|e| e.subject == "After the reset")
    );
    // The room is back on delta rounds afterwards.
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_eq!(count(&env.source, "batched.calendarView"), views + 1);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_and_junk_answers_are_retried() {
    let env = common::start(8, Cred::Secret).await;
    let rooms = common::rooms(8);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    let c = env.sim.control();
    let mut collector = Collector::default();
    c.add_fault(
        FaultRule::new(Fault::TruncatedBody)
            .protocol(Protocol::Graph)
            .operation("batch")
            .count(1),
    );
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    c.add_fault(
        FaultRule::new(Fault::MalformedBody)
            .protocol(Protocol::Graph)
            .operation("batch")
            .count(1),
    );
    add_event(&env, &rooms[3], "Through junk");
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(retries(&env.source, "batch"), 2);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_stay_broken_fail_with_their_diagnostic_and_lose_nothing() {
    let env = common::start(8, Cred::Secret).await;
    let rooms = common::rooms(8);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    let c = env.sim.control();
    let mut collector = Collector::default();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    add_event(&env, &rooms[2], "Behind the proxy");

    // A sign-in page where the API should answer: not retried, every calendar fails with it.
    let id = c.add_fault(
        FaultRule::new(Fault::HtmlLoginPage)
            .protocol(Protocol::Graph)
            .operation("batch"),
    );
    let held = collector.events.clone();
    assert_eq!(collector.sync(&env.source, &targets, window).await, 8);
    assert!(
        collector
            .errors
            .iter()
            .all(|(_, _, e)| e.code() == "http.HtmlInsteadOfApi"),
        "{:?}",
        collector.errors
    );
    assert_eq!(collector.events, held, "nothing applied");
    assert_eq!(
        retries(&env.source, "batch"),
        0,
        "an HTML page is not retried"
    );
    c.remove_fault(id);

    // A body cut off every time: retried, then `proto.Malformed`.
    let id = c.add_fault(
        FaultRule::new(Fault::TruncatedBody)
            .protocol(Protocol::Graph)
            .operation("batch"),
    );
    assert_eq!(collector.sync(&env.source, &targets, window).await, 8);
    assert!(
        collector
            .errors
            .iter()
            .all(|(_, _, e)| e.code() == "proto.Malformed"),
        "{:?}",
        collector.errors
    );
    assert_eq!(collector.events, held);
    c.remove_fault(id);

    // Healthy again: the cursors never moved, the change arrives, nothing twice.
    assert_eq!(collector.sync(&env.source, &targets, window).await, 0);
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(
        collector
            .of(&rooms[2])
            .iter()
            .filter(|e| e.subject == "Behind the proxy")
            .count(),
        1
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_token_endpoint_is_waited_out() {
    let env = common::start(3, Cred::Secret).await;
    let rooms = common::rooms(3);
    let targets = default_targets(&rooms);
    let window = common::window(&env.sim);
    env.sim.control().add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: Some(1),
        })
        .protocol(Protocol::Token)
        .count(1),
    );
    let mut collector = Collector::default();
    assert_eq!(
        collector.sync(&env.source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    assert_equal_to_truth(&env.sim, &collector, &targets, window);
    assert_eq!(throttles(&env.source, "token"), 1);
    env.sim.shutdown().await;
}

/// `calendarView` sub-requests of one mailbox's default calendar (distinct URLs).
fn views(env: &common::Env, mailbox: &str, n: usize) -> Vec<calpump_graph::client::SubRequest> {
    let window = common::window(&env.sim);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (0..n)
        .map(|i| {
            let start = fmt(window.start + Duration::hours(i as i64));
            let end = fmt(window.end);
            calpump_graph::client::SubRequest {
                op: "calendarView",
                mailbox: Some(mailbox.to_string()),
                url: calpump_graph::GraphClient::relative(
                    &["users", mailbox, "calendar", "calendarView"],
                    &[("startDateTime", &start), ("endDateTime", &end)],
                ),
                page: true,
                what: format!("calendarView {i} of {mailbox}"),
            }
        })
        .collect()
}

/// Two routes share the profile's source: their `$batch`es for the same mailbox must not put
/// more than 4 requests in flight on it (a batch holds a permit per sub-request), else Exchange
/// answers 429 ApplicationThrottled ("over its MailboxConcurrency limit").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_batching_one_mailbox_stay_within_its_four_requests() {
    let env = common::start(2, Cred::Secret).await;
    let room = common::room(1, 1);
    let c = env.sim.control();
    c.add_fault(
        FaultRule::new(Fault::Latency { ms: 400 })
            .protocol(Protocol::Graph)
            .operation("calendarView")
            .in_batch(true),
    );
    let a = views(&env, &room, 4);
    let b = views(&env, &room, 4);
    let started = Instant::now();
    let (ra, rb) = tokio::join!(env.source.client().batch(&a), env.source.client().batch(&b));
    for r in ra.iter().chain(&rb) {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        throttles(&env.source, "batched.calendarView"),
        0,
        "no sub-request met the mailbox's concurrency limit"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(800),
        "the second batch waited for the first's permits"
    );
    env.sim.shutdown().await;
}

/// A 429 with `Retry-After` inside a batch halves the mailbox's limit — the next batches carry
/// at most that many of its sub-requests — and pauses the mailbox: a direct request to it
/// waits too, another mailbox does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_mailbox_is_paused_and_its_lowered_limit_reaches_the_batch() {
    let env = common::start(2, Cred::Secret).await;
    let room = common::room(1, 1);
    let other = common::room(1, 2);
    let c = env.sim.control();
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: Some(2),
        })
        .protocol(Protocol::Graph)
        .operation("calendarView")
        .mailbox(&room)
        .in_batch(true)
        .count(1),
    );
    let started = Instant::now();
    let client = env.source.client();
    let batches = count(&env.source, "batch");
    let first = views(&env, &room, 4);
    let direct = |mailbox: String| async move {
        let url = client
            .absolute(&calpump_graph::GraphClient::relative(
                &["users", &mailbox, "calendar"],
                &[],
            ))
            .unwrap();
        client
            .get("calendar", Some(&mailbox), "calendar", &url, false)
            .await
            .map(|_| started.elapsed())
    };
    let (results, (at_room, at_other)) = tokio::join!(client.batch(&first), async {
        // While the mailbox is paused (the first batch answered within ~0.5 s).
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let other_at = direct(other.clone()).await.unwrap();
        let room_at = direct(room.clone()).await.unwrap();
        (room_at, other_at)
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(throttles(&env.source, "batched.calendarView"), 1);
    assert!(
        at_other < std::time::Duration::from_millis(1500),
        "another mailbox is not paused: {at_other:?}"
    );
    assert!(
        at_room >= std::time::Duration::from_secs(2),
        "the paused mailbox's direct request waited for Retry-After: {at_room:?}"
    );
    assert_eq!(count(&env.source, "batch") - batches, 2);
    // The mailbox's limit is now 2: four sub-requests go in two batches.
    let batches = count(&env.source, "batch");
    let second = client.batch(&views(&env, &room, 4)).await;
    assert!(second.iter().all(Result::is_ok));
    assert_eq!(
        count(&env.source, "batch") - batches,
        2,
        "at most the lowered limit per batch"
    );
    env.sim.shutdown().await;
}
