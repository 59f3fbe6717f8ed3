//! Secret and certificate expiry: a warning (`secret.ExpiresSoon`) 30 days ahead, an error
//! (`secret.Expired`) after, and the days left for a metric.
//!
//! ```
//! use calpump_backend_common::expiry::{check_date, Expiry};
//! use chrono::NaiveDate;
//! let today = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
//! let status = check_date("client secret", NaiveDate::from_ymd_opt(2027, 3, 19).unwrap(), today);
//! assert_eq!(status.days_left, 18);
//! assert!(matches!(status.level(), Expiry::Soon));
//! ```

use calpump_engine::config::ConfigIssue;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Warn this many days ahead (inclusive).
pub const WARN_DAYS: i64 = 30;

/// How close an expiry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// More than [`WARN_DAYS`] away.
    Fine,
    /// Within [`WARN_DAYS`], today included.
    Soon,
    /// In the past.
    Expired,
}

/// The expiry of one secret or certificate.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiryStatus {
    /// What expires, as shown to the admin (`"client secret (secret_expires)"`,
    /// `"certificate CN=calpump (thumbprint 3A…)"`).
    pub what: String,
    /// The expiry as a date (UTC).
    pub expires: NaiveDate,
    /// Whole days left: 0 = expires today, negative = expired that many days ago.
    pub days_left: i64,
    /// `secret.ExpiresSoon` or `secret.Expired`, `None` when fine.
    pub diagnostic: Option<Diagnostic>,
}

impl ExpiryStatus {
    pub fn level(&self) -> Expiry {
        match &self.diagnostic {
            None => Expiry::Fine,
            Some(d) if d.code() == general::SECRET_EXPIRED.code => Expiry::Expired,
            Some(_) => Expiry::Soon,
        }
    }

    pub fn is_expired(&self) -> bool {
        self.level() == Expiry::Expired
    }

    /// As a config issue for `calpump check` (a warning when soon, an error when expired),
    /// at the key `path`.
    pub fn config_issue(&self, path: &str) -> Option<ConfigIssue> {
        let diagnostic = self.diagnostic.as_ref()?;
        let message = format!("[{}] {}", diagnostic.code(), diagnostic.detail());
        Some(match self.level() {
            Expiry::Expired => ConfigIssue::error(path, message),
            _ => ConfigIssue::warning(path, message),
        })
    }
}

/// The status that needs attention first (fewest days left), for `profile test` and the
/// days-left metric.
pub fn soonest(statuses: &[ExpiryStatus]) -> Option<&ExpiryStatus> {
    statuses.iter().min_by_key(|s| s.days_left)
}

fn status(what: &str, expires: NaiveDate, days_left: i64, expired: bool) -> ExpiryStatus {
    let when = match days_left {
        _ if expired && days_left <= 0 => {
            let ago = -days_left;
            match ago {
                0 => format!("{what} expired today ({expires})"),
                1 => format!("{what} expired yesterday ({expires})"),
                n => format!("{what} expired {n} days ago ({expires})"),
            }
        }
        0 => format!("{what} expires today ({expires})"),
        1 => format!("{what} expires tomorrow ({expires})"),
        n => format!("{what} expires in {n} days ({expires})"),
    };
    let diagnostic = if expired {
        Some(Diagnostic::new(&general::SECRET_EXPIRED, when))
    } else if days_left <= WARN_DAYS {
        Some(Diagnostic::new(&general::SECRET_EXPIRES_SOON, when))
    } else {
        None
    };
    ExpiryStatus {
        what: what.to_string(),
        expires,
        days_left,
        diagnostic,
    }
}

/// A date without a time (`secret_expires = 2027-03-19`): valid through that day, expired from
/// the day after.
pub fn check_date(what: &str, expires: NaiveDate, today: NaiveDate) -> ExpiryStatus {
    let days_left = (expires - today).num_days();
    status(what, expires, days_left, days_left < 0)
}

/// An instant (a certificate's notAfter): expired from that instant on. `days_left` counts
/// whole days and is negative once expired.
pub fn check_instant(what: &str, not_after: DateTime<Utc>, now: DateTime<Utc>) -> ExpiryStatus {
    let left = not_after - now;
    let expired = left <= chrono::Duration::zero();
    let days_left = if expired {
        // Round towards the past: expired 1 s ago is "-0" → 0 days, shown as "today".
        -((now - not_after).num_days())
    } else {
        left.num_days()
    };
    status(what, not_after.date_naive(), days_left, expired)
}

/// Serde for `secret_expires`: a TOML date (`2027-03-19`), a TOML date-time (its date is
/// used) or a string `"2027-03-19"`. Use as
/// A date as the config writes it (`2027-03-19`, a TOML date, or the same as a string). Schema
/// only: `Option<NaiveDate>` fields read with [`toml_date`] use it through `#[schemars(with)]`.
pub struct TomlDate;

