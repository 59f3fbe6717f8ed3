//! Writing one batch: one transaction, upserts only where the content hash changed, deletes
//! (soft or hard), the complete-snapshot sweep, per-row rejection.
//!
//! The order inside the transaction:
//!
//! 1. read the stored hash and deletion state of every upserted key (no locks taken);
//! 2. upsert, in multi-row statements, only the events that are new, changed or soft-deleted —
//!    an unchanged event costs no write at all, so a replay changes nothing, not even `run_id`;
//! 3. apply the batch's deletes (they win over an upsert of the same key in the same batch);
//! 4. for a snapshot with `complete = true` only: delete the live rows of this (route, mailbox,
//!    calendar) that overlap the window and whose key the batch did not contain;
//! 5. refresh the mailbox's row (`mailboxes`) and commit.
//!
//! Run statistics (`runs`) are added after the commit in their own statement, so concurrent
//! batches of one run never queue behind each other's transactions on that shared row.
//!
//! Locks: only rows of the batch's own (route, mailbox) are written inside the transaction, and
//! MariaDB/MySQL sessions run at READ COMMITTED (no gap locks), so writers of different
//! mailboxes never wait for each other. SQLite has one writer at a time by design; WAL lets
//! readers go on meanwhile and the busy timeout makes writers queue instead of failing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use calpump_plugin::{Batch, BatchKind, Event, EventKey, ItemFailure, SCHEMA_VERSION, SinkResult};
use chrono::{DateTime, SubsecRound, Utc};

use crate::config::DeleteMode;
use crate::db::{Col, ErrorClass, Param, Pool, Tx, classify, describe};
use crate::dialect::{EVENT_COLUMNS, KEY_CHUNK, Names, upsert_chunk_rows};
use crate::validate::{check_batch, check_event};

/// What a batch did, for the result, the `runs` table, logs and metrics.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    pub upserted: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub vanished: u64,
    /// Rows the database itself refused (after validation passed).
    pub refused: Vec<ItemFailure>,
}

/// An event ready to bind.
struct Prepared {
    event: Event,
    hash: String,
    attendees: serde_json::Value,
    categories: serde_json::Value,
}

/// Errors of a batch write: the database's, or a batch that cannot be stored at all.
#[derive(Debug)]
pub(crate) enum WriteError {
    Db(sqlx::Error),
    Batch(String),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Db(e)
    }
}

