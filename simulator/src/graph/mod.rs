//! Microsoft Graph v1.0 at `/v1.0`: users, calendars, calendarView (+ delta), events, places,
//! `$batch`, translateExchangeIds. Each handler names the doc page of
//! `microsoftgraph/microsoft-graph-docs-contrib` it follows.
//!
//! Requests are parsed leniently as the real service does: path segments and query option
//! names are case-insensitive, `$` on system query options is optional.

mod directory;
mod events;
pub mod log;

use crate::auth::{self, Audience, Claims, TokenError};
use crate::control::{Fault, Protocol, Refusal, RequestInfo};
use crate::http::{AppState, apply_body_fault, request_id};
use crate::tenant::{IdFormat, Mailbox};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The Graph request log of a simulator: every request and `$batch` sub-request with the
/// `Prefer` preferences it carried.
pub fn requests(control: &crate::control::Control) -> std::sync::Arc<log::GraphLog> {
    log::of(control)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1.0/{*rest}", any(entry))
        .route("/v1.0", any(entry))
}

/// A Graph request, from HTTP or from inside a `$batch`.
#[derive(Debug, Clone)]
pub(crate) struct GraphRequest {
    pub method: Method,
    /// Path segments after `/v1.0/`, percent-decoded.
    pub segments: Vec<String>,
    /// Query options: names lower-cased, leading `$` removed.
    pub query: HashMap<String, String>,
    /// The raw query string (for links).
    pub raw_query: String,
    pub authorization: Option<String>,
    pub client_request_id: Option<String>,
    pub prefer: Prefer,
    pub body: Bytes,
    pub in_batch: bool,
}

/// `Prefer` header preferences Graph honours here.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefer {
    pub max_page_size: Option<usize>,
    /// `outlook.timezone` as given (Windows or IANA name).
    pub timezone: Option<String>,
    pub immutable_id: bool,
    pub body_text: bool,
}

impl Prefer {
    fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Prefer {
        let mut p = Prefer::default();
        for v in values {
            for part in split_prefer(v) {
                let (k, val) = match part.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_string(),
                    ),
                    None => (part.trim().to_ascii_lowercase(), String::new()),
                };
                match k.as_str() {
                    "odata.maxpagesize" => p.max_page_size = val.parse().ok(),
                    "outlook.timezone" => p.timezone = Some(val),
                    "idtype" => p.immutable_id = val.eq_ignore_ascii_case("ImmutableId"),
                    "outlook.body-content-type" => p.body_text = val.eq_ignore_ascii_case("text"),
                    _ => {}
                }
            }
        }
        p
    }

    pub fn id_format(&self) -> IdFormat {
        if self.immutable_id {
            IdFormat::RestImmutable
        } else {
            IdFormat::Rest
        }
    }
}

