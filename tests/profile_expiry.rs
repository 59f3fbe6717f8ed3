//! Secret expiry: `check` warns for a secret that expires in 10 days and errors for an expired
//! one; a certificate's notAfter is read; `profile list` and `profile test` show it; the daemon
//! logs it at start and exposes the days left in `/status` and as the gauge
//! `calpump_secret_expiry_days{profile}`.

mod profile_support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calpump_backend_common::oauth::cert::ClientCertificate;
use calpump_simulator::catalogue;
use chrono::Utc;
use profile_support::*;

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

fn profile(name: &str, expires: &str) -> String {
    format!(
        "[profiles.{name}]\nbackend = \"graph\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"{}\"\nclient_secret = {{ env = \"CALPUMP_EXPIRY_TEST_SECRET\" }}\nsecret_expires = {expires}\nauthority = \"http://127.0.0.1:9\"\ngraph_url = \"http://127.0.0.1:9/v1.0\"\n",
        catalogue::GRAPH_APP_ID
    )
}

const ENV: &[(&str, &str)] = &[("CALPUMP_EXPIRY_TEST_SECRET", "not-used")];

#[test]
fn check_warns_ten_days_ahead_and_errors_once_expired() {
    let (tmp, _) = config_dir(&profile("soon", &day(10)));
    let out = calpump_env(tmp.path(), &["check"], ENV);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("secret.ExpiresSoon"))
        .unwrap_or_else(|| panic!("no warning: {text}"));
    assert!(
        line.contains("warning: `profiles.soon.secret_expires`"),
        "{line}"
    );
    assert!(line.contains("in 10 days"), "{line}");
    assert!(line.starts_with("calpump.toml:"), "with its place: {line}");

    let out = calpump_env(tmp.path(), &["check", "--json"], ENV);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["secret_expiry"][0]["profile"], "soon");
    assert_eq!(doc["secret_expiry"][0]["days_left"], 10);
    assert_eq!(doc["secret_expiry"][0]["status"], "expires_soon");

    let out = calpump_env(tmp.path(), &["--lang", "de", "profile", "list"], ENV);
    let text = stdout(&out);
    assert!(text.contains("GEHEIMNIS LÄUFT AB"), "{text}");
    assert!(
        text.contains(&format!("⚠ {} (10 Tage übrig)", day(10))),
        "{text}"
    );

    let (tmp, _) = config_dir(&format!(
        "{}\n{}",
        profile("soon", &day(10)),
        profile("gone", &day(-3))
    ));
    let out = calpump_env(tmp.path(), &["check"], ENV);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("secret.Expired"))
        .unwrap_or_else(|| panic!("no error: {text}"));
    assert!(
        line.contains("error: `profiles.gone.secret_expires`"),
        "{line}"
    );
    assert!(line.contains("expired 3 days ago"), "{line}");
    assert!(text.contains("1 error"), "{text}");

    let out = calpump_env(tmp.path(), &["profile", "list", "--json"], ENV);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let gone = doc["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .find(|p| p["name"] == "gone")
        .expect("gone");
    assert_eq!(gone["secret_expiry"][0]["days_left"], -3);
    assert_eq!(gone["secret_expiry"][0]["code"], "secret.Expired");

    // profile test: the config step fails on the expired secret before any network call.
    let out = calpump_env(
        tmp.path(),
        &["--lang", "en", "profile", "test", "gone"],
        ENV,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("  1 ✗ Configuration and secrets"), "{text}");
    assert!(text.contains("[secret.Expired]"), "{text}");
}

#[test]
fn a_certificates_not_after_is_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("app.pem"), catalogue::GRAPH_APP_CERT_PEM).expect("cert");
    std::fs::write(tmp.path().join("app.key"), catalogue::GRAPH_APP_KEY_PEM).expect("key");
    let cert = ClientCertificate::load(&tmp.path().join("app.pem")).expect("load");
    let expected = (cert.not_after() - Utc::now()).num_days();
    std::fs::write(
        tmp.path().join("calpump.toml"),
        format!(
            "[profiles.cert]\nbackend = \"graph\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"{}\"\ncertificate = \"app.pem\"\nprivate_key = {{ file = \"app.key\" }}\n",
            catalogue::GRAPH_APP_ID
        ),
    )
    .expect("config");
    let out = calpump(tmp.path(), &["check", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let item = &doc["secret_expiry"][0];
    assert!(
        item["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("certificate")),
        "{doc}"
    );
    assert_eq!(item["days_left"], expected, "{doc}");
    assert_eq!(
        item["expires"],
        cert.not_after().date_naive().format("%Y-%m-%d").to_string()
    );
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn stop(child: &mut Child) {
    // SAFETY: sending SIGTERM to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("calpump run did not stop");
}

#[test]
fn the_daemon_logs_status_and_metrics_show_the_days_left() {
    let (tmp, _) = config_dir(&format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n{}\n{}",
        profile("soon", &day(10)),
        profile("gone", &day(-3))
    ));
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "run"])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .env("CALPUMP_EXPIRY_TEST_SECRET", "not-used")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
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
            sink.lock().expect("lock").push_str(&format!("{line}\n"));
        }
    });
    let addr: SocketAddr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(a) => a.parse().expect("addr"),
        Err(_) => {
            let _ = child.kill();
            panic!("daemon did not start: {}", log.lock().expect("lock"));
        }
    };

    let doc: serde_json::Value =
        serde_json::from_str(&get(addr, "/status?format=json")).expect("status json");
    let secrets = doc["secrets"].as_array().expect("secrets");
    let soon = secrets
        .iter()
        .find(|s| s["profile"] == "soon")
        .expect("soon");
    assert_eq!(soon["days_left"], 10);
    assert_eq!(soon["status"], "expires_soon");
    assert_eq!(soon["code"], "secret.ExpiresSoon");
    let gone = secrets
        .iter()
        .find(|s| s["profile"] == "gone")
        .expect("gone");
    assert_eq!(gone["days_left"], -3);
    assert_eq!(gone["status"], "expired");
    assert!(
        gone["remedy"]
            .as_str()
            .is_some_and(|r| r.contains("secret_expires"))
    );

    let metrics = get(addr, "/metrics");
    assert!(
        metrics.contains("calpump_secret_expiry_days{profile=\"soon\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calpump_secret_expiry_days{profile=\"gone\"} -3"),
        "{metrics}"
    );
    stop(&mut child);

    // Logged at start: a warning for the one, an error for the other.
    let log = log.lock().expect("lock").clone();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |code: &str| {
        lines
            .iter()
            .find(|l| l.to_string().contains(code) && l["days_left"].is_i64())
            .unwrap_or_else(|| panic!("no log line for {code}: {log}"))
            .clone()
    };
    assert_eq!(find("secret.ExpiresSoon")["level"], "WARN");
    assert_eq!(find("secret.Expired")["level"], "ERROR");
}
