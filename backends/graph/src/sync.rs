//! Syncing a chunk of calendars: full reads through `calendarView`, incremental rounds through
//! `calendarView/delta`, everything batched.
//!
//! Per calendar, by its cursor ([`crate::cursor`]):
//! - **no cursor** (first run, `--full`, unreadable cursor, 410): `calendarView` of the window with
//!   `$select` and the clean global object id `$expand`ed → one snapshot. The cursor keeps the
//!   keys and global object ids, but no delta link yet.
//! - **cursor without link, or the route's window moved**: a new delta round (`calendarView/delta`
//!   of the window, no token). It lists the whole window, so it is delivered as a snapshot; its
//!   entries are keyed from the cursor's global object ids (delta cannot `$expand` them), and
//!   only unknown ones cost a request.
//! - **cursor with link**: the stored `@odata.deltaLink` → a delta (upserts and removals).
//!
//! Why a full read is `calendarView` and not a delta round: calendarView returns each instance
//! with its global object id in one request per room (20 rooms per `$batch`); an initial delta
//! round returns the same instances without it, and keying them would cost a request per
//! meeting. The delta round that follows on the next sync is the same single request per room.
//!
//! Completing delta entries (delta cannot `$select`/`$expand`): single instances and exceptions
//! come with every field but the global object id; occurrences with only `id`, `type`,
//! `seriesMasterId`, `start` and `end`. The global object id comes from the cursor, else from one
//! `GET events/{id}` of the single instance or the series master (with `$select` and the
//! extended property); an occurrence takes its fields from its series master — from the same
//! round (delta sends a changed master in full), else from that GET. One request per changed
//! *series* rather than one per occurrence (`events/{master}/instances`), because the master
//! carries all an unmodified occurrence has; exceptions carry their own fields.
//!
//! Removals: `@removed` ids become removals by key only for instances the cursor knows (so
//! removals of events outside the window are dropped); an upsert whose event now lies outside
//! the window (e.g. an all-day event moved to the date after it: Graph still lists it, its
//! instants touching the window) removes the instance the cursor knows; an id that reappears as an upsert in
//! this round, or in another calendar of the same mailbox in this chunk (a move between
//! calendars: immutable ids survive moves), is no removal; a removed series master that a
//! `GET` confirms as gone removes its known instances.
//!
//! Replays are idempotent: the cursor advances only when the engine commits it, and a round
//! replayed from an older link yields the same upserts and removals by key.

use std::collections::{HashMap, HashSet};

use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::{general, graph};
use calpump_engine::source::{
    CalendarInfo, Cursor, Removal, SourceBatch, SourceError, SyncEnd, SyncOutput, SyncRequest,
};
use calpump_plugin::{Event, EventKey};
use serde_json::Value;

use crate::client::{GraphClient, SubRequest, malformed};
use crate::cursor::{CursorState, id_hash};
use crate::error;
use crate::mapping::{self, Context};
use crate::model::{EXPAND_CLEAN_GOID, EventType, GraphEvent, Page};

/// How a calendar is read this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// calendarView → snapshot.
    View,
    /// A new delta round → snapshot.
    Round,
    /// The stored delta link → delta.
    Continue,
}

/// One calendar of the chunk.
struct Item {
    index: usize,
    req: SyncRequest,
    mode: Mode,
    /// The previous cursor's content (the goid cache and known instances).
    state: CursorState,
    next: Option<String>,
    pages: usize,
    /// Entries that are not `@removed`, by id (a later page wins).
    entries: Vec<GraphEvent>,
    positions: HashMap<String, usize>,
    removed: Vec<String>,
    new_link: Option<String>,
    /// `GET events/{id}` answers, by id.
    fetched: HashMap<String, GraphEvent>,
    /// Ids a `GET` answered with 404.
    gone: HashSet<String>,
    error: Option<SourceError>,
}

impl Item {
    fn what(&self) -> String {
        format!(
            "calendar {} of {}",
            self.req.calendar.path, self.req.mailbox.address
        )
    }

    fn mailbox(&self) -> &str {
        &self.req.mailbox.address
    }

