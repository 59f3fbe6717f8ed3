//! Secrets: references in the config, and values that never print.
//!
//! A secret in the config is a reference — `{ env = "VAR" }`, `{ file = "path" }` or
//! `{ encrypted = "cp1:…" }` (ChaCha20-Poly1305 under the key file made by `calpump init`) — or,
//! discouraged, a plain string (`check` warns). Resolved values are [`Secret`]s: their `Debug` and
//! `Display` print `[redacted]`, and they are wiped from memory when dropped.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A resolved secret value. Never printed, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value, for the one place that must send it (a token request, an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from, as written in the config.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{ env = "VAR" }`
    Env(String),
    /// `{ file = "path" }` — the file's content, trailing newline trimmed.
    File(PathBuf),
    /// `{ encrypted = "cp1:…" }`
    Encrypted(String),
    /// A plain string in the config file (works, but `check` warns).
    Plain(Secret),
}

impl SecretRef {
    /// How the reference reads in messages — never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(var) => format!("environment variable {var}"),
            SecretRef::File(path) => format!("file {}", path.display()),
            SecretRef::Encrypted(_) => "encrypted value".to_string(),
            SecretRef::Plain(_) => "plain value in the config".to_string(),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(var) => write!(f, "SecretRef::Env({var:?})"),
            SecretRef::File(path) => write!(f, "SecretRef::File({path:?})"),
            SecretRef::Encrypted(_) => f.write_str("SecretRef::Encrypted([redacted])"),
            SecretRef::Plain(_) => f.write_str("SecretRef::Plain([redacted])"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl<'de> Visitor<'de> for RefVisitor {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret: { env = \"VAR\" }, { file = \"path\" }, { encrypted = \"cp1:…\" } or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretRef, E> {
                Ok(SecretRef::Plain(Secret::new(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<SecretRef, E> {
                Ok(SecretRef::Plain(Secret::new(v)))
            }
            // A password written without quotes is refused without repeating it (serde's own
            // message would: "invalid type: integer `12345678`").
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(de::Error::invalid_type(
                    de::Unexpected::Other("a number"),
                    &self,
                ))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(de::Error::invalid_type(
                    de::Unexpected::Other("a number"),
                    &self,
                ))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
                Err(de::Error::invalid_type(
                    de::Unexpected::Other("a number"),
                    &self,
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let Some(kind) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "empty secret table: write { env = \"VAR\" }, { file = \"path\" } or { encrypted = \"…\" }",
                    ));
                };
                let value: String = map.next_value()?;
                let result = match kind.as_str() {
                    "env" => SecretRef::Env(value),
                    "file" => SecretRef::File(PathBuf::from(value)),
                    "encrypted" => SecretRef::Encrypted(value),
                    other => {
                        return Err(de::Error::unknown_field(
                            other,
                            &["env", "file", "encrypted"],
                        ));
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "a secret table has exactly one key; `{extra}` is one too many"
                    )));
                }
                Ok(result)
            }
        }
        deserializer.deserialize_any(RefVisitor)
    }
}

/// Schema of a secret reference for the configuration reference: exactly one of `env`, `file`,
/// `encrypted`, or (discouraged, `check` warns) a plain string.
impl schemars::JsonSchema for SecretRef {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "secret",
            "description": "A secret reference: `{ env = \"VAR\" }` (an environment variable), `{ file = \"path\" }` (the file's content, trailing newline trimmed) or `{ encrypted = \"cp1:…\" }` (made by `calpump secret encrypt`, decrypted with `[secrets] key_file`). A plain string works but `calpump check` warns. The value never appears in logs, `--json` output or error texts.",
            "oneOf": [
                { "type": "object", "additionalProperties": false, "required": ["env"],
                  "properties": { "env": { "type": "string", "description": "Name of an environment variable holding the secret." } } },
                { "type": "object", "additionalProperties": false, "required": ["file"],
                  "properties": { "file": { "type": "string", "description": "Path of a file holding the secret." } } },
                { "type": "object", "additionalProperties": false, "required": ["encrypted"],
                  "properties": { "encrypted": { "type": "string", "pattern": "^cp1:", "description": "Output of `calpump secret encrypt`." } } },
                { "type": "string", "description": "The secret itself (discouraged)." }
            ],
            "examples": [{ "env": "CALPUMP_CLOUD_SECRET" }, { "file": "/etc/calpump/secret" }]
        })
    }
}

impl Serialize for SecretRef {
    /// Serialises the reference, never a plain value (written as `[redacted]`).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            SecretRef::Env(v) => map.serialize_entry("env", v)?,
            SecretRef::File(v) => map.serialize_entry("file", v)?,
            SecretRef::Encrypted(v) => map.serialize_entry("encrypted", v)?,
            SecretRef::Plain(_) => map.serialize_entry("plain", "[redacted]")?,
        }
        map.end()
    }
}

