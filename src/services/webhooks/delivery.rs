//! Delivery of events to webhook endpoints, in the worker. Each delivery is claimed with a lease
//! (never sent by two instances at once), goes only after the older deliveries of its
//! subscription to the same endpoint (order per subscription), and is signed per Standard
//! Webhooks. A 2xx is success; anything else is retried with exponential backoff for 3 days,
//! after which the delivery is given up and an endpoint with no success in that time disabled.
//! Each endpoint has its own few slots, so a slow or dead one holds back no other endpoint, and
//! none of this runs in the loop that delivers to Treefort. Attempts that finish together are
//! recorded together (`db::group`): one commit for a burst of answers, not one each.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::web;
use chrono::{NaiveDateTime, TimeDelta};
use tokio::task::JoinHandle;

use crate::clock::naive;
use crate::db::run_db;
use crate::db::{relaxed_write_transaction, AnyConnection};
use crate::domain::webhook;
use crate::error::ApiError;
use crate::models::events::{self, Event};
use crate::models::webhooks::{self, AttemptResult, Delivery, Endpoint, Finished, NewAttempt};
use crate::state::AppState;
use crate::views::EventView;
use crate::webhook_client::{Unsettled, SLOTS_PER_ENDPOINT};

/// The most attempts one record's transaction takes: a burst of answers goes in a few commits
/// rather than one long transaction on SQLite's single writer.
pub const RECORDS_PER_COMMIT: usize = 256;
/// The longest wait between two attempts.
const MAX_BACKOFF: TimeDelta = TimeDelta::hours(6);
/// Frees its endpoint's slot when dropped: once the answer is in, or however the task ends.
struct Slot {
    state: web::Data<AppState>,
    endpoint_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.webhooks.change(self.endpoint_id, false);
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

/// Claims what is due, endpoint by endpoint within each one's free slots (three statements per
/// endpoint, however many it claims: the claim, the deliveries, their events; all in one
/// transaction whose commit does not wait for the disk: a claim lost in a crash is taken again),
/// and starts sending it.
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
    let _claiming = Unsettled::new(&state.webhooks);
    let claimed = run_db(&state.pool, move |conn| {
        relaxed_write_transaction(conn, |conn| {
            claim_due(conn, &busy, &owner, now, now + lease)
        })
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
            if let Err(e) = send(&state, item, slot).await {
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
        let deliveries =
            webhooks::claim_due_heads(conn, endpoint.id, owner, now, until, free as i64)?;
        let event_ids: Vec<i64> = deliveries.iter().map(|d| d.event_id).collect();
        let mut events: HashMap<i64, Event> = events::find_many(conn, &event_ids)?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        for delivery in deliveries {
            let event = events
                .remove(&delivery.event_id)
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

/// Sends one delivery and records its attempt. The endpoint's slot is free once the answer is in:
/// the delivery stays leased and first in its line until recorded, so nothing can overtake it,
/// and the next claim need not wait for this record's commit.
async fn send(state: &web::Data<AppState>, item: Claimed, slot: Slot) -> Result<(), ApiError> {
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
    let answer = state
        .webhooks
        .post(
            &endpoint.url,
            &event.public_id,
            timestamp,
            &signatures.join(" "),
            body,
        )
        .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let _recording = Unsettled::new(&state.webhooks);
    drop(slot);
    let finished = Finished {
        attempt: NewAttempt {
            delivery_id: delivery.id,
            endpoint_id: endpoint.id,
            event_id: delivery.event_id,
            attempted_at: naive(state.clock.now()),
            status_code: answer.status_code,
            duration_ms,
            error: answer.error,
            response_excerpt: answer.excerpt,
        },
        delivery,
        endpoint,
    };
    let outcome = state
        .webhook_records
        .submit(finished, |all| record_all(state, all))
        .await
        .unwrap_or_else(|| {
            Err(ApiError::internal(
                "a webhook attempt's record was cut short",
            ))
        })?;
    // The next delivery in this one's line may go now, not at the worker's next tick.
    state.webhooks.freed.notify_one();
    state.metrics.counters.webhook_deliveries.inc([outcome]);
    Ok(())
}

/// Records attempts that finished together in one transaction (one commit, one turn on
/// SQLite's writer, instead of one each), and should that fail, each in a transaction of its
/// own, so that one attempt's trouble costs no other its record. The commit does not wait for
/// the disk: a record lost in a crash only means the delivery is sent again, which a receiver
/// must expect anyway (the same `webhook-id`).
async fn record_all(state: &AppState, all: Vec<Finished>) -> Vec<Result<&'static str, ApiError>> {
    let owner = state.instance_id.clone();
    let count = all.len();
    let recorded = run_db(&state.pool, move |conn| {
        // Endpoint by endpoint, in one order for every instance: two batches that touch the
        // same endpoints' rows never wait for each other crosswise (a deadlock on PostgreSQL).
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by_key(|&i| (all[i].endpoint.id, all[i].delivery.id));
        let together = relaxed_write_transaction(conn, |conn| {
            let mut outcomes = vec![""; all.len()];
            for &i in &order {
                outcomes[i] = record(conn, &all[i], &owner)?;
            }
            Ok::<_, ApiError>(outcomes)
        });
        Ok(match together {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e) if all.len() == 1 => vec![Err(e)],
            Err(_) => all
                .iter()
                .map(|f| relaxed_write_transaction(conn, |conn| record(conn, f, &owner)))
                .collect(),
        })
    })
    .await;
    recorded.unwrap_or_else(|e| vec![Err(e); count])
}

/// The attempt, its delivery's next state (while this instance holds the lease), and the
/// endpoint's health. Returns the outcome's name for the metric.
fn record(
    conn: &mut AnyConnection,
    finished: &Finished,
    owner: &str,
) -> Result<&'static str, ApiError> {
    let Finished {
        delivery,
        endpoint,
        attempt,
    } = finished;
    let (ok, now) = (finished.ok(), attempt.attempted_at);
    webhooks::insert_attempt(conn, attempt)?;
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
        last_error: attempt.error.clone(),
        delivered_at: ok.then_some(now),
    };
    if !webhooks::update_held(conn, delivery.id, owner, &result)? {
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
            error = attempt.error.as_deref().unwrap_or(""),
            "webhook endpoint disabled: no delivery succeeded for 3 days"
        );
    }
    tracing::info!(
        endpoint_id = endpoint.id,
        delivery_id = delivery.id,
        attempts,
        outcome,
        error = attempt.error.as_deref().unwrap_or(""),
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
