//! The shoppers' emails: what each cause makes (a receipt for a charge, a notice for a declined
//! renewal, a cancellation, an end, a refund, and the reminders before a charge), written in the
//! transaction of the cause so an email exists exactly when its cause does; then rendered in the
//! shopper's language and sent by the email loop (`send`).
//!
//! An email's `about` names its cause (`receipt:evt_…`, `trial_ending:sub-7:2027-01-15T00:00:00`):
//! the unique index on it makes a cause's email once, whoever writes it and however often.

pub mod links;
pub mod reminders;
pub mod render;
pub mod send;

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::QueryResult;
use serde::{Deserialize, Serialize};

use crate::db::AnyConnection;
use crate::domain::money::Money;
use crate::models::emails::{self, NewEmail};
use crate::models::events::Event;
use crate::models::{checkout_sessions, customers, payments, plans, subscriptions};

/// What an email is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Receipt,
    TrialEnding,
    RenewalComing,
    PaymentFailed,
    Canceled,
    Ended,
    Refund,
}

pub const KINDS: [Kind; 7] = [
    Kind::Receipt,
    Kind::TrialEnding,
    Kind::RenewalComing,
    Kind::PaymentFailed,
    Kind::Canceled,
    Kind::Ended,
    Kind::Refund,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Receipt => "receipt",
            Kind::TrialEnding => "trial_ending",
            Kind::RenewalComing => "renewal_coming",
            Kind::PaymentFailed => "payment_failed",
            Kind::Canceled => "canceled",
            Kind::Ended => "ended",
            Kind::Refund => "refund",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name() == name)
    }

    /// Whether the email carries a button that opens the billing portal.
    pub fn has_link(self) -> bool {
        !matches!(self, Kind::Ended | Kind::Refund)
    }
}

/// An amount, as stored in an email's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub amount: i64,
    pub currency: String,
    pub divisor: i64,
}

impl Amount {
    pub fn money(&self) -> Money {
        Money {
            amount: self.amount,
            currency: self.currency.clone(),
            divisor: self.divisor,
        }
    }
}

/// What an email says, fixed when it is written (a resend says the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub name: Option<String>,
    pub plan: Option<String>,
    /// Charged, to be charged, or refunded.
    pub amount: Option<Amount>,
    pub period_start: Option<NaiveDateTime>,
    pub period_end: Option<NaiveDateTime>,
    /// When access ends unless a payment succeeds (a declined renewal).
    pub grace_end: Option<NaiveDateTime>,
    /// `Visa •••• 4242`.
    pub card: Option<String>,
    pub receipt_number: Option<String>,
    /// The bank asks the card holder to confirm the payment.
    pub authenticate: bool,
}

/// The rows an email's facts come from, read once for a batch (of events, or of reminders).
struct Rows {
    payments: HashMap<i64, payments::Payment>,
    subscriptions: HashMap<i64, subscriptions::Subscription>,
    customers: HashMap<i64, customers::Customer>,
    plans: HashMap<i64, plans::Plan>,
    locales: HashMap<i64, String>,
}

impl Rows {
    fn read(conn: &mut AnyConnection, events: &[(&Event, Kind)]) -> QueryResult<Rows> {
        let payment_ids: Vec<i64> = events.iter().filter_map(|(e, _)| e.payment_id).collect();
        let payments = payments::find_many(conn, &payment_ids)?;
        let mut subscription_ids: Vec<i64> = events
            .iter()
            .filter_map(|(e, _)| e.subscription_id)
            .collect();
        subscription_ids.extend(payments.values().filter_map(|p| p.subscription_id));
        let subscriptions = subscriptions::find_many(conn, &subscription_ids)?;
        Rows::around(conn, payments, subscriptions)
    }

    /// The customers, plans and checkout locales of these payments and subscriptions.
    fn around(
        conn: &mut AnyConnection,
        payments: HashMap<i64, payments::Payment>,
        subscriptions: HashMap<i64, subscriptions::Subscription>,
    ) -> QueryResult<Rows> {
        let customer_ids: Vec<i64> = subscriptions
            .values()
            .map(|s| s.customer_id)
            .chain(payments.values().map(|p| p.customer_id))
            .collect();
        let plan_ids: Vec<i64> = subscriptions.values().map(|s| s.plan_id).collect();
        let subscription_ids: Vec<i64> = subscriptions.keys().copied().collect();
        Ok(Rows {
            customers: customers::find_many(conn, &customer_ids)?,
            plans: plans::find_many(conn, &plan_ids)?
                .into_iter()
                .map(|p| (p.id, p))
                .collect(),
            locales: checkout_sessions::locales_of(conn, &subscription_ids)?,
            payments,
            subscriptions,
        })
    }

