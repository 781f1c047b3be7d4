//! `emails` and `email_links`: the shoppers' emails, each written once per cause (`about`) in the
//! transaction of that cause, then sent under a lease by the email loop; and the links in them,
//! kept as SHA-256 hashes, that mint billing-portal sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::{email_links, emails};

/// Waiting for its (next) attempt.
pub const PENDING: &str = "pending";
/// Accepted by the SMTP server (or, in local mode, put in the Inbox).
pub const SENT: &str = "sent";
/// Refused for good (a 5xx), or still failing after 3 days.
pub const DEAD: &str = "dead";
/// Never sent: no SMTP server is configured, or the shopper's address is not a valid one.
pub const NOT_SENT: &str = "not_sent";

pub const STATUSES: [&str; 4] = [PENDING, SENT, DEAD, NOT_SENT];

crate::leased!(emails, available(now) = emails::status.eq(PENDING));

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = emails)]
pub struct Email {
    pub id: i64,
    pub kind: String,
    pub about: String,
    pub user_id: String,
    pub subscription_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub to_address: String,
    pub locale: String,
    /// JSON: what the email says (`services::emails::Facts`).
    pub data: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = emails, treat_none_as_default_value = false)]
pub struct NewEmail {
    pub kind: String,
    pub about: String,
    pub user_id: String,
    pub subscription_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub to_address: String,
    pub locale: String,
    pub data: String,
    pub status: String,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

/// Inserts the emails whose cause (`about`) has none yet; returns how many were new.
pub fn insert_new(conn: &mut AnyConnection, new: &[NewEmail]) -> QueryResult<usize> {
    if new.is_empty() {
        return Ok(0);
    }
    crate::on_backend!(conn, |c| diesel::insert_into(emails::table)
        .values(new)
        .on_conflict(emails::about)
        .do_nothing()
        .execute(c))
}

/// The claim of `claim_due` (binds: owner, lease end, now, limit).
pub const CLAIM_DUE_SQL: &str = "WITH due AS MATERIALIZED (SELECT id FROM emails \
          WHERE status = 'pending' AND next_attempt_at <= $3 \
          AND (locked_until IS NULL OR locked_until < $3) \
          ORDER BY next_attempt_at, id LIMIT $4 {skip_locked}) \
        UPDATE emails SET locked_by = $1, locked_until = $2 \
        WHERE id IN (SELECT id FROM due) AND status = 'pending' \
        AND (locked_until IS NULL OR locked_until < $3) RETURNING id";

/// Takes the lease on up to `limit` due emails, oldest due first. Two instances never get the
/// same one (see `db::claim_with`).
pub fn claim_due(
    conn: &mut AnyConnection,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Email>> {
    let ids = crate::db::claim_with(conn, CLAIM_DUE_SQL, owner, until, now, limit, &[])?;
    emails::table
        .filter(emails::id.eq_any(&ids))
        .order(emails::id.asc())
        .select(Email::as_select())
        .load(conn)
}

/// What an attempt did, written only by the lease holder (the lease ends with it).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = emails, treat_none_as_null = true)]
pub struct Attempted {
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
}

/// Records an attempt if `owner` still holds the lease; returns whether it did.
pub fn record_attempt(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    attempted: &Attempted,
) -> QueryResult<bool> {
    update_held(conn, id, owner, attempted.clone())
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Email>> {
    emails::table
        .find(id)
        .select(Email::as_select())
        .first(conn)
        .optional()
}

/// Newest first, `limit` rows, of a user and/or a status.
pub fn list(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Email>> {
    let mut query = emails::table.select(Email::as_select()).into_boxed();
    if let Some(user) = user_id {
        query = query.filter(emails::user_id.eq(user));
    }
    if let Some(status) = status {
        query = query.filter(emails::status.eq(status));
    }
    query.order(emails::id.desc()).limit(limit).load(conn)
}

/// Sends an email again: due now, attempts from zero (`sent`, `dead` and `not_sent` alike).
pub fn requeue(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(emails::table.find(id))
        .set((
            emails::status.eq(PENDING),
            emails::attempts.eq(0),
            emails::next_attempt_at.eq(Some(now)),
            emails::last_error.eq(None::<String>),
            emails::locked_by.eq(None::<String>),
            emails::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = email_links)]
pub struct EmailLink {
    pub id: i64,
    pub token_hash: String,
    pub email_id: i64,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = email_links)]
pub struct NewEmailLink {
    pub token_hash: String,
    pub email_id: i64,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_link(conn: &mut AnyConnection, link: &NewEmailLink) -> QueryResult<usize> {
    diesel::insert_into(email_links::table)
        .values(link)
        .execute(conn)
}

pub fn find_link(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<EmailLink>> {
    email_links::table
        .filter(email_links::token_hash.eq(token_hash))
        .select(EmailLink::as_select())
        .first(conn)
        .optional()
}
