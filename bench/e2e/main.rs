//! Whole-binary benchmark: the release `calpump sync` against an in-process simulator, through a
//! Graph profile and an EWS profile (NTLM or Basic + impersonation), into the database sink
//! (SQLite) and the door-sign sink — and beside it a naive peer on the same simulator (Python:
//! plain `requests` paging `calendarView` per room; `exchangelib` reading each room's calendar
//! view), so calpump's figures have a context.
//!
//! Run: `cargo bench -p calpump --bench e2e` (release). Options after `--`:
//! `--rooms N` (default 500), `--events N` generated items per room (32), `--seed N` (7),
//! `--changed-pct N` rooms changed before the third sync (5), `--ews-auth ntlm|basic` (ntlm),
//! `--only graph|ews` (both), `--no-peer`, `--png` (the door signs also render a 296×128 PNG),
//! `--keep` (keep the working directory under `target/tmp`).
//!
//! Per backend, in a fresh directory: a full sync, an incremental sync with no change, one
//! after `--changed-pct` % of the rooms got a changed meeting (control API), and another with
//! no change. Each is one `calpump sync --json` process: wall time, CPU time and peak RSS
//! (`wait4`'s `ru_maxrss` of that very child), the requests the simulator counted per room by
//! operation (`$batch` sub-requests count one each, as Exchange Online's limits count them),
//! the events the run wrote (upserts/deletes), and a check: the database's live rows and the
//! door-sign rooms equal the simulator's truth. The peers run once each (they have no
//! incremental mode) and are checked the same way. The table is printed as markdown and saved
//! to `target/tmp/bench-e2e-<rooms>.md`.
//!
//! Needs `python3` with `venv`; the peers' venv is the one the simulator's exchangelib test
//! uses (`target/tmp/ews-pyvenv`, created here the same way if missing: `pip install
//! exchangelib`, wheels from `/opt/wheels` when present, which also brings `requests`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure ends it, with its cause

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calpump_simulator::{EventChange, SimConfig, Simulator, Stats, catalogue};
use chrono::{DateTime, Utc};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const TMP: &str = env!("CARGO_TARGET_TMPDIR");
const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

struct Args {
    rooms: u32,
    events: u32,
    seed: u64,
    changed_pct: u32,
    ews_auth: String,
    only: Option<String>,
    peer: bool,
    png: bool,
    keep: bool,
}

impl Args {
    fn parse() -> Args {
        let argv: Vec<String> = std::env::args().collect();
        let value = |name: &str| {
            argv.iter()
                .position(|a| a == name)
                .and_then(|i| argv.get(i + 1).cloned())
        };
        let number = |name: &str, default: u64| -> u64 {
            value(name).map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} wants a number, got {v:?}"))
            })
        };
        let flag = |name: &str| argv.iter().any(|a| a == name);
        let ews_auth = value("--ews-auth").unwrap_or_else(|| "ntlm".into());
        assert!(
            ews_auth == "ntlm" || ews_auth == "basic",
            "--ews-auth is ntlm or basic"
        );
        let only = value("--only");
        assert!(
            only.as_deref().is_none_or(|o| o == "graph" || o == "ews"),
            "--only is graph or ews"
        );
        Args {
            rooms: number("--rooms", 500) as u32,
            events: number("--events", 32) as u32,
            seed: number("--seed", 7),
            changed_pct: number("--changed-pct", 5) as u32,
            ews_auth,
            only,
            peer: !flag("--no-peer"),
            png: flag("--png"),
            keep: flag("--keep"),
        }
    }

    fn wants(&self, backend: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == backend)
    }
}

/// One finished child process: wall time, CPU time (`wait4`) and peak RSS (`VmHWM`).
struct Measured {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    exit: i32,
}

