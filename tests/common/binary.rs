//! Helpers of the binary-level backend tests (`ews_binary.rs`, `graph_binary.rs`): an
//! in-process simulator on its own runtime, directories holding a `calpump.toml` whose route
//! writes into the database sink (SQLite), `calpump sync --json` runs, the sink's rows read back
//! through the sink's own reader, and the simulator's truth mapped to the canonical model as
//! `tests/parity.rs` maps it — so the comparison is field by field.
//!
//! Included with `#[path = "common/binary.rs"] mod binary;` (it is not part of `common/mod.rs`);
//! `tests/parity.rs` includes it too, for the one mapping of the truth to canonical events.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use calpump_plugin::{
    Attendee, AttendeeKind, Event, EventIdentity, EventKind, GlobalObjectId, Person,
    ResponseStatus, Sensitivity, ShowAs, Sink as _, SourceIds, Window,
};
use calpump_simulator::control::Stats;
use calpump_simulator::{ALL_CALENDARS, FaultRule, Protocol, SimConfig, Simulator, TruthInstance};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_calpump");
pub const ROUTE: &str = "rooms";

/// The simulator, served by a runtime of its own while the test thread runs the binary.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sim: Simulator,
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn start(config: SimConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt.block_on(Simulator::start(config)).expect("simulator");
        Env {
            rt,
            sim,
            tmp: tempfile::tempdir().expect("tmp"),
        }
    }

    pub fn control(&self) -> &calpump_simulator::Control {
        self.sim.control()
    }

    /// A fresh directory with a config: `profile` is the `[profiles.source]` table's body,
    /// `route` the lines of the `[[routes]]` table after `name`, `profile` and `sinks`.
    pub fn dir(&self, name: &str, profile: &str, route: &str) -> Dir {
        let path = self.tmp.path().join(name);
        std::fs::create_dir_all(&path).expect("dir");
        let db = path.join("events.db");
        let config = format!(
            r#"[state]
path = "state.db"

[profiles.source]
{profile}

[sinks.db]
plugin = "database"
url = {db}

[[routes]]
name = "{ROUTE}"
profile = "source"
sinks = ["db"]
{route}
"#,
            db = q(&format!("sqlite://{}", db.display())),
        );
        std::fs::write(path.join("calpump.toml"), config).expect("config");
        Dir { path }
    }

    /// A `{ file = … }` secret reference to a new file holding `value`.
    pub fn secret(&self, name: &str, value: &str) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, value).expect("secret file");
        format!("{{ file = {} }}", q(&path.display().to_string()))
    }

    /// A file holding `content`; its path as a TOML string.
    pub fn file(&self, name: &str, content: &str) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, content).expect("file");
        q(&path.display().to_string())
    }

    pub fn stats(&self) -> Stats {
        self.control().stats()
    }

    pub fn shutdown(self) {
        let Env { rt, sim, tmp } = self;
        rt.block_on(sim.shutdown());
        drop(tmp);
    }
}

/// A TOML string literal.
pub fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A route's lines for a list of mailboxes.
pub fn mailboxes_route(mailboxes: &[String], calendars: &str) -> String {
    let list: Vec<String> = mailboxes.iter().map(|m| q(m)).collect();
    format!(
        "mailboxes = [{}]\ncalendars = \"{calendars}\"\nwindow = {{ past_days = 1, future_days = 14 }}\n",
        list.join(", ")
    )
}

/// `room-B.NN@contoso.com` for `n` rooms of building `b`, from 1.
pub fn rooms(b: u32, n: u32) -> Vec<String> {
    (1..=n)
        .map(|i| format!("room-{b}.{i:02}@contoso.com"))
        .collect()
}

pub struct Dir {
    pub path: PathBuf,
}

