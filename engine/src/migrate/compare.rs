//! Comparing a route read through two profiles, event by event under the backend-neutral key:
//! what `calpump migrate verify` prints and what shadow mode counts.
//!
//! The two sides are called *current* (the route's `profile`) and *target* (`--to`, or the
//! route's `shadow_profile`). Per mailbox: events only in one, events whose normalised fields
//! differ ([`super::normalize`]), and — counted apart from those differences — *rewrites*:
//! events equal after normalisation whose [`Event::content_hash`] still differs. A sink compares
//! hashes, so after a switch the first sync would rewrite those rows and pages once (a backend
//! parity defect when it happens, or a text changed only in its spelling between the reads).
//!
//! **Clean** means the switch would change nothing in any sink: every mailbox read by both
//! sides, nothing only in one, no field that differs *and no rewrite*
//! ([`MailboxComparison::clean`], [`Summary::clean`]); `migrate verify` exits 0 only then.
//!
//! **Privacy.** What a comparison reports goes to `/status`, the log and `migrate verify`'s
//! output. For a private or confidential meeting (its sensitivity on either side) the text its
//! organizer typed and the people it names are never in it: [`EventRef::subject`] and the
//! values of the [`PRIVATE_FIELDS`] read [`PRIVATE_TEXT`], and [`EventRef::private`] is set.
//! Times, kind, show-as, sensitivity and the key stay, so the difference can still be found.

use std::sync::Arc;

use calpump_plugin::{Event, EventKey, Window};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::normalize::{hashed_differences, normalized};
use super::read::{CalendarError, MailboxRead, read_mailboxes, resolve_mailboxes};
use crate::config::RouteConfig;
use crate::diagnostics::Diagnostic;
use crate::shutdown::Shutdown;
use crate::source::{MailboxInfo, Source};

/// What a report shows instead of a private or confidential meeting's own text.
pub const PRIVATE_TEXT: &str = "(private)";

/// The fields whose values a report masks for a private or confidential meeting: what its
/// organizer typed and the people it names.
pub const PRIVATE_FIELDS: &[&str] = &[
    "subject",
    "location",
    "organizer",
    "attendees",
    "online_meeting_url",
    "categories",
];

/// An event named in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    pub key: EventKey,
    pub calendar: String,
    /// The subject; [`PRIVATE_TEXT`] for a private or confidential meeting.
    pub subject: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_start: Option<DateTime<Utc>>,
    /// A private or confidential meeting: its text is masked in this report.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

impl EventRef {
    /// The event as a report names it (masked when it is private or confidential).
    pub fn of(e: &Event) -> Self {
        Self::masked(e, e.sensitivity.is_private())
    }

    /// `e` as a report names it, masked when `private`.
    fn masked(e: &Event, private: bool) -> Self {
        Self {
            key: e.key().clone(),
            calendar: e.calendar.clone(),
            subject: if private {
                PRIVATE_TEXT.to_string()
            } else {
                e.subject.clone()
            },
            start: e.start,
            end: e.end,
            original_start: e.original_start(),
            private,
        }
    }
}

/// One side's value of `field` as a report shows it: [`PRIVATE_TEXT`] for a private meeting's
/// [`PRIVATE_FIELDS`] (unless there is no value: `""`, or `null` in a rewrite's hashed form).
fn shown(field: &str, value: String, private: bool) -> String {
    if private && PRIVATE_FIELDS.contains(&field) && !value.is_empty() && value != "null" {
        PRIVATE_TEXT.to_string()
    } else {
        value
    }
}

/// One field that differs: its value on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub current: String,
    pub target: String,
}

/// An event both sides have, with the fields that differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDiff {
    #[serde(flatten)]
    pub event: EventRef,
    pub fields: Vec<FieldDiff>,
}

/// One mailbox compared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxComparison {
    pub mailbox: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Events read through each side (0 when that side could not read the mailbox).
    pub current_events: usize,
    pub target_events: usize,
    /// Calendars the current / target profile could not read; the mailbox is then not compared.
    pub current_errors: Vec<CalendarError>,
    pub target_errors: Vec<CalendarError>,
    pub only_in_current: Vec<EventRef>,
    pub only_in_target: Vec<EventRef>,
    /// Events whose normalised fields differ.
    pub changed: Vec<EventDiff>,
    /// Events equal after normalisation whose content hash differs (the fields that make it):
    /// not [differences](Self::differences), but they make the mailbox not clean.
    pub rewrites: Vec<EventDiff>,
}

impl MailboxComparison {
    /// Both sides read the mailbox.
    pub fn compared(&self) -> bool {
        self.current_errors.is_empty() && self.target_errors.is_empty()
    }

    /// Events only in one side plus events that differ.
    pub fn differences(&self) -> usize {
        self.only_in_current.len() + self.only_in_target.len() + self.changed.len()
    }

    /// Compared, no differences and no rewrites: a switch would change nothing in the sinks.
    pub fn clean(&self) -> bool {
        self.compared() && self.differences() == 0 && self.rewrites.is_empty()
    }
}

