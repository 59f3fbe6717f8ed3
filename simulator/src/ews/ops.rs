//! The EWS operations on the tenant model.
//!
//! Docs (`docs/web-service-reference/` unless noted): `getfolder-operation.md`,
//! `findfolder-operation.md`, `finditem-operation.md`, `calendarview.md`
//! (`ErrorCalendarViewRangeTooBig` above 2 years per `responsecode.md`), `indexedpageitemview.md`,
//! `getitem-operation-calendar-item.md`, `occurrenceitemid.md`, `recurringmasteritemid.md`,
//! `getroomlists-operation.md`, `getrooms-operation.md`, `resolvenames-operation.md`,
//! `convertid-operation.md`; `docs/exchange-web-services/ews-throttling-in-exchange.md`
//! (EWSFindCountLimit 1000: a FindItem/FindFolder that would return more without paging fails
//! with `ErrorExceededFindCountLimit`, a paged one is cut at 1000).

use super::auth::Principal;
use super::item::{self, Mode, Render, Shape, Target};
use super::soap::{self, Fault, Outcome, message, response_open};
use super::xml::{Element, MSG, TYP, esc};
use crate::control::{Control, Protocol};
use crate::tenant::directory::{Mailbox, MailboxKind};
use crate::tenant::ids::IdFormat;
use crate::tenant::{MailboxState, Tenant};
use chrono::{DateTime, Months, Utc};

/// Find results larger than this fail without paging and are cut with paging (EWSFindCountLimit).
pub const FIND_COUNT_LIMIT: usize = 1000;

/// The synthetic folder numbers of the mailbox root and the top of the information store.
pub const ROOT: u16 = 0xFFFF;
pub const MSG_ROOT: u16 = 0xFFFE;

/// Distinguished folder names the schema accepts (`distinguishedfolderid.md`).
const DISTINGUISHED: &[&str] = &[
    "calendar",
    "contacts",
    "deleteditems",
    "drafts",
    "inbox",
    "journal",
    "notes",
    "outbox",
    "sentitems",
    "tasks",
    "msgfolderroot",
    "publicfoldersroot",
    "root",
    "junkemail",
    "searchfolders",
    "voicemail",
    "recoverableitemsroot",
    "recoverableitemsdeletions",
    "recoverableitemsversions",
    "recoverableitemspurges",
    "archiveroot",
    "archivemsgfolderroot",
    "archivedeleteditems",
    "archiveinbox",
    "archiverecoverableitemsroot",
    "archiverecoverableitemsdeletions",
    "archiverecoverableitemsversions",
    "archiverecoverableitemspurges",
    "syncissues",
    "conflicts",
    "localfailures",
    "serverfailures",
    "recipientcache",
    "quickcontacts",
    "conversationhistory",
    "adminauditlogs",
    "todosearch",
    "mycontacts",
    "directory",
    "imcontactlist",
    "peopleconnect",
    "favorites",
];

/// What every operation needs.
pub struct Ctx<'a> {
    pub control: &'a Control,
    pub base_url: &'a str,
    pub principal: &'a Principal,
    pub req: &'a soap::Request,
    /// The mailbox the request acts as: the impersonated user, the caller's own mailbox, or
    /// (app-only with `X-AnchorMailbox` only) the anchor.
    pub acting: Option<u32>,
    pub impersonating: bool,
}

/// A resolved folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderRef {
    pub mailbox: u32,
    pub folder: u16,
}

