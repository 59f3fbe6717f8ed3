//! Graph: calendarView paging vs truth, delta rounds after changes, $batch, throttling, 410,
//! extended properties, places, ids, permissions, stats.
#![allow(clippy::unwrap_used)]

mod common;

use calpump_simulator::{EventChange, Fault, FaultRule, NewEvent, Protocol, catalogue};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const ROOM: &str = "room-1.02@contoso.com";
const VIEW: &str = "startDateTime=2025-06-01T00:00:00Z&endDateTime=2025-06-16T00:00:00Z";

async fn all_pages(
    sim: &calpump_simulator::Simulator,
    t: &str,
    url: &str,
    prefer: &[&str],
) -> (Vec<Value>, Option<String>, usize) {
    let mut url = url.to_string();
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let (s, v) = common::get(sim, t, &url, prefer).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        out.extend(v["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = v["@odata.nextLink"].as_str() {
            url = n.to_string();
        } else {
            return (
                out,
                v["@odata.deltaLink"].as_str().map(str::to_string),
                pages,
            );
        }
    }
}

#[tokio::test]
async fn calendar_view_pages_match_truth_and_honour_prefer() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let truth = sim
        .control()
        .truth(
            ROOM,
            Some("Calendar"),
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let (events, _, pages) = all_pages(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView?{VIEW}"),
        &["odata.maxpagesize=7"],
    )
    .await;
    assert_eq!(events.len(), truth.len());
    assert!(pages >= truth.len() / 7);
    for (e, tr) in events.iter().zip(&truth) {
        assert_eq!(e["id"], tr.graph_id.as_str());
        assert_eq!(e["subject"], tr.subject.as_str());
        assert_eq!(e["iCalUId"], tr.ical_uid.as_str());
        assert_eq!(e["type"], json!(serde_json::to_value(tr.kind).unwrap()));
        assert_eq!(e["start"]["timeZone"], "UTC");
        if !tr.is_all_day {
            assert_eq!(
                e["start"]["dateTime"],
                tr.start.format("%Y-%m-%dT%H:%M:%S.0000000").to_string()
            );
        }
    }
    // Prefer outlook.timezone, $select, $top and immutable ids.
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView?{VIEW}&$select=subject,start&$top=3"),
        &[
            "outlook.timezone=\"Pacific Standard Time\"",
            "IdType=\"ImmutableId\"",
        ],
    )
    .await;
    assert_eq!(s, 200);
    let first = &v["value"][0];
    assert_eq!(first["start"]["timeZone"], "Pacific Standard Time");
    assert!(first.get("end").is_none());
    assert_eq!(first["id"], truth[0].graph_immutable_id.as_str());
    assert_eq!(v["value"].as_array().unwrap().len(), 3);
    // Query option names are case-insensitive; missing window is a 400.
    let (s, v) = common::get(&sim, &t, &format!("/USERS/{ROOM}/CalendarView?STARTDATETIME=2025-06-01T00:00:00Z&enddatetime=2025-06-02T00:00:00Z"), &[]).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = common::get(&sim, &t, &format!("/users/{ROOM}/calendarView"), &[]).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "ErrorInvalidParameter");
    sim.shutdown().await;
}

