//! Pushes to displays: MQTT (a retained JSON message per room) and OpenEPaperLink access points
//! (`POST /imgupload`). They run on the sink's own thread with its own tokio runtime — the host's
//! runtime does not cross the plugin boundary — and never block or fail the file outputs: the
//! writer only queues.
//!
//! Per target and room only the newest content is kept (a newer render replaces one still
//! waiting, whatever its retries), and a push is retried until it is delivered or superseded —
//! with exponential back-off capped at `push_retry.max_ms`; after `push_retry.attempts` failures
//! it is reported as failing (error log, `outcome="failed"`) and still retried. Every outcome is
//! counted (`calpump_doorsign_push_total{target,outcome}`).
//!
//! What each target has received is kept in a ledger, `out_dir/.state/pushed.json` (target →
//! room id → content hash), separate from the rendered hash: a push that was still pending when
//! the process stopped is queued again at the next start (and on ticks) because the ledger's hash
//! differs from the rendered one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use calpump_plugin::SinkError;
use calpump_plugin::sdk::counter;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{MqttConfig, MqttEndpoint, RetryConfig, Settings};
use crate::lock;
use crate::state::atomic_write;

/// The push targets, as named in the ledger, the logs and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    Mqtt,
    Oepl,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Mqtt => "mqtt",
            TargetKind::Oepl => "openepaperlink",
        }
    }
}

/// One room's retained MQTT message.
#[derive(Debug, Clone)]
pub struct MqttItem {
    pub topic: String,
    pub payload: Arc<Vec<u8>>,
}

/// One upload to an OpenEPaperLink tag.
#[derive(Debug, Clone)]
pub struct OeplItem {
    pub mac: String,
    pub jpeg: Vec<u8>,
}

/// One queued push: the room, the content hash it carries, the payload.
struct Queued<T> {
    room: String,
    hash: String,
    item: T,
}

/// The ledger file: target → room id → content hash delivered.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    schema_version: u32,
    #[serde(default)]
    pushed: BTreeMap<String, BTreeMap<String, String>>,
}

/// What each target has received (persisted) and what is queued for it (in memory).
struct Book {
    path: PathBuf,
    inner: Mutex<BookInner>,
}

#[derive(Default)]
struct BookInner {
    /// target → room id → delivered content hash (the ledger).
    pushed: BTreeMap<String, BTreeMap<String, String>>,
    /// (target, room id) → content hash queued or being retried.
    held: HashMap<(TargetKind, String), String>,
}

impl Book {
    fn load(path: PathBuf) -> Self {
        let pushed = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<LedgerFile>(&bytes) {
                Ok(file) => file.pushed,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "doorsign: unreadable push ledger; every room is pushed again");
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "doorsign: unreadable push ledger; every room is pushed again");
                BTreeMap::new()
            }
        };
        Self {
            path,
            inner: Mutex::new(BookInner {
                pushed,
                held: HashMap::new(),
            }),
        }
    }

    /// Whether `target` lacks content `hash` of `room` and it is not queued yet.
    fn needs(&self, target: TargetKind, room: &str, hash: &str) -> bool {
        let inner = lock(&self.inner);
        let delivered = inner
            .pushed
            .get(target.as_str())
            .and_then(|rooms| rooms.get(room))
            .is_some_and(|h| h == hash);
        let queued = inner
            .held
            .get(&(target, room.to_string()))
            .is_some_and(|h| h == hash);
        !delivered && !queued
    }

    fn hold(&self, target: TargetKind, room: &str, hash: &str) {
        lock(&self.inner)
            .held
            .insert((target, room.to_string()), hash.to_string());
    }

    fn release(&self, target: TargetKind, room: &str, hash: &str) {
        let mut inner = lock(&self.inner);
        let key = (target, room.to_string());
        if inner.held.get(&key).is_some_and(|h| h == hash) {
            inner.held.remove(&key);
        }
    }

    /// Records deliveries and writes the ledger (a failed write is logged: the rooms are then
    /// pushed once more after a restart, which is harmless).
    fn delivered(&self, target: TargetKind, done: &[(String, String)]) {
        if done.is_empty() {
            return;
        }
        let bytes = {
            let mut inner = lock(&self.inner);
            for (room, hash) in done {
                inner
                    .pushed
                    .entry(target.as_str().to_string())
                    .or_default()
                    .insert(room.clone(), hash.clone());
                let key = (target, room.clone());
                if inner.held.get(&key) == Some(hash) {
                    inner.held.remove(&key);
                }
            }
            serde_json::to_vec(&LedgerFile {
                schema_version: 1,
                pushed: inner.pushed.clone(),
            })
        };
        match bytes {
            Ok(bytes) => {
                if let Err(e) = atomic_write(&self.path, &bytes, true) {
                    tracing::warn!(path = %self.path.display(), error = %e, "doorsign: cannot write the push ledger");
                }
            }
            Err(e) => tracing::warn!(error = %e, "doorsign: cannot encode the push ledger"),
        }
    }

    fn pending(&self) -> usize {
        lock(&self.inner).held.len()
    }
}

