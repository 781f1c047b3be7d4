//! Recording a paid checkout: customer, subscription, payment, redemption, the completed link and
//! the queued Treefort POST, in one transaction that only the attempt holding the link can commit.
//! Whoever finishes an attempt (the shopper's request, a webhook, reconciliation) comes here; the
//! losers of a race see the payment recorded and do nothing, and a charge that no attempt can
//! record is refunded: money is never kept without a subscription.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::clock::naive;
use crate::db::{run_db, run_db_as};
use crate::db::{write_transaction, AnyConnection};
use crate::domain::billing_period::period_end;
use crate::domain::money::Money;
use crate::error::ApiError;
use crate::models::checkout_sessions;
use crate::models::customers::{self, CustomerValues};
use crate::models::outbox as outbox_rows;
use crate::models::payments::{self, NewPayment};
use crate::models::promo_codes;
use crate::models::subscriptions::{self, NewSubscription};
use crate::models::unrecorded_charges::{self, NewUnrecordedCharge};
use crate::services::events;
use crate::services::outbox;
use crate::state::AppState;
use crate::treefort::CreateSubscription;

use super::{Attempt, Charged, CheckoutView};

#[derive(Debug)]
pub(super) enum RecordError {
    /// Another live subscription of this user won the race.
    AlreadySubscribed,
    /// This attempt no longer holds the link (completed or given back by someone else).
    NotHeld,
    Other(ApiError),
}

impl From<DieselError> for RecordError {
    fn from(e: DieselError) -> Self {
        match e {
            // The one-live-subscription-per-user index: another checkout of this user won the race.
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                RecordError::AlreadySubscribed
            }
            other => RecordError::Other(other.into()),
        }
    }
}

impl From<ApiError> for RecordError {
    fn from(e: ApiError) -> Self {
        RecordError::Other(e)
    }
}

/// Whether the gateway's payment `reference` is recorded as paid.
pub(super) async fn is_recorded(state: &AppState, reference: &str) -> Result<bool, ApiError> {
    let reference = reference.to_string();
    run_db(&state.pool, move |conn| {
        Ok(payments::find_by_reference(conn, &reference)?
            .is_some_and(|p| p.status == payments::SUCCEEDED))
    })
    .await
}

/// Gives back a charge no subscription stands for. The verdict is written first, in the
/// database (`unrecorded_charges`): from then on no recording can take this charge, and a charge
/// recorded meanwhile is not refunded. Its key makes a repeated refund a no-op; a failure is
/// returned, so that whoever asked keeps the charge in view and tries again.
pub(crate) async fn refund_unrecorded(
    state: &AppState,
    reference: &str,
    amount: &Money,
    reason: &'static str,
) -> Result<(), ApiError> {
    let now = naive(state.clock.now());
    let gateway = state.gateway.name();
    let (charge, value) = (reference.to_string(), amount.clone());
    let recorded = run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<bool, ApiError> {
            if payments::find_by_reference(conn, &charge)?
                .is_some_and(|p| p.status == payments::SUCCEEDED)
            {
                return Ok(true);
            }
            let verdict = NewUnrecordedCharge::new(gateway, &charge, &value, reason, now);
            unrecorded_charges::insert(conn, &verdict)?;
            Ok(false)
        })
    })
    .await?;
    if recorded {
        tracing::warn!(payment = %reference, "a charge about to be refunded was recorded meanwhile; kept");
        return Ok(());
    }
    let key = format!("refund-unrecorded-{reference}");
    match state.gateway.refund(reference, amount, &key).await {
        Ok(()) => {
            let charge = reference.to_string();
            run_db(&state.pool, move |conn| {
                Ok(unrecorded_charges::mark_refunded(conn, &charge, now)?)
            })
            .await?;
            state.metrics.counters.checkout_payments.inc(["refunded"]);
            tracing::warn!(payment = %reference, reason, "charge without a subscription refunded");
            Ok(())
        }
        Err(e) => {
            tracing::error!(payment = %reference, error = %e, "refund of a charge without a subscription failed; will try again");
            Err(ApiError::from(e))
        }
    }
}

