use std::sync::Arc;
use std::time::Duration;

use calpump_plugin::{Attendee, AttendeeKind, Event, Person, ResponseStatus};

use super::*;
use crate::config::{CalendarSelection, RouteConfig, WindowConfig};
use crate::diagnostics::{Diagnostic, catalogue};
use crate::runner::route_window;
use crate::source::{MailboxKind, Source, SourceError};
use crate::testing::{MemorySource, fixed_base, make_event};

fn route(mailboxes: &[&str], room_lists: &[&str]) -> RouteConfig {
    RouteConfig {
        name: "rooms".into(),
        profile: "onprem".into(),
        shadow_profile: None,
        mailboxes: mailboxes.iter().map(|s| s.to_string()).collect(),
        room_lists: room_lists.iter().map(|s| s.to_string()).collect(),
        calendars: CalendarSelection::Default,
        window: WindowConfig {
            past_days: 1,
            future_days: 7,
        },
        interval: Duration::from_secs(60),
        sinks: vec!["db".into()],
        concurrency: 2,
        empty_guard: true,
    }
}

fn ev(backend: &str, mailbox: &str, uid: u64, subject: &str, hour: i64) -> Event {
    let start = fixed_base() + chrono::Duration::days(2) + chrono::Duration::hours(hour);
    make_event(
        mailbox,
        "default",
        uid,
        &format!("{backend}-{uid}"),
        subject,
        start,
        start + chrono::Duration::minutes(30),
    )
    .expect("event")
}

fn attendee(email: &str, kind: AttendeeKind) -> Attendee {
    Attendee {
        person: Person {
            name: Some(email.split('@').next().unwrap_or_default().to_lowercase()),
            email: Some(email.into()),
        },
        kind,
        response: ResponseStatus::Accepted,
    }
}

/// Two sources of one tenant: `a` and `b` agree on most, differ where the test says.
fn tenant() -> (Arc<MemorySource>, Arc<MemorySource>) {
    let a = Arc::new(MemorySource::new("ews"));
    let b = Arc::new(MemorySource::new("graph").with_chunk(3));
    for m in ["a@x.test", "b@x.test", "c@x.test", "d@x.test"] {
        a.add_mailbox(m, Some(m), MailboxKind::Room);
        b.add_mailbox(m, Some(m), MailboxKind::Room);
    }
    a.add_room_list("list@x.test", "Building X", &["c@x.test", "d@x.test"]);
    for (uid, subject, hour) in [(1, "Same", 1), (2, "Planning", 2), (5, "People", 5)] {
        let mut x = ev("ews", "a@x.test", uid, subject, hour);
        let mut y = ev("graph", "a@x.test", uid, subject, hour);
        if uid == 5 {
            // Representational: attendee order and address case, CRLF in the subject.
            x.attendees = vec![
                attendee("ann@x.test", AttendeeKind::Required),
                attendee("bob@x.test", AttendeeKind::Optional),
            ];
            y.attendees = vec![
                attendee("BOB@x.test", AttendeeKind::Optional),
                attendee("ann@x.test", AttendeeKind::Required),
            ];
        }
        if uid == 2 {
            y.subject = "Planning (moved)".into();
        }
        a.put(&format!("a{uid}"), x);
        b.put(&format!("b{uid}"), y);
    }
    a.put("a3", ev("ews", "a@x.test", 3, "Only EWS", 3));
    b.put("b4", ev("graph", "a@x.test", 4, "Only Graph", 4));
    // c: equal after normalisation, but a trailing space changes the content hash.
    a.put("c1", ev("ews", "c@x.test", 10, "Stand-up", 1));
    b.put("c1", ev("graph", "c@x.test", 10, "Stand-up ", 1));
    // d: equal.
    a.put("d1", ev("ews", "d@x.test", 20, "Review", 1));
    b.put("d1", ev("graph", "d@x.test", 20, "Review", 1));
    // b: the target may not read it.
    a.put("x1", ev("ews", "b@x.test", 30, "Secret", 1));
    b.set_mailbox_failure(
        "b@x.test",
        Some(SourceError::new(Diagnostic::new(
            &catalogue::graph::ODATA_DISABLED,
            "Access to OData is disabled",
        ))),
    );
    (a, b)
}

