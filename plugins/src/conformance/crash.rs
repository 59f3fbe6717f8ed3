//! The crash check. A child process (this very test binary, re-executed with [`CHILD_ENV`])
//! writes a sequence of large batches through a fresh sink instance and acknowledges each on
//! stdout once `write_batch` and `flush` returned. The parent kills it with SIGKILL at varying
//! moments — right after an acknowledgement (between batches) and at fractions of a batch's
//! measured write time (inside the next batch) — and after every kill checks that the storage
//! holds whole batches only, every acknowledged one included. Then it re-delivers from the first
//! unacknowledged batch, as the engine does (its cursor moved only for acknowledged batches): the
//! next child starts there, and after the last kill a fresh instance in the parent delivers the
//! rest. The end state must equal the source's truth.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
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
/// Batches in the plan.
const BATCHES: usize = 12;
/// When to kill in each round, as a fraction of one batch's write time (as the child measured
/// the batch before) after the round's first acknowledgement (0: between batches). The first
/// round lets two batches through.
const KILL_AT: &[f64] = &[0.5, 0.0, 0.3, 0.6, 0.75, 0.85, 0.95];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ChildSpec {
    test: String,
    reopen: serde_json::Value,
    seed: u64,
    route: String,
    mailbox: String,
    /// The first batch this child writes (the first one not yet acknowledged).
    start: usize,
}

/// The batches of the plan, the same in parent and child.
fn plan(spec: &ChildSpec) -> Vec<Batch> {
    let (route, mb) = (spec.route.as_str(), spec.mailbox.as_str());
    let mut g = EventGen::new(spec.seed);
    let w = window(base_time(), 28);
    let run = |i: usize| format!("crash-run-{i}");
    let first = g.events(mb, CAL, &w, 1000);
    let mut batches = vec![snapshot(route, mb, CAL, w, first.clone(), true, &run(0))];
    // Large batches of similar size (several multi-row statements each), so a kill timed by the
    // previous batch's duration lands where it is aimed: inside the next batch's transaction.
    let mut live: Vec<Event> = first;
    for i in 1..BATCHES {
        if i % 2 == 1 {
            // 300 new, 600 changed, 300 deleted.
            let new = g.events(mb, CAL, &w, 300);
            let changed: Vec<Event> = live[..600].iter().map(|e| g.modify(e)).collect();
            let gone: Vec<_> = live[600..900].iter().map(|e| e.key().clone()).collect();
            let mut upserts = new.clone();
            upserts.extend(changed.iter().cloned());
            batches.push(delta(route, mb, CAL, w, upserts, gone, &run(i)));
            let mut next = changed;
            next.extend(live[900..].iter().cloned());
            next.extend(new);
            live = next;
        } else {
            // A complete snapshot that drops 300 events, changes 600 and adds 300.
            let mut events: Vec<Event> = live[300..].to_vec();
            for e in events.iter_mut().take(600) {
                *e = g.modify(e);
            }
            events.extend(g.events(mb, CAL, &w, 300));
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
            println!("\n{FAIL}unreadable {CHILD_ENV}: {e}");
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
        println!("\n{FAIL}{message}");
        let _ = std::io::stdout().flush();
        std::process::exit(2)
    };
    let sink = match H::reopen(&spec.reopen) {
        Ok(sink) => sink,
        Err(e) => fail(format!("opening the sink: {e}")),
    };
    let batches = plan(&spec);
    for (i, batch) in batches.iter().enumerate().skip(spec.start) {
        let mut batch = batch.clone();
        batch.run_id = format!("{}-from-{}", batch.run_id, spec.start);
        let started = Instant::now();
        if let Err(e) = expect_all_accepted(&format!("batch {i}"), &batch, sink.write_batch(&batch))
        {
            fail(e);
        }
        if let Err(e) = sink.flush() {
            fail(format!("flush after batch {i}: {e}"));
        }
        println!("\n{ACK}{i} {}", started.elapsed().as_micros());
        let _ = std::io::stdout().flush();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match batches.last() {
            Some(batch) => {
                let _ = sink.write_batch(batch);
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    std::process::exit(0)
}

/// A running child and its acknowledgements.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
}

impl Running {
    fn start(ctx: &Ctx, spec: &ChildSpec) -> Result<Self, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
        let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                ctx.test_name.as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the child: {e}"))?;
        let stdout = child.stdout.take().ok_or("the child has no stdout")?;
        let (tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            lines,
            reader,
        })
    }

    /// Waits for the acknowledgement of batch `index`; returns how long the child took to
    /// write it.
    fn ack(&self, index: usize, ctx: &Ctx) -> Result<Duration, String> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find(ACK) {
                        let mut fields = line[at + ACK.len()..].split_whitespace();
                        if fields.next() == Some(index.to_string().as_str()) {
                            let micros = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
                            return Ok(Duration::from_micros(micros));
                        }
                    } else if let Some(at) = line.find(FAIL) {
                        return Err(format!("the child failed: {}", &line[at + FAIL.len()..]));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the child did not acknowledge batch {index} within 180 s"
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "the child exited before acknowledging batch {index} (the test name \
                         given to the suite, `{}`, must be the #[test] function's name)",
                        ctx.test_name
                    ));
                }
            }
        }
    }

    /// SIGKILL (std's `kill` on Unix): no destructor, no flush, no clean shutdown. Returns the
    /// highest batch index acknowledged before the kill (counting lines already sent).
    fn kill(mut self, acked: usize) -> usize {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        let mut last = acked;
        while let Ok(line) = self.lines.try_recv() {
            if let Some(at) = line.find(ACK)
                && let Some(Ok(i)) = line[at + ACK.len()..]
                    .split_whitespace()
                    .next()
                    .map(str::parse::<usize>)
            {
                last = last.max(i);
            }
        }
        last
    }
}

