//! SOAP 1.1 envelopes: request headers (`RequestServerVersion`, `ExchangeImpersonation`,
//! `TimeZoneContext`), the response envelope with `ServerVersionInfo`, response messages with
//! `ResponseClass`/`ResponseCode`, and SOAP faults.
//!
//! Docs (MicrosoftDocs/office-developer-exchange-docs, `docs/web-service-reference/`):
//! `requestserverversion.md`, `serverversioninfo.md`, `exchangeimpersonation.md`,
//! `connectingsid.md`, `responsecode.md`, `responsemessage.md`; the fault shape follows the
//! samples in `addimgroup-operation.md` (`ErrorSchemaValidation` with `MessageXml`
//! `LineNumber`/`LinePosition`/`Violation`) and the real `ErrorServerBusy` /
//! `ErrorExceededConnectionCount` faults quoted in thunderbird/ews-rs `ews/src/types/soap.rs`.

use super::xml::{self, Element, MSG, SOAP, TYP, esc};

/// The build the simulator reports: Exchange Server 2019 CU14 (15.2.1544.4). Exchange 2013 and
/// later report a `V…` schema version in `ServerVersionInfo Version`.
pub const MAJOR: u32 = 15;
pub const MINOR: u32 = 2;
pub const MAJOR_BUILD: u32 = 1544;
pub const MINOR_BUILD: u32 = 4;
pub const SCHEMA_VERSION: &str = "V2017_07_11";

/// `RequestServerVersion Version` values Exchange 2019 accepts, oldest first.
pub const VERSIONS: &[&str] = &[
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

/// The requested schema version (index into [`VERSIONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub usize);

impl ApiVersion {
    pub fn name(self) -> &'static str {
        VERSIONS.get(self.0).copied().unwrap_or("Exchange2007_SP1")
    }
    /// Exchange 2007 schemas: time zones as `MeetingTimeZone`, no `StartTimeZone`.
    pub fn is_2007(self) -> bool {
        self.0 <= 1
    }
    /// Exchange 2013 and later (e.g. `StartTimeZoneId`, `JoinOnlineMeetingUrl`).
    pub fn at_least_2013(self) -> bool {
        self.0 >= 5
    }
}

/// `ExchangeImpersonation/ConnectingSID` (`connectingsid.md`): one of these identifies the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectingSid {
    PrimarySmtpAddress(String),
    SmtpAddress(String),
    PrincipalName(String),
    Sid(String),
}

impl ConnectingSid {
    pub fn value(&self) -> &str {
        match self {
            ConnectingSid::PrimarySmtpAddress(s)
            | ConnectingSid::SmtpAddress(s)
            | ConnectingSid::PrincipalName(s)
            | ConnectingSid::Sid(s) => s,
        }
    }
}

/// A parsed request envelope.
#[derive(Debug, Clone)]
pub struct Request {
    pub version: ApiVersion,
    pub impersonation: Option<ConnectingSid>,
    /// `TimeZoneContext/TimeZoneDefinition Id`, if sent.
    pub time_zone_context: Option<String>,
    /// The operation element (first child of `Body`).
    pub op: Element,
}

/// A SOAP fault to answer with (HTTP 500).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub code: &'static str,
    pub message: String,
    /// Inner XML of `t:MessageXml`, already escaped.
    pub message_xml: Option<String>,
}

impl Fault {
    pub fn new(code: &'static str, message: impl Into<String>) -> Fault {
        Fault {
            code,
            message: message.into(),
            message_xml: None,
        }
    }

    pub fn schema(violation: &str, line: usize, column: usize) -> Fault {
        Fault {
            code: "ErrorSchemaValidation",
            message: format!("The request failed schema validation: {violation}"),
            message_xml: Some(format!(
                "<t:LineNumber>{line}</t:LineNumber><t:LinePosition>{column}</t:LinePosition><t:Violation>{}</t:Violation>",
                esc(violation)
            )),
        }
    }

    pub fn server_busy(back_off_ms: u64) -> Fault {
        Fault {
            code: "ErrorServerBusy",
            message: text("ErrorServerBusy").into(),
            message_xml: Some(format!(
                "<t:Value Name=\"BackOffMilliseconds\">{back_off_ms}</t:Value>"
            )),
        }
    }

    pub fn exceeded_connection_count(limit: usize) -> Fault {
        Fault {
            code: "ErrorExceededConnectionCount",
            message: text("ErrorExceededConnectionCount").into(),
            message_xml: Some(format!(
                "<t:Value Name=\"Policy\">MaxConcurrency</t:Value><t:Value Name=\"MaxConcurrencyLimit\">{limit}</t:Value><t:Value Name=\"ErrorMessage\">This operation exceeds the throttling budget for policy part 'MaxConcurrency', policy value '{limit}',  Budget type: 'Ews'.  Suggested backoff time 0 ms.</t:Value>"
            )),
        }
    }

