//! A sink's settings as the plugin gets them: the `[sinks.<name>]` table (without `plugin`) as
//! JSON, with every secret reference replaced by its value.
//!
//! A secret reference is a table with exactly one key, `env`, `file` or `encrypted`, whose value
//! is a string (`password = { env = "DB_PW" }`), at any depth. TOML datetimes become their
//! RFC 3339 text.

use crate::diagnostics::{Diagnostic, catalogue};
use crate::secret::{SecretRef, SecretResolver};

/// A secret reference in a sink's settings that could not be resolved.
#[derive(Debug, Clone)]
pub struct SettingsIssue {
    /// Key path relative to the sink's table (`password`, `push.mqtt.password`).
    pub path: String,
    /// What is wrong, naming the reference (never a value).
    pub message: String,
    pub diagnostic: Diagnostic,
}

/// The settings as JSON with secrets resolved, or every reference that failed.
pub fn resolve_settings(
    settings: &toml::Table,
    resolver: &SecretResolver,
) -> Result<serde_json::Value, Vec<SettingsIssue>> {
    let mut issues = Vec::new();
    let mut out = serde_json::Map::new();
    for (key, value) in settings {
        out.insert(key.clone(), convert(value, key, resolver, &mut issues));
    }
    if issues.is_empty() {
        Ok(serde_json::Value::Object(out))
    } else {
        Err(issues)
    }
}

/// Reads a value as a secret reference, if it has the shape of one.
fn as_secret_ref(value: &toml::Value) -> Option<SecretRef> {
    let table = value.as_table()?;
    if table.len() != 1 {
        return None;
    }
    let (kind, inner) = table.iter().next()?;
    let inner = inner.as_str()?;
    match kind.as_str() {
        "env" => Some(SecretRef::Env(inner.to_string())),
        "file" => Some(SecretRef::File(inner.into())),
        "encrypted" => Some(SecretRef::Encrypted(inner.to_string())),
        _ => None,
    }
}

fn convert(
    value: &toml::Value,
    path: &str,
    resolver: &SecretResolver,
    issues: &mut Vec<SettingsIssue>,
) -> serde_json::Value {
    if let Some(reference) = as_secret_ref(value) {
        return match resolver.resolve(&reference) {
            Ok(secret) => serde_json::Value::String(secret.expose().to_string()),
            Err(err) => {
                let message = err.to_string();
                issues.push(SettingsIssue {
                    path: path.to_string(),
                    diagnostic: Diagnostic::new(
                        &catalogue::general::SECRET_MISSING,
                        message.clone(),
                    ),
                    message,
                });
                serde_json::Value::Null
            }
        };
    }
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| convert(v, &format!("{path}[{i}]"), resolver, issues))
                .collect(),
        ),
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        convert(v, &format!("{path}.{k}"), resolver, issues),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_resolved_at_any_depth_and_failures_name_their_key() {
        // SAFETY: test-only environment change of a variable no other test reads.
        unsafe { std::env::set_var("CALPUMP_SETTINGS_TEST_PW", "pw-from-env-1") };
        let table: toml::Table = toml::from_str(
            r#"
            url = "sqlite://x.db"
            password = { env = "CALPUMP_SETTINGS_TEST_PW" }
            sizes = [1, 2]
            when = 2027-03-19
            push = { mqtt = { password = { env = "CALPUMP_SETTINGS_TEST_UNSET" }, host = "h" } }
            "#,
        )
        .expect("toml");
        let resolver = SecretResolver::new("/nonexistent/key");
        let issues = resolve_settings(&table, &resolver).expect_err("one unset");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "push.mqtt.password");
        assert!(issues[0].message.contains("CALPUMP_SETTINGS_TEST_UNSET"));
        assert_eq!(issues[0].diagnostic.code(), "secret.Missing");

        let mut ok = table.clone();
        ok.remove("push");
        let json = resolve_settings(&ok, &resolver).expect("resolved");
        assert_eq!(json["password"], "pw-from-env-1");
        assert_eq!(json["sizes"][1], 2);
        assert_eq!(json["when"], "2027-03-19");
    }
}
