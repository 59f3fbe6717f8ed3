//! The meeting's global object id (PidLidGlobalObjectId / PidLidCleanGlobalObjectId).
//!
//! Layout per [MS-OXOCAL] 2.2.1.27 "PidLidGlobalObjectId Property":
//!
//! | bytes | field |
//! |---|---|
//! | 16 | Byte Array ID `04 00 00 00 82 00 E0 00 74 C5 B7 10 1A 82 E0 08` |
//! | 1+1+1+1 | YH, YL (year, big-endian), M, D of the instance (exception/occurrence); zero otherwise |
//! | 8 | creation time, FILETIME little-endian |
//! | 8 | reserved, zero |
//! | 4 | size of the data, little-endian |
//! | n | data |
//!
//! PidLidCleanGlobalObjectId (0x23) is the same with the instance date zeroed. For a meeting that
//! came from outside Exchange (an iCalendar invitation), the data is `"vCal-Uid"`, the version
//! `01 00 00 00`, the sender's UID in ASCII and a terminating NUL ([MS-ASEMAIL] 4.3 shows both
//! forms); creation time is then zero. EWS `UID` is the sender's UID for such meetings and the
//! upper-case hex of the clean id otherwise ([MS-OXCICAL] 2.1.3.1.1.20.26); Graph `iCalUId` is
//! always the hex of the clean id.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

pub const BYTE_ARRAY_ID: [u8; 16] = [
    0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08,
];
const VCAL_UID: &[u8; 8] = b"vCal-Uid";

/// Property set PSETID_Meeting, where both properties live.
pub const PSETID_MEETING: &str = "6ED8DA90-450B-101B-98DA-00AA003F1305";
/// PidLidGlobalObjectId long id.
pub const LID_GLOBAL_OBJECT_ID: u32 = 0x0003;
/// PidLidCleanGlobalObjectId long id.
pub const LID_CLEAN_GLOBAL_OBJECT_ID: u32 = 0x0023;

/// A meeting's clean global object id (instance date zero).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GlobalObjectId {
    clean: Vec<u8>,
}

impl GlobalObjectId {
    /// A meeting created in Exchange: 16 bytes of data (Outlook uses a GUID), creation time set.
    pub fn exchange_born(created: DateTime<Utc>, data: [u8; 16]) -> Self {
        let mut b = header(filetime(created), data.len());
        b.extend_from_slice(&data);
        GlobalObjectId { clean: b }
    }

    /// An invitation that came from outside Exchange carrying `uid` (iCalendar UID).
    pub fn external(uid: &str) -> Self {
        let mut data = Vec::with_capacity(uid.len() + 13);
        data.extend_from_slice(VCAL_UID);
        data.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
        data.extend_from_slice(uid.as_bytes());
        data.push(0);
        let mut b = header(0, data.len());
        b.extend_from_slice(&data);
        GlobalObjectId { clean: b }
    }

    /// Parses either form (clean or not) from bytes; the result is clean.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 40 || bytes[..16] != BYTE_ARRAY_ID {
            return None;
        }
        let size = u32::from_le_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]) as usize;
        if bytes.len() != 40 + size {
            return None;
        }
        let mut clean = bytes.to_vec();
        clean[16..20].fill(0);
        Some(GlobalObjectId { clean })
    }

    /// Parses upper- or lower-case hex (as `iCalUId` and `/_sim/truth` print it).
    pub fn from_hex(s: &str) -> Option<Self> {
        Self::from_bytes(&hex::decode(s.trim()).ok()?)
    }

    /// PidLidCleanGlobalObjectId bytes.
    pub fn clean_bytes(&self) -> &[u8] {
        &self.clean
    }

    /// PidLidGlobalObjectId bytes: for an occurrence or exception the original date of the
    /// instance is stored in YH YL M D; for a single item or a series master it is zero.
    pub fn instance_bytes(&self, instance_date: Option<NaiveDate>) -> Vec<u8> {
        let mut b = self.clean.clone();
        if let Some(d) = instance_date {
            let y = u16::try_from(d.year()).unwrap_or(0).to_be_bytes();
            b[16] = y[0];
            b[17] = y[1];
            b[18] = d.month() as u8;
            b[19] = d.day() as u8;
        }
        b
    }

    /// Upper-case hex of the clean id: Graph `iCalUId`, and EWS `UID` of Exchange-born meetings.
    pub fn hex(&self) -> String {
        hex::encode_upper(&self.clean)
    }

    /// The sender's UID when the meeting came from outside Exchange.
    pub fn external_uid(&self) -> Option<&str> {
        let data = &self.clean[40..];
        if data.len() >= 13 && &data[..8] == VCAL_UID {
            let uid = &data[12..];
            let uid = uid.strip_suffix(&[0]).unwrap_or(uid);
            std::str::from_utf8(uid).ok()
        } else {
            None
        }
    }

    /// EWS `UID` ([MS-OXCICAL] export rules): the third-party UID if there is one, else the hex.
    pub fn ews_uid(&self) -> String {
        match self.external_uid() {
            Some(u) => u.to_string(),
            None => self.hex(),
        }
    }

    /// Graph `iCalUId`: the hex of the clean id, whatever the origin.
    pub fn ical_uid(&self) -> String {
        self.hex()
    }
}

