//! The HTTP client both backends use: set-up, the endpoint policy, and the classification of
//! what goes wrong into catalogue diagnostics.
//!
//! ```no_run
//! # async fn demo() -> Result<(), calpump_engine::source::SourceError> {
//! use calpump_backend_common::http::{Expect, HttpClient, HttpSettings};
//! let http = HttpClient::new(&HttpSettings::default())?;
//! let request = http.reqwest().get("https://graph.microsoft.com/v1.0/places/microsoft.graph.room");
//! let response = http.send("rooms", request).await?.check(Expect::Json)?;
//! let rooms: serde_json::Value = response.json()?;
//! # Ok(()) }
//! ```
//!
//! Nothing here logs a header or a body: requests carry tokens and passwords, answers carry
//! tokens. Details name the URL (without user info and query) and a short redacted excerpt.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use calpump_engine::config::ConfigIssue;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::source::SourceError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::retry::parse_retry_after;
use crate::stats::Stats;
use crate::text;

/// `calpump/<version>`, sent as `User-Agent` on every request.
pub const USER_AGENT: &str = concat!("calpump/", env!("CARGO_PKG_VERSION"));

/// Transport settings of a profile. Backends list these keys in their profile struct (or use
/// [`HttpSettings::KEYS`] with [`crate::settings::split_table`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// How long a TCP + TLS connect may take (`connect_timeout = "10s"`).
    #[serde(
        default = "default_connect_timeout",
        with = "calpump_engine::config::duration"
    )]
    #[schemars(with = "calpump_engine::config::schema::HumanDuration")]
    pub connect_timeout: Duration,
    /// How long a whole request may take, body included (`timeout = "60s"`).
    #[serde(default = "default_timeout", with = "calpump_engine::config::duration")]
    #[schemars(with = "calpump_engine::config::schema::HumanDuration")]
    pub timeout: Duration,
    /// Accept plain `http://` to hosts other than loopback (`check` warns).
    #[serde(default)]
    pub allow_insecure: bool,
    /// A PEM file of extra CA certificates to trust (an internal CA of an on-premises
    /// Exchange), besides the system store and the public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: default_connect_timeout(),
            timeout: default_timeout(),
            allow_insecure: false,
            ca_file: None,
        }
    }
}

impl HttpSettings {
    /// The profile keys these settings are read from.
    pub const KEYS: &'static [&'static str] =
        &["connect_timeout", "timeout", "allow_insecure", "ca_file"];

    /// Offline validation: the CA file exists and holds certificates; timeouts are sane.
    pub fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.timeout < Duration::from_secs(1) {
            issues.push(ConfigIssue::error("timeout", "must be at least 1s"));
        }
        if self.connect_timeout < Duration::from_millis(100) {
            issues.push(ConfigIssue::error(
                "connect_timeout",
                "must be at least 100ms",
            ));
        }
        if let Some(path) = &self.ca_file
            && let Err(message) = read_ca_file(path)
        {
            issues.push(ConfigIssue::error("ca_file", message));
        }
        issues
    }

    pub fn policy(&self) -> EndpointPolicy {
        EndpointPolicy {
            allow_insecure: self.allow_insecure,
        }
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("{} is not a PEM file: {e}", path.display()))?;
        out.push(
            reqwest::Certificate::from_der(&cert)
                .map_err(|e| format!("{}: unusable certificate: {e}", path.display()))?,
        );
    }
    if out.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(out)
}

/// The design's rule for endpoints: `https://` always; plain `http://` only to loopback (the
/// simulator) unless the profile says `allow_insecure = true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointPolicy {
    pub allow_insecure: bool,
}

