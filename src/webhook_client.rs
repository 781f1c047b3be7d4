//! The HTTP client of the app owner's webhook endpoints: SSRF-safe (names resolve to public
//! addresses only, literal addresses are checked, no redirect or proxy), with a timeout, and the
//! count of deliveries this instance has in flight per endpoint. What is sent, when, and what an
//! answer means is `services::webhooks::delivery`'s business.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Settings;
use crate::domain::webhook;

/// Deliveries one endpoint may have in flight from one instance: enough to keep a fast endpoint
/// up with thousands of events a second, few enough not to flood a small server.
pub const SLOTS_PER_ENDPOINT: usize = 16;
/// How much of an answer is kept with its attempt.
const EXCERPT_CHARS: usize = 200;

/// The HTTP client of webhook deliveries and the deliveries in flight from this instance.
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    in_flight: Mutex<HashMap<i64, usize>>,
    /// Work of this instance outside the slots: rounds between claiming and counting what they
    /// claimed, and attempts answered but not yet recorded.
    unsettled: std::sync::atomic::AtomicUsize,
    /// Told whenever a delivery ends: its endpoint has a free slot, and the worker claims again
    /// at once instead of at its next tick.
    pub freed: tokio::sync::Notify,
}

/// Resolves names to public addresses only, so a name cannot lead a delivery into a private
/// network, whatever it resolved to when the endpoint was added.
struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !webhook::is_private(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Sender {
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let allow_private = settings.allow_private_webhooks();
        let mut builder = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .connect_timeout(settings.webhook_timeout.min(Duration::from_secs(5)))
            // A redirect could lead anywhere, a private address too: a 3xx is a failure.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the address rule below.
            .no_proxy()
            .user_agent(concat!("treefort-webpay/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(SLOTS_PER_ENDPOINT);
        if !allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicAddressesOnly));
        }
        Ok(Self {
            client: builder
                .build()
                .map_err(|e| format!("cannot build the webhook client: {e}"))?,
            allow_private,
            in_flight: Mutex::new(HashMap::new()),
            unsettled: Default::default(),
            freed: tokio::sync::Notify::new(),
        })
    }

    /// Whether no delivery of this instance is in flight.
    pub fn is_idle(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.unsettled.load(Ordering::SeqCst) == 0
            && self.in_flight.lock().map(|m| m.is_empty()).unwrap_or(true)
    }

    /// Deliveries in flight, by endpoint.
    pub fn in_flight(&self) -> HashMap<i64, usize> {
        self.in_flight.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Counts a delivery to `endpoint_id` in flight (`up`) or done.
    pub fn change(&self, endpoint_id: i64, up: bool) {
        if let Ok(mut map) = self.in_flight.lock() {
            let n = map.entry(endpoint_id).or_default();
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                map.remove(&endpoint_id);
            }
        }
        if !up {
            self.freed.notify_one();
        }
    }

    /// Posts one signed delivery; every failure is an answer, never an error.
    pub async fn post(
        &self,
        url: &str,
        id: &str,
        timestamp: i64,
        signature: &str,
        body: Vec<u8>,
    ) -> Answer {
        // Literal addresses are not resolved, so the resolver's rule is applied to them here.
        if !self.allow_private {
            if let Err(e) = webhook::check_url(url, false) {
                return Answer {
                    status_code: None,
                    error: Some(e),
                    excerpt: None,
                };
            }
        }
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Err(e) => Answer {
                status_code: None,
                error: Some(if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "could not connect".to_string()
                } else {
                    "the request failed".to_string()
                }),
                excerpt: None,
            },
            Ok(mut response) => {
                let status = i32::from(response.status().as_u16());
                // The first chunk is enough for an excerpt; the rest is not read.
                let first = tokio::time::timeout(Duration::from_secs(2), response.chunk())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
                    .unwrap_or_default();
                let text: String = String::from_utf8_lossy(&first)
                    .chars()
                    .filter(|c| !c.is_control() || *c == ' ')
                    .take(EXCERPT_CHARS)
                    .collect();
                Answer {
                    status_code: Some(status),
                    error: (!(200..300).contains(&status)).then(|| format!("answered {status}")),
                    excerpt: (!text.is_empty()).then_some(text),
                }
            }
        }
    }
}

/// Keeps the sender from being idle while it lives: a round until what it claimed is counted in
/// flight, an attempt from its answer until its record.
pub struct Unsettled<'a>(&'a Sender);

impl<'a> Unsettled<'a> {
    pub fn new(sender: &'a Sender) -> Self {
        sender
            .unsettled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(sender)
    }
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        self.0
            .unsettled
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What one attempt got back.
pub struct Answer {
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}
