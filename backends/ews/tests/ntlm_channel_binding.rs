//! NTLM channel binding (Extended Protection for Authentication): over TLS the authenticate
//! message carries `MsvAvChannelBindings` (MS-NLMP 2.2.2.1), the MD5 of a
//! `gss_channel_bindings_struct` whose application data is `tls-server-end-point:` and the hash
//! of the server's certificate (RFC 5929 §4.1: the certificate's signature hash, SHA-256 for
//! MD5/SHA-1). A TLS server here (rcgen certificates, SHA-256 and SHA-384 signed) computes the
//! expected value itself from its certificate and, like IIS with Extended Protection
//! "Required", refuses an authenticate message without it or with a wrong one. Over plain HTTP
//! no binding is sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{MailboxInfo, MailboxKind, Source};
use calpump_ews::{EwsSource, config};
use sha2::Digest as _;

const GET_FOLDER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:Folders><t:CalendarFolder><t:FolderId Id="CAL" ChangeKey="1"/><t:DisplayName>Calendar</t:DisplayName><t:TotalCount>7</t:TotalCount><t:ChildFolderCount>0</t:ChildFolderCount></t:CalendarFolder></m:Folders>
</m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#;

/// `MsvAvChannelBindings` (MS-NLMP 2.2.2.1).
const MSV_AV_CHANNEL_BINDINGS: u16 = 0x000A;

struct Server {
    /// The binding a client must send (`None`: plain HTTP, none expected).
    expected: Option<[u8; 16]>,
    /// Authenticated connections.
    authenticated: Mutex<HashMap<SocketAddr, bool>>,
    /// The `MsvAvChannelBindings` value of every authenticate message (None when absent).
    seen: Mutex<Vec<Option<Vec<u8>>>>,
}

/// The peer address of a connection, for any listener here.
#[derive(Clone)]
struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((socket, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(socket).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The challenge (type 2) message, laid out by hand per MS-NLMP 2.2.1.2 (header, then the
/// target name and the target information — `MsvAvNbDomainName`, `MsvAvDnsDomainName`, EOL).
fn challenge() -> String {
    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }
    fn av(id: u16, value: &[u8]) -> Vec<u8> {
        let mut out = id.to_le_bytes().to_vec();
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
        out
    }
    let name = utf16("CONTOSO");
    let mut info = av(2, &utf16("CONTOSO"));
    info.extend(av(4, &utf16("contoso.com")));
    info.extend(av(0, &[]));
    const HEADER: usize = 56;
    // UNICODE | REQUEST_TARGET | NTLM | TARGET_TYPE_DOMAIN | EXTENDED_SESSIONSECURITY | TARGET_INFO
    let flags: u32 = 0x1 | 0x4 | 0x200 | 0x1_0000 | 0x8_0000 | 0x80_0000;
    let mut msg = b"NTLMSSP\0".to_vec();
    msg.extend_from_slice(&2u32.to_le_bytes());
    let secbuf = |len: usize, offset: usize| {
        let mut b = (len as u16).to_le_bytes().to_vec();
        b.extend_from_slice(&(len as u16).to_le_bytes());
        b.extend_from_slice(&(offset as u32).to_le_bytes());
        b
    };
    msg.extend(secbuf(name.len(), HEADER));
    msg.extend_from_slice(&flags.to_le_bytes());
    msg.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]); // server challenge
    msg.extend_from_slice(&[0; 8]); // reserved
    msg.extend(secbuf(info.len(), HEADER + name.len()));
    msg.extend_from_slice(&[0; 8]); // version (not negotiated)
    assert_eq!(msg.len(), HEADER);
    msg.extend(name);
    msg.extend(info);
    BASE64.encode(msg)
}