/// Writes one batch. Retries a deadlock or serialization failure a few times itself.
pub(crate) async fn write_batch(
    pool: &Pool,
    names: &Names,
    delete: DeleteMode,
    mut batch: Batch,
) -> Result<(SinkResult, Outcome), WriteError> {
    let dialect = names.dialect;
    // Rows store the mailbox as the model normalises it (trimmed, lower-case).
    batch.mailbox = batch.mailbox.trim().to_lowercase();
    check_batch(&batch, dialect).map_err(WriteError::Batch)?;

    // Validate and de-duplicate (the last occurrence of a key wins).
    let upserts = std::mem::take(&mut batch.upserts);
    let contained: Vec<EventKey> = upserts.iter().map(|e| e.key().clone()).collect();
    let mut last: HashMap<&EventKey, usize> = HashMap::new();
    for (i, key) in contained.iter().enumerate() {
        last.insert(key, i);
    }
    let mut rejected: Vec<ItemFailure> = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::with_capacity(last.len());
    for (i, event) in upserts.into_iter().enumerate() {
        if last.get(event.key()) != Some(&i) {
            continue;
        }
        let attendees = serde_json::to_value(&event.attendees).unwrap_or_default();
        let categories = serde_json::to_value(&event.categories).unwrap_or_default();
        match check_event(&event, &batch, &attendees, &categories, dialect) {
            Ok(()) => prepared.push(Prepared {
                hash: event.content_hash(),
                event,
                attendees,
                categories,
            }),
            Err(reason) => rejected.push(ItemFailure {
                key: event.key().clone(),
                reason,
            }),
        }
    }
    let mut deletes: Vec<EventKey> = Vec::new();
    let mut seen = HashSet::new();
    for key in &batch.deletes {
        if seen.insert(key) {
            deletes.push(key.clone());
        }
    }

    let mut attempt = 0u32;
    let outcome = loop {
        match write_once(pool, names, delete, &batch, &contained, &prepared, &deletes).await {
            Ok(outcome) => break outcome,
            Err(WriteError::Db(e)) if is_conflict(&e) && attempt < 3 => {
                attempt += 1;
                tracing::debug!(
                    route = %batch.route,
                    mailbox = %batch.mailbox,
                    attempt,
                    error = %describe(&e),
                    "database sink: transaction conflict, retrying"
                );
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    };

    let refused: HashSet<&EventKey> = outcome.refused.iter().map(|f| &f.key).collect();
    let mut accepted: Vec<EventKey> = prepared
        .iter()
        .map(|p| p.event.key())
        .filter(|k| !refused.contains(k))
        .cloned()
        .collect();
    accepted.extend(deletes.iter().cloned());
    rejected.extend(outcome.refused.iter().cloned());
    let result = SinkResult {
        schema_version: SCHEMA_VERSION,
        accepted,
        rejected,
        retryable: Vec::new(),
        next_wakeup: None,
    };
    Ok((result, outcome))
}

fn is_conflict(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(db) = e
        && let Some(code) = db.code()
    {
        // PostgreSQL serialization failure / deadlock; MariaDB/MySQL SQLSTATE of a deadlock.
        return matches!(code.as_ref(), "40001" | "40P01");
    }
    false
}

/// `now`, at the microsecond precision every engine stores.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_string(),
    }
}

/// The bound values of one event, in [`EVENT_COLUMNS`] order.
fn event_params(
    route: &str,
    p: &Prepared,
    synced_at: DateTime<Utc>,
    run_id: &str,
    out: &mut Vec<Param>,
) {
    let e = &p.event;
    let organizer = e.organizer.as_ref();
    out.extend([
        Param::text(route),
        Param::text(e.key().as_str()),
        Param::text(e.mailbox()),
        Param::text(e.calendar.clone()),
        Param::text(enum_name(&e.kind)),
        Param::text(e.subject.clone()),
        Param::Text(e.location.clone()),
        Param::Text(organizer.and_then(|o| o.name.clone())),
        Param::Text(organizer.and_then(|o| o.email.clone())),
        Param::ts(e.start),
        Param::ts(e.end),
        Param::Text(e.time_zone.clone()),
        Param::Bool(e.all_day),
        Param::text(enum_name(&e.show_as)),
        Param::text(enum_name(&e.sensitivity)),
        Param::Bool(e.cancelled),
        Param::Text(e.online_meeting_url.clone()),
        Param::Text(e.series_key().map(|k| k.as_str().to_string())),
        Param::Ts(e.original_start()),
        Param::text(e.global_object_id().as_hex()),
        Param::Text(e.ical_uid.clone()),
        Param::text(e.source.backend.clone()),
        Param::text(e.source.item_id.clone()),
        Param::Text(e.source.change_key.clone()),
        Param::Ts(e.last_modified),
        Param::Json(p.attendees.clone()),
        Param::Json(p.categories.clone()),
        Param::text(p.hash.clone()),
        Param::ts(synced_at),
        Param::text(run_id),
    ]);
    debug_assert_eq!(out.len() % EVENT_COLUMNS.len(), 0);
}