impl EndpointPolicy {
    /// Parses and checks a configured URL. `path` is the key the URL came from (`graph_url`),
    /// used in the issue. An `http://` URL to a remote host is an error, unless
    /// `allow_insecure` (then [`EndpointPolicy::check_into`] adds a warning).
    pub fn check(&self, path: &str, url: &str) -> Result<Url, ConfigIssue> {
        let parsed = Url::parse(url)
            .map_err(|e| ConfigIssue::error(path, format!("`{url}` is not a URL: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(&parsed) || self.allow_insecure => {}
            "http" => {
                return Err(ConfigIssue::error(
                    path,
                    format!(
                        "plain http:// to {} would send credentials unencrypted: use https://, \
                         or set `allow_insecure = true` if the network path is protected otherwise",
                        parsed.host_str().unwrap_or("?")
                    ),
                ));
            }
            other => {
                return Err(ConfigIssue::error(
                    path,
                    format!("`{other}://` is not supported: use https://"),
                ));
            }
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(ConfigIssue::error(path, "the URL has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ConfigIssue::error(
                path,
                "do not put user names or passwords into URLs: use the profile's credential keys",
            ));
        }
        Ok(parsed)
    }

    /// [`check`](Self::check) for a factory's `check`: pushes the error, or a warning when
    /// `allow_insecure` let a remote `http://` URL pass. Returns the URL when usable.
    pub fn check_into(&self, path: &str, url: &str, issues: &mut Vec<ConfigIssue>) -> Option<Url> {
        match self.check(path, url) {
            Ok(parsed) => {
                if parsed.scheme() == "http" && !is_loopback(&parsed) {
                    issues.push(ConfigIssue::warning(
                        path,
                        format!(
                            "plain http:// to {}: credentials and calendar data cross the network \
                             unencrypted (allowed by `allow_insecure`)",
                            parsed.host_str().unwrap_or("?")
                        ),
                    ));
                }
                Some(parsed)
            }
            Err(issue) => {
                issues.push(issue);
                None
            }
        }
    }

    /// The same rule at run time (every request, every redirect): `config.InsecureUrl`.
    pub fn ensure(&self, url: &Url) -> Result<(), SourceError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if is_loopback(url) || self.allow_insecure => Ok(()),
            _ => Err(SourceError::new(Diagnostic::new(
                &general::INSECURE_URL,
                format!("refused to send a request to {}", display_url(url)),
            ))),
        }
    }
}

/// Whether the URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A URL as shown to admins: scheme, host, port and path — no user info, no query.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Largest body [`HttpClient::send`] reads (a `$batch` of 20 calendar views stays far below).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What a backend expects in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Json,
    /// SOAP/POX. A `500` with an XML body passes [`HttpResponse::check`]: SOAP 1.1 sends its
    /// faults (EWS `ErrorServerBusy`) with status 500.
    Xml,
}

/// The shared client: a `reqwest::Client` with calpump's settings, the endpoint policy and the
/// profile's counters.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: EndpointPolicy,
    stats: Arc<Stats>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Returned by the redirect policy when a redirect would leave TLS.
#[derive(Debug)]
struct InsecureRedirect(String);

impl fmt::Display for InsecureRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect to plain http:// refused: {}", self.0)
    }
}

impl StdError for InsecureRedirect {}

impl HttpClient {
    /// A client with timeouts from `settings`, rustls (system + public roots, plus
    /// `ca_file`), gzip, `calpump/<version>` as user agent, at most 10 redirects that never
    /// leave TLS for a remote host. Counters go to a detached [`Stats`]; use
    /// [`HttpClient::with_stats`] for the profile's.
    pub fn new(settings: &HttpSettings) -> Result<Self, SourceError> {
        Self::build(settings, false)
    }

    /// [`HttpClient::new`], and every response over TLS carries the server's certificate
    /// ([`HttpResponse::peer_certificate`], reqwest's `tls_info`): NTLM binds its authentication
    /// to it (channel binding, `tls-server-end-point`).
    pub fn new_with_peer_certificate(settings: &HttpSettings) -> Result<Self, SourceError> {
        Self::build(settings, true)
    }

