//! HTTP with EWS's authentication: Basic (preemptive), NTLMv2 (the three legs over one
//! connection) and OAuth bearer tokens from backend-common's token cache (one retry with a new
//! token on 401). Everything else (TLS, timeouts, the endpoint policy, counters) is
//! backend-common's [`HttpClient`].

use std::collections::HashSet;
use std::sync::Arc;

use calpump_backend_common::http::{HttpClient, HttpResponse, HttpSettings, display_url};
use calpump_backend_common::oauth::{AccessToken, TokenSource};
use calpump_backend_common::stats::Stats;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::{ews, general};
use calpump_engine::secret::Secret;
use calpump_engine::source::SourceError;
use reqwest::StatusCode;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use tokio::sync::{Mutex, Semaphore};

use crate::errors;
use crate::ntlm;

/// One POST.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    pub url: &'a Url,
    /// The operation, for counters and logs (`FindItem`, `Autodiscover`).
    pub op: &'static str,
    pub body: String,
    /// `X-AnchorMailbox` (sent with impersonation only).
    pub anchor: Option<&'a str>,
    /// `SOAPAction` (SOAP Autodiscover).
    pub soap_action: Option<&'a str>,
}

/// How requests are authenticated.
pub enum Auth {
    Basic {
        username: String,
        header: HeaderValue,
    },
    Ntlm {
        username: String,
        password: Secret,
        pool: NtlmPool,
    },
    OAuth {
        tokens: Arc<TokenSource>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { username, .. } => write!(f, "Auth::Basic({username})"),
            Auth::Ntlm { username, .. } => write!(f, "Auth::Ntlm({username})"),
            Auth::OAuth { tokens } => write!(f, "Auth::OAuth({tokens:?})"),
        }
    }
}

/// NTLM authenticates a connection, not a request: one reqwest client per slot, each used by
/// one request at a time, so its single idle connection carries all three legs and stays
/// authenticated for the requests after.
pub struct NtlmPool {
    permits: Semaphore,
    slots: Vec<Mutex<NtlmSlot>>,
}

struct NtlmSlot {
    http: HttpClient,
    /// Origins (`scheme://host:port`) whose connection in this slot is authenticated.
    authenticated: HashSet<String>,
}

impl NtlmPool {
    pub fn new(
        settings: &HttpSettings,
        stats: &Arc<Stats>,
        size: usize,
    ) -> Result<Self, SourceError> {
        let size = size.max(1);
        let mut slots = Vec::with_capacity(size);
        for _ in 0..size {
            slots.push(Mutex::new(NtlmSlot {
                // The server's certificate binds the NTLM handshake to the TLS channel.
                http: HttpClient::new_with_peer_certificate(settings)?.with_stats(stats.clone()),
                authenticated: HashSet::new(),
            }));
        }
        Ok(Self {
            permits: Semaphore::new(size),
            slots,
        })
    }
}

fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn request(http: &HttpClient, post: &Post<'_>, body: String) -> reqwest::RequestBuilder {
    let mut builder = http
        .reqwest()
        .post(post.url.clone())
        .header(CONTENT_TYPE, "text/xml; charset=utf-8")
        .header(ACCEPT, "text/xml")
        .body(body);
    if let Some(anchor) = post.anchor {
        builder = builder.header("X-AnchorMailbox", anchor);
    }
    if let Some(action) = post.soap_action {
        builder = builder.header("SOAPAction", format!("\"{action}\""));
    }
    builder
}

/// The challenge of a scheme in `WWW-Authenticate` (`NTLM <b64>` / `Negotiate <b64>`).
fn challenge(response: &HttpResponse, scheme: &str) -> Option<String> {
    response
        .headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let part = part.trim();
            let (name, rest) = part.split_once(' ').unwrap_or((part, ""));
            (name.eq_ignore_ascii_case(scheme) && !rest.trim().is_empty())
                .then(|| rest.trim().to_string())
        })
}

