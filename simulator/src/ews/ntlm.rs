//! The server side of NTLM (connection-oriented, NTLMv2 only), as IIS in front of Exchange does.
//!
//! [MS-NLMP] "NT LAN Manager (NTLM) Authentication Protocol": 2.2.1.1 NEGOTIATE_MESSAGE,
//! 2.2.1.2 CHALLENGE_MESSAGE, 2.2.1.3 AUTHENTICATE_MESSAGE, 2.2.2.1 AV_PAIR, 2.2.2.7
//! NTLMv2_CLIENT_CHALLENGE, 3.3.2 NTLM v2 Authentication (`NTOWFv2`, `NTProofStr`,
//! `SessionBaseKey`), 3.1.5.1.2 (MIC over the three messages). The HTTP binding ([MS-NTHT]):
//! `Authorization: NTLM <base64>` → `401` with `WWW-Authenticate: NTLM <base64 challenge>` →
//! `Authorization: NTLM <base64 authenticate>`; the connection then stays authenticated.
//!
//! LM and NTLMv1 responses are refused (as a server with LmCompatibilityLevel 5 does).

use hmac::{KeyInit, Mac};
use md4::Digest;

type HmacMd5 = hmac::Hmac<md5::Md5>;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
pub const REQUEST_TARGET: u32 = 0x0000_0004;
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
pub const NEGOTIATE_128: u32 = 0x2000_0000;
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
pub const NEGOTIATE_56: u32 = 0x8000_0000;

const AV_EOL: u16 = 0;
const AV_NB_COMPUTER: u16 = 1;
const AV_NB_DOMAIN: u16 = 2;
const AV_DNS_COMPUTER: u16 = 3;
const AV_DNS_DOMAIN: u16 = 4;
const AV_FLAGS: u16 = 6;
const AV_TIMESTAMP: u16 = 7;

/// Why an NTLM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    #[error("not an NTLM message")]
    Malformed,
    #[error("unexpected NTLM message type {0}")]
    WrongType(u32),
    #[error("LM/NTLMv1 responses are not accepted")]
    NotV2,
    #[error("anonymous NTLM logon is not accepted")]
    Anonymous,
    #[error("the NTLMv2 response does not match the password")]
    BadResponse,
    #[error("the message integrity code does not match")]
    BadMic,
}

/// What the server keeps between the challenge and the authenticate message.
#[derive(Debug, Clone)]
pub struct Pending {
    pub server_challenge: [u8; 8],
    pub negotiate: Vec<u8>,
    pub challenge: Vec<u8>,
}

