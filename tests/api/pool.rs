//! The connection pool never hands out a connection left inside a transaction.

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
