//! The embedded SQLite state store: WAL journal, `synchronous = FULL`, versioned migrations
//! embedded in the binary and recorded in `schema_migrations`. Write transactions start with
//! `BEGIN IMMEDIATE`: a deferred one that reads first and then writes fails with
//! SQLITE_BUSY_SNAPSHOT (517) when another connection committed in between, and the busy
//! timeout does not help there.
//!
//! Every [`StateStore::finish_run`] ends with a [`StateStore::prune`] by the store's
//! [`Retention`] ([`SqliteStateStore::with_retention`]; the default one otherwise).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use calpump_plugin::EventKey;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::{
    CalendarCommit, CalendarKey, CalendarState, ErrorRecord, HistoryFilter, IndexChange,
    MailboxOutcome, MailboxStatus, PruneSummary, Rejection, Retention, RunCounts, RunKind,
    RunRecord, RunStatus, StateError, StateStore,
};
use crate::source::Cursor;

/// The migrations, in order. Append only; never edit a released one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (2, "run_kind", include_str!("migrations/0002_run_kind.sql")),
];

/// The SQLite state store.
#[derive(Debug, Clone)]
pub struct SqliteStateStore {
    pool: SqlitePool,
    location: String,
    retention: Retention,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl SqliteStateStore {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(parent);
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        Self::connect(options, path.display().to_string()).await
    }

    /// An in-memory store (tests).
    pub async fn in_memory() -> Result<Self, StateError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(|source| {
            StateError::Database {
                location: ":memory:".into(),
                source,
            }
        })?;
        Self::connect(options, ":memory:".into()).await
    }

    async fn connect(options: SqliteConnectOptions, location: String) -> Result<Self, StateError> {
        let in_memory = location == ":memory:";
        let pool = SqlitePoolOptions::new()
            // One connection for `:memory:` (each connection would be its own database).
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options)
            .await
            .map_err(|source| StateError::Database {
                location: location.clone(),
                source,
            })?;
        let store = Self {
            pool,
            location,
            retention: Retention::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The store pruning by `retention` (`[state] keep_runs`, `keep_days`) instead of the
    /// default one.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The retention the store prunes by.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// The file (or `:memory:`) this store lives in.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The path form of [`Self::location`].
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.location)
    }

    fn db(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
        move |source| StateError::Database {
            location: self.location.clone(),
            source,
        }
    }

    async fn migrate(&self) -> Result<(), StateError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())?
            .try_get(0)
            .map_err(self.db())?;
        let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > known {
            return Err(StateError::TooNew {
                location: self.location.clone(),
                found: current,
                known,
            });
        }
        for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let fail = |source| StateError::Migration {
                location: self.location.clone(),
                version,
                name,
                source,
            };
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(fail)?;
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(name)
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            tracing::debug!(store = %self.location, version, name, "state store migrated");
        }
        Ok(())
    }

    /// The applied schema version.
    pub async fn schema_version(&self) -> Result<i64, StateError> {
        sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())?
            .try_get(0)
            .map_err(self.db())
    }
}

