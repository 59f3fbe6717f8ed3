//! Parse tests on response shapes from Microsoft's EWS documentation (fixtures name their page),
//! as documented, with other prefixes, and with default namespaces.

use calpump_ews::convert::{SkipReason, to_event};
use calpump_ews::ops::{self, TimeZoneDef};
use calpump_ews::soap::{self, Outcome, ResponseClass};
use calpump_ews::xml::{self, Element, Node};
use calpump_plugin::{AttendeeKind, EventKind, ResponseStatus, Sensitivity, ShowAs};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(text: &str) -> Element {
    xml::parse(text.as_bytes()).expect("well-formed")
}

fn body_of<'a>(root: &'a Element) -> Node<'a> {
    match soap::read_envelope(root).expect("envelope").outcome {
        Outcome::Body(body) => body,
        Outcome::Fault(f) => panic!("unexpected fault {f:?}"),
    }
}

/// The same document with every prefix renamed: the parser must not care.
fn other_prefixes(text: &str) -> String {
    let mut out = text.to_string();
    for (from, to) in [("s", "env"), ("soap", "env2"), ("m", "msg"), ("t", "typ"), ("h", "hdr")] {
        out = out
            .replace(&format!("<{from}:"), &format!("<{to}:"))
            .replace(&format!("</{from}:"), &format!("</{to}:"))
            .replace(&format!("xmlns:{from}="), &format!("xmlns:{to}="));
    }
    out
}

const NONE: &(dyn Fn(&TimeZoneDef) -> Option<String> + Send + Sync) = &|_| None;

#[test]
fn getitem_all_properties_with_default_namespace() {
    // GetItemResponse declares the messages namespace as default (as documented).
    for text in [fixture("getitem-allproperties.xml"), other_prefixes(&fixture("getitem-allproperties.xml"))] {
        let root = parse(&text);
        let env = soap::read_envelope(&root).expect("envelope");
        assert_eq!(env.server_version.expect("version").major, Some(8));
        let Outcome::Body(body) = env.outcome else { panic!("fault") };
        let messages = soap::response_messages(&body, "GetItemResponse").expect("messages");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].class, ResponseClass::Success);
        let items = ops::read_get_item(&messages[0]).expect("items");
        // ConflictingMeetings holds nested CalendarItems: they are not items of the answer.
        assert_eq!(items.len(), 1);
        let it = &items[0];
        assert_eq!(it.id, "ASUAdT");
        assert_eq!(it.change_key.as_deref(), Some("otlIqB=="));
        assert_eq!(it.sensitivity.as_deref(), Some("Normal"));
        assert_eq!(it.is_all_day, Some(false));
        assert_eq!(it.is_cancelled, Some(false));
        assert_eq!(it.item_type.as_deref(), Some("Single"));
        assert_eq!(it.free_busy.as_deref(), Some("Busy"));
        assert_eq!(it.start.expect("start").to_rfc3339(), "2006-06-16T00:30:00+00:00");
        let org = it.organizer.as_ref().expect("organizer");
        assert_eq!(org.name.as_deref(), Some("Bob"));
        assert_eq!(org.email.as_deref(), Some("someone@example.com"));
        // No global object id in the sample: skipped, never keyed by invention.
        assert!(matches!(
            to_event(it, "room@contoso.com", "default", NONE),
            Err(SkipReason::NoGlobalObjectId { .. })
        ));
    }
}

