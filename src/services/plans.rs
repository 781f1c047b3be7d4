//! Plans: what Treefort fetches, and what operators upsert from the CLI (validated here once).

use crate::domain::money::{parse_currency, parse_divisor};
use crate::error::ApiError;
use crate::models::plans::{self, Plan, PlanValues};
use crate::state::AppState;

use super::run_db;

pub async fn find_plan(state: &AppState, id: i64) -> Result<Plan, ApiError> {
    run_db(&state.pool, move |conn| {
        plans::find(conn, id)?.ok_or_else(|| plan_not_found(id))
    })
    .await
}

pub fn plan_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        "plan_not_found",
        format!("no subscription plan with id {id}"),
    )
}

/// A plan as the operator describes it on the command line.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub id: i64,
    pub name: String,
    pub interval: String,
    pub interval_count: i32,
    pub trial_days: i32,
    pub grace_days: i32,
    pub currency: String,
    pub amount: i64,
    pub divisor: i64,
}

impl PlanInput {
    /// Checks every field; the message names the field at fault.
    pub fn validate(&self, now: chrono::NaiveDateTime) -> Result<PlanValues, String> {
        if self.id <= 0 {
            return Err("--id must be Treefort's plan id, a positive number".into());
        }
        let name = self.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err("--name must be 1 to 200 characters".into());
        }
        if !matches!(self.interval.as_str(), "month" | "year") {
            return Err(format!(
                "--interval must be month or year (got {:?})",
                self.interval
            ));
        }
        if !(1..=120).contains(&self.interval_count) {
            return Err("--interval-count must be from 1 to 120".into());
        }
        if !(0..=730).contains(&self.trial_days) {
            return Err("--trial-days must be from 0 to 730".into());
        }
        if !(0..=365).contains(&self.grace_days) {
            return Err("--grace-days must be from 0 to 365".into());
        }
        if self.amount < 0 {
            return Err("--amount must not be negative".into());
        }
        Ok(PlanValues {
            name: name.to_string(),
            billing_interval: self.interval.clone(),
            interval_count: self.interval_count,
            trial_days: self.trial_days,
            grace_days: self.grace_days,
            currency: parse_currency(&self.currency)?,
            amount: self.amount,
            divisor: parse_divisor(self.divisor)?,
            updated_at: now,
        })
    }
}
