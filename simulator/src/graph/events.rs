//! Events: calendarView, calendarView/delta, events (list), events/{id}.
//!
//! Docs: `api-reference/v1.0/api/user-list-calendarview.md`, `calendar-list-calendarview.md`,
//! `user-list-events.md`, `calendar-list-events.md`, `event-get.md`, `event-delta.md`, `concepts/delta-query-events.md`,
//! `concepts/delta-query-overview.md`, `resources/event.md`; extended properties:
//! `api-reference/v1.0/api/singlevaluelegacyextendedproperty-get.md`; ids:
//! `concepts/outlook-immutable-id.md`.

use super::{Ctx, GraphResponse, error};
use crate::control::Protocol;
use crate::tenant::goid::{LID_CLEAN_GLOBAL_OBJECT_ID, LID_GLOBAL_OBJECT_ID};
use crate::tenant::model::{Item, Pattern, RangeEnd, WeekIndex, weekday_name};
use crate::tenant::store::instance_date;
use crate::tenant::{Instance, InstanceKind, Mailbox, MailboxState, zones};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

const DEFAULT_PAGE: usize = 10;

/// The mailbox's items hidden from Graph (`Control::hide_event`).
fn hidden(ctx: &Ctx<'_>, m: &Mailbox) -> HashSet<u64> {
    ctx.state.control.hidden_items(Protocol::Graph, m.index)
}
const MAX_PAGE: usize = 1000;

/// A requested output zone (`Prefer: outlook.timezone`), default UTC.
struct OutZone {
    name: String,
    tz: chrono_tz::Tz,
}

fn out_zone(ctx: &Ctx<'_>) -> Result<OutZone, GraphResponse> {
    match &ctx.req.prefer.timezone {
        None => Ok(OutZone {
            name: "UTC".into(),
            tz: chrono_tz::Tz::UTC,
        }),
        Some(n) => match zones::parse_any(n) {
            Some(tz) => Ok(OutZone {
                name: n.clone(),
                tz,
            }),
            None => Err(error(
                StatusCode::BAD_REQUEST,
                "TimeZoneNotSupportedException",
                &format!(
                    "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{n}'."
                ),
            )),
        },
    }
}

/// A `dateTimeTimeZone` in the requested zone. All-day events are no exception: Exchange stores
/// them at midnight of the creator's zone (`originalStartTimeZone`) and Graph converts that
/// instant like any other (`Prefer: outlook.timezone="UTC"` shows a Berlin all-day event from
/// `…T23:00:00.0000000` the day before; in its own zone it is `…T00:00:00.0000000`).
fn dt(t: DateTime<Utc>, z: &OutZone) -> Value {
    let s = t
        .with_timezone(&z.tz)
        .format("%Y-%m-%dT%H:%M:%S.0000000")
        .to_string();
    json!({ "dateTime": s, "timeZone": z.name })
}

fn page_size(ctx: &Ctx<'_>) -> Result<usize, GraphResponse> {
    let top = match ctx.req.query.get("top") {
        Some(t) => Some(t.trim().parse::<usize>().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Invalid $top value '{t}'."),
            )
        })?),
        None => None,
    };
    Ok(top
        .or(ctx.req.prefer.max_page_size)
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE))
}

fn parse_dt(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Without offset the value is UTC (doc: "assumed to be UTC if no time zone offset").
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(n.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

fn window(ctx: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), GraphResponse> {
    let get = |k: &str| -> Result<DateTime<Utc>, GraphResponse> {
        let v = ctx.req.query.get(&k.to_ascii_lowercase()).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            )
        })?;
        parse_dt(v).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                &format!("The value '{v}' of parameter '{k}' is invalid."),
            )
        })
    };
    let (s, e) = (get("startDateTime")?, get("endDateTime")?);
    if e < s {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The parameter 'EndDateTime' must be later than 'StartDateTime'.",
        ));
    }
    Ok((s, e))
}

fn resolve_calendar(
    ctx: &Ctx<'_>,
    m: &Mailbox,
    s: &MailboxState,
    cal: Option<&str>,
) -> Result<u16, GraphResponse> {
    match cal {
        None => Ok(0),
        Some(id) => {
            let tenant = ctx.state.control.tenant();
            match tenant.resolve_folder_id(id) {
                Some((mb, c)) if mb == m.index && s.calendars.iter().any(|x| x.index == c) => Ok(c),
                _ => Err(item_not_found()),
            }
        }
    }
}

