//! The checks that need no child process.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Duration as Span;

use crate::model::{Batch, Event, EventKey};

use super::generate::{EventGen, Truth, base_time, delta, snapshot, window};
use super::{Contents, Ctx, Harness, Hold, SinkHandle, compare, expect_all_accepted, open};

const CAL: &str = "default";

/// Writes `batch` (all items must be taken), applies it to `truth` and compares the scope.
fn step(
    what: &str,
    h: &impl Harness,
    sink: &dyn SinkHandle,
    truth: &mut Truth,
    batch: &Batch,
) -> Result<Contents, String> {
    expect_all_accepted(what, batch, sink.write_batch(batch))?;
    sink.flush()
        .map_err(|e| format!("{what}: flush failed: {e}"))?;
    truth.apply(batch);
    let got = h.read_back(&batch.route, &batch.mailbox, &batch.calendar)?;
    compare(
        what,
        &truth.expected(&batch.route, &batch.mailbox, &batch.calendar),
        &got,
    )?;
    Ok(got)
}

/// Removed keys must be gone, or (for soft-deleting sinks) present and marked deleted.
fn expect_removed(
    what: &str,
    h: &impl Harness,
    got: &Contents,
    keys: &[EventKey],
) -> Result<(), String> {
    for key in keys {
        match got.get(key) {
            Some(s) if !s.deleted => return Err(format!("{what}: {key} is still live")),
            None if h.keeps_deleted() => {
                return Err(format!(
                    "{what}: {key} disappeared; a soft-deleting sink must keep it marked deleted"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn keys(events: &[Event]) -> Vec<EventKey> {
    events.iter().map(|e| e.key().clone()).collect()
}

pub(super) fn replay_changes_nothing<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    let (route, mb) = (ctx.route("replay", 1), ctx.mailbox("replay", 1));
    let mut g = EventGen::new(11);
    let mut truth = Truth::new();
    let w = window(base_time(), 14);
    let sink = open(h)?;
    let events = g.events(&mb, CAL, &w, 60);
    let s = snapshot(&route, &mb, CAL, w, events.clone(), true, "run-1");
    let first = step("first snapshot", h, sink.as_ref(), &mut truth, &s)?;

    let mut again = s.clone();
    again.run_id = "run-2".into();
    let second = step("replayed snapshot", h, sink.as_ref(), &mut truth, &again)?;
    if first != second {
        return Err("replaying the same snapshot rewrote items (revision or state changed)".into());
    }

    let upserts: Vec<Event> = events[..5].iter().map(|e| g.modify(e)).collect();
    let d = delta(&route, &mb, CAL, w, upserts, keys(&events[50..53]), "run-3");
    let after_delta = step("delta", h, sink.as_ref(), &mut truth, &d)?;
    let mut d2 = d.clone();
    d2.run_id = "run-4".into();
    let replayed = step("replayed delta", h, sink.as_ref(), &mut truth, &d2)?;
    if after_delta != replayed {
        return Err("replaying the same delta rewrote items".into());
    }

    // A fresh instance, as after a restart, replaying once more.
    drop(sink);
    let sink = open(h)?;
    let mut d3 = d.clone();
    d3.run_id = "run-5".into();
    let restarted = step(
        "delta replayed after a restart",
        h,
        sink.as_ref(),
        &mut truth,
        &d3,
    )?;
    if after_delta != restarted {
        return Err("a restarted instance rewrote items on replay".into());
    }
    Ok(())
}

pub(super) fn complete_snapshot<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    let (route, mb) = (ctx.route("snapshot", 1), ctx.mailbox("snapshot", 1));
    let other_route = ctx.route("snapshot", 2);
    let mut g = EventGen::new(22);
    let mut truth = Truth::new();
    let base = base_time();
    // The wide window of the first read, and the narrower one of the second.
    let wide = crate::model::Window {
        start: base - Span::days(1),
        end: base + Span::days(28),
    };
    let w = window(base, 14);
    let sink = open(h)?;

    let inside = g.events(&mb, CAL, &w, 40);
    let after = g.events(&mb, CAL, &window(w.end, 10), 5); // outside w, inside wide
    let edge_before = g.event_at(&mb, CAL, w.start - Span::hours(1), 60); // ends at w.start
    let edge_after = g.event_at(&mb, CAL, w.end, 60); // starts at w.end
    let zero_at_start = g.event_at(&mb, CAL, w.start, 0); // zero length, at w.start
    let straddle = g.event_at(&mb, CAL, w.start - Span::hours(1), 120); // across w.start
    let mut first: Vec<Event> = inside.clone();
    first.extend(after.iter().cloned());
    first.extend([
        edge_before.clone(),
        edge_after.clone(),
        zero_at_start.clone(),
        straddle.clone(),
    ]);
    step(
        "first snapshot",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&route, &mb, CAL, wide, first, true, "run-1"),
    )?;
    // Neighbours that a snapshot of (route, mb, default) must never touch.
    let sub = "Team calendars/Projects";
    let other_cal = g.events(&mb, sub, &w, 5);
    step(
        "other calendar",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&route, &mb, sub, w, other_cal, true, "run-1"),
    )?;
    let mut other_route_events = inside[..5].to_vec();
    other_route_events.extend(g.events(&mb, CAL, &w, 3));
    step(
        "other route",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&other_route, &mb, CAL, w, other_route_events, true, "run-1"),
    )?;

    // Second read: 7 vanished, 2 changed, 3 new; the straddling and zero-length events vanish.
    let vanished: Vec<Event> = inside[33..].to_vec();
    let mut second: Vec<Event> = inside[..31].to_vec();
    second.extend(inside[31..33].iter().map(|e| g.modify(e)));
    second.extend(g.events(&mb, CAL, &w, 3));
    let s2 = snapshot(&route, &mb, CAL, w, second, true, "run-2");
    let got = step("second snapshot", h, sink.as_ref(), &mut truth, &s2)?;
    let mut gone = keys(&vanished);
    gone.push(zero_at_start.key().clone());
    gone.push(straddle.key().clone());
    expect_removed("second snapshot", h, &got, &gone)?;
    for (name, e) in [
        ("an event ending at the window's start", &edge_before),
        ("an event starting at the window's end", &edge_after),
        ("an event after the window", &after[0]),
    ] {
        match got.get(e.key()) {
            Some(s) if !s.deleted => {}
            _ => {
                return Err(format!(
                    "second snapshot removed {name}, outside its window"
                ));
            }
        }
    }
    for (what, r, c) in [
        ("the other calendar", route.as_str(), sub),
        ("the other route", other_route.as_str(), CAL),
    ] {
        let got = h.read_back(r, &mb, c)?;
        compare(
            &format!("{what} after the snapshot"),
            &truth.expected(r, &mb, c),
            &got,
        )?;
    }
    Ok(())
}

pub(super) fn incomplete_snapshot<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    let (route, mb) = (ctx.route("incomplete", 1), ctx.mailbox("incomplete", 1));
    let mut g = EventGen::new(33);
    let mut truth = Truth::new();
    let w = window(base_time(), 14);
    let sink = open(h)?;
    let events = g.events(&mb, CAL, &w, 30);
    step(
        "complete snapshot",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&route, &mb, CAL, w, events.clone(), true, "run-1"),
    )?;
    let mut partial: Vec<Event> = events[..17].to_vec();
    partial.extend(events[17..20].iter().map(|e| g.modify(e)));
    partial.extend(g.events(&mb, CAL, &w, 2));
    let got = step(
        "incomplete snapshot",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&route, &mb, CAL, w, partial, false, "run-2"),
    )?;
    if got.values().filter(|s| !s.deleted).count() != 32 {
        return Err("an incomplete snapshot removed items".into());
    }
    // An empty, incomplete read (the engine's empty-calendar guard) removes nothing either.
    step(
        "empty incomplete snapshot",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&route, &mb, CAL, w, vec![], false, "run-3"),
    )?;
    Ok(())
}

