//! The daemon's two HTML pages. Every text that comes from configuration, a server or a sink is
//! escaped ([`escape`]): a room name or an error detail is untrusted input.

use std::fmt::Write as _;

use serde_json::Value;

use super::App;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one URL path segment.
pub(crate) fn url_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}\
.bad{color:#a00}.warn{color:#a60}.ok{color:#060}small{color:#666}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta http-equiv=\"refresh\" content=\"30\"><style>{STYLE}</style></head><body>\n{body}</body></html>\n",
        escape(title)
    )
}

pub(crate) fn index(app: &App) -> String {
    let mut body = String::from("<h1>calpump</h1>\n<ul>\n");
    body.push_str(
        "<li><a href=\"/status\">Status</a> (<a href=\"/status?format=json\">JSON</a>)</li>\n",
    );
    body.push_str("<li><a href=\"/metrics\">Metrics</a></li>\n<li><a href=\"/healthz\">Health</a></li>\n</ul>\n");
    let served: Vec<_> = app.sinks.iter().filter(|s| s.out_dir.is_some()).collect();
    if !served.is_empty() {
        body.push_str("<h2>Sink pages</h2>\n<ul>\n");
        for sink in served {
            let _ = writeln!(
                body,
                "<li><a href=\"/sinks/{}/\">{}</a> <small>({})</small></li>",
                url_segment(&sink.name),
                escape(&sink.name),
                escape(&sink.plugin)
            );
        }
        body.push_str("</ul>\n");
    }
    page("calpump", &body)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

fn diagnostic(v: &Value) -> String {
    if v.is_null() {
        return "—".to_string();
    }
    let mut out = format!("<b>{}</b>", text(&v["code"]));
    if let Some(title) = v["title"].as_str() {
        let _ = write!(out, " {}", escape(title));
    }
    if let Some(detail) = v["detail"].as_str()
        && !detail.is_empty()
    {
        let _ = write!(out, "<br><small>{}</small>", escape(detail));
    }
    if let Some(remedy) = v["remedy"].as_str() {
        let _ = write!(out, "<br><small>Remedy: {}</small>", escape(remedy));
    }
    out
}

/// Shadow mode's rows of a route's table: the last comparison's counts and the mailboxes that
/// differ.
fn shadow(body: &mut String, shadow: &Value) {
    if shadow.is_null() {
        return;
    }
    let last = &shadow["last"];
    if last.is_null() {
        let _ = write!(
            body,
            "<tr><th>shadow</th><td>{} — not compared yet</td></tr>",
            text(&shadow["profile"])
        );
        return;
    }
    let class = if last["clean"].as_bool() == Some(true) {
        "ok"
    } else {
        "warn"
    };
    let _ = write!(
        body,
        "<tr><th>shadow</th><td class=\"{class}\">{} ({}) · {} differences: {} only in the route's profile, \
         {} only in the shadow, {} changed · unreadable: {} / {} · {} rewrites · {}</td></tr>",
        text(&shadow["profile"]),
        text(&last["backend"]),
        text(&last["differences"]),
        text(&last["only_in_profile"]),
        text(&last["only_in_shadow"]),
        text(&last["changed"]),
        text(&last["unreadable_profile"]),
        text(&last["unreadable_shadow"]),
        text(&last["rewrites"]),
        text(&last["compared_at"]),
    );
    let empty = Vec::new();
    for m in last["mailbox_differences"].as_array().unwrap_or(&empty) {
        let mut what = Vec::new();
        for (key, label) in [
            ("only_in_profile", "only in the route's profile"),
            ("only_in_shadow", "only in the shadow"),
        ] {
            for e in m[key].as_array().unwrap_or(&empty) {
                what.push(format!(
                    "{label}: {} ({})",
                    text(&e["subject"]),
                    text(&e["start"])
                ));
            }
        }
        for e in m["changed"].as_array().unwrap_or(&empty) {
            let fields: Vec<String> = e["fields"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|f| {
                    format!(
                        "{}: {} → {}",
                        text(&f["field"]),
                        text(&f["current"]),
                        text(&f["target"])
                    )
                })
                .collect();
            what.push(format!("{} — {}", text(&e["subject"]), fields.join("; ")));
        }
        for key in ["profile_errors", "shadow_errors"] {
            for d in m[key].as_array().unwrap_or(&empty) {
                what.push(diagnostic(d));
            }
        }
        let _ = write!(
            body,
            "<tr><th>{}</th><td class=\"warn\">{}</td></tr>",
            text(&m["mailbox"]),
            what.join("<br>")
        );
    }
}

/// The status page, rendered from the same document `/status?format=json` returns.
pub(crate) fn status(doc: &Value) -> String {
    let mut body = format!(
        "<h1>calpump status</h1>\n<p><small>version {} · running since {} · <a href=\"/\">home</a></small></p>\n",
        text(&doc["version"]),
        text(&doc["started_at"])
    );
    let empty = Vec::new();
    let secrets = doc["secrets"].as_array().unwrap_or(&empty);
    if !secrets.is_empty() {
        body.push_str("<h2>Secrets and certificates</h2>\n<table><tr><th>profile</th><th>what</th><th>expires</th><th>days left</th><th>problem</th></tr>\n");
        for s in secrets {
            let class = match s["status"].as_str() {
                Some("expired") => "bad",
                Some("expires_soon") => "warn",
                _ => "ok",
            };
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td class=\"{class}\">{}</td></tr>",
                text(&s["profile"]),
                text(&s["what"]),
                text(&s["expires"]),
                text(&s["days_left"]),
                if s["code"].is_null() {
                    "—".to_string()
                } else {
                    diagnostic(s)
                },
            );
        }
        body.push_str("</table>\n");
    }
    let sinks = doc["sinks"].as_array().unwrap_or(&empty);
    if !sinks.is_empty() {
        body.push_str("<h2>Sinks</h2>\n<table><tr><th>sink</th><th>plugin</th><th>state</th><th>next wake-up</th></tr>\n");
        for s in sinks {
            let stuck = &s["stuck"];
            let state = if stuck.is_null() {
                "<td class=\"ok\">taking calls</td>".to_string()
            } else {
                format!(
                    "<td class=\"bad\">stuck: its {} call has been running since {} ({} s, {} call(s)); calls are refused until it returns</td>",
                    text(&stuck["call"]),
                    text(&stuck["since"]),
                    text(&stuck["seconds"]),
                    text(&stuck["calls"]),
                )
            };
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td>{state}<td>{}</td></tr>",
                text(&s["name"]),
                text(&s["plugin"]),
                text(&s["next_wakeup"]),
            );
        }
        body.push_str("</table>\n");
    }
    for route in doc["routes"].as_array().unwrap_or(&empty) {
        let last = &route["last_run"];
        let status = last["status"].as_str().unwrap_or("never run");
        let class = match status {
            "ok" => "ok",
            "partial" | "cancelled" | "interrupted" => "warn",
            _ => "bad",
        };
        let _ = write!(
            body,
            "<h2>Route {}</h2>\n<table><tr><th>profile</th><td>{} ({})</td></tr>\
             <tr><th>last sync</th><td class=\"{class}\">{} · {} → {}</td></tr>\
             <tr><th>counts</th><td>{}</td></tr><tr><th>next sync</th><td>{}{}</td></tr>",
            text(&route["name"]),
            text(&route["profile"]),
            text(&route["backend"]),
            escape(status),
            text(&last["started_at"]),
            text(&last["finished_at"]),
            text(&last["counts"]),
            text(&route["next_sync"]),
            if route["running"].as_bool() == Some(true) {
                " (running now)"
            } else {
                ""
            },
        );
        for error in last["errors"].as_array().unwrap_or(&empty) {
            let _ = write!(
                body,
                "<tr><th>error</th><td class=\"bad\">{}</td></tr>",
                diagnostic(error)
            );
        }
        for event in route["events"].as_array().unwrap_or(&empty) {
            let _ = write!(
                body,
                "<tr><th>{}</th><td>{}<br>{}</td></tr>",
                text(&event["kind"]),
                text(&event["at"]),
                diagnostic(event)
            );
        }
        shadow(&mut body, &route["shadow"]);
        body.push_str("</table>\n<table><tr><th>mailbox</th><th>last success</th><th>failing since</th><th>last error</th><th>warning</th></tr>\n");
        for mb in route["mailboxes"].as_array().unwrap_or(&empty) {
            let _ = writeln!(
                body,
                "<tr><td>{}<br><small>{}</small></td><td>{}</td><td class=\"bad\">{}</td><td>{}</td><td class=\"warn\">{}</td></tr>",
                text(&mb["address"]),
                text(&mb["name"]),
                text(&mb["last_success"]),
                text(&mb["failing_since"]),
                diagnostic(&mb["last_error"]),
                diagnostic(&mb["last_warning"]),
            );
        }
        body.push_str("</table>\n");
    }
    page("calpump status", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_outside_is_escaped() {
        let doc = serde_json::json!({
            "version": "0.1.0",
            "started_at": "2026-11-28T10:00:00Z",
            "routes": [{
                "name": "<script>alert(1)</script>",
                "profile": "p", "backend": "memory", "running": false,
                "last_run": {"status": "failed", "errors": [{"code": "sink.Failed", "detail": "<img src=x onerror=y>"}]},
                "events": [{"kind": "switch", "at": "2026-11-28T09:00:00Z", "code": "sync.BackendSwitched", "note": "<iframe>", "detail": "a <iframe> b"}],
                "mailboxes": [{"address": "a@b.c", "name": "Room \"<1>\"", "last_error": null, "last_warning": null}],
            }],
        });
        let page = status(&doc);
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<img"));
        assert!(!page.contains("<iframe") && page.contains("a &lt;iframe&gt; b"));
        assert!(page.contains("Room &quot;&lt;1&gt;&quot;"));
        assert_eq!(url_segment("a b/c"), "a%20b%2Fc");
    }
}
