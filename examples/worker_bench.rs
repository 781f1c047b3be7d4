//! Worker throughput benchmark (run against a release build):
//!
//! ```sh
//! cargo run --release --example worker_bench -- 1000 100000 1000000
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo run --release --example worker_bench -- 1000 100000 1000000
//! ```
//!
//! It EMPTIES the service's tables in the database it is given: point BENCH_DATABASE_URL at a
//! database of its own (without it, a temporary SQLite file is used).
//!
//! For each size N it seeds N live subscriptions of which `DUE` (10 000, or N if fewer) are due,
//! then runs the service's worker rounds (`worker::run_once`, one after another, as the service
//! does while a backlog lasts) until every due subscription is renewed (charged through the
//! sandbox gateway) and its Treefort PATCH delivered (to a fake Treefort on loopback).
//! `WORKER_BATCH` and `WORKER_CONCURRENCY` are passed on to the service's settings. The baseline, measured in the same run on the
//! same database, is the database's own single-row INSERT rate (one statement, one transaction
//! each): what one round trip after another would give. Figures are rates and the ratio
//! worker / baseline.
//!
//! With `BENCH_STRIPE_RATE=R` it measures the Stripe pacing instead: `localstripe` (PyPI) is
//! started, the due renewals charge one saved card there through the Stripe gateway with
//! `STRIPE_MAX_REQUESTS_PER_SECOND=R`, and the time taken is shown against N ÷ R, the time the
//! pace allows (ratio 1.0: the pace, not the service, sets the speed; no 429 pushes anything back):
//!
//! ```sh
//! BENCH_STRIPE_RATE=100 cargo run --release --example worker_bench -- 10000
//! ```

use std::time::Instant;

use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::{TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use treefort_webpay::clock::Clock;
use treefort_webpay::config::Settings;
use treefort_webpay::db::AnyConnection;
use treefort_webpay::models::outbox;
use treefort_webpay::startup::build_state;

const DUE: usize = 10_000;
const BASELINE_INSERTS: usize = 2_000;

#[tokio::main]
async fn main() -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let treefort = fake_treefort()?;
    if let Ok(rate) = std::env::var("BENCH_STRIPE_RATE") {
        let rate: u32 = rate.parse().map_err(|_| "BENCH_STRIPE_RATE: a number")?;
        let stripe = LocalStripe::start(rate).await?;
        println!("due,stripe_rate_per_sec,seconds,n_over_rate_seconds,ratio,stripe_requests");
        for size in sizes {
            let (due, seconds, requests) = run_stripe(size, &treefort, &stripe).await?;
            let allowed = due as f64 / f64::from(rate);
            println!(
                "{due},{rate},{seconds:.1},{allowed:.1},{:.3},{requests}",
                seconds / allowed
            );
        }
        return Ok(());
    }
    println!("subscriptions,due,renewals_per_sec,single_row_inserts_per_sec,ratio");
    for size in sizes {
        let (due, worker, baseline) = run(size, &treefort).await?;
        println!(
            "{size},{due},{worker:.0},{baseline:.0},{:.3}",
            worker / baseline
        );
    }
    Ok(())
}

/// A Treefort that answers every token, POST and PATCH at once.
fn fake_treefort() -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/oauth2/token",
                web::post().to(|| async {
                    HttpResponse::Ok()
                        .json(serde_json::json!({"access_token": "t", "expires_in": 3600}))
                }),
            )
            // The body is read, as a real server does: a handler that leaves it unread makes
            // actix close the connection, and every call would pay a new one.
            .default_service(web::to(|_body: web::Bytes| async {
                HttpResponse::Ok().json(serde_json::json!({"id": "x"}))
            }))
    })
    .workers(1)
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    tokio::spawn(server);
    Ok(address)
}

/// localstripe on a free port, with one customer and one saved card every renewal charges.
struct LocalStripe {
    url: String,
    child: std::process::Child,
    customer: String,
    card: String,
    rate: u32,
}

const STRIPE_KEY: &str = "sk_test_bench";

