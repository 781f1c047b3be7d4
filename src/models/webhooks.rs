//! `webhook_endpoints`, `webhook_deliveries` and `webhook_attempts`: where the app owner wants
//! events sent, one delivery per event and endpoint (leased like the outbox), and every attempt.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::{webhook_attempts, webhook_deliveries, webhook_endpoints};

crate::leased!(
    webhook_deliveries,
    available(now) = webhook_deliveries::status.eq(PENDING)
);

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
/// Given up after the retry window; `redeliver` makes it pending again.
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub description: Option<String>,
    /// Comma-separated event types; `None`: every type.
    pub event_types: Option<String>,
    pub secret_salt: String,
    pub previous_secret_salt: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<NaiveDateTime>,
    pub last_success_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
}

/// Event types an endpoint gets only when it lists them: a launch token is minted each time a
/// user opens a product, a record for audit rather than a change to act on.
pub const ONLY_WHEN_LISTED: [&str; 1] = ["launch_token.created"];

impl Endpoint {
    /// Whether `event_type` is sent to it: one of the types it lists, or, when it lists none,
    /// every type but those only sent when asked for (`ONLY_WHEN_LISTED`).
    pub fn wants(&self, event_type: &str) -> bool {
        match self.event_types.as_deref() {
            Some(types) => types.split(',').any(|t| t == event_type),
            None => !ONLY_WHEN_LISTED.contains(&event_type),
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<String>,
    pub secret_salt: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub ordering_key: String,
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
#[diesel(table_name = webhook_deliveries)]
pub struct NewDelivery {
    pub endpoint_id: i64,
    pub event_id: i64,
    pub ordering_key: String,
    pub status: String,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub attempted_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct NewAttempt {
    pub delivery_id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub attempted_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// An attempt made, with the delivery and endpoint it was made for: what its record needs.
#[derive(Debug, Clone)]
pub struct Finished {
    pub delivery: Delivery,
    pub endpoint: Endpoint,
    pub attempt: NewAttempt,
}

impl Finished {
    /// Whether the endpoint answered 2xx.
    pub fn ok(&self) -> bool {
        self.attempt
            .status_code
            .is_some_and(|s| (200..300).contains(&s))
    }
}

// Endpoints.

pub fn insert_endpoint(conn: &mut AnyConnection, new: &NewEndpoint) -> QueryResult<Endpoint> {
    diesel::insert_into(webhook_endpoints::table)
        .values(new)
        .returning(webhook_endpoints::all_columns)
        .get_result(conn)
}

/// An endpoint that was not deleted.
pub fn find_endpoint(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Endpoint>> {
    webhook_endpoints::table
        .find(id)
        .filter(webhook_endpoints::deleted_at.is_null())
        .first(conn)
        .optional()
}

pub fn list_endpoints(conn: &mut AnyConnection) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::deleted_at.is_null())
        .order(webhook_endpoints::id.asc())
        .load(conn)
}

/// Enabled endpoints (a deleted one is disabled too).
pub fn list_enabled_endpoints(conn: &mut AnyConnection) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::disabled_at.is_null())
        .order(webhook_endpoints::id.asc())
        .load(conn)
}

/// Disables an enabled endpoint, saying why. Returns whether it was enabled.
pub fn disable_endpoint(
    conn: &mut AnyConnection,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::disabled_at.is_null()),
    )
    .set((
        webhook_endpoints::disabled_at.eq(now),
        webhook_endpoints::disabled_reason.eq(reason),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Enables an endpoint again, with a clean failure record.
pub fn enable_endpoint(conn: &mut AnyConnection, id: i64) -> QueryResult<usize> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::disabled_at.eq(None::<NaiveDateTime>),
            webhook_endpoints::disabled_reason.eq(None::<String>),
            webhook_endpoints::failing_since.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

/// A new secret; the one before keeps signing until `previous_until`.
pub fn roll_secret(
    conn: &mut AnyConnection,
    id: i64,
    old_salt: &str,
    new_salt: &str,
    previous_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::secret_salt.eq(old_salt)),
    )
    .set((
        webhook_endpoints::secret_salt.eq(new_salt),
        webhook_endpoints::previous_secret_salt.eq(old_salt),
        webhook_endpoints::previous_secret_expires_at.eq(previous_until),
    ))
    .execute(conn)
}

/// Deletes an endpoint: hidden, disabled, nothing more sent. Its rows stay (an event being
/// recorded or an attempt in flight may still name it), its deliveries are given up.
pub fn delete_endpoint(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let deleted = diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::deleted_at.is_null()),
    )
    .set((
        webhook_endpoints::deleted_at.eq(now),
        webhook_endpoints::disabled_at.eq(now),
        webhook_endpoints::disabled_reason.eq("deleted"),
    ))
    .execute(conn)?;
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(id))
            .filter(webhook_deliveries::status.eq(PENDING)),
    )
    .set(webhook_deliveries::status.eq(FAILED))
    .execute(conn)?;
    Ok(deleted)
}

/// After a 2xx: the endpoint is healthy.
pub fn record_endpoint_success(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    // Written only when it changes something a reader would notice (a failing endpoint healed,
    // or its last success more than a second old): under a stream of deliveries the row is not
    // rewritten by each of them.
    diesel::update(
        webhook_endpoints::table.find(id).filter(
            webhook_endpoints::failing_since
                .is_not_null()
                .or(webhook_endpoints::last_success_at.is_null())
                .or(webhook_endpoints::last_success_at.lt(now - chrono::TimeDelta::seconds(1))),
        ),
    )
    .set((
        webhook_endpoints::last_success_at.eq(now),
        webhook_endpoints::failing_since.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
}

/// After a failure: failing since now, unless it already was.
pub fn record_endpoint_failure(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::failing_since.is_null()),
    )
    .set(webhook_endpoints::failing_since.eq(now))
    .execute(conn)
}

