//! Recording a wave's turns: every write of a wave in one transaction, each applied only while this
//! instance still holds its subscription's lease and the subscription is still at the period it
//! was charged for.

use super::*;

/// Records a wave. Should its transaction fail (one row's error rolls back all), each turn is
/// recorded in a transaction of its own, so that one bad row cannot keep the others' charges
/// unrecorded; a turn that still fails is logged and its lease runs out.
pub(super) async fn record(state: &AppState, writes: Vec<Write>) -> Vec<Done> {
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

pub(super) fn failed(state: &AppState, writes: &[Write], error: &ApiError) {
    for write in writes {
        state.metrics.counters.renewals.inc(["failed"]);
        tracing::error!(subscription_id = write.subscription.id, error = %error, "recording a renewal turn failed; its lease runs out and it is taken again under the same charge key");
    }
}

/// Records a wave in one transaction: each change applied only while this worker still holds the
/// lease (and the period is still the one it charged for), then the payments, the events and the
/// Treefort updates of those, a statement each. Changes whose lease was lost write nothing.
pub(super) async fn record_wave(
    state: &AppState,
    writes: Vec<Write>,
) -> Result<Vec<Done>, ApiError> {
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
            let plan_ids: Vec<i64> = after.values().map(|s| s.plan_id).collect();
            let plans_after: HashMap<i64, Plan> = plans::find_many(conn, &plan_ids)?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
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
                    let plan = plans_after.get(&sub.plan_id);
                    new_events.push(events::of_subscription(event_type, sub, plan, now, None)?);
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
