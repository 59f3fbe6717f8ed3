//! `calpump demo`: zero set-up. Starts the built-in Exchange simulator, writes a configuration
//! for it (a Graph profile, a door-sign sink and a SQLite database sink, one route over a room
//! list), syncs once, and prints where everything is. `--serve` then keeps the simulator and
//! `calpump run`'s daemon going so the pages can be watched in a browser.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use calpump_engine::diagnostics::Lang;
use calpump_engine::runner::{RunOptions, run_routes};
use calpump_simulator::{SimConfig, Simulator, catalogue};

use crate::cli::{DemoArgs, Global};
use crate::error::{CliError, Result};

/// The first line of a configuration `demo` wrote; only such a file is overwritten.
const MARKER: &str = "# Written by `calpump demo`";

/// The simulator's default port: a config the demo wrote keeps working with a standalone
/// `calpump simulator` (same port, same seed, same tenant).
const DEMO_PORT: u16 = 5077;

pub async fn run(global: &Global, args: &DemoArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let dir = absolute(&args.dir)?;
    let config_path = dir.join("calpump.toml");
    if config_path.exists() {
        let existing = std::fs::read_to_string(&config_path).unwrap_or_default();
        if !existing.starts_with(MARKER) {
            return Err(CliError::usage(format!(
                "{} exists and was not written by `calpump demo`; choose another --dir",
                config_path.display()
            )));
        }
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;

    let sim = start_simulator(args).await?;
    let secret_file = dir.join("graph-client-secret");
    write_secret(&secret_file)?;
    // The port the simulator got (5077, or a free one when that was taken): the config and
    // the hints name it, so a standalone simulator started as they say serves the same tenant.
    let standalone = simulator_command(sim.addr().port(), args);
    let text = demo_config(
        &dir,
        sim.base_url(),
        &sim.graph_url(),
        &secret_file,
        &standalone,
    );
    std::fs::write(&config_path, text)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", config_path.display())))?;

    say(
        lang,
        "Exchange simulator",
        "Exchange-Simulator",
        sim.base_url(),
    );
    say(
        lang,
        "configuration",
        "Konfiguration",
        &config_path.display().to_string(),
    );
    eprintln!();

    let config = crate::setup::load_config(&config_path)?;
    let registry = crate::setup::plugin_registry(&config);
    let (routes, sinks) = crate::setup::routes(&config, &registry, None, lang).await?;
    let state = crate::setup::open_state(&config).await?;
    let options = RunOptions {
        shutdown: crate::setup::shutdown_on_signals(),
        ..RunOptions::default()
    };
    let report = run_routes(&routes, Arc::clone(&state), &options).await;
    for route in &report.routes {
        let c = &route.counts;
        match lang {
            Lang::De => println!(
                "Route {}: {} Postfächer, {} Kalender, {} Termine an die Senken übergeben, {} Fehler",
                route.route, c.mailboxes, c.calendars, c.upserts, c.errors
            ),
            Lang::En => println!(
                "route {}: {} mailboxes, {} calendars, {} events delivered to the sinks, {} errors",
                route.route, c.mailboxes, c.calendars, c.upserts, c.errors
            ),
        }
        for error in &route.errors {
            println!("  {}", error.render(lang).replace('\n', "\n  "));
        }
        for mailbox in &route.mailboxes {
            for d in &mailbox.errors {
                println!(
                    "  {}: {}",
                    mailbox.address,
                    d.render(lang).replace('\n', "\n    ")
                );
            }
        }
    }

    let signs = dir.join("doorsigns");
    let index = signs.join("index.html");
    let first_room = first_room_page(&signs);
    let db = dir.join("calpump.db");
    println!();
    match lang {
        Lang::De => {
            println!("Türschilder:    file://{}", index.display());
            if let Some(page) = &first_room {
                println!("ein Raum:       file://{}", page.display());
            }
            println!("Datenbank:      {}  (Tabelle events)", db.display());
        }
        Lang::En => {
            println!("door signs:     file://{}", index.display());
            if let Some(page) = &first_room {
                println!("one room:       file://{}", page.display());
            }
            println!("database:       {}  (table events)", db.display());
        }
    }
    println!(
        "  sqlite3 {} \"select mailbox, start_utc, subject from events where deleted_at is null order by start_utc limit 5\"",
        db.display()
    );

    if !args.serve {
        println!();
        match lang {
            Lang::De => {
                println!("Weiter: `calpump demo --serve` zeigt die Schilder live im Browser;");
                println!(
                    "oder `{standalone}` starten und mit `calpump --config {} run` arbeiten.",
                    config_path.display()
                );
            }
            Lang::En => {
                println!("Next: `calpump demo --serve` shows the signs live in a browser;");
                println!(
                    "or start `{standalone}` and work with `calpump --config {} run`.",
                    config_path.display()
                );
            }
        }
        state.close().await;
        drop(sinks);
        sim.shutdown().await;
        return Ok(if report.any_failure() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    // --serve: the daemon, with the simulator alive beside it, until Ctrl-C.
    let listener = calpump_engine::daemon::bind(&config.http.listen)
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    if let Ok(addr) = listener.local_addr() {
        println!();
        println!("serving http://{addr}/sinks/signs/index.html — Ctrl-C stops");
        println!(
            "change a meeting: curl -X POST {}/_sim/events/change -H 'content-type: application/json' -d '{{…}}'",
            sim.base_url()
        );
    }
    let daemon = calpump_engine::daemon::Daemon {
        routes,
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
        options: RunOptions::default(),
        expiry: None,
    };
    let result = daemon
        .run(listener, crate::setup::shutdown_on_signals())
        .await
        .map_err(|e| CliError::failure(e.to_string()));
    sim.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

fn say(lang: Lang, en: &str, de: &str, value: &str) {
    let label = match lang {
        Lang::En => en,
        Lang::De => de,
    };
    eprintln!("calpump demo: {label}: {value}");
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(dir))
        .map_err(|e| CliError::failure(format!("cannot read the current directory: {e}")))
}

async fn start_simulator(args: &DemoArgs) -> Result<Simulator> {
    let config = |port| SimConfig {
        rooms: args.rooms,
        seed: args.seed,
        port,
        ..SimConfig::default()
    };
    match Simulator::start(config(DEMO_PORT)).await {
        Ok(sim) => Ok(sim),
        Err(first) => {
            tracing::info!(error = %first, port = DEMO_PORT, "simulator port taken; using a free one");
            Simulator::start(config(0))
                .await
                .map_err(|e| CliError::failure(format!("cannot start the simulator: {e}")))
        }
    }
}

/// The simulator's test secret goes into a file (0600) the config references, so the demo
/// shows how secrets are kept out of the configuration.
fn write_secret(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_file(path)
            .map_err(|e| CliError::failure(format!("cannot replace {}: {e}", path.display())))?;
    }
    calpump_engine::secret::write_private_file(path, catalogue::GRAPH_APP_SECRET.as_bytes())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// The command that starts a standalone simulator serving the demo's tenant on `port`: the
/// same rooms and seed (flags left out where they are `calpump simulator`'s defaults).
fn simulator_command(port: u16, args: &DemoArgs) -> String {
    let defaults = SimConfig::default();
    let mut command = format!("calpump simulator --port {port}");
    if args.rooms != defaults.rooms {
        command.push_str(&format!(" --rooms {}", args.rooms));
    }
    if args.seed != defaults.seed {
        command.push_str(&format!(" --seed {}", args.seed));
    }
    command
}

fn demo_config(
    dir: &Path,
    base_url: &str,
    graph_url: &str,
    secret_file: &Path,
    standalone: &str,
) -> String {
    let path = |name: &str| toml_string(&dir.join(name).display().to_string());
    format!(
        r#"{MARKER} — the built-in simulator's tenant, synced through Microsoft Graph.
# It keeps working with a standalone `{standalone}`.

[state]
path = {state}

[http]
listen = "127.0.0.1:8080"

[profiles.simulator]
backend = "graph"
tenant = {tenant}
client_id = {client}
client_secret = {{ file = {secret} }}
authority = {authority}
graph_url = {graph}

[sinks.signs]
plugin = "doorsign"
out_dir = {signs}
time_zone = "Europe/Berlin"
png = [
  {{ width = 296, height = 128, palette = "bwr" }},
  {{ width = 800, height = 480, palette = "bw" }},
]

[sinks.db]
plugin = "database"
url = {db}

[[routes]]
name = "rooms"
profile = "simulator"
room_lists = ["building-1@{domain}"]
window = {{ past_days = 1, future_days = 14 }}
interval = "1m"
sinks = ["signs", "db"]
"#,
        state = path("calpump-state.db"),
        tenant = toml_string(catalogue::TENANT_DOMAIN),
        client = toml_string(catalogue::GRAPH_APP_ID),
        secret = toml_string(&secret_file.display().to_string()),
        authority = toml_string(base_url),
        graph = toml_string(graph_url),
        signs = path("doorsigns"),
        db = toml_string(&format!("sqlite://{}", dir.join("calpump.db").display())),
        domain = catalogue::MAIL_DOMAIN,
    )
}

/// The first room page (alphabetically) in the door-sign output.
fn first_room_page(signs: &Path) -> Option<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(signs.join("rooms"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    pages.sort();
    pages.into_iter().next()
}