/// `VmHWM` of a live process in KiB: the high-water mark of its resident set since its `exec`
/// (monotonic; gone once the process is a zombie).
fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs `cmd` with stdout and stderr in files. Peak RSS is the child's `VmHWM`, read every 2 ms
/// until it exits (a pidfd tells the exit at once): `wait4`'s `ru_maxrss` would not do, as Linux
/// carries the parent's high-water mark into the child's at `exec` — and the parent here holds
/// the simulator. CPU time comes from `wait4`'s `rusage`, which is this child's own.
fn measure(cmd: &mut Command, stdout: &Path, stderr: &Path) -> Measured {
    let out = std::fs::File::create(stdout).expect("stdout file");
    let err = std::fs::File::create(stderr).expect("stderr file");
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    let mut peak = 0;
    loop {
        // Read only before the child is reaped, so the pid cannot name another process yet.
        if let Some(hwm) = vm_hwm(pid) {
            peak = peak.max(hwm);
        }
        if pidfd >= 0 {
            let mut fds = libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut fds, 1, 2) } > 0 {
                break;
            }
        } else {
            // No pidfd (Linux < 5.3): a zombie's status has no VmHWM.
            if vm_hwm(pid).is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (the `Child` is never waited on);
        // `status` and `usage` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert!(
            e.kind() == std::io::ErrorKind::Interrupted,
            "wait4({pid}): {e}"
        );
    }
    let wall = start.elapsed();
    if pidfd >= 0 {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(pidfd) };
    }
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: peak,
        exit,
    }
}

/// One row of the result table.
struct Row {
    client: String,
    phase: String,
    m: Measured,
    /// Seconds between the route's `started_at` and `finished_at` (calpump's own report).
    in_route: Option<f64>,
    requests: u64,
    by_operation: String,
    written: String,
    check: String,
}

