//! `kill -9` of the real `calpump sync` binary, at random points, against an in-process
//! simulator: 60 rooms of two room lists (all calendars, so the floors' "Maintenance"
//! sub-calendars too) into the database sink (SQLite) and the door-sign sink.
//!
//! A reference directory syncs every phase uninterrupted; several crash directories sync the
//! same phases, each run SIGKILLed at a random point (a few times), then once more without a
//! kill. The phases: a first full read, a second sync (Graph starts its delta rounds), changes
//! through the control API, an incremental sync. After the first and the last phase every crash
//! directory must hold exactly what the reference holds — database rows, live and soft-deleted,
//! with the same content; every door-sign file byte for byte (the sign's clock is frozen); the
//! state's cursors, windows, counts and item indexes — and the live rows must equal the
//! simulator's truth. Latency on the calendar reads spreads the commits of the calendar chunks
//! over time, and the state database tells whether a kill fell between two commits; at least
//! one must have.
//!
//! Graph profile, and the same with an EWS profile (NTLM) with fewer kills.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use calpump_engine::state::{RunStatus, SqliteStateStore, StateStore};
use calpump_plugin::{EventKey, GlobalObjectId, Sink as _};
use calpump_simulator::{
    ALL_CALENDARS, EventChange, Fault, FaultRule, NewEvent, Protocol, SimConfig, Simulator,
    TruthInstance, catalogue,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const ROUTE: &str = "rooms";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Graph,
    Ews,
}

struct Env {
    rt: tokio::runtime::Runtime,
    sim: Simulator,
    backend: Backend,
    /// Every room the route reads.
    rooms: Vec<String>,
}

impl Env {
    fn start(backend: Backend) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(Simulator::start(SimConfig {
                rooms: 60,
                events_per_room: 16,
                users: 8,
                seed: 77,
                ..SimConfig::default()
            }))
            .expect("simulator");
        // Latency on the calendar reads: the chunks of calendars commit one after the other,
        // so a random kill often falls between two commits.
        let slow: &[&str] = match backend {
            Backend::Graph => &["calendarView", "calendarView.delta"],
            Backend::Ews => &["GetItem", "SyncFolderItems"],
        };
        for op in slow {
            sim.control().add_fault(
                FaultRule::new(Fault::Latency { ms: 25 })
                    .protocol(match backend {
                        Backend::Graph => Protocol::Graph,
                        Backend::Ews => Protocol::Ews,
                    })
                    .operation(op),
            );
        }
        let rooms = (1..=50)
            .map(|n| format!("room-1.{n:02}@contoso.com"))
            .chain((1..=10).map(|n| format!("room-2.{n:02}@contoso.com")))
            .collect();
        Env {
            rt,
            sim,
            backend,
            rooms,
        }
    }

    /// A fresh directory with a config, for a reference or a crash series.
    fn dir(&self, parent: &Path, name: &str) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let secret_file = dir.join("secret");
        let secret = match self.backend {
            Backend::Graph => catalogue::GRAPH_APP_SECRET,
            Backend::Ews => catalogue::ACCOUNT_PASSWORD,
        };
        std::fs::write(&secret_file, secret).expect("secret");
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let secret_ref = format!("{{ file = {} }}", q(&secret_file.display().to_string()));
        let profile = match self.backend {
            Backend::Graph => format!(
                r#"[profiles.source]
backend = "graph"
tenant = {tenant}
client_id = {client}
client_secret = {secret_ref}
authority = {authority}
graph_url = {graph}
"#,
                tenant = q(catalogue::TENANT_DOMAIN),
                client = q(catalogue::GRAPH_APP_ID),
                authority = q(self.sim.authority()),
                graph = q(&self.sim.graph_url()),
            ),
            Backend::Ews => format!(
                r#"[profiles.source]
backend = "ews"
url = {url}
auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = {secret_ref} }}
impersonation = true
"#,
                url = q(&self.sim.ews_url()),
            ),
        };
        // The signs' clock frozen inside the window: their files depend on content only.
        let clock = self.sim.window().0 + chrono::Duration::hours(34);
        let config = format!(
            r#"[state]
path = "state.db"

{profile}
[sinks.signs]
plugin = "doorsign"
out_dir = "signs"
time_zone = "Europe/Berlin"
clock = {clock}

[sinks.db]
plugin = "database"
url = {db}

[[routes]]
name = "{ROUTE}"
profile = "source"
room_lists = ["building-1@contoso.com", "building-2@contoso.com"]
calendars = "all"
window = {{ past_days = 1, future_days = 14 }}
sinks = ["signs", "db"]
concurrency = 20
"#,
            clock = q(&clock.to_rfc3339()),
            db = q(&format!("sqlite://{}", dir.join("events.db").display())),
        );
        std::fs::write(dir.join("calpump.toml"), config).expect("config");
        dir
    }
}

