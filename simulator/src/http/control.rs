//! `/_sim/`: the control API over HTTP (JSON). Mirrors [`crate::control::Control`].

use super::AppState;
use crate::control::{FaultRule, Protocol};
use crate::tenant::{EventChange, MailboxKind, MutationError, NewEvent};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/mailboxes", get(mailboxes))
        .route("/_sim/roomlists", get(room_lists))
        .route("/_sim/truth", get(truth))
        .route("/_sim/stats", get(stats).delete(reset_stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route(
            "/_sim/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/limits", get(limits).put(set_limit))
        .route("/_sim/catalogue", get(catalogue))
        .route("/_sim/apps/{client_id}", axum::routing::patch(patch_app))
        .route("/_sim/accounts/{upn}", axum::routing::patch(patch_account))
        .route("/_sim/mailboxes/{smtp}/on_prem", put(set_on_prem))
        .route("/_sim/token_lifetime", put(set_token_lifetime))
        .route("/_sim/events", post(create_event))
        .route("/_sim/events/change", post(change_event))
        .route("/_sim/events/cancel_occurrence", post(cancel_occurrence))
        .route("/_sim/events/move", post(move_event))
        .route("/_sim/events/delete", post(delete_event))
        .route("/_sim/events/hide", post(hide_event))
        .route("/_sim/events/unhide", post(unhide_event))
        .route("/_sim/events/hidden", get(hidden_events))
        .route("/_sim/calendars", post(create_calendar))
}

fn err(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": msg.to_string() }))).into_response()
}

fn mutation_err(e: MutationError) -> Response {
    let status = match e {
        MutationError::Invalid(_) | MutationError::NotRecurring => StatusCode::BAD_REQUEST,
        _ => StatusCode::NOT_FOUND,
    };
    err(status, e)
}

async fn health(State(s): State<AppState>) -> Response {
    let t = s.control.tenant();
    let (dirty, cached) = t.materialised();
    let (from, to) = t.window();
    Json(json!({
        "ok": true,
        "seed": t.config.seed,
        "anchor": t.anchor(),
        "window": { "start": from, "end": to },
        "rooms": t.config.rooms,
        "events_per_room": t.config.events_per_room,
        "mailboxes": t.directory.mailboxes.len(),
        "room_lists": t.directory.room_lists.len(),
        "materialised": { "changed": dirty, "cached": cached },
        "base_url": &*s.base_url,
    }))
    .into_response()
}

async fn mailboxes(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = super::query_map(q.as_deref());
    let kind = q.get("kind").map(|k| k.to_ascii_lowercase());
    let t = s.control.tenant();
    let list: Vec<_> = t
        .directory
        .mailboxes
        .iter()
        .filter(|m| {
            kind.as_deref().is_none_or(|k| match m.kind {
                MailboxKind::User => k == "user",
                MailboxKind::Room => k == "room",
                MailboxKind::Equipment => k == "equipment",
            })
        })
        .map(|m| {
            json!({
                "smtp": m.smtp, "display_name": m.display_name, "kind": m.kind, "id": m.object_id.to_string(),
                "time_zone": m.zone.windows, "room_list": m.room_list.and_then(|l| t.directory.room_lists.get(l as usize)).map(|l| &l.smtp),
                "capacity": m.capacity, "on_prem": s.control.is_on_prem(m.index),
            })
        })
        .collect();
    Json(json!({ "mailboxes": list })).into_response()
}

async fn room_lists(State(s): State<AppState>) -> Response {
    let t = s.control.tenant();
    let lists: Vec<_> = t
        .directory
        .room_lists
        .iter()
        .map(|l| {
            json!({
                "smtp": l.smtp, "display_name": l.display_name, "id": l.object_id.to_string(),
                "rooms": l.rooms.iter().filter_map(|i| t.directory.get(*i)).map(|m| &m.smtp).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "room_lists": lists })).into_response()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc())
        })
}

