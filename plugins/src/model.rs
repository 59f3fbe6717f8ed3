//! The canonical model: what every backend produces and every sink consumes.
//!
//! Payloads cross the plugin boundary as JSON, versioned by [`SCHEMA_VERSION`]. Readers ignore
//! unknown fields and map unknown enum values to an `Unknown` variant, so a newer engine can talk
//! to an older plugin and the other way round. Fields are only ever added.
//!
//! # Identity
//!
//! An event's [`EventKey`] must not depend on the backend: the same meeting read through EWS and
//! through Microsoft Graph gets the same key, so a route can switch backends without duplicates.
//! The key is derived — never chosen — from three things only:
//!
//! 1. the mailbox's SMTP address (lower-cased), because the same meeting sits in every room it
//!    booked and each room's copy is its own row;
//! 2. the meeting's *clean* global object id (`PidLidCleanGlobalObjectId`), which EWS exposes as an
//!    extended property and Graph through `singleValueExtendedProperties`, and which is the same
//!    for every copy and every occurrence of a meeting;
//! 3. for an occurrence of a recurring series, its *original* start (the slot the series pattern
//!    gave it, which does not move when the occurrence is rescheduled).
//!
//! Item ids and change keys differ between EWS and Graph (and between EWS ids and Graph immutable
//! ids), so they are attributes ([`SourceIds`]), never identity. [`Event::new`] is the only way to
//! make an `Event`, and deserialising one recomputes the key and refuses a mismatch.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the JSON payloads in this module. Bumped only for incompatible changes; adding an
/// optional field does not bump it.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors from building model values out of untrusted input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("mailbox address {0:?} is not an SMTP address")]
    BadMailbox(String),
    #[error("global object id is empty or too short ({0} bytes; at least 20 expected)")]
    ShortGlobalObjectId(usize),
    #[error("global object id is neither base64 nor hex: {0}")]
    BadGlobalObjectIdEncoding(String),
    #[error("event ends ({end}) before it starts ({start})")]
    EndBeforeStart {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("event key {found} does not match its identity (expected {expected})")]
    KeyMismatch { expected: String, found: String },
}

/// The 16-byte class id every (clean) global object id starts with
/// ([MS-OXOCAL] 2.2.1.27 PidLidGlobalObjectId).
const GOID_CLASS_ID: [u8; 16] = [
    0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08,
];

/// A meeting's clean global object id (`PidLidCleanGlobalObjectId`), held as upper-case hex.
///
/// Built from the raw bytes; a non-clean `PidLidGlobalObjectId` (which carries an occurrence's
/// date in bytes 16..20) is cleaned by zeroing those bytes, exactly as Exchange derives the clean
/// id, so a backend that can only read the non-clean one still produces the same key.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GlobalObjectId(String);

impl GlobalObjectId {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < 20 {
            return Err(ModelError::ShortGlobalObjectId(bytes.len()));
        }
        let mut clean = bytes.to_vec();
        if clean[..16] == GOID_CLASS_ID {
            clean[16..20].fill(0);
        }
        Ok(Self(hex::encode_upper(clean)))
    }

    /// From the base64 text EWS (`t:ExtendedProperty/t:Value`) and Graph
    /// (`singleValueExtendedProperties[].value`) use for binary properties.
    pub fn from_base64(text: &str) -> Result<Self, ModelError> {
        let bytes = base64_decode(text.trim())
            .ok_or_else(|| ModelError::BadGlobalObjectIdEncoding(shorten(text)))?;
        Self::from_bytes(&bytes)
    }

    /// From hex (Graph's `iCalUId` of an Exchange-born meeting is the hex global object id).
    pub fn from_hex(text: &str) -> Result<Self, ModelError> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| ModelError::BadGlobalObjectIdEncoding(shorten(text)))?;
        Self::from_bytes(&bytes)
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GlobalObjectId {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_hex(&value)
    }
}

impl From<GlobalObjectId> for String {
    fn from(value: GlobalObjectId) -> Self {
        value.0
    }
}

impl fmt::Debug for GlobalObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GlobalObjectId({})", self.0)
    }
}

impl fmt::Display for GlobalObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Standard base64 (with or without padding); a tiny decoder so this crate needs no base64
/// dependency. Returns `None` on any character outside the alphabet.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// Normalises an SMTP address for identity: trimmed, lower-cased, must contain one `@`.
pub fn normalize_mailbox(address: &str) -> Result<String, ModelError> {
    let trimmed = address.trim();
    let mut parts = trimmed.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {
            Ok(trimmed.to_lowercase())
        }
        _ => Err(ModelError::BadMailbox(address.to_string())),
    }
}

