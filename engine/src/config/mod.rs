//! The configuration file: one TOML document, validated before anything is built.
//!
//! Loading never stops at the first problem: each section (`[state]`, each profile, sink and
//! route) is read on its own, so `calpump check` can report every mistake at once, each with the
//! file, line and key path it is about. Unknown keys are errors everywhere (`deny_unknown_fields`);
//! backends and sinks validate their own tables (profiles through [`crate::source::SourceFactory`],
//! sinks through the plugin's `check`).
//!
//! Relative paths in the configuration are relative to the current directory.

mod locate;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use locate::Location;

/// How bad a [`ConfigIssue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem with the configuration, with the place it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigIssue {
    pub severity: Severity,
    /// Dotted key path (`profiles.cloud.client_secret`, `routes[1].interval`).
    pub path: String,
    pub message: String,
    /// File, line and column, when the key exists in the file.
    pub location: Option<Location>,
}

impl ConfigIssue {
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            location: None,
        }
    }

    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            location: None,
        }
    }

    /// Prefixes the path (a factory reports paths relative to its profile table).
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.location {
            Some(loc) => write!(f, "{loc}: {level}: ")?,
            None => write!(f, "{level}: ")?,
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

/// The configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_issues(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn render_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `[state]`: where cursors, run history and mailbox status are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// SQLite file of the state store.
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
    /// Sync runs kept in the run history per route, however old. The latest run of a route is
    /// always kept (0 counts as 1); `migrate switch` records are never deleted. Pruned at the
    /// end of every run.
    #[serde(default = "default_keep_runs")]
    pub keep_runs: u32,
    /// Days for which sync runs are kept however many there are (a run goes when it is older
    /// than this and not among the newest `keep_runs`), and after which a sink's rejection of
    /// an event that is gone from the calendar is forgotten. 0: by `keep_runs` only.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
}

fn default_state_path() -> PathBuf {
    PathBuf::from("calpump-state.db")
}

fn default_keep_runs() -> u32 {
    crate::state::Retention::DEFAULT_KEEP_RUNS
}

fn default_keep_days() -> u32 {
    crate::state::Retention::DEFAULT_KEEP_DAYS
}

impl StateConfig {
    /// The state store's retention (`keep_runs`, `keep_days`).
    pub fn retention(&self) -> crate::state::Retention {
        crate::state::Retention {
            keep_runs: self.keep_runs,
            keep_days: self.keep_days,
        }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            path: default_state_path(),
            keep_runs: default_keep_runs(),
            keep_days: default_keep_days(),
        }
    }
}

/// `[plugins]`: where sink plugins are loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directories searched for `*.so`/`*.dylib`/`*.dll` sink plugins, besides the directory
    /// of the `calpump` executable. Nothing else is ever loaded.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// How long one plugin call may take before the route gives up on it.
    #[serde(default = "default_call_timeout", with = "duration")]
    #[schemars(with = "schema::HumanDuration")]
    pub call_timeout: Duration,
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(120)
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            call_timeout: default_call_timeout(),
        }
    }
}

/// `[http]`: the daemon's status server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address `calpump run` listens on for door-sign pages, `/status`, `/metrics`, `/healthz`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}

/// `[secrets]`: the key for `{ encrypted = "…" }` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Key file made by `calpump init` (mode 0600).
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
}

fn default_key_file() -> PathBuf {
    PathBuf::from("calpump.key")
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            key_file: default_key_file(),
        }
    }
}

/// `[profiles.<name>]`: a connection to Exchange. Only `backend` is read here; the backend's
/// factory validates the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileConfig {
    /// `"ews"` or `"graph"`.
    pub backend: String,
    /// Every other key of the table, for the backend.
    pub settings: toml::Table,
}

/// `[sinks.<name>]`: an instance of a sink plugin. Only `plugin` is read here; the plugin's
/// `check` validates the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// The plugin's name (`doorsign`, `database`, or a loaded plugin's).
    pub plugin: String,
    /// Every other key of the table, for the plugin (as JSON; secret references resolved).
    pub settings: toml::Table,
}

