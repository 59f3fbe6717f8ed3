//! The Graph client: every request with the same headers, token, limits, retry and error
//! handling — direct requests, their `@odata.nextLink` pages, and `$batch` with per-item
//! status.
//!
//! - Headers: `Authorization: Bearer …` from the profile's token cache, `Prefer:
//!   IdType="ImmutableId"` (ids that survive moves, `concepts/outlook-immutable-id.md`), `Prefer:
//!   outlook.timezone="UTC"` (times in UTC), and for collections `Prefer: odata.maxpagesize`.
//!   Inside a `$batch` each sub-request carries its own `Prefer` (the service does not pass the
//!   outer one on; the envelope states the id and time-zone preferences as well).
//! - 401: the token is dropped from the cache and the request sent once more with a new one.
//!   Inside a `$batch` the same rule holds per `batch()` call: the first 401 drops the token,
//!   the items refused with it go once more, and a 401 after that is final for its item.
//! - 429 and 503 wait as `Retry-After` says (in full; a delay past the retry budget fails at
//!   once, naming it), else capped exponential back-off with jitter (`backend-common`'s retry);
//!   5xx, cut-off and unreadable answers are retried too; everything else is final.
//! - Limits: at most 4 requests in flight per mailbox, counted per request: a `$batch` holds one
//!   permit of a mailbox per sub-request it carries for it, and carries no more than the
//!   mailbox's current limit — so several routes sharing the profile's source never exceed
//!   Exchange Online's 4 concurrent requests per mailbox — and `max_concurrency` for the profile.
//!   A throttled mailbox's limit is halved (recovering with successes); a `Retry-After` pauses
//!   the mailbox: no direct request and no `$batch` item goes to it before that instant.
//! - `$batch` (`concepts/json-batching.md`): at most 20 sub-requests; an answer's items are
//!   matched by id; items that failed for a passing reason (429 inside a 200, 5xx) are sent
//!   again in a later batch after their delay, the others are final.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use calpump_backend_common::http::{HttpClient, HttpResponse};
use calpump_backend_common::limits::Limits;
use calpump_backend_common::oauth::{AccessToken, TokenSource};
use calpump_backend_common::retry::{RetryPolicy, budget_spent, retry};
use calpump_backend_common::stats::Stats;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::{general, graph};
use calpump_engine::source::SourceError;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error;
use crate::model::{BatchItem, Page, parse_batch};

/// Items per page asked for with `Prefer: odata.maxpagesize`.
pub const PAGE_SIZE: usize = 200;

/// Sub-requests per `$batch` (the service's limit).
pub const BATCH_LIMIT: usize = 20;

/// Pages of one collection before calpump gives up (a server that never ends a listing).
const MAX_PAGES: usize = 10_000;

/// The `Prefer` preferences of every request.
fn prefer(page: bool) -> Vec<String> {
    let mut out = vec![
        "IdType=\"ImmutableId\"".to_string(),
        "outlook.timezone=\"UTC\"".to_string(),
    ];
    if page {
        out.push(format!("odata.maxpagesize={PAGE_SIZE}"));
    }
    out
}

/// Percent-encodes a query component, keeping what OData expressions use literally.
pub fn encode_query_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b'$' | b'(' | b')' | b'\'' | b',' | b':' | b'/' | b'=' | b'@' | b'!' | b'*' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One sub-request of a `$batch`.
#[derive(Debug, Clone)]
pub struct SubRequest {
    /// Operation name for counters (`calendarView`, `calendarView.delta`, `event`).
    pub op: &'static str,
    /// The mailbox it reads (per-mailbox limits).
    pub mailbox: Option<String>,
    /// The URL relative to the Graph base (`/users/…`).
    pub url: String,
    /// A collection: ask for big pages and require a `value` list in the answer.
    pub page: bool,
    /// What is asked, for details (`calendarView of room-1@contoso.com`).
    pub what: String,
}

