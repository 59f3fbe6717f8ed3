//! The OAuth keys both backends' profiles share, their offline check, and the way from a
//! profile to a [`TokenSource`].
//!
//! A backend's profile struct uses `deny_unknown_fields`, which does not combine with serde's
//! `flatten`. Two ways to embed these settings:
//! - [`split_table`] takes [`OAuthSettings::KEYS`] out of the profile table; the rest goes into
//!   the backend's own struct and the OAuth part into [`OAuthSettings::from_table`]; or
//! - the backend lists the same keys in its struct and fills an [`OAuthSettings`] from them
//!   (all fields are public; use `#[serde(default, with = "calpump_backend_common::expiry::toml_date")]`
//!   for `secret_expires`).
//!
//! ```toml
//! tenant = "contoso.onmicrosoft.com"
//! client_id = "11111111-2222-3333-4444-555555555555"
//! client_secret = { env = "CALPUMP_CLOUD_SECRET" }      # or certificate + private_key,
//! # certificate = "/etc/calpump/app.pem"                # or username + password (ROPC)
//! # private_key = { file = "/etc/calpump/app.key" }
//! secret_expires = 2027-03-19
//! # authority = "https://login.microsoftonline.us"      # national clouds, the simulator
//! # scope = "https://graph.microsoft.com/.default"      # override the backend's default
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use calpump_engine::config::{ConfigIssue, deserialize_value};
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::secret::{SecretRef, SecretResolver};
use calpump_engine::source::SourceError;
use chrono::{NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::expiry::{ExpiryStatus, check_date, check_instant};
use crate::http::{EndpointPolicy, HttpClient};
use crate::oauth::cert::{CertificateCredential, ClientCertificate, PrivateKey};
use crate::oauth::{Credential, DEFAULT_AUTHORITY, Grant, TokenConfig, TokenSource};

/// The OAuth2 (Entra ID) settings of a profile.
///
/// Exactly one credential: `client_secret` (client credentials with a secret),
/// `certificate` + `private_key` (client credentials with a certificate), or `username` +
/// `password` (the password grant, optionally with `client_secret` for a confidential app).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = required_keys)]
pub struct OAuthSettings {
    /// Tenant id or primary domain (`contoso.onmicrosoft.com`).
    #[serde(default)]
    #[schemars(extend("examples" = ["contoso.onmicrosoft.com"]))]
    pub tenant: String,
    /// The app registration's "Application (client) ID".
    #[serde(default)]
    #[schemars(extend("examples" = ["11111111-2222-3333-4444-555555555555"]))]
    pub client_id: String,
    /// Client credentials with a secret (or, with `username`, a confidential app's secret).
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// Client credentials with a certificate: the PEM certificate file (its public part is
    /// uploaded to the app registration; its notAfter is warned 30 days ahead) …
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// … and its PEM private key (a secret).
    #[serde(default)]
    pub private_key: Option<SecretRef>,
    /// The password grant (ROPC): the service account's UPN …
    #[serde(default)]
    pub username: Option<String>,
    /// … and its password.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Sign-in host: a national cloud's (`https://login.microsoftonline.us`) or the simulator's.
    #[serde(default)]
    #[schemars(extend("default" = crate::oauth::DEFAULT_AUTHORITY))]
    pub authority: Option<String>,
    /// Overrides the backend's scope (Graph: `https://graph.microsoft.com/.default`, EWS:
    /// `https://outlook.office365.com/.default`); for national clouds.
    #[serde(default)]
    pub scope: Option<String>,
    /// When the client secret expires, as shown in the portal next to the secret (`calpump
    /// check`, `profile test` and the daemon warn 30 days ahead).
    #[serde(default, with = "crate::expiry::toml_date")]
    #[schemars(with = "Option<crate::expiry::TomlDate>")]
    pub secret_expires: Option<NaiveDate>,
}

/// `tenant` and `client_id` deserialise with an empty default (so `check` can name every
/// missing key at once) but a profile without them is an error: the schema says so.
fn required_keys(schema: &mut schemars::Schema) {
    for key in ["tenant", "client_id"] {
        if let Some(prop) = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(key))
            .and_then(|p| p.as_object_mut())
        {
            prop.remove("default");
        }
    }
    let required = schema
        .ensure_object()
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = required.as_array_mut() {
        for key in ["tenant", "client_id"] {
            list.push(key.into());
        }
    }
}

