//! The worker's due-work statements, on both backends: they read through their indexes (so a
//! claim costs the same with a million subscriptions as with a thousand), a claim takes no more
//! than its limit and never what another holds, and a wave's record skips rows whose lease was
//! lost while leaving alone the columns a change does not set.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use treefort_webpay::db::{self, AnyConnection, DatabaseUrl};
use treefort_webpay::models::outbox::CLAIM_DUE_HEADS_SQL;
use treefort_webpay::models::subscriptions::{self, SubscriptionChanges, CLAIM_DUE_SQL};

use crate::helpers::TestDatabase;

fn at(s: &str) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().naive_utc()
}

/// A migrated database with `size` subscriptions, of which the first `due` are due at
/// 2027-01-01 and the rest a month later, each with its completed checkout session and one
/// delivered Treefort update, and one pending update for each due one.
fn seeded(size: i64, due: i64) -> (TestDatabase, db::DbPool) {
    let database = TestDatabase::create();
    let pool = db::connect_pool(&DatabaseUrl::parse(&database.url).unwrap(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    db::run_migrations(&mut conn).unwrap();
    let pg = matches!(*conn, AnyConnection::Postgres(_));
    let numbers = if pg {
        format!("SELECT g AS x FROM generate_series(1, {size}) g")
    } else {
        format!("WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {size}) SELECT x FROM g")
    };
    let t = |s: &str| {
        if pg {
            format!("TIMESTAMP '{s}'")
        } else {
            format!("'{s}'")
        }
    };
    let (due_at, later, then) = (
        t("2027-01-01 00:00:00"),
        t("2027-02-01 00:00:00"),
        t("2026-12-01 00:00:00"),
    );
    conn.batch_execute(&format!(
        "INSERT INTO plans (id, name, billing_interval, interval_count, trial_days, grace_days, currency, amount, divisor, created_at, updated_at) \
         VALUES (1, 'Monthly', 'month', 1, 0, 3, 'USD', 999, 100, {then}, {then}); \
         INSERT INTO customers (id, user_id, email, created_at, updated_at) \
         SELECT x, 'u' || x, 'u' || x || '@example.com', {then}, {then} FROM ({numbers}) s; \
         INSERT INTO subscriptions (id, user_id, customer_id, plan_id, current_period_started_at, current_period_ends_at, \
           created_at, updated_at, periods_paid, next_action_at) \
         SELECT x, 'u' || x, x, 1, {then}, CASE WHEN x <= {due} THEN {due_at} ELSE {later} END, {then}, {then}, 1, \
           CASE WHEN x <= {due} THEN {due_at} ELSE {later} END FROM ({numbers}) s; \
         INSERT INTO treefort_outbox (subscription_id, operation, body, status, next_attempt_at, created_at, delivered_at) \
         SELECT x, 'create', '{{}}', 'delivered', {then}, {then}, {then} FROM ({numbers}) s; \
         INSERT INTO treefort_outbox (subscription_id, operation, body, status, next_attempt_at, created_at) \
         SELECT x, 'update', '{{}}', 'pending', {due_at}, {due_at} FROM ({numbers}) s WHERE x <= {due}; \
         INSERT INTO checkout_sessions (token_hash, user_id, user_email, locale, plan_id, success_url, cancel_url, \
           status, subscription_id, created_at, expires_at, completed_at) \
         SELECT 'hash' || x, 'u' || x, 'u' || x || '@example.com', 'en', 1, 'https://a.example/ok', 'https://a.example/no', \
           'completed', x, {then}, {then}, {then} FROM ({numbers}) s; \
         ANALYZE;"
    ))
    .unwrap();
    drop(conn);
    (database, pool)
}

/// A value bound to a statement explained by `plan_of`.
enum Bind<'a> {
    Text(&'a str),
    Time(NaiveDateTime),
    Int(i64),
}

/// The binds of a claim statement (see `db::claim_with`).
fn claim_binds() -> Vec<Bind<'static>> {
    let now = at("2027-01-01T00:00:00Z");
    vec![
        Bind::Text("someone"),
        Bind::Time(now + TimeDelta::minutes(5)),
        Bind::Time(now),
        Bind::Int(32),
    ]
}

/// The plan the backend chooses for a statement (with `$n` placeholders, see `db::claim_sql`),
/// one line per step.
fn plan_of(conn: &mut AnyConnection, statement: &str, binds: &[Bind]) -> String {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    let sql = db::claim_sql(conn, statement);
    macro_rules! explain {
        ($backend:ty, $c:expr, $explain:literal, $row:ty) => {{
            let mut query =
                diesel::sql_query(format!("{} {sql}", $explain)).into_boxed::<$backend>();
            for bind in binds {
                query = match bind {
                    Bind::Text(v) => query.bind::<Text, _>(*v),
                    Bind::Time(v) => query.bind::<Timestamp, _>(*v),
                    Bind::Int(v) => query.bind::<BigInt, _>(*v),
                };
            }
            let rows: Vec<$row> = query.load($c).unwrap();
            rows.into_iter()
                .map(|r| r.line)
                .collect::<Vec<_>>()
                .join("\n")
        }};
    }
    match conn {
        AnyConnection::Postgres(pg) => {
            #[derive(diesel::QueryableByName)]
            struct Line {
                #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
                line: String,
            }
            explain!(diesel::pg::Pg, pg, "EXPLAIN", Line)
        }
        AnyConnection::Sqlite(lite) => {
            #[derive(diesel::QueryableByName)]
            struct Step {
                #[diesel(sql_type = diesel::sql_types::Text, column_name = "detail")]
                line: String,
            }
            explain!(diesel::sqlite::Sqlite, lite, "EXPLAIN QUERY PLAN", Step)
        }
    }
}

/// Whether a plan reads all of `table` (SQLite says "SCAN <table or alias>", PostgreSQL
/// "Seq Scan on <table>").
fn scans(plan: &str, table: &str) -> bool {
    plan.lines().any(|l| {
        l.trim_end().ends_with(&format!("SCAN {table}"))
            || l.contains(&format!("Seq Scan on {table}"))
    })
}

#[test]
fn the_claims_read_through_their_indexes() {
    let (_database, pool) = seeded(20_000, 50);
    let mut conn = pool.get().unwrap();

    let subscriptions = plan_of(&mut conn, CLAIM_DUE_SQL, &claim_binds());
    assert!(
        subscriptions.contains("subscriptions_due"),
        "the due subscriptions are found through (next_action_at, id):\n{subscriptions}"
    );
    let outbox = plan_of(&mut conn, CLAIM_DUE_HEADS_SQL, &claim_binds());
    assert!(
        outbox.contains("treefort_outbox_pending"),
        "pending updates are found without walking the delivered ones:\n{outbox}"
    );
    // Every other read goes through an index too (which one is the planner's choice: the earlier
    // updates of a line by subscription, or the small set of pending ones).
    for plan in [&subscriptions, &outbox] {
        for table in ["subscriptions", "treefort_outbox", "o", "e"] {
            assert!(!scans(plan, table), "no full scan of {table}:\n{plan}");
        }
    }

    // What every round looks for besides: cancellations never recorded, checkout attempts left
    // mid-payment. A handful of rows, found without reading the others.
    let now = at("2027-01-01T00:00:00Z");
    let cancellations = plan_of(
        &mut conn,
        subscriptions::UNFINISHED_CANCELLATIONS_SQL,
        &[Bind::Time(now - TimeDelta::minutes(2)), Bind::Time(now)],
    );
    assert!(
        cancellations.contains("subscriptions_cancel_requested")
            && !scans(&cancellations, "subscriptions"),
        "unrecorded cancellations are found through their own index:\n{cancellations}"
    );
    let uncharged = plan_of(
        &mut conn,
        treefort_webpay::models::checkout_sessions::UNCHARGED_CLAIMS_SQL,
        &[Bind::Time(now), Bind::Int(50)],
    );
    let charged = plan_of(
        &mut conn,
        treefort_webpay::models::checkout_sessions::CHARGED_CLAIMS_DUE_SQL,
        &[Bind::Time(now), Bind::Time(now), Bind::Int(50)],
    );
    for stale in [uncharged, charged] {
        assert!(
            stale.contains("checkout_sessions_one_payment_per_user")
                && !scans(&stale, "checkout_sessions"),
            "attempts left mid-payment are found through the index of those only:\n{stale}"
        );
    }
}

#[test]
fn a_claim_takes_no_more_than_its_limit_and_never_what_another_holds() {
    let (_database, pool) = seeded(200, 50);
    let now = at("2027-01-01T00:00:00Z");
    let until = now + TimeDelta::minutes(5);
    let mut one = pool.get().unwrap();
    let mut two = pool.get().unwrap();
    let first = subscriptions::claim_due(&mut one, "one", now, until, 20).unwrap();
    let second = subscriptions::claim_due(&mut two, "two", now, until, 20).unwrap();
    assert_eq!(first.len(), 20);
    assert_eq!(second.len(), 20);
    assert!(
        first.iter().all(|s| !second.iter().any(|t| t.id == s.id)),
        "two claims never share a subscription"
    );
    assert!(
        first.iter().all(|s| s.id <= 20) && second.iter().all(|s| s.id > 20 && s.id <= 40),
        "soonest first, ties by id"
    );
    let rest = subscriptions::claim_due(&mut one, "one", now, until, 1_000).unwrap();
    assert_eq!(rest.len(), 10, "only the due ones nobody holds are left");
    assert!(subscriptions::claim_due(&mut two, "two", now, until, 10)
        .unwrap()
        .is_empty());
    // Once the leases run out, the work can be taken again.
    let later = until + TimeDelta::seconds(1);
    assert_eq!(
        subscriptions::claim_due(&mut two, "two", later, later + TimeDelta::minutes(5), 1_000)
            .unwrap()
            .len(),
        50
    );

    // The Treefort updates: one per subscription line, never the same to two claimers.
    use treefort_webpay::models::outbox;
    let heads_one = outbox::claim_due_heads(&mut one, "one", now, until, 30).unwrap();
    let heads_two = outbox::claim_due_heads(&mut two, "two", now, until, 30).unwrap();
    assert_eq!((heads_one.len(), heads_two.len()), (30, 20));
    assert!(heads_one
        .iter()
        .all(|e| !heads_two.iter().any(|f| f.id == e.id)));
}

#[test]
fn a_wave_record_skips_rows_whose_lease_was_lost_and_keeps_what_it_does_not_set() {
    let (_database, pool) = seeded(3, 3);
    let now = at("2027-01-01T00:00:00Z");
    let mut conn = pool.get().unwrap();
    let claimed =
        subscriptions::claim_due(&mut conn, "me", now, now + TimeDelta::minutes(5), 3).unwrap();
    assert_eq!(claimed.len(), 3);
    // Another worker took the third one's lease meanwhile.
    conn.batch_execute("UPDATE subscriptions SET locked_by = 'someone else' WHERE id = 3")
        .unwrap();
    let renewed = SubscriptionChanges {
        periods_paid: Some(2),
        next_action_at: Some(Some(at("2027-02-01T00:00:00Z"))),
        past_due_since: Some(None),
        ..Default::default()
    }
    .releasing(now);
    let postponed = SubscriptionChanges {
        next_action_at: Some(Some(at("2027-01-01T00:10:00Z"))),
        ..Default::default()
    }
    .releasing(now);
    let rows = vec![(1, 1, &renewed), (2, 1, &postponed), (3, 1, &renewed)];
    let mut updated = subscriptions::update_all_if_held(&mut conn, "me", &rows).unwrap();
    updated.sort();
    assert_eq!(updated, vec![1, 2]);

    let one = subscriptions::find(&mut conn, 1).unwrap().unwrap();
    assert_eq!(
        (one.periods_paid, one.next_action_at, one.locked_by),
        (2, Some(at("2027-02-01T00:00:00Z")), None)
    );
    let two = subscriptions::find(&mut conn, 2).unwrap().unwrap();
    assert_eq!(
        (two.periods_paid, two.next_action_at, two.locked_by),
        (1, Some(at("2027-01-01T00:10:00Z")), None),
        "a column the change leaves alone keeps its value"
    );
    assert_eq!(two.current_period_ends_at, at("2027-01-01T00:00:00Z"));
    let three = subscriptions::find(&mut conn, 3).unwrap().unwrap();
    assert_eq!(
        (three.periods_paid, three.locked_by.as_deref()),
        (1, Some("someone else")),
        "a lost lease writes nothing"
    );
    // A row whose period moved on (it has paid two periods now) is not written either.
    conn.batch_execute("UPDATE subscriptions SET locked_by = 'me' WHERE id = 1")
        .unwrap();
    let stale = vec![(1, 1, &renewed)];
    assert!(subscriptions::update_all_if_held(&mut conn, "me", &stale)
        .unwrap()
        .is_empty());
}
