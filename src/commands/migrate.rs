//! `calpump migrate plan|verify|switch`: moving a route from one profile to another — from an
//! EWS profile to a Microsoft Graph profile — in one sitting.
//!
//! * `plan` reads every mailbox of the route through the target profile (as a sync would, but
//!   writing nothing), checks the token and the room lists, and prints per mailbox ✓ or ✗ with
//!   the catalogue's reason; then what is missing and how to grant it — admin consent, the
//!   application permissions (with the `az` lines), the RBAC for Applications scope or the
//!   application access policy (with the PowerShell lines), and for mailboxes still on-premises
//!   the split of the route into a Graph route and an EWS route (as TOML). `--write-profile`
//!   first derives the Graph profile from the route's EWS Office 365 profile and writes it into
//!   the configuration (toml_edit: nothing else in the file changes).
//! * `verify` compares the route read through both profiles ([`calpump_engine::migrate`]).
//! * `switch` re-points the route in the configuration (toml_edit; comments and layout kept),
//!   moves its state ([`calpump_engine::migrate::move_state`]) and records the switch in the
//!   run history; `--back` undoes the last switch.
//!
//! Exit codes: 0 ready / clean / switched, 1 not ready / not clean / failed, 2 usage.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use calpump_engine::config::{Config, ConfigIssue, RouteConfig};
use calpump_engine::diagnostics::catalogue::graph;
use calpump_engine::diagnostics::{Diagnostic, Lang};
use calpump_engine::migrate::{
    CompareOptions, EventRef, MailboxComparison, MoveSummary, RouteComparison, compare_route,
    last_switch, move_state, read_mailboxes, record_switch, resolve_mailboxes,
};
use calpump_engine::runner::route_window;
use calpump_engine::source::{MailboxInfo, ProbeStep, ProfileContext, Source, StepOutcome};
use chrono::Utc;
use serde_json::{Value, json};
use toml_edit::{DocumentMut, Item, Table, TableLike};

use crate::cli::{Global, MigratePlanArgs, MigrateSwitchArgs, MigrateVerifyArgs};
use crate::error::{CliError, Result};
use crate::i18n::{first_sentence, tr};

/// Microsoft Graph's application id (the `--api` of `az ad app permission add`).
const GRAPH_API: &str = "00000003-0000-0000-c000-000000000000";
/// Application-permission (app role) ids in Microsoft Graph's service principal
/// (`permissions-reference.md`: Calendars.Read "Read calendars in all mailboxes",
/// Place.Read.All "Read all company places").
const CALENDARS_READ: (&str, &str) = ("Calendars.Read", "798ee544-9d2d-430c-a058-570e29e34338");
const PLACE_READ_ALL: (&str, &str) = ("Place.Read.All", "913b9306-0ce1-42b8-9137-6a7df690a760");

fn diag_json(d: &Diagnostic, lang: Lang) -> Value {
    let t = d.info().texts(lang);
    json!({
        "code": d.code(),
        "title": t.title,
        "detail": d.detail(),
        "cause": t.cause,
        "remedy": t.remedy,
    })
}

/// One line for a diagnostic: code, title, first sentence of the remedy.
fn diag_line(d: &Diagnostic, lang: Lang) -> String {
    let t = d.info().texts(lang);
    format!("[{}] {} — {}", d.code(), t.title, first_sentence(t.remedy))
}

fn route_of(config: &Config, name: &str, lang: Lang) -> Result<RouteConfig> {
    config.route(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        CliError::usage(tr!(
            lang,
            format!("no route named `{name}` (known: {})", known.join(", ")),
            format!("keine Route `{name}` (vorhanden: {})", known.join(", "))
        ))
    })
}

fn profile_exists(config: &Config, name: &str, lang: Lang) -> Result<()> {
    if config.profiles.contains_key(name) {
        return Ok(());
    }
    let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
    Err(CliError::usage(tr!(
        lang,
        format!("no profile named `{name}` (known: {})", known.join(", ")),
        format!("kein Profil `{name}` (vorhanden: {})", known.join(", "))
    )))
}

fn backend_of<'a>(config: &'a Config, profile: &str) -> &'a str {
    config
        .profiles
        .get(profile)
        .map(|p| p.backend.as_str())
        .unwrap_or("?")
}

/// The target profile: it exists and is not the route's own.
fn target_of<'a>(config: &Config, route: &RouteConfig, to: &'a str, lang: Lang) -> Result<&'a str> {
    profile_exists(config, to, lang)?;
    if to == route.profile {
        return Err(CliError::usage(tr!(
            lang,
            format!("route `{}` already uses profile `{to}`", route.name),
            format!("Route `{}` verwendet Profil `{to}` bereits", route.name)
        )));
    }
    Ok(to)
}

/// The backend's offline check of a profile; errors refuse the command.
fn check_profile(config: &Config, name: &str, lang: Lang) -> Result<Vec<ConfigIssue>> {
    let Some(p) = config.profiles.get(name) else {
        return Err(CliError::usage(format!("no profile named `{name}`")));
    };
    let factory = crate::backends::find(&p.backend).map_err(|known| {
        CliError::usage(format!(
            "profile `{name}`: unknown backend `{}` (known: {known})",
            p.backend
        ))
    })?;
    let resolver = config.secret_resolver();
    let ctx = ProfileContext {
        name,
        settings: &p.settings,
        secrets: &resolver,
    };
    let issues: Vec<ConfigIssue> = factory
        .check(&ctx)
        .into_iter()
        .map(|i| i.under(&format!("profiles.{name}")))
        .map(|mut i| {
            i.location = config.locate(&i.path);
            i
        })
        .collect();
    let errors: Vec<String> = issues
        .iter()
        .filter(|i| i.is_error())
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(CliError::usage(format!(
            "{}\n{}",
            tr!(
                lang,
                format!("profile `{name}` is not usable:"),
                format!("Profil `{name}` ist nicht verwendbar:")
            ),
            errors.join("\n")
        )));
    }
    Ok(issues)
}

