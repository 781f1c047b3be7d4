//! The subscription lifecycle the worker drives: at each period end a live subscription is
//! charged and Treefort gets the new `currentPeriodEndsAt`; a declined charge is retried inside
//! the plan's grace period (after 1 day, 3 days, and on the last day) while access lasts; when grace
//! runs out, or a canceled subscription reaches its period end, Treefort gets `deactivatedAt`.
//!
//! The worker goes in waves of `WORKER_BATCH` subscriptions: one statement claims a wave with a
//! lease, a few queries read what it needs (plans, codes, customers), its charges go to the
//! gateway `WORKER_CONCURRENCY` at a time, and one transaction records them all while the leases
//! are held (a lease lasts as long as the wave's turns can take). Every charge
//! carries an idempotency key derived from the subscription, the period and the attempt, and a
//! renewal is recorded only while its lease is held: two instances never charge twice, and a wave
//! whose transaction fails is recorded turn by turn; a turn that still cannot be recorded (or
//! whose process dies) is charged again under the same key once its lease runs out, which the
//! gateway answers with the same charge (within its idempotency window: 24 hours at Stripe).

mod decide;

use std::collections::HashMap;

use futures_util::StreamExt;

use chrono::{NaiveDateTime, TimeDelta};

use crate::db::{relaxed_write_transaction, write_transaction};
use crate::domain::money::Money;
use crate::error::ApiError;
use crate::models::customers::{self, Customer};
use crate::models::outbox as outbox_rows;
use crate::models::payments::{self, NewPayment};
use crate::models::plans::{self, Plan};
use crate::models::promo_codes::{self, PromoCode};
use crate::models::subscriptions::{self, Subscription, SubscriptionChanges};
use crate::models::unrecorded_charges::{self, NewUnrecordedCharge};
use crate::state::AppState;
use crate::treefort::UpdateSubscription;

use crate::clock::{naive, utc};
use crate::db::run_db;
use crate::services::{events, outbox};

/// How long a claimed subscription stays ours, at least: its wave's record, with room to spare.
const LEASE: TimeDelta = TimeDelta::minutes(5);
/// Gateway calls one turn may make at most (read and cancel a payment awaiting authentication,
/// read it again, the customer, the charge).
const CALLS_PER_TURN: u32 = 5;
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

impl RoundStats {
    /// How many subscriptions the round took a turn for.
    pub fn handled(&self) -> usize {
        self.renewed + self.declined + self.deactivated + self.skipped
    }

    fn add(&mut self, done: &[Done]) {
        for done in done {
            match done {
                Done::Renewed { .. } => self.renewed += 1,
                Done::Declined { .. } => self.declined += 1,
                Done::Deactivated | Done::EndedByDecline => self.deactivated += 1,
                Done::Postponed | Done::LeaseLost => self.skipped += 1,
            }
        }
    }
}

/// Claims and processes up to `limit` due subscriptions, a wave at a time.
pub async fn process_due(state: &AppState, limit: i64) -> Result<RoundStats, ApiError> {
    let wave = state.settings.worker_batch.max(1) as i64;
    let concurrency = state.settings.worker_concurrency.max(1);
    // A wave's turns, at `concurrency` at a time, each of up to `CALLS_PER_TURN` gateway calls.
    let lease = LEASE
        + TimeDelta::from_std(
            state.settings.gateway_call_bound() * CALLS_PER_TURN * state.settings.worker_slots(),
        )
        .unwrap_or(TimeDelta::hours(1));
    let mut stats = RoundStats::default();
    let mut left = limit;
    // A wave is recorded while the next one is claimed and charged (its subscriptions are not
    // the recorded wave's: those are still leased), so the database's time overlaps the gateway's.
    let mut recording: Vec<Write> = Vec::new();
    // Stopping: the wave in progress is finished, no new one is claimed.
    while left > 0 && !state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        let take = left.min(wave);
        let (next, recorded) = tokio::join!(
            next_wave(state, take, lease, concurrency),
            record(state, std::mem::take(&mut recording))
        );
        stats.add(&recorded);
        let (claimed, writes) = next?;
        recording = writes;
        left -= claimed;
        if claimed < take {
            break;
        }
    }
    stats.add(&record(state, recording).await);
    Ok(stats)
}

