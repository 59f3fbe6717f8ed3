//! Entra ID's error bodies, read leniently, mapped to the catalogue.
//!
//! Microsoft Entra, "authentication and authorization error codes": a JSON object with
//! `error`, `error_description` (its first line is the `AADSTSnnnn: …` message, then
//! `Trace ID`, `Correlation ID`, `Timestamp` lines), `error_codes` (numbers), `timestamp`,
//! `trace_id`, `correlation_id`, `error_uri`. Any field may be missing or of another type.

use calpump_engine::diagnostics::catalogue::{self, entra, general};
use calpump_engine::diagnostics::{Diagnostic, DiagnosticInfo};
use calpump_engine::source::SourceError;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::http::{HttpResponse, display_url};
use crate::text;

/// An error answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntraError {
    /// The OAuth error (`invalid_client`, `invalid_grant`, …).
    pub error: String,
    pub description: Option<String>,
    /// The `AADSTSnnnn` numbers, first is the one that counts.
    pub codes: Vec<u32>,
    pub timestamp: Option<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub suberror: Option<String>,
}

/// Codes Entra documents as passing ("retry the request").
const TRANSIENT_CODES: &[u32] = &[50033, 50087, 90006, 90024, 90033, 90090, 90012];

fn string_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The number of the first `AADSTSnnnn` in a text.
fn aadsts_in(text: &str) -> Option<u32> {
    let at = text.find("AADSTS")?;
    let digits: String = text[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl EntraError {
    /// Reads an error body; `None` when it is not a JSON object with an `error`.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let obj = value.as_object()?;
        let error = string_field(obj, "error")?;
        let description = string_field(obj, "error_description");
        let mut codes: Vec<u32> = match obj.get("error_codes") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                    Value::String(s) => s.trim().trim_start_matches("AADSTS").parse().ok(),
                    _ => None,
                })
                .collect(),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        if codes.is_empty()
            && let Some(code) = description.as_deref().and_then(aadsts_in)
        {
            codes.push(code);
        }
        let from_description = |label: &str| {
            description.as_deref().and_then(|d| {
                d.lines().find_map(|line| {
                    line.trim()
                        .strip_prefix(label)
                        .map(|rest| rest.trim().to_string())
                })
            })
        };
        Some(Self {
            trace_id: string_field(obj, "trace_id").or_else(|| from_description("Trace ID:")),
            correlation_id: string_field(obj, "correlation_id")
                .or_else(|| from_description("Correlation ID:")),
            timestamp: string_field(obj, "timestamp").or_else(|| from_description("Timestamp:")),
            suberror: string_field(obj, "suberror"),
            error,
            description,
            codes,
        })
    }

    pub fn first_code(&self) -> Option<u32> {
        self.codes.first().copied()
    }

    /// The `AADSTSnnnn: …` line (the description's first line), or the OAuth error.
    pub fn message(&self) -> String {
        let line = self
            .description
            .as_deref()
            .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(str::to_string);
        let line = match (line, self.first_code()) {
            (Some(line), _) => line,
            (None, Some(code)) => format!("AADSTS{code}"),
            (None, None) => self.error.clone(),
        };
        text::redact(&line)
    }

    /// Whether Entra says trying again can help.
    pub fn is_transient(&self) -> bool {
        self.error == "temporarily_unavailable"
            || self.codes.iter().any(|c| TRANSIENT_CODES.contains(c))
    }

    /// The catalogue entry of the first code (`entra.Other` when unknown).
    pub fn info(&self) -> &'static DiagnosticInfo {
        match self.first_code() {
            Some(code) => catalogue::entra_code(code),
            None => &entra::OTHER,
        }
    }

    /// The detail: the AADSTS line, then error, HTTP status, trace id, correlation id,
    /// timestamp and the endpoint.
    pub fn detail(&self, status: StatusCode, endpoint: &str) -> String {
        let mut parts = vec![format!("error {}", self.error)];
        if let Some(sub) = &self.suberror {
            parts.push(format!("suberror {sub}"));
        }
        parts.push(format!("HTTP {}", status.as_u16()));
        if let Some(id) = &self.trace_id {
            parts.push(format!("trace id {id}"));
        }
        if let Some(id) = &self.correlation_id {
            parts.push(format!("correlation id {id}"));
        }
        if let Some(ts) = &self.timestamp {
            parts.push(format!("timestamp {ts}"));
        }
        parts.push(format!("token endpoint {endpoint}"));
        format!("{} ({})", self.message(), parts.join(", "))
    }

    /// The failure as a [`SourceError`]: the code's entry; a passing error of Entra that has
    /// no entry of its own becomes `http.Throttled` (429) or `http.ServerError`, retryable.
    pub fn to_source_error(&self, response: &HttpResponse) -> SourceError {
        let detail = self.detail(response.status, &display_url(&response.url));
        let info = self.info();
        let transient = self.is_transient() || response.status.is_server_error();
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            return SourceError::new(Diagnostic::new(&general::THROTTLED, detail))
                .retryable(true)
                .with_retry_after(response.retry_after());
        }
        if transient && std::ptr::eq(info, &entra::OTHER) {
            return SourceError::new(Diagnostic::new(&general::SERVER_ERROR, detail))
                .retryable(true)
                .with_retry_after(response.retry_after());
        }
        SourceError::new(Diagnostic::new(info, detail)).retryable(info.retryable || transient)
    }
}

/// Classifies any answer of the token endpoint that did not carry a token: an Entra error
/// body (mapped by its first AADSTS code); 429/5xx without one (`http.Throttled`,
/// `http.ServerError`); an HTML page (`http.HtmlInsteadOfApi`); anything else
/// (`entra.UnexpectedResponse`, naming the status and an excerpt).
pub fn token_error(response: &HttpResponse) -> SourceError {
    if let Some(error) = EntraError::parse(&response.body) {
        return error.to_source_error(response);
    }
    if response.is_throttled() {
        return response.throttled();
    }
    if response.status.is_server_error() {
        return response.server_error();
    }
    if response.is_html() {
        return response.html_instead_of_api();
    }
    SourceError::new(Diagnostic::new(
        &entra::UNEXPECTED_RESPONSE,
        format!(
            "{} answered HTTP {} without a token or an Entra error: {}",
            display_url(&response.url),
            response.status.as_u16(),
            response.excerpt()
        ),
    ))
}