/// The push thread and its queues.
pub struct Pusher {
    mqtt: Option<mpsc::UnboundedSender<Queued<MqttItem>>>,
    oepl: Option<mpsc::UnboundedSender<Queued<OeplItem>>>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    book: Arc<Book>,
    mqtt_client_id: Option<String>,
}

/// The default MQTT client id: unique per sink instance, so two door-sign sinks in one
/// process never share one (a broker disconnects the older of two connections with the same
/// id): `calpump-doorsign-<pid>-<instance>-<hash of out_dir and topic>`.
fn default_client_id(out_dir: &Path, topic: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU32, Ordering};
    static INSTANCE: AtomicU32 = AtomicU32::new(0);
    let instance = INSTANCE.fetch_add(1, Ordering::Relaxed);
    let mut hasher = Sha256::new();
    hasher.update(out_dir.to_string_lossy().as_bytes());
    hasher.update(b"\n");
    hasher.update(topic.as_bytes());
    let digest = hasher.finalize();
    format!(
        "calpump-doorsign-{}-{instance}-{}",
        std::process::id(),
        hex::encode(&digest[..4])
    )
}

/// Where the ledger lives under `out_dir`.
pub fn ledger_path(out_dir: &Path) -> PathBuf {
    out_dir.join(".state").join("pushed.json")
}