/// The backend-neutral identity of one event in one mailbox. See the module documentation.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventKey(String);

impl EventKey {
    const PREFIX: &'static str = "ev1-";

    /// Derives the key. `original_start` is `Some` for occurrences and exceptions of a series
    /// (the slot the pattern gave them) and `None` for single events and series masters.
    pub fn derive(
        mailbox: &str,
        global_object_id: &GlobalObjectId,
        original_start: Option<DateTime<Utc>>,
    ) -> Result<Self, ModelError> {
        let mailbox = normalize_mailbox(mailbox)?;
        let mut hasher = Sha256::new();
        hasher.update(mailbox.as_bytes());
        hasher.update(b"\n");
        hasher.update(global_object_id.as_hex().as_bytes());
        hasher.update(b"\n");
        if let Some(start) = original_start {
            hasher.update(start.to_rfc3339_opts(SecondsFormat::Secs, true).as_bytes());
        }
        let digest = hasher.finalize();
        Ok(Self(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(&digest[..16])
        )))
    }

    /// Wraps a key string that came from a trusted store (a sink's own table, the engine's
    /// item index). Does not validate beyond the prefix; use [`EventKey::derive`] to make one.
    pub fn from_stored(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which backend read an event, and its ids there. Attributes only — never identity.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceIds {
    /// `"ews"` or `"graph"` (or a future backend's name).
    pub backend: String,
    /// EWS `ItemId/@Id`, or the Graph (immutable) event id.
    pub item_id: String,
    /// EWS `ItemId/@ChangeKey`, or Graph `changeKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_key: Option<String>,
}

/// What kind of calendar item this is. Calendar views never contain series masters, only
/// their instances.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[default]
    Single,
    /// An unmodified occurrence of a recurring series.
    Occurrence,
    /// A modified occurrence of a recurring series.
    Exception,
    #[serde(other)]
    Unknown,
}

/// Free/busy status as the organizer set it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShowAs {
    Free,
    Tentative,
    #[default]
    Busy,
    Oof,
    WorkingElsewhere,
    #[serde(other)]
    Unknown,
}

/// Privacy level. `Private` and `Confidential` hide subject and organizer on door signs.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    #[default]
    Normal,
    Personal,
    Private,
    Confidential,
    #[serde(other)]
    Unknown,
}

impl Sensitivity {
    /// Whether door signs and other public displays must hide subject and organizer.
    pub fn is_private(self) -> bool {
        matches!(self, Sensitivity::Private | Sensitivity::Confidential)
    }
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttendeeKind {
    Required,
    Optional,
    Resource,
    #[serde(other)]
    Unknown,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    #[default]
    None,
    Organizer,
    Accepted,
    TentativelyAccepted,
    Declined,
    NotResponded,
    #[serde(other)]
    Unknown,
}

/// A person or resource: display name and SMTP address, either of which may be missing.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Person {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SMTP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An attendee: a person (`name`, `email`) with a kind and a response.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attendee {
    #[serde(flatten)]
    pub person: Person,
    /// `required`, `optional` or `resource` (a room or equipment).
    pub kind: AttendeeKind,
    /// The attendee's response.
    #[serde(default)]
    pub response: ResponseStatus,
}

/// The part of an event that decides its key. Private to [`Event`] so the key cannot drift.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventIdentity {
    mailbox: String,
    global_object_id: GlobalObjectId,
    original_start: Option<DateTime<Utc>>,
}

impl EventIdentity {
    /// `original_start` is the occurrence's original start for occurrences and exceptions of a
    /// series, `None` otherwise.
    pub fn new(
        mailbox: &str,
        global_object_id: GlobalObjectId,
        original_start: Option<DateTime<Utc>>,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            mailbox: normalize_mailbox(mailbox)?,
            global_object_id,
            original_start: original_start.map(truncate_to_seconds),
        })
    }

    pub fn key(&self) -> EventKey {
        // `new` already validated the mailbox, so derive cannot fail here; fall back to an
        // unprefixed key rather than panic if that invariant is ever broken.
        EventKey::derive(&self.mailbox, &self.global_object_id, self.original_start)
            .unwrap_or_else(|_| EventKey(format!("invalid-{}", self.global_object_id)))
    }

    /// The key shared by every occurrence of the series (equal to a single event's own key).
    pub fn series_key(&self) -> EventKey {
        EventKey::derive(&self.mailbox, &self.global_object_id, None)
            .unwrap_or_else(|_| EventKey(format!("invalid-{}", self.global_object_id)))
    }
}

