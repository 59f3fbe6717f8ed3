//! Parity: the same simulator tenant read through an EWS profile and through a Graph profile
//! gives identical canonical events — same keys, same fields (all but the backends' own item
//! ids and change keys) — and both equal the simulator's truth mapped to the canonical model.
//! Then again after changes made through the control API and incremental syncs through both.
//!
//! Why here and not in a backend's tests: the root package already links both backends and
//! the simulator, so neither backend needs the other as a (dev-)dependency — a backend that
//! could see the other's code could end up sharing a bug with it.
//!
//! The tenant: rooms of four buildings (Berlin, New York, London, Tokyo), the first room of each
//! floor with a "Maintenance" sub-calendar, one user mailbox ("Team events"), every shape the
//! simulator generates, plus all-day events made here in several zones across the end of
//! summer time in Europe (25 Oct 2026) and in the US (1 Nov 2026), both inside the window.

#[path = "common/binary.rs"]
mod binary;

use std::collections::BTreeMap;
use std::sync::Arc;

use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{
    CalendarInfo, Cursor, MailboxInfo, MailboxKind, ProfileContext, Removal, Source, SourceBatch,
    SourceError, SourceFactory, SyncMessage, SyncOutput, SyncRequest,
};
use calpump_plugin::{Event, EventKey, EventKind, Sensitivity, ShowAs, Window};
use calpump_simulator::{EventChange, NewEvent, SimConfig, Simulator, TruthInstance, catalogue};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

/// What a sink holds for one backend, as the database and door-sign sinks hold it: rows by
/// (mailbox, key) with the calendar as an attribute — so a move between two calendars of a
/// mailbox is an upsert in the new one — plus the cursors.
#[derive(Default)]
struct Collector {
    rows: BTreeMap<(String, EventKey), Event>,
    cursors: BTreeMap<(String, String), Cursor>,
    errors: Vec<String>,
    snapshots: usize,
    deltas: usize,
}

impl Collector {
    fn apply(&mut self, req: &SyncRequest, batch: SourceBatch) {
        let mailbox = req.mailbox.address.clone();
        let path = req.calendar.path.clone();
        match batch {
            SourceBatch::Snapshot { events } => {
                self.snapshots += 1;
                // A complete snapshot: the calendar's rows in the window that it lacks go.
                let keep: Vec<EventKey> = events.iter().map(|e| e.key().clone()).collect();
                let mut seen = std::collections::BTreeSet::new();
                assert!(
                    keep.iter().all(|k| seen.insert(k.clone())),
                    "a key twice in a snapshot"
                );
                self.rows.retain(|(m, k), e| {
                    !(m == &mailbox && e.calendar == path && e.overlaps(&req.window))
                        || keep.contains(k)
                });
                for e in events {
                    self.rows.insert((mailbox.clone(), e.key().clone()), e);
                }
            }
            SourceBatch::Delta { upserts, removals } => {
                self.deltas += 1;
                for r in removals {
                    // As the engine does: an item id resolves through this calendar's index.
                    let key = match r {
                        Removal::Key(k) => Some(k),
                        Removal::Item(id) => self
                            .rows
                            .iter()
                            .find(|((m, _), e)| {
                                m == &mailbox && e.calendar == path && e.source.item_id == id
                            })
                            .map(|((_, k), _)| k.clone()),
                    };
                    if let Some(k) = key {
                        self.rows.remove(&(mailbox.clone(), k));
                    }
                }
                for e in upserts {
                    self.rows.insert((mailbox.clone(), e.key().clone()), e);
                }
            }
        }
    }

