//! The keys of a `backend = "graph"` profile and their offline check.
//!
//! ```toml
//! [profiles.cloud]
//! backend = "graph"
//! tenant = "contoso.onmicrosoft.com"
//! client_id = "11111111-2222-3333-4444-555555555555"
//! client_secret = { env = "CALPUMP_CLOUD_SECRET" }   # or certificate + private_key, or username + password
//! secret_expires = 2027-03-19
//! # authority = "https://login.microsoftonline.com"   # national clouds, the simulator
//! # graph_url = "https://graph.microsoft.com/v1.0"
//! # max_concurrency = 16                               # requests in flight for the whole tenant
//! # timeout = "60s"
//! # probe_mailbox = "room-1.01@contoso.com"            # what `calpump profile test` reads
//! ```
//!
//! The OAuth keys are [`OAuthSettings`]'s (`tenant`, `client_id`, `client_secret`, `certificate`,
//! `private_key`, `username`, `password`, `authority`, `scope`, `secret_expires`), the transport
//! keys [`HttpSettings`]'s (`timeout`, `connect_timeout`, `allow_insecure`, `ca_file`); the rest
//! are Graph's own ([`GraphSettings`]).

use calpump_backend_common::http::{EndpointPolicy, HttpSettings};
use calpump_backend_common::settings::{OAuthSettings, split_table};
use calpump_engine::config::{ConfigIssue, deserialize_value};
use calpump_engine::secret::SecretResolver;
use reqwest::Url;
use schemars::JsonSchema;
use serde::Deserialize;

/// The public cloud's Graph base.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Requests in flight for one profile (the whole tenant) unless `max_concurrency` says otherwise.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// Exchange Online's limit of concurrent requests per mailbox (`concepts/throttling-limits.md`,
/// "Outlook service limits").
pub const PER_MAILBOX_CONCURRENCY: usize = 4;

/// Graph's own keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// Graph base URL with its version (`https://graph.microsoft.com/v1.0`, a national cloud's,
    /// the simulator's `http://127.0.0.1:PORT/v1.0`).
    #[serde(default)]
    #[schemars(extend("default" = DEFAULT_GRAPH_URL))]
    pub graph_url: Option<String>,
    /// Requests in flight for the whole profile (the whole tenant); each mailbox gets at most
    /// four at once, Exchange Online's limit.
    #[serde(default)]
    #[schemars(extend("default" = DEFAULT_MAX_CONCURRENCY), range(min = 1))]
    pub max_concurrency: Option<usize>,
    /// The mailbox `calpump profile test` reads to prove mailbox access.
    #[serde(default)]
    #[schemars(extend("examples" = ["room-1.01@contoso.com"]))]
    pub probe_mailbox: Option<String>,
}

impl GraphSettings {
    pub const KEYS: &'static [&'static str] = &["graph_url", "max_concurrency", "probe_mailbox"];
}

/// A parsed Graph profile.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphProfile {
    pub oauth: OAuthSettings,
    pub http: HttpSettings,
    pub graph: GraphSettings,
}

impl GraphProfile {
    /// Every key a Graph profile accepts.
    pub fn keys() -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = OAuthSettings::KEYS
            .iter()
            .chain(HttpSettings::KEYS)
            .chain(GraphSettings::KEYS)
            .copied()
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Reads the profile table (without `backend`). Issue paths are relative to the table.
    pub fn parse(table: &toml::Table) -> Result<Self, Vec<ConfigIssue>> {
        match Self::parse_known(table) {
            (Some(profile), issues) if issues.is_empty() => Ok(profile),
            (_, issues) => Err(issues),
        }
    }

    /// Reads what can be read: the profile from the known keys (when their values are
    /// valid), and every issue — unknown keys included — so `check` can report them all.
    pub fn parse_known(table: &toml::Table) -> (Option<Self>, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let keys = Self::keys();
        for key in table.keys() {
            if !keys.contains(&key.as_str()) {
                issues.push(ConfigIssue::error(
                    key.clone(),
                    format!("unknown key; a graph profile takes: {}", keys.join(", ")),
                ));
            }
        }
        let (oauth_table, rest) = split_table(table, OAuthSettings::KEYS);
        let (http_table, graph_table) = split_table(&rest, HttpSettings::KEYS);
        let graph_table: toml::Table = graph_table
            .into_iter()
            .filter(|(k, _)| GraphSettings::KEYS.contains(&k.as_str()))
            .collect();
        let oauth = OAuthSettings::from_table(&oauth_table).map_err(|i| vec![i]);
        let http = read::<HttpSettings>(&http_table);
        let graph = read::<GraphSettings>(&graph_table);
        match (oauth, http, graph) {
            (Ok(oauth), Ok(http), Ok(graph)) => (Some(Self { oauth, http, graph }), issues),
            (oauth, http, graph) => {
                for result in [oauth.err(), http.err(), graph.err()].into_iter().flatten() {
                    issues.extend(result);
                }
                (None, issues)
            }
        }
    }

    pub fn policy(&self) -> EndpointPolicy {
        self.http.policy()
    }

