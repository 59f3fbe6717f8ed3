//! The EWS operations calpump uses: typed requests (written into a SOAP body) and typed answers
//! (read from the response messages). Pure functions, no I/O: [`crate::client`] sends them.
//!
//! References (office-developer-exchange-docs, `docs/web-service-reference/`):
//! `getfolder-operation.md`, `findfolder-operation.md`, `finditem-operation.md` +
//! `calendarview.md`, `getitem-operation-calendar-item.md`, `syncfolderitems-operation.md`,
//! `getroomlists-operation.md`, `getrooms-operation.md`, `resolvenames-operation.md`,
//! `extendedfielduri.md`, `starttimezone.md`, `periods.md`; and
//! `exchange-web-services/how-to-get-appointments-and-meetings-by-using-ews-in-exchange.md`,
//! `how-to-process-calendar-items-in-batches-in-exchange.md`,
//! `how-to-synchronize-items-by-using-ews-in-exchange.md`.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::soap::ResponseMessage;
use crate::xml::{NS_MESSAGES, NS_TYPES, Node, Writer, XmlError};

/// PSETID_Meeting, the property set of the global object ids ([MS-OXPROPS]).
pub const PSETID_MEETING: &str = "6ED8DA90-450B-101B-98DA-00AA003F1305";
/// PidLidCleanGlobalObjectId.
pub const PID_CLEAN_GOID: u32 = 0x23;
/// PidLidGlobalObjectId (carries the occurrence's date; cleaned by the model).
pub const PID_GOID: u32 = 0x3;

/// Largest `GetItem` batch calpump sends (Microsoft recommends ≤ 100 items).
pub const GET_ITEM_BATCH: usize = 100;
/// `SyncFolderItems/MaxChangesReturned` (the schema allows 1–512).
pub const SYNC_MAX_CHANGES: u32 = 512;

/// A folder to address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderRef {
    /// A distinguished folder (`calendar`), of `mailbox` when given (delegate access).
    Distinguished {
        id: &'static str,
        mailbox: Option<String>,
    },
    /// A folder by id.
    Id { id: String },
}

impl FolderRef {
    pub fn calendar(mailbox: Option<&str>) -> Self {
        FolderRef::Distinguished {
            id: "calendar",
            mailbox: mailbox.map(str::to_string),
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            FolderRef::Distinguished { id, mailbox: None } => {
                w.empty("t:DistinguishedFolderId", &[("Id", id)]);
            }
            FolderRef::Distinguished {
                id,
                mailbox: Some(mailbox),
            } => {
                w.open("t:DistinguishedFolderId", &[("Id", id)])
                    .open("t:Mailbox", &[])
                    .text("t:EmailAddress", mailbox)
                    .close("t:Mailbox")
                    .close("t:DistinguishedFolderId");
            }
            FolderRef::Id { id } => {
                w.empty("t:FolderId", &[("Id", id)]);
            }
        }
    }
}

fn folder_shape(w: &mut Writer) {
    w.open("m:FolderShape", &[])
        .text("t:BaseShape", "IdOnly")
        .open("t:AdditionalProperties", &[])
        .empty("t:FieldURI", &[("FieldURI", "folder:DisplayName")])
        .empty("t:FieldURI", &[("FieldURI", "folder:TotalCount")])
        .empty("t:FieldURI", &[("FieldURI", "folder:ChildFolderCount")])
        .empty("t:FieldURI", &[("FieldURI", "folder:FolderClass")])
        .empty("t:FieldURI", &[("FieldURI", "folder:ParentFolderId")])
        .close("t:AdditionalProperties")
        .close("m:FolderShape");
}

/// `GetFolder` of one folder with its counts.
pub fn get_folder(folder: &FolderRef) -> impl FnOnce(&mut Writer) + '_ {
    move |w| {
        w.open("m:GetFolder", &[]);
        folder_shape(w);
        w.open("m:FolderIds", &[]);
        folder.write(w);
        w.close("m:FolderIds").close("m:GetFolder");
    }
}

/// `FindFolder` with `Traversal="Deep"` under `parent` (the sub-calendars of a calendar).
pub fn find_folder_deep(parent: &FolderRef) -> impl FnOnce(&mut Writer) + '_ {
    move |w| {
        w.open("m:FindFolder", &[("Traversal", "Deep")]);
        folder_shape(w);
        w.open("m:ParentFolderIds", &[]);
        parent.write(w);
        w.close("m:ParentFolderIds").close("m:FindFolder");
    }
}

