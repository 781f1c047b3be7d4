//! `/v1`: the management API of the app owner's backend, authenticated with its own API keys
//! (`Authorization: Bearer tfw_…`, made with `treefort-webpay apikeys create`). Provider keys are
//! not accepted here, nor these keys on `/treefort/*`. A read key may call the GET routes; a
//! write key every route. Every write takes an `Idempotency-Key` header (see `Write`).

pub mod entitlement;
pub mod events;
pub mod launch_tokens;
pub mod payments;
pub mod plans;
pub mod promo_codes;
pub mod subscriptions;
pub mod webhook_endpoints;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use crate::clock::naive;
use crate::db::run_db;
use crate::domain::api_key;
use crate::error::ApiError;
use crate::models::api_keys::{self, ApiKey};
use crate::services::idempotency::{self, Begin};
use crate::state::AppState;

/// A request made with a valid, unrevoked API key (any scope).
pub struct ReadKey(pub ApiKey);

/// A request made with a valid, unrevoked API key of scope `write`.
pub struct WriteKey(pub ApiKey);

impl FromRequest for ReadKey {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = authenticate(req);
        Box::pin(async move { checked.await.map(ReadKey) })
    }
}

impl FromRequest for WriteKey {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = authenticate(req);
        Box::pin(async move {
            let key = checked.await?;
            if key.scope != api_keys::WRITE {
                return Err(ApiError::forbidden(
                    "insufficient_scope",
                    "this API key may only read; this route needs a write key",
                ));
            }
            Ok(WriteKey(key))
        })
    }
}

/// A write made with a write key, with its `Idempotency-Key` if it sent one. `run` makes the
/// write once per key: a repeat with the same key and request answers what the first answered
/// (with `Idempotent-Replayed: true`), the same key with another request is 409.
pub struct Write {
    pub key: ApiKey,
    idempotency_key: Option<String>,
    method: String,
    path: String,
}

impl FromRequest for Write {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let key = WriteKey::from_request(req, payload);
        let idempotency_key = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_string));
        let (method, path) = (req.method().to_string(), req.path().to_string());
        Box::pin(async move {
            let WriteKey(key) = key.await?;
            let idempotency_key = match idempotency_key {
                None => None,
                Some(Ok(value)) => {
                    idempotency::check_key(&value)?;
                    Some(value)
                }
                Some(Err(_)) => {
                    return Err(ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be visible ASCII characters",
                    ))
                }
            };
            Ok(Write {
                key,
                idempotency_key,
                method,
                path,
            })
        })
    }
}

impl Write {
    /// The request's name for outbound idempotency keys: its API key and `Idempotency-Key`.
    pub fn request_name(&self) -> Option<String> {
        self.idempotency_key
            .as_ref()
            .map(|k| format!("{}:{k}", self.key.key_id))
    }

    /// Runs `write` (answering a status and JSON), once per `Idempotency-Key`. `request` is what
    /// the body said, so that a repeat can be told from another request.
    pub async fn run<B, F, Fut>(
        self,
        state: &AppState,
        request: &B,
        write: F,
    ) -> Result<HttpResponse, ApiError>
    where
        B: serde::Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
    {
        let Some(idempotency_key) = self.idempotency_key else {
            let (status, body) = write().await?;
            return Ok(respond(status, body));
        };
        let body = serde_json::to_string(request).map_err(ApiError::internal)?;
        let hash = idempotency::fingerprint(&self.method, &self.path, &body);
        let (api_key_id, now) = (self.key.id, naive(state.clock.now()));
        let begun = run_db(&state.pool, move |conn| {
            idempotency::begin(conn, api_key_id, &idempotency_key, &hash, now)
        })
        .await?;
        let record = match begun {
            Begin::Replay { status, body } => {
                return Ok(HttpResponse::build(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                )
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type("application/json")
                .body(unseal(state, &body)?));
            }
            Begin::Run(record) => record,
        };
        let outcome = write().await;
        let kept = match &outcome {
            Ok((status, body)) => Some((status.as_u16(), seal(body).to_string())),
            // Worth trying again with the same key: ours or Treefort's failure (nothing changed),
            // or a conflict that says to retry in a moment.
            Err(e) if e.status.is_server_error() || RETRYABLE.contains(&e.code) => None,
            Err(e) => Some((e.status.as_u16(), e.body().to_string())),
        };
        let saved = match kept {
            Some((status, body)) => idempotency::finish(state, record, status, body).await,
            None => idempotency::abandon(state, record).await,
        };
        if let Err(e) = saved {
            tracing::error!(error = %e, "keeping the outcome of an idempotent request failed");
        }
        let (status, body) = outcome?;
        Ok(respond(status, body))
    }
}

