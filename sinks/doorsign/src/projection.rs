//! The pure projection: a room's events and an instant → what its door sign shows.
//!
//! No I/O and no clock: `now` is a parameter, so every rule here is unit-tested at chosen
//! instants. Rules:
//!
//! * Cancelled meetings and meetings shown as `free` (or `workingElsewhere`) never block the room;
//!   cancelled ones are not listed at all, free ones are listed but marked `blocking: false`.
//! * All-day events cover whole local days. The model carries their `start`/`end` as floating
//!   dates (00:00 UTC of the first date and of the day after the last; see `Event::all_day`);
//!   they are read as dates in the *sign's* zone — never converted from the event's
//!   `time_zone` — so "all day on the 28th" is midnight to midnight where the door is. A busy
//!   all-day event makes the room busy all day.
//! * Overlapping and back-to-back bookings merge: `busy_until` is the end of the whole chain.
//!   The "current" meeting is the blocking one that started last (a timed one before an all-day).
//! * Meetings across midnight are current after midnight and listed under the day they start.
//! * `unknown` wins over everything while no read of the room's calendar ever succeeded (no
//!   batch received, no route reporting a success): an empty schedule is not "free".
//! * `stale` wins over the rest when the room's source has been failing for longer than
//!   `stale_after`; the schedule is still shown.

use calpump_plugin::{Event, ShowAs};
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Language;

/// Version of the room JSON (`rooms/<id>.json`, MQTT payload).
pub const ROOM_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Free,
    Busy,
    StartingSoon,
    EndingSoon,
    Stale,
    /// The room's calendar has never been read: nothing is known about it.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Free => "free",
            Status::Busy => "busy",
            Status::StartingSoon => "starting-soon",
            Status::EndingSoon => "ending-soon",
            Status::Stale => "stale",
            Status::Unknown => "unknown",
        }
    }
}

/// The projection's rules, from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub tz: Tz,
    pub language: Language,
    pub starting_soon: Duration,
    pub ending_soon: Duration,
    pub stale_after: Duration,
    pub private_text: String,
    pub hide_subjects: bool,
}

/// One room at one instant, as the projection reads it.
#[derive(Debug, Clone)]
pub struct RoomInput<'a> {
    pub mailbox: &'a str,
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub events: Vec<&'a Event>,
    /// Since when the room's source has been failing (from the engine's `MailboxHealth`).
    pub failing_since: Option<DateTime<Utc>>,
    /// No read of the room ever succeeded: no batch was received and no route reports a
    /// success. The sign shows [`Status::Unknown`], never "free".
    pub never_read: bool,
}

/// A meeting as the sign shows it (privacy already applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// `None` when subjects are hidden or the meeting has none.
    pub subject: Option<String>,
    pub organizer: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Local time range, ready to show: `09:00–10:00`, `23:00–Sun 29 Nov 01:00`; empty for all-day.
    pub time: String,
    pub all_day: bool,
    pub private: bool,
    /// Whether it occupies the room (not cancelled, not shown as free).
    pub blocking: bool,
    pub tentative: bool,
}

/// What one room's sign shows at one instant: the content of `rooms/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub schema_version: u32,
    pub room: String,
    pub id: String,
    pub name: String,
    pub status: Status,
    /// The instant this content was computed — in the written files and pushes, the time of
    /// the room's last content change: they are rewritten only when the content hash changes,
    /// so this is *not* a "last checked" time. Not part of the content hash.
    pub as_of: DateTime<Utc>,
    pub time_zone: String,
    /// Today, in the sign's zone.
    pub date: NaiveDate,
    pub current: Option<Meeting>,
    /// The rest of today's meetings (starting after now), in order.
    pub next: Vec<Meeting>,
    /// All-day events covering today.
    pub all_day: Vec<Meeting>,
    /// When free (or starting soon): the start of the next booking today; `None` = free for the
    /// rest of the day.
    pub free_until: Option<DateTime<Utc>>,
    /// When busy: the end of the current chain of bookings.
    pub busy_until: Option<DateTime<Utc>>,
    /// `free_until` or `busy_until` as local time (with the date when not today).
    pub until_local: Option<String>,
    pub stale_since: Option<DateTime<Utc>>,
    /// The next instant this projection changes with time alone.
    pub next_change: Option<DateTime<Utc>>,
    /// Hash of everything shown (see [`Projection::seal`]); equal hashes ⇒ equal outputs.
    pub content_hash: String,
}