fn per_room_ops(stats: &Stats, rooms: u32) -> (u64, String) {
    let mut ops: Vec<(&String, &u64)> = stats.by_operation.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let text = ops
        .iter()
        .map(|(op, n)| {
            let op = op.split_once(' ').map_or(op.as_str(), |(_, o)| o);
            if **n >= u64::from(rooms) / 10 {
                format!("{op} {:.2}", **n as f64 / f64::from(rooms))
            } else {
                format!("{op} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    (stats.total, text)
}

/// `python -c` on a SQLite file: the first column of the first row.
fn sqlite_count(python: &Path, db: &Path, sql: &str) -> u64 {
    let out = Command::new(python)
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])",
        ])
        .arg(db)
        .arg(sql)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "counting rows of {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// The peers' venv: the simulator's exchangelib test's (`target/tmp/ews-pyvenv`), created the
/// same way when missing.
fn venv() -> PathBuf {
    let dir = Path::new(TMP).join("ews-pyvenv");
    let python = dir.join("bin/python");
    let ready = |py: &Path| {
        Command::new(py)
            .args(["-c", "import exchangelib, requests, requests_ntlm"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        eprintln!("creating the Python venv {} (exchangelib)…", dir.display());
        let st = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 is needed for the peers (and to count SQLite rows)");
        assert!(st.success(), "python3 -m venv failed");
        let mut pip = Command::new(dir.join("bin/pip"));
        pip.args(["install", "--quiet", "--disable-pip-version-check"]);
        if Path::new("/opt/wheels").is_dir() {
            pip.args(["--find-links", "/opt/wheels"]);
        }
        let st = pip.arg("exchangelib").status().expect("pip runs");
        assert!(st.success(), "pip install exchangelib failed");
        assert!(
            ready(&python),
            "exchangelib does not import after the install"
        );
    }
    python
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    format!("{cores} cores ({model}), {ram_gib:.1} GiB RAM")
}

struct Bench {
    args: Args,
    sim: Simulator,
    python: PathBuf,
    work: PathBuf,
    rooms: Vec<String>,
    room_lists: Vec<String>,
    /// The route's window: [today-1d, today+15d) in whole UTC days.
    window: (DateTime<Utc>, DateTime<Utc>),
    rows: Vec<Row>,
    failures: Vec<String>,
}

impl Bench {
    /// Instances of the default calendars of every room in the window: what the sinks must hold.
    fn truth(&self) -> u64 {
        let c = self.sim.control();
        self.rooms
            .iter()
            .map(|r| {
                c.truth(r, Some("Calendar"), self.window.0, self.window.1)
                    .expect("truth")
                    .len() as u64
            })
            .sum()
    }

    fn config(&self, backend: &str, dir: &Path) -> String {
        let lists = self
            .room_lists
            .iter()
            .map(|l| toml::Value::String(l.clone()).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let profile = if backend == "graph" {
            format!(
                r#"backend = "graph"
tenant = "{tenant}"
client_id = "{client}"
client_secret = {{ env = "CALPUMP_BENCH_SECRET" }}
authority = "{authority}"
graph_url = "{graph}""#,
                tenant = catalogue::TENANT_DOMAIN,
                client = catalogue::GRAPH_APP_ID,
                authority = self.sim.authority(),
                graph = self.sim.graph_url(),
            )
        } else {
            let user = if self.args.ews_auth == "ntlm" {
                format!("{}\\svc-pump", catalogue::NETBIOS_DOMAIN)
            } else {
                catalogue::SVC_PUMP.to_string()
            };
            format!(
                r#"backend = "ews"
url = "{url}"
auth = {{ kind = "{kind}", username = {user}, password = {{ env = "CALPUMP_BENCH_SECRET" }} }}
impersonation = true"#,
                url = self.sim.ews_url(),
                kind = self.args.ews_auth,
                user = toml::Value::String(user),
            )
        };
        let png = if self.args.png {
            "png = [{ width = 296, height = 128, palette = \"bwr\" }]\n"
        } else {
            ""
        };
        let path = |name: &str| toml::Value::String(dir.join(name).display().to_string());
        format!(
            r#"[state]
path = {state}

[profiles.bench]
{profile}

[sinks.signs]
plugin = "doorsign"
out_dir = {signs}
{png}
[sinks.db]
plugin = "database"
url = {db}

[[routes]]
name = "rooms"
profile = "bench"
room_lists = [{lists}]
window = {{ past_days = 1, future_days = 14 }}
sinks = ["signs", "db"]
"#,
            state = path("state.db"),
            signs = path("doorsigns"),
            db = toml::Value::String(format!("sqlite://{}", dir.join("calpump.db").display())),
        )
    }

    fn sync(&mut self, backend: &str, dir: &Path, phase: &str, n: usize) {
        let c = self.sim.control();
        c.reset_stats();
        let secret = if backend == "graph" {
            catalogue::GRAPH_APP_SECRET
        } else {
            catalogue::ACCOUNT_PASSWORD
        };
        let stdout = dir.join(format!("sync-{n}.json"));
        let stderr = dir.join(format!("sync-{n}.log"));
        let m = measure(
            Command::new(BIN)
                .args(["--log-format", "json", "sync", "--json"])
                .current_dir(dir)
                .env("RUST_LOG", "info")
                .env("CALPUMP_BENCH_SECRET", secret),
            &stdout,
            &stderr,
        );
        let stats = c.stats();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stdout).unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
        let route = &report["routes"][0];
        let counts = &route["counts"];
        let time = |k: &str| {
            route[k]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        };
        let in_route = time("started_at")
            .zip(time("finished_at"))
            .map(|(a, b)| (b - a).as_seconds_f64());
        let written = format!(
            "{} upserts, {} deletes",
            counts["upserts"].as_u64().unwrap_or(0),
            counts["deletes"].as_u64().unwrap_or(0)
        );
        let mut check = Vec::new();
        if m.exit != 0 || counts["errors"].as_u64() != Some(0) {
            check.push(format!(
                "✗ exit {}, {} errors (see {})",
                m.exit,
                counts["errors"],
                stderr.display()
            ));
        }
        let want = self.truth();
        let rows = sqlite_count(
            &self.python,
            &dir.join("calpump.db"),
            "select count(*) from events where deleted_at is null",
        );
        let signs = std::fs::read_dir(dir.join("doorsigns/rooms"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0);
        if rows != want {
            check.push(format!("✗ db {rows} rows ≠ truth {want}"));
        }
        if signs != self.rooms.len() {
            check.push(format!("✗ {signs} door signs ≠ {} rooms", self.rooms.len()));
        }
        let check = if check.is_empty() {
            format!("✓ db = truth ({rows}), {signs} signs")
        } else {
            let text = check.join("; ");
            self.failures
                .push(format!("calpump {backend} {phase}: {text}"));
            text
        };
        let (requests, by_operation) = per_room_ops(&stats, self.args.rooms);
        eprintln!(
            "calpump {backend:<5} {phase:<28} {:>7.2} s wall, {:>6.2} s CPU, {:>6.1} MiB peak, {:.2} requests/room — {check}",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.max_rss_kib as f64 / 1024.0,
            requests as f64 / f64::from(self.args.rooms),
        );
        self.rows.push(Row {
            client: format!("calpump ({backend})"),
            phase: phase.to_string(),
            m,
            in_route,
            requests,
            by_operation,
            written,
            check,
        });
    }

    /// Changes one single meeting's subject in `--changed-pct` % of the rooms, spread evenly.
    fn change_rooms(&self, tag: &str) -> usize {
        let c = self.sim.control();
        let n = ((self.rooms.len() * self.args.changed_pct as usize) / 100).max(1);
        let step = (self.rooms.len() / n).max(1);
        let mut changed = 0;
        for room in self.rooms.iter().step_by(step).take(n) {
            let truth = c
                .truth(room, Some("Calendar"), self.window.0, self.window.1)
                .expect("truth");
            if let Some(single) = truth.iter().find(|t| t.original_start.is_none()) {
                c.change_event(
                    room,
                    &single.goid,
                    None,
                    &EventChange {
                        subject: Some(format!("Changed for the benchmark ({tag})")),
                        ..EventChange::default()
                    },
                )
                .expect("change");
                changed += 1;
            }
        }
        changed
    }

    fn calpump(&mut self, backend: &str) {
        let dir = self.work.join(format!("calpump-{backend}"));
        std::fs::create_dir_all(&dir).expect("work dir");
        std::fs::write(dir.join("calpump.toml"), self.config(backend, &dir)).expect("config");
        self.sync(backend, &dir, "full", 1);
        self.sync(backend, &dir, "incremental, no change", 2);
        let changed = self.change_rooms(backend);
        self.sync(
            backend,
            &dir,
            &format!("incremental, {changed} rooms changed"),
            3,
        );
        self.sync(backend, &dir, "incremental, no change (again)", 4);
    }

    fn peer(&mut self, backend: &str) {
        let dir = self.work.join(format!("peer-{backend}"));
        std::fs::create_dir_all(&dir).expect("work dir");
        let rooms_file = dir.join("rooms.txt");
        std::fs::write(&rooms_file, self.rooms.join("\n")).expect("rooms file");
        let db = dir.join("peer.db");
        let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let script = Path::new(MANIFEST).join(format!("bench/e2e/peer/{backend}_peer.py"));
        let mut cmd = Command::new(&self.python);
        cmd.arg(&script)
            .env("PEER_BASE", self.sim.base_url())
            .env("PEER_ROOMS", &rooms_file)
            .env("PEER_START", fmt(self.window.0))
            .env("PEER_END", fmt(self.window.1))
            .env("PEER_DB", &db);
        let (client, what) = if backend == "graph" {
            cmd.env("PEER_TENANT", catalogue::TENANT_DOMAIN)
                .env("PEER_CLIENT_ID", catalogue::GRAPH_APP_ID)
                .env("PEER_SECRET", catalogue::GRAPH_APP_SECRET);
            ("peer (Graph, Python requests)", "calendarView per room")
        } else {
            let user = if self.args.ews_auth == "ntlm" {
                format!("{}\\svc-pump", catalogue::NETBIOS_DOMAIN)
            } else {
                catalogue::SVC_PUMP.to_string()
            };
            cmd.env("PEER_USER", user)
                .env("PEER_PASS", catalogue::ACCOUNT_PASSWORD)
                .env("PEER_AUTH", &self.args.ews_auth);
            ("peer (EWS, Python exchangelib)", "calendar.view per room")
        };
        let c = self.sim.control();
        c.reset_stats();
        let stderr = dir.join("peer.log");
        let m = measure(&mut cmd, &dir.join("peer.json"), &stderr);
        let stats = c.stats();
        let want = self.truth();
        let (rows, check) = if m.exit == 0 {
            let rows = sqlite_count(&self.python, &db, "select count(*) from events");
            let check = if rows == want {
                format!("✓ db = truth ({rows})")
            } else {
                let text = format!("✗ db {rows} rows ≠ truth {want}");
                self.failures.push(format!("{client}: {text}"));
                text
            };
            (rows, check)
        } else {
            let log = std::fs::read_to_string(&stderr).unwrap_or_default();
            let text = format!("✗ exit {}: {}", m.exit, log.lines().last().unwrap_or(""));
            self.failures.push(format!("{client}: {text}"));
            (0, text)
        };
        let (requests, by_operation) = per_room_ops(&stats, self.args.rooms);
        eprintln!(
            "{client:<31} {:>7.2} s wall, {:>6.2} s CPU, {:>6.1} MiB peak, {:.2} requests/room — {check}",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.max_rss_kib as f64 / 1024.0,
            requests as f64 / f64::from(self.args.rooms),
        );
        self.rows.push(Row {
            client: client.to_string(),
            phase: format!("full ({what})"),
            m,
            in_route: None,
            requests,
            by_operation,
            written: format!("{rows} rows"),
            check,
        });
    }

    fn table(&self, header: &str) -> String {
        let mut t = String::new();
        writeln!(t, "{header}\n").unwrap();
        writeln!(
            t,
            "| client | phase | wall s | in route s | CPU s | peak RSS MiB | requests/room | by operation (per room, or ×total) | written | check |"
        )
        .unwrap();
        writeln!(t, "|---|---|--:|--:|--:|--:|--:|---|---|---|").unwrap();
        for r in &self.rows {
            writeln!(
                t,
                "| {} | {} | {:.2} | {} | {:.2} | {:.1} | {:.2} | {} | {} | {} |",
                r.client,
                r.phase,
                r.m.wall.as_secs_f64(),
                r.in_route.map_or("–".into(), |s| format!("{s:.2}")),
                r.m.cpu.as_secs_f64(),
                r.m.max_rss_kib as f64 / 1024.0,
                r.requests as f64 / f64::from(self.args.rooms),
                r.by_operation,
                r.written,
                r.check
            )
            .unwrap();
        }
        t
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or `--all-targets`) does not, and
    // a test run must not start a multi-minute benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("bench e2e: not run in test mode; use `cargo bench -p calpump --bench e2e`");
        return;
    }
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sim = rt
        .block_on(Simulator::start(SimConfig {
            rooms: args.rooms,
            events_per_room: args.events,
            seed: args.seed,
            // Every room stays generated once read: the simulator's own regeneration cost
            // would otherwise land on whichever client reads a room first.
            cache_mailboxes: args.rooms as usize + 256,
            ..SimConfig::default()
        }))
        .expect("simulator");
    let tenant = sim.tenant();
    let mut rooms = Vec::new();
    let mut room_lists = Vec::new();
    for list in &tenant.directory.room_lists {
        room_lists.push(list.smtp.clone());
        for &i in &list.rooms {
            rooms.push(tenant.directory.get(i).expect("room").smtp.clone());
        }
    }
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let window = (
        today - chrono::Duration::days(1),
        today + chrono::Duration::days(15),
    );
    let work = tempfile::Builder::new()
        .prefix("bench-e2e-")
        .tempdir_in(TMP)
        .expect("work dir");
    let python = venv();
    let mut bench = Bench {
        python,
        work: work.path().to_path_buf(),
        rooms,
        room_lists,
        window,
        rows: Vec::new(),
        failures: Vec::new(),
        sim,
        args,
    };
    // Generate every room once (and learn what the sinks must hold).
    let t = Instant::now();
    let want = bench.truth();
    let header = format!(
        "calpump end-to-end benchmark — {} rooms in {} room lists, {} items per room (seed {}), {want} instances in the window {} – {}; EWS auth {}; {}; {}",
        bench.rooms.len(),
        bench.room_lists.len(),
        bench.args.events,
        bench.args.seed,
        window.0.format("%Y-%m-%d"),
        window.1.format("%Y-%m-%d"),
        bench.args.ews_auth,
        machine(),
        Utc::now().format("%Y-%m-%d"),
    );
    eprintln!(
        "{header}\n(simulator generated the rooms in {:.2} s; working in {})",
        t.elapsed().as_secs_f64(),
        bench.work.display()
    );

    for backend in ["graph", "ews"] {
        if !bench.args.wants(backend) {
            continue;
        }
        bench.calpump(backend);
        if bench.args.peer {
            bench.peer(backend);
        }
    }

    let table = bench.table(&header);
    println!("\n{table}");
    let saved = Path::new(TMP).join(format!("bench-e2e-{}.md", bench.args.rooms));
    if let Err(e) = std::fs::write(&saved, &table) {
        eprintln!("cannot save {}: {e}", saved.display());
    } else {
        eprintln!("table saved to {}", saved.display());
    }
    if bench.args.keep {
        eprintln!("kept {}", work.keep().display());
    }
    rt.block_on(bench.sim.shutdown());
    if !bench.failures.is_empty() {
        eprintln!("FAILED checks:");
        for f in &bench.failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
}
