//! Files the sink writes: room JSON/HTML/PNG, the index, only on change; state that survives
//! a restart; re-renders at meeting boundaries; concurrent batches.

mod common;

use std::io::Cursor;
use std::sync::Arc;

use calpump_plugin::{BatchKind, MailboxHealth, SCHEMA_VERSION, Sensitivity, Sink, Tick};
use calpump_sink_doorsign::DoorSign;
use calpump_sink_doorsign::config::{Language, Palette, PngSize};
use calpump_sink_doorsign::projection::{self, RoomInput, Rules};
use calpump_sink_doorsign::raster::{self, Fonts};
use chrono::{Duration, Utc};
use common::*;

const ROOM: &str = "room-1.01@contoso.com";
const ID: &str = "room-1.01_at_contoso.com";

#[test]
fn writes_room_files_and_index_only_when_content_changes() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(dir.path(), serde_json::json!({}))).expect("create");
    let events = vec![
        event(ROOM, 1, "Standup", at(9, 0), at(10, 0)),
        event(ROOM, 2, "Review", at(14, 0), at(15, 0)),
    ];
    let first = batch(ROOM, Some("Room 1.01"), BatchKind::Snapshot, events, vec![]);
    let result = sink.write_batch(first.clone()).expect("write");
    assert_eq!(result.accepted.len(), 2);
    assert_eq!(
        result.next_wakeup,
        Some(at(9, 50)),
        "the ending-soon threshold of the standup"
    );

    let rooms = dir.path().join("rooms");
    for name in [
        format!("{ID}.json"),
        format!("{ID}.html"),
        format!("{ID}.png"),
        format!("{ID}-296x128.png"),
        format!("{ID}-400x300.png"),
        format!("{ID}-800x480.png"),
    ] {
        assert!(rooms.join(&name).is_file(), "{name} missing");
    }
    let json = room_json(dir.path(), ID);
    assert_eq!(json["status"], "busy");
    assert_eq!(json["name"], "Room 1.01");
    assert_eq!(json["current"]["subject"], "Standup");
    assert_eq!(json["next"][0]["subject"], "Review");
    assert_eq!(json["until_local"], "10:00");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["rooms"][0]["room"], ROOM);
    assert_eq!(index["rooms"][0]["status"], "busy");
    assert_eq!(index["rooms"][0]["href"], format!("rooms/{ID}.html"));
    let index_html = std::fs::read_to_string(dir.path().join("index.html")).expect("index.html");
    assert!(
        index_html.contains(&format!("{ID}.html\"")),
        "links the room page"
    );
    assert!(index_html.contains("Room 1.01"));

    // A replay changes nothing: no file is replaced (same inode), nothing re-rendered.
    let before: Vec<u64> = ["json", "html", "png"]
        .iter()
        .map(|ext| inode(&rooms.join(format!("{ID}.{ext}"))))
        .collect();
    let index_inode = inode(&dir.path().join("index.html"));
    sink.write_batch(first).expect("replay");
    let after: Vec<u64> = ["json", "html", "png"]
        .iter()
        .map(|ext| inode(&rooms.join(format!("{ID}.{ext}"))))
        .collect();
    assert_eq!(before, after, "an unchanged room is not rewritten");
    assert_eq!(index_inode, inode(&dir.path().join("index.html")));

    // A delta that changes the schedule rewrites.
    let moved = event(ROOM, 2, "Review (moved)", at(15, 0), at(16, 0));
    sink.write_batch(batch(ROOM, None, BatchKind::Delta, vec![moved], vec![]))
        .expect("delta");
    assert_ne!(inode(&rooms.join(format!("{ID}.json"))), before[0]);
    assert_eq!(
        room_json(dir.path(), ID)["next"][0]["subject"],
        "Review (moved)"
    );

    // A delete frees the room.
    let key = event(ROOM, 1, "", at(9, 0), at(10, 0)).key().clone();
    sink.write_batch(batch(ROOM, None, BatchKind::Delta, vec![], vec![key]))
        .expect("delete");
    let json = room_json(dir.path(), ID);
    assert_eq!(json["status"], "free");
    assert_eq!(
        json["free_until"],
        serde_json::to_value(at(15, 0)).expect("t")
    );
    let _ = tree(dir.path()); // asserts no temporary file is left
}

