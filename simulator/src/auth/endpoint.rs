//! `POST /{tenant}/oauth2/v2.0/token`.

use super::{Audience, Claims, cert, decode, issue};
use crate::catalogue::{self, AppState as App};
use crate::control::{Fault, Protocol, RequestInfo};
use crate::http::{AppState, apply_body_fault, request_id};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Only the v2.0 endpoint is served. The v1 endpoint (`/{tenant}/oauth2/token`) names the
/// resource with `resource=` and issues v1 tokens; serving it with the v2.0 semantics (`scope=`)
/// would accept requests the real v1 endpoint refuses, so it answers 404 here.
pub fn routes() -> Router<AppState> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token))
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const REFRESH_LIFETIME: i64 = 90 * 86_400;

/// An Entra ID error answer.
struct AadError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
    suberror: Option<&'static str>,
}

fn aad(
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: impl Into<String>,
) -> AadError {
    AadError {
        status,
        error,
        code,
        description: description.into(),
        suberror: None,
    }
}

/// The JSON body Entra ID answers errors with: `error`, `error_description`, `error_codes`,
/// `timestamp`, `trace_id`, `correlation_id`, `error_uri`. The description is
/// `AADSTSnnnn: message\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: 2016-01-09 02:02:12Z`
/// (CRLF-separated, the timestamp without fractional seconds and equal to `timestamp`), as the
/// sample error response on "Microsoft identity platform and the OAuth 2.0 client credentials
/// flow" and "Microsoft Entra authentication and authorization error codes" shows.
pub fn token_error_body(error: &str, code: u32, description: &str, correlation_id: &str) -> Value {
    let ts = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace = request_id();
    json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}"
        ),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    })
}

impl AadError {
    fn into_response(self, correlation_id: &str) -> Response {
        let mut body = token_error_body(self.error, self.code, &self.description, correlation_id);
        if let Some(s) = self.suberror {
            body["suberror"] = json!(s);
        }
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store, no-cache")],
            axum::Json(body),
        )
            .into_response()
    }
}

fn missing(param: &str) -> AadError {
    aad(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

fn tenant_ok(t: &str) -> bool {
    let t = t.trim().to_ascii_lowercase();
    t == catalogue::TENANT_ID || t == catalogue::TENANT_DOMAIN || t == catalogue::MAIL_DOMAIN
}

/// Token endpoint (doc: "Microsoft identity platform and the OAuth 2.0 client credentials flow",
/// "… resource owner password credentials", "… refresh tokens"; errors: "Microsoft Entra
/// authentication and authorization error codes").
async fn token(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(request_id);
    let admission = match s.control.admit(
        RequestInfo {
            protocol: Protocol::Token,
            operation: "token",
            mailbox: None,
            in_batch: false,
        },
        None,
    ) {
        Ok(a) => a,
        Err(_) => return StatusCode::TOO_MANY_REQUESTS.into_response(),
    };
    let delay = admission.latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match admission.answer_fault() {
        Some(Fault::Throttle {
            status,
            retry_after,
        }) => {
            let mut r = aad(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                "temporarily_unavailable",
                50196,
                "The server terminated an operation because it encountered a client request loop.",
            )
            .into_response(&correlation);
            if let Some(secs) = retry_after {
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    secs.to_string()
                        .parse()
                        .unwrap_or(header::HeaderValue::from_static("1")),
                );
            }
            return r;
        }
        Some(Fault::ServerError { status }) => {
            return aad(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "server_error",
                50000,
                "There was an error issuing a token or an issue with our sign-in service.",
            )
            .into_response(&correlation);
        }
        _ => {}
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let resp = match grant(&s, &tenant, &form) {
        Ok(v) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store, no-cache")],
            axum::Json(v),
        )
            .into_response(),
        Err(e) => {
            tracing::info!(code = e.code, tenant = %tenant, client_id = form.get("client_id").map(String::as_str).unwrap_or(""), "token request refused");
            e.into_response(&correlation)
        }
    };
    apply_body_fault(admission.answer_fault(), resp).await
}

fn grant(s: &AppState, tenant: &str, form: &HashMap<String, String>) -> Result<Value, AadError> {
    if !tenant_ok(tenant) {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| missing("grant_type"))?;
    let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
    let Some(app) = s.control.app(client_id) else {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory 'Contoso'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    };
    match grant_type.as_str() {
        "client_credentials" => client_credentials(s, tenant, form, &app),
        "password" => password(s, tenant, form, &app),
        "refresh_token" => refresh(s, tenant, form, &app),
        other => Err(aad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// Checks the client's credential (secret or certificate assertion), as Entra ID does for a
/// confidential client.
fn authenticate_client(
    s: &AppState,
    tenant: &str,
    form: &HashMap<String, String>,
    app: &App,
) -> Result<(), AadError> {
    let assertion = form.get("client_assertion");
    let secret = form.get("client_secret");
    if app.public_client {
        if assertion.is_some() || secret.is_some() {
            return Err(aad(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            ));
        }
        return Ok(());
    }
    if let Some(a) = assertion {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            ));
        }
        return check_assertion(s, tenant, a, app);
    }
    let Some(secret) = secret else {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    if app.secret.as_deref() != Some(secret.as_str()) {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        ));
    }
    if app
        .secret_expires
        .is_some_and(|e| e <= Utc::now().timestamp())
    {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                app.client_id
            ),
        ));
    }
    Ok(())
}

