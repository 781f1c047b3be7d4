//! The database: one connection type over SQLite and PostgreSQL, the pool, migrations, and write
//! transactions. This is the only module that knows which backend it talks to; models and services
//! see `AnyConnection` alone.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::ApiError;

pub mod checkpoint;
pub mod commits;
pub mod group;
pub mod lease;
mod migrations;
mod notify;
pub use migrations::*;
pub use notify::*;

pub use commits::Commits;

/// A connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type DbPool = Pool<ConnectionManager>;
pub type DbConn = PooledConnection<ConnectionManager>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL whose backend was decided from its scheme, never by trial and error: a bad
/// PostgreSQL URL must fail as such, not turn into a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// What the driver gets: a file path (or `:memory:`) for SQLite, the URL itself for PostgreSQL.
    target: String,
}

impl std::fmt::Debug for DatabaseUrl {
    // The URL may hold a password: show the backend and, for SQLite, the path only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            if rest.is_empty() {
                return Err("DATABASE_URL: a postgres:// URL needs a host".into());
            }
            return Ok(Self {
                backend: Backend::Postgres,
                target: url.to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            // `sqlite://file.db`, `sqlite:file.db`, `sqlite:///abs/path.db` and `sqlite::memory:`.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("DATABASE_URL: a sqlite: URL needs a file path, e.g. sqlite://treefort-webpay.db".into());
            }
            return Ok(Self {
                backend: Backend::Sqlite,
                target: path.to_string(),
            });
        }
        Err(format!(
            "DATABASE_URL must start with sqlite:// or postgres:// (got scheme {:?})",
            url.split(':').next().unwrap_or_default()
        ))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The file of a SQLite database (not for `:memory:`).
    pub fn sqlite_path(&self) -> Option<&str> {
        (self.backend == Backend::Sqlite && !self.target.starts_with(':'))
            .then_some(self.target.as_str())
    }

    /// For logs: the backend and, for SQLite, the file; never a PostgreSQL password.
    pub fn redacted(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.target),
            Backend::Postgres => "postgres://…".to_string(),
        }
    }
}

/// How long a SQLite statement waits for another process's write lock.
pub(crate) const BUSY_TIMEOUT_MS: u32 = 5000;

/// r2d2 manager that opens the backend the URL names and sets SQLite's PRAGMAs on every connection.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    /// SQLite: commits leave checkpoints to `checkpoint::Checkpointer` instead of running them.
    background_checkpoints: bool,
    /// What every connection of this pool reports to (see `commits`).
    commits: Arc<Commits>,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            background_checkpoints: false,
            commits: Arc::default(),
        }
    }
}

impl ConnectionManager {
    /// A connection of the backend the URL names, with SQLite's PRAGMAs set.
    fn open(&self) -> Result<AnyConnection, r2d2::Error> {
        match self.url.backend {
            Backend::Postgres => diesel::PgConnection::establish(&self.url.target)
                .map(AnyConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&self.url.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                // busy_timeout first, so that switching to WAL waits for other writers too.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                if self.background_checkpoints {
                    conn.batch_execute(checkpoint::CONNECTION_PRAGMAS)
                        .map_err(r2d2::Error::QueryError)?;
                }
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        let mut conn = self.open()?;
        conn.set_instrumentation(commits::Observer::new(self.commits.clone()));
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    /// A connection given back by a panicking thread, or still inside a transaction (a failed
    /// COMMIT, a panic mid-transaction), is closed instead of being handed to the next caller.
    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        std::thread::panicking() || conn.is_broken()
    }
}

/// Opens a pool. The first connection is made at once, so a wrong URL or password is reported at
/// start-up with the driver's own message.
pub fn connect_pool(url: &DatabaseUrl, max_size: u32) -> Result<DbPool, String> {
    build_pool(ConnectionManager::new(url.clone()), max_size)
}

/// The service's pool: `connect_pool`, and on SQLite the WAL checkpoints on a thread of their own
/// (see `checkpoint`), running as long as the `Checkpointer` is kept.
pub fn connect_service_pool(
    url: &DatabaseUrl,
    max_size: u32,
) -> Result<(DbPool, Option<checkpoint::Checkpointer>), String> {
    let manager = ConnectionManager {
        background_checkpoints: url.backend == Backend::Sqlite,
        ..ConnectionManager::new(url.clone())
    };
    let pool = build_pool(manager, max_size)?;
    let checkpointer = (url.backend == Backend::Sqlite)
        .then(|| checkpoint::Checkpointer::start(pool.clone()))
        .transpose()?;
    Ok((pool, checkpointer))
}

fn build_pool(manager: ConnectionManager, max_size: u32) -> Result<DbPool, String> {
    let url = manager.url.clone();
    // Surface the real error (refused, bad password, unreadable file) instead of r2d2's timeout.
    manager.connect().map_err(|e| {
        format!(
            "cannot open database {}: {}",
            url.redacted(),
            one_line(&e.to_string())
        )
    })?;
    Pool::builder()
        .max_size(max_size)
        // A database that went away answers 503 within seconds, not after a long wait per request.
        .connection_timeout(Duration::from_secs(2))
        // No `SELECT 1` before every use: broken connections are caught by `has_broken`.
        .test_on_check_out(false)
        .build(manager)
        .map_err(|e| format!("cannot open database {}: {e}", url.redacted()))
}

/// Drivers (libpq) answer in several lines; operators get one.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs `f` in a transaction that holds the write lock from its first statement. On SQLite that is
/// `BEGIN IMMEDIATE`: a deferred transaction that reads, then writes, fails with SQLITE_BUSY at once
/// under concurrency instead of waiting for the busy timeout.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    in_writers_turn(conn, |conn| transaction_immediate(conn, f))
}

