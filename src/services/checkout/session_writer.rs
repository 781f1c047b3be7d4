//! The checkout-session endpoint's writes, in batches. Requests hand their new session to one
//! writer thread per process; it takes every session waiting (up to `MAX_BATCH`) and inserts them
//! in one statement, which commits once, and answers each request when that commit is done. Under
//! load many sessions share a round trip and a commit; alone, a session waits for nothing but its
//! own insert (there is no batching delay).
//!
//! When a batch's statement fails (a plan deleted meanwhile, the database gone), its sessions are
//! inserted one by one, so that each request gets its own answer and one bad row does not refuse
//! the others.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::db::{DbConn, DbPool};
use crate::error::ApiError;
use crate::models::checkout_sessions::{self, NewCheckoutSession};

/// The most sessions in one statement (12 parameters each).
const MAX_BATCH: usize = 128;

const KEEP_CONNECTION: std::time::Duration = std::time::Duration::from_secs(1);

struct Pending {
    session: NewCheckoutSession,
    reply: oneshot::Sender<Result<bool, ApiError>>,
}

/// Where requests send their sessions. Dropping it (with the `AppState`) ends the writer thread
/// once it has answered what it holds.
pub struct SessionWriter {
    queue: mpsc::Sender<Pending>,
}

impl SessionWriter {
    pub fn start(pool: DbPool) -> Result<Self, String> {
        let (queue, arrivals) = mpsc::channel();
        std::thread::Builder::new()
            .name("checkout-writer".into())
            .spawn(move || write_batches(&pool, &arrivals))
            .map_err(|e| format!("cannot start the checkout-session writer: {e}"))?;
        Ok(Self { queue })
    }

    /// Inserts the session unless its user already renews on its plan. Returns whether it was
    /// inserted, once that is committed.
    pub async fn insert(&self, session: NewCheckoutSession) -> Result<bool, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { session, reply })
            .map_err(|_| ApiError::internal("the checkout-session writer has stopped"))?;
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
            Err(e) => {
                let error = ApiError::from(e);
                for pending in batch {
                    let _ = pending.reply.send(Err(error.clone()));
                }
                return;
            }
        },
    };
    let sessions: Vec<&NewCheckoutSession> = batch.iter().map(|p| &p.session).collect();
    let failed = match checkout_sessions::insert_unless_subscribed(conn, &sessions) {
        Ok(inserted) => {
            for pending in batch {
                let was_inserted = inserted.contains(&pending.session.token_hash);
                let _ = pending.reply.send(Ok(was_inserted));
            }
            false
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch
                .into_iter()
                .next()
                .map(|p| p.reply.send(Err(e.into())));
            true
        }
        Err(_) => {
            let mut failed = false;
            for pending in batch {
                let one = checkout_sessions::insert_unless_subscribed(conn, &[&pending.session])
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
