//! The control plane: fault injection, request statistics, concurrency limits, permission
//! switches and event changes. [`Control`] is the Rust API; `http/control.rs` serves the same
//! under `/_sim/`. Protocol modules call [`Control::admit`] once per request.

use crate::catalogue::{self, AccountState, AppState};
use crate::tenant::{EventChange, EventRef, MutationError, NewEvent, Tenant, TruthInstance};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

/// What a request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Graph,
    Ews,
    Autodiscover,
    Token,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Graph => "graph",
            Protocol::Ews => "ews",
            Protocol::Autodiscover => "autodiscover",
            Protocol::Token => "token",
        }
    }
}

/// A fault to inject. Which protocol renders which kind: see `simulator/README.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Graph: `status` (429 or 503) with the real throttling body, `Retry-After` if set. Inside a
    /// `$batch` it is the sub-response's status (the batch itself answers 200).
    Throttle {
        #[serde(default = "default_429")]
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// A 5xx with the protocol's error body.
    ServerError {
        #[serde(default = "default_500")]
        status: u16,
    },
    /// Delay the answer.
    Latency { ms: u64 },
    /// Cut the body in half (the `Content-Length` matches the cut body).
    TruncatedBody,
    /// Replace the body with bytes that do not parse.
    MalformedBody,
    /// Answer 200 with an HTML sign-in page, as a misrouted proxy or expired SSO session does.
    HtmlLoginPage,
    /// Graph delta: 410 `syncStateNotFound`. (EWS: see `EwsInvalidSyncState`.)
    SyncStateNotFound,
    /// EWS `ErrorServerBusy` with `BackOffMilliseconds`; `in_body`: inside a 200 response
    /// (`ResponseClass="Error"`) instead of a SOAP fault with status 500.
    EwsServerBusy {
        #[serde(default = "default_backoff")]
        back_off_ms: u64,
        #[serde(default)]
        in_body: bool,
    },
    /// EWS `ErrorExceededConnectionCount`.
    EwsExceededConnectionCount,
    /// EWS `ErrorInvalidSyncStateData` for SyncFolderItems.
    EwsInvalidSyncState,
    /// EWS (and Autodiscover) switched off for the tenant, the app or the mailbox, as Exchange
    /// Online answers it during the EWS retirement — `EWSEnabled = False` on the organisation
    /// or the mailbox, an app missing from `EWSAllowedAppIDs` (from 1 October 2026), Microsoft's
    /// temporary shut-offs before that — and as `EwsApplicationAccessPolicy` blocks do: an
    /// authenticated request gets `403 Forbidden` with an empty body (no SOAP fault, no
    /// `x-ms-diagnostics`) and a `request-id`. Credentials are still checked first (a wrong
    /// password stays 401). Graph and the token endpoint ignore it.
    EwsDisabled,
}

fn default_429() -> u16 {
    429
}
fn default_500() -> u16 {
    500
}
fn default_backoff() -> u64 {
    30_000
}

/// When a fault applies. Absent filters match everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// SMTP address (case-insensitive).
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Operation name as `/_sim/stats` reports it (case-insensitive), e.g. `calendarView`,
    /// `calendarView.delta`, `batch`, `token`, `FindItem`.
    #[serde(default)]
    pub operation: Option<String>,
    /// How many matching requests it hits; `None` = until removed.
    #[serde(default)]
    pub count: Option<u32>,
    /// `Some(true)`: only sub-requests of a Graph `$batch`; `Some(false)`: only direct requests.
    #[serde(default)]
    pub in_batch: Option<bool>,
    pub fault: Fault,
}

impl FaultRule {
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            protocol: None,
            mailbox: None,
            operation: None,
            count: None,
            in_batch: None,
            fault,
        }
    }
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = Some(p);
        self
    }
    pub fn mailbox(mut self, m: &str) -> Self {
        self.mailbox = Some(m.to_string());
        self
    }
    pub fn operation(mut self, o: &str) -> Self {
        self.operation = Some(o.to_string());
        self
    }
    pub fn count(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }
    pub fn in_batch(mut self, b: bool) -> Self {
        self.in_batch = Some(b);
        self
    }
    fn matches(&self, r: &RequestInfo<'_>) -> bool {
        self.protocol.is_none_or(|p| p == r.protocol)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| o.eq_ignore_ascii_case(r.operation))
            && self
                .mailbox
                .as_deref()
                .is_none_or(|m| r.mailbox.is_some_and(|x| x.eq_ignore_ascii_case(m)))
            && self.in_batch.is_none_or(|b| b == r.in_batch)
    }
}

