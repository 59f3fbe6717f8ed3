//! The crash check: a child process (this very test binary, re-executed) writes a sequence of
//! large batches and acknowledges each; the parent kills it with SIGKILL right after an
//! acknowledgement — usually in the middle of the next batch's transaction — then checks that
//! the storage holds whole batches only, re-delivers from the first unacknowledged batch (as
//! the engine does: its cursor only moved for acknowledged batches) through a fresh instance,
//! and compares the result with the source's truth.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::{Batch, Event};

use super::generate::{EventGen, Truth, base_time, delta, snapshot, window};
use super::{Ctx, Harness, compare, expect_all_accepted, open};

/// The environment variable that turns a test process into the crash check's child. Its value
/// is JSON: the test's name, the harness's reopen spec and the batch plan.
pub const CHILD_ENV: &str = "CALPUMP_CONFORMANCE_CHILD";

const ACK: &str = "CALPUMP-CONFORMANCE-ACK ";
const FAIL: &str = "CALPUMP-CONFORMANCE-FAIL ";
const CAL: &str = "default";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ChildSpec {
    test: String,
    reopen: serde_json::Value,
    seed: u64,
    route: String,
    mailbox: String,
}

/// The batches of one crash round, the same in parent and child.
fn plan(spec: &ChildSpec) -> Vec<Batch> {
    let (route, mb) = (spec.route.as_str(), spec.mailbox.as_str());
    let mut g = EventGen::new(spec.seed);
    let w = window(base_time(), 28);
    let run = |i: usize| format!("crash-run-{i}");
    let first = g.events(mb, CAL, &w, 600);
    let mut batches = vec![snapshot(route, mb, CAL, w, first.clone(), true, &run(0))];
    // Large batches, so a kill right after an acknowledgement lands inside a transaction.
    let mut live: Vec<Event> = first;
    for i in 1..8usize {
        if i % 2 == 1 {
            let new = g.events(mb, CAL, &w, 800);
            let changed: Vec<Event> = live[..200].iter().map(|e| g.modify(e)).collect();
            let gone: Vec<_> = live[200..300].iter().map(|e| e.key().clone()).collect();
            let mut upserts = new.clone();
            upserts.extend(changed.iter().cloned());
            batches.push(delta(route, mb, CAL, w, upserts, gone, &run(i)));
            let mut next = changed;
            next.extend(live[300..].iter().cloned());
            next.extend(new);
            live = next;
        } else {
            // A complete snapshot that drops 150 events and changes 300.
            let mut events: Vec<Event> = live[150..].to_vec();
            for e in events.iter_mut().take(300) {
                *e = g.modify(e);
            }
            events.extend(g.events(mb, CAL, &w, 100));
            batches.push(snapshot(route, mb, CAL, w, events.clone(), true, &run(i)));
            live = events;
        }
    }
    batches
}

/// The spec of this process if it is a crash child for `test_name`.
pub(super) fn child_spec(test_name: &str) -> Option<ChildSpec> {
    let text = std::env::var(CHILD_ENV).ok()?;
    let spec: ChildSpec = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(e) => {
            println!("{FAIL}unreadable {CHILD_ENV}: {e}");
            std::process::exit(3);
        }
    };
    (spec.test == test_name).then_some(spec)
}

