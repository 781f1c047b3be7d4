//! `subscriptions`: our record of each Treefort subscription, with the same four dates Treefort
//! keeps (period end, trial end, canceled, deactivated) and the id Treefort gave it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::subscriptions;

#[path = "subscriptions_wave.rs"]
mod wave;
pub use wave::{claim_due, update_all_if_held, CLAIM_DUE_SQL};

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Subscription {
    pub id: i64,
    pub user_id: String,
    pub customer_id: i64,
    pub plan_id: i64,
    pub promo_code_id: Option<i64>,
    pub treefort_subscription_id: Option<String>,
    pub current_period_started_at: NaiveDateTime,
    pub current_period_ends_at: NaiveDateTime,
    pub trial_ends_at: Option<NaiveDateTime>,
    pub canceled_at: Option<NaiveDateTime>,
    pub deactivated_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub billing_anchor_at: Option<NaiveDateTime>,
    pub periods_paid: i32,
    pub next_action_at: Option<NaiveDateTime>,
    pub past_due_since: Option<NaiveDateTime>,
    pub renewal_attempts: i32,
    pub promo_periods_left: Option<i32>,
    pub pending_plan_id: Option<i64>,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    /// Set while a cancellation is being sent to Treefort (see `services::cancel`).
    pub cancel_requested_at: Option<NaiveDateTime>,
    /// The terms this subscriber pays (see `terms`).
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub divisor: Option<i64>,
    pub billing_interval: Option<String>,
    pub interval_count: Option<i32>,
}

/// What a subscription is, in the words of the billing portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Trialing,
    Active,
    /// A renewal failed; access lasts through the grace period while it is retried.
    PastDue,
    Canceled,
    Ended,
}

impl Subscription {
    /// The price and interval this subscriber keeps; `plan`'s current ones for a row written
    /// before terms were kept.
    pub fn terms(&self, plan: &crate::models::plans::Plan) -> crate::models::plans::Terms {
        match (
            self.amount,
            &self.currency,
            self.divisor,
            &self.billing_interval,
            self.interval_count,
        ) {
            (Some(amount), Some(currency), Some(divisor), Some(interval), Some(count)) => {
                crate::models::plans::Terms {
                    price: crate::domain::money::Money {
                        amount,
                        currency: currency.clone(),
                        divisor,
                    },
                    billing_interval: interval.clone(),
                    interval_count: count,
                }
            }
            _ => plan.terms(),
        }
    }

    /// The terms of the next renewal: on `next` (the plan of a pending switch, or the current
    /// plan `current`). A switch takes the new plan's terms as they are then.
    pub fn next_terms(
        &self,
        current: &crate::models::plans::Plan,
        next: &crate::models::plans::Plan,
    ) -> crate::models::plans::Terms {
        if next.id == self.plan_id {
            self.terms(current)
        } else {
            next.terms()
        }
    }

