//! `POST /treefort/billing-portal-session`: a unique, expiring billing-portal URL for one user.

use actix_web::{web, HttpResponse};

use super::auth::ProviderAuth;
use crate::error::ApiError;
use crate::services::portal;
use crate::state::AppState;
use crate::treefort::provider::{BillingPortalSessionRequest, SessionUrlResponse};

pub async fn handle(
    _auth: ProviderAuth,
    state: web::Data<AppState>,
    body: web::Json<BillingPortalSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let session_url = portal::create_session(&state, body.into_inner()).await?;
    // The URL is a bearer secret: no cache keeps it.
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(SessionUrlResponse { session_url }))
}
