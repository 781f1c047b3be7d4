//! `spawn_app()`: the service on port 0 with its own database, fake Treefort and manual clock.

use std::collections::HashMap;

use actix_web::web;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{json, Value};
use treefort_webpay::clock::Clock;
use treefort_webpay::config::Settings;
use treefort_webpay::db::DbConn;
use treefort_webpay::models::plans::{self, PlanValues};
use treefort_webpay::services::promo::{self, PromoInput};
use treefort_webpay::startup::Application;
use treefort_webpay::state::AppState;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const API_KEY: &str = "test-provider-key";
pub const TREEFORT_TOKEN: &str = "tf-access-token";
pub const API_VERSION: &str = "2024-10-01";
pub const GOOD_CARD: &str = "4242 4242 4242 4242";
pub const DECLINED_CARD: &str = "4000000000000002";

pub struct TestApp {
    pub address: String,
    /// The settings this instance started with (a second instance reuses them).
    pub vars: HashMap<&'static str, String>,
    pub treefort: MockServer,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub clock: Clock,
    _db: TestDatabase,
}

/// Options a test may change before the app starts.
pub struct Options {
    pub vars: HashMap<&'static str, String>,
    /// Where the manual clock starts (default: now).
    pub clock_start: Option<DateTime<Utc>>,
}

impl Options {
    pub fn set(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.vars.insert(key, value.into());
        self
    }

    pub fn unset(&mut self, key: &'static str) -> &mut Self {
        self.vars.remove(key);
        self
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// With `TEST_LOG` set, the service's logs of a test are printed with its output (filtered by
/// `RUST_LOG`, default `info`): `TEST_LOG=1 cargo test … -- --nocapture`, or seen on failure.
fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("TEST_LOG").is_some() {
        INIT.call_once(|| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        });
    }
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Options)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_test_logging();
    let treefort = MockServer::start().await;
    let db = TestDatabase::create();
    let mut options = Options {
        vars: HashMap::from([
            ("DATABASE_URL", db.url.clone()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
            ("PROVIDER_API_KEYS", API_KEY.to_string()),
            ("TREEFORT_API_URL", format!("{}/v1", treefort.uri())),
            (
                "TREEFORT_TOKEN_URL",
                format!("{}/oauth2/token", treefort.uri()),
            ),
            ("TREEFORT_CLIENT_ID", "client-id".to_string()),
            ("TREEFORT_CLIENT_SECRET", "client-secret".to_string()),
            ("TREEFORT_SCOPE", "target-entity:1234".to_string()),
            ("TREEFORT_API_VERSION", API_VERSION.to_string()),
            ("TREEFORT_TIMEOUT_MS", "1500".to_string()),
            (
                "WEBHOOK_SIGNING_KEY",
                "test-webhook-signing-key-0123456789abcdef".to_string(),
            ),
            ("WEBHOOK_TIMEOUT_MS", "2000".to_string()),
        ]),
        clock_start: None,
    };
    configure(&mut options);
    let vars = options.vars;
    let settings =
        Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings are valid");
    let clock = Clock::manual(options.clock_start.unwrap_or_else(Utc::now));
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        vars,
        treefort,
        client,
        state,
        clock,
        _db: db,
    }
}

impl TestApp {
    /// Another instance of the service on the same database, Treefort and clock.
    pub async fn second_instance(&self) -> web::Data<AppState> {
        let vars = self.vars.clone();
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let app = Application::build_with_clock(settings, self.clock.clone())
            .await
            .expect("the second instance starts");
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        state
    }

    pub async fn run_worker(&self) {
        treefort_webpay::worker::run_once(&self.state).await;
    }

    pub fn advance_to(&self, at: DateTime<Utc>) {
        let by = at - self.now();
        assert!(by >= TimeDelta::zero(), "the clock only moves forward");
        self.advance(by);
    }

    pub fn subscription(
        &self,
        user_id: &str,
    ) -> treefort_webpay::models::subscriptions::Subscription {
        use treefort_webpay::schema::subscriptions;
        subscriptions::table
            .filter(subscriptions::user_id.eq(user_id))
            .order(subscriptions::id.desc())
            .first(&mut *self.conn())
            .unwrap()
    }

