//! Against the in-process simulator: each auth mode, Autodiscover, a route of 50 rooms equal to
//! the truth, an incremental sync after adds, changes, a cancelled occurrence and a delete, and
//! the full re-reads without a change: a moved window and `reread_interval`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use calpump_engine::source::Source;
use calpump_ews::source::{CursorState, map_zone};
use calpump_plugin::Window;
use calpump_simulator::control::Protocol;
use calpump_simulator::tenant::RecurrenceSpec;
use calpump_simulator::tenant::model::{Pattern, RangeEnd};
use calpump_simulator::{EventChange, NewEvent};
use common::*;

#[tokio::test]
async fn route_of_50_rooms_then_incremental_after_changes() {
    let sim = sim(50).await;
    let win = window(&sim);
    let source: Arc<dyn Source> = Arc::new(source(&sim, "ntlm"));

    let lists = source.room_lists().await.expect("room lists");
    assert_eq!(lists.len(), 1, "{lists:?}");
    let rooms = source.rooms(None).await.expect("rooms");
    assert_eq!(rooms.len(), 50);
    let rooms: Vec<String> = rooms.into_iter().map(|r| r.address).collect();

    let mut sink = Collector::default();
    sink.sync_parallel(&source, &rooms, win, 8).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
    }
    assert!(sink.mailboxes.values().map(|m| m.len()).sum::<usize>() > 50 * 10);

    // Changes: an added event, a changed one, a cancelled occurrence, a deleted one.
    let c = sim.control();
    let (added, changed, cancelled, deleted) = (&rooms[3], &rooms[7], &rooms[11], &rooms[19]);
    let t0 = win.start + chrono::Duration::days(2) + chrono::Duration::hours(9);
    c.create_event(
        added,
        &NewEvent {
            subject: "Added by the test".into(),
            start: Some(t0),
            end: Some(t0 + chrono::Duration::minutes(45)),
            time_zone: Some("W. Europe Standard Time".into()),
            ..NewEvent::default()
        },
    )
    .expect("create");
    let truth = c
        .truth(changed, Some("Calendar"), win.start, win.end)
        .expect("truth");
    let single = truth
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("a single event");
    c.change_event(
        changed,
        &single.goid,
        None,
        &EventChange {
            subject: Some("Changed by the test".into()),
            location: Some("Elsewhere".into()),
            ..EventChange::default()
        },
    )
    .expect("change");
    let truth = c
        .truth(cancelled, Some("Calendar"), win.start, win.end)
        .expect("truth");
    let occ = truth
        .iter()
        .find(|t| t.original_start.is_some())
        .expect("an occurrence");
    c.cancel_occurrence(cancelled, &occ.goid, occ.original_start.expect("start"))
        .expect("cancel");
    let truth = c
        .truth(deleted, Some("Calendar"), win.start, win.end)
        .expect("truth");
    let victim = truth
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("single");
    c.delete_event(deleted, &victim.goid).expect("delete");

    c.reset_stats();
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&source, &rooms, win, 8).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
    }
    // The incremental run asked SyncFolderItems of every room and re-read only the four.
    let stats = c.stats();
    assert!(
        stats.operation(Protocol::Ews, "SyncFolderItems") >= 50,
        "{:?}",
        stats.by_operation
    );
    let reread: Vec<String> = sink.batches_per_mailbox.keys().cloned().collect();
    let mut want = vec![
        added.clone(),
        changed.clone(),
        cancelled.clone(),
        deleted.clone(),
    ];
    want.sort();
    assert_eq!(reread, want, "only the changed calendars are re-read");
    let find_item_mailboxes: std::collections::BTreeSet<String> = stats
        .entries
        .iter()
        .filter(|e| {
            e.protocol == Protocol::Ews && (e.operation == "FindItem" || e.operation == "GetItem")
        })
        .filter_map(|e| e.mailbox.clone())
        .collect();
    assert_eq!(find_item_mailboxes.into_iter().collect::<Vec<_>>(), want);

    // A third run with nothing changed: no batch, SyncFolderItems only.
    c.reset_stats();
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&source, &rooms, win, 8).await;
    assert!(sink.batches_per_mailbox.is_empty());
    let stats = c.stats();
    assert_eq!(stats.operation(Protocol::Ews, "FindItem"), 0);
    assert_eq!(stats.operation(Protocol::Ews, "GetItem"), 0);
    sim.shutdown().await;
}