/// Which calendars of each mailbox a route reads: `"default"` (the main calendar), `"all"`
/// (with sub-calendars), or a list of neutral calendar paths (`["default", "default/Projects"]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CalendarSelection {
    #[default]
    Default,
    All,
    Paths(Vec<String>),
}

impl<'de> Deserialize<'de> for CalendarSelection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Word(word) if word == "default" => Ok(Self::Default),
            Raw::Word(word) if word == "all" => Ok(Self::All),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "`{word}`: write \"default\", \"all\" or a list of calendar paths"
            ))),
            Raw::List(paths) => Ok(Self::Paths(paths)),
        }
    }
}

impl Serialize for CalendarSelection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Default => serializer.serialize_str("default"),
            Self::All => serializer.serialize_str("all"),
            Self::Paths(paths) => paths.serialize(serializer),
        }
    }
}

/// `window = { past_days, future_days }`: the span of time a route keeps in its sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Whole days before today (UTC) the window starts.
    #[serde(default = "default_past_days")]
    pub past_days: u32,
    /// Whole days after today (UTC) the window ends.
    #[serde(default = "default_future_days")]
    pub future_days: u32,
}

fn default_past_days() -> u32 {
    1
}

fn default_future_days() -> u32 {
    14
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            past_days: default_past_days(),
            future_days: default_future_days(),
        }
    }
}

/// `[[routes]]`: which mailboxes of which profile go into which sinks, how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name (`--route NAME`, state keys, metrics labels).
    #[schemars(extend("examples" = ["rooms"]))]
    pub name: String,
    /// The profile that reads the mailboxes.
    #[schemars(extend("examples" = ["cloud"]))]
    pub profile: String,
    /// A second profile read in shadow mode: compared with `profile`, never written.
    #[serde(default)]
    pub shadow_profile: Option<String>,
    /// Mailbox addresses.
    #[serde(default)]
    #[schemars(extend("examples" = [["room-1.01@contoso.com"]]))]
    pub mailboxes: Vec<String>,
    /// Room lists (by address or display name) whose rooms the route reads.
    #[serde(default)]
    #[schemars(extend("examples" = [["Building A"]]))]
    pub room_lists: Vec<String>,
    /// `"default"`, `"all"`, or a list of calendar paths.
    #[serde(default)]
    pub calendars: CalendarSelection,
    /// The span of time the route keeps in its sinks: `{ past_days = 1, future_days = 14 }`.
    #[serde(default)]
    pub window: WindowConfig,
    /// How often `calpump run` syncs the route (`"2m"`, `"30s"`).
    #[serde(default = "default_interval", with = "duration")]
    #[schemars(with = "schema::HumanDuration")]
    pub interval: Duration,
    /// Sink names (`[sinks.<name>]`).
    #[schemars(extend("examples" = [["signs", "db"]]))]
    pub sinks: Vec<String>,
    /// How many calendars of the route are read at the same time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Refuse to apply a calendar that suddenly reads empty as "delete everything".
    #[serde(default = "default_true")]
    pub empty_guard: bool,
}

fn default_interval() -> Duration {
    Duration::from_secs(120)
}

fn default_concurrency() -> usize {
    8
}

fn default_true() -> bool {
    true
}

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub state: StateConfig,
    pub plugins: PluginsConfig,
    pub http: HttpConfig,
    pub secrets: SecretsConfig,
    pub profiles: BTreeMap<String, ProfileConfig>,
    pub sinks: BTreeMap<String, SinkConfig>,
    pub routes: Vec<RouteConfig>,
    /// The file it was read from.
    pub source_path: Option<PathBuf>,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "state", "plugins", "http", "secrets", "profiles", "sinks", "routes",
];

impl Config {
    /// Reads and validates the file. Errors carry every issue found; warnings are returned.
    pub fn load(path: &Path) -> Result<(Config, Vec<ConfigIssue>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let (config, issues) = Self::parse(&text, Some(path));
        if issues.iter().any(ConfigIssue::is_error) {
            return Err(ConfigError::Invalid(issues));
        }
        Ok((config, issues))
    }