#[tokio::test]
async fn delta_rounds_deliver_changes_and_removals() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let c = sim.control().clone();
    let (first, delta, _) = all_pages(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView/delta?{VIEW}"),
        &["odata.maxpagesize=5"],
    )
    .await;
    let delta = delta.expect("deltaLink after the first round");
    // Occurrences carry only the reduced property set; series masters are included in full.
    let occ = first.iter().find(|e| e["type"] == "occurrence").unwrap();
    let keys: BTreeSet<&str> = occ
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "@odata.etag",
            "@odata.type",
            "end",
            "id",
            "seriesMasterId",
            "start",
            "type"
        ])
    );
    assert!(
        first
            .iter()
            .any(|e| e["type"] == "seriesMaster" && e["recurrence"]["pattern"]["type"].is_string())
    );
    let truth = c
        .truth(
            ROOM,
            Some("Calendar"),
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let ids: BTreeSet<String> = first
        .iter()
        .filter(|e| e["type"] != "seriesMaster")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, truth.iter().map(|i| i.graph_id.clone()).collect());

    // Nothing changed: the next round is empty.
    let (none, delta2, _) = all_pages(&sim, &t, &delta, &[]).await;
    assert!(none.is_empty(), "{none:?}");

    // Changes: a new event, a changed single, a deleted event, an event moved outside the window.
    let single = truth
        .iter()
        .find(|i| i.kind == calpump_simulator::tenant::InstanceKind::SingleInstance)
        .unwrap()
        .clone();
    let other = truth
        .iter()
        .filter(|i| i.kind == calpump_simulator::tenant::InstanceKind::SingleInstance)
        .nth(1)
        .unwrap()
        .clone();
    let gone = truth
        .iter()
        .filter(|i| i.kind == calpump_simulator::tenant::InstanceKind::SingleInstance)
        .nth(2)
        .unwrap()
        .clone();
    let new = c
        .create_event(
            ROOM,
            &NewEvent {
                subject: "New one".into(),
                start: "2025-06-04T12:00:00Z".parse().ok(),
                end: "2025-06-04T13:00:00Z".parse().ok(),
                ..Default::default()
            },
        )
        .unwrap();
    c.change_event(
        ROOM,
        &single.goid,
        None,
        &EventChange {
            subject: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .unwrap();
    c.delete_event(ROOM, &gone.goid).unwrap();
    c.change_event(
        ROOM,
        &other.goid,
        None,
        &EventChange {
            start: "2025-09-01T10:00:00Z".parse().ok(),
            ..Default::default()
        },
    )
    .unwrap();
    let (changes, _, _) = all_pages(&sim, &t, &delta2.unwrap(), &[]).await;
    let by_id: BTreeMap<&str, &Value> = changes
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    assert_eq!(by_id[single.graph_id.as_str()]["subject"], "Renamed");
    assert_eq!(
        by_id[gone.graph_id.as_str()]["@removed"]["reason"],
        "deleted"
    );
    assert_eq!(
        by_id[other.graph_id.as_str()]["@removed"]["reason"],
        "deleted",
        "moved out of the window"
    );
    assert!(
        changes
            .iter()
            .any(|e| e["subject"] == "New one" && e["iCalUId"] == new.goid.as_str())
    );
    assert_eq!(changes.len(), 4, "{changes:#?}");

    // Unknown and injected stale tokens: 410 syncStateNotFound.
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView/delta?$deltatoken=bogus"),
        &[],
    )
    .await;
    assert_eq!(s, 410);
    assert_eq!(v["error"]["code"], "syncStateNotFound");
    c.add_fault(
        FaultRule::new(Fault::SyncStateNotFound)
            .protocol(Protocol::Graph)
            .mailbox(ROOM)
            .count(1),
    );
    let (s, _) = common::get(&sim, &t, &delta, &[]).await;
    assert_eq!(s, 410);
    let (s, _) = common::get(&sim, &t, &delta, &[]).await;
    assert_eq!(s, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_throttling_and_stats() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let c = sim.control().clone();
    c.reset_stats();
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 429,
            retry_after: Some(7),
        })
        .mailbox("room-1.03@contoso.com")
        .in_batch(true)
        .count(1),
    );
    let requests: Vec<Value> = (1..=3)
        .map(|i| json!({ "id": i.to_string(), "method": "GET", "url": format!("/users/room-1.0{i}@contoso.com/calendarView?{VIEW}&$top=2") }))
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{}/$batch", sim.graph_url()))
        .bearer_auth(&t)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let resp: BTreeMap<&str, &Value> = v["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["id"].as_str().unwrap(), x))
        .collect();
    assert_eq!(resp["1"]["status"], 200);
    assert_eq!(resp["1"]["body"]["value"].as_array().unwrap().len(), 2);
    assert_eq!(resp["3"]["status"], 429);
    assert_eq!(resp["3"]["headers"]["Retry-After"], "7");
    assert_eq!(resp["3"]["body"]["error"]["code"], "TooManyRequests");
    // More than 20 requests: 400.
    let many: Vec<Value> = (0..21).map(|i| json!({ "id": i.to_string(), "method": "GET", "url": "/users/room-1.01@contoso.com" })).collect();
    let r = reqwest::Client::new()
        .post(format!("{}/$batch", sim.graph_url()))
        .bearer_auth(&t)
        .json(&json!({ "requests": many }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Direct throttling: 503 without Retry-After, then the real answer.
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 503,
            retry_after: None,
        })
        .operation("calendarView")
        .count(1),
    );
    let r = reqwest::Client::new()
        .get(format!(
            "{}/users/{ROOM}/calendarView?{VIEW}",
            sim.graph_url()
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_none());
    // HTML login page with 200, truncated body.
    c.add_fault(
        FaultRule::new(Fault::HtmlLoginPage)
            .operation("user")
            .count(1),
    );
    let r = reqwest::Client::new()
        .get(format!("{}/users/{ROOM}", sim.graph_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    c.add_fault(
        FaultRule::new(Fault::TruncatedBody)
            .operation("user")
            .count(1),
    );
    let r = reqwest::Client::new()
        .get(format!("{}/users/{ROOM}", sim.graph_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());

    // Mailbox concurrency: 4 in flight per mailbox; the fifth gets 429 ApplicationThrottled.
    c.add_fault(
        FaultRule::new(Fault::Latency { ms: 300 })
            .mailbox("room-1.04@contoso.com")
            .count(5),
    );
    let futs: Vec<_> = (0..5)
        .map(|_| {
            let t = t.clone();
            let u = format!(
                "{}/users/room-1.04@contoso.com/calendarView?{VIEW}",
                sim.graph_url()
            );
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(u)
                    .bearer_auth(t)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut codes = Vec::new();
    for f in futs {
        let r = f.await.unwrap();
        let s = r.status().as_u16();
        if s == 429 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "ApplicationThrottled");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("MailboxConcurrency")
            );
        }
        codes.push(s);
    }
    codes.sort();
    assert_eq!(codes, vec![200, 200, 200, 200, 429]);

    let st = c.stats();
    assert_eq!(st.operation(Protocol::Graph, "batch"), 2);
    assert_eq!(st.operation(Protocol::Graph, "calendarView"), 3 + 1 + 5);
    assert_eq!(st.by_mailbox["room-1.04@contoso.com"], 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn events_extended_properties_places_ids_and_permissions() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let truth = sim
        .control()
        .truth(
            ROOM,
            None,
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let ext = "$expand=singleValueExtendedProperties($filter=id%20eq%20'Binary%20{6ED8DA90-450B-101B-98DA-00AA003F1305}%20Id%200x23'%20or%20id%20eq%20'Binary%20{6ED8DA90-450B-101B-98DA-00AA003F1305}%20Id%200x3')";
    use base64::Engine;
    for inst in truth.iter().take(12) {
        let (s, v) = common::get(
            &sim,
            &t,
            &format!("/users/{ROOM}/events/{}?{ext}", inst.graph_id),
            &[],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let props = v["singleValueExtendedProperties"].as_array().unwrap();
        let clean = props
            .iter()
            .find(|p| p["id"].as_str().unwrap().ends_with("0x23"))
            .unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(clean["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(hex::encode_upper(&bytes), inst.goid);
        let global = props
            .iter()
            .find(|p| p["id"].as_str().unwrap().ends_with("0x3"))
            .unwrap();
        let gbytes = base64::engine::general_purpose::STANDARD
            .decode(global["value"].as_str().unwrap())
            .unwrap();
        if inst.original_start.is_some() {
            assert_ne!(gbytes[16..20], [0, 0, 0, 0]);
        }
        assert_eq!(v["iCalUId"], inst.ical_uid.as_str());
    }
    // The same on calendarView.
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView?{VIEW}&{ext}"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert!(v["value"].as_array().unwrap().iter().all(|e| {
        e["singleValueExtendedProperties"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    }));

    // Unknown item, unknown user, on-prem mailbox, scoped app.
    let (s, v) = common::get(
        &sim,
        &t,
        &format!(
            "/users/{ROOM}/events/{}",
            truth[0].graph_id.replace('A', "B")
        ),
        &[],
    )
    .await;
    assert!(s == 404 || s == 400, "{v}");
    // Users need User.Read.All: the roles-missing app holds exactly that.
    let user_read = common::token(
        &sim,
        catalogue::NO_ROLES_APP_ID,
        catalogue::NO_ROLES_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    let (s, v) = common::get(&sim, &user_read, "/users/nobody@contoso.com", &[]).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "Request_ResourceNotFound");
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/nobody@contoso.com/calendarView?{VIEW}"),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("ErrorInvalidUser"))
    );
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{}/calendarView?{VIEW}", catalogue::ONPREM_ROOM),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("MailboxNotEnabledForRESTAPI"))
    );
    let scoped = common::token(
        &sim,
        catalogue::SCOPED_APP_ID,
        catalogue::SCOPED_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    let (s, _) = common::get(
        &sim,
        &scoped,
        &format!("/users/room-1.01@contoso.com/calendarView?{VIEW}"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    sim.control().update_app(catalogue::SCOPED_APP_ID, |a| {
        a.scoped_to = Some(vec!["room-1.05@contoso.com".into()])
    });
    let (s, v) = common::get(
        &sim,
        &scoped,
        &format!("/users/room-1.01@contoso.com/calendarView?{VIEW}"),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Access to OData is disabled")
    );

    // Places.
    let (s, v) = common::get(&sim, &t, "/places/microsoft.graph.roomlist", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["value"][0]["emailAddress"], "building-1@contoso.com");
    let (_, v) = common::get(
        &sim,
        &t,
        "/places/building-1@contoso.com/microsoft.graph.roomlist/rooms",
        &[],
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 12);
    assert!(v["value"][0]["capacity"].is_u64());
    let (_, v) = common::get(&sim, &t, "/places/microsoft.graph.room?$top=5", &[]).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 5);
    assert!(v["@odata.nextLink"].is_string());
    // Users by filter need User.Read.All (the good app has none: 403), calendars.
    let (s, v) = common::get(
        &sim,
        &t,
        "/users?$filter=mail%20eq%20'ROOM-1.02@contoso.com'",
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    let (_, v) = common::get(
        &sim,
        &user_read,
        "/users?$filter=mail%20eq%20'ROOM-1.02@contoso.com'",
        &[],
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    let (_, v) = common::get(&sim, &t, "/users/room-1.01@contoso.com/calendars", &[]).await;
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        2,
        "room-1.01 has a Maintenance sub-calendar"
    );
    let cal_id = v["value"][1]["id"].as_str().unwrap().to_string();
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/room-1.01@contoso.com/calendars/{cal_id}/calendarView?{VIEW}"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    // translateExchangeIds needs User.Read.All or User.ReadWrite.All (application), not
    // Calendars.Read (`user-translateexchangeids.md`): the good app (Calendars.Read,
    // Place.Read.All) is refused, an app holding only User.Read.All is served.
    let translate = |token: String| {
        let url = format!("{}/users/{ROOM}/translateExchangeIds", sim.graph_url());
        let body = json!({ "inputIds": [truth[0].graph_id], "sourceIdType": "restId", "targetIdType": "restImmutableEntryId" });
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = translate(t.clone()).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "ErrorAccessDenied");
    let (s, v) = translate(user_read).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["value"][0]["targetId"],
        truth[0].graph_immutable_id.as_str()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn delta_after_cancelled_occurrence_and_move_between_calendars() {
    use calpump_simulator::tenant::InstanceKind;
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let c = sim.control().clone();
    let room = "room-1.01@contoso.com";
    let (_, delta, _) = all_pages(
        &sim,
        &t,
        &format!("/users/{room}/calendarView/delta?{VIEW}"),
        &["odata.maxpagesize=50"],
    )
    .await;
    let truth = c
        .truth(
            room,
            Some("Calendar"),
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let occ = truth
        .iter()
        .find(|i| i.kind == InstanceKind::Occurrence)
        .unwrap()
        .clone();
    let single = truth
        .iter()
        .find(|i| i.kind == InstanceKind::SingleInstance)
        .unwrap()
        .clone();
    c.cancel_occurrence(room, &occ.goid, occ.original_start.unwrap())
        .unwrap();
    c.move_event(room, &single.goid, "Maintenance").unwrap();
    let (changes, _, _) = all_pages(&sim, &t, &delta.unwrap(), &[]).await;
    let removed: BTreeSet<&str> = changes
        .iter()
        .filter(|e| e.get("@removed").is_some())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        removed.contains(occ.graph_id.as_str()),
        "cancelled occurrence removed"
    );
    assert!(
        removed.contains(single.graph_id.as_str()),
        "moved event left this calendar"
    );
    // The series comes again without the cancelled occurrence.
    assert!(changes.iter().any(|e| e["type"] == "seriesMaster"));
    assert!(
        !changes
            .iter()
            .any(|e| e["id"] == occ.graph_id.as_str() && e.get("@removed").is_none())
    );
    // The moved event keeps its immutable id and is readable by it.
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{room}/events/{}", single.graph_immutable_id),
        &["IdType=\"ImmutableId\""],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], single.graph_immutable_id.as_str());
    let (s, _) = common::get(
        &sim,
        &t,
        &format!("/users/{room}/events/{}", single.graph_id),
        &[],
    )
    .await;
    assert_eq!(s, 404, "the old regular id is gone after the move");
    sim.shutdown().await;
}

/// Exchange's id spellings: a REST id is the EWS id with `/`→`-` and `+`→`_` (padding kept);
/// `entryId`/`immutableEntryId` are URL-safe base64 with the padding count appended
/// (`user-translateexchangeids.md`); translateExchangeIds converts between all of them.
#[tokio::test]
async fn rest_ids_are_ews_ids_with_exchanges_alphabet() {
    let sim = common::start().await;
    let c = sim.control().clone();
    let mut both = 0;
    let mut ids = Vec::new();
    for room in ["room-1.01@contoso.com", "room-1.02@contoso.com", ROOM] {
        for i in c
            .truth(
                room,
                Some("Calendar"),
                "2025-06-01T00:00:00Z".parse().unwrap(),
                "2025-06-16T00:00:00Z".parse().unwrap(),
            )
            .unwrap()
        {
            assert_eq!(i.graph_id, i.ews_id.replace('/', "-").replace('+', "_"));
            if i.ews_id.contains(['/', '+']) {
                both += 1;
            }
            if room == ROOM {
                ids.push(i);
            }
        }
    }
    assert!(
        both > 0,
        "no id with '+' or '/' to tell the alphabets apart"
    );
    let token = common::token(
        &sim,
        catalogue::NO_ROLES_APP_ID,
        catalogue::NO_ROLES_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    let translate = |input: Vec<String>, from: &str, to: &str| {
        let url = format!("{}/users/{ROOM}/translateExchangeIds", sim.graph_url());
        let body = json!({ "inputIds": input, "sourceIdType": from, "targetIdType": to });
        let token = token.clone();
        async move {
            let v: Value = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["targetId"].as_str().unwrap_or("").to_string())
                .collect::<Vec<String>>()
        }
    };
    let ews: Vec<String> = ids.iter().map(|i| i.ews_id.clone()).collect();
    let rest = translate(ews.clone(), "ewsId", "restId").await;
    assert_eq!(
        rest,
        ids.iter().map(|i| i.graph_id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(translate(rest.clone(), "restId", "ewsId").await, ews);
    for (to, back) in [
        ("entryId", "restId"),
        ("immutableEntryId", "restImmutableEntryId"),
    ] {
        let bin = translate(rest.clone(), "restId", to).await;
        for b in &bin {
            assert!(
                b.ends_with(['0', '1', '2']) && !b.contains(['=', '+', '/']),
                "{to}: {b}"
            );
        }
        let again = translate(bin, to, back).await;
        if back == "restId" {
            assert_eq!(again, rest);
        } else {
            assert_eq!(
                again,
                ids.iter()
                    .map(|i| i.graph_immutable_id.clone())
                    .collect::<Vec<_>>()
            );
        }
    }
    sim.shutdown().await;
}

/// All-day events: stored at midnight of the creator's zone; Graph converts that instant like
/// any other (`Prefer: outlook.timezone="UTC"` → 22:00 the day before for Berlin in summer, with
/// `originalStartTimeZone`), and in their own zone they start at 00:00. Some block the room.
#[tokio::test]
async fn all_day_events_are_local_midnight_of_their_zone() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let room = "room-1.01@contoso.com"; // Building 1: W. Europe Standard Time
    let truth = sim
        .control()
        .truth(
            room,
            None,
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let all_day: Vec<_> = truth.iter().filter(|i| i.is_all_day).collect();
    assert!(!all_day.is_empty());
    for zone_pref in [
        "outlook.timezone=\"UTC\"",
        "outlook.timezone=\"W. Europe Standard Time\"",
    ] {
        let (events, _, _) = all_pages(
            &sim,
            &t,
            &format!("/users/{room}/calendarView?{VIEW}"),
            &[zone_pref, "odata.maxpagesize=100"],
        )
        .await;
        for i in &all_day {
            let e = events
                .iter()
                .find(|e| e["id"] == i.graph_id.as_str())
                .unwrap();
            assert_eq!(e["isAllDay"], true);
            assert_eq!(e["originalStartTimeZone"], "W. Europe Standard Time");
            let dates = i.all_day_dates.unwrap();
            if zone_pref.contains("UTC") {
                assert_eq!(
                    e["start"]["dateTime"],
                    i.start.format("%Y-%m-%dT%H:%M:%S.0000000").to_string()
                );
                assert_eq!(i.start.format("%H:%M").to_string(), "22:00");
                assert_eq!(e["start"]["timeZone"], "UTC");
            } else {
                assert_eq!(
                    e["start"]["dateTime"],
                    format!("{}T00:00:00.0000000", dates.start)
                );
                assert_eq!(
                    e["end"]["dateTime"],
                    format!("{}T00:00:00.0000000", dates.end)
                );
            }
        }
    }
    sim.shutdown().await;
}

/// calendarView/delta takes no OData query options but the window and the state tokens
/// (`event-delta.md`: no `$select`, no `$expand`, `$filter`, `$orderby`, `$search`): the real
/// service refuses them with 400 `ErrorInvalidUrlQuery`, `$top` too (page size goes in
/// `Prefer: odata.maxpagesize`).
#[tokio::test]
async fn delta_refuses_query_options() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let ext = "$expand=singleValueExtendedProperties($filter=id%20eq%20'Binary%20{6ED8DA90-450B-101B-98DA-00AA003F1305}%20Id%200x23')";
    for q in [
        "$select=subject,start",
        ext,
        "$filter=subject%20eq%20'x'",
        "$orderby=start/dateTime",
        "$search=%22x%22",
        "select=subject",
    ] {
        let (s, v) = common::get(
            &sim,
            &t,
            &format!("/users/{ROOM}/calendarView/delta?{VIEW}&{q}"),
            &[],
        )
        .await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["error"]["code"], "ErrorInvalidUrlQuery", "{q}");
        assert_eq!(
            v["error"]["message"],
            "The following parameters are not supported with change tracking over the 'CalendarView' resource: '$orderby, $filter, $select, $expand, $search'.",
            "{q}"
        );
    }
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView/delta?{VIEW}&$top=5"),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "ErrorInvalidUrlQuery");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("odata.maxpagesize")
    );
    // Without them: the default shape, no extended properties.
    let (all, _, _) = all_pages(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView/delta?{VIEW}"),
        &["odata.maxpagesize=50"],
    )
    .await;
    assert!(!all.is_empty());
    assert!(
        all.iter()
            .all(|e| e.get("singleValueExtendedProperties").is_none())
    );
    assert!(
        all.iter()
            .filter(|e| e["type"] != "occurrence")
            .all(|e| e.get("subject").is_some() && e.get("iCalUId").is_some())
    );
    sim.shutdown().await;
}

/// A first delta round resumes after the last group it delivered, not at a position: items
/// deleted, moved or added between its pages never make it skip an untouched item, and what
/// changed after the round began comes in the next round — and only there.
#[tokio::test]
async fn delta_round_survives_changes_between_pages() {
    use calpump_simulator::tenant::InstanceKind;
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let c = sim.control().clone();
    let truth = c
        .truth(
            ROOM,
            None,
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let prefer = ["odata.maxpagesize=3"];
    let mut url = format!("/users/{ROOM}/calendarView/delta?{VIEW}");
    let mut round1: Vec<Value> = Vec::new();
    let mut pages = 0;
    let mut changed = false;
    let (mut deleted, mut moved, mut added) = (None, None, None);
    let delta = loop {
        let (s, v) = common::get(&sim, &t, &url, &prefer).await;
        assert_eq!(s, 200, "{v}");
        round1.extend(v["value"].as_array().unwrap().iter().cloned());
        pages += 1;
        let singles: Vec<_> = truth
            .iter()
            .filter(|i| {
                i.kind == InstanceKind::SingleInstance
                    && round1.iter().any(|e| e["id"] == i.graph_id.as_str())
            })
            .collect();
        // Once two singles were delivered: delete one, move another away, add an event that
        // sorts before everything.
        if !changed && singles.len() >= 2 && v["@odata.nextLink"].is_string() {
            changed = true;
            c.delete_event(ROOM, &singles[0].goid).unwrap();
            c.create_calendar(ROOM, "Side", None).unwrap();
            c.move_event(ROOM, &singles[1].goid, "Side").unwrap();
            added = Some(
                c.create_event(
                    ROOM,
                    &NewEvent {
                        subject: "Early bird".into(),
                        start: "2025-06-01T00:30:00Z".parse().ok(),
                        end: "2025-06-01T01:00:00Z".parse().ok(),
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            deleted = Some(singles[0].clone());
            moved = Some(singles[1].clone());
        }
        match (
            v["@odata.nextLink"].as_str(),
            v["@odata.deltaLink"].as_str(),
        ) {
            (Some(n), _) => url = n.to_string(),
            (None, Some(d)) => break d.to_string(),
            _ => panic!("neither nextLink nor deltaLink: {v}"),
        }
    };
    assert!(changed && pages > 3, "{pages} pages");
    let (deleted, moved, added) = (deleted.unwrap(), moved.unwrap(), added.unwrap());
    let got: BTreeSet<&str> = round1
        .iter()
        .filter(|e| e.get("@removed").is_none())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    for i in truth
        .iter()
        .filter(|i| i.goid != deleted.goid && i.goid != moved.goid)
    {
        assert!(
            got.contains(i.graph_id.as_str()),
            "untouched {:?} {} ({}) missing from the first round",
            i.kind,
            i.subject,
            i.start
        );
    }
    // The next round brings what changed during the first one.
    let (round2, delta2, _) = all_pages(&sim, &t, &delta, &[]).await;
    let removed: BTreeSet<&str> = round2
        .iter()
        .filter(|e| e.get("@removed").is_some())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(removed.contains(deleted.graph_id.as_str()), "{round2:#?}");
    assert!(removed.contains(moved.graph_id.as_str()), "{round2:#?}");
    assert!(
        round2
            .iter()
            .any(|e| e["iCalUId"] == added.goid.as_str() && e["subject"] == "Early bird")
    );
    // And a round after that, with no change in between, is empty: rounds move forward.
    let (round3, _, _) = all_pages(&sim, &t, &delta2.unwrap(), &[]).await;
    assert!(round3.is_empty(), "{round3:#?}");
    sim.shutdown().await;
}

async fn post_batch(
    sim: &calpump_simulator::Simulator,
    t: &str,
    requests: Vec<Value>,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/$batch", sim.graph_url()))
        .bearer_auth(t)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn statuses(v: &Value) -> BTreeMap<String, u64> {
    v["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `$batch` (`concepts/json-batching.md`): a parallel batch runs up to four sub-requests at once,
/// each admitted against its mailbox's concurrency limit (so it can hold a 429); a batch with
/// `dependsOn` must be fully sequential and referencing earlier requests; ids are unique
/// whatever their case.
#[tokio::test]
async fn batch_runs_sub_requests_four_at_a_time_or_in_sequence() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let c = sim.control().clone();
    let view = |i: usize, room: &str| json!({ "id": i.to_string(), "method": "GET", "url": format!("/users/{room}/calendarView?{VIEW}&$top=1") });

    // Eight sub-requests of 300 ms each to eight mailboxes: two waves of four.
    c.add_fault(
        FaultRule::new(Fault::Latency { ms: 300 })
            .in_batch(true)
            .operation("calendarView")
            .count(8),
    );
    let reqs: Vec<Value> = (1..=8)
        .map(|i| view(i, &format!("room-1.{i:02}@contoso.com")))
        .collect();
    let t0 = std::time::Instant::now();
    let (s, v) = post_batch(&sim, &t, reqs).await;
    let took = t0.elapsed();
    assert_eq!(s, 200, "{v}");
    assert!(statuses(&v).values().all(|s| *s == 200), "{v}");
    assert!(
        took >= std::time::Duration::from_millis(550)
            && took < std::time::Duration::from_millis(1500),
        "8 × 300 ms, four at a time: {took:?}"
    );

    // A request to room-1.09 in flight outside the batch + four inside: the mailbox's fifth
    // concurrent request answers 429 inside the batch.
    let room = "room-1.09@contoso.com";
    c.add_fault(
        FaultRule::new(Fault::Latency { ms: 900 })
            .mailbox(room)
            .in_batch(false)
            .count(1),
    );
    c.add_fault(
        FaultRule::new(Fault::Latency { ms: 300 })
            .mailbox(room)
            .in_batch(true)
            .count(4),
    );
    let outside = {
        let url = format!("{}/users/{room}/calendarView?{VIEW}", sim.graph_url());
        let t = t.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (s, v) = post_batch(&sim, &t, (1..=4).map(|i| view(i, room)).collect()).await;
    assert_eq!(s, 200);
    let mut codes: Vec<u64> = statuses(&v).into_values().collect();
    codes.sort();
    assert_eq!(codes, vec![200, 200, 200, 429], "{v}");
    let throttled = v["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["status"] == 429)
        .unwrap();
    assert_eq!(throttled["body"]["error"]["code"], "ApplicationThrottled");
    assert_eq!(outside.await.unwrap(), 200);

    // Ids are not case-sensitive: "a" and "A" collide.
    let (s, v) = post_batch(
        &sim,
        &t,
        vec![
            view(1, ROOM),
            json!({ "id": "a", "method": "GET", "url": "/places/microsoft.graph.room" }),
            json!({ "id": "A", "method": "GET", "url": "/places/microsoft.graph.room" }),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );

    // Sequential: each depends on an earlier one; a failure cascades as 424.
    let seq = vec![
        json!({ "id": "1", "method": "GET", "url": format!("/users/{ROOM}/calendarView?{VIEW}&$top=1") }),
        json!({ "id": "2", "dependsOn": ["1"], "method": "GET", "url": "/users/nobody@contoso.com/calendarView?startDateTime=2025-06-01&endDateTime=2025-06-02" }),
        json!({ "id": "4", "dependsOn": ["2"], "method": "GET", "url": "/places/microsoft.graph.room" }),
        json!({ "id": "3", "dependsOn": ["4"], "method": "GET", "url": "/places/microsoft.graph.room" }),
    ];
    let (s, v) = post_batch(&sim, &t, seq).await;
    assert_eq!(s, 200, "{v}");
    let st = statuses(&v);
    assert_eq!(
        (st["1"], st["2"], st["4"], st["3"]),
        (200, 404, 424, 424),
        "{v}"
    );
    // A dependency on a later, unknown or own id, and a mix of parallel and sequential: 400.
    for (name, reqs) in [
        (
            "later",
            vec![
                json!({ "id": "1", "dependsOn": ["2"], "method": "GET", "url": "/places/microsoft.graph.room" }),
                json!({ "id": "2", "method": "GET", "url": "/places/microsoft.graph.room" }),
            ],
        ),
        (
            "unknown",
            vec![
                json!({ "id": "1", "method": "GET", "url": "/places/microsoft.graph.room" }),
                json!({ "id": "2", "dependsOn": ["9"], "method": "GET", "url": "/places/microsoft.graph.room" }),
            ],
        ),
        (
            "cycle",
            vec![
                json!({ "id": "1", "dependsOn": ["2"], "method": "GET", "url": "/places/microsoft.graph.room" }),
                json!({ "id": "2", "dependsOn": ["1"], "method": "GET", "url": "/places/microsoft.graph.room" }),
            ],
        ),
        (
            "mixed",
            vec![
                json!({ "id": "1", "method": "GET", "url": "/places/microsoft.graph.room" }),
                json!({ "id": "2", "method": "GET", "url": "/places/microsoft.graph.room" }),
                json!({ "id": "3", "dependsOn": ["1"], "method": "GET", "url": "/places/microsoft.graph.room" }),
            ],
        ),
    ] {
        let (s, v) = post_batch(&sim, &t, reqs).await;
        assert_eq!(s, 400, "{name}: {v}");
        assert_eq!(v["error"]["code"], "BadRequest", "{name}");
    }
    sim.shutdown().await;
}

/// The malformed-body fault: the real status and headers, a body of junk bytes that is neither
/// JSON nor UTF-8, with a matching `Content-Length`; it hits only as often as asked.
#[tokio::test]
async fn malformed_body_fault_sends_junk_with_the_real_status() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    sim.control().add_fault(
        FaultRule::new(Fault::MalformedBody)
            .protocol(Protocol::Graph)
            .operation("calendarView")
            .mailbox(ROOM)
            .count(1),
    );
    let url = format!("{}/users/{ROOM}/calendarView?{VIEW}", sim.graph_url());
    let r = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len(), len);
    assert!(std::str::from_utf8(&bytes).is_err());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    // The next request gets the real answer.
    let (s, v) = common::get(&sim, &t, &url, &[]).await;
    assert_eq!(s, 200);
    assert!(v["value"].is_array());
    // Token endpoint: same fault, same effect.
    sim.control().add_fault(
        FaultRule::new(Fault::MalformedBody)
            .protocol(Protocol::Token)
            .count(1),
    );
    let r = reqwest::Client::new()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", catalogue::GRAPH_APP_ID),
            ("client_secret", catalogue::GRAPH_APP_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());
    sim.shutdown().await;
}

/// `GET …/events` (`user-list-events.md`, `calendar-list-events.md`): singles and series
/// masters only, paged by `$top`/`$skip`, `@odata.count` with `$count=true` — what
/// `calpump mailboxes` shows as a calendar's item count.
#[tokio::test]
async fn list_events_counts_singles_and_series_masters_with_paging() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let room = "room-1.01@contoso.com"; // first room of its floor: has "Maintenance"
    let tenant = sim.tenant();
    let index = tenant.mailbox(room).unwrap().index;
    let (singles, masters, sub) = tenant
        .read(index, |s| {
            let default: Vec<_> = s.items.values().filter(|i| i.calendar == 0).collect();
            (
                default.iter().filter(|i| i.series.is_none()).count(),
                default.iter().filter(|i| i.series.is_some()).count(),
                s.items.values().filter(|i| i.calendar == 1).count(),
            )
        })
        .unwrap();
    assert!(singles > 0 && masters > 0 && sub > 0);

    // $count with $top=1: the total, one event in the page.
    sim.control().reset_stats();
    for path in ["events", "calendar/events"] {
        let (s, v) = common::get(
            &sim,
            &t,
            &format!("/users/{room}/{path}?$count=true&$top=1&$select=id"),
            &[],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["@odata.count"], json!(singles + masters), "{path}");
        let value = v["value"].as_array().unwrap();
        assert_eq!(value.len(), 1);
        assert!(value[0].get("subject").is_none(), "$select applies");
        assert!(v["@odata.nextLink"].as_str().unwrap().contains("skip=1"));
    }
    assert_eq!(
        sim.control().stats().operation(Protocol::Graph, "events"),
        2
    );

    // The sub-calendar by its id.
    let (_, cals) = common::get(&sim, &t, &format!("/users/{room}/calendars"), &[]).await;
    let maintenance = cals["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Maintenance")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = common::get(
        &sim,
        &t,
        &format!("/users/{room}/calendars/{maintenance}/events?$count=true&$top=1"),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["@odata.count"], json!(sub));

    // Every page: each item once, singles and masters, never an occurrence or exception.
    let (events, _, pages) =
        all_pages(&sim, &t, &format!("/users/{room}/events?$top=5"), &[]).await;
    assert_eq!(events.len(), singles + masters);
    assert_eq!(pages, (singles + masters).div_ceil(5));
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "no item twice");
    let kinds: BTreeMap<&str, usize> = events.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e["type"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(kinds.get("singleInstance").copied().unwrap_or(0), singles);
    assert_eq!(kinds.get("seriesMaster").copied().unwrap_or(0), masters);
    let master = events.iter().find(|e| e["type"] == "seriesMaster").unwrap();
    assert!(master["recurrence"].is_object(), "{master}");
    // No $count: no count. A page size from Prefer. Bad options and unknown calendars refused.
    let (_, v) = common::get(
        &sim,
        &t,
        &format!("/users/{room}/events"),
        &["odata.maxpagesize=3"],
    )
    .await;
    assert!(v.get("@odata.count").is_none());
    assert_eq!(v["value"].as_array().unwrap().len(), 3);
    let (s, _) = common::get(&sim, &t, &format!("/users/{room}/events?$count=maybe"), &[]).await;
    assert_eq!(s, 400);
    let (s, _) = common::get(
        &sim,
        &t,
        &format!("/users/{room}/calendars/AAMkbm90LWEtY2FsZW5kYXI=/events"),
        &[],
    )
    .await;
    assert_eq!(s, 404);
}

/// `POST /_sim/events/hide` takes one event out of Graph's answers (calendarView, delta,
/// events, events/{id}); a delta round after hiding reports it removed, one after unhiding
/// brings it back; EWS and the truth keep it.
#[tokio::test]
async fn an_event_hidden_from_graph_is_gone_from_graph_only() {
    let sim = common::start().await;
    let t = common::graph_token(&sim).await;
    let c = sim.control();
    let truth = c
        .truth(
            ROOM,
            Some("Calendar"),
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let single = truth
        .iter()
        .find(|i| i.original_start.is_none() && !i.is_all_day)
        .unwrap()
        .clone();
    let view_ids = |events: &[Value]| -> BTreeSet<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let view_url = format!("/users/{ROOM}/calendarView?{VIEW}");
    let (before, _, _) = all_pages(&sim, &t, &view_url, &["odata.maxpagesize=50"]).await;
    assert!(view_ids(&before).contains(&single.graph_id));
    let (_, delta, _) = all_pages(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView/delta?{VIEW}"),
        &[],
    )
    .await;
    let delta = delta.unwrap();

    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}/_sim/events/{path}", sim.base_url());
    let hide = json!({"mailbox": ROOM, "goid": single.goid, "protocol": "graph"});
    let r = http.post(control("hide")).json(&hide).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let listed: Value = http
        .get(control("hidden"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["hidden"],
        json!([{"mailbox": ROOM, "goid": single.goid, "protocol": "graph"}])
    );

    // calendarView, a fresh delta round, the events list and the event itself: gone.
    let (after, _, _) = all_pages(&sim, &t, &view_url, &["odata.maxpagesize=50"]).await;
    assert_eq!(after.len(), before.len() - 1);
    assert!(!view_ids(&after).contains(&single.graph_id));
    let (fresh, _, _) = all_pages(
        &sim,
        &t,
        &format!("/users/{ROOM}/calendarView/delta?{VIEW}"),
        &[],
    )
    .await;
    assert!(!view_ids(&fresh).contains(&single.graph_id));
    let (_, list) = common::get(
        &sim,
        &t,
        &format!("/users/{ROOM}/events?$top=100&$count=true"),
        &[],
    )
    .await;
    assert!(!view_ids(list["value"].as_array().unwrap()).contains(&single.graph_id));
    let (status, _) = common::get(
        &sim,
        &t,
        &format!("/users/{ROOM}/events/{}", single.graph_id),
        &[],
    )
    .await;
    assert_eq!(status, 404);
    // The next round of the earlier delta reports it removed.
    let (round, delta, _) = all_pages(&sim, &t, &delta, &[]).await;
    assert_eq!(
        round
            .iter()
            .filter(|e| e["id"] == single.graph_id.as_str())
            .map(|e| e["@removed"]["reason"].clone())
            .collect::<Vec<_>>(),
        [json!("deleted")],
        "{round:?}"
    );
    // The truth (and with it EWS) still has it.
    assert!(
        c.truth(
            ROOM,
            Some("Calendar"),
            single.start,
            single.end + chrono::Duration::seconds(1)
        )
        .unwrap()
        .iter()
        .any(|i| i.goid == single.goid)
    );

    // Unhidden: back in calendarView and in the next delta round.
    let r = http
        .post(control("unhide"))
        .json(&hide)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (again, _, _) = all_pages(&sim, &t, &view_url, &["odata.maxpagesize=50"]).await;
    assert_eq!(view_ids(&again), view_ids(&before));
    let (round, _, _) = all_pages(&sim, &t, &delta.unwrap(), &[]).await;
    assert!(
        round
            .iter()
            .any(|e| e["id"] == single.graph_id.as_str() && e.get("@removed").is_none()),
        "{round:?}"
    );

    // Refusals: another protocol, an unknown event, a malformed body.
    let bad = json!({"mailbox": ROOM, "goid": single.goid, "protocol": "token"});
    let r = http.post(control("hide")).json(&bad).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A meeting of another room is no event of this one.
    let other = c
        .truth(
            "room-1.03@contoso.com",
            Some("Calendar"),
            "2025-06-01T00:00:00Z".parse().unwrap(),
            "2025-06-16T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let other = other
        .iter()
        .find(|i| truth.iter().all(|t| t.goid != i.goid))
        .unwrap();
    let unknown = json!({"mailbox": ROOM, "goid": other.goid, "protocol": "ews"});
    let r = http
        .post(control("hide"))
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http.post(control("hide")).body("{").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(c.hidden_events().is_empty());
    sim.shutdown().await;
}
