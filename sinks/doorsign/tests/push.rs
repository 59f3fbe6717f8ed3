//! Pushes: MQTT against the machine's Mosquitto (127.0.0.1:1883; the test fails when it is not
//! running) and OpenEPaperLink against a fake access point served by the test.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::routing::post;
use calpump_plugin::{BatchKind, Sink};
use calpump_sink_doorsign::DoorSign;
use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const BROKER: (&str, u16) = ("127.0.0.1", 1883);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Subscribes to `filter` and collects every PUBLISH (topic, payload, retain flag).
async fn subscriber(
    filter: &str,
    name: &str,
) -> (AsyncClient, Arc<Mutex<Vec<(String, Vec<u8>, bool)>>>) {
    let mut options = MqttOptions::new(name, BROKER.0, BROKER.1);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 16);
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    sink.lock().expect("lock").push((
                        p.topic.clone(),
                        p.payload.to_vec(),
                        p.retain,
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(Err(e.to_string()));
                    }
                    return;
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(10), subscribed_rx).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!(
            "cannot subscribe on the MQTT broker at {}:{} (is Mosquitto running?): {other:?}",
            BROKER.0, BROKER.1
        ),
    }
    (client, received)
}

#[test]
fn mqtt_one_retained_message_per_changed_room_and_none_on_replay() {
    let rt = runtime();
    let prefix = format!(
        "calpump-test/{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    let (live, received) = rt.block_on(subscriber(
        &format!("{prefix}/#"),
        &format!("{}-live", std::process::id()),
    ));

    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(
        dir.path(),
        serde_json::json!({
            "mqtt": { "url": format!("mqtt://{}:{}", BROKER.0, BROKER.1), "topic": format!("{prefix}/{{room}}") },
            "push_retry": { "attempts": 3, "initial_ms": 200, "max_ms": 1000 }
        }),
    ))
    .expect("create");
    let rooms = ["room-a@contoso.com", "room-b@contoso.com"];
    let batches: Vec<_> = rooms
        .iter()
        .enumerate()
        .map(|(i, room)| {
            batch(
                room,
                Some(&format!("Room {i}")),
                BatchKind::Snapshot,
                vec![event(room, 1, "Standup", at(9, 0), at(10, 0))],
                vec![],
            )
        })
        .collect();
    for b in &batches {
        sink.write_batch(b.clone()).expect("write");
    }
    assert!(
        sink.wait_for_pushes(Duration::from_secs(20)),
        "pushes not delivered"
    );
    std::thread::sleep(Duration::from_millis(500));
    {
        let got = received.lock().expect("lock").clone();
        assert_eq!(
            got.len(),
            2,
            "one message per room: {:?}",
            got.iter().map(|m| &m.0).collect::<Vec<_>>()
        );
        for (room, id) in [
            (rooms[0], "room-a_at_contoso.com"),
            (rooms[1], "room-b_at_contoso.com"),
        ] {
            let (_, payload, _) = got
                .iter()
                .find(|m| m.0 == format!("{prefix}/{id}"))
                .expect("topic per room");
            let json: serde_json::Value = serde_json::from_slice(payload).expect("JSON payload");
            assert_eq!(json["room"], room);
            assert_eq!(json["status"], "busy");
            let file =
                std::fs::read(dir.path().join("rooms").join(format!("{id}.json"))).expect("file");
            assert_eq!(payload, &file, "the payload is the room's JSON file");
        }
    }

    // Replayed batches change nothing: no message.
    for b in &batches {
        sink.write_batch(b.clone()).expect("replay");
    }
    assert_eq!(
        sink.pending_pushes(),
        0,
        "nothing queued for an unchanged room"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        received.lock().expect("lock").len(),
        2,
        "a replay must not publish"
    );

    // A change in one room: exactly one more message, for that room.
    let moved = event(rooms[1], 1, "Standup (moved)", at(9, 0), at(10, 0));
    sink.write_batch(batch(rooms[1], None, BatchKind::Delta, vec![moved], vec![]))
        .expect("delta");
    assert!(sink.wait_for_pushes(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500));
    {
        let got = received.lock().expect("lock").clone();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].0, format!("{prefix}/room-b_at_contoso.com"));
    }

    // They are retained: a late subscriber gets the latest message of each room at once.
    let (late, late_received) = rt.block_on(subscriber(
        &format!("{prefix}/#"),
        &format!("{}-late", std::process::id()),
    ));
    std::thread::sleep(Duration::from_millis(1000));
    {
        let got = late_received.lock().expect("lock").clone();
        assert_eq!(got.len(), 2, "one retained message per room");
        assert!(got.iter().all(|m| m.2), "delivered with the retain flag");
        let b = got
            .iter()
            .find(|m| m.0.ends_with("room-b_at_contoso.com"))
            .expect("room b");
        assert!(String::from_utf8_lossy(&b.1).contains("Standup (moved)"));
    }

    // Clean the broker: an empty retained message deletes the retained one.
    rt.block_on(async {
        for id in ["room-a_at_contoso.com", "room-b_at_contoso.com"] {
            live.publish(
                format!("{prefix}/{id}"),
                QoS::AtLeastOnce,
                true,
                Vec::<u8>::new(),
            )
            .await
            .expect("clear");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = live.disconnect().await;
        let _ = late.disconnect().await;
    });
    drop(sink);
}

