//! The `calpump` binary end to end: `check`, `init`, `secret encrypt`, `plugins`, `run`, and
//! that no secret value ever appears in what it prints.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const MARKER: &str = "marker-secret-Q7v2Xk9p";

fn calpump(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CALPUMP_TEST_MARKER_TOKEN", MARKER)
        .env_remove("CALPUMP_TEST_SURELY_UNSET_TOKEN");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn toml_str(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

#[test]
fn check_reports_an_unknown_key_a_missing_secret_and_an_unknown_plugin_each_with_its_place() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plugins = common::plugin_dir(tmp.path(), &["recorder"]);
    let config = format!(
        r#"[http]
listen = "127.0.0.1:0"
colour = "blue"

[plugins]
dirs = [{plugins}]

[sinks.rec]
plugin = "recorder"
dir = "out"
token = {{ env = "CALPUMP_TEST_SURELY_UNSET_TOKEN" }}

[sinks.mystery]
plugin = "nosuchplugin"
"#,
        plugins = toml_str(&plugins)
    );
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("write");

    let out = calpump(tmp.path(), &["check"]).output().expect("run");
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    let errors: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{printed}");
    assert!(
        errors
            .iter()
            .any(|l| l.starts_with("calpump.toml:3:1: error: `http.colour`")
                && l.contains("unknown field")),
        "{printed}"
    );
    assert!(
        errors.iter().any(
            |l| l.starts_with("calpump.toml:11:1: error: `sinks.rec.token`")
                && l.contains("CALPUMP_TEST_SURELY_UNSET_TOKEN")
                && l.contains("secret.Missing")
        ),
        "{printed}"
    );
    assert!(
        errors.iter().any(
            |l| l.starts_with("calpump.toml:14:1: error: `sinks.mystery.plugin`")
                && l.contains("nosuchplugin")
                && l.contains("known: database, doorsign, recorder")
        ),
        "{printed}"
    );

    let out = calpump(tmp.path(), &["check", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["errors"], 3);
    assert_eq!(doc["issues"][0]["location"]["line"], 3);
}

#[test]
fn init_writes_a_starter_config_and_a_private_key_and_never_overwrites() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = calpump(tmp.path(), &["init"]).output().expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("config");
    for section in [
        "[state]",
        "[secrets]",
        "[plugins]",
        "[http]",
        "[profiles.cloud]",
        "[sinks.signs]",
        "[[routes]]",
    ] {
        assert!(config.contains(section), "{section} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(tmp.path().join("calpump.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = calpump(tmp.path(), &["init"]).output().expect("run");
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("does not overwrite"));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("config"),
        config
    );

    // secret encrypt reads stdin and prints a reference that decrypts with the key file.
    let mut child = calpump(tmp.path(), &["secret", "encrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{MARKER}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.starts_with("{ encrypted = \"cp1:"), "{printed}");
    assert!(!printed.contains(MARKER));
    let value = printed
        .trim()
        .trim_start_matches("{ encrypted = \"")
        .trim_end_matches("\" }");
    let resolver = calpump_engine::secret::SecretResolver::new(tmp.path().join("calpump.key"));
    let back = resolver
        .resolve(&calpump_engine::secret::SecretRef::Encrypted(
            value.to_string(),
        ))
        .expect("decrypts");
    assert_eq!(back.expose(), MARKER);
}

#[test]
fn init_sets_the_door_signs_to_the_machines_time_zone_and_check_accepts_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = calpump(tmp.path(), &["init"])
        .env("TZ", "Europe/Berlin")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("door signs: days and times in Europe/Berlin"),
        "{}",
        text(&out)
    );
    let config = std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("config");
    let signs = config
        .split("[sinks.signs]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [sinks.signs] table");
    assert!(
        signs.contains("\ntime_zone = \"Europe/Berlin\""),
        "no time_zone in [sinks.signs]:{signs}"
    );
    // The starter's profile is a placeholder: give it an app id and its secret, and `check`
    // has nothing to say about the door signs (without `time_zone` it warns that they show UTC).
    std::fs::write(
        tmp.path().join("calpump.toml"),
        config.replace(
            "00000000-0000-0000-0000-000000000000",
            "0a1b2c3d-1111-4a5b-8c6d-000000000001",
        ),
    )
    .expect("write");
    let out = calpump(tmp.path(), &["check"])
        .env("CALPUMP_CLOUD_SECRET", "not-a-real-secret")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("time_zone"), "{}", text(&out));
    assert!(
        text(&out).contains("configuration OK (0 warnings)"),
        "{}",
        text(&out)
    );
}

