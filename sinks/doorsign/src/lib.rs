//! Door-sign sink: room status pages (HTML, JSON, PNG for e-paper) and pushes (MQTT,
//! OpenEPaperLink), as a calpump sink plugin.
//!
//! Where to start: [`DoorSign`] implements the SDK's [`Sink`] trait; `sink_table()` (from
//! `calpump_plugin::sink_table!`) is the ABI table the host links in, and the thin cdylib in
//! `plugin/` exports the very same table as `calpump_sink_v1`.
//!
//! * [`projection`] — the pure rules: events + instant → what a room's sign shows.
//! * [`state`] — the remembered events per room, persisted under `out_dir/.state/`.
//! * [`html`], [`raster`] (with [`text`]: fonts, bidi, shaping) — the outputs; [`push`] — MQTT
//!   and OpenEPaperLink.
//! * [`config`] — the configuration and its JSON Schema.

pub mod config;
pub mod html;
pub mod projection;
pub mod push;
pub mod raster;
pub mod state;
pub mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration as StdDuration, Instant};

use calpump_plugin::{
    Batch, ItemFailure, MailboxHealth, SCHEMA_VERSION, Sink, SinkError, SinkResult, Tick,
    TickResult, normalize_mailbox,
};
use chrono::{DateTime, Duration, Utc};

pub use config::CONFIG_SCHEMA;
use config::Settings;
use html::{IndexEntry, Pages};
use projection::{Projection, RoomInput, Rules};
use push::{MqttItem, OeplItem, Pusher, TargetKind};
use raster::Fonts;
use state::{RoomState, Store, atomic_write, slug};

/// Events that ended longer ago than this are forgotten.
const KEEP_PAST_DAYS: i64 = 2;

/// Version of `index.json`.
pub const INDEX_SCHEMA_VERSION: u32 = 1;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> SinkError {
    SinkError::retryable(format!("doorsign: cannot {what} {}: {e}", path.display()))
}

/// Writes `bytes` to `path` (atomically) unless the file already holds exactly them, so a start
/// or a change elsewhere leaves an unchanged file alone: same inode, same mtime.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    match std::fs::read(path) {
        Ok(current) if current == bytes => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Unreadable (say, a directory in the way): the write below reports it.
        Err(e) => tracing::debug!(path = %path.display(), error = %e, "doorsign: cannot read"),
    }
    atomic_write(path, bytes, false).map_err(|e| io_error("write", path, e))
}

/// What a render produced for the pushes: the room JSON and the OpenEPaperLink image, if any.
struct Written {
    json: Arc<Vec<u8>>,
    jpeg: Option<Vec<u8>>,
}

#[derive(Default)]
struct IndexState {
    entries: BTreeMap<String, IndexEntry>,
    /// The index JSON as last written or found on disk (`None`: not yet compared by this
    /// instance; `write_if_changed` then compares each file with the disk).
    written: Option<Vec<u8>>,
}

/// The door-sign sink. Thread-safe: batches of different rooms are applied concurrently, each
/// room behind its own lock.
pub struct DoorSign {
    settings: Settings,
    rules: Rules,
    pages: Pages,
    fonts: Fonts,
    fingerprint: String,
    store: Store,
    rooms_dir: PathBuf,
    rooms: Mutex<HashMap<String, Arc<Mutex<RoomState>>>>,
    /// Mailbox → the health of each route reading it, from the last tick.
    health: Mutex<HashMap<String, Vec<MailboxHealth>>>,
    /// Mailbox → the next instant its sign changes with time alone.
    wakeups: Mutex<HashMap<String, DateTime<Utc>>>,
    index: Mutex<IndexState>,
    pusher: Option<Pusher>,
    /// Room → characters already reported as drawn by no font (each reported once per room).
    missing_reported: Mutex<HashMap<String, BTreeSet<char>>>,
}

impl DoorSign {
    /// The directory all outputs go to.
    pub fn out_dir(&self) -> &Path {
        &self.settings.config.out_dir
    }

    /// The MQTT client id this sink connects with (when MQTT is configured).
    pub fn mqtt_client_id(&self) -> Option<&str> {
        self.pusher.as_ref().and_then(Pusher::mqtt_client_id)
    }

