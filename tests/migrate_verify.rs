//! `calpump migrate verify` finds and names differences injected into the simulator:
//!
//! * an event visible through only one protocol: the simulator hides one meeting from Graph
//!   (only in EWS) and another from EWS (only in Graph) — `Control::hide_event`, no timing;
//! * a subject that differs between the two reads — made by changing the tenant *between* the
//!   EWS read and the Graph read of a room: verify reads a round of mailboxes through EWS
//!   first, then through Graph; a latency fault holds the room's Graph `calendarView` until the
//!   test has renamed the meeting;
//! * a mailbox Graph may not read: the scoped app (application access policy on Building 1)
//!   gets "Access to OData is disabled" for a room of Building 2;
//! * an event a switch would rewrite (equal as a person reads it, content hash different): a
//!   subject re-spelt between the two reads, as above — not clean.
//!
//! A private or confidential meeting is named `(private)`, never by its subject.

mod migrate_support;

use std::time::Duration;

use calpump_simulator::control::Protocol;
use calpump_simulator::{EventChange, Fault, FaultRule};
use migrate_support as s;
use serde_json::Value;

/// A meeting's subject as verify shows it: `(private)` for a private or confidential one.
fn shown(t: &calpump_simulator::TruthInstance) -> String {
    use calpump_simulator::tenant::model::Sensitivity;
    match t.sensitivity {
        Sensitivity::Private | Sensitivity::Confidential => "(private)".to_string(),
        _ => t.subject.clone(),
    }
}

