//! Deterministic generators of events and batches, and [`Truth`]: what an ideal sink holds
//! after a sequence of batches.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::{
    Attendee, AttendeeKind, Batch, BatchKind, Event, EventIdentity, EventKey, EventKind,
    GlobalObjectId, Person, ResponseStatus, SCHEMA_VERSION, Sensitivity, ShowAs, SourceIds, Window,
};

/// The class id every Exchange global object id starts with ([MS-OXOCAL] 2.2.1.27).
const GOID_CLASS_ID: [u8; 16] = [
    0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08,
];

const SUBJECTS: &[&str] = &[
    "Weekly sync",
    "Budget review",
    "Besprechung – Raum 1.01",
    "Café & croissants",
    "設計レビュー",
    "Interview: backend engineer",
    "1:1 Anna / Ben",
    "Quarterly planning \"Q3\"",
    "Onboarding <new hires>",
    "Retro 🎉",
];

/// Midnight UTC on 30 November 2026: the origin of every generated window.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// `[start, start + days)`.
pub fn window(start: DateTime<Utc>, days: i64) -> Window {
    Window {
        start,
        end: start + Duration::days(days),
    }
}

/// A seeded generator (splitmix64): the same seed gives the same events in every process, which
/// the crash check relies on.
#[derive(Debug, Clone)]
pub struct EventGen {
    state: u64,
    counter: u64,
}

impl EventGen {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
            counter: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A fresh, unique global object id in Exchange's layout.
    pub fn goid(&mut self) -> GlobalObjectId {
        let mut bytes = GOID_CLASS_ID.to_vec();
        bytes.extend_from_slice(&[0u8; 20]); // instance date, creation time, reserved
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&self.next_u64().to_be_bytes());
        bytes.extend_from_slice(&self.next_u64().to_be_bytes());
        GlobalObjectId::from_bytes(&bytes).expect("56 bytes make a valid global object id")
    }

    /// An event of `mailbox`/`calendar` starting at `start` and lasting `minutes`.
    ///
    /// # Panics
    /// If `mailbox` is not an SMTP address or `minutes` is negative (a bug in the test).
    pub fn event_at(
        &mut self,
        mailbox: &str,
        calendar: &str,
        start: DateTime<Utc>,
        minutes: i64,
    ) -> Event {
        self.counter += 1;
        let goid = self.goid();
        let occurrence = self.one_in(5);
        let identity = EventIdentity::new(mailbox, goid.clone(), occurrence.then_some(start))
            .expect("generators need an SMTP address as mailbox");
        let backend = if self.one_in(2) { "ews" } else { "graph" };
        let source = SourceIds {
            backend: backend.to_string(),
            item_id: format!("AAMkAG{:016x}{:08x}=", self.next_u64(), self.counter),
            change_key: Some(format!("DwAAABYA{:08x}", self.below(1 << 32))),
        };
        let subject = format!(
            "{} #{}",
            SUBJECTS[self.below(SUBJECTS.len() as u64) as usize],
            self.counter
        );
        let end = start + Duration::minutes(minutes);
        let mut event = Event::new(identity, calendar, source, subject, start, end)
            .expect("generators need a non-negative duration");
        if occurrence && self.one_in(3) {
            event.kind = EventKind::Exception;
        }
        event.ical_uid = Some(goid.as_hex().to_string());
        event.location = Some(format!("Room {}.{:02}", self.below(5), self.below(40)));
        event.organizer = Some(Person {
            name: Some(format!("Organizer {}", self.below(100))),
            email: Some(format!("organizer{}@contoso.test", self.below(100))),
        });
        for _ in 0..self.below(4) {
            let kind = match self.below(3) {
                0 => AttendeeKind::Required,
                1 => AttendeeKind::Optional,
                _ => AttendeeKind::Resource,
            };
            event.attendees.push(Attendee {
                person: Person {
                    name: Some(format!("Person {}", self.below(1000))),
                    email: Some(format!("person{}@contoso.test", self.below(1000))),
                },
                kind,
                response: ResponseStatus::Accepted,
            });
        }
        for _ in 0..self.below(3) {
            event
                .categories
                .push(format!("Category {}", self.below(10)));
        }
        event.time_zone = Some("Europe/Berlin".to_string());
        event.show_as = match self.below(4) {
            0 => ShowAs::Tentative,
            1 => ShowAs::Free,
            _ => ShowAs::Busy,
        };
        if self.one_in(8) {
            event.sensitivity = Sensitivity::Private;
        }
        if self.one_in(3) {
            event.online_meeting_url = Some(format!(
                "https://teams.example.test/l/meetup-join/{:x}",
                self.next_u64()
            ));
        }
        event.last_modified = Some(start - Duration::days(1 + self.below(30) as i64));
        event
    }

    /// An event starting somewhere inside `window` (on a quarter hour) and ending inside it.
    pub fn event(&mut self, mailbox: &str, calendar: &str, window: &Window) -> Event {
        let quarters = ((window.end - window.start).num_minutes() / 15).max(2);
        let minutes = 15 * (1 + self.below(8) as i64);
        let slots = (quarters - minutes / 15).max(1) as u64;
        let start = window.start + Duration::minutes(15 * self.below(slots) as i64);
        self.event_at(mailbox, calendar, start, minutes)
    }

    /// `n` events inside `window`.
    pub fn events(
        &mut self,
        mailbox: &str,
        calendar: &str,
        window: &Window,
        n: usize,
    ) -> Vec<Event> {
        (0..n)
            .map(|_| self.event(mailbox, calendar, window))
            .collect()
    }

    /// A changed copy of `event` with the same key (and so a different content hash): new
    /// subject and location, another free/busy status, and a new change key as a backend would
    /// report.
    pub fn modify(&mut self, event: &Event) -> Event {
        let mut changed = event.clone();
        self.counter += 1;
        changed.subject = format!("{} (changed {})", event.subject, self.counter);
        changed.location = Some(format!("Room {}.{:02}", self.below(5), self.below(40)));
        changed.show_as = if event.show_as == ShowAs::Busy {
            ShowAs::Tentative
        } else {
            ShowAs::Busy
        };
        changed.source.change_key = Some(format!("DwAAABYA{:08x}", self.below(1 << 32)));
        changed
    }
}

