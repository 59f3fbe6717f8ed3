//! Users, calendars, places and id translation.
//!
//! Docs: `api-reference/v1.0/api/user-get.md`, `user-list.md` (`$filter`), `user-list-calendars.md`,
//! `calendar-get.md`, `api-reference/v1.0/api/place-list.md` (rooms, room lists, rooms of a list),
//! `api-reference/v1.0/api/user-translateexchangeids.md`.

use super::{Ctx, GraphResponse, error, invalid_user};
use crate::tenant::{IdFormat, Mailbox, MailboxKind};
use axum::http::StatusCode;
use serde_json::{Value, json};

const DEFAULT_PAGE_USERS: usize = 100;

fn user_json(m: &Mailbox) -> Value {
    json!({
        "businessPhones": [],
        "displayName": m.display_name,
        "givenName": m.given_name,
        "jobTitle": null,
        "mail": m.smtp,
        "mobilePhone": null,
        "officeLocation": m.building,
        "preferredLanguage": null,
        "surname": m.surname,
        "userPrincipalName": m.smtp,
        "id": m.object_id.to_string(),
    })
}

fn select(v: Value, ctx: &Ctx<'_>) -> Value {
    let Some(sel) = ctx.req.query.get("select") else {
        return v;
    };
    let f: Vec<String> = sel
        .split(',')
        .map(|x| x.trim().to_ascii_lowercase())
        .collect();
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| {
                    k == "id" || k.starts_with('@') || f.contains(&k.to_ascii_lowercase())
                })
                .collect(),
        ),
        v => v,
    }
}

/// `GET /users/{id | userPrincipalName}` (`api-reference/v1.0/api/user-get.md`).
pub(crate) fn user(ctx: &Ctx<'_>, key: &str) -> GraphResponse {
    match ctx.state.control.tenant().mailbox(key) {
        Some(m) => {
            let mut v = select(user_json(m), ctx);
            v["@odata.context"] = json!(format!("{}/$metadata#users/$entity", ctx.base()));
            GraphResponse::ok(v)
        }
        None => error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        ),
    }
}

/// One `$filter` clause the simulator understands.
enum Clause {
    Eq(String, String),
    StartsWith(String, String),
}

fn parse_filter(f: &str) -> Option<(Vec<Clause>, bool)> {
    let lower = f.to_ascii_lowercase();
    let (parts, any): (Vec<&str>, bool) = if lower.contains(" or ") {
        (split_ci(f, " or "), true)
    } else {
        (split_ci(f, " and "), false)
    };
    let mut out = Vec::new();
    for p in parts {
        let p = p
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        let pl = p.to_ascii_lowercase();
        if let Some(rest) = pl.strip_prefix("startswith(") {
            let (field, val) = rest.split_once(',')?;
            let val_orig = &p[p.len() - val.len()..];
            out.push(Clause::StartsWith(
                field.trim().to_string(),
                unquote(val_orig.trim_end_matches(')'))?,
            ));
        } else {
            let idx = pl.find(" eq ")?;
            out.push(Clause::Eq(
                pl[..idx].trim().to_string(),
                unquote(&p[idx + 4..])?,
            ));
        }
    }
    Some((out, any))
}

fn split_ci<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let lower = s.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut last = 0;
    for (i, _) in lower.match_indices(sep) {
        out.push(&s[last..i]);
        last = i + sep.len();
    }
    out.push(&s[last..]);
    out
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return Some(s.to_ascii_lowercase());
    }
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn field(m: &Mailbox, f: &str) -> Option<String> {
    Some(match f {
        "mail" | "userprincipalname" => m.smtp.clone(),
        "displayname" => m.display_name.clone(),
        "id" => m.object_id.to_string(),
        "givenname" => m.given_name.clone()?,
        "surname" => m.surname.clone()?,
        "accountenabled" => (m.kind == MailboxKind::User).to_string(),
        _ => return None,
    })
}

