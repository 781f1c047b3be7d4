//! Every migration can be undone: all of them down, newest first, then up again, on a database
//! holding rows in the tables they change (both backends).

use diesel::connection::SimpleConnection;
use treefort_webpay::db::{self, DatabaseUrl};

use crate::helpers::TestDatabase;

#[test]
fn every_migration_runs_down_and_up_again_with_rows_in_place() {
    let database = TestDatabase::create();
    let url = DatabaseUrl::parse(&database.url).unwrap();
    let pool = db::connect_pool(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let applied = db::run_migrations(&mut conn).unwrap();
    assert!(applied >= 4, "{applied}");
    conn.batch_execute(
        "INSERT INTO plans (id, name, billing_interval, interval_count, trial_days, grace_days, currency, amount, divisor, created_at, updated_at)
             VALUES (1, 'Monthly', 'month', 1, 0, 3, 'USD', 999, 100, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         INSERT INTO plans (id, name, billing_interval, interval_count, trial_days, grace_days, currency, amount, divisor, created_at, updated_at)
             VALUES (2, 'Yearly', 'year', 1, 0, 3, 'USD', 9999, 100, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         INSERT INTO customers (id, user_id, email, created_at, updated_at, gateway_customer_ref)
             VALUES (1, 'u1', 'u1@example.com', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'cus_sandbox_1');
         INSERT INTO subscriptions (id, user_id, customer_id, plan_id, current_period_started_at, current_period_ends_at, created_at, updated_at, pending_plan_id)
             VALUES (1, 'u1', 1, 1, '2026-01-01 00:00:00', '2026-02-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 2);
         INSERT INTO payments (customer_id, subscription_id, kind, status, amount, currency, divisor, gateway, created_at, refunded_amount)
             VALUES (1, 1, 'checkout', 'succeeded', 999, 'USD', 100, 'sandbox', '2026-01-01 00:00:00', 100);
         INSERT INTO treefort_outbox (subscription_id, operation, body, status, next_attempt_at, created_at, dead_at)
             VALUES (1, 'create', '{}', 'dead', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00');",
    )
    .unwrap();

    let reverted = db::revert_all_migrations(&mut conn).unwrap();
    assert_eq!(reverted, applied, "every migration was undone");
    assert_eq!(
        db::run_migrations(&mut conn).unwrap(),
        applied,
        "and applies again"
    );
}