/// A snapshot batch of `events` (all of one mailbox and calendar).
pub fn snapshot(
    route: &str,
    mailbox: &str,
    calendar: &str,
    window: Window,
    events: Vec<Event>,
    complete: bool,
    run_id: &str,
) -> Batch {
    Batch {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        route: route.to_string(),
        mailbox: mailbox.to_string(),
        mailbox_name: Some(format!("Room {mailbox}")),
        calendar: calendar.to_string(),
        kind: BatchKind::Snapshot,
        window,
        upserts: events,
        deletes: Vec::new(),
        complete,
    }
}

/// A delta batch: upserts and deletes.
pub fn delta(
    route: &str,
    mailbox: &str,
    calendar: &str,
    window: Window,
    upserts: Vec<Event>,
    deletes: Vec<EventKey>,
    run_id: &str,
) -> Batch {
    Batch {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        route: route.to_string(),
        mailbox: mailbox.to_string(),
        mailbox_name: None,
        calendar: calendar.to_string(),
        kind: BatchKind::Delta,
        window,
        upserts,
        deletes,
        complete: false,
    }
}

/// What an ideal sink holds: the source's truth after a sequence of batches, with the
/// semantics every sink must implement (see [`Truth::apply`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    live: BTreeMap<(String, EventKey), Event>,
    deleted: BTreeSet<(String, EventKey)>,
}

