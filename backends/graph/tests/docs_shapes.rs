//! Response shapes copied from Microsoft's Graph documentation
//! (`microsoftgraph/microsoft-graph-docs-contrib`), read by calpump's models: numbers as
//! strings, `@removed`, paging and delta links, `$batch` answers, error bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use calpump_graph::error::from_batch_item;
use calpump_graph::mapping::{Context, to_event_full};
use calpump_graph::model::{
    DateTimeTimeZone, EventType, GraphError, GraphEvent, Page, Room, RoomListResource, parse_batch,
};
use serde_json::{Value, json};

fn page(text: &str) -> Page {
    Page::from_value(serde_json::from_str::<Value>(text).expect("json")).expect("page")
}

/// `api-reference/v1.0/api/place-list.md`, example 1 (capacity as a string).
const ROOMS: &str = r##"{
  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#places/microsoft.graph.room",
  "value": [
    {
      "id": "3162F1E1-C4C0-604B-51D8-91DA78989EB1",
      "emailAddress": "cf100@contoso.com",
      "displayName": "Conf Room 100",
      "address": {"street": "4567 Main Street", "city": "Buffalo", "state": "NY", "postalCode": "98052", "countryOrRegion": "USA"},
      "geoCoordinates": {"latitude": 47.640568390488626, "longitude": -122.1293731033803},
      "phone": "000-000-0000",
      "nickname": "Conf Room",
      "label": "100",
      "capacity": "50",
      "building": "1",
      "floorNumber": 1,
      "isManaged": true,
      "isWheelchairAccessible": false,
      "bookingType": "standard",
      "tags": ["bean bags"],
      "audioDeviceName": null,
      "videoDeviceName": null,
      "displayDevice": "surface hub"
    },
    {
      "id": "3162F1E1-C4C0-604B-51D8-91DA78970B97",
      "emailAddress": "cf200@contoso.com",
      "displayName": "Conf Room 200",
      "capacity": "40",
      "building": "2",
      "floorNumber": 2
    }
  ]
}"##;

/// `api-reference/v1.0/api/place-list.md`, example 2.
const ROOM_LISTS: &str = r##"{
  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#places/microsoft.graph.roomList",
  "value": [
    {"id": "DC404124-302A-92AA-F98D-7B4DEB0C1705", "displayName": "Building 1",
     "address": {"street": "4567 Main Street", "city": "Buffalo", "state": "NY", "postalCode": "98052", "countryOrRegion": "USA"},
     "geocoordinates": null, "phone": null, "emailAddress": "bldg1@contoso.com"},
    {"id": "DC404124-302A-92AA-F98D-7B4DEB0C1706", "displayName": "Building 2",
     "geocoordinates": null, "phone": null, "emailAddress": "bldg2@contoso.com"}
  ]
}"##;

#[test]
fn places_with_numbers_as_strings() {
    let p = page(ROOMS);
    let (rooms, skipped) = p.items::<Room>();
    assert_eq!(skipped, 0);
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0].email_address.as_deref(), Some("cf100@contoso.com"));
    assert_eq!(rooms[0].capacity, Some(50), "\"50\" reads as 50");
    assert_eq!(rooms[1].capacity, Some(40));
    assert_eq!(rooms[1].floor_number, Some(2));
    assert_eq!(p.next_link, None);
    let (lists, _) = page(ROOM_LISTS).items::<RoomListResource>();
    assert_eq!(lists[1].email_address.as_deref(), Some("bldg2@contoso.com"));
    assert_eq!(lists[1].display_name.as_deref(), Some("Building 2"));
}

/// `api-reference/v1.0/api/user-list-calendarview.md`, the response example (shortened by
/// the docs: no times).
const CALENDAR_VIEW: &str = r##"{
  "value": [
    {
      "originalStartTimeZone": "Pacific Standard Time",
      "originalEndTimeZone": "Pacific Standard Time",
      "responseStatus": {"response": "accepted", "time": "2016-10-19T10:37:00Z"},
      "iCalUId": "040000008200E00074C5B7101A82E00800000000D3D70B8A6A17D70100000000000000001000000074665914A06C3F49BB4B7D7EEE4304DA",
      "reminderMinutesBeforeStart": 15,
      "isReminderOn": true
    }
  ]
}"##;

