//! `calpump migrate plan`: whether a target profile can read every mailbox of a route
//! ([`calpump_engine::migrate::plan_route`]), printed per mailbox ✓ or ✗ with the catalogue's
//! reason; then what is missing and how to grant it — admin consent, the application
//! permissions (with the `az` lines), the RBAC for Applications scope or the application access
//! policy (with the PowerShell lines) — and for mailboxes still on-premises the split of the
//! route as TOML. `--write-profile` first derives the Graph profile (`derive.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use calpump_engine::config::{Config, RouteConfig};
use calpump_engine::diagnostics::Lang;
use calpump_engine::migrate::{
    CALENDARS_READ, Need, PLACE_READ_ALL, Permission, RoutePlan, RouteSplit, plan_route,
};
use calpump_engine::runner::route_window;
use calpump_engine::source::{ProbeStep, Source, StepOutcome};
use chrono::Utc;
use serde_json::{Value, json};
use toml_edit::{DocumentMut, Item, Table};

use super::derive::derive_graph_profile;
use super::{
    check_profile, diag_json, diag_line, read_text, route_of, set_string, target_of, write_config,
};
use crate::cli::{Global, MigratePlanArgs};
use crate::error::{CliError, Result};
use crate::i18n::tr;

/// Microsoft Graph's application id (the `--api` of `az ad app permission add`).
const GRAPH_API: &str = "00000003-0000-0000-c000-000000000000";

/// The concrete commands that grant a need (`client` = the app's client id).
fn commands(need: &Need, client: &str, tenant: &str) -> Vec<String> {
    let consent = format!("az ad app permission admin-consent --id {client}");
    let add = |p: Permission| {
        format!(
            "az ad app permission add --id {client} --api {GRAPH_API} --api-permissions {}=Role   # {} (application)",
            p.id, p.name
        )
    };
    match need {
        Need::Token(_) | Need::Other { .. } => Vec::new(),
        Need::Consent(_) => vec![
            add(CALENDARS_READ),
            add(PLACE_READ_ALL),
            consent,
            format!(
                "# or: Entra admin center > App registrations > {client} > API permissions > Grant admin consent for {tenant}"
            ),
        ],
        Need::Permission { permission, .. } => vec![add(*permission), consent],
        Need::Scope { mailboxes, .. } => {
            let list: Vec<String> = mailboxes.iter().map(|m| format!("  \"{m}\"")).collect();
            let first = mailboxes.first().map(String::as_str).unwrap_or("<mailbox>");
            vec![
                "# Exchange Online PowerShell (Connect-ExchangeOnline). RBAC for Applications:".to_string(),
                format!("New-ServicePrincipal -AppId {client} -ObjectId <object id of the enterprise app> -DisplayName \"calpump\""),
                "New-ManagementScope -Name \"calpump-rooms\" -RecipientRestrictionFilter \"RecipientTypeDetails -eq 'RoomMailbox'\"".to_string(),
                format!("New-ManagementRoleAssignment -App {client} -Role \"Application Calendars.Read\" -CustomResourceScope \"calpump-rooms\""),
                format!("Test-ServicePrincipalAuthorization -Identity {client} -Resource {first}"),
                "# (scope by group instead: -RecipientRestrictionFilter \"MemberOfGroup -eq '<distinguished name of the group>'\")".to_string(),
                "# Application access policy (the older mechanism): add the mailboxes to the policy's group".to_string(),
                format!("$mailboxes = @(\n{}\n)", list.join(",\n")),
                "$mailboxes | ForEach-Object { Add-DistributionGroupMember -Identity \"<the policy's group>\" -Member $_ }".to_string(),
                format!("Test-ApplicationAccessPolicy -Identity {first} -AppId {client}"),
            ]
        }
        Need::OnPrem { .. } => Vec::new(),
    }
}

fn need_title(need: &Need, lang: Lang) -> String {
    let n = need.mailboxes().len();
    match need {
        Need::Token(_) => tr!(lang, "No access token", "Kein Zugriffstoken").to_string(),
        Need::Consent(_) => tr!(
            lang,
            "Admin consent for the app's application permissions",
            "Administratorzustimmung für die Anwendungsberechtigungen der App"
        )
        .to_string(),
        Need::Permission { permission, .. } => tr!(
            lang,
            format!(
                "Application permission {} (Microsoft Graph)",
                permission.name
            ),
            format!(
                "Anwendungsberechtigung {} (Microsoft Graph)",
                permission.name
            )
        ),
        Need::Scope { .. } => tr!(
            lang,
            format!(
                "Mailboxes outside the app's scope (RBAC for Applications / application access policy): {n}"
            ),
            format!(
                "Postfächer außerhalb des Bereichs der App (RBAC für Anwendungen / Anwendungszugriffsrichtlinie): {n}"
            )
        ),
        Need::OnPrem { .. } => tr!(
            lang,
            format!("Mailboxes still on-premises (Graph cannot read them): {n}"),
            format!("Postfächer noch lokal (Graph kann sie nicht lesen): {n}")
        ),
        Need::Other { .. } => tr!(
            lang,
            format!("Mailboxes that cannot be read: {n}"),
            format!("Postfächer, die sich nicht lesen lassen: {n}")
        ),
    }
}

