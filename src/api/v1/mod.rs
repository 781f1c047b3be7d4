//! `/v1`: the management API of the app owner's backend, authenticated with its own API keys
//! (`Authorization: Bearer tfw_…`, made with `treefort-webpay apikeys create`). Provider keys are
//! not accepted here, nor these keys on `/treefort/*`. A read key may call the GET routes; a
//! write key every route.

pub mod entitlement;
pub mod payments;
pub mod plans;
pub mod subscriptions;

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use crate::domain::api_key;
use crate::error::ApiError;
use crate::models::api_keys::{self, ApiKey};
use crate::services::{naive, run_db};
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

fn authenticate(req: &HttpRequest) -> impl Future<Output = Result<ApiKey, ApiError>> + 'static {
    let state = req.app_data::<web::Data<AppState>>().cloned();
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
        let presented = presented.ok_or_else(unauthorized)?;
        let (key_id, secret) = api_key::parse(&presented).ok_or_else(unauthorized)?;
        let (key_id, secret_hash) = (key_id.to_string(), api_key::hash(secret));
        let now = naive(state.clock.now());
        run_db(&state.pool, move |conn| {
            let key = api_keys::find_by_key_id(conn, &key_id)?
                .filter(|k| k.revoked_at.is_none())
                .ok_or_else(unauthorized)?;
            let same: bool = key
                .secret_hash
                .as_bytes()
                .ct_eq(secret_hash.as_bytes())
                .into();
            if !same {
                return Err(unauthorized());
            }
            api_keys::touch(conn, key.id, now)?;
            Ok(key)
        })
        .await
    }
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized_with(
        "missing, unknown or revoked API key: send Authorization: Bearer tfw_… (treefort-webpay apikeys create)",
    )
}