    /// Parses text, collecting every issue (structure and cross-references; not what backends
    /// and plugins check). The returned config holds every section that could be read.
    pub fn parse(text: &str, path: Option<&Path>) -> (Config, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let mut config = Config {
            source_path: path.map(Path::to_path_buf),
            ..Config::default()
        };
        let locator = locate::Locator::new(text, path);
        let root: toml::Table = match text.parse::<toml::Table>() {
            Ok(root) => root,
            Err(err) => {
                let mut issue =
                    ConfigIssue::error("", format!("not valid TOML: {}", err.message()));
                issue.location = err
                    .span()
                    .map(|span| locator.location_of_offset(span.start));
                return (config, vec![issue]);
            }
        };

        for key in root.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                issues.push(ConfigIssue::error(
                    key.clone(),
                    format!(
                        "unknown key; expected one of: {}",
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                ));
            }
        }

        if let Some(value) = root.get("state")
            && let Some(v) = read_section(value, "state", &mut issues)
        {
            config.state = v;
        }
        if let Some(value) = root.get("plugins")
            && let Some(v) = read_section(value, "plugins", &mut issues)
        {
            config.plugins = v;
        }
        if let Some(value) = root.get("http")
            && let Some(v) = read_section(value, "http", &mut issues)
        {
            config.http = v;
        }
        if let Some(value) = root.get("secrets")
            && let Some(v) = read_section(value, "secrets", &mut issues)
        {
            config.secrets = v;
        }

        match root.get("profiles") {
            None => {}
            Some(toml::Value::Table(profiles)) => {
                for (name, value) in profiles {
                    let path = format!("profiles.{name}");
                    if let Some(profile) = read_tagged(value, &path, "backend", &mut issues) {
                        config.profiles.insert(
                            name.clone(),
                            ProfileConfig {
                                backend: profile.0,
                                settings: profile.1,
                            },
                        );
                    }
                }
            }
            Some(_) => issues.push(ConfigIssue::error(
                "profiles",
                "must be a table of profiles",
            )),
        }

        match root.get("sinks") {
            None => {}
            Some(toml::Value::Table(sinks)) => {
                for (name, value) in sinks {
                    let path = format!("sinks.{name}");
                    if let Some(sink) = read_tagged(value, &path, "plugin", &mut issues) {
                        config.sinks.insert(
                            name.clone(),
                            SinkConfig {
                                plugin: sink.0,
                                settings: sink.1,
                            },
                        );
                    }
                }
            }
            Some(_) => issues.push(ConfigIssue::error("sinks", "must be a table of sinks")),
        }

        match root.get("routes") {
            None => {}
            Some(toml::Value::Array(routes)) => {
                for (i, value) in routes.iter().enumerate() {
                    let path = format!("routes[{i}]");
                    if let Some(route) = read_section::<RouteConfig>(value, &path, &mut issues) {
                        config.routes.push(route);
                    }
                }
            }
            Some(_) => issues.push(ConfigIssue::error(
                "routes",
                "must be an array of tables: write each route as [[routes]]",
            )),
        }

