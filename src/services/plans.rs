//! Plans: what Treefort fetches, and what operators upsert from the CLI (validated here once).

use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::db::AnyConnection;
use crate::domain::features::Features;
use crate::domain::money::{parse_currency, parse_divisor};
use crate::error::ApiError;
use crate::models::plans::{self, Plan, PlanValues};
use crate::models::subscriptions;
use crate::services::events;
use crate::state::AppState;

use crate::db::run_db;

pub async fn find_plan(state: &AppState, id: i64) -> Result<Plan, ApiError> {
    run_db(&state.pool, move |conn| {
        plans::find(conn, id)?.ok_or_else(|| plan_not_found(id))
    })
    .await
}

/// A plan as Treefort fetches it: from the in-memory catalog, no database round trip.
pub async fn published_plan(state: &AppState, id: i64) -> Result<Plan, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    catalog
        .plans
        .get(&id)
        .cloned()
        .ok_or_else(|| plan_not_found(id))
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
    /// Checked already (`Features` only holds valid ones).
    pub features: Features,
}

impl PlanInput {
    /// Checks every field; the message names the field at fault.
    pub fn validate(&self, now: chrono::NaiveDateTime) -> Result<PlanValues, String> {
        if self.id <= 0 {
            return Err("--id must be Treefort's plan id, a positive number".into());
        }
        let name = self.name.trim();
        if name.is_empty() || name.len() > 200 || crate::domain::text::has_control(name) {
            return Err("--name must be 1 to 200 characters, without control characters".into());
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
            features: self.features.to_stored(),
        })
    }
}

/// A plan as the CLI's `--json` and `/v1` show it.
pub fn view(p: &Plan) -> serde_json::Value {
    serde_json::json!({
        "id": p.id, "name": p.name, "interval": p.billing_interval, "intervalCount": p.interval_count,
        "trialDays": p.trial_days, "graceDays": p.grace_days,
        "price": {"currency": p.currency, "amount": p.amount, "divisor": p.divisor},
        "features": p.features,
    })
}

/// A plan's fields as `/v1` takes them (all of them to create; any of them to change).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanFields {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub interval: Option<String>,
    pub interval_count: Option<i32>,
    pub trial_days: Option<i32>,
    pub grace_days: Option<i32>,
    pub price: Option<PriceFields>,
    /// The whole set of features (replaces the plan's); checked by `Features::from_json`.
    pub features: Option<serde_json::Value>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceFields {
    pub currency: String,
    pub amount: i64,
    pub divisor: Option<i64>,
}

/// `features` as `/v1` sent it, checked (400 `invalid_feature` naming the key at fault).
fn features_of(features: Option<serde_json::Value>) -> Result<Option<Features>, ApiError> {
    features
        .map(Features::from_json)
        .transpose()
        .map_err(|message| ApiError::bad_request("invalid_feature", message))
}

/// What saving a plan did.
#[derive(Debug)]
pub struct Saved {
    pub plan: Plan,
    /// Current subscribers who keep the price and interval they signed up for.
    pub keeping_other_terms: i64,
    /// Current subscribers told of new features (`subscription.updated`).
    pub told_of_features: usize,
}

/// Creates plan `id` or replaces its values, in one transaction. Features take effect for
/// current subscribers at once, so when they change each current subscriber gets
/// `subscription.updated` (with the new features), queued in that subscription's line of webhook
/// deliveries like its other events. Prices stay versioned: current subscribers keep theirs.
/// The one way the CLI and `/v1` save a plan.
pub fn save(
    conn: &mut AnyConnection,
    id: i64,
    values: &PlanValues,
    now: NaiveDateTime,
) -> QueryResult<Saved> {
    crate::db::write_transaction(conn, |conn| {
        let before = plans::find(conn, id)?;
        let plan = plans::upsert(conn, id, values, now)?;
        let features_changed = before.is_some_and(|b| b.features != plan.features);
        let told_of_features = if features_changed {
            tell_subscribers(conn, &plan, now)?
        } else {
            0
        };
        let keeping_other_terms = subscriptions::count_on_other_terms(conn, &plan)?;
        Ok(Saved {
            plan,
            keeping_other_terms,
            told_of_features,
        })
    })
}

