//! The subscription lifecycle the worker drives: at each period end a live subscription is
//! charged and Treefort gets the new `currentPeriodEndsAt`; a declined charge is retried inside
//! the plan's grace period (after 1 day, 3 days, and on the last day) while access lasts; when grace
//! runs out, or a canceled subscription reaches its period end, Treefort gets `deactivatedAt`.
//!
//! Each subscription is claimed with a lease, every charge carries an idempotency key derived from
//! the subscription, the period and the attempt, and a renewal is recorded only while the lease is
//! held: two instances never charge twice and a restarted worker never repeats a charge.

use chrono::{NaiveDateTime, TimeDelta};

use crate::db::write_transaction;
use crate::domain::billing_period::period_end;
use crate::domain::money::Money;
use crate::error::ApiError;
use crate::gateway::{ChargeKind, ChargeOutcome, ChargeRequest, PaymentStatus};
use crate::models::customers;
use crate::models::outbox as outbox_rows;
use crate::models::payments::{self, NewPayment};
use crate::models::plans::{self, Plan};
use crate::models::promo_codes::{self, PromoCode};
use crate::models::subscriptions::{self, Subscription, SubscriptionChanges};
use crate::state::AppState;
use crate::treefort::UpdateSubscription;

use super::{events, naive, outbox, run_db, utc};

/// How long a claimed subscription stays ours: a charge and two short transactions.
const LEASE: TimeDelta = TimeDelta::minutes(5);
/// When the gateway itself failed (not a decline), try again after this.
const GATEWAY_RETRY: TimeDelta = TimeDelta::minutes(10);

/// What one round did, for logs and the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    pub renewed: usize,
    pub declined: usize,
    pub deactivated: usize,
    pub skipped: usize,
}

/// Claims and processes up to `limit` due subscriptions.
pub async fn process_due(state: &AppState, limit: i64) -> Result<RoundStats, ApiError> {
    let now = naive(state.clock.now());
    let due = run_db(&state.pool, move |conn| {
        Ok(subscriptions::list_due(conn, now, limit)?)
    })
    .await?;
    let mut stats = RoundStats::default();
    for id in due {
        let owner = state.instance_id.clone();
        // The lease counts from the moment it is taken: earlier charges of this round may have
        // taken minutes, and a lease counted from the round's start could be expired at once.
        let now = naive(state.clock.now());
        let won = run_db(&state.pool, move |conn| {
            Ok(subscriptions::claim(conn, id, &owner, now, now + LEASE)?)
        })
        .await?;
        if !won {
            stats.skipped += 1;
            continue;
        }
        match process_one(state, id).await {
            Ok(Outcome::Renewed) => stats.renewed += 1,
            Ok(Outcome::Declined) => stats.declined += 1,
            Ok(Outcome::Deactivated) => stats.deactivated += 1,
            Ok(Outcome::Postponed) => stats.skipped += 1,
            // The lease runs out by itself and another round tries again.
            Err(e) => tracing::warn!(subscription_id = id, error = %e, "renewal round failed"),
        }
    }
    Ok(stats)
}

enum Outcome {
    Renewed,
    Declined,
    Deactivated,
    Postponed,
}

struct Context {
    subscription: Subscription,
    /// The plan charged now: the pending plan of a switch, else the current one.
    plan: Plan,
    current_plan: Plan,
    promo: Option<PromoCode>,
    card: Option<String>,
    customer: Option<crate::models::customers::Customer>,
    /// A payment of this period the bank wanted authenticated, if the card holder may have done it.
    awaiting_authentication: Option<String>,
}