async fn write_once(
    pool: &Pool,
    names: &Names,
    delete: DeleteMode,
    batch: &Batch,
    contained: &[EventKey],
    prepared: &[Prepared],
    deletes: &[EventKey],
) -> Result<Outcome, WriteError> {
    let started = Instant::now();
    let synced_at = now();
    let mut outcome = Outcome::default();
    let mut tx = pool.begin().await?;

    // 1. What is stored for these keys.
    let mut stored: HashMap<String, (String, bool)> = HashMap::with_capacity(prepared.len());
    for chunk in prepared.chunks(KEY_CHUNK) {
        let mut params = Vec::with_capacity(chunk.len() + 1);
        params.push(Param::text(batch.route.clone()));
        params.extend(chunk.iter().map(|p| Param::text(p.event.key().as_str())));
        let rows = tx
            .fetch(
                &names.select_existing(chunk.len()),
                params,
                &[Col::Text, Col::Text, Col::Ts],
            )
            .await?;
        for row in rows {
            let key = row[0].text().unwrap_or_default().to_string();
            let hash = row[1].text().unwrap_or_default().to_string();
            stored.insert(key, (hash, row[2].ts().is_some()));
        }
    }

    // 2. Upsert what is new, changed or revived.
    let changed: Vec<&Prepared> = prepared
        .iter()
        .filter(|p| match stored.get(p.event.key().as_str()) {
            Some((hash, deleted)) => *deleted || *hash != p.hash,
            None => true,
        })
        .collect();
    outcome.unchanged = (prepared.len() - changed.len()) as u64;
    for chunk in changed.chunks(upsert_chunk_rows()) {
        let refused = upsert_chunk(&mut tx, names, batch, chunk, synced_at).await?;
        outcome.upserted += (chunk.len() - refused.len()) as u64;
        outcome.refused.extend(refused);
    }

    // 3. Deletes named by the batch.
    outcome.deleted = delete_keys(&mut tx, names, delete, batch, deletes, synced_at).await?;

    // 4. A complete snapshot removes what it no longer contains inside its window.
    if batch.kind == BatchKind::Snapshot && batch.complete {
        let rows = tx
            .fetch(
                &names.select_live_in_window(),
                vec![
                    Param::text(batch.route.clone()),
                    Param::text(batch.mailbox.clone()),
                    Param::text(batch.calendar.clone()),
                    Param::ts(batch.window.end),
                    Param::ts(batch.window.start),
                    Param::ts(batch.window.start),
                    Param::ts(batch.window.end),
                ],
                &[Col::Text],
            )
            .await?;
        let contained: HashSet<&str> = contained
            .iter()
            .chain(deletes)
            .map(EventKey::as_str)
            .collect();
        let vanished: Vec<EventKey> = rows
            .iter()
            .filter_map(|r| r[0].text())
            .filter(|k| !contained.contains(k))
            .map(EventKey::from_stored)
            .collect();
        if !vanished.is_empty() {
            outcome.vanished =
                delete_keys(&mut tx, names, delete, batch, &vanished, synced_at).await?;
        }
    }

    // 5. The mailbox's row.
    let counts = tx
        .fetch(
            &names.count_mailbox(),
            vec![
                Param::text(batch.route.clone()),
                Param::text(batch.mailbox.clone()),
            ],
            &[Col::I64, Col::I64],
        )
        .await?;
    let (total, deleted) = counts
        .first()
        .map(|r| (r[0].i64().unwrap_or(0), r[1].i64().unwrap_or(0)))
        .unwrap_or((0, 0));
    tx.execute(
        &names.upsert_mailbox(),
        vec![
            Param::text(batch.route.clone()),
            Param::text(batch.mailbox.clone()),
            Param::Text(batch.mailbox_name.clone()),
            Param::ts(synced_at),
            Param::ts(synced_at),
            Param::text(batch.run_id.clone()),
            Param::I64(total - deleted),
            Param::I64(deleted),
        ],
    )
    .await?;
    tx.commit().await?;

    tracing::debug!(
        route = %batch.route,
        mailbox = %batch.mailbox,
        calendar = %batch.calendar,
        upserted = outcome.upserted,
        unchanged = outcome.unchanged,
        deleted = outcome.deleted,
        vanished = outcome.vanished,
        refused = outcome.refused.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "database sink: batch committed"
    );
    Ok(outcome)
}

