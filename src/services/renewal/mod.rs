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
mod record;
mod settle;
use record::*;
pub use settle::*;

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