fn when(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn event_line(e: &EventRef) -> String {
    let calendar = if e.calendar == calpump_engine::source::DEFAULT_CALENDAR {
        String::new()
    } else {
        format!(" [{}]", e.calendar)
    };
    format!("\"{}\" {}{calendar}  {}", e.subject, when(e.start), e.key)
}

// ---------------------------------------------------------------------------------------------
// verify

pub async fn verify(global: &Global, args: &MigrateVerifyArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let config = crate::setup::load_config(&global.config)?;
    let route = route_of(&config, &args.route, lang)?;
    let to = target_of(&config, &route, &args.to, lang)?;
    let current = crate::setup::build_source(&config, &route.profile)?;
    let target = crate::setup::build_source(&config, to)?;
    let window = route_window(&route, Utc::now());
    let cmp = compare_route(
        &current,
        &target,
        &route,
        window,
        &CompareOptions {
            concurrency: route.concurrency,
            keep_clean: true,
            shutdown: crate::setup::shutdown_on_signals(),
            ..CompareOptions::default()
        },
    )
    .await;
    let clean = cmp.summary.clean() && cmp.route_errors.is_empty() && !cmp.interrupted;
    let names = Sides {
        current: format!("{} ({})", route.profile, cmp.current_backend),
        target: format!("{to} ({})", cmp.target_backend),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&verify_json(&cmp, &route, to, clean, lang))
                .unwrap_or_default()
        );
    } else {
        print_verify(&cmp, &names, clean, lang);
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct Sides {
    current: String,
    target: String,
}

fn verify_json(
    cmp: &RouteComparison,
    route: &RouteConfig,
    to: &str,
    clean: bool,
    lang: Lang,
) -> Value {
    let errors = |list: &[calpump_engine::migrate::CalendarError]| {
        list.iter()
            .map(|e| {
                let mut d = diag_json(&e.diagnostic, lang);
                d["calendar"] = json!(e.calendar);
                d
            })
            .collect::<Vec<_>>()
    };
    json!({
        "route": cmp.route,
        "current": { "profile": route.profile, "backend": cmp.current_backend },
        "target": { "profile": to, "backend": cmp.target_backend },
        "window": cmp.window,
        "clean": clean,
        "interrupted": cmp.interrupted,
        "summary": {
            "differences": cmp.summary.differences(),
            "mailboxes": cmp.summary.mailboxes,
            "compared": cmp.summary.compared,
            "current_events": cmp.summary.current_events,
            "target_events": cmp.summary.target_events,
            "only_in_current": cmp.summary.only_in_current,
            "only_in_target": cmp.summary.only_in_target,
            "changed": cmp.summary.changed,
            "rewrites": cmp.summary.rewrites,
            "unreadable_current": cmp.summary.unreadable_current,
            "unreadable_target": cmp.summary.unreadable_target,
        },
        "route_errors": cmp.route_errors.iter().map(|d| diag_json(d, lang)).collect::<Vec<_>>(),
        "mailboxes": cmp.mailboxes.iter().map(|m| json!({
            "mailbox": m.mailbox,
            "name": m.name,
            "clean": m.clean(),
            "current_events": m.current_events,
            "target_events": m.target_events,
            "current_errors": errors(&m.current_errors),
            "target_errors": errors(&m.target_errors),
            "only_in_current": m.only_in_current,
            "only_in_target": m.only_in_target,
            "changed": m.changed,
            "rewrites": m.rewrites,
        })).collect::<Vec<_>>(),
    })
}

fn print_mailbox(m: &MailboxComparison, names: &Sides, lang: Lang) {
    let who = match &m.name {
        Some(n) => format!("{n} <{}>", m.mailbox),
        None => m.mailbox.clone(),
    };
    if !m.compared() {
        println!("✗ {who}");
        for (side, errors) in [
            (&names.current, &m.current_errors),
            (&names.target, &m.target_errors),
        ] {
            for e in errors {
                let calendar = if e.calendar.is_empty()
                    || e.calendar == calpump_engine::source::DEFAULT_CALENDAR
                {
                    String::new()
                } else {
                    format!(" ({})", e.calendar)
                };
                println!(
                    "    {}{calendar}: [{}] {}",
                    tr!(
                        lang,
                        format!("not readable through {side}"),
                        format!("nicht lesbar über {side}")
                    ),
                    e.diagnostic.code(),
                    e.diagnostic.info().texts(lang).title
                );
                if !e.diagnostic.detail().is_empty() {
                    println!("      {}", e.diagnostic.detail());
                }
            }
        }
        return;
    }
    let mark = if m.differences() == 0 { "✓" } else { "✗" };
    println!(
        "{mark} {who}  {}",
        tr!(
            lang,
            format!(
                "{} events through {}, {} through {}",
                m.current_events, names.current, m.target_events, names.target
            ),
            format!(
                "{} Termine über {}, {} über {}",
                m.current_events, names.current, m.target_events, names.target
            )
        )
    );
    for e in &m.only_in_current {
        println!(
            "    {} {}",
            tr!(
                lang,
                format!("only in {}:", names.current),
                format!("nur in {}:", names.current)
            ),
            event_line(e)
        );
    }
    for e in &m.only_in_target {
        println!(
            "    {} {}",
            tr!(
                lang,
                format!("only in {}:", names.target),
                format!("nur in {}:", names.target)
            ),
            event_line(e)
        );
    }
    for d in &m.changed {
        println!(
            "    {} {}",
            tr!(lang, "differs:", "weicht ab:"),
            event_line(&d.event)
        );
        for f in &d.fields {
            println!(
                "        {}: {} → {}",
                f.field,
                show(&f.current, lang),
                show(&f.target, lang)
            );
        }
    }
}

fn show(value: &str, lang: Lang) -> String {
    if value.is_empty() {
        tr!(lang, "(none)", "(keiner)").to_string()
    } else {
        format!("\"{value}\"")
    }
}

fn print_verify(cmp: &RouteComparison, names: &Sides, clean: bool, lang: Lang) {
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "migrate verify: route {} — {} compared with {}, window {} – {}",
                cmp.route,
                names.current,
                names.target,
                when(cmp.window.start),
                when(cmp.window.end)
            ),
            format!(
                "migrate verify: Route {} — {} verglichen mit {}, Fenster {} – {}",
                cmp.route,
                names.current,
                names.target,
                when(cmp.window.start),
                when(cmp.window.end)
            )
        )
    );
    for d in &cmp.route_errors {
        println!("✗ {}", diag_line(d, lang));
    }
    let mut clean_mailboxes = 0;
    for m in &cmp.mailboxes {
        if m.clean() {
            clean_mailboxes += 1;
        } else {
            print_mailbox(m, names, lang);
        }
    }
    if clean_mailboxes > 0 {
        println!(
            "✓ {}",
            tr!(
                lang,
                format!("{clean_mailboxes} mailboxes read alike through both profiles"),
                format!("{clean_mailboxes} Postfächer lesen sich über beide Profile gleich")
            )
        );
    }
    let s = &cmp.summary;
    if s.rewrites > 0 {
        let mut fields: Vec<String> = cmp
            .mailboxes
            .iter()
            .flat_map(|m| &m.rewrites)
            .flat_map(|d| d.fields.iter().map(|f| f.field.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        fields.sort();
        println!(
            "⚠ {}",
            tr!(
                lang,
                format!(
                    "{} events are equal after normalisation but their content hash differs ({}): the first sync after a switch rewrites them once in the sinks — a parity defect of a backend",
                    s.rewrites,
                    fields.join(", ")
                ),
                format!(
                    "{} Termine sind nach der Normalisierung gleich, ihr Inhalts-Hash aber nicht ({}): Die erste Synchronisierung nach einer Umstellung schreibt sie einmal neu in die Senken — ein Paritätsfehler eines Backends",
                    s.rewrites,
                    fields.join(", ")
                )
            )
        );
        for m in cmp
            .mailboxes
            .iter()
            .filter(|m| !m.rewrites.is_empty())
            .take(3)
        {
            for d in m.rewrites.iter().take(2) {
                println!("    {}  {}", m.mailbox, event_line(&d.event));
                for f in &d.fields {
                    println!("        {}: {} → {}", f.field, f.current, f.target);
                }
            }
        }
    }
    let verdict = if clean {
        tr!(lang, "clean", "sauber")
    } else if cmp.interrupted {
        tr!(lang, "interrupted", "abgebrochen")
    } else {
        tr!(lang, "NOT clean", "NICHT sauber")
    };
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "Summary: {} mailboxes ({} compared), {} events through {}, {} through {}: {} only in {}, {} only in {}, {} differ; unreadable: {} through {}, {} through {} — {verdict}",
                s.mailboxes,
                s.compared,
                s.current_events,
                names.current,
                s.target_events,
                names.target,
                s.only_in_current,
                names.current,
                s.only_in_target,
                names.target,
                s.changed,
                s.unreadable_current,
                names.current,
                s.unreadable_target,
                names.target
            ),
            format!(
                "Ergebnis: {} Postfächer ({} verglichen), {} Termine über {}, {} über {}: {} nur in {}, {} nur in {}, {} weichen ab; nicht lesbar: {} über {}, {} über {} — {verdict}",
                s.mailboxes,
                s.compared,
                s.current_events,
                names.current,
                s.target_events,
                names.target,
                s.only_in_current,
                names.current,
                s.only_in_target,
                names.target,
                s.changed,
                s.unreadable_current,
                names.current,
                s.unreadable_target,
                names.target
            )
        )
    );
    if s.unreadable_target > 0 || s.unreadable_current > 0 {
        println!(
            "{}",
            tr!(
                lang,
                format!(
                    "What is missing and how to grant it: `calpump migrate plan --route {} --to <profile>`.",
                    cmp.route
                ),
                format!(
                    "Was fehlt und wie es erteilt wird: `calpump migrate plan --route {} --to <Profil>`.",
                    cmp.route
                )
            )
        );
    }
    if !clean && s.differences() > 0 {
        println!(
            "{}",
            tr!(
                lang,
                "Changes made in Exchange while the two profiles read show up as differences too: run verify again to tell them from real ones.",
                "Änderungen in Exchange während der beiden Lesevorgänge erscheinen ebenfalls als Abweichung: verify erneut ausführen, um sie von echten zu unterscheiden."
            )
        );
    }
}

