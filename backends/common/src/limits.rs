//! Concurrency limits as async permits: a global cap and a cap per key (a mailbox for Graph,
//! a server for EWS), both adaptive — lowered at run time when the server says "too many"
//! (EWS `ErrorExceededConnectionCount` halves it) and raised back slowly on success.
//!
//! ```
//! # async fn demo() {
//! use calpump_backend_common::limits::Limits;
//! // Graph: at most 4 requests at once per mailbox, 16 for the whole tenant.
//! let limits = Limits::new(16, 4);
//! let permit = limits.acquire("room-1.01@contoso.com").await;
//! // … send the request …
//! drop(permit);
//! // EWS: the server refused more connections.
//! limits.global().decrease();
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many successes in a row raise a lowered limit by one.
pub const DEFAULT_RAISE_AFTER: u32 = 20;

struct AdaptiveState {
    /// The limit in force.
    limit: usize,
    /// Permits still to be withdrawn when they come back (lowered while they were held).
    debt: usize,
    /// Successes since the last change.
    successes: u32,
}

/// A semaphore whose size can be lowered and raised while permits are out.
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<AdaptiveState>,
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
            }),
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
            limit: self.clone(),
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
        let mut state = self.state();
        let target = (state.limit / 2).max(1);
        let withdraw = state.limit - target;
        let forgotten = self.semaphore.forget_permits(withdraw);
        state.debt += withdraw - forgotten;
        state.limit = target;
        state.successes = 0;
        tracing::debug!(limit = target, cap = self.cap, "concurrency lowered");
        target
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
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }
}

/// A permit of an [`AdaptiveLimit`]; returned when dropped.
pub struct AdaptivePermit {
    permit: Option<OwnedSemaphorePermit>,
    limit: Arc<AdaptiveLimit>,
}

impl fmt::Debug for AdaptivePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdaptivePermit")
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
            keys.retain(|_, limit| Arc::strong_count(limit) > 1 || limit.limit() < limit.cap());
        }
        keys.entry(key)
            .or_insert_with(|| AdaptiveLimit::new(self.per_key_cap))
            .clone()
    }

    /// Waits for the key's permit, then a global one (always in this order: no deadlock).
    pub async fn acquire(&self, key: &str) -> Permit {
        let key_limit = self.key(key);
        let key_permit = key_limit.acquire().await;
        let global = self.global.acquire().await;
        Permit {
            _key: Some(key_permit),
            _global: global,
        }
    }

    /// A global permit only (requests that concern no single mailbox: room lists, tokens).
    pub async fn acquire_global(&self) -> Permit {
        Permit {
            _key: None,
            _global: self.global.acquire().await,
        }
    }
}
