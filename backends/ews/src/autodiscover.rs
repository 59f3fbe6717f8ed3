//! Finding the EWS URL from an e-mail address: SOAP Autodiscover (`GetUserSettings` for
//! `ExternalEwsUrl`/`InternalEwsUrl`), then POX Autodiscover, over the usual candidate URLs,
//! with `RedirectAddress`/`RedirectUrl` (SOAP), `redirectAddr`/`redirectUrl` (POX) and the
//! unauthenticated HTTP redirect to HTTPS; loop-safe with a hop limit.
//!
//! References (office-developer-exchange-docs): `exchange-web-services/autodiscover-for-exchange.md`,
//! `how-to-get-user-settings-from-exchange-by-using-autodiscover.md`,
//! `how-to-generate-a-list-of-autodiscover-endpoints.md`,
//! `web-service-reference/pox-autodiscover-response-for-exchange.md`, `redirectaddr-pox.md`,
//! `redirecturl-pox.md`, `redirecttarget-soap.md`.

use std::collections::{HashSet, VecDeque};

use calpump_backend_common::http::{EndpointPolicy, display_url};
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::ews;
use calpump_engine::source::SourceError;
use reqwest::Url;

use crate::transport::{Post, Transport};
use crate::xml::{
    self, NS_AUTODISCOVER, NS_POX_OUTLOOK, NS_POX_REQUEST, NS_POX_RESPONSE, NS_SOAP, NS_WSA,
    NS_XSI, Node, Writer,
};

/// Redirects (address or URL) followed before giving up.
pub const MAX_HOPS: usize = 10;

const GET_USER_SETTINGS_ACTION: &str =
    "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings";

/// What Autodiscover found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub url: Url,
    /// How it was found (`SOAP GetUserSettings at https://…`).
    pub via: String,
    /// Every endpoint tried and its answer, in order.
    pub tried: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Candidate {
    Soap(String),
    Pox(String),
    /// Unauthenticated GET expecting a redirect to the HTTPS POX endpoint.
    RedirectGet(String),
}

impl Candidate {
    fn url(&self) -> &str {
        match self {
            Candidate::Soap(u) | Candidate::Pox(u) | Candidate::RedirectGet(u) => u,
        }
    }
}

fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d.trim())
}

/// The candidates for an address, in the order Microsoft recommends.
fn candidates(address: &str, explicit: Option<&Url>) -> Vec<Candidate> {
    if let Some(url) = explicit {
        let text = url.as_str();
        let lower = url.path().to_ascii_lowercase();
        if lower.ends_with(".svc") {
            let pox = replace_suffix(text, ".svc", ".xml");
            return vec![Candidate::Soap(text.to_string()), Candidate::Pox(pox)];
        }
        if lower.ends_with(".xml") {
            let soap = replace_suffix(text, ".xml", ".svc");
            return vec![Candidate::Soap(soap), Candidate::Pox(text.to_string())];
        }
        let base = text.trim_end_matches('/');
        return vec![
            Candidate::Soap(format!("{base}/autodiscover/autodiscover.svc")),
            Candidate::Pox(format!("{base}/autodiscover/autodiscover.xml")),
        ];
    }
    let Some(domain) = domain_of(address) else {
        return Vec::new();
    };
    vec![
        Candidate::Soap(format!("https://{domain}/autodiscover/autodiscover.svc")),
        Candidate::Soap(format!(
            "https://autodiscover.{domain}/autodiscover/autodiscover.svc"
        )),
        Candidate::Pox(format!("https://{domain}/autodiscover/autodiscover.xml")),
        Candidate::Pox(format!(
            "https://autodiscover.{domain}/autodiscover/autodiscover.xml"
        )),
        Candidate::RedirectGet(format!(
            "http://autodiscover.{domain}/autodiscover/autodiscover.xml"
        )),
    ]
}

fn replace_suffix(text: &str, from: &str, to: &str) -> String {
    let lower = text.to_ascii_lowercase();
    match lower.rfind(from) {
        Some(i) => format!("{}{to}{}", &text[..i], &text[i + from.len()..]),
        None => text.to_string(),
    }
}

