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
    // A server delay is honoured exactly, however long (the time budget decides whether it
    // is waited out at all).
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(7))),
        Duration::from_secs(7)
    );
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(3600))),
        Duration::from_secs(3600)
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_server_delay_is_waited_out_in_full_never_cut_short() {
    // EWS BackOffMilliseconds of 150 s (more than the 2 min a server delay used to be capped
    // at): the retry goes after 150 s, not earlier.
    let policy = RetryPolicy::default();
    let calls = AtomicUsize::new(0);
    let started = Instant::now();
    let value = retry(&policy, None, || async {
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err(busy(Some(Duration::from_secs(150)))),
            _ => Ok(started.elapsed()),
        }
    })
    .await
    .expect("second attempt");
    assert!(
        value >= Duration::from_secs(150) && value < Duration::from_secs(151),
        "{value:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_delay_past_the_budget_fails_at_once_naming_the_delay() {
    let policy = RetryPolicy::default();
    let calls = AtomicUsize::new(0);
    let started = Instant::now();
    let err = retry(&policy, None, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(
            SourceError::new(Diagnostic::new(
                &general::THROTTLED,
                "FindItem as room@contoso.com: ErrorServerBusy (BackOffMilliseconds 600000)",
            ))
            .retryable(true)
            .with_retry_after(Some(Duration::from_secs(600))),
        )
    })
    .await
    .expect_err("past the budget");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no early retry");
    assert!(started.elapsed() < Duration::from_secs(1), "no wait");
    assert_eq!(err.code(), general::THROTTLED.code);
    assert_eq!(err.retry_after, Some(Duration::from_secs(600)));
    let detail = err.diagnostic.detail();
    assert!(detail.contains("BackOffMilliseconds 600000"), "{detail}");
    assert!(
        detail.contains("asked to wait 600 s, past the retry budget of 300 s"),
        "{detail}"
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
    assert!(
        err.diagnostic.detail().starts_with("attempt 2;"),
        "the last error: {}",
        err.diagnostic.detail()
    );

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

#[tokio::test]
async fn acquire_many_takes_k_permits_and_gives_them_back() {
    let limit = AdaptiveLimit::new(4);
    let three = limit.acquire_many(3).await;
    assert_eq!(three.count(), 3);
    assert_eq!(limit.available(), 1);
    let two = tokio::time::timeout(Duration::from_millis(50), limit.acquire_many(2)).await;
    assert!(two.is_err(), "two more do not fit beside three");
    drop(three);
    assert_eq!(limit.available(), 4);
    // More than the limit: capped at it.
    let all = limit.acquire_many(10).await;
    assert_eq!(all.count(), 4);
    // Lowered while held: the returned permits pay the debt.
    assert_eq!(limit.decrease(), 2);
    drop(all);
    assert_eq!(limit.available(), 2);
}

#[tokio::test]
async fn acquire_many_recounts_when_the_limit_is_lowered_while_waiting() {
    let limit = AdaptiveLimit::new(4);
    let one = limit.acquire().await;
    let waiter = {
        let limit = limit.clone();
        tokio::spawn(async move { limit.acquire_many(4).await.count() })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    // 4 → 2 while the wait for 4 is queued: it now waits for 2, and gets them once the held
    // permit comes back (it is withdrawn: 2 remain).
    assert_eq!(limit.decrease(), 2);
    drop(one);
    let got = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the wait ends")
        .expect("join");
    assert_eq!(got, 2);
}

#[tokio::test(start_paused = true)]
async fn a_paused_key_holds_its_requests_until_the_instant_and_only_its_own() {
    let limits = Arc::new(Limits::new(10, 4));
    let started = Instant::now();
    limits
        .key("Room-1@contoso.com")
        .pause(Duration::from_secs(3));
    // A later, shorter pause does not shorten it.
    limits
        .key("room-1@contoso.com")
        .pause(Duration::from_secs(1));
    let other = limits.acquire("room-2@contoso.com").await;
    assert!(
        started.elapsed() < Duration::from_millis(10),
        "other mailboxes go on"
    );
    drop(other);
    let _p = limits.acquire("room-1@contoso.com").await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100),
        "{waited:?}"
    );
    // EWS: a global permit for a call impersonating the mailbox waits its pause too, and a
    // server-wide pause holds every call.
    limits
        .key("room-3@contoso.com")
        .pause(Duration::from_secs(2));
    let t = Instant::now();
    let _g = limits.acquire_global_for(Some("room-3@contoso.com")).await;
    assert!(t.elapsed() >= Duration::from_secs(2));
    limits.global().pause(Duration::from_secs(5));
    let t = Instant::now();
    let _g = limits.acquire_global_for(Some("room-4@contoso.com")).await;
    assert!(t.elapsed() >= Duration::from_secs(5));
    assert!(limits.key("room-1@contoso.com").paused_until().is_none());
}
