//! The control API over HTTP (`/_sim/`) and in Rust agree, and start-up of a large tenant is cheap.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use calpump_simulator::{Fault, FaultRule, Protocol, RequestInfo, SimConfig, Simulator};
use serde_json::{Value, json};

fn cfg() -> SimConfig {
    SimConfig {
        rooms: 12,
        events_per_room: 24,
        users: 10,
        seed: 11,
        anchor: "2025-06-02T00:00:00Z".parse().ok(),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn control_api_over_http_changes_events_and_reports_truth() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let http = reqwest::Client::new();
    let base = sim.base_url().to_string();
    let room = "room-1.03@contoso.com";

    let health: Value = http
        .get(format!("{base}/_sim/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["ok"], true);
    assert_eq!(health["anchor"], "2025-06-02T00:00:00Z");

    let truth: Value = http
        .get(format!("{base}/_sim/truth?mailbox={room}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n0 = truth["instances"].as_array().map(Vec::len).unwrap_or(0);
    assert!(n0 >= 24, "{n0}");

    let created: Value = http
        .post(format!("{base}/_sim/events"))
        .json(&json!({
            "mailbox": room, "subject": "Board meeting & <b>lunch</b>",
            "start": "2025-06-03T09:00:00Z", "end": "2025-06-03T10:00:00Z",
            "time_zone": "Tokyo Standard Time", "sensitivity": "private", "online": true,
            "recurrence": { "pattern": { "type": "daily", "interval": 1 }, "range": { "type": "numbered", "numberOfOccurrences": 3 } }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let goid = created["goid"].as_str().unwrap().to_string();
    assert!(goid.starts_with("040000008200E00074C5B7101A82E008"));

    let r = http
        .post(format!("{base}/_sim/events/cancel_occurrence"))
        .json(&json!({ "mailbox": room, "goid": goid, "original_start": "2025-06-04T09:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("{base}/_sim/events/change"))
        .json(&json!({ "mailbox": room, "goid": goid, "occurrence": "2025-06-05T09:00:00Z", "change": { "location": "Elsewhere", "start": "2025-06-05T11:00:00Z" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let bad = http
        .post(format!("{base}/_sim/events/cancel_occurrence"))
        .json(&json!({ "mailbox": room, "goid": goid, "original_start": "2025-06-09T09:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 404);

    let truth: Value = http
        .get(format!(
            "{base}/_sim/truth?mailbox={room}&start=2025-06-01T00:00:00Z&end=2025-06-10T00:00:00Z"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine: Vec<&Value> = truth["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["goid"] == goid.as_str())
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0]["kind"], "occurrence");
    assert_eq!(mine[0]["subject"], "Board meeting & <b>lunch</b>");
    assert_eq!(mine[0]["time_zone_iana"], "Asia/Tokyo");
    assert_eq!(mine[0]["sensitivity"], "private");
    assert_eq!(mine[1]["kind"], "exception");
    assert_eq!(mine[1]["original_start"], "2025-06-05T09:00:00Z");
    assert_eq!(mine[1]["start"], "2025-06-05T11:00:00Z");
    assert_eq!(mine[1]["location"], "Elsewhere");

    // Rust API sees the same.
    let rust = sim
        .control()
        .truth(
            room,
            None,
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-10T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(rust.iter().filter(|i| i.goid == goid).count(), 2);

    let r = http
        .post(format!("{base}/_sim/events/delete"))
        .json(&json!({ "mailbox": room, "goid": goid }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        sim.control()
            .truth(
                room,
                None,
                "2025-06-01T00:00:00Z".parse().unwrap(),
                "2025-06-10T00:00:00Z".parse().unwrap()
            )
            .unwrap()
            .iter()
            .all(|i| i.goid != goid)
    );

    let r = http
        .get(format!("{base}/_sim/truth?mailbox=nobody@contoso.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_stats_and_limits_work_through_http_and_rust() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let http = reqwest::Client::new();
    let base = sim.base_url().to_string();
    let r: Value = http
        .post(format!("{base}/_sim/faults"))
        .json(&json!({ "protocol": "graph", "mailbox": "ROOM-1.01@contoso.com", "operation": "calendarView", "count": 2,
                       "fault": { "kind": "throttle", "status": 503 } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["id"].as_u64().is_some());
    let c = sim.control();
    let req = RequestInfo {
        protocol: Protocol::Graph,
        operation: "calendarView",
        mailbox: Some("room-1.01@contoso.com"),
        in_batch: false,
    };
    let other = RequestInfo {
        mailbox: Some("room-1.02@contoso.com"),
        ..req
    };
    assert_eq!(
        c.admit(req, None).unwrap().answer_fault(),
        Some(&Fault::Throttle {
            status: 503,
            retry_after: None
        })
    );
    assert!(c.admit(other, None).unwrap().answer_fault().is_none());
    assert!(c.admit(req, None).unwrap().answer_fault().is_some());
    assert!(
        c.admit(req, None).unwrap().answer_fault().is_none(),
        "count exhausted"
    );
    let faults: Value = http
        .get(format!("{base}/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["faults"].as_array().map(Vec::len), Some(0));

    // Concurrency: 4 per mailbox on Graph.
    let held: Vec<_> = (0..4)
        .map(|_| c.admit(req, Some("room-1.01@contoso.com")).unwrap())
        .collect();
    assert!(c.admit(req, Some("room-1.01@contoso.com")).is_err());
    assert!(c.admit(other, Some("room-1.02@contoso.com")).is_ok());
    drop(held);
    assert!(c.admit(req, Some("room-1.01@contoso.com")).is_ok());

    let stats: Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_operation"]["graph calendarView"], 11);
    assert_eq!(stats["by_mailbox"]["room-1.02@contoso.com"], 2);
    let r = http
        .delete(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.stats().total, 0);

    // Permission switches.
    let r: Value = http
        .patch(format!(
            "{base}/_sim/apps/{}",
            calpump_simulator::catalogue::GRAPH_APP_ID
        ))
        .json(&json!({ "consented": false }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["consented"], false);
    assert!(
        !c.app(calpump_simulator::catalogue::GRAPH_APP_ID)
            .unwrap()
            .consented
    );
    c.add_fault(
        FaultRule::new(Fault::Latency { ms: 5 })
            .protocol(Protocol::Ews)
            .count(1),
    );
    assert_eq!(c.faults().len(), 1);
    sim.shutdown().await;
}

/// Start-up of a 5000-room × 200-event tenant: prints time and RSS (not asserted; see the report).
#[tokio::test]
async fn startup_of_5000_rooms_is_lazy() {
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
    let rss0 = rss_kib();
    let t0 = std::time::Instant::now();
    let sim = Simulator::start(SimConfig {
        rooms: 5000,
        events_per_room: 200,
        users: 2000,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let startup = t0.elapsed();
    let rss1 = rss_kib();
    let t1 = std::time::Instant::now();
    let (from, to) = sim.window();
    let n = sim
        .control()
        .truth("room-100.50@contoso.com", None, from, to)
        .unwrap()
        .len();
    let first_read = t1.elapsed();
    eprintln!(
        "5000 rooms x 200 events: start {:?}, RSS +{} KiB; first read of one room {:?} ({} instances)",
        startup,
        rss1.saturating_sub(rss0),
        first_read,
        n
    );
    assert!(n >= 200);
    assert_eq!(sim.tenant().directory.room_lists.len(), 100);
    // Modest memory: the tenant is generated lazily, so starting 5000 rooms costs little; and
    // reading rooms keeps at most `cache_mailboxes` (512) unchanged rooms materialised,
    // so memory stays bounded however many rooms a client walks through. Generous bounds
    // (a debug build, allocator slack): what they catch is a simulator that materialises
    // the whole tenant — 5000 × 200 events and their instances — which takes gigabytes.
    let started = rss1.saturating_sub(rss0);
    assert!(started < 100 * 1024, "start-up took {started} KiB");
    // Two rounds of 512 distinct rooms each: the first fills the cache, the second must
    // evict as it goes — it may not cost what the first did.
    let c = sim.control();
    let mut instances = 0;
    let rooms: Vec<String> = (1..=100)
        .flat_map(|b| (1..=50).map(move |r| format!("room-{b}.{r:02}@contoso.com")))
        .take(1024)
        .collect();
    let mut after = Vec::new();
    for half in rooms.chunks(512) {
        for mailbox in half {
            instances += c.truth(mailbox, None, from, to).unwrap().len();
        }
        after.push(rss_kib());
    }
    let first = after[0].saturating_sub(rss1);
    let second = after[1].saturating_sub(after[0]);
    eprintln!(
        "reading 1024 rooms ({instances} instances): RSS +{first} KiB for the first 512, +{second} KiB for the next 512"
    );
    assert!(instances >= 1024 * 100, "{instances}");
    assert!(
        second < first / 2,
        "the second 512 rooms grew memory by {second} KiB after {first} KiB: rooms are not evicted"
    );
    sim.shutdown().await;
}

/// `truth(mailbox, None, …)` is the default calendar — what `/users/{id}/calendarView` and
/// EWS `calendar` return; `Some(ALL_CALENDARS)` (HTTP `calendar=*`) adds the sub-calendars.
#[tokio::test]
async fn truth_without_calendar_is_the_default_calendar() {
    let sim = common::start().await;
    let c = sim.control().clone();
    let room = "room-1.01@contoso.com"; // has "Calendar/Maintenance"
    let (from, to) = sim.window();
    let default = c.truth(room, None, from, to).unwrap();
    let named = c.truth(room, Some("Calendar"), from, to).unwrap();
    assert_eq!(default, named);
    assert!(default.iter().all(|i| i.calendar == "Calendar"));
    let all = c
        .truth(room, Some(calpump_simulator::ALL_CALENDARS), from, to)
        .unwrap();
    assert!(all.iter().any(|i| i.calendar == "Calendar/Maintenance"));
    assert_eq!(
        all.len(),
        default.len()
            + c.truth(room, Some("Calendar/Maintenance"), from, to)
                .unwrap()
                .len()
    );
    assert_eq!(c.truth_all_calendars(room, from, to).unwrap(), all);
    // The same over HTTP: no `calendar` = default, `calendar=*` = all.
    let http = reqwest::Client::new();
    let get = |q: String| {
        let http = http.clone();
        let url = format!("{}/_sim/truth?mailbox={room}{q}", sim.base_url());
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["instances"].as_array().unwrap().len()
        }
    };
    assert_eq!(get(String::new()).await, default.len());
    assert_eq!(get("&calendar=*".into()).await, all.len());
    // Graph's calendarView of the mailbox is the default calendar: it equals `None`.
    let t = common::graph_token(&sim).await;
    let mut n = 0;
    let mut url = format!(
        "/users/{room}/calendarView?startDateTime={}&endDateTime={}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    loop {
        let (s, v) = common::get(&sim, &t, &url, &["odata.maxpagesize=100"]).await;
        assert_eq!(s, 200, "{v}");
        n += v["value"].as_array().unwrap().len();
        match v["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(n, default.len());
    sim.shutdown().await;
}

/// All-day events created or changed through the control API name dates and are stored at
/// local midnight of their zone (across DST changes too); `truth` reports both.
#[tokio::test]
async fn all_day_events_are_stored_at_local_midnight() {
    use calpump_simulator::{EventChange, NewEvent};
    let sim = common::start().await;
    let c = sim.control().clone();
    let room = "room-1.03@contoso.com";
    let t = |s: &str| -> chrono::DateTime<chrono::Utc> { s.parse().unwrap() };
    let r = c
        .create_event(
            room,
            &NewEvent {
                subject: "Offsite".into(),
                start: Some(t("2025-06-05T00:00:00Z")),
                end: Some(t("2025-06-06T00:00:00Z")),
                is_all_day: true,
                time_zone: Some("Europe/Berlin".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let find = |from: &str, to: &str| {
        c.truth(room, None, t(from), t(to))
            .unwrap()
            .into_iter()
            .filter(|i| i.goid == r.goid)
            .collect::<Vec<_>>()
    };
    let i = &find("2025-06-01T00:00:00Z", "2025-06-10T00:00:00Z")[0];
    assert_eq!(i.start, t("2025-06-04T22:00:00Z"));
    assert_eq!(i.end, t("2025-06-05T22:00:00Z"));
    let d = serde_json::to_value(i.all_day_dates).unwrap();
    assert_eq!(d, json!({ "start": "2025-06-05", "end": "2025-06-06" }));
    // Another zone keeps the dates.
    c.change_event(
        room,
        &r.goid,
        None,
        &EventChange {
            time_zone: Some("Tokyo Standard Time".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let i = &find("2025-06-01T00:00:00Z", "2025-06-10T00:00:00Z")[0];
    assert_eq!(i.start, t("2025-06-04T15:00:00Z"));
    assert_eq!(
        serde_json::to_value(i.all_day_dates).unwrap(),
        json!({ "start": "2025-06-05", "end": "2025-06-06" })
    );
    // A new start date keeps the length.
    c.change_event(
        room,
        &r.goid,
        None,
        &EventChange {
            start: Some(t("2025-06-07T00:00:00Z")),
            ..Default::default()
        },
    )
    .unwrap();
    let i = &find("2025-06-01T00:00:00Z", "2025-06-10T00:00:00Z")[0];
    assert_eq!(
        (i.start, i.end),
        (t("2025-06-06T15:00:00Z"), t("2025-06-07T15:00:00Z"))
    );

    // A daily all-day series across the end of summer time in Berlin (2025-10-26): every
    // occurrence runs from local midnight to local midnight (the 26th lasts 25 hours).
    let s = c
        .create_event(
            room,
            &serde_json::from_value::<NewEvent>(json!({
                "subject": "Deep cleaning", "start": "2025-10-25T00:00:00Z", "end": "2025-10-26T00:00:00Z",
                "is_all_day": true, "time_zone": "W. Europe Standard Time", "show_as": "busy",
                "recurrence": { "pattern": { "type": "daily", "interval": 1 }, "range": { "type": "numbered", "numberOfOccurrences": 3 } }
            }))
            .unwrap(),
        )
        .unwrap();
    let occ: Vec<_> = c
        .truth(
            room,
            None,
            t("2025-10-20T00:00:00Z"),
            t("2025-11-01T00:00:00Z"),
        )
        .unwrap()
        .into_iter()
        .filter(|i| i.goid == s.goid)
        .map(|i| {
            (
                i.start,
                i.end,
                i.all_day_dates
                    .map(|d| (d.start.to_string(), d.end.to_string())),
            )
        })
        .collect();
    let day = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
    assert_eq!(
        occ,
        vec![
            (
                t("2025-10-24T22:00:00Z"),
                t("2025-10-25T22:00:00Z"),
                day("2025-10-25", "2025-10-26")
            ),
            (
                t("2025-10-25T22:00:00Z"),
                t("2025-10-26T23:00:00Z"),
                day("2025-10-26", "2025-10-27")
            ),
            (
                t("2025-10-26T23:00:00Z"),
                t("2025-10-27T23:00:00Z"),
                day("2025-10-27", "2025-10-28")
            ),
        ]
    );
    sim.shutdown().await;
}
