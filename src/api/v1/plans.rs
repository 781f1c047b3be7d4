//! `/v1/plans`: the same plans and checks as `treefort-webpay plans` (one code path).

use actix_web::{web, HttpResponse};

use super::{ReadKey, WriteKey};
use crate::error::ApiError;
use crate::services::plans::{self, PlanFields};
use crate::state::AppState;

pub async fn list(_key: ReadKey, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all: Vec<_> = plans::list(&state).await?.iter().map(plans::view).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": all })))
}

pub async fn show(
    _key: ReadKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let plan = plans::find_plan(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(plans::view(&plan)))
}

pub async fn create(
    _key: WriteKey,
    state: web::Data<AppState>,
    body: web::Json<PlanFields>,
) -> Result<HttpResponse, ApiError> {
    let plan = plans::create(&state, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(plans::view(&plan)))
}

pub async fn update(
    _key: WriteKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<PlanFields>,
) -> Result<HttpResponse, ApiError> {
    let (plan, keep) = plans::update(&state, id.into_inner(), body.into_inner()).await?;
    let mut answer = plans::view(&plan);
    answer["subscribersKeepingOtherTerms"] = keep.into();
    Ok(HttpResponse::Ok().json(answer))
}
