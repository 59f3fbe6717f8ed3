//! What `calpump migrate plan` decides: whether a target profile can read every mailbox of a
//! route, what it still needs (admin consent, an application permission, a mailbox scope, …)
//! and, for mailboxes still on-premises, how the route splits. No output and no file here: the
//! binary renders a [`RoutePlan`] (text, `--json`, the `az`/PowerShell lines, the split as TOML).
//!
//! The needs are read from the catalogue codes the target's calls failed with, so any backend
//! whose failures map to those codes is judged alike:
//!
//! | failure | need |
//! |---|---|
//! | the probe's `token` step failed with `graph.NoPermissionsInToken`, or a call did | [`Need::Consent`] (the token carries no roles) |
//! | the probe's `token` step failed otherwise | [`Need::Token`] |
//! | a calendar read refused with `graph.ErrorAccessDenied` | [`Need::Permission`] `Calendars.Read` |
//! | a room list refused with `graph.ErrorAccessDenied` | [`Need::Permission`] `Place.Read.All` |
//! | mailboxes refused with `graph.MailboxOutOfScope` | [`Need::Scope`] (RBAC for Applications / application access policy) |
//! | mailboxes refused with `graph.MailboxNotEnabledForRESTAPI` | [`Need::OnPrem`] (→ a [`RouteSplit`]) |
//! | anything else, grouped by code | [`Need::Other`] |
//!
//! With consent missing, no permission is listed apart: consent covers them.

use std::collections::BTreeSet;
use std::sync::Arc;

use calpump_plugin::Window;
use serde::Serialize;

use super::read::{ResolvedMailboxes, read_mailboxes, resolve_mailboxes};
use crate::config::RouteConfig;
use crate::diagnostics::{Diagnostic, catalogue};
use crate::source::{MailboxInfo, ProbeStep, Source, StepOutcome};

/// A Microsoft Graph application permission: its name and its app role id in Microsoft
/// Graph's service principal (`permissions-reference.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub name: &'static str,
    pub id: &'static str,
}

/// "Read calendars in all mailboxes".
pub const CALENDARS_READ: Permission = Permission {
    name: "Calendars.Read",
    id: "798ee544-9d2d-430c-a058-570e29e34338",
};
/// "Read all company places" (room lists and rooms).
pub const PLACE_READ_ALL: Permission = Permission {
    name: "Place.Read.All",
    id: "913b9306-0ce1-42b8-9137-6a7df690a760",
};

/// What one mailbox's read through the target found.
#[derive(Debug, Clone)]
pub struct MailboxCheck {
    pub info: MailboxInfo,
    /// Events read in the window.
    pub events: usize,
    /// The first failure reading it.
    pub error: Option<Diagnostic>,
}

/// A room list of the route, looked up and listed through the target.
#[derive(Debug, Clone)]
pub struct ListCheck {
    /// As the route names it.
    pub list: String,
    /// Its rooms, when they could be listed.
    pub rooms: Option<usize>,
    pub error: Option<Diagnostic>,
}

/// Something the target profile still needs.
#[derive(Debug, Clone)]
pub enum Need {
    /// The token could not be had.
    Token(Diagnostic),
    /// The token carries no roles: admin consent.
    Consent(Diagnostic),
    /// An application permission the calls were refused for.
    Permission {
        permission: Permission,
        diagnostic: Diagnostic,
    },
    /// Mailboxes outside the app's RBAC for Applications scope / application access policy.
    Scope {
        mailboxes: Vec<String>,
        diagnostic: Diagnostic,
    },
    /// Mailboxes still on-premises.
    OnPrem {
        mailboxes: Vec<String>,
        diagnostic: Diagnostic,
    },
    /// Anything else, by code.
    Other {
        mailboxes: Vec<String>,
        diagnostic: Diagnostic,
    },
}

