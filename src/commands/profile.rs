//! `calpump profile list` and `calpump profile test`.
//!
//! `profile test` runs the backend's [`Source::probe`]: numbered steps, each ✓ (passed), ⚠
//! (passed with a warning), ✗ (failed) or – (skipped), with the diagnostic's code, cause and
//! remedy in the admin's language, and at the end the step that failed and why. A profile that
//! does not even pass the backend's offline check fails at step 1 ("config") with
//! `secret.Missing` or `config.Invalid`. `--wait` retries permission-type failures (consent,
//! roles, impersonation, scope) with back-off, since such changes take minutes to reach
//! Exchange. Exit code 0 only when no step failed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calpump_engine::config::{Config, ConfigError, ConfigIssue};
use calpump_engine::diagnostics::catalogue::general;
use calpump_engine::diagnostics::{Diagnostic, Lang};
use calpump_engine::source::{ProbeStep, ProfileContext, SourceFactory, StepOutcome};
use serde_json::json;

use crate::cli::{Global, ProfileListArgs, ProfileTestArgs};
use crate::error::{CliError, Result};
use crate::i18n::{self, tr};

/// Reads the configuration for the profile commands: the whole file must parse, but problems
/// in other sections (a route, a sink) do not stop testing or listing a profile.
pub fn read_config(path: &std::path::Path, lang: Lang) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CliError::usage(tr!(
                lang,
                format!(
                    "no configuration at {}: write one with `calpump init` or pass --config",
                    path.display()
                ),
                format!(
                    "keine Konfiguration unter {}: eine mit `calpump init` anlegen oder --config angeben",
                    path.display()
                )
            ))
        } else {
            CliError::usage(
                ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
                .to_string(),
            )
        }
    })?;
    let (config, issues) = Config::parse(&text, Some(path));
    if let Some(issue) = issues.iter().find(|i| i.is_error() && i.path.is_empty()) {
        return Err(CliError::usage(issue.to_string()));
    }
    Ok(config)
}

/// The profile's factory, or a usage error naming the known profiles or backends.
pub fn factory_of(config: &Config, name: &str, lang: Lang) -> Result<Arc<dyn SourceFactory>> {
    let Some(profile) = config.profiles.get(name) else {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            tr!(
                lang,
                "none — add one with `calpump profile add`",
                "keine — eines mit `calpump profile add` anlegen"
            )
            .to_string()
        } else {
            known.join(", ")
        };
        return Err(CliError::usage(tr!(
            lang,
            format!("no profile named `{name}` (known: {known})"),
            format!("kein Profil namens `{name}` (vorhanden: {known})")
        )));
    };
    crate::backends::find(&profile.backend).map_err(|known| {
        CliError::usage(crate::setup::located(
            config,
            ConfigIssue::error(
                format!("profiles.{name}.backend"),
                format!("unknown backend `{}` (known: {known})", profile.backend),
            ),
        ))
    })
}