/// The answer as sent: without the salt a secret's answer carries for `seal`.
fn respond(status: StatusCode, mut body: serde_json::Value) -> HttpResponse {
    if let Some(object) = body.as_object_mut() {
        object.remove(SEALED_SALT);
    }
    HttpResponse::build(status).json(body)
}

/// Conflicts that clear by themselves: a repeat with the same key runs again.
const RETRYABLE: [&str; 3] = ["subscription_busy", "request_timeout", "rate_limited"];

/// The field a webhook secret's answer carries its salt in (see `EndpointWithSecret`).
const SEALED_SALT: &str = "_secretSalt";

/// An answer as it is kept: a webhook secret is replaced by nothing but its salt, so the
/// database never holds it.
fn seal(body: &serde_json::Value) -> serde_json::Value {
    let mut kept = body.clone();
    if let Some(object) = kept.as_object_mut() {
        if object.contains_key(SEALED_SALT) {
            object.remove("secret");
        }
    }
    kept
}

/// A kept answer as it is sent again: the secret derived anew from its salt.
fn unseal(state: &AppState, kept: &str) -> Result<String, ApiError> {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(kept) else {
        return Ok(kept.to_string());
    };
    let Some(serde_json::Value::String(salt)) = object.remove(SEALED_SALT) else {
        return Ok(kept.to_string());
    };
    let secret = crate::services::webhooks::secret_from_salt(&state.settings, &salt)?;
    object.insert("secret".into(), secret.into());
    Ok(serde_json::Value::Object(object).to_string())
}

/// A JSON body that may be left out (empty: `T::default()`). A malformed one is 400, never the
/// default.
pub fn optional_body<T>(body: &[u8], shape: &str) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + Default,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_body(format!("the body must be {shape} or empty: {e}")))
}

fn authenticate(req: &HttpRequest) -> impl Future<Output = Result<ApiKey, ApiError>> + 'static {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let client = state
        .as_ref()
        .and_then(|state| crate::limits::client_address(req, state.settings.trust_proxy_headers));
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_string());
    async move {
        let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
        match find_key(&state, presented).await {
            Ok(key) => {
                crate::api::auth::within_limit(&state, &key.key_id)?;
                Ok(key)
            }
            Err(e) => Err(crate::api::auth::count_failure(&state, client, e)),
        }
    }
}

/// The live key `presented` names, from memory when the catalog has it. A well-formed key id
/// that is not in the database is remembered for a minute ([`crate::limits`]), so repeating it
/// costs no lookup.
async fn find_key(
    state: &web::Data<AppState>,
    presented: Option<String>,
) -> Result<ApiKey, ApiError> {
    let presented = presented.ok_or_else(unauthorized)?;
    let (key_id, secret) = api_key::parse(&presented).ok_or_else(unauthorized)?;
    let (key_id, secret_hash) = (key_id.to_string(), api_key::hash(secret));
    let now = naive(state.clock.now());
    let same = move |key: &ApiKey| -> bool {
        key.secret_hash
            .as_bytes()
            .ct_eq(secret_hash.as_bytes())
            .into()
    };
    // From memory: no database round trip for a known key. A key made since the last
    // version check is looked up below.
    if let Some(key) = state.catalog.get(&state.pool).await?.api_keys.get(&key_id) {
        if !same(key) {
            return Err(unauthorized());
        }
        touch_lazily(state, key, now);
        return Ok(key.clone());
    }
    if state.limits.is_unknown_key(&key_id) {
        return Err(unauthorized());
    }
    let looked_up = key_id.clone();
    let found = run_db(&state.pool, move |conn| {
        let Some(key) = api_keys::find_by_key_id(conn, &looked_up)? else {
            return Ok(None);
        };
        if key.revoked_at.is_some() || !same(&key) {
            return Err(unauthorized());
        }
        api_keys::touch(conn, &key, now)?;
        Ok(Some(key))
    })
    .await?;
    found.ok_or_else(|| {
        state.limits.note_unknown_key(&key_id);
        unauthorized()
    })
}

/// Notes a key's use at most once a minute per process, off the request's path: the answer
/// never waits for the write.
fn touch_lazily(state: &web::Data<AppState>, key: &ApiKey, now: chrono::NaiveDateTime) {
    let last = state.api_key_uses.get(&key.key_id).or(key.last_used_at);
    if last.is_some_and(|at| at >= now - chrono::TimeDelta::minutes(1)) {
        return;
    }
    state.api_key_uses.insert(key.key_id.clone(), now);
    let (state, key) = (state.clone(), key.clone());
    tokio::spawn(async move {
        let touched = run_db(&state.pool, move |conn| {
            Ok(api_keys::touch(conn, &key, now)?)
        })
        .await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "noting an API key's use failed");
        }
    });
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized_with(
        "missing, unknown or revoked API key: send Authorization: Bearer tfw_… (treefort-webpay apikeys create)",
    )
}
