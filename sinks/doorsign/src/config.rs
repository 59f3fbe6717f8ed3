//! The door-sign sink's configuration: the `[sinks.NAME]` table with `plugin = "doorsign"`,
//! minus the keys the engine consumes (it hands the rest over as JSON, secrets already resolved).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use calpump_plugin::{SinkError, normalize_mailbox};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Labels on pages and images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    De,
}

/// Colour scheme of the HTML pages: `auto` follows the display's `prefers-color-scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    Auto,
    Light,
    Dark,
}

/// Colours an e-paper panel can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Palette {
    /// Black and white (1 bit per pixel).
    #[default]
    Bw,
    /// Black, white and red (2 bits per pixel, three colours used).
    Bwr,
}

impl Palette {
    pub fn as_str(self) -> &'static str {
        match self {
            Palette::Bw => "bw",
            Palette::Bwr => "bwr",
        }
    }
}

/// One e-paper image size to render for every room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PngSize {
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub palette: Palette,
}

impl PngSize {
    /// `"296x128"`: used in file names and to pick a size for an OpenEPaperLink tag.
    pub fn label(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// MQTT push: one retained JSON message per room.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` (plain, default port 1883) or `mqtts://host[:port]` (TLS, 8883).
    pub url: String,
    /// Topic template; `{room}` is the room's id (slug), `{mailbox}` its address.
    #[serde(default = "default_topic")]
    pub topic: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Already resolved by the engine (`{ env = … }` / `{ file = … }`); never logged.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "yes")]
    pub retain: bool,
    /// MQTT client id; default `calpump-doorsign-<pid>-<instance>-<hash>`, unique per sink.
    #[serde(default)]
    pub client_id: Option<String>,
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.url)
            .field("topic", &self.topic)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("retain", &self.retain)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// One OpenEPaperLink tag: its MAC, optionally with the image size to send. Deserialized by
/// hand (not as an untagged enum) so that an unknown key in the table form is refused by name
/// and a wrong type says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TagTarget {
    Mac(String),
    Detailed {
        mac: String,
        /// `"WxH"` of one of the configured `png` sizes; default: the first.
        #[serde(default)]
        size: Option<String>,
    },
}

/// The table form of [`TagTarget`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagTable {
    mac: String,
    #[serde(default)]
    size: Option<String>,
}

impl<'de> Deserialize<'de> for TagTarget {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl<'de> serde::de::Visitor<'de> for Expect {
            type Value = TagTarget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a tag MAC (\"0000021EB5AC3B12\") or a table { mac = \"…\", size = \"400x300\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, mac: &str) -> Result<TagTarget, E> {
                Ok(TagTarget::Mac(mac.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TagTarget, A::Error> {
                let table =
                    TagTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(TagTarget::Detailed {
                    mac: table.mac,
                    size: table.size,
                })
            }
        }
        deserializer.deserialize_any(Expect)
    }
}

impl TagTarget {
    pub fn mac(&self) -> &str {
        match self {
            TagTarget::Mac(mac) | TagTarget::Detailed { mac, .. } => mac,
        }
    }
    pub fn size(&self) -> Option<&str> {
        match self {
            TagTarget::Mac(_) => None,
            TagTarget::Detailed { size, .. } => size.as_deref(),
        }
    }
}

/// OpenEPaperLink access point: `POST /imgupload` of the room's image to the tag's MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OeplConfig {
    /// `http://ap-address` (the AP speaks plain HTTP on port 80).
    pub url: String,
    /// Room address → tag MAC (`"room@x" = "0000021EB5AC3B12"`) or `{ mac, size = "400x300" }`.
    #[serde(default)]
    pub tags: BTreeMap<String, TagTarget>,
    /// The AP's dithering of the upload: 0 off (default: the image is already two- or
    /// three-coloured), 1 Floyd-Steinberg, 2 ordered.
    #[serde(default)]
    pub dither: u8,
}

/// Retries of failed pushes: until delivered or superseded by newer content, with doubling
/// back-off from `initial_ms`, capped at `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// After this many failed attempts a push is reported as failing (error log, metric
    /// outcome `failed`); it is still retried.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default = "default_initial_ms")]
    pub initial_ms: u64,
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            initial_ms: default_initial_ms(),
            max_ms: default_max_ms(),
        }
    }
}

