//! `calpump profile test` for a Graph profile: the connection step by step, each step passing,
//! warning or failing with a catalogue diagnostic; after a failure the later steps are skipped.
//!
//! 1. `config` — the credential and its secrets are usable; the secret's or certificate's expiry;
//! 2. `dns-tls` — the sign-in host and the Graph host answer over HTTPS (any HTTP status counts);
//! 3. `token` — a token is issued; its roles (application) or scopes (delegated) are shown;
//! 4. `first-call` — `GET /places/microsoft.graph.room?$top=1`;
//! 5. `mailbox-access` — today's `calendarView` of `probe_mailbox` (skipped without one);
//! 6. `permissions` — the token grants `Calendars.Read` and `Place.Read.All`.

use calpump_backend_common::expiry::Expiry;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::graph;
use calpump_engine::source::{ProbeStep, SourceError, StepOutcome};
use chrono::{Duration, Utc};
use reqwest::Url;

use crate::GraphSource;
use crate::client::GraphClient;

/// The permissions calpump needs (application roles or delegated scopes).
pub const REQUIRED_PERMISSIONS: &[&str] = &["Calendars.Read", "Place.Read.All"];

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

impl GraphSource {
    pub(crate) async fn run_probe(&self, probe_mailbox: Option<&str>) -> Vec<ProbeStep> {
        let mut steps: Vec<ProbeStep> = Vec::new();
        let plan: [(&str, &str); 6] = [
            ("config", "Configuration and secrets"),
            ("dns-tls", "DNS and TLS to the sign-in and Graph hosts"),
            ("token", "Access token from Microsoft Entra ID"),
            ("first-call", "First Graph call (list rooms)"),
            ("mailbox-access", "Read the probe mailbox's calendar"),
            (
                "permissions",
                "Permissions Calendars.Read and Place.Read.All",
            ),
        ];
        let mut token_claims = None;
        for (id, title) in plan {
            if let Some(failed_step) = steps.iter().find(|s| s.outcome.is_failure()) {
                steps.push(step(
                    id,
                    title,
                    StepOutcome::Skipped {
                        reason: format!("step `{}` failed", failed_step.id),
                    },
                ));
                continue;
            }
            let outcome = match id {
                "config" => self.probe_config(),
                "dns-tls" => self.probe_transport().await,
                "token" => match self.client.tokens().token().await {
                    Ok(token) => {
                        let claims = token.claims();
                        let detail = match &claims {
                            Some(c) => {
                                let mut parts = vec![format!(
                                    "token for client {} (tenant {}), valid for {} min",
                                    c.app_id.as_deref().unwrap_or("?"),
                                    c.tenant_id.as_deref().unwrap_or("?"),
                                    token.expires_in().as_secs() / 60
                                )];
                                if !c.roles.is_empty() {
                                    parts.push(format!("roles: {}", c.roles.join(", ")));
                                }
                                if !c.scopes.is_empty() {
                                    parts.push(format!("scopes: {}", c.scopes.join(" ")));
                                }
                                if let Some(user) = &c.user {
                                    parts.push(format!("user {user}"));
                                }
                                parts.join("; ")
                            }
                            None => format!(
                                "token issued (not a JWT; its permissions show in the calls below), valid for {} min",
                                token.expires_in().as_secs() / 60
                            ),
                        };
                        let empty = claims
                            .as_ref()
                            .is_some_and(|c| c.roles.is_empty() && c.scopes.is_empty());
                        token_claims = Some(claims);
                        if empty {
                            StepOutcome::Failed {
                                diagnostic: Diagnostic::new(
                                    &graph::NO_PERMISSIONS_IN_TOKEN,
                                    format!("{detail}; the token has neither roles nor scopes"),
                                ),
                            }
                        } else {
                            StepOutcome::Passed { detail }
                        }
                    }
                    Err(e) => failed(e),
                },
                "first-call" => self.probe_first_call().await,
                "mailbox-access" => match probe_mailbox.or(self.profile.probe_mailbox()) {
                    Some(mailbox) => self.probe_mailbox_access(mailbox).await,
                    None => StepOutcome::Skipped {
                        reason: "no probe mailbox: give one (`calpump profile test NAME --probe ADDRESS`) or set `probe_mailbox` in the profile".to_string(),
                    },
                },
                _ => match token_claims.clone().flatten() {
                    Some(claims) => {
                        let missing = claims.missing(REQUIRED_PERMISSIONS);
                        if missing.is_empty() {
                            StepOutcome::Passed {
                                detail: format!("granted: {}", REQUIRED_PERMISSIONS.join(", ")),
                            }
                        } else {
                            StepOutcome::Failed {
                                diagnostic: Diagnostic::new(
                                    &graph::ACCESS_DENIED,
                                    format!(
                                        "the token lacks {} (it has: {})",
                                        missing.join(", "),
                                        claims.permissions().collect::<Vec<_>>().join(", ")
                                    ),
                                ),
                            }
                        }
                    }
                    None => StepOutcome::Passed {
                        detail: "the token does not list its permissions; the calls above succeeded"
                            .to_string(),
                    },
                },
            };
            steps.push(step(id, title, outcome));
        }
        steps
    }

