use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::config::{CalendarSelection, RouteConfig, WindowConfig};
use crate::plugin_host::PluginRegistry;
use crate::runner::RetryPolicy;
use crate::source::SourceError;
use crate::state::SqliteStateStore;
use crate::testing::{MemorySource, MemoryStore, fixed_base, sink_table};

async fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn routes_sync_on_their_own_and_status_metrics_and_pages_show_it() {
    let source = Arc::new(MemorySource::generate("memory", 5, 2, 6, fixed_base()));
    source.set_mailbox_failure(
        "room-01@example.test",
        Some(SourceError::new(crate::diagnostics::Diagnostic::new(
            &crate::diagnostics::catalogue::ews::IMPERSONATE_USER_DENIED,
            "<b>denied</b>",
        ))),
    );
    let mut registry = PluginRegistry::new();
    registry.register_builtin(sink_table()).expect("register");
    let sink = registry
        .create_sink(
            "mem",
            "memory",
            serde_json::json!({ "store": "daemon-test" }),
            Duration::from_secs(10),
        )
        .await
        .expect("sink");
    let pages = tempfile::tempdir().expect("tmp");
    std::fs::write(pages.path().join("room.json"), "{\"free\":true}").expect("write");
    let route = RouteRuntime {
        config: RouteConfig {
            name: "rooms".into(),
            profile: "mem".into(),
            shadow_profile: None,
            mailboxes: vec!["room-00@example.test".into(), "room-01@example.test".into()],
            room_lists: vec![],
            calendars: CalendarSelection::Default,
            window: WindowConfig::default(),
            interval: Duration::from_secs(3600),
            sinks: vec!["mem".into()],
            concurrency: 2,
            empty_guard: true,
        },
        source,
        sinks: vec![sink.clone()],
    };
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let daemon = Daemon {
        routes: vec![route],
        sinks: vec![(sink, Some(pages.path().to_path_buf()))],
        state: state.clone(),
        options: RunOptions {
            retry: RetryPolicy {
                attempts: 1,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            ..RunOptions::default()
        },
        expiry: Some(Arc::new(|| {
            let today = Utc::now().date_naive();
            let soon = crate::diagnostics::Diagnostic::new(
                &crate::diagnostics::catalogue::general::SECRET_EXPIRES_SOON,
                "the client secret expires in 10 days",
            );
            let gone = crate::diagnostics::Diagnostic::new(
                &crate::diagnostics::catalogue::general::SECRET_EXPIRED,
                "the certificate expired 2 days ago",
            );
            vec![
                expiry::SecretExpiry {
                    profile: "mem".into(),
                    what: "the client secret (secret_expires)".into(),
                    expires: today + chrono::Duration::days(10),
                    days_left: 10,
                    diagnostic: Some(soon),
                },
                expiry::SecretExpiry {
                    profile: "old".into(),
                    what: "certificate CN=calpump".into(),
                    expires: today - chrono::Duration::days(2),
                    days_left: -2,
                    diagnostic: Some(gone),
                },
                expiry::SecretExpiry {
                    profile: "old".into(),
                    what: "the client secret (secret_expires)".into(),
                    expires: today + chrono::Duration::days(200),
                    days_left: 200,
                    diagnostic: None,
                },
            ]
        })),
    };
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = crate::shutdown::channel();
    let running = tokio::spawn(daemon.run(listener, shutdown));

    // Wait for the first run of the route.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let doc = loop {
        let (status, body) = get(addr, "/status?format=json", "*/*").await;
        assert_eq!(status, 200);
        let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
        if !doc["routes"][0]["last_run"].is_null() && !doc["routes"][0]["next_sync"].is_null() {
            break doc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no run recorded: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let route = &doc["routes"][0];
    assert_eq!(route["name"], "rooms");
    assert_eq!(route["last_run"]["status"], "partial");
    let mailboxes = route["mailboxes"].as_array().expect("mailboxes");
    assert_eq!(mailboxes.len(), 2);
    assert!(mailboxes[0]["last_success"].is_string());
    assert_eq!(
        mailboxes[1]["last_error"]["code"],
        "ews.ErrorImpersonateUserDenied"
    );
    assert!(
        mailboxes[1]["last_error"]["remedy"]
            .as_str()
            .is_some_and(|r| r.len() > 20)
    );
    assert!(!MemoryStore::named("daemon-test").content().is_empty());

    let secrets = doc["secrets"].as_array().expect("secrets");
    assert_eq!(secrets.len(), 3, "{doc}");
    assert_eq!(secrets[0]["profile"], "mem");
    assert_eq!(secrets[0]["days_left"], 10);
    assert_eq!(secrets[0]["status"], "expires_soon");
    assert_eq!(secrets[0]["code"], "secret.ExpiresSoon");
    assert_eq!(secrets[1]["status"], "expired");
    assert_eq!(secrets[1]["code"], "secret.Expired");
    assert_eq!(secrets[2]["status"], "ok");

    // A switch recorded after the run (as `calpump migrate switch` does while the daemon runs)
    // is an event: the last sync and its errors stay what they were.
    let last_run = route["last_run"].clone();
    crate::migrate::record_switch(
        state.as_ref(),
        "rooms",
        ("mem", "memory"),
        ("cloud", "graph"),
        false,
        Some("alice@pump"),
        &crate::migrate::MoveSummary::default(),
    )
    .await
    .expect("switch");
    let (_, body) = get(addr, "/status?format=json", "*/*").await;
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    let route = &doc["routes"][0];
    assert_eq!(route["last_run"], last_run, "{doc}");
    assert!(
        route["last_run"]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .all(|e| e["code"] != "sync.BackendSwitched"),
        "{doc}"
    );
    let events = route["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{doc}");
    assert_eq!(events[0]["kind"], "switch");
    assert_eq!(events[0]["code"], "sync.BackendSwitched");
    assert_eq!(events[0]["data"]["to_profile"], "cloud");
    let note = events[0]["note"].as_str().expect("note");
    assert!(
        note.contains("mem (memory) → cloud (graph) by alice@pump at "),
        "{note}"
    );

    let (_, html) = get(addr, "/status", "text/html").await;
    assert!(
        html.contains("<tr><th>switch</th>") && html.contains("→ cloud (graph) by alice@pump"),
        "{html}"
    );
    assert!(
        !html.contains("<td class=\"bad\"><b>sync.BackendSwitched"),
        "a switch is not shown as an error"
    );
    assert!(html.contains("Secrets and certificates") && html.contains("secret.Expired"));
    assert!(html.contains("ews.ErrorImpersonateUserDenied"));
    assert!(html.contains("&lt;b&gt;denied&lt;/b&gt;") && !html.contains("<b>denied"));

    let (status, metrics) = get(addr, "/metrics", "*/*").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("calpump_syncs_total{route=\"rooms\",status=\"partial\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("calpump_sync_duration_seconds_count{route=\"rooms\"}"));
    // The fewest days left per profile.
    assert!(
        metrics.contains("calpump_secret_expiry_days{profile=\"mem\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calpump_secret_expiry_days{profile=\"old\"} -2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "calpump_errors_total{code=\"ews.ErrorImpersonateUserDenied\",route=\"rooms\"}"
        )
    );
    assert!(
        metrics.contains("calpump_events_total{outcome=\"upsert\",route=\"rooms\",sink=\"mem\"}")
    );

    let (status, body) = get(addr, "/sinks/mem/room.json", "*/*").await;
    assert_eq!((status, body.as_str()), (200, "{\"free\":true}"));
    let (status, _) = get(addr, "/sinks/nope/room.json", "*/*").await;
    assert_eq!(status, 404);
    let (_, index) = get(addr, "/", "text/html").await;
    assert!(index.contains("/sinks/mem/"));

    trigger.trigger();
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops in time")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
}

/// A sink whose first `tick` hangs longer than the call timeout.
mod hanging {
    use std::time::Duration;

    use calpump_plugin::{Batch, Sink, SinkError, SinkResult, Tick, TickResult};

    pub struct Hanging;

    impl Sink for Hanging {
        const NAME: &'static str = "hanging";
        const VERSION: &'static str = "0.1.0";
        const CONFIG_SCHEMA: &'static str = r#"{"type":"object"}"#;

        fn check(_config: &serde_json::Value) -> Result<Vec<String>, SinkError> {
            Ok(Vec::new())
        }
        fn create(_config: serde_json::Value) -> Result<Self, SinkError> {
            Ok(Hanging)
        }
        fn write_batch(&self, batch: Batch) -> Result<SinkResult, SinkError> {
            Ok(SinkResult::all_accepted(&batch))
        }
        fn flush(&self) -> Result<(), SinkError> {
            Ok(())
        }
        fn tick(&self, _tick: Tick) -> Result<TickResult, SinkError> {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(TickResult::default())
        }
    }

    calpump_plugin::sink_table!(Hanging);
}

#[tokio::test]
async fn status_shows_a_sink_whose_call_outlived_its_timeout() {
    let mut registry = PluginRegistry::new();
    registry
        .register_builtin(hanging::sink_table())
        .expect("register");
    let sink = registry
        .create_sink(
            "hangs",
            "hanging",
            serde_json::json!({}),
            Duration::from_millis(200),
        )
        .await
        .expect("sink");
    let state: Arc<dyn StateStore> = Arc::new(SqliteStateStore::in_memory().await.expect("state"));
    let daemon = Daemon {
        routes: vec![],
        sinks: vec![(sink.clone(), None)],
        state,
        options: RunOptions::default(),
        expiry: None,
    };
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = crate::shutdown::channel();
    let running = tokio::spawn(daemon.run(listener, shutdown));

    // The first tick goes out at start and hangs past its 200 ms timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let doc = loop {
        let (_, body) = get(addr, "/status?format=json", "*/*").await;
        let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
        if !doc["sinks"][0]["stuck"].is_null() {
            break doc;
        }
        assert!(tokio::time::Instant::now() < deadline, "never stuck: {doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stuck = &doc["sinks"][0]["stuck"];
    assert_eq!(stuck["call"], "tick", "{doc}");
    assert_eq!(stuck["calls"], 1);
    assert!(stuck["since"].is_string());
    let (_, html) = get(addr, "/status", "text/html").await;
    assert!(html.contains("stuck: its tick call"), "{html}");

    // Once it returns, the sink takes calls again and the status says so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = get(addr, "/status?format=json", "*/*").await;
        let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
        if doc["sinks"][0]["stuck"].is_null() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still stuck: {doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.stuck().is_none());
    trigger.trigger();
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops in time")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
}
