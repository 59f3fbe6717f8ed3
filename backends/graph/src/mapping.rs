//! Graph events → canonical [`Event`]s, by the field mapping both backends share
//! (`helpers/BACKENDS.md`): identity from the clean global object id and the original start,
//! kinds, people, zones (through `backend-common`'s CLDR table), free/busy, privacy.

use calpump_backend_common::{ical, tz};
use calpump_plugin::{
    Attendee, AttendeeKind, Event, EventIdentity, EventKind, GlobalObjectId, Person,
    ResponseStatus, Sensitivity, ShowAs, SourceIds,
};
use chrono::{DateTime, Utc};

use crate::model::{self, DateTimeTimeZone, EmailAddress, GraphEvent};

/// The backend's name in [`SourceIds::backend`] and cursors.
pub const BACKEND: &str = "graph";

/// The properties calpump reads (`$select`): exactly what the mapping needs.
pub const SELECT: &str = "id,type,seriesMasterId,subject,start,end,originalStart,originalStartTimeZone,isAllDay,isCancelled,showAs,sensitivity,location,organizer,attendees,onlineMeeting,onlineMeetingUrl,categories,lastModifiedDateTime,changeKey,iCalUId";

/// Why an entry could not become an event (it is skipped and counted, never keyed by invention).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("no global object id (neither PidLidCleanGlobalObjectId nor PidLidGlobalObjectId)")]
    NoGlobalObjectId,
    #[error("unusable global object id: {0}")]
    BadGlobalObjectId(String),
    #[error("no start or end time")]
    NoTimes,
    #[error("an exception without originalStart")]
    NoOriginalStart,
    #[error("{0}")]
    Model(String),
}

/// Everything besides the entry itself that decides an event.
pub struct Context<'a> {
    pub mailbox: &'a str,
    /// Neutral calendar path (`default`, `Maintenance`).
    pub calendar: &'a str,
}

/// The kind and original start of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub kind: EventKind,
    /// `Some` for occurrences and exceptions.
    pub original_start: Option<DateTime<Utc>>,
}

/// Maps one instance. `data` carries the fields (the entry itself, or the series master for an
/// occurrence that delta sent with ids and times only); `ids` the item id and change key;
/// `times` the start and end; `goid` the base64 global object id.
pub fn to_event(
    cx: &Context<'_>,
    data: &GraphEvent,
    ids: &GraphEvent,
    times: &GraphEvent,
    goid: &str,
    instance: Instance,
) -> Result<Event, Skip> {
    let goid =
        GlobalObjectId::from_base64(goid).map_err(|e| Skip::BadGlobalObjectId(e.to_string()))?;
    let start = times
        .start
        .as_ref()
        .and_then(DateTimeTimeZone::to_utc)
        .ok_or(Skip::NoTimes)?;
    let end = times
        .end
        .as_ref()
        .and_then(DateTimeTimeZone::to_utc)
        .ok_or(Skip::NoTimes)?;
    let identity = EventIdentity::new(cx.mailbox, goid, instance.original_start)
        .map_err(|e| Skip::Model(e.to_string()))?;
    let source = SourceIds {
        backend: BACKEND.to_string(),
        item_id: ids.id.clone().unwrap_or_default(),
        change_key: ids.change_key(),
    };
    let subject = data.subject.clone().unwrap_or_default();
    let mut event = Event::new(identity, cx.calendar, source, subject, start, end)
        .map_err(|e| Skip::Model(e.to_string()))?;
    event.kind = instance.kind;
    // Derived from the global object id, as the EWS side does: Graph's `iCalUId` is the hex of
    // the id even for invitations from outside Exchange, where EWS `UID` is the sender's UID
    // (backend-common `ical`, MS-OXCICAL's rule).
    event.ical_uid = Some(ical::from_clean_goid_hex(event.global_object_id().as_hex()));
    event.location = data
        .location
        .as_ref()
        .and_then(|l| l.display_name.clone())
        .filter(|l| !l.is_empty());
    event.organizer = data
        .organizer
        .as_ref()
        .and_then(|o| o.email_address.as_ref())
        .and_then(person);
    event.attendees = data
        .attendees
        .iter()
        .filter_map(|a| {
            let person = a.email_address.as_ref().and_then(person)?;
            Some(Attendee {
                person,
                kind: attendee_kind(a.kind.as_deref()),
                response: response(a.status.as_ref().and_then(|s| s.response.as_deref())),
            })
        })
        .collect();
    // Canonical order, as EWS lists them: required, optional, resource (stable within each).
    event.attendees.sort_by_key(|a| match a.kind {
        AttendeeKind::Required => 0,
        AttendeeKind::Optional => 1,
        AttendeeKind::Resource => 2,
        AttendeeKind::Unknown => 3,
    });
    event.time_zone = data
        .original_start_time_zone
        .as_deref()
        .and_then(tz::to_iana);
    event.all_day = data.is_all_day.unwrap_or(false);
    if event.all_day {
        // Midnight of the event's zone as an instant → the dates at 00:00 UTC (the model's
        // all-day rule; the zone as the EWS side maps it).
        (event.start, event.end) = tz::all_day_bounds(start, end, event.time_zone.as_deref());
    }
    if let Some(show_as) = data.show_as.as_deref() {
        event.show_as = show_as_of(show_as);
    }
    if let Some(sensitivity) = data.sensitivity.as_deref() {
        event.sensitivity = sensitivity_of(sensitivity);
    }
    event.cancelled = data.is_cancelled.unwrap_or(false);
    event.online_meeting_url = data
        .online_meeting
        .as_ref()
        .and_then(|m| m.join_url.clone())
        .or_else(|| data.online_meeting_url.clone())
        .filter(|u| !u.is_empty());
    event.categories = data.categories.clone();
    // Whole seconds, as EWS reports it: the two backends then agree.
    event.last_modified = data
        .last_modified_date_time
        .as_deref()
        .and_then(model::parse_instant)
        .and_then(|t| DateTime::from_timestamp(t.timestamp(), 0));
    Ok(event)
}