    /// The Graph base in use, without a trailing slash.
    pub fn graph_url(&self) -> &str {
        self.graph
            .graph_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_GRAPH_URL)
    }

    pub fn max_concurrency(&self) -> usize {
        self.graph
            .max_concurrency
            .unwrap_or(DEFAULT_MAX_CONCURRENCY)
            .max(1)
    }

    pub fn probe_mailbox(&self) -> Option<&str> {
        self.graph
            .probe_mailbox
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }

    /// The offline check: the OAuth keys (credential, secrets resolvable, certificate usable,
    /// expiry), the transport keys, `graph_url` against the endpoint policy, the rest.
    pub fn check(&self, secrets: &SecretResolver) -> Vec<ConfigIssue> {
        let policy = self.policy();
        let mut issues = self.oauth.check(secrets, &policy);
        issues.extend(self.http.check());
        if let Some(url) = &self.graph.graph_url
            && let Some(parsed) = policy.check_into("graph_url", url, &mut issues)
        {
            check_graph_base(&parsed, &mut issues);
        }
        if self.graph.max_concurrency == Some(0) {
            issues.push(ConfigIssue::error("max_concurrency", "must be at least 1"));
        } else if self.graph.max_concurrency.is_some_and(|n| n > 256) {
            issues.push(ConfigIssue::warning(
                "max_concurrency",
                "more than 256 requests at once invite throttling by Microsoft Graph",
            ));
        }
        if let Some(mailbox) = &self.graph.probe_mailbox
            && calpump_plugin::normalize_mailbox(mailbox).is_err()
        {
            issues.push(ConfigIssue::error(
                "probe_mailbox",
                format!("`{mailbox}` is not an e-mail address"),
            ));
        }
        if let Some(scope) = &self.oauth.scope
            && !scope.to_ascii_lowercase().contains("graph")
        {
            issues.push(ConfigIssue::warning(
                "scope",
                format!(
                    "`{scope}` does not look like a Microsoft Graph scope; the default is https://graph.microsoft.com/.default"
                ),
            ));
        }
        issues
    }
}

/// The JSON Schema of a Graph profile table (without `backend`): every key of
/// [`GraphProfile::keys`], for the configuration reference.
pub fn profile_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Profile {
        #[serde(flatten)]
        oauth: OAuthSettings,
        #[serde(flatten)]
        http: HttpSettings,
        #[serde(flatten)]
        graph: GraphSettings,
    }
    generator.root_schema_for::<Profile>()
}

fn read<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, Vec<ConfigIssue>> {
    deserialize_value(&toml::Value::Table(table.clone()))
        .map_err(|(path, message)| vec![ConfigIssue::error(path, message)])
}

/// `graph_url` should name the API version (`…/v1.0`).
fn check_graph_base(url: &Url, issues: &mut Vec<ConfigIssue>) {
    let path = url.path().trim_end_matches('/');
    if !(path.ends_with("/v1.0") || path.ends_with("/beta")) {
        issues.push(ConfigIssue::warning(
            "graph_url",
            format!(
                "`{url}` does not end in the API version: calpump appends paths such as /users/… to it, so write e.g. https://graph.microsoft.com/v1.0"
            ),
        ));
    }
    if url.query().is_some() {
        issues.push(ConfigIssue::error("graph_url", "must not carry a query"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().expect("toml")
    }

    #[test]
    fn keys_are_split_and_unknown_keys_named() {
        let p = GraphProfile::parse(&table(
            r#"
            tenant = "contoso.onmicrosoft.com"
            client_id = "c"
            client_secret = "s"
            graph_url = "http://127.0.0.1:9/v1.0/"
            timeout = "5s"
            max_concurrency = 3
            probe_mailbox = "room@contoso.com"
            "#,
        ))
        .expect("parses");
        assert_eq!(p.graph_url(), "http://127.0.0.1:9/v1.0");
        assert_eq!(p.max_concurrency(), 3);
        assert_eq!(p.http.timeout, std::time::Duration::from_secs(5));
        assert_eq!(p.probe_mailbox(), Some("room@contoso.com"));

        let issues =
            GraphProfile::parse(&table("tenant = \"t\"\nclient_id = \"c\"\nurl = \"x\"\n"))
                .expect_err("unknown key");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "url");
        assert!(issues[0].message.contains("graph_url"));

        let issues = GraphProfile::parse(&table("max_concurrency = \"many\"\n")).expect_err("type");
        assert_eq!(issues[0].path, "max_concurrency");
    }

    #[test]
    fn the_schema_lists_exactly_the_accepted_keys() {
        let mut generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        let schema = profile_schema(&mut generator);
        let props = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .expect("properties");
        let mut listed: Vec<&str> = props.keys().map(String::as_str).collect();
        listed.sort_unstable();
        assert_eq!(listed, GraphProfile::keys());
        for (key, prop) in props {
            assert!(prop.get("description").is_some(), "`{key}` undocumented");
        }
        assert_eq!(
            props["max_concurrency"]["default"],
            serde_json::json!(DEFAULT_MAX_CONCURRENCY)
        );
    }

    #[test]
    fn check_names_policy_and_values() {
        let secrets = SecretResolver::new("/nonexistent/calpump.key");
        let p = GraphProfile::parse(&table(
            r#"
            tenant = "contoso.onmicrosoft.com"
            client_id = "c"
            client_secret = { env = "CALPUMP_GRAPH_TEST_UNSET_VARIABLE" }
            graph_url = "http://graph.example.com/v1.0"
            max_concurrency = 0
            probe_mailbox = "not-an-address"
            "#,
        ))
        .expect("parses");
        let issues = p.check(&secrets);
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"client_secret"), "{issues:?}");
        assert!(paths.contains(&"graph_url"), "{issues:?}");
        assert!(paths.contains(&"max_concurrency"), "{issues:?}");
        assert!(paths.contains(&"probe_mailbox"), "{issues:?}");
        let secret_issue = issues
            .iter()
            .find(|i| i.path == "client_secret")
            .expect("secret");
        assert!(
            secret_issue
                .message
                .contains("CALPUMP_GRAPH_TEST_UNSET_VARIABLE")
        );
    }
}
