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
//!
//! Presentation only, one file per command (`plan.rs`, `verify.rs`, `switch.rs`); what is
//! decided — the comparison, the needs and the split, the state move — is in
//! [`calpump_engine::migrate`]. `derive.rs` derives a Graph profile from an EWS Office 365
//! profile (`--write-profile`): it knows both backends' profile keys, so it stays out of the
//! engine. Shared here: diagnostics as text and JSON, the route and profile look-ups, and the
//! in-place TOML edits (toml_edit) with the atomic write of the configuration.

mod derive;
mod plan;
mod switch;
mod verify;

use std::path::Path;

use calpump_engine::config::{Config, ConfigIssue, RouteConfig};
use calpump_engine::diagnostics::{Diagnostic, Lang};
use calpump_engine::source::ProfileContext;
use serde_json::{Value, json};
use toml_edit::{DocumentMut, Item, TableLike};

use crate::error::{CliError, Result};
use crate::i18n::{first_sentence, tr};

pub use plan::plan;
pub use switch::switch;
pub use verify::verify;

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

/// A configuration the command modules' tests edit.
#[cfg(test)]
const TEST_CONFIG: &str = r#"# calpump
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
