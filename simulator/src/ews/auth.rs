//! Who is calling: Basic, NTLM (NTLMv2, per TCP connection as IIS keeps it) and OAuth bearer
//! tokens issued by the simulator's token endpoint (audience Exchange).
//!
//! Docs: `docs/exchange-web-services/authentication-and-ews-in-exchange.md` (NTLM, Basic, OAuth),
//! `…/how-to-authenticate-an-ews-application-by-using-oauth.md` (`full_access_as_app` app-only
//! tokens need `ExchangeImpersonation`/`X-AnchorMailbox`; `EWS.AccessAsUser.All` delegated),
//! [MS-NTHT] for NTLM over HTTP (see `ntlm.rs`).

use super::ntlm;
use super::state::{ConnAuth, EwsState};
use crate::catalogue::{self, AccountState};
use crate::control::Control;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A catalogue account signed in with Basic or NTLM.
    Account { upn: String, scheme: &'static str },
    /// An app-only bearer token with the `full_access_as_app` role.
    App { client_id: String },
    /// A delegated bearer token (`EWS.AccessAsUser.All`) for a user.
    Delegated { upn: String, client_id: String },
}

impl Principal {
    /// The key the EWS concurrency limit counts against (EWSMaxConcurrency is per caller).
    pub fn key(&self) -> String {
        match self {
            Principal::Account { upn, .. } | Principal::Delegated { upn, .. } => upn.clone(),
            Principal::App { client_id } => format!("app:{client_id}"),
        }
    }
    /// The caller's own mailbox, if it has one.
    pub fn own_mailbox(&self) -> Option<&str> {
        match self {
            Principal::Account { upn, .. } | Principal::Delegated { upn, .. } => Some(upn),
            Principal::App { .. } => None,
        }
    }
    pub fn scheme(&self) -> &'static str {
        match self {
            Principal::Account { scheme, .. } => scheme,
            Principal::App { .. } | Principal::Delegated { .. } => "bearer",
        }
    }
}

/// The catalogue account a Basic/NTLM user name names: `CONTOSO\user`, `user@contoso.com`, or
/// `user` with the NetBIOS or DNS domain (or none).
pub fn account_for(control: &Control, user: &str, domain: &str) -> Option<AccountState> {
    let (domain, user) = match user.split_once('\\') {
        Some((d, u)) => (d, u),
        None => (domain, user),
    };
    let ours = |d: &str| {
        d.is_empty()
            || d.eq_ignore_ascii_case(catalogue::NETBIOS_DOMAIN)
            || d.eq_ignore_ascii_case(catalogue::MAIL_DOMAIN)
            || d.eq_ignore_ascii_case(catalogue::TENANT_DOMAIN)
    };
    let upn = if user.contains('@') {
        user.to_string()
    } else if ours(domain) {
        format!("{user}@{}", catalogue::MAIL_DOMAIN)
    } else {
        return None;
    };
    control.account(&upn)
}

fn random8() -> [u8; 8] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        b = t.to_le_bytes();
    }
    b
}

/// 401 with every scheme the server offers (as IIS lists them), or with one NTLM challenge.
pub fn unauthorized(
    st: &EwsState,
    base_url: &str,
    challenge: Option<String>,
    diag: Option<&str>,
) -> Response {
    let mut r = Response::new(Body::from(
        "<!DOCTYPE html><html><head><title>401 - Unauthorized</title></head><body><h1>401 - Unauthorized: Access is denied due to invalid credentials.</h1></body></html>",
    ));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    match challenge {
        Some(c) => {
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.append(header::WWW_AUTHENTICATE, v);
            }
        }
        None => {
            for v in st.settings().www_authenticate(base_url) {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.append(header::WWW_AUTHENTICATE, v);
                }
            }
        }
    }
    if let Some(d) = diag
        && let Ok(v) = HeaderValue::from_str(d)
    {
        h.insert("x-ms-diagnostics", v);
    }
    r
}

