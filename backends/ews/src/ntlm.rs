//! NTLMv2 messages for HTTP (MS-NLMP; HTTP binding per MS-NTHT): the negotiate and authenticate
//! tokens, built with the `ntlmclient` crate, plus the channel binding token
//! (`MsvAvChannelBindings`, MS-NLMP 2.2.2.1, RFC 5929 `tls-server-end-point`) that servers with
//! Extended Protection require over TLS.
//!
//! The three legs must travel over one TCP connection: [`crate::transport`] keeps one reqwest
//! client per slot, used by one request at a time, so the idle connection of leg 1 carries leg 3.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ntlmclient::{Flags, Message, NegotiateMessage, TargetInfoEntry, TargetInfoType};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The workstation name calpump announces.
pub const WORKSTATION: &str = "CALPUMP";

/// `DOMAIN\user` → (`DOMAIN`, `user`); a UPN (`user@contoso.com`) keeps an empty domain, which
/// NTLM accepts for UPNs.
pub fn split_username(username: &str) -> (String, String) {
    match username.split_once('\\') {
        Some((domain, user)) => (domain.to_string(), user.to_string()),
        None => (String::new(), username.to_string()),
    }
}

fn negotiate_flags() -> Flags {
    Flags::NEGOTIATE_UNICODE
        | Flags::REQUEST_TARGET
        | Flags::NEGOTIATE_NTLM
        | Flags::NEGOTIATE_ALWAYS_SIGN
        | Flags::NEGOTIATE_NTLM2_KEY
        | Flags::NEGOTIATE_128BIT
        | Flags::NEGOTIATE_56BIT
}

/// Leg 1: the base64 negotiate token.
pub fn negotiate_token() -> Result<String, String> {
    let msg = Message::Negotiate(NegotiateMessage {
        flags: negotiate_flags(),
        supplied_domain: String::new(),
        supplied_workstation: WORKSTATION.to_string(),
        os_version: Default::default(),
    });
    msg.to_bytes()
        .map(|bytes| BASE64.encode(bytes))
        .map_err(|e| format!("cannot encode the NTLM negotiate message: {e:?}"))
}

/// The `gss_channel_bindings_struct` hash for `tls-server-end-point` (RFC 5929 §4.1): the
/// certificate hashed with its signature's hash, SHA-256 for MD5/SHA-1; then MD5 over the
/// struct with empty initiator/acceptor addresses and the application data
/// `"tls-server-end-point:" || hash`.
pub fn channel_bindings(server_cert_der: &[u8]) -> [u8; 16] {
    let hash: Vec<u8> = match signature_hash(server_cert_der) {
        CertHash::Sha384 => Sha384::digest(server_cert_der).to_vec(),
        CertHash::Sha512 => Sha512::digest(server_cert_der).to_vec(),
        CertHash::Sha256 => Sha256::digest(server_cert_der).to_vec(),
    };
    let mut app = b"tls-server-end-point:".to_vec();
    app.extend_from_slice(&hash);
    let mut data = Vec::with_capacity(20 + app.len());
    // initiator_addrtype, initiator_address length, acceptor_addrtype, acceptor_address length
    data.extend_from_slice(&[0u8; 16]);
    data.extend_from_slice(&u32::try_from(app.len()).unwrap_or(u32::MAX).to_le_bytes());
    data.extend_from_slice(&app);
    md5(&data)
}

enum CertHash {
    Sha256,
    Sha384,
    Sha512,
}

fn signature_hash(der: &[u8]) -> CertHash {
    use x509_cert::der::Decode as _;
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return CertHash::Sha256;
    };
    let oid = cert.signature_algorithm().oid.to_string();
    match oid.as_str() {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => CertHash::Sha384,
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => CertHash::Sha512,
        _ => CertHash::Sha256,
    }
}

/// MD5, only for the channel binding hash MS-NLMP prescribes.
fn md5(input: &[u8]) -> [u8; 16] {
    md5::Md5::digest(input).into()
}

/// Leg 3: the base64 authenticate token answering the server's base64 challenge.
/// `channel_binding` is the [`channel_bindings`] hash when the connection is TLS.
pub fn authenticate_token(
    challenge_b64: &str,
    username: &str,
    password: &str,
    channel_binding: Option<[u8; 16]>,
) -> Result<String, String> {
    let bytes = BASE64
        .decode(challenge_b64.trim())
        .map_err(|e| format!("the NTLM challenge is not base64: {e}"))?;
    let challenge = match Message::try_from(bytes.as_slice()) {
        Ok(Message::Challenge(c)) => c,
        Ok(other) => {
            return Err(format!(
                "expected an NTLM challenge (type 2), got message type {}",
                other.message_number()
            ));
        }
        Err(e) => return Err(format!("the NTLM challenge cannot be read: {e}")),
    };
    let mut entries: Vec<TargetInfoEntry> = challenge
        .target_information
        .iter()
        .filter(|e| {
            !matches!(
                e.entry_type,
                TargetInfoType::Terminator | TargetInfoType::ChannelBindings
            )
        })
        .cloned()
        .collect();
    if let Some(cbt) = channel_binding {
        entries.push(TargetInfoEntry {
            entry_type: TargetInfoType::ChannelBindings,
            data: cbt.to_vec(),
        });
    }
    entries.push(TargetInfoEntry {
        entry_type: TargetInfoType::Terminator,
        data: Vec::new(),
    });
    let target_info: Vec<u8> = entries.iter().flat_map(TargetInfoEntry::to_bytes).collect();
    let (domain, user) = split_username(username);
    let creds = ntlmclient::Credentials {
        username: user,
        password: password.to_string(),
        domain,
    };
    let response = ntlmclient::respond_challenge_ntlm_v2(
        challenge.challenge,
        &target_info,
        ntlmclient::get_ntlm_time(),
        &creds,
    );
    let flags = Flags::NEGOTIATE_UNICODE
        | Flags::NEGOTIATE_NTLM
        | Flags::NEGOTIATE_ALWAYS_SIGN
        | Flags::NEGOTIATE_NTLM2_KEY
        | Flags::NEGOTIATE_128BIT
        | Flags::NEGOTIATE_56BIT;
    let message = response.to_message(&creds, WORKSTATION, flags);
    message
        .to_bytes()
        .map(|b| BASE64.encode(b))
        .map_err(|e| format!("cannot encode the NTLM authenticate message: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc1321() {
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn usernames_split() {
        assert_eq!(
            split_username("CONTOSO\\svc"),
            ("CONTOSO".into(), "svc".into())
        );
        assert_eq!(
            split_username("svc@contoso.com"),
            (String::new(), "svc@contoso.com".into())
        );
    }

    #[test]
    fn negotiate_is_an_ntlmssp_type1() {
        let token = negotiate_token().expect("token");
        let bytes = BASE64.decode(token).expect("b64");
        assert_eq!(&bytes[..8], b"NTLMSSP\0");
        assert_eq!(
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            1
        );
    }

    #[test]
    fn bad_challenges_are_errors() {
        assert!(authenticate_token("!!", "u", "p", None).is_err());
        let type1 = negotiate_token().expect("token");
        assert!(authenticate_token(&type1, "u", "p", None).is_err());
    }
}