/// The parsed AUTHENTICATE_MESSAGE.
#[derive(Debug, Clone)]
pub struct Authenticate {
    pub flags: u32,
    pub user: String,
    pub domain: String,
    pub workstation: String,
    nt_response: Vec<u8>,
    encrypted_session_key: Vec<u8>,
    mic: Option<[u8; 16]>,
    raw: Vec<u8>,
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn message_type(b: &[u8]) -> Result<u32, NtlmError> {
    if b.len() < 12 || &b[..8] != SIGNATURE {
        return Err(NtlmError::Malformed);
    }
    u32le(b, 8).ok_or(NtlmError::Malformed)
}

/// A (len, maxlen, offset) field's payload.
fn field(b: &[u8], at: usize) -> Result<&[u8], NtlmError> {
    let len = usize::from(u16le(b, at).ok_or(NtlmError::Malformed)?);
    let off = u32le(b, at + 4).ok_or(NtlmError::Malformed)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    b.get(off..off.checked_add(len).ok_or(NtlmError::Malformed)?)
        .ok_or(NtlmError::Malformed)
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(b: &[u8]) -> Result<String, NtlmError> {
    if !b.len().is_multiple_of(2) {
        return Err(NtlmError::Malformed);
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| NtlmError::Malformed)
}

/// Flags of a NEGOTIATE_MESSAGE (type 1).
pub fn parse_negotiate(b: &[u8]) -> Result<u32, NtlmError> {
    match message_type(b)? {
        1 => u32le(b, 12).ok_or(NtlmError::Malformed),
        t => Err(NtlmError::WrongType(t)),
    }
}

/// Builds the CHALLENGE_MESSAGE (type 2) for a negotiate message.
pub fn challenge(
    negotiate: &[u8],
    server_challenge: [u8; 8],
    nb_domain: &str,
    nb_computer: &str,
    dns_domain: &str,
    now_filetime: u64,
) -> Result<Pending, NtlmError> {
    let client = parse_negotiate(negotiate)?;
    let mut flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION;
    flags |= client
        & (NEGOTIATE_SIGN | NEGOTIATE_SEAL | NEGOTIATE_128 | NEGOTIATE_56 | NEGOTIATE_KEY_EXCH);
    let target = utf16le(nb_domain);
    let mut info = Vec::new();
    let mut av = |id: u16, v: &[u8]| {
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&(v.len() as u16).to_le_bytes());
        info.extend_from_slice(v);
    };
    av(AV_NB_DOMAIN, &utf16le(nb_domain));
    av(AV_NB_COMPUTER, &utf16le(nb_computer));
    av(AV_DNS_DOMAIN, &utf16le(dns_domain));
    av(
        AV_DNS_COMPUTER,
        &utf16le(&format!("{}.{dns_domain}", nb_computer.to_lowercase())),
    );
    av(AV_TIMESTAMP, &now_filetime.to_le_bytes());
    av(AV_EOL, &[]);
    let header = 56usize;
    let mut m = Vec::with_capacity(header + target.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&(header as u32).to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0u8; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&((header + target.len()) as u32).to_le_bytes());
    // Version: Windows Server 2019 (10.0.17763), NTLM revision 15.
    m.extend_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 15]);
    m.extend_from_slice(&target);
    m.extend_from_slice(&info);
    Ok(Pending {
        server_challenge,
        negotiate: negotiate.to_vec(),
        challenge: m,
    })
}

/// Parses an AUTHENTICATE_MESSAGE (type 3).
pub fn parse_authenticate(b: &[u8]) -> Result<Authenticate, NtlmError> {
    match message_type(b)? {
        3 => {}
        t => return Err(NtlmError::WrongType(t)),
    }
    let flags = u32le(b, 60).ok_or(NtlmError::Malformed)?;
    let text = |bytes: &[u8]| -> Result<String, NtlmError> {
        if flags & NEGOTIATE_UNICODE != 0 {
            from_utf16le(bytes)
        } else {
            Ok(bytes.iter().map(|&c| c as char).collect())
        }
    };
    let nt = field(b, 20)?.to_vec();
    let domain = text(field(b, 28)?)?;
    let user = text(field(b, 36)?)?;
    let workstation = text(field(b, 44)?)?;
    let esk = field(b, 52)?.to_vec();
    // The MIC follows the version field when the client says so in the AV pairs (MsvAvFlags 0x2).
    let has_mic = nt.len() > 44 && av_flags(&nt[16..]).is_some_and(|f| f & 0x2 != 0);
    let mic = if has_mic {
        b.get(72..88).and_then(|s| <[u8; 16]>::try_from(s).ok())
    } else {
        None
    };
    Ok(Authenticate {
        flags,
        user,
        domain,
        workstation,
        nt_response: nt,
        encrypted_session_key: esk,
        mic,
        raw: b.to_vec(),
    })
}

/// MsvAvFlags from the AV pairs that start at `temp`'s offset 28 (after the fixed header).
fn av_flags(temp: &[u8]) -> Option<u32> {
    let mut at = 28;
    loop {
        let id = u16le(temp, at)?;
        let len = usize::from(u16le(temp, at + 2)?);
        if id == AV_EOL {
            return None;
        }
        if id == AV_FLAGS && len == 4 {
            return u32le(temp, at + 4);
        }
        at += 4 + len;
    }
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable.
        <HmacMd5 as KeyInit>::new_from_slice(&[0u8; 16]).unwrap_or_else(|_| unreachable!())
    });
    for p in parts {
        mac.update(p);
    }
    let out = mac.finalize().into_bytes();
    let mut r = [0u8; 16];
    r.copy_from_slice(&out);
    r
}