/// Maps an entry that carries everything itself (calendarView, a full delta entry, a GET):
/// single instances and exceptions — and occurrences when read through calendarView.
pub fn to_event_full(cx: &Context<'_>, e: &GraphEvent, goid: &str) -> Result<Event, Skip> {
    let instance = match e.event_type() {
        model::EventType::SingleInstance => Instance {
            kind: EventKind::Single,
            original_start: None,
        },
        model::EventType::Occurrence | model::EventType::Exception => {
            let kind = if e.event_type() == model::EventType::Exception {
                EventKind::Exception
            } else {
                EventKind::Occurrence
            };
            let original = match e.original_start.as_deref().and_then(model::parse_instant) {
                Some(t) => t,
                // An unmodified occurrence starts where the pattern put it.
                None if kind == EventKind::Occurrence => e
                    .start
                    .as_ref()
                    .and_then(DateTimeTimeZone::to_utc)
                    .ok_or(Skip::NoTimes)?,
                None => return Err(Skip::NoOriginalStart),
            };
            Instance {
                kind,
                original_start: Some(original),
            }
        }
        model::EventType::SeriesMaster | model::EventType::Unknown => {
            return Err(Skip::Model(format!(
                "not an instance (type {})",
                e.kind.as_deref().unwrap_or("?")
            )));
        }
    };
    to_event(cx, e, e, e, goid, instance)
}

/// Completes an occurrence that a delta page sent with only `id`, `type`, `seriesMasterId`,
/// `start` and `end`: the fields come from its series master; its original start is its start
/// (an unmodified occurrence sits where the pattern put it).
pub fn to_event_occurrence(
    cx: &Context<'_>,
    occurrence: &GraphEvent,
    master: &GraphEvent,
    goid: &str,
) -> Result<Event, Skip> {
    let original = occurrence
        .original_start
        .as_deref()
        .and_then(model::parse_instant)
        .or_else(|| occurrence.start.as_ref().and_then(DateTimeTimeZone::to_utc))
        .ok_or(Skip::NoTimes)?;
    to_event(
        cx,
        master,
        occurrence,
        occurrence,
        goid,
        Instance {
            kind: EventKind::Occurrence,
            original_start: Some(original),
        },
    )
}

fn person(address: &EmailAddress) -> Option<Person> {
    let name = address.name.clone().filter(|n| !n.is_empty());
    let email = address.address.clone().filter(|a| !a.is_empty());
    (name.is_some() || email.is_some()).then_some(Person { name, email })
}

fn attendee_kind(kind: Option<&str>) -> AttendeeKind {
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("required") => AttendeeKind::Required,
        Some("optional") => AttendeeKind::Optional,
        Some("resource") => AttendeeKind::Resource,
        _ => AttendeeKind::Unknown,
    }
}

