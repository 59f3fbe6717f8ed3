//! calpump's EWS backend (Exchange on-premises and Exchange Online): SOAP 1.1 over reqwest,
//! namespace-correct XML with quick-xml, Autodiscover, Basic/NTLMv2/OAuth, impersonation or
//! delegate access, incremental sync with `SyncFolderItems` as the change detector.
//!
//! Start with [`source::EwsSource`] (the engine's `Source`) and [`EwsFactory`]; the protocol
//! layers are [`xml`] → [`soap`] → [`ops`] (pure) and [`transport`] → [`client`] (I/O).

pub mod autodiscover;
pub mod client;
pub mod config;
pub mod convert;
pub mod errors;
pub mod ntlm;
pub mod ops;
mod probe;
pub mod soap;
pub mod source;
pub mod transport;
pub mod xml;

use std::sync::Arc;

use calpump_engine::config::ConfigIssue;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::source::{ProfileContext, Source, SourceError, SourceFactory};

pub use source::EwsSource;

/// The factory the binary registers for `backend = "ews"`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EwsFactory;

impl SourceFactory for EwsFactory {
    fn backend(&self) -> &'static str {
        convert::BACKEND
    }

    fn check(&self, ctx: &ProfileContext<'_>) -> Vec<ConfigIssue> {
        config::read(ctx.name, ctx.settings, Some(ctx.secrets)).1
    }

    fn build(&self, ctx: &ProfileContext<'_>) -> Result<Arc<dyn Source>, SourceError> {
        let (settings, issues) = config::read(ctx.name, ctx.settings, Some(ctx.secrets));
        let Some(settings) = settings else {
            let text: Vec<String> = issues
                .iter()
                .filter(|i| i.is_error())
                .map(ToString::to_string)
                .collect();
            return Err(SourceError::new(Diagnostic::new(
                &general::INTERNAL,
                format!("profile `{}` is not usable: {}", ctx.name, text.join("; ")),
            ))
            .retryable(false));
        };
        Ok(Arc::new(EwsSource::build(settings, ctx.secrets)?))
    }
}