impl schemars::JsonSchema for TomlDate {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TomlDate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "date",
            "type": "string",
            "format": "date",
            "description": "A date: a TOML date (`2027-03-19`, unquoted) or the same as a string.",
            "examples": ["2027-03-19"]
        })
    }
}

/// `#[serde(default, with = "calpump_backend_common::expiry::toml_date")]` on an
/// `Option<NaiveDate>`.
pub mod toml_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDate>, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        parse(&value).map(Some).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(
        value: &Option<NaiveDate>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(date) => serializer.serialize_str(&date.format("%Y-%m-%d").to_string()),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a date from a TOML value.
    pub fn parse(value: &toml::Value) -> Result<NaiveDate, String> {
        let hint = "write a date like 2027-03-19";
        match value {
            toml::Value::Datetime(dt) => {
                let date = dt
                    .date
                    .ok_or_else(|| format!("`{dt}` has no date: {hint}"))?;
                NaiveDate::from_ymd_opt(
                    i32::from(date.year),
                    u32::from(date.month),
                    u32::from(date.day),
                )
                .ok_or_else(|| format!("`{dt}` is not a valid date"))
            }
            toml::Value::String(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map_err(|_| format!("`{text}` is not a date: {hint}")),
            other => Err(format!(
                "expected a date, found {}: {hint}",
                other.type_str()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn dates_warn_30_days_ahead_and_fail_after() {
        let expires = d(2027, 3, 19);
        let cases = [
            (31, Expiry::Fine),
            (30, Expiry::Soon),
            (1, Expiry::Soon),
            (0, Expiry::Soon),
            (-1, Expiry::Expired),
        ];
        for (days, level) in cases {
            let today = expires - chrono::Duration::days(days);
            let status = check_date("client secret", expires, today);
            assert_eq!(status.days_left, days, "days {days}");
            assert_eq!(status.level(), level, "days {days}");
            match level {
                Expiry::Fine => assert!(status.diagnostic.is_none()),
                Expiry::Soon => {
                    let diag = status.diagnostic.as_ref().expect("diag");
                    assert_eq!(diag.code(), "secret.ExpiresSoon");
                    assert!(diag.detail().contains("2027-03-19"), "{}", diag.detail());
                    let issue = status.config_issue("secret_expires").expect("issue");
                    assert!(!issue.is_error());
                }
                Expiry::Expired => {
                    let diag = status.diagnostic.as_ref().expect("diag");
                    assert_eq!(diag.code(), "secret.Expired");
                    assert!(diag.detail().contains("yesterday"), "{}", diag.detail());
                    assert!(
                        status
                            .config_issue("secret_expires")
                            .expect("issue")
                            .is_error()
                    );
                }
            }
        }
        let in_a_while = check_date(
            "client secret",
            expires,
            expires - chrono::Duration::days(12),
        );
        assert!(
            in_a_while
                .diagnostic
                .expect("diag")
                .detail()
                .contains("in 12 days")
        );
    }

    #[test]
    fn instants_expire_at_the_instant() {
        let not_after = DateTime::parse_from_rfc3339("2027-03-19T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let hour = chrono::Duration::hours(1);
        let day = chrono::Duration::days(1);
        let s = check_instant("certificate", not_after, not_after - day * 31 - hour);
        assert_eq!((s.days_left, s.level()), (31, Expiry::Fine));
        let s = check_instant("certificate", not_after, not_after - day * 30 - hour);
        assert_eq!((s.days_left, s.level()), (30, Expiry::Soon));
        let s = check_instant("certificate", not_after, not_after - hour);
        assert_eq!((s.days_left, s.level()), (0, Expiry::Soon));
        let s = check_instant("certificate", not_after, not_after + hour);
        assert_eq!((s.days_left, s.level()), (0, Expiry::Expired));
        let s = check_instant("certificate", not_after, not_after + day + hour);
        assert_eq!((s.days_left, s.level()), (-1, Expiry::Expired));
    }

    #[test]
    fn toml_dates_parse() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            #[serde(default, with = "toml_date")]
            secret_expires: Option<NaiveDate>,
        }
        let p: P = toml::from_str("secret_expires = 2027-03-19").expect("date");
        assert_eq!(p.secret_expires, Some(d(2027, 3, 19)));
        let p: P = toml::from_str("secret_expires = \"2027-03-19\"").expect("string");
        assert_eq!(p.secret_expires, Some(d(2027, 3, 19)));
        let p: P = toml::from_str("").expect("absent");
        assert_eq!(p.secret_expires, None);
        let value: toml::Table = toml::from_str("secret_expires = 2027-03-19").expect("table");
        let p: P = toml::Value::Table(value).try_into().expect("from value");
        assert_eq!(p.secret_expires, Some(d(2027, 3, 19)));
        assert!(toml::from_str::<P>("secret_expires = \"next year\"").is_err());
        assert!(toml::from_str::<P>("secret_expires = 12:00:00").is_err());
    }
}