/// The route split for mailboxes still on-premises: the route itself moves to `to` without
/// them; a new route `<name>-onprem` keeps them on the current profile. As TOML, from the
/// route's own table (its other keys kept).
fn split_toml(
    text: &str,
    route: &RouteConfig,
    to: &str,
    split: &RouteSplit,
    lang: Lang,
) -> Option<String> {
    let doc: DocumentMut = text.parse().ok()?;
    let original: Table = match doc.get("routes")? {
        Item::ArrayOfTables(tables) => tables
            .iter()
            .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(route.name.as_str()))?
            .clone(),
        Item::Value(toml_edit::Value::Array(array)) => array
            .iter()
            .filter_map(|v| v.as_inline_table())
            .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(route.name.as_str()))?
            .clone()
            .into_table(),
        _ => return None,
    };
    let strings = |list: &[String]| {
        let mut a = toml_edit::Array::new();
        for s in list {
            a.push(s.as_str());
        }
        a
    };
    let mut cloud = original.clone();
    cloud.decor_mut().clear();
    set_string(&mut cloud, "profile", to);
    if split.list_rooms {
        // Some on-premises mailboxes came from a room list: list the readable rooms instead.
        cloud.remove("room_lists");
        cloud.insert("mailboxes", toml_edit::value(strings(&split.mailboxes)));
    } else if split.mailboxes.is_empty() {
        cloud.remove("mailboxes");
    } else {
        cloud.insert("mailboxes", toml_edit::value(strings(&split.mailboxes)));
    }
    if cloud.get("shadow_profile").and_then(|v| v.as_str()) == Some(to) {
        cloud.remove("shadow_profile");
    }
    let mut ews = original;
    ews.decor_mut().clear();
    set_string(&mut ews, "name", &format!("{}-onprem", route.name));
    ews.remove("room_lists");
    ews.remove("shadow_profile");
    ews.insert("mailboxes", toml_edit::value(strings(&split.onprem)));

    let mut out = DocumentMut::new();
    let mut tables = toml_edit::ArrayOfTables::new();
    tables.push(cloud);
    tables.push(ews);
    out.insert("routes", Item::ArrayOfTables(tables));
    let mut body = out.to_string();
    // Arrays of mailboxes one per line.
    body = body.replace("\", \"", "\",\n  \"");
    let header = tr!(
        lang,
        format!(
            "# Proposed split of route \"{name}\": the mailboxes Graph can read move to profile \"{to}\";\n# the on-premises ones stay on \"{from}\" in a route of their own.\n# Database sinks hold those mailboxes' rows under route \"{name}\"; \"{name}-onprem\" writes them anew:\n# soft-delete the old ones (route = '{name}' AND mailbox IN the list below) after its first sync.\n",
            name = route.name,
            from = route.profile
        ),
        format!(
            "# Vorgeschlagene Aufteilung der Route \"{name}\": Die Postfächer, die Graph lesen kann, gehen zu Profil \"{to}\";\n# die lokalen bleiben in einer eigenen Route auf \"{from}\".\n# Datenbank-Senken führen deren Zeilen unter Route \"{name}\"; \"{name}-onprem\" schreibt sie neu:\n# die alten (route = '{name}' AND mailbox IN die Liste unten) nach deren erster Synchronisierung weich löschen.\n",
            name = route.name,
            from = route.profile
        )
    );
    Some(format!("{header}{body}"))
}

fn step_line(step: &ProbeStep, lang: Lang) -> String {
    let title = crate::commands::profile::step_title(step, lang);
    let step = &ProbeStep {
        title,
        ..step.clone()
    };
    match &step.outcome {
        StepOutcome::Passed { detail } => format!("✓ {}: {detail}", step.title),
        StepOutcome::Warning { detail, diagnostic } => {
            format!(
                "⚠ {}: {detail} — {}",
                step.title,
                diag_line(diagnostic, lang)
            )
        }
        StepOutcome::Failed { diagnostic } => {
            format!("✗ {}: {}", step.title, diag_line(diagnostic, lang))
        }
        StepOutcome::Skipped { reason } => format!("– {}: {reason}", step.title),
    }
}