fn subjects(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["subject"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn verify_names_events_only_in_one_protocol() {
    use calpump_simulator::tenant::model::Sensitivity;
    let sim = s::simulator(20, 16, 21).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    s::write_config(
        &dir,
        &format!(
            r#"{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

[[routes]]
name = "rooms"
profile = "online"
mailboxes = ["room-1.01@contoso.com", "room-1.02@contoso.com"]
sinks = ["db"]
"#,
            profiles = s::profiles(&sim)
        ),
    );
    let room = "room-1.01@contoso.com";
    let ews_only = s::single(&sim, room, 0);
    let graph_only = s::single(&sim, room, 1);
    let c = sim.control();
    // The one only in EWS is private, the one only in Graph is not.
    for (meeting, sensitivity) in [
        (&ews_only, Sensitivity::Private),
        (&graph_only, Sensitivity::Normal),
    ] {
        c.change_event(
            room,
            &meeting.goid,
            None,
            &EventChange {
                sensitivity: Some(sensitivity),
                ..EventChange::default()
            },
        )
        .expect("sensitivity");
    }
    let ews_only = s::single(&sim, room, 0);
    let graph_only = s::single(&sim, room, 1);
    assert_eq!(shown(&ews_only), "(private)", "{ews_only:?}");
    assert_eq!(shown(&graph_only), graph_only.subject, "{graph_only:?}");
    c.hide_event(room, &ews_only.goid, Protocol::Graph)
        .expect("hide from Graph");
    c.hide_event(room, &graph_only.goid, Protocol::Ews)
        .expect("hide from EWS");

    let out = s::run_async(
        &dir,
        &[
            "migrate", "verify", "--route", "rooms", "--to", "cloud", "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "not clean: {}", s::text(&out));
    let doc = s::json(&out);
    assert_eq!(doc["clean"], false);
    let summary = &doc["summary"];
    assert_eq!(summary["only_in_current"], 1, "{summary}");
    assert_eq!(summary["only_in_target"], 1, "{summary}");
    assert_eq!(summary["changed"], 0, "{summary}");
    assert_eq!(summary["compared"], 2, "{summary}");
    let mailboxes = doc["mailboxes"].as_array().expect("mailboxes");
    let m = mailboxes
        .iter()
        .find(|m| m["mailbox"] == room)
        .expect("the room");
    // The meeting only in EWS is private: named, but not by its subject.
    assert_eq!(subjects(&m["only_in_current"]), [shown(&ews_only)]);
    assert_eq!(m["only_in_current"][0]["private"], true);
    assert_eq!(subjects(&m["only_in_target"]), [shown(&graph_only)]);
    assert!(m["only_in_target"][0].get("private").is_none());
    assert!(
        mailboxes
            .iter()
            .any(|m| m["mailbox"] == "room-1.02@contoso.com" && m["clean"] == true)
    );

    // In text: each event named under the profile it is seen through.
    let out = s::run_async(
        &dir,
        &["migrate", "verify", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = s::text(&out);
    assert!(
        text.contains(&format!("only in online (ews): \"{}\"", shown(&ews_only))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "only in cloud (graph): \"{}\"",
            shown(&graph_only)
        )),
        "{text}"
    );
    if ews_only.subject != graph_only.subject {
        assert!(!text.contains(&ews_only.subject), "{text}");
        assert!(!doc.to_string().contains(&ews_only.subject), "{doc}");
    }
    assert!(
        text.contains("1 only in online (ews), 1 only in cloud (graph), 0 differ"),
        "{text}"
    );

    // Shown to both again: clean, exit 0.
    c.unhide_event(room, &ews_only.goid, Protocol::Graph)
        .expect("unhide");
    c.unhide_event(room, &graph_only.goid, Protocol::Ews)
        .expect("unhide");
    let out = s::run_async(
        &dir,
        &["migrate", "verify", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s::text(&out));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_changed_fields_and_unreadable_mailboxes() {
    let sim = s::simulator(60, 16, 21).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    s::write_config(
        &dir,
        &format!(
            r#"{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

[[routes]]
name = "rooms"
profile = "online"
mailboxes = ["room-1.01@contoso.com", "room-1.02@contoso.com", "room-2.01@contoso.com"]
sinks = ["db"]
"#,
            profiles = s::profiles(&sim)
        ),
    );
    let room = "room-1.01@contoso.com";
    let renamed = s::single(&sim, room, 0);
    let c = sim.control();
    // A normal meeting (a private one would be named `(private)`).
    c.change_event(
        room,
        &renamed.goid,
        None,
        &EventChange {
            sensitivity: Some(calpump_simulator::tenant::model::Sensitivity::Normal),
            ..EventChange::default()
        },
    )
    .expect("normal");
    // Holds the room's first Graph read for 3 s: the window in which the tenant changes.
    c.add_fault(FaultRule {
        protocol: Some(Protocol::Graph),
        mailbox: Some(room.into()),
        operation: Some("calendarView".into()),
        count: Some(1),
        in_batch: None,
        fault: Fault::Latency { ms: 3000 },
    });
    let verify = tokio::spawn({
        let dir = dir.clone();
        async move {
            s::run_async(
                &dir,
                &[
                    "migrate", "verify", "--route", "rooms", "--to", "scoped", "--json",
                ],
            )
            .await
        }
    });
    s::wait_for("the room's Graph read", Duration::from_secs(60), || {
        s::count(&sim, Protocol::Graph, "calendarView", room) >= 1
    })
    .await;
    assert!(
        s::count(&sim, Protocol::Ews, "GetItem", room) >= 1,
        "EWS read the room before Graph"
    );
    c.change_event(
        room,
        &renamed.goid,
        None,
        &EventChange {
            subject: Some(format!("{} (renamed)", renamed.subject)),
            ..EventChange::default()
        },
    )
    .expect("change");
    let out = verify.await.expect("join");
    assert_eq!(out.status.code(), Some(1), "not clean: {}", s::text(&out));
    let doc = s::json(&out);
    assert_eq!(doc["clean"], false);
    let summary = &doc["summary"];
    assert_eq!(summary["only_in_current"], 0, "{summary}");
    assert_eq!(summary["only_in_target"], 0, "{summary}");
    assert_eq!(summary["changed"], 1, "{summary}");
    assert_eq!(summary["unreadable_target"], 1, "{summary}");
    assert_eq!(summary["compared"], 2, "{summary}");
    let mailboxes = doc["mailboxes"].as_array().expect("mailboxes");
    let by = |address: &str| {
        mailboxes
            .iter()
            .find(|m| m["mailbox"] == address)
            .unwrap_or_else(|| panic!("{address} missing"))
    };
    let m = by(room);
    let changed = &m["changed"][0];
    assert_eq!(changed["subject"], renamed.subject.as_str());
    assert_eq!(
        changed["fields"].as_array().map(Vec::len),
        Some(1),
        "{changed}"
    );
    assert_eq!(changed["fields"][0]["field"], "subject");
    assert_eq!(changed["fields"][0]["current"], renamed.subject.as_str());
    assert_eq!(
        changed["fields"][0]["target"],
        format!("{} (renamed)", renamed.subject).as_str()
    );
    assert_eq!(by("room-1.02@contoso.com")["clean"], true);
    let out_of_scope = by("room-2.01@contoso.com");
    assert_eq!(out_of_scope["clean"], false);
    assert_eq!(
        out_of_scope["target_errors"][0]["code"],
        "graph.MailboxOutOfScope"
    );
    assert!(
        out_of_scope["target_errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Access to OData is disabled")),
        "{out_of_scope}"
    );
    assert!(
        out_of_scope["current_events"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );

    // Read again, in text: the room now reads alike (the differences were the injected ones),
    // the scoped-out mailbox is named with its reason, in German too.
    let out = s::run_async(
        &dir,
        &["migrate", "verify", "--route", "rooms", "--to", "scoped"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = s::text(&out);
    assert!(text.contains("✓ 2 mailboxes read alike"), "{text}");
    assert!(
        text.contains("✗ Room 2.01 <room-2.01@contoso.com>"),
        "{text}"
    );
    assert!(text.contains("Access to OData is disabled"), "{text}");
    assert!(
        text.contains("not readable through scoped (graph): [graph.MailboxOutOfScope]"),
        "{text}"
    );
    assert!(
        text.contains(
            "0 differ, 0 rewritten; unreadable: 0 through online (ews), 1 through scoped (graph) — NOT clean"
        ),
        "{text}"
    );
    let out = s::run_async(
        &dir,
        &[
            "--lang", "de", "migrate", "verify", "--route", "rooms", "--to", "scoped",
        ],
    )
    .await;
    let text = s::text(&out);
    assert!(text.contains("nicht lesbar über scoped (graph): [graph.MailboxOutOfScope] Die App darf dieses Postfach nicht lesen"), "{text}");
    assert!(text.contains("NICHT sauber"), "{text}");

    // Through the good app the same route is clean: exit 0.
    let out = s::run_async(
        &dir,
        &["migrate", "verify", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s::text(&out));
    assert!(s::text(&out).contains("— clean"), "{}", s::text(&out));
    sim.shutdown().await;
}

/// Runs `migrate verify` (with `args`) while a latency fault holds the room's first Graph read,
/// and gives `meeting` the subject `subject` once EWS has read the room: EWS sees the old
/// subject, Graph the new one.
async fn verify_with_subject_changed_between_reads(
    sim: &calpump_simulator::Simulator,
    dir: &std::path::Path,
    room: &str,
    goid: &str,
    subject: &str,
    args: &[&str],
) -> std::process::Output {
    let c = sim.control();
    let graph_reads = s::count(sim, Protocol::Graph, "calendarView", room);
    c.add_fault(FaultRule {
        protocol: Some(Protocol::Graph),
        mailbox: Some(room.into()),
        operation: Some("calendarView".into()),
        count: Some(1),
        in_batch: None,
        fault: Fault::Latency { ms: 3000 },
    });
    let verify = tokio::spawn({
        let dir = dir.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            s::run_async(&dir, &refs).await
        }
    });
    s::wait_for("the room's Graph read", Duration::from_secs(60), || {
        s::count(sim, Protocol::Graph, "calendarView", room) > graph_reads
    })
    .await;
    c.change_event(
        room,
        goid,
        None,
        &EventChange {
            subject: Some(subject.into()),
            ..EventChange::default()
        },
    )
    .expect("change");
    verify.await.expect("join")
}

/// A subject whose spelling alone differs between the two reads (one space doubled) is equal as
/// a person reads it, but its content hash differs: the first sync after a switch would rewrite
/// the row and the door sign. That is not clean — exit 1, counted in the summary line and in
/// `--json` — until both profiles read it alike again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_is_not_clean_when_a_switch_would_rewrite_an_event() {
    let sim = s::simulator(20, 16, 23).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    s::write_config(
        &dir,
        &format!(
            r#"{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

[[routes]]
name = "rooms"
profile = "online"
mailboxes = ["room-1.01@contoso.com", "room-1.02@contoso.com"]
sinks = ["db"]
"#,
            profiles = s::profiles(&sim)
        ),
    );
    let room = "room-1.01@contoso.com";
    let (start, end) = s::window(&sim);
    let meetings: Vec<_> = sim
        .control()
        .truth(room, None, start, end)
        .expect("truth")
        .into_iter()
        .filter(|t| t.original_start.is_none() && !t.is_all_day && !t.is_cancelled)
        .filter(|t| t.sensitivity == calpump_simulator::tenant::model::Sensitivity::Normal)
        .filter(|t| t.subject.trim().contains(' ') && t.start > start + chrono::Duration::days(1))
        .take(2)
        .collect();
    assert_eq!(
        meetings.len(),
        2,
        "two single meetings with a space in the subject"
    );
    let respelled = |subject: &str| subject.trim().replacen(' ', "  ", 1);

    let out = verify_with_subject_changed_between_reads(
        &sim,
        &dir,
        room,
        &meetings[0].goid,
        &respelled(&meetings[0].subject),
        &[
            "migrate", "verify", "--route", "rooms", "--to", "cloud", "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "not clean: {}", s::text(&out));
    let doc = s::json(&out);
    assert_eq!(doc["clean"], false, "{doc:#}");
    let summary = &doc["summary"];
    assert_eq!(summary["differences"], 0, "{summary}");
    assert_eq!(summary["rewrites"], 1, "{summary}");
    assert_eq!(summary["compared"], 2, "{summary}");
    let mailboxes = doc["mailboxes"].as_array().expect("mailboxes");
    let m = mailboxes
        .iter()
        .find(|m| m["mailbox"] == room)
        .expect("the room");
    assert_eq!(m["clean"], false, "{m:#}");
    assert_eq!(m["rewrites"][0]["subject"], meetings[0].subject.as_str());
    assert_eq!(m["rewrites"][0]["fields"][0]["field"], "subject");
    assert!(
        mailboxes
            .iter()
            .any(|m| m["mailbox"] == "room-1.02@contoso.com" && m["clean"] == true)
    );

    // In text: the event is named under its mailbox, the summary line counts it.
    let out = verify_with_subject_changed_between_reads(
        &sim,
        &dir,
        room,
        &meetings[1].goid,
        &respelled(&meetings[1].subject),
        &["migrate", "verify", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", s::text(&out));
    let text = s::text(&out);
    assert!(
        text.contains(&format!(
            "rewritten by a switch: \"{}\"",
            meetings[1].subject
        )),
        "{text}"
    );
    assert!(
        text.contains("0 only in online (ews), 0 only in cloud (graph), 0 differ, 1 rewritten; unreadable: 0 through online (ews), 0 through cloud (graph) — NOT clean"),
        "{text}"
    );
    assert!(!text.contains("— clean"), "{text}");

    // Both profiles now read the new spelling: clean, exit 0.
    let out = s::run_async(
        &dir,
        &["migrate", "verify", "--route", "rooms", "--to", "cloud"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s::text(&out));
    assert!(
        s::text(&out).contains("0 differ, 0 rewritten; unreadable: 0 through online (ews), 0 through cloud (graph) — clean"),
        "{}",
        s::text(&out)
    );
    sim.shutdown().await;
}
