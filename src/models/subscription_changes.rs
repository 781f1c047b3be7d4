//! `subscription_changes`: the users whose subscriptions changed in what the entitlement check
//! shows, written by triggers on `subscriptions` (see the migration `subscription_changes`), so
//! every writer is covered: this service, the CLI, or a support engineer in a SQL shell.
//!
//! A reader keeps a `FeedPosition` and asks for what came after it. On SQLite writers take turns,
//! so the row number grows in commit order. On PostgreSQL it does not: each row carries its
//! transaction's id, and a read starts at the oldest transaction that was still running at the
//! previous read (`pg_snapshot_xmin`), so a transaction that commits late is read then, never
//! skipped. Rows of that window are read again; dropping a user twice is harmless.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::db::AnyConnection;

/// Where a reader of the feed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedPosition {
    /// SQLite: the last row number read.
    Seq(i64),
    /// PostgreSQL: the oldest transaction still running at the last read.
    Xmin(i64),
}

#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = Nullable<Text>)]
    user_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// The position of a reader that has seen everything committed so far.
pub fn now(conn: &mut AnyConnection) -> QueryResult<FeedPosition> {
    #[derive(QueryableByName)]
    struct At {
        #[diesel(sql_type = BigInt)]
        position: i64,
    }
    match conn {
        AnyConnection::Postgres(pg) => {
            let at: At = diesel::sql_query(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS position",
            )
            .get_result(pg)?;
            Ok(FeedPosition::Xmin(at.position))
        }
        AnyConnection::Sqlite(lite) => {
            let at: At = diesel::sql_query(
                "SELECT COALESCE(MAX(seq), 0) AS position FROM subscription_changes",
            )
            .get_result(lite)?;
            Ok(FeedPosition::Seq(at.position))
        }
    }
}

/// The users changed since `from` (each once), and the position to read from next time. One
/// statement: on PostgreSQL the rows and the new position come from the same snapshot.
pub fn since(
    conn: &mut AnyConnection,
    from: FeedPosition,
) -> QueryResult<(Vec<String>, FeedPosition)> {
    let (rows, next): (Vec<Changed>, fn(i64) -> FeedPosition) = match (conn, from) {
        (AnyConnection::Postgres(pg), FeedPosition::Xmin(xmin)) => (
            diesel::sql_query(
                "SELECT DISTINCT c.user_id, s.position \
                 FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS position) s \
                 LEFT JOIN subscription_changes c ON c.xid >= $1::text::xid8",
            )
            .bind::<Text, _>(xmin.to_string())
            .load(pg)?,
            FeedPosition::Xmin,
        ),
        (AnyConnection::Sqlite(lite), FeedPosition::Seq(seq)) => (
            diesel::sql_query(
                "SELECT user_id, MAX(seq) AS position FROM subscription_changes \
                 WHERE seq > ?1 GROUP BY user_id",
            )
            .bind::<BigInt, _>(seq)
            .load(lite)?,
            FeedPosition::Seq,
        ),
        _ => {
            return Err(diesel::result::Error::QueryBuilderError(
                "a feed position of the other backend".into(),
            ))
        }
    };
    let position = match from {
        // No row: the position stays.
        FeedPosition::Seq(seq) => rows.iter().map(|r| r.position).max().unwrap_or(seq),
        FeedPosition::Xmin(xmin) => rows.first().map_or(xmin, |r| r.position),
    };
    let users = rows.into_iter().filter_map(|r| r.user_id).collect();
    Ok((users, next(position)))
}

/// Deletes the rows older than an hour (by the database's clock: a reader is never that far
/// behind, or it forgets what it holds; see `SubscriptionCache`).
pub fn forget_old(conn: &mut AnyConnection) -> QueryResult<usize> {
    match conn {
        AnyConnection::Postgres(pg) => diesel::sql_query(
            "DELETE FROM subscription_changes \
             WHERE changed_at < (now() AT TIME ZONE 'UTC') - interval '1 hour'",
        )
        .execute(pg),
        AnyConnection::Sqlite(lite) => diesel::sql_query(
            "DELETE FROM subscription_changes WHERE changed_at < datetime('now', '-1 hour')",
        )
        .execute(lite),
    }
}