#[test]
fn a_shortened_calendar_view_entry_is_read_and_skipped_without_times() {
    let (events, _) = page(CALENDAR_VIEW).items::<GraphEvent>();
    let e = &events[0];
    assert_eq!(
        e.original_start_time_zone.as_deref(),
        Some("Pacific Standard Time")
    );
    assert_eq!(
        e.event_type(),
        EventType::SingleInstance,
        "no `type`: a single instance"
    );
    assert!(
        e.ical_uid
            .as_deref()
            .unwrap()
            .starts_with("040000008200E000")
    );
    assert!(
        e.goid_base64().is_none(),
        "no extended property: this entry cannot be keyed"
    );
}

/// `concepts/delta-query-events.md`: the first page of the initial round (nextLink), the
/// last page (deltaLink), and the first page of the next round with an `@removed` entry.
const DELTA_FIRST: &str = r##"{
    "@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
    "@odata.nextLink":"https://graph.microsoft.com/v1.0/me/calendarView/delta?$skiptoken=R0usmcCM996atia_s",
    "value":[
        {
            "@odata.type":"#microsoft.graph.event",
            "@odata.etag":"W/\"EZ9r3czxY0m2jz8c45czkwAAFXcvIQ==\"",
            "subject":"Plan shopping list",
            "body":{"contentType":"html","content":""},
            "start":{"dateTime":"2016-12-09T20:30:00.0000000","timeZone":"UTC"},
            "end":{"dateTime":"2016-12-09T22:00:00.0000000","timeZone":"UTC"},
            "attendees":[],
            "organizer":{"emailAddress":{"name":"Samantha Booth","address":"samanthab@contoso.onmicrosoft.com"}},
            "id":"AAMkADNVxRAAA="
        }
    ]
}"##;

const DELTA_NEXT_ROUND: &str = r##"{
    "@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
    "@odata.deltaLink":"https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=R0usmcFuQtZdtpk4",
    "value":[
        {
            "@odata.type": "#microsoft.graph.event",
            "id": "AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA=",
            "@removed": {"reason": "deleted"}
        },
        {
            "@odata.type":"#microsoft.graph.event",
            "@odata.etag":"W/\"EZ9r3czxY0m2jz8c45czkwAALZu97w==\"",
            "subject":"Attend service",
            "body":{"contentType":"html","content":""},
            "start":{"dateTime":"2016-12-25T06:00:00.0000000","timeZone":"UTC"},
            "end":{"dateTime":"2016-12-25T07:30:00.0000000","timeZone":"UTC"},
            "location":{"displayName":"Chapel of Saint Ignatius",
                "address":{"street":"900 Broadway","city":"Seattle","state":"WA","countryOrRegion":"United States","postalCode":""},
                "coordinates":{"latitude":47.6105,"longitude":-122.321}},
            "attendees":[],
            "organizer":{"emailAddress":{"name":"Samantha Booth","address":"samanthab@contoso.onmicrosoft.com"}},
            "id":"AAMkADj1HvAAA="
        }
    ]
}"##;

#[test]
fn delta_pages_links_etags_and_removed_entries() {
    let first = page(DELTA_FIRST);
    assert!(first.next_link.as_deref().unwrap().contains("$skiptoken="));
    assert!(first.delta_link.is_none());
    let (events, _) = first.items::<GraphEvent>();
    assert_eq!(
        events[0].change_key().as_deref(),
        Some("EZ9r3czxY0m2jz8c45czkwAAFXcvIQ==")
    );
    let start = events[0]
        .start
        .as_ref()
        .and_then(DateTimeTimeZone::to_utc)
        .unwrap();
    assert_eq!(start.to_rfc3339(), "2016-12-09T20:30:00+00:00");

    let next = page(DELTA_NEXT_ROUND);
    assert!(
        next.delta_link
            .as_deref()
            .unwrap()
            .contains("$deltatoken=R0usmcFuQtZdtpk4")
    );
    let (events, _) = next.items::<GraphEvent>();
    assert!(events[0].is_removed());
    assert_eq!(
        events[0].id.as_deref(),
        Some("AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA=")
    );
    assert!(!events[1].is_removed());
    assert_eq!(
        events[1]
            .location
            .as_ref()
            .and_then(|l| l.display_name.as_deref()),
        Some("Chapel of Saint Ignatius")
    );

    // The same entry, keyed with a clean global object id, maps to a canonical event.
    let goid = "BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAADAxMjM0NTY3ODlhYmNkZWY=";
    let ev = to_event_full(
        &Context {
            mailbox: "samanthab@contoso.onmicrosoft.com",
            calendar: "default",
        },
        &events[1],
        goid,
    )
    .unwrap();
    assert_eq!(ev.subject, "Attend service");
    assert_eq!(ev.location.as_deref(), Some("Chapel of Saint Ignatius"));
    assert_eq!(
        ev.organizer.unwrap().name.as_deref(),
        Some("Samantha Booth")
    );
    assert_eq!(
        ev.source.change_key.as_deref(),
        Some("EZ9r3czxY0m2jz8c45czkwAALZu97w==")
    );
}

