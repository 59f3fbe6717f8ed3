//! The real `calpump` binary with EWS profiles against the in-process simulator, into the
//! database sink (SQLite), rows read back through the sink's reader and compared field by field
//! with the simulator's truth (mapped to the canonical model as `tests/parity.rs` maps it).
//!
//! - every auth mode (Basic, NTLM, OAuth client credentials with a secret and with a
//!   certificate, the password grant as a delegate) and Autodiscover, each a `calpump sync` of a
//!   few rooms, with the simulator's request log showing how each request authenticated;
//! - a route of 50 rooms (a room list, all calendars) equal to the truth; after adds, changes,
//!   a cancelled occurrence and deletes, an incremental sync leaves it equal again, having asked
//!   `SyncFolderItems` for every calendar and `FindItem`/`GetItem` only for the changed ones;
//! - injected faults (`ErrorServerBusy` as a SOAP fault and inside a 200, connection count,
//!   503, malformed XML, an HTML sign-in page, a 401 mid-run): each sync either finishes equal
//!   to the truth or fails with the catalogue's code in `--json` for the mailboxes it hit, the
//!   others equal to the truth and the failed ones untouched; with the fault gone the next sync
//!   makes everything equal — nothing lost, nothing doubled.

#[path = "common/binary.rs"]
mod binary;

use std::collections::BTreeSet;
use std::time::Duration;

use binary::*;
use calpump_simulator::{Fault, FaultRule, Protocol, SimConfig, catalogue};
use serde_json::json;

fn sim(rooms: u32, seed: u64) -> Env {
    Env::start(SimConfig {
        rooms,
        events_per_room: 16,
        users: 4,
        seed,
        ..SimConfig::default()
    })
}

/// The `[profiles.source]` body of an EWS profile in `mode` against the simulator.
fn profile(env: &Env, mode: &str) -> String {
    let url = q(&env.sim.ews_url());
    let authority = q(env.sim.authority());
    let pw = env.secret("account-password", catalogue::ACCOUNT_PASSWORD);
    let tenant = q(catalogue::TENANT_DOMAIN);
    match mode {
        "basic" => format!(
            "backend = \"ews\"\nurl = {url}\nauth = {{ kind = \"basic\", username = \"svc-pump@contoso.com\", password = {pw} }}\nimpersonation = true\n"
        ),
        "ntlm" => format!(
            "backend = \"ews\"\nurl = {url}\nauth = {{ kind = \"ntlm\", username = 'CONTOSO\\svc-pump', password = {pw} }}\nimpersonation = true\n"
        ),
        "secret" => format!(
            "backend = \"ews\"\nurl = {url}\nauth = {{ kind = \"oauth\", tenant = {tenant}, client_id = {id}, client_secret = {secret}, authority = {authority} }}\nprobe_mailbox = \"room-1.01@contoso.com\"\n",
            id = q(catalogue::EWS_APP_ID),
            secret = env.secret("ews-app-secret", catalogue::EWS_APP_SECRET),
        ),
        "certificate" => format!(
            "backend = \"ews\"\nurl = {url}\nauth = {{ kind = \"oauth\", tenant = {tenant}, client_id = {id}, certificate = {cert}, private_key = {key}, authority = {authority} }}\nprobe_mailbox = \"room-1.01@contoso.com\"\n",
            id = q(catalogue::EWS_APP_ID),
            cert = env.file("app-cert.pem", catalogue::GRAPH_APP_CERT_PEM),
            key = env.secret("app-key.pem", catalogue::GRAPH_APP_KEY_PEM),
        ),
        "password_grant" => format!(
            "backend = \"ews\"\nurl = {url}\nauth = {{ kind = \"oauth\", tenant = {tenant}, client_id = {id}, username = \"svc-pump@contoso.com\", password = {pw}, authority = {authority} }}\nimpersonation = false\n",
            id = q(catalogue::DELEGATED_APP_ID),
        ),
        "autodiscover" => format!(
            "backend = \"ews\"\nautodiscover = \"svc-pump@contoso.com\"\nautodiscover_url = {base}\nauth = {{ kind = \"ntlm\", username = 'CONTOSO\\svc-pump', password = {pw} }}\nimpersonation = true\n",
            base = q(env.sim.base_url()),
        ),
        other => panic!("unknown mode {other}"),
    }
}

