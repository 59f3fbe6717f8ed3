//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use calpump_plugin::{
    Batch, BatchKind, Event, EventIdentity, EventKey, GlobalObjectId, Person, SCHEMA_VERSION,
    SourceIds, Window,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

pub const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

pub fn goid(n: u32) -> GlobalObjectId {
    let mut bytes = vec![
        0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0,
        0x08,
    ];
    bytes.extend_from_slice(&[0; 20]);
    bytes.extend_from_slice(&n.to_be_bytes());
    GlobalObjectId::from_bytes(&bytes).expect("goid")
}

/// Berlin local time on Saturday 2026-11-28.
pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2026, 11, 28, h, m, 0)
        .single()
        .expect("time")
        .with_timezone(&Utc)
}

pub fn event(
    mailbox: &str,
    n: u32,
    subject: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Event {
    let id = EventIdentity::new(mailbox, goid(n), None).expect("identity");
    let mut e = Event::new(
        id,
        "default",
        SourceIds {
            backend: "graph".into(),
            item_id: format!("item-{n}"),
            change_key: None,
        },
        subject,
        start,
        end,
    )
    .expect("event");
    e.organizer = Some(Person {
        name: Some("Ann Organizer".into()),
        email: Some("ann@contoso.com".into()),
    });
    e
}

pub fn batch(
    mailbox: &str,
    name: Option<&str>,
    kind: BatchKind,
    upserts: Vec<Event>,
    deletes: Vec<EventKey>,
) -> Batch {
    let window_start = upserts
        .iter()
        .map(|e| e.start)
        .min()
        .unwrap_or_else(|| at(0, 0))
        - Duration::days(1);
    Batch {
        schema_version: SCHEMA_VERSION,
        run_id: "run-1".into(),
        route: "rooms".into(),
        mailbox: mailbox.into(),
        mailbox_name: name.map(str::to_string),
        calendar: "default".into(),
        kind,
        window: Window {
            start: window_start,
            end: window_start + Duration::days(15),
        },
        upserts,
        deletes,
        complete: kind == BatchKind::Snapshot,
    }
}

/// A config with a frozen clock at 09:30 Berlin, merged with `extra`.
pub fn config(out_dir: &Path, extra: serde_json::Value) -> serde_json::Value {
    let mut base = serde_json::json!({
        "out_dir": out_dir,
        "time_zone": "Europe/Berlin",
        "clock": at(9, 30),
        "png": [
            { "width": 296, "height": 128, "palette": "bw" },
            { "width": 400, "height": 300, "palette": "bwr" },
            { "width": 800, "height": 480, "palette": "bwr" }
        ]
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// Every file under `dir` (relative path → bytes), temporary files excluded.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("prefix").to_path_buf();
                assert!(
                    !rel.to_string_lossy().ends_with(".tmp"),
                    "temporary file left behind: {}",
                    rel.display()
                );
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

pub fn room_json(out_dir: &Path, id: &str) -> serde_json::Value {
    let bytes = std::fs::read(out_dir.join("rooms").join(format!("{id}.json"))).expect("room json");
    serde_json::from_slice(&bytes).expect("json")
}

#[cfg(unix)]
pub fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("metadata").ino()
}
