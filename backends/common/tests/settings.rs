//! The OAuth profile keys: parsing, the offline check (credentials, secrets, certificates,
//! expiry, endpoint policy), and a token through settings end to end.

mod common;

use std::path::Path;

use calpump_backend_common::http::EndpointPolicy;
use calpump_backend_common::oauth::{Grant, scopes};
use calpump_backend_common::settings::{OAuthSettings, split_table};
use calpump_engine::config::ConfigIssue;
use calpump_engine::secret::{SecretRef, SecretResolver};
use chrono::{Datelike as _, Duration as Days, Utc};
use common::{Answer, FakeEntra, fixture, read_fixture};

fn resolver() -> SecretResolver {
    SecretResolver::new("/nonexistent/calpump.key")
}

fn parse(text: &str) -> OAuthSettings {
    let table: toml::Table = toml::from_str(text).expect("toml");
    OAuthSettings::from_table(&table).expect("settings")
}

fn errors(issues: &[ConfigIssue]) -> Vec<String> {
    issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect()
}

/// A certificate for the fixture key, valid until `days` from now.
fn certificate_expiring_in(dir: &Path, days: i64) -> std::path::PathBuf {
    let key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
        &read_fixture("test-rsa-key.pkcs8.pem"),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "calpump expiring");
    let start = Utc::now() - Days::days(400);
    let end = Utc::now() + Days::days(days);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    let cert = params.self_signed(&key).expect("cert");
    let path = dir.join(format!("cert-{days}.pem"));
    std::fs::write(&path, cert.pem()).expect("write");
    path
}

#[test]
fn settings_split_from_a_profile_table() {
    let profile: toml::Table = toml::from_str(
        r#"
        tenant = "contoso.onmicrosoft.com"
        client_id = "11111111-2222-3333-4444-555555555555"
        client_secret = { env = "CALPUMP_TEST_SECRET_SPLIT" }
        secret_expires = 2027-03-19
        graph_url = "https://graph.microsoft.com/v1.0"
        "#,
    )
    .expect("toml");
    let (oauth, rest) = split_table(&profile, OAuthSettings::KEYS);
    assert_eq!(rest.keys().collect::<Vec<_>>(), vec!["graph_url"]);
    let settings = OAuthSettings::from_table(&oauth).expect("settings");
    assert_eq!(
        settings.client_secret,
        Some(SecretRef::Env("CALPUMP_TEST_SECRET_SPLIT".into()))
    );
    assert_eq!(
        settings.secret_expires.map(|d| d.to_string()).as_deref(),
        Some("2027-03-19")
    );
    assert_eq!(settings.authority(), "https://login.microsoftonline.com");
    assert_eq!(settings.grant().expect("grant"), Grant::ClientSecret);

    // Unknown keys are named with their path.
    let bad: toml::Table = toml::from_str("tenant = \"t\"\nclient_secert = \"x\"").expect("toml");
    let issue = OAuthSettings::from_table(&bad).expect_err("unknown key");
    assert_eq!(issue.path, "client_secert");
}

#[test]
fn grants_are_selected_and_conflicts_refused() {
    let cert = parse(
        "tenant = \"t\"\nclient_id = \"c\"\ncertificate = \"a.pem\"\nprivate_key = { file = \"a.key\" }",
    );
    assert_eq!(cert.grant().expect("cert"), Grant::Certificate);
    let ropc = parse(
        "tenant = \"t\"\nclient_id = \"c\"\nusername = \"svc@contoso.com\"\npassword = { env = \"PW\" }\nclient_secret = { env = \"S\" }",
    );
    assert_eq!(ropc.grant().expect("ropc"), Grant::Password);

    let both = parse(
        "tenant = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\ncertificate = \"a.pem\"\nprivate_key = { file = \"a.key\" }",
    );
    let issues = both.grant().expect_err("both");
    assert!(
        issues.iter().any(|i| i.message.contains("not both")),
        "{issues:?}"
    );
    let half = parse("tenant = \"t\"\nclient_id = \"c\"\ncertificate = \"a.pem\"");
    assert!(
        half.grant()
            .expect_err("no key")
            .iter()
            .any(|i| i.path == "private_key")
    );
    let user_only = parse("tenant = \"t\"\nclient_id = \"c\"\nusername = \"svc@contoso.com\"");
    assert!(
        user_only
            .grant()
            .expect_err("no pw")
            .iter()
            .any(|i| i.path == "password")
    );
    let none = parse("tenant = \"t\"\nclient_id = \"c\"");
    assert!(
        none.grant().expect_err("none")[0]
            .message
            .contains("no credential")
    );
}

#[test]
fn check_names_missing_secrets_by_reference_never_by_value() {
    let settings = parse(
        r#"
        client_secret = { env = "CALPUMP_TEST_SURELY_UNSET_SECRET" }
        authority = "http://login.contoso.example"
        "#,
    );
    let issues = settings.check(&resolver(), &EndpointPolicy::default());
    let errs = errors(&issues);
    assert!(errs.iter().any(|e| e.starts_with("tenant:")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("client_id:")), "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("client_secret:")
                && e.contains("CALPUMP_TEST_SURELY_UNSET_SECRET")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("authority:") && e.contains("http://")),
        "{errs:?}"
    );

    // A plain secret works but is warned about; its value appears nowhere.
    let plain = parse(
        "tenant = \"t\"\nclient_id = \"c\"\nclient_secret = \"plain-value-4711\"\nauthority = \"http://127.0.0.1:9\"",
    );
    let issues = plain.check(&resolver(), &EndpointPolicy::default());
    assert!(errors(&issues).is_empty(), "{issues:?}");
    assert!(
        issues
            .iter()
            .any(|i| i.path == "client_secret" && !i.is_error())
    );
    assert!(!format!("{issues:?} {plain:?}").contains("plain-value-4711"));
}

