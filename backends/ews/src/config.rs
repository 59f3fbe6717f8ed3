//! The profile of an EWS connection (`[profiles.<name>]` with `backend = "ews"`), its offline
//! check, and the resolved settings the source is built from.
//!
//! ```toml
//! [profiles.onprem]
//! backend = "ews"
//! autodiscover = "svc-pump@contoso.com"      # or url = "https://mail.contoso.com/EWS/Exchange.asmx"
//! auth = { kind = "ntlm", username = "CONTOSO\\svc-pump", password = { env = "PUMP_PW" } }
//! impersonation = true
//!
//! [profiles.online]
//! backend = "ews"                            # url defaults to Exchange Online's EWS
//! auth = { kind = "oauth", tenant = "contoso.onmicrosoft.com", client_id = "…", client_secret = { env = "EWS_SECRET" } }
//! probe_mailbox = "room-1.01@contoso.com"
//! ```

use std::time::Duration;

use calpump_backend_common::http::{EndpointPolicy, HttpSettings};
use calpump_backend_common::oauth::Grant;
use calpump_backend_common::settings::{OAuthSettings, split_table};
use calpump_engine::config::{ConfigIssue, deserialize_value};
use calpump_engine::secret::{SecretRef, SecretResolver};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::soap::{DEFAULT_SERVER_VERSION, SERVER_VERSIONS};

/// Exchange Online's EWS endpoint, the default for `auth.kind = "oauth"` without `url` or
/// `autodiscover`.
pub const EXCHANGE_ONLINE_URL: &str = "https://outlook.office365.com/EWS/Exchange.asmx";

/// Default number of EWS requests in flight per server (Exchange's default EwsMaxConcurrency
/// is 27 on-premises and lower in Exchange Online).
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

/// Default age of the last full read after which a calendar is read in full even without
/// changes (catches occurrences sliding into the window).
pub const DEFAULT_REREAD_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The profile table minus the HTTP keys ([`HttpSettings::KEYS`]) and `auth`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProfileKeys {
    /// The EWS endpoint, `https://<mail server>/EWS/Exchange.asmx`. Give `url` or
    /// `autodiscover`, not both; with `auth.kind = "oauth"` and neither, Exchange Online's
    /// `https://outlook.office365.com/EWS/Exchange.asmx` is used.
    #[serde(default)]
    #[schemars(extend("examples" = ["https://mail.contoso.com/EWS/Exchange.asmx"]))]
    url: Option<String>,
    /// An e-mail address to find the EWS URL for by Autodiscover (usually the service
    /// account's).
    #[serde(default)]
    #[schemars(extend("examples" = ["svc-pump@contoso.com"]))]
    autodiscover: Option<String>,
    /// The Autodiscover endpoint to ask first (`https://autodiscover.contoso.com/autodiscover/autodiscover.xml`),
    /// when the domain's DNS does not lead to it; needs `autodiscover`.
    #[serde(default)]
    autodiscover_url: Option<String>,
    /// Read each mailbox as itself (`ExchangeImpersonation`, the role ApplicationImpersonation
    /// on-premises) instead of through delegate access. Default: `true` for app-only OAuth
    /// tokens (which can read mailboxes no other way), `false` otherwise.
    #[serde(default)]
    impersonation: Option<bool>,
    /// The `RequestServerVersion` sent (`Exchange2013_SP1`, `Exchange2016`, `Exchange2019`, …);
    /// Exchange 2007 and 2010 lack properties calpump reads.
    #[serde(default)]
    #[schemars(extend("default" = crate::soap::DEFAULT_SERVER_VERSION))]
    server_version: Option<String>,
    /// EWS requests in flight per server (1–64); Exchange's own EwsMaxConcurrency is 27
    /// on-premises by default and lower in Exchange Online.
    #[serde(default)]
    #[schemars(extend("default" = DEFAULT_MAX_CONCURRENCY), range(min = 1, max = 64))]
    max_concurrency: Option<usize>,
    /// The mailbox `calpump profile test` reads to prove mailbox access; with an app-only
    /// token also the mailbox room lists and name lookups impersonate (Exchange Online needs
    /// one for them). Without it they act as the first mailbox read, so a route with
    /// `room_lists` and no `mailboxes` fails.
    #[serde(default)]
    #[schemars(extend("examples" = ["room-1.01@contoso.com"]))]
    probe_mailbox: Option<String>,
    /// When the profile's secret (password or client secret) expires; warned 30 days ahead.
    /// With `auth.kind = "oauth"` it may also sit inside `auth` (not both).
    #[serde(default, with = "calpump_backend_common::expiry::toml_date")]
    #[schemars(with = "Option<calpump_backend_common::expiry::TomlDate>")]
    secret_expires: Option<NaiveDate>,
    /// A calendar is read in full (not just its changes) when its last full read is older
    /// than this, so occurrences sliding into the window are caught. At least `1m`; default
    /// 6 hours.
    #[serde(default, with = "opt_duration")]
    #[schemars(with = "Option<calpump_engine::config::schema::HumanDuration>")]
    #[schemars(extend("default" = "6h"))]
    reread_interval: Option<Duration>,
    /// How calpump signs in: `{ kind = "basic" | "ntlm", username, password }` or
    /// `{ kind = "oauth", tenant, client_id, … }` with the OAuth keys.
    #[serde(default)]
    #[schemars(with = "AuthSchema")]
    auth: Option<toml::Value>,
}

