//! A thin engine-neutral layer over sqlx's three drivers: one pool type, one transaction type,
//! statements with [`Param`]s bound by position and rows read back as [`Val`]s. Everything above
//! it ([`crate::write`], [`crate::migrate`], [`crate::read`]) is written once for all engines.

use chrono::{DateTime, Utc};
use sqlx::mysql::{MySql, MySqlConnection, MySqlDatabaseError, MySqlPool, MySqlRow};
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Row as _, Transaction};

use crate::config::{Config, ConnectOptions};

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(Option<String>),
    I64(i64),
    Bool(bool),
    Ts(Option<DateTime<Utc>>),
    Json(serde_json::Value),
}

impl Param {
    pub fn text(s: impl Into<String>) -> Self {
        Param::Text(Some(s.into()))
    }
    pub fn ts(t: DateTime<Utc>) -> Self {
        Param::Ts(Some(t))
    }
}

/// The type of a column read back.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Col {
    Text,
    I64,
    Bool,
    Ts,
    Json,
}

/// A value read back. Nullable columns read as `None`.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Text(Option<String>),
    I64(Option<i64>),
    Bool(Option<bool>),
    Ts(Option<DateTime<Utc>>),
    Json(Option<serde_json::Value>),
}

impl Val {
    pub fn text(&self) -> Option<&str> {
        match self {
            Val::Text(v) => v.as_deref(),
            _ => None,
        }
    }
    pub fn ts(&self) -> Option<DateTime<Utc>> {
        match self {
            Val::Ts(v) => *v,
            _ => None,
        }
    }
    pub fn i64(&self) -> Option<i64> {
        match self {
            Val::I64(v) => *v,
            _ => None,
        }
    }
    pub fn bool(&self) -> Option<bool> {
        match self {
            Val::Bool(v) => *v,
            _ => None,
        }
    }
    pub fn json(&self) -> Option<&serde_json::Value> {
        match self {
            Val::Json(v) => v.as_ref(),
            _ => None,
        }
    }
}

/// A pool of one engine.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// An open transaction (or, for migrations and reads, a plain pooled connection).
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    MySql(Transaction<'static, MySql>),
}

/// A pooled connection outside any transaction.
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
    MySql(PoolConnection<MySql>),
}

/// A connection borrowed from a [`Tx`] or [`Conn`].
pub(crate) enum ConnMut<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
    MySql(&'a mut MySqlConnection),
}

impl Pool {
    /// Connects (at least one connection, so a wrong password or host shows now).
    pub async fn connect(config: &Config) -> Result<Self, sqlx::Error> {
        let max = config.max_connections();
        let timeout = config.connect_timeout();
        let options = config
            .connect_options()
            .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?;
        fn opts<DB: sqlx::Database>(max: u32, timeout: std::time::Duration) -> PoolOptions<DB> {
            PoolOptions::<DB>::new()
                .max_connections(max)
                .min_connections(0)
                .acquire_timeout(timeout)
                .idle_timeout(Some(std::time::Duration::from_secs(300)))
        }
        Ok(match options {
            ConnectOptions::Sqlite(o) => Pool::Sqlite(
                opts(max, timeout)
                    .connect_with(o.disable_statement_logging())
                    .await?,
            ),
            ConnectOptions::Postgres(o) => {
                let server_port = o.get_port();
                Pool::Postgres(
                    opts(max, timeout)
                        .after_connect(move |conn, _meta| {
                            Box::pin(async move {
                                // NULL over a Unix socket.
                                let port: Option<i32> =
                                    sqlx::query_scalar("SELECT inet_client_port()")
                                        .fetch_one(&mut *conn)
                                        .await?;
                                if let Some(port) = port.and_then(|p| u16::try_from(p).ok()) {
                                    let set = crate::nodelay::set_for(port, server_port);
                                    tracing::trace!(port, set, "database sink: TCP_NODELAY");
                                }
                                Ok(())
                            })
                        })
                        .connect_with(o.disable_statement_logging())
                        .await?,
                )
            }
            ConnectOptions::MySql(o) => {
                let server_port = o.get_port();
                Pool::MySql(
                    opts(max, timeout)
                        .after_connect(move |conn, _meta| {
                            Box::pin(async move {
                                // READ COMMITTED: InnoDB then takes no gap locks on scans, so
                                // writers of different mailboxes never wait for each other's
                                // index ranges.
                                sqlx::raw_sql(
                                    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                                )
                                .execute(&mut *conn)
                                .await?;
                                // `host:port` as the server sees this client (`localhost` over
                                // a Unix socket).
                                let host: Option<String> = sqlx::query_scalar(
                                    "SELECT HOST FROM information_schema.PROCESSLIST \
                                     WHERE ID = CONNECTION_ID()",
                                )
                                .fetch_optional(&mut *conn)
                                .await?;
                                if let Some(port) = host
                                    .as_deref()
                                    .and_then(|h| h.rsplit_once(':'))
                                    .and_then(|(_, p)| p.parse::<u16>().ok())
                                {
                                    let set = crate::nodelay::set_for(port, server_port);
                                    tracing::trace!(port, set, "database sink: TCP_NODELAY");
                                }
                                Ok(())
                            })
                        })
                        .connect_with(o.disable_statement_logging())
                        .await?,
                )
            }
        })
    }

