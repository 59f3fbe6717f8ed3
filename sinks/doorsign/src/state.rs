//! What the sink remembers per room — every event of every calendar of the room — and how it
//! survives a restart: one JSON file per room under `out_dir/.state/rooms/`, written atomically.
//!
//! A restarted `calpump run` receives only deltas from the engine (its cursors moved on), so
//! without this a door sign would forget every meeting that did not change since.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use calpump_plugin::{Batch, BatchKind, Event, EventKey, ItemFailure, normalize_mailbox};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the state files. 2 added `read`; version-1 files are read as `read` when they
/// hold events (they came from batches).
pub const STATE_SCHEMA_VERSION: u32 = 2;

/// A file- and URL-safe, stable id for a mailbox address: lower-case `[a-z0-9.-]` kept, `@`
/// becomes `_at_`, every other byte `_xx` (hex). Injective, so two rooms never share an id;
/// very long ids are cut and end in a hash of the whole address.
pub fn slug(mailbox: &str) -> String {
    let lower = mailbox.trim().to_lowercase();
    let mut out = String::with_capacity(lower.len() + 4);
    for (i, b) in lower.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => out.push(b as char),
            b'.' if i > 0 => out.push('.'),
            b'@' => out.push_str("_at_"),
            _ => out.push_str(&format!("_{b:02x}")),
        }
    }
    if out.len() > 150 {
        let digest = Sha256::digest(lower.as_bytes());
        out.truncate(120);
        while !out.is_char_boundary(out.len()) {
            out.pop();
        }
        out.push('-');
        out.push_str(&hex::encode(&digest[..8]));
    }
    out
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
/// With `durable`, the file is synced before the rename.
pub fn atomic_write(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        unique_counter()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn unique_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One room's remembered events and what was last rendered for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomState {
    pub schema_version: u32,
    pub mailbox: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Event key → event, across all calendars of the room.
    #[serde(default)]
    pub events: BTreeMap<String, Event>,
    /// Content hash of the last rendered outputs.
    #[serde(default)]
    pub rendered_hash: Option<String>,
    /// Whether a batch of this room was ever applied (its calendar was read at least once).
    #[serde(default)]
    pub read: bool,
}

/// The outcome of applying one batch.
#[derive(Debug, Default)]
pub struct Applied {
    pub accepted: Vec<EventKey>,
    pub rejected: Vec<ItemFailure>,
    /// Whether the remembered state changed (and must be saved).
    pub changed: bool,
}

impl RoomState {
    pub fn new(mailbox: &str) -> Self {
        Self {
            schema_version: STATE_SCHEMA_VERSION,
            mailbox: mailbox.to_string(),
            name: None,
            events: BTreeMap::new(),
            rendered_hash: None,
            read: false,
        }
    }

    /// Applies a batch of this room: a complete snapshot replaces what the room held for that
    /// calendar inside the window; anything else only upserts and deletes by key. Replaying a
    /// batch changes nothing.
    pub fn apply(&mut self, batch: &Batch) -> Applied {
        let mut applied = Applied::default();
        if !self.read {
            self.read = true;
            applied.changed = true;
        }
        if let Some(name) = batch.mailbox_name.as_deref().map(str::trim)
            && !name.is_empty()
            && self.name.as_deref() != Some(name)
        {
            self.name = Some(name.to_string());
            applied.changed = true;
        }
        let mut incoming = Vec::with_capacity(batch.upserts.len());
        for event in &batch.upserts {
            if event.mailbox() != self.mailbox {
                applied.rejected.push(ItemFailure {
                    key: event.key().clone(),
                    reason: format!(
                        "event belongs to mailbox {}, the batch to {}",
                        event.mailbox(),
                        self.mailbox
                    ),
                });
            } else {
                incoming.push(event);
            }
        }
        if batch.kind == BatchKind::Snapshot && batch.complete {
            let keep: HashSet<&str> = incoming.iter().map(|e| e.key().as_str()).collect();
            let before = self.events.len();
            self.events.retain(|key, event| {
                keep.contains(key.as_str())
                    || event.calendar != batch.calendar
                    || !event.overlaps(&batch.window)
            });
            applied.changed |= self.events.len() != before;
        }
        for event in incoming {
            let key = event.key().as_str();
            if self.events.get(key) != Some(event) {
                self.events.insert(key.to_string(), event.clone());
                applied.changed = true;
            }
            applied.accepted.push(event.key().clone());
        }
        for key in &batch.deletes {
            applied.changed |= self.events.remove(key.as_str()).is_some();
            applied.accepted.push(key.clone());
        }
        applied
    }