/// Runs `calpump sync` in `dir`; with `kill_after`, SIGKILLs it then if it still runs.
/// Returns how long it ran and whether it finished by itself.
fn sync(dir: &Path, kill_after: Option<Duration>) -> (Duration, bool) {
    let started = Instant::now();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sync.log"))
        .expect("log");
    let mut child = Command::new(BIN)
        .arg("sync")
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("calpump sync starts");
    if let Some(after) = kill_after {
        while started.elapsed() < after {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // SIGKILL: no destructor, no flush, no signal handler.
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    if kill_after.is_none() {
        let log = std::fs::read_to_string(dir.join("sync.log")).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        assert!(status.success(), "calpump sync failed: {status}\n{tail}");
    }
    (started.elapsed(), status.success())
}

/// Last commit time of every calendar of the route.
fn commits(env: &Env, dir: &Path) -> BTreeMap<(String, String), Option<DateTime<Utc>>> {
    let path = dir.join("state.db");
    if !path.exists() {
        return BTreeMap::new();
    }
    env.rt.block_on(async {
        let Ok(state) = SqliteStateStore::open(&path).await else {
            return BTreeMap::new();
        };
        let out = state
            .calendars(Some(ROUTE))
            .await
            .map(|all| {
                all.into_iter()
                    .map(|(k, s)| ((k.mailbox, k.calendar), s.last_commit))
                    .collect()
            })
            .unwrap_or_default();
        state.close().await;
        out
    })
}

/// A killed run; returns how many calendars it committed and whether it had finished.
fn killed_sync(env: &Env, dir: &Path, at: Duration) -> (usize, bool) {
    let before = commits(env, dir);
    let (_, finished) = sync(dir, Some(at));
    let after = commits(env, dir);
    let changed = after
        .iter()
        .filter(|(k, t)| t.is_some() && before.get(*k) != Some(*t))
        .count();
    (changed, finished)
}

/// A calendar in the state: cursor value, cursor window, event count, item index (id → key).
type CalendarHeld = (String, String, u64, BTreeMap<String, String>);

/// Everything a directory holds that must survive crashes.
#[derive(Debug, PartialEq)]
struct Held {
    /// Database rows by event key: the event (JSON), its content hash, soft-deleted or not.
    rows: BTreeMap<String, (Value, String, bool)>,
    /// Every door-sign file (relative path → bytes).
    signs: BTreeMap<String, Vec<u8>>,
    /// Per calendar: cursor value, window, event count, item index.
    cursors: BTreeMap<(String, String), CalendarHeld>,
}

fn read_held(env: &Env, dir: &Path) -> Held {
    // Database rows through the sink's own reader.
    let db = calpump_sink_database::DatabaseSink::create(json!({
        "url": format!("sqlite://{}", dir.join("events.db").display())
    }))
    .expect("database sink opens");
    let mut rows = BTreeMap::new();
    for room in &env.rooms {
        for row in db.read_rows(ROUTE, room, None).expect("rows") {
            let key = row.event.key().as_str().to_string();
            let event = serde_json::to_value(&row.event).expect("json");
            assert!(
                rows.insert(key, (event, row.content_hash, row.deleted_at.is_some()))
                    .is_none(),
                "a key twice in the database"
            );
        }
    }
    drop(db);

    let mut signs = BTreeMap::new();
    let root = dir.join("signs");
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("signs dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(&root)
                    .expect("inside")
                    .display()
                    .to_string();
                // Temporary files of interrupted atomic writes are not outputs.
                if !rel.contains(".tmp") {
                    signs.insert(rel, std::fs::read(&path).expect("read"));
                }
            }
        }
    }

    let cursors = env.rt.block_on(async {
        let state = SqliteStateStore::open(&dir.join("state.db"))
            .await
            .expect("state");
        let mut out = BTreeMap::new();
        for (key, cal) in state.calendars(Some(ROUTE)).await.expect("calendars") {
            let cursor = cal.cursor.clone().expect("every calendar has a cursor");
            let mut value = cursor.value.clone();
            if env.backend == Backend::Ews {
                // EWS keeps the time of its last full read in the cursor: a wall-clock time.
                let mut v: Value = serde_json::from_str(&value).expect("ews cursor");
                v["last_full"] = Value::Null;
                value = v.to_string();
            }
            let index: BTreeMap<String, String> = state
                .item_index(&key)
                .await
                .expect("index")
                .into_iter()
                .map(|(id, k)| (id, k.as_str().to_string()))
                .collect();
            assert_eq!(index.len() as u64, cal.event_count, "{key:?}");
            out.insert(
                (key.mailbox.clone(), key.calendar.clone()),
                (
                    value,
                    format!("{:?}", cursor.window),
                    cal.event_count,
                    index,
                ),
            );
        }
        let runs = state.recent_runs(Some(ROUTE), 200).await.expect("runs");
        assert!(
            runs.iter().all(|r| r.status != RunStatus::Running),
            "a run left `running`: {runs:#?}"
        );
        assert_eq!(runs[0].status, RunStatus::Ok);
        state.close().await;
        out
    });
    Held {
        rows,
        signs,
        cursors,
    }
}

