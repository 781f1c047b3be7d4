//! The connection pool never hands out a connection left inside a transaction, and each pool
//! counts its own commits that changed a subscription (two apps in one process share nothing).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use treefort_webpay::db::{self, DatabaseUrl};

use crate::helpers::TestDatabase;

fn count_plans(conn: &mut treefort_webpay::db::AnyConnection) -> i64 {
    treefort_webpay::schema::plans::table
        .count()
        .get_result(conn)
        .unwrap()
}

#[test]
fn a_panic_inside_a_transaction_leaves_the_pool_healthy() {
    let database = TestDatabase::create();
    let url = DatabaseUrl::parse(&database.url).unwrap();
    let pool = db::connect_pool(&url, 1).unwrap();
    db::run_migrations(&mut pool.get().unwrap()).unwrap();

    let panicked = std::thread::scope(|s| {
        s.spawn(|| {
            let mut conn = pool.get().unwrap();
            db::write_transaction(&mut conn, |conn| -> Result<(), diesel::result::Error> {
                conn.batch_execute(
                    "INSERT INTO plans (id, name, billing_interval, interval_count, currency, amount, divisor, created_at, updated_at)
                     VALUES (1, 'Half-written', 'month', 1, 'USD', 1, 100, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                )?;
                panic!("a bug in the middle of a transaction");
            })
        })
        .join()
        .is_err()
    });
    assert!(panicked);

    // The next caller gets a clean connection: what it writes is committed and seen by others.
    let mut conn = pool.get().unwrap();
    conn.batch_execute(
        "INSERT INTO plans (id, name, billing_interval, interval_count, currency, amount, divisor, created_at, updated_at)
         VALUES (2, 'Committed', 'month', 1, 'USD', 1, 100, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .unwrap();
    drop(conn);
    let other = db::connect_pool(&url, 1).unwrap();
    assert_eq!(
        count_plans(&mut other.get().unwrap()),
        1,
        "the half-written row was rolled back, the next write committed"
    );
}

#[test]
fn the_pool_fails_fast_and_tests_no_connection_on_checkout() {
    let database = TestDatabase::create();
    let url = DatabaseUrl::parse(&database.url).unwrap();
    let pool = db::connect_pool(&url, 2).unwrap();
    // A database that went away answers 503 within seconds, not after a long wait per request.
    assert!(pool.connection_timeout() <= std::time::Duration::from_secs(2));
    // No `SELECT 1` round trip before every use: broken connections are caught by has_broken.
    assert!(!pool.test_on_check_out());
}

#[test]
fn a_pool_counts_its_own_committed_subscription_writes_and_nothing_else() {
    let (one, other) = (TestDatabase::create(), TestDatabase::create());
    let pool = db::connect_pool(&DatabaseUrl::parse(&one.url).unwrap(), 1).unwrap();
    let other_pool = db::connect_pool(&DatabaseUrl::parse(&other.url).unwrap(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let mut conn_b = other_pool.get().unwrap();
    for conn in [&mut conn, &mut conn_b] {
        db::run_migrations(conn).unwrap();
    }
    let commits = db::commits_of(&mut conn);
    let others = db::commits_of(&mut conn_b);
    let (start, others_start) = (
        commits.subscription_commits(),
        others.subscription_commits(),
    );
    let write = "UPDATE subscriptions SET updated_at = updated_at WHERE id = -1";

    // A write outside a transaction counts at once, in its own pool only.
    diesel::sql_query(write).execute(&mut *conn).unwrap();
    assert_eq!(commits.subscription_commits(), start + 1);
    assert_eq!(others.subscription_commits(), others_start);

    // Inside a transaction it counts at the commit, and not at all when rolled back.
    db::write_transaction(&mut conn, |c| {
        diesel::sql_query(write).execute(c)?;
        assert_eq!(
            commits.subscription_commits(),
            start + 1,
            "not before the commit"
        );
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    assert_eq!(commits.subscription_commits(), start + 2);
    let rolled_back = db::write_transaction(&mut conn, |c| {
        diesel::sql_query(write).execute(c)?;
        Err::<(), _>(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert_eq!(commits.subscription_commits(), start + 2);

    // Taking a lease, reading, and writing other tables change no subscription.
    let now = chrono::Utc::now().naive_utc();
    treefort_webpay::models::subscriptions::take_lease(&mut conn, 1, "w", now, now).unwrap();
    treefort_webpay::schema::subscriptions::table
        .count()
        .get_result::<i64>(&mut *conn)
        .unwrap();
    diesel::sql_query("UPDATE plans SET updated_at = updated_at WHERE id = -1")
        .execute(&mut *conn)
        .unwrap();
    assert_eq!(commits.subscription_commits(), start + 2);
}
