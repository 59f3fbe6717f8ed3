//! The OAuth2 token endpoint (Entra ID v2.0) and token validation.

use crate::http::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