/// `GET /users?$filter=…&$top=…&$select=…` (`api-reference/v1.0/api/user-list.md`): `eq` on
/// mail, userPrincipalName, displayName, id, givenName, surname, accountEnabled; `startswith`.
pub(crate) fn users(ctx: &Ctx<'_>) -> GraphResponse {
    let t = ctx.state.control.tenant();
    let filter = match ctx.req.query.get("filter") {
        Some(f) => match parse_filter(f) {
            Some(x) => Some(x),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Unsupported Query.",
                );
            }
        },
        None => None,
    };
    let matches = |m: &Mailbox| match &filter {
        None => true,
        Some((clauses, any)) => {
            let test = |c: &Clause| match c {
                Clause::Eq(f, v) => field(m, f).is_some_and(|x| x.eq_ignore_ascii_case(v)),
                Clause::StartsWith(f, v) => {
                    field(m, f).is_some_and(|x| x.to_lowercase().starts_with(&v.to_lowercase()))
                }
            };
            if *any {
                clauses.iter().any(test)
            } else {
                clauses.iter().all(test)
            }
        }
    };
    let size = ctx
        .req
        .query
        .get("top")
        .and_then(|x| x.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_USERS)
        .clamp(1, 999);
    let offset = ctx
        .req
        .query
        .get("skiptoken")
        .and_then(|x| x.parse::<usize>().ok())
        .unwrap_or(0);
    let all: Vec<&Mailbox> = t
        .directory
        .mailboxes
        .iter()
        .filter(|m| matches(m))
        .collect();
    let value: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|m| select(user_json(m), ctx))
        .collect();
    let mut body =
        json!({ "@odata.context": format!("{}/$metadata#users", ctx.base()), "value": value });
    if offset + size < all.len() {
        body["@odata.nextLink"] = json!(next_link(ctx, offset + size));
    }
    GraphResponse::ok(body)
}

fn next_link(ctx: &Ctx<'_>, offset: usize) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(ctx.req.raw_query.as_bytes()) {
        if k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
            continue;
        }
        ser.append_pair(&k, &v);
    }
    ser.append_pair("$skiptoken", &offset.to_string());
    format!(
        "{}/{}?{}",
        ctx.base(),
        ctx.req.segments.join("/"),
        ser.finish()
    )
}

fn calendar_json(ctx: &Ctx<'_>, m: &Mailbox, index: u16, name: &str) -> Value {
    let t = ctx.state.control.tenant();
    json!({
        "id": t.folder_id(m, index, true),
        "name": name,
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": index == 0,
        "changeKey": crate::tenant::ids::change_key(m.exchange_guid, u64::from(index), 1, None),
        "canShare": true,
        "canViewPrivateItems": true,
        "canEdit": true,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": true,
        "isRemovable": index != 0,
        "owner": { "name": m.display_name, "address": m.smtp },
    })
}

/// `GET /users/{id}/calendars` (`api-reference/v1.0/api/user-list-calendars.md`).
pub(crate) fn calendars(ctx: &Ctx<'_>, m: Option<&Mailbox>) -> GraphResponse {
    let Some(m) = m else { return invalid_user("") };
    let t = ctx.state.control.tenant();
    let v = t.read(m.index, |s| {
        s.calendars
            .iter()
            .map(|c| select(calendar_json(ctx, m, c.index, &c.name), ctx))
            .collect::<Vec<_>>()
    });
    GraphResponse::ok(json!({
        "@odata.context": format!("{}/$metadata#users('{}')/calendars", ctx.base(), m.smtp),
        "value": v.unwrap_or_default(),
    }))
}

/// `GET /users/{id}/calendar` and `/users/{id}/calendars/{id}` (`api-reference/v1.0/api/calendar-get.md`).
pub(crate) fn calendar(ctx: &Ctx<'_>, m: Option<&Mailbox>, id: Option<&str>) -> GraphResponse {
    let Some(m) = m else { return invalid_user("") };
    let t = ctx.state.control.tenant();
    let index = match id {
        None => Some(0),
        Some(id) => t
            .resolve_folder_id(id)
            .filter(|(mb, _)| *mb == m.index)
            .map(|(_, c)| c),
    };
    let r = index.and_then(|i| {
        t.read(m.index, |s| {
            s.calendars
                .iter()
                .find(|c| c.index == i)
                .map(|c| calendar_json(ctx, m, c.index, &c.name))
        })
        .flatten()
    });
    match r {
        Some(mut v) => {
            v["@odata.context"] = json!(format!(
                "{}/$metadata#users('{}')/calendars/$entity",
                ctx.base(),
                m.smtp
            ));
            GraphResponse::ok(select(v, ctx))
        }
        None => super::events::item_not_found(),
    }
}

fn room_json(m: &Mailbox) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.room",
        "id": m.object_id.to_string(),
        "emailAddress": m.smtp,
        "displayName": m.display_name,
        "address": { "street": "1 Main Street", "city": "Redmond", "state": "WA", "postalCode": "98052", "countryOrRegion": "United States" },
        "geoCoordinates": null,
        "phone": null,
        "nickname": m.display_name,
        "label": m.building,
        "capacity": m.capacity,
        "building": m.building,
        "floorLabel": m.floor.map(|f| format!("Floor {f}")),
        "floorNumber": m.floor,
        "isWheelChairAccessible": m.capacity.is_some_and(|c| c >= 10),
        "bookingType": "standard",
        "tags": [],
        "audioDeviceName": null,
        "videoDeviceName": if m.capacity.is_some_and(|c| c >= 8) { json!("Teams Room") } else { Value::Null },
        "displayDeviceName": null,
    })
}

