//! Item and folder ids: opaque strings that encode where an item lives.
//!
//! Real Exchange ids are base64 of a binary structure; EWS prints it in standard base64, Graph's
//! REST id is the same with `/`→`-` and `+`→`_` (Graph docs: `user-translateexchangeids.md`,
//! `concepts/outlook-immutable-id.md`). A regular id changes when an item moves to another
//! folder; an immutable id (`Prefer: IdType="ImmutableId"`) does not. The simulator's binary
//! forms are its own, but keep those properties:
//!
//! * regular: `00 03 24 00` | mailbox GUID | `F` | calendar u16 | item u64 | occurrence flag | original start i64
//! * immutable: `00 09 00 2E` | mailbox GUID | `I` | item u64 | occurrence flag | original start i64
//! * entry id (PR_ENTRYID-like): `00 00 00 00` | the regular payload
//! * folder: `00 01 2E 00` | mailbox GUID | `C` | calendar u16
//!
//! Change keys (EWS `ChangeKey`, Graph `changeKey` and `@odata.etag`) encode the item and its
//! version, so they change on every modification.

use super::rng::Guid;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chrono::{DateTime, Utc};

const REGULAR: [u8; 4] = [0x00, 0x03, 0x24, 0x00];
const IMMUTABLE: [u8; 4] = [0x00, 0x09, 0x00, 0x2E];
const ENTRY: [u8; 4] = [0x00, 0x00, 0x00, 0x00];
const FOLDER: [u8; 4] = [0x00, 0x01, 0x2E, 0x00];

/// The format an id is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdFormat {
    /// EWS `ItemId Id` (standard base64, regular id).
    Ews,
    /// Graph REST id (URL-safe base64, regular id).
    Rest,
    /// Graph REST immutable id (URL-safe base64, immutable id).
    RestImmutable,
    /// EWS immutable id (standard base64, immutable id).
    EwsImmutable,
    /// MAPI entry id (URL-safe base64).
    EntryId,
}

impl IdFormat {
    /// Graph `translateExchangeIds` names (`exchangeIdFormat`).
    pub fn from_graph_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ewsid" => Some(IdFormat::Ews),
            "restid" => Some(IdFormat::Rest),
            "restimmutableentryid" => Some(IdFormat::RestImmutable),
            "immutableentryid" => Some(IdFormat::EwsImmutable),
            "entryid" => Some(IdFormat::EntryId),
            _ => None,
        }
    }
}

/// Where an item (or one instance of it) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemAddress {
    pub mailbox_guid: Guid,
    pub calendar: u16,
    pub item: u64,
    /// The occurrence's original start, for occurrences and exceptions.
    pub occurrence: Option<DateTime<Utc>>,
}

/// What a decoded id says: the address, and whether it was an immutable id (whose calendar is
/// unknown and must be looked up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedId {
    pub address: ItemAddress,
    pub immutable: bool,
}

