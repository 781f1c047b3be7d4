//! The provider API key Treefort presents (`Authorization: Bearer KEY`). Keys are compared in
//! constant time, through their SHA-256 so that their length does not leak either; every
//! configured key is compared, so rotation (two keys) costs the same for all.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Proof that the request carried a valid provider key.
pub struct ProviderAuth;

impl FromRequest for ProviderAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req))
    }
}

fn check(req: &HttpRequest) -> Result<ProviderAuth, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let keys = &state.settings.provider_api_keys;
    if keys.is_empty() {
        return Err(ApiError::not_configured(
            "no provider API key is configured (PROVIDER_API_KEYS)",
        ));
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let presented = Sha256::digest(presented.as_bytes());
    let matched = keys.iter().fold(subtle::Choice::from(0), |any, key| {
        any | Sha256::digest(key.expose().as_bytes()).ct_eq(&presented)
    });
    if bool::from(matched) {
        Ok(ProviderAuth)
    } else {
        Err(ApiError::unauthorized())
    }
}
