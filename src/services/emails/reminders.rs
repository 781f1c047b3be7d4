//! The reminders before a charge: `trial_ending` (`TRIAL_REMINDER_DAYS` before a trial longer
//! than that converts) and `renewal_coming` (`RENEWAL_REMINDER_DAYS` before a renewal of a plan
//! billed yearly or less often).
//!
//! Once a minute of its clock (time travel moves it too), the worker scans the subscriptions
//! whose reminder moment (the next charge less the reminder's days) fell since the last scan,
//! through the `next_action_at` index, never the whole table; the scan's end is kept in `service_settings`. Moving the clock (time travel) moves the
//! window with it. An email's `about` names the subscription and the charge's moment, so a
//! reminder is written once, whichever instance or scan finds it.

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::QueryResult;

use super::{new_email, Amount, Facts, Kind, Rows};
use crate::db::AnyConnection;
use crate::models::emails::{self, NewEmail};
use crate::models::{service_settings, subscriptions};

const SCANNED_UNTIL: &str = "email_reminders_scanned_until";
/// The most reminders one scan writes; the rest wait for the next round.
const LIMIT: i64 = 500;

/// Writes the reminders due by `now`. Call inside a write transaction. Returns how many.
pub fn write_due(
    conn: &mut AnyConnection,
    trial_days: TimeDelta,
    renewal_days: TimeDelta,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let last: Option<NaiveDateTime> = service_settings::get(conn, SCANNED_UNTIL)?
        .and_then(|v| NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S%.f").ok());
    let mut written = 0;
    let mut scanned_until = now;
    for (kind, days) in [
        (Kind::TrialEnding, trial_days),
        (Kind::RenewalComing, renewal_days),
    ] {
        // First scan: every charge within the reminder's days is reminded of.
        let after = last.map_or(now, |l| (l + days).max(now));
        let found = subscriptions::charging_between(conn, after, now + days, LIMIT)?;
        if found.len() as i64 == LIMIT {
            // Left behind: the next scan starts where this one stopped.
            if let Some(at) = found.last().and_then(|s| s.next_action_at) {
                scanned_until = scanned_until.min(at - days);
            }
        }
        let wanted = found.into_iter().filter(|s| wants(kind, s, days)).collect();
        written += write(conn, kind, wanted, now)?;
    }
    service_settings::put(
        conn,
        SCANNED_UNTIL,
        &scanned_until.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
    )?;
    Ok(written)
}

/// Whether `sub`'s next charge is one this kind reminds of.
fn wants(kind: Kind, sub: &subscriptions::Subscription, days: TimeDelta) -> bool {
    let in_trial = sub
        .trial_ends_at
        .is_some_and(|end| Some(end) == sub.next_action_at);
    match kind {
        Kind::TrialEnding => {
            in_trial
                && sub
                    .trial_ends_at
                    .is_some_and(|end| end - sub.current_period_started_at > days)
        }
        Kind::RenewalComing => {
            !in_trial
                && match (sub.billing_interval.as_deref(), sub.interval_count) {
                    (Some("year"), _) => true,
                    (Some("month"), Some(n)) => n >= 12,
                    _ => false,
                }
        }
        _ => false,
    }
}

fn write(
    conn: &mut AnyConnection,
    kind: Kind,
    subs: Vec<subscriptions::Subscription>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if subs.is_empty() {
        return Ok(0);
    }
    // Written soonest charge first, as found.
    let order: Vec<i64> = subs.iter().map(|s| s.id).collect();
    let subs: HashMap<i64, subscriptions::Subscription> =
        subs.into_iter().map(|s| (s.id, s)).collect();
    let rows = Rows::around(conn, HashMap::new(), subs)?;
    let news: Vec<_> = order
        .iter()
        .filter_map(|id| rows.subscriptions.get(id))
        .filter_map(|sub| reminder(&rows, kind, sub, now))
        .collect();
    emails::insert_new(conn, &news)
}

/// The reminder of `sub`'s next charge: what it will charge (the subscription's price, or its
/// plan's), and when.
fn reminder(
    rows: &Rows,
    kind: Kind,
    sub: &subscriptions::Subscription,
    now: NaiveDateTime,
) -> Option<NewEmail> {
    let customer = rows.customers.get(&sub.customer_id)?;
    let charge_at = sub.next_action_at?;
    let amount = match (sub.amount, &sub.currency, sub.divisor) {
        (Some(amount), Some(currency), Some(divisor)) => Amount {
            amount,
            currency: currency.clone(),
            divisor,
        },
        _ => rows.plans.get(&sub.plan_id).map(|p| Amount {
            amount: p.amount,
            currency: p.currency.clone(),
            divisor: p.divisor,
        })?,
    };
    let facts = Facts {
        amount: Some(amount),
        period_end: Some(charge_at),
        ..rows.facts(customer, Some(sub))
    };
    Some(new_email(
        kind,
        format!(
            "{}:sub-{}:{}",
            kind.name(),
            sub.id,
            charge_at.format("%Y-%m-%dT%H:%M:%S")
        ),
        (&sub.user_id, Some(sub.id), None),
        &customer.email,
        rows.locale(Some(sub.id)),
        &facts,
        now,
    ))
}