/// One auth mode: `calpump check`, then a sync of three rooms (all calendars: room-1.01 has
/// "Maintenance") equal to the truth, and how the simulator saw the requests.
fn auth_mode(mode: &str) {
    let env = sim(5, 31);
    if mode == "certificate" {
        // The fixture certificate uploaded to the EWS app's registration.
        assert!(
            env.control()
                .update_app(catalogue::EWS_APP_ID, |a| a.certificate = true)
        );
    }
    let rooms: Vec<String> = ["room-1.01", "room-1.02", "room-1.05"]
        .iter()
        .map(|r| format!("{r}@contoso.com"))
        .collect();
    let dir = env.dir(mode, &profile(&env, mode), &mailboxes_route(&rooms, "all"));
    let check = dir.run(&["check"]);
    assert!(
        check.status.success(),
        "{mode}: check\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let log = calpump_simulator::ews::settings(env.control());
    log.clear_requests();
    let run = dir.sync_ok(mode);
    let n = assert_sink_equals_truth(mode, &env, &dir, &rooms, run.window(), true);
    assert!(n >= 30, "{mode}: only {n} events");
    assert_eq!(run.calendars(), 4, "{mode}: three defaults and Maintenance");

    let requests = log.requests();
    let reads: Vec<_> = requests
        .iter()
        .filter(|r| r.operation == "GetItem" || r.operation == "FindItem")
        .collect();
    assert!(!reads.is_empty(), "{mode}: no reads logged");
    for r in &reads {
        let (scheme, principal) = match mode {
            "basic" => ("basic", "svc-pump@contoso.com".to_string()),
            "ntlm" | "autodiscover" => ("ntlm", "svc-pump@contoso.com".to_string()),
            "secret" | "certificate" => ("bearer", format!("app:{}", catalogue::EWS_APP_ID)),
            _ => ("bearer", "svc-pump@contoso.com".to_string()),
        };
        assert_eq!(r.auth, scheme, "{mode}: {r:?}");
        assert_eq!(
            r.principal.to_lowercase(),
            principal.to_lowercase(),
            "{mode}: {r:?}"
        );
        if mode == "password_grant" {
            // Delegate access: no impersonation, no X-AnchorMailbox.
            assert_eq!(r.impersonated, None, "{mode}: {r:?}");
            assert_eq!(r.anchor_mailbox, None, "{mode}: {r:?}");
        } else {
            let imp = r.impersonated.clone().expect("impersonated");
            assert_eq!(
                r.anchor_mailbox.as_deref(),
                Some(imp.as_str()),
                "{mode}: X-AnchorMailbox with impersonation"
            );
        }
    }
    let stats = env.stats();
    let autodiscover: u64 = stats
        .entries
        .iter()
        .filter(|e| e.protocol == Protocol::Autodiscover)
        .map(|e| e.count)
        .sum();
    let tokens = stats.operation(Protocol::Token, "token");
    if mode == "autodiscover" {
        assert!(
            autodiscover >= 1,
            "Autodiscover was asked: {:?}",
            stats.by_operation
        );
    } else {
        assert_eq!(autodiscover, 0, "{mode}: a static url");
    }
    match mode {
        "secret" | "certificate" | "password_grant" => {
            assert!(tokens >= 1, "{mode}: {:?}", stats.by_operation)
        }
        _ => assert_eq!(tokens, 0, "{mode}: no token endpoint"),
    }

    // A change, and the same profile syncs it incrementally.
    let s = single(&env, &rooms[1], 0);
    env.control()
        .change_event(
            &rooms[1],
            &s.goid,
            None,
            &change(json!({"subject": format!("Changed under {mode}")})),
        )
        .expect("change");
    let run = dir.sync_ok(&format!("{mode}, incremental"));
    assert_sink_equals_truth(
        &format!("{mode}, incremental"),
        &env,
        &dir,
        &rooms,
        run.window(),
        true,
    );
    eprintln!(
        "{mode}: {n} events equal to the truth; sync took {:?}",
        run.took
    );
    env.shutdown();
}

#[test]
fn basic_auth_syncs_rooms_equal_to_the_truth() {
    auth_mode("basic");
}

#[test]
fn ntlm_syncs_rooms_equal_to_the_truth() {
    auth_mode("ntlm");
}

#[test]
fn oauth_client_secret_syncs_rooms_equal_to_the_truth() {
    auth_mode("secret");
}

#[test]
fn oauth_certificate_syncs_rooms_equal_to_the_truth() {
    auth_mode("certificate");
}

#[test]
fn oauth_password_grant_syncs_rooms_as_a_delegate() {
    auth_mode("password_grant");
}

#[test]
fn autodiscover_finds_the_url_and_syncs_rooms() {
    auth_mode("autodiscover");
}

/// A route of 50 rooms (room list "Building 1", all calendars) equal to the truth; changes;
/// an incremental sync equal again that re-read only the changed calendars; a sync without
/// changes that reads nothing and writes nothing.
#[test]
fn route_of_50_rooms_then_incremental_after_changes() {
    let env = sim(50, 41);
    let rooms = rooms(1, 50);
    let dir = env.dir(
        "fifty",
        &profile(&env, "ntlm"),
        "room_lists = [\"building-1@contoso.com\"]\ncalendars = \"all\"\nwindow = { past_days = 1, future_days = 14 }\nconcurrency = 16\n",
    );
    let run = dir.sync_ok("full sync");
    let window = run.window();
    assert_eq!(
        run.calendars(),
        55,
        "50 default calendars and 5 Maintenance"
    );
    let n = assert_sink_equals_truth("full sync", &env, &dir, &rooms, window, true);
    assert!(n > 50 * 10, "only {n} events");
    eprintln!("EWS full sync of 50 rooms: {n} events in {:?}", run.took);

    // Changes through the control API.
    let c = env.control();
    let at = env.sim.window().0 + chrono::Duration::days(3) + chrono::Duration::hours(9);
    // room-1.01 (has Maintenance): a single renamed in its default calendar only.
    let r01 = "room-1.01@contoso.com";
    let s = single(&env, r01, 0);
    c.change_event(
        r01,
        &s.goid,
        None,
        &change(json!({"subject": "Renamed in 1.01"})),
    )
    .expect("rename");
    // room-1.04: a new meeting with every field, and a new all-day event.
    let r04 = "room-1.04@contoso.com";
    c.create_event(
        r04,
        &new_event(json!({
            "subject": "Added: Budget <Q3> & more", "location": "Room 1.04 — window side",
            "start": at, "end": at + chrono::Duration::minutes(45),
            "time_zone": "W. Europe Standard Time", "sensitivity": "private", "show_as": "tentative",
            "categories": ["Red category"], "online": true,
            "organizer": {"name": "Zoë Ärger", "address": "zoe.aerger@contoso.com"},
            "attendees": [
                {"name": "Ann", "address": "ann@contoso.com", "type": "required", "response": "accepted"},
                {"name": "Bob", "address": "bob@contoso.com", "type": "optional", "response": "declined"}
            ]
        })),
    )
    .expect("create");
    c.create_event(
        r04,
        &new_event(json!({
            "subject": "Added all-day", "is_all_day": true, "time_zone": "Europe/Berlin",
            "start": at - chrono::Duration::hours(9), "end": at + chrono::Duration::hours(15),
        })),
    )
    .expect("create all-day");
    // room-1.08: a meeting changed in most fields.
    let r08 = "room-1.08@contoso.com";
    let s = single(&env, r08, 1);
    c.change_event(
        r08,
        &s.goid,
        None,
        &change(json!({
            "subject": "Changed in 1.08", "location": "Elsewhere", "categories": ["Blue category"],
            "show_as": "oof", "sensitivity": "confidential",
            "start": s.start + chrono::Duration::minutes(30), "end": s.end + chrono::Duration::minutes(60),
            "attendees": [{"name": "Carla", "address": "carla@contoso.com", "type": "required", "response": "tentativelyAccepted"}]
        })),
    )
    .expect("change");
    // room-1.12: one occurrence of a series cancelled.
    let r12 = "room-1.12@contoso.com";
    let o = occurrence(&env, r12);
    c.cancel_occurrence(r12, &o.goid, o.original_start.expect("original start"))
        .expect("cancel occurrence");
    // room-1.19: a single deleted; room-1.23: a whole series deleted.
    let r19 = "room-1.19@contoso.com";
    let gone = single(&env, r19, 0);
    c.delete_event(r19, &gone.goid).expect("delete");
    let gone_key = (
        r19.to_string(),
        calpump_plugin::EventKey::derive(
            r19,
            &calpump_plugin::GlobalObjectId::from_hex(&gone.goid).expect("goid"),
            None,
        )
        .expect("key")
        .as_str()
        .to_string(),
    );
    let r23 = "room-1.23@contoso.com";
    let series = occurrence(&env, r23);
    c.delete_event(r23, &series.goid).expect("delete series");
    // room-1.21 (has Maintenance): a new event in Maintenance only.
    let r21 = "room-1.21@contoso.com";
    c.create_event(
        r21,
        &new_event(json!({
            "subject": "Filter change", "calendar": "Maintenance",
            "start": at + chrono::Duration::days(1), "end": at + chrono::Duration::days(1) + chrono::Duration::hours(2),
        })),
    )
    .expect("create in Maintenance");
    let changed: BTreeSet<String> = [r01, r04, r08, r12, r19, r21, r23]
        .iter()
        .map(|s| s.to_string())
        .collect();

    c.reset_stats();
    let run = dir.sync_ok("incremental sync");
    assert_sink_equals_truth("incremental sync", &env, &dir, &rooms, window, true);
    let stats = env.stats();
    let sfi = stats.operation(Protocol::Ews, "SyncFolderItems");
    assert!(
        sfi >= run.calendars(),
        "SyncFolderItems for every calendar: {sfi} for {} calendars",
        run.calendars()
    );
    assert_eq!(
        mailboxes_of(&stats, Protocol::Ews, "SyncFolderItems"),
        rooms.iter().cloned().collect::<BTreeSet<_>>(),
        "SyncFolderItems asked of every room"
    );
    assert_eq!(
        mailboxes_of(&stats, Protocol::Ews, "FindItem"),
        changed,
        "FindItem only for the changed calendars"
    );
    assert_eq!(
        mailboxes_of(&stats, Protocol::Ews, "GetItem"),
        changed,
        "GetItem only for the changed calendars"
    );
    // Of the two calendars of room-1.01 and room-1.21, only the changed one was re-read.
    for m in [r01, r21] {
        assert_eq!(
            count_for(&stats, Protocol::Ews, "FindItem", m),
            1,
            "{m}: one calendar re-read"
        );
    }
    let rows = dir.rows(&rooms);
    assert_eq!(
        rows.get(&gone_key).map(|(_, deleted)| *deleted),
        Some(true),
        "the deleted event is a soft-deleted row"
    );
    eprintln!(
        "EWS incremental sync of 50 rooms: {:?}, {} requests ({:?})",
        run.took, stats.total, stats.by_operation
    );

    // Nothing changed: no window read, no row rewritten.
    c.reset_stats();
    let before = dir.rows(&rooms);
    let run = dir.sync_ok("sync without changes");
    let stats = env.stats();
    assert_eq!(stats.operation(Protocol::Ews, "FindItem"), 0);
    assert_eq!(stats.operation(Protocol::Ews, "GetItem"), 0);
    assert!(stats.operation(Protocol::Ews, "SyncFolderItems") >= run.calendars());
    assert_eq!(
        dir.rows(&rooms),
        before,
        "a sync without changes writes nothing"
    );
    env.shutdown();
}

// ---- Faults ----

const FAULT_ROOMS: [&str; 3] = [
    "room-1.02@contoso.com",
    "room-1.03@contoso.com",
    "room-1.04@contoso.com",
];

fn fault_rooms() -> Vec<String> {
    FAULT_ROOMS.iter().map(|s| s.to_string()).collect()
}

/// One fault through a full and an incremental sync of the three rooms, then the recovery.
fn scenario(env: &Env, name: &str, mode: &str, rules: &[FaultRule], expect: Expect) -> Vec<Run> {
    let dir = env.dir(
        name,
        &profile(env, mode),
        &mailboxes_route(&fault_rooms(), "default"),
    );
    fault_scenario(
        env,
        &dir,
        name,
        &fault_rooms(),
        &["full", "incremental"],
        rules,
        expect,
    )
}

fn ews(fault: Fault) -> FaultRule {
    FaultRule::new(fault).protocol(Protocol::Ews)
}

#[test]
fn server_busy_in_both_forms_is_waited_out() {
    let env = sim(5, 43);
    let runs = scenario(
        &env,
        "busy-fault",
        "ntlm",
        &[
            ews(Fault::EwsServerBusy {
                back_off_ms: 400,
                in_body: false,
            })
            .operation("GetItem")
            .count(2),
            ews(Fault::EwsServerBusy {
                back_off_ms: 400,
                in_body: false,
            })
            .operation("SyncFolderItems")
            .count(1),
        ],
        Expect::Finishes,
    );
    assert!(
        runs[0].took >= Duration::from_millis(400),
        "BackOffMilliseconds honoured"
    );
    scenario(
        &env,
        "busy-in-body",
        "basic",
        &[ews(Fault::EwsServerBusy {
            back_off_ms: 300,
            in_body: true,
        })
        .operation("FindItem")
        .count(2)],
        Expect::Finishes,
    );
    env.shutdown();
}

#[test]
fn exceeded_connection_count_and_503_are_retried() {
    let env = sim(5, 44);
    scenario(
        &env,
        "connection-count",
        "ntlm",
        &[
            ews(Fault::EwsExceededConnectionCount)
                .operation("GetItem")
                .count(2),
            ews(Fault::EwsExceededConnectionCount)
                .operation("SyncFolderItems")
                .count(1),
        ],
        Expect::Finishes,
    );
    let runs = scenario(
        &env,
        "503-retry-after",
        "basic",
        &[ews(Fault::Throttle {
            status: 503,
            retry_after: Some(1),
        })
        .operation("FindItem")
        .count(1)],
        Expect::Finishes,
    );
    assert!(
        runs[0].took >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    scenario(
        &env,
        "503",
        "basic",
        &[ews(Fault::Throttle {
            status: 503,
            retry_after: None,
        })
        .operation("GetItem")
        .count(2)],
        Expect::Finishes,
    );
    env.shutdown();
}

#[test]
fn malformed_xml_and_html_pages() {
    let env = sim(5, 45);
    // Once: retried, the sync finishes.
    scenario(
        &env,
        "malformed-once",
        "ntlm",
        &[
            ews(Fault::MalformedBody).operation("GetItem").count(1),
            ews(Fault::TruncatedBody).operation("FindItem").count(1),
        ],
        Expect::Finishes,
    );
    // An HTML sign-in page once: a retry or a failure naming it.
    scenario(
        &env,
        "html-once",
        "basic",
        &[ews(Fault::HtmlLoginPage).operation("FindItem").count(1)],
        Expect::Either(&["http.HtmlInsteadOfApi"]),
    );
    // Every time, for one mailbox each: that mailbox fails with its diagnostic, the others
    // sync, and the failed one keeps what it had.
    let runs = scenario(
        &env,
        "garbage-always",
        "basic",
        &[
            ews(Fault::HtmlLoginPage)
                .mailbox(FAULT_ROOMS[0])
                .operation("FindItem"),
            ews(Fault::MalformedBody)
                .mailbox(FAULT_ROOMS[1])
                .operation("GetItem"),
        ],
        Expect::FailsWith(&["http.HtmlInsteadOfApi", "proto.Malformed"]),
    );
    for run in &runs[..2] {
        let errors = run.error_codes();
        assert!(
            errors.contains(&(FAULT_ROOMS[0].to_string(), "http.HtmlInsteadOfApi".into()))
                && errors.contains(&(FAULT_ROOMS[1].to_string(), "proto.Malformed".into())),
            "{errors:?}"
        );
        let detail = run.stdout.clone();
        assert!(
            detail.contains("/EWS/Exchange.asmx"),
            "the diagnostic names the URL:\n{}",
            run.show()
        );
    }
    // The text output (no --json) shows code, cause and remedy too.
    let c = env.control();
    c.add_fault(
        ews(Fault::HtmlLoginPage)
            .mailbox(FAULT_ROOMS[0])
            .operation("SyncFolderItems"),
    );
    let dir = Dir {
        path: env.tmp.path().join("garbage-always"),
    };
    let out = dir.run(&["sync"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("http.HtmlInsteadOfApi"), "{text}");
    c.clear_faults();
    env.shutdown();
}

/// Tokens that live 2 s on the server (whole seconds: between 1 and 2 s) while the client
/// believes 2 s (refreshing after 1.8 s), and 500 ms latency on every EWS request so a sync
/// lasts longer than a token: requests in the last fraction of a token's life meet 401, get a
/// new token and are sent once more. Every run ends equal to the truth.
#[test]
fn a_401_mid_run_gets_a_new_token() {
    let env = sim(5, 46);
    let c = env.control();
    c.set_token_lifetime(2);
    c.add_fault(ews(Fault::Latency { ms: 500 }));
    let rooms = fault_rooms();
    let dir = env.dir(
        "401",
        &profile(&env, "secret"),
        &mailboxes_route(&rooms, "default"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut runs = 0;
    let mut met = false;
    while std::time::Instant::now() < deadline && !met {
        change_every_room(&env, &rooms, runs);
        let run = dir.sync_with(&["--full"], &[("RUST_LOG", "info,calpump_ews=debug")]);
        runs += 1;
        assert!(
            run.ok() && run.error_codes().is_empty(),
            "run {runs}\n{}",
            run.show()
        );
        assert_sink_equals_truth(
            &format!("401 run {runs}"),
            &env,
            &dir,
            &rooms,
            run.window(),
            false,
        );
        met = run.stderr.contains("401 with a bearer token");
    }
    assert!(met, "no 401 met in {runs} runs");
    eprintln!(
        "401 mid-run met in run {runs}; tokens {}",
        env.stats().operation(Protocol::Token, "token")
    );
    c.clear_faults();
    c.set_token_lifetime(3599);
    env.shutdown();
}
