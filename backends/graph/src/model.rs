//! Hand-written, lenient models of the Graph resources calpump reads.
//!
//! Graph documents its shapes in `microsoftgraph/microsoft-graph-docs-contrib`
//! (`api-reference/v1.0/resources/event.md`, `room.md`, `roomlist.md`, `calendar.md`, `user.md`;
//! `concepts/json-batching.md`; `concepts/errors.md`). What real answers do that the schema does
//! not promise, and what these models therefore accept:
//! - unknown properties (ignored), missing properties (defaults), `null` anywhere;
//! - numbers as strings (`"capacity": "50"`) and booleans as strings;
//! - a property of the wrong type (a string where an object is expected) reads as absent rather
//!   than failing the whole page — one odd event must not stop a room's door sign.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserialisers that accept what real answers send.
pub(crate) mod lenient {
    use super::*;

    /// A string, a number or a boolean as text; `null` and other types as `None`; blank as `None`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) if !s.is_empty() => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }

    /// A boolean, `"true"`/`"false"` in any case, or a number (0 = false); else `false`.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(as_bool(&Value::deserialize(d)?).unwrap_or(false))
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(as_bool(&Value::deserialize(d)?))
    }

    fn as_bool(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            Value::Number(n) => n.as_f64().map(|f| f != 0.0),
            _ => None,
        }
    }

    /// A non-negative integer, also from a numeric string (`"50"`); else `None`.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(as_u64(&Value::deserialize(d)?))
    }

    pub(crate) fn as_u64(v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A list; `null` or another type is empty, and items of the wrong type are skipped.
    pub fn vec<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|item| T::deserialize(item).ok())
                .collect(),
            _ => Vec::new(),
        })
    }

    /// A list of strings (numbers become text); anything else is skipped.
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// An object read as `T`, or `None` when absent, `null` or of another shape.
    pub fn opt_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Ok(match Value::deserialize(d)? {
            v @ Value::Object(_) => T::deserialize(v).ok(),
            _ => None,
        })
    }
}

/// Graph's `dateTimeTimeZone`: a local date-time and the zone it is in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub date_time: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub time_zone: Option<String>,
}

impl DateTimeTimeZone {
    /// The instant, read in its `timeZone` (calpump asks for UTC; a server that ignored the
    /// preference is still read right). `None` when unreadable.
    pub fn to_utc(&self) -> Option<DateTime<Utc>> {
        let text = self.date_time.as_deref()?.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Some(t.with_timezone(&Utc));
        }
        let naive = parse_naive(text)?;
        let zone = self.time_zone.as_deref().unwrap_or("UTC");
        match calpump_backend_common::tz::to_iana(zone).as_deref() {
            None | Some("Etc/UTC") => Some(naive.and_utc()),
            Some(iana) => {
                let tz: chrono_tz::Tz = iana.parse().ok()?;
                tz.from_local_datetime(&naive)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// An `Edm.DateTimeOffset` (`2026-03-09T08:00:00Z`, any number of fraction digits); a value
/// without offset is UTC.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| parse_naive(text).map(|n| n.and_utc()))
}

/// `emailAddress`: name and SMTP address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EmailAddress {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub address: Option<String>,
}

/// `recipient` (organizer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Recipient {
    #[serde(deserialize_with = "lenient::opt_object")]
    pub email_address: Option<EmailAddress>,
}

/// `responseStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ResponseStatus {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub response: Option<String>,
}

/// `attendee`: type, status and address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Attendee {
    #[serde(rename = "type", deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub status: Option<ResponseStatus>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub email_address: Option<EmailAddress>,
}

/// `location` (only the display name is used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Location {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub display_name: Option<String>,
}

/// `onlineMeetingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OnlineMeeting {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub join_url: Option<String>,
}

/// `singleValueLegacyExtendedProperty`: `id` like `Binary {6ED8DA90-…} Id 0x23`, `value` base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExtendedProperty {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
}

/// The `id` of PidLidCleanGlobalObjectId in `singleValueExtendedProperties` (PSETID_Meeting,
/// property id 0x23, binary).
pub const CLEAN_GOID_PROPERTY: &str = "Binary {6ED8DA90-450B-101B-98DA-00AA003F1305} Id 0x23";

/// PidLidGlobalObjectId (0x3): the non-clean id, used only when the clean one is missing.
pub const GOID_PROPERTY: &str = "Binary {6ED8DA90-450B-101B-98DA-00AA003F1305} Id 0x3";

/// The `$expand` that returns the clean global object id with each event.
pub const EXPAND_CLEAN_GOID: &str = "singleValueExtendedProperties($filter=id eq 'Binary {6ED8DA90-450B-101B-98DA-00AA003F1305} Id 0x23')";

/// Which property an id names, ignoring case and blanks and the `0x23`/`35` spelling.
fn property_number(id: &str) -> Option<u32> {
    let norm: String = id
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let rest = norm.strip_prefix("binary {6ed8da90-450b-101b-98da-00aa003f1305} id ")?;
    match rest.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => rest.parse().ok(),
    }
}

