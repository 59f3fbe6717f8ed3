//! Test harness: a simulator, a Graph source pointed at it, and an in-test collector that
//! applies batches the way the engine does (snapshots replace a calendar, deltas upsert and
//! remove by key or by item id) and keeps the cursors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use calpump_backend_common::retry::RetryPolicy;
use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{
    CalendarInfo, Cursor, MailboxInfo, MailboxKind, Removal, Source, SourceBatch, SourceError,
    SyncMessage, SyncOutput, SyncRequest,
};
use calpump_graph::GraphSource;
use calpump_plugin::{
    AttendeeKind, Event, EventKey, GlobalObjectId, ResponseStatus, Sensitivity, ShowAs, Window,
};
use calpump_simulator::{SimConfig, Simulator, catalogue};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tempfile::TempDir;

/// How the test app signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    Secret,
    Certificate,
}

pub struct Env {
    pub sim: Simulator,
    pub source: GraphSource,
    pub dir: TempDir,
}

pub async fn simulator(rooms: u32) -> Simulator {
    Simulator::start(SimConfig {
        rooms,
        events_per_room: 24,
        users: 4,
        seed: 11,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// A profile table for the simulator's good Graph app.
pub fn profile(
    sim: &Simulator,
    dir: &TempDir,
    cred: Cred,
    client_id: &str,
    secret: &str,
) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("tenant".into(), catalogue::TENANT_DOMAIN.into());
    t.insert("client_id".into(), client_id.into());
    t.insert("authority".into(), sim.authority().into());
    t.insert("graph_url".into(), sim.graph_url().into());
    t.insert("timeout".into(), "30s".into());
    match cred {
        Cred::Secret => {
            t.insert("client_secret".into(), secret.into());
        }
        Cred::Certificate => {
            let cert = dir.path().join("app.pem");
            let key = dir.path().join("app.key");
            std::fs::write(&cert, catalogue::GRAPH_APP_CERT_PEM).unwrap();
            std::fs::write(&key, catalogue::GRAPH_APP_KEY_PEM).unwrap();
            t.insert("certificate".into(), cert.display().to_string().into());
            let mut r = toml::Table::new();
            r.insert("file".into(), key.display().to_string().into());
            t.insert("private_key".into(), toml::Value::Table(r));
        }
    }
    t
}

/// Quick retries for tests (server delays are still honoured in full, within 30 s).
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_total: Duration::from_secs(30),
    }
}

pub fn source_for(dir: &TempDir, table: &toml::Table, name: &str) -> GraphSource {
    let secrets = SecretResolver::new(dir.path().join("calpump.key"));
    GraphSource::new(name, table, &secrets)
        .expect("source builds")
        .with_retry(quick_retry())
}

pub async fn start(rooms: u32, cred: Cred) -> Env {
    let sim = simulator(rooms).await;
    let dir = tempfile::tempdir().unwrap();
    let table = profile(
        &sim,
        &dir,
        cred,
        catalogue::GRAPH_APP_ID,
        catalogue::GRAPH_APP_SECRET,
    );
    let source = source_for(&dir, &table, &format!("test-{}", sim.addr().port()));
    Env { sim, source, dir }
}

pub fn room(building: u32, n: u32) -> String {
    format!("room-{building}.{n:02}@contoso.com")
}

/// The first `n` rooms in directory order (50 per building).
pub fn rooms(n: u32) -> Vec<String> {
    (0..n).map(|i| room(i / 50 + 1, i % 50 + 1)).collect()
}

pub fn window(sim: &Simulator) -> Window {
    let (start, end) = sim.window();
    Window { start, end }
}

pub fn mailbox(address: &str) -> MailboxInfo {
    MailboxInfo {
        address: address.to_string(),
        name: None,
        kind: MailboxKind::Room,
        room_list: None,
    }
}

/// What the collector holds: events by (mailbox, key), the engine's item index per calendar,
/// cursors per calendar.
#[derive(Default)]
pub struct Collector {
    pub events: BTreeMap<(String, EventKey), Event>,
    pub cursors: HashMap<(String, String), Cursor>,
    pub errors: Vec<(String, String, SourceError)>,
    pub snapshots: usize,
    pub deltas: usize,
}

