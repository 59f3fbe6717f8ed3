//! Hostile text on every engine: quotes, SQL injection attempts, NUL bytes, 4-byte UTF-8,
//! control characters, 10 kB subjects. Each event is stored and read back exactly (every field
//! of the rebuilt event equal to what was sent), or rejected with a reason — and a rejected row
//! never fails the rest of its batch.

mod common;

use std::collections::HashMap;

use calpump_plugin::conformance::generate::{EventGen, base_time, delta, snapshot, window};
use calpump_plugin::{Attendee, AttendeeKind, Event, EventKey, Person, ResponseStatus, Sink};
use calpump_sink_database::DatabaseSink;
use common::{DbHarness, Engine};
use serde_json::json;

const ROUTE: &str = "hostile";
const MAILBOX: &str = "room-hostile@contoso.test";

fn hostile_events(g: &mut EventGen) -> Vec<(&'static str, Event)> {
    let w = window(base_time(), 7);
    let mut out = Vec::new();
    let mut add = |name: &'static str, g: &mut EventGen, f: &dyn Fn(&mut Event)| {
        let mut e = g.event(MAILBOX, "default", &w);
        f(&mut e);
        out.push((name, e));
    };
    add("quotes", g, &|e| {
        e.subject = r#"O'Brien's "quoted" `backtick` \backslash\ 50% _under_ $1 ?"#.into();
        e.location = Some("'\"'\"".into());
    });
    add("injection", g, &|e| {
        e.subject = "'; DROP TABLE events; --".into();
        e.location = Some("\"); DROP TABLE cp_events; DELETE FROM runs; --".into());
        e.categories = vec!["') OR 1=1 --".into(), "]; {\"a\": 1}".into()];
        e.organizer = Some(Person {
            name: Some("Robert'); DROP TABLE mailboxes;--".into()),
            email: Some("bobby@tables.test".into()),
        });
    });
    add("emoji", g, &|e| {
        e.subject = "Team 🎉🚀 𝄞 👩‍👩‍👧 — 会议 — Ωμέγα".into();
        e.location = Some("Raum 🏢 1.01".into());
        e.categories = vec!["🔥".into(), "𝒳".into()];
        e.attendees = vec![Attendee {
            person: Person {
                name: Some("Zoë 😀".into()),
                email: Some("zoe@contoso.test".into()),
            },
            kind: AttendeeKind::Required,
            response: ResponseStatus::Accepted,
        }];
    });
    add("controls", g, &|e| {
        e.subject = "tab\tnew\nline\r\u{7f}\u{1b}[31mred\u{1b}[0m \u{202e}rtl\u{200b}zw \u{feff}bom \u{ffff}".into();
    });
    add("subject_10k", g, &|e| {
        let unit = "Zehn-KB-Betreff äöü € 🎉 ";
        let mut s = String::new();
        while s.len() < 10 * 1024 {
            s.push_str(unit);
        }
        e.subject = s;
    });
    add("nul_subject", g, &|e| {
        e.subject = "before\0after".into();
    });
    add("nul_attendee", g, &|e| {
        e.attendees = vec![Attendee {
            person: Person {
                name: Some("nul\0name".into()),
                email: None,
            },
            kind: AttendeeKind::Optional,
            response: ResponseStatus::None,
        }];
    });
    add("subject_70k", g, &|e| {
        e.subject = "x".repeat(70_000);
    });
    add("empty_strings", g, &|e| {
        e.subject = String::new();
        e.location = Some(String::new());
        e.time_zone = Some(String::new());
    });
    out
}

