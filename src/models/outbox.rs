//! `treefort_outbox`: the durable queue of subscription updates for Treefort. Rows are written in
//! the same transaction as the change they report, claimed with a lease (a conditional UPDATE that
//! only one instance wins), and delivered in id order per subscription.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::treefort_outbox;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const CREATE: &str = "create";
pub const UPDATE: &str = "update";

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct OutboxEntry {
    pub id: i64,
    pub subscription_id: i64,
    pub operation: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = treefort_outbox)]
pub struct NewOutboxEntry {
    pub subscription_id: i64,
    pub operation: String,
    pub body: String,
    pub status: String,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, new: &NewOutboxEntry) -> QueryResult<OutboxEntry> {
    diesel::insert_into(treefort_outbox::table)
        .values(new)
        .returning(treefort_outbox::all_columns)
        .get_result(conn)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<OutboxEntry>> {
    treefort_outbox::table.find(id).first(conn).optional()
}

/// Pending entries whose time has come, oldest first.
pub fn list_due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    treefort_outbox::table
        .filter(treefort_outbox::status.eq(PENDING))
        .filter(treefort_outbox::next_attempt_at.le(now))
        .filter(
            treefort_outbox::locked_until
                .is_null()
                .or(treefort_outbox::locked_until.lt(now)),
        )
        .order(treefort_outbox::id)
        .limit(limit)
        .load(conn)
}

pub fn list_pending_for_subscription(
    conn: &mut AnyConnection,
    subscription_id: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    treefort_outbox::table
        .filter(treefort_outbox::subscription_id.eq(subscription_id))
        .filter(treefort_outbox::status.eq(PENDING))
        .order(treefort_outbox::id)
        .load(conn)
}

/// Whether an older entry of the same subscription is still pending (it must go first).
pub fn has_earlier_pending(conn: &mut AnyConnection, entry: &OutboxEntry) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        treefort_outbox::table
            .filter(treefort_outbox::subscription_id.eq(entry.subscription_id))
            .filter(treefort_outbox::status.eq(PENDING))
            .filter(treefort_outbox::id.lt(entry.id)),
    ))
    .get_result(conn)
}

/// Takes the lease on a pending entry until `until`, if nobody holds it. Returns whether we won.
pub fn claim(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        treefort_outbox::table
            .find(id)
            .filter(treefort_outbox::status.eq(PENDING))
            .filter(
                treefort_outbox::locked_until
                    .is_null()
                    .or(treefort_outbox::locked_until.lt(now)),
            ),
    )
    .set((
        treefort_outbox::locked_by.eq(owner),
        treefort_outbox::locked_until.eq(until),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Gives a lease back without counting an attempt (the entry was not ready to send).
pub fn release(conn: &mut AnyConnection, id: i64, owner: &str) -> QueryResult<usize> {
    diesel::update(
        treefort_outbox::table
            .find(id)
            .filter(treefort_outbox::locked_by.eq(owner)),
    )
    .set((
        treefort_outbox::locked_by.eq(None::<String>),
        treefort_outbox::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
}

pub fn mark_delivered(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
    note: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(treefort_outbox::table.find(id))
        .set((
            treefort_outbox::status.eq(DELIVERED),
            treefort_outbox::delivered_at.eq(now),
            treefort_outbox::attempts.eq(treefort_outbox::attempts + 1),
            treefort_outbox::locked_by.eq(None::<String>),
            treefort_outbox::locked_until.eq(None::<NaiveDateTime>),
            treefort_outbox::last_error.eq(note),
        ))
        .execute(conn)
}

pub fn record_failure(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    next_attempt_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(treefort_outbox::table.find(id))
        .set((
            treefort_outbox::attempts.eq(treefort_outbox::attempts + 1),
            treefort_outbox::next_attempt_at.eq(next_attempt_at),
            treefort_outbox::last_error.eq(error),
            treefort_outbox::locked_by.eq(None::<String>),
            treefort_outbox::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

pub fn count_pending(conn: &mut AnyConnection) -> QueryResult<i64> {
    treefort_outbox::table
        .filter(treefort_outbox::status.eq(PENDING))
        .count()
        .get_result(conn)
}

/// The newest entries (pending ones first), for operators.
pub fn list_recent(
    conn: &mut AnyConnection,
    include_delivered: bool,
    limit: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    let mut query = treefort_outbox::table.into_boxed();
    if !include_delivered {
        query = query.filter(treefort_outbox::status.eq(PENDING));
    }
    query
        .order((treefort_outbox::status.desc(), treefort_outbox::id.desc()))
        .limit(limit)
        .load(conn)
}

/// Makes pending entries due now (all of them, or one), so the next worker round sends them.
pub fn retry_now(
    conn: &mut AnyConnection,
    id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut query = diesel::update(treefort_outbox::table)
        .filter(treefort_outbox::status.eq(PENDING))
        .into_boxed();
    if let Some(id) = id {
        query = query.filter(treefort_outbox::id.eq(id));
    }
    query
        .set(treefort_outbox::next_attempt_at.eq(now))
        .execute(conn)
}
