//! The provider API key Treefort presents (`Authorization: Bearer KEY`). Keys are compared in
//! constant time, through their SHA-256 (the configured keys' computed once, at start) so that
//! their length does not leak either; every configured key is compared, so rotation (two keys)
//! costs the same for all.
//!
//! Also the rate limits' two sides of authentication, for `/treefort` and `/v1` alike: a failure
//! counts against the client's address, a proven key against its own limit.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

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
    match matched_key(req, state) {
        Ok(index) => within_limit(state, state.settings.provider_api_keys[index].name())
            .map(|()| ProviderAuth),
        Err(e) => {
            let client = crate::limits::client_address(req, state.settings.trust_proxy_headers);
            Err(count_failure(state, client, e))
        }
    }
}

/// Passes `error` on; a 401 is first counted against the client's address (over its budget, the
/// address is refused for a while before any key is looked at).
pub(crate) fn count_failure(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    error: ApiError,
) -> ApiError {
    if error.status == actix_web::http::StatusCode::UNAUTHORIZED {
        if let Some(ip) = client {
            state.limits.note_failed_auth(ip);
        }
    }
    error
}

/// A proven key, by a name that is not its secret, within its own limit; else 429.
pub(crate) fn within_limit(state: &AppState, key_name: &str) -> Result<(), ApiError> {
    state.limits.check_key(key_name).map_err(|wait| {
        state.metrics.counters.rate_limited.inc(["api"]);
        ApiError::rate_limited(crate::limits::retry_after_secs(wait))
    })
}

/// The index of the configured provider key presented (every key is compared, in constant time).
fn matched_key(req: &HttpRequest, state: &AppState) -> Result<usize, ApiError> {
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
    let (matched, index) =
        keys.iter()
            .zip(0u32..)
            .fold((subtle::Choice::from(0), 0u32), |(any, index), (key, i)| {
                let same = key.digest().ct_eq(presented.as_slice());
                (any | same, u32::conditional_select(&index, &i, same))
            });
    if bool::from(matched) {
        Ok(index as usize)
    } else {
        Err(ApiError::unauthorized())
    }
}
