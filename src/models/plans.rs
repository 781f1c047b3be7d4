//! `plans`: the subscription plans Treefort knows by id, with price, interval, trial and grace.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::domain::features::Features;
use crate::domain::money::Money;
use crate::schema::plans;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Plan {
    pub id: i64,
    pub name: String,
    pub billing_interval: String,
    pub interval_count: i32,
    pub trial_days: i32,
    pub grace_days: i32,
    pub currency: String,
    pub amount: i64,
    pub divisor: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// What a subscription to it unlocks; in effect for current subscribers at once.
    #[diesel(deserialize_as = String)]
    pub features: Features,
}

impl Plan {
    pub fn price(&self) -> Money {
        Money {
            amount: self.amount,
            currency: self.currency.clone(),
            divisor: self.divisor,
        }
    }

    /// What a new subscriber to this plan signs up for.
    pub fn terms(&self) -> Terms {
        Terms {
            price: self.price(),
            billing_interval: self.billing_interval.clone(),
            interval_count: self.interval_count,
        }
    }
}

/// The price and billing interval a subscriber pays: the plan's at checkout, kept when the plan
/// is edited later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub price: Money,
    pub billing_interval: String,
    pub interval_count: i32,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = plans)]
pub struct PlanValues {
    pub name: String,
    pub billing_interval: String,
    pub interval_count: i32,
    pub trial_days: i32,
    pub grace_days: i32,
    pub currency: String,
    pub amount: i64,
    pub divisor: i64,
    pub updated_at: NaiveDateTime,
    /// `Features::to_stored`.
    pub features: String,
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Plan>> {
    plans::table.find(id).first(conn).optional()
}

pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<Plan>> {
    plans::table.order(plans::id).load(conn)
}

/// Ids among `ids` that are known plans.
pub fn existing_ids(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    plans::table
        .filter(plans::id.eq_any(ids))
        .select(plans::id)
        .load(conn)
}

pub fn find_many(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<Plan>> {
    plans::table.filter(plans::id.eq_any(ids)).load(conn)
}

/// Creates plan `id` or replaces its values (its `created_at` is kept).
pub fn upsert(
    conn: &mut AnyConnection,
    id: i64,
    values: &PlanValues,
    now: NaiveDateTime,
) -> QueryResult<Plan> {
    crate::on_backend!(conn, |c| {
        diesel::insert_into(plans::table)
            .values((plans::id.eq(id), values, plans::created_at.eq(now)))
            .on_conflict(plans::id)
            .do_update()
            .set(values)
            .execute(c)
    })?;
    super::catalog_version::bump(conn)?;
    plans::table.find(id).first(conn)
}

/// The live subscriptions of plan `id` (its current subscribers; a switch to it counts from the
/// switch), through the partial index `subscriptions_live_plan`.
pub fn live_subscription_ids(conn: &mut AnyConnection, id: i64) -> QueryResult<Vec<i64>> {
    use crate::schema::subscriptions;
    subscriptions::table
        .filter(subscriptions::plan_id.eq(id))
        .filter(subscriptions::deactivated_at.is_null())
        .order(subscriptions::id)
        .select(subscriptions::id)
        .load(conn)
}
