//! Short, secret-free excerpts of what a server sent back, for diagnostics' details.
//!
//! A response body can carry tokens (a token endpoint's answer), passwords (a login form that
//! echoes its fields) or a client secret (a misbehaving proxy). Everything that goes into a
//! [`Diagnostic`](calpump_engine::diagnostics::Diagnostic)'s detail or a log line passes through
//! [`redact`] first.

/// Longest excerpt of a body shown in a detail, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Key names whose values are never shown (case-insensitive, as `key=value`, `"key":"value"` or
/// `key: value`).
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "password",
    "passwd",
    "authorization",
];

/// Opaque runs at least this long (tokens, client secrets, keys) are replaced. A GUID (36
/// characters) stays readable: trace and request ids help admins.
const OPAQUE_RUN: usize = 40;

/// Replaces secret-looking parts of `text`: values of [`SECRET_KEYS`], `Bearer …`/`Basic …`
/// credentials, and long opaque runs (JWTs, client secrets, base64 keys) → `[redacted]`.
pub fn redact(text: &str) -> String {
    let keyed = redact_keyed_values(text);
    redact_opaque_runs(&keyed)
}

fn is_opaque_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=' | '%')
}

fn redact_opaque_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= OPAQUE_RUN
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic())
        {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_opaque_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn redact_keyed_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if let Some(end) = secret_value_span(&lower, bytes, i) {
            // `end.0` is where the value starts, `end.1` where it ends.
            out.push_str(&text[i..end.0]);
            out.push_str("[redacted]");
            i = end.1;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// When a secret key or an auth scheme starts at `at`, returns (value start, value end).
fn secret_value_span(lower: &str, bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let rest = &lower[at..];
    // Only at a word start.
    if at > 0 {
        let prev = bytes[at - 1];
        if prev.is_ascii_alphanumeric() || prev == b'_' {
            return None;
        }
    }
    for scheme in ["bearer ", "basic ", "ntlm ", "negotiate "] {
        if rest.starts_with(scheme) {
            let start = at + scheme.len();
            let end = value_end(bytes, start, None, false);
            if end > start {
                return Some((start, end));
            }
        }
    }
    for key in SECRET_KEYS {
        if !rest.starts_with(key) {
            continue;
        }
        let mut j = at + key.len();
        // The key must end here (`password`, not `passwordPolicy`).
        if j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
            continue;
        }
        let mut quote = None;
        if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
            j += 1; // closing quote of a JSON key
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || !(bytes[j] == b'=' || bytes[j] == b':') {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
            quote = Some(bytes[j]);
            j += 1;
        }
        // A header value (`Authorization: Bearer …`) runs to the end of the line.
        let whole_line = *key == "authorization";
        let end = value_end(bytes, j, quote, whole_line);
        if end > j {
            return Some((j, end));
        }
    }
    None
}

fn value_end(bytes: &[u8], start: usize, quote: Option<u8>, whole_line: bool) -> usize {
    let mut k = start;
    while k < bytes.len() {
        let b = bytes[k];
        let stop = match quote {
            Some(q) => b == q,
            None if whole_line => matches!(b, b'&' | b'"' | b'<' | b'\r' | b'\n'),
            None => matches!(
                b,
                b'&' | b' ' | b',' | b';' | b'"' | b'\'' | b'<' | b'\r' | b'\n'
            ),
        };
        if stop {
            break;
        }
        k += 1;
    }
    k
}

/// Whether a body is an HTML page (by content type, or by its first tag).
pub fn looks_like_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if let Some(ct) = content_type {
        let ct = ct.to_ascii_lowercase();
        if ct.starts_with("text/html") || ct.starts_with("application/xhtml") {
            return true;
        }
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") {
        return true;
    }
    // XHTML: an XML declaration, then an HTML root.
    trimmed.starts_with("<?xml") && (head.contains("<!doctype html") || head.contains("<html"))
}

