//! Embedded, versioned migrations per dialect, applied on start and recorded in
//! `<prefix>schema_migrations` (version, description, checksum, applied_at).
//!
//! The SQL lives in `migrations/<dialect>/NNNN_description.sql` with `{{schema}}`/`{{prefix}}`
//! placeholders. A migration is applied once; its checksum (SHA-256 of the file) is recorded and
//! compared on every start, so an edited migration or a database from a newer calpump is refused
//! instead of silently diverging. Concurrent starts are serialised by an advisory lock
//! (PostgreSQL `pg_advisory_lock`, MariaDB/MySQL `GET_LOCK`) or by SQLite's write lock.

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::db::{Col, Conn, Param, Pool};
use crate::dialect::{Dialect, Names};

/// One embedded migration.
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[Migration {
    version: 1,
    description: "initial: events, mailboxes, runs",
    sql: include_str!("../migrations/sqlite/0001_initial.sql"),
}];

const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    description: "initial: events, mailboxes, runs",
    sql: include_str!("../migrations/postgres/0001_initial.sql"),
}];

const MYSQL: &[Migration] = &[Migration {
    version: 1,
    description: "initial: events, mailboxes, runs",
    sql: include_str!("../migrations/mysql/0001_initial.sql"),
}];

pub(crate) fn migrations(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
        Dialect::MySql => MYSQL,
    }
}

/// The newest schema version this build knows for `dialect`.
pub fn latest_version(dialect: Dialect) -> i64 {
    migrations(dialect).last().map_or(0, |m| m.version)
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error(
        "migration {version} ({description}) was changed after it was applied to this database \
         (recorded checksum {recorded}, this build has {embedded}); restore the original or use a \
         fresh database"
    )]
    Changed {
        version: i64,
        description: String,
        recorded: String,
        embedded: String,
    },
    #[error(
        "the database schema is at version {found}, newer than this calpump knows ({known}); \
         upgrade calpump or point it at another database"
    )]
    Newer { found: i64, known: i64 },
    #[error("could not take the migration lock within 60 s (another calpump is migrating?)")]
    Locked,
}