#[test]
fn check_reads_certificates_keys_and_expiry() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = fixture("test-rsa-key.pem");
    let profile = |cert: &Path, key: &Path| {
        parse(&format!(
            "tenant = \"t\"\nclient_id = \"c\"\ncertificate = {:?}\nprivate_key = {{ file = {:?} }}",
            cert.display().to_string(),
            key.display().to_string()
        ))
    };
    // Valid for years: no issue.
    let good = profile(&fixture("test-cert.pem"), &key);
    assert!(
        good.check(&resolver(), &EndpointPolicy::default())
            .is_empty()
    );
    // Another key: an error at private_key naming the certificate.
    let mismatch = profile(&fixture("test-cert.pem"), &fixture("other-rsa-key.pem"));
    let errs = errors(&mismatch.check(&resolver(), &EndpointPolicy::default()));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("private_key:") && e.contains("does not belong")),
        "{errs:?}"
    );
    // Expiring in 10 days: a warning at certificate, with the days left.
    let soon = profile(&certificate_expiring_in(dir.path(), 10), &key);
    let issues = soon.check(&resolver(), &EndpointPolicy::default());
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "certificate");
    assert!(!issues[0].is_error());
    assert!(
        issues[0].message.contains("secret.ExpiresSoon"),
        "{}",
        issues[0].message
    );
    let status = &soon.expiry()[0];
    assert!((9..=10).contains(&status.days_left), "{}", status.days_left);
    assert!(status.what.contains("CN=calpump expiring"));
    // Expired: an error.
    let expired = profile(&certificate_expiring_in(dir.path(), -3), &key);
    let errs = errors(&expired.check(&resolver(), &EndpointPolicy::default()));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("certificate:") && e.contains("secret.Expired")),
        "{errs:?}"
    );
    // A missing certificate file.
    let missing = profile(&dir.path().join("nope.pem"), &key);
    let errs = errors(&missing.check(&resolver(), &EndpointPolicy::default()));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("certificate:") && e.contains("nope.pem")),
        "{errs:?}"
    );
}

#[test]
fn secret_expires_is_warned_and_failed() {
    let today = Utc::now().date_naive();
    let with_date = |days: i64| {
        let mut s = parse("tenant = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"");
        s.secret_expires = Some(today + Days::days(days));
        s
    };
    let issue_at = |days: i64| {
        with_date(days)
            .check(&resolver(), &EndpointPolicy::default())
            .into_iter()
            .find(|i| i.path == "secret_expires")
    };
    assert!(issue_at(31).is_none());
    assert!(!issue_at(30).expect("warn").is_error());
    assert!(!issue_at(1).expect("warn").is_error());
    assert!(!issue_at(0).expect("warn today").is_error());
    assert!(issue_at(-1).expect("error").is_error());
    assert_eq!(with_date(12).expiry()[0].days_left, 12);
}

#[tokio::test]
async fn a_certificate_profile_gets_a_token_end_to_end() {
    let entra = FakeEntra::start(|form, _| {
        if form.get("client_assertion").is_some() && form.get("client_secret").is_none() {
            Answer::token("cert-token", 3600)
        } else {
            Answer::json(400, "{}")
        }
    })
    .await;
    let settings = parse(&format!(
        "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\ncertificate = {:?}\nprivate_key = {{ file = {:?} }}\nauthority = \"{}/\"",
        fixture("test-cert.pem").display().to_string(),
        fixture("test-rsa-key.pem").display().to_string(),
        entra.authority()
    ));
    let http = common::http();
    let source = settings
        .token_source(&http, &resolver(), scopes::GRAPH)
        .expect("source");
    assert_eq!(
        source.token_url(),
        entra.token_url("contoso.onmicrosoft.com")
    );
    let token = source.token().await.expect("token");
    assert_eq!(token.secret().expose(), "cert-token");
    assert_eq!(entra.requests()[0].1["scope"], scopes::GRAPH);

    // A scope override wins.
    let mut custom = settings.clone();
    custom.scope = Some("https://graph.microsoft.us/.default".into());
    let source = custom
        .token_source(&http, &resolver(), scopes::GRAPH)
        .expect("source");
    source.token().await.expect("token");
    assert_eq!(
        entra.requests()[1].1["scope"],
        "https://graph.microsoft.us/.default"
    );

    // A profile whose secret cannot be read fails to build with secret.Missing.
    let broken = parse(
        "tenant = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"CALPUMP_TEST_SURELY_UNSET_SECRET\" }",
    );
    let err = broken
        .token_source(&http, &resolver(), scopes::GRAPH)
        .expect_err("no secret");
    assert_eq!(err.code(), "secret.Missing");
    assert!(
        err.diagnostic
            .detail()
            .contains("CALPUMP_TEST_SURELY_UNSET_SECRET")
    );
}
