//! The SQL each engine needs, built as text with placeholders only: values are always bound,
//! never spliced in. The only names spliced in are the table prefix and schema, which
//! [`crate::Config::validate`] restricts to `[a-z0-9_]`.

use std::fmt::Write as _;

/// Which SQL engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// MariaDB and MySQL.
    MySql,
}

impl Dialect {
    /// Folder of its migrations and its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// Human name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MariaDB/MySQL",
        }
    }

    /// The `n`-th (1-based) placeholder.
    fn placeholder(self, out: &mut String, n: usize) {
        match self {
            Dialect::Postgres => {
                let _ = write!(out, "${n}");
            }
            Dialect::Sqlite | Dialect::MySql => out.push('?'),
        }
    }
}

/// The event columns the sink writes, in the order [`crate::write`] binds them.
pub(crate) const EVENT_COLUMNS: &[&str] = &[
    "route",
    "event_key",
    "mailbox",
    "calendar",
    "kind",
    "subject",
    "location",
    "organizer_name",
    "organizer_email",
    "start_utc",
    "end_utc",
    "time_zone",
    "all_day",
    "show_as",
    "sensitivity",
    "cancelled",
    "online_meeting_url",
    "series_key",
    "original_start",
    "global_object_id",
    "ical_uid",
    "source_backend",
    "source_item_id",
    "source_change_key",
    "last_modified",
    "attendees",
    "categories",
    "content_hash",
    "synced_at",
    "run_id",
];

/// Columns that identify a row and never change on update.
const KEY_COLUMNS: &[&str] = &["route", "event_key"];

/// Largest number of bound values in one statement; below SQLite's 32,766 and the 65,535 of
/// PostgreSQL and MySQL.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// Rows per multi-row upsert.
pub(crate) fn upsert_chunk_rows() -> usize {
    (MAX_PARAMS / EVENT_COLUMNS.len()).min(500)
}

/// Keys per `IN (…)` list.
pub(crate) const KEY_CHUNK: usize = 500;

/// Qualified table names for one configuration.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub dialect: Dialect,
    /// `schema.` or empty.
    pub schema_dot: String,
    pub prefix: String,
    pub events: String,
    pub mailboxes: String,
    pub runs: String,
    pub migrations: String,
}

impl Names {
    pub fn new(dialect: Dialect, schema: Option<&str>, prefix: &str) -> Self {
        let schema_dot = schema.map(|s| format!("{s}.")).unwrap_or_default();
        let table = |name: &str| format!("{schema_dot}{prefix}{name}");
        Self {
            dialect,
            events: table("events"),
            mailboxes: table("mailboxes"),
            runs: table("runs"),
            migrations: table("schema_migrations"),
            schema_dot: schema_dot.clone(),
            prefix: prefix.to_string(),
        }
    }

    /// Fills a migration template's `{{schema}}` and `{{prefix}}`.
    pub fn expand(&self, template: &str) -> String {
        template
            .replace("{{schema}}", &self.schema_dot)
            .replace("{{prefix}}", &self.prefix)
    }

    fn placeholders(&self, sql: &mut String, first: usize, count: usize) {
        for i in 0..count {
            if i > 0 {
                sql.push_str(", ");
            }
            self.dialect.placeholder(sql, first + i);
        }
    }

