//! Retry (server delays, jitter bounds, budgets) and concurrency limits (caps, adaptive
//! lowering and raising).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use calpump_backend_common::http::Expect;
use calpump_backend_common::limits::{AdaptiveLimit, Limits};
use calpump_backend_common::retry::{RetryPolicy, parse_retry_after, retry};
use calpump_backend_common::stats::{OpStats, Stats};
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::source::SourceError;
use tokio::time::Instant;

fn busy(after: Option<Duration>) -> SourceError {
    SourceError::new(Diagnostic::new(&general::THROTTLED, "busy"))
        .retryable(true)
        .with_retry_after(after)
}

#[test]
fn retry_after_parses_seconds_and_http_dates() {
    let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:27:30 GMT").expect("date");
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
        Some(Duration::from_secs(30))
    );
    // The obsolete forms HTTP still allows.
    assert_eq!(
        parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed Oct 21 07:28:00 2015", now),
        Some(Duration::from_secs(30))
    );
    // A date in the past: go now.
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
}

#[test]
fn backoff_is_capped_exponential_with_full_jitter() {
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    assert_eq!(policy.backoff_cap(0), Duration::from_millis(100));
    assert_eq!(policy.backoff_cap(1), Duration::from_millis(200));
    assert_eq!(policy.backoff_cap(3), Duration::from_millis(800));
    assert_eq!(policy.backoff_cap(4), Duration::from_secs(1), "capped");
    assert_eq!(
        policy.backoff_cap(40),
        Duration::from_secs(1),
        "no overflow"
    );
    for retry in 0..6 {
        let cap = policy.backoff_cap(retry);
        let samples: Vec<Duration> = (0..2000).map(|_| policy.delay(retry, None)).collect();
        assert!(samples.iter().all(|d| *d <= cap), "within 0..=cap");
        // Full jitter: spread over the whole range, not clustered at the cap.
        assert!(
            samples.iter().any(|d| *d < cap / 4),
            "retry {retry}: low values"
        );
        assert!(
            samples.iter().any(|d| *d > cap * 3 / 4),
            "retry {retry}: high values"
        );
    }
    // A server delay is honoured exactly, up to the cap.
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(7))),
        Duration::from_secs(7)
    );
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(3600))),
        policy.max_server_delay
    );
}

#[tokio::test(start_paused = true)]
async fn retry_waits_as_long_as_the_server_asks() {
    let policy = RetryPolicy::default();
    let calls = AtomicUsize::new(0);
    let counters = OpStats::default();
    let started = Instant::now();
    let value = retry(&policy, Some(&counters), || async {
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err(busy(Some(Duration::from_secs(5)))),
            1 => Err(busy(Some(Duration::from_millis(1500)))),
            _ => Ok(42),
        }
    })
    .await
    .expect("third attempt");
    assert_eq!(value, 42);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(6500) && waited < Duration::from_millis(6600),
        "{waited:?}"
    );
    assert_eq!(counters.snapshot("op").retries, 2);
}

