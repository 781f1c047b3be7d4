//! Cancellation, from Treefort's endpoint and from the billing portal alike: PATCH Treefort
//! `canceledAt = now` first and record it locally only after Treefort's 2xx; on failure nothing
//! local changes. A second cancel of a canceled subscription succeeds without calling Treefort.
//! Access lasts until the paid period ends.
//!
//! Cancel and resume hold the subscription's lease while they ask Treefort, like a renewal does:
//! a renewal in flight finishes first, none starts meanwhile. A cancel writes its intent with the
//! lease, so a process that dies after Treefort's answer leaves it for the worker to finish.

use chrono::TimeDelta;

use crate::error::ApiError;
use crate::models::subscriptions::{self, Subscription, SubscriptionChanges};
use crate::state::AppState;
use crate::treefort::UpdateSubscription;

use crate::clock::{naive, utc};
use crate::db::run_db;
use crate::services::{events, outbox};

/// Cancels the user's live subscription to `plan_id`.
pub async fn cancel(
    state: &AppState,
    user_id: String,
    plan_id: i64,
) -> Result<Subscription, ApiError> {
    let result = cancel_inner(state, user_id, plan_id).await;
    let outcome = match &result {
        Ok(_) => "canceled",
        Err(e) => e.code,
    };
    state.metrics.counters.cancellations.inc([outcome]);
    result
}

async fn cancel_inner(
    state: &AppState,
    user_id: String,
    plan_id: i64,
) -> Result<Subscription, ApiError> {
    super::check_user_id(&user_id)?;
    state.treefort()?;
    let subscription = run_db(&state.pool, move |conn| {
        Ok(subscriptions::find_live_for_user(conn, &user_id)?.filter(|s| s.plan_id == plan_id))
    })
    .await?
    .ok_or_else(|| {
        ApiError::not_found(
            "subscription_not_found",
            "this user has no active subscription to that plan",
        )
    })?;
    if subscription.canceled_at.is_some() {
        return Ok(subscription);
    }
    let id = subscription.id;
    let now = state.clock.now();
    // The subscription's lease: a renewal in flight finishes first (and its PATCH reaches Treefort
    // before ours); none starts while Treefort is asked. The intent is written with it, so that a
    // process dying after Treefort's answer leaves a trace the worker finishes.
    let owner = hold(state, id, Some(now)).await?;
    if let Err(e) = patch_in_order(state, id, UpdateSubscription::cancel(now)).await {
        // Treefort did not take it: everything as it was.
        let _ = let_go(
            state,
            id,
            &owner,
            SubscriptionChanges {
                cancel_requested_at: Some(None),
                ..Default::default()
            },
            None,
        )
        .await;
        return Err(e);
    }
    let finished = let_go(
        state,
        id,
        &owner,
        SubscriptionChanges {
            canceled_at: Some(Some(naive(now))),
            cancel_requested_at: Some(None),
            ..Default::default()
        },
        Some(events::SUBSCRIPTION_CANCELED),
    )
    .await;
    if let Err(e) = &finished {
        // Treefort has it; the worker finishes the local record from the intent.
        tracing::error!(subscription_id = id, error = %e, "recording a cancellation Treefort accepted failed; the worker will finish it");
    }
    let subscription = run_db(&state.pool, move |conn| {
        subscriptions::find(conn, id)?
            .ok_or_else(|| ApiError::internal("subscription vanished after cancel"))
    })
    .await?;
    tracing::info!(subscription_id = id, canceled_at = %now, "subscription canceled");
    Ok(Subscription {
        canceled_at: subscription.canceled_at.or(Some(naive(now))),
        ..subscription
    })
}

