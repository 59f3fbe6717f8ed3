//! Autodiscover: SOAP `GetUserSettings` at `/autodiscover/autodiscover.svc` and POX at
//! `/autodiscover/autodiscover.xml`, both answering with this simulator's EWS URL.
//!
//! Docs (`docs/web-service-reference/` unless noted): `getusersettings-operation-soap.md`,
//! `getusersettingsresponsemessage-soap.md`, `errorcode-soap.md` (`InvalidUser`,
//! `RedirectAddress`, `RedirectUrl`), `pox-autodiscover-request-for-exchange.md`,
//! `pox-autodiscover-response-for-exchange.md`, `action-pox.md`, `redirectaddr-pox.md`,
//! `redirecturl-pox.md`; `docs/exchange-web-services/how-to-get-user-settings-from-exchange-by-using-autodiscover.md`.
//! The namespaces are the real `http://` ones (the docs' samples sometimes show `https://`).

use super::soap;
use super::state::{AutodiscoverRedirect, RedirectKind};
use super::xml::{self, AUTOD, Element, SOAP, esc};
use crate::tenant::Tenant;

pub const POX_REQUEST: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
pub const POX_RESPONSE_BASE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
pub const POX_RESPONSE_OUTLOOK: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// The CAS version string (`CasVersion`) of the build in `soap.rs`.
fn cas_version() -> String {
    format!(
        "{}.{:02}.{:04}.{:03}",
        soap::MAJOR,
        soap::MINOR,
        soap::MAJOR_BUILD,
        soap::MINOR_BUILD
    )
}

fn legacy_dn(display: &str) -> String {
    format!(
        "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}",
        display.replace(' ', "")
    )
}

const SERVER: &str = "exch01.contoso.com";
const SERVER_DN: &str = "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=EXCH01";
const MDB_DN: &str = "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=EXCH01/cn=Microsoft Private MDB";

fn redirect_for<'a>(
    r: Option<&'a AutodiscoverRedirect>,
    email: &str,
) -> Option<&'a AutodiscoverRedirect> {
    r.filter(|r| {
        r.mailbox
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(email.trim()))
    })
}

/// The mailboxes a SOAP request asks for, or `None` if the request is not a GetUserSettings.
pub fn soap_users(root: &Element) -> Option<Vec<String>> {
    let req = root
        .child(SOAP, "Body")?
        .child(AUTOD, "GetUserSettingsRequestMessage")?
        .child(AUTOD, "Request")?;
    Some(
        req.child(AUTOD, "Users")?
            .children_named(AUTOD, "User")
            .filter_map(|u| u.child_text(AUTOD, "Mailbox"))
            .map(str::to_string)
            .collect(),
    )
}

/// Answers a SOAP `GetUserSettings` request (already parsed).
pub fn get_user_settings(
    tenant: &Tenant,
    root: &Element,
    ews_url: &str,
    redirect: Option<&AutodiscoverRedirect>,
) -> Result<String, soap::Fault> {
    let req = root
        .child(SOAP, "Body")
        .and_then(|b| b.child(AUTOD, "GetUserSettingsRequestMessage"))
        .and_then(|m| m.child(AUTOD, "Request"))
        .ok_or_else(|| {
            soap::Fault::schema(
                "The message is not a GetUserSettingsRequestMessage in namespace 'http://schemas.microsoft.com/exchange/2010/Autodiscover'.",
                1,
                1,
            )
        })?;
    let users: Vec<&str> = req
        .child(AUTOD, "Users")
        .map(|u| {
            u.children_named(AUTOD, "User")
                .filter_map(|u| u.child_text(AUTOD, "Mailbox"))
                .collect()
        })
        .unwrap_or_default();
    let settings: Vec<&str> = req
        .child(AUTOD, "RequestedSettings")
        .map(|r| {
            r.children_named(AUTOD, "Setting")
                .map(Element::text)
                .collect()
        })
        .unwrap_or_default();
    let mut body = String::new();
    body.push_str(&format!(
        "<GetUserSettingsResponseMessage xmlns=\"{AUTOD}\"><Response xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses>"
    ));
    for u in users {
        body.push_str("<UserResponse>");
        if let Some(r) = redirect_for(redirect, u) {
            let code = match r.kind {
                RedirectKind::Addr => "RedirectAddress",
                RedirectKind::Url => "RedirectUrl",
            };
            body.push_str(&format!(
                "<ErrorCode>{code}</ErrorCode><ErrorMessage>Redirection address.</ErrorMessage><RedirectTarget>{}</RedirectTarget><UserSettingErrors/><UserSettings/></UserResponse>",
                esc(&r.target)
            ));
            continue;
        }
        let Some(m) = tenant.mailbox(u) else {
            body.push_str(&format!(
                "<ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: '{}'</ErrorMessage><RedirectTarget i:nil=\"true\"/><UserSettingErrors/><UserSettings/></UserResponse>",
                esc(u)
            ));
            continue;
        };
        let mut values = String::new();
        let mut errors = String::new();
        for s in &settings {
            let v = match *s {
                "UserDisplayName" => Some(m.display_name.clone()),
                "UserDN" => Some(legacy_dn(&m.display_name)),
                "UserDeploymentId" => Some(crate::catalogue::TENANT_ID.to_string()),
                "InternalMailboxServer" | "ExternalMailboxServer" | "ActiveDirectoryServer" => {
                    Some(SERVER.to_string())
                }
                "MailboxDN" => Some(MDB_DN.to_string()),
                "InternalEwsUrl" | "ExternalEwsUrl" => Some(ews_url.to_string()),
                "CasVersion" => Some(cas_version()),
                "EwsSupportedSchemas" => Some(
                    "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016".into(),
                ),
                "AutoDiscoverSMTPAddress" => Some(m.smtp.clone()),
                _ => None,
            };
            match v {
                Some(v) => values.push_str(&format!(
                    "<UserSetting i:type=\"StringSetting\"><Name>{s}</Name><Value>{}</Value></UserSetting>",
                    esc(&v)
                )),
                None => errors.push_str(&format!(
                    "<UserSettingError><ErrorCode>SettingIsNotAvailable</ErrorCode><ErrorMessage>User setting '{}' is not available. </ErrorMessage><SettingName>{}</SettingName></UserSettingError>",
                    esc(s),
                    esc(s)
                )),
            }
        }
        body.push_str(&format!(
            "<ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil=\"true\"/><UserSettingErrors>{errors}</UserSettingErrors><UserSettings>{values}</UserSettings></UserResponse>"
        ));
    }
    body.push_str("</UserResponses></Response></GetUserSettingsResponseMessage>");
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"{SOAP}\" xmlns:a=\"{}\"><s:Header><a:Action s:mustUnderstand=\"1\">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action><h:ServerVersionInfo xmlns:h=\"{AUTOD}\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><h:MajorVersion>{}</h:MajorVersion><h:MinorVersion>{}</h:MinorVersion><h:MajorBuildNumber>{}</h:MajorBuildNumber><h:MinorBuildNumber>{}</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo></s:Header><s:Body>{body}</s:Body></s:Envelope>",
        xml::WSA,
        soap::MAJOR,
        soap::MINOR,
        soap::MAJOR_BUILD,
        soap::MINOR_BUILD
    ))
}

