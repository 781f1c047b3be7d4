//! The worker's statements on a wave of subscriptions: one claims the wave, one records every
//! change of it. A statement per row would be a round trip per row, which is what bounds a
//! worker on PostgreSQL.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};

use super::{Subscription, SubscriptionChanges};
use crate::db::{AnyConnection, Id};

/// The claim of `claim_due` (binds: owner, lease end, now, limit). The due rows are chosen once,
/// in a CTE: written as `id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)`, PostgreSQL ran the
/// subquery again per row and claimed more than the limit. The outer conditions repeat the inner
/// ones: the UPDATE checks them again on the row itself.
pub const CLAIM_DUE_SQL: &str = "WITH due AS MATERIALIZED (SELECT id FROM subscriptions \
          WHERE deactivated_at IS NULL AND next_action_at <= $3 \
          AND (locked_until IS NULL OR locked_until < $3) \
          ORDER BY next_action_at, id LIMIT $4 {skip_locked}) \
        UPDATE subscriptions SET locked_by = $1, locked_until = $2 \
        WHERE id IN (SELECT id FROM due) AND deactivated_at IS NULL AND next_action_at <= $3 \
        AND (locked_until IS NULL OR locked_until < $3) RETURNING id";

/// Takes the lease, in one statement, on up to `limit` live subscriptions whose next action is
/// due and that nobody holds, soonest first. Two instances never get the same one: PostgreSQL
/// skips rows another claim has locked, SQLite has one writer at a time, and the UPDATE checks the
/// conditions again itself.
pub fn claim_due(
    conn: &mut AnyConnection,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Subscription>> {
    let ids = crate::db::claim_with(conn, CLAIM_DUE_SQL, owner, until, now, limit, &[])?;
    let mut claimed: Vec<Subscription> = super::find_many(conn, &ids)?.into_values().collect();
    claimed.sort_by_key(|s| (s.next_action_at, s.id));
    Ok(claimed)
}

/// Calls `$m!` with every column `SubscriptionChanges` may set, its SQL type, and `one` for a
/// change to a value or `two` for one that may also set NULL (`Option<Option<_>>`). The one list
/// of them: the statements bind in this order, and a field added to `SubscriptionChanges` fails to
/// compile (`every_change_is_listed`) until it is added here.
macro_rules! with_changes {
    ($m:ident) => {
        $m! {
            (one, plan_id, BigInt),
            (one, current_period_started_at, Timestamp),
            (one, current_period_ends_at, Timestamp),
            (two, trial_ends_at, Timestamp),
            (two, canceled_at, Timestamp),
            (two, deactivated_at, Timestamp),
            (two, billing_anchor_at, Timestamp),
            (one, periods_paid, Integer),
            (two, next_action_at, Timestamp),
            (two, past_due_since, Timestamp),
            (one, renewal_attempts, Integer),
            (two, promo_code_id, BigInt),
            (two, promo_periods_left, Integer),
            (two, pending_plan_id, BigInt),
            (two, locked_by, Text),
            (two, locked_until, Timestamp),
            (one, updated_at, Timestamp),
            (two, cancel_requested_at, Timestamp),
            (two, amount, BigInt),
            (two, currency, Text),
            (two, divisor, BigInt),
            (two, billing_interval, Text),
            (two, interval_count, Integer),
        }
    };
}

macro_rules! column_names {
    ($(($kind:ident, $f:ident, $st:ty)),* $(,)?) => {
        [$(stringify!($f)),*]
    };
}

/// The columns, by name, in binding order.
const CHANGE_COLUMNS: [&str; 23] = with_changes!(column_names);

macro_rules! exhaustive {
    ($(($kind:ident, $f:ident, $st:ty)),* $(,)?) => {
        #[allow(dead_code)]
        fn every_change_is_listed(changes: &SubscriptionChanges) {
            let SubscriptionChanges { $($f: _),* } = changes;
        }
    };
}
with_changes!(exhaustive);

/// Applies each row's changes, in one statement, where `owner` still holds the lease and the
/// subscription has still paid `periods_paid` periods (the period charged for). A column a row's
/// changes leave alone (`None`) keeps its stored value. Returns the ids updated: a row missing
/// from them lost its lease, and nothing of it was written.
pub fn update_all_if_held(
    conn: &mut AnyConnection,
    owner: &str,
    rows: &[(i64, i32, &SubscriptionChanges)],
) -> QueryResult<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let sqlite = match conn {
        AnyConnection::Postgres(pg) => return update_all_if_held_pg(pg, owner, rows),
        AnyConnection::Sqlite(sqlite) => sqlite,
    };
    let mark = '?';
    // $1 is the owner; each row binds its id, its periods paid, then a flag and a value per column.
    let per_row = 2 + 2 * CHANGE_COLUMNS.len();
    let values: Vec<String> = (0..rows.len())
        .map(|r| {
            let first = 2 + r * per_row;
            let params: Vec<String> = (first..first + per_row)
                .map(|n| format!("{mark}{n}"))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let sql = format!(
        "WITH v (id, paid, {names}) AS (VALUES {values}) {update}",
        names = change_names(),
        values = values.join(", "),
        update = update_from("v", &format!("{mark}1")),
    );
    let mut q = diesel::sql_query(&sql)
        .into_boxed()
        .bind::<Text, _>(owner.to_string());
    for (id, paid, changes) in rows {
        q = q.bind::<BigInt, _>(*id).bind::<Integer, _>(*paid);
        // A flag and a value per column (`two`: a change that may set NULL).
        macro_rules! bind {
            (one, $f:ident, $st:ty) => {
                q = q
                    .bind::<Bool, _>(changes.$f.is_some())
                    .bind::<Nullable<$st>, _>(changes.$f.clone());
            };
            (two, $f:ident, $st:ty) => {
                q = q
                    .bind::<Bool, _>(changes.$f.is_some())
                    .bind::<Nullable<$st>, _>(changes.$f.clone().flatten());
            };
        }
        macro_rules! bind_all {
            ($(($kind:ident, $f:ident, $st:ty)),* $(,)?) => { $(bind!($kind, $f, $st);)* };
        }
        with_changes!(bind_all);
    }
    let updated: Vec<Id> = q.load(sqlite)?;
    Ok(updated.into_iter().map(|u| u.id).collect())
}

/// The columns of the rows a wave's record reads from: a flag and a value per change column.
fn change_names() -> String {
    CHANGE_COLUMNS
        .iter()
        .flat_map(|c| [format!("{c}_set"), c.to_string()])
        .collect::<Vec<_>>()
        .join(", ")
}

/// The record's UPDATE, from `source` (rows named `v`, with `id`, `paid` and `change_names()`),
/// where `owner` (a placeholder) still holds the lease.
fn update_from(source: &str, owner: &str) -> String {
    let sets: Vec<String> = CHANGE_COLUMNS
        .iter()
        .map(|c| format!("{c} = CASE WHEN v.{c}_set THEN v.{c} ELSE subscriptions.{c} END"))
        .collect();
    format!(
        "UPDATE subscriptions SET {sets} FROM {source} \
         WHERE subscriptions.id = v.id AND subscriptions.locked_by = {owner} \
         AND subscriptions.periods_paid = v.paid RETURNING subscriptions.id",
        sets = sets.join(", "),
    )
}

/// `update_all_if_held` on PostgreSQL: an array per column, unnested into rows, instead of a
/// parameter per row and column. A wave of 256 bound 12 289 parameters, which PostgreSQL took
/// 3 ms to parse and bind before running the statement; this binds 49.
fn update_all_if_held_pg(
    pg: &mut diesel::PgConnection,
    owner: &str,
    rows: &[(i64, i32, &SubscriptionChanges)],
) -> QueryResult<Vec<i64>> {
    use diesel::sql_types::Array;
    let arrays: Vec<String> = (2..2 + 2 + 2 * CHANGE_COLUMNS.len())
        .map(|n| format!("${n}"))
        .collect();
    let source = format!(
        "unnest({arrays}) AS v (id, paid, {names})",
        arrays = arrays.join(", "),
        names = change_names(),
    );
    let sql = update_from(&source, "$1");
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let paid: Vec<i32> = rows.iter().map(|r| r.1).collect();
    let mut q = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Text, _>(owner.to_string())
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(paid);
    // A column's flags and values, over the rows (`two`: a change that may set NULL).
    macro_rules! bind {
        (one, $f:ident, $st:ty) => {
            let flags: Vec<bool> = rows.iter().map(|r| r.2.$f.is_some()).collect();
            let values: Vec<Option<_>> = rows.iter().map(|r| r.2.$f.clone()).collect();
            q = q
                .bind::<Array<Bool>, _>(flags)
                .bind::<Array<Nullable<$st>>, _>(values);
        };
        (two, $f:ident, $st:ty) => {
            let flags: Vec<bool> = rows.iter().map(|r| r.2.$f.is_some()).collect();
            let values: Vec<Option<_>> = rows.iter().map(|r| r.2.$f.clone().flatten()).collect();
            q = q
                .bind::<Array<Bool>, _>(flags)
                .bind::<Array<Nullable<$st>>, _>(values);
        };
    }
    macro_rules! bind_all {
        ($(($kind:ident, $f:ident, $st:ty)),* $(,)?) => { $(bind!($kind, $f, $st);)* };
    }
    with_changes!(bind_all);
    let updated: Vec<Id> = q.load(pg)?;
    Ok(updated.into_iter().map(|u| u.id).collect())
}