/// `subscription.updated` for each current subscriber of `plan`, a few hundred at a time. The
/// rows are read again once locked: one that a renewal moved to another plan, or ended, between
/// the listing and the lock is not on this plan any more and is not told.
fn tell_subscribers(
    conn: &mut AnyConnection,
    plan: &Plan,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let ids = plans::live_subscription_ids(conn, plan.id)?;
    let mut told = 0;
    for chunk in ids.chunks(500) {
        crate::db::lock_subscriptions(conn, chunk)?;
        let subs = subscriptions::find_many(conn, chunk)?;
        let news = chunk
            .iter()
            .filter_map(|id| subs.get(id))
            .filter(|sub| sub.plan_id == plan.id && sub.deactivated_at.is_none())
            .map(|sub| {
                events::of_subscription(events::SUBSCRIPTION_UPDATED, sub, Some(plan), now, None)
            })
            .collect::<QueryResult<Vec<_>>>()?;
        told += news.len();
        events::record_all(conn, news, now)?;
    }
    Ok(told)
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_plan", message.trim_start_matches("--").to_string())
}

/// Creates a plan (409 if Treefort's id is taken), through the same checks as the CLI.
pub async fn create(state: &AppState, fields: PlanFields) -> Result<Plan, ApiError> {
    let (Some(id), Some(name), Some(interval), Some(price)) =
        (fields.id, fields.name, fields.interval, fields.price)
    else {
        return Err(ApiError::bad_request(
            "invalid_plan",
            "id, name, interval and price are required",
        ));
    };
    let input = PlanInput {
        id,
        name,
        interval,
        interval_count: fields.interval_count.unwrap_or(1),
        trial_days: fields.trial_days.unwrap_or(0),
        grace_days: fields.grace_days.unwrap_or(0),
        currency: price.currency,
        amount: price.amount,
        divisor: price.divisor.unwrap_or(100),
        features: features_of(fields.features)?.unwrap_or_default(),
    };
    let now = crate::clock::naive(state.clock.now());
    let values = input.validate(now).map_err(invalid)?;
    run_db(&state.pool, move |conn| {
        if plans::find(conn, id)?.is_some() {
            return Err(ApiError::conflict(
                "plan_exists",
                format!("plan {id} exists; change it with PATCH /v1/plans/{id}"),
            ));
        }
        Ok(save(conn, id, &values, now)?.plan)
    })
    .await
}

/// Changes the fields given; new checkouts get them, current subscribers keep their terms.
/// Returns the plan and how many current subscribers keep other terms.
pub async fn update(
    state: &AppState,
    id: i64,
    fields: PlanFields,
) -> Result<(Plan, i64), ApiError> {
    if fields.id.is_some_and(|new| new != id) {
        return Err(ApiError::bad_request(
            "invalid_plan",
            "a plan's id is Treefort's and cannot change",
        ));
    }
    let current = find_plan(state, id).await?;
    let price = fields.price;
    let input = PlanInput {
        id,
        name: fields.name.unwrap_or(current.name),
        interval: fields.interval.unwrap_or(current.billing_interval),
        interval_count: fields.interval_count.unwrap_or(current.interval_count),
        trial_days: fields.trial_days.unwrap_or(current.trial_days),
        grace_days: fields.grace_days.unwrap_or(current.grace_days),
        currency: price
            .as_ref()
            .map_or(current.currency, |p| p.currency.clone()),
        amount: price.as_ref().map_or(current.amount, |p| p.amount),
        divisor: price
            .as_ref()
            .map_or(current.divisor, |p| p.divisor.unwrap_or(100)),
        features: features_of(fields.features)?.unwrap_or(current.features),
    };
    let now = crate::clock::naive(state.clock.now());
    let values = input.validate(now).map_err(invalid)?;
    run_db(&state.pool, move |conn| {
        let saved = save(conn, id, &values, now)?;
        Ok((saved.plan, saved.keeping_other_terms))
    })
    .await
}

pub async fn list(state: &AppState) -> Result<Vec<Plan>, ApiError> {
    run_db(&state.pool, |conn| Ok(plans::list(conn)?)).await
}