#[derive(Clone, Default)]
struct FakeAp {
    uploads: Arc<Mutex<Vec<Upload>>>,
    /// Answer this many upcoming requests with 500.
    fail_next: Arc<Mutex<u32>>,
    requests: Arc<Mutex<u32>>,
}

#[derive(Debug, Clone)]
struct Upload {
    mac: String,
    dither: Option<String>,
    file_name: Option<String>,
    content_type: Option<String>,
    jpeg: Vec<u8>,
    field_order: Vec<String>,
}

async fn imgupload(State(ap): State<FakeAp>, mut form: Multipart) -> (StatusCode, &'static str) {
    *ap.requests.lock().expect("lock") += 1;
    let mut upload = Upload {
        mac: String::new(),
        dither: None,
        file_name: None,
        content_type: None,
        jpeg: Vec::new(),
        field_order: Vec::new(),
    };
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        upload.field_order.push(name.clone());
        match name.as_str() {
            "mac" => upload.mac = field.text().await.unwrap_or_default(),
            "dither" => upload.dither = field.text().await.ok(),
            "file" => {
                upload.file_name = field.file_name().map(str::to_string);
                upload.content_type = field.content_type().map(str::to_string);
                upload.jpeg = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            }
            _ => {}
        }
    }
    {
        let mut fail = ap.fail_next.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "Come back later");
        }
    }
    if upload.mac.is_empty() || upload.jpeg.is_empty() {
        return (StatusCode::BAD_REQUEST, "parameters are missing");
    }
    ap.uploads.lock().expect("lock").push(upload);
    (StatusCode::OK, "Ok, saved")
}

fn start_fake_ap(rt: &tokio::runtime::Runtime) -> (SocketAddr, FakeAp) {
    let ap = FakeAp::default();
    let app = axum::Router::new()
        .route("/imgupload", post(imgupload))
        .with_state(ap.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, ap)
}

