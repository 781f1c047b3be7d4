//! Reconciliation of payment attempts nobody finished: the shopper closed the tab, the process
//! died, a webhook was lost. An attempt that has held its link for a few minutes is looked up at
//! the gateway by the payment reference stored before any money moved, then completed (money
//! taken), left alone (the gateway is still working, or the shopper is authenticating), or given
//! back (nothing taken; a payment still awaiting authentication is canceled first). An attempt
//! that started no payment is given back without asking the gateway. Attempts with a payment are
//! read a few at a time, and one found unfinished is read again after 1, 2, 4, then every 8
//! minutes, so a crowd of abandoned 3-D Secure steps neither hammers Stripe nor holds up the rest.

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;

use crate::clock::naive;
use crate::db::run_db;
use crate::error::ApiError;
use crate::gateway::PaymentStatus;
use crate::models::checkout_sessions::{self, CheckoutSession};
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

/// How many attempts with a payment are looked up at the gateway at once.
const CONCURRENT_LOOKUPS: usize = 8;
/// The most attempts of each kind one round looks at. The two kinds are found separately, so
/// neither waits behind the other.
const BATCH: i64 = 50;
/// The wait before an unfinished payment is looked up again: 1 minute, doubling per look-up, at
/// most 8 (Stripe is asked a handful of times over a 30-minute authentication, not every round).
const FIRST_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);
const LAST_RECHECK: std::time::Duration = std::time::Duration::from_secs(8 * 60);

pub async fn reconcile_stale_claims(state: &AppState) -> Result<Reconciled, ApiError> {
    let now = state.clock.now();
    let (charged_before, uncharged_before) = (
        naive(now - RECONCILE_AFTER),
        naive(now - RELEASE_UNCHARGED_AFTER),
    );
    let (uncharged, charged) = run_db(&state.pool, move |conn| {
        Ok((
            checkout_sessions::list_uncharged_claims(conn, uncharged_before, BATCH)?,
            checkout_sessions::list_charged_claims_due(conn, charged_before, naive(now), BATCH)?,
        ))
    })
    .await?;
    let mut done = Reconciled::default();
    // No payment was started: nothing can have been taken, and no gateway call is needed.
    for session in uncharged {
        let released = super::attempt::release_link(
            state,
            session.id,
            session.payment_attempts,
            session.promo_code_id,
        )
        .await;
        match released {
            Ok(()) => done.released += 1,
            Err(e) => {
                done.waiting += 1;
                tracing::warn!(checkout_session_id = session.id, error = %e, "giving back an uncharged checkout attempt failed; will try again");
            }
        }
    }
    let mut lookups = futures_util::stream::iter(charged)
        .map(|session| async move { (reconcile_one(state, &session, now).await, session) })
        .buffer_unordered(CONCURRENT_LOOKUPS);
    while let Some((step, session)) = lookups.next().await {
        match step {
            Ok(Step::Completed) => done.completed += 1,
            Ok(Step::Released) => done.released += 1,
            Ok(Step::Waiting) => {
                done.waiting += 1;
                check_later(state, &session, now).await;
            }
            Err(e) => {
                done.waiting += 1;
                tracing::warn!(checkout_session_id = session.id, error = %e, "reconciling a checkout attempt failed; will try again");
                check_later(state, &session, now).await;
            }
        }
    }
    Ok(done)
}

/// Puts the next look-up of an unfinished attempt off (see `FIRST_RECHECK`).
async fn check_later(state: &AppState, session: &CheckoutSession, now: DateTime<Utc>) {
    let checks = u32::try_from(session.gateway_checks).unwrap_or(0) + 1;
    let wait = crate::domain::backoff::exponential(FIRST_RECHECK, checks, LAST_RECHECK);
    let next = naive(now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::minutes(1)));
    let (id, attempt) = (session.id, session.payment_attempts);
    let noted = run_db(&state.pool, move |conn| {
        Ok(checkout_sessions::note_checked(conn, id, attempt, next)?)
    })
    .await;
    if let Err(e) = noted {
        tracing::warn!(checkout_session_id = id, error = %e, "noting a checkout look-up failed");
    }
}

enum Step {
    Completed,
    Released,
    Waiting,
}

async fn reconcile_one(
    state: &AppState,
    session: &CheckoutSession,
    now: DateTime<Utc>,
) -> Result<Step, ApiError> {
    let Some(reference) = &session.gateway_payment_ref else {
        return Ok(Step::Waiting);
    };
    let mut payment = state
        .gateway
        .payment(reference)
        .await
        .map_err(ApiError::from)?;
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
            .map_err(ApiError::from)?;
    }
    match payment.status {
        PaymentStatus::Succeeded => {
            super::attempt::settle(state, session.id, &payment).await?;
            Ok(Step::Completed)
        }
        PaymentStatus::Failed => {
            super::attempt::abandon(state, session).await?;
            Ok(Step::Released)
        }
        PaymentStatus::RequiresAction
        | PaymentStatus::RequiresConfirmation
        | PaymentStatus::Processing => Ok(Step::Waiting),
    }
}
