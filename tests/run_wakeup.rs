//! `calpump run` re-renders a door sign at the instant the sink asked for, with no sync between:
//! the room turns `busy` when a meeting starts and `free` when it ends although no calendar
//! changed (issue 6, item 5 — "the plugin reports the next instant it wants a re-render, and
//! `calpump run` honours it").
//!
//! The real binary runs against the in-process simulator (Graph profile) with one room whose
//! calendar holds one meeting, starting about 20 s after the daemon starts and lasting 15 s. The
//! route's interval is 10 minutes, so the first sync is the only one; the simulator's request
//! counters prove no request reached it after that sync. The sign's starting-/ending-soon
//! thresholds are 0, so before the meeting the room is plainly `free`, during it plainly `busy`;
//! its time zone puts local noon near now, so local midnight (a wake-up of its own) is far away.
//!
//! The daemon's periodic tick is once a minute; the flips must come from the sink's wake-up: the
//! room file changes within a few seconds of the meeting's start and end, and the content's
//! `as_of` (the instant of the tick that computed it) lies just after them.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calpump_simulator::{NewEvent, SimConfig, Simulator, catalogue};
use chrono::{DateTime, SubsecRound as _, Timelike as _, Utc};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const ROOM: &str = "room-1.01@contoso.com";
const ROOM_ID: &str = "room-1.01_at_contoso.com";
const SUBJECT: &str = "Wake-up review";
const SECRET_VAR: &str = "RUN_WAKEUP_GRAPH_SECRET";
/// From the meeting's creation to its start: the daemon's start and first sync fit in it.
const LEAD: i64 = 22;
/// The meeting's length.
const LENGTH: i64 = 15;
/// What must be left of the lead once the first sync is done, to see the room free before.
const MIN_LEFT: Duration = Duration::from_secs(5);
/// The room file must show a flip this soon after the instant (the periodic tick is 60 s).
const OBSERVED_WITHIN: Duration = Duration::from_secs(5);
/// The tick that computed the flipped content ran this soon after the instant (`as_of`).
const TICK_WITHIN: chrono::Duration = chrono::Duration::milliseconds(1500);

/// `calpump run`, killed if the test ends without stopping it.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let mut child = Command::new(BIN)
            .arg("run")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("LANG")
            .env_remove("LC_ALL")
            .env(SECRET_VAR, catalogue::GRAPH_APP_SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn calpump run");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving http://").nth(1)
                    && let Some(addr) = rest.split('/').next()
                {
                    let _ = tx.send(addr.to_string());
                }
                sink.lock()
                    .expect("log lock")
                    .push_str(&format!("{line}\n"));
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60));
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let addr = addr.unwrap_or_else(|_| panic!("calpump run did not start:\n{}", daemon.log()));
        daemon.addr = addr.parse().expect("listen address");
        daemon
    }

    fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    fn status(&self) -> Value {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the daemon");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET /status?format=json HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read /status");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("/status is not JSON ({e}):\n{response}"))
    }

    /// SIGTERM, then the exit status within 30 s.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "calpump run did not stop on SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A zone whose local time is near noon now (`Etc/GMT+N` is UTC−N), so no local midnight falls
/// inside the test.
fn zone_near_noon(now: DateTime<Utc>) -> String {
    let n = i64::from(now.hour()) - 12;
    match n {
        0 => "Etc/GMT".to_string(),
        n if n > 0 => format!("Etc/GMT+{n}"),
        n => format!("Etc/GMT{n}"),
    }
}