pub(super) fn delta_check<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    let (route, mb) = (ctx.route("delta", 1), ctx.mailbox("delta", 1));
    let mut g = EventGen::new(44);
    let mut truth = Truth::new();
    let w = window(base_time(), 14);
    let sink = open(h)?;
    let events = g.events(&mb, CAL, &w, 30);
    step(
        "snapshot",
        h,
        sink.as_ref(),
        &mut truth,
        &snapshot(&route, &mb, CAL, w, events.clone(), true, "run-1"),
    )?;
    let mut upserts: Vec<Event> = g.events(&mb, CAL, &w, 5);
    upserts.extend(events[..5].iter().map(|e| g.modify(e)));
    let mut deletes = keys(&events[10..15]);
    let unknown = g.event(&mb, CAL, &w);
    deletes.push(unknown.key().clone());
    let d = delta(&route, &mb, CAL, w, upserts, deletes, "run-2");
    let got = step("delta", h, sink.as_ref(), &mut truth, &d)?;
    expect_removed("delta", h, &got, &keys(&events[10..15]))?;
    if got.get(unknown.key()).is_some_and(|s| !s.deleted) {
        return Err("deleting an unknown key created it".into());
    }
    // Two deleted events come back (changed): they are live again.
    let revived: Vec<Event> = events[10..12].iter().map(|e| g.modify(e)).collect();
    let got = step(
        "revival",
        h,
        sink.as_ref(),
        &mut truth,
        &delta(&route, &mb, CAL, w, revived.clone(), vec![], "run-3"),
    )?;
    for e in &revived {
        if got.get(e.key()).is_none_or(|s| s.deleted) {
            return Err(format!(
                "{} was upserted after its deletion but is not live",
                e.key()
            ));
        }
    }
    // And one comes back unchanged (same content as when it was deleted).
    step(
        "revival with unchanged content",
        h,
        sink.as_ref(),
        &mut truth,
        &delta(
            &route,
            &mb,
            CAL,
            w,
            vec![events[12].clone()],
            vec![],
            "run-4",
        ),
    )?;
    Ok(())
}