impl Collector {
    fn apply(&mut self, req: &SyncRequest, batch: SourceBatch) {
        let mailbox = req.mailbox.address.clone();
        match batch {
            SourceBatch::Snapshot { events } => {
                self.snapshots += 1;
                self.events
                    .retain(|(m, _), e| !(m == &mailbox && e.calendar == req.calendar.path));
                for e in events {
                    self.events.insert((mailbox.clone(), e.key().clone()), e);
                }
            }
            SourceBatch::Delta { upserts, removals } => {
                self.deltas += 1;
                let upsert_keys: Vec<EventKey> = upserts.iter().map(|e| e.key().clone()).collect();
                for r in removals {
                    let key = match r {
                        Removal::Key(k) => Some(k),
                        Removal::Item(id) => self
                            .events
                            .iter()
                            .find(|((m, _), e)| {
                                m == &mailbox
                                    && e.calendar == req.calendar.path
                                    && e.source.item_id == id
                            })
                            .map(|((_, k), _)| k.clone()),
                    };
                    if let Some(k) = key
                        && !upsert_keys.contains(&k)
                    {
                        self.events.remove(&(mailbox.clone(), k));
                    }
                }
                for e in upserts {
                    self.events.insert((mailbox.clone(), e.key().clone()), e);
                }
            }
        }
    }

    /// Sync requests for these (mailbox, calendar) pairs, with the stored cursors.
    pub fn requests(&self, targets: &[(String, CalendarInfo)], window: Window) -> Vec<SyncRequest> {
        targets
            .iter()
            .map(|(m, c)| SyncRequest {
                route: "test".into(),
                mailbox: mailbox(m),
                calendar: c.clone(),
                window,
                cursor: self.cursors.get(&(m.clone(), c.path.clone())).cloned(),
            })
            .collect()
    }

    /// Runs one sync of every target in chunks of the source's preferred size (as the runner
    /// does); returns the number of failed calendars.
    pub async fn sync(
        &mut self,
        source: &GraphSource,
        targets: &[(String, CalendarInfo)],
        window: Window,
    ) -> usize {
        self.errors.clear();
        let requests = self.requests(targets, window);
        let chunk = source.preferred_chunk();
        for part in requests.chunks(chunk) {
            let work = part.to_vec();
            let (out, mut rx) = SyncOutput::channel(16);
            let mut messages = Vec::new();
            let drain = async {
                while let Some(m) = rx.recv().await {
                    messages.push(m);
                }
            };
            tokio::join!(source.sync(work.clone(), out), drain);
            let mut done = vec![false; work.len()];
            for m in messages {
                match m {
                    SyncMessage::Batch(i, batch) => {
                        assert!(!done[i], "a batch after Done");
                        self.apply(&work[i], batch);
                    }
                    SyncMessage::Done(i, result) => {
                        assert!(!done[i], "two Done for one calendar");
                        done[i] = true;
                        let key = (
                            work[i].mailbox.address.clone(),
                            work[i].calendar.path.clone(),
                        );
                        match result {
                            Ok(end) => match end.cursor {
                                Some(c) => {
                                    self.cursors.insert(key, c);
                                }
                                None => {
                                    self.cursors.remove(&key);
                                }
                            },
                            Err(e) => self.errors.push((key.0, key.1, e)),
                        }
                    }
                }
            }
            assert!(done.iter().all(|d| *d), "every calendar gets its Done");
        }
        self.errors.len()
    }

    pub fn of(&self, mailbox: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|((m, _), _)| m == mailbox)
            .map(|(_, e)| e)
            .collect()
    }
}

/// The calendar path calpump uses for the simulator's "Calendar/Maintenance".
pub fn neutral_path(sim_path: &str) -> String {
    match sim_path.rsplit_once('/') {
        None => "default".to_string(),
        Some((_, name)) => name.to_string(),
    }
}

/// The simulator's truth of a mailbox, as the canonical fields calpump maps, by key.
pub fn truth(sim: &Simulator, mailbox: &str, window: Window) -> BTreeMap<EventKey, Value> {
    let instances = sim
        .control()
        .truth_all_calendars(mailbox, window.start, window.end)
        .expect("truth");
    let mut out = BTreeMap::new();
    for t in instances {
        let v = serde_json::to_value(&t).unwrap();
        let goid = GlobalObjectId::from_hex(&t.goid).unwrap();
        let original = if v["kind"] == "singleInstance" {
            None
        } else {
            t.original_start
        };
        let key = EventKey::derive(mailbox, &goid, original).unwrap();
        assert!(out.insert(key, v).is_none(), "truth has a key twice");
    }
    out
}