#[test]
fn privacy_reaches_every_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(dir.path(), serde_json::json!({"language": "de"})))
        .expect("create");
    let mut secret = event(ROOM, 1, "Layoffs in sales", at(9, 0), at(10, 0));
    secret.sensitivity = Sensitivity::Private;
    secret.organizer = Some(calpump_plugin::Person {
        name: Some("Carla Chief".into()),
        email: Some("carla@contoso.com".into()),
    });
    sink.write_batch(batch(ROOM, None, BatchKind::Snapshot, vec![secret], vec![]))
        .expect("write");
    for (rel, bytes) in tree(dir.path()) {
        let text = String::from_utf8_lossy(&bytes);
        let is_state = rel.starts_with(".state");
        if !is_state {
            assert!(
                !text.contains("Layoffs"),
                "{} leaks the subject",
                rel.display()
            );
            assert!(
                !text.contains("Carla"),
                "{} leaks the organizer",
                rel.display()
            );
        }
    }
    let json = room_json(dir.path(), ID);
    assert_eq!(json["current"]["subject"], "Privater Termin");
    // The state keeps the raw events: only its owner may read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(".state"))
            .expect("state dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "state readable by others: {mode:o}");
    }
    let html =
        std::fs::read_to_string(dir.path().join("rooms").join(format!("{ID}.html"))).expect("html");
    assert!(html.contains("Privater Termin"));
    assert!(html.contains("Belegt"));
}

#[test]
fn a_restarted_sink_still_shows_earlier_meetings() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path(), serde_json::json!({"clock": at(8, 0)}));
    {
        let sink = DoorSign::create(cfg.clone()).expect("create");
        let events = vec![
            event(ROOM, 1, "Standup", at(9, 0), at(10, 0)),
            event(ROOM, 2, "Review", at(14, 0), at(15, 0)),
        ];
        sink.write_batch(batch(
            ROOM,
            Some("Room 1.01"),
            BatchKind::Snapshot,
            events,
            vec![],
        ))
        .expect("write");
        sink.flush().expect("flush");
    }
    // Outputs gone (say, a tmpfs cleaned at boot); the state under .state/ remains.
    std::fs::remove_dir_all(dir.path().join("rooms")).expect("rm");
    std::fs::remove_file(dir.path().join("index.html")).expect("rm");

    let sink = DoorSign::create(cfg).expect("restart");
    let json = room_json(dir.path(), ID);
    assert_eq!(
        json["next"].as_array().map(Vec::len),
        Some(2),
        "re-rendered from the state at start"
    );
    assert!(dir.path().join("index.html").is_file());

    // The engine now sends only a delta; the earlier meetings stay.
    let extra = event(ROOM, 3, "Retro", at(16, 0), at(17, 0));
    sink.write_batch(batch(ROOM, None, BatchKind::Delta, vec![extra], vec![]))
        .expect("delta");
    let json = room_json(dir.path(), ID);
    let subjects: Vec<&str> = json["next"]
        .as_array()
        .expect("next")
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert_eq!(subjects, ["Standup", "Review", "Retro"]);
    assert_eq!(json["name"], "Room 1.01", "the display name survives too");
}

/// Inode and mtime of a file: a rewrite with equal bytes still changes both.
fn identity(path: &std::path::Path) -> (u64, std::time::SystemTime) {
    let meta = std::fs::metadata(path).expect("metadata");
    (inode(path), meta.modified().expect("mtime"))
}

