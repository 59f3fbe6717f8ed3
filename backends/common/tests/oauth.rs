//! OAuth against a fake Entra token endpoint: request shapes of every grant, the certificate
//! assertion verified with the public key, the cache (hit, refresh ahead of expiry,
//! single-flight, invalidate), refresh tokens, and Entra's errors mapped to the catalogue.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use calpump_backend_common::oauth::cert::{
    CLIENT_ASSERTION_TYPE, CertificateCredential, ClientCertificate, PrivateKey,
};
use calpump_backend_common::oauth::{Credential, Grant, scopes};
use calpump_engine::secret::Secret;
use common::{Answer, FakeEntra, entra_error, fixture, read_fixture};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::Value;
use x509_cert::der::Decode as _;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

fn counter_token(n: usize) -> Answer {
    Answer::token(&format!("token-{n}"), 3600)
}

#[tokio::test]
async fn client_secret_grant_sends_the_documented_form() {
    let entra = FakeEntra::start(|_, n| counter_token(n)).await;
    let source = entra.secret_source("s3cret-value");
    let token = source.token().await.expect("token");
    assert_eq!(token.secret().expose(), "token-0");
    assert!(token.expires_in() > Duration::from_secs(3500));
    let requests = entra.requests();
    assert_eq!(requests.len(), 1);
    let (tenant, form) = &requests[0];
    assert_eq!(tenant, "contoso.onmicrosoft.com");
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], "s3cret-value");
    assert_eq!(form["scope"], scopes::GRAPH);
    assert!(!form.contains_key("client_assertion"));
    assert_eq!(source.grant(), Grant::ClientSecret);
    assert_eq!(
        source.token_url(),
        entra.token_url("contoso.onmicrosoft.com")
    );
}

#[tokio::test]
async fn password_grant_sends_user_and_asks_for_a_refresh_token() {
    let entra = FakeEntra::start(|_, n| counter_token(n)).await;
    let source = entra.source(
        Credential::Password {
            username: "svc-pump@contoso.com".into(),
            password: Secret::new("pw-value"),
            client_secret: None,
        },
        scopes::EWS,
    );
    source.token().await.expect("token");
    let (_, form) = &entra.requests()[0];
    assert_eq!(form["grant_type"], "password");
    assert_eq!(form["username"], "svc-pump@contoso.com");
    assert_eq!(form["password"], "pw-value");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(
        form["scope"],
        "https://outlook.office365.com/.default offline_access"
    );
    assert!(
        !form.contains_key("client_secret"),
        "public client: no secret"
    );

    // A confidential app sends its secret too.
    let confidential = entra.source(
        Credential::Password {
            username: "svc-pump@contoso.com".into(),
            password: Secret::new("pw-value"),
            client_secret: Some(Secret::new("app-secret")),
        },
        scopes::EWS,
    );
    confidential.token().await.expect("token");
    assert_eq!(entra.requests()[1].1["client_secret"], "app-secret");
}

#[tokio::test]
async fn refresh_tokens_are_used_and_a_refused_one_falls_back_to_the_password() {
    // 0: password → refresh token rt-1; 1: refresh with rt-1 → refused; 2: password again.
    let entra = FakeEntra::start(|form, n| {
        match (form["grant_type"].as_str(), n) {
            ("password", _) => Answer::json(
                200,
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"at-{n}","refresh_token":"rt-{n}","scope":"EWS.AccessAsUser.All"}}"#
                ),
            ),
            ("refresh_token", 1) => Answer::json(
                200,
                r#"{"token_type":"Bearer","expires_in":"3600","access_token":"at-refreshed","refresh_token":"rt-next"}"#,
            ),
            _ => Answer::json(
                400,
                entra_error("invalid_grant", 700082, "The refresh token has expired due to inactivity.", "t", "c"),
            ),
        }
    })
    .await;
    let source = entra.source(
        Credential::Password {
            username: "svc@contoso.com".into(),
            password: Secret::new("pw"),
            client_secret: None,
        },
        scopes::EWS,
    );
    let first = source.token().await.expect("first");
    assert_eq!(first.secret().expose(), "at-0");
    assert_eq!(first.scope(), Some("EWS.AccessAsUser.All"));
    source.invalidate(&first);
    let second = source.token().await.expect("refreshed");
    assert_eq!(second.secret().expose(), "at-refreshed");
    let form = &entra.requests()[1].1;
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "rt-0");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert!(!form.contains_key("password"));

    source.invalidate(&second);
    let third = source.token().await.expect("fallback to password");
    let requests = entra.requests();
    assert_eq!(requests[2].1["refresh_token"], "rt-next");
    assert_eq!(requests[3].1["grant_type"], "password");
    assert_eq!(third.secret().expose(), "at-3");
}

