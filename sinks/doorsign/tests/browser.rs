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
    run_chromium_sized(page, (1280, 800), extra)
}

/// [`run_chromium`] with a window of `size` (CSS pixels, device scale 1).
fn run_chromium_sized(page: &Path, size: (u32, u32), extra: &[String]) -> String {
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
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={},{}", size.0, size.1))
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

/// A screenshot of `page` at `size`, decoded to RGB(A) rows.
fn screenshot(page: &Path, size: (u32, u32)) -> (u32, u32, usize, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tmp");
    let shot = dir.path().join("shot.png");
    run_chromium_sized(page, size, &[format!("--screenshot={}", shot.display())]);
    let bytes = std::fs::read(&shot).expect("screenshot");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

/// Rows in which at least `share` of the pixels have colour `rgb` (±12 per channel).
fn rows_with(shot: &(u32, u32, usize, Vec<u8>), rgb: [u8; 3], share: f32) -> Vec<u32> {
    let (w, h, n, data) = shot;
    (0..*h)
        .filter(|y| {
            let row = &data[(*y * w) as usize * n..((*y + 1) * w) as usize * n];
            let hits = row
                .chunks(*n)
                .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 12))
                .count();
            hits as f32 >= share * *w as f32
        })
        .collect()
}

/// The busy colour of the light theme (`--busy`).
const BUSY: [u8; 3] = [0xb3, 0x26, 0x1e];

#[test]
fn portrait_tablets_get_the_same_large_type_as_landscape_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let _sink = render(dir.path(), serde_json::json!({"theme": "light"}));
    let page = dir.path().join("rooms").join(format!("{ID}.html"));
    let portrait = rows_with(&screenshot(&page, (800, 1280)), BUSY, 0.25).len();
    let landscape = rows_with(&screenshot(&page, (1280, 800)), BUSY, 0.25).len();
    // The status band holds the status word: its height follows the type size. In vw the
    // portrait band was ~81 px against ~130 px in landscape.
    assert!(
        portrait >= 115,
        "portrait status band only {portrait} px high"
    );
    assert!(
        portrait.abs_diff(landscape) <= 6,
        "portrait {portrait} px vs landscape {landscape} px"
    );
}

#[test]
fn right_to_left_texts_are_isolated_and_control_characters_stripped() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(dir.path(), serde_json::json!({}))).expect("create");
    let mut hebrew = event(ROOM, 1, "ישיבת צוות\u{0}\u{7}", at(9, 0), at(10, 0));
    hebrew.organizer = Some(calpump_plugin::Person {
        name: Some("דנה\u{1b}".into()),
        email: None,
    });
    let arabic = event(ROOM, 2, "اجتماع الميزانية 2026", at(11, 0), at(12, 0));
    sink.write_batch(batch(
        ROOM,
        Some("חדר\u{0} 1"),
        BatchKind::Snapshot,
        vec![hebrew, arabic],
        vec![],
    ))
    .expect("write");
    let page = dir.path().join("rooms").join(format!("{ID}.html"));
    let html = std::fs::read_to_string(&page).expect("html");
    assert!(
        !html.chars().any(|c| c.is_control() && !c.is_whitespace()),
        "control characters in the page"
    );
    for file in ["index.html", "index.json"] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect("index");
        assert!(!text.contains('\u{0}') && !text.contains('\u{7}'), "{file}");
    }
    let json =
        std::fs::read_to_string(dir.path().join("rooms").join(format!("{ID}.json"))).expect("json");
    assert!(!json.contains("\\u0000") && !json.contains("\\u0007") && !json.contains("\\u001b"));
    let dom = run_chromium(&page, &["--dump-dom".into()]);
    assert!(
        dom.contains("<h1 dir=\"auto\" id=\"room\">חדר 1</h1>"),
        "{dom}"
    );
    assert!(
        dom.contains("<p dir=\"auto\" class=\"subject\">ישיבת צוות</p>"),
        "{dom}"
    );
    assert!(
        dom.contains("<p dir=\"auto\" class=\"organizer\">דנה</p>"),
        "{dom}"
    );
    assert!(
        dom.contains("<span dir=\"auto\" class=\"subject\">اجتماع الميزانية 2026</span> <span dir=\"auto\" class=\"organizer\">Ann Organizer</span>"),
        "each text is its own bidi island: {dom}"
    );
    let index = run_chromium(&dir.path().join("index.html"), &["--dump-dom".into()]);
    assert!(index.contains("<a dir=\"auto\" href="), "{index}");
    assert!(
        index.contains("<span dir=\"auto\">ישיבת צוות</span>"),
        "{index}"
    );
}

#[test]
fn the_index_status_pill_never_wraps() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(
        dir.path(),
        serde_json::json!({"theme": "light", "language": "de"}),
    ))
    .expect("create");
    // A room the engine serves but never read: "Noch nicht gelesen" on a grey pill, beside a
    // long name and a long subject in a phone-sized window.
    let mailboxes = vec![calpump_plugin::MailboxHealth {
        route: "rooms".into(),
        mailbox: "room-9@contoso.com".into(),
        mailbox_name: Some("Großer Konferenzraum Nordflügel Erdgeschoss".into()),
        last_success: None,
        failing_since: None,
        last_error: None,
    }];
    sink.tick(calpump_plugin::Tick {
        schema_version: calpump_plugin::SCHEMA_VERSION,
        now: at(9, 30),
        mailboxes,
    })
    .expect("tick");
    let long = "Quartalsplanung mit allen Abteilungsleitungen und Gästen aus der Zentrale";
    sink.write_batch(batch(
        ROOM,
        Some("Vorstandszimmer Südflügel"),
        BatchKind::Snapshot,
        vec![event(ROOM, 1, long, at(9, 0), at(10, 0))],
        vec![],
    ))
    .expect("write");
    let shot = screenshot(&dir.path().join("index.html"), (360, 740));
    // The grey of `--stale` in the light theme, on at least a few pixels of a row.
    let grey = rows_with(&shot, [0x5f, 0x63, 0x68], 0.03);
    assert!(!grey.is_empty(), "no pill found");
    let (first, last) = (grey[0], grey[grey.len() - 1]);
    // Body text is 16 px (line height ~19 px): one line of pill, not two.
    assert!(
        last - first < 28,
        "the pill spans rows {first}..={last}: wrapped"
    );
}
