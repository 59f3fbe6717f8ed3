//! Throttling and faults against the simulator: the sync finishes (or fails with the catalogue's
//! diagnostic) and the collector equals the truth — nothing lost, nothing doubled.

mod common;

use std::sync::Arc;
use std::time::Duration;

use calpump_engine::source::Source;
use calpump_simulator::control::Protocol;
use calpump_simulator::{Fault, FaultRule};
use common::*;

const ROOMS: [&str; 3] = [
    "room-1.01@contoso.com",
    "room-1.02@contoso.com",
    "room-1.03@contoso.com",
];

fn rooms() -> Vec<String> {
    ROOMS.iter().map(|s| s.to_string()).collect()
}

/// Injects `rule`, runs a full sync of three rooms and checks the result against the truth.
async fn survives(
    rule: FaultRule,
    mode: &str,
) -> (Arc<calpump_ews::EwsSource>, calpump_simulator::Simulator) {
    let sim = sim(3).await;
    let win = window(&sim);
    let src = Arc::new(source(&sim, mode));
    sim.control().add_fault(rule);
    let dyn_src: Arc<dyn Source> = src.clone();
    let mut sink = Collector::default();
    sink.sync_parallel(&dyn_src, &rooms(), win, 3).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for r in ROOMS {
        assert_equals_truth(&sim, &sink, r, win);
    }
    (src, sim)
}

fn throttles(src: &calpump_ews::EwsSource) -> u64 {
    src.stats().snapshot().total().throttles
}

fn retries(src: &calpump_ews::EwsSource) -> u64 {
    src.stats().snapshot().total().retries
}

