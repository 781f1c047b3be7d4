//! Listings of the `/v1` management API: subscriptions and payments, newest first, with a cursor
//! (`startingAfter`: the last id of the previous page) that rows added meanwhile never shift.

use serde::Serialize;

use crate::error::ApiError;
use std::collections::HashMap;

use crate::models::payments;
use crate::models::plans::{self, Plan};
use crate::models::subscriptions::{self, Listing};
use crate::state::AppState;

use crate::clock::naive;
use crate::db::run_db;
use crate::services::check_user_id;
use crate::views::{page_size, paged, Page, PaymentView, SubscriptionView};

/// A subscription with its payments.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDetail {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    pub payments: Vec<PaymentView>,
}

pub const STATUSES: [&str; 5] = ["trialing", "active", "past_due", "canceled", "ended"];

pub async fn subscriptions(
    state: &AppState,
    listing: Listing,
    limit: Option<i64>,
) -> Result<Page<SubscriptionView>, ApiError> {
    if let Some(user) = &listing.user_id {
        check_user_id(user)?;
    }
    if listing
        .status
        .as_deref()
        .is_some_and(|s| !STATUSES.contains(&s))
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "status must be trialing, active, past_due, canceled or ended",
        ));
    }
    let limit = page_size(limit)?;
    let now = naive(state.clock.now());
    let (rows, plans) = run_db(&state.pool, move |conn| {
        let rows = subscriptions::list(conn, &listing, now, limit + 1)?;
        let ids: Vec<i64> = rows.iter().map(|s| s.plan_id).collect();
        let plans: HashMap<i64, Plan> = plans::find_many(conn, &ids)?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        Ok((rows, plans))
    })
    .await?;
    let views = rows
        .iter()
        .map(|s| SubscriptionView::of(s, plans.get(&s.plan_id), now))
        .collect();
    Ok(paged(views, limit, |v: &SubscriptionView| v.id))
}

pub async fn subscription(state: &AppState, id: i64) -> Result<SubscriptionDetail, ApiError> {
    let now = naive(state.clock.now());
    let (sub, plan, pays) = run_db(&state.pool, move |conn| {
        let sub = subscriptions::find(conn, id)?
            .ok_or_else(|| ApiError::not_found("subscription_not_found", "no such subscription"))?;
        let plan = plans::find(conn, sub.plan_id)?;
        let pays = payments::list_filtered(conn, None, Some(id), None, 1000)?;
        Ok((sub, plan, pays))
    })
    .await?;
    Ok(SubscriptionDetail {
        subscription: SubscriptionView::of(&sub, plan.as_ref(), now),
        payments: pays.iter().map(|(p, u)| PaymentView::of(p, u)).collect(),
    })
}

pub async fn payments(
    state: &AppState,
    user_id: Option<String>,
    subscription_id: Option<i64>,
    starting_after: Option<i64>,
    limit: Option<i64>,
) -> Result<Page<PaymentView>, ApiError> {
    if let Some(user) = &user_id {
        check_user_id(user)?;
    }
    let limit = page_size(limit)?;
    let rows = run_db(&state.pool, move |conn| {
        Ok(payments::list_filtered(
            conn,
            user_id.as_deref(),
            subscription_id,
            starting_after,
            limit + 1,
        )?)
    })
    .await?;
    let views = rows.iter().map(|(p, u)| PaymentView::of(p, u)).collect();
    Ok(paged(views, limit, |v: &PaymentView| v.id))
}

/// A refund through the active gateway (the same code as `payments refund` in the CLI).
pub async fn refund(
    state: &AppState,
    id: i64,
    amount: Option<i64>,
    request_key: Option<String>,
) -> Result<PaymentView, ApiError> {
    // The payment as recorded after the refund.
    let payment = super::payments::refund(state, id, amount, request_key).await?;
    let customer_id = payment.customer_id;
    let user = run_db(&state.pool, move |conn| {
        Ok(crate::models::customers::find_by_id(conn, customer_id)?
            .map(|c| c.user_id)
            .unwrap_or_default())
    })
    .await?;
    Ok(PaymentView::of(&payment, &user))
}
