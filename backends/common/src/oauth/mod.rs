//! OAuth2 against Microsoft Entra ID: the token endpoint's grants, a cached token per source
//! (refreshed ahead of expiry, one request for many concurrent callers), Entra's errors
//! mapped to the catalogue, and the token's roles and scopes.
//!
//! ```no_run
//! # async fn demo(http: calpump_backend_common::http::HttpClient, tokens: calpump_backend_common::oauth::TokenSource) -> Result<(), calpump_engine::source::SourceError> {
//! use calpump_backend_common::http::Expect;
//! let url = "https://graph.microsoft.com/v1.0/users/room@contoso.com/calendars";
//! // Bearer token from the cache; on a 401 one retry with a fresh token.
//! let response = tokens
//!     .send(&http, "calendars", || http.reqwest().get(url))
//!     .await?
//!     .check(Expect::Json)?;
//! // By hand: `tokens.token().await?`, `token.header_value()`, `tokens.invalidate(&token)`.
//! # Ok(()) }
//! ```
//!
//! The grants (Microsoft identity platform, "OAuth 2.0 client credentials flow", "resource
//! owner password credentials", "refresh tokens"), all posted as a form to
//! `{authority}/{tenant}/oauth2/v2.0/token` with `client_id` and `scope` in the body:
//! - client credentials with a secret: `grant_type=client_credentials`, `client_secret`;
//! - client credentials with a certificate: `grant_type=client_credentials`,
//!   `client_assertion_type`, `client_assertion` (see [`cert`]);
//! - password (ROPC): `grant_type=password`, `username`, `password`, optional `client_secret`;
//!   `offline_access` is added to the scope so Entra returns a refresh token;
//! - refresh: `grant_type=refresh_token`, `refresh_token` (+ the client's secret or assertion),
//!   used whenever the server gave a refresh token; when it is refused, the original grant.
//!
//! Why not the `oauth2` crate: its token call drops the HTTP status and headers (no
//! `Retry-After` on a throttled token endpoint), and for a non-JSON answer returns only
//! "unexpected response Content-Type" — the HTML login page of a proxy loses its title and the
//! admin the hint. reqwest + serde keeps all of Entra's fields and the shared classification.

pub mod cert;
pub mod claims;
pub mod entra;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::secret::Secret;
use calpump_engine::source::SourceError;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::http::{HttpClient, HttpResponse};
use cert::{CLIENT_ASSERTION_TYPE, CertificateCredential};
use claims::TokenClaims;

/// The public cloud's sign-in host.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The scopes the backends ask for (`.default`: every permission consented for the app).
pub mod scopes {
    /// Microsoft Graph.
    pub const GRAPH: &str = "https://graph.microsoft.com/.default";
    /// Exchange Online (EWS).
    pub const EWS: &str = "https://outlook.office365.com/.default";
}

/// Refresh at most this long before expiry …
pub const REFRESH_AHEAD_MAX: Duration = Duration::from_secs(300);
/// … and at most this fraction of the lifetime (1/10).
pub const REFRESH_AHEAD_DIVISOR: u32 = 10;
/// After a failed refresh while the old token still works, try again after this long.
const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// How the app proves who it is.
pub enum Credential {
    /// Client credentials with a client secret.
    ClientSecret(Secret),
    /// Client credentials with a certificate (signed JWT assertion).
    Certificate(Arc<CertificateCredential>),
    /// The password grant (ROPC) for a service account; `client_secret` for a confidential
    /// app registration.
    Password {
        username: String,
        password: Secret,
        client_secret: Option<Secret>,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ClientSecret(_) => f.write_str("Credential::ClientSecret([redacted])"),
            Credential::Certificate(c) => {
                write!(f, "Credential::Certificate({})", c.certificate().describe())
            }
            Credential::Password { username, .. } => {
                write!(f, "Credential::Password({username}, [redacted])")
            }
        }
    }
}

/// The grant a credential uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    ClientSecret,
    Certificate,
    Password,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientSecret => "client_secret",
            Grant::Certificate => "certificate",
            Grant::Password => "password",
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Credential {
    pub fn grant(&self) -> Grant {
        match self {
            Credential::ClientSecret(_) => Grant::ClientSecret,
            Credential::Certificate(_) => Grant::Certificate,
            Credential::Password { .. } => Grant::Password,
        }
    }
}

/// Everything a token request needs.
#[derive(Debug)]
pub struct TokenConfig {
    /// `https://login.microsoftonline.com` (no trailing slash needed), a national cloud's
    /// sign-in host, or the simulator.
    pub authority: String,
    /// Tenant id or domain (`contoso.onmicrosoft.com`).
    pub tenant: String,
    pub client_id: String,
    /// Space-separated scopes ([`scopes::GRAPH`], [`scopes::EWS`]).
    pub scope: String,
    pub credential: Credential,
}

