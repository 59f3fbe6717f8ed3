//! Every EWS failure to a catalogue diagnostic: `ResponseCode`s (in a SOAP fault or a response
//! message), 401 with the schemes the server offered, 403 without an EWS answer, and answers
//! that are not EWS at all.
//!
//! Codes: office-developer-exchange-docs `web-service-reference/responsecode.md`; throttling:
//! `exchange-web-services/ews-throttling-in-exchange.md`.

use std::time::Duration;

use calpump_backend_common::http::{HttpResponse, display_url};
use calpump_engine::diagnostics::catalogue::{ews, general};
use calpump_engine::diagnostics::{Diagnostic, DiagnosticInfo};
use calpump_engine::source::SourceError;
use reqwest::header::WWW_AUTHENTICATE;

/// The catalogue entry and retryability of an EWS `ResponseCode`.
pub fn code_info(code: &str) -> (&'static DiagnosticInfo, bool) {
    match code {
        "ErrorServerBusy" => (&ews::SERVER_BUSY, true),
        "ErrorExceededConnectionCount" | "ErrorTooManyObjectsOpened" => {
            (&ews::EXCEEDED_CONNECTION_COUNT, true)
        }
        // Not retried as is: the caller reads in full with a new sync state.
        "ErrorInvalidSyncStateData" | "ErrorSyncFolderNotFound" => {
            (&ews::INVALID_SYNC_STATE, false)
        }
        "ErrorImpersonateUserDenied" | "ErrorImpersonationDenied" | "ErrorImpersonationFailed" => {
            (&ews::IMPERSONATE_USER_DENIED, false)
        }
        "ErrorNonExistentMailbox" | "ErrorMailRecipientNotFound" | "ErrorInvalidSmtpAddress" => {
            (&ews::NON_EXISTENT_MAILBOX, false)
        }
        "ErrorAccessDenied" | "ErrorDelegateNoUser" | "ErrorNotDelegate" => {
            (&ews::ACCESS_DENIED, false)
        }
        "ErrorMailboxStoreUnavailable"
        | "ErrorInternalServerTransientError"
        | "ErrorMailboxMoveInProgress"
        | "ErrorTimeoutExpired"
        | "ErrorConnectionFailed"
        | "ErrorADUnavailable"
        | "ErrorRpcServerUnavailable"
        | "ErrorBatchProcessingStopped"
        | "ErrorInternalServerError" => (&ews::SERVER_TRANSIENT, true),
        "ErrorInvalidServerVersion" | "ErrorIncorrectSchemaVersion" | "ErrorSchemaValidation" => {
            (&ews::INVALID_SERVER_VERSION, false)
        }
        // An app-only token without ExchangeImpersonation (`impersonation = false`).
        "ErrorInvalidExchangeImpersonationHeaderData" => {
            (&ews::IMPERSONATION_HEADER_MISSING, false)
        }
        "ErrorNameResolutionNoResults" => (&ews::NAME_RESOLUTION_NO_RESULTS, false),
        "ErrorFolderNotFound" => (&ews::FOLDER_NOT_FOUND, false),
        // The catalogue calls these retryable (the next sync or a smaller view gets past them);
        // sending the same request again does not, so the client does not repeat it.
        "ErrorItemNotFound" => (&ews::ITEM_NOT_FOUND, false),
        "ErrorCalendarViewRangeTooBig" => (&ews::CALENDAR_VIEW_RANGE_TOO_BIG, false),
        "ErrorExceededFindCountLimit" => (&ews::EXCEEDED_FIND_COUNT_LIMIT, false),
        _ => (&ews::OTHER, false),
    }
}

/// A `ResponseCode` (+ text, back-off) as a source error. `context` names the operation and
/// mailbox (`FindItem for room-1@contoso.com`).
pub fn code_error(
    code: &str,
    text: &str,
    back_off: Option<Duration>,
    context: &str,
) -> SourceError {
    let (info, retryable) = code_info(code);
    let mut detail = format!("{context}: {code}");
    if !text.is_empty() && text != code {
        detail.push_str(&format!(
            " — {}",
            calpump_backend_common::text::redact(text)
        ));
    }
    if let Some(wait) = back_off {
        detail.push_str(&format!(" (BackOffMilliseconds {})", wait.as_millis()));
    }
    SourceError::new(Diagnostic::new(info, detail))
        .retryable(retryable)
        .with_retry_after(back_off)
}

/// The authentication schemes a 401 offered (`WWW-Authenticate`), e.g. `["Negotiate", "NTLM"]`.
pub fn offered_schemes(response: &HttpResponse) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in response.headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        // One header may list several challenges: `Basic realm="x", NTLM`.
        for part in text.split(',') {
            let scheme = part.split_whitespace().next().unwrap_or_default();
            if scheme.is_empty() || scheme.contains('=') {
                continue;
            }
            if !out.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
                out.push(scheme.to_string());
            }
        }
    }
    out
}

