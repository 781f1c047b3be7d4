//! The shopper's payment: claim the link as a new attempt, save the card the browser submitted,
//! start the charge (its reference is stored before any money moves), confirm it, and record.
//! A bank that asks for 3-D Secure leaves the attempt open until the browser has done it.

use chrono::{DateTime, Utc};

use crate::clock::naive;
use crate::db::write_transaction;
use crate::db::{run_db, run_db_as};
use crate::domain::locale::Lang;
use crate::error::ApiError;
use crate::gateway::{
    CardSubmission, ChargeKind, ChargeOutcome, ChargeRequest, GatewayError, PaymentStatus, Purpose,
    SavedCard,
};
use crate::models::checkout_sessions::{self, CheckoutSession};
use crate::models::customers;
use crate::models::promo_codes;
use crate::models::subscriptions;
use crate::services::events;
use crate::services::outbox::{self, Delivery};
use crate::state::AppState;

use super::attempt;
use super::record::RecordError;
use super::{
    count_attempt, view, Attempt, Charged, CheckoutError, CheckoutView, PayOutcome, RetryReason,
    SwitchView,
};

/// A card setup for the shopper who pressed the button on the checkout page (Stripe): the
/// client secret the browser confirms. Created on that press, never on a page view, so reloads
/// of a link cost nothing at the gateway; the gateway's customer is created with the first one.
/// A switch of plan takes no card, and a link that cannot be paid any more gets its refusal.
pub async fn setup_card(state: &AppState, token: &str) -> Result<String, CheckoutError> {
    let view = view(state, token).await?;
    let lang = view.lang;
    if view.switch.is_some() {
        return Err(CheckoutError::Failed(
            lang,
            ApiError::conflict("no_card_needed", "this change of plan takes no card"),
        ));
    }
    let customer_ref = gateway_customer(state, &view.session)
        .await
        .map_err(|e| CheckoutError::Failed(lang, e))?;
    // The attempt this card is for: the next one, as stored at the press.
    let attempt = view.session.payment_attempts + 1;
    let purpose = Purpose::Checkout {
        session_id: view.session.id,
        attempt,
    };
    // One setup per press: a setup already confirmed cannot take another card.
    let nonce = crate::domain::session_token::nonce()
        .map_err(|e| CheckoutError::Failed(lang, ApiError::internal(e)))?;
    let key = format!("checkout-{}-{attempt}-{nonce}", view.session.id);
    state
        .gateway
        .setup_card(&customer_ref, &purpose, &key)
        .await
        .map_err(|e| CheckoutError::Failed(lang, ApiError::from(e)))
}

/// The gateway's customer of the session's user, created once and kept on our customer row.
pub(super) async fn gateway_customer(
    state: &AppState,
    session: &CheckoutSession,
) -> Result<String, ApiError> {
    let (user_id, email, name) = (
        session.user_id.clone(),
        session.user_email.clone(),
        session.user_full_name.clone(),
    );
    let now = naive(state.clock.now());
    let customer = run_db(&state.pool, move |conn| {
        Ok(customers::ensure(
            conn,
            &user_id,
            &email,
            name.as_deref(),
            now,
        )?)
    })
    .await?;
    crate::services::customers::gateway_customer(state, &customer).await
}

/// Pays a checkout link with the card the browser submitted.
pub async fn pay(
    state: &AppState,
    token: &str,
    card: CardSubmission,
) -> Result<PayOutcome, CheckoutError> {
    let view = view(state, token).await?;
    pay_view(state, view, card).await
}

/// A `setup_intent.succeeded` whose shopper never posted the page: pay as the page would have,
/// but only while no attempt was made since that page was shown (after a decline the shopper has
/// moved on, and that card is not charged behind their back).
pub async fn settle_setup(
    state: &AppState,
    session_id: i64,
    attempt: i32,
    setup_reference: &str,
) -> Result<(), ApiError> {
    let now = naive(state.clock.now());
    let view = run_db(&state.pool, move |conn| {
        match checkout_sessions::find(conn, session_id)? {
            Some(s)
                if s.status == checkout_sessions::OPEN
                    && s.expires_at > now
                    && s.payment_attempts + 1 == attempt =>
            {
                super::load_view(conn, s, now)
            }
            _ => Ok(None),
        }
    })
    .await?;
    let Some(view) = view else {
        return Ok(());
    };
    match pay_view(state, view, CardSubmission::Setup(setup_reference.into())).await {
        Ok(_) | Err(CheckoutError::Retry(..)) | Err(CheckoutError::InProgress(_)) => Ok(()),
        Err(CheckoutError::Failed(_, e)) => Err(e),
        Err(_) => Ok(()),
    }
}