/// `auth` as the configuration reference shows it (read by hand in [`read_auth`]).
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[allow(dead_code)]
enum AuthSchema {
    /// Basic authentication (on-premises; Exchange Online refuses it): use only over TLS.
    Basic {
        /// The service account: `DOMAIN\\user` or its UPN.
        username: String,
        /// Its password.
        password: SecretRef,
    },
    /// NTLM (on-premises Exchange, Windows authentication on the EWS virtual directory).
    Ntlm {
        /// The service account: `DOMAIN\\user` or its UPN.
        username: String,
        /// Its password.
        password: SecretRef,
    },
    /// OAuth2 against Entra ID (Exchange Online): the OAuth keys shared with Graph profiles;
    /// the scope defaults to `https://outlook.office365.com/.default`.
    Oauth(OAuthSettings),
}

/// The JSON Schema of an EWS profile table (without `backend`), for the configuration
/// reference.
pub fn profile_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Profile {
        #[serde(flatten)]
        keys: ProfileKeys,
        #[serde(flatten)]
        http: HttpSettings,
    }
    generator.root_schema_for::<Profile>()
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        let wrapped = serde::de::value::StringDeserializer::<D::Error>::new(text);
        calpump_engine::config::duration::deserialize(wrapped).map(Some)
    }

    /// For the schema's default (`None` is absent).
    pub fn serialize<S: serde::Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => calpump_engine::config::duration::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// `auth = { kind = "basic" | "ntlm", username, password }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordKeys {
    username: String,
    password: SecretRef,
}

/// How calpump signs in.
#[derive(Debug, Clone)]
pub enum AuthSettings {
    Basic {
        username: String,
        password: SecretRef,
    },
    Ntlm {
        username: String,
        password: SecretRef,
    },
    OAuth(Box<OAuthSettings>),
}

impl AuthSettings {
    pub fn kind(&self) -> &'static str {
        match self {
            AuthSettings::Basic { .. } => "basic",
            AuthSettings::Ntlm { .. } => "ntlm",
            AuthSettings::OAuth(_) => "oauth",
        }
    }

    /// Whether the token is app-only (client credentials): EWS then requires impersonation.
    pub fn app_only(&self) -> bool {
        match self {
            AuthSettings::OAuth(o) => !matches!(o.grant(), Ok(Grant::Password)),
            _ => false,
        }
    }
}

/// Where the EWS URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `url` (or Exchange Online's default).
    Static(String),
    /// Autodiscover for this e-mail address; `explicit` is `autodiscover_url` when given.
    Autodiscover {
        address: String,
        explicit: Option<String>,
    },
}

/// The validated profile.
#[derive(Debug, Clone)]
pub struct EwsSettings {
    pub name: String,
    pub endpoint: Endpoint,
    pub auth: AuthSettings,
    pub impersonation: bool,
    pub server_version: String,
    pub max_concurrency: usize,
    pub probe_mailbox: Option<String>,
    pub secret_expires: Option<NaiveDate>,
    pub reread_interval: Duration,
    pub http: HttpSettings,
}

fn is_address(text: &str) -> bool {
    calpump_plugin::normalize_mailbox(text).is_ok()
}

