//! `calpump profile test` for EWS: numbered steps, each passed, warned or failed with a catalogue
//! diagnostic; the steps after a failure are skipped.
//!
//! 1. `config` — the profile is complete, secrets resolve, the secret is not about to expire;
//! 2. `autodiscover` — (when configured) the EWS URL found and how;
//! 3. `dns-tls` — the EWS host resolves, TLS verifies, the server answers HTTP;
//! 4. `auth` — the NTLM/Basic handshake or the OAuth token (with its roles/scopes) is accepted;
//! 5. `first-call` — `GetFolder` of the probe mailbox's calendar (its item count);
//! 6. `impersonation` / `mailbox-access` — today's items of the probe mailbox read and keyed.

use calpump_backend_common::http::display_url;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::{ews, general};
use calpump_engine::source::{ProbeStep, SourceError, StepOutcome};
use calpump_plugin::Window;
use chrono::{Duration, Utc};
use reqwest::Url;

use crate::config::{AuthSettings, Endpoint};
use crate::source::EwsSource;

fn step(id: &str, title: &str, outcome: StepOutcome) -> ProbeStep {
    ProbeStep {
        id: id.to_string(),
        title: title.to_string(),
        outcome,
    }
}

fn failed(e: SourceError) -> StepOutcome {
    StepOutcome::Failed {
        diagnostic: e.diagnostic,
    }
}

struct Steps {
    list: Vec<ProbeStep>,
    failed: bool,
}

impl Steps {
    fn push(&mut self, id: &str, title: &str, outcome: StepOutcome) {
        if outcome.is_failure() {
            self.failed = true;
        }
        self.list.push(step(id, title, outcome));
    }

    /// Records the step as skipped when an earlier one failed; returns whether to run it.
    fn runs(&mut self, id: &str, title: &str) -> bool {
        if self.failed {
            self.list.push(step(
                id,
                title,
                StepOutcome::Skipped {
                    reason: "an earlier step failed".to_string(),
                },
            ));
            return false;
        }
        true
    }
}

pub async fn run(source: &EwsSource, probe_mailbox: Option<&str>) -> Vec<ProbeStep> {
    let settings = source.settings();
    let mut steps = Steps {
        list: Vec::new(),
        failed: false,
    };
    let probe = probe_mailbox
        .map(|p| p.trim().to_lowercase())
        .or_else(|| settings.probe_mailbox.clone());

    // 1. config
    let who = source.client().transport().who();
    let mut detail = format!(
        "profile `{}`: {} authentication as {who}, {}, RequestServerVersion {}",
        settings.name,
        settings.auth.kind(),
        if settings.impersonation {
            "ExchangeImpersonation"
        } else {
            "delegate access"
        },
        settings.server_version
    );
    if let Some(p) = &probe {
        detail.push_str(&format!(", probe mailbox {p}"));
    }
    let expiry = settings.secret_expires.map(|d| {
        calpump_backend_common::expiry::check_date(
            "the profile's secret (secret_expires)",
            d,
            Utc::now().date_naive(),
        )
    });
    let cert_expiry = match &settings.auth {
        AuthSettings::OAuth(o) => o.expiry(),
        _ => Vec::new(),
    };
    let worst = expiry
        .into_iter()
        .chain(cert_expiry)
        .filter_map(|s| s.diagnostic)
        .max_by_key(|d| d.code() == general::SECRET_EXPIRED.code);
    match worst {
        Some(d) if d.code() == general::SECRET_EXPIRED.code => {
            steps.push(
                "config",
                "Configuration and secrets",
                StepOutcome::Failed { diagnostic: d },
            );
        }
        Some(d) => steps.push(
            "config",
            "Configuration and secrets",
            StepOutcome::Warning {
                detail,
                diagnostic: d,
            },
        ),
        None => steps.push(
            "config",
            "Configuration and secrets",
            StepOutcome::Passed { detail },
        ),
    }

    // 2. autodiscover
    let mut url: Option<Url> = None;
    if steps.runs("autodiscover", "Autodiscover") {
        match &settings.endpoint {
            Endpoint::Static(u) => {
                steps.push(
                    "autodiscover",
                    "Autodiscover",
                    StepOutcome::Skipped {
                        reason: format!("not configured: the profile names the EWS URL {u}"),
                    },
                );
                url = Url::parse(u).ok();
            }
            Endpoint::Autodiscover { address, .. } => match source.resolve_url(None).await {
                Ok((found, how)) => {
                    let via = how
                        .as_ref()
                        .map(|d| format!(" via {}", d.via))
                        .unwrap_or_default();
                    steps.push(
                        "autodiscover",
                        "Autodiscover",
                        StepOutcome::Passed {
                            detail: format!(
                                "EWS URL for {address}: {}{via} (store it as `url` to skip Autodiscover)",
                                display_url(&found)
                            ),
                        },
                    );
                    url = Some(found);
                }
                Err(e) => steps.push("autodiscover", "Autodiscover", failed(e)),
            },
        }
    }

    // 3. DNS + TLS: an unauthenticated request; any HTTP answer means the transport works.
    if steps.runs("dns-tls", "DNS, connection and TLS") {
        match &url {
            None => steps.push(
                "dns-tls",
                "DNS, connection and TLS",
                failed(SourceError::new(Diagnostic::new(
                    &general::INTERNAL,
                    "no EWS URL to test",
                ))),
            ),
            Some(u) => {
                let http = source.client().transport().http();
                let request = http.reqwest().get(u.clone());
                match http.send("connect", request).await {
                    Ok(response) => steps.push(
                        "dns-tls",
                        "DNS, connection and TLS",
                        StepOutcome::Passed {
                            detail: format!(
                                "{} answered HTTP {}{}",
                                display_url(u),
                                response.status.as_u16(),
                                if u.scheme() == "https" {
                                    " over verified TLS"
                                } else {
                                    " (plain HTTP to loopback)"
                                }
                            ),
                        },
                    ),
                    Err(e) => steps.push("dns-tls", "DNS, connection and TLS", failed(e)),
                }
            }
        }
    }

    // 4. auth
    let auth_title = match &settings.auth {
        AuthSettings::OAuth(_) => "OAuth token",
        AuthSettings::Ntlm { .. } => "NTLM handshake",
        AuthSettings::Basic { .. } => "Basic authentication",
    };
    if steps.runs("auth", auth_title)
        && let Some(u) = &url
    {
        let outcome = auth_step(source, u, probe.as_deref()).await;
        steps.push("auth", auth_title, outcome);
    }

    // 5. first call
    let Some(mailbox) = probe else {
        for (id, title) in [
            ("first-call", "First call: GetFolder calendar"),
            ("mailbox-access", "Mailbox access"),
        ] {
            steps.list.push(step(
                id,
                title,
                StepOutcome::Skipped {
                    reason: "no probe mailbox: pass one or set `probe_mailbox`".to_string(),
                },
            ));
        }
        return steps.list;
    };
    let first_title = format!("First call: GetFolder calendar of {mailbox}");
    if steps.runs("first-call", &first_title)
        && let Some(u) = &url
    {
        match source.probe_get_folder(u, &mailbox).await {
            Ok(folder) => steps.push(
                "first-call",
                &first_title,
                StepOutcome::Passed {
                    detail: format!(
                        "calendar folder found, {} items, {} sub-folders{}",
                        folder
                            .total_count
                            .map_or_else(|| "?".to_string(), |n| n.to_string()),
                        folder
                            .child_folder_count
                            .map_or_else(|| "?".to_string(), |n| n.to_string()),
                        source
                            .client()
                            .server_version_seen()
                            .map(|v| format!("; Exchange {}", v.describe()))
                            .unwrap_or_default()
                    ),
                },
            ),
            Err(e) => steps.push("first-call", &first_title, failed(e)),
        }
    }

    // 6. impersonation / mailbox access
    let (id, title) = if settings.impersonation {
        ("impersonation", format!("Impersonation of {mailbox}"))
    } else {
        ("mailbox-access", format!("Delegate access to {mailbox}"))
    };
    if steps.runs(id, &title)
        && let Some(u) = &url
    {
        let now = Utc::now();
        let window = Window {
            start: now - Duration::hours(12),
            end: now + Duration::hours(36),
        };
        match source.probe_read(u, &mailbox, &window).await {
            Ok((events, skipped)) => {
                let detail = format!(
                    "read {} events around today{}",
                    events.len(),
                    if skipped > 0 {
                        format!(", {skipped} items without a global object id skipped")
                    } else {
                        String::new()
                    }
                );
                steps.push(id, &title, StepOutcome::Passed { detail });
            }
            Err(e) => steps.push(id, &title, failed(e)),
        }
    }
    steps.list
}

