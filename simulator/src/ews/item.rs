//! `t:CalendarItem` as FindItem, GetItem and SyncFolderItems return it.
//!
//! Element order is the schema's: `ItemType` then `CalendarItemType` (OfficeDev/Interop-TestSuites
//! `MS-OXWSCORE-types.xsd`, `MS-OXWSMTGS-types.xsd`). Shapes: `baseshape.md` (IdOnly, Default,
//! AllProperties), `additionalproperties.md` (`FieldURI`, `ExtendedFieldURI`), the three GetItem
//! samples in `getitem-operation-calendar-item.md`. Recurrence: `recurrence-patterns-and-ews.md`,
//! `how-to-access-a-recurring-series-by-using-ews-in-exchange.md` (`ModifiedOccurrences`,
//! `DeletedOccurrences`, `FirstOccurrence`, `LastOccurrence` on masters). Time zones:
//! `time-zones-and-ews-in-exchange.md` (`StartTimeZone`/`EndTimeZone` with Windows ids;
//! `MeetingTimeZone` for Exchange 2007 schemas). Global object ids as extended properties:
//! PSETID_Meeting `{6ED8DA90-450B-101B-98DA-00AA003F1305}` ids 0x23 (PidLidCleanGlobalObjectId)
//! and 0x3 (PidLidGlobalObjectId), [MS-OXPROPS]; FindItem returns only the organizer's name
//! (exchangelib documents this server behaviour in `fields.py`).

use super::soap::{ApiVersion, Fault};
use super::xml::{Element, TYP, esc};
use crate::tenant::directory::Mailbox;
use crate::tenant::ids::IdFormat;
use crate::tenant::model::{
    EventData, Instance, InstanceKind, Item, Pattern, RangeEnd, WeekIndex, overlaps,
};
use crate::tenant::{Tenant, store, zones};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    IdOnly,
    Default,
    AllProperties,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Best,
    Html,
    Text,
}

/// Which goid an extended property request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoidProp {
    Clean,
    Instance,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExtReq {
    /// The request's attributes, echoed in the response.
    pub attrs: Vec<(String, String)>,
    pub prop: Option<GoidProp>,
}

/// `ItemShape`: base shape, additional properties, body type.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub base: Base,
    pub fields: HashSet<String>,
    pub ext: Vec<ExtReq>,
    pub body_type: BodyType,
}

/// Where the item is being rendered: FindItem and SyncFolderItems return no "complex" properties
/// (bodies, attendee lists, recurrence blobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Find,
    Get,
    Sync,
}

const MEETING_GUID: &str = "6ed8da90-450b-101b-98da-00aa003f1305";