impl Pusher {
    /// Starts the push thread when a target is configured.
    pub fn start(settings: &Settings) -> Result<Option<Self>, SinkError> {
        let config = &settings.config;
        let oepl_config = config
            .openepaperlink
            .as_ref()
            .filter(|_| !settings.oepl_tags.is_empty());
        let mqtt_target = match (&config.mqtt, &settings.mqtt) {
            (Some(cfg), Some(endpoint)) => {
                let client_id = cfg
                    .client_id
                    .clone()
                    .unwrap_or_else(|| default_client_id(&config.out_dir, &cfg.topic));
                Some(MqttTarget::new(cfg.clone(), endpoint.clone(), client_id)?)
            }
            _ => None,
        };
        let oepl_target = match oepl_config {
            Some(cfg) => Some(OeplTarget::new(&cfg.url, cfg.dither)?),
            None => None,
        };
        if mqtt_target.is_none() && oepl_target.is_none() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                SinkError::fatal(format!("doorsign: cannot start the push runtime: {e}"))
            })?;
        let book = Arc::new(Book::load(ledger_path(&config.out_dir)));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let retry = config.push_retry;
        let (mqtt_tx, mqtt_rx) = mpsc::unbounded_channel();
        let (oepl_tx, oepl_rx) = mpsc::unbounded_channel();
        let has_mqtt = mqtt_target.is_some();
        let mqtt_client_id = mqtt_target.as_ref().map(|t| t.client_id.clone());
        let has_oepl = oepl_target.is_some();
        let thread_book = book.clone();
        // The push thread reports its metrics through the host of the instance being created.
        let host = calpump_plugin::sdk::HostHandle::current();
        let thread = std::thread::Builder::new()
            .name("doorsign-push".into())
            .spawn(move || {
                let run = || {
                    runtime.block_on(async move {
                        let mqtt = async {
                            if let Some(target) = mqtt_target {
                                worker(
                                    target,
                                    mqtt_rx,
                                    shutdown_rx.clone(),
                                    retry,
                                    thread_book.clone(),
                                )
                                .await;
                            }
                        };
                        let oepl = async {
                            if let Some(target) = oepl_target {
                                worker(
                                    target,
                                    oepl_rx,
                                    shutdown_rx.clone(),
                                    retry,
                                    thread_book.clone(),
                                )
                                .await;
                            }
                        };
                        tokio::join!(mqtt, oepl);
                    });
                };
                match host {
                    Some(host) => host.enter(run),
                    None => run(),
                }
            })
            .map_err(|e| {
                SinkError::fatal(format!("doorsign: cannot start the push thread: {e}"))
            })?;
        Ok(Some(Self {
            mqtt: has_mqtt.then_some(mqtt_tx),
            oepl: has_oepl.then_some(oepl_tx),
            shutdown,
            thread: Some(thread),
            book,
            mqtt_client_id,
        }))
    }

    /// The MQTT client id in use, when MQTT is configured.
    pub fn mqtt_client_id(&self) -> Option<&str> {
        self.mqtt_client_id.as_deref()
    }

    pub fn has(&self, target: TargetKind) -> bool {
        match target {
            TargetKind::Mqtt => self.mqtt.is_some(),
            TargetKind::Oepl => self.oepl.is_some(),
        }
    }

    /// Whether `target` still lacks content `hash` of room `room_id` (neither delivered nor
    /// queued): the caller then builds the payload and queues it.
    pub fn needs(&self, target: TargetKind, room_id: &str, hash: &str) -> bool {
        self.has(target) && self.book.needs(target, room_id, hash)
    }

    /// Queues a room's retained message (replacing one of the same room still waiting).
    pub fn push_mqtt(&self, room_id: &str, hash: &str, item: MqttItem) {
        if let Some(tx) = &self.mqtt {
            self.send(TargetKind::Mqtt, tx, room_id, hash, item);
        }
    }

    /// Queues a tag upload (replacing one of the same room still waiting).
    pub fn push_oepl(&self, room_id: &str, hash: &str, item: OeplItem) {
        if let Some(tx) = &self.oepl {
            self.send(TargetKind::Oepl, tx, room_id, hash, item);
        }
    }

    fn send<T>(
        &self,
        target: TargetKind,
        tx: &mpsc::UnboundedSender<Queued<T>>,
        room_id: &str,
        hash: &str,
        item: T,
    ) {
        self.book.hold(target, room_id, hash);
        let queued = Queued {
            room: room_id.to_string(),
            hash: hash.to_string(),
            item,
        };
        if tx.send(queued).is_err() {
            self.book.release(target, room_id, hash);
        }
    }

    /// Pushes queued or waiting for a retry.
    pub fn pending(&self) -> usize {
        self.book.pending()
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.mqtt = None;
        self.oepl = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where pushes go.
trait Target {
    type Item;
    const KIND: TargetKind;
    /// Sends a batch; one result per item, in order.
    async fn send(&mut self, batch: &[(&str, &Self::Item)]) -> Vec<Result<(), String>>;
}

struct Waiting<T> {
    hash: String,
    item: T,
    attempts: u32,
    due: Instant,
}

fn backoff(retry: &RetryConfig, attempts: u32) -> Duration {
    let factor = 1u64 << attempts.saturating_sub(1).min(30);
    Duration::from_millis(retry.initial_ms.saturating_mul(factor).min(retry.max_ms))
}

fn count(target: &str, outcome: &str, n: usize) {
    if n > 0 {
        counter(
            "doorsign_push_total",
            &[("target", target), ("outcome", outcome)],
            n as f64,
        );
    }
}

async fn worker<T: Target>(
    mut target: T,
    mut rx: mpsc::UnboundedReceiver<Queued<T::Item>>,
    mut shutdown: watch::Receiver<bool>,
    retry: RetryConfig,
    book: Arc<Book>,
) {
    let name = T::KIND.as_str();
    let mut queue: BTreeMap<String, Waiting<T::Item>> = BTreeMap::new();
    // Newer content of a room replaces what was waiting, retries and all.
    let enqueue = |queue: &mut BTreeMap<String, Waiting<T::Item>>, q: Queued<T::Item>| {
        let fresh = Waiting {
            hash: q.hash,
            item: q.item,
            attempts: 0,
            due: Instant::now(),
        };
        if let Some(old) = queue.insert(q.room.clone(), fresh) {
            tracing::debug!(target_kind = name, room = %q.room, superseded = %old.hash, "doorsign push superseded by newer content");
        }
    };
    'run: loop {
        let next_due = queue.values().map(|w| w.due).min();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break 'run,
            message = rx.recv() => match message {
                Some(q) => {
                    enqueue(&mut queue, q);
                    while let Ok(q) = rx.try_recv() {
                        enqueue(&mut queue, q);
                    }
                }
                None => break 'run,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
        }
        let now = Instant::now();
        let due: Vec<(String, String)> = queue
            .iter()
            .filter(|(_, w)| w.due <= now)
            .map(|(id, w)| (id.clone(), w.hash.clone()))
            .collect();
        if due.is_empty() {
            continue;
        }
        let results = {
            let batch: Vec<(&str, &T::Item)> = due
                .iter()
                .filter_map(|(id, _)| queue.get(id).map(|w| (id.as_str(), &w.item)))
                .collect();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break 'run,
                results = target.send(&batch) => results,
            }
        };
        // Items that arrived while sending replace what was sent: keep them.
        while let Ok(q) = rx.try_recv() {
            enqueue(&mut queue, q);
        }
        let (mut retried, mut failed) = (0, 0);
        let mut done = Vec::new();
        for ((id, hash), result) in due.iter().zip(results) {
            let Some(waiting) = queue.get_mut(id) else {
                continue;
            };
            match result {
                Ok(()) => {
                    if waiting.hash == *hash {
                        queue.remove(id);
                    }
                    tracing::debug!(target_kind = name, room = %id, "doorsign push delivered");
                    done.push((id.clone(), hash.clone()));
                }
                Err(_) if waiting.hash != *hash => {
                    // Superseded while it was being sent: the newer content goes next.
                }
                Err(error) => {
                    waiting.attempts += 1;
                    let wait = backoff(&retry, waiting.attempts);
                    waiting.due = Instant::now() + wait;
                    let retry_in_ms = wait.as_millis() as u64;
                    if waiting.attempts == retry.attempts {
                        tracing::error!(target_kind = name, room = %id, attempts = waiting.attempts, retry_in_ms, %error, "doorsign push failing; still retrying");
                        failed += 1;
                    } else {
                        tracing::warn!(target_kind = name, room = %id, attempts = waiting.attempts, retry_in_ms, %error, "doorsign push failed; will retry");
                    }
                    retried += 1;
                }
            }
        }
        count(name, "ok", done.len());
        count(name, "retry", retried);
        count(name, "failed", failed);
        book.delivered(T::KIND, &done);
    }
    if !queue.is_empty() {
        tracing::warn!(
            target_kind = name,
            left = queue.len(),
            "doorsign pushes still pending at shutdown; they are queued again at the next start"
        );
        count(name, "abandoned", queue.len());
    }
    rx.close();
}