#[test]
fn a_restart_does_not_rewrite_an_unchanged_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path(), serde_json::json!({"clock": at(8, 0)}));
    {
        let sink = DoorSign::create(cfg.clone()).expect("create");
        let events = vec![event(ROOM, 1, "Standup", at(9, 0), at(10, 0))];
        sink.write_batch(batch(
            ROOM,
            Some("Room 1.01"),
            BatchKind::Snapshot,
            events,
            vec![],
        ))
        .expect("write");
        sink.flush().expect("flush");
    }
    let html = dir.path().join("index.html");
    let json = dir.path().join("index.json");
    let room_page = dir.path().join("rooms").join(format!("{ID}.html"));
    let before = [identity(&html), identity(&json), identity(&room_page)];
    let bytes = std::fs::read(&json).expect("index.json");
    // mtimes have a granularity: let a rewrite show in them too.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let sink = DoorSign::create(cfg.clone()).expect("restart");
    assert_eq!(
        [identity(&html), identity(&json), identity(&room_page)],
        before,
        "a start with nothing changed replaces no file: index.html, index.json, the room page"
    );
    assert_eq!(std::fs::read(&json).expect("index.json"), bytes);
    drop(sink);

    // A missing or foreign index file is written; its unchanged twin is left alone.
    std::fs::remove_file(&json).expect("rm");
    let sink = DoorSign::create(cfg.clone()).expect("restart");
    assert_eq!(
        std::fs::read(&json).expect("index.json"),
        bytes,
        "rewritten"
    );
    assert_eq!(identity(&html), before[0], "index.html untouched");
    let json_now = identity(&json);
    drop(sink);
    std::fs::write(&html, b"<p>edited by hand</p>").expect("write");
    let sink = DoorSign::create(cfg).expect("restart");
    let page = std::fs::read_to_string(&html).expect("index.html");
    assert!(page.contains(&format!("{ID}.html\"")), "the index again");
    assert_eq!(identity(&json), json_now, "index.json (same bytes) kept");

    // A change still reaches the index.
    sink.write_batch(batch(
        "room-2@contoso.com",
        Some("Room 2"),
        BatchKind::Snapshot,
        vec![event("room-2@contoso.com", 2, "Retro", at(9, 0), at(10, 0))],
        vec![],
    ))
    .expect("write");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("index")).expect("json");
    assert_eq!(index["rooms"].as_array().map(Vec::len), Some(2));
}

#[test]
fn ticks_re_render_at_meeting_boundaries_and_when_stale() {
    let dir = tempfile::tempdir().expect("tmp");
    // No frozen clock: batches use the real time, ticks the engine's.
    let sink =
        DoorSign::create(config(dir.path(), serde_json::json!({"clock": null}))).expect("create");
    let now = Utc::now();
    let start = now + Duration::minutes(30);
    let end = start + Duration::minutes(60);
    let result = sink
        .write_batch(batch(
            ROOM,
            None,
            BatchKind::Snapshot,
            vec![event(ROOM, 1, "Planning", start, end)],
            vec![],
        ))
        .expect("write");
    assert_eq!(room_json(dir.path(), ID)["status"], "free");
    assert_eq!(result.next_wakeup, Some(start - Duration::minutes(10)));

    let tick = |now, mailboxes: Vec<MailboxHealth>| {
        sink.tick(Tick {
            schema_version: SCHEMA_VERSION,
            now,
            mailboxes,
        })
        .expect("tick")
    };
    let r = tick(start - Duration::minutes(5), vec![]);
    assert_eq!(room_json(dir.path(), ID)["status"], "starting-soon");
    assert_eq!(r.next_wakeup, Some(start));
    let json_path = dir.path().join("rooms").join(format!("{ID}.json"));
    let ino = inode(&json_path);
    tick(start - Duration::minutes(4), vec![]);
    assert_eq!(
        inode(&json_path),
        ino,
        "no change between boundaries, no write"
    );

    let r = tick(start + Duration::minutes(1), vec![]);
    assert_eq!(room_json(dir.path(), ID)["status"], "busy");
    assert_eq!(r.next_wakeup, Some(end - Duration::minutes(10)));

    // The source has been failing for 31 minutes: stale. A mailbox only known from the tick
    // gets a page too, with its display name.
    let failing = MailboxHealth {
        route: "rooms".into(),
        mailbox: ROOM.into(),
        mailbox_name: Some("Room 1.01".into()),
        last_success: None,
        failing_since: Some(start + Duration::minutes(2) - Duration::minutes(31)),
        last_error: Some("EWS-ErrorServerBusy".into()),
    };
    let other = MailboxHealth {
        route: "rooms".into(),
        mailbox: "Room-2@Contoso.com".into(),
        mailbox_name: Some("Room 2".into()),
        last_success: None,
        failing_since: None,
        last_error: None,
    };
    tick(start + Duration::minutes(2), vec![failing, other]);
    let json = room_json(dir.path(), ID);
    assert_eq!(json["status"], "stale");
    assert_eq!(
        json["current"]["subject"], "Planning",
        "the schedule still shows"
    );
    let other = room_json(dir.path(), "room-2_at_contoso.com");
    assert_eq!(other["name"], "Room 2");
    assert_eq!(other["status"], "unknown", "never read: not 'free'");
    // A batch for the room proves the route reads it again.
    sink.write_batch(batch(ROOM, None, BatchKind::Delta, vec![], vec![]))
        .expect("write");
    assert_ne!(room_json(dir.path(), ID)["status"], "stale");
}

