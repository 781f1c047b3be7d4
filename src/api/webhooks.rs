//! `POST /webhooks/{gateway}`: events the payment gateway sends (Stripe's, signed). Verified and
//! stored before the answer; processed from the stored row right after it.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::services::gateway_events;
use crate::state::AppState;

/// Largest event accepted (Stripe's are a few kilobytes).
pub const WEBHOOK_LIMIT: usize = 512 * 1024;

pub async fn stripe(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let signature = req
        .headers()
        .get("Stripe-Signature")
        .and_then(|v| v.to_str().ok());
    let stored = gateway_events::receive(&state, "stripe", signature, &body).await?;
    if let Some(id) = stored {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = gateway_events::process(&state, id).await {
                tracing::warn!(error = %e, "processing a gateway event failed; the worker tries again");
            }
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "received": true,
        "duplicate": stored.is_none(),
    })))
}