/// One HTTP/1.1 GET; returns the status code and the body.
fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
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

/// Starts `calpump run`, collecting everything it prints; returns the child, the address it
/// serves, and the collected output.
fn start_daemon(dir: &Path, extra_env: &[(&str, &str)]) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    let mut cmd = calpump(dir, &["--log-format", "json", "run"]);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    let collected = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let sink = Arc::clone(&collected);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving http://").nth(1)
                && let Some(addr) = rest.split('/').next()
            {
                let _ = tx.send(addr.to_string());
            }
            sink.lock().expect("lock").push_str(&format!("{line}\n"));
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let sink = Arc::clone(&collected);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push_str(&format!("{line}\n"));
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("daemon did not start: {}", collected.lock().expect("lock")));
    (child, addr.parse().expect("address"), collected)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn run_serves_health_status_metrics_and_pages_and_stops_on_sigterm_without_leaking_secrets() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plugins = common::plugin_dir(tmp.path(), &["recorder"]);
    let signs = tmp.path().join("signs");
    std::fs::create_dir_all(&signs).expect("signs dir");
    std::fs::write(tmp.path().join("outside.txt"), "not for the web").expect("write");
    std::fs::write(signs.join("hello.txt"), "hello <sign>").expect("write");
    let config = format!(
        r#"[http]
listen = "127.0.0.1:0"

[state]
path = "state.db"

[plugins]
dirs = [{plugins}]

[sinks.signs]
plugin = "doorsign"
out_dir = {signs}

[sinks.rec]
plugin = "recorder"
dir = "rec"
token = {{ env = "CALPUMP_TEST_MARKER_TOKEN" }}
"#,
        plugins = toml_str(&plugins),
        signs = toml_str(&signs)
    );
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("write");

    let mut printed = String::new();
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["plugins", "--json"],
        &["plugins"],
        &["sync", "--json"],
    ] {
        let out = calpump(tmp.path(), args)
            .env("RUST_LOG", "debug")
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        printed.push_str(&text(&out));
    }

    let (mut child, addr, collected) = start_daemon(tmp.path(), &[("RUST_LOG", "debug")]);
    let (status, body) = get(addr, "/healthz", "*/*");
    assert_eq!((status, body.trim()), (200, "ok"));

    let (status, body) = get(addr, "/status", "application/json");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("status json");
    assert!(doc["routes"].as_array().is_some());
    let sinks: Vec<&str> = doc["sinks"]
        .as_array()
        .expect("sinks")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(sinks, vec!["rec", "signs"]);
    printed.push_str(&body);
    let (status, json2) = get(addr, "/status?format=json", "text/html");
    assert_eq!(status, 200);
    assert!(json2.starts_with('{'));
    let (status, html) = get(addr, "/status", "text/html");
    assert_eq!(status, 200);
    assert!(html.contains("<h1>calpump status</h1>"), "{html}");
    printed.push_str(&html);

    // The daemon ticks its sinks right after it starts; wait for that first tick to be counted.
    let mut metrics = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let (status, text) = get(addr, "/metrics", "*/*");
        assert_eq!(status, 200);
        metrics = text;
        if metrics.contains("calpump_sink_calls_total{call=\"tick\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        metrics.contains("# TYPE calpump_up gauge") && metrics.contains("calpump_up 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calpump_sink_calls_total{call=\"tick\""),
        "{metrics}"
    );
    printed.push_str(&metrics);

    let (status, index) = get(addr, "/", "text/html");
    assert_eq!(status, 200);
    assert!(index.contains("href=\"/sinks/signs/\""), "{index}");
    let (status, hello) = get(addr, "/sinks/signs/hello.txt", "*/*");
    assert_eq!((status, hello.as_str()), (200, "hello <sign>"));
    let (status, _) = get(addr, "/sinks/signs/../outside.txt", "*/*");
    assert_eq!(status, 404);
    let (status, _) = get(addr, "/sinks/rec/", "*/*");
    assert_eq!(status, 404, "a sink without out_dir serves nothing");
    // The door-sign sink renders its index at the first tick.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = get(addr, "/sinks/signs/", "text/html");
        if status == 200 {
            assert!(page.contains("<html"), "{page}");
            break;
        }
        assert!(Instant::now() < deadline, "door-sign index never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_exit(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("calpump run did not stop on SIGTERM")
    });
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        collected.lock().expect("lock")
    );
    std::thread::sleep(Duration::from_millis(200));
    printed.push_str(&collected.lock().expect("lock"));

    // The recorder logged its whole configuration, token included; the host redacted it.
    assert!(
        printed.contains("recorder created with settings"),
        "{printed}"
    );
    assert!(printed.contains("[redacted]"), "{printed}");
    assert!(
        !printed.contains(MARKER),
        "a secret value was printed:\n{printed}"
    );
}

