//! Shared helpers of the simulator tests: profiles for each auth mode, a collector that applies
//! batches like a sink does, and the comparison with the simulator's truth.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use calpump_backend_common::retry::RetryPolicy;
use calpump_backend_common::stats::Stats;
use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{
    CalendarInfo, Cursor, MailboxInfo, MailboxKind, Source, SourceBatch, SourceError, SyncMessage,
    SyncOutput, SyncRequest,
};
use calpump_ews::{EwsSource, config};
use calpump_plugin::{Event, EventKey, GlobalObjectId, Window};
use calpump_simulator::{SimConfig, Simulator, catalogue};

pub const PASSWORD: &str = catalogue::ACCOUNT_PASSWORD;

pub async fn sim(rooms: u32) -> Simulator {
    Simulator::start(SimConfig {
        rooms,
        events_per_room: 24,
        seed: 11,
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

/// The profile TOML of an auth mode against the simulator.
pub fn profile_toml(sim: &Simulator, mode: &str) -> String {
    let url = sim.ews_url();
    let authority = sim.authority();
    match mode {
        "basic" => format!(
            r#"url = "{url}"
               auth = {{ kind = "basic", username = "svc-pump@contoso.com", password = "{PASSWORD}" }}
               impersonation = true"#
        ),
        "ntlm" => format!(
            r#"url = "{url}"
               auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = "{PASSWORD}" }}
               impersonation = true"#
        ),
        "client_credentials" => format!(
            r#"url = "{url}"
               auth = {{ kind = "oauth", tenant = "{tenant}", client_id = "{id}", client_secret = "{secret}", authority = "{authority}" }}
               probe_mailbox = "room-1.01@contoso.com""#,
            tenant = catalogue::TENANT_DOMAIN,
            id = catalogue::EWS_APP_ID,
            secret = catalogue::EWS_APP_SECRET,
        ),
        "password_grant" => format!(
            r#"url = "{url}"
               auth = {{ kind = "oauth", tenant = "{tenant}", client_id = "{id}", username = "svc-pump@contoso.com", password = "{PASSWORD}", authority = "{authority}" }}
               impersonation = false"#,
            tenant = catalogue::TENANT_DOMAIN,
            id = catalogue::DELEGATED_APP_ID,
        ),
        other => panic!("unknown mode {other}"),
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_total: Duration::from_secs(30),
    }
}

pub fn source_from(toml_text: &str) -> EwsSource {
    let table: toml::Table = toml::from_str(toml_text).expect("toml");
    let (settings, issues) = config::read("sim", &table, None);
    let settings = settings.unwrap_or_else(|| panic!("profile: {issues:?}"));
    EwsSource::build_with_stats(
        settings,
        &SecretResolver::new("/nonexistent"),
        Stats::detached(),
    )
    .expect("build")
    .with_retry(fast_retry())
}

pub fn source(sim: &Simulator, mode: &str) -> EwsSource {
    source_from(&profile_toml(sim, mode))
}

pub fn window(sim: &Simulator) -> Window {
    let (start, end) = sim.window();
    Window { start, end }
}

pub fn room(address: &str) -> MailboxInfo {
    MailboxInfo {
        address: address.to_string(),
        name: None,
        kind: MailboxKind::Room,
        room_list: None,
    }
}

/// What a sink holds: per mailbox, the events by key.
#[derive(Debug, Default)]
pub struct Collector {
    pub mailboxes: BTreeMap<String, BTreeMap<EventKey, Event>>,
    pub cursors: BTreeMap<String, Cursor>,
    pub errors: BTreeMap<String, SourceError>,
    pub snapshots: usize,
    pub batches_per_mailbox: BTreeMap<String, usize>,
}

impl Collector {
    /// Runs one sync of `mailboxes` (default calendar) with the stored cursors.
    pub async fn sync(&mut self, source: &dyn Source, mailboxes: &[String], win: Window) {
        let work: Vec<SyncRequest> = mailboxes
            .iter()
            .map(|m| SyncRequest {
                route: "rooms".into(),
                mailbox: room(m),
                calendar: CalendarInfo::default_calendar(),
                window: win,
                cursor: self.cursors.get(m).cloned(),
            })
            .collect();
        self.errors.clear();
        let (out, mut rx) = SyncOutput::channel(16);
        let names: Vec<String> = mailboxes.to_vec();
        let producer = async {
            source.sync(work, out).await;
        };
        let consumer = async {
            while let Some(msg) = rx.recv().await {
                match msg {
                    SyncMessage::Batch(i, SourceBatch::Snapshot { events }) => {
                        let m = &names[i];
                        self.snapshots += 1;
                        *self.batches_per_mailbox.entry(m.clone()).or_default() += 1;
                        let held = self.mailboxes.entry(m.clone()).or_default();
                        held.clear();
                        for e in events {
                            assert_eq!(e.mailbox(), m.as_str());
                            assert!(
                                held.insert(e.key().clone(), e).is_none(),
                                "a key twice in one snapshot"
                            );
                        }
                    }
                    SyncMessage::Batch(i, SourceBatch::Delta { .. }) => {
                        panic!("EWS delivers snapshots, got a delta for {}", names[i])
                    }
                    SyncMessage::Done(i, Ok(end)) => {
                        if let Some(c) = end.cursor {
                            self.cursors.insert(names[i].clone(), c);
                        }
                    }
                    SyncMessage::Done(i, Err(e)) => {
                        self.errors.insert(names[i].clone(), e);
                    }
                }
            }
        };
        tokio::join!(producer, consumer);
    }

    /// Concurrent sync calls of one mailbox each (`parallel` at a time), as the runner does.
    pub async fn sync_parallel(
        &mut self,
        source: &Arc<dyn Source>,
        mailboxes: &[String],
        win: Window,
        parallel: usize,
    ) {
        self.errors.clear();
        for chunk in mailboxes.chunks(parallel.max(1)) {
            let mut handles = Vec::new();
            for m in chunk {
                let mut c = Collector::default();
                if let Some(cur) = self.cursors.get(m) {
                    c.cursors.insert(m.clone(), cur.clone());
                }
                let source = source.clone();
                let m = m.clone();
                handles.push(tokio::spawn(async move {
                    c.sync(source.as_ref(), std::slice::from_ref(&m), win).await;
                    (m, c)
                }));
            }
            for h in handles {
                let (m, c) = h.await.expect("task");
                if let Some(events) = c.mailboxes.get(&m) {
                    self.mailboxes.insert(m.clone(), events.clone());
                }
                if let Some(cur) = c.cursors.get(&m) {
                    self.cursors.insert(m.clone(), cur.clone());
                }
                if let Some(e) = c.errors.get(&m) {
                    self.errors.insert(m.clone(), e.clone());
                }
                self.snapshots += c.snapshots;
                if c.snapshots > 0 {
                    *self.batches_per_mailbox.entry(m.clone()).or_default() += c.snapshots;
                }
            }
        }
    }
}

/// The keys and the fields a sink shows, for comparing with the simulator's truth.
pub fn expected(
    sim: &Simulator,
    mailbox: &str,
    win: Window,
) -> BTreeMap<EventKey, calpump_simulator::TruthInstance> {
    let truth = sim
        .control()
        .truth(mailbox, Some("Calendar"), win.start, win.end)
        .expect("truth");
    truth
        .into_iter()
        .map(|t| {
            let goid = GlobalObjectId::from_hex(&t.goid).expect("goid");
            let key = EventKey::derive(mailbox, &goid, t.original_start).expect("key");
            (key, t)
        })
        .collect()
}

/// Asserts the collector holds exactly the truth of `mailbox` in the window, field by field.
pub fn assert_equals_truth(sim: &Simulator, c: &Collector, mailbox: &str, win: Window) {
    let want = expected(sim, mailbox, win);
    let empty = BTreeMap::new();
    let have = c.mailboxes.get(mailbox).unwrap_or(&empty);
    let missing: Vec<_> = want.keys().filter(|k| !have.contains_key(*k)).collect();
    let extra: Vec<_> = have.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{mailbox}: {} missing {:?}, {} extra {:?}",
        missing.len(),
        missing
            .iter()
            .map(|k| &want[*k].subject)
            .collect::<Vec<_>>(),
        extra.len(),
        extra.iter().map(|k| &have[*k].subject).collect::<Vec<_>>()
    );
    for (key, t) in &want {
        let e = &have[key];
        let ctx = format!("{mailbox} “{}”", t.subject);
        assert_eq!(e.subject, t.subject, "{ctx}: subject");
        assert_eq!(e.all_day, t.is_all_day, "{ctx}: all-day");
        match &t.all_day_dates {
            // Door signs and databases read all-day events as dates: 00:00:00Z of the first
            // date and of the date after the last, whatever zone the event was made in.
            Some(dates) => {
                assert!(e.all_day, "{ctx}: all-day");
                let midnight = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
                assert_eq!(e.start, midnight(dates.start), "{ctx}: all-day start");
                assert_eq!(e.end, midnight(dates.end), "{ctx}: all-day end");
                assert_eq!(e.start.time(), chrono::NaiveTime::MIN, "{ctx}: 00:00:00Z");
                assert_eq!(e.end.time(), chrono::NaiveTime::MIN, "{ctx}: 00:00:00Z");
            }
            None => {
                assert_eq!(e.start, t.start, "{ctx}: start");
                assert_eq!(e.end, t.end, "{ctx}: end");
            }
        }
        assert_eq!(e.cancelled, t.is_cancelled, "{ctx}: cancelled");
        assert_eq!(e.calendar, "default", "{ctx}: calendar");
        assert_eq!(
            e.original_start(),
            t.original_start
                .map(|o| chrono::DateTime::from_timestamp(o.timestamp(), 0).unwrap_or(o)),
            "{ctx}: original start"
        );
        assert_eq!(
            format!("{:?}", e.sensitivity).to_lowercase(),
            format!("{:?}", t.sensitivity).to_lowercase(),
            "{ctx}: sensitivity"
        );
        assert_eq!(
            format!("{:?}", e.show_as).to_lowercase(),
            format!("{:?}", t.show_as).to_lowercase(),
            "{ctx}: show as"
        );
        assert_eq!(
            e.location.clone().unwrap_or_default(),
            t.location,
            "{ctx}: location"
        );
        // All-day items too name the zone they were made in (as Graph reports it).
        let want = Some(t.time_zone_iana.as_str()).filter(|z| !z.is_empty());
        assert_eq!(e.time_zone.as_deref(), want, "{ctx}: zone");
        assert_eq!(e.online_meeting_url, t.online_url, "{ctx}: online URL");
        assert_eq!(e.categories, t.categories, "{ctx}: categories");
        assert_eq!(
            e.organizer
                .as_ref()
                .and_then(|o| o.email.clone())
                .unwrap_or_default()
                .to_lowercase(),
            t.organizer.address.to_lowercase(),
            "{ctx}: organizer"
        );
        assert_eq!(e.attendees.len(), t.attendees.len(), "{ctx}: attendees");
        assert_eq!(e.source.item_id, t.ews_id, "{ctx}: item id");
    }
}