fn str_of<'a>(table: &'a toml::Table, key: &str) -> Option<&'a str> {
    table
        .get(key)
        .and_then(toml::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Where a profile connects to, in one line.
fn endpoint(backend: &str, settings: &toml::Table, lang: Lang) -> String {
    match backend {
        "graph" => str_of(settings, "graph_url")
            .unwrap_or("https://graph.microsoft.com/v1.0")
            .to_string(),
        "ews" => {
            if let Some(url) = str_of(settings, "url") {
                url.to_string()
            } else if let Some(address) = str_of(settings, "autodiscover") {
                format!("autodiscover {address}")
            } else {
                let oauth = settings
                    .get("auth")
                    .and_then(toml::Value::as_table)
                    .and_then(|a| str_of(a, "kind"))
                    == Some("oauth");
                if oauth {
                    "https://outlook.office365.com/EWS/Exchange.asmx".to_string()
                } else {
                    tr!(lang, "(none)", "(keiner)").to_string()
                }
            }
        }
        _ => "?".to_string(),
    }
}

/// How a profile signs in, in one line.
fn sign_in(backend: &str, settings: &toml::Table, lang: Lang) -> String {
    let oauth = |t: &toml::Table| -> String {
        let app = str_of(t, "client_id").unwrap_or("?");
        if let Some(user) = str_of(t, "username") {
            format!(
                "{} {user} (app {app})",
                tr!(lang, "password grant as", "Kennwort-Grant als")
            )
        } else if t.contains_key("certificate") {
            format!("{} (app {app})", tr!(lang, "certificate", "Zertifikat"))
        } else {
            format!(
                "{} (app {app})",
                tr!(lang, "client secret", "Client-Geheimnis")
            )
        }
    };
    match backend {
        "graph" => oauth(settings),
        "ews" => match settings.get("auth").and_then(toml::Value::as_table) {
            Some(auth) => match str_of(auth, "kind") {
                Some("oauth") => format!("OAuth, {}", oauth(auth)),
                Some(kind) => format!(
                    "{} {} {}",
                    kind.to_uppercase().replace("BASIC", "Basic"),
                    tr!(lang, "as", "als"),
                    str_of(auth, "username").unwrap_or("?")
                ),
                None => "?".to_string(),
            },
            None => "?".to_string(),
        },
        _ => "?".to_string(),
    }
}

/// One line about the soonest expiry: "2027-03-19 (111 days left)".
fn expiry_text(items: &[calpump_engine::daemon::expiry::SecretExpiry], lang: Lang) -> String {
    let Some(s) = items.iter().min_by_key(|s| s.days_left) else {
        return "–".to_string();
    };
    match s.status() {
        "expired" => format!(
            "✗ {} {} ({} {})",
            tr!(lang, "expired", "abgelaufen am"),
            s.expires,
            i18n::days(lang, -s.days_left),
            tr!(lang, "ago", "her")
        ),
        "expires_soon" => format!(
            "⚠ {} ({} {})",
            s.expires,
            i18n::days(lang, s.days_left),
            tr!(lang, "left", "übrig")
        ),
        _ => format!(
            "{} ({} {})",
            s.expires,
            i18n::days(lang, s.days_left),
            tr!(lang, "left", "übrig")
        ),
    }
}

pub fn list(global: &Global, args: &ProfileListArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let config = read_config(&global.config, lang)?;
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    for (name, p) in &config.profiles {
        let expiry = crate::expiry::of_profile(name, &p.settings);
        let endpoint = endpoint(&p.backend, &p.settings, lang);
        let auth = sign_in(&p.backend, &p.settings, lang);
        docs.push(json!({
            "name": name,
            "backend": p.backend,
            "endpoint": endpoint,
            "auth": auth,
            "secret_expiry": expiry.iter().map(|s| json!({
                "what": s.what,
                "expires": s.expires,
                "days_left": s.days_left,
                "status": s.status(),
                "code": s.diagnostic.as_ref().map(Diagnostic::code),
            })).collect::<Vec<_>>(),
        }));
        rows.push([
            name.clone(),
            p.backend.clone(),
            endpoint,
            auth,
            expiry_text(&expiry, lang),
        ]);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "profiles": docs })).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!(
            "{}",
            tr!(
                lang,
                "No profiles yet: add one with `calpump profile add`.",
                "Noch keine Profile: eines mit `calpump profile add` anlegen."
            )
        );
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        tr!(lang, "PROFILE", "PROFIL"),
        "BACKEND",
        tr!(lang, "ENDPOINT", "ENDPUNKT"),
        tr!(lang, "SIGN-IN", "ANMELDUNG"),
        tr!(lang, "SECRET EXPIRES", "GEHEIMNIS LÄUFT AB"),
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell}{}  ", " ".repeat(w - cell.chars().count())));
            }
        }
        out
    };
    println!("{}", line(header));
    for row in &rows {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
    Ok(ExitCode::SUCCESS)
}

/// The mailbox `profile test` reads: `--probe`, else the profile's `probe_mailbox`, else the
/// first mailbox of the first route using the profile.
pub fn probe_mailbox(config: &Config, name: &str, explicit: Option<&str>) -> Option<String> {
    if let Some(p) = explicit {
        return Some(p.trim().to_lowercase());
    }
    if let Some(p) = config
        .profiles
        .get(name)
        .and_then(|p| str_of(&p.settings, "probe_mailbox"))
    {
        return Some(p.to_lowercase());
    }
    config
        .routes
        .iter()
        .filter(|r| r.profile == name)
        .find_map(|r| r.mailboxes.first())
        .map(|m| m.trim().to_lowercase())
}