fn paged(ctx: &Ctx<'_>, context: &str, all: Vec<Value>) -> GraphResponse {
    let size = ctx
        .req
        .query
        .get("top")
        .and_then(|x| x.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let offset = ctx
        .req
        .query
        .get("skiptoken")
        .or(ctx.req.query.get("skip"))
        .and_then(|x| x.parse::<usize>().ok())
        .unwrap_or(0);
    let value: Vec<Value> = all.iter().skip(offset).take(size).cloned().collect();
    let mut body =
        json!({ "@odata.context": format!("{}/$metadata#{context}", ctx.base()), "value": value });
    if offset + size < all.len() {
        body["@odata.nextLink"] = json!(next_link(ctx, offset + size));
    }
    GraphResponse::ok(body)
}

/// `GET /places/microsoft.graph.room` (`api-reference/v1.0/api/place-list.md`).
pub(crate) fn rooms(ctx: &Ctx<'_>) -> GraphResponse {
    let t = ctx.state.control.tenant();
    let all = t
        .directory
        .rooms()
        .map(|m| select(room_json(m), ctx))
        .collect();
    paged(ctx, "places/microsoft.graph.room", all)
}

/// `GET /places/microsoft.graph.roomlist` (`api-reference/v1.0/api/place-list.md`).
pub(crate) fn room_lists(ctx: &Ctx<'_>) -> GraphResponse {
    let t = ctx.state.control.tenant();
    let all = t
        .directory
        .room_lists
        .iter()
        .map(|l| {
            select(
                json!({
                    "@odata.type": "#microsoft.graph.roomList",
                    "id": l.object_id.to_string(),
                    "displayName": l.display_name,
                    "address": { "street": "1 Main Street", "city": "Redmond", "state": "WA", "postalCode": "98052", "countryOrRegion": "United States" },
                    "geoCoordinates": null,
                    "phone": null,
                    "emailAddress": l.smtp,
                }),
                ctx,
            )
        })
        .collect();
    paged(ctx, "places/microsoft.graph.roomList", all)
}

/// `GET /places/{roomlist-emailaddress}/microsoft.graph.roomlist/rooms` (`place-list.md`, example 3).
pub(crate) fn room_list_rooms(ctx: &Ctx<'_>, list: &str) -> GraphResponse {
    let t = ctx.state.control.tenant();
    let Some(l) = t.directory.room_list(list) else {
        return error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    let all = l
        .rooms
        .iter()
        .filter_map(|i| t.directory.get(*i))
        .map(|m| select(room_json(m), ctx))
        .collect();
    paged(
        ctx,
        &format!("places('{}')/microsoft.graph.roomList/rooms", l.smtp),
        all,
    )
}

/// `POST /users/{id}/translateExchangeIds` (`api-reference/v1.0/api/user-translateexchangeids.md`).
pub(crate) fn translate_ids(ctx: &Ctx<'_>, m: &Mailbox) -> GraphResponse {
    let Ok(body) = serde_json::from_slice::<Value>(&ctx.req.body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The request body is not valid JSON.",
        );
    };
    let target = body
        .get("targetIdType")
        .and_then(Value::as_str)
        .and_then(IdFormat::from_graph_name);
    let source = body
        .get("sourceIdType")
        .and_then(Value::as_str)
        .and_then(IdFormat::from_graph_name);
    let (Some(target), Some(_source)) = (target, source) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "sourceIdType and targetIdType must be one of entryId, ewsId, immutableEntryId, restId, restImmutableEntryId.",
        );
    };
    let Some(inputs) = body.get("inputIds").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "inputIds is required.",
        );
    };
    if inputs.len() > 1000 {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "At most 1000 ids can be translated at once.",
        );
    }
    let t = ctx.state.control.tenant();
    let value: Vec<Value> = inputs
        .iter()
        .filter_map(Value::as_str)
        .map(|id| {
            let translated = t.resolve_item_id(id).filter(|(mb, _, _)| *mb == m.index).and_then(|_| t.translate_id(id, target));
            match translated {
                Some(tid) => json!({ "sourceId": id, "targetId": tid }),
                None => json!({ "sourceId": id, "errorDetails": { "code": "ErrorInvalidIdMalformed", "message": "Id is malformed." } }),
            }
        })
        .collect();
    GraphResponse::ok(json!({
        "@odata.context": format!("{}/$metadata#Collection(microsoft.graph.convertIdResult)", ctx.base()),
        "value": value,
    }))
}
