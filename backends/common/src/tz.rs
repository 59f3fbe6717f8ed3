//! Time-zone names: the Windows ids Exchange and Graph use (`W. Europe Standard Time`) mapped to
//! IANA names (`Europe/Berlin`), once for both backends so they map every zone the same way.
//!
//! ```
//! use calpump_backend_common::tz;
//! assert_eq!(tz::to_iana("W. Europe Standard Time").as_deref(), Some("Europe/Berlin"));
//! assert_eq!(tz::to_iana("India Standard Time").as_deref(), Some("Asia/Kolkata"));
//! assert_eq!(tz::to_iana("Europe/Paris").as_deref(), Some("Europe/Paris"));
//! assert_eq!(tz::to_iana("tzone://Microsoft/Custom"), None);
//! assert_eq!(tz::from_utc_offset(60), Some("Etc/GMT-1"));
//! ```
//!
//! The table is CLDR's `windowsZones.xml`, the entries of territory `001` (the "golden" zone of
//! each Windows id): Unicode CLDR, `common/supplemental/windowsZones.xml`, `otherVersion="7e11800"
//! typeVersion="2021a"`, as in `unicode-org/cldr` at commit 062dc06d16b0884bc42b0b04e5408aec6b85eb20
//! (139 Windows ids). Generated with a script from the XML (one row per `<mapZone … territory="001">`,
//! the display name from the comment above it); regenerate rather than edit by hand. CLDR data is
//! © Unicode, Inc., under the Unicode licence (<https://www.unicode.org/copyright.html>).
//!
//! CLDR keeps its own stable ids, some of which IANA has since renamed (`Asia/Calcutta`,
//! `Europe/Kiev`). Sinks and users expect current IANA names, so [`to_iana`] returns the IANA
//! canonical name ([`canonical_iana`]); [`WindowsZone::cldr`] keeps CLDR's spelling.
//!
//! What [`to_iana`] accepts, in order:
//! 1. a Windows id (case-insensitive): `W. Europe Standard Time`;
//! 2. a Windows display name as CLDR lists it: `(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna`;
//! 3. Graph's `tzone://Microsoft/Utc` and the names of UTC (`UTC`, `GMT`, `Etc/GMT`, `Z`): `Etc/UTC`;
//! 4. an IANA name (`Europe/Paris`, passed through, legacy aliases canonicalised);
//! 5. anything else — `tzone://Microsoft/Custom`, EWS `Customized Time Zone`, an unknown id —
//!    is `None`. A backend that knows the custom zone's offset uses [`from_utc_offset`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// One Windows time zone and its IANA zone (CLDR, territory `001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowsZone {
    /// The Windows id (`W. Europe Standard Time`): EWS `StartTimeZone/@Id`, Graph
    /// `originalStartTimeZone`.
    pub windows: &'static str,
    /// CLDR's id for territory `001` (`Europe/Berlin`, `Asia/Calcutta`).
    pub cldr: &'static str,
    /// The Windows display name as CLDR's comment gives it (`(UTC+01:00) Amsterdam, …`).
    pub display: &'static str,
}

impl WindowsZone {
    /// The IANA canonical name of [`WindowsZone::cldr`].
    pub fn iana(&self) -> &'static str {
        legacy_alias(self.cldr).unwrap_or(self.cldr)
    }
}

/// Looks a Windows id up (case-insensitive, surrounding blanks ignored).
pub fn find_windows(name: &str) -> Option<&'static WindowsZone> {
    let name = name.trim();
    WINDOWS_ZONES
        .iter()
        .find(|z| z.windows.eq_ignore_ascii_case(name))
}

/// Looks a Windows display name up (`(UTC+01:00) Amsterdam, Berlin, …`), ignoring case and
/// runs of blanks.
pub fn find_display(name: &str) -> Option<&'static WindowsZone> {
    let wanted = squash(name);
    if !wanted.starts_with("(utc") {
        return None;
    }
    WINDOWS_ZONES.iter().find(|z| squash(z.display) == wanted)
}

fn squash(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// The IANA name of a Windows id, canonical (`India Standard Time` → `Asia/Kolkata`).
pub fn windows_to_iana(name: &str) -> Option<&'static str> {
    find_windows(name).map(WindowsZone::iana)
}

/// Names that mean UTC.
const UTC_NAMES: &[&str] = &[
    "utc",
    "gmt",
    "z",
    "zulu",
    "etc/utc",
    "etc/gmt",
    "etc/gmt0",
    "etc/gmt+0",
    "etc/gmt-0",
    "etc/universal",
    "etc/zulu",
    "etc/uct",
    "uct",
    "universal",
    "tzone://microsoft/utc",
    "coordinated universal time",
];

/// Marks of zones without a name: Graph `tzone://Microsoft/Custom`, EWS `Customized Time Zone`.
pub fn is_custom(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    lower.starts_with("tzone://microsoft/custom")
        || lower == "customized time zone"
        || lower == "custom"
}

/// The top-level areas of IANA zone names.
const IANA_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];