fn sensitive(value: String) -> Result<HeaderValue, SourceError> {
    let mut header = HeaderValue::from_str(&value).map_err(|_| {
        SourceError::new(Diagnostic::new(
            &general::INTERNAL,
            "an authorization header could not be built",
        ))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The authenticated HTTP transport of one profile.
#[derive(Debug)]
pub struct Transport {
    http: HttpClient,
    auth: Auth,
}

impl Transport {
    pub fn new(http: HttpClient, auth: Auth) -> Self {
        Self { http, auth }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Who signs in, for messages (never a secret).
    pub fn who(&self) -> String {
        match &self.auth {
            Auth::Basic { username, .. } => username.clone(),
            Auth::Ntlm { username, .. } => username.clone(),
            Auth::OAuth { tokens } => format!("app {}", tokens.config().client_id),
        }
    }

    pub fn scheme(&self) -> &'static str {
        match &self.auth {
            Auth::Basic { .. } => "Basic",
            Auth::Ntlm { .. } => "NTLM",
            Auth::OAuth { .. } => "OAuth (Bearer)",
        }
    }

    /// A token now (OAuth only), for `profile test`.
    pub async fn token(&self) -> Result<Option<AccessToken>, SourceError> {
        match &self.auth {
            Auth::OAuth { tokens } => tokens.token().await.map(Some),
            _ => Ok(None),
        }
    }

    /// Sends an authenticated POST. Any status but a final 401 is returned for the caller to
    /// read; a 401 the authentication could not get past is `ews.Unauthorized` naming the
    /// schemes the server offered.
    pub async fn post(&self, post: Post<'_>) -> Result<HttpResponse, SourceError> {
        match &self.auth {
            Auth::Basic { header, .. } => {
                let req = request(&self.http, &post, post.body.clone())
                    .header(AUTHORIZATION, header.clone());
                let response = self.http.send(post.op, req).await?;
                self.final_check(response)
            }
            Auth::OAuth { tokens } => {
                let token = tokens.token().await?;
                let req = request(&self.http, &post, post.body.clone())
                    .header(AUTHORIZATION, token.header_value());
                let response = self.http.send(post.op, req).await?;
                if response.status != StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                // Expired or revoked: one new token, one retry.
                tracing::debug!(op = post.op, "401 with a bearer token; fetching a new one");
                tokens.invalidate(&token);
                let token = tokens.token().await?;
                let req = request(&self.http, &post, post.body.clone())
                    .header(AUTHORIZATION, token.header_value());
                let response = self.http.send(post.op, req).await?;
                self.final_check(response)
            }
            Auth::Ntlm {
                username,
                password,
                pool,
            } => self.post_ntlm(&post, username, password, pool).await,
        }
    }

    fn final_check(&self, response: HttpResponse) -> Result<HttpResponse, SourceError> {
        if response.status == StatusCode::UNAUTHORIZED {
            return Err(errors::unauthorized(&response, self.scheme(), &self.who()));
        }
        Ok(response)
    }

    async fn post_ntlm(
        &self,
        post: &Post<'_>,
        username: &str,
        password: &Secret,
        pool: &NtlmPool,
    ) -> Result<HttpResponse, SourceError> {
        let _permit = pool.permits.acquire().await.map_err(|_| {
            SourceError::new(Diagnostic::new(
                &general::INTERNAL,
                "NTLM connection pool closed",
            ))
        })?;
        // A permit guarantees a free slot; take the first unlocked one.
        let mut slot = None;
        for candidate in &pool.slots {
            if let Ok(guard) = candidate.try_lock() {
                slot = Some(guard);
                break;
            }
        }
        let mut slot = match slot {
            Some(slot) => slot,
            None => pool.slots[0].lock().await,
        };
        let key = origin(post.url);
        if slot.authenticated.contains(&key) {
            let response = slot
                .http
                .send(post.op, request(&slot.http, post, post.body.clone()))
                .await?;
            if response.status != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            // The connection was replaced (closed by the server): authenticate again.
            slot.authenticated.remove(&key);
        }
        // The three legs must share one TCP connection, but reqwest's pool races a checkout of
        // the idle connection against opening a new one: on a loaded machine leg 3 can leave on
        // a fresh connection, which the server refuses as a logon without a challenge. So a
        // refused leg 3 is tried once more with a new handshake; a wrong password then costs
        // two failed logons per request instead of one.
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            match self
                .ntlm_handshake(&mut slot, post, username, password)
                .await?
            {
                Handshake::Done(response) => break response,
                Handshake::Refused(response) if attempt >= 2 => {
                    return Err(errors::unauthorized(&response, "NTLM", username));
                }
                Handshake::Refused(_) => {
                    tracing::debug!(
                        op = post.op,
                        "NTLM authenticate refused; repeating the handshake once"
                    );
                }
            }
        };
        slot.authenticated.insert(key);
        Ok(response)
    }

    /// One NTLM handshake on the slot's connection: negotiate, challenge, authenticate with the
    /// real request. `Refused` when the server answered the authenticate with a 401.
    async fn ntlm_handshake(
        &self,
        slot: &mut NtlmSlot,
        post: &Post<'_>,
        username: &str,
        password: &Secret,
    ) -> Result<Handshake, SourceError> {
        // Leg 1: negotiate, no body.
        let negotiate = ntlm::negotiate_token().map_err(internal)?;
        let leg1 = request(&slot.http, post, String::new());
        let first = slot
            .http
            .send(
                "NTLM",
                leg1.header(AUTHORIZATION, sensitive(format!("NTLM {negotiate}"))?),
            )
            .await?;
        if first.status != StatusCode::UNAUTHORIZED {
            // No authentication needed after all: send the real request.
            let response = slot
                .http
                .send(post.op, request(&slot.http, post, post.body.clone()))
                .await?;
            return self.final_check(response).map(Handshake::Done);
        }
        let (scheme, challenge) = match (challenge(&first, "NTLM"), challenge(&first, "Negotiate"))
        {
            (Some(c), _) => ("NTLM", c),
            (None, Some(c)) => ("Negotiate", c),
            (None, None) => {
                return Err(errors::unauthorized(&first, "NTLM", username));
            }
        };
        // Leg 3: authenticate, with the real request. Over TLS the authenticate message carries
        // the channel binding of this connection's certificate (`MsvAvChannelBindings`,
        // `tls-server-end-point`), which Extended Protection for Authentication requires.
        let binding = first
            .peer_certificate
            .as_deref()
            .map(ntlm::channel_bindings);
        tracing::debug!(
            op = post.op,
            channel_binding = binding.is_some(),
            "NTLM authenticate"
        );
        let token = ntlm::authenticate_token(&challenge, username, password.expose(), binding)
            .map_err(|message| {
                SourceError::new(Diagnostic::new(
                    &ews::UNAUTHORIZED,
                    format!("{}: {message}", display_url(post.url)),
                ))
            })?;
        let leg3 = request(&slot.http, post, post.body.clone())
            .header(AUTHORIZATION, sensitive(format!("{scheme} {token}"))?);
        let response = slot.http.send(post.op, leg3).await?;
        if response.status == StatusCode::UNAUTHORIZED {
            return Ok(Handshake::Refused(response));
        }
        Ok(Handshake::Done(response))
    }
}

/// How one NTLM handshake ended.
enum Handshake {
    /// The real request's response (anything but a 401 to the authenticate).
    Done(HttpResponse),
    /// The authenticate was answered with a 401.
    Refused(HttpResponse),
}

fn internal(message: String) -> SourceError {
    SourceError::new(Diagnostic::new(&general::INTERNAL, message))
}

/// `Basic <base64(user:password)>`, marked sensitive.
pub fn basic_header(username: &str, password: &Secret) -> Result<HeaderValue, SourceError> {
    use base64::Engine as _;
    let raw = format!("{username}:{}", password.expose());
    sensitive(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ))
}
