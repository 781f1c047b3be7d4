//! Delivery of events to webhook endpoints, in the worker. Each delivery is claimed with a lease
//! (never sent by two instances at once), goes only after the older deliveries of its
//! subscription to the same endpoint (order per subscription), and is signed per Standard
//! Webhooks. A 2xx is success; anything else is retried with exponential backoff for 3 days,
//! after which the delivery is given up and an endpoint with no success in that time disabled.
//! Each endpoint has its own few slots, so a slow or dead one holds back no other endpoint, and
//! none of this runs in the loop that delivers to Treefort.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{NaiveDateTime, TimeDelta};
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::db::{write_transaction, AnyConnection};
use crate::domain::webhook;
use crate::error::ApiError;
use crate::models::events::{self, Event};
use crate::models::webhooks::{self, AttemptResult, Delivery, Endpoint, NewAttempt};
use crate::services::events::EventView;
use crate::services::{naive, run_db};
use crate::state::AppState;

/// Deliveries one endpoint may have in flight from one instance.
pub const SLOTS_PER_ENDPOINT: usize = 4;
/// The longest wait between two attempts.
const MAX_BACKOFF: TimeDelta = TimeDelta::hours(6);
/// How much of an answer is kept with its attempt.
const EXCERPT_CHARS: usize = 200;

/// The HTTP client of webhook deliveries and the deliveries in flight from this instance.
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    in_flight: Mutex<HashMap<i64, usize>>,
    /// Rounds between claiming and counting what they claimed.
    dispatching: std::sync::atomic::AtomicUsize,
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
            dispatching: Default::default(),
        })
    }

    /// Whether no delivery of this instance is in flight.
    pub fn is_idle(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.dispatching.load(Ordering::SeqCst) == 0
            && self.in_flight.lock().map(|m| m.is_empty()).unwrap_or(true)
    }

    fn in_flight(&self) -> HashMap<i64, usize> {
        self.in_flight.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn change(&self, endpoint_id: i64, up: bool) {
        if let Ok(mut map) = self.in_flight.lock() {
            let n = map.entry(endpoint_id).or_default();
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                map.remove(&endpoint_id);
            }
        }
    }
}

/// Frees its endpoint's slot when the delivery's task ends, however it ends.
struct Slot {
    state: web::Data<AppState>,
    endpoint_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.webhooks.change(self.endpoint_id, false);
    }
}

/// Counts a round as dispatching until what it claimed is counted in flight.
struct Dispatching<'a>(&'a Sender);

impl<'a> Dispatching<'a> {
    fn new(sender: &'a Sender) -> Self {
        sender
            .dispatching
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(sender)
    }
}

impl Drop for Dispatching<'_> {
    fn drop(&mut self) {
        self.0
            .dispatching
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A delivery this instance holds the lease of, with what it sends.
struct Claimed {
    delivery: Delivery,
    endpoint: Endpoint,
    event: Event,
}

/// The wait after `attempts` failed attempts: 30 s, doubling, at most 6 hours.
pub fn backoff(attempts: i32) -> TimeDelta {
    let wait = crate::domain::backoff::exponential(
        std::time::Duration::from_secs(30),
        attempts.max(1) as u32,
        MAX_BACKOFF.to_std().unwrap_or_default(),
    );
    TimeDelta::from_std(wait).unwrap_or(MAX_BACKOFF)
}

/// Claims what is due, endpoint by endpoint within each one's free slots, and starts sending it.
/// Returns the tasks (the worker lets them run; a test may wait for them).
pub async fn dispatch(state: &web::Data<AppState>) -> Result<Vec<JoinHandle<()>>, ApiError> {
    if state.settings.webhook_signing_key.is_none() {
        return Ok(Vec::new());
    }
    let now = naive(state.clock.now());
    let lease = TimeDelta::from_std(state.settings.webhook_timeout).unwrap_or(TimeDelta::MAX)
        + TimeDelta::seconds(30);
    let busy = state.webhooks.in_flight();
    let owner = state.instance_id.clone();
    let _dispatching = Dispatching::new(&state.webhooks);
    let claimed = run_db(&state.pool, move |conn| {
        claim_due(conn, &busy, &owner, now, now + lease)
    })
    .await?;
    let mut tasks = Vec::with_capacity(claimed.len());
    for item in claimed {
        state.webhooks.change(item.endpoint.id, true);
        let slot = Slot {
            state: state.clone(),
            endpoint_id: item.endpoint.id,
        };
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = send(&state, item).await {
                tracing::warn!(error = %e, "recording a webhook attempt failed; its lease runs out and it is sent again");
            }
        }));
    }
    Ok(tasks)
}