/// Runs the steps once: the factory's offline check (step 1 when it fails), the build, the
/// backend's probe.
pub async fn run_steps(
    config: &Config,
    name: &str,
    factory: &dyn SourceFactory,
    probe: Option<&str>,
) -> Vec<ProbeStep> {
    let Some(profile) = config.profiles.get(name) else {
        return Vec::new();
    };
    let resolver = config.secret_resolver();
    let ctx = ProfileContext {
        name,
        settings: &profile.settings,
        secrets: &resolver,
    };
    let config_step = |diagnostic: Diagnostic| {
        vec![ProbeStep {
            id: "config".to_string(),
            title: "Configuration and secrets".to_string(),
            outcome: StepOutcome::Failed { diagnostic },
        }]
    };
    let at = format!("profiles.{name}");
    let errors: Vec<ConfigIssue> = factory
        .check(&ctx)
        .into_iter()
        .filter(ConfigIssue::is_error)
        .map(|i| i.under(&at))
        .collect();
    if !errors.is_empty() {
        let secret = errors
            .iter()
            .any(|i| i.message.contains("cannot read the secret"));
        let info = if secret {
            &general::SECRET_MISSING
        } else {
            &general::CONFIG_INVALID
        };
        let detail: Vec<String> = errors
            .into_iter()
            .map(|i| crate::setup::located(config, i))
            .collect();
        return config_step(Diagnostic::new(info, detail.join("\n")));
    }
    match factory.build(&ctx) {
        Ok(source) => source.probe(probe).await,
        Err(e) => config_step(e.diagnostic),
    }
}

/// A step's title in the admin's language: known step ids have a German title; the mailbox a
/// backend names in its English title is kept.
pub fn step_title(step: &ProbeStep, lang: Lang) -> String {
    if lang == Lang::En {
        return step.title.clone();
    }
    let en = step.title.as_str();
    let mailbox = en
        .rsplit(' ')
        .next()
        .filter(|w| w.contains('@'))
        .map(str::to_string);
    let with = |base: &str| match &mailbox {
        Some(m) => format!("{base} {m}"),
        None => base.to_string(),
    };
    match step.id.as_str() {
        "config" => "Konfiguration und Geheimnisse".to_string(),
        "autodiscover" => "Autodiscover".to_string(),
        "dns-tls" if en.contains("sign-in") => "DNS und TLS zum Anmelde- und zum Graph-Host".into(),
        "dns-tls" => "DNS, Verbindung und TLS".to_string(),
        "auth" if en.contains("NTLM") => "NTLM-Anmeldung".to_string(),
        "auth" if en.contains("Basic") => "Basic-Authentifizierung".to_string(),
        "auth" => "OAuth-Token".to_string(),
        "token" => "Zugriffstoken von Microsoft Entra ID".to_string(),
        "first-call" if en.contains("GetFolder") => {
            with("Erster Aufruf: GetFolder auf den Kalender von")
        }
        "first-call" if mailbox.is_none() && en.contains("rooms") => {
            "Erster Graph-Aufruf (Räume auflisten)".to_string()
        }
        "first-call" => with("Erster Aufruf"),
        "mailbox-access" if en.contains("Delegate") => with("Stellvertretungszugriff auf"),
        "mailbox-access" => match &mailbox {
            Some(m) => format!("Kalender von {m} lesen"),
            None => "Kalender des Testpostfachs lesen".to_string(),
        },
        "impersonation" => with("Identitätswechsel für"),
        "permissions" => en
            .replace("Permissions", "Berechtigungen")
            .replace(" and ", " und "),
        _ => step.title.clone(),
    }
}

/// Why a step was skipped, in the admin's language.
fn skip_reason(reason: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return reason.to_string();
    }
    if reason.contains("failed") {
        "ein früherer Schritt ist fehlgeschlagen".to_string()
    } else if reason.contains("no probe mailbox") {
        "kein Testpostfach: eines mit `calpump profile test NAME --probe ADRESSE` angeben oder `probe_mailbox` im Profil setzen".to_string()
    } else if let Some(url) = reason.strip_prefix("not configured: the profile names the EWS URL ")
    {
        format!("nicht eingestellt: Das Profil nennt die EWS-URL {url}")
    } else {
        reason.to_string()
    }
}

fn status_word(outcome: &StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Passed { .. } => "passed",
        StepOutcome::Warning { .. } => "warning",
        StepOutcome::Failed { .. } => "failed",
        StepOutcome::Skipped { .. } => "skipped",
    }
}

