//! Moving a route from one profile to another — above all from EWS to Microsoft Graph — without
//! a blank door sign or a duplicated row. Backend-neutral: everything here goes through the
//! [`Source`](crate::source::Source) trait and the [`StateStore`](crate::state::StateStore).
//!
//! * [`read`] — a route's mailboxes as a source resolves them, and full reads of their
//!   calendars' window that write no state (no cursor in, none kept, no sink).
//! * [`compare`] — two reads compared event by event under the backend-neutral key: only in
//!   the current profile, only in the target, fields that differ per mailbox; used by
//!   `calpump migrate verify` and by shadow mode (the runner's `shadow` option), so both judge
//!   alike. A private or confidential meeting's subject and other organizer-typed text are
//!   masked in what it reports (`(private)`), so neither `/status`, the log nor verify shows it.
//! * [`normalize`] — what counts as the same value (below).
//! * [`plan`] — what `calpump migrate plan` decides: whether the target reads every mailbox,
//!   the needs (consent, permissions, scope, mailboxes still on-premises) read from the
//!   catalogue codes of the failures, and the split of a route with on-premises mailboxes.
//! * [`switch`] — the state move of `calpump migrate switch` and its record in the run history.
//!
//! # What is normalised
//!
//! Two reads of one meeting are compared field by field after normalisation; differences that
//! only concern representation are not reported:
//!
//! | field | normalisation |
//! |---|---|
//! | subject, location, calendar, display names, categories | line endings (`\r\n`, `\r`), tabs, runs of spaces and non-breaking spaces → one space; leading/trailing whitespace and zero-width characters (U+200B–U+200D, U+2060, U+FEFF) dropped; an empty location is no location |
//! | e-mail addresses (organizer, attendees) | trimmed, lower-cased, `SMTP:` prefix dropped; an address without `@` (an X.500 / legacy Exchange DN EWS may give for internal senders) counts as unknown, and an organizer known only by name on one side equals the same name with an address on the other |
//! | attendees | a set: order does not matter, exact duplicates collapse; each is kind, name, address and response |
//! | categories | a set, compared without regard to case (Outlook's category list is case-insensitive) |
//! | start, end | UTC instants at second precision: `Z` vs `+00:00` vs another offset for the same instant, and Graph's seven fractional digits, are the same |
//! | time zone | the spellings of UTC (`UTC`, `Etc/UTC`, `Etc/GMT`, `GMT`, `Etc/Universal`, `Zulu`, …) are one |
//! | online-meeting URL | trimmed; percent-escapes compared in upper case (`%3a` = `%3A`) |
//!
//! Compared after that: calendar path, kind (single/occurrence/exception), subject, location,
//! organizer, attendees, start, end, all-day, time zone, show-as, sensitivity, cancelled,
//! online-meeting URL, categories. The key itself (mailbox, clean global object id, original
//! start) is the join.
//!
//! Not compared: the source's item id and change key (they differ between protocols by
//! design), last-modified (not shown by sinks, left out of the content hash), and the iCalendar
//! UID (informational: EWS gives an external invitation's own UID, Graph the global object id
//! in hex). The model has no body, so bodies are not compared.
//!
//! Equal after normalisation is not always equal for a sink: sinks skip a write only when
//! [`Event::content_hash`](calpump_plugin::Event::content_hash) is unchanged, and the hash sees
//! raw values. Such events are reported apart, as *rewrites* with the fields that make the hash
//! differ — a person reads both alike, but after a switch the first sync rewrites them once (a
//! changed row, a re-rendered door sign), and a rewrite is a parity defect of a backend (the
//! two should map a field alike). So a rewrite is no difference, yet a comparison with rewrites
//! is **not clean**: clean means the switch changes nothing in any sink, and `migrate verify`
//! exits 0 only then.

pub mod compare;
pub mod normalize;
pub mod plan;
pub mod read;
pub mod switch;

pub use compare::{
    CompareOptions, EventDiff, EventRef, FieldDiff, MailboxComparison, PRIVATE_FIELDS,
    PRIVATE_TEXT, RouteComparison, Summary, compare_route,
};
pub use plan::{
    CALENDARS_READ, ListCheck, MailboxCheck, Need, PLACE_READ_ALL, Permission, RoutePlan,
    RouteSplit, check_room_lists, needs, plan_route, split_of,
};
pub use read::{CalendarError, MailboxRead, ResolvedMailboxes, read_mailboxes, resolve_mailboxes};
pub use switch::{MoveSummary, SwitchRecord, last_switch, move_state, record_switch};

#[cfg(test)]
mod tests;