    /// One sync of every target, in chunks of the source's preferred size that keep all
    /// calendars of a mailbox together (as the runner does).
    async fn sync(
        &mut self,
        source: &dyn Source,
        targets: &[(MailboxInfo, CalendarInfo)],
        w: Window,
    ) {
        self.errors.clear();
        let chunk = source.preferred_chunk().max(1);
        let mut chunks: Vec<Vec<SyncRequest>> = Vec::new();
        let mut current: Vec<SyncRequest> = Vec::new();
        let mut i = 0;
        while i < targets.len() {
            let mailbox = &targets[i].0.address;
            let group: Vec<&(MailboxInfo, CalendarInfo)> = targets[i..]
                .iter()
                .take_while(|(m, _)| &m.address == mailbox)
                .collect();
            i += group.len();
            if !current.is_empty() && current.len() + group.len() > chunk {
                chunks.push(std::mem::take(&mut current));
            }
            current.extend(group.into_iter().map(|(m, c)| {
                SyncRequest {
                    route: "parity".into(),
                    mailbox: m.clone(),
                    calendar: c.clone(),
                    window: w,
                    cursor: self
                        .cursors
                        .get(&(m.address.clone(), c.path.clone()))
                        .cloned(),
                }
            }));
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        for work in chunks {
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
                    SyncMessage::Batch(i, batch) => self.apply(&work[i], batch),
                    SyncMessage::Done(i, result) => {
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
                            Err(e) => self.errors.push(describe(&key, &e)),
                        }
                    }
                }
            }
            assert!(done.iter().all(|d| *d), "every calendar gets its Done");
        }
    }

    fn events(&self) -> BTreeMap<(String, EventKey), Event> {
        self.rows.clone()
    }
}

fn describe(key: &(String, String), e: &SourceError) -> String {
    format!(
        "{} {}: {} {}",
        key.0,
        key.1,
        e.code(),
        e.diagnostic.detail()
    )
}

fn build(
    factory: &dyn SourceFactory,
    table: &toml::Table,
    dir: &std::path::Path,
) -> Arc<dyn Source> {
    let secrets = SecretResolver::new(dir.join("calpump.key"));
    let ctx = ProfileContext {
        name: factory.backend(),
        settings: table,
        secrets: &secrets,
    };
    let issues = factory.check(&ctx);
    assert!(issues.is_empty(), "{}: {issues:?}", factory.backend());
    match factory.build(&ctx) {
        Ok(s) => s,
        Err(e) => panic!("{}: {e}", factory.backend()),
    }
}

/// A `{ file = … }` secret reference to a file holding `value`.
fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).expect("secret file");
    format!(
        "{{ file = {} }}",
        toml::Value::String(path.display().to_string())
    )
}

fn ews_profile(sim: &Simulator, dir: &std::path::Path) -> toml::Table {
    toml::from_str(&format!(
        r#"url = "{url}"
           auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = {pw} }}
           impersonation = true"#,
        url = sim.ews_url(),
        pw = secret_file(dir, "ews-password", catalogue::ACCOUNT_PASSWORD),
    ))
    .expect("ews profile")
}

