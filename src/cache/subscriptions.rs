//! The subscriptions of the users the entitlement check was asked about, in memory, so that an
//! app owner's backend asking on every request of its own is answered without a database round
//! trip.
//!
//! What is kept is dropped when it changes, from the change feed (`subscription_changes`, written
//! by triggers, so a change by another instance, by the CLI or in a SQL shell is covered):
//! - this process reads the feed before it answers from memory again after a commit of its own
//!   that changed a subscription (`db::Commits::subscription_commits`): its next request sees the change;
//! - on PostgreSQL every instance hears of a change at commit (`NOTIFY`) and reads the feed then;
//! - every instance reads it every `CATALOG_CHECK_MS` (250 ms) as a safety net.
//!
//! Memory is answered from only while the feed was read within `FRESH_FOR` (1 s): an instance
//! that cannot read it asks the database, and one that could not for `FORGET_AFTER` forgets all
//! it holds (the feed keeps an hour). An answer read from the database is kept only if no drop
//! happened while it was being read, so a change that commits meanwhile is never hidden.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::db::DbPool;
use crate::error::ApiError;
use crate::models::subscription_changes::{self, FeedPosition};
use crate::models::subscriptions::{self, Subscription};

/// How long after a read of the feed memory may answer.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// After this long without a read of the feed, memory is forgotten (the feed keeps an hour).
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// The most users kept; memory is emptied when it is full (about 25 MB at most).
pub const MAX_USERS: usize = 50_000;

/// A user's subscriptions, newest first.
pub type UserSubscriptions = Arc<[Subscription]>;

pub struct SubscriptionCache {
    entries: RwLock<HashMap<String, UserSubscriptions>>,
    /// Raised, under the write lock, by every drop: a database answer is kept only if it did not
    /// move while the answer was read.
    generation: AtomicU64,
    feed: tokio::sync::Mutex<Feed>,
    started: Instant,
    /// When the feed was last read, in milliseconds after `started` (0: never).
    read_at_ms: AtomicU64,
    /// The commits of this app's pool, and `subscription_commits` as it was before that read.
    commits: Arc<crate::db::Commits>,
    commits_seen: AtomicU64,
    /// Woken by the PostgreSQL listener when a subscription changed.
    pub announced: tokio::sync::Notify,
}

struct Feed {
    position: Option<FeedPosition>,
    read_at: Option<Instant>,
}

/// Where an entitlement answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Database,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Database => "database",
        }
    }
}

impl SubscriptionCache {
    /// An empty memory, told of commits by `commits` (its pool's).
    pub fn new(commits: Arc<crate::db::Commits>) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            feed: tokio::sync::Mutex::new(Feed {
                position: None,
                read_at: None,
            }),
            started: Instant::now(),
            read_at_ms: AtomicU64::new(0),
            commits,
            commits_seen: AtomicU64::new(0),
            announced: tokio::sync::Notify::new(),
        }
    }
}

impl SubscriptionCache {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether memory may answer: the feed was read lately, after this process's last commit
    /// that changed a subscription.
    fn fresh(&self) -> bool {
        let read_at = self.read_at_ms.load(Ordering::SeqCst);
        read_at != 0
            && self.elapsed_ms().saturating_sub(read_at) < FRESH_FOR.as_millis() as u64
            && self.commits_seen.load(Ordering::SeqCst) == self.commits.subscription_commits()
    }

    /// The user's subscriptions, newest first: from memory when it may answer, else from the
    /// database (kept for next time).
    pub async fn of_user(
        &self,
        pool: &DbPool,
        user_id: &str,
    ) -> Result<(UserSubscriptions, Source), ApiError> {
        if !self.fresh() {
            // One reader of the feed at a time; the others find it done. A failure is logged,
            // and the database answers.
            if let Err(e) = self.read_feed(pool, true).await {
                tracing::warn!(error = %e, "reading the subscription change feed failed");
            }
        }
        let fresh = self.fresh();
        if fresh {
            if let Some(hit) = self
                .entries
                .read()
                .ok()
                .and_then(|e| e.get(user_id).cloned())
            {
                return Ok((hit, Source::Memory));
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let user = user_id.to_string();
        let found: UserSubscriptions = crate::db::run_db(pool, move |conn| {
            Ok(subscriptions::list_for_user(conn, &user)?)
        })
        .await?
        .into();
        if fresh {
            self.keep(user_id, &found, generation);
        }
        Ok((found, Source::Database))
    }

    fn keep(&self, user_id: &str, found: &UserSubscriptions, generation: u64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= MAX_USERS {
            entries.clear();
        }
        entries.insert(user_id.to_string(), found.clone());
    }

    /// Drops these users (or everyone), under the write lock, and raises the generation.
    fn drop_users(&self, users: Option<&[String]>) {
        let mut forgotten = HashMap::new();
        let mut entries = match self.entries.write() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        match users {
            Some(users) => {
                for user in users {
                    entries.remove(user);
                }
            }
            // Freed after the lock is let go.
            None => forgotten = std::mem::take(&mut *entries),
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(entries);
        drop(forgotten);
    }

    /// Reads the feed from where the last read ended and drops the users it names. With
    /// `if_needed`, returns at once when another read made memory fresh meanwhile.
    pub async fn read_feed(&self, pool: &DbPool, if_needed: bool) -> Result<(), ApiError> {
        let mut feed = self.feed.lock().await;
        if if_needed && self.fresh() {
            return Ok(());
        }
        let commits = self.commits.subscription_commits();
        // Memory is as new as the snapshot the feed is read in, taken after this moment.
        let (read_at, read_at_ms) = (Instant::now(), self.elapsed_ms().max(1));
        let from = feed.position;
        let (users, position) = crate::db::run_db(pool, move |conn| match from {
            Some(from) => Ok(subscription_changes::since(conn, from)?),
            None => Ok((Vec::new(), subscription_changes::now(conn)?)),
        })
        .await?;
        let forgotten = from.is_none() || feed.read_at.is_none_or(|at| at.elapsed() > FORGET_AFTER);
        if forgotten {
            self.drop_users(None);
        } else if !users.is_empty() {
            self.drop_users(Some(&users));
        }
        feed.position = Some(position);
        feed.read_at = Some(read_at);
        self.commits_seen.store(commits, Ordering::SeqCst);
        self.read_at_ms.store(read_at_ms, Ordering::SeqCst);
        Ok(())
    }
}