#[test]
fn a_room_never_read_shows_unknown_at_once_never_free() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path(), serde_json::json!({"language": "de"}));
    let sink = DoorSign::create(cfg.clone()).expect("create");
    let health = |last_success| MailboxHealth {
        route: "rooms".into(),
        mailbox: ROOM.into(),
        mailbox_name: Some("Raum 1.01".into()),
        last_success,
        failing_since: None,
        last_error: None,
    };
    let tick = |sink: &DoorSign, mailboxes| {
        sink.tick(Tick {
            schema_version: SCHEMA_VERSION,
            now: at(9, 30),
            mailboxes,
        })
        .expect("tick")
    };
    // The engine serves the room but has not read it yet.
    tick(&sink, vec![health(None)]);
    let json = room_json(dir.path(), ID);
    assert_eq!(json["status"], "unknown");
    assert_eq!(json["until_local"], serde_json::Value::Null);
    let html =
        std::fs::read_to_string(dir.path().join("rooms").join(format!("{ID}.html"))).expect("html");
    assert!(html.contains("Noch nicht gelesen"), "German label");
    assert!(!html.contains("Frei"), "never shown as free");
    assert!(!html.contains("keine weiteren Buchungen"));
    let index = std::fs::read_to_string(dir.path().join("index.html")).expect("index");
    assert!(index.contains("Noch nicht gelesen"));

    // Still unknown after a restart (nothing was read), in English too.
    drop(sink);
    let mut en = cfg.clone();
    en["language"] = "en".into();
    let sink = DoorSign::create(en).expect("restart");
    assert_eq!(room_json(dir.path(), ID)["status"], "unknown");
    let html =
        std::fs::read_to_string(dir.path().join("rooms").join(format!("{ID}.html"))).expect("html");
    assert!(html.contains("Not yet read"));
    assert!(!html.contains(">Free<"));

    // A route reports a successful read (an empty calendar): now it is free.
    tick(&sink, vec![health(Some(at(9, 29)))]);
    assert_eq!(room_json(dir.path(), ID)["status"], "free");
    drop(sink);

    // A batch is a read, and that is remembered across restarts.
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path(), serde_json::json!({}));
    let sink = DoorSign::create(cfg.clone()).expect("create");
    tick(&sink, vec![health(None)]);
    assert_eq!(room_json(dir.path(), ID)["status"], "unknown");
    sink.write_batch(batch(ROOM, None, BatchKind::Snapshot, vec![], vec![]))
        .expect("write");
    assert_eq!(room_json(dir.path(), ID)["status"], "free");
    drop(sink);
    let sink = DoorSign::create(cfg).expect("restart");
    tick(&sink, vec![health(None)]);
    assert_eq!(room_json(dir.path(), ID)["status"], "free");
}