/// Claims a wave of up to `take` due subscriptions and decides each turn (charging through the
/// gateway, `concurrency` at a time). Returns how many were claimed and what is to be recorded.
async fn next_wave(
    state: &AppState,
    take: i64,
    lease: TimeDelta,
    concurrency: usize,
) -> Result<(i64, Vec<Write>), ApiError> {
    // Each wave's leases count from its own claim: earlier waves may have taken minutes.
    let now = naive(state.clock.now());
    let owner = state.instance_id.clone();
    let (claimed, contexts) = run_db(&state.pool, move |conn| {
        // A lease lost in a crash only means the wave is taken (and charged, under the same
        // keys) again.
        let claimed = relaxed_write_transaction(conn, |conn| {
            subscriptions::claim_due(conn, &owner, now, now + lease, take)
        })?;
        let count = claimed.len() as i64;
        Ok((count, load_contexts(conn, claimed)?))
    })
    .await?;
    // Collected first: a stream holding the closure would not be `Send` for every lifetime.
    let turns: Vec<_> = contexts
        .into_iter()
        .map(|c| async move {
            let id = c.subscription.id;
            (id, decide::decide(state, c).await)
        })
        .collect();
    let decided: Vec<_> = futures_util::stream::iter(turns)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut writes = Vec::with_capacity(decided.len());
    for (id, decision) in decided {
        match decision {
            Ok(write) => writes.push(write),
            // The lease runs out by itself and a later round tries again.
            Err(e) => tracing::warn!(subscription_id = id, error = %e, "renewal failed"),
        }
    }
    Ok((claimed, writes))
}

/// What a claimed subscription's turn needs to be decided.
pub(super) struct Context {
    subscription: Subscription,
    /// The plan charged now: the pending plan of a switch, else the current one.
    plan: Plan,
    current_plan: Plan,
    promo: Option<PromoCode>,
    card: Option<String>,
    customer: Option<Customer>,
    /// A payment of this period the bank wanted authenticated, if the card holder may have done it.
    awaiting_authentication: Option<String>,
}

/// Reads what a wave needs in a few queries; a subscription whose plan is gone is left out (and
/// logged), its lease running out by itself.
fn load_contexts(
    conn: &mut crate::db::AnyConnection,
    claimed: Vec<Subscription>,
) -> Result<Vec<Context>, ApiError> {
    let plan_ids: Vec<i64> = claimed
        .iter()
        .flat_map(|s| [Some(s.plan_id), s.pending_plan_id])
        .flatten()
        .collect();
    let plans: HashMap<i64, Plan> = plans::find_many(conn, &plan_ids)?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let promo_ids: Vec<i64> = claimed.iter().filter_map(|s| s.promo_code_id).collect();
    let promos = promo_codes::find_many(conn, &promo_ids)?;
    let customer_ids: Vec<i64> = claimed.iter().map(|s| s.customer_id).collect();
    let customers = customers::find_many(conn, &customer_ids)?;
    let mut contexts = Vec::with_capacity(claimed.len());
    for subscription in claimed {
        let Some(current_plan) = plans.get(&subscription.plan_id).cloned() else {
            tracing::error!(
                subscription_id = subscription.id,
                "subscription without its plan; not renewed"
            );
            continue;
        };
        let plan = subscription
            .pending_plan_id
            .and_then(|next| plans.get(&next).cloned())
            .unwrap_or_else(|| current_plan.clone());
        // Past due is rare: its payment awaiting authentication is read one by one.
        let awaiting_authentication = match subscription.past_due_since {
            Some(since) => payments::find_awaiting_authentication(conn, subscription.id, since)?,
            None => None,
        };
        let customer = customers.get(&subscription.customer_id).cloned();
        contexts.push(Context {
            promo: subscription
                .promo_code_id
                .and_then(|p| promos.get(&p).cloned()),
            card: customer.as_ref().and_then(|c| c.payment_method_ref.clone()),
            customer,
            plan,
            current_plan,
            awaiting_authentication,
            subscription,
        });
    }
    Ok(contexts)
}

/// What a subscription's turn decided, to be recorded with its wave.
#[derive(Clone)]
pub(super) struct Write {
    /// The row as it was claimed.
    subscription: Subscription,
    changes: SubscriptionChanges,
    payment: Option<NewPayment>,
    treefort_update: Option<UpdateSubscription>,
    events: Vec<&'static str>,
    done: Done,
}

/// How a turn ended, for the round's figures and the log.
#[derive(Debug, Clone, Copy)]
pub(super) enum Done {
    Renewed {
        until: NaiveDateTime,
    },
    Declined {
        retry_at: NaiveDateTime,
    },
    /// Declined with no grace left.
    EndedByDecline,
    Deactivated,
    Postponed,
    /// Another worker took the lease before this one recorded.
    LeaseLost,
}

impl Done {
    /// The outcome's name in metrics.
    fn name(&self) -> &'static str {
        match self {
            Done::Renewed { .. } => "renewed",
            Done::Declined { .. } => "declined",
            Done::EndedByDecline => "ended_by_decline",
            Done::Deactivated => "deactivated",
            Done::Postponed => "postponed",
            Done::LeaseLost => "lease_lost",
        }
    }
}