/// Runs `f` on a thread and reports its result (and when it finished) on a channel.
fn spawn_timed<'s, T: Send + 's>(
    scope: &'s std::thread::Scope<'s, '_>,
    f: impl FnOnce() -> T + Send + 's,
) -> mpsc::Receiver<(T, Instant)> {
    let (tx, rx) = mpsc::channel();
    scope.spawn(move || {
        let out = f();
        let _ = tx.send((out, Instant::now()));
    });
    rx
}

pub(super) fn no_blocking<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    let (route_a, mb_a) = (ctx.route("noblock", 1), ctx.mailbox("noblock", 1));
    let (route_b, mb_b) = (ctx.route("noblock", 2), ctx.mailbox("noblock", 2));
    let mut g = EventGen::new(55);
    let mut truth = Truth::new();
    let w = window(base_time(), 14);
    let sink = open(h)?;
    let events_a = g.events(&mb_a, CAL, &w, 100);
    let events_b = g.events(&mb_b, CAL, &w, 100);
    for (route, mb, events) in [(&route_a, &mb_a, &events_a), (&route_b, &mb_b, &events_b)] {
        step(
            "seed",
            h,
            sink.as_ref(),
            &mut truth,
            &snapshot(route, mb, CAL, w, events.clone(), true, "run-1"),
        )?;
    }
    let write_a = delta(
        &route_a,
        &mb_a,
        CAL,
        w,
        events_a[..20].iter().map(|e| g.modify(e)).collect(),
        vec![],
        "run-2",
    );
    let mut b_events: Vec<Event> = events_b[..20].iter().map(|e| g.modify(e)).collect();
    b_events.extend(g.events(&mb_b, CAL, &w, 20));
    let write_b1 = delta(&route_b, &mb_b, CAL, w, b_events.clone(), vec![], "run-2");
    let mut full_b: Vec<Event> = events_b[20..90].to_vec();
    full_b.extend(b_events);
    let write_b2 = snapshot(&route_b, &mb_b, CAL, w, full_b, true, "run-2");

    let hold = h.hold_mailbox(&route_a, &mb_a)?;
    let exclusive = matches!(hold, Hold::Exclusive(_));
    let limit = Duration::from_secs(10);
    let sink_ref: &dyn SinkHandle = sink.as_ref();
    let outcome: Result<(), String> = std::thread::scope(|scope| {
        let a = spawn_timed(scope, || sink_ref.write_batch(&write_a));
        // Let A's write reach the held items.
        std::thread::sleep(Duration::from_millis(300));
        if exclusive && let Ok((result, _)) = a.try_recv() {
            drop(hold);
            return Err(format!(
                "the harness's hold on mailbox A did not hold A's write back (it returned {:?}); \
                 the check cannot tell blocking from not blocking",
                result.map(|r| r.accepted.len())
            ));
        }
        let started = Instant::now();
        let b = spawn_timed(scope, || {
            sink_ref
                .write_batch(&write_b1)
                .and_then(|_| sink_ref.write_batch(&write_b2))
        });
        let b_result = b.recv_timeout(limit);
        let a_done_early = a.try_recv().ok();
        drop(hold);
        let (b_result, b_done) = match b_result {
            Ok(r) => r,
            Err(_) => {
                // Give B the rest of its chance now that A is released, to report precisely.
                let late = b.recv_timeout(Duration::from_secs(60));
                return Err(match late {
                    Ok(_) => format!(
                        "mailbox B's writes waited for mailbox A's held items: not done within \
                         {limit:?} while A was held, done only after A was released"
                    ),
                    Err(_) => format!("mailbox B's writes did not finish within {limit:?} + 60 s"),
                });
            }
        };
        b_result.map_err(|e| format!("mailbox B's write failed while A was held: {e}"))?;
        let b_time = b_done - started;
        let a_result = match a_done_early {
            Some((r, _)) if exclusive => {
                return Err(format!(
                    "mailbox A's write finished while A was held exclusively ({:?})",
                    r.map(|r| r.accepted.len())
                ));
            }
            Some((r, _)) => r,
            None => {
                a.recv_timeout(Duration::from_secs(60))
                    .map_err(|_| "mailbox A's write did not finish after its hold was released")?
                    .0
            }
        };
        a_result.map_err(|e| format!("mailbox A's write failed: {e}"))?;
        println!(
            "conformance [{}] mailbox B wrote 2 batches in {b_time:.2?} while mailbox A was held ({})",
            ctx.test_name,
            if exclusive {
                "exclusively"
            } else {
                "by a reader"
            }
        );
        Ok(())
    });
    outcome?;
    for batch in [&write_a, &write_b1, &write_b2] {
        truth.apply(batch);
    }
    for (route, mb) in [(&route_a, &mb_a), (&route_b, &mb_b)] {
        compare(
            "after the concurrent writes",
            &truth.expected(route, mb, CAL),
            &h.read_back(route, mb, CAL)?,
        )?;
    }
    Ok(())
}