    fn add(&mut self, entry: GraphEvent) {
        let Some(id) = entry.id.clone() else { return };
        if entry.is_removed() {
            self.removed.push(id);
            return;
        }
        match self.positions.get(&id) {
            Some(&at) => self.entries[at] = entry,
            None => {
                self.positions.insert(id, self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    fn reset_to_view(&mut self) {
        self.mode = Mode::View;
        self.state = CursorState::new();
        self.entries.clear();
        self.positions.clear();
        self.removed.clear();
        self.new_link = None;
        self.pages = 0;
        self.next = Some(view_url(&self.req));
    }
}

fn calendar_segments<'a>(mailbox: &'a str, calendar: &'a CalendarInfo) -> Vec<&'a str> {
    if calendar.id.is_empty() {
        vec!["users", mailbox, "calendar"]
    } else {
        vec!["users", mailbox, "calendars", calendar.id.as_str()]
    }
}

fn window_query(req: &SyncRequest) -> (String, String) {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (fmt(req.window.start), fmt(req.window.end))
}

/// `calendarView` of the window with `$select` and the clean global object id.
fn view_url(req: &SyncRequest) -> String {
    let mut segments = calendar_segments(&req.mailbox.address, &req.calendar);
    segments.push("calendarView");
    let (start, end) = window_query(req);
    GraphClient::relative(
        &segments,
        &[
            ("startDateTime", &start),
            ("endDateTime", &end),
            ("$select", mapping::SELECT),
            ("$expand", EXPAND_CLEAN_GOID),
        ],
    )
}

/// The first request of a new delta round (no `$select`/`$expand`: delta refuses them).
fn delta_url(req: &SyncRequest) -> String {
    let mut segments = calendar_segments(&req.mailbox.address, &req.calendar);
    segments.push("calendarView");
    segments.push("delta");
    let (start, end) = window_query(req);
    GraphClient::relative(
        &segments,
        &[("startDateTime", &start), ("endDateTime", &end)],
    )
}

/// `GET events/{id}` with what the mapping needs.
fn event_url(mailbox: &str, id: &str) -> String {
    GraphClient::relative(
        &["users", mailbox, "events", id],
        &[("$select", mapping::SELECT), ("$expand", EXPAND_CLEAN_GOID)],
    )
}

fn plan(client: &GraphClient, index: usize, req: SyncRequest) -> Item {
    let mut item = Item {
        index,
        mode: Mode::View,
        state: CursorState::new(),
        next: None,
        pages: 0,
        entries: Vec::new(),
        positions: HashMap::new(),
        removed: Vec::new(),
        new_link: None,
        fetched: HashMap::new(),
        gone: HashSet::new(),
        error: None,
        req,
    };
    let stored = item
        .req
        .cursor
        .as_ref()
        .map(|c| (CursorState::parse(&c.value), c.window));
    match stored {
        None => item.next = Some(view_url(&item.req)),
        Some((None, _)) => {
            tracing::warn!(mailbox = %item.mailbox(), calendar = %item.req.calendar.path, code = general::CURSOR_RESET.code, "the stored cursor is not a Graph cursor of this version; reading the calendar in full");
            item.next = Some(view_url(&item.req));
        }
        Some((Some(state), window)) => {
            let link = state.link.as_deref().and_then(|l| client.relative_link(l));
            item.state = state;
            if window != item.req.window {
                tracing::debug!(mailbox = %item.mailbox(), calendar = %item.req.calendar.path, "the window moved; starting a new delta round");
                item.mode = Mode::Round;
                item.next = Some(delta_url(&item.req));
            } else if let Some(link) = link {
                item.mode = Mode::Continue;
                item.next = Some(link);
            } else {
                item.mode = Mode::Round;
                item.next = Some(delta_url(&item.req));
            }
        }
    }
    item
}

/// Syncs a chunk of calendars; writes a batch (when there is something to deliver) and a
/// `Done` per calendar.
pub async fn sync_chunk(client: &GraphClient, work: Vec<SyncRequest>, out: SyncOutput) {
    let mut items: Vec<Item> = work
        .into_iter()
        .enumerate()
        .map(|(i, req)| plan(client, i, req))
        .collect();
    fetch_pages(client, &mut items).await;
    complete(client, &mut items).await;
    // Ids upserted anywhere in the chunk, per mailbox: a removal of one of them in another
    // calendar is a move, not a deletion.
    let mut upserted: HashMap<String, HashSet<String>> = HashMap::new();
    for item in &items {
        if item.error.is_none() {
            let ids = upserted.entry(item.mailbox().to_string()).or_default();
            ids.extend(item.entries.iter().filter_map(|e| e.id.clone()));
        }
    }
    for item in items {
        let index = item.index;
        let result = finish(item, &upserted);
        let sent = match result {
            Ok((batch, end)) => {
                if let Some(batch) = batch
                    && out.batch(index, batch).await.is_err()
                {
                    return;
                }
                out.done(index, Ok(end)).await
            }
            Err(e) => out.done(index, Err(e)).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Phase 1: every page of every calendar, batched.
async fn fetch_pages(client: &GraphClient, items: &mut [Item]) {
    loop {
        let active: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.next.is_some() && it.error.is_none())
            .map(|(i, _)| i)
            .collect();
        if active.is_empty() {
            return;
        }
        let requests: Vec<SubRequest> = active
            .iter()
            .map(|&i| {
                let it = &items[i];
                SubRequest {
                    op: if it.mode == Mode::View {
                        "calendarView"
                    } else {
                        "calendarView.delta"
                    },
                    mailbox: Some(it.mailbox().to_string()),
                    url: it.next.clone().unwrap_or_default(),
                    page: true,
                    what: it.what(),
                }
            })
            .collect();
        let results = client.batch(&requests).await;
        for (&i, result) in active.iter().zip(results) {
            let it = &mut items[i];
            it.pages += 1;
            match result {
                Ok(body) => read_page(client, it, body),
                Err(e) if it.mode != Mode::View && error::is_sync_state_gone(&e) => {
                    tracing::warn!(
                        mailbox = %it.mailbox(),
                        calendar = %it.req.calendar.path,
                        code = general::CURSOR_RESET.code,
                        cause = graph::SYNC_STATE_NOT_FOUND.code,
                        detail = %e.diagnostic.detail(),
                        "the delta token is no longer valid; dropping it and reading the window in full"
                    );
                    it.reset_to_view();
                }
                Err(e) => {
                    it.error = Some(e);
                    it.next = None;
                }
            }
        }
    }
}

fn read_page(client: &GraphClient, it: &mut Item, body: Value) {
    let what = it.what();
    let page = match Page::from_value(body) {
        Ok(page) => page,
        Err(e) => {
            it.error = Some(malformed(&what, &e));
            it.next = None;
            return;
        }
    };
    let (entries, skipped) = page.items::<GraphEvent>();
    if skipped > 0 {
        tracing::warn!(calendar = %what, skipped, "entries that are not events were skipped");
    }
    for entry in entries {
        it.add(entry);
    }
    let link_of = |link: &str| client.relative_link(link);
    match (page.next_link, page.delta_link, it.mode) {
        (Some(next), _, _) => match link_of(&next) {
            Some(rel) if it.pages < 10_000 => it.next = Some(rel),
            Some(_) => {
                it.error = Some(malformed(&what, "the listing never ends (too many pages)"));
                it.next = None;
            }
            None => {
                it.error = Some(SourceError::new(Diagnostic::new(
                    &graph::OTHER,
                    format!(
                        "{what}: the next page is outside the configured graph_url; calpump does not send its token there"
                    ),
                )));
                it.next = None;
            }
        },
        (None, _, Mode::View) => it.next = None,
        (None, Some(delta), _) => {
            it.new_link = Some(delta);
            it.next = None;
        }
        (None, None, _) => {
            it.error = Some(malformed(
                &what,
                "a delta page with neither @odata.nextLink nor @odata.deltaLink",
            ));
            it.next = None;
        }
    }
}

/// The id whose global object id an entry uses: its own (single instance, series master) or
/// its series master's.
fn goid_owner(e: &GraphEvent) -> Option<&str> {
    match e.event_type() {
        EventType::SingleInstance | EventType::SeriesMaster => e.id.as_deref(),
        EventType::Occurrence | EventType::Exception => e.series_master_id.as_deref(),
        EventType::Unknown => None,
    }
}

/// Phase 2: the `GET events/{id}` a delta round needs, for every calendar at once.
async fn complete(client: &GraphClient, items: &mut [Item]) {
    let mut requests: Vec<SubRequest> = Vec::new();
    let mut owners: Vec<(usize, String)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if it.mode == Mode::View || it.error.is_some() {
            continue;
        }
        let mut needed: Vec<String> = Vec::new();
        let mut want = |id: &str| {
            if !needed.iter().any(|n| n == id) {
                needed.push(id.to_string());
            }
        };
        let masters_here: HashSet<&str> = it
            .entries
            .iter()
            .filter(|e| e.event_type() == EventType::SeriesMaster)
            .filter_map(|e| e.id.as_deref())
            .collect();
        for e in &it.entries {
            let Some(owner) = goid_owner(e) else { continue };
            let known = it.state.goid(owner).is_some();
            match e.event_type() {
                EventType::SingleInstance if !known => want(owner),
                EventType::Exception => {
                    if !known {
                        want(owner);
                    }
                    if e.original_start.is_none()
                        && let Some(id) = e.id.as_deref()
                    {
                        want(id);
                    }
                }
                EventType::Occurrence if !known || !masters_here.contains(owner) => want(owner),
                _ => {}
            }
        }
        // A removed series master: confirm it is gone before removing its instances.
        let upserted: HashSet<&str> = it.entries.iter().filter_map(|e| e.id.as_deref()).collect();
        for id in &it.removed {
            if it.mode == Mode::Continue
                && !upserted.contains(id.as_str())
                && it.state.is_known_master(id)
            {
                want(id);
            }
        }
        for id in needed {
            requests.push(SubRequest {
                op: "event",
                mailbox: Some(it.mailbox().to_string()),
                url: event_url(it.mailbox(), &id),
                page: false,
                what: format!("event {id} of {}", it.mailbox()),
            });
            owners.push((i, id));
        }
    }
    if requests.is_empty() {
        return;
    }
    let results = client.batch(&requests).await;
    for ((i, id), result) in owners.into_iter().zip(results) {
        let it = &mut items[i];
        if it.error.is_some() {
            continue;
        }
        match result {
            Ok(body) => match serde_json::from_value::<GraphEvent>(body) {
                Ok(event) => {
                    it.fetched.insert(id, event);
                }
                Err(e) => it.error = Some(malformed(&it.what(), &e.to_string())),
            },
            Err(e) if e.code() == graph::NOT_FOUND.code => {
                it.gone.insert(id);
            }
            Err(e) => it.error = Some(e),
        }
    }
}

/// The global object id of `owner`: from a `GET` of this sync, else from the cursor.
fn goid_of<'a>(it: &'a Item, owner: &str) -> Option<&'a str> {
    it.fetched
        .get(owner)
        .and_then(GraphEvent::goid_base64)
        .or_else(|| it.state.goid(owner))
}

/// Counts and logs an entry that cannot become an event.
fn skipped(it: &Item, entry: &GraphEvent, why: &mapping::Skip) {
    tracing::warn!(
        mailbox = %it.mailbox(),
        calendar = %it.req.calendar.path,
        id = entry.id.as_deref().unwrap_or("?"),
        reason = %why,
        "an item was skipped"
    );
}

/// The events of an item's entries (snapshot rounds, deltas), with the goids they used.
fn build_events(it: &Item, stats: &mut Built) {
    let cx = Context {
        mailbox: it.mailbox(),
        calendar: &it.req.calendar.path,
    };
    let mut masters: HashMap<&str, &GraphEvent> = HashMap::new();
    for e in &it.entries {
        if e.event_type() == EventType::SeriesMaster
            && let Some(id) = e.id.as_deref()
        {
            masters.insert(id, e);
        }
    }
    for (id, e) in &it.fetched {
        if e.event_type() == EventType::SeriesMaster {
            masters.insert(id.as_str(), e);
        }
    }
    for e in &it.entries {
        let kind = e.event_type();
        if matches!(kind, EventType::SeriesMaster | EventType::Unknown) {
            continue;
        }
        let Some(owner) = goid_owner(e) else {
            skipped(it, e, &mapping::Skip::NoGlobalObjectId);
            stats.skipped += 1;
            continue;
        };
        if it.gone.contains(owner) || e.id.as_deref().is_some_and(|id| it.gone.contains(id)) {
            // Deleted while this round ran; the next round reports it.
            continue;
        }
        let Some(goid) = goid_of(it, owner) else {
            skipped(it, e, &mapping::Skip::NoGlobalObjectId);
            stats.skipped += 1;
            continue;
        };
        let result = match kind {
            EventType::SingleInstance => {
                let data =
                    e.id.as_deref()
                        .and_then(|id| it.fetched.get(id))
                        .unwrap_or(e);
                mapping::to_event_full(&cx, data, goid)
            }
            EventType::Exception => {
                let data =
                    e.id.as_deref()
                        .and_then(|id| it.fetched.get(id))
                        .unwrap_or(e);
                mapping::to_event_full(&cx, data, goid)
            }
            EventType::Occurrence => match masters.get(owner) {
                Some(master) => mapping::to_event_occurrence(&cx, e, master, goid),
                None => Err(mapping::Skip::Model(
                    "an occurrence whose series master could not be read".to_string(),
                )),
            },
            EventType::SeriesMaster | EventType::Unknown => continue,
        };
        match result {
            Ok(event) if event.overlaps(&it.req.window) => {
                stats.goids.push((owner.to_string(), goid.to_string()));
                stats.masters.push((
                    event.source.item_id.clone(),
                    if kind == EventType::SingleInstance {
                        String::new()
                    } else {
                        id_hash(owner)
                    },
                ));
                stats.events.push(event);
            }
            // Outside the window (an all-day event whose dates lie past it while its
            // instants still touch it, a change Graph lists although the event left): not
            // delivered, and removed where the cursor knows it.
            Ok(event) => stats.outside.push(event.source.item_id),
            Err(why) => {
                skipped(it, e, &why);
                stats.skipped += 1;
            }
        }
    }
}

/// What [`build_events`] produced.
#[derive(Default)]
struct Built {
    events: Vec<Event>,
    /// Per event (same order): item id, master hash.
    masters: Vec<(String, String)>,
    /// (owner id, goid) used.
    goids: Vec<(String, String)>,
    /// Item ids of entries whose event lies outside the window.
    outside: Vec<String>,
    skipped: usize,
}

/// Phase 3: the batch and the new cursor of one calendar.
fn finish(
    it: Item,
    upserted: &HashMap<String, HashSet<String>>,
) -> Result<(Option<SourceBatch>, SyncEnd), SourceError> {
    if let Some(e) = it.error {
        tracing::warn!(mailbox = %it.req.mailbox.address, calendar = %it.req.calendar.path, code = e.code(), detail = %e.diagnostic.detail(), "calendar sync failed");
        return Err(e);
    }
    let window = it.req.window;
    let cursor = |state: &CursorState| {
        Some(Cursor {
            value: state.to_text(),
            window,
        })
    };
    match it.mode {
        Mode::View | Mode::Round => {
            let mut built = Built::default();
            if it.mode == Mode::View {
                build_view(&it, &mut built);
            } else {
                build_events(&it, &mut built);
            }
            let mut state = CursorState::new();
            state.link = it.new_link.clone();
            let mut events = Vec::with_capacity(built.events.len());
            let mut seen: HashSet<EventKey> = HashSet::new();
            for (event, (item_id, master)) in built.events.into_iter().zip(built.masters) {
                if seen.insert(event.key().clone()) {
                    state
                        .known
                        .insert(id_hash(&item_id), (event.key().to_string(), master));
                    events.push(event);
                }
            }
            for (owner, goid) in built.goids {
                state.goids.insert(id_hash(&owner), goid);
            }
            tracing::debug!(mailbox = %it.req.mailbox.address, calendar = %it.req.calendar.path, events = events.len(), skipped = built.skipped, full_read = it.mode == Mode::View, "snapshot");
            Ok((
                Some(SourceBatch::Snapshot { events }),
                SyncEnd {
                    cursor: cursor(&state),
                },
            ))
        }
        Mode::Continue => {
            let mut built = Built::default();
            build_events(&it, &mut built);
            let mut state = it.state.clone();
            state.link = it.new_link.clone();
            let round_ids: HashSet<&str> =
                it.entries.iter().filter_map(|e| e.id.as_deref()).collect();
            let elsewhere = upserted.get(it.mailbox());
            let upsert_keys: HashSet<String> =
                built.events.iter().map(|e| e.key().to_string()).collect();
            let mut removals: Vec<Removal> = Vec::new();
            let mut removed_keys: HashSet<String> = HashSet::new();
            let mut seen: HashSet<&str> = HashSet::new();
            for id in &it.removed {
                if !seen.insert(id.as_str()) || round_ids.contains(id.as_str()) {
                    continue;
                }
                let moved = elsewhere.is_some_and(|ids| ids.contains(id));
                let hash = id_hash(id);
                if let Some((key, _)) = state.known.get(&hash).cloned() {
                    if moved {
                        tracing::debug!(mailbox = %it.req.mailbox.address, calendar = %it.req.calendar.path, "an event moved to another calendar");
                    } else if !upsert_keys.contains(&key) && removed_keys.insert(key.clone()) {
                        removals.push(Removal::Key(EventKey::from_stored(key)));
                    }
                    state.known.remove(&hash);
                } else if it.gone.contains(id) && state.is_known_master(id) && !moved {
                    for (instance, key) in state.instances_of(id) {
                        if !upsert_keys.contains(&key) && removed_keys.insert(key.clone()) {
                            removals.push(Removal::Key(EventKey::from_stored(key)));
                        }
                        state.known.remove(&instance);
                    }
                    state.goids.remove(&hash);
                } else if !state.is_known_master(id) {
                    // Never delivered for this window (outside it, or never in it).
                    state.goids.remove(&hash);
                }
            }
            // A known instance that an upsert moved out of the window leaves the sign.
            for item_id in &built.outside {
                let hash = id_hash(item_id);
                if let Some((key, _)) = state.known.remove(&hash) {
                    tracing::debug!(mailbox = %it.req.mailbox.address, calendar = %it.req.calendar.path, "an event left the window");
                    if !upsert_keys.contains(&key) && removed_keys.insert(key.clone()) {
                        removals.push(Removal::Key(EventKey::from_stored(key)));
                    }
                }
            }
            for (event, (item_id, master)) in built.events.iter().zip(&built.masters) {
                state
                    .known
                    .insert(id_hash(item_id), (event.key().to_string(), master.clone()));
            }
            for (owner, goid) in &built.goids {
                state.goids.insert(id_hash(owner), goid.clone());
            }
            for (id, event) in &it.fetched {
                if let Some(goid) = event.goid_base64()
                    && matches!(
                        event.event_type(),
                        EventType::SingleInstance | EventType::SeriesMaster
                    )
                {
                    state.goids.insert(id_hash(id), goid.to_string());
                }
            }
            tracing::debug!(mailbox = %it.req.mailbox.address, calendar = %it.req.calendar.path, upserts = built.events.len(), removals = removals.len(), skipped = built.skipped, "delta");
            let batch =
                (!built.events.is_empty() || !removals.is_empty()).then_some(SourceBatch::Delta {
                    upserts: built.events,
                    removals,
                });
            Ok((
                batch,
                SyncEnd {
                    cursor: cursor(&state),
                },
            ))
        }
    }
}

/// The events of a calendarView read: every entry carries its fields and global object id.
fn build_view(it: &Item, built: &mut Built) {
    let cx = Context {
        mailbox: it.mailbox(),
        calendar: &it.req.calendar.path,
    };
    for e in &it.entries {
        let kind = e.event_type();
        if matches!(kind, EventType::SeriesMaster | EventType::Unknown) {
            continue;
        }
        let Some(goid) = e.goid_base64() else {
            skipped(it, e, &mapping::Skip::NoGlobalObjectId);
            built.skipped += 1;
            continue;
        };
        match mapping::to_event_full(&cx, e, goid) {
            Ok(event) => {
                if let Some(owner) = goid_owner(e) {
                    built.goids.push((owner.to_string(), goid.to_string()));
                }
                let master = match (kind, e.series_master_id.as_deref()) {
                    (EventType::SingleInstance, _) | (_, None) => String::new(),
                    (_, Some(m)) => id_hash(m),
                };
                built.masters.push((event.source.item_id.clone(), master));
                built.events.push(event);
            }
            Err(why) => {
                skipped(it, e, &why);
                built.skipped += 1;
            }
        }
    }
}
