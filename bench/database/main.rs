//! Database sink benchmark: 100,000 events into each engine — a first load, a no-change replay
//! (one writer), and the replay again with four writers at once — in rows per second.
//!
//! Run: `cargo bench -p calpump-sink-database --bench database` (release build). It needs the
//! machine's PostgreSQL and MariaDB (see `sinks/database/tests/common/mod.rs` for the URLs) and
//! creates, then drops, a fresh database on each. Optional arguments: engine names to run
//! (`sqlite`, `postgres`, `mariadb`) and `--events N`.

#[path = "../../sinks/database/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use calpump_plugin::conformance::generate::{EventGen, base_time, snapshot, window};
use calpump_plugin::{Batch, Sink};
use calpump_sink_database::DatabaseSink;
use common::{DbHarness, Engine};
use serde_json::json;

const PER_MAILBOX: usize = 1000;

fn batches(total: usize) -> Vec<Batch> {
    let mut g = EventGen::new(2026);
    let w = window(base_time(), 28);
    (0..total.div_ceil(PER_MAILBOX))
        .map(|m| {
            let mailbox = format!("room-{m:04}@bench.test");
            let n = PER_MAILBOX.min(total - m * PER_MAILBOX);
            let events = g.events(&mailbox, "default", &w, n);
            snapshot("bench", &mailbox, "default", w, events, true, "bench-1")
        })
        .collect()
}

fn write_all(sink: &DatabaseSink, batches: &[Batch], run: &str, writers: usize) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                for b in batches.iter().skip(w).step_by(writers) {
                    let mut b = b.clone();
                    b.run_id = run.to_string();
                    let result = sink.write_batch(b).expect("write_batch");
                    assert!(result.rejected.is_empty(), "{:?}", result.rejected);
                }
            });
        }
    });
    started.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut total = 100_000usize;
    let mut engines = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => total = it.next().and_then(|n| n.parse().ok()).expect("--events N"),
            "sqlite" => engines.push(Engine::Sqlite),
            "postgres" => engines.push(Engine::Postgres),
            "mariadb" => engines.push(Engine::MariaDb),
            // `cargo bench` passes `--bench`; ignore it and anything else of libtest's.
            _ => {}
        }
    }
    if engines.is_empty() {
        engines = vec![Engine::Sqlite, Engine::Postgres, Engine::MariaDb];
    }
    let batches = batches(total);
    println!(
        "database sink benchmark: {total} events in {} batches of up to {PER_MAILBOX} (one complete snapshot per mailbox)",
        batches.len()
    );
    println!(
        "{:<10} {:<26} {:>9} {:>12}",
        "engine", "phase", "seconds", "rows/s"
    );
    for engine in engines {
        let h = DbHarness::new(engine, json!({}));
        let sink = DatabaseSink::create(h.config.clone()).expect("create");
        for (phase, run, writers) in [
            ("first load (1 writer)", "bench-1", 1),
            ("no-change replay (1)", "bench-2", 1),
            ("no-change replay (4)", "bench-3", 4),
        ] {
            let took = write_all(&sink, &batches, run, writers);
            println!(
                "{:<10} {:<26} {:>9.2} {:>12.0}",
                format!("{engine:?}"),
                phase,
                took.as_secs_f64(),
                total as f64 / took.as_secs_f64()
            );
        }
        // The figures mean something only if the rows are there, unchanged by the replays.
        let table = h.events_table();
        assert_eq!(
            h.query_i64(&format!(
                "SELECT COUNT(*) FROM {table} WHERE deleted_at IS NULL"
            )),
            total as i64
        );
        assert_eq!(
            h.query_i64(&format!(
                "SELECT COUNT(*) FROM {table} WHERE run_id <> 'bench-1'"
            )),
            0,
            "a replay rewrote rows"
        );
        drop(sink);
    }
}
