//! The tenant: directory + lazily generated mailboxes + their change logs and mutations.
//!
//! A mailbox is generated from (seed, index, anchor) the first time it is read or changed.
//! Unchanged mailboxes live in a bounded cache (they can always be regenerated identically);
//! changed ("dirty") mailboxes stay in memory for the life of the simulator.

use super::directory::{Directory, Mailbox, MailboxKind};
use super::generate;
use super::goid::GlobalObjectId;
use super::ids::{self, IdFormat, ItemAddress};
use super::model::*;
use super::rng::{Guid, Rng};
use super::zones;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// How the tenant is shaped.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub seed: u64,
    pub anchor: DateTime<Utc>,
    pub users: u32,
    pub rooms: u32,
    pub equipment: u32,
    pub events_per_room: u32,
    /// How many unchanged mailboxes stay materialised.
    pub cache_mailboxes: usize,
}

/// A calendar folder of a mailbox. Index 0 is the default calendar ("Calendar").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Calendar {
    pub index: u16,
    pub name: String,
    pub parent: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// One entry of a mailbox's change log.
#[derive(Debug, Clone)]
pub struct Change {
    /// Monotonic per mailbox, starting at 1 (0 = the generated state).
    pub seq: u64,
    pub item: u64,
    pub kind: ChangeKind,
    /// The item before the change (`None` for a creation).
    pub before: Option<Box<Item>>,
}

/// One item touched since a sync point, restricted to a calendar scope: how it was at the sync
/// point and how it is now (`None` = absent from the scope then/now).
#[derive(Debug)]
pub struct ItemChange<'a> {
    pub item: u64,
    pub before: Option<&'a Item>,
    pub after: Option<&'a Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncPointError {
    #[error("the sync point is newer than the mailbox's change log")]
    Unknown,
}

#[derive(Debug, Clone)]
pub struct MailboxState {
    pub calendars: Vec<Calendar>,
    pub items: BTreeMap<u64, Item>,
    /// The sequence number of the latest change (0 = as generated).
    pub seq: u64,
    pub log: Vec<Change>,
    pub next_item: u64,
}

impl MailboxState {
    /// "Calendar" or "Calendar/Maintenance".
    pub fn calendar_path(&self, index: u16) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(index);
        while let Some(i) = cur {
            match self.calendars.iter().find(|c| c.index == i) {
                Some(c) => {
                    parts.push(c.name.clone());
                    cur = c.parent;
                }
                None => break,
            }
        }
        parts.reverse();
        parts.join("/")
    }

    /// Finds a calendar by index, name or path (case-insensitive).
    pub fn find_calendar(&self, key: &str) -> Option<u16> {
        let k = key.trim();
        if let Ok(i) = k.parse::<u16>() {
            return self
                .calendars
                .iter()
                .find(|c| c.index == i)
                .map(|c| c.index);
        }
        self.calendars
            .iter()
            .find(|c| {
                c.name.eq_ignore_ascii_case(k)
                    || self.calendar_path(c.index).eq_ignore_ascii_case(k)
            })
            .map(|c| c.index)
    }

    /// Expanded instances in `[from, to)`, of one calendar or all, ordered by start.
    pub fn instances(
        &self,
        calendar: Option<u16>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<Instance<'_>> {
        let mut out: Vec<Instance<'_>> = self
            .items
            .values()
            .filter(|i| calendar.is_none_or(|c| i.calendar == c))
            .flat_map(|i| i.instances(from, to))
            .collect();
        out.sort_by(|a, b| {
            (a.start, a.end, a.item.num, a.original_start).cmp(&(
                b.start,
                b.end,
                b.item.num,
                b.original_start,
            ))
        });
        out
    }

    pub fn find_by_goid(&self, goid: &GlobalObjectId) -> Option<&Item> {
        self.items.values().find(|i| &i.goid == goid)
    }

    /// Items in the calendar scope touched since `since` (a `seq` handed out earlier), with their
    /// state then and now. Fails for a sync point this mailbox never handed out.
    pub fn changes_since(
        &self,
        since: u64,
        calendar: Option<u16>,
    ) -> Result<Vec<ItemChange<'_>>, SyncPointError> {
        if since > self.seq {
            return Err(SyncPointError::Unknown);
        }
        let in_scope = |i: &Item| calendar.is_none_or(|c| i.calendar == c);
        let mut first: BTreeMap<u64, &Change> = BTreeMap::new();
        let start = self.log.partition_point(|c| c.seq <= since);
        for c in &self.log[start..] {
            first.entry(c.item).or_insert(c);
        }
        let mut out = Vec::new();
        for (num, c) in first {
            let before = c.before.as_deref().filter(|i| in_scope(i));
            let after = self.items.get(&num).filter(|i| in_scope(i));
            if before.is_some() || after.is_some() {
                out.push(ItemChange {
                    item: num,
                    before,
                    after,
                });
            }
        }
        Ok(out)
    }

    fn log_change(&mut self, item: u64, kind: ChangeKind, before: Option<Item>) {
        self.seq += 1;
        self.log.push(Change {
            seq: self.seq,
            item,
            kind,
            before: before.map(Box::new),
        });
    }

    fn item_by_goid_mut(&mut self, goid: &GlobalObjectId) -> Result<&mut Item, MutationError> {
        self.items
            .values_mut()
            .find(|i| &i.goid == goid)
            .ok_or(MutationError::NoSuchEvent)
    }
}