    /// Begins the transaction a batch is written in. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a reader that later writes can never fail with a stale
    /// snapshot: it waits (busy timeout) instead.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
            Pool::MySql(p) => Tx::MySql(p.begin().await?),
        })
    }

    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await?),
            Pool::MySql(p) => Conn::MySql(p.acquire().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
        }
    }
}

impl Tx {
    pub fn conn(&mut self) -> ConnMut<'_> {
        match self {
            Tx::Sqlite(t) => ConnMut::Sqlite(t),
            Tx::Postgres(t) => ConnMut::Postgres(t),
            Tx::MySql(t) => ConnMut::MySql(t),
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
            Tx::MySql(t) => t.commit().await,
        }
    }

    pub async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, sqlx::Error> {
        self.conn().execute(sql, params).await
    }

    pub async fn fetch(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        cols: &[Col],
    ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
        self.conn().fetch(sql, params, cols).await
    }
}

impl Conn {
    pub fn conn(&mut self) -> ConnMut<'_> {
        match self {
            Conn::Sqlite(c) => ConnMut::Sqlite(c),
            Conn::Postgres(c) => ConnMut::Postgres(c),
            Conn::MySql(c) => ConnMut::MySql(c),
        }
    }

    /// Begins a transaction on this connection.
    pub async fn begin(&mut self) -> Result<(), sqlx::Error> {
        let sql = match self {
            Conn::Sqlite(_) => "BEGIN IMMEDIATE",
            Conn::Postgres(_) => "BEGIN",
            Conn::MySql(_) => "START TRANSACTION",
        };
        self.conn().raw(sql).await
    }
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Param::Text(v) => q.bind(v),
                Param::I64(v) => q.bind(v),
                Param::Bool(v) => q.bind(v),
                Param::Ts(v) => q.bind(v),
                Param::Json(v) => q.bind(Json(v)),
            };
        }
        q
    }};
}

macro_rules! decode_row {
    ($row:expr, $cols:expr) => {{
        let row = $row;
        let mut out = Vec::with_capacity($cols.len());
        for (i, col) in $cols.iter().enumerate() {
            out.push(match col {
                Col::Text => Val::Text(row.try_get::<Option<String>, _>(i)?),
                Col::I64 => Val::I64(row.try_get::<Option<i64>, _>(i)?),
                Col::Bool => Val::Bool(row.try_get::<Option<bool>, _>(i)?),
                Col::Ts => Val::Ts(row.try_get::<Option<DateTime<Utc>>, _>(i)?),
                Col::Json => Val::Json(
                    row.try_get::<Option<Json<serde_json::Value>>, _>(i)?
                        .map(|j| j.0),
                ),
            });
        }
        out
    }};
}

fn decode_sqlite(row: &SqliteRow, cols: &[Col]) -> Result<Vec<Val>, sqlx::Error> {
    Ok(decode_row!(row, cols))
}
fn decode_pg(row: &PgRow, cols: &[Col]) -> Result<Vec<Val>, sqlx::Error> {
    Ok(decode_row!(row, cols))
}
fn decode_mysql(row: &MySqlRow, cols: &[Col]) -> Result<Vec<Val>, sqlx::Error> {
    Ok(decode_row!(row, cols))
}

impl ConnMut<'_> {
    /// Runs one statement with bound parameters; returns the rows it affected.
    pub async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            ConnMut::Sqlite(c) => bind_all!(sqlx::query::<Sqlite>(sql), params)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            ConnMut::Postgres(c) => bind_all!(sqlx::query::<Postgres>(sql), params)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            ConnMut::MySql(c) => bind_all!(sqlx::query::<MySql>(sql), params)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    /// Runs one query; decodes each row's columns as `cols` says.
    pub async fn fetch(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        cols: &[Col],
    ) -> Result<Vec<Vec<Val>>, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_string());
        match self {
            ConnMut::Sqlite(c) => bind_all!(sqlx::query::<Sqlite>(sql), params)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| decode_sqlite(r, cols))
                .collect(),
            ConnMut::Postgres(c) => bind_all!(sqlx::query::<Postgres>(sql), params)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| decode_pg(r, cols))
                .collect(),
            ConnMut::MySql(c) => bind_all!(sqlx::query::<MySql>(sql), params)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| decode_mysql(r, cols))
                .collect(),
        }
    }

    /// Runs SQL text without parameters (several statements allowed), e.g. a migration.
    pub async fn raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_string());
        match self {
            ConnMut::Sqlite(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(|_| ()),
            ConnMut::Postgres(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(|_| ()),
            ConnMut::MySql(c) => sqlx::raw_sql(sql).execute(&mut **c).await.map(|_| ()),
        }
    }

    /// Checks the connection is alive.
    pub async fn ping(&mut self) -> Result<(), sqlx::Error> {
        match self {
            ConnMut::Sqlite(c) => c.ping().await,
            ConnMut::Postgres(c) => c.ping().await,
            ConnMut::MySql(c) => c.ping().await,
        }
    }
}

