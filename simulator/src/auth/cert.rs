//! Certificate credentials: PEM/DER, thumbprints, RS256 verification (and signing, for tests).
//!
//! Entra ID "certificate credentials": the client sends a JWT signed with RS256 whose header names
//! the certificate by `x5t#S256` (base64url SHA-256 of the DER certificate) or the legacy `x5t`
//! (SHA-1), with claims `aud` (the token endpoint URL), `iss` = `sub` = client id, `exp`, `nbf`,
//! `jti` (learn.microsoft.com: "Microsoft identity platform application authentication
//! certificate credentials").

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("not a PEM block of type {0}")]
    Pem(&'static str),
    #[error("malformed DER")]
    Der,
    #[error("key rejected: {0}")]
    Key(String),
}

/// The DER bytes of the first PEM block labelled `label` ("CERTIFICATE", "PRIVATE KEY").
pub fn pem_to_der(pem: &str, label: &'static str) -> Result<Vec<u8>, CertError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or(CertError::Pem(label))? + begin.len();
    let stop = pem[start..].find(&end).ok_or(CertError::Pem(label))? + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).map_err(|_| CertError::Pem(label))
}

/// One DER TLV: (tag, content, rest).
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    if b.len() < 2 {
        return Err(CertError::Der);
    }
    let tag = b[0];
    let (len, hdr) = if b[1] < 0x80 {
        (b[1] as usize, 2)
    } else {
        let n = (b[1] & 0x7F) as usize;
        if n == 0 || n > 4 || b.len() < 2 + n {
            return Err(CertError::Der);
        }
        (
            b[2..2 + n]
                .iter()
                .fold(0usize, |a, x| (a << 8) | *x as usize),
            2 + n,
        )
    };
    if b.len() < hdr + len {
        return Err(CertError::Der);
    }
    Ok((tag, &b[hdr..hdr + len], &b[hdr + len..]))
}

/// The PKCS#1 RSAPublicKey inside a certificate's subjectPublicKeyInfo.
pub fn rsa_public_key_from_cert(cert_der: &[u8]) -> Result<Vec<u8>, CertError> {
    let (_, cert, _) = tlv(cert_der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xA0 {
        rest = r; // explicit version
    }
    // serial, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (_, spki, _) = tlv(rest)?;
    let (_, _alg, r) = tlv(spki)?;
    let (tag, bits, _) = tlv(r)?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return Err(CertError::Der);
    }
    Ok(bits[1..].to_vec())
}

/// base64url SHA-256 thumbprint (`x5t#S256`).
pub fn x5t_s256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, cert_der))
}

/// base64url SHA-1 thumbprint (`x5t`).
pub fn x5t_sha1(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        cert_der,
    ))
}

/// Upper-case hex SHA-1 thumbprint (how the portal shows it).
pub fn thumbprint_hex(cert_der: &[u8]) -> String {
    hex::encode_upper(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        cert_der,
    ))
}

/// Checks an RS256 signature over `message` with a PKCS#1 RSA public key.
pub fn verify_rs256(rsa_public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, rsa_public_key)
        .verify(message, sig)
        .is_ok()
}

/// Builds a client assertion as a confidential client would (for tests and demos of the
/// simulator): RS256 over header `{alg, typ, x5t#S256, x5t}` and the standard claims.
pub fn client_assertion(
    key_pem: &str,
    cert_pem: &str,
    client_id: &str,
    audience: &str,
    not_before: i64,
    expires: i64,
) -> Result<String, CertError> {
    let cert = pem_to_der(cert_pem, "CERTIFICATE")?;
    let key = pem_to_der(key_pem, "PRIVATE KEY")?;
    let pair =
        signature::RsaKeyPair::from_pkcs8(&key).map_err(|e| CertError::Key(e.to_string()))?;
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5t#S256": x5t_s256(&cert), "x5t": x5t_sha1(&cert) });
    let claims = serde_json::json!({
        "aud": audience, "iss": client_id, "sub": client_id, "jti": format!("{:x}", expires ^ not_before.rotate_left(17)),
        "nbf": not_before, "iat": not_before, "exp": expires,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|e| CertError::Key(e.to_string()))?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{GRAPH_APP_CERT_PEM, GRAPH_APP_KEY_PEM, UNREGISTERED_KEY_PEM};

    #[test]
    fn fixture_signs_and_verifies() {
        let cert = pem_to_der(GRAPH_APP_CERT_PEM, "CERTIFICATE").unwrap_or_default();
        let pk = rsa_public_key_from_cert(&cert).unwrap_or_default();
        assert!(pk.len() > 256);
        let a = client_assertion(GRAPH_APP_KEY_PEM, GRAPH_APP_CERT_PEM, "c", "aud", 0, 10)
            .unwrap_or_default();
        let (input, sig) = a.rsplit_once('.').unwrap_or_default();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        assert!(verify_rs256(&pk, input.as_bytes(), &sig));
        let forged = client_assertion(UNREGISTERED_KEY_PEM, GRAPH_APP_CERT_PEM, "c", "aud", 0, 10)
            .unwrap_or_default();
        let (input, sig) = forged.rsplit_once('.').unwrap_or_default();
        assert!(!verify_rs256(
            &pk,
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(sig).unwrap_or_default()
        ));
        assert_eq!(thumbprint_hex(&cert).len(), 40);
    }
}
