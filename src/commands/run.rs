//! `calpump run`: the daemon. Stops cleanly on SIGINT/SIGTERM (exit 0).

use std::collections::BTreeSet;
use std::process::ExitCode;

use calpump_engine::daemon::{Daemon, bind};
use calpump_engine::runner::RunOptions;

use crate::cli::Global;
use crate::error::{CliError, Result};

pub async fn run(global: &Global) -> Result<ExitCode> {
    let config = crate::setup::load_config(&global.config)?;
    let registry = crate::setup::plugin_registry(&config);
    let (routes, mut sinks) = crate::setup::routes(
        &config,
        &registry,
        None,
        calpump_engine::diagnostics::Lang::detect(global.lang.as_deref()),
    )
    .await?;
    // Sinks no route uses still get ticks and have their pages served.
    let rest: BTreeSet<String> = config
        .sinks
        .keys()
        .filter(|name| !sinks.contains_key(*name))
        .cloned()
        .collect();
    sinks.extend(crate::setup::create_sinks(&config, &registry, &rest).await?);
    let state = crate::setup::open_state(&config).await?;
    let listener = bind(&config.http.listen)
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    if let Ok(addr) = listener.local_addr() {
        eprintln!("calpump: serving http://{addr}/ (status, metrics, door signs)");
    }
    let shutdown = crate::setup::shutdown_on_signals();
    let daemon = Daemon {
        sinks: sinks
            .into_iter()
            .map(|(name, handle)| {
                let dir = config
                    .sinks
                    .get(&name)
                    .and_then(|s| crate::setup::out_dir(&s.settings));
                (handle, dir)
            })
            .collect(),
        state,
        options: RunOptions {
            shadows: crate::setup::shadow_sources(&routes, &config),
            ..RunOptions::default()
        },
        routes,
        expiry: Some({
            let config = config.clone();
            std::sync::Arc::new(move || crate::expiry::of_config(&config))
        }),
    };
    daemon
        .run(listener, shutdown)
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
