//! EWS backend benchmark: a full and an incremental sync of 500 rooms against the in-process
//! simulator — wall time, requests per room (as the simulator counted them) and what the
//! incremental run re-read.
//!
//! Run: `cargo bench -p calpump-ews --bench ews` (release build). Optional arguments:
//! `--rooms N` (default 500), `--parallel N` calendars at once (default 8, the route's default
//! concurrency), `--auth basic|ntlm|client_credentials` (default ntlm), `--changed N` rooms
//! changed before the incremental run (default 25).

#[path = "../../backends/ews/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use calpump_engine::source::Source;
use calpump_simulator::control::Protocol;
use calpump_simulator::{EventChange, SimConfig, Simulator};
use common::{Collector, profile_toml, source_from};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn per_room(stats: &calpump_simulator::Stats, rooms: usize) -> String {
    let ops = ["SyncFolderItems", "FindItem", "GetItem"];
    let mut parts: Vec<String> = ops
        .iter()
        .map(|op| {
            format!(
                "{op} {:.2}",
                stats.operation(Protocol::Ews, op) as f64 / rooms as f64
            )
        })
        .collect();
    let ews = stats.by_protocol.get("ews").copied().unwrap_or(0);
    parts.push(format!("all EWS {:.2}", ews as f64 / rooms as f64));
    parts.join(", ")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rooms: u32 = arg("--rooms", "500").parse().unwrap_or(500);
    let parallel: usize = arg("--parallel", "8").parse().unwrap_or(8);
    let auth = arg("--auth", "ntlm");
    let changed: usize = arg("--changed", "25").parse().unwrap_or(25);
    let sim = match Simulator::start(SimConfig {
        rooms,
        seed: 5,
        ..SimConfig::default()
    })
    .await
    {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("simulator: {e}");
            std::process::exit(1);
        }
    };
    let (start, end) = sim.window();
    let win = calpump_plugin::Window { start, end };
    let mut profile = profile_toml(&sim, &auth);
    profile.push_str(&format!("\nmax_concurrency = {parallel}\n"));
    let source: Arc<dyn Source> = Arc::new(source_from(&profile));
    let c = sim.control();

    let t = Instant::now();
    let list = source.rooms(None).await.unwrap_or_default();
    let names: Vec<String> = list.into_iter().map(|r| r.address).collect();
    println!(
        "EWS benchmark: {} rooms, {parallel} calendars at once, auth {auth}; room discovery {:.0} ms",
        names.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );

    c.reset_stats();
    let mut sink = Collector::default();
    let t = Instant::now();
    sink.sync_parallel(&source, &names, win, parallel).await;
    let full = t.elapsed();
    let events: usize = sink.mailboxes.values().map(|m| m.len()).sum();
    let stats = c.stats();
    println!(
        "full sync:        {:>7.2} s, {:>6.1} rooms/s, {events} events, {} errors; requests per room: {}",
        full.as_secs_f64(),
        names.len() as f64 / full.as_secs_f64(),
        sink.errors.len(),
        per_room(&stats, names.len())
    );

    // Change some rooms: one event each.
    for room in names
        .iter()
        .step_by((names.len() / changed.max(1)).max(1))
        .take(changed)
    {
        if let Ok(truth) = c.truth(room, Some("Calendar"), start, end)
            && let Some(t) = truth.iter().find(|t| t.original_start.is_none())
        {
            let _ = c.change_event(
                room,
                &t.goid,
                None,
                &EventChange {
                    subject: Some("Changed for the benchmark".into()),
                    ..EventChange::default()
                },
            );
        }
    }
    c.reset_stats();
    sink.batches_per_mailbox.clear();
    let t = Instant::now();
    sink.sync_parallel(&source, &names, win, parallel).await;
    let incr = t.elapsed();
    let stats = c.stats();
    println!(
        "incremental sync: {:>7.2} s, {:>6.1} rooms/s, {} rooms re-read, {} errors; requests per room: {}",
        incr.as_secs_f64(),
        names.len() as f64 / incr.as_secs_f64(),
        sink.batches_per_mailbox.len(),
        sink.errors.len(),
        per_room(&stats, names.len())
    );

    c.reset_stats();
    sink.batches_per_mailbox.clear();
    let t = Instant::now();
    sink.sync_parallel(&source, &names, win, parallel).await;
    let idle = t.elapsed();
    let stats = c.stats();
    println!(
        "no-change sync:   {:>7.2} s, {:>6.1} rooms/s, {} rooms re-read; requests per room: {}",
        idle.as_secs_f64(),
        names.len() as f64 / idle.as_secs_f64(),
        sink.batches_per_mailbox.len(),
        per_room(&stats, names.len())
    );
    sim.shutdown().await;
}
