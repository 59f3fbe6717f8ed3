//! `CalendarItem` → canonical [`Event`], per the field mapping both backends share
//! (helpers/BACKENDS.md): identity from the clean global object id and the original start,
//! UTC instants, the IANA zone from the Windows zone id, EWS spellings to the model's enums.

use calpump_backend_common::{ical, tz};
use calpump_plugin::{
    Attendee, AttendeeKind, Event, EventIdentity, EventKind, GlobalObjectId, Person,
    ResponseStatus, Sensitivity, ShowAs, SourceIds,
};

use crate::ops::{CalendarItem, Mailbox, RawAttendee, TimeZoneDef};

/// The backend name recorded in [`SourceIds::backend`] and cursors.
pub const BACKEND: &str = "ews";

/// Why an item could not become an event (the item is skipped and counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("item {id} has neither PidLidCleanGlobalObjectId nor PidLidGlobalObjectId")]
    NoGlobalObjectId { id: String },
    #[error("item {id}: {message}")]
    Invalid { id: String, message: String },
    #[error("item {id} is a recurring master (calendar views list its instances)")]
    Master { id: String },
}

/// Maps a start time zone to an IANA name (the CLDR table in backend-common's `tz`).
pub type ZoneMapper = dyn Fn(&TimeZoneDef) -> Option<String> + Send + Sync;

fn person(mailbox: &Mailbox) -> Person {
    Person {
        name: mailbox.name.clone().filter(|n| !n.trim().is_empty()),
        email: mailbox.email.clone().filter(|e| !e.trim().is_empty()),
    }
}

fn response(value: Option<&str>) -> ResponseStatus {
    match value {
        None | Some("Unknown") => ResponseStatus::None,
        Some("Organizer") => ResponseStatus::Organizer,
        Some("Tentative") => ResponseStatus::TentativelyAccepted,
        Some("Accept") => ResponseStatus::Accepted,
        Some("Decline") => ResponseStatus::Declined,
        Some("NoResponseReceived") => ResponseStatus::NotResponded,
        Some(_) => ResponseStatus::Unknown,
    }
}

fn attendees(list: &[RawAttendee], kind: AttendeeKind, out: &mut Vec<Attendee>) {
    for a in list {
        out.push(Attendee {
            person: person(&a.mailbox),
            kind,
            response: response(a.response.as_deref()),
        });
    }
}

fn show_as(value: Option<&str>) -> ShowAs {
    match value {
        Some("Free") => ShowAs::Free,
        Some("Tentative") => ShowAs::Tentative,
        Some("Busy") | None => ShowAs::Busy,
        Some("OOF") => ShowAs::Oof,
        Some("WorkingElsewhere") => ShowAs::WorkingElsewhere,
        Some(_) => ShowAs::Unknown,
    }
}

fn sensitivity(value: Option<&str>) -> Sensitivity {
    match value {
        Some("Normal") | None => Sensitivity::Normal,
        Some("Personal") => Sensitivity::Personal,
        Some("Private") => Sensitivity::Private,
        Some("Confidential") => Sensitivity::Confidential,
        Some(_) => Sensitivity::Unknown,
    }
}