impl LocalStripe {
    async fn start(rate: u32) -> Result<LocalStripe, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = std::process::Command::new("localstripe")
            .args(["--port", &port.to_string(), "--from-scratch"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("localstripe (pip install localstripe): {e}"))?;
        let mut stripe = LocalStripe {
            url: format!("http://127.0.0.1:{port}"),
            child,
            customer: String::new(),
            card: String::new(),
            rate,
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if stripe
                .post(&http, "/v1/customers", &[("email", "bench@example.com")])
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let customer = stripe
            .post(&http, "/v1/customers", &[("email", "bench@example.com")])
            .await?;
        let card = stripe
            .post(
                &http,
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", "4242424242424242"),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2034"),
                    ("card[cvc]", "123"),
                ],
            )
            .await?;
        stripe.customer = customer["id"].as_str().unwrap_or_default().to_string();
        stripe.card = card["id"].as_str().unwrap_or_default().to_string();
        let attach = format!("/v1/payment_methods/{}/attach", stripe.card);
        let customer_id = stripe.customer.clone();
        stripe
            .post(&http, &attach, &[("customer", &customer_id)])
            .await?;
        Ok(stripe)
    }

    async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let response = http
            .post(format!("{}{path}", self.url))
            .bearer_auth(STRIPE_KEY)
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("localstripe {path}: {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    async fn succeeded_intents(&self) -> Result<usize, String> {
        let http = reqwest::Client::new();
        let (mut n, mut after) = (0, None::<String>);
        loop {
            let page: serde_json::Value = http
                .get(format!(
                    "{}/v1/payment_intents?limit=100{}",
                    self.url,
                    after
                        .as_ref()
                        .map(|a| format!("&starting_after={a}"))
                        .unwrap_or_default()
                ))
                .bearer_auth(STRIPE_KEY)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            n += data.iter().filter(|i| i["status"] == "succeeded").count();
            after = data
                .last()
                .and_then(|d| d["id"].as_str())
                .map(str::to_string);
            if page["has_more"] != true || after.is_none() {
                return Ok(n);
            }
        }
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `size` due renewals charged at localstripe under the pace: (due, seconds, Stripe requests).
async fn run_stripe(
    size: usize,
    treefort: &str,
    stripe: &LocalStripe,
) -> Result<(usize, f64, u64), String> {
    let file = std::env::temp_dir().join(format!("stripe-bench-{size}-{}.db", std::process::id()));
    let url = format!("sqlite://{}", file.display());
    let before = stripe.succeeded_intents().await?;
    let vars = [
        ("WORKER_CONCURRENCY", "32".to_string()),
        ("DATABASE_URL", url),
        ("TREEFORT_API_URL", format!("{treefort}/v1")),
        ("TREEFORT_TOKEN_URL", format!("{treefort}/oauth2/token")),
        ("TREEFORT_CLIENT_ID", "bench".into()),
        ("TREEFORT_CLIENT_SECRET", "bench".into()),
        ("TREEFORT_API_VERSION", "2024-10-01".into()),
        ("PAYMENT_GATEWAY", "stripe".into()),
        ("STRIPE_SECRET_KEY", STRIPE_KEY.into()),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_bench".into()),
        ("STRIPE_WEBHOOK_SECRETS", "whsec_bench".into()),
        ("STRIPE_API_URL", stripe.url.clone()),
        ("STRIPE_MAX_REQUESTS_PER_SECOND", stripe.rate.to_string()),
    ];
    let settings =
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))?;
    let state = build_state(settings, Clock::System).await?;
    let due = size;
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    seed(&mut conn, size, due)?;
    conn.batch_execute(&format!(
        "UPDATE customers SET gateway_customer_ref = '{}', payment_method_ref = '{}'",
        stripe.customer, stripe.card
    ))
    .map_err(|e| e.to_string())?;
    drop(conn);
    let started = Instant::now();
    drain(&state, due).await?;
    let seconds = started.elapsed().as_secs_f64();
    let charged = stripe.succeeded_intents().await? - before;
    if charged != due {
        return Err(format!(
            "{charged} charges at localstripe for {due} renewals"
        ));
    }
    let requests = state
        .metrics
        .render(None)
        .lines()
        .filter(|l| l.starts_with("treefort_webpay_stripe_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64;
    drop(state);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    Ok((due, seconds, requests))
}

async fn run(size: usize, treefort: &str) -> Result<(usize, f64, f64), String> {
    let file = std::env::temp_dir().join(format!("worker-bench-{size}-{}.db", std::process::id()));
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", file.display()));
    let setting =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let vars = [
        ("WORKER_CONCURRENCY", setting("WORKER_CONCURRENCY", "32")),
        ("WORKER_BATCH", setting("WORKER_BATCH", "256")),
        ("DATABASE_URL", url.clone()),
        ("TREEFORT_API_URL", format!("{treefort}/v1")),
        ("TREEFORT_TOKEN_URL", format!("{treefort}/oauth2/token")),
        ("TREEFORT_CLIENT_ID", "bench".into()),
        ("TREEFORT_CLIENT_SECRET", "bench".into()),
        ("TREEFORT_API_VERSION", "2024-10-01".into()),
    ];
    let settings =
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))?;
    let state = build_state(settings, Clock::System).await?;
    let due = DUE.min(size);
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    seed(&mut conn, size, due)?;
    let baseline = single_row_inserts(&mut conn)?;
    drop(conn);

    let started = Instant::now();
    let rounds = drain(&state, due).await?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("{size}: {rounds} rounds");
    drop(state);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    Ok((due, due as f64 / elapsed, baseline))
}