async fn process_one(state: &AppState, id: i64) -> Result<Outcome, ApiError> {
    let context = run_db(&state.pool, move |conn| {
        let subscription = subscriptions::find(conn, id)?
            .ok_or_else(|| ApiError::internal("claimed subscription vanished"))?;
        let current_plan = plans::find(conn, subscription.plan_id)?
            .ok_or_else(|| ApiError::internal("subscription without its plan"))?;
        let plan = match subscription.pending_plan_id {
            Some(next) => plans::find(conn, next)?.unwrap_or_else(|| current_plan.clone()),
            None => current_plan.clone(),
        };
        let promo = match subscription.promo_code_id {
            Some(p) => promo_codes::find(conn, p)?,
            None => None,
        };
        let customer = customers::find_by_id(conn, subscription.customer_id)?;
        let awaiting_authentication = match subscription.past_due_since {
            Some(since) => payments::find_awaiting_authentication(conn, subscription.id, since)?,
            None => None,
        };
        Ok(Context {
            subscription,
            plan,
            current_plan,
            promo,
            card: customer.as_ref().and_then(|c| c.payment_method_ref.clone()),
            customer,
            awaiting_authentication,
        })
    })
    .await?;
    let now = naive(state.clock.now());
    let sub = &context.subscription;
    let period_end = sub.current_period_ends_at;
    let grace_end = period_end + TimeDelta::days(context.current_plan.grace_days.into());

    if sub.cancel_requested_at.is_some() {
        // A cancellation was being sent when its process died: never charged; the worker
        // finishes the cancellation from its intent.
        return postpone(state, sub, now + TimeDelta::minutes(2), now).await;
    }
    let ending = sub.canceled_at.is_some() || (sub.past_due_since.is_some() && now >= grace_end);
    if ending {
        // A payment still waiting for the card holder must not be taken after this.
        if let Some(reference) = &context.awaiting_authentication {
            if let Err(e) = state.gateway.cancel_payment(reference).await {
                tracing::warn!(subscription_id = sub.id, error = %e, "canceling a payment awaiting authentication failed");
            }
        }
    }
    if sub.canceled_at.is_some() {
        // Canceled: never charged again; it ends when the paid time does.
        return if now >= period_end {
            deactivate(state, sub, now).await
        } else {
            postpone(state, sub, period_end, now).await
        };
    }
    if sub.past_due_since.is_some() && now >= grace_end {
        return deactivate(state, sub, now).await;
    }

    let terms = sub.next_terms(&context.current_plan, &context.plan);
    let (amount, discount_amount) = renewal_price(
        terms.price.clone(),
        context.promo.as_ref(),
        sub.promo_periods_left,
    );
    // A payment the bank asked the card holder to authenticate comes first: taken since, it is
    // this renewal; still open, it is canceled before anything else is charged (so that two
    // payments can never both be taken); unreadable or in progress, wait.
    let authenticated = match &context.awaiting_authentication {
        Some(reference) => match awaiting_payment(state, &context, reference, &amount).await {
            Awaiting::Taken(reference) => Some(reference),
            Awaiting::Gone => None,
            Awaiting::Wait => return postpone(state, sub, now + GATEWAY_RETRY, now).await,
        },
        None => None,
    };
    let card = context
        .card
        .as_deref()
        .filter(|c| state.gateway.owns_card(c));
    let customer_ref = match (&context.customer, card) {
        (Some(customer), Some(_)) => {
            Some(super::customers::gateway_customer(state, customer).await?)
        }
        _ => None,
    };
    let outcome = if let Some(reference) = authenticated {
        // The card holder authenticated the payment the bank asked about: it is this renewal.
        ChargeOutcome::Succeeded { reference }
    } else if amount.amount == 0 {
        ChargeOutcome::Succeeded {
            reference: String::new(),
        }
    } else if let (Some(card), Some(customer_ref)) = (card, &customer_ref) {
        let key = renewal_key(sub);
        let request = ChargeRequest {
            customer_ref,
            card_ref: card,
            amount: &amount,
            kind: ChargeKind::Renewal,
            idempotency_key: &key,
            metadata: vec![("subscription_id", sub.id.to_string())],
        };
        match state.gateway.charge(&request).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(subscription_id = sub.id, error = %e, "gateway failed during renewal");
                return postpone(state, sub, now + GATEWAY_RETRY, now).await;
            }
        }
    } else {
        ChargeOutcome::Declined {
            reason: "no_payment_method".into(),
        }
    };

    let payment = NewPayment {
        customer_id: sub.customer_id,
        subscription_id: Some(sub.id),
        checkout_session_id: None,
        kind: "renewal".into(),
        status: payments::SUCCEEDED.into(),
        amount: amount.amount,
        discount_amount,
        currency: amount.currency.clone(),
        divisor: amount.divisor,
        gateway: state.gateway.name().into(),
        gateway_reference: None,
        failure_reason: None,
        created_at: now,
    };
    match outcome {
        ChargeOutcome::Succeeded { reference } => {
            record_renewal(
                state,
                &context,
                NewPayment {
                    gateway_reference: Some(reference).filter(|r| !r.is_empty()),
                    ..payment
                },
                now,
            )
            .await
        }
        ChargeOutcome::Declined { reason } => {
            let payment = NewPayment {
                status: payments::DECLINED.into(),
                failure_reason: Some(reason),
                ..payment
            };
            record_decline(state, sub, payment, grace_end, now).await
        }
        // The bank wants the card holder to authenticate: past due inside grace, and the billing
        // portal offers "Confirm your payment" for this payment.
        ChargeOutcome::RequiresAction { reference } => {
            let payment = NewPayment {
                status: payments::DECLINED.into(),
                failure_reason: Some(payments::AUTHENTICATION_REQUIRED.into()),
                gateway_reference: Some(reference),
                ..payment
            };
            record_decline(state, sub, payment, grace_end, now).await
        }
    }
}

