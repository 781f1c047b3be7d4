//! Local mode's built-in Treefort simulator, mounted at `/simulator`. It plays both of Treefort's
//! parts, over HTTP as Treefort would: it is a client of the provider's `/treefort/*` routes (with
//! the provider key generated at start-up), and it is the Treefort API the service calls back
//! (OAuth token, subscription POST/PATCH), keeping what it receives. Its page lets a person
//! subscribe, pay, open the portal, cancel as Treefort and move the service's clock forward.
//! It never exists with a live payment gateway, and never when any Treefort setting is given.

pub mod page;
pub mod store;
pub mod treefort;

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Secret, TreefortSettings};

/// Where Treefort's side and the time travel are kept across restarts (`service_settings`).
const STORE_SETTING: &str = "local_mode.simulator";
const OFFSET_SETTING: &str = "local_mode.clock_offset_us";

/// The API version the simulated Treefort expects in `X-Treefort-Version`.
pub const API_VERSION: &str = "2024-10-01";
const CLIENT_ID: &str = "local-simulator";
/// Tokens remembered (a token older than the last 100 issued is refused, as an expired one).
const TOKENS_KEPT: usize = 100;

pub struct Simulator {
    /// Where the provider's routes answer (this process, over loopback).
    base_url: String,
    provider_key: Secret,
    client_secret: Secret,
    tokens: Mutex<VecDeque<[u8; 32]>>,
    store: Mutex<store::Store>,
    http: reqwest::Client,
}

/// What a call to one of the provider's routes answered.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Simulator {
    /// A simulator for the service at `base_url` (e.g. `http://127.0.0.1:8080`), with a fresh
    /// provider key and client secret.
    pub fn new(base_url: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            // This process, over loopback: never through a proxy.
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the simulator's HTTP client: {e}"))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            provider_key: Secret::new(format!("tfw_local_{}", random_token()?)),
            client_secret: Secret::new(random_token()?),
            tokens: Mutex::new(VecDeque::new()),
            store: Mutex::new(store::Store::default()),
            http,
        })
    }

    /// The provider key the simulator presents (and the service accepts) on `/treefort/*`.
    pub fn provider_key(&self) -> &Secret {
        &self.provider_key
    }

    /// The Treefort client settings that point the service at this simulator.
    pub fn treefort_settings(&self) -> TreefortSettings {
        TreefortSettings {
            api_url: format!("{}/simulator/api/v1", self.base_url),
            token_url: format!("{}/simulator/oauth/token", self.base_url),
            client_id: CLIENT_ID.to_string(),
            client_secret: self.client_secret.clone(),
            scope: Some("target-entity:local".to_string()),
            api_version: API_VERSION.to_string(),
            tenant: None,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, store::Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a call the simulated Treefort received, and saves what it holds.
    pub async fn receive(&self, state: &crate::state::AppState, call: store::Received) {
        let json = {
            let mut store = self.store();
            store.log(call);
            serde_json::to_string(&*store)
        };
        match json {
            Ok(json) => save_setting(state, STORE_SETTING, json, "the simulator's records").await,
            Err(e) => tracing::warn!(error = %e, "the simulator's records cannot be saved"),
        }
    }

    /// Saves how far the clock was moved ahead, so time never goes back across a restart.
    pub async fn save_clock(&self, state: &crate::state::AppState) {
        let ahead = (state.clock.now() - chrono::Utc::now())
            .num_microseconds()
            .unwrap_or(0)
            .max(0)
            .to_string();
        save_setting(state, OFFSET_SETTING, ahead, "the simulated time").await;
    }

    /// Restores what an earlier run of local mode left: Treefort's records and the time travel.
    pub async fn restore(&self, state: &crate::state::AppState) -> Result<(), String> {
        let (store, offset) = crate::db::run_db(&state.pool, |conn| {
            use crate::models::service_settings::get;
            Ok((get(conn, STORE_SETTING)?, get(conn, OFFSET_SETTING)?))
        })
        .await
        .map_err(|e| e.to_string())?;
        if let Some(json) = store {
            match serde_json::from_str(&json) {
                Ok(store) => *self.store() = store,
                Err(e) => {
                    tracing::warn!(error = %e, "the simulator's saved records are unreadable; starting empty")
                }
            }
        }
        if let Some(micros) = offset.and_then(|o| o.parse::<i64>().ok()) {
            state.clock.advance(chrono::TimeDelta::microseconds(micros));
        }
        Ok(())
    }

    /// Whether HTTP Basic credentials (base64 of `id:secret`) are the simulator's client's.
    fn is_client(&self, basic: &str) -> bool {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) else {
            return false;
        };
        let expected = format!("{CLIENT_ID}:{}", self.client_secret.expose());
        Sha256::digest(&decoded)
            .ct_eq(&Sha256::digest(expected.as_bytes()))
            .into()
    }

    fn issue_token(&self) -> Option<String> {
        let token = random_token().ok()?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() == TOKENS_KEPT {
            tokens.pop_front();
        }
        tokens.push_back(Sha256::digest(token.as_bytes()).into());
        Some(token)
    }

    fn is_token(&self, token: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.iter().any(|t| bool::from(t.ct_eq(&digest)))
    }

    /// `POST {base}{path}` with the provider key, as Treefort calls the provider.
    pub async fn call(&self, path: &str, body: &Value) -> Result<Reply, String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.provider_key.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{path} could not be reached: {}", e.without_url()))?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }
}