struct MqttTarget {
    config: MqttConfig,
    endpoint: MqttEndpoint,
    client_id: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl MqttTarget {
    fn new(
        config: MqttConfig,
        endpoint: MqttEndpoint,
        client_id: String,
    ) -> Result<Self, SinkError> {
        let tls = if endpoint.tls {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(SinkError::config(
                    "doorsign: `mqtt.url` is mqtts:// but the system has no CA certificates",
                ));
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::fatal(format!("doorsign: TLS set-up failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Some(Arc::new(tls))
        } else {
            None
        };
        Ok(Self {
            config,
            endpoint,
            client_id,
            tls,
        })
    }

    /// One connection per round: publish everything due (QoS 1, retained), wait for every
    /// PUBACK, disconnect. A round fails as a whole; re-publishing a retained message is harmless.
    async fn publish_all(&self, batch: &[(&str, &MqttItem)]) -> Result<(), String> {
        let mut options =
            MqttOptions::new(&self.client_id, &self.endpoint.host, self.endpoint.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some(user) = &self.config.username {
            options.set_credentials(user, self.config.password.clone().unwrap_or_default());
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        let (client, mut events) = AsyncClient::new(options, batch.len() + 4);
        for (_, item) in batch {
            client
                .try_publish(
                    item.topic.clone(),
                    QoS::AtLeastOnce,
                    self.config.retain,
                    item.payload.as_slice().to_vec(),
                )
                .map_err(|e| format!("MQTT publish: {e}"))?;
        }
        let where_ = format!("{}:{}", self.endpoint.host, self.endpoint.port);
        let wanted = batch.len();
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            let mut acked = 0;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked += 1;
                        if acked >= wanted {
                            return Ok(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("MQTT broker {where_}: {e}")),
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "MQTT broker {where_}: no acknowledgement within 30 s"
            ))
        });
        if outcome.is_ok() && client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    match events.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }
        outcome
    }
}

impl Target for MqttTarget {
    type Item = MqttItem;
    const KIND: TargetKind = TargetKind::Mqtt;
    async fn send(&mut self, batch: &[(&str, &MqttItem)]) -> Vec<Result<(), String>> {
        let outcome = self.publish_all(batch).await;
        batch.iter().map(|_| outcome.clone()).collect()
    }
}

/// OpenEPaperLink access point, web API `POST /imgupload` (multipart: `mac`, `dither`, `file` =
/// a baseline JPEG; answers `200 "Ok, saved"`, `400 "mac not found"`, `409 "Come back later"`).
/// Reference: jakobwesthoff/openepaperlink-rust-sdk, docs/openepaper-ap-web-protocol.md §1.6.
struct OeplTarget {
    url: String,
    dither: u8,
    http: reqwest::Client,
}

impl OeplTarget {
    fn new(base: &str, dither: u8) -> Result<Self, SinkError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SinkError::fatal(format!("doorsign: HTTP client: {e}")))?;
        Ok(Self {
            url: format!("{}/imgupload", base.trim_end_matches('/')),
            dither,
            http,
        })
    }

    async fn upload(&self, room: &str, item: &OeplItem) -> Result<(), String> {
        let file = reqwest::multipart::Part::bytes(item.jpeg.clone())
            .file_name(format!("{room}.jpg"))
            .mime_str("image/jpeg")
            .map_err(|e| e.to_string())?;
        // The AP reads `mac` while the file streams in, so the text fields come first.
        let form = reqwest::multipart::Form::new()
            .text("mac", item.mac.clone())
            .text("dither", self.dither.to_string())
            .part("file", file);
        let response = self
            .http
            .post(&self.url)
            .multipart(form)
            .send()
            .await
            .map_err(|e| format!("OpenEPaperLink {}: {e}", self.url))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let body = body.trim();
        if !status.is_success() {
            return Err(format!(
                "OpenEPaperLink {} for tag {}: HTTP {status}: {body}",
                self.url, item.mac
            ));
        }
        if body.to_ascii_lowercase().starts_with("error") {
            return Err(format!(
                "OpenEPaperLink {} for tag {}: {body}",
                self.url, item.mac
            ));
        }
        Ok(())
    }
}