/// A folder as `GetFolder`/`FindFolder` return it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Folder {
    pub id: String,
    pub change_key: Option<String>,
    pub parent_id: Option<String>,
    pub display_name: Option<String>,
    pub folder_class: Option<String>,
    pub total_count: Option<u64>,
    pub child_folder_count: Option<u64>,
    /// The element's name: `CalendarFolder`, `Folder`, `SearchFolder`, …
    pub kind: String,
}

impl Folder {
    /// A calendar folder: `CalendarFolder`, or a folder of class `IPF.Appointment*`.
    pub fn is_calendar(&self) -> bool {
        self.kind == "CalendarFolder"
            || self
                .folder_class
                .as_deref()
                .is_some_and(|c| c.starts_with("IPF.Appointment"))
    }
}

fn read_folder(node: &Node<'_>) -> Result<Folder, XmlError> {
    let id = node.req(NS_TYPES, "FolderId")?;
    Ok(Folder {
        id: id.req_attr("Id")?.to_string(),
        change_key: id.attr("ChangeKey").map(str::to_string),
        parent_id: node
            .child(NS_TYPES, "ParentFolderId")
            .and_then(|p| p.attr("Id"))
            .map(str::to_string),
        display_name: node.child_text(NS_TYPES, "DisplayName").map(str::to_string),
        folder_class: node.child_text(NS_TYPES, "FolderClass").map(str::to_string),
        total_count: node.parse_child(NS_TYPES, "TotalCount")?,
        child_folder_count: node.parse_child(NS_TYPES, "ChildFolderCount")?,
        kind: node.name().to_string(),
    })
}

/// The folders of a `GetFolderResponseMessage` (`m:Folders/*`).
pub fn read_get_folder(message: &ResponseMessage<'_>) -> Result<Vec<Folder>, XmlError> {
    let folders = message.node.req(NS_MESSAGES, "Folders")?;
    folders
        .elements()
        .iter()
        .filter(|n| n.el.ns.as_deref() == Some(NS_TYPES))
        .map(read_folder)
        .collect()
}

/// The folders of a `FindFolderResponseMessage` (`m:RootFolder/t:Folders/*`).
pub fn read_find_folder(message: &ResponseMessage<'_>) -> Result<Vec<Folder>, XmlError> {
    let root = message.node.req(NS_MESSAGES, "RootFolder")?;
    let Some(folders) = root.child(NS_TYPES, "Folders") else {
        return Ok(Vec::new());
    };
    folders
        .elements()
        .iter()
        .filter(|n| n.el.ns.as_deref() == Some(NS_TYPES))
        .map(read_folder)
        .collect()
}

/// EWS date-times: `xs:dateTime`, normally UTC with `Z`; an offset is honoured; a value without
/// zone is taken as UTC (EWS answers in UTC unless a `TimeZoneContext` asks otherwise).
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| format!("`{text}` is not an xs:dateTime"))
}

fn datetime_child(node: &Node<'_>, name: &str) -> Result<Option<DateTime<Utc>>, XmlError> {
    match node.child_text(NS_TYPES, name) {
        None => Ok(None),
        Some(text) => parse_datetime(text)
            .map(Some)
            .map_err(|message| XmlError::Invalid {
                path: format!("{}/{name}", node.path()),
                message,
            }),
    }
}

fn write_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `FindItem` with a `CalendarView` of `[start, end)`: ids and starts only.
pub fn find_item_calendar_view(
    folder: &FolderRef,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    max_entries: u32,
) -> impl FnOnce(&mut Writer) + '_ {
    move |w| {
        let max = max_entries.to_string();
        let start = write_time(start);
        let end = write_time(end);
        w.open("m:FindItem", &[("Traversal", "Shallow")])
            .open("m:ItemShape", &[])
            .text("t:BaseShape", "IdOnly")
            .open("t:AdditionalProperties", &[])
            .empty("t:FieldURI", &[("FieldURI", "calendar:Start")])
            .empty("t:FieldURI", &[("FieldURI", "calendar:End")])
            .close("t:AdditionalProperties")
            .close("m:ItemShape")
            .empty(
                "m:CalendarView",
                &[
                    ("MaxEntriesReturned", max.as_str()),
                    ("StartDate", start.as_str()),
                    ("EndDate", end.as_str()),
                ],
            )
            .open("m:ParentFolderIds", &[]);
        folder.write(w);
        w.close("m:ParentFolderIds").close("m:FindItem");
    }
}

