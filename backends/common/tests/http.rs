//! The HTTP client against real sockets: connection refused, timeout, an untrusted TLS server,
//! an unresolvable name, and the classification of answers (HTML, 5xx, 429, SOAP faults,
//! malformed JSON), plus the endpoint policy and its redirect rule.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use calpump_backend_common::http::{EndpointPolicy, Expect, HttpClient, HttpSettings, USER_AGENT};
use calpump_backend_common::stats::Stats;
use common::serve;
use tokio::io::AsyncReadExt as _;

fn client(timeout: Duration) -> HttpClient {
    HttpClient::new(&HttpSettings {
        connect_timeout: Duration::from_secs(2),
        timeout,
        ..HttpSettings::default()
    })
    .expect("client")
}

#[tokio::test]
async fn connection_refused_is_net_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let http = client(Duration::from_secs(5));
    let url = format!("http://{addr}/EWS/Exchange.asmx");
    let err = http
        .send("probe", http.reqwest().get(&url))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "net.Connect");
    assert!(err.retryable);
    let detail = err.diagnostic.detail();
    assert!(detail.contains("connection refused"), "{detail}");
    assert!(detail.contains(&url), "{detail}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_net_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            // Read the request, never answer.
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            held.push(socket);
        }
    });
    let http = client(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let err = http
        .send("probe", http.reqwest().get(format!("http://{addr}/slow")))
        .await
        .expect_err("timeout");
    assert_eq!(err.code(), "net.Timeout");
    assert!(err.retryable);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_self_signed_tls_server_is_net_tls_with_the_reason() {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(socket).await;
            });
        }
    });
    let http = client(Duration::from_secs(5));
    let err = http
        .send(
            "probe",
            http.reqwest()
                .get(format!("https://localhost:{port}/EWS/Exchange.asmx")),
        )
        .await
        .expect_err("untrusted");
    assert_eq!(err.code(), "net.Tls");
    assert!(!err.retryable);
    let detail = err.diagnostic.detail();
    assert!(detail.contains("does not trust"), "{detail}");
    assert!(
        detail.contains(&format!("https://localhost:{port}/EWS/Exchange.asmx")),
        "{detail}"
    );

    // With the certificate as `ca_file`, the same server is trusted (the handshake passes; the
    // server then closes without HTTP, which is no longer a TLS error).
    let dir = tempfile::tempdir().expect("tmp");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).expect("write");
    let trusting = HttpClient::new(&HttpSettings {
        ca_file: Some(ca),
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    })
    .expect("client");
    let err = trusting
        .send(
            "probe",
            trusting.reqwest().get(format!("https://localhost:{port}/")),
        )
        .await
        .expect_err("no http");
    assert_ne!(err.code(), "net.Tls", "{err}");
}

#[tokio::test]
async fn an_unresolvable_host_is_net_dns() {
    // `.invalid` never resolves (RFC 6761).
    let http = client(Duration::from_secs(10));
    let err = http
        .send(
            "probe",
            http.reqwest()
                .get("https://calpump-test-host.invalid/EWS/Exchange.asmx"),
        )
        .await
        .expect_err("dns");
    assert_eq!(err.code(), "net.Dns", "{err}");
    assert!(
        err.diagnostic
            .detail()
            .contains("calpump-test-host.invalid")
    );
}