fn header(filetime: u64, size: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(40 + size);
    b.extend_from_slice(&BYTE_ARRAY_ID);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&filetime.to_le_bytes());
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&(size as u32).to_le_bytes());
    b
}

/// FILETIME: 100-ns intervals since 1601-01-01 UTC.
pub fn filetime(t: DateTime<Utc>) -> u64 {
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = t.timestamp() + EPOCH_DIFF_SECS;
    (secs.max(0) as u64) * 10_000_000 + u64::from(t.timestamp_subsec_nanos() / 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn exchange_born_layout_matches_ms_oxocal() {
        let created = Utc
            .with_ymd_and_hms(2008, 2, 20, 17, 16, 51)
            .single()
            .unwrap_or_default();
        let g = GlobalObjectId::exchange_born(created, [0xAB; 16]);
        let b = g.clean_bytes();
        assert_eq!(b.len(), 56);
        assert_eq!(&b[..16], &BYTE_ARRAY_ID);
        assert_eq!(&b[16..20], &[0, 0, 0, 0]);
        assert_eq!(&b[36..40], &[16, 0, 0, 0]);
        // The creation time of MS-OXOCAL's sample (2008/02/20 17:16:51) is 50 25 D4 61 E4 73 C8 01.
        // MS-OXOCAL's sample stores 2008/02/20 17:16:51 as FILETIME 01C873E4_61D42550.
        let ft = u64::from_le_bytes(b[20..28].try_into().unwrap_or_default());
        assert_eq!(ft >> 32, 0x01C8_73E4);
        assert!((0x01C8_73E4_61D4_2550u64).abs_diff(ft) < 10_000_000);
        assert_eq!(g.ews_uid(), g.hex());
        assert!(g.hex().starts_with("040000008200E00074C5B7101A82E008"));
        let inst = g.instance_bytes(NaiveDate::from_ymd_opt(2008, 3, 25));
        assert_eq!(&inst[16..20], &[0x07, 0xD8, 0x03, 0x19]);
        assert_eq!(GlobalObjectId::from_bytes(&inst), Some(g.clone()));
        assert_eq!(GlobalObjectId::from_hex(&g.hex().to_lowercase()), Some(g));
    }

    #[test]
    fn external_uid_matches_ms_asemail_example() {
        // [MS-ASEMAIL] 4.3, example 2.
        let g = GlobalObjectId::external("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}");
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD
            .decode("BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAMwAAAHZDYWwtVWlkAQAAAHs4MTQxMkQzQy0yQTI0LTRFOUQtQjIwRS0xMUY3QkJFOTI3OTl9AA==")
            .unwrap_or_default();
        assert_eq!(g.clean_bytes(), &expected[..]);
        assert_eq!(g.ews_uid(), "{81412D3C-2A24-4E9D-B20E-11F7BBE92799}");
        assert_eq!(g.ical_uid(), hex::encode_upper(&expected));
    }
}