/// An item id with its change key and start, as a `CalendarView` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewItem {
    pub id: String,
    pub change_key: Option<String>,
    pub start: Option<DateTime<Utc>>,
}

/// A `CalendarView` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewPage {
    pub items: Vec<ViewItem>,
    pub total_in_view: Option<u64>,
    /// `false`: the view held more than `MaxEntriesReturned`; the items are the first ones.
    pub includes_last: bool,
}

/// Reads a `FindItemResponseMessage` (`m:RootFolder`).
pub fn read_find_item(message: &ResponseMessage<'_>) -> Result<ViewPage, XmlError> {
    let root = message.node.req(NS_MESSAGES, "RootFolder")?;
    let includes_last = match root.attr("IncludesLastItemInRange") {
        Some("false" | "0") => false,
        Some("true" | "1") | None => true,
        Some(other) => {
            return Err(root.invalid(format!(
                "IncludesLastItemInRange `{other}` is not a boolean"
            )));
        }
    };
    let total_in_view = root.parse_attr("TotalItemsInView")?;
    let mut items = Vec::new();
    if let Some(list) = root.child(NS_TYPES, "Items") {
        for item in list.elements() {
            if item.el.ns.as_deref() != Some(NS_TYPES) {
                continue;
            }
            let id = item.req(NS_TYPES, "ItemId")?;
            items.push(ViewItem {
                id: id.req_attr("Id")?.to_string(),
                change_key: id.attr("ChangeKey").map(str::to_string),
                start: datetime_child(&item, "Start")?,
            });
        }
    }
    Ok(ViewPage {
        items,
        total_in_view,
        includes_last,
    })
}

/// The properties `GetItem` asks for (BACKENDS.md's field mapping).
const ITEM_FIELDS: &[&str] = &[
    "item:Subject",
    "item:Sensitivity",
    "item:Categories",
    "item:LastModifiedTime",
    "item:ItemClass",
    "calendar:Start",
    "calendar:End",
    "calendar:IsAllDayEvent",
    "calendar:LegacyFreeBusyStatus",
    "calendar:Location",
    "calendar:Organizer",
    "calendar:RequiredAttendees",
    "calendar:OptionalAttendees",
    "calendar:Resources",
    "calendar:IsCancelled",
    "calendar:CalendarItemType",
    "calendar:OriginalStart",
    "calendar:UID",
    "calendar:StartTimeZone",
    "calendar:JoinOnlineMeetingUrl",
];

/// `GetItem` of up to [`GET_ITEM_BATCH`] calendar items with every property the canonical event
/// needs, including the clean global object id (and the non-clean one as a fallback).
pub fn get_items(ids: &[String]) -> impl FnOnce(&mut Writer) + '_ {
    move |w| {
        w.open("m:GetItem", &[])
            .open("m:ItemShape", &[])
            .text("t:BaseShape", "IdOnly")
            .open("t:AdditionalProperties", &[]);
        for field in ITEM_FIELDS {
            w.empty("t:FieldURI", &[("FieldURI", field)]);
        }
        for id in [PID_CLEAN_GOID, PID_GOID] {
            let id = id.to_string();
            w.empty(
                "t:ExtendedFieldURI",
                &[
                    ("PropertySetId", PSETID_MEETING),
                    ("PropertyId", id.as_str()),
                    ("PropertyType", "Binary"),
                ],
            );
        }
        w.close("t:AdditionalProperties").close("m:ItemShape");
        w.open("m:ItemIds", &[]);
        for id in ids {
            w.empty("t:ItemId", &[("Id", id.as_str())]);
        }
        w.close("m:ItemIds").close("m:GetItem");
    }
}

/// A name and address (`t:Mailbox` of EmailAddressType).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: Option<String>,
    pub routing_type: Option<String>,
    /// `Mailbox`, `PublicDL`, `Contact`, … (ResolveNames, GetRooms).
    pub mailbox_type: Option<String>,
}