fn opt(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Compares an event with its truth, field by field per the mapping. Returns the differences.
pub fn diff(e: &Event, t: &Value) -> Vec<String> {
    let mut d = Vec::new();
    let mut check = |name: &str, ok: bool, have: String, want: String| {
        if !ok {
            d.push(format!("{name}: have {have}, want {want}"));
        }
    };
    let kind = match e.kind {
        calpump_plugin::EventKind::Single => "singleInstance",
        calpump_plugin::EventKind::Occurrence => "occurrence",
        calpump_plugin::EventKind::Exception => "exception",
        calpump_plugin::EventKind::Unknown => "unknown",
    };
    check(
        "kind",
        t["kind"] == kind,
        kind.into(),
        t["kind"].to_string(),
    );
    check(
        "calendar",
        e.calendar == neutral_path(t["calendar"].as_str().unwrap()),
        e.calendar.clone(),
        t["calendar"].to_string(),
    );
    check(
        "subject",
        t["subject"] == e.subject.as_str(),
        e.subject.clone(),
        t["subject"].to_string(),
    );
    let ts = |s: &Value| s.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    // All-day events are dates at 00:00:00Z (what door signs and databases read), equal to the
    // truth's `all_day_dates`; timed events the truth's instants.
    let date = |s: &Value| {
        s.as_str()
            .and_then(|s| s.parse::<chrono::NaiveDate>().ok())
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
    };
    let (want_start, want_end) = if t["all_day_dates"].is_object() {
        (
            date(&t["all_day_dates"]["start"]),
            date(&t["all_day_dates"]["end"]),
        )
    } else {
        (ts(&t["start"]), ts(&t["end"]))
    };
    if e.all_day {
        check(
            "all-day at 00:00:00Z",
            e.start.time() == chrono::NaiveTime::MIN && e.end.time() == chrono::NaiveTime::MIN,
            format!("{} – {}", e.start, e.end),
            "00:00:00Z dates".into(),
        );
    }
    check(
        "start",
        want_start == Some(e.start),
        e.start.to_rfc3339(),
        format!(
            "{want_start:?} (truth {} {})",
            t["start"], t["all_day_dates"]
        ),
    );
    check(
        "end",
        want_end == Some(e.end),
        e.end.to_rfc3339(),
        format!("{want_end:?} (truth {} {})", t["end"], t["all_day_dates"]),
    );
    check(
        "all_day",
        t["is_all_day"] == e.all_day,
        e.all_day.to_string(),
        t["is_all_day"].to_string(),
    );
    check(
        "time_zone",
        opt(&t["time_zone_iana"]) == e.time_zone,
        format!("{:?}", e.time_zone),
        t["time_zone_iana"].to_string(),
    );
    let sens = match e.sensitivity {
        Sensitivity::Normal => "normal",
        Sensitivity::Personal => "personal",
        Sensitivity::Private => "private",
        Sensitivity::Confidential => "confidential",
        Sensitivity::Unknown => "?",
    };
    check(
        "sensitivity",
        t["sensitivity"] == sens,
        sens.into(),
        t["sensitivity"].to_string(),
    );
    let show = match e.show_as {
        ShowAs::Free => "free",
        ShowAs::Tentative => "tentative",
        ShowAs::Busy => "busy",
        ShowAs::Oof => "oof",
        ShowAs::WorkingElsewhere => "workingElsewhere",
        ShowAs::Unknown => "?",
    };
    check(
        "show_as",
        t["show_as"] == show,
        show.into(),
        t["show_as"].to_string(),
    );
    check(
        "cancelled",
        t["is_cancelled"] == e.cancelled,
        e.cancelled.to_string(),
        t["is_cancelled"].to_string(),
    );
    check(
        "location",
        opt(&t["location"]) == e.location,
        format!("{:?}", e.location),
        t["location"].to_string(),
    );
    check(
        "online",
        opt(&t["online_url"]) == e.online_meeting_url,
        format!("{:?}", e.online_meeting_url),
        t["online_url"].to_string(),
    );
    let cats: Vec<String> = serde_json::from_value(t["categories"].clone()).unwrap_or_default();
    check(
        "categories",
        cats == e.categories,
        format!("{:?}", e.categories),
        format!("{cats:?}"),
    );
    let org = e.organizer.clone().unwrap_or_default();
    check(
        "organizer",
        opt(&t["organizer"]["name"]) == org.name && opt(&t["organizer"]["address"]) == org.email,
        format!("{org:?}"),
        t["organizer"].to_string(),
    );
    let want: Vec<(Option<String>, Option<String>, String, String)> = t["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                opt(&a["name"]),
                opt(&a["address"]),
                a["type"].as_str().unwrap().to_string(),
                a["response"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let have: Vec<(Option<String>, Option<String>, String, String)> = e
        .attendees
        .iter()
        .map(|a| {
            let kind = match a.kind {
                AttendeeKind::Required => "required",
                AttendeeKind::Optional => "optional",
                AttendeeKind::Resource => "resource",
                AttendeeKind::Unknown => "?",
            };
            let response = match a.response {
                ResponseStatus::None => "none",
                ResponseStatus::Organizer => "organizer",
                ResponseStatus::Accepted => "accepted",
                ResponseStatus::TentativelyAccepted => "tentativelyAccepted",
                ResponseStatus::Declined => "declined",
                ResponseStatus::NotResponded => "notResponded",
                ResponseStatus::Unknown => "?",
            };
            (
                a.person.name.clone(),
                a.person.email.clone(),
                kind.to_string(),
                response.to_string(),
            )
        })
        .collect();
    check(
        "attendees",
        have == want,
        format!("{have:?}"),
        format!("{want:?}"),
    );
    check(
        "item_id",
        t["graph_immutable_id"] == e.source.item_id.as_str(),
        e.source.item_id.clone(),
        t["graph_immutable_id"].to_string(),
    );
    check(
        "ical_uid",
        // The meeting's iCalendar UID (MS-OXCICAL), as EWS reports it: the sender's UID for
        // invitations from outside Exchange, else the global object id in hex.
        opt(&t["ews_uid"]) == e.ical_uid,
        format!("{:?}", e.ical_uid),
        t["ews_uid"].to_string(),
    );
    check(
        "backend",
        e.source.backend == "graph",
        e.source.backend.clone(),
        "graph".into(),
    );
    d
}

/// Asserts the collector holds exactly the truth of these calendars (same keys, same fields).
pub fn assert_equal_to_truth(
    sim: &Simulator,
    collector: &Collector,
    targets: &[(String, CalendarInfo)],
    window: Window,
) {
    let mut problems = Vec::new();
    let mut total = 0;
    let mut mailboxes: Vec<&String> = targets.iter().map(|(m, _)| m).collect();
    mailboxes.dedup();
    for m in mailboxes {
        let paths: Vec<&str> = targets
            .iter()
            .filter(|(x, _)| x == m)
            .map(|(_, c)| c.path.as_str())
            .collect();
        let mut truth = truth(sim, m, window);
        truth.retain(|_, t| {
            paths.contains(&neutral_path(t["calendar"].as_str().unwrap_or("")).as_str())
        });
        total += truth.len();
        let have: BTreeMap<EventKey, &Event> = collector
            .of(m)
            .into_iter()
            .map(|e| (e.key().clone(), e))
            .collect();
        for (k, t) in &truth {
            match have.get(k) {
                None => problems.push(format!(
                    "{m}: missing {} {} ({})",
                    t["kind"], t["subject"], t["start"]
                )),
                Some(e) => {
                    let d = diff(e, t);
                    if !d.is_empty() {
                        problems.push(format!("{m}: {} differs: {}", e.subject, d.join("; ")));
                    }
                }
            }
        }
        for (k, e) in &have {
            if !truth.contains_key(k) {
                problems.push(format!(
                    "{m}: extra {:?} {} ({})",
                    e.kind, e.subject, e.start
                ));
            }
        }
    }
    assert!(total > 0, "the truth is empty");
    assert!(
        problems.is_empty(),
        "{} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(15)]
    );
}

/// Default calendars of these mailboxes.
pub fn default_targets(mailboxes: &[String]) -> Vec<(String, CalendarInfo)> {
    mailboxes
        .iter()
        .map(|m| (m.clone(), CalendarInfo::default_calendar()))
        .collect()
}

/// Sub-request and HTTP counts of the source's stats.
pub fn count(source: &GraphSource, op: &str) -> u64 {
    source.stats().op(op).map_or(0, |o| o.requests)
}