/// `x-ms-diagnostics` code 2000008: "The token contains no permissions, or permissions can not
/// be understood." — what Exchange Online answers (with a 401) to a token that lacks
/// `full_access_as_app` / `EWS.AccessAsUser.All`, e.g. when admin consent is missing.
const DIAG_NO_PERMISSION: &str = "2000008";

/// Whether an `x-ms-diagnostics` value (`2000008;reason="…";error_category="…"`) carries `code`.
fn diagnostics_code_is(value: &str, code: &str) -> bool {
    value.split(';').next().map(str::trim) == Some(code)
}

/// 401: `ews.Unauthorized` naming the URL, the scheme calpump used and what the server offers —
/// and, for Basic and NTLM, which of the entry's causes that leaves: the scheme is offered, so
/// the user name or password was refused, or it is not; `ews.TokenLacksPermission` when
/// `x-ms-diagnostics` says the token carries no EWS permission (a permission failure: consent
/// changes take minutes to reach Exchange).
pub fn unauthorized(response: &HttpResponse, used: &str, who: &str) -> SourceError {
    let schemes = offered_schemes(response);
    let offered = if schemes.is_empty() {
        "no scheme".to_string()
    } else {
        schemes.join(", ")
    };
    let mut detail = format!(
        "{} answered HTTP 401 to {used} authentication as {who}; the server offers: {offered}",
        display_url(&response.url)
    );
    // NTLM is also spoken under Negotiate (calpump answers either challenge).
    let accepted: &[&str] = match used {
        "Basic" => &["Basic"],
        "NTLM" => &["NTLM", "Negotiate"],
        _ => &[],
    };
    if !accepted.is_empty() {
        if schemes
            .iter()
            .any(|s| accepted.iter().any(|a| s.eq_ignore_ascii_case(a)))
        {
            detail.push_str(&format!(
                " — {used} is offered, so the server refused the user name or password (or the account is locked)"
            ));
        } else {
            detail.push_str(&format!(
                " — {used} is not offered: set `auth.kind` to a scheme the server offers"
            ));
        }
    }
    let diag = response
        .headers
        .get("x-ms-diagnostics")
        .and_then(|v| v.to_str().ok());
    if let Some(diag) = diag {
        detail.push_str(&format!(" (x-ms-diagnostics: {diag})"));
    }
    let info = if diag.is_some_and(|d| diagnostics_code_is(d, DIAG_NO_PERMISSION)) {
        &ews::TOKEN_LACKS_PERMISSION
    } else {
        &ews::UNAUTHORIZED
    };
    SourceError::new(Diagnostic::new(info, detail)).retryable(false)
}

/// 403 without an EWS answer: EWS is switched off for the tenant, the mailbox or the app.
pub fn forbidden(response: &HttpResponse) -> SourceError {
    let mut detail = format!(
        "{} answered HTTP 403 Forbidden without an EWS error",
        display_url(&response.url)
    );
    let excerpt = response.excerpt();
    if !excerpt.trim().is_empty() {
        detail.push_str(&format!(": “{excerpt}”"));
    }
    if let Some(id) = response.request_id() {
        detail.push_str(&format!(", request id {id}"));
    }
    SourceError::new(Diagnostic::new(&ews::EWS_DISABLED, detail)).retryable(false)
}

