//! Delivery of queued Treefort updates. An entry is sent only by whoever holds its lease, only
//! after every older entry of the same subscription was delivered (a PATCH never overtakes its
//! POST), and a failure schedules the next attempt with exponential backoff and jitter.

use chrono::{NaiveDateTime, TimeDelta};
use futures_util::StreamExt;
use serde_json::Value;

use crate::db::{relaxed_write_transaction, write_transaction, AnyConnection};
use crate::error::ApiError;
use crate::models::outbox::{self, NewOutboxEntry, OutboxEntry};
use crate::models::subscriptions;
use crate::state::AppState;
use crate::treefort::TreefortError;

use crate::clock::naive;
use crate::db::run_db;

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Not sent now: an older entry of its subscription is pending, or another worker holds it.
    NotReady,
}

/// Queues `body` for Treefort. Call inside the transaction that makes the change it reports.
pub fn enqueue(
    conn: &mut AnyConnection,
    subscription_id: i64,
    operation: &str,
    body: &impl serde::Serialize,
    now: NaiveDateTime,
) -> diesel::QueryResult<OutboxEntry> {
    outbox::insert(conn, &entry(subscription_id, operation, body, now)?)
}

/// The queue row of `body`, due now (to insert with others, inside the change's transaction).
pub fn entry(
    subscription_id: i64,
    operation: &str,
    body: &impl serde::Serialize,
    now: NaiveDateTime,
) -> diesel::QueryResult<NewOutboxEntry> {
    let body = serde_json::to_string(body)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    Ok(NewOutboxEntry {
        subscription_id,
        operation: operation.to_string(),
        body,
        status: outbox::PENDING.to_string(),
        next_attempt_at: now,
        created_at: now,
    })
}

/// Tries to deliver one entry now. Treefort's refusal or timeout is returned as an error after the
/// failure was recorded; the entry stays queued.
pub async fn deliver(state: &AppState, entry_id: i64) -> Result<Delivery, ApiError> {
    state.treefort()?;
    let now = naive(state.clock.now());
    let lease_until = now + lease(state);
    let owner = state.instance_id.clone();
    let claimed = run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<_, ApiError> {
            let Some(entry) = outbox::find(conn, entry_id)? else {
                return Ok(Err(Delivery::NotReady));
            };
            if matches!(entry.status.as_str(), outbox::DELIVERED | outbox::SKIPPED) {
                return Ok(Err(Delivery::Delivered));
            }
            if outbox::has_earlier_pending(conn, &entry)?
                || !outbox::take_lease(conn, entry.id, &owner, now, lease_until)?
            {
                return Ok(Err(Delivery::NotReady));
            }
            let subscription = subscriptions::find(conn, entry.subscription_id)?
                .ok_or_else(|| ApiError::internal("outbox entry without its subscription"))?;
            Ok(Ok((entry, subscription.treefort_subscription_id)))
        })
    })
    .await?;
    let (entry, treefort_id) = match claimed {
        Ok(claimed) => claimed,
        Err(done) => return Ok(done),
    };
    let result = send(state, &entry, treefort_id.as_deref()).await;
    let now = naive(state.clock.now());
    let settlement = settle(state, &entry, result, now);
    let recorded = settlement.clone();
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<_, ApiError> {
            Ok(record(conn, &entry, &recorded, now)?)
        })
    })
    .await?;
    match settlement {
        Settlement::Delivered { .. } => Ok(Delivery::Delivered),
        Settlement::Dead { error, .. } | Settlement::Retry { error, .. } => Err(error),
    }
}

/// What Treefort's answer means for an entry.
#[derive(Debug, Clone)]
enum Settlement {
    /// Treefort has it; a create's answer names Treefort's id for the subscription.
    Delivered { treefort_id: Option<String> },
    /// Rejected for good: a dead letter, holding back its subscription's later updates. `detail`
    /// (Treefort's answer) is kept for operators; `error` is what a caller is told.
    Dead { detail: String, error: ApiError },
    /// Not delivered now: tried again at `next`.
    Retry {
        detail: String,
        error: ApiError,
        next: NaiveDateTime,
    },
}

