//! Generates one mailbox's calendars deterministically from (seed, mailbox index, anchor).
//!
//! Every shape a room sees appears once per 16 items (`SHAPES`), spread evenly over the days of
//! `[anchor-1d, anchor+15d)`; recurring series start before the window so that it holds both
//! their occurrences and their exceptions.

use super::directory::{Directory, Mailbox, MailboxKind};
use super::goid::GlobalObjectId;
use super::model::*;
use super::rng::{Guid, Rng};
use super::store::{Calendar, MailboxState};
use super::zones::ZONES;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Plain,
    Daily,
    AllDay,
    Private,
    Weekly,
    Confidential,
    Cancelled,
    Online,
    OtherZone,
    HtmlSubject,
    NonAscii,
    LongText,
    Monthly,
    External,
    Tentative,
}

const SHAPES: [Shape; 16] = [
    Shape::Plain,
    Shape::Daily,
    Shape::Plain,
    Shape::AllDay,
    Shape::Private,
    Shape::Weekly,
    Shape::Confidential,
    Shape::Cancelled,
    Shape::Online,
    Shape::OtherZone,
    Shape::HtmlSubject,
    Shape::NonAscii,
    Shape::LongText,
    Shape::Monthly,
    Shape::External,
    Shape::Tentative,
];

const PLAIN: &[&str] = &[
    "Weekly sync",
    "Budget review",
    "1:1",
    "Sprint planning",
    "Design review",
    "Customer call",
    "All hands prep",
    "Interview",
    "Quarterly business review",
    "Lunch & learn",
];
const NON_ASCII: &[&str] = &[
    "Réunion d'équipe – Übersicht Q3",
    "会議: 予算レビュー ✓",
    "Встреча команды",
    "Ünïcödé 🎉 Planung",
];
const HTML: &[&str] = &[
    "<img src=x onerror=alert(1)> & \"quoted\" 'single' </td>",
    "Tom & Jerry <b>bold</b> \"review\" &amp; <script>alert('x')</script>",
];

/// How many generated items a mailbox of this kind holds.
pub fn item_count(kind: MailboxKind, events_per_room: u32, is_catalogue_account: bool) -> u32 {
    match kind {
        MailboxKind::Room => events_per_room,
        MailboxKind::Equipment => (events_per_room / 4).max(1),
        MailboxKind::User if is_catalogue_account => 3,
        MailboxKind::User => events_per_room.min(20),
    }
}

pub fn mailbox(
    seed: u64,
    anchor: DateTime<Utc>,
    dir: &Directory,
    m: &Mailbox,
    events_per_room: u32,
) -> MailboxState {
    let mut calendars = vec![Calendar {
        index: 0,
        name: "Calendar".into(),
        parent: None,
    }];
    let sub = match m.kind {
        // The first room of every floor (room-N.01, .11, …) has a sub-calendar.
        MailboxKind::Room
            if m.room_list
                .and_then(|l| dir.room_lists.get(l as usize))
                .and_then(|l| l.rooms.iter().position(|i| *i == m.index))
                .is_some_and(|p| p % 10 == 0) =>
        {
            Some("Maintenance")
        }
        MailboxKind::User => Some("Team events"),
        _ => None,
    };
    if let Some(name) = sub {
        calendars.push(Calendar {
            index: 1,
            name: name.into(),
            parent: Some(0),
        });
    }
    let is_account = crate::catalogue::ACCOUNTS.iter().any(|(u, _)| *u == m.smtp);
    let count = item_count(m.kind, events_per_room, is_account);
    let mut items = BTreeMap::new();
    for k in 0..count {
        let it = item(seed, anchor, dir, m, k, count, 0);
        items.insert(it.num, it);
    }
    if sub.is_some() {
        for k in 0..2 {
            let it = item(seed, anchor, dir, m, count + k, count + 2, 1);
            items.insert(it.num, it);
        }
    }
    let next_item = items.keys().next_back().copied().unwrap_or(0) + 1;
    MailboxState {
        calendars,
        items,
        seq: 0,
        log: Vec::new(),
        next_item,
    }
}