    pub fn status(&self, now: NaiveDateTime) -> Status {
        if self.deactivated_at.is_some() {
            Status::Ended
        } else if self.canceled_at.is_some() {
            Status::Canceled
        } else if self.past_due_since.is_some() {
            Status::PastDue
        } else if self.trial_ends_at.is_some_and(|t| t > now) {
            Status::Trialing
        } else {
            Status::Active
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = subscriptions)]
pub struct NewSubscription {
    pub user_id: String,
    pub customer_id: i64,
    pub plan_id: i64,
    pub promo_code_id: Option<i64>,
    pub current_period_started_at: NaiveDateTime,
    pub current_period_ends_at: NaiveDateTime,
    pub trial_ends_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub billing_anchor_at: Option<NaiveDateTime>,
    pub periods_paid: i32,
    pub next_action_at: Option<NaiveDateTime>,
    pub promo_periods_left: Option<i32>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub divisor: Option<i64>,
    pub billing_interval: Option<String>,
    pub interval_count: Option<i32>,
}

pub fn insert(conn: &mut AnyConnection, new: &NewSubscription) -> QueryResult<Subscription> {
    diesel::insert_into(subscriptions::table)
        .values(new)
        .returning(subscriptions::all_columns)
        .get_result(conn)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Subscription>> {
    subscriptions::table.find(id).first(conn).optional()
}

/// The user's subscription that is not deactivated (there is at most one).
pub fn find_live_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> QueryResult<Option<Subscription>> {
    subscriptions::table
        .filter(subscriptions::user_id.eq(user_id))
        .filter(subscriptions::deactivated_at.is_null())
        .first(conn)
        .optional()
}

pub fn list_for_user(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Vec<Subscription>> {
    subscriptions::table
        .filter(subscriptions::user_id.eq(user_id))
        .order(subscriptions::id.desc())
        .load(conn)
}

/// Whether the user ever had a subscription (for first-time-only promo codes).
pub fn user_has_subscribed_before(conn: &mut AnyConnection, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        subscriptions::table.filter(subscriptions::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

pub fn set_treefort_id(
    conn: &mut AnyConnection,
    id: i64,
    treefort_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(subscriptions::table.find(id))
        .set((
            subscriptions::treefort_subscription_id.eq(treefort_id),
            subscriptions::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Treefort's ids of the given subscriptions (`None` where Treefort has not answered yet).
pub fn treefort_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, Option<String>>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(subscriptions::table
        .filter(subscriptions::id.eq_any(ids))
        .select((subscriptions::id, subscriptions::treefort_subscription_id))
        .load::<(i64, Option<String>)>(conn)?
        .into_iter()
        .collect())
}

/// Records a cancellation once; a repeated call changes nothing.
pub fn mark_canceled(conn: &mut AnyConnection, id: i64, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        subscriptions::table
            .find(id)
            .filter(subscriptions::canceled_at.is_null()),
    )
    .set((
        subscriptions::canceled_at.eq(at),
        subscriptions::updated_at.eq(at),
    ))
    .execute(conn)
}

/// Column changes of a subscription. `None` leaves a column alone; `Some(None)` sets NULL.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionChanges {
    pub plan_id: Option<i64>,
    pub current_period_started_at: Option<NaiveDateTime>,
    pub current_period_ends_at: Option<NaiveDateTime>,
    pub trial_ends_at: Option<Option<NaiveDateTime>>,
    pub canceled_at: Option<Option<NaiveDateTime>>,
    pub deactivated_at: Option<Option<NaiveDateTime>>,
    pub billing_anchor_at: Option<Option<NaiveDateTime>>,
    pub periods_paid: Option<i32>,
    pub next_action_at: Option<Option<NaiveDateTime>>,
    pub past_due_since: Option<Option<NaiveDateTime>>,
    pub renewal_attempts: Option<i32>,
    pub promo_code_id: Option<Option<i64>>,
    pub promo_periods_left: Option<Option<i32>>,
    pub pending_plan_id: Option<Option<i64>>,
    pub locked_by: Option<Option<String>>,
    pub locked_until: Option<Option<NaiveDateTime>>,
    pub updated_at: Option<NaiveDateTime>,
    pub cancel_requested_at: Option<Option<NaiveDateTime>>,
    pub amount: Option<Option<i64>>,
    pub currency: Option<Option<String>>,
    pub divisor: Option<Option<i64>>,
    pub billing_interval: Option<Option<String>>,
    pub interval_count: Option<Option<i32>>,
}

impl SubscriptionChanges {
    /// The changes, plus `terms` as the subscriber's from now on.
    pub fn with_terms(mut self, terms: &crate::models::plans::Terms) -> Self {
        self.amount = Some(Some(terms.price.amount));
        self.currency = Some(Some(terms.price.currency.clone()));
        self.divisor = Some(Some(terms.price.divisor));
        self.billing_interval = Some(Some(terms.billing_interval.clone()));
        self.interval_count = Some(Some(terms.interval_count));
        self
    }

    /// The changes, plus `updated_at` and a released lease.
    pub fn releasing(mut self, now: NaiveDateTime) -> Self {
        self.locked_by = Some(None);
        self.locked_until = Some(None);
        self.updated_at = Some(now);
        self
    }
}

pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    changes: &SubscriptionChanges,
) -> QueryResult<usize> {
    diesel::update(subscriptions::table.find(id))
        .set(changes)
        .execute(conn)
}

/// Makes a past-due, live subscription due for the worker now (a retry it need not wait for).
pub fn make_due_if_past_due(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        subscriptions::table
            .find(id)
            .filter(subscriptions::past_due_since.is_not_null())
            .filter(subscriptions::deactivated_at.is_null())
            .filter(subscriptions::canceled_at.is_null()),
    )
    .set((
        subscriptions::next_action_at.eq(now),
        subscriptions::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Makes a live, uncanceled subscription whose period has ended (its renewal is in progress or
/// waits for a retry) due for the worker now. One still inside its period is left alone: making it
/// due would charge the next period early.
pub fn make_due_if_renewing(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        subscriptions::table
            .find(id)
            .filter(subscriptions::current_period_ends_at.le(now))
            .filter(subscriptions::next_action_at.gt(now))
            .filter(subscriptions::deactivated_at.is_null())
            .filter(subscriptions::canceled_at.is_null()),
    )
    .set((
        subscriptions::next_action_at.eq(now),
        subscriptions::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Applies changes only while `owner` holds the lease. Returns whether it did.
pub fn update_held_by(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    changes: &SubscriptionChanges,
) -> QueryResult<bool> {
    update_held(conn, id, owner, changes)
}

/// Applies changes only while `owner` still holds the lease and the subscription is still at
/// `periods_paid`: a worker whose lease ran out can never apply a renewal twice.
pub fn update_if_held(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    periods_paid: i32,
    changes: &SubscriptionChanges,
) -> QueryResult<usize> {
    diesel::update(
        subscriptions::table
            .find(id)
            .filter(subscriptions::locked_by.eq(owner))
            .filter(subscriptions::periods_paid.eq(periods_paid)),
    )
    .set(changes)
    .execute(conn)
}

crate::leased!(
    subscriptions,
    available(now) = subscriptions::deactivated_at.is_null()
);

/// Takes the lease on a live subscription for a change a user asked for (cancel, resume), if no
/// worker or other request holds it.
pub fn claim_for_change(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    take_lease(conn, id, owner, now, until)
}

/// The ids of `list_unfinished_cancellations` (binds: before, now), 500 at a time (the next
/// round takes the rest). It runs every worker round: through `subscriptions_cancel_requested`,
/// which holds only the cancellations in flight (a full scan took 100 ms a round with a million
/// subscriptions on SQLite).
pub const UNFINISHED_CANCELLATIONS_SQL: &str = "SELECT id FROM subscriptions \
    WHERE cancel_requested_at IS NOT NULL AND cancel_requested_at < $1 \
    AND canceled_at IS NULL AND deactivated_at IS NULL \
    AND (locked_until IS NULL OR locked_until < $2) ORDER BY cancel_requested_at LIMIT 500";

/// Subscriptions whose cancellation was sent (or about to be) before `before` and never recorded,
/// and that nobody holds now; by id.
pub fn list_unfinished_cancellations(
    conn: &mut AnyConnection,
    before: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Vec<Subscription>> {
    use diesel::sql_types::Timestamp;
    let sql = crate::db::claim_sql(conn, UNFINISHED_CANCELLATIONS_SQL);
    let ids: Vec<crate::db::Id> = crate::on_backend!(conn, |c| diesel::sql_query(&sql)
        .bind::<Timestamp, _>(before)
        .bind::<Timestamp, _>(now)
        .load(c))?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = ids.into_iter().map(|row| row.id).collect();
    let mut found: Vec<Subscription> = find_many(conn, &ids)?.into_values().collect();
    found.sort_by_key(|s| s.id);
    Ok(found)
}

/// Live subscriptions of `plan` that pay other terms than the plan's current ones (it was edited
/// after they subscribed).
pub fn count_on_other_terms(
    conn: &mut AnyConnection,
    plan: &crate::models::plans::Plan,
) -> QueryResult<i64> {
    on_other_terms(plan).count().get_result(conn)
}

/// Moves the live subscribers of `plan` who pay another price to its current price (from each
/// one's next renewal). Their billing interval stays: periods count from their first one, so a
/// new interval is a plan switch. Returns how many moved.
pub fn move_to_plan_price(
    conn: &mut AnyConnection,
    plan: &crate::models::plans::Plan,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let ids: Vec<i64> = on_other_terms(plan).select(subscriptions::id).load(conn)?;
    diesel::update(subscriptions::table.filter(subscriptions::id.eq_any(&ids)))
        .set((
            subscriptions::amount.eq(plan.amount),
            subscriptions::currency.eq(&plan.currency),
            subscriptions::divisor.eq(plan.divisor),
            subscriptions::updated_at.eq(now),
        ))
        .execute(conn)
}

fn on_other_terms(
    plan: &crate::models::plans::Plan,
) -> subscriptions::BoxedQuery<'static, crate::db::MultiBackend> {
    subscriptions::table
        .filter(subscriptions::plan_id.eq(plan.id))
        .filter(subscriptions::deactivated_at.is_null())
        .filter(
            subscriptions::amount
                .ne(plan.amount)
                .or(subscriptions::currency.ne(plan.currency.clone()))
                .or(subscriptions::divisor.ne(plan.divisor))
                .or(subscriptions::billing_interval.ne(plan.billing_interval.clone()))
                .or(subscriptions::interval_count.ne(plan.interval_count)),
        )
        .into_boxed()
}

/// When the worker next has something to do for any live subscription (renewal, retry, trial
/// end, deactivation): local mode's "advance to the next renewal".
pub fn next_action_at(conn: &mut AnyConnection) -> QueryResult<Option<NaiveDateTime>> {
    subscriptions::table
        .filter(subscriptions::deactivated_at.is_null())
        .select(diesel::dsl::min(subscriptions::next_action_at))
        .first(conn)
}

/// The subscriptions among `ids`, by id (one query).
pub fn find_many(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, Subscription>> {
    Ok(subscriptions::table
        .filter(subscriptions::id.eq_any(ids))
        .load::<Subscription>(conn)?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// Filters of a subscription listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub user_id: Option<String>,
    pub plan_id: Option<i64>,
    /// `trialing`, `active`, `past_due`, `canceled` or `ended`, as `Subscription::status` says.
    pub status: Option<String>,
    /// Only ids below this one (the cursor: newest first, so rows added meanwhile never shift it).
    pub starting_after: Option<i64>,
}

/// Subscriptions newest first, `limit` of them.
pub fn list(
    conn: &mut AnyConnection,
    listing: &Listing,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Subscription>> {
    use subscriptions as s;
    let mut query = s::table.into_boxed();
    if let Some(user_id) = &listing.user_id {
        query = query.filter(s::user_id.eq(user_id.clone()));
    }
    if let Some(plan_id) = listing.plan_id {
        query = query.filter(s::plan_id.eq(plan_id));
    }
    if let Some(after) = listing.starting_after {
        query = query.filter(s::id.lt(after));
    }
    query = match listing.status.as_deref() {
        None => query,
        Some("ended") => query.filter(s::deactivated_at.is_not_null()),
        Some("canceled") => query
            .filter(s::deactivated_at.is_null())
            .filter(s::canceled_at.is_not_null()),
        Some("past_due") => query
            .filter(s::deactivated_at.is_null())
            .filter(s::canceled_at.is_null())
            .filter(s::past_due_since.is_not_null()),
        Some("trialing") => query
            .filter(s::deactivated_at.is_null())
            .filter(s::canceled_at.is_null())
            .filter(s::past_due_since.is_null())
            .filter(s::trial_ends_at.gt(now)),
        Some(_) => query
            .filter(s::deactivated_at.is_null())
            .filter(s::canceled_at.is_null())
            .filter(s::past_due_since.is_null())
            .filter(s::trial_ends_at.is_null().or(s::trial_ends_at.le(now))),
    };
    query.order(s::id.desc()).limit(limit).load(conn)
}

/// Live subscriptions in good standing (not canceled, not past due) whose next action falls in
/// `(after, until]`, soonest first, at most `limit` (read through the `next_action_at` index):
/// the ones a reminder before their next charge is due for.
pub fn charging_between(
    conn: &mut AnyConnection,
    after: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Subscription>> {
    subscriptions::table
        .filter(subscriptions::next_action_at.gt(after))
        .filter(subscriptions::next_action_at.le(until))
        .filter(subscriptions::deactivated_at.is_null())
        .filter(subscriptions::canceled_at.is_null())
        .filter(subscriptions::past_due_since.is_null())
        .order((subscriptions::next_action_at, subscriptions::id))
        .limit(limit)
        .load(conn)
}