/// The SOAP `GetUserSettings` request for the EWS URLs.
pub fn get_user_settings_request(url: &str, address: &str) -> String {
    let mut w = Writer::new();
    w.open(
        "soap:Envelope",
        &[
            ("xmlns:soap", NS_SOAP),
            ("xmlns:a", NS_AUTODISCOVER),
            ("xmlns:wsa", NS_WSA),
        ],
    )
    .open("soap:Header", &[])
    .text("a:RequestedServerVersion", "Exchange2013")
    .text("wsa:Action", GET_USER_SETTINGS_ACTION)
    .text("wsa:To", url)
    .close("soap:Header")
    .open("soap:Body", &[])
    .open("a:GetUserSettingsRequestMessage", &[])
    .open("a:Request", &[])
    .open("a:Users", &[])
    .open("a:User", &[])
    .text("a:Mailbox", address)
    .close("a:User")
    .close("a:Users")
    .open("a:RequestedSettings", &[])
    .text("a:Setting", "ExternalEwsUrl")
    .text("a:Setting", "InternalEwsUrl")
    .close("a:RequestedSettings")
    .close("a:Request")
    .close("a:GetUserSettingsRequestMessage")
    .close("soap:Body")
    .close("soap:Envelope");
    w.finish()
}

/// The POX request.
pub fn pox_request(address: &str) -> String {
    let mut w = Writer::new();
    w.open("Autodiscover", &[("xmlns", NS_POX_REQUEST)])
        .open("Request", &[])
        .text("EMailAddress", address)
        .text("AcceptableResponseSchema", NS_POX_OUTLOOK)
        .close("Request")
        .close("Autodiscover");
    w.finish()
}

/// What one Autodiscover answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    EwsUrl(String),
    RedirectAddress(String),
    RedirectUrl(String),
    Error(String),
    /// An authenticated request refused with `403 Forbidden` and no Autodiscover answer — what
    /// Exchange Online answers when EWS is switched off for the tenant, the app or the mailbox.
    Forbidden(String),
    /// No HTTP answer at all (DNS, connection, TLS).
    Unreachable(String),
}