pub(crate) fn item_not_found() -> GraphResponse {
    error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

/// Which extended properties `$expand=singleValueExtendedProperties($filter=…)` asked for.
#[derive(Default, Clone, Copy)]
struct Expand {
    clean: bool,
    global: bool,
}

fn parse_expand(ctx: &Ctx<'_>) -> Expand {
    let Some(e) = ctx.req.query.get("expand") else {
        return Expand::default();
    };
    let lower = e.to_ascii_lowercase();
    if !lower.contains("singlevalueextendedproperties") {
        return Expand::default();
    }
    let mut x = Expand::default();
    let quoted: Vec<&str> = e.split('\'').skip(1).step_by(2).collect();
    if quoted.is_empty() {
        return Expand {
            clean: true,
            global: true,
        };
    }
    for q in quoted {
        let norm: String = q
            .to_ascii_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let Some(rest) = norm.strip_prefix("binary {6ed8da90-450b-101b-98da-00aa003f1305} id ")
        else {
            continue;
        };
        let n = match rest.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => rest.parse().ok(),
        };
        match n {
            Some(LID_CLEAN_GLOBAL_OBJECT_ID) => x.clean = true,
            Some(LID_GLOBAL_OBJECT_ID) => x.global = true,
            _ => {}
        }
    }
    x
}

