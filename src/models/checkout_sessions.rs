//! `checkout_sessions`: one row per checkout URL, found by the SHA-256 of its token. A session moves
//! `open` → `processing` (one payment attempt holds it) → `completed`, or back to `open` when the
//! attempt failed without taking money.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::checkout_sessions;

pub const OPEN: &str = "open";
pub const PROCESSING: &str = "processing";
pub const COMPLETED: &str = "completed";

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CheckoutSession {
    pub id: i64,
    pub token_hash: String,
    pub user_id: String,
    pub user_email: String,
    pub user_full_name: Option<String>,
    pub locale: String,
    pub plan_id: i64,
    pub promo_code_id: Option<i64>,
    pub success_url: String,
    pub cancel_url: String,
    pub status: String,
    pub subscription_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    pub claimed_at: Option<NaiveDateTime>,
    /// Payment attempts so far; the attempt in progress is this number.
    pub payment_attempts: i32,
    /// The gateway's payment of the attempt in progress while the shopper authenticates it.
    pub gateway_payment_ref: Option<String>,
    /// How often reconciliation has looked the attempt's payment up and found it unfinished.
    pub gateway_checks: i32,
    /// When reconciliation looks it up next (NULL: as soon as it is old enough).
    pub next_check_at: Option<NaiveDateTime>,
}

impl CheckoutSession {
    /// The charge key of the attempt in progress: a new attempt is a new charge at the gateway,
    /// the same attempt repeated (after a crash, say) is the same charge.
    pub fn charge_key(&self) -> String {
        format!("checkout-{}-{}", self.id, self.payment_attempts)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = checkout_sessions)]
pub struct NewCheckoutSession {
    pub token_hash: String,
    pub user_id: String,
    pub user_email: String,
    pub user_full_name: Option<String>,
    pub locale: String,
    pub plan_id: i64,
    pub promo_code_id: Option<i64>,
    pub success_url: String,
    pub cancel_url: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// A session to insert, and the condition its promo code adds: a code for first-time
/// subscribers only refuses a user with any subscription, past or present.
#[derive(Debug, Clone, Copy)]
pub struct Insert<'a> {
    pub session: &'a NewCheckoutSession,
    pub first_time_only: bool,
}