/// The worker's rounds as the service runs them, until nothing is due or pending; then checks
/// that the `due` renewals were all made. Returns the rounds.
async fn drain(state: &treefort_webpay::state::AppState, due: usize) -> Result<usize, String> {
    let mut rounds = 0;
    loop {
        rounds += 1;
        let more = treefort_webpay::worker::run_once(state).await;
        let mut conn = state.pool.get().map_err(|e| e.to_string())?;
        let pending = outbox::count_pending(&mut conn).map_err(|e| e.to_string())?;
        // A round that left nothing behind and nothing to deliver: the renewals are checked below.
        if !more && pending == 0 {
            break;
        }
        if rounds > 10 * (due / 1000 + 1) {
            return Err(format!("{rounds} rounds and still not done"));
        }
    }
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    let renewed = count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM subscriptions WHERE periods_paid = 2",
    )?;
    if renewed != due as i64 {
        return Err(format!("renewed {renewed} of {due}"));
    }
    Ok(rounds)
}

/// The database's floor: single-row INSERTs, each its own transaction, one after another.
fn single_row_inserts(conn: &mut AnyConnection) -> Result<f64, String> {
    conn.batch_execute(
        "DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (id BIGINT PRIMARY KEY, note TEXT NOT NULL);",
    )
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..BASELINE_INSERTS {
        conn.batch_execute(&format!(
            "INSERT INTO bench_floor (id, note) VALUES ({i}, 'row {i}')"
        ))
        .map_err(|e| e.to_string())?;
    }
    let rate = BASELINE_INSERTS as f64 / started.elapsed().as_secs_f64();
    conn.batch_execute("DROP TABLE bench_floor")
        .map_err(|e| e.to_string())?;
    Ok(rate)
}

fn count(conn: &mut AnyConnection, sql: &str) -> Result<i64, String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Count> = diesel::sql_query(sql)
        .load(conn)
        .map_err(|e| e.to_string())?;
    Ok(rows.first().map_or(0, |c| c.n))
}

/// N subscriptions with their customers (a saved card each), the first `due` of them at their
/// period end, the rest later in the month; one INSERT … SELECT per table.
fn seed(conn: &mut AnyConnection, size: usize, due: usize) -> Result<(), String> {
    let now = Utc::now().naive_utc();
    let pg = matches!(conn, AnyConnection::Postgres(_));
    let ts = |t: chrono::NaiveDateTime| {
        let text = t.format("'%Y-%m-%d %H:%M:%S%.6f'").to_string();
        if pg {
            format!("TIMESTAMP {text}")
        } else {
            text
        }
    };
    let numbers = match conn {
        AnyConnection::Postgres(_) => format!("SELECT g AS x FROM generate_series(1, {size}) g"),
        AnyConnection::Sqlite(_) => format!(
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {size}) SELECT x FROM g"
        ),
    };
    let (due_end, later_end) = (now - TimeDelta::seconds(1), now + TimeDelta::days(10));
    let tables = "webhook_deliveries, events, treefort_outbox, payments, promo_redemptions, checkout_sessions, subscriptions, customers, plans";
    let empty = if pg {
        format!("TRUNCATE {tables} CASCADE;")
    } else {
        tables
            .split(", ")
            .map(|t| format!("DELETE FROM {t};"))
            .collect()
    };
    conn.batch_execute(&format!(
        "{empty} \
         INSERT INTO plans (id, name, billing_interval, interval_count, trial_days, grace_days, currency, amount, divisor, created_at, updated_at) \
         VALUES (1, 'Monthly', 'month', 1, 0, 3, 'USD', 999, 100, {n}, {n}); \
         INSERT INTO customers (id, user_id, email, payment_method_ref, gateway_customer_ref, card_brand, card_last4, created_at, updated_at) \
         SELECT x, 'user' || x, 'user' || x || '@example.com', 'pm_sandbox_ok_' || x, 'cus_sandbox_' || x, 'Visa', '4242', {n}, {n} FROM ({numbers}) s; \
         INSERT INTO subscriptions (id, user_id, customer_id, plan_id, treefort_subscription_id, current_period_started_at, \
         current_period_ends_at, created_at, updated_at, billing_anchor_at, periods_paid, next_action_at) \
         SELECT x, 'user' || x, x, 1, 'tf' || x, \
           CASE WHEN x <= {due} THEN {due_start} ELSE {later_start} END, \
           CASE WHEN x <= {due} THEN {due_end} ELSE {later_end} END, {n}, {n}, \
           CASE WHEN x <= {due} THEN {due_start} ELSE {later_start} END, 1, \
           CASE WHEN x <= {due} THEN {due_end} ELSE {later_end} END FROM ({numbers}) s;",
        n = ts(now),
        due_start = ts(due_end - TimeDelta::days(30)),
        due_end = ts(due_end),
        later_start = ts(later_end - TimeDelta::days(30)),
        later_end = ts(later_end),
    ))
    .map_err(|e| e.to_string())?;
    // Fresh statistics, as a database that has been running would have.
    let analyze = match conn {
        AnyConnection::Postgres(_) => "ANALYZE",
        AnyConnection::Sqlite(_) => "ANALYZE; PRAGMA optimize;",
    };
    conn.batch_execute(analyze).map_err(|e| e.to_string())
}