/// IANA names CLDR (or old systems) still use, with the current IANA canonical name.
const LEGACY_ALIASES: &[(&str, &str)] = &[
    ("Africa/Asmera", "Africa/Asmara"),
    ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("America/Catamarca", "America/Argentina/Catamarca"),
    ("America/Cordoba", "America/Argentina/Cordoba"),
    ("America/Godthab", "America/Nuuk"),
    ("America/Indianapolis", "America/Indiana/Indianapolis"),
    ("America/Jujuy", "America/Argentina/Jujuy"),
    ("America/Louisville", "America/Kentucky/Louisville"),
    ("America/Mendoza", "America/Argentina/Mendoza"),
    ("Asia/Calcutta", "Asia/Kolkata"),
    ("Asia/Katmandu", "Asia/Kathmandu"),
    ("Asia/Rangoon", "Asia/Yangon"),
    ("Asia/Saigon", "Asia/Ho_Chi_Minh"),
    ("Atlantic/Faeroe", "Atlantic/Faroe"),
    ("Europe/Kiev", "Europe/Kyiv"),
    ("Pacific/Enderbury", "Pacific/Kanton"),
    ("Pacific/Ponape", "Pacific/Pohnpei"),
    ("Pacific/Truk", "Pacific/Chuuk"),
];

fn legacy_alias(name: &str) -> Option<&'static str> {
    LEGACY_ALIASES
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(name))
        .map(|(_, new)| *new)
}

/// An IANA name in its canonical spelling: `Etc/UTC` for the names of UTC, the current name for
/// a legacy alias, the area's capitalisation fixed; `None` for text that is not an IANA name
/// (`Area/Location`, ASCII letters, digits, `_`, `-`, `+`).
pub fn canonical_iana(name: &str) -> Option<String> {
    let name = name.trim();
    if UTC_NAMES.iter().any(|u| u.eq_ignore_ascii_case(name)) {
        return Some("Etc/UTC".to_string());
    }
    if let Some(new) = legacy_alias(name) {
        return Some(new.to_string());
    }
    let (area, rest) = name.split_once('/')?;
    let area = IANA_AREAS.iter().find(|a| a.eq_ignore_ascii_case(area))?;
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    if rest.split('/').all(valid) {
        Some(format!("{area}/{rest}"))
    } else {
        None
    }
}

/// The IANA name for a zone name as Exchange or Graph reports it; see the module documentation
/// for what is accepted. `None` for custom zones and unknown names.
pub fn to_iana(name: &str) -> Option<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || is_custom(trimmed) {
        return None;
    }
    if let Some(zone) = find_windows(trimmed).or_else(|| find_display(trimmed)) {
        return Some(zone.iana().to_string());
    }
    canonical_iana(trimmed)
}

/// A fixed-offset IANA zone for a whole-hour UTC offset (minutes east of UTC, as EWS's
/// `BaseOffset` negated gives it): `+60` → `Etc/GMT-1` (POSIX signs are inverted in these
/// names), `0` → `Etc/UTC`. `None` for offsets that are not whole hours or beyond −12…+14 h.
pub fn from_utc_offset(minutes_east: i32) -> Option<&'static str> {
    const EAST: [&str; 15] = [
        "Etc/UTC",
        "Etc/GMT-1",
        "Etc/GMT-2",
        "Etc/GMT-3",
        "Etc/GMT-4",
        "Etc/GMT-5",
        "Etc/GMT-6",
        "Etc/GMT-7",
        "Etc/GMT-8",
        "Etc/GMT-9",
        "Etc/GMT-10",
        "Etc/GMT-11",
        "Etc/GMT-12",
        "Etc/GMT-13",
        "Etc/GMT-14",
    ];
    const WEST: [&str; 13] = [
        "Etc/UTC",
        "Etc/GMT+1",
        "Etc/GMT+2",
        "Etc/GMT+3",
        "Etc/GMT+4",
        "Etc/GMT+5",
        "Etc/GMT+6",
        "Etc/GMT+7",
        "Etc/GMT+8",
        "Etc/GMT+9",
        "Etc/GMT+10",
        "Etc/GMT+11",
        "Etc/GMT+12",
    ];
    if minutes_east % 60 != 0 {
        return None;
    }
    let hours = minutes_east / 60;
    if hours >= 0 {
        EAST.get(usize::try_from(hours).ok()?).copied()
    } else {
        WEST.get(usize::try_from(-hours).ok()?).copied()
    }
}

