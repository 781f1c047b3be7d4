//! `checkout_sessions`: one row per checkout URL, found by the SHA-256 of its token. A session moves
//! `open` → `processing` (one payment attempt holds it) → `completed`, or back to `open` when the
//! attempt failed without taking money.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::checkout_sessions;

pub const OPEN: &str = "open";
pub const PROCESSING: &str = "processing";
pub const COMPLETED: &str = "completed";

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CheckoutSession {
    pub id: i64,
    pub token_hash: String,
    pub user_id: String,
    pub user_email: String,
    pub user_full_name: Option<String>,
    pub locale: String,
    pub plan_id: i64,
    pub promo_code_id: Option<i64>,
    pub success_url: String,
    pub cancel_url: String,
    pub status: String,
    pub subscription_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    pub claimed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = checkout_sessions)]
pub struct NewCheckoutSession {
    pub token_hash: String,
    pub user_id: String,
    pub user_email: String,
    pub user_full_name: Option<String>,
    pub locale: String,
    pub plan_id: i64,
    pub promo_code_id: Option<i64>,
    pub success_url: String,
    pub cancel_url: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, new: &NewCheckoutSession) -> QueryResult<usize> {
    diesel::insert_into(checkout_sessions::table)
        .values(new)
        .execute(conn)
}

pub fn find_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> QueryResult<Option<CheckoutSession>> {
    checkout_sessions::table
        .filter(checkout_sessions::token_hash.eq(token_hash))
        .first(conn)
        .optional()
}

/// Moves an open, unexpired session to `processing`. Only one caller can win, so the same link
/// can never pay twice, however many submissions race.
pub fn claim_for_payment(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(OPEN))
            .filter(checkout_sessions::expires_at.gt(now)),
    )
    .set((
        checkout_sessions::status.eq(PROCESSING),
        checkout_sessions::claimed_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Gives a claimed session back (the payment attempt took no money), so the link stays usable.
pub fn release_claim(conn: &mut AnyConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(PROCESSING)),
    )
    .set(checkout_sessions::status.eq(OPEN))
    .execute(conn)
}

pub fn mark_completed(
    conn: &mut AnyConnection,
    id: i64,
    subscription_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(checkout_sessions::table.find(id))
        .set((
            checkout_sessions::status.eq(COMPLETED),
            checkout_sessions::subscription_id.eq(subscription_id),
            checkout_sessions::completed_at.eq(now),
        ))
        .execute(conn)
}

/// Claims older than `before` (their process died mid-payment): (session id, promo code id).
pub fn list_stale_claims(
    conn: &mut AnyConnection,
    before: NaiveDateTime,
) -> QueryResult<Vec<(i64, Option<i64>)>> {
    checkout_sessions::table
        .filter(checkout_sessions::status.eq(PROCESSING))
        .filter(checkout_sessions::claimed_at.lt(before))
        .select((checkout_sessions::id, checkout_sessions::promo_code_id))
        .load(conn)
}
