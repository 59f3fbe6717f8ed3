//! Graph backend benchmark: full and incremental sync of N rooms (default 500) against the
//! in-process simulator — wall time and requests per room.
//!
//! `cargo bench -p calpump-graph --bench graph` (env: `ROOMS=500`, `EVENTS=32`, `PARALLEL=1`
//! chunks of 20 calendars in flight — the runner's default for a route of concurrency 8).
//!
//! Phases: a full sync (calendarView), the first incremental sync (starts the delta rounds),
//! an incremental sync after changes in 5 % of the rooms, and one with no changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use calpump_backend_common::stats::StatsSnapshot;
use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{
    CalendarInfo, Cursor, MailboxInfo, MailboxKind, Source, SourceBatch, SyncMessage, SyncOutput,
    SyncRequest,
};
use calpump_graph::GraphSource;
use calpump_plugin::Window;
use calpump_simulator::{NewEvent, SimConfig, Simulator, catalogue};
use tokio::sync::Mutex;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Requests that went over HTTP (not sub-requests inside `$batch`).
fn http(s: &StatsSnapshot) -> u64 {
    s.operations
        .iter()
        .filter(|o| !o.operation.starts_with("batched."))
        .map(|o| o.requests)
        .sum()
}

fn sub(s: &StatsSnapshot) -> u64 {
    s.operations
        .iter()
        .filter(|o| o.operation.starts_with("batched."))
        .map(|o| o.requests)
        .sum()
}

struct Outcome {
    events: usize,
    failed: usize,
}

async fn sync_all(
    source: &Arc<GraphSource>,
    cursors: &Arc<Mutex<Vec<Option<Cursor>>>>,
    rooms: &[String],
    window: Window,
    parallel: usize,
) -> Outcome {
    let requests: Vec<(usize, SyncRequest)> = {
        let cursors = cursors.lock().await;
        rooms
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    i,
                    SyncRequest {
                        route: "bench".into(),
                        mailbox: MailboxInfo {
                            address: m.clone(),
                            name: None,
                            kind: MailboxKind::Room,
                            room_list: None,
                        },
                        calendar: CalendarInfo::default_calendar(),
                        window,
                        cursor: cursors[i].clone(),
                    },
                )
            })
            .collect()
    };
    let chunks: Vec<Vec<(usize, SyncRequest)>> = requests
        .chunks(source.preferred_chunk())
        .map(<[_]>::to_vec)
        .collect();
    let queue = Arc::new(Mutex::new(chunks));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (queue, source, cursors) = (queue.clone(), source.clone(), cursors.clone());
        tasks.spawn(async move {
            let mut outcome = Outcome {
                events: 0,
                failed: 0,
            };
            loop {
                let Some(chunk) = queue.lock().await.pop() else {
                    return outcome;
                };
                let work: Vec<SyncRequest> = chunk.iter().map(|(_, r)| r.clone()).collect();
                let (out, mut rx) = SyncOutput::channel(32);
                let mut messages = Vec::new();
                let drain = async {
                    while let Some(m) = rx.recv().await {
                        messages.push(m);
                    }
                };
                tokio::join!(source.sync(work, out), drain);
                let mut cursors = cursors.lock().await;
                for m in messages {
                    match m {
                        SyncMessage::Batch(_, SourceBatch::Snapshot { events }) => {
                            outcome.events += events.len();
                        }
                        SyncMessage::Batch(_, SourceBatch::Delta { upserts, removals }) => {
                            outcome.events += upserts.len() + removals.len();
                        }
                        SyncMessage::Done(i, Ok(end)) => cursors[chunk[i].0] = end.cursor,
                        SyncMessage::Done(_, Err(e)) => {
                            eprintln!("failed: {e}");
                            outcome.failed += 1;
                        }
                    }
                }
            }
        });
    }
    let mut total = Outcome {
        events: 0,
        failed: 0,
    };
    while let Some(Ok(o)) = tasks.join_next().await {
        total.events += o.events;
        total.failed += o.failed;
    }
    total
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_number("ROOMS", 500);
    let events = env_number("EVENTS", 32);
    let parallel = env_number("PARALLEL", 1);
    let sim = Simulator::start(SimConfig {
        rooms: u32::try_from(n).unwrap_or(500),
        events_per_room: u32::try_from(events).unwrap_or(32),
        users: 10,
        seed: 7,
        cache_mailboxes: n + 64,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut table = toml::Table::new();
    table.insert("tenant".into(), catalogue::TENANT_DOMAIN.into());
    table.insert("client_id".into(), catalogue::GRAPH_APP_ID.into());
    table.insert("client_secret".into(), catalogue::GRAPH_APP_SECRET.into());
    table.insert("authority".into(), sim.authority().into());
    table.insert("graph_url".into(), sim.graph_url().into());
    let secrets = SecretResolver::new(dir.path().join("calpump.key"));
    let source = Arc::new(GraphSource::new("bench", &table, &secrets).expect("source"));
    let rooms: Vec<String> = (0..n)
        .map(|i| format!("room-{}.{:02}@contoso.com", i / 50 + 1, i % 50 + 1))
        .collect();
    let (start, end) = sim.window();
    let window = Window { start, end };
    let cursors = Arc::new(Mutex::new(vec![None; n]));

    println!(
        "Graph backend, {n} rooms × {events} items (window {} days), chunks of {} calendars, {parallel} chunk(s) in flight",
        (end - start).num_days(),
        source.preferred_chunk()
    );
    println!(
        "{:<34} {:>9} {:>8} {:>10} {:>8} {:>9} {:>8}",
        "phase", "wall ms", "HTTP", "HTTP/room", "in batch", "events", "failed"
    );
    for phase in [
        "full sync (calendarView)",
        "incremental: new delta rounds",
        "incremental: 5 % rooms changed",
        "incremental: no changes",
    ] {
        if phase.contains("5 %") {
            for (i, m) in rooms.iter().enumerate().filter(|(i, _)| i % 20 == 0) {
                let at =
                    start + chrono::Duration::days(2) + chrono::Duration::hours(8 + (i % 8) as i64);
                let ev: NewEvent = serde_json::from_value(serde_json::json!({
                    "subject": format!("Bench change {i}"), "start": at, "end": at + chrono::Duration::minutes(30)
                }))
                .expect("event");
                sim.control().create_event(m, &ev).expect("create");
            }
        }
        let before = source.stats();
        let t = Instant::now();
        let outcome = sync_all(&source, &cursors, &rooms, window, parallel).await;
        let wall = t.elapsed();
        let after = source.stats();
        let requests = http(&after) - http(&before);
        println!(
            "{:<34} {:>9} {:>8} {:>10.3} {:>8} {:>9} {:>8}",
            phase,
            wall.as_millis(),
            requests,
            requests as f64 / n as f64,
            sub(&after) - sub(&before),
            outcome.events,
            outcome.failed
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = sim.control().stats();
    println!("simulator saw: {:?}", s.by_operation);
    sim.shutdown().await;
}
