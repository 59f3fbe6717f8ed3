//! Concurrency limits as async permits: a global cap and a cap per key (a mailbox for Graph,
//! a server for EWS), both adaptive — lowered at run time when the server says "too many"
//! (EWS `ErrorExceededConnectionCount` halves it) and raised back slowly on success.
//!
//! Each limit also keeps a "not before" instant: a server that asked to wait (Graph's
//! `Retry-After` on a mailbox's 429, EWS `BackOffMilliseconds`) [pauses](AdaptiveLimit::pause)
//! the mailbox (or the whole server), and every request to it waits that out
//! ([`Limits::acquire`], [`Limits::acquire_global_for`], [`AdaptiveLimit::ready`]).
//!
//! ```
//! # async fn demo() {
//! use calpump_backend_common::limits::Limits;
//! // Graph: at most 4 requests at once per mailbox, 16 for the whole tenant.
//! let limits = Limits::new(16, 4);
//! let permit = limits.acquire("room-1.01@contoso.com").await;
//! // … send the request …
//! drop(permit);
//! // A `$batch` with three sub-requests for one mailbox holds three of its permits.
//! let three = limits.key("room-1.01@contoso.com").acquire_many(3).await;
//! assert_eq!(three.count(), 3);
//! // The mailbox answered 429 with `Retry-After: 2`: nothing goes to it for 2 s.
//! limits.key("room-1.01@contoso.com").pause(std::time::Duration::from_secs(2));
//! // EWS: the server refused more connections.
//! limits.global().decrease();
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How many successes in a row raise a lowered limit by one.
pub const DEFAULT_RAISE_AFTER: u32 = 20;

struct AdaptiveState {
    /// The limit in force.
    limit: usize,
    /// Permits still to be withdrawn when they come back (lowered while they were held).
    debt: usize,
    /// Successes since the last change.
    successes: u32,
    /// No request before this instant (the server asked to wait).
    paused_until: Option<Instant>,
}

/// A semaphore whose size can be lowered and raised while permits are out.
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<AdaptiveState>,
    /// Woken when the limit is lowered (a wait for several permits re-counts).
    lowered: Notify,
    cap: usize,
    raise_after: u32,
}

impl fmt::Debug for AdaptiveLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimit")
            .field("limit", &self.limit())
            .field("cap", &self.cap)
            .finish()
    }
}

impl AdaptiveLimit {
    /// A limit of `cap` (at least 1), raised by one after [`DEFAULT_RAISE_AFTER`] successes.
    pub fn new(cap: usize) -> Arc<Self> {
        Self::with_raise_after(cap, DEFAULT_RAISE_AFTER)
    }

    pub fn with_raise_after(cap: usize, raise_after: u32) -> Arc<Self> {
        let cap = cap.max(1);
        Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(cap)),
            state: Mutex::new(AdaptiveState {
                limit: cap,
                debt: 0,
                successes: 0,
                paused_until: None,
            }),
            lowered: Notify::new(),
            cap,
            raise_after: raise_after.max(1),
        })
    }

    fn state(&self) -> MutexGuard<'_, AdaptiveState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Waits for a permit.
    pub async fn acquire(self: &Arc<Self>) -> AdaptivePermit {
        // The semaphore is never closed, so acquiring cannot fail; stay total anyway.
        let permit = self.semaphore.clone().acquire_owned().await.ok();
        AdaptivePermit {
            permit,
            count: 1,
            limit: self.clone(),
        }
    }

    /// Waits for `wanted` permits at once (a `$batch` carrying that many requests for one
    /// mailbox), at most the limit in force and at least one. When the limit is lowered while
    /// waiting, the wait starts again for the new, smaller number — a wait for more permits
    /// than exist would never end. [`AdaptivePermit::count`] says how many were granted.
    pub async fn acquire_many(self: &Arc<Self>, wanted: usize) -> AdaptivePermit {
        loop {
            let lowered = self.lowered.notified();
            tokio::pin!(lowered);
            lowered.as_mut().enable();
            let count = wanted.clamp(1, self.limit());
            let n = u32::try_from(count).unwrap_or(u32::MAX);
            tokio::select! {
                permit = self.semaphore.clone().acquire_many_owned(n) => {
                    return AdaptivePermit {
                        permit: permit.ok(),
                        count,
                        limit: self.clone(),
                    };
                }
                () = &mut lowered => {}
            }
        }
    }

    /// The limit in force.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// The configured cap the limit returns to.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Permits not held right now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Halves the limit (at least 1). Returns the new limit.
    pub fn decrease(&self) -> usize {
        let target = {
            let mut state = self.state();
            let target = (state.limit / 2).max(1);
            let withdraw = state.limit - target;
            let forgotten = self.semaphore.forget_permits(withdraw);
            state.debt += withdraw - forgotten;
            state.limit = target;
            state.successes = 0;
            target
        };
        self.lowered.notify_waiters();
        tracing::debug!(limit = target, cap = self.cap, "concurrency lowered");
        target
    }

    /// No request before `now + wait` (the server asked to wait that long); a pause already
    /// longer is kept. Returns the instant requests may go again.
    pub fn pause(&self, wait: Duration) -> Instant {
        let until = Instant::now() + wait;
        let mut state = self.state();
        let until = state.paused_until.map_or(until, |old| old.max(until));
        state.paused_until = Some(until);
        until
    }

    /// The instant requests may go again, while a [`pause`](Self::pause) lasts.
    pub fn paused_until(&self) -> Option<Instant> {
        let mut state = self.state();
        match state.paused_until {
            Some(until) if until > Instant::now() => Some(until),
            Some(_) => {
                state.paused_until = None;
                None
            }
            None => None,
        }
    }

    /// Waits until no pause is in force (a pause made while waiting is waited out too).
    pub async fn ready(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Records a success; every `raise_after` successes raise a lowered limit by one, up to
    /// the cap.
    pub fn success(&self) {
        let mut state = self.state();
        if state.limit >= self.cap {
            return;
        }
        state.successes += 1;
        if state.successes < self.raise_after {
            return;
        }
        state.successes = 0;
        state.limit += 1;
        if state.debt > 0 {
            state.debt -= 1;
        } else {
            self.semaphore.add_permits(1);
        }
    }

    fn release(&self, permit: OwnedSemaphorePermit) {
        let mut state = self.state();
        let held = permit.num_permits();
        let withdrawn = state.debt.min(held);
        state.debt -= withdrawn;
        // Permits owed since the limit was lowered are withdrawn, the rest returned.
        permit.forget();
        self.semaphore.add_permits(held - withdrawn);
    }
}