fn read_mailbox(node: &Node<'_>) -> Mailbox {
    Mailbox {
        name: node.child_text(NS_TYPES, "Name").map(str::to_string),
        email: node
            .child_text(NS_TYPES, "EmailAddress")
            .map(str::to_string),
        routing_type: node.child_text(NS_TYPES, "RoutingType").map(str::to_string),
        mailbox_type: node.child_text(NS_TYPES, "MailboxType").map(str::to_string),
    }
}

/// An attendee: who and how they answered (`ResponseType`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawAttendee {
    pub mailbox: Mailbox,
    pub response: Option<String>,
}

/// A time zone definition (`StartTimeZone`, TimeZoneDefinitionType).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeZoneDef {
    /// Windows zone id (`W. Europe Standard Time`), or a custom one.
    pub id: Option<String>,
    pub name: Option<String>,
    /// Offset from UTC of the standard period in minutes (`Bias` is UTC − local, so the
    /// offset is its negation), when the definition carries periods.
    pub standard_offset_minutes: Option<i32>,
}

/// A recurrence as `GetItem` returns it for a master (read for completeness and tests;
/// calpump reads expanded instances from `CalendarView`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recurrence {
    /// The pattern element (`WeeklyRecurrence`, `DailyRecurrence`, …).
    pub pattern: String,
    pub interval: Option<u32>,
    pub days_of_week: Option<String>,
    /// The range element (`NumberedRecurrence`, `EndDateRecurrence`, `NoEndRecurrence`).
    pub range: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub number_of_occurrences: Option<u32>,
}

/// A calendar item as `GetItem` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarItem {
    pub id: String,
    pub change_key: Option<String>,
    pub item_class: Option<String>,
    pub subject: Option<String>,
    pub sensitivity: Option<String>,
    pub categories: Vec<String>,
    pub last_modified: Option<DateTime<Utc>>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub is_all_day: Option<bool>,
    pub free_busy: Option<String>,
    pub location: Option<String>,
    pub organizer: Option<Mailbox>,
    pub required: Vec<RawAttendee>,
    pub optional: Vec<RawAttendee>,
    pub resources: Vec<RawAttendee>,
    pub is_cancelled: Option<bool>,
    /// `Single`, `Occurrence`, `Exception`, `RecurringMaster`.
    pub item_type: Option<String>,
    pub original_start: Option<DateTime<Utc>>,
    pub uid: Option<String>,
    pub start_time_zone: Option<TimeZoneDef>,
    /// `JoinOnlineMeetingUrl` (or `OnlineMeetingJoinUrl`, whichever the server returns).
    pub join_url: Option<String>,
    /// PidLidCleanGlobalObjectId, base64.
    pub clean_goid: Option<String>,
    /// PidLidGlobalObjectId, base64.
    pub goid: Option<String>,
    pub recurrence: Option<Recurrence>,
}

fn read_attendees(node: &Node<'_>, name: &str) -> Vec<RawAttendee> {
    let Some(list) = node.child(NS_TYPES, name) else {
        return Vec::new();
    };
    list.all(NS_TYPES, "Attendee")
        .iter()
        .map(|a| RawAttendee {
            mailbox: a
                .child(NS_TYPES, "Mailbox")
                .map(|m| read_mailbox(&m))
                .unwrap_or_default(),
            response: a.child_text(NS_TYPES, "ResponseType").map(str::to_string),
        })
        .collect()
}

/// Largest magnitude accepted from [`parse_duration_minutes`]: 400 days. A zone's bias is at
/// most a day; anything near `i32::MAX` minutes is hostile or broken input.
const MAX_DURATION_MINUTES: f64 = 400.0 * 1440.0;

/// `xs:duration` like `-PT1H`, `PT5H30M`, `PT0M` in minutes; `None` for anything malformed
/// or longer than [`MAX_DURATION_MINUTES`] (never an overflow, whatever the server sends).
pub fn parse_duration_minutes(text: &str) -> Option<i32> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let rest = rest.strip_prefix('P')?;
    let mut minutes: f64 = 0.0;
    let mut number = String::new();
    let mut in_time = false;
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' | '.' => number.push(c),
            unit => {
                let value: f64 = number.parse().ok()?;
                number.clear();
                let factor = match (unit, in_time) {
                    ('D', false) => 1440.0,
                    ('H', true) => 60.0,
                    ('M', true) => 1.0,
                    ('S', true) => 1.0 / 60.0,
                    _ => return None,
                };
                minutes += value * factor;
                if !minutes.is_finite() || minutes > MAX_DURATION_MINUTES {
                    return None;
                }
            }
        }
    }
    if !number.is_empty() {
        return None;
    }
    // In range by the check above, so the cast and the negation cannot overflow.
    let minutes = minutes.round() as i32;
    Some(if negative { -minutes } else { minutes })
}