impl Ctx<'_> {
    /// The mailbox's items hidden from EWS (`Control::hide_event`).
    pub fn hidden(&self, mailbox: u32) -> std::collections::HashSet<u64> {
        self.control.hidden_items(Protocol::Ews, mailbox)
    }

    pub fn tenant(&self) -> &Tenant {
        self.control.tenant()
    }

    /// Whether the acting identity may open another mailbox (delegate access / full access).
    pub fn may_open(&self, target: u32) -> bool {
        if Some(target) == self.acting {
            return true;
        }
        match self.principal {
            Principal::App { .. } => true,
            Principal::Account { upn, .. } | Principal::Delegated { upn, .. } => {
                // An impersonated user has no rights on other mailboxes; a service account with
                // the ApplicationImpersonation role was also granted full access to them.
                !self.impersonating && self.control.account(upn).is_some_and(|a| a.impersonation)
            }
        }
    }

    /// Resolves a `t:FolderId` or `t:DistinguishedFolderId` (with optional `t:Mailbox`).
    pub fn resolve_folder(&self, el: &Element) -> Result<FolderRef, Result<&'static str, Fault>> {
        let t = self.tenant();
        let r = match el.name.as_str() {
            "FolderId" => {
                let id = el.attr("Id").unwrap_or("");
                let (mb, folder) = t
                    .resolve_folder_id(id)
                    .ok_or(Ok("ErrorInvalidIdMalformed"))?;
                FolderRef {
                    mailbox: mb,
                    folder,
                }
            }
            "DistinguishedFolderId" => {
                let name = el.attr("Id").unwrap_or("");
                if !DISTINGUISHED.contains(&name) {
                    return Err(Err(Fault::schema(
                        &format!(
                            "The 'Id' attribute is invalid - The value '{name}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:DistinguishedFolderIdNameType' - The Enumeration constraint failed."
                        ),
                        1,
                        1,
                    )));
                }
                let mb = match el
                    .child(TYP, "Mailbox")
                    .and_then(|m| m.child_text(TYP, "EmailAddress"))
                {
                    Some(addr) => t.mailbox(addr).ok_or(Ok("ErrorNonExistentMailbox"))?.index,
                    None => self.acting.ok_or(Ok("ErrorNonExistentMailbox"))?,
                };
                let folder = match name {
                    "calendar" => 0,
                    "root" => ROOT,
                    "msgfolderroot" => MSG_ROOT,
                    _ => return Err(Ok("ErrorFolderNotFound")),
                };
                FolderRef {
                    mailbox: mb,
                    folder,
                }
            }
            _ => return Err(Ok("ErrorInvalidIdMalformed")),
        };
        if !self.may_open(r.mailbox) {
            return Err(Ok("ErrorAccessDenied"));
        }
        if r.folder != ROOT && r.folder != MSG_ROOT {
            let exists = t
                .read(r.mailbox, |s| {
                    s.calendars.iter().any(|c| c.index == r.folder)
                })
                .unwrap_or(false);
            if !exists {
                return Err(Ok("ErrorFolderNotFound"));
            }
        }
        Ok(r)
    }
}