fn response(value: Option<&str>) -> ResponseStatus {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("none") | Some("") => ResponseStatus::None,
        Some("organizer") => ResponseStatus::Organizer,
        Some("tentativelyaccepted") => ResponseStatus::TentativelyAccepted,
        Some("accepted") => ResponseStatus::Accepted,
        Some("declined") => ResponseStatus::Declined,
        Some("notresponded") => ResponseStatus::NotResponded,
        Some(_) => ResponseStatus::Unknown,
    }
}

fn show_as_of(value: &str) -> ShowAs {
    match value.to_ascii_lowercase().as_str() {
        "free" => ShowAs::Free,
        "tentative" => ShowAs::Tentative,
        "busy" => ShowAs::Busy,
        "oof" => ShowAs::Oof,
        "workingelsewhere" => ShowAs::WorkingElsewhere,
        _ => ShowAs::Unknown,
    }
}

fn sensitivity_of(value: &str) -> Sensitivity {
    match value.to_ascii_lowercase().as_str() {
        "normal" => Sensitivity::Normal,
        "personal" => Sensitivity::Personal,
        "private" => Sensitivity::Private,
        "confidential" => Sensitivity::Confidential,
        _ => Sensitivity::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOID: &str =
        "BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAADAxMjM0NTY3ODlhYmNkZWY=";

    fn cx() -> Context<'static> {
        Context {
            mailbox: "Room-1@Contoso.com",
            calendar: "default",
        }
    }

    fn event(v: serde_json::Value) -> GraphEvent {
        serde_json::from_value(v).expect("event")
    }

    #[test]
    fn every_field_is_mapped() {
        let e = event(json!({
            "id": "AAkALgAAA=",
            "changeKey": "DwAAAB",
            "type": "singleInstance",
            "subject": "Budget",
            "start": {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-09T09:00:00.0000000", "timeZone": "UTC"},
            "originalStartTimeZone": "W. Europe Standard Time",
            "isAllDay": false,
            "isCancelled": true,
            "showAs": "workingElsewhere",
            "sensitivity": "private",
            "location": {"displayName": "Room 1"},
            "organizer": {"emailAddress": {"name": "Ann", "address": "Ann@Contoso.com"}},
            "attendees": [
                {"type": "required", "status": {"response": "tentativelyAccepted"}, "emailAddress": {"name": "Bo", "address": "bo@contoso.com"}},
                {"type": "resource", "status": {"response": "none"}, "emailAddress": {"address": "room-1@contoso.com"}}
            ],
            "onlineMeeting": {"joinUrl": "https://teams.example/join"},
            "categories": ["Blue"],
            "lastModifiedDateTime": "2026-03-01T10:11:12.1234567Z",
            "iCalUId": "040000008200E00074C5B7101A82E008"
        }));
        let ev = to_event_full(&cx(), &e, GOID).expect("maps");
        assert_eq!(ev.mailbox(), "room-1@contoso.com");
        assert_eq!(ev.kind, EventKind::Single);
        assert_eq!(ev.original_start(), None);
        assert_eq!(ev.source.backend, "graph");
        assert_eq!(ev.source.item_id, "AAkALgAAA=");
        assert_eq!(ev.source.change_key.as_deref(), Some("DwAAAB"));
        assert_eq!(ev.subject, "Budget");
        assert_eq!(ev.time_zone.as_deref(), Some("Europe/Berlin"));
        assert!(ev.cancelled);
        assert_eq!(ev.show_as, ShowAs::WorkingElsewhere);
        assert_eq!(ev.sensitivity, Sensitivity::Private);
        assert_eq!(ev.location.as_deref(), Some("Room 1"));
        let organizer = ev.organizer.clone().expect("organizer");
        assert_eq!(
            organizer.email.as_deref(),
            Some("Ann@Contoso.com"),
            "kept as given"
        );
        assert_eq!(ev.attendees.len(), 2);
        assert_eq!(
            ev.attendees[0].response,
            ResponseStatus::TentativelyAccepted
        );
        assert_eq!(ev.attendees[1].kind, AttendeeKind::Resource);
        assert_eq!(ev.attendees[1].response, ResponseStatus::None);
        assert_eq!(
            ev.online_meeting_url.as_deref(),
            Some("https://teams.example/join")
        );
        assert_eq!(ev.categories, vec!["Blue".to_string()]);
        assert_eq!(
            ev.last_modified.map(|t| t.to_rfc3339()),
            Some("2026-03-01T10:11:12+00:00".to_string())
        );
        assert_eq!(
            ev.ical_uid.as_deref(),
            Some(ev.global_object_id().as_hex()),
            "an Exchange meeting's UID is its global object id in hex"
        );
    }

    #[test]
    fn all_day_events_become_dates_and_attendees_are_ordered_by_kind() {
        // 28 November in Berlin, as Graph returns it in UTC; a third-party invitation.
        let e = event(json!({
            "id": "A", "type": "singleInstance", "subject": "Holiday", "isAllDay": true,
            "start": {"dateTime": "2026-11-27T23:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-28T23:00:00.0000000", "timeZone": "UTC"},
            "originalStartTimeZone": "W. Europe Standard Time",
            "attendees": [
                {"type": "resource", "emailAddress": {"address": "room@contoso.com"}},
                {"type": "optional", "emailAddress": {"address": "o@contoso.com"}},
                {"type": "required", "emailAddress": {"address": "r1@contoso.com"}},
                {"type": "required", "emailAddress": {"address": "r2@contoso.com"}}
            ]
        }));
        let vcal = "BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAMwAAAHZDYWwtVWlkAQAAAHs4MTQxMkQzQy0yQTI0LTRFOUQtQjIwRS0xMUY3QkJFOTI3OTl9AA==";
        let ev = to_event_full(&cx(), &e, vcal).expect("maps");
        assert!(ev.all_day);
        assert_eq!(ev.start.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert_eq!(ev.end.to_rfc3339(), "2026-11-29T00:00:00+00:00");
        assert_eq!(
            ev.ical_uid.as_deref(),
            Some("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}"),
            "the sender's UID, as EWS reports it"
        );
        let order: Vec<_> = ev
            .attendees
            .iter()
            .map(|a| a.person.email.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            order,
            [
                "r1@contoso.com",
                "r2@contoso.com",
                "o@contoso.com",
                "room@contoso.com"
            ]
        );
    }

    #[test]
    fn occurrences_and_exceptions_carry_the_original_start() {
        let master = event(json!({
            "id": "M", "type": "seriesMaster", "subject": "Standup",
            "start": {"dateTime": "2026-03-02T08:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T08:15:00", "timeZone": "UTC"},
            "originalStartTimeZone": "tzone://Microsoft/Custom",
            "showAs": "busy"
        }));
        let occ = event(json!({
            "@odata.etag": "W/\"CK1\"", "id": "O1", "type": "occurrence", "seriesMasterId": "M",
            "start": {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-09T08:15:00.0000000", "timeZone": "UTC"}
        }));
        let ev = to_event_occurrence(&cx(), &occ, &master, GOID).expect("maps");
        assert_eq!(ev.kind, EventKind::Occurrence);
        assert_eq!(ev.subject, "Standup");
        assert_eq!(ev.source.item_id, "O1");
        assert_eq!(ev.source.change_key.as_deref(), Some("CK1"));
        assert_eq!(ev.original_start(), Some(ev.start));
        assert_eq!(ev.time_zone, None, "custom zones have no name");
        assert!(ev.series_key().is_some());

        let exc = event(json!({
            "id": "X1", "type": "exception", "seriesMasterId": "M", "subject": "Standup (moved)",
            "originalStart": "2026-03-10T08:00:00Z",
            "start": {"dateTime": "2026-03-10T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-10T09:15:00", "timeZone": "UTC"}
        }));
        let ev = to_event_full(&cx(), &exc, GOID).expect("maps");
        assert_eq!(ev.kind, EventKind::Exception);
        assert_eq!(
            ev.original_start().map(|t| t.to_rfc3339()),
            Some("2026-03-10T08:00:00+00:00".to_string())
        );
        let no_orig = event(json!({"id": "X2", "type": "exception",
            "start": {"dateTime": "2026-03-10T09:00:00"}, "end": {"dateTime": "2026-03-10T09:15:00"}}));
        assert_eq!(
            to_event_full(&cx(), &no_orig, GOID).expect_err("skip"),
            Skip::NoOriginalStart
        );
    }

    #[test]
    fn items_without_a_usable_goid_or_times_are_skipped() {
        let e = event(json!({"id": "A", "start": {"dateTime": "2026-03-09T08:00:00"}}));
        assert_eq!(
            to_event_full(&cx(), &e, GOID).expect_err("no end"),
            Skip::NoTimes
        );
        let e = event(
            json!({"id": "A", "start": {"dateTime": "2026-03-09T08:00:00"}, "end": {"dateTime": "2026-03-09T09:00:00"}}),
        );
        assert!(matches!(
            to_event_full(&cx(), &e, "!!"),
            Err(Skip::BadGlobalObjectId(_))
        ));
    }
}