fn graph_profile(sim: &Simulator, dir: &std::path::Path) -> toml::Table {
    toml::from_str(&format!(
        r#"tenant = "{tenant}"
           client_id = "{id}"
           client_secret = {secret}
           authority = "{authority}"
           graph_url = "{graph}""#,
        tenant = catalogue::TENANT_DOMAIN,
        id = catalogue::GRAPH_APP_ID,
        secret = secret_file(dir, "graph-secret", catalogue::GRAPH_APP_SECRET),
        authority = sim.authority(),
        graph = sim.graph_url(),
    ))
    .expect("graph profile")
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn new_event(v: Value) -> NewEvent {
    serde_json::from_value(v).expect("new event")
}

/// All-day and zone cases the generator does not make on its own.
fn add_zone_cases(sim: &Simulator) {
    let c = sim.control();
    let all_day = |mailbox: &str,
                   subject: &str,
                   start: DateTime<Utc>,
                   days: i64,
                   zone: &str,
                   show_as: &str| {
        c.create_event(
            mailbox,
            &new_event(json!({
                "subject": subject, "is_all_day": true, "time_zone": zone, "show_as": show_as,
                "start": start, "end": start + Duration::days(days),
            })),
        )
        .expect("all-day event");
    };
    // Berlin room: the 25-hour day at the end of summer time, and three days across it.
    all_day(
        "room-1.02@contoso.com",
        "All day on the long Sunday",
        at(2026, 10, 25),
        1,
        "W. Europe Standard Time",
        "busy",
    );
    all_day(
        "room-1.02@contoso.com",
        "Three days across the clock change",
        at(2026, 10, 24),
        3,
        "Europe/Berlin",
        "free",
    );
    // New York room: the US change, a zone east of UTC with a half-hour offset, a series.
    all_day(
        "room-2.02@contoso.com",
        "All day on the US change",
        at(2026, 11, 1),
        1,
        "Eastern Standard Time",
        "busy",
    );
    all_day(
        "room-2.02@contoso.com",
        "Made in India",
        at(2026, 10, 22),
        1,
        "India Standard Time",
        "free",
    );
    c.create_event(
        "room-2.02@contoso.com",
        &new_event(json!({
            "subject": "All-day series across the US change", "is_all_day": true,
            "time_zone": "Eastern Standard Time", "show_as": "busy",
            "start": at(2026, 10, 30), "end": at(2026, 10, 31),
            "recurrence": {"pattern": {"type": "daily", "interval": 1},
                           "range": {"type": "numbered", "numberOfOccurrences": 4}}
        })),
    )
    .expect("all-day series");
    // Tokyo room: zones far west and far east of it.
    all_day(
        "room-4.02@contoso.com",
        "Made in Los Angeles",
        at(2026, 10, 28),
        1,
        "Pacific Standard Time",
        "busy",
    );
    all_day(
        "room-4.02@contoso.com",
        "Made in Sydney",
        at(2026, 10, 21),
        2,
        "AUS Eastern Standard Time",
        "free",
    );
    // London room: timed events in zones with renamed IANA ids and non-hour offsets.
    let t = at(2026, 10, 22) + Duration::hours(10);
    c.create_event(
        "room-3.02@contoso.com",
        &new_event(json!({
            "subject": "Timed, made in Kolkata", "time_zone": "India Standard Time",
            "start": t, "end": t + Duration::minutes(45),
            "location": "Bengaluru <Annex> & Co", "categories": ["Red category", "Blue category"],
            "online": true,
        })),
    )
    .expect("timed event");
}

/// Every (mailbox, calendar) the parity route reads, as a source lists them.
async fn targets(source: &dyn Source, mailboxes: &[String]) -> Vec<(MailboxInfo, CalendarInfo)> {
    let mut out = Vec::new();
    for m in mailboxes {
        let info = MailboxInfo {
            address: m.clone(),
            name: None,
            kind: if m.starts_with("room-") {
                MailboxKind::Room
            } else {
                MailboxKind::User
            },
            room_list: None,
        };
        let calendars = source
            .calendars(&info)
            .await
            .unwrap_or_else(|e| panic!("{}: calendars of {m}: {e}", source.backend()));
        assert_eq!(calendars[0].path, "default", "{calendars:?}");
        out.extend(calendars.into_iter().map(|c| (info.clone(), c)));
    }
    out
}

/// (mailbox, simulator calendar path) → the neutral path both backends must give it, for
/// calendars whose display name is not unique in the mailbox (the others: their own name).
type Renamed = BTreeMap<(String, String), String>;

/// The simulator's truth instance as the canonical event both backends must produce: the
/// mapping the binary-level tests use, with the paths of same-named calendars from `renamed`.
fn expected_event(mailbox: &str, t: &TruthInstance, renamed: &Renamed) -> Event {
    let mut e = binary::expected_event(mailbox, t);
    if let Some(path) = renamed.get(&(mailbox.to_string(), t.calendar.clone())) {
        e.calendar = path.clone();
    }
    e
}

fn comparable(e: &Event, with_last_modified: bool) -> BTreeMap<String, Value> {
    let Value::Object(map) = serde_json::to_value(e).expect("event json") else {
        panic!("an event is a JSON object");
    };
    map.into_iter()
        .filter(|(k, _)| k != "source" && (with_last_modified || k != "last_modified"))
        .collect()
}

/// Field-by-field differences of two events, readable.
fn field_diff(
    a_name: &str,
    a: &Event,
    b_name: &str,
    b: &Event,
    with_last_modified: bool,
) -> Vec<String> {
    let (a, b) = (
        comparable(a, with_last_modified),
        comparable(b, with_last_modified),
    );
    let mut fields: Vec<&String> = a.keys().chain(b.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|f| a.get(*f) != b.get(*f))
        .map(|f| {
            format!(
                "    {f}: {a_name} {} | {b_name} {}",
                a.get(f).map_or("(absent)".to_string(), Value::to_string),
                b.get(f).map_or("(absent)".to_string(), Value::to_string)
            )
        })
        .collect()
}

/// Compares two sets of events by key; returns a readable report of every difference.
fn compare(
    a_name: &str,
    a: &BTreeMap<(String, EventKey), Event>,
    b_name: &str,
    b: &BTreeMap<(String, EventKey), Event>,
    with_last_modified: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (k, e) in a {
        match b.get(k) {
            None => problems.push(format!(
                "{}: only {a_name} has {:?} “{}” at {} ({})",
                k.0, e.kind, e.subject, e.start, e.calendar
            )),
            Some(f) => {
                let d = field_diff(a_name, e, b_name, f, with_last_modified);
                if !d.is_empty() {
                    problems.push(format!(
                        "{}: “{}” ({})\n{}",
                        k.0,
                        e.subject,
                        k.1,
                        d.join("\n")
                    ));
                }
            }
        }
    }
    for (k, e) in b {
        if !a.contains_key(k) {
            problems.push(format!(
                "{}: only {b_name} has {:?} “{}” at {} ({})",
                k.0, e.kind, e.subject, e.start, e.calendar
            ));
        }
    }
    problems
}

fn truth(
    sim: &Simulator,
    mailboxes: &[String],
    w: Window,
    renamed: &Renamed,
) -> BTreeMap<(String, EventKey), Event> {
    let mut out = BTreeMap::new();
    for m in mailboxes {
        for t in sim
            .control()
            .truth_all_calendars(m, w.start, w.end)
            .expect("truth")
        {
            let e = expected_event(m, &t, renamed);
            assert!(
                out.insert((m.clone(), e.key().clone()), e).is_none(),
                "the truth holds a key twice"
            );
        }
    }
    out
}

fn assert_none(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} differences; the first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
}