    fn build(settings: &HttpSettings, tls_info: bool) -> Result<Self, SourceError> {
        let policy = settings.policy();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            if policy.ensure(attempt.url()).is_err() {
                let shown = display_url(attempt.url());
                return attempt.error(InsecureRedirect(shown));
            }
            attempt.follow()
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .gzip(true)
            .tls_info(tls_info)
            .redirect(redirect);
        if let Some(path) = &settings.ca_file {
            let certs = read_ca_file(path).map_err(|message| {
                SourceError::new(Diagnostic::new(
                    &general::TLS,
                    format!("ca_file: {message}"),
                ))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| {
            SourceError::new(Diagnostic::new(
                &general::INTERNAL,
                format!("cannot set up the HTTP client: {}", error_chain(&e)),
            ))
        })?;
        Ok(Self {
            client,
            policy,
            stats: Stats::detached(),
        })
    }

    /// Counts requests, throttles and errors into the profile's counters.
    pub fn with_stats(mut self, stats: Arc<Stats>) -> Self {
        self.stats = stats;
        self
    }

    /// The underlying client, to build requests (`http.reqwest().get(url)`).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn policy(&self) -> EndpointPolicy {
        self.policy
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Sends a request and reads the whole body. `op` names the operation for the counters
    /// and logs (`"token"`, `"calendarView"`, `"FindItem"`). Transport failures become
    /// `net.Dns`, `net.Connect`, `net.Tls`, `net.Timeout` (or `proto.Malformed` when the
    /// connection broke mid-body). Any status is returned as a response: call
    /// [`HttpResponse::check`] next.
    pub async fn send(
        &self,
        op: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<HttpResponse, SourceError> {
        let counters = self.stats.op(op);
        let request = request.build().map_err(|e| {
            SourceError::new(Diagnostic::new(
                &general::INTERNAL,
                format!("cannot build the {op} request: {}", error_chain(&e)),
            ))
        })?;
        let url = request.url().clone();
        self.policy.ensure(&url)?;
        let method = request.method().clone();
        let started = Instant::now();
        counters.request();
        let response = match self.client.execute(request).await {
            Ok(response) => response,
            Err(err) => {
                counters.error();
                calpump_engine::metrics::record_request(
                    self.stats.backend(),
                    op,
                    "transport_error",
                    started.elapsed(),
                );
                let error = classify_transport(&url, &err);
                tracing::debug!(
                    op,
                    %method,
                    url = %display_url(&url),
                    code = error.code(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "request failed"
                );
                return Err(error);
            }
        };
        let status = response.status();
        let final_url = response.url().clone();
        let headers = response.headers().clone();
        let peer_certificate = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(<[u8]>::to_vec);
        let body = read_body(&final_url, response).await.inspect_err(|_| {
            counters.error();
        })?;
        tracing::debug!(
            op,
            %method,
            url = %display_url(&final_url),
            status = status.as_u16(),
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
        let response = HttpResponse {
            url: final_url,
            status,
            headers,
            body,
            peer_certificate,
        };
        calpump_engine::metrics::record_request(
            self.stats.backend(),
            op,
            status.as_str(),
            started.elapsed(),
        );
        if response.is_throttled() {
            counters.throttle();
            calpump_engine::metrics::record_throttle(self.stats.backend());
        } else if !status.is_success() {
            counters.error();
        }
        Ok(response)
    }
}

async fn read_body(url: &Url, mut response: reqwest::Response) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(SourceError::new(Diagnostic::new(
                        &general::MALFORMED,
                        format!(
                            "{}: the answer is larger than {} MiB",
                            display_url(url),
                            MAX_BODY_BYTES / (1024 * 1024)
                        ),
                    ))
                    .retryable(false));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) if err.is_timeout() => return Err(classify_transport(url, &err)),
            Err(err) => {
                return Err(SourceError::new(Diagnostic::new(
                    &general::MALFORMED,
                    format!(
                        "{}: the answer broke off after {} bytes ({})",
                        display_url(url),
                        body.len(),
                        error_chain(&err.without_url())
                    ),
                )));
            }
        }
    }
}

/// A whole response: status, headers and body.
#[derive(Clone)]
pub struct HttpResponse {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The server's (leaf) certificate, DER, when the connection was TLS and the client was
    /// made with [`HttpClient::new_with_peer_certificate`].
    pub peer_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for HttpResponse {
    /// Headers and body can hold tokens: only status, URL and size are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("url", &display_url(&self.url))
            .field("status", &self.status)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl HttpResponse {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE)?.to_str().ok()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    pub fn is_html(&self) -> bool {
        text::looks_like_html(self.content_type(), &self.body)
    }

    /// The `<title>` of an HTML body.
    pub fn html_title(&self) -> Option<String> {
        text::html_title(&self.body)
    }

    /// A short, redacted excerpt of the body for a detail.
    pub fn excerpt(&self) -> String {
        text::excerpt(self.content_type(), &self.body)
    }

    /// `Retry-After` (seconds or HTTP-date), when the server sent it.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(value, SystemTime::now())
    }

