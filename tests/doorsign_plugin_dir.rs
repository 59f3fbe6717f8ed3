//! The door-sign sink built as a `.so` and put into a `[plugins] dirs` directory replaces the
//! linked-in one, and the real `calpump` binary then writes exactly what it writes with the
//! linked-in sink: two directories sync the same simulator (Graph) into door signs — one with the
//! built-in `doorsign`, one with `libcalpump_doorsign.so` in its plugin directory — the door
//! signs' clock frozen, and every file of both output directories (rooms' JSON, HTML, PNG at two
//! sizes, the index, the sink's state) is compared byte for byte; after changes in the
//! simulator an incremental sync of both compares them again.
//!
//! `calpump plugins` and the sync's log must say that the file replaced the built-in.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calpump_simulator::{NewEvent, SimConfig, Simulator, TruthInstance, catalogue};
use chrono::{DateTime, Duration, Utc};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const ROOMS: [&str; 4] = [
    "room-1.01@contoso.com",
    "room-1.02@contoso.com",
    "room-1.03@contoso.com",
    "room-1.04@contoso.com",
];
const SECRET_ENV: &str = "CALPUMP_DOORSIGN_TEST_SECRET";
const REPLACED: &str = "a plugin file replaces the built-in sink";

/// Builds the door-sign cdylib (`cargo test` does not build cdylib targets; a no-op when CI's
/// `cargo build --workspace` already did) and returns the library.
fn doorsign_library() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "calpump-sink-doorsign-plugin"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build of the door-sign plugin runs");
    assert!(
        status.success(),
        "building calpump-sink-doorsign-plugin failed"
    );
    let lib = common::target_dir()
        .join("debug")
        .join(common::lib_file("calpump_doorsign"));
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

