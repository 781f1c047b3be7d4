//! Promo codes through `/v1/promo-codes`: the same rules as `treefort-webpay promo` (both call
//! `promo::create`), with errors in the API's shape and field names.

use serde_json::Value;

use crate::clock::rfc3339;
use crate::domain::promo_code;
use crate::error::ApiError;
use crate::models::promo_codes::{self, PromoCode};
use crate::state::AppState;

use super::promo::{self, CreateError, PromoInput};
use crate::clock::naive;
use crate::db::run_db;

/// A new code as `/v1` takes it; the names are those of the code's view.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoFields {
    pub code: String,
    pub percent_off: Option<i32>,
    pub amount_off: Option<AmountOff>,
    #[serde(default)]
    pub eligible_subscription_plan_ids: Vec<i64>,
    #[serde(default)]
    pub first_time_subscribers_only: bool,
    pub max_redemptions: Option<i32>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub note: Option<String>,
    /// `once` (default), `forever` or `repeating`.
    pub duration: Option<String>,
    pub duration_periods: Option<i32>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmountOff {
    pub amount: i64,
    pub currency: String,
    pub divisor: Option<i64>,
}

/// The CLI's option names in a rule's message, as `/v1` calls the fields.
fn api_words(message: &str) -> String {
    [
        ("--percent-off", "percentOff"),
        ("--amount-off", "amountOff"),
        ("--currency", "amountOff.currency"),
        ("--divisor", "amountOff.divisor"),
        ("--max-redemptions", "maxRedemptions"),
        ("--expires-at", "expiresAt"),
        ("--duration-periods", "durationPeriods"),
        ("--duration", "duration"),
        ("--plans", "eligibleSubscriptionPlanIds"),
    ]
    .iter()
    .fold(message.to_string(), |m, (cli, api)| m.replace(cli, api))
}

fn not_found(code: &str) -> ApiError {
    ApiError::not_found(
        "promo_code_not_found",
        format!("no promo code {code:?} (codes are letters and digits, case-insensitive)"),
    )
}

fn find(conn: &mut crate::db::AnyConnection, code: &str) -> Result<PromoCode, ApiError> {
    let normalized = promo_code::normalize(code).ok_or_else(|| not_found(code))?;
    promo_codes::find_by_normalized_code(conn, &normalized)?.ok_or_else(|| not_found(code))
}

pub async fn create(state: &AppState, fields: PromoFields) -> Result<Value, ApiError> {
    let expires_at = fields
        .expires_at
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.naive_utc())
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_promo_code",
                        "expiresAt must be an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z",
                    )
                })
        })
        .transpose()?;
    let input = PromoInput {
        code: fields.code,
        percent_off: fields.percent_off,
        amount_off: fields.amount_off.as_ref().map(|a| a.amount),
        currency: fields.amount_off.as_ref().map(|a| a.currency.clone()),
        divisor: fields.amount_off.as_ref().and_then(|a| a.divisor),
        plan_ids: fields.eligible_subscription_plan_ids,
        first_time_only: fields.first_time_subscribers_only,
        max_redemptions: fields.max_redemptions,
        expires_at,
        note: fields.note,
        duration: fields.duration,
        duration_periods: fields.duration_periods,
    };
    if input
        .note
        .as_deref()
        .is_some_and(|n| n.chars().count() > 1000 || crate::domain::text::has_control(n))
    {
        return Err(ApiError::bad_request(
            "invalid_promo_code",
            "note must be at most 1000 characters without control characters",
        ));
    }
    let now = naive(state.clock.now());
    run_db(&state.pool, move |conn| {
        let code = promo::create(conn, &input, now).map_err(|e| match e {
            CreateError::Invalid(m) => ApiError::bad_request("invalid_promo_code", api_words(&m)),
            CreateError::Exists(m) => ApiError::conflict("promo_code_exists", m),
            CreateError::Database(m) => ApiError::internal(m),
        })?;
        let plans = promo_codes::plan_ids(conn, code.id)?;
        Ok(promo::view(&code, &plans))
    })
    .await
}

pub async fn list(state: &AppState) -> Result<Vec<Value>, ApiError> {
    run_db(&state.pool, |conn| {
        let mut out = Vec::new();
        for code in promo_codes::list(conn)? {
            let plans = promo_codes::plan_ids(conn, code.id)?;
            out.push(promo::view(&code, &plans));
        }
        Ok(out)
    })
    .await
}

/// A code with its latest redemptions (up to 100, newest first).
pub async fn show(state: &AppState, code: String) -> Result<Value, ApiError> {
    run_db(&state.pool, move |conn| {
        let found = find(conn, &code)?;
        let plans = promo_codes::plan_ids(conn, found.id)?;
        let redemptions: Vec<Value> = promo_codes::list_redemptions(conn, found.id, 100)?
            .into_iter()
            .map(|(user_id, subscription_id, at)| {
                serde_json::json!({
                    "userId": user_id,
                    "subscriptionId": subscription_id,
                    "redeemedAt": rfc3339(at.and_utc()),
                })
            })
            .collect();
        let mut view = promo::view(&found, &plans);
        view["redemptions"] = redemptions.into();
        Ok(view)
    })
    .await
}

/// Stops a code from being accepted; it is kept for the record.
pub async fn disable(state: &AppState, code: String) -> Result<Value, ApiError> {
    let now = naive(state.clock.now());
    run_db(&state.pool, move |conn| {
        let found = find(conn, &code)?;
        promo_codes::set_active(conn, found.id, false, now)?;
        let found = find(conn, &code)?;
        let plans = promo_codes::plan_ids(conn, found.id)?;
        Ok(promo::view(&found, &plans))
    })
    .await
}
