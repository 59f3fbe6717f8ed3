//! Helpers shared by the `migrate_*` end-to-end tests: the simulator with the catalogue's apps as
//! profiles, the `calpump` binary, PostgreSQL through `psql`, door-sign files, HTTP GET.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use calpump_simulator::control::Protocol;
use calpump_simulator::{SimConfig, Simulator, TruthInstance, catalogue};

pub const BIN: &str = env!("CARGO_BIN_EXE_calpump");

/// The environment variables the profiles' secrets are read from.
pub const SECRETS: &[(&str, &str)] = &[
    ("MIG_EWS_SECRET", catalogue::EWS_APP_SECRET),
    ("MIG_GRAPH_SECRET", catalogue::GRAPH_APP_SECRET),
    ("MIG_SCOPED_SECRET", catalogue::SCOPED_APP_SECRET),
    ("MIG_NOROLES_SECRET", catalogue::NO_ROLES_APP_SECRET),
    ("MIG_NOCONSENT_SECRET", catalogue::NO_CONSENT_APP_SECRET),
];

pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("LANG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    cmd
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run calpump")
}

/// `run` on a blocking thread (the simulator lives on the test's runtime).
pub async fn run_async(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&dir, &refs)
    })
    .await
    .expect("join")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(out)))
}

pub async fn simulator(rooms: u32, events: u32, seed: u64) -> Simulator {
    Simulator::start(SimConfig {
        rooms,
        events_per_room: events,
        seed,
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

/// `[state]` and every catalogue app as a profile: `online` (EWS in Exchange Online, app-only
/// with `full_access_as_app`), `cloud` (the good Graph app), `scoped` (Building 1 only),
/// `noroles` (User.Read.All only), `noconsent` (no admin consent).
pub fn profiles(sim: &Simulator) -> String {
    let authority = sim.authority();
    let graph = sim.graph_url();
    let mut out = format!(
        r#"# calpump — migration test
[state]
path = "state.db"

# EWS against Exchange Online: the profile that stops working on 1 Apr 2027.
[profiles.online]
backend = "ews"
url = "{ews}"
auth = {{ kind = "oauth", tenant = "{tenant}", client_id = "{ews_app}", client_secret = {{ env = "MIG_EWS_SECRET" }}, authority = "{authority}" }}
probe_mailbox = "room-1.01@contoso.com"
"#,
        ews = sim.ews_url(),
        tenant = catalogue::TENANT_DOMAIN,
        ews_app = catalogue::EWS_APP_ID,
    );
    for (name, app, var) in [
        ("cloud", catalogue::GRAPH_APP_ID, "MIG_GRAPH_SECRET"),
        ("scoped", catalogue::SCOPED_APP_ID, "MIG_SCOPED_SECRET"),
        ("noroles", catalogue::NO_ROLES_APP_ID, "MIG_NOROLES_SECRET"),
        (
            "noconsent",
            catalogue::NO_CONSENT_APP_ID,
            "MIG_NOCONSENT_SECRET",
        ),
    ] {
        out.push_str(&format!(
            r#"
[profiles.{name}]
backend = "graph"
tenant = "{tenant}"
client_id = "{app}"
client_secret = {{ env = "{var}" }}
authority = "{authority}"
graph_url = "{graph}"
"#,
            tenant = catalogue::TENANT_DOMAIN,
        ));
    }
    out
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("calpump.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// The route's window as calpump computes it (`past_days = 1, future_days = 14`): the
/// simulator's populated window plus the rest of the last day.
pub fn window(sim: &Simulator) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let (start, end) = sim.window();
    (start, end + chrono::Duration::days(1))
}

/// A single (non-recurring) meeting of `mailbox` in the route's window, starting after `after`.
pub fn single(sim: &Simulator, mailbox: &str, skip: usize) -> TruthInstance {
    let (start, end) = window(sim);
    sim.control()
        .truth(mailbox, None, start, end)
        .expect("truth")
        .into_iter()
        .filter(|t| t.original_start.is_none() && !t.is_all_day && !t.is_cancelled)
        .filter(|t| t.start > start + chrono::Duration::days(1))
        .nth(skip)
        .expect("a single meeting")
}

/// Requests the simulator counted for (protocol, operation, mailbox).
pub fn count(sim: &Simulator, protocol: Protocol, operation: &str, mailbox: &str) -> u64 {
    sim.control()
        .stats()
        .entries
        .iter()
        .filter(|e| {
            e.protocol == protocol
                && e.operation.eq_ignore_ascii_case(operation)
                && e.mailbox.as_deref() == Some(mailbox)
        })
        .map(|e| e.count)
        .sum()
}

/// Waits (polling) until `f` holds, or panics with `what` after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- PostgreSQL (the machine's server, through psql) ----------------------------------------

/// A database of its own on 127.0.0.1:5432 (user postgres), dropped at the end.
pub struct Postgres {
    pub name: String,
}

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            db,
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql runs (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "psql on {db} failed (is PostgreSQL listening on 127.0.0.1:5432?): {sql}\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl Postgres {
    pub fn create(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("calpump_{tag}_{}_{nanos}", std::process::id());
        psql("postgres", &format!("CREATE DATABASE {name}"));
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    pub fn query(&self, sql: &str) -> Vec<String> {
        psql(&self.name, sql)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-X",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

// --- door-sign files -------------------------------------------------------------------------

/// Every file under `dir` except the sink's private `.state/`: path → (mtime, inode, bytes).
pub fn files(dir: &Path) -> BTreeMap<PathBuf, (std::time::SystemTime, u64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.insert(
                    path.strip_prefix(dir).unwrap_or(&path).to_path_buf(),
                    (meta.modified().expect("mtime"), meta.ino(), bytes),
                );
            }
        }
    }
    out
}

// --- HTTP ------------------------------------------------------------------------------------

/// One HTTP/1.1 GET; the status code and the body.
pub fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