fn pox_error(code: u32, message: &str) -> String {
    let t = chrono::Utc::now();
    let now = format!(
        "{}.{:07}",
        t.format("%H:%M:%S"),
        chrono::Timelike::nanosecond(&t) / 100
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"{POX_RESPONSE_BASE}\"><Response><Error Time=\"{now}\" Id=\"2477272013\"><ErrorCode>{code}</ErrorCode><Message>{}</Message><DebugData/></Error></Response></Autodiscover>",
        esc(message)
    )
}

/// Answers a POX request body.
pub fn pox(
    tenant: &Tenant,
    body: &[u8],
    ews_url: &str,
    redirect: Option<&AutodiscoverRedirect>,
) -> String {
    let Ok(root) = xml::parse(body) else {
        return pox_error(600, "Invalid Request");
    };
    let req = if root.is(POX_REQUEST, "Autodiscover") {
        root.child(POX_REQUEST, "Request")
    } else {
        None
    };
    let Some(req) = req else {
        return pox_error(600, "Invalid Request");
    };
    let email = req.child_text(POX_REQUEST, "EMailAddress").unwrap_or("");
    let schema = req
        .child_text(POX_REQUEST, "AcceptableResponseSchema")
        .unwrap_or("");
    if schema != POX_RESPONSE_OUTLOOK {
        return pox_error(601, "The requested schema version is not supported.");
    }
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"{POX_RESPONSE_BASE}\"><Response xmlns=\"{POX_RESPONSE_OUTLOOK}\">"
    );
    let tail = "</Response></Autodiscover>";
    if let Some(r) = redirect_for(redirect, email) {
        let (action, el) = match r.kind {
            RedirectKind::Addr => ("redirectAddr", "RedirectAddr"),
            RedirectKind::Url => ("redirectUrl", "RedirectUrl"),
        };
        return format!(
            "{head}<Account><AccountType>email</AccountType><Action>{action}</Action><{el}>{}</{el}></Account>{tail}",
            esc(&r.target)
        );
    }
    let Some(m) = tenant.mailbox(email) else {
        return pox_error(500, "The email address can't be found.");
    };
    let url = esc(ews_url);
    let proto = |kind: &str| {
        format!(
            "<Protocol><Type>{kind}</Type><Server>{SERVER}</Server>{}<ServerVersion>73C28608</ServerVersion><ASUrl>{url}</ASUrl><EwsUrl>{url}</EwsUrl><OOFUrl>{url}</OOFUrl></Protocol>",
            if kind == "EXCH" {
                format!(
                    "<ServerDN>{}</ServerDN><MdbDN>{}</MdbDN>",
                    esc(SERVER_DN),
                    esc(MDB_DN)
                )
            } else {
                String::new()
            }
        )
    };
    format!(
        "{head}<User><DisplayName>{}</DisplayName><LegacyDN>{}</LegacyDN><AutoDiscoverSMTPAddress>{}</AutoDiscoverSMTPAddress><DeploymentId>{}</DeploymentId></User><Account><AccountType>email</AccountType><Action>settings</Action><MicrosoftOnline>False</MicrosoftOnline>{}{}</Account>{tail}",
        esc(&m.display_name),
        esc(&legacy_dn(&m.display_name)),
        esc(&m.smtp),
        crate::catalogue::TENANT_ID,
        proto("EXCH"),
        proto("EXPR"),
    )
}
