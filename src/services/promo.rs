//! Promo codes: the one place that decides whether a code is valid for some plans and a user, used
//! by the validation endpoint and by checkout alike, and the rules for creating codes (CLI).

use chrono::NaiveDateTime;

use crate::cache::catalog::Snapshot;
use crate::db::{write_transaction, AnyConnection};
use crate::domain::money::{parse_currency, parse_divisor, Discount};
use crate::domain::promo_code;
use crate::error::ApiError;
use crate::models::plans;
use crate::models::promo_codes::{self, NewPromoCode, PromoCode};
use crate::models::subscriptions;
use crate::state::AppState;
use crate::treefort::provider::{PriceAmount, ValidatePromoCodeRequest, ValidatePromoCodeResponse};

use crate::clock::naive;
use crate::db::run_db;

/// A code that may be used, with the requested plans it applies to.
#[derive(Debug, Clone)]
pub struct ValidPromo {
    pub promo: PromoCode,
    pub eligible_plan_ids: Vec<i64>,
}

/// The requested plans a code limited to `limited_to` (empty: every plan) may apply to.
fn candidates(limited_to: &[i64], requested_plan_ids: &[i64]) -> Vec<i64> {
    let mut candidates: Vec<i64> = requested_plan_ids
        .iter()
        .copied()
        .filter(|id| limited_to.is_empty() || limited_to.contains(id))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    candidates
}

/// The code's own terms against the candidate plans: active, not expired, not used up, and a
/// discount each plan's price can take. The user's history is the caller's to check.
fn judge(
    promo: PromoCode,
    candidate_plans: &[&plans::Plan],
    now: NaiveDateTime,
) -> Option<ValidPromo> {
    let exhausted = promo
        .max_redemptions
        .is_some_and(|max| promo.times_redeemed >= max);
    if !promo.active || exhausted || promo.expires_at.is_some_and(|at| at <= now) {
        return None;
    }
    let discount = promo.discount();
    let mut eligible_plan_ids: Vec<i64> = candidate_plans
        .iter()
        .filter(|plan| plan.price().discounted(&discount).is_some())
        .map(|plan| plan.id)
        .collect();
    if eligible_plan_ids.is_empty() {
        return None;
    }
    eligible_plan_ids.sort_unstable();
    Some(ValidPromo {
        promo,
        eligible_plan_ids,
    })
}

/// Whether `code` is usable for any of `requested_plan_ids` at `now`, from the in-memory catalog:
/// syntax, active, not expired, below its redemption limit (the catalog changes when a code
/// reaches it), limited to those plans (and, for an amount off, to plans in its currency). The
/// user's history (first-time-only) is the caller's: the validation endpoint reads it, a checkout
/// session makes it a condition of its insert. Redemptions are decided again when the shopper
/// pays, in that transaction.
pub fn judge_in_catalog(
    catalog: &Snapshot,
    code: &str,
    requested_plan_ids: &[i64],
    now: NaiveDateTime,
) -> Option<ValidPromo> {
    let entry = catalog.promos.get(&promo_code::normalize(code)?)?;
    let candidates = candidates(&entry.plan_ids, requested_plan_ids);
    judge(entry.code.clone(), &catalog.plans_among(&candidates), now)
}

/// `judge_in_catalog`, then the user's history for a first-time-only code asked about a known
/// user (the only database read).
async fn evaluate_from_catalog(
    state: &AppState,
    code: &str,
    requested_plan_ids: &[i64],
    user_id: Option<String>,
    now: NaiveDateTime,
) -> Result<Option<ValidPromo>, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let Some(valid) = judge_in_catalog(&catalog, code, requested_plan_ids, now) else {
        return Ok(None);
    };
    if let (true, Some(user_id)) = (valid.promo.first_time_only, user_id) {
        let before = run_db(&state.pool, move |conn| {
            Ok(subscriptions::user_has_subscribed_before(conn, &user_id)?)
        })
        .await?;
        if before {
            return Ok(None);
        }
    }
    Ok(Some(valid))
}

/// The promo code validation endpoint.
pub async fn validate(
    state: &AppState,
    request: ValidatePromoCodeRequest,
) -> Result<ValidatePromoCodeResponse, ApiError> {
    if let Some(user_id) = &request.user_id {
        super::check_user_id(user_id)?;
    }
    let now = naive(state.clock.now());
    let valid = evaluate_from_catalog(
        state,
        &request.code,
        &request.subscription_plan_ids,
        request.user_id.clone(),
        now,
    )
    .await?;
    Ok(match valid {
        None => ValidatePromoCodeResponse::Invalid,
        Some(ValidPromo {
            promo,
            eligible_plan_ids,
        }) => match promo.discount() {
            Discount::Percent(percent_off) => ValidatePromoCodeResponse::Percent {
                code: promo.code,
                eligible_subscription_plan_ids: eligible_plan_ids,
                first_time_subscribers_only: promo.first_time_only,
                percent_off,
            },
            Discount::AmountOff(money) => ValidatePromoCodeResponse::Amount {
                code: promo.code,
                amount_off: PriceAmount {
                    amount: money.amount,
                    currency: money.currency,
                    divisor: money.divisor,
                },
                eligible_subscription_plan_ids: eligible_plan_ids,
                first_time_subscribers_only: promo.first_time_only,
            },
        },
    })
}