/// Upserts one chunk in one statement. If the database refuses it for a row's data, redoes
/// the chunk row by row, each under its own savepoint, and returns the rows it refused.
async fn upsert_chunk(
    tx: &mut Tx,
    names: &Names,
    batch: &Batch,
    chunk: &[&Prepared],
    synced_at: DateTime<Utc>,
) -> Result<Vec<ItemFailure>, sqlx::Error> {
    let mut params = Vec::with_capacity(chunk.len() * EVENT_COLUMNS.len());
    for p in chunk {
        event_params(&batch.route, p, synced_at, &batch.run_id, &mut params);
    }
    tx.execute("SAVEPOINT calpump_chunk", vec![]).await?;
    match tx.execute(&names.upsert_events(chunk.len()), params).await {
        Ok(_) => {
            tx.execute("RELEASE SAVEPOINT calpump_chunk", vec![])
                .await?;
            return Ok(Vec::new());
        }
        Err(e) if classify(&e) == ErrorClass::Row => {
            tracing::debug!(error = %describe(&e), "database sink: a row was refused; retrying the chunk row by row");
            tx.execute("ROLLBACK TO SAVEPOINT calpump_chunk", vec![])
                .await?;
        }
        Err(e) => return Err(e),
    }
    let mut refused = Vec::new();
    let one = names.upsert_events(1);
    for p in chunk {
        let mut params = Vec::with_capacity(EVENT_COLUMNS.len());
        event_params(&batch.route, p, synced_at, &batch.run_id, &mut params);
        tx.execute("SAVEPOINT calpump_row", vec![]).await?;
        match tx.execute(&one, params).await {
            Ok(_) => {
                tx.execute("RELEASE SAVEPOINT calpump_row", vec![]).await?;
            }
            Err(e) if classify(&e) == ErrorClass::Row => {
                tx.execute("ROLLBACK TO SAVEPOINT calpump_row", vec![])
                    .await?;
                tx.execute("RELEASE SAVEPOINT calpump_row", vec![]).await?;
                refused.push(ItemFailure {
                    key: p.event.key().clone(),
                    reason: format!("the database refused the row: {}", describe(&e)),
                });
            }
            Err(e) => return Err(e),
        }
    }
    tx.execute("RELEASE SAVEPOINT calpump_chunk", vec![])
        .await?;
    Ok(refused)
}

/// Soft- or hard-deletes `keys` of the batch's (route, mailbox); returns the rows affected.
async fn delete_keys(
    tx: &mut Tx,
    names: &Names,
    mode: DeleteMode,
    batch: &Batch,
    keys: &[EventKey],
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    for chunk in keys.chunks(KEY_CHUNK) {
        let mut params = Vec::with_capacity(chunk.len() + 5);
        let sql = match mode {
            DeleteMode::Soft => {
                params.push(Param::ts(at));
                params.push(Param::ts(at));
                params.push(Param::text(batch.run_id.clone()));
                names.soft_delete(chunk.len())
            }
            DeleteMode::Hard => names.hard_delete(chunk.len()),
        };
        params.push(Param::text(batch.route.clone()));
        params.push(Param::text(batch.mailbox.clone()));
        params.extend(chunk.iter().map(|k| Param::text(k.as_str())));
        affected += tx.execute(&sql, params).await?;
    }
    Ok(affected)
}

/// Adds the batch to its run's statistics (after the batch committed; best effort).
pub(crate) async fn record_run(
    pool: &Pool,
    names: &Names,
    route: &str,
    run_id: &str,
    outcome: &Outcome,
    rejected: usize,
) -> Result<(), sqlx::Error> {
    let at = now();
    let mut conn = pool.acquire().await?;
    conn.conn()
        .execute(
            &names.upsert_run(),
            vec![
                Param::text(run_id),
                Param::text(route),
                Param::ts(at),
                Param::ts(at),
                Param::I64(outcome.upserted as i64),
                Param::I64(outcome.unchanged as i64),
                Param::I64((outcome.deleted + outcome.vanished) as i64),
                Param::I64(rejected as i64),
            ],
        )
        .await?;
    Ok(())
}