    /// Forgets events that ended before `before`. Returns whether any were dropped.
    pub fn prune(&mut self, before: DateTime<Utc>) -> bool {
        let count = self.events.len();
        self.events.retain(|_, e| e.end >= before);
        self.events.len() != count
    }
}

/// The per-room state files under `out_dir/.state/rooms/`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(out_dir: &Path) -> Self {
        Self {
            dir: out_dir.join(".state").join("rooms"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, mailbox: &str) -> PathBuf {
        self.dir.join(format!("{}.json", slug(mailbox)))
    }

    /// Loads every room. A file that cannot be read is reported in the second list and
    /// skipped (the room is rebuilt by the next snapshot), never fatal.
    pub fn load_all(&self) -> io::Result<(Vec<RoomState>, Vec<String>)> {
        let mut rooms = Vec::new();
        let mut problems = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((rooms, problems)),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<RoomState>(&bytes).map_err(|e| e.to_string())
                })
                .and_then(|room| {
                    normalize_mailbox(&room.mailbox)
                        .map(|_| room)
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(mut room) => {
                    if room.schema_version < 2 {
                        room.read = !room.events.is_empty();
                        room.schema_version = STATE_SCHEMA_VERSION;
                    }
                    rooms.push(room)
                }
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        rooms.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
        Ok((rooms, problems))
    }

    /// Creates the state directory, readable by the owner only: it holds the raw events,
    /// private subjects included.
    pub fn create_dir(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Some(state_root) = self.dir.parent() {
                fs::set_permissions(state_root, fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(())
    }

    pub fn save(&self, room: &RoomState) -> io::Result<()> {
        if !self.dir.is_dir() {
            self.create_dir()?;
        }
        let bytes = serde_json::to_vec(room).map_err(io::Error::other)?;
        atomic_write(&self.path(&room.mailbox), &bytes, true)
    }

    /// Syncs the state directory itself, so renames done so far survive a power cut.
    pub fn sync_dir(&self) -> io::Result<()> {
        match fs::File::open(&self.dir) {
            Ok(dir) => dir.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calpump_plugin::{EventIdentity, GlobalObjectId, SCHEMA_VERSION, SourceIds, Window};
    use chrono::TimeZone;

    #[test]
    fn slugs_are_safe_stable_and_distinct() {
        assert_eq!(slug("Room-1.01@Contoso.com"), "room-1.01_at_contoso.com");
        assert_eq!(slug("a_b@x.de"), "a_5fb_at_x.de");
        assert_ne!(slug("a.b@x"), slug("a-b@x"));
        assert_ne!(slug("a_b@x"), slug("a_5fb@x"));
        let odd = slug("../ü+x@y");
        assert!(
            odd.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{odd}"
        );
        assert!(!odd.starts_with('.'));
        let long = format!("{}@x.com", "a".repeat(300));
        assert!(slug(&long).len() <= 150);
        assert_ne!(slug(&long), slug(&format!("{}@x.com", "a".repeat(301))));
    }

    fn goid(n: u8) -> GlobalObjectId {
        let mut bytes = vec![7u8; 20];
        bytes.push(n);
        GlobalObjectId::from_bytes(&bytes).expect("goid")
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, 0, 0)
            .single()
            .expect("t")
    }

    fn ev(n: u8, calendar: &str, h: u32) -> Event {
        let id = EventIdentity::new("room@x.com", goid(n), None).expect("id");
        Event::new(
            id,
            calendar,
            SourceIds::default(),
            format!("m{n}"),
            at(h),
            at(h + 1),
        )
        .expect("ev")
    }

    fn batch(
        kind: BatchKind,
        calendar: &str,
        complete: bool,
        upserts: Vec<Event>,
        deletes: Vec<EventKey>,
    ) -> Batch {
        Batch {
            schema_version: SCHEMA_VERSION,
            run_id: "r".into(),
            route: "rooms".into(),
            mailbox: "room@x.com".into(),
            mailbox_name: Some("Room".into()),
            calendar: calendar.into(),
            kind,
            window: Window {
                start: at(0),
                end: at(20),
            },
            upserts,
            deletes,
            complete,
        }
    }

    #[test]
    fn snapshot_delta_and_replay() {
        let mut room = RoomState::new("room@x.com");
        let first = batch(
            BatchKind::Snapshot,
            "default",
            true,
            vec![ev(1, "default", 9), ev(2, "default", 11)],
            vec![],
        );
        assert!(!room.read);
        assert!(room.apply(&first).changed);
        assert!(room.read, "a batch is a read");
        assert!(!room.apply(&first).changed, "replay is idempotent");
        assert_eq!(room.name.as_deref(), Some("Room"));

        // Another calendar of the same room is kept apart.
        let other = batch(
            BatchKind::Snapshot,
            "Bookings",
            true,
            vec![ev(3, "Bookings", 13)],
            vec![],
        );
        room.apply(&other);
        assert_eq!(room.events.len(), 3);

        // A complete snapshot without event 2 removes it, but only in its own calendar.
        let second = batch(
            BatchKind::Snapshot,
            "default",
            true,
            vec![ev(1, "default", 9)],
            vec![],
        );
        assert!(room.apply(&second).changed);
        assert_eq!(room.events.len(), 2);
        assert!(room.events.values().any(|e| e.calendar == "Bookings"));

        // An incomplete snapshot only upserts.
        let partial = batch(
            BatchKind::Snapshot,
            "default",
            false,
            vec![ev(4, "default", 15)],
            vec![],
        );
        room.apply(&partial);
        assert_eq!(room.events.len(), 3);

        // Deltas upsert and delete by key; deleting twice is fine.
        let key = ev(4, "default", 15).key().clone();
        let del = batch(
            BatchKind::Delta,
            "default",
            false,
            vec![],
            vec![key.clone()],
        );
        let applied = room.apply(&del);
        assert!(applied.changed);
        assert_eq!(applied.accepted, vec![key]);
        assert!(!room.apply(&del).changed);

        // Events outside the snapshot's window survive it.
        let mut early = ev(5, "default", 0);
        early.start = at(0) - chrono::Duration::days(3);
        early.end = early.start + chrono::Duration::hours(1);
        room.apply(&batch(
            BatchKind::Delta,
            "default",
            false,
            vec![early],
            vec![],
        ));
        room.apply(&second);
        assert_eq!(room.events.len(), 3);
        assert!(room.prune(at(0) - chrono::Duration::days(2)));
        assert_eq!(room.events.len(), 2);
    }

    #[test]
    fn foreign_events_are_rejected() {
        let mut room = RoomState::new("room@x.com");
        let id = EventIdentity::new("other@x.com", goid(9), None).expect("id");
        let foreign =
            Event::new(id, "default", SourceIds::default(), "x", at(9), at(10)).expect("ev");
        let applied = room.apply(&batch(
            BatchKind::Delta,
            "default",
            false,
            vec![foreign],
            vec![],
        ));
        assert_eq!(applied.rejected.len(), 1);
        assert!(room.events.is_empty());
    }

    #[test]
    fn store_round_trip_and_broken_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::new(dir.path());
        let mut room = RoomState::new("room@x.com");
        room.apply(&batch(
            BatchKind::Snapshot,
            "default",
            true,
            vec![ev(1, "default", 9)],
            vec![],
        ));
        store.save(&room).expect("save");
        std::fs::write(store.dir().join("broken.json"), b"{nope").expect("write");
        let (rooms, problems) = store.load_all().expect("load");
        assert_eq!(rooms, vec![room.clone()]);
        assert_eq!(problems.len(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(store.dir())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());

        // A version-1 file (no `read`) with events came from batches: it counts as read.
        let mut v1 = serde_json::to_value(&room).expect("json");
        v1["schema_version"] = 1.into();
        v1.as_object_mut().expect("obj").remove("read");
        std::fs::write(store.path("room@x.com"), v1.to_string()).expect("write");
        let mut empty = serde_json::to_value(RoomState::new("empty@x.com")).expect("json");
        empty["schema_version"] = 1.into();
        empty.as_object_mut().expect("obj").remove("read");
        std::fs::write(store.path("empty@x.com"), empty.to_string()).expect("write");
        let (rooms, _) = store.load_all().expect("load");
        let read: Vec<(&str, bool)> = rooms.iter().map(|r| (r.mailbox.as_str(), r.read)).collect();
        assert_eq!(read, [("empty@x.com", false), ("room@x.com", true)]);
    }
}