// ---------------------------------------------------------------------------------------------
// switch

/// The route's table in the document (`[[routes]]` or an inline table in `routes = [...]`).
fn route_table<'a>(doc: &'a mut DocumentMut, name: &str) -> Option<&'a mut dyn TableLike> {
    let named = |t: &dyn TableLike| t.get("name").and_then(|v| v.as_str()) == Some(name);
    match doc.get_mut("routes")? {
        Item::ArrayOfTables(tables) => tables
            .iter_mut()
            .find(|t| named(*t))
            .map(|t| t as &mut dyn TableLike),
        Item::Value(toml_edit::Value::Array(array)) => array
            .iter_mut()
            .filter_map(|v| v.as_inline_table_mut())
            .find(|t| named(*t))
            .map(|t| t as &mut dyn TableLike),
        _ => None,
    }
}

/// Sets a string value, keeping the old value's comments and spacing.
fn set_string(table: &mut dyn TableLike, key: &str, value: &str) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = toml_edit::Value::from(value);
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(key, toml_edit::value(value));
        }
    }
}

/// What the switch changed in the configuration.
struct Repointed {
    text: String,
    /// `Some(new shadow)` when the route's `shadow_profile` was the target (now the old profile).
    shadow_swapped: Option<String>,
}

/// Re-points route `name` from `from` to `to` in the configuration text.
fn repoint(text: &str, name: &str, from: &str, to: &str) -> std::result::Result<Repointed, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    let table =
        route_table(&mut doc, name).ok_or_else(|| format!("no [[routes]] table named `{name}`"))?;
    set_string(table, "profile", to);
    let mut shadow_swapped = None;
    if table.get("shadow_profile").and_then(|v| v.as_str()) == Some(to) {
        set_string(table, "shadow_profile", from);
        shadow_swapped = Some(from.to_string());
    }
    Ok(Repointed {
        text: doc.to_string(),
        shadow_swapped,
    })
}

