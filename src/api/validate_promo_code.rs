//! `POST /treefort/validate-promo-code`: `amount`, `percent` or `invalid`, as Treefort types it.

use actix_web::{web, HttpResponse};

use super::auth::ProviderAuth;
use crate::error::ApiError;
use crate::services::promo;
use crate::state::AppState;
use crate::treefort::provider::ValidatePromoCodeRequest;

pub async fn handle(
    _auth: ProviderAuth,
    state: web::Data<AppState>,
    body: web::Json<ValidatePromoCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = promo::validate(&state, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(answer))
}