/// NTOWFv2: HMAC_MD5(MD4(UNICODE(password)), UNICODE(Uppercase(user) + domain)).
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = md4::Md4::digest(utf16le(password));
    let who = utf16le(&format!("{}{domain}", user.to_uppercase()));
    hmac_md5(&nt_hash, &[&who])
}

fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|b| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[usize::from(i)]);
            s.swap(usize::from(i), usize::from(j));
            b ^ s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))]
        })
        .collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks an AUTHENTICATE_MESSAGE against the password: the NTLMv2 proof and, when the client
/// sent one, the MIC over the three messages.
pub fn verify(pending: &Pending, auth: &Authenticate, password: &str) -> Result<(), NtlmError> {
    if auth.user.is_empty() {
        return Err(NtlmError::Anonymous);
    }
    if auth.nt_response.len() <= 24 {
        return Err(NtlmError::NotV2);
    }
    let (proof, temp) = auth.nt_response.split_at(16);
    if temp.len() < 28 || temp[0] != 1 || temp[1] != 1 {
        return Err(NtlmError::NotV2);
    }
    let key = ntowf_v2(password, &auth.user, &auth.domain);
    let expected = hmac_md5(&key, &[&pending.server_challenge, temp]);
    if !ct_eq(&expected, proof) {
        return Err(NtlmError::BadResponse);
    }
    if let Some(mic) = auth.mic {
        let session_base = hmac_md5(&key, &[proof]);
        let exported =
            if auth.flags & NEGOTIATE_KEY_EXCH != 0 && auth.encrypted_session_key.len() == 16 {
                rc4(&session_base, &auth.encrypted_session_key)
            } else {
                session_base.to_vec()
            };
        let mut zeroed = auth.raw.clone();
        zeroed[72..88].fill(0);
        let computed = hmac_md5(
            &exported,
            &[&pending.negotiate, &pending.challenge, &zeroed],
        );
        if !ct_eq(&computed, &mic) {
            return Err(NtlmError::BadMic);
        }
    }
    Ok(())
}

/// A client side, for tests of the server (NTLMv2 with a MIC, as Windows and pyspnego send).
pub mod client {
    use super::*;