enum Awaiting {
    /// Authenticated and taken: this renewal's payment.
    Taken(String),
    /// Failed, or canceled now: charge anew.
    Gone,
    /// Unreadable or still in progress: decide later.
    Wait,
}

/// Where a payment awaiting authentication stands; one still open is canceled.
async fn awaiting_payment(
    state: &AppState,
    context: &Context,
    reference: &str,
    amount: &Money,
) -> Awaiting {
    let read = |payment: crate::gateway::PaymentState| {
        let ours = payment.amount.same_value(amount)
            && payment.metadata.get("subscription_id")
                == Some(&context.subscription.id.to_string());
        match payment.status {
            PaymentStatus::Succeeded if ours => Awaiting::Taken(payment.reference),
            PaymentStatus::Succeeded => {
                tracing::error!(payment = %payment.reference, "an authenticated payment does not match its renewal; not counted");
                Awaiting::Gone
            }
            PaymentStatus::Processing => Awaiting::Wait,
            PaymentStatus::RequiresAction => Awaiting::Wait,
            PaymentStatus::Failed => Awaiting::Gone,
        }
    };
    let first = match state.gateway.payment(reference).await {
        Ok(payment) => read(payment),
        Err(e) => {
            tracing::warn!(error = %e, "reading a payment awaiting authentication failed");
            return Awaiting::Wait;
        }
    };
    if !matches!(first, Awaiting::Wait) {
        return first;
    }
    // Still waiting for the card holder: cancel it, then read again (it may just have been taken).
    if let Err(e) = state.gateway.cancel_payment(reference).await {
        tracing::warn!(error = %e, "canceling a payment awaiting authentication failed");
    }
    match state.gateway.payment(reference).await {
        Ok(payment) => match read(payment) {
            // Canceled, or taken just before: decided. Still open (the cancel failed): wait.
            Awaiting::Wait => Awaiting::Wait,
            decided => decided,
        },
        Err(_) => Awaiting::Wait,
    }
}

/// Makes a past-due subscription due now: its card holder authenticated the payment the bank
/// asked about (portal or webhook), or gave a new card.
pub async fn retry_now(state: &AppState, subscription_id: i64) -> Result<(), ApiError> {
    let now = naive(state.clock.now());
    run_db(&state.pool, move |conn| {
        Ok(subscriptions::make_due_if_past_due(
            conn,
            subscription_id,
            now,
        )?)
    })
    .await
    .map(|_| ())
}