/// The writers of an app take turns on SQLite here (its pool's `Commits`), before `BEGIN
/// IMMEDIATE`, instead of in SQLite's busy handler. That handler sleeps 1, 2, 5, 10… ms between
/// tries, and a deferred statement waiting in it holds a read snapshot, so under load commits stall
/// for tens of milliseconds and checkpoints never catch up (the WAL grew to 500 MB in a 10 s
/// benchmark). The busy timeout is left for other processes (the CLI). Taken by the outermost
/// write of a connection only; a connection made outside a pool takes no turn.
fn in_writers_turn<T>(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection) -> T) -> T {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    let Some(watched) = observer(conn) else {
        return f(conn);
    };
    let commits = watched.commits.clone();
    let _turn = (sqlite && watched.write_depth == 0).then(|| commits.writer_turn());
    watched.write_depth += 1;
    // A panic closes the connection (`has_broken`), its depth with it.
    let result = f(conn);
    if let Some(watched) = observer(conn) {
        watched.write_depth -= 1;
    }
    result
}

/// One write statement outside a transaction (it commits by itself), in the writers' turn on SQLite
/// (see `in_writers_turn`); on PostgreSQL, just the statement.
pub fn single_write<T>(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection) -> T) -> T {
    in_writers_turn(conn, f)
}

fn observer(conn: &mut AnyConnection) -> Option<&mut commits::Observer> {
    conn.instrumentation().downcast_mut::<commits::Observer>()
}

/// The `Commits` of the pool `conn` came from (a connection made outside a pool has its own).
pub fn commits_of(conn: &mut AnyConnection) -> Arc<Commits> {
    observer(conn)
        .map(|o| o.commits.clone())
        .unwrap_or_default()
}

fn transaction_immediate<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        AnyConnection::Postgres(_) => conn.transaction(f),
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            let result = f(conn);
            let AnyConnection::Sqlite(inner) = conn else {
                unreachable!("the backend of a connection never changes")
            };
            match result {
                Ok(value) => {
                    AnsiTransactionManager::commit_transaction(inner)?;
                    Ok(value)
                }
                Err(e) => {
                    AnsiTransactionManager::rollback_transaction(inner)?;
                    Err(e)
                }
            }
        }
    }
}

/// `write_transaction` for writes that may be lost in a crash without harm, because whatever
/// follows them is idempotent: a lease taken (the work is taken again) or a delivery marked done
/// (it is sent again). On PostgreSQL their commit does not wait for the disk
/// (`synchronous_commit = off`); a later ordinary commit still makes them durable first, the WAL
/// being written in order. SQLite in WAL mode with `synchronous = NORMAL` never waits at commit.
pub fn relaxed_write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_transaction(conn, |conn| {
        if let AnyConnection::Postgres(pg) = conn {
            pg.batch_execute("SET LOCAL synchronous_commit TO OFF")?;
        }
        f(conn)
    })
}