/// Writes the file atomically (temp file + rename), keeping its permissions.
fn write_config(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.migrate-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "calpump.toml".into()),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", tmp.display())))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::failure(format!("cannot write {}: {e}", path.display()))
    })
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))
}

/// Who runs the switch, for the run history: `user@host` (`$USER` or `$LOGNAME`; the host
/// from the kernel or `$HOSTNAME`), or what is known of it.
fn who_switches() -> Option<String> {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match (user, host) {
        (Some(user), Some(host)) => Some(format!("{user}@{host}")),
        (Some(user), None) => Some(user),
        (None, Some(host)) => Some(format!("@{host}")),
        (None, None) => None,
    }
}

pub async fn switch(global: &Global, args: &MigrateSwitchArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let path = &global.config;
    let config = crate::setup::load_config(path)?;
    let text = read_text(path)?;
    let route = route_of(&config, &args.route, lang)?;
    let state = crate::setup::open_state(&config).await?;
    let from = route.profile.clone();
    let to = match (&args.to, args.back) {
        (Some(to), _) => to.clone(),
        (None, _) => match last_switch(state.as_ref(), &route.name).await? {
            Some(last) if last.to_profile == from => last.from_profile,
            Some(last) => {
                return Err(CliError::usage(tr!(
                    lang,
                    format!(
                        "the last switch of route `{}` moved it to `{}`, but it now uses `{from}` (edited by hand?): give the profile with --to",
                        route.name, last.to_profile
                    ),
                    format!(
                        "die letzte Umstellung der Route `{}` ging auf `{}`, sie verwendet jetzt aber `{from}` (von Hand geändert?): das Profil mit --to angeben",
                        route.name, last.to_profile
                    )
                )));
            }
            None => {
                return Err(CliError::usage(tr!(
                    lang,
                    format!(
                        "no switch of route `{}` is recorded: give the profile with --to",
                        route.name
                    ),
                    format!(
                        "keine Umstellung der Route `{}` verzeichnet: das Profil mit --to angeben",
                        route.name
                    )
                )));
            }
        },
    };
    target_of(&config, &route, &to, lang)?;
    for warning in check_profile(&config, &to, lang)? {
        eprintln!("{warning}");
    }
    let from_backend = backend_of(&config, &from).to_string();
    let to_backend = backend_of(&config, &to).to_string();

    let edited = repoint(&text, &route.name, &from, &to).map_err(|e| {
        CliError::usage(format!(
            "{}: {e}; edit `profile` of route `{}` by hand",
            path.display(),
            route.name
        ))
    })?;
    let (_, issues) = Config::parse(&edited.text, Some(path));
    let errors: Vec<String> = issues
        .iter()
        .filter(|i| i.is_error())
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(CliError::failure(format!(
            "{}\n{}",
            tr!(
                lang,
                "the switched configuration would not be valid; nothing changed:",
                "die umgestellte Konfiguration wäre ungültig; nichts geändert:"
            ),
            errors.join("\n")
        )));
    }

    // State first: until the configuration names the new profile, the new backend's rows are
    // unused; the old backend's rows are never touched.
    let moved = if args.back {
        MoveSummary::default()
    } else {
        move_state(state.as_ref(), &route.name, &from_backend, &to_backend).await?
    };
    write_config(path, &edited.text)?;
    let by = who_switches();
    let record = record_switch(
        state.as_ref(),
        &route.name,
        (&from, &from_backend),
        (&to, &to_backend),
        args.back,
        by.as_deref(),
        &moved,
    )
    .await?;
    state.close().await;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "route": route.name,
                "from": { "profile": from, "backend": from_backend },
                "to": { "profile": to, "backend": to_backend },
                "back": args.back,
                "moved": moved,
                "shadow_profile": edited.shadow_swapped,
                "run_id": record.run_id,
                "by": record.by,
                "config": path.display().to_string(),
            }))
            .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "✓ route {} now reads through {to} ({to_backend}) instead of {from} ({from_backend}) — {} updated",
                route.name,
                path.display()
            ),
            format!(
                "✓ Route {} liest jetzt über {to} ({to_backend}) statt über {from} ({from_backend}) — {} geändert",
                route.name,
                path.display()
            )
        )
    );
    if args.back {
        println!(
            "{}",
            tr!(
                lang,
                format!(
                    "  the next sync continues from the cursors {to_backend} had before the switch"
                ),
                format!(
                    "  die nächste Synchronisierung setzt bei den Cursorn fort, die {to_backend} vor der Umstellung hatte"
                )
            )
        );
    } else {
        println!(
            "{}",
            tr!(
                lang,
                format!(
                    "  state: {} calendars start on {to_backend} without a cursor (full read; the sinks change only what differs), {} events carried over for the empty-calendar guard; the cursors of {from_backend} are kept for --back",
                    moved.calendars, moved.events
                ),
                format!(
                    "  Zustand: {} Kalender beginnen auf {to_backend} ohne Cursor (vollständiges Lesen; die Senken ändern nur, was abweicht), {} Termine für den Leerkalender-Schutz übernommen; die Cursor von {from_backend} bleiben für --back",
                    moved.calendars, moved.events
                )
            )
        );
    }
    if let Some(shadow) = &edited.shadow_swapped {
        println!(
            "{}",
            tr!(
                lang,
                format!(
                    "  shadow_profile is now `{shadow}` (the profile the route left); remove the line to stop the shadow reads"
                ),
                format!(
                    "  shadow_profile ist jetzt `{shadow}` (das bisherige Profil); die Zeile entfernen, um die Schattenlesevorgänge zu beenden"
                )
            )
        );
    }
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "  recorded in the run history as {}; a running `calpump run` picks the change up when restarted; undo with `calpump migrate switch --route {} --back`",
                record.run_id, route.name
            ),
            format!(
                "  im Verlauf als {} vermerkt; ein laufendes `calpump run` übernimmt die Änderung nach einem Neustart; rückgängig mit `calpump migrate switch --route {} --back`",
                record.run_id, route.name
            )
        )
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// plan

/// What one mailbox's check through the target found.
struct MailboxCheck {
    info: MailboxInfo,
    events: usize,
    error: Option<Diagnostic>,
}

