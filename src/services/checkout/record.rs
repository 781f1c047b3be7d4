//! Recording a paid checkout: customer, subscription, payment, redemption, the completed link and
//! the queued Treefort POST, in one transaction that only the attempt holding the link can commit.
//! Whoever finishes an attempt (the shopper's request, a webhook, reconciliation) comes here; the
//! losers of a race see the payment recorded and do nothing, and a charge that no attempt can
//! record is refunded: money is never kept without a subscription.

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::clock::naive;
use crate::db::write_transaction;
use crate::db::{run_db, run_db_as};
use crate::domain::billing_period::period_end;
use crate::domain::money::Money;
use crate::error::ApiError;
use crate::gateway::{PaymentState, PaymentStatus, SavedCard};
use crate::models::checkout_sessions::{self, CheckoutSession};
use crate::models::customers::{self, CustomerValues};
use crate::models::outbox as outbox_rows;
use crate::models::payments::{self, NewPayment};
use crate::models::promo_codes;
use crate::models::subscriptions::{self, NewSubscription};
use crate::models::unrecorded_charges::{self, NewUnrecordedCharge};
use crate::services::events;
use crate::services::outbox::{self, Delivery};
use crate::state::AppState;
use crate::treefort::CreateSubscription;

use super::{CheckoutView, PayOutcome};

/// One numbered payment attempt on a link, and the charge key that follows from it.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub session_id: i64,
    pub number: i32,
    pub promo_code_id: Option<i64>,
    pub key: String,
    pub customer_ref: String,
}

impl Attempt {
    /// The attempt in progress on `session`.
    pub fn of(session: &CheckoutSession, customer_ref: Option<String>) -> Self {
        Self {
            session_id: session.id,
            number: session.payment_attempts,
            promo_code_id: session.promo_code_id,
            key: session.charge_key(),
            customer_ref: customer_ref.unwrap_or_default(),
        }
    }
}

pub(super) struct Charged {
    pub card: SavedCard,
    /// `None` when nothing was charged (a trial, or a 100 % discount).
    pub charge_reference: Option<String>,
    pub amount: Money,
    pub discount_amount: i64,
}

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

/// Stores the gateway's payment of the attempt before it is confirmed.
pub(super) async fn remember_payment(
    state: &AppState,
    attempt: &Attempt,
    reference: &str,
) -> Result<(), ApiError> {
    let (id, number, reference) = (attempt.session_id, attempt.number, reference.to_string());
    let stored = run_db(&state.pool, move |conn| {
        Ok(checkout_sessions::set_gateway_payment_ref(
            conn, id, number, &reference,
        )?)
    })
    .await?;
    if stored == 1 {
        Ok(())
    } else {
        // Reconciliation gave the link back meanwhile: this attempt must not take money.
        Err(ApiError::conflict(
            "attempt_abandoned",
            "this payment attempt was given up; try again",
        ))
    }
}

/// Records a paid (or free) attempt and tells Treefort; where the shopper goes next.
pub(super) async fn finish(
    state: &AppState,
    view: &CheckoutView,
    attempt: &Attempt,
    charged: Charged,
    now: DateTime<Utc>,
) -> Result<PayOutcome, ApiError> {
    match record_paid_checkout(state, view, attempt, &charged, now).await {
        Ok(entry_id) => {
            state.metrics.count("checkout_payments_total", &["paid"]);
            // Tell Treefort now; if it fails, the worker retries and the page waits for it.
            Ok(match outbox::deliver(state, entry_id).await {
                Ok(Delivery::Delivered) => PayOutcome::Redirect(view.session.success_url.clone()),
                Ok(Delivery::NotReady) | Err(_) => PayOutcome::Activating(view.lang),
            })
        }
        Err(RecordError::Other(e)) => {
            // The money may have been taken but cannot be recorded now: the attempt keeps the
            // link, and reconciliation settles it from the gateway's record (a trial, which
            // took nothing, is given back for the shopper to try again).
            tracing::error!(checkout_session_id = view.session.id, error = %e, "recording a checkout failed; reconciliation will settle it");
            Ok(PayOutcome::Activating(view.lang))
        }
        Err(error) => {
            let recorded = match &charged.charge_reference {
                Some(reference) => is_recorded(state, reference).await?,
                None => false,
            };
            if !recorded {
                // The link is given back only once the money is: a failed refund keeps the
                // attempt, and reconciliation tries again.
                if let Some(reference) = &charged.charge_reference {
                    let reason = "its checkout attempt could not record it";
                    refund_unrecorded(state, reference, &charged.amount, reason).await?;
                }
                release_attempt(
                    state,
                    attempt.session_id,
                    attempt.number,
                    attempt.promo_code_id,
                )
                .await?;
            }
            if matches!(error, RecordError::AlreadySubscribed) && !recorded {
                super::pay::record_attempt(state, &super::RetryReason::AlreadySubscribed);
                return Err(super::already_subscribed());
            }
            Ok(if recorded {
                PayOutcome::Activating(view.lang)
            } else {
                PayOutcome::BackToCheckout
            })
        }
    }
}

