//! `GET /v1/users/{userId}/entitlement`: is this user subscribed, to what, until when.

use actix_web::{web, HttpResponse};

use super::ReadKey;
use crate::error::ApiError;
use crate::services::entitlement;
use crate::state::AppState;

pub async fn show(
    _key: ReadKey,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let answer = entitlement::of_user(&state, user_id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
