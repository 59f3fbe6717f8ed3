//! `calpump init`: writes a commented starter configuration covering every section, and the key
//! file for `{ encrypted = "…" }` secrets (mode 0600). Refuses to overwrite either.
//!
//! The door-sign sink counts "today" and shows times in its `time_zone`, UTC when unset: the
//! starter sets it to this machine's IANA zone ([`machine_zone`]), or to "UTC" with a comment
//! asking the admin to set it when the machine's zone cannot be found.

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

/// The machine's IANA time zone: `TZ` when it names one (`Europe/Berlin`, `:Europe/Berlin` or
/// a path into a zoneinfo directory), else the target of the `/etc/localtime` symlink after
/// `zoneinfo/`, else `/etc/timezone`. `None` when none of them names a zone the door-sign sink
/// knows (a POSIX rule like `CET-1CEST` is not a name).
pub fn machine_zone() -> Option<String> {
    detect_zone(
        std::env::var("TZ").ok().as_deref(),
        std::fs::read_link("/etc/localtime").ok().as_deref(),
        std::fs::read_to_string("/etc/timezone").ok().as_deref(),
    )
}

/// [`machine_zone`] from its three sources, in that order.
fn detect_zone(
    tz: Option<&str>,
    localtime: Option<&Path>,
    timezone: Option<&str>,
) -> Option<String> {
    let from_tz = tz.and_then(|tz| {
        let tz = tz.trim().trim_start_matches(':');
        zone_in_path(tz).or_else(|| known_zone(tz))
    });
    from_tz
        .or_else(|| localtime.and_then(|link| zone_in_path(&link.to_string_lossy())))
        .or_else(|| timezone.and_then(|text| known_zone(text.trim())))
}

/// The zone named by a path into a zoneinfo directory (`/usr/share/zoneinfo/Europe/Berlin`,
/// `../usr/share/zoneinfo/posix/Europe/Berlin`).
fn zone_in_path(path: &str) -> Option<String> {
    let (_, name) = path.rsplit_once("zoneinfo/")?;
    let name = name
        .strip_prefix("posix/")
        .or_else(|| name.strip_prefix("right/"))
        .unwrap_or(name);
    known_zone(name)
}

/// `name` when the door-sign sink accepts it as its `time_zone` (so `calpump check` does).
fn known_zone(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    crate::sinks::doorsign_accepts_time_zone(name).then(|| name.to_string())
}

/// The `time_zone` line of the starter's door-sign sink.
fn time_zone_line(zone: Option<&str>) -> String {
    match zone {
        Some(zone) => format!(
            "time_zone = {:<17}  # the doors' zone for \"today\" and times (IANA); this machine's",
            toml::Value::String(zone.to_string()).to_string()
        ),
        None => "time_zone = \"UTC\"            # this machine's zone was not found: set the doors' IANA zone, e.g. \"Europe/Berlin\"".to_string(),
    }
}

/// The starter configuration for a file at `config`, its door signs in `zone` (see
/// [`machine_zone`]).
pub fn starter(config: &Path, zone: Option<&str>) -> String {
    let time_zone = time_zone_line(zone);
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
{time_zone}

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
    let zone = machine_zone();
    let text = starter(path, zone.as_deref());
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
    match &zone {
        Some(zone) => println!(
            "door signs: days and times in {zone} (this machine's time zone); change `time_zone` under [sinks.signs] if the rooms are elsewhere"
        ),
        None => println!(
            "door signs: days and times in UTC — this machine's time zone was not found; set `time_zone` under [sinks.signs] (e.g. \"Europe/Berlin\")"
        ),
    }
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
        let text = starter(Path::new("etc/calpump.toml"), Some("Europe/Berlin"));
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
        assert_eq!(
            config.sinks["signs"].settings.get("time_zone"),
            Some(&toml::Value::String("Europe/Berlin".into()))
        );
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

    #[test]
    fn without_the_machines_zone_the_signs_show_utc_and_the_comment_says_to_set_it() {
        let text = starter(Path::new("calpump.toml"), None);
        let line = text
            .lines()
            .find(|l| l.starts_with("time_zone"))
            .expect("a time_zone line");
        assert!(line.starts_with("time_zone = \"UTC\""), "{line}");
        assert!(line.contains("set the doors' IANA zone"), "{line}");
        let (config, issues) = calpump_engine::config::Config::parse(&text, None);
        assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
        assert_eq!(
            config.sinks["signs"].settings.get("time_zone"),
            Some(&toml::Value::String("UTC".into()))
        );
    }

    #[test]
    fn the_zone_comes_from_tz_then_the_localtime_link_then_etc_timezone() {
        let link = Path::new("/usr/share/zoneinfo/America/New_York");
        let zone = |tz, link, file| detect_zone(tz, link, file);
        assert_eq!(
            zone(Some("Europe/Berlin"), Some(link), Some("Asia/Tokyo\n")).as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            zone(Some(":Europe/Vienna"), None, None).as_deref(),
            Some("Europe/Vienna")
        );
        assert_eq!(
            zone(Some("/usr/share/zoneinfo/Europe/Paris"), None, None).as_deref(),
            Some("Europe/Paris")
        );
        // A POSIX rule is not a name: the link decides.
        assert_eq!(
            zone(Some("CET-1CEST,M3.5.0,M10.5.0/3"), Some(link), None).as_deref(),
            Some("America/New_York")
        );
        assert_eq!(
            zone(
                None,
                Some(Path::new("../usr/share/zoneinfo/posix/Europe/Berlin")),
                None
            )
            .as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            zone(
                None,
                Some(Path::new("/etc/somewhere")),
                Some("Asia/Tokyo\n")
            )
            .as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(zone(Some(""), None, Some("Mars/Olympus")), None);
        assert_eq!(zone(None, None, None), None);
    }
}