fn calendar_state(row: &SqliteRow) -> Result<CalendarState, StateError> {
    let cursor_json: Option<String> = row.try_get("cursor_json").unwrap_or(None);
    let cursor = match cursor_json {
        Some(json) => {
            Some(
                serde_json::from_str::<Cursor>(&json).map_err(|e| StateError::Corrupt {
                    what: "calendars.cursor_json",
                    detail: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    let count: i64 = row.try_get("event_count").unwrap_or(0);
    Ok(CalendarState {
        cursor,
        event_count: count.max(0) as u64,
        last_commit: parse_ts(row.try_get("last_commit").unwrap_or(None)),
    })
}

fn error_record(code: Option<String>, detail: Option<String>) -> Option<ErrorRecord> {
    code.map(|code| ErrorRecord {
        code,
        detail: detail.unwrap_or_default(),
        mailbox: None,
    })
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn calendar_state(&self, key: &CalendarKey) -> Result<CalendarState, StateError> {
        let row = sqlx::query(
            "SELECT cursor_json, event_count, last_commit FROM calendars
             WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ?",
        )
        .bind(&key.route)
        .bind(&key.mailbox)
        .bind(&key.calendar)
        .bind(&key.backend)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        match row {
            Some(row) => calendar_state(&row),
            None => Ok(CalendarState::default()),
        }
    }

    async fn resolve_items(
        &self,
        key: &CalendarKey,
        item_ids: &[String],
    ) -> Result<HashMap<String, EventKey>, StateError> {
        let mut out = HashMap::new();
        let mut conn = self.pool.acquire().await.map_err(self.db())?;
        for id in item_ids {
            let row = sqlx::query(
                "SELECT event_key FROM item_index
                 WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ? AND item_id = ?",
            )
            .bind(&key.route)
            .bind(&key.mailbox)
            .bind(&key.calendar)
            .bind(&key.backend)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.db())?;
            if let Some(row) = row {
                let k: String = row.try_get(0).map_err(self.db())?;
                out.insert(id.clone(), EventKey::from_stored(k));
            }
        }
        Ok(out)
    }

    async fn commit_calendar(&self, commit: &CalendarCommit) -> Result<(), StateError> {
        let key = &commit.key;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        match &commit.index {
            IndexChange::Replace(items) => {
                sqlx::query(
                    "DELETE FROM item_index WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ?",
                )
                .bind(&key.route)
                .bind(&key.mailbox)
                .bind(&key.calendar)
                .bind(&key.backend)
                .execute(&mut *tx)
                .await
                .map_err(self.db())?;
                for (item_id, event_key) in items {
                    sqlx::query(
                        "INSERT OR REPLACE INTO item_index (route, mailbox, calendar, backend, item_id, event_key)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&key.route)
                    .bind(&key.mailbox)
                    .bind(&key.calendar)
                    .bind(&key.backend)
                    .bind(item_id)
                    .bind(event_key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(self.db())?;
                }
            }
            IndexChange::Update { upserts, removed } => {
                for event_key in removed {
                    sqlx::query(
                        "DELETE FROM item_index
                         WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ? AND event_key = ?",
                    )
                    .bind(&key.route)
                    .bind(&key.mailbox)
                    .bind(&key.calendar)
                    .bind(&key.backend)
                    .bind(event_key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(self.db())?;
                }
                for (item_id, event_key) in upserts {
                    // One key, one item id: an item that got a new id replaces its old row.
                    sqlx::query(
                        "DELETE FROM item_index
                         WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ?
                           AND event_key = ? AND item_id <> ?",
                    )
                    .bind(&key.route)
                    .bind(&key.mailbox)
                    .bind(&key.calendar)
                    .bind(&key.backend)
                    .bind(event_key.as_str())
                    .bind(item_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.db())?;
                    sqlx::query(
                        "INSERT OR REPLACE INTO item_index (route, mailbox, calendar, backend, item_id, event_key)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&key.route)
                    .bind(&key.mailbox)
                    .bind(&key.calendar)
                    .bind(&key.backend)
                    .bind(item_id)
                    .bind(event_key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(self.db())?;
                }
            }
        }
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM item_index WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ?",
        )
        .bind(&key.route)
        .bind(&key.mailbox)
        .bind(&key.calendar)
        .bind(&key.backend)
        .fetch_one(&mut *tx)
        .await
        .map_err(self.db())?
        .try_get(0)
        .map_err(self.db())?;
        let cursor_json = match &commit.cursor {
            Some(cursor) => {
                Some(
                    serde_json::to_string(cursor).map_err(|e| StateError::Corrupt {
                        what: "cursor",
                        detail: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        sqlx::query(
            "INSERT INTO calendars (route, mailbox, calendar, backend, cursor_json, event_count, last_commit)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (route, mailbox, calendar, backend) DO UPDATE SET
               cursor_json = excluded.cursor_json,
               event_count = excluded.event_count,
               last_commit = excluded.last_commit",
        )
        .bind(&key.route)
        .bind(&key.mailbox)
        .bind(&key.calendar)
        .bind(&key.backend)
        .bind(cursor_json)
        .bind(count)
        .bind(ts(commit.at))
        .execute(&mut *tx)
        .await
        .map_err(self.db())?;
        tx.commit().await.map_err(self.db())
    }

    async fn begin_run(
        &self,
        id: &str,
        route: &str,
        started_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        sqlx::query("INSERT INTO runs (id, route, started_at, status) VALUES (?, ?, ?, 'running')")
            .bind(id)
            .bind(route)
            .bind(ts(started_at))
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(())
    }

    async fn finish_run(
        &self,
        id: &str,
        finished_at: DateTime<Utc>,
        status: RunStatus,
        counts: &RunCounts,
        errors: &[ErrorRecord],
    ) -> Result<(), StateError> {
        let errors_json = serde_json::to_string(&errors.iter().take(50).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE runs SET finished_at = ?, status = ?, mailboxes = ?, calendars = ?, upserts = ?,
               deletes = ?, rejected = ?, errors = ?, errors_json = ? WHERE id = ?",
        )
        .bind(ts(finished_at))
        .bind(status.as_str())
        .bind(counts.mailboxes as i64)
        .bind(counts.calendars as i64)
        .bind(counts.upserts as i64)
        .bind(counts.deletes as i64)
        .bind(counts.rejected as i64)
        .bind(counts.errors as i64)
        .bind(errors_json)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        match self.prune(finished_at).await {
            Ok(pruned) if pruned != PruneSummary::default() => {
                tracing::debug!(store = %self.location, runs = pruned.runs, rejections = pruned.rejections, "state store pruned");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(store = %self.location, error = %e, "cannot prune the run history; it is tried again after the next run");
            }
        }
        Ok(())
    }

    async fn prune(&self, now: DateTime<Utc>) -> Result<PruneSummary, StateError> {
        let cutoff = ts(self.retention.cutoff(now));
        let keep_runs = i64::from(self.retention.keep_runs.max(1));
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        // Sync runs past both limits; never one still running, never another kind (switches),
        // never a route's newest (n = 1 <= keep_runs).
        let runs = sqlx::query(
            "DELETE FROM runs WHERE rowid IN (
                SELECT rowid FROM (
                    SELECT rowid, started_at, status, ROW_NUMBER() OVER (
                        PARTITION BY route ORDER BY started_at DESC, rowid DESC) AS n
                    FROM runs WHERE kind = 'sync')
                WHERE n > ?1 AND started_at < ?2 AND status <> 'running')",
        )
        .bind(keep_runs)
        .bind(&cutoff)
        .execute(&mut *tx)
        .await
        .map_err(self.db())?
        .rows_affected();
        // Rejections of events gone from the route's item index (any backend), past keep_days.
        let rejections = sqlx::query(
            "DELETE FROM rejections WHERE at < ?1 AND NOT EXISTS (
                SELECT 1 FROM item_index i
                WHERE i.route = rejections.route AND i.mailbox = rejections.mailbox
                  AND i.calendar = rejections.calendar AND i.event_key = rejections.event_key)",
        )
        .bind(&cutoff)
        .execute(&mut *tx)
        .await
        .map_err(self.db())?
        .rows_affected();
        tx.commit().await.map_err(self.db())?;
        Ok(PruneSummary { runs, rejections })
    }

    async fn mark_interrupted_runs(&self) -> Result<u64, StateError> {
        let done = sqlx::query("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected())
    }

    async fn record_event(&self, entry: &RunRecord) -> Result<(), StateError> {
        let encode = |what: &'static str, value: Result<String, serde_json::Error>| {
            value.map_err(|e| StateError::Corrupt {
                what,
                detail: e.to_string(),
            })
        };
        let errors_json = encode("runs.errors_json", serde_json::to_string(&entry.errors))?;
        let data_json = match &entry.data {
            Some(data) => Some(encode("runs.data_json", serde_json::to_string(data))?),
            None => None,
        };
        let c = &entry.counts;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO runs (id, route, kind, started_at, finished_at, status, mailboxes, calendars,
                upserts, deletes, rejected, errors, errors_json, note, data_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&entry.id)
        .bind(&entry.route)
        .bind(entry.kind.as_str())
        .bind(ts(entry.started_at))
        .bind(entry.finished_at.map(ts))
        .bind(entry.status.as_str())
        .bind(n(c.mailboxes))
        .bind(n(c.calendars))
        .bind(n(c.upserts))
        .bind(n(c.deletes))
        .bind(n(c.rejected))
        .bind(n(c.errors))
        .bind(errors_json)
        .bind(&entry.note)
        .bind(data_json)
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(())
    }

    async fn history(
        &self,
        route: Option<&str>,
        filter: HistoryFilter,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StateError> {
        // ?3: the kind wanted (NULL: any); ?4: a kind not wanted (NULL: none).
        let (kind, not_kind) = match filter {
            HistoryFilter::All => (None, None),
            HistoryFilter::Syncs => (Some(RunKind::Sync.as_str()), None),
            HistoryFilter::Events => (None, Some(RunKind::Sync.as_str())),
            HistoryFilter::Kind(kind) => (Some(kind.as_str()), None),
        };
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE (?1 IS NULL OR route = ?1)
               AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR kind <> ?4)
             ORDER BY started_at DESC, rowid DESC LIMIT ?2",
        )
        .bind(route)
        .bind(i64::from(limit))
        .bind(kind)
        .bind(not_kind)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.iter()
            .map(|row| {
                let get = |col: &str| row.try_get::<i64, _>(col).unwrap_or(0).max(0) as u64;
                let errors_json: String = row.try_get("errors_json").unwrap_or_default();
                let data_json: Option<String> = row.try_get("data_json").unwrap_or(None);
                Ok(RunRecord {
                    id: row.try_get("id").map_err(self.db())?,
                    route: row.try_get("route").map_err(self.db())?,
                    kind: RunKind::parse(&row.try_get::<String, _>("kind").unwrap_or_default()),
                    started_at: parse_ts(row.try_get("started_at").ok()).unwrap_or_default(),
                    finished_at: parse_ts(row.try_get("finished_at").unwrap_or(None)),
                    status: RunStatus::parse(
                        &row.try_get::<String, _>("status").unwrap_or_default(),
                    ),
                    counts: RunCounts {
                        mailboxes: get("mailboxes"),
                        calendars: get("calendars"),
                        upserts: get("upserts"),
                        deletes: get("deletes"),
                        rejected: get("rejected"),
                        errors: get("errors"),
                    },
                    errors: serde_json::from_str(&errors_json).unwrap_or_default(),
                    note: row.try_get("note").unwrap_or(None),
                    data: data_json.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect()
    }

    async fn record_mailbox(
        &self,
        route: &str,
        mailbox: &str,
        name: Option<&str>,
        at: DateTime<Utc>,
        outcome: &MailboxOutcome,
    ) -> Result<(), StateError> {
        let at = ts(at);
        match outcome {
            MailboxOutcome::Success { warning } => {
                sqlx::query(
                    "INSERT INTO mailbox_status (route, mailbox, name, last_attempt, last_success,
                        failing_since, last_error_code, last_error_detail, last_warning_code, last_warning_detail)
                     VALUES (?1, ?2, ?3, ?4, ?4, NULL, NULL, NULL, ?5, ?6)
                     ON CONFLICT (route, mailbox) DO UPDATE SET
                        name = COALESCE(excluded.name, mailbox_status.name),
                        last_attempt = excluded.last_attempt,
                        last_success = excluded.last_success,
                        failing_since = NULL,
                        last_warning_code = excluded.last_warning_code,
                        last_warning_detail = excluded.last_warning_detail",
                )
                .bind(route)
                .bind(mailbox)
                .bind(name)
                .bind(&at)
                .bind(warning.as_ref().map(|w| w.code.clone()))
                .bind(warning.as_ref().map(|w| w.detail.clone()))
                .execute(&self.pool)
                .await
                .map_err(self.db())?;
            }
            MailboxOutcome::Failure(error) => {
                sqlx::query(
                    "INSERT INTO mailbox_status (route, mailbox, name, last_attempt, last_success,
                        failing_since, last_error_code, last_error_detail)
                     VALUES (?1, ?2, ?3, ?4, NULL, ?4, ?5, ?6)
                     ON CONFLICT (route, mailbox) DO UPDATE SET
                        name = COALESCE(excluded.name, mailbox_status.name),
                        last_attempt = excluded.last_attempt,
                        failing_since = COALESCE(mailbox_status.failing_since, excluded.failing_since),
                        last_error_code = excluded.last_error_code,
                        last_error_detail = excluded.last_error_detail",
                )
                .bind(route)
                .bind(mailbox)
                .bind(name)
                .bind(&at)
                .bind(&error.code)
                .bind(&error.detail)
                .execute(&self.pool)
                .await
                .map_err(self.db())?;
            }
        }
        Ok(())
    }

    async fn mailbox_status(&self, route: Option<&str>) -> Result<Vec<MailboxStatus>, StateError> {
        let rows = sqlx::query(
            "SELECT * FROM mailbox_status WHERE (?1 IS NULL OR route = ?1) ORDER BY route, mailbox",
        )
        .bind(route)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.iter()
            .map(|row| {
                let opt = |col: &str| row.try_get::<Option<String>, _>(col).unwrap_or(None);
                Ok(MailboxStatus {
                    route: row.try_get("route").map_err(self.db())?,
                    mailbox: row.try_get("mailbox").map_err(self.db())?,
                    name: opt("name"),
                    last_attempt: parse_ts(opt("last_attempt")),
                    last_success: parse_ts(opt("last_success")),
                    failing_since: parse_ts(opt("failing_since")),
                    last_error: if opt("failing_since").is_some() {
                        error_record(opt("last_error_code"), opt("last_error_detail"))
                    } else {
                        None
                    },
                    last_warning: error_record(
                        opt("last_warning_code"),
                        opt("last_warning_detail"),
                    ),
                })
            })
            .collect()
    }

    async fn forget_mailboxes(
        &self,
        route: &str,
        keep: &[String],
    ) -> Result<Vec<String>, StateError> {
        let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        let known: Vec<String> =
            sqlx::query_scalar("SELECT mailbox FROM mailbox_status WHERE route = ?1")
                .bind(route)
                .fetch_all(&mut *tx)
                .await
                .map_err(self.db())?;
        let gone: Vec<String> = known
            .into_iter()
            .filter(|m| !keep.contains(m.as_str()))
            .collect();
        for mailbox in &gone {
            sqlx::query("DELETE FROM mailbox_status WHERE route = ?1 AND mailbox = ?2")
                .bind(route)
                .bind(mailbox)
                .execute(&mut *tx)
                .await
                .map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())?;
        Ok(gone)
    }

    async fn record_rejections(
        &self,
        route: &str,
        sink: &str,
        rejected: &[Rejection],
        accepted: &[EventKey],
    ) -> Result<(), StateError> {
        if rejected.is_empty() && accepted.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        for key in accepted {
            sqlx::query("DELETE FROM rejections WHERE route = ? AND sink = ? AND event_key = ?")
                .bind(route)
                .bind(sink)
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(self.db())?;
        }
        for r in rejected {
            sqlx::query(
                "INSERT OR REPLACE INTO rejections (route, sink, event_key, mailbox, calendar, reason, at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(route)
            .bind(sink)
            .bind(r.key.as_str())
            .bind(&r.mailbox)
            .bind(&r.calendar)
            .bind(&r.reason)
            .bind(ts(r.at))
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())
    }

    async fn rejections(&self, route: Option<&str>) -> Result<Vec<Rejection>, StateError> {
        let rows = sqlx::query(
            "SELECT * FROM rejections WHERE (?1 IS NULL OR route = ?1) ORDER BY route, sink, event_key",
        )
        .bind(route)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.iter()
            .map(|row| {
                Ok(Rejection {
                    route: row.try_get("route").map_err(self.db())?,
                    sink: row.try_get("sink").map_err(self.db())?,
                    mailbox: row.try_get("mailbox").map_err(self.db())?,
                    calendar: row.try_get("calendar").map_err(self.db())?,
                    key: EventKey::from_stored(
                        row.try_get::<String, _>("event_key").map_err(self.db())?,
                    ),
                    reason: row.try_get("reason").map_err(self.db())?,
                    at: parse_ts(row.try_get("at").ok()).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn calendars(
        &self,
        route: Option<&str>,
    ) -> Result<Vec<(CalendarKey, CalendarState)>, StateError> {
        let rows = sqlx::query(
            "SELECT * FROM calendars WHERE (?1 IS NULL OR route = ?1)
             ORDER BY route, mailbox, calendar, backend",
        )
        .bind(route)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.iter()
            .map(|row| {
                let key = CalendarKey {
                    route: row.try_get("route").map_err(self.db())?,
                    mailbox: row.try_get("mailbox").map_err(self.db())?,
                    calendar: row.try_get("calendar").map_err(self.db())?,
                    backend: row.try_get("backend").map_err(self.db())?,
                };
                Ok((key, calendar_state(row)?))
            })
            .collect()
    }

    async fn item_index(&self, key: &CalendarKey) -> Result<HashMap<String, EventKey>, StateError> {
        let rows = sqlx::query(
            "SELECT item_id, event_key FROM item_index
             WHERE route = ? AND mailbox = ? AND calendar = ? AND backend = ?",
        )
        .bind(&key.route)
        .bind(&key.mailbox)
        .bind(&key.calendar)
        .bind(&key.backend)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>(0).map_err(self.db())?,
                    EventKey::from_stored(row.try_get::<String, _>(1).map_err(self.db())?),
                ))
            })
            .collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use calpump_plugin::Window;

    /// What calpump with schema version 1 did to a new file: its `migrate()` created
    /// `schema_migrations`, ran migration 1 (released, so never edited: the file is the old
    /// SQL) and recorded it.
    const V1_SCHEMA: &str = concat!(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);\n",
        include_str!("migrations/0001_initial.sql"),
        "\nINSERT INTO schema_migrations (version, name, applied_at)
            VALUES (1, 'initial', '2026-11-20T08:00:00.000Z');\n"
    );

    /// Writes a state DB of schema version 1 at `path` holding, for route `rooms`: a sync run
    /// with an error, the switch `onprem/ews → cloud/graph` as version 1 recorded it (a run
    /// carrying `sync.BackendSwitched` among its errors) and a later sync run, and an EWS
    /// calendar with a cursor.
    pub(crate) async fn write_v1_db(path: &Path) {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePool::connect_with(options).await.expect("v1 db");
        sqlx::raw_sql(V1_SCHEMA)
            .execute(&pool)
            .await
            .expect("v1 schema");
        sqlx::raw_sql(
            r#"
INSERT INTO runs VALUES ('20261120T080000.000Z-0000abcd', 'rooms', '2026-11-20T08:00:00.000Z',
    '2026-11-20T08:00:05.000Z', 'partial', 2, 2, 7, 0, 0, 1,
    '[{"code":"ews.ErrorImpersonateUserDenied","detail":"denied","mailbox":"b@x.com"}]');
INSERT INTO runs VALUES ('switch-20261120T090000.000Z-0000beef', 'rooms', '2026-11-20T09:00:00.000Z',
    '2026-11-20T09:00:00.000Z', 'ok', 0, 2, 0, 0, 0, 0,
    '[{"code":"sync.BackendSwitched","detail":"calpump migrate switch: route rooms from profile onprem (ews) to cloud (graph); 2 calendars, 5 events carried over, next sync reads in full [from=onprem/ews to=cloud/graph back=false]"}]');
INSERT INTO runs VALUES ('20261120T100000.000Z-0000cafe', 'rooms', '2026-11-20T10:00:00.000Z',
    '2026-11-20T10:00:03.000Z', 'ok', 2, 2, 0, 0, 0, 0, '[]');
INSERT INTO calendars VALUES ('rooms', 'a@x.com', 'default', 'ews',
    '{"value":"sync-state","window":{"start":"2026-11-19T00:00:00Z","end":"2026-12-04T00:00:00Z"}}',
    3, '2026-11-20T08:00:05.000Z');
"#,
        )
        .execute(&pool)
        .await
        .expect("v1 rows");
        pool.close().await;
    }

    #[tokio::test]
    async fn a_version_1_db_is_upgraded_and_its_switch_becomes_an_event() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state.db");
        write_v1_db(&path).await;

        let store = SqliteStateStore::open(&path).await.expect("open");
        assert_eq!(store.schema_version().await.expect("version"), 2);
        let all = store.recent_runs(Some("rooms"), 10).await.expect("runs");
        assert_eq!(
            all.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [RunKind::Sync, RunKind::Switch, RunKind::Sync],
            "{all:?}"
        );
        let switch = &all[1];
        assert!(switch.errors.is_empty(), "no longer an error: {switch:?}");
        assert_eq!(switch.counts.errors, 0);
        let note = switch.note.as_deref().expect("note");
        assert!(
            note.contains("from profile onprem (ews) to cloud (graph)")
                && note.ends_with("[from=onprem/ews to=cloud/graph back=false]"),
            "{note}"
        );
        assert!(switch.data.is_none());
        // Sync runs keep their errors and get no note.
        assert_eq!(all[2].errors.len(), 1);
        assert_eq!(all[2].errors[0].code, "ews.ErrorImpersonateUserDenied");
        assert_eq!(all[2].errors[0].mailbox.as_deref(), Some("b@x.com"));
        assert!(all[2].note.is_none());

        let syncs = store
            .history(Some("rooms"), HistoryFilter::Syncs, 10)
            .await
            .expect("syncs");
        assert_eq!(syncs.len(), 2);
        assert_eq!(syncs[0].id, "20261120T100000.000Z-0000cafe");
        let events = store
            .history(Some("rooms"), HistoryFilter::Events, 10)
            .await
            .expect("events");
        assert_eq!(
            events.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["switch-20261120T090000.000Z-0000beef"]
        );
        // The rest of the state is as it was.
        let cal = store
            .calendar_state(&CalendarKey {
                route: "rooms".into(),
                mailbox: "a@x.com".into(),
                calendar: "default".into(),
                backend: "ews".into(),
            })
            .await
            .expect("calendar");
        assert_eq!(cal.cursor.map(|c| c.value).as_deref(), Some("sync-state"));
        assert_eq!(cal.event_count, 3);
        // New runs after the upgrade are syncs.
        store
            .begin_run("r-new", "rooms", Utc::now())
            .await
            .expect("begin");
        let newest = store.recent_runs(Some("rooms"), 1).await.expect("runs");
        assert_eq!(newest[0].kind, RunKind::Sync);
        store.close().await;
        // Opening again applies nothing twice.
        let store = SqliteStateStore::open(&path).await.expect("reopen");
        assert_eq!(store.schema_version().await.expect("version"), 2);
        assert_eq!(store.recent_runs(None, 10).await.expect("runs").len(), 4);
    }

    #[tokio::test]
    async fn events_are_recorded_with_kind_note_and_data() {
        let store = SqliteStateStore::in_memory().await.expect("open");
        let t0 = Utc::now();
        store.begin_run("r1", "rooms", t0).await.expect("begin");
        let event = RunRecord {
            id: "switch-1".into(),
            route: "rooms".into(),
            kind: RunKind::Switch,
            started_at: parse_ts(Some(ts(t0 + chrono::Duration::seconds(1)))).expect("t"),
            finished_at: parse_ts(Some(ts(t0 + chrono::Duration::seconds(1)))),
            status: RunStatus::Ok,
            counts: RunCounts {
                calendars: 4,
                ..RunCounts::default()
            },
            errors: vec![],
            note: Some("a → b by alice".into()),
            data: Some(serde_json::json!({"from_profile": "a"})),
        };
        store.record_event(&event).await.expect("event");
        assert_eq!(
            store
                .history(Some("rooms"), HistoryFilter::Kind(RunKind::Switch), 5)
                .await
                .expect("switches"),
            std::slice::from_ref(&event)
        );
        assert_eq!(
            store
                .history(None, HistoryFilter::Syncs, 5)
                .await
                .expect("syncs")
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["r1"]
        );
        assert_eq!(store.mark_interrupted_runs().await.expect("mark"), 1);
        assert_eq!(store.recent_runs(None, 5).await.expect("all")[0], event);
    }

    fn sync_run(id: String, route: &str, at: DateTime<Utc>, status: RunStatus) -> RunRecord {
        RunRecord {
            id,
            route: route.into(),
            kind: RunKind::Sync,
            started_at: at,
            finished_at: (status != RunStatus::Running).then_some(at),
            status,
            counts: RunCounts::default(),
            errors: vec![],
            note: None,
            data: None,
        }
    }

    fn rejection(key: &str, at: DateTime<Utc>) -> Rejection {
        Rejection {
            route: "rooms".into(),
            sink: "db".into(),
            mailbox: "room-1@contoso.com".into(),
            calendar: "default".into(),
            key: k(key),
            reason: "subject too long".into(),
            at,
        }
    }

    #[tokio::test]
    async fn months_of_runs_and_rejections_are_pruned_to_the_retention_at_the_end_of_a_run() {
        let now = parse_ts(Some(ts(Utc::now()))).expect("now");
        let hours = |h: i64| chrono::Duration::hours(h);
        let store = SqliteStateStore::in_memory()
            .await
            .expect("open")
            .with_retention(Retention {
                keep_runs: 20,
                keep_days: 7,
            });

        // Route `rooms`: a run every 4 hours for 50 days, a switch 30 days ago among them, and
        // a run 30 days old still marked running.
        let rooms: Vec<DateTime<Utc>> = (1..=300).map(|i| now - hours(4 * i)).collect();
        for (i, at) in rooms.iter().enumerate() {
            store
                .record_event(&sync_run(
                    format!("rooms-{i:03}"),
                    "rooms",
                    *at,
                    RunStatus::Ok,
                ))
                .await
                .expect("run");
        }
        store
            .record_event(&sync_run(
                "rooms-running".into(),
                "rooms",
                now - chrono::Duration::days(30),
                RunStatus::Running,
            ))
            .await
            .expect("running");
        let moved = crate::migrate::MoveSummary::default();
        let switch = crate::migrate::record_switch(
            &store,
            "rooms",
            ("online", "ews"),
            ("cloud", "graph"),
            false,
            Some("alice@pump"),
            &moved,
        )
        .await
        .expect("switch");
        sqlx::query("UPDATE runs SET started_at = ?, finished_at = ? WHERE id = ?")
            .bind(ts(now - chrono::Duration::days(30)))
            .bind(ts(now - chrono::Duration::days(30)))
            .bind(&switch.run_id)
            .execute(&store.pool)
            .await
            .expect("age the switch");
        // Route `quiet`: its 25 runs are all half a year old; its newest 20 stay.
        for i in 0..25 {
            store
                .record_event(&sync_run(
                    format!("quiet-{i:02}"),
                    "quiet",
                    now - chrono::Duration::days(180 + i),
                    RunStatus::Failed,
                ))
                .await
                .expect("run");
        }
        // Route `gone`: one run a year ago, its latest.
        store
            .record_event(&sync_run(
                "gone-0".into(),
                "gone",
                now - chrono::Duration::days(365),
                RunStatus::Ok,
            ))
            .await
            .expect("run");

        // The index knows one rejected event; fifty old rejections are of events gone since.
        store
            .commit_calendar(&CalendarCommit {
                key: CalendarKey {
                    route: "rooms".into(),
                    mailbox: "room-1@contoso.com".into(),
                    calendar: "default".into(),
                    backend: "graph".into(),
                },
                cursor: Some(cursor("delta")),
                index: IndexChange::Replace(vec![
                    ("i-live".into(), k("ev-live")),
                    ("i-other".into(), k("ev-other")),
                ]),
                at: now,
            })
            .await
            .expect("commit");
        let old = now - chrono::Duration::days(30);
        let mut rejected: Vec<Rejection> = (0..50)
            .map(|i| rejection(&format!("ev-gone-{i}"), old))
            .collect();
        rejected.push(rejection("ev-live", old));
        rejected.push(rejection("ev-gone-recently", now - hours(24)));
        store
            .record_rejections("rooms", "db", &rejected, &[])
            .await
            .expect("reject");
        let calendars_before = store.calendars(None).await.expect("calendars");

        // A run of `rooms` ends: the store prunes.
        store
            .begin_run("rooms-new", "rooms", now)
            .await
            .expect("begin");
        store
            .finish_run("rooms-new", now, RunStatus::Ok, &RunCounts::default(), &[])
            .await
            .expect("finish");

        let syncs = |route: &'static str| {
            let store = store.clone();
            async move {
                store
                    .history(Some(route), HistoryFilter::Syncs, 10_000)
                    .await
                    .expect("history")
                    .into_iter()
                    .map(|r| r.id)
                    .collect::<Vec<_>>()
            }
        };
        // `rooms`: the runs of the last 7 days (more than 20), the new one, the running one.
        let cutoff = now - chrono::Duration::days(7);
        let mut expected: Vec<String> = vec!["rooms-new".into()];
        expected.extend(
            rooms
                .iter()
                .enumerate()
                .filter(|(_, at)| **at >= cutoff)
                .map(|(i, _)| format!("rooms-{i:03}")),
        );
        expected.push("rooms-running".into());
        assert!(
            expected.len() > 21,
            "the days rule keeps more than the count"
        );
        assert_eq!(syncs("rooms").await, expected);
        // `quiet`: the newest 20, the latest first.
        let quiet = syncs("quiet").await;
        assert_eq!(quiet.len(), 20, "{quiet:?}");
        assert_eq!(quiet[0], "quiet-00");
        assert_eq!(quiet[19], "quiet-19");
        // `gone`: its only run is its latest.
        assert_eq!(syncs("gone").await, ["gone-0"]);
        // The switch stays, and `--back` still finds it.
        let last = crate::migrate::last_switch(&store, "rooms")
            .await
            .expect("last switch")
            .expect("kept");
        assert_eq!(last.run_id, switch.run_id);
        assert_eq!(last.to_profile, "cloud");

        // Rejections: the old ones of gone events go; the one of a live event and the recent one stay.
        let left: Vec<String> = store
            .rejections(None)
            .await
            .expect("rejections")
            .into_iter()
            .map(|r| r.key.as_str().to_string())
            .collect();
        assert_eq!(left, ["ev-gone-recently", "ev-live"]);
        // Cursors and the item index are untouched.
        assert_eq!(
            store.calendars(None).await.expect("calendars"),
            calendars_before
        );
        assert_eq!(
            store
                .item_index(&calendars_before[0].0)
                .await
                .expect("index")
                .len(),
            2
        );
        // Nothing more to prune.
        assert_eq!(
            store.prune(now).await.expect("prune"),
            PruneSummary::default()
        );
    }

    #[tokio::test]
    async fn keep_runs_zero_still_keeps_the_latest_run_and_keep_days_zero_prunes_by_count() {
        let now = Utc::now();
        let store = SqliteStateStore::in_memory()
            .await
            .expect("open")
            .with_retention(Retention {
                keep_runs: 0,
                keep_days: 0,
            });
        for i in 0..5 {
            store
                .record_event(&sync_run(
                    format!("r{i}"),
                    "rooms",
                    now - chrono::Duration::minutes(i),
                    RunStatus::Ok,
                ))
                .await
                .expect("run");
        }
        let pruned = store.prune(now).await.expect("prune");
        assert_eq!(pruned.runs, 4);
        let left = store.recent_runs(Some("rooms"), 10).await.expect("runs");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, "r0");
    }

    #[tokio::test]
    async fn removed_items_leave_the_index() {
        let store = SqliteStateStore::in_memory().await.expect("open");
        let commit = |index| CalendarCommit {
            key: key("default"),
            cursor: Some(cursor("c")),
            index,
            at: Utc::now(),
        };
        store
            .commit_calendar(&commit(IndexChange::Replace(
                (0..100)
                    .map(|i| (format!("i{i}"), k(&format!("ev-{i}"))))
                    .collect(),
            )))
            .await
            .expect("commit");
        // A delta removing 60 events and adding one: the index holds what the calendar holds.
        store
            .commit_calendar(&commit(IndexChange::Update {
                upserts: vec![("i-new".into(), k("ev-new"))],
                removed: (0..60).map(|i| k(&format!("ev-{i}"))).collect(),
            }))
            .await
            .expect("commit");
        let index = store.item_index(&key("default")).await.expect("index");
        assert_eq!(index.len(), 41);
        assert!(!index.contains_key("i0") && index.contains_key("i99"));
        assert_eq!(
            store
                .calendar_state(&key("default"))
                .await
                .expect("state")
                .event_count,
            41
        );
    }

    fn key(calendar: &str) -> CalendarKey {
        CalendarKey {
            route: "rooms".into(),
            mailbox: "room-1@contoso.com".into(),
            calendar: calendar.into(),
            backend: "graph".into(),
        }
    }

    fn cursor(value: &str) -> Cursor {
        let t = Utc::now();
        Cursor {
            value: value.into(),
            window: Window { start: t, end: t },
        }
    }

    fn k(s: &str) -> EventKey {
        EventKey::from_stored(s)
    }

    #[tokio::test]
    async fn commits_replace_and_update_the_index_atomically_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state.db");
        let store = SqliteStateStore::open(&path).await.expect("open");
        assert_eq!(store.schema_version().await.expect("version"), 2);
        assert_eq!(
            store.calendar_state(&key("default")).await.expect("state"),
            CalendarState::default()
        );

        store
            .commit_calendar(&CalendarCommit {
                key: key("default"),
                cursor: Some(cursor("c1")),
                index: IndexChange::Replace(vec![
                    ("i1".into(), k("ev1-a")),
                    ("i2".into(), k("ev1-b")),
                ]),
                at: Utc::now(),
            })
            .await
            .expect("commit");
        store
            .commit_calendar(&CalendarCommit {
                key: key("default"),
                cursor: Some(cursor("c2")),
                index: IndexChange::Update {
                    upserts: vec![("i3".into(), k("ev1-c")), ("i2-new".into(), k("ev1-b"))],
                    removed: vec![k("ev1-a")],
                },
                at: Utc::now(),
            })
            .await
            .expect("commit");
        store.close().await;

        let store = SqliteStateStore::open(&path).await.expect("reopen");
        let state = store.calendar_state(&key("default")).await.expect("state");
        assert_eq!(state.cursor.map(|c| c.value).as_deref(), Some("c2"));
        assert_eq!(state.event_count, 2);
        let resolved = store
            .resolve_items(
                &key("default"),
                &["i1".into(), "i2".into(), "i2-new".into(), "i3".into()],
            )
            .await
            .expect("resolve");
        assert_eq!(resolved.len(), 2, "{resolved:?}");
        assert_eq!(resolved["i3"], k("ev1-c"));
        assert_eq!(resolved["i2-new"], k("ev1-b"));
        // Another calendar is untouched.
        assert_eq!(
            store
                .calendar_state(&key("other"))
                .await
                .expect("state")
                .event_count,
            0
        );
    }

    #[tokio::test]
    async fn runs_mailboxes_and_rejections() {
        let store = SqliteStateStore::in_memory().await.expect("open");
        let t0 = Utc::now();
        store.begin_run("r1", "rooms", t0).await.expect("begin");
        store
            .begin_run("r2", "rooms", t0 + chrono::Duration::seconds(1))
            .await
            .expect("begin");
        let counts = RunCounts {
            upserts: 3,
            ..RunCounts::default()
        };
        store
            .finish_run("r1", t0, RunStatus::Ok, &counts, &[])
            .await
            .expect("finish");
        assert_eq!(store.mark_interrupted_runs().await.expect("mark"), 1);
        let runs = store.recent_runs(Some("rooms"), 10).await.expect("runs");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].id, "r2");
        assert_eq!(runs[0].status, RunStatus::Interrupted);
        assert_eq!(runs[1].counts.upserts, 3);

        let fail = ErrorRecord {
            code: "ews.ErrorImpersonateUserDenied".into(),
            detail: "denied".into(),
            mailbox: None,
        };
        store
            .record_mailbox(
                "rooms",
                "a@x.com",
                Some("A"),
                t0,
                &MailboxOutcome::Failure(fail.clone()),
            )
            .await
            .expect("fail");
        store
            .record_mailbox(
                "rooms",
                "a@x.com",
                None,
                t0 + chrono::Duration::seconds(5),
                &MailboxOutcome::Failure(fail),
            )
            .await
            .expect("fail again");
        let status = store.mailbox_status(None).await.expect("status");
        assert_eq!(
            status[0].failing_since,
            parse_ts(Some(ts(t0))),
            "the streak's start is kept"
        );
        assert_eq!(status[0].name.as_deref(), Some("A"));
        assert_eq!(
            status[0].health().last_error.as_deref(),
            Some("ews.ErrorImpersonateUserDenied")
        );
        store
            .record_mailbox(
                "rooms",
                "a@x.com",
                None,
                t0,
                &MailboxOutcome::Success { warning: None },
            )
            .await
            .expect("ok");
        let status = store.mailbox_status(Some("rooms")).await.expect("status");
        assert!(status[0].failing_since.is_none() && status[0].last_error.is_none());
        assert!(status[0].last_success.is_some());

        let rejection = Rejection {
            route: "rooms".into(),
            sink: "db".into(),
            mailbox: "a@x.com".into(),
            calendar: "default".into(),
            key: k("ev1-z"),
            reason: "subject too long".into(),
            at: t0,
        };
        store
            .record_rejections("rooms", "db", &[rejection.clone(), rejection], &[])
            .await
            .expect("reject");
        assert_eq!(store.rejections(None).await.expect("list").len(), 1);
        store
            .record_rejections("rooms", "db", &[], &[k("ev1-z")])
            .await
            .expect("accept");
        assert!(store.rejections(None).await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn mailboxes_a_route_no_longer_has_are_forgotten_and_only_those() {
        let store = SqliteStateStore::in_memory().await.expect("open");
        let failure = MailboxOutcome::Failure(ErrorRecord {
            code: "graph.NotFound".into(),
            detail: "no such mailbox".into(),
            mailbox: None,
        });
        let ok = MailboxOutcome::Success { warning: None };
        let t = Utc::now();
        for (route, mailbox, outcome) in [
            ("rooms", "room-1@x.com", &ok),
            ("rooms", "rom-2@x.com", &failure),
            ("rooms", "room-3@x.com", &failure),
            ("other", "rom-2@x.com", &failure),
        ] {
            store
                .record_mailbox(route, mailbox, None, t, outcome)
                .await
                .expect("record");
        }
        let gone = store
            .forget_mailboxes("rooms", &["room-1@x.com".into(), "room-3@x.com".into()])
            .await
            .expect("forget");
        assert_eq!(gone, vec!["rom-2@x.com".to_string()]);
        let left: Vec<(String, String, bool)> = store
            .mailbox_status(None)
            .await
            .expect("status")
            .into_iter()
            .map(|m| (m.route, m.mailbox, m.failing_since.is_some()))
            .collect();
        assert_eq!(
            left,
            vec![
                ("other".into(), "rom-2@x.com".into(), true),
                ("rooms".into(), "room-1@x.com".into(), false),
                ("rooms".into(), "room-3@x.com".into(), true),
            ],
            "another route's row and the kept mailboxes stay, failing or not"
        );
    }
}