/// Authenticates a request. `conn` identifies the TCP connection (NTLM state); `Err` is the 401.
pub fn authenticate(
    st: &EwsState,
    control: &Control,
    base_url: &str,
    headers: &HeaderMap,
    conn: Option<u64>,
) -> Result<Principal, Box<Response>> {
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let (scheme, token) = authz.split_once(' ').unwrap_or((authz, ""));
    let token = token.trim();
    let settings = st.settings();
    let offered = |s: &str| settings.auth.iter().any(|a| a.eq_ignore_ascii_case(s));
    if scheme.is_empty() {
        // IIS keeps an NTLM-authenticated connection authenticated.
        if let Some(ConnAuth::Authenticated(upn)) = conn.and_then(|c| st.conn(c))
            && control.account(&upn).is_some()
        {
            return Ok(Principal::Account {
                upn,
                scheme: "ntlm",
            });
        }
        return Err(Box::new(unauthorized(st, base_url, None, None)));
    }
    if scheme.eq_ignore_ascii_case("basic") && offered("basic") {
        let decoded = STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let (user, pass) = decoded.split_once(':').unwrap_or((&decoded, ""));
        return match account_for(control, user, "") {
            Some(a) if a.password == pass => Ok(Principal::Account {
                upn: a.upn,
                scheme: "basic",
            }),
            _ => {
                tracing::debug!(user, "EWS basic auth refused");
                Err(Box::new(unauthorized(st, base_url, None, None)))
            }
        };
    }
    let ntlm_scheme = if scheme.eq_ignore_ascii_case("ntlm") && offered("ntlm") {
        Some("NTLM")
    } else if scheme.eq_ignore_ascii_case("negotiate") && offered("negotiate") {
        Some("Negotiate")
    } else {
        None
    };
    if let Some(name) = ntlm_scheme {
        let Some(conn) = conn else {
            return Err(Box::new(unauthorized(st, base_url, None, None)));
        };
        let Ok(msg) = STANDARD.decode(token) else {
            return Err(Box::new(unauthorized(st, base_url, None, None)));
        };
        if ntlm::parse_negotiate(&msg).is_ok() {
            let now = crate::tenant::goid::filetime(chrono::Utc::now());
            return match ntlm::challenge(
                &msg,
                random8(),
                catalogue::NETBIOS_DOMAIN,
                "EXCH01",
                catalogue::MAIL_DOMAIN,
                now,
            ) {
                Ok(p) => {
                    let c = format!("{name} {}", STANDARD.encode(&p.challenge));
                    st.set_conn(conn, ConnAuth::Pending(p));
                    Err(Box::new(unauthorized(st, base_url, Some(c), None)))
                }
                Err(_) => Err(Box::new(unauthorized(st, base_url, None, None))),
            };
        }
        let pending = match st.conn(conn) {
            Some(ConnAuth::Pending(p)) => p,
            _ => return Err(Box::new(unauthorized(st, base_url, None, None))),
        };
        let verdict = ntlm::parse_authenticate(&msg).and_then(|a| {
            let acc =
                account_for(control, &a.user, &a.domain).ok_or(ntlm::NtlmError::BadResponse)?;
            ntlm::verify(&pending, &a, &acc.password)?;
            Ok(acc.upn)
        });
        return match verdict {
            Ok(upn) => {
                st.set_conn(conn, ConnAuth::Authenticated(upn.clone()));
                Ok(Principal::Account {
                    upn,
                    scheme: "ntlm",
                })
            }
            Err(e) => {
                tracing::debug!(error = %e, "EWS NTLM logon refused");
                st.clear_conn(conn);
                Err(Box::new(unauthorized(st, base_url, None, None)))
            }
        };
    }
    if scheme.eq_ignore_ascii_case("bearer") && offered("bearer") {
        return super::bearer::principal(st, control, base_url, authz);
    }
    Err(Box::new(unauthorized(st, base_url, None, None)))
}