pub(super) fn concurrent_routes<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    const WRITERS: u32 = 4;
    let w = window(base_time(), 14);
    let sink = open(h)?;
    let sink_ref: &dyn SinkHandle = sink.as_ref();
    // Each writer: a route and mailbox of its own, and a sequence of batches.
    let plans: Vec<(String, String, Vec<Batch>)> = (0..WRITERS)
        .map(|n| {
            let (route, mb) = (ctx.route("concurrent", n), ctx.mailbox("concurrent", n));
            let mut g = EventGen::new(660 + u64::from(n));
            let events = g.events(&mb, CAL, &w, 300);
            let mut batches = vec![snapshot(&route, &mb, CAL, w, events.clone(), true, "run-1")];
            for round in 0..4usize {
                let changed: Vec<Event> = events[round * 50..round * 50 + 40]
                    .iter()
                    .map(|e| g.modify(e))
                    .collect();
                let gone = keys(&events[round * 50 + 40..round * 50 + 50]);
                batches.push(delta(&route, &mb, CAL, w, changed, gone, "run-2"));
            }
            (route, mb, batches)
        })
        .collect();
    let started = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .map(|(_, _, batches)| {
                scope.spawn(move || {
                    for (i, b) in batches.iter().enumerate() {
                        expect_all_accepted(
                            &format!("writer batch {i}"),
                            b,
                            sink_ref.write_batch(b),
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a writer panicked".into())))
            .collect()
    });
    for r in results {
        r?;
    }
    println!(
        "conformance [{}] {WRITERS} routes wrote {} batches concurrently in {:.2?}",
        ctx.test_name,
        plans.iter().map(|p| p.2.len()).sum::<usize>(),
        started.elapsed()
    );
    for (route, mb, batches) in &plans {
        let mut truth = Truth::new();
        for b in batches {
            truth.apply(b);
        }
        compare(
            "after concurrent routes",
            &truth.expected(route, mb, CAL),
            &h.read_back(route, mb, CAL)?,
        )?;
    }
    Ok(())
}