/// Splits a Prefer header value on commas outside quotes.
fn split_prefer(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in v.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' | ';' if !quoted => {
                out.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// A Graph answer before it becomes HTTP (or a `$batch` sub-response).
#[derive(Debug, Clone)]
pub(crate) struct GraphResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl GraphResponse {
    pub fn ok(body: Value) -> Self {
        GraphResponse {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

/// The error body of Graph (`concepts/errors.md`): `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> GraphResponse {
    GraphResponse {
        status,
        headers: Vec::new(),
        body: Some(json!({ "error": { "code": code, "message": message } })),
    }
}

fn finish_error_body(r: &mut GraphResponse, rid: &str, crid: &str) {
    if let Some(Value::Object(o)) = r.body.as_mut()
        && let Some(Value::Object(e)) = o.get_mut("error")
        && !e.contains_key("innerError")
    {
        e.insert(
            "innerError".into(),
            json!({
                "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": rid,
                "client-request-id": crid,
            }),
        );
    }
}

/// What a route resolved to.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    User(String),
    Users,
    Calendars(String),
    /// (user, calendar id or None for the default)
    Calendar(String, Option<String>),
    CalendarView {
        user: String,
        calendar: Option<String>,
        delta: bool,
    },
    Event {
        user: String,
        id: String,
    },
    /// `GET …/events`: singles and series masters of a calendar (None = the default one).
    Events {
        user: String,
        calendar: Option<String>,
    },
    PlacesRooms,
    PlacesRoomLists,
    RoomListRooms(String),
    Batch,
    TranslateIds(String),
}

impl Route {
    fn operation(&self) -> &'static str {
        match self {
            Route::User(_) => "user",
            Route::Users => "users",
            Route::Calendars(_) => "calendars",
            Route::Calendar(..) => "calendar",
            Route::CalendarView { delta: false, .. } => "calendarView",
            Route::CalendarView { delta: true, .. } => "calendarView.delta",
            Route::Event { .. } => "event",
            Route::Events { .. } => "events",
            Route::PlacesRooms => "places.rooms",
            Route::PlacesRoomLists => "places.roomLists",
            Route::RoomListRooms(_) => "places.roomListRooms",
            Route::Batch => "batch",
            Route::TranslateIds(_) => "translateExchangeIds",
        }
    }
    fn user(&self) -> Option<&str> {
        match self {
            Route::User(u)
            | Route::Calendars(u)
            | Route::Calendar(u, _)
            | Route::TranslateIds(u) => Some(u),
            Route::CalendarView { user, .. }
            | Route::Event { user, .. }
            | Route::Events { user, .. } => Some(user),
            _ => None,
        }
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Maps path segments to a route; `me` becomes the token's user.
fn route(
    method: &Method,
    segs: &[String],
    claims: Option<&Claims>,
) -> Result<Route, GraphResponse> {
    let s: Vec<&str> = segs
        .iter()
        .map(String::as_str)
        .filter(|x| !x.is_empty())
        .collect();
    let bad = || {
        error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                s.last().copied().unwrap_or("")
            ),
        )
    };
    // users/{id}/… or me/…
    let (user, rest): (Option<String>, &[&str]) = match s.as_slice() {
        [u, id, rest @ ..] if eq(u, "users") => (Some((*id).to_string()), rest),
        [me, rest @ ..] if eq(me, "me") => match claims.and_then(|c| c.upn.clone()) {
            Some(upn) => (Some(upn), rest),
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                ));
            }
        },
        _ => (None, &[]),
    };
    if let Some(u) = user {
        let is_view = |x: &str| eq(x, "calendarView");
        return match rest {
            [] => Ok(Route::User(u)),
            [c] if eq(c, "calendars") => Ok(Route::Calendars(u)),
            [c] if eq(c, "calendar") => Ok(Route::Calendar(u, None)),
            [c, id] if eq(c, "calendars") => Ok(Route::Calendar(u, Some((*id).to_string()))),
            [v] if is_view(v) => Ok(Route::CalendarView {
                user: u,
                calendar: None,
                delta: false,
            }),
            [v, d] if is_view(v) && eq(d, "delta") => Ok(Route::CalendarView {
                user: u,
                calendar: None,
                delta: true,
            }),
            [c, v] if eq(c, "calendar") && is_view(v) => Ok(Route::CalendarView {
                user: u,
                calendar: None,
                delta: false,
            }),
            [c, v, d] if eq(c, "calendar") && is_view(v) && eq(d, "delta") => {
                Ok(Route::CalendarView {
                    user: u,
                    calendar: None,
                    delta: true,
                })
            }
            [c, id, v] if eq(c, "calendars") && is_view(v) => Ok(Route::CalendarView {
                user: u,
                calendar: Some((*id).to_string()),
                delta: false,
            }),
            [c, id, v, d] if eq(c, "calendars") && is_view(v) && eq(d, "delta") => {
                Ok(Route::CalendarView {
                    user: u,
                    calendar: Some((*id).to_string()),
                    delta: true,
                })
            }
            [e] if eq(e, "events") => Ok(Route::Events {
                user: u,
                calendar: None,
            }),
            [c, e] if eq(c, "calendar") && eq(e, "events") => Ok(Route::Events {
                user: u,
                calendar: None,
            }),
            [c, id, e] if eq(c, "calendars") && eq(e, "events") => Ok(Route::Events {
                user: u,
                calendar: Some((*id).to_string()),
            }),
            [e, id] if eq(e, "events") => Ok(Route::Event {
                user: u,
                id: (*id).to_string(),
            }),
            [c, e, id] if eq(c, "calendar") && eq(e, "events") => Ok(Route::Event {
                user: u,
                id: (*id).to_string(),
            }),
            [c, _, e, id] if eq(c, "calendars") && eq(e, "events") => Ok(Route::Event {
                user: u,
                id: (*id).to_string(),
            }),
            [t] if eq(t, "translateExchangeIds")
                || eq(t, "microsoft.graph.translateExchangeIds") =>
            {
                if method == Method::POST {
                    Ok(Route::TranslateIds(u))
                } else {
                    Err(method_not_allowed())
                }
            }
            _ => Err(bad()),
        };
    }
    match s.as_slice() {
        [u] if eq(u, "users") => Ok(Route::Users),
        [p, t] if eq(p, "places") && eq(t, "microsoft.graph.room") => Ok(Route::PlacesRooms),
        [p, t] if eq(p, "places") && eq(t, "microsoft.graph.roomlist") => {
            Ok(Route::PlacesRoomLists)
        }
        [p, id, t, r] if eq(p, "places") && eq(t, "microsoft.graph.roomlist") && eq(r, "rooms") => {
            Ok(Route::RoomListRooms((*id).to_string()))
        }
        [b] if eq(b, "$batch") => {
            if method == Method::POST {
                Ok(Route::Batch)
            } else {
                Err(method_not_allowed())
            }
        }
        _ => Err(bad()),
    }
}