/// Why a secret cannot be read. Texts name the reference, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret file {0} is empty")]
    FileEmpty(PathBuf),
    #[error("cannot read the key file {path} for encrypted secrets: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "encrypted secret cannot be decrypted with key file {0} (another key, or the value was altered)"
    )]
    Decrypt(PathBuf),
    #[error("encrypted secret is not in the `cp1:` format `calpump secret encrypt` writes")]
    Format,
    #[error("cannot write key file {path}: {source}")]
    KeyWrite {
        path: PathBuf,
        source: std::io::Error,
    },
}

const ENCRYPTED_PREFIX: &str = "cp1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Resolves secret references. Encrypted values need the key file.
#[derive(Debug, Clone)]
pub struct SecretResolver {
    key_file: PathBuf,
}

impl SecretResolver {
    pub fn new(key_file: impl Into<PathBuf>) -> Self {
        Self {
            key_file: key_file.into(),
        }
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    pub fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let secret = self.resolve_inner(reference)?;
        remember_for_redaction(&secret);
        Ok(secret)
    }

    fn resolve_inner(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        match reference {
            SecretRef::Plain(secret) => Ok(secret.clone()),
            SecretRef::Env(var) => match std::env::var(var) {
                Ok(value) if value.is_empty() => Err(SecretError::EnvEmpty(var.clone())),
                Ok(value) => Ok(Secret::new(value)),
                Err(_) => Err(SecretError::EnvMissing(var.clone())),
            },
            SecretRef::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                let text = Zeroizing::new(text);
                let trimmed = text.trim_end_matches(['\n', '\r']);
                if trimmed.is_empty() {
                    return Err(SecretError::FileEmpty(path.clone()));
                }
                Ok(Secret::new(trimmed))
            }
            SecretRef::Encrypted(value) => self.decrypt(value),
        }
    }

    fn load_key(&self) -> Result<Zeroizing<[u8; KEY_LEN]>, SecretError> {
        let text = std::fs::read_to_string(&self.key_file).map_err(|e| SecretError::KeyFile {
            path: self.key_file.clone(),
            reason: e.to_string(),
        })?;
        let bytes =
            Zeroizing::new(
                BASE64
                    .decode(text.trim())
                    .map_err(|_| SecretError::KeyFile {
                        path: self.key_file.clone(),
                        reason: "not base64".to_string(),
                    })?,
            );
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(SecretError::KeyFile {
                path: self.key_file.clone(),
                reason: format!("{} bytes, {KEY_LEN} expected", bytes.len()),
            });
        }
        key.copy_from_slice(&bytes);
        Ok(key)
    }

    /// Creates the key file (mode 0600) unless it exists. Returns whether it was created.
    pub fn ensure_key_file(&self) -> Result<bool, SecretError> {
        if self.key_file.exists() {
            return Ok(false);
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, key.as_mut());
        let text = Zeroizing::new(format!("{}\n", BASE64.encode(key.as_ref())));
        write_private_file(&self.key_file, text.as_bytes()).map_err(|source| {
            SecretError::KeyWrite {
                path: self.key_file.clone(),
                source,
            }
        })?;
        Ok(true)
    }

    /// Encrypts a value into the `cp1:` form for `{ encrypted = "…" }`.
    pub fn encrypt(&self, plaintext: &Secret) -> Result<String, SecretError> {
        let key = self.load_key()?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.expose().as_bytes())
            .map_err(|_| SecretError::Decrypt(self.key_file.clone()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{ENCRYPTED_PREFIX}{}", BASE64.encode(out)))
    }

    fn decrypt(&self, value: &str) -> Result<Secret, SecretError> {
        let body = value
            .trim()
            .strip_prefix(ENCRYPTED_PREFIX)
            .ok_or(SecretError::Format)?;
        let bytes = BASE64.decode(body).map_err(|_| SecretError::Format)?;
        if bytes.len() <= NONCE_LEN {
            return Err(SecretError::Format);
        }
        let key = self.load_key()?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), sealed)
                .map_err(|_| SecretError::Decrypt(self.key_file.clone()))?,
        );
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Format)?;
        Ok(Secret::new(text))
    }
}

