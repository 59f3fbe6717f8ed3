//! Moving a route's state from one backend to another (`calpump migrate switch`), and the
//! switch's record in the run history.
//!
//! State is keyed by (route, mailbox, calendar, backend). A switch from backend A to B:
//! * leaves A's rows as they are (cursors and item index);
//! * gives every calendar of the route a B row **without a cursor** — the next sync through B
//!   reads each calendar in full, and since event keys do not depend on the backend and sinks
//!   write only when an event's content hash changed, that full read changes nothing that did
//!   not change;
//! * carries A's item index over as B's, under item ids that cannot collide with B's own
//!   (`migrated:<A>:<id>`): B's event count — what the empty-calendar guard compares a snapshot
//!   with — equals A's, so a calendar that suddenly reads empty through B is held back exactly
//!   as it would have been through A. The first complete snapshot through B replaces the index
//!   with B's item ids.
//!
//! When A and B are the same backend (two profiles of one backend) the rows are shared: the
//! cursors are cleared and the index is kept.
//!
//! `--back` is such a switch too, from B back to A: A's rows get no cursor and B's item index.
//! A's cursors stopped at the first switch; they say nothing of what B delivered since (a
//! stale delta token or SyncState would skip or replay changes, and A's index would not know
//! the items created meanwhile), so A starts with a full read like any new backend — the sinks,
//! which hold every event under its backend-neutral key, change only what differs.
//!
//! The switch is recorded in the route's run history as an entry of kind
//! [`RunKind::Switch`] (an event, not an error): its note says from → to, by whom and when, its
//! data holds the [`SwitchRecord`] (profiles and backends), which `--back` reads. Entries from
//! before schema version 2 (a run carrying `sync.BackendSwitched` among its errors, its detail
//! ending in the tag `[from=<profile>/<backend> to=<profile>/<backend> back=<bool>]`) are
//! turned into switch entries by the state store's migration; their tag is still read.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::state::{
    CalendarCommit, CalendarKey, HistoryFilter, IndexChange, RunCounts, RunKind, RunRecord,
    RunStatus, StateError, StateStore,
};

/// The prefix of the item ids a switch carries over.
pub const MIGRATED_PREFIX: &str = "migrated:";

/// What [`move_state`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MoveSummary {
    /// Calendars given a row for the new backend (or whose cursor was cleared).
    pub calendars: usize,
    /// Events in their item indexes (the guard's counts carried over).
    pub events: u64,
    /// Cursors of the new backend that were dropped (left from an earlier switch).
    pub cursors_dropped: usize,
}

/// Gives route `route` fresh state for `to_backend` from its state for `from_backend`. See the
/// module documentation.
pub async fn move_state(
    state: &dyn StateStore,
    route: &str,
    from_backend: &str,
    to_backend: &str,
) -> Result<MoveSummary, StateError> {
    let mut summary = MoveSummary::default();
    let rows = state.calendars(Some(route)).await?;
    let now = Utc::now();
    let mut moved: Vec<(String, String)> = Vec::new();
    for (key, _) in rows.iter().filter(|(k, _)| k.backend == from_backend) {
        let index = state.item_index(key).await?;
        let items: Vec<(String, calpump_plugin::EventKey)> = if from_backend == to_backend {
            index.into_iter().collect()
        } else {
            index
                .into_iter()
                .map(|(id, k)| {
                    // Ids already carried over once keep their original form.
                    let original = id
                        .strip_prefix(MIGRATED_PREFIX)
                        .and_then(|rest| rest.split_once(':').map(|(_, id)| id.to_string()))
                        .unwrap_or(id);
                    (format!("{MIGRATED_PREFIX}{from_backend}:{original}"), k)
                })
                .collect()
        };
        let target = CalendarKey {
            backend: to_backend.to_string(),
            ..key.clone()
        };
        if rows.iter().any(|(k, s)| k == &target && s.cursor.is_some()) {
            summary.cursors_dropped += 1;
        }
        summary.calendars += 1;
        summary.events += items.len() as u64;
        state
            .commit_calendar(&CalendarCommit {
                key: target,
                cursor: None,
                index: IndexChange::Replace(items),
                at: now,
            })
            .await?;
        moved.push((key.mailbox.clone(), key.calendar.clone()));
    }
    // Rows of the new backend the old one has no counterpart for (left from an earlier switch):
    // their cursors are stale too.
    if from_backend != to_backend {
        for (key, st) in rows.iter().filter(|(k, _)| k.backend == to_backend) {
            if moved.contains(&(key.mailbox.clone(), key.calendar.clone())) || st.cursor.is_none() {
                continue;
            }
            let index = state.item_index(key).await?;
            summary.cursors_dropped += 1;
            state
                .commit_calendar(&CalendarCommit {
                    key: key.clone(),
                    cursor: None,
                    index: IndexChange::Replace(index.into_iter().collect()),
                    at: now,
                })
                .await?;
        }
    }
    Ok(summary)
}

