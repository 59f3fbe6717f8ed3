//! Graph's answers that are not successes, mapped to the diagnostics catalogue.
//!
//! Sources: `concepts/errors.md` (status codes, the error body), `concepts/throttling.md`
//! (429/503 with `Retry-After`), `concepts/auth-limit-mailbox-access.md` ("Access to OData is
//! disabled" for mailboxes outside the app's scope), `concepts/delta-query-overview.md`
//! (410 Gone / `syncStateNotFound`). The same mapping serves direct answers and the answers
//! inside a `$batch`.

use std::time::{Duration, SystemTime};

use calpump_backend_common::http::HttpResponse;
use calpump_backend_common::retry::parse_retry_after;
use calpump_backend_common::text;
use calpump_engine::diagnostics::catalogue::{general, graph};
use calpump_engine::diagnostics::{Diagnostic, DiagnosticInfo};
use calpump_engine::source::SourceError;
use serde_json::Value;

use crate::model::GraphError;

/// What a failed answer said, whichever way it came.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// What was asked (`calendarView of room-1@contoso.com`), for the detail.
    pub what: &'a str,
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub request_id: Option<String>,
    /// The parsed error body, if it was one.
    pub error: Option<GraphError>,
    /// An excerpt of a body that was not a Graph error.
    pub excerpt: Option<String>,
    /// The body was an HTML page.
    pub html: bool,
}

impl Failure<'_> {
    fn detail(&self) -> String {
        let mut out = format!("{}: HTTP {}", self.what, self.status);
        if let Some(e) = &self.error {
            if !e.code.is_empty() {
                out.push_str(&format!(" {}", e.code));
            }
            if !e.message.is_empty() {
                out.push_str(&format!(": {}", text::redact(&e.message)));
            }
        } else if let Some(excerpt) = &self.excerpt
            && !excerpt.is_empty()
        {
            out.push_str(&format!(": “{excerpt}”"));
        }
        if let Some(id) = self
            .request_id
            .as_deref()
            .or_else(|| self.error.as_ref().and_then(|e| e.request_id.as_deref()))
        {
            out.push_str(&format!(" (request id {id})"));
        }
        if let Some(after) = self.retry_after {
            out.push_str(&format!(", Retry-After {} s", after.as_secs()));
        }
        out
    }

    /// The catalogue entry and whether trying again can help.
    fn classify(&self) -> (&'static DiagnosticInfo, bool) {
        let code = self
            .error
            .as_ref()
            .map(|e| e.code.to_ascii_lowercase())
            .unwrap_or_default();
        let message = self
            .error
            .as_ref()
            .map(|e| e.message.to_ascii_lowercase())
            .unwrap_or_default();
        if code == "mailboxnotenabledforrestapi" || code == "mailboxnotsupportedforrestapi" {
            return (&graph::MAILBOX_NOT_ENABLED_FOR_REST, false);
        }
        if code.eq_ignore_ascii_case("syncstatenotfound")
            || code == "resyncrequired"
            || code == "syncstateinvalid"
            || self.status == 410
        {
            // Not retried as it is: the same token fails again. The caller drops the token.
            return (&graph::SYNC_STATE_NOT_FOUND, false);
        }
        match self.status {
            429 => (&graph::THROTTLED, true),
            503 if self.retry_after.is_some() => (&graph::THROTTLED, true),
            500..=599 => (&general::SERVER_ERROR, true),
            _ if self.html => (&general::HTML_INSTEAD_OF_API, false),
            401 if message.contains("scp or roles claim") => {
                (&graph::NO_PERMISSIONS_IN_TOKEN, false)
            }
            401 => (&graph::INVALID_TOKEN, false),
            403 if message.contains("access to odata is disabled")
                || message.contains("accesspolicy")
                || message.contains("access policy") =>
            {
                (&graph::ODATA_DISABLED, false)
            }
            403 if code == "authorization_requestdenied" => {
                (&graph::AUTHORIZATION_REQUEST_DENIED, false)
            }
            403 => (&graph::ACCESS_DENIED, false),
            404 => (&graph::NOT_FOUND, false),
            _ if code == "erroraccessdenied" => (&graph::ACCESS_DENIED, false),
            400 => (&graph::BAD_REQUEST, false),
            _ => (&graph::OTHER, false),
        }
    }

    pub fn into_error(self) -> SourceError {
        let (info, retryable) = self.classify();
        SourceError::new(Diagnostic::new(info, self.detail()))
            .retryable(retryable)
            .with_retry_after(self.retry_after)
    }
}

