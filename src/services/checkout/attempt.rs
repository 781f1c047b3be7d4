//! The life of one payment attempt on a checkout link, in one place: claimed (numbered, with its
//! promo redemption), its gateway payment remembered before any money moves, then finished
//! (recorded by `record`, or the money given back), settled from what the gateway reports, or
//! released and abandoned so the shopper may try again. Only the attempt holding the link can
//! move it on.

use chrono::{DateTime, Utc};

use crate::clock::naive;
use crate::db::{run_db, run_db_as, write_transaction};
use crate::error::ApiError;
use crate::gateway::{PaymentState, PaymentStatus, SavedCard};
use crate::models::checkout_sessions::{self, CheckoutSession};
use crate::models::{customers, promo_codes, subscriptions};
use crate::services::outbox::{self, Delivery};
use crate::state::AppState;

use super::record::{is_recorded, record_paid_checkout, refund_unrecorded, RecordError};
use super::{
    already_subscribed, count_attempt, is_already_on, load_view, Attempt, Charged, CheckoutView,
    PayOutcome, RetryReason,
};

/// Claims the link as a new attempt, checks the user's subscription state and takes the promo
/// redemption, in one transaction.
pub(super) async fn claim(
    state: &AppState,
    view: &CheckoutView,
    customer_ref: String,
    now: DateTime<Utc>,
) -> Result<Result<Attempt, RetryReason>, RecordError> {
    let session = view.session.clone();
    let (plan_id, expects_switch) = (view.plan.id, view.switch.is_some());
    let max_attempts = state.settings.checkout_max_failed_attempts;
    run_db_as(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<_, RecordError> {
            // Claim first: while another payment of this user is in progress the one-payment-per-
            // user index refuses the claim, and once it completed, the check below sees its
            // subscription (checking first left a window on PostgreSQL's READ COMMITTED).
            let Some(number) =
                checkout_sessions::claim_for_payment(conn, session.id, naive(now), max_attempts)?
            else {
                return Err(RecordError::NotHeld);
            };
            let attempt = Attempt::of(
                &CheckoutSession {
                    payment_attempts: number,
                    ..session.clone()
                },
                Some(customer_ref),
            );
            // A switch only if the page offered one: never switch a plan behind a payment form.
            let live = subscriptions::find_live_for_user(conn, &session.user_id)?;
            let unchanged = live.as_ref().is_some_and(|l| is_already_on(l, plan_id));
            if unchanged || live.is_some() != expects_switch {
                checkout_sessions::release_claim(conn, session.id, number)?;
                return Ok(Err(RetryReason::AlreadySubscribed));
            }
            if let Some(promo_id) = session.promo_code_id {
                if !promo_codes::take_redemption(conn, promo_id, naive(now))? {
                    checkout_sessions::release_claim(conn, session.id, number)?;
                    return Ok(Err(RetryReason::PromoExhausted));
                }
            }
            Ok(Ok(attempt))
        })
    })
    .await
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
            state.metrics.counters.checkout_payments.inc(["paid"]);
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
                release_link(
                    state,
                    attempt.session_id,
                    attempt.number,
                    attempt.promo_code_id,
                )
                .await?;
            }
            if matches!(error, RecordError::AlreadySubscribed) && !recorded {
                count_attempt(state, &RetryReason::AlreadySubscribed);
                return Err(already_subscribed());
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
        Ok(load_view(conn, session, naive(now))?.zip(customer))
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

/// Gives the link back after an attempt whose payment failed. The payment is canceled first: a
/// browser still holding its client secret can then never confirm it later.
pub async fn abandon(state: &AppState, session: &CheckoutSession) -> Result<(), ApiError> {
    if let Some(reference) = &session.gateway_payment_ref {
        if let Err(e) = state.gateway.cancel_payment(reference).await {
            tracing::warn!(payment = %reference, error = %e, "canceling a failed payment failed");
        }
    }
    release_link(
        state,
        session.id,
        session.payment_attempts,
        session.promo_code_id,
    )
    .await
}

/// Gives the link of `attempt` back (see `release_link`).
pub(super) async fn release(state: &AppState, attempt: &Attempt) -> Result<(), ApiError> {
    release_link(
        state,
        attempt.session_id,
        attempt.number,
        attempt.promo_code_id,
    )
    .await
}

/// Gives the link back after an attempt that took no money, with its promo redemption. Only the
/// attempt that holds the link can give it back.
pub async fn release_link(
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
