//! `treefort_outbox`: the durable queue of subscription updates for Treefort. Rows are written in
//! the same transaction as the change they report, claimed with a lease (a conditional UPDATE that
//! only one instance wins), and delivered in id order per subscription.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::treefort_outbox;

crate::leased!(
    treefort_outbox,
    available(now) = treefort_outbox::status.eq(PENDING)
);

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
/// Rejected by Treefort for good: kept with its error, holding back its subscription's later
/// updates, until an operator retries or skips it.
pub const DEAD: &str = "dead";
/// Given up on purpose by an operator (who and why are recorded).
pub const SKIPPED: &str = "skipped";
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
    pub dead_at: Option<NaiveDateTime>,
    pub skipped_at: Option<NaiveDateTime>,
    pub skipped_by: Option<String>,
    pub skip_reason: Option<String>,
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

/// The claim of `claim_due_heads` (binds: owner, lease end, now, limit). The due rows are chosen once,
/// in a CTE: written as `id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)`, PostgreSQL ran the
/// subquery again per row and claimed more than the limit. The outer conditions repeat the inner
/// ones: the UPDATE checks them again on the row itself.
pub const CLAIM_DUE_HEADS_SQL: &str = "WITH due AS MATERIALIZED (SELECT o.id FROM treefort_outbox o \
          WHERE o.status = 'pending' AND o.next_attempt_at <= $3 \
          AND (o.locked_until IS NULL OR o.locked_until < $3) \
          AND NOT EXISTS (SELECT 1 FROM treefort_outbox e WHERE e.subscription_id = o.subscription_id \
            AND e.status IN ('pending', 'dead') AND e.id < o.id) \
          ORDER BY o.id LIMIT $4 {skip_locked}) \
        UPDATE treefort_outbox SET locked_by = $1, locked_until = $2 \
        WHERE id IN (SELECT id FROM due) AND status = 'pending' \
        AND (locked_until IS NULL OR locked_until < $3) RETURNING id";

/// Takes the lease, in one statement, on up to `limit` due entries that may go now: pending, not
/// leased, and first in their subscription's line (no older entry of it is pending or dead). Two
/// instances never get the same entry: PostgreSQL skips rows another claim has locked, SQLite has
/// one writer at a time, and the conditions are checked again by the UPDATE itself.
pub fn claim_due_heads(
    conn: &mut AnyConnection,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    let ids = crate::db::claim_with(conn, CLAIM_DUE_HEADS_SQL, owner, until, now, limit, &[])?;
    let mut claimed: Vec<OutboxEntry> = treefort_outbox::table
        .filter(treefort_outbox::id.eq_any(&ids))
        .load(conn)?;
    claimed.sort_by_key(|e| e.id);
    Ok(claimed)
}

/// Marks entries delivered, in one statement.
pub fn mark_all_delivered(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    mark_delivered_with(conn, ids, now, None)
}

/// Queues several entries in one statement (the rows of one batch of renewals).
pub fn insert_all(conn: &mut AnyConnection, new: &[NewOutboxEntry]) -> QueryResult<usize> {
    if new.is_empty() {
        return Ok(0);
    }
    match conn {
        AnyConnection::Postgres(pg) => {
            use diesel::sql_types::{BigInt, Text, Timestamp};
            super::unnest::unnest_insert!(
                new => NewOutboxEntry,
                "treefort_outbox",
                [
                    (subscription_id, BigInt),
                    (operation, Text),
                    (body, Text),
                    (status, Text),
                    (next_attempt_at, Timestamp),
                    (created_at, Timestamp),
                ],
                ""
            )
            .execute(pg)
        }
        AnyConnection::Sqlite(c) => diesel::insert_into(treefort_outbox::table)
            .values(new)
            .execute(c),
    }
}

/// The entries of a subscription Treefort does not have yet (pending or dead), oldest first.
pub fn list_pending_for_subscription(
    conn: &mut AnyConnection,
    subscription_id: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    treefort_outbox::table
        .filter(treefort_outbox::subscription_id.eq(subscription_id))
        .filter(treefort_outbox::status.eq_any([PENDING, DEAD]))
        .order(treefort_outbox::id)
        .load(conn)
}

/// Whether an older entry of the same subscription is still undelivered, pending or dead (it
/// must go first: a dead one holds the queue until it is retried or skipped).
pub fn has_earlier_pending(conn: &mut AnyConnection, entry: &OutboxEntry) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        treefort_outbox::table
            .filter(treefort_outbox::subscription_id.eq(entry.subscription_id))
            .filter(treefort_outbox::status.eq_any([PENDING, DEAD]))
            .filter(treefort_outbox::id.lt(entry.id)),
    ))
    .get_result(conn)
}