/// Readable differences between two directories' holdings. Cursor values are compared only
/// when `cursor_values`: after a phase, a crashed directory may have run one sync more than the
/// reference (Graph: a delta round after the full read); the rounds converge once both synced
/// again without changes between.
fn differences(a: &Held, b: &Held, cursor_values: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &a.rows {
        match b.rows.get(k) {
            None => out.push(format!(
                "row {k} ({}) only in the crashed run",
                v.0["subject"]
            )),
            Some(w) if w != v => out.push(format!(
                "row {k} differs: deleted {} vs {}; {} vs {}",
                v.2, w.2, v.0, w.0
            )),
            _ => {}
        }
    }
    for (k, w) in &b.rows {
        if !a.rows.contains_key(k) {
            out.push(format!(
                "row {k} ({}) only in the reference",
                w.0["subject"]
            ));
        }
    }
    for (p, bytes) in &a.signs {
        match b.signs.get(p) {
            None => out.push(format!("sign file {p} only in the crashed run")),
            Some(other) if other != bytes => out.push(format!(
                "sign file {p} differs:\n  {}\n  {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(600)]),
                String::from_utf8_lossy(&other[..other.len().min(600)])
            )),
            _ => {}
        }
    }
    for p in b.signs.keys() {
        if !a.signs.contains_key(p) {
            out.push(format!("sign file {p} only in the reference"));
        }
    }
    for (k, v) in &a.cursors {
        match b.cursors.get(k) {
            None => out.push(format!("cursor {k:?} only in the crashed run")),
            Some(w) if (v.1.clone(), v.2, &v.3) != (w.1.clone(), w.2, &w.3) || (cursor_values && v.0 != w.0) => out.push(format!(
                "cursor {k:?} differs: count {} vs {}, window {} vs {}, value equal {}, index equal {}",
                v.2,
                w.2,
                v.1,
                w.1,
                v.0 == w.0,
                v.3 == w.3
            )),
            _ => {}
        }
    }
    for k in b.cursors.keys() {
        if !a.cursors.contains_key(k) {
            out.push(format!("cursor {k:?} only in the reference"));
        }
    }
    out
}

