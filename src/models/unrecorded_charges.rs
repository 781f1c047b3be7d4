//! `unrecorded_charges`: charges the gateway took that no subscription records, each of which is
//! given back. The row is the verdict: it is written in the transaction that decides a charge
//! cannot be recorded, before the refund is asked for, and a recording of a charge found here is
//! refused. So a charge is recorded or refunded, never both.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::domain::money::Money;
use crate::schema::unrecorded_charges;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct UnrecordedCharge {
    pub id: i64,
    pub gateway: String,
    pub gateway_reference: String,
    pub amount: i64,
    pub currency: String,
    pub divisor: i64,
    pub reason: String,
    pub created_at: NaiveDateTime,
    pub refunded_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = unrecorded_charges)]
pub struct NewUnrecordedCharge<'a> {
    pub gateway: &'a str,
    pub gateway_reference: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub divisor: i64,
    pub reason: &'a str,
    pub created_at: NaiveDateTime,
}

impl<'a> NewUnrecordedCharge<'a> {
    pub fn new(
        gateway: &'a str,
        reference: &'a str,
        amount: &'a Money,
        reason: &'a str,
        now: NaiveDateTime,
    ) -> Self {
        Self {
            gateway,
            gateway_reference: reference,
            amount: amount.amount,
            currency: &amount.currency,
            divisor: amount.divisor,
            reason,
            created_at: now,
        }
    }
}

/// Records the verdict; a charge already here keeps its first row.
pub fn insert(conn: &mut AnyConnection, new: &NewUnrecordedCharge<'_>) -> QueryResult<()> {
    crate::on_backend!(conn, |c| {
        diesel::insert_into(unrecorded_charges::table)
            .values(new)
            .on_conflict(unrecorded_charges::gateway_reference)
            .do_nothing()
            .execute(c)
    })
    .map(|_| ())
}

pub fn find(conn: &mut AnyConnection, reference: &str) -> QueryResult<Option<UnrecordedCharge>> {
    unrecorded_charges::table
        .filter(unrecorded_charges::gateway_reference.eq(reference))
        .first(conn)
        .optional()
}

/// Which of `references` may never be recorded.
pub fn among(conn: &mut AnyConnection, references: &[&str]) -> QueryResult<Vec<String>> {
    if references.is_empty() {
        return Ok(Vec::new());
    }
    unrecorded_charges::table
        .filter(unrecorded_charges::gateway_reference.eq_any(references))
        .select(unrecorded_charges::gateway_reference)
        .load(conn)
}

/// The gateway accepted the refund.
pub fn mark_refunded(
    conn: &mut AnyConnection,
    reference: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        unrecorded_charges::table
            .filter(unrecorded_charges::gateway_reference.eq(reference))
            .filter(unrecorded_charges::refunded_at.is_null()),
    )
    .set(unrecorded_charges::refunded_at.eq(now))
    .execute(conn)
}