fn ext_props(item: &Item, original_start: Option<DateTime<Utc>>, x: Expand) -> Option<Value> {
    if !x.clean && !x.global {
        return None;
    }
    let mut v = Vec::new();
    if x.clean {
        v.push(json!({ "id": "Binary {6ed8da90-450b-101b-98da-00aa003f1305} Id 0x23", "value": STANDARD.encode(item.goid.clean_bytes()) }));
    }
    if x.global {
        v.push(json!({ "id": "Binary {6ed8da90-450b-101b-98da-00aa003f1305} Id 0x3", "value": STANDARD.encode(item.goid.instance_bytes(instance_date(original_start))) }));
    }
    Some(Value::Array(v))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn person(p: &crate::tenant::model::Person) -> Value {
    json!({ "emailAddress": { "name": p.name, "address": p.address } })
}

fn recurrence(item: &Item) -> Value {
    let Some(s) = &item.series else {
        return Value::Null;
    };
    let mut pattern = json!({ "interval": 1, "month": 0, "dayOfMonth": 0, "firstDayOfWeek": "sunday", "index": "first", "daysOfWeek": [] });
    match &s.pattern {
        Pattern::Daily { interval } => {
            pattern["type"] = json!("daily");
            pattern["interval"] = json!(interval);
        }
        Pattern::Weekly { interval, days } => {
            pattern["type"] = json!("weekly");
            pattern["interval"] = json!(interval);
            pattern["daysOfWeek"] =
                json!(days.iter().map(|d| weekday_name(*d)).collect::<Vec<_>>());
        }
        Pattern::AbsoluteMonthly { interval, day } => {
            pattern["type"] = json!("absoluteMonthly");
            pattern["interval"] = json!(interval);
            pattern["dayOfMonth"] = json!(day);
        }
        Pattern::RelativeMonthly {
            interval,
            index,
            day,
        } => {
            pattern["type"] = json!("relativeMonthly");
            pattern["interval"] = json!(interval);
            pattern["daysOfWeek"] = json!([weekday_name(*day)]);
            pattern["index"] = json!(match index {
                WeekIndex::First => "first",
                WeekIndex::Second => "second",
                WeekIndex::Third => "third",
                WeekIndex::Fourth => "fourth",
                WeekIndex::Last => "last",
            });
        }
    }
    let mut range = json!({
        "startDate": s.start_date.format("%Y-%m-%d").to_string(),
        "endDate": "0001-01-01",
        "recurrenceTimeZone": item.data.zone.windows,
        "numberOfOccurrences": 0,
    });
    match &s.end {
        RangeEnd::EndDate { end } => {
            range["type"] = json!("endDate");
            range["endDate"] = json!(end.format("%Y-%m-%d").to_string());
        }
        RangeEnd::Numbered { count } => {
            range["type"] = json!("numbered");
            range["numberOfOccurrences"] = json!(count);
        }
        RangeEnd::NoEnd => range["type"] = json!("noEnd"),
    }
    json!({ "pattern": pattern, "range": range })
}

/// The full event resource (`resources/event.md`).
fn event_json(
    ctx: &Ctx<'_>,
    m: &Mailbox,
    inst: &Instance<'_>,
    master: bool,
    z: &OutZone,
    x: Expand,
) -> Value {
    let tenant = ctx.state.control.tenant();
    let fmt = ctx.req.prefer.id_format();
    let item = inst.item;
    let d = inst.data;
    let (id, kind, series_master) = if master {
        (
            tenant.item_id(m, item, None, fmt),
            "seriesMaster",
            Value::Null,
        )
    } else {
        let occ = if inst.kind == InstanceKind::SingleInstance {
            None
        } else {
            inst.original_start
        };
        let sm = if inst.kind == InstanceKind::SingleInstance {
            Value::Null
        } else {
            json!(tenant.item_id(m, item, None, fmt))
        };
        (tenant.item_id(m, item, occ, fmt), inst.kind.graph(), sm)
    };
    let ck = tenant.change_key(m, inst);
    let body = if ctx.req.prefer.body_text {
        json!({ "contentType": "text", "content": d.body })
    } else {
        json!({ "contentType": "html", "content": format!("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body>{}</body></html>", html_escape(&d.body).replace('\n', "<br>")) })
    };
    let preview: String = d.body.chars().take(255).collect();
    let location = if d.location.is_empty() {
        json!({ "displayName": "", "locationType": "default", "uniqueIdType": "unknown", "address": {}, "coordinates": {} })
    } else {
        json!({ "displayName": d.location, "locationType": "default", "uniqueId": d.location, "uniqueIdType": "private", "address": {}, "coordinates": {} })
    };
    let attendees: Vec<Value> = d
        .attendees
        .iter()
        .map(|a| {
            json!({
                "type": match a.kind { crate::tenant::model::AttendeeType::Required => "required", crate::tenant::model::AttendeeType::Optional => "optional", crate::tenant::model::AttendeeType::Resource => "resource" },
                "status": { "response": a.response, "time": "0001-01-01T00:00:00Z" },
                "emailAddress": { "name": a.person.name, "address": a.person.address },
            })
        })
        .collect();
    let is_organizer = item.is_organizer;
    let mut v = json!({
        "@odata.etag": format!("W/\"{ck}\""),
        "id": id,
        "createdDateTime": item.created.format("%Y-%m-%dT%H:%M:%S%.6f0Z").to_string(),
        "lastModifiedDateTime": inst.last_modified.format("%Y-%m-%dT%H:%M:%S%.6f0Z").to_string(),
        "changeKey": ck,
        "categories": d.categories,
        "transactionId": null,
        "originalStartTimeZone": d.zone.windows,
        "originalEndTimeZone": d.zone.windows,
        "iCalUId": item.goid.ical_uid(),
        "uid": item.goid.ical_uid(),
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": !is_organizer,
        "hasAttachments": false,
        "subject": d.subject,
        "bodyPreview": preview,
        "importance": d.importance.graph(),
        "sensitivity": d.sensitivity.graph(),
        "isAllDay": d.is_all_day,
        "isCancelled": d.is_cancelled,
        "isOrganizer": is_organizer,
        "responseRequested": true,
        "seriesMasterId": series_master,
        "showAs": d.show_as.graph(),
        "type": kind,
        "webLink": format!("https://outlook.office365.com/owa/?itemid={}&exvsurl=1&path=/calendar/item", urlenc(&id)),
        "onlineMeetingUrl": null,
        "isOnlineMeeting": d.online_url.is_some(),
        "onlineMeetingProvider": if d.online_url.is_some() { "teamsForBusiness" } else { "unknown" },
        "allowNewTimeProposals": true,
        "isDraft": false,
        "hideAttendees": false,
        "responseStatus": { "response": if is_organizer { "organizer" } else { "accepted" }, "time": "0001-01-01T00:00:00Z" },
        "body": body,
        "start": dt(if master { item.data.start } else { inst.start }, z),
        "end": dt(if master { item.data.end } else { inst.end }, z),
        "location": location,
        "locations": if d.location.is_empty() { json!([]) } else { json!([{ "displayName": d.location, "locationType": "default", "uniqueId": d.location, "uniqueIdType": "private" }]) },
        "recurrence": if master { recurrence(item) } else { Value::Null },
        "attendees": attendees,
        "organizer": person(&d.organizer),
        "onlineMeeting": d.online_url.as_ref().map(|u| json!({ "joinUrl": u })),
    });
    if let Some(o) = inst.original_start.filter(|_| !master) {
        v["originalStart"] = json!(o.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    if let Some(p) = ext_props(item, if master { None } else { inst.original_start }, x) {
        v["singleValueExtendedProperties"] = p;
    }
    v
}

/// What a delta page shows for an occurrence (the real service sends only these properties).
fn reduced_occurrence(ctx: &Ctx<'_>, m: &Mailbox, inst: &Instance<'_>, z: &OutZone) -> Value {
    let tenant = ctx.state.control.tenant();
    let fmt = ctx.req.prefer.id_format();
    json!({
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": format!("W/\"{}\"", tenant.change_key(m, inst)),
        "id": tenant.item_id(m, inst.item, inst.original_start, fmt),
        "seriesMasterId": tenant.item_id(m, inst.item, None, fmt),
        "type": "occurrence",
        "start": dt(inst.start, z),
        "end": dt(inst.end, z),
    })
}

fn select(v: Value, fields: Option<&HashSet<String>>) -> Value {
    let Some(f) = fields else { return v };
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| {
                    k.starts_with('@')
                        || k == "id"
                        || f.contains(&k.to_ascii_lowercase())
                        || k == "singleValueExtendedProperties"
                })
                .collect::<Map<String, Value>>(),
        ),
        v => v,
    }
}

