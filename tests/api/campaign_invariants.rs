//! The invariants the fault campaign (`stripe_campaign`) checks after each run, over what Stripe
//! (localstripe), Treefort (the test's fake) and the service each hold. Pure: a [`World`] in,
//! the violations out, one line each.
//!
//! 1. **Money.** For every user, the money captured minus the money refunded is the price of
//!    every period Treefort was told is paid (a trial's first period: nothing), less the refunds
//!    the app owner asked for; never more, never less.
//! 2. **Every charge is accounted for.** Each succeeded charge at Stripe is one recorded payment
//!    (never two), or it was refunded in full. No charge is refunded past its amount.
//! 3. **Treefort's record equals the service's.** Folding what Treefort applied, in order, gives
//!    each subscription's period end, `canceledAt` and `deactivatedAt` exactly as the service
//!    holds them; and each user has one Treefort subscription, made once.
//!
//! "No access without its money" is 1 read from Treefort's side: every period end Treefort
//! applied for a user counts as a period that must have been paid. "No webhook changes anything
//! twice" shows as a breach of 1 or 2 (a second record, or a second refund).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use crate::faults::Applied;

/// A PaymentIntent at Stripe that took money.
#[derive(Debug, Clone)]
pub struct StripeCharge {
    pub id: String,
    /// The user, by the email on the Stripe customer.
    pub user: String,
    pub amount: i64,
    /// Sum of the refunds Stripe holds for it.
    pub refunded: i64,
}

/// A payment the service recorded as taken.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub reference: String,
}

/// A subscription as the service holds it.
#[derive(Debug, Clone)]
pub struct ServiceSubscription {
    pub user: String,
    pub treefort_id: Option<String>,
    pub current_period_ends_at: NaiveDateTime,
    pub canceled_at: Option<NaiveDateTime>,
    pub deactivated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Default)]
pub struct World {
    /// Each user's price per period, in minor units (one plan per user in the campaign).
    pub prices: BTreeMap<String, i64>,
    pub charges: Vec<StripeCharge>,
    pub recorded: Vec<Recorded>,
    /// What Treefort applied, in the order it applied it.
    pub treefort: Vec<Applied>,
    pub subscriptions: Vec<ServiceSubscription>,
    /// Refunds the app owner asked for and got, by user.
    pub deliberate_refunds: BTreeMap<String, i64>,
}

/// Treefort's view of one subscription: its fields after every update, in order.
#[derive(Debug, Default)]
struct Folded {
    user: String,
    /// Every distinct period end it was told, in order.
    period_ends: Vec<String>,
    trial: bool,
    fields: serde_json::Map<String, Value>,
    creation_keys: HashSet<Option<String>>,
}

fn fold(applied: &[Applied]) -> BTreeMap<String, Folded> {
    let mut subs: BTreeMap<String, Folded> = BTreeMap::new();
    for a in applied {
        let entry = subs.entry(a.id.clone()).or_default();
        if a.method == "POST" {
            entry.user = a.body["userId"].as_str().unwrap_or_default().to_string();
            entry.trial |= a.body["trialEndsAt"].is_string();
            entry.creation_keys.insert(a.idempotency_key.clone());
        }
        if let Some(end) = a.body["currentPeriodEndsAt"].as_str() {
            if !entry.period_ends.iter().any(|e| e == end) {
                entry.period_ends.push(end.to_string());
            }
        }
        if let Some(body) = a.body.as_object() {
            for (k, v) in body {
                entry.fields.insert(k.clone(), v.clone());
            }
        }
    }
    subs
}

fn instant(value: Option<&Value>) -> Option<NaiveDateTime> {
    value
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.naive_utc())
}

/// Equal to the millisecond (Treefort is told times with milliseconds).
fn same_instant(a: Option<NaiveDateTime>, b: Option<NaiveDateTime>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).num_milliseconds().abs() < 1,
        _ => false,
    }
}

/// Every breach of the invariants, one line each (empty: the run holds).
pub fn check(world: &World) -> Vec<String> {
    let mut violations = Vec::new();
    let treefort = fold(&world.treefort);
    money(world, &treefort, &mut violations);
    accounted(world, &mut violations);
    records_agree(world, &treefort, &mut violations);
    violations
}

fn money(world: &World, treefort: &BTreeMap<String, Folded>, violations: &mut Vec<String>) {
    for (user, price) in &world.prices {
        let net: i64 = world
            .charges
            .iter()
            .filter(|c| &c.user == user)
            .map(|c| c.amount - c.refunded)
            .sum();
        let paid_periods: i64 = treefort
            .values()
            .filter(|f| &f.user == user)
            .map(|f| f.period_ends.len() as i64 - i64::from(f.trial))
            .sum();
        let refunded = world.deliberate_refunds.get(user).copied().unwrap_or(0);
        let expected = price * paid_periods - refunded;
        if net != expected {
            violations.push(format!(
                "{user}: Stripe holds {net} net, but Treefort gave {paid_periods} paid period(s) at {price} less {refunded} refunded by the owner ({expected})"
            ));
        }
    }
}

fn accounted(world: &World, violations: &mut Vec<String>) {
    for charge in &world.charges {
        let records = world
            .recorded
            .iter()
            .filter(|r| r.reference == charge.id)
            .count();
        if charge.refunded > charge.amount {
            violations.push(format!(
                "{}: {} refunded on a charge of {}",
                charge.id, charge.refunded, charge.amount
            ));
        }
        match records {
            1 => {}
            0 if charge.refunded == charge.amount => {}
            0 => violations.push(format!(
                "{} ({}): charged {} at Stripe, neither recorded nor refunded",
                charge.id, charge.user, charge.amount
            )),
            n => violations.push(format!("{}: recorded {n} times", charge.id)),
        }
    }
}

