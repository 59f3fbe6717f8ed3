//! The daemon's HTTP routes (axum).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::json;

use super::{App, html};
use crate::diagnostics::catalogue;
use crate::state::{HistoryFilter, RunKind, RunRecord};

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/sinks/{sink}", get(sink_redirect))
        .route("/sinks/{sink}/", get(sink_root))
        .route("/sinks/{sink}/{*path}", get(sink_file))
        .with_state(app)
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn html_page(body: String) -> Response {
    let mut response = with_type(body, "text/html; charset=utf-8");
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

async fn index(State(app): State<Arc<App>>) -> Response {
    html_page(html::index(&app))
}

async fn healthz() -> Response {
    with_type("ok\n", "text/plain; charset=utf-8")
}

async fn metrics() -> Response {
    let metrics = crate::metrics::global();
    metrics.gauge_set("calpump_up", "1 while the daemon runs.", &[], 1.0);
    with_type(metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
}

/// A shadow comparison in `/status`: the counts, and per mailbox that is not clean what
/// differs (events only in one profile, changed fields, read failures), at most 20 events each.
/// A private or confidential meeting comes masked from the comparison (subject and
/// organizer-typed values `(private)`, `private: true`; see [`crate::migrate::compare`]).
fn shadow_json(
    s: &crate::runner::ShadowReport,
    describe: &dyn Fn(&str, &str) -> serde_json::Value,
) -> serde_json::Value {
    const EVENTS: usize = 20;
    let errors = |list: &[crate::migrate::CalendarError]| {
        list.iter()
            .map(|e| {
                let mut d = describe(e.diagnostic.code(), e.diagnostic.detail());
                d["calendar"] = json!(e.calendar);
                d
            })
            .collect::<Vec<_>>()
    };
    json!({
        "backend": s.backend,
        "compared_at": s.compared_at,
        "seconds": s.seconds,
        "clean": s.clean,
        "differences": s.differences,
        "only_in_profile": s.summary.only_in_current,
        "only_in_shadow": s.summary.only_in_target,
        "changed": s.summary.changed,
        "rewrites": s.summary.rewrites,
        "mailboxes_compared": s.summary.compared,
        "mailboxes": s.summary.mailboxes,
        "unreadable_profile": s.summary.unreadable_current,
        "unreadable_shadow": s.summary.unreadable_target,
        "events_profile": s.summary.current_events,
        "events_shadow": s.summary.target_events,
        "interrupted": s.interrupted,
        "route_errors": s.route_errors.iter().map(|d| describe(d.code(), d.detail())).collect::<Vec<_>>(),
        "mailboxes_truncated": s.mailboxes_truncated,
        "mailbox_differences": s.mailboxes.iter().map(|m| json!({
            "mailbox": m.mailbox,
            "name": m.name,
            "differences": m.differences(),
            "only_in_profile": m.only_in_current.iter().take(EVENTS).collect::<Vec<_>>(),
            "only_in_shadow": m.only_in_target.iter().take(EVENTS).collect::<Vec<_>>(),
            "changed": m.changed.iter().take(EVENTS).collect::<Vec<_>>(),
            "profile_errors": errors(&m.current_errors),
            "shadow_errors": errors(&m.target_errors),
        })).collect::<Vec<_>>(),
    })
}

/// How many of a route's latest events (switches, …) `/status` lists.
const EVENTS: u32 = 10;

/// An event of the run history (not a sync) in `/status`: kind, when, the note, and the
/// catalogue's title and remedy for its kind.
fn event_json(
    e: &RunRecord,
    describe: &dyn Fn(&str, &str) -> serde_json::Value,
) -> serde_json::Value {
    let mut d = match e.kind {
        RunKind::Switch => describe(
            catalogue::migrate::BACKEND_SWITCHED.code,
            e.note.as_deref().unwrap_or_default(),
        ),
        _ => json!({ "detail": e.note }),
    };
    d["id"] = json!(e.id);
    d["kind"] = json!(e.kind);
    d["at"] = json!(e.started_at);
    d["note"] = json!(e.note);
    if let Some(data) = &e.data {
        d["data"] = data.clone();
    }
    d
}

/// The status document, as JSON.
pub(crate) async fn status_json(app: &App) -> serde_json::Value {
    let board = app.board().clone();
    let mut routes = Vec::new();
    for route in &app.routes {
        let entry = board.get(&route.name).cloned().unwrap_or_default();
        let history = |filter, limit| async move {
            match app.state.history(Some(&route.name), filter, limit).await {
                Ok(runs) => runs,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read run history for /status");
                    Vec::new()
                }
            }
        };
        // The last sync; events such as a switch are listed apart, never as its errors.
        let last_run = history(HistoryFilter::Syncs, 1).await.into_iter().next();
        let events = history(HistoryFilter::Events, EVENTS).await;
        let mailboxes: Vec<_> = app
            .state
            .mailbox_status(Some(&route.name))
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|m| route.has_mailbox(&m.mailbox))
            .collect();
        let describe = |code: &str, detail: &str| {
            let info = catalogue::lookup(code);
            json!({
                "code": code,
                "title": info.map(|i| i.en.title),
                "remedy": info.map(|i| i.en.remedy),
                "detail": detail,
            })
        };
        let shadow = route.shadow_profile.as_ref().map(|profile| {
            let last = entry.last_report.as_ref().and_then(|r| r.shadow.as_ref());
            json!({
                "profile": profile,
                "compared": last.is_some(),
                "last": last.map(|s| shadow_json(s, &describe)),
            })
        });
        routes.push(json!({
            "name": route.name,
            "profile": route.profile,
            "backend": route.backend,
            "shadow": shadow,
            "interval_seconds": route.interval.as_secs(),
            "sinks": route.sinks,
            "running": entry.running,
            "next_sync": entry.next_sync,
            "last_run": last_run.map(|run| json!({
                "id": run.id,
                "status": run.status,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "counts": run.counts,
                "errors": run.errors.iter().map(|e| {
                    let mut d = describe(&e.code, &e.detail);
                    d["mailbox"] = json!(e.mailbox);
                    d
                }).collect::<Vec<_>>(),
            })),
            "events": events.iter().map(|e| event_json(e, &describe)).collect::<Vec<_>>(),
            "mailboxes": mailboxes.iter().map(|m| json!({
                "address": m.mailbox,
                "name": m.name,
                "last_attempt": m.last_attempt,
                "last_success": m.last_success,
                "failing_since": m.failing_since,
                "last_error": m.last_error.as_ref().map(|e| describe(&e.code, &e.detail)),
                "last_warning": m.last_warning.as_ref().map(|e| describe(&e.code, &e.detail)),
            })).collect::<Vec<_>>(),
        }));
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": app.started_at,
        "routes": routes,
        "secrets": super::expiry::status_json(app),
        "sinks": app.sinks.iter().map(|s| json!({
            "name": s.name,
            "plugin": s.plugin,
            "next_wakeup": s.handle.next_wakeup(),
            "pages": s.out_dir.as_ref().map(|_| format!("/sinks/{}/", s.name)),
            // A call that outlived its timeout: the sink refuses calls until it returns.
            "stuck": s.handle.stuck().map(|st| json!({
                "call": st.call,
                "since": st.since,
                "seconds": (Utc::now() - st.since).num_seconds().max(0),
                "calls": st.calls,
            })),
        })).collect::<Vec<_>>(),
    })
}

