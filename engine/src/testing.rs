//! In-memory stand-ins for tests of the runner and the daemon (cargo feature `testing`):
//!
//! * [`MemorySource`] — a [`Source`] over calendars held in memory, with snapshots, deltas from
//!   a version cursor, removals by item id, room lists, and injectable failures. It can be
//!   generated deterministically from a seed, so two processes build the same truth.
//! * [`MemorySink`] — a sink plugin (through the real ABI table, [`sink_table`]) that keeps what
//!   it receives in a named, process-wide [`MemoryStore`], and fails on demand.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use calpump_plugin::{
    Batch, BatchKind, Event, EventIdentity, EventKey, GlobalObjectId, Sink, SinkError, SinkResult,
    SourceIds, Window,
};
use chrono::{DateTime, TimeZone as _, Utc};

use crate::diagnostics::{Diagnostic, catalogue};
use crate::source::{
    CalendarInfo, Cursor, MailboxInfo, MailboxKind, ProbeStep, Removal, RoomList, Source,
    SourceBatch, SourceError, StepOutcome, SyncEnd, SyncOutput, SyncRequest,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A deterministic pseudo-random sequence (splitmix64): the same seed gives the same truth in
/// every process and on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Builds an event whose identity is derived from `uid` (the same uid in the same mailbox is the
/// same meeting, whichever item id it has).
pub fn make_event(
    mailbox: &str,
    calendar: &str,
    uid: u64,
    item_id: &str,
    subject: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Event, calpump_plugin::ModelError> {
    let mut bytes = b"calpump-memory--".to_vec();
    bytes.extend_from_slice(&uid.to_be_bytes());
    let goid = GlobalObjectId::from_bytes(&bytes)?;
    let identity = EventIdentity::new(mailbox, goid, None)?;
    Event::new(
        identity,
        calendar,
        SourceIds {
            backend: "memory".into(),
            item_id: item_id.into(),
            change_key: None,
        },
        subject,
        start,
        end,
    )
}

#[derive(Debug, Clone)]
struct MemCalendar {
    info: CalendarInfo,
    /// item id → (event, version it was last changed at)
    items: BTreeMap<String, (Event, u64)>,
    /// item ids removed, with the version of the removal
    removed: Vec<(String, u64)>,
    reads_empty: bool,
    failure: Option<SourceError>,
}

#[derive(Debug, Clone)]
struct MemMailbox {
    info: MailboxInfo,
    calendars: BTreeMap<String, MemCalendar>,
    failure: Option<SourceError>,
}

#[derive(Debug, Default)]
struct Truth {
    version: u64,
    mailboxes: BTreeMap<String, MemMailbox>,
    room_lists: Vec<(RoomList, Vec<String>)>,
}

/// An in-memory [`Source`]. See the module documentation.
#[derive(Debug)]
pub struct MemorySource {
    backend: String,
    chunk: usize,
    delta_batch: usize,
    batch_delay: Duration,
    truth: Mutex<Truth>,
}

fn not_found(what: String) -> SourceError {
    SourceError::new(Diagnostic::new(&catalogue::general::INTERNAL, what)).retryable(false)
}

impl MemorySource {
    pub fn new(backend: &str) -> Self {
        Self {
            backend: backend.to_string(),
            chunk: 1,
            delta_batch: 50,
            batch_delay: Duration::ZERO,
            truth: Mutex::new(Truth::default()),
        }
    }

    /// How many requests one `sync` call takes (like Graph's `$batch`).
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// How many upserts/removals go into one delta batch.
    pub fn with_delta_batch(mut self, size: usize) -> Self {
        self.delta_batch = size.max(1);
        self
    }

    /// Waits this long before each batch (to make a sync slow enough to interrupt).
    pub fn with_batch_delay(mut self, delay: Duration) -> Self {
        self.batch_delay = delay;
        self
    }

    /// The current version (bumped by every change).
    pub fn version(&self) -> u64 {
        lock(&self.truth).version
    }

    /// Adds a mailbox with its default calendar.
    pub fn add_mailbox(&self, address: &str, name: Option<&str>, kind: MailboxKind) {
        let address = address.to_lowercase();
        let mut calendars = BTreeMap::new();
        calendars.insert(
            crate::source::DEFAULT_CALENDAR.to_string(),
            MemCalendar {
                info: CalendarInfo {
                    id: format!("{address}/default"),
                    ..CalendarInfo::default_calendar()
                },
                items: BTreeMap::new(),
                removed: Vec::new(),
                reads_empty: false,
                failure: None,
            },
        );
        lock(&self.truth).mailboxes.insert(
            address.clone(),
            MemMailbox {
                info: MailboxInfo {
                    address,
                    name: name.map(str::to_string),
                    kind,
                    room_list: None,
                },
                calendars,
                failure: None,
            },
        );
    }

    /// Adds a sub-calendar (`path` like `default/Projects`).
    pub fn add_calendar(&self, mailbox: &str, path: &str) {
        let mut truth = lock(&self.truth);
        if let Some(mb) = truth.mailboxes.get_mut(&mailbox.to_lowercase()) {
            mb.calendars.insert(
                path.to_string(),
                MemCalendar {
                    info: CalendarInfo {
                        id: format!("{mailbox}/{path}"),
                        path: path.to_string(),
                        name: path.rsplit('/').next().unwrap_or(path).to_string(),
                        is_default: false,
                        item_count: None,
                    },
                    items: BTreeMap::new(),
                    removed: Vec::new(),
                    reads_empty: false,
                    failure: None,
                },
            );
        }
    }

    /// Adds a room list with its members' addresses.
    pub fn add_room_list(&self, address: &str, name: &str, members: &[&str]) {
        lock(&self.truth).room_lists.push((
            RoomList {
                address: address.to_lowercase(),
                name: Some(name.to_string()),
            },
            members.iter().map(|m| m.to_lowercase()).collect(),
        ));
    }

    /// Puts an event (in its mailbox and calendar) under `item_id`.
    pub fn put(&self, item_id: &str, event: Event) {
        let mut truth = lock(&self.truth);
        truth.version += 1;
        let version = truth.version;
        if let Some(cal) = truth
            .mailboxes
            .get_mut(event.mailbox())
            .and_then(|mb| mb.calendars.get_mut(&event.calendar))
        {
            cal.removed.retain(|(id, _)| id != item_id);
            cal.items.insert(item_id.to_string(), (event, version));
        }
    }

    /// Removes an item. Returns whether it existed.
    pub fn remove(&self, mailbox: &str, calendar: &str, item_id: &str) -> bool {
        let mut truth = lock(&self.truth);
        truth.version += 1;
        let version = truth.version;
        let Some(cal) = truth
            .mailboxes
            .get_mut(&mailbox.to_lowercase())
            .and_then(|mb| mb.calendars.get_mut(calendar))
        else {
            return false;
        };
        let existed = cal.items.remove(item_id).is_some();
        if existed {
            cal.removed.push((item_id.to_string(), version));
        }
        existed
    }

    /// Makes every request for a mailbox fail (or heal with `None`).
    pub fn set_mailbox_failure(&self, mailbox: &str, failure: Option<SourceError>) {
        if let Some(mb) = lock(&self.truth).mailboxes.get_mut(&mailbox.to_lowercase()) {
            mb.failure = failure;
        }
    }

    /// Makes one calendar's sync fail (or heal with `None`).
    pub fn set_calendar_failure(
        &self,
        mailbox: &str,
        calendar: &str,
        failure: Option<SourceError>,
    ) {
        if let Some(cal) = lock(&self.truth)
            .mailboxes
            .get_mut(&mailbox.to_lowercase())
            .and_then(|mb| mb.calendars.get_mut(calendar))
        {
            cal.failure = failure;
        }
    }

    /// Makes a calendar read as empty (a permission problem, not a real change).
    pub fn set_reads_empty(&self, mailbox: &str, calendar: &str, empty: bool) {
        if let Some(cal) = lock(&self.truth)
            .mailboxes
            .get_mut(&mailbox.to_lowercase())
            .and_then(|mb| mb.calendars.get_mut(calendar))
        {
            cal.reads_empty = empty;
        }
    }

    /// Every event overlapping `window`, by key, with its content hash: what a sink of a route
    /// reading every mailbox and calendar should hold.
    pub fn truth(&self, window: &Window) -> BTreeMap<EventKey, String> {
        let truth = lock(&self.truth);
        truth
            .mailboxes
            .values()
            .flat_map(|mb| mb.calendars.values())
            .flat_map(|cal| cal.items.values())
            .filter(|(e, _)| e.overlaps(window))
            .map(|(e, _)| (e.key().clone(), e.content_hash()))
            .collect()
    }

    /// A deterministic tenant: `mailboxes` rooms (`room-NN@example.test`), each with
    /// `events` events spread over the days after `base` (some before `base`, so windows cut
    /// through them). Items are named `<mailbox>/<n>`.
    pub fn generate(
        backend: &str,
        seed: u64,
        mailboxes: usize,
        events: usize,
        base: DateTime<Utc>,
    ) -> Self {
        let source = Self::new(backend);
        let mut rng = Rng::new(seed);
        for m in 0..mailboxes {
            let address = format!("room-{m:02}@example.test");
            source.add_mailbox(&address, Some(&format!("Room {m:02}")), MailboxKind::Room);
            for n in 0..events {
                let uid = (m as u64) << 32 | n as u64;
                let event =
                    random_event(&mut rng, &address, uid, &format!("{address}/{n}"), base, 0);
                if let Ok(event) = event {
                    source.put(&format!("{address}/{n}"), event);
                }
            }
        }
        source
    }

    /// `count` deterministic changes: reschedules, renames, removals and new events.
    pub fn mutate(&self, seed: u64, count: usize, base: DateTime<Utc>) {
        let mut rng = Rng::new(seed ^ 0x5EED);
        for step in 0..count {
            let (address, ids): (String, Vec<String>) = {
                let truth = lock(&self.truth);
                let addresses: Vec<&String> = truth.mailboxes.keys().collect();
                if addresses.is_empty() {
                    return;
                }
                let address = addresses[rng.below(addresses.len() as u64) as usize].clone();
                let ids = truth.mailboxes[&address].calendars[crate::source::DEFAULT_CALENDAR]
                    .items
                    .keys()
                    .cloned()
                    .collect();
                (address, ids)
            };
            match rng.below(3) {
                0 if !ids.is_empty() => {
                    let id = &ids[rng.below(ids.len() as u64) as usize];
                    self.remove(&address, crate::source::DEFAULT_CALENDAR, id);
                }
                1 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len() as u64) as usize].clone();
                    let uid = {
                        let truth = lock(&self.truth);
                        let (event, _) = &truth.mailboxes[&address].calendars
                            [crate::source::DEFAULT_CALENDAR]
                            .items[&id];
                        // Recover the uid from the global object id's last 8 bytes.
                        let hex = event.global_object_id().as_hex();
                        u64::from_str_radix(&hex[hex.len() - 16..], 16).unwrap_or(0)
                    };
                    if let Ok(event) = random_event(&mut rng, &address, uid, &id, base, step + 1) {
                        self.put(&id, event);
                    }
                }
                _ => {
                    let uid = 0xFFFF_0000_0000 + (seed << 20) + step as u64;
                    let id = format!("{address}/new-{seed}-{step}");
                    if let Ok(event) = random_event(&mut rng, &address, uid, &id, base, step + 1) {
                        self.put(&id, event);
                    }
                }
            }
        }
    }
}

