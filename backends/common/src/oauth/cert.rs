//! Certificate credentials: the PEM certificate and its private key, and the signed JWT client
//! assertion Entra ID accepts instead of a client secret.
//!
//! Microsoft identity platform, "application authentication certificate credentials": header
//! `alg`, `typ`, `x5t#S256` (base64url SHA-256 of the certificate's DER); claims `aud` = the
//! token endpoint URL, `iss` = `sub` = the client id, `jti` unique, `nbf`, `iat`, and a short
//! `exp` (5–10 minutes). Sent as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
//!
//! The signature uses ring (already compiled as rustls' crypto provider): RS256 by default, as
//! older app registrations expect, with the SHA-1 `x5t` too; PS256 (what the current page
//! recommends) on request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use calpump_engine::secret::Secret;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use x509_cert::der::Decode as _;

/// `client_assertion_type` for a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Lifetime of an assertion (`exp - nbf`).
pub const ASSERTION_LIFETIME_SECS: u64 = 300;

/// Why a certificate or key cannot be used. Texts name files, never key material.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read the certificate file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate(String),
    #[error("{what} is not a valid X.509 certificate: {reason}")]
    BadCertificate { what: String, reason: String },
    #[error(
        "the private key is not a PEM RSA key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----): {0}"
    )]
    BadKey(String),
    #[error(
        "the private key does not belong to the certificate {subject} (thumbprint {thumbprint})"
    )]
    KeyMismatch { subject: String, thumbprint: String },
    #[error("signing the client assertion failed")]
    Sign,
}

/// A client certificate: what Entra ID knows of the app's credential.
#[derive(Clone)]
pub struct ClientCertificate {
    der: Vec<u8>,
    subject: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    /// The subjectPublicKey bits (an RSAPublicKey for RSA).
    public_key: Vec<u8>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject)
            .field("thumbprint", &self.thumbprint())
            .field("not_after", &self.not_after)
            .finish()
    }
}

fn to_utc(time: &x509_cert::time::Time) -> DateTime<Utc> {
    let secs = time.to_unix_duration().as_secs();
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

impl ClientCertificate {
    /// Reads the first certificate of a PEM file.
    pub fn load(path: &Path) -> Result<Self, CertificateError> {
        let bytes = std::fs::read(path).map_err(|source| CertificateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&bytes, &path.display().to_string())
    }

    /// Reads the first certificate of PEM text; `what` names it in errors.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<Self, CertificateError> {
        let der = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or_else(|| CertificateError::NoCertificate(what.to_string()))?
            .map_err(|e| CertificateError::BadCertificate {
                what: what.to_string(),
                reason: e.to_string(),
            })?;
        Self::from_der(der.as_ref(), what)
    }

    pub fn from_der(der: &[u8], what: &str) -> Result<Self, CertificateError> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
            CertificateError::BadCertificate {
                what: what.to_string(),
                reason: e.to_string(),
            }
        })?;
        let tbs = cert.tbs_certificate();
        let validity = tbs.validity();
        Ok(Self {
            der: der.to_vec(),
            subject: tbs.subject().to_string(),
            not_before: to_utc(&validity.not_before),
            not_after: to_utc(&validity.not_after),
            public_key: tbs
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes()
                .to_vec(),
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject, RFC 4514 style (`CN=calpump`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// The end of validity (for expiry warnings).
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Entra admin center shows it.
    pub fn thumbprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der);
        digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
    }

    /// `x5t`: base64url SHA-1 of the DER.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der).as_ref(),
        )
    }

    /// `x5t#S256`: base64url SHA-256 of the DER.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.der).as_ref())
    }

    /// How it is named in messages: subject and thumbprint.
    pub fn describe(&self) -> String {
        format!(
            "certificate {} (thumbprint {})",
            self.subject,
            self.thumbprint()
        )
    }
}

/// An RSA private key. Never printed.
pub struct PrivateKey {
    key: RsaKeyPair,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

impl PrivateKey {
    /// From PEM text (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`), as a resolved secret.
    pub fn from_pem(pem: &Secret) -> Result<Self, CertificateError> {
        let der = PrivateKeyDer::from_pem_slice(pem.expose().as_bytes()).map_err(|e| {
            // pki-types' messages name the section kind, never key bytes.
            CertificateError::BadKey(e.to_string())
        })?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(_) => {
                return Err(CertificateError::BadKey(
                    "an EC key; Entra ID certificate credentials need RSA".to_string(),
                ));
            }
            _ => {
                return Err(CertificateError::BadKey("an unknown key type".to_string()));
            }
        }
        .map_err(|e| CertificateError::BadKey(e.to_string()))?;
        Ok(Self { key })
    }

    /// The public key as a DER RSAPublicKey.
    fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }
}

/// The signature algorithm of the assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
}

/// A certificate and its key, checked to belong together.
#[derive(Debug)]
pub struct CertificateCredential {
    certificate: ClientCertificate,
    key: PrivateKey,
    algorithm: AssertionAlgorithm,
    rng: SystemRandom,
}

impl CertificateCredential {
    /// Fails with [`CertificateError::KeyMismatch`] when the key is not the certificate's.
    pub fn new(certificate: ClientCertificate, key: PrivateKey) -> Result<Self, CertificateError> {
        if key.public_key() != certificate.public_key.as_slice() {
            return Err(CertificateError::KeyMismatch {
                subject: certificate.subject.clone(),
                thumbprint: certificate.thumbprint(),
            });
        }
        Ok(Self {
            certificate,
            key,
            algorithm: AssertionAlgorithm::default(),
            rng: SystemRandom::new(),
        })
    }

    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn certificate(&self) -> &ClientCertificate {
        &self.certificate
    }

    /// A signed client assertion for `client_id` at the token endpoint `token_url`, valid
    /// from `now` for [`ASSERTION_LIFETIME_SECS`].
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: SystemTime,
    ) -> Result<Secret, CertificateError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| CertificateError::Sign)?
            .as_secs();
        let alg = match self.algorithm {
            AssertionAlgorithm::Rs256 => "RS256",
            AssertionAlgorithm::Ps256 => "PS256",
        };
        let header = json!({
            "alg": alg,
            "typ": "JWT",
            "x5t": self.certificate.x5t(),
            "x5t#S256": self.certificate.x5t_s256(),
        });
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": random_uuid(&self.rng)?,
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let padding: &dyn signature::RsaEncoding = match self.algorithm {
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
        };
        let mut sig = vec![0u8; self.key.key.public().modulus_len()];
        self.key
            .key
            .sign(padding, &self.rng, signing_input.as_bytes(), &mut sig)
            .map_err(|_| CertificateError::Sign)?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig)
        )))
    }
}

/// A random (version 4) UUID for `jti`.
fn random_uuid(rng: &SystemRandom) -> Result<String, CertificateError> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    rng.fill(&mut b).map_err(|_| CertificateError::Sign)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}