/// How a database error should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// Passing: connection lost, lock timeout, deadlock, server busy. Retry the batch later.
    Retryable,
    /// This row's data cannot be stored (constraint, value out of range, bad encoding):
    /// reject the row, keep the others.
    Row,
    /// The configuration is wrong (authentication, unknown database, permissions).
    Config,
    /// Anything else (schema broken, a bug): stop.
    Fatal,
}

pub(crate) fn classify(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorClass::Retryable,
        sqlx::Error::Configuration(_) => ErrorClass::Config,
        sqlx::Error::Encode(_) | sqlx::Error::InvalidArgument(_) => ErrorClass::Row,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                classify_pg(pg.code())
            } else if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
                classify_mysql(my.number())
            } else if let Some(code) = db.code() {
                classify_sqlite(code.parse::<i32>().unwrap_or(1))
            } else {
                ErrorClass::Fatal
            }
        }
        _ => ErrorClass::Fatal,
    }
}

/// SQLSTATE classes: <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
fn classify_pg(code: &str) -> ErrorClass {
    match code {
        "40001" | "40P01" | "55P03" | "57014" => ErrorClass::Retryable,
        "3D000" | "3F000" | "42501" => ErrorClass::Config,
        _ => match &code[..code.len().min(2)] {
            "08" | "53" | "57" | "58" => ErrorClass::Retryable,
            "28" => ErrorClass::Config,
            "22" | "23" => ErrorClass::Row,
            _ => ErrorClass::Fatal,
        },
    }
}

/// Error numbers: <https://mariadb.com/kb/en/mariadb-error-code-reference/>.
fn classify_mysql(number: u16) -> ErrorClass {
    match number {
        // lock wait timeout, deadlock, too many connections, server gone/lost, shutdown,
        // query interrupted, read-only (failover)
        1205 | 1213 | 1040 | 1053 | 1317 | 1290 | 2006 | 2013 | 1927 => ErrorClass::Retryable,
        // access denied, unknown database, no privilege
        1044 | 1045 | 1049 | 1142 | 1143 | 1227 | 1698 => ErrorClass::Config,
        // data too long, incorrect value/string/datetime, out of range, NULL, duplicate,
        // invalid JSON, CHECK constraint
        1406 | 1366 | 1292 | 1264 | 1048 | 1062 | 1265 | 1367 | 3140 | 4025 | 3819 | 1411 => {
            ErrorClass::Row
        }
        _ => ErrorClass::Fatal,
    }
}

/// Result codes: <https://www.sqlite.org/rescode.html> (extended codes keep the primary code in
/// their low byte).
fn classify_sqlite(code: i32) -> ErrorClass {
    match code & 0xff {
        5 | 6 | 10 | 13 | 15 => ErrorClass::Retryable, // BUSY, LOCKED, IOERR, FULL, PROTOCOL
        3 | 8 | 14 | 23 => ErrorClass::Config,         // PERM, READONLY, CANTOPEN, AUTH
        18 | 19 | 20 | 25 => ErrorClass::Row,          // TOOBIG, CONSTRAINT, MISMATCH, RANGE
        _ => ErrorClass::Fatal,
    }
}

/// A short, secret-free description of a database error for logs and results.
pub(crate) fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (code {code})", db.message()),
            None => db.message().to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_engine_codes() {
        assert_eq!(classify_pg("40P01"), ErrorClass::Retryable);
        assert_eq!(classify_pg("08006"), ErrorClass::Retryable);
        assert_eq!(classify_pg("28P01"), ErrorClass::Config);
        assert_eq!(classify_pg("22021"), ErrorClass::Row);
        assert_eq!(classify_pg("23505"), ErrorClass::Row);
        assert_eq!(classify_pg("42P01"), ErrorClass::Fatal);
        assert_eq!(classify_mysql(1213), ErrorClass::Retryable);
        assert_eq!(classify_mysql(1045), ErrorClass::Config);
        assert_eq!(classify_mysql(1406), ErrorClass::Row);
        assert_eq!(classify_sqlite(517), ErrorClass::Retryable); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(classify_sqlite(2067), ErrorClass::Row); // SQLITE_CONSTRAINT_UNIQUE
        assert_eq!(classify_sqlite(11), ErrorClass::Fatal); // SQLITE_CORRUPT
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorClass::Retryable);
    }
}