/// Reads Treefort's answer to one entry: counted, logged, and turned into what to record.
fn settle(
    state: &AppState,
    entry: &OutboxEntry,
    result: Result<Option<String>, TreefortError>,
    now: NaiveDateTime,
) -> Settlement {
    let outcome = match &result {
        Ok(_) => "delivered",
        Err(TreefortError::Timeout) => "timeout",
        Err(_) => "failed",
    };
    state
        .metrics
        .counters
        .treefort_deliveries
        .inc([entry.operation.as_str(), outcome]);
    let dead = |detail: String, error: ApiError| {
        tracing::warn!(
            outbox_id = entry.id,
            subscription_id = entry.subscription_id,
            operation = %entry.operation,
            error = %detail,
            "Treefort rejected an update for good; it is a dead letter now. See `treefort-webpay outbox list --dead`, then `outbox retry ID` or `outbox skip ID --reason …`"
        );
        state
            .metrics
            .counters
            .treefort_outbox_dead_letters
            .inc([&entry.operation]);
        Settlement::Dead { detail, error }
    };
    match result {
        // A create answered without an id: later updates could never be sent, and sending it
        // again could create a second subscription. A dead letter for an operator.
        Ok(None) if entry.operation == outbox::CREATE => dead(
            "Treefort created the subscription but its answer had no id".into(),
            ApiError::bad_gateway(
                "treefort_id_unknown",
                "Treefort's answer had no subscription id",
            ),
        ),
        Ok(treefort_id) => Settlement::Delivered { treefort_id },
        Err(error) if error.is_permanent() => dead(error.to_string(), error.into()),
        Err(error) => {
            let attempts = entry.attempts + 1;
            tracing::warn!(outbox_id = entry.id, subscription_id = entry.subscription_id, attempts, error = %error, "Treefort update not delivered; will retry");
            Settlement::Retry {
                detail: error.to_string(),
                error: error.into(),
                next: now + backoff(attempts),
            }
        }
    }
}

/// Records what Treefort's answer meant for one entry. Call inside a write transaction.
fn record(
    conn: &mut AnyConnection,
    entry: &OutboxEntry,
    settlement: &Settlement,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    match settlement {
        Settlement::Delivered { treefort_id } => {
            if let Some(id) = treefort_id {
                subscriptions::set_treefort_id(conn, entry.subscription_id, id, now)?;
            }
            outbox::mark_delivered(conn, entry.id, now, None)?;
        }
        Settlement::Dead { detail, .. } => {
            outbox::mark_dead(conn, entry.id, detail, now)?;
        }
        Settlement::Retry { detail, next, .. } => {
            outbox::record_failure(conn, entry.id, detail, *next)?;
        }
    }
    Ok(())
}

/// Sends one entry; for a create, returns the id Treefort gave the subscription.
async fn send(
    state: &AppState,
    entry: &OutboxEntry,
    treefort_id: Option<&str>,
) -> Result<Option<String>, TreefortError> {
    let client = state
        .treefort
        .as_deref()
        .ok_or(TreefortError::NotConfigured)?;
    let body: Value = serde_json::from_str(&entry.body)
        .map_err(|e| TreefortError::Transport(format!("stored body is not JSON: {e}")))?;
    if entry.operation == outbox::CREATE {
        let key = format!("treefort-webpay-subscription-{}", entry.subscription_id);
        return client.create_subscription(&body, &key).await;
    }
    let treefort_id = treefort_id.ok_or_else(|| {
        TreefortError::Transport("Treefort's id for this subscription is unknown".into())
    })?;
    client.update_subscription(treefort_id, &body).await?;
    Ok(None)
}