impl Need {
    /// Its kind as `--json` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Need::Token(_) => "token",
            Need::Consent(_) => "admin_consent",
            Need::Permission { .. } => "permission",
            Need::Scope { .. } => "mailbox_scope",
            Need::OnPrem { .. } => "on_premises",
            Need::Other { .. } => "other",
        }
    }

    /// The failure that shows the need.
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            Need::Token(d) | Need::Consent(d) => d,
            Need::Permission { diagnostic, .. }
            | Need::Scope { diagnostic, .. }
            | Need::OnPrem { diagnostic, .. }
            | Need::Other { diagnostic, .. } => diagnostic,
        }
    }

    /// The mailboxes it concerns (none for the token, consent and permissions: all of them).
    pub fn mailboxes(&self) -> &[String] {
        match self {
            Need::Scope { mailboxes, .. }
            | Need::OnPrem { mailboxes, .. }
            | Need::Other { mailboxes, .. } => mailboxes,
            _ => &[],
        }
    }

    /// The application permission, for [`Need::Permission`].
    pub fn permission(&self) -> Option<Permission> {
        match self {
            Need::Permission { permission, .. } => Some(*permission),
            _ => None,
        }
    }
}

/// The needs, from the probe's token step, the room lists and the mailboxes. See the module
/// documentation.
pub fn needs(steps: &[ProbeStep], lists: &[ListCheck], mailboxes: &[MailboxCheck]) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    let token_failure = steps
        .iter()
        .find(|s| s.id == "token")
        .and_then(|s| match &s.outcome {
            StepOutcome::Failed { diagnostic } => Some(diagnostic.clone()),
            _ => None,
        });
    let mut consent: Option<Diagnostic> = None;
    match token_failure {
        Some(d) if d.code() == catalogue::graph::NO_PERMISSIONS_IN_TOKEN.code => consent = Some(d),
        Some(d) => out.push(Need::Token(d)),
        None => {}
    }
    let mut place: Option<Diagnostic> = None;
    for l in lists {
        match &l.error {
            Some(d) if d.code() == catalogue::graph::ACCESS_DENIED.code => {
                place.get_or_insert_with(|| d.clone());
            }
            Some(d) if d.code() == catalogue::graph::NO_PERMISSIONS_IN_TOKEN.code => {
                consent.get_or_insert_with(|| d.clone());
            }
            _ => {}
        }
    }
    let mut calendars: Option<Diagnostic> = None;
    let mut groups: Vec<(Diagnostic, Vec<String>)> = Vec::new();
    for m in mailboxes {
        let Some(d) = &m.error else { continue };
        if d.code() == catalogue::graph::ACCESS_DENIED.code {
            calendars.get_or_insert_with(|| d.clone());
        } else if d.code() == catalogue::graph::NO_PERMISSIONS_IN_TOKEN.code {
            consent.get_or_insert_with(|| d.clone());
        } else if out
            .iter()
            .any(|n| matches!(n, Need::Token(t) if t.code() == d.code()))
        {
            // The token failure, again for each mailbox.
        } else {
            match groups.iter_mut().find(|(g, _)| g.code() == d.code()) {
                Some((_, list)) => list.push(m.info.address.clone()),
                None => groups.push((d.clone(), vec![m.info.address.clone()])),
            }
        }
    }
    if let Some(d) = consent {
        out.push(Need::Consent(d));
    } else {
        if let Some(d) = calendars {
            out.push(Need::Permission {
                permission: CALENDARS_READ,
                diagnostic: d,
            });
        }
        if let Some(d) = place {
            out.push(Need::Permission {
                permission: PLACE_READ_ALL,
                diagnostic: d,
            });
        }
    }
    for (diagnostic, mailboxes) in groups {
        out.push(
            if diagnostic.code() == catalogue::graph::ODATA_DISABLED.code {
                Need::Scope {
                    mailboxes,
                    diagnostic,
                }
            } else if diagnostic.code() == catalogue::graph::MAILBOX_NOT_ENABLED_FOR_REST.code {
                Need::OnPrem {
                    mailboxes,
                    diagnostic,
                }
            } else {
                Need::Other {
                    mailboxes,
                    diagnostic,
                }
            },
        );
    }
    out
}

