//! Fault injection: the real binary serves checkouts and renews subscriptions while Treefort
//! randomly answers 500, times out or drops the connection, and the service is killed (SIGKILL)
//! and restarted mid-run. Afterwards every paid checkout has exactly one charge, one subscription
//! and one Treefort subscription, every renewal is charged once and reaches Treefort in order, and
//! nothing is stuck. `FAULT_N` sets the number of checkouts and of renewals (default 12).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{checkout_body, plan_upsert_args, TestDatabase, API_KEY};

/// A request Treefort applied (it may not have answered it).
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: Value,
    /// Treefort's id of the subscription (made by a POST, named by a PATCH's path).
    pub id: String,
}

/// A fake Treefort on raw TCP that misbehaves on purpose while `faulty` is on: of its subscription
/// calls, about 15 % answer 500 (not applied), 10 % apply and then never answer (a timeout), and
/// 10 % apply and drop the connection. Creates are idempotent by `Idempotency-Key`.
pub(crate) struct FaultyTreefort {
    pub port: u16,
    applied: Arc<Mutex<Vec<Applied>>>,
    pub faulty: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultyTreefort {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let applied: Arc<Mutex<Vec<Applied>>> = Arc::default();
        let faulty = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let ids: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let counter = Arc::new(AtomicU64::new(0));
        let (a, f) = (applied.clone(), faulty.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (applied, faulty, ids, counter) =
                    (a.clone(), f.clone(), ids.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, applied, faulty, ids, counter).await;
                });
            }
        });
        Self {
            port,
            applied,
            faulty,
        }
    }

    pub fn applied(&self) -> Vec<Applied> {
        self.applied.lock().unwrap().clone()
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    applied: Arc<Mutex<Vec<Applied>>>,
    faulty: Arc<std::sync::atomic::AtomicBool>,
    ids: Arc<Mutex<HashMap<String, String>>>,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let (status, answer) = if path == "/oauth2/token" {
            (
                200,
                json!({"access_token": "t", "token_type": "Bearer", "expires_in": 3600}),
            )
        } else {
            // A spread-out pseudo-random draw, the same on every run.
            let draw = counter
                .fetch_add(1, Ordering::SeqCst)
                .wrapping_mul(2_654_435_761)
                % 100;
            let fault = faulty.load(Ordering::SeqCst);
            if fault && draw < 15 {
                (500, json!({"error": "internal"}))
            } else {
                let key = headers.get("idempotency-key").cloned();
                let id = match (&key, method.as_str()) {
                    (Some(k), "POST") => {
                        let mut ids = ids.lock().unwrap();
                        let next = format!("tf_{}", ids.len() + 1);
                        ids.entry(k.clone()).or_insert(next).clone()
                    }
                    _ => path.rsplit('/').next().unwrap_or_default().to_string(),
                };
                applied.lock().unwrap().push(Applied {
                    method: method.clone(),
                    path: path.clone(),
                    idempotency_key: key,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    id: id.clone(),
                });
                if fault && draw < 25 {
                    // Applied, never answered: the caller's timeout runs out.
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    return Ok(());
                }
                if fault && draw < 35 {
                    // Applied, connection dropped.
                    return Ok(());
                }
                (if method == "POST" { 201 } else { 200 }, json!({"id": id}))
            }
        };
        let body = answer.to_string();
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        reader.get_mut().write_all(response.as_bytes()).await?;
    }
}

