//! The public JSON shapes of `/v1` and of webhook bodies: a subscription, a payment, an event, and
//! a page of results with its cursor. Below the services, so that the event written inside every
//! transaction and the readers of `/v1` share one shape without importing each other.

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;

use crate::clock::rfc3339;
use crate::domain::features::Features;
use crate::error::ApiError;
use crate::models::events::Event;
use crate::models::payments::Payment;
use crate::models::plans::Plan;
use crate::models::subscriptions::{Status, Subscription};

/// A subscription as `/v1` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: i64,
    pub user_id: String,
    pub plan_id: i64,
    /// The plan's name (`None` only for a plan deleted by hand from the database).
    pub plan_name: Option<String>,
    /// What the plan gives now (`{}` when it gives nothing named, or is gone).
    pub features: Features,
    /// The plan a switch moves to at the end of the current period.
    pub pending_plan_id: Option<i64>,
    pub status: &'static str,
    pub current_period_ends_at: String,
    pub trial_ends_at: Option<String>,
    pub canceled_at: Option<String>,
    pub deactivated_at: Option<String>,
}

/// A stored time (UTC) as RFC 3339.
pub fn time(t: NaiveDateTime) -> String {
    rfc3339(t.and_utc())
}

/// A status as the API names it.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Trialing => "trialing",
        Status::Active => "active",
        Status::PastDue => "past_due",
        Status::Canceled => "canceled",
        Status::Ended => "ended",
    }
}

impl SubscriptionView {
    /// `s` with `plan`, the plan it is on (`s.plan_id`'s).
    pub fn of(s: &Subscription, plan: Option<&Plan>, now: NaiveDateTime) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id.clone(),
            plan_id: s.plan_id,
            plan_name: plan.map(|p| p.name.clone()),
            features: plan.map(|p| p.features.clone()).unwrap_or_default(),
            pending_plan_id: s.pending_plan_id,
            status: status_name(s.status(now)),
            current_period_ends_at: time(s.current_period_ends_at),
            trial_ends_at: s.trial_ends_at.map(time),
            canceled_at: s.canceled_at.map(time),
            deactivated_at: s.deactivated_at.map(time),
        }
    }
}

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

/// The `limit` of a listing: 20 when absent, 1 to 100 when given.
pub fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
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
pub fn paged<T, C>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_starting_after = has_more.then(|| rows.last().map(&cursor)).flatten();
    Page {
        data: rows,
        has_more,
        next_starting_after,
    }
}

/// An event as `/v1/events` and webhook bodies show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: String,
    pub data: Value,
}

impl EventView {
    pub fn of(e: &Event) -> Self {
        Self {
            id: e.public_id.clone(),
            event_type: e.event_type.clone(),
            created_at: rfc3339(e.created_at.and_utc()),
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        }
    }
}
