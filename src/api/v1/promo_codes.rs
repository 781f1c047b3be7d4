//! `/v1/promo-codes`: the same codes and checks as `treefort-webpay promo` (one code path).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::{ReadKey, Write};
use crate::error::ApiError;
use crate::services::promo_codes::{self, PromoFields};
use crate::state::AppState;

pub async fn list(_key: ReadKey, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = promo_codes::list(&state).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": all })))
}

pub async fn show(
    _key: ReadKey,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(promo_codes::show(&state, code.into_inner()).await?))
}

pub async fn create(
    write: Write,
    state: web::Data<AppState>,
    body: web::Json<PromoFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner();
    write
        .run(&state, &fields.clone(), || async {
            Ok((
                StatusCode::CREATED,
                promo_codes::create(&state, fields).await?,
            ))
        })
        .await
}

pub async fn disable(
    write: Write,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    write
        .run(&state, &(), || async {
            Ok((
                StatusCode::OK,
                promo_codes::disable(&state, code.into_inner()).await?,
            ))
        })
        .await
}