/// A switch as recorded in the run history (the entry's data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    /// The history entry's id.
    #[serde(skip)]
    pub run_id: String,
    /// When the switch was made (the entry's start).
    #[serde(skip)]
    pub at: DateTime<Utc>,
    pub from_profile: String,
    pub from_backend: String,
    pub to_profile: String,
    pub to_backend: String,
    /// This switch was a `--back`.
    pub back: bool,
    /// Who switched (e.g. `alice@pump-host`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl SwitchRecord {
    /// The entry's note: from → to, by whom, when, and what the state move did.
    fn note(&self, route: &str, moved: &MoveSummary) -> String {
        let by = self
            .by
            .as_deref()
            .map(|by| format!(" by {by}"))
            .unwrap_or_default();
        let what = format!(
            "{} calendars, {} events carried over; the next sync reads in full",
            moved.calendars, moved.events
        );
        format!(
            "route {route} switched{}: {} ({}) → {} ({}){by} at {}; {what}",
            if self.back { " back" } else { "" },
            self.from_profile,
            self.from_backend,
            self.to_profile,
            self.to_backend,
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    }

    /// From a switch entry: its data, else the tag of an entry recorded before schema
    /// version 2 (`… [from=<profile>/<backend> to=<profile>/<backend> back=<bool>]`).
    fn from_entry(run: &RunRecord) -> Option<Self> {
        let parsed = match &run.data {
            Some(data) => serde_json::from_value::<Self>(data.clone()).ok(),
            None => run.note.as_deref().and_then(Self::parse_legacy_tag),
        };
        parsed.map(|record| Self {
            run_id: run.id.clone(),
            at: run.started_at,
            ..record
        })
    }

    fn parse_legacy_tag(detail: &str) -> Option<Self> {
        let tag = &detail[detail.rfind("[from=")?..];
        let tag = tag.strip_prefix('[')?.strip_suffix(']')?;
        let mut from = None;
        let mut to = None;
        let mut back = None;
        for part in tag.split(' ') {
            let (k, v) = part.split_once('=')?;
            match k {
                "from" => from = v.split_once('/'),
                "to" => to = v.split_once('/'),
                "back" => back = v.parse().ok(),
                _ => {}
            }
        }
        let ((fp, fb), (tp, tb)) = (from?, to?);
        Some(Self {
            run_id: String::new(),
            at: DateTime::<Utc>::default(),
            from_profile: fp.to_string(),
            from_backend: fb.to_string(),
            to_profile: tp.to_string(),
            to_backend: tb.to_string(),
            back: back?,
            by: None,
        })
    }
}

/// Records a switch in the route's run history (kind [`RunKind::Switch`], with a note and the
/// record as data); returns the record (with its entry id). `by` names who switched.
pub async fn record_switch(
    state: &dyn StateStore,
    route: &str,
    from: (&str, &str),
    to: (&str, &str),
    back: bool,
    by: Option<&str>,
    moved: &MoveSummary,
) -> Result<SwitchRecord, StateError> {
    // Milliseconds: what the run history keeps.
    let now = Utc::now();
    let at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let record = SwitchRecord {
        run_id: format!("switch-{}", crate::runner::new_run_id(at)),
        at,
        from_profile: from.0.to_string(),
        from_backend: from.1.to_string(),
        to_profile: to.0.to_string(),
        to_backend: to.1.to_string(),
        back,
        by: by.map(str::to_string),
    };
    let data = serde_json::to_value(&record).map_err(|e| StateError::Corrupt {
        what: "runs.data_json",
        detail: e.to_string(),
    })?;
    state
        .record_event(&RunRecord {
            id: record.run_id.clone(),
            route: route.to_string(),
            kind: RunKind::Switch,
            started_at: at,
            finished_at: Some(at),
            status: RunStatus::Ok,
            counts: RunCounts {
                calendars: moved.calendars as u64,
                ..RunCounts::default()
            },
            errors: Vec::new(),
            note: Some(record.note(route, moved)),
            data: Some(data),
        })
        .await?;
    Ok(record)
}

