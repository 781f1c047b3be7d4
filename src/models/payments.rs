//! `payments`: every charge attempt that reached the gateway, succeeded or declined, in the plan's
//! currency as integer minor units.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::domain::money::Money;
use crate::schema::payments;

pub const SUCCEEDED: &str = "succeeded";
pub const DECLINED: &str = "declined";

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
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
#[diesel(table_name = payments)]
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

pub fn insert(conn: &mut AnyConnection, new: &NewPayment) -> QueryResult<usize> {
    diesel::insert_into(payments::table)
        .values(new)
        .execute(conn)
}

pub fn list_for_customer(conn: &mut AnyConnection, customer_id: i64) -> QueryResult<Vec<Payment>> {
    payments::table
        .filter(payments::customer_id.eq(customer_id))
        .order(payments::id.desc())
        .load(conn)
}