/// One `calpump sync --json` run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The `--json` report (`Value::Null` when stdout held none).
    pub report: Value,
    pub took: Duration,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Output for an assertion message (the end of the log).
    pub fn show(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr (end)\n{}",
            self.code,
            self.stdout.chars().take(6000).collect::<String>(),
            tail.join("\n")
        )
    }

    /// The window the route synced (from the report).
    pub fn window(&self) -> Window {
        let w = &self.report["routes"][0]["window"];
        let t = |v: &Value| {
            v.as_str()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                .unwrap_or_else(|| panic!("a window in the report: {}", self.show()))
        };
        Window {
            start: t(&w["start"]),
            end: t(&w["end"]),
        }
    }

    /// Every diagnostic code of the report: (mailbox or `route`, code), errors only.
    pub fn error_codes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for route in self.report["routes"].as_array().into_iter().flatten() {
            for e in route["errors"].as_array().into_iter().flatten() {
                out.push(("route".to_string(), code(e)));
            }
            for m in route["mailboxes"].as_array().into_iter().flatten() {
                for e in m["errors"].as_array().into_iter().flatten() {
                    out.push((m["address"].as_str().unwrap_or("?").to_string(), code(e)));
                }
            }
        }
        out
    }

    /// Every warning code of the report: (mailbox, code).
    pub fn warning_codes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for route in self.report["routes"].as_array().into_iter().flatten() {
            for m in route["mailboxes"].as_array().into_iter().flatten() {
                for e in m["warnings"].as_array().into_iter().flatten() {
                    out.push((m["address"].as_str().unwrap_or("?").to_string(), code(e)));
                }
            }
        }
        out
    }

    /// Calendars the route planned (the report's counts).
    pub fn calendars(&self) -> u64 {
        self.report["routes"][0]["counts"]["calendars"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The run's status (`ok`, `partial`, `failed`).
    pub fn status(&self) -> String {
        self.report["routes"][0]["status"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }
}

fn code(e: &Value) -> String {
    e["code"].as_str().unwrap_or("?").to_string()
}

impl Dir {
    /// `calpump sync --json` (plus `extra`), with `env` set; waits for it.
    pub fn sync_with(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let started = Instant::now();
        let mut cmd = Command::new(BIN);
        cmd.arg("sync")
            .arg("--json")
            .args(extra)
            .current_dir(&self.path)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("calpump sync runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Run {
            code: out.status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
            report,
            took: started.elapsed(),
        }
    }

    pub fn sync(&self) -> Run {
        self.sync_with(&[], &[])
    }

    /// A sync that must succeed: exit 0, no error in the report.
    pub fn sync_ok(&self, stage: &str) -> Run {
        let run = self.sync();
        assert!(
            run.ok() && run.error_codes().is_empty(),
            "{stage}: calpump sync failed\n{}",
            run.show()
        );
        run
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .current_dir(&self.path)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .output()
            .expect("calpump runs")
    }

    /// Every row (live and soft-deleted) the database sink holds for these mailboxes, through
    /// the sink's own reader: (mailbox, key) → (event, deleted). A key read twice fails.
    pub fn rows(&self, mailboxes: &[String]) -> BTreeMap<(String, String), (Event, bool)> {
        let db = calpump_sink_database::DatabaseSink::create(serde_json::json!({
            "url": format!("sqlite://{}", self.path.join("events.db").display())
        }))
        .expect("database sink opens");
        let mut rows = BTreeMap::new();
        for m in mailboxes {
            for row in db.read_rows(ROUTE, m, None).expect("rows") {
                assert_eq!(row.route, ROUTE);
                let key = (m.clone(), row.event.key().as_str().to_string());
                assert!(
                    rows.insert(key.clone(), (row.event, row.deleted_at.is_some()))
                        .is_none(),
                    "a key twice in the database: {key:?}"
                );
            }
        }
        rows
    }

    /// The live rows of these mailboxes.
    pub fn live(&self, mailboxes: &[String]) -> BTreeMap<(String, String), Event> {
        self.rows(mailboxes)
            .into_iter()
            .filter(|(_, (_, deleted))| !deleted)
            .map(|(k, (e, _))| (k, e))
            .collect()
    }

    /// Every row of the sink's table, whatever the mailbox: (route, mailbox, key), through the
    /// `sqlite3` command (the sink reads by route and mailbox only). Fails without it.
    pub fn all_keys(&self) -> Vec<(String, String, String)> {
        let out = Command::new("sqlite3")
            .arg(self.path.join("events.db"))
            .arg("SELECT route, mailbox, event_key FROM events ORDER BY 1, 2, 3")
            .output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| {
                    let mut p = l.splitn(3, '|');
                    (
                        p.next().unwrap_or_default().to_string(),
                        p.next().unwrap_or_default().to_string(),
                        p.next().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            _ => panic!("sqlite3 could not read {}", self.path.display()),
        }
    }
}

// ---- The truth as canonical events (as tests/parity.rs maps it) ----

fn neutral_path(sim_path: &str) -> String {
    match sim_path.rsplit_once('/') {
        None => "default".to_string(),
        Some((_, name)) => name.to_string(),
    }
}

fn nonempty(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

fn enum_from<T: serde::de::DeserializeOwned>(sim_spelling: &Value) -> T {
    // The simulator spells enums as Graph does (camelCase); the model in snake_case.
    let camel = sim_spelling.as_str().expect("an enum spelling");
    let mut snake = String::new();
    for ch in camel.chars() {
        if ch.is_ascii_uppercase() {
            snake.push('_');
            snake.push(ch.to_ascii_lowercase());
        } else {
            snake.push(ch);
        }
    }
    serde_json::from_value(Value::String(snake)).expect("model enum")
}

fn kind_rank(kind: AttendeeKind) -> u8 {
    match kind {
        AttendeeKind::Required => 0,
        AttendeeKind::Optional => 1,
        AttendeeKind::Resource => 2,
        AttendeeKind::Unknown => 3,
    }
}

/// The simulator's truth instance as the canonical event a backend must produce.
pub fn expected_event(mailbox: &str, t: &TruthInstance) -> Event {
    let v = serde_json::to_value(t).expect("truth json");
    let goid = GlobalObjectId::from_hex(&t.goid).expect("goid");
    let kind = match v["kind"].as_str() {
        Some("singleInstance") => EventKind::Single,
        Some("occurrence") => EventKind::Occurrence,
        Some("exception") => EventKind::Exception,
        other => panic!("truth kind {other:?}"),
    };
    let original = if kind == EventKind::Single {
        None
    } else {
        t.original_start
    };
    let (start, end) = match &t.all_day_dates {
        Some(d) => (
            d.start.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
            d.end.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        ),
        None => (t.start, t.end),
    };
    let identity = EventIdentity::new(mailbox, goid, original).expect("identity");
    let mut e = Event::new(
        identity,
        neutral_path(&t.calendar),
        SourceIds::default(),
        t.subject.clone(),
        start,
        end,
    )
    .expect("event");
    e.kind = kind;
    e.ical_uid = nonempty(&t.ews_uid);
    e.location = nonempty(&t.location);
    e.organizer = Some(Person {
        name: nonempty(v["organizer"]["name"].as_str().unwrap_or_default()),
        email: nonempty(v["organizer"]["address"].as_str().unwrap_or_default()),
    })
    .filter(|p| p.name.is_some() || p.email.is_some());
    let mut attendees: Vec<Attendee> = v["attendees"]
        .as_array()
        .expect("attendees")
        .iter()
        .map(|a| Attendee {
            person: Person {
                name: a["name"].as_str().and_then(nonempty),
                email: a["address"].as_str().and_then(nonempty),
            },
            kind: enum_from::<AttendeeKind>(&a["type"]),
            response: enum_from::<ResponseStatus>(&a["response"]),
        })
        .collect();
    // Canonical order: required, optional, resource; as given within each.
    attendees.sort_by_key(|a| kind_rank(a.kind));
    e.attendees = attendees;
    e.time_zone = nonempty(&t.time_zone_iana);
    e.all_day = t.is_all_day;
    e.show_as = enum_from::<ShowAs>(&v["show_as"]);
    e.sensitivity = enum_from::<Sensitivity>(&v["sensitivity"]);
    e.cancelled = t.is_cancelled;
    e.online_meeting_url = t.online_url.clone().filter(|u| !u.is_empty());
    e.categories = t.categories.clone();
    e
}

/// The truth of `mailboxes` for `window`: (mailbox, key) → canonical event. `all`: every
/// calendar, else the default one.
pub fn truth(
    sim: &Simulator,
    mailboxes: &[String],
    window: Window,
    all: bool,
) -> BTreeMap<(String, String), Event> {
    let mut out = BTreeMap::new();
    for m in mailboxes {
        let calendar = if all { ALL_CALENDARS } else { "Calendar" };
        for t in sim
            .control()
            .truth(m, Some(calendar), window.start, window.end)
            .expect("truth")
        {
            let e = expected_event(m, &t);
            let key = (m.clone(), e.key().as_str().to_string());
            assert!(out.insert(key, e).is_none(), "the truth holds a key twice");
        }
    }
    out
}

/// The canonical JSON of an event without the fields the truth does not know (the backend's
/// item ids and change key; the last-modified time).
fn comparable(e: &Event) -> BTreeMap<String, Value> {
    let Value::Object(map) = serde_json::to_value(e).expect("event json") else {
        panic!("an event is a JSON object");
    };
    map.into_iter()
        .filter(|(k, _)| k != "source" && k != "last_modified")
        .collect()
}

/// Readable differences between the sink's live rows and the truth (empty: equal).
pub fn differences(
    have: &BTreeMap<(String, String), Event>,
    want: &BTreeMap<(String, String), Event>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, w) in want {
        match have.get(k) {
            None => out.push(format!(
                "missing in the sink: {} {:?} “{}” at {} ({})",
                k.0, w.kind, w.subject, w.start, w.calendar
            )),
            Some(h) => {
                let (a, b) = (comparable(h), comparable(w));
                let fields: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                let diff: Vec<String> = fields
                    .into_iter()
                    .filter(|f| a.get(*f) != b.get(*f))
                    .map(|f| {
                        format!(
                            "    {f}: sink {} | truth {}",
                            a.get(f).map_or("(absent)".into(), Value::to_string),
                            b.get(f).map_or("(absent)".into(), Value::to_string)
                        )
                    })
                    .collect();
                if !diff.is_empty() {
                    out.push(format!(
                        "{} “{}” ({}):\n{}",
                        k.0,
                        w.subject,
                        k.1,
                        diff.join("\n")
                    ));
                }
            }
        }
    }
    for (k, h) in have {
        if !want.contains_key(k) {
            out.push(format!(
                "stray live row: {} {:?} “{}” at {} ({})",
                k.0, h.kind, h.subject, h.start, h.calendar
            ));
        }
    }
    out
}

/// The sink's live rows of `mailboxes` equal the truth for `window`, field by field; no stray
/// row of another mailbox or route either. Returns how many events were compared.
pub fn assert_sink_equals_truth(
    stage: &str,
    env: &Env,
    dir: &Dir,
    mailboxes: &[String],
    window: Window,
    all: bool,
) -> usize {
    let n = assert_mailboxes_equal_truth(stage, env, dir, mailboxes, window, all);
    assert_no_foreign_rows(stage, dir, mailboxes);
    n
}

/// The sink's live rows of `mailboxes` equal the truth for `window`, field by field (other
/// mailboxes' rows are not looked at).
pub fn assert_mailboxes_equal_truth(
    stage: &str,
    env: &Env,
    dir: &Dir,
    mailboxes: &[String],
    window: Window,
    all: bool,
) -> usize {
    let have = dir.live(mailboxes);
    let want = truth(&env.sim, mailboxes, window, all);
    let d = differences(&have, &want);
    assert!(
        d.is_empty(),
        "{stage}: the sink differs from the truth in {} places; the first:\n{}",
        d.len(),
        d[..d.len().min(15)].join("\n")
    );
    want.len()
}

/// No row (live or deleted) of another route or of a mailbox not in `route_mailboxes`.
pub fn assert_no_foreign_rows(stage: &str, dir: &Dir, route_mailboxes: &[String]) {
    let known: BTreeSet<&String> = route_mailboxes.iter().collect();
    let others: Vec<_> = dir
        .all_keys()
        .into_iter()
        .filter(|(r, m, _)| r != ROUTE || !known.contains(m))
        .take(5)
        .collect();
    assert!(
        others.is_empty(),
        "{stage}: rows of no mailbox of the route: {others:?}"
    );
}

/// Mailboxes the simulator counted `operation` for.
pub fn mailboxes_of(stats: &Stats, protocol: Protocol, operation: &str) -> BTreeSet<String> {
    stats
        .entries
        .iter()
        .filter(|e| e.protocol == protocol && e.operation.eq_ignore_ascii_case(operation))
        .filter_map(|e| e.mailbox.clone())
        .collect()
}

/// How often `operation` was counted for one mailbox.
pub fn count_for(stats: &Stats, protocol: Protocol, operation: &str, mailbox: &str) -> u64 {
    stats
        .entries
        .iter()
        .filter(|e| {
            e.protocol == protocol
                && e.operation.eq_ignore_ascii_case(operation)
                && e.mailbox.as_deref() == Some(mailbox)
        })
        .map(|e| e.count)
        .sum()
}

/// Instances of a mailbox's calendars in the simulator's populated window.
pub fn truth_of(env: &Env, mailbox: &str) -> Vec<TruthInstance> {
    let (s, e) = env.sim.window();
    env.control()
        .truth_all_calendars(mailbox, s, e)
        .expect("truth")
}

pub fn kind(t: &TruthInstance) -> String {
    serde_json::to_value(t.kind)
        .expect("kind")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The n-th plain timed single of a mailbox's default calendar.
pub fn single(env: &Env, mailbox: &str, n: usize) -> TruthInstance {
    truth_of(env, mailbox)
        .into_iter()
        .filter(|t| {
            kind(t) == "singleInstance"
                && t.calendar == "Calendar"
                && !t.is_all_day
                && !t.is_cancelled
        })
        .nth(n)
        .unwrap_or_else(|| panic!("{mailbox} has a single event #{n}"))
}

/// The first occurrence of a series in a mailbox's default calendar.
pub fn occurrence(env: &Env, mailbox: &str) -> TruthInstance {
    truth_of(env, mailbox)
        .into_iter()
        .find(|t| kind(t) == "occurrence" && t.calendar == "Calendar")
        .unwrap_or_else(|| panic!("{mailbox} has an occurrence"))
}

pub fn change(v: Value) -> calpump_simulator::EventChange {
    serde_json::from_value(v).expect("event change")
}

pub fn new_event(v: Value) -> calpump_simulator::NewEvent {
    serde_json::from_value(v).expect("new event")
}

// ---- Faults ----

/// What a run with a fault may end as.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Exit 0, no error, equal to the truth.
    Finishes,
    /// Exit 1; at least one error, each with one of these codes.
    FailsWith(&'static [&'static str]),
    /// Either of the two.
    Either(&'static [&'static str]),
}

/// Checks one run under a fault against `expect`: the mailboxes without an error equal the
/// truth (default calendars), the failed ones hold exactly what they held before the run
/// (`before`), no row of another mailbox.
pub fn judge(
    stage: &str,
    env: &Env,
    dir: &Dir,
    rooms: &[String],
    run: &Run,
    expect: Expect,
    before: &BTreeMap<(String, String), (Event, bool)>,
) {
    let errors = run.error_codes();
    let allowed: &[&str] = match expect {
        Expect::Finishes => {
            assert!(
                run.ok() && errors.is_empty(),
                "{stage}: expected the sync to finish\n{}",
                run.show()
            );
            &[]
        }
        Expect::FailsWith(codes) => {
            assert!(
                run.code == Some(1) && !errors.is_empty(),
                "{stage}: expected exit 1 with {codes:?}\n{}",
                run.show()
            );
            codes
        }
        Expect::Either(codes) => {
            assert!(
                (run.code == Some(0) && errors.is_empty())
                    || (run.code == Some(1) && !errors.is_empty()),
                "{stage}: exit code and errors disagree\n{}",
                run.show()
            );
            codes
        }
    };
    for (who, code) in &errors {
        assert!(
            allowed.contains(&code.as_str()),
            "{stage}: {who} failed with {code}, expected one of {allowed:?}\n{}",
            run.show()
        );
    }
    // Every error of the report is a catalogue entry with a cause and a remedy.
    let described = run.report["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            r["mailboxes"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["errors"].as_array().into_iter().flatten())
                .chain(r["errors"].as_array().into_iter().flatten())
        })
        .all(|e| {
            e["cause"].as_str().is_some_and(|s| !s.is_empty())
                && e["remedy"].as_str().is_some_and(|s| !s.is_empty())
        });
    assert!(
        described,
        "{stage}: an error without cause or remedy\n{}",
        run.show()
    );
    let failed: BTreeSet<String> = errors.iter().map(|(m, _)| m.clone()).collect();
    assert!(
        !failed.contains("route"),
        "{stage}: the route itself failed\n{}",
        run.show()
    );
    let (bad, good): (Vec<String>, Vec<String>) =
        rooms.iter().cloned().partition(|r| failed.contains(r));
    assert_mailboxes_equal_truth(stage, env, dir, &good, run.window(), false);
    assert_no_foreign_rows(stage, dir, rooms);
    let was: BTreeMap<_, _> = before
        .iter()
        .filter(|((m, _), _)| bad.contains(m))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        dir.rows(&bad),
        was,
        "{stage}: a failed mailbox's rows changed"
    );
}

