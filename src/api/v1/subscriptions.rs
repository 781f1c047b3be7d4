//! `POST /v1/subscriptions/{id}/cancel` and `/resume`: the same rules as Treefort's cancel and the
//! portal's resume (Treefort is PATCHed first; its failure is 502/504 with nothing changed).

use actix_web::{web, HttpResponse};

use actix_web::http::StatusCode;

use super::Write;
use crate::error::ApiError;
use crate::services::entitlement;
use crate::state::AppState;

pub async fn cancel(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    write
        .run(&state, &(), || async {
            let canceled = entitlement::cancel(&state, id.into_inner()).await?;
            Ok((StatusCode::OK, json(&canceled)?))
        })
        .await
}

pub async fn resume(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    write
        .run(&state, &(), || async {
            let resumed = entitlement::resume(&state, id.into_inner()).await?;
            Ok((StatusCode::OK, json(&resumed)?))
        })
        .await
}

fn json(value: &impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    user_id: Option<String>,
    status: Option<String>,
    plan_id: Option<i64>,
    limit: Option<i64>,
    starting_after: Option<i64>,
}

/// `GET /v1/subscriptions`: newest first, filtered, one page.
pub async fn list(
    _key: super::ReadKey,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let listing = crate::models::subscriptions::Listing {
        user_id: q.user_id,
        plan_id: q.plan_id,
        status: q.status,
        starting_after: q.starting_after,
    };
    let page = crate::services::management::subscriptions(&state, listing, q.limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/subscriptions/{id}`: with its payments.
pub async fn show(
    _key: super::ReadKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let detail = crate::services::management::subscription(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(detail))
}