/// Saves one of local mode's `service_settings` rows; a failure is logged (the next change
/// saves again).
async fn save_setting(
    state: &crate::state::AppState,
    name: &'static str,
    value: String,
    what: &str,
) {
    let saved = crate::db::run_db(&state.pool, move |conn| {
        Ok(crate::models::service_settings::put(conn, name, &value)?)
    })
    .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "{what} could not be saved");
    }
}

fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The note the demo promo code carries, so a database that later goes live can be warned about.
pub const DEMO_NOTE: &str = "local mode demo";

/// The demo promo codes still usable in `catalog` (outside local mode, start-up warns of them).
pub fn active_demo_codes(catalog: &crate::cache::catalog::Snapshot) -> Vec<String> {
    catalog
        .promos
        .values()
        .filter(|p| p.code.active && p.code.note.as_deref() == Some(DEMO_NOTE))
        .map(|p| p.code.code.clone())
        .collect()
}

/// Two demo plans and a demo promo code, when the database has no plan yet. Returns what it made.
pub fn seed_demo(
    conn: &mut crate::db::AnyConnection,
    now: chrono::NaiveDateTime,
) -> Result<Vec<String>, String> {
    use crate::services::plans::PlanInput;
    use crate::services::promo::PromoInput;
    let db_err = |e: diesel::result::Error| format!("cannot seed the demo plans: {e}");
    if !crate::models::plans::list(conn).map_err(db_err)?.is_empty() {
        return Ok(Vec::new());
    }
    let plans = [
        (1, "Monthly", "month", 7, 3, 999, ("basic", false, 10)),
        (2, "Yearly", "year", 0, 7, 9_900, ("pro", true, 50)),
    ];
    let mut made = Vec::new();
    for (id, name, interval, trial_days, grace_days, amount, (tier, reports, seats)) in plans {
        let features = serde_json::json!({
            "tier": tier, "advancedReporting": reports, "maxEmployees": seats,
        });
        let input = PlanInput {
            id,
            name: name.into(),
            interval: interval.into(),
            interval_count: 1,
            trial_days,
            grace_days,
            currency: "EUR".into(),
            amount,
            divisor: 100,
            features: crate::domain::features::Features::from_json(features)?,
        };
        let values = input.validate(now)?;
        crate::models::plans::upsert(conn, id, &values, now).map_err(db_err)?;
        made.push(format!("plan {id} ({name})"));
    }
    let promo = PromoInput {
        code: "WELCOME20".into(),
        percent_off: Some(20),
        amount_off: None,
        currency: None,
        divisor: None,
        plan_ids: Vec::new(),
        first_time_only: true,
        max_redemptions: None,
        expires_at: None,
        note: Some(DEMO_NOTE.into()),
        duration: Some("once".into()),
        duration_periods: None,
    };
    crate::services::promo::create(conn, &promo, now).map_err(|e| e.to_string())?;
    made.push("promo code WELCOME20 (20 % off the first charge)".into());
    Ok(made)
}

/// The simulator's routes (mounted in local mode only).
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    cfg.route("/simulator", web::get().to(page::index))
        .route("/simulator/subscribe", web::post().to(page::subscribe))
        .route("/simulator/validate", web::post().to(page::validate))
        .route("/simulator/clock", web::post().to(page::travel))
        .route("/simulator/inbox", web::get().to(page::inbox::inbox))
        .route("/simulator/inbox/{id}", web::get().to(page::inbox::message))
        .route("/simulator/users/{user}", web::get().to(page::user))
        .route(
            "/simulator/users/{user}/portal",
            web::post().to(page::portal),
        )
        .route(
            "/simulator/users/{user}/cancel",
            web::post().to(page::cancel),
        )
        .route("/simulator/oauth/token", web::post().to(treefort::token))
        .route(
            "/simulator/api/v1/subscriptions",
            web::post().to(treefort::create),
        )
        .route(
            "/simulator/api/v1/subscriptions/{id}",
            web::patch().to(treefort::update),
        );
}
