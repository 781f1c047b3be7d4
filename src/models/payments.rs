//! `payments`: every charge attempt that reached the gateway, succeeded or declined, in the plan's
//! currency as integer minor units.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::domain::money::Money;
use crate::schema::payments;

pub const SUCCEEDED: &str = "succeeded";
pub const DECLINED: &str = "declined";
/// `failure_reason` of a renewal the bank wants the card holder to authenticate (3-D Secure).
pub const AUTHENTICATION_REQUIRED: &str = "authentication_required";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
#[diesel(table_name = payments)]
pub struct Payment {
    pub id: i64,
    pub customer_id: i64,
    pub subscription_id: Option<i64>,
    pub checkout_session_id: Option<i64>,
    pub kind: String,
    pub status: String,
    pub amount: i64,
    pub discount_amount: i64,
    pub currency: String,
    pub divisor: i64,
    pub gateway: String,
    pub gateway_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: NaiveDateTime,
    /// How much of `amount` was given back, in the same units.
    pub refunded_amount: i64,
    pub refunded_at: Option<NaiveDateTime>,
    /// Set when the card holder disputed the charge with their bank.
    pub disputed_at: Option<NaiveDateTime>,
    pub dispute_reason: Option<String>,
}

impl Payment {
    pub fn money(&self) -> Money {
        Money {
            amount: self.amount,
            currency: self.currency.clone(),
            divisor: self.divisor,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
pub struct NewPayment {
    pub customer_id: i64,
    pub subscription_id: Option<i64>,
    pub checkout_session_id: Option<i64>,
    pub kind: String,
    pub status: String,
    pub amount: i64,
    pub discount_amount: i64,
    pub currency: String,
    pub divisor: i64,
    pub gateway: String,
    pub gateway_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, new: &NewPayment) -> QueryResult<Payment> {
    diesel::insert_into(payments::table)
        .values(new)
        .returning(payments::all_columns)
        .get_result(conn)
}

/// Inserts payments in one statement; RETURNING gives them back in no promised order.
pub fn insert_all(conn: &mut AnyConnection, new: &[NewPayment]) -> QueryResult<Vec<Payment>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        AnyConnection::Postgres(pg) => {
            use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
            super::unnest::unnest_insert!(
                new => NewPayment,
                "payments",
                [
                    (customer_id, BigInt),
                    (subscription_id, Nullable<BigInt>),
                    (checkout_session_id, Nullable<BigInt>),
                    (kind, Text),
                    (status, Text),
                    (amount, BigInt),
                    (discount_amount, BigInt),
                    (currency, Text),
                    (divisor, BigInt),
                    (gateway, Text),
                    (gateway_reference, Nullable<Text>),
                    (failure_reason, Nullable<Text>),
                    (created_at, Timestamp),
                ],
                "RETURNING *"
            )
            .load(pg)
        }
        AnyConnection::Sqlite(c) => diesel::insert_into(payments::table)
            .values(new)
            .returning(payments::all_columns)
            .get_results(c),
    }
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Payment>> {
    payments::table.find(id).first(conn).optional()
}

/// The payment the gateway knows as `reference` (a charge, or a payment awaiting authentication).
pub fn find_by_reference(
    conn: &mut AnyConnection,
    reference: &str,
) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::gateway_reference.eq(reference))
        .order(payments::id.desc())
        .first(conn)
        .optional()
}

/// Payments newest first, optionally of one user only (support staff, the CLI).
pub fn list(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(Payment, String)>> {
    list_filtered(conn, user_id, None, None, limit)
}

/// Payments newest first: of one user, of one subscription, below the id `starting_after`.
pub fn list_filtered(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
    subscription_id: Option<i64>,
    starting_after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(Payment, String)>> {
    use crate::schema::customers;
    let mut query = payments::table
        .inner_join(customers::table)
        .select((payments::all_columns, customers::user_id))
        .order(payments::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(customers::user_id.eq(user_id.to_string()));
    }
    if let Some(subscription_id) = subscription_id {
        query = query.filter(payments::subscription_id.eq(subscription_id));
    }
    if let Some(after) = starting_after {
        query = query.filter(payments::id.lt(after));
    }
    query.load(conn)
}

/// Records that `refunded_total` of a payment has been given back, if that is more than known
/// so far (refund events may arrive twice or out of order). Returns whether anything changed.
pub fn record_refund(
    conn: &mut AnyConnection,
    id: i64,
    refunded_total: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        payments::table
            .find(id)
            .filter(payments::refunded_amount.lt(refunded_total))
            .filter(payments::amount.ge(refunded_total)),
    )
    .set((
        payments::refunded_amount.eq(refunded_total),
        payments::refunded_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Records a dispute (chargeback) opened by the card holder's bank.
pub fn record_dispute(
    conn: &mut AnyConnection,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        payments::table
            .find(id)
            .filter(payments::disputed_at.is_null()),
    )
    .set((
        payments::disputed_at.eq(now),
        payments::dispute_reason.eq(reason),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// The latest payment of `subscription_id` since `since` that waits for the card holder to
/// authenticate it: its gateway reference.
pub fn find_awaiting_authentication(
    conn: &mut AnyConnection,
    subscription_id: i64,
    since: NaiveDateTime,
) -> QueryResult<Option<String>> {
    payments::table
        .filter(payments::subscription_id.eq(subscription_id))
        .filter(payments::failure_reason.eq(AUTHENTICATION_REQUIRED))
        .filter(payments::created_at.ge(since))
        .filter(payments::gateway_reference.is_not_null())
        .order(payments::id.desc())
        .select(payments::gateway_reference)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

pub fn list_for_customer(conn: &mut AnyConnection, customer_id: i64) -> QueryResult<Vec<Payment>> {
    payments::table
        .filter(payments::customer_id.eq(customer_id))
        .order(payments::id.desc())
        .load(conn)
}

/// The payments among `ids`, by id (one query).
pub fn find_many(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, Payment>> {
    Ok(payments::table
        .filter(payments::id.eq_any(ids))
        .load::<Payment>(conn)?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}