async fn record_renewal(
    state: &AppState,
    context: &Context,
    payment: NewPayment,
    now: NaiveDateTime,
) -> Result<Outcome, ApiError> {
    let sub = &context.subscription;
    let plan = &context.plan;
    let switched = (plan.id != sub.plan_id).then_some(plan.id);
    // A switch starts a new anchor at the old period end; otherwise periods count from the anchor.
    let (anchor, periods) = match switched {
        Some(_) => (sub.current_period_ends_at, 1),
        None => (
            sub.billing_anchor_at
                .unwrap_or(sub.current_period_started_at),
            sub.periods_paid + 1,
        ),
    };
    let terms = sub.next_terms(&context.current_plan, plan);
    let new_end = naive(period_end(
        utc(anchor),
        &terms.billing_interval,
        terms.interval_count,
        periods as u32,
    ));
    let after_trial = sub.trial_ends_at.is_some();
    let changes = SubscriptionChanges {
        plan_id: switched,
        pending_plan_id: switched.map(|_| None),
        current_period_started_at: Some(sub.current_period_ends_at),
        current_period_ends_at: Some(new_end),
        trial_ends_at: after_trial.then_some(None),
        billing_anchor_at: Some(Some(anchor)),
        periods_paid: Some(periods),
        next_action_at: Some(Some(new_end)),
        past_due_since: Some(None),
        renewal_attempts: Some(0),
        promo_periods_left: sub.promo_periods_left.map(|left| Some((left - 1).max(0))),
        ..Default::default()
    }
    .with_terms(&terms)
    .releasing(now);
    let body = UpdateSubscription::renewed(utc(new_end), after_trial, switched);
    let recorded = apply_held(
        state,
        sub,
        changes,
        Some(payment),
        Some(body),
        &[events::SUBSCRIPTION_RENEWED],
        now,
    )
    .await?;
    if !recorded {
        tracing::warn!(
            subscription_id = context.subscription.id,
            "lease lost before the renewal was recorded; the charge key keeps it single"
        );
        return Ok(Outcome::Postponed);
    }
    tracing::info!(subscription_id = context.subscription.id, period_ends_at = %utc(new_end), "subscription renewed");
    Ok(Outcome::Renewed)
}

