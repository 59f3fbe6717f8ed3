//! calpump's EWS backend (Exchange on-premises and Exchange Online): SOAP over quick-xml.

pub mod convert;
pub mod errors;
pub mod ops;
pub mod soap;
pub mod xml;