#[tokio::test]
async fn verify_names_only_in_each_changed_fields_and_unreadable_mailboxes() {
    let (a, b) = tenant();
    let (a, b): (Arc<dyn Source>, Arc<dyn Source>) = (a, b);
    let route = route(&["a@x.test", "b@x.test"], &["Building X"]);
    let window = route_window(&route, fixed_base() + chrono::Duration::days(2));
    let opts = CompareOptions {
        round: 3,
        ..CompareOptions::default()
    };
    let cmp = compare_route(&a, &b, &route, window, &opts).await;
    assert!(cmp.route_errors.is_empty(), "{:?}", cmp.route_errors);
    let s = cmp.summary;
    assert_eq!(s.mailboxes, 4, "{cmp:#?}");
    assert_eq!((s.only_in_current, s.only_in_target, s.changed), (1, 1, 1));
    assert_eq!(s.rewrites, 1);
    assert_eq!((s.unreadable_current, s.unreadable_target), (0, 1));
    assert!(!s.clean());
    let order: Vec<&str> = cmp.mailboxes.iter().map(|m| m.mailbox.as_str()).collect();
    assert_eq!(order, ["a@x.test", "b@x.test", "c@x.test", "d@x.test"]);

    let ma = &cmp.mailboxes[0];
    assert_eq!(ma.only_in_current[0].subject, "Only EWS");
    assert_eq!(ma.only_in_target[0].subject, "Only Graph");
    assert_eq!(ma.changed.len(), 1);
    assert_eq!(ma.changed[0].fields.len(), 1);
    let f = &ma.changed[0].fields[0];
    assert_eq!(
        (f.field.as_str(), f.current.as_str(), f.target.as_str()),
        ("subject", "Planning", "Planning (moved)")
    );
    let mb = &cmp.mailboxes[1];
    assert!(!mb.compared());
    assert_eq!(
        mb.target_errors[0].diagnostic.code(),
        "graph.MailboxOutOfScope"
    );
    // c: no difference as a person reads it, but a switch would rewrite the event: not clean.
    let mc = &cmp.mailboxes[2];
    assert_eq!(mc.differences(), 0);
    assert_eq!(mc.rewrites[0].fields[0].field, "subject");
    assert!(!mc.clean(), "a rewrite is not clean");
    assert!(cmp.mailboxes[3].clean() && cmp.mailboxes[3].rewrites.is_empty());

    // Shadow mode keeps only what is not clean; the totals are the same.
    let shadow = compare_route(
        &a,
        &b,
        &route,
        window,
        &CompareOptions {
            keep_clean: false,
            ..opts
        },
    )
    .await;
    assert_eq!(shadow.summary, s);
    assert_eq!(
        shadow
            .mailboxes
            .iter()
            .map(|m| m.mailbox.as_str())
            .collect::<Vec<_>>(),
        ["a@x.test", "b@x.test", "c@x.test"],
        "the mailbox with a rewrite is kept too"
    );
}

#[tokio::test]
async fn a_route_whose_only_difference_is_a_rewrite_is_not_clean() {
    let (a, b) = tenant();
    let (a, b): (Arc<dyn Source>, Arc<dyn Source>) = (a, b);
    let both = route(&["c@x.test", "d@x.test"], &[]);
    let window = route_window(&both, fixed_base() + chrono::Duration::days(2));
    let cmp = compare_route(&a, &b, &both, window, &CompareOptions::default()).await;
    let s = cmp.summary;
    assert_eq!((s.compared, s.differences(), s.rewrites), (2, 0, 1));
    assert!(!s.clean(), "{s:?}");
    // Without the rewrite the route is clean.
    let cmp = compare_route(
        &a,
        &b,
        &route(&["d@x.test"], &[]),
        window,
        &CompareOptions::default(),
    )
    .await;
    assert!(cmp.summary.clean(), "{:?}", cmp.summary);
}

#[tokio::test]
async fn a_mailbox_the_current_profile_cannot_resolve_is_reported_not_compared() {
    let (a, b) = tenant();
    let (a, b): (Arc<dyn Source>, Arc<dyn Source>) = (a, b);
    let route = route(&["nobody@x.test", "d@x.test"], &[]);
    let window = route_window(&route, fixed_base() + chrono::Duration::days(2));
    let cmp = compare_route(&a, &b, &route, window, &CompareOptions::default()).await;
    assert_eq!(cmp.summary.unreadable_current, 1);
    assert_eq!(cmp.summary.compared, 1);
    assert_eq!(cmp.mailboxes[0].mailbox, "nobody@x.test");
}

