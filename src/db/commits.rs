//! What a pool's connections tell the app that owns it: how many commits changed a subscription,
//! how many catalog changes were begun, and (SQLite) the turn its writers take. One `Commits` per
//! pool, so two apps in one process share nothing.
//!
//! Every connection of the pool carries an `Observer` (diesel's instrumentation): it sees each
//! statement and each transaction's end, so a commit that wrote `subscriptions` counts itself,
//! whoever wrote it and however (a typed query, raw SQL, a batch). No write site has anything to
//! remember.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// The counters and the writers' turn of one pool.
#[derive(Debug, Default)]
pub struct Commits {
    subscriptions: AtomicU64,
    catalog: AtomicU64,
    /// SQLite's writers take turns here (see `db::write_transaction`).
    sqlite_writer: Mutex<()>,
}

impl Commits {
    /// How many commits changed a subscription: the entitlement memory reads the change feed
    /// before it answers again when this moved, so a change is seen by the next request.
    pub fn subscription_commits(&self) -> u64 {
        self.subscriptions.load(Ordering::SeqCst)
    }

    /// How many catalog changes were begun: the catalog in memory reads itself again before it
    /// answers when this moved.
    pub fn catalog_changes(&self) -> u64 {
        self.catalog.load(Ordering::SeqCst)
    }

    pub(super) fn catalog_changing(&self) {
        self.catalog.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn writer_turn(&self) -> MutexGuard<'_, ()> {
        self.sqlite_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's observer: the pool's `Commits`, and what this connection is in the middle of.
pub(super) struct Observer {
    pub commits: Arc<Commits>,
    /// How deep in `write_transaction`/`single_write` this connection is (the outermost takes
    /// the writers' turn).
    pub write_depth: u32,
    /// Diesel's transaction depth.
    transaction_depth: u32,
    /// Whether the open transaction wrote a subscription.
    touched: bool,
    /// A transaction that wrote a subscription is committing: the next statement to finish is
    /// its `COMMIT` (diesel announces the commit before it sends it).
    committing: bool,
}

impl Observer {
    pub fn new(commits: Arc<Commits>) -> Self {
        Self {
            commits,
            write_depth: 0,
            transaction_depth: 0,
            touched: false,
            committing: false,
        }
    }

    fn count(&self) {
        self.commits.subscriptions.fetch_add(1, Ordering::SeqCst);
    }

    /// Diesel tells of a transaction's end before it sends the `COMMIT`: a commit is counted only
    /// once that statement is done, so a reader that sees the count moved and then reads the
    /// change feed finds the change there.
    fn ended(&mut self, depth: NonZeroU32, committed: bool) {
        self.transaction_depth = depth.get() - 1;
        if self.transaction_depth == 0 && std::mem::take(&mut self.touched) && committed {
            self.committing = true;
        }
    }
}

impl Instrumentation for Observer {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            // The COMMIT of a transaction that wrote a subscription (a failed one is rolled back).
            InstrumentationEvent::FinishQuery { error, .. } if self.committing => {
                self.committing = false;
                if error.is_none() {
                    self.count();
                }
            }
            InstrumentationEvent::FinishQuery {
                query, error: None, ..
            } if writes_subscriptions(query) => {
                if self.transaction_depth == 0 {
                    self.count();
                } else {
                    self.touched = true;
                }
            }
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                self.transaction_depth = depth.get();
            }
            InstrumentationEvent::CommitTransaction { depth, .. } => self.ended(depth, true),
            InstrumentationEvent::RollbackTransaction { depth, .. } => self.ended(depth, false),
            _ => {}
        }
    }
}

/// Where the statement after a `WITH …` begins: the first `UPDATE`, `INSERT` or `DELETE` that
/// stands as a word and names `subscriptions` next (ASCII only, no pattern engine: this runs for
/// every statement).
fn main_verb(sql: &str) -> Option<usize> {
    let upper = sql.to_ascii_uppercase();
    let word_at = |at: usize, len: usize| {
        let before = upper[..at].chars().next_back();
        let after = upper[at + len..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    ["UPDATE", "INSERT", "DELETE"]
        .iter()
        .flat_map(|verb| {
            upper
                .match_indices(verb)
                .map(move |(at, _)| (at, verb.len()))
        })
        .filter(|&(at, len)| word_at(at, len))
        .filter(|&(at, _)| {
            let rest: Vec<&str> = upper[at..].split_whitespace().take(3).collect();
            let table = |w: &str| {
                w.trim_matches(|c| c == '"' || c == '`')
                    .starts_with("SUBSCRIPTIONS")
            };
            match rest.as_slice() {
                ["UPDATE", t, ..] => table(t),
                ["INSERT", "INTO", t] | ["DELETE", "FROM", t] => table(t),
                _ => false,
            }
        })
        .map(|(at, _)| at)
        .min()
}

/// A statement's SQL without its binds: its first bytes, which say what it writes, or all of a
/// `WITH …` statement, whose own verb comes after its common table expressions.
struct Head(String);

const HEAD_BYTES: usize = 160;

impl std::fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_str(s);
        let cut = if self
            .0
            .get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case("WITH"))
        {
            self.0.find(" -- binds")
        } else {
            (self.0.len() >= HEAD_BYTES).then_some(HEAD_BYTES)
        };
        match cut {
            Some(mut end) => {
                while !self.0.is_char_boundary(end) {
                    end -= 1;
                }
                self.0.truncate(end);
                Err(std::fmt::Error)
            }
            None => Ok(()),
        }
    }
}