/// The client of one profile.
pub struct GraphClient {
    http: HttpClient,
    tokens: TokenSource,
    limits: Limits,
    base: Url,
    base_text: String,
    retry: RetryPolicy,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base_text)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    pub fn new(
        http: HttpClient,
        tokens: TokenSource,
        base: Url,
        max_concurrency: usize,
        per_mailbox: usize,
    ) -> Self {
        let stats = http.stats().clone();
        let base_text = base.as_str().trim_end_matches('/').to_string();
        Self {
            http,
            tokens,
            limits: Limits::new(max_concurrency, per_mailbox),
            base,
            base_text,
            retry: RetryPolicy::default(),
            stats,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A URL under the base: path segments (percent-encoded one by one) and a query whose
    /// values are encoded with [`encode_query_component`]. Returns the text relative to the
    /// base (`/users/…?…`), the form `$batch` takes.
    pub fn relative(segments: &[&str], query: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for segment in segments {
            out.push('/');
            out.push_str(&encode_path_segment(segment));
        }
        if !query.is_empty() {
            out.push('?');
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        encode_query_component(k),
                        encode_query_component(v)
                    )
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        out
    }

    /// The absolute URL of a relative one.
    pub fn absolute(&self, relative: &str) -> Result<Url, SourceError> {
        Url::parse(&format!("{}{}", self.base_text, relative)).map_err(|e| {
            SourceError::new(Diagnostic::new(
                &general::INTERNAL,
                format!("cannot build a Graph URL from {relative}: {e}"),
            ))
        })
    }

    /// A link the server gave (`@odata.nextLink`, `@odata.deltaLink`) relative to the base, or
    /// `None` when it points elsewhere (another host, another version): calpump sends its
    /// token only to the configured Graph base.
    pub fn relative_link(&self, link: &str) -> Option<String> {
        let link = Url::parse(link).ok()?;
        let base = &self.base;
        if link.scheme() != base.scheme()
            || !link
                .host_str()
                .zip(base.host_str())
                .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
            || link.port_or_known_default() != base.port_or_known_default()
        {
            return None;
        }
        let base_path = base.path().trim_end_matches('/');
        let rest = link.path().strip_prefix(base_path)?;
        if !rest.starts_with('/') {
            return None;
        }
        Some(match link.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        })
    }

    /// Sends one request: limits, token, headers; a 401 drops the token and sends once more.
    async fn send(
        &self,
        op: &'static str,
        mailbox: Option<&str>,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        page: bool,
    ) -> Result<HttpResponse, SourceError> {
        let _permit = match mailbox {
            Some(m) => self.limits.acquire(m).await,
            None => self.limits.acquire_global().await,
        };
        let mut refreshed = false;
        loop {
            let token = self.tokens.token().await?;
            let mut request = self
                .http
                .reqwest()
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, token.header_value())
                .header(ACCEPT, "application/json");
            for p in prefer(page) {
                request = request.header("Prefer", p);
            }
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).unwrap_or_default());
            }
            let response = self.http.send(op, request).await?;
            if response.status.as_u16() == 401 && !refreshed {
                tracing::debug!(op, "Graph refused the token; fetching a new one");
                self.tokens.invalidate(&token);
                refreshed = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// Reads a 2xx JSON answer, or classifies the failure.
    fn read_json(what: &str, response: &HttpResponse) -> Result<Value, SourceError> {
        if !response.status.is_success() {
            return Err(error::from_response(what, response));
        }
        if response.is_html() {
            return Err(response.html_instead_of_api());
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| response.malformed(format_args!("{what}: not JSON: {e}")))
    }

    /// A success raises a lowered mailbox limit; a throttled answer halves it and, with a
    /// `Retry-After`, pauses the mailbox: no request and no `$batch` item goes to it before.
    fn note_outcome(&self, mailbox: Option<&str>, result: &Result<Value, SourceError>) {
        let Some(mailbox) = mailbox else { return };
        match result {
            Ok(_) => self.limits.key(mailbox).success(),
            Err(e) if e.code() == graph::THROTTLED.code => {
                let limit = self.limits.key(mailbox);
                let lowered = limit.decrease();
                if let Some(wait) = e.retry_after {
                    limit.pause(wait);
                }
                tracing::debug!(
                    mailbox,
                    limit = lowered,
                    retry_after_ms = e.retry_after.map(|d| d.as_millis() as u64),
                    "mailbox throttled"
                );
            }
            Err(_) => {}
        }
    }

    /// GET with retries; the JSON answer.
    pub async fn get(
        &self,
        op: &'static str,
        mailbox: Option<&str>,
        what: &str,
        url: &Url,
        page: bool,
    ) -> Result<Value, SourceError> {
        let counters = self.stats.op(op);
        retry(&self.retry, Some(&counters), || async {
            let response = self.send(op, mailbox, Method::GET, url, None, page).await?;
            let result = Self::read_json(what, &response);
            self.note_outcome(mailbox, &result);
            result
        })
        .await
    }

    /// GET without retries (`profile test` reports the first failure).
    pub async fn get_once(
        &self,
        op: &'static str,
        mailbox: Option<&str>,
        what: &str,
        url: &Url,
    ) -> Result<Value, SourceError> {
        let response = self.send(op, mailbox, Method::GET, url, None, true).await?;
        Self::read_json(what, &response)
    }

    /// Every item of a collection, following `@odata.nextLink` with the same headers, token
    /// handling and retries as the first page.
    pub async fn get_all(
        &self,
        op: &'static str,
        mailbox: Option<&str>,
        what: &str,
        first: &Url,
    ) -> Result<Vec<Value>, SourceError> {
        let mut items = Vec::new();
        let mut url = first.clone();
        for _ in 0..MAX_PAGES {
            let value = self.get(op, mailbox, what, &url, true).await?;
            let page = Page::from_value(value).map_err(|e| malformed(what, &e))?;
            items.extend(page.value);
            match page.next_link {
                None => return Ok(items),
                Some(next) => {
                    let relative = self
                        .relative_link(&next)
                        .ok_or_else(|| foreign_link(what, &next))?;
                    url = self.absolute(&relative)?;
                }
            }
        }
        Err(malformed(what, "the listing never ends (too many pages)"))
    }

    /// Runs sub-requests through `$batch`: up to 20 per round trip and per mailbox as many as
    /// its current limit allows (one permit each), failed items retried after their delay
    /// (`Retry-After` of a 429 inside the batch — which pauses the whole mailbox — else
    /// back-off) within the retry policy's attempts and time. Results in the order of
    /// `requests`.
    pub async fn batch(&self, requests: &[SubRequest]) -> Vec<Result<Value, SourceError>> {
        let n = requests.len();
        let mut results: Vec<Option<Result<Value, SourceError>>> = vec![None; n];
        let mut attempts = vec![0u32; n];
        let started = Instant::now();
        let mut ready_at = vec![started; n];
        let mut pending: Vec<usize> = (0..n).collect();
        // The token this call dropped after a 401 inside a batch answer: one new token per
        // call. Items refused with that token go once more with the new one; a 401 with any
        // later token is final for the item (`graph.InvalidAuthenticationToken` or
        // `graph.NoPermissionsInToken`).
        let mut dropped_token: Option<u64> = None;
        let mut auth_retried = vec![false; n];
        while !pending.is_empty() {
            let now = Instant::now();
            // Per mailbox at most its current (adaptive) limit, 20 in all; an item waits for
            // its own delay and for its mailbox's pause (`Retry-After` of a 429).
            let mut chosen: Vec<usize> = Vec::new();
            let mut per_mailbox: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            let mut next_ready: Option<Instant> = None;
            for &i in &pending {
                if chosen.len() >= BATCH_LIMIT {
                    break;
                }
                let mailbox = requests[i].mailbox.as_deref().map(|m| self.limits.key(m));
                let at = match mailbox.as_ref().and_then(|l| l.paused_until()) {
                    Some(paused) => ready_at[i].max(paused),
                    None => ready_at[i],
                };
                if at > now {
                    next_ready = Some(next_ready.map_or(at, |n| n.min(at)));
                    continue;
                }
                if let (Some(m), Some(limit)) = (&requests[i].mailbox, &mailbox) {
                    let slot = per_mailbox.entry(m.to_ascii_lowercase()).or_default();
                    if slot.len() >= limit.limit() {
                        continue;
                    }
                    slot.push(i);
                }
                chosen.push(i);
            }
            if chosen.is_empty() {
                tokio::time::sleep_until(next_ready.unwrap_or(now)).await;
                continue;
            }
            // One permit per sub-request of a mailbox, taken in mailbox order (no deadlock with
            // other batches and direct requests, which take theirs in the same order).
            let mut permits = Vec::with_capacity(per_mailbox.len());
            for (mailbox, items) in &per_mailbox {
                let limit = self.limits.key(mailbox);
                let permit = limit.acquire_many(items.len()).await;
                // Lowered while waiting: the rest goes in a later batch; paused while waiting
                // (a 429 elsewhere): none of them goes now.
                let keep = if limit.paused_until().is_some() {
                    0
                } else {
                    permit.count()
                };
                for i in &items[keep.min(items.len())..] {
                    chosen.retain(|c| c != i);
                }
                if keep > 0 {
                    permits.push(permit);
                }
            }
            if chosen.is_empty() {
                continue;
            }
            pending.retain(|i| !chosen.contains(i));
            let answer = self.send_batch(requests, &chosen).await;
            let (items, token) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    for &i in &chosen {
                        self.stats.op(&batched(requests[i].op)).error();
                        results[i] = Some(Err(e.clone()));
                    }
                    continue;
                }
            };
            let mut by_id: HashMap<String, BatchItem> = items
                .into_iter()
                .map(|item| (item.id.to_ascii_lowercase(), item))
                .collect();
            for &i in &chosen {
                let request = &requests[i];
                let counters = self.stats.op(&batched(request.op));
                let outcome = match by_id.remove(&i.to_string()) {
                    None => Err(malformed(
                        &request.what,
                        "the $batch answer has no response for this request",
                    )),
                    Some(item) if (200..300).contains(&item.status) => {
                        if request.page && !item.body.get("value").is_some_and(Value::is_array) {
                            Err(malformed(&request.what, "the answer has no `value` list"))
                        } else {
                            Ok(item.body)
                        }
                    }
                    Some(item) => Err(error::from_batch_item(
                        &request.what,
                        item.status,
                        &item.headers,
                        &item.body,
                    )),
                };
                self.note_outcome(request.mailbox.as_deref(), &outcome);
                match outcome {
                    Ok(body) => results[i] = Some(Ok(body)),
                    Err(e) => {
                        if e.code() == graph::THROTTLED.code {
                            counters.throttle();
                            calpump_engine::metrics::record_throttle("graph");
                        }
                        if error::is_unauthorized(&e) && !auth_retried[i] {
                            let again = match dropped_token {
                                None => {
                                    tracing::debug!(what = %request.what, "a $batch item was refused with the cached token; fetching a new one");
                                    self.tokens.invalidate(&token);
                                    dropped_token = Some(token.serial());
                                    true
                                }
                                // Refused with the token already dropped: once with the new one.
                                Some(serial) => serial == token.serial(),
                            };
                            if again {
                                auth_retried[i] = true;
                                pending.push(i);
                                continue;
                            }
                        }
                        attempts[i] += 1;
                        let wait = self.retry.delay(attempts[i] - 1, e.retry_after);
                        let in_budget = started.elapsed() + wait <= self.retry.max_total;
                        let e = if e.retryable && !in_budget {
                            budget_spent(e, &self.retry)
                        } else {
                            e
                        };
                        if e.retryable && attempts[i] < self.retry.max_attempts.max(1) && in_budget
                        {
                            counters.retry();
                            tracing::debug!(
                                what = %request.what,
                                code = e.code(),
                                attempt = attempts[i],
                                wait_ms = wait.as_millis() as u64,
                                "retrying a $batch item"
                            );
                            ready_at[i] = Instant::now() + wait;
                            pending.push(i);
                        } else {
                            counters.error();
                            results[i] = Some(Err(e));
                        }
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(SourceError::new(Diagnostic::new(
                        &general::INTERNAL,
                        "a $batch item got no result",
                    )))
                })
            })
            .collect()
    }

    /// One `$batch` round trip with retries of the whole request (429/503 on the batch itself,
    /// 5xx, cut-off or unreadable answers). Returns the items and the token used.
    async fn send_batch(
        &self,
        requests: &[SubRequest],
        chosen: &[usize],
    ) -> Result<(Vec<BatchItem>, AccessToken), SourceError> {
        let prefer_plain = prefer(false).join(", ");
        let prefer_page = prefer(true).join(", ");
        let body = json!({
            "requests": chosen.iter().map(|&i| {
                let r = &requests[i];
                json!({
                    "id": i.to_string(),
                    "method": "GET",
                    "url": r.url,
                    "headers": { "Prefer": if r.page { &prefer_page } else { &prefer_plain } },
                })
            }).collect::<Vec<_>>()
        });
        for &i in chosen {
            self.stats.op(&batched(requests[i].op)).request();
        }
        let url = self.absolute("/$batch")?;
        let counters = self.stats.op("batch");
        // The caller holds the mailboxes' permits for the whole round trip, retries included.
        retry(&self.retry, Some(&counters), || async {
            let _global = self.limits.acquire_global().await;
            let mut refreshed = false;
            loop {
                let token = self.tokens.token().await?;
                let request = self
                    .http
                    .reqwest()
                    .post(url.clone())
                    .header(AUTHORIZATION, token.header_value())
                    .header(ACCEPT, "application/json")
                    .header(CONTENT_TYPE, "application/json")
                    // The service reads each item's own; sent on the envelope too, so every
                    // request calpump makes states its preferences.
                    .header("Prefer", &prefer_plain)
                    .body(serde_json::to_vec(&body).unwrap_or_default());
                let response = self.http.send("batch", request).await?;
                if response.status.as_u16() == 401 && !refreshed {
                    self.tokens.invalidate(&token);
                    refreshed = true;
                    continue;
                }
                let value = Self::read_json("$batch", &response)?;
                let items = parse_batch(&value).map_err(|e| response.malformed(e))?;
                return Ok((items, token));
            }
        })
        .await
    }
}