fn records_agree(world: &World, treefort: &BTreeMap<String, Folded>, violations: &mut Vec<String>) {
    for sub in &world.subscriptions {
        let Some(id) = &sub.treefort_id else {
            violations.push(format!("{}: no Treefort subscription id", sub.user));
            continue;
        };
        let Some(folded) = treefort.get(id) else {
            violations.push(format!("{}: Treefort never made {id}", sub.user));
            continue;
        };
        let theirs = |field: &str| instant(folded.fields.get(field));
        let pairs = [
            (
                "currentPeriodEndsAt",
                Some(sub.current_period_ends_at),
                theirs("currentPeriodEndsAt"),
            ),
            ("canceledAt", sub.canceled_at, theirs("canceledAt")),
            ("deactivatedAt", sub.deactivated_at, theirs("deactivatedAt")),
        ];
        for (field, ours, theirs) in pairs {
            if !same_instant(ours, theirs) {
                violations.push(format!(
                    "{} ({id}): {field} is {ours:?} here and {theirs:?} at Treefort",
                    sub.user
                ));
            }
        }
    }
    let mut made: BTreeMap<&str, usize> = BTreeMap::new();
    for folded in treefort.values().filter(|f| !f.user.is_empty()) {
        *made.entry(folded.user.as_str()).or_default() += folded.creation_keys.len();
    }
    for (user, n) in made {
        if n != 1 {
            violations.push(format!("{user}: {n} Treefort subscriptions made"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(method: &str, id: &str, key: Option<&str>, body: Value) -> Applied {
        Applied {
            method: method.into(),
            path: format!("/v1/subscriptions/{id}"),
            idempotency_key: key.map(str::to_string),
            body,
            id: id.into(),
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        DateTime::parse_from_rfc3339(s).unwrap().naive_utc()
    }

    /// A user who paid a checkout and one renewal, as every party should hold it.
    fn healthy() -> World {
        World {
            prices: [("u1".to_string(), 999)].into(),
            charges: vec![
                StripeCharge {
                    id: "pi_1".into(),
                    user: "u1".into(),
                    amount: 999,
                    refunded: 0,
                },
                StripeCharge {
                    id: "pi_2".into(),
                    user: "u1".into(),
                    amount: 999,
                    refunded: 0,
                },
            ],
            recorded: vec![
                Recorded {
                    reference: "pi_1".into(),
                },
                Recorded {
                    reference: "pi_2".into(),
                },
            ],
            treefort: vec![
                applied(
                    "POST",
                    "tf_1",
                    Some("k1"),
                    json!({"userId": "u1", "currentPeriodEndsAt": "2027-01-01T00:00:00.000Z", "trialEndsAt": null}),
                ),
                applied(
                    "PATCH",
                    "tf_1",
                    None,
                    json!({"currentPeriodEndsAt": "2027-02-01T00:00:00.000Z"}),
                ),
                // A retry of the same update after a lost answer: the same period.
                applied(
                    "PATCH",
                    "tf_1",
                    None,
                    json!({"currentPeriodEndsAt": "2027-02-01T00:00:00.000Z"}),
                ),
            ],
            subscriptions: vec![ServiceSubscription {
                user: "u1".into(),
                treefort_id: Some("tf_1".into()),
                current_period_ends_at: at("2027-02-01T00:00:00Z"),
                canceled_at: None,
                deactivated_at: None,
            }],
            deliberate_refunds: BTreeMap::new(),
        }
    }

    #[test]
    fn a_healthy_world_holds() {
        assert_eq!(check(&healthy()), Vec::<String>::new());
    }

    #[test]
    fn a_free_period_is_found() {
        // The renewal's money went back, but Treefort was told the period is paid.
        let mut world = healthy();
        world.charges[1].refunded = 999;
        world.recorded.pop();
        let found = check(&world);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("2 paid period"), "{found:?}");
    }

    #[test]
    fn a_double_charge_and_an_unrecorded_one_are_found() {
        let mut world = healthy();
        world.charges.push(StripeCharge {
            id: "pi_3".into(),
            user: "u1".into(),
            amount: 999,
            refunded: 0,
        });
        let found = check(&world);
        assert!(
            found
                .iter()
                .any(|v| v.contains("neither recorded nor refunded")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("Stripe holds 2997")),
            "{found:?}"
        );
    }

    #[test]
    fn a_second_refund_and_a_second_record_are_found() {
        let mut world = healthy();
        world.charges[0].refunded = 1998;
        world.recorded.push(Recorded {
            reference: "pi_2".into(),
        });
        let found = check(&world);
        assert!(
            found.iter().any(|v| v.contains("1998 refunded")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("recorded 2 times")),
            "{found:?}"
        );
    }

    #[test]
    fn a_record_treefort_does_not_share_and_a_second_creation_are_found() {
        let mut world = healthy();
        world.subscriptions[0].canceled_at = Some(at("2027-01-15T00:00:00Z"));
        world.treefort.push(applied("POST", "tf_2", Some("k2"), json!({"userId": "u1", "currentPeriodEndsAt": "2027-01-01T00:00:00.000Z", "trialEndsAt": "2027-01-01T00:00:00.000Z"})));
        let found = check(&world);
        assert!(found.iter().any(|v| v.contains("canceledAt")), "{found:?}");
        assert!(
            found.iter().any(|v| v.contains("2 Treefort subscriptions")),
            "{found:?}"
        );
    }
}