fn parse_int(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Shape {
    pub fn id_only() -> Shape {
        Shape {
            base: Base::IdOnly,
            fields: HashSet::new(),
            ext: Vec::new(),
            body_type: BodyType::Best,
        }
    }

    /// Parses `m:ItemShape` (or `m:FolderShape`: the same layout).
    pub fn parse(el: Option<&Element>) -> Result<Shape, Fault> {
        let Some(el) = el else {
            return Err(Fault::schema(
                "The element has incomplete content. List of possible elements expected: 'ItemShape'.",
                1,
                1,
            ));
        };
        let base = match el.child_text(TYP, "BaseShape") {
            Some("IdOnly") => Base::IdOnly,
            Some("Default") => Base::Default,
            Some("AllProperties") => Base::AllProperties,
            Some(other) => {
                return Err(Fault::schema(
                    &format!(
                        "The 'BaseShape' element is invalid - The value '{other}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:DefaultShapeNamesType' - The Enumeration constraint failed."
                    ),
                    1,
                    1,
                ));
            }
            None => {
                return Err(Fault::schema(
                    "The element 'ItemShape' has incomplete content. List of possible elements expected: 'BaseShape'.",
                    1,
                    1,
                ));
            }
        };
        let body_type = match el.child_text(TYP, "BodyType") {
            Some("HTML") => BodyType::Html,
            Some("Text") => BodyType::Text,
            _ => BodyType::Best,
        };
        let mut fields = HashSet::new();
        let mut ext = Vec::new();
        if let Some(ap) = el.child(TYP, "AdditionalProperties") {
            for p in &ap.children {
                if p.ns != TYP {
                    continue;
                }
                match p.name.as_str() {
                    "FieldURI" => {
                        if let Some(u) = p.attr("FieldURI") {
                            fields.insert(u.to_ascii_lowercase());
                        }
                    }
                    "ExtendedFieldURI" => {
                        let get = |n: &str| p.attr(n).map(str::trim);
                        let set_ok = get("PropertySetId").is_some_and(|g| {
                            g.trim_matches(|c| c == '{' || c == '}')
                                .eq_ignore_ascii_case(MEETING_GUID)
                        }) || get("DistinguishedPropertySetId") == Some("Meeting");
                        let binary = get("PropertyType") == Some("Binary");
                        let prop = match get("PropertyId").and_then(parse_int) {
                            Some(0x23) if set_ok && binary => Some(GoidProp::Clean),
                            Some(0x3) if set_ok && binary => Some(GoidProp::Instance),
                            _ => None,
                        };
                        ext.push(ExtReq {
                            attrs: p
                                .attrs
                                .iter()
                                .filter(|a| a.ns.is_empty())
                                .map(|a| (a.name.clone(), a.value.clone()))
                                .collect(),
                            prop,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(Shape {
            base,
            fields,
            ext,
            body_type,
        })
    }
}

/// What is rendered: a single item or series master, or one instance of a series.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    Item(&'a Item),
    Instance(Instance<'a>),
}

impl<'a> Target<'a> {
    pub fn item(&self) -> &'a Item {
        match self {
            Target::Item(i) => i,
            Target::Instance(i) => i.item,
        }
    }
    fn data(&self) -> &'a EventData {
        match self {
            Target::Item(i) => &i.data,
            Target::Instance(i) => i.data,
        }
    }
    fn start(&self) -> DateTime<Utc> {
        match self {
            Target::Item(i) => i.data.start,
            Target::Instance(i) => i.start,
        }
    }
    fn end(&self) -> DateTime<Utc> {
        match self {
            Target::Item(i) => i.data.end,
            Target::Instance(i) => i.end,
        }
    }
    /// The occurrence's original start (occurrences and exceptions).
    pub fn original_start(&self) -> Option<DateTime<Utc>> {
        match self {
            Target::Item(_) => None,
            Target::Instance(i) => i.original_start,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Target::Item(i) if i.series.is_some() => "RecurringMaster",
            Target::Item(_) => "Single",
            Target::Instance(i) => i.kind.ews(),
        }
    }
    fn last_modified(&self) -> DateTime<Utc> {
        match self {
            Target::Item(i) => i.last_modified,
            Target::Instance(i) => i.last_modified,
        }
    }
    fn instance(&self) -> Instance<'a> {
        match self {
            Target::Item(i) => whole(i),
            Target::Instance(i) => i.clone(),
        }
    }
}

/// The item as one "instance" (for ids and change keys of singles and masters).
pub fn whole(item: &Item) -> Instance<'_> {
    Instance {
        item,
        kind: InstanceKind::SingleInstance,
        original_start: None,
        start: item.data.start,
        end: item.data.end,
        data: &item.data,
        version: item.version,
        last_modified: item.last_modified,
    }
}

/// The instance of a series at an original start (occurrence or exception); `None` if the series
/// has no such occurrence or it was deleted.
pub fn instance_at(item: &Item, orig: DateTime<Utc>) -> Option<Instance<'_>> {
    let series = item.series.as_ref()?;
    if series.deleted.contains(&orig) {
        return None;
    }
    if let Some(ex) = series.exceptions.get(&orig) {
        return Some(Instance {
            item,
            kind: InstanceKind::Exception,
            original_start: Some(orig),
            start: ex.data.start,
            end: ex.data.end,
            data: &ex.data,
            version: ex.version,
            last_modified: ex.last_modified,
        });
    }
    if !item.has_occurrence(orig) {
        return None;
    }
    Some(Instance {
        item,
        kind: InstanceKind::Occurrence,
        original_start: Some(orig),
        start: orig,
        end: item.occurrence_end(orig),
        data: &item.data,
        version: item.version,
        last_modified: item.last_modified,
    })
}

pub fn dt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// xs:duration of a span (`PT1H30M`, `P1D`).
pub fn duration(d: Duration) -> String {
    let mut secs = d.num_seconds();
    let neg = secs < 0;
    secs = secs.abs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, (rest % 3600) / 60, rest % 60);
    let mut out = String::from(if neg { "-P" } else { "P" });
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h > 0 || m > 0 || s > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

/// The display name Windows gives a zone (`TimeZoneDefinition Name`).
pub fn zone_display_name(windows_id: &str) -> &'static str {
    match windows_id {
        "UTC" => "(UTC) Coordinated Universal Time",
        "W. Europe Standard Time" => "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        "GMT Standard Time" => "(UTC+00:00) Dublin, Edinburgh, Lisbon, London",
        "Romance Standard Time" => "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
        "Eastern Standard Time" => "(UTC-05:00) Eastern Time (US & Canada)",
        "Pacific Standard Time" => "(UTC-08:00) Pacific Time (US & Canada)",
        "E. South America Standard Time" => "(UTC-03:00) Brasilia",
        "India Standard Time" => "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi",
        "Tokyo Standard Time" => "(UTC+09:00) Osaka, Sapporo, Tokyo",
        "AUS Eastern Standard Time" => "(UTC+10:00) Canberra, Melbourne, Sydney",
        _ => "(UTC) Coordinated Universal Time",
    }
}

/// `BaseOffset` of a zone for `MeetingTimeZone`: minutes *added* to local time give UTC.
fn base_offset(z: &zones::Zone) -> String {
    use chrono::TimeZone;
    use chrono_tz::OffsetComponents;
    let off = z.tz.offset_from_utc_datetime(&Utc::now().naive_utc());
    duration(-off.base_utc_offset())
}

/// Graph spelling of a response → EWS `ResponseTypeType`.
pub fn response_type(graph: &str) -> &'static str {
    match graph {
        "organizer" => "Organizer",
        "tentativelyAccepted" => "Tentative",
        "accepted" => "Accept",
        "declined" => "Decline",
        "notResponded" => "NoResponseReceived",
        _ => "Unknown",
    }
}