/// Customer, subscription, payment, redemption, completed session and queued Treefort POST, all
/// or nothing, and only while `attempt` holds the link. Returns the outbox entry to deliver.
pub(super) async fn record_paid_checkout(
    state: &AppState,
    view: &CheckoutView,
    attempt: &Attempt,
    charged: &Charged,
    now: DateTime<Utc>,
) -> Result<i64, RecordError> {
    let view = view.clone();
    let attempt = attempt.clone();
    let gateway = state.gateway.name();
    let (card, charge_reference, amount, discount_amount) = (
        charged.card.clone(),
        charged.charge_reference.clone(),
        charged.amount.clone(),
        charged.discount_amount,
    );
    run_db_as(&state.pool, move |conn| {
        write_transaction(conn, |conn| {
            let session = &view.session;
            let customer = customers::upsert(
                conn,
                &session.user_id,
                &CustomerValues {
                    email: session.user_email.clone(),
                    full_name: session.user_full_name.clone(),
                    payment_method_ref: Some(card.reference.clone()),
                    card_brand: Some(card.brand.clone()),
                    card_last4: Some(card.last4.clone()),
                    updated_at: naive(now),
                },
                naive(now),
            )?;
            let (new, period_ends_at) = new_subscription(&view, customer.id, now);
            let subscription = subscriptions::insert(conn, &new)?;
            if !checkout_sessions::complete_claim(
                conn,
                session.id,
                attempt.number,
                subscription.id,
                naive(now),
            )? {
                return Err(RecordError::NotHeld);
            }
            events::subscription(
                conn,
                events::SUBSCRIPTION_CREATED,
                subscription.id,
                naive(now),
                None,
            )?;
            if view.trial_ends_at.is_none() {
                let payment = NewPayment {
                    customer_id: customer.id,
                    subscription_id: Some(subscription.id),
                    checkout_session_id: Some(session.id),
                    kind: "checkout".into(),
                    status: payments::SUCCEEDED.into(),
                    amount: amount.amount,
                    discount_amount,
                    currency: amount.currency.clone(),
                    divisor: amount.divisor,
                    gateway: gateway.into(),
                    gateway_reference: charge_reference.clone(),
                    failure_reason: None,
                    created_at: naive(now),
                };
                record_payment(conn, &payment, naive(now))?;
            }
            if let Some(promo_id) = session.promo_code_id {
                promo_codes::record_redemption(
                    conn,
                    promo_id,
                    &session.user_id,
                    subscription.id,
                    naive(now),
                )?;
            }
            let body = CreateSubscription::new(
                &session.user_id,
                view.plan.id,
                period_ends_at,
                view.trial_ends_at,
            );
            let entry = outbox::enqueue(
                conn,
                subscription.id,
                outbox_rows::CREATE,
                &body,
                naive(now),
            )?;
            Ok(entry.id)
        })
    })
    .await
}

/// The subscription a paid (or free) checkout starts: trials end their first period with the
/// trial, so Treefort's grace rule cannot lapse it early, and the subscriber keeps the plan's
/// terms as they are now. Returns it with the end of its first period.
fn new_subscription(
    view: &CheckoutView,
    customer_id: i64,
    now: DateTime<Utc>,
) -> (NewSubscription, DateTime<Utc>) {
    let terms = view.plan.terms();
    let period_ends_at = view
        .trial_ends_at
        .unwrap_or_else(|| period_end(now, &terms.billing_interval, terms.interval_count, 1));
    let new = NewSubscription {
        user_id: view.session.user_id.clone(),
        customer_id,
        plan_id: view.plan.id,
        promo_code_id: view.session.promo_code_id,
        current_period_started_at: naive(now),
        current_period_ends_at: naive(period_ends_at),
        trial_ends_at: view.trial_ends_at.map(naive),
        created_at: naive(now),
        updated_at: naive(now),
        // Paid periods count from the trial's end, or from now.
        billing_anchor_at: Some(naive(view.trial_ends_at.unwrap_or(now))),
        periods_paid: if view.trial_ends_at.is_some() { 0 } else { 1 },
        next_action_at: Some(naive(period_ends_at)),
        promo_periods_left: view.promo.as_ref().and_then(|p| {
            let charges = p.discounted_charges()?;
            // Without a trial, today's charge used one of them.
            Some(if view.trial_ends_at.is_some() {
                charges
            } else {
                charges - 1
            })
        }),
        amount: Some(terms.price.amount),
        currency: Some(terms.price.currency.clone()),
        divisor: Some(terms.price.divisor),
        billing_interval: Some(terms.billing_interval.clone()),
        interval_count: Some(terms.interval_count),
    };
    (new, period_ends_at)
}

/// The checkout's payment and its event; a charge already given back as unrecorded is never
/// recorded as paid.
fn record_payment(
    conn: &mut AnyConnection,
    payment: &NewPayment,
    now: NaiveDateTime,
) -> Result<(), RecordError> {
    if let Some(reference) = &payment.gateway_reference {
        if unrecorded_charges::find(conn, reference)?.is_some() {
            return Err(RecordError::NotHeld);
        }
    }
    let payment = payments::insert(conn, payment)?;
    events::payment_recorded(conn, &payment, now)?;
    Ok(())
}