/// How a route splits when some of its mailboxes are still on-premises: the route keeps its
/// name and moves to the target without them; a route of their own (`<name>-onprem`) keeps
/// them on the current profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteSplit {
    /// The mailboxes staying on the current profile (lower-case), in the order found.
    pub onprem: Vec<String>,
    /// The mailboxes the moved route names. With [`Self::list_rooms`] these replace its room
    /// lists (its configured mailboxes plus the readable rooms of its lists); otherwise they
    /// are its configured mailboxes without the on-premises ones (empty: no `mailboxes` key).
    pub mailboxes: Vec<String>,
    /// Some on-premises mailboxes came from a room list, so the moved route cannot keep its
    /// room lists: it lists the readable rooms instead.
    pub list_rooms: bool,
}

/// The split for the [`Need::OnPrem`] mailboxes, if any.
pub fn split_of(
    route: &RouteConfig,
    checks: &[MailboxCheck],
    needs: &[Need],
) -> Option<RouteSplit> {
    let onprem: Vec<String> = needs
        .iter()
        .filter(|n| matches!(n, Need::OnPrem { .. }))
        .flat_map(|n| n.mailboxes().to_vec())
        .collect();
    if onprem.is_empty() {
        return None;
    }
    let configured: Vec<String> = route
        .mailboxes
        .iter()
        .map(|m| m.trim().to_lowercase())
        .collect();
    let configured_set: BTreeSet<&str> = configured.iter().map(String::as_str).collect();
    let onprem_set: BTreeSet<&str> = onprem.iter().map(String::as_str).collect();
    let list_rooms = onprem.iter().any(|m| !configured_set.contains(m.as_str()));
    let mut mailboxes: Vec<String> = configured
        .iter()
        .filter(|m| !onprem_set.contains(m.as_str()))
        .cloned()
        .collect();
    if list_rooms {
        mailboxes.extend(
            checks
                .iter()
                .filter(|c| c.error.is_none() && !configured_set.contains(c.info.address.as_str()))
                .map(|c| c.info.address.clone()),
        );
    }
    Some(RouteSplit {
        onprem,
        mailboxes,
        list_rooms,
    })
}

/// Everything `migrate plan` found for a route and a target profile.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// The route's mailboxes (through its own profile, or through the target when the own one
    /// could not list the room lists any more: [`Self::resolved_through_target`]).
    pub resolved: ResolvedMailboxes,
    pub resolved_through_target: bool,
    /// The route's room lists through the target.
    pub lists: Vec<ListCheck>,
    /// The target's connection, step by step (probing the first mailbox it could read).
    pub steps: Vec<ProbeStep>,
    /// Every mailbox read through the target: readable ones first.
    pub checks: Vec<MailboxCheck>,
    pub needs: Vec<Need>,
    pub split: Option<RouteSplit>,
}

impl RoutePlan {
    /// Mailboxes the target read.
    pub fn readable(&self) -> usize {
        self.checks.iter().filter(|c| c.error.is_none()).count()
    }

    /// Configured addresses the route's profile could not look up.
    pub fn unresolved(&self) -> &[(String, Diagnostic)] {
        &self.resolved.failures
    }

    /// The target reads every mailbox and room list of the route, and nothing is missing.
    pub fn ready(&self) -> bool {
        self.needs.is_empty()
            && self.resolved.failures.is_empty()
            && self.lists.iter().all(|l| l.error.is_none())
            && self.resolved.route_errors.is_empty()
            && !self.checks.is_empty()
    }

    /// Not ready only because of mailboxes still on-premises: the [`Self::split`] makes it.
    pub fn only_split_missing(&self) -> bool {
        !self.needs.is_empty()
            && self.resolved.failures.is_empty()
            && self.needs.iter().all(|n| matches!(n, Need::OnPrem { .. }))
    }
}