impl TokenConfig {
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim_end_matches('/'),
            self.tenant.trim_matches('/')
        )
    }
}

/// What a [`TokenSource`] caches for: (authority, tenant, client, scope, grant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TokenKey {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
    pub grant: Grant,
}

/// An access token. Its value never prints.
#[derive(Clone)]
pub struct AccessToken {
    value: Secret,
    serial: u64,
    expires_at: Instant,
    refresh_at: Instant,
    scope: Option<String>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("serial", &self.serial)
            .field("expires_in", &self.expires_in())
            .finish()
    }
}

impl AccessToken {
    /// The token, for the one place that sends it.
    pub fn secret(&self) -> &Secret {
        &self.value
    }

    /// `Bearer <token>` as a header value marked sensitive (hyper and reqwest never print it).
    pub fn header_value(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.value.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
        value.set_sensitive(true);
        value
    }

    /// Time left until it expires.
    pub fn expires_in(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    /// The `scope` Entra returned, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The token's claims (roles, scopes, audience, tenant), when it is a JWT.
    pub fn claims(&self) -> Option<TokenClaims> {
        TokenClaims::decode(self.value.expose())
    }

    /// Which token of its source this is (1, 2, …): equal serials are the same token.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }

    fn is_valid(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

struct RefreshState {
    refresh_token: Option<Secret>,
    /// The attempt number and error of the last failed attempt.
    last_error: Option<(u64, SourceError)>,
    /// While the old token still works, no refresh before this.
    pause_until: Option<Instant>,
}

/// A cached token for one (authority, tenant, client, scope, grant): refreshed ahead of
/// expiry (5 min, or a tenth of the lifetime when shorter); concurrent callers share one
/// request — and its failure.
pub struct TokenSource {
    http: HttpClient,
    config: TokenConfig,
    token_url: String,
    cached: std::sync::Mutex<Option<AccessToken>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    attempts: AtomicU64,
    serial: AtomicU64,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.config.client_id)
            .field("scope", &self.config.scope)
            .field("grant", &self.config.credential.grant())
            .finish_non_exhaustive()
    }
}

/// The token endpoint's success answer; numbers may arrive as strings.
fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl TokenSource {
    pub fn new(http: HttpClient, config: TokenConfig) -> Self {
        let token_url = config.token_url();
        Self {
            http,
            config,
            token_url,
            cached: std::sync::Mutex::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState {
                refresh_token: None,
                last_error: None,
                pause_until: None,
            }),
            attempts: AtomicU64::new(0),
            serial: AtomicU64::new(0),
        }
    }

    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    pub fn grant(&self) -> Grant {
        self.config.credential.grant()
    }

    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    pub fn key(&self) -> TokenKey {
        TokenKey {
            authority: self.config.authority.trim_end_matches('/').to_string(),
            tenant: self.config.tenant.clone(),
            client_id: self.config.client_id.clone(),
            scope: self.config.scope.clone(),
            grant: self.grant(),
        }
    }

    fn cached(&self) -> Option<AccessToken> {
        match self.cached.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, token: Option<AccessToken>) {
        match self.cached.lock() {
            Ok(mut guard) => *guard = token,
            Err(poisoned) => *poisoned.into_inner() = token,
        }
    }

