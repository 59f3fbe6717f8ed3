//! `calpump simulator`: the built-in Exchange simulator, standalone, until Ctrl-C.
//!
//! It prints where it listens and the credentials of its catalogue so a profile can be pointed
//! at it (the same profiles `calpump demo` writes).

use std::process::ExitCode;

use calpump_simulator::{SimConfig, Simulator, catalogue};

use crate::cli::SimulatorArgs;
use crate::error::{CliError, Result};

pub async fn run(args: &SimulatorArgs) -> Result<ExitCode> {
    // Listen for signals before telling anyone where we are, so a SIGTERM right after the
    // banner still stops us cleanly.
    let stop = stop_signal();
    let config = SimConfig {
        rooms: args.rooms,
        events_per_room: args.events,
        seed: args.seed,
        port: args.port,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config)
        .await
        .map_err(|e| CliError::failure(format!("cannot start the simulator: {e}")))?;
    let (from, to) = sim.window();
    println!("calpump simulator — an Exchange on loopback (EWS, Microsoft Graph, OAuth2)");
    println!();
    println!("  base URL     {}", sim.base_url());
    println!("  Graph        {}", sim.graph_url());
    println!("  token        {}", sim.token_url());
    println!("  EWS          {}", sim.ews_url());
    println!("  control API  {}/_sim/", sim.base_url());
    println!(
        "  tenant       {} ({}), {} rooms, {} items per room, seed {}",
        catalogue::TENANT_DOMAIN,
        catalogue::TENANT_ID,
        args.rooms,
        args.events,
        args.seed
    );
    println!(
        "  populated    {} … {}",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    );
    println!();
    println!("A Graph profile for it:");
    println!();
    println!("  [profiles.sim-graph]");
    println!("  backend = \"graph\"");
    println!("  tenant = \"{}\"", catalogue::TENANT_DOMAIN);
    println!("  client_id = \"{}\"", catalogue::GRAPH_APP_ID);
    println!(
        "  client_secret = \"{}\"   # the simulator's own test secret",
        catalogue::GRAPH_APP_SECRET
    );
    println!("  authority = \"{}\"", sim.base_url());
    println!("  graph_url = \"{}\"", sim.graph_url());
    println!();
    println!("An EWS profile for it (on-premises style, Basic auth with impersonation):");
    println!();
    println!("  [profiles.sim-ews]");
    println!("  backend = \"ews\"");
    println!("  url = \"{}\"", sim.ews_url());
    println!(
        "  auth = {{ kind = \"basic\", username = \"{}\", password = \"{}\" }}",
        catalogue::SVC_PUMP,
        catalogue::ACCOUNT_PASSWORD
    );
    println!("  impersonation = true");
    println!();
    println!(
        "Rooms: room-1.01@contoso.com … (GET {}/_sim/mailboxes?kind=room)",
        sim.base_url()
    );
    println!("Press Ctrl-C to stop.");
    let mut stop = stop;
    stop.wait().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM, installed when made.
fn stop_signal() -> calpump_engine::shutdown::Shutdown {
    crate::setup::shutdown_on_signals()
}