fn method_not_allowed() -> GraphResponse {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "The HTTP method is not allowed for the resource.",
    )
}

/// Everything a handler needs.
pub(crate) struct Ctx<'a> {
    pub state: &'a AppState,
    pub req: &'a GraphRequest,
}

impl Ctx<'_> {
    pub fn base(&self) -> String {
        format!("{}/v1.0", self.state.base_url)
    }
}

fn throttled(status: u16, retry_after: Option<u64>) -> GraphResponse {
    let r = if status == 503 {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please retry later.",
        )
    } else {
        error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            "TooManyRequests",
            "Too many requests. Please retry later.",
        )
    };
    match retry_after {
        Some(s) => r.header("Retry-After", s.to_string()),
        None => r,
    }
}

/// Runs one Graph request: stats, faults, limits, auth, permissions, then the handler.
pub(crate) async fn dispatch(
    state: &AppState,
    req: &GraphRequest,
) -> (GraphResponse, Option<Fault>) {
    let claims = auth::validate_bearer(
        &state.control,
        req.authorization.as_deref(),
        Audience::Graph,
    );
    let routed = route(&req.method, &req.segments, claims.as_ref().ok());
    let tenant = state.control.tenant();
    let mailbox: Option<&Mailbox> = routed
        .as_ref()
        .ok()
        .and_then(Route::user)
        .and_then(|u| tenant.mailbox(u));
    let smtp = mailbox.map(|m| m.smtp.as_str());
    log::of(&state.control).record(log::GraphRequestRecord {
        operation: routed
            .as_ref()
            .map_or("unrouted", Route::operation)
            .to_string(),
        method: req.method.to_string(),
        mailbox: smtp.map(str::to_string),
        in_batch: req.in_batch,
        query: req.raw_query.clone(),
        immutable_id: req.prefer.immutable_id,
        timezone: req.prefer.timezone.clone(),
        max_page_size: req.prefer.max_page_size,
    });
    let route = match routed {
        Ok(r) => r,
        Err(e) => return (e, None),
    };
    let op = route.operation();
    let admission = match state.control.admit(
        RequestInfo {
            protocol: Protocol::Graph,
            operation: op,
            mailbox: smtp,
            in_batch: req.in_batch,
        },
        smtp,
    ) {
        Ok(a) => a,
        // Exchange Online answers a fifth concurrent request on a mailbox like this
        // (concepts/throttling-limits.md, "Outlook service limits": 4 concurrent requests).
        Err(Refusal::ConcurrencyLimit) => {
            return (
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                ),
                None,
            );
        }
    };
    let delay = admission.latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let fault = admission.answer_fault().cloned();
    match &fault {
        Some(Fault::Throttle {
            status,
            retry_after,
        }) => return (throttled(*status, *retry_after), None),
        Some(Fault::ServerError { status }) => {
            let st = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = if st == StatusCode::SERVICE_UNAVAILABLE {
                "ServiceUnavailable"
            } else {
                "InternalServerError"
            };
            return (
                error(
                    st,
                    code,
                    "An internal server error occurred. The operation failed.",
                ),
                None,
            );
        }
        Some(Fault::SyncStateNotFound)
            if matches!(route, Route::CalendarView { delta: true, .. }) =>
        {
            return (events::sync_state_not_found(), None);
        }
        _ => {}
    }
    let claims = match claims {
        Ok(c) => c,
        Err(e) => {
            let msg = match e {
                TokenError::Missing => "Access token is empty.",
                TokenError::Expired => "Lifetime validation failed, the token is expired.",
                TokenError::WrongAudience => "Access token validation failure. Invalid audience.",
                TokenError::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
                TokenError::BadSignature => "Access token validation failure.",
            };
            let r = error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", msg)
                .header("WWW-Authenticate", www_authenticate(state));
            return (r, None);
        }
    };
    // A token without any permission claim (an app whose admin consent is missing gets one from
    // the client-credentials grant) is refused before any permission check.
    if claims.roles.is_empty() && claims.scp.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return (
            error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Either scp or roles claim need to be present in the token.",
            )
            .header("WWW-Authenticate", www_authenticate(state)),
            None,
        );
    }
    if let Err(r) = authorize(state, &route, &claims, mailbox) {
        return (r, fault);
    }
    let ctx = Ctx { state, req };
    let resp = match &route {
        Route::User(u) => directory::user(&ctx, u),
        Route::Users => directory::users(&ctx),
        Route::Calendars(_) => directory::calendars(&ctx, mailbox),
        Route::Calendar(_, cal) => directory::calendar(&ctx, mailbox, cal.as_deref()),
        Route::CalendarView {
            calendar, delta, ..
        } => match mailbox {
            Some(m) if *delta => events::delta(&ctx, m, calendar.as_deref()),
            Some(m) => events::calendar_view(&ctx, m, calendar.as_deref()),
            None => invalid_user(route.user().unwrap_or("")),
        },
        Route::Event { id, .. } => match mailbox {
            Some(m) => events::get_event(&ctx, m, id),
            None => invalid_user(route.user().unwrap_or("")),
        },
        Route::Events { calendar, .. } => match mailbox {
            Some(m) => events::list_events(&ctx, m, calendar.as_deref()),
            None => invalid_user(route.user().unwrap_or("")),
        },
        Route::PlacesRooms => directory::rooms(&ctx),
        Route::PlacesRoomLists => directory::room_lists(&ctx),
        Route::RoomListRooms(list) => directory::room_list_rooms(&ctx, list),
        Route::TranslateIds(_) => match mailbox {
            Some(m) => directory::translate_ids(&ctx, m),
            None => invalid_user(route.user().unwrap_or("")),
        },
        Route::Batch => Box::pin(batch(state, req)).await,
    };
    drop(admission);
    (resp, fault)
}

