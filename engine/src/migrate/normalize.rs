//! Normalisation of an [`Event`] for comparing two protocols' reads of the same meeting.
//!
//! [`normalized`] turns an event into its compared fields, each as one display string in a
//! canonical spelling; two events are *equal* when every field's string is equal. The list of
//! what is normalised (and what is not compared at all) is in the module documentation of
//! [`crate::migrate`]; keep the two in step.

use calpump_plugin::{AttendeeKind, Event, EventKind, Person, ResponseStatus, Sensitivity, ShowAs};
use chrono::{DateTime, SecondsFormat, Utc};

/// The fields compared, in the order they are reported.
pub const FIELDS: &[&str] = &[
    "calendar",
    "kind",
    "subject",
    "location",
    "organizer",
    "attendees",
    "start",
    "end",
    "all_day",
    "time_zone",
    "show_as",
    "sensitivity",
    "cancelled",
    "online_meeting_url",
    "categories",
];

/// An event's compared fields, normalised: `(field, value)` in [`FIELDS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized(pub Vec<(&'static str, String)>);

impl Normalized {
    /// The fields whose values differ, as `(field, self's value, other's value)`.
    pub fn differences<'a>(
        &'a self,
        other: &'a Normalized,
    ) -> Vec<(&'static str, &'a str, &'a str)> {
        self.0
            .iter()
            .zip(&other.0)
            .filter(|(a, b)| !same(a.0, &a.1, &b.1))
            .map(|(a, b)| (a.0, a.1.as_str(), b.1.as_str()))
            .collect()
    }
}

/// Equality of one field's values. An organizer known only by name on one side (EWS may give
/// an X.500 address instead of the SMTP one) equals the same name with an address on the other.
fn same(field: &str, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if field == "organizer" {
        let name = |v: &str| v.split(" <").next().unwrap_or(v).to_string();
        let named_only = |v: &str| v.starts_with('"') && !v.contains(" <");
        return (named_only(a) || named_only(b)) && name(a) == name(b);
    }
    false
}

/// Text as a person reads it: line endings, tabs, runs of spaces and non-breaking spaces are one
/// space; leading and trailing whitespace and zero-width characters (U+200B…U+200D, U+2060,
/// U+FEFF) are dropped.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut space = false;
    for c in value.chars() {
        if matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
        ) {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// An optional text: empty (after [`text`]) is absent.
fn opt_text(value: Option<&str>) -> Option<String> {
    value.map(text).filter(|t| !t.is_empty())
}

/// An e-mail address: trimmed, lower-cased; a value without `@` (an X.500 / legacy Exchange DN
/// that EWS may give for internal senders instead of the SMTP address) is treated as unknown.
pub fn email(value: Option<&str>) -> Option<String> {
    let v = value?.trim().to_lowercase();
    let v = v.strip_prefix("smtp:").map(str::to_string).unwrap_or(v);
    (v.contains('@') && !v.starts_with('/')).then_some(v)
}

fn person(p: &Person) -> Option<String> {
    match (opt_text(p.name.as_deref()), email(p.email.as_deref())) {
        (None, None) => None,
        (Some(n), None) => Some(format!("\"{n}\"")),
        (None, Some(e)) => Some(format!("<{e}>")),
        (Some(n), Some(e)) => Some(format!("\"{n}\" <{e}>")),
    }
}

fn instant(t: DateTime<Utc>) -> String {
    // Second precision: Graph sends seven fractional digits, EWS none.
    DateTime::<Utc>::from_timestamp(t.timestamp(), 0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The spellings of UTC that zone tables use interchangeably.
fn zone(value: Option<&str>) -> String {
    let Some(z) = value.map(str::trim).filter(|z| !z.is_empty()) else {
        return String::new();
    };
    match z.to_ascii_lowercase().as_str() {
        "utc" | "etc/utc" | "etc/uct" | "uct" | "etc/gmt" | "gmt" | "etc/universal"
        | "universal" | "etc/zulu" | "zulu" | "etc/gmt+0" | "etc/gmt-0" | "etc/gmt0" => {
            "UTC".to_string()
        }
        _ => z.to_string(),
    }
}

/// A URL: trimmed; percent-escapes in upper case (`%3a` and `%3A` are the same character).
fn url(value: Option<&str>) -> String {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return String::new();
    };
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            for _ in 0..2 {
                match chars.peek() {
                    Some(h) if h.is_ascii_hexdigit() => {
                        out.push(h.to_ascii_uppercase());
                        chars.next();
                    }
                    _ => break,
                }
            }
        }
    }
    out
}

fn kind(k: EventKind) -> &'static str {
    match k {
        EventKind::Single => "single",
        EventKind::Occurrence => "occurrence",
        EventKind::Exception => "exception",
        EventKind::Unknown => "unknown",
    }
}