    /// Bodies of the PATCHes Treefort received, oldest first.
    pub async fn patches(&self) -> Vec<Value> {
        self.treefort_requests("PATCH", "/v1/subscriptions/")
            .await
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    /// What `/metrics` answers now.
    pub async fn metrics_text(&self) -> String {
        let url = format!("{}/metrics", self.address);
        self.get(&url).await.text().await.unwrap()
    }

    pub fn conn(&self) -> DbConn {
        self.state.pool.get().expect("a database connection")
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// POSTs JSON to a Treefort-facing route with the provider key.
    pub async fn post_treefort(&self, route: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{route}", self.address))
            .bearer_auth(API_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    pub fn add_plan(&self, id: i64, trial_days: i32) {
        self.add_plan_priced(id, trial_days, "USD", 999, 100);
    }

    pub fn add_plan_priced(
        &self,
        id: i64,
        trial_days: i32,
        currency: &str,
        amount: i64,
        divisor: i64,
    ) {
        let now = self.now().naive_utc();
        let values = PlanValues {
            name: format!("Plan {id}"),
            billing_interval: "month".into(),
            interval_count: 1,
            trial_days,
            grace_days: 3,
            currency: currency.into(),
            amount,
            divisor,
            updated_at: now,
            features: "{}".into(),
        };
        plans::upsert(&mut self.conn(), id, &values, now).unwrap();
    }

    pub fn add_promo(&self, input: PromoInput) {
        promo::create(&mut self.conn(), &input, self.now().naive_utc()).unwrap();
    }

    /// Disables the promo code whose normalised form is `normalized`.
    pub fn disable_promo(&self, normalized: &str) {
        use treefort_webpay::models::promo_codes;
        let code = promo_codes::find_by_normalized_code(&mut self.conn(), normalized)
            .unwrap()
            .unwrap();
        promo_codes::set_active(&mut self.conn(), code.id, false, self.now().naive_utc()).unwrap();
    }

    /// Mounts a healthy Treefort: token endpoint, subscription POST (id `tf_sub_1`) and PATCH.
    pub async fn treefort_ok(&self) {
        self.mount_token().await;
        Mock::given(method("POST"))
            .and(path("/v1/subscriptions"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "tf_sub_1"})))
            .mount(&self.treefort)
            .await;
        Mock::given(method("PATCH"))
            .and(path_regex("^/v1/subscriptions/[^/]+$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "tf_sub_1"})))
            .mount(&self.treefort)
            .await;
    }

    pub async fn mount_token(&self) {
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"access_token": TREEFORT_TOKEN, "token_type": "Bearer", "expires_in": 3600}),
            ))
            .mount(&self.treefort)
            .await;
    }

