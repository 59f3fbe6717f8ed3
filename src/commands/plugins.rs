//! `calpump plugins`: the sink plugins found, their ABI version and config schema, the built-in
//! a plugin file replaces (`replaces_builtin` in `--json`), and the files that were refused with
//! the reason.

use std::process::ExitCode;

use calpump_engine::config::Config;
use calpump_engine::plugin_host::PluginOrigin;

use crate::cli::{Global, PluginsArgs};
use crate::error::Result;

pub fn run(global: &Global, args: &PluginsArgs) -> Result<ExitCode> {
    // Without a config file the built-ins and the directory beside the binary are still shown.
    let config = if global.config.exists() {
        crate::setup::load_config(&global.config)?
    } else {
        Config::default()
    };
    let registry = crate::setup::plugin_registry(&config);
    if args.json {
        let doc = serde_json::json!({
            "abi": { "major": calpump_plugin::abi::ABI_MAJOR, "minor": calpump_plugin::abi::ABI_MINOR },
            "plugins": registry.plugins().collect::<Vec<_>>(),
            "refused": registry.refused(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "calpump speaks sink plugin ABI {}.{}",
        calpump_plugin::abi::ABI_MAJOR,
        calpump_plugin::abi::ABI_MINOR
    );
    for plugin in registry.plugins() {
        let origin = match &plugin.origin {
            PluginOrigin::Builtin => "built in".to_string(),
            PluginOrigin::File(f) => f.display().to_string(),
        };
        println!(
            "\n{} {} (ABI {}.{}) — {origin}",
            plugin.name, plugin.version, plugin.abi_major, plugin.abi_minor
        );
        if let Some(builtin) = &plugin.replaces_builtin {
            println!("  replaces the built-in {} {builtin}", plugin.name);
        }
        println!(
            "  config schema: {}",
            serde_json::to_string(&plugin.config_schema).unwrap_or_default()
        );
    }
    if !registry.refused().is_empty() {
        println!("\nrefused:");
        for refused in registry.refused() {
            println!("  {}: {}", refused.file.display(), refused.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}