impl Truth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a batch:
    /// 1. upserts (the last of several with one key wins) become live;
    /// 2. deletes remove live events of the batch's (route, mailbox) (unknown keys: nothing);
    /// 3. a snapshot with `complete = true` removes the live events of its (route, mailbox,
    ///    calendar) that overlap its window and that it does not contain; an incomplete
    ///    snapshot removes nothing.
    pub fn apply(&mut self, batch: &Batch) {
        let mailbox = batch.mailbox.trim().to_lowercase();
        for event in &batch.upserts {
            let id = (batch.route.clone(), event.key().clone());
            self.deleted.remove(&id);
            self.live.insert(id, event.clone());
        }
        for key in &batch.deletes {
            let id = (batch.route.clone(), key.clone());
            if self.live.get(&id).is_some_and(|e| e.mailbox() == mailbox) {
                self.live.remove(&id);
                self.deleted.insert(id);
            }
        }
        if batch.kind == BatchKind::Snapshot && batch.complete {
            let contained: HashSet<&EventKey> = batch
                .upserts
                .iter()
                .map(Event::key)
                .chain(batch.deletes.iter())
                .collect();
            let vanished: Vec<(String, EventKey)> = self
                .live
                .iter()
                .filter(|((route, key), e)| {
                    *route == batch.route
                        && e.mailbox() == mailbox
                        && e.calendar == batch.calendar
                        && e.overlaps(&batch.window)
                        && !contained.contains(key)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in vanished {
                self.live.remove(&id);
                self.deleted.insert(id);
            }
        }
    }

    /// Live events of (route, mailbox, calendar): key → content hash.
    pub fn expected(
        &self,
        route: &str,
        mailbox: &str,
        calendar: &str,
    ) -> BTreeMap<EventKey, String> {
        let mailbox = mailbox.trim().to_lowercase();
        self.live
            .iter()
            .filter(|((r, _), e)| r == route && e.mailbox() == mailbox && e.calendar == calendar)
            .map(|((_, key), e)| (key.clone(), e.content_hash()))
            .collect()
    }

    /// The live event of `route` with `key`.
    pub fn get(&self, route: &str, key: &EventKey) -> Option<&Event> {
        self.live.get(&(route.to_string(), key.clone()))
    }

    /// Whether `key` of `route` was deleted (and not revived since).
    pub fn is_deleted(&self, route: &str, key: &EventKey) -> bool {
        self.deleted.contains(&(route.to_string(), key.clone()))
    }

    /// Live events of (route, mailbox, calendar).
    pub fn events(&self, route: &str, mailbox: &str, calendar: &str) -> Vec<Event> {
        let mailbox = mailbox.trim().to_lowercase();
        self.live
            .iter()
            .filter(|((r, _), e)| r == route && e.mailbox() == mailbox && e.calendar == calendar)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_truth_follows_the_rules() {
        let w = window(base_time(), 7);
        let a = EventGen::new(7).events("room@x.test", "default", &w, 20);
        let b = EventGen::new(7).events("room@x.test", "default", &w, 20);
        assert_eq!(a, b);
        assert!(
            a.iter()
                .all(|e| e.overlaps(&w) && e.start >= w.start && e.end <= w.end)
        );
        let keys: HashSet<_> = a.iter().map(|e| e.key().clone()).collect();
        assert_eq!(keys.len(), 20, "keys are unique");

        let mut truth = Truth::new();
        truth.apply(&snapshot(
            "r",
            "room@x.test",
            "default",
            w,
            a.clone(),
            true,
            "1",
        ));
        assert_eq!(truth.expected("r", "room@x.test", "default").len(), 20);
        // Incomplete: nothing removed.
        truth.apply(&snapshot(
            "r",
            "room@x.test",
            "default",
            w,
            a[..5].to_vec(),
            false,
            "2",
        ));
        assert_eq!(truth.expected("r", "room@x.test", "default").len(), 20);
        // Complete: the other 15 vanish.
        truth.apply(&snapshot(
            "r",
            "ROOM@x.test",
            "default",
            w,
            a[..5].to_vec(),
            true,
            "3",
        ));
        assert_eq!(truth.expected("r", "room@x.test", "default").len(), 5);
        assert!(truth.is_deleted("r", a[10].key()));
        // A delete of another route's key does nothing.
        truth.apply(&delta(
            "q",
            "room@x.test",
            "default",
            w,
            vec![],
            vec![a[0].key().clone()],
            "4",
        ));
        assert_eq!(truth.expected("r", "room@x.test", "default").len(), 5);
    }
}
