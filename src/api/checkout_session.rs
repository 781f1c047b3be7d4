//! `POST /treefort/checkout-session`: a unique, expiring checkout URL for one user and plan.

use actix_web::{web, HttpResponse};

use super::auth::ProviderAuth;
use crate::error::ApiError;
use crate::services::checkout;
use crate::state::AppState;
use crate::treefort::provider::{CheckoutSessionRequest, SessionUrlResponse};

pub async fn handle(
    _auth: ProviderAuth,
    state: web::Data<AppState>,
    body: web::Json<CheckoutSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let session_url = checkout::create_session(&state, body.into_inner()).await?;
    // The URL is a bearer secret: no cache keeps it.
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(SessionUrlResponse { session_url }))
}