fn step_json(step: &ProbeStep, lang: Lang) -> Value {
    let mut v = json!({ "id": step.id, "title": step.title });
    match &step.outcome {
        StepOutcome::Passed { detail } => {
            v["status"] = json!("passed");
            v["detail"] = json!(detail);
        }
        StepOutcome::Warning { detail, diagnostic } => {
            v["status"] = json!("warning");
            v["detail"] = json!(detail);
            v["diagnostic"] = diag_json(diagnostic, lang);
        }
        StepOutcome::Failed { diagnostic } => {
            v["status"] = json!("failed");
            v["diagnostic"] = diag_json(diagnostic, lang);
        }
        StepOutcome::Skipped { reason } => {
            v["status"] = json!("skipped");
            v["detail"] = json!(reason);
        }
    }
    v
}

pub async fn plan(global: &Global, args: &MigratePlanArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let path = &global.config;
    let mut config = crate::setup::load_config(path)?;
    let route = route_of(&config, &args.route, lang)?;
    let mut written_notes: Vec<String> = Vec::new();
    let to: String = match (&args.write_profile, &args.to) {
        (Some(name), Some(to)) if name != to => {
            return Err(CliError::usage(tr!(
                lang,
                format!("--write-profile {name} and --to {to} name different profiles"),
                format!("--write-profile {name} und --to {to} nennen verschiedene Profile")
            )));
        }
        (Some(name), _) => {
            let text = read_text(path)?;
            let (new_text, notes) = derive_graph_profile(&text, &route.profile, name, lang)?;
            let (parsed, issues) = Config::parse(&new_text, Some(path));
            if let Some(issue) = issues.iter().find(|i| i.is_error()) {
                return Err(CliError::failure(format!(
                    "the derived profile would make the configuration invalid; nothing written: {issue}"
                )));
            }
            config = parsed;
            for issue in check_profile(&config, name, lang)? {
                written_notes.push(issue.to_string());
            }
            write_config(path, &new_text)?;
            written_notes.extend(notes);
            name.clone()
        }
        (None, Some(to)) => to.clone(),
        (None, None) => {
            return Err(CliError::usage("give --to PROFILE or --write-profile NAME"));
        }
    };
    target_of(&config, &route, &to, lang)?;
    let target_settings = &config.profiles[&to].settings;
    let client = target_settings
        .get("client_id")
        .and_then(|v| v.as_str())
        .unwrap_or("<client-id>")
        .to_string();
    let tenant = target_settings
        .get("tenant")
        .and_then(|v| v.as_str())
        .unwrap_or("<tenant>")
        .to_string();
    let current: Arc<dyn Source> = crate::setup::build_source(&config, &route.profile)?;
    let target: Arc<dyn Source> = crate::setup::build_source(&config, &to)?;
    let window = route_window(&route, Utc::now());
    let plan = plan_route(&current, &target, &to, &route, window).await;
    let split = match &plan.split {
        Some(split) => split_toml(&read_text(path)?, &route, &to, split, lang),
        None => None,
    };
    let ready = plan.ready();
    let (lists, checks, needs, steps) = (&plan.lists, &plan.checks, &plan.needs, &plan.steps);
    let unresolved = plan.unresolved();
    let readable = plan.readable();

    if args.json {
        let doc = json!({
            "route": route.name,
            "current": { "profile": route.profile, "backend": current.backend() },
            "target": { "profile": to, "backend": target.backend(), "client_id": client },
            "window": window,
            "ready": ready,
            "profile_written": args.write_profile,
            "notes": written_notes,
            "resolved_through_target": plan.resolved_through_target,
            "steps": steps.iter().map(|s| step_json(s, lang)).collect::<Vec<_>>(),
            "route_errors": plan.resolved.route_errors.iter().map(|d| diag_json(d, lang)).collect::<Vec<_>>(),
            "room_lists": lists.iter().map(|l| json!({
                "room_list": l.list,
                "ok": l.error.is_none(),
                "rooms": l.rooms,
                "error": l.error.as_ref().map(|d| diag_json(d, lang)),
            })).collect::<Vec<_>>(),
            "unresolved": unresolved.iter().map(|(a, d)| json!({
                "address": a, "error": diag_json(d, lang),
            })).collect::<Vec<_>>(),
            "summary": { "mailboxes": checks.len(), "readable": readable },
            "mailboxes": checks.iter().map(|c| json!({
                "address": c.info.address,
                "name": c.info.name,
                "ok": c.error.is_none(),
                "events": c.events,
                "error": c.error.as_ref().map(|d| diag_json(d, lang)),
            })).collect::<Vec<_>>(),
            "needs": needs.iter().map(|n| json!({
                "kind": n.kind(),
                "title": need_title(n, lang),
                "permission": n.permission().map(|p| p.name),
                "diagnostic": diag_json(n.diagnostic(), lang),
                "mailboxes": n.mailboxes(),
                "commands": commands(n, &client, &tenant),
            })).collect::<Vec<_>>(),
            "split": split,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print_plan(&PlanView {
            route: &route,
            to: &to,
            to_backend: target.backend(),
            current_backend: current.backend(),
            client: &client,
            tenant: &tenant,
            written: args.write_profile.as_deref(),
            notes: &written_notes,
            plan: &plan,
            split: split.as_deref(),
            lang,
        });
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct PlanView<'a> {
    route: &'a RouteConfig,
    to: &'a str,
    to_backend: &'a str,
    current_backend: &'a str,
    client: &'a str,
    tenant: &'a str,
    written: Option<&'a str>,
    notes: &'a [String],
    plan: &'a RoutePlan,
    /// The split as TOML.
    split: Option<&'a str>,
    lang: Lang,
}

fn print_plan(v: &PlanView<'_>) {
    let lang = v.lang;
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "migrate plan: route {} — {} ({}) → {} ({})",
                v.route.name, v.route.profile, v.current_backend, v.to, v.to_backend
            ),
            format!(
                "migrate plan: Route {} — {} ({}) → {} ({})",
                v.route.name, v.route.profile, v.current_backend, v.to, v.to_backend
            )
        )
    );
    if let Some(name) = v.written {
        println!(
            "{}",
            tr!(
                lang,
                format!("✓ profile `{name}` written into the configuration; still to do:"),
                format!("✓ Profil `{name}` in die Konfiguration geschrieben; noch zu tun:")
            )
        );
        for note in v.notes {
            println!("    • {note}");
        }
    }
    println!("\n{}", tr!(lang, "Connection:", "Verbindung:"));
    for step in &v.plan.steps {
        println!("  {}", step_line(step, lang));
    }
    if !v.plan.lists.is_empty() {
        println!(
            "\n{}",
            tr!(
                lang,
                "Room lists (Place.Read.All):",
                "Raumlisten (Place.Read.All):"
            )
        );
        for l in &v.plan.lists {
            match (&l.rooms, &l.error) {
                (Some(n), _) => println!(
                    "  ✓ {} — {}",
                    l.list,
                    tr!(lang, format!("{n} rooms"), format!("{n} Räume"))
                ),
                (_, Some(d)) => println!("  ✗ {} — {}", l.list, diag_line(d, lang)),
                _ => {}
            }
        }
    }
    for d in &v.plan.resolved.route_errors {
        println!("  ✗ {}", diag_line(d, lang));
    }
    let readable = v.plan.checks.iter().filter(|c| c.error.is_none()).count();
    println!(
        "\n{}",
        tr!(
            lang,
            format!(
                "Mailboxes ({readable} of {} readable through {}):",
                v.plan.checks.len(),
                v.to
            ),
            format!(
                "Postfächer ({readable} von {} über {} lesbar):",
                v.plan.checks.len(),
                v.to
            )
        )
    );
    for c in &v.plan.checks {
        match &c.error {
            None => println!(
                "  ✓ {}  {}",
                c.info.address,
                tr!(
                    lang,
                    format!("{} events", c.events),
                    format!("{} Termine", c.events)
                )
            ),
            Some(d) => println!(
                "  ✗ {}  [{}] {}",
                c.info.address,
                d.code(),
                d.info().texts(lang).title
            ),
        }
    }
    for (address, d) in v.plan.unresolved() {
        println!(
            "  ✗ {address}  {} {}",
            tr!(
                lang,
                format!("(not found through {}):", v.route.profile),
                format!("(über {} nicht gefunden):", v.route.profile)
            ),
            diag_line(d, lang)
        );
    }
    if !v.plan.needs.is_empty() {
        println!(
            "\n{}",
            tr!(
                lang,
                "What is missing and how to grant it:",
                "Was fehlt und wie es erteilt wird:"
            )
        );
    }
    for (i, need) in v.plan.needs.iter().enumerate() {
        let d = need.diagnostic();
        let t = d.info().texts(lang);
        println!("\n{}. {} [{}]", i + 1, need_title(need, lang), d.code());
        if !d.detail().is_empty() {
            println!("   {}", d.detail());
        }
        println!("   {}: {}", tr!(lang, "Cause", "Ursache"), t.cause);
        println!("   {}: {}", tr!(lang, "Remedy", "Abhilfe"), t.remedy);
        let mailboxes = need.mailboxes();
        if !mailboxes.is_empty() {
            println!(
                "   {}: {}",
                tr!(lang, "Mailboxes", "Postfächer"),
                mailboxes.join(", ")
            );
        }
        let lines = commands(need, v.client, v.tenant);
        if !lines.is_empty() {
            println!("   {}", tr!(lang, "Commands:", "Befehle:"));
            for line in lines {
                for l in line.lines() {
                    println!("     {l}");
                }
            }
        }
        if let Some(note) = d.info().replication_note(lang) {
            println!("   {note}");
        }
    }
    if let Some(split) = v.split {
        println!(
            "\n{}",
            tr!(
                lang,
                "Mixed tenant — keep the on-premises mailboxes on EWS: replace the route with these two (calpump.toml):",
                "Gemischter Mandant — die lokalen Postfächer bleiben bei EWS: die Route durch diese zwei ersetzen (calpump.toml):"
            )
        );
        println!("{split}");
    }
    println!(
        "\n{}",
        if v.plan.ready() {
            tr!(
                lang,
                format!(
                    "Ready: every mailbox can be read through {}. Next: `calpump migrate verify --route {} --to {}`.",
                    v.to, v.route.name, v.to
                ),
                format!(
                    "Bereit: Jedes Postfach ist über {} lesbar. Weiter mit `calpump migrate verify --route {} --to {}`.",
                    v.to, v.route.name, v.to
                )
            )
        } else if v.plan.only_split_missing() {
            tr!(
                lang,
                format!(
                    "Not ready as one route: apply the split above, then `calpump migrate verify --route {} --to {}`.",
                    v.route.name, v.to
                ),
                format!(
                    "Als eine Route nicht bereit: die Aufteilung oben übernehmen, dann `calpump migrate verify --route {} --to {}`.",
                    v.route.name, v.to
                )
            )
        } else {
            tr!(
                lang,
                format!(
                    "Not ready: {} of {} mailboxes cannot be read through {} yet. After granting, run this plan again (permission changes take minutes to reach Exchange).",
                    v.plan.checks.len() - readable + v.plan.unresolved().len(),
                    v.plan.checks.len() + v.plan.unresolved().len(),
                    v.to
                ),
                format!(
                    "Nicht bereit: {} von {} Postfächern sind über {} noch nicht lesbar. Nach dem Erteilen diesen Plan erneut ausführen (Berechtigungsänderungen brauchen Minuten bis Exchange).",
                    v.plan.checks.len() - readable + v.plan.unresolved().len(),
                    v.plan.checks.len() + v.plan.unresolved().len(),
                    v.to
                )
            )
        }
    );
}