/// Delivers every pending entry of a subscription, oldest first, waiting (up to the Treefort
/// timeout) for one that another worker is sending. Used before a synchronous PATCH (cancel), so
/// that it never overtakes what was queued before it.
pub async fn deliver_pending_for_subscription(
    state: &AppState,
    subscription_id: i64,
) -> Result<(), ApiError> {
    let wait = state
        .settings
        .treefort
        .as_ref()
        .map_or(std::time::Duration::from_secs(10), |t| t.timeout);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let pending = run_db(&state.pool, move |conn| {
            Ok(outbox::list_pending_for_subscription(
                conn,
                subscription_id,
            )?)
        })
        .await?;
        let Some(first) = pending.first() else {
            return Ok(());
        };
        if first.status == outbox::DEAD {
            return Err(ApiError::bad_gateway(
                "treefort_update_rejected",
                "an earlier update of this subscription was rejected by Treefort; an operator must retry or skip it (treefort-webpay outbox list --dead)",
            ));
        }
        if deliver(state, first.id).await? == Delivery::NotReady {
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::gateway_timeout(
                    "treefort_timeout",
                    "an earlier update of this subscription is still being sent to Treefort; try again shortly",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Delivers up to `limit` due entries; returns how many were delivered. The worker calls this.
///
/// In waves of `WORKER_BATCH`: one statement claims the first due entry of as many
/// subscriptions, they are sent `WORKER_CONCURRENCY` at a time (over the client's kept-alive
/// connections), and one transaction records the answers. Order within a subscription holds because only the first
/// undelivered entry of each can be claimed.
pub async fn deliver_due(state: &AppState, limit: i64) -> Result<usize, ApiError> {
    state.treefort()?;
    let wave = state.settings.worker_batch.max(1) as i64;
    let concurrency = state.settings.worker_concurrency.max(1);
    let wave_lease = lease(state) * state.settings.worker_slots() as i32;
    let mut delivered = 0;
    let mut left = limit;
    while left > 0 && !state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        let now = naive(state.clock.now());
        let (owner, until, take) = (state.instance_id.clone(), now + wave_lease, left.min(wave));
        let claimed = run_db(&state.pool, move |conn| {
            let entries = relaxed_write_transaction(conn, |conn| {
                outbox::claim_due_heads(conn, &owner, now, until, take)
            })?;
            let ids: Vec<i64> = entries.iter().map(|e| e.subscription_id).collect();
            let treefort_ids = subscriptions::treefort_ids(conn, &ids)?;
            Ok(entries
                .into_iter()
                .map(|e| {
                    let id = treefort_ids.get(&e.subscription_id).cloned().flatten();
                    (e, id)
                })
                .collect::<Vec<_>>())
        })
        .await?;
        let count = claimed.len() as i64;
        // In claim order, so that answers line up with their entries.
        let sends: Vec<_> = claimed
            .iter()
            .map(|(entry, treefort_id)| send(state, entry, treefort_id.as_deref()))
            .collect();
        let results: Vec<_> = futures_util::stream::iter(sends)
            .buffered(concurrency)
            .collect()
            .await;
        let now = naive(state.clock.now());
        let settled: Vec<(OutboxEntry, Settlement)> = claimed
            .into_iter()
            .zip(results)
            .map(|((entry, _), result)| {
                let settlement = settle(state, &entry, result, now);
                (entry, settlement)
            })
            .collect();
        delivered += settled
            .iter()
            .filter(|(_, s)| matches!(s, Settlement::Delivered { .. }))
            .count();
        // Lost in a crash, a delivery is only sent again (in its place in the line).
        run_db(&state.pool, move |conn| {
            relaxed_write_transaction(conn, |conn| -> Result<_, ApiError> {
                let mut plain = Vec::new();
                for (entry, settlement) in &settled {
                    match settlement {
                        Settlement::Delivered { treefort_id: None } => plain.push(entry.id),
                        other => record(conn, entry, other, now)?,
                    }
                }
                outbox::mark_all_delivered(conn, &plain, now)?;
                Ok(())
            })
        })
        .await?;
        left -= count;
        if count < take {
            break;
        }
    }
    Ok(delivered)
}

/// Whether Treefort has everything queued for a subscription (its creation, a resume, ...).
pub async fn is_in_step_with_treefort(
    state: &AppState,
    subscription_id: i64,
) -> Result<bool, ApiError> {
    run_db(&state.pool, move |conn| {
        Ok(outbox::list_pending_for_subscription(conn, subscription_id)?.is_empty())
    })
    .await
}

/// 2 s, 4 s, 8 s … capped at one hour, with ±20 % jitter so instances do not retry in step.
fn backoff(attempts: i32) -> TimeDelta {
    use crate::domain::backoff::{exponential, jittered};
    use std::time::Duration;
    let wait = exponential(
        Duration::from_secs(2),
        attempts.max(1) as u32,
        Duration::from_secs(3600),
    );
    TimeDelta::from_std(jittered(wait)).unwrap_or(TimeDelta::hours(1))
}

/// How long a claimed entry stays ours: a token fetch and a call, each bounded by the timeout;
/// an instance that dies frees it after this.
fn lease(state: &AppState) -> TimeDelta {
    let timeout = state
        .settings
        .treefort
        .as_ref()
        .map_or(std::time::Duration::from_secs(10), |t| t.timeout);
    TimeDelta::from_std(timeout * 2 + std::time::Duration::from_secs(5))
        .unwrap_or(TimeDelta::seconds(60))
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(1).num_milliseconds();
        assert!((1_600..=2_400).contains(&first), "{first}");
        let fifth = backoff(5).num_milliseconds();
        assert!((25_600..=38_400).contains(&fifth), "{fifth}");
        let late = backoff(40).num_milliseconds();
        assert!(late <= 4_320_000, "{late}");
    }
}