fn assertion_error(reason: &str) -> AadError {
    aad(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700027,
        format!("Client assertion failed signature validation. [Reason - {reason}]"),
    )
}

fn check_assertion(s: &AppState, tenant: &str, assertion: &str, app: &App) -> Result<(), AadError> {
    let parts: Vec<&str> = assertion.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        ));
    }
    let json_part = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (json_part(parts[0]), json_part(parts[1])) else {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        ));
    };
    if header["alg"] != "RS256" && header["alg"] != "PS256" {
        return Err(assertion_error("The signing algorithm is not supported."));
    }
    let cert_der = cert::pem_to_der(catalogue::GRAPH_APP_CERT_PEM, "CERTIFICATE")
        .map_err(|e| assertion_error(&e.to_string()))?;
    let presented = header["x5t#S256"]
        .as_str()
        .or(header["x5t"].as_str())
        .unwrap_or("");
    let matches = app.certificate
        && (presented == cert::x5t_s256(&cert_der) || presented == cert::x5t_sha1(&cert_der));
    if !matches {
        return Err(assertion_error(&format!(
            "The key was not found., Thumbprint of key used by client: '{presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.",
            app.client_id
        )));
    }
    let pk =
        cert::rsa_public_key_from_cert(&cert_der).map_err(|e| assertion_error(&e.to_string()))?;
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
    let input = format!("{}.{}", parts[0], parts[1]);
    if !cert::verify_rs256(&pk, input.as_bytes(), &sig) {
        return Err(assertion_error("The signature is invalid."));
    }
    let now = Utc::now().timestamp();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let nbf = claims["nbf"].as_i64().unwrap_or(0);
    if exp <= now || nbf > now + 300 {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}."
            ),
        ));
    }
    if claims["iss"] != app.client_id.as_str() || claims["sub"] != app.client_id.as_str() {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or("");
    let path_ok = |a: &str| {
        [
            format!("/{tenant}/oauth2/v2.0/token"),
            format!("/{tenant}/oauth2/token"),
        ]
        .iter()
        .any(|p| {
            a.eq_ignore_ascii_case(&format!("{}{p}", s.base_url))
                || a.eq_ignore_ascii_case(&format!("https://login.microsoftonline.com{p}"))
        })
    };
    if !path_ok(aud) {
        return Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid audience claim '{aud}'; it must be the token endpoint URL."
            ),
        ));
    }
    Ok(())
}

fn consent(app: &App) -> Result<(), AadError> {
    if app.consented {
        return Ok(());
    }
    Err(aad(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        65001,
        format!(
            "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
            app.client_id, app.display_name
        ),
    ))
}

/// Splits a scope into (resource, permission): "https://graph.microsoft.com/.default" →
/// (Graph, ".default"); "Calendars.Read" → (Graph, "Calendars.Read").
fn parse_scope(scope: &str) -> Option<(Audience, String)> {
    let scope = scope.trim();
    match scope.rsplit_once('/') {
        Some((res, perm)) => {
            let aud = match res.trim_end_matches('/').to_ascii_lowercase().as_str() {
                "https://graph.microsoft.com" | "00000003-0000-0000-c000-000000000000" => {
                    Audience::Graph
                }
                "https://outlook.office365.com"
                | "https://outlook.office.com"
                | "00000002-0000-0ff1-ce00-000000000000" => Audience::Exchange,
                _ => return None,
            };
            Some((aud, perm.to_string()))
        }
        None => Some((Audience::Graph, scope.to_string())),
    }
}

const OIDC: &[&str] = &["openid", "profile", "email", "offline_access"];

