//! `calpump migrate switch`: re-points the route in the configuration (toml_edit; comments and
//! layout kept), moves its state ([`calpump_engine::migrate::move_state`]) and records the
//! switch in the run history; `--back` undoes the last switch the same way — the backend
//! returned to starts without its old cursors (a full read), with the current backend's item
//! index, so it never applies a delta token from before the first switch.

use std::process::ExitCode;

use calpump_engine::config::Config;
use calpump_engine::diagnostics::Lang;
use calpump_engine::migrate::{last_switch, move_state, record_switch};
use serde_json::json;
use toml_edit::DocumentMut;

use super::{
    backend_of, check_profile, read_text, route_of, route_table, set_string, target_of,
    write_config,
};
use crate::cli::{Global, MigrateSwitchArgs};
use crate::error::{CliError, Result};
use crate::i18n::tr;

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
    // unused; the old backend's rows are never touched. Going back is no exception: the cursors
    // the backend returned to kept from before the first switch are stale.
    let moved = move_state(state.as_ref(), &route.name, &from_backend, &to_backend).await?;
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
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "  state: {} calendars start on {to_backend} without a cursor (full read; the sinks change only what differs), {} events carried over for the empty-calendar guard; the state of {from_backend} is left as it is",
                moved.calendars, moved.events
            ),
            format!(
                "  Zustand: {} Kalender beginnen auf {to_backend} ohne Cursor (vollständiges Lesen; die Senken ändern nur, was abweicht), {} Termine für den Leerkalender-Schutz übernommen; der Zustand von {from_backend} bleibt, wie er ist",
                moved.calendars, moved.events
            )
        )
    );
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

#[cfg(test)]
mod tests {
    use super::super::TEST_CONFIG as CONFIG;
    use super::*;

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
}