    /// What every email of `customer` about `sub` says: their name, the plan, the period, the card.
    fn facts(
        &self,
        customer: &customers::Customer,
        sub: Option<&subscriptions::Subscription>,
    ) -> Facts {
        Facts {
            name: customer.full_name.clone(),
            plan: sub
                .and_then(|s| self.plans.get(&s.plan_id))
                .map(|p| p.name.clone()),
            period_start: sub.map(|s| s.current_period_started_at),
            period_end: sub.map(|s| s.current_period_ends_at),
            card: customer.card_last4.as_ref().map(|last4| {
                format!(
                    "{} •••• {last4}",
                    customer.card_brand.as_deref().unwrap_or("Card")
                )
            }),
            ..Facts::default()
        }
    }

    /// The language of the subscription's checkout (English without one).
    fn locale(&self, subscription_id: Option<i64>) -> &str {
        subscription_id
            .and_then(|id| self.locales.get(&id))
            .map_or("en", String::as_str)
    }
}

/// Writes the emails of `wanted`, events and the kind of email each makes (`services::events`
/// says which), in the transaction of their causes. Returns how many.
pub fn for_events(
    conn: &mut AnyConnection,
    wanted: &[(&Event, Kind)],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if wanted.is_empty() {
        return Ok(0);
    }
    let rows = Rows::read(conn, wanted)?;
    let news: Vec<NewEmail> = wanted
        .iter()
        .filter_map(|(event, kind)| of_event(&rows, event, *kind, now))
        .collect();
    emails::insert_new(conn, &news)
}

fn of_event(rows: &Rows, event: &Event, kind: Kind, now: NaiveDateTime) -> Option<NewEmail> {
    let payment = event.payment_id.and_then(|id| rows.payments.get(&id));
    let subscription_id = event
        .subscription_id
        .or_else(|| payment.and_then(|p| p.subscription_id));
    let sub = subscription_id.and_then(|id| rows.subscriptions.get(&id));
    match (kind, payment) {
        // A free checkout charges nothing; a declined checkout is told on the page itself.
        (Kind::Receipt, Some(p)) if p.amount <= 0 => return None,
        (Kind::PaymentFailed, Some(p)) if p.kind != "renewal" => return None,
        (Kind::Receipt | Kind::PaymentFailed | Kind::Refund, None) => return None,
        _ => {}
    }
    let customer_id = payment
        .map(|p| p.customer_id)
        .or(sub.map(|s| s.customer_id))?;
    let customer = rows.customers.get(&customer_id)?;
    let plan = sub.and_then(|s| rows.plans.get(&s.plan_id));
    let mut facts = rows.facts(customer, sub);
    if let Some(p) = payment {
        facts.amount = Some(Amount {
            amount: if kind == Kind::Refund {
                p.refunded_amount
            } else {
                p.amount
            },
            currency: p.currency.clone(),
            divisor: p.divisor,
        });
        facts.receipt_number = Some(receipt_number(p.id));
        facts.authenticate = p.failure_reason.as_deref() == Some(payments::AUTHENTICATION_REQUIRED);
    }
    if let (Kind::PaymentFailed, Some(s), Some(plan)) = (kind, sub, plan) {
        facts.grace_end = Some(s.current_period_ends_at + TimeDelta::days(plan.grace_days.into()));
    }
    Some(new_email(
        kind,
        format!("{}:{}", kind.name(), event.public_id),
        (&event.user_id, subscription_id, payment.map(|p| p.id)),
        &customer.email,
        rows.locale(subscription_id),
        &facts,
        now,
    ))
}

/// A receipt's number: the payment's, zero-padded.
pub fn receipt_number(payment_id: i64) -> String {
    format!("R-{payment_id:08}")
}

/// A new email, due now; `not_sent` when the address is not one an email can go to.
fn new_email(
    kind: Kind,
    about: String,
    (user_id, subscription_id, payment_id): (&str, Option<i64>, Option<i64>),
    to: &str,
    locale: &str,
    facts: &Facts,
    now: NaiveDateTime,
) -> NewEmail {
    let valid = to.parse::<lettre::Address>().is_ok();
    if !valid {
        tracing::info!(
            user_id,
            kind = kind.name(),
            "no email: the shopper's address is not a valid one"
        );
    }
    NewEmail {
        kind: kind.name().into(),
        about,
        user_id: user_id.into(),
        subscription_id,
        payment_id,
        to_address: to.into(),
        locale: locale.into(),
        data: serde_json::to_string(facts).unwrap_or_else(|_| "{}".into()),
        status: if valid {
            emails::PENDING
        } else {
            emails::NOT_SENT
        }
        .into(),
        next_attempt_at: valid.then_some(now),
        last_error: (!valid).then(|| "the address is not a valid email address".into()),
        created_at: now,
    }
}