// Deliveries.

pub fn insert_delivery(conn: &mut AnyConnection, new: &NewDelivery) -> QueryResult<usize> {
    diesel::insert_into(webhook_deliveries::table)
        .values(new)
        .execute(conn)
}

/// Queues several deliveries in one statement.
pub fn insert_deliveries(conn: &mut AnyConnection, new: &[NewDelivery]) -> QueryResult<usize> {
    if new.is_empty() {
        return Ok(0);
    }
    if let AnyConnection::Postgres(pg) = conn {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        return super::unnest::unnest_insert!(
            new => NewDelivery,
            "webhook_deliveries",
            [
                (endpoint_id, BigInt),
                (event_id, BigInt),
                (ordering_key, Text),
                (status, Text),
                (next_attempt_at, Timestamp),
                (created_at, Timestamp),
            ],
            ""
        )
        .execute(pg);
    }
    // Every event of a wave times every endpoint: in chunks, under SQLite's parameter limit.
    let mut inserted = 0;
    for chunk in new.chunks(1_000) {
        inserted += crate::on_backend!(conn, |c| diesel::insert_into(webhook_deliveries::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(inserted)
}

pub fn find_delivery_of(
    conn: &mut AnyConnection,
    event_id: i64,
    endpoint_id: i64,
) -> QueryResult<Option<Delivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::event_id.eq(event_id))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .order(webhook_deliveries::id.desc())
        .first(conn)
        .optional()
}

pub fn list_deliveries_of_event(
    conn: &mut AnyConnection,
    event_id: i64,
) -> QueryResult<Vec<Delivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::event_id.eq(event_id))
        .order(webhook_deliveries::id.asc())
        .load(conn)
}

/// The claim of `claim_due_heads` (binds: owner, lease end, now, limit, endpoint), in the shape
/// of the outbox's. A line's head is its oldest pending delivery, `min(id)`, which both databases
/// answer from `webhook_deliveries_order` in one probe, and the due rows are read in the order of
/// `webhook_deliveries_due`, so a claim stops after a few index entries whatever the planner's
/// statistics say (a `NOT EXISTS` over older rows was planned by PostgreSQL, on statistics taken
/// while the table was nearly empty, as a scan of every pending delivery for each one: 2 s a
/// claim after a burst of 3 000 events). The outer conditions repeat the inner ones: the UPDATE
/// checks them again on the row itself.
pub const CLAIM_DUE_HEADS_SQL: &str = "WITH due AS MATERIALIZED (SELECT d.id FROM webhook_deliveries d \
          WHERE d.endpoint_id = $5 AND d.status = 'pending' AND d.next_attempt_at <= $3 \
          AND (d.locked_until IS NULL OR d.locked_until < $3) \
          AND d.id = (SELECT min(e.id) FROM webhook_deliveries e WHERE e.endpoint_id = d.endpoint_id \
            AND e.ordering_key = d.ordering_key AND e.status = 'pending') \
          ORDER BY d.next_attempt_at, d.id LIMIT $4 {skip_locked}) \
        UPDATE webhook_deliveries SET locked_by = $1, locked_until = $2 \
        WHERE id IN (SELECT id FROM due) AND status = 'pending' \
        AND (locked_until IS NULL OR locked_until < $3) RETURNING id";

/// Takes the lease, in one statement, on up to `limit` due deliveries of one endpoint that may go
/// now: pending, not leased, and first in their subscription's line (no older pending delivery of
/// the same subscription to this endpoint). Two instances never get the same delivery:
/// PostgreSQL skips rows another claim has locked, SQLite has one writer at a time, and the
/// conditions are checked again by the UPDATE itself.
pub fn claim_due_heads(
    conn: &mut AnyConnection,
    endpoint_id: i64,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    let ids = crate::db::claim_with(
        conn,
        CLAIM_DUE_HEADS_SQL,
        owner,
        until,
        now,
        limit,
        &[endpoint_id],
    )?;
    webhook_deliveries::table
        .filter(webhook_deliveries::id.eq_any(&ids))
        .order(webhook_deliveries::id.asc())
        .load(conn)
}

/// What an attempt did to its delivery, written only by the lease holder.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = webhook_deliveries, treat_none_as_null = true)]
pub struct AttemptResult {
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

/// Makes a delivery pending and due now (a manual redelivery), whatever its state. Its retry
/// window and backoff start again (`created_at` is when it was queued).
pub fn make_due(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq(PENDING),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::created_at.eq(now),
            webhook_deliveries::delivered_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

// Attempts.

pub fn insert_attempt(conn: &mut AnyConnection, new: &NewAttempt) -> QueryResult<usize> {
    diesel::insert_into(webhook_attempts::table)
        .values(new)
        .execute(conn)
}

/// An endpoint's attempts, newest first, below the id `before`.
pub fn list_attempts(
    conn: &mut AnyConnection,
    endpoint_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(Attempt, String)>> {
    use crate::schema::events;
    let mut query = webhook_attempts::table
        .inner_join(events::table.on(events::id.eq(webhook_attempts::event_id)))
        .filter(webhook_attempts::endpoint_id.eq(endpoint_id))
        .select((webhook_attempts::all_columns, events::public_id))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(webhook_attempts::id.lt(before));
    }
    query
        .order(webhook_attempts::id.desc())
        .limit(limit)
        .load(conn)
}