/// Any other status that did not come with a SOAP answer.
pub fn unexpected_status(response: &HttpResponse) -> SourceError {
    let detail = format!(
        "{} answered HTTP {} where EWS was expected: “{}”",
        display_url(&response.url),
        response.status.as_u16(),
        response.excerpt()
    );
    let info = if response.status.as_u16() == 404 {
        &ews::OTHER
    } else {
        &general::MALFORMED
    };
    SourceError::new(Diagnostic::new(info, detail)).retryable(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_entries() {
        assert_eq!(code_info("ErrorServerBusy").0.code, "ews.ErrorServerBusy");
        assert!(code_info("ErrorServerBusy").1);
        assert_eq!(
            code_info("ErrorImpersonateUserDenied").0.code,
            "ews.ErrorImpersonateUserDenied"
        );
        assert_eq!(
            code_info("ErrorNonExistentMailbox").0.code,
            "ews.ErrorNonExistentMailbox"
        );
        assert_eq!(
            code_info("ErrorAccessDenied").0.code,
            "ews.ErrorAccessDenied"
        );
        assert_eq!(
            code_info("ErrorMailboxStoreUnavailable").0.code,
            "ews.ServerTransient"
        );
        assert_eq!(code_info("ErrorSomethingNew").0.code, "ews.Other");
        for (code, entry) in [
            (
                "ErrorInvalidExchangeImpersonationHeaderData",
                "ews.ErrorInvalidExchangeImpersonationHeaderData",
            ),
            (
                "ErrorNameResolutionNoResults",
                "ews.ErrorNameResolutionNoResults",
            ),
            ("ErrorFolderNotFound", "ews.ErrorFolderNotFound"),
            ("ErrorItemNotFound", "ews.ErrorItemNotFound"),
            (
                "ErrorCalendarViewRangeTooBig",
                "ews.ErrorCalendarViewRangeTooBig",
            ),
            (
                "ErrorExceededFindCountLimit",
                "ews.ErrorExceededFindCountLimit",
            ),
        ] {
            let (info, retryable) = code_info(code);
            assert_eq!(info.code, entry, "{code}");
            assert!(!retryable, "{code} is not re-sent as is");
            let e = code_error(code, "", None, "FindItem as room@contoso.com");
            assert_eq!(e.code(), entry);
            assert!(!e.retryable, "{code}");
        }
        let e = code_error(
            "ErrorServerBusy",
            "The server cannot service this request right now.",
            Some(Duration::from_millis(5000)),
            "SyncFolderItems for room@contoso.com",
        );
        assert!(e.retryable);
        assert_eq!(e.retry_after, Some(Duration::from_millis(5000)));
        assert!(e.diagnostic.detail().contains("BackOffMilliseconds 5000"));
    }

    fn response_401(diagnostics: Option<&str>) -> HttpResponse {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            WWW_AUTHENTICATE,
            reqwest::header::HeaderValue::from_static(
                "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\"",
            ),
        );
        if let Some(d) = diagnostics {
            headers.insert(
                "x-ms-diagnostics",
                reqwest::header::HeaderValue::from_str(d).expect("header value"),
            );
        }
        HttpResponse {
            url: reqwest::Url::parse("https://outlook.office365.com/EWS/Exchange.asmx")
                .expect("url"),
            status: reqwest::StatusCode::UNAUTHORIZED,
            headers,
            body: Vec::new(),
            peer_certificate: None,
        }
    }

    #[test]
    fn a_token_without_ews_permission_is_a_permission_failure() {
        // Exchange Online's answer to an app token without full_access_as_app.
        let r = response_401(Some(
            "2000008;reason=\"The token contains no permissions, or permissions can not be understood.\";error_category=\"invalid_grant\"",
        ));
        let e = unauthorized(&r, "OAuth", "app 0a1b");
        assert_eq!(e.code(), "ews.TokenLacksPermission");
        assert!(e.diagnostic.info().permission, "--wait retries it");
        assert!(!e.retryable);
        assert!(e.diagnostic.detail().contains("2000008"));
        // Other token refusals and plain 401s stay `ews.Unauthorized`.
        let expired = response_401(Some(
            "2000007;reason=\"The token has expired.\";error_category=\"invalid_lifetime\"",
        ));
        assert_eq!(
            unauthorized(&expired, "OAuth", "app").code(),
            "ews.Unauthorized"
        );
        assert_eq!(
            unauthorized(&response_401(None), "Basic", "svc").code(),
            "ews.Unauthorized"
        );
    }

    fn response_401_offering(schemes: &[&str]) -> HttpResponse {
        let mut r = response_401(None);
        r.headers.remove(WWW_AUTHENTICATE);
        for scheme in schemes {
            r.headers.append(
                WWW_AUTHENTICATE,
                reqwest::header::HeaderValue::from_str(scheme).expect("header value"),
            );
        }
        r
    }

    #[test]
    fn a_refused_password_is_told_from_a_scheme_the_server_does_not_offer() {
        // IIS with Windows and Basic authentication: the scheme is offered, the password wrong.
        let iis = response_401_offering(&["Negotiate", "NTLM", "Basic realm=\"mail\""]);
        for used in ["NTLM", "Basic"] {
            let e = unauthorized(&iis, used, "CONTOSO\\svc-pump");
            assert_eq!(e.code(), "ews.Unauthorized");
            let detail = e.diagnostic.detail();
            assert!(
                detail.contains(&format!(
                    "{used} is offered, so the server refused the user name or password"
                )),
                "{detail}"
            );
            assert!(
                detail.contains("the server offers: Negotiate, NTLM, Basic"),
                "{detail}"
            );
        }
        // NTLM answers a Negotiate-only server too.
        let negotiate = response_401_offering(&["Negotiate"]);
        assert!(
            unauthorized(&negotiate, "NTLM", "svc")
                .diagnostic
                .detail()
                .contains("NTLM is offered")
        );
        // Basic switched off on the server: the scheme, not the password, is the problem.
        let e = unauthorized(&negotiate, "Basic", "svc");
        assert_eq!(e.code(), "ews.Unauthorized");
        assert!(
            e.diagnostic
                .detail()
                .contains("Basic is not offered: set `auth.kind`"),
            "{}",
            e.diagnostic.detail()
        );
        // A bearer token's refusal says neither.
        let detail = unauthorized(&response_401(None), "OAuth (Bearer)", "app")
            .diagnostic
            .detail()
            .to_string();
        assert!(
            !detail.contains("is offered") && !detail.contains("not offered"),
            "{detail}"
        );
    }
}