async fn record_decline(
    state: &AppState,
    sub: &Subscription,
    payment: NewPayment,
    grace_end: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Outcome, ApiError> {
    let next = next_retry(sub.current_period_ends_at, grace_end, now);
    // No grace left (a plan without grace days): the decline ends the subscription now.
    let ends_now = next <= now;
    let changes = SubscriptionChanges {
        past_due_since: Some(Some(sub.past_due_since.unwrap_or(now))),
        renewal_attempts: Some(sub.renewal_attempts + 1),
        next_action_at: Some((!ends_now).then_some(next)),
        deactivated_at: ends_now.then_some(Some(now)),
        ..Default::default()
    }
    .releasing(now);
    let body = ends_now.then(|| UpdateSubscription::deactivate(utc(now)));
    let event: &[&'static str] = if ends_now {
        &[events::SUBSCRIPTION_DEACTIVATED]
    } else if sub.past_due_since.is_none() {
        &[events::SUBSCRIPTION_PAST_DUE]
    } else {
        &[]
    };
    apply_held(state, sub, changes, Some(payment), body, event, now).await?;
    if ends_now {
        tracing::info!(
            subscription_id = sub.id,
            "renewal declined with no grace left; subscription deactivated"
        );
        return Ok(Outcome::Deactivated);
    }
    tracing::info!(subscription_id = sub.id, retry_at = %utc(next), "renewal declined; will retry inside grace");
    Ok(Outcome::Declined)
}

/// The charge key of a renewal attempt: the period it pays for (named by its start, which a plan
/// switch does not reset, unlike the count of periods) and the attempt. A retry is a new charge, a
/// repeated attempt is not.
pub fn renewal_key(sub: &Subscription) -> String {
    format!(
        "renewal-{}-{}-{}",
        sub.id,
        sub.current_period_ends_at.and_utc().timestamp(),
        sub.renewal_attempts
    )
}

/// What the next renewal charges, and the discount in it: the subscriber's price, less the promo code while
/// it still has discounted periods left (`None` left with a code: forever).
pub fn renewal_price(
    price: Money,
    promo: Option<&PromoCode>,
    promo_periods_left: Option<i32>,
) -> (Money, i64) {
    promo
        .filter(|_| promo_periods_left != Some(0))
        .and_then(|p| price.discounted(&p.discount()))
        .unwrap_or((price, 0))
}

/// Retries after 1 day and 3 days, then on the last day of grace; after that, `grace_end`
/// itself, when the subscription is deactivated.
pub fn next_retry(
    period_end: NaiveDateTime,
    grace_end: NaiveDateTime,
    now: NaiveDateTime,
) -> NaiveDateTime {
    let last_day = grace_end - TimeDelta::hours(12);
    [
        period_end + TimeDelta::days(1),
        period_end + TimeDelta::days(3),
        last_day,
    ]
    .into_iter()
    .filter(|t| *t > now && *t < grace_end)
    .min()
    .unwrap_or(grace_end)
}

async fn deactivate(
    state: &AppState,
    sub: &Subscription,
    now: NaiveDateTime,
) -> Result<Outcome, ApiError> {
    let changes = SubscriptionChanges {
        deactivated_at: Some(Some(now)),
        next_action_at: Some(None),
        ..Default::default()
    }
    .releasing(now);
    let body = UpdateSubscription::deactivate(utc(now));
    apply_held(
        state,
        sub,
        changes,
        None,
        Some(body),
        &[events::SUBSCRIPTION_DEACTIVATED],
        now,
    )
    .await?;
    tracing::info!(subscription_id = sub.id, "subscription deactivated");
    Ok(Outcome::Deactivated)
}

async fn postpone(
    state: &AppState,
    sub: &Subscription,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Outcome, ApiError> {
    let changes = SubscriptionChanges {
        next_action_at: Some(Some(until)),
        ..Default::default()
    }
    .releasing(now);
    apply_held(state, sub, changes, None, None, &[], now).await?;
    Ok(Outcome::Postponed)
}

/// In one transaction: applies `changes` while this worker still holds the lease (and the period
/// is still the one it charged for), then records the payment, the events and the Treefort
/// update. Returns false, writing nothing, if the lease was lost.
async fn apply_held(
    state: &AppState,
    sub: &Subscription,
    changes: SubscriptionChanges,
    payment: Option<NewPayment>,
    treefort_update: Option<UpdateSubscription>,
    subscription_events: &[&'static str],
    now: NaiveDateTime,
) -> Result<bool, ApiError> {
    let (id, owner, periods_paid) = (sub.id, state.instance_id.clone(), sub.periods_paid);
    let subscription_events = subscription_events.to_vec();
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<bool, ApiError> {
            if subscriptions::update_if_held(conn, id, &owner, periods_paid, &changes)? == 0 {
                return Ok(false);
            }
            if let Some(payment) = &payment {
                let payment = payments::insert(conn, payment)?;
                events::payment_recorded(conn, &payment, now)?;
            }
            for event_type in subscription_events {
                events::subscription(conn, event_type, id, now, None)?;
            }
            if let Some(body) = &treefort_update {
                outbox::enqueue(conn, id, outbox_rows::UPDATE, body, now)?;
            }
            Ok(true)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().naive_utc()
    }

    #[test]
    fn retries_come_after_one_and_three_days_then_on_the_last_day() {
        let end = at("2027-01-01T00:00:00Z");
        let grace_end = end + TimeDelta::days(7);
        assert_eq!(next_retry(end, grace_end, end), at("2027-01-02T00:00:00Z"));
        assert_eq!(
            next_retry(end, grace_end, at("2027-01-02T00:00:00Z")),
            at("2027-01-04T00:00:00Z")
        );
        assert_eq!(
            next_retry(end, grace_end, at("2027-01-04T00:00:00Z")),
            at("2027-01-07T12:00:00Z")
        );
        assert_eq!(
            next_retry(end, grace_end, at("2027-01-07T12:00:00Z")),
            grace_end
        );
        // Short grace: only what fits inside it.
        assert_eq!(
            next_retry(end, end + TimeDelta::days(2), end),
            at("2027-01-02T00:00:00Z")
        );
        assert_eq!(next_retry(end, end, end), end);
    }
}