#[test]
fn calendar_view_page_as_documented_and_respelled() {
    let documented = fixture("finditem-calendarview.xml");
    // The same answer with every element in a default namespace, no prefixes at all.
    let defaults = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/">
  <Header><ServerVersionInfo xmlns="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="20"/></Header>
  <Body>
    <FindItemResponse xmlns="http://schemas.microsoft.com/exchange/services/2006/messages">
      <ResponseMessages>
        <FindItemResponseMessage ResponseClass="Success">
          <ResponseCode>NoError</ResponseCode>
          <RootFolder TotalItemsInView="33" IncludesLastItemInRange="false">
            <Items xmlns="http://schemas.microsoft.com/exchange/services/2006/types">
              <CalendarItem><ItemId Id="AAMk" ChangeKey="DwAA"/><Subject>Contoso devs team meeting</Subject><Start>2013-08-21T19:30:00Z</Start><End>2013-08-21T20:00:00Z</End></CalendarItem>
              <CalendarItem><ItemId Id="AAMk" ChangeKey="DwAA"/><Start>2013-08-21T20:00:00Z</Start></CalendarItem>
              <CalendarItem><ItemId Id="AAMk" ChangeKey="DwAA"/><Start>2013-08-21T21:30:00Z</Start></CalendarItem>
              <CalendarItem><ItemId Id="AAMk" ChangeKey="DwAA"/><Start>2013-08-22T18:00:00Z</Start></CalendarItem>
              <CalendarItem><ItemId Id="AAMkA" ChangeKey="DwAA"/><Start>2013-08-22T21:00:00Z</Start></CalendarItem>
            </Items>
          </RootFolder>
        </FindItemResponseMessage>
      </ResponseMessages>
    </FindItemResponse>
  </Body>
</Envelope>"#;
    for text in [documented.clone(), other_prefixes(&documented), defaults.to_string()] {
        let root = parse(&text);
        let body = body_of(&root);
        let messages = soap::response_messages(&body, "FindItemResponse").expect("messages");
        let page = ops::read_find_item(&messages[0]).expect("page");
        assert!(!page.includes_last, "IncludesLastItemInRange=false must be seen");
        assert_eq!(page.total_in_view, Some(33));
        assert_eq!(page.items.len(), 5);
        assert_eq!(page.items[4].id, "AAMkA");
        assert_eq!(
            page.items[0].start.expect("start").to_rfc3339(),
            "2013-08-21T19:30:00+00:00"
        );
    }
}

#[test]
fn wrong_namespace_is_not_accepted_as_ews() {
    // Same local names, another namespace: not an EWS answer.
    let text = fixture("finditem-calendarview.xml").replace(
        "http://schemas.microsoft.com/exchange/services/2006/messages",
        "http://example.com/not-ews",
    );
    let root = parse(&text);
    let body = body_of(&root);
    let err = soap::response_messages(&body, "FindItemResponse").expect_err("foreign");
    assert!(err.to_string().contains("FindItemResponse"), "{err}");
}

#[test]
fn recurring_master_with_recurrence() {
    let root = parse(&fixture("getitem-recurring-master.xml"));
    let body = body_of(&root);
    let messages = soap::response_messages(&body, "GetItemResponse").expect("messages");
    let items = ops::read_get_item(&messages[0]).expect("items");
    let it = &items[0];
    assert_eq!(it.item_type.as_deref(), Some("RecurringMaster"));
    let rec = it.recurrence.as_ref().expect("recurrence");
    assert_eq!(rec.pattern, "WeeklyRecurrence");
    assert_eq!(rec.interval, Some(1));
    assert_eq!(rec.days_of_week.as_deref(), Some("Saturday"));
    assert_eq!(rec.range, "NumberedRecurrence");
    assert_eq!(rec.number_of_occurrences, Some(10));
    assert_eq!(rec.start_date.as_deref(), Some("2014-03-08-08:00"));
    // A master is never an event: calendar views list its instances.
    assert!(matches!(
        to_event(it, "room@contoso.com", "default", NONE),
        Err(SkipReason::Master { .. })
    ));
}