async fn auth_step(source: &EwsSource, url: &Url, probe: Option<&str>) -> StepOutcome {
    let transport = source.client().transport();
    let mut detail = String::new();
    if let AuthSettings::OAuth(_) = &source.settings().auth {
        match transport.token().await {
            Ok(Some(token)) => {
                let claims = token.claims();
                let perms: Vec<String> = claims
                    .as_ref()
                    .map(|c| c.permissions().map(str::to_string).collect())
                    .unwrap_or_default();
                detail = format!(
                    "token for {} (expires in {} min), permissions: {}",
                    claims
                        .as_ref()
                        .and_then(|c| c.audience.clone())
                        .unwrap_or_else(|| "?".to_string()),
                    token.expires_in().as_secs() / 60,
                    if perms.is_empty() {
                        "none".to_string()
                    } else {
                        perms.join(", ")
                    }
                );
                let wanted = if source.settings().auth.app_only() {
                    "full_access_as_app"
                } else {
                    "EWS.AccessAsUser.All"
                };
                if let Some(c) = &claims
                    && !c.grants(wanted)
                {
                    // A permission-type failure: `profile test --wait` retries it while the
                    // admin's consent replicates.
                    return StepOutcome::Failed {
                        diagnostic: Diagnostic::new(
                            &ews::TOKEN_LACKS_PERMISSION,
                            format!("{detail}; {wanted} is missing"),
                        ),
                    };
                }
            }
            Ok(None) => {}
            Err(e) => return failed(e),
        }
    }
    // An authenticated request; any EWS answer (even an error) proves the credentials work.
    let target = probe.unwrap_or("calpump-probe@invalid.example");
    match source.probe_resolve(url, target).await {
        Ok(_) => {}
        Err(e)
            if e.code() == ews::UNAUTHORIZED.code
                || e.code() == ews::TOKEN_LACKS_PERMISSION.code
                || e.code().starts_with("net.")
                || e.code().starts_with("http.")
                || e.code() == ews::EWS_DISABLED.code =>
        {
            return failed(e);
        }
        Err(e) => {
            tracing::debug!(
                code = e.code(),
                "ResolveNames during the auth step failed (credentials accepted)"
            );
        }
    }
    let scheme = transport.scheme();
    let who = transport.who();
    StepOutcome::Passed {
        detail: if detail.is_empty() {
            format!("{scheme} accepted for {who} by {}", display_url(url))
        } else {
            format!("{detail}; accepted by {}", display_url(url))
        },
    }
}