/// The first mailbox a request names (for statistics): a `t:Mailbox/t:EmailAddress` in a
/// folder id, or the mailbox of a folder or item id.
pub fn named_mailbox(tenant: &Tenant, op: &Element) -> Option<String> {
    fn walk(tenant: &Tenant, el: &Element, depth: usize) -> Option<String> {
        if depth > 8 {
            return None;
        }
        if el.ns == TYP {
            match el.name.as_str() {
                "DistinguishedFolderId" => {
                    if let Some(a) = el
                        .child(TYP, "Mailbox")
                        .and_then(|m| m.child_text(TYP, "EmailAddress"))
                    {
                        return Some(a.to_lowercase());
                    }
                }
                "FolderId" => {
                    let (mb, _) = tenant.resolve_folder_id(el.attr("Id")?)?;
                    return tenant.directory.get(mb).map(|m| m.smtp.clone());
                }
                "ItemId" | "OccurrenceItemId" | "RecurringMasterItemId" => {
                    let id = el
                        .attr("Id")
                        .or_else(|| el.attr("RecurringMasterId"))
                        .or_else(|| el.attr("OccurrenceId"))?;
                    let (mb, _, _) = tenant.resolve_item_id(id)?;
                    return tenant.directory.get(mb).map(|m| m.smtp.clone());
                }
                _ => {}
            }
        }
        el.children.iter().find_map(|c| walk(tenant, c, depth + 1))
    }
    walk(tenant, op, 0)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn folder_targets(op: &Element, container: &str) -> Vec<Element> {
    op.child(MSG, container)
        .map(|c| c.children.iter().filter(|e| e.ns == TYP).cloned().collect())
        .unwrap_or_default()
}

fn error_message(out: &mut String, name: &str, code: &'static str) {
    message(out, name, &Outcome::error(code), "");
}

// ---- folders ----

fn child_calendars(s: &MailboxState, folder: u16, deep: bool) -> Vec<u16> {
    let mut out = Vec::new();
    let direct: Vec<u16> = match folder {
        ROOT => {
            return if deep {
                let mut v = vec![MSG_ROOT];
                v.extend(child_calendars(s, MSG_ROOT, true));
                v
            } else {
                vec![MSG_ROOT]
            };
        }
        MSG_ROOT => s
            .calendars
            .iter()
            .filter(|c| c.parent.is_none())
            .map(|c| c.index)
            .collect(),
        f => s
            .calendars
            .iter()
            .filter(|c| c.parent == Some(f))
            .map(|c| c.index)
            .collect(),
    };
    for c in direct {
        out.push(c);
        if deep {
            out.extend(child_calendars(s, c, true));
        }
    }
    out
}

fn folder_xml(ctx: &Ctx<'_>, m: &Mailbox, s: &MailboxState, folder: u16, shape: &Shape) -> String {
    use item::Base;
    let t = ctx.tenant();
    let want = |uri: &str, default: bool| {
        shape.fields.contains(uri)
            || match shape.base {
                Base::IdOnly => false,
                Base::Default => default,
                Base::AllProperties => true,
            }
    };
    let is_cal = folder != ROOT && folder != MSG_ROOT;
    let tag = if is_cal { "CalendarFolder" } else { "Folder" };
    let ck = item::folder_change_key(m, s.seq);
    let mut x = format!(
        "<t:{tag}><t:FolderId Id=\"{}\" ChangeKey=\"{ck}\"/>",
        esc(&t.folder_id(m, folder, false))
    );
    let parent = match folder {
        ROOT => None,
        MSG_ROOT => Some(ROOT),
        f => Some(
            s.calendars
                .iter()
                .find(|c| c.index == f)
                .and_then(|c| c.parent)
                .unwrap_or(MSG_ROOT),
        ),
    };
    if want("folder:parentfolderid", false)
        && let Some(p) = parent
    {
        x.push_str(&format!(
            "<t:ParentFolderId Id=\"{}\" ChangeKey=\"{ck}\"/>",
            esc(&t.folder_id(m, p, false))
        ));
    }
    if want("folder:folderclass", false) {
        x.push_str(if is_cal {
            "<t:FolderClass>IPF.Appointment</t:FolderClass>"
        } else {
            "<t:FolderClass>IPF.Note</t:FolderClass>"
        });
    }
    if want("folder:displayname", true) {
        let name = match folder {
            ROOT => String::new(),
            MSG_ROOT => "Top of Information Store".into(),
            f => s
                .calendars
                .iter()
                .find(|c| c.index == f)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        x.push_str(&format!("<t:DisplayName>{}</t:DisplayName>", esc(&name)));
    }
    if want("folder:totalcount", true) {
        let hidden = ctx.hidden(m.index);
        let n = if is_cal {
            s.items
                .values()
                .filter(|i| i.calendar == folder && !hidden.contains(&i.num))
                .count()
        } else {
            0
        };
        x.push_str(&format!("<t:TotalCount>{n}</t:TotalCount>"));
    }
    if want("folder:childfoldercount", true) {
        x.push_str(&format!(
            "<t:ChildFolderCount>{}</t:ChildFolderCount>",
            child_calendars(s, folder, false).len()
        ));
    }
    if want("folder:effectiverights", false) {
        x.push_str("<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true</t:CreateContents><t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems></t:EffectiveRights>");
    }
    if ctx.req.version.at_least_2013() && shape.fields.contains("folder:distinguishedfolderid") {
        let d = match folder {
            ROOT => Some("root"),
            MSG_ROOT => Some("msgfolderroot"),
            0 => Some("calendar"),
            _ => None,
        };
        if let Some(d) = d {
            x.push_str(&format!(
                "<t:DistinguishedFolderId>{d}</t:DistinguishedFolderId>"
            ));
        }
    }
    if !is_cal && want("folder:unreadcount", true) {
        x.push_str("<t:UnreadCount>0</t:UnreadCount>");
    }
    x.push_str(&format!("</t:{tag}>"));
    x
}

/// `GetFolder` (`getfolder-operation.md`).
pub fn get_folder(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let op = &ctx.req.op;
    let shape = Shape::parse(op.child(MSG, "FolderShape"))?;
    let mut out = response_open("GetFolder");
    out.push_str("<m:ResponseMessages>");
    for f in folder_targets(op, "FolderIds") {
        let name = "GetFolderResponseMessage";
        let r = match ctx.resolve_folder(&f) {
            Ok(r) => r,
            Err(Ok(code)) => {
                error_message(&mut out, name, code);
                continue;
            }
            Err(Err(fault)) => return Err(fault),
        };
        let t = ctx.tenant();
        let Some(m) = t.directory.get(r.mailbox) else {
            error_message(&mut out, name, "ErrorNonExistentMailbox");
            continue;
        };
        let xml = t
            .read(r.mailbox, |s| folder_xml(ctx, m, s, r.folder, &shape))
            .unwrap_or_default();
        message(
            &mut out,
            name,
            &Outcome::Success,
            &format!("<m:Folders>{xml}</m:Folders>"),
        );
    }
    out.push_str("</m:ResponseMessages></m:GetFolderResponse>");
    Ok(out)
}

/// Offset and limit of an `IndexedPageItemView`/`IndexedPageFolderView`.
struct Paging {
    max: Option<usize>,
    offset: usize,
    from_end: bool,
}

fn paging(view: &Element) -> Paging {
    Paging {
        max: view
            .attr("MaxEntriesReturned")
            .and_then(|v| v.trim().parse().ok()),
        offset: view
            .attr("Offset")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        from_end: view.attr("BasePoint") == Some("End"),
    }
}

/// Applies indexed paging to `total` entries: (range of indices, next offset, includes last).
fn page(p: &Paging, total: usize) -> Result<(std::ops::Range<usize>, usize, bool), &'static str> {
    let limit = match p.max {
        Some(m) => m.min(FIND_COUNT_LIMIT),
        None => {
            if total.saturating_sub(p.offset) > FIND_COUNT_LIMIT {
                return Err("ErrorExceededFindCountLimit");
            }
            usize::MAX
        }
    };
    let (start, end) = if p.from_end {
        let end = total.saturating_sub(p.offset);
        (end.saturating_sub(limit), end)
    } else {
        let start = p.offset.min(total);
        (start, start.saturating_add(limit).min(total))
    };
    let includes_last = if p.from_end { start == 0 } else { end >= total };
    let next = if p.from_end { total - start } else { end };
    Ok((start..end, next, includes_last))
}

/// `FindFolder` (`findfolder-operation.md`): Shallow or Deep below each parent.
pub fn find_folder(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let op = &ctx.req.op;
    let shape = Shape::parse(op.child(MSG, "FolderShape"))?;
    let deep = match op.attr("Traversal") {
        Some("Deep") => true,
        Some("Shallow") | Some("SoftDeleted") => false,
        other => {
            return Err(Fault::schema(
                &format!(
                    "The 'Traversal' attribute is invalid - The value '{}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:FolderQueryTraversalType' - The Enumeration constraint failed.",
                    other.unwrap_or("")
                ),
                1,
                1,
            ));
        }
    };
    let view = op.child(MSG, "IndexedPageFolderView");
    let mut out = response_open("FindFolder");
    out.push_str("<m:ResponseMessages>");
    for f in folder_targets(op, "ParentFolderIds") {
        let name = "FindFolderResponseMessage";
        let r = match ctx.resolve_folder(&f) {
            Ok(r) => r,
            Err(Ok(code)) => {
                error_message(&mut out, name, code);
                continue;
            }
            Err(Err(fault)) => return Err(fault),
        };
        let t = ctx.tenant();
        let Some(m) = t.directory.get(r.mailbox) else {
            error_message(&mut out, name, "ErrorNonExistentMailbox");
            continue;
        };
        let res = t
            .read(r.mailbox, |s| {
                let all = child_calendars(s, r.folder, deep);
                let p = view.map(paging).unwrap_or(Paging {
                    max: None,
                    offset: 0,
                    from_end: false,
                });
                let (range, next, last) = page(&p, all.len())?;
                let mut x = String::new();
                for f in &all[range] {
                    x.push_str(&folder_xml(ctx, m, s, *f, &shape));
                }
                let offset = if view.is_some() {
                    format!(" IndexedPagingOffset=\"{next}\"")
                } else {
                    String::new()
                };
                Ok::<String, &'static str>(format!(
                    "<m:RootFolder{offset} TotalItemsInView=\"{}\" IncludesLastItemInRange=\"{last}\"><t:Folders>{x}</t:Folders></m:RootFolder>",
                    all.len()
                ))
            })
            .unwrap_or(Err("ErrorNonExistentMailbox"));
        match res {
            Ok(x) => message(&mut out, name, &Outcome::Success, &x),
            Err(code) => error_message(&mut out, name, code),
        }
    }
    out.push_str("</m:ResponseMessages></m:FindFolderResponse>");
    Ok(out)
}