fn run(engine: Engine) {
    let h = DbHarness::new(engine, json!({ "table_prefix": "cp_" }));
    let sink = DatabaseSink::create(h.config.clone()).expect("create");
    let mut g = EventGen::new(99);
    let events = hostile_events(&mut g);
    let w = window(base_time(), 7);
    // Ordinary events around them: they must all be stored whatever the hostile ones do.
    let ordinary = g.events(MAILBOX, "default", &w, 20);
    let mut upserts: Vec<Event> = events.iter().map(|(_, e)| e.clone()).collect();
    upserts.extend(ordinary.iter().cloned());
    let batch = snapshot(ROUTE, MAILBOX, "default", w, upserts, true, "run-1");
    let result = sink
        .write_batch(batch.clone())
        .expect("the batch as a whole succeeds");

    let must_reject: Vec<&str> = match engine {
        Engine::Postgres => vec!["nul_subject", "nul_attendee", "subject_70k"],
        Engine::Sqlite | Engine::MariaDb => vec!["subject_70k"],
    };
    let rejected: HashMap<&EventKey, &str> = result
        .rejected
        .iter()
        .map(|f| (&f.key, f.reason.as_str()))
        .collect();
    let stored: HashMap<String, Event> = h
        .rows(ROUTE, MAILBOX, None)
        .into_iter()
        .map(|r| (r.event.key().to_string(), r.event))
        .collect();
    for (name, event) in &events {
        if must_reject.contains(name) {
            let reason = rejected
                .get(event.key())
                .unwrap_or_else(|| panic!("{engine:?}: `{name}` should be rejected"));
            assert!(
                !reason.is_empty(),
                "{engine:?}: `{name}` rejected without a reason"
            );
            assert!(
                stored.get(event.key().as_str()).is_none(),
                "{engine:?}: rejected `{name}` was stored anyway"
            );
            println!("{engine:?}: `{name}` rejected: {reason}");
        } else {
            assert!(
                !rejected.contains_key(event.key()),
                "{engine:?}: `{name}` rejected: {:?}",
                rejected.get(event.key())
            );
            assert!(
                result.accepted.contains(event.key()),
                "{engine:?}: `{name}` not accepted"
            );
            let back = stored
                .get(event.key().as_str())
                .unwrap_or_else(|| panic!("{engine:?}: `{name}` accepted but not stored"));
            assert_eq!(
                back, event,
                "{engine:?}: `{name}` does not read back exactly"
            );
        }
    }
    for e in &ordinary {
        assert_eq!(
            stored.get(e.key().as_str()),
            Some(e),
            "{engine:?}: an ordinary event next to hostile ones"
        );
    }
    assert_eq!(
        result.accepted.len() + result.rejected.len(),
        batch.upserts.len(),
        "{engine:?}: every item is accepted or rejected"
    );
    // The injection attempts did nothing: every table is still there and holds what it should.
    let table = h.events_table();
    assert_eq!(
        h.query_i64(&format!("SELECT COUNT(*) FROM {table}")),
        (batch.upserts.len() - must_reject.len()) as i64
    );
    assert_eq!(h.query_i64("SELECT COUNT(*) FROM cp_mailboxes"), 1);
    assert!(h.query_i64("SELECT COUNT(*) FROM cp_runs") >= 1);

    // A replay of the same batch changes nothing and rejects the same items again.
    let again = sink.write_batch(batch).expect("replay");
    assert_eq!(again.rejected.len(), must_reject.len());
}

#[test]
fn hostile_text_sqlite() {
    run(Engine::Sqlite);
}

#[test]
fn hostile_text_postgres() {
    run(Engine::Postgres);
}

#[test]
fn hostile_text_mariadb() {
    run(Engine::MariaDb);
}

/// A row the database itself refuses (a constraint the validation cannot know about, added by
/// an administrator) is rejected with the database's reason; the rest of the batch is stored.
fn constraint(engine: Engine) {
    let h = DbHarness::new(engine, json!({}));
    let table = h.events_table();
    match engine {
        Engine::Sqlite => h.execute(&format!(
            "CREATE TRIGGER no_forbidden BEFORE INSERT ON {table} WHEN NEW.subject = 'forbidden' \
             BEGIN SELECT RAISE(ABORT, 'forbidden subject'); END"
        )),
        Engine::Postgres | Engine::MariaDb => h.execute(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT no_forbidden CHECK (subject <> 'forbidden')"
        )),
    }
    let sink = DatabaseSink::create(h.config.clone()).expect("create");
    let mut g = EventGen::new(5);
    let w = window(base_time(), 7);
    let mut events = g.events(MAILBOX, "default", &w, 30);
    events[7].subject = "forbidden".into();
    events[21].subject = "forbidden".into();
    let batch = delta(
        ROUTE,
        MAILBOX,
        "default",
        w,
        events.clone(),
        vec![],
        "run-1",
    );
    let result = sink.write_batch(batch).expect("the batch succeeds");
    let rejected: Vec<&EventKey> = result.rejected.iter().map(|f| &f.key).collect();
    assert_eq!(
        rejected,
        vec![events[7].key(), events[21].key()],
        "{engine:?}"
    );
    assert!(
        result.rejected.iter().all(|f| f.reason.contains("refused")),
        "{engine:?}: {:?}",
        result.rejected
    );
    assert_eq!(result.accepted.len(), 28, "{engine:?}");
    let stored = h.rows(ROUTE, MAILBOX, Some("default"));
    assert_eq!(stored.len(), 28, "{engine:?}: the other rows are stored");
}

#[test]
fn constraint_violation_rejects_only_that_row_sqlite() {
    constraint(Engine::Sqlite);
}

#[test]
fn constraint_violation_rejects_only_that_row_postgres() {
    constraint(Engine::Postgres);
}

#[test]
fn constraint_violation_rejects_only_that_row_mariadb() {
    constraint(Engine::MariaDb);
}
