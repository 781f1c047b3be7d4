//! `POST /v1/users/{userId}/launch-tokens`: a short-lived signed token that carries the user into
//! one of the app owner's products (write scope). Each call mints a new token and none is kept,
//! so an `Idempotency-Key` is not replayed here: a retry simply gets another token.

use actix_web::{web, HttpResponse};

use super::{optional_body, WriteKey};
use crate::error::ApiError;
use crate::services::launch_tokens::{self, LaunchTokenRequest};
use crate::state::AppState;

pub async fn create(
    _key: WriteKey,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: LaunchTokenRequest = optional_body(&body, "a launch-token request")?;
    let minted = launch_tokens::mint(&state, user_id.into_inner(), request).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(minted))
}

/// `GET /.well-known/jwks.json`: the public keys launch tokens are signed with (EdDSA), for the
/// products that verify them. Cached for 5 minutes (`launch_tokens::JWKS_MAX_AGE`: a new key is
/// published that long before it signs); a rotated key stays listed for 24 hours.
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = launch_tokens::jwks(&state).await?;
    // Not cached while empty: the first key signs as soon as it is made.
    let cache = match keys.keys.is_empty() {
        true => "no-store".to_string(),
        false => format!(
            "public, max-age={}",
            launch_tokens::JWKS_MAX_AGE.num_seconds()
        ),
    };
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, cache))
        .json(keys))
}