    /// Requests Treefort received, by method and path prefix.
    pub async fn treefort_requests(&self, http_method: &str, path_prefix: &str) -> Vec<Request> {
        self.treefort
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == http_method && r.url.path().starts_with(path_prefix))
            .collect()
    }

    /// Asks for a checkout URL as Treefort would.
    pub async fn checkout_session(
        &self,
        user_id: &str,
        plan_id: i64,
        promo: Option<&str>,
    ) -> reqwest::Response {
        let mut body = checkout_body(user_id, plan_id);
        if let Some(code) = promo {
            body["promoCode"] = code.into();
        }
        self.post_treefort("/treefort/checkout-session", &body)
            .await
    }

    pub async fn checkout_url(&self, user_id: &str, plan_id: i64, promo: Option<&str>) -> String {
        let response = self.checkout_session(user_id, plan_id, promo).await;
        assert_eq!(response.status(), 200, "checkout session for {user_id}");
        let body: Value = response.json().await.unwrap();
        body["sessionUrl"].as_str().unwrap().to_string()
    }

    pub async fn pay(&self, url: &str, card: &str) -> reqwest::Response {
        self.client
            .post(url)
            .form(&[
                ("card_number", card),
                ("card_expiry", "12/40"),
                ("card_cvc", "123"),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Plan 1 (paid, no trial), a healthy Treefort, and a checkout link of `user_id` for plan 1.
    pub async fn link_to_paid_plan(&self, user_id: &str) -> String {
        self.add_plan(1, 0);
        self.treefort_ok().await;
        self.checkout_url(user_id, 1, None).await
    }

    /// The first checkout session stored (tests that make one link).
    pub fn first_checkout_session(
        &self,
    ) -> treefort_webpay::models::checkout_sessions::CheckoutSession {
        use treefort_webpay::schema::checkout_sessions;
        checkout_sessions::table
            .order(checkout_sessions::id.asc())
            .first(&mut *self.conn())
            .unwrap()
    }

    /// Submits the good card to every URL at once (each on its own task), answers in order.
    pub async fn pay_concurrently(&self, urls: &[String]) -> Vec<reqwest::Response> {
        let handles: Vec<_> = urls
            .iter()
            .map(|url| {
                let (client, url) = (self.client.clone(), url.clone());
                tokio::spawn(async move {
                    client
                        .post(&url)
                        .form(&[
                            ("card_number", GOOD_CARD),
                            ("card_expiry", "12/40"),
                            ("card_cvc", "123"),
                        ])
                        .send()
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut responses = Vec::new();
        for handle in handles {
            responses.push(handle.await.unwrap());
        }
        responses
    }

    /// A user with a paid subscription to `plan_id` (Treefort must be mounted).
    pub async fn subscribed_user(&self, user_id: &str, plan_id: i64) {
        let url = self.checkout_url(user_id, plan_id, None).await;
        let paid = self.pay(&url, GOOD_CARD).await;
        assert_eq!(
            paid.status(),
            303,
            "{}",
            paid.text().await.unwrap_or_default()
        );
    }

    /// Confirms a plan switch on its checkout page (no card: the form posts nothing).
    pub async fn confirm_switch(&self, url: &str) {
        let confirmed = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(confirmed.status(), 303);
    }

    pub async fn portal_url(&self, user_id: &str, locale: &str) -> String {
        let response = self
            .post_treefort(
                "/treefort/billing-portal-session",
                &json!({"user": user(user_id), "locale": locale, "backUrl": "https://app.example.com/account"}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["sessionUrl"].as_str().unwrap().to_string()
    }

    /// (charges, refunds) the sandbox gateway made.
    pub fn gateway_charges(&self) -> (usize, usize) {
        charges_of(&self.state)
    }

    pub fn count(&self, table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<Count>(&mut *self.conn())
            .unwrap()
            .n
    }
}

pub fn user(id: &str) -> Value {
    json!({"id": id, "email": format!("{id}@example.com"), "createdAt": "2026-01-01T00:00:00Z", "firstName": "Ada", "lastName": "Lovelace"})
}

pub fn checkout_body(user_id: &str, plan_id: i64) -> Value {
    json!({
        "user": user(user_id),
        "locale": "en",
        "subscriptionPlanId": plan_id,
        "successUrl": "https://app.example.com/success",
        "cancelUrl": "https://app.example.com/cancel",
    })
}

pub async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error.message"
    );
    (status, code)
}

/// A database of the test's own, removed afterwards.
pub struct TestDatabase {
    pub url: String,
    drop_with: Option<(String, String)>,
    file: Option<std::path::PathBuf>,
}

impl TestDatabase {
    pub fn create() -> Self {
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).unwrap();
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let name = format!("tw_test_{suffix}");
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .expect("TEST_DATABASE_URL must reach a PostgreSQL server");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                let (without_query, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
                let base = without_query
                    .rsplit_once('/')
                    .map_or(without_query, |(b, _)| b);
                // No TLS to the local test server unless asked for: libpq's OpenSSL cleans up at
                // process exit while servers of finished tests may still hold connections, which
                // crashed the test binary after every test had passed.
                let query = if query.contains("sslmode=") {
                    query.to_string()
                } else if query.is_empty() {
                    "sslmode=disable".to_string()
                } else {
                    format!("{query}&sslmode=disable")
                };
                Self {
                    url: format!("{base}/{name}?{query}"),
                    drop_with: Some((admin_url.clone(), name)),
                    file: None,
                }
            }
            None => {
                let file = std::env::temp_dir().join(format!("treefort-webpay-test-{suffix}.db"));
                Self {
                    url: format!("sqlite://{}", file.display()),
                    drop_with: None,
                    file: Some(file),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.drop_with {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
        if let Some(file) = &self.file {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
            }
        }
    }
}

/// (charges, refunds) the sandbox gateway of an instance made.
pub fn charges_of(state: &AppState) -> (usize, usize) {
    let treefort_webpay::gateway::Gateway::Sandbox(sandbox) = &state.gateway else {
        panic!("the sandbox gateway keeps a ledger; this instance runs another gateway")
    };
    let ledger = sandbox.ledger();
    (ledger.len(), ledger.iter().filter(|c| c.refunded).count())
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

impl TestApp {
    /// Another instance's worker state on the same database and Treefort, with its own manual
    /// clock and `overrides` to the settings. It has no HTTP server and no background worker: the
    /// test runs its rounds (and this app's own worker, on the app's clock, sees nothing due).
    pub async fn worker_state(
        &self,
        clock: treefort_webpay::clock::Clock,
        overrides: &[(&'static str, &str)],
    ) -> AppState {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            vars.insert(k, v.to_string());
        }
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
        treefort_webpay::startup::build_state(settings, clock)
            .await
            .expect("the worker state builds")
    }
}

impl TestApp {
    /// Runs the binary's command line with this instance's settings (database, gateway) and
    /// nothing else from the environment.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_treefort-webpay"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.vars {
            command.env(k, v);
        }
        command.output().expect("the binary runs")
    }

    /// `cli`, which must succeed: its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// `plans upsert` of a monthly USD 9.99 plan with 3 grace days, then `extra` arguments.
pub fn plan_upsert_args<'a>(id: &'a str, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let base = [
        "plans",
        "upsert",
        "--id",
        id,
        "--name",
        name,
        "--interval",
        "month",
        "--grace-days",
        "3",
        "--currency",
        "USD",
        "--amount",
        "999",
    ];
    [&base[..], extra].concat()
}

/// Asks `probe` every 100 ms until it answers `Some`, for up to 4 s: a change made by another
/// process (the CLI, a row edited by the test) reaches an instance's in-memory catalog within a
/// second. Panics naming `what` if it never does.
pub async fn eventually<T, Fut>(what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..40 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 4 s");
}
