//! HTML pages (per room and the index) from minijinja templates with HTML auto-escaping on
//! every template: a meeting subject is untrusted input and can never become markup. The pages
//! carry no script at all and a Content-Security-Policy that forbids one.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

use crate::config::{Language, Theme};
use crate::projection::{Projection, Status, local_time};

/// The words on signs and pages, in one language.
#[derive(Debug, Clone, Serialize)]
pub struct Labels {
    pub free: &'static str,
    pub busy: &'static str,
    pub starting_soon: &'static str,
    pub ending_soon: &'static str,
    pub stale: &'static str,
    pub unknown: &'static str,
    pub until: &'static str,
    pub booked_from: &'static str,
    pub rest_of_day: &'static str,
    pub since: &'static str,
    pub now: &'static str,
    pub next: &'static str,
    pub no_more: &'static str,
    pub all_day: &'static str,
    pub booked: &'static str,
    pub tentative: &'static str,
    pub free_tag: &'static str,
    /// Footer: when the shown content last changed (files are rewritten only then, so the page
    /// cannot claim to have been updated at any later time).
    pub last_change: &'static str,
    pub stale_note: &'static str,
    pub unknown_note: &'static str,
    pub index_title: &'static str,
    pub room: &'static str,
    pub status: &'static str,
    pub no_rooms: &'static str,
}

pub fn labels(language: Language) -> &'static Labels {
    static EN: Labels = Labels {
        free: "Free",
        busy: "Busy",
        starting_soon: "Starting soon",
        ending_soon: "Ending soon",
        stale: "Not up to date",
        unknown: "Not yet read",
        until: "until",
        booked_from: "booked from",
        rest_of_day: "for the rest of the day",
        since: "since",
        now: "Now",
        next: "Next",
        no_more: "No more bookings today",
        all_day: "All day",
        booked: "Booked",
        tentative: "tentative",
        free_tag: "free",
        last_change: "Last change",
        stale_note: "The calendar could not be read since {t}; the schedule may be out of date.",
        unknown_note: "This room's calendar has not been read yet; its bookings are unknown.",
        index_title: "Door signs",
        room: "Room",
        status: "Status",
        no_rooms: "No rooms yet.",
    };
    static DE: Labels = Labels {
        free: "Frei",
        busy: "Belegt",
        starting_soon: "Gleich belegt",
        ending_soon: "Gleich frei",
        stale: "Nicht aktuell",
        unknown: "Noch nicht gelesen",
        until: "bis",
        booked_from: "belegt ab",
        rest_of_day: "für den Rest des Tages",
        since: "seit",
        now: "Jetzt",
        next: "Als Nächstes",
        no_more: "Heute keine weiteren Buchungen",
        all_day: "Ganztägig",
        booked: "Belegt",
        tentative: "vorläufig",
        free_tag: "frei",
        last_change: "Letzte Änderung",
        stale_note: "Der Kalender ist seit {t} nicht lesbar; der Plan kann veraltet sein.",
        unknown_note: "Der Kalender dieses Raums wurde noch nicht gelesen; seine Buchungen sind unbekannt.",
        index_title: "Türschilder",
        room: "Raum",
        status: "Status",
        no_rooms: "Noch keine Räume.",
    };
    match language {
        Language::En => &EN,
        Language::De => &DE,
    }
}

impl Labels {
    pub fn status(&self, status: Status) -> &'static str {
        match status {
            Status::Free => self.free,
            Status::Busy => self.busy,
            Status::StartingSoon => self.starting_soon,
            Status::EndingSoon => self.ending_soon,
            Status::Stale => self.stale,
            Status::Unknown => self.unknown,
        }
    }

    /// The line beside the status word: "until 14:00", "booked from 14:00", …
    pub fn until_text(&self, p: &Projection) -> Option<String> {
        let until = p.until_local.as_deref();
        match (p.status, until) {
            (Status::Stale | Status::Unknown, _) => None,
            (Status::StartingSoon, Some(t)) => Some(format!("{} {t}", self.booked_from)),
            (Status::Free, None) => Some(self.rest_of_day.to_string()),
            (_, Some(t)) => Some(format!("{} {t}", self.until)),
            (_, None) => None,
        }
    }
}