/// The text of an HTML page's `<title>`, whitespace collapsed, entities for `&amp; &lt; &gt;`
/// decoded.
pub fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let content_start = open + lower[open..].find('>')? + 1;
    let content_end = content_start + lower[content_start..].find("</title")?;
    let title = collapse_whitespace(&decode_entities(&text[content_start..content_end]));
    if title.is_empty() {
        None
    } else {
        Some(redact(&truncate_chars(&title, 120)))
    }
}

/// A short, redacted excerpt of a body: the visible text of an HTML page, or the start of
/// anything else, whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
pub fn excerpt(content_type: Option<&str>, body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_string();
    }
    let limited = &body[..body.len().min(16 * 1024)];
    let text = String::from_utf8_lossy(limited);
    let visible = if looks_like_html(content_type, body) {
        strip_tags(&text)
    } else {
        text.into_owned()
    };
    let collapsed = collapse_whitespace(&visible);
    // Redact before cutting, so a token cut in half is still recognised.
    let redacted = redact(&collapsed);
    let mut out = truncate_chars(&redacted, EXCERPT_CHARS);
    if redacted.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        // Skip script and style elements whole.
        let skipped = ["script", "style"].iter().find_map(|tag| {
            if rest.starts_with(&format!("<{tag}")) {
                let close = format!("</{tag}");
                rest.find(&close).map(|end| {
                    let after = i + end;
                    after + lower[after..].find('>').map_or(close.len(), |g| g + 1)
                })
            } else {
                None
            }
        });
        if let Some(next) = skipped {
            out.push(' ');
            i = next;
            continue;
        }
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => {
                    out.push(' ');
                    i += end + 1;
                }
                None => break,
            }
            continue;
        }
        let Some(c) = html[i..].chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    decode_entities(&out)
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_passwords_are_redacted() {
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
        let body = format!(
            r#"{{"token_type":"Bearer","access_token":"{jwt}","refresh_token":"0.AAAA-short","expires_in":3599}}"#
        );
        let out = redact(&body);
        assert!(!out.contains("eyJ0"), "{out}");
        assert!(!out.contains("AAAA-short"), "{out}");
        assert!(out.contains("expires_in"));
        let form = "grant_type=password&username=svc%40contoso.com&password=hunter2&client_id=abc";
        let out = redact(form);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("client_id=abc"));
        assert!(!redact("Authorization: Bearer abc.def.ghi").contains("abc.def"));
        // Trace ids (GUIDs) stay.
        let guid = "0000aaaa-11bb-cccc-dd33-eeeeee333333";
        assert!(redact(&format!("Trace ID: {guid}")).contains(guid));
        // A bare Entra-style client secret value is redacted.
        assert!(!redact("Abc8Q~1234567890abcdefghijklmnopqrstuvwxyz0").contains("Abc8Q"));
    }

    #[test]
    fn html_pages_are_recognised_and_titled() {
        let page = b"<!DOCTYPE html>\n<html><head><title>\n Sign in &amp; continue </title><script>var x='<b>';</script></head><body><h1>Proxy login</h1><form><input name=password></form></body></html>";
        assert!(looks_like_html(None, page));
        assert!(looks_like_html(Some("text/html; charset=utf-8"), b"oops"));
        assert!(!looks_like_html(Some("application/json"), b"{\"a\":1}"));
        assert!(!looks_like_html(
            None,
            b"<?xml version=\"1.0\"?><s:Envelope/>"
        ));
        assert_eq!(html_title(page).as_deref(), Some("Sign in & continue"));
        let e = excerpt(Some("text/html"), page);
        assert!(
            e.contains("Proxy login") && !e.contains("<h1>") && !e.contains("var x"),
            "{e}"
        );
    }

    #[test]
    fn excerpts_are_short() {
        let long = "x ".repeat(1000);
        let e = excerpt(None, long.as_bytes());
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt(None, b""), "(empty body)");
    }
}
