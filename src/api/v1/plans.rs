//! `/v1/plans`: the same plans and checks as `treefort-webpay plans` (one code path).

use actix_web::{web, HttpResponse};

use actix_web::http::StatusCode;

use super::{ReadKey, Write};
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
    write: Write,
    state: web::Data<AppState>,
    body: web::Json<PlanFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner();
    write
        .run(&state, &fields.clone(), || async {
            let plan = plans::create(&state, fields).await?;
            Ok((StatusCode::CREATED, plans::view(&plan)))
        })
        .await
}

pub async fn update(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<PlanFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner();
    write
        .run(&state, &fields.clone(), || async {
            let (plan, keep) = plans::update(&state, id.into_inner(), fields).await?;
            let mut answer = plans::view(&plan);
            answer["subscribersKeepingOtherTerms"] = keep.into();
            Ok((StatusCode::OK, answer))
        })
        .await
}