/// A new code as the operator describes it on the command line.
#[derive(Debug, Clone, Default)]
pub struct PromoInput {
    pub code: String,
    pub percent_off: Option<i32>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub divisor: Option<i64>,
    pub plan_ids: Vec<i64>,
    pub first_time_only: bool,
    pub max_redemptions: Option<i32>,
    pub expires_at: Option<NaiveDateTime>,
    pub note: Option<String>,
    /// `once` (default), `forever` or `repeating` with `duration_periods`.
    pub duration: Option<String>,
    pub duration_periods: Option<i32>,
}

/// Why a code could not be created; the text is one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exists(String),
    #[error("database error: {0}")]
    Database(String),
}

/// Creates a code after the same checks the CLI and `/v1/promo-codes` share. Messages name the
/// CLI's options; `/v1` renames them to its fields.
pub fn create(
    conn: &mut AnyConnection,
    input: &PromoInput,
    now: NaiveDateTime,
) -> Result<PromoCode, CreateError> {
    let (new, plan_ids) = prepare(input, now).map_err(CreateError::Invalid)?;
    let normalized = new.code_normalized.clone();
    write_transaction(conn, |conn| {
        if promo_codes::find_by_normalized_code(conn, &normalized)?.is_some() {
            return Ok(Err(CreateError::Exists(format!(
                "promo code {} already exists (codes are case-insensitive)",
                input.code
            ))));
        }
        Ok::<_, diesel::result::Error>(Ok(promo_codes::insert(conn, &new, &plan_ids)?))
    })
    .map_err(|e| match e {
        // Made by another request meanwhile.
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => CreateError::Exists(format!(
            "promo code {} already exists (codes are case-insensitive)",
            input.code
        )),
        e => CreateError::Database(e.to_string()),
    })?
}

/// The row a valid input makes, with the plans it is limited to.
fn prepare(input: &PromoInput, now: NaiveDateTime) -> Result<(NewPromoCode, Vec<i64>), String> {
    let normalized = promo_code::normalize(&input.code).ok_or_else(|| {
        format!(
            "promo code {:?} is not allowed: use 1 to {} letters A-Z and digits only",
            input.code,
            promo_code::MAX_LEN
        )
    })?;
    let (discount_type, currency, divisor) = match (input.percent_off, input.amount_off) {
        (Some(p), None) => {
            if !(1..=100).contains(&p) {
                return Err(format!("--percent-off must be from 1 to 100 (got {p})"));
            }
            if input.currency.is_some() || input.divisor.is_some() {
                return Err(
                    "--currency and --divisor go with --amount-off, not --percent-off".into(),
                );
            }
            ("percent", None, None)
        }
        (None, Some(a)) => {
            if a <= 0 {
                return Err(format!(
                    "--amount-off must be a positive amount in minor units (got {a})"
                ));
            }
            let currency = input
                .currency
                .as_deref()
                .ok_or("--amount-off needs --currency (e.g. --currency USD)")?;
            (
                "amount",
                Some(parse_currency(currency)?),
                Some(parse_divisor(input.divisor.unwrap_or(100))?),
            )
        }
        _ => return Err("give exactly one of --percent-off or --amount-off".into()),
    };
    if input.max_redemptions.is_some_and(|m| m <= 0) {
        return Err("--max-redemptions must be at least 1".into());
    }
    if input.expires_at.is_some_and(|at| at <= now) {
        return Err("--expires-at is in the past".into());
    }
    let duration = input.duration.clone().unwrap_or_else(|| "once".into());
    match (duration.as_str(), input.duration_periods) {
        ("once" | "forever", None) => {}
        ("repeating", Some(n)) if n > 0 => {}
        ("repeating", _) => {
            return Err("--duration repeating needs --duration-periods N (N at least 1)".into())
        }
        ("once" | "forever", Some(_)) => {
            return Err("--duration-periods goes with --duration repeating".into())
        }
        (other, _) => {
            return Err(format!(
                "--duration must be once, forever or repeating (got {other:?})"
            ))
        }
    }
    if let Some(bad) = input.plan_ids.iter().find(|id| **id <= 0) {
        return Err(format!("--plans must list positive plan ids (got {bad})"));
    }
    let new = NewPromoCode {
        code: input.code.clone(),
        code_normalized: normalized.clone(),
        discount_type: discount_type.to_string(),
        percent_off: input.percent_off,
        amount_off: input.amount_off,
        currency,
        divisor,
        first_time_only: input.first_time_only,
        max_redemptions: input.max_redemptions,
        expires_at: input.expires_at,
        active: true,
        note: input.note.clone(),
        created_at: now,
        updated_at: now,
        duration,
        duration_periods: input.duration_periods,
    };
    let mut plan_ids = input.plan_ids.clone();
    plan_ids.sort_unstable();
    plan_ids.dedup();
    Ok((new, plan_ids))
}

/// A code as the CLI's `--json` and `/v1/promo-codes` show it.
pub fn view(c: &PromoCode, plans: &[i64]) -> serde_json::Value {
    use crate::clock::rfc3339;
    serde_json::json!({
        "code": c.code, "type": c.discount_type, "percentOff": c.percent_off,
        "amountOff": c.amount_off.map(|a| serde_json::json!({"amount": a, "currency": c.currency, "divisor": c.divisor})),
        "eligibleSubscriptionPlanIds": plans, "firstTimeSubscribersOnly": c.first_time_only,
        "maxRedemptions": c.max_redemptions, "timesRedeemed": c.times_redeemed,
        "expiresAt": c.expires_at.map(|t| rfc3339(t.and_utc())), "active": c.active, "note": c.note,
        "createdAt": rfc3339(c.created_at.and_utc()),
        "duration": c.duration, "durationPeriods": c.duration_periods,
    })
}
