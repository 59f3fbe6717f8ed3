//! [`EwsSource`]: the engine's [`Source`] over EWS — discovery (room lists, rooms, names,
//! calendars), reading a window (`FindItem`/`CalendarView` split as needed, then `GetItem` in
//! batches), incremental sync (`SyncFolderItems` as the change detector), and `profile test`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use calpump_backend_common::calendars;
use calpump_backend_common::http::{HttpClient, display_url};
use calpump_backend_common::oauth::scopes;
use calpump_backend_common::retry::RetryPolicy;
use calpump_backend_common::stats::Stats;
use calpump_backend_common::tz;
use calpump_engine::diagnostics::Diagnostic;
use calpump_engine::diagnostics::catalogue::{ews, general};
use calpump_engine::secret::SecretResolver;
use calpump_engine::source::{
    CalendarInfo, Cursor, MailboxInfo, MailboxKind, RoomList, Source, SourceBatch, SourceError,
    SyncEnd, SyncOutput, SyncRequest,
};
use calpump_plugin::{Event, Window};
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::autodiscover::{self, Discovered};
use crate::client::{self, EwsClient};
use crate::config::{AuthSettings, Endpoint, EwsSettings};
use crate::convert::{self, BACKEND, SkipReason, ZoneMapper};
use crate::ops::{self, CalendarItem, FolderRef, GET_ITEM_BATCH, TimeZoneDef, ViewItem};
use crate::soap::{self, Acting};
use crate::transport::{Auth, NtlmPool, Transport, basic_header};
use crate::xml::Node;

/// `CalendarView/@MaxEntriesReturned`: beyond it the window is split.
pub const DEFAULT_VIEW_MAX: u32 = 1000;
/// Longest span one `CalendarView` asks for (Exchange refuses views over two years).
pub const MAX_VIEW_SPAN: chrono::Duration = chrono::Duration::days(700);
/// Windows shorter than this are not split further; the page is read by its last start.
const MIN_SPLIT: chrono::Duration = chrono::Duration::minutes(1);

/// The zone mapping both backends share: the Windows id (or display name) through CLDR, else
/// the standard offset of a custom zone.
pub fn map_zone(def: &TimeZoneDef) -> Option<String> {
    def.id
        .as_deref()
        .and_then(tz::to_iana)
        .or_else(|| def.name.as_deref().and_then(tz::to_iana))
        .or_else(|| {
            def.standard_offset_minutes
                .and_then(tz::from_utc_offset)
                .map(str::to_string)
        })
}

/// What calpump keeps in a calendar's cursor (JSON in [`Cursor::value`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    /// Format version.
    pub v: u32,
    /// The folder the state belongs to (`calendar` or the folder id).
    pub folder: String,
    /// EWS SyncState after the last `SyncFolderItems`.
    pub sync_state: String,
    /// When the window was last read in full.
    pub last_full: DateTime<Utc>,
    /// The EWS URL in use (found by Autodiscover), so a restart needs no Autodiscover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Why a calendar is read in full this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullReason {
    First,
    Changed,
    WindowMoved,
    Periodic,
    InvalidSyncState,
}

/// What one calendar's sync did (for tests and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarOutcome {
    pub full: bool,
    pub events: usize,
    pub skipped: usize,
    pub changes: usize,
}

/// The EWS source of one profile.
pub struct EwsSource {
    settings: EwsSettings,
    client: EwsClient,
    url: OnceCell<(Url, Option<Discovered>)>,
    zones: Arc<ZoneMapper>,
    view_max: u32,
    outcomes: Mutex<Vec<(String, String, CalendarOutcome)>>,
    /// With an app-only token and no `probe_mailbox`: the first mailbox a call of this source
    /// succeeded for, which org-level calls then act as (see [`EwsSource::directory_mailbox`]).
    anchor: Mutex<Option<String>>,
}

impl std::fmt::Debug for EwsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsSource")
            .field("profile", &self.settings.name)
            .field("endpoint", &self.settings.endpoint)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn secret_error(key: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::new(Diagnostic::new(
        &general::SECRET_MISSING,
        format!("`{key}`: {e}"),
    ))
    .retryable(false)
}

impl EwsSource {
    /// Builds the source (resolves secrets; no network).
    pub fn build(settings: EwsSettings, secrets: &SecretResolver) -> Result<Self, SourceError> {
        let stats = Stats::register(&settings.name, BACKEND);
        Self::build_with_stats(settings, secrets, stats)
    }