/// The live rows equal the simulator's truth for the window the cursors cover.
fn assert_equals_truth(env: &Env, held: &Held, stage: &str) {
    let window = held
        .cursors
        .values()
        .next()
        .map(|c| c.1.clone())
        .expect("a cursor");
    let (start, end) = parse_window(&window);
    let mut want: BTreeMap<String, TruthInstance> = BTreeMap::new();
    for room in &env.rooms {
        for t in env
            .sim
            .control()
            .truth(room, Some(ALL_CALENDARS), start, end)
            .expect("truth")
        {
            let goid = GlobalObjectId::from_hex(&t.goid).expect("goid");
            let original = if serde_json::to_value(t.kind).expect("kind") == "singleInstance" {
                None
            } else {
                t.original_start
            };
            let key = EventKey::derive(room, &goid, original).expect("key");
            want.insert(key.as_str().to_string(), t);
        }
    }
    let live: BTreeMap<&String, &Value> = held
        .rows
        .iter()
        .filter(|(_, r)| !r.2)
        .map(|(k, r)| (k, &r.0))
        .collect();
    let missing: Vec<&String> = want.keys().filter(|k| !live.contains_key(k)).collect();
    let extra: Vec<&&String> = live.keys().filter(|k| !want.contains_key(**k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{stage}: {} missing {:?}, {} extra {:?}",
        missing.len(),
        missing
            .iter()
            .map(|k| &want[*k].subject)
            .take(10)
            .collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(10).collect::<Vec<_>>()
    );
    for (k, t) in &want {
        let e = live[k];
        let (start, end) = match &t.all_day_dates {
            Some(d) => (
                d.start.and_time(chrono::NaiveTime::MIN).and_utc(),
                d.end.and_time(chrono::NaiveTime::MIN).and_utc(),
            ),
            None => (t.start, t.end),
        };
        let ts = |v: &Value| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
        assert_eq!(e["subject"], t.subject.as_str(), "{stage}: {k}");
        assert_eq!(ts(&e["start"]), Some(start), "{stage}: {k} start");
        assert_eq!(ts(&e["end"]), Some(end), "{stage}: {k} end");
        assert_eq!(e["cancelled"], t.is_cancelled, "{stage}: {k} cancelled");
        let path = match t.calendar.rsplit_once('/') {
            None => "default",
            Some((_, name)) => name,
        };
        assert_eq!(e["calendar"], path, "{stage}: {k} calendar");
    }
    assert!(want.len() > 60 * 10, "{stage}: the truth is small");
}

fn parse_window(debug: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    // `Window { start: 2026-…Z, end: 2026-…Z }`
    let grab = |name: &str| -> DateTime<Utc> {
        let at = debug.find(&format!("{name}: ")).expect("field") + name.len() + 2;
        let rest = &debug[at..];
        let stop = rest.find([',', ' ', '}']).unwrap_or(rest.len());
        rest[..stop].parse().expect("instant")
    };
    (grab("start"), grab("end"))
}

/// A pseudo-random fraction in [0, 1) (from the clock; printed for a replay by hand).
fn random_fraction(salt: u64) -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    let mut rng = calpump_engine::testing::Rng::new(nanos ^ salt.rotate_left(23));
    (rng.next_u64() % 10_000) as f64 / 10_000.0
}

/// Changes through the control API: renamed, cancelled, rescheduled, deleted, moved between
/// calendars, added (an all-day event too).
fn change_tenant(env: &Env) {
    let c = env.sim.control();
    let (s, e) = env.sim.window();
    let truth = |m: &str| c.truth_all_calendars(m, s, e).expect("truth");
    let kind = |t: &TruthInstance| serde_json::to_value(t.kind).expect("kind");
    let single = |ts: &[TruthInstance], skip: usize| {
        ts.iter()
            .filter(|t| kind(t) == "singleInstance" && t.calendar == "Calendar" && !t.is_all_day)
            .nth(skip)
            .cloned()
            .expect("a single event")
    };
    let r = "room-1.01@contoso.com";
    let t = truth(r);
    let a = single(&t, 0);
    c.change_event(
        r,
        &a.goid,
        None,
        &EventChange {
            subject: Some("Renamed after a crash".into()),
            ..EventChange::default()
        },
    )
    .expect("rename");
    let b = single(&t, 1);
    c.move_event(r, &b.goid, "Maintenance").expect("move");
    let r = "room-1.02@contoso.com";
    let t = truth(r);
    let occ: Vec<&TruthInstance> = t.iter().filter(|t| kind(t) == "occurrence").collect();
    c.cancel_occurrence(r, &occ[0].goid, occ[0].original_start.expect("original"))
        .expect("cancel occurrence");
    if let Some(other) = occ
        .iter()
        .find(|o| o.original_start != occ[0].original_start)
    {
        c.change_event(
            r,
            &other.goid,
            other.original_start,
            &EventChange {
                start: Some(other.start + chrono::Duration::minutes(30)),
                end: Some(other.end + chrono::Duration::minutes(30)),
                ..EventChange::default()
            },
        )
        .expect("exception");
    }
    let r = "room-1.23@contoso.com";
    let t = truth(r);
    c.delete_event(r, &single(&t, 0).goid).expect("delete");
    if let Some(series) = t.iter().find(|t| kind(t) == "occurrence") {
        c.delete_event(r, &series.goid).expect("delete series");
    }
    c.change_event(
        r,
        &single(&t, 1).goid,
        None,
        &EventChange {
            is_cancelled: Some(true),
            ..EventChange::default()
        },
    )
    .expect("cancel meeting");
    let at = s + chrono::Duration::days(4);
    for (room, subject, all_day) in [
        ("room-2.05@contoso.com", "Booked after the crash", false),
        ("room-1.40@contoso.com", "Whole day, after the crash", true),
    ] {
        let new: NewEvent = serde_json::from_value(json!({
            "subject": subject, "is_all_day": all_day,
            "start": at + chrono::Duration::hours(if all_day { 0 } else { 9 }),
            "end": at + chrono::Duration::hours(if all_day { 24 } else { 10 }),
        }))
        .expect("new event");
        c.create_event(room, &new).expect("create");
    }
}

