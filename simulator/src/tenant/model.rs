//! Calendar items, recurrence and the expansion of a series into instances.
//!
//! Recurrence follows the shapes both protocols describe: EWS `DailyRecurrence`,
//! `WeeklyRecurrence`, `AbsoluteMonthlyRecurrence`, `RelativeMonthlyRecurrence` with
//! `EndDateRecurrence`/`NumberedRecurrence`/`NoEndRecurrence` (EWS docs:
//! `recurrence-patterns-and-ews.md`) and Graph `patternedRecurrence` (`daily`, `weekly`,
//! `absoluteMonthly`, `relativeMonthly`; range `endDate`/`numbered`/`noEnd`). Occurrences keep the
//! master's wall-clock start in the organizer's time zone across DST changes; all-day series are
//! expanded by date.

use super::goid::GlobalObjectId;
use super::zones::Zone;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    #[default]
    Normal,
    Personal,
    Private,
    Confidential,
}

impl Sensitivity {
    /// EWS `Sensitivity` value.
    pub fn ews(self) -> &'static str {
        match self {
            Sensitivity::Normal => "Normal",
            Sensitivity::Personal => "Personal",
            Sensitivity::Private => "Private",
            Sensitivity::Confidential => "Confidential",
        }
    }
    /// Graph `sensitivity` value.
    pub fn graph(self) -> &'static str {
        match self {
            Sensitivity::Normal => "normal",
            Sensitivity::Personal => "personal",
            Sensitivity::Private => "private",
            Sensitivity::Confidential => "confidential",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum ShowAs {
    Free,
    Tentative,
    #[default]
    Busy,
    Oof,
    WorkingElsewhere,
}

impl ShowAs {
    /// EWS `LegacyFreeBusyStatus`.
    pub fn ews(self) -> &'static str {
        match self {
            ShowAs::Free => "Free",
            ShowAs::Tentative => "Tentative",
            ShowAs::Busy => "Busy",
            ShowAs::Oof => "OOF",
            ShowAs::WorkingElsewhere => "WorkingElsewhere",
        }
    }
    /// Graph `showAs`.
    pub fn graph(self) -> &'static str {
        match self {
            ShowAs::Free => "free",
            ShowAs::Tentative => "tentative",
            ShowAs::Busy => "busy",
            ShowAs::Oof => "oof",
            ShowAs::WorkingElsewhere => "workingElsewhere",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttendeeType {
    Required,
    Optional,
    Resource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    #[serde(flatten)]
    pub person: Person,
    #[serde(rename = "type")]
    pub kind: AttendeeType,
    /// Graph `responseStatus.response` spelling: none, accepted, tentativelyAccepted, declined, notResponded.
    pub response: String,
}

/// Everything that describes one meeting or one exception of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    pub subject: String,
    /// Plain text body (both protocols can return it as text or wrapped in HTML).
    pub body: String,
    pub location: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_all_day: bool,
    /// The organizer's time zone (Graph `originalStartTimeZone`, EWS `StartTimeZone`).
    pub zone: &'static Zone,
    pub sensitivity: Sensitivity,
    pub show_as: ShowAs,
    pub is_cancelled: bool,
    pub organizer: Person,
    pub attendees: Vec<Attendee>,
    pub online_url: Option<String>,
    pub categories: Vec<String>,
    pub importance: Importance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    Low,
    #[default]
    Normal,
    High,
}

impl Importance {
    pub fn ews(self) -> &'static str {
        match self {
            Importance::Low => "Low",
            Importance::Normal => "Normal",
            Importance::High => "High",
        }
    }
    pub fn graph(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Normal => "normal",
            Importance::High => "high",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WeekIndex {
    First,
    Second,
    Third,
    Fourth,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Pattern {
    Daily {
        interval: u32,
    },
    Weekly {
        interval: u32,
        #[serde(rename = "daysOfWeek", with = "weekdays")]
        days: Vec<Weekday>,
    },
    AbsoluteMonthly {
        interval: u32,
        #[serde(rename = "dayOfMonth")]
        day: u32,
    },
    RelativeMonthly {
        interval: u32,
        index: WeekIndex,
        #[serde(rename = "dayOfWeek", with = "weekday")]
        day: Weekday,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RangeEnd {
    EndDate {
        #[serde(rename = "endDate")]
        end: NaiveDate,
    },
    Numbered {
        #[serde(rename = "numberOfOccurrences")]
        count: u32,
    },
    NoEnd,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub data: EventData,
    pub version: u32,
    pub last_modified: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub pattern: Pattern,
    pub start_date: NaiveDate,
    pub end: RangeEnd,
    /// Modified occurrences, by original start.
    pub exceptions: BTreeMap<DateTime<Utc>, Exception>,
    /// Deleted (cancelled) occurrences, by original start.
    pub deleted: BTreeSet<DateTime<Utc>>,
}

/// One calendar item: a single meeting or a series master.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Unique in its mailbox and stable for a seed; the ids of both protocols encode it.
    pub num: u64,
    /// Index of the calendar folder holding the item.
    pub calendar: u16,
    pub goid: GlobalObjectId,
    /// Bumped on every change; the change keys encode it.
    pub version: u32,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub data: EventData,
    pub series: Option<Series>,
    /// Whether the mailbox owner organizes the meeting (`IsOrganizer`).
    pub is_organizer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InstanceKind {
    /// Graph `singleInstance`, EWS `Single`.
    SingleInstance,
    /// Graph `occurrence`, EWS `Occurrence`.
    Occurrence,
    /// Graph `exception`, EWS `Exception`.
    Exception,
}

impl InstanceKind {
    pub fn graph(self) -> &'static str {
        match self {
            InstanceKind::SingleInstance => "singleInstance",
            InstanceKind::Occurrence => "occurrence",
            InstanceKind::Exception => "exception",
        }
    }
    pub fn ews(self) -> &'static str {
        match self {
            InstanceKind::SingleInstance => "Single",
            InstanceKind::Occurrence => "Occurrence",
            InstanceKind::Exception => "Exception",
        }
    }
}

/// One expanded instance of an item, as a calendar view shows it.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    pub item: &'a Item,
    pub kind: InstanceKind,
    /// The occurrence's original start (for occurrences and exceptions).
    pub original_start: Option<DateTime<Utc>>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The item's data, or the exception's.
    pub data: &'a EventData,
    /// The version for the change key: the item's, or the exception's.
    pub version: u32,
    pub last_modified: DateTime<Utc>,
}

impl Item {
    /// The instances that overlap `[from, to)` (a zero-length event at `from` counts), ordered
    /// by start. Deleted occurrences are absent; exceptions appear at their new time.
    pub fn instances(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Instance<'_>> {
        let mut out = Vec::new();
        let Some(series) = &self.series else {
            if overlaps(self.data.start, self.data.end, from, to) {
                out.push(Instance {
                    item: self,
                    kind: InstanceKind::SingleInstance,
                    original_start: None,
                    start: self.data.start,
                    end: self.data.end,
                    data: &self.data,
                    version: self.version,
                    last_modified: self.last_modified,
                });
            }
            return out;
        };
        // Exceptions may have moved far from their original slot: look at all of them.
        for (orig, ex) in &series.exceptions {
            if overlaps(ex.data.start, ex.data.end, from, to) {
                out.push(Instance {
                    item: self,
                    kind: InstanceKind::Exception,
                    original_start: Some(*orig),
                    start: ex.data.start,
                    end: ex.data.end,
                    data: &ex.data,
                    version: ex.version,
                    last_modified: ex.last_modified,
                });
            }
        }
        for orig in self.occurrence_starts(to) {
            let end = self.occurrence_end(orig);
            if !overlaps(orig, end, from, to) {
                continue;
            }
            if series.exceptions.contains_key(&orig) || series.deleted.contains(&orig) {
                continue;
            }
            out.push(Instance {
                item: self,
                kind: InstanceKind::Occurrence,
                original_start: Some(orig),
                start: orig,
                end,
                data: &self.data,
                version: self.version,
                last_modified: self.last_modified,
            });
        }
        out.sort_by_key(|i| (i.start, i.original_start));
        out
    }

    /// The end of the occurrence that starts (originally) at `orig`: the series' duration
    /// later, or — for all-day series — local midnight of the zone as many *dates* later as the
    /// master spans (a day across a DST change is 23 or 25 hours long).
    pub fn occurrence_end(&self, orig: DateTime<Utc>) -> DateTime<Utc> {
        if !self.data.is_all_day {
            return orig + (self.data.end - self.data.start);
        }
        let tz = self.data.zone.tz;
        let days = (self.data.end.with_timezone(&tz).date_naive()
            - self.data.start.with_timezone(&tz).date_naive())
        .num_days()
        .max(1);
        local_midnight(
            tz,
            orig.with_timezone(&tz).date_naive() + Duration::days(days),
        )
    }

    /// The original starts of all occurrences of the series up to (excluding) `until`,
    /// including deleted and modified ones. They keep the master's wall-clock time in its zone
    /// (local midnight for all-day series).
    pub fn occurrence_starts(&self, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let Some(series) = &self.series else {
            return vec![self.data.start];
        };
        let zone = self.data.zone.tz;
        let local_start = self.data.start.with_timezone(&zone).naive_local();
        let time = local_start.time();
        let mut out = Vec::new();
        let mut count = 0u32;
        let mut date = series.start_date;
        // Upper bound: never loop past the window (+1 day for zone offsets) or ~20 years.
        let last_date = (until + Duration::days(1)).date_naive();
        let hard_stop = series.start_date + Duration::days(366 * 20);
        while date <= last_date && date <= hard_stop {
            match &series.end {
                RangeEnd::EndDate { end } if date > *end => break,
                RangeEnd::Numbered { count: n } if count >= *n => break,
                _ => {}
            }
            if matches_pattern(&series.pattern, series.start_date, date) {
                count += 1;
                let utc = local_to_utc(zone, date.and_time(time));
                if utc < until {
                    out.push(utc);
                }
            }
            date = match date.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        out
    }

    /// The occurrence with this original start, if the series has one (deleted or not).
    pub fn has_occurrence(&self, original_start: DateTime<Utc>) -> bool {
        self.occurrence_starts(original_start + Duration::seconds(1))
            .contains(&original_start)
    }
}

pub fn overlaps(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> bool {
    if start == end {
        return start >= from && start < to;
    }
    start < to && end > from
}

/// Midnight at the start of `date` in `zone`, as Exchange stores an all-day event's start (and
/// the local midnight after its last date as its end): 2026-11-28 in Berlin is
/// `2026-11-27T23:00:00Z`.
pub fn local_midnight(zone: chrono_tz::Tz, date: NaiveDate) -> DateTime<Utc> {
    local_to_utc(zone, date.and_time(chrono::NaiveTime::MIN))
}

/// The local dates an all-day event covers, `[start, end)` (end exclusive), read in its zone.
pub fn all_day_dates(
    zone: chrono_tz::Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (NaiveDate, NaiveDate) {
    (
        start.with_timezone(&zone).date_naive(),
        end.with_timezone(&zone).date_naive(),
    )
}

fn local_to_utc(zone: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        // A wall-clock time inside a DST gap: Exchange moves it forward by the gap.
        None => match zone
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
        {
            Some(t) => t.with_timezone(&Utc),
            None => Utc.from_utc_datetime(&local),
        },
    }
}

fn months_between(a: NaiveDate, b: NaiveDate) -> i64 {
    i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month())
}

fn matches_pattern(p: &Pattern, start: NaiveDate, d: NaiveDate) -> bool {
    if d < start {
        return false;
    }
    match p {
        Pattern::Daily { interval } => (d - start).num_days() % i64::from((*interval).max(1)) == 0,
        Pattern::Weekly { interval, days } => {
            // Weeks start on Sunday (Exchange's default FirstDayOfWeek).
            let week0 = start - Duration::days(i64::from(start.weekday().num_days_from_sunday()));
            let weeks = (d - week0).num_days() / 7;
            weeks % i64::from((*interval).max(1)) == 0 && days.contains(&d.weekday())
        }
        Pattern::AbsoluteMonthly { interval, day } => {
            months_between(start, d) % i64::from((*interval).max(1)) == 0 && d.day() == *day
        }
        Pattern::RelativeMonthly {
            interval,
            index,
            day,
        } => {
            if months_between(start, d) % i64::from((*interval).max(1)) != 0 || d.weekday() != *day
            {
                return false;
            }
            let nth = (d.day() - 1) / 7;
            match index {
                WeekIndex::First => nth == 0,
                WeekIndex::Second => nth == 1,
                WeekIndex::Third => nth == 2,
                WeekIndex::Fourth => nth == 3,
                WeekIndex::Last => (d + Duration::days(7)).month() != d.month(),
            }
        }
    }
}

/// Graph/EWS spelling of a weekday ("monday").
pub fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

pub fn parse_weekday(s: &str) -> Option<Weekday> {
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .into_iter()
    .find(|d| weekday_name(*d).eq_ignore_ascii_case(s.trim()))
}

mod weekday {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::weekday_name(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_weekday(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown weekday {s}")))
    }
}

mod weekdays {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};
    pub fn serialize<S: Serializer>(d: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(d.len()))?;
        for x in d {
            seq.serialize_element(super::weekday_name(*x))?;
        }
        seq.end()
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| {
                super::parse_weekday(s)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown weekday {s}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::zones;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn item(series: Option<Series>, zone: &'static Zone, start: &str, end: &str) -> Item {
        Item {
            num: 1,
            calendar: 0,
            goid: GlobalObjectId::external("x"),
            version: 1,
            created: t(start),
            last_modified: t(start),
            data: EventData {
                subject: "s".into(),
                body: String::new(),
                location: String::new(),
                start: t(start),
                end: t(end),
                is_all_day: false,
                zone,
                sensitivity: Sensitivity::Normal,
                show_as: ShowAs::Busy,
                is_cancelled: false,
                organizer: Person {
                    name: "o".into(),
                    address: "o@x".into(),
                },
                attendees: vec![],
                online_url: None,
                categories: vec![],
                importance: Importance::Normal,
            },
            series,
            is_organizer: false,
        }
    }

    #[test]
    fn weekly_series_keeps_wall_clock_across_dst_and_honours_exceptions() {
        let berlin = zones::find("Europe/Berlin").unwrap_or(zones::utc());
        // Mondays 09:00 Berlin from 2024-03-18; DST starts 2024-03-31.
        let mut s = Series {
            pattern: Pattern::Weekly {
                interval: 1,
                days: vec![Weekday::Mon],
            },
            start_date: NaiveDate::from_ymd_opt(2024, 3, 18).unwrap_or_default(),
            end: RangeEnd::Numbered { count: 4 },
            exceptions: BTreeMap::new(),
            deleted: BTreeSet::new(),
        };
        s.deleted.insert(t("2024-03-25T08:00:00Z"));
        let it = item(
            Some(s),
            berlin,
            "2024-03-18T08:00:00Z",
            "2024-03-18T09:00:00Z",
        );
        let inst = it.instances(t("2024-03-01T00:00:00Z"), t("2024-05-01T00:00:00Z"));
        let starts: Vec<_> = inst.iter().map(|i| i.start.to_rfc3339()).collect();
        assert_eq!(
            starts,
            vec![
                "2024-03-18T08:00:00+00:00",
                "2024-04-01T07:00:00+00:00",
                "2024-04-08T07:00:00+00:00"
            ]
        );
        assert!(inst.iter().all(|i| i.kind == InstanceKind::Occurrence));
    }

    #[test]
    fn monthly_patterns() {
        let p = Pattern::RelativeMonthly {
            interval: 1,
            index: WeekIndex::Last,
            day: Weekday::Fri,
        };
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
        let hits: Vec<u32> = (0..60)
            .filter_map(|i| {
                let d = start + Duration::days(i);
                matches_pattern(&p, start, d).then(|| d.day())
            })
            .collect();
        assert_eq!(hits, vec![26, 23]);
        let p = Pattern::AbsoluteMonthly {
            interval: 2,
            day: 31,
        };
        let hits = (0..200)
            .filter(|i| matches_pattern(&p, start, start + Duration::days(*i)))
            .count();
        assert_eq!(hits, 3); // Jan 31, Mar 31, May 31
    }
}