/// A room list's check through the target.
struct ListCheck {
    list: String,
    rooms: Option<usize>,
    error: Option<Diagnostic>,
}

/// Something the target profile still needs.
#[derive(Debug)]
enum Need {
    /// The token could not be had.
    Token(Diagnostic),
    /// The token carries no roles: admin consent.
    Consent(Diagnostic),
    /// An application permission (name, app role id) the calls were refused for.
    Permission {
        name: &'static str,
        id: &'static str,
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
    fn kind(&self) -> &'static str {
        match self {
            Need::Token(_) => "token",
            Need::Consent(_) => "admin_consent",
            Need::Permission { .. } => "permission",
            Need::Scope { .. } => "mailbox_scope",
            Need::OnPrem { .. } => "on_premises",
            Need::Other { .. } => "other",
        }
    }

    fn diagnostic(&self) -> &Diagnostic {
        match self {
            Need::Token(d) | Need::Consent(d) => d,
            Need::Permission { diagnostic, .. }
            | Need::Scope { diagnostic, .. }
            | Need::OnPrem { diagnostic, .. }
            | Need::Other { diagnostic, .. } => diagnostic,
        }
    }

    fn mailboxes(&self) -> &[String] {
        match self {
            Need::Scope { mailboxes, .. }
            | Need::OnPrem { mailboxes, .. }
            | Need::Other { mailboxes, .. } => mailboxes,
            _ => &[],
        }
    }
}

/// The needs, from the probe's token step, the room lists and the mailboxes. A refused call
/// tells which permission is missing: a calendar read → Calendars.Read, a room list →
/// Place.Read.All.
fn needs(steps: &[ProbeStep], lists: &[ListCheck], mailboxes: &[MailboxCheck]) -> Vec<Need> {
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
        Some(d) if d.code() == graph::NO_PERMISSIONS_IN_TOKEN.code => consent = Some(d),
        Some(d) => out.push(Need::Token(d)),
        None => {}
    }
    let mut place: Option<Diagnostic> = None;
    for l in lists {
        match &l.error {
            Some(d) if d.code() == graph::ACCESS_DENIED.code => {
                place.get_or_insert_with(|| d.clone());
            }
            Some(d) if d.code() == graph::NO_PERMISSIONS_IN_TOKEN.code => {
                consent.get_or_insert_with(|| d.clone());
            }
            _ => {}
        }
    }
    let mut calendars: Option<Diagnostic> = None;
    let mut groups: Vec<(Diagnostic, Vec<String>)> = Vec::new();
    for m in mailboxes {
        let Some(d) = &m.error else { continue };
        if d.code() == graph::ACCESS_DENIED.code {
            calendars.get_or_insert_with(|| d.clone());
        } else if d.code() == graph::NO_PERMISSIONS_IN_TOKEN.code {
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
                name: CALENDARS_READ.0,
                id: CALENDARS_READ.1,
                diagnostic: d,
            });
        }
        if let Some(d) = place {
            out.push(Need::Permission {
                name: PLACE_READ_ALL.0,
                id: PLACE_READ_ALL.1,
                diagnostic: d,
            });
        }
    }
    for (diagnostic, mailboxes) in groups {
        out.push(if diagnostic.code() == graph::ODATA_DISABLED.code {
            Need::Scope {
                mailboxes,
                diagnostic,
            }
        } else if diagnostic.code() == graph::MAILBOX_NOT_ENABLED_FOR_REST.code {
            Need::OnPrem {
                mailboxes,
                diagnostic,
            }
        } else {
            Need::Other {
                mailboxes,
                diagnostic,
            }
        });
    }
    out
}