fn truncate_to_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// One calendar event (an instance: single event, occurrence or exception) in one mailbox.
///
/// Build it with [`Event::new`]; the identity fields and the key are read-only afterwards.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EventWire", into = "EventWire")]
pub struct Event {
    identity: EventIdentity,
    key: EventKey,
    series_key: Option<EventKey>,
    /// Neutral calendar path inside the mailbox: `"default"` for the mailbox's main calendar,
    /// otherwise the calendar's display name (flat: Graph lists calendars without hierarchy).
    pub calendar: String,
    pub source: SourceIds,
    pub kind: EventKind,
    /// The meeting's iCalendar UID, derived from the global object id by the rule of
    /// [MS-OXCICAL] (for an invitation from outside Exchange: the sender's own UID; otherwise the
    /// hex of the global object id). Both backends derive it the same way, because EWS `UID` and
    /// Graph `iCalUId` disagree for outside invitations. Informational, not identity.
    pub ical_uid: Option<String>,
    pub subject: String,
    pub location: Option<String>,
    pub organizer: Option<Person>,
    pub attendees: Vec<Attendee>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// IANA name of the zone the organizer scheduled in (`Europe/Berlin`), when known.
    pub time_zone: Option<String>,
    /// An all-day event covers whole calendar *dates*, not instants: wherever a room is, it is
    /// booked from its local midnight of the first date to its local midnight after the last.
    /// So for all-day events `start` and `end` are those dates at 00:00:00 UTC ("floating"
    /// dates): 28 Nov – 29 Nov for a one-day event, whatever zone it was created in. Exchange
    /// stores all-day events at midnight of the creator's zone and EWS and Graph return that as
    /// an instant (`2026-11-27T23:00:00Z` for Berlin); backends convert it back into the event's
    /// zone, take the dates, and write them here. Sinks read them as dates in their own zone.
    pub all_day: bool,
    pub show_as: ShowAs,
    pub sensitivity: Sensitivity,
    pub cancelled: bool,
    pub online_meeting_url: Option<String>,
    pub categories: Vec<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

impl Event {
    /// The only constructor. `start`/`end` are UTC instants; the key is derived from `identity`.
    pub fn new(
        identity: EventIdentity,
        calendar: impl Into<String>,
        source: SourceIds,
        subject: impl Into<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Self, ModelError> {
        if end < start {
            return Err(ModelError::EndBeforeStart { start, end });
        }
        let key = identity.key();
        let series_key = identity.original_start.map(|_| identity.series_key());
        let kind = if identity.original_start.is_some() {
            EventKind::Occurrence
        } else {
            EventKind::Single
        };
        Ok(Self {
            identity,
            key,
            series_key,
            calendar: calendar.into(),
            source,
            kind,
            ical_uid: None,
            subject: subject.into(),
            location: None,
            organizer: None,
            attendees: Vec::new(),
            start,
            end,
            time_zone: None,
            all_day: false,
            show_as: ShowAs::Busy,
            sensitivity: Sensitivity::Normal,
            cancelled: false,
            online_meeting_url: None,
            categories: Vec::new(),
            last_modified: None,
        })
    }

    pub fn key(&self) -> &EventKey {
        &self.key
    }
    /// For occurrences and exceptions: the key shared by the whole series.
    pub fn series_key(&self) -> Option<&EventKey> {
        self.series_key.as_ref()
    }
    pub fn mailbox(&self) -> &str {
        &self.identity.mailbox
    }
    pub fn global_object_id(&self) -> &GlobalObjectId {
        &self.identity.global_object_id
    }
    pub fn original_start(&self) -> Option<DateTime<Utc>> {
        self.identity.original_start
    }
    pub fn identity(&self) -> &EventIdentity {
        &self.identity
    }

    /// Whether the event overlaps the half-open window `[start, end)`.
    pub fn overlaps(&self, window: &Window) -> bool {
        if self.start == self.end {
            window.contains(self.start)
        } else {
            self.start < window.end && self.end > window.start
        }
    }

    /// A stable hash of everything a sink shows or stores, excluding the source's ids and
    /// change keys (which change when nothing a user sees does, and differ between backends).
    /// Sinks use it to skip writes when nothing changed, and `migrate verify` to compare.
    pub fn content_hash(&self) -> String {
        let mut normalized = self.clone();
        normalized.source = SourceIds::default();
        normalized.last_modified = None;
        normalized.attendees.sort_by(|a, b| {
            (
                a.person.email.as_deref().map(str::to_lowercase),
                a.kind as u8,
            )
                .cmp(&(
                    b.person.email.as_deref().map(str::to_lowercase),
                    b.kind as u8,
                ))
        });
        for attendee in &mut normalized.attendees {
            attendee.person.email = attendee.person.email.as_deref().map(str::to_lowercase);
        }
        if let Some(organizer) = &mut normalized.organizer {
            organizer.email = organizer.email.as_deref().map(str::to_lowercase);
        }
        normalized.categories.sort();
        let json = serde_json::to_vec(&normalized).unwrap_or_default();
        let digest = Sha256::digest(&json);
        hex::encode(&digest[..16])
    }
}

/// The wire form of [`Event`]: flat, with the key spelled out so sinks need not derive it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Serialize, Deserialize)]
struct EventWire {
    /// The backend-neutral key: `ev1-` and 32 hex digits, derived from `mailbox`,
    /// `global_object_id` and `original_start` (a mismatch is refused).
    key: EventKey,
    /// The mailbox's SMTP address, lower-case.
    mailbox: String,
    /// Neutral calendar path: `"default"` for the main calendar, else the calendar's name.
    calendar: String,
    /// Which backend read the event and its ids there (attributes, never identity).
    source: SourceIds,
    /// The meeting's clean global object id (`PidLidCleanGlobalObjectId`), upper-case hex.
    global_object_id: GlobalObjectId,
    /// For occurrences and exceptions of a series: the start the series pattern gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original_start: Option<DateTime<Utc>>,
    /// For occurrences and exceptions: the key shared by the whole series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    series_key: Option<EventKey>,
    /// `single`, `occurrence` or `exception`.
    #[serde(default)]
    kind: EventKind,
    /// iCalendar UID as the backend reports it (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ical_uid: Option<String>,
    /// The subject (untrusted text: escape it).
    #[serde(default)]
    subject: String,
    /// The location's display text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    /// Who organised the meeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organizer: Option<Person>,
    /// Required, optional and resource attendees.
    #[serde(default)]
    attendees: Vec<Attendee>,
    /// Start, UTC (for all-day events: the first date at 00:00 UTC).
    start: DateTime<Utc>,
    /// End, UTC, exclusive (for all-day events: the day after the last date at 00:00 UTC).
    end: DateTime<Utc>,
    /// IANA zone the organizer scheduled in (`Europe/Berlin`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
    /// Whether the event covers whole dates (see `start`, `end`).
    #[serde(default)]
    all_day: bool,
    /// Free/busy status as the organizer set it.
    #[serde(default)]
    show_as: ShowAs,
    /// Privacy level; `private` and `confidential` hide subject and organizer on public
    /// displays.
    #[serde(default)]
    sensitivity: Sensitivity,
    /// The organizer cancelled it (Exchange keeps cancelled occurrences in the calendar).
    #[serde(default)]
    cancelled: bool,
    /// Teams or other online-meeting join URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    online_meeting_url: Option<String>,
    /// Outlook categories.
    #[serde(default)]
    categories: Vec<String>,
    /// When the item was last changed in Exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<DateTime<Utc>>,
}

impl TryFrom<EventWire> for Event {
    type Error = ModelError;
    fn try_from(w: EventWire) -> Result<Self, Self::Error> {
        let identity = EventIdentity::new(&w.mailbox, w.global_object_id, w.original_start)?;
        let mut event = Event::new(identity, w.calendar, w.source, w.subject, w.start, w.end)?;
        if event.key != w.key {
            return Err(ModelError::KeyMismatch {
                expected: event.key.0,
                found: w.key.0,
            });
        }
        event.kind = w.kind;
        event.ical_uid = w.ical_uid;
        event.location = w.location;
        event.organizer = w.organizer;
        event.attendees = w.attendees;
        event.time_zone = w.time_zone;
        event.all_day = w.all_day;
        event.show_as = w.show_as;
        event.sensitivity = w.sensitivity;
        event.cancelled = w.cancelled;
        event.online_meeting_url = w.online_meeting_url;
        event.categories = w.categories;
        event.last_modified = w.last_modified;
        Ok(event)
    }
}

impl From<Event> for EventWire {
    fn from(e: Event) -> Self {
        EventWire {
            key: e.key,
            mailbox: e.identity.mailbox,
            calendar: e.calendar,
            source: e.source,
            global_object_id: e.identity.global_object_id,
            original_start: e.identity.original_start,
            series_key: e.series_key,
            kind: e.kind,
            ical_uid: e.ical_uid,
            subject: e.subject,
            location: e.location,
            organizer: e.organizer,
            attendees: e.attendees,
            start: e.start,
            end: e.end,
            time_zone: e.time_zone,
            all_day: e.all_day,
            show_as: e.show_as,
            sensitivity: e.sensitivity,
            cancelled: e.cancelled,
            online_meeting_url: e.online_meeting_url,
            categories: e.categories,
            last_modified: e.last_modified,
        }
    }
}

/// A half-open time window `[start, end)` in UTC.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// First instant inside the window.
    pub start: DateTime<Utc>,
    /// First instant after the window.
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// How a batch relates to what the sink holds.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Every event of the calendar inside the window. When `complete`, the sink may remove
    /// whatever it holds for this (mailbox, calendar) inside the window that is not in the batch.
    Snapshot,
    /// Upserts and deletes since the previous batch of this (mailbox, calendar).
    Delta,
}

/// What the engine hands each sink: changes of one calendar of one mailbox.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The payload version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The run this batch belongs to; the same batch re-delivered after a crash gets a new one.
    pub run_id: String,
    /// The route's name.
    pub route: String,
    /// The mailbox's SMTP address (lower-case).
    pub mailbox: String,
    /// The mailbox's display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_name: Option<String>,
    /// Neutral calendar path (see [`Event::calendar`]).
    pub calendar: String,
    /// `snapshot` or `delta`.
    pub kind: BatchKind,
    /// The route's window the batch covers.
    pub window: Window,
    /// Events to insert or update, by key.
    #[serde(default)]
    pub upserts: Vec<Event>,
    /// Keys of events that are gone.
    #[serde(default)]
    pub deletes: Vec<EventKey>,
    /// For a snapshot: the engine vouches this is the whole window (the empty-calendar guard
    /// passed). When `false`, sinks must upsert but must not remove absent events.
    #[serde(default)]
    pub complete: bool,
}

