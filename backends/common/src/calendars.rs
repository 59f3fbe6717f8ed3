//! Neutral calendar paths: ONE rule both backends follow, so the same mailbox read through EWS
//! and through Graph gives each calendar the same path (the path names the cursor row, the
//! events' `calendar` and what sinks show).
//!
//! # The rule
//!
//! - The mailbox's main calendar is `"default"` ([`calpump_engine::source::DEFAULT_CALENDAR`]).
//! - Every other calendar is its display name (a blank name reads `"Calendar"`) when no other
//!   non-default calendar of the mailbox has the same name, compared case-insensitively, and
//!   the name is not `"default"` in any case.
//! - Otherwise — two sub-calendars named "Projects" (in different parent folders: Graph lists
//!   calendars flat, and EWS's `FindFolder` `Deep` finds both) — each is
//!   `"<name> (<suffix>)"`, the suffix being the first 8 hex digits of the SHA-256 of the
//!   folder's backend-neutral identity ([`folder_identity`]); in the unlikely case that two paths
//!   of the mailbox still coincide, their suffixes grow to 16, then 64 digits.
//!
//! The path never depends on the order in which the server lists the calendars, and a folder
//! keeps its path when it is renamed back, moved, or when the other same-named calendar comes
//! and goes (then it returns to its plain name).
//!
//! # The folder identity
//!
//! EWS names a folder by its `FolderId`; Graph by the calendar's `id`, the REST spelling of the
//! same folder id. Microsoft documents that REST ids and EWS ids are different spellings
//! (Office.js `convertToRestId`/`convertToEwsId`: "Item IDs retrieved via EWS … use a different
//! format than the format used by REST APIs"), and that container ids (`mailFolder`,
//! `calendar`) have no immutable form — "their regular IDs were already constant"
//! (Graph `concepts/outlook-immutable-id.md`), so `Prefer: IdType="ImmutableId"` leaves a
//! calendar's id as it is. The REST spelling is the EWS base64 text with `/` → `-` and `+` → `_`;
//! the binary behind both is the web service id of [MS-OXCEXT] 2.2.6.1: a compression byte
//! (`0x00` none, `0x01` run-length encoded, section 3.1.4.5) and a payload of storage type,
//! mailbox GUID moniker (`u16` length + text), object type and the folder's `PR_ENTRYID`
//! (`u16` length + bytes). Since Exchange may compress one spelling and not the other (`AAMk…`
//! vs `AQMk…`), the identity is taken past the encoding:
//!
//! 1. the id text is read as base64 in either alphabet (padding optional);
//! 2. a web service id is decompressed and, when its payload has exactly that layout, the
//!    identity is the folder's entry id;
//! 3. any other decodable id is identified by its decoded bytes, anything else by its text.
//!
//! The simulator's folder ids are its own binary layout behind the same two spellings, so they
//! take step 3 — equal for both backends as well.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use calpump_engine::source::DEFAULT_CALENDAR;

/// Suffix lengths tried, in hex digits.
const SUFFIX_DIGITS: [usize; 3] = [8, 16, 64];

/// A calendar other than the main one, as the backend lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The display name (`None` or blank: `"Calendar"`).
    pub name: Option<&'a str>,
    /// The backend's folder id (EWS `FolderId`, Graph calendar `id`).
    pub id: &'a str,
}

/// The display name the rule uses for a calendar.
pub fn display_name(name: Option<&str>) -> &str {
    match name.map(str::trim) {
        Some(n) if !n.is_empty() => n,
        _ => "Calendar",
    }
}

