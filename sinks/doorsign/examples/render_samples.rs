//! Renders sample door signs (PNG at 296×128, 400×300 and 800×480, and the HTML page) into a
//! directory, to look at: `cargo run -p calpump-sink-doorsign --example render_samples -- /tmp/signs`.

use calpump_plugin::{Event, EventIdentity, GlobalObjectId, Person, SourceIds};
use calpump_sink_doorsign::config::{Language, Palette, PngSize};
use calpump_sink_doorsign::html::labels;
use calpump_sink_doorsign::projection::{RoomInput, Rules, project};
use calpump_sink_doorsign::raster::{Fonts, render};
use chrono::{DateTime, Duration, TimeZone, Utc};

const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2026, 11, 28, h, m, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn event(n: u8, subject: &str, organizer: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Event {
    let mut bytes = vec![7u8; 20];
    bytes.push(n);
    let goid = GlobalObjectId::from_bytes(&bytes).expect("goid");
    let id = EventIdentity::new("room@contoso.com", goid, None).expect("identity");
    let mut e =
        Event::new(id, "default", SourceIds::default(), subject, start, end).expect("event");
    e.organizer = Some(Person {
        name: Some(organizer.into()),
        email: None,
    });
    e
}

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "signs".into());
    std::fs::create_dir_all(&out).expect("out dir");
    let rules = Rules {
        tz: TZ,
        language: Language::En,
        starting_soon: Duration::minutes(10),
        ending_soon: Duration::minutes(10),
        stale_after: Duration::minutes(30),
        private_text: "Private appointment".into(),
        hide_subjects: false,
    };
    let samples: Vec<(&str, &str, Vec<Event>)> = vec![
        (
            "latin",
            "Raum Süd 1.01",
            vec![
                event(
                    1,
                    "Quarterly business review with the whole regional sales organisation",
                    "Ann Organizer",
                    at(9, 0),
                    at(10, 0),
                ),
                event(
                    2,
                    "Größenplanung – Ünïcödé Привет",
                    "Bernd Brot",
                    at(11, 0),
                    at(12, 0),
                ),
                event(3, "Retro", "Carla", at(14, 0), at(15, 0)),
            ],
        ),
        (
            "scripts",
            "会議室 東京",
            vec![
                event(1, "会議: 予算レビュー ✓", "山田 太郎", at(9, 0), at(10, 0)),
                event(2, "اجتماع الميزانية 2026", "أحمد", at(11, 0), at(12, 0)),
                event(3, "ישיבת צוות שבועית", "דנה", at(14, 0), at(15, 0)),
                event(4, "Launch 🚀 party", "Dan", at(16, 0), at(17, 0)),
            ],
        ),
        ("unknown", "Raum 3 (never read)", Vec::new()),
    ];
    // The embedded font, then the system's fallback fonts (as the sink does by default).
    let fonts = Fonts::new(&[], calpump_sink_doorsign::text::SYSTEM_FONTS).expect("fonts");
    for (name, room, events) in &samples {
        let input = RoomInput {
            mailbox: "room@contoso.com",
            id: "room_at_contoso.com",
            name: Some(room),
            events: events.iter().collect(),
            failing_since: None,
            never_read: *name == "unknown",
        };
        let mut p = project(&input, &rules, at(9, 30));
        p.seal("samples");
        let pages = calpump_sink_doorsign::html::Pages::new(
            Language::En,
            calpump_sink_doorsign::config::Theme::Light,
            TZ,
            60,
        )
        .expect("templates");
        let path = format!("{out}/{name}.html");
        std::fs::write(&path, pages.room(&p).expect("page")).expect("write");
        println!("{path}");
        for (w, h, palette) in [
            (296, 128, Palette::Bw),
            (400, 300, Palette::Bwr),
            (800, 480, Palette::Bwr),
        ] {
            let size = PngSize {
                width: w,
                height: h,
                palette,
            };
            let image = render(&p, size, &fonts, labels(Language::En), &TZ, Language::En);
            if !image.missing.is_empty() {
                println!("{name} {w}x{h}: no font for {:?}", image.missing);
            }
            let path = format!("{out}/{name}-{w}x{h}.png");
            std::fs::write(&path, image.to_png().expect("png")).expect("write");
            println!("{path}");
        }
    }
}