/// Reads and validates a profile table. Returns the settings when usable, and every issue
/// (errors and warnings) with paths relative to the table.
pub fn read(
    name: &str,
    table: &toml::Table,
    secrets: Option<&SecretResolver>,
) -> (Option<EwsSettings>, Vec<ConfigIssue>) {
    let mut issues = Vec::new();
    let (http_table, rest) = split_table(table, HttpSettings::KEYS);
    let http: Option<HttpSettings> = match deserialize_value(&toml::Value::Table(http_table)) {
        Ok(h) => Some(h),
        Err((path, message)) => {
            issues.push(ConfigIssue::error(path, message));
            None
        }
    };
    if let Some(http) = &http {
        issues.extend(http.check());
    }
    let keys: ProfileKeys = match deserialize_value(&toml::Value::Table(rest)) {
        Ok(k) => k,
        Err((path, message)) => {
            issues.push(ConfigIssue::error(path, message));
            return (None, issues);
        }
    };
    let policy = http.as_ref().map(HttpSettings::policy).unwrap_or_default();

    // auth
    let auth = match &keys.auth {
        None => {
            issues.push(ConfigIssue::error(
                "auth",
                "missing: auth = { kind = \"ntlm\", username = \"DOMAIN\\\\user\", password = { env = \"VAR\" } } (or kind = \"basic\" / \"oauth\")",
            ));
            None
        }
        Some(value) => read_auth(value, secrets, &policy, &mut issues),
    };

    // endpoint
    let endpoint = match (&keys.url, &keys.autodiscover) {
        (Some(_), Some(_)) => {
            issues.push(ConfigIssue::error(
                "autodiscover",
                "give either `url` or `autodiscover`, not both",
            ));
            None
        }
        (Some(url), None) => policy
            .check_into("url", url, &mut issues)
            .map(|u| Endpoint::Static(u.to_string())),
        (None, Some(address)) => {
            if !is_address(address) {
                issues.push(ConfigIssue::error(
                    "autodiscover",
                    format!("`{address}` is not an e-mail address (Autodiscover starts from one)"),
                ));
                None
            } else {
                let explicit = keys
                    .autodiscover_url
                    .as_ref()
                    .and_then(|u| policy.check_into("autodiscover_url", u, &mut issues))
                    .map(|u| u.to_string());
                Some(Endpoint::Autodiscover {
                    address: address.trim().to_string(),
                    explicit,
                })
            }
        }
        (None, None) => match &auth {
            Some(AuthSettings::OAuth(_)) => Some(Endpoint::Static(EXCHANGE_ONLINE_URL.to_string())),
            _ => {
                issues.push(ConfigIssue::error(
                    "url",
                    "missing: give `url = \"https://<mail server>/EWS/Exchange.asmx\"` or `autodiscover = \"<service account address>\"`",
                ));
                None
            }
        },
    };
    if keys.autodiscover_url.is_some() && keys.autodiscover.is_none() {
        issues.push(ConfigIssue::error(
            "autodiscover_url",
            "`autodiscover_url` needs `autodiscover` (the address to discover)",
        ));
    }

    let server_version = keys
        .server_version
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVER_VERSION.to_string());
    if !SERVER_VERSIONS.contains(&server_version.as_str()) {
        issues.push(ConfigIssue::error(
            "server_version",
            format!(
                "`{server_version}` is not an EWS version; use one of {}",
                SERVER_VERSIONS.join(", ")
            ),
        ));
    } else if server_version.starts_with("Exchange2007")
        || server_version.starts_with("Exchange2010")
    {
        issues.push(ConfigIssue::error(
            "server_version",
            format!("`{server_version}` lacks properties calpump reads (online meeting URL); use Exchange2013_SP1 or later"),
        ));
    }

    let max_concurrency = keys.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 || max_concurrency > 64 {
        issues.push(ConfigIssue::error(
            "max_concurrency",
            "must be between 1 and 64 (Exchange's EwsMaxConcurrency is 27 by default)",
        ));
    }
    if let Some(probe) = &keys.probe_mailbox
        && !is_address(probe)
    {
        issues.push(ConfigIssue::error(
            "probe_mailbox",
            format!("`{probe}` is not an e-mail address"),
        ));
    }
    let reread_interval = keys.reread_interval.unwrap_or(DEFAULT_REREAD_INTERVAL);
    if reread_interval < Duration::from_secs(60) {
        issues.push(ConfigIssue::error("reread_interval", "must be at least 1m"));
    }

    let app_only = auth.as_ref().is_some_and(AuthSettings::app_only);
    let impersonation = keys.impersonation.unwrap_or(app_only);
    if app_only && !impersonation {
        issues.push(ConfigIssue::error(
            "impersonation",
            "an app-only token (client credentials) can only read mailboxes through impersonation: set `impersonation = true` (or use the password grant for delegate access)",
        ));
    }
    if app_only && keys.probe_mailbox.is_none() {
        issues.push(ConfigIssue::warning(
            "probe_mailbox",
            "with an app-only token, Exchange answers room lists (GetRoomLists, GetRooms) only while impersonating a mailbox: without `probe_mailbox` calpump acts as the first mailbox a route names, so a route with `room_lists` and no `mailboxes` fails (ews.AppOnlyNeedsMailbox) — set `probe_mailbox` to a mailbox the app may read",
        ));
    }

    // secret_expires: top level, or inside auth for OAuth (not both)
    let mut secret_expires = keys.secret_expires;
    if let Some(AuthSettings::OAuth(o)) = &auth {
        match (keys.secret_expires, o.secret_expires) {
            (Some(_), Some(_)) => issues.push(ConfigIssue::error(
                "secret_expires",
                "given twice: keep it either here or inside `auth`",
            )),
            (None, Some(d)) => secret_expires = Some(d),
            _ => {}
        }
    }
    if let Some(date) = secret_expires {
        let status = calpump_backend_common::expiry::check_date(
            "the profile's secret (secret_expires)",
            date,
            chrono::Utc::now().date_naive(),
        );
        issues.extend(status.config_issue("secret_expires"));
    }

    let settings = match (auth, endpoint, http) {
        (Some(auth), Some(endpoint), Some(http)) if !issues.iter().any(ConfigIssue::is_error) => {
            Some(EwsSettings {
                name: name.to_string(),
                endpoint,
                auth,
                impersonation,
                server_version,
                max_concurrency: max_concurrency.clamp(1, 64),
                probe_mailbox: keys.probe_mailbox.map(|p| p.trim().to_lowercase()),
                secret_expires,
                reread_interval,
                http,
            })
        }
        _ => None,
    };
    (settings, issues)
}