/// Locks a subscription's row until the transaction ends, so that events of one subscription
/// get their ids in the order their transactions commit (PostgreSQL; on SQLite `BEGIN IMMEDIATE`
/// already makes writers take turns).
pub fn lock_subscription(conn: &mut AnyConnection, id: i64) -> diesel::QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        use crate::schema::subscriptions;
        use diesel::prelude::*;
        subscriptions::table
            .find(id)
            .select(subscriptions::id)
            .for_update()
            .first::<i64>(pg)
            .optional()?;
    }
    Ok(())
}

/// `lock_subscription` for several, in id order (so two lockers never wait on each other).
pub fn lock_subscriptions(conn: &mut AnyConnection, ids: &[i64]) -> diesel::QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        use crate::schema::subscriptions;
        use diesel::prelude::*;
        subscriptions::table
            .filter(subscriptions::id.eq_any(ids))
            .order(subscriptions::id)
            .select(subscriptions::id)
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// A statement written with PostgreSQL's `$n` placeholders (a claim's with a `{skip_locked}`
/// mark, see `claim_with`) as the connection's backend runs it.
pub fn claim_sql(conn: &AnyConnection, sql: &str) -> String {
    match conn {
        AnyConnection::Postgres(_) => sql.replace("{skip_locked}", "FOR UPDATE SKIP LOCKED"),
        AnyConnection::Sqlite(_) => sql.replace("{skip_locked}", "").replace('$', "?"),
    }
}

/// A row of a raw statement that answers ids (`SELECT id …`, `… RETURNING id`).
#[derive(diesel::QueryableByName)]
pub struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
}

/// Takes leases in one statement: `sql` is an `UPDATE … RETURNING id` written with PostgreSQL's
/// `$n` placeholders and a `{skip_locked}` mark after its inner SELECT (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL; SQLite has one writer at a time and takes `?n`). Binds: the owner, the lease's
/// end, now, the most rows to take, then `scope` (`$5`…: which rows, e.g. an endpoint's).
/// Returns the ids claimed.
pub fn claim_with(
    conn: &mut AnyConnection,
    sql: &str,
    owner: &str,
    until: chrono::NaiveDateTime,
    now: chrono::NaiveDateTime,
    limit: i64,
    scope: &[i64],
) -> diesel::QueryResult<Vec<i64>> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    use diesel::RunQueryDsl;
    let sql = claim_sql(conn, sql);
    let rows: Vec<Id> = crate::on_backend!(conn, |c| {
        let mut query = diesel::sql_query(&sql)
            .into_boxed()
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit);
        for value in scope {
            query = query.bind::<BigInt, _>(*value);
        }
        query.load(c)
    })?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Runs the same typed query on the inner connection, for the few query forms (upserts) that
/// diesel cannot build on the multi-backend connection.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Postgres($c) => $body,
            $crate::db::AnyConnection::Sqlite($c) => $body,
        }
    };
}

/// Runs `f` with a pooled connection on the blocking thread pool.
pub async fn run_db<T, F>(pool: &DbPool, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
{
    run_db_as(pool, f).await
}

/// `run_db` for a service's own error type.
pub async fn run_db_as<T, E, F>(pool: &DbPool, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<ApiError> + Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(ApiError::from)?;
        f(&mut conn)
    })
    .await
    .map_err(|e| E::from(ApiError::internal(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_become_file_paths() {
        for (url, path) in [
            ("sqlite://treefort-webpay.db", "treefort-webpay.db"),
            ("sqlite:treefort-webpay.db", "treefort-webpay.db"),
            ("sqlite:///var/lib/tw.db", "/var/lib/tw.db"),
            ("sqlite::memory:", ":memory:"),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.backend(), Backend::Sqlite);
            assert_eq!(parsed.target, path, "{url}");
        }
    }

    #[test]
    fn postgres_urls_stay_postgres_and_are_redacted() {
        let parsed = DatabaseUrl::parse("postgres://app:s3cret@db:5432/pay").unwrap();
        assert_eq!(parsed.backend(), Backend::Postgres);
        assert!(!format!("{parsed:?}").contains("s3cret"));
        assert!(DatabaseUrl::parse("postgresql://db/pay").is_ok());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(DatabaseUrl::parse("mysql://db/pay").is_err());
        assert!(DatabaseUrl::parse("treefort.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }
}
