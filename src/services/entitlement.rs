//! What the app owner's backend asks about a user (the entitlement check), and the subscription
//! changes it may make (`/v1`). The same rules as everywhere else: a cancel or resume goes
//! through `cancel`, Treefort first.

use chrono::{NaiveDateTime, TimeDelta};
use serde::Serialize;

use crate::domain::features::Features;
use crate::error::ApiError;
use crate::models::plans::{self, Plan};
use crate::models::subscriptions::{self, Status, Subscription};
use crate::state::AppState;
use crate::views::{status_name, time, SubscriptionView};

use crate::clock::naive;
use crate::db::run_db;
use crate::services::{cancel, check_user_id};

/// `GET /v1/users/{userId}/entitlement`, and the `subscription` claim of a launch token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entitlement {
    /// Whether the user may use what they pay for now: trialing, paid, canceled with paid time
    /// left, or past due inside the grace period.
    pub active: bool,
    /// `trialing`, `active`, `past_due`, `canceled`, `ended`, or `none`.
    pub status: &'static str,
    pub plan_id: Option<i64>,
    pub plan_name: Option<String>,
    pub current_period_ends_at: Option<String>,
    pub trial_ends_at: Option<String>,
    pub cancel_at_period_end: bool,
    /// While past due: when access ends unless a payment succeeds.
    pub grace_ends_at: Option<String>,
    /// What the user may use now: the features of the plan they are entitled to (after a switch,
    /// the old plan's until the switch takes effect); `{}` when not entitled.
    pub features: Features,
}

impl Entitlement {
    /// A user with no subscription.
    pub fn none() -> Self {
        Self {
            active: false,
            status: "none",
            plan_id: None,
            plan_name: None,
            current_period_ends_at: None,
            trial_ends_at: None,
            cancel_at_period_end: false,
            grace_ends_at: None,
            features: Features::default(),
        }
    }

    /// What `sub`, on `plan` (its `plan_id`'s, `None` if gone), gives at `now`.
    pub fn of(sub: &Subscription, plan: Option<&Plan>, now: NaiveDateTime) -> Self {
        let grace_days = plan.map_or(0, |p| p.grace_days);
        let status = sub.status(now);
        let grace_end = sub.current_period_ends_at + TimeDelta::days(grace_days.into());
        let active = match status {
            Status::Trialing | Status::Active => true,
            Status::PastDue => now < grace_end,
            Status::Canceled => now < sub.current_period_ends_at,
            Status::Ended => false,
        };
        Self {
            active,
            status: status_name(status),
            plan_id: Some(sub.plan_id),
            plan_name: plan.map(|p| p.name.clone()),
            current_period_ends_at: Some(time(sub.current_period_ends_at)),
            trial_ends_at: sub.trial_ends_at.map(time),
            cancel_at_period_end: sub.canceled_at.is_some() && sub.deactivated_at.is_none(),
            grace_ends_at: (status == Status::PastDue).then(|| time(grace_end)),
            features: plan
                .filter(|_| active)
                .map(|p| p.features.clone())
                .unwrap_or_default(),
        }
    }
}

pub async fn of_user(state: &AppState, user_id: String) -> Result<Entitlement, ApiError> {
    check_user_id(&user_id)?;
    let now = naive(state.clock.now());
    let (subs, source) = state
        .subscription_cache
        .of_user(&state.pool, &user_id)
        .await?;
    state
        .metrics
        .counters
        .entitlement_reads
        .inc([source.label()]);
    // The live one if there is one, else the newest.
    let Some(sub) = subs
        .iter()
        .find(|s| s.deactivated_at.is_none())
        .or(subs.first())
    else {
        return Ok(Entitlement::none());
    };
    let catalog = state.catalog.get(&state.pool).await?;
    if let Some(plan) = catalog.plans.get(&sub.plan_id) {
        return Ok(Entitlement::of(sub, Some(plan), now));
    }
    // A plan made elsewhere since the catalog was read.
    let plan_id = sub.plan_id;
    let plan = run_db(&state.pool, move |conn| Ok(plans::find(conn, plan_id)?)).await?;
    Ok(Entitlement::of(sub, plan.as_ref(), now))
}

async fn find(state: &AppState, id: i64) -> Result<Subscription, ApiError> {
    run_db(&state.pool, move |conn| Ok(subscriptions::find(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("subscription_not_found", "no such subscription"))
}

pub async fn cancel(state: &AppState, id: i64) -> Result<SubscriptionView, ApiError> {
    let sub = find(state, id).await?;
    let canceled = cancel::cancel(state, sub.user_id, sub.plan_id).await?;
    view(state, &canceled).await
}

pub async fn resume(state: &AppState, id: i64) -> Result<SubscriptionView, ApiError> {
    find(state, id).await?;
    let resumed = cancel::resume(state, id).await?;
    view(state, &resumed).await
}

/// `sub` as `/v1` shows it, with its plan from the catalog.
async fn view(state: &AppState, sub: &Subscription) -> Result<SubscriptionView, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let now = naive(state.clock.now());
    Ok(SubscriptionView::of(
        sub,
        catalog.plans.get(&sub.plan_id),
        now,
    ))
}