fn random_event(
    rng: &mut Rng,
    mailbox: &str,
    uid: u64,
    item_id: &str,
    base: DateTime<Utc>,
    revision: usize,
) -> Result<Event, calpump_plugin::ModelError> {
    let day = rng.below(20) as i64 - 3;
    let hour = 7 + rng.below(10) as i64;
    let start = base + chrono::Duration::days(day) + chrono::Duration::hours(hour);
    let end = start + chrono::Duration::minutes(30 * (1 + rng.below(4) as i64));
    let subject = format!("Meeting {uid:x} r{revision}");
    make_event(
        mailbox,
        crate::source::DEFAULT_CALENDAR,
        uid,
        item_id,
        &subject,
        start,
        end,
    )
}

fn parse_cursor(cursor: &Option<Cursor>, window: &Window) -> Option<u64> {
    let cursor = cursor.as_ref()?;
    if cursor.window != *window {
        return None;
    }
    cursor.value.strip_prefix("mem:")?.parse().ok()
}

/// What one request yields, computed under the lock and sent without it.
enum Plan {
    Fail(SourceError),
    Snapshot(Vec<Event>, u64),
    Delta(Vec<Event>, Vec<Removal>, u64),
}

impl MemorySource {
    fn plan(&self, request: &SyncRequest) -> Plan {
        let truth = lock(&self.truth);
        let Some(mb) = truth.mailboxes.get(&request.mailbox.address) else {
            return Plan::Fail(not_found(format!("no mailbox {}", request.mailbox.address)));
        };
        if let Some(failure) = &mb.failure {
            return Plan::Fail(failure.clone());
        }
        let Some(cal) = mb.calendars.get(&request.calendar.path) else {
            return Plan::Fail(not_found(format!(
                "no calendar {} in {}",
                request.calendar.path, request.mailbox.address
            )));
        };
        if let Some(failure) = &cal.failure {
            return Plan::Fail(failure.clone());
        }
        let version = truth.version;
        if cal.reads_empty {
            return Plan::Snapshot(Vec::new(), version);
        }
        let window = &request.window;
        match parse_cursor(&request.cursor, window) {
            Some(since) => {
                let mut upserts = Vec::new();
                let mut removals = Vec::new();
                for (id, (event, v)) in &cal.items {
                    if *v > since {
                        if event.overlaps(window) {
                            upserts.push(event.clone());
                        } else {
                            // Like Graph: a change that moved an event out of the window
                            // arrives as a removal.
                            removals.push(Removal::Item(id.clone()));
                        }
                    }
                }
                for (id, v) in &cal.removed {
                    if *v > since {
                        removals.push(Removal::Item(id.clone()));
                    }
                }
                Plan::Delta(upserts, removals, version)
            }
            None => Plan::Snapshot(
                cal.items
                    .values()
                    .filter(|(e, _)| e.overlaps(window))
                    .map(|(e, _)| e.clone())
                    .collect(),
                version,
            ),
        }
    }