fn credential() -> CertificateCredential {
    let cert = ClientCertificate::load(&fixture("test-cert.pem")).expect("cert");
    let key = PrivateKey::from_pem(&Secret::new(read_fixture("test-rsa-key.pem"))).expect("key");
    CertificateCredential::new(cert, key).expect("matching key")
}

fn b64json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

#[tokio::test]
async fn certificate_assertion_is_signed_and_shaped_as_entra_expects() {
    let entra = FakeEntra::start(|_, n| counter_token(n)).await;
    let source = entra.source(
        Credential::Certificate(Arc::new(credential())),
        scopes::GRAPH,
    );
    source.token().await.expect("token");
    source.invalidate(&source.token().await.expect("cached"));
    source.token().await.expect("second");
    let requests = entra.requests();
    assert_eq!(requests.len(), 2);
    let form = &requests[0].1;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_assertion_type"], CLIENT_ASSERTION_TYPE);
    assert!(!form.contains_key("client_secret"));
    let jwt = &form["client_assertion"];
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = b64json(parts[0]);
    let claims = b64json(parts[1]);

    // The signature, with the public key taken from the certificate.
    let pem = read_fixture("test-cert.pem");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
    let cert = x509_cert::Certificate::from_der(der.as_ref()).expect("x509");
    let public_key = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("sig");
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &public_key,
    )
    .verify(signed.as_bytes(), &signature)
    .expect("the assertion verifies with the certificate's public key");
    // A tampered payload does not.
    let tampered = format!("{}.{}x", parts[0], parts[1]);
    assert!(
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &public_key
        )
        .verify(tampered.as_bytes(), &signature)
        .is_err()
    );

    // Header.
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let sha256 = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    assert_eq!(header["x5t#S256"], URL_SAFE_NO_PAD.encode(sha256.as_ref()));
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
    assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode(sha1.as_ref()));

    // Claims.
    assert_eq!(claims["aud"], entra.token_url("contoso.onmicrosoft.com"));
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let nbf = claims["nbf"].as_i64().expect("nbf");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!((nbf - now).abs() <= 5, "nbf is now");
    assert!(exp > now && exp - nbf <= 600, "short exp: {}", exp - nbf);
    let jti = claims["jti"].as_str().expect("jti");
    assert_eq!(jti.len(), 36);
    let second = b64json(
        requests[1].1["client_assertion"]
            .split('.')
            .nth(1)
            .expect("claims"),
    );
    assert_ne!(second["jti"], claims["jti"], "jti is unique per assertion");
}

#[test]
fn certificate_details_and_key_checks() {
    let cert = ClientCertificate::load(&fixture("test-cert.pem")).expect("cert");
    assert_eq!(cert.subject(), "CN=calpump test client");
    assert_eq!(cert.thumbprint().len(), 40);
    assert!(cert.not_after() > cert.not_before());
    // PKCS#8 and PKCS#1 keys both load.
    let pkcs8 =
        PrivateKey::from_pem(&Secret::new(read_fixture("test-rsa-key.pkcs8.pem"))).expect("pkcs8");
    CertificateCredential::new(cert.clone(), pkcs8).expect("pkcs8 matches");
    // Another key is refused with the certificate's name.
    let other =
        PrivateKey::from_pem(&Secret::new(read_fixture("other-rsa-key.pem"))).expect("other");
    let err = CertificateCredential::new(cert.clone(), other).expect_err("mismatch");
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert!(err.to_string().contains(&cert.thumbprint()));
    // Not a key at all.
    let err = PrivateKey::from_pem(&Secret::new("not a key")).expect_err("garbage");
    assert!(err.to_string().contains("PEM"), "{err}");
}

