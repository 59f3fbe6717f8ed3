//! `calpump demo`: zero set-up — the simulator synced once into door signs and SQLite, with the
//! paths printed; and `calpump simulator` standalone.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");

#[test]
fn demo_syncs_the_simulator_into_door_signs_and_sqlite_and_prints_where_they_are() {
    let work = tempfile::tempdir().expect("tmp");
    let dir = work.path().join("demo");
    let out = Command::new(BIN)
        .current_dir(work.path())
        .args(["demo", "--dir"])
        .arg(&dir)
        .args(["--rooms", "6", "--lang", "en"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run calpump demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");

    let index = dir.join("doorsigns/index.html");
    assert!(
        stdout.contains(&format!("file://{}", index.display())),
        "{stdout}"
    );
    let room_line = stdout
        .lines()
        .find(|l| l.starts_with("one room:"))
        .unwrap_or_else(|| panic!("no room page printed:\n{stdout}"));
    let room_page = room_line
        .trim_start_matches("one room:")
        .trim()
        .trim_start_matches("file://");
    let page = std::fs::read_to_string(room_page).expect("room page exists");
    assert!(
        page.contains("Room 1.01"),
        "the first room's name is on its page"
    );
    let index_html = std::fs::read_to_string(&index).expect("index exists");
    for n in 1..=6 {
        assert!(
            index_html.contains(&format!("Room 1.0{n}")),
            "room {n} listed in the index"
        );
    }
    assert!(
        dir.join("doorsigns/rooms/room-1.01_at_contoso.com-296x128.png")
            .exists()
    );
    assert!(stdout.contains("route rooms: 6 mailboxes"), "{stdout}");
    assert!(stdout.contains(" 0 errors"), "{stdout}");

    // The database holds every room's events.
    let db = dir.join("calpump.db");
    assert!(stdout.contains(&db.display().to_string()));
    let count = sqlite_count(&db.display().to_string());
    assert!(count > 6 * 10, "only {count} events in the database");

    // The secret is kept in a private file the config references, not in the config.
    let config = std::fs::read_to_string(dir.join("calpump.toml")).expect("config");
    assert!(config.contains("client_secret = { file ="));
    assert!(!config.contains(calpump_simulator::catalogue::GRAPH_APP_SECRET));

    // A second demo into the same directory is allowed (it wrote the config); a foreign config
    // is never overwritten.
    let again = Command::new(BIN)
        .args(["demo", "--rooms", "6", "--dir"])
        .arg(&dir)
        .output()
        .expect("second demo");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let foreign = work.path().join("mine");
    std::fs::create_dir_all(&foreign).expect("dir");
    std::fs::write(foreign.join("calpump.toml"), "# my own config\n").expect("write");
    let refused = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(&foreign)
        .output()
        .expect("demo");
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(foreign.join("calpump.toml")).expect("read"),
        "# my own config\n"
    );
}

#[test]
fn demo_names_the_simulator_port_it_used_when_5077_is_taken() {
    // Hold 5077 so the demo has to pick another port; if something else holds it already, the
    // demo moves aside all the same.
    let holder = std::net::TcpListener::bind(("127.0.0.1", 5077)).ok();
    let work = tempfile::tempdir().expect("tmp");
    let dir = work.path().join("demo");
    let out = Command::new(BIN)
        .args(["demo", "--rooms", "3", "--lang", "en", "--dir"])
        .arg(&dir)
        .output()
        .expect("run calpump demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(dir.join("calpump.toml")).expect("config");
    let authority = config
        .lines()
        .find_map(|l| l.strip_prefix("authority = "))
        .unwrap_or_else(|| panic!("no authority in the config:\n{config}"))
        .trim_matches('"');
    let port: u16 = authority
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("authority {authority}"));
    if holder.is_some() {
        assert_ne!(port, 5077, "the demo used the port this test holds");
    }
    let command = format!("`calpump simulator --port {port} --rooms 3`");
    let comment: Vec<&str> = config.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(
        comment.iter().any(|l| l.contains(&command)),
        "the config's comment names another simulator than {authority}:\n{}",
        comment.join("\n")
    );
    let hint = stdout
        .lines()
        .find(|l| l.contains("calpump simulator"))
        .unwrap_or_else(|| panic!("no hint to start a simulator:\n{stdout}"));
    assert!(hint.contains(&command), "{hint}");
    drop(holder);
}

/// Counts live rows with the database sink's own SQLite through the engine-neutral `sqlite3`
/// Python module (no extra Rust dependency in the test).
fn sqlite_count(path: &str) -> u64 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(c.execute('select count(*) from events where deleted_at is null').fetchone()[0])",
            path,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn simulator_command_serves_until_sigterm() {
    let mut child = Command::new(BIN)
        .args(["simulator", "--port", "0", "--rooms", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start simulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut base = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(url) = line.trim().strip_prefix("base URL") {
            base = Some(url.trim().to_string());
            break;
        }
    }
    let base = base.expect("the simulator printed its base URL");
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    use std::io::{Read as _, Write as _};
    write!(
        stream,
        "GET /_sim/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"seed\""), "{answer}");

    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit on SIGTERM: {status:?}");
}