/// How long a user's change waits for a renewal in flight to let go of the subscription.
const HOLD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the subscription's lease for a change a user waits on (waiting for a renewal in flight),
/// and writes the cancellation intent with it. Returns the lease's owner name.
async fn hold(
    state: &AppState,
    id: i64,
    cancel_intent: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<String, ApiError> {
    let owner = format!("{}-user", state.instance_id);
    let deadline = tokio::time::Instant::now() + HOLD_WAIT;
    loop {
        let now = naive(state.clock.now());
        let until = now + TimeDelta::minutes(2);
        let who = owner.clone();
        let intent = cancel_intent.map(naive);
        let won = run_db(&state.pool, move |conn| {
            crate::db::write_transaction(conn, |conn| -> Result<bool, ApiError> {
                if !subscriptions::claim_for_change(conn, id, &who, now, until)? {
                    return Ok(false);
                }
                if let Some(at) = intent {
                    let changes = SubscriptionChanges {
                        cancel_requested_at: Some(Some(at)),
                        ..Default::default()
                    };
                    subscriptions::update_held_by(conn, id, &who, &changes)?;
                }
                Ok(true)
            })
        })
        .await?;
        if won {
            return Ok(owner);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::conflict(
                "subscription_busy",
                "a renewal of this subscription is in progress; try again in a moment",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Applies `changes`, records `event` with them (in one transaction), and gives the lease back.
async fn let_go(
    state: &AppState,
    id: i64,
    owner: &str,
    changes: SubscriptionChanges,
    event: Option<&'static str>,
) -> Result<(), ApiError> {
    let owner = owner.to_string();
    let now = naive(state.clock.now());
    let changes = changes.releasing(now);
    run_db(&state.pool, move |conn| {
        crate::db::write_transaction(conn, |conn| -> Result<(), ApiError> {
            let applied = subscriptions::update_held_by(conn, id, &owner, &changes)?;
            if let (true, Some(event_type)) = (applied, event) {
                events::subscription(conn, event_type, id, now, None)?;
            }
            Ok(())
        })
    })
    .await
}

/// Cancellations whose outcome was never recorded (the process died after Treefort's answer):
/// recorded now with their own time, and the same `canceledAt` queued for Treefort again (a PATCH
/// it can take twice). Runs in the worker.
pub async fn finish_unrecorded_cancellations(state: &AppState) -> Result<usize, ApiError> {
    let now = naive(state.clock.now());
    let before = now - TimeDelta::minutes(2);
    let left = run_db(&state.pool, move |conn| {
        Ok(subscriptions::list_unfinished_cancellations(
            conn, before, now,
        )?)
    })
    .await?;
    let mut finished = 0;
    for subscription in left {
        let Some(at) = subscription.cancel_requested_at else {
            continue;
        };
        let owner = format!("{}-user", state.instance_id);
        let id = subscription.id;
        let done = run_db(&state.pool, move |conn| {
            crate::db::write_transaction(conn, |conn| -> Result<bool, ApiError> {
                if !subscriptions::claim_for_change(
                    conn,
                    id,
                    &owner,
                    now,
                    now + TimeDelta::minutes(2),
                )? {
                    return Ok(false);
                }
                let changes = SubscriptionChanges {
                    canceled_at: Some(Some(at)),
                    cancel_requested_at: Some(None),
                    ..Default::default()
                }
                .releasing(now);
                subscriptions::update_held_by(conn, id, &owner, &changes)?;
                events::subscription(conn, events::SUBSCRIPTION_CANCELED, id, now, None)?;
                outbox::enqueue(
                    conn,
                    id,
                    crate::models::outbox::UPDATE,
                    &UpdateSubscription::cancel(utc(at)),
                    now,
                )?;
                Ok(true)
            })
        })
        .await?;
        if done {
            tracing::warn!(
                subscription_id = id,
                "a cancellation whose record was lost is finished from its intent"
            );
            finished += 1;
        }
    }
    Ok(finished)
}

/// Takes a cancellation back while paid time is left: PATCH Treefort `canceledAt: null` first,
/// record it locally only after Treefort's 2xx.
pub async fn resume(state: &AppState, subscription_id: i64) -> Result<Subscription, ApiError> {
    state.treefort()?;
    let now = naive(state.clock.now());
    let subscription = run_db(&state.pool, move |conn| {
        Ok(subscriptions::find(conn, subscription_id)?)
    })
    .await?
    .filter(|s| {
        s.deactivated_at.is_none() && s.canceled_at.is_some() && s.current_period_ends_at > now
    })
    .ok_or_else(|| {
        ApiError::conflict(
            "not_resumable",
            "only a canceled subscription with paid time left can be resumed",
        )
    })?;
    // The lease, as for a cancel: no renewal decides on stale state meanwhile.
    let owner = hold(state, subscription.id, None).await?;
    let patched = patch_in_order(state, subscription.id, UpdateSubscription::resume()).await;
    let changes = SubscriptionChanges {
        canceled_at: patched.is_ok().then_some(None),
        ..Default::default()
    };
    let event = patched.is_ok().then_some(events::SUBSCRIPTION_RESUMED);
    let_go(state, subscription_id, &owner, changes, event).await?;
    patched?;
    run_db(&state.pool, move |conn| {
        subscriptions::find(conn, subscription_id)?
            .ok_or_else(|| ApiError::internal("subscription vanished after resume"))
    })
    .await
}

/// PATCHes Treefort now, for a change the user waits on (cancel, resume). Whatever was queued for
/// the subscription (its POST first of all) is delivered before, so this PATCH never overtakes it.
async fn patch_in_order(
    state: &AppState,
    subscription_id: i64,
    update: UpdateSubscription,
) -> Result<(), ApiError> {
    let client = state.treefort()?;
    outbox::deliver_pending_for_subscription(state, subscription_id).await?;
    let treefort_id = run_db(&state.pool, move |conn| {
        Ok(subscriptions::find(conn, subscription_id)?)
    })
    .await?
    .and_then(|s| s.treefort_subscription_id)
    .ok_or_else(|| {
        ApiError::bad_gateway(
            "treefort_id_unknown",
            "Treefort did not return an id for this subscription, so it cannot be updated",
        )
    })?;
    let body = serde_json::to_value(update).map_err(ApiError::internal)?;
    Ok(client.update_subscription(&treefort_id, &body).await?)
}