#[cfg(test)]
mod tests {
    use super::super::TEST_CONFIG as CONFIG;
    use super::*;

    #[test]
    fn the_split_keeps_the_route_name_on_graph_and_the_onprem_mailboxes_on_ews() {
        let (config, _) = Config::parse(CONFIG, None);
        let route = config.route("rooms").expect("route").clone();
        let split = RouteSplit {
            onprem: vec!["room-onprem@contoso.com".into()],
            mailboxes: vec!["room-9@contoso.com".into()],
            list_rooms: false,
        };
        let toml = split_toml(CONFIG, &route, "cloud", &split, Lang::En).expect("split");
        let body: String = toml
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let doc: toml::Table = body.parse().expect("toml");
        let routes = doc["routes"].as_array().expect("routes");
        assert_eq!(routes[0]["name"].as_str(), Some("rooms"));
        assert_eq!(routes[0]["profile"].as_str(), Some("cloud"));
        assert!(routes[0].get("shadow_profile").is_none());
        assert_eq!(routes[0]["mailboxes"].as_array().map(Vec::len), Some(1));
        assert_eq!(routes[0]["room_lists"][0].as_str(), Some("Building 1"));
        assert_eq!(routes[1]["name"].as_str(), Some("rooms-onprem"));
        assert_eq!(routes[1]["profile"].as_str(), Some("online"));
        assert_eq!(
            routes[1]["mailboxes"][0].as_str(),
            Some("room-onprem@contoso.com")
        );
        assert!(routes[1].get("room_lists").is_none());
    }
}