fn attendee_kind(k: AttendeeKind) -> &'static str {
    match k {
        AttendeeKind::Required => "required",
        AttendeeKind::Optional => "optional",
        AttendeeKind::Resource => "resource",
        AttendeeKind::Unknown => "unknown",
    }
}

fn response(r: ResponseStatus) -> &'static str {
    match r {
        ResponseStatus::None => "none",
        ResponseStatus::Organizer => "organizer",
        ResponseStatus::Accepted => "accepted",
        ResponseStatus::TentativelyAccepted => "tentative",
        ResponseStatus::Declined => "declined",
        ResponseStatus::NotResponded => "not_responded",
        ResponseStatus::Unknown => "unknown",
    }
}

fn show_as(s: ShowAs) -> &'static str {
    match s {
        ShowAs::Free => "free",
        ShowAs::Tentative => "tentative",
        ShowAs::Busy => "busy",
        ShowAs::Oof => "oof",
        ShowAs::WorkingElsewhere => "working_elsewhere",
        ShowAs::Unknown => "unknown",
    }
}

fn sensitivity(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Normal => "normal",
        Sensitivity::Personal => "personal",
        Sensitivity::Private => "private",
        Sensitivity::Confidential => "confidential",
        Sensitivity::Unknown => "unknown",
    }
}

/// The attendees as a set: each `kind:person (response)`, sorted, duplicates dropped.
fn attendees(event: &Event) -> String {
    let mut list: Vec<String> = event
        .attendees
        .iter()
        .filter_map(|a| {
            let who = person(&a.person)?;
            Some(format!(
                "{}:{who} ({})",
                attendee_kind(a.kind),
                response(a.response)
            ))
        })
        .collect();
    list.sort();
    list.dedup();
    list.join("; ")
}

/// Categories as a set: trimmed, compared without regard to case (Outlook's master category
/// list is case-insensitive), sorted, duplicates dropped.
fn categories(event: &Event) -> String {
    let mut list: Vec<String> = event
        .categories
        .iter()
        .map(|c| text(c).to_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    list.sort();
    list.dedup();
    list.join("; ")
}

/// The compared fields of `event`, normalised.
pub fn normalized(event: &Event) -> Normalized {
    let organizer = event
        .organizer
        .as_ref()
        .and_then(person)
        .unwrap_or_default();
    Normalized(vec![
        ("calendar", text(&event.calendar)),
        ("kind", kind(event.kind).to_string()),
        ("subject", text(&event.subject)),
        (
            "location",
            opt_text(event.location.as_deref()).unwrap_or_default(),
        ),
        ("organizer", organizer),
        ("attendees", attendees(event)),
        ("start", instant(event.start)),
        ("end", instant(event.end)),
        ("all_day", event.all_day.to_string()),
        ("time_zone", zone(event.time_zone.as_deref())),
        ("show_as", show_as(event.show_as).to_string()),
        ("sensitivity", sensitivity(event.sensitivity).to_string()),
        ("cancelled", event.cancelled.to_string()),
        (
            "online_meeting_url",
            url(event.online_meeting_url.as_deref()),
        ),
        ("categories", categories(event)),
    ])
}

/// The fields [`Event::content_hash`] covers, as the hash sees them (same normalisation: source
/// ids and last-modified left out, attendees sorted by e-mail and kind, e-mail addresses
/// lower-cased, categories sorted) — to say *which* fields make two hashes differ. The decision
/// itself is always `content_hash()` equality.
pub fn hashed_fields(event: &Event) -> Vec<(String, String)> {
    let mut value = match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Vec::new(),
    };
    for gone in [
        "source",
        "last_modified",
        "key",
        "mailbox",
        "global_object_id",
    ] {
        value.remove(gone);
    }
    if let Some(serde_json::Value::Array(list)) = value.get_mut("attendees") {
        for a in list.iter_mut() {
            if let Some(e) = a.get_mut("email")
                && let Some(s) = e.as_str()
            {
                *e = serde_json::Value::String(s.to_lowercase());
            }
        }
        list.sort_by_key(|a| {
            (
                a.get("email").and_then(|e| e.as_str()).map(str::to_string),
                a.get("kind").map(ToString::to_string),
            )
        });
    }
    if let Some(org) = value.get_mut("organizer")
        && let Some(e) = org.get_mut("email")
        && let Some(s) = e.as_str()
    {
        *e = serde_json::Value::String(s.to_lowercase());
    }
    if let Some(serde_json::Value::Array(list)) = value.get_mut("categories") {
        list.sort_by_key(ToString::to_string);
    }
    value.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}