fn read_time_zone(node: &Node<'_>) -> TimeZoneDef {
    let periods = node
        .child(NS_TYPES, "Periods")
        .map(|p| p.all(NS_TYPES, "Period"))
        .unwrap_or_default();
    let standard = periods
        .iter()
        .find(|p| {
            p.attr("Name")
                .is_some_and(|n| n.eq_ignore_ascii_case("Standard"))
                || p.attr("Id").is_some_and(|id| id.ends_with("/Standard"))
        })
        .or(periods.first());
    TimeZoneDef {
        id: node.attr("Id").map(str::to_string),
        name: node.attr("Name").map(str::to_string),
        standard_offset_minutes: standard
            .and_then(|p| p.attr("Bias"))
            .and_then(parse_duration_minutes)
            .and_then(i32::checked_neg),
    }
}

fn read_recurrence(node: &Node<'_>) -> Recurrence {
    let mut out = Recurrence::default();
    for child in node.elements() {
        if child.el.ns.as_deref() != Some(NS_TYPES) {
            continue;
        }
        let name = child.name();
        if name.ends_with("Recurrence") && child.child(NS_TYPES, "StartDate").is_some() {
            out.range = name.to_string();
            out.start_date = child.child_text(NS_TYPES, "StartDate").map(str::to_string);
            out.end_date = child.child_text(NS_TYPES, "EndDate").map(str::to_string);
            out.number_of_occurrences = child
                .child_text(NS_TYPES, "NumberOfOccurrences")
                .and_then(|n| n.parse().ok());
        } else {
            out.pattern = name.to_string();
            out.interval = child
                .child_text(NS_TYPES, "Interval")
                .and_then(|n| n.parse().ok());
            out.days_of_week = child.child_text(NS_TYPES, "DaysOfWeek").map(str::to_string);
        }
    }
    out
}

fn extended_binary(node: &Node<'_>, property_id: u32) -> Option<String> {
    node.all(NS_TYPES, "ExtendedProperty").iter().find_map(|p| {
        let uri = p.child(NS_TYPES, "ExtendedFieldURI")?;
        let set = uri.attr("PropertySetId")?;
        let id = uri.attr("PropertyId")?;
        let id = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => id.parse::<u32>().ok()?,
        };
        (set.eq_ignore_ascii_case(PSETID_MEETING) && id == property_id)
            .then(|| p.child_text(NS_TYPES, "Value").map(str::to_string))
            .flatten()
    })
}