    /// Pushes still queued or waiting for a retry.
    pub fn pending_pushes(&self) -> usize {
        self.pusher.as_ref().map(Pusher::pending).unwrap_or(0)
    }

    /// Waits until no push is pending (or `timeout` passes); returns whether all were done.
    pub fn wait_for_pushes(&self, timeout: StdDuration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.pending_pushes() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(StdDuration::from_millis(20));
        }
        true
    }

    fn now(&self) -> DateTime<Utc> {
        self.settings.config.clock.unwrap_or_else(Utc::now)
    }

    fn room(&self, mailbox: &str) -> Arc<Mutex<RoomState>> {
        lock(&self.rooms)
            .entry(mailbox.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(RoomState::new(mailbox))))
            .clone()
    }

    /// Since when every route reading `mailbox` has been failing (`None` if any is fine).
    fn failing_since(&self, mailbox: &str) -> Option<DateTime<Utc>> {
        let health = lock(&self.health);
        let entries = health.get(mailbox)?;
        let mut latest: Option<DateTime<Utc>> = None;
        for entry in entries {
            let since = entry.failing_since?;
            latest = Some(latest.map_or(since, |l| l.max(since)));
        }
        latest
    }

    /// Whether any route reports a successful read of `mailbox`.
    fn ever_read(&self, mailbox: &str) -> bool {
        lock(&self.health)
            .get(mailbox)
            .is_some_and(|entries| entries.iter().any(|h| h.last_success.is_some()))
    }

    fn health_name(&self, mailbox: &str) -> Option<String> {
        lock(&self.health)
            .get(mailbox)?
            .iter()
            .find_map(|h| h.mailbox_name.clone())
    }

    /// Projects a room at `now`; when its content changed (or its files are missing) renders
    /// and writes the files and saves the state; queues a push to every target whose ledger
    /// lacks this content (a change, or a push still owed from before a restart).
    /// Returns the room's next change. With `defer_index` the caller writes the index.
    fn refresh(
        &self,
        room: &mut RoomState,
        now: DateTime<Utc>,
        mut dirty: bool,
        defer_index: bool,
    ) -> Result<Option<DateTime<Utc>>, SinkError> {
        if room.name.is_none()
            && let Some(name) = self.health_name(&room.mailbox)
        {
            room.name = Some(name);
            dirty = true;
        }
        let id = slug(&room.mailbox);
        let input = RoomInput {
            mailbox: &room.mailbox,
            id: &id,
            name: room.name.as_deref(),
            events: room.events.values().collect(),
            failing_since: self.failing_since(&room.mailbox),
            never_read: !room.read && !self.ever_read(&room.mailbox),
        };
        let mut projection = projection::project(&input, &self.rules, now);
        projection.seal(&self.fingerprint);
        let changed = room.rendered_hash.as_deref() != Some(projection.content_hash.as_str());
        let json_path = self.rooms_dir.join(format!("{id}.json"));
        let mut written = None;
        if changed || !json_path.exists() {
            written = Some(self.write_room(&projection)?);
            if changed {
                tracing::debug!(room = %room.mailbox, status = projection.status.as_str(), hash = %projection.content_hash, "doorsign rendered");
            }
            room.rendered_hash = Some(projection.content_hash.clone());
            dirty = true;
        }
        self.queue_pushes(&projection, written);
        if dirty {
            self.store
                .save(room)
                .map_err(|e| io_error("save the state of", &self.store.path(&room.mailbox), e))?;
        }
        {
            let mut wakeups = lock(&self.wakeups);
            match projection.next_change {
                Some(t) => wakeups.insert(room.mailbox.clone(), t),
                None => wakeups.remove(&room.mailbox),
            };
        }
        let entry = IndexEntry::from_projection(&projection, self.settings.config.language);
        let mut index = lock(&self.index);
        if index.entries.get(&entry.id) != Some(&entry) {
            index.entries.insert(entry.id.clone(), entry);
        }
        if !defer_index {
            self.write_index(&mut index)?;
        }
        Ok(projection.next_change)
    }

    /// Writes a room's files.
    fn write_room(&self, p: &Projection) -> Result<Written, SinkError> {
        let id = &p.id;
        let tag = self.settings.oepl_tags.get(&p.room);
        let mut jpeg = None;
        for (i, size) in self.settings.config.png.iter().enumerate() {
            let image = self.image(p, *size);
            self.report_missing(p, &image.missing);
            let png = image
                .to_png()
                .map_err(|e| SinkError::fatal(format!("doorsign: {e}")))?;
            self.write_file(&format!("{id}-{}.png", size.label()), &png)?;
            if i == 0 {
                self.write_file(&format!("{id}.png"), &png)?;
            }
            if let Some((_, index)) = tag
                && *index == i
            {
                match image.to_jpeg() {
                    Ok(bytes) => jpeg = Some(bytes),
                    Err(e) => {
                        tracing::error!(room = %p.room, error = %e, "doorsign: no image for OpenEPaperLink")
                    }
                }
            }
        }
        let page = self
            .pages
            .room(p)
            .map_err(|e| SinkError::fatal(format!("doorsign: {e}")))?;
        self.write_file(&format!("{id}.html"), page.as_bytes())?;
        let json = serde_json::to_vec_pretty(p)
            .map_err(|e| SinkError::fatal(format!("doorsign: cannot encode room JSON: {e}")))?;
        // The JSON goes last: its presence marks a complete set.
        self.write_file(&format!("{id}.json"), &json)?;
        Ok(Written {
            json: Arc::new(json),
            jpeg,
        })
    }

    fn image(&self, p: &Projection, size: config::PngSize) -> raster::Image {
        raster::render(
            p,
            size,
            &self.fonts,
            html::labels(self.settings.config.language),
            &self.settings.tz,
            self.settings.config.language,
        )
    }

    /// Logs characters no font could draw, once per room and character.
    fn report_missing(&self, p: &Projection, missing: &[char]) {
        if missing.is_empty() {
            return;
        }
        let mut reported = lock(&self.missing_reported);
        let seen = reported.entry(p.room.clone()).or_default();
        let new: Vec<char> = missing
            .iter()
            .copied()
            .filter(|c| seen.insert(*c))
            .collect();
        if !new.is_empty() {
            let chars = new
                .iter()
                .map(|c| format!("U+{:04X}", u32::from(*c)))
                .collect::<Vec<_>>()
                .join(" ");
            tracing::warn!(room = %p.room, %chars, "doorsign: no font has these characters; the images show \"\u{FFFD}\" for them (add a font file to `fonts`)");
        }
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        let path = self.rooms_dir.join(name);
        atomic_write(&path, bytes, false).map_err(|e| io_error("write", &path, e))
    }

    /// Queues the room's content to every target that lacks it (not delivered, not queued).
    /// The payloads come from this render when there was one; otherwise the MQTT payload is the
    /// room's JSON file (what this content was written as) and the tag image is drawn anew
    /// (equal hashes draw equal images).
    fn queue_pushes(&self, p: &Projection, written: Option<Written>) {
        let Some(pusher) = &self.pusher else { return };
        let hash = p.content_hash.as_str();
        let (json, jpeg) = match written {
            Some(w) => (Some(w.json), w.jpeg),
            None => (None, None),
        };
        if let Some(mqtt) = &self.settings.config.mqtt
            && pusher.needs(TargetKind::Mqtt, &p.id, hash)
        {
            let payload = json
                .or_else(|| self.stored_json(p))
                .unwrap_or_else(|| Arc::new(serde_json::to_vec_pretty(p).unwrap_or_default()));
            let topic = mqtt
                .topic
                .replace("{room}", &p.id)
                .replace("{mailbox}", &p.room);
            pusher.push_mqtt(&p.id, hash, MqttItem { topic, payload });
        }
        if let Some((mac, index)) = self.settings.oepl_tags.get(&p.room)
            && pusher.needs(TargetKind::Oepl, &p.id, hash)
        {
            let jpeg = jpeg.or_else(|| {
                let size = *self.settings.config.png.get(*index)?;
                self.image(p, size)
                    .to_jpeg()
                    .map_err(|e| tracing::error!(room = %p.room, error = %e, "doorsign: no image for OpenEPaperLink"))
                    .ok()
            });
            if let Some(jpeg) = jpeg {
                pusher.push_oepl(
                    &p.id,
                    hash,
                    OeplItem {
                        mac: mac.clone(),
                        jpeg,
                    },
                );
            }
        }
    }

    /// The room's JSON file when it holds exactly this content.
    fn stored_json(&self, p: &Projection) -> Option<Arc<Vec<u8>>> {
        let bytes = std::fs::read(self.rooms_dir.join(format!("{}.json", p.id))).ok()?;
        let stored: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        (stored.get("content_hash")?.as_str()? == p.content_hash).then(|| Arc::new(bytes))
    }

    fn write_index(&self, index: &mut IndexState) -> Result<(), SinkError> {
        let mut rooms: Vec<IndexEntry> = index.entries.values().cloned().collect();
        rooms.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
        let json = serde_json::to_vec_pretty(&serde_json::json!({
            "schema_version": INDEX_SCHEMA_VERSION,
            "rooms": rooms,
        }))
        .map_err(|e| SinkError::fatal(format!("doorsign: cannot encode index: {e}")))?;
        if index.written.as_deref() == Some(json.as_slice()) {
            return Ok(());
        }
        let page = self
            .pages
            .index(&rooms)
            .map_err(|e| SinkError::fatal(format!("doorsign: {e}")))?;
        let dir = &self.settings.config.out_dir;
        write_if_changed(&dir.join("index.html"), page.as_bytes())?;
        write_if_changed(&dir.join("index.json"), &json)?;
        index.written = Some(json);
        Ok(())
    }

    fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        lock(&self.wakeups).values().min().copied()
    }

    fn fingerprint(settings: &Settings) -> String {
        let c = &settings.config;
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "language": c.language,
            "theme": c.theme,
            "time_zone": settings.tz.name(),
            "refresh_seconds": c.refresh_seconds,
            "private_text": settings.private_text,
            "png": c.png,
            "fonts": (&c.fonts, c.system_fonts),
            "mqtt": c.mqtt.as_ref().map(|m| (&m.url, &m.topic, m.retain)),
            "openepaperlink": c.openepaperlink.as_ref().map(|o| (&o.url, o.dither, &settings.oepl_tags)),
        })
        .to_string()
    }
}