/// `<t:Mailbox>` (EmailAddressType); `name_only` for FindItem's organizer.
pub fn mailbox_xml(tenant: &Tenant, name: &str, address: &str, name_only: bool) -> String {
    if name_only {
        return format!("<t:Mailbox><t:Name>{}</t:Name></t:Mailbox>", esc(name));
    }
    let kind = if tenant.mailbox(address).is_some() {
        "Mailbox"
    } else {
        "OneOff"
    };
    format!(
        "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>{kind}</t:MailboxType></t:Mailbox>",
        esc(name),
        esc(address)
    )
}

/// `<t:ItemId Id=… ChangeKey=…/>` of a target.
pub fn item_id_xml(tenant: &Tenant, m: &Mailbox, t: &Target<'_>) -> String {
    let id = tenant.item_id(m, t.item(), t.original_start(), IdFormat::Ews);
    let ck = tenant.change_key(m, &t.instance());
    format!("<t:ItemId Id=\"{}\" ChangeKey=\"{}\"/>", esc(&id), esc(&ck))
}

/// Folder change key: the folder's address and the mailbox's change sequence.
pub fn folder_change_key(m: &Mailbox, seq: u64) -> String {
    let mut b = vec![0x01, 0, 0, 0, 0x16, 0, 0, 0];
    b.extend_from_slice(&m.exchange_guid.0[..8]);
    b.extend_from_slice(&seq.to_le_bytes());
    STANDARD.encode(b)
}