    fn probe_config(&self) -> StepOutcome {
        let grant = self
            .profile
            .oauth
            .grant()
            .map(|g| g.to_string())
            .unwrap_or_default();
        let mut detail = format!(
            "tenant {}, client {}, grant {grant}, Graph at {}",
            self.profile.oauth.tenant,
            self.profile.oauth.client_id,
            self.profile.graph_url()
        );
        let mut warning = None;
        for status in self.profile.oauth.expiry() {
            match (status.level(), status.diagnostic) {
                (Expiry::Expired, Some(d)) => return StepOutcome::Failed { diagnostic: d },
                (Expiry::Soon, Some(d)) => warning = Some(d),
                _ => detail.push_str(&format!(
                    "; {} has {} days left",
                    status.what, status.days_left
                )),
            }
        }
        match warning {
            Some(diagnostic) => StepOutcome::Warning { detail, diagnostic },
            None => StepOutcome::Passed { detail },
        }
    }

    async fn probe_transport(&self) -> StepOutcome {
        let authority = self.profile.oauth.authority().to_string();
        let mut details = Vec::new();
        for (label, target) in [
            ("sign-in", authority),
            ("Graph", self.profile.graph_url().to_string()),
        ] {
            let url = match Url::parse(&target) {
                Ok(url) => url,
                Err(e) => {
                    return failed(SourceError::new(Diagnostic::new(
                        &calpump_engine::diagnostics::catalogue::general::INTERNAL,
                        format!("{label} URL {target}: {e}"),
                    )));
                }
            };
            let request = self.client.http().reqwest().get(url.clone());
            match self.client.http().send("probe", request).await {
                Ok(response) => details.push(format!(
                    "{label} host {} answers (HTTP {})",
                    url.host_str().unwrap_or("?"),
                    response.status.as_u16()
                )),
                Err(e) => return failed(e),
            }
        }
        StepOutcome::Passed {
            detail: details.join("; "),
        }
    }

    async fn probe_first_call(&self) -> StepOutcome {
        let url = match self.client.absolute(&GraphClient::relative(
            &["places", "microsoft.graph.room"],
            &[("$top", "1")],
        )) {
            Ok(url) => url,
            Err(e) => return failed(e),
        };
        match self
            .client
            .get_once("places.rooms", None, "rooms", &url)
            .await
        {
            Ok(value) => {
                let n = value
                    .get("value")
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, Vec::len);
                StepOutcome::Passed {
                    detail: if n == 0 {
                        "Graph answered; the tenant lists no rooms".to_string()
                    } else {
                        "Graph answered with the tenant's rooms".to_string()
                    },
                }
            }
            Err(e) => failed(e),
        }
    }

    async fn probe_mailbox_access(&self, mailbox: &str) -> StepOutcome {
        let mailbox = mailbox.trim().to_lowercase();
        let now = Utc::now();
        let start = (now - Duration::hours(12))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let end = (now + Duration::hours(36))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let url = match self.client.absolute(&GraphClient::relative(
            &["users", &mailbox, "calendar", "calendarView"],
            &[
                ("startDateTime", &start),
                ("endDateTime", &end),
                ("$select", "id"),
                ("$top", "50"),
            ],
        )) {
            Ok(url) => url,
            Err(e) => return failed(e),
        };
        match self
            .client
            .get_once(
                "calendarView",
                Some(&mailbox),
                &format!("calendarView of {mailbox}"),
                &url,
            )
            .await
        {
            Ok(value) => {
                let n = value
                    .get("value")
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, Vec::len);
                StepOutcome::Passed {
                    detail: format!("read {mailbox}: {n} events in the next day and a half"),
                }
            }
            Err(e) => failed(e),
        }
    }
}