fn select_set(ctx: &Ctx<'_>) -> Option<HashSet<String>> {
    ctx.req.query.get("select").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

#[derive(Serialize, Deserialize)]
struct PageToken {
    o: usize,
}

fn link(ctx: &Ctx<'_>, key: &str, token: &str, drop: &[&str]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(ctx.req.raw_query.as_bytes()) {
        let lk = k.to_ascii_lowercase();
        let lk = lk.trim_start_matches('$');
        if lk == "skiptoken" || lk == "deltatoken" || drop.contains(&lk) {
            continue;
        }
        ser.append_pair(&k, &v);
    }
    ser.append_pair(key, token);
    format!(
        "{}/{}?{}",
        ctx.base(),
        ctx.req
            .segments
            .iter()
            .map(|s| urlenc(s))
            .collect::<Vec<_>>()
            .join("/"),
        ser.finish()
    )
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn context_url(ctx: &Ctx<'_>, m: &Mailbox) -> String {
    format!(
        "{}/$metadata#users('{}')/calendarView",
        ctx.base(),
        urlenc(&m.smtp)
    )
}

fn preference_applied(ctx: &Ctx<'_>, r: GraphResponse, page_from_pref: bool) -> GraphResponse {
    let mut applied = Vec::new();
    if page_from_pref && let Some(n) = ctx.req.prefer.max_page_size {
        applied.push(format!("odata.maxpagesize={n}"));
    }
    if let Some(tz) = &ctx.req.prefer.timezone {
        applied.push(format!("outlook.timezone=\"{tz}\""));
    }
    if ctx.req.prefer.immutable_id {
        applied.push("IdType=\"ImmutableId\"".into());
    }
    if applied.is_empty() {
        r
    } else {
        r.header("Preference-Applied", applied.join(", "))
    }
}

/// `GET /users/{id}/calendarView` and `/users/{id}/calendars/{id}/calendarView`
/// (`api-reference/v1.0/api/user-list-calendarview.md`, `calendar-list-calendarview.md`):
/// expanded instances of the window, paged by `@odata.nextLink` (`$skiptoken`).
pub(crate) fn calendar_view(ctx: &Ctx<'_>, m: &Mailbox, cal: Option<&str>) -> GraphResponse {
    let r = (|| {
        let (from, to) = window(ctx)?;
        let z = out_zone(ctx)?;
        let size = page_size(ctx)?;
        let x = parse_expand(ctx);
        let fields = select_set(ctx);
        let offset = match ctx.req.query.get("skiptoken") {
            Some(t) => decode_token::<PageToken>(t).map(|p| p.o).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The $skiptoken is invalid.",
                )
            })?,
            None => ctx
                .req
                .query
                .get("skip")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        };
        let tenant = ctx.state.control.tenant();
        let hidden = hidden(ctx, m);
        tenant
            .read(m.index, |s| {
                let c = resolve_calendar(ctx, m, s, cal)?;
                let mut all = s.instances(Some(c), from, to);
                all.retain(|i| !hidden.contains(&i.item.num));
                let page: Vec<Value> = all
                    .iter()
                    .skip(offset)
                    .take(size)
                    .map(|i| select(event_json(ctx, m, i, false, &z, x), fields.as_ref()))
                    .collect();
                let mut body = json!({ "@odata.context": context_url(ctx, m), "value": page });
                if offset + size < all.len() {
                    body["@odata.nextLink"] = json!(link(
                        ctx,
                        "$skiptoken",
                        &encode_token(&PageToken { o: offset + size }),
                        &["skip"]
                    ));
                }
                Ok(GraphResponse::ok(body))
            })
            .unwrap_or_else(|| Err(super::invalid_user(&m.smtp)))
    })();
    match r {
        Ok(r) => preference_applied(ctx, r, !ctx.req.query.contains_key("top")),
        Err(e) => e,
    }
}