fn diagnostic_json(d: &Diagnostic, lang: Lang) -> serde_json::Value {
    let t = d.info().texts(lang);
    json!({
        "code": d.code(),
        "title": t.title,
        "detail": d.detail(),
        "cause": t.cause,
        "remedy": t.remedy,
        "retryable": d.info().retryable,
        "permission": d.info().permission,
        "note": d.info().replication_note(lang),
    })
}

/// The diagnostic under a step, indented.
fn print_diagnostic(d: &Diagnostic, lang: Lang, indent: &str) {
    let t = d.info().texts(lang);
    println!("{indent}[{}] {}", d.code(), t.title);
    for line in d.detail().lines().filter(|l| !l.trim().is_empty()) {
        println!("{indent}{line}");
    }
    println!("{indent}{}: {}", tr!(lang, "Cause", "Ursache"), t.cause);
    println!("{indent}{}: {}", tr!(lang, "Remedy", "Abhilfe"), t.remedy);
    if let Some(note) = d.info().replication_note(lang) {
        println!("{indent}{note}");
    }
}

pub(crate) fn print_steps(steps: &[ProbeStep], lang: Lang) {
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let title = step_title(step, lang);
        let indent = "      ";
        match &step.outcome {
            StepOutcome::Passed { detail } => {
                println!("{n:>3} ✓ {title}");
                if !detail.is_empty() {
                    println!("{indent}{detail}");
                }
            }
            StepOutcome::Warning { detail, diagnostic } => {
                println!("{n:>3} ⚠ {title}");
                if !detail.is_empty() {
                    println!("{indent}{detail}");
                }
                print_diagnostic(diagnostic, lang, indent);
            }
            StepOutcome::Failed { diagnostic } => {
                println!("{n:>3} ✗ {title}");
                print_diagnostic(diagnostic, lang, indent);
            }
            StepOutcome::Skipped { reason } => {
                println!("{n:>3} – {title}");
                println!(
                    "{indent}{}: {}",
                    tr!(lang, "skipped", "übersprungen"),
                    skip_reason(reason, lang)
                );
            }
        }
    }
}

/// The failing step: its number (1-based), the step and its diagnostic.
pub(crate) fn failure(steps: &[ProbeStep]) -> Option<(usize, &ProbeStep, &Diagnostic)> {
    steps
        .iter()
        .enumerate()
        .find_map(|(i, s)| match &s.outcome {
            StepOutcome::Failed { diagnostic } => Some((i + 1, s, diagnostic)),
            _ => None,
        })
}

/// `"2m"`, `"30s"`, `"1h"` (as in the configuration).
pub fn parse_duration(text: &str, flag: &str) -> Result<Duration> {
    let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text);
    calpump_engine::config::duration::deserialize(de)
        .map_err(|e| CliError::usage(format!("{flag}: {e}")))
}

fn minutes(d: Duration, lang: Lang) -> String {
    let secs = d.as_secs();
    if secs >= 120 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} {}", tr!(lang, "s", "s"))
    }
}