impl Sink for DoorSign {
    const NAME: &'static str = "doorsign";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CONFIG_SCHEMA: &'static str = config::CONFIG_SCHEMA;

    fn check(config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
        config::parse(config).map(|(_, warnings)| warnings)
    }

    fn create(config: serde_json::Value) -> Result<Self, SinkError> {
        let (settings, warnings) = config::parse(&config)?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        let out_dir = settings.config.out_dir.clone();
        let rooms_dir = out_dir.join("rooms");
        std::fs::create_dir_all(&rooms_dir).map_err(|e| io_error("create", &rooms_dir, e))?;
        let store = Store::new(&out_dir);
        store
            .create_dir()
            .map_err(|e| io_error("create", store.dir(), e))?;
        let c = &settings.config;
        let rules = Rules {
            tz: settings.tz,
            language: c.language,
            starting_soon: Duration::minutes(i64::from(c.starting_soon_minutes)),
            ending_soon: Duration::minutes(i64::from(c.ending_soon_minutes)),
            stale_after: Duration::minutes(i64::from(c.stale_after_minutes)),
            private_text: settings.private_text.clone(),
            hide_subjects: c.hide_subjects,
        };
        let pages = Pages::new(c.language, c.theme, settings.tz, c.refresh_seconds)
            .map_err(|e| SinkError::fatal(format!("doorsign: {e}")))?;
        let system: &[&str] = if c.system_fonts {
            text::SYSTEM_FONTS
        } else {
            &[]
        };
        let fonts = Fonts::new(&c.fonts, system).map_err(|e| match e {
            text::FontError::File { .. } => SinkError::config(format!("doorsign: `fonts`: {e}")),
            text::FontError::Embedded(_) => SinkError::fatal(format!("doorsign: {e}")),
        })?;
        let (loaded, problems) = store
            .load_all()
            .map_err(|e| io_error("read", store.dir(), e))?;
        for problem in problems {
            tracing::warn!(%problem, "doorsign: unreadable room state skipped; the next snapshot rebuilds it");
        }
        let pusher = Pusher::start(&settings)?;
        let fingerprint = Self::fingerprint(&settings);
        let sink = DoorSign {
            rules,
            pages,
            fonts,
            fingerprint,
            store,
            rooms_dir,
            rooms: Mutex::new(HashMap::new()),
            health: Mutex::new(HashMap::new()),
            wakeups: Mutex::new(HashMap::new()),
            index: Mutex::new(IndexState::default()),
            pusher,
            missing_reported: Mutex::new(HashMap::new()),
            settings,
        };
        // Show what was remembered right away (a restart receives only deltas).
        let now = sink.now();
        for room in loaded {
            let mailbox = room.mailbox.clone();
            let shared = Arc::new(Mutex::new(room));
            lock(&sink.rooms).insert(mailbox, shared.clone());
            let mut room = lock(&shared);
            sink.refresh(&mut room, now, false, true)?;
        }
        sink.write_index(&mut lock(&sink.index))?;
        tracing::info!(out_dir = %sink.out_dir().display(), rooms = lock(&sink.rooms).len(), "doorsign sink ready");
        Ok(sink)
    }

    fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
        let mailbox = match normalize_mailbox(&batch.mailbox) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("doorsign: {e}");
                let mut rejected: Vec<ItemFailure> = batch
                    .upserts
                    .iter()
                    .map(|ev| ItemFailure {
                        key: ev.key().clone(),
                        reason: reason.clone(),
                    })
                    .collect();
                rejected.extend(batch.deletes.iter().map(|k| ItemFailure {
                    key: k.clone(),
                    reason: reason.clone(),
                }));
                return Ok(SinkResult {
                    schema_version: SCHEMA_VERSION,
                    rejected,
                    next_wakeup: self.next_wakeup(),
                    ..SinkResult::default()
                });
            }
        };
        // A batch is proof the route just read this mailbox.
        if let Some(entries) = lock(&self.health).get_mut(&mailbox) {
            for entry in entries.iter_mut().filter(|h| h.route == batch.route) {
                entry.failing_since = None;
            }
        }
        let now = self.now();
        let shared = self.room(&mailbox);
        let mut room = lock(&shared);
        let applied = room.apply(&batch);
        let pruned = room.prune(now - Duration::days(KEEP_PAST_DAYS));
        self.refresh(&mut room, now, applied.changed || pruned, false)?;
        drop(room);
        Ok(SinkResult {
            schema_version: SCHEMA_VERSION,
            accepted: applied.accepted,
            rejected: applied.rejected,
            retryable: Vec::new(),
            next_wakeup: self.next_wakeup(),
        })
    }

    fn flush(&self) -> Result<(), SinkError> {
        // Room states are synced before each rename; make the renames durable too.
        self.store
            .sync_dir()
            .map_err(|e| io_error("sync", self.store.dir(), e))
    }

    fn tick(&self, tick: Tick) -> Result<TickResult, SinkError> {
        let mut health: HashMap<String, Vec<MailboxHealth>> = HashMap::new();
        for entry in tick.mailboxes {
            if let Ok(mailbox) = normalize_mailbox(&entry.mailbox) {
                health.entry(mailbox).or_default().push(entry);
            }
        }
        let served: Vec<String> = health.keys().cloned().collect();
        *lock(&self.health) = health;
        for mailbox in served {
            self.room(&mailbox);
        }
        let now = self.settings.config.clock.unwrap_or(tick.now);
        let rooms: Vec<Arc<Mutex<RoomState>>> = lock(&self.rooms).values().cloned().collect();
        for shared in rooms {
            let mut room = lock(&shared);
            let pruned = room.prune(now - Duration::days(KEEP_PAST_DAYS));
            self.refresh(&mut room, now, pruned, true)?;
        }
        self.write_index(&mut lock(&self.index))?;
        Ok(TickResult {
            next_wakeup: self.next_wakeup(),
        })
    }
}

calpump_plugin::sink_table!(DoorSign);