fn read_auth(
    value: &toml::Value,
    secrets: Option<&SecretResolver>,
    policy: &EndpointPolicy,
    issues: &mut Vec<ConfigIssue>,
) -> Option<AuthSettings> {
    let toml::Value::Table(table) = value else {
        issues.push(ConfigIssue::error(
            "auth",
            "must be a table: { kind = \"ntlm\", … }",
        ));
        return None;
    };
    let mut rest = table.clone();
    let kind = match rest.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => {
            issues.push(ConfigIssue::error("auth.kind", "must be a string"));
            return None;
        }
        None => {
            issues.push(ConfigIssue::error(
                "auth.kind",
                "missing: \"basic\", \"ntlm\" or \"oauth\"",
            ));
            return None;
        }
    };
    let under = |issue: ConfigIssue| issue.under("auth");
    match kind.as_str() {
        "basic" | "ntlm" => {
            let keys: PasswordKeys = match deserialize_value(&toml::Value::Table(rest)) {
                Ok(k) => k,
                Err((path, message)) => {
                    issues.push(under(ConfigIssue::error(path, message)));
                    return None;
                }
            };
            if keys.username.trim().is_empty() {
                issues.push(ConfigIssue::error("auth.username", "empty"));
            }
            if matches!(keys.password, SecretRef::Plain(_)) {
                issues.push(ConfigIssue::warning(
                    "auth.password",
                    "a password written into the config file: prefer { env = \"…\" }, { file = \"…\" } or `calpump secret encrypt`",
                ));
            }
            if let Some(secrets) = secrets
                && let Err(e) = secrets.resolve(&keys.password)
            {
                issues.push(ConfigIssue::error(
                    "auth.password",
                    format!("cannot read the secret: {e}"),
                ));
            }
            Some(if kind == "basic" {
                AuthSettings::Basic {
                    username: keys.username.trim().to_string(),
                    password: keys.password,
                }
            } else {
                AuthSettings::Ntlm {
                    username: keys.username.trim().to_string(),
                    password: keys.password,
                }
            })
        }
        "oauth" => {
            let (oauth_table, extra) = split_table(&rest, OAuthSettings::KEYS);
            for key in extra.keys() {
                issues.push(ConfigIssue::error(
                    format!("auth.{key}"),
                    format!(
                        "unknown key for kind = \"oauth\"; expected one of {}",
                        OAuthSettings::KEYS.join(", ")
                    ),
                ));
            }
            match OAuthSettings::from_table(&oauth_table) {
                Ok(settings) => {
                    if let Some(secrets) = secrets {
                        issues.extend(settings.check(secrets, policy).into_iter().map(under));
                    } else if let Err(grant_issues) = settings.grant() {
                        issues.extend(grant_issues.into_iter().map(under));
                    }
                    Some(AuthSettings::OAuth(Box::new(settings)))
                }
                Err(issue) => {
                    issues.push(under(issue));
                    None
                }
            }
        }
        other => {
            issues.push(ConfigIssue::error(
                "auth.kind",
                format!("`{other}`: use \"basic\", \"ntlm\" or \"oauth\""),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).expect("toml")
    }

    fn errors(issues: &[ConfigIssue]) -> Vec<String> {
        issues
            .iter()
            .filter(|i| i.is_error())
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect()
    }

    #[test]
    fn the_schema_lists_the_keys_read_accepts() {
        let mut generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        let schema = profile_schema(&mut generator);
        let props = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .expect("properties");
        for (key, prop) in props {
            assert!(prop.get("description").is_some(), "`{key}` undocumented");
        }
        // Every listed key is accepted (no "unknown key" issue) ...
        let mut text =
            String::from("auth = { kind = \"ntlm\", username = \"u\", password = \"p\" }\n");
        for key in props.keys().filter(|k| *k != "auth") {
            let value = match key.as_str() {
                "impersonation" | "allow_insecure" => "true",
                "max_concurrency" => "4",
                "secret_expires" => "2099-01-01",
                "reread_interval" | "timeout" | "connect_timeout" => "\"5m\"",
                _ => "\"x\"",
            };
            text.push_str(&format!("{key} = {value}\n"));
        }
        let (_, issues) = read("x", &table(&text), None);
        assert!(
            !issues.iter().any(|i| i.message.contains("unknown")),
            "{issues:?}"
        );
        // ... and an unlisted one is not.
        let (_, issues) = read("x", &table("colour = 1"), None);
        assert!(issues.iter().any(|i| i.path == "colour"), "{issues:?}");
    }

    #[test]
    fn ntlm_with_autodiscover() {
        let (s, issues) = read(
            "onprem",
            &table(
                r#"autodiscover = "svc-pump@contoso.com"
                   auth = { kind = "ntlm", username = 'CONTOSO\svc-pump', password = { env = "PUMP_PW_TEST_UNSET" } }
                   impersonation = true"#,
            ),
            None,
        );
        assert!(errors(&issues).is_empty(), "{issues:?}");
        let s = s.expect("settings");
        assert!(matches!(s.endpoint, Endpoint::Autodiscover { .. }));
        assert!(s.impersonation);
        assert_eq!(s.server_version, "Exchange2013_SP1");
    }

    #[test]
    fn oauth_defaults_to_exchange_online_with_impersonation() {
        let (s, issues) = read(
            "online",
            &table(
                r#"auth = { kind = "oauth", tenant = "contoso.onmicrosoft.com", client_id = "abc", client_secret = "x" }
                   probe_mailbox = "room@contoso.com""#,
            ),
            None,
        );
        assert!(errors(&issues).is_empty(), "{issues:?}");
        let s = s.expect("settings");
        assert_eq!(
            s.endpoint,
            Endpoint::Static(EXCHANGE_ONLINE_URL.to_string())
        );
        assert!(s.impersonation, "app-only tokens impersonate by default");
    }

    #[test]
    fn mistakes_are_reported_with_paths() {
        let (_, issues) = read(
            "bad",
            &table(
                r#"url = "http://mail.contoso.com/EWS/Exchange.asmx"
                   auth = { kind = "oauth", tenant = "t", client_id = "c", client_secret = "x", colour = 1 }
                   impersonation = false
                   server_version = "Exchange2099"
                   max_concurrency = 0
                   unknown_key = 1"#,
            ),
            None,
        );
        let errs = errors(&issues).join("\n");
        assert!(errs.contains("unknown_key"), "{errs}");
        let (_, issues) = read(
            "bad",
            &table(
                r#"url = "http://mail.contoso.com/EWS/Exchange.asmx"
                   auth = { kind = "oauth", tenant = "t", client_id = "c", client_secret = "x", colour = 1 }
                   impersonation = false
                   server_version = "Exchange2099"
                   max_concurrency = 0"#,
            ),
            None,
        );
        let errs = errors(&issues).join("\n");
        for needle in [
            "url:",
            "auth.colour",
            "impersonation",
            "server_version",
            "max_concurrency",
        ] {
            assert!(errs.contains(needle), "{needle} missing in\n{errs}");
        }
        let (_, issues) = read("x", &table(r#"url = "https://m/EWS/Exchange.asmx""#), None);
        assert!(errors(&issues).join("\n").contains("auth"));
    }
}