    /// The server's request id (Graph `request-id`, `client-request-id`; Exchange
    /// `X-ServerRequestId`, `request-id`; Entra `x-ms-request-id`), for details.
    pub fn request_id(&self) -> Option<&str> {
        [
            "request-id",
            "x-ms-request-id",
            "x-serverrequestid",
            "client-request-id",
        ]
        .iter()
        .find_map(|name| self.headers.get(*name)?.to_str().ok())
    }

    /// 429, or 503 with `Retry-After`.
    pub fn is_throttled(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS
            || (self.status == StatusCode::SERVICE_UNAVAILABLE
                && self.headers.contains_key(RETRY_AFTER))
    }

    /// The shared checks, in order:
    /// - 429, or 503 with `Retry-After` → `http.Throttled` (retryable, with the delay);
    /// - other 5xx → `http.ServerError` (retryable) — except a 500 whose body is XML when
    ///   [`Expect::Xml`] (a SOAP fault: the backend reads it);
    /// - an HTML page where JSON/XML was expected, any status but 401 → `http.HtmlInsteadOfApi`
    ///   with the URL, status and the page's title.
    ///
    /// Anything else (2xx, 401, 4xx with an API body) is returned for the backend to read.
    pub fn check(self, expect: Expect) -> Result<Self, SourceError> {
        if self.is_throttled() {
            return Err(self.throttled());
        }
        let html = self.is_html();
        if self.status.is_server_error() {
            let soap_fault = expect == Expect::Xml
                && self.status == StatusCode::INTERNAL_SERVER_ERROR
                && !html
                && self.text().trim_start().starts_with('<');
            if !soap_fault {
                return Err(self.server_error());
            }
        }
        if html && self.status != StatusCode::UNAUTHORIZED {
            return Err(self.html_instead_of_api());
        }
        Ok(self)
    }

    /// `http.Throttled` with the server's delay.
    pub fn throttled(&self) -> SourceError {
        let after = self.retry_after();
        let wait = after.map_or_else(
            || "no Retry-After".to_string(),
            |d| format!("Retry-After {} s", d.as_secs()),
        );
        SourceError::new(Diagnostic::new(
            &general::THROTTLED,
            format!(
                "{} answered HTTP {} ({wait})",
                display_url(&self.url),
                self.status.as_u16()
            ),
        ))
        .retryable(true)
        .with_retry_after(after)
    }

    /// `http.ServerError` naming the URL, status, request id and an excerpt.
    pub fn server_error(&self) -> SourceError {
        let mut detail = format!(
            "{} answered HTTP {}",
            display_url(&self.url),
            self.status.as_u16()
        );
        if let Some(id) = self.request_id() {
            detail.push_str(&format!(", request id {id}"));
        }
        detail.push_str(&format!(": {}", self.short_description()));
        SourceError::new(Diagnostic::new(&general::SERVER_ERROR, detail))
            .retryable(true)
            .with_retry_after(self.retry_after())
    }

    /// `http.HtmlInsteadOfApi` naming the URL, status and the page's title.
    pub fn html_instead_of_api(&self) -> SourceError {
        SourceError::new(Diagnostic::new(
            &general::HTML_INSTEAD_OF_API,
            format!(
                "{} answered HTTP {} with an HTML page: {}",
                display_url(&self.url),
                self.status.as_u16(),
                self.short_description()
            ),
        ))
    }

    /// `proto.Malformed`: the body could not be read as expected. `what` says what failed
    /// (the parser's error, with the element or JSON path).
    pub fn malformed(&self, what: impl fmt::Display) -> SourceError {
        SourceError::new(Diagnostic::new(
            &general::MALFORMED,
            format!(
                "{} (HTTP {}): {}; the answer began: {}",
                display_url(&self.url),
                self.status.as_u16(),
                text::redact(&what.to_string()),
                self.excerpt()
            ),
        ))
    }