/// One request as the protocol module describes it to [`Control::admit`].
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub protocol: Protocol,
    pub operation: &'a str,
    /// The mailbox the request reads (lower-case SMTP), when there is one.
    pub mailbox: Option<&'a str>,
    pub in_batch: bool,
}

/// Request counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub total: u64,
    pub by_protocol: BTreeMap<String, u64>,
    /// `"protocol operation"` → count.
    pub by_operation: BTreeMap<String, u64>,
    /// mailbox → count.
    pub by_mailbox: BTreeMap<String, u64>,
    /// Every (protocol, operation, mailbox) triple.
    pub entries: Vec<StatEntry>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatEntry {
    pub protocol: Protocol,
    pub operation: String,
    pub mailbox: Option<String>,
    pub count: u64,
}

impl Stats {
    /// Count for a protocol and operation (any mailbox).
    pub fn operation(&self, protocol: Protocol, operation: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.protocol == protocol && e.operation.eq_ignore_ascii_case(operation))
            .map(|e| e.count)
            .sum()
    }
}

/// Why a request was refused before reaching its handler.
#[derive(Debug)]
pub enum Refusal {
    /// More requests in flight for the key than the protocol's limit allows.
    ConcurrencyLimit,
}

/// Held while a request runs; releases its concurrency slot on drop.
pub struct Admission {
    inner: Option<(Arc<Shared>, Protocol, String)>,
    /// Faults that matched (already counted down), in rule order.
    pub faults: Vec<Fault>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The first fault that replaces the answer (anything but latency).
    pub fn answer_fault(&self) -> Option<&Fault> {
        self.faults
            .iter()
            .find(|f| !matches!(f, Fault::Latency { .. }))
    }
    /// Total injected latency.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(
            self.faults
                .iter()
                .map(|f| {
                    if let Fault::Latency { ms } = f {
                        *ms
                    } else {
                        0
                    }
                })
                .sum(),
        )
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some((shared, p, key)) = self.inner.take() {
            let mut inflight = lock(&shared.inflight);
            if let Some(n) = inflight.get_mut(&(p, key.clone())) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    inflight.remove(&(p, key));
                }
            }
        }
    }
}

/// (protocol, operation, mailbox).
type StatKey = (Protocol, String, Option<String>);

pub(crate) struct Shared {
    pub tenant: Arc<Tenant>,
    faults: Mutex<Vec<(u64, FaultRule)>>,
    next_fault: AtomicU64,
    stats: Mutex<HashMap<StatKey, u64>>,
    inflight: Mutex<HashMap<(Protocol, String), usize>>,
    limits: Mutex<HashMap<Protocol, usize>>,
    apps: RwLock<Vec<AppState>>,
    accounts: RwLock<Vec<AccountState>>,
    on_prem: RwLock<HashSet<u32>>,
    /// Events hidden from one protocol: (protocol, mailbox index, item number) → as requested.
    hidden: RwLock<BTreeMap<(Protocol, u32, u64), HiddenEvent>>,
    token_lifetime: AtomicI64,
    /// Key for the simulator's own token signatures (derived from the seed, so tokens survive a
    /// restart with the same seed).
    pub token_key: [u8; 32],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The control API. Cloning is cheap; all clones act on the same simulator.
#[derive(Clone)]
pub struct Control {
    pub(crate) shared: Arc<Shared>,
}

/// An event one protocol does not show ([`Control::hide_event`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenEvent {
    /// The mailbox's SMTP address.
    pub mailbox: String,
    /// The meeting's clean global object id (hex, as `truth` prints it).
    pub goid: String,
    /// `graph` or `ews`.
    pub protocol: Protocol,
}

/// Everything `/_sim/catalogue` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Catalogue {
    pub tenant_id: &'static str,
    pub tenant_domain: &'static str,
    pub mail_domain: &'static str,
    pub apps: Vec<AppState>,
    pub accounts: Vec<AccountState>,
    pub on_prem_mailboxes: Vec<String>,
    pub token_lifetime_secs: i64,
}