fn claim_due(
    conn: &mut AnyConnection,
    busy: &HashMap<i64, usize>,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Vec<Claimed>, ApiError> {
    let mut claimed = Vec::new();
    for endpoint in webhooks::list_enabled_endpoints(conn)? {
        let free = SLOTS_PER_ENDPOINT.saturating_sub(busy.get(&endpoint.id).copied().unwrap_or(0));
        if free == 0 {
            continue;
        }
        for id in webhooks::list_due_heads(conn, endpoint.id, now, free as i64)? {
            if !webhooks::claim(conn, id, owner, now, until)? {
                continue;
            }
            let Some(delivery) = webhooks::find_delivery(conn, id)? else {
                continue;
            };
            let event = events::find(conn, delivery.event_id)?
                .ok_or_else(|| ApiError::internal("a webhook delivery without its event"))?;
            claimed.push(Claimed {
                delivery,
                endpoint: endpoint.clone(),
                event,
            });
        }
    }
    Ok(claimed)
}

/// What one attempt got back.
struct Answer {
    status_code: Option<i32>,
    error: Option<String>,
    excerpt: Option<String>,
}

async fn send(state: &web::Data<AppState>, item: Claimed) -> Result<(), ApiError> {
    let Claimed {
        delivery,
        endpoint,
        event,
    } = item;
    let body = serde_json::to_vec(&EventView::of(&event)).map_err(ApiError::internal)?;
    let key = super::signing_key(&state.settings)?;
    let sent_at = state.clock.now();
    let timestamp = sent_at.timestamp();
    // The current secret, and for a day after a roll the one before: any one may verify.
    let previous = endpoint
        .previous_secret_salt
        .as_ref()
        .filter(|_| endpoint.previous_secret_expires_at > Some(naive(sent_at)));
    let signatures: Vec<String> = std::iter::once(&endpoint.secret_salt)
        .chain(previous)
        .map(|salt| {
            let secret = webhook::secret_bytes(key, salt);
            webhook::sign(&secret, &event.public_id, timestamp, &body)
        })
        .collect();
    let started = Instant::now();
    let answer = post(
        state,
        &endpoint.url,
        &event.public_id,
        timestamp,
        &signatures.join(" "),
        body,
    )
    .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let ok = answer.status_code.is_some_and(|s| (200..300).contains(&s));
    let now = naive(state.clock.now());
    let owner = state.instance_id.clone();
    let outcome = run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| {
            record(
                conn,
                &delivery,
                &endpoint,
                &owner,
                ok,
                answer,
                duration_ms,
                now,
            )
        })
    })
    .await?;
    state.metrics.count("webhook_deliveries_total", &[outcome]);
    Ok(())
}

async fn post(
    state: &AppState,
    url: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: Vec<u8>,
) -> Answer {
    // Literal addresses are not resolved, so the resolver's rule is applied to them here.
    if !state.webhooks.allow_private {
        if let Err(e) = webhook::check_url(url, false) {
            return Answer {
                status_code: None,
                error: Some(e),
                excerpt: None,
            };
        }
    }
    let sent = state
        .webhooks
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

/// The attempt, its delivery's next state (while this instance holds the lease), and the
/// endpoint's health, in one transaction. Returns the outcome's name for the metric.
#[allow(clippy::too_many_arguments)]
fn record(
    conn: &mut AnyConnection,
    delivery: &Delivery,
    endpoint: &Endpoint,
    owner: &str,
    ok: bool,
    answer: Answer,
    duration_ms: i64,
    now: NaiveDateTime,
) -> Result<&'static str, ApiError> {
    webhooks::insert_attempt(
        conn,
        &NewAttempt {
            delivery_id: delivery.id,
            endpoint_id: endpoint.id,
            event_id: delivery.event_id,
            attempted_at: now,
            status_code: answer.status_code,
            duration_ms,
            error: answer.error.clone(),
            response_excerpt: answer.excerpt,
        },
    )?;
    let attempts = delivery.attempts + 1;
    let give_up = !ok && now - delivery.created_at >= super::RETRY_WINDOW;
    let (status, outcome) = match (ok, give_up) {
        (true, _) => (webhooks::DELIVERED, "delivered"),
        (false, true) => (webhooks::FAILED, "given_up"),
        (false, false) => (webhooks::PENDING, "failed"),
    };
    let result = AttemptResult {
        status: status.to_string(),
        attempts,
        next_attempt_at: if ok || give_up {
            now
        } else {
            now + backoff(attempts)
        },
        locked_by: None,
        locked_until: None,
        last_error: answer.error.clone(),
        delivered_at: ok.then_some(now),
    };
    if !webhooks::finish_attempt(conn, delivery.id, owner, &result)? {
        // Another instance has it now and decides; this attempt stays on record only.
        tracing::warn!(
            delivery_id = delivery.id,
            "a webhook delivery's lease ran out during its attempt"
        );
        return Ok("lease_lost");
    }
    if ok {
        webhooks::record_endpoint_success(conn, endpoint.id, now)?;
        return Ok(outcome);
    }
    webhooks::record_endpoint_failure(conn, endpoint.id, now)?;
    let failing_since = webhooks::find_endpoint(conn, endpoint.id)?.and_then(|e| e.failing_since);
    if failing_since.is_some_and(|since| now - since >= super::RETRY_WINDOW)
        && webhooks::disable_endpoint(conn, endpoint.id, super::FAILING_REASON, now)?
    {
        tracing::warn!(
            endpoint_id = endpoint.id,
            error = answer.error.as_deref().unwrap_or(""),
            "webhook endpoint disabled: no delivery succeeded for 3 days"
        );
    }
    tracing::info!(
        endpoint_id = endpoint.id,
        delivery_id = delivery.id,
        attempts,
        outcome,
        error = answer.error.as_deref().unwrap_or(""),
        "webhook delivery failed"
    );
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30_seconds_up_to_6_hours() {
        assert_eq!(backoff(1), TimeDelta::seconds(30));
        assert_eq!(backoff(2), TimeDelta::seconds(60));
        assert_eq!(backoff(5), TimeDelta::seconds(480));
        assert_eq!(backoff(11), TimeDelta::hours(6));
        assert_eq!(backoff(1000), TimeDelta::hours(6));
    }
}
