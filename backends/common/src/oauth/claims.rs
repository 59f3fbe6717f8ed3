//! What an access token says about itself, read without verifying it (calpump only shows it:
//! the resource server is the one that verifies). Microsoft identity platform, "access token
//! claims reference": `roles` (application permissions), `scp` (delegated, space-separated),
//! `aud`, `tid`, `appid`/`azp`, `upn`/`unique_name`, `exp`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;

/// The claims of a JWT access token that `profile test` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenClaims {
    /// Application permissions (`Calendars.Read`, `full_access_as_app`).
    pub roles: Vec<String>,
    /// Delegated permissions (`EWS.AccessAsUser.All`).
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub tenant_id: Option<String>,
    pub app_id: Option<String>,
    /// The signed-in user of a delegated token.
    pub user: Option<String>,
    /// Expiry, seconds since the epoch.
    pub expires: Option<i64>,
}

impl TokenClaims {
    /// Decodes the payload of a compact JWT; `None` when the token is not a JWT (Entra may
    /// issue opaque or encrypted tokens for some resources).
    pub fn decode(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (_header, payload) = (parts.next()?, parts.next()?);
        parts.next()?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        let obj = value.as_object()?;
        let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
        let roles = match obj.get("roles") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let scopes = text("scp")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let audience = match obj.get("aud") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => items.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        Some(Self {
            roles,
            scopes,
            audience,
            tenant_id: text("tid"),
            app_id: text("appid").or_else(|| text("azp")),
            user: text("upn")
                .or_else(|| text("unique_name"))
                .or_else(|| text("preferred_username")),
            expires: obj.get("exp").and_then(Value::as_i64),
        })
    }

    /// Roles and scopes together.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().chain(&self.scopes).map(String::as_str)
    }

    /// Whether a permission is granted, case-insensitively; `X.ReadWrite…` grants `X.Read…`
    /// (`Calendars.ReadWrite` covers `Calendars.Read`).
    pub fn grants(&self, permission: &str) -> bool {
        let wanted = permission.to_ascii_lowercase();
        self.permissions().any(|have| {
            let have = have.to_ascii_lowercase();
            have == wanted || have.replacen(".readwrite", ".read", 1) == wanted
        })
    }

    /// The permissions of `required` the token does not grant.
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required
            .iter()
            .copied()
            .filter(|p| !self.grants(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn roles_and_scopes_are_read() {
        let t = jwt(
            r#"{"aud":"https://graph.microsoft.com","tid":"t1","appid":"a1","roles":["Calendars.ReadWrite","User.Read.All"],"exp":1700000000}"#,
        );
        let c = TokenClaims::decode(&t).expect("jwt");
        assert_eq!(c.audience.as_deref(), Some("https://graph.microsoft.com"));
        assert!(c.grants("Calendars.Read"));
        assert!(c.grants("calendars.readwrite"));
        assert_eq!(
            c.missing(&["Calendars.Read", "Place.Read.All"]),
            vec!["Place.Read.All"]
        );
        let d = TokenClaims::decode(&jwt(
            r#"{"scp":"EWS.AccessAsUser.All offline_access","upn":"svc@contoso.com"}"#,
        ))
        .expect("jwt");
        assert!(d.grants("EWS.AccessAsUser.All"));
        assert_eq!(d.user.as_deref(), Some("svc@contoso.com"));
        assert!(TokenClaims::decode("opaque-token").is_none());
    }
}
