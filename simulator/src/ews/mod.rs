//! EWS and Autodiscover (SOAP at `/EWS/Exchange.asmx`, `/autodiscover/…`): built on the tenant
//! model by the EWS module. [`routes`] is merged into the simulator's router.

pub mod ntlm;
pub mod xml;

use crate::http::AppState;
use axum::Router;

/// The EWS module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
