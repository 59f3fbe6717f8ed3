//! An Exchange simulator on loopback: EWS, Microsoft Graph and an OAuth2 token endpoint, deterministic from a seed