/// The whole scenario for one backend: `crash_dirs` directories, `kills` killed runs per
/// directory in the first and the last phase (one in the second).
fn scenario(backend: Backend, crash_dirs: usize, kills: usize) {
    let env = Env::start(backend);
    let tmp = tempfile::tempdir().expect("tmp");
    let reference = env.dir(tmp.path(), "reference");
    let crashed: Vec<PathBuf> = (0..crash_dirs)
        .map(|i| env.dir(tmp.path(), &format!("crashed-{i}")))
        .collect();
    let mut partial = 0;
    let mut killed = 0;
    let mut runs = 0;
    // `ensure`: the last phase keeps killing the last directory's runs (at most 12 more times)
    // until one kill fell between two calendar commits.
    let mut phase = |name: &str, kills: usize, ensure: bool, env: &Env| {
        let (took, _) = sync(&reference, None);
        let total = commits(env, &reference).len();
        eprintln!("{backend:?} {name}: the uninterrupted sync of {total} calendars took {took:?}");
        for (d, dir) in crashed.iter().enumerate() {
            let last = d + 1 == crashed.len();
            let mut k = 0;
            while k < kills || (ensure && last && partial == 0 && k < kills + 12) {
                k += 1;
                let f = 0.1 + 0.85 * random_fraction((d * 31 + k) as u64 + name.len() as u64);
                let at = took.mul_f64(f);
                let (committed, finished) = killed_sync(env, dir, at);
                runs += 1;
                killed += usize::from(!finished);
                let between = !finished && committed > 0 && committed < total;
                partial += usize::from(between);
                eprintln!(
                    "{backend:?} {name}: crashed-{d} killed at {at:?} ({:.0}%): {committed} of {total} calendars committed{}",
                    f * 100.0,
                    if finished { " (it had finished)" } else { "" }
                );
            }
            sync(dir, None);
        }
    };

    phase("first full read", kills, false, &env);
    let want = read_held(&env, &reference);
    assert_equals_truth(&env, &want, "first full read");
    for dir in &crashed {
        let d = differences(&read_held(&env, dir), &want, false);
        assert!(
            d.is_empty(),
            "{backend:?} first full read, {}: {} differences:\n{}",
            dir.display(),
            d.len(),
            d[..d.len().min(12)].join("\n")
        );
    }
    phase("second sync", 1, false, &env);
    change_tenant(&env);
    phase("incremental after changes", kills, true, &env);
    let want = read_held(&env, &reference);
    assert_equals_truth(&env, &want, "after changes");
    assert!(
        want.rows.values().any(|r| r.2),
        "soft-deleted rows are part of the comparison"
    );
    for dir in &crashed {
        let d = differences(&read_held(&env, dir), &want, true);
        assert!(
            d.is_empty(),
            "{backend:?} after changes, {}: {} differences:\n{}",
            dir.display(),
            d.len(),
            d[..d.len().min(12)].join("\n")
        );
    }
    eprintln!(
        "{backend:?}: {killed} of {runs} runs killed, {partial} between two calendar commits"
    );
    assert!(
        partial >= 1,
        "no run was killed between two calendar commits ({killed} kills)"
    );
    let Env { rt, sim, .. } = env;
    rt.block_on(sim.shutdown());
}

#[test]
fn graph_sync_killed_at_random_points_ends_as_an_uninterrupted_run() {
    scenario(Backend::Graph, 3, 2);
}

#[test]
fn ews_sync_killed_at_random_points_ends_as_an_uninterrupted_run() {
    scenario(Backend::Ews, 1, 3);
}
