//! SOAP 1.1 envelopes for EWS: the request header (`RequestServerVersion`,
//! `ExchangeImpersonation`), the response envelope, SOAP faults, and the per-message
//! `ResponseClass`/`ResponseCode` of an EWS answer.
//!
//! References (office-developer-exchange-docs): `web-service-reference/requestserverversion.md`,
//! `exchangeimpersonation.md`, `responsecode.md`, `responseclass` on every `*ResponseMessage`,
//! `exchange-web-services/ews-throttling-in-exchange.md` (`ErrorServerBusy` with
//! `MessageXml/Value[@Name="BackOffMilliseconds"]`, as a fault or inside a 200 body).

use std::time::Duration;

use crate::xml::{self, Element, NS_ERRORS, NS_MESSAGES, NS_SOAP, NS_TYPES, Node, Writer, XmlError};

/// The default `RequestServerVersion`: every operation and property calpump uses exists from
/// Exchange 2013 SP1 on (`JoinOnlineMeetingUrl` needs 2013), and Exchange 2016/2019/SE and
/// Exchange Online accept it.
pub const DEFAULT_SERVER_VERSION: &str = "Exchange2013_SP1";

/// The values `RequestServerVersion/@Version` may take (ExchangeVersionType).
pub const SERVER_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
    "V2017_10_09",
    "V2018_01_08",
];

/// Who a request acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acting<'a> {
    /// The authenticated account itself (and delegate access through `<t:Mailbox>`).
    Self_,
    /// `ExchangeImpersonation` of this SMTP address (+ `X-AnchorMailbox`).
    Impersonate(&'a str),
}

/// Writes a whole request: envelope, header, and the body `body` writes.
pub fn envelope(server_version: &str, acting: Acting<'_>, body: impl FnOnce(&mut Writer)) -> String {
    let mut w = Writer::new();
    w.open(
        "soap:Envelope",
        &[
            ("xmlns:soap", NS_SOAP),
            ("xmlns:m", NS_MESSAGES),
            ("xmlns:t", NS_TYPES),
        ],
    );
    w.open("soap:Header", &[]);
    w.empty("t:RequestServerVersion", &[("Version", server_version)]);
    if let Acting::Impersonate(address) = acting {
        w.open("t:ExchangeImpersonation", &[])
            .open("t:ConnectingSID", &[])
            .text("t:PrimarySmtpAddress", address)
            .close("t:ConnectingSID")
            .close("t:ExchangeImpersonation");
    }
    w.close("soap:Header");
    w.open("soap:Body", &[]);
    body(&mut w);
    w.close("soap:Body").close("soap:Envelope");
    w.finish()
}

/// `ServerVersionInfo` of a response header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerVersionInfo {
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub major_build: Option<u32>,
    pub minor_build: Option<u32>,
    /// `V2_23`, `V2018_01_08`, `Exchange2013_SP1` …
    pub version: Option<String>,
}

impl ServerVersionInfo {
    /// `15.1.2507.57 (V2017_07_11)`.
    pub fn describe(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
        let mut out = format!(
            "{}.{}.{}.{}",
            num(self.major),
            num(self.minor),
            num(self.major_build),
            num(self.minor_build)
        );
        if let Some(v) = &self.version {
            out.push_str(&format!(" ({v})"));
        }
        out
    }
}

/// A SOAP fault (`s:Fault`), with EWS's detail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SoapFault {
    /// `faultcode`'s local part (`ErrorServerBusy`, `Client`, `Server`).
    pub fault_code: String,
    pub fault_string: String,
    /// `detail/e:ResponseCode`, or the fault code when it is an EWS code.
    pub response_code: Option<String>,
    /// `detail/e:Message`.
    pub message: Option<String>,
    /// `MessageXml` values by name (`BackOffMilliseconds`, `Policy`, …).
    pub values: Vec<(String, String)>,
}

impl SoapFault {
    /// The EWS response code this fault stands for (detail first, else the fault code).
    pub fn code(&self) -> &str {
        self.response_code.as_deref().unwrap_or(&self.fault_code)
    }

    pub fn back_off(&self) -> Option<Duration> {
        back_off(&self.values)
    }

    pub fn text(&self) -> &str {
        self.message.as_deref().unwrap_or(&self.fault_string)
    }
}

