//! Planted marker secrets — a client secret, a password, a private key, the access and refresh
//! tokens the server hands out — must appear in no `Debug`, no `Display`, no error text and no
//! captured log line (all targets, TRACE, reqwest's and hyper's included).

mod common;

use std::sync::Arc;

use calpump_backend_common::http::Expect;
use calpump_backend_common::oauth::cert::{CertificateCredential, ClientCertificate, PrivateKey};
use calpump_backend_common::oauth::{Credential, scopes};
use calpump_backend_common::settings::OAuthSettings;
use calpump_engine::secret::{Secret, SecretRef, SecretResolver};
use common::{Answer, FakeEntra, captured_logs, entra_error, fixture, read_fixture};

const CLIENT_SECRET: &str = "MARKER-client-secret-Q8~zz";
const PASSWORD: &str = "MARKER-password-r7";
const ACCESS_TOKEN: &str = "MARKER-access-token-x1";
const REFRESH_TOKEN: &str = "MARKER-refresh-token-x2";

#[tokio::test]
async fn marker_secrets_never_show() {
    let logs = captured_logs();
    let key_pem = read_fixture("test-rsa-key.pem");
    // A line from the middle of the key's base64.
    let key_marker = key_pem.lines().nth(5).expect("key line").to_string();
    let mut seen: Vec<String> = Vec::new();

    let entra = FakeEntra::start(|form, n| {
        let who = form
            .get("username")
            .cloned()
            .unwrap_or_else(|| form["client_id"].clone());
        match (who.as_str(), n) {
            // Success with both tokens.
            ("svc@contoso.com", 0) => Answer::json(
                200,
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{ACCESS_TOKEN}","refresh_token":"{REFRESH_TOKEN}"}}"#
                ),
            ),
            // The refresh is refused; the body echoes the refresh token (a careless server).
            ("svc@contoso.com", _) => Answer::json(
                400,
                entra_error(
                    "invalid_grant",
                    50126,
                    &format!("Error validating credentials. refresh_token={REFRESH_TOKEN} password={PASSWORD}"),
                    "t",
                    "c",
                ),
            ),
            // A proxy page that echoes the posted form.
            ("html-app", _) => Answer::html(
                200,
                format!(
                    "<html><head><title>Login</title></head><body>client_secret: {CLIENT_SECRET} password: {PASSWORD}</body></html>"
                ),
            ),
            // A 500 that echoes a token.
            ("json-app", _) => Answer::json(500, format!(r#"{{"access_token":"{ACCESS_TOKEN}"}}"#)),
            // A truncated success that carries the token.
            _ => Answer::json(200, format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"#)),
        }
    })
    .await;

    // The password grant: success, then a refused refresh, then a refused password grant.
    let ropc = entra.source(
        Credential::Password {
            username: "svc@contoso.com".into(),
            password: Secret::new(PASSWORD),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
        },
        scopes::EWS,
    );
    let token = ropc.token().await.expect("token");
    assert_eq!(
        token.secret().expose(),
        ACCESS_TOKEN,
        "the marker is really there"
    );
    seen.push(format!("{token:?} {ropc:?} {:?}", token.header_value()));
    ropc.invalidate(&token);
    let err = ropc.token().await.expect_err("refused");
    assert_eq!(err.code(), "entra.AADSTS50126");
    seen.push(format!(
        "{err} {err:?} {}",
        err.diagnostic.render(calpump_engine::diagnostics::Lang::En)
    ));

    // Error answers that echo secrets.
    for client in ["html-app", "json-app", "truncated-app"] {
        let source = calpump_backend_common::oauth::TokenSource::new(
            common::http(),
            calpump_backend_common::oauth::TokenConfig {
                authority: entra.authority(),
                tenant: "t".into(),
                client_id: client.into(),
                scope: scopes::GRAPH.into(),
                credential: Credential::ClientSecret(Secret::new(CLIENT_SECRET)),
            },
        );
        let err = source.token().await.expect_err(client);
        seen.push(format!("{err} {err:?} {source:?}"));
    }

    // The certificate credential and its key.
    let cert = ClientCertificate::load(&fixture("test-cert.pem")).expect("cert");
    let key = PrivateKey::from_pem(&Secret::new(key_pem.clone())).expect("key");
    seen.push(format!("{key:?}"));
    let credential = Credential::Certificate(Arc::new(
        CertificateCredential::new(cert, key).expect("pair"),
    ));
    seen.push(format!("{credential:?}"));

    // Settings with plain secrets, their check and their errors.
    let settings = OAuthSettings {
        tenant: "t".into(),
        client_id: "c".into(),
        client_secret: Some(SecretRef::Plain(Secret::new(CLIENT_SECRET))),
        certificate: Some(fixture("test-cert.pem")),
        private_key: Some(SecretRef::Plain(Secret::new(key_pem.clone()))),
        username: Some("svc@contoso.com".into()),
        password: Some(SecretRef::Plain(Secret::new(PASSWORD))),
        ..OAuthSettings::default()
    };
    let resolver = SecretResolver::new("/nonexistent/key");
    let issues = settings.check(&resolver, &Default::default());
    assert!(!issues.is_empty());
    seen.push(format!("{settings:?}"));
    for issue in &issues {
        seen.push(format!("{issue} {issue:?}"));
    }
    let err = settings
        .token_source(&common::http(), &resolver, scopes::GRAPH)
        .expect_err("conflicting credentials");
    seen.push(format!("{err} {err:?}"));

    // A response whose Debug would show headers and body.
    let http = common::http();
    let response = http
        .send("token", http.reqwest().get(entra.token_url("t")))
        .await
        .expect("sent");
    seen.push(format!("{response:?}"));
    let _ = response.check(Expect::Json);

    let logs = String::from_utf8(logs.lock().expect("logs").clone()).expect("utf8");
    assert!(logs.contains("token acquired"), "the capture works: {logs}");
    assert!(
        logs.contains("hyper") || logs.contains("reqwest"),
        "the HTTP stack's own TRACE lines are captured too"
    );
    seen.push(logs);
    let everything = seen.join("\n");
    for marker in [
        CLIENT_SECRET,
        PASSWORD,
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        key_marker.as_str(),
    ] {
        assert!(
            !everything.contains(marker),
            "`{marker}` leaked:\n{}",
            everything
                .lines()
                .filter(|l| l.contains(marker))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