async fn status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wants_json = query.get("format").is_some_and(|f| f == "json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
    let document = status_json(&app).await;
    if wants_json {
        with_type(document.to_string(), "application/json")
    } else {
        html_page(html::status(&document))
    }
}

async fn sink_redirect(UrlPath(sink): UrlPath<String>) -> Response {
    Redirect::permanent(&format!("/sinks/{}/", html::url_segment(&sink))).into_response()
}

async fn sink_root(State(app): State<Arc<App>>, UrlPath(sink): UrlPath<String>) -> Response {
    serve(&app, &sink, "").await
}

async fn sink_file(
    State(app): State<Arc<App>>,
    UrlPath((sink, path)): UrlPath<(String, String)>,
) -> Response {
    serve(&app, &sink, &path).await
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// A path inside `root`, refusing anything that could leave it (`..`, absolute parts, hidden
/// files).
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for part in rel.split('/') {
        if part.is_empty() {
            continue;
        }
        if part.starts_with('.') || part.contains('\\') {
            return None;
        }
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(c)), None) => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn serve(app: &App, sink: &str, rel: &str) -> Response {
    let Some(root) = app
        .sinks
        .iter()
        .find(|s| s.name == sink)
        .and_then(|s| s.out_dir.clone())
    else {
        return not_found();
    };
    let Some(mut path) = inside(&root, rel) else {
        return not_found();
    };
    // Symlinks must not lead outside the directory either.
    let (Ok(root), Ok(canonical)) = (root.canonicalize(), path.canonicalize()) else {
        return not_found();
    };
    if !canonical.starts_with(&root) {
        return not_found();
    }
    if canonical.is_dir() {
        if !rel.is_empty() && !rel.ends_with('/') {
            return Redirect::permanent(&format!("/sinks/{}/{}/", html::url_segment(sink), rel))
                .into_response();
        }
        path = canonical.join("index.html");
    } else {
        path = canonical;
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => with_type(bytes, content_type(&path)),
        Err(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_directory() {
        let root = Path::new("/srv/signs");
        assert_eq!(
            inside(root, "a/b.html"),
            Some(PathBuf::from("/srv/signs/a/b.html"))
        );
        assert_eq!(inside(root, ""), Some(PathBuf::from("/srv/signs")));
        assert_eq!(inside(root, "../etc/passwd"), None);
        assert_eq!(inside(root, "a/../../x"), None);
        assert_eq!(inside(root, ".hidden"), None);
        assert_eq!(inside(root, "a\\..\\b"), None);
    }
}
