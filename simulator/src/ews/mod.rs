//! EWS and Autodiscover: SOAP 1.1 at `/EWS/Exchange.asmx`, SOAP Autodiscover at
//! `/autodiscover/autodiscover.svc`, POX Autodiscover at `/autodiscover/autodiscover.xml`, built on
//! the tenant model. [`routes`] is merged into the simulator's router.
//!
//! Start at [`ews`] (one request: authenticate, parse the envelope, admit, impersonate, run the
//! operation, render faults). Modules: `xml` (namespace-aware tree), `soap` (envelopes, faults),
//! `auth`/`ntlm`/`bearer` (Basic, NTLMv2 per connection, OAuth), `ops` (folders, FindItem,
//! GetItem, rooms, ResolveNames, ConvertId), `item` (CalendarItem rendering), `sync`
//! (SyncFolderItems), `autodiscover`, `state` (settings, NTLM connections, request log).

pub mod auth;
pub mod autodiscover;
mod bearer;
pub mod item;
pub mod ntlm;
pub mod ops;
pub mod soap;
pub mod state;
pub mod sync;
pub mod xml;

pub use state::{AutodiscoverRedirect, EwsSettings, RedirectKind, RequestRecord};

use crate::control::{Fault, Protocol, Refusal, RequestInfo};
use crate::http::{AppState, apply_body_fault};
use auth::Principal;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use soap::ConnectingSid;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one TCP connection (NTLM authenticates connections, not requests). The server
/// is started with `into_make_service_with_connect_info::<ConnId>()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId {
    pub addr: SocketAddr,
    /// Unique per accepted connection for the life of the process.
    pub id: u64,
}

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for ConnId {
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId {
            addr: *s.remote_addr(),
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// The EWS settings and request log of a simulator (Rust side of `/_sim/ews/…`).
pub fn settings(control: &crate::control::Control) -> std::sync::Arc<state::EwsState> {
    state::of(control)
}

const MAX_BODY: usize = 16 * 1024 * 1024;

/// The EWS module's routes.
pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for p in [
        "/EWS/Exchange.asmx",
        "/ews/exchange.asmx",
        "/EWS/exchange.asmx",
        "/ews/Exchange.asmx",
    ] {
        r = r.route(p, post(ews).get(ews_get));
    }
    for p in [
        "/autodiscover/autodiscover.svc",
        "/Autodiscover/Autodiscover.svc",
    ] {
        r = r.route(p, post(autodiscover_soap));
    }
    for p in [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
    ] {
        r = r.route(p, post(autodiscover_pox));
    }
    r.route("/_sim/ews/settings", get(get_settings).put(put_settings))
        .route(
            "/_sim/ews/requests",
            get(get_requests).delete(clear_requests),
        )
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

fn fault_response(f: &soap::Fault) -> Response {
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, f.to_xml())
}

/// What IIS answers when a throttling rule rejects a request.
fn throttled(status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut r = (
        code,
        [(header::CONTENT_TYPE, "text/html")],
        format!(
            "<!DOCTYPE html><html><head><title>{}</title></head><body><h1>{}</h1></body></html>",
            code.canonical_reason().unwrap_or("Service Unavailable"),
            code.canonical_reason().unwrap_or("Service Unavailable")
        ),
    )
        .into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// What Exchange Online answers an authenticated EWS or Autodiscover request when EWS is
/// blocked for the tenant, the app or the mailbox ([`Fault::EwsDisabled`]): `403 Forbidden`
/// and nothing else — no SOAP fault, no `x-ms-diagnostics` (those 2000xxx codes describe token
/// refusals, which are 401s). Clients see "The request failed. The remote server returned an
/// error: (403) Forbidden." (EWS Managed API). Sources: the Exchange team's EWS retirement
/// posts ("Exchange Online EWS, your time is almost up", "Introducing EWSAllowedAppIDs"),
/// `docs/exchange-web-services/how-to-control-access-to-ews-in-exchange.md` (EwsEnabled,
/// EwsApplicationAccessPolicy), reports of the 2025–2026 shut-off tests (HTTP 403 Forbidden on
/// EWS for the affected mailboxes).
fn ews_disabled() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    if let Ok(v) = HeaderValue::from_str(&crate::http::request_id()) {
        r.headers_mut().insert("request-id", v);
    }
    r
}

fn conn_of(req: &Request) -> Option<u64> {
    req.extensions()
        .get::<ConnectInfo<ConnId>>()
        .map(|c| c.0.id)
}

fn anchor_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-anchormailbox")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
}

async fn ews_get(State(app): State<AppState>, req: Request) -> Response {
    let st = state::of(&app.control);
    let conn = conn_of(&req);
    match auth::authenticate(&st, &app.control, &app.base_url, req.headers(), conn) {
        Ok(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>You have created a service.</body></html>",
        )
            .into_response(),
        Err(r) => *r,
    }
}