/// The concrete commands that grant a need (`client` = the app's client id).
fn commands(need: &Need, client: &str, tenant: &str) -> Vec<String> {
    let consent = format!("az ad app permission admin-consent --id {client}");
    let add = |(name, id): (&str, &str)| {
        format!(
            "az ad app permission add --id {client} --api {GRAPH_API} --api-permissions {id}=Role   # {name} (application)"
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
        Need::Permission { name, id, .. } => vec![add((name, id)), consent],
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
        Need::Permission { name, .. } => tr!(
            lang,
            format!("Application permission {name} (Microsoft Graph)"),
            format!("Anwendungsberechtigung {name} (Microsoft Graph)")
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
    onprem: &[String],
    readable_from_lists: &[String],
    from_lists: bool,
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
    let onprem_set: BTreeSet<&str> = onprem.iter().map(String::as_str).collect();
    let mut cloud = original.clone();
    cloud.decor_mut().clear();
    set_string(&mut cloud, "profile", to);
    let kept: Vec<String> = route
        .mailboxes
        .iter()
        .map(|m| m.trim().to_lowercase())
        .filter(|m| !onprem_set.contains(m.as_str()))
        .collect();
    if from_lists {
        // Some on-premises mailboxes came from a room list: list the readable rooms instead.
        let mut all = kept.clone();
        all.extend(readable_from_lists.iter().cloned());
        cloud.remove("room_lists");
        cloud.insert("mailboxes", toml_edit::value(strings(&all)));
    } else if kept.is_empty() {
        cloud.remove("mailboxes");
    } else {
        cloud.insert("mailboxes", toml_edit::value(strings(&kept)));
    }
    if cloud.get("shadow_profile").and_then(|v| v.as_str()) == Some(to) {
        cloud.remove("shadow_profile");
    }
    let mut ews = original;
    ews.decor_mut().clear();
    set_string(&mut ews, "name", &format!("{}-onprem", route.name));
    ews.remove("room_lists");
    ews.remove("shadow_profile");
    ews.insert("mailboxes", toml_edit::value(strings(onprem)));

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

/// `--write-profile`: a Graph profile derived from the route's EWS Office 365 profile.
/// Returns the new configuration text and what the admin must still add.
fn derive_graph_profile(
    text: &str,
    from: &str,
    name: &str,
    lang: Lang,
) -> Result<(String, Vec<String>)> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| CliError::usage(format!("not valid TOML: {e}")))?;
    let profiles = doc
        .get("profiles")
        .and_then(Item::as_table_like)
        .ok_or_else(|| CliError::usage("no [profiles] in the configuration"))?;
    if profiles.contains_key(name) {
        return Err(CliError::usage(tr!(
            lang,
            format!(
                "a profile `{name}` exists already: plan with `--to {name}`, or choose another name"
            ),
            format!(
                "ein Profil `{name}` gibt es schon: mit `--to {name}` planen oder einen anderen Namen wählen"
            )
        )));
    }
    let source = profiles
        .get(from)
        .and_then(Item::as_table_like)
        .ok_or_else(|| CliError::usage(format!("no profile `{from}`")))?;
    let backend = source.get("backend").and_then(Item::as_str).unwrap_or("");
    let auth = source.get("auth").and_then(Item::as_table_like);
    let kind = auth.and_then(|a| a.get("kind")).and_then(Item::as_str);
    if backend != "ews" || kind != Some("oauth") {
        return Err(CliError::usage(tr!(
            lang,
            format!(
                "profile `{from}` is not an EWS profile for Exchange Online (backend = \"ews\" with auth.kind = \"oauth\"); add a Graph profile with `calpump profile add --backend graph`"
            ),
            format!(
                "Profil `{from}` ist kein EWS-Profil für Exchange Online (backend = \"ews\" mit auth.kind = \"oauth\"); ein Graph-Profil mit `calpump profile add --backend graph` anlegen"
            )
        )));
    }
    let Some(auth) = auth else {
        return Err(CliError::usage(format!("profile `{from}` has no auth")));
    };
    let value_of = |item: Option<&Item>| {
        item.cloned()
            .and_then(|i| i.into_value().ok())
            .map(|mut v| {
                v.decor_mut().clear();
                v
            })
    };
    let (Some(tenant), Some(client_id)) = (
        value_of(auth.get("tenant")),
        value_of(auth.get("client_id")),
    ) else {
        return Err(CliError::usage(format!(
            "profile `{from}`: auth needs tenant and client_id"
        )));
    };
    let client = client_id.as_str().unwrap_or("<client-id>").to_string();
    let mut table = Table::new();
    table.insert("backend", toml_edit::value("graph"));
    table.insert("tenant", Item::Value(tenant));
    table.insert("client_id", Item::Value(client_id));
    let mut notes = vec![tr!(
        lang,
        format!(
            "app {client}: add the Microsoft Graph application permissions Calendars.Read and Place.Read.All and grant admin consent (its Exchange permission full_access_as_app is not used by Graph; remove it after the switch)"
        ),
        format!(
            "App {client}: die Microsoft-Graph-Anwendungsberechtigungen Calendars.Read und Place.Read.All hinzufügen und die Administratorzustimmung erteilen (ihre Exchange-Berechtigung full_access_as_app nutzt Graph nicht; nach der Umstellung entfernen)"
        )
    )];
    let secret = value_of(auth.get("client_secret"));
    let cert = value_of(auth.get("certificate"));
    let key = value_of(auth.get("private_key"));
    match (secret, cert, key) {
        (Some(secret), _, _) => {
            table.insert("client_secret", Item::Value(secret));
            if let Some(exp) = value_of(auth.get("secret_expires"))
                .or_else(|| value_of(source.get("secret_expires")))
            {
                table.insert("secret_expires", Item::Value(exp));
            }
        }
        (None, Some(cert), Some(key)) => {
            table.insert("certificate", Item::Value(cert));
            table.insert("private_key", Item::Value(key));
        }
        _ => {
            // The password grant (delegated EWS.AccessAsUser.All): Graph needs the app's own
            // credential for application permissions.
            let var = format!(
                "CALPUMP_{}_SECRET",
                name.to_uppercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect::<String>()
            );
            let mut reference = toml_edit::InlineTable::new();
            reference.insert("env", var.as_str().into());
            table.insert(
                "client_secret",
                Item::Value(toml_edit::Value::InlineTable(reference)),
            );
            notes.push(tr!(
                lang,
                format!(
                    "profile `{from}` signs in with a password (delegated); Graph reads rooms with the app's own credential: create a client secret for app {client} (Certificates & secrets) and put its value in the environment variable {var} — or replace client_secret by certificate + private_key"
                ),
                format!(
                    "Profil `{from}` meldet sich mit Kennwort an (delegiert); Graph liest Räume mit den eigenen Anmeldedaten der App: für App {client} einen geheimen Clientschlüssel anlegen (Zertifikate & Geheimnisse) und seinen Wert in die Umgebungsvariable {var} legen — oder client_secret durch certificate + private_key ersetzen"
                )
            ));
        }
    }
    if let Some(authority) = value_of(auth.get("authority")) {
        table.insert("authority", Item::Value(authority));
    }
    let url = source.get("url").and_then(Item::as_str).unwrap_or("");
    match graph_url_for(url) {
        Some(Some(graph_url)) => {
            table.insert("graph_url", toml_edit::value(graph_url));
        }
        Some(None) => {}
        None => notes.push(tr!(
            lang,
            format!("the EWS URL {url} is not a known Exchange Online endpoint: set graph_url to your cloud's Graph (e.g. https://graph.microsoft.us/v1.0)"),
            format!("die EWS-URL {url} ist kein bekannter Exchange-Online-Endpunkt: graph_url auf den Graph Ihrer Cloud setzen (z. B. https://graph.microsoft.us/v1.0)")
        )),
    }
    for key in [
        "allow_insecure",
        "ca_file",
        "timeout",
        "connect_timeout",
        "probe_mailbox",
    ] {
        if let Some(v) = value_of(source.get(key)) {
            table.insert(key, Item::Value(v));
        }
    }
    table.decor_mut().set_prefix(format!(
        "\n# Microsoft Graph profile derived from [profiles.{from}] by `calpump migrate plan --write-profile {name}`.\n"
    ));
    let profiles = doc
        .get_mut("profiles")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| CliError::usage("`profiles` is not a table; edit it by hand"))?;
    // After the last profile table.
    let after = profiles
        .iter()
        .filter_map(|(_, item)| item.as_table().and_then(Table::position))
        .max();
    if let Some(position) = after {
        table.set_position(Some(position + 1));
        // Tables after it move one down so the order stays.
        shift_positions(&mut doc, position + 1);
        let profiles = doc
            .get_mut("profiles")
            .and_then(Item::as_table_mut)
            .ok_or_else(|| CliError::usage("`profiles` is not a table"))?;
        profiles.insert(name, Item::Table(table));
    } else {
        profiles.insert(name, Item::Table(table));
    }
    Ok((doc.to_string(), notes))
}

/// Moves every table at `from` or later one position down (room for a table at `from`).
fn shift_positions(doc: &mut DocumentMut, from: isize) {
    fn walk(table: &mut Table, from: isize) {
        if let Some(p) = table.position()
            && p >= from
        {
            table.set_position(Some(p + 1));
        }
        for (_, item) in table.iter_mut() {
            match item {
                Item::Table(t) => walk(t, from),
                Item::ArrayOfTables(a) => {
                    for t in a.iter_mut() {
                        walk(t, from);
                    }
                }
                _ => {}
            }
        }
    }
    walk(doc.as_table_mut(), from);
}

/// The Graph URL of an EWS URL's cloud: `Some(None)` = the default (public cloud), `Some(url)`
/// = a national cloud or the simulator (same origin on loopback), `None` = unknown.
fn graph_url_for(ews_url: &str) -> Option<Option<String>> {
    if ews_url.is_empty() {
        return Some(None);
    }
    let lower = ews_url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let host_port = rest.split('/').next().unwrap_or("");
    let host = host_port
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host_port, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    match host {
        "outlook.office365.com" | "outlook.office.com" => Some(None),
        "outlook.office365.us" => Some(Some("https://graph.microsoft.us/v1.0".into())),
        "webmail.apps.mil" => Some(Some("https://dod-graph.microsoft.us/v1.0".into())),
        "partner.outlook.cn" => Some(Some("https://microsoftgraph.chinacloudapi.cn/v1.0".into())),
        "127.0.0.1" | "localhost" | "::1" => {
            let scheme = if lower.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            Some(Some(format!("{scheme}://{host_port}/v1.0")))
        }
        _ => None,
    }
}

fn step_line(step: &ProbeStep, lang: Lang) -> String {
    let title = super::profile::step_title(step, lang);
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
    let current = crate::setup::build_source(&config, &route.profile)?;
    let target: Arc<dyn Source> = crate::setup::build_source(&config, &to)?;
    let window = route_window(&route, Utc::now());

    // The mailboxes, as the route resolves them today (through its own profile; through the
    // target when the current one cannot list the room lists any more).
    let mut resolved = resolve_mailboxes(current.as_ref(), &route).await;
    let mut resolved_through_target = false;
    if !resolved.route_errors.is_empty() {
        let again = resolve_mailboxes(target.as_ref(), &route).await;
        if again.route_errors.is_empty() {
            resolved = again;
            resolved_through_target = true;
        }
    }

    // Room lists through the target (Place.Read.All).
    let mut lists: Vec<ListCheck> = Vec::new();
    if !route.room_lists.is_empty() {
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
                                &calpump_engine::diagnostics::catalogue::general::ROOM_LIST_NOT_FOUND,
                                format!("{to}: no room list `{wanted}`"),
                            )
                        }),
                    Some(Err(e)) => Err(e.diagnostic.clone()),
                    None => Err(Diagnostic::new(
                        &calpump_engine::diagnostics::catalogue::general::INTERNAL,
                        "room lists not listed",
                    )),
                }
            };
            let check = match address {
                Ok(address) => match target.rooms(Some(&address)).await {
                    Ok(rooms) => ListCheck {
                        list: wanted.clone(),
                        rooms: Some(rooms.len()),
                        error: None,
                    },
                    Err(e) => ListCheck {
                        list: wanted.clone(),
                        rooms: None,
                        error: Some(e.diagnostic),
                    },
                },
                Err(d) => ListCheck {
                    list: wanted.clone(),
                    rooms: None,
                    error: Some(d),
                },
            };
            lists.push(check);
        }
    }

    // Every mailbox read through the target, as a sync would (nothing written).
    let reads = read_mailboxes(
        &target,
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
    let unresolved: Vec<(String, Diagnostic)> = resolved.failures.clone();
    checks.sort_by_key(|c| c.error.is_some());
    let needs = needs(&steps, &lists, &checks);
    let onprem: Vec<String> = needs
        .iter()
        .filter(|n| matches!(n, Need::OnPrem { .. }))
        .flat_map(|n| n.mailboxes().to_vec())
        .collect();
    let split = if onprem.is_empty() {
        None
    } else {
        let configured: BTreeSet<String> = route
            .mailboxes
            .iter()
            .map(|m| m.trim().to_lowercase())
            .collect();
        let from_lists = onprem.iter().any(|m| !configured.contains(m));
        let readable_from_lists: Vec<String> = checks
            .iter()
            .filter(|c| c.error.is_none() && !configured.contains(&c.info.address))
            .map(|c| c.info.address.clone())
            .collect();
        split_toml(
            &read_text(path)?,
            &route,
            &to,
            &onprem,
            &readable_from_lists,
            from_lists,
            lang,
        )
    };
    let readable = checks.iter().filter(|c| c.error.is_none()).count();
    let ready = needs.is_empty()
        && unresolved.is_empty()
        && lists.iter().all(|l| l.error.is_none())
        && resolved.route_errors.is_empty()
        && !checks.is_empty();

    if args.json {
        let doc = json!({
            "route": route.name,
            "current": { "profile": route.profile, "backend": current.backend() },
            "target": { "profile": to, "backend": target.backend(), "client_id": client },
            "window": window,
            "ready": ready,
            "profile_written": args.write_profile,
            "notes": written_notes,
            "resolved_through_target": resolved_through_target,
            "steps": steps.iter().map(|s| step_json(s, lang)).collect::<Vec<_>>(),
            "route_errors": resolved.route_errors.iter().map(|d| diag_json(d, lang)).collect::<Vec<_>>(),
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
                "permission": match n { Need::Permission { name, .. } => Some(*name), _ => None },
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
            steps: &steps,
            lists: &lists,
            route_errors: &resolved.route_errors,
            unresolved: &unresolved,
            checks: &checks,
            needs: &needs,
            split: split.as_deref(),
            ready,
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
    steps: &'a [ProbeStep],
    lists: &'a [ListCheck],
    route_errors: &'a [Diagnostic],
    unresolved: &'a [(String, Diagnostic)],
    checks: &'a [MailboxCheck],
    needs: &'a [Need],
    split: Option<&'a str>,
    ready: bool,
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
    for step in v.steps {
        println!("  {}", step_line(step, lang));
    }
    if !v.lists.is_empty() {
        println!(
            "\n{}",
            tr!(
                lang,
                "Room lists (Place.Read.All):",
                "Raumlisten (Place.Read.All):"
            )
        );
        for l in v.lists {
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
    for d in v.route_errors {
        println!("  ✗ {}", diag_line(d, lang));
    }
    let readable = v.checks.iter().filter(|c| c.error.is_none()).count();
    println!(
        "\n{}",
        tr!(
            lang,
            format!(
                "Mailboxes ({readable} of {} readable through {}):",
                v.checks.len(),
                v.to
            ),
            format!(
                "Postfächer ({readable} von {} über {} lesbar):",
                v.checks.len(),
                v.to
            )
        )
    );
    for c in v.checks {
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
    for (address, d) in v.unresolved {
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
    if !v.needs.is_empty() {
        println!(
            "\n{}",
            tr!(
                lang,
                "What is missing and how to grant it:",
                "Was fehlt und wie es erteilt wird:"
            )
        );
    }
    for (i, need) in v.needs.iter().enumerate() {
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
        if v.ready {
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
        } else if !v.needs.is_empty()
            && v.unresolved.is_empty()
            && v.needs.iter().all(|n| matches!(n, Need::OnPrem { .. }))
        {
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
                    v.checks.len() - readable + v.unresolved.len(),
                    v.checks.len() + v.unresolved.len(),
                    v.to
                ),
                format!(
                    "Nicht bereit: {} von {} Postfächern sind über {} noch nicht lesbar. Nach dem Erteilen diesen Plan erneut ausführen (Berechtigungsänderungen brauchen Minuten bis Exchange).",
                    v.checks.len() - readable + v.unresolved.len(),
                    v.checks.len() + v.unresolved.len(),
                    v.to
                )
            )
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# calpump
[state]
path = "state.db"

[profiles.online]   # EWS in Exchange Online
backend = "ews"
url = "http://127.0.0.1:5077/EWS/Exchange.asmx"
auth = { kind = "oauth", tenant = "contoso.onmicrosoft.com", client_id = "0a1b", client_secret = { env = "EWS_SECRET" }, secret_expires = 2027-03-19 }
probe_mailbox = "room-1.01@contoso.com"

[sinks.db]
plugin = "database"
url = "sqlite://x.db"

# The rooms.
[[routes]]
name = "rooms"
profile = "online"   # keep this comment
shadow_profile = "cloud"
room_lists = ["Building 1"]
mailboxes = ["room-onprem@contoso.com", "room-9@contoso.com"]
sinks = ["db"]

[[routes]]
name = "other"
profile = "online"
mailboxes = ["x@contoso.com"]
sinks = ["db"]
"#;

    #[test]
    fn repoint_changes_one_value_and_keeps_everything_else() {
        let out = repoint(CONFIG, "rooms", "online", "cloud").expect("repoint");
        assert_eq!(out.shadow_swapped.as_deref(), Some("online"));
        let expected = CONFIG
            .replace(
                "profile = \"online\"   # keep this comment",
                "profile = \"cloud\"   # keep this comment",
            )
            .replace("shadow_profile = \"cloud\"", "shadow_profile = \"online\"");
        assert_eq!(out.text, expected);
        assert!(repoint(CONFIG, "nope", "online", "cloud").is_err());
    }

    #[test]
    fn a_graph_profile_is_derived_from_an_ews_online_profile() {
        let (text, notes) =
            derive_graph_profile(CONFIG, "online", "cloud", Lang::En).expect("derive");
        assert!(text.starts_with(CONFIG[..CONFIG.find("[sinks.db]").expect("sinks")].trim_end()));
        assert!(text.contains("[profiles.cloud]\nbackend = \"graph\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"0a1b\"\nclient_secret = { env = \"EWS_SECRET\" }\nsecret_expires = 2027-03-19\ngraph_url = \"http://127.0.0.1:5077/v1.0\"\nprobe_mailbox = \"room-1.01@contoso.com\"\n"), "{text}");
        assert!(
            text.find("[profiles.cloud]") < text.find("[sinks.db]"),
            "{text}"
        );
        assert!(
            text.ends_with(&CONFIG[CONFIG.find("[sinks.db]").expect("sinks")..]),
            "{text}"
        );
        assert!(notes[0].contains("Calendars.Read"));
        let (config, issues) = Config::parse(&text, None);
        assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
        assert_eq!(config.profiles["cloud"].backend, "graph");
        assert!(derive_graph_profile(&text, "online", "cloud", Lang::En).is_err());
        assert!(derive_graph_profile(CONFIG, "nope", "x", Lang::En).is_err());
    }

    #[test]
    fn graph_urls_of_clouds() {
        assert_eq!(graph_url_for(""), Some(None));
        assert_eq!(
            graph_url_for("https://outlook.office365.com/EWS/Exchange.asmx"),
            Some(None)
        );
        assert_eq!(
            graph_url_for("https://outlook.office365.us/EWS/Exchange.asmx"),
            Some(Some("https://graph.microsoft.us/v1.0".into()))
        );
        assert_eq!(
            graph_url_for("https://mail.contoso.com/EWS/Exchange.asmx"),
            None
        );
    }

    #[test]
    fn the_split_keeps_the_route_name_on_graph_and_the_onprem_mailboxes_on_ews() {
        let (config, _) = Config::parse(CONFIG, None);
        let route = config.route("rooms").expect("route").clone();
        let toml = split_toml(
            CONFIG,
            &route,
            "cloud",
            &["room-onprem@contoso.com".into()],
            &[],
            false,
            Lang::En,
        )
        .expect("split");
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
