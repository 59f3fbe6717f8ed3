//! Discovery (room lists, rooms, users, calendars) with per-mailbox reasons, `profile test`
//! step by step, the password grant, and the factory's offline check — against the simulator's
//! catalogue of apps and accounts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{
    MailboxKind, ProbeStep, ProfileContext, Source, SourceFactory, StepOutcome,
};
use calpump_graph::GraphFactory;
use calpump_simulator::catalogue;
use common::{Collector, Cred, count, default_targets};

fn outcome(steps: &[ProbeStep], id: &str) -> StepOutcome {
    steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
        .outcome
        .clone()
}

fn code(o: &StepOutcome) -> Option<&str> {
    match o {
        StepOutcome::Failed { diagnostic } | StepOutcome::Warning { diagnostic, .. } => {
            Some(diagnostic.code())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_room_lists_users_and_calendars() {
    let env = common::start(120, Cred::Secret).await;
    let s = &env.source;
    let lists = s.room_lists().await.unwrap();
    assert_eq!(lists.len(), 3);
    assert_eq!(lists[0].address, "building-1@contoso.com");
    assert_eq!(lists[0].name.as_deref(), Some("Building 1"));

    let all = s.rooms(None).await.unwrap();
    assert!(all.len() >= 120, "{}", all.len());
    assert_eq!(count(s, "places.rooms"), 2, "100 per page: two pages");
    assert!(all.iter().all(|r| r.kind == MailboxKind::Room));
    let of_list = s.rooms(Some("building-3@contoso.com")).await.unwrap();
    assert_eq!(of_list.len(), 20);
    assert!(
        of_list
            .iter()
            .all(|r| r.room_list.as_deref() == Some("building-3@contoso.com"))
    );
    assert_eq!(of_list[0].address, "room-3.01@contoso.com");
    assert_eq!(of_list[0].name.as_deref(), Some("Room 3.01"));

    // Configured rooms resolve from the room directory (no user lookups), users by address.
    let room = s.resolve_mailbox("Room-2.07@Contoso.com").await.unwrap();
    assert_eq!(room.address, "room-2.07@contoso.com");
    assert_eq!(room.kind, MailboxKind::Room);
    assert_eq!(room.name.as_deref(), Some("Room 2.07"));
    for i in 1..=50 {
        s.resolve_mailbox(&common::room(1, i)).await.unwrap();
    }
    assert_eq!(count(s, "user"), 0);
    assert_eq!(count(s, "places.rooms"), 2, "the room directory is cached");
    // The app holds no directory permission: the user's calendar names its owner.
    let user = s.resolve_mailbox(catalogue::SVC_PUMP).await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Calendar Pump Service"));
    assert_eq!(user.kind, MailboxKind::Unknown);
    assert_eq!(count(s, "calendar"), 1);
    let missing = s.resolve_mailbox("nobody@contoso.com").await.unwrap_err();
    assert_eq!(missing.code(), "graph.NotFound");

    let calendars = s
        .calendars(&common::mailbox("room-1.01@contoso.com"))
        .await
        .unwrap();
    assert_eq!(calendars.len(), 2);
    assert_eq!(calendars[0].path, "default");
    assert!(calendars[0].is_default);
    assert_eq!(calendars[1].path, "Maintenance");
    assert!(!calendars[1].id.is_empty());
    let calendars = s
        .calendars(&common::mailbox("room-1.02@contoso.com"))
        .await
        .unwrap();
    assert_eq!(calendars.len(), 1);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_that_cannot_be_read_say_why() {
    let sim = common::simulator(60).await;
    let dir = tempfile::tempdir().unwrap();
    let scoped = common::source_for(
        &dir,
        &common::profile(
            &sim,
            &dir,
            Cred::Secret,
            catalogue::SCOPED_APP_ID,
            catalogue::SCOPED_APP_SECRET,
        ),
        "scoped",
    );
    // In scope (building 1) and out of scope (building 2).
    assert!(
        scoped
            .calendars(&common::mailbox("room-1.03@contoso.com"))
            .await
            .is_ok()
    );
    let out = scoped
        .calendars(&common::mailbox("room-2.03@contoso.com"))
        .await
        .unwrap_err();
    assert_eq!(out.code(), "graph.MailboxOutOfScope");
    assert!(
        out.diagnostic
            .detail()
            .contains("Access to OData is disabled"),
        "{}",
        out.diagnostic.detail()
    );
    // The sync of a chunk fails only the out-of-scope mailbox, with the same reason.
    let window = common::window(&sim);
    let targets = default_targets(&[
        "room-1.03@contoso.com".to_string(),
        "room-2.03@contoso.com".to_string(),
        catalogue::ONPREM_ROOM.to_string(),
        "nobody@contoso.com".to_string(),
    ]);
    let mut collector = Collector::default();
    assert_eq!(collector.sync(&scoped, &targets, window).await, 3);
    let reasons: Vec<(&str, &str)> = collector
        .errors
        .iter()
        .map(|(m, _, e)| (m.as_str(), e.code()))
        .collect();
    assert!(
        reasons.contains(&("room-2.03@contoso.com", "graph.MailboxOutOfScope")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("nobody@contoso.com", "graph.NotFound")),
        "{reasons:?}"
    );
    // The scoped app's policy hides the on-prem room too; the good app sees why it is unreadable.
    let good = common::source_for(
        &dir,
        &common::profile(
            &sim,
            &dir,
            Cred::Secret,
            catalogue::GRAPH_APP_ID,
            catalogue::GRAPH_APP_SECRET,
        ),
        "good",
    );
    let onprem = good
        .calendars(&common::mailbox(catalogue::ONPREM_ROOM))
        .await
        .unwrap_err();
    assert_eq!(onprem.code(), "graph.MailboxNotEnabledForRESTAPI");
    assert!(!onprem.retryable);
    assert!(!collector.of("room-1.03@contoso.com").is_empty());

    // An app without roles: rooms cannot be listed.
    let no_roles = common::source_for(
        &dir,
        &common::profile(
            &sim,
            &dir,
            Cred::Secret,
            catalogue::NO_ROLES_APP_ID,
            catalogue::NO_ROLES_APP_SECRET,
        ),
        "no-roles",
    );
    assert_eq!(
        no_roles.rooms(None).await.unwrap_err().code(),
        "graph.ErrorAccessDenied"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_test_runs_step_by_step() {
    let sim = common::simulator(60).await;
    let dir = tempfile::tempdir().unwrap();
    let source = |client: &str, secret: &str, extra: &[(&str, toml::Value)]| {
        let mut t = common::profile(&sim, &dir, Cred::Secret, client, secret);
        for (k, v) in extra {
            t.insert((*k).to_string(), v.clone());
        }
        common::source_for(&dir, &t, client)
    };

    // Everything right.
    let good = source(catalogue::GRAPH_APP_ID, catalogue::GRAPH_APP_SECRET, &[]);
    let steps = good.probe(Some("room-1.01@contoso.com")).await;
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "config",
            "dns-tls",
            "token",
            "first-call",
            "mailbox-access",
            "permissions"
        ]
    );
    for s in &steps {
        assert!(
            matches!(s.outcome, StepOutcome::Passed { .. }),
            "{}: {:?}",
            s.id,
            s.outcome
        );
    }
    let StepOutcome::Passed { detail } = outcome(&steps, "token") else {
        unreachable!()
    };
    assert!(
        detail.contains("Calendars.Read") && detail.contains("Place.Read.All"),
        "{detail}"
    );

    // No probe mailbox: that step is skipped, the rest runs.
    let steps = good.probe(None).await;
    // The reason names `profile test`'s real flag, `--probe`.
    match outcome(&steps, "mailbox-access") {
        StepOutcome::Skipped { reason } => assert!(
            reason.contains("calpump profile test NAME --probe ADDRESS")
                && !reason.contains("--mailbox"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        outcome(&steps, "permissions"),
        StepOutcome::Passed { .. }
    ));

    // Consent missing: Entra issues a token without roles; the token step fails, later steps
    // are skipped — and a sync fails with the same diagnostic.
    let no_consent = source(
        catalogue::NO_CONSENT_APP_ID,
        catalogue::NO_CONSENT_APP_SECRET,
        &[],
    );
    let steps = no_consent.probe(Some("room-1.01@contoso.com")).await;
    assert_eq!(
        code(&outcome(&steps, "token")),
        Some("graph.NoPermissionsInToken")
    );
    let mut collector = Collector::default();
    let targets = default_targets(&["room-1.01@contoso.com".to_string()]);
    assert_eq!(
        collector
            .sync(&no_consent, &targets, common::window(&sim))
            .await,
        1
    );
    assert_eq!(collector.errors[0].2.code(), "graph.NoPermissionsInToken");
    for id in ["first-call", "mailbox-access", "permissions"] {
        assert!(
            matches!(outcome(&steps, id), StepOutcome::Skipped { .. }),
            "{id}"
        );
    }
    // The secret's ID pasted instead of its value.
    let steps = source(catalogue::GRAPH_APP_ID, catalogue::GRAPH_APP_SECRET_ID, &[])
        .probe(None)
        .await;
    assert_eq!(code(&outcome(&steps, "token")), Some("entra.AADSTS7000215"));
    // Expired secret.
    let steps = source(
        catalogue::EXPIRED_SECRET_APP_ID,
        catalogue::EXPIRED_SECRET_APP_SECRET,
        &[],
    )
    .probe(None)
    .await;
    assert_eq!(code(&outcome(&steps, "token")), Some("entra.AADSTS7000222"));
    // No roles: the token is issued, the first call is refused.
    let steps = source(
        catalogue::NO_ROLES_APP_ID,
        catalogue::NO_ROLES_APP_SECRET,
        &[],
    )
    .probe(None)
    .await;
    assert!(matches!(
        outcome(&steps, "token"),
        StepOutcome::Passed { .. }
    ));
    assert_eq!(
        code(&outcome(&steps, "first-call")),
        Some("graph.ErrorAccessDenied")
    );
    // Scoped app, probe mailbox outside its scope.
    let steps = source(catalogue::SCOPED_APP_ID, catalogue::SCOPED_APP_SECRET, &[])
        .probe(Some("room-2.01@contoso.com"))
        .await;
    assert_eq!(
        code(&outcome(&steps, "mailbox-access")),
        Some("graph.MailboxOutOfScope")
    );
    assert!(matches!(
        outcome(&steps, "permissions"),
        StepOutcome::Skipped { .. }
    ));
    // A secret that expires in ten days: a warning, the rest passes; `probe_mailbox` from the profile.
    let soon = (chrono::Utc::now() + chrono::Duration::days(10))
        .date_naive()
        .to_string();
    let steps = source(
        catalogue::GRAPH_APP_ID,
        catalogue::GRAPH_APP_SECRET,
        &[
            ("secret_expires", soon.into()),
            ("probe_mailbox", "room-1.04@contoso.com".into()),
        ],
    )
    .probe(None)
    .await;
    assert_eq!(code(&outcome(&steps, "config")), Some("secret.ExpiresSoon"));
    assert!(matches!(
        outcome(&steps, "mailbox-access"),
        StepOutcome::Passed { .. }
    ));
    // An unreachable Graph host.
    let steps = source(
        catalogue::GRAPH_APP_ID,
        catalogue::GRAPH_APP_SECRET,
        &[("graph_url", "http://127.0.0.1:9/v1.0".into())],
    )
    .probe(None)
    .await;
    assert_eq!(code(&outcome(&steps, "dns-tls")), Some("net.Connect"));
    assert!(matches!(
        outcome(&steps, "token"),
        StepOutcome::Skipped { .. }
    ));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_grant_reads_with_delegated_scopes() {
    let sim = common::simulator(4).await;
    let dir = tempfile::tempdir().unwrap();
    let mut t = common::profile(&sim, &dir, Cred::Secret, catalogue::DELEGATED_APP_ID, "");
    t.remove("client_secret");
    t.insert("username".into(), catalogue::SVC_PUMP.into());
    t.insert("password".into(), catalogue::ACCOUNT_PASSWORD.into());
    let source = common::source_for(&dir, &t, "delegated");
    let steps = source.probe(Some("room-1.01@contoso.com")).await;
    for s in &steps {
        assert!(
            matches!(s.outcome, StepOutcome::Passed { .. }),
            "{}: {:?}",
            s.id,
            s.outcome
        );
    }
    let rooms = common::rooms(4);
    let targets = default_targets(&rooms);
    let window = common::window(&sim);
    let mut collector = Collector::default();
    assert_eq!(
        collector.sync(&source, &targets, window).await,
        0,
        "{:?}",
        collector.errors
    );
    common::assert_equal_to_truth(&sim, &collector, &targets, window);

    // MFA blocks the password grant.
    let mut t = t.clone();
    t.insert("username".into(), catalogue::MFA_USER.into());
    let steps = common::source_for(&dir, &t, "mfa").probe(None).await;
    assert_eq!(code(&outcome(&steps, "token")), Some("entra.AADSTS50076"));
    sim.shutdown().await;
}

#[test]
fn the_factory_checks_profiles_offline() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretResolver::new(dir.path().join("calpump.key"));
    let check = |text: &str| {
        let settings: toml::Table = text.parse().unwrap();
        GraphFactory.check(&ProfileContext {
            name: "cloud",
            settings: &settings,
            secrets: &secrets,
        })
    };
    assert_eq!(GraphFactory.backend(), "graph");
    let ok = check(
        "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = { env = \"PATH\" }\n",
    );
    assert!(ok.iter().all(|i| !i.is_error()), "{ok:?}");
    let bad = check(
        "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = { env = \"PATH\" }\ngraph_url = \"http://graph.example.com/v1.0\"\nurl = \"x\"\n",
    );
    let paths: Vec<&str> = bad
        .iter()
        .filter(|i| i.is_error())
        .map(|i| i.path.as_str())
        .collect();
    assert!(
        paths.contains(&"graph_url") && paths.contains(&"url"),
        "{bad:?}"
    );
    let none = check("tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\n");
    assert!(
        none.iter()
            .any(|i| i.path == "client_secret" && i.is_error()),
        "{none:?}"
    );
    // Building refuses an invalid profile with a diagnostic, not a panic.
    let settings: toml::Table = "tenant = 1\n".parse().unwrap();
    let err = GraphFactory
        .build(&ProfileContext {
            name: "cloud",
            settings: &settings,
            secrets: &secrets,
        })
        .err()
        .expect("refused");
    assert_eq!(err.code(), "general.Internal");
}

/// `calendars()` reports each calendar's item count from `…/calendars/{id}/events?$count=true
/// &$top=1` (one `$batch` for all of a mailbox's calendars): singles and series masters, a
/// series once — as EWS `TotalCount` counts — and the counts follow changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendars_report_item_counts() {
    let env = common::start(12, Cred::Secret).await;
    let room = "room-1.01@contoso.com";
    let items_per_calendar = || {
        let tenant = env.sim.tenant();
        let index = tenant.mailbox(room).unwrap().index;
        tenant
            .read(index, |s| {
                let n = |c: u16| s.items.values().filter(|i| i.calendar == c).count() as u64;
                (n(0), n(1))
            })
            .unwrap()
    };
    let (default_items, maintenance_items) = items_per_calendar();
    assert!(default_items > 10 && maintenance_items > 0);
    let batches = count(&env.source, "batch");
    let calendars = env.source.calendars(&common::mailbox(room)).await.unwrap();
    assert_eq!(calendars[0].path, "default");
    assert_eq!(
        calendars[0].item_count,
        Some(default_items),
        "{calendars:?}"
    );
    assert_eq!(calendars[1].path, "Maintenance");
    assert_eq!(
        calendars[1].item_count,
        Some(maintenance_items),
        "{calendars:?}"
    );
    assert_eq!(count(&env.source, "batched.events.count"), 2);
    assert_eq!(
        count(&env.source, "batch") - batches,
        1,
        "one $batch for both"
    );
    let stats = env.sim.control().stats();
    assert_eq!(
        stats.operation(calpump_simulator::Protocol::Graph, "events"),
        2
    );

    // A new weekly series counts once; a deleted single no longer counts.
    let c = env.sim.control();
    let (s, e) = env.sim.window();
    let start = s + chrono::Duration::days(2) + chrono::Duration::hours(9);
    let series: calpump_simulator::NewEvent = serde_json::from_value(serde_json::json!({
        "subject": "Counted once", "start": start, "end": start + chrono::Duration::hours(1),
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "numberOfOccurrences": 5}}
    }))
    .unwrap();
    c.create_event(room, &series).unwrap();
    let calendars = env.source.calendars(&common::mailbox(room)).await.unwrap();
    assert_eq!(calendars[0].item_count, Some(default_items + 1));
    let single = c
        .truth(room, None, s, e)
        .unwrap()
        .into_iter()
        .find(|t| t.original_start.is_none())
        .unwrap();
    c.delete_event(room, &single.goid).unwrap();
    let calendars = env.source.calendars(&common::mailbox(room)).await.unwrap();
    assert_eq!(calendars[0].item_count, Some(default_items));
    assert_eq!(items_per_calendar().0, default_items);
    env.sim.shutdown().await;
}

/// Two sub-calendars with the same display name ("Maintenance", and "Maintenance" inside a
/// sub-calendar "Archive") get two distinct paths by the rule shared with EWS
/// (backend-common `calendars`): the name plus a suffix derived from the folder id. Each keeps
/// its own cursor and events: a snapshot of one never removes the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_named_calendars_get_distinct_stable_paths_and_keep_their_events() {
    use calpump_backend_common::calendars;
    let env = common::start(2, Cred::Secret).await;
    let room = common::room(1, 1);
    let c = env.sim.control();
    c.create_calendar(&room, "Archive", None).unwrap();
    c.create_calendar(&room, "Maintenance", Some("Calendar/Archive"))
        .unwrap();
    let window = common::window(&env.sim);
    let at = window.start + chrono::Duration::days(2) + chrono::Duration::hours(9);
    for (calendar, subject) in [
        ("Calendar/Maintenance", "Boiler check"),
        ("Calendar/Archive/Maintenance", "Archived lamp check"),
    ] {
        let ev: calpump_simulator::NewEvent = serde_json::from_value(serde_json::json!({
            "subject": subject, "start": at, "end": at + chrono::Duration::minutes(30),
            "calendar": calendar
        }))
        .unwrap();
        c.create_event(&room, &ev).unwrap();
    }
    let listed = env.source.calendars(&common::mailbox(&room)).await.unwrap();
    let maintenance: Vec<_> = listed.iter().filter(|c| c.name == "Maintenance").collect();
    assert_eq!(maintenance.len(), 2, "{listed:?}");
    for cal in &maintenance {
        assert_ne!(
            cal.path, "Maintenance",
            "a duplicate name is never a path: {listed:?}"
        );
        let others: Vec<calendars::Listed<'_>> = maintenance
            .iter()
            .map(|c| calendars::Listed {
                name: Some(&c.name),
                id: &c.id,
            })
            .collect();
        assert!(
            calendars::paths(&others).contains(&cal.path),
            "the shared rule: {}",
            cal.path
        );
        assert!(cal.path.starts_with("Maintenance ("), "{}", cal.path);
    }
    assert_ne!(maintenance[0].path, maintenance[1].path);
    assert!(
        listed.iter().any(|c| c.path == "Archive"),
        "unique names stay plain"
    );
    // Listing again gives the same paths.
    let again = env.source.calendars(&common::mailbox(&room)).await.unwrap();
    assert_eq!(listed, again);

    // Which calendar holds which meeting: each read alone.
    let mut expected = std::collections::HashMap::new();
    for cal in &maintenance {
        let mut alone = Collector::default();
        let target = vec![(room.clone(), (*cal).clone())];
        assert_eq!(alone.sync(&env.source, &target, window).await, 0);
        let subjects: Vec<String> = alone
            .of(&room)
            .iter()
            .filter(|e| e.subject.contains("check"))
            .map(|e| e.subject.clone())
            .collect();
        assert_eq!(subjects.len(), 1, "{subjects:?}");
        expected.insert(subjects[0].clone(), cal.path.clone());
    }
    assert_eq!(expected.len(), 2);

    let targets: Vec<(String, calpump_engine::source::CalendarInfo)> =
        listed.iter().map(|c| (room.clone(), c.clone())).collect();
    let mut collector = Collector::default();
    // Full read, delta round, incremental: both calendars' meetings stay, each in its own.
    for _ in 0..3 {
        assert_eq!(
            collector.sync(&env.source, &targets, window).await,
            0,
            "{:?}",
            collector.errors
        );
        for (subject, path) in &expected {
            let e = collector
                .of(&room)
                .into_iter()
                .find(|e| &e.subject == subject)
                .unwrap_or_else(|| panic!("{subject} is kept"));
            assert_eq!(&e.calendar, path, "{subject}");
        }
    }
    assert_eq!(
        collector.cursors.keys().filter(|(m, _)| m == &room).count(),
        listed.len(),
        "one cursor per calendar"
    );
    env.sim.shutdown().await;
}