fn person(dir: &Directory, idx: u32) -> Person {
    match dir.get(idx) {
        Some(m) => Person {
            name: m.display_name.clone(),
            address: m.smtp.clone(),
        },
        None => Person {
            name: "Unknown".into(),
            address: "unknown@contoso.com".into(),
        },
    }
}

fn local(zone: chrono_tz::Tz, d: NaiveDate, minutes: u32) -> DateTime<Utc> {
    let naive = d
        .and_hms_opt(minutes / 60, minutes % 60, 0)
        .unwrap_or_default();
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

/// A Teams join URL shaped like the real ones.
pub fn teams_url(rng: &mut Rng) -> String {
    let a = hex::encode(rng.bytes::<12>());
    let tid = crate::catalogue::TENANT_ID;
    let oid = Guid::from_rng(rng);
    format!(
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_{a}%40thread.v2/0?context=%7b%22Tid%22%3a%22{tid}%22%2c%22Oid%22%3a%22{oid}%22%7d"
    )
}

fn item(
    seed: u64,
    anchor: DateTime<Utc>,
    dir: &Directory,
    m: &Mailbox,
    k: u32,
    count: u32,
    calendar: u16,
) -> Item {
    let mut rng = Rng::derive(seed, &[0xE0, u64::from(m.index), u64::from(k)]);
    let shape = if calendar == 0 {
        SHAPES[(k as usize) % SHAPES.len()]
    } else {
        Shape::Plain
    };
    let anchor_date = anchor.date_naive();
    // Spread over the 16 days of the window (-1 .. +14).
    let day_offset = if calendar == 0 {
        i64::from(k) * 16 / i64::from(count.max(1)) - 1
    } else {
        1 + 2 * i64::from(k % 2)
    };
    let date = anchor_date + Duration::days(day_offset);
    let mut zone = m.zone;
    if shape == Shape::OtherZone {
        let others: Vec<_> = ZONES
            .iter()
            .filter(|z| z.windows != m.zone.windows && z.windows != "UTC")
            .collect();
        zone = others[rng.below(others.len() as u64) as usize];
    }
    let start_min = 8 * 60 + 30 * rng.below(19) as u32;
    let dur = [30, 30, 60, 60, 90, 120][rng.below(6) as usize];
    let mut start = local(zone.tz, date, start_min);
    let mut end = start + Duration::minutes(dur);
    let organizer = if shape == Shape::External {
        Person {
            name: "Partner Fabrikam".into(),
            address: format!("partner.{}@fabrikam.example", rng.below(50)),
        }
    } else if dir.people.is_empty() {
        person(dir, 0)
    } else {
        person(dir, dir.people[rng.below(dir.people.len() as u64) as usize])
    };
    let mut attendees = Vec::new();
    let responses = ["accepted", "tentativelyAccepted", "none", "accepted"];
    for n in 0..(1 + rng.below(3)) {
        if dir.people.is_empty() {
            break;
        }
        let p = person(dir, dir.people[rng.below(dir.people.len() as u64) as usize]);
        if p.address == organizer.address
            || attendees
                .iter()
                .any(|a: &Attendee| a.person.address == p.address)
        {
            continue;
        }
        attendees.push(Attendee {
            person: p,
            kind: if n == 2 {
                AttendeeType::Optional
            } else {
                AttendeeType::Required
            },
            response: responses[rng.below(4) as usize].into(),
        });
    }
    if m.kind != MailboxKind::User {
        attendees.push(Attendee {
            person: Person {
                name: m.display_name.clone(),
                address: m.smtp.clone(),
            },
            kind: AttendeeType::Resource,
            response: "accepted".into(),
        });
    }
    let mut subject = PLAIN[rng.below(PLAIN.len() as u64) as usize].to_string();
    let mut body = format!("Agenda for {subject}.\nPlease be on time.");
    let mut location = if m.kind == MailboxKind::User {
        format!("Room {}.{:02}", 1 + rng.below(3), 1 + rng.below(50))
    } else {
        m.display_name.clone()
    };
    let mut data = EventData {
        subject: String::new(),
        body: String::new(),
        location: String::new(),
        start,
        end,
        is_all_day: false,
        zone,
        sensitivity: Sensitivity::Normal,
        show_as: ShowAs::Busy,
        is_cancelled: false,
        organizer,
        attendees,
        online_url: None,
        categories: if rng.chance(20) {
            vec!["Blue category".into()]
        } else {
            vec![]
        },
        importance: Importance::Normal,
    };
    let mut series = None;
    match shape {
        Shape::Plain | Shape::Daily | Shape::Weekly | Shape::Monthly => {}
        Shape::AllDay => {
            // Exchange stores an all-day event at midnight of its creator's zone (here the
            // mailbox's): 1–2 dates from local midnight to local midnight. Every other one
            // blocks the room (busy), the others are informational (free).
            let days = 1 + rng.below(2) as i64;
            start = local_midnight(zone.tz, date);
            end = local_midnight(zone.tz, date + Duration::days(days));
            data.is_all_day = true;
            data.show_as = if (k as usize / SHAPES.len()).is_multiple_of(2) {
                ShowAs::Busy
            } else {
                ShowAs::Free
            };
            subject = [
                "Company holiday",
                "Offsite",
                "Deep cleaning",
                "Conference setup",
            ][rng.below(4) as usize]
                .into();
        }
        Shape::Private => data.sensitivity = Sensitivity::Private,
        Shape::Confidential => data.sensitivity = Sensitivity::Confidential,
        Shape::Tentative => {
            data.show_as = ShowAs::Tentative;
            data.sensitivity = Sensitivity::Personal;
        }
        Shape::Cancelled => {
            subject = format!("Canceled: {subject}");
            data.is_cancelled = true;
            data.show_as = ShowAs::Free;
        }
        Shape::Online => {
            data.online_url = Some(teams_url(&mut rng));
            location = "Microsoft Teams Meeting".into();
            body = format!(
                "Join the meeting now: {}",
                data.online_url.clone().unwrap_or_default()
            );
        }
        Shape::OtherZone => subject = format!("{subject} ({})", zone.iana),
        Shape::HtmlSubject => {
            subject = HTML[rng.below(HTML.len() as u64) as usize].into();
            body = "<p onclick=\"steal()\">Body with <b>markup</b> &amp; entities &lt;3</p>".into();
            location = format!("{location} <\"Annex\"> & more");
        }
        Shape::NonAscii => {
            subject = NON_ASCII[rng.below(NON_ASCII.len() as u64) as usize].into();
            location = format!("{location} – Ökologie-Raum");
        }
        Shape::LongText => {
            subject = "Very long subject: ".to_string()
                + &"quarterly planning and alignment of cross-functional roadmap items ".repeat(6);
            body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(100);
        }
        Shape::External => {
            subject = format!("Fabrikam: {subject}");
        }
    }
    if shape != Shape::Online && rng.chance(15) {
        data.online_url = Some(teams_url(&mut rng));
    }
    data.subject = subject;
    data.body = body;
    data.location = location;
    data.start = start;
    data.end = end;
    let created = anchor - Duration::days(40) + Duration::minutes(i64::from(k));
    match shape {
        Shape::Daily => {
            let first = date - Duration::days(3);
            data.start = local(zone.tz, first, start_min);
            data.end = data.start + Duration::minutes(dur);
            series = Some(Series {
                pattern: Pattern::Daily { interval: 1 },
                start_date: first,
                end: RangeEnd::Numbered { count: 10 },
                exceptions: BTreeMap::new(),
                deleted: BTreeSet::new(),
            });
        }
        Shape::Weekly => {
            let first = anchor_date - Duration::days(14 + i64::from(k % 5));
            let d1 = first.weekday();
            let d2 = d1.succ().succ();
            data.start = local(zone.tz, first, start_min);
            data.end = data.start + Duration::minutes(dur);
            series = Some(Series {
                pattern: Pattern::Weekly {
                    interval: 1,
                    days: vec![d1, d2],
                },
                start_date: first,
                end: RangeEnd::NoEnd,
                exceptions: BTreeMap::new(),
                deleted: BTreeSet::new(),
            });
        }
        Shape::Monthly => {
            let target = anchor_date + Duration::days(2 + i64::from(k % 10));
            let first = target - Duration::days(91);
            let pattern = if (k / 16).is_multiple_of(2) {
                Pattern::AbsoluteMonthly {
                    interval: 1,
                    day: target.day().min(28),
                }
            } else {
                let nth = (target.day() - 1) / 7;
                let index = [
                    WeekIndex::First,
                    WeekIndex::Second,
                    WeekIndex::Third,
                    WeekIndex::Fourth,
                ][nth.min(3) as usize];
                Pattern::RelativeMonthly {
                    interval: 1,
                    index,
                    day: target.weekday(),
                }
            };
            // The series starts on the first matching date on or after `first`.
            let mut s = first;
            while !matches_first(&pattern, s) {
                s += Duration::days(1);
            }
            data.start = local(zone.tz, s, start_min);
            data.end = data.start + Duration::minutes(dur);
            series = Some(Series {
                pattern,
                start_date: s,
                end: RangeEnd::EndDate {
                    end: anchor_date + Duration::days(200),
                },
                exceptions: BTreeMap::new(),
                deleted: BTreeSet::new(),
            });
        }
        _ => {}
    }
    let goid = if shape == Shape::External {
        let uid = if rng.chance(50) {
            format!("{}", Guid::from_rng(&mut rng)).to_uppercase()
        } else {
            format!("{}@fabrikam.example", hex::encode(rng.bytes::<10>()))
        };
        GlobalObjectId::external(&uid)
    } else {
        GlobalObjectId::exchange_born(created, Guid::from_rng(&mut rng).0)
    };
    let mut it = Item {
        num: u64::from(k) + 1,
        calendar,
        goid,
        version: 1,
        created,
        last_modified: created,
        is_organizer: m.kind == MailboxKind::User && data.organizer.address == m.smtp,
        data,
        series,
    };
    add_exceptions(&mut it, anchor, &mut rng);
    it
}

fn matches_first(p: &Pattern, d: NaiveDate) -> bool {
    match p {
        Pattern::AbsoluteMonthly { day, .. } => d.day() == *day,
        Pattern::RelativeMonthly { index, day, .. } => {
            let nth = (d.day() - 1) / 7;
            d.weekday() == *day
                && match index {
                    WeekIndex::First => nth == 0,
                    WeekIndex::Second => nth == 1,
                    WeekIndex::Third => nth == 2,
                    WeekIndex::Fourth => nth == 3,
                    WeekIndex::Last => (d + Duration::days(7)).month() != d.month(),
                }
        }
        _ => true,
    }
}

/// Daily and weekly series get one modified and one deleted occurrence inside the window.
fn add_exceptions(it: &mut Item, anchor: DateTime<Utc>, rng: &mut Rng) {
    let is_daily_or_weekly = matches!(
        it.series.as_ref().map(|s| &s.pattern),
        Some(Pattern::Daily { .. }) | Some(Pattern::Weekly { .. })
    );
    if !is_daily_or_weekly {
        return;
    }
    let upcoming: Vec<_> = it
        .occurrence_starts(anchor + Duration::days(15))
        .into_iter()
        .filter(|s| *s >= anchor)
        .collect();
    if upcoming.len() < 3 {
        return;
    }
    let moved = upcoming[1];
    let deleted = upcoming[2];
    let mut ex = it.data.clone();
    let shift = Duration::minutes(30 * (1 + rng.below(4) as i64));
    ex.start = moved + shift;
    ex.end = ex.start + (it.data.end - it.data.start);
    ex.subject = format!("{} (moved)", it.data.subject);
    let lm = it.created + Duration::days(1);
    if let Some(s) = it.series.as_mut() {
        s.exceptions.insert(
            moved,
            Exception {
                data: ex,
                version: 2,
                last_modified: lm,
            },
        );
        s.deleted.insert(deleted);
    }
    it.version = 2;
    it.last_modified = lm;
}
