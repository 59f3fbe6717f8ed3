//! One EWS call end to end: the envelope, the concurrency cap per server (adaptive: lowered on
//! `ErrorExceededConnectionCount`), the authenticated POST, the classification of what came
//! back (throttling, faults, HTML, truncated XML, 403), and retries with capped back-off
//! that honour `BackOffMilliseconds`.

use std::sync::{Arc, Mutex};

use calpump_backend_common::http::{Expect, HttpResponse, display_url};
use calpump_backend_common::limits::Limits;
use calpump_backend_common::retry::{RetryPolicy, retry};
use calpump_backend_common::stats::Stats;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::{ews, general};
use calpump_engine::source::SourceError;
use reqwest::StatusCode;
use reqwest::Url;

use crate::errors;
use crate::soap::{self, Acting, Outcome, ResponseMessage, ServerVersionInfo};
use crate::transport::{Post, Transport};
use crate::xml::{Element, Node, Writer};

/// The EWS client of one profile (one server).
#[derive(Debug)]
pub struct EwsClient {
    transport: Arc<Transport>,
    server_version: String,
    limits: Limits,
    retry: RetryPolicy,
    stats: Arc<Stats>,
    last_version: Mutex<Option<ServerVersionInfo>>,
}

impl EwsClient {
    pub fn new(
        transport: Arc<Transport>,
        server_version: String,
        max_concurrency: usize,
        retry: RetryPolicy,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            transport,
            server_version,
            limits: Limits::new(max_concurrency, max_concurrency),
            retry,
            stats,
            last_version: Mutex::new(None),
        }
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The server's version from the last answer, when it said.
    pub fn server_version_seen(&self) -> Option<ServerVersionInfo> {
        match self.last_version.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Calls an operation with the client's retry policy. `parse` reads the operation
    /// response element; it may return a retryable error (a throttled message) to retry.
    pub async fn call<T>(
        &self,
        url: &Url,
        op: &'static str,
        acting: Acting<'_>,
        body: &(dyn Fn(&mut Writer) + Send + Sync),
        parse: &(dyn Fn(&Node<'_>) -> Result<T, SourceError> + Send + Sync),
    ) -> Result<T, SourceError> {
        self.call_with(&self.retry, url, op, acting, body, parse)
            .await
    }

    /// [`call`](Self::call) with another retry policy (`profile test`: none).
    pub async fn call_with<T>(
        &self,
        policy: &RetryPolicy,
        url: &Url,
        op: &'static str,
        acting: Acting<'_>,
        body: &(dyn Fn(&mut Writer) + Send + Sync),
        parse: &(dyn Fn(&Node<'_>) -> Result<T, SourceError> + Send + Sync),
    ) -> Result<T, SourceError> {
        let counters = self.stats.op(op);
        retry(policy, Some(&counters), || async {
            let permit = self.limits.acquire_global().await;
            let result = self.attempt(url, op, acting, body, parse).await;
            drop(permit);
            match &result {
                Ok(_) => self.limits.global().success(),
                Err(e) if e.code() == ews::EXCEEDED_CONNECTION_COUNT.code => {
                    let limit = self.limits.global().decrease();
                    tracing::warn!(
                        op,
                        limit,
                        "ErrorExceededConnectionCount: concurrency lowered"
                    );
                }
                Err(e) if e.code() == ews::SERVER_BUSY.code => {
                    counters.throttle();
                    calpump_engine::metrics::record_throttle("ews");
                }
                Err(_) => {}
            }
            result
        })
        .await
    }

    async fn attempt<T>(
        &self,
        url: &Url,
        op: &'static str,
        acting: Acting<'_>,
        body: &(dyn Fn(&mut Writer) + Send + Sync),
        parse: &(dyn Fn(&Node<'_>) -> Result<T, SourceError> + Send + Sync),
    ) -> Result<T, SourceError> {
        let envelope = soap::envelope(&self.server_version, acting, |w| body(w));
        let anchor = match acting {
            Acting::Impersonate(address) => Some(address),
            Acting::Self_ => None,
        };
        let response = self
            .transport
            .post(Post {
                url,
                op,
                body: envelope,
                anchor,
                soap_action: None,
            })
            .await?;
        let context = match acting {
            Acting::Impersonate(address) => format!("{op} as {address}"),
            Acting::Self_ => op.to_string(),
        };
        let root = read_soap(response, &context)?;
        let envelope = soap::read_envelope(&root).map_err(|e| malformed_at(url, &e))?;
        if let Some(version) = envelope.server_version {
            match self.last_version.lock() {
                Ok(mut v) => *v = Some(version),
                Err(p) => *p.into_inner() = Some(version),
            }
        }
        match envelope.outcome {
            Outcome::Fault(fault) => Err(errors::code_error(
                fault.code(),
                fault.text(),
                fault.back_off(),
                &context,
            )),
            Outcome::Body(node) => parse(&node),
        }
    }
}

/// Reads the body of an EWS answer as SOAP: throttling, 5xx and HTML pages through the shared
/// checks, 403 without SOAP → `ews.EwsDisabled`, other statuses without SOAP → an error naming
/// the URL and what came back, unreadable XML → `proto.Malformed` naming the element.
pub fn read_soap(response: HttpResponse, context: &str) -> Result<Element, SourceError> {
    let response = response.check(Expect::Xml)?;
    let looks_xml = response.text().trim_start().starts_with('<');
    let status = response.status;
    if !status.is_success() && status != StatusCode::INTERNAL_SERVER_ERROR {
        if status == StatusCode::FORBIDDEN {
            // A SOAP fault with a 403 is still read as EWS's answer.
            if looks_xml
                && let Ok(root) = crate::xml::parse(&response.body)
                && soap::read_envelope(&root).is_ok()
            {
                return Ok(root);
            }
            return Err(errors::forbidden(&response));
        }
        if !looks_xml {
            return Err(errors::unexpected_status(&response));
        }
    }
    match crate::xml::parse(&response.body) {
        Ok(root) => Ok(root),
        Err(e) => {
            let mut err = response.malformed(format_args!("{context}: {e}"));
            // Retry once or twice: a truncated answer is usually a dropped connection.
            err.retryable = true;
            Err(err)
        }
    }
}

fn malformed_at(url: &Url, e: &crate::xml::XmlError) -> SourceError {
    SourceError::new(Diagnostic::new(
        &general::MALFORMED,
        format!("{}: not an EWS answer: {e}", display_url(url)),
    ))
}

/// Turns the messages of an answer into results: a throttling code in any message becomes a
/// retryable error for the whole request (it is re-sent after the back-off).
pub fn throttled(messages: &[ResponseMessage<'_>], context: &str) -> Result<(), SourceError> {
    for m in messages {
        if m.is_error()
            && matches!(
                m.code.as_str(),
                "ErrorServerBusy" | "ErrorExceededConnectionCount" | "ErrorTooManyObjectsOpened"
            )
        {
            return Err(errors::code_error(
                &m.code,
                m.text.as_deref().unwrap_or_default(),
                m.back_off(),
                context,
            ));
        }
    }
    Ok(())
}

/// A message's error as a source error.
pub fn message_error(m: &ResponseMessage<'_>, context: &str) -> SourceError {
    errors::code_error(
        &m.code,
        m.text.as_deref().unwrap_or_default(),
        m.back_off(),
        context,
    )
}

/// An XML error inside an answer that parsed: `proto.Malformed` naming the element.
pub fn malformed(op: &str, e: &crate::xml::XmlError) -> SourceError {
    SourceError::new(Diagnostic::new(
        &general::MALFORMED,
        format!("{op}: the answer is not of the expected shape: {e}"),
    ))
}
