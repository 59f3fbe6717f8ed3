//! The EWS module's own state per simulator: settings switchable through the control API (the
//! auth schemes offered, an Autodiscover redirect), NTLM state per TCP connection, and a log of
//! EWS requests (who called, which mailbox, impersonation, `X-AnchorMailbox`).

use super::ntlm;
use crate::control::Control;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};

/// What the EWS endpoints are set up to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EwsSettings {
    /// Auth schemes accepted and offered in `WWW-Authenticate`, in order: any of `negotiate`,
    /// `ntlm`, `basic`, `bearer` (IIS in front of Exchange 2019 offers the first three).
    pub auth: Vec<String>,
    /// Autodiscover answers with a redirect instead of settings.
    pub autodiscover_redirect: Option<AutodiscoverRedirect>,
}

impl Default for EwsSettings {
    fn default() -> Self {
        EwsSettings {
            auth: vec![
                "negotiate".into(),
                "ntlm".into(),
                "basic".into(),
                "bearer".into(),
            ],
            autodiscover_redirect: None,
        }
    }
}

impl EwsSettings {
    /// The `WWW-Authenticate` values of a 401.
    pub fn www_authenticate(&self, base_url: &str) -> Vec<String> {
        let host = base_url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .split(':')
            .next()
            .unwrap_or("127.0.0.1")
            .to_string();
        self.auth
            .iter()
            .filter_map(|s| match s.to_ascii_lowercase().as_str() {
                "negotiate" => Some("Negotiate".to_string()),
                "ntlm" => Some("NTLM".to_string()),
                "basic" => Some(format!("Basic realm=\"{host}\"")),
                "bearer" => Some(format!(
                    "Bearer client_id=\"{}\", trusted_issuers=\"00000001-0000-0000-c000-000000000000@*\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", authorization_uri=\"{base_url}/common/oauth2/authorize\"",
                    crate::catalogue::EXCHANGE_RESOURCE_ID
                )),
                _ => None,
            })
            .collect()
    }
}

/// `redirectAddr` (another address to run Autodiscover for) or `redirectUrl` (another endpoint).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutodiscoverRedirect {
    /// Only for this address (case-insensitive); `None` = every address.
    #[serde(default)]
    pub mailbox: Option<String>,
    /// `addr` or `url`.
    pub kind: RedirectKind,
    pub target: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedirectKind {
    Addr,
    Url,
}

/// One EWS or Autodiscover request as the EWS module saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestRecord {
    pub operation: String,
    /// `basic`, `ntlm` or `bearer`.
    pub auth: String,
    /// The caller: account UPN or `app:<client id>`.
    pub principal: String,
    /// `ExchangeImpersonation` target, if any.
    pub impersonated: Option<String>,
    /// The `X-AnchorMailbox` header, if sent.
    pub anchor_mailbox: Option<String>,
    /// The mailbox the request read (as counted in `/_sim/stats`).
    pub mailbox: Option<String>,
    /// `RequestServerVersion`.
    pub version: Option<String>,
}

/// NTLM state of one TCP connection.
#[derive(Debug, Clone)]
pub enum ConnAuth {
    Pending(ntlm::Pending),
    Authenticated(String),
}

const MAX_CONNS: usize = 8192;
const MAX_LOG: usize = 20_000;

pub struct EwsState {
    settings: RwLock<EwsSettings>,
    conns: Mutex<BTreeMap<u64, ConnAuth>>,
    log: Mutex<VecDeque<RequestRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EwsState {
    fn new() -> EwsState {
        EwsState {
            settings: RwLock::new(EwsSettings::default()),
            conns: Mutex::new(BTreeMap::new()),
            log: Mutex::new(VecDeque::new()),
        }
    }

    pub fn settings(&self) -> EwsSettings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_settings(&self, s: EwsSettings) {
        if let Ok(mut g) = self.settings.write() {
            *g = s;
        }
    }

    /// Changes the settings in place.
    pub fn update_settings(&self, f: impl FnOnce(&mut EwsSettings)) {
        if let Ok(mut g) = self.settings.write() {
            f(&mut g);
        }
    }

    pub(crate) fn conn(&self, id: u64) -> Option<ConnAuth> {
        lock(&self.conns).get(&id).cloned()
    }

    pub(crate) fn set_conn(&self, id: u64, a: ConnAuth) {
        let mut c = lock(&self.conns);
        c.insert(id, a);
        // Connection ids grow monotonically: the smallest are the oldest connections.
        while c.len() > MAX_CONNS {
            let Some(k) = c.keys().next().copied() else {
                break;
            };
            c.remove(&k);
        }
    }

    pub(crate) fn clear_conn(&self, id: u64) {
        lock(&self.conns).remove(&id);
    }

    pub(crate) fn record(&self, r: RequestRecord) {
        let mut l = lock(&self.log);
        l.push_back(r);
        while l.len() > MAX_LOG {
            l.pop_front();
        }
    }

    /// The recorded requests, oldest first (at most the last 20 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }
}

type Registry = Mutex<HashMap<usize, (Weak<crate::control::Shared>, Arc<EwsState>)>>;

/// The EWS state of a simulator (one per [`Control`], created on first use).
pub fn of(control: &Control) -> Arc<EwsState> {
    static REG: OnceLock<Registry> = OnceLock::new();
    let reg = REG.get_or_init(|| Mutex::new(HashMap::new()));
    let key = Arc::as_ptr(&control.shared) as usize;
    let mut r = lock(reg);
    r.retain(|_, (w, _)| w.strong_count() > 0);
    if let Some((w, st)) = r.get(&key)
        && w.upgrade()
            .is_some_and(|s| Arc::ptr_eq(&s, &control.shared))
    {
        return st.clone();
    }
    let st = Arc::new(EwsState::new());
    r.insert(key, (Arc::downgrade(&control.shared), st.clone()));
    st
}
