//! calpump's EWS backend (Exchange on-premises and Exchange Online): SOAP over quick-xml.

pub mod xml;