/// An `event` (`resources/event.md`), as calendarView, delta and `events/{id}` return it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GraphEvent {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(rename = "@odata.etag", deserialize_with = "lenient::opt_string")]
    pub etag: Option<String>,
    /// Present on delta entries for events that left the view (`{"reason": "deleted"}`).
    #[serde(rename = "@removed")]
    pub removed: Option<Value>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub change_key: Option<String>,
    /// `singleInstance`, `occurrence`, `exception`, `seriesMaster`.
    #[serde(rename = "type", deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub series_master_id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub subject: Option<String>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub start: Option<DateTimeTimeZone>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub end: Option<DateTimeTimeZone>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub original_start: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub original_start_time_zone: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_all_day: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_cancelled: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub show_as: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub sensitivity: Option<String>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub location: Option<Location>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub organizer: Option<Recipient>,
    #[serde(deserialize_with = "lenient::vec")]
    pub attendees: Vec<Attendee>,
    #[serde(deserialize_with = "lenient::opt_object")]
    pub online_meeting: Option<OnlineMeeting>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub online_meeting_url: Option<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub categories: Vec<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub last_modified_date_time: Option<String>,
    #[serde(rename = "iCalUId", deserialize_with = "lenient::opt_string")]
    pub ical_uid: Option<String>,
    #[serde(deserialize_with = "lenient::vec")]
    pub single_value_extended_properties: Vec<ExtendedProperty>,
}

/// The kind of an event (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    SingleInstance,
    Occurrence,
    Exception,
    SeriesMaster,
    Unknown,
}

impl GraphEvent {
    pub fn event_type(&self) -> EventType {
        match self.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("singleinstance") => EventType::SingleInstance,
            Some("occurrence") => EventType::Occurrence,
            Some("exception") => EventType::Exception,
            Some("seriesmaster") => EventType::SeriesMaster,
            // A calendarView entry without `type` is a single instance.
            None => EventType::SingleInstance,
            Some(_) => EventType::Unknown,
        }
    }

    pub fn is_removed(&self) -> bool {
        self.removed.is_some()
    }

    /// The base64 value of the clean global object id (0x23), else of the non-clean one (0x3).
    pub fn goid_base64(&self) -> Option<&str> {
        let find = |wanted: u32| {
            self.single_value_extended_properties
                .iter()
                .find(|p| p.id.as_deref().and_then(property_number) == Some(wanted))
                .and_then(|p| p.value.as_deref())
                .filter(|v| !v.trim().is_empty())
        };
        find(0x23).or_else(|| find(0x3))
    }

    /// The change key: `changeKey`, else the one inside `@odata.etag` (`W/"…"`).
    pub fn change_key(&self) -> Option<String> {
        self.change_key.clone().or_else(|| {
            let etag = self.etag.as_deref()?.trim();
            let inner = etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"');
            (!inner.is_empty()).then(|| inner.to_string())
        })
    }
}

/// A room (`resources/room.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Room {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub email_address: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub display_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub capacity: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub building: Option<String>,
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub floor_number: Option<u64>,
}

/// A room list (`resources/roomlist.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RoomListResource {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub email_address: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub display_name: Option<String>,
}

/// A user (`resources/user.md`), the properties calpump selects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct User {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub display_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub mail: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub user_principal_name: Option<String>,
}

/// A calendar (`resources/calendar.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Calendar {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient::bool")]
    pub is_default_calendar: bool,
}

/// One page of a collection: `value`, `@odata.nextLink`, `@odata.deltaLink`, `@odata.count`.
/// Items stay JSON until read one by one, so one odd item does not lose the page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Page {
    #[serde(deserialize_with = "page_values")]
    pub value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", deserialize_with = "lenient::opt_string")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", deserialize_with = "lenient::opt_string")]
    pub delta_link: Option<String>,
    #[serde(rename = "@odata.count", deserialize_with = "lenient::opt_u64")]
    pub count: Option<u64>,
}

fn page_values<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items,
        _ => Vec::new(),
    })
}