async fn pay_view(
    state: &AppState,
    view: CheckoutView,
    card: CardSubmission,
) -> Result<PayOutcome, CheckoutError> {
    let lang = view.lang;
    let fail = move |e: ApiError| CheckoutError::Failed(lang, e);
    let retry = |view: &CheckoutView, reason| CheckoutError::Retry(Box::new(view.clone()), reason);

    // 1. Claim the link (and the promo redemption) as a new attempt: no second submission can
    //    pay it, and the attempt's number keys its charge.
    let now = state.clock.now();
    let attempt = match claim_for(state, &view, now).await {
        Ok(Ok(attempt)) => attempt,
        Ok(Err(reason)) => {
            count_attempt(state, &reason);
            return Err(retry(&view, reason));
        }
        Err(RecordError::AlreadySubscribed) | Err(RecordError::NotHeld) => {
            return Err(CheckoutError::InProgress(lang))
        }
        Err(RecordError::Other(e)) => return Err(fail(e)),
    };

    if let Some(switch) = &view.switch {
        return switch_plan(state, &view, switch, attempt, now)
            .await
            .map_err(|e| match e {
                RecordError::Other(e) => fail(e),
                _ => CheckoutError::InProgress(lang),
            });
    }

    // 2. Save the card the browser submitted (read back from the gateway, never trusted).
    let saved = match save_card(state, &view, &attempt, card).await {
        Ok(saved) => saved,
        Err(reason) => {
            attempt::release(state, &attempt).await.map_err(fail)?;
            count_attempt(state, &reason);
            return Err(retry(&view, reason));
        }
    };
    let amount = view.due_today();
    let discount_amount = if view.trial_ends_at.is_some() {
        0
    } else {
        view.price.amount - view.discounted.amount
    };
    let charged = Charged {
        card: saved,
        charge_reference: None,
        amount,
        discount_amount,
    };
    if charged.amount.amount == 0 {
        // A trial or a 100 % code: the saved card is all that is needed.
        return attempt::finish(state, &view, &attempt, charged, now)
            .await
            .map_err(fail);
    }

    charge(state, &view, &attempt, charged, now).await
}

/// Steps 3 and 4 of a payment: start the charge and store its reference before any money moves
/// (from then on the payment can always be found again: reconciliation, webhook), then take the
/// money.
async fn charge(
    state: &AppState,
    view: &CheckoutView,
    attempt: &Attempt,
    mut charged: Charged,
    now: DateTime<Utc>,
) -> Result<PayOutcome, CheckoutError> {
    let lang = view.lang;
    let fail = move |e: ApiError| CheckoutError::Failed(lang, e);
    let retry = |view: &CheckoutView, reason| CheckoutError::Retry(Box::new(view.clone()), reason);
    // 3. Start the charge and store its reference before any money moves: from here on, the
    //    payment can always be found again (reconciliation, webhook).
    let request = ChargeRequest {
        customer_ref: &attempt.customer_ref,
        card_ref: &charged.card.reference,
        amount: &charged.amount,
        kind: ChargeKind::Checkout,
        idempotency_key: &attempt.key,
        metadata: Purpose::Checkout {
            session_id: view.session.id,
            attempt: attempt.number,
        }
        .metadata(),
    };
    let reference = match state.gateway.start_charge(&request).await {
        Ok(reference) => reference,
        Err(e) => {
            tracing::warn!(error = %e, "gateway failed while starting a charge");
            attempt::release(state, attempt).await.map_err(fail)?;
            count_attempt(state, &RetryReason::GatewayFailed);
            return Err(retry(view, RetryReason::GatewayFailed));
        }
    };
    if let Err(e) = attempt::remember_payment(state, attempt, &reference).await {
        let _ = state.gateway.cancel_payment(&reference).await;
        return Err(fail(e));
    }

    // 4. Take the money.
    match state.gateway.confirm_charge(&reference).await {
        Ok(ChargeOutcome::Succeeded { reference }) => {
            charged.charge_reference = Some(reference);
            attempt::finish(state, view, attempt, charged, now)
                .await
                .map_err(fail)
        }
        Ok(ChargeOutcome::Declined { .. }) => {
            let _ = state.gateway.cancel_payment(&reference).await;
            attempt::release(state, attempt).await.map_err(fail)?;
            count_attempt(state, &RetryReason::Declined);
            Err(retry(view, RetryReason::Declined))
        }
        Ok(ChargeOutcome::RequiresAction { reference }) => {
            authenticate(state, view, attempt, &reference).await
        }
        // Not taken yet, nor failed: the attempt keeps the link until the gateway settles it
        // (its webhook, or reconciliation), and the shopper waits on the "activating" page.
        Ok(ChargeOutcome::Processing { .. }) => Ok(PayOutcome::Activating(lang)),
        Err(e) => {
            // Unknown whether money moved: the attempt keeps the link and reconciliation asks the
            // gateway; the shopper waits on the "activating" page.
            tracing::warn!(error = %e, checkout_session_id = view.session.id, "gateway failed while confirming a charge; reconciliation will settle it");
            Ok(PayOutcome::Activating(lang))
        }
    }
}