#[tokio::test]
async fn server_busy_as_soap_fault_is_waited_out() {
    let rule = FaultRule::new(Fault::EwsServerBusy {
        back_off_ms: 150,
        in_body: false,
    })
    .protocol(Protocol::Ews)
    .operation("FindItem")
    .count(2);
    let started = std::time::Instant::now();
    let (src, sim) = survives(rule, "ntlm").await;
    assert!(throttles(&src) >= 2, "{:?}", src.stats().snapshot());
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "BackOffMilliseconds honoured"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_busy_inside_a_200_body_is_waited_out() {
    let rule = FaultRule::new(Fault::EwsServerBusy {
        back_off_ms: 120,
        in_body: true,
    })
    .protocol(Protocol::Ews)
    .operation("GetItem")
    .count(2);
    let (src, sim) = survives(rule, "basic").await;
    assert!(throttles(&src) >= 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn exceeded_connection_count_lowers_concurrency() {
    let rule = FaultRule::new(Fault::EwsExceededConnectionCount)
        .protocol(Protocol::Ews)
        .operation("GetItem")
        .count(2);
    let (src, sim) = survives(rule, "basic").await;
    let limit = src.client().limits().global();
    assert!(
        limit.limit() < limit.cap(),
        "limit {} of cap {}",
        limit.limit(),
        limit.cap()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn status_503_and_500_are_retried() {
    let rule = FaultRule::new(Fault::Throttle {
        status: 503,
        retry_after: Some(1),
    })
    .protocol(Protocol::Ews)
    .operation("SyncFolderItems")
    .count(1);
    let (src, sim) = survives(rule, "basic").await;
    assert!(throttles(&src) >= 1);
    sim.control().add_fault(
        FaultRule::new(Fault::ServerError { status: 500 })
            .protocol(Protocol::Ews)
            .operation("FindItem")
            .count(2),
    );
    let win = window(&sim);
    let dyn_src: Arc<dyn Source> = src.clone();
    let mut sink = Collector::default();
    sink.sync_parallel(&dyn_src, &rooms(), win, 3).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for r in ROOMS {
        assert_equals_truth(&sim, &sink, r, win);
    }
    assert!(retries(&src) >= 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_and_truncated_answers_are_retried() {
    let rule = FaultRule::new(Fault::MalformedBody)
        .protocol(Protocol::Ews)
        .operation("GetItem")
        .count(1);
    let (src, sim) = survives(rule, "ntlm").await;
    sim.control().add_fault(
        FaultRule::new(Fault::TruncatedBody)
            .protocol(Protocol::Ews)
            .operation("FindItem")
            .count(2),
    );
    let win = window(&sim);
    let dyn_src: Arc<dyn Source> = src.clone();
    let mut sink = Collector::default();
    sink.sync_parallel(&dyn_src, &rooms(), win, 3).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    for r in ROOMS {
        assert_equals_truth(&sim, &sink, r, win);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn persistent_garbage_fails_with_a_diagnostic_naming_url_and_content() {
    let sim = sim(3).await;
    let win = window(&sim);
    let src: Arc<dyn Source> = Arc::new(source(&sim, "basic"));
    // One mailbox answers with an HTML sign-in page, another with truncated XML, every time.
    sim.control().add_fault(
        FaultRule::new(Fault::HtmlLoginPage)
            .protocol(Protocol::Ews)
            .mailbox(ROOMS[0])
            .operation("FindItem"),
    );
    sim.control().add_fault(
        FaultRule::new(Fault::TruncatedBody)
            .protocol(Protocol::Ews)
            .mailbox(ROOMS[1])
            .operation("GetItem"),
    );
    let mut sink = Collector::default();
    sink.sync_parallel(&src, &rooms(), win, 3).await;
    let html = sink.errors.get(ROOMS[0]).expect("html error");
    assert_eq!(html.code(), "http.HtmlInsteadOfApi");
    assert!(
        html.diagnostic.detail().contains("/EWS/Exchange.asmx"),
        "{}",
        html.diagnostic.detail()
    );
    let cut = sink.errors.get(ROOMS[1]).expect("truncated error");
    assert_eq!(cut.code(), "proto.Malformed");
    let detail = cut.diagnostic.detail();
    assert!(
        detail.contains("/EWS/Exchange.asmx")
            && (detail.contains("ends early") || detail.contains("well-formed")),
        "{detail}"
    );
    // The third mailbox is unaffected, and nothing half-read was delivered for the others.
    assert_equals_truth(&sim, &sink, ROOMS[2], win);
    assert!(!sink.mailboxes.contains_key(ROOMS[0]) && !sink.mailboxes.contains_key(ROOMS[1]));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_401_mid_run_from_an_expired_token_is_retried_with_a_new_token() {
    let sim = sim(3).await;
    // Tokens live 2 s on the server (whole seconds) while the client believes up to 2 s:
    // requests in the last fraction of each lifetime meet 401 and are retried once.
    sim.control().set_token_lifetime(2);
    let win = window(&sim);
    let src = Arc::new(source(&sim, "client_credentials"));
    let dyn_src: Arc<dyn Source> = src.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut saw_401 = false;
    let mut runs = 0;
    while std::time::Instant::now() < deadline {
        let mut sink = Collector::default();
        sink.sync_parallel(&dyn_src, &rooms(), win, 3).await;
        runs += 1;
        assert!(sink.errors.is_empty(), "run {runs}: {:?}", sink.errors);
        for r in ROOMS {
            assert_equals_truth(&sim, &sink, r, win);
        }
        // HttpClient counts every non-2xx answer as an error of its operation.
        let snap = src.stats().snapshot();
        if snap
            .operations
            .iter()
            .any(|o| o.operation != "token" && o.errors > 0)
        {
            saw_401 = true;
            break;
        }
    }
    assert!(saw_401, "no 401 met in {runs} runs");
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_sync_state_reads_in_full_and_loses_nothing() {
    let sim = sim(3).await;
    let win = window(&sim);
    let src: Arc<dyn Source> = Arc::new(source(&sim, "basic"));
    let mut sink = Collector::default();
    sink.sync_parallel(&src, &rooms(), win, 3).await;
    assert!(sink.errors.is_empty());
    sim.control().add_fault(
        FaultRule::new(Fault::EwsInvalidSyncState)
            .protocol(Protocol::Ews)
            .operation("SyncFolderItems")
            .mailbox(ROOMS[0])
            .count(1),
    );
    sink.batches_per_mailbox.clear();
    sink.sync_parallel(&src, &rooms(), win, 3).await;
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
    assert_eq!(
        sink.batches_per_mailbox.keys().collect::<Vec<_>>(),
        vec![ROOMS[0]]
    );
    for r in ROOMS {
        assert_equals_truth(&sim, &sink, r, win);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn impersonation_denied_and_unknown_mailbox_carry_their_diagnostics() {
    let sim = sim(3).await;
    let win = window(&sim);
    let toml_text =
        profile_toml(&sim, "basic").replace("svc-pump@contoso.com", "svc-noimp@contoso.com");
    let src: Arc<dyn Source> = Arc::new(source_from(&toml_text));
    let mut sink = Collector::default();
    sink.sync_parallel(&src, &rooms()[..1], win, 1).await;
    let e = sink.errors.get(ROOMS[0]).expect("denied");
    assert_eq!(e.code(), "ews.ErrorImpersonateUserDenied");
    assert!(!e.retryable);
    let good: Arc<dyn Source> = Arc::new(source(&sim, "basic"));
    let mut sink = Collector::default();
    sink.sync_parallel(&good, &["ghost-room@contoso.com".to_string()], win, 1)
        .await;
    assert_eq!(
        sink.errors
            .get("ghost-room@contoso.com")
            .expect("unknown")
            .code(),
        "ews.ErrorNonExistentMailbox"
    );
    // Wrong password: 401 naming the schemes offered.
    let bad = profile_toml(&sim, "ntlm").replace(PASSWORD, "wrong");
    let src: Arc<dyn Source> = Arc::new(source_from(&bad));
    let mut sink = Collector::default();
    sink.sync_parallel(&src, &rooms()[..1], win, 1).await;
    let e = sink.errors.get(ROOMS[0]).expect("401");
    assert_eq!(e.code(), "ews.Unauthorized");
    assert!(
        e.diagnostic.detail().contains("NTLM"),
        "{}",
        e.diagnostic.detail()
    );
    sim.shutdown().await;
}

/// The simulator's `ews_disabled` (Exchange Online's answer when EWS is switched off for the
/// tenant, the app or a mailbox: 403, no body): the blocked mailbox fails with `ews.EwsDisabled`
/// and is not retried, the others sync; `profile test` fails at the auth step; Autodiscover
/// answering only 403 is `ews.EwsDisabled` too, not "Autodiscover found nothing".
#[tokio::test]
async fn ews_switched_off_is_ews_disabled_everywhere() {
    let sim = sim(3).await;
    let win = window(&sim);
    let c = sim.control();
    // One mailbox blocked (Set-CASMailbox -EwsEnabled $false).
    c.add_fault(
        FaultRule::new(Fault::EwsDisabled)
            .protocol(Protocol::Ews)
            .mailbox(ROOMS[0]),
    );
    let src = Arc::new(source(&sim, "client_credentials"));
    let dyn_src: Arc<dyn Source> = src.clone();
    let mut sink = Collector::default();
    sink.sync_parallel(&dyn_src, &rooms(), win, 3).await;
    let e = sink.errors.get(ROOMS[0]).expect("blocked");
    assert_eq!(e.code(), "ews.EwsDisabled", "{e:?}");
    assert!(!e.retryable);
    assert!(
        e.diagnostic.detail().contains("403"),
        "{}",
        e.diagnostic.detail()
    );
    assert!(e.diagnostic.info().permission);
    assert_eq!(sink.errors.len(), 1, "{:?}", sink.errors);
    for r in &ROOMS[1..] {
        assert_equals_truth(&sim, &sink, r, win);
    }
    assert_eq!(retries(&src), 0, "a 403 is not retried");
    c.clear_faults();

    // The whole tenant: profile test fails at the auth step.
    c.add_fault(FaultRule::new(Fault::EwsDisabled).protocol(Protocol::Ews));
    let steps = source(&sim, "client_credentials")
        .probe(Some(ROOMS[0]))
        .await;
    let auth = steps.iter().find(|s| s.id == "auth").expect("auth step");
    match &auth.outcome {
        calpump_engine::source::StepOutcome::Failed { diagnostic } => {
            assert_eq!(diagnostic.code(), "ews.EwsDisabled")
        }
        other => panic!("{other:?}"),
    }
    c.clear_faults();

    // Autodiscover blocked as well: its step says EWS is off.
    c.add_fault(FaultRule::new(Fault::EwsDisabled).protocol(Protocol::Autodiscover));
    let text = format!(
        r#"autodiscover = "svc-pump@contoso.com"
           autodiscover_url = "{}"
           auth = {{ kind = "basic", username = "svc-pump@contoso.com", password = "{PASSWORD}" }}
           impersonation = true"#,
        sim.base_url()
    );
    let steps = source_from(&text).probe(Some(ROOMS[0])).await;
    let ad = steps
        .iter()
        .find(|s| s.id == "autodiscover")
        .expect("autodiscover step");
    match &ad.outcome {
        calpump_engine::source::StepOutcome::Failed { diagnostic } => {
            assert_eq!(diagnostic.code(), "ews.EwsDisabled");
            assert!(
                diagnostic.detail().contains("HTTP 403 Forbidden"),
                "{}",
                diagnostic.detail()
            );
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}
