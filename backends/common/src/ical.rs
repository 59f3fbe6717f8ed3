//! The iCalendar UID of a meeting, derived from its clean global object id the way Exchange
//! exports it, so both backends report the same UID.
//!
//! EWS `UID` and Graph `iCalUId` differ for invitations that came from outside Exchange: EWS
//! gives the sender's UID, Graph the hex of the global object id. Both backends read the clean
//! global object id, so calpump derives the UID from it, per [MS-OXCICAL] 2.1.3.1.1.20.26
//! "Property: UID" and the conversion in [MS-ASEMAIL] 3.1.4.7 / 4.3 "Converting a GlobalObjId to
//! a UID": when bytes 41–48 of the id are `vCal-Uid` (a third-party meeting), the UID is the
//! string that follows the four version bytes, without its terminating NUL; otherwise it is the
//! upper-case hex of the id with the instance date (bytes 17–20) zeroed — which the clean id
//! already is.

/// `vCal-Uid`: marks a global object id that carries a third-party UID.
const VCAL_UID: &[u8] = b"vCal-Uid";
/// Offset of the data after the 40-byte header (byte array id, instance date, creation time,
/// padding, data size).
const DATA: usize = 40;

/// The iCalendar UID of a meeting from its clean global object id in hex (as
/// `GlobalObjectId::as_hex` gives it). Hex that does not decode is returned as it is.
pub fn from_clean_goid_hex(hex: &str) -> String {
    let Some(bytes) = decode_hex(hex) else {
        return hex.to_string();
    };
    third_party_uid(&bytes).unwrap_or_else(|| hex.to_ascii_uppercase())
}

/// The third-party UID a `vCal-Uid` global object id carries, if it is one.
pub fn third_party_uid(goid: &[u8]) -> Option<String> {
    let data = goid.get(DATA..)?;
    let rest = data.strip_prefix(VCAL_UID)?.get(4..)?;
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let uid = std::str::from_utf8(&rest[..end]).ok()?.trim();
    (!uid.is_empty()).then(|| uid.to_string())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim().as_bytes();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlook_ids_are_their_hex_and_third_party_ids_their_uid() {
        // [MS-ASEMAIL] 4.3, example 1 (an Outlook id; instance date already zeroed here).
        let outlook = "040000008200E00074C5B7101A82E00800000000E040C9C12685C4010000000000000000100000000BF0ED4B6E4EE94E9E39E3867B378EF3";
        assert_eq!(from_clean_goid_hex(outlook), outlook);
        assert_eq!(from_clean_goid_hex(&outlook.to_lowercase()), outlook);
        // [MS-ASEMAIL] 4.3, example 2: "vCal-Uid", version 1, "{81412D3C-…}", NUL.
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode("BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAMwAAAHZDYWwtVWlkAQAAAHs4MTQxMkQzQy0yQTI0LTRFOUQtQjIwRS0xMUY3QkJFOTI3OTl9AA==")
            .expect("base64");
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            from_clean_goid_hex(&hex),
            "{81412D3C-2A24-4E9D-B20E-11F7BBE92799}"
        );
        assert_eq!(
            third_party_uid(&bytes).as_deref(),
            Some("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}")
        );
        assert_eq!(third_party_uid(&bytes[..50]), None);
        assert_eq!(from_clean_goid_hex("not hex"), "not hex");
    }
}
