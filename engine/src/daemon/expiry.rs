//! Secret and certificate expiry while the daemon runs: logged at start and once a day (a
//! warning 30 days ahead, an error once expired), shown in `/status` (`secrets`) and exported
//! as the gauge `calpump_secret_expiry_days{profile}` (the fewest days left of the profile's
//! secrets and certificates; negative once expired).
//!
//! The engine knows no backend, so it does not read profiles itself: the binary hands the
//! daemon an [`ExpiryCheck`] that computes the current state (with backend-common's `expiry`
//! module) each time it is called.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde::Serialize;

use super::App;
use crate::diagnostics::Diagnostic;
use crate::diagnostics::catalogue::general;
use crate::shutdown::Shutdown;

/// The gauge's name.
pub const METRIC: &str = "calpump_secret_expiry_days";

/// How often the state is computed again (the gauge and `/status` follow the calendar day).
const REFRESH: Duration = Duration::from_secs(3600);

/// The expiry of one secret or certificate of one profile, as of the call.
#[derive(Debug, Clone, Serialize)]
pub struct SecretExpiry {
    pub profile: String,
    /// What expires (`"the client secret (secret_expires)"`, `"certificate CN=… (thumbprint …)"`).
    pub what: String,
    pub expires: NaiveDate,
    /// Whole days left: 0 = today, negative = expired that many days ago.
    pub days_left: i64,
    /// `secret.ExpiresSoon` or `secret.Expired`; `None` while more than 30 days are left.
    pub diagnostic: Option<Diagnostic>,
}

impl SecretExpiry {
    /// `"ok"`, `"expires_soon"` or `"expired"`.
    pub fn status(&self) -> &'static str {
        match &self.diagnostic {
            None => "ok",
            Some(d) if d.code() == general::SECRET_EXPIRED.code => "expired",
            Some(_) => "expires_soon",
        }
    }
}

/// Computes the expiry of every profile's secrets and certificates, now.
pub type ExpiryCheck = Arc<dyn Fn() -> Vec<SecretExpiry> + Send + Sync>;

/// Runs the check, stores the result for `/status` and sets the gauge.
pub(crate) fn refresh(app: &App, check: &ExpiryCheck) -> Vec<SecretExpiry> {
    let list = check();
    let mut fewest: BTreeMap<&str, i64> = BTreeMap::new();
    for item in &list {
        let days = fewest
            .entry(item.profile.as_str())
            .or_insert(item.days_left);
        *days = (*days).min(item.days_left);
    }
    let metrics = crate::metrics::global();
    for (profile, days) in fewest {
        metrics.gauge_set(
            METRIC,
            "Days until the profile's secret or certificate expires (negative: expired).",
            &[("profile", profile)],
            days as f64,
        );
    }
    match app.secrets.lock() {
        Ok(mut stored) => *stored = list.clone(),
        Err(p) => *p.into_inner() = list.clone(),
    }
    list
}

/// One log line per secret: error when expired, warning within 30 days, info otherwise.
pub(crate) fn log(list: &[SecretExpiry]) {
    for item in list {
        match (&item.diagnostic, item.status()) {
            (Some(d), "expired") => tracing::error!(
                profile = %item.profile,
                code = d.code(),
                days_left = item.days_left,
                expires = %item.expires,
                remedy = d.info().en.remedy,
                "{}",
                d.detail()
            ),
            (Some(d), _) => tracing::warn!(
                profile = %item.profile,
                code = d.code(),
                days_left = item.days_left,
                expires = %item.expires,
                remedy = d.info().en.remedy,
                "{}",
                d.detail()
            ),
            (None, _) => tracing::info!(
                profile = %item.profile,
                days_left = item.days_left,
                expires = %item.expires,
                "{} expires in {} days",
                item.what,
                item.days_left
            ),
        }
    }
}

/// At start and every hour: refresh; log at start and whenever the date changed.
pub(crate) async fn expiry_loop(app: Arc<App>, check: ExpiryCheck, mut shutdown: Shutdown) {
    let mut logged_on: Option<NaiveDate> = None;
    loop {
        let list = refresh(&app, &check);
        let today = Utc::now().date_naive();
        if logged_on != Some(today) {
            log(&list);
            logged_on = Some(today);
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.wait() => break,
        }
    }
}

/// The `secrets` part of `/status`.
pub(crate) fn status_json(app: &App) -> serde_json::Value {
    let list = match app.secrets.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    serde_json::Value::Array(
        list.iter()
            .map(|s| {
                serde_json::json!({
                    "profile": s.profile,
                    "what": s.what,
                    "expires": s.expires,
                    "days_left": s.days_left,
                    "status": s.status(),
                    "code": s.diagnostic.as_ref().map(Diagnostic::code),
                    "title": s.diagnostic.as_ref().map(|d| d.info().en.title),
                    "detail": s.diagnostic.as_ref().map(|d| d.detail().to_string()),
                    "remedy": s.diagnostic.as_ref().map(|d| d.info().en.remedy),
                })
            })
            .collect(),
    )
}