#[tokio::test]
async fn cached_tokens_are_reused_until_due_then_refreshed_ahead_of_expiry() {
    // expires_in 3 s → refreshed 0.3 s before expiry.
    let entra = FakeEntra::start(|_, n| Answer::token(&format!("token-{n}"), 3)).await;
    let source = entra.secret_source("s");
    let first = source.token().await.expect("first");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = source.token().await.expect("cached");
    assert_eq!(again.serial(), first.serial(), "cache hit");
    assert_eq!(entra.count(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await; // 2.8 s: inside the last 10 %
    let refreshed = source.token().await.expect("refreshed");
    assert_eq!(refreshed.secret().expose(), "token-1");
    assert!(refreshed.serial() > first.serial());
    assert_eq!(entra.count(), 2, "refreshed before it expired");
}

#[tokio::test]
async fn fifty_concurrent_callers_share_one_token_request() {
    let entra = FakeEntra::start(|_, n| counter_token(n).delayed(Duration::from_millis(300))).await;
    let source = Arc::new(entra.secret_source("s"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let source = source.clone();
        tasks.push(tokio::spawn(async move { source.token().await }));
    }
    for task in tasks {
        let token = task.await.expect("join").expect("token");
        assert_eq!(token.secret().expose(), "token-0");
    }
    assert_eq!(entra.count(), 1, "single flight");
}

#[tokio::test]
async fn fifty_concurrent_callers_share_one_failure_too() {
    let entra = FakeEntra::start(|_, _| {
        Answer::json(
            401,
            entra_error(
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
                "t-1",
                "c-1",
            ),
        )
        .delayed(Duration::from_millis(300))
    })
    .await;
    let source = Arc::new(entra.secret_source("wrong"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let source = source.clone();
        tasks.push(tokio::spawn(async move { source.token().await }));
    }
    for task in tasks {
        let err = task.await.expect("join").expect_err("refused");
        assert_eq!(err.code(), "entra.AADSTS7000215");
    }
    assert_eq!(entra.count(), 1, "one request for all waiting callers");
}

#[tokio::test]
async fn invalidate_replaces_only_the_token_it_names() {
    let entra = FakeEntra::start(|_, n| counter_token(n)).await;
    let source = entra.secret_source("s");
    let a = source.token().await.expect("a");
    source.invalidate(&a);
    let b = source.token().await.expect("b");
    assert_ne!(a.serial(), b.serial());
    assert_eq!(entra.count(), 2);
    // A late 401 with the old token does not throw away the new one.
    source.invalidate(&a);
    let still_b = source.token().await.expect("b again");
    assert_eq!(still_b.serial(), b.serial());
    assert_eq!(entra.count(), 2);
}

/// (code, OAuth error, HTTP status, expected catalogue code)
const ENTRA_CASES: &[(u32, &str, u16, &str)] = &[
    (65001, "invalid_grant", 400, "entra.AADSTS65001"),
    (7000215, "invalid_client", 401, "entra.AADSTS7000215"),
    (7000222, "invalid_client", 401, "entra.AADSTS7000222"),
    (700016, "unauthorized_client", 400, "entra.AADSTS700016"),
    (700027, "invalid_client", 401, "entra.AADSTS700027"),
    (90002, "invalid_request", 400, "entra.AADSTS90002"),
    (50126, "invalid_grant", 400, "entra.AADSTS50126"),
    (50076, "invalid_grant", 400, "entra.AADSTS50076"),
    (50105, "invalid_grant", 400, "entra.AADSTS50105"),
    (53003, "invalid_grant", 400, "entra.AADSTS53003"),
    (700024, "invalid_client", 401, "entra.AADSTS700024"),
    (7000218, "invalid_client", 401, "entra.AADSTS7000218"),
    (424242, "invalid_request", 400, "entra.Other"),
];

#[tokio::test]
async fn entra_errors_map_to_the_catalogue_with_trace_and_correlation_ids() {
    let entra = FakeEntra::start(|form, _| {
        let code: u32 = form["client_secret"].parse().expect("code in the secret");
        let (_, error, status, _) = ENTRA_CASES.iter().find(|c| c.0 == code).expect("case");
        Answer::json(
            *status,
            entra_error(
                error,
                code,
                "Something Entra says.",
                &format!("trace-{code}"),
                &format!("corr-{code}"),
            ),
        )
    })
    .await;
    for (code, error, status, expected) in ENTRA_CASES {
        let source = entra.secret_source(&code.to_string());
        let err = source.token().await.expect_err("refused");
        assert_eq!(err.code(), *expected, "AADSTS{code}");
        let detail = err.diagnostic.detail();
        assert!(
            detail.starts_with(&format!("AADSTS{code}: Something Entra says.")),
            "{detail}"
        );
        assert!(
            detail.contains(&format!("trace id trace-{code}")),
            "{detail}"
        );
        assert!(
            detail.contains(&format!("correlation id corr-{code}")),
            "{detail}"
        );
        assert!(detail.contains(&format!("HTTP {status}")), "{detail}");
        assert!(detail.contains(&format!("error {error}")), "{detail}");
        assert!(
            !detail.contains("Trace ID:"),
            "only the AADSTS line: {detail}"
        );
        assert!(!err.retryable, "AADSTS{code} needs the admin");
    }
}

#[tokio::test]
async fn lenient_entra_bodies_still_map() {
    // No error_codes (the number only in the description), ids only in the description.
    let entra = FakeEntra::start(|_, n| match n {
        0 => Answer::json(
            400,
            r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented to use the application.\r\nTrace ID: tr-9\r\nCorrelation ID: co-9\r\nTimestamp: 2026-11-28 10:00:00Z"}"#,
        ),
        // Codes as strings.
        1 => Answer::json(
            401,
            r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired.","error_codes":["7000222"],"trace_id":"tr-1","correlation_id":"co-1"}"#,
        ),
        // Passing: temporarily_unavailable with a 503 → retryable.
        _ => Answer::json(
            503,
            r#"{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred.","error_codes":[90033]}"#,
        ),
    })
    .await;
    let err = entra.secret_source("a").token().await.expect_err("0");
    assert_eq!(err.code(), "entra.AADSTS65001");
    assert!(err.diagnostic.detail().contains("trace id tr-9"));
    assert!(err.diagnostic.detail().contains("correlation id co-9"));
    let err = entra.secret_source("b").token().await.expect_err("1");
    assert_eq!(err.code(), "entra.AADSTS7000222");
    let err = entra.secret_source("c").token().await.expect_err("2");
    assert_eq!(err.code(), "http.ServerError");
    assert!(err.retryable);
    assert!(err.diagnostic.detail().contains("AADSTS90033"));
}

#[tokio::test]
async fn an_html_login_page_from_a_proxy_is_named_as_such() {
    let page = r#"<!DOCTYPE html><html><head><title>Corporate Proxy – Please sign in</title></head>
        <body><h1>Authentication required</h1><form method="post"><input name="password" type="password"></form></body></html>"#;
    let entra = FakeEntra::start(move |_, n| match n {
        0 => Answer::html(200, page),
        1 => Answer::html(407, page),
        2 => Answer::json(404, ""),
        _ => Answer::json(
            200,
            r#"{"token_type":"Bearer","expires_in":3599,"access_tok"#,
        ),
    })
    .await;
    for status in [200, 407] {
        let err = entra.secret_source("s").token().await.expect_err("html");
        assert_eq!(err.code(), "http.HtmlInsteadOfApi", "status {status}");
        let detail = err.diagnostic.detail();
        assert!(
            detail.contains("Corporate Proxy – Please sign in"),
            "{detail}"
        );
        assert!(detail.contains(&format!("HTTP {status}")), "{detail}");
        assert!(
            detail.contains(&format!(
                "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
                entra.authority()
            )),
            "names the URL: {detail}"
        );
    }
    // An empty 404: the authority is not Entra.
    let err = entra.secret_source("s").token().await.expect_err("empty");
    assert_eq!(err.code(), "entra.UnexpectedResponse");
    assert!(err.diagnostic.detail().contains("HTTP 404"));
    assert!(err.diagnostic.detail().contains("(empty body)"));
    // A truncated token answer.
    let err = entra
        .secret_source("s")
        .token()
        .await
        .expect_err("truncated");
    assert_eq!(err.code(), "proto.Malformed");
    assert!(err.retryable);
}

#[tokio::test]
async fn throttled_token_endpoint_gives_the_servers_delay() {
    let entra =
        FakeEntra::start(|_, _| Answer::json(429, "").with_header("Retry-After", "7")).await;
    let err = entra.secret_source("s").token().await.expect_err("429");
    assert_eq!(err.code(), "http.Throttled");
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert!(err.retryable);
}

#[tokio::test]
async fn a_401_gets_one_retry_with_a_fresh_token() {
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    let entra = FakeEntra::start(|_, n| counter_token(n)).await;
    // The API accepts only token-1: the first (cached) token gets a 401.
    let api = Router::new()
        .route(
            "/ok-with-second",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if auth == "Bearer token-1" {
                    (StatusCode::OK, "{}")
                } else {
                    (StatusCode::UNAUTHORIZED, "{}")
                }
            }),
        )
        .route(
            "/always-401",
            get(|| async { (StatusCode::UNAUTHORIZED, "{}") }),
        );
    let addr = common::serve(api).await;
    let http = common::http();
    let source = entra.secret_source("s");
    let url = format!("http://{addr}/ok-with-second");
    let response = source
        .send(&http, "calendars", || http.reqwest().get(&url))
        .await
        .expect("sent");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(entra.count(), 2, "one new token");

    // A second 401 is returned, not retried forever.
    let url = format!("http://{addr}/always-401");
    let response = source
        .send(&http, "calendars", || http.reqwest().get(&url))
        .await
        .expect("sent");
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(entra.count(), 3, "exactly one retry");
}