/// `BackOffMilliseconds` from `MessageXml` values.
pub fn back_off(values: &[(String, String)]) -> Option<Duration> {
    values
        .iter()
        .find(|(name, _)| name == "BackOffMilliseconds")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// What a response envelope holds.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The body's operation response element (`FindItemResponse` …).
    Body(Node<'a>),
    Fault(SoapFault),
}

/// A parsed response envelope.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub server_version: Option<ServerVersionInfo>,
    pub outcome: Outcome<'a>,
}

/// Reads the envelope of a parsed document. Not a SOAP envelope → an error naming what came.
pub fn read_envelope(root: &Element) -> Result<Envelope<'_>, XmlError> {
    let node = Node::root(root);
    if !node.is(NS_SOAP, "Envelope") {
        return Err(node.invalid(format!(
            "expected a SOAP 1.1 Envelope ({{{NS_SOAP}}}Envelope), found <{}>",
            root.qualified()
        )));
    }
    let server_version = node
        .child(NS_SOAP, "Header")
        .and_then(|h| h.child(NS_TYPES, "ServerVersionInfo"))
        .map(|info| ServerVersionInfo {
            major: info.attr("MajorVersion").and_then(|v| v.parse().ok()),
            minor: info.attr("MinorVersion").and_then(|v| v.parse().ok()),
            major_build: info.attr("MajorBuildNumber").and_then(|v| v.parse().ok()),
            minor_build: info.attr("MinorBuildNumber").and_then(|v| v.parse().ok()),
            version: info.attr("Version").map(str::to_string),
        });
    let body = node.req(NS_SOAP, "Body")?;
    if let Some(fault) = body.child(NS_SOAP, "Fault") {
        return Ok(Envelope {
            server_version,
            outcome: Outcome::Fault(read_fault(&fault)),
        });
    }
    let Some(response) = body.elements().into_iter().next() else {
        return Err(body.invalid("the SOAP body is empty"));
    };
    Ok(Envelope {
        server_version,
        outcome: Outcome::Body(response),
    })
}

/// `faultcode`, `faultstring` are unqualified (SOAP 1.1); EWS puts `ResponseCode` and `Message`
/// into the errors namespace and `MessageXml` into types.
fn read_fault(fault: &Node<'_>) -> SoapFault {
    let text_of = |name: &str| {
        fault
            .el
            .children
            .iter()
            .find(|c| c.name == name && (c.ns.is_none() || c.ns.as_deref() == Some(NS_SOAP)))
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default()
    };
    let code = text_of("faultcode");
    let fault_code = code.rsplit(':').next().unwrap_or(&code).to_string();
    let fault_string = text_of("faultstring");
    let detail = fault
        .el
        .children
        .iter()
        .find(|c| c.name == "detail" && (c.ns.is_none() || c.ns.as_deref() == Some(NS_SOAP)));
    let mut response_code = None;
    let mut message = None;
    let mut values = Vec::new();
    if let Some(detail) = detail {
        let detail = Node::root(detail);
        response_code = detail.child_text(NS_ERRORS, "ResponseCode").map(str::to_string);
        message = detail.child_text(NS_ERRORS, "Message").map(str::to_string);
        if let Some(mx) = detail.child(NS_TYPES, "MessageXml") {
            values = message_xml_values(&mx);
        }
    }
    if response_code.is_none() && fault_code.starts_with("Error") {
        response_code = Some(fault_code.clone());
    }
    SoapFault {
        fault_code,
        fault_string,
        response_code,
        message,
        values,
    }
}

fn message_xml_values(mx: &Node<'_>) -> Vec<(String, String)> {
    mx.all(NS_TYPES, "Value")
        .into_iter()
        .map(|v| (v.attr("Name").unwrap_or_default().to_string(), v.text().to_string()))
        .collect()
}

/// `ResponseClass` of one response message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    Success,
    Warning,
    Error,
}

/// One `*ResponseMessage`: its class, code, text, and the element for the payload.
#[derive(Debug, Clone)]
pub struct ResponseMessage<'a> {
    pub class: ResponseClass,
    /// `NoError`, `ErrorServerBusy`, …
    pub code: String,
    pub text: Option<String>,
    pub values: Vec<(String, String)>,
    pub node: Node<'a>,
}