/// The bounds of an all-day event as the canonical model writes them: its first date and the
/// date after its last, each at 00:00:00 UTC ("floating" dates, see `Event::all_day` in
/// `calpump-plugin`).
///
/// Exchange stores an all-day event at midnight of its creator's zone, and EWS and Graph (asked
/// for UTC) return those instants: `2026-11-27T23:00:00Z`–`2026-11-28T23:00:00Z` for 28 November
/// in Berlin. `zone` is the event's IANA zone (what [`to_iana`] made of `StartTimeZone` /
/// `originalStartTimeZone`); each instant is converted into it and rounded to the nearest local
/// midnight, whose date is taken. Without a usable zone the instants are rounded to the nearest
/// UTC midnight (right for every zone within ±12 h of UTC whose midnight it is). The result
/// covers at least one date.
///
/// ```
/// use calpump_backend_common::tz::all_day_bounds;
/// let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
/// let (start, end) = all_day_bounds(t("2026-11-27T23:00:00Z"), t("2026-11-28T23:00:00Z"), Some("Europe/Berlin"));
/// assert_eq!((start, end), (t("2026-11-28T00:00:00Z"), t("2026-11-29T00:00:00Z")));
/// ```
pub fn all_day_bounds(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    zone: Option<&str>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let zone: Option<chrono_tz::Tz> = zone.and_then(|z| z.trim().parse().ok());
    let first = nearest_midnight_date(start, zone);
    let mut after = nearest_midnight_date(end, zone);
    if after <= first {
        after = first.succ_opt().unwrap_or(first);
    }
    (midnight_utc(first), midnight_utc(after))
}

/// The date of the local midnight nearest to `t` in `zone` (UTC when `None`).
fn nearest_midnight_date(t: DateTime<Utc>, zone: Option<chrono_tz::Tz>) -> NaiveDate {
    let local: NaiveDateTime = match zone {
        Some(z) => t.with_timezone(&z).naive_local(),
        None => t.naive_utc(),
    };
    let date = local.date();
    if local.time() >= NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN) {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    }
}