/// The whole configuration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where `index.html`, `index.json`, `rooms/` and the sink's state (`.state/`) go.
    pub out_dir: PathBuf,
    #[serde(default)]
    pub language: Language,
    /// IANA zone in which "today" and the shown times are counted.
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u32,
    #[serde(default = "default_soon")]
    pub starting_soon_minutes: u32,
    #[serde(default = "default_soon")]
    pub ending_soon_minutes: u32,
    #[serde(default = "default_stale")]
    pub stale_after_minutes: u32,
    /// Shown instead of subject and organizer of private and confidential meetings.
    #[serde(default)]
    pub private_text: Option<String>,
    #[serde(default)]
    pub hide_subjects: bool,
    #[serde(default)]
    pub png: Vec<PngSize>,
    /// Fallback font files (TTF/OTF/TTC, first face) for characters DejaVu Sans lacks, tried in
    /// order before the system's.
    #[serde(default)]
    pub fonts: Vec<PathBuf>,
    /// Whether well-known system font files (e.g. Noto Sans CJK) are searched after `fonts`.
    #[serde(default = "yes")]
    pub system_fonts: bool,
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    #[serde(default)]
    pub openepaperlink: Option<OeplConfig>,
    #[serde(default)]
    pub push_retry: RetryConfig,
    /// Freezes the sink's clock at this instant (reproducible renders for screenshots and tests).
    #[serde(default)]
    pub clock: Option<DateTime<Utc>>,
}

fn default_topic() -> String {
    "calpump/doorsign/{room}".into()
}
fn yes() -> bool {
    true
}
fn default_refresh() -> u32 {
    60
}
fn default_soon() -> u32 {
    10
}
fn default_stale() -> u32 {
    30
}
fn default_attempts() -> u32 {
    6
}
fn default_initial_ms() -> u64 {
    2_000
}
fn default_max_ms() -> u64 {
    300_000
}