/// The page that lets the shopper authenticate, or the decline if that cannot be offered.
async fn authenticate(
    state: &AppState,
    view: &CheckoutView,
    attempt: &Attempt,
    reference: &str,
) -> Result<PayOutcome, CheckoutError> {
    match state.gateway.authentication(reference).await {
        Ok(Some(step)) => Ok(PayOutcome::Authenticate(view.lang, step)),
        // Unknown where the payment stands: reconciliation reads it again, the shopper waits.
        Err(e) => {
            tracing::warn!(error = %e, checkout_session_id = view.session.id, "reading a payment to authenticate failed; reconciliation will settle it");
            Ok(PayOutcome::Activating(view.lang))
        }
        Ok(None) => {
            let _ = state.gateway.cancel_payment(reference).await;
            attempt::release(state, attempt)
                .await
                .map_err(|e| CheckoutError::Failed(view.lang, e))?;
            Err(CheckoutError::Retry(
                Box::new(view.clone()),
                RetryReason::Declined,
            ))
        }
    }
}

/// A shopper back on a link whose payment waits for their bank's step (a reload, a second tab):
/// that step again, instead of "in progress".
pub async fn pending_authentication(state: &AppState, token: &str) -> Option<PayOutcome> {
    let token_hash = crate::domain::session_token::hash_if_well_formed(token)?;
    let session = run_db(&state.pool, move |conn| {
        Ok(checkout_sessions::find_by_token_hash(conn, &token_hash)?)
    })
    .await
    .ok()??;
    if session.status != checkout_sessions::PROCESSING {
        return None;
    }
    let reference = session.gateway_payment_ref?;
    match state.gateway.authentication(&reference).await {
        Ok(Some(step)) => Some(PayOutcome::Authenticate(
            Lang::negotiate(&session.locale),
            step,
        )),
        _ => None,
    }
}

/// After the browser's 3-D Secure step: reads the payment back and records it, or gives the
/// link back for another try.
pub async fn confirm(state: &AppState, token: &str) -> Result<PayOutcome, CheckoutError> {
    let token_hash =
        crate::domain::session_token::hash_if_well_formed(token).ok_or(CheckoutError::NotFound)?;
    let now = state.clock.now();
    let view = run_db(
        &state.pool,
        move |conn| match checkout_sessions::find_by_token_hash(conn, &token_hash)? {
            Some(session) => super::load_view(conn, session, naive(now)),
            None => Ok(None),
        },
    )
    .await
    .map_err(|e| CheckoutError::Failed(Lang::En, e))?
    .ok_or(CheckoutError::NotFound)?;
    let lang = view.lang;
    let reference = match (
        &view.session.gateway_payment_ref,
        view.session.status.as_str(),
    ) {
        (Some(reference), checkout_sessions::PROCESSING) => reference.clone(),
        // Completed meanwhile (by a webhook, say), or never waiting for authentication.
        _ => return super::activation(state, token).await,
    };
    let payment = state
        .gateway
        .payment(&reference)
        .await
        .map_err(|e| CheckoutError::Failed(lang, ApiError::from(e)))?;
    match payment.status {
        PaymentStatus::Succeeded => {
            attempt::settle(state, view.session.id, &payment)
                .await
                .map_err(|e| CheckoutError::Failed(lang, e))?;
            super::activation(state, token).await
        }
        PaymentStatus::Processing | PaymentStatus::RequiresConfirmation => {
            Ok(PayOutcome::Activating(lang))
        }
        PaymentStatus::RequiresAction => match state.gateway.authentication(&reference).await {
            Ok(Some(step)) => Ok(PayOutcome::Authenticate(lang, step)),
            _ => Ok(PayOutcome::Activating(lang)),
        },
        PaymentStatus::Failed => {
            attempt::abandon(state, &view.session)
                .await
                .map_err(|e| CheckoutError::Failed(lang, e))?;
            count_attempt(state, &RetryReason::Declined);
            let view = super::view(state, token).await?;
            Err(CheckoutError::Retry(Box::new(view), RetryReason::Declined))
        }
    }
}

