//! What the EWS and Graph backends share: OAuth2 token cache, retry and back-off, per-mailbox limits, HTTP client set-up