/// Compares one mailbox's two reads.
pub fn compare_mailbox(
    name: Option<String>,
    current: MailboxRead,
    target: MailboxRead,
) -> MailboxComparison {
    let mut out = MailboxComparison {
        mailbox: current.address.clone(),
        name,
        current_events: current.events.len(),
        target_events: target.events.len(),
        current_errors: current.errors,
        target_errors: target.errors,
        ..MailboxComparison::default()
    };
    if !out.compared() {
        return out;
    }
    let mut target_events = target.events;
    for (key, a) in current.events {
        let Some(b) = target_events.remove(&key) else {
            out.only_in_current.push(EventRef::of(&a));
            continue;
        };
        // Private on either side: a meeting made private after one read is private.
        let private = a.sensitivity.is_private() || b.sensitivity.is_private();
        let (na, nb) = (normalized(&a), normalized(&b));
        let fields: Vec<FieldDiff> = na
            .differences(&nb)
            .into_iter()
            .map(|(field, x, y)| FieldDiff {
                field: field.to_string(),
                current: shown(field, x.to_string(), private),
                target: shown(field, y.to_string(), private),
            })
            .collect();
        if !fields.is_empty() {
            out.changed.push(EventDiff {
                event: EventRef::masked(&a, private),
                fields,
            });
        } else if a.content_hash() != b.content_hash() {
            out.rewrites.push(EventDiff {
                event: EventRef::masked(&a, private),
                fields: hashed_differences(&a, &b)
                    .into_iter()
                    .map(|(field, current, target)| FieldDiff {
                        current: shown(&field, current, private),
                        target: shown(&field, target, private),
                        field,
                    })
                    .collect(),
            });
        }
    }
    out.only_in_target = target_events.values().map(EventRef::of).collect();
    out
}

/// Totals over a route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub mailboxes: usize,
    /// Mailboxes both sides read.
    pub compared: usize,
    pub current_events: usize,
    pub target_events: usize,
    pub only_in_current: usize,
    pub only_in_target: usize,
    pub changed: usize,
    pub rewrites: usize,
    /// Mailboxes the current / target side could not read (or resolve).
    pub unreadable_current: usize,
    pub unreadable_target: usize,
}

impl Summary {
    /// Events only in one side plus events that differ.
    pub fn differences(&self) -> usize {
        self.only_in_current + self.only_in_target + self.changed
    }

    /// Every mailbox read by both sides, nothing differs and nothing would be rewritten.
    pub fn clean(&self) -> bool {
        self.differences() == 0
            && self.rewrites == 0
            && self.unreadable_current == 0
            && self.unreadable_target == 0
    }

    fn add(&mut self, m: &MailboxComparison) {
        self.mailboxes += 1;
        if m.compared() {
            self.compared += 1;
        }
        self.current_events += m.current_events;
        self.target_events += m.target_events;
        self.only_in_current += m.only_in_current.len();
        self.only_in_target += m.only_in_target.len();
        self.changed += m.changed.len();
        self.rewrites += m.rewrites.len();
        if !m.current_errors.is_empty() {
            self.unreadable_current += 1;
        }
        if !m.target_errors.is_empty() {
            self.unreadable_target += 1;
        }
    }
}

/// A route compared through two sources.
#[derive(Debug, Clone, Serialize)]
pub struct RouteComparison {
    pub route: String,
    pub window: Window,
    pub current_backend: String,
    pub target_backend: String,
    /// Room lists that could not be read through the current profile (their rooms are missing
    /// from the comparison).
    pub route_errors: Vec<Diagnostic>,
    /// Every mailbox, in the route's order (`keep_clean = false`: only those not clean).
    pub mailboxes: Vec<MailboxComparison>,
    pub summary: Summary,
    /// The comparison stopped early (shutdown).
    pub interrupted: bool,
}

/// How to compare.
#[derive(Clone)]
pub struct CompareOptions {
    /// Calendars read at the same time per side (the route's `concurrency`).
    pub concurrency: usize,
    /// Mailboxes read per round (both sides read a round, then it is compared and dropped, so
    /// memory stays bounded by the round, not the route).
    pub round: usize,
    /// Keep clean mailboxes in [`RouteComparison::mailboxes`] (verify lists them; shadow mode
    /// keeps only those that differ).
    pub keep_clean: bool,
    pub shutdown: Shutdown,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            round: 20,
            keep_clean: true,
            shutdown: Shutdown::never(),
        }
    }
}

/// Reads the route's window through both sources — the same mailboxes (resolved through
/// `current`, as the route's runs resolve them), the same calendars, full reads, no state
/// written — and compares them. Each round of mailboxes is read through `current` first, then
/// through `target`.
pub async fn compare_route(
    current: &Arc<dyn Source>,
    target: &Arc<dyn Source>,
    route: &RouteConfig,
    window: Window,
    opts: &CompareOptions,
) -> RouteComparison {
    let resolved = resolve_mailboxes(current.as_ref(), route).await;
    let mut out = RouteComparison {
        route: route.name.clone(),
        window,
        current_backend: current.backend().to_string(),
        target_backend: target.backend().to_string(),
        route_errors: resolved.route_errors,
        mailboxes: Vec::new(),
        summary: Summary::default(),
        interrupted: false,
    };
    for (address, diagnostic) in resolved.failures {
        let m = MailboxComparison {
            mailbox: address,
            current_errors: vec![CalendarError {
                calendar: String::new(),
                diagnostic,
            }],
            ..MailboxComparison::default()
        };
        out.summary.add(&m);
        out.mailboxes.push(m);
    }
    let mailboxes: Vec<MailboxInfo> = resolved.mailboxes;
    for round in mailboxes.chunks(opts.round.max(1)) {
        if opts.shutdown.is_triggered() {
            out.interrupted = true;
            break;
        }
        let a = read_mailboxes(
            current,
            &route.name,
            round,
            &route.calendars,
            window,
            opts.concurrency,
        )
        .await;
        let b = read_mailboxes(
            target,
            &route.name,
            round,
            &route.calendars,
            window,
            opts.concurrency,
        )
        .await;
        for ((info, a), b) in round.iter().zip(a).zip(b) {
            let m = compare_mailbox(info.name.clone(), a, b);
            out.summary.add(&m);
            if opts.keep_clean || !m.clean() {
                out.mailboxes.push(m);
            }
        }
    }
    out
}