        config.check_references(&mut issues);
        for issue in &mut issues {
            if issue.location.is_none() {
                issue.location = locator.locate(&issue.path);
            }
        }
        (config, issues)
    }

    /// Cross-references: routes name existing profiles and sinks, names are unique.
    fn check_references(&self, issues: &mut Vec<ConfigIssue>) {
        let mut seen = std::collections::HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let at = |key: &str| format!("routes[{i}].{key}");
            if route.name.trim().is_empty() {
                issues.push(ConfigIssue::error(at("name"), "a route needs a name"));
            } else if !seen.insert(route.name.clone()) {
                issues.push(ConfigIssue::error(
                    at("name"),
                    format!("route name `{}` is used twice", route.name),
                ));
            }
            if !self.profiles.contains_key(&route.profile) {
                issues.push(ConfigIssue::error(
                    at("profile"),
                    format!(
                        "no profile named `{}` (known: {})",
                        route.profile,
                        known(self.profiles.keys())
                    ),
                ));
            }
            if let Some(shadow) = &route.shadow_profile {
                if !self.profiles.contains_key(shadow) {
                    issues.push(ConfigIssue::error(
                        at("shadow_profile"),
                        format!(
                            "no profile named `{shadow}` (known: {})",
                            known(self.profiles.keys())
                        ),
                    ));
                } else if shadow == &route.profile {
                    issues.push(ConfigIssue::error(
                        at("shadow_profile"),
                        "the shadow profile must differ from the route's profile",
                    ));
                }
            }
            for (j, sink) in route.sinks.iter().enumerate() {
                if !self.sinks.contains_key(sink) {
                    issues.push(ConfigIssue::error(
                        format!("routes[{i}].sinks[{j}]"),
                        format!(
                            "no sink named `{sink}` (known: {})",
                            known(self.sinks.keys())
                        ),
                    ));
                }
            }
            if route.sinks.is_empty() {
                issues.push(ConfigIssue::error(
                    at("sinks"),
                    "a route needs at least one sink",
                ));
            }
            if route.mailboxes.is_empty() && route.room_lists.is_empty() {
                issues.push(ConfigIssue::error(
                    at("mailboxes"),
                    "a route needs `mailboxes` or `room_lists`",
                ));
            }
            for (j, address) in route.mailboxes.iter().enumerate() {
                if calpump_plugin::normalize_mailbox(address).is_err() {
                    issues.push(ConfigIssue::error(
                        format!("routes[{i}].mailboxes[{j}]"),
                        format!("`{address}` is not an e-mail address"),
                    ));
                }
            }
            if route.window.past_days + route.window.future_days == 0 {
                issues.push(ConfigIssue::error(at("window"), "the window is empty"));
            }
            if route.concurrency == 0 {
                issues.push(ConfigIssue::error(at("concurrency"), "must be at least 1"));
            }
            if route.interval < Duration::from_secs(10) {
                issues.push(ConfigIssue::warning(
                    at("interval"),
                    "shorter than 10 s: expect throttling",
                ));
            }
        }
    }

    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.name == name)
    }

    pub fn secret_resolver(&self) -> crate::secret::SecretResolver {
        crate::secret::SecretResolver::new(self.secrets.key_file.clone())
    }

    /// Locates a key path in the file this config was read from (for issues found later by
    /// backends and plugins).
    pub fn locate(&self, path: &str) -> Option<Location> {
        let file = self.source_path.as_ref()?;
        let text = std::fs::read_to_string(file).ok()?;
        locate::Locator::new(&text, Some(file)).locate(path)
    }
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Deserialises one section, recording an issue with the failing key's full path.
fn read_section<T: DeserializeOwned>(
    value: &toml::Value,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<T> {
    match deserialize_value(value) {
        Ok(v) => Some(v),
        Err((inner, message)) => {
            issues.push(ConfigIssue::error(join_path(path, &inner), message));
            None
        }
    }
}

/// Deserialises a `T` from a TOML value; on error returns the path inside the value and a
/// message.
pub fn deserialize_value<T: DeserializeOwned>(value: &toml::Value) -> Result<T, (String, String)> {
    let result: Result<T, serde_path_to_error::Error<toml::de::Error>> =
        serde_path_to_error::deserialize(value.clone());
    result.map_err(|err| {
        let mut path = err.path().to_string();
        if path == "." {
            path.clear();
        }
        let message = err.inner().message().to_string();
        // Point an unknown field's issue at the field itself.
        if let Some(field) = unknown_field_name(&message)
            && path.rsplit('.').next() != Some(field.as_str())
        {
            path = join_path(&path, &field);
        }
        (path, message)
    })
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// Reads a table with a required string tag key (`backend`, `plugin`), returning the tag and the
/// remaining keys.
fn read_tagged(
    value: &toml::Value,
    path: &str,
    tag: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<(String, toml::Table)> {
    let toml::Value::Table(table) = value else {
        issues.push(ConfigIssue::error(path, "must be a table"));
        return None;
    };
    let mut settings = table.clone();
    match settings.remove(tag) {
        Some(toml::Value::String(name)) => Some((name, settings)),
        Some(_) => {
            issues.push(ConfigIssue::error(
                format!("{path}.{tag}"),
                "must be a string",
            ));
            None
        }
        None => {
            issues.push(ConfigIssue::error(path, format!("missing `{tag}`")));
            None
        }
    }
}

/// Serde helper for durations written as `"2m"`, `"30s"`, `"1h 30m"`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration like \"2m\" or \"30s\": {e}"
            ))
        })
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }
}

#[cfg(test)]
mod tests;