/// What went wrong with a change requested through the control API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    #[error("no such mailbox")]
    NoSuchMailbox,
    #[error("no event with that global object id in the mailbox")]
    NoSuchEvent,
    #[error("no such calendar in the mailbox")]
    NoSuchCalendar,
    #[error("the series has no occurrence with that original start")]
    NoSuchOccurrence,
    #[error("the event is not a recurring series")]
    NotRecurring,
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// A new event, as the control API takes it (JSON: snake_case fields).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NewEvent {
    pub subject: String,
    pub body: Option<String>,
    pub location: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub is_all_day: bool,
    /// Windows or IANA name of the organizer's zone; default the mailbox's.
    pub time_zone: Option<String>,
    pub sensitivity: Option<Sensitivity>,
    pub show_as: Option<ShowAs>,
    pub is_cancelled: bool,
    pub organizer: Option<Person>,
    pub attendees: Vec<Attendee>,
    pub online_url: Option<String>,
    /// Make it an online meeting with a generated Teams URL.
    pub online: bool,
    pub categories: Vec<String>,
    pub importance: Option<Importance>,
    pub recurrence: Option<RecurrenceSpec>,
    /// Calendar name, path or index; default the default calendar.
    pub calendar: Option<String>,
    /// An invitation from outside Exchange with this iCalendar UID.
    pub external_uid: Option<String>,
    /// Reuse an existing meeting's clean global object id (the same meeting in another mailbox).
    pub goid: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RecurrenceSpec {
    pub pattern: Pattern,
    pub range: RangeEnd,
}

/// Fields to change; absent = unchanged.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct EventChange {
    pub subject: Option<String>,
    pub body: Option<String>,
    pub location: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub is_all_day: Option<bool>,
    pub time_zone: Option<String>,
    pub sensitivity: Option<Sensitivity>,
    pub show_as: Option<ShowAs>,
    /// Cancelling a meeting also prefixes the subject with "Canceled: " as Exchange does.
    pub is_cancelled: Option<bool>,
    pub organizer: Option<Person>,
    pub attendees: Option<Vec<Attendee>>,
    /// `""` removes the online meeting.
    pub online_url: Option<String>,
    pub categories: Option<Vec<String>>,
    pub importance: Option<Importance>,
}

/// What a create returns: enough to address the event later.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventRef {
    pub mailbox: String,
    pub item: u64,
    /// Clean global object id, upper-case hex.
    pub goid: String,
    pub calendar: String,
}

/// The date an all-day bound names: its local date when the instant is local midnight in
/// `zone` (as Exchange stores it), else its UTC date (a floating `2026-11-28T00:00:00Z`).
fn named_date(zone: chrono_tz::Tz, t: DateTime<Utc>) -> NaiveDate {
    let local = t.with_timezone(&zone);
    if local.time() == chrono::NaiveTime::MIN {
        local.date_naive()
    } else {
        t.date_naive()
    }
}

/// All-day bounds as Exchange stores them: local midnight of `zone` at the first date and after
/// the last (at least one date).
fn all_day_bounds(
    zone: chrono_tz::Tz,
    first: NaiveDate,
    end: NaiveDate,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = if end <= first {
        first + Duration::days(1)
    } else {
        end
    };
    (local_midnight(zone, first), local_midnight(zone, end))
}