pub async fn test(global: &Global, args: &ProfileTestArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let config = read_config(&global.config, lang)?;
    let factory = factory_of(&config, &args.name, lang)?;
    let backend = factory.backend();
    let probe = probe_mailbox(&config, &args.name, args.probe.as_deref());
    let limit = parse_duration(&args.wait_limit, "--wait-limit")?;
    let mut pause =
        parse_duration(&args.wait_first, "--wait-first")?.max(Duration::from_millis(100));
    let started = Instant::now();
    let mut attempt = 1u32;

    if !args.json {
        let mailbox = match &probe {
            Some(p) => format!("{} {p}", tr!(lang, "probe mailbox", "Testpostfach")),
            None => tr!(lang, "no probe mailbox", "kein Testpostfach").to_string(),
        };
        println!(
            "{} `{}` ({backend}) · {mailbox}",
            tr!(
                lang,
                "Connection test of profile",
                "Verbindungstest des Profils"
            ),
            args.name
        );
    }
    let steps = loop {
        let steps = run_steps(&config, &args.name, factory.as_ref(), probe.as_deref()).await;
        let permission = failure(&steps).is_some_and(|(_, _, d)| d.info().permission);
        let remaining = limit.saturating_sub(started.elapsed());
        if !(args.wait && permission) || remaining.is_zero() {
            break steps;
        }
        let wait = pause.min(remaining);
        if !args.json
            && let Some((n, step, d)) = failure(&steps)
        {
            if attempt == 1 {
                println!(
                    "{}",
                    tr!(
                        lang,
                        format!(
                            "Waiting: role, consent and access-policy changes take minutes to reach Exchange; retrying for up to {}.",
                            minutes(limit, lang)
                        ),
                        format!(
                            "Warten: Änderungen an Rollen, Zustimmungen und Zugriffsrichtlinien brauchen einige Minuten, bis Exchange sie kennt; neuer Versuch bis zu {} lang.",
                            minutes(limit, lang)
                        )
                    )
                );
            }
            println!(
                "{}",
                tr!(
                    lang,
                    format!(
                        "  attempt {attempt}: step {n} ({}) failed with [{}]; next try in {}",
                        step_title(step, lang),
                        d.code(),
                        minutes(wait, lang)
                    ),
                    format!(
                        "  Versuch {attempt}: Schritt {n} ({}) fehlgeschlagen mit [{}]; nächster Versuch in {}",
                        step_title(step, lang),
                        d.code(),
                        minutes(wait, lang)
                    )
                )
            );
        }
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(Duration::from_secs(120));
        attempt += 1;
    };

    let failed = failure(&steps);
    if args.json {
        let doc = json!({
            "profile": args.name,
            "backend": backend,
            "lang": lang,
            "probe_mailbox": probe,
            "ok": failed.is_none(),
            "attempts": attempt,
            "steps": steps.iter().enumerate().map(|(i, s)| {
                let mut v = json!({
                    "number": i + 1,
                    "id": s.id,
                    "title": step_title(s, lang),
                    "status": status_word(&s.outcome),
                });
                match &s.outcome {
                    StepOutcome::Passed { detail } => v["detail"] = json!(detail),
                    StepOutcome::Warning { detail, diagnostic } => {
                        v["detail"] = json!(detail);
                        v["diagnostic"] = diagnostic_json(diagnostic, lang);
                    }
                    StepOutcome::Failed { diagnostic } => {
                        v["diagnostic"] = diagnostic_json(diagnostic, lang);
                    }
                    StepOutcome::Skipped { reason } => v["reason"] = json!(skip_reason(reason, lang)),
                }
                v
            }).collect::<Vec<_>>(),
            "failed_step": failed.map(|(n, s, d)| json!({
                "number": n,
                "id": s.id,
                "code": d.code(),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print_steps(&steps, lang);
        let warnings = steps
            .iter()
            .filter(|s| matches!(s.outcome, StepOutcome::Warning { .. }))
            .count();
        match failed {
            Some((n, step, d)) => {
                let t = d.info().texts(lang);
                println!(
                    "{}",
                    tr!(
                        lang,
                        format!(
                            "Result: step {n} ({}) failed — [{}] {}: {}",
                            step_title(step, lang),
                            d.code(),
                            t.title,
                            t.cause
                        ),
                        format!(
                            "Ergebnis: Schritt {n} ({}) ist fehlgeschlagen — [{}] {}: {}",
                            step_title(step, lang),
                            d.code(),
                            t.title,
                            t.cause
                        )
                    )
                );
                if d.info().permission && !args.wait {
                    println!(
                        "{}",
                        tr!(
                            lang,
                            format!(
                                "If you just changed this, wait a few minutes or run `calpump profile test {} --wait`.",
                                args.name
                            ),
                            format!(
                                "Wenn Sie das gerade geändert haben, einige Minuten warten oder `calpump profile test {} --wait` ausführen.",
                                args.name
                            )
                        )
                    );
                }
            }
            None if warnings > 0 => println!(
                "{}",
                tr!(
                    lang,
                    format!(
                        "Result: all {} steps passed, {warnings} with a warning (see ⚠ above).",
                        steps.len()
                    ),
                    format!(
                        "Ergebnis: alle {} Schritte bestanden, {warnings} mit Warnung (siehe ⚠ oben).",
                        steps.len()
                    )
                )
            ),
            None => println!(
                "{}",
                tr!(
                    lang,
                    format!(
                        "Result: the connection works — no step failed ({} steps).",
                        steps.len()
                    ),
                    format!(
                        "Ergebnis: Die Verbindung funktioniert — kein Schritt ist fehlgeschlagen ({} Schritte).",
                        steps.len()
                    )
                )
            ),
        }
    }
    Ok(if failed.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