    /// [`build`](Self::build) with given counters (tests use detached ones).
    pub fn build_with_stats(
        settings: EwsSettings,
        secrets: &SecretResolver,
        stats: Arc<Stats>,
    ) -> Result<Self, SourceError> {
        let http = HttpClient::new(&settings.http)?.with_stats(stats.clone());
        let auth = match &settings.auth {
            AuthSettings::Basic { username, password } => {
                let password = secrets
                    .resolve(password)
                    .map_err(|e| secret_error("auth.password", e))?;
                Auth::Basic {
                    username: username.clone(),
                    header: basic_header(username, &password)?,
                }
            }
            AuthSettings::Ntlm { username, password } => {
                let password = secrets
                    .resolve(password)
                    .map_err(|e| secret_error("auth.password", e))?;
                Auth::Ntlm {
                    username: username.clone(),
                    password,
                    pool: NtlmPool::new(&settings.http, &stats, settings.max_concurrency)?,
                }
            }
            AuthSettings::OAuth(oauth) => Auth::OAuth {
                tokens: Arc::new(oauth.token_source(&http, secrets, scopes::EWS)?),
            },
        };
        if let Some(date) = settings.secret_expires {
            let status =
                calpump_backend_common::expiry::check_date("secret", date, Utc::now().date_naive());
            stats.set_secret_days_left(Some(status.days_left));
        }
        let transport = Arc::new(Transport::new(http, auth));
        let client = EwsClient::new(
            transport,
            settings.server_version.clone(),
            settings.max_concurrency,
            RetryPolicy::default(),
            stats,
        );
        Ok(Self {
            settings,
            client,
            url: OnceCell::new(),
            zones: Arc::new(map_zone),
            view_max: DEFAULT_VIEW_MAX,
            outcomes: Mutex::new(Vec::new()),
            anchor: Mutex::new(None),
        })
    }

    /// Lowers `CalendarView/@MaxEntriesReturned` (tests of the window split).
    pub fn with_view_max(mut self, max: u32) -> Self {
        self.view_max = max.max(1);
        self
    }