impl Page {
    /// Reads a page; an answer that is not a JSON object with `value` is an error.
    pub fn from_value(value: Value) -> Result<Self, String> {
        if !value.get("value").is_some_and(Value::is_array) {
            return Err("the answer has no `value` list".to_string());
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// The items that read as `T` (objects only); the number skipped is returned too.
    pub fn items<T: DeserializeOwned>(&self) -> (Vec<T>, usize) {
        let mut out = Vec::with_capacity(self.value.len());
        let mut skipped = 0;
        for item in &self.value {
            match item {
                Value::Object(_) => match T::deserialize(item) {
                    Ok(v) => out.push(v),
                    Err(_) => skipped += 1,
                },
                _ => skipped += 1,
            }
        }
        (out, skipped)
    }
}

/// Graph's error body (`concepts/errors.md`): `{"error": {"code", "message", "innerError":
/// {"request-id", "date", "client-request-id"}}}`. Read from any JSON value; fields may be
/// missing, empty or of other types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphError {
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub date: Option<String>,
}

impl GraphError {
    pub fn from_value(value: &Value) -> Option<Self> {
        let error = value.get("error")?;
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        // OData JSON errors sometimes put the message in an object (`{"lang","value"}`).
        let message = match error.get("message") {
            Some(Value::Object(m)) => text(m.get("value")),
            other => text(other),
        };
        let inner = error
            .get("innerError")
            .or_else(|| error.get("innererror"))
            .or_else(|| error.get("InnerError"));
        let inner_text = |key: &str| {
            inner
                .and_then(|i| text(i.get(key)))
                .filter(|s| !s.is_empty())
        };
        if !error.is_object() {
            return Some(Self {
                code: String::new(),
                message: text(Some(error)).unwrap_or_default(),
                ..Self::default()
            });
        }
        Some(Self {
            code: text(error.get("code")).unwrap_or_default(),
            message: message.unwrap_or_default(),
            request_id: inner_text("request-id"),
            date: inner_text("date"),
        })
    }

    pub fn from_body(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| Self::from_value(&v))
    }
}

/// One answer inside a `$batch` response (`concepts/json-batching.md`): `id` (string, compared
/// case-insensitively), `status` (number, sometimes a string), `headers`, `body`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchItem {
    pub id: String,
    pub status: u16,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// A `$batch` response: its items, or why it cannot be read.
pub fn parse_batch(value: &Value) -> Result<Vec<BatchItem>, String> {
    let Some(responses) = value.get("responses").and_then(Value::as_array) else {
        return Err("the $batch answer has no `responses` list".to_string());
    };
    let mut out = Vec::with_capacity(responses.len());
    for item in responses {
        let id = match item.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let Some(status) = item
            .get("status")
            .and_then(lenient::as_u64)
            .and_then(|s| u16::try_from(s).ok())
        else {
            continue;
        };
        let mut headers = BTreeMap::new();
        if let Some(Value::Object(map)) = item.get("headers") {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                headers.insert(k.to_ascii_lowercase(), v);
            }
        }
        out.push(BatchItem {
            id,
            status,
            headers,
            body: item.get("body").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_fields() {
        let e: GraphEvent = serde_json::from_value(json!({
            "id": 42,
            "isAllDay": "true",
            "isCancelled": null,
            "attendees": null,
            "categories": ["Red", 7, null],
            "location": "Room 1",
            "start": {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-09T09:00:00.0000000", "timeZone": "W. Europe Standard Time"},
            "unknownThing": {"a": 1}
        }))
        .expect("lenient");
        assert_eq!(e.id.as_deref(), Some("42"));
        assert_eq!(e.is_all_day, Some(true));
        assert_eq!(e.is_cancelled, None);
        assert!(e.attendees.is_empty());
        assert_eq!(e.categories, vec!["Red".to_string(), "7".to_string()]);
        assert_eq!(e.location, None);
        let start = e
            .start
            .as_ref()
            .and_then(DateTimeTimeZone::to_utc)
            .expect("start");
        assert_eq!(start.to_rfc3339(), "2026-03-09T08:00:00+00:00");
        // 09:00 in Berlin (CET, +1) is 08:00 UTC.
        let end = e
            .end
            .as_ref()
            .and_then(DateTimeTimeZone::to_utc)
            .expect("end");
        assert_eq!(end.to_rfc3339(), "2026-03-09T08:00:00+00:00");
    }

    #[test]
    fn goid_and_change_key() {
        let e: GraphEvent = serde_json::from_value(json!({
            "@odata.etag": "W/\"DwAAABYAAAA=\"",
            "singleValueExtendedProperties": [
                {"id": "Binary {6ed8da90-450b-101b-98da-00aa003f1305} Id 0x3", "value": "AAA="},
                {"id": "Binary {6ED8DA90-450B-101B-98DA-00AA003F1305} Id 35", "value": "BBB="}
            ]
        }))
        .expect("event");
        assert_eq!(e.goid_base64(), Some("BBB="));
        assert_eq!(e.change_key().as_deref(), Some("DwAAABYAAAA="));
    }

    #[test]
    fn instants_with_seven_fraction_digits() {
        let t = parse_instant("2026-03-09T08:00:00.1234567Z").expect("instant");
        assert_eq!(t.timestamp(), 1_773_043_200);
        assert!(parse_instant("yesterday").is_none());
    }

    #[test]
    fn error_bodies() {
        let e = GraphError::from_body(br#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied.","innerError":{"request-id":"r1","date":"2026-01-01T00:00:00"}}}"#).expect("error");
        assert_eq!(e.code, "ErrorAccessDenied");
        assert_eq!(e.request_id.as_deref(), Some("r1"));
        assert!(GraphError::from_body(b"<html></html>").is_none());
        let odata = GraphError::from_value(
            &json!({"error":{"code":"X","message":{"lang":"en","value":"text"}}}),
        )
        .expect("odata");
        assert_eq!(odata.message, "text");
    }
}