/// Values that must never appear in text this process prints: every secret resolved through
/// [`SecretResolver::resolve`] is remembered here, and text that comes from outside the engine's
/// control (a plugin's log lines and error texts) passes through [`redact`] before it is logged
/// or shown. Values shorter than four characters are not remembered (they would mangle text).
fn redaction_list() -> &'static std::sync::RwLock<Vec<Secret>> {
    static LIST: std::sync::OnceLock<std::sync::RwLock<Vec<Secret>>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| std::sync::RwLock::new(Vec::new()))
}

/// Remembers a value for [`redact`].
pub fn remember_for_redaction(secret: &Secret) {
    if secret.expose().chars().count() < 4 {
        return;
    }
    if let Ok(mut list) = redaction_list().write()
        && !list.iter().any(|s| s == secret)
    {
        list.push(secret.clone());
    }
}

/// Replaces every remembered secret value in `text` with `[redacted]`.
pub fn redact(text: &str) -> String {
    let Ok(list) = redaction_list().read() else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for secret in list.iter() {
        if out.contains(secret.expose()) {
            out = out.replace(secret.expose(), "[redacted]");
        }
    }
    out
}

/// Writes a file readable by its owner only (0600 on Unix), refusing to overwrite.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-marker");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let r = SecretRef::Plain(s);
        assert!(!format!("{r:?}").contains("hunter2"));
        let json = serde_json::to_string(&r).expect("json");
        assert!(!json.contains("hunter2"));
    }

    #[test]
    fn resolved_values_are_redacted_from_foreign_text() {
        let resolver = SecretResolver::new("/nonexistent/key");
        let secret = resolver
            .resolve(&SecretRef::Plain(Secret::new("marker-Zq81-value")))
            .expect("plain");
        let text = format!("connect failed for postgres://u:{}@db", secret.expose());
        assert_eq!(
            redact(&text),
            "connect failed for postgres://u:[redacted]@db"
        );
        assert_eq!(redact("abc"), "abc");
    }

    #[test]
    fn references_parse_from_toml() {
        #[derive(Deserialize)]
        struct T {
            a: SecretRef,
            b: SecretRef,
            c: SecretRef,
            d: SecretRef,
        }
        let t: T = toml::from_str(
            "a = { env = \"X\" }\nb = { file = \"/p\" }\nc = { encrypted = \"cp1:AA\" }\nd = \"plain\"",
        )
        .expect("parse");
        assert_eq!(t.a, SecretRef::Env("X".into()));
        assert_eq!(t.b, SecretRef::File("/p".into()));
        assert_eq!(t.c, SecretRef::Encrypted("cp1:AA".into()));
        assert!(matches!(t.d, SecretRef::Plain(_)));
        let bad = toml::from_str::<T>("a = { vault = \"X\" }\nb=\"\"\nc=\"\"\nd=\"\"");
        assert!(bad.is_err());
    }

    #[test]
    fn encrypt_round_trip_with_private_key_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let resolver = SecretResolver::new(dir.path().join("calpump.key"));
        assert!(resolver.ensure_key_file().expect("key"));
        assert!(!resolver.ensure_key_file().expect("key exists"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(resolver.key_file())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = resolver.encrypt(&Secret::new("s3cret")).expect("encrypt");
        assert!(sealed.starts_with("cp1:") && !sealed.contains("s3cret"));
        let back = resolver
            .resolve(&SecretRef::Encrypted(sealed.clone()))
            .expect("decrypt");
        assert_eq!(back.expose(), "s3cret");

        let other = SecretResolver::new(dir.path().join("other.key"));
        other.ensure_key_file().expect("key");
        assert!(matches!(
            other.resolve(&SecretRef::Encrypted(sealed)),
            Err(SecretError::Decrypt(_))
        ));
    }

    #[test]
    fn a_password_without_quotes_is_refused_without_showing_it() {
        #[derive(Debug, Deserialize)]
        struct T {
            #[allow(dead_code)]
            password: SecretRef,
        }
        for text in ["password = 778177817781", "password = 7781.7781"] {
            let err = toml::from_str::<T>(text).expect_err("a number is no secret");
            let message = err.message().to_string();
            assert!(message.contains("a number"), "{message}");
            assert!(!message.contains("7781"), "{message}");
        }
    }

    #[test]
    fn env_and_file_errors_name_the_reference() {
        let resolver = SecretResolver::new("/nonexistent/key");
        let err = resolver
            .resolve(&SecretRef::Env("CALPUMP_TEST_SURELY_UNSET_VAR".into()))
            .expect_err("unset");
        assert!(err.to_string().contains("CALPUMP_TEST_SURELY_UNSET_VAR"));
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("pw");
        std::fs::write(&path, "pw-value\n").expect("write");
        let secret = resolver.resolve(&SecretRef::File(path)).expect("file");
        assert_eq!(secret.expose(), "pw-value");
    }
}