/// Records a wave. Should its transaction fail (one row's error rolls back all), each turn is
/// recorded in a transaction of its own, so that one bad row cannot keep the others' charges
/// unrecorded; a turn that still fails is logged and its lease runs out.
async fn record(state: &AppState, writes: Vec<Write>) -> Vec<Done> {
    let one_by_one = match record_wave(state, writes.clone()).await {
        Ok(done) => return done,
        Err(e) if writes.len() > 1 => {
            tracing::warn!(error = %e, turns = writes.len(), "recording a wave failed; recording its turns one by one");
            writes
        }
        Err(e) => {
            failed(state, &writes, &e);
            return Vec::new();
        }
    };
    let mut done = Vec::with_capacity(one_by_one.len());
    for write in one_by_one {
        let turn = vec![write];
        match record_wave(state, turn.clone()).await {
            Ok(recorded) => done.extend(recorded),
            Err(e) => failed(state, &turn, &e),
        }
    }
    done
}

fn failed(state: &AppState, writes: &[Write], error: &ApiError) {
    for write in writes {
        state.metrics.counters.renewals.inc(["failed"]);
        tracing::error!(subscription_id = write.subscription.id, error = %error, "recording a renewal turn failed; its lease runs out and it is taken again under the same charge key");
    }
}

/// Records a wave in one transaction: each change applied only while this worker still holds the
/// lease (and the period is still the one it charged for), then the payments, the events and the
/// Treefort updates of those, a statement each. Changes whose lease was lost write nothing.
async fn record_wave(state: &AppState, writes: Vec<Write>) -> Result<Vec<Done>, ApiError> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let owner = state.instance_id.clone();
    let now = naive(state.clock.now());
    let done = run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<Vec<(i64, Done)>, ApiError> {
            let writes = refuse_unrecorded(conn, writes, now)?;
            let rows: Vec<_> = writes
                .iter()
                .map(|w| (w.subscription.id, w.subscription.periods_paid, &w.changes))
                .collect();
            let updated = subscriptions::update_all_if_held(conn, &owner, &rows)?;
            let mut held = Vec::with_capacity(writes.len());
            let mut done = Vec::with_capacity(writes.len());
            for write in writes {
                if updated.contains(&write.subscription.id) {
                    held.push(write);
                } else {
                    done.push((write.subscription.id, Done::LeaseLost));
                }
            }
            let new_payments: Vec<NewPayment> =
                held.iter().filter_map(|w| w.payment.clone()).collect();
            // One payment per subscription in a wave: matched back by subscription.
            let paid: HashMap<i64, payments::Payment> = payments::insert_all(conn, &new_payments)?
                .into_iter()
                .filter_map(|p| Some((p.subscription_id?, p)))
                .collect();
            let with_events: Vec<i64> = held
                .iter()
                .filter(|w| !w.events.is_empty())
                .map(|w| w.subscription.id)
                .collect();
            let after = subscriptions::find_many(conn, &with_events)?;
            let mut new_events = Vec::new();
            let mut entries = Vec::new();
            for write in &held {
                let id = write.subscription.id;
                if let Some(payment) = paid.get(&id) {
                    new_events.push(events::of_recorded_payment(
                        payment,
                        &write.subscription.user_id,
                        now,
                    )?);
                }
                for event_type in &write.events {
                    let sub = after.get(&id).ok_or(diesel::NotFound)?;
                    new_events.push(events::of_subscription(event_type, sub, now, None)?);
                }
                if let Some(body) = &write.treefort_update {
                    entries.push(outbox::entry(id, outbox_rows::UPDATE, body, now)?);
                }
                done.push((id, write.done));
            }
            events::record_all(conn, new_events, now)?;
            outbox_rows::insert_all(conn, &entries)?;
            Ok(done)
        })
    })
    .await?;
    for (id, done) in &done {
        state.metrics.counters.renewals.inc([done.name()]);
        match done {
            Done::Renewed { until } => {
                tracing::info!(subscription_id = id, period_ends_at = %utc(*until), "subscription renewed")
            }
            Done::Declined { retry_at } => {
                tracing::info!(subscription_id = id, retry_at = %utc(*retry_at), "renewal declined; will retry inside grace")
            }
            Done::EndedByDecline => tracing::info!(
                subscription_id = id,
                "renewal declined with no grace left; subscription deactivated"
            ),
            Done::Deactivated => tracing::info!(subscription_id = id, "subscription deactivated"),
            Done::Postponed => {}
            Done::LeaseLost => tracing::warn!(
                subscription_id = id,
                "lease lost before the turn was recorded; the charge key keeps a renewal single"
            ),
        }
    }
    Ok(done.into_iter().map(|(_, d)| d).collect())
}

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
fn renews_with(
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
fn refuse_unrecorded(
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
