//! `calpump init`: writes a commented starter configuration covering every section, and the key
//! file for `{ encrypted = "…" }` secrets (mode 0600). Refuses to overwrite either.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use calpump_engine::secret::SecretResolver;

use crate::cli::Global;
use crate::error::{CliError, Result};

/// A path beside the configuration file, as written into it.
fn beside(config: &Path, name: &str) -> PathBuf {
    match config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

pub fn starter(config: &Path) -> String {
    let state = toml_string(&beside(config, "calpump-state.db"));
    let key = toml_string(&beside(config, "calpump.key"));
    let signs = toml_string(&beside(config, "doorsigns"));
    let db = toml_string(&beside(config, "calpump.db"));
    let plugins = toml_string(&beside(config, "plugins"));
    format!(
        r#"# calpump configuration. `calpump check` validates it without touching the network.
# Relative paths are relative to the directory calpump is started in.

[state]                      # cursors, run history, mailbox status (SQLite)
path = {state}

[secrets]                    # key for {{ encrypted = "…" }} values (`calpump secret encrypt`)
key_file = {key}

[plugins]                    # extra sink plugins (*.so / *.dylib / *.dll): only these
dirs = []                    # directories (e.g. [{plugins}]) and plugins/ beside the calpump
                             # binary are searched
call_timeout = "2m"          # how long one plugin call may take

[http]                       # `calpump run`: door signs, /status, /metrics, /healthz
listen = "127.0.0.1:8080"

# A connection to Exchange Online through Microsoft Graph (application permission
# Calendars.Read, plus Place.Read.All for room lists).
[profiles.cloud]
backend = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000000"
client_secret = {{ env = "CALPUMP_CLOUD_SECRET" }}   # or {{ file = "…" }} or {{ encrypted = "cp1:…" }}
# secret_expires = 2027-03-19                       # `check` warns 30 days ahead
# authority = "https://login.microsoftonline.com"   # national clouds and the simulator
# graph_url = "https://graph.microsoft.com/v1.0"

# An on-premises Exchange through EWS (uncomment to use).
# [profiles.onprem]
# backend = "ews"
# autodiscover = "svc-pump@contoso.com"             # or url = "https://mail.contoso.com/EWS/Exchange.asmx"
# auth = {{ kind = "ntlm", username = "CONTOSO\\svc-pump", password = {{ env = "PUMP_PW" }} }}
# impersonation = true

[sinks.signs]                # door-sign pages, served by `calpump run` under /sinks/signs/
plugin = "doorsign"
out_dir = {signs}

[sinks.db]                   # events in a database (sqlite://, postgres://, mysql://)
plugin = "database"
url = "sqlite://{db_bare}"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["room-1.01@contoso.com"]   # and/or room_lists = ["Building A"]
calendars = "default"                   # or "all", or ["default", "default/Projects"]
window = {{ past_days = 1, future_days = 14 }}
interval = "2m"
sinks = ["signs", "db"]
concurrency = 8                         # calendars read at the same time
empty_guard = true                      # hold back calendars that suddenly read empty
"#,
        db_bare = db.trim_matches('"'),
    )
}

pub fn run(global: &Global) -> Result<ExitCode> {
    let path = &global.config;
    if path.exists() {
        return Err(CliError::usage(format!(
            "{} exists; calpump init does not overwrite it",
            path.display()
        )));
    }
    let text = starter(path);
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    let resolver = SecretResolver::new(beside(path, "calpump.key"));
    match resolver.ensure_key_file() {
        Ok(true) => println!("wrote {} (mode 0600)", resolver.key_file().display()),
        Ok(false) => println!(
            "kept the existing key file {}",
            resolver.key_file().display()
        ),
        Err(e) => return Err(CliError::failure(e.to_string())),
    }
    println!("next: edit it, then run `calpump check`");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_config_parses_and_covers_every_section() {
        let text = starter(Path::new("etc/calpump.toml"));
        let (config, issues) = calpump_engine::config::Config::parse(&text, None);
        assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
        assert_eq!(config.state.path, PathBuf::from("etc/calpump-state.db"));
        assert_eq!(config.secrets.key_file, PathBuf::from("etc/calpump.key"));
        assert_eq!(
            config.routes[0].sinks,
            vec!["signs".to_string(), "db".to_string()]
        );
        assert_eq!(config.sinks["db"].plugin, "database");
        assert_eq!(config.sinks["signs"].plugin, "doorsign");
        for section in [
            "[state]",
            "[secrets]",
            "[plugins]",
            "[http]",
            "[profiles.",
            "[sinks.",
            "[[routes]]",
        ] {
            assert!(text.contains(section), "{section}");
        }
    }
}
