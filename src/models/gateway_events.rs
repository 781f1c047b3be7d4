//! `gateway_events`: what the payment gateway told us through its webhooks, stored by the gateway's
//! event id before it is acted on. A duplicate or replayed event finds its id taken and changes
//! nothing; an event whose processing failed is tried again by the worker.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::gateway_events;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct GatewayEvent {
    pub id: i64,
    pub gateway: String,
    pub event_id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub payload: String,
    pub received_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
    pub attempts: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub locked_by: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = gateway_events)]
pub struct NewGatewayEvent {
    pub gateway: String,
    pub event_id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub payload: String,
    pub received_at: NaiveDateTime,
}

/// Stores an event unless its id is known. Returns the stored row's id, or `None` for a duplicate.
pub fn insert_new(conn: &mut AnyConnection, new: &NewGatewayEvent) -> QueryResult<Option<i64>> {
    let inserted = crate::on_backend!(conn, |c| {
        diesel::insert_into(gateway_events::table)
            .values(new)
            .on_conflict(gateway_events::event_id)
            .do_nothing()
            .execute(c)
    })?;
    if inserted == 0 {
        return Ok(None);
    }
    gateway_events::table
        .filter(gateway_events::event_id.eq(&new.event_id))
        .select(gateway_events::id)
        .first(conn)
        .map(Some)
}

crate::leased!(
    gateway_events,
    available(now) = gateway_events::processed_at.is_null()
);

/// Takes an unprocessed event for processing by `owner` until `until`, counting the attempt; only
/// one caller (of any instance) wins.
pub fn claim(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Option<GatewayEvent>> {
    if !take_lease(conn, id, owner, now, until)? {
        return Ok(None);
    }
    diesel::update(gateway_events::table.find(id))
        .set(gateway_events::attempts.eq(gateway_events::attempts + 1))
        .execute(conn)?;
    gateway_events::table.find(id).first(conn).optional()
}

pub fn mark_processed(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(gateway_events::table.find(id))
        .set((
            gateway_events::processed_at.eq(now),
            gateway_events::last_error.eq(None::<String>),
            lease_cleared(),
        ))
        .execute(conn)
}

/// Leaves the event for a later try, with why it failed (no secrets: our own error text).
pub fn mark_failed(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    retry_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(gateway_events::table.find(id))
        .set((
            gateway_events::locked_until.eq(retry_at),
            gateway_events::last_error.eq(error),
        ))
        .execute(conn)
}

/// Unprocessed events whose lease (if any) has run out, oldest first.
pub fn list_due(conn: &mut AnyConnection, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<i64>> {
    gateway_events::table
        .filter(gateway_events::processed_at.is_null())
        .filter(lease_is_free(now))
        .order(gateway_events::received_at.asc())
        .select(gateway_events::id)
        .limit(limit)
        .load(conn)
}