/// The counter name of a sub-request inside a `$batch` (`batched.calendarView.delta`): these
/// are not HTTP requests of their own; `batch` counts those.
pub fn batched(op: &str) -> String {
    format!("batched.{op}")
}

fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'@'
            | b'='
            | b'$'
            | b'!'
            | b'\''
            | b'('
            | b')'
            | b','
            | b':' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) fn malformed(what: &str, why: &str) -> SourceError {
    SourceError::new(Diagnostic::new(
        &general::MALFORMED,
        format!("{what}: {why}"),
    ))
}

fn foreign_link(what: &str, link: &str) -> SourceError {
    let shown = Url::parse(link)
        .map(|u| calpump_backend_common::http::display_url(&u))
        .unwrap_or_else(|_| link.chars().take(80).collect());
    SourceError::new(Diagnostic::new(
        &graph::OTHER,
        format!(
            "{what}: the next page is at {shown}, outside the configured graph_url; calpump does not send its token there"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded_for_odata() {
        let rel = GraphClient::relative(
            &[
                "users",
                "room 1@contoso.com",
                "calendars",
                "AAMk+/=",
                "calendarView",
            ],
            &[
                ("startDateTime", "2026-03-09T00:00:00Z"),
                ("$expand", crate::model::EXPAND_CLEAN_GOID),
            ],
        );
        assert_eq!(
            rel,
            "/users/room%201@contoso.com/calendars/AAMk%2B%2F=/calendarView?startDateTime=2026-03-09T00:00:00Z&$expand=singleValueExtendedProperties($filter=id%20eq%20'Binary%20%7B6ED8DA90-450B-101B-98DA-00AA003F1305%7D%20Id%200x23')"
        );
    }
}