#[test]
fn meeting_with_attendees_recurrence_and_time_zone_definition() {
    let text = fixture("getitem-meeting-recurrence-attendees-timezone.xml");
    for text in [text.clone(), other_prefixes(&text)] {
        let root = parse(&text);
        let body = body_of(&root);
        let messages = soap::response_messages(&body, "GetItemResponse").expect("messages");
        let mut items = ops::read_get_item(&messages[0]).expect("items");
        let it = &mut items[0];
        assert_eq!(it.required.len(), 3);
        assert_eq!(it.required[1].mailbox.email.as_deref(), Some("Sadie@contoso.com"));
        assert_eq!(it.required[1].response.as_deref(), Some("Unknown"));
        let tz = it.start_time_zone.clone().expect("zone");
        assert_eq!(tz.id.as_deref(), Some("Eastern Standard Time"));
        // Bias PT5H of the Standard period: UTC−5.
        assert_eq!(tz.standard_offset_minutes, Some(-300));
        assert!(it.recurrence.is_some());
        assert_eq!(it.categories, vec!["Blue category", "Project"]);
        assert_eq!(it.join_url.as_deref(), Some("https://meet.example.com/join/123"));
        assert!(it.clean_goid.is_some());
        // As an instance (the fixture's master made an exception for the mapping test).
        it.item_type = Some("Exception".into());
        it.original_start = it.start;
        let zones = |tz: &TimeZoneDef| {
            (tz.id.as_deref() == Some("Eastern Standard Time")).then(|| "America/New_York".to_string())
        };
        let e = to_event(it, "room@contoso.com", "Maintenance", &zones).expect("event");
        assert_eq!(e.kind, EventKind::Exception);
        assert_eq!(e.calendar, "Maintenance");
        assert_eq!(e.subject, "Weekly Update Meeting");
        assert_eq!(e.sensitivity, Sensitivity::Private);
        assert_eq!(e.show_as, ShowAs::Tentative);
        assert_eq!(e.time_zone.as_deref(), Some("America/New_York"));
        assert_eq!(e.location.as_deref(), Some("Conference Room 2"));
        assert_eq!(e.attendees.len(), 3);
        assert!(e.attendees.iter().all(|a| a.kind == AttendeeKind::Required && a.response == ResponseStatus::None));
        assert_eq!(e.organizer.as_ref().and_then(|o| o.email.as_deref()), Some("dpark@example.com"));
        assert_eq!(&e.global_object_id().as_hex()[..32], "040000008200E00074C5B7101A82E008");
    }
}

#[test]
fn batch_of_three_items_one_message_each() {
    let root = parse(&fixture("getitem-batch.xml"));
    let body = body_of(&root);
    let messages = soap::response_messages(&body, "GetItemResponse").expect("messages");
    assert_eq!(messages.len(), 3);
    let subjects: Vec<String> = messages
        .iter()
        .flat_map(|m| ops::read_get_item(m).expect("items"))
        .map(|i| i.subject.unwrap_or_default())
        .collect();
    assert_eq!(subjects, vec!["Review current quarterly deliverables", "Food bank delivery", "Code Blast"]);
}

#[test]
fn folders_rooms_names_and_sync() {
    let root = parse(&fixture("getfolder-calendar.xml"));
    let body = body_of(&root);
    let m = soap::response_messages(&body, "GetFolderResponse").expect("messages");
    let folders = ops::read_get_folder(&m[0]).expect("folders");
    assert_eq!(folders[0].id, "AAMk");
    assert!(folders[0].is_calendar());

    let root = parse(&fixture("findfolder.xml"));
    let body = body_of(&root);
    let m = soap::response_messages(&body, "FindFolderResponse").expect("messages");
    let folders = ops::read_find_folder(&m[0]).expect("folders");
    assert_eq!(folders[0].display_name.as_deref(), Some("TestFolder"));
    assert_eq!(folders[0].total_count, Some(0));

    let root = parse(&fixture("getroomlists.xml"));
    let body = body_of(&root);
    let m = soap::single_message(&body, "GetRoomListsResponse").expect("message");
    assert_eq!(m.class, ResponseClass::Success);
    let lists = ops::read_room_lists(&body).expect("lists");
    assert_eq!(lists[0].email.as_deref(), Some("RoomList@contoso.com"));
    assert_eq!(lists[0].name.as_deref(), Some("Room List"));

    let root = parse(&fixture("getrooms.xml"));
    let body = body_of(&root);
    let rooms = ops::read_rooms(&body).expect("rooms");
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0].email.as_deref(), Some("Room01@contoso.com"));

    let root = parse(&fixture("resolvenames.xml"));
    let body = body_of(&root);
    let m = soap::response_messages(&body, "ResolveNamesResponse").expect("messages");
    let names = ops::read_resolve_names(&m[0]).expect("names");
    assert_eq!(names[0].email.as_deref(), Some("User2@example.com"));
    let root = parse(&fixture("resolvenames-noresults.xml"));
    let body = body_of(&root);
    let m = soap::response_messages(&body, "ResolveNamesResponse").expect("messages");
    assert!(m[0].is_error());
    assert_eq!(m[0].code, "ErrorNameResolutionNoResults");

    let root = parse(&fixture("syncfolderitems.xml"));
    let body = body_of(&root);
    let m = soap::response_messages(&body, "SyncFolderItemsResponse").expect("messages");
    let page = ops::read_sync_folder_items(&m[0]).expect("page");
    assert_eq!(page.sync_state, "H4sIAAAAA=");
    assert!(page.includes_last);
    assert_eq!(page.changes(), 1);

    let root = parse(&fixture("syncfolderitems-invalid-state.xml"));
    let body = body_of(&root);
    let m = soap::response_messages(&body, "SyncFolderItemsResponse").expect("messages");
    assert!(m[0].is_error());
    assert_eq!(m[0].code, "ErrorInvalidSyncStateData");
    let err = calpump_ews::errors::code_error(&m[0].code, m[0].text.as_deref().unwrap_or(""), None, "SyncFolderItems");
    assert_eq!(err.code(), "ews.ErrorInvalidSyncStateData");
}

