//! The time zones the tenant uses: Windows name, IANA name and the tz database entry.
//!
//! EWS and Graph name zones by their Windows id (`StartTimeZone Id="W. Europe Standard Time"`,
//! Graph `originalStartTimeZone`); `Prefer: outlook.timezone` accepts either form. The pairs follow
//! CLDR's `windowsZones.xml` (territory "001" entries).

use chrono_tz::Tz;

#[derive(Debug, PartialEq, Eq)]
pub struct Zone {
    pub windows: &'static str,
    pub iana: &'static str,
    pub tz: Tz,
}

pub static ZONES: &[Zone] = &[
    Zone {
        windows: "UTC",
        iana: "Etc/UTC",
        tz: Tz::UTC,
    },
    Zone {
        windows: "W. Europe Standard Time",
        iana: "Europe/Berlin",
        tz: Tz::Europe__Berlin,
    },
    Zone {
        windows: "GMT Standard Time",
        iana: "Europe/London",
        tz: Tz::Europe__London,
    },
    Zone {
        windows: "Romance Standard Time",
        iana: "Europe/Paris",
        tz: Tz::Europe__Paris,
    },
    Zone {
        windows: "Eastern Standard Time",
        iana: "America/New_York",
        tz: Tz::America__New_York,
    },
    Zone {
        windows: "Pacific Standard Time",
        iana: "America/Los_Angeles",
        tz: Tz::America__Los_Angeles,
    },
    Zone {
        windows: "E. South America Standard Time",
        iana: "America/Sao_Paulo",
        tz: Tz::America__Sao_Paulo,
    },
    Zone {
        windows: "India Standard Time",
        iana: "Asia/Kolkata",
        tz: Tz::Asia__Kolkata,
    },
    Zone {
        windows: "Tokyo Standard Time",
        iana: "Asia/Tokyo",
        tz: Tz::Asia__Tokyo,
    },
    Zone {
        windows: "AUS Eastern Standard Time",
        iana: "Australia/Sydney",
        tz: Tz::Australia__Sydney,
    },
];

pub fn utc() -> &'static Zone {
    &ZONES[0]
}

/// Finds a zone of the table by Windows or IANA name (case-insensitive).
pub fn find(name: &str) -> Option<&'static Zone> {
    let n = name.trim();
    ZONES
        .iter()
        .find(|z| z.windows.eq_ignore_ascii_case(n) || z.iana.eq_ignore_ascii_case(n))
}

/// Resolves a zone name as `Prefer: outlook.timezone` does: a Windows name from the table, or any
/// IANA name of the tz database.
pub fn parse_any(name: &str) -> Option<Tz> {
    if let Some(z) = find(name) {
        return Some(z.tz);
    }
    name.trim().parse::<Tz>().ok()
}