impl Control {
    pub(crate) fn new(
        tenant: Arc<Tenant>,
        token_lifetime_secs: i64,
        graph_limit: usize,
        ews_limit: Option<usize>,
    ) -> Control {
        let anchor = tenant.anchor().timestamp();
        let building1 = tenant
            .directory
            .room_lists
            .first()
            .map(|l| {
                l.rooms
                    .iter()
                    .filter_map(|i| tenant.directory.get(*i))
                    .map(|m| m.smtp.clone())
                    .collect()
            })
            .unwrap_or_default();
        let on_prem = tenant
            .directory
            .mailboxes
            .iter()
            .filter(|m| m.on_prem)
            .map(|m| m.index)
            .collect();
        let mut limits = HashMap::new();
        limits.insert(Protocol::Graph, graph_limit);
        if let Some(l) = ews_limit {
            limits.insert(Protocol::Ews, l);
        }
        let mut key = [0u8; 32];
        let mut rng = crate::tenant::rng::Rng::derive(tenant.config.seed, &[0x70CE]);
        key.copy_from_slice(&[rng.bytes::<16>(), rng.bytes::<16>()].concat());
        Control {
            shared: Arc::new(Shared {
                tenant,
                faults: Mutex::new(Vec::new()),
                next_fault: AtomicU64::new(1),
                stats: Mutex::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
                limits: Mutex::new(limits),
                apps: RwLock::new(catalogue::initial_apps(anchor, building1)),
                accounts: RwLock::new(catalogue::initial_accounts()),
                on_prem: RwLock::new(on_prem),
                hidden: RwLock::new(BTreeMap::new()),
                token_lifetime: AtomicI64::new(token_lifetime_secs),
                token_key: key,
            }),
        }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.shared.tenant
    }

    // ---- requests: statistics, faults, limits ----

    /// Counts the request, consumes matching fault rules and takes a concurrency slot for
    /// (`protocol`, `concurrency_key`) if given. Protocol modules call this once per request
    /// (and once per `$batch` sub-request).
    pub fn admit(
        &self,
        req: RequestInfo<'_>,
        concurrency_key: Option<&str>,
    ) -> Result<Admission, Refusal> {
        {
            let mut st = lock(&self.shared.stats);
            *st.entry((
                req.protocol,
                req.operation.to_string(),
                req.mailbox.map(str::to_lowercase),
            ))
            .or_insert(0) += 1;
        }
        let mut inner = None;
        if let Some(key) = concurrency_key {
            let limit = lock(&self.shared.limits).get(&req.protocol).copied();
            let mut inflight = lock(&self.shared.inflight);
            let n = inflight
                .entry((req.protocol, key.to_lowercase()))
                .or_insert(0);
            if limit.is_some_and(|l| *n >= l) {
                return Err(Refusal::ConcurrencyLimit);
            }
            *n += 1;
            inner = Some((self.shared.clone(), req.protocol, key.to_lowercase()));
        }
        let mut faults = Vec::new();
        {
            let mut rules = lock(&self.shared.faults);
            rules.retain_mut(|(_, r)| {
                if !r.matches(&req) {
                    return true;
                }
                faults.push(r.fault.clone());
                match r.count.as_mut() {
                    Some(c) => {
                        *c = c.saturating_sub(1);
                        *c > 0
                    }
                    None => true,
                }
            });
        }
        Ok(Admission { inner, faults })
    }

    pub fn stats(&self) -> Stats {
        let st = lock(&self.shared.stats);
        let mut s = Stats::default();
        let mut entries: Vec<StatEntry> = st
            .iter()
            .map(|((p, o, m), c)| StatEntry {
                protocol: *p,
                operation: o.clone(),
                mailbox: m.clone(),
                count: *c,
            })
            .collect();
        entries.sort_by(|a, b| {
            (a.protocol, &a.operation, &a.mailbox).cmp(&(b.protocol, &b.operation, &b.mailbox))
        });
        for e in &entries {
            s.total += e.count;
            *s.by_protocol
                .entry(e.protocol.as_str().to_string())
                .or_insert(0) += e.count;
            *s.by_operation
                .entry(format!("{} {}", e.protocol.as_str(), e.operation))
                .or_insert(0) += e.count;
            if let Some(m) = &e.mailbox {
                *s.by_mailbox.entry(m.clone()).or_insert(0) += e.count;
            }
        }
        s.entries = entries;
        s
    }