fn apply_change(d: &mut EventData, c: &EventChange) -> Result<(), MutationError> {
    let (old_start, old_end, old_tz, was_all_day) = (d.start, d.end, d.zone.tz, d.is_all_day);
    if let Some(v) = &c.subject {
        d.subject = v.clone();
    }
    if let Some(v) = &c.body {
        d.body = v.clone();
    }
    if let Some(v) = &c.location {
        d.location = v.clone();
    }
    match (c.start, c.end) {
        (Some(s), Some(e)) => {
            d.start = s;
            d.end = e;
        }
        (Some(s), None) => {
            let dur = d.end - d.start;
            d.start = s;
            d.end = s + dur;
        }
        (None, Some(e)) => d.end = e,
        (None, None) => {}
    }
    if d.end < d.start {
        return Err(MutationError::Invalid("end before start".into()));
    }
    if let Some(v) = c.is_all_day {
        d.is_all_day = v;
    }
    if let Some(z) = &c.time_zone {
        d.zone = zones::find(z)
            .ok_or_else(|| MutationError::Invalid(format!("unknown time zone {z}")))?;
    }
    if let Some(v) = c.sensitivity {
        d.sensitivity = v;
    }
    if let Some(v) = c.show_as {
        d.show_as = v;
    }
    if let Some(v) = c.is_cancelled {
        if v && !d.is_cancelled && !d.subject.starts_with("Canceled: ") {
            d.subject = format!("Canceled: {}", d.subject);
        }
        d.is_cancelled = v;
    }
    if let Some(v) = &c.organizer {
        d.organizer = v.clone();
    }
    if let Some(v) = &c.attendees {
        d.attendees = v.clone();
    }
    if let Some(v) = &c.online_url {
        d.online_url = if v.is_empty() { None } else { Some(v.clone()) };
    }
    if let Some(v) = &c.categories {
        d.categories = v.clone();
    }
    if let Some(v) = c.importance {
        d.importance = v;
    }
    if d.is_all_day {
        // Keep (or take from the change) the *dates* and store them at local midnight of the
        // event's (possibly new) zone.
        let tz = d.zone.tz;
        let (old_first, old_last) = if was_all_day {
            all_day_dates(old_tz, old_start, old_end)
        } else {
            (named_date(tz, old_start), named_date(tz, old_end))
        };
        let span = (old_last - old_first).num_days().max(1);
        let first = c.start.map(|t| named_date(tz, t)).unwrap_or(old_first);
        let end = match c.end {
            Some(t) => named_date(tz, t),
            None => first + Duration::days(span),
        };
        (d.start, d.end) = all_day_bounds(tz, first, end);
    }
    Ok(())
}

struct Slot {
    state: Arc<Mutex<MailboxState>>,
    dirty: bool,
    last_use: u64,
}

#[derive(Default)]
struct Cache {
    slots: HashMap<u32, Slot>,
    tick: u64,
    clean: usize,
}