/// The service binary on a fixed port, started again after each kill.
pub(crate) struct Service {
    pub child: Option<Child>,
    pub port: u16,
    pub env: Vec<(&'static str, String)>,
}

impl Service {
    /// The service on `port` with `env`, started and ready.
    pub async fn launch(port: u16, env: Vec<(&'static str, String)>) -> Self {
        let mut service = Service {
            child: None,
            port,
            env,
        };
        service.start();
        service.wait_ready().await;
        service
    }

    pub fn start(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.child = Some(command.spawn().unwrap());
    }

    pub async fn wait_ready(&self) {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        for _ in 0..300 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not start");
    }

    /// Killed (SIGKILL) and started again, ready.
    pub async fn restart(&mut self) {
        self.kill();
        self.start();
        self.wait_ready().await;
    }

    /// The running process's id (a lease's holder starts with it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn run_cli(env: &[(&'static str, String)], args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"));
    command.args(args).env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The settings of the real binary on `port`, with `database`, calling `treefort`; limits out of
/// the way of the test's own load.
pub(crate) fn service_env(
    database: &TestDatabase,
    port: u16,
    treefort: &FaultyTreefort,
) -> Vec<(&'static str, String)> {
    let tf = format!("http://127.0.0.1:{}", treefort.port);
    vec![
        ("DATABASE_URL", database.url.clone()),
        ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
        ("PROVIDER_API_KEYS", API_KEY.into()),
        ("TREEFORT_API_URL", format!("{tf}/v1")),
        ("TREEFORT_TOKEN_URL", format!("{tf}/oauth2/token")),
        ("TREEFORT_CLIENT_ID", "c".into()),
        ("TREEFORT_CLIENT_SECRET", "s".into()),
        ("TREEFORT_API_VERSION", "2024-10-01".into()),
        ("TREEFORT_TIMEOUT_MS", "1000".into()),
        ("RATE_LIMIT_TREEFORT_PER_MINUTE", "1000000".into()),
        ("RATE_LIMIT_PAGES_PER_MINUTE", "1000000".into()),
        ("LOG_FORMAT", "json".into()),
    ]
}

/// `n` subscriptions whose renewal is due now (created earlier; Treefort has them).
fn seed_due_renewals(database: &TestDatabase, n: usize) {
    use treefort_webpay::schema::{customers, subscriptions};
    let url = treefort_webpay::db::DatabaseUrl::parse(&database.url).unwrap();
    let pool = treefort_webpay::db::connect_pool(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let now = (Utc::now() - TimeDelta::minutes(1)).naive_utc();
    for i in 0..n {
        let user = format!("renewing{i}");
        let customer: i64 = diesel::insert_into(customers::table)
            .values((
                customers::user_id.eq(&user),
                customers::email.eq(format!("{user}@example.com")),
                customers::payment_method_ref.eq("pm_sandbox_ok_seeded"),
                customers::card_brand.eq("Visa"),
                customers::card_last4.eq("4242"),
                customers::gateway_customer_ref.eq(format!("cus_sandbox_{i}")),
                customers::created_at.eq(now),
                customers::updated_at.eq(now),
            ))
            .returning(customers::id)
            .get_result(&mut *conn)
            .unwrap();
        diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::user_id.eq(&user),
                subscriptions::customer_id.eq(customer),
                subscriptions::plan_id.eq(1i64),
                subscriptions::treefort_subscription_id.eq(format!("tf_seed_{i}")),
                subscriptions::current_period_started_at.eq(now - TimeDelta::days(31)),
                subscriptions::current_period_ends_at.eq(now),
                subscriptions::created_at.eq(now - TimeDelta::days(31)),
                subscriptions::updated_at.eq(now),
                subscriptions::billing_anchor_at.eq(now - TimeDelta::days(31)),
                subscriptions::periods_paid.eq(1),
                subscriptions::next_action_at.eq(now),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
}

#[tokio::test]
async fn checkouts_and_renewals_survive_treefort_faults_and_kill_9() {
    let n: usize = std::env::var("FAULT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let database = TestDatabase::create();
    let treefort = FaultyTreefort::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = service_env(&database, port, &treefort);
    run_cli(&env, &plan_upsert_args("1", "Monthly", &[]));
    seed_due_renewals(&database, n);
    let mut service = Service::launch(port, env.clone()).await;

    // Shoppers check out one after another; the service is killed and restarted under them.
    let address = format!("http://127.0.0.1:{port}");
    let shoppers = {
        let address = address.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut paid = Vec::new();
            for i in 0..n {
                let user = format!("shopper{i}");
                let url = loop {
                    let asked = client
                        .post(format!("{address}/treefort/checkout-session"))
                        .bearer_auth(API_KEY)
                        .json(&checkout_body(&user, 1))
                        .send()
                        .await;
                    if let Ok(r) = asked {
                        if r.status() == 200 {
                            let body: Value = r.json().await.unwrap();
                            break body["sessionUrl"].as_str().unwrap().to_string();
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                // Pay, and try again (as a shopper would) until the link says it is done.
                for _ in 0..200 {
                    let answer = client
                        .post(&url)
                        .form(&[
                            ("card_number", "4242424242424242"),
                            ("card_expiry", "12/40"),
                            ("card_cvc", "123"),
                        ])
                        .send()
                        .await;
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(303) | Ok(202) | Ok(410) => {
                            paid.push(user.clone());
                            break;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
            paid
        })
    };
    let kills: usize = std::env::var("FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut killed = 0;
    while killed < kills && !shoppers.is_finished() {
        tokio::time::sleep(Duration::from_millis(700)).await;
        service.restart().await;
        killed += 1;
    }
    let paid = shoppers.await.unwrap();
    eprintln!(
        "fault run: {n} checkouts, {n} renewals, {killed} kills, {} Treefort calls applied",
        treefort.applied().len()
    );
    assert_eq!(paid.len(), n, "every shopper got through");

    // Treefort heals; the operator makes what waits due now; the worker drains everything.
    treefort.faulty.store(false, Ordering::SeqCst);
    let url = treefort_webpay::db::DatabaseUrl::parse(&database.url).unwrap();
    let pool = treefort_webpay::db::connect_pool(&url, 2).unwrap();
    let settled = || {
        use treefort_webpay::schema::{checkout_sessions, subscriptions, treefort_outbox};
        let mut conn = pool.get().unwrap();
        let waiting: i64 = treefort_outbox::table
            .filter(treefort_outbox::status.ne("delivered"))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let processing: i64 = checkout_sessions::table
            .filter(checkout_sessions::status.eq("processing"))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let due: i64 = subscriptions::table
            .filter(subscriptions::next_action_at.le(Utc::now().naive_utc()))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        waiting == 0 && processing == 0 && due == 0
    };
    let mut done = false;
    for _ in 0..600 {
        run_cli(&env, &["outbox", "retry", "--all"]);
        if settled() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        done,
        "nothing stays stuck: outbox empty, no claim held, no renewal due"
    );
    service.kill();

    // Exactly once, from the records.
    use treefort_webpay::schema::{payments, subscriptions};
    let mut conn = pool.get().unwrap();
    let subs: Vec<(i64, String, Option<String>)> = subscriptions::table
        .select((
            subscriptions::id,
            subscriptions::user_id,
            subscriptions::treefort_subscription_id,
        ))
        .load(&mut *conn)
        .unwrap();
    let pays: Vec<(Option<i64>, String, String)> = payments::table
        .select((payments::subscription_id, payments::kind, payments::status))
        .load(&mut *conn)
        .unwrap();
    let applied = treefort.applied();
    for user in &paid {
        let mine: Vec<_> = subs.iter().filter(|(_, u, _)| u == user).collect();
        assert_eq!(mine.len(), 1, "{user}: one subscription");
        let (id, _, treefort_id) = mine[0];
        assert!(treefort_id.is_some(), "{user}: Treefort's id is known");
        let charges = pays
            .iter()
            .filter(|(s, k, st)| *s == Some(*id) && k == "checkout" && st == "succeeded")
            .count();
        assert_eq!(charges, 1, "{user}: one charge");
        // Treefort creates one subscription per Idempotency-Key (a POST without one: one each).
        let posts: Vec<_> = applied
            .iter()
            .filter(|a| a.method == "POST" && a.body["userId"] == user.as_str())
            .collect();
        let keys: HashSet<_> = posts
            .iter()
            .filter_map(|a| a.idempotency_key.clone())
            .collect();
        let keyless = posts.iter().filter(|a| a.idempotency_key.is_none()).count();
        assert_eq!(keys.len() + keyless, 1, "{user}: one Treefort subscription");
    }
    for i in 0..n {
        let user = format!("renewing{i}");
        let (id, _, _) = subs.iter().find(|(_, u, _)| *u == user).unwrap();
        let renewals = pays
            .iter()
            .filter(|(s, k, st)| *s == Some(*id) && k == "renewal" && st == "succeeded")
            .count();
        assert_eq!(renewals, 1, "{user}: one renewal charge");
        // What Treefort was told, retries of the same update folded: the one new period end.
        let path = format!("/v1/subscriptions/tf_seed_{i}");
        let mut told: Vec<Value> = applied
            .iter()
            .filter(|a| a.method == "PATCH" && a.path == path)
            .map(|a| a.body.clone())
            .collect();
        told.dedup();
        assert_eq!(told.len(), 1, "{user}: {told:?}");
        assert!(told[0]["currentPeriodEndsAt"].is_string());
    }
}
