//! calpump's plugin crate: everything that crosses the boundary between the engine and a sink.
//!
//! * [`model`] — the canonical, versioned, backend-neutral [`Event`], [`Batch`] and
//!   [`SinkResult`] that every sink receives, whichever backend read the calendar.
//! * [`abi`] — the `#[repr(C)]` plugin table (`calpump_sink_v1`) and its calling conventions.
//! * [`sdk`] — the safe [`Sink`](sdk::Sink) trait and the `export_sink!` macro for plugin authors.
//!
//! This crate depends on nothing of calpump's own: the engine and every sink depend on it.

pub mod abi;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod model;
pub mod sdk;

pub use model::*;
pub use sdk::{Sink, SinkError, SinkErrorKind};