/// Completes the checkout `session_id` from a payment the gateway reports as taken (after 3-D
/// Secure, from a webhook, or by reconciliation). A payment that is not the attempt holding the
/// link, and not recorded already, is refunded.
pub async fn settle(
    state: &AppState,
    session_id: i64,
    payment: &PaymentState,
) -> Result<(), ApiError> {
    if payment.status != PaymentStatus::Succeeded || is_recorded(state, &payment.reference).await? {
        return Ok(());
    }
    let now = state.clock.now();
    let loaded = run_db(&state.pool, move |conn| {
        let Some(session) = checkout_sessions::find(conn, session_id)? else {
            return Ok(None);
        };
        let customer = customers::find_by_user_id(conn, &session.user_id)?;
        Ok(super::load_view(conn, session, naive(now))?.zip(customer))
    })
    .await?;
    let Some((view, customer)) = loaded else {
        tracing::error!(
            payment = %payment.reference,
            "a payment names a checkout that does not exist; refunding it"
        );
        let reason = "its checkout does not exist";
        return refund_unrecorded(state, &payment.reference, &payment.amount, reason).await;
    };
    let session = &view.session;
    let customer_ref = customer.gateway_customer_ref.clone().unwrap_or_default();
    // The attempt's own payment (its reference was stored before it was confirmed), or one that
    // carries the attempt's key, customer and amount.
    let own = session.gateway_payment_ref.as_deref() == Some(payment.reference.as_str());
    let holds = session.status == checkout_sessions::PROCESSING
        && (own || payment.is_ours(&customer_ref, &view.due_today(), &session.charge_key()));
    if !holds {
        tracing::warn!(
            checkout_session_id = session.id,
            payment = %payment.reference,
            "a payment taken for no open attempt of its checkout; refunding it"
        );
        let reason = "no open attempt of its checkout";
        return refund_unrecorded(state, &payment.reference, &payment.amount, reason).await;
    }
    let attempt = Attempt::of(session, Some(customer_ref));
    let card = SavedCard {
        reference: payment
            .card_ref
            .clone()
            .or(customer.payment_method_ref.clone())
            .unwrap_or_default(),
        brand: customer.card_brand.clone().unwrap_or_default(),
        last4: customer.card_last4.clone().unwrap_or_default(),
    };
    // What was charged, in the plan's units (the price may have been edited since).
    let amount = payment
        .amount
        .rescaled(view.price.divisor)
        .filter(|a| a.currency.eq_ignore_ascii_case(&view.price.currency))
        .unwrap_or_else(|| view.due_today());
    let charged = Charged {
        card,
        charge_reference: Some(payment.reference.clone()),
        discount_amount: (view.price.amount - amount.amount).max(0),
        amount,
    };
    finish(state, &view, &attempt, charged, now)
        .await
        .map(|_| ())
}

async fn is_recorded(state: &AppState, reference: &str) -> Result<bool, ApiError> {
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
            state
                .metrics
                .count("checkout_payments_total", &["refunded"]);
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
async fn record_paid_checkout(
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
            // Trials: the period ends with the trial, so Treefort's grace rule cannot lapse it early.
            // The subscriber keeps the plan's terms as they are now.
            let terms = view.plan.terms();
            let period_ends_at = view.trial_ends_at.unwrap_or_else(|| {
                period_end(now, &terms.billing_interval, terms.interval_count, 1)
            });
            let subscription = subscriptions::insert(
                conn,
                &NewSubscription {
                    user_id: session.user_id.clone(),
                    customer_id: customer.id,
                    plan_id: view.plan.id,
                    promo_code_id: session.promo_code_id,
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
                },
            )?;
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
                // A charge already given back as unrecorded is never recorded as paid.
                if let Some(reference) = &charge_reference {
                    if unrecorded_charges::find(conn, reference)?.is_some() {
                        return Err(RecordError::NotHeld);
                    }
                }
                let payment = payments::insert(
                    conn,
                    &NewPayment {
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
                    },
                )?;
                events::payment_recorded(conn, &payment, naive(now))?;
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

/// Gives the link back after an attempt whose payment failed. The payment is canceled first: a
/// browser still holding its client secret can then never confirm it later.
pub async fn abandon_attempt(state: &AppState, session: &CheckoutSession) -> Result<(), ApiError> {
    if let Some(reference) = &session.gateway_payment_ref {
        if let Err(e) = state.gateway.cancel_payment(reference).await {
            tracing::warn!(payment = %reference, error = %e, "canceling a failed payment failed");
        }
    }
    release_attempt(
        state,
        session.id,
        session.payment_attempts,
        session.promo_code_id,
    )
    .await
}

/// Gives the link back after an attempt that took no money, with its promo redemption. Only the
/// attempt that holds the link can give it back.
pub async fn release_attempt(
    state: &AppState,
    session_id: i64,
    attempt: i32,
    promo_id: Option<i64>,
) -> Result<(), ApiError> {
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<(), ApiError> {
            if checkout_sessions::release_claim(conn, session_id, attempt)? == 1 {
                if let Some(promo_id) = promo_id {
                    promo_codes::release_redemption(conn, promo_id)?;
                }
            }
            Ok(())
        })
    })
    .await
}
