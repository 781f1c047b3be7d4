//! Reconciliation of payment attempts nobody finished: the shopper closed the tab, the process
//! died, a webhook was lost. An attempt that has held its link for a few minutes is looked up at
//! the gateway by the payment reference stored before any money moved, then completed (money
//! taken), left alone (the gateway is still working, or the shopper is authenticating), or given
//! back (nothing taken; a payment still awaiting authentication is canceled first).

use chrono::TimeDelta;

use crate::error::ApiError;
use crate::gateway::PaymentStatus;
use crate::models::checkout_sessions::{self, CheckoutSession};
use crate::services::{naive, run_db};
use crate::state::AppState;

/// How long an attempt may hold its link before it is looked up.
pub const RECONCILE_AFTER: TimeDelta = TimeDelta::minutes(3);
/// How long an attempt that has not started a payment may hold its link: after that it is given
/// back (a process killed mid-attempt must not lock the user out). Safe even if the attempt is
/// still alive: it must store its payment's reference before taking money, and that fails once
/// the link was given back.
pub const RELEASE_UNCHARGED_AFTER: TimeDelta = TimeDelta::seconds(15);
/// How long a shopper may take over 3-D Secure before the payment is given up.
pub const AUTHENTICATION_WINDOW: TimeDelta = TimeDelta::minutes(30);

/// What reconciliation did with each attempt it looked at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub completed: usize,
    pub released: usize,
    pub waiting: usize,
}

pub async fn reconcile_stale_claims(state: &AppState) -> Result<Reconciled, ApiError> {
    let now = state.clock.now();
    let (charged_before, uncharged_before) = (
        naive(now - RECONCILE_AFTER),
        naive(now - RELEASE_UNCHARGED_AFTER),
    );
    let stale = run_db(&state.pool, move |conn| {
        let mut stale = checkout_sessions::list_stale_claims(conn, uncharged_before, 50)?;
        // Attempts with a payment are looked up at the gateway only after a few minutes: the
        // shopper may be at their bank's 3-D Secure step.
        stale.retain(|s| s.gateway_payment_ref.is_none() || s.claimed_at < Some(charged_before));
        Ok(stale)
    })
    .await?;
    let mut done = Reconciled::default();
    for session in stale {
        match reconcile_one(state, &session, now).await {
            Ok(Step::Completed) => done.completed += 1,
            Ok(Step::Released) => done.released += 1,
            Ok(Step::Waiting) => done.waiting += 1,
            Err(e) => {
                done.waiting += 1;
                tracing::warn!(checkout_session_id = session.id, error = %e, "reconciling a checkout attempt failed; will try again");
            }
        }
    }
    Ok(done)
}

enum Step {
    Completed,
    Released,
    Waiting,
}

async fn reconcile_one(
    state: &AppState,
    session: &CheckoutSession,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Step, ApiError> {
    let release = || {
        super::record::release_attempt(
            state,
            session.id,
            session.payment_attempts,
            session.promo_code_id,
        )
    };
    // No payment was started: nothing can have been taken.
    let Some(reference) = &session.gateway_payment_ref else {
        release().await?;
        return Ok(Step::Released);
    };
    let gateway_error = super::pay::gateway_api_error;
    let mut payment = state
        .gateway
        .payment(reference)
        .await
        .map_err(gateway_error)?;
    let claimed_at = session.claimed_at.map(|t| t.and_utc()).unwrap_or(now);
    // A payment never confirmed (the shopper's request ended between starting and confirming it)
    // is not confirmed minutes later behind the shopper's back; one whose authentication was
    // abandoned neither.
    let give_up = match payment.status {
        PaymentStatus::RequiresConfirmation => true,
        PaymentStatus::RequiresAction => now - claimed_at >= AUTHENTICATION_WINDOW,
        _ => false,
    };
    if give_up {
        // Given up so that it can never be taken later, then read again (it may have just
        // succeeded).
        if let Err(e) = state.gateway.cancel_payment(reference).await {
            tracing::warn!(error = %e, "canceling an abandoned payment failed");
        }
        payment = state
            .gateway
            .payment(reference)
            .await
            .map_err(gateway_error)?;
    }
    match payment.status {
        PaymentStatus::Succeeded => {
            super::record::settle(state, session.id, &payment).await?;
            Ok(Step::Completed)
        }
        PaymentStatus::Failed => {
            super::record::abandon_attempt(state, session).await?;
            Ok(Step::Released)
        }
        PaymentStatus::RequiresAction
        | PaymentStatus::RequiresConfirmation
        | PaymentStatus::Processing => Ok(Step::Waiting),
    }
}