#[tokio::test(start_paused = true)]
async fn retry_stops_at_the_budget_and_returns_the_last_error() {
    // Time budget: waits of 2 s with 5 s in all → attempts at 0, 2, 4; the next would end at 6.
    let policy = RetryPolicy {
        max_attempts: 100,
        max_total: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let calls = AtomicUsize::new(0);
    let err = retry(&policy, None, || async {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(
            SourceError::new(Diagnostic::new(&general::THROTTLED, format!("attempt {n}")))
                .with_retry_after(Some(Duration::from_secs(2))),
        )
    })
    .await
    .expect_err("budget");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(err.diagnostic.detail(), "attempt 2", "the last error");

    // Attempt budget.
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let calls = AtomicUsize::new(0);
    retry(&policy, None, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(busy(None))
    })
    .await
    .expect_err("attempts");
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // Not retryable: one attempt.
    let calls = AtomicUsize::new(0);
    retry(&RetryPolicy::default(), None, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(SourceError::new(Diagnostic::new(&general::TLS, "bad cert")))
    })
    .await
    .expect_err("fatal");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retry_honours_retry_after_from_a_real_429() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/v1.0/users/room/calendarView",
        get(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "1")], "{}")
                } else {
                    (StatusCode::OK, [("Retry-After", "0")], r#"{"value":[]}"#)
                }
            }
        }),
    );
    let addr = common::serve(app).await;
    let stats = Stats::detached();
    let http = common::http().with_stats(stats.clone());
    let url = format!("http://{addr}/v1.0/users/room/calendarView");
    let counters = stats.op("calendarView");
    let started = std::time::Instant::now();
    let page = retry(&RetryPolicy::default(), Some(&counters), || async {
        http.send("calendarView", http.reqwest().get(&url))
            .await?
            .check(Expect::Json)
    })
    .await
    .expect("second attempt");
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    let snap = stats.snapshot();
    let op = snap.op("calendarView").expect("op");
    assert_eq!((op.requests, op.throttles, op.retries), (2, 1, 1));
}

#[tokio::test]
async fn limits_cap_per_key_and_globally() {
    let limits = Arc::new(Limits::new(3, 2));
    let running = Arc::new(AtomicUsize::new(0));
    let peak_same_key = Arc::new(AtomicUsize::new(0));
    // Eight tasks on one mailbox: never more than 2 at once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (limits, running, peak) = (limits.clone(), running.clone(), peak_same_key.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limits.acquire("Room-1@Contoso.com").await;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(peak_same_key.load(Ordering::SeqCst), 2);

    // Twelve tasks over six mailboxes: never more than 3 at once (the global cap).
    let peak_global = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (limits, running, peak) = (limits.clone(), running.clone(), peak_global.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limits.acquire(&format!("room-{}@contoso.com", i % 6)).await;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(peak_global.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn adaptive_limit_halves_and_recovers_to_the_cap() {
    let limit = AdaptiveLimit::with_raise_after(8, 3);
    // Lowered while all 8 permits are out: the returned ones are withdrawn.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(limit.acquire().await);
    }
    assert_eq!(limit.decrease(), 4);
    held.clear();
    assert_eq!(limit.available(), 4, "only 4 permits left");
    let mut four = Vec::new();
    for _ in 0..4 {
        four.push(limit.acquire().await);
    }
    let fifth = tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await;
    assert!(fifth.is_err(), "a fifth request waits");
    four.clear();

    assert_eq!(limit.decrease(), 2);
    assert_eq!(limit.decrease(), 1);
    assert_eq!(limit.decrease(), 1, "never below 1");
    assert_eq!(limit.available(), 1);

    // Three successes raise it by one, up to the cap and no further.
    for _ in 0..3 {
        limit.success();
    }
    assert_eq!(limit.limit(), 2);
    assert_eq!(limit.available(), 2);
    for _ in 0..100 {
        limit.success();
    }
    assert_eq!(limit.limit(), 8);
    assert_eq!(limit.available(), 8);
    assert_eq!(limit.cap(), 8);
}

#[tokio::test]
async fn a_lowered_key_limit_applies_to_that_key_only() {
    let limits = Limits::new(10, 4);
    let key = limits.key("ews.contoso.com");
    key.decrease();
    assert_eq!(
        limits.key("EWS.contoso.com").limit(),
        2,
        "case-insensitive, same limit"
    );
    assert_eq!(limits.key("other.contoso.com").limit(), 4);
    let _a = limits.acquire("ews.contoso.com").await;
    let _b = limits.acquire("ews.contoso.com").await;
    let third =
        tokio::time::timeout(Duration::from_millis(50), limits.acquire("ews.contoso.com")).await;
    assert!(third.is_err());
    let _other = tokio::time::timeout(
        Duration::from_millis(50),
        limits.acquire("other.contoso.com"),
    )
    .await
    .expect("another key is not held up");
}