fn encode_token<T: Serialize>(t: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s.trim()).ok()?).ok()
}

/// State of a delta round, carried opaquely in `$skiptoken`/`$deltatoken`.
#[derive(Serialize, Deserialize, Debug)]
struct DeltaToken {
    /// Process epoch: tokens of another simulator process are unknown (410).
    ep: u64,
    mb: u32,
    cal: u16,
    s: i64,
    e: i64,
    /// Changes after this sequence number are this round's (None: initial round).
    since: Option<u64>,
    /// The mailbox sequence number when the round started (the next round's `since`). Set when
    /// a round starts (first request, or the first request with a `$deltatoken`).
    upto: u64,
    /// Sort key of the last group delivered in this round: the round resumes strictly after it,
    /// so changes between pages never make it skip an item it has not delivered yet.
    after: Option<GroupKey>,
}

/// Where a group (an item's instances in the window) sorts within a round: first round by
/// (first instance's start, item number), change rounds by (0, item number).
type GroupKey = (i64, u64);

fn epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64)
}

/// 410 Gone, `syncStateNotFound` (`concepts/delta-query-overview.md`, "Synchronization reset").
pub(crate) fn sync_state_not_found() -> GraphResponse {
    error(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state generation is not found; the delta token is expired or invalid. Restart the synchronization without a token.",
    )
}

/// `GET …/calendarView/delta` (`api-reference/v1.0/api/event-delta.md`,
/// `concepts/delta-query-events.md`). The first round lists the window (series masters in full,
/// occurrences with the reduced property set, exceptions in full), paged with `$skiptoken`,
/// ending with a `@odata.deltaLink`. Later rounds return what changed since, `@removed` for
/// instances that left the window or were deleted — also for items that changed entirely outside
/// the window, as the real service does. A series is never split across pages.
pub(crate) fn delta(ctx: &Ctx<'_>, m: &Mailbox, cal: Option<&str>) -> GraphResponse {
    let r = (|| {
        refuse_delta_query_options(ctx)?;
        let z = out_zone(ctx)?;
        let size = ctx
            .req
            .prefer
            .max_page_size
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE);
        // Delta returns the default shape: no `$select`, no extended properties.
        let x = Expand::default();
        let tenant = ctx.state.control.tenant();
        // A `$skiptoken` continues a round; a `$deltatoken` starts the next one.
        let token = match (
            ctx.req.query.get("skiptoken"),
            ctx.req.query.get("deltatoken"),
        ) {
            (Some(t), _) => Some((t, false)),
            (None, Some(t)) => Some((t, true)),
            (None, None) => None,
        };
        let token = match token {
            Some((t, starts_round)) => {
                let d: DeltaToken = decode_token(t).ok_or_else(sync_state_not_found)?;
                if d.ep != epoch() || d.mb != m.index {
                    return Err(sync_state_not_found());
                }
                Some((d, starts_round))
            }
            None => None,
        };
        let hidden = hidden(ctx, m);
        tenant
            .read(m.index, |s| {
                let tok = match token {
                    Some((t, starts_round)) => {
                        if t.upto > s.seq || t.since.is_some_and(|x| x > s.seq) {
                            return Err(sync_state_not_found());
                        }
                        if starts_round {
                            // This round covers the changes after `since` up to now.
                            DeltaToken { upto: s.seq, after: None, ..t }
                        } else {
                            t
                        }
                    }
                    None => {
                        let (from, to) = window(ctx)?;
                        let c = resolve_calendar(ctx, m, s, cal)?;
                        DeltaToken { ep: epoch(), mb: m.index, cal: c, s: from.timestamp(), e: to.timestamp(), since: None, upto: s.seq, after: None }
                    }
                };
                let from = DateTime::<Utc>::from_timestamp(tok.s, 0).unwrap_or_default();
                let to = DateTime::<Utc>::from_timestamp(tok.e, 0).unwrap_or_default();
                // Groups are computed from the mailbox as it is now, in key order; the round
                // resumes after the last key it delivered. An untouched item keeps its key, so
                // it is never skipped; an item changed after the round began may be missed or
                // seen twice here, and comes again in the next round (changes since `upto`).
                let groups = match tok.since {
                    None => initial_groups(ctx, m, s, tok.cal, from, to, &z, x, &hidden),
                    Some(since) => change_groups(ctx, m, s, tok.cal, since, from, to, &z, x, &hidden).ok_or_else(sync_state_not_found)?,
                };
                let mut rest = groups.into_iter().filter(|(k, _)| tok.after.is_none_or(|a| *k > a)).peekable();
                // Whole groups per page, at least one.
                let mut page = Vec::new();
                let mut last = tok.after;
                while let Some((k, g)) = rest.next_if(|(_, g)| page.is_empty() || page.len() + g.len() <= size) {
                    page.extend(g);
                    last = Some(k);
                }
                let mut body = json!({ "@odata.context": format!("{}/$metadata#Collection(event)", ctx.base()), "value": page });
                if rest.peek().is_some() {
                    let t = DeltaToken { after: last, ..tok };
                    body["@odata.nextLink"] = json!(delta_link(ctx, "$skiptoken", &encode_token(&t)));
                } else {
                    // The next round takes the changes since this one began: what changed
                    // during this round comes again there (at least once).
                    let t = DeltaToken { since: Some(tok.upto), after: None, ..tok };
                    body["@odata.deltaLink"] = json!(delta_link(ctx, "$deltatoken", &encode_token(&t)));
                }
                Ok(GraphResponse::ok(body))
            })
            .unwrap_or_else(|| Err(super::invalid_user(&m.smtp)))
    })();
    match r {
        Ok(r) => preference_applied(ctx, r, true),
        Err(e) => e,
    }
}

