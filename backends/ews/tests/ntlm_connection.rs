//! NTLM authenticates a TCP connection: the three legs must share one, and requests after the
//! handshake ride the authenticated connection without new handshakes. A small server that
//! tracks connections by peer address checks exactly that (independent of the simulator).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{MailboxInfo, MailboxKind, Source};
use calpump_ews::EwsSource;
use calpump_ews::config;

#[derive(Default)]
struct Server {
    /// Per connection: the legs seen (1, 3) and whether it is authenticated.
    conns: Mutex<HashMap<SocketAddr, (Vec<u32>, bool)>>,
    handshakes: Mutex<u32>,
    errors: Mutex<Vec<String>>,
    /// How many authenticates still to refuse (as a server does when leg 3 arrives on another
    /// connection than leg 1, or the password is wrong), and how many were refused.
    refuse: Mutex<(u32, u32)>,
}

const GET_FOLDER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:Folders><t:CalendarFolder><t:FolderId Id="CAL" ChangeKey="1"/><t:DisplayName>Calendar</t:DisplayName><t:TotalCount>7</t:TotalCount><t:ChildFolderCount>0</t:ChildFolderCount></t:CalendarFolder></m:Folders>
</m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#;

fn challenge() -> String {
    let msg = ntlmclient::Message::Challenge(ntlmclient::ChallengeMessage {
        target_name: "CONTOSO".into(),
        flags: ntlmclient::Flags::NEGOTIATE_UNICODE
            | ntlmclient::Flags::NEGOTIATE_NTLM
            | ntlmclient::Flags::NEGOTIATE_TARGET_INFO,
        challenge: [1, 2, 3, 4, 5, 6, 7, 8],
        context: (0, 0),
        target_information: vec![
            ntlmclient::TargetInfoEntry::from_string(
                ntlmclient::TargetInfoType::NtDomain,
                "CONTOSO",
            ),
            ntlmclient::TargetInfoEntry {
                entry_type: ntlmclient::TargetInfoType::Terminator,
                data: vec![],
            },
        ],
        os_version: Default::default(),
    });
    BASE64.encode(msg.to_bytes().expect("challenge"))
}

async fn ews(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut conns = server.conns.lock().expect("lock");
    let entry = conns.entry(peer).or_default();
    match auth {
        None if entry.1 => {
            (StatusCode::OK, [("content-type", "text/xml")], GET_FOLDER).into_response()
        }
        None => (StatusCode::UNAUTHORIZED, [("www-authenticate", "NTLM")], "").into_response(),
        Some(value) => {
            let Some(token) = value.strip_prefix("NTLM ") else {
                return (StatusCode::UNAUTHORIZED, [("www-authenticate", "NTLM")], "")
                    .into_response();
            };
            let bytes = BASE64.decode(token).unwrap_or_default();
            let kind = if bytes.len() >= 12 {
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])
            } else {
                0
            };
            entry.0.push(kind);
            match kind {
                1 => {
                    if !body.is_empty() {
                        server
                            .errors
                            .lock()
                            .expect("lock")
                            .push("leg 1 carried a body".into());
                    }
                    (
                        StatusCode::UNAUTHORIZED,
                        [("www-authenticate", format!("NTLM {}", challenge()))],
                        "",
                    )
                        .into_response()
                }
                3 => {
                    {
                        let mut refuse = server.refuse.lock().expect("lock");
                        if refuse.0 > 0 {
                            refuse.0 -= 1;
                            refuse.1 += 1;
                            entry.0.clear();
                            return (StatusCode::UNAUTHORIZED, [("www-authenticate", "NTLM")], "")
                                .into_response();
                        }
                    }
                    if entry.0.first() != Some(&1) {
                        server
                            .errors
                            .lock()
                            .expect("lock")
                            .push(format!("leg 3 on connection {peer} that saw no leg 1"));
                        return (StatusCode::UNAUTHORIZED, [("www-authenticate", "NTLM")], "")
                            .into_response();
                    }
                    let Ok(ntlmclient::Message::Authenticate(a)) =
                        ntlmclient::Message::try_from(bytes.as_slice())
                    else {
                        server
                            .errors
                            .lock()
                            .expect("lock")
                            .push("leg 3 unreadable".into());
                        return StatusCode::BAD_REQUEST.into_response();
                    };
                    if a.user_name != "svc-pump"
                        || a.domain_name != "CONTOSO"
                        || a.ntlm_response.len() <= 24
                    {
                        server
                            .errors
                            .lock()
                            .expect("lock")
                            .push(format!("leg 3: {}\\{}", a.domain_name, a.user_name));
                    }
                    if !body.contains("GetFolder") {
                        server
                            .errors
                            .lock()
                            .expect("lock")
                            .push("leg 3 lacks the request body".into());
                    }
                    entry.1 = true;
                    *server.handshakes.lock().expect("lock") += 1;
                    (StatusCode::OK, [("content-type", "text/xml")], GET_FOLDER).into_response()
                }
                _ => StatusCode::BAD_REQUEST.into_response(),
            }
        }
    }
}