#[test]
fn the_footer_says_when_the_content_last_changed_not_updated() {
    let dir = tempfile::tempdir().expect("tmp");
    // No frozen clock: the batch renders at the real time, ticks at the engine's.
    let sink =
        DoorSign::create(config(dir.path(), serde_json::json!({"clock": null}))).expect("create");
    let now = Utc::now();
    let start = now + Duration::hours(3);
    sink.write_batch(batch(
        ROOM,
        None,
        BatchKind::Snapshot,
        vec![event(
            ROOM,
            1,
            "Planning",
            start,
            start + Duration::hours(1),
        )],
        vec![],
    ))
    .expect("write");
    let page = dir.path().join("rooms").join(format!("{ID}.html"));
    let changed_at = now.with_timezone(&TZ).format("%H:%M").to_string();
    let html = std::fs::read_to_string(&page).expect("html");
    assert!(
        html.contains("Last change <time datetime=") && html.contains(&changed_at),
        "footer: {}",
        html.lines()
            .find(|l| l.contains("<footer"))
            .unwrap_or_default()
    );
    assert!(
        !html.contains("Updated"),
        "the page is not re-written every tick"
    );
    // An hour later nothing changed: the page stays as it was and does not pretend otherwise.
    sink.tick(Tick {
        schema_version: SCHEMA_VERSION,
        now: now + Duration::hours(1),
        mailboxes: vec![],
    })
    .expect("tick");
    assert_eq!(std::fs::read_to_string(&page).expect("html"), html);
    drop(sink);

    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(dir.path(), serde_json::json!({"language": "de"})))
        .expect("create");
    sink.write_batch(batch(ROOM, None, BatchKind::Snapshot, vec![], vec![]))
        .expect("write");
    let html =
        std::fs::read_to_string(dir.path().join("rooms").join(format!("{ID}.html"))).expect("html");
    assert!(html.contains("Letzte Änderung <time"), "German label");
    assert!(html.contains(">09:30</time>"));
    assert!(!html.contains("Stand "));
}

#[test]
fn concurrent_batches_for_different_rooms() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = Arc::new(
        DoorSign::create(config(dir.path(), serde_json::json!({"png": []}))).expect("create"),
    );
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let room = format!("room-{i}@contoso.com");
                for round in 0..5u32 {
                    let e = event(&room, 1, &format!("Meeting {round}"), at(9, 0), at(10, 0));
                    sink.write_batch(batch(
                        &room,
                        Some(&format!("Room {i}")),
                        BatchKind::Delta,
                        vec![e],
                        vec![],
                    ))
                    .expect("write");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["rooms"].as_array().map(Vec::len), Some(8));
    for i in 0..8 {
        let json = room_json(dir.path(), &format!("room-{i}_at_contoso.com"));
        assert_eq!(json["current"]["subject"], "Meeting 4");
    }
    let _ = tree(dir.path());
}

fn decode(bytes: &[u8]) -> (png::OutputInfo, png::Info<'static>, Vec<u8>) {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png header");
    let info = reader.info().clone();
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let out = reader.next_frame(&mut buf).expect("frame");
    buf.truncate(out.buffer_size());
    (out, info.to_owned(), buf)
}