/// Treefort rejected the entry for good: dead, with its error.
pub fn mark_dead(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(treefort_outbox::table.find(id))
        .set((
            treefort_outbox::status.eq(DEAD),
            treefort_outbox::dead_at.eq(now),
            treefort_outbox::attempts.eq(treefort_outbox::attempts + 1),
            treefort_outbox::last_error.eq(error),
            lease_cleared(),
        ))
        .execute(conn)
}

/// Gives up a pending or dead entry on purpose, recording who and why; the subscription's later
/// updates may then go. Returns how many entries were skipped (0 or 1).
pub fn skip(
    conn: &mut AnyConnection,
    id: i64,
    by: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        treefort_outbox::table
            .find(id)
            .filter(treefort_outbox::status.eq_any([PENDING, DEAD])),
    )
    .set((
        treefort_outbox::status.eq(SKIPPED),
        treefort_outbox::skipped_at.eq(now),
        treefort_outbox::skipped_by.eq(by),
        treefort_outbox::skip_reason.eq(reason),
        lease_cleared(),
    ))
    .execute(conn)
}

pub fn count_dead(conn: &mut AnyConnection) -> QueryResult<i64> {
    treefort_outbox::table
        .filter(treefort_outbox::status.eq(DEAD))
        .count()
        .get_result(conn)
}

pub fn mark_delivered(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
    note: Option<&str>,
) -> QueryResult<usize> {
    mark_delivered_with(conn, &[id], now, note)
}

fn mark_delivered_with(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: NaiveDateTime,
    note: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(treefort_outbox::table.filter(treefort_outbox::id.eq_any(ids)))
        .set((
            treefort_outbox::status.eq(DELIVERED),
            treefort_outbox::delivered_at.eq(now),
            treefort_outbox::attempts.eq(treefort_outbox::attempts + 1),
            lease_cleared(),
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
            lease_cleared(),
        ))
        .execute(conn)
}

/// When the oldest update still waiting to be delivered was queued.
pub fn oldest_pending_at(conn: &mut AnyConnection) -> QueryResult<Option<NaiveDateTime>> {
    treefort_outbox::table
        .filter(treefort_outbox::status.eq(PENDING))
        .select(diesel::dsl::min(treefort_outbox::created_at))
        .first(conn)
}

/// Pending updates whose next attempt is due at `now`.
pub fn count_due(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<i64> {
    treefort_outbox::table
        .filter(treefort_outbox::status.eq(PENDING))
        .filter(treefort_outbox::next_attempt_at.le(now))
        .count()
        .get_result(conn)
}

pub fn count_pending(conn: &mut AnyConnection) -> QueryResult<i64> {
    treefort_outbox::table
        .filter(treefort_outbox::status.eq(PENDING))
        .count()
        .get_result(conn)
}

/// Which entries an operator lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Pending and dead: what Treefort does not have yet.
    Undelivered,
    Dead,
    All,
}

/// The newest entries (undelivered ones first), for operators.
pub fn list_recent(
    conn: &mut AnyConnection,
    listing: Listing,
    limit: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    let mut query = treefort_outbox::table.into_boxed();
    match listing {
        Listing::Undelivered => {
            query = query.filter(treefort_outbox::status.eq_any([PENDING, DEAD]));
        }
        Listing::Dead => query = query.filter(treefort_outbox::status.eq(DEAD)),
        Listing::All => {}
    }
    query
        .order((treefort_outbox::status.desc(), treefort_outbox::id.desc()))
        .limit(limit)
        .load(conn)
}

/// Makes entries due now, so the next worker round sends them: one by id (pending, or dead: it
/// is pending again), or every pending one. Dead entries come back only one by one, on purpose.
pub fn retry_now(
    conn: &mut AnyConnection,
    id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    match id {
        Some(id) => diesel::update(
            treefort_outbox::table
                .find(id)
                .filter(treefort_outbox::status.eq_any([PENDING, DEAD])),
        )
        .set((
            treefort_outbox::status.eq(PENDING),
            treefort_outbox::next_attempt_at.eq(now),
            treefort_outbox::dead_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn),
        None => diesel::update(treefort_outbox::table)
            .filter(treefort_outbox::status.eq(PENDING))
            .set(treefort_outbox::next_attempt_at.eq(now))
            .execute(conn),
    }
}