const WEEKDAYS: [[&str; 7]; 2] = [
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ],
    [
        "Montag",
        "Dienstag",
        "Mittwoch",
        "Donnerstag",
        "Freitag",
        "Samstag",
        "Sonntag",
    ],
];
const MONTHS: [[&str; 12]; 2] = [
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ],
];

/// "Saturday, 28 November 2026" / "Samstag, 28. November 2026".
pub fn long_date(date: NaiveDate, language: Language) -> String {
    let l = match language {
        Language::En => 0,
        Language::De => 1,
    };
    let wd = WEEKDAYS[l][date.weekday().num_days_from_monday() as usize];
    let month = MONTHS[l][date.month0() as usize];
    match language {
        Language::En => format!("{wd}, {} {month} {}", date.day(), date.year()),
        Language::De => format!("{wd}, {}. {month} {}", date.day(), date.year()),
    }
}

/// One row of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    pub room: String,
    pub id: String,
    pub name: String,
    pub status: Status,
    pub status_label: String,
    pub until_local: Option<String>,
    /// The current meeting's subject as the room page shows it.
    pub current: Option<String>,
    pub href: String,
    pub json: String,
    pub content_hash: String,
}

impl IndexEntry {
    pub fn from_projection(p: &Projection, language: Language) -> Self {
        let labels = labels(language);
        Self {
            room: p.room.clone(),
            id: p.id.clone(),
            name: p.name.clone(),
            status: p.status,
            status_label: labels.status(p.status).to_string(),
            until_local: labels.until_text(p),
            current: p.current.as_ref().map(|m| {
                m.subject
                    .clone()
                    .unwrap_or_else(|| labels.booked.to_string())
            }),
            href: format!("rooms/{}.html", p.id),
            json: format!("rooms/{}.json", p.id),
            content_hash: p.content_hash.clone(),
        }
    }
}

/// The page renderer: templates compiled once, shared by all threads.
pub struct Pages {
    env: Environment<'static>,
    language: Language,
    theme: Theme,
    tz: Tz,
    refresh_seconds: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("template error: {0}")]
pub struct TemplateError(#[from] minijinja::Error);

impl Pages {
    pub fn new(
        language: Language,
        theme: Theme,
        tz: Tz,
        refresh_seconds: u32,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // Every template escapes HTML, whatever its name.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_template("style.css", include_str!("../templates/style.css"))?;
        env.add_template("room.html", include_str!("../templates/room.html"))?;
        env.add_template("index.html", include_str!("../templates/index.html"))?;
        Ok(Self {
            env,
            language,
            theme,
            tz,
            refresh_seconds,
        })
    }

    fn theme_name(&self) -> &'static str {
        match self.theme {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn lang(&self) -> &'static str {
        match self.language {
            Language::En => "en",
            Language::De => "de",
        }
    }

    pub fn room(&self, p: &Projection) -> Result<String, TemplateError> {
        let labels = labels(self.language);
        let stale_note = p
            .stale_since
            .map(|t| labels.stale_note.replace("{t}", &self.local(t, p.date)))
            .unwrap_or_default();
        let template = self.env.get_template("room.html")?;
        Ok(template.render(context! {
            p => Value::from(Serde(p)),
            labels => Value::from(Serde(labels)),
            lang => self.lang(),
            theme => self.theme_name(),
            refresh_seconds => self.refresh_seconds,
            status_label => labels.status(p.status),
            until_text => labels.until_text(p),
            date_label => long_date(p.date, self.language),
            as_of_local => self.local(p.as_of, p.date),
            stale_note => stale_note,
        })?)
    }

    pub fn index(&self, rooms: &[IndexEntry]) -> Result<String, TemplateError> {
        let template = self.env.get_template("index.html")?;
        Ok(template.render(context! {
            rooms => Value::from(Serde(rooms)),
            labels => Value::from(Serde(labels(self.language))),
            lang => self.lang(),
            theme => self.theme_name(),
            refresh_seconds => self.refresh_seconds,
        })?)
    }

    fn local(&self, t: DateTime<Utc>, today: NaiveDate) -> String {
        local_time(t, &self.tz, today, self.language)
    }
}
