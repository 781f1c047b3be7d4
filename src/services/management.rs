//! Listings of the `/v1` management API: subscriptions and payments, newest first, with a cursor
//! (`startingAfter`: the last id of the previous page) that rows added meanwhile never shift.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::models::payments::{self, Payment};
use crate::models::subscriptions::{self, Listing};
use crate::state::AppState;

use super::entitlement::SubscriptionView;
use super::{check_user_id, naive, run_db};

/// One page of a listing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T, C = i64> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `startingAfter` for the next page.
    pub next_starting_after: Option<C>,
}

/// A payment as `/v1` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub id: i64,
    pub user_id: String,
    pub subscription_id: Option<i64>,
    pub kind: String,
    pub status: String,
    pub amount: i64,
    pub discount_amount: i64,
    pub currency: String,
    pub divisor: i64,
    pub refunded_amount: i64,
    pub failure_reason: Option<String>,
    pub disputed: bool,
    pub created_at: String,
}

impl PaymentView {
    pub fn of(p: &Payment, user_id: &str) -> Self {
        Self {
            id: p.id,
            user_id: user_id.to_string(),
            subscription_id: p.subscription_id,
            kind: p.kind.clone(),
            status: p.status.clone(),
            amount: p.amount,
            discount_amount: p.discount_amount,
            currency: p.currency.clone(),
            divisor: p.divisor,
            refunded_amount: p.refunded_amount,
            failure_reason: p.failure_reason.clone(),
            disputed: p.disputed_at.is_some(),
            created_at: rfc3339(p.created_at.and_utc()),
        }
    }
}

/// A subscription with its payments.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDetail {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    pub payments: Vec<PaymentView>,
}

pub const STATUSES: [&str; 5] = ["trialing", "active", "past_due", "canceled", "ended"];

pub(crate) fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(20),
        Some(n) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "limit must be from 1 to 100",
        )),
    }
}

/// One page of `rows`, read with `limit + 1` so that the extra row tells there is more; `cursor`
/// names a row for `startingAfter`.
pub(crate) fn paged<T, C>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_starting_after = has_more.then(|| rows.last().map(&cursor)).flatten();
    Page {
        data: rows,
        has_more,
        next_starting_after,
    }
}

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
    let rows = run_db(&state.pool, move |conn| {
        Ok(subscriptions::list(conn, &listing, now, limit + 1)?)
    })
    .await?;
    let views = rows.iter().map(|s| SubscriptionView::of(s, now)).collect();
    Ok(paged(views, limit, |v: &SubscriptionView| v.id))
}

pub async fn subscription(state: &AppState, id: i64) -> Result<SubscriptionDetail, ApiError> {
    let now = naive(state.clock.now());
    let (sub, pays) = run_db(&state.pool, move |conn| {
        let sub = subscriptions::find(conn, id)?
            .ok_or_else(|| ApiError::not_found("subscription_not_found", "no such subscription"))?;
        let pays = payments::list_filtered(conn, None, Some(id), None, 1000)?;
        Ok((sub, pays))
    })
    .await?;
    Ok(SubscriptionDetail {
        subscription: SubscriptionView::of(&sub, now),
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