/// Reads one `t:CalendarItem` (lenient: unknown elements are skipped; a value of the wrong
/// form is an error naming its path).
pub fn read_calendar_item(node: &Node<'_>) -> Result<CalendarItem, XmlError> {
    let id = node.req(NS_TYPES, "ItemId")?;
    Ok(CalendarItem {
        id: id.req_attr("Id")?.to_string(),
        change_key: id.attr("ChangeKey").map(str::to_string),
        item_class: node.child_text(NS_TYPES, "ItemClass").map(str::to_string),
        subject: node.child(NS_TYPES, "Subject").map(|s| s.el.text.clone()),
        sensitivity: node.child_text(NS_TYPES, "Sensitivity").map(str::to_string),
        categories: node
            .child(NS_TYPES, "Categories")
            .map(|c| {
                c.all(NS_TYPES, "String")
                    .iter()
                    .map(|s| s.el.text.clone())
                    .collect()
            })
            .unwrap_or_default(),
        last_modified: datetime_child(node, "LastModifiedTime")?,
        start: datetime_child(node, "Start")?,
        end: datetime_child(node, "End")?,
        is_all_day: node.bool_child(NS_TYPES, "IsAllDayEvent")?,
        free_busy: node
            .child_text(NS_TYPES, "LegacyFreeBusyStatus")
            .map(str::to_string),
        location: node.child_text(NS_TYPES, "Location").map(str::to_string),
        organizer: node
            .child(NS_TYPES, "Organizer")
            .and_then(|o| o.child(NS_TYPES, "Mailbox"))
            .map(|m| read_mailbox(&m)),
        required: read_attendees(node, "RequiredAttendees"),
        optional: read_attendees(node, "OptionalAttendees"),
        resources: read_attendees(node, "Resources"),
        is_cancelled: node.bool_child(NS_TYPES, "IsCancelled")?,
        item_type: node
            .child_text(NS_TYPES, "CalendarItemType")
            .map(str::to_string),
        original_start: datetime_child(node, "OriginalStart")?,
        uid: node.child_text(NS_TYPES, "UID").map(str::to_string),
        start_time_zone: node
            .child(NS_TYPES, "StartTimeZone")
            .map(|tz| read_time_zone(&tz)),
        join_url: node
            .child_text(NS_TYPES, "JoinOnlineMeetingUrl")
            .or_else(|| node.child_text(NS_TYPES, "OnlineMeetingJoinUrl"))
            .map(str::to_string),
        clean_goid: extended_binary(node, PID_CLEAN_GOID),
        goid: extended_binary(node, PID_GOID),
        recurrence: node
            .child(NS_TYPES, "Recurrence")
            .map(|r| read_recurrence(&r)),
    })
}

/// The calendar items of one `GetItemResponseMessage` (`m:Items/t:CalendarItem`; other item
/// kinds are skipped).
pub fn read_get_item(message: &ResponseMessage<'_>) -> Result<Vec<CalendarItem>, XmlError> {
    let items = message.node.req(NS_MESSAGES, "Items")?;
    items
        .all(NS_TYPES, "CalendarItem")
        .iter()
        .map(read_calendar_item)
        .collect()
}

/// `SyncFolderItems` of a folder from `sync_state` (`None`: from the beginning), ids only.
pub fn sync_folder_items<'a>(
    folder: &'a FolderRef,
    sync_state: Option<&'a str>,
) -> impl FnOnce(&mut Writer) + 'a {
    move |w| {
        let max = SYNC_MAX_CHANGES.to_string();
        w.open("m:SyncFolderItems", &[])
            .open("m:ItemShape", &[])
            .text("t:BaseShape", "IdOnly")
            .close("m:ItemShape")
            .open("m:SyncFolderId", &[]);
        folder.write(w);
        w.close("m:SyncFolderId");
        if let Some(state) = sync_state.filter(|s| !s.is_empty()) {
            w.text("m:SyncState", state);
        }
        w.text("m:MaxChangesReturned", &max)
            .text("m:SyncScope", "NormalItems")
            .close("m:SyncFolderItems");
    }
}

/// One `SyncFolderItems` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    pub sync_state: String,
    pub includes_last: bool,
    pub creates: usize,
    pub updates: usize,
    pub deletes: usize,
    /// Item ids of deleted items (informational).
    pub deleted_ids: Vec<String>,
}

impl SyncPage {
    pub fn changes(&self) -> usize {
        self.creates + self.updates + self.deletes
    }
}

/// Reads a `SyncFolderItemsResponseMessage`.
pub fn read_sync_folder_items(message: &ResponseMessage<'_>) -> Result<SyncPage, XmlError> {
    let node = &message.node;
    let sync_state = node.req_text(NS_MESSAGES, "SyncState")?.to_string();
    let includes_last = node
        .bool_child(NS_MESSAGES, "IncludesLastItemInRange")?
        .unwrap_or(true);
    let mut page = SyncPage {
        sync_state,
        includes_last,
        creates: 0,
        updates: 0,
        deletes: 0,
        deleted_ids: Vec::new(),
    };
    if let Some(changes) = node.child(NS_MESSAGES, "Changes") {
        for change in changes.elements() {
            if change.el.ns.as_deref() != Some(NS_TYPES) {
                continue;
            }
            match change.name() {
                "Create" => page.creates += 1,
                "Update" => page.updates += 1,
                "Delete" => {
                    page.deletes += 1;
                    if let Some(id) = change.child(NS_TYPES, "ItemId").and_then(|i| i.attr("Id")) {
                        page.deleted_ids.push(id.to_string());
                    }
                }
                // ReadFlagChange: not a calendar change.
                _ => {}
            }
        }
    }
    Ok(page)
}

