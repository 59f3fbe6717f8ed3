//! OAuth bearer tokens on EWS: issued by the simulator's token endpoint (`crate::auth`) for
//! audience `https://outlook.office365.com`. App-only tokens need the `full_access_as_app`
//! role, delegated tokens the `EWS.AccessAsUser.All` scope
//! (`docs/exchange-web-services/how-to-authenticate-an-ews-application-by-using-oauth.md`).
//! Refusals answer 401 with `WWW-Authenticate: Bearer …` and an `x-ms-diagnostics` header as
//! Exchange Online does.

use super::auth::{Principal, unauthorized};
use super::state::EwsState;
use crate::auth::{Audience, TokenError, validate_bearer};
use crate::control::Control;
use axum::response::Response;

pub fn principal(
    st: &EwsState,
    control: &Control,
    base_url: &str,
    authorization: &str,
) -> Result<Principal, Box<Response>> {
    let claims = match validate_bearer(control, Some(authorization), Audience::Exchange) {
        Ok(c) => c,
        Err(e) => {
            let diag = match e {
                TokenError::Expired => {
                    "2000007;reason=\"The token has expired.\";error_category=\"invalid_lifetime\""
                }
                TokenError::WrongAudience => {
                    "2000003;reason=\"The audience claim value is invalid for current resource.\";error_category=\"invalid_resource\""
                }
                TokenError::BadSignature => {
                    "2000001;reason=\"The token has invalid signature.\";error_category=\"invalid_signature\""
                }
                TokenError::Missing | TokenError::Malformed => {
                    "2000000;reason=\"The token is malformed.\";error_category=\"invalid_token\""
                }
            };
            tracing::debug!(error = %e, "EWS bearer token refused");
            return Err(Box::new(unauthorized(st, base_url, None, Some(diag))));
        }
    };
    let no_permission = "2000008;reason=\"The token contains no permissions, or permissions can not be understood.\";error_category=\"invalid_grant\"";
    if claims.is_app() {
        if claims.has("full_access_as_app") {
            Ok(Principal::App {
                client_id: claims.appid,
            })
        } else {
            Err(Box::new(unauthorized(
                st,
                base_url,
                None,
                Some(no_permission),
            )))
        }
    } else {
        match claims.upn {
            Some(upn) if claims.has("EWS.AccessAsUser.All") => Ok(Principal::Delegated {
                upn: upn.to_lowercase(),
                client_id: claims.appid,
            }),
            _ => Err(Box::new(unauthorized(
                st,
                base_url,
                None,
                Some(no_permission),
            ))),
        }
    }
}