fn invalid_scope(scope: &str) -> AadError {
    aad(
        StatusCode::BAD_REQUEST,
        "invalid_scope",
        70011,
        format!(
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    )
}

fn access_claims(
    s: &AppState,
    aud: Audience,
    app: &App,
    roles: Vec<String>,
    scp: Option<String>,
    upn: Option<String>,
    oid: String,
) -> Claims {
    let now = Utc::now().timestamp();
    Claims {
        aud: aud.url().to_string(),
        iss: format!("https://sts.windows.net/{}/", catalogue::TENANT_ID),
        iat: now,
        nbf: now,
        exp: now + s.control.token_lifetime_secs(),
        tid: catalogue::TENANT_ID.into(),
        appid: app.client_id.clone(),
        app_displayname: app.display_name.clone(),
        idtyp: if upn.is_some() {
            "user".into()
        } else {
            "app".into()
        },
        roles,
        scp,
        upn,
        oid,
        ver: "1.0".into(),
        sim_typ: "access".into(),
        uti: request_id(),
    }
}

fn token_response(
    s: &AppState,
    claims: &Claims,
    refresh: Option<String>,
    scope: Option<String>,
) -> Value {
    let lifetime = (claims.exp - claims.iat).max(0);
    let mut v = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": issue(&s.control, claims),
    });
    if let Some(sc) = scope {
        v["scope"] = json!(sc);
    }
    if let Some(r) = refresh {
        v["refresh_token"] = json!(r);
    }
    v
}

/// Client credentials: one `{resource}/.default` scope; the token carries the app's roles.
fn client_credentials(
    s: &AppState,
    tenant: &str,
    form: &HashMap<String, String>,
    app: &App,
) -> Result<Value, AadError> {
    if app.public_client {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        ));
    }
    authenticate_client(s, tenant, form, app)?;
    let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let (aud, perm) = match scopes.as_slice() {
        [one] => parse_scope(one).ok_or_else(|| invalid_scope(one))?,
        _ => return Err(invalid_scope(scope)),
    };
    if perm != ".default" {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    // Without admin consent Entra ID still issues an app-only token, only without `roles`
    // (application permissions are granted by the consent); the resource then refuses it
    // (Graph: 401 "Either scp or roles claim need to be present in the token."). AADSTS65001
    // is the delegated grants' answer.
    let roles = match (app.consented, aud) {
        (false, _) => Vec::new(),
        (true, Audience::Graph) => app.graph_roles.clone(),
        (true, Audience::Exchange) => app.ews_roles.clone(),
    };
    let oid = format!("{}-sp", app.client_id);
    let claims = access_claims(s, aud, app, roles, None, None, oid);
    Ok(token_response(s, &claims, None, None))
}

/// Delegated scopes granted for a request: `.default` = all of the app's for the resource.
fn delegated(app: &App, scope: &str) -> Result<(Audience, Vec<String>, bool), AadError> {
    let mut aud = None;
    let mut granted: Vec<String> = Vec::new();
    let mut offline = false;
    for sc in scope.split_whitespace() {
        if OIDC.iter().any(|o| o.eq_ignore_ascii_case(sc)) {
            offline |= sc.eq_ignore_ascii_case("offline_access");
            continue;
        }
        let (a, perm) = parse_scope(sc).ok_or_else(|| invalid_scope(sc))?;
        if aud.is_some_and(|x| x != a) {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains more than one resource.",
            ));
        }
        aud = Some(a);
        let fits = |p: &str| match a {
            Audience::Exchange => p.eq_ignore_ascii_case("EWS.AccessAsUser.All"),
            Audience::Graph => !p.eq_ignore_ascii_case("EWS.AccessAsUser.All"),
        };
        if perm == ".default" {
            granted.extend(app.delegated_scopes.iter().filter(|p| fits(p)).cloned());
        } else if app
            .delegated_scopes
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&perm))
            && fits(&perm)
        {
            granted.push(perm);
        } else {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                65001,
                format!(
                    "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                    app.client_id, app.display_name
                ),
            ));
        }
    }
    let aud = aud.ok_or_else(|| invalid_scope(scope))?;
    granted.dedup();
    Ok((aud, granted, offline))
}

fn scope_string(aud: Audience, granted: &[String], offline: bool) -> String {
    let mut v: Vec<String> = granted
        .iter()
        .map(|g| format!("{}/{g}", aud.url()))
        .collect();
    if offline {
        v.push("offline_access".into());
    }
    v.join(" ")
}

