//! Worker throughput benchmark (run against a release build):
//!
//! ```sh
//! cargo run --release --example worker_bench -- 1000 100000
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo run --release --example worker_bench -- 1000 100000
//! ```
//!
//! It EMPTIES the service's tables in the database it is given: point BENCH_DATABASE_URL at a
//! database of its own (without it, a temporary SQLite file is used).
//!
//! For each size N it seeds N live subscriptions of which 1 000 are due, then runs worker rounds
//! (renewal charge through the sandbox gateway, the Treefort PATCH queued, then delivered to a
//! fake Treefort on loopback) until every due subscription is renewed and delivered. The baseline,
//! measured in the same run on the same database, is the database floor: claiming and releasing the
//! same 1 000 subscriptions with no charge and no HTTP call. Figures are reported as rates and as
//! the ratio worker / baseline.

use std::time::Instant;

use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::{TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use treefort_webpay::clock::Clock;
use treefort_webpay::config::Settings;
use treefort_webpay::models::{outbox, subscriptions};
use treefort_webpay::services::{outbox as delivery, renewal};
use treefort_webpay::startup::build_state;

const DUE: usize = 1_000;

#[tokio::main]
async fn main() -> Result<(), String> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 100_000]
    } else {
        sizes
    };
    let treefort = fake_treefort()?;
    println!("size,due,worker_per_sec,baseline_per_sec,ratio");
    for size in sizes {
        let (worker, baseline) = run(size, &treefort).await?;
        println!(
            "{size},{DUE},{worker:.0},{baseline:.0},{:.3}",
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
            .default_service(web::to(|| async {
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

async fn run(size: usize, treefort: &str) -> Result<(f64, f64), String> {
    let file = std::env::temp_dir().join(format!("worker-bench-{size}-{}.db", std::process::id()));
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", file.display()));
    let vars = [
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
    let mut conn = state.pool.get().map_err(|e| e.to_string())?;
    seed(&mut conn, size)?;

    // Baseline: claim and release the due subscriptions, nothing else.
    let now = Utc::now().naive_utc();
    let started = Instant::now();
    let due = subscriptions::list_due(&mut conn, now, DUE as i64).map_err(|e| e.to_string())?;
    for id in &due {
        subscriptions::claim(&mut conn, *id, "baseline", now, now + TimeDelta::minutes(5))
            .map_err(|e| e.to_string())?;
        let release = subscriptions::SubscriptionChanges::default().releasing(now);
        subscriptions::update(&mut conn, *id, &release).map_err(|e| e.to_string())?;
    }
    let baseline = due.len() as f64 / started.elapsed().as_secs_f64();
    drop(conn);

    // The worker: renew and deliver until nothing is due or pending.
    let started = Instant::now();
    let mut renewed = 0;
    loop {
        let stats = renewal::process_due(&state, 100)
            .await
            .map_err(|e| e.to_string())?;
        renewed += stats.renewed;
        delivery::deliver_due(&state, 100)
            .await
            .map_err(|e| e.to_string())?;
        let mut conn = state.pool.get().map_err(|e| e.to_string())?;
        let pending = outbox::count_pending(&mut conn).map_err(|e| e.to_string())?;
        if stats.renewed == 0 && pending == 0 {
            break;
        }
    }
    let worker = renewed as f64 / started.elapsed().as_secs_f64();
    if renewed != DUE {
        return Err(format!("renewed {renewed} of {DUE}"));
    }
    drop(state);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    Ok((worker, baseline))
}

/// N subscriptions with their customers, the first `DUE` of them at their period end.
fn seed(conn: &mut treefort_webpay::db::AnyConnection, size: usize) -> Result<(), String> {
    let now = Utc::now().naive_utc();
    let ts = |t: chrono::NaiveDateTime| t.format("'%Y-%m-%d %H:%M:%S%.6f'").to_string();
    conn.batch_execute(&format!(
        "DELETE FROM treefort_outbox; DELETE FROM payments; DELETE FROM promo_redemptions; DELETE FROM checkout_sessions; \
         DELETE FROM subscriptions; DELETE FROM customers; DELETE FROM plans; \
         INSERT INTO plans (id, name, billing_interval, interval_count, trial_days, grace_days, currency, amount, divisor, created_at, updated_at) \
         VALUES (1, 'Monthly', 'month', 1, 0, 3, 'USD', 999, 100, {n}, {n});",
        n = ts(now)
    ))
    .map_err(|e| e.to_string())?;
    for chunk_start in (0..size).step_by(500) {
        let chunk = chunk_start..(chunk_start + 500).min(size);
        let customers: Vec<String> = chunk
            .clone()
            .map(|i| format!("({id}, 'user{i}', 'user{i}@example.com', 'pm_sandbox_ok_{i}', 'Visa', '4242', {n}, {n})", id = i + 1, n = ts(now)))
            .collect();
        let subs: Vec<String> = chunk
            .map(|i| {
                let end = if i < DUE { now - TimeDelta::seconds(1) } else { now + TimeDelta::days(1 + (i % 28) as i64) };
                format!(
                    "({id}, 'user{i}', {id}, 1, 'tf{i}', {start}, {end}, {start}, {start}, {start}, 1, {end})",
                    id = i + 1,
                    start = ts(end - TimeDelta::days(30)),
                    end = ts(end)
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "BEGIN; INSERT INTO customers (id, user_id, email, payment_method_ref, card_brand, card_last4, created_at, updated_at) VALUES {}; \
             INSERT INTO subscriptions (id, user_id, customer_id, plan_id, treefort_subscription_id, current_period_started_at, \
             current_period_ends_at, created_at, updated_at, billing_anchor_at, periods_paid, next_action_at) VALUES {}; COMMIT;",
            customers.join(","),
            subs.join(",")
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