/// One item a sink could not take, and why.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFailure {
    /// The event's key.
    pub key: EventKey,
    /// Why, for the admin.
    pub reason: String,
}

/// A sink's answer to one batch.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SinkResult {
    /// The payload version ([`SCHEMA_VERSION`]).
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    /// Keys (upserts and deletes) the sink applied or found unchanged.
    #[serde(default)]
    pub accepted: Vec<EventKey>,
    /// Items the sink will never take as they are (a constraint, a value it cannot store).
    /// Recorded per event; they do not hold back the cursor.
    #[serde(default)]
    pub rejected: Vec<ItemFailure>,
    /// Items that failed for a passing reason; the engine re-sends them after a back-off.
    #[serde(default)]
    pub retryable: Vec<ItemFailure>,
    /// The next instant the sink wants a [`Tick`] even if no calendar changes (a door sign's
    /// next meeting boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_wakeup: Option<DateTime<Utc>>,
}

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

impl SinkResult {
    /// Everything in the batch accepted.
    pub fn all_accepted(batch: &Batch) -> Self {
        let mut accepted: Vec<EventKey> = batch.upserts.iter().map(|e| e.key().clone()).collect();
        accepted.extend(batch.deletes.iter().cloned());
        Self {
            schema_version: SCHEMA_VERSION,
            accepted,
            ..Self::default()
        }
    }
}