pub struct Render<'a> {
    pub tenant: &'a Tenant,
    pub mailbox: &'a Mailbox,
    pub version: ApiVersion,
    /// The mailbox's change sequence (for the parent folder's change key).
    pub seq: u64,
}

const DEFAULT: &[&str] = &[
    "item:subject",
    "item:hasattachments",
    "calendar:start",
    "calendar:end",
    "calendar:legacyfreebusystatus",
    "calendar:location",
    "calendar:calendaritemtype",
    "calendar:organizer",
];

/// Not returned by FindItem or SyncFolderItems.
const COMPLEX: &[&str] = &[
    "item:body",
    "item:attachments",
    "item:mimecontent",
    "calendar:requiredattendees",
    "calendar:optionalattendees",
    "calendar:resources",
    "calendar:recurrence",
    "calendar:firstoccurrence",
    "calendar:lastoccurrence",
    "calendar:modifiedoccurrences",
    "calendar:deletedoccurrences",
];

impl Render<'_> {
    /// Appends `<t:CalendarItem>…</t:CalendarItem>`.
    pub fn calendar_item(&self, out: &mut String, t: &Target<'_>, shape: &Shape, mode: Mode) {
        let want = |uri: &str| -> bool {
            let complex = COMPLEX.contains(&uri);
            if complex && mode != Mode::Get {
                return false;
            }
            shape.fields.contains(uri)
                || match shape.base {
                    Base::IdOnly => false,
                    Base::Default => DEFAULT.contains(&uri),
                    Base::AllProperties => true,
                }
        };
        let tenant = self.tenant;
        let m = self.mailbox;
        let d = t.data();
        let item = t.item();
        let v = self.version;
        let mut s = String::with_capacity(1024);
        let el = |s: &mut String, name: &str, value: &str| {
            s.push_str(&format!("<t:{name}>{value}</t:{name}>"));
        };
        s.push_str("<t:CalendarItem>");
        s.push_str(&item_id_xml(tenant, m, t));
        if want("item:parentfolderid") {
            s.push_str(&format!(
                "<t:ParentFolderId Id=\"{}\" ChangeKey=\"{}\"/>",
                esc(&tenant.folder_id(m, item.calendar, false)),
                folder_change_key(m, self.seq)
            ));
        }
        if want("item:itemclass") {
            el(&mut s, "ItemClass", "IPM.Appointment");
        }
        if want("item:subject") {
            el(&mut s, "Subject", &esc(&d.subject));
        }
        if want("item:sensitivity") {
            el(&mut s, "Sensitivity", d.sensitivity.ews());
        }
        if want("item:body") {
            match shape.body_type {
                BodyType::Text => s.push_str(&format!(
                    "<t:Body BodyType=\"Text\" IsTruncated=\"false\">{}</t:Body>",
                    esc(&d.body)
                )),
                BodyType::Html | BodyType::Best => {
                    let html = format!(
                        "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n<div>{}</div>\r\n</body>\r\n</html>\r\n",
                        esc(&d.body).replace('\n', "<br>\r\n")
                    );
                    s.push_str(&format!(
                        "<t:Body BodyType=\"HTML\" IsTruncated=\"false\">{}</t:Body>",
                        esc(&html)
                    ));
                }
            }
        }
        if want("item:datetimereceived") {
            el(&mut s, "DateTimeReceived", &dt(item.created));
        }
        if want("item:size") {
            let size = 1200 + d.subject.len() + d.body.len() + 120 * d.attendees.len();
            el(&mut s, "Size", &size.to_string());
        }
        if want("item:categories") && !d.categories.is_empty() {
            s.push_str("<t:Categories>");
            for c in &d.categories {
                el(&mut s, "String", &esc(c));
            }
            s.push_str("</t:Categories>");
        }
        if want("item:importance") {
            el(&mut s, "Importance", d.importance.ews());
        }
        for (name, val) in [
            ("IsSubmitted", false),
            ("IsDraft", false),
            ("IsFromMe", false),
            ("IsResend", false),
            ("IsUnmodified", false),
        ] {
            if want(&format!("item:{}", name.to_ascii_lowercase())) {
                el(&mut s, name, if val { "true" } else { "false" });
            }
        }
        if want("item:datetimesent") {
            el(&mut s, "DateTimeSent", &dt(item.created));
        }
        if want("item:datetimecreated") {
            el(&mut s, "DateTimeCreated", &dt(item.created));
        }
        if want("item:reminderdueby") {
            el(&mut s, "ReminderDueBy", &dt(t.start()));
        }
        if want("item:reminderisset") {
            el(&mut s, "ReminderIsSet", "false");
        }
        if want("item:reminderminutesbeforestart") {
            el(&mut s, "ReminderMinutesBeforeStart", "15");
        }
        let names = |kind: crate::tenant::model::AttendeeType| {
            d.attendees
                .iter()
                .filter(|a| a.kind == kind)
                .map(|a| a.person.name.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        if want("item:displaycc") {
            el(
                &mut s,
                "DisplayCc",
                &esc(&names(crate::tenant::model::AttendeeType::Optional)),
            );
        }
        if want("item:displayto") {
            el(
                &mut s,
                "DisplayTo",
                &esc(&names(crate::tenant::model::AttendeeType::Required)),
            );
        }
        if want("item:hasattachments") {
            el(&mut s, "HasAttachments", "false");
        }
        for x in &shape.ext {
            let Some(p) = x.prop else { continue };
            let bytes = match p {
                GoidProp::Clean => item.goid.clean_bytes().to_vec(),
                GoidProp::Instance => item
                    .goid
                    .instance_bytes(store::instance_date(t.original_start())),
            };
            s.push_str("<t:ExtendedProperty><t:ExtendedFieldURI");
            for (k, v) in &x.attrs {
                s.push_str(&format!(" {k}=\"{}\"", esc(v)));
            }
            s.push_str(&format!(
                "/><t:Value>{}</t:Value></t:ExtendedProperty>",
                STANDARD.encode(bytes)
            ));
        }
        if want("item:culture") {
            el(&mut s, "Culture", "en-US");
        }
        if want("item:effectiverights") {
            s.push_str("<t:EffectiveRights><t:CreateAssociated>false</t:CreateAssociated><t:CreateContents>false</t:CreateContents><t:CreateHierarchy>false</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems></t:EffectiveRights>");
        }
        if want("item:lastmodifiedname") {
            el(&mut s, "LastModifiedName", &esc(&d.organizer.name));
        }
        if want("item:lastmodifiedtime") {
            el(&mut s, "LastModifiedTime", &dt(t.last_modified()));
        }
        if want("item:isassociated") {
            el(&mut s, "IsAssociated", "false");
        }
        // CalendarItemType.
        if want("calendar:uid") {
            el(&mut s, "UID", &esc(&item.goid.ews_uid()));
        }
        if want("calendar:recurrenceid")
            && let Some(o) = t.original_start()
        {
            el(&mut s, "RecurrenceId", &dt(o));
        }
        if want("calendar:datetimestamp") {
            el(&mut s, "DateTimeStamp", &dt(item.last_modified));
        }
        if want("calendar:start") {
            el(&mut s, "Start", &dt(t.start()));
        }
        if want("calendar:end") {
            el(&mut s, "End", &dt(t.end()));
        }
        if want("calendar:originalstart")
            && let Some(o) = t.original_start()
        {
            el(&mut s, "OriginalStart", &dt(o));
        }
        let b = |x: bool| if x { "true" } else { "false" };
        if want("calendar:isalldayevent") {
            el(&mut s, "IsAllDayEvent", b(d.is_all_day));
        }
        if want("calendar:legacyfreebusystatus") {
            el(&mut s, "LegacyFreeBusyStatus", d.show_as.ews());
        }
        if want("calendar:location") {
            el(&mut s, "Location", &esc(&d.location));
        }
        let is_meeting = !d.attendees.is_empty();
        if want("calendar:ismeeting") {
            el(&mut s, "IsMeeting", b(is_meeting));
        }
        if want("calendar:iscancelled") {
            el(&mut s, "IsCancelled", b(d.is_cancelled));
        }
        if want("calendar:isrecurring") {
            el(
                &mut s,
                "IsRecurring",
                b(matches!(t, Target::Instance(i) if i.kind != InstanceKind::SingleInstance)),
            );
        }
        if want("calendar:meetingrequestwassent") {
            el(
                &mut s,
                "MeetingRequestWasSent",
                b(item.is_organizer && is_meeting),
            );
        }
        if want("calendar:isresponserequested") {
            el(&mut s, "IsResponseRequested", b(is_meeting));
        }
        if want("calendar:calendaritemtype") {
            el(&mut s, "CalendarItemType", t.kind());
        }
        if want("calendar:myresponsetype") {
            let r = if item.is_organizer {
                "Organizer"
            } else {
                d.attendees
                    .iter()
                    .find(|a| a.person.address.eq_ignore_ascii_case(&m.smtp))
                    .map(|a| response_type(&a.response))
                    .unwrap_or("Unknown")
            };
            el(&mut s, "MyResponseType", r);
        }
        if want("calendar:organizer") {
            s.push_str("<t:Organizer>");
            s.push_str(&mailbox_xml(
                tenant,
                &d.organizer.name,
                &d.organizer.address,
                mode == Mode::Find,
            ));
            s.push_str("</t:Organizer>");
        }
        for (uri, name, kind) in [
            (
                "calendar:requiredattendees",
                "RequiredAttendees",
                crate::tenant::model::AttendeeType::Required,
            ),
            (
                "calendar:optionalattendees",
                "OptionalAttendees",
                crate::tenant::model::AttendeeType::Optional,
            ),
            (
                "calendar:resources",
                "Resources",
                crate::tenant::model::AttendeeType::Resource,
            ),
        ] {
            if !want(uri) {
                continue;
            }
            let list: Vec<_> = d.attendees.iter().filter(|a| a.kind == kind).collect();
            if list.is_empty() {
                continue;
            }
            s.push_str(&format!("<t:{name}>"));
            for a in list {
                s.push_str("<t:Attendee>");
                s.push_str(&mailbox_xml(
                    tenant,
                    &a.person.name,
                    &a.person.address,
                    false,
                ));
                el(&mut s, "ResponseType", response_type(&a.response));
                s.push_str("</t:Attendee>");
            }
            s.push_str(&format!("</t:{name}>"));
        }
        if want("calendar:conflictingmeetingcount") {
            el(&mut s, "ConflictingMeetingCount", "0");
        }
        if want("calendar:adjacentmeetingcount") {
            el(&mut s, "AdjacentMeetingCount", "0");
        }
        if want("calendar:duration") {
            el(&mut s, "Duration", &duration(t.end() - t.start()));
        }
        // All-day items too: Exchange stores them at midnight of the creator's zone and names
        // that zone (`Start` 2026-11-27T23:00:00Z with `StartTimeZone` W. Europe Standard Time).
        let zone = d.zone;
        if want("calendar:timezone") {
            el(&mut s, "TimeZone", &esc(zone_display_name(zone.windows)));
        }
        if want("calendar:appointmentsequencenumber") {
            el(
                &mut s,
                "AppointmentSequenceNumber",
                &(item.version.saturating_sub(1)).to_string(),
            );
        }
        if want("calendar:appointmentstate") {
            let state = u8::from(is_meeting)
                | (u8::from(is_meeting && !item.is_organizer) << 1)
                | (u8::from(d.is_cancelled) << 2);
            el(&mut s, "AppointmentState", &state.to_string());
        }
        if let (Target::Item(it), Some(series)) = (t, item.series.as_ref()) {
            if want("calendar:recurrence") {
                s.push_str(&recurrence_xml(series));
            }
            let occ = |inst: Instance<'_>| {
                let tt = Target::Instance(inst);
                format!(
                    "{}<t:Start>{}</t:Start><t:End>{}</t:End><t:OriginalStart>{}</t:OriginalStart>",
                    item_id_xml(tenant, m, &tt),
                    dt(tt.start()),
                    dt(tt.end()),
                    dt(tt.original_start().unwrap_or(tt.start()))
                )
            };
            // FirstOccurrence/LastOccurrence: the series' first and last (not deleted) instances.
            let horizon = it.data.start + Duration::days(366 * 5);
            let live: Vec<_> = it
                .occurrence_starts(horizon)
                .into_iter()
                .filter(|o| !series.deleted.contains(o))
                .collect();
            if want("calendar:firstoccurrence")
                && let Some(inst) = live.first().and_then(|o| instance_at(it, *o))
            {
                s.push_str(&format!(
                    "<t:FirstOccurrence>{}</t:FirstOccurrence>",
                    occ(inst)
                ));
            }
            if want("calendar:lastoccurrence")
                && !matches!(series.end, RangeEnd::NoEnd)
                && let Some(inst) = live.last().and_then(|o| instance_at(it, *o))
            {
                s.push_str(&format!(
                    "<t:LastOccurrence>{}</t:LastOccurrence>",
                    occ(inst)
                ));
            }
            if want("calendar:modifiedoccurrences") && !series.exceptions.is_empty() {
                s.push_str("<t:ModifiedOccurrences>");
                for orig in series.exceptions.keys() {
                    if let Some(inst) = instance_at(it, *orig) {
                        s.push_str(&format!("<t:Occurrence>{}</t:Occurrence>", occ(inst)));
                    }
                }
                s.push_str("</t:ModifiedOccurrences>");
            }
            if want("calendar:deletedoccurrences") && !series.deleted.is_empty() {
                s.push_str("<t:DeletedOccurrences>");
                for orig in &series.deleted {
                    s.push_str(&format!(
                        "<t:DeletedOccurrence><t:Start>{}</t:Start></t:DeletedOccurrence>",
                        dt(*orig)
                    ));
                }
                s.push_str("</t:DeletedOccurrences>");
            }
        }
        if v.is_2007() {
            if want("calendar:meetingtimezone") {
                s.push_str(&format!(
                    "<t:MeetingTimeZone TimeZoneName=\"{}\"><t:BaseOffset>{}</t:BaseOffset></t:MeetingTimeZone>",
                    esc(zone.windows),
                    base_offset(zone)
                ));
            }
        } else {
            for (uri, name) in [
                ("calendar:starttimezone", "StartTimeZone"),
                ("calendar:endtimezone", "EndTimeZone"),
            ] {
                if want(uri) {
                    s.push_str(&format!(
                        "<t:{name} Id=\"{}\" Name=\"{}\"/>",
                        esc(zone.windows),
                        esc(zone_display_name(zone.windows))
                    ));
                }
            }
        }
        if want("calendar:conferencetype") {
            el(&mut s, "ConferenceType", "0");
        }
        if want("calendar:allownewtimeproposal") {
            el(&mut s, "AllowNewTimeProposal", "true");
        }
        if want("calendar:isonlinemeeting") {
            el(&mut s, "IsOnlineMeeting", b(d.online_url.is_some()));
        }
        if v.0 >= 7 {
            if want("calendar:starttimezoneid") {
                el(&mut s, "StartTimeZoneId", &esc(zone.windows));
            }
            if want("calendar:endtimezoneid") {
                el(&mut s, "EndTimeZoneId", &esc(zone.windows));
            }
        }
        if v.at_least_2013() {
            if want("calendar:joinonlinemeetingurl")
                && let Some(u) = &d.online_url
            {
                el(&mut s, "JoinOnlineMeetingUrl", &esc(u));
            }
            // Exchange Online's newer name for the same URL, only when asked for by name.
            if shape.fields.contains("calendar:onlinemeetingjoinurl")
                && let Some(u) = &d.online_url
            {
                el(&mut s, "OnlineMeetingJoinUrl", &esc(u));
            }
            if want("calendar:isorganizer") {
                el(&mut s, "IsOrganizer", b(item.is_organizer));
            }
        }
        s.push_str("</t:CalendarItem>");
        out.push_str(&s);
    }
}