/// Whether a statement changes what a subscription says: an insert, update or delete of
/// `subscriptions` (after any `WITH …`), except one that only takes or gives back a lease
/// (`SET locked_by = …, locked_until = … WHERE`), which changes nothing a reader sees.
fn writes_subscriptions(query: &dyn diesel::connection::DebugQuery) -> bool {
    let mut head = Head(String::with_capacity(HEAD_BYTES));
    let _ = std::fmt::write(&mut head, format_args!("{query}"));
    statement_writes_subscriptions(&head.0)
}

fn statement_writes_subscriptions(sql: &str) -> bool {
    let statement = if sql.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("WITH")) {
        match main_verb(sql) {
            Some(at) => &sql[at..],
            None => return false,
        }
    } else {
        sql
    };
    let words: Vec<String> = statement
        .split_whitespace()
        .take(10)
        .map(|w| {
            w.trim_matches(|c| c == '"' || c == '`' || c == ',')
                .to_ascii_uppercase()
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["INSERT", "INTO", table, ..] | ["DELETE", "FROM", table, ..] => {
            table.split('(').next() == Some("SUBSCRIPTIONS")
        }
        ["UPDATE", "SUBSCRIPTIONS", "SET", "LOCKED_BY", "=", _, "LOCKED_UNTIL", "=", _, "WHERE"] => {
            false
        }
        ["UPDATE", "SUBSCRIPTIONS", "SET", ..] => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::statement_writes_subscriptions as writes;
    use super::{Commits, Observer};
    use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
    use diesel::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// The observer, and the count as it stood when the `COMMIT` statement began.
    struct AtCommit {
        observer: Observer,
        seen: Arc<AtomicU64>,
    }

    impl Instrumentation for AtCommit {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::StartQuery { query, .. } = &event {
                if query.to_string() == "COMMIT" {
                    let count = self.observer.commits.subscription_commits();
                    self.seen.store(count, Ordering::SeqCst);
                }
            }
            self.observer.on_connection_event(event);
        }
    }

    #[test]
    fn a_commit_is_counted_once_it_is_done_never_before() {
        let commits = Arc::new(Commits::default());
        let seen = Arc::new(AtomicU64::new(u64::MAX));
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE subscriptions (id INTEGER PRIMARY KEY, plan_id INTEGER)")
            .unwrap();
        conn.set_instrumentation(AtCommit {
            observer: Observer::new(commits.clone()),
            seen: seen.clone(),
        });
        conn.transaction(|c| {
            diesel::sql_query("INSERT INTO subscriptions (plan_id) VALUES (1)").execute(c)
        })
        .unwrap();
        // A reader that saw the count move before the COMMIT could read the feed without the
        // change and then answer from stale memory.
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "counted before the COMMIT ran"
        );
        assert_eq!(commits.subscription_commits(), 1);
        // A transaction rolled back counts nothing; a write outside one counts at once.
        let _ = conn.transaction(|c| {
            diesel::sql_query("UPDATE subscriptions SET plan_id = 2").execute(c)?;
            Err::<(), _>(diesel::result::Error::RollbackTransaction)
        });
        assert_eq!(commits.subscription_commits(), 1);
        diesel::sql_query("UPDATE subscriptions SET plan_id = 3")
            .execute(&mut conn)
            .unwrap();
        assert_eq!(commits.subscription_commits(), 2);
    }

    #[test]
    fn statements_that_change_a_subscription_are_told_apart() {
        assert!(writes(
            r#"INSERT INTO "subscriptions" ("user_id", "plan_id") VALUES ($1, $2)"#
        ));
        assert!(writes("INSERT INTO `subscriptions` (`user_id`) VALUES (?)"));
        assert!(writes(
            r#"UPDATE "subscriptions" SET "canceled_at" = $1 WHERE"#
        ));
        assert!(writes(
            "UPDATE subscriptions SET status = CASE WHEN v.status_set THEN"
        ));
        assert!(writes(r#"DELETE FROM "subscriptions" WHERE"#));
        // After common table expressions: the wave's record is a change, its claim is not.
        assert!(writes(
            "WITH v (id, paid) AS (VALUES (?2, ?3)) UPDATE subscriptions SET plan_id = CASE WHEN"
        ));
        assert!(!writes(
            "WITH due AS MATERIALIZED (SELECT id FROM subscriptions WHERE x LIMIT $4 ) UPDATE subscriptions SET locked_by = $1, locked_until = $2 WHERE id IN (SELECT id FROM due)"
        ));
        assert!(!writes("WITH x AS (SELECT 1) SELECT * FROM subscriptions"));
        // A lease given back with other columns is a change.
        assert!(writes(
            r#"UPDATE "subscriptions" SET "locked_by" = $1, "locked_until" = $2, "cancel_requested_at" = $3 WHERE"#
        ));
        // Taking a lease, reading, and other tables are not changes of a subscription.
        assert!(!writes(
            r#"UPDATE "subscriptions" SET "locked_by" = $1, "locked_until" = $2 WHERE"#
        ));
        assert!(!writes(
            "UPDATE `subscriptions` SET `locked_by` = ?, `locked_until` = ? WHERE"
        ));
        assert!(!writes(
            r#"SELECT "subscriptions"."id" FROM "subscriptions""#
        ));
        assert!(!writes(
            r#"INSERT INTO "subscription_changes" ("user_id") VALUES ($1)"#
        ));
        assert!(!writes(r#"UPDATE "treefort_outbox" SET "status" = $1"#));
    }
}
