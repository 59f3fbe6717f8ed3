//! Retry with capped exponential back-off and full jitter, honouring the server's delay.
//!
//! ```no_run
//! # async fn demo(http: calpump_backend_common::http::HttpClient) -> Result<(), calpump_engine::source::SourceError> {
//! use calpump_backend_common::http::Expect;
//! use calpump_backend_common::retry::{retry, RetryPolicy};
//! let policy = RetryPolicy::default();
//! let counters = http.stats().op("calendarView");
//! let page = retry(&policy, Some(&counters), || async {
//!     let request = http.reqwest().get("https://graph.microsoft.com/v1.0/me/calendarView");
//!     http.send("calendarView", request).await?.check(Expect::Json)
//! })
//! .await?;
//! # Ok(()) }
//! ```
//!
//! Only errors with `retryable: true` are retried. A server-given delay (`Retry-After`, or the
//! EWS backend's `BackOffMilliseconds` put into [`SourceError::retry_after`]) replaces the
//! computed back-off and is waited out in full: retrying earlier only meets the same refusal
//! (and Exchange extends a throttled caller's back-off). The budget is both a number of attempts
//! and a total time: a wait that would end past `max_total` is not started and the last error is
//! returned at once — when the server named the delay, with it in the detail
//! ([`budget_spent`]), so the admin sees how long the server wanted.

use std::future::Future;
use std::time::{Duration, SystemTime};

use calpump_engine::source::SourceError;
use rand::Rng as _;

use crate::stats::OpStats;

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (`1` = no retry).
    pub max_attempts: u32,
    /// The back-off before the first retry is drawn from `0..=base_delay`, then doubles.
    pub base_delay: Duration,
    /// Cap of the computed (exponential) back-off. A server-given delay is not capped: it is
    /// waited out in full, or — when that would pass `max_total` — not at all.
    pub max_delay: Duration,
    /// Total time budget from the first attempt; no wait is started that would end past it
    /// (a `Retry-After` of an hour fails at once, naming the hour).
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 500 ms base, 30 s cap of the computed back-off, 5 min in all.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// No retries at all (probes: `profile test` reports the first failure).
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The cap of the back-off before retry number `retry` (0-based):
    /// `min(max_delay, base_delay · 2^retry)`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The wait before retry number `retry` (0-based): the server's delay, in full, when it
    /// gave one, else full jitter — uniform in `0..=backoff_cap(retry)`.
    pub fn delay(&self, retry: u32, server: Option<Duration>) -> Duration {
        match server {
            Some(asked) => asked,
            None => {
                let cap = self.backoff_cap(retry);
                let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
                Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
            }
        }
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or the policy's budget is
/// spent; returns the last error then. Counts each retry into `counters`.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    counters: Option<&OpStats>,
    mut op: F,
) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    let started = tokio::time::Instant::now();
    let mut attempt: u32 = 0;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        attempt += 1;
        if !error.retryable || attempt >= policy.max_attempts.max(1) {
            return Err(error);
        }
        let wait = policy.delay(attempt - 1, error.retry_after);
        if started.elapsed() + wait > policy.max_total {
            tracing::debug!(
                code = error.code(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retry budget spent"
            );
            return Err(budget_spent(error, policy));
        }
        if let Some(counters) = counters {
            counters.retry();
        }
        tracing::debug!(
            code = error.code(),
            attempt,
            wait_ms = wait.as_millis() as u64,
            server_delay = error.retry_after.is_some(),
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// The error a retry loop ends with when waiting out the server's delay would pass the
/// policy's time budget: the same diagnostic, its detail saying that the delay was not waited
/// out (the delay itself is in the detail already: `Retry-After 600 s`,
/// `BackOffMilliseconds 600000`). Errors without a server delay are returned as they are.
pub fn budget_spent(error: SourceError, policy: &RetryPolicy) -> SourceError {
    let Some(asked) = error.retry_after else {
        return error;
    };
    let detail = format!(
        "{}; not retried: the server asked to wait {} s, past the retry budget of {} s",
        error.diagnostic.detail(),
        asked.as_secs_f64().ceil() as u64,
        policy.max_total.as_secs()
    );
    SourceError {
        diagnostic: calpump_engine::diagnostics::Diagnostic::new(error.diagnostic.info(), detail),
        ..error
    }
}

/// Parses an HTTP `Retry-After` value: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms). A date in
/// the past is zero. RFC 9110, section 10.2.3.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // Some servers send fractions ("1.5").
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}