/// Inserts the sessions, each unless its user already renews on its plan (a live subscription to
/// it, not canceled, no switch pending) or, for a first-time-only code, has ever subscribed, in
/// one statement: the checkout-session endpoint's only round trip, shared by the requests that
/// arrived together (see `models::checkout_session_writer`). Returns the token hashes inserted.
pub fn insert_unless_subscribed(
    conn: &mut AnyConnection,
    sessions: &[Insert<'_>],
) -> QueryResult<std::collections::HashSet<String>> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
    const COLUMNS: &str = "token_hash, user_id, user_email, user_full_name, locale, plan_id, \
        promo_code_id, success_url, cancel_url, status, created_at, expires_at";
    if sessions.is_empty() {
        return Ok(Default::default());
    }
    let rows = (0..sessions.len())
        .map(|i| {
            let n = i * 13;
            let params = (1..=13).map(|k| format!("${}", n + k)).collect::<Vec<_>>();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = crate::db::claim_sql(
        conn,
        &format!(
            "WITH v ({COLUMNS}, first_time_only) AS (VALUES {rows}) \
             INSERT INTO checkout_sessions ({COLUMNS}) SELECT {COLUMNS} FROM v \
             WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = v.user_id \
               AND s.plan_id = v.plan_id AND s.deactivated_at IS NULL \
               AND s.canceled_at IS NULL AND s.pending_plan_id IS NULL) \
             AND (v.first_time_only = 0 OR NOT EXISTS \
               (SELECT 1 FROM subscriptions p WHERE p.user_id = v.user_id)) \
             RETURNING token_hash"
        ),
    );
    #[derive(QueryableByName)]
    struct Inserted {
        #[diesel(sql_type = Text)]
        token_hash: String,
    }
    let inserted: Vec<Inserted> = crate::db::single_write(conn, |conn| {
        crate::on_backend!(conn, |c| {
            let mut query = diesel::sql_query(&sql).into_boxed();
            for Insert {
                session: new,
                first_time_only,
            } in sessions
            {
                query = query
                    .bind::<Text, _>(&new.token_hash)
                    .bind::<Text, _>(&new.user_id)
                    .bind::<Text, _>(&new.user_email)
                    .bind::<Nullable<Text>, _>(&new.user_full_name)
                    .bind::<Text, _>(&new.locale)
                    .bind::<BigInt, _>(new.plan_id)
                    .bind::<Nullable<BigInt>, _>(new.promo_code_id)
                    .bind::<Text, _>(&new.success_url)
                    .bind::<Text, _>(&new.cancel_url)
                    .bind::<Text, _>(&new.status)
                    .bind::<Timestamp, _>(new.created_at)
                    .bind::<Timestamp, _>(new.expires_at)
                    .bind::<BigInt, _>(i64::from(*first_time_only));
            }
            query.load(c)
        })
    })?;
    Ok(inserted.into_iter().map(|row| row.token_hash).collect())
}

pub fn find_by_token_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> QueryResult<Option<CheckoutSession>> {
    checkout_sessions::table
        .filter(checkout_sessions::token_hash.eq(token_hash))
        .first(conn)
        .optional()
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<CheckoutSession>> {
    checkout_sessions::table.find(id).first(conn).optional()
}

/// Moves an open, unexpired session that has attempts left to `processing` as a new payment
/// attempt. Only one caller can
/// win, so the same link can never pay twice, however many submissions race. Returns the number
/// of the attempt won.
pub fn claim_for_payment(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
    max_attempts: i32,
) -> QueryResult<Option<i32>> {
    let updated = diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(OPEN))
            .filter(checkout_sessions::expires_at.gt(now))
            .filter(checkout_sessions::payment_attempts.lt(max_attempts)),
    )
    .set((
        checkout_sessions::status.eq(PROCESSING),
        checkout_sessions::claimed_at.eq(now),
        checkout_sessions::payment_attempts.eq(checkout_sessions::payment_attempts + 1),
        checkout_sessions::gateway_payment_ref.eq(None::<String>),
        checkout_sessions::gateway_checks.eq(0),
        checkout_sessions::next_check_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    if updated != 1 {
        return Ok(None);
    }
    checkout_sessions::table
        .find(id)
        .select(checkout_sessions::payment_attempts)
        .first(conn)
        .map(Some)
}

/// Gives a claimed session back (the payment attempt took no money), so the link stays usable.
/// Only the attempt that claimed it can give it back.
pub fn release_claim(conn: &mut AnyConnection, id: i64, attempt: i32) -> QueryResult<usize> {
    diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(PROCESSING))
            .filter(checkout_sessions::payment_attempts.eq(attempt)),
    )
    .set((
        checkout_sessions::status.eq(OPEN),
        checkout_sessions::gateway_payment_ref.eq(None::<String>),
    ))
    .execute(conn)
}

/// Remembers the gateway's payment while the shopper authenticates it (3-D Secure).
pub fn set_gateway_payment_ref(
    conn: &mut AnyConnection,
    id: i64,
    attempt: i32,
    reference: &str,
) -> QueryResult<usize> {
    diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(PROCESSING))
            .filter(checkout_sessions::payment_attempts.eq(attempt)),
    )
    .set(checkout_sessions::gateway_payment_ref.eq(reference))
    .execute(conn)
}