#[test]
fn sync_exits_2_on_an_unknown_route_or_backend_and_names_the_known_ones() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = r#"[state]
path = "state.db"

[profiles.cloud]
backend = "nosuchbackend"

[sinks.signs]
plugin = "doorsign"
out_dir = "signs"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["room-1@contoso.com"]
sinks = ["signs"]
"#;
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("write");
    let out = calpump(tmp.path(), &["sync", "--route", "nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no route named `nope` (known: rooms)"),
        "{}",
        text(&out)
    );

    let out = calpump(tmp.path(), &["sync"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(
            "calpump.toml:5:1: error: `profiles.cloud.backend`: unknown backend `nosuchbackend`"
        ),
        "{}",
        text(&out)
    );

    let out = calpump(tmp.path(), &["--config", "missing.toml", "sync"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("calpump init"));

    let out = calpump(tmp.path(), &["sync", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = r#"[state]
path = "state.db"

[sinks.signs]
plugin = "doorsign"
out_dir = "signs"
"#;
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("write");
    // `output()` captures stderr through a pipe: not a terminal, as under systemd or `2>file`.
    let out = calpump(tmp.path(), &["sync"])
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .expect("run");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        log.contains("DEBUG") || log.contains("INFO"),
        "no log lines: {log}"
    );
    assert!(
        !log.contains("\x1b["),
        "ANSI escapes in a redirected log: {log:?}"
    );
}

#[test]
fn sync_and_run_explain_a_secret_they_cannot_read_with_code_cause_and_remedy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = r#"[state]
path = "state.db"

[http]
listen = "127.0.0.1:0"

[profiles.cloud]
backend = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "0a1b2c3d-1111-4a5b-8c6d-000000000001"
client_secret = { env = "CALPUMP_TEST_SURELY_UNSET_TOKEN" }

[sinks.signs]
plugin = "doorsign"
out_dir = "signs"
time_zone = "Europe/Berlin"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["room-1@contoso.com"]
sinks = ["signs"]
"#;
    std::fs::write(tmp.path().join("calpump.toml"), config).expect("write");
    for (args, cause, remedy) in [
        (&["--lang", "en", "sync"][..], "Cause: ", "Remedy: "),
        (&["--lang", "en", "run"][..], "Cause: ", "Remedy: "),
        (&["--lang", "de", "sync"][..], "Ursache: ", "Abhilfe: "),
    ] {
        let out = calpump(tmp.path(), args).output().expect("run");
        let printed = text(&out);
        // A secret that cannot be read is the configuration's problem, as `check` says.
        assert_eq!(out.status.code(), Some(2), "{args:?}: {printed}");
        let lines: Vec<&str> = printed.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("error: profile `cloud`: [secret.Missing] "))
            .unwrap_or_else(|| panic!("{args:?}: no secret.Missing line:\n{printed}"));
        let rest = &lines[at + 1..];
        assert!(
            rest.first()
                .is_some_and(|l| l.contains("CALPUMP_TEST_SURELY_UNSET_TOKEN")),
            "{args:?}: the detail names the variable:\n{printed}"
        );
        assert_eq!(
            rest[0].matches("CALPUMP_TEST_SURELY_UNSET_TOKEN").count(),
            1,
            "{args:?}: the detail names the variable once:\n{printed}"
        );
        for label in [cause, remedy] {
            assert!(
                rest.iter().any(|l| l.trim_start().starts_with(label)),
                "{args:?}: no `{label}` line:\n{printed}"
            );
        }
    }
}