async fn read_three_rooms(mode: &str) {
    let sim = sim(5).await;
    let win = window(&sim);
    let source: Arc<dyn Source> = Arc::new(source(&sim, mode));
    let rooms = vec![
        "room-1.01@contoso.com".to_string(),
        "room-1.02@contoso.com".to_string(),
        "room-1.05@contoso.com".to_string(),
    ];
    let mut sink = Collector::default();
    sink.sync_parallel(&source, &rooms, win, 3).await;
    assert!(sink.errors.is_empty(), "{mode}: {:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
    }
    // How the simulator saw the requests.
    let log = calpump_simulator::ews::settings(sim.control()).requests();
    let reads: Vec<_> = log.iter().filter(|r| r.operation == "GetItem").collect();
    assert!(!reads.is_empty());
    for r in &reads {
        match mode {
            "basic" => assert_eq!(r.auth, "basic"),
            "ntlm" => assert_eq!(r.auth, "ntlm"),
            _ => assert_eq!(r.auth, "bearer"),
        }
        if mode == "password_grant" {
            // Delegate access: no impersonation, and no X-AnchorMailbox.
            assert_eq!(r.impersonated, None, "{r:?}");
            assert_eq!(r.anchor_mailbox, None, "{r:?}");
        } else {
            let imp = r.impersonated.clone().expect("impersonated");
            assert_eq!(
                r.anchor_mailbox.as_deref(),
                Some(imp.as_str()),
                "X-AnchorMailbox with impersonation"
            );
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn basic_auth_reads_rooms() {
    read_three_rooms("basic").await;
}

#[tokio::test]
async fn ntlm_reads_rooms() {
    read_three_rooms("ntlm").await;
}

#[tokio::test]
async fn oauth_client_credentials_reads_rooms() {
    read_three_rooms("client_credentials").await;
}

#[tokio::test]
async fn oauth_password_grant_reads_rooms_as_delegate() {
    read_three_rooms("password_grant").await;
}

#[tokio::test]
async fn autodiscover_soap_pox_and_redirects() {
    let sim = sim(3).await;
    let base = sim.base_url().to_string();
    let ews_url = sim.ews_url();
    let toml_for = |explicit: &str| {
        format!(
            r#"autodiscover = "svc-pump@contoso.com"
               autodiscover_url = "{explicit}"
               auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = "{PASSWORD}" }}
               impersonation = true"#
        )
    };
    // SOAP first (base URL → autodiscover.svc).
    let s = source_from(&toml_for(&base));
    let (url, how) = s.resolve_url(None).await.expect("soap");
    assert_eq!(url.as_str(), ews_url);
    let how = how.expect("discovered");
    assert!(how.via.starts_with("SOAP"), "{how:?}");

    // POX when SOAP Autodiscover answers with something else (here a sign-in page).
    let settings = calpump_simulator::ews::settings(sim.control());
    sim.control().add_fault(
        calpump_simulator::FaultRule::new(calpump_simulator::Fault::HtmlLoginPage)
            .protocol(Protocol::Autodiscover)
            .operation("GetUserSettings")
            .count(1),
    );
    let s = source_from(&toml_for(&format!("{base}/autodiscover/autodiscover.xml")));
    let (url, how) = s.resolve_url(None).await.expect("pox");
    assert_eq!(url.as_str(), ews_url);
    let how = how.expect("how");
    assert!(how.via.starts_with("POX"), "{how:?}");
    assert!(how.tried[0].contains("HTML"), "{:?}", how.tried);

    // A redirect to another address (SOAP RedirectAddress / POX redirectAddr), followed.
    settings.update_settings(|st| {
        st.autodiscover_redirect = Some(calpump_simulator::ews::state::AutodiscoverRedirect {
            mailbox: Some("svc-pump@contoso.com".into()),
            kind: calpump_simulator::ews::state::RedirectKind::Addr,
            target: "room-1.01@contoso.com".into(),
        });
    });
    let s = source_from(&toml_for(&base));
    let (url, how) = s.resolve_url(None).await.expect("redirected");
    assert_eq!(url.as_str(), ews_url);
    let how = how.expect("how");
    assert!(
        how.tried
            .iter()
            .any(|t| t.contains("redirect to address room-1.01@contoso.com")),
        "{:?}",
        how.tried
    );

    // A redirect loop is cut and reported.
    settings.update_settings(|st| {
        st.autodiscover_redirect = Some(calpump_simulator::ews::state::AutodiscoverRedirect {
            mailbox: None,
            kind: calpump_simulator::ews::state::RedirectKind::Addr,
            target: "svc-pump@contoso.com".into(),
        });
    });
    let s = source_from(&toml_for(&base));
    let err = s.resolve_url(None).await.expect_err("loop");
    assert_eq!(err.code(), "ews.AutodiscoverFailed");
    assert!(
        err.diagnostic.detail().contains("loop") || err.diagnostic.detail().contains("redirects"),
        "{}",
        err.diagnostic.detail()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn calendars_and_resolve_names() {
    let sim = sim(12).await;
    let source = source(&sim, "basic");
    let cals = source
        .calendars(&room("room-1.01@contoso.com"))
        .await
        .expect("calendars");
    assert_eq!(cals[0].path, "default");
    assert!(cals[0].item_count.unwrap_or(0) > 0);
    assert!(cals.iter().any(|c| c.path == "Maintenance"), "{cals:?}");
    let info = source
        .resolve_mailbox("Room-1.02@contoso.com")
        .await
        .expect("resolve");
    assert_eq!(info.address, "room-1.02@contoso.com");
    assert!(info.name.is_some());
    let err = source
        .resolve_mailbox("nobody-here@contoso.com")
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "ews.ErrorNonExistentMailbox");
    // Zones map the way the Graph backend maps them.
    let def = calpump_ews::ops::TimeZoneDef {
        id: Some("W. Europe Standard Time".into()),
        ..Default::default()
    };
    assert_eq!(map_zone(&def).as_deref(), Some("Europe/Berlin"));
    sim.shutdown().await;
}

/// Shifts every stored cursor's last full read into the past by `by` (as if it were that old).
fn age_cursors(sink: &mut Collector, by: chrono::Duration) {
    for c in sink.cursors.values_mut() {
        let mut state: CursorState = serde_json::from_str(&c.value).expect("an EWS cursor");
        state.last_full -= by;
        c.value = serde_json::to_string(&state).expect("cursor JSON");
    }
}

/// Per mailbox, how often the simulator answered `operation`.
fn per_mailbox(sim: &calpump_simulator::Simulator, operation: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in sim.control().stats().entries {
        if e.protocol == Protocol::Ews && e.operation == operation {
            *out.entry(e.mailbox.unwrap_or_default()).or_default() += e.count;
        }
    }
    out
}

/// The route's window moves at midnight: the next sync reads each calendar again although
/// `SyncFolderItems` reports no change — the occurrence of a daily series that slid into the
/// window arrives, the one that slid out of it is gone.
#[tokio::test]
async fn a_moved_window_reads_the_calendars_again() {
    let sim = sim(3).await;
    let win = window(&sim);
    let moved = Window {
        start: win.start + chrono::Duration::days(1),
        end: win.end + chrono::Duration::days(1),
    };
    let ews = Arc::new(source(&sim, "ntlm"));
    let source: Arc<dyn Source> = ews.clone();
    let rooms = vec![
        "room-1.01@contoso.com".to_string(),
        "room-1.02@contoso.com".to_string(),
    ];
    let c = sim.control();
    // A daily series from two days before the window to well past its end.
    let first = win.start - chrono::Duration::days(2) + chrono::Duration::hours(10);
    c.create_event(
        &rooms[0],
        &NewEvent {
            subject: "Daily across both edges".into(),
            start: Some(first),
            end: Some(first + chrono::Duration::minutes(30)),
            time_zone: Some("UTC".into()),
            recurrence: Some(RecurrenceSpec {
                pattern: Pattern::Daily { interval: 1 },
                range: RangeEnd::Numbered { count: 30 },
            }),
            ..NewEvent::default()
        },
    )
    .expect("create the series");
    let before = expected(&sim, &rooms[0], win);
    let after = expected(&sim, &rooms[0], moved);
    let slid_out: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let slid_in: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let ours = |t: &calpump_simulator::TruthInstance| {
        t.subject == "Daily across both edges" && t.original_start.is_some()
    };
    assert!(slid_out.iter().any(|k| ours(&before[*k])), "{slid_out:?}");
    assert!(slid_in.iter().any(|k| ours(&after[*k])), "{slid_in:?}");

    let mut sink = Collector::default();
    sink.sync_parallel(&source, &rooms, win, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
    }
    ews.take_outcomes();

    c.reset_stats();
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&source, &rooms, moved, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, moved);
    }
    let held = &sink.mailboxes[&rooms[0]];
    for k in &slid_in {
        assert!(held.contains_key(*k), "slid in: {}", after[*k].subject);
    }
    for k in &slid_out {
        assert!(!held.contains_key(*k), "slid out: {}", before[*k].subject);
    }
    // Read again because the window moved, not because something changed.
    let outcomes = ews.take_outcomes();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    for (mailbox, _, o) in &outcomes {
        assert!(o.full, "{mailbox}: {o:?}");
        assert_eq!(o.changes, 0, "{mailbox}: {o:?}");
    }
    let find_items = per_mailbox(&sim, "FindItem");
    let sync_folder_items = per_mailbox(&sim, "SyncFolderItems");
    for room in &rooms {
        assert!(
            find_items.get(room).copied().unwrap_or(0) > 0,
            "{find_items:?}"
        );
        assert!(
            sync_folder_items.get(room).copied().unwrap_or(0) > 0,
            "{sync_folder_items:?}"
        );
        assert_eq!(sink.batches_per_mailbox.get(room), Some(&1), "{room}");
        assert_eq!(sink.cursors[room].window, moved);
    }

    // The same window again: SyncFolderItems only.
    c.reset_stats();
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&source, &rooms, moved, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    assert!(sink.batches_per_mailbox.is_empty());
    assert_eq!(c.stats().operation(Protocol::Ews, "FindItem"), 0);
    sim.shutdown().await;
}