/// The route's most recent switch, if any.
pub async fn last_switch(
    state: &dyn StateStore,
    route: &str,
) -> Result<Option<SwitchRecord>, StateError> {
    let switches = state
        .history(Some(route), HistoryFilter::Kind(RunKind::Switch), 20)
        .await?;
    Ok(switches.iter().find_map(SwitchRecord::from_entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Cursor;
    use crate::state::SqliteStateStore;
    use calpump_plugin::{EventKey, Window};

    fn key(backend: &str, mailbox: &str) -> CalendarKey {
        CalendarKey {
            route: "rooms".into(),
            mailbox: mailbox.into(),
            calendar: "default".into(),
            backend: backend.into(),
        }
    }

    fn cursor(v: &str) -> Option<Cursor> {
        let t = Utc::now();
        Some(Cursor {
            value: v.into(),
            window: Window { start: t, end: t },
        })
    }

    #[tokio::test]
    async fn a_switch_starts_the_new_backend_without_cursors_and_with_the_guard_counts() {
        let store = SqliteStateStore::in_memory().await.expect("store");
        for (mailbox, n) in [("a@x.com", 3), ("b@x.com", 2)] {
            store
                .commit_calendar(&CalendarCommit {
                    key: key("ews", mailbox),
                    cursor: cursor("sync-state"),
                    index: IndexChange::Replace(
                        (0..n)
                            .map(|i| {
                                (
                                    format!("AAMk{i}"),
                                    EventKey::from_stored(format!("ev1-{mailbox}-{i}")),
                                )
                            })
                            .collect(),
                    ),
                    at: Utc::now(),
                })
                .await
                .expect("commit");
        }
        // A stale Graph row from an earlier switch.
        store
            .commit_calendar(&CalendarCommit {
                key: key("graph", "a@x.com"),
                cursor: cursor("old-delta-link"),
                index: IndexChange::Replace(vec![]),
                at: Utc::now(),
            })
            .await
            .expect("commit");

        let moved = move_state(&store, "rooms", "ews", "graph")
            .await
            .expect("move");
        assert_eq!(
            moved,
            MoveSummary {
                calendars: 2,
                events: 5,
                cursors_dropped: 1
            }
        );
        let a = store
            .calendar_state(&key("graph", "a@x.com"))
            .await
            .expect("a");
        assert!(
            a.cursor.is_none(),
            "the new backend starts without a cursor"
        );
        assert_eq!(a.event_count, 3, "the guard's count carries over");
        let index = store
            .item_index(&key("graph", "a@x.com"))
            .await
            .expect("index");
        assert!(index.keys().all(|id| id.starts_with("migrated:ews:AAMk")));
        let old = store
            .calendar_state(&key("ews", "a@x.com"))
            .await
            .expect("old");
        assert_eq!(
            old.cursor.map(|c| c.value).as_deref(),
            Some("sync-state"),
            "kept for --back"
        );

        let rec = record_switch(
            &store,
            "rooms",
            ("onprem", "ews"),
            ("cloud", "graph"),
            false,
            Some("alice@pump"),
            &moved,
        )
        .await
        .expect("record");
        let back = record_switch(
            &store,
            "rooms",
            ("cloud", "graph"),
            ("onprem", "ews"),
            true,
            None,
            &MoveSummary::default(),
        )
        .await
        .expect("record");
        let last = last_switch(&store, "rooms")
            .await
            .expect("last")
            .expect("some");
        assert_eq!(last, back);
        assert_ne!(last.run_id, rec.run_id);
        assert!(last.back && last.to_profile == "onprem" && last.from_backend == "graph");
        let runs = store.recent_runs(Some("rooms"), 10).await.expect("runs");
        assert_eq!(runs[0].status, RunStatus::Ok);
        assert_eq!(runs[0].kind, RunKind::Switch);
        assert!(
            runs.iter().all(|r| r.errors.is_empty()),
            "not errors: {runs:?}"
        );
        let note = runs[1].note.as_deref().expect("note");
        assert!(
            note.contains("onprem (ews) → cloud (graph) by alice@pump at ")
                && note.contains("2 calendars, 5 events carried over"),
            "{note}"
        );
        assert!(
            store
                .history(Some("rooms"), HistoryFilter::Syncs, 10)
                .await
                .expect("syncs")
                .is_empty(),
            "a switch is no sync"
        );
        assert_eq!(rec.by.as_deref(), Some("alice@pump"));
    }

    #[tokio::test]
    async fn going_back_drops_the_stale_cursors_and_carries_the_current_index_back() {
        let store = SqliteStateStore::in_memory().await.expect("store");
        let commit = |backend: &str, cursor_value: &str, items: &[(&str, &str)]| CalendarCommit {
            key: key(backend, "a@x.com"),
            cursor: cursor(cursor_value),
            index: IndexChange::Replace(
                items
                    .iter()
                    .map(|(id, k)| (id.to_string(), EventKey::from_stored(*k)))
                    .collect(),
            ),
            at: Utc::now(),
        };
        store
            .commit_calendar(&commit(
                "ews",
                "ews-sync-state",
                &[("AAMk1", "ev1-a"), ("AAMk2", "ev1-b")],
            ))
            .await
            .expect("ews");
        move_state(&store, "rooms", "ews", "graph")
            .await
            .expect("forward");
        // Through Graph: b deleted, c created; Graph's own ids after its full read.
        store
            .commit_calendar(&commit(
                "graph",
                "delta-link",
                &[("g1", "ev1-a"), ("g3", "ev1-c")],
            ))
            .await
            .expect("graph");

        let back = move_state(&store, "rooms", "graph", "ews")
            .await
            .expect("back");
        assert_eq!(
            (back.calendars, back.events, back.cursors_dropped),
            (1, 2, 1)
        );
        let ews = store
            .calendar_state(&key("ews", "a@x.com"))
            .await
            .expect("ews");
        assert!(
            ews.cursor.is_none(),
            "the SyncState from before the switch is gone"
        );
        assert_eq!(ews.event_count, 2);
        let mut index: Vec<(String, String)> = store
            .item_index(&key("ews", "a@x.com"))
            .await
            .expect("index")
            .into_iter()
            .map(|(id, k)| (id, k.as_str().to_string()))
            .collect();
        index.sort();
        assert_eq!(
            index,
            [
                ("migrated:graph:g1".to_string(), "ev1-a".to_string()),
                ("migrated:graph:g3".to_string(), "ev1-c".to_string())
            ],
            "what Graph knew, not what EWS knew before the switch"
        );
        let graph = store
            .calendar_state(&key("graph", "a@x.com"))
            .await
            .expect("graph");
        assert_eq!(
            graph.cursor.map(|c| c.value).as_deref(),
            Some("delta-link"),
            "the backend left is not touched"
        );
    }

    #[tokio::test]
    async fn back_finds_a_switch_recorded_before_run_kinds_existed() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state.db");
        crate::state::sqlite::tests::write_v1_db(&path).await;
        let store = SqliteStateStore::open(&path).await.expect("open");
        let last = last_switch(&store, "rooms")
            .await
            .expect("last")
            .expect("the old switch");
        assert_eq!(
            (
                last.from_profile.as_str(),
                last.from_backend.as_str(),
                last.to_profile.as_str(),
                last.to_backend.as_str(),
                last.back
            ),
            ("onprem", "ews", "cloud", "graph", false)
        );
        assert_eq!(last.run_id, "switch-20261120T090000.000Z-0000beef");
        // A new switch (the --back) is found before it, from its data.
        record_switch(
            &store,
            "rooms",
            ("cloud", "graph"),
            ("onprem", "ews"),
            true,
            Some("bob@pump"),
            &MoveSummary::default(),
        )
        .await
        .expect("record");
        let last = last_switch(&store, "rooms")
            .await
            .expect("last")
            .expect("some");
        assert!(last.back && last.to_profile == "onprem");
        assert_eq!(last.by.as_deref(), Some("bob@pump"));
        assert!(last_switch(&store, "other").await.expect("none").is_none());
    }
}