/// The child: write, acknowledge, repeat; then keep re-delivering the last batch until killed
/// (at most two minutes).
pub(super) fn child_main<H: Harness>(spec: ChildSpec) -> ! {
    use std::io::Write as _;
    let fail = |message: String| -> ! {
        println!("{FAIL}{message}");
        let _ = std::io::stdout().flush();
        std::process::exit(2)
    };
    let sink = match H::reopen(&spec.reopen) {
        Ok(sink) => sink,
        Err(e) => fail(format!("opening the sink: {e}")),
    };
    let batches = plan(&spec);
    for (i, batch) in batches.iter().enumerate() {
        if let Err(e) = expect_all_accepted(&format!("batch {i}"), batch, sink.write_batch(batch)) {
            fail(e);
        }
        if let Err(e) = sink.flush() {
            fail(format!("flush after batch {i}: {e}"));
        }
        println!("{ACK}{i}");
        let _ = std::io::stdout().flush();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = batches.last().cloned();
    while Instant::now() < deadline {
        if let Some(batch) = &last {
            let _ = sink.write_batch(batch);
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::process::exit(0)
}

/// One round: kill after the acknowledgement of batch `kill_after`.
fn round<H: Harness>(h: &H, ctx: &Ctx, n: u32, kill_after: usize) -> Result<String, String> {
    let spec = ChildSpec {
        test: ctx.test_name.clone(),
        reopen: h.reopen_spec(),
        seed: 770 + u64::from(n),
        route: ctx.route("crash", n),
        mailbox: ctx.mailbox("crash", n),
    };
    let batches = plan(&spec);
    // Truth after each prefix of the plan.
    let mut truths = Vec::with_capacity(batches.len());
    let mut truth = Truth::new();
    for b in &batches {
        truth.apply(b);
        truths.push(truth.expected(&spec.route, &spec.mailbox, CAL));
    }

    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let spec_json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            ctx.test_name.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec_json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stdout = child.stdout.take().ok_or("the child has no stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let waited: Result<(), String> = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            // libtest may print `test NAME ... ` in front of the first line.
            Ok(line) => {
                if let Some(at) = line.find(ACK) {
                    if line[at + ACK.len()..].trim() == kill_after.to_string() {
                        break Ok(());
                    }
                } else if let Some(at) = line.find(FAIL) {
                    break Err(format!("the child failed: {}", &line[at + FAIL.len()..]));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(format!(
                    "the child did not acknowledge batch {kill_after} within 180 s"
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(format!(
                    "the child exited before acknowledging batch {kill_after} (did `{}` run? \
                     the test name given to the suite must be the #[test] function's name)",
                    ctx.test_name
                ));
            }
        }
    };
    // SIGKILL (std's `kill` on Unix): no destructor, no flush, no clean shutdown.
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    waited?;

    // Whole batches only: the storage equals the truth after some prefix that includes every
    // acknowledged batch.
    let got = h.read_back(&spec.route, &spec.mailbox, CAL)?;
    let Some(reached) =
        (kill_after..batches.len()).find(|&j| compare("", &truths[j], &got).is_ok())
    else {
        let detail = compare(
            &format!(
                "after the kill (vs. batch {kill_after} or {})",
                kill_after + 1
            ),
            &truths[(kill_after + 1).min(batches.len() - 1)],
            &got,
        )
        .err()
        .unwrap_or_default();
        return Err(format!(
            "after SIGKILL the storage matches no whole-batch state from batch {kill_after} on \
             (a partial batch survived, or an acknowledged one was lost): {detail}"
        ));
    };

    // Re-delivery from the first unacknowledged batch, through a fresh instance, with new run
    // ids as the engine would give them.
    let sink = open(h)?;
    for (i, batch) in batches.iter().enumerate().skip(kill_after + 1) {
        let mut again = batch.clone();
        again.run_id = format!("{}-redelivered", batch.run_id);
        expect_all_accepted(
            &format!("re-delivered batch {i}"),
            &again,
            sink.write_batch(&again),
        )?;
    }
    sink.flush()
        .map_err(|e| format!("flush after re-delivery: {e}"))?;
    let last = truths.len() - 1;
    compare(
        "after re-delivery",
        &truths[last],
        &h.read_back(&spec.route, &spec.mailbox, CAL)?,
    )?;
    Ok(format!(
        "killed after ack {kill_after}, storage held batches 0..={reached}"
    ))
}

pub(super) fn crash_and_redelivery<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    for (n, kill_after) in [(1u32, 0usize), (2, 3)] {
        let note = round(h, ctx, n, kill_after)?;
        println!("conformance [{}] crash round {n}: {note}", ctx.test_name);
    }
    Ok(())
}