/// How a mailbox's source is doing, as the engine sees it; sent to sinks with each [`Tick`] so a
/// door sign can show `stale` when its room has not been read for too long.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxHealth {
    /// The route the mailbox belongs to.
    pub route: String,
    /// The mailbox's SMTP address, lower-case.
    pub mailbox: String,
    /// Its display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_name: Option<String>,
    /// When it was last read successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    /// Since when its reads fail (absent while they succeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Diagnostic code of the last failure, e.g. `EWS-ImpersonateUserDenied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The engine's periodic call: the time now and the health of every mailbox the sink serves.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// The payload version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The engine's time.
    pub now: DateTime<Utc>,
    /// The health of every mailbox the sink serves.
    #[serde(default)]
    pub mailboxes: Vec<MailboxHealth>,
}

/// A sink's answer to a [`Tick`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TickResult {
    /// The next instant the sink wants a tick (a door sign's next meeting boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_wakeup: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn goid() -> GlobalObjectId {
        let mut bytes = GOID_CLASS_ID.to_vec();
        bytes.extend_from_slice(&[0x07, 0xEA, 0x0B, 0x1C]); // an instance date: 2026-11-28
        bytes.extend_from_slice(&[0u8; 16]);
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(b"0123456789abcdef");
        GlobalObjectId::from_bytes(&bytes).expect("valid goid")
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn global_object_id_is_cleaned_and_encoding_neutral() {
        let id = goid();
        assert_eq!(
            &id.as_hex()[32..40],
            "00000000",
            "instance date must be zeroed"
        );
        let bytes = hex::decode(id.as_hex()).expect("hex");
        let b64 = "BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAADAxMjM0NTY3ODlhYmNkZWY=";
        assert_eq!(base64_decode(b64).expect("b64"), bytes);
        assert_eq!(GlobalObjectId::from_base64(b64).expect("b64"), id);
        assert_eq!(
            GlobalObjectId::from_hex(&id.as_hex().to_lowercase()).expect("hex"),
            id
        );
        assert!(GlobalObjectId::from_bytes(&[1, 2, 3]).is_err());
        assert!(GlobalObjectId::from_base64("not base64!").is_err());
    }

    #[test]
    fn key_depends_on_identity_only() {
        let a = EventIdentity::new("Room-1@Contoso.com ", goid(), None).expect("identity");
        let b = EventIdentity::new("room-1@contoso.com", goid(), None).expect("identity");
        assert_eq!(
            a.key(),
            b.key(),
            "mailbox case and whitespace do not matter"
        );
        let occ = EventIdentity::new("room-1@contoso.com", goid(), Some(at(9))).expect("id");
        assert_ne!(occ.key(), a.key());
        assert_eq!(occ.series_key(), a.key());
        let other_room = EventIdentity::new("room-2@contoso.com", goid(), None).expect("id");
        assert_ne!(other_room.key(), a.key());

        let ews = Event::new(
            a.clone(),
            "default",
            SourceIds {
                backend: "ews".into(),
                item_id: "AAMk=".into(),
                change_key: None,
            },
            "Standup",
            at(9),
            at(10),
        )
        .expect("event");
        let graph = Event::new(
            b,
            "default",
            SourceIds {
                backend: "graph".into(),
                item_id: "AAkAL=".into(),
                change_key: None,
            },
            "Standup",
            at(9),
            at(10),
        )
        .expect("event");
        assert_eq!(ews.key(), graph.key());
        assert_eq!(ews.content_hash(), graph.content_hash());
    }

    #[test]
    fn wire_round_trip_and_tampered_key_is_refused() {
        let id = EventIdentity::new("room@contoso.com", goid(), Some(at(9))).expect("id");
        let mut event = Event::new(
            id,
            "default",
            SourceIds::default(),
            "<b>x</b>",
            at(9),
            at(10),
        )
        .expect("ev");
        event.attendees.push(Attendee {
            person: Person {
                name: Some("Ann".into()),
                email: Some("ann@contoso.com".into()),
            },
            kind: AttendeeKind::Required,
            response: ResponseStatus::Accepted,
        });
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(json["kind"], "occurrence");
        let back: Event = serde_json::from_value(json.clone()).expect("parse");
        assert_eq!(back, event);

        let mut tampered = json.clone();
        tampered["key"] = "ev1-0000".into();
        assert!(serde_json::from_value::<Event>(tampered).is_err());

        let mut newer = json;
        newer["some_future_field"] = 42.into();
        newer["show_as"] = "invented_status".into();
        let parsed: Event = serde_json::from_value(newer).expect("lenient");
        assert_eq!(parsed.show_as, ShowAs::Unknown);
    }

    #[test]
    fn end_before_start_is_refused() {
        let id = EventIdentity::new("room@contoso.com", goid(), None).expect("id");
        assert!(Event::new(id, "default", SourceIds::default(), "x", at(10), at(9)).is_err());
        assert!(EventIdentity::new("not-an-address", goid(), None).is_err());
    }
}
