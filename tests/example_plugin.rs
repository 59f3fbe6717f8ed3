//! The third-party example plugin (`plugins/examples/jsonl-sink`, built outside the workspace as
//! an outsider would) is found by `calpump plugins --json` with ABI 1.x and its schema, and
//! `calpump sync` of a Graph route against the in-process simulator writes every event of the
//! route's rooms through it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calpump_plugin::{EventKey, GlobalObjectId};
use calpump_simulator::{SimConfig, Simulator, catalogue};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const ROOMS: [&str; 2] = ["room-1.01@contoso.com", "room-1.02@contoso.com"];

/// Builds the example the way CI does (`cargo build --manifest-path …`; a no-op when CI already
/// did) and returns the library.
fn example_library() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("plugins/examples/jsonl-sink/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--manifest-path"])
        .arg(&manifest)
        // The example has its own workspace and target directory, as an outsider's would.
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cargo build of the example plugin runs");
    assert!(status.success(), "building the example plugin failed");
    let lib = root
        .join("plugins/examples/jsonl-sink/target/debug")
        .join(common::lib_file("calpump_example_jsonl_sink"));
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CALPUMP_EXAMPLE_SECRET", catalogue::GRAPH_APP_SECRET)
        .output()
        .expect("run calpump")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_plugin_is_listed_and_receives_every_event_of_a_sync() {
    let lib = tokio::task::spawn_blocking(example_library)
        .await
        .expect("join");
    let sim = Simulator::start(SimConfig {
        rooms: 4,
        events_per_room: 10,
        seed: 11,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(&lib, plugins.join(lib.file_name().expect("file name"))).expect("copy");
    let config = format!(
        r#"[state]
path = "state.db"

[plugins]
dirs = ["plugins"]

[profiles.cloud]
backend = "graph"
tenant = "{tenant}"
client_id = "{client}"
client_secret = {{ env = "CALPUMP_EXAMPLE_SECRET" }}
authority = "{authority}"
graph_url = "{graph}"

[sinks.audit]
plugin = "jsonl"
path = "batches.jsonl"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["{a}", "{b}"]
sinks = ["audit"]
"#,
        tenant = catalogue::TENANT_DOMAIN,
        client = catalogue::GRAPH_APP_ID,
        authority = sim.authority(),
        graph = sim.graph_url(),
        a = ROOMS[0],
        b = ROOMS[1],
    );
    std::fs::write(dir.join("calpump.toml"), config).expect("config");

    // 1. `calpump plugins --json` lists the example from the directory, ABI 1.x, its schema.
    let out = run(&dir, &["plugins", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let jsonl = doc["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "jsonl")
        .unwrap_or_else(|| panic!("jsonl not listed: {doc:#}"));
    assert_eq!(jsonl["abi_major"], 1, "{jsonl:#}");
    assert!(jsonl["abi_minor"].is_u64(), "{jsonl:#}");
    assert_eq!(
        jsonl["config_schema"]["required"],
        serde_json::json!(["path"]),
        "{jsonl:#}"
    );
    assert_eq!(
        jsonl["config_schema"]["properties"]["path"]["type"],
        "string"
    );
    assert!(
        doc["refused"].as_array().is_some_and(Vec::is_empty),
        "{doc:#}"
    );

    // 2. `check` validates [sinks.audit] through the plugin, `sync` writes through it.
    let out = run(&dir, &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || run(&dir, &["sync"])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out));

    let lines = std::fs::read_to_string(dir.join("batches.jsonl")).expect("batches.jsonl");
    let mut keys = BTreeSet::new();
    let mut mailboxes = BTreeSet::new();
    for line in lines.lines() {
        let batch: calpump_plugin::Batch = serde_json::from_str(line).expect("a Batch per line");
        assert_eq!(batch.schema_version, calpump_plugin::SCHEMA_VERSION);
        assert_eq!(batch.route, "rooms");
        mailboxes.insert(batch.mailbox.clone());
        keys.extend(batch.upserts.iter().map(|e| e.key().as_str().to_string()));
    }
    assert_eq!(mailboxes, ROOMS.iter().map(|s| s.to_string()).collect());

    // Every event of both rooms' calendars in the route's window, nothing else.
    let (start, end) = sim.window();
    let mut truth = BTreeSet::new();
    for room in ROOMS {
        for t in sim
            .control()
            .truth(
                room,
                Some("Calendar"),
                start,
                end + chrono::Duration::days(1),
            )
            .expect("truth")
        {
            let goid = GlobalObjectId::from_hex(&t.goid).expect("goid");
            let key = EventKey::derive(room, &goid, t.original_start).expect("key");
            truth.insert(key.as_str().to_string());
        }
    }
    assert!(!truth.is_empty());
    assert_eq!(keys, truth);
}
