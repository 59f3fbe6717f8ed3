//! Item and folder ids: opaque strings that encode where an item lives.
//!
//! Real Exchange ids are base64 of a binary structure, printed per format:
//!
//! * EWS ids (`EwsId`, `EwsImmutableId`): standard base64 (RFC 4648 §4, `+` `/`, `=` padding).
//! * REST ids (Graph `restId`, `restImmutableEntryId`): the EWS text with `/`→`-` and `+`→`_`,
//!   padding kept (`AAMkAGI2TG93AAA=` in Graph's samples). This is *not* RFC 4648 URL-safe
//!   base64 (which maps `+`→`-`, `/`→`_`): it is what Outlook's `convertToRestId` does, so an EWS
//!   id and the REST id of the same item differ only in those two characters.
//! * Binary formats (Graph `entryId`, `immutableEntryId`): URL-safe base64 as
//!   `user-translateexchangeids.md` specifies — `+`→`-`, `/`→`_`, trailing `=` removed and the
//!   number of removed `=` (`0`, `1` or `2`) appended. EWS `ConvertId` prints `EntryId` in standard
//!   base64 and `HexEntryId` in hex.
//!
//! A regular id changes when an item moves to another folder; an immutable id
//! (`Prefer: IdType="ImmutableId"`) does not. The simulator's binary forms are its own, but keep
//! those properties:
//!
//! * regular: `00 03 24 00` | mailbox GUID | `F` | calendar u16 | item u64 | occurrence flag | original start i64
//! * immutable: `00 09 00 2E` | mailbox GUID | `I` | item u64 | occurrence flag | original start i64
//! * entry id (PR_ENTRYID-like): `00 00 00 00` | the regular payload (`F` …)
//! * immutable entry id: `00 00 00 00` | the immutable payload (`I` …)
//! * folder: `00 01 2E 00` | mailbox GUID | `C` | calendar u16
//!
//! Change keys (EWS `ChangeKey`, Graph `changeKey` and `@odata.etag`) encode the item and its
//! version, so they change on every modification.

use super::rng::Guid;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
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
    /// Graph REST id (`restId`: the EWS text with `/`→`-`, `+`→`_`).
    Rest,
    /// Graph REST immutable id (`restImmutableEntryId`: REST alphabet, immutable id).
    RestImmutable,
    /// EWS immutable id (`EwsImmutableId`: standard base64, immutable id).
    EwsImmutable,
    /// MAPI entry id (Graph `entryId`: URL-safe base64 with the padding count appended).
    EntryId,
    /// MAPI immutable entry id (Graph `immutableEntryId`: URL-safe base64 with the padding count).
    ImmutableEntryId,
}

impl IdFormat {
    /// Graph `translateExchangeIds` names (`exchangeIdFormat`).
    pub fn from_graph_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ewsid" => Some(IdFormat::Ews),
            "restid" => Some(IdFormat::Rest),
            "restimmutableentryid" => Some(IdFormat::RestImmutable),
            "immutableentryid" => Some(IdFormat::ImmutableEntryId),
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

/// Standard base64 → Exchange's REST id alphabet (`/`→`-`, `+`→`_`, padding kept).
fn std_to_rest(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '/' => '-',
            '+' => '_',
            c => c,
        })
        .collect()
}

/// URL-safe base64 with the padding count appended (`user-translateexchangeids.md`).
pub fn encode_url_token(b: &[u8]) -> String {
    let pad = (3 - b.len() % 3) % 3;
    format!("{}{pad}", URL_SAFE_NO_PAD.encode(b))
}

/// Inverse of [`encode_url_token`].
pub fn decode_url_token(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let (body, count) = s.split_at(s.len().checked_sub(1)?);
    let pad: usize = match count {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        _ => return None,
    };
    if body.contains(['=', '+', '/']) || !(body.len() + pad).is_multiple_of(4) {
        return None;
    }
    URL_SAFE_NO_PAD.decode(body).ok()
}