/// Resource owner password credentials (ROPC).
fn password(
    s: &AppState,
    tenant: &str,
    form: &HashMap<String, String>,
    app: &App,
) -> Result<Value, AadError> {
    if !app.public_client {
        authenticate_client(s, tenant, form, app)?;
    }
    let username = form.get("username").ok_or_else(|| missing("username"))?;
    let pw = form.get("password").ok_or_else(|| missing("password"))?;
    let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
    let account = s.control.account(username);
    let mailbox = s.control.tenant().mailbox(username);
    let (expected_pw, assigned, mfa, ca) = match (&account, mailbox) {
        (Some(a), _) => (
            a.password.clone(),
            a.assigned,
            a.mfa_required,
            a.blocked_by_conditional_access,
        ),
        (None, Some(_)) => (catalogue::ACCOUNT_PASSWORD.to_string(), true, false, false),
        (None, None) => {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                50034,
                format!(
                    "The user account {username} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                    catalogue::TENANT_DOMAIN
                ),
            ));
        }
    };
    if *pw != expected_pw {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ));
    }
    if app.assignment_required && !assigned {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50105,
            format!(
                "Your administrator has configured the application {} ('{}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{username}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application.",
                app.display_name, app.client_id
            ),
        ));
    }
    let (aud, granted, offline) = delegated(app, scope)?;
    if mfa {
        let mut e = aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50076,
            format!(
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{}'.",
                aud.url()
            ),
        );
        e.suberror = Some("basic_action");
        return Err(e);
    }
    if ca {
        let mut e = aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        );
        e.suberror = Some("message_only");
        return Err(e);
    }
    consent(app)?;
    let oid = mailbox.map(|m| m.object_id.to_string()).unwrap_or_default();
    let upn = username.to_lowercase();
    let scp = granted.join(" ");
    let claims = access_claims(
        s,
        aud,
        app,
        vec![],
        Some(scp.clone()),
        Some(upn.clone()),
        oid.clone(),
    );
    let refresh = offline.then(|| refresh_token(s, app, aud, &scp, &upn, &oid));
    Ok(token_response(
        s,
        &claims,
        refresh,
        Some(scope_string(aud, &granted, offline)),
    ))
}

fn refresh_token(
    s: &AppState,
    app: &App,
    aud: Audience,
    scp: &str,
    upn: &str,
    oid: &str,
) -> String {
    let now = Utc::now().timestamp();
    let claims = Claims {
        aud: aud.url().into(),
        iss: format!("https://sts.windows.net/{}/", catalogue::TENANT_ID),
        iat: now,
        nbf: now,
        exp: now + REFRESH_LIFETIME,
        tid: catalogue::TENANT_ID.into(),
        appid: app.client_id.clone(),
        app_displayname: app.display_name.clone(),
        idtyp: "user".into(),
        roles: vec![],
        scp: Some(scp.into()),
        upn: Some(upn.into()),
        oid: oid.into(),
        ver: "1.0".into(),
        sim_typ: "refresh".into(),
        uti: request_id(),
    };
    issue(&s.control, &claims)
}

/// Refresh token grant: a new access token (and a rotated refresh token).
fn refresh(
    s: &AppState,
    tenant: &str,
    form: &HashMap<String, String>,
    app: &App,
) -> Result<Value, AadError> {
    if !app.public_client {
        authenticate_client(s, tenant, form, app)?;
    }
    let rt = form
        .get("refresh_token")
        .ok_or_else(|| missing("refresh_token"))?;
    let claims = match decode(&s.control, rt) {
        Ok(c) if c.sim_typ == "refresh" => c,
        Err(super::TokenError::Expired) => {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity.",
            ));
        }
        _ => {
            return Err(aad(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            ));
        }
    };
    if !claims.appid.eq_ignore_ascii_case(&app.client_id) {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        ));
    }
    consent(app)?;
    let upn = claims.upn.clone().unwrap_or_default();
    if let Some(a) = s.control.account(&upn)
        && a.blocked_by_conditional_access
    {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        ));
    }
    let (aud, granted, _) = match form.get("scope") {
        Some(sc) => delegated(app, sc)?,
        None => (
            claims.audience().unwrap_or(Audience::Graph),
            claims
                .scp
                .clone()
                .unwrap_or_default()
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            true,
        ),
    };
    let scp = granted.join(" ");
    let access = access_claims(
        s,
        aud,
        app,
        vec![],
        Some(scp.clone()),
        Some(upn.clone()),
        claims.oid.clone(),
    );
    let new_refresh = refresh_token(s, app, aud, &scp, &upn, &claims.oid);
    Ok(token_response(
        s,
        &access,
        Some(new_refresh),
        Some(scope_string(aud, &granted, true)),
    ))
}