/// calendarView/delta supports no OData query option besides the window and the state tokens
/// (`event-delta.md`: "You cannot use `$select`", and `$expand`, `$filter`, `$orderby`, `$search`
/// are not supported). The real service refuses them rather than ignoring them: 400
/// `ErrorInvalidUrlQuery` with the messages below (observed answers; the docs do not print them).
fn refuse_delta_query_options(ctx: &Ctx<'_>) -> Result<(), GraphResponse> {
    let q = &ctx.req.query;
    if ["select", "expand", "filter", "orderby", "search"]
        .iter()
        .any(|k| q.contains_key(*k))
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidUrlQuery",
            "The following parameters are not supported with change tracking over the 'CalendarView' resource: '$orderby, $filter, $select, $expand, $search'.",
        ));
    }
    if q.contains_key("top") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidUrlQuery",
            "The '$top' parameter is not supported with change tracking over the 'CalendarView' resource as page size cannot be guaranteed. Express page size preferences using the Prefer: odata.maxpagesize= header instead.",
        ));
    }
    Ok(())
}

fn delta_link(ctx: &Ctx<'_>, key: &str, token: &str) -> String {
    // Tokens encode the window: the link carries only the token (as the docs' samples do).
    let path = ctx
        .req
        .segments
        .iter()
        .map(|s| urlenc(s))
        .collect::<Vec<_>>()
        .join("/");
    let mut ser = form_urlencoded::Serializer::new(String::new());
    ser.append_pair(key, token);
    format!("{}/{}?{}", ctx.base(), path, ser.finish())
}

/// The full instance group of an item in the window: master + instances, or the single.
#[allow(clippy::too_many_arguments)]
fn item_group(
    ctx: &Ctx<'_>,
    m: &Mailbox,
    item: &Item,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    z: &OutZone,
    x: Expand,
) -> Vec<Value> {
    let inst = item.instances(from, to);
    if inst.is_empty() {
        return Vec::new();
    }
    let mut g = Vec::with_capacity(inst.len() + 1);
    if item.series.is_some() {
        let master = Instance {
            item,
            kind: InstanceKind::SingleInstance,
            original_start: None,
            start: item.data.start,
            end: item.data.end,
            data: &item.data,
            version: item.version,
            last_modified: item.last_modified,
        };
        let mut v = event_json(ctx, m, &master, true, z, x);
        v["@odata.type"] = json!("#microsoft.graph.event");
        g.push(v);
    }
    for i in &inst {
        let mut v = if i.kind == InstanceKind::Occurrence {
            reduced_occurrence(ctx, m, i, z)
        } else {
            event_json(ctx, m, i, false, z, x)
        };
        v["@odata.type"] = json!("#microsoft.graph.event");
        g.push(v);
    }
    g
}

