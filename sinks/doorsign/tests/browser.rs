//! The room page and the index opened in a real headless Chromium (Debian's `chromium`
//! package, `/usr/bin/chromium`): what a tablet beside the door shows. Fails when Chromium is
//! missing — CI installs it (`apt-get install -y chromium`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calpump_plugin::{BatchKind, Sink};
use calpump_sink_doorsign::DoorSign;
use common::*;

const ROOM: &str = "board-1@contoso.com";
const ID: &str = "board-1_at_contoso.com";
const XSS: &str = "<img src=x onerror=alert(1)>";

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "{} not found: install Debian's Chromium (apt-get install -y chromium)",
        path.display()
    );
    path
}

/// Runs headless Chromium with `extra` on `page`; returns its stdout. Killed after 90 s.
fn run_chromium(page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success(),
        "chromium failed: {:?}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn render(dir: &Path, extra: serde_json::Value) -> DoorSign {
    let sink = DoorSign::create(config(dir, extra)).expect("create");
    let events = vec![
        event(ROOM, 1, XSS, at(9, 0), at(10, 0)),
        event(ROOM, 2, "Quarterly review", at(11, 0), at(12, 0)),
    ];
    sink.write_batch(batch(
        ROOM,
        Some("Board Room <b>1</b>"),
        BatchKind::Snapshot,
        events,
        vec![],
    ))
    .expect("write");
    sink
}

#[test]
fn room_page_shows_name_status_and_next_meeting_and_never_runs_a_subject() {
    let dir = tempfile::tempdir().expect("tmp");
    let _sink = render(dir.path(), serde_json::json!({}));
    let page = dir.path().join("rooms").join(format!("{ID}.html"));
    let dom = run_chromium(&page, &["--dump-dom".into()]);

    assert!(dom.contains("<body"), "no DOM dumped: {dom}");
    // The room's display name is text, even with markup in it.
    assert!(
        dom.contains("id=\"room\">Board Room &lt;b&gt;1&lt;/b&gt;</h1>"),
        "room name missing:\n{dom}"
    );
    assert!(
        dom.contains("id=\"status-word\">Busy</span>"),
        "status missing:\n{dom}"
    );
    assert!(dom.contains("until 10:00"));
    assert!(dom.contains("Quarterly review"), "next meeting missing");
    assert!(dom.contains("11:00–12:00"));
    // The hostile subject is shown as text …
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "subject not shown as text:\n{dom}"
    );
    // … and became no element: the dumped DOM (after scripts would have run) has no <img,
    // no <b> and no script.
    let lower = dom.to_lowercase();
    assert!(!lower.contains("<img"), "an <img> element was created");
    assert!(
        !lower.contains("<b>"),
        "markup from the room name was parsed"
    );
    assert!(!lower.contains("<script"));
    assert!(
        lower.contains("http-equiv=\"refresh\""),
        "the page refreshes itself"
    );

    // The same page as a picture, for people (and a check that it renders at all).
    let shot = dir.path().join("room.png");
    run_chromium(&page, &[format!("--screenshot={}", shot.display())]);
    let bytes = std::fs::read(&shot).expect("screenshot");
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let info = decoder.read_info().expect("png").info().clone();
    assert_eq!((info.width, info.height), (1280, 800));
}

#[test]
fn german_labels_dark_theme_and_the_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let _sink = render(
        dir.path(),
        serde_json::json!({"language": "de", "theme": "dark"}),
    );
    let page = dir.path().join("rooms").join(format!("{ID}.html"));
    let dom = run_chromium(&page, &["--dump-dom".into()]);
    assert!(dom.contains("lang=\"de\""));
    assert!(dom.contains("class=\"theme-dark\""));
    assert!(dom.contains("id=\"status-word\">Belegt</span>"), "{dom}");
    assert!(dom.contains("bis 10:00"));
    assert!(dom.contains("Als Nächstes"));
    assert!(dom.contains("Samstag, 28. November 2026"));

    let index = run_chromium(&dir.path().join("index.html"), &["--dump-dom".into()]);
    assert!(index.contains("Türschilder"));
    assert!(
        index.contains(&format!("href=\"rooms/{ID}.html\"")),
        "{index}"
    );
    assert!(index.contains("Board Room &lt;b&gt;1&lt;/b&gt;"));
    assert!(index.contains("data-status=\"busy\""));
    assert!(!index.to_lowercase().contains("<img"));
}