/// `GET /_sim/truth?mailbox=&calendar=&start=&end=` (window defaults to the populated one).
async fn truth(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = super::query_map(q.as_deref());
    let Some(mailbox) = q.get("mailbox") else {
        return err(StatusCode::BAD_REQUEST, "mailbox is required");
    };
    let (mut from, mut to) = s.control.tenant().window();
    for (key, slot) in [("start", &mut from), ("end", &mut to)] {
        if let Some(v) = q.get(key) {
            match parse_time(v) {
                Some(t) => *slot = t,
                None => return err(StatusCode::BAD_REQUEST, format!("{key} is not a date-time")),
            }
        }
    }
    match s
        .control
        .truth(mailbox, q.get("calendar").map(String::as_str), from, to)
    {
        Ok(v) => Json(
            json!({ "mailbox": mailbox.to_lowercase(), "start": from, "end": to, "instances": v }),
        )
        .into_response(),
        Err(e) => mutation_err(e),
    }
}

async fn stats(State(s): State<AppState>) -> Response {
    Json(s.control.stats()).into_response()
}

async fn reset_stats(State(s): State<AppState>) -> Response {
    s.control.reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

async fn faults(State(s): State<AppState>) -> Response {
    let list: Vec<_> = s
        .control
        .faults()
        .into_iter()
        .map(|(id, r)| json!({ "id": id, "rule": r }))
        .collect();
    Json(json!({ "faults": list })).into_response()
}

async fn add_fault(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => (
            StatusCode::CREATED,
            Json(json!({ "id": s.control.add_fault(rule) })),
        )
            .into_response(),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(State(s): State<AppState>) -> Response {
    s.control.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(s): State<AppState>, Path(id): Path<u64>) -> Response {
    if s.control.remove_fault(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        err(StatusCode::NOT_FOUND, "no such fault")
    }
}

async fn limits(State(s): State<AppState>) -> Response {
    Json(json!({
        "graph": s.control.concurrency_limit(Protocol::Graph),
        "ews": s.control.concurrency_limit(Protocol::Ews),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LimitBody {
    protocol: Protocol,
    limit: Option<usize>,
}

async fn set_limit(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<LimitBody>(&body) {
        Ok(b) => {
            s.control.set_concurrency_limit(b.protocol, b.limit);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

async fn catalogue(State(s): State<AppState>) -> Response {
    Json(s.control.catalogue()).into_response()
}

/// Fields of an app that `PATCH /_sim/apps/{client_id}` may change.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AppPatch {
    consented: Option<bool>,
    secret: Option<String>,
    secret_expires: Option<i64>,
    certificate: Option<bool>,
    graph_roles: Option<Vec<String>>,
    ews_roles: Option<Vec<String>>,
    delegated_scopes: Option<Vec<String>>,
    scoped_to: Option<Vec<String>>,
    clear_scope: bool,
    assignment_required: Option<bool>,
}

async fn patch_app(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let p: AppPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let ok = s.control.update_app(&id, |a| {
        if let Some(v) = p.consented {
            a.consented = v;
        }
        if let Some(v) = p.secret {
            a.secret = Some(v);
        }
        if let Some(v) = p.secret_expires {
            a.secret_expires = Some(v);
        }
        if let Some(v) = p.certificate {
            a.certificate = v;
        }
        if let Some(v) = p.graph_roles {
            a.graph_roles = v;
        }
        if let Some(v) = p.ews_roles {
            a.ews_roles = v;
        }
        if let Some(v) = p.delegated_scopes {
            a.delegated_scopes = v;
        }
        if let Some(v) = p.scoped_to {
            a.scoped_to = Some(v.into_iter().map(|x| x.to_lowercase()).collect());
        }
        if p.clear_scope {
            a.scoped_to = None;
        }
        if let Some(v) = p.assignment_required {
            a.assignment_required = v;
        }
    });
    if ok {
        Json(s.control.app(&id)).into_response()
    } else {
        err(StatusCode::NOT_FOUND, "no such app")
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AccountPatch {
    password: Option<String>,
    impersonation: Option<bool>,
    mfa_required: Option<bool>,
    blocked_by_conditional_access: Option<bool>,
    assigned: Option<bool>,
}

async fn patch_account(
    State(s): State<AppState>,
    Path(upn): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let p: AccountPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let ok = s.control.update_account(&upn, |a| {
        if let Some(v) = p.password {
            a.password = v;
        }
        if let Some(v) = p.impersonation {
            a.impersonation = v;
        }
        if let Some(v) = p.mfa_required {
            a.mfa_required = v;
        }
        if let Some(v) = p.blocked_by_conditional_access {
            a.blocked_by_conditional_access = v;
        }
        if let Some(v) = p.assigned {
            a.assigned = v;
        }
    });
    if ok {
        Json(s.control.account(&upn)).into_response()
    } else {
        err(StatusCode::NOT_FOUND, "no such account")
    }
}

#[derive(Deserialize)]
struct OnPremBody {
    on_prem: bool,
}

async fn set_on_prem(
    State(s): State<AppState>,
    Path(smtp): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<OnPremBody>(&body) {
        Ok(b) if s.control.set_on_prem(&smtp, b.on_prem) => StatusCode::NO_CONTENT.into_response(),
        Ok(_) => err(StatusCode::NOT_FOUND, "no such mailbox"),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct LifetimeBody {
    secs: i64,
}

async fn set_token_lifetime(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<LifetimeBody>(&body) {
        Ok(b) => {
            s.control.set_token_lifetime(b.secs);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct CreateBody {
    mailbox: String,
    #[serde(flatten)]
    event: NewEvent,
}

async fn create_event(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<CreateBody>(&body) {
        Ok(b) => match s.control.create_event(&b.mailbox, &b.event) {
            Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
            Err(e) => mutation_err(e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct ChangeBody {
    mailbox: String,
    goid: String,
    #[serde(default)]
    occurrence: Option<DateTime<Utc>>,
    change: EventChange,
}

async fn change_event(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<ChangeBody>(&body) {
        Ok(b) => match s
            .control
            .change_event(&b.mailbox, &b.goid, b.occurrence, &b.change)
        {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => mutation_err(e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct OccurrenceBody {
    mailbox: String,
    goid: String,
    original_start: DateTime<Utc>,
}

async fn cancel_occurrence(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<OccurrenceBody>(&body) {
        Ok(b) => match s
            .control
            .cancel_occurrence(&b.mailbox, &b.goid, b.original_start)
        {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => mutation_err(e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct MoveBody {
    mailbox: String,
    goid: String,
    calendar: String,
}

async fn move_event(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<MoveBody>(&body) {
        Ok(b) => match s.control.move_event(&b.mailbox, &b.goid, &b.calendar) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => mutation_err(e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct DeleteBody {
    mailbox: String,
    goid: String,
}

async fn delete_event(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<DeleteBody>(&body) {
        Ok(b) => match s.control.delete_event(&b.mailbox, &b.goid) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => mutation_err(e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct HideBody {
    mailbox: String,
    goid: String,
    protocol: Protocol,
}

async fn set_hidden(s: AppState, body: axum::body::Bytes, hidden: bool) -> Response {
    match serde_json::from_slice::<HideBody>(&body) {
        Ok(b) => {
            let done = if hidden {
                s.control.hide_event(&b.mailbox, &b.goid, b.protocol)
            } else {
                s.control.unhide_event(&b.mailbox, &b.goid, b.protocol)
            };
            match done {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => mutation_err(e),
            }
        }
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

/// `POST /_sim/events/hide {"mailbox","goid","protocol":"graph"|"ews"}`.
async fn hide_event(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    set_hidden(s, body, true).await
}

/// `POST /_sim/events/unhide` (same body).
async fn unhide_event(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    set_hidden(s, body, false).await
}

async fn hidden_events(State(s): State<AppState>) -> Response {
    Json(json!({ "hidden": s.control.hidden_events() })).into_response()
}

#[derive(Deserialize)]
struct CalendarBody {
    mailbox: String,
    name: String,
    #[serde(default)]
    parent: Option<String>,
}

async fn create_calendar(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<CalendarBody>(&body) {
        Ok(b) => match s
            .control
            .create_calendar(&b.mailbox, &b.name, b.parent.as_deref())
        {
            Ok(i) => (StatusCode::CREATED, Json(json!({ "index": i }))).into_response(),
            Err(e) => mutation_err(e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}