    /// Another retry policy (tests: short back-offs).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        let transport = self.client.transport().clone();
        let stats = self.client.stats().clone();
        self.client = EwsClient::new(
            transport,
            self.settings.server_version.clone(),
            self.settings.max_concurrency,
            policy,
            stats,
        );
        self
    }

    pub fn settings(&self) -> &EwsSettings {
        &self.settings
    }

    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    /// The profile's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        self.client.stats()
    }

    /// What each calendar's last sync did: (mailbox, calendar path, outcome), drained.
    pub fn take_outcomes(&self) -> Vec<(String, String, CalendarOutcome)> {
        std::mem::take(&mut *lock(&self.outcomes))
    }

    /// The EWS URL: static, remembered from a cursor, or found by Autodiscover (once).
    pub async fn url(&self) -> Result<Url, SourceError> {
        self.resolve_url(None).await.map(|(u, _)| u)
    }

    /// The URL and, when Autodiscover found it, how.
    pub async fn resolve_url(
        &self,
        hint: Option<&str>,
    ) -> Result<(Url, Option<Discovered>), SourceError> {
        let found = self
            .url
            .get_or_try_init(|| async {
                match &self.settings.endpoint {
                    Endpoint::Static(url) => Url::parse(url).map(|u| (u, None)).map_err(|e| {
                        SourceError::new(Diagnostic::new(
                            &general::INTERNAL,
                            format!("url `{url}`: {e}"),
                        ))
                    }),
                    Endpoint::Autodiscover { address, explicit } => {
                        if let Some(hint) = hint
                            && let Ok(url) = Url::parse(hint)
                            && self.client.transport().http().policy().ensure(&url).is_ok()
                        {
                            tracing::debug!(url = %display_url(&url), "EWS URL from the stored cursor");
                            return Ok((url, None));
                        }
                        let explicit = explicit.as_deref().and_then(|e| Url::parse(e).ok());
                        let found = autodiscover::discover(
                            self.client.transport(),
                            &self.client.transport().http().policy(),
                            address,
                            explicit.as_ref(),
                        )
                        .await?;
                        Ok((found.url.clone(), Some(found)))
                    }
                }
            })
            .await?;
        Ok(found.clone())
    }

    fn acting<'a>(&self, mailbox: &'a str) -> Acting<'a> {
        if self.settings.impersonation {
            Acting::Impersonate(mailbox)
        } else {
            Acting::Self_
        }
    }

    /// The mailbox org-level calls (GetRoomLists, GetRooms, ResolveNames) act as; `None`: as
    /// the caller itself.
    ///
    /// Exchange Online accepts an app-only token only together with an impersonated mailbox,
    /// `ExchangeImpersonation` plus `X-AnchorMailbox` naming it
    /// (`how-to-authenticate-an-ews-application-by-using-oauth.md`: "To use application
    /// permissions, you will also need to explicitly impersonate a mailbox"; "When using
    /// impersonation you must always use the X-AnchorMailbox request header"), also for calls
    /// that concern no mailbox — `getroomlists-operation.md` lists `ExchangeImpersonation`
    /// among GetRoomLists' headers; without it the answer is
    /// `ErrorInvalidExchangeImpersonationHeaderData`. With an app-only token this is the
    /// profile's `probe_mailbox`, else the first mailbox this source read
    /// ([`Self::remember_anchor`]), else `fallback` (ResolveNames: the address looked up), else
    /// the call is refused with `ews.AppOnlyNeedsMailbox`, whose remedy is `probe_mailbox`.
    fn directory_mailbox(
        &self,
        operation: &str,
        fallback: Option<&str>,
    ) -> Result<Option<String>, SourceError> {
        if !self.settings.auth.app_only() {
            return Ok(None);
        }
        if let Some(probe) = &self.settings.probe_mailbox {
            return Ok(Some(probe.clone()));
        }
        if let Some(anchor) = lock(&self.anchor).clone() {
            return Ok(Some(anchor));
        }
        if let Some(address) = fallback {
            return Ok(Some(address.to_string()));
        }
        Err(SourceError::new(Diagnostic::new(
            &ews::APP_ONLY_NEEDS_MAILBOX,
            format!(
                "{operation}: profile `{}` signs in app-only, which Exchange accepts only while impersonating a mailbox; it names no `probe_mailbox` and has read no mailbox yet",
                self.settings.name
            ),
        ))
        .retryable(false))
    }

    /// Remembers `mailbox` (which a call just succeeded for) as the one org-level calls act as,
    /// if none is set yet and the profile names no `probe_mailbox`.
    fn remember_anchor(&self, mailbox: &str) {
        if !self.settings.auth.app_only() || self.settings.probe_mailbox.is_some() {
            return;
        }
        let mut anchor = lock(&self.anchor);
        if anchor.is_none() {
            tracing::debug!(
                profile = %self.settings.name,
                mailbox,
                "room lists and name lookups act as this mailbox (no probe_mailbox)"
            );
            *anchor = Some(mailbox.to_lowercase());
        }
    }

    fn calendar_ref(&self, mailbox: &str, calendar: &CalendarInfo) -> FolderRef {
        if calendar.id.is_empty() {
            FolderRef::calendar((!self.settings.impersonation).then_some(mailbox))
        } else {
            FolderRef::Id {
                id: calendar.id.clone(),
            }
        }
    }

    async fn get_calendar_folder(
        &self,
        url: &Url,
        mailbox: &str,
        policy: Option<&RetryPolicy>,
    ) -> Result<ops::Folder, SourceError> {
        let folder = FolderRef::calendar((!self.settings.impersonation).then_some(mailbox));
        let context = format!("GetFolder calendar of {mailbox}");
        let body_fn = |w: &mut crate::xml::Writer| {
            let f = ops::get_folder(&folder);
            f(w)
        };
        let parse = |node: &Node<'_>| -> Result<ops::Folder, SourceError> {
            let messages = soap::response_messages(node, "GetFolderResponse")
                .map_err(|e| client::malformed("GetFolder", &e))?;
            client::throttled(&messages, &context)?;
            let m = messages.first().ok_or_else(|| {
                client::malformed("GetFolder", &node.invalid("no response message"))
            })?;
            if m.is_error() {
                return Err(client::message_error(m, &context));
            }
            ops::read_get_folder(m)
                .map_err(|e| client::malformed("GetFolder", &e))?
                .into_iter()
                .next()
                .ok_or_else(|| client::malformed("GetFolder", &node.invalid("no folder")))
        };
        let acting = self.acting(mailbox);
        match policy {
            Some(p) => {
                self.client
                    .call_with(p, url, "GetFolder", acting, &body_fn, &parse)
                    .await
            }
            None => {
                self.client
                    .call(url, "GetFolder", acting, &body_fn, &parse)
                    .await
            }
        }
    }

    /// `SyncFolderItems` until `IncludesLastItemInRange`: the final state and the number of
    /// changes seen.
    async fn sync_changes(
        &self,
        url: &Url,
        mailbox: &str,
        folder: &FolderRef,
        state: Option<&str>,
    ) -> Result<(String, usize), SourceError> {
        let mut state = state.map(str::to_string);
        let mut changes = 0usize;
        let context = format!("SyncFolderItems for {mailbox}");
        for _ in 0..10_000 {
            let current = state.clone();
            let body = |w: &mut crate::xml::Writer| {
                let f = ops::sync_folder_items(folder, current.as_deref());
                f(w)
            };
            let parse = |node: &Node<'_>| -> Result<ops::SyncPage, SourceError> {
                let messages = soap::response_messages(node, "SyncFolderItemsResponse")
                    .map_err(|e| client::malformed("SyncFolderItems", &e))?;
                client::throttled(&messages, &context)?;
                let m = messages.first().ok_or_else(|| {
                    client::malformed("SyncFolderItems", &node.invalid("no response message"))
                })?;
                if m.is_error() {
                    return Err(client::message_error(m, &context));
                }
                ops::read_sync_folder_items(m).map_err(|e| client::malformed("SyncFolderItems", &e))
            };
            let page = self
                .client
                .call(url, "SyncFolderItems", self.acting(mailbox), &body, &parse)
                .await?;
            changes += page.changes();
            let done = page.includes_last;
            state = Some(page.sync_state);
            if done {
                break;
            }
        }
        Ok((state.unwrap_or_default(), changes))
    }

    /// The item ids of a window: `CalendarView`s no longer than [`MAX_VIEW_SPAN`], each split
    /// in halves while the server says the view was cut (`IncludesLastItemInRange=false`).
    async fn view_ids(
        &self,
        url: &Url,
        mailbox: &str,
        folder: &FolderRef,
        window: &Window,
    ) -> Result<Vec<ViewItem>, SourceError> {
        let mut ranges = Vec::new();
        let mut start = window.start;
        while start < window.end {
            let end = (start + MAX_VIEW_SPAN).min(window.end);
            ranges.push((start, end));
            start = end;
        }
        let mut out: Vec<ViewItem> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some((a, b)) = ranges.pop() {
            let page = self.find_view(url, mailbox, folder, a, b).await?;
            if page.includes_last || b - a <= MIN_SPLIT {
                if !page.includes_last {
                    tracing::warn!(mailbox, start = %a, end = %b, "more items start in one minute than a CalendarView returns; reading by pages");
                    let rest = self
                        .view_by_pages(url, mailbox, folder, a, b, &page.items)
                        .await?;
                    for item in rest {
                        if seen.insert(item.id.clone()) {
                            out.push(item);
                        }
                    }
                }
                for item in page.items {
                    if seen.insert(item.id.clone()) {
                        out.push(item);
                    }
                }
            } else {
                let mid = a + (b - a) / 2;
                tracing::debug!(mailbox, start = %a, end = %b, "CalendarView cut; splitting the window");
                ranges.push((a, mid));
                ranges.push((mid, b));
            }
        }
        Ok(out)
    }

    /// The last resort for a minute holding more items than a view returns: advance the view's
    /// start to the last item's start until nothing new comes.
    async fn view_by_pages(
        &self,
        url: &Url,
        mailbox: &str,
        folder: &FolderRef,
        a: DateTime<Utc>,
        b: DateTime<Utc>,
        first: &[ViewItem],
    ) -> Result<Vec<ViewItem>, SourceError> {
        let mut out = Vec::new();
        let mut seen: HashSet<String> = first.iter().map(|i| i.id.clone()).collect();
        let mut start = first.iter().filter_map(|i| i.start).max().unwrap_or(a);
        for _ in 0..100 {
            let page = self.find_view(url, mailbox, folder, start, b).await?;
            let mut new = 0;
            for item in page.items {
                if seen.insert(item.id.clone()) {
                    new += 1;
                    out.push(item);
                }
            }
            let next = out.iter().filter_map(|i| i.start).max().unwrap_or(start);
            if page.includes_last || new == 0 || next <= start {
                break;
            }
            start = next;
        }
        Ok(out)
    }

    async fn find_view(
        &self,
        url: &Url,
        mailbox: &str,
        folder: &FolderRef,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<ops::ViewPage, SourceError> {
        let context = format!("FindItem for {mailbox}");
        let max = self.view_max;
        let body = |w: &mut crate::xml::Writer| {
            let f = ops::find_item_calendar_view(folder, start, end, max);
            f(w)
        };
        let parse = |node: &Node<'_>| -> Result<ops::ViewPage, SourceError> {
            let messages = soap::response_messages(node, "FindItemResponse")
                .map_err(|e| client::malformed("FindItem", &e))?;
            client::throttled(&messages, &context)?;
            let m = messages.first().ok_or_else(|| {
                client::malformed("FindItem", &node.invalid("no response message"))
            })?;
            if m.is_error() {
                return Err(client::message_error(m, &context));
            }
            ops::read_find_item(m).map_err(|e| client::malformed("FindItem", &e))
        };
        self.client
            .call(url, "FindItem", self.acting(mailbox), &body, &parse)
            .await
    }

    /// `GetItem` in batches; items deleted since the view (`ErrorItemNotFound`) are left out.
    async fn get_items(
        &self,
        url: &Url,
        mailbox: &str,
        ids: &[String],
    ) -> Result<Vec<CalendarItem>, SourceError> {
        let mut out = Vec::with_capacity(ids.len());
        let context = format!("GetItem for {mailbox}");
        for chunk in ids.chunks(GET_ITEM_BATCH) {
            let body = |w: &mut crate::xml::Writer| {
                let f = ops::get_items(chunk);
                f(w)
            };
            let parse = |node: &Node<'_>| -> Result<Vec<CalendarItem>, SourceError> {
                let messages = soap::response_messages(node, "GetItemResponse")
                    .map_err(|e| client::malformed("GetItem", &e))?;
                client::throttled(&messages, &context)?;
                let mut items = Vec::new();
                for m in &messages {
                    if m.is_error() {
                        if m.code == "ErrorItemNotFound" {
                            continue;
                        }
                        return Err(client::message_error(m, &context));
                    }
                    items.extend(
                        ops::read_get_item(m).map_err(|e| client::malformed("GetItem", &e))?,
                    );
                }
                Ok(items)
            };
            let items = self
                .client
                .call(url, "GetItem", self.acting(mailbox), &body, &parse)
                .await?;
            out.extend(items);
        }
        Ok(out)
    }

    /// Reads a calendar's window into events.
    pub async fn read_window(
        &self,
        url: &Url,
        mailbox: &str,
        calendar: &CalendarInfo,
        window: &Window,
    ) -> Result<(Vec<Event>, usize), SourceError> {
        let folder = self.calendar_ref(mailbox, calendar);
        let view = self.view_ids(url, mailbox, &folder, window).await?;
        let ids: Vec<String> = view.into_iter().map(|v| v.id).collect();
        let items = self.get_items(url, mailbox, &ids).await?;
        let mut events: BTreeMap<String, Event> = BTreeMap::new();
        let mut skipped = 0usize;
        for item in &items {
            match convert::to_event(item, mailbox, &calendar.path, self.zones.as_ref()) {
                Ok(event) => {
                    events.insert(event.key().as_str().to_string(), event);
                }
                Err(SkipReason::Master { .. }) => {}
                Err(reason) => {
                    skipped += 1;
                    tracing::debug!(mailbox, reason = %reason, "item skipped");
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(
                mailbox,
                calendar = %calendar.path,
                skipped,
                "items without a global object id or with unreadable times were skipped"
            );
        }
        Ok((events.into_values().collect(), skipped))
    }

    /// One calendar: the batch to deliver (if any) and the cursor to store.
    pub async fn sync_calendar(
        &self,
        req: &SyncRequest,
    ) -> Result<(Option<SourceBatch>, SyncEnd, CalendarOutcome), SourceError> {
        let mailbox = req.mailbox.address.as_str();
        let previous: Option<CursorState> = req
            .cursor
            .as_ref()
            .and_then(|c| serde_json::from_str::<CursorState>(&c.value).ok())
            .filter(|c| c.v == 1);
        let (url, _) = self
            .resolve_url(previous.as_ref().and_then(|p| p.url.as_deref()))
            .await?;
        let folder = self.calendar_ref(mailbox, &req.calendar);
        let folder_key = if req.calendar.id.is_empty() {
            "calendar".to_string()
        } else {
            req.calendar.id.clone()
        };
        let previous = previous.filter(|p| p.folder == folder_key);
        let now = Utc::now();
        let mut outcome = CalendarOutcome::default();
        let (state, reason) = match &previous {
            None => (None, Some(FullReason::First)),
            Some(prev) => match self
                .sync_changes(&url, mailbox, &folder, Some(&prev.sync_state))
                .await
            {
                Ok((state, changes)) => {
                    outcome.changes = changes;
                    let old_window = req.cursor.as_ref().map(|c| c.window);
                    let reason = if changes > 0 {
                        Some(FullReason::Changed)
                    } else if old_window != Some(req.window) {
                        Some(FullReason::WindowMoved)
                    } else if (now - prev.last_full).to_std().unwrap_or(Duration::ZERO)
                        >= self.settings.reread_interval
                    {
                        Some(FullReason::Periodic)
                    } else {
                        None
                    };
                    (Some(state), reason)
                }
                Err(e) if e.code() == ews::INVALID_SYNC_STATE.code => {
                    tracing::warn!(
                        mailbox,
                        calendar = %req.calendar.path,
                        code = general::CURSOR_RESET.code,
                        detail = %e.diagnostic.detail(),
                        "the stored SyncState was refused; reading the window in full"
                    );
                    (None, Some(FullReason::InvalidSyncState))
                }
                Err(e) => return Err(e),
            },
        };
        let url_text = match &self.settings.endpoint {
            Endpoint::Autodiscover { .. } => Some(url.to_string()),
            Endpoint::Static(_) => None,
        };
        let Some(reason) = reason else {
            // Nothing changed: no batch, a new sync state; the window read stays the last one.
            let prev = previous.as_ref().map_or(now, |p| p.last_full);
            let value = CursorState {
                v: 1,
                folder: folder_key,
                sync_state: state.unwrap_or_default(),
                last_full: prev,
                url: url_text,
            };
            let window = req.cursor.as_ref().map_or(req.window, |c| c.window);
            return Ok((
                None,
                SyncEnd {
                    cursor: Some(Cursor {
                        value: serde_json::to_string(&value).unwrap_or_default(),
                        window,
                    }),
                },
                outcome,
            ));
        };
        // Establish the sync point before reading, so changes during the read show next time.
        let state = match state {
            Some(s) => s,
            None => self.sync_changes(&url, mailbox, &folder, None).await?.0,
        };
        tracing::debug!(mailbox, calendar = %req.calendar.path, reason = ?reason, "reading the window");
        let (events, skipped) = self
            .read_window(&url, mailbox, &req.calendar, &req.window)
            .await?;
        outcome.full = true;
        outcome.events = events.len();
        outcome.skipped = skipped;
        let value = CursorState {
            v: 1,
            folder: folder_key,
            sync_state: state,
            last_full: now,
            url: url_text,
        };
        Ok((
            Some(SourceBatch::Snapshot { events }),
            SyncEnd {
                cursor: Some(Cursor {
                    value: serde_json::to_string(&value).unwrap_or_default(),
                    window: req.window,
                }),
            },
            outcome,
        ))
    }

    async fn room_lists_at(&self, url: &Url) -> Result<Vec<ops::Mailbox>, SourceError> {
        let body = |w: &mut crate::xml::Writer| {
            let f = ops::get_room_lists();
            f(w)
        };
        let parse = |node: &Node<'_>| -> Result<Vec<ops::Mailbox>, SourceError> {
            let m = soap::single_message(node, "GetRoomListsResponse")
                .map_err(|e| client::malformed("GetRoomLists", &e))?;
            client::throttled(std::slice::from_ref(&m), "GetRoomLists")?;
            if m.is_error() {
                return Err(client::message_error(&m, "GetRoomLists"));
            }
            ops::read_room_lists(node).map_err(|e| client::malformed("GetRoomLists", &e))
        };
        let acting = self.directory_mailbox("GetRoomLists", None)?;
        self.client
            .call(
                url,
                "GetRoomLists",
                acting_as(acting.as_deref()),
                &body,
                &parse,
            )
            .await
    }

    async fn rooms_of(&self, url: &Url, list: &str) -> Result<Vec<ops::Mailbox>, SourceError> {
        let context = format!("GetRooms of {list}");
        let body = |w: &mut crate::xml::Writer| {
            let f = ops::get_rooms(list);
            f(w)
        };
        let parse = |node: &Node<'_>| -> Result<Vec<ops::Mailbox>, SourceError> {
            let m = soap::single_message(node, "GetRoomsResponse")
                .map_err(|e| client::malformed("GetRooms", &e))?;
            client::throttled(std::slice::from_ref(&m), &context)?;
            if m.is_error() {
                if m.code == "ErrorNameResolutionNoResults" {
                    return Ok(Vec::new());
                }
                return Err(client::message_error(&m, &context));
            }
            ops::read_rooms(node).map_err(|e| client::malformed("GetRooms", &e))
        };
        let acting = self.directory_mailbox(&context, None)?;
        self.client
            .call(url, "GetRooms", acting_as(acting.as_deref()), &body, &parse)
            .await
    }

    async fn resolve_at(
        &self,
        url: &Url,
        address: &str,
        policy: Option<&RetryPolicy>,
    ) -> Result<Vec<ops::Mailbox>, SourceError> {
        let context = format!("ResolveNames of {address}");
        let body = |w: &mut crate::xml::Writer| {
            let f = ops::resolve_names(address);
            f(w)
        };
        let parse = |node: &Node<'_>| -> Result<Vec<ops::Mailbox>, SourceError> {
            let messages = soap::response_messages(node, "ResolveNamesResponse")
                .map_err(|e| client::malformed("ResolveNames", &e))?;
            client::throttled(&messages, &context)?;
            let m = messages.first().ok_or_else(|| {
                client::malformed("ResolveNames", &node.invalid("no response message"))
            })?;
            if m.is_error() {
                if m.code == "ErrorNameResolutionNoResults" {
                    return Ok(Vec::new());
                }
                return Err(client::message_error(m, &context));
            }
            ops::read_resolve_names(m).map_err(|e| client::malformed("ResolveNames", &e))
        };
        let acting = self.directory_mailbox(&context, Some(address))?;
        let acting = acting_as(acting.as_deref());
        match policy {
            Some(p) => {
                self.client
                    .call_with(p, url, "ResolveNames", acting, &body, &parse)
                    .await
            }
            None => {
                self.client
                    .call(url, "ResolveNames", acting, &body, &parse)
                    .await
            }
        }
    }

    async fn find_sub_calendars(
        &self,
        url: &Url,
        mailbox: &str,
    ) -> Result<Vec<ops::Folder>, SourceError> {
        let parent = FolderRef::calendar((!self.settings.impersonation).then_some(mailbox));
        let context = format!("FindFolder under the calendar of {mailbox}");
        let body = |w: &mut crate::xml::Writer| {
            let f = ops::find_folder_deep(&parent);
            f(w)
        };
        let parse = |node: &Node<'_>| -> Result<Vec<ops::Folder>, SourceError> {
            let messages = soap::response_messages(node, "FindFolderResponse")
                .map_err(|e| client::malformed("FindFolder", &e))?;
            client::throttled(&messages, &context)?;
            let m = messages.first().ok_or_else(|| {
                client::malformed("FindFolder", &node.invalid("no response message"))
            })?;
            if m.is_error() {
                return Err(client::message_error(m, &context));
            }
            ops::read_find_folder(m).map_err(|e| client::malformed("FindFolder", &e))
        };
        self.client
            .call(url, "FindFolder", self.acting(mailbox), &body, &parse)
            .await
    }
}