fn weekday(d: chrono::Weekday) -> &'static str {
    match d {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}

/// `t:Recurrence` (RecurrenceType): pattern then range (`recurrence-patterns-and-ews.md`).
pub fn recurrence_xml(series: &crate::tenant::model::Series) -> String {
    let pattern = match &series.pattern {
        Pattern::Daily { interval } => {
            format!("<t:DailyRecurrence><t:Interval>{interval}</t:Interval></t:DailyRecurrence>")
        }
        Pattern::Weekly { interval, days } => format!(
            "<t:WeeklyRecurrence><t:Interval>{interval}</t:Interval><t:DaysOfWeek>{}</t:DaysOfWeek><t:FirstDayOfWeek>Sunday</t:FirstDayOfWeek></t:WeeklyRecurrence>",
            days.iter()
                .map(|d| weekday(*d))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Pattern::AbsoluteMonthly { interval, day } => format!(
            "<t:AbsoluteMonthlyRecurrence><t:Interval>{interval}</t:Interval><t:DayOfMonth>{day}</t:DayOfMonth></t:AbsoluteMonthlyRecurrence>"
        ),
        Pattern::RelativeMonthly {
            interval,
            index,
            day,
        } => format!(
            "<t:RelativeMonthlyRecurrence><t:Interval>{interval}</t:Interval><t:DaysOfWeek>{}</t:DaysOfWeek><t:DayOfWeekIndex>{}</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence>",
            weekday(*day),
            match index {
                WeekIndex::First => "First",
                WeekIndex::Second => "Second",
                WeekIndex::Third => "Third",
                WeekIndex::Fourth => "Fourth",
                WeekIndex::Last => "Last",
            }
        ),
    };
    let start = series.start_date.format("%Y-%m-%d");
    let range = match &series.end {
        RangeEnd::NoEnd => {
            format!("<t:NoEndRecurrence><t:StartDate>{start}</t:StartDate></t:NoEndRecurrence>")
        }
        RangeEnd::EndDate { end } => format!(
            "<t:EndDateRecurrence><t:StartDate>{start}</t:StartDate><t:EndDate>{}</t:EndDate></t:EndDateRecurrence>",
            end.format("%Y-%m-%d")
        ),
        RangeEnd::Numbered { count } => format!(
            "<t:NumberedRecurrence><t:StartDate>{start}</t:StartDate><t:NumberOfOccurrences>{count}</t:NumberOfOccurrences></t:NumberedRecurrence>"
        ),
    };
    format!("<t:Recurrence>{pattern}{range}</t:Recurrence>")
}

/// Whether an instance overlaps a window (re-exported for the operations).
pub fn in_window(i: &Instance<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    overlaps(i.start, i.end, from, to)
}

/// The global object id bytes of a target, for tests.
pub fn goid_bytes(t: &Target<'_>, prop: GoidProp) -> Vec<u8> {
    match prop {
        GoidProp::Clean => t.item().goid.clean_bytes().to_vec(),
        GoidProp::Instance => t
            .item()
            .goid
            .instance_bytes(store::instance_date(t.original_start())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_xs_durations() {
        assert_eq!(duration(Duration::minutes(90)), "PT1H30M");
        assert_eq!(duration(Duration::days(1)), "P1D");
        assert_eq!(duration(Duration::zero()), "PT0S");
        assert_eq!(duration(-Duration::hours(1)), "-PT1H");
    }
}