pub(super) fn crash_and_redelivery<H: Harness>(h: &H, ctx: &Ctx) -> Result<(), String> {
    let mut spec = ChildSpec {
        test: ctx.test_name.clone(),
        reopen: h.reopen_spec(),
        seed: 770,
        route: ctx.route("crash", 1),
        mailbox: ctx.mailbox("crash", 1),
        start: 0,
    };
    let batches = plan(&spec);
    // The truth after each prefix of the plan.
    let mut truths = Vec::with_capacity(batches.len());
    let mut truth = Truth::new();
    for b in &batches {
        truth.apply(b);
        truths.push(truth.expected(&spec.route, &spec.mailbox, CAL));
    }

    let mut batch_time = Duration::ZERO;
    let mut notes = Vec::new();
    for (round, fraction) in KILL_AT.iter().enumerate() {
        if spec.start >= batches.len() {
            break;
        }
        let running = Running::start(ctx, &spec)?;
        let first = spec.start;
        let mut acked = first;
        match running.ack(first, ctx) {
            Ok(took) => batch_time = took,
            Err(e) => {
                running.kill(0);
                return Err(e);
            }
        }
        if round == 0 && first + 1 < batches.len() {
            match running.ack(first + 1, ctx) {
                Ok(took) => batch_time = took,
                Err(e) => {
                    running.kill(0);
                    return Err(e);
                }
            }
            acked = first + 1;
        }
        std::thread::sleep(batch_time.mul_f64(*fraction));
        let acked = running.kill(acked);

        // Whole batches only: the storage equals the truth after a prefix that includes every
        // acknowledged batch.
        let got = h.read_back(&spec.route, &spec.mailbox, CAL)?;
        let Some(reached) = (acked..batches.len()).find(|&j| compare("", &truths[j], &got).is_ok())
        else {
            let detail = compare(
                &format!("compared with the state after batch {}", acked + 1),
                &truths[(acked + 1).min(batches.len() - 1)],
                &got,
            )
            .err()
            .unwrap_or_default();
            return Err(format!(
                "killed {:.0}% into the batch after acknowledged batch {acked}, the storage \
                 matches no whole-batch state from batch {acked} on (a partial batch survived, \
                 or an acknowledged one was lost): {detail}",
                fraction * 100.0
            ));
        };
        notes.push(format!(
            "kill {round} at +{:.0}%: acked {acked}, held {reached}",
            fraction * 100.0
        ));
        spec.start = acked + 1;
    }

    // The rest, re-delivered through a fresh instance, with new run ids as the engine gives.
    let sink = open(h)?;
    for (i, batch) in batches.iter().enumerate().skip(spec.start) {
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
    compare(
        "after re-delivery",
        &truths[batches.len() - 1],
        &h.read_back(&spec.route, &spec.mailbox, CAL)?,
    )?;
    println!(
        "conformance [{}] crash: one batch takes {batch_time:.0?}; {}",
        ctx.test_name,
        notes.join("; ")
    );
    Ok(())
}