// ---- items ----

/// `FindItem` with `CalendarView` (expanded instances) or indexed paging over singles and
/// series masters (`finditem-operation.md`, `calendarview.md`, `indexedpageitemview.md`).
pub fn find_item(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let op = &ctx.req.op;
    let shape = Shape::parse(op.child(MSG, "ItemShape"))?;
    let cal_view = op.child(MSG, "CalendarView");
    let indexed = op.child(MSG, "IndexedPageItemView");
    let mut window = None;
    if let Some(v) = cal_view {
        let (Some(from), Some(to)) = (
            v.attr("StartDate").and_then(parse_time),
            v.attr("EndDate").and_then(parse_time),
        ) else {
            return Err(Fault::schema(
                "The 'StartDate' or 'EndDate' attribute of 'CalendarView' is missing or not a valid xs:dateTime.",
                1,
                1,
            ));
        };
        let max = v
            .attr("MaxEntriesReturned")
            .and_then(|x| x.trim().parse::<usize>().ok());
        window = Some((from, to, max));
    }
    let mut out = response_open("FindItem");
    out.push_str("<m:ResponseMessages>");
    for f in folder_targets(op, "ParentFolderIds") {
        let name = "FindItemResponseMessage";
        if op.child(MSG, "Restriction").is_some() || op.child(MSG, "QueryString").is_some() {
            error_message(&mut out, name, "ErrorUnsupportedQueryFilter");
            continue;
        }
        let r = match ctx.resolve_folder(&f) {
            Ok(r) => r,
            Err(Ok(code)) => {
                error_message(&mut out, name, code);
                continue;
            }
            Err(Err(fault)) => return Err(fault),
        };
        let t = ctx.tenant();
        let Some(m) = t.directory.get(r.mailbox) else {
            error_message(&mut out, name, "ErrorNonExistentMailbox");
            continue;
        };
        let is_cal = r.folder != ROOT && r.folder != MSG_ROOT;
        let hidden = ctx.hidden(r.mailbox);
        let res: Result<String, &'static str> = t
            .read(r.mailbox, |s| {
                let render = Render {
                    tenant: t,
                    mailbox: m,
                    version: ctx.req.version,
                    seq: s.seq,
                };
                let mut items = String::new();
                if let Some((from, to, max)) = window {
                    if !is_cal {
                        return Err("ErrorCalendarFolderIsInvalidForCalendarView");
                    }
                    if to < from {
                        return Err("ErrorCalendarEndDateIsEarlierThanStartDate");
                    }
                    if from.checked_add_months(Months::new(24)).is_some_and(|l| to > l) {
                        return Err("ErrorCalendarViewRangeTooBig");
                    }
                    let mut all = s.instances(Some(r.folder), from, to);
                    all.retain(|i| !hidden.contains(&i.item.num));
                    let total = all.len();
                    let limit = match max {
                        Some(n) => n.min(FIND_COUNT_LIMIT),
                        None if total > FIND_COUNT_LIMIT => {
                            return Err("ErrorExceededFindCountLimit");
                        }
                        None => total,
                    };
                    for inst in all.iter().take(limit) {
                        let target = if inst.original_start.is_none() {
                            Target::Item(inst.item)
                        } else {
                            Target::Instance(inst.clone())
                        };
                        render.calendar_item(&mut items, &target, &shape, Mode::Find);
                    }
                    Ok(format!(
                        "<m:RootFolder TotalItemsInView=\"{total}\" IncludesLastItemInRange=\"{}\"><t:Items>{items}</t:Items></m:RootFolder>",
                        limit >= total
                    ))
                } else {
                    let mut list: Vec<_> = if is_cal {
                        s.items
                            .values()
                            .filter(|i| i.calendar == r.folder && !hidden.contains(&i.num))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    list.sort_by_key(|i| (i.data.start, i.num));
                    let p = indexed.map(paging).unwrap_or(Paging {
                        max: None,
                        offset: 0,
                        from_end: false,
                    });
                    let (range, next, last) = page(&p, list.len())?;
                    for it in &list[range] {
                        render.calendar_item(&mut items, &Target::Item(it), &shape, Mode::Find);
                    }
                    let offset = if indexed.is_some() {
                        format!(" IndexedPagingOffset=\"{next}\"")
                    } else {
                        String::new()
                    };
                    Ok(format!(
                        "<m:RootFolder{offset} TotalItemsInView=\"{}\" IncludesLastItemInRange=\"{last}\"><t:Items>{items}</t:Items></m:RootFolder>",
                        list.len()
                    ))
                }
            })
            .unwrap_or(Err("ErrorNonExistentMailbox"));
        match res {
            Ok(x) => message(&mut out, name, &Outcome::Success, &x),
            Err(code) => error_message(&mut out, name, code),
        }
    }
    out.push_str("</m:ResponseMessages></m:FindItemResponse>");
    Ok(out)
}

/// The item an id element names: (mailbox, item number, occurrence original start, want master).
enum IdRef {
    Item(u32, u64, Option<DateTime<Utc>>),
    OccurrenceIndex(u32, u64, usize),
    MasterOf(u32, u64),
}

fn parse_item_ref(t: &Tenant, el: &Element) -> Result<IdRef, &'static str> {
    match el.name.as_str() {
        "ItemId" => {
            let (mb, num, occ) = t
                .resolve_item_id(el.attr("Id").unwrap_or(""))
                .ok_or("ErrorInvalidIdMalformed")?;
            Ok(IdRef::Item(mb, num, occ))
        }
        "OccurrenceItemId" => {
            let (mb, num, occ) = t
                .resolve_item_id(el.attr("RecurringMasterId").unwrap_or(""))
                .ok_or("ErrorInvalidIdMalformed")?;
            if occ.is_some() {
                return Err("ErrorCalendarCannotUseIdForOccurrenceId");
            }
            let idx = el
                .attr("InstanceIndex")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|i| *i >= 1)
                .ok_or("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange")?;
            Ok(IdRef::OccurrenceIndex(mb, num, idx))
        }
        "RecurringMasterItemId" => {
            let (mb, num, _) = t
                .resolve_item_id(el.attr("OccurrenceId").unwrap_or(""))
                .ok_or("ErrorInvalidIdMalformed")?;
            Ok(IdRef::MasterOf(mb, num))
        }
        _ => Err("ErrorInvalidIdMalformed"),
    }
}

