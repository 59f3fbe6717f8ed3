//! `calpump mailboxes PROFILE` against the simulator: the tree of room lists with their rooms,
//! calendars and item counts; `--filter`; `--json`; and per mailbox the reason it can't be read
//! (the on-premises room through Graph, rooms outside a scoped app's reach) without stopping
//! the listing.

mod profile_support;

use calpump_engine::diagnostics::catalogue::lookup;
use calpump_simulator::catalogue;
use profile_support::*;
use serde_json::Value;

fn rooms_of<'a>(doc: &'a Value, list: &str) -> &'a Vec<Value> {
    doc["room_lists"]
        .as_array()
        .expect("room_lists")
        .iter()
        .find(|l| l["address"] == list)
        .unwrap_or_else(|| panic!("no list {list}: {doc}"))["rooms"]
        .as_array()
        .expect("rooms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_lists_room_lists_rooms_calendars_and_counts() {
    // 60 rooms: "Building 1" with 50, "Building 2" with 10.
    let sim = simulator(60).await;
    let body = format!(
        "{}\n[[routes]]\nname = \"people\"\nprofile = \"ews\"\nmailboxes = [\"svc-pump@contoso.com\", \"nobody@contoso.com\"]\nsinks = []\n",
        ews_profile(&sim, "ews", catalogue::SVC_PUMP)
    );
    let (tmp, _) = config_dir(&body);

    let out = calpump_async(tmp.path(), &["--lang", "en", "mailboxes", "ews", "--json"]).await;
    // One configured mailbox does not exist: exit 1, but everything else is listed.
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["backend"], "ews");
    let lists = doc["room_lists"].as_array().expect("lists");
    let names: Vec<&str> = lists.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, ["Building 1", "Building 2"]);
    assert_eq!(rooms_of(&doc, "building-1@contoso.com").len(), 50);
    let b2 = rooms_of(&doc, "building-2@contoso.com");
    assert_eq!(b2.len(), 10);
    assert_eq!(b2[0]["address"], "room-2.01@contoso.com");
    assert_eq!(b2[0]["name"], "Room 2.01");
    for room in rooms_of(&doc, "building-1@contoso.com").iter().chain(b2) {
        assert!(room["error"].is_null(), "{room}");
        let cals = room["calendars"].as_array().expect("calendars");
        assert_eq!(cals[0]["is_default"], true, "{room}");
        assert!(
            cals[0]["item_count"].as_u64().is_some_and(|n| n > 0),
            "{room}"
        );
    }
    // The first room of a floor has a sub-calendar "Maintenance".
    let r101 = &rooms_of(&doc, "building-1@contoso.com")[0];
    assert_eq!(r101["address"], "room-1.01@contoso.com");
    let paths: Vec<&str> = r101["calendars"]
        .as_array()
        .expect("cals")
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(paths, ["default", "Maintenance"]);
    // The routes' mailboxes: one readable, one with its reason.
    let configured = doc["mailboxes"].as_array().expect("mailboxes");
    assert_eq!(configured.len(), 2);
    let nobody = configured
        .iter()
        .find(|m| m["address"] == "nobody@contoso.com")
        .expect("nobody");
    assert_eq!(nobody["routes"][0], "people");
    assert!(nobody["calendars"].is_null());
    assert_eq!(
        nobody["error"]["code"], "ews.ErrorNonExistentMailbox",
        "{nobody}"
    );
    let svc = configured
        .iter()
        .find(|m| m["address"] == "svc-pump@contoso.com")
        .expect("svc");
    assert!(svc["error"].is_null(), "{svc}");
    assert_eq!(doc["summary"]["unreadable"], 1);
    assert_eq!(doc["summary"]["mailboxes"], 62);

    // The text tree.
    let out = calpump_async(tmp.path(), &["--lang", "en", "mailboxes", "ews"]).await;
    let text = stdout(&out);
    assert!(text.contains("Room lists\n├── Building 1 <building-1@contoso.com> · 50 rooms\n│   ├── Room 1.01 <room-1.01@contoso.com>\n│   │   └── Calendar · "), "{text}");
    assert!(
        text.contains("items (main calendar)\n│   │       └── Maintenance · "),
        "{text}"
    );
    assert!(
        text.contains("└── Building 2 <building-2@contoso.com> · 10 rooms"),
        "{text}"
    );
    assert!(text.contains("Mailboxes of the routes\n"), "{text}");
    assert!(
        text.contains("nobody@contoso.com · route people\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "└── ✗ [ews.ErrorNonExistentMailbox] No mailbox with this address — Check the address"
        ),
        "{text}"
    );
    assert!(
        text.contains("62 mailboxes, 1 of them can't be read"),
        "{text}"
    );

    // --filter: case-insensitive on address or name; lists without a match disappear.
    let out = calpump_async(
        tmp.path(),
        &[
            "--lang",
            "de",
            "mailboxes",
            "ews",
            "--filter",
            "ROOM 2.0",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["room_lists"].as_array().expect("lists").len(), 1);
    let shown: Vec<&str> = rooms_of(&doc, "building-2@contoso.com")
        .iter()
        .filter_map(|r| r["address"].as_str())
        .collect();
    assert_eq!(shown.len(), 9, "{shown:?}");
    assert!(shown.iter().all(|a| a.starts_with("room-2.0")));
    assert_eq!(doc["mailboxes"].as_array().expect("m").len(), 0);
    let out = calpump_async(
        tmp.path(),
        &["--lang", "de", "mailboxes", "ews", "--filter", "room-1.05@"],
    )
    .await;
    let text = stdout(&out);
    assert!(
        text.contains("Raumlisten\n└── Building 1 <building-1@contoso.com> · 1 Raum\n    └── Room 1.05 <room-1.05@contoso.com>\n        └── Calendar · "),
        "{text}"
    );
    assert!(text.contains("(Hauptkalender)"), "{text}");
    assert!(
        text.contains("Postfächer der Routen\n└── (keine)"),
        "{text}"
    );
    assert!(text.contains("1 Postfächer, alle lesbar."), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unreadable_mailbox_says_why_and_the_rest_is_listed() {
    let sim = simulator(60).await;
    let body = format!(
        "{}\n{}\n[[routes]]\nname = \"cloud\"\nprofile = \"graph\"\nmailboxes = [\"room-onprem@contoso.com\", \"room-1.02@contoso.com\"]\nsinks = []\n",
        graph_profile(
            &sim,
            "graph",
            catalogue::GRAPH_APP_ID,
            catalogue::GRAPH_APP_SECRET
        ),
        graph_profile(
            &sim,
            "scoped",
            catalogue::SCOPED_APP_ID,
            catalogue::SCOPED_APP_SECRET
        ),
    );
    let (tmp, _) = config_dir(&body);

    // The on-premises room through Graph.
    let out = calpump_async(
        tmp.path(),
        &[
            "--lang",
            "en",
            "mailboxes",
            "graph",
            "--filter",
            "room-onprem",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let onprem = &doc["mailboxes"][0];
    assert_eq!(onprem["address"], "room-onprem@contoso.com");
    assert_eq!(
        onprem["error"]["code"], "graph.MailboxNotEnabledForRESTAPI",
        "{onprem}"
    );
    let info = lookup("graph.MailboxNotEnabledForRESTAPI").expect("entry");
    assert_eq!(onprem["error"]["remedy"], info.en.remedy);

    // A scoped app: Building 1 readable, Building 2 out of scope — per mailbox.
    let out = calpump_async(
        tmp.path(),
        &["--lang", "en", "mailboxes", "scoped", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    for room in rooms_of(&doc, "building-1@contoso.com") {
        assert!(room["error"].is_null(), "{room}");
        assert!(room["calendars"].as_array().is_some_and(|c| !c.is_empty()));
    }
    let b2 = rooms_of(&doc, "building-2@contoso.com");
    assert_eq!(b2.len(), 10);
    for room in b2 {
        assert_eq!(room["error"]["code"], "graph.MailboxOutOfScope", "{room}");
        assert!(room["calendars"].is_null());
    }
    assert_eq!(doc["summary"]["unreadable"], 10);

    // In German, the tree names code, title and the remedy's first sentence.
    let out = calpump_async(
        tmp.path(),
        &[
            "--lang",
            "de",
            "mailboxes",
            "scoped",
            "--filter",
            "room-2.01",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let info = lookup("graph.MailboxOutOfScope").expect("entry");
    let first = calpump_first_sentence(info.de.remedy);
    assert!(
        text.contains(&format!(
            "└── ✗ [graph.MailboxOutOfScope] {} — {first}",
            info.de.title
        )),
        "{text}"
    );
    assert!(
        text.contains("1 Postfächer, 1 davon nicht lesbar"),
        "{text}"
    );
    sim.shutdown().await;
}

/// The remedy's first sentence as the tree shows it (up to the first ". " outside backticks).
fn calpump_first_sentence(text: &str) -> &str {
    let mut in_code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '.' if !in_code => {
                let rest = &text[i + 1..];
                if rest.is_empty() || rest.starts_with(' ') {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}
