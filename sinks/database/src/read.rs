//! Reading rows back as canonical [`Event`]s: for tests (the conformance suite compares what a
//! sink holds with the source's truth) and for tools that want the model rather than SQL.

use calpump_plugin::{
    Attendee, Event, EventIdentity, EventKind, GlobalObjectId, Person, Sensitivity, ShowAs,
    SourceIds,
};
use chrono::{DateTime, Utc};

use crate::db::{Col, Pool, Val};
use crate::dialect::Names;

/// One stored row: the event rebuilt from its columns, and the sink's bookkeeping.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredRow {
    pub route: String,
    pub event: Event,
    /// The `content_hash` column as written (equal to `event.content_hash()` when every field
    /// survived the round trip).
    pub content_hash: String,
    pub synced_at: DateTime<Utc>,
    /// The run that last changed this row.
    pub run_id: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Why a row could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("row {key} cannot be rebuilt: {reason}")]
    Row { key: String, reason: String },
}

fn cols() -> Vec<Col> {
    use Col::*;
    vec![
        Text, Text, Text, Text, Text, Text, Text, Text, Text, // route … organizer_email
        Ts, Ts, Text, Bool, Text, Text, Bool, Text, Text, Ts, // start_utc … original_start
        Text, Text, Text, Text, Text, Ts, // global_object_id … last_modified
        Json, Json, Text, Ts, Text, Ts, // attendees … run_id, deleted_at
    ]
}

fn enum_from<T: serde::de::DeserializeOwned + Default>(s: Option<&str>) -> T {
    s.and_then(|s| serde_json::from_value(serde_json::Value::String(s.to_string())).ok())
        .unwrap_or_default()
}

fn rebuild(row: &[Val]) -> Result<StoredRow, String> {
    let text = |i: usize| row[i].text().map(str::to_string);
    let need = |i: usize, name: &str| text(i).ok_or_else(|| format!("`{name}` is NULL"));
    let need_ts = |i: usize, name: &str| row[i].ts().ok_or_else(|| format!("`{name}` is NULL"));
    let route = need(0, "route")?;
    let key = need(1, "event_key")?;
    let mailbox = need(2, "mailbox")?;
    let goid =
        GlobalObjectId::from_hex(&need(19, "global_object_id")?).map_err(|e| e.to_string())?;
    let identity = EventIdentity::new(&mailbox, goid, row[18].ts()).map_err(|e| e.to_string())?;
    let source = SourceIds {
        backend: need(21, "source_backend")?,
        item_id: need(22, "source_item_id")?,
        change_key: text(23),
    };
    let mut event = Event::new(
        identity,
        need(3, "calendar")?,
        source,
        need(5, "subject")?,
        need_ts(9, "start_utc")?,
        need_ts(10, "end_utc")?,
    )
    .map_err(|e| e.to_string())?;
    if event.key().as_str() != key {
        return Err(format!(
            "its identity gives key {}, the row says {key}",
            event.key()
        ));
    }
    event.kind = enum_from::<EventKind>(row[4].text());
    event.location = text(6);
    let (name, email) = (text(7), text(8));
    event.organizer = (name.is_some() || email.is_some()).then_some(Person { name, email });
    event.time_zone = text(11);
    event.all_day = row[12].bool().unwrap_or(false);
    event.show_as = enum_from::<ShowAs>(row[13].text());
    event.sensitivity = enum_from::<Sensitivity>(row[14].text());
    event.cancelled = row[15].bool().unwrap_or(false);
    event.online_meeting_url = text(16);
    event.ical_uid = text(20);
    event.last_modified = row[24].ts();
    event.attendees = match row[25].json() {
        Some(v) => serde_json::from_value::<Vec<Attendee>>(v.clone())
            .map_err(|e| format!("`attendees`: {e}"))?,
        None => Vec::new(),
    };
    event.categories = match row[26].json() {
        Some(v) => serde_json::from_value::<Vec<String>>(v.clone())
            .map_err(|e| format!("`categories`: {e}"))?,
        None => Vec::new(),
    };
    Ok(StoredRow {
        route,
        event,
        content_hash: need(27, "content_hash")?,
        synced_at: need_ts(28, "synced_at")?,
        run_id: need(29, "run_id")?,
        deleted_at: row[30].ts(),
    })
}

/// Every row (live and soft-deleted) of (route, mailbox[, calendar]), by start.
pub(crate) async fn read_rows(
    pool: &Pool,
    names: &Names,
    route: &str,
    mailbox: &str,
    calendar: Option<&str>,
) -> Result<Vec<StoredRow>, ReadError> {
    let mut params = vec![
        crate::db::Param::text(route),
        crate::db::Param::text(mailbox.trim().to_lowercase()),
    ];
    if let Some(calendar) = calendar {
        params.push(crate::db::Param::text(calendar));
    }
    let mut conn = pool.acquire().await?;
    let rows = conn
        .conn()
        .fetch(&names.select_rows(calendar.is_some()), params, &cols())
        .await?;
    rows.iter()
        .map(|row| {
            rebuild(row).map_err(|reason| ReadError::Row {
                key: row[1].text().unwrap_or("?").to_string(),
                reason,
            })
        })
        .collect()
}
