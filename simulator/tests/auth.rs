//! The token endpoint: grants, certificate assertions, and the real Entra ID error bodies.
#![allow(clippy::unwrap_used)]

mod common;

use calpump_simulator::auth::cert::client_assertion;
use calpump_simulator::catalogue::*;
use serde_json::Value;

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn assert_aad(v: &Value, code: u64, error: &str) {
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"][0], code, "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(v[k].is_string(), "{k} missing in {v}");
    }
    // The shape Entra ID answers with (sample on the error-codes and OAuth2 pages):
    // "AADSTS70011: message\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: 2016-01-09 02:02:12Z",
    // and the same timestamp (no fractional seconds) in `timestamp`.
    let lines: Vec<&str> = d.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{d:?}");
    assert!(!lines[0].contains('\n'), "{d:?}");
    assert_eq!(
        lines[1],
        format!("Trace ID: {}", v["trace_id"].as_str().unwrap())
    );
    assert_eq!(
        lines[2],
        format!("Correlation ID: {}", v["correlation_id"].as_str().unwrap())
    );
    let ts = v["timestamp"].as_str().unwrap();
    assert_eq!(lines[3], format!("Timestamp: {ts}"));
    assert!(
        chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%SZ").is_ok() && ts.len() == 20,
        "{ts}"
    );
}