/// Impersonating `mailbox`, or acting as the caller itself.
fn acting_as(mailbox: Option<&str>) -> Acting<'_> {
    match mailbox {
        Some(m) => Acting::Impersonate(m),
        None => Acting::Self_,
    }
}

fn mailbox_info(
    m: &ops::Mailbox,
    kind: MailboxKind,
    room_list: Option<&str>,
) -> Option<MailboxInfo> {
    let address = calpump_plugin::normalize_mailbox(m.email.as_deref()?).ok()?;
    Some(MailboxInfo {
        address,
        name: m.name.clone(),
        kind,
        room_list: room_list.map(str::to_string),
    })
}

#[async_trait]
impl Source for EwsSource {
    fn backend(&self) -> &str {
        BACKEND
    }

    async fn room_lists(&self) -> Result<Vec<RoomList>, SourceError> {
        let url = self.url().await?;
        let lists = self.room_lists_at(&url).await?;
        Ok(lists
            .iter()
            .filter_map(|l| {
                Some(RoomList {
                    address: l.email.as_deref()?.to_lowercase(),
                    name: l.name.clone(),
                })
            })
            .collect())
    }

    async fn rooms(&self, room_list: Option<&str>) -> Result<Vec<MailboxInfo>, SourceError> {
        let url = self.url().await?;
        let lists: Vec<String> = match room_list {
            Some(list) => vec![list.to_string()],
            None => self
                .room_lists_at(&url)
                .await?
                .into_iter()
                .filter_map(|l| l.email)
                .collect(),
        };
        let mut out: Vec<MailboxInfo> = Vec::new();
        let mut seen = HashSet::new();
        for list in &lists {
            for room in self.rooms_of(&url, list).await? {
                if let Some(info) =
                    mailbox_info(&room, MailboxKind::Room, Some(&list.to_lowercase()))
                    && seen.insert(info.address.clone())
                {
                    out.push(info);
                }
            }
        }
        Ok(out)
    }

