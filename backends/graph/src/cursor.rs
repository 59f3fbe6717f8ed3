//! What a calendar's cursor holds between syncs (the engine stores it as opaque text next to
//! the window it covers).
//!
//! ```json
//! {"v":1,
//!  "link":"https://graph.microsoft.com/v1.0/users/…/calendarView/delta?$deltatoken=…",
//!  "known":{"3f2a…":["ev1-…","9b1c…"]},
//!  "goids":{"9b1c…":"BAAAAIIA4AB0xbcQGoLgCA…"}}
//! ```
//!
//! - `link`: the `@odata.deltaLink` of the last completed round; `None` right after a full
//!   calendarView read (the next sync starts a delta round).
//! - `known`: every instance delivered for the window — a short hash of its item id → its
//!   event key and the hash of its series master's id (empty for single instances). A delta's
//!   `@removed` id becomes a removal by key only when it is known, so removals of events that
//!   were never in the window (Graph reports changes outside the window as `@removed` too) are
//!   dropped here; a removed series master removes its known instances.
//! - `goids`: the base64 global object id of each single instance and series master in the
//!   window, by id hash. Delta rounds cannot `$expand` the extended property, so this is what
//!   lets a delta entry be keyed without another request.
//!
//! Item ids are hashed (SHA-256, first 8 bytes, hex): a cursor of a room with 100 instances
//! stays around 10 KB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const VERSION: u32 = 1;

/// The cursor's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Instance id hash → (event key, series master id hash or "").
    #[serde(default)]
    pub known: BTreeMap<String, (String, String)>,
    /// Single instance or series master id hash → base64 global object id.
    #[serde(default)]
    pub goids: BTreeMap<String, String>,
}

impl CursorState {
    pub fn new() -> Self {
        Self {
            v: VERSION,
            ..Self::default()
        }
    }

    /// Reads a stored cursor; `None` for text of another version or shape (then the calendar is
    /// read in full).
    pub fn parse(text: &str) -> Option<Self> {
        let state: Self = serde_json::from_str(text).ok()?;
        (state.v == VERSION).then_some(state)
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn goid(&self, id: &str) -> Option<&str> {
        self.goids.get(&id_hash(id)).map(String::as_str)
    }

    /// Whether `id` is the master of a known instance.
    pub fn is_known_master(&self, id: &str) -> bool {
        let hash = id_hash(id);
        self.known.values().any(|(_, master)| *master == hash)
    }

    /// The keys of the known instances of a series.
    pub fn instances_of(&self, master_id: &str) -> Vec<(String, String)> {
        let hash = id_hash(master_id);
        self.known
            .iter()
            .filter(|(_, (_, master))| *master == hash)
            .map(|(id, (key, _))| (id.clone(), key.clone()))
            .collect()
    }
}

/// A short, stable hash of an item id.
pub fn id_hash(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_versions() {
        let mut s = CursorState::new();
        s.link = Some("https://graph.microsoft.com/v1.0/x?$deltatoken=a".into());
        s.known
            .insert(id_hash("O1"), ("ev1-1".into(), id_hash("M")));
        s.goids.insert(id_hash("M"), "BAAA".into());
        let back = CursorState::parse(&s.to_text()).expect("parses");
        assert_eq!(back, s);
        assert!(back.is_known_master("M"));
        assert!(!back.is_known_master("O1"));
        assert_eq!(
            back.instances_of("M"),
            vec![(id_hash("O1"), "ev1-1".to_string())]
        );
        assert_eq!(back.goid("M"), Some("BAAA"));
        assert!(CursorState::parse("{\"v\":99}").is_none());
        assert!(CursorState::parse("not json").is_none());
        assert_eq!(id_hash("x").len(), 16);
    }
}
