//! `POST /treefort/subscription-plan`: Treefort fetches a plan's interval, trial, grace and price.

use actix_web::{web, HttpResponse};

use super::auth::ProviderAuth;
use crate::error::ApiError;
use crate::services::plans;
use crate::state::AppState;
use crate::treefort::provider::{PriceBody, SubscriptionPlanRequest, SubscriptionPlanResponse};

pub async fn handle(
    _auth: ProviderAuth,
    state: web::Data<AppState>,
    body: web::Json<SubscriptionPlanRequest>,
) -> Result<HttpResponse, ApiError> {
    let plan = plans::published_plan(&state, body.subscription_plan_id).await?;
    Ok(HttpResponse::Ok().json(SubscriptionPlanResponse {
        subscription_plan_id: plan.id,
        interval: plan.billing_interval,
        interval_count: plan.interval_count,
        trial_length_days: plan.trial_days,
        grace_period_days: plan.grace_days,
        price: PriceBody {
            currency: plan.currency,
            amount: plan.amount,
            divisor: plan.divisor,
        },
    }))
}
