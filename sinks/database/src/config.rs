//! The sink's configuration: the `[sinks.NAME]` table with `plugin = "database"`.
//!
//! [`Config::parse`] is the one way in: it refuses unknown keys and wrong types naming the key,
//! then [`Config::validate`] checks what serde cannot (URL scheme, identifiers, which keys fit
//! which engine). Neither touches the network or the file system beyond reading metadata.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::dialect::Dialect;

/// JSON Schema (draft 2020-12) of the configuration table, shown by `calpump plugins`.
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "calpump database sink",
  "description": "Keeps tables of calendar events in SQLite, PostgreSQL or MariaDB/MySQL exactly in step with Exchange.",
  "type": "object",
  "additionalProperties": false,
  "required": ["url"],
  "properties": {
    "plugin": {
      "description": "The host's plugin selector; accepted and ignored.",
      "type": "string",
      "const": "database"
    },
    "url": {
      "description": "Which database: `sqlite://path/to/file.db` or a plain file path (SQLite, the default), `postgres://user@host:5432/db`, `mysql://user@host:3306/db` or `mariadb://…`. A password may be part of the URL; it is never logged.",
      "type": "string",
      "minLength": 1,
      "examples": ["sqlite://calpump.db", "postgres://calpump@db.example.com/calpump", "mysql://calpump@db.example.com/calpump"]
    },
    "password": {
      "description": "The server password (PostgreSQL, MariaDB/MySQL), resolved by the host from a secret reference; takes precedence over a password in `url`.",
      "type": "string"
    },
    "table_prefix": {
      "description": "Prefix for every table and index name, e.g. `calpump_`.",
      "type": "string",
      "pattern": "^[a-z_][a-z0-9_]{0,31}$|^$",
      "default": ""
    },
    "schema": {
      "description": "PostgreSQL only: the schema that holds the tables (created if missing).",
      "type": "string",
      "pattern": "^[a-z_][a-z0-9_]{0,62}$"
    },
    "delete": {
      "description": "How deleted events leave the table: `soft` sets `deleted_at` and keeps the row, `hard` removes it.",
      "enum": ["soft", "hard"],
      "default": "soft"
    },
    "max_connections": {
      "description": "Size of the connection pool.",
      "type": "integer",
      "minimum": 1,
      "maximum": 64,
      "default": 8
    },
    "connect_timeout_secs": {
      "description": "How long to wait for a connection (and, in SQLite, for another writer's lock).",
      "type": "integer",
      "minimum": 1,
      "maximum": 600,
      "default": 30
    },
    "ssl_mode": {
      "description": "TLS to the server (PostgreSQL, MariaDB/MySQL): `disable`, `prefer`, `require`, `verify_ca` (the server's certificate must chain to `ssl_ca` or a public root) or `verify_full` (and match the host name).",
      "enum": ["disable", "prefer", "require", "verify_ca", "verify_full"]
    },
    "ssl_ca": {
      "description": "PEM file of the certificate authority that signed the server's certificate.",
      "type": "string",
      "minLength": 1
    }
  }
}"##;

/// What becomes of a deleted event's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    /// The row stays with `deleted_at` set (and comes back to life if the event reappears).
    #[default]
    Soft,
    /// The row is removed.
    Hard,
}

/// TLS to a database server. Names follow PostgreSQL's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    #[serde(alias = "verify-ca")]
    VerifyCa,
    #[serde(alias = "verify-full", alias = "verify_identity")]
    VerifyFull,
}