/// Permits of an [`AdaptiveLimit`]; returned when dropped.
pub struct AdaptivePermit {
    permit: Option<OwnedSemaphorePermit>,
    count: usize,
    limit: Arc<AdaptiveLimit>,
}

impl AdaptivePermit {
    /// How many permits this holds (see [`AdaptiveLimit::acquire_many`]).
    pub fn count(&self) -> usize {
        self.count
    }
}

impl fmt::Debug for AdaptivePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdaptivePermit({})", self.count)
    }
}

impl Drop for AdaptivePermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.limit.release(permit);
        }
    }
}

/// Beyond this many idle keys, idle ones are forgotten (a tenant has thousands of rooms).
const MAX_IDLE_KEYS: usize = 4096;

/// A global cap plus a cap per key.
pub struct Limits {
    global: Arc<AdaptiveLimit>,
    per_key_cap: usize,
    keys: Mutex<HashMap<String, Arc<AdaptiveLimit>>>,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("global", &self.global)
            .field("per_key_cap", &self.per_key_cap)
            .finish_non_exhaustive()
    }
}

/// Both permits of [`Limits::acquire`]; released when dropped.
#[derive(Debug)]
pub struct Permit {
    _key: Option<AdaptivePermit>,
    _global: AdaptivePermit,
}

impl Limits {
    /// At most `global_cap` requests at once, and `per_key_cap` per key.
    pub fn new(global_cap: usize, per_key_cap: usize) -> Self {
        Self {
            global: AdaptiveLimit::new(global_cap),
            per_key_cap: per_key_cap.max(1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The global limit (to lower or raise it).
    pub fn global(&self) -> &Arc<AdaptiveLimit> {
        &self.global
    }

    /// The limit of one key (case-insensitive), created at the per-key cap on first use.
    pub fn key(&self, key: &str) -> Arc<AdaptiveLimit> {
        let key = key.to_ascii_lowercase();
        let mut keys = match self.keys.lock() {
            Ok(keys) => keys,
            Err(poisoned) => poisoned.into_inner(),
        };
        if keys.len() > MAX_IDLE_KEYS {
            // Only this map holds an idle key's limit.
            keys.retain(|_, limit| {
                Arc::strong_count(limit) > 1
                    || limit.limit() < limit.cap()
                    || limit.paused_until().is_some()
            });
        }
        keys.entry(key)
            .or_insert_with(|| AdaptiveLimit::new(self.per_key_cap))
            .clone()
    }

    /// Waits until neither the key (when given) nor the global limit is paused.
    pub async fn ready(&self, key: Option<&Arc<AdaptiveLimit>>) {
        loop {
            if let Some(key) = key {
                key.ready().await;
            }
            self.global.ready().await;
            if key.is_none_or(|k| k.paused_until().is_none()) {
                return;
            }
        }
    }

    fn paused(&self, key: Option<&Arc<AdaptiveLimit>>) -> bool {
        self.global.paused_until().is_some() || key.is_some_and(|k| k.paused_until().is_some())
    }

    /// Waits out the key's and the global pause, then for the key's permit, then a global one
    /// (always in this order: no deadlock). A pause that began while waiting is waited out
    /// before the permits are handed over.
    pub async fn acquire(&self, key: &str) -> Permit {
        let key_limit = self.key(key);
        loop {
            self.ready(Some(&key_limit)).await;
            let key_permit = key_limit.acquire().await;
            let global = self.global.acquire().await;
            if !self.paused(Some(&key_limit)) {
                return Permit {
                    _key: Some(key_permit),
                    _global: global,
                };
            }
        }
    }

    /// A global permit only (requests that concern no single mailbox: room lists, tokens),
    /// after the global pause.
    pub async fn acquire_global(&self) -> Permit {
        self.acquire_global_for(None).await
    }

    /// A global permit for a request concerning `key` (an EWS call impersonating a mailbox):
    /// waits out the key's and the global pause, but takes no permit of the key.
    pub async fn acquire_global_for(&self, key: Option<&str>) -> Permit {
        let key_limit = key.map(|k| self.key(k));
        loop {
            self.ready(key_limit.as_ref()).await;
            let global = self.global.acquire().await;
            if !self.paused(key_limit.as_ref()) {
                return Permit {
                    _key: None,
                    _global: global,
                };
            }
        }
    }
}