/// `concepts/json-batching.md`, the example response (shortened bodies; ids out of order are
/// allowed; one 403 has an empty code).
const BATCH: &str = r##"{
    "responses": [
        {"id": "1", "status": 200,
         "headers": {"Cache-Control": "no-cache", "x-ms-resource-unit": "1", "OData-Version": "4.0",
                     "Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"},
         "body": {"@odata.context": "https://graph.microsoft.com/beta/$metadata#directoryObjects",
                  "@odata.nextLink": "https://graph.microsoft.com/beta/me/memberOf?$top=1&$skiptoken=RFNwdAoAAQAAAAAAAAAAFAAAAI45VMy0CO9Ei1L3Lr1q95UBAAAAAAAAAAAAAAAAAAAXMS4yLjg0MC4xMTM1NTYuMS40LjIzMzEGAAAAAAABURXWGePFEEGbudEn3SOTuQEDAQAAAQAAAAA",
                  "value": [{"@odata.type": "#microsoft.graph.directoryRole", "id": "21004afc-7bb2-4fe6-a1e1-074ebd3e52c1"}]}},
        {"id": "2", "status": 403,
         "headers": {"Cache-Control": "no-cache", "Content-Type": "application/json"},
         "body": {"error": {"code": "", "message": "You do not have the required permissions to access this item.",
                            "innerError": {"date": "2025-02-13T10:17:05", "request-id": "93b6f17e-c05d-4f45-ad2a-6665c708d8a0", "client-request-id": "e70c5c1b-8b47-68c0-3171-3d22f5e0bd54"}}}},
        {"id": "3", "status": 403,
         "headers": {"Cache-Control": "no-cache", "x-ms-resource-unit": "1", "Content-Type": "application/json"},
         "body": {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation.",
                            "innerError": {"date": "2025-02-13T10:17:06", "request-id": "93b6f17e-c05d-4f45-ad2a-6665c708d8a0", "client-request-id": "e70c5c1b-8b47-68c0-3171-3d22f5e0bd54"}}}},
        {"id": "5", "status": 200,
         "headers": {"Cache-Control": "no-cache"},
         "body": {"@odata.context": "https://graph.microsoft.com/beta/$metadata#users(id,displayName,userPrincipalName)",
                  "@odata.count": 36,
                  "value": [{"id": "10a1d484-cd1a-4162-a5a4-832370bac356", "displayName": "Lynne Robbins", "userPrincipalName": "LynneR@contoso.com"}]}},
        {"id": "4", "status": "405",
         "headers": {"Cache-Control": "no-cache"},
         "body": {"error": {"code": "Request_BadRequest", "message": "Specified HTTP method is not allowed for the request target."}}}
    ]
}"##;