/// The fields whose hashed form differs between `a` and `b`: `(field, a's, b's)` (a field one
/// side omits shows as `null`).
pub fn hashed_differences(a: &Event, b: &Event) -> Vec<(String, String, String)> {
    let a = hashed_fields(a);
    let b = hashed_fields(b);
    let mut names: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
    names.sort();
    names.dedup();
    let get = |list: &[(String, String)], name: &str| {
        list.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "null".to_string())
    };
    names
        .into_iter()
        .filter_map(|name| {
            let (x, y) = (get(&a, name), get(&b, name));
            (x != y).then(|| (name.clone(), x, y))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use calpump_plugin::{Attendee, EventIdentity, GlobalObjectId, SourceIds};
    use chrono::TimeZone;

    fn event(backend: &str) -> Event {
        let goid = GlobalObjectId::from_bytes(b"calpump-normalize-test-goid").expect("goid");
        let id = EventIdentity::new("room@contoso.com", goid, None).expect("identity");
        let start = Utc
            .with_ymd_and_hms(2026, 11, 28, 9, 0, 0)
            .single()
            .expect("t");
        let mut e = Event::new(
            id,
            "default",
            SourceIds {
                backend: backend.into(),
                item_id: format!("{backend}-id"),
                change_key: None,
            },
            "Board meeting",
            start,
            start + chrono::Duration::hours(1),
        )
        .expect("event");
        e.attendees = vec![
            Attendee {
                person: Person {
                    name: Some("Ann".into()),
                    email: Some("ann@contoso.com".into()),
                },
                kind: AttendeeKind::Required,
                response: ResponseStatus::Accepted,
            },
            Attendee {
                person: Person {
                    name: Some("Bob".into()),
                    email: Some("bob@contoso.com".into()),
                },
                kind: AttendeeKind::Optional,
                response: ResponseStatus::None,
            },
        ];
        e.categories = vec!["Blue".into(), "Red".into()];
        e.online_meeting_url = Some("https://teams.example/l/meetup-join/19%3ameeting".into());
        e.time_zone = Some("Europe/Berlin".into());
        e
    }

    #[test]
    fn representational_differences_are_equal() {
        let ews = event("ews");
        let mut graph = event("graph");
        graph.subject = "  Board\r\n meeting\u{00A0} ".into();
        graph.attendees.reverse();
        graph.attendees[0].person.email = Some("BOB@Contoso.com".into());
        graph.categories = vec!["red".into(), "Blue".into(), "blue".into()];
        graph.online_meeting_url = Some(" https://teams.example/l/meetup-join/19%3Ameeting".into());
        graph.start += chrono::Duration::milliseconds(0);
        graph.location = Some(" ".into());
        graph.last_modified = Some(Utc::now());
        assert_eq!(normalized(&ews), normalized(&graph));
        assert!(ews.location.is_none());
    }

    #[test]
    fn real_differences_are_named() {
        let ews = event("ews");
        let mut graph = event("graph");
        graph.subject = "Board meeting (moved)".into();
        graph.attendees[1].response = ResponseStatus::Declined;
        graph.time_zone = Some("Etc/UTC".into());
        let a = normalized(&ews);
        let b = normalized(&graph);
        let fields: Vec<&str> = a.differences(&b).iter().map(|d| d.0).collect();
        assert_eq!(fields, ["subject", "attendees", "time_zone"]);
        assert_eq!(zone(Some("Etc/UTC")), zone(Some("UTC")));
    }

    #[test]
    fn hashed_differences_name_what_changes_the_content_hash() {
        let ews = event("ews");
        let mut graph = event("graph");
        assert!(hashed_differences(&ews, &graph).is_empty());
        assert_eq!(ews.content_hash(), graph.content_hash());
        graph.ical_uid = Some("040000008200E000".into());
        graph.subject = "Board meeting ".into();
        assert_ne!(ews.content_hash(), graph.content_hash());
        let names: Vec<String> = hashed_differences(&ews, &graph)
            .into_iter()
            .map(|d| d.0)
            .collect();
        assert_eq!(names, ["ical_uid", "subject"]);
        assert_eq!(
            normalized(&ews),
            normalized(&graph),
            "both are representational"
        );
    }

    #[test]
    fn text_and_email_rules() {
        assert_eq!(text("\u{FEFF} a \t b\n"), "a b");
        assert_eq!(
            email(Some(" SMTP:Ann@Contoso.COM ")),
            Some("ann@contoso.com".into())
        );
        assert_eq!(
            email(Some(
                "/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=ANN"
            )),
            None
        );
        assert_eq!(url(Some("https://x/%3a%2F%")), "https://x/%3A%2F%");
        assert!(same("organizer", "\"Ann\"", "\"Ann\" <ann@contoso.com>"));
        assert!(!same("organizer", "\"Ann\"", "\"Bob\" <bob@contoso.com>"));
        assert!(!same("subject", "a", "b"));
    }
}