#[allow(clippy::too_many_arguments)]
fn initial_groups(
    ctx: &Ctx<'_>,
    m: &Mailbox,
    s: &MailboxState,
    cal: u16,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    z: &OutZone,
    x: Expand,
    hidden: &HashSet<u64>,
) -> Vec<(GroupKey, Vec<Value>)> {
    // Ordered by the first instance's start, like the calendar view (then by item number).
    let mut items: Vec<(GroupKey, &Item)> = s
        .items
        .values()
        .filter(|i| i.calendar == cal && !hidden.contains(&i.num))
        .filter_map(|i| {
            i.instances(from, to)
                .first()
                .map(|f| ((f.start.timestamp(), i.num), i))
        })
        .collect();
    items.sort_by_key(|(k, _)| *k);
    items
        .into_iter()
        .map(|(k, i)| (k, item_group(ctx, m, i, from, to, z, x)))
        .collect()
}

fn removed(id: String) -> Value {
    json!({ "@odata.type": "#microsoft.graph.event", "id": id, "@removed": { "reason": "deleted" } })
}

#[allow(clippy::too_many_arguments)]
fn change_groups(
    ctx: &Ctx<'_>,
    m: &Mailbox,
    s: &MailboxState,
    cal: u16,
    since: u64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    z: &OutZone,
    x: Expand,
    hidden: &HashSet<u64>,
) -> Option<Vec<(GroupKey, Vec<Value>)>> {
    let tenant = ctx.state.control.tenant();
    let fmt = ctx.req.prefer.id_format();
    // Ordered by item number (`changes_since` gives them so).
    let changes = s.changes_since(since, Some(cal)).ok()?;
    let mut groups = Vec::new();
    for ch in changes {
        // An item hidden from Graph is, for Graph, absent now.
        let after = ch.after.filter(|it| !hidden.contains(&it.num));
        let ids_of = |it: &Item| -> Vec<String> {
            let mut v: Vec<String> = it
                .instances(from, to)
                .iter()
                .map(|i| {
                    tenant.item_id(
                        m,
                        it,
                        if i.kind == InstanceKind::SingleInstance {
                            None
                        } else {
                            i.original_start
                        },
                        fmt,
                    )
                })
                .collect();
            if it.series.is_some() && !v.is_empty() {
                v.push(tenant.item_id(m, it, None, fmt));
            }
            v
        };
        let before_ids: Vec<String> = ch.before.map(ids_of).unwrap_or_default();
        let after_ids: HashSet<String> =
            after.map(ids_of).unwrap_or_default().into_iter().collect();
        let mut g = after
            .map(|it| item_group(ctx, m, it, from, to, z, x))
            .unwrap_or_default();
        for id in before_ids.iter().filter(|id| !after_ids.contains(*id)) {
            g.push(removed(id.clone()));
        }
        if g.is_empty() {
            // Changed, but nowhere in the window: the real service still reports it as removed.
            let it = after.or(ch.before).or(ch.after)?;
            g.push(removed(tenant.item_id(m, it, None, fmt)));
        }
        groups.push(((0, ch.item), g));
    }
    Some(groups)
}