/// Applies every pending migration; returns the schema version now in place.
pub(crate) async fn run(pool: &Pool, names: &Names) -> Result<i64, MigrateError> {
    let dialect = names.dialect;
    let mut conn = pool.acquire().await?;
    if dialect == Dialect::Postgres && !names.schema_dot.is_empty() {
        let schema = names.schema_dot.trim_end_matches('.');
        conn.conn()
            .raw(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    conn.conn().raw(&create_migrations_table(names)).await?;
    lock(&mut conn, names).await?;
    let result = apply_pending(&mut conn, names).await;
    let unlocked = unlock(&mut conn, names).await;
    let version = result?;
    unlocked?;
    Ok(version)
}

fn create_migrations_table(names: &Names) -> String {
    let (int, text, ts) = match names.dialect {
        Dialect::Sqlite => ("INTEGER", "TEXT", "TEXT"),
        Dialect::Postgres => ("bigint", "text", "timestamptz"),
        Dialect::MySql => ("BIGINT", "VARCHAR(255)", "DATETIME(6)"),
    };
    let tail = if names.dialect == Dialect::MySql {
        " ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
    } else {
        ""
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} (version {int} NOT NULL PRIMARY KEY, \
         description {text} NOT NULL, checksum {text} NOT NULL, applied_at {ts} NOT NULL){tail}",
        names.migrations
    )
}

fn lock_name(names: &Names) -> String {
    format!("calpump_sink_db:{}{}", names.schema_dot, names.prefix)
}

/// A stable 63-bit key for `pg_advisory_lock`.
fn pg_lock_key(names: &Names) -> i64 {
    let digest = Sha256::digest(lock_name(names).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes) & i64::MAX
}

async fn lock(conn: &mut Conn, names: &Names) -> Result<(), MigrateError> {
    match names.dialect {
        Dialect::Sqlite => Ok(()), // each migration runs under BEGIN IMMEDIATE
        Dialect::Postgres => {
            conn.conn()
                .execute(
                    "SELECT pg_advisory_lock($1)",
                    vec![Param::I64(pg_lock_key(names))],
                )
                .await?;
            Ok(())
        }
        Dialect::MySql => {
            let rows = conn
                .conn()
                .fetch(
                    "SELECT GET_LOCK(?, 60)",
                    vec![Param::text(lock_name(names))],
                    &[Col::I64],
                )
                .await?;
            match rows.first().and_then(|r| r[0].i64()) {
                Some(1) => Ok(()),
                _ => Err(MigrateError::Locked),
            }
        }
    }
}

async fn unlock(conn: &mut Conn, names: &Names) -> Result<(), MigrateError> {
    match names.dialect {
        Dialect::Sqlite => {}
        Dialect::Postgres => {
            conn.conn()
                .execute(
                    "SELECT pg_advisory_unlock($1)",
                    vec![Param::I64(pg_lock_key(names))],
                )
                .await?;
        }
        Dialect::MySql => {
            conn.conn()
                .fetch(
                    "SELECT RELEASE_LOCK(?)",
                    vec![Param::text(lock_name(names))],
                    &[Col::I64],
                )
                .await?;
        }
    }
    Ok(())
}

async fn applied(conn: &mut Conn, names: &Names) -> Result<Vec<(i64, String)>, MigrateError> {
    let rows = conn
        .conn()
        .fetch(
            &format!(
                "SELECT version, checksum FROM {} ORDER BY version",
                names.migrations
            ),
            vec![],
            &[Col::I64, Col::Text],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r[0].i64().unwrap_or_default(),
                r[1].text().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

async fn apply_pending(conn: &mut Conn, names: &Names) -> Result<i64, MigrateError> {
    let dialect = names.dialect;
    let known = migrations(dialect);
    let latest = latest_version(dialect);
    let done = applied(conn, names).await?;
    if let Some((found, _)) = done.iter().find(|(v, _)| *v > latest) {
        return Err(MigrateError::Newer {
            found: *found,
            known: latest,
        });
    }
    for migration in known {
        let embedded = checksum(migration.sql);
        if let Some((_, recorded)) = done.iter().find(|(v, _)| *v == migration.version) {
            if *recorded != embedded {
                return Err(MigrateError::Changed {
                    version: migration.version,
                    description: migration.description.to_string(),
                    recorded: recorded.clone(),
                    embedded,
                });
            }
            continue;
        }
        let sql = names.expand(migration.sql);
        let record = format!(
            "INSERT INTO {} (version, description, checksum, applied_at) VALUES ({})",
            names.migrations,
            if dialect == Dialect::Postgres {
                "$1, $2, $3, $4"
            } else {
                "?, ?, ?, ?"
            }
        );
        let params = vec![
            Param::I64(migration.version),
            Param::text(migration.description),
            Param::text(embedded.clone()),
            Param::ts(Utc::now()),
        ];
        match dialect {
            Dialect::Sqlite | Dialect::Postgres => {
                // Transactional DDL: the migration and its record land together or not at all.
                conn.begin().await?;
                let outcome = async {
                    // Another process may have applied it while we waited for the lock.
                    let again = applied(conn, names).await?;
                    if again.iter().any(|(v, _)| *v == migration.version) {
                        return Ok::<bool, MigrateError>(false);
                    }
                    conn.conn().raw(&sql).await?;
                    conn.conn().execute(&record, params).await?;
                    Ok(true)
                }
                .await;
                match outcome {
                    Ok(_) => conn.conn().raw("COMMIT").await?,
                    Err(e) => {
                        let _ = conn.conn().raw("ROLLBACK").await;
                        return Err(e);
                    }
                }
            }
            Dialect::MySql => {
                // DDL commits implicitly here; the statements are idempotent instead, and the
                // advisory lock keeps concurrent starts apart.
                conn.conn().raw(&sql).await?;
                conn.conn().execute(&record, params).await?;
            }
        }
        tracing::info!(
            dialect = dialect.name(),
            version = migration.version,
            description = migration.description,
            "database sink: applied migration"
        );
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_has_the_same_versions_and_placeholders_expand() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let ms = migrations(dialect);
            assert_eq!(
                ms.iter().map(|m| m.version).collect::<Vec<_>>(),
                vec![1],
                "{dialect:?}"
            );
            let names = Names::new(dialect, None, "cp_");
            let sql = names.expand(ms[0].sql);
            assert!(!sql.contains("{{"), "{dialect:?}: unexpanded placeholder");
            for table in ["cp_events", "cp_mailboxes", "cp_runs"] {
                assert!(sql.contains(table), "{dialect:?} lacks {table}");
            }
            for col in crate::dialect::EVENT_COLUMNS {
                assert!(
                    sql.contains(&format!("    {col} ")),
                    "{dialect:?} lacks {col}"
                );
            }
        }
    }
}