async fn answers() -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><head><title>Outlook</title></head><body>Sign in</body></html>",
                )
            }),
        )
        .route(
            "/html401",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><head><title>401 - Unauthorized</title></head></html>",
                )
            }),
        )
        .route(
            "/502",
            get(|| async {
                (
                    StatusCode::BAD_GATEWAY,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                )
            }),
        )
        .route(
            "/500json",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [("request-id", "req-42")],
                    r#"{"error":{"code":"generalException","message":"boom"}}"#,
                )
            }),
        )
        .route(
            "/soapfault",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                    r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorServerBusy</faultcode></s:Fault></s:Body></s:Envelope>"#,
                )
            }),
        )
        .route(
            "/429",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "3")], "") }),
        )
        .route(
            "/503",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, [("Retry-After", "2")], "") }),
        )
        .route(
            "/truncated",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"value":[{"id":"AAMk","subject":"Board"#,
                )
            }),
        )
        .route(
            "/json",
            get(|headers: HeaderMap| async move {
                let ua = headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                ([(header::CONTENT_TYPE, "application/json")], format!(r#"{{"ua":"{ua}"}}"#))
            }),
        )
        .route(
            "/to-remote-http",
            get(|| async { Redirect::temporary("http://mail.contoso.com/EWS/Exchange.asmx") }),
        )
        .route("/to-json", get(|| async { Redirect::temporary("/json").into_response() }));
    serve(app).await
}

#[tokio::test]
async fn answers_are_classified() {
    let addr = answers().await;
    let stats = Stats::detached();
    let http = client(Duration::from_secs(5)).with_stats(stats.clone());
    let get = |path: &str| http.reqwest().get(format!("http://{addr}{path}"));

    // A 2xx with the expected body passes, with calpump's user agent.
    let ok = http
        .send("json", get("/json"))
        .await
        .expect("ok")
        .check(Expect::Json)
        .expect("json");
    let value: serde_json::Value = ok.json().expect("parse");
    assert_eq!(value["ua"], USER_AGENT);
    assert!(USER_AGENT.starts_with("calpump/"));

    // An HTML page where JSON was expected.
    let err = http
        .send("x", get("/html"))
        .await
        .expect("sent")
        .check(Expect::Json)
        .expect_err("html");
    assert_eq!(err.code(), "http.HtmlInsteadOfApi");
    assert!(
        err.diagnostic.detail().contains("“Outlook”"),
        "{}",
        err.diagnostic.detail()
    );
    assert!(
        err.diagnostic
            .detail()
            .contains(&format!("http://{addr}/html"))
    );

    // A 401 with IIS's HTML page is left to the backend (auth, not a proxy).
    let unauthorized = http
        .send("x", get("/html401"))
        .await
        .expect("sent")
        .check(Expect::Xml)
        .expect("401 passes");
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);

    // 5xx → server error, retryable, with the page title or the excerpt and the request id.
    let err = http
        .send("x", get("/502"))
        .await
        .expect("sent")
        .check(Expect::Xml)
        .expect_err("502");
    assert_eq!(err.code(), "http.ServerError");
    assert!(err.retryable);
    assert!(err.diagnostic.detail().contains("502 Bad Gateway"));
    let err = http
        .send("x", get("/500json"))
        .await
        .expect("sent")
        .check(Expect::Json)
        .expect_err("500");
    assert_eq!(err.code(), "http.ServerError");
    assert!(err.diagnostic.detail().contains("request id req-42"));
    assert!(err.diagnostic.detail().contains("generalException"));

    // A SOAP fault (500 with XML) is for the EWS backend to read.
    let fault = http
        .send("x", get("/soapfault"))
        .await
        .expect("sent")
        .check(Expect::Xml)
        .expect("fault passes");
    assert!(fault.text().contains("ErrorServerBusy"));

    // 429 and 503 with Retry-After → throttled with the delay.
    let err = http
        .send("x", get("/429"))
        .await
        .expect("sent")
        .check(Expect::Json)
        .expect_err("429");
    assert_eq!(
        (err.code(), err.retry_after),
        ("http.Throttled", Some(Duration::from_secs(3)))
    );
    let err = http
        .send("x", get("/503"))
        .await
        .expect("sent")
        .check(Expect::Json)
        .expect_err("503");
    assert_eq!(
        (err.code(), err.retry_after),
        ("http.Throttled", Some(Duration::from_secs(2)))
    );

    // Truncated JSON → malformed, naming where parsing stopped.
    let truncated = http
        .send("x", get("/truncated"))
        .await
        .expect("sent")
        .check(Expect::Json)
        .expect("2xx");
    let err = truncated
        .json::<serde_json::Value>()
        .expect_err("truncated");
    assert_eq!(err.code(), "proto.Malformed");
    assert!(err.retryable);
    assert!(
        err.diagnostic.detail().contains("Board"),
        "{}",
        err.diagnostic.detail()
    );

    // Redirects within loopback are followed; to plain http on a remote host, refused.
    let followed = http.send("x", get("/to-json")).await.expect("followed");
    assert_eq!(followed.url.path(), "/json");
    let err = http
        .send("x", get("/to-remote-http"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "config.InsecureUrl");
    assert!(err.diagnostic.detail().contains("mail.contoso.com"));

    // Counters: requests, throttles, errors per operation.
    let snap = stats.snapshot();
    let x = snap.op("x").expect("x");
    assert_eq!(x.throttles, 2);
    assert!(x.errors >= 4, "{x:?}");
    assert_eq!(snap.op("json").expect("json").requests, 1);
}

#[test]
fn endpoint_policy_allows_https_and_loopback_http_only() {
    let strict = EndpointPolicy::default();
    assert!(
        strict
            .check("graph_url", "https://graph.microsoft.com/v1.0")
            .is_ok()
    );
    assert!(strict.check("authority", "http://127.0.0.1:8080").is_ok());
    assert!(strict.check("authority", "http://localhost:8080").is_ok());
    assert!(strict.check("authority", "http://[::1]:8080").is_ok());
    let err = strict
        .check("url", "http://mail.contoso.com/EWS/Exchange.asmx")
        .expect_err("remote http");
    assert!(err.is_error() && err.path == "url" && err.message.contains("allow_insecure"));
    assert!(strict.check("url", "ftp://x").is_err());
    assert!(strict.check("url", "not a url").is_err());
    assert!(
        strict
            .check("url", "https://user:pw@mail.contoso.com/")
            .is_err()
    );

    let lax = EndpointPolicy {
        allow_insecure: true,
    };
    let mut issues = Vec::new();
    let url = lax.check_into(
        "url",
        "http://mail.contoso.com/EWS/Exchange.asmx",
        &mut issues,
    );
    assert!(url.is_some());
    assert_eq!(issues.len(), 1);
    assert!(!issues[0].is_error(), "a warning");
    let mut issues = Vec::new();
    strict.check_into("url", "http://mail.contoso.com/", &mut issues);
    assert!(issues[0].is_error());

    let remote = reqwest::Url::parse("http://mail.contoso.com/").expect("url");
    assert_eq!(
        strict.ensure(&remote).expect_err("run time").code(),
        "config.InsecureUrl"
    );
}

#[tokio::test]
async fn requests_to_remote_http_are_refused_before_sending() {
    let http = client(Duration::from_secs(5));
    let err = http
        .send(
            "x",
            http.reqwest()
                .get("http://mail.contoso.com/EWS/Exchange.asmx"),
        )
        .await
        .expect_err("policy");
    assert_eq!(err.code(), "config.InsecureUrl");
}

#[test]
fn http_settings_check_offline() {
    let settings: HttpSettings =
        toml::from_str("timeout = \"30s\"\nconnect_timeout = \"5s\"").expect("parse");
    assert_eq!(settings.timeout, Duration::from_secs(30));
    assert!(settings.check().is_empty());
    let bad = HttpSettings {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..HttpSettings::default()
    };
    let issues = bad.check();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "ca_file");
    assert!(toml::from_str::<HttpSettings>("timeot = \"30s\"").is_err());
}

