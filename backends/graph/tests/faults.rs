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