/// A directory with a config whose route writes the rooms into the door-sign sink `signs`
/// (`out_dir = "signs"`); with `plugin`, the library is copied into `plugins/` and that
/// directory configured.
fn setup(dir: &Path, sim: &Simulator, clock: DateTime<Utc>, plugin: Option<&Path>) {
    std::fs::create_dir_all(dir).expect("dir");
    let plugins = match plugin {
        Some(lib) => {
            let plugins = dir.join("plugins");
            std::fs::create_dir_all(&plugins).expect("plugin dir");
            std::fs::copy(lib, plugins.join(lib.file_name().expect("file name")))
                .expect("copy the plugin");
            "[plugins]\ndirs = [\"plugins\"]\n"
        }
        None => "",
    };
    let mailboxes: Vec<String> = ROOMS.iter().map(|r| format!("\"{r}\"")).collect();
    let config = format!(
        r#"[state]
path = "state.db"

{plugins}
[profiles.cloud]
backend = "graph"
tenant = "{tenant}"
client_id = "{client}"
client_secret = {{ env = "{SECRET_ENV}" }}
authority = "{authority}"
graph_url = "{graph}"

[sinks.signs]
plugin = "doorsign"
out_dir = "signs"
language = "de"
time_zone = "Europe/Berlin"
png = [{{ width = 296, height = 128, palette = "bw" }}, {{ width = 400, height = 300, palette = "bwr" }}]
clock = {clock}

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = [{mailboxes}]
sinks = ["signs"]
"#,
        tenant = catalogue::TENANT_DOMAIN,
        client = catalogue::GRAPH_APP_ID,
        authority = sim.authority(),
        graph = sim.graph_url(),
        clock = clock.format("%Y-%m-%dT%H:%M:%SZ"),
        mailboxes = mailboxes.join(", "),
    );
    std::fs::write(dir.join("calpump.toml"), config).expect("config");
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env(SECRET_ENV, catalogue::GRAPH_APP_SECRET)
        .output()
        .expect("run calpump")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `calpump sync` that must succeed; returns its log.
fn sync(dir: &Path, stage: &str) -> String {
    let out = run(dir, &["sync"]);
    assert!(
        out.status.success(),
        "{stage}: sync in {} failed\n{}",
        dir.display(),
        text(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `calpump plugins --json`: the `doorsign` entry and the refused files.
fn doorsign_entry(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let out = run(dir, &["plugins", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plugins JSON");
    let entries: Vec<&serde_json::Value> = doc["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter(|p| p["name"] == "doorsign")
        .collect();
    assert_eq!(entries.len(), 1, "one doorsign plugin: {doc:#}");
    (entries[0].clone(), doc["refused"].clone())
}

/// Every file under `dir` (recursive), by relative path.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The two output directories hold the same files with the same bytes.
fn assert_same_outputs(linked: &Path, loaded: &Path, stage: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let a = tree(&linked.join("signs"));
    let b = tree(&loaded.join("signs"));
    let names = |t: &BTreeMap<PathBuf, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "{stage}: the same files");
    for room in ROOMS {
        let id = room.replace('@', "_at_");
        for file in [
            format!("rooms/{id}.json"),
            format!("rooms/{id}.html"),
            format!("rooms/{id}.png"),
            format!("rooms/{id}-296x128.png"),
            format!("rooms/{id}-400x300.png"),
        ] {
            assert!(a.contains_key(Path::new(&file)), "{stage}: {file} written");
        }
    }
    assert!(
        a.contains_key(Path::new("index.html")),
        "{stage}: index.html"
    );
    for (path, bytes) in &a {
        assert!(
            bytes == &b[path],
            "{stage}: {} differs between the linked-in and the loaded sink",
            path.display()
        );
    }
    a
}

fn single(sim: &Simulator, room: &str) -> TruthInstance {
    let (start, end) = sim.window();
    sim.control()
        .truth(room, None, start, end)
        .expect("truth")
        .into_iter()
        .find(|t| {
            serde_json::to_value(t.kind).ok() == Some(serde_json::json!("singleInstance"))
                && !t.is_all_day
                && !t.is_cancelled
        })
        .unwrap_or_else(|| panic!("{room} has a single event"))
}

#[test]
fn the_doorsign_so_in_a_plugin_dir_replaces_the_builtin_and_writes_the_same_files() {
    let lib = doorsign_library();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let anchor = calpump_simulator::default_anchor();
    let sim = rt
        .block_on(Simulator::start(SimConfig {
            rooms: 4,
            events_per_room: 12,
            users: 4,
            seed: 23,
            anchor: Some(anchor),
            ..SimConfig::default()
        }))
        .expect("simulator");
    // The signs' clock: today 09:30 UTC, where the generated calendars have their meetings.
    let clock = anchor + Duration::hours(9) + Duration::minutes(30);
    let tmp = tempfile::tempdir().expect("tmp");
    let linked = tmp.path().join("linked");
    let loaded = tmp.path().join("loaded");
    setup(&linked, &sim, clock, None);
    setup(&loaded, &sim, clock, Some(&lib));
    let copied = loaded
        .join("plugins")
        .join(common::lib_file("calpump_doorsign"))
        .canonicalize()
        .expect("the copied plugin");

    // 1. Without a plugin directory the built-in serves `doorsign`; with one, the file does and
    //    says which built-in it replaces. Nothing is refused.
    let (builtin, refused) = doorsign_entry(&linked);
    assert_eq!(builtin["origin"], "builtin", "{builtin:#}");
    assert!(builtin["replaces_builtin"].is_null(), "{builtin:#}");
    assert_eq!(refused, serde_json::json!([]));
    let builtin_version = builtin["version"].as_str().expect("version").to_string();
    let (file, refused) = doorsign_entry(&loaded);
    assert_eq!(
        file["origin"],
        serde_json::json!({ "file": copied }),
        "{file:#}"
    );
    assert_eq!(
        file["replaces_builtin"],
        builtin_version.as_str(),
        "{file:#}"
    );
    assert_eq!(file["config_schema"], builtin["config_schema"]);
    assert_eq!(refused, serde_json::json!([]), "no NameClash");
    let out = run(&loaded, &["plugins"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&copied.display().to_string())
            && listing.contains(&format!("replaces the built-in doorsign {builtin_version}")),
        "{}",
        text(&out)
    );
    let out = run(&loaded, &["check"]);
    assert!(out.status.success(), "{}", text(&out));

    // 2. A first (full) sync of both.
    let log = sync(&linked, "full");
    assert!(!log.contains(REPLACED), "{log}");
    let log = sync(&loaded, "full");
    let line = log
        .lines()
        .find(|l| l.contains(REPLACED))
        .unwrap_or_else(|| panic!("the sync's log names the replacement:\n{log}"));
    assert!(
        line.contains(&copied.display().to_string())
            && line.contains(&format!("builtin_version={builtin_version}")),
        "{line}"
    );
    let files = assert_same_outputs(&linked, &loaded, "full sync");
    let first_room = files[Path::new("rooms/room-1.01_at_contoso.com.json")].clone();

    // 3. Changes in the simulator; an incremental sync of both.
    let c = sim.control();
    let room = ROOMS[0];
    c.create_event(
        room,
        &NewEvent {
            subject: "Umzug <Büro> & Technik".into(),
            start: Some(clock - Duration::minutes(10)),
            end: Some(clock + Duration::minutes(50)),
            ..NewEvent::default()
        },
    )
    .expect("create");
    let gone = single(&sim, ROOMS[1]);
    c.delete_event(ROOMS[1], &gone.goid).expect("delete");
    sync(&linked, "incremental");
    sync(&loaded, "incremental");
    let files = assert_same_outputs(&linked, &loaded, "incremental sync");
    let room_file = &files[Path::new("rooms/room-1.01_at_contoso.com.json")];
    assert_ne!(room_file, &first_room, "the change reached the sign");
    let room_json: serde_json::Value = serde_json::from_slice(room_file).expect("room JSON");
    assert_eq!(room_json["status"], "busy", "{room_json:#}");
    assert_eq!(
        room_json["current"]["subject"], "Umzug <Büro> & Technik",
        "{room_json:#}"
    );

    rt.block_on(sim.shutdown());
}
