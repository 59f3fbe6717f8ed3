//! The OAuth2 token endpoint (Entra ID v2.0 shape) and validation of the tokens it issues.
//!
//! `POST /{tenant}/oauth2/v2.0/token` (tenant by GUID or domain) with grants
//! `client_credentials` (client secret, or a certificate assertion
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`),
//! `password` (ROPC) and `refresh_token`. Docs: learn.microsoft.com "Microsoft identity platform
//! and the OAuth 2.0 client credentials flow", "… resource owner password credentials",
//! "… application authentication certificate credentials", and "Microsoft Entra authentication
//! and authorization error codes" for the AADSTS errors.
//!
//! Issued tokens are JWT-shaped (`header.claims.signature`, HS256 with a key derived from the
//! seed, so they stay valid across a restart with the same seed) and carry `aud`, `tid`,
//! `appid`, `roles` (application permissions) or `scp` (delegated), `upn`, `exp`.

pub mod cert;
mod endpoint;

use crate::catalogue;
use crate::control::Control;
use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

pub use endpoint::token_error_body;

pub fn routes() -> Router<crate::http::AppState> {
    endpoint::routes()
}

/// The resource a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Audience {
    /// `https://graph.microsoft.com`
    Graph,
    /// `https://outlook.office365.com` (EWS)
    Exchange,
}

impl Audience {
    pub fn url(self) -> &'static str {
        match self {
            Audience::Graph => catalogue::GRAPH_AUDIENCE,
            Audience::Exchange => catalogue::EXCHANGE_AUDIENCE,
        }
    }
    fn from_aud(s: &str) -> Option<Self> {
        let s = s.trim_end_matches('/');
        if s.eq_ignore_ascii_case(catalogue::GRAPH_AUDIENCE)
            || s.eq_ignore_ascii_case(catalogue::GRAPH_RESOURCE_ID)
        {
            Some(Audience::Graph)
        } else if s.eq_ignore_ascii_case(catalogue::EXCHANGE_AUDIENCE)
            || s.eq_ignore_ascii_case(catalogue::EXCHANGE_RESOURCE_ID)
            || s.eq_ignore_ascii_case("https://outlook.office.com")
        {
            Some(Audience::Exchange)
        } else {
            None
        }
    }
}

/// The claims of an access token the simulator issued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub appid: String,
    pub app_displayname: String,
    /// "app" or "user".
    pub idtyp: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Delegated scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    pub oid: String,
    pub ver: String,
    /// "access" or "refresh" (simulator-specific; real refresh tokens are opaque).
    #[serde(default)]
    pub sim_typ: String,
    /// Unique token id (Entra's `uti`).
    #[serde(default)]
    pub uti: String,
}

impl Claims {
    pub fn audience(&self) -> Option<Audience> {
        Audience::from_aud(&self.aud)
    }
    /// Application permission or delegated scope present (case-insensitive).
    pub fn has(&self, permission: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(permission))
            || self
                .scp
                .as_deref()
                .is_some_and(|s| s.split(' ').any(|x| x.eq_ignore_ascii_case(permission)))
    }
    pub fn is_app(&self) -> bool {
        self.idtyp == "app"
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Access token is empty.")]
    Missing,
    #[error("IDX14100: JWT is not well formed, there are no dots (.).")]
    Malformed,
    #[error("Access token validation failure.")]
    BadSignature,
    #[error("Lifetime validation failed, the token is expired.")]
    Expired,
    #[error("Invalid audience.")]
    WrongAudience,
}

fn sign(control: &Control, input: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &control.shared.token_key);
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()))
}

/// Issues a signed token with these claims.
pub fn issue(control: &Control, claims: &Claims) -> String {
    let header = serde_json::json!({ "typ": "JWT", "alg": "HS256", "kid": "calpump-simulator" });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
    );
    let sig = sign(control, &input);
    format!("{input}.{sig}")
}

/// Decodes and checks a token the simulator issued (signature, expiry; not the audience).
pub fn decode(control: &Control, token: &str) -> Result<Claims, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let (input, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (_, payload) = input.split_once('.').ok_or(TokenError::Malformed)?;
    let expected = sign(control, input);
    if !ring_eq(expected.as_bytes(), sig.as_bytes()) {
        return Err(TokenError::BadSignature);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= chrono::Utc::now().timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Validates an `Authorization` header value (`Bearer …`) for a resource. Protocol modules call
/// this on every request.
pub fn validate_bearer(
    control: &Control,
    authorization: Option<&str>,
    audience: Audience,
) -> Result<Claims, TokenError> {
    let h = authorization.unwrap_or("").trim();
    let token = match h.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ if h.is_empty() => return Err(TokenError::Missing),
        _ => return Err(TokenError::Missing),
    };
    let claims = decode(control, token)?;
    if claims.sim_typ != "access" {
        return Err(TokenError::BadSignature);
    }
    if claims.audience() != Some(audience) {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_expire() {
        let tenant = std::sync::Arc::new(crate::tenant::Tenant::new(crate::tenant::TenantConfig {
            seed: 1,
            anchor: chrono::Utc::now(),
            users: 1,
            rooms: 1,
            equipment: 1,
            events_per_room: 1,
            cache_mailboxes: 1,
        }));
        let c = Control::new(tenant, 60, 4, None);
        let now = chrono::Utc::now().timestamp();
        let mut claims = Claims {
            aud: catalogue::GRAPH_AUDIENCE.into(),
            iss: "x".into(),
            iat: now,
            nbf: now,
            exp: now + 60,
            tid: catalogue::TENANT_ID.into(),
            appid: catalogue::GRAPH_APP_ID.into(),
            app_displayname: "a".into(),
            idtyp: "app".into(),
            roles: vec!["Calendars.Read".into()],
            scp: None,
            upn: None,
            oid: "o".into(),
            ver: "1.0".into(),
            sim_typ: "access".into(),
            uti: "u".into(),
        };
        let t = issue(&c, &claims);
        let ok = validate_bearer(&c, Some(&format!("Bearer {t}")), Audience::Graph);
        assert!(ok.as_ref().is_ok_and(|c| c.has("calendars.read")));
        assert_eq!(
            validate_bearer(&c, Some(&format!("Bearer {t}")), Audience::Exchange).err(),
            Some(TokenError::WrongAudience)
        );
        assert_eq!(
            validate_bearer(&c, None, Audience::Graph).err(),
            Some(TokenError::Missing)
        );
        assert_eq!(
            validate_bearer(&c, Some(&format!("Bearer {t}x")), Audience::Graph).err(),
            Some(TokenError::BadSignature)
        );
        claims.exp = now - 1;
        let t = issue(&c, &claims);
        assert_eq!(
            validate_bearer(&c, Some(&format!("Bearer {t}")), Audience::Graph).err(),
            Some(TokenError::Expired)
        );
    }
}