/// `GetRoomLists`.
pub fn get_room_lists() -> impl FnOnce(&mut Writer) {
    |w| {
        w.empty("m:GetRoomLists", &[]);
    }
}

/// The room lists of a `GetRoomListsResponse` (a single message: the response element itself
/// carries `ResponseClass`).
pub fn read_room_lists(response: &Node<'_>) -> Result<Vec<Mailbox>, XmlError> {
    let Some(lists) = response.child(NS_MESSAGES, "RoomLists") else {
        return Ok(Vec::new());
    };
    Ok(lists
        .all(NS_TYPES, "Address")
        .iter()
        .map(read_mailbox)
        .collect())
}

/// `GetRooms` of a room list.
pub fn get_rooms(room_list: &str) -> impl FnOnce(&mut Writer) + '_ {
    move |w| {
        w.open("m:GetRooms", &[])
            .open("m:RoomList", &[])
            .text("t:EmailAddress", room_list)
            .close("m:RoomList")
            .close("m:GetRooms");
    }
}

/// The rooms of a `GetRoomsResponse`.
pub fn read_rooms(response: &Node<'_>) -> Result<Vec<Mailbox>, XmlError> {
    let Some(rooms) = response.child(NS_MESSAGES, "Rooms") else {
        return Ok(Vec::new());
    };
    Ok(rooms
        .all(NS_TYPES, "Room")
        .iter()
        .filter_map(|room| room.child(NS_TYPES, "Id"))
        .map(|id| read_mailbox(&id))
        .collect())
}

/// `ResolveNames` of one entry (the directory only, no contact data).
pub fn resolve_names(entry: &str) -> impl FnOnce(&mut Writer) + '_ {
    move |w| {
        w.open(
            "m:ResolveNames",
            &[
                ("ReturnFullContactData", "false"),
                ("SearchScope", "ActiveDirectory"),
            ],
        )
        .text("m:UnresolvedEntry", entry)
        .close("m:ResolveNames");
    }
}

/// The mailboxes of a `ResolveNamesResponseMessage`.
pub fn read_resolve_names(message: &ResponseMessage<'_>) -> Result<Vec<Mailbox>, XmlError> {
    let Some(set) = message.node.child(NS_MESSAGES, "ResolutionSet") else {
        return Ok(Vec::new());
    };
    Ok(set
        .all(NS_TYPES, "Resolution")
        .iter()
        .filter_map(|r| r.child(NS_TYPES, "Mailbox"))
        .map(|m| read_mailbox(&m))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_minutes("-PT1H"), Some(-60));
        assert_eq!(parse_duration_minutes("PT5H30M"), Some(330));
        assert_eq!(parse_duration_minutes("PT0M"), Some(0));
        assert_eq!(parse_duration_minutes("P1D"), Some(1440));
        assert_eq!(parse_duration_minutes("garbage"), None);
        // Hostile or broken values: no overflow, no panic, no absurd offset.
        for hostile in [
            "PT99999999999999999999H",
            "-PT2147483648M",
            "P9999999999D",
            "PT1e400H",
            "PT.H",
            "PT1H1H1H99999999999M",
            "-P",
        ] {
            let parsed = parse_duration_minutes(hostile);
            assert!(
                parsed.is_none_or(|m| m.abs() <= 400 * 1440),
                "{hostile}: {parsed:?}"
            );
        }
        assert_eq!(parse_duration_minutes("PT99999999999999999999H"), None);
        assert_eq!(parse_duration_minutes("-P400D"), Some(-400 * 1440));
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            parse_datetime("2013-08-21T19:30:00Z")
                .expect("z")
                .to_rfc3339(),
            "2013-08-21T19:30:00+00:00"
        );
        assert_eq!(
            parse_datetime("2013-08-21T21:30:00+02:00")
                .expect("offset")
                .to_rfc3339(),
            "2013-08-21T19:30:00+00:00"
        );
        assert_eq!(
            parse_datetime("2013-08-21T19:30:00")
                .expect("naive")
                .to_rfc3339(),
            "2013-08-21T19:30:00+00:00"
        );
        assert!(parse_datetime("tomorrow").is_err());
    }
}