    /// The whole fault envelope.
    pub fn to_xml(&self) -> String {
        let mut s = String::with_capacity(600);
        s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>");
        s.push_str(&format!(
            "<faultcode xmlns:a=\"{TYP}\">a:{}</faultcode><faultstring xml:lang=\"en-US\">{}</faultstring><detail><e:ResponseCode xmlns:e=\"{}\">{}</e:ResponseCode><e:Message xmlns:e=\"{}\">{}</e:Message>",
            self.code,
            esc(&self.message),
            xml::ERR,
            self.code,
            xml::ERR,
            esc(&self.message)
        ));
        if let Some(m) = &self.message_xml {
            s.push_str(&format!(
                "<t:MessageXml xmlns:t=\"{TYP}\">{m}</t:MessageXml>"
            ));
        }
        s.push_str("</detail></s:Fault></s:Body></s:Envelope>");
        s
    }
}

/// The documented `MessageText` of the response codes the simulator returns
/// (`responsecode.md`; the wording of the texts real servers send).
pub fn text(code: &str) -> &'static str {
    match code {
        "ErrorAccessDenied" => "Access is denied. Check credentials and try again.",
        "ErrorCalendarViewRangeTooBig" => {
            "The time window specified is larger than the maximum allowed (2 years)."
        }
        "ErrorCalendarEndDateIsEarlierThanStartDate" => "EndDate is earlier than StartDate",
        "ErrorExceededFindCountLimit" => {
            "You have exceeded the maximum number of objects that can be returned for the find operation. Use paging to reduce the result size and try your request again."
        }
        "ErrorExceededConnectionCount" => {
            "You have exceeded the available concurrent connections for your account.  Try again once your other requests have completed."
        }
        "ErrorFolderNotFound" => "The specified folder could not be found in the store.",
        "ErrorImpersonateUserDenied" => {
            "The account does not have permission to impersonate the requested user."
        }
        "ErrorInternalServerError" => "An internal server error occurred. The operation failed.",
        "ErrorInvalidExchangeImpersonationHeaderData" => {
            "ExchangeImpersonation SOAP header must be present for this type of OAuth token."
        }
        "ErrorInvalidIdMalformed" => "Id is malformed.",
        "ErrorInvalidOperation" => "The operation is not valid for this request.",
        "ErrorInvalidRequest" => "The request is invalid.",
        "ErrorInvalidServerVersion" => "The specified server version is invalid.",
        "ErrorInvalidSyncStateData" => {
            "Synchronization state data is corrupt or otherwise invalid."
        }
        "ErrorItemNotFound" => "The specified object was not found in the store.",
        "ErrorNameResolutionMultipleResults" => "Multiple results were found.",
        "ErrorNameResolutionNoResults" => "No results were found.",
        "ErrorNonExistentMailbox" => "The SMTP address has no mailbox associated with it.",
        "ErrorServerBusy" => "The server cannot service this request right now. Try again later.",
        "ErrorUnsupportedQueryFilter" => {
            "The restriction or sort order is too complex for this operation."
        }
        "ErrorInvalidPropertyRequest" => "The property request is invalid.",
        "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange" => {
            "Occurrence index is out of recurrence range."
        }
        "ErrorCalendarOccurrenceIsDeletedFromRecurrence" => {
            "Occurrence with this index was previously deleted from the recurrence."
        }
        "ErrorCalendarCannotUseIdForOccurrenceId" => {
            "Id must be a non-recurring calendar item id or a recurring master item id."
        }
        _ => "An error occurred.",
    }
}