    async fn pause(&self) {
        if !self.batch_delay.is_zero() {
            tokio::time::sleep(self.batch_delay).await;
        }
    }
}

#[async_trait]
impl Source for MemorySource {
    fn backend(&self) -> &str {
        &self.backend
    }

    fn preferred_chunk(&self) -> usize {
        self.chunk
    }

    async fn room_lists(&self) -> Result<Vec<RoomList>, SourceError> {
        Ok(lock(&self.truth)
            .room_lists
            .iter()
            .map(|(l, _)| l.clone())
            .collect())
    }

    async fn rooms(&self, room_list: Option<&str>) -> Result<Vec<MailboxInfo>, SourceError> {
        let truth = lock(&self.truth);
        let members: Vec<String> = match room_list {
            Some(list) => truth
                .room_lists
                .iter()
                .find(|(l, _)| l.address == list.to_lowercase())
                .map(|(_, m)| m.clone())
                .ok_or_else(|| not_found(format!("no room list {list}")))?,
            None => truth
                .mailboxes
                .values()
                .filter(|m| m.info.kind == MailboxKind::Room)
                .map(|m| m.info.address.clone())
                .collect(),
        };
        Ok(members
            .iter()
            .filter_map(|a| truth.mailboxes.get(a))
            .map(|m| MailboxInfo {
                room_list: room_list.map(str::to_string),
                ..m.info.clone()
            })
            .collect())
    }

