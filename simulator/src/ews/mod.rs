//! EWS and Autodiscover (SOAP at `/EWS/Exchange.asmx`, `/autodiscover/…`): built on the tenant
//! model by the EWS module. [`routes`] is merged into the simulator's router.

use crate::http::AppState;
use axum::Router;

/// The EWS module's routes (none yet: the EWS module adds `/EWS/Exchange.asmx` and Autodiscover).
pub fn routes() -> Router<AppState> {
    Router::new()
}
