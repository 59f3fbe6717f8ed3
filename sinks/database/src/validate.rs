//! What a row must satisfy before it is written. Checked before any SQL runs, so a value the
//! engine cannot hold is rejected with a reason naming the field instead of failing a statement.
//!
//! The limits are the same on every engine (a row SQLite takes, MariaDB takes too), except NUL
//! characters, which only PostgreSQL cannot store in text.

use calpump_plugin::{Batch, Event};
use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::dialect::Dialect;

/// Free text (`TEXT` in MariaDB/MySQL): at most this many bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 65_535;
/// Attendees and categories as JSON.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_ROUTE_CHARS: usize = 255;
pub const MAX_MAILBOX_CHARS: usize = 320;
pub const MAX_CALENDAR_CHARS: usize = 1024;
pub const MAX_RUN_ID_CHARS: usize = 255;
pub const MAX_BACKEND_CHARS: usize = 64;
/// `DATETIME` in MariaDB/MySQL spans these years; the other engines keep to them too.
pub const YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

/// A batch whose own fields cannot be stored; the whole batch is refused.
pub(crate) fn check_batch(batch: &Batch, dialect: Dialect) -> Result<(), String> {
    let fields = [
        ("route", batch.route.as_str(), MAX_ROUTE_CHARS),
        ("mailbox", batch.mailbox.as_str(), MAX_MAILBOX_CHARS),
        ("calendar", batch.calendar.as_str(), MAX_CALENDAR_CHARS),
        ("run_id", batch.run_id.as_str(), MAX_RUN_ID_CHARS),
    ];
    for (name, value, max) in fields {
        if value.is_empty() && name != "calendar" {
            return Err(format!("the batch's `{name}` is empty"));
        }
        if value.chars().count() > max {
            return Err(format!(
                "the batch's `{name}` is longer than {max} characters"
            ));
        }
        if dialect == Dialect::Postgres && value.contains('\0') {
            return Err(format!(
                "the batch's `{name}` contains a NUL character, which PostgreSQL text cannot hold"
            ));
        }
    }
    if let Some(name) = &batch.mailbox_name {
        check_text("mailbox_name", name, dialect)?;
    }
    if batch.window.end < batch.window.start {
        return Err("the batch's window ends before it starts".into());
    }
    Ok(())
}

fn check_text(field: &str, value: &str, dialect: Dialect) -> Result<(), String> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "`{field}` is {} bytes long; at most {MAX_TEXT_BYTES} bytes are stored",
            value.len()
        ));
    }
    if dialect == Dialect::Postgres && value.contains('\0') {
        return Err(format!(
            "`{field}` contains a NUL character (U+0000), which PostgreSQL text cannot hold"
        ));
    }
    Ok(())
}

fn check_chars(field: &str, value: &str, max: usize, dialect: Dialect) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("`{field}` is longer than {max} characters"));
    }
    check_text(field, value, dialect)
}

fn check_time(field: &str, t: DateTime<Utc>, dialect: Dialect) -> Result<(), String> {
    if !YEARS.contains(&t.year()) {
        return Err(format!(
            "`{field}` ({t}) lies outside the years {}–{} a database column can hold",
            YEARS.start(),
            YEARS.end()
        ));
    }
    if dialect != Dialect::Sqlite && !t.nanosecond().is_multiple_of(1_000) {
        return Err(format!(
            "`{field}` ({t}) is finer than a microsecond, which {} does not store",
            dialect.label()
        ));
    }
    Ok(())
}

/// The JSON text of a value, checked for size and (PostgreSQL) NUL characters.
fn check_json(field: &str, value: &serde_json::Value, dialect: Dialect) -> Result<(), String> {
    let text = value.to_string();
    if text.len() > MAX_JSON_BYTES {
        return Err(format!(
            "`{field}` is {} bytes as JSON; at most {MAX_JSON_BYTES} are stored",
            text.len()
        ));
    }
    // serde_json writes U+0000 as the escape `\u0000`, which PostgreSQL's jsonb refuses.
    if dialect == Dialect::Postgres && text.contains("\\u0000") {
        return Err(format!(
            "`{field}` contains a NUL character (U+0000), which PostgreSQL JSON cannot hold"
        ));
    }
    Ok(())
}

/// Checks one event of `batch`. `Err` is the reason it is rejected.
pub(crate) fn check_event(
    event: &Event,
    batch: &Batch,
    attendees: &serde_json::Value,
    categories: &serde_json::Value,
    dialect: Dialect,
) -> Result<(), String> {
    if event.mailbox() != batch.mailbox {
        return Err(format!(
            "the event belongs to mailbox {:?}, the batch to {:?}",
            event.mailbox(),
            batch.mailbox
        ));
    }
    if event.calendar != batch.calendar {
        return Err(format!(
            "the event belongs to calendar {:?}, the batch to {:?}",
            event.calendar, batch.calendar
        ));
    }
    check_text("subject", &event.subject, dialect)?;
    for (field, value) in [
        ("location", event.location.as_deref()),
        (
            "organizer.name",
            event.organizer.as_ref().and_then(|o| o.name.as_deref()),
        ),
        (
            "organizer.email",
            event.organizer.as_ref().and_then(|o| o.email.as_deref()),
        ),
        ("time_zone", event.time_zone.as_deref()),
        ("online_meeting_url", event.online_meeting_url.as_deref()),
        ("ical_uid", event.ical_uid.as_deref()),
        ("source.item_id", Some(event.source.item_id.as_str())),
        ("source.change_key", event.source.change_key.as_deref()),
        ("global_object_id", Some(event.global_object_id().as_hex())),
    ] {
        if let Some(value) = value {
            check_text(field, value, dialect)?;
        }
    }
    check_chars(
        "source.backend",
        &event.source.backend,
        MAX_BACKEND_CHARS,
        dialect,
    )?;
    check_time("start", event.start, dialect)?;
    check_time("end", event.end, dialect)?;
    if let Some(t) = event.original_start() {
        check_time("original_start", t, dialect)?;
    }
    if let Some(t) = event.last_modified {
        check_time("last_modified", t, dialect)?;
    }
    check_json("attendees", attendees, dialect)?;
    check_json("categories", categories, dialect)?;
    Ok(())
}
