//! `POST /treefort/cancel-subscription`: answered 200 only after Treefort accepted our PATCH.

use actix_web::{web, HttpResponse};

use super::auth::ProviderAuth;
use crate::clock::rfc3339;
use crate::clock::utc;
use crate::error::ApiError;
use crate::services::cancel;
use crate::state::AppState;
use crate::treefort::provider::{CancelSubscriptionRequest, CancelSubscriptionResponse};

pub async fn handle(
    _auth: ProviderAuth,
    state: web::Data<AppState>,
    body: web::Json<CancelSubscriptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let subscription =
        cancel::cancel(&state, request.user_id, request.subscription_plan_id).await?;
    Ok(HttpResponse::Ok().json(CancelSubscriptionResponse {
        user_id: subscription.user_id,
        subscription_plan_id: subscription.plan_id,
        canceled_at: subscription
            .canceled_at
            .map(|t| rfc3339(utc(t)))
            .unwrap_or_default(),
        current_period_ends_at: rfc3339(utc(subscription.current_period_ends_at)),
    }))
}
