//! Moving a route's state from one backend to another (`calpump migrate switch`), and the
//! switch's record in the run history.
//!
//! State is keyed by (route, mailbox, calendar, backend). A switch from backend A to B:
//! * leaves A's rows as they are (cursors and item index), so `--back` continues from them;
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
//! The switch is recorded as a run of the route (status `ok`) carrying the entry
//! `sync.BackendSwitched` whose detail ends in a machine-readable tag
//! `[from=<profile>/<backend> to=<profile>/<backend> back=<bool>]`, which `--back` reads.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnostics::catalogue::migrate::BACKEND_SWITCHED;
use crate::state::{
    CalendarCommit, CalendarKey, ErrorRecord, IndexChange, RunCounts, RunStatus, StateError,
    StateStore,
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

/// A switch as recorded in the run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchRecord {
    pub run_id: String,
    pub at: DateTime<Utc>,
    pub from_profile: String,
    pub from_backend: String,
    pub to_profile: String,
    pub to_backend: String,
    /// This switch was a `--back`.
    pub back: bool,
}

impl SwitchRecord {
    fn tag(&self) -> String {
        format!(
            "[from={}/{} to={}/{} back={}]",
            self.from_profile, self.from_backend, self.to_profile, self.to_backend, self.back
        )
    }

    fn parse(run_id: &str, at: DateTime<Utc>, detail: &str) -> Option<Self> {
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
            run_id: run_id.to_string(),
            at,
            from_profile: fp.to_string(),
            from_backend: fb.to_string(),
            to_profile: tp.to_string(),
            to_backend: tb.to_string(),
            back: back?,
        })
    }
}

/// Records a switch as a run of the route; returns the record (with its run id).
pub async fn record_switch(
    state: &dyn StateStore,
    route: &str,
    from: (&str, &str),
    to: (&str, &str),
    back: bool,
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
    };
    let detail = format!(
        "calpump migrate switch{}: route {route} from profile {} ({}) to {} ({}); {} calendars, {} events carried over, next sync reads in full {}",
        if back { " --back" } else { "" },
        record.from_profile,
        record.from_backend,
        record.to_profile,
        record.to_backend,
        moved.calendars,
        moved.events,
        record.tag()
    );
    state.begin_run(&record.run_id, route, at).await?;
    state
        .finish_run(
            &record.run_id,
            at,
            RunStatus::Ok,
            &RunCounts {
                calendars: moved.calendars as u64,
                ..RunCounts::default()
            },
            &[ErrorRecord {
                code: BACKEND_SWITCHED.code.to_string(),
                detail,
                mailbox: None,
            }],
        )
        .await?;
    Ok(record)
}

/// The route's most recent switch, if any (from the last 1000 runs).
pub async fn last_switch(
    state: &dyn StateStore,
    route: &str,
) -> Result<Option<SwitchRecord>, StateError> {
    let runs = state.recent_runs(Some(route), 1000).await?;
    Ok(runs.iter().find_map(|run| {
        run.errors
            .iter()
            .filter(|e| e.code == BACKEND_SWITCHED.code)
            .find_map(|e| SwitchRecord::parse(&run.id, run.started_at, &e.detail))
    }))
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
        assert_eq!(runs[0].errors[0].code, "sync.BackendSwitched");
    }
}