fn midnight_utc(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// CLDR `windowsZones.xml`, territory `001`, in the file's order (by offset). Generated; see the
/// module documentation.
#[rustfmt::skip]
pub static WINDOWS_ZONES: &[WindowsZone] = &[
    WindowsZone { windows: "Dateline Standard Time", cldr: "Etc/GMT+12", display: "(UTC-12:00) International Date Line West" },
    WindowsZone { windows: "UTC-11", cldr: "Etc/GMT+11", display: "(UTC-11:00) Coordinated Universal Time-11" },
    WindowsZone { windows: "Aleutian Standard Time", cldr: "America/Adak", display: "(UTC-10:00) Aleutian Islands" },
    WindowsZone { windows: "Hawaiian Standard Time", cldr: "Pacific/Honolulu", display: "(UTC-10:00) Hawaii" },
    WindowsZone { windows: "Marquesas Standard Time", cldr: "Pacific/Marquesas", display: "(UTC-09:30) Marquesas Islands" },
    WindowsZone { windows: "Alaskan Standard Time", cldr: "America/Anchorage", display: "(UTC-09:00) Alaska" },
    WindowsZone { windows: "UTC-09", cldr: "Etc/GMT+9", display: "(UTC-09:00) Coordinated Universal Time-09" },
    WindowsZone { windows: "Pacific Standard Time (Mexico)", cldr: "America/Tijuana", display: "(UTC-08:00) Baja California" },
    WindowsZone { windows: "UTC-08", cldr: "Etc/GMT+8", display: "(UTC-08:00) Coordinated Universal Time-08" },
    WindowsZone { windows: "Pacific Standard Time", cldr: "America/Los_Angeles", display: "(UTC-08:00) Pacific Time (US & Canada)" },
    WindowsZone { windows: "US Mountain Standard Time", cldr: "America/Phoenix", display: "(UTC-07:00) Arizona" },
    WindowsZone { windows: "Mountain Standard Time (Mexico)", cldr: "America/Mazatlan", display: "(UTC-07:00) Chihuahua, La Paz, Mazatlan" },
    WindowsZone { windows: "Mountain Standard Time", cldr: "America/Denver", display: "(UTC-07:00) Mountain Time (US & Canada)" },
    WindowsZone { windows: "Yukon Standard Time", cldr: "America/Whitehorse", display: "(UTC-07:00) Yukon" },
    WindowsZone { windows: "Central America Standard Time", cldr: "America/Guatemala", display: "(UTC-06:00) Central America" },
    WindowsZone { windows: "Central Standard Time", cldr: "America/Chicago", display: "(UTC-06:00) Central Time (US & Canada)" },
    WindowsZone { windows: "Easter Island Standard Time", cldr: "Pacific/Easter", display: "(UTC-06:00) Easter Island" },
    WindowsZone { windows: "Central Standard Time (Mexico)", cldr: "America/Mexico_City", display: "(UTC-06:00) Guadalajara, Mexico City, Monterrey" },
    WindowsZone { windows: "Canada Central Standard Time", cldr: "America/Regina", display: "(UTC-06:00) Saskatchewan" },
    WindowsZone { windows: "SA Pacific Standard Time", cldr: "America/Bogota", display: "(UTC-05:00) Bogota, Lima, Quito, Rio Branco" },
    WindowsZone { windows: "Eastern Standard Time (Mexico)", cldr: "America/Cancun", display: "(UTC-05:00) Chetumal" },
    WindowsZone { windows: "Eastern Standard Time", cldr: "America/New_York", display: "(UTC-05:00) Eastern Time (US & Canada)" },
    WindowsZone { windows: "Haiti Standard Time", cldr: "America/Port-au-Prince", display: "(UTC-05:00) Haiti" },
    WindowsZone { windows: "Cuba Standard Time", cldr: "America/Havana", display: "(UTC-05:00) Havana" },
    WindowsZone { windows: "US Eastern Standard Time", cldr: "America/Indianapolis", display: "(UTC-05:00) Indiana (East)" },
    WindowsZone { windows: "Turks And Caicos Standard Time", cldr: "America/Grand_Turk", display: "(UTC-05:00) Turks and Caicos" },
    WindowsZone { windows: "Paraguay Standard Time", cldr: "America/Asuncion", display: "(UTC-04:00) Asuncion" },
    WindowsZone { windows: "Atlantic Standard Time", cldr: "America/Halifax", display: "(UTC-04:00) Atlantic Time (Canada)" },
    WindowsZone { windows: "Venezuela Standard Time", cldr: "America/Caracas", display: "(UTC-04:00) Caracas" },
    WindowsZone { windows: "Central Brazilian Standard Time", cldr: "America/Cuiaba", display: "(UTC-04:00) Cuiaba" },
    WindowsZone { windows: "SA Western Standard Time", cldr: "America/La_Paz", display: "(UTC-04:00) Georgetown, La Paz, Manaus, San Juan" },
    WindowsZone { windows: "Pacific SA Standard Time", cldr: "America/Santiago", display: "(UTC-04:00) Santiago" },
    WindowsZone { windows: "Newfoundland Standard Time", cldr: "America/St_Johns", display: "(UTC-03:30) Newfoundland" },
    WindowsZone { windows: "Tocantins Standard Time", cldr: "America/Araguaina", display: "(UTC-03:00) Araguaina" },
    WindowsZone { windows: "E. South America Standard Time", cldr: "America/Sao_Paulo", display: "(UTC-03:00) Brasilia" },
    WindowsZone { windows: "SA Eastern Standard Time", cldr: "America/Cayenne", display: "(UTC-03:00) Cayenne, Fortaleza" },
    WindowsZone { windows: "Argentina Standard Time", cldr: "America/Buenos_Aires", display: "(UTC-03:00) City of Buenos Aires" },
    WindowsZone { windows: "Greenland Standard Time", cldr: "America/Godthab", display: "(UTC-03:00) Greenland" },
    WindowsZone { windows: "Montevideo Standard Time", cldr: "America/Montevideo", display: "(UTC-03:00) Montevideo" },
    WindowsZone { windows: "Magallanes Standard Time", cldr: "America/Punta_Arenas", display: "(UTC-03:00) Punta Arenas" },
    WindowsZone { windows: "Saint Pierre Standard Time", cldr: "America/Miquelon", display: "(UTC-03:00) Saint Pierre and Miquelon" },
    WindowsZone { windows: "Bahia Standard Time", cldr: "America/Bahia", display: "(UTC-03:00) Salvador" },
    WindowsZone { windows: "UTC-02", cldr: "Etc/GMT+2", display: "(UTC-02:00) Coordinated Universal Time-02" },
    WindowsZone { windows: "Azores Standard Time", cldr: "Atlantic/Azores", display: "(UTC-01:00) Azores" },
    WindowsZone { windows: "Cape Verde Standard Time", cldr: "Atlantic/Cape_Verde", display: "(UTC-01:00) Cabo Verde Is." },
    WindowsZone { windows: "UTC", cldr: "Etc/UTC", display: "(UTC) Coordinated Universal Time" },
    WindowsZone { windows: "GMT Standard Time", cldr: "Europe/London", display: "(UTC+00:00) Dublin, Edinburgh, Lisbon, London" },
    WindowsZone { windows: "Greenwich Standard Time", cldr: "Atlantic/Reykjavik", display: "(UTC+00:00) Monrovia, Reykjavik" },
    WindowsZone { windows: "Sao Tome Standard Time", cldr: "Africa/Sao_Tome", display: "(UTC+00:00) Sao Tome" },
    WindowsZone { windows: "Morocco Standard Time", cldr: "Africa/Casablanca", display: "(UTC+01:00) Casablanca" },
    WindowsZone { windows: "W. Europe Standard Time", cldr: "Europe/Berlin", display: "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna" },
    WindowsZone { windows: "Central Europe Standard Time", cldr: "Europe/Budapest", display: "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague" },
    WindowsZone { windows: "Romance Standard Time", cldr: "Europe/Paris", display: "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris" },
    WindowsZone { windows: "Central European Standard Time", cldr: "Europe/Warsaw", display: "(UTC+01:00) Sarajevo, Skopje, Warsaw, Zagreb" },
    WindowsZone { windows: "W. Central Africa Standard Time", cldr: "Africa/Lagos", display: "(UTC+01:00) West Central Africa" },
    WindowsZone { windows: "Jordan Standard Time", cldr: "Asia/Amman", display: "(UTC+02:00) Amman" },
    WindowsZone { windows: "GTB Standard Time", cldr: "Europe/Bucharest", display: "(UTC+02:00) Athens, Bucharest" },
    WindowsZone { windows: "Middle East Standard Time", cldr: "Asia/Beirut", display: "(UTC+02:00) Beirut" },
    WindowsZone { windows: "Egypt Standard Time", cldr: "Africa/Cairo", display: "(UTC+02:00) Cairo" },
    WindowsZone { windows: "E. Europe Standard Time", cldr: "Europe/Chisinau", display: "(UTC+02:00) Chisinau" },
    WindowsZone { windows: "Syria Standard Time", cldr: "Asia/Damascus", display: "(UTC+02:00) Damascus" },
    WindowsZone { windows: "West Bank Standard Time", cldr: "Asia/Hebron", display: "(UTC+02:00) Gaza, Hebron" },
    WindowsZone { windows: "South Africa Standard Time", cldr: "Africa/Johannesburg", display: "(UTC+02:00) Harare, Pretoria" },
    WindowsZone { windows: "FLE Standard Time", cldr: "Europe/Kiev", display: "(UTC+02:00) Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius" },
    WindowsZone { windows: "Israel Standard Time", cldr: "Asia/Jerusalem", display: "(UTC+02:00) Jerusalem" },
    WindowsZone { windows: "South Sudan Standard Time", cldr: "Africa/Juba", display: "(UTC+02:00) Juba" },
    WindowsZone { windows: "Kaliningrad Standard Time", cldr: "Europe/Kaliningrad", display: "(UTC+02:00) Kaliningrad" },
    WindowsZone { windows: "Sudan Standard Time", cldr: "Africa/Khartoum", display: "(UTC+02:00) Khartoum" },
    WindowsZone { windows: "Libya Standard Time", cldr: "Africa/Tripoli", display: "(UTC+02:00) Tripoli" },
    WindowsZone { windows: "Namibia Standard Time", cldr: "Africa/Windhoek", display: "(UTC+02:00) Windhoek" },
    WindowsZone { windows: "Arabic Standard Time", cldr: "Asia/Baghdad", display: "(UTC+03:00) Baghdad" },
    WindowsZone { windows: "Turkey Standard Time", cldr: "Europe/Istanbul", display: "(UTC+03:00) Istanbul" },
    WindowsZone { windows: "Arab Standard Time", cldr: "Asia/Riyadh", display: "(UTC+03:00) Kuwait, Riyadh" },
    WindowsZone { windows: "Belarus Standard Time", cldr: "Europe/Minsk", display: "(UTC+03:00) Minsk" },
    WindowsZone { windows: "Russian Standard Time", cldr: "Europe/Moscow", display: "(UTC+03:00) Moscow, St. Petersburg" },
    WindowsZone { windows: "E. Africa Standard Time", cldr: "Africa/Nairobi", display: "(UTC+03:00) Nairobi" },
    WindowsZone { windows: "Iran Standard Time", cldr: "Asia/Tehran", display: "(UTC+03:30) Tehran" },
    WindowsZone { windows: "Arabian Standard Time", cldr: "Asia/Dubai", display: "(UTC+04:00) Abu Dhabi, Muscat" },
    WindowsZone { windows: "Astrakhan Standard Time", cldr: "Europe/Astrakhan", display: "(UTC+04:00) Astrakhan, Ulyanovsk" },
    WindowsZone { windows: "Azerbaijan Standard Time", cldr: "Asia/Baku", display: "(UTC+04:00) Baku" },
    WindowsZone { windows: "Russia Time Zone 3", cldr: "Europe/Samara", display: "(UTC+04:00) Izhevsk, Samara" },
    WindowsZone { windows: "Mauritius Standard Time", cldr: "Indian/Mauritius", display: "(UTC+04:00) Port Louis" },
    WindowsZone { windows: "Saratov Standard Time", cldr: "Europe/Saratov", display: "(UTC+04:00) Saratov" },
    WindowsZone { windows: "Georgian Standard Time", cldr: "Asia/Tbilisi", display: "(UTC+04:00) Tbilisi" },
    WindowsZone { windows: "Volgograd Standard Time", cldr: "Europe/Volgograd", display: "(UTC+04:00) Volgograd" },
    WindowsZone { windows: "Caucasus Standard Time", cldr: "Asia/Yerevan", display: "(UTC+04:00) Yerevan" },
    WindowsZone { windows: "Afghanistan Standard Time", cldr: "Asia/Kabul", display: "(UTC+04:30) Kabul" },
    WindowsZone { windows: "West Asia Standard Time", cldr: "Asia/Tashkent", display: "(UTC+05:00) Ashgabat, Tashkent" },
    WindowsZone { windows: "Ekaterinburg Standard Time", cldr: "Asia/Yekaterinburg", display: "(UTC+05:00) Ekaterinburg" },
    WindowsZone { windows: "Pakistan Standard Time", cldr: "Asia/Karachi", display: "(UTC+05:00) Islamabad, Karachi" },
    WindowsZone { windows: "Qyzylorda Standard Time", cldr: "Asia/Qyzylorda", display: "(UTC+05:00) Qyzylorda" },
    WindowsZone { windows: "India Standard Time", cldr: "Asia/Calcutta", display: "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi" },
    WindowsZone { windows: "Sri Lanka Standard Time", cldr: "Asia/Colombo", display: "(UTC+05:30) Sri Jayawardenepura" },
    WindowsZone { windows: "Nepal Standard Time", cldr: "Asia/Katmandu", display: "(UTC+05:45) Kathmandu" },
    WindowsZone { windows: "Central Asia Standard Time", cldr: "Asia/Bishkek", display: "(UTC+06:00) Astana" },
    WindowsZone { windows: "Bangladesh Standard Time", cldr: "Asia/Dhaka", display: "(UTC+06:00) Dhaka" },
    WindowsZone { windows: "Omsk Standard Time", cldr: "Asia/Omsk", display: "(UTC+06:00) Omsk" },
    WindowsZone { windows: "Myanmar Standard Time", cldr: "Asia/Rangoon", display: "(UTC+06:30) Yangon (Rangoon)" },
    WindowsZone { windows: "SE Asia Standard Time", cldr: "Asia/Bangkok", display: "(UTC+07:00) Bangkok, Hanoi, Jakarta" },
    WindowsZone { windows: "Altai Standard Time", cldr: "Asia/Barnaul", display: "(UTC+07:00) Barnaul, Gorno-Altaysk" },
    WindowsZone { windows: "W. Mongolia Standard Time", cldr: "Asia/Hovd", display: "(UTC+07:00) Hovd" },
    WindowsZone { windows: "North Asia Standard Time", cldr: "Asia/Krasnoyarsk", display: "(UTC+07:00) Krasnoyarsk" },
    WindowsZone { windows: "N. Central Asia Standard Time", cldr: "Asia/Novosibirsk", display: "(UTC+07:00) Novosibirsk" },
    WindowsZone { windows: "Tomsk Standard Time", cldr: "Asia/Tomsk", display: "(UTC+07:00) Tomsk" },
    WindowsZone { windows: "China Standard Time", cldr: "Asia/Shanghai", display: "(UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi" },
    WindowsZone { windows: "North Asia East Standard Time", cldr: "Asia/Irkutsk", display: "(UTC+08:00) Irkutsk" },
    WindowsZone { windows: "Singapore Standard Time", cldr: "Asia/Singapore", display: "(UTC+08:00) Kuala Lumpur, Singapore" },
    WindowsZone { windows: "W. Australia Standard Time", cldr: "Australia/Perth", display: "(UTC+08:00) Perth" },
    WindowsZone { windows: "Taipei Standard Time", cldr: "Asia/Taipei", display: "(UTC+08:00) Taipei" },
    WindowsZone { windows: "Ulaanbaatar Standard Time", cldr: "Asia/Ulaanbaatar", display: "(UTC+08:00) Ulaanbaatar" },
    WindowsZone { windows: "Aus Central W. Standard Time", cldr: "Australia/Eucla", display: "(UTC+08:45) Eucla" },
    WindowsZone { windows: "Transbaikal Standard Time", cldr: "Asia/Chita", display: "(UTC+09:00) Chita" },
    WindowsZone { windows: "Tokyo Standard Time", cldr: "Asia/Tokyo", display: "(UTC+09:00) Osaka, Sapporo, Tokyo" },
    WindowsZone { windows: "North Korea Standard Time", cldr: "Asia/Pyongyang", display: "(UTC+09:00) Pyongyang" },
    WindowsZone { windows: "Korea Standard Time", cldr: "Asia/Seoul", display: "(UTC+09:00) Seoul" },
    WindowsZone { windows: "Yakutsk Standard Time", cldr: "Asia/Yakutsk", display: "(UTC+09:00) Yakutsk" },
    WindowsZone { windows: "Cen. Australia Standard Time", cldr: "Australia/Adelaide", display: "(UTC+09:30) Adelaide" },
    WindowsZone { windows: "AUS Central Standard Time", cldr: "Australia/Darwin", display: "(UTC+09:30) Darwin" },
    WindowsZone { windows: "E. Australia Standard Time", cldr: "Australia/Brisbane", display: "(UTC+10:00) Brisbane" },
    WindowsZone { windows: "AUS Eastern Standard Time", cldr: "Australia/Sydney", display: "(UTC+10:00) Canberra, Melbourne, Sydney" },
    WindowsZone { windows: "West Pacific Standard Time", cldr: "Pacific/Port_Moresby", display: "(UTC+10:00) Guam, Port Moresby" },
    WindowsZone { windows: "Tasmania Standard Time", cldr: "Australia/Hobart", display: "(UTC+10:00) Hobart" },
    WindowsZone { windows: "Vladivostok Standard Time", cldr: "Asia/Vladivostok", display: "(UTC+10:00) Vladivostok" },
    WindowsZone { windows: "Lord Howe Standard Time", cldr: "Australia/Lord_Howe", display: "(UTC+10:30) Lord Howe Island" },
    WindowsZone { windows: "Bougainville Standard Time", cldr: "Pacific/Bougainville", display: "(UTC+11:00) Bougainville Island" },
    WindowsZone { windows: "Russia Time Zone 10", cldr: "Asia/Srednekolymsk", display: "(UTC+11:00) Chokurdakh" },
    WindowsZone { windows: "Magadan Standard Time", cldr: "Asia/Magadan", display: "(UTC+11:00) Magadan" },
    WindowsZone { windows: "Norfolk Standard Time", cldr: "Pacific/Norfolk", display: "(UTC+11:00) Norfolk Island" },
    WindowsZone { windows: "Sakhalin Standard Time", cldr: "Asia/Sakhalin", display: "(UTC+11:00) Sakhalin" },
    WindowsZone { windows: "Central Pacific Standard Time", cldr: "Pacific/Guadalcanal", display: "(UTC+11:00) Solomon Is., New Caledonia" },
    WindowsZone { windows: "Russia Time Zone 11", cldr: "Asia/Kamchatka", display: "(UTC+12:00) Anadyr, Petropavlovsk-Kamchatsky" },
    WindowsZone { windows: "New Zealand Standard Time", cldr: "Pacific/Auckland", display: "(UTC+12:00) Auckland, Wellington" },
    WindowsZone { windows: "UTC+12", cldr: "Etc/GMT-12", display: "(UTC+12:00) Coordinated Universal Time+12" },
    WindowsZone { windows: "Fiji Standard Time", cldr: "Pacific/Fiji", display: "(UTC+12:00) Fiji" },
    WindowsZone { windows: "Chatham Islands Standard Time", cldr: "Pacific/Chatham", display: "(UTC+12:45) Chatham Islands" },
    WindowsZone { windows: "UTC+13", cldr: "Etc/GMT-13", display: "(UTC+13:00) Coordinated Universal Time+13" },
    WindowsZone { windows: "Tonga Standard Time", cldr: "Pacific/Tongatapu", display: "(UTC+13:00) Nuku'alofa" },
    WindowsZone { windows: "Samoa Standard Time", cldr: "Pacific/Apia", display: "(UTC+13:00) Samoa" },
    WindowsZone { windows: "Line Islands Standard Time", cldr: "Pacific/Kiritimati", display: "(UTC+14:00) Kiritimati Island" },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_table_is_cldr_001() {
        assert_eq!(WINDOWS_ZONES.len(), 139);
        let mut seen = HashSet::new();
        for z in WINDOWS_ZONES {
            assert!(
                seen.insert(z.windows.to_ascii_lowercase()),
                "{} twice",
                z.windows
            );
            assert!(
                z.display.starts_with("(UTC"),
                "{}: {}",
                z.windows,
                z.display
            );
            assert!(
                canonical_iana(z.iana()).is_some(),
                "{} → {}",
                z.windows,
                z.iana()
            );
        }
        // Spot checks against the XML.
        let cases = [
            ("Dateline Standard Time", "Etc/GMT+12"),
            ("Pacific Standard Time", "America/Los_Angeles"),
            ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
            ("E. South America Standard Time", "America/Sao_Paulo"),
            ("UTC", "Etc/UTC"),
            ("GMT Standard Time", "Europe/London"),
            ("W. Europe Standard Time", "Europe/Berlin"),
            ("Romance Standard Time", "Europe/Paris"),
            ("FLE Standard Time", "Europe/Kiev"),
            ("India Standard Time", "Asia/Calcutta"),
            ("Central Asia Standard Time", "Asia/Bishkek"),
            ("Tokyo Standard Time", "Asia/Tokyo"),
            ("AUS Eastern Standard Time", "Australia/Sydney"),
            ("Line Islands Standard Time", "Pacific/Kiritimati"),
        ];
        for (windows, cldr) in cases {
            assert_eq!(
                find_windows(windows).map(|z| z.cldr),
                Some(cldr),
                "{windows}"
            );
        }
    }

    #[test]
    fn windows_ids_map_to_canonical_iana_names() {
        assert_eq!(
            to_iana("W. Europe Standard Time").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            to_iana(" w. europe standard time ").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            to_iana("India Standard Time").as_deref(),
            Some("Asia/Kolkata")
        );
        assert_eq!(to_iana("FLE Standard Time").as_deref(), Some("Europe/Kyiv"));
        assert_eq!(
            to_iana("US Eastern Standard Time").as_deref(),
            Some("America/Indiana/Indianapolis")
        );
        assert_eq!(to_iana("UTC").as_deref(), Some("Etc/UTC"));
        assert_eq!(to_iana("UTC-11").as_deref(), Some("Etc/GMT+11"));
        assert_eq!(
            windows_to_iana("Eastern Standard Time"),
            Some("America/New_York")
        );
        assert_eq!(windows_to_iana("Europe/Berlin"), None);
    }

    #[test]
    fn display_names_utc_and_iana_names_pass() {
        assert_eq!(
            to_iana("(UTC+01:00) Amsterdam, Berlin,  Bern, Rome, Stockholm, Vienna").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(to_iana("tzone://Microsoft/Utc").as_deref(), Some("Etc/UTC"));
        assert_eq!(to_iana("Etc/GMT").as_deref(), Some("Etc/UTC"));
        assert_eq!(to_iana("Europe/Paris").as_deref(), Some("Europe/Paris"));
        assert_eq!(to_iana("europe/paris").as_deref(), Some("Europe/paris"));
        assert_eq!(
            to_iana("America/Argentina/Buenos_Aires").as_deref(),
            Some("America/Argentina/Buenos_Aires")
        );
        assert_eq!(to_iana("Asia/Calcutta").as_deref(), Some("Asia/Kolkata"));
        assert_eq!(to_iana("Etc/GMT-14").as_deref(), Some("Etc/GMT-14"));
    }

    #[test]
    fn custom_and_unknown_zones_are_none() {
        for name in [
            "tzone://Microsoft/Custom",
            "Customized Time Zone",
            "",
            "   ",
            "Mars Standard Time",
            "Europe/Berlin; DROP TABLE",
            "Nowhere/Place",
            "Europe/",
        ] {
            assert_eq!(to_iana(name), None, "{name:?}");
        }
        assert!(is_custom("tzone://Microsoft/Custom"));
        assert!(!is_custom("UTC"));
    }

    #[test]
    fn whole_hour_offsets_give_etc_zones() {
        assert_eq!(from_utc_offset(0), Some("Etc/UTC"));
        assert_eq!(from_utc_offset(60), Some("Etc/GMT-1"));
        assert_eq!(from_utc_offset(-300), Some("Etc/GMT+5"));
        assert_eq!(from_utc_offset(14 * 60), Some("Etc/GMT-14"));
        assert_eq!(from_utc_offset(-12 * 60), Some("Etc/GMT+12"));
        assert_eq!(from_utc_offset(330), None);
        assert_eq!(from_utc_offset(15 * 60), None);
        assert_eq!(from_utc_offset(-13 * 60), None);
    }

    #[test]
    fn all_day_instants_become_dates_at_utc_midnight() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().expect("instant");
        let cases = [
            // (start, end, zone, first date, date after the last)
            (
                "2026-11-27T23:00:00Z",
                "2026-11-28T23:00:00Z",
                Some("Europe/Berlin"),
                "2026-11-28",
                "2026-11-29",
            ),
            // The 25-hour day at the end of summer time in Berlin.
            (
                "2026-10-24T22:00:00Z",
                "2026-10-25T23:00:00Z",
                Some("Europe/Berlin"),
                "2026-10-25",
                "2026-10-26",
            ),
            // The US change; two dates.
            (
                "2026-11-01T04:00:00Z",
                "2026-11-03T05:00:00Z",
                Some("America/New_York"),
                "2026-11-01",
                "2026-11-03",
            ),
            // Half-hour offset east, far west, far east.
            (
                "2026-10-21T18:30:00Z",
                "2026-10-22T18:30:00Z",
                Some("Asia/Kolkata"),
                "2026-10-22",
                "2026-10-23",
            ),
            (
                "2026-10-28T07:00:00Z",
                "2026-10-29T07:00:00Z",
                Some("America/Los_Angeles"),
                "2026-10-28",
                "2026-10-29",
            ),
            (
                "2026-10-20T13:00:00Z",
                "2026-10-22T13:00:00Z",
                Some("Australia/Sydney"),
                "2026-10-21",
                "2026-10-23",
            ),
            (
                "2026-10-21T11:00:00Z",
                "2026-10-22T11:00:00Z",
                Some("Pacific/Auckland"),
                "2026-10-22",
                "2026-10-23",
            ),
            // Already floating, in UTC or without a zone.
            (
                "2026-11-28T00:00:00Z",
                "2026-11-29T00:00:00Z",
                Some("Etc/UTC"),
                "2026-11-28",
                "2026-11-29",
            ),
            (
                "2026-11-28T00:00:00Z",
                "2026-11-29T00:00:00Z",
                None,
                "2026-11-28",
                "2026-11-29",
            ),
            // No zone: the nearest UTC midnight.
            (
                "2026-11-27T23:00:00Z",
                "2026-11-28T23:00:00Z",
                None,
                "2026-11-28",
                "2026-11-29",
            ),
            (
                "2026-11-28T05:00:00Z",
                "2026-11-29T05:00:00Z",
                Some("Not/AZone"),
                "2026-11-28",
                "2026-11-29",
            ),
            // A fixed offset from an EWS custom zone.
            (
                "2026-11-27T23:00:00Z",
                "2026-11-28T23:00:00Z",
                Some("Etc/GMT-1"),
                "2026-11-28",
                "2026-11-29",
            ),
            // Degenerate: at least one date.
            (
                "2026-11-27T23:00:00Z",
                "2026-11-27T23:00:00Z",
                Some("Europe/Berlin"),
                "2026-11-28",
                "2026-11-29",
            ),
        ];
        for (start, end, zone, first, after) in cases {
            let (s, e) = all_day_bounds(t(start), t(end), zone);
            assert_eq!(
                (s, e),
                (
                    t(&format!("{first}T00:00:00Z")),
                    t(&format!("{after}T00:00:00Z"))
                ),
                "{start}–{end} in {zone:?}"
            );
        }
    }
}