/// The configuration table. `Debug` never shows a password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub url: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub table_prefix: String,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub delete: DeleteMode,
    #[serde(default)]
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default)]
    pub ssl_mode: Option<SslMode>,
    #[serde(default)]
    pub ssl_ca: Option<PathBuf>,
    /// The host's `plugin = "database"` selector, if it passes the whole table along.
    #[serde(default)]
    pub plugin: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("table_prefix", &self.table_prefix)
            .field("schema", &self.schema)
            .field("delete", &self.delete)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_ca", &self.ssl_ca)
            .finish()
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("database sink: `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Connection options for one engine, ready for a pool.
#[derive(Debug, Clone)]
pub(crate) enum ConnectOptions {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
}

pub(crate) const DEFAULT_MAX_CONNECTIONS: u32 = 8;
pub(crate) const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 30;

impl Config {
    /// Reads the table, refusing unknown keys and wrong types (the error names the key).
    pub fn parse(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde names an unknown key in its message; a type error only through the path.
            let key = if path == "." {
                unknown_field(&inner).unwrap_or_else(|| "(table)".to_string())
            } else {
                path
            };
            ConfigError::new(key, inner)
        })?;
        Ok(config)
    }

    /// Parses and validates; returns the configuration and its warnings.
    pub fn check(value: &serde_json::Value) -> Result<(Self, Vec<String>), ConfigError> {
        let config = Self::parse(value)?;
        let warnings = config.validate()?;
        Ok((config, warnings))
    }

    /// Which engine the URL names.
    pub fn dialect(&self) -> Result<Dialect, ConfigError> {
        dialect_of(&self.url)
    }

    /// Checks what types cannot express; returns warnings. No side effects.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if let Some(plugin) = &self.plugin
            && plugin != "database"
        {
            return Err(ConfigError::new(
                "plugin",
                format!("this is the `database` plugin, not {plugin:?}"),
            ));
        }
        let dialect = self.dialect()?;
        if !valid_identifier(&self.table_prefix, 32, true) {
            return Err(ConfigError::new(
                "table_prefix",
                "use lower-case letters, digits and `_` (not starting with a digit), at most 32",
            ));
        }
        if let Some(schema) = &self.schema {
            if dialect != Dialect::Postgres {
                return Err(ConfigError::new(
                    "schema",
                    format!(
                        "only PostgreSQL has schemas; for {} use `table_prefix`",
                        dialect.label()
                    ),
                ));
            }
            if !valid_identifier(schema, 63, false) {
                return Err(ConfigError::new(
                    "schema",
                    "use lower-case letters, digits and `_` (not starting with a digit), at most 63",
                ));
            }
        }
        if let Some(n) = self.max_connections
            && !(1..=64).contains(&n)
        {
            return Err(ConfigError::new("max_connections", "must be 1 to 64"));
        }
        if let Some(n) = self.connect_timeout_secs
            && !(1..=600).contains(&n)
        {
            return Err(ConfigError::new("connect_timeout_secs", "must be 1 to 600"));
        }
        if dialect == Dialect::Sqlite {
            for (key, set) in [
                ("password", self.password.is_some()),
                ("ssl_mode", self.ssl_mode.is_some()),
                ("ssl_ca", self.ssl_ca.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(
                        key,
                        "SQLite is a local file: no password or TLS",
                    ));
                }
            }
            let path = sqlite_path(&self.url)?;
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
                && !parent.exists()
            {
                warnings.push(format!(
                    "`url`: directory {} does not exist yet; it will be created",
                    parent.display()
                ));
            }
        } else {
            if let Some(ca) = &self.ssl_ca {
                if !ca.exists() {
                    warnings.push(format!("`ssl_ca`: {} does not exist", ca.display()));
                }
                if self.ssl_mode == Some(SslMode::Disable) {
                    return Err(ConfigError::new(
                        "ssl_ca",
                        "given with `ssl_mode = \"disable\"`: choose one",
                    ));
                }
            }
            if self.password.is_some() && url_has_password(&self.url) {
                warnings.push(
                    "`password` is set and `url` carries a password too: `password` wins".into(),
                );
            }
            if self.ssl_mode.is_none() && !is_loopback_url(&self.url) {
                warnings.push(
                    "`ssl_mode` is not set for a remote server: TLS is used only if the server offers it (`prefer`); set `require` or `verify_full`".into(),
                );
            }
        }
        // Building the options parses the URL fully (no connection is made).
        self.connect_options()?;
        Ok(warnings)
    }

    /// The pool size.
    pub(crate) fn max_connections(&self) -> u32 {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(
            self.connect_timeout_secs
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS),
        )
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Connection options for the engine the URL names. Parses only; connects nowhere.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, ConfigError> {
        let bad_url = |e: sqlx::Error| {
            ConfigError::new(
                "url",
                format!("{} is not a usable URL: {e}", redact_url(&self.url)),
            )
        };
        Ok(match self.dialect()? {
            Dialect::Sqlite => {
                let path = sqlite_path(&self.url)?;
                ConnectOptions::Sqlite(
                    SqliteConnectOptions::new()
                        .filename(path)
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full)
                        .busy_timeout(self.connect_timeout())
                        .foreign_keys(false),
                )
            }
            Dialect::Postgres => {
                let mut options = PgConnectOptions::from_str(&self.url).map_err(bad_url)?;
                if let Some(password) = &self.password {
                    options = options.password(password);
                }
                if let Some(mode) = self.ssl_mode {
                    options = options.ssl_mode(match mode {
                        SslMode::Disable => PgSslMode::Disable,
                        SslMode::Prefer => PgSslMode::Prefer,
                        SslMode::Require => PgSslMode::Require,
                        SslMode::VerifyCa => PgSslMode::VerifyCa,
                        SslMode::VerifyFull => PgSslMode::VerifyFull,
                    });
                }
                if let Some(ca) = &self.ssl_ca {
                    options = options.ssl_root_cert(ca);
                }
                // Always plan with the actual parameters and table size: a generic plan cached
                // while the table was nearly empty (a first load) would keep scanning it whole.
                options = options
                    .application_name("calpump-sink-database")
                    .options([("plan_cache_mode", "force_custom_plan")]);
                ConnectOptions::Postgres(options)
            }
            Dialect::MySql => {
                let url = mysql_url(&self.url);
                let mut options = MySqlConnectOptions::from_str(&url).map_err(bad_url)?;
                if let Some(password) = &self.password {
                    options = options.password(password);
                }
                if let Some(mode) = self.ssl_mode {
                    options = options.ssl_mode(match mode {
                        SslMode::Disable => MySqlSslMode::Disabled,
                        SslMode::Prefer => MySqlSslMode::Preferred,
                        SslMode::Require => MySqlSslMode::Required,
                        SslMode::VerifyCa => MySqlSslMode::VerifyCa,
                        SslMode::VerifyFull => MySqlSslMode::VerifyIdentity,
                    });
                }
                if let Some(ca) = &self.ssl_ca {
                    options = options.ssl_ca(ca);
                }
                // utf8mb4 so 4-byte characters survive; UTC so DATETIME means UTC.
                options = options
                    .charset("utf8mb4")
                    .collation("utf8mb4_bin")
                    .timezone(Some("+00:00".to_string()));
                ConnectOptions::MySql(options)
            }
        })
    }
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