/// One EWS request.
async fn ews(State(app): State<AppState>, req: Request) -> Response {
    let conn = conn_of(&req);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let control = &app.control;
    let st = state::of(control);
    let principal = match auth::authenticate(&st, control, &app.base_url, &parts.headers, conn) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let anchor = anchor_of(&parts.headers);
    let tenant = control.tenant();
    let request = match soap::parse_request(&bytes) {
        Ok(r) => r,
        Err(f) => {
            let admission = control.admit(
                RequestInfo {
                    protocol: Protocol::Ews,
                    operation: "Invalid",
                    mailbox: None,
                    in_batch: false,
                },
                None,
            );
            // A blocked caller is refused before its envelope is read.
            if let Ok(a) = &admission
                && matches!(a.answer_fault(), Some(Fault::EwsDisabled))
            {
                return ews_disabled();
            }
            return fault_response(&f);
        }
    };
    let op_name = request.op.name.clone();
    let imp = request.impersonation.clone();
    let imp_value = imp.as_ref().map(|s| s.value().trim().to_lowercase());
    let stat_mailbox = imp_value
        .clone()
        .or_else(|| ops::named_mailbox(tenant, &request.op))
        .or_else(|| anchor.clone())
        .or_else(|| principal.own_mailbox().map(str::to_string));
    st.record(RequestRecord {
        operation: op_name.clone(),
        auth: principal.scheme().to_string(),
        principal: principal.key(),
        impersonated: imp_value.clone(),
        anchor_mailbox: anchor.clone(),
        mailbox: stat_mailbox.clone(),
        version: Some(request.version.name().to_string()),
    });
    let admission = match control.admit(
        RequestInfo {
            protocol: Protocol::Ews,
            operation: &op_name,
            mailbox: stat_mailbox.as_deref(),
            in_batch: false,
        },
        Some(&principal.key()),
    ) {
        Ok(a) => a,
        Err(Refusal::ConcurrencyLimit) => {
            let limit = control.concurrency_limit(Protocol::Ews).unwrap_or(0);
            return fault_response(&soap::Fault::exceeded_connection_count(limit));
        }
    };
    let latency = admission.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let injected = admission.answer_fault().cloned();
    match &injected {
        Some(Fault::EwsDisabled) => return ews_disabled(),
        Some(Fault::Throttle {
            status,
            retry_after,
        }) => return throttled(*status, *retry_after),
        Some(Fault::ServerError { status }) => {
            let f = soap::Fault::new(
                "ErrorInternalServerError",
                soap::text("ErrorInternalServerError"),
            );
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return xml_response(code, f.to_xml());
        }
        Some(Fault::EwsServerBusy {
            back_off_ms,
            in_body,
        }) => {
            if *in_body {
                let body = ops::error_body(
                    &op_name,
                    "ErrorServerBusy",
                    Some(format!(
                        "<t:Value Name=\"BackOffMilliseconds\">{back_off_ms}</t:Value>"
                    )),
                );
                return xml_response(StatusCode::OK, soap::envelope(&body));
            }
            return fault_response(&soap::Fault::server_busy(*back_off_ms));
        }
        Some(Fault::EwsExceededConnectionCount) => {
            let limit = control.concurrency_limit(Protocol::Ews).unwrap_or(27);
            return fault_response(&soap::Fault::exceeded_connection_count(limit));
        }
        Some(Fault::EwsInvalidSyncState) if op_name == "SyncFolderItems" => {
            let body = ops::error_body(&op_name, "ErrorInvalidSyncStateData", None);
            return xml_response(StatusCode::OK, soap::envelope(&body));
        }
        _ => {}
    }
    // ExchangeImpersonation (`exchangeimpersonation.md`, `how-to-identify-the-account-to-impersonate.md`).
    let acting;
    let impersonating = imp.is_some();
    if let Some(sid) = &imp {
        let target = match sid {
            ConnectingSid::Sid(_) => None,
            other => tenant.mailbox(other.value()),
        };
        let Some(target) = target else {
            return fault_response(&soap::Fault::new(
                "ErrorNonExistentMailbox",
                soap::text("ErrorNonExistentMailbox"),
            ));
        };
        let allowed = match &principal {
            Principal::App { .. } => true,
            Principal::Account { upn, .. } | Principal::Delegated { upn, .. } => {
                control.account(upn).is_some_and(|a| a.impersonation)
            }
        };
        if !allowed {
            return fault_response(&soap::Fault::new(
                "ErrorImpersonateUserDenied",
                soap::text("ErrorImpersonateUserDenied"),
            ));
        }
        acting = Some(target.index);
    } else {
        match &principal {
            Principal::App { .. } => {
                // App-only tokens act for a mailbox only through impersonation; the anchor
                // mailbox alone is accepted for directory operations.
                match anchor.as_deref().and_then(|a| tenant.mailbox(a)) {
                    Some(m) => acting = Some(m.index),
                    None => {
                        return fault_response(&soap::Fault::new(
                            "ErrorInvalidExchangeImpersonationHeaderData",
                            soap::text("ErrorInvalidExchangeImpersonationHeaderData"),
                        ));
                    }
                }
            }
            Principal::Account { upn, .. } | Principal::Delegated { upn, .. } => {
                acting = tenant.mailbox(upn).map(|m| m.index);
            }
        }
    }
    let ctx = ops::Ctx {
        control,
        base_url: &app.base_url,
        principal: &principal,
        req: &request,
        acting,
        impersonating,
    };
    let result = match op_name.as_str() {
        "GetFolder" => ops::get_folder(&ctx),
        "FindFolder" => ops::find_folder(&ctx),
        "FindItem" => ops::find_item(&ctx),
        "GetItem" => ops::get_item(&ctx),
        "SyncFolderItems" => sync::sync_folder_items(&ctx),
        "GetRoomLists" => ops::get_room_lists(&ctx),
        "GetRooms" => ops::get_rooms(&ctx),
        "ResolveNames" => ops::resolve_names(&ctx),
        "ConvertId" => ops::convert_id(&ctx),
        other => Err(soap::Fault::new(
            "ErrorInvalidOperation",
            format!("The operation '{other}' is not supported by this server."),
        )),
    };
    let resp = match result {
        Ok(body) => xml_response(StatusCode::OK, soap::envelope(&body)),
        Err(f) => fault_response(&f),
    };
    let resp = apply_body_fault(injected.as_ref(), resp).await;
    drop(admission);
    resp
}