/// Standard base64 or its REST spelling (`-` for `/`, `_` for `+`); missing padding tolerated.
fn decode_std_or_rest(s: &str) -> Option<Vec<u8>> {
    let norm: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '-' => '/',
            '_' => '+',
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

/// The id text in the given format of these bytes.
fn print(b: &[u8], format: IdFormat) -> String {
    match format {
        IdFormat::Ews | IdFormat::EwsImmutable => STANDARD.encode(b),
        IdFormat::Rest | IdFormat::RestImmutable => std_to_rest(&STANDARD.encode(b)),
        IdFormat::EntryId | IdFormat::ImmutableEntryId => encode_url_token(b),
    }
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
        IdFormat::RestImmutable | IdFormat::EwsImmutable | IdFormat::ImmutableEntryId => {
            b.extend_from_slice(if format == IdFormat::ImmutableEntryId {
                &ENTRY
            } else {
                &IMMUTABLE
            });
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
    print(&b, format)
}

/// Decodes an item id in any of the formats; `None` for anything malformed. The text is read as
/// standard/REST base64 first, then as a URL-safe binary id; the structure (header, marker,
/// exact length) decides which reading is right.
pub fn decode_item(s: &str) -> Option<DecodedId> {
    [decode_std_or_rest(s), decode_url_token(s)]
        .into_iter()
        .flatten()
        .find_map(|b| parse_item(&b))
}

fn parse_item(b: &[u8]) -> Option<DecodedId> {
    if b.len() < 21 {
        return None;
    }
    let (head, rest) = b.split_at(4);
    let mut g = [0u8; 16];
    g.copy_from_slice(&rest[..16]);
    let rest = &rest[16..];
    let marker = rest.first().copied();
    let (immutable, calendar, rest) = match (head, marker) {
        (h, Some(b'F')) if h == REGULAR || h == ENTRY => {
            if rest.len() < 3 {
                return None;
            }
            (false, u16::from_le_bytes([rest[1], rest[2]]), &rest[3..])
        }
        (h, Some(b'I')) if h == IMMUTABLE || h == ENTRY => (true, 0, &rest[1..]),
        _ => return None,
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

/// A calendar folder id; `rest` picks the REST spelling (Graph) over standard base64 (EWS).
pub fn encode_folder(mailbox_guid: Guid, calendar: u16, rest: bool) -> String {
    let mut b = Vec::with_capacity(23);
    b.extend_from_slice(&FOLDER);
    b.extend_from_slice(&mailbox_guid.0);
    b.push(b'C');
    b.extend_from_slice(&calendar.to_le_bytes());
    print(&b, if rest { IdFormat::Rest } else { IdFormat::Ews })
}

pub fn decode_folder(s: &str) -> Option<(Guid, u16)> {
    let b = decode_std_or_rest(s)?;
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
        for f in [
            IdFormat::Ews,
            IdFormat::Rest,
            IdFormat::EntryId,
            IdFormat::RestImmutable,
            IdFormat::EwsImmutable,
            IdFormat::ImmutableEntryId,
        ] {
            let d = decode_item(&encode_item(&a, f));
            assert_eq!(d.map(|d| d.address.item), Some(a.item), "{f:?}");
            assert_eq!(d.map(|d| d.address.occurrence), Some(a.occurrence), "{f:?}");
            let immutable = matches!(
                f,
                IdFormat::RestImmutable | IdFormat::EwsImmutable | IdFormat::ImmutableEntryId
            );
            assert_eq!(d.map(|d| d.immutable), Some(immutable), "{f:?}");
        }
        assert_eq!(decode_item(&ews).map(|d| d.address), Some(a));
        assert_eq!(decode_item(&rest).map(|d| d.address), Some(a));
        assert_eq!(decode_item("not an id"), None);
        let f = encode_folder(a.mailbox_guid, 2, true);
        assert_eq!(decode_folder(&f), Some((a.mailbox_guid, 2)));
        assert_ne!(
            change_key(a.mailbox_guid, 1, 1, None),
            change_key(a.mailbox_guid, 1, 2, None)
        );
        assert!(change_key(a.mailbox_guid, 1, 1, None).starts_with("DwAAABYAAA"));
    }

    /// REST ids are the EWS text with `/`→`-` and `+`→`_` (padding kept); the binary formats are
    /// URL-safe base64 (`+`→`-`, `/`→`_`) without padding, the padding count appended.
    #[test]
    fn rest_and_binary_spellings_follow_exchange() {
        let mut both = 0;
        for n in 0..400u64 {
            let mut g = [0u8; 16];
            for (i, x) in g.iter_mut().enumerate() {
                *x = (n as u8)
                    .wrapping_mul(37)
                    .wrapping_add((i as u8).wrapping_mul(91))
                    | 0x0B;
            }
            let a = ItemAddress {
                mailbox_guid: Guid(g),
                calendar: (n % 3) as u16,
                item: n * 7919,
                occurrence: (n % 2 == 0)
                    .then(|| DateTime::<Utc>::from_timestamp(1_700_000_000 + n as i64 * 3600, 0))
                    .flatten(),
            };
            let ews = encode_item(&a, IdFormat::Ews);
            let rest = encode_item(&a, IdFormat::Rest);
            assert_eq!(rest, ews.replace('/', "-").replace('+', "_"));
            assert_eq!(rest.ends_with('='), ews.ends_with('='));
            let ews_imm = encode_item(&a, IdFormat::EwsImmutable);
            let rest_imm = encode_item(&a, IdFormat::RestImmutable);
            assert_eq!(rest_imm, ews_imm.replace('/', "-").replace('+', "_"));
            if ews.contains('/') && ews.contains('+') {
                both += 1;
            }
            for f in [IdFormat::EntryId, IdFormat::ImmutableEntryId] {
                let t = encode_item(&a, f);
                let raw = STANDARD
                    .decode(
                        decode_url_token(&t)
                            .map(|b| STANDARD.encode(b))
                            .unwrap_or_default(),
                    )
                    .unwrap_or_default();
                let std = STANDARD.encode(&raw);
                let pads = std.len() - std.trim_end_matches('=').len();
                let want = format!(
                    "{}{pads}",
                    std.trim_end_matches('=')
                        .replace('+', "-")
                        .replace('/', "_")
                );
                assert_eq!(t, want, "{f:?}");
                assert!(!t.contains(['=', '+', '/']), "{t}");
            }
            assert_ne!(
                encode_item(&a, IdFormat::ImmutableEntryId),
                encode_item(&a, IdFormat::RestImmutable)
            );
            let fr = encode_folder(a.mailbox_guid, a.calendar, true);
            let fe = encode_folder(a.mailbox_guid, a.calendar, false);
            assert_eq!(fr, fe.replace('/', "-").replace('+', "_"));
        }
        assert!(both > 10, "ids with both '+' and '/': {both}");
        assert_eq!(encode_url_token(b"ab"), "YWI1");
        assert_eq!(decode_url_token("YWI1"), Some(b"ab".to_vec()));
        assert_eq!(encode_url_token(&[0xFB, 0xFF]), "-_81");
    }
}