/// A non-2xx direct answer as a [`SourceError`].
pub fn from_response(what: &str, response: &HttpResponse) -> SourceError {
    let html = response.is_html();
    let error = if html {
        None
    } else {
        GraphError::from_body(&response.body)
    };
    Failure {
        what,
        status: response.status.as_u16(),
        retry_after: response.retry_after(),
        request_id: response.request_id().map(str::to_string),
        excerpt: if error.is_none() && !html {
            Some(response.excerpt())
        } else if html {
            Some(
                response
                    .html_title()
                    .map_or_else(|| response.excerpt(), |t| format!("page title {t}")),
            )
        } else {
            None
        },
        error,
        html,
    }
    .into_error()
}

/// A failed answer inside a `$batch` as a [`SourceError`].
pub fn from_batch_item(
    what: &str,
    status: u16,
    headers: &std::collections::BTreeMap<String, String>,
    body: &Value,
) -> SourceError {
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let error = GraphError::from_value(body);
    let html = body
        .as_str()
        .is_some_and(|s| text::looks_like_html(None, s.as_bytes()));
    Failure {
        what,
        status,
        retry_after,
        request_id: headers
            .get("request-id")
            .or_else(|| headers.get("client-request-id"))
            .cloned(),
        excerpt: if error.is_none() {
            Some(text::redact(&body.to_string()).chars().take(200).collect())
        } else {
            None
        },
        error,
        html,
    }
    .into_error()
}

/// Whether an error means "this delta token is no longer valid".
pub fn is_sync_state_gone(error: &SourceError) -> bool {
    error.code() == graph::SYNC_STATE_NOT_FOUND.code
}

/// Whether an error means "the token was refused" (401): worth one new token.
pub fn is_unauthorized(error: &SourceError) -> bool {
    error.code() == graph::INVALID_TOKEN.code || error.code() == graph::NO_PERMISSIONS_IN_TOKEN.code
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn item(status: u16, body: Value) -> SourceError {
        from_batch_item(
            "calendarView of room@contoso.com",
            status,
            &BTreeMap::new(),
            &body,
        )
    }

    #[test]
    fn mailbox_reasons() {
        let scoped = item(
            403,
            json!({"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."}}),
        );
        assert_eq!(scoped.code(), "graph.MailboxOutOfScope");
        assert!(!scoped.retryable);
        let denied = item(
            403,
            json!({"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}),
        );
        assert_eq!(denied.code(), "graph.ErrorAccessDenied");
        let onprem = item(
            404,
            json!({"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}),
        );
        assert_eq!(onprem.code(), "graph.MailboxNotEnabledForRESTAPI");
        let missing = item(
            404,
            json!({"error":{"code":"ErrorInvalidUser","message":"The requested user 'x' is invalid."}}),
        );
        assert_eq!(missing.code(), "graph.NotFound");
        assert!(missing.diagnostic.detail().contains("ErrorInvalidUser"));
    }

    #[test]
    fn throttling_and_sync_state() {
        let mut headers = BTreeMap::new();
        headers.insert("retry-after".to_string(), "7".to_string());
        let t = from_batch_item(
            "x",
            429,
            &headers,
            &json!({"error":{"code":"TooManyRequests","message":"Too many requests"}}),
        );
        assert_eq!(t.code(), "graph.Throttled");
        assert_eq!(t.retry_after, Some(Duration::from_secs(7)));
        assert!(t.retryable);
        let busy = from_batch_item("x", 503, &BTreeMap::new(), &Value::Null);
        assert_eq!(busy.code(), "http.ServerError");
        assert!(busy.retryable);
        let gone = item(
            410,
            json!({"error":{"code":"syncStateNotFound","message":"gone"}}),
        );
        assert!(is_sync_state_gone(&gone));
        let gone400 = item(
            400,
            json!({"error":{"code":"SyncStateNotFound","message":"gone"}}),
        );
        assert!(is_sync_state_gone(&gone400));
        let other = item(400, json!({"error":{"code":"BadRequest","message":"nope"}}));
        assert_eq!(other.code(), "graph.BadRequest");
        assert!(!other.retryable);
        let unauth = item(
            401,
            json!({"error":{"code":"InvalidAuthenticationToken","message":"expired"}}),
        );
        let no_roles = item(
            401,
            json!({"error":{"code":"InvalidAuthenticationToken","message":"Either scp or roles claim need to be present in the token."}}),
        );
        assert_eq!(no_roles.code(), "graph.NoPermissionsInToken");
        assert!(!no_roles.retryable);
        assert!(is_unauthorized(&no_roles));
        assert!(is_unauthorized(&unauth));
    }
}