#[tokio::test]
async fn a_private_or_confidential_meetings_text_is_masked_in_the_comparison() {
    use calpump_plugin::Sensitivity;
    let a = Arc::new(MemorySource::new("ews"));
    let b = Arc::new(MemorySource::new("graph"));
    for s in [&a, &b] {
        s.add_mailbox("p@x.test", Some("P"), MailboxKind::Room);
    }
    let private = |backend: &str, uid: u64, subject: &str, sensitivity: Sensitivity| {
        let mut e = ev(backend, "p@x.test", uid, subject, uid as i64);
        e.sensitivity = sensitivity;
        e.location = Some("Ann's office".into());
        e.organizer = Some(Person {
            name: Some("Ann Secret".into()),
            email: Some("ann.secret@x.test".into()),
        });
        e
    };
    // 1: private, renamed between the reads; 2: confidential, only in the current profile;
    // 3: private through the target only (made private between the reads), location changed;
    // 4: confidential, only the spelling differs (a rewrite); 5: normal, renamed.
    a.put("a1", private("ews", 1, "Salary talk", Sensitivity::Private));
    b.put(
        "b1",
        private("graph", 1, "Salary talk (moved)", Sensitivity::Private),
    );
    a.put(
        "a2",
        private("ews", 2, "Medical leave", Sensitivity::Confidential),
    );
    a.put(
        "a3",
        private("ews", 3, "Union meeting", Sensitivity::Normal),
    );
    let mut made_private = private("graph", 3, "Union meeting", Sensitivity::Private);
    made_private.location = Some("Basement".into());
    b.put("b3", made_private);
    a.put(
        "a4",
        private("ews", 4, "Lawyer call", Sensitivity::Confidential),
    );
    b.put(
        "b4",
        private("graph", 4, "Lawyer  call", Sensitivity::Confidential),
    );
    a.put("a5", ev("ews", "p@x.test", 5, "Planning", 5));
    b.put("b5", ev("graph", "p@x.test", 5, "Planning (moved)", 5));
    let (a, b): (Arc<dyn Source>, Arc<dyn Source>) = (a, b);
    let route = route(&["p@x.test"], &[]);
    let window = route_window(&route, fixed_base() + chrono::Duration::days(2));
    let cmp = compare_route(&a, &b, &route, window, &CompareOptions::default()).await;
    let m = &cmp.mailboxes[0];
    assert_eq!(
        (m.changed.len(), m.only_in_current.len(), m.rewrites.len()),
        (3, 1, 1),
        "{m:#?}"
    );

    let hidden = [
        "Salary",
        "Medical",
        "Union",
        "Lawyer",
        "Ann",
        "ann.secret",
        "office",
        "Basement",
    ];
    let report = serde_json::to_string(&cmp).expect("json");
    for text in hidden {
        assert!(!report.contains(text), "`{text}` in {report}");
    }
    let changed = |uid: u64| {
        m.changed
            .iter()
            .find(|d| d.event.start == ev("x", "p@x.test", uid, "", uid as i64).start)
            .unwrap_or_else(|| panic!("event {uid} changed: {m:#?}"))
    };
    let renamed = changed(1);
    assert!(renamed.event.private);
    assert_eq!(renamed.event.subject, PRIVATE_TEXT);
    assert_eq!(
        (
            renamed.fields[0].field.as_str(),
            renamed.fields[0].current.as_str(),
            renamed.fields[0].target.as_str()
        ),
        ("subject", PRIVATE_TEXT, PRIVATE_TEXT)
    );
    // Made private between the reads: masked though the current side was normal; the
    // sensitivity itself is shown.
    let third = changed(3);
    assert!(third.event.private);
    let fields: Vec<(&str, &str, &str)> = third
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.current.as_str(), f.target.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("location", PRIVATE_TEXT, PRIVATE_TEXT),
            ("sensitivity", "normal", "private")
        ]
    );
    assert_eq!(m.only_in_current[0].subject, PRIVATE_TEXT);
    assert_eq!(m.rewrites[0].event.subject, PRIVATE_TEXT);
    assert_eq!(m.rewrites[0].fields[0].field, "subject");
    assert_eq!(m.rewrites[0].fields[0].target, PRIVATE_TEXT);
    // A normal meeting is shown as it is.
    let normal = changed(5);
    assert!(!normal.event.private);
    assert_eq!(normal.event.subject, "Planning");
    assert_eq!(normal.fields[0].target, "Planning (moved)");
    assert!(report.contains("Planning (moved)"));
}