/// Reads a SOAP `GetUserSettingsResponseMessage`.
pub fn read_soap_answer(root: &xml::Element) -> Answer {
    let env = Node::root(root);
    if !env.is(NS_SOAP, "Envelope") {
        return Answer::Error(format!("not a SOAP envelope: <{}>", root.qualified()));
    }
    let Some(body) = env.child(NS_SOAP, "Body") else {
        return Answer::Error("the SOAP envelope has no Body".to_string());
    };
    if let Some(fault) = body.child(NS_SOAP, "Fault") {
        let text = fault
            .el
            .children
            .iter()
            .find(|c| c.name == "faultstring")
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default();
        return Answer::Error(format!("SOAP fault: {text}"));
    }
    let Some(response) = body
        .child(NS_AUTODISCOVER, "GetUserSettingsResponseMessage")
        .and_then(|m| m.child(NS_AUTODISCOVER, "Response"))
    else {
        return Answer::Error("no GetUserSettingsResponseMessage/Response".to_string());
    };
    let code = response
        .child_text(NS_AUTODISCOVER, "ErrorCode")
        .unwrap_or("NoError");
    if code != "NoError" {
        let message = response
            .child_text(NS_AUTODISCOVER, "ErrorMessage")
            .unwrap_or_default();
        return Answer::Error(format!("{code}: {message}"));
    }
    let Some(user) = response
        .child(NS_AUTODISCOVER, "UserResponses")
        .and_then(|u| u.child(NS_AUTODISCOVER, "UserResponse"))
    else {
        return Answer::Error("no UserResponse".to_string());
    };
    let user_code = user
        .child_text(NS_AUTODISCOVER, "ErrorCode")
        .unwrap_or("NoError");
    let target = user
        .child(NS_AUTODISCOVER, "RedirectTarget")
        .filter(|t| t.el.attr_ns(NS_XSI, "nil") != Some("true"))
        .map(|t| t.text().to_string())
        .filter(|t| !t.is_empty());
    match (user_code, target) {
        ("RedirectAddress", Some(t)) => return Answer::RedirectAddress(t),
        ("RedirectUrl", Some(t)) => return Answer::RedirectUrl(t),
        ("NoError", _) => {}
        (other, _) => {
            let message = user
                .child_text(NS_AUTODISCOVER, "ErrorMessage")
                .unwrap_or_default();
            return Answer::Error(format!("{other}: {message}"));
        }
    }
    let settings: Vec<(String, String)> = user
        .child(NS_AUTODISCOVER, "UserSettings")
        .map(|s| {
            s.all(NS_AUTODISCOVER, "UserSetting")
                .iter()
                .filter_map(|u| {
                    Some((
                        u.child_text(NS_AUTODISCOVER, "Name")?.to_string(),
                        u.child_text(NS_AUTODISCOVER, "Value")?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for wanted in ["ExternalEwsUrl", "InternalEwsUrl"] {
        if let Some((_, value)) = settings.iter().find(|(n, _)| n == wanted) {
            return Answer::EwsUrl(value.clone());
        }
    }
    Answer::Error("the answer has neither ExternalEwsUrl nor InternalEwsUrl".to_string())
}

/// Reads a POX Autodiscover answer.
pub fn read_pox_answer(root: &xml::Element) -> Answer {
    let top = Node::root(root);
    if !top.is(NS_POX_RESPONSE, "Autodiscover") {
        return Answer::Error(format!(
            "not a POX Autodiscover answer: <{}>",
            root.qualified()
        ));
    }
    // The inner Response is in the Outlook schema; an error answer keeps the outer namespace.
    let response = top
        .child(NS_POX_OUTLOOK, "Response")
        .or_else(|| top.child(NS_POX_RESPONSE, "Response"));
    let Some(response) = response else {
        return Answer::Error("no Response element".to_string());
    };
    if let Some(error) = response
        .child(NS_POX_OUTLOOK, "Error")
        .or_else(|| response.child(NS_POX_RESPONSE, "Error"))
    {
        let find = |name: &str| {
            error
                .el
                .children
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.text.trim().to_string())
                .unwrap_or_default()
        };
        return Answer::Error(format!("error {}: {}", find("ErrorCode"), find("Message")));
    }
    let Some(account) = response.child(NS_POX_OUTLOOK, "Account") else {
        return Answer::Error("no Account element".to_string());
    };
    match account.child_text(NS_POX_OUTLOOK, "Action") {
        Some("redirectAddr") => {
            return match account.child_text(NS_POX_OUTLOOK, "RedirectAddr") {
                Some(a) => Answer::RedirectAddress(a.to_string()),
                None => Answer::Error("redirectAddr without RedirectAddr".to_string()),
            };
        }
        Some("redirectUrl") => {
            return match account.child_text(NS_POX_OUTLOOK, "RedirectUrl") {
                Some(u) => Answer::RedirectUrl(u.to_string()),
                None => Answer::Error("redirectUrl without RedirectUrl".to_string()),
            };
        }
        _ => {}
    }
    let protocols = account.all(NS_POX_OUTLOOK, "Protocol");
    for wanted in ["EXCH", "EXPR", "WEB"] {
        for p in &protocols {
            if p.child_text(NS_POX_OUTLOOK, "Type") == Some(wanted)
                && let Some(url) = p
                    .child_text(NS_POX_OUTLOOK, "EwsUrl")
                    .or_else(|| p.child_text(NS_POX_OUTLOOK, "ASUrl"))
            {
                return Answer::EwsUrl(url.to_string());
            }
        }
    }
    Answer::Error("no Protocol with an EwsUrl".to_string())
}

/// Runs Autodiscover for `address`.
pub async fn discover(
    transport: &Transport,
    policy: &EndpointPolicy,
    address: &str,
    explicit: Option<&Url>,
) -> Result<Discovered, SourceError> {
    let mut address = address.trim().to_string();
    let mut queue: VecDeque<Candidate> = candidates(&address, explicit).into();
    let mut seen: HashSet<(Candidate, String)> = HashSet::new();
    let mut tried: Vec<String> = Vec::new();
    let mut hops = 0usize;
    // Endpoints (SOAP/POX, authenticated) that refused with 403, and those that answered
    // anything else that is not a result or a redirect.
    let mut forbidden = 0usize;
    let mut other_answers = 0usize;
    let fail = |tried: &[String], why: &str| {
        SourceError::new(Diagnostic::new(
            &ews::AUTODISCOVER_FAILED,
            format!("{why}; tried: {}", tried.join(" | ")),
        ))
    };
    while let Some(candidate) = queue.pop_front() {
        if !seen.insert((candidate.clone(), address.clone())) {
            tried.push(format!(
                "{} (skipped: already tried, a redirect loop)",
                candidate.url()
            ));
            continue;
        }
        let Ok(url) = Url::parse(candidate.url()) else {
            tried.push(format!("{}: not a URL", candidate.url()));
            continue;
        };
        let answer = match &candidate {
            Candidate::Soap(_) => {
                let body = get_user_settings_request(url.as_str(), &address);
                post_and_read(
                    transport,
                    &url,
                    body,
                    Some(GET_USER_SETTINGS_ACTION),
                    read_soap_answer,
                )
                .await
            }
            Candidate::Pox(_) => {
                post_and_read(
                    transport,
                    &url,
                    pox_request(&address),
                    None,
                    read_pox_answer,
                )
                .await
            }
            Candidate::RedirectGet(_) => redirect_get(&url, policy).await,
        };
        let kind = match &candidate {
            Candidate::Soap(_) => "SOAP",
            Candidate::Pox(_) => "POX",
            Candidate::RedirectGet(_) => "HTTP redirect",
        };
        let shown = display_url(&url);
        match answer {
            Answer::EwsUrl(found) => {
                let parsed = Url::parse(&found).ok().filter(|u| policy.ensure(u).is_ok());
                match parsed {
                    Some(ews_url) => {
                        tried.push(format!("{kind} {shown}: EWS URL {found}"));
                        tracing::info!(address = %address, url = %ews_url, via = %shown, "Autodiscover found the EWS URL");
                        return Ok(Discovered {
                            url: ews_url,
                            via: format!("{kind} Autodiscover at {shown}"),
                            tried,
                        });
                    }
                    None => tried.push(format!(
                        "{kind} {shown}: EWS URL {found} refused (not https)"
                    )),
                }
            }
            Answer::RedirectAddress(to) => {
                hops += 1;
                tried.push(format!("{kind} {shown}: redirect to address {to}"));
                if hops > MAX_HOPS {
                    return Err(fail(&tried, &format!("more than {MAX_HOPS} redirects")));
                }
                address = to.trim().to_string();
                queue = candidates(&address, explicit).into();
            }
            Answer::RedirectUrl(to) => {
                hops += 1;
                tried.push(format!("{kind} {shown}: redirect to {to}"));
                if hops > MAX_HOPS {
                    return Err(fail(&tried, &format!("more than {MAX_HOPS} redirects")));
                }
                let next = match candidate {
                    Candidate::Soap(_) => Candidate::Soap(to),
                    _ => Candidate::Pox(to),
                };
                queue.push_front(next);
            }
            Answer::Error(why) => {
                if !matches!(candidate, Candidate::RedirectGet(_)) {
                    other_answers += 1;
                }
                tried.push(format!("{kind} {shown}: {why}"));
            }
            Answer::Forbidden(why) => {
                forbidden += 1;
                tried.push(format!("{kind} {shown}: {why}"));
            }
            Answer::Unreachable(why) => tried.push(format!("{kind} {shown}: {why}")),
        }
    }
    if forbidden > 0 && other_answers == 0 {
        // Every Autodiscover endpoint that answered refused the authenticated request with a
        // bare 403: EWS (and Autodiscover with it) is switched off, not misconfigured.
        return Err(SourceError::new(Diagnostic::new(
            &ews::EWS_DISABLED,
            format!(
                "Autodiscover for {address}: every endpoint that answered refused with HTTP 403 Forbidden and no Autodiscover answer; tried: {}",
                tried.join(" | ")
            ),
        )));
    }
    Err(fail(
        &tried,
        &format!("no endpoint answered with an EWS URL for {address}"),
    ))
}

async fn post_and_read(
    transport: &Transport,
    url: &Url,
    body: String,
    soap_action: Option<&str>,
    read: fn(&xml::Element) -> Answer,
) -> Answer {
    let response = match transport
        .post(Post {
            url,
            op: "Autodiscover",
            body,
            anchor: None,
            soap_action,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let text = format!("[{}] {}", e.code(), e.diagnostic.detail());
            return if e.code().starts_with("net.") {
                Answer::Unreachable(text)
            } else {
                Answer::Error(text)
            };
        }
    };
    if response.status == reqwest::StatusCode::FORBIDDEN && !response.is_html() {
        let mut why = "HTTP 403 Forbidden without an Autodiscover answer".to_string();
        if let Some(id) = response.request_id() {
            why.push_str(&format!(", request id {id}"));
        }
        return Answer::Forbidden(why);
    }
    if response.is_html() {
        return Answer::Error(format!(
            "HTTP {} with an HTML page{}",
            response.status.as_u16(),
            response
                .html_title()
                .map(|t| format!(" “{t}”"))
                .unwrap_or_default()
        ));
    }
    if !response.status.is_success() {
        return Answer::Error(format!("HTTP {}", response.status.as_u16()));
    }
    match xml::parse(&response.body) {
        Ok(root) => read(&root),
        Err(e) => Answer::Error(format!("unreadable answer: {e}")),
    }
}

/// The unauthenticated GET of the HTTP redirect method: no credentials are sent, the answer's
/// `Location` must be `https://` (or loopback).
async fn redirect_get(url: &Url, policy: &EndpointPolicy) -> Answer {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .user_agent(calpump_backend_common::http::USER_AGENT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Answer::Error(format!("cannot build a client: {e}")),
    };
    let response = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            return Answer::Error(calpump_backend_common::http::error_chain(&e.without_url()));
        }
    };
    if !response.status().is_redirection() {
        return Answer::Error(format!("HTTP {} (no redirect)", response.status().as_u16()));
    }
    let Some(location) = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Answer::Error("a redirect without Location".to_string());
    };
    match url.join(location) {
        Ok(target) if target.scheme() == "https" || target_is_loopback(&target) => {
            let _ = policy;
            Answer::RedirectUrl(target.to_string())
        }
        Ok(target) => Answer::Error(format!("redirect to {target} refused: not https")),
        Err(_) => Answer::Error(format!("redirect to `{location}`: not a URL")),
    }
}

fn target_is_loopback(url: &Url) -> bool {
    calpump_backend_common::http::is_loopback(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_order() {
        let c = candidates("svc@contoso.com", None);
        assert_eq!(
            c[0],
            Candidate::Soap("https://contoso.com/autodiscover/autodiscover.svc".into())
        );
        assert_eq!(
            c[1],
            Candidate::Soap(
                "https://autodiscover.contoso.com/autodiscover/autodiscover.svc".into()
            )
        );
        assert!(matches!(c[4], Candidate::RedirectGet(_)));
        let explicit = Url::parse("http://127.0.0.1:9/autodiscover/autodiscover.svc").expect("url");
        let c = candidates("svc@contoso.com", Some(&explicit));
        assert_eq!(
            c[1],
            Candidate::Pox("http://127.0.0.1:9/autodiscover/autodiscover.xml".into())
        );
        let base = Url::parse("http://127.0.0.1:9").expect("url");
        assert_eq!(
            candidates("a@b.c", Some(&base))[0],
            Candidate::Soap("http://127.0.0.1:9/autodiscover/autodiscover.svc".into())
        );
    }

    #[test]
    fn requests_are_well_formed() {
        let soap =
            get_user_settings_request("https://x/autodiscover/autodiscover.svc", "a&b@c.com");
        let root = xml::parse(soap.as_bytes()).expect("soap");
        let mailbox = Node::root(&root)
            .req(NS_SOAP, "Body")
            .and_then(|b| b.req(NS_AUTODISCOVER, "GetUserSettingsRequestMessage"))
            .and_then(|m| m.req(NS_AUTODISCOVER, "Request"))
            .and_then(|r| r.req(NS_AUTODISCOVER, "Users"))
            .and_then(|u| u.req(NS_AUTODISCOVER, "User"))
            .and_then(|u| u.req_text(NS_AUTODISCOVER, "Mailbox"))
            .expect("mailbox");
        assert_eq!(mailbox, "a&b@c.com");
        let pox = pox_request("svc@contoso.com");
        let root = xml::parse(pox.as_bytes()).expect("pox");
        assert!(Node::root(&root).is(NS_POX_REQUEST, "Autodiscover"));
    }
}