fn www_authenticate(state: &AppState) -> String {
    format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        state.base_url
    )
}

pub(crate) fn invalid_user(u: &str) -> GraphResponse {
    error(
        StatusCode::NOT_FOUND,
        "ErrorInvalidUser",
        &format!("The requested user '{u}' is invalid."),
    )
}

fn access_denied() -> GraphResponse {
    error(
        StatusCode::FORBIDDEN,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
}

/// Permissions: application roles / delegated scopes per resource, application access
/// policies (`concepts/auth-limit-mailbox-access.md`), mailboxes still on-premises.
fn authorize(
    state: &AppState,
    route: &Route,
    claims: &Claims,
    mailbox: Option<&Mailbox>,
) -> Result<(), GraphResponse> {
    let any = |ps: &[&str]| ps.iter().any(|p| claims.has(p));
    let mailbox_op = matches!(
        route,
        Route::Calendars(_)
            | Route::Calendar(..)
            | Route::CalendarView { .. }
            | Route::Event { .. }
            | Route::Events { .. }
            | Route::TranslateIds(_)
    );
    const USER_READ: &[&str] = &[
        "User.Read.All",
        "User.ReadBasic.All",
        "Directory.Read.All",
        "User.Read",
        "User.ReadWrite.All",
    ];
    const PLACE_READ: &[&str] = &["Place.Read.All", "Place.ReadWrite.All"];
    const CALENDAR_READ: &[&str] = &[
        "Calendars.Read",
        "Calendars.ReadWrite",
        "Calendars.ReadBasic",
        "Calendars.ReadBasic.All",
        "Calendars.Read.Shared",
    ];
    let is_user = matches!(route, Route::User(_) | Route::Users);
    let is_place = matches!(
        route,
        Route::PlacesRooms | Route::PlacesRoomLists | Route::RoomListRooms(_)
    );
    if is_user && !any(USER_READ) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    // translateExchangeIds (`user-translateexchangeids.md`): application User.Read.All or
    // User.ReadWrite.All; delegated User.ReadBasic.All, User.Read, User.ReadWrite,
    // User.Read.All, User.ReadWrite.All. Calendar permissions do not cover it.
    const TRANSLATE_APP: &[&str] = &["User.Read.All", "User.ReadWrite.All"];
    const TRANSLATE_DELEGATED: &[&str] = &[
        "User.ReadBasic.All",
        "User.Read",
        "User.ReadWrite",
        "User.Read.All",
        "User.ReadWrite.All",
    ];
    let calendar_op = mailbox_op && !matches!(route, Route::TranslateIds(_));
    let translate_denied = matches!(route, Route::TranslateIds(_))
        && !any(if claims.is_app() {
            TRANSLATE_APP
        } else {
            TRANSLATE_DELEGATED
        });
    if (is_place && !any(PLACE_READ)) || (calendar_op && !any(CALENDAR_READ)) || translate_denied {
        return Err(access_denied());
    }
    if mailbox_op {
        let Some(m) = mailbox else { return Ok(()) };
        if claims.is_app()
            && let Some(app) = state.control.app(&claims.appid)
            && let Some(scope) = &app.scoped_to
            && !scope.iter().any(|s| s.eq_ignore_ascii_case(&m.smtp))
        {
            return Err(error(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            ));
        }
        if state.control.is_on_prem(m.index) {
            return Err(error(
                StatusCode::NOT_FOUND,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            ));
        }
    }
    Ok(())
}

/// How many sub-requests of one `$batch` run at the same time. Graph hands up to four
/// individual requests of a batch to the workload at once (Microsoft Q&A 1660054, answer by
/// Microsoft: "Microsoft Graph dispatches up to four individual requests from a batch to the
/// Outlook service simultaneously").
const BATCH_PARALLELISM: usize = 4;

fn bad_batch(message: &str) -> GraphResponse {
    error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// The id of a batch item as written (a JSON string, or a number's text).
fn batch_id(r: &Value) -> String {
    r.get("id")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default()
}

/// One `$batch` item turned into a Graph request (or the answer it gets without running).
fn batch_item(outer: &GraphRequest, r: &Value) -> Result<GraphRequest, GraphResponse> {
    let method = r
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| m.to_ascii_uppercase().parse::<Method>().ok())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid method."))?;
    let url = r.get("url").and_then(Value::as_str).unwrap_or("");
    let mut headers = HashMap::new();
    if let Some(h) = r.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                headers.insert(k.to_ascii_lowercase(), v.to_string());
            }
        }
    }
    let body = match r.get("body") {
        Some(b) => Bytes::from(serde_json::to_vec(b).unwrap_or_default()),
        None => Bytes::new(),
    };
    let path = url.trim_start_matches('/');
    let path = path.strip_prefix("v1.0/").unwrap_or(path);
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let prefer = headers
        .get("prefer")
        .map(String::as_str)
        .into_iter()
        .chain(outer_prefer(outer));
    Ok(GraphRequest {
        method,
        segments: segments(p),
        query: graph_query(q),
        raw_query: q.to_string(),
        authorization: headers
            .get("authorization")
            .cloned()
            .or_else(|| outer.authorization.clone()),
        client_request_id: headers.get("client-request-id").cloned(),
        prefer: Prefer::parse(prefer),
        body,
        in_batch: true,
    })
}

