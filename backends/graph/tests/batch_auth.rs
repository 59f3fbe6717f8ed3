//! A `$batch` whose sub-requests answer 401: one new token for the whole `batch()` call, then a
//! 401 is final for that item (`graph.InvalidAuthenticationToken`) — never a loop of token
//! requests and `$batch` posts. A fake token endpoint and a fake Graph on loopback count both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use calpump_engine::secret::SecretResolver;
use calpump_graph::GraphSource;
use calpump_graph::client::SubRequest;
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    tokens: AtomicUsize,
    batches: AtomicUsize,
    /// Sub-requests sent with token number `accept_from` or later succeed; earlier ones get 401.
    accept_from: AtomicUsize,
}

async fn token(State(fake): State<Arc<Fake>>) -> axum::response::Response {
    let n = fake.tokens.fetch_add(1, Ordering::SeqCst) + 1;
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("tok-{n}")})
                .to_string(),
        ))
        .unwrap()
}

async fn batch(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    fake.batches.fetch_add(1, Ordering::SeqCst);
    let used: usize = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer tok-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let accepted = used >= fake.accept_from.load(Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap();
    let responses: Vec<Value> = request["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            if accepted {
                json!({"id": r["id"], "status": 200, "headers": {"content-type": "application/json"},
                       "body": {"value": []}})
            } else {
                json!({"id": r["id"], "status": 401, "headers": {"content-type": "application/json"},
                       "body": {"error": {"code": "InvalidAuthenticationToken",
                                          "message": "Lifetime validation failed, the token is expired."}}})
            }
        })
        .collect();
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({ "responses": responses }).to_string(),
        ))
        .unwrap()
}

async fn serve(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/contoso.onmicrosoft.com/oauth2/v2.0/token", post(token))
        .route("/v1.0/$batch", post(batch))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

fn source(base: &str, dir: &tempfile::TempDir) -> GraphSource {
    let mut t = toml::Table::new();
    t.insert("tenant".into(), "contoso.onmicrosoft.com".into());
    t.insert(
        "client_id".into(),
        "0a1b2c3d-1111-4a5b-8c6d-000000000001".into(),
    );
    t.insert("client_secret".into(), "fake-secret".into());
    t.insert("authority".into(), base.into());
    t.insert("graph_url".into(), format!("{base}/v1.0").into());
    let secrets = SecretResolver::new(dir.path().join("calpump.key"));
    GraphSource::new("batch-auth", &t, &secrets).unwrap()
}

fn requests() -> Vec<SubRequest> {
    [
        "room-1@contoso.com",
        "room-1@contoso.com",
        "room-2@contoso.com",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| SubRequest {
        op: "calendarView",
        mailbox: Some((*m).to_string()),
        url: format!("/users/{m}/calendarView?n={i}"),
        page: true,
        what: format!("calendarView of {m}"),
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_inside_batch_gets_one_new_token_then_is_final() {
    let fake = Arc::new(Fake::default());
    fake.accept_from.store(usize::MAX, Ordering::SeqCst);
    let base = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let source = source(&base, &dir);
    let results = tokio::time::timeout(Duration::from_secs(20), source.client().batch(&requests()))
        .await
        .expect("batch() ends instead of looping on token requests");
    assert_eq!(results.len(), 3);
    for r in &results {
        let e = r.as_ref().expect_err("every item was refused");
        assert_eq!(e.code(), "graph.InvalidAuthenticationToken");
    }
    assert_eq!(
        fake.tokens.load(Ordering::SeqCst),
        2,
        "the first token and one new token for the whole batch() call"
    );
    assert_eq!(
        fake.batches.load(Ordering::SeqCst),
        2,
        "the first post and one more with the new token"
    );
    let stats = source.stats();
    assert_eq!(stats.op("batched.calendarView").map_or(0, |o| o.errors), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_inside_batch_with_an_expired_token_is_cured_by_one_new_token() {
    let fake = Arc::new(Fake::default());
    fake.accept_from.store(2, Ordering::SeqCst);
    let base = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let source = source(&base, &dir);
    let results = tokio::time::timeout(Duration::from_secs(20), source.client().batch(&requests()))
        .await
        .expect("batch() ends");
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(fake.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(fake.batches.load(Ordering::SeqCst), 2);
    // A later call starts afresh: the new token works, nothing more is fetched.
    let again = source.client().batch(&requests()).await;
    assert!(again.iter().all(Result::is_ok));
    assert_eq!(fake.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(fake.batches.load(Ordering::SeqCst), 3);
}