#[test]
fn openepaperlink_one_upload_per_changed_room_with_retries() {
    let rt = runtime();
    let (addr, ap) = start_fake_ap(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(
        dir.path(),
        serde_json::json!({
            "openepaperlink": {
                "url": format!("http://{addr}"),
                "tags": {
                    "room-a@contoso.com": "0000021EB5AC3B12",
                    "room-b@contoso.com": { "mac": "00000197e5cb3b38", "size": "400x300" }
                }
            },
            "push_retry": { "attempts": 4, "initial_ms": 100, "max_ms": 400 }
        }),
    ))
    .expect("create");
    let rooms = [
        "room-a@contoso.com",
        "room-b@contoso.com",
        "room-c@contoso.com",
    ];
    let batches: Vec<_> = rooms
        .iter()
        .map(|room| {
            batch(
                room,
                None,
                BatchKind::Snapshot,
                vec![event(room, 1, "Standup", at(9, 0), at(10, 0))],
                vec![],
            )
        })
        .collect();
    for b in &batches {
        sink.write_batch(b.clone()).expect("write");
    }
    assert!(sink.wait_for_pushes(Duration::from_secs(20)));
    {
        let uploads = ap.uploads.lock().expect("lock").clone();
        assert_eq!(uploads.len(), 2, "one per room with a tag; room-c has none");
        let a = uploads
            .iter()
            .find(|u| u.mac == "0000021EB5AC3B12")
            .expect("room a");
        let b = uploads
            .iter()
            .find(|u| u.mac == "00000197E5CB3B38")
            .expect("room b, MAC upper-cased");
        for u in [a, b] {
            assert_eq!(
                u.field_order.first().map(String::as_str),
                Some("mac"),
                "mac before the file"
            );
            assert_eq!(u.dither.as_deref(), Some("0"));
            assert_eq!(u.content_type.as_deref(), Some("image/jpeg"));
            assert!(u.file_name.as_deref().is_some_and(|n| n.ends_with(".jpg")));
            assert_eq!(&u.jpeg[..2], &[0xFF, 0xD8], "a JPEG");
            assert!(
                u.jpeg.windows(2).any(|w| w == [0xFF, 0xC0]),
                "baseline (SOF0), not progressive"
            );
            assert!(!u.jpeg.windows(2).any(|w| w == [0xFF, 0xC2]));
        }
        // Each tag gets its size: SOF0 carries height and width.
        let sof = b
            .jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("sof");
        let height = u16::from_be_bytes([b.jpeg[sof + 5], b.jpeg[sof + 6]]);
        let width = u16::from_be_bytes([b.jpeg[sof + 7], b.jpeg[sof + 8]]);
        assert_eq!((width, height), (400, 300));
    }

    // Replays: nothing uploaded.
    for b in &batches {
        sink.write_batch(b.clone()).expect("replay");
    }
    assert!(sink.wait_for_pushes(Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ap.uploads.lock().expect("lock").len(),
        2,
        "unchanged rooms are not uploaded"
    );

    // The AP is busy twice, then takes the upload: retried with back-off, delivered once.
    *ap.fail_next.lock().expect("lock") = 2;
    let requests_before = *ap.requests.lock().expect("lock");
    let moved = event(rooms[0], 1, "Standup (moved)", at(9, 0), at(10, 30));
    sink.write_batch(batch(rooms[0], None, BatchKind::Delta, vec![moved], vec![]))
        .expect("delta");
    assert!(sink.wait_for_pushes(Duration::from_secs(20)));
    assert_eq!(
        *ap.requests.lock().expect("lock") - requests_before,
        3,
        "two failures, one success"
    );
    let uploads = ap.uploads.lock().expect("lock").clone();
    assert_eq!(uploads.len(), 3);
    assert_eq!(uploads[2].mac, "0000021EB5AC3B12");
    drop(sink);
}

#[test]
fn an_unreachable_target_never_blocks_or_fails_the_files() {
    // A port nobody listens on, and a broker that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(
        dir.path(),
        serde_json::json!({
            "mqtt": { "url": format!("mqtt://127.0.0.1:{port}") },
            "openepaperlink": { "url": format!("http://127.0.0.1:{port}"), "tags": { "room-a@contoso.com": "0000021EB5AC3B12" } },
            "push_retry": { "attempts": 50, "initial_ms": 5000, "max_ms": 60000 }
        }),
    ))
    .expect("create");
    let room = "room-a@contoso.com";
    let started = Instant::now();
    let result = sink
        .write_batch(batch(
            room,
            None,
            BatchKind::Snapshot,
            vec![event(room, 1, "Standup", at(9, 0), at(10, 0))],
            vec![],
        ))
        .expect("the batch succeeds although every push fails");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "write_batch waited for the push"
    );
    assert_eq!(result.accepted.len(), 1);
    assert!(
        dir.path()
            .join("rooms/room-a_at_contoso.com.json")
            .is_file()
    );
    // Both pushes failed at once (connection refused) and wait for their retry.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        sink.pending_pushes(),
        2,
        "failed pushes are kept for a retry"
    );
    // Dropping the sink stops the push thread promptly, retries pending.
    let started = Instant::now();
    drop(sink);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
}

fn oepl_config(dir: &std::path::Path, addr: SocketAddr, attempts: u32) -> serde_json::Value {
    config(
        dir,
        serde_json::json!({
            "openepaperlink": {
                "url": format!("http://{addr}"),
                "tags": { "room-a@contoso.com": "0000021EB5AC3B12" }
            },
            "push_retry": { "attempts": attempts, "initial_ms": 50, "max_ms": 200 }
        }),
    )
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn a_push_is_retried_past_attempts_until_delivered_and_newer_content_supersedes() {
    let rt = runtime();
    let (addr, ap) = start_fake_ap(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    // Reported as failing after 2 attempts, but never given up.
    let sink = DoorSign::create(oepl_config(dir.path(), addr, 2)).expect("create");
    *ap.fail_next.lock().expect("lock") = 6;
    let room = "room-a@contoso.com";
    sink.write_batch(batch(
        room,
        None,
        BatchKind::Snapshot,
        vec![event(room, 1, "Standup", at(9, 0), at(10, 0))],
        vec![],
    ))
    .expect("write");
    assert!(
        sink.wait_for_pushes(Duration::from_secs(20)),
        "the push was dropped or is still pending"
    );
    assert_eq!(
        *ap.requests.lock().expect("lock"),
        7,
        "six failures, then delivered"
    );
    assert_eq!(ap.uploads.lock().expect("lock").len(), 1);

    // While the AP fails, the room changes twice: only the newest content is uploaded.
    *ap.fail_next.lock().expect("lock") = 3;
    for (n, subject) in [(2, "First change"), (3, "Second change")] {
        sink.write_batch(batch(
            room,
            None,
            BatchKind::Delta,
            vec![event(room, n, subject, at(11, 0), at(12, 0))],
            vec![],
        ))
        .expect("write");
        std::thread::sleep(Duration::from_millis(120));
    }
    assert!(sink.wait_for_pushes(Duration::from_secs(20)));
    let uploads = ap.uploads.lock().expect("lock").clone();
    assert_eq!(uploads.len(), 2, "one upload for the newest content");
    let ledger: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(".state/pushed.json")).expect("ledger"),
    )
    .expect("json");
    assert_eq!(
        ledger["pushed"]["openepaperlink"]["room-a_at_contoso.com"],
        room_json(dir.path(), "room-a_at_contoso.com")["content_hash"],
        "the ledger holds the hash of what the tag shows"
    );
    drop(sink);
}