#[tokio::test]
async fn client_credentials_and_every_catalogued_failure() {
    let sim = common::start().await;
    let url = sim.token_url();
    let cc = |id: &'static str, secret: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    };
    let (s, v) = post(&url, &cc(GRAPH_APP_ID, GRAPH_APP_SECRET)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_i64().unwrap() > 3000);
    // By tenant GUID too.
    let (s, _) = post(
        &format!("{}/{TENANT_ID}/oauth2/v2.0/token", sim.base_url()),
        &cc(GRAPH_APP_ID, GRAPH_APP_SECRET),
    )
    .await;
    assert_eq!(s, 200);

    // The v1 endpoint (`/oauth2/token`, which takes `resource`, not `scope`) is not served.
    let r = reqwest::Client::new()
        .post(format!("{}/{TENANT_DOMAIN}/oauth2/token", sim.base_url()))
        .form(&cc(GRAPH_APP_ID, GRAPH_APP_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let (s, v) = post(&url, &cc(GRAPH_APP_ID, GRAPH_APP_SECRET_ID)).await;
    assert_eq!(s, 401);
    assert_aad(&v, 7000215, "invalid_client");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("not the client secret ID")
    );
    let (s, v) = post(&url, &cc(EXPIRED_SECRET_APP_ID, EXPIRED_SECRET_APP_SECRET)).await;
    assert_eq!(s, 401);
    assert_aad(&v, 7000222, "invalid_client");
    // Admin consent missing: client credentials still get a token, but without `roles`; Graph
    // refuses it with 401 InvalidAuthenticationToken.
    let (s, v) = post(&url, &cc(NO_CONSENT_APP_ID, NO_CONSENT_APP_SECRET)).await;
    assert_eq!(s, 200, "{v}");
    let t = v["access_token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&t);
    assert!(claims.get("roles").is_none(), "{claims}");
    assert!(claims.get("scp").is_none(), "{claims}");
    let (s, v) = common::get(
        &sim,
        &t,
        "/users/room-1.01@contoso.com/calendarView?startDateTime=2025-06-01&endDateTime=2025-06-03",
        &[],
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        v["error"]["message"],
        "Either scp or roles claim need to be present in the token."
    );
    // The same app's token for Exchange: issued without roles, EWS refuses it (2000008).
    let (s, v) = post(
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", NO_CONSENT_APP_ID),
            ("client_secret", NO_CONSENT_APP_SECRET),
            ("scope", "https://outlook.office365.com/.default"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        jwt_claims(v["access_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
    let r = reqwest::Client::new()
        .post(sim.ews_url())
        .bearer_auth(v["access_token"].as_str().unwrap())
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body><m:GetRoomLists/></s:Body></s:Envelope>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["x-ms-diagnostics"]
            .to_str()
            .unwrap()
            .starts_with("2000008;")
    );
    let (s, v) = post(&url, &cc("00000000-0000-0000-0000-000000000000", "x")).await;
    assert_eq!(s, 400);
    assert_aad(&v, 700016, "unauthorized_client");
    let (s, v) = post(
        &format!(
            "{}/fabrikam.onmicrosoft.com/oauth2/v2.0/token",
            sim.base_url()
        ),
        &cc(GRAPH_APP_ID, GRAPH_APP_SECRET),
    )
    .await;
    assert_eq!(s, 400);
    assert_aad(&v, 90002, "invalid_request");

    // Control switch: revoke consent of the good app (its tokens lose their roles), then
    // restore it.
    sim.control()
        .update_app(GRAPH_APP_ID, |a| a.consented = false);
    let (s, v) = post(&url, &cc(GRAPH_APP_ID, GRAPH_APP_SECRET)).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        jwt_claims(v["access_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
    sim.control()
        .update_app(GRAPH_APP_ID, |a| a.consented = true);
    let (_, v) = post(&url, &cc(GRAPH_APP_ID, GRAPH_APP_SECRET)).await;
    // The good app holds what calpump needs and nothing more.
    assert_eq!(
        jwt_claims(v["access_token"].as_str().unwrap())["roles"],
        serde_json::json!(["Calendars.Read", "Place.Read.All"])
    );

    // Roles missing: consented, but its roles lack Calendars.Read: Graph answers 403.
    let t = common::token(
        &sim,
        NO_ROLES_APP_ID,
        NO_ROLES_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    assert_eq!(
        jwt_claims(&t)["roles"],
        serde_json::json!(["User.Read.All"])
    );
    let (s, v) = common::get(
        &sim,
        &t,
        "/users/room-1.01@contoso.com/calendarView?startDateTime=2025-06-01&endDateTime=2025-06-03",
        &[],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], "ErrorAccessDenied");
    assert_eq!(
        v["error"]["message"],
        "Access is denied. Check credentials and try again."
    );
    sim.shutdown().await;
}

/// The claims of a JWT (no signature check).
fn jwt_claims(t: &str) -> Value {
    use base64::Engine;
    let payload = t.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn certificate_assertion_is_checked() {
    let sim = common::start().await;
    let url = sim.token_url();
    let now = chrono::Utc::now().timestamp();
    let good = client_assertion(
        GRAPH_APP_KEY_PEM,
        GRAPH_APP_CERT_PEM,
        GRAPH_APP_ID,
        &url,
        now,
        now + 600,
    )
    .unwrap();
    let form = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", GRAPH_APP_ID.to_string()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", a.to_string()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
        ]
    };
    let r = reqwest::Client::new()
        .post(&url)
        .form(&form(&good))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Signed with a key that is not the registered certificate's.
    let forged = client_assertion(
        UNREGISTERED_KEY_PEM,
        GRAPH_APP_CERT_PEM,
        GRAPH_APP_ID,
        &url,
        now,
        now + 600,
    )
    .unwrap();
    let r = reqwest::Client::new()
        .post(&url)
        .form(&form(&forged))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_aad(&v, 700027, "invalid_client");
    // Expired assertion.
    let old = client_assertion(
        GRAPH_APP_KEY_PEM,
        GRAPH_APP_CERT_PEM,
        GRAPH_APP_ID,
        &url,
        now - 7200,
        now - 3600,
    )
    .unwrap();
    let v: Value = reqwest::Client::new()
        .post(&url)
        .form(&form(&old))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_aad(&v, 700024, "invalid_client");
    // Wrong audience.
    let wrong = client_assertion(
        GRAPH_APP_KEY_PEM,
        GRAPH_APP_CERT_PEM,
        GRAPH_APP_ID,
        "https://example.com/token",
        now,
        now + 600,
    )
    .unwrap();
    let v: Value = reqwest::Client::new()
        .post(&url)
        .form(&form(&wrong))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_aad(&v, 700027, "invalid_client");
    sim.shutdown().await;
}

#[tokio::test]
async fn password_and_refresh_grants_and_user_failures() {
    let sim = common::start().await;
    let url = sim.token_url();
    let ropc = |user: &'static str, pw: &'static str| {
        vec![
            ("grant_type", "password"),
            ("client_id", DELEGATED_APP_ID),
            ("username", user),
            ("password", pw),
            (
                "scope",
                "https://outlook.office365.com/EWS.AccessAsUser.All offline_access",
            ),
        ]
    };
    let (s, v) = post(&url, &ropc(SVC_PUMP, ACCOUNT_PASSWORD)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["scope"],
        "https://outlook.office365.com/EWS.AccessAsUser.All offline_access"
    );
    let rt = v["refresh_token"].as_str().unwrap().to_string();
    let (s, v2) = post(
        &url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DELEGATED_APP_ID),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v2}");
    assert_ne!(v2["access_token"], v["access_token"]);
    let (_, v) = post(
        &url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DELEGATED_APP_ID),
            ("refresh_token", "garbage"),
        ],
    )
    .await;
    assert_eq!(v["error"], "invalid_grant");

    // Delegated grants without consent: AADSTS65001 (password and refresh grants).
    sim.control()
        .update_app(DELEGATED_APP_ID, |a| a.consented = false);
    let (s, v) = post(&url, &ropc(SVC_PUMP, ACCOUNT_PASSWORD)).await;
    assert_eq!(s, 400);
    assert_aad(&v, 65001, "invalid_grant");
    let (s, v) = post(
        &url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DELEGATED_APP_ID),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad(&v, 65001, "invalid_grant");
    sim.control()
        .update_app(DELEGATED_APP_ID, |a| a.consented = true);

    let (_, v) = post(&url, &ropc(SVC_PUMP, "wrong")).await;
    assert_aad(&v, 50126, "invalid_grant");
    let (_, v) = post(&url, &ropc(MFA_USER, ACCOUNT_PASSWORD)).await;
    assert_aad(&v, 50076, "invalid_grant");
    let (_, v) = post(&url, &ropc(UNASSIGNED_USER, ACCOUNT_PASSWORD)).await;
    assert_aad(&v, 50105, "invalid_grant");
    let (_, v) = post(&url, &ropc(CA_BLOCKED_USER, ACCOUNT_PASSWORD)).await;
    assert_aad(&v, 53003, "invalid_grant");

    // Tokens expire: a 1-second lifetime, then Graph answers 401 InvalidAuthenticationToken.
    sim.control().set_token_lifetime(1);
    let t = common::graph_token(&sim).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, v) = common::get(&sim, &t, "/users/room-1.01@contoso.com", &[]).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    assert!(v["error"]["innerError"]["request-id"].is_string());
    let r = reqwest::Client::new()
        .get(format!("{}/users/room-1.01@contoso.com", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Access token is empty.");
    sim.shutdown().await;
}
