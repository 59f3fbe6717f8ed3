//! calpump's Microsoft Graph backend: REST over reqwest + serde