/// Parses and checks the envelope. Faults: `ErrorSchemaValidation` (not XML, not a SOAP 1.1
/// envelope, no operation, an unknown header value), `ErrorInvalidServerVersion`.
pub fn parse_request(bytes: &[u8]) -> Result<Request, Fault> {
    let root = xml::parse(bytes).map_err(|e| Fault::schema(&e.message, e.line, e.column))?;
    if !root.is(SOAP, "Envelope") {
        return Err(Fault::schema(
            &format!(
                "The root element '{}' is not a SOAP 1.1 Envelope in namespace '{SOAP}'.",
                root.name
            ),
            1,
            1,
        ));
    }
    let header = root.child(SOAP, "Header");
    let mut version = ApiVersion(1); // Exchange2007_SP1 when the header is absent.
    let mut impersonation = None;
    let mut time_zone_context = None;
    if let Some(h) = header {
        if let Some(v) = h.child(TYP, "RequestServerVersion") {
            let name = v.attr("Version").unwrap_or("").trim();
            match VERSIONS.iter().position(|x| *x == name) {
                Some(i) => version = ApiVersion(i),
                None => {
                    return Err(Fault::new(
                        "ErrorInvalidServerVersion",
                        text("ErrorInvalidServerVersion"),
                    ));
                }
            }
        }
        if let Some(imp) = h.child(TYP, "ExchangeImpersonation") {
            let sid = imp.child(TYP, "ConnectingSID");
            let pick = |name: &str| {
                sid.and_then(|s| s.child_text(TYP, name))
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            impersonation = Some(if let Some(v) = pick("PrimarySmtpAddress") {
                ConnectingSid::PrimarySmtpAddress(v)
            } else if let Some(v) = pick("SmtpAddress") {
                ConnectingSid::SmtpAddress(v)
            } else if let Some(v) = pick("PrincipalName") {
                ConnectingSid::PrincipalName(v)
            } else if let Some(v) = pick("SID") {
                ConnectingSid::Sid(v)
            } else {
                return Err(Fault::schema(
                    "The element 'ConnectingSID' has incomplete content.",
                    1,
                    1,
                ));
            });
        }
        if let Some(tz) = h
            .child(TYP, "TimeZoneContext")
            .and_then(|t| t.child(TYP, "TimeZoneDefinition"))
        {
            time_zone_context = tz.attr("Id").map(str::to_string);
        }
    }
    let body = root
        .child(SOAP, "Body")
        .ok_or_else(|| Fault::schema("The element 'Envelope' has no 'Body'.", 1, 1))?;
    let op = body
        .children
        .first()
        .cloned()
        .ok_or_else(|| Fault::new("ErrorInvalidRequest", text("ErrorInvalidRequest")))?;
    if op.ns != MSG {
        return Err(Fault::schema(
            &format!(
                "The element '{}' in namespace '{}' is not expected.",
                op.name, op.ns
            ),
            1,
            1,
        ));
    }
    Ok(Request {
        version,
        impersonation,
        time_zone_context,
        op,
    })
}

/// The response envelope around `body` (the operation's response element).
pub fn envelope(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 700);
    s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header>");
    s.push_str(&format!(
        "<h:ServerVersionInfo MajorVersion=\"{MAJOR}\" MinorVersion=\"{MINOR}\" MajorBuildNumber=\"{MAJOR_BUILD}\" MinorBuildNumber=\"{MINOR_BUILD}\" Version=\"{SCHEMA_VERSION}\" xmlns:h=\"{TYP}\" xmlns=\"{TYP}\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/>"
    ));
    s.push_str("</s:Header><s:Body xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">");
    s.push_str(body);
    s.push_str("</s:Body></s:Envelope>");
    s
}

/// Opening tag of an operation response: `<m:FooResponse xmlns:m=… xmlns:t=…>`.
pub fn response_open(op: &str) -> String {
    format!("<m:{op}Response xmlns:m=\"{MSG}\" xmlns:t=\"{TYP}\">")
}

/// One response message's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    /// `ResponseClass="Warning"` with a code (e.g. `ErrorNameResolutionMultipleResults`).
    Warning(&'static str),
    Error {
        code: &'static str,
        /// Inner XML of `m:MessageXml` (escaped).
        message_xml: Option<String>,
    },
}

impl Outcome {
    pub fn error(code: &'static str) -> Outcome {
        Outcome::Error {
            code,
            message_xml: None,
        }
    }
}

/// Writes `<m:{name} ResponseClass=…>` with `MessageText`, `ResponseCode`, `DescriptiveLinkKey`
/// and `MessageXml` as `responsemessage.md` orders them, then `inner`, then the closing tag.
pub fn message(out: &mut String, name: &str, outcome: &Outcome, inner: &str) {
    match outcome {
        Outcome::Success => {
            out.push_str(&format!(
                "<m:{name} ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>"
            ));
        }
        Outcome::Warning(code) => {
            out.push_str(&format!(
                "<m:{name} ResponseClass=\"Warning\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>",
                esc(text(code))
            ));
        }
        Outcome::Error { code, message_xml } => {
            out.push_str(&format!(
                "<m:{name} ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>",
                esc(text(code))
            ));
            if let Some(x) = message_xml {
                out.push_str(&format!("<m:MessageXml>{x}</m:MessageXml>"));
            }
        }
    }
    out.push_str(inner);
    out.push_str(&format!("</m:{name}>"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_headers_are_read_by_namespace() {
        let r = parse_request(
            br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:typ="http://schemas.microsoft.com/exchange/services/2006/types">
            <soap:Header><typ:RequestServerVersion Version="Exchange2010_SP2"/>
            <typ:ExchangeImpersonation><typ:ConnectingSID><typ:SmtpAddress>room-1.01@contoso.com</typ:SmtpAddress></typ:ConnectingSID></typ:ExchangeImpersonation></soap:Header>
            <soap:Body><GetRoomLists xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"/></soap:Body></soap:Envelope>"#,
        );
        let r = r.unwrap_or_else(|f| panic!("{f:?}"));
        assert_eq!(r.version.name(), "Exchange2010_SP2");
        assert_eq!(
            r.impersonation,
            Some(ConnectingSid::SmtpAddress("room-1.01@contoso.com".into()))
        );
        assert_eq!(r.op.name, "GetRoomLists");
        let bad = parse_request(
            br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2099"/></s:Header><s:Body/></s:Envelope>"#,
        );
        assert_eq!(bad.err().map(|f| f.code), Some("ErrorInvalidServerVersion"));
        let f = parse_request(b"<x>").err();
        assert_eq!(f.as_ref().map(|f| f.code), Some("ErrorSchemaValidation"));
        assert!(f.is_some_and(|f| f.to_xml().contains("<t:LineNumber>1</t:LineNumber>")));
    }
}