/// The all-zero GUID (`00000000-0000-0000-0000-000000000000`, with or without braces): what
/// `calpump init`'s starter profile holds until the admin pastes the real ID. Entra ID would
/// only answer it with "application not found" — after DNS, TLS and a token request.
fn is_placeholder_guid(value: &str) -> bool {
    let v = value.trim();
    let v = v
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(v);
    v == "00000000-0000-0000-0000-000000000000"
}

/// Splits a profile table: the entries whose keys are in `keys`, and the rest.
pub fn split_table(table: &toml::Table, keys: &[&str]) -> (toml::Table, toml::Table) {
    let mut taken = toml::Table::new();
    let mut rest = toml::Table::new();
    for (key, value) in table {
        if keys.contains(&key.as_str()) {
            taken.insert(key.clone(), value.clone());
        } else {
            rest.insert(key.clone(), value.clone());
        }
    }
    (taken, rest)
}

impl OAuthSettings {
    /// The profile keys of these settings.
    pub const KEYS: &'static [&'static str] = &[
        "tenant",
        "client_id",
        "client_secret",
        "certificate",
        "private_key",
        "username",
        "password",
        "authority",
        "scope",
        "secret_expires",
    ];

    /// Reads the settings from a table holding only [`Self::KEYS`] (see [`split_table`]).
    /// The issue's path is relative to the table.
    pub fn from_table(table: &toml::Table) -> Result<Self, ConfigIssue> {
        deserialize_value(&toml::Value::Table(table.clone()))
            .map_err(|(path, message)| ConfigIssue::error(path, message))
    }

    /// The sign-in host in use.
    pub fn authority(&self) -> &str {
        self.authority
            .as_deref()
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty())
            .unwrap_or(DEFAULT_AUTHORITY)
    }

    /// The grant these settings select, or the issues that make it ambiguous or incomplete.
    pub fn grant(&self) -> Result<Grant, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let cert = self.certificate.is_some() || self.private_key.is_some();
        let password = self.username.is_some() || self.password.is_some();
        if self.client_secret.is_some() && cert {
            issues.push(ConfigIssue::error(
                "certificate",
                "give either `client_secret` or `certificate` + `private_key`, not both",
            ));
        }
        if password && cert {
            issues.push(ConfigIssue::error(
                "username",
                "the password grant takes `username` + `password` (and optionally `client_secret`), not a certificate",
            ));
        }
        if cert {
            if self.certificate.is_none() {
                issues.push(ConfigIssue::error(
                    "certificate",
                    "`private_key` needs `certificate` (the PEM file of the certificate uploaded to the app registration)",
                ));
            }
            if self.private_key.is_none() {
                issues.push(ConfigIssue::error(
                    "private_key",
                    "`certificate` needs `private_key` (the certificate's PEM private key, e.g. { file = \"app.key\" })",
                ));
            }
        }
        if password {
            if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                issues.push(ConfigIssue::error(
                    "username",
                    "`password` needs `username` (the service account's UPN)",
                ));
            }
            if self.password.is_none() {
                issues.push(ConfigIssue::error(
                    "password",
                    "`username` needs `password` (e.g. { env = \"PUMP_PW\" })",
                ));
            }
        }
        if !cert && !password && self.client_secret.is_none() {
            issues.push(ConfigIssue::error(
                "client_secret",
                "no credential: give `client_secret`, or `certificate` + `private_key`, or `username` + `password`",
            ));
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(if password {
            Grant::Password
        } else if cert {
            Grant::Certificate
        } else {
            Grant::ClientSecret
        })
    }

    /// Validates without the network: required keys, one credential, secrets resolvable
    /// (errors name the reference, never a value), the certificate readable and matching its
    /// key, the authority allowed by `policy`, plain-text secrets warned, expiry warned.
    pub fn check(&self, secrets: &SecretResolver, policy: &EndpointPolicy) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.tenant.trim().is_empty() {
            issues.push(ConfigIssue::error(
                "tenant",
                "missing: the tenant id or primary domain (contoso.onmicrosoft.com)",
            ));
        } else if is_placeholder_guid(&self.tenant) {
            issues.push(ConfigIssue::error(
                "tenant",
                "the placeholder from `calpump init`: give your tenant's primary domain (contoso.onmicrosoft.com) or its Directory (tenant) ID",
            ));
        } else if self.tenant.contains('/') || self.tenant.contains(char::is_whitespace) {
            issues.push(ConfigIssue::error(
                "tenant",
                "a tenant id or domain has no slashes or spaces",
            ));
        }
        if self.client_id.trim().is_empty() {
            issues.push(ConfigIssue::error(
                "client_id",
                "missing: the app registration's Application (client) ID",
            ));
        } else if is_placeholder_guid(&self.client_id) {
            issues.push(ConfigIssue::error(
                "client_id",
                "the placeholder from `calpump init`: paste the Application (client) ID of your app registration",
            ));
        }
        if let Some(authority) = &self.authority {
            policy.check_into("authority", authority, &mut issues);
        }
        if let Some(scope) = &self.scope
            && scope.trim().is_empty()
        {
            issues.push(ConfigIssue::error(
                "scope",
                "empty: remove it to use the backend's default",
            ));
        }
        if let Err(grant_issues) = self.grant() {
            issues.extend(grant_issues);
        }
        for (key, reference) in [
            ("client_secret", &self.client_secret),
            ("private_key", &self.private_key),
            ("password", &self.password),
        ] {
            let Some(reference) = reference else { continue };
            if matches!(reference, SecretRef::Plain(_)) {
                issues.push(ConfigIssue::warning(
                    key,
                    "a secret written into the config file: prefer { env = \"…\" }, { file = \"…\" } or `calpump secret encrypt`",
                ));
            }
            if let Err(e) = secrets.resolve(reference) {
                issues.push(ConfigIssue::error(
                    key,
                    format!("cannot read the secret: {e}"),
                ));
            }
        }
        if let (Some(path), Some(key_ref)) = (&self.certificate, &self.private_key) {
            match ClientCertificate::load(path) {
                Err(e) => issues.push(ConfigIssue::error("certificate", e.to_string())),
                Ok(cert) => {
                    if let Ok(key_pem) = secrets.resolve(key_ref) {
                        let usable = PrivateKey::from_pem(&key_pem)
                            .and_then(|key| CertificateCredential::new(cert, key));
                        if let Err(e) = usable {
                            issues.push(ConfigIssue::error("private_key", e.to_string()));
                        }
                    }
                }
            }
        }
        for status in self.expiry() {
            let path = if self.certificate.is_some() && status.what.starts_with("certificate") {
                "certificate"
            } else {
                "secret_expires"
            };
            issues.extend(status.config_issue(path));
        }
        issues
    }

    /// The expiry of the client secret (`secret_expires`) and of the certificate (its
    /// notAfter), as of now. An unreadable certificate is left to [`check`](Self::check).
    pub fn expiry(&self) -> Vec<ExpiryStatus> {
        let now = Utc::now();
        let mut out = Vec::new();
        if let Some(date) = self.secret_expires {
            out.push(check_date(
                "the client secret (secret_expires)",
                date,
                now.date_naive(),
            ));
        }
        if let Some(path) = &self.certificate
            && let Ok(cert) = ClientCertificate::load(path)
        {
            out.push(check_instant(&cert.describe(), cert.not_after(), now));
        }
        out
    }

    /// Resolves the secrets and builds the credential.
    pub fn credential(&self, secrets: &SecretResolver) -> Result<Credential, SourceError> {
        let grant = self.grant().map_err(|issues| {
            let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
            SourceError::new(Diagnostic::new(&general::INTERNAL, text.join("; "))).retryable(false)
        })?;
        let resolve = |key: &str, reference: &Option<SecretRef>| {
            let reference = reference.as_ref().ok_or_else(|| {
                SourceError::new(Diagnostic::new(
                    &general::SECRET_MISSING,
                    format!("`{key}` is not set"),
                ))
            })?;
            secrets.resolve(reference).map_err(|e| {
                SourceError::new(Diagnostic::new(
                    &general::SECRET_MISSING,
                    format!("`{key}`: {e}"),
                ))
            })
        };
        Ok(match grant {
            Grant::ClientSecret => {
                Credential::ClientSecret(resolve("client_secret", &self.client_secret)?)
            }
            Grant::Password => Credential::Password {
                username: self.username.clone().unwrap_or_default(),
                password: resolve("password", &self.password)?,
                client_secret: match &self.client_secret {
                    Some(_) => Some(resolve("client_secret", &self.client_secret)?),
                    None => None,
                },
            },
            Grant::Certificate => {
                let unusable = |e: crate::oauth::cert::CertificateError| {
                    SourceError::new(Diagnostic::new(
                        &general::CERTIFICATE_UNUSABLE,
                        e.to_string(),
                    ))
                };
                let path = self.certificate.clone().unwrap_or_default();
                let cert = ClientCertificate::load(&path).map_err(unusable)?;
                let key = PrivateKey::from_pem(&resolve("private_key", &self.private_key)?)
                    .map_err(unusable)?;
                Credential::Certificate(Arc::new(
                    CertificateCredential::new(cert, key).map_err(unusable)?,
                ))
            }
        })
    }

    /// The token configuration: `default_scope` unless `scope` overrides it.
    pub fn token_config(
        &self,
        secrets: &SecretResolver,
        default_scope: &str,
    ) -> Result<TokenConfig, SourceError> {
        Ok(TokenConfig {
            authority: self.authority().to_string(),
            tenant: self.tenant.trim().to_string(),
            client_id: self.client_id.trim().to_string(),
            scope: self
                .scope
                .clone()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| default_scope.to_string()),
            credential: self.credential(secrets)?,
        })
    }

    /// The token source of a profile: the backend passes its HTTP client and its scope
    /// ([`crate::oauth::scopes::GRAPH`], [`crate::oauth::scopes::EWS`]).
    pub fn token_source(
        &self,
        http: &HttpClient,
        secrets: &SecretResolver,
        default_scope: &str,
    ) -> Result<TokenSource, SourceError> {
        if let Some(authority) = &self.authority {
            let url = http
                .policy()
                .check("authority", authority)
                .map_err(|issue| {
                    SourceError::new(Diagnostic::new(&general::INSECURE_URL, issue.message))
                })?;
            http.policy().ensure(&url)?;
        }
        Ok(TokenSource::new(
            http.clone(),
            self.token_config(secrets, default_scope)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calpump_engine::secret::Secret;

    fn settings(tenant: &str, client_id: &str) -> OAuthSettings {
        OAuthSettings {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret: Some(SecretRef::Plain(Secret::new("value".to_string()))),
            authority: Some("http://127.0.0.1:9".into()),
            ..OAuthSettings::default()
        }
    }

    fn errors(settings: &OAuthSettings) -> Vec<String> {
        let resolver = SecretResolver::new(PathBuf::from("/nonexistent/calpump.key"));
        settings
            .check(&resolver, &EndpointPolicy::default())
            .iter()
            .filter(|i| i.is_error())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_all_zero_guid_of_calpump_init_is_named_as_the_placeholder() {
        const ZERO: &str = "00000000-0000-0000-0000-000000000000";
        let errs = errors(&settings("contoso.onmicrosoft.com", ZERO));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("`client_id`:"), "{errs:?}");
        assert!(
            errs[0].contains(
                "the placeholder from `calpump init`: paste the Application (client) ID of your app registration"
            ),
            "{errs:?}"
        );
        let errs = errors(&settings(&format!(" {{{ZERO}}} "), ZERO));
        assert!(
            errs.iter()
                .any(|e| e.contains("`tenant`:")
                    && e.contains("the placeholder from `calpump init`")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("`client_id`:")), "{errs:?}");
        // A real id, and one that only starts with zeros, pass.
        assert!(
            errors(&settings(
                "contoso.onmicrosoft.com",
                "0a1b2c3d-1111-4a5b-8c6d-000000000001"
            ))
            .is_empty()
        );
        assert!(
            errors(&settings(
                "00000000-0000-0000-0000-000000000001",
                "00000000-0000-0000-0000-000000000002"
            ))
            .is_empty()
        );
    }
}