    pub fn negotiate() -> Vec<u8> {
        let flags = NEGOTIATE_UNICODE
            | REQUEST_TARGET
            | NEGOTIATE_NTLM
            | NEGOTIATE_ALWAYS_SIGN
            | NEGOTIATE_EXTENDED_SESSIONSECURITY
            | NEGOTIATE_VERSION
            | NEGOTIATE_128
            | NEGOTIATE_KEY_EXCH
            | NEGOTIATE_56;
        let mut m = Vec::new();
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&[0u8; 16]);
        m.extend_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 15]);
        m
    }

    /// The AUTHENTICATE_MESSAGE answering `challenge` for user/domain/password.
    pub fn authenticate(
        negotiate: &[u8],
        challenge: &[u8],
        user: &str,
        domain: &str,
        password: &str,
        client_challenge: [u8; 8],
    ) -> Result<Vec<u8>, NtlmError> {
        if message_type(challenge)? != 2 {
            return Err(NtlmError::Malformed);
        }
        let server_challenge: [u8; 8] = challenge
            .get(24..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(NtlmError::Malformed)?;
        let flags = u32le(challenge, 20).ok_or(NtlmError::Malformed)?;
        let info = field(challenge, 40)?;
        // Copy the AV pairs, add MsvAvFlags = MIC present, keep the EOL last.
        let mut pairs = Vec::new();
        let mut at = 0;
        let mut ts = [0u8; 8];
        while let (Some(id), Some(len)) = (u16le(info, at), u16le(info, at + 2)) {
            let len = usize::from(len);
            if id == AV_EOL {
                break;
            }
            if id == AV_TIMESTAMP && len == 8 {
                ts.copy_from_slice(&info[at + 4..at + 12]);
            }
            pairs.extend_from_slice(&info[at..at + 4 + len]);
            at += 4 + len;
        }
        pairs.extend_from_slice(&AV_FLAGS.to_le_bytes());
        pairs.extend_from_slice(&4u16.to_le_bytes());
        pairs.extend_from_slice(&2u32.to_le_bytes());
        pairs.extend_from_slice(&[0, 0, 0, 0]);
        let mut temp = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
        temp.extend_from_slice(&ts);
        temp.extend_from_slice(&client_challenge);
        temp.extend_from_slice(&[0, 0, 0, 0]);
        temp.extend_from_slice(&pairs);
        temp.extend_from_slice(&[0, 0, 0, 0]);
        let key = ntowf_v2(password, user, domain);
        let proof = hmac_md5(&key, &[&server_challenge, &temp]);
        let mut nt = proof.to_vec();
        nt.extend_from_slice(&temp);
        let session_base = hmac_md5(&key, &[&proof]);
        let exported = [0x5Au8; 16];
        let esk = rc4(&session_base, &exported);
        let (d, u, w) = (utf16le(domain), utf16le(user), utf16le("WORKSTATION"));
        let lm = [0u8; 24];
        let header = 88usize;
        let mut payload = Vec::new();
        let mut fields = Vec::new();
        for part in [&lm[..], &nt[..], &d[..], &u[..], &w[..], &esk[..]] {
            fields.push(((part.len() as u16), (header + payload.len()) as u32));
            payload.extend_from_slice(part);
        }
        let mut m = Vec::with_capacity(header + payload.len());
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&3u32.to_le_bytes());
        for (len, off) in &fields {
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&off.to_le_bytes());
        }
        m.extend_from_slice(&((flags | NEGOTIATE_KEY_EXCH).to_le_bytes()));
        m.extend_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 15]);
        m.extend_from_slice(&[0u8; 16]);
        m.extend_from_slice(&payload);
        let mic = hmac_md5(&exported, &[negotiate, challenge, &m]);
        m[72..88].copy_from_slice(&mic);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntowfv2_matches_ms_nlmp_test_vector() {
        // [MS-NLMP] 4.2.4.1.1: User "User", UserDom "Domain", Password "Password".
        let k = ntowf_v2("Password", "User", "Domain");
        assert_eq!(hex::encode(k), "0c868a403bfd7a93a3001ef22ef02e3f");
    }

    #[test]
    fn rc4_matches_a_known_vector() {
        assert_eq!(hex::encode(rc4(b"Key", b"Plaintext")), "bbf316e8d940af0ad3");
    }

    #[test]
    fn round_trip_accepts_the_right_password_and_rejects_others() {
        let neg = client::negotiate();
        let p = challenge(
            &neg,
            [1, 2, 3, 4, 5, 6, 7, 8],
            "CONTOSO",
            "EXCH01",
            "contoso.com",
            133_000_000_000_000_000,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let good = client::authenticate(&neg, &p.challenge, "svc-pump", "CONTOSO", "pw", [9; 8])
            .unwrap_or_else(|e| panic!("{e}"));
        let a = parse_authenticate(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.user.as_str(), a.domain.as_str()),
            ("svc-pump", "CONTOSO")
        );
        assert_eq!(verify(&p, &a, "pw"), Ok(()));
        assert_eq!(verify(&p, &a, "wrong"), Err(NtlmError::BadResponse));
        // A tampered message fails the MIC.
        let mut t = good.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        let a = parse_authenticate(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verify(&p, &a, "pw"), Err(NtlmError::BadMic));
        // Another challenge (another connection) does not verify.
        let other = challenge(&neg, [8; 8], "CONTOSO", "EXCH01", "contoso.com", 1)
            .unwrap_or_else(|e| panic!("{e}"));
        let a = parse_authenticate(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verify(&other, &a, "pw"), Err(NtlmError::BadResponse));
        assert!(parse_negotiate(b"garbage").is_err());
    }
}
