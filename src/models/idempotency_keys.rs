//! `idempotency_keys`: the first answer to each `Idempotency-Key` of a `/v1` write, per API key,
//! kept 24 hours. A row without a status is a request still running.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::idempotency_keys;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct IdempotencyKey {
    pub id: i64,
    pub api_key_id: i64,
    pub idem_key: String,
    pub request_hash: String,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct NewIdempotencyKey {
    pub api_key_id: i64,
    pub idem_key: String,
    pub request_hash: String,
    pub created_at: NaiveDateTime,
}

pub fn find(
    conn: &mut AnyConnection,
    api_key_id: i64,
    idem_key: &str,
) -> QueryResult<Option<IdempotencyKey>> {
    idempotency_keys::table
        .filter(idempotency_keys::api_key_id.eq(api_key_id))
        .filter(idempotency_keys::idem_key.eq(idem_key))
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut AnyConnection, new: &NewIdempotencyKey) -> QueryResult<usize> {
    diesel::insert_into(idempotency_keys::table)
        .values(new)
        .execute(conn)
}

pub fn complete(
    conn: &mut AnyConnection,
    id: i64,
    status_code: i32,
    body: &str,
) -> QueryResult<usize> {
    diesel::update(idempotency_keys::table.find(id))
        .set((
            idempotency_keys::status_code.eq(status_code),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(conn)
}

pub fn delete(conn: &mut AnyConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.find(id)).execute(conn)
}

/// Forgets keys made before `before`.
pub fn delete_older_than(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
        .execute(conn)
}