#[test]
fn batch_answers_by_id_with_their_own_status() {
    let items = parse_batch(&serde_json::from_str(BATCH).unwrap()).unwrap();
    let by_id: BTreeMap<&str, _> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    assert_eq!(by_id.len(), 5);
    assert_eq!(by_id["1"].status, 200);
    assert_eq!(by_id["4"].status, 405, "a status as a string is read");
    assert_eq!(
        by_id["1"].headers.get("cache-control").map(String::as_str),
        Some("no-cache")
    );
    let p = Page::from_value(by_id["5"].body.clone()).unwrap();
    assert_eq!(p.count, Some(36));
    let p1 = Page::from_value(by_id["1"].body.clone()).unwrap();
    assert!(p1.next_link.is_some());
    let e2 = from_batch_item("memberOf", 403, &by_id["2"].headers, &by_id["2"].body);
    assert_eq!(e2.code(), "graph.ErrorAccessDenied");
    assert!(
        e2.diagnostic
            .detail()
            .contains("93b6f17e-c05d-4f45-ad2a-6665c708d8a0"),
        "the request id is kept"
    );
    let e3 = from_batch_item("tasks", 403, &by_id["3"].headers, &by_id["3"].body);
    assert_eq!(e3.code(), "graph.AuthorizationRequestDenied");
    assert!(
        e3.diagnostic
            .detail()
            .contains("Authorization_RequestDenied")
    );
    let e4 = from_batch_item("x", 405, &by_id["4"].headers, &by_id["4"].body);
    assert_eq!(e4.code(), "graph.Other");
    assert!(parse_batch(&json!({"value": []})).is_err());
}

/// `concepts/throttling.md`, the sample 429 response.
const THROTTLED: &str = r##"{
  "error": {
    "code": "TooManyRequests",
    "innerError": {
      "code": "429",
      "date": "2020-08-18T12:51:51",
      "message": "Please retry after",
      "request-id": "94fb3b52-452a-4535-a601-69e0a90e3aa2",
      "status": "429"
    },
    "message": "Please retry again later."
  }
}"##;

/// `concepts/errors.md`, the error resource example.
const ERROR: &str = r##"{
  "error": {
    "code": "invalidRange",
    "message": "Uploaded fragment overlaps with existing data.",
    "innerError": {
      "code": "invalidRange",
      "request-id": "request-id",
      "date": "date-time"
    }
  }
}"##;

#[test]
fn error_bodies_and_throttling() {
    let body: Value = serde_json::from_str(THROTTLED).unwrap();
    let parsed = GraphError::from_value(&body).unwrap();
    assert_eq!(parsed.code, "TooManyRequests");
    assert_eq!(
        parsed.request_id.as_deref(),
        Some("94fb3b52-452a-4535-a601-69e0a90e3aa2")
    );
    let mut headers = BTreeMap::new();
    headers.insert("retry-after".to_string(), "2.128".to_string());
    let e = from_batch_item("calendarView of room@contoso.com", 429, &headers, &body);
    assert_eq!(e.code(), "graph.Throttled");
    assert!(e.retryable);
    assert_eq!(
        e.retry_after.map(|d| d.as_millis()),
        Some(2128),
        "a fractional Retry-After"
    );
    let e = from_batch_item("x", 429, &BTreeMap::new(), &body);
    assert_eq!(e.retry_after, None, "no Retry-After: back-off decides");

    let error = GraphError::from_body(ERROR.as_bytes()).unwrap();
    assert_eq!(error.code, "invalidRange");
    assert_eq!(
        error.message,
        "Uploaded fragment overlaps with existing data."
    );
    let e = from_batch_item(
        "upload",
        416,
        &BTreeMap::new(),
        &serde_json::from_str(ERROR).unwrap(),
    );
    assert_eq!(e.code(), "graph.Other");
    assert!(e.diagnostic.detail().contains("invalidRange"));
}

#[test]
fn odd_values_do_not_lose_the_page() {
    let p = page(
        r##"{"value": [
        {"id": "a", "type": "singleInstance", "isAllDay": "false", "categories": null,
         "start": {"dateTime": "2026-03-09T08:00:00", "timeZone": "UTC"}, "end": "not an object"},
        "not an event",
        42,
        {"id": 7, "type": "occurrence", "seriesMasterId": "M",
         "start": {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "UTC"},
         "end": {"dateTime": "2026-03-09T09:00:00.0000000", "timeZone": "UTC"}}
    ], "@odata.count": "4"}"##,
    );
    let (events, skipped) = p.items::<GraphEvent>();
    assert_eq!(events.len(), 2);
    assert_eq!(skipped, 2);
    assert_eq!(events[0].end, None, "a wrong type reads as absent");
    assert_eq!(events[0].is_all_day, Some(false));
    assert_eq!(events[1].id.as_deref(), Some("7"));
    assert_eq!(p.count, Some(4));
    assert!(
        Page::from_value(json!({"error": {"code": "x"}})).is_err(),
        "no value list: not a page"
    );
}