/// `GetItem` (`getitem-operation-calendar-item.md`): one response message per id, in order.
pub fn get_item(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let op = &ctx.req.op;
    let shape = Shape::parse(op.child(MSG, "ItemShape"))?;
    let t = ctx.tenant();
    let mut out = response_open("GetItem");
    out.push_str("<m:ResponseMessages>");
    for el in folder_targets(op, "ItemIds") {
        let name = "GetItemResponseMessage";
        let r = match parse_item_ref(t, &el) {
            Ok(r) => r,
            Err(code) => {
                error_message(&mut out, name, code);
                continue;
            }
        };
        let mb = match r {
            IdRef::Item(mb, ..) | IdRef::OccurrenceIndex(mb, ..) | IdRef::MasterOf(mb, _) => mb,
        };
        if !ctx.may_open(mb) {
            error_message(&mut out, name, "ErrorAccessDenied");
            continue;
        }
        let Some(m) = t.directory.get(mb) else {
            error_message(&mut out, name, "ErrorItemNotFound");
            continue;
        };
        let hidden = ctx.hidden(mb);
        let res: Result<String, &'static str> = t
            .read(mb, |s| {
                let render = Render {
                    tenant: t,
                    mailbox: m,
                    version: ctx.req.version,
                    seq: s.seq,
                };
                let mut x = String::new();
                let target = match r {
                    IdRef::Item(_, num, occ) => {
                        let it = s
                            .items
                            .get(&num)
                            .filter(|it| !hidden.contains(&it.num))
                            .ok_or("ErrorItemNotFound")?;
                        match occ {
                            None => Target::Item(it),
                            Some(o) => Target::Instance(
                                item::instance_at(it, o).ok_or("ErrorItemNotFound")?,
                            ),
                        }
                    }
                    IdRef::OccurrenceIndex(_, num, idx) => {
                        let it = s
                            .items
                            .get(&num)
                            .filter(|it| !hidden.contains(&it.num))
                            .ok_or("ErrorItemNotFound")?;
                        let series = it
                            .series
                            .as_ref()
                            .ok_or("ErrorCalendarCannotUseIdForOccurrenceId")?;
                        let horizon = it.data.start + chrono::Duration::days(366 * 20);
                        let starts = it.occurrence_starts(horizon);
                        let o = *starts
                            .get(idx - 1)
                            .ok_or("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange")?;
                        if series.deleted.contains(&o) {
                            return Err("ErrorCalendarOccurrenceIsDeletedFromRecurrence");
                        }
                        Target::Instance(item::instance_at(it, o).ok_or("ErrorItemNotFound")?)
                    }
                    IdRef::MasterOf(_, num) => {
                        let it = s
                            .items
                            .get(&num)
                            .filter(|it| !hidden.contains(&it.num))
                            .ok_or("ErrorItemNotFound")?;
                        if it.series.is_none() {
                            return Err("ErrorCalendarCannotUseIdForRecurringMasterId");
                        }
                        Target::Item(it)
                    }
                };
                render.calendar_item(&mut x, &target, &shape, Mode::Get);
                Ok(x)
            })
            .unwrap_or(Err("ErrorItemNotFound"));
        match res {
            Ok(x) => message(
                &mut out,
                name,
                &Outcome::Success,
                &format!("<m:Items>{x}</m:Items>"),
            ),
            Err(code) => error_message(&mut out, name, code),
        }
    }
    out.push_str("</m:ResponseMessages></m:GetItemResponse>");
    Ok(out)
}