/// The route's room lists through `target` (profile `to`): each looked up (by address, or by
/// name among the target's room lists) and its rooms listed.
pub async fn check_room_lists(
    target: &dyn Source,
    to: &str,
    route: &RouteConfig,
) -> Vec<ListCheck> {
    let mut lists = Vec::new();
    if route.room_lists.is_empty() {
        return lists;
    }
    let known = if route.room_lists.iter().any(|l| !l.contains('@')) {
        Some(target.room_lists().await)
    } else {
        None
    };
    for wanted in &route.room_lists {
        let address = if wanted.contains('@') {
            Ok(wanted.trim().to_lowercase())
        } else {
            match &known {
                Some(Ok(all)) => all
                    .iter()
                    .find(|l| {
                        l.name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(wanted.trim()))
                            || l.address.eq_ignore_ascii_case(wanted.trim())
                    })
                    .map(|l| l.address.clone())
                    .ok_or_else(|| {
                        Diagnostic::new(
                            &catalogue::general::ROOM_LIST_NOT_FOUND,
                            format!("{to}: no room list `{wanted}`"),
                        )
                    }),
                Some(Err(e)) => Err(e.diagnostic.clone()),
                None => Err(Diagnostic::new(
                    &catalogue::general::INTERNAL,
                    "room lists not listed",
                )),
            }
        };
        let (rooms, error) = match address {
            Ok(address) => match target.rooms(Some(&address)).await {
                Ok(rooms) => (Some(rooms.len()), None),
                Err(e) => (None, Some(e.diagnostic)),
            },
            Err(d) => (None, Some(d)),
        };
        lists.push(ListCheck {
            list: wanted.clone(),
            rooms,
            error,
        });
    }
    lists
}