/// Runs one sub-request like a request of its own (stats, faults, the mailbox's concurrency
/// limit, auth). Boxed as a `Send` future so sub-requests can run on their own tasks.
fn run_batch_item(
    state: AppState,
    sub: GraphRequest,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = GraphResponse> + Send>> {
    Box::pin(async move {
        let (mut resp, _) = dispatch(&state, &sub).await;
        finish_error_body(
            &mut resp,
            &request_id(),
            sub.client_request_id.as_deref().unwrap_or(""),
        );
        resp
    })
}

/// `POST /$batch` (`concepts/json-batching.md`): at most 20 requests, each answered with its own
/// status, headers and body inside a 200. Each sub-request is evaluated on its own (statistics,
/// faults, throttling, the per-mailbox concurrency limit: a batch can hold 429s).
///
/// * `id` is required and unique, not case-sensitive; otherwise the whole batch is a 400.
/// * Without `dependsOn` the batch is parallel: up to [`BATCH_PARALLELISM`] sub-requests run at
///   once, each taking a slot of its mailbox's concurrency limit like any request — so requests
///   to one mailbox in flight outside the batch can make sub-requests answer 429
///   `ApplicationThrottled`.
/// * With `dependsOn` the batch must be fully sequential (the doc's "Batch should be either fully
///   sequential or fully parallel"; a mix is a 400, as observed): every request after the first
///   depends on requests *earlier in the array* — a reference to a later, unknown or its own id
///   is a 400 (observed: "the API expects that the dependency appears earlier in the array",
///   `microsoftgraph/msgraph-sdk-dotnet-core#891`), so cycles cannot occur. The requests run one
///   after the other in array order; one whose dependency failed (status ≥ 400, including 424)
///   answers 424 Failed Dependency without running.
async fn batch(state: &AppState, outer: &GraphRequest) -> GraphResponse {
    let Ok(body) = serde_json::from_slice::<Value>(&outer.body) else {
        return bad_batch("Invalid batch payload format.");
    };
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return bad_batch("Invalid batch payload format.");
    };
    if requests.len() > 20 {
        return bad_batch("The number of batch requests exceeds the limit of 20.");
    }
    let ids: Vec<String> = requests.iter().map(batch_id).collect();
    let mut seen = std::collections::HashSet::new();
    for id in &ids {
        if id.is_empty() || !seen.insert(id.to_lowercase()) {
            return bad_batch("Batch request ids must be present and unique.");
        }
    }
    // dependsOn: indexes of earlier requests.
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let mut d = Vec::new();
        if let Some(list) = r.get("dependsOn") {
            let Some(list) = list.as_array() else {
                return bad_batch(&format!("Invalid dependency for request Id '{}'.", ids[i]));
            };
            for x in list {
                let want = x
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string());
                match ids[..i]
                    .iter()
                    .position(|id| id.eq_ignore_ascii_case(&want))
                {
                    Some(j) => d.push(j),
                    None => {
                        return bad_batch(&format!(
                            "Invalid dependency for request Id '{}': '{want}' is not an earlier request of the batch.",
                            ids[i]
                        ));
                    }
                }
            }
        }
        deps.push(d);
    }
    let sequential = deps.iter().any(|d| !d.is_empty());
    if sequential && deps.iter().skip(1).any(Vec::is_empty) {
        return bad_batch("Batch should be either fully sequential or fully parallel.");
    }
    let mut answers: Vec<Option<GraphResponse>> = vec![None; requests.len()];
    if sequential {
        for i in 0..requests.len() {
            let failed = deps[i].iter().any(|j| {
                answers[*j]
                    .as_ref()
                    .is_none_or(|a| a.status.as_u16() >= 400)
            });
            answers[i] = Some(if failed {
                error(
                    StatusCode::FAILED_DEPENDENCY,
                    "BadRequest",
                    "Failed dependency.",
                )
            } else {
                match batch_item(outer, &requests[i]) {
                    Ok(sub) => run_batch_item(state.clone(), sub).await,
                    Err(e) => e,
                }
            });
        }
    } else {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(BATCH_PARALLELISM));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, r) in requests.iter().enumerate() {
            match batch_item(outer, r) {
                Ok(sub) => {
                    let permits = permits.clone();
                    let state = state.clone();
                    tasks.spawn(async move {
                        let _permit = permits.acquire_owned().await;
                        (i, run_batch_item(state, sub).await)
                    });
                }
                Err(e) => answers[i] = Some(e),
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((i, resp)) = done {
                answers[i] = Some(resp);
            }
        }
    }
    let out: Vec<Value> = ids
        .iter()
        .zip(answers)
        .map(|(id, resp)| {
            let resp = resp.unwrap_or_else(|| {
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "An internal server error occurred. The operation failed.",
                )
            });
            let mut headers = serde_json::Map::new();
            for (k, v) in &resp.headers {
                headers.insert(k.clone(), json!(v));
            }
            if resp.body.is_some() {
                headers.insert("Content-Type".into(), json!("application/json"));
            }
            let mut item = json!({ "id": id, "status": resp.status.as_u16(), "headers": headers });
            if let Some(b) = resp.body {
                item["body"] = b;
            }
            item
        })
        .collect();
    GraphResponse::ok(json!({ "responses": out }))
}

