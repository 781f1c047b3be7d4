//! `api_keys`: keys of the app owner's backend for `/v1`, found by their public `key_id`; only a
//! hash of the secret part is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::api_keys;

pub const READ: &str = "read";
pub const WRITE: &str = "write";

#[derive(Clone, PartialEq, Eq, Queryable)]
pub struct ApiKey {
    pub id: i64,
    pub key_id: String,
    pub name: String,
    pub scope: String,
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Never prints the secret's hash (keys are held in memory, in the catalog).
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("secret_hash", &"[redacted]")
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey {
    pub key_id: String,
    pub name: String,
    pub scope: String,
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
}

/// Adds a key. Keys are part of the in-memory catalog: the version is raised in the same
/// transaction, so every instance reads them again.
pub fn insert(conn: &mut AnyConnection, new: &NewApiKey) -> QueryResult<ApiKey> {
    conn.transaction(|conn| {
        let key = diesel::insert_into(api_keys::table)
            .values(new)
            .returning(api_keys::all_columns)
            .get_result(conn)?;
        super::catalog_version::bump(conn)?;
        Ok(key)
    })
}

/// Keys not revoked, by public id (the in-memory catalog's).
pub fn list_usable(conn: &mut AnyConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::revoked_at.is_null())
        .load(conn)
}

pub fn find_by_key_id(conn: &mut AnyConnection, key_id: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::key_id.eq(key_id))
        .first(conn)
        .optional()
}

pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table.order(api_keys::id.asc()).load(conn)
}

/// Revokes a key (by its number or its public id). Returns how many were revoked (0 or 1).
pub fn revoke(conn: &mut AnyConnection, key: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let by_number = key.parse::<i64>().ok();
    let mut update = diesel::update(api_keys::table)
        .filter(api_keys::revoked_at.is_null())
        .into_boxed();
    update = match by_number {
        Some(id) => update.filter(api_keys::id.eq(id)),
        None => update.filter(api_keys::key_id.eq(key.to_string())),
    };
    conn.transaction(|conn| {
        let revoked = update.set(api_keys::revoked_at.eq(now)).execute(conn)?;
        if revoked > 0 {
            // Every instance drops it from memory at its next version check.
            super::catalog_version::bump(conn)?;
        }
        Ok(revoked)
    })
}

/// Notes a use, at most once a minute per key: a key used within the minute is no write at all,
/// and of racing requests only one writes.
pub fn touch(conn: &mut AnyConnection, key: &ApiKey, now: NaiveDateTime) -> QueryResult<usize> {
    let a_minute_ago = now - chrono::TimeDelta::minutes(1);
    if key.last_used_at.is_some_and(|at| at >= a_minute_ago) {
        return Ok(0);
    }
    diesel::update(
        api_keys::table.find(key.id).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(a_minute_ago)),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)
}