    /// `INSERT … VALUES (…), (…) ON CONFLICT …` for `rows` events that changes an existing row
    /// only when its content hash differs or it was soft-deleted (which revives it).
    pub fn upsert_events(&self, rows: usize) -> String {
        let cols = EVENT_COLUMNS.len();
        let mut sql = String::with_capacity(200 + rows * cols * 5);
        let alias = match self.dialect {
            Dialect::MySql => "",
            Dialect::Sqlite | Dialect::Postgres => " AS t",
        };
        let _ = write!(
            sql,
            "INSERT INTO {}{alias} ({}) VALUES ",
            self.events,
            EVENT_COLUMNS.join(", ")
        );
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            self.placeholders(&mut sql, row * cols + 1, cols);
            sql.push(')');
        }
        let updated = EVENT_COLUMNS.iter().filter(|c| !KEY_COLUMNS.contains(c));
        match self.dialect {
            Dialect::Sqlite | Dialect::Postgres => {
                sql.push_str(" ON CONFLICT (route, event_key) DO UPDATE SET ");
                for col in updated {
                    let _ = write!(sql, "{col} = excluded.{col}, ");
                }
                sql.push_str(
                    "deleted_at = NULL \
                     WHERE t.content_hash <> excluded.content_hash OR t.deleted_at IS NOT NULL",
                );
            }
            Dialect::MySql => {
                // Assignments run left to right and see earlier ones, so the condition is
                // evaluated on the old row by every column before `deleted_at` and
                // `content_hash`, which come last (and need no condition: when it is false
                // they already hold these values).
                let cond = "(content_hash <> VALUES(content_hash) OR deleted_at IS NOT NULL)";
                sql.push_str(" ON DUPLICATE KEY UPDATE ");
                for col in updated.filter(|c| **c != "content_hash") {
                    let _ = write!(sql, "{col} = IF({cond}, VALUES({col}), {col}), ");
                }
                sql.push_str("deleted_at = NULL, content_hash = VALUES(content_hash)");
            }
        }
        sql
    }

    /// Stored hash and deletion time of up to `keys` rows of a route.
    pub fn select_existing(&self, keys: usize) -> String {
        let mut sql = format!(
            "SELECT event_key, content_hash, deleted_at FROM {} WHERE route = ",
            self.events
        );
        self.dialect.placeholder(&mut sql, 1);
        sql.push_str(" AND event_key IN (");
        self.placeholders(&mut sql, 2, keys);
        sql.push(')');
        sql
    }

    /// Live keys of (route, mailbox, calendar) overlapping the half-open window — exactly
    /// [`calpump_plugin::Event::overlaps`]: a zero-length event counts when its instant lies
    /// inside. Binds: route, mailbox, calendar, window end, window start, window start,
    /// window end.
    pub fn select_live_in_window(&self) -> String {
        let mut sql = format!("SELECT event_key FROM {} WHERE route = ", self.events);
        let mut n = 0;
        let mut ph = |sql: &mut String| {
            n += 1;
            self.dialect.placeholder(sql, n);
        };
        ph(&mut sql);
        sql.push_str(" AND mailbox = ");
        ph(&mut sql);
        sql.push_str(" AND calendar = ");
        ph(&mut sql);
        sql.push_str(" AND deleted_at IS NULL AND ((start_utc < end_utc AND start_utc < ");
        ph(&mut sql);
        sql.push_str(" AND end_utc > ");
        ph(&mut sql);
        sql.push_str(") OR (start_utc = end_utc AND start_utc >= ");
        ph(&mut sql);
        sql.push_str(" AND start_utc < ");
        ph(&mut sql);
        sql.push_str("))");
        sql
    }

    /// Soft delete of up to `keys` live rows of (route, mailbox). Binds: deleted_at,
    /// synced_at, run_id, route, mailbox, keys….
    pub fn soft_delete(&self, keys: usize) -> String {
        let mut sql = format!("UPDATE {} SET deleted_at = ", self.events);
        self.dialect.placeholder(&mut sql, 1);
        sql.push_str(", synced_at = ");
        self.dialect.placeholder(&mut sql, 2);
        sql.push_str(", run_id = ");
        self.dialect.placeholder(&mut sql, 3);
        sql.push_str(" WHERE route = ");
        self.dialect.placeholder(&mut sql, 4);
        sql.push_str(" AND mailbox = ");
        self.dialect.placeholder(&mut sql, 5);
        sql.push_str(" AND deleted_at IS NULL AND event_key IN (");
        self.placeholders(&mut sql, 6, keys);
        sql.push(')');
        sql
    }

    /// Hard delete of up to `keys` rows of (route, mailbox). Binds: route, mailbox, keys….
    pub fn hard_delete(&self, keys: usize) -> String {
        let mut sql = format!("DELETE FROM {} WHERE route = ", self.events);
        self.dialect.placeholder(&mut sql, 1);
        sql.push_str(" AND mailbox = ");
        self.dialect.placeholder(&mut sql, 2);
        sql.push_str(" AND event_key IN (");
        self.placeholders(&mut sql, 3, keys);
        sql.push(')');
        sql
    }

    /// Row counts of (route, mailbox): all rows, soft-deleted rows.
    pub fn count_mailbox(&self) -> String {
        let mut sql = format!(
            "SELECT COUNT(*), COUNT(deleted_at) FROM {} WHERE route = ",
            self.events
        );
        self.dialect.placeholder(&mut sql, 1);
        sql.push_str(" AND mailbox = ");
        self.dialect.placeholder(&mut sql, 2);
        sql
    }

    /// Binds: route, mailbox, display_name, first_seen_at, last_seen_at, last_run_id,
    /// event_count, deleted_count.
    pub fn upsert_mailbox(&self) -> String {
        let mut sql = format!(
            "INSERT INTO {}{} (route, mailbox, display_name, first_seen_at, last_seen_at, \
             last_run_id, event_count, deleted_count) VALUES (",
            self.mailboxes,
            if self.dialect == Dialect::MySql {
                ""
            } else {
                " AS t"
            }
        );
        self.placeholders(&mut sql, 1, 8);
        sql.push(')');
        match self.dialect {
            Dialect::Sqlite | Dialect::Postgres => sql.push_str(
                " ON CONFLICT (route, mailbox) DO UPDATE SET \
                 display_name = COALESCE(excluded.display_name, t.display_name), \
                 last_seen_at = excluded.last_seen_at, last_run_id = excluded.last_run_id, \
                 event_count = excluded.event_count, deleted_count = excluded.deleted_count",
            ),
            Dialect::MySql => sql.push_str(
                " ON DUPLICATE KEY UPDATE \
                 display_name = COALESCE(VALUES(display_name), display_name), \
                 last_seen_at = VALUES(last_seen_at), last_run_id = VALUES(last_run_id), \
                 event_count = VALUES(event_count), deleted_count = VALUES(deleted_count)",
            ),
        }
        sql
    }

    /// Binds: run_id, route, started_at, finished_at, upserted, unchanged, deleted, rejected.
    pub fn upsert_run(&self) -> String {
        let mut sql = format!(
            "INSERT INTO {}{} (run_id, route, started_at, finished_at, batches, upserted, \
             unchanged, deleted, rejected) VALUES (",
            self.runs,
            if self.dialect == Dialect::MySql {
                ""
            } else {
                " AS t"
            }
        );
        self.placeholders(&mut sql, 1, 4);
        sql.push_str(", 1, ");
        self.placeholders(&mut sql, 5, 4);
        sql.push(')');
        // Batches of a run are written concurrently, each with its own clock reading: the run
        // spans the earliest start and the latest finish, whatever order they commit in.
        match self.dialect {
            Dialect::Sqlite => sql.push_str(
                " ON CONFLICT (run_id, route) DO UPDATE SET \
                 started_at = min(t.started_at, excluded.started_at), \
                 finished_at = max(t.finished_at, excluded.finished_at), \
                 batches = t.batches + 1, \
                 upserted = t.upserted + excluded.upserted, \
                 unchanged = t.unchanged + excluded.unchanged, \
                 deleted = t.deleted + excluded.deleted, \
                 rejected = t.rejected + excluded.rejected",
            ),
            Dialect::Postgres => sql.push_str(
                " ON CONFLICT (run_id, route) DO UPDATE SET \
                 started_at = LEAST(t.started_at, excluded.started_at), \
                 finished_at = GREATEST(t.finished_at, excluded.finished_at), \
                 batches = t.batches + 1, \
                 upserted = t.upserted + excluded.upserted, \
                 unchanged = t.unchanged + excluded.unchanged, \
                 deleted = t.deleted + excluded.deleted, \
                 rejected = t.rejected + excluded.rejected",
            ),
            Dialect::MySql => sql.push_str(
                " ON DUPLICATE KEY UPDATE \
                 started_at = LEAST(started_at, VALUES(started_at)), \
                 finished_at = GREATEST(finished_at, VALUES(finished_at)), \
                 batches = batches + 1, \
                 upserted = upserted + VALUES(upserted), \
                 unchanged = unchanged + VALUES(unchanged), \
                 deleted = deleted + VALUES(deleted), \
                 rejected = rejected + VALUES(rejected)",
            ),
        }
        sql
    }

    /// Every column of the rows of (route, mailbox[, calendar]) for [`crate::read`].
    pub fn select_rows(&self, with_calendar: bool) -> String {
        let mut sql = format!(
            "SELECT {}, deleted_at FROM {} WHERE route = ",
            EVENT_COLUMNS.join(", "),
            self.events
        );
        self.dialect.placeholder(&mut sql, 1);
        sql.push_str(" AND mailbox = ");
        self.dialect.placeholder(&mut sql, 2);
        if with_calendar {
            sql.push_str(" AND calendar = ");
            self.dialect.placeholder(&mut sql, 3);
        }
        sql.push_str(" ORDER BY start_utc, event_key");
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_bind_every_column_of_every_row_and_name_the_prefixed_table() {
        let pg = Names::new(Dialect::Postgres, Some("cal"), "cp_");
        let sql = pg.upsert_events(3);
        assert!(sql.starts_with("INSERT INTO cal.cp_events AS t ("), "{sql}");
        let n = EVENT_COLUMNS.len() * 3;
        assert!(sql.contains(&format!("${n})")), "{sql}");
        assert!(!sql.contains(&format!("${}", n + 1)), "{sql}");
        assert!(sql.contains("WHERE t.content_hash <> excluded.content_hash"));

        let my = Names::new(Dialect::MySql, None, "");
        let sql = my.upsert_events(2);
        assert_eq!(sql.matches('?').count(), EVENT_COLUMNS.len() * 2);
        // content_hash must be assigned after every conditional column.
        let hash_at = sql
            .rfind("content_hash = VALUES(content_hash)")
            .expect("hash");
        let last_if = sql.rfind("IF(").expect("if");
        assert!(hash_at > last_if, "{sql}");
        assert!(!sql.contains("route = IF"), "key columns never change");

        let lite = Names::new(Dialect::Sqlite, None, "x_");
        assert!(lite.select_live_in_window().contains("x_events"));
        assert_eq!(lite.select_live_in_window().matches('?').count(), 7);
        assert_eq!(lite.soft_delete(4).matches('?').count(), 9);
        assert_eq!(
            pg.hard_delete(2),
            "DELETE FROM cal.cp_events WHERE route = $1 AND mailbox = $2 AND event_key IN ($3, $4)"
        );
        assert!(upsert_chunk_rows() * EVENT_COLUMNS.len() <= MAX_PARAMS);
    }

    /// Two batches of one run committing in the reverse order of their clock readings: the
    /// run still starts at the earlier and finishes at the later (the real SQL on SQLite).
    #[tokio::test]
    async fn a_run_spans_its_batches_whatever_order_they_commit_in() {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("sqlite");
        sqlx::query(
            "CREATE TABLE runs (run_id TEXT NOT NULL, route TEXT NOT NULL, started_at TEXT, \
             finished_at TEXT, batches INTEGER, upserted INTEGER, unchanged INTEGER, \
             deleted INTEGER, rejected INTEGER, PRIMARY KEY (run_id, route))",
        )
        .execute(&mut conn)
        .await
        .expect("table");
        let sql = Names::new(Dialect::Sqlite, None, "").upsert_run();
        let at = |s: u32| {
            chrono::DateTime::<chrono::Utc>::from_timestamp(1_800_000_000 + i64::from(s), 0)
                .expect("time")
        };
        // The later reading commits first.
        for t in [at(10), at(5), at(7)] {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind("run-1")
                .bind("rooms")
                .bind(t)
                .bind(t)
                .bind(1_i64)
                .bind(0_i64)
                .bind(0_i64)
                .bind(0_i64)
                .execute(&mut conn)
                .await
                .expect("upsert");
        }
        let (start, end, batches): (
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
            i64,
        ) = sqlx::query_as("SELECT started_at, finished_at, batches FROM runs")
            .fetch_one(&mut conn)
            .await
            .expect("row");
        assert_eq!((start, end, batches), (at(5), at(10), 3));
        assert!(
            Names::new(Dialect::Postgres, None, "")
                .upsert_run()
                .contains("GREATEST(t.finished_at")
        );
        assert!(
            Names::new(Dialect::MySql, None, "")
                .upsert_run()
                .contains("LEAST(started_at, VALUES(started_at))")
        );
    }

    #[test]
    fn templates_expand_schema_and_prefix() {
        let pg = Names::new(Dialect::Postgres, Some("cal"), "cp_");
        assert_eq!(
            pg.expand("CREATE INDEX {{prefix}}i ON {{schema}}{{prefix}}events"),
            "CREATE INDEX cp_i ON cal.cp_events"
        );
    }
}
