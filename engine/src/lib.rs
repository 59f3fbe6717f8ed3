//! calpump's engine: the [`Source`](source::Source) trait every backend implements, the
//! configuration, secrets, the diagnostics vocabulary, the plugin host, the state store, the
//! sync runner and the daemon. It knows no backend and no sink by name.

pub mod config;
pub mod daemon;
pub mod diagnostics;
pub mod metrics;
pub mod migrate;
pub mod plugin_host;
pub mod runner;
pub mod secret;
pub mod shutdown;
pub mod source;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
