//! The HTTP server: one axum router for the control API (`/_sim/`), the token endpoint, Graph
//! (`/v1.0`) and the EWS module's routes; shared response helpers for injected faults.

pub mod control;

use crate::control::Control;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub control: Control,
    /// `http://127.0.0.1:PORT`, for absolute links (`@odata.nextLink`, token audiences).
    pub base_url: Arc<str>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(control::routes())
        .merge(crate::auth::routes())
        .merge(crate::graph::routes())
        .merge(crate::ews::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// The sign-in page a proxy or an expired SSO session answers with (status 200, HTML).
pub const HTML_LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in to your account</title></head>\
<body><form method=\"post\" action=\"/common/login\"><h1>Sign in</h1>\
<input type=\"email\" name=\"loginfmt\" placeholder=\"Email, phone, or Skype\"/>\
<input type=\"submit\" value=\"Next\"/></form></body></html>\n";

/// Answers an injected "body" fault from the handler's real response: a truncated or malformed
/// body, or the HTML login page. Other responses pass through.
pub async fn apply_body_fault(fault: Option<&crate::control::Fault>, resp: Response) -> Response {
    use crate::control::Fault;
    match fault {
        Some(Fault::HtmlLoginPage) => html_login_page(),
        Some(Fault::TruncatedBody) => {
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            let mut r = Response::from_parts(parts, Body::from(cut.clone()));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
            r
        }
        Some(Fault::MalformedBody) => {
            let (mut parts, _) = resp.into_parts();
            let junk: &'static [u8] = b"{\"value\":[{\"id\":\"AAMkA\x00\xff\xfe<<<]]>\x01garbage";
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(junk.len()));
            Response::from_parts(parts, Body::from(junk))
        }
        _ => resp,
    }
}

pub fn html_login_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        HTML_LOGIN_PAGE,
    )
        .into_response()
}

/// Parses a query string leniently: keys lower-cased, `+` and `%xx` decoded, repeated keys keep
/// the first value.
pub fn query_map(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    if let Some(q) = raw {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.trim().to_ascii_lowercase())
                .or_insert_with(|| v.into_owned());
        }
    }
    out
}

/// Requested id for tracing and error bodies: a fresh GUID per request.
pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let mut r = crate::tenant::rng::Rng::new(t ^ n.rotate_left(32));
    crate::tenant::rng::Guid::from_rng(&mut r).to_string()
}
