//! Test helpers: a fake Entra token endpoint on 127.0.0.1:0 whose answers each test scripts,
//! and a log capture.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use calpump_backend_common::http::{HttpClient, HttpSettings};
use calpump_backend_common::oauth::{Credential, TokenConfig, TokenSource};
use calpump_engine::secret::Secret;

pub type Form_ = HashMap<String, String>;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// A token answer as Entra sends it.
    pub fn token(access_token: &str, expires_in: u64) -> Self {
        Self::json(
            200,
            format!(
                r#"{{"token_type":"Bearer","expires_in":{expires_in},"ext_expires_in":{expires_in},"access_token":"{access_token}"}}"#
            ),
        )
    }
}

type Script = dyn Fn(&Form_, usize) -> Answer + Send + Sync;

#[derive(Clone)]
pub struct FakeEntra {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<(String, Form_)>>>,
    count: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct AppState {
    script: Arc<Script>,
    requests: Arc<Mutex<Vec<(String, Form_)>>>,
    count: Arc<AtomicUsize>,
}

async fn token_handler(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Form(form): Form<Form_>,
) -> Response {
    let n = state.count.fetch_add(1, Ordering::SeqCst);
    state
        .requests
        .lock()
        .expect("lock")
        .push((tenant, form.clone()));
    let answer = (state.script)(&form, n);
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &answer.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    (
        StatusCode::from_u16(answer.status).expect("status"),
        headers,
        answer.body,
    )
        .into_response()
}

impl FakeEntra {
    /// Starts a token endpoint at `/{tenant}/oauth2/v2.0/token`; `script(form, n)` answers the
    /// n-th request (0-based).
    pub async fn start(script: impl Fn(&Form_, usize) -> Answer + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let state = AppState {
            script: Arc::new(script),
            requests: requests.clone(),
            count: count.clone(),
        };
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token_handler))
            .with_state(state);
        let addr = serve(app).await;
        Self {
            addr,
            requests,
            count,
        }
    }

    pub fn authority(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.addr)
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<(String, Form_)> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn source(&self, credential: Credential, scope: &str) -> TokenSource {
        TokenSource::new(
            http(),
            TokenConfig {
                authority: self.authority(),
                tenant: "contoso.onmicrosoft.com".into(),
                client_id: "11111111-2222-3333-4444-555555555555".into(),
                scope: scope.into(),
                credential,
            },
        )
    }

    pub fn secret_source(&self, secret: &str) -> TokenSource {
        self.source(
            Credential::ClientSecret(Secret::new(secret)),
            "https://graph.microsoft.com/.default",
        )
    }
}

/// Serves a router on 127.0.0.1:0.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

pub fn http() -> HttpClient {
    HttpClient::new(&HttpSettings {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    })
    .expect("client")
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture")
}

/// An Entra error body as the token endpoint sends it.
pub fn entra_error(
    error: &str,
    code: u32,
    message: &str,
    trace: &str,
    correlation: &str,
) -> String {
    let description = format!(
        "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: 2026-11-28 10:00:00Z"
    );
    serde_json::json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": "2026-11-28 10:00:00Z",
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    })
    .to_string()
}

/// Every log line of the test binary (all targets, TRACE), captured once per binary.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || CaptureWriter(writer.clone()));
        // `try_init` also forwards the `log` records of reqwest and hyper.
        subscriber.try_init().expect("subscriber");
        buffer
    })
    .clone()
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
