//! One subscription's turn: what its due moment means (renew, retry, end, or wait), with the
//! gateway calls that takes. Nothing is written here; `Write` says what to record, and the wave
//! records it with the others while the lease is still held.

use chrono::{NaiveDateTime, TimeDelta};

use crate::domain::billing_period::period_end;
use crate::domain::money::Money;
use crate::error::ApiError;
use crate::gateway::{ChargeKind, ChargeOutcome, ChargeRequest, PaymentStatus};
use crate::models::payments::{self, NewPayment};
use crate::models::subscriptions::{Subscription, SubscriptionChanges};
use crate::state::AppState;
use crate::treefort::UpdateSubscription;

use super::{next_retry, renewal_key, renewal_price, Context, Done, Write, GATEWAY_RETRY};
use crate::clock::{naive, utc};
use crate::services::{customers, events};

/// Decides a claimed subscription's turn, charging it if it renews.
pub(super) async fn decide(state: &AppState, context: Context) -> Result<Write, ApiError> {
    let now = naive(state.clock.now());
    let sub = &context.subscription;
    let grace_end =
        sub.current_period_ends_at + TimeDelta::days(context.current_plan.grace_days.into());
    match before_charging(state, &context, now, grace_end).await {
        Some(Early::Postpone(at)) => return Ok(postponed(context.subscription, at, now)),
        Some(Early::Deactivate) => return Ok(deactivated(context.subscription, now)),
        None => {}
    }
    let terms = sub.next_terms(&context.current_plan, &context.plan);
    let (amount, discount_amount) = renewal_price(
        terms.price.clone(),
        context.promo.as_ref(),
        sub.promo_periods_left,
    );
    let outcome = match take_charge(state, &context, &amount).await? {
        Some(outcome) => outcome,
        None => return Ok(postponed(context.subscription, now + GATEWAY_RETRY, now)),
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
            let payment = NewPayment {
                gateway_reference: Some(reference).filter(|r| !r.is_empty()),
                ..payment
            };
            Ok(renewed(context, payment, now))
        }
        ChargeOutcome::Declined { reason } => {
            let payment = NewPayment {
                status: payments::DECLINED.into(),
                failure_reason: Some(reason),
                ..payment
            };
            Ok(declined(context.subscription, payment, grace_end, now))
        }
        ChargeOutcome::Processing { reference } => {
            tracing::info!(subscription_id = sub.id, payment = %reference, "the renewal's payment is still processing; reading it again later");
            Ok(postponed(context.subscription, now + GATEWAY_RETRY, now))
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
            Ok(declined(context.subscription, payment, grace_end, now))
        }
    }
}

/// What a turn does before any charge.
enum Early {
    /// Try again at this time.
    Postpone(NaiveDateTime),
    /// End the subscription now.
    Deactivate,
}

/// A cancellation being sent waits; a canceled subscription ends with its paid time, and one past
/// due ends with its grace (a payment still awaiting the card holder is canceled first, so it
/// can never be taken after). `None`: the turn goes on to charge.
async fn before_charging(
    state: &AppState,
    context: &Context,
    now: NaiveDateTime,
    grace_end: NaiveDateTime,
) -> Option<Early> {
    let sub = &context.subscription;
    let period_end = sub.current_period_ends_at;
    if sub.cancel_requested_at.is_some() {
        // A cancellation was being sent when its process died: never charged; the worker
        // finishes the cancellation from its intent.
        return Some(Early::Postpone(now + TimeDelta::minutes(2)));
    }
    let ending = sub.canceled_at.is_some() || (sub.past_due_since.is_some() && now >= grace_end);
    if !ending {
        return None;
    }
    // A payment still waiting for the card holder must not be taken after this.
    if let Some(reference) = &context.awaiting_authentication {
        if let Err(e) = state.gateway.cancel_payment(reference).await {
            tracing::warn!(subscription_id = sub.id, error = %e, "canceling a payment awaiting authentication failed");
        }
    }
    // Canceled: never charged again; it ends when the paid time does.
    if sub.canceled_at.is_some() && now < period_end {
        return Some(Early::Postpone(period_end));
    }
    Some(Early::Deactivate)
}