#[test]
fn server_busy_as_fault_and_inside_a_200_body() {
    // Shapes per ews-throttling-in-exchange.md: HTTP 500 with a fault carrying
    // BackOffMilliseconds, and an error response message in a 200 body.
    let fault = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
<faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
<detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
<e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>
<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">25</t:Value></t:MessageXml>
</detail></s:Fault></s:Body></s:Envelope>"#;
    let root = parse(fault);
    let Outcome::Fault(f) = soap::read_envelope(&root).expect("env").outcome else {
        panic!("fault expected")
    };
    assert_eq!(f.code(), "ErrorServerBusy");
    assert_eq!(f.back_off(), Some(std::time::Duration::from_millis(25)));

    let in_body = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body>
<SyncFolderItemsResponse xmlns="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:types="http://schemas.microsoft.com/exchange/services/2006/types">
<ResponseMessages><SyncFolderItemsResponseMessage ResponseClass="Error">
<MessageText>The server cannot service this request right now. Try again later.</MessageText>
<ResponseCode>ErrorServerBusy</ResponseCode><DescriptiveLinkKey>0</DescriptiveLinkKey>
<MessageXml><types:Value Name="BackOffMilliseconds">5000</types:Value></MessageXml>
<SyncState/><IncludesLastItemInRange>true</IncludesLastItemInRange>
</SyncFolderItemsResponseMessage></ResponseMessages></SyncFolderItemsResponse></Body></Envelope>"#;
    let root = parse(in_body);
    let body = body_of(&root);
    let m = soap::response_messages(&body, "SyncFolderItemsResponse").expect("messages");
    assert_eq!(m[0].code, "ErrorServerBusy");
    assert_eq!(m[0].back_off(), Some(std::time::Duration::from_millis(5000)));
}

#[test]
fn truncated_answers_name_the_element() {
    let text = fixture("getitem-batch.xml");
    let cut = &text[..text.len() / 2];
    let err = xml::parse(cut.as_bytes()).expect_err("cut");
    let msg = err.to_string();
    assert!(msg.contains("GetItemResponse") || msg.contains("CalendarItem"), "{msg}");
    // A value of the wrong form names its path.
    let bad = fixture("getitem-allproperties.xml").replace(
        "<t:Start>2006-06-16T00:30:00Z</t:Start>",
        "<t:Start>half past nine</t:Start>",
    );
    let root = parse(&bad);
    let body = body_of(&root);
    let m = soap::response_messages(&body, "GetItemResponse").expect("messages");
    let err = ops::read_get_item(&m[0]).expect_err("bad date");
    assert!(err.to_string().contains("GetItemResponseMessage[1]/Items/CalendarItem[1]/Start"), "{err}");
}
