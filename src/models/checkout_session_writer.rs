//! The checkout-session endpoint's writes, in batches. Requests hand their new session to one
//! writer thread per process; it takes every session waiting (up to `MAX_BATCH`) and inserts them
//! in one statement, which commits once, and answers each request when that commit is done. Under
//! load many sessions share a round trip and a commit; alone, a session waits for nothing but its
//! own insert (there is no batching delay).
//!
//! When a batch's statement fails because of a row (a constraint), its sessions are inserted one
//! by one, so that each request gets its own answer and one bad row does not refuse the others;
//! any other failure (busy, timed out, connection gone) is every request's answer. At most
//! `QUEUE` sessions wait; past that a request is answered 503 at once.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::db::{DbConn, DbPool};
use crate::error::ApiError;
use crate::models::checkout_sessions::{self, Insert, NewCheckoutSession};

/// The most sessions in one statement (13 parameters each).
const MAX_BATCH: usize = 128;

const KEEP_CONNECTION: std::time::Duration = std::time::Duration::from_secs(1);

/// Sessions waiting at most; past that the database is not keeping up and a request is answered
/// 503 at once instead of queueing without end.
const QUEUE: usize = 4_096;

struct Pending {
    session: NewCheckoutSession,
    first_time_only: bool,
    reply: oneshot::Sender<Result<bool, ApiError>>,
}

impl Pending {
    fn insert(&self) -> Insert<'_> {
        Insert {
            session: &self.session,
            first_time_only: self.first_time_only,
        }
    }
}

/// Where requests send their sessions. Dropping it (with the `AppState`) ends the writer thread
/// once it has answered what it holds.
pub struct SessionWriter {
    queue: mpsc::SyncSender<Pending>,
}

impl SessionWriter {
    pub fn start(pool: DbPool) -> Result<Self, String> {
        let (queue, arrivals) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("checkout-writer".into())
            .spawn(move || write_batches(&pool, &arrivals))
            .map_err(|e| format!("cannot start the checkout-session writer: {e}"))?;
        Ok(Self { queue })
    }

    /// Inserts the session unless its user already renews on its plan (or, `first_time_only`,
    /// has ever subscribed). Returns whether it was inserted, once that is committed.
    pub async fn insert(
        &self,
        session: NewCheckoutSession,
        first_time_only: bool,
    ) -> Result<bool, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Pending {
                session,
                first_time_only,
                reply,
            })
            .map_err(|e| match e {
                mpsc::TrySendError::Full(_) => ApiError::database_unavailable(),
                mpsc::TrySendError::Disconnected(_) => {
                    ApiError::internal("the checkout-session writer has stopped")
                }
            })?;
        answer.await.map_err(|_| {
            ApiError::internal("the checkout-session writer failed before answering")
        })?
    }
}

fn write_batches(pool: &DbPool, arrivals: &mpsc::Receiver<Pending>) {
    // One connection kept while sessions keep coming (SQLite: its page cache stays warm, the
    // other connections not writing these tables), given back after a second without any.
    let mut kept: Option<DbConn> = None;
    loop {
        let first = match arrivals.recv_timeout(KEEP_CONNECTION) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kept = None;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // A panic fails this batch's requests (their replies are dropped), not the next ones.
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| {
            write_batch(pool, &mut kept, batch);
        }));
        if written.is_err() {
            kept = None;
            tracing::error!("the checkout-session writer panicked; its batch was answered 500");
        }
    }
}

fn write_batch(pool: &DbPool, kept: &mut Option<DbConn>, batch: Vec<Pending>) {
    let conn = match kept {
        Some(conn) => conn,
        None => match pool.get() {
            Ok(conn) => kept.insert(conn),
            Err(e) => return answer_all(batch, &ApiError::from(e)),
        },
    };
    let sessions: Vec<Insert<'_>> = batch.iter().map(Pending::insert).collect();
    let failed = match checkout_sessions::insert_unless_subscribed(conn, &sessions) {
        Ok(inserted) => {
            for pending in batch {
                let was_inserted = inserted.contains(&pending.session.token_hash);
                let _ = pending.reply.send(Ok(was_inserted));
            }
            false
        }
        // Not a row's fault (busy, timed out, connection gone): one by one would only wait as
        // long again per row while every checkout waits behind this thread.
        Err(e) if batch.len() == 1 || !is_a_rows_fault(&e) => {
            answer_all(batch, &ApiError::from(e));
            true
        }
        Err(_) => {
            let mut failed = false;
            for pending in batch {
                let one = checkout_sessions::insert_unless_subscribed(conn, &[pending.insert()])
                    .map(|inserted| !inserted.is_empty())
                    .map_err(ApiError::from);
                failed |= one.is_err();
                let _ = pending.reply.send(one);
            }
            failed
        }
    };
    // After a failure the connection goes back to the pool, which closes it if it is broken.
    if failed {
        *kept = None;
    }
}

fn answer_all(batch: Vec<Pending>, error: &ApiError) {
    for pending in batch {
        let _ = pending.reply.send(Err(error.clone()));
    }
}

/// An error one row of a batch may cause, which inserting the rows one by one keeps to that row.
fn is_a_rows_fault(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        error,
        Error::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation,
            _
        )
    )
}