/// The gateway's customer of the shopper (none for a switch of plan), then the claim.
async fn claim_for(
    state: &AppState,
    view: &CheckoutView,
    now: DateTime<Utc>,
) -> Result<Result<Attempt, RetryReason>, RecordError> {
    let customer_ref = if view.switch.is_some() {
        String::new()
    } else {
        gateway_customer(state, &view.session).await?
    };
    attempt::claim(state, view, customer_ref, now).await
}

/// Saves the card for the customer the claim found (`attempt.customer_ref`).
async fn save_card(
    state: &AppState,
    view: &CheckoutView,
    attempt: &Attempt,
    card: CardSubmission,
) -> Result<SavedCard, RetryReason> {
    let purpose = Purpose::Checkout {
        session_id: view.session.id,
        attempt: attempt.number,
    };
    let saved = state
        .gateway
        .save_card(&attempt.customer_ref, &purpose, card)
        .await
        .map_err(|e| match e {
            GatewayError::InvalidCard(field) => RetryReason::InvalidCard(field),
            GatewayError::Declined(_) => RetryReason::Declined,
            GatewayError::Mismatch => RetryReason::InvalidCard("card"),
            GatewayError::Timeout | GatewayError::Unavailable(_) => {
                tracing::warn!(error = %e, "gateway failed while saving a card");
                RetryReason::GatewayFailed
            }
        })?;
    // Kept on the customer at once: a charge settled later (webhook, reconciliation) needs it.
    let (user_id, card, now) = (
        view.session.user_id.clone(),
        saved.clone(),
        naive(state.clock.now()),
    );
    run_db(&state.pool, move |conn| {
        if let Some(customer) = customers::find_by_user_id(conn, &user_id)? {
            customers::set_payment_method(
                conn,
                customer.id,
                &card.reference,
                &card.brand,
                &card.last4,
                now,
            )?;
        }
        Ok(())
    })
    .await
    .map_err(|_| RetryReason::GatewayFailed)?;
    Ok(saved)
}

/// Records a switch: the new plan is pending until the current period ends (nothing is charged
/// now); a canceled subscription is resumed, which Treefort must confirm before the redirect.
async fn switch_plan(
    state: &AppState,
    view: &CheckoutView,
    switch: &SwitchView,
    attempt: Attempt,
    now: DateTime<Utc>,
) -> Result<PayOutcome, RecordError> {
    let current = switch.subscription.clone();
    let session = view.session.clone();
    let new_plan = view.plan.id;
    let promo = view.promo.clone();
    let resumes = current.canceled_at.is_some();
    let entry = run_db_as(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<Option<i64>, RecordError> {
            if !checkout_sessions::complete_claim(
                conn,
                session.id,
                attempt.number,
                current.id,
                naive(now),
            )? {
                return Err(RecordError::NotHeld);
            }
            let mut changes = subscriptions::SubscriptionChanges {
                pending_plan_id: Some((new_plan != current.plan_id).then_some(new_plan)),
                canceled_at: resumes.then_some(None),
                updated_at: Some(naive(now)),
                ..Default::default()
            };
            if let Some(promo) = &promo {
                // A code given at a switch discounts the new plan's charges, from the first one.
                changes.promo_code_id = Some(Some(promo.id));
                changes.promo_periods_left = Some(promo.discounted_charges());
                promo_codes::record_redemption(
                    conn,
                    promo.id,
                    &session.user_id,
                    current.id,
                    naive(now),
                )?;
            }
            subscriptions::update(conn, current.id, &changes)?;
            if new_plan != current.plan_id {
                let change = serde_json::json!({
                    "fromPlanId": current.plan_id,
                    "toPlanId": new_plan,
                    "effectiveAt": crate::clock::rfc3339(current.current_period_ends_at.and_utc()),
                });
                events::subscription(
                    conn,
                    events::SUBSCRIPTION_PLAN_CHANGED,
                    current.id,
                    naive(now),
                    Some(("planChange", change)),
                )?;
            }
            if resumes {
                events::subscription(
                    conn,
                    events::SUBSCRIPTION_RESUMED,
                    current.id,
                    naive(now),
                    None,
                )?;
                let body = crate::treefort::UpdateSubscription::resume();
                return Ok(Some(
                    outbox::enqueue(
                        conn,
                        current.id,
                        crate::models::outbox::UPDATE,
                        &body,
                        naive(now),
                    )?
                    .id,
                ));
            }
            Ok(None)
        })
    })
    .await?;
    state.metrics.counters.checkout_payments.inc(["switched"]);
    let delivered = match entry {
        None => true,
        Some(id) => matches!(outbox::deliver(state, id).await, Ok(Delivery::Delivered)),
    };
    Ok(if delivered {
        PayOutcome::Redirect(view.session.success_url.clone())
    } else {
        PayOutcome::Activating(view.lang)
    })
}