    /// Parses a JSON body; a parse failure is `proto.Malformed` naming the JSON path.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            self.malformed(format_args!("at `{path}`: {}", e.inner()))
        })
    }

    /// "title “…”" for an HTML page, else the excerpt.
    fn short_description(&self) -> String {
        if self.is_html() {
            match self.html_title() {
                Some(title) => format!("page title “{title}”"),
                None => format!("page text “{}”", self.excerpt()),
            }
        } else {
            format!("“{}”", self.excerpt())
        }
    }
}

/// Every message of an error's source chain, joined by `: ` (duplicates dropped).
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    walk_chain(err, &mut |e| {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    });
    text::redact(&parts.join(": "))
}

/// Visits every error in the chain, including the inner error of an `io::Error` (whose
/// `source()` skips it).
fn walk_chain(err: &(dyn StdError + 'static), visit: &mut dyn FnMut(&(dyn StdError + 'static))) {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = current {
        visit(e);
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            let inner: &(dyn StdError + 'static) = inner;
            walk_chain(inner, visit);
        }
        current = e.source();
        depth += 1;
        if depth > 32 {
            break;
        }
    }
}

/// Classifies a reqwest error into `net.Dns`, `net.Connect`, `net.Tls`, `net.Timeout`,
/// `config.InsecureUrl` (a redirect that would leave TLS) or `proto.Malformed` (a body that
/// broke off), with the URL and the error chain in the detail.
pub fn classify_transport(url: &Url, err: &reqwest::Error) -> SourceError {
    let mut tls: Option<String> = None;
    let mut refused = false;
    let mut dns = false;
    let mut io_timeout = false;
    let mut insecure_redirect: Option<String> = None;
    walk_chain(err, &mut |e| {
        if let Some(rustls_err) = e.downcast_ref::<rustls::Error>() {
            tls.get_or_insert_with(|| describe_tls(rustls_err, url));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => refused = true,
                std::io::ErrorKind::TimedOut => io_timeout = true,
                _ => {}
            }
        }
        if let Some(redirect) = e.downcast_ref::<InsecureRedirect>() {
            insecure_redirect = Some(redirect.0.clone());
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
            || text.contains("no address associated")
        {
            dns = true;
        }
    });
    let chain = error_chain(err).replace(&format!(" for url ({url})"), "");
    let shown = display_url(url);
    let (info, detail) = if let Some(target) = insecure_redirect {
        return SourceError::new(Diagnostic::new(
            &general::INSECURE_URL,
            format!("{shown} redirected to {target}; calpump does not follow it"),
        ));
    } else if let Some(what) = tls {
        (&general::TLS, format!("{shown}: {what} ({chain})"))
    } else if err.is_timeout() || io_timeout {
        (
            &general::TIMEOUT,
            format!("{shown}: no answer in time ({chain})"),
        )
    } else if dns {
        (
            &general::DNS,
            format!(
                "{}: the host name does not resolve ({chain})",
                url.host_str().unwrap_or(&shown)
            ),
        )
    } else if refused {
        (
            &general::CONNECT,
            format!("{shown}: connection refused ({chain})"),
        )
    } else if err.is_connect() {
        (&general::CONNECT, format!("{shown}: {chain}"))
    } else if err.is_body() || err.is_decode() {
        (
            &general::MALFORMED,
            format!("{shown}: the answer could not be read ({chain})"),
        )
    } else {
        (&general::CONNECT, format!("{shown}: {chain}"))
    };
    SourceError::new(Diagnostic::new(info, detail))
}

fn describe_tls(err: &rustls::Error, url: &Url) -> String {
    use rustls::CertificateError as C;
    let host = url.host_str().unwrap_or("the server");
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => format!(
                "the certificate of {host} is issued by a CA this machine does not trust \
                 (self-signed or an internal CA)"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                format!("the certificate of {host} has expired")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => format!(
                "the certificate of {host} is not valid yet (or this machine's clock is wrong)"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the certificate presented is not issued for {host}")
            }
            C::Revoked => format!("the certificate of {host} is revoked"),
            C::BadSignature | C::BadEncoding => {
                format!("the certificate of {host} is malformed or badly signed")
            }
            other => format!("the certificate of {host} was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("{host} ended the TLS handshake with the alert {alert:?}")
        }
        other => format!("TLS with {host} failed: {other}"),
    }
}