// ---- directory ----

fn address(name: &str, email: &str, kind: &str) -> String {
    format!(
        "<t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>{kind}</t:MailboxType>",
        esc(name),
        esc(email)
    )
}

/// `GetRoomLists` (`getroomlists-operation.md`): the response has no ResponseMessages.
pub fn get_room_lists(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let t = ctx.tenant();
    let mut x = String::from(
        "<m:GetRoomListsResponse ResponseClass=\"Success\" xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseCode>NoError</m:ResponseCode><m:RoomLists>",
    );
    for l in &t.directory.room_lists {
        x.push_str("<t:Address>");
        x.push_str(&address(&l.display_name, &l.smtp, "PublicDL"));
        x.push_str("</t:Address>");
    }
    x.push_str("</m:RoomLists></m:GetRoomListsResponse>");
    Ok(x)
}

/// `GetRooms` (`getrooms-operation.md`); an unknown list is `ErrorNameResolutionNoResults`.
pub fn get_rooms(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let t = ctx.tenant();
    let addr = ctx
        .req
        .op
        .child(MSG, "RoomList")
        .and_then(|r| r.child_text(TYP, "EmailAddress"))
        .unwrap_or("");
    let open = "<m:GetRoomsResponse ResponseClass=\"";
    let ns = "\" xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">";
    let Some(list) = t
        .directory
        .room_list(addr)
        .filter(|l| l.smtp.eq_ignore_ascii_case(addr.trim()))
    else {
        return Ok(format!(
            "{open}Error{ns}<m:MessageText>{}</m:MessageText><m:ResponseCode>ErrorNameResolutionNoResults</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetRoomsResponse>",
            soap::text("ErrorNameResolutionNoResults")
        ));
    };
    let mut x = format!("{open}Success{ns}<m:ResponseCode>NoError</m:ResponseCode><m:Rooms>");
    for m in list.rooms.iter().filter_map(|i| t.directory.get(*i)) {
        x.push_str("<t:Room><t:Id>");
        x.push_str(&address(&m.display_name, &m.smtp, "Mailbox"));
        x.push_str("</t:Id></t:Room>");
    }
    x.push_str("</m:Rooms></m:GetRoomsResponse>");
    Ok(x)
}