/// A checked configuration with its derived values.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub tz: Tz,
    pub private_text: String,
    /// Parsed MQTT endpoint, when configured.
    pub mqtt: Option<MqttEndpoint>,
    /// Normalised room address → (MAC upper-case, index into `png`).
    pub oepl_tags: BTreeMap<String, (String, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

fn config_error(key: &str, message: impl fmt::Display) -> SinkError {
    SinkError::config(format!("doorsign: `{key}`: {message}"))
}

/// Parses and validates a configuration. No side effects. Returns the settings and warnings.
pub fn parse(value: &serde_json::Value) -> Result<(Settings, Vec<String>), SinkError> {
    let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            "(table)".to_string()
        } else {
            path
        };
        config_error(&key, e.inner())
    })?;
    let mut warnings = Vec::new();

    if config.out_dir.as_os_str().is_empty() {
        return Err(config_error("out_dir", "must not be empty"));
    }
    let tz = match &config.time_zone {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            config_error(
                "time_zone",
                format!("{name:?} is not an IANA time zone (e.g. \"Europe/Berlin\")"),
            )
        })?,
        None => {
            warnings.push(
                "doorsign: `time_zone` is not set; days and times are shown in UTC".to_string(),
            );
            Tz::UTC
        }
    };
    if !(5..=86_400).contains(&config.refresh_seconds) {
        return Err(config_error(
            "refresh_seconds",
            "must be between 5 and 86400",
        ));
    }
    for (key, value) in [
        ("starting_soon_minutes", config.starting_soon_minutes),
        ("ending_soon_minutes", config.ending_soon_minutes),
    ] {
        if value > 240 {
            return Err(config_error(key, "must be at most 240"));
        }
    }
    if !(1..=10_080).contains(&config.stale_after_minutes) {
        return Err(config_error(
            "stale_after_minutes",
            "must be between 1 and 10080",
        ));
    }
    if let Some(text) = &config.private_text
        && text.trim().is_empty()
    {
        return Err(config_error("private_text", "must not be blank"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, size) in config.png.iter().enumerate() {
        if !(64..=2048).contains(&size.width) || !(64..=2048).contains(&size.height) {
            return Err(config_error(
                &format!("png[{i}]"),
                "width and height must be between 64 and 2048",
            ));
        }
        if !seen.insert((size.width, size.height)) {
            return Err(config_error(
                &format!("png[{i}]"),
                format!("size {} is listed twice", size.label()),
            ));
        }
    }
    for (i, path) in config.fonts.iter().enumerate() {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("ttf" | "otf" | "ttc" | "otc")) {
            return Err(config_error(
                &format!("fonts[{i}]"),
                format!("{} is not a TTF, OTF or TTC font file", path.display()),
            ));
        }
    }
    let mqtt = match &config.mqtt {
        Some(m) => Some(check_mqtt(m, &mut warnings)?),
        None => None,
    };
    let mut oepl_tags = BTreeMap::new();
    if let Some(oepl) = &config.openepaperlink {
        check_http_url(&oepl.url).map_err(|e| config_error("openepaperlink.url", e))?;
        if oepl.dither > 2 {
            return Err(config_error("openepaperlink.dither", "must be 0, 1 or 2"));
        }
        if oepl.tags.is_empty() {
            warnings
                .push("doorsign: `openepaperlink.tags` is empty; nothing will be uploaded".into());
        }
        if !oepl.tags.is_empty() && config.png.is_empty() {
            return Err(config_error(
                "openepaperlink",
                "needs at least one `png` size to render the tags' images",
            ));
        }
        for (room, target) in &oepl.tags {
            let key = format!("openepaperlink.tags.{room:?}");
            let room = normalize_mailbox(room).map_err(|e| config_error(&key, e))?;
            let mac = target.mac().trim().to_ascii_uppercase();
            if !(mac.len() == 12 || mac.len() == 16) || !mac.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(config_error(
                    &key,
                    format!("{:?} is not a tag MAC (12 or 16 hex digits)", target.mac()),
                ));
            }
            let index = match target.size() {
                None => 0,
                Some(label) => config
                    .png
                    .iter()
                    .position(|s| s.label() == label)
                    .ok_or_else(|| {
                        config_error(
                            &format!("{key}.size"),
                            format!("{label:?} is not one of the `png` sizes"),
                        )
                    })?,
            };
            oepl_tags.insert(room, (mac, index));
        }
    }
    let r = &config.push_retry;
    if !(1..=100).contains(&r.attempts) {
        return Err(config_error(
            "push_retry.attempts",
            "must be between 1 and 100",
        ));
    }
    if r.initial_ms == 0 || r.max_ms < r.initial_ms {
        return Err(config_error(
            "push_retry",
            "`initial_ms` must be positive and not above `max_ms`",
        ));
    }
    let private_text = config.private_text.clone().unwrap_or_else(|| {
        match config.language {
            Language::En => "Private appointment",
            Language::De => "Privater Termin",
        }
        .to_string()
    });
    Ok((
        Settings {
            config,
            tz,
            private_text,
            mqtt,
            oepl_tags,
        },
        warnings,
    ))
}

fn check_mqtt(m: &MqttConfig, warnings: &mut Vec<String>) -> Result<MqttEndpoint, SinkError> {
    let (tls, rest) = if let Some(rest) = m.url.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some(rest) = m.url.strip_prefix("mqtt://") {
        (false, rest)
    } else {
        return Err(config_error(
            "mqtt.url",
            format!("{:?} must start with mqtt:// or mqtts://", m.url),
        ));
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') || authority.contains('@') || authority.is_empty() {
        return Err(config_error(
            "mqtt.url",
            "must be mqtt[s]://host[:port] (credentials go into `username`/`password`)",
        ));
    }
    let (host, port) = split_host_port(authority, if tls { 8883 } else { 1883 })
        .map_err(|e| config_error("mqtt.url", e))?;
    if !m.topic.contains("{room}") && !m.topic.contains("{mailbox}") {
        return Err(config_error(
            "mqtt.topic",
            "must contain `{room}` or `{mailbox}` so each room gets its own topic",
        ));
    }
    if m.topic.contains('+') || m.topic.contains('#') || m.topic.starts_with('$') {
        return Err(config_error(
            "mqtt.topic",
            "must not contain the wildcards `+`/`#` or start with `$`",
        ));
    }
    if m.password.is_some() && m.username.is_none() {
        return Err(config_error("mqtt.password", "needs `mqtt.username`"));
    }
    if !tls && m.password.is_some() && !is_loopback(&host) {
        warnings.push(format!(
            "doorsign: `mqtt.url` sends the MQTT password unencrypted to {host}; use mqtts://"
        ));
    }
    if let Some(id) = &m.client_id
        && (id.is_empty() || id.len() > 128)
    {
        return Err(config_error(
            "mqtt.client_id",
            "must be 1 to 128 characters",
        ));
    }
    Ok(MqttEndpoint { host, port, tls })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in an IPv6 address".to_string())?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
            None if tail.is_empty() => default_port,
            None => return Err(format!("unexpected {tail:?} after the address")),
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((
            host.to_string(),
            port.parse().map_err(|_| format!("bad port {port:?}"))?,
        )),
        None => Ok((authority.to_string(), default_port)),
    }
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} has no host (or carries credentials)"));
    }
    Ok(())
}