/// Plans the move of `route` from `current` (its own profile) to `target` (profile `to`): resolves its
/// mailboxes, checks its room lists and reads every mailbox's window through the target (as
/// a sync would; nothing is written), probes the target's connection, and derives the needs
/// and the split.
pub async fn plan_route(
    current: &Arc<dyn Source>,
    target: &Arc<dyn Source>,
    to: &str,
    route: &RouteConfig,
    window: Window,
) -> RoutePlan {
    // The mailboxes, as the route resolves them today (through its own profile; through the
    // target when the current one cannot list the room lists any more).
    let mut resolved = resolve_mailboxes(current.as_ref(), route).await;
    let mut resolved_through_target = false;
    if !resolved.route_errors.is_empty() {
        let again = resolve_mailboxes(target.as_ref(), route).await;
        if again.route_errors.is_empty() {
            resolved = again;
            resolved_through_target = true;
        }
    }
    let lists = check_room_lists(target.as_ref(), to, route).await;
    let reads = read_mailboxes(
        target,
        &route.name,
        &resolved.mailboxes,
        &route.calendars,
        window,
        route.concurrency,
    )
    .await;
    let mut checks: Vec<MailboxCheck> = resolved
        .mailboxes
        .iter()
        .zip(reads)
        .map(|(info, read)| MailboxCheck {
            info: info.clone(),
            events: read.events.len(),
            error: read.errors.first().map(|e| e.diagnostic.clone()),
        })
        .collect();
    // The connection step by step, reading the first mailbox the target could read (a failing
    // probe mailbox would hide the permission step behind its own failure).
    let probe_mailbox = checks
        .iter()
        .find(|c| c.error.is_none())
        .or(checks.first())
        .map(|c| c.info.address.clone());
    let steps = target.probe(probe_mailbox.as_deref()).await;
    checks.sort_by_key(|c| c.error.is_some());
    let needs = needs(&steps, &lists, &checks);
    let split = split_of(route, &checks, &needs);
    RoutePlan {
        resolved,
        resolved_through_target,
        lists,
        steps,
        checks,
        needs,
        split,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::diagnostics::catalogue::graph;

    fn check(
        address: &str,
        error: Option<&'static crate::diagnostics::DiagnosticInfo>,
    ) -> MailboxCheck {
        MailboxCheck {
            info: MailboxInfo {
                address: address.into(),
                name: None,
                kind: crate::source::MailboxKind::Room,
                room_list: None,
            },
            events: 3,
            error: error.map(|e| Diagnostic::new(e, format!("{address}: refused"))),
        }
    }

    fn token_step(outcome: StepOutcome) -> ProbeStep {
        ProbeStep {
            id: "token".into(),
            title: "Token".into(),
            outcome,
        }
    }

    #[test]
    fn refused_calls_name_the_permission_and_consent_covers_them() {
        let passed = token_step(StepOutcome::Passed {
            detail: "ok".into(),
        });
        let lists = [ListCheck {
            list: "Building 1".into(),
            rooms: None,
            error: Some(Diagnostic::new(&graph::ACCESS_DENIED, "places")),
        }];
        let checks = [
            check("a@x.com", None),
            check("b@x.com", Some(&graph::ACCESS_DENIED)),
            check("c@x.com", Some(&graph::ODATA_DISABLED)),
            check("d@x.com", Some(&graph::ODATA_DISABLED)),
            check("e@x.com", Some(&graph::MAILBOX_NOT_ENABLED_FOR_REST)),
        ];
        let found = needs(std::slice::from_ref(&passed), &lists, &checks);
        let kinds: Vec<(&str, Option<&str>, Vec<String>)> = found
            .iter()
            .map(|n| {
                (
                    n.kind(),
                    n.permission().map(|p| p.name),
                    n.mailboxes().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("permission", Some("Calendars.Read"), vec![]),
                ("permission", Some("Place.Read.All"), vec![]),
                (
                    "mailbox_scope",
                    None,
                    vec!["c@x.com".to_string(), "d@x.com".to_string()]
                ),
                ("on_premises", None, vec!["e@x.com".to_string()]),
            ]
        );

        // A token without roles: consent, and no permission listed apart.
        let no_roles = token_step(StepOutcome::Failed {
            diagnostic: Diagnostic::new(&graph::NO_PERMISSIONS_IN_TOKEN, "no roles"),
        });
        let found = needs(&[no_roles], &lists, &checks[..2]);
        assert_eq!(
            found.iter().map(Need::kind).collect::<Vec<_>>(),
            ["admin_consent"]
        );
    }

    #[test]
    fn on_premises_mailboxes_split_the_route() {
        let route = RouteConfig {
            name: "rooms".into(),
            profile: "online".into(),
            shadow_profile: None,
            mailboxes: vec!["Room-9@x.com".into(), "room-onprem@x.com".into()],
            room_lists: vec!["Building 1".into()],
            calendars: crate::config::CalendarSelection::Default,
            window: crate::config::WindowConfig::default(),
            interval: std::time::Duration::from_secs(120),
            sinks: vec!["db".into()],
            concurrency: 4,
            empty_guard: true,
        };
        let onprem = Need::OnPrem {
            mailboxes: vec!["room-onprem@x.com".into()],
            diagnostic: Diagnostic::new(&graph::MAILBOX_NOT_ENABLED_FOR_REST, "on-prem"),
        };
        let checks = [
            check("room-9@x.com", None),
            check("room-1@x.com", None),
            check(
                "room-onprem@x.com",
                Some(&graph::MAILBOX_NOT_ENABLED_FOR_REST),
            ),
        ];
        let split = split_of(&route, &checks, std::slice::from_ref(&onprem)).expect("split");
        assert_eq!(
            split,
            RouteSplit {
                onprem: vec!["room-onprem@x.com".into()],
                mailboxes: vec!["room-9@x.com".into()],
                list_rooms: false
            }
        );
        // An on-premises room of a room list: the moved route lists the readable rooms.
        let from_list = Need::OnPrem {
            mailboxes: vec!["room-2@x.com".into()],
            diagnostic: Diagnostic::new(&graph::MAILBOX_NOT_ENABLED_FOR_REST, "on-prem"),
        };
        let split = split_of(&route, &checks, &[from_list]).expect("split");
        assert!(split.list_rooms);
        assert_eq!(
            split.mailboxes,
            ["room-9@x.com", "room-onprem@x.com", "room-1@x.com"]
        );
        assert!(split_of(&route, &checks, &[]).is_none());
    }
}