    async fn resolve_mailbox(&self, address: &str) -> Result<MailboxInfo, SourceError> {
        let url = self.url().await?;
        let wanted = address.trim().to_lowercase();
        let found = self.resolve_at(&url, &wanted, None).await?;
        let hit = found
            .iter()
            .find(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&wanted))
            })
            .or_else(|| (found.len() == 1).then(|| &found[0]));
        match hit.and_then(|m| mailbox_info(m, MailboxKind::Unknown, None)) {
            Some(mut info) => {
                self.remember_anchor(&wanted);
                info.address = wanted;
                Ok(info)
            }
            None => Err(SourceError::new(Diagnostic::new(
                &ews::NON_EXISTENT_MAILBOX,
                format!("ResolveNames found no mailbox {wanted}"),
            ))),
        }
    }

    async fn calendars(&self, mailbox: &MailboxInfo) -> Result<Vec<CalendarInfo>, SourceError> {
        let url = self.url().await?;
        let main = self
            .get_calendar_folder(&url, &mailbox.address, None)
            .await?;
        self.remember_anchor(&mailbox.address);
        let mut out = vec![CalendarInfo {
            item_count: main.total_count,
            ..CalendarInfo::default_calendar()
        }];
        if main.child_folder_count.unwrap_or(1) > 0 {
            let folders: Vec<_> = self
                .find_sub_calendars(&url, &mailbox.address)
                .await?
                .into_iter()
                .filter(|f| f.is_calendar())
                .collect();
            // `FindFolder` `Deep` finds same-named calendars in different parents; the path
            // rule shared with Graph (backend-common `calendars`) keeps them apart by folder id.
            let listed: Vec<calendars::Listed<'_>> = folders
                .iter()
                .map(|f| calendars::Listed {
                    name: f.display_name.as_deref(),
                    id: &f.id,
                })
                .collect();
            let paths = calendars::paths(&listed);
            for (folder, path) in folders.iter().zip(paths) {
                out.push(CalendarInfo {
                    id: folder.id.clone(),
                    path,
                    name: calendars::display_name(folder.display_name.as_deref()).to_string(),
                    is_default: false,
                    item_count: folder.total_count,
                });
            }
        }
        Ok(out)
    }

    async fn sync(&self, work: Vec<SyncRequest>, out: SyncOutput) {
        for (index, req) in work.into_iter().enumerate() {
            let result = self.sync_calendar(&req).await;
            match result {
                Ok((batch, end, outcome)) => {
                    self.remember_anchor(&req.mailbox.address);
                    lock(&self.outcomes).push((
                        req.mailbox.address.clone(),
                        req.calendar.path.clone(),
                        outcome,
                    ));
                    if let Some(batch) = batch
                        && out.batch(index, batch).await.is_err()
                    {
                        return;
                    }
                    if out.done(index, Ok(end)).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        mailbox = %req.mailbox.address,
                        calendar = %req.calendar.path,
                        code = error.code(),
                        detail = %error.diagnostic.detail(),
                        "calendar sync failed"
                    );
                    if out.done(index, Err(error)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn probe(&self, probe_mailbox: Option<&str>) -> Vec<calpump_engine::source::ProbeStep> {
        crate::probe::run(self, probe_mailbox).await
    }
}

/// For the probe: GetFolder with a given retry policy.
impl EwsSource {
    pub(crate) async fn probe_get_folder(
        &self,
        url: &Url,
        mailbox: &str,
    ) -> Result<ops::Folder, SourceError> {
        self.get_calendar_folder(url, mailbox, Some(&RetryPolicy::none()))
            .await
    }

    pub(crate) async fn probe_resolve(
        &self,
        url: &Url,
        address: &str,
    ) -> Result<Vec<ops::Mailbox>, SourceError> {
        self.resolve_at(url, address, Some(&RetryPolicy::none()))
            .await
    }

    pub(crate) async fn probe_read(
        &self,
        url: &Url,
        mailbox: &str,
        window: &Window,
    ) -> Result<(Vec<Event>, usize), SourceError> {
        self.read_window(url, mailbox, &CalendarInfo::default_calendar(), window)
            .await
    }
}