impl Projection {
    /// Computes `content_hash` over everything but `as_of`, plus `fingerprint` (the render
    /// settings, so a configuration change re-renders).
    pub fn seal(&mut self, fingerprint: &str) {
        let mut copy = self.clone();
        copy.as_of = DateTime::<Utc>::UNIX_EPOCH;
        copy.content_hash = String::new();
        let json = serde_json::to_vec(&copy).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(&json);
        hasher.update(b"\n");
        hasher.update(fingerprint.as_bytes());
        self.content_hash = hex::encode(&hasher.finalize()[..16]);
    }
}

/// Local midnight starting `date` in `tz`, as a UTC instant (the first instant of the day when
/// midnight falls into a DST gap).
pub fn local_midnight(tz: &Tz, date: NaiveDate) -> DateTime<Utc> {
    let naive = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => (1..=4)
            .find_map(|h| {
                tz.from_local_datetime(&(naive + Duration::minutes(30 * h)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
    }
}

/// The span an event occupies on the sign: its own for timed events, whole local days for
/// all-day events.
///
/// An all-day event's `start`/`end` are floating dates at 00:00 UTC (the model's rule): the
/// UTC *date* of `start` is the first day, the UTC date of `end` the day after the last. They
/// are laid onto the sign's zone `tz` from local midnight to local midnight; the event's own
/// `time_zone` plays no part. A time of day other than midnight (data from before the rule) is
/// rounded outwards to whole dates; an empty range covers its first date.
pub fn effective_span(event: &Event, tz: &Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    if !event.all_day {
        return (event.start, event.end);
    }
    let start_date = event.start.date_naive();
    let mut end_date = event.end.date_naive();
    if event.end.time() != NaiveTime::MIN {
        end_date = end_date.succ_opt().unwrap_or(end_date);
    }
    if end_date <= start_date {
        end_date = start_date.succ_opt().unwrap_or(start_date);
    }
    (local_midnight(tz, start_date), local_midnight(tz, end_date))
}

/// Text from the calendar as the sign shows it: control characters (NUL, BEL, ESC, C1 …)
/// removed, line breaks and tabs turned into spaces, trimmed. Applied to every subject,
/// organizer and room name before anything is rendered (JSON, HTML, PNG, MQTT).
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out.trim().to_string()
}

fn blocks(event: &Event) -> bool {
    !event.cancelled && !matches!(event.show_as, ShowAs::Free | ShowAs::WorkingElsewhere)
}

const WEEKDAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WEEKDAYS_DE: [&str; 7] = ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"];
const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A short local date: `Sun 29 Nov` / `So 29.11.`.
pub fn short_date(date: NaiveDate, language: Language) -> String {
    let wd = date.weekday().num_days_from_monday() as usize;
    match language {
        Language::En => format!(
            "{} {} {}",
            WEEKDAYS_EN[wd],
            date.day(),
            MONTHS_EN[date.month0() as usize]
        ),
        Language::De => format!("{} {}.{}.", WEEKDAYS_DE[wd], date.day(), date.month()),
    }
}

/// `HH:MM` in `tz`, prefixed with the short date when it is not `today`.
pub fn local_time(t: DateTime<Utc>, tz: &Tz, today: NaiveDate, language: Language) -> String {
    let local = t.with_timezone(tz);
    let hm = local.format("%H:%M").to_string();
    if local.date_naive() == today {
        hm
    } else {
        format!("{} {hm}", short_date(local.date_naive(), language))
    }
}

fn meeting(
    event: &Event,
    span: (DateTime<Utc>, DateTime<Utc>),
    rules: &Rules,
    today: NaiveDate,
) -> Meeting {
    let private = event.sensitivity.is_private();
    let subject = if private {
        Some(clean_text(&rules.private_text))
    } else if rules.hide_subjects {
        None
    } else {
        Some(clean_text(&event.subject)).filter(|s| !s.is_empty())
    };
    let organizer = if private {
        None
    } else {
        event
            .organizer
            .as_ref()
            .and_then(|p| {
                p.name
                    .as_deref()
                    .map(clean_text)
                    .filter(|n| !n.is_empty())
                    .or_else(|| p.email.as_deref().map(clean_text))
            })
            .filter(|n| !n.is_empty())
            // A room that rewrites subjects to the organizer's name shows the subject as it
            // comes; repeating the same name below it would only be noise.
            .filter(|name| subject.as_deref() != Some(name.as_str()))
    };
    let time = if event.all_day {
        String::new()
    } else {
        let start_text = local_time(span.0, &rules.tz, today, rules.language);
        // The end carries a date only when it is neither today nor the start's day.
        let start_day = span.0.with_timezone(&rules.tz).date_naive();
        let end_day = span.1.with_timezone(&rules.tz).date_naive();
        let reference = if end_day == today { today } else { start_day };
        let end_text = local_time(span.1, &rules.tz, reference, rules.language);
        format!("{start_text}–{end_text}")
    };
    Meeting {
        subject,
        organizer,
        start: span.0,
        end: span.1,
        time,
        all_day: event.all_day,
        private,
        blocking: blocks(event),
        tentative: event.show_as == ShowAs::Tentative,
    }
}

/// Projects one room at `now`. `content_hash` is left empty: call [`Projection::seal`].
pub fn project(input: &RoomInput<'_>, rules: &Rules, now: DateTime<Utc>) -> Projection {
    let tz = &rules.tz;
    let today = now.with_timezone(tz).date_naive();
    let day_start = local_midnight(tz, today);
    let day_end = local_midnight(tz, today.succ_opt().unwrap_or(today));

    // Every listed event with its span; zero-length and cancelled ones never show.
    let mut spans: Vec<(&Event, DateTime<Utc>, DateTime<Utc>)> = input
        .events
        .iter()
        .filter(|e| !e.cancelled)
        .map(|e| {
            let (s, t) = effective_span(e, tz);
            (*e, s, t)
        })
        .filter(|(_, s, t)| t > s)
        .collect();
    spans.sort_by(|a, b| (a.1, a.2, a.0.key()).cmp(&(b.1, b.2, b.0.key())));
    let blocking: Vec<_> = spans.iter().filter(|(e, _, _)| blocks(e)).collect();

    // Current: the blocking event running now that started last, timed before all-day.
    let current = blocking
        .iter()
        .filter(|(_, s, t)| *s <= now && now < *t)
        .max_by(|a, b| {
            (!a.0.all_day, a.1, std::cmp::Reverse(a.2)).cmp(&(
                !b.0.all_day,
                b.1,
                std::cmp::Reverse(b.2),
            ))
        });

    let mut busy_until = None;
    let mut free_until = None;
    let mut status;
    if current.is_some() {
        // Follow the chain of overlapping / back-to-back bookings.
        let mut until = now;
        loop {
            let reach = blocking
                .iter()
                .filter(|(_, s, t)| *s <= until && *t > until)
                .map(|(_, _, t)| *t)
                .max();
            match reach {
                Some(t) if t > until => until = t,
                _ => break,
            }
        }
        busy_until = Some(until);
        status = if until - now <= rules.ending_soon {
            Status::EndingSoon
        } else {
            Status::Busy
        };
    } else {
        let next_start = blocking
            .iter()
            .filter(|(_, s, _)| *s > now)
            .map(|(_, s, _)| *s)
            .min();
        free_until = next_start.filter(|s| *s < day_end);
        status = match next_start {
            Some(s) if s - now <= rules.starting_soon => {
                free_until = Some(s);
                Status::StartingSoon
            }
            _ => Status::Free,
        };
    }

    let mut stale_since = None;
    let mut stale_at = None;
    if let Some(since) = input.failing_since {
        if now - since >= rules.stale_after {
            status = Status::Stale;
            stale_since = Some(since);
        } else {
            stale_at = Some(since + rules.stale_after);
        }
    }
    if input.never_read {
        status = Status::Unknown;
        free_until = None;
        busy_until = None;
    }

    let next: Vec<Meeting> = spans
        .iter()
        .filter(|(e, s, _)| !e.all_day && *s > now && *s < day_end)
        .map(|(e, s, t)| meeting(e, (*s, *t), rules, today))
        .collect();
    let all_day: Vec<Meeting> = spans
        .iter()
        .filter(|(e, s, t)| e.all_day && *s < day_end && *t > day_start)
        .map(|(e, s, t)| meeting(e, (*s, *t), rules, today))
        .collect();

    // The next instant anything above changes with time alone.
    let mut candidates: Vec<DateTime<Utc>> = vec![day_end];
    candidates.extend(stale_at);
    for (e, s, t) in &spans {
        candidates.push(*s);
        candidates.push(*t);
        if blocks(e) {
            candidates.push(*s - rules.starting_soon);
            candidates.push(*t - rules.ending_soon);
        }
    }
    let next_change = candidates.into_iter().filter(|c| *c > now).min();

    let until = busy_until.or(free_until);
    Projection {
        schema_version: ROOM_SCHEMA_VERSION,
        room: input.mailbox.to_string(),
        id: input.id.to_string(),
        name: input
            .name
            .map(clean_text)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| clean_text(input.mailbox)),
        status,
        as_of: now,
        time_zone: tz.name().to_string(),
        date: today,
        current: current.map(|(e, s, t)| meeting(e, (*s, *t), rules, today)),
        next,
        all_day,
        free_until,
        busy_until,
        until_local: until.map(|t| local_time(t, tz, today, rules.language)),
        stale_since,
        next_change,
        content_hash: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calpump_plugin::{EventIdentity, GlobalObjectId, Person, Sensitivity, SourceIds};

    fn goid(n: u8) -> GlobalObjectId {
        let mut bytes = vec![
            0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82,
            0xE0, 0x08,
        ];
        bytes.extend_from_slice(&[0; 20]);
        bytes.push(n);
        GlobalObjectId::from_bytes(&bytes).expect("goid")
    }

    /// Berlin local time on 2026-11-28 (UTC+1 in winter).
    fn at(h: u32, m: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2026, 11, 28, h, m, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn ev(n: u8, subject: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Event {
        let id = EventIdentity::new("room-1@contoso.com", goid(n), None).expect("id");
        let mut e =
            Event::new(id, "default", SourceIds::default(), subject, start, end).expect("ev");
        e.organizer = Some(Person {
            name: Some("Ann Organizer".into()),
            email: Some("ann@contoso.com".into()),
        });
        e
    }

    fn rules() -> Rules {
        Rules {
            tz: chrono_tz::Europe::Berlin,
            language: Language::En,
            starting_soon: Duration::minutes(10),
            ending_soon: Duration::minutes(10),
            stale_after: Duration::minutes(30),
            private_text: "Private appointment".into(),
            hide_subjects: false,
        }
    }

    fn run(events: &[Event], now: DateTime<Utc>) -> Projection {
        run_with(events, now, None, &rules())
    }

    fn run_with(
        events: &[Event],
        now: DateTime<Utc>,
        failing: Option<DateTime<Utc>>,
        rules: &Rules,
    ) -> Projection {
        let input = RoomInput {
            mailbox: "room-1@contoso.com",
            id: "room-1_at_contoso.com",
            name: Some("Room 1.01"),
            events: events.iter().collect(),
            failing_since: failing,
            never_read: false,
        };
        project(&input, rules, now)
    }

    #[test]
    fn free_busy_soon_and_the_boundaries() {
        let events = [
            ev(1, "Standup", at(9, 0), at(10, 0)),
            ev(2, "Review", at(14, 0), at(15, 0)),
        ];

        let p = run(&events, at(8, 0));
        assert_eq!(p.status, Status::Free);
        assert_eq!(p.free_until, Some(at(9, 0)));
        assert_eq!(p.until_local.as_deref(), Some("09:00"));
        assert_eq!(p.next.len(), 2);
        assert_eq!(p.next[0].time, "09:00–10:00");
        assert_eq!(
            p.next_change,
            Some(at(8, 50)),
            "the starting-soon threshold"
        );

        let p = run(&events, at(8, 50));
        assert_eq!(p.status, Status::StartingSoon);
        assert_eq!(p.next_change, Some(at(9, 0)));

        let p = run(&events, at(9, 0));
        assert_eq!(
            p.status,
            Status::Busy,
            "a meeting is current from its start"
        );
        assert_eq!(
            p.current.as_ref().and_then(|m| m.subject.as_deref()),
            Some("Standup")
        );
        assert_eq!(
            p.current.as_ref().and_then(|m| m.organizer.as_deref()),
            Some("Ann Organizer")
        );
        assert_eq!(p.busy_until, Some(at(10, 0)));
        assert_eq!(p.next.len(), 1, "the current meeting is not listed as next");
        assert_eq!(p.next_change, Some(at(9, 50)));

        let p = run(&events, at(9, 55));
        assert_eq!(p.status, Status::EndingSoon);
        assert_eq!(p.next_change, Some(at(10, 0)));

        let p = run(&events, at(10, 0));
        assert_eq!(p.status, Status::Free, "end is exclusive");
        assert!(p.current.is_none());
        assert_eq!(p.free_until, Some(at(14, 0)));

        let p = run(&events, at(15, 30));
        assert_eq!(p.status, Status::Free);
        assert_eq!(p.free_until, None, "free for the rest of the day");
        assert!(p.next.is_empty());
        assert_eq!(
            p.next_change,
            Some(local_midnight(
                &chrono_tz::Europe::Berlin,
                NaiveDate::from_ymd_opt(2026, 11, 29).expect("d")
            ))
        );
        assert_eq!(p.name, "Room 1.01");
    }

    #[test]
    fn cancelled_meetings_free_the_room_and_vanish() {
        let mut cancelled = ev(1, "Cancelled: Standup", at(9, 0), at(10, 0));
        cancelled.cancelled = true;
        let p = run(&[cancelled], at(9, 30));
        assert_eq!(p.status, Status::Free);
        assert!(p.current.is_none());
        assert!(p.next.is_empty());
        let mut later = ev(2, "Later", at(11, 0), at(12, 0));
        later.cancelled = true;
        assert!(run(&[later], at(8, 0)).next.is_empty());
    }

    #[test]
    fn show_as_free_does_not_block_but_is_listed() {
        let mut free = ev(1, "Optional lunch talk", at(12, 0), at(13, 0));
        free.show_as = ShowAs::Free;
        let p = run(std::slice::from_ref(&free), at(12, 30));
        assert_eq!(p.status, Status::Free);
        assert!(p.current.is_none());
        let p = run(&[free], at(11, 55));
        assert_eq!(
            p.status,
            Status::Free,
            "a free meeting is not 'starting soon'"
        );
        assert_eq!(p.free_until, None);
        assert_eq!(p.next.len(), 1);
        assert!(!p.next[0].blocking);

        let mut tentative = ev(2, "Maybe", at(12, 0), at(13, 0));
        tentative.show_as = ShowAs::Tentative;
        let p = run(&[tentative], at(12, 30));
        assert_eq!(p.status, Status::Busy, "tentative bookings hold the room");
        assert!(p.current.as_ref().is_some_and(|m| m.tentative));
    }

    #[test]
    fn overlapping_and_back_to_back_bookings_merge() {
        let events = [
            ev(1, "A", at(9, 0), at(10, 0)),
            ev(2, "B", at(9, 30), at(11, 0)),
            ev(3, "C", at(11, 0), at(11, 30)),
            ev(4, "D", at(13, 0), at(14, 0)),
        ];
        let p = run(&events, at(9, 15));
        assert_eq!(
            p.current.as_ref().and_then(|m| m.subject.as_deref()),
            Some("A")
        );
        assert_eq!(p.busy_until, Some(at(11, 30)), "A+B+C form one chain");
        assert_eq!(p.status, Status::Busy);
        let p = run(&events, at(9, 45));
        assert_eq!(
            p.current.as_ref().and_then(|m| m.subject.as_deref()),
            Some("B"),
            "the later start is current"
        );
        let p = run(&events, at(9, 55));
        assert_eq!(
            p.status,
            Status::Busy,
            "A ends soon but B goes on: not ending soon"
        );
        let p = run(&events, at(11, 25));
        assert_eq!(p.status, Status::EndingSoon);
        assert_eq!(p.busy_until, Some(at(11, 30)));
    }

    #[test]
    fn meetings_across_midnight() {
        let late = ev(1, "Night shift", at(23, 0), at(23, 0) + Duration::hours(2));
        let p = run(std::slice::from_ref(&late), at(22, 0));
        assert_eq!(p.next.len(), 1, "listed under the day it starts");
        assert_eq!(p.next[0].time, "23:00–Sun 29 Nov 01:00");
        let after_midnight = at(23, 0) + Duration::minutes(90);
        let p = run(std::slice::from_ref(&late), after_midnight);
        assert_eq!(p.status, Status::Busy, "still current after midnight");
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2026, 11, 29).expect("d"));
        assert_eq!(p.busy_until, Some(at(23, 0) + Duration::hours(2)));
        assert_eq!(p.until_local.as_deref(), Some("01:00"));
        assert_eq!(
            p.current.as_ref().map(|m| m.time.as_str()),
            Some("Sat 28 Nov 23:00–01:00")
        );
        // Busy past midnight: busy_until carries the date.
        let p = run(&[late], at(23, 30));
        assert_eq!(p.until_local.as_deref(), Some("Sun 29 Nov 01:00"));
    }

    /// A floating all-day date as the model carries it: `y-m-d` at 00:00 UTC.
    fn date(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .expect("date")
    }

    fn berlin_midnight(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        local_midnight(
            &chrono_tz::Europe::Berlin,
            NaiveDate::from_ymd_opt(y, m, d).expect("d"),
        )
    }

    #[test]
    fn all_day_events_are_local_dates_of_the_sign_whatever_their_zone() {
        // Saturday 28 Nov, all day, created in zones east and west of UTC and without a zone.
        for zone in [Some("Asia/Tokyo"), Some("America/New_York"), None] {
            let mut closed = ev(1, "Room closed", date(2026, 11, 28), date(2026, 11, 29));
            closed.all_day = true;
            closed.time_zone = zone.map(str::to_string);
            let (from, to) = effective_span(&closed, &chrono_tz::Europe::Berlin);
            assert_eq!(
                (from, to),
                (berlin_midnight(2026, 11, 28), berlin_midnight(2026, 11, 29)),
                "{zone:?}: Saturday in Berlin, midnight to midnight"
            );
            let p = run(std::slice::from_ref(&closed), at(0, 0));
            assert_eq!(
                p.status,
                Status::Busy,
                "{zone:?}: booked from Saturday 00:00"
            );
            assert_eq!(
                p.busy_until,
                Some(berlin_midnight(2026, 11, 29)),
                "{zone:?}"
            );
            assert_eq!(
                p.until_local.as_deref(),
                Some("Sun 29 Nov 00:00"),
                "{zone:?}"
            );
            let p = run(std::slice::from_ref(&closed), at(23, 0));
            assert_eq!(p.status, Status::Busy, "{zone:?}: still Saturday");
            let sunday = berlin_midnight(2026, 11, 29) + Duration::minutes(30);
            let p = run(std::slice::from_ref(&closed), sunday);
            assert_eq!(p.status, Status::Free, "{zone:?}: Sunday is free");
            assert!(p.all_day.is_empty(), "{zone:?}: not listed on Sunday");
            let friday = berlin_midnight(2026, 11, 28) - Duration::minutes(30);
            let p = run(std::slice::from_ref(&closed), friday);
            assert_eq!(p.status, Status::Free, "{zone:?}: Friday evening is free");
        }
    }

    #[test]
    fn all_day_events_cover_local_days() {
        let mut closed = ev(1, "Room closed", date(2026, 11, 28), date(2026, 11, 29));
        closed.all_day = true;
        closed.time_zone = Some("America/New_York".into());
        let p = run(std::slice::from_ref(&closed), at(0, 30));
        assert_eq!(p.status, Status::Busy);
        assert_eq!(p.busy_until, Some(berlin_midnight(2026, 11, 29)));
        assert_eq!(p.all_day.len(), 1);
        assert!(
            p.next.is_empty(),
            "all-day events are not in the timed list"
        );

        // A timed meeting inside an all-day booking is the current one.
        let p = run(
            &[closed.clone(), ev(2, "Inspection", at(10, 0), at(11, 0))],
            at(10, 30),
        );
        assert_eq!(
            p.current.as_ref().and_then(|m| m.subject.as_deref()),
            Some("Inspection")
        );

        // A free all-day event (a holiday note) does not block.
        let mut holiday = closed;
        holiday.show_as = ShowAs::Free;
        let p = run(&[holiday], at(12, 0));
        assert_eq!(p.status, Status::Free);
        assert_eq!(p.all_day.len(), 1);

        // Two days (Sat + Sun): busy until Monday's local midnight.
        let mut fair = ev(3, "Fair", date(2026, 11, 28), date(2026, 11, 30));
        fair.all_day = true;
        let p = run(&[fair], at(0, 10));
        assert_eq!(p.status, Status::Busy);
        assert_eq!(p.busy_until, Some(berlin_midnight(2026, 11, 30)));

        // The day DST ends (25 h long in Berlin) is covered from midnight to midnight.
        let mut long_day = ev(4, "Long day", date(2026, 10, 25), date(2026, 10, 26));
        long_day.all_day = true;
        let (from, to) = effective_span(&long_day, &chrono_tz::Europe::Berlin);
        assert_eq!(
            (from, to),
            (berlin_midnight(2026, 10, 25), berlin_midnight(2026, 10, 26))
        );
        assert_eq!(to - from, Duration::hours(25));

        // A degenerate range (end = start) still covers its date.
        let mut empty = ev(5, "Note", date(2026, 11, 28), date(2026, 11, 28));
        empty.all_day = true;
        let (from, to) = effective_span(&empty, &chrono_tz::Europe::Berlin);
        assert_eq!(
            (from, to),
            (berlin_midnight(2026, 11, 28), berlin_midnight(2026, 11, 29))
        );
    }

    #[test]
    fn privacy() {
        let mut private = ev(1, "Salary talk", at(9, 0), at(10, 0));
        private.sensitivity = Sensitivity::Private;
        let mut confidential = ev(2, "Merger", at(11, 0), at(12, 0));
        confidential.sensitivity = Sensitivity::Confidential;
        let mut personal = ev(3, "Dentist", at(13, 0), at(14, 0));
        personal.sensitivity = Sensitivity::Personal;
        let events = [private, confidential, personal];
        let p = run(&events, at(9, 30));
        let current = p.current.expect("current");
        assert_eq!(current.subject.as_deref(), Some("Private appointment"));
        assert_eq!(current.organizer, None);
        assert!(current.private);
        assert_eq!(p.next[0].subject.as_deref(), Some("Private appointment"));
        assert_eq!(
            p.next[1].subject.as_deref(),
            Some("Dentist"),
            "personal is not private"
        );
        let json = serde_json::to_string(&run(&events, at(8, 0))).expect("json");
        assert!(!json.contains("Salary") && !json.contains("Merger"));

        let mut hidden = rules();
        hidden.hide_subjects = true;
        let p = run_with(&events, at(12, 30), None, &hidden);
        assert_eq!(p.next[0].subject, None, "hidden");
        assert_eq!(p.next[0].organizer.as_deref(), Some("Ann Organizer"));

        // A room that rewrites subjects to the organizer's name: shown as it comes, once.
        let rewritten = ev(4, "Ann Organizer", at(9, 0), at(10, 0));
        let p = run(&[rewritten], at(9, 10));
        let current = p.current.expect("current");
        assert_eq!(current.subject.as_deref(), Some("Ann Organizer"));
        assert_eq!(current.organizer, None);
    }

    #[test]
    fn stale_after_the_threshold() {
        let events = [ev(1, "Standup", at(9, 0), at(10, 0))];
        let p = run_with(&events, at(9, 10), Some(at(9, 0)), &rules());
        assert_eq!(
            p.status,
            Status::Busy,
            "failing for 10 min is not stale yet"
        );
        assert_eq!(
            p.next_change,
            Some(at(9, 30)),
            "re-render when it turns stale"
        );
        let p = run_with(&events, at(9, 30), Some(at(9, 0)), &rules());
        assert_eq!(p.status, Status::Stale);
        assert_eq!(p.stale_since, Some(at(9, 0)));
        assert!(p.current.is_some(), "the schedule still shows");
    }

    #[test]
    fn a_room_never_read_is_unknown_at_once_never_free() {
        let input = RoomInput {
            mailbox: "room-1@contoso.com",
            id: "x",
            name: None,
            events: Vec::new(),
            failing_since: None,
            never_read: true,
        };
        let p = project(&input, &rules(), at(8, 0));
        assert_eq!(
            p.status,
            Status::Unknown,
            "not 'free for the rest of the day'"
        );
        assert_eq!(
            (p.free_until, p.busy_until, p.until_local),
            (None, None, None)
        );
        // Failing from the start and past the stale threshold: still "unknown", not "stale".
        let failing = RoomInput {
            failing_since: Some(at(7, 0)),
            ..input.clone()
        };
        let p = project(&failing, &rules(), at(8, 0));
        assert_eq!(p.status, Status::Unknown);
        // Once read (even an empty calendar), the room is free.
        let read = RoomInput {
            never_read: false,
            ..input
        };
        assert_eq!(project(&read, &rules(), at(8, 0)).status, Status::Free);
        assert_eq!(
            serde_json::to_value(Status::Unknown).expect("json"),
            serde_json::json!("unknown")
        );
    }

    #[test]
    fn display_name_falls_back_to_the_address_and_hash_tracks_content() {
        let events = [ev(1, "Standup", at(9, 0), at(10, 0))];
        let input = RoomInput {
            mailbox: "room-1@contoso.com",
            id: "x",
            name: None,
            events: events.iter().collect(),
            failing_since: None,
            never_read: false,
        };
        let mut a = project(&input, &rules(), at(8, 0));
        assert_eq!(a.name, "room-1@contoso.com");
        a.seal("f");
        let mut b = project(&input, &rules(), at(8, 1));
        b.seal("f");
        assert_eq!(
            a.content_hash, b.content_hash,
            "time alone changes nothing between boundaries"
        );
        let mut c = project(&input, &rules(), at(8, 50));
        c.seal("f");
        assert_ne!(a.content_hash, c.content_hash);
        let mut d = project(&input, &rules(), at(8, 0));
        d.seal("other settings");
        assert_ne!(a.content_hash, d.content_hash);
    }

    #[test]
    fn control_characters_never_reach_the_sign() {
        let mut e = ev(
            1,
            "Budget\u{0}review\u{7}\tQ4\r\n\u{1b}[31m",
            at(9, 0),
            at(10, 0),
        );
        e.organizer = Some(Person {
            name: Some("Ann\u{0} Organizer\u{85}".into()),
            email: None,
        });
        let input = RoomInput {
            mailbox: "room-1@contoso.com",
            id: "x",
            name: Some("Room\u{7}\u{9b} 1"),
            events: vec![&e],
            failing_since: None,
            never_read: false,
        };
        let p = project(&input, &rules(), at(9, 30));
        let current = p.current.expect("current");
        assert_eq!(current.subject.as_deref(), Some("Budgetreview Q4 [31m"));
        assert_eq!(current.organizer.as_deref(), Some("Ann Organizer"));
        assert_eq!(p.name, "Room 1");
        assert_eq!(clean_text("  a \u{0}\n\n b  "), "a b");
    }

    #[test]
    fn german_dates() {
        let late = ev(1, "Spät", at(23, 0), at(23, 0) + Duration::hours(2));
        let mut de = rules();
        de.language = Language::De;
        let p = run_with(&[late], at(22, 0), None, &de);
        assert_eq!(p.next[0].time, "23:00–So 29.11. 01:00");
    }
}
