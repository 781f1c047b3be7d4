//! `portal_sessions`: one row per billing-portal URL, found by the SHA-256 of its token. A portal
//! link may be opened many times until it expires.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::portal_sessions;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PortalSession {
    pub id: i64,
    pub token_hash: String,
    pub user_id: String,
    pub user_email: String,
    pub locale: String,
    pub back_url: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = portal_sessions)]
pub struct NewPortalSession {
    pub token_hash: String,
    pub user_id: String,
    pub user_email: String,
    pub locale: String,
    pub back_url: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, new: &NewPortalSession) -> QueryResult<usize> {
    diesel::insert_into(portal_sessions::table)
        .values(new)
        .execute(conn)
}

pub fn find_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> QueryResult<Option<PortalSession>> {
    portal_sessions::table
        .filter(portal_sessions::token_hash.eq(token_hash))
        .first(conn)
        .optional()
}