fn dark_pixels(out: &png::OutputInfo, rgb: &[u8], x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
    let channels = out.color_type.samples();
    let mut n = 0;
    for y in y0..y1.min(out.height) {
        for x in x0..x1.min(out.width) {
            let i = (y as usize * out.width as usize + x as usize) * channels;
            if rgb[i] < 128 && rgb[i + 1] < 128 {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn png_outputs_have_size_palette_text_and_ellipsis() {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = DoorSign::create(config(dir.path(), serde_json::json!({}))).expect("create");
    let long = "Quarterly business review with the whole regional sales organisation and guests from headquarters";
    let events = vec![
        event(ROOM, 1, long, at(9, 0), at(10, 0)),
        event(
            ROOM,
            2,
            "Größenplanung – Ünïcödé Привет",
            at(11, 0),
            at(12, 0),
        ),
    ];
    sink.write_batch(batch(
        ROOM,
        Some("Raum Süd 1.01"),
        BatchKind::Snapshot,
        events,
        vec![],
    ))
    .expect("write");

    for (w, h, palette) in [
        (296u32, 128u32, Palette::Bw),
        (400, 300, Palette::Bwr),
        (800, 480, Palette::Bwr),
    ] {
        let bytes =
            std::fs::read(dir.path().join("rooms").join(format!("{ID}-{w}x{h}.png"))).expect("png");
        let raw = png::Decoder::new(Cursor::new(&bytes))
            .read_info()
            .expect("header")
            .info()
            .clone();
        assert_eq!((raw.width, raw.height), (w, h));
        assert_eq!(
            raw.color_type,
            png::ColorType::Indexed,
            "a real palette image"
        );
        let expected: &[u8] = match palette {
            Palette::Bw => &[255, 255, 255, 0, 0, 0],
            Palette::Bwr => &[255, 255, 255, 0, 0, 0, 255, 0, 0],
        };
        assert_eq!(raw.palette.as_deref(), Some(expected));
        assert_eq!(
            raw.bit_depth,
            if palette == Palette::Bw {
                png::BitDepth::One
            } else {
                png::BitDepth::Two
            }
        );

        let (out, _, rgb) = decode(&bytes);
        let channels = out.color_type.samples();
        let mut colours = std::collections::BTreeSet::new();
        for px in rgb.chunks(channels) {
            colours.insert((px[0], px[1], px[2]));
        }
        let allowed: std::collections::BTreeSet<_> =
            expected.chunks(3).map(|c| (c[0], c[1], c[2])).collect();
        assert!(
            colours.is_subset(&allowed),
            "{w}x{h}: colours {colours:?} outside the palette"
        );
        if palette == Palette::Bwr {
            assert!(colours.contains(&(255, 0, 0)), "busy band in red");
        }
        // The room name sits in the top ~15%: text there, not a blank image.
        let name_dark = dark_pixels(&out, &rgb, 0, 0, w, h * 15 / 100);
        assert!(
            name_dark > (w * h / 400) as usize,
            "{w}x{h}: only {name_dark} dark pixels for the room name"
        );
    }
    let first = std::fs::read(dir.path().join("rooms").join(format!("{ID}.png"))).expect("png");
    let small =
        std::fs::read(dir.path().join("rooms").join(format!("{ID}-296x128.png"))).expect("png");
    assert_eq!(first, small, "rooms/<id>.png is the first configured size");

    // The same render, with its layout: the long subject is cut with "…" inside the image, the
    // non-ASCII one is drawn.
    let rules = Rules {
        tz: TZ,
        language: Language::En,
        starting_soon: Duration::minutes(10),
        ending_soon: Duration::minutes(10),
        stale_after: Duration::minutes(30),
        private_text: "Private appointment".into(),
        hide_subjects: false,
    };
    let events = [
        event(ROOM, 1, long, at(9, 0), at(10, 0)),
        event(
            ROOM,
            2,
            "Größenplanung – Ünïcödé Привет",
            at(11, 0),
            at(12, 0),
        ),
    ];
    let input = RoomInput {
        mailbox: ROOM,
        id: ID,
        name: Some("Raum Süd 1.01"),
        events: events.iter().collect(),
        failing_since: None,
        never_read: false,
    };
    let p = projection::project(&input, &rules, at(9, 30));
    let fonts = Fonts::embedded().expect("fonts");
    let labels = calpump_sink_doorsign::html::labels(Language::En);
    let size = PngSize {
        width: 296,
        height: 128,
        palette: Palette::Bw,
    };
    let image = raster::render(&p, size, &fonts, labels, &TZ, Language::En);
    let subject = image
        .texts
        .iter()
        .find(|t| t.role == "subject")
        .expect("subject drawn");
    assert!(subject.text.ends_with('…'), "{:?}", subject.text);
    assert!(subject.text.starts_with("Quarterly business"));
    assert!(subject.x + subject.width <= 296, "stays inside the image");
    let next = image
        .texts
        .iter()
        .find(|t| t.role == "next")
        .expect("next drawn");
    assert!(next.text.contains("Größenplanung"), "{:?}", next.text);
    let region_dark = image.pixels
        [(next.y as usize * 296)..((next.y + next.height) as usize * 296)]
        .iter()
        .filter(|&&p| p != raster::WHITE)
        .count();
    assert!(
        region_dark > 100,
        "the non-ASCII line is drawn ({region_dark} dark pixels)"
    );
    // Every glyph used exists in the embedded font (no tofu boxes for umlauts and Cyrillic).
    assert_eq!(
        fonts.missing_glyphs("Größenplanung – Ünïcödé Привет …"),
        Vec::<char>::new()
    );
    assert_eq!(
        fonts.missing_glyphs("会議"),
        vec!['会', '議'],
        "the check can fail"
    );
}

/// A 15-glyph subset of Noto Sans CJK JP (会議予算レビュー室東京山田太郎; SIL OFL 1.1).
const CJK_FONT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/NotoSansCJKjp-subset.otf"
);

/// Collects what the sink logs on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

fn projection_named(name: &str, events: &[calpump_plugin::Event]) -> projection::Projection {
    let rules = Rules {
        tz: TZ,
        language: Language::En,
        starting_soon: Duration::minutes(10),
        ending_soon: Duration::minutes(10),
        stale_after: Duration::minutes(30),
        private_text: "Private appointment".into(),
        hide_subjects: false,
    };
    let input = RoomInput {
        mailbox: ROOM,
        id: ID,
        name: Some(name),
        events: events.iter().collect(),
        failing_since: None,
        never_read: false,
    };
    projection::project(&input, &rules, at(9, 30))
}

const SMALL: PngSize = PngSize {
    width: 296,
    height: 128,
    palette: Palette::Bw,
};

/// The pixels of the room name's line.
fn name_pixels(image: &raster::Image) -> Vec<u8> {
    let name = image.texts.iter().find(|t| t.role == "name").expect("name");
    let (top, bottom) = (name.y as usize, (name.y + name.height) as usize);
    image.pixels[top * image.width as usize..bottom * image.width as usize].to_vec()
}

#[test]
fn png_text_falls_back_to_other_fonts_glyph_by_glyph() {
    let labels = calpump_sink_doorsign::html::labels(Language::En);
    let with_cjk = Fonts::new(&[CJK_FONT.into()], &[]).expect("fonts");
    let embedded = Fonts::embedded().expect("fonts");
    let subject = "会議: 予算レビュー ✓";
    let events = [event(ROOM, 1, subject, at(9, 0), at(10, 0))];
    let p = projection_named("会議室", &events);

    let image = raster::render(&p, SMALL, &with_cjk, labels, &TZ, Language::En);
    assert!(image.missing.is_empty(), "{:?}", image.missing);
    let drawn = image
        .texts
        .iter()
        .find(|t| t.role == "subject")
        .expect("subject");
    assert_eq!(drawn.text.trim_matches(['\u{2068}', '\u{2069}']), subject);
    // Without the fallback the ideographs have no glyph: reported and drawn as "�".
    let bare = raster::render(&p, SMALL, &embedded, labels, &TZ, Language::En);
    assert_eq!(
        bare.missing,
        ['会', '議', '室', '予', '算', 'レ', 'ビ', 'ュ', 'ー']
    );
    // Each ideograph is its own glyph (boxes would all look alike): 会 and 議 differ.
    let one = raster::render(
        &projection_named("会", &events),
        SMALL,
        &with_cjk,
        labels,
        &TZ,
        Language::En,
    );
    let two = raster::render(
        &projection_named("議", &events),
        SMALL,
        &with_cjk,
        labels,
        &TZ,
        Language::En,
    );
    assert_ne!(name_pixels(&one), name_pixels(&two));
    assert!(
        name_pixels(&one)
            .iter()
            .filter(|p| **p != raster::WHITE)
            .count()
            > 30
    );
    let one = raster::render(
        &projection_named("会", &events),
        SMALL,
        &embedded,
        labels,
        &TZ,
        Language::En,
    );
    let two = raster::render(
        &projection_named("議", &events),
        SMALL,
        &embedded,
        labels,
        &TZ,
        Language::En,
    );
    assert_eq!(
        name_pixels(&one),
        name_pixels(&two),
        "both are the replacement"
    );

    // The default search: system font files, absent ones skipped.
    let searched =
        Fonts::new(&[], &["/nonexistent/NotoSansCJK-Regular.ttc", CJK_FONT]).expect("fonts");
    assert!(searched.missing_glyphs("会議 予算 ✓").is_empty());
    let none = Fonts::new(&[], &["/nonexistent/NotoSansCJK-Regular.ttc"]).expect("fonts");
    assert_eq!(none.missing_glyphs("会議"), ['会', '議']);
    assert!(
        calpump_sink_doorsign::text::SYSTEM_FONTS
            .contains(&"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
        "Debian's Noto Sans CJK is searched"
    );

    // A configured font file that cannot be read is a configuration error naming `fonts`.
    let dir = tempfile::tempdir().expect("tmp");
    let err = DoorSign::create(config(
        dir.path(),
        serde_json::json!({"fonts": ["/nonexistent/font.ttf"]}),
    ))
    .err()
    .expect("refused");
    assert_eq!(err.kind, calpump_plugin::SinkErrorKind::Config);
    assert!(err.message.contains("`fonts`"), "{}", err.message);
}

#[test]
fn a_character_no_font_has_is_logged_once_per_room() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let dir = tempfile::tempdir().expect("tmp");
        let sink = DoorSign::create(config(
            dir.path(),
            serde_json::json!({"fonts": [CJK_FONT], "system_fonts": false}),
        ))
        .expect("create");
        // U+0378 is unassigned: no font has it. The ideographs come from the fallback font.
        for round in 0..3 {
            let subject = format!("会議 \u{0378} round {round}");
            sink.write_batch(batch(
                ROOM,
                None,
                BatchKind::Snapshot,
                vec![event(ROOM, 1, &subject, at(9, 0), at(10, 0))],
                vec![],
            ))
            .expect("write");
        }
        let other = "room-2@contoso.com";
        sink.write_batch(batch(
            other,
            None,
            BatchKind::Snapshot,
            vec![event(other, 1, "\u{0378}", at(9, 0), at(10, 0))],
            vec![],
        ))
        .expect("write");
    });
    let text = logs.text();
    let reports: Vec<&str> = text.lines().filter(|l| l.contains("no font has")).collect();
    assert_eq!(
        reports.len(),
        2,
        "once per room (three renders, three sizes):\n{text}"
    );
    assert!(
        reports[0].contains(ROOM) && reports[0].contains("U+0378"),
        "{}",
        reports[0]
    );
    assert!(!reports[0].contains("U+4F1A"), "会 has a font");
    assert!(reports[1].contains("room-2@contoso.com"));
}

#[test]
fn png_layout_uses_the_height_of_tall_panels() {
    let fonts = Fonts::embedded().expect("fonts");
    let labels = calpump_sink_doorsign::html::labels(Language::En);
    let events = [
        event(
            ROOM,
            1,
            "Quarterly business review with the regional sales team",
            at(9, 0),
            at(10, 0),
        ),
        event(ROOM, 2, "Design review", at(11, 0), at(12, 0)),
        event(ROOM, 3, "Lunch and learn", at(12, 30), at(13, 30)),
        event(ROOM, 4, "Retro", at(15, 0), at(16, 0)),
    ];
    let p = projection_named("Room 1.01", &events);
    for (w, h) in [(400u32, 300u32), (800, 480)] {
        let size = PngSize {
            width: w,
            height: h,
            palette: Palette::Bwr,
        };
        let image = raster::render(&p, size, &fonts, labels, &TZ, Language::En);
        let lowest = image
            .texts
            .iter()
            .map(|t| t.y + t.height)
            .max()
            .expect("texts");
        assert!(
            lowest as u32 > h * 85 / 100,
            "{w}x{h}: text ends at y={lowest}, the bottom is left empty"
        );
        let bottom_dark = image.pixels[(h * 60 / 100 * w) as usize..]
            .iter()
            .filter(|p| **p != raster::WHITE)
            .count();
        assert!(
            bottom_dark > (w * h / 200) as usize,
            "{w}x{h}: bottom 40% nearly blank"
        );
        // Text grows with the panel: the status word is taller than the width alone allows.
        let status = image
            .texts
            .iter()
            .find(|t| t.role == "status")
            .expect("status");
        let by_width = fonts.line_height(24.0 * w as f32 / 296.0);
        assert!(
            status.height > by_width,
            "{w}x{h}: status {} ≤ {by_width}",
            status.height
        );
        // Everything stays inside the image.
        assert!(
            image
                .texts
                .iter()
                .all(|t| t.x + t.width <= w as i32 && t.y + t.height <= h as i32)
        );
        // A tall panel shows the long subject on two lines and the date at the bottom.
        assert_eq!(
            image.texts.iter().filter(|t| t.role == "subject").count(),
            2,
            "{w}x{h}"
        );
        assert!(
            image
                .texts
                .iter()
                .any(|t| t.role == "date" && t.text == "Sat 28 Nov")
        );
    }
}