/// Changes a single event of every room, so an incremental sync has something to read in each.
pub fn change_every_room(env: &Env, rooms: &[String], round: usize) {
    for room in rooms {
        let s = single(env, room, round % 3);
        env.control()
            .change_event(
                room,
                &s.goid,
                None,
                &change(serde_json::json!({"subject": format!("Round {round} in {room}")})),
            )
            .expect("change");
    }
}

/// One fault in a fresh directory: for each of `phases` (the first a full read, the others
/// incremental after changes in every room) `rules` are injected, `calpump sync` runs and is
/// judged, and every rule with a count must have been used up (the fault was met); then, the
/// fault gone, a sync must make the sink equal to the truth. Returns the runs.
pub fn fault_scenario(
    env: &Env,
    dir: &Dir,
    name: &str,
    rooms: &[String],
    phases: &[&str],
    rules: &[FaultRule],
    expect: Expect,
) -> Vec<Run> {
    let c = env.control();
    c.clear_faults();
    let mut runs = Vec::new();
    for (round, phase) in phases.iter().enumerate() {
        if round > 0 {
            change_every_room(env, rooms, round + name.len());
        }
        for rule in rules {
            c.add_fault(rule.clone());
        }
        let before = dir.rows(rooms);
        let run = dir.sync();
        let stage = format!("{name} ({phase})");
        judge(&stage, env, dir, rooms, &run, expect, &before);
        let left: Vec<_> = c
            .faults()
            .into_iter()
            .filter(|(_, r)| r.count.is_some())
            .collect();
        assert!(left.is_empty(), "{stage}: faults never met: {left:?}");
        eprintln!(
            "{stage}: exit {:?}, errors {:?}, {:?}",
            run.code,
            run.error_codes(),
            run.took
        );
        runs.push(run);
        c.clear_faults();
    }
    let stage = format!("{name}: after the fault");
    let run = dir.sync_ok(&stage);
    assert_sink_equals_truth(&stage, env, dir, rooms, run.window(), false);
    runs.push(run);
    runs
}
