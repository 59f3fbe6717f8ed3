//! `SyncFolderItems` (`docs/web-service-reference/syncfolderitems-operation.md`,
//! `docs/exchange-web-services/how-to-synchronize-items-by-using-ews-in-exchange.md`).
//!
//! The first call (no `SyncState`) returns a `Create` for every item of the folder; later calls
//! return `Create`/`Update`/`Delete` for what changed since the state was handed out. Like the
//! real service it reports series masters and single items, never occurrences (a changed
//! occurrence is an `Update` of its master), at most `MaxChangesReturned` (1–512) per call, with
//! `IncludesLastItemInRange=false` while more remain. The `SyncState` is opaque base64 encoding
//! (mailbox, folder, change sequence, phase, cursor); a state this process never handed out is
//! `ErrorInvalidSyncStateData`. Calendar items carry no read flag, so `ReadFlagChange` never
//! occurs.

use super::item::{self, Mode, Render, Shape, Target};
use super::ops::{Ctx, MSG_ROOT, ROOT};
use super::soap::{Fault, Outcome, message, response_open};
use super::xml::{MSG, TYP, esc};
use crate::tenant::ids::IdFormat;
use crate::tenant::rng::Guid;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::HashSet;

const MAGIC: &[u8; 4] = b"CPS1";
/// The most changes one SyncFolderItems returns (`syncfolderitems-operation.md`: 512).
pub const MAX_CHANGES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncState {
    pub mailbox: Guid,
    pub folder: u16,
    /// The mailbox change sequence the state stands on.
    pub seq: u64,
    /// `false`: still enumerating the folder's items (initial sync); `true`: reporting changes.
    pub incremental: bool,
    /// The last item number already returned in this phase.
    pub cursor: u64,
}

impl SyncState {
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(43);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.mailbox.0);
        b.extend_from_slice(&self.folder.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.push(u8::from(self.incremental));
        b.extend_from_slice(&self.cursor.to_le_bytes());
        let sum: u32 = b.iter().map(|x| u32::from(*x)).sum();
        b.extend_from_slice(&sum.to_le_bytes());
        STANDARD.encode(b)
    }

    pub fn decode(s: &str) -> Option<SyncState> {
        let b = STANDARD.decode(s.trim()).ok()?;
        if b.len() != 43 || &b[..4] != MAGIC {
            return None;
        }
        let sum: u32 = b[..39].iter().map(|x| u32::from(*x)).sum();
        if sum.to_le_bytes() != b[39..43] {
            return None;
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(&b[4..20]);
        Some(SyncState {
            mailbox: Guid(g),
            folder: u16::from_le_bytes([b[20], b[21]]),
            seq: u64::from_le_bytes(b[22..30].try_into().ok()?),
            incremental: b[30] == 1,
            cursor: u64::from_le_bytes(b[31..39].try_into().ok()?),
        })
    }
}

fn invalid_state(out: &mut String) {
    message(
        out,
        "SyncFolderItemsResponseMessage",
        &Outcome::error("ErrorInvalidSyncStateData"),
        "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
    );
}

