//! Request and response bodies of the five routes Treefort calls on this provider, exactly as
//! Treefort's reference types them (camelCase; optional fields optional; unknown fields ignored).
//! Beside Treefort's client: everything Treefort's spec shapes sits in `treefort/`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreefortUser {
    pub id: String,
    pub email: String,
    pub created_at: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    #[allow(dead_code)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TreefortUser {
    /// The name to show: `fullName`, else first and last name joined.
    pub fn display_name(&self) -> Option<String> {
        let joined = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        self.full_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or((!joined.is_empty()).then_some(joined))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPlanRequest {
    pub subscription_plan_id: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPlanResponse {
    pub subscription_plan_id: i64,
    pub interval: String,
    pub interval_count: i32,
    pub trial_length_days: i32,
    pub grace_period_days: i32,
    pub price: PriceBody,
}

#[derive(Debug, Serialize)]
pub struct PriceBody {
    pub currency: String,
    pub amount: i64,
    pub divisor: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutSessionRequest {
    pub user: TreefortUser,
    pub locale: String,
    pub subscription_plan_id: i64,
    pub promo_code: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingPortalSessionRequest {
    pub user: TreefortUser,
    pub locale: String,
    pub back_url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionUrlResponse {
    pub session_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelSubscriptionRequest {
    pub user_id: String,
    pub subscription_plan_id: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelSubscriptionResponse {
    pub user_id: String,
    pub subscription_plan_id: i64,
    pub canceled_at: String,
    pub current_period_ends_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatePromoCodeRequest {
    pub user_id: Option<String>,
    pub subscription_plan_ids: Vec<i64>,
    pub code: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ValidatePromoCodeResponse {
    Amount {
        code: String,
        amount_off: PriceAmount,
        eligible_subscription_plan_ids: Vec<i64>,
        first_time_subscribers_only: bool,
    },
    Percent {
        code: String,
        eligible_subscription_plan_ids: Vec<i64>,
        first_time_subscribers_only: bool,
        percent_off: i32,
    },
    Invalid,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PriceAmount {
    pub amount: i64,
    pub currency: String,
    pub divisor: i64,
}
