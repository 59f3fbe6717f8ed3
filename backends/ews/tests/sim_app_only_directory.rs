//! Org-level calls (GetRoomLists, GetRooms, ResolveNames) with an app-only token against the
//! simulator. Exchange Online accepts an app-only token only together with an impersonated
//! mailbox (`ExchangeImpersonation` + `X-AnchorMailbox`, `how-to-authenticate-an-ews-application-by-using-oauth.md`:
//! "To use application permissions, you will also need to explicitly impersonate a mailbox";
//! the SOAP header of `getroomlists-operation.md` lists `ExchangeImpersonation`), and the
//! simulator refuses one without it (`ErrorInvalidExchangeImpersonationHeaderData`). The
//! backend acts as `probe_mailbox`, else as the first mailbox it was asked about, else it
//! refuses with `ews.AppOnlyNeedsMailbox`, whose remedy names `probe_mailbox`.

mod common;

use calpump_engine::diagnostics::Lang;
use calpump_engine::source::Source;
use common::*;

const PROBE_LINE: &str = r#"probe_mailbox = "room-1.01@contoso.com""#;

/// (operation, impersonated, X-AnchorMailbox) of the directory requests the simulator saw.
fn directory_requests(
    sim: &calpump_simulator::Simulator,
) -> Vec<(String, Option<String>, Option<String>)> {
    calpump_simulator::ews::settings(sim.control())
        .requests()
        .into_iter()
        .filter(|r| ["GetRoomLists", "GetRooms", "ResolveNames"].contains(&r.operation.as_str()))
        .map(|r| (r.operation, r.impersonated, r.anchor_mailbox))
        .collect()
}

#[tokio::test]
async fn app_only_room_lists_act_as_a_mailbox() {
    let sim = sim(20).await;
    let profile = profile_toml(&sim, "client_credentials");
    assert!(profile.contains(PROBE_LINE));
    let log = calpump_simulator::ews::settings(sim.control());

    // No probe_mailbox and no mailbox asked about yet: a clear refusal, no request sent.
    let source = source_from(&profile.replace(PROBE_LINE, ""));
    let error = source
        .room_lists()
        .await
        .expect_err("room lists need a mailbox to act as");
    assert_eq!(error.code(), "ews.AppOnlyNeedsMailbox", "{error:?}");
    let texts = error.diagnostic.info().texts(Lang::En);
    assert!(texts.remedy.contains("probe_mailbox"), "{}", texts.remedy);
    assert!(
        error.diagnostic.detail().contains("GetRoomLists"),
        "{}",
        error.diagnostic.detail()
    );
    assert!(directory_requests(&sim).is_empty());

    // Resolving a mailbox acts as that mailbox; afterwards room lists and rooms act as it.
    let info = source
        .resolve_mailbox("Room-1.02@contoso.com")
        .await
        .expect("resolve through the mailbox itself");
    assert_eq!(info.address, "room-1.02@contoso.com");
    let lists = source.room_lists().await.expect("room lists");
    assert!(!lists.is_empty());
    let rooms = source.rooms(Some(&lists[0].address)).await.expect("rooms");
    assert!(!rooms.is_empty());
    let all = source.rooms(None).await.expect("all rooms");
    assert!(all.len() >= rooms.len());
    let seen = directory_requests(&sim);
    assert!(seen.len() >= 4, "{seen:?}");
    let anchor = Some("room-1.02@contoso.com".to_string());
    for (operation, impersonated, anchor_header) in &seen {
        assert_eq!(impersonated, &anchor, "{operation}");
        assert_eq!(anchor_header, &anchor, "{operation}: X-AnchorMailbox");
    }
    // A mailbox that does not exist never becomes the anchor.
    log.clear_requests();
    let fresh = source_from(&profile.replace(PROBE_LINE, ""));
    fresh
        .resolve_mailbox("nobody@contoso.com")
        .await
        .expect_err("no such mailbox");
    assert_eq!(
        fresh
            .room_lists()
            .await
            .expect_err("still no anchor")
            .code(),
        "ews.AppOnlyNeedsMailbox"
    );

    // With probe_mailbox, room lists work at once, acting as it.
    log.clear_requests();
    let probed = source_from(&profile);
    probed
        .room_lists()
        .await
        .expect("room lists via probe_mailbox");
    probed
        .resolve_mailbox("room-1.03@contoso.com")
        .await
        .expect("resolve");
    let probe = Some("room-1.01@contoso.com".to_string());
    let seen = directory_requests(&sim);
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (operation, impersonated, anchor_header) in &seen {
        assert_eq!(impersonated, &probe, "{operation}");
        assert_eq!(anchor_header, &probe, "{operation}");
    }
}

#[test]
fn check_warns_about_room_lists_without_probe_mailbox() {
    let table = |text: &str| -> toml::Table { toml::from_str(text).expect("toml") };
    let app_only = r#"url = "https://outlook.office365.com/EWS/Exchange.asmx"
        auth = { kind = "oauth", tenant = "contoso.onmicrosoft.com", client_id = "0a1b", client_secret = "s" }"#;
    let (_, issues) = calpump_ews::config::read("online", &table(app_only), None);
    let warning = issues
        .iter()
        .find(|i| i.path == "probe_mailbox")
        .expect("a warning about probe_mailbox");
    assert!(!warning.is_error());
    let text = warning.to_string();
    assert!(
        text.contains("room_lists") && text.contains("ews.AppOnlyNeedsMailbox"),
        "{text}"
    );
    let with_probe = format!("{app_only}\nprobe_mailbox = \"room@contoso.com\"");
    let (_, issues) = calpump_ews::config::read("online", &table(&with_probe), None);
    assert!(
        issues.iter().all(|i| i.path != "probe_mailbox"),
        "{issues:?}"
    );
    let basic = r#"url = "https://mail.contoso.com/EWS/Exchange.asmx"
        auth = { kind = "basic", username = "svc@contoso.com", password = "p" }"#;
    let (_, issues) = calpump_ews::config::read("onprem", &table(basic), None);
    assert!(
        issues.iter().all(|i| i.path != "probe_mailbox"),
        "{issues:?}"
    );
}
