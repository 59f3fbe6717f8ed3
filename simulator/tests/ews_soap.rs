//! EWS over HTTP: every operation's response shape, requests with other prefixes and default
//! namespaces, SOAP faults and injected faults, SyncFolderItems after control-API changes,
//! impersonation and delegate access, NTLMv2 and bearer tokens, Autodiscover.
#![allow(clippy::unwrap_used)] // tests may unwrap

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use calpump_simulator::ews::ntlm;
use calpump_simulator::ews::xml::{self, Element};
use calpump_simulator::{Fault, FaultRule, Protocol, SimConfig, Simulator, catalogue};
use reqwest::StatusCode;
use serde_json::{Value, json};

const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const ROOM: &str = "room-1.01@contoso.com";

fn cfg() -> SimConfig {
    SimConfig {
        rooms: 12,
        events_per_room: 32,
        users: 10,
        seed: 9,
        anchor: "2025-06-02T00:00:00Z".parse().ok(),
        ..SimConfig::default()
    }
}

/// An envelope with `s:`/`m:`/`t:` prefixes, Exchange2016, optional impersonation.
fn env(imp: Option<&str>, body: &str) -> String {
    let imp = imp
        .map(|a| format!("<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{a}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion Version="Exchange2016"/>{imp}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

struct Ews {
    sim: Simulator,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn xml(&self) -> Element {
        xml::parse(self.text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

fn all<'a>(el: &'a Element, ns: &str, name: &str, out: &mut Vec<&'a Element>) {
    if el.ns == ns && el.name == name {
        out.push(el);
    }
    for c in &el.children {
        all(c, ns, name, out);
    }
}

fn find<'a>(el: &'a Element, ns: &str, name: &str) -> Vec<&'a Element> {
    let mut v = Vec::new();
    all(el, ns, name, &mut v);
    v
}

fn text(el: &Element, ns: &str, name: &str) -> String {
    find(el, ns, name)
        .first()
        .map(|e| e.text().to_string())
        .unwrap_or_default()
}

impl Ews {
    async fn start() -> Ews {
        Ews {
            sim: Simulator::start(cfg()).await.unwrap(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap(),
        }
    }

    async fn post_as(&self, user: &str, headers: &[(&str, &str)], body: String) -> Answer {
        let mut r = self
            .http
            .post(self.sim.ews_url())
            .basic_auth(user, Some(catalogue::ACCOUNT_PASSWORD))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await.unwrap(),
        }
    }

    async fn post(&self, imp: Option<&str>, body: &str) -> Answer {
        self.post_as(catalogue::SVC_PUMP, &[], env(imp, body)).await
    }

    async fn truth(&self, mailbox: &str, cal: &str, from: &str, to: &str) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!(
                "{}/_sim/truth?mailbox={mailbox}&calendar={cal}&start={from}&end={to}",
                self.sim.base_url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["instances"].as_array().cloned().unwrap_or_default()
    }
}

fn calendar_view(start: &str, end: &str, extra: &str) -> String {
    format!(
        r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="calendar:Start"/><t:FieldURI FieldURI="calendar:End"/><t:FieldURI FieldURI="calendar:CalendarItemType"/><t:FieldURI FieldURI="calendar:Organizer"/></t:AdditionalProperties></m:ItemShape><m:CalendarView {extra} StartDate="{start}" EndDate="{end}"/><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>"#
    )
}

#[tokio::test]
async fn operations_answer_in_the_documented_shapes_whatever_the_prefixes() {
    let e = Ews::start().await;
    let (from, to) = ("2025-06-02T00:00:00Z", "2025-06-09T00:00:00Z");

    // GetFolder with other prefixes (typ:/mes:) and a default namespace for SOAP.
    let body = format!(
        r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:mes="{M}" xmlns:typ="{T}"><Header><typ:RequestServerVersion Version="Exchange2010_SP2"/><typ:ExchangeImpersonation><typ:ConnectingSID><typ:SmtpAddress>{ROOM}</typ:SmtpAddress></typ:ConnectingSID></typ:ExchangeImpersonation></Header><Body><mes:GetFolder><mes:FolderShape><typ:BaseShape>AllProperties</typ:BaseShape></mes:FolderShape><mes:FolderIds><typ:DistinguishedFolderId Id="calendar"/></mes:FolderIds></mes:GetFolder></Body></Envelope>"#
    );
    let a = e.post_as(catalogue::SVC_PUMP, &[], body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let x = a.xml();
    let svi = find(&x, T, "ServerVersionInfo");
    assert_eq!(svi.first().and_then(|s| s.attr("MajorVersion")), Some("15"));
    let msg = find(&x, M, "GetFolderResponseMessage");
    assert_eq!(msg[0].attr("ResponseClass"), Some("Success"));
    assert_eq!(text(&x, M, "ResponseCode"), "NoError");
    let cal = find(&x, T, "CalendarFolder");
    assert_eq!(cal.len(), 1);
    assert_eq!(text(cal[0], T, "DisplayName"), "Calendar");
    assert_eq!(text(cal[0], T, "FolderClass"), "IPF.Appointment");
    assert_eq!(text(cal[0], T, "ChildFolderCount"), "1");
    assert_eq!(text(cal[0], T, "TotalCount"), "32");

    // FindFolder Deep below msgfolderroot, messages in a default namespace.
    let body = format!(
        r#"<FindFolder xmlns="{M}" Traversal="Deep"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></ParentFolderIds></FindFolder>"#
    );
    let x = e.post(Some(ROOM), &body).await.xml();
    let names: Vec<String> = find(&x, T, "DisplayName")
        .iter()
        .map(|d| d.text().to_string())
        .collect();
    assert_eq!(names, vec!["Calendar", "Maintenance"]);
    assert_eq!(
        find(&x, M, "RootFolder")[0].attr("TotalItemsInView"),
        Some("2")
    );

    // FindItem CalendarView: exactly the truth, UTC times, organizer name only.
    let x = e.post(Some(ROOM), &calendar_view(from, to, "")).await.xml();
    let truth = e.truth(ROOM, "Calendar", from, to).await;
    let items = find(&x, T, "CalendarItem");
    assert_eq!(items.len(), truth.len());
    assert_eq!(
        find(&x, M, "RootFolder")[0].attr("TotalItemsInView"),
        Some(truth.len().to_string().as_str())
    );
    for (it, tr) in items.iter().zip(&truth) {
        assert_eq!(
            find(it, T, "Subject")[0].text,
            tr["subject"].as_str().unwrap()
        );
        assert_eq!(text(it, T, "Start"), tr["start"].as_str().unwrap());
        assert!(text(it, T, "End").ends_with('Z'));
        assert!(
            find(it, T, "EmailAddress").is_empty(),
            "FindItem gives the organizer's name only"
        );
        assert_eq!(find(it, T, "ItemId")[0].attr("Id"), tr["ews_id"].as_str());
    }
    // MaxEntriesReturned cuts the view.
    let x = e
        .post(
            Some(ROOM),
            &calendar_view(from, to, r#"MaxEntriesReturned="3""#),
        )
        .await
        .xml();
    assert_eq!(find(&x, T, "CalendarItem").len(), 3);
    assert_eq!(
        find(&x, M, "RootFolder")[0].attr("IncludesLastItemInRange"),
        Some("false")
    );
    // More than two years is refused.
    let x = e
        .post(
            Some(ROOM),
            &calendar_view("2025-01-01T00:00:00Z", "2028-01-01T00:00:00Z", ""),
        )
        .await
        .xml();
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorCalendarViewRangeTooBig");
    assert_eq!(
        find(&x, M, "FindItemResponseMessage")[0].attr("ResponseClass"),
        Some("Error")
    );

    // GetItem: a batch of ids, extended properties for the global object ids, AllProperties.
    let occ = truth.iter().find(|t| t["kind"] == "occurrence").unwrap();
    let single = truth
        .iter()
        .find(|t| t["kind"] == "singleInstance")
        .unwrap();
    let body = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties><t:ExtendedFieldURI PropertySetId="6ED8DA90-450B-101B-98DA-00AA003F1305" PropertyId="35" PropertyType="Binary"/><t:ExtendedFieldURI DistinguishedPropertySetId="Meeting" PropertyId="3" PropertyType="Binary"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{}"/><t:ItemId Id="{}"/><t:ItemId Id="AAMkbogus"/></m:ItemIds></m:GetItem>"#,
        occ["ews_id"].as_str().unwrap(),
        single["ews_id"].as_str().unwrap()
    );
    let x = e.post(Some(ROOM), &body).await.xml();
    let msgs = find(&x, M, "GetItemResponseMessage");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2].attr("ResponseClass"), Some("Error"));
    assert_eq!(text(msgs[2], M, "ResponseCode"), "ErrorInvalidIdMalformed");
    let o = find(msgs[0], T, "CalendarItem")[0];
    assert_eq!(text(o, T, "CalendarItemType"), "Occurrence");
    assert_eq!(text(o, T, "UID"), occ["ews_uid"].as_str().unwrap());
    assert_eq!(
        text(o, T, "RecurrenceId"),
        occ["original_start"].as_str().unwrap()
    );
    assert!(!find(o, T, "RequiredAttendees").is_empty() || !find(o, T, "Resources").is_empty());
    assert_eq!(
        find(o, T, "StartTimeZone")[0].attr("Id"),
        Some(occ["time_zone"].as_str().unwrap())
    );
    let props = find(o, T, "ExtendedProperty");
    assert_eq!(props.len(), 2);
    let clean = STANDARD.decode(text(props[0], T, "Value")).unwrap();
    assert_eq!(hex::encode_upper(&clean), occ["goid"].as_str().unwrap());
    let inst = STANDARD.decode(text(props[1], T, "Value")).unwrap();
    assert_ne!(
        &inst[16..20],
        &[0, 0, 0, 0],
        "PidLidGlobalObjectId of an occurrence carries its date"
    );
    assert_eq!(
        find(props[1], T, "ExtendedFieldURI")[0].attr("DistinguishedPropertySetId"),
        Some("Meeting")
    );

    // The series master: recurrence, modified and deleted occurrences.
    let body = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:RecurringMasterItemId OccurrenceId="{}"/></m:ItemIds></m:GetItem>"#,
        occ["ews_id"].as_str().unwrap()
    );
    let x = e.post(Some(ROOM), &body).await.xml();
    assert_eq!(text(&x, T, "CalendarItemType"), "RecurringMaster");
    assert_eq!(find(&x, T, "Recurrence").len(), 1);
    assert!(!find(&x, T, "FirstOccurrence").is_empty());

    // An Exchange 2007 schema gets MeetingTimeZone instead of StartTimeZone/EndTimeZone.
    let body = env(Some(ROOM), &format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{}"/></m:ItemIds></m:GetItem>"#,
        single["ews_id"].as_str().unwrap()
    ))
    .replace("Exchange2016", "Exchange2007_SP1");
    let x = e.post_as(catalogue::SVC_PUMP, &[], body).await.xml();
    assert_eq!(find(&x, T, "MeetingTimeZone").len(), 1);
    assert!(find(&x, T, "StartTimeZone").is_empty());
    assert!(!text(&x, T, "BaseOffset").is_empty());

    // Indexed paging over the folder's items.
    let mut offset = 0;
    let mut seen = 0;
    loop {
        let body = format!(
            r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="10" Offset="{offset}" BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"><t:Mailbox><t:EmailAddress>{ROOM}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:ParentFolderIds></m:FindItem>"#
        );
        let x = e.post(None, &body).await.xml();
        let rf = find(&x, M, "RootFolder")[0].clone();
        seen += find(&x, T, "CalendarItem").len();
        offset = rf.attr("IndexedPagingOffset").unwrap().parse().unwrap();
        if rf.attr("IncludesLastItemInRange") == Some("true") {
            assert_eq!(rf.attr("TotalItemsInView"), Some("32"));
            break;
        }
    }
    assert_eq!(seen, 32);

    // Rooms, names, ids.
    let x = e.post(None, "<m:GetRoomLists/>").await.xml();
    assert_eq!(
        find(&x, M, "GetRoomListsResponse")[0].attr("ResponseClass"),
        Some("Success")
    );
    assert_eq!(text(&x, T, "EmailAddress"), "building-1@contoso.com");
    assert_eq!(text(&x, T, "MailboxType"), "PublicDL");
    let x = e
        .post(None, "<m:GetRooms><m:RoomList><t:EmailAddress>building-1@contoso.com</t:EmailAddress></m:RoomList></m:GetRooms>")
        .await
        .xml();
    assert_eq!(find(&x, T, "Room").len(), 12);
    let x = e
        .post(None, "<m:GetRooms><m:RoomList><t:EmailAddress>nope@contoso.com</t:EmailAddress></m:RoomList></m:GetRooms>")
        .await
        .xml();
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorNameResolutionNoResults");
    let x = e
        .post(None, &format!(r#"<m:ResolveNames ReturnFullContactData="true"><m:UnresolvedEntry>{ROOM}</m:UnresolvedEntry></m:ResolveNames>"#))
        .await
        .xml();
    assert_eq!(
        find(&x, M, "ResolveNamesResponseMessage")[0].attr("ResponseClass"),
        Some("Success")
    );
    assert_eq!(text(&x, T, "DisplayName"), "Room 1.01");
    assert_eq!(text(&x, T, "ContactSource"), "ActiveDirectory");
    let x = e
        .post(None, r#"<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>room-1.0</m:UnresolvedEntry></m:ResolveNames>"#)
        .await
        .xml();
    assert_eq!(
        find(&x, M, "ResolveNamesResponseMessage")[0].attr("ResponseClass"),
        Some("Warning")
    );
    assert_eq!(
        text(&x, M, "ResponseCode"),
        "ErrorNameResolutionMultipleResults"
    );
    assert_eq!(find(&x, T, "Resolution").len(), 9);
    let body = format!(
        r#"<m:ConvertId DestinationFormat="EwsImmutableId"><m:SourceIds><t:AlternateId Format="EwsId" Id="{}" Mailbox="{ROOM}"/></m:SourceIds></m:ConvertId>"#,
        single["ews_id"].as_str().unwrap()
    );
    let x = e.post(None, &body).await.xml();
    let alt = find(&x, M, "AlternateId");
    assert_eq!(alt[0].attr("Format"), Some("EwsImmutableId"));
    assert_ne!(alt[0].attr("Id"), single["ews_id"].as_str());
    e.sim.shutdown().await;
}

#[tokio::test]
async fn soap_faults_and_injected_faults_look_like_exchange() {
    let e = Ews::start().await;
    let c = e.sim.control();
    // Not XML: ErrorSchemaValidation with a position.
    let a = e
        .post_as(catalogue::SVC_PUMP, &[], "<s:Envelope".into())
        .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        a.text.contains("a:ErrorSchemaValidation") && a.text.contains("<t:LineNumber>"),
        "{}",
        a.text
    );
    // An unknown schema version.
    let a = e
        .post_as(
            catalogue::SVC_PUMP,
            &[],
            env(None, "<m:GetRoomLists/>").replace("Exchange2016", "Exchange2099"),
        )
        .await;
    assert!(a.text.contains("ErrorInvalidServerVersion"));
    let find_item = calendar_view("2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z", "");
    // ErrorServerBusy as a SOAP fault with BackOffMilliseconds...
    c.add_fault(
        FaultRule::new(Fault::EwsServerBusy {
            back_off_ms: 1234,
            in_body: false,
        })
        .protocol(Protocol::Ews)
        .count(1),
    );
    let a = e.post(Some(ROOM), &find_item).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let x = a.xml();
    assert_eq!(text(&x, "", "faultcode"), "a:ErrorServerBusy");
    let v = find(&x, T, "Value");
    assert_eq!(
        (v[0].attr("Name"), v[0].text()),
        (Some("BackOffMilliseconds"), "1234")
    );
    // ... and inside a 200 body.
    c.add_fault(
        FaultRule::new(Fault::EwsServerBusy {
            back_off_ms: 5000,
            in_body: true,
        })
        .mailbox(ROOM)
        .operation("FindItem")
        .count(1),
    );
    let a = e.post(Some(ROOM), &find_item).await;
    assert_eq!(a.status, StatusCode::OK);
    let x = a.xml();
    assert_eq!(
        find(&x, M, "FindItemResponseMessage")[0].attr("ResponseClass"),
        Some("Error")
    );
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorServerBusy");
    assert_eq!(
        text(&find(&x, M, "MessageXml")[0].clone(), T, "Value"),
        "5000"
    );
    // ErrorExceededConnectionCount, throttling, body faults.
    c.add_fault(FaultRule::new(Fault::EwsExceededConnectionCount).count(1));
    assert!(
        e.post(None, "<m:GetRoomLists/>")
            .await
            .text
            .contains("a:ErrorExceededConnectionCount")
    );
    c.add_fault(
        FaultRule::new(Fault::Throttle {
            status: 503,
            retry_after: Some(7),
        })
        .count(1),
    );
    let a = e.post(None, "<m:GetRoomLists/>").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    c.add_fault(FaultRule::new(Fault::HtmlLoginPage).count(1));
    let a = e.post(None, "<m:GetRoomLists/>").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.text.contains("<html>") && !a.text.contains("Envelope"));
    c.add_fault(FaultRule::new(Fault::TruncatedBody).count(1));
    let a = e.post(None, "<m:GetRoomLists/>").await;
    assert!(xml::parse(a.text.as_bytes()).is_err());
    // Malformed body: the real status and headers, bytes that are neither XML nor UTF-8.
    c.add_fault(FaultRule::new(Fault::MalformedBody).count(1));
    let r = e
        .http
        .post(e.sim.ews_url())
        .basic_auth(catalogue::SVC_PUMP, Some(catalogue::ACCOUNT_PASSWORD))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(env(None, "<m:GetRoomLists/>"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let bytes = r.bytes().await.unwrap();
    assert!(!bytes.is_empty());
    assert!(std::str::from_utf8(&bytes).is_err());
    assert!(xml::parse(&bytes).is_err());
    c.add_fault(FaultRule::new(Fault::ServerError { status: 500 }).count(1));
    assert!(
        e.post(None, "<m:GetRoomLists/>")
            .await
            .text
            .contains("ErrorInternalServerError")
    );
    // The EWS concurrency limit: a limit of 0 refuses everything.
    c.set_concurrency_limit(Protocol::Ews, Some(0));
    let a = e.post(None, "<m:GetRoomLists/>").await;
    assert!(a.text.contains("a:ErrorExceededConnectionCount") && a.text.contains("MaxConcurrency"));
    c.set_concurrency_limit(Protocol::Ews, None);
    assert!(
        e.post(None, "<m:GetRoomLists/>")
            .await
            .text
            .contains("NoError")
    );
    // Every request was counted.
    assert!(c.stats().operation(Protocol::Ews, "GetRoomLists") >= 7);
    e.sim.shutdown().await;
}

fn sync_req(state: Option<&str>, max: u32) -> String {
    let st = state
        .map(|s| format!("<m:SyncState>{s}</m:SyncState>"))
        .unwrap_or_default();
    format!(
        r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="calendar"/></m:SyncFolderId>{st}<m:MaxChangesReturned>{max}</m:MaxChangesReturned></m:SyncFolderItems>"#
    )
}

#[tokio::test]
async fn sync_folder_items_reports_control_api_changes() {
    let e = Ews::start().await;
    let c = e.sim.control();
    // The initial sync, 10 changes at a time.
    let mut state: Option<String> = None;
    let mut creates = 0;
    let mut calls = 0;
    loop {
        let x = e
            .post(Some(ROOM), &sync_req(state.as_deref(), 10))
            .await
            .xml();
        calls += 1;
        creates += find(&x, T, "Create").len();
        assert!(find(&x, T, "Create").len() <= 10);
        state = Some(text(&x, M, "SyncState"));
        if text(&x, M, "IncludesLastItemInRange") == "true" {
            break;
        }
    }
    assert_eq!((creates, calls), (32, 4));
    // Nothing changed: nothing to report.
    let x = e
        .post(Some(ROOM), &sync_req(state.as_deref(), 10))
        .await
        .xml();
    assert!(find(&x, T, "Create").is_empty() && find(&x, T, "Update").is_empty());
    state = Some(text(&x, M, "SyncState"));
    // Changes through the control API.
    let (from, to) = e.sim.window();
    let truth = c.truth(ROOM, Some("Calendar"), from, to).unwrap();
    let series = truth
        .iter()
        .find(|t| t.original_start.is_some())
        .unwrap()
        .clone();
    let single = truth
        .iter()
        .find(|t| t.original_start.is_none() && t.goid != series.goid)
        .unwrap()
        .clone();
    let created = c
        .create_event(
            ROOM,
            &calpump_simulator::NewEvent {
                subject: "Fresh".into(),
                start: Some(from + chrono::Duration::hours(30)),
                end: Some(from + chrono::Duration::hours(31)),
                ..Default::default()
            },
        )
        .unwrap();
    c.cancel_occurrence(ROOM, &series.goid, series.original_start.unwrap())
        .unwrap();
    c.delete_event(ROOM, &single.goid).unwrap();
    let x = e
        .post(Some(ROOM), &sync_req(state.as_deref(), 512))
        .await
        .xml();
    let creates = find(&x, T, "Create");
    let updates = find(&x, T, "Update");
    let deletes = find(&x, T, "Delete");
    assert_eq!(
        (creates.len(), updates.len(), deletes.len()),
        (1, 1, 1),
        "{x:?}"
    );
    assert_eq!(text(creates[0], T, "Subject"), "Fresh");
    assert_eq!(text(updates[0], T, "CalendarItemType"), "RecurringMaster");
    assert_eq!(
        find(deletes[0], T, "ItemId")[0].attr("Id"),
        Some(single.ews_id.as_str())
    );
    let _ = created;
    // A state this server never handed out.
    let x = e
        .post(Some(ROOM), &sync_req(Some("Q1BTMQAAAA=="), 10))
        .await
        .xml();
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorInvalidSyncStateData");
    // ... and the injected one.
    c.add_fault(
        FaultRule::new(Fault::EwsInvalidSyncState)
            .operation("SyncFolderItems")
            .count(1),
    );
    let x = e
        .post(Some(ROOM), &sync_req(state.as_deref(), 10))
        .await
        .xml();
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorInvalidSyncStateData");
    e.sim.shutdown().await;
}

#[tokio::test]
async fn impersonation_and_delegate_access_are_checked_against_rights() {
    let e = Ews::start().await;
    let get_cal = |mailbox: Option<&str>| {
        let mb = mailbox
            .map(|m| format!("<t:Mailbox><t:EmailAddress>{m}</t:EmailAddress></t:Mailbox>"))
            .unwrap_or_default();
        format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="calendar">{mb}</t:DistinguishedFolderId></m:FolderIds></m:GetFolder>"#
        )
    };
    // No ApplicationImpersonation role: a SOAP fault.
    let a = e
        .post_as(catalogue::SVC_NOIMP, &[], env(Some(ROOM), &get_cal(None)))
        .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        a.text.contains("a:ErrorImpersonateUserDenied"),
        "{}",
        a.text
    );
    // Unknown address.
    let a = e
        .post_as(
            catalogue::SVC_PUMP,
            &[],
            env(Some("ghost@contoso.com"), &get_cal(None)),
        )
        .await;
    assert!(a.text.contains("a:ErrorNonExistentMailbox"));
    // Delegate access without rights: per message ErrorAccessDenied.
    let a = e
        .post_as(catalogue::SVC_NOIMP, &[], env(None, &get_cal(Some(ROOM))))
        .await;
    let x = a.xml();
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorAccessDenied");
    // Its own calendar is fine; with rights, the room's too; X-AnchorMailbox is recorded.
    assert!(
        e.post_as(catalogue::SVC_NOIMP, &[], env(None, &get_cal(None)))
            .await
            .text
            .contains("NoError")
    );
    let a = e
        .post_as(
            catalogue::SVC_PUMP,
            &[("X-AnchorMailbox", ROOM)],
            env(None, &get_cal(Some(ROOM))),
        )
        .await;
    assert!(a.text.contains("NoError"), "{}", a.text);
    let log = calpump_simulator::ews::settings(e.sim.control()).requests();
    let last = log.last().unwrap();
    assert_eq!(
        (last.anchor_mailbox.as_deref(), last.mailbox.as_deref()),
        (Some(ROOM), Some(ROOM))
    );
    // Revoking the role at run time takes effect.
    e.sim
        .control()
        .update_account(catalogue::SVC_PUMP, |a| a.impersonation = false);
    let a = e.post(Some(ROOM), &get_cal(None)).await;
    assert!(a.text.contains("ErrorImpersonateUserDenied"));
    e.sim.shutdown().await;
}

#[tokio::test]
async fn ntlmv2_and_basic_are_checked_and_401_offers_every_scheme() {
    let e = Ews::start().await;
    let url = e.sim.ews_url();
    let body = env(None, "<m:GetRoomLists/>");
    // No credentials: the schemes IIS offers.
    let r = e.http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let offered: Vec<String> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(offered.iter().any(|v| v == "NTLM"));
    assert!(offered.iter().any(|v| v == "Negotiate"));
    assert!(offered.iter().any(|v| v.starts_with("Basic realm=")));
    assert!(offered.iter().any(|v| v.starts_with("Bearer ")));
    // Wrong Basic password.
    let r = e
        .http
        .post(&url)
        .basic_auth(catalogue::SVC_PUMP, Some("nope"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // NTLMv2 on one connection: negotiate, challenge, authenticate.
    async fn handshake(e: &Ews, url: &str, body: &str, password: &str) -> (StatusCode, String) {
        let neg = ntlm::client::negotiate();
        let r = e
            .http
            .post(url)
            .header("Authorization", format!("NTLM {}", STANDARD.encode(&neg)))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let ch = r
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let _ = r.bytes().await;
        let ch = STANDARD.decode(ch.strip_prefix("NTLM ").unwrap()).unwrap();
        let auth =
            ntlm::client::authenticate(&neg, &ch, "svc-pump", "CONTOSO", password, [3; 8]).unwrap();
        let r = e
            .http
            .post(url)
            .header("Authorization", format!("NTLM {}", STANDARD.encode(&auth)))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
    let (status, text) = handshake(&e, &url, &body, catalogue::ACCOUNT_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("NoError"));
    // The connection stays authenticated, as with IIS.
    let r = e.http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let _ = r.bytes().await;
    // A wrong password fails the NTLMv2 proof.
    let fresh = Ews {
        sim: Simulator::start(cfg()).await.unwrap(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap(),
    };
    let (status, _) = handshake(&fresh, &fresh.sim.ews_url(), &body, "Wrong-Password1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    fresh.sim.shutdown().await;
    e.sim.shutdown().await;
}

async fn token(sim: &Simulator, client_id: &str, secret: &str, scope: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

#[tokio::test]
async fn oauth_app_only_tokens_need_impersonation() {
    let e = Ews::start().await;
    let tok = token(
        &e.sim,
        catalogue::EWS_APP_ID,
        catalogue::EWS_APP_SECRET,
        "https://outlook.office365.com/.default",
    )
    .await;
    let send = |imp: Option<&str>, tok: &str, anchor: Option<&str>| {
        let mut r = e.http.post(e.sim.ews_url()).bearer_auth(tok).body(env(
            imp,
            &calendar_view("2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z", ""),
        ));
        if let Some(a) = anchor {
            r = r.header("X-AnchorMailbox", a);
        }
        r.send()
    };
    let r = send(Some(ROOM), &tok, Some(ROOM)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("NoError"));
    let r = send(None, &tok, None).await.unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("ErrorInvalidExchangeImpersonationHeaderData")
    );
    // A Graph token is for another audience.
    let graph = token(
        &e.sim,
        catalogue::GRAPH_APP_ID,
        catalogue::GRAPH_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await;
    let r = send(Some(ROOM), &graph, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()
            .get("x-ms-diagnostics")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("2000003")
    );
    let log = calpump_simulator::ews::settings(e.sim.control()).requests();
    assert!(
        log.iter()
            .any(|r| r.auth == "bearer" && r.principal == format!("app:{}", catalogue::EWS_APP_ID))
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn autodiscover_pox_and_soap_point_at_this_ews_and_can_redirect() {
    let e = Ews::start().await;
    let base = e.sim.base_url().to_string();
    let pox = |addr: &str| {
        format!(
            r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>{addr}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#
        )
    };
    let post = |path: &str, body: String| {
        e.http
            .post(format!("{base}{path}"))
            .basic_auth(catalogue::SVC_PUMP, Some(catalogue::ACCOUNT_PASSWORD))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
    };
    const R: &str =
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
    let x = xml::parse(
        post("/autodiscover/autodiscover.xml", pox(ROOM))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let protos = find(&x, R, "Protocol");
    assert_eq!(protos.len(), 2);
    assert_eq!(text(protos[0], R, "Type"), "EXCH");
    assert_eq!(text(protos[0], R, "EwsUrl"), e.sim.ews_url());
    assert_eq!(text(protos[1], R, "Type"), "EXPR");
    let t = post("/autodiscover/autodiscover.xml", pox("ghost@contoso.com"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(t.contains("<ErrorCode>500</ErrorCode>"));
    // Redirect switched on through the control API.
    let r = e
        .http
        .put(format!("{base}/_sim/ews/settings"))
        .json(&json!({"autodiscover_redirect": {"mailbox": ROOM, "kind": "addr", "target": "room@fabrikam.example"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let x = xml::parse(
        post("/autodiscover/autodiscover.xml", pox(ROOM))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(text(&x, R, "Action"), "redirectAddr");
    assert_eq!(text(&x, R, "RedirectAddr"), "room@fabrikam.example");
    // SOAP GetUserSettings: settings per user, InvalidUser for unknown addresses.
    let soap = |user: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>{user}</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>UserDisplayName</a:Setting><a:Setting>ExternalPop3Connections</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>"#
        )
    };
    const A: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
    let x = xml::parse(
        post(
            "/autodiscover/autodiscover.svc",
            soap("room-1.02@contoso.com"),
        )
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .as_bytes(),
    )
    .unwrap();
    let vals: Vec<String> = find(&x, A, "Value")
        .iter()
        .map(|v| v.text().to_string())
        .collect();
    assert_eq!(vals, vec![e.sim.ews_url(), "Room 1.02".to_string()]);
    assert_eq!(text(&x, A, "SettingName"), "ExternalPop3Connections");
    let x = xml::parse(
        post("/autodiscover/autodiscover.svc", soap("ghost@contoso.com"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(find(&x, A, "ErrorCode")[1].text(), "InvalidUser");
    // Without credentials: 401.
    let r = e
        .http
        .post(format!("{base}/autodiscover/autodiscover.xml"))
        .body(pox(ROOM))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        e.sim
            .control()
            .stats()
            .operation(Protocol::Autodiscover, "Autodiscover")
            >= 3
    );
    e.sim.shutdown().await;
}

/// All-day items are stored at midnight of their creator's zone: EWS returns that UTC instant
/// (22:00Z the day before for Berlin in summer) and names the zone in `StartTimeZone`.
#[tokio::test]
async fn all_day_items_are_local_midnight_with_their_zone() {
    let e = Ews::start().await;
    let (from, to) = ("2025-06-01T00:00:00Z", "2025-06-16T00:00:00Z");
    let truth = e.truth(ROOM, "Calendar", from, to).await;
    let all_day: Vec<&Value> = truth.iter().filter(|t| t["is_all_day"] == true).collect();
    assert!(!all_day.is_empty());
    let mut ids = String::new();
    for t in &all_day {
        // room-1.01 is in Building 1 (W. Europe Standard Time, summer: UTC+2).
        assert_eq!(t["time_zone"], "W. Europe Standard Time");
        assert!(t["start"].as_str().unwrap().ends_with("T22:00:00Z"), "{t}");
        let dates = &t["all_day_dates"];
        let start: chrono::DateTime<chrono::Utc> = t["start"].as_str().unwrap().parse().unwrap();
        let local_date = (start + chrono::Duration::hours(2)).date_naive();
        assert_eq!(dates["start"], local_date.to_string());
        ids.push_str(&format!(
            r#"<t:ItemId Id="{}"/>"#,
            t["ews_id"].as_str().unwrap()
        ));
    }
    let body = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>"#
    );
    let x = e.post(Some(ROOM), &body).await.xml();
    let items = find(&x, T, "CalendarItem");
    assert_eq!(items.len(), all_day.len());
    for (it, t) in items.iter().zip(&all_day) {
        assert_eq!(text(it, T, "IsAllDayEvent"), "true");
        assert_eq!(text(it, T, "Start"), t["start"].as_str().unwrap());
        assert_eq!(text(it, T, "End"), t["end"].as_str().unwrap());
        assert_eq!(
            find(it, T, "StartTimeZone")[0].attr("Id"),
            Some("W. Europe Standard Time")
        );
    }
    e.sim.shutdown().await;
}

/// `ews_disabled`: what Exchange Online answers when EWS is blocked for the tenant, the app or
/// the mailbox — 403 with an empty body and a `request-id`, no SOAP, on EWS and Autodiscover;
/// credentials are checked first; a rule for one mailbox blocks only that mailbox.
#[tokio::test]
async fn ews_disabled_answers_403_without_soap_after_authentication() {
    let e = Ews::start().await;
    let base = e.sim.base_url().to_string();
    let get_cal = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>"#;
    // Over the HTTP control API, for EWS only.
    let r = e
        .http
        .post(format!("{base}/_sim/faults"))
        .json(&json!({"protocol": "ews", "fault": {"kind": "ews_disabled"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let rule: Value = r.json().await.unwrap();
    let a = e.post(Some(ROOM), get_cal).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.text.is_empty(), "{}", a.text);
    assert!(a.headers.get("request-id").is_some());
    assert!(a.headers.get("x-ms-diagnostics").is_none());
    // An envelope that does not parse is refused the same way.
    let a = e
        .post_as(catalogue::SVC_PUMP, &[], "not xml".to_string())
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // A wrong password is still a 401: the block applies to authenticated callers.
    let r = e
        .http
        .post(e.sim.ews_url())
        .basic_auth(catalogue::SVC_PUMP, Some("wrong"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(env(Some(ROOM), get_cal))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Autodiscover is not covered by a rule for `ews`.
    let soap_ad = |addr: &str| {
        format!(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover"><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>{addr}</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>"#
        )
    };
    let autodiscover = || {
        e.http
            .post(format!("{base}/autodiscover/autodiscover.svc"))
            .basic_auth(catalogue::SVC_PUMP, Some(catalogue::ACCOUNT_PASSWORD))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(soap_ad(ROOM))
            .send()
    };
    assert_eq!(autodiscover().await.unwrap().status(), StatusCode::OK);
    let id = rule["id"].as_u64().unwrap();
    e.sim.control().remove_fault(id);
    assert_eq!(e.post(Some(ROOM), get_cal).await.status, StatusCode::OK);

    // Autodiscover blocked too.
    let c = e.sim.control();
    c.add_fault(FaultRule::new(Fault::EwsDisabled).protocol(Protocol::Autodiscover));
    let r = autodiscover().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().is_empty());
    c.clear_faults();

    // One mailbox (`Set-CASMailbox -EwsEnabled $false`): the others still answer.
    c.add_fault(
        FaultRule::new(Fault::EwsDisabled)
            .protocol(Protocol::Ews)
            .mailbox(ROOM),
    );
    assert_eq!(
        e.post(Some(ROOM), get_cal).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.post(Some("room-1.02@contoso.com"), get_cal).await.status,
        StatusCode::OK
    );
    e.sim.shutdown().await;
}

/// `Control::hide_event(…, Protocol::Ews)` takes one event out of EWS's answers (FindItem,
/// GetItem, the calendar's TotalCount, SyncFolderItems), reports it deleted to a sync in
/// progress and created again after `unhide_event`; Graph keeps showing it.
#[tokio::test]
async fn an_event_hidden_from_ews_is_gone_from_ews_only() {
    let e = Ews::start().await;
    let c = e.sim.control();
    let (from, to) = ("2025-06-02T00:00:00Z", "2025-06-09T00:00:00Z");
    let truth = e.truth(ROOM, "Calendar", from, to).await;
    let single = truth
        .iter()
        .find(|i| i["original_start"].is_null() && i["is_all_day"] == false)
        .unwrap()
        .clone();
    let (goid, ews_id, graph_id) = (
        single["goid"].as_str().unwrap(),
        single["ews_id"].as_str().unwrap(),
        single["graph_id"].as_str().unwrap(),
    );
    let view = || calendar_view(from, to, "");
    let ids = |x: &Element| -> Vec<String> {
        find(x, T, "ItemId")
            .iter()
            .filter_map(|i| i.attr("Id").map(str::to_string))
            .collect()
    };
    let get_item = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{ews_id}"/></m:ItemIds></m:GetItem>"#
    );
    let get_cal = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>"#;
    let before = e.post(Some(ROOM), &view()).await.xml();
    assert!(ids(&before).contains(&ews_id.to_string()));
    let count = |x: &Element| text(x, T, "TotalCount").parse::<usize>().unwrap();
    let total = count(&e.post(Some(ROOM), get_cal).await.xml());
    // A sync point before the event disappears.
    let mut state = None;
    loop {
        let x = e
            .post(Some(ROOM), &sync_req(state.as_deref(), 512))
            .await
            .xml();
        state = Some(text(&x, M, "SyncState"));
        if text(&x, M, "IncludesLastItemInRange") == "true" {
            break;
        }
    }

    c.hide_event(ROOM, goid, Protocol::Ews).unwrap();
    let after = e.post(Some(ROOM), &view()).await.xml();
    assert_eq!(ids(&after).len(), ids(&before).len() - 1);
    assert!(!ids(&after).contains(&ews_id.to_string()));
    let x = e.post(Some(ROOM), &get_item).await.xml();
    assert_eq!(text(&x, M, "ResponseCode"), "ErrorItemNotFound");
    assert_eq!(count(&e.post(Some(ROOM), get_cal).await.xml()), total - 1);
    // The sync in progress is told it was deleted; a new one never sees it.
    let x = e
        .post(Some(ROOM), &sync_req(state.as_deref(), 512))
        .await
        .xml();
    let deletes = find(&x, T, "Delete");
    assert_eq!(
        deletes.len(),
        1,
        "{}",
        e.post(Some(ROOM), &view()).await.text
    );
    assert_eq!(find(deletes[0], T, "ItemId")[0].attr("Id"), Some(ews_id));
    assert!(find(&x, T, "Create").is_empty() && find(&x, T, "Update").is_empty());
    let state = Some(text(&x, M, "SyncState"));
    let x = e.post(Some(ROOM), &sync_req(None, 512)).await.xml();
    assert!(!ids(&x).contains(&ews_id.to_string()));
    // Graph still shows it.
    let tok = token(
        &e.sim,
        catalogue::GRAPH_APP_ID,
        catalogue::GRAPH_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await;
    let r = reqwest::Client::new()
        .get(format!(
            "{}/users/{ROOM}/events/{graph_id}",
            e.sim.graph_url()
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(c.hidden_events().len(), 1);
    assert_eq!(c.hidden_events()[0].protocol, Protocol::Ews);

    // Shown again: in the view and in the sync in progress.
    c.unhide_event(ROOM, goid, Protocol::Ews).unwrap();
    assert_eq!(ids(&e.post(Some(ROOM), &view()).await.xml()), ids(&before));
    let x = e
        .post(Some(ROOM), &sync_req(state.as_deref(), 512))
        .await
        .xml();
    let back: Vec<&Element> = find(&x, T, "Update")
        .into_iter()
        .chain(find(&x, T, "Create"))
        .collect();
    assert_eq!(back.len(), 1);
    assert_eq!(find(back[0], T, "ItemId")[0].attr("Id"), Some(ews_id));
    assert!(c.hidden_events().is_empty());
    e.sim.shutdown().await;
}