#[test]
fn a_push_pending_at_shutdown_is_sent_after_a_restart_and_only_once() {
    let rt = runtime();
    let (addr, ap) = start_fake_ap(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = oepl_config(dir.path(), addr, 50);
    let room = "room-a@contoso.com";
    {
        let sink = DoorSign::create(cfg.clone()).expect("create");
        *ap.fail_next.lock().expect("lock") = 1_000;
        sink.write_batch(batch(
            room,
            None,
            BatchKind::Snapshot,
            vec![event(room, 1, "Standup", at(9, 0), at(10, 0))],
            vec![],
        ))
        .expect("write");
        assert!(wait_until(Duration::from_secs(10), || *ap
            .requests
            .lock()
            .expect("lock")
            >= 3));
        assert_eq!(sink.pending_pushes(), 1, "still owed");
    }
    assert!(ap.uploads.lock().expect("lock").is_empty());

    // The AP is back; the calendar did not change. The restarted sink owes the tag its image.
    *ap.fail_next.lock().expect("lock") = 0;
    {
        let sink = DoorSign::create(cfg.clone()).expect("restart");
        assert!(sink.wait_for_pushes(Duration::from_secs(20)));
        let uploads = ap.uploads.lock().expect("lock").clone();
        assert_eq!(uploads.len(), 1, "the owed push was sent after the restart");
        assert_eq!(uploads[0].mac, "0000021EB5AC3B12");
        // A tick with nothing new queues nothing more.
        sink.tick(calpump_plugin::Tick {
            schema_version: calpump_plugin::SCHEMA_VERSION,
            now: at(9, 30),
            mailboxes: vec![],
        })
        .expect("tick");
        assert_eq!(sink.pending_pushes(), 0);
    }
    // Delivered and recorded: another restart uploads nothing.
    {
        let sink = DoorSign::create(cfg).expect("restart");
        assert_eq!(sink.pending_pushes(), 0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        ap.uploads.lock().expect("lock").len(),
        1,
        "no duplicate upload"
    );
}

#[test]
fn two_doorsign_sinks_in_one_process_use_different_mqtt_client_ids_and_both_deliver() {
    let rt = runtime();
    let prefix = format!(
        "calpump-test/{}-{}-two",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    let (live, received) = rt.block_on(subscriber(
        &format!("{prefix}/#"),
        &format!("{}-two", std::process::id()),
    ));
    let sink = |dir: &std::path::Path, site: &str| {
        DoorSign::create(config(
            dir,
            serde_json::json!({
                "mqtt": { "url": format!("mqtt://{}:{}", BROKER.0, BROKER.1), "topic": format!("{prefix}/{site}/{{room}}") },
                "push_retry": { "attempts": 3, "initial_ms": 100, "max_ms": 500 }
            }),
        ))
        .expect("create")
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let (a, b) = (sink(dir_a.path(), "a"), sink(dir_b.path(), "b"));
    let (id_a, id_b) = (
        a.mqtt_client_id().expect("id").to_string(),
        b.mqtt_client_id().expect("id").to_string(),
    );
    assert_ne!(id_a, id_b, "the broker would disconnect one of them");
    // Both publish at the same time, several rounds: every room arrives from both.
    std::thread::scope(|scope| {
        for (sink, site) in [(&a, "a"), (&b, "b")] {
            scope.spawn(move || {
                for n in 0..5u32 {
                    let room = format!("room-{n}@contoso.com");
                    sink.write_batch(batch(
                        &room,
                        Some(&format!("Room {site}{n}")),
                        BatchKind::Snapshot,
                        vec![event(&room, 1, "Standup", at(9, 0), at(10, 0))],
                        vec![],
                    ))
                    .expect("write");
                }
            });
        }
    });
    assert!(a.wait_for_pushes(Duration::from_secs(20)));
    assert!(b.wait_for_pushes(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500));
    let topics: std::collections::BTreeSet<String> = received
        .lock()
        .expect("lock")
        .iter()
        .map(|m| m.0.clone())
        .collect();
    assert_eq!(topics.len(), 10, "{topics:?}");
    rt.block_on(async {
        for topic in &topics {
            live.publish(topic.clone(), QoS::AtLeastOnce, true, Vec::<u8>::new())
                .await
                .expect("clear");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = live.disconnect().await;
    });
}
