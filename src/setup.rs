//! What several commands build from the configuration: plugins, sinks, sources, the state
//! store and the routes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use calpump_engine::config::{Config, ConfigError, ConfigIssue};
use calpump_engine::diagnostics::{Diagnostic, Lang};
use calpump_engine::plugin_host::{
    PluginRegistry, SinkCallErrorKind, SinkHandle, resolve_settings,
};
use calpump_engine::runner::RouteRuntime;
use calpump_engine::source::{ProfileContext, Source};
use calpump_engine::state::{SqliteStateStore, StateStore};

use crate::error::{CliError, Result};

/// Loads and validates the configuration; warnings are logged.
pub fn load_config(path: &Path) -> Result<Config> {
    match Config::load(path) {
        Ok((config, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(config)
        }
        Err(ConfigError::Read { path, source })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(CliError::usage(format!(
                "no configuration at {}: write one with `calpump init` or pass --config",
                path.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The built-in sinks plus every plugin file in the configured directories; a file named like a
/// built-in replaces it (logged), two files with one name are refused (see `plugin_host`).
pub fn plugin_registry(config: &Config) -> PluginRegistry {
    let mut registry = PluginRegistry::new();
    for table in crate::sinks::builtin_tables() {
        if let Err(e) = registry.register_builtin(table) {
            tracing::error!(error = %e, "built-in sink not registered");
        }
    }
    for error in registry.discover(&config.plugins) {
        tracing::warn!(error = %error, "plugin not loaded");
    }
    registry
}

/// The `out_dir` setting of a sink, if it has one (served by `calpump run`).
pub fn out_dir(settings: &toml::Table) -> Option<PathBuf> {
    settings
        .get("out_dir")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
}

/// Creates the named sinks.
pub async fn create_sinks(
    config: &Config,
    registry: &PluginRegistry,
    names: &BTreeSet<String>,
) -> Result<BTreeMap<String, SinkHandle>> {
    let resolver = config.secret_resolver();
    let mut out = BTreeMap::new();
    for name in names {
        let Some(sink) = config.sinks.get(name) else {
            continue;
        };
        let settings = resolve_settings(&sink.settings, &resolver).map_err(|issues| {
            let text: Vec<String> = issues
                .iter()
                .map(|i| {
                    let path = format!("sinks.{name}.{}", i.path);
                    located(config, ConfigIssue::error(path, i.message.clone()))
                })
                .collect();
            CliError::usage(text.join("\n"))
        })?;
        let handle = registry
            .create_sink(name, &sink.plugin, settings, config.plugins.call_timeout)
            .await
            .map_err(|e| {
                let text = format!("sink `{name}` could not start: {}", e.message);
                if e.kind == SinkCallErrorKind::Config {
                    CliError::usage(text)
                } else {
                    CliError::failure(text)
                }
            })?;
        out.insert(name.clone(), handle);
    }
    Ok(out)
}

/// An issue rendered with its place in the file.
pub fn located(config: &Config, mut issue: ConfigIssue) -> String {
    if issue.location.is_none() {
        issue.location = config.locate(&issue.path);
    }
    issue.to_string()
}

/// Builds the source of a profile through its backend's factory; a failure is rendered in the
/// language of the environment (`LC_ALL`, `LC_MESSAGES`, `LANG`). See [`build_source_in`].
pub fn build_source(config: &Config, profile: &str) -> Result<Arc<dyn Source>> {
    build_source_in(config, profile, Lang::detect(None))
}

/// Builds the source of a profile. A backend's failure (a secret that cannot be read, a
/// certificate that does not load) is shown as `profile test` shows it: the catalogue's code and
/// title, the detail, cause and remedy in `lang`. Exit 2: it is the configuration's problem.
pub fn build_source_in(config: &Config, profile: &str, lang: Lang) -> Result<Arc<dyn Source>> {
    factory_build(config, profile)?.map_err(|diagnostic| {
        CliError::usage(format!("profile `{profile}`: {}", diagnostic.render(lang)))
    })
}

/// The profile's factory run: the outer error when the profile or its backend is unknown, the
/// inner one when the backend refuses to build.
fn factory_build(
    config: &Config,
    profile: &str,
) -> Result<std::result::Result<Arc<dyn Source>, Diagnostic>> {
    let Some(p) = config.profiles.get(profile) else {
        return Err(CliError::usage(format!("no profile named `{profile}`")));
    };
    let factory = crate::backends::find(&p.backend).map_err(|known| {
        CliError::usage(located(
            config,
            ConfigIssue::error(
                format!("profiles.{profile}.backend"),
                format!("unknown backend `{}` (known: {known})", p.backend),
            ),
        ))
    })?;
    let resolver = config.secret_resolver();
    let ctx = ProfileContext {
        name: profile,
        settings: &p.settings,
        secrets: &resolver,
    };
    Ok(factory.build(&ctx).map_err(|e| e.diagnostic))
}

/// Opens the state store and marks runs a dead process left behind.
pub async fn open_state(config: &Config) -> Result<Arc<dyn StateStore>> {
    let store = SqliteStateStore::open(&config.state.path)
        .await?
        .with_retention(config.state.retention());
    calpump_engine::runner::recover(&store).await?;
    Ok(Arc::new(store))
}

/// The selected routes (all, or one by name) ready to run, with the sinks they use.
/// Errors are rendered in `lang`.
pub async fn routes(
    config: &Config,
    registry: &PluginRegistry,
    only: Option<&str>,
    lang: Lang,
) -> Result<(Vec<RouteRuntime>, BTreeMap<String, SinkHandle>)> {
    let selected: Vec<_> = match only {
        Some(name) => {
            let route = config.route(name).ok_or_else(|| {
                let known: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
                CliError::usage(format!(
                    "no route named `{name}` (known: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            vec![route.clone()]
        }
        None => config.routes.clone(),
    };
    let mut sources: BTreeMap<String, Arc<dyn Source>> = BTreeMap::new();
    for route in &selected {
        if !sources.contains_key(&route.profile) {
            sources.insert(
                route.profile.clone(),
                build_source_in(config, &route.profile, lang)?,
            );
        }
    }
    let names: BTreeSet<String> = selected
        .iter()
        .flat_map(|r| r.sinks.iter().cloned())
        .collect();
    let sinks = create_sinks(config, registry, &names).await?;
    let runtimes = selected
        .into_iter()
        .filter_map(|route| {
            let source = sources.get(&route.profile)?.clone();
            let handles = route
                .sinks
                .iter()
                .filter_map(|s| sinks.get(s).cloned())
                .collect();
            Some(RouteRuntime {
                config: route,
                source,
                sinks: handles,
            })
        })
        .collect();
    Ok((runtimes, sinks))
}

/// The shadow sources of the routes that name a `shadow_profile` (route name → source), for
/// [`calpump_engine::runner::RunOptions::shadows`]. A shadow profile that cannot be built is
/// logged and skipped: shadow mode must never stop the route itself.
pub fn shadow_sources(
    routes: &[RouteRuntime],
    config: &Config,
) -> BTreeMap<String, Arc<dyn Source>> {
    let mut out = BTreeMap::new();
    for route in routes {
        let Some(shadow) = &route.config.shadow_profile else {
            continue;
        };
        let built = factory_build(config, shadow).and_then(|built| {
            built.map_err(|d| CliError::usage(format!("profile `{shadow}`: {d}")))
        });
        match built {
            Ok(source) => {
                out.insert(route.config.name.clone(), source);
            }
            Err(e) => tracing::warn!(
                route = %route.config.name, shadow_profile = %shadow, error = %e,
                "shadow profile not usable; the route runs without its shadow comparison"
            ),
        }
    }
    out
}

/// Sets a shutdown trigger on SIGINT and SIGTERM. The handlers are installed before this
/// returns, so a signal that arrives right after is never lost (nor kills the process).
pub fn shutdown_on_signals() -> calpump_engine::shutdown::Shutdown {
    let (trigger, shutdown) = calpump_engine::shutdown::channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return shutdown;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: finishing the batch in flight, then stopping"),
                _ = int.recv() => tracing::info!("SIGINT: finishing the batch in flight, then stopping"),
            }
            trigger.trigger();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupted: finishing the batch in flight, then stopping");
        trigger.trigger();
    });
    shutdown
}