#[tokio::test]
async fn three_legs_on_one_connection_and_reuse_after() {
    let server = Arc::new(Server::default());
    let app = axum::Router::new()
        .route("/EWS/Exchange.asmx", axum::routing::post(ews))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    // SAFETY-free: a unique variable name for this test process.
    let table: toml::Table = toml::from_str(&format!(
        r#"url = "http://{addr}/EWS/Exchange.asmx"
           auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = "Sim-Passw0rd!" }}
           impersonation = true
           max_concurrency = 3"#
    ))
    .expect("toml");
    let (settings, issues) = config::read("t", &table, None);
    let settings = settings.unwrap_or_else(|| panic!("{issues:?}"));
    let source =
        Arc::new(EwsSource::build(settings, &SecretResolver::new("/nonexistent")).expect("build"));
    let mailbox = MailboxInfo {
        address: "room-1.01@contoso.com".into(),
        name: None,
        kind: MailboxKind::Room,
        room_list: None,
    };
    // Sequential: one handshake, then the same connection without auth.
    for _ in 0..5 {
        let cals = source.calendars(&mailbox).await.expect("calendars");
        assert_eq!(cals[0].item_count, Some(7));
    }
    assert_eq!(
        *server.handshakes.lock().expect("lock"),
        1,
        "one handshake for sequential requests"
    );
    // Concurrent: at most max_concurrency connections, each authenticated once.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let source = source.clone();
        let mailbox = mailbox.clone();
        tasks.push(tokio::spawn(
            async move { source.calendars(&mailbox).await },
        ));
    }
    for t in tasks {
        t.await.expect("join").expect("calendars");
    }
    let errors = server.errors.lock().expect("lock").clone();
    assert!(errors.is_empty(), "{errors:?}");
    let handshakes = *server.handshakes.lock().expect("lock");
    assert!(handshakes <= 3, "{handshakes} handshakes for 3 slots");
    let conns = server.conns.lock().expect("lock");
    for (peer, (legs, authed)) in conns.iter() {
        assert!(*authed, "connection {peer} never authenticated: {legs:?}");
        assert_eq!(legs, &vec![1, 3], "connection {peer}: legs {legs:?}");
    }
}

/// A refused authenticate (leg 3 on another connection than leg 1: reqwest's pool may open a
/// new one on a loaded machine) is followed by one new handshake, which succeeds; a second
/// refusal is final: `ews.Unauthorized`, after exactly two attempts.
#[tokio::test]
async fn a_refused_authenticate_is_repeated_once() {
    let server = Arc::new(Server::default());
    let app = axum::Router::new()
        .route("/EWS/Exchange.asmx", axum::routing::post(ews))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    let source = || {
        let table: toml::Table = toml::from_str(&format!(
            r#"url = "http://{addr}/EWS/Exchange.asmx"
               auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = "Sim-Passw0rd!" }}
               impersonation = true"#
        ))
        .expect("toml");
        let (settings, issues) = config::read("t", &table, None);
        let settings = settings.unwrap_or_else(|| panic!("{issues:?}"));
        EwsSource::build(settings, &SecretResolver::new("/nonexistent")).expect("build")
    };
    let mailbox = MailboxInfo {
        address: "room-1.01@contoso.com".into(),
        name: None,
        kind: MailboxKind::Room,
        room_list: None,
    };
    *server.refuse.lock().expect("lock") = (1, 0);
    let cals = source()
        .calendars(&mailbox)
        .await
        .expect("the second handshake");
    assert_eq!(cals[0].item_count, Some(7));
    assert_eq!(server.refuse.lock().expect("lock").1, 1);
    assert_eq!(*server.handshakes.lock().expect("lock"), 1);

    *server.refuse.lock().expect("lock") = (10, 0);
    let err = source()
        .calendars(&mailbox)
        .await
        .expect_err("refused twice");
    assert_eq!(err.diagnostic.code(), "ews.Unauthorized", "{err}");
    assert_eq!(
        server.refuse.lock().expect("lock").1,
        2,
        "one repetition, not more"
    );
    let errors = server.errors.lock().expect("lock").clone();
    assert!(errors.is_empty(), "{errors:?}");
}