/// The AV pairs of an NTLMv2 response: after the 16-byte NTProofStr, the blob's fixed part
/// (RespType, HiRespType, reserved, timestamp, client challenge, reserved: 28 bytes).
fn av_pairs(ntlm_response: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 16 + 28;
    while at + 4 <= ntlm_response.len() {
        let id = u16::from_le_bytes([ntlm_response[at], ntlm_response[at + 1]]);
        let len = usize::from(u16::from_le_bytes([
            ntlm_response[at + 2],
            ntlm_response[at + 3],
        ]));
        if id == 0 || at + 4 + len > ntlm_response.len() {
            break;
        }
        out.push((id, ntlm_response[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    out
}

/// What the server expects, computed here from RFC 5929 and MS-NLMP independently of calpump.
fn expected_binding(cert_der: &[u8], sha384: bool) -> [u8; 16] {
    let hash = if sha384 {
        sha2::Sha384::digest(cert_der).to_vec()
    } else {
        sha2::Sha256::digest(cert_der).to_vec()
    };
    let mut application_data = b"tls-server-end-point:".to_vec();
    application_data.extend_from_slice(&hash);
    let mut gss = vec![0u8; 16]; // initiator/acceptor address types and (empty) addresses
    gss.extend_from_slice(&(application_data.len() as u32).to_le_bytes());
    gss.extend_from_slice(&application_data);
    md5::Md5::digest(&gss).into()
}

async fn ews(
    State(server): State<Arc<Server>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let refuse = || (StatusCode::UNAUTHORIZED, [("www-authenticate", "NTLM")], "").into_response();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authenticated = server
        .authenticated
        .lock()
        .expect("lock")
        .get(&peer)
        .copied()
        .unwrap_or(false);
    let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("NTLM ")) else {
        return if authenticated {
            (StatusCode::OK, [("content-type", "text/xml")], GET_FOLDER).into_response()
        } else {
            refuse()
        };
    };
    let bytes = BASE64.decode(token).unwrap_or_default();
    match ntlmclient::Message::try_from(bytes.as_slice()) {
        Ok(ntlmclient::Message::Negotiate(_)) => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", format!("NTLM {}", challenge()))],
            "",
        )
            .into_response(),
        Ok(ntlmclient::Message::Authenticate(a)) => {
            let pairs = av_pairs(&a.ntlm_response);
            let binding = pairs
                .iter()
                .find(|(id, _)| *id == MSV_AV_CHANNEL_BINDINGS)
                .map(|(_, v)| v.clone());
            server.seen.lock().expect("lock").push(binding.clone());
            // The server's own pairs come back too (the proof covers them).
            let domain_kept =
                pairs.iter().any(|(id, _)| *id == 2) && pairs.iter().any(|(id, _)| *id == 4);
            let ok = domain_kept
                && match server.expected {
                    Some(want) => binding.as_deref() == Some(&want[..]),
                    None => binding.is_none(),
                };
            if !ok {
                return refuse();
            }
            server
                .authenticated
                .lock()
                .expect("lock")
                .insert(peer, true);
            (StatusCode::OK, [("content-type", "text/xml")], GET_FOLDER).into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

fn source(url: &str, ca_file: Option<&std::path::Path>) -> EwsSource {
    let ca = ca_file
        .map(|p| format!("ca_file = {}", toml::Value::String(p.display().to_string())))
        .unwrap_or_default();
    let table: toml::Table = toml::from_str(&format!(
        r#"url = "{url}"
           auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = "Sim-Passw0rd!" }}
           impersonation = true
           max_concurrency = 2
           {ca}"#
    ))
    .expect("toml");
    let (settings, issues) = config::read("t", &table, None);
    let settings = settings.unwrap_or_else(|| panic!("{issues:?}"));
    EwsSource::build(settings, &SecretResolver::new("/nonexistent")).expect("build")
}

fn mailbox() -> MailboxInfo {
    MailboxInfo {
        address: "room-1.01@contoso.com".into(),
        name: None,
        kind: MailboxKind::Room,
        room_list: None,
    }
}

async fn over_tls(sha384: bool) {
    let key = if sha384 {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key")
    } else {
        rcgen::KeyPair::generate().expect("key")
    };
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("tls config");
    let server = Arc::new(Server {
        expected: Some(expected_binding(cert.der(), sha384)),
        authenticated: Mutex::new(HashMap::new()),
        seen: Mutex::new(Vec::new()),
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = tcp.local_addr().expect("addr").port();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
    };
    let app = axum::Router::new()
        .route("/EWS/Exchange.asmx", axum::routing::post(ews))
        .with_state(server.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).await;
    });
    let dir = tempfile_dir();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.pem()).expect("ca");
    let source = source(
        &format!("https://localhost:{port}/EWS/Exchange.asmx"),
        Some(&ca),
    );
    for _ in 0..3 {
        let cals = source
            .calendars(&mailbox())
            .await
            .expect("calendars over TLS");
        assert_eq!(cals[0].item_count, Some(7));
    }
    let seen = server.seen.lock().expect("lock").clone();
    assert_eq!(
        seen.len(),
        1,
        "one handshake, then the authenticated connection"
    );
    assert_eq!(
        seen[0].as_deref(),
        server.expected.as_ref().map(|b| &b[..]),
        "MsvAvChannelBindings = MD5(gss_channel_bindings_struct(tls-server-end-point))"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "calpump-ews-cbt-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[tokio::test]
async fn tls_with_a_sha256_certificate_sends_its_channel_binding() {
    over_tls(false).await;
}

#[tokio::test]
async fn tls_with_a_sha384_certificate_hashes_it_with_sha384() {
    over_tls(true).await;
}

#[tokio::test]
async fn plain_http_sends_no_channel_binding() {
    let server = Arc::new(Server {
        expected: None,
        authenticated: Mutex::new(HashMap::new()),
        seen: Mutex::new(Vec::new()),
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/EWS/Exchange.asmx", axum::routing::post(ews))
        .with_state(server.clone());
    tokio::spawn(async move {
        let _ = axum::serve(tcp, app.into_make_service_with_connect_info::<Peer>()).await;
    });
    let source = source(&format!("http://{addr}/EWS/Exchange.asmx"), None);
    source.calendars(&mailbox()).await.expect("calendars");
    assert_eq!(server.seen.lock().expect("lock").clone(), vec![None]);
}