/// `SyncFolderItems`.
pub fn sync_folder_items(ctx: &Ctx<'_>) -> Result<String, Fault> {
    let op = &ctx.req.op;
    let shape = Shape::parse(op.child(MSG, "ItemShape"))?;
    let max = op
        .child_text(MSG, "MaxChangesReturned")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=MAX_CHANGES).contains(n))
        .ok_or_else(|| {
            Fault::schema(
                "The 'MaxChangesReturned' element is invalid - The value must be between 1 and 512.",
                1,
                1,
            )
        })?;
    let folder_el = op
        .child(MSG, "SyncFolderId")
        .and_then(|f| f.children.iter().find(|c| c.ns == TYP).cloned())
        .ok_or_else(|| {
            Fault::schema(
                "The element 'SyncFolderItems' has incomplete content. List of possible elements expected: 'SyncFolderId'.",
                1,
                1,
            )
        })?;
    let t = ctx.tenant();
    let mut out = response_open("SyncFolderItems");
    out.push_str("<m:ResponseMessages>");
    let name = "SyncFolderItemsResponseMessage";
    let r = match ctx.resolve_folder(&folder_el) {
        Ok(r) => r,
        Err(Ok(code)) => {
            message(
                &mut out,
                name,
                &Outcome::error(code),
                "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
            );
            out.push_str("</m:ResponseMessages></m:SyncFolderItemsResponse>");
            return Ok(out);
        }
        Err(Err(f)) => return Err(f),
    };
    let Some(m) = t.directory.get(r.mailbox) else {
        invalid_state(&mut out);
        out.push_str("</m:ResponseMessages></m:SyncFolderItemsResponse>");
        return Ok(out);
    };
    let given = op.child_text(MSG, "SyncState").filter(|s| !s.is_empty());
    let parsed = match given {
        None => None,
        Some(s) => match SyncState::decode(s) {
            Some(st) if st.mailbox == m.exchange_guid && st.folder == r.folder => Some(st),
            _ => {
                invalid_state(&mut out);
                out.push_str("</m:ResponseMessages></m:SyncFolderItemsResponse>");
                return Ok(out);
            }
        },
    };
    let ignore: HashSet<u64> = op
        .child(MSG, "Ignore")
        .map(|i| {
            i.children_named(TYP, "ItemId")
                .filter_map(|e| t.resolve_item_id(e.attr("Id").unwrap_or("")))
                .filter(|(mb, _, _)| *mb == r.mailbox)
                .map(|(_, n, _)| n)
                .collect()
        })
        .unwrap_or_default();
    let is_cal = r.folder != ROOT && r.folder != MSG_ROOT;
    // Items hidden from EWS (`Control::hide_event`) are, for EWS, absent.
    let hidden = ctx.hidden(r.mailbox);
    let body = t.read(r.mailbox, |s| {
        let render = Render {
            tenant: t,
            mailbox: m,
            version: ctx.req.version,
            seq: s.seq,
        };
        let state = parsed.unwrap_or(SyncState {
            mailbox: m.exchange_guid,
            folder: r.folder,
            seq: s.seq,
            incremental: false,
            cursor: 0,
        });
        if state.seq > s.seq {
            return None;
        }
        let mut changes = String::new();
        let mut n = 0usize;
        let next: SyncState;
        let includes_last: bool;
        if !state.incremental {
            let items: Vec<_> = s
                .items
                .values()
                .filter(|i| is_cal && i.calendar == r.folder && i.num > state.cursor)
                .filter(|i| !hidden.contains(&i.num))
                .filter(|i| !ignore.contains(&i.num))
                .collect();
            for it in items.iter().take(max) {
                changes.push_str("<t:Create>");
                render.calendar_item(&mut changes, &Target::Item(it), &shape, Mode::Sync);
                changes.push_str("</t:Create>");
                n += 1;
            }
            if items.len() > max {
                next = SyncState {
                    cursor: items[max - 1].num,
                    ..state
                };
                includes_last = false;
            } else {
                next = SyncState {
                    incremental: true,
                    cursor: 0,
                    ..state
                };
                includes_last = s
                    .changes_since(state.seq, Some(r.folder))
                    .map(|c| c.is_empty())
                    .unwrap_or(true);
            }
        } else {
            let all = s.changes_since(state.seq, Some(r.folder)).ok()?;
            let pending: Vec<_> = all
                .into_iter()
                .filter(|c| c.item > state.cursor && !ignore.contains(&c.item))
                .collect();
            for c in pending.iter().take(max) {
                let after = c.after.filter(|it| !hidden.contains(&it.num));
                match (c.before, after) {
                    (_, Some(after)) => {
                        let tag = if c.before.is_some() { "Update" } else { "Create" };
                        changes.push_str(&format!("<t:{tag}>"));
                        render.calendar_item(&mut changes, &Target::Item(after), &shape, Mode::Sync);
                        changes.push_str(&format!("</t:{tag}>"));
                    }
                    (Some(before), None) => {
                        let id = t.item_id(m, before, None, IdFormat::Ews);
                        let ck = t.change_key(m, &item::whole(before));
                        changes.push_str(&format!(
                            "<t:Delete><t:ItemId Id=\"{}\" ChangeKey=\"{}\"/></t:Delete>",
                            esc(&id),
                            esc(&ck)
                        ));
                    }
                    (None, None) => continue,
                }
                n += 1;
            }
            if pending.len() > max {
                next = SyncState {
                    cursor: pending[max - 1].item,
                    ..state
                };
                includes_last = false;
            } else {
                next = SyncState {
                    seq: s.seq,
                    incremental: true,
                    cursor: 0,
                    ..state
                };
                includes_last = true;
            }
        }
        tracing::debug!(mailbox = %m.smtp, changes = n, includes_last, "SyncFolderItems");
        Some(format!(
            "<m:SyncState>{}</m:SyncState><m:IncludesLastItemInRange>{includes_last}</m:IncludesLastItemInRange><m:Changes>{changes}</m:Changes>",
            next.encode()
        ))
    });
    match body.flatten() {
        Some(x) => message(&mut out, name, &Outcome::Success, &x),
        None => invalid_state(&mut out),
    }
    out.push_str("</m:ResponseMessages></m:SyncFolderItemsResponse>");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_states_round_trip_and_reject_tampering() {
        let s = SyncState {
            mailbox: Guid([7; 16]),
            folder: 1,
            seq: 42,
            incremental: true,
            cursor: 9,
        };
        let e = s.encode();
        assert_eq!(SyncState::decode(&e), Some(s));
        let mut b = STANDARD.decode(&e).unwrap_or_default();
        b[25] ^= 1;
        assert_eq!(SyncState::decode(&STANDARD.encode(b)), None);
        assert_eq!(SyncState::decode("not base64!"), None);
    }
}