/// The renewal's charge of `amount`: a payment the card holder authenticated since, nothing for
/// a free period, the saved card, or a decline without one. `None`: the gateway cannot tell now
/// (failed, or a payment still open), and the turn is tried again later.
async fn take_charge(
    state: &AppState,
    context: &Context,
    amount: &Money,
) -> Result<Option<ChargeOutcome>, ApiError> {
    let sub = &context.subscription;
    // A payment the bank asked the card holder to authenticate comes first: taken since, it is
    // this renewal; still open, it is canceled before anything else is charged (so that two
    // payments can never both be taken); unreadable or in progress, wait.
    let authenticated = match &context.awaiting_authentication {
        Some(reference) => match awaiting_payment(state, context, reference, amount).await {
            Awaiting::Taken(reference) => Some(reference),
            Awaiting::Gone => None,
            Awaiting::Wait => return Ok(None),
        },
        None => None,
    };
    let card = context
        .card
        .as_deref()
        .filter(|c| state.gateway.owns_card(c));
    let customer_ref = match (&context.customer, card) {
        (Some(customer), Some(_)) => Some(customers::gateway_customer(state, customer).await?),
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
            amount,
            kind: ChargeKind::Renewal,
            idempotency_key: &key,
            metadata: vec![("subscription_id", sub.id.to_string())],
        };
        match state.gateway.charge(&request).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(subscription_id = sub.id, error = %e, "gateway failed during renewal");
                return Ok(None);
            }
        }
    } else {
        ChargeOutcome::Declined {
            reason: "no_payment_method".into(),
        }
    };

    // A charge the gateway is still settling is read again by its reference (a repeated charge
    // under the same key would only repeat the first answer): paid or declined once it says so,
    // and until then the turn waits. Never counted as paid before it is.
    Ok(Some(match outcome {
        ChargeOutcome::Processing { reference } => match state.gateway.payment(&reference).await {
            Ok(read) => read.status.outcome(read.reference),
            Err(_) => ChargeOutcome::Processing { reference },
        },
        decided => decided,
    }))
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
            PaymentStatus::Processing
            | PaymentStatus::RequiresAction
            | PaymentStatus::RequiresConfirmation => Awaiting::Wait,
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

/// A renewal paid: the next period, the Treefort PATCH and the events.
fn renewed(context: Context, payment: NewPayment, now: NaiveDateTime) -> Write {
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
    Write {
        changes,
        payment: Some(payment),
        treefort_update: Some(UpdateSubscription::renewed(
            utc(new_end),
            after_trial,
            switched,
        )),
        events: vec![events::SUBSCRIPTION_RENEWED],
        done: Done::Renewed { until: new_end },
        subscription: context.subscription,
    }
}

/// A renewal declined (or waiting for the card holder): retried inside grace, or the end now
/// when no grace is left.
fn declined(
    sub: Subscription,
    payment: NewPayment,
    grace_end: NaiveDateTime,
    now: NaiveDateTime,
) -> Write {
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
    let events = if ends_now {
        vec![events::SUBSCRIPTION_DEACTIVATED]
    } else if sub.past_due_since.is_none() {
        vec![events::SUBSCRIPTION_PAST_DUE]
    } else {
        vec![]
    };
    Write {
        changes,
        payment: Some(payment),
        treefort_update: ends_now.then(|| UpdateSubscription::deactivate(utc(now))),
        events,
        done: if ends_now {
            Done::EndedByDecline
        } else {
            Done::Declined { retry_at: next }
        },
        subscription: sub,
    }
}

/// The end: Treefort gets `deactivatedAt`.
fn deactivated(sub: Subscription, now: NaiveDateTime) -> Write {
    Write {
        changes: SubscriptionChanges {
            deactivated_at: Some(Some(now)),
            next_action_at: Some(None),
            ..Default::default()
        }
        .releasing(now),
        payment: None,
        treefort_update: Some(UpdateSubscription::deactivate(utc(now))),
        events: vec![events::SUBSCRIPTION_DEACTIVATED],
        done: Done::Deactivated,
        subscription: sub,
    }
}

/// The charge of this turn cannot count (it was refunded): due again now, under the next key.
pub(super) fn charge_anew(sub: Subscription, now: NaiveDateTime) -> Write {
    let mut write = postponed(sub, now, now);
    write.changes.renewal_attempts = Some(write.subscription.renewal_attempts + 1);
    write
}

/// Nothing now: looked at again at `until`.
fn postponed(sub: Subscription, until: NaiveDateTime, now: NaiveDateTime) -> Write {
    Write {
        changes: SubscriptionChanges {
            next_action_at: Some(Some(until)),
            ..Default::default()
        }
        .releasing(now),
        payment: None,
        treefort_update: None,
        events: vec![],
        done: Done::Postponed,
        subscription: sub,
    }
}