/// Builds the canonical event of one instance read by `GetItem`. `calendar` is the neutral
/// calendar path (`"default"` or the folder's display name).
pub fn to_event(
    item: &CalendarItem,
    mailbox: &str,
    calendar: &str,
    zones: &ZoneMapper,
) -> Result<Event, SkipReason> {
    let id = item.id.clone();
    let invalid = |message: String| SkipReason::Invalid {
        id: id.clone(),
        message,
    };
    let kind = match item.item_type.as_deref() {
        Some("Occurrence") => EventKind::Occurrence,
        Some("Exception") => EventKind::Exception,
        Some("RecurringMaster") => return Err(SkipReason::Master { id }),
        _ => EventKind::Single,
    };
    let goid = match (&item.clean_goid, &item.goid) {
        (Some(clean), _) => GlobalObjectId::from_base64(clean),
        (None, Some(raw)) => GlobalObjectId::from_base64(raw),
        (None, None) => return Err(SkipReason::NoGlobalObjectId { id }),
    }
    .map_err(|e| invalid(e.to_string()))?;
    let original_start = match kind {
        EventKind::Occurrence | EventKind::Exception => {
            Some(item.original_start.or(item.start).ok_or_else(|| {
                invalid("an occurrence without OriginalStart or Start".to_string())
            })?)
        }
        _ => None,
    };
    let start = item.start.ok_or_else(|| invalid("no Start".to_string()))?;
    let end = item.end.ok_or_else(|| invalid("no End".to_string()))?;
    let identity =
        EventIdentity::new(mailbox, goid, original_start).map_err(|e| invalid(e.to_string()))?;
    let mut event = Event::new(
        identity,
        calendar,
        SourceIds {
            backend: BACKEND.to_string(),
            item_id: item.id.clone(),
            change_key: item.change_key.clone(),
        },
        item.subject.clone().unwrap_or_default(),
        start,
        end,
    )
    .map_err(|e| invalid(e.to_string()))?;
    event.kind = kind;
    // Derived from the global object id, as Graph's side does: EWS `UID` and Graph `iCalUId`
    // differ for invitations from outside Exchange (backend-common `ical`).
    event.ical_uid = Some(ical::from_clean_goid_hex(event.global_object_id().as_hex()));
    event.location = item.location.clone().filter(|l| !l.trim().is_empty());
    event.organizer = item.organizer.as_ref().map(person);
    let mut list = Vec::new();
    attendees(&item.required, AttendeeKind::Required, &mut list);
    attendees(&item.optional, AttendeeKind::Optional, &mut list);
    attendees(&item.resources, AttendeeKind::Resource, &mut list);
    event.attendees = list;
    event.time_zone = item.start_time_zone.as_ref().and_then(zones);
    event.all_day = item.is_all_day.unwrap_or(false);
    if event.all_day {
        // Midnight of the event's zone as an instant → the dates at 00:00 UTC (the model's
        // all-day rule; the zone as Graph's side maps it).
        (event.start, event.end) = tz::all_day_bounds(start, end, event.time_zone.as_deref());
    }
    event.show_as = show_as(item.free_busy.as_deref());
    event.sensitivity = sensitivity(item.sensitivity.as_deref());
    event.cancelled = item.is_cancelled.unwrap_or(false);
    event.online_meeting_url = item.join_url.clone().filter(|u| !u.trim().is_empty());
    event.categories = item.categories.clone();
    event.last_modified = item.last_modified;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const GOID: &str =
        "BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAADAxMjM0NTY3ODlhYmNkZWY=";

    fn item() -> CalendarItem {
        CalendarItem {
            id: "AAMk1".into(),
            change_key: Some("DwAA".into()),
            subject: Some("Standup".into()),
            start: Some(
                Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
                    .single()
                    .expect("t"),
            ),
            end: Some(
                Utc.with_ymd_and_hms(2026, 3, 2, 9, 15, 0)
                    .single()
                    .expect("t"),
            ),
            item_type: Some("Occurrence".into()),
            original_start: Some(
                Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
                    .single()
                    .expect("t"),
            ),
            clean_goid: Some(GOID.into()),
            free_busy: Some("OOF".into()),
            sensitivity: Some("Confidential".into()),
            location: Some("  ".into()),
            required: vec![RawAttendee {
                mailbox: Mailbox {
                    name: Some("Ann".into()),
                    email: Some("Ann@Contoso.com".into()),
                    ..Mailbox::default()
                },
                response: Some("Tentative".into()),
            }],
            resources: vec![RawAttendee {
                mailbox: Mailbox {
                    email: Some("room-1@contoso.com".into()),
                    ..Mailbox::default()
                },
                response: Some("Accept".into()),
            }],
            ..CalendarItem::default()
        }
    }

    #[test]
    fn occurrence_maps_every_field() {
        let zones = |_: &TimeZoneDef| Some("Europe/Berlin".to_string());
        let mut it = item();
        it.start_time_zone = Some(TimeZoneDef {
            id: Some("W. Europe Standard Time".into()),
            ..TimeZoneDef::default()
        });
        let e = to_event(&it, "Room-1@contoso.com", "default", &zones).expect("event");
        assert_eq!(e.kind, EventKind::Occurrence);
        assert_eq!(e.original_start(), it.original_start);
        assert_eq!(e.mailbox(), "room-1@contoso.com");
        assert_eq!(e.show_as, ShowAs::Oof);
        assert_eq!(e.sensitivity, Sensitivity::Confidential);
        assert_eq!(e.location, None);
        assert_eq!(e.attendees.len(), 2);
        assert_eq!(e.attendees[0].response, ResponseStatus::TentativelyAccepted);
        assert_eq!(
            e.attendees[0].person.email.as_deref(),
            Some("Ann@Contoso.com")
        );
        assert_eq!(e.attendees[1].kind, AttendeeKind::Resource);
        assert_eq!(e.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(e.source.backend, "ews");
        // The same meeting's other occurrence has another key, the same series key.
        let mut other = item();
        other.original_start = Some(
            Utc.with_ymd_and_hms(2026, 3, 3, 8, 0, 0)
                .single()
                .expect("t"),
        );
        let f = to_event(&other, "room-1@contoso.com", "default", &zones).expect("event");
        assert_ne!(e.key(), f.key());
        assert_eq!(e.series_key(), f.series_key());
    }

    #[test]
    fn all_day_items_become_dates_in_their_zone() {
        let zones = |def: &TimeZoneDef| def.id.as_deref().and_then(tz::to_iana);
        let t = |s: &str| s.parse::<chrono::DateTime<Utc>>().expect("t");
        let mut it = item();
        it.item_type = Some("Single".into());
        it.is_all_day = Some(true);
        // 1 November 2026 in New York, the end of summer time there: a 25-hour day.
        it.start = Some(t("2026-11-01T04:00:00Z"));
        it.end = Some(t("2026-11-02T05:00:00Z"));
        it.start_time_zone = Some(TimeZoneDef {
            id: Some("Eastern Standard Time".into()),
            ..TimeZoneDef::default()
        });
        let e = to_event(&it, "room@contoso.com", "default", &zones).expect("event");
        assert!(e.all_day);
        assert_eq!(e.start, t("2026-11-01T00:00:00Z"));
        assert_eq!(e.end, t("2026-11-02T00:00:00Z"));
        assert_eq!(e.time_zone.as_deref(), Some("America/New_York"));
        assert_eq!(
            e.ical_uid.as_deref(),
            Some(e.global_object_id().as_hex()),
            "an Exchange meeting's UID is its global object id in hex"
        );
    }

    #[test]
    fn items_without_goid_or_masters_are_skipped() {
        let none = |_: &TimeZoneDef| None;
        let mut it = item();
        it.clean_goid = None;
        assert!(matches!(
            to_event(&it, "r@c.com", "default", &none),
            Err(SkipReason::NoGlobalObjectId { .. })
        ));
        it.goid = Some(GOID.into());
        assert!(to_event(&it, "r@c.com", "default", &none).is_ok());
        it.item_type = Some("RecurringMaster".into());
        assert!(matches!(
            to_event(&it, "r@c.com", "default", &none),
            Err(SkipReason::Master { .. })
        ));
    }
}