fn fold(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The neutral paths of a mailbox's calendars other than the main one, in the order given
/// (see the module documentation for the rule).
pub fn paths(calendars: &[Listed<'_>]) -> Vec<String> {
    let names: Vec<&str> = calendars.iter().map(|c| display_name(c.name)).collect();
    let folded: Vec<String> = names.iter().map(|n| fold(n)).collect();
    let taken = |i: usize| {
        folded[i] == DEFAULT_CALENDAR
            || folded
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && *other == folded[i])
    };
    let plain: Vec<bool> = (0..calendars.len()).map(|i| !taken(i)).collect();
    let identities: Vec<String> = calendars
        .iter()
        .map(|c| hex(&sha256(&folder_identity(c.id))))
        .collect();
    let mut digits = vec![SUFFIX_DIGITS[0]; calendars.len()];
    loop {
        let out: Vec<String> = (0..calendars.len())
            .map(|i| {
                if plain[i] {
                    names[i].to_string()
                } else {
                    format!("{} ({})", names[i], &identities[i][..digits[i]])
                }
            })
            .collect();
        // Paths must be unique in the mailbox, case-insensitively.
        let mut grew = false;
        for i in 0..out.len() {
            if plain[i] {
                continue;
            }
            let clash = out
                .iter()
                .enumerate()
                .any(|(j, p)| j != i && fold(p) == fold(&out[i]));
            if clash && let Some(next) = SUFFIX_DIGITS.iter().find(|d| **d > digits[i]) {
                digits[i] = *next;
                grew = true;
            }
        }
        if !grew {
            return out;
        }
    }
}

/// The backend-neutral identity of a folder id: the folder's entry id for an Exchange web
/// service id in either spelling (EWS base64, REST base64, compressed or not), else the decoded
/// bytes, else the text (see the module documentation).
pub fn folder_identity(id: &str) -> Vec<u8> {
    let text = id.trim();
    let Some(bytes) = decode_either_alphabet(text) else {
        return text.as_bytes().to_vec();
    };
    match web_service_entry_id(&bytes) {
        Some(entry_id) => entry_id,
        None => bytes,
    }
}

/// Standard base64 or its REST spelling (`-` for `/`, `_` for `+`), padding optional.
fn decode_either_alphabet(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() {
        return None;
    }
    let mut normal: String = text
        .chars()
        .map(|c| match c {
            '-' => '/',
            '_' => '+',
            c => c,
        })
        .collect();
    while !normal.len().is_multiple_of(4) {
        normal.push('=');
    }
    STANDARD.decode(normal).ok()
}

/// Run-length decoding of a web service id payload ([MS-OXCEXT] 3.1.4.5: a repeated byte is
/// written twice followed by the number of repetitions minus two). `None` when cut off.
fn rle_decode(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 2);
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if data.get(i + 1) == Some(&b) {
            let extra = *data.get(i + 2)?;
            out.extend(std::iter::repeat_n(b, usize::from(extra) + 2));
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// The entry id inside a web service id ([MS-OXCEXT] 2.2.6.1 `DerivedWSId` → 2.2.6.1.1
/// `DerivedId`): compression byte, then storage type (1), moniker length (2, LE), moniker,
/// object type (1), entry id length (2, LE), entry id — and nothing after it.
fn web_service_entry_id(bytes: &[u8]) -> Option<Vec<u8>> {
    let (&compression, rest) = bytes.split_first()?;
    let payload = match compression {
        0x00 => rest.to_vec(),
        0x01 => rle_decode(rest)?,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<usize> {
        let b = payload.get(at..at + 2)?;
        Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let moniker = u16_at(1)?;
    let entry_len_at = 1 + 2 + moniker + 1;
    let entry = u16_at(entry_len_at)?;
    let start = entry_len_at + 2;
    if entry == 0 || payload.len() != start + entry {
        return None;
    }
    Some(payload[start..].to_vec())
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed<'a>(name: &'a str, id: &'a str) -> Listed<'a> {
        Listed {
            name: Some(name),
            id,
        }
    }

    /// A web service id as [MS-OXCEXT] lays it out, for a folder entry id.
    fn ws_id(mailbox_guid: &str, entry_id: &[u8]) -> Vec<u8> {
        let mut payload = vec![0x03];
        payload.extend_from_slice(&(mailbox_guid.len() as u16).to_le_bytes());
        payload.extend_from_slice(mailbox_guid.as_bytes());
        payload.push(0x01);
        payload.extend_from_slice(&(entry_id.len() as u16).to_le_bytes());
        payload.extend_from_slice(entry_id);
        payload
    }

    /// [MS-OXCEXT] 3.1.4.5's run-length encoding.
    fn rle_encode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            let mut run = 1;
            while i + run < data.len() && data[i + run] == b && run < 257 {
                run += 1;
            }
            if run >= 2 {
                out.extend_from_slice(&[b, b, (run - 2) as u8]);
            } else {
                out.push(b);
            }
            i += run;
        }
        out
    }

    fn folder_entry_id(counter: u8) -> Vec<u8> {
        // Flags, provider UID, folder type, database GUID, global counter, pad (MS-OXCDATA 2.2.4.1).
        let mut e = vec![0, 0, 0, 0];
        e.extend_from_slice(&[0x42; 16]);
        e.extend_from_slice(&[1, 0]);
        e.extend_from_slice(&[0x20; 16]);
        e.extend_from_slice(&[0, 0, 0, 0, 0, counter]);
        e.extend_from_slice(&[0, 0]);
        e
    }

    fn rest(ews: &str) -> String {
        ews.replace('/', "-").replace('+', "_")
    }

    /// An EWS id text that contains both `+` and `/`.
    fn ews(n: u8) -> String {
        let text = STANDARD.encode([0x00, 0x03, 0x24, 0xfb, 0xff, 0xbf, n, 0x3e, 0xff]);
        assert!(text.contains('+') && text.contains('/'), "{text}");
        text
    }

    #[test]
    fn unique_names_stay_plain_duplicates_get_an_order_independent_suffix() {
        let (a, b) = (ews(1), ews(2));
        let (a, b) = (a.as_str(), b.as_str());
        let forward = paths(&[
            listed("Projects", a),
            listed("Maintenance", "AAMkX1"),
            listed("projects", b),
        ]);
        let backward = paths(&[
            listed("projects", b),
            listed("Maintenance", "AAMkX1"),
            listed("Projects", a),
        ]);
        assert_eq!(forward[1], "Maintenance");
        assert!(forward[0].starts_with("Projects ("), "{forward:?}");
        assert!(forward[2].starts_with("projects ("), "{forward:?}");
        assert_ne!(fold(&forward[0]), fold(&forward[2]));
        assert_eq!(forward[0], backward[2], "independent of listing order");
        assert_eq!(forward[2], backward[0]);
        assert_eq!(forward[0].len(), "Projects (".len() + 8 + 1);
    }

    #[test]
    fn ews_and_rest_spellings_of_a_folder_give_the_same_path() {
        let (ews_a, ews_b) = (ews(1), ews(2));
        let via_ews = paths(&[listed("Team", &ews_a), listed("Team", &ews_b)]);
        let via_rest = paths(&[listed("Team", &rest(&ews_b)), listed("Team", &rest(&ews_a))]);
        assert_eq!(via_ews[0], via_rest[1]);
        assert_eq!(via_ews[1], via_rest[0]);
        assert_ne!(via_ews[0], via_ews[1]);
        // Decoded, not hashed as text.
        assert_eq!(folder_identity(&ews_a).len(), 9);
        // Padding dropped by one side.
        let padded = STANDARD.encode([1u8, 2, 3, 4]);
        assert!(padded.ends_with("=="));
        assert_eq!(
            folder_identity(&padded),
            folder_identity(padded.trim_end_matches('='))
        );
    }

    #[test]
    fn a_compressed_and_an_uncompressed_web_service_id_of_one_folder_are_one_identity() {
        let guid = "0c5b4a2e-1f3d-4e6a-9b7c-8d9e0f1a2b3c";
        let entry = folder_entry_id(7);
        let payload = ws_id(guid, &entry);
        let mut plain = vec![0x00];
        plain.extend_from_slice(&payload);
        let mut compressed = vec![0x01];
        compressed.extend_from_slice(&rle_encode(&payload));
        assert!(compressed.len() < plain.len());
        let plain_text = STANDARD.encode(&plain);
        let compressed_text = rest(&STANDARD.encode(&compressed));
        assert!(plain_text.starts_with("AAMk"), "{plain_text}");
        assert!(compressed_text.starts_with("AQMk"), "{compressed_text}");
        assert_eq!(folder_identity(&plain_text), entry);
        assert_eq!(folder_identity(&compressed_text), entry);
        // Another folder of the same mailbox differs.
        let mut other = vec![0x00];
        other.extend_from_slice(&ws_id(guid, &folder_entry_id(8)));
        assert_ne!(folder_identity(&STANDARD.encode(&other)), entry);
    }

    #[test]
    fn default_names_blank_names_and_clashing_suffixes() {
        let out = paths(&[
            listed("Default", "id-1"),
            Listed {
                name: None,
                id: "id-2",
            },
            listed("  ", "id-3"),
        ]);
        assert!(
            out[0].starts_with("Default ("),
            "never the main calendar's path: {out:?}"
        );
        assert!(out[1].starts_with("Calendar ("), "{out:?}");
        assert!(out[2].starts_with("Calendar ("), "{out:?}");
        assert_ne!(out[1], out[2]);
        // A calendar literally named like another's suffixed path: the suffix grows.
        let first = paths(&[listed("X", "id-a"), listed("X", "id-b")]);
        let literal = first[0].clone();
        let out = paths(&[
            listed("X", "id-a"),
            listed("X", "id-b"),
            listed(&literal, "id-c"),
        ]);
        assert_eq!(out[2], literal);
        assert_ne!(out[0], literal);
        assert!(out[0].starts_with(&literal[..literal.len() - 1]), "{out:?}");
        assert_eq!(out[0].len(), "X (".len() + 16 + 1);
    }

    #[test]
    fn odd_ids_do_not_panic() {
        for id in ["", "!!", "AQ", "AQMk", "AAMkAA==", "-_-_", "\u{1F600}"] {
            let _ = folder_identity(id);
        }
        assert_eq!(rle_decode(&[5, 5]), None, "cut off");
        assert_eq!(rle_decode(&[5, 5, 1, 6]), Some(vec![5, 5, 5, 6]));
    }
}