/// Completes the attempt `attempt` of a claimed session. Returns false, changing nothing, when
/// that attempt no longer holds the link (another path completed or released it).
pub fn complete_claim(
    conn: &mut AnyConnection,
    id: i64,
    attempt: i32,
    subscription_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(PROCESSING))
            .filter(checkout_sessions::payment_attempts.eq(attempt)),
    )
    .set((
        checkout_sessions::status.eq(COMPLETED),
        checkout_sessions::subscription_id.eq(subscription_id),
        checkout_sessions::completed_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// The ids of `list_uncharged_claims` (binds: claimed before, limit). The worker runs it every
/// round, and the table keeps every session ever opened: it reads
/// `checkout_sessions_one_payment_per_user`, which holds only the attempts being paid.
pub const UNCHARGED_CLAIMS_SQL: &str = "SELECT id FROM checkout_sessions \
    WHERE status = 'processing' AND gateway_payment_ref IS NULL AND claimed_at < $1 \
    ORDER BY claimed_at LIMIT $2";

/// The ids of `list_charged_claims_due` (binds: claimed before, now, limit), through the same
/// index; the one looked up least recently first.
pub const CHARGED_CLAIMS_DUE_SQL: &str = "SELECT id FROM checkout_sessions \
    WHERE status = 'processing' AND gateway_payment_ref IS NOT NULL AND claimed_at < $1 \
    AND (next_check_at IS NULL OR next_check_at <= $2) \
    ORDER BY COALESCE(next_check_at, claimed_at), id LIMIT $3";

/// Claims older than `before` that started no payment: attempts whose process went away before
/// any money could move.
pub fn list_uncharged_claims(
    conn: &mut AnyConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<CheckoutSession>> {
    use diesel::sql_types::{BigInt, Timestamp};
    let sql = crate::db::claim_sql(conn, UNCHARGED_CLAIMS_SQL);
    let ids: Vec<crate::db::Id> = crate::on_backend!(conn, |c| diesel::sql_query(&sql)
        .bind::<Timestamp, _>(before)
        .bind::<BigInt, _>(limit)
        .load(c))?;
    load_in_order(conn, ids)
}

/// Claims older than `before` with a payment at the gateway whose next look-up is due at `now`:
/// shoppers who left at 3-D Secure, processes that died after charging.
pub fn list_charged_claims_due(
    conn: &mut AnyConnection,
    before: NaiveDateTime,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<CheckoutSession>> {
    use diesel::sql_types::{BigInt, Timestamp};
    let sql = crate::db::claim_sql(conn, CHARGED_CLAIMS_DUE_SQL);
    let ids: Vec<crate::db::Id> = crate::on_backend!(conn, |c| diesel::sql_query(&sql)
        .bind::<Timestamp, _>(before)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .load(c))?;
    load_in_order(conn, ids)
}

/// The sessions of `ids`, in that order.
fn load_in_order(
    conn: &mut AnyConnection,
    ids: Vec<crate::db::Id>,
) -> QueryResult<Vec<CheckoutSession>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let order: Vec<i64> = ids.into_iter().map(|row| row.id).collect();
    let mut found: Vec<CheckoutSession> = checkout_sessions::table
        .filter(checkout_sessions::id.eq_any(&order))
        .load(conn)?;
    found.sort_by_key(|s| order.iter().position(|id| *id == s.id));
    Ok(found)
}

/// Notes that attempt `attempt`'s payment was looked up and found unfinished (or could not be
/// read), and when to look again.
pub fn note_checked(
    conn: &mut AnyConnection,
    id: i64,
    attempt: i32,
    next_check_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        checkout_sessions::table
            .find(id)
            .filter(checkout_sessions::status.eq(PROCESSING))
            .filter(checkout_sessions::payment_attempts.eq(attempt)),
    )
    .set((
        checkout_sessions::gateway_checks.eq(checkout_sessions::gateway_checks + 1),
        checkout_sessions::next_check_at.eq(next_check_at),
    ))
    .execute(conn)
}

/// The locale of the checkout that made each of these subscriptions (the latest, if several).
pub fn locales_of(
    conn: &mut AnyConnection,
    subscription_ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, String>> {
    let rows: Vec<(Option<i64>, String)> = checkout_sessions::table
        .filter(checkout_sessions::subscription_id.eq_any(subscription_ids))
        .order(checkout_sessions::id.asc())
        .select((
            checkout_sessions::subscription_id,
            checkout_sessions::locale,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, locale)| id.map(|id| (id, locale)))
        .collect())
}