#[tokio::test]
async fn an_answer_that_breaks_off_is_malformed_and_retryable() {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"value\":[{\"id\":",
                )
                .await;
            // Close mid-body.
        }
    });
    let http = client(Duration::from_secs(5));
    let err = http
        .send(
            "calendarView",
            http.reqwest().get(format!("http://{addr}/v1.0/x")),
        )
        .await
        .expect_err("broken off");
    assert_eq!(err.code(), "proto.Malformed");
    assert!(err.retryable);
    assert!(
        err.diagnostic.detail().contains("broke off"),
        "{}",
        err.diagnostic.detail()
    );
}

/// An axum listener that speaks TLS with the given certificate (test helper).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((socket, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(socket).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[tokio::test]
async fn the_servers_certificate_is_exposed_when_asked_for() {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("config");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = tcp.local_addr().expect("addr").port();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new().route("/", get(|| async { "hello" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().expect("tmp");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).expect("write");
    let settings = HttpSettings {
        ca_file: Some(ca),
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    };
    let url = format!("https://localhost:{port}/");

    let exposing = HttpClient::new_with_peer_certificate(&settings).expect("client");
    let response = exposing
        .send("probe", exposing.reqwest().get(&url))
        .await
        .expect("answer");
    assert_eq!(response.text(), "hello");
    assert_eq!(
        response.peer_certificate.as_deref(),
        Some(cert.der().as_ref()),
        "the leaf certificate, DER"
    );

    // Not asked for: none. Plain HTTP: none either.
    let plain = HttpClient::new(&settings).expect("client");
    let response = plain
        .send("probe", plain.reqwest().get(&url))
        .await
        .expect("answer");
    assert_eq!(response.peer_certificate, None);
    let http_addr = answers().await;
    let response = exposing
        .send(
            "probe",
            exposing.reqwest().get(format!("http://{http_addr}/json")),
        )
        .await
        .expect("answer");
    assert_eq!(response.peer_certificate, None);
}

/// Every request and every throttle reaches the engine's `/metrics` registry, labelled with the
/// backend of the client's stats.
#[tokio::test]
async fn requests_and_throttles_reach_the_metrics_registry() {
    let app = Router::new().route("/ok", get(|| async { "{}" })).route(
        "/busy",
        get(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "{}",
            )
        }),
    );
    let base = format!("http://{}", serve(app).await);
    let http = client(Duration::from_secs(5))
        .with_stats(Stats::register("metrics-test", "metricsbackend"));
    http.send("ok-op", http.reqwest().get(format!("{base}/ok")))
        .await
        .expect("ok");
    let _ = http
        .send("busy-op", http.reqwest().get(format!("{base}/busy")))
        .await;
    let text = calpump_engine::metrics::global().render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("calpump_requests_total{")
                && l.contains("backend=\"metricsbackend\"")
                && l.contains("operation=\"ok-op\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("calpump_throttled_total{")
                && l.contains("backend=\"metricsbackend\"")),
        "{text}"
    );
}
