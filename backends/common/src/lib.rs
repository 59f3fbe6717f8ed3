//! What the EWS and Graph backends share, implemented once:
//!
//! - [`http`]: the reqwest client (rustls, gzip, timeouts, `calpump/<version>`), the endpoint
//!   policy (`https://`, or `http://` to loopback), and the classification of transport
//!   failures and odd answers (HTML, 5xx, throttling, malformed bodies) into catalogue
//!   diagnostics;
//! - [`oauth`]: Entra ID tokens — client secret, certificate (signed JWT assertion), password
//!   grant, refresh tokens — cached per source, refreshed ahead of expiry, single-flight, with
//!   Entra's errors mapped to the catalogue and the token's roles readable;
//! - [`settings`]: the profile keys for OAuth ([`settings::OAuthSettings`]) with their offline
//!   check;
//! - [`expiry`]: secret and certificate expiry warnings;
//! - [`retry`]: capped exponential back-off with full jitter, honouring the server's delay;
//! - [`limits`]: per-key and global concurrency limits that adapt at run time;
//! - [`stats`]: request, throttle, retry and error counters per profile and operation;
//! - [`text`]: short, redacted excerpts of bodies for details;
//! - [`tz`]: Windows → IANA zone names and all-day bounds, [`ical`]: the iCalendar UID from the
//!   global object id, [`calendars`]: the neutral calendar paths (unique per mailbox) — so both
//!   backends map every event the same way.
//!
//! It depends on the engine (diagnostics, secrets, config issues, `SourceError`) and nothing
//! else of calpump. Start with the README.

pub mod calendars;
pub mod expiry;
pub mod http;
pub mod ical;
pub mod limits;
pub mod oauth;
pub mod retry;
pub mod settings;
pub mod stats;
pub mod text;
pub mod tz;

pub use http::{EndpointPolicy, Expect, HttpClient, HttpResponse, HttpSettings};
pub use limits::Limits;
pub use oauth::{AccessToken, TokenSource};
pub use retry::{RetryPolicy, retry};
pub use settings::OAuthSettings;
pub use stats::Stats;