fn valid_identifier(s: &str, max: usize, empty_ok: bool) -> bool {
    if s.is_empty() {
        return empty_ok;
    }
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn dialect_of(url: &str) -> Result<Dialect, ConfigError> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::new("url", "is empty"));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        return Ok(Dialect::Sqlite);
    }
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Dialect::Postgres);
    }
    if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
        return Ok(Dialect::MySql);
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(ConfigError::new(
            "url",
            format!(
                "unknown database kind {scheme:?}: use sqlite://, postgres://, mysql:// or mariadb://"
            ),
        ));
    }
    // No scheme: a path to an SQLite file.
    Ok(Dialect::Sqlite)
}

/// The file an SQLite URL or plain path names.
pub(crate) fn sqlite_path(url: &str) -> Result<PathBuf, ConfigError> {
    let trimmed = url.trim();
    let rest = if trimmed.len() >= 7 && trimmed[..7].eq_ignore_ascii_case("sqlite:") {
        let rest = &trimmed[7..];
        rest.strip_prefix("//").unwrap_or(rest)
    } else {
        trimmed
    };
    // Connection parameters (`?mode=rwc`) are ours to set.
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err(ConfigError::new("url", "names no SQLite file"));
    }
    if path == ":memory:" || path.starts_with("file::memory:") {
        return Err(ConfigError::new(
            "url",
            "an in-memory SQLite database is not supported: every pooled connection would see its own empty database; name a file",
        ));
    }
    Ok(Path::new(path).to_path_buf())
}

fn mysql_url(url: &str) -> String {
    let trimmed = url.trim();
    if trimmed.len() >= 10 && trimmed[..10].eq_ignore_ascii_case("mariadb://") {
        format!("mysql://{}", &trimmed[10..])
    } else {
        trimmed.to_string()
    }
}

fn url_has_password(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(|p| !p.is_empty()))
        .unwrap_or(false)
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        // Non-special schemes (postgres://, mysql://) leave IP addresses as opaque host text.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // No host: a Unix socket.
        None => true,
    }
}