impl Target for OeplTarget {
    type Item = OeplItem;
    const KIND: TargetKind = TargetKind::Oepl;
    async fn send(&mut self, batch: &[(&str, &OeplItem)]) -> Vec<Result<(), String>> {
        let mut results = Vec::with_capacity(batch.len());
        for (room, item) in batch {
            results.push(self.upload(room, item).await);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_client_ids_differ_per_sink_instance() {
        let a = default_client_id(Path::new("/srv/signs"), "calpump/doorsign/{room}");
        let b = default_client_id(Path::new("/srv/lobby"), "calpump/doorsign/{room}");
        let c = default_client_id(Path::new("/srv/signs"), "calpump/doorsign/{room}");
        assert!(a.starts_with(&format!("calpump-doorsign-{}-", std::process::id())));
        assert_ne!(a, b);
        assert_ne!(a, c, "even the same out_dir and topic twice");
        assert!(a.len() <= 64, "{a}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let retry = RetryConfig {
            attempts: 10,
            initial_ms: 100,
            max_ms: 1000,
        };
        assert_eq!(backoff(&retry, 1), Duration::from_millis(100));
        assert_eq!(backoff(&retry, 2), Duration::from_millis(200));
        assert_eq!(backoff(&retry, 4), Duration::from_millis(800));
        assert_eq!(backoff(&retry, 5), Duration::from_millis(1000));
        assert_eq!(backoff(&retry, 99), Duration::from_millis(1000));
    }
}