/// JSON Schema (draft 2020-12) of [`Config`], shown by `calpump plugins`.
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "doorsign sink",
  "type": "object",
  "additionalProperties": false,
  "required": ["out_dir"],
  "properties": {
    "out_dir": { "type": "string", "minLength": 1, "description": "Directory the sink writes to: index.html and index.json, rooms/<id>.json, .html and .png per room, and its state in .state/ (raw events, private subjects included: never serve .state/)." },
    "language": { "enum": ["en", "de"], "default": "en", "description": "Language of the labels on pages and images (en English, de German); also chooses the default private_text." },
    "time_zone": { "type": "string", "description": "IANA time zone in which 'today', the shown times and all-day dates are counted, e.g. Europe/Berlin. Unset: UTC, and `calpump check` warns." },
    "theme": { "enum": ["auto", "light", "dark"], "default": "auto", "description": "Colour scheme of the HTML pages: auto follows the display's prefers-color-scheme, light or dark force one." },
    "refresh_seconds": { "type": "integer", "minimum": 5, "maximum": 86400, "default": 60, "description": "Seconds after which a displayed HTML page reloads itself (meta refresh)." },
    "starting_soon_minutes": { "type": "integer", "minimum": 0, "maximum": 240, "default": 10, "description": "A free room shows 'starting soon' from this many minutes before its next meeting; 0 never." },
    "ending_soon_minutes": { "type": "integer", "minimum": 0, "maximum": 240, "default": 10, "description": "A busy room shows 'ending soon' from this many minutes before it becomes free (the end of back-to-back bookings); 0 never." },
    "stale_after_minutes": { "type": "integer", "minimum": 1, "maximum": 10080, "default": 30, "description": "A room whose calendar has failed to sync for this many minutes shows 'stale' (its schedule stays visible)." },
    "private_text": { "type": "string", "minLength": 1, "description": "Shown instead of the subject of private and confidential meetings, whose organizer is hidden too. Default by language: 'Private appointment' (en), 'Privater Termin' (de)." },
    "hide_subjects": { "type": "boolean", "default": false, "description": "true: no meeting shows its subject, only organizer and times (private meetings still show private_text)." },
    "png": {
      "type": "array",
      "default": [],
      "description": "E-paper image sizes rendered for every room as rooms/<id>-<W>x<H>.png; the first is also written as rooms/<id>.png and is the size OpenEPaperLink tags get by default. None by default.",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["width", "height"],
        "properties": {
          "width": { "type": "integer", "minimum": 64, "maximum": 2048, "description": "Image width in pixels, e.g. 296, 400 or 800." },
          "height": { "type": "integer", "minimum": 64, "maximum": 2048, "description": "Image height in pixels, e.g. 128, 300 or 480; tall images get larger text, a two-line subject and the date." },
          "palette": { "enum": ["bw", "bwr"], "default": "bw", "description": "The panel's colours: bw black and white (1 bit per pixel), bwr black, white and red." }
        }
      }
    },
    "fonts": { "type": "array", "default": [], "items": { "type": "string", "pattern": "\\.([Tt][Tt][FfCc]|[Oo][Tt][FfCc])$" }, "description": "Fallback font files (TTF, OTF or TTC; the first face) for characters the embedded DejaVu Sans lacks, tried in order before the system's fonts." },
    "system_fonts": { "type": "boolean", "default": true, "description": "Also search well-known system font files (Noto Sans CJK, Droid Sans Fallback, Symbola, …) after fonts." },
    "mqtt": {
      "type": "object",
      "additionalProperties": false,
      "required": ["url"],
      "description": "Publish each room's JSON (the content of rooms/<id>.json) to an MQTT broker whenever it changes.",
      "properties": {
        "url": { "type": "string", "pattern": "^mqtts?://", "description": "The broker: mqtt://host[:port] (plain, port 1883 by default) or mqtts://host[:port] (TLS checked against the system's CA certificates, port 8883); no credentials in the URL." },
        "topic": { "type": "string", "default": "calpump/doorsign/{room}", "description": "Topic per room: {room} is replaced by the room's id, {mailbox} by its address; one of them is required, the wildcards + and # are not allowed." },
        "username": { "type": "string", "description": "User name for the broker." },
        "password": { "type": "string", "writeOnly": true, "description": "Password for the broker; needs username. Give it as a secret reference ({ env = \"MQTT_PW\" } or { file = \"…\" }); over plain mqtt:// to a remote host `calpump check` warns." },
        "retain": { "type": "boolean", "default": true, "description": "Publish retained messages, so a display that subscribes later gets each room's current state at once." },
        "client_id": { "type": "string", "minLength": 1, "maxLength": 128, "description": "MQTT client id. Default calpump-doorsign-<pid>-<instance>-<hash of out_dir and topic>, unique per sink so two sinks never knock each other off the broker." }
      }
    },
    "openepaperlink": {
      "type": "object",
      "additionalProperties": false,
      "required": ["url"],
      "description": "Upload each room's image to its e-paper tag through an OpenEPaperLink access point (POST /imgupload) whenever it changes; needs at least one png size.",
      "properties": {
        "url": { "type": "string", "pattern": "^https?://", "description": "The access point's address, e.g. http://192.0.2.10 (the AP speaks plain HTTP)." },
        "dither": { "enum": [0, 1, 2], "default": 0, "description": "Dithering the access point applies to an upload: 0 none (the image is already in the panel's colours), 1 Floyd-Steinberg, 2 ordered." },
        "tags": {
          "type": "object",
          "default": {},
          "description": "Which tag shows which room: room address → tag.",
          "additionalProperties": {
            "description": "The room's tag: its MAC (\"0000021EB5AC3B12\") or a table { mac = \"…\", size = \"400x300\" }.",
            "oneOf": [
              { "type": "string", "pattern": "^([0-9A-Fa-f]{12}|[0-9A-Fa-f]{16})$" },
              {
                "type": "object",
                "additionalProperties": false,
                "required": ["mac"],
                "properties": {
                  "mac": { "type": "string", "pattern": "^([0-9A-Fa-f]{12}|[0-9A-Fa-f]{16})$", "description": "The tag's MAC address: 12 or 16 hexadecimal digits." },
                  "size": { "type": "string", "pattern": "^[0-9]+x[0-9]+$", "description": "The image size to send, \"<width>x<height>\", one of the png sizes; default the first." }
                }
              }
            ]
          }
        }
      }
    },
    "push_retry": {
      "type": "object",
      "additionalProperties": false,
      "default": { "attempts": 6, "initial_ms": 2000, "max_ms": 300000 },
      "description": "Retries of failed MQTT and OpenEPaperLink pushes: with doubling waits, until delivered or superseded by newer content.",
      "properties": {
        "attempts": { "type": "integer", "minimum": 1, "maximum": 100, "default": 6, "description": "Failed attempts before a push is reported as failing (error log, metric outcome failed); it is still retried until delivered or superseded." },
        "initial_ms": { "type": "integer", "minimum": 1, "default": 2000, "description": "Milliseconds before the first retry; the wait doubles after each failure." },
        "max_ms": { "type": "integer", "minimum": 1, "default": 300000, "description": "The longest wait between two retries, in milliseconds; at least initial_ms." }
      }
    },
    "clock": { "type": "string", "format": "date-time", "description": "Freezes the sink's clock at this instant (RFC 3339, e.g. 2026-11-28T09:30:00Z) for reproducible renders (screenshots, tests); leave unset in production." }
  }
}"##;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> serde_json::Value {
        json!({
            "out_dir": "signs",
            "language": "de",
            "time_zone": "Europe/Berlin",
            "theme": "dark",
            "refresh_seconds": 30,
            "starting_soon_minutes": 15,
            "ending_soon_minutes": 5,
            "stale_after_minutes": 20,
            "private_text": "Belegt",
            "hide_subjects": false,
            "png": [{ "width": 296, "height": 128, "palette": "bwr" }, { "width": 800, "height": 480 }],
            "fonts": ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"],
            "system_fonts": false,
            "mqtt": { "url": "mqtt://127.0.0.1:1883", "topic": "site/{room}", "username": "u",
                      "password": "secret", "retain": true, "client_id": "signs" },
            "openepaperlink": { "url": "http://10.0.0.5", "dither": 0,
                                "tags": { "Room-1@Contoso.com": "0000021EB5AC3B12",
                                          "room-2@contoso.com": { "mac": "21EB5AC3B12F", "size": "800x480" } } },
            "push_retry": { "attempts": 3, "initial_ms": 100, "max_ms": 1000 },
            "clock": "2026-11-28T09:00:00Z"
        })
    }

    /// Collects the keys below `schema` (properties, array items, map values and the tables of
    /// `oneOf` variants, as `xtask docs` lists them) that have no non-empty `description`.
    fn described(schema: &serde_json::Value, prefix: &str, missing: &mut Vec<String>) {
        fn has_description(v: &serde_json::Value) -> bool {
            v.get("description")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|d| !d.trim().is_empty())
        }
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, prop) in props {
                let key = format!("{prefix}{name}");
                if !has_description(prop) {
                    missing.push(key.clone());
                }
                described(prop, &format!("{key}."), missing);
                if let Some(items) = prop.get("items") {
                    described(items, &format!("{key}[]."), missing);
                }
                if let Some(values) = prop.get("additionalProperties").filter(|v| v.is_object()) {
                    let child = format!("{key}.<name>");
                    if !has_description(values) {
                        missing.push(child.clone());
                    }
                    described(values, &format!("{child}."), missing);
                }
            }
        }
        if let Some(variants) = schema.get("oneOf").and_then(|v| v.as_array()) {
            for variant in variants {
                described(variant, prefix, missing);
            }
        }
    }

    #[test]
    fn full_config_parses_and_schema_names_every_key() {
        let (settings, warnings) = parse(&full()).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(settings.tz, chrono_tz::Europe::Berlin);
        assert_eq!(
            settings.oepl_tags.get("room-1@contoso.com"),
            Some(&("0000021EB5AC3B12".to_string(), 0))
        );
        assert_eq!(
            settings.oepl_tags.get("room-2@contoso.com"),
            Some(&("21EB5AC3B12F".to_string(), 1))
        );
        assert_eq!(
            settings.mqtt,
            Some(MqttEndpoint {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            })
        );
        assert!(!format!("{:?}", settings.config).contains("secret"));

        let schema: serde_json::Value =
            serde_json::from_str(CONFIG_SCHEMA).expect("schema is JSON");
        let props = schema["properties"].as_object().expect("properties");
        let full = full();
        for key in full.as_object().expect("object").keys() {
            assert!(props.contains_key(key), "schema lacks `{key}`");
        }
        for key in props.keys() {
            assert!(full.get(key).is_some(), "example lacks schema key `{key}`");
        }
        // Every key the generated configuration reference lists has a description.
        let mut undescribed = Vec::new();
        described(&schema, "", &mut undescribed);
        assert!(
            undescribed.is_empty(),
            "keys without a description: {undescribed:?}"
        );
        for (section, example) in [
            ("mqtt", &full["mqtt"]),
            ("push_retry", &full["push_retry"]),
            ("openepaperlink", &full["openepaperlink"]),
        ] {
            let section_props = props[section]["properties"].as_object().expect("section");
            for key in example.as_object().expect("obj").keys() {
                assert!(
                    section_props.contains_key(key),
                    "schema lacks `{section}.{key}`"
                );
            }
            assert_eq!(
                section_props.len(),
                example.as_object().map(|o| o.len()).unwrap_or(0),
                "{section}"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (json!({}), "out_dir"),
            (json!({"out_dir": "x", "colour": "red"}), "colour"),
            (
                json!({"out_dir": "x", "mqtt": {"url": "mqtt://h", "retian": true}}),
                "retian",
            ),
            (
                json!({"out_dir": "x", "time_zone": "Mars/Olympus"}),
                "`time_zone`",
            ),
            (json!({"out_dir": "x", "language": "fr"}), "`language`"),
            (
                json!({"out_dir": "x", "png": [{"width": 10, "height": 128}]}),
                "`png[0]`",
            ),
            (
                json!({"out_dir": "x", "png": [{"width": 296, "height": 128}, {"width": 296, "height": 128, "palette": "bwr"}]}),
                "`png[1]`",
            ),
            (
                json!({"out_dir": "x", "mqtt": {"url": "http://h"}}),
                "`mqtt.url`",
            ),
            (
                json!({"out_dir": "x", "mqtt": {"url": "mqtt://h", "topic": "all"}}),
                "`mqtt.topic`",
            ),
            (
                json!({"out_dir": "x", "mqtt": {"url": "mqtt://h", "topic": "a/+/{room}"}}),
                "`mqtt.topic`",
            ),
            (
                json!({"out_dir": "x", "png": [{"width": 296, "height": 128}], "openepaperlink": {"url": "http://ap", "tags": {"room@x": "nothex"}}}),
                "openepaperlink.tags",
            ),
            (
                json!({"out_dir": "x", "png": [{"width": 296, "height": 128}], "openepaperlink": {"url": "http://ap", "tags": {"room@x": {"mac": "0000021EB5AC3B12", "size": "1x1"}}}}),
                ".size",
            ),
            (
                json!({"out_dir": "x", "openepaperlink": {"url": "http://ap", "tags": {"room@x": "0000021EB5AC3B12"}}}),
                "`openepaperlink`",
            ),
            // The table form of a tag refuses unknown keys by name …
            (
                json!({"out_dir": "x", "png": [{"width": 400, "height": 300}], "openepaperlink": {"url": "http://ap", "tags": {"room@x": {"mac": "0000021EB5AC3B12", "sise": "400x300"}}}}),
                "unknown field `sise`, expected `mac` or `size`",
            ),
            (
                json!({"out_dir": "x", "png": [{"width": 400, "height": 300}], "openepaperlink": {"url": "http://ap", "tags": {"room@x": {"size": "400x300"}}}}),
                "missing field `mac`",
            ),
            // … and a wrong type says what a tag is.
            (
                json!({"out_dir": "x", "png": [{"width": 400, "height": 300}], "openepaperlink": {"url": "http://ap", "tags": {"x": 42}}}),
                "`openepaperlink.tags.x`: invalid type: integer `42`, expected a tag MAC",
            ),
            (
                json!({"out_dir": "x", "png": [{"width": 400, "height": 300}], "openepaperlink": {"url": "http://ap", "tags": {"x": ["0000021EB5AC3B12"]}}}),
                "expected a tag MAC (\"0000021EB5AC3B12\") or a table",
            ),
            (
                json!({"out_dir": "x", "fonts": ["/etc/passwd"]}),
                "`fonts[0]`",
            ),
            (
                json!({"out_dir": "x", "refresh_seconds": 0}),
                "`refresh_seconds`",
            ),
            (
                json!({"out_dir": "x", "push_retry": {"attempts": 0}}),
                "`push_retry.attempts`",
            ),
        ];
        for (value, needle) in cases {
            let err = parse(&value).expect_err(&format!("{value} must be refused"));
            assert_eq!(err.kind, calpump_plugin::SinkErrorKind::Config);
            assert!(
                err.message.contains(needle),
                "{:?} should name {needle}",
                err.message
            );
        }
    }

    #[test]
    fn defaults_and_warnings() {
        let (settings, warnings) = parse(&json!({"out_dir": "x"})).expect("valid");
        assert_eq!(settings.tz, Tz::UTC);
        assert_eq!(settings.private_text, "Private appointment");
        assert_eq!(settings.config.refresh_seconds, 60);
        assert!(warnings.iter().any(|w| w.contains("time_zone")));
        let (settings, _) =
            parse(&json!({"out_dir": "x", "language": "de", "time_zone": "UTC"})).expect("valid");
        assert_eq!(settings.private_text, "Privater Termin");
        let (_, warnings) = parse(&json!({"out_dir": "x", "time_zone": "UTC",
            "mqtt": {"url": "mqtt://broker.example.com", "username": "u", "password": "p"}}))
        .expect("valid");
        assert!(warnings.iter().any(|w| w.contains("unencrypted")));
        assert!(!warnings.iter().any(|w| w.contains("\"p\"")));
    }
}