/// Batch sub-requests inherit nothing from the outer Prefer header except what they lack; the
/// real service requires per-request headers, so this returns nothing.
fn outer_prefer(_outer: &GraphRequest) -> std::iter::Empty<&str> {
    std::iter::empty()
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').map(percent_decode).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query options: names lower-cased, `$` optional.
fn graph_query(q: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let k = k.trim().to_ascii_lowercase();
        let k = k.strip_prefix('$').unwrap_or(&k).to_string();
        out.entry(k).or_insert_with(|| v.into_owned());
    }
    out
}

async fn entry(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let rest = path
        .strip_prefix("/v1.0")
        .unwrap_or(path)
        .trim_start_matches('/');
    let raw_query = uri.query().unwrap_or("").to_string();
    let crid = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let req = GraphRequest {
        method,
        segments: segments(rest),
        query: graph_query(&raw_query),
        raw_query,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        client_request_id: crid.clone(),
        prefer: Prefer::parse(
            headers
                .get_all("prefer")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
        body,
        in_batch: false,
    };
    let (mut resp, fault) = dispatch(&state, &req).await;
    let rid = request_id();
    finish_error_body(&mut resp, &rid, crid.as_deref().unwrap_or(""));
    let mut http = Response::builder().status(resp.status);
    if let Some(h) = http.headers_mut() {
        h.insert(
            "request-id",
            HeaderValue::from_str(&rid).unwrap_or(HeaderValue::from_static("")),
        );
        if let Some(c) = crid.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
            h.insert("client-request-id", c);
        }
        for (k, v) in &resp.headers {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                h.append(k, v);
            }
        }
        if resp.body.is_some() {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"),
            );
        }
    }
    let body = match resp.body {
        Some(v) => Body::from(serde_json::to_vec(&v).unwrap_or_default()),
        None => Body::empty(),
    };
    let http = http
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()));
    apply_body_fault(fault.as_ref(), http).await
}
