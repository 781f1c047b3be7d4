//! Renewal charges the gateway settles outside a turn: a payment taken after the card holder
//! authenticated, or one still processing when its turn ended, is recorded by the next turn or
//! refunded when no renewal can record it; a failure is read by the next round.

use super::*;

/// What becomes of a renewal charge the gateway reports as taken that no renewal recorded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenCharge {
    /// A renewal recorded it.
    Recorded,
    /// A renewal will record it (or may still): ask again later.
    Pending,
    /// No renewal can ever record it: written down as unrecorded, to be refunded.
    Refund,
}

/// The one rule that decides whether a renewal charge the gateway took is recorded or refunded,
/// whatever order its webhook, a lease's expiry and the worker's retry come in. It is decided
/// under the subscription's lease, as a wave records (a wave records only while it holds it):
/// - recorded already: nothing to do;
/// - the lease is held by a wave, or a cancellation is being sent: later;
/// - the subscription is live and still renews the period the charge was made for (the charge
///   carries its current charge key), or the charge is the payment its past-due period awaits:
///   made due now, so the next round records it (charged again under the same key, the gateway
///   answers with this charge);
/// - otherwise (the period moved on, the subscription was canceled or ended) no renewal can
///   record it: it is written to `unrecorded_charges` in the same transaction, and from then on no
///   recording can take it.
pub async fn settle_taken_charge(
    state: &AppState,
    subscription_id: i64,
    payment: &crate::gateway::PaymentState,
) -> Result<TakenCharge, ApiError> {
    let now = naive(state.clock.now());
    // Not the wave's own name: a wave of this process whose lease ran out must not record after
    // this decision.
    let owner = format!("{}:settle", state.instance_id);
    let gateway = state.gateway.name();
    let payment = payment.clone();
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<TakenCharge, ApiError> {
            let reference = payment.reference.as_str();
            if payments::find_by_reference(conn, reference)?
                .is_some_and(|p| p.status == payments::SUCCEEDED)
            {
                return Ok(TakenCharge::Recorded);
            }
            if unrecorded_charges::find(conn, reference)?.is_some() {
                return Ok(TakenCharge::Refund);
            }
            let sub = subscriptions::find(conn, subscription_id)?;
            let live = sub.as_ref().filter(|s| s.deactivated_at.is_none());
            if let Some(sub) = live {
                let lease_end = now + TimeDelta::minutes(1);
                if !subscriptions::claim_for_change(conn, sub.id, &owner, now, lease_end)? {
                    return Ok(TakenCharge::Pending);
                }
            }
            let verdict = match live {
                Some(sub) if sub.cancel_requested_at.is_some() => TakenCharge::Pending,
                Some(sub) if renews_with(conn, sub, &payment)? => TakenCharge::Pending,
                _ => TakenCharge::Refund,
            };
            if let Some(sub) = live {
                let due_now = verdict == TakenCharge::Pending
                    && sub.cancel_requested_at.is_none()
                    && sub.next_action_at.is_none_or(|at| at > now);
                let changes = SubscriptionChanges {
                    next_action_at: due_now.then_some(Some(now)),
                    ..Default::default()
                }
                .releasing(now);
                subscriptions::update_held_by(conn, sub.id, &owner, &changes)?;
            }
            if verdict == TakenCharge::Refund {
                let reason = match (&sub, live) {
                    (None, _) => "its subscription does not exist",
                    (Some(_), None) => "its subscription had ended",
                    (Some(_), Some(_)) => "its subscription no longer renews the period it paid",
                };
                unrecorded_charges::insert(
                    conn,
                    &NewUnrecordedCharge::new(gateway, reference, &payment.amount, reason, now),
                )?;
            }
            Ok(verdict)
        })
    })
    .await
}

/// Whether the worker's next turn on `sub` records `payment`: a live, uncanceled subscription whose
/// current charge key the payment carries, or whose past-due period awaits this very payment.
pub(super) fn renews_with(
    conn: &mut crate::db::AnyConnection,
    sub: &Subscription,
    payment: &crate::gateway::PaymentState,
) -> Result<bool, ApiError> {
    if sub.canceled_at.is_some() || sub.deactivated_at.is_some() {
        return Ok(false);
    }
    if payment.metadata.get("attempt_key") == Some(&renewal_key(sub)) {
        return Ok(true);
    }
    let awaited = match sub.past_due_since {
        Some(since) => payments::find_awaiting_authentication(conn, sub.id, since)?,
        None => None,
    };
    Ok(awaited.as_deref() == Some(payment.reference.as_str()))
}

/// A renewal payment that failed after it had been processing: the subscription is made due, so
/// the next round reads the failure and records the decline. One recorded as paid cannot fail
/// later (only settled payments are recorded); if the gateway says so, support staff are told.
pub async fn payment_failed(
    state: &AppState,
    subscription_id: i64,
    reference: &str,
) -> Result<(), ApiError> {
    let now = naive(state.clock.now());
    let reference = reference.to_string();
    let recorded = run_db(&state.pool, move |conn| {
        let recorded = payments::find_by_reference(conn, &reference)?
            .filter(|p| p.status == payments::SUCCEEDED);
        if recorded.is_none() {
            subscriptions::make_due_if_renewing(conn, subscription_id, now)?;
        }
        Ok(recorded)
    })
    .await?;
    if let Some(payment) = recorded {
        tracing::error!(
            payment_id = payment.id,
            "the gateway reports a payment recorded as paid as failed; check it in the gateway's dashboard"
        );
    }
    Ok(())
}

/// The wave's writes, where a charge that was written down as unrecorded (and so refunded) is
/// never recorded as paid: that turn charges anew under a new key, at once.
pub(super) fn refuse_unrecorded(
    conn: &mut crate::db::AnyConnection,
    writes: Vec<Write>,
    now: NaiveDateTime,
) -> Result<Vec<Write>, ApiError> {
    let paid: Vec<&str> = writes
        .iter()
        .filter_map(|w| w.payment.as_ref())
        .filter(|p| p.status == payments::SUCCEEDED)
        .filter_map(|p| p.gateway_reference.as_deref())
        .collect();
    let refused = unrecorded_charges::among(conn, &paid)?;
    if refused.is_empty() {
        return Ok(writes);
    }
    Ok(writes
        .into_iter()
        .map(|w| {
            let reference = w.payment.as_ref().and_then(|p| p.gateway_reference.as_ref());
            match reference {
                Some(r) if refused.contains(r) => {
                    tracing::error!(subscription_id = w.subscription.id, payment = %r, "a renewal charge already refunded as unrecorded is not recorded; charging anew");
                    decide::charge_anew(w.subscription, now)
                }
                _ => w,
            }
        })
        .collect())
}
