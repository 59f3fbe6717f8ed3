//! The backends this binary links in: one [`SourceFactory`] per `backend = "…"` value.
//!
//! Backend crates add their factory here (e.g. `Arc::new(calpump_ews::EwsFactory)` and
//! `Arc::new(calpump_graph::GraphFactory)`), and their crate to the root `[dependencies]`.
//! The engine knows no backend by name; an unknown `backend` is a configuration error naming
//! the ones listed here.

use std::sync::Arc;

use calpump_engine::source::SourceFactory;

/// Every backend factory of this binary.
pub fn factories() -> Vec<Arc<dyn SourceFactory>> {
    vec![
        Arc::new(calpump_ews::EwsFactory),
        Arc::new(calpump_graph::GraphFactory),
    ]
}

/// The factory for `backend`, or the comma-separated names of the known ones.
pub fn find(backend: &str) -> Result<Arc<dyn SourceFactory>, String> {
    let all = factories();
    if let Some(found) = all.iter().find(|f| f.backend() == backend) {
        return Ok(Arc::clone(found));
    }
    let known: Vec<&str> = all.iter().map(|f| f.backend()).collect();
    Err(if known.is_empty() {
        "none (this calpump was built without backends)".to_string()
    } else {
        known.join(", ")
    })
}