impl ResponseMessage<'_> {
    pub fn is_error(&self) -> bool {
        self.class == ResponseClass::Error
    }

    pub fn back_off(&self) -> Option<Duration> {
        back_off(&self.values)
    }

    /// `ResponseCode: MessageText`.
    pub fn describe(&self) -> String {
        match &self.text {
            Some(text) => format!("{}: {text}", self.code),
            None => self.code.clone(),
        }
    }
}

/// The response messages of an operation response (`{m}ResponseMessages/*`). Checks that the
/// body is `{m}<expected>`.
pub fn response_messages<'a>(
    body: &Node<'a>,
    expected: &str,
) -> Result<Vec<ResponseMessage<'a>>, XmlError> {
    if !body.is(NS_MESSAGES, expected) {
        return Err(body.invalid(format!(
            "expected {{{NS_MESSAGES}}}{expected}, found <{}>",
            body.el.qualified()
        )));
    }
    let messages = body.req(NS_MESSAGES, "ResponseMessages")?;
    let mut out = Vec::new();
    for node in messages.elements() {
        if node.el.ns.as_deref() != Some(NS_MESSAGES) {
            continue;
        }
        let class = match node.attr("ResponseClass") {
            Some("Success") => ResponseClass::Success,
            Some("Warning") => ResponseClass::Warning,
            Some("Error") => ResponseClass::Error,
            Some(other) => return Err(node.invalid(format!("unknown ResponseClass `{other}`"))),
            None => {
                return Err(XmlError::Missing {
                    path: format!("{}/@ResponseClass", node.path()),
                });
            }
        };
        let code = node
            .child_text(NS_MESSAGES, "ResponseCode")
            .map(str::to_string)
            .unwrap_or_else(|| {
                if class == ResponseClass::Success {
                    "NoError".to_string()
                } else {
                    "ErrorUnknown".to_string()
                }
            });
        let values = node
            .child(NS_MESSAGES, "MessageXml")
            .map(|mx| message_xml_values(&mx))
            .unwrap_or_default();
        out.push(ResponseMessage {
            class,
            code,
            text: node.child_text(NS_MESSAGES, "MessageText").map(str::to_string),
            values,
            node,
        });
    }
    Ok(out)
}

/// The single message of an operation whose response element carries `ResponseClass` itself
/// (`GetRoomListsResponse`, `GetRoomsResponse`).
pub fn single_message<'a>(body: &Node<'a>, expected: &str) -> Result<ResponseMessage<'a>, XmlError> {
    if !body.is(NS_MESSAGES, expected) {
        return Err(body.invalid(format!(
            "expected {{{NS_MESSAGES}}}{expected}, found <{}>",
            body.el.qualified()
        )));
    }
    let class = match body.attr("ResponseClass") {
        Some("Warning") => ResponseClass::Warning,
        Some("Error") => ResponseClass::Error,
        _ => ResponseClass::Success,
    };
    let code = body
        .child_text(NS_MESSAGES, "ResponseCode")
        .map_or_else(|| "NoError".to_string(), str::to_string);
    let values = body
        .child(NS_MESSAGES, "MessageXml")
        .map(|mx| message_xml_values(&mx))
        .unwrap_or_default();
    Ok(ResponseMessage {
        class,
        code,
        text: body.child_text(NS_MESSAGES, "MessageText").map(str::to_string),
        values,
        node: body.clone(),
    })
}

/// Parses a whole answer: the tree (the caller keeps it) is returned by [`xml::parse`].
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    xml::parse(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_version_and_impersonation() {
        let body = envelope("Exchange2013_SP1", Acting::Impersonate("room@contoso.com"), |w| {
            w.empty("m:GetRoomLists", &[]);
        });
        let root = xml::parse(body.as_bytes()).expect("well-formed");
        let env = Node::root(&root);
        let header = env.req(NS_SOAP, "Header").expect("header");
        assert_eq!(
            header
                .req(NS_TYPES, "RequestServerVersion")
                .expect("rsv")
                .attr("Version"),
            Some("Exchange2013_SP1")
        );
        let smtp = header
            .req(NS_TYPES, "ExchangeImpersonation")
            .and_then(|e| e.req(NS_TYPES, "ConnectingSID"))
            .and_then(|e| e.req_text(NS_TYPES, "PrimarySmtpAddress"))
            .expect("impersonation");
        assert_eq!(smtp, "room@contoso.com");
        let plain = envelope("Exchange2013_SP1", Acting::Self_, |_| {});
        assert!(!plain.contains("ExchangeImpersonation"));
    }
}