/// `reread_interval`: a calendar whose last full read is older than it is read in full again
/// although `SyncFolderItems` reports nothing — the safety net for a change the change
/// detector missed, made here behind SyncFolderItems' back (the simulator's change log does not
/// record it). Within the interval nothing but SyncFolderItems is asked.
#[tokio::test]
async fn a_full_read_older_than_reread_interval_is_repeated() {
    let sim = sim(3).await;
    let win = window(&sim);
    let rooms = vec![
        "room-1.01@contoso.com".to_string(),
        "room-1.02@contoso.com".to_string(),
    ];
    // The same server through a profile with the default interval (6h) and one with 1m.
    let default_src: Arc<dyn Source> = Arc::new(source(&sim, "ntlm"));
    let short = Arc::new(source_from(&format!(
        "{}\nreread_interval = \"1m\"",
        profile_toml(&sim, "ntlm")
    )));
    assert_eq!(
        short.settings().reread_interval,
        std::time::Duration::from_secs(60)
    );
    let short_src: Arc<dyn Source> = short.clone();

    let mut sink = Collector::default();
    sink.sync_parallel(&short_src, &rooms, win, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
    }

    // A change SyncFolderItems cannot see: the item is edited in place, no change logged.
    let c = sim.control();
    let truth = c
        .truth(&rooms[0], Some("Calendar"), win.start, win.end)
        .expect("truth");
    let single = truth
        .iter()
        .find(|t| t.original_start.is_none())
        .expect("a single event");
    let index = c.tenant().mailbox(&rooms[0]).expect("mailbox").index;
    let seq = c
        .tenant()
        .write(index, |s| {
            for item in s.items.values_mut() {
                if item.goid.hex() == single.goid {
                    item.data.subject = "Changed behind SyncFolderItems' back".into();
                }
            }
            s.seq
        })
        .expect("write");
    let now_seq = c.tenant().read(index, |s| s.seq).expect("read");
    assert_eq!(seq, now_seq, "no change logged");
    let has_new_subject = |sink: &Collector| {
        sink.mailboxes[&rooms[0]]
            .values()
            .any(|e| e.subject == "Changed behind SyncFolderItems' back")
    };

    // Two minutes after the last full read: within the default 6h, SyncFolderItems only, and
    // the sign keeps the old subject.
    age_cursors(&mut sink, chrono::Duration::minutes(2));
    c.reset_stats();
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&default_src, &rooms, win, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    let stats = c.stats();
    assert!(stats.operation(Protocol::Ews, "SyncFolderItems") >= 2);
    assert_eq!(stats.operation(Protocol::Ews, "FindItem"), 0);
    assert_eq!(stats.operation(Protocol::Ews, "GetItem"), 0);
    assert!(sink.batches_per_mailbox.is_empty());
    assert!(!has_new_subject(&sink), "nothing was read");

    // Past the profile's 1m: every calendar is read in full again and equals the truth.
    c.reset_stats();
    short.take_outcomes();
    sink.sync_parallel(&short_src, &rooms, win, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
        assert_eq!(sink.batches_per_mailbox.get(room), Some(&1), "{room}");
    }
    assert!(has_new_subject(&sink));
    let find_items = per_mailbox(&sim, "FindItem");
    for room in &rooms {
        assert!(
            find_items.get(room).copied().unwrap_or(0) > 0,
            "{find_items:?}"
        );
    }
    for (mailbox, _, o) in short.take_outcomes() {
        assert!(o.full && o.changes == 0, "{mailbox}: {o:?}");
    }

    // The default interval elapses too: a cursor whose last full read is 7h old.
    age_cursors(&mut sink, chrono::Duration::hours(7));
    c.reset_stats();
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&default_src, &rooms, win, 2).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    assert!(c.stats().operation(Protocol::Ews, "FindItem") >= 2);
    assert_eq!(sink.batches_per_mailbox.len(), 2);
    for room in &rooms {
        assert_equals_truth(&sim, &sink, room, win);
    }
    sim.shutdown().await;
}