pub fn encode_item(a: &ItemAddress, format: IdFormat) -> String {
    let mut b = Vec::with_capacity(48);
    match format {
        IdFormat::Ews | IdFormat::Rest | IdFormat::EntryId => {
            b.extend_from_slice(if format == IdFormat::EntryId {
                &ENTRY
            } else {
                &REGULAR
            });
            b.extend_from_slice(&a.mailbox_guid.0);
            b.push(b'F');
            b.extend_from_slice(&a.calendar.to_le_bytes());
        }
        IdFormat::RestImmutable | IdFormat::EwsImmutable => {
            b.extend_from_slice(&IMMUTABLE);
            b.extend_from_slice(&a.mailbox_guid.0);
            b.push(b'I');
        }
    }
    b.extend_from_slice(&a.item.to_le_bytes());
    match a.occurrence {
        Some(t) => {
            b.push(1);
            b.extend_from_slice(&t.timestamp().to_le_bytes());
        }
        None => b.push(0),
    }
    match format {
        IdFormat::Ews | IdFormat::EwsImmutable => STANDARD.encode(&b),
        IdFormat::Rest | IdFormat::RestImmutable | IdFormat::EntryId => URL_SAFE.encode(&b),
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    // Accept either alphabet, and ids whose padding was stripped.
    let norm: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let padded = match norm.len() % 4 {
        2 => format!("{norm}=="),
        3 => format!("{norm}="),
        _ => norm,
    };
    STANDARD.decode(padded).ok()
}

/// Decodes an item id in any of the formats; `None` for anything malformed.
pub fn decode_item(s: &str) -> Option<DecodedId> {
    let b = decode_b64(s)?;
    if b.len() < 21 {
        return None;
    }
    let (head, rest) = b.split_at(4);
    let mut g = [0u8; 16];
    g.copy_from_slice(&rest[..16]);
    let rest = &rest[16..];
    let (immutable, calendar, rest) = if head == REGULAR || head == ENTRY {
        if rest.len() < 3 || rest[0] != b'F' {
            return None;
        }
        (false, u16::from_le_bytes([rest[1], rest[2]]), &rest[3..])
    } else if head == IMMUTABLE {
        if rest.is_empty() || rest[0] != b'I' {
            return None;
        }
        (true, 0, &rest[1..])
    } else {
        return None;
    };
    if rest.len() < 9 {
        return None;
    }
    let item = u64::from_le_bytes(rest[..8].try_into().ok()?);
    let occurrence = match (rest[8], rest.len()) {
        (0, 9) => None,
        (1, 17) => {
            let secs = i64::from_le_bytes(rest[9..17].try_into().ok()?);
            Some(DateTime::<Utc>::from_timestamp(secs, 0)?)
        }
        _ => return None,
    };
    Some(DecodedId {
        address: ItemAddress {
            mailbox_guid: Guid(g),
            calendar,
            item,
            occurrence,
        },
        immutable,
    })
}

/// A calendar folder id; `rest` picks the URL-safe alphabet (Graph) over the standard (EWS).
pub fn encode_folder(mailbox_guid: Guid, calendar: u16, rest: bool) -> String {
    let mut b = Vec::with_capacity(23);
    b.extend_from_slice(&FOLDER);
    b.extend_from_slice(&mailbox_guid.0);
    b.push(b'C');
    b.extend_from_slice(&calendar.to_le_bytes());
    if rest {
        URL_SAFE.encode(&b)
    } else {
        STANDARD.encode(&b)
    }
}

pub fn decode_folder(s: &str) -> Option<(Guid, u16)> {
    let b = decode_b64(s)?;
    if b.len() != 23 || b[..4] != FOLDER || b[20] != b'C' {
        return None;
    }
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[4..20]);
    Some((Guid(g), u16::from_le_bytes([b[21], b[22]])))
}

/// EWS `ChangeKey` / Graph `changeKey` (the etag is `W/"<changeKey>"`). Real change keys start
/// with `DwAAABYAAA` (a length-prefixed PCL); so do these.
pub fn change_key(
    mailbox_guid: Guid,
    item: u64,
    version: u32,
    occurrence: Option<DateTime<Utc>>,
) -> String {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&[0x0F, 0, 0, 0, 0x16, 0, 0, 0]);
    b.extend_from_slice(&mailbox_guid.0[..8]);
    b.extend_from_slice(&item.to_le_bytes());
    b.extend_from_slice(&version.to_le_bytes());
    if let Some(t) = occurrence {
        b.extend_from_slice(&(t.timestamp() as u32).to_le_bytes());
    }
    STANDARD.encode(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_differ_by_format() {
        let a = ItemAddress {
            mailbox_guid: Guid([0xFB; 16]),
            calendar: 3,
            item: 0x00FF_FFFF_FFFF,
            occurrence: "2024-05-01T10:00:00Z".parse().ok(),
        };
        let ews = encode_item(&a, IdFormat::Ews);
        let rest = encode_item(&a, IdFormat::Rest);
        let imm = encode_item(&a, IdFormat::RestImmutable);
        assert!(ews.starts_with("AAMkA"));
        assert!(imm.starts_with("AAkAL"));
        assert_ne!(ews, rest);
        assert!(ews.contains('/') || ews.contains('+'));
        assert_eq!(decode_item(&ews).map(|d| d.address), Some(a));
        assert_eq!(decode_item(&rest).map(|d| d.address), Some(a));
        let d = decode_item(&imm).unwrap_or(DecodedId {
            address: a,
            immutable: false,
        });
        assert!(d.immutable);
        assert_eq!(d.address.item, a.item);
        assert_eq!(decode_item("not an id"), None);
        let f = encode_folder(a.mailbox_guid, 2, true);
        assert_eq!(decode_folder(&f), Some((a.mailbox_guid, 2)));
        assert_ne!(
            change_key(a.mailbox_guid, 1, 1, None),
            change_key(a.mailbox_guid, 1, 2, None)
        );
        assert!(change_key(a.mailbox_guid, 1, 1, None).starts_with("DwAAABYAAA"));
    }
}