/// `GET /users/{id}/events`, `…/calendar/events`, `…/calendars/{id}/events`
/// (`api-reference/v1.0/api/user-list-events.md`, `calendar-list-events.md`): the calendar's
/// single events and series masters — never occurrences or exceptions — in item order, paged
/// by `$top` (default 10) or `Prefer: odata.maxpagesize`, `$skip` in the `@odata.nextLink`;
/// `$count=true` adds `@odata.count` (the total, whatever the page size: a calendar's item count
/// with `$top=1`); `$select` and `$expand` (extended properties) as on calendarView.
pub(crate) fn list_events(ctx: &Ctx<'_>, m: &Mailbox, cal: Option<&str>) -> GraphResponse {
    let r = (|| {
        let z = out_zone(ctx)?;
        let size = page_size(ctx)?;
        let x = parse_expand(ctx);
        let fields = select_set(ctx);
        let offset: usize = match ctx.req.query.get("skip") {
            Some(s) => s.trim().parse().map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Invalid $skip value '{s}'."),
                )
            })?,
            None => 0,
        };
        let count = match ctx
            .req
            .query
            .get("count")
            .map(|c| c.trim().to_ascii_lowercase())
        {
            None => false,
            Some(c) if c == "true" => true,
            Some(c) if c == "false" => false,
            Some(c) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Invalid $count value '{c}'."),
                ));
            }
        };
        let tenant = ctx.state.control.tenant();
        let hidden = hidden(ctx, m);
        tenant
            .read(m.index, |s| {
                let c = resolve_calendar(ctx, m, s, cal)?;
                let items: Vec<&Item> = s
                    .items
                    .values()
                    .filter(|i| i.calendar == c && !hidden.contains(&i.num))
                    .collect();
                let page: Vec<Value> = items
                    .iter()
                    .skip(offset)
                    .take(size)
                    .filter_map(|item| {
                        let v = if item.series.is_some() {
                            let master = Instance {
                                item,
                                kind: InstanceKind::SingleInstance,
                                original_start: None,
                                start: item.data.start,
                                end: item.data.end,
                                data: &item.data,
                                version: item.version,
                                last_modified: item.last_modified,
                            };
                            event_json(ctx, m, &master, true, &z, x)
                        } else {
                            let i = item.instances(
                                item.data.start,
                                item.data.end + chrono::Duration::seconds(1),
                            );
                            event_json(ctx, m, i.first()?, false, &z, x)
                        };
                        Some(select(v, fields.as_ref()))
                    })
                    .collect();
                let mut body = json!({
                    "@odata.context": format!("{}/$metadata#users('{}')/events", ctx.base(), urlenc(&m.smtp)),
                });
                if count {
                    body["@odata.count"] = json!(items.len());
                }
                body["value"] = Value::Array(page);
                if offset + size < items.len() {
                    body["@odata.nextLink"] =
                        json!(link(ctx, "$skip", &(offset + size).to_string(), &["skip"]));
                }
                Ok(GraphResponse::ok(body))
            })
            .unwrap_or_else(|| Err(super::invalid_user(&m.smtp)))
    })();
    match r {
        Ok(r) => preference_applied(ctx, r, !ctx.req.query.contains_key("top")),
        Err(e) => e,
    }
}

/// `GET /users/{id}/events/{id}` (`api-reference/v1.0/api/event-get.md`), with
/// `$expand=singleValueExtendedProperties($filter=id eq 'Binary {6ED8DA90-450B-101B-98DA-00AA003F1305} Id 0x23')`.
pub(crate) fn get_event(ctx: &Ctx<'_>, m: &Mailbox, id: &str) -> GraphResponse {
    let tenant = ctx.state.control.tenant();
    let z = match out_zone(ctx) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let x = parse_expand(ctx);
    let fields = select_set(ctx);
    let Some(decoded) = crate::tenant::ids::decode_item(id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidIdMalformed",
            "Id is malformed.",
        );
    };
    if decoded.address.mailbox_guid != m.exchange_guid {
        return item_not_found();
    }
    let hidden = hidden(ctx, m);
    let r = tenant.read(m.index, |s| {
        let item = s
            .items
            .get(&decoded.address.item)
            .filter(|it| decoded.immutable || it.calendar == decoded.address.calendar)
            .filter(|it| !hidden.contains(&it.num))?;
        let v = match decoded.address.occurrence {
            None if item.series.is_some() => {
                let master = Instance {
                    item,
                    kind: InstanceKind::SingleInstance,
                    original_start: None,
                    start: item.data.start,
                    end: item.data.end,
                    data: &item.data,
                    version: item.version,
                    last_modified: item.last_modified,
                };
                event_json(ctx, m, &master, true, &z, x)
            }
            None => {
                let i = item.instances(
                    item.data.start,
                    item.data.end + chrono::Duration::seconds(1),
                );
                event_json(ctx, m, i.first()?, false, &z, x)
            }
            Some(orig) => {
                let series = item.series.as_ref()?;
                if series.deleted.contains(&orig) || !item.has_occurrence(orig) {
                    return None;
                }
                let (s0, e0) = match series.exceptions.get(&orig) {
                    Some(ex) => (ex.data.start, ex.data.end),
                    None => (orig, item.occurrence_end(orig)),
                };
                let inst = item.instances(s0, e0 + chrono::Duration::seconds(1));
                let i = inst.iter().find(|i| i.original_start == Some(orig))?;
                event_json(ctx, m, i, false, &z, x)
            }
        };
        let mut v = select(v, fields.as_ref());
        if let Value::Object(o) = &mut v {
            o.insert(
                "@odata.context".into(),
                json!(format!(
                    "{}/$metadata#users('{}')/events/$entity",
                    ctx.base(),
                    urlenc(&m.smtp)
                )),
            );
        }
        Some(v)
    });
    match r.flatten() {
        Some(v) => preference_applied(ctx, GraphResponse::ok(v), false),
        None => item_not_found(),
    }
}
