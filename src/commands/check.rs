//! `calpump check`: every problem of the configuration at once, each with its place
//! (`file:line:col: error: `path`: message`), without touching the network: the file's own
//! structure and references, each profile through its backend's factory, each sink's secrets
//! and its plugin's `check`, unknown plugins, and plugin files that were refused.
//! Exit code 2 when there is any error.

use std::process::ExitCode;

use calpump_engine::config::{Config, ConfigError, ConfigIssue};
use calpump_engine::plugin_host::resolve_settings;
use calpump_engine::source::ProfileContext;

use crate::cli::{CheckArgs, Global};
use crate::error::{CliError, Result};

/// Every issue of the configuration at `path`.
pub fn issues(config: &Config, mut issues: Vec<ConfigIssue>) -> Vec<ConfigIssue> {
    let registry = crate::setup::plugin_registry(config);
    for refused in registry.refused() {
        issues.push(ConfigIssue::warning(
            "plugins.dirs",
            format!(
                "plugin {} refused: {}",
                refused.file.display(),
                refused.reason
            ),
        ));
    }

    let resolver = config.secret_resolver();
    for (name, profile) in &config.profiles {
        let at = format!("profiles.{name}");
        match crate::backends::find(&profile.backend) {
            Err(known) => issues.push(ConfigIssue::error(
                format!("{at}.backend"),
                format!("unknown backend `{}` (known: {known})", profile.backend),
            )),
            Ok(factory) => {
                let ctx = ProfileContext {
                    name,
                    settings: &profile.settings,
                    secrets: &resolver,
                };
                issues.extend(factory.check(&ctx).into_iter().map(|i| i.under(&at)));
            }
        }
    }

    for (name, sink) in &config.sinks {
        let at = format!("sinks.{name}");
        let settings = match resolve_settings(&sink.settings, &resolver) {
            Ok(settings) => Some(settings),
            Err(problems) => {
                for p in problems {
                    issues.push(ConfigIssue::error(
                        format!("{at}.{}", p.path),
                        format!("{} [{}]", p.message, p.diagnostic.code()),
                    ));
                }
                None
            }
        };
        if registry.get(&sink.plugin).is_none() {
            issues.push(ConfigIssue::error(
                format!("{at}.plugin"),
                format!(
                    "unknown plugin `{}` (known: {}); plugins load only from [plugins] dirs and plugins/ beside the calpump binary",
                    sink.plugin,
                    registry.known_names()
                ),
            ));
            continue;
        }
        // With a secret missing, the plugin would only complain about the same key again.
        let Some(settings) = settings else { continue };
        match registry.check(&sink.plugin, &settings) {
            Ok(warnings) => issues.extend(
                warnings
                    .into_iter()
                    .map(|w| ConfigIssue::warning(at.clone(), w)),
            ),
            Err(e) => issues.push(ConfigIssue::error(
                at.clone(),
                format!("plugin `{}`: {}", sink.plugin, e.message),
            )),
        }
    }
    // Secret and certificate expiry (30 days ahead a warning, then an error), in case a
    // backend's own check did not report it.
    for item in crate::expiry::of_config(config) {
        let Some(d) = &item.diagnostic else { continue };
        let at = format!("profiles.{}", item.profile);
        let reported = issues
            .iter()
            .any(|i| i.path.starts_with(&at) && i.message.contains(d.code()));
        if !reported {
            let key = if item.what.starts_with("certificate") {
                "certificate"
            } else {
                "secret_expires"
            };
            let message = format!("[{}] {}", d.code(), d.detail());
            issues.push(if item.status() == "expired" {
                ConfigIssue::error(format!("{at}.{key}"), message)
            } else {
                ConfigIssue::warning(format!("{at}.{key}"), message)
            });
        }
    }
    for issue in &mut issues {
        if issue.location.is_none() {
            issue.location = config.locate(&issue.path);
        }
    }
    issues
}

pub fn run(global: &Global, args: &CheckArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&global.config).map_err(|source| {
        let e = ConfigError::Read {
            path: global.config.clone(),
            source,
        };
        CliError::usage(e.to_string())
    })?;
    let (config, parsed) = Config::parse(&text, Some(&global.config));
    let all = issues(&config, parsed);
    let errors = all.iter().filter(|i| i.is_error()).count();
    let warnings = all.len() - errors;
    if args.json {
        let doc = serde_json::json!({
            "file": global.config,
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "issues": all,
            "secret_expiry": crate::expiry::of_config(&config).iter().map(|s| serde_json::json!({
                "profile": s.profile,
                "what": s.what,
                "expires": s.expires,
                "days_left": s.days_left,
                "status": s.status(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for issue in &all {
            println!("{issue}");
        }
        if errors == 0 {
            println!(
                "{}: configuration OK ({warnings} warning{})",
                global.config.display(),
                if warnings == 1 { "" } else { "s" }
            );
        } else {
            println!(
                "{}: {errors} error{}, {warnings} warning{}",
                global.config.display(),
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
