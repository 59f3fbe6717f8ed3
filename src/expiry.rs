//! The expiry of each profile's secrets and certificates, read from the profile tables without
//! building a backend: `secret_expires` (at the profile's top level or inside `auth`) and the
//! `notAfter` of a configured `certificate` (top level or inside `auth`). Computed with
//! backend-common's `expiry` module (warning 30 days ahead, error once expired) and shared by
//! `profile list`, `profile test`, `check` and the daemon (log, `/status`, the gauge
//! `calpump_secret_expiry_days`).

use std::path::Path;

use calpump_backend_common::expiry::{ExpiryStatus, check_date, check_instant, toml_date};
use calpump_backend_common::oauth::cert::ClientCertificate;
use calpump_engine::config::Config;
use calpump_engine::daemon::expiry::SecretExpiry;
use chrono::Utc;

/// What expires in one profile, as of now. An unreadable certificate or date is left to
/// `check` (it reports those as errors).
pub fn of_profile(name: &str, settings: &toml::Table) -> Vec<SecretExpiry> {
    let now = Utc::now();
    let auth = settings.get("auth").and_then(toml::Value::as_table);
    let mut statuses: Vec<ExpiryStatus> = Vec::new();
    for table in [Some(settings), auth].into_iter().flatten() {
        if let Some(value) = table.get("secret_expires")
            && let Ok(date) = toml_date::parse(value)
        {
            statuses.push(check_date(
                "the secret (secret_expires)",
                date,
                now.date_naive(),
            ));
        }
        if let Some(path) = table.get("certificate").and_then(toml::Value::as_str)
            && let Ok(cert) = ClientCertificate::load(Path::new(path))
        {
            statuses.push(check_instant(&cert.describe(), cert.not_after(), now));
        }
    }
    statuses
        .into_iter()
        .map(|s| SecretExpiry {
            profile: name.to_string(),
            what: s.what,
            expires: s.expires,
            days_left: s.days_left,
            diagnostic: s.diagnostic,
        })
        .collect()
}

/// Every profile's expiry.
pub fn of_config(config: &Config) -> Vec<SecretExpiry> {
    config
        .profiles
        .iter()
        .flat_map(|(name, p)| of_profile(name, &p.settings))
        .collect()
}