/// `url` with its password (if any) replaced by `***`. Unparsable text is cut at the last `@`
/// before the host so nothing after `:` in the user part can leak.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        return parsed.to_string();
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(value: serde_json::Value) -> ConfigError {
        match Config::check(&value) {
            Ok(_) => panic!("expected an error for {value}"),
            Err(e) => e,
        }
    }

    #[test]
    fn names_the_key_that_is_wrong() {
        let e = err(json!({"url": "sqlite://x.db", "tabel_prefix": "a_"}));
        assert_eq!(e.key, "tabel_prefix");
        assert!(e.message.contains("unknown field"), "{e}");

        let e = err(json!({"url": "sqlite://x.db", "max_connections": "many"}));
        assert_eq!(e.key, "max_connections");

        let e = err(json!({"url": "postgres://h/db", "delete": "sometimes"}));
        assert_eq!(e.key, "delete");

        let e = err(json!({"url": "oracle://h/db"}));
        assert_eq!(e.key, "url");
        assert!(e.message.contains("oracle"), "{e}");

        let e = err(json!({"url": "sqlite://x.db", "schema": "s"}));
        assert_eq!(e.key, "schema");

        let e = err(json!({"url": "postgres://h/db", "schema": "Bad-Name"}));
        assert_eq!(e.key, "schema");

        let e = err(json!({"url": "sqlite://x.db", "table_prefix": "x; DROP"}));
        assert_eq!(e.key, "table_prefix");

        let e = err(json!({"url": "sqlite://x.db", "password": "p"}));
        assert_eq!(e.key, "password");

        let e = err(json!({"url": "sqlite::memory:"}));
        assert_eq!(e.key, "url");

        let e = err(json!({"url": "mysql://h/db", "max_connections": 0}));
        assert_eq!(e.key, "max_connections");

        let e = err(json!({"password": "p"}));
        assert!(e.message.contains("url"), "{e}");
    }

    #[test]
    fn accepts_each_engine_and_warns_about_plain_tcp() {
        let (c, w) = Config::check(&json!({"url": "calpump.db"})).expect("path");
        assert_eq!(c.dialect().expect("dialect"), Dialect::Sqlite);
        assert!(w.is_empty(), "{w:?}");
        let (c, _) = Config::check(
            &json!({"url": "sqlite://data/calpump.db", "delete": "hard", "plugin": "database"}),
        )
        .expect("sqlite url");
        assert_eq!(c.delete, DeleteMode::Hard);
        let (c, w) = Config::check(&json!({
            "url": "postgres://calpump@127.0.0.1:5432/calpump",
            "schema": "calpump", "table_prefix": "cp_", "max_connections": 4
        }))
        .expect("pg");
        assert_eq!(c.dialect().expect("dialect"), Dialect::Postgres);
        assert!(w.is_empty(), "{w:?}");
        let (c, w) = Config::check(&json!({
            "url": "mariadb://calpump:pw@db.example.com/calpump", "password": "secret", "ssl_mode": "verify-full"
        }))
        .expect("mariadb");
        assert_eq!(c.dialect().expect("dialect"), Dialect::MySql);
        assert_eq!(c.ssl_mode, Some(SslMode::VerifyFull));
        assert!(w.iter().any(|w| w.contains("`password` wins")), "{w:?}");
        let (_, w) = Config::check(&json!({"url": "mysql://u@db.example.com/x"})).expect("mysql");
        assert!(w.iter().any(|w| w.contains("ssl_mode")), "{w:?}");
    }

    #[test]
    fn passwords_never_show() {
        let c = Config::parse(&json!({"url": "postgres://u:hunter2@h/db", "password": "s3cret"}))
            .expect("parse");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("s3cret"),
            "{debug}"
        );
        assert_eq!(c.redacted_url(), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("mysql://u:p@ss:word@h/db"),
            "mysql://u:***@h/db",
            "a password with special characters is cut, not shown"
        );
        let e = err(json!({"url": "postgres://u:hunter2@h:notaport/db"}));
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn schema_document_is_json_and_lists_every_key() {
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).expect("schema");
        let props = schema["properties"].as_object().expect("properties");
        for key in [
            "url",
            "password",
            "table_prefix",
            "schema",
            "delete",
            "max_connections",
            "connect_timeout_secs",
            "ssl_mode",
            "ssl_ca",
            "plugin",
        ] {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
        assert_eq!(schema["additionalProperties"], false);
    }
}