    pub fn reset_stats(&self) {
        lock(&self.shared.stats).clear();
    }

    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        let id = self.shared.next_fault.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.faults).push((id, rule));
        id
    }

    pub fn remove_fault(&self, id: u64) -> bool {
        let mut f = lock(&self.shared.faults);
        let n = f.len();
        f.retain(|(i, _)| *i != id);
        f.len() != n
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// The active rules with their ids (and remaining counts).
    pub fn faults(&self) -> Vec<(u64, FaultRule)> {
        lock(&self.shared.faults).clone()
    }

    /// Sets a protocol's concurrency limit per key (`None` = unlimited). Graph's key is the
    /// mailbox (default 4, as Exchange Online's MailboxConcurrency).
    pub fn set_concurrency_limit(&self, protocol: Protocol, limit: Option<usize>) {
        let mut l = lock(&self.shared.limits);
        match limit {
            Some(n) => l.insert(protocol, n),
            None => l.remove(&protocol),
        };
    }

    pub fn concurrency_limit(&self, protocol: Protocol) -> Option<usize> {
        lock(&self.shared.limits).get(&protocol).copied()
    }

    // ---- permissions ----

    pub fn catalogue(&self) -> Catalogue {
        Catalogue {
            tenant_id: catalogue::TENANT_ID,
            tenant_domain: catalogue::TENANT_DOMAIN,
            mail_domain: catalogue::MAIL_DOMAIN,
            apps: self
                .shared
                .apps
                .read()
                .map(|a| a.clone())
                .unwrap_or_default(),
            accounts: self
                .shared
                .accounts
                .read()
                .map(|a| a.clone())
                .unwrap_or_default(),
            on_prem_mailboxes: self.on_prem_mailboxes(),
            token_lifetime_secs: self.token_lifetime_secs(),
        }
    }

    pub fn app(&self, client_id: &str) -> Option<AppState> {
        let apps = self.shared.apps.read().ok()?;
        apps.iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id.trim()))
            .cloned()
    }

    /// Changes an app's state (e.g. revoke consent, expire its secret, drop a role).
    pub fn update_app(&self, client_id: &str, f: impl FnOnce(&mut AppState)) -> bool {
        let Ok(mut apps) = self.shared.apps.write() else {
            return false;
        };
        match apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
        {
            Some(a) => {
                f(a);
                true
            }
            None => false,
        }
    }

    pub fn account(&self, upn: &str) -> Option<AccountState> {
        let acc = self.shared.accounts.read().ok()?;
        acc.iter()
            .find(|a| a.upn.eq_ignore_ascii_case(upn.trim()))
            .cloned()
    }

    /// Changes an account's state (password, impersonation right, MFA, assignment, CA block).
    pub fn update_account(&self, upn: &str, f: impl FnOnce(&mut AccountState)) -> bool {
        let Ok(mut acc) = self.shared.accounts.write() else {
            return false;
        };
        match acc.iter_mut().find(|a| a.upn.eq_ignore_ascii_case(upn)) {
            Some(a) => {
                f(a);
                true
            }
            None => false,
        }
    }

    /// Whether a mailbox is hosted on-premises (Graph answers `MailboxNotEnabledForRESTAPI`).
    pub fn is_on_prem(&self, mailbox: u32) -> bool {
        self.shared
            .on_prem
            .read()
            .map(|s| s.contains(&mailbox))
            .unwrap_or(false)
    }

    pub fn set_on_prem(&self, mailbox: &str, on_prem: bool) -> bool {
        let Some(m) = self.tenant().mailbox(mailbox) else {
            return false;
        };
        let idx = m.index;
        if let Ok(mut s) = self.shared.on_prem.write() {
            if on_prem {
                s.insert(idx);
            } else {
                s.remove(&idx);
            }
        }
        true
    }

    fn on_prem_mailboxes(&self) -> Vec<String> {
        let set = self
            .shared
            .on_prem
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let mut v: Vec<String> = set
            .iter()
            .filter_map(|i| self.tenant().directory.get(*i))
            .map(|m| m.smtp.clone())
            .collect();
        v.sort();
        v
    }

    /// Lifetime of newly issued access tokens (seconds). Tokens already issued keep theirs.
    pub fn set_token_lifetime(&self, secs: i64) {
        self.shared.token_lifetime.store(secs, Ordering::Relaxed);
    }

    pub fn token_lifetime_secs(&self) -> i64 {
        self.shared.token_lifetime.load(Ordering::Relaxed)
    }

    // ---- events ----

    /// Hides an event (a whole series, for a series) from one protocol, `Graph` or `Ews`, as
    /// if only the other could see it: Graph leaves it out of calendarView, delta, events and
    /// answers `GET …/events/{id}` with 404; EWS leaves it out of FindItem, `TotalCount` and
    /// SyncFolderItems and answers GetItem with `ErrorItemNotFound`. The other protocol and
    /// [`Control::truth`] are unchanged. Hiding and [unhiding](Self::unhide_event) count as a
    /// change of the event, so a client syncing by changes is told: the hidden protocol reports
    /// it removed (delta `@removed`, SyncFolderItems `Delete`), then created again.
    pub fn hide_event(
        &self,
        mailbox: &str,
        goid: &str,
        protocol: Protocol,
    ) -> Result<(), MutationError> {
        self.set_hidden(mailbox, goid, protocol, true)
    }

    /// Shows an event hidden by [`Control::hide_event`] again.
    pub fn unhide_event(
        &self,
        mailbox: &str,
        goid: &str,
        protocol: Protocol,
    ) -> Result<(), MutationError> {
        self.set_hidden(mailbox, goid, protocol, false)
    }

    fn set_hidden(
        &self,
        mailbox: &str,
        goid: &str,
        protocol: Protocol,
        hidden: bool,
    ) -> Result<(), MutationError> {
        if !matches!(protocol, Protocol::Graph | Protocol::Ews) {
            return Err(MutationError::Invalid(format!(
                "events can be hidden from `graph` or `ews`, not `{}`",
                protocol.as_str()
            )));
        }
        let tenant = self.tenant();
        let m = tenant
            .mailbox(mailbox)
            .ok_or(MutationError::NoSuchMailbox)?;
        let id = crate::tenant::goid::GlobalObjectId::from_hex(goid.trim())
            .ok_or_else(|| MutationError::Invalid(format!("not a global object id: {goid}")))?;
        let item = tenant
            .read(m.index, |s| s.find_by_goid(&id).map(|i| i.num))
            .ok_or(MutationError::NoSuchMailbox)?
            .ok_or(MutationError::NoSuchEvent)?;
        let key = (protocol, m.index, item);
        // The set first, then the change: a change-based read that sees the change sees the
        // event hidden (or shown) too.
        if let Ok(mut set) = self.shared.hidden.write() {
            if hidden {
                set.insert(
                    key,
                    HiddenEvent {
                        mailbox: m.smtp.clone(),
                        goid: id.hex(),
                        protocol,
                    },
                );
            } else {
                set.remove(&key);
            }
        }
        tenant.touch_event(&m.smtp, goid)?;
        Ok(())
    }

    /// The events hidden from a protocol.
    pub fn hidden_events(&self) -> Vec<HiddenEvent> {
        self.shared
            .hidden
            .read()
            .map(|set| set.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The item numbers of mailbox `mailbox` (its index) that `protocol` does not show.
    pub fn hidden_items(&self, protocol: Protocol, mailbox: u32) -> HashSet<u64> {
        self.shared
            .hidden
            .read()
            .map(|set| {
                set.range((protocol, mailbox, 0)..=(protocol, mailbox, u64::MAX))
                    .map(|(k, _)| k.2)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn create_event(&self, mailbox: &str, ev: &NewEvent) -> Result<EventRef, MutationError> {
        self.tenant().create_event(mailbox, ev)
    }

    pub fn change_event(
        &self,
        mailbox: &str,
        goid: &str,
        occurrence: Option<DateTime<Utc>>,
        change: &EventChange,
    ) -> Result<(), MutationError> {
        self.tenant()
            .change_event(mailbox, goid, occurrence, change)
    }

    pub fn cancel_occurrence(
        &self,
        mailbox: &str,
        goid: &str,
        original_start: DateTime<Utc>,
    ) -> Result<(), MutationError> {
        self.tenant()
            .cancel_occurrence(mailbox, goid, original_start)
    }

    pub fn move_event(
        &self,
        mailbox: &str,
        goid: &str,
        to_calendar: &str,
    ) -> Result<(), MutationError> {
        self.tenant().move_event(mailbox, goid, to_calendar)
    }

    pub fn delete_event(&self, mailbox: &str, goid: &str) -> Result<(), MutationError> {
        self.tenant().delete_event(mailbox, goid)
    }

    pub fn create_calendar(
        &self,
        mailbox: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<u16, MutationError> {
        self.tenant().create_calendar(mailbox, name, parent)
    }

    /// What a mailbox's calendar holds in `[from, to)`: `None` = the default calendar (what
    /// Graph's `/users/{id}/calendarView` and EWS's `calendar` folder show), `Some(name or path)`
    /// that calendar, `Some(ALL_CALENDARS)` all of the mailbox's calendars.
    pub fn truth(
        &self,
        mailbox: &str,
        calendar: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TruthInstance>, MutationError> {
        self.tenant().truth(mailbox, calendar, from, to)
    }

    /// Every calendar of the mailbox (= `truth(mailbox, Some(ALL_CALENDARS), from, to)`).
    pub fn truth_all_calendars(
        &self,
        mailbox: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TruthInstance>, MutationError> {
        self.tenant()
            .truth(mailbox, Some(crate::tenant::ALL_CALENDARS), from, to)
    }
}
