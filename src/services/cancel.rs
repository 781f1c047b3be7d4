//! Cancellation, from Treefort's endpoint and from the billing portal alike: PATCH Treefort
//! `canceledAt = now` first and record it locally only after Treefort's 2xx; on failure nothing
//! local changes. A second cancel of a canceled subscription succeeds without calling Treefort.
//! Access lasts until the paid period ends.

use crate::error::ApiError;
use crate::metrics::label;
use crate::models::subscriptions::{self, Subscription};
use crate::state::AppState;
use crate::treefort::UpdateSubscription;

use super::{naive, outbox, run_db, utc};

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
    state
        .metrics
        .incr("cancellations_total", label("outcome", outcome));
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
    patch_in_order(state, id, UpdateSubscription::cancel(now)).await?;

    run_db(&state.pool, move |conn| {
        subscriptions::mark_canceled(conn, id, naive(now))?;
        subscriptions::find(conn, id)?.ok_or_else(|| ApiError::internal("subscription vanished after cancel"))
    })
    .await
    .inspect(|s| {
        tracing::info!(subscription_id = s.id, canceled_at = %utc(s.canceled_at.unwrap_or(naive(now))), "subscription canceled");
    })
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
    patch_in_order(state, subscription.id, UpdateSubscription::resume()).await?;
    run_db(&state.pool, move |conn| {
        let changes = subscriptions::SubscriptionChanges {
            canceled_at: Some(None),
            updated_at: Some(now),
            ..Default::default()
        };
        subscriptions::update(conn, subscription_id, &changes)?;
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
