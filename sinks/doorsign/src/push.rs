//! Pushes to displays: MQTT (a retained JSON message per room) and OpenEPaperLink access points
//! (`POST /imgupload`). They run on the sink's own thread with its own tokio runtime — the host's
//! runtime does not cross the plugin boundary — and never block or fail the file outputs: the
//! writer only queues. Per target and room only the newest content is kept (a newer render
//! replaces one still waiting), failures are retried a bounded number of times with exponential
//! back-off, and every outcome is logged and counted (`calpump_doorsign_push_total`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use calpump_plugin::SinkError;
use calpump_plugin::sdk::counter;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{MqttConfig, MqttEndpoint, RetryConfig, Settings};

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

/// The push thread and its queues.
pub struct Pusher {
    mqtt: Option<mpsc::UnboundedSender<(String, MqttItem)>>,
    oepl: Option<mpsc::UnboundedSender<(String, OeplItem)>>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    pending: Arc<AtomicUsize>,
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
            (Some(cfg), Some(endpoint)) => Some(MqttTarget::new(cfg.clone(), endpoint.clone())?),
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
        let (shutdown, shutdown_rx) = watch::channel(false);
        let pending = Arc::new(AtomicUsize::new(0));
        let retry = config.push_retry;
        let (mqtt_tx, mqtt_rx) = mpsc::unbounded_channel();
        let (oepl_tx, oepl_rx) = mpsc::unbounded_channel();
        let has_mqtt = mqtt_target.is_some();
        let has_oepl = oepl_target.is_some();
        let thread_pending = pending.clone();
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
                                    thread_pending.clone(),
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
                                    thread_pending.clone(),
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
            pending,
        }))
    }

    pub fn has_mqtt(&self) -> bool {
        self.mqtt.is_some()
    }

    /// Queues a room's retained message (replacing one of the same room still waiting).
    pub fn push_mqtt(&self, room_id: &str, item: MqttItem) {
        if let Some(tx) = &self.mqtt {
            self.pending.fetch_add(1, Ordering::SeqCst);
            if tx.send((room_id.to_string(), item)).is_err() {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Queues a tag upload (replacing one of the same room still waiting).
    pub fn push_oepl(&self, room_id: &str, item: OeplItem) {
        if let Some(tx) = &self.oepl {
            self.pending.fetch_add(1, Ordering::SeqCst);
            if tx.send((room_id.to_string(), item)).is_err() {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Pushes queued or waiting for a retry.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
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
    const NAME: &'static str;
    /// Sends a batch; one result per item, in order.
    async fn send(&mut self, batch: &[(&str, &Self::Item)]) -> Vec<Result<(), String>>;
}

struct Waiting<T> {
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
            "calpump_doorsign_push_total",
            &[("target", target), ("outcome", outcome)],
            n as f64,
        );
    }
}

async fn worker<T: Target>(
    mut target: T,
    mut rx: mpsc::UnboundedReceiver<(String, T::Item)>,
    mut shutdown: watch::Receiver<bool>,
    retry: RetryConfig,
    pending: Arc<AtomicUsize>,
) {
    let mut queue: BTreeMap<String, Waiting<T::Item>> = BTreeMap::new();
    let enqueue = |queue: &mut BTreeMap<String, Waiting<T::Item>>, id: String, item: T::Item| {
        let fresh = Waiting {
            item,
            attempts: 0,
            due: Instant::now(),
        };
        if queue.insert(id, fresh).is_some() {
            // The older content of this room will never be sent: it is superseded.
            pending.fetch_sub(1, Ordering::SeqCst);
        }
    };
    'run: loop {
        let next_due = queue.values().map(|w| w.due).min();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break 'run,
            message = rx.recv() => match message {
                Some((id, item)) => {
                    enqueue(&mut queue, id, item);
                    while let Ok((id, item)) = rx.try_recv() {
                        enqueue(&mut queue, id, item);
                    }
                }
                None => break 'run,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
        }
        let now = Instant::now();
        let due: Vec<String> = queue
            .iter()
            .filter(|(_, w)| w.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            continue;
        }
        let results = {
            let batch: Vec<(&str, &T::Item)> = due
                .iter()
                .filter_map(|id| queue.get(id).map(|w| (id.as_str(), &w.item)))
                .collect();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break 'run,
                results = target.send(&batch) => results,
            }
        };
        let (mut ok, mut retried, mut failed) = (0, 0, 0);
        for (id, result) in due.iter().zip(results) {
            match result {
                Ok(()) => {
                    queue.remove(id);
                    pending.fetch_sub(1, Ordering::SeqCst);
                    ok += 1;
                    tracing::debug!(target_kind = T::NAME, room = %id, "doorsign push delivered");
                }
                Err(error) => {
                    let Some(waiting) = queue.get_mut(id) else {
                        continue;
                    };
                    waiting.attempts += 1;
                    if waiting.attempts >= retry.attempts {
                        tracing::error!(target_kind = T::NAME, room = %id, attempts = waiting.attempts, %error, "doorsign push given up");
                        queue.remove(id);
                        pending.fetch_sub(1, Ordering::SeqCst);
                        failed += 1;
                    } else {
                        let wait = backoff(&retry, waiting.attempts);
                        tracing::warn!(target_kind = T::NAME, room = %id, attempts = waiting.attempts, retry_in_ms = wait.as_millis() as u64, %error, "doorsign push failed; will retry");
                        waiting.due = Instant::now() + wait;
                        retried += 1;
                    }
                }
            }
        }
        count(T::NAME, "ok", ok);
        count(T::NAME, "retry", retried);
        count(T::NAME, "failed", failed);
    }
    if !queue.is_empty() {
        tracing::warn!(
            target_kind = T::NAME,
            abandoned = queue.len(),
            "doorsign pushes abandoned at shutdown"
        );
        count(T::NAME, "abandoned", queue.len());
    }
    // Whatever is left (queued or still in the channel) will never be sent.
    rx.close();
    let mut left = queue.len();
    while rx.try_recv().is_ok() {
        left += 1;
    }
    pending.fetch_sub(left, Ordering::SeqCst);
}

struct MqttTarget {
    config: MqttConfig,
    endpoint: MqttEndpoint,
    client_id: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl MqttTarget {
    fn new(config: MqttConfig, endpoint: MqttEndpoint) -> Result<Self, SinkError> {
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
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("calpump-doorsign-{}", std::process::id()));
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
    const NAME: &'static str = "mqtt";
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
    const NAME: &'static str = "openepaperlink";
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