/// Shared by both Autodiscover flavours: authenticate, admit, faults.
async fn autodiscover_common(
    app: &AppState,
    req: Request,
    operation: &str,
    mailbox_of: impl FnOnce(&[u8]) -> Option<String>,
    answer: impl FnOnce(&[u8], &str) -> Response,
) -> Response {
    let conn = conn_of(&req);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let st = state::of(&app.control);
    let principal = match auth::authenticate(&st, &app.control, &app.base_url, &parts.headers, conn)
    {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mailbox = mailbox_of(&bytes).map(|m| m.to_lowercase());
    st.record(RequestRecord {
        operation: operation.to_string(),
        auth: principal.scheme().to_string(),
        principal: principal.key(),
        impersonated: None,
        anchor_mailbox: anchor_of(&parts.headers),
        mailbox: mailbox.clone(),
        version: None,
    });
    let admission = match app.control.admit(
        RequestInfo {
            protocol: Protocol::Autodiscover,
            operation,
            mailbox: mailbox.as_deref(),
            in_batch: false,
        },
        None,
    ) {
        Ok(a) => a,
        Err(Refusal::ConcurrencyLimit) => return throttled(503, None),
    };
    let latency = admission.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let injected = admission.answer_fault().cloned();
    match &injected {
        Some(Fault::EwsDisabled) => return ews_disabled(),
        Some(Fault::Throttle {
            status,
            retry_after,
        }) => return throttled(*status, *retry_after),
        Some(Fault::ServerError { status }) => {
            return StatusCode::from_u16(*status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        _ => {}
    }
    let ews_url = format!("{}/EWS/Exchange.asmx", app.base_url);
    let resp = answer(&bytes, &ews_url);
    apply_body_fault(injected.as_ref(), resp).await
}

async fn autodiscover_soap(State(app): State<AppState>, req: Request) -> Response {
    let tenant = app.control.tenant();
    let redirect = state::of(&app.control).settings().autodiscover_redirect;
    autodiscover_common(
        &app,
        req,
        "GetUserSettings",
        |b| {
            xml::parse(b)
                .ok()
                .and_then(|r| autodiscover::soap_users(&r))
                .and_then(|u| u.first().cloned())
        },
        |b, url| match xml::parse(b) {
            Ok(root) => {
                match autodiscover::get_user_settings(tenant, &root, url, redirect.as_ref()) {
                    Ok(x) => xml_response(StatusCode::OK, x),
                    Err(f) => fault_response(&f),
                }
            }
            Err(e) => fault_response(&soap::Fault::schema(&e.message, e.line, e.column)),
        },
    )
    .await
}

async fn autodiscover_pox(State(app): State<AppState>, req: Request) -> Response {
    let tenant = app.control.tenant();
    let redirect = state::of(&app.control).settings().autodiscover_redirect;
    autodiscover_common(
        &app,
        req,
        "Autodiscover",
        |b| {
            xml::parse(b).ok().and_then(|r| {
                r.child(autodiscover::POX_REQUEST, "Request")
                    .and_then(|q| q.child_text(autodiscover::POX_REQUEST, "EMailAddress"))
                    .map(str::to_string)
            })
        },
        |b, url| {
            xml_response(
                StatusCode::OK,
                autodiscover::pox(tenant, b, url, redirect.as_ref()),
            )
        },
    )
    .await
}

async fn get_settings(State(app): State<AppState>) -> Response {
    axum::Json(state::of(&app.control).settings()).into_response()
}

async fn put_settings(
    State(app): State<AppState>,
    axum::Json(s): axum::Json<EwsSettings>,
) -> Response {
    let st = state::of(&app.control);
    st.set_settings(s);
    axum::Json(st.settings()).into_response()
}

async fn get_requests(State(app): State<AppState>) -> Response {
    axum::Json(serde_json::json!({ "requests": state::of(&app.control).requests() }))
        .into_response()
}

async fn clear_requests(State(app): State<AppState>) -> Response {
    state::of(&app.control).clear_requests();
    StatusCode::NO_CONTENT.into_response()
}