/// The simulated tenant. Cheap to share (`Arc<Tenant>`); every method takes `&self`.
pub struct Tenant {
    pub config: TenantConfig,
    pub directory: Directory,
    cache: Mutex<Cache>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tenant {
    pub fn new(config: TenantConfig) -> Tenant {
        let directory =
            Directory::generate(config.seed, config.users, config.rooms, config.equipment);
        Tenant {
            config,
            directory,
            cache: Mutex::new(Cache::default()),
        }
    }

    pub fn anchor(&self) -> DateTime<Utc> {
        self.config.anchor
    }

    /// The populated window `[anchor-1d, anchor+14d]`.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            self.config.anchor - Duration::days(1),
            self.config.anchor + Duration::days(14),
        )
    }

    /// A mailbox by SMTP, UPN or object id.
    pub fn mailbox(&self, key: &str) -> Option<&Mailbox> {
        self.directory.find(key)
    }

    /// How many mailboxes are materialised now (changed, cached).
    pub fn materialised(&self) -> (usize, usize) {
        let c = lock(&self.cache);
        (c.slots.len() - c.clean, c.clean)
    }

    fn slot(&self, index: u32, dirty: bool) -> Option<Arc<Mutex<MailboxState>>> {
        let m = self.directory.get(index)?;
        {
            let mut c = lock(&self.cache);
            c.tick += 1;
            let tick = c.tick;
            let mut became_dirty = false;
            if let Some(s) = c.slots.get_mut(&index) {
                s.last_use = tick;
                if dirty && !s.dirty {
                    s.dirty = true;
                    became_dirty = true;
                }
                let st = s.state.clone();
                if became_dirty {
                    c.clean -= 1;
                }
                return Some(st);
            }
        }
        let state = Arc::new(Mutex::new(generate::mailbox(
            self.config.seed,
            self.config.anchor,
            &self.directory,
            m,
            self.config.events_per_room,
        )));
        let mut c = lock(&self.cache);
        c.tick += 1;
        let tick = c.tick;
        if let Some(s) = c.slots.get_mut(&index) {
            // Somebody else generated it meanwhile.
            s.last_use = tick;
            if dirty && !s.dirty {
                s.dirty = true;
                let st = s.state.clone();
                c.clean -= 1;
                return Some(st);
            }
            return Some(s.state.clone());
        }
        c.slots.insert(
            index,
            Slot {
                state: state.clone(),
                dirty,
                last_use: tick,
            },
        );
        if !dirty {
            c.clean += 1;
        }
        while c.clean > self.config.cache_mailboxes.max(1) {
            let victim = c
                .slots
                .iter()
                .filter(|(_, s)| !s.dirty)
                .min_by_key(|(_, s)| s.last_use)
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    c.slots.remove(&k);
                    c.clean -= 1;
                }
                None => break,
            }
        }
        Some(state)
    }

    /// Runs `f` on a mailbox's state (generating it if needed). `None` for an unknown index.
    pub fn read<R>(&self, mailbox: u32, f: impl FnOnce(&MailboxState) -> R) -> Option<R> {
        let s = self.slot(mailbox, false)?;
        let g = lock(&s);
        Some(f(&g))
    }

    /// Runs `f` on a mailbox's state for changing it; the mailbox then stays in memory.
    pub fn write<R>(&self, mailbox: u32, f: impl FnOnce(&mut MailboxState) -> R) -> Option<R> {
        let s = self.slot(mailbox, true)?;
        let mut g = lock(&s);
        Some(f(&mut g))
    }

    /// The id of an item (or an instance of it) in the given format.
    pub fn item_id(
        &self,
        mailbox: &Mailbox,
        item: &Item,
        occurrence: Option<DateTime<Utc>>,
        format: IdFormat,
    ) -> String {
        ids::encode_item(
            &ItemAddress {
                mailbox_guid: mailbox.exchange_guid,
                calendar: item.calendar,
                item: item.num,
                occurrence,
            },
            format,
        )
    }

    /// The change key of an instance (EWS `ChangeKey`, Graph `changeKey`).
    pub fn change_key(&self, mailbox: &Mailbox, inst: &Instance<'_>) -> String {
        let occ = if inst.kind == InstanceKind::Exception {
            inst.original_start
        } else {
            None
        };
        ids::change_key(mailbox.exchange_guid, inst.item.num, inst.version, occ)
    }

    /// Decodes any item id (EWS, REST, immutable, entry id) to (mailbox index, item number,
    /// occurrence original start). Does not check that the item exists.
    pub fn resolve_item_id(&self, id: &str) -> Option<(u32, u64, Option<DateTime<Utc>>)> {
        let d = ids::decode_item(id)?;
        let m = self.directory.by_exchange_guid(d.address.mailbox_guid)?;
        Some((m.index, d.address.item, d.address.occurrence))
    }

    /// Converts an id between formats (Graph `translateExchangeIds`). `None` if it does not name
    /// an existing item.
    pub fn translate_id(&self, id: &str, target: IdFormat) -> Option<String> {
        let (mb, num, occ) = self.resolve_item_id(id)?;
        let m = self.directory.get(mb)?;
        self.read(mb, |s| {
            s.items.get(&num).map(|it| self.item_id(m, it, occ, target))
        })?
    }

    pub fn folder_id(&self, mailbox: &Mailbox, calendar: u16, rest: bool) -> String {
        ids::encode_folder(mailbox.exchange_guid, calendar, rest)
    }

    /// Decodes a folder id to (mailbox index, calendar index).
    pub fn resolve_folder_id(&self, id: &str) -> Option<(u32, u16)> {
        let (g, c) = ids::decode_folder(id)?;
        Some((self.directory.by_exchange_guid(g)?.index, c))
    }

    fn mailbox_index(&self, mailbox: &str) -> Result<u32, MutationError> {
        self.directory
            .find(mailbox)
            .map(|m| m.index)
            .ok_or(MutationError::NoSuchMailbox)
    }

    fn goid(s: &str) -> Result<GlobalObjectId, MutationError> {
        GlobalObjectId::from_hex(s)
            .ok_or_else(|| MutationError::Invalid(format!("not a global object id: {s}")))
    }

    /// Creates an event (a single meeting or a series).
    pub fn create_event(&self, mailbox: &str, ev: &NewEvent) -> Result<EventRef, MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let m = self
            .directory
            .get(idx)
            .ok_or(MutationError::NoSuchMailbox)?;
        let now = Utc::now();
        let start = ev
            .start
            .ok_or_else(|| MutationError::Invalid("start is required".into()))?;
        let end = ev.end.unwrap_or(start + Duration::minutes(30));
        if end < start {
            return Err(MutationError::Invalid("end before start".into()));
        }
        let zone = match &ev.time_zone {
            Some(z) => zones::find(z)
                .ok_or_else(|| MutationError::Invalid(format!("unknown time zone {z}")))?,
            None => m.zone,
        };
        // All-day events name dates; Exchange stores them at local midnight of the zone.
        let (start, end) = if ev.is_all_day {
            all_day_bounds(
                zone.tz,
                named_date(zone.tz, start),
                named_date(zone.tz, end),
            )
        } else {
            (start, end)
        };
        self.write(idx, |s| {
            let calendar = match &ev.calendar {
                Some(c) => s.find_calendar(c).ok_or(MutationError::NoSuchCalendar)?,
                None => 0,
            };
            let num = s.next_item;
            let mut rng = Rng::derive(self.config.seed, &[0xC0, u64::from(idx), num]);
            let goid = match (&ev.goid, &ev.external_uid) {
                (Some(g), _) => Self::goid(g)?,
                (None, Some(uid)) => GlobalObjectId::external(uid),
                (None, None) => GlobalObjectId::exchange_born(now, Guid::from_rng(&mut rng).0),
            };
            let organizer = ev.organizer.clone().unwrap_or_else(|| {
                let p = self
                    .directory
                    .people
                    .first()
                    .and_then(|i| self.directory.get(*i))
                    .unwrap_or(m);
                Person {
                    name: p.display_name.clone(),
                    address: p.smtp.clone(),
                }
            });
            let mut attendees = ev.attendees.clone();
            if m.kind != MailboxKind::User && !attendees.iter().any(|a| a.person.address == m.smtp)
            {
                attendees.push(Attendee {
                    person: Person {
                        name: m.display_name.clone(),
                        address: m.smtp.clone(),
                    },
                    kind: AttendeeType::Resource,
                    response: "accepted".into(),
                });
            }
            let online_url = match (&ev.online_url, ev.online) {
                (Some(u), _) => Some(u.clone()),
                (None, true) => Some(generate::teams_url(&mut rng)),
                (None, false) => None,
            };
            let mut subject = ev.subject.clone();
            if ev.is_cancelled && !subject.starts_with("Canceled: ") {
                subject = format!("Canceled: {subject}");
            }
            let series = ev.recurrence.as_ref().map(|r| Series {
                pattern: r.pattern.clone(),
                start_date: start.with_timezone(&zone.tz).date_naive(),
                end: r.range.clone(),
                exceptions: BTreeMap::new(),
                deleted: BTreeSet::new(),
            });
            let item = Item {
                num,
                calendar,
                goid: goid.clone(),
                version: 1,
                created: now,
                last_modified: now,
                is_organizer: organizer.address == m.smtp,
                data: EventData {
                    subject,
                    body: ev.body.clone().unwrap_or_default(),
                    location: ev.location.clone().unwrap_or_else(|| {
                        if m.kind == MailboxKind::User {
                            String::new()
                        } else {
                            m.display_name.clone()
                        }
                    }),
                    start,
                    end,
                    is_all_day: ev.is_all_day,
                    zone,
                    sensitivity: ev.sensitivity.unwrap_or_default(),
                    show_as: ev.show_as.unwrap_or(if ev.is_cancelled {
                        ShowAs::Free
                    } else {
                        ShowAs::Busy
                    }),
                    is_cancelled: ev.is_cancelled,
                    organizer,
                    attendees,
                    online_url,
                    categories: ev.categories.clone(),
                    importance: ev.importance.unwrap_or_default(),
                },
                series,
            };
            s.next_item += 1;
            s.items.insert(num, item);
            s.log_change(num, ChangeKind::Created, None);
            Ok(EventRef {
                mailbox: m.smtp.clone(),
                item: num,
                goid: goid.hex(),
                calendar: s.calendar_path(calendar),
            })
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// Changes an event, or one occurrence of a series (which then becomes an exception).
    pub fn change_event(
        &self,
        mailbox: &str,
        goid: &str,
        occurrence: Option<DateTime<Utc>>,
        change: &EventChange,
    ) -> Result<(), MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let goid = Self::goid(goid)?;
        let now = Utc::now();
        self.write(idx, |s| {
            let item = s.item_by_goid_mut(&goid)?;
            let before = item.clone();
            match occurrence {
                None => {
                    let start_before = item.data.start;
                    apply_change(&mut item.data, change)?;
                    if let Some(series) = item.series.as_mut()
                        && item.data.start != start_before
                    {
                        series.start_date = item
                            .data
                            .start
                            .with_timezone(&item.data.zone.tz)
                            .date_naive();
                    }
                }
                Some(orig) => {
                    if item.series.is_none() {
                        return Err(MutationError::NotRecurring);
                    }
                    if !item.has_occurrence(orig) {
                        return Err(MutationError::NoSuchOccurrence);
                    }
                    let end0 = item.occurrence_end(orig);
                    let base = item.data.clone();
                    let series = item.series.as_mut().ok_or(MutationError::NotRecurring)?;
                    if series.deleted.contains(&orig) {
                        return Err(MutationError::NoSuchOccurrence);
                    }
                    let ex = series.exceptions.entry(orig).or_insert_with(|| {
                        let mut d = base;
                        d.start = orig;
                        d.end = end0;
                        Exception {
                            data: d,
                            version: 1,
                            last_modified: now,
                        }
                    });
                    apply_change(&mut ex.data, change)?;
                    ex.version += 1;
                    ex.last_modified = now;
                }
            }
            item.version += 1;
            item.last_modified = now;
            let num = item.num;
            s.log_change(num, ChangeKind::Updated, Some(before));
            Ok(())
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// Deletes one occurrence of a series (as cancelling one occurrence of a meeting does).
    pub fn cancel_occurrence(
        &self,
        mailbox: &str,
        goid: &str,
        original_start: DateTime<Utc>,
    ) -> Result<(), MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let goid = Self::goid(goid)?;
        let now = Utc::now();
        self.write(idx, |s| {
            let item = s.item_by_goid_mut(&goid)?;
            if item.series.is_none() {
                return Err(MutationError::NotRecurring);
            }
            if !item.has_occurrence(original_start) {
                return Err(MutationError::NoSuchOccurrence);
            }
            let before = item.clone();
            let series = item.series.as_mut().ok_or(MutationError::NotRecurring)?;
            if !series.deleted.insert(original_start) {
                return Err(MutationError::NoSuchOccurrence);
            }
            series.exceptions.remove(&original_start);
            item.version += 1;
            item.last_modified = now;
            let num = item.num;
            s.log_change(num, ChangeKind::Updated, Some(before));
            Ok(())
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// Moves an event to another calendar of the same mailbox. Its regular ids change (they
    /// encode the folder), its immutable id does not.
    pub fn move_event(
        &self,
        mailbox: &str,
        goid: &str,
        to_calendar: &str,
    ) -> Result<(), MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let goid = Self::goid(goid)?;
        let now = Utc::now();
        self.write(idx, |s| {
            let to = s
                .find_calendar(to_calendar)
                .ok_or(MutationError::NoSuchCalendar)?;
            let item = s.item_by_goid_mut(&goid)?;
            if item.calendar == to {
                return Ok(());
            }
            let before = item.clone();
            item.calendar = to;
            item.version += 1;
            item.last_modified = now;
            let num = item.num;
            s.log_change(num, ChangeKind::Updated, Some(before));
            Ok(())
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// Deletes an event (a whole series, for a series).
    pub fn delete_event(&self, mailbox: &str, goid: &str) -> Result<(), MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let goid = Self::goid(goid)?;
        self.write(idx, |s| {
            let num = s
                .items
                .values()
                .find(|i| i.goid == goid)
                .map(|i| i.num)
                .ok_or(MutationError::NoSuchEvent)?;
            let before = s.items.remove(&num);
            s.log_change(num, ChangeKind::Deleted, before);
            Ok(())
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// Records an unchanged event as changed (a change-log entry, content, version and change
    /// key as they were), so change-based reads (Graph delta rounds, EWS `SyncFolderItems`) look
    /// at it again — what [`Control::hide_event`](crate::control::Control::hide_event) needs when
    /// an event appears or disappears for one protocol. Returns (mailbox index, item number).
    pub fn touch_event(&self, mailbox: &str, goid: &str) -> Result<(u32, u64), MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let goid = Self::goid(goid)?;
        self.write(idx, |s| {
            let item = s
                .items
                .values()
                .find(|i| i.goid == goid)
                .cloned()
                .ok_or(MutationError::NoSuchEvent)?;
            let num = item.num;
            s.log_change(num, ChangeKind::Updated, Some(item));
            Ok((idx, num))
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// Adds a calendar folder (under `parent`, default the default calendar).
    pub fn create_calendar(
        &self,
        mailbox: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<u16, MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        self.write(idx, |s| {
            let parent = match parent {
                Some(p) => Some(s.find_calendar(p).ok_or(MutationError::NoSuchCalendar)?),
                None => Some(0),
            };
            let index = s.calendars.iter().map(|c| c.index).max().unwrap_or(0) + 1;
            s.calendars.push(Calendar {
                index,
                name: name.to_string(),
                parent,
            });
            Ok(index)
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }

    /// The ground truth of a mailbox's calendar in `[from, to)`: `None` is the default calendar
    /// ("Calendar", what `/users/{id}/calendarView` and EWS `calendar` show), `Some(name or
    /// path)` one calendar, `Some(ALL_CALENDARS)` every calendar of the mailbox.
    pub fn truth(
        &self,
        mailbox: &str,
        calendar: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TruthInstance>, MutationError> {
        let idx = self.mailbox_index(mailbox)?;
        let m = self
            .directory
            .get(idx)
            .ok_or(MutationError::NoSuchMailbox)?;
        self.read(idx, |s| {
            let cal = match calendar {
                None => Some(0),
                Some(c) if c.trim() == ALL_CALENDARS => None,
                Some(c) => Some(s.find_calendar(c).ok_or(MutationError::NoSuchCalendar)?),
            };
            Ok(s.instances(cal, from, to)
                .iter()
                .map(|i| TruthInstance {
                    mailbox: m.smtp.clone(),
                    calendar: s.calendar_path(i.item.calendar),
                    goid: i.item.goid.hex(),
                    ical_uid: i.item.goid.ical_uid(),
                    ews_uid: i.item.goid.ews_uid(),
                    kind: i.kind,
                    original_start: i.original_start,
                    subject: i.data.subject.clone(),
                    start: i.start,
                    end: i.end,
                    is_all_day: i.data.is_all_day,
                    all_day_dates: i.data.is_all_day.then(|| {
                        let (start, end) = all_day_dates(i.data.zone.tz, i.start, i.end);
                        AllDayDates { start, end }
                    }),
                    time_zone: i.data.zone.windows.to_string(),
                    time_zone_iana: i.data.zone.iana.to_string(),
                    sensitivity: i.data.sensitivity,
                    show_as: i.data.show_as,
                    is_cancelled: i.data.is_cancelled,
                    organizer: i.data.organizer.clone(),
                    attendees: i.data.attendees.clone(),
                    location: i.data.location.clone(),
                    online_url: i.data.online_url.clone(),
                    categories: i.data.categories.clone(),
                    graph_id: self.item_id(m, i.item, i.original_start, IdFormat::Rest),
                    graph_immutable_id: self.item_id(
                        m,
                        i.item,
                        i.original_start,
                        IdFormat::RestImmutable,
                    ),
                    ews_id: self.item_id(m, i.item, i.original_start, IdFormat::Ews),
                    change_key: self.change_key(m, i),
                })
                .collect())
        })
        .ok_or(MutationError::NoSuchMailbox)?
    }
}

/// `truth(mailbox, Some(ALL_CALENDARS), …)` (HTTP `calendar=*`): every calendar of the mailbox.
pub const ALL_CALENDARS: &str = "*";

/// One expanded instance as `/_sim/truth` reports it. Times are UTC.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TruthInstance {
    pub mailbox: String,
    /// Calendar path, "Calendar" or "Calendar/Maintenance".
    pub calendar: String,
    /// Clean global object id, upper-case hex.
    pub goid: String,
    pub ical_uid: String,
    pub ews_uid: String,
    pub kind: InstanceKind,
    pub original_start: Option<DateTime<Utc>>,
    pub subject: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_all_day: bool,
    /// For all-day instances, the local dates they cover in their zone (`end` exclusive:
    /// `{start: "2026-11-28", end: "2026-11-29"}` for one day), whatever instant `start`/`end`
    /// hold (local midnight of the zone: `2026-11-27T23:00:00Z` in Berlin). calpump's model writes
    /// all-day events as these dates at 00:00 UTC. Absent for timed instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_day_dates: Option<AllDayDates>,
    pub time_zone: String,
    pub time_zone_iana: String,
    pub sensitivity: Sensitivity,
    pub show_as: ShowAs,
    pub is_cancelled: bool,
    pub organizer: Person,
    pub attendees: Vec<Attendee>,
    pub location: String,
    pub online_url: Option<String>,
    pub categories: Vec<String>,
    pub graph_id: String,
    pub graph_immutable_id: String,
    pub ews_id: String,
    pub change_key: String,
}

/// The dates an all-day instance covers, `[start, end)`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct AllDayDates {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// The date an occurrence is stored under in PidLidGlobalObjectId (UTC date of the original start).
pub fn instance_date(original_start: Option<DateTime<Utc>>) -> Option<NaiveDate> {
    original_start.map(|t| t.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(rooms: u32, events: u32) -> Tenant {
        Tenant::new(TenantConfig {
            seed: 7,
            anchor: "2025-03-10T00:00:00Z".parse().unwrap_or_default(),
            users: 12,
            rooms,
            equipment: 2,
            events_per_room: events,
            cache_mailboxes: 4,
        })
    }

    #[test]
    fn generation_is_deterministic_and_covers_every_shape() {
        let a = tenant(3, 32);
        let b = tenant(3, 32);
        let (from, to) = a.window();
        let ta = a
            .truth("room-1.01@contoso.com", None, from, to)
            .unwrap_or_default();
        let tb = b
            .truth("room-1.01@contoso.com", None, from, to)
            .unwrap_or_default();
        assert_eq!(ta, tb);
        assert!(ta.len() >= 32, "{} instances", ta.len());
        let has = |f: &dyn Fn(&TruthInstance) -> bool| ta.iter().any(f);
        assert!(has(&|i| i.kind == InstanceKind::Occurrence));
        assert!(has(
            &|i| i.kind == InstanceKind::Exception && i.subject.ends_with("(moved)")
        ));
        assert!(has(&|i| i.is_all_day));
        // All-day events: local midnight of their zone, both busy and free ones, with their
        // local dates.
        assert!(has(&|i| i.is_all_day && i.show_as == ShowAs::Busy));
        assert!(has(&|i| i.is_all_day && i.show_as == ShowAs::Free));
        for i in ta.iter().filter(|i| i.is_all_day) {
            let tz = zones::find(&i.time_zone)
                .map(|z| z.tz)
                .unwrap_or(chrono_tz::UTC);
            let (s, e) = (i.start.with_timezone(&tz), i.end.with_timezone(&tz));
            assert_eq!(s.time(), chrono::NaiveTime::MIN, "{i:?}");
            assert_eq!(e.time(), chrono::NaiveTime::MIN, "{i:?}");
            assert_eq!(
                i.all_day_dates,
                Some(AllDayDates {
                    start: s.date_naive(),
                    end: e.date_naive()
                })
            );
        }
        assert!(ta.iter().all(|i| i.is_all_day == i.all_day_dates.is_some()));
        assert!(has(&|i| i.sensitivity == Sensitivity::Private));
        assert!(has(&|i| i.sensitivity == Sensitivity::Confidential));
        assert!(has(
            &|i| i.is_cancelled && i.subject.starts_with("Canceled: ")
        ));
        assert!(has(&|i| i.online_url.as_deref().is_some_and(
            |u| u.starts_with("https://teams.microsoft.com/l/meetup-join/")
        )));
        assert!(has(&|i| i.subject.contains("<img src=x onerror=alert(1)>")
            || i.subject.contains("<script>")));
        assert!(has(&|i| !i.subject.is_ascii()));
        assert!(has(&|i| i.subject.len() > 255));
        assert!(has(&|i| i.ews_uid != i.ical_uid
            && i.ical_uid.starts_with("040000008200E00074C5B7101A82E008")));
        assert!(has(&|i| i.ews_uid == i.ical_uid));
        assert!(has(&|i| i.time_zone != "W. Europe Standard Time"));
        // Every instance lies in the window, and deleted occurrences are absent.
        assert!(ta.iter().all(|i| i.end > from && i.start < to));
        // The first room of a floor has a sub-calendar.
        let sub_room = "room-1.01@contoso.com";
        let t = a
            .truth(sub_room, Some("Calendar/Maintenance"), from, to)
            .unwrap_or_default();
        assert!(
            !t.is_empty(),
            "{sub_room} has a Maintenance calendar with events"
        );
    }

    #[test]
    fn mutations_are_logged_and_reflected_in_truth() {
        let t = tenant(2, 16);
        let (from, to) = t.window();
        let room = "room-1.02@contoso.com";
        let idx = t.mailbox(room).map(|m| m.index).unwrap_or(0);
        let before = t.truth(room, None, from, to).unwrap_or_default();
        let series = before
            .iter()
            .find(|i| i.kind == InstanceKind::Occurrence)
            .cloned();
        let Some(series) = series else {
            panic!("a series occurrence in the window")
        };
        let single = before
            .iter()
            .find(|i| i.kind == InstanceKind::SingleInstance)
            .cloned();
        let Some(single) = single else {
            panic!("a single instance")
        };
        // Create.
        let start = t.anchor() + Duration::hours(30);
        let r = t
            .create_event(
                room,
                &NewEvent {
                    subject: "Added".into(),
                    start: Some(start),
                    end: Some(start + Duration::hours(1)),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // Change one occurrence, cancel another, move the single, delete the new one later.
        let orig = series.original_start.unwrap_or(series.start);
        t.change_event(
            room,
            &series.goid,
            Some(orig),
            &EventChange {
                subject: Some("Exception!".into()),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let others: Vec<_> = before
            .iter()
            .filter(|i| {
                i.goid == series.goid
                    && i.kind == InstanceKind::Occurrence
                    && i.original_start != series.original_start
            })
            .collect();
        let cancelled = others
            .first()
            .and_then(|i| i.original_start)
            .unwrap_or(orig);
        t.cancel_occurrence(room, &series.goid, cancelled)
            .unwrap_or_else(|e| panic!("{e}"));
        t.create_calendar(room, "Side", None)
            .unwrap_or_else(|e| panic!("{e}"));
        t.move_event(room, &single.goid, "Side")
            .unwrap_or_else(|e| panic!("{e}"));
        let after = t
            .truth(room, Some(ALL_CALENDARS), from, to)
            .unwrap_or_default();
        assert!(
            after
                .iter()
                .any(|i| i.goid == r.goid && i.subject == "Added")
        );
        assert!(after.iter().any(|i| i.goid == series.goid
            && i.subject == "Exception!"
            && i.kind == InstanceKind::Exception
            && i.original_start == Some(orig)));
        assert!(
            !after
                .iter()
                .any(|i| i.goid == series.goid && i.original_start == Some(cancelled))
        );
        let moved = after.iter().find(|i| i.goid == single.goid).cloned();
        assert_eq!(
            moved.as_ref().map(|m| m.calendar.as_str()),
            Some("Calendar/Side")
        );
        assert_ne!(moved.as_ref().map(|m| &m.graph_id), Some(&single.graph_id));
        assert_eq!(
            moved.as_ref().map(|m| &m.graph_immutable_id),
            Some(&single.graph_immutable_id)
        );
        // Change log: 4 changes; changes since 0 in the default calendar see the moved item as gone.
        let n = t.read(idx, |s| {
            assert_eq!(s.seq, 4);
            let ch = s.changes_since(0, Some(0)).unwrap_or_default();
            assert!(ch.iter().any(|c| c.before.is_some() && c.after.is_none()));
            assert_eq!(
                s.changes_since(5, None).err(),
                Some(SyncPointError::Unknown)
            );
            ch.len()
        });
        assert_eq!(n, Some(3));
        t.delete_event(room, &r.goid)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !t.truth(room, None, from, to)
                .unwrap_or_default()
                .iter()
                .any(|i| i.goid == r.goid)
        );
        assert_eq!(
            t.delete_event(room, &r.goid),
            Err(MutationError::NoSuchEvent)
        );
        // Changed mailboxes survive cache eviction; ids stay stable.
        for m in t.directory.mailboxes.clone() {
            let _ = t.read(m.index, |s| s.items.len());
        }
        assert_eq!(t.read(idx, |s| s.seq), Some(5));
        let id = after
            .first()
            .map(|i| i.graph_id.clone())
            .unwrap_or_default();
        assert_eq!(t.resolve_item_id(&id).map(|x| x.0), Some(idx));
    }
}
