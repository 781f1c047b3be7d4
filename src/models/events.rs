//! `events`: what happened to a subscription or a payment, written in the transaction of the
//! change itself. Read newest first by `GET /v1/events`, and fanned out to webhook endpoints.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::events;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
#[diesel(table_name = events)]
pub struct Event {
    pub id: i64,
    pub public_id: String,
    pub event_type: String,
    pub user_id: String,
    pub subscription_id: Option<i64>,
    pub payment_id: Option<i64>,
    /// JSON text: the subscription or payment as it was after the change.
    pub data: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub struct NewEvent {
    pub public_id: String,
    pub event_type: String,
    pub user_id: String,
    pub subscription_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// Inserts events in one statement; RETURNING gives them back in no promised order.
pub fn insert_all(conn: &mut AnyConnection, new: &[NewEvent]) -> QueryResult<Vec<Event>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        AnyConnection::Postgres(pg) => {
            use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
            super::unnest::unnest_insert!(
                new => NewEvent,
                "events",
                [
                    (public_id, Text),
                    (event_type, Text),
                    (user_id, Text),
                    (subscription_id, Nullable<BigInt>),
                    (payment_id, Nullable<BigInt>),
                    (data, Text),
                    (created_at, Timestamp),
                ],
                "RETURNING *"
            )
            .load(pg)
        }
        AnyConnection::Sqlite(c) => diesel::insert_into(events::table)
            .values(new)
            .returning(events::all_columns)
            .get_results(c),
    }
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Event>> {
    events::table.find(id).first(conn).optional()
}

pub fn find_many(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<Event>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    events::table.filter(events::id.eq_any(ids)).load(conn)
}

pub fn find_by_public_id(conn: &mut AnyConnection, public_id: &str) -> QueryResult<Option<Event>> {
    events::table
        .filter(events::public_id.eq(public_id))
        .first(conn)
        .optional()
}

/// Filters of a listing; `before` is the row id the previous page ended with.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub event_type: Option<String>,
    pub user_id: Option<String>,
    pub subscription_id: Option<i64>,
    pub before: Option<i64>,
}

/// Newest first, `limit` rows.
pub fn list(conn: &mut AnyConnection, listing: &Listing, limit: i64) -> QueryResult<Vec<Event>> {
    let mut query = events::table.into_boxed();
    if let Some(t) = &listing.event_type {
        query = query.filter(events::event_type.eq(t));
    }
    if let Some(u) = &listing.user_id {
        query = query.filter(events::user_id.eq(u));
    }
    if let Some(s) = listing.subscription_id {
        query = query.filter(events::subscription_id.eq(s));
    }
    if let Some(before) = listing.before {
        query = query.filter(events::id.lt(before));
    }
    query.order(events::id.desc()).limit(limit).load(conn)
}