/// The room's JSON file, `None` while it does not exist.
fn room(signs: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(signs.join("rooms").join(format!("{ROOM_ID}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// The `data-status` of the room's HTML page.
fn page_status(signs: &Path) -> String {
    let page = std::fs::read_to_string(signs.join("rooms").join(format!("{ROOM_ID}.html")))
        .expect("the room page exists");
    page.split("data-status=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no data-status on the room page:\n{page}"))
        .to_string()
}

fn instant(v: &Value, what: &str) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("{what} is not an instant: {v}"))
}

fn wall(t: DateTime<Utc>) -> Instant {
    let left = (t - Utc::now()).to_std().unwrap_or_default();
    Instant::now() + left
}

/// Polls the room file until its status is no longer `from`; every status seen before `at` must
/// be `from`. Returns the new content and how long after `at` it was seen.
fn wait_for_flip(
    daemon: &Daemon,
    signs: &Path,
    from: &str,
    at: DateTime<Utc>,
) -> (Value, Duration) {
    let deadline = wall(at) + OBSERVED_WITHIN;
    loop {
        let seen = Utc::now();
        let content = room(signs).expect("the room file exists");
        if content["status"] != from {
            assert!(
                seen >= at,
                "the room left `{from}` at {seen}, before {at}: {content:#}"
            );
            let late = (seen - at).to_std().unwrap_or_default();
            return (content, late);
        }
        assert!(
            Instant::now() < deadline,
            "the room still shows `{from}` {OBSERVED_WITHIN:?} after {at} — the daemon did not \
             tick at the sink's wake-up: {content:#}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_config(dir: &Path, sim: &Simulator, signs: &Path, zone: &str) -> PathBuf {
    let config = format!(
        r#"[state]
path = "state.db"

[http]
listen = "127.0.0.1:0"

[profiles.cloud]
backend = "graph"
tenant = "{tenant}"
client_id = "{app}"
client_secret = {{ env = "{SECRET_VAR}" }}
authority = "{authority}"
graph_url = "{graph}"

[sinks.signs]
plugin = "doorsign"
out_dir = "{signs}"
time_zone = "{zone}"
starting_soon_minutes = 0
ending_soon_minutes = 0

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["{ROOM}"]
interval = "10m"
sinks = ["signs"]
"#,
        tenant = catalogue::TENANT_DOMAIN,
        app = catalogue::GRAPH_APP_ID,
        authority = sim.authority(),
        graph = sim.graph_url(),
        signs = signs.display(),
    );
    let path = dir.join("calpump.toml");
    std::fs::write(&path, config).expect("write the config");
    path
}

#[test]
fn run_re_renders_a_door_sign_at_meeting_start_and_end_without_a_sync() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt
        .block_on(Simulator::start(SimConfig {
            rooms: 1,
            events_per_room: 0,
            users: 2,
            ..SimConfig::default()
        }))
        .expect("simulator");
    let tmp = tempfile::tempdir().expect("tmp");
    let signs = tmp.path().join("signs");

    // The only meeting of the room, in whole seconds (Graph's times have no fractions).
    let now = Utc::now();
    let start = (now + chrono::Duration::seconds(LEAD)).trunc_subsecs(0);
    let end = start + chrono::Duration::seconds(LENGTH);
    sim.control()
        .create_event(
            ROOM,
            &NewEvent {
                subject: SUBJECT.into(),
                start: Some(start),
                end: Some(end),
                ..NewEvent::default()
            },
        )
        .expect("create the meeting");
    let truth = sim
        .control()
        .truth(
            ROOM,
            None,
            now - chrono::Duration::days(2),
            now + chrono::Duration::days(2),
        )
        .expect("truth");
    assert_eq!(
        truth.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>(),
        [SUBJECT],
        "the room holds the test's meeting alone"
    );
    write_config(tmp.path(), &sim, &signs, &zone_near_noon(now));

    let daemon = Daemon::start(tmp.path());

    // The first sync: done, and the sink's wake-up is the meeting's start.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = daemon.status();
        let route = &status["routes"][0];
        if route["running"] == false && !route["last_run"]["finished_at"].is_null() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the first sync did not finish: {status:#}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let requests = sim.control().stats();
    let route = &status["routes"][0];
    assert_eq!(route["last_run"]["status"], "ok", "{route:#}");
    let first_run = route["last_run"]["id"].clone();
    let left = (start - Utc::now()).to_std().unwrap_or_default();
    assert!(
        left >= MIN_LEFT,
        "the first sync ended {left:?} before the meeting's start; too late to see the room free \
         first (the machine is too slow for this test's {LEAD} s lead)"
    );
    assert!(requests.total > 0, "the first sync reached the simulator");
    assert_eq!(
        instant(&status["sinks"][0]["next_wakeup"], "the sink's next_wakeup"),
        start,
        "the daemon holds the sink's wake-up at the meeting's start: {status:#}"
    );

    // Before: free until the meeting, which is next.
    let before = room(&signs).expect("the first sync wrote the room file");
    assert_eq!(before["status"], "free", "{before:#}");
    assert!(before["current"].is_null(), "{before:#}");
    assert_eq!(before["next"][0]["subject"], SUBJECT, "{before:#}");
    assert_eq!(instant(&before["free_until"], "free_until"), start);
    assert_eq!(instant(&before["next_change"], "next_change"), start);
    assert_eq!(page_status(&signs), "free");

    // At the start: busy with the meeting, from a tick at the start.
    let (during, late) = wait_for_flip(&daemon, &signs, "free", start);
    eprintln!("busy seen {late:?} after the start");
    assert_eq!(during["status"], "busy", "{during:#}");
    assert_eq!(during["current"]["subject"], SUBJECT, "{during:#}");
    assert_eq!(instant(&during["current"]["start"], "current.start"), start);
    assert_eq!(instant(&during["busy_until"], "busy_until"), end);
    assert_eq!(instant(&during["next_change"], "next_change"), end);
    let as_of = instant(&during["as_of"], "as_of");
    assert!(
        as_of >= start && as_of - start <= TICK_WITHIN,
        "the busy content was computed at {as_of}, not at the start {start} (a tick at the \
         wake-up, within {TICK_WITHIN})"
    );
    assert_eq!(page_status(&signs), "busy");

    // At the end: free again, from a tick at the end.
    let (after, late) = wait_for_flip(&daemon, &signs, "busy", end);
    eprintln!("free seen {late:?} after the end");
    assert_eq!(after["status"], "free", "{after:#}");
    assert!(after["current"].is_null(), "{after:#}");
    assert_eq!(after["next"], Value::Array(Vec::new()), "{after:#}");
    assert!(after["busy_until"].is_null(), "{after:#}");
    let as_of = instant(&after["as_of"], "as_of");
    assert!(
        as_of >= end && as_of - end <= TICK_WITHIN,
        "the free content was computed at {as_of}, not at the end {end} (a tick at the \
         wake-up, within {TICK_WITHIN})"
    );
    assert_eq!(page_status(&signs), "free");

    // No sync in between: the simulator saw no request since the first sync, the run history
    // holds that sync as the last.
    assert_eq!(
        sim.control().stats(),
        requests,
        "requests reached the simulator after the first sync"
    );
    let status = daemon.status();
    assert_eq!(
        status["routes"][0]["last_run"]["id"], first_run,
        "{status:#}"
    );

    let (exit, log) = daemon.stop();
    assert!(exit.success(), "calpump run exited with {exit}:\n{log}");
    rt.block_on(sim.shutdown());
}