    /// A token that is not due for refresh: from the cache, or fetched (one request however
    /// many callers wait). While a due refresh fails but the old token has not expired, the
    /// old token is returned.
    pub async fn token(&self) -> Result<AccessToken, SourceError> {
        if let Some(token) = self.cached().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(token);
        }
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        let now = Instant::now();
        let cached = self.cached();
        if let Some(token) = cached.clone().filter(|t| t.is_fresh(now)) {
            return Ok(token);
        }
        if let Some(old) = cached.clone().filter(|t| t.is_valid(now))
            && state.pause_until.is_some_and(|until| now < until)
        {
            return Ok(old);
        }
        if self.attempts.load(Ordering::Acquire) != seen
            && let Some((attempt, error)) = &state.last_error
            && *attempt == self.attempts.load(Ordering::Acquire)
        {
            // Someone else's attempt failed while we waited: share its answer.
            return Err(error.clone());
        }
        let result = self.request(&mut state).await;
        let attempt = self.attempts.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(token) => {
                state.last_error = None;
                state.pause_until = None;
                self.store(Some(token.clone()));
                Ok(token)
            }
            Err(error) => {
                if let Some(old) = cached.filter(|t| t.is_valid(Instant::now())) {
                    tracing::warn!(
                        code = error.code(),
                        expires_in_s = old.expires_in().as_secs(),
                        "token refresh failed; the current token is still valid"
                    );
                    state.pause_until = Some(Instant::now() + REFRESH_RETRY_PAUSE);
                    return Ok(old);
                }
                state.last_error = Some((attempt, error.clone()));
                Err(error)
            }
        }
    }

    /// Drops `token` from the cache (the API answered 401 with it), so the next
    /// [`token`](Self::token) fetches a new one. A token that was already replaced is left
    /// alone: twenty concurrent 401s cause one new token, not twenty.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut guard = match self.cached.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.as_ref().is_some_and(|t| t.serial == token.serial) {
            *guard = None;
        }
    }

    /// Sends a request with `Authorization: Bearer …` — the design's "one retry on 401": when
    /// the API answers 401, the token is invalidated and the request is built and sent once
    /// more with a fresh token. `build` is called for each attempt (add the backend's own
    /// headers there). The answer of the last attempt is returned, a second 401 included, for
    /// the backend to map with its own diagnostics.
    pub async fn send(
        &self,
        http: &HttpClient,
        op: &'static str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<HttpResponse, SourceError> {
        let token = self.token().await?;
        let response = http
            .send(op, build().header(AUTHORIZATION, token.header_value()))
            .await?;
        if response.status != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!(
            op,
            serial = token.serial(),
            "401 with a cached token; fetching a new one"
        );
        self.invalidate(&token);
        let fresh = self.token().await?;
        http.send(op, build().header(AUTHORIZATION, fresh.header_value()))
            .await
    }

    async fn request(&self, state: &mut RefreshState) -> Result<AccessToken, SourceError> {
        if let Some(refresh_token) = state.refresh_token.take() {
            match self.post(Some(&refresh_token)).await {
                Ok((token, next)) => {
                    state.refresh_token = next.or(Some(refresh_token));
                    return Ok(token);
                }
                Err(error) => tracing::debug!(
                    code = error.code(),
                    "refresh token refused; using the original grant"
                ),
            }
        }
        let (token, next) = self.post(None).await?;
        state.refresh_token = next;
        Ok(token)
    }

    /// One token request. With `refresh_token`, the refresh grant.
    async fn post(
        &self,
        refresh_token: Option<&Secret>,
    ) -> Result<(AccessToken, Option<Secret>), SourceError> {
        let config = &self.config;
        let mut scope = config.scope.clone();
        if config.credential.grant() == Grant::Password
            && !scope.split_whitespace().any(|s| s == "offline_access")
        {
            scope.push_str(" offline_access");
        }
        let assertion;
        let mut form: Vec<(&str, &str)> = vec![("client_id", &config.client_id)];
        match refresh_token {
            Some(rt) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", rt.expose()));
            }
            None => match &config.credential {
                Credential::Password {
                    username, password, ..
                } => {
                    form.push(("grant_type", "password"));
                    form.push(("username", username));
                    form.push(("password", password.expose()));
                }
                _ => form.push(("grant_type", "client_credentials")),
            },
        }
        form.push(("scope", &scope));
        match &config.credential {
            Credential::ClientSecret(secret) => form.push(("client_secret", secret.expose())),
            Credential::Password {
                client_secret: Some(secret),
                ..
            } => form.push(("client_secret", secret.expose())),
            Credential::Password { .. } => {}
            Credential::Certificate(credential) => {
                assertion = credential
                    .assertion(&config.client_id, &self.token_url, SystemTime::now())
                    .map_err(|e| {
                        SourceError::new(Diagnostic::new(
                            &general::CERTIFICATE_UNUSABLE,
                            e.to_string(),
                        ))
                    })?;
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        let request = self.http.reqwest().post(&self.token_url).form(&form);
        let started = Instant::now();
        let response = self.http.send("token", request).await?;
        if !response.status.is_success() {
            let error = entra::token_error(&response);
            tracing::warn!(
                client_id = %config.client_id,
                grant = %config.credential.grant(),
                refresh = refresh_token.is_some(),
                code = error.code(),
                "token request refused"
            );
            return Err(error);
        }
        let value: Value = match serde_json::from_slice(&response.body) {
            Ok(value) => value,
            Err(e) if response.is_html() => {
                let _ = e;
                return Err(response.html_instead_of_api());
            }
            Err(e) => return Err(response.malformed(format_args!("not JSON: {e}"))),
        };
        let Some(access_token) = value.get("access_token").and_then(Value::as_str) else {
            return Err(response.malformed("no `access_token` in the answer"));
        };
        let lifetime = Duration::from_secs(number(value.get("expires_in")).unwrap_or(3600));
        let ahead = (lifetime / REFRESH_AHEAD_DIVISOR).min(REFRESH_AHEAD_MAX);
        let serial = self.serial.fetch_add(1, Ordering::AcqRel) + 1;
        let token = AccessToken {
            value: Secret::new(access_token),
            serial,
            expires_at: started + lifetime,
            refresh_at: started + (lifetime - ahead),
            scope: value
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let next_refresh = value
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        tracing::debug!(
            client_id = %config.client_id,
            grant = %config.credential.grant(),
            refresh = refresh_token.is_some(),
            expires_in_s = lifetime.as_secs(),
            serial,
            "token acquired"
        );
        Ok((token, next_refresh))
    }
}
