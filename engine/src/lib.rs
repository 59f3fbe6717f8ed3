//! calpump's engine: the [`Source`](source::Source) trait every backend implements, the
//! configuration, secrets, the diagnostics vocabulary, and (as they land) the sync runner, the
//! state store, the plugin host and the daemon. It knows no backend and no sink by name.

pub mod config;
pub mod diagnostics;
pub mod secret;
pub mod source;
