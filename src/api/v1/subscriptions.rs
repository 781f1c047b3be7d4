//! `POST /v1/subscriptions/{id}/cancel` and `/resume`: the same rules as Treefort's cancel and the
//! portal's resume (Treefort is PATCHed first; its failure is 502/504 with nothing changed).

use actix_web::{web, HttpResponse};

use super::WriteKey;
use crate::error::ApiError;
use crate::services::entitlement;
use crate::state::AppState;

pub async fn cancel(
    _key: WriteKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(entitlement::cancel(&state, id.into_inner()).await?))
}

pub async fn resume(
    _key: WriteKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(entitlement::resume(&state, id.into_inner()).await?))
}