struct Side {
    name: &'static str,
    source: Arc<dyn Source>,
    targets: Vec<(MailboxInfo, CalendarInfo)>,
    held: Collector,
}

impl Side {
    async fn sync(&mut self, w: Window) {
        self.held.sync(self.source.as_ref(), &self.targets, w).await;
        assert!(
            self.held.errors.is_empty(),
            "{}: {:#?}",
            self.name,
            self.held.errors
        );
    }
}

/// Both sides equal each other (with last-modified times) and the truth.
fn check_parity(
    stage: &str,
    sim: &Simulator,
    mailboxes: &[String],
    w: Window,
    ews: &Side,
    graph: &Side,
    renamed: &Renamed,
) {
    let (e, g) = (ews.held.events(), graph.held.events());
    assert!(!e.is_empty(), "{stage}: EWS read nothing");
    assert_none(
        &format!("{stage}: EWS vs Graph"),
        &compare("ews", &e, "graph", &g, true),
    );
    let want = truth(sim, mailboxes, w, renamed);
    assert_none(
        &format!("{stage}: EWS vs truth"),
        &compare("ews", &e, "truth", &want, false),
    );
    assert_none(
        &format!("{stage}: Graph vs truth"),
        &compare("graph", &g, "truth", &want, false),
    );
    // Door signs and databases read all-day events as dates: 00:00:00Z on both ends.
    for ev in e.values().chain(g.values()).filter(|ev| ev.all_day) {
        assert_eq!(ev.start.time(), chrono::NaiveTime::MIN, "{stage}: {ev:?}");
        assert_eq!(ev.end.time(), chrono::NaiveTime::MIN, "{stage}: {ev:?}");
    }
    eprintln!(
        "{stage}: {} events equal through EWS, Graph and the truth ({} all-day)",
        e.len(),
        e.values().filter(|ev| ev.all_day).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_and_graph_read_the_same_canonical_events() {
    let sim = Simulator::start(SimConfig {
        rooms: 200,
        events_per_room: 32,
        users: 6,
        seed: 23,
        // The window [19 Oct, 3 Nov 2026) holds the end of summer time in Europe and the US.
        anchor: Some(at(2026, 10, 20)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tmp");
    let (s, e) = sim.window();
    let w = Window { start: s, end: e };
    add_zone_cases(&sim);
    let dup_room = "room-2.01@contoso.com";
    let archived_maintenance = add_same_named_calendars(&sim, dup_room);

    let user = {
        let t = sim.tenant();
        let idx = t.directory.people[0];
        t.directory.get(idx).expect("a user").smtp.clone()
    };
    let mut mailboxes: Vec<String> = Vec::new();
    for building in 1..=4 {
        for n in [1, 2, 3, 11] {
            mailboxes.push(format!("room-{building}.{n:02}@contoso.com"));
        }
    }
    mailboxes.push(user.clone());

    let ews_source = build(
        &calpump_ews::EwsFactory,
        &ews_profile(&sim, dir.path()),
        dir.path(),
    );
    let graph_source = build(
        &calpump_graph::GraphFactory,
        &graph_profile(&sim, dir.path()),
        dir.path(),
    );
    let mut ews = Side {
        name: "ews",
        targets: targets(ews_source.as_ref(), &mailboxes).await,
        source: ews_source,
        held: Collector::default(),
    };
    let mut graph = Side {
        name: "graph",
        targets: targets(graph_source.as_ref(), &mailboxes).await,
        source: graph_source,
        held: Collector::default(),
    };
    let paths = |side: &Side| -> Vec<(String, String)> {
        side.targets
            .iter()
            .map(|(m, c)| (m.address.clone(), c.path.clone()))
            .collect()
    };
    assert_eq!(paths(&ews), paths(&graph), "the same calendars");
    assert!(
        ews.targets.iter().any(|(_, c)| c.path == "Maintenance")
            && ews.targets.iter().any(|(_, c)| c.path == "Team events"),
        "sub-calendars are part of the test"
    );

    // Two calendars named "Maintenance" in room-2.01 (one under "Archive"): distinct paths,
    // the same through both backends (asserted above), each holding its own meeting.
    let same_named: Vec<&CalendarInfo> = ews
        .targets
        .iter()
        .filter(|(m, c)| m.address == dup_room && c.name == "Maintenance")
        .map(|(_, c)| c)
        .collect();
    assert_eq!(same_named.len(), 2, "{same_named:?}");
    assert_ne!(same_named[0].path, same_named[1].path);
    let mut renamed = Renamed::new();
    for cal in &same_named {
        assert!(cal.path.starts_with("Maintenance ("), "{}", cal.path);
        let (_, index) = sim
            .tenant()
            .resolve_folder_id(&cal.id)
            .expect("a simulator folder id");
        let sim_path = if index == archived_maintenance {
            "Calendar/Archive/Maintenance"
        } else {
            "Calendar/Maintenance"
        };
        renamed.insert(
            (dup_room.to_string(), sim_path.to_string()),
            cal.path.clone(),
        );
    }
    assert_eq!(renamed.len(), 2, "one path per calendar");

    // 1. Full reads.
    ews.sync(w).await;
    graph.sync(w).await;
    check_parity("full read", &sim, &mailboxes, w, &ews, &graph, &renamed);
    let all = ews.held.events();
    let count = |f: &dyn Fn(&Event) -> bool| all.values().filter(|e| f(e)).count();
    assert!(count(&|e| e.all_day && e.show_as == ShowAs::Busy) >= 4);
    assert!(count(&|e| e.all_day && e.show_as == ShowAs::Free) >= 4);
    assert!(count(&|e| e.kind == EventKind::Exception) >= 4);
    assert!(count(&|e| e.kind == EventKind::Occurrence) >= 20);
    assert!(count(&|e| e.sensitivity == Sensitivity::Private) >= 4);
    assert!(count(&|e| e.cancelled) >= 4);
    assert!(count(&|e| e.online_meeting_url.is_some()) >= 4);
    assert!(count(&|e| e.subject.contains('<') && e.subject.contains('&')) >= 2);
    assert!(count(&|e| !e.subject.is_ascii()) >= 4);
    assert!(
        count(&|e| e
            .ical_uid
            .as_deref()
            .is_some_and(|u| u.contains("fabrikam") || u.contains('-')))
            >= 2
    );
    assert!(count(&|e| e.time_zone.as_deref() == Some("Asia/Kolkata")) >= 2);
    let zones: std::collections::BTreeSet<_> = all
        .values()
        .filter(|e| e.all_day)
        .filter_map(|e| e.time_zone.clone())
        .collect();
    assert!(
        zones.len() >= 5,
        "all-day events in several zones: {zones:?}"
    );

    // 2. Nothing changed: Graph starts its delta rounds, EWS sees no change.
    ews.sync(w).await;
    graph.sync(w).await;
    check_parity(
        "second sync, no changes",
        &sim,
        &mailboxes,
        w,
        &ews,
        &graph,
        &renamed,
    );

    // 3. Changes through the control API, then incremental syncs through both.
    change_tenant(&sim, w);
    ews.sync(w).await;
    graph.sync(w).await;
    check_parity("after changes", &sim, &mailboxes, w, &ews, &graph, &renamed);
    assert!(graph.held.deltas > 0, "Graph synced incrementally");
    ews.sync(w).await;
    graph.sync(w).await;
    check_parity(
        "one more incremental sync",
        &sim,
        &mailboxes,
        w,
        &ews,
        &graph,
        &renamed,
    );
    sim.shutdown().await;
}

/// A second "Maintenance" calendar in `room` (under a new "Archive" calendar; the first room of
/// a floor has one already) with one meeting in it; returns its simulator calendar index.
fn add_same_named_calendars(sim: &Simulator, room: &str) -> u16 {
    let c = sim.control();
    c.create_calendar(room, "Archive", None).expect("Archive");
    let index = c
        .create_calendar(room, "Maintenance", Some("Calendar/Archive"))
        .expect("Archive/Maintenance");
    let (start, _) = sim.window();
    let at = start + Duration::days(3) + Duration::hours(8);
    for (calendar, subject) in [
        ("Calendar/Archive/Maintenance", "Archived lift inspection"),
        ("Calendar/Maintenance", "Lift inspection"),
    ] {
        c.create_event(
            room,
            &new_event(json!({
                "subject": subject, "calendar": calendar,
                "start": at, "end": at + Duration::minutes(45),
            })),
        )
        .expect("event in a same-named calendar");
    }
    index
}

/// Adds, changes, cancels, moves and deletes; all-day events change dates and zones.
fn change_tenant(sim: &Simulator, w: Window) {
    let c = sim.control();
    let truth = |m: &str| c.truth_all_calendars(m, w.start, w.end).expect("truth");
    let kind = |t: &TruthInstance| serde_json::to_value(t.kind).expect("kind");

    // room-1.01 (has "Maintenance"): a single renamed and relocated, one moved to Maintenance,
    // one moved back, a new all-day event in Tokyo's zone.
    let r = "room-1.01@contoso.com";
    let t = truth(r);
    let singles: Vec<&TruthInstance> = t
        .iter()
        .filter(|t| kind(t) == "singleInstance" && t.calendar == "Calendar" && !t.is_all_day)
        .collect();
    c.change_event(
        r,
        &singles[0].goid,
        None,
        &EventChange {
            subject: Some("Renamed: Überprüfung & <Review>".into()),
            location: Some("Room 1.01 — Annex".into()),
            categories: Some(vec!["Green category".into()]),
            ..EventChange::default()
        },
    )
    .expect("change");
    c.move_event(r, &singles[1].goid, "Maintenance")
        .expect("move");
    if let Some(back) = t
        .iter()
        .find(|t| t.calendar != "Calendar" && kind(t) == "singleInstance")
    {
        c.move_event(r, &back.goid, "Calendar").expect("move back");
    }
    c.create_event(
        r,
        &new_event(json!({
            "subject": "New all-day, Tokyo", "is_all_day": true, "time_zone": "Tokyo Standard Time",
            "start": at(2026, 10, 26), "end": at(2026, 10, 27), "show_as": "busy",
        })),
    )
    .expect("create");

    // room-2.01: an occurrence cancelled, another rescheduled (→ exception), a meeting
    // cancelled by its organizer, an attendee list changed.
    let r = "room-2.01@contoso.com";
    let t = truth(r);
    let occ: Vec<&TruthInstance> = t.iter().filter(|t| kind(t) == "occurrence").collect();
    assert!(occ.len() >= 2, "room-2.01 has a series in the window");
    c.cancel_occurrence(r, &occ[0].goid, occ[0].original_start.expect("original"))
        .expect("cancel occurrence");
    let other = occ
        .iter()
        .find(|o| o.original_start != occ[0].original_start)
        .expect("another occurrence");
    c.change_event(
        r,
        &other.goid,
        other.original_start,
        &EventChange {
            subject: Some("This one moved (exception)".into()),
            start: Some(other.start + Duration::minutes(45)),
            end: Some(other.end + Duration::minutes(45)),
            ..EventChange::default()
        },
    )
    .expect("exception");
    if let Some(single) = t
        .iter()
        .find(|t| kind(t) == "singleInstance" && !t.is_cancelled && !t.is_all_day)
    {
        c.change_event(
            r,
            &single.goid,
            None,
            &EventChange {
                is_cancelled: Some(true),
                ..EventChange::default()
            },
        )
        .expect("cancel meeting");
    }

    // room-1.02: the all-day event on the long Sunday moves to another zone and another day;
    // a timed event becomes all-day; one event is deleted.
    let r = "room-1.02@contoso.com";
    let t = truth(r);
    let long_sunday = t
        .iter()
        .find(|t| t.subject == "All day on the long Sunday")
        .expect("made earlier");
    c.change_event(
        r,
        &long_sunday.goid,
        None,
        &EventChange {
            time_zone: Some("Eastern Standard Time".into()),
            start: Some(at(2026, 10, 31)),
            end: Some(at(2026, 11, 2)),
            ..EventChange::default()
        },
    )
    .expect("all-day change");
    let timed: Vec<&TruthInstance> = t
        .iter()
        .filter(|t| {
            kind(t) == "singleInstance" && !t.is_all_day && t.subject != long_sunday.subject
        })
        .collect();
    c.change_event(
        r,
        &timed[0].goid,
        None,
        &EventChange {
            is_all_day: Some(true),
            start: Some(at(2026, 10, 29)),
            end: Some(at(2026, 10, 30)),
            ..EventChange::default()
        },
    )
    .expect("to all-day");
    c.delete_event(r, &timed[1].goid).expect("delete");

    // room-4.02: a whole series deleted; a new weekly series in India's zone.
    let r = "room-4.02@contoso.com";
    let t = truth(r);
    if let Some(series) = t.iter().find(|t| kind(t) == "occurrence") {
        c.delete_event(r, &series.goid).expect("delete series");
    }
    let start = at(2026, 10, 21) + Duration::hours(4);
    c.create_event(
        r,
        &new_event(json!({
            "subject": "Weekly from Kolkata", "time_zone": "India Standard Time",
            "start": start, "end": start + Duration::hours(1),
            "attendees": [{"name": "Zoë Ärger", "address": "Zoe.Aerger@Contoso.com", "type": "optional", "response": "declined"},
                          {"name": "Ann", "address": "ann@contoso.com", "type": "required", "response": "accepted"}],
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday", "friday"]},
                           "range": {"type": "noEnd"}}
        })),
    )
    .expect("create series");
}
