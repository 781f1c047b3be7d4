//! `promo_codes`, `promo_code_plans` and `promo_redemptions`: codes as support staff read them
//! (the code as typed beside its lowercase form), the plans each applies to, and who redeemed it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::domain::money::{Discount, Money};
use crate::schema::{promo_code_plans, promo_codes, promo_redemptions};

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PromoCode {
    pub id: i64,
    pub code: String,
    pub code_normalized: String,
    pub discount_type: String,
    pub percent_off: Option<i32>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub divisor: Option<i64>,
    pub first_time_only: bool,
    pub max_redemptions: Option<i32>,
    pub times_redeemed: i32,
    pub expires_at: Option<NaiveDateTime>,
    pub active: bool,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `once`, `forever` or `repeating` (for `duration_periods` billing periods).
    pub duration: String,
    pub duration_periods: Option<i32>,
}

impl PromoCode {
    /// How many charges this code discounts, counting the first: `None` for every charge.
    pub fn discounted_charges(&self) -> Option<i32> {
        match self.duration.as_str() {
            "forever" => None,
            "repeating" => Some(self.duration_periods.unwrap_or(1)),
            _ => Some(1),
        }
    }

    /// The discount this code gives. The table's CHECK guarantees the columns of each kind.
    pub fn discount(&self) -> Discount {
        match (self.percent_off, self.amount_off) {
            (Some(p), _) => Discount::Percent(p),
            (None, amount) => Discount::AmountOff(Money {
                amount: amount.unwrap_or(0),
                currency: self.currency.clone().unwrap_or_default(),
                divisor: self.divisor.unwrap_or(1),
            }),
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = promo_codes)]
pub struct NewPromoCode {
    pub code: String,
    pub code_normalized: String,
    pub discount_type: String,
    pub percent_off: Option<i32>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub divisor: Option<i64>,
    pub first_time_only: bool,
    pub max_redemptions: Option<i32>,
    pub expires_at: Option<NaiveDateTime>,
    pub active: bool,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub duration: String,
    pub duration_periods: Option<i32>,
}

/// Inserts a code and the plans it is limited to (none: every plan). Call inside a transaction.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewPromoCode,
    plan_ids: &[i64],
) -> QueryResult<PromoCode> {
    let code: PromoCode = diesel::insert_into(promo_codes::table)
        .values(new)
        .returning(promo_codes::all_columns)
        .get_result(conn)?;
    for plan_id in plan_ids {
        diesel::insert_into(promo_code_plans::table)
            .values((
                promo_code_plans::promo_code_id.eq(code.id),
                promo_code_plans::plan_id.eq(plan_id),
            ))
            .execute(conn)?;
    }
    super::catalog_version::bump(conn)?;
    Ok(code)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<PromoCode>> {
    promo_codes::table.find(id).first(conn).optional()
}

/// The codes among `ids`, by id (one query).
pub fn find_many(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, PromoCode>> {
    Ok(promo_codes::table
        .filter(promo_codes::id.eq_any(ids))
        .load::<PromoCode>(conn)?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

/// Looks a code up by its normalised (lowercase) form.
pub fn find_by_normalized_code(
    conn: &mut AnyConnection,
    normalized: &str,
) -> QueryResult<Option<PromoCode>> {
    promo_codes::table
        .filter(promo_codes::code_normalized.eq(normalized))
        .first(conn)
        .optional()
}

pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<PromoCode>> {
    promo_codes::table
        .order(promo_codes::code_normalized)
        .load(conn)
}

/// The plans a code is limited to; empty means every plan.
pub fn plan_ids(conn: &mut AnyConnection, promo_code_id: i64) -> QueryResult<Vec<i64>> {
    promo_code_plans::table
        .filter(promo_code_plans::promo_code_id.eq(promo_code_id))
        .select(promo_code_plans::plan_id)
        .order(promo_code_plans::plan_id)
        .load(conn)
}

/// Every (code, plan) limit, for the in-memory catalog.
pub fn all_plan_limits(conn: &mut AnyConnection) -> QueryResult<Vec<(i64, i64)>> {
    promo_code_plans::table
        .select((promo_code_plans::promo_code_id, promo_code_plans::plan_id))
        .order((promo_code_plans::promo_code_id, promo_code_plans::plan_id))
        .load(conn)
}

pub fn set_active(
    conn: &mut AnyConnection,
    id: i64,
    active: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let updated = diesel::update(promo_codes::table.find(id))
        .set((
            promo_codes::active.eq(active),
            promo_codes::updated_at.eq(now),
        ))
        .execute(conn)?;
    super::catalog_version::bump(conn)?;
    Ok(updated)
}

/// Takes one redemption if the code is active, unexpired and below its limit. A single conditional
/// UPDATE, so racing checkouts can never exceed `max_redemptions`. Returns whether one was taken.
/// The one that reaches the limit raises the catalog version (the code is used up).
pub fn take_redemption(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let taken: Option<(i32, Option<i32>)> = diesel::update(
        promo_codes::table
            .find(id)
            .filter(promo_codes::active.eq(true))
            .filter(
                promo_codes::expires_at
                    .is_null()
                    .or(promo_codes::expires_at.gt(now)),
            )
            .filter(
                promo_codes::max_redemptions
                    .is_null()
                    .or(promo_codes::times_redeemed
                        .nullable()
                        .lt(promo_codes::max_redemptions)),
            ),
    )
    .set(promo_codes::times_redeemed.eq(promo_codes::times_redeemed + 1))
    .returning((promo_codes::times_redeemed, promo_codes::max_redemptions))
    .get_result(conn)
    .optional()?;
    if let Some((times, Some(max))) = taken {
        if times >= max {
            super::catalog_version::bump(conn)?;
        }
    }
    Ok(taken.is_some())
}

/// Gives back a redemption taken by `take_redemption` for a checkout that did not complete. One
/// that makes a used-up code usable again raises the catalog version.
pub fn release_redemption(conn: &mut AnyConnection, id: i64) -> QueryResult<usize> {
    let released: Option<(i32, Option<i32>)> = diesel::update(
        promo_codes::table
            .find(id)
            .filter(promo_codes::times_redeemed.gt(0)),
    )
    .set(promo_codes::times_redeemed.eq(promo_codes::times_redeemed - 1))
    .returning((promo_codes::times_redeemed, promo_codes::max_redemptions))
    .get_result(conn)
    .optional()?;
    if let Some((times, Some(max))) = released {
        if times + 1 >= max {
            super::catalog_version::bump(conn)?;
        }
    }
    Ok(usize::from(released.is_some()))
}

pub fn record_redemption(
    conn: &mut AnyConnection,
    promo_code_id: i64,
    user_id: &str,
    subscription_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(promo_redemptions::table)
        .values((
            promo_redemptions::promo_code_id.eq(promo_code_id),
            promo_redemptions::user_id.eq(user_id),
            promo_redemptions::subscription_id.eq(subscription_id),
            promo_redemptions::redeemed_at.eq(now),
        ))
        .execute(conn)
}

pub fn count_redemptions(conn: &mut AnyConnection, promo_code_id: i64) -> QueryResult<i64> {
    promo_redemptions::table
        .filter(promo_redemptions::promo_code_id.eq(promo_code_id))
        .count()
        .get_result(conn)
}

/// The redemptions of a code, newest first: (user, subscription, when).
pub fn list_redemptions(
    conn: &mut AnyConnection,
    promo_code_id: i64,
    limit: i64,
) -> QueryResult<Vec<(String, i64, NaiveDateTime)>> {
    promo_redemptions::table
        .filter(promo_redemptions::promo_code_id.eq(promo_code_id))
        .order(promo_redemptions::id.desc())
        .select((
            promo_redemptions::user_id,
            promo_redemptions::subscription_id,
            promo_redemptions::redeemed_at,
        ))
        .limit(limit)
        .load(conn)
}