/// `ResolveNames` (`resolvenames-operation.md`): users, rooms and equipment by address, name
/// or prefix; more than one match is a `Warning` with `ErrorNameResolutionMultipleResults`.
pub fn resolve_names(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let t = ctx.tenant();
    let op = &ctx.req.op;
    let full = op.attr("ReturnFullContactData") == Some("true");
    let entry = op.child_text(MSG, "UnresolvedEntry").unwrap_or("");
    let q = entry
        .trim()
        .trim_start_matches("smtp:")
        .trim_start_matches("SMTP:")
        .to_lowercase();
    let lists: Vec<(String, String, &'static str)> = t
        .directory
        .room_lists
        .iter()
        .map(|l| (l.display_name.clone(), l.smtp.clone(), "PublicDL"))
        .collect();
    let mut hits: Vec<(String, String, &'static str, Option<&Mailbox>)> = Vec::new();
    if !q.is_empty() {
        if let Some(m) = t.mailbox(&q) {
            hits.push((m.display_name.clone(), m.smtp.clone(), "Mailbox", Some(m)));
        } else if let Some((n, a, k)) = lists.iter().find(|(_, a, _)| *a == q) {
            hits.push((n.clone(), a.clone(), k, None));
        } else {
            for m in &t.directory.mailboxes {
                let name = m.display_name.to_lowercase();
                if m.smtp.starts_with(&q)
                    || name.starts_with(&q)
                    || name.split(' ').any(|w| w.starts_with(&q))
                {
                    hits.push((m.display_name.clone(), m.smtp.clone(), "Mailbox", Some(m)));
                }
            }
            for (n, a, k) in &lists {
                if a.starts_with(&q) || n.to_lowercase().starts_with(&q) {
                    hits.push((n.clone(), a.clone(), k, None));
                }
            }
        }
    }
    let mut out = response_open("ResolveNames");
    out.push_str("<m:ResponseMessages>");
    let name = "ResolveNamesResponseMessage";
    if hits.is_empty() {
        error_message(&mut out, name, "ErrorNameResolutionNoResults");
    } else {
        let total = hits.len();
        let shown = total.min(100);
        let mut x = format!(
            "<m:ResolutionSet TotalItemsInView=\"{total}\" IncludesLastItemInRange=\"{}\">",
            shown == total
        );
        for (n, a, k, m) in hits.iter().take(shown) {
            x.push_str("<t:Resolution><t:Mailbox>");
            x.push_str(&address(n, a, k));
            x.push_str("</t:Mailbox>");
            if full {
                x.push_str(&format!(
                    "<t:Contact><t:DisplayName>{}</t:DisplayName>",
                    esc(n)
                ));
                if let Some(g) = m.and_then(|m| m.given_name.as_ref()) {
                    x.push_str(&format!("<t:GivenName>{}</t:GivenName>", esc(g)));
                }
                x.push_str(&format!(
                    "<t:EmailAddresses><t:Entry Key=\"EmailAddress1\">SMTP:{}</t:Entry></t:EmailAddresses>",
                    esc(a)
                ));
                if let Some(m) = m {
                    if let Some(b) = &m.building {
                        x.push_str(&format!(
                            "<t:PhysicalAddresses><t:Entry Key=\"Business\"><t:Street>{}</t:Street></t:Entry></t:PhysicalAddresses>",
                            esc(b)
                        ));
                    }
                    if m.kind == MailboxKind::Room {
                        x.push_str(&format!(
                            "<t:OfficeLocation>{}</t:OfficeLocation>",
                            esc(&m.display_name)
                        ));
                    }
                }
                x.push_str("<t:ContactSource>ActiveDirectory</t:ContactSource>");
                if let Some(s) = m.and_then(|m| m.surname.as_ref()) {
                    x.push_str(&format!("<t:Surname>{}</t:Surname>", esc(s)));
                }
                x.push_str("</t:Contact>");
            }
            x.push_str("</t:Resolution>");
        }
        x.push_str("</m:ResolutionSet>");
        let outcome = if total > 1 {
            Outcome::Warning("ErrorNameResolutionMultipleResults")
        } else {
            Outcome::Success
        };
        message(&mut out, name, &outcome, &x);
    }
    out.push_str("</m:ResponseMessages></m:ResolveNamesResponse>");
    Ok(out)
}

/// `ConvertId` (`convertid-operation.md`) between `EwsId`, `EwsImmutableId`, `EntryId` and
/// `HexEntryId` for calendar items of the tenant.
pub fn convert_id(ctx: &Ctx<'_>) -> Result<String, Fault> {
    use crate::tenant::ids::decode_url_token;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let t = ctx.tenant();
    let op = &ctx.req.op;
    let dest = op.attr("DestinationFormat").unwrap_or("");
    let mut out = String::from(
        "<m:ConvertIdResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseMessages>",
    );
    let name = "ConvertIdResponseMessage";
    for el in folder_targets(op, "SourceIds") {
        let id = el.attr("Id").unwrap_or("");
        let format = el.attr("Format").unwrap_or("");
        let mailbox = el.attr("Mailbox").unwrap_or("");
        let decoded = match format {
            "EwsId" | "EwsImmutableId" | "EntryId" => Some(id.to_string()),
            "HexEntryId" => hex::decode(id).ok().map(|b| STANDARD.encode(b)),
            _ => None,
        };
        let resolved = decoded.and_then(|d| t.resolve_item_id(&d).map(|r| (d, r)));
        let Some((d, (mb, _, _))) = resolved else {
            error_message(&mut out, name, "ErrorInvalidIdMalformed");
            continue;
        };
        if !ctx.may_open(mb) {
            error_message(&mut out, name, "ErrorAccessDenied");
            continue;
        }
        let converted = match dest {
            "EwsId" => t.translate_id(&d, IdFormat::Ews),
            "EwsImmutableId" => t.translate_id(&d, IdFormat::EwsImmutable),
            "EntryId" => t
                .translate_id(&d, IdFormat::EntryId)
                .and_then(|x| decode_url_token(&x))
                .map(|b| STANDARD.encode(b)),
            "HexEntryId" => t
                .translate_id(&d, IdFormat::EntryId)
                .and_then(|x| decode_url_token(&x))
                .map(hex::encode_upper),
            _ => {
                return Err(Fault::schema(
                    &format!(
                        "The 'DestinationFormat' attribute is invalid - The value '{dest}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:IdFormatType' - The Enumeration constraint failed."
                    ),
                    1,
                    1,
                ));
            }
        };
        match converted {
            Some(c) => message(
                &mut out,
                name,
                &Outcome::Success,
                &format!(
                    "<m:AlternateId xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"t:AlternateIdType\" Format=\"{}\" Id=\"{}\" Mailbox=\"{}\"/>",
                    esc(dest),
                    esc(&c),
                    esc(mailbox)
                ),
            ),
            None => error_message(&mut out, name, "ErrorItemNotFound"),
        }
    }
    out.push_str("</m:ResponseMessages></m:ConvertIdResponse>");
    Ok(out)
}

/// A response to an operation that carries one error message (injected `ErrorServerBusy` in a
/// 200 body, as Exchange Online sends it; thunderbird/ews-rs `soap.rs` quotes a real one).
pub fn error_body(op: &str, code: &'static str, message_xml: Option<String>) -> String {
    let outcome = Outcome::Error { code, message_xml };
    match op {
        "GetRoomLists" | "GetRooms" => {
            let Outcome::Error { message_xml, .. } = &outcome else {
                return String::new();
            };
            format!(
                "<m:{op}Response ResponseClass=\"Error\" xmlns:m=\"{MSG}\" xmlns:t=\"{TYP}\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{}</m:{op}Response>",
                esc(soap::text(code)),
                message_xml
                    .as_ref()
                    .map(|x| format!("<m:MessageXml>{x}</m:MessageXml>"))
                    .unwrap_or_default()
            )
        }
        _ => {
            let mut out = response_open(op);
            out.push_str("<m:ResponseMessages>");
            let tail = if op == "SyncFolderItems" {
                "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
            } else {
                ""
            };
            message(&mut out, &format!("{op}ResponseMessage"), &outcome, tail);
            out.push_str(&format!("</m:ResponseMessages></m:{op}Response>"));
            out
        }
    }
}