    async fn resolve_mailbox(&self, address: &str) -> Result<MailboxInfo, SourceError> {
        let truth = lock(&self.truth);
        let mb = truth
            .mailboxes
            .get(&address.trim().to_lowercase())
            .ok_or_else(|| not_found(format!("no mailbox {address}")))?;
        if let Some(failure) = &mb.failure {
            return Err(failure.clone());
        }
        Ok(mb.info.clone())
    }

    async fn calendars(&self, mailbox: &MailboxInfo) -> Result<Vec<CalendarInfo>, SourceError> {
        let truth = lock(&self.truth);
        let mb = truth
            .mailboxes
            .get(&mailbox.address)
            .ok_or_else(|| not_found(format!("no mailbox {}", mailbox.address)))?;
        if let Some(failure) = &mb.failure {
            return Err(failure.clone());
        }
        Ok(mb
            .calendars
            .values()
            .map(|c| CalendarInfo {
                item_count: Some(c.items.len() as u64),
                ..c.info.clone()
            })
            .collect())
    }

    async fn sync(&self, work: Vec<SyncRequest>, out: SyncOutput) {
        for (index, request) in work.iter().enumerate() {
            let plan = self.plan(request);
            let end = |version: u64| SyncEnd {
                cursor: Some(Cursor {
                    value: format!("mem:{version}"),
                    window: request.window,
                }),
            };
            let sent = match plan {
                Plan::Fail(err) => out.done(index, Err(err)).await,
                Plan::Snapshot(events, version) => {
                    self.pause().await;
                    if out
                        .batch(index, SourceBatch::Snapshot { events })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    out.done(index, Ok(end(version))).await
                }
                Plan::Delta(upserts, removals, version) => {
                    let mut upserts = upserts.into_iter().peekable();
                    let mut removals = removals.into_iter().peekable();
                    while upserts.peek().is_some() || removals.peek().is_some() {
                        self.pause().await;
                        let u: Vec<Event> = upserts.by_ref().take(self.delta_batch).collect();
                        let room = self.delta_batch.saturating_sub(u.len());
                        let r: Vec<Removal> = removals.by_ref().take(room).collect();
                        let batch = SourceBatch::Delta {
                            upserts: u,
                            removals: r,
                        };
                        if out.batch(index, batch).await.is_err() {
                            return;
                        }
                    }
                    out.done(index, Ok(end(version))).await
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }

    async fn probe(&self, _probe_mailbox: Option<&str>) -> Vec<ProbeStep> {
        vec![ProbeStep {
            id: "memory".into(),
            title: "in-memory source".into(),
            outcome: StepOutcome::Passed {
                detail: format!("{} mailboxes", lock(&self.truth).mailboxes.len()),
            },
        }]
    }
}

/// How a [`MemoryStore`] fails on purpose.
#[derive(Debug, Clone, Default)]
pub struct FailPlan {
    /// Fail `write_batch` calls from this one on (1-based count of calls on the store).
    pub from_batch: Option<u64>,
    /// How many calls fail (`None`: every call from `from_batch` on).
    pub times: Option<u64>,
    /// Retryable instead of fatal.
    pub retryable: bool,
    /// Events whose subject contains this are rejected (per item).
    pub reject_subject: Option<String>,
    /// Events whose subject contains this are answered `retryable` (per item) once each.
    pub retry_subject_once: Option<String>,
}

/// A summary of one batch a [`MemoryStore`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedBatch {
    pub run_id: String,
    pub route: String,
    pub mailbox: String,
    pub calendar: String,
    pub kind: BatchKind,
    pub complete: bool,
    pub upserts: usize,
    pub deletes: usize,
}

/// What a [`MemorySink`] holds: per (mailbox, calendar) the events by key.
#[derive(Debug, Default)]
pub struct MemoryStore {
    content: Mutex<BTreeMap<(String, String), BTreeMap<EventKey, Event>>>,
    batches: Mutex<Vec<ReceivedBatch>>,
    calls: Mutex<u64>,
    failed: Mutex<u64>,
    retried: Mutex<Vec<EventKey>>,
    flushes: Mutex<u64>,
    fail: Mutex<FailPlan>,
}

impl MemoryStore {
    /// The store named `name` (made on first use; shared by every sink configured with it).
    pub fn named(name: &str) -> Arc<MemoryStore> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<MemoryStore>>>> = OnceLock::new();
        let stores = STORES.get_or_init(|| Mutex::new(HashMap::new()));
        lock(stores).entry(name.to_string()).or_default().clone()
    }

    /// Every event held, by key, with its content hash (compare with [`MemorySource::truth`]).
    pub fn content(&self) -> BTreeMap<EventKey, String> {
        lock(&self.content)
            .values()
            .flat_map(|m| m.iter())
            .map(|(k, e)| (k.clone(), e.content_hash()))
            .collect()
    }

    /// How many events are held in total, counting one key held under two calendars twice.
    pub fn rows(&self) -> usize {
        lock(&self.content).values().map(BTreeMap::len).sum()
    }

    pub fn batches(&self) -> Vec<ReceivedBatch> {
        lock(&self.batches).clone()
    }

    pub fn flushes(&self) -> u64 {
        *lock(&self.flushes)
    }

    pub fn set_fail(&self, plan: FailPlan) {
        *lock(&self.fail) = plan;
        *lock(&self.failed) = 0;
    }

    fn write(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        let call = {
            let mut calls = lock(&self.calls);
            *calls += 1;
            *calls
        };
        let plan = lock(&self.fail).clone();
        if let Some(from) = plan.from_batch
            && call >= from
        {
            let mut failed = lock(&self.failed);
            if plan.times.is_none_or(|t| *failed < t) {
                *failed += 1;
                let text = format!("memory sink fails on purpose (call {call})");
                return Err(if plan.retryable {
                    SinkError::retryable(text)
                } else {
                    SinkError::fatal(text)
                });
            }
        }
        lock(&self.batches).push(ReceivedBatch {
            run_id: batch.run_id.clone(),
            route: batch.route.clone(),
            mailbox: batch.mailbox.clone(),
            calendar: batch.calendar.clone(),
            kind: batch.kind,
            complete: batch.complete,
            upserts: batch.upserts.len(),
            deletes: batch.deletes.len(),
        });
        let mut result = SinkResult::default();
        let mut content = lock(&self.content);
        let slot = content
            .entry((batch.mailbox.clone(), batch.calendar.clone()))
            .or_default();
        let mut kept = Vec::new();
        for event in batch.upserts {
            let key = event.key().clone();
            if let Some(bad) = &plan.reject_subject
                && event.subject.contains(bad.as_str())
            {
                result.rejected.push(calpump_plugin::ItemFailure {
                    key,
                    reason: format!("subject contains {bad:?}"),
                });
                continue;
            }
            if let Some(flaky) = &plan.retry_subject_once
                && event.subject.contains(flaky.as_str())
            {
                let mut retried = lock(&self.retried);
                if !retried.contains(&key) {
                    retried.push(key.clone());
                    result.retryable.push(calpump_plugin::ItemFailure {
                        key,
                        reason: "busy".into(),
                    });
                    continue;
                }
            }
            kept.push(key.clone());
            slot.insert(key.clone(), event);
            result.accepted.push(key);
        }
        for key in batch.deletes {
            slot.remove(&key);
            result.accepted.push(key);
        }
        if batch.kind == BatchKind::Snapshot && batch.complete {
            let window = batch.window;
            slot.retain(|k, e| kept.contains(k) || !e.overlaps(&window));
        }
        Ok(result)
    }
}

/// The sink over a [`MemoryStore`]; configuration `{ "store": "<name>" }`.
pub struct MemorySink {
    store: Arc<MemoryStore>,
}

impl Sink for MemorySink {
    const NAME: &'static str = "memory";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CONFIG_SCHEMA: &'static str =
        r#"{"type":"object","properties":{"store":{"type":"string"}},"required":["store"]}"#;

    fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        match config.get("store").and_then(|s| s.as_str()) {
            Some(_) => Ok(Vec::new()),
            None => Err(SinkError::config("`store` (a name) is required")),
        }
    }

    fn create(config: serde_json::Value) -> Result<Self, SinkError> {
        let name = config
            .get("store")
            .and_then(|s| s.as_str())
            .ok_or_else(|| SinkError::config("`store` (a name) is required"))?;
        Ok(Self {
            store: MemoryStore::named(name),
        })
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        self.store.write(batch)
    }

    fn flush(&self) -> Result<(), SinkError> {
        *lock(&self.store.flushes) += 1;
        Ok(())
    }
}

calpump_plugin::sink_table!(MemorySink);

/// Midnight UTC of a fixed day: a stable base for generated tenants.
pub fn fixed_base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
        .single()
        .unwrap_or_default()
}
