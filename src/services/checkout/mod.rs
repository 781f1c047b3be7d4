//! Checkout: issuing a checkout URL for Treefort, showing what it sells, and paying. A payment is
//! claimed (one numbered attempt per link at a time), the card saved and charged through the
//! gateway outside any transaction, then recorded in one transaction with the Treefort update it
//! queues; the shopper is sent to `successUrl` only once Treefort has answered 2xx.
//!
//! `pay` is the shopper's path; `settle` completes an attempt from what the gateway reports (a
//! webhook, or reconciliation of an attempt nobody came back for), by the same recording code.

mod attempt;
mod pay;
mod reconcile;
mod record;

pub use attempt::{abandon, release_link, settle};
pub use pay::{confirm, pay, pending_authentication, settle_setup, setup_card};
pub use reconcile::{reconcile_stale_claims, Reconciled};
pub(crate) use record::refund_unrecorded;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::billing_period::trial_end;
use crate::domain::locale::Lang;
use crate::domain::money::Money;
use crate::domain::session_token::{self, SessionToken};
use crate::error::ApiError;
use crate::gateway::SavedCard;
use crate::models::checkout_sessions::{self, CheckoutSession, NewCheckoutSession};
use crate::models::plans::{self, Plan};
use crate::models::promo_codes::{self, PromoCode};
use crate::models::subscriptions::{self, Subscription};
use crate::state::AppState;

/// One numbered payment attempt on a link, and the charge key that follows from it.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub session_id: i64,
    pub number: i32,
    pub promo_code_id: Option<i64>,
    pub key: String,
    pub customer_ref: String,
}

impl Attempt {
    /// The attempt in progress on `session`.
    pub fn of(session: &CheckoutSession, customer_ref: Option<String>) -> Self {
        Self {
            session_id: session.id,
            number: session.payment_attempts,
            promo_code_id: session.promo_code_id,
            key: session.charge_key(),
            customer_ref: customer_ref.unwrap_or_default(),
        }
    }
}

pub(crate) struct Charged {
    pub card: SavedCard,
    /// `None` when nothing was charged (a trial, or a 100 % discount).
    pub charge_reference: Option<String>,
    pub amount: Money,
    pub discount_amount: i64,
}

/// Counts an attempt's outcome (`checkout_payments_total`).
fn count_attempt(state: &AppState, reason: &RetryReason) {
    let outcome = match reason {
        RetryReason::Declined => "declined",
        RetryReason::InvalidCard(_) => "invalid_card",
        RetryReason::PromoExhausted => "promo_exhausted",
        RetryReason::AlreadySubscribed => "already_subscribed",
        RetryReason::GatewayFailed => "gateway_failed",
    };
    state.metrics.counters.checkout_payments.inc([outcome]);
}

use crate::treefort::provider::CheckoutSessionRequest;

use super::outbox;
use crate::clock::{naive, utc};
use crate::db::run_db;
use crate::services::{check_locale, check_redirect_url, check_user};

/// Validates the request and issues `{PUBLIC_BASE_URL}/checkout/{token}`.
pub async fn create_session(
    state: &AppState,
    request: CheckoutSessionRequest,
) -> Result<String, ApiError> {
    check_user(&request.user)?;
    check_locale(&request.locale)?;
    let success_url = check_redirect_url("successUrl", &request.success_url)?;
    let cancel_url = check_redirect_url("cancelUrl", &request.cancel_url)?;
    // A checkout that can never be reported to Treefort must not take money.
    state.treefort()?;
    let now = state.clock.now();
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let expires_at = now + TimeDelta::seconds(state.settings.checkout_session_ttl_secs);
    let plan_id = request.subscription_plan_id;
    let promo = request.promo_code.clone().filter(|c| !c.is_empty());
    let mut new = NewCheckoutSession {
        token_hash: token.hash,
        user_id: request.user.id.clone(),
        user_email: request.user.email.trim().to_string(),
        user_full_name: request.user.display_name(),
        locale: request.locale.clone(),
        plan_id,
        promo_code_id: None,
        success_url,
        cancel_url,
        status: checkout_sessions::OPEN.to_string(),
        created_at: naive(now),
        expires_at: naive(expires_at),
    };
    // One statement, with or without a promo code: the plan and the code are judged from the
    // catalog in memory, and the insert itself refuses a user who renews on that plan already
    // or, for a first-time-only code, has ever subscribed (shared with the sessions that arrived
    // at the same time, see `models::checkout_session_writer`). Prices and codes are decided
    // again when the shopper pays, in that transaction.
    let catalog = catalog_knowing(state, plan_id, promo.as_deref()).await?;
    if !catalog.plans.contains_key(&plan_id) {
        return Err(super::plans::plan_not_found(plan_id));
    }
    let user_id = request.user.id;
    let first_time_only = match promo.as_deref() {
        None => false,
        Some(code) => {
            match super::promo::judge_in_catalog(&catalog, code, &[plan_id], naive(now)) {
                Some(valid) => {
                    new.promo_code_id = Some(valid.promo.id);
                    valid.promo.first_time_only
                }
                None => return Err(refusal(state, user_id, plan_id, true).await),
            }
        }
    };
    if !state.checkout_writer.insert(new, first_time_only).await? {
        return Err(refusal(state, user_id, plan_id, first_time_only).await);
    }
    state.metrics.counters.sessions_created.inc(["checkout"]);
    Ok(format!(
        "{}/checkout/{}",
        state.settings.public_base_url, token.token
    ))
}

/// The catalog, read again first when it does not know the plan or the code: another instance
/// or the command line may have made it within the last `CATALOG_CHECK_MS`.
async fn catalog_knowing(
    state: &AppState,
    plan_id: i64,
    code: Option<&str>,
) -> Result<std::sync::Arc<crate::cache::catalog::Snapshot>, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let knows_code = code
        .and_then(crate::domain::promo_code::normalize)
        .is_none_or(|code| catalog.promos.contains_key(&code));
    if catalog.plans.contains_key(&plan_id) && knows_code {
        return Ok(catalog);
    }
    state.catalog.refresh_if_stale(&state.pool).await?;
    Ok(state.catalog.snapshot())
}

/// Why a session was refused: 409 when the user renews on the plan already (whatever the code),
/// else, when the code may be the reason (`code_may_refuse`), 400 for the code. Costs one read,
/// only when refused.
async fn refusal(
    state: &AppState,
    user_id: String,
    plan_id: i64,
    code_may_refuse: bool,
) -> ApiError {
    if !code_may_refuse {
        return already_subscribed();
    }
    let live = run_db(&state.pool, move |conn| {
        Ok(subscriptions::find_live_for_user(conn, &user_id)?)
    })
    .await;
    match live {
        Err(e) => e,
        Ok(Some(live)) if is_already_on(&live, plan_id) => already_subscribed(),
        Ok(_) => ApiError::bad_request(
            "invalid_promo_code",
            "the promo code is not valid for this plan and user",
        ),
    }
}

fn already_subscribed() -> ApiError {
    ApiError::conflict(
        "subscription_exists",
        "this user already subscribes to this plan",
    )
}

/// Whether a checkout for `plan_id` would change nothing: the user renews on that plan already.
/// Any other checkout by a subscriber is a switch (or takes a cancellation back).
fn is_already_on(live: &Subscription, plan_id: i64) -> bool {
    live.plan_id == plan_id && live.canceled_at.is_none() && live.pending_plan_id.is_none()
}

/// A checkout by a user who already subscribes: the new plan starts when the paid period ends.
#[derive(Debug, Clone)]
pub struct SwitchView {
    pub subscription: Subscription,
    pub current_plan_name: String,
    /// When the new plan starts (and is first charged).
    pub starts_at: chrono::NaiveDateTime,
}

/// Everything the checkout page shows.
#[derive(Debug, Clone)]
pub struct CheckoutView {
    pub session: CheckoutSession,
    pub plan: Plan,
    pub promo: Option<PromoCode>,
    pub lang: Lang,
    /// The plan's price.
    pub price: Money,
    /// The price after the promo code (equal to `price` without one).
    pub discounted: Money,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Set when the user already subscribes: this checkout switches plans.
    pub switch: Option<SwitchView>,
}

impl CheckoutView {
    /// What is charged today: nothing during a trial or for a switch.
    pub fn due_today(&self) -> Money {
        if self.trial_ends_at.is_some() || self.switch.is_some() {
            Money {
                amount: 0,
                ..self.price.clone()
            }
        } else {
            self.discounted.clone()
        }
    }
}

/// Why a checkout link cannot be shown or paid. Each is a page of its own.
#[derive(Debug)]
pub enum CheckoutError {
    NotFound,
    Expired(Lang),
    Used(Lang),
    InProgress(Lang),
    /// Too many failed payment attempts: the link is spent.
    Spent(Lang),
    /// The shopper may try again on the same link.
    Retry(Box<CheckoutView>, RetryReason),
    Failed(Lang, ApiError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    Declined,
    InvalidCard(&'static str),
    PromoExhausted,
    AlreadySubscribed,
    GatewayFailed,
}

/// Where a finished payment sends the shopper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// Treefort has the subscription: go to `successUrl`.
    Redirect(String),
    /// Paid (or being settled with the gateway), but Treefort has not confirmed yet: show
    /// "activating", which moves on by itself.
    Activating(Lang),
    /// The bank asks the shopper to authenticate the payment in the browser first.
    Authenticate(Lang, crate::gateway::BrowserAuthentication),
    /// The attempt ended without a payment: back to the checkout page.
    BackToCheckout,
}

/// The open session behind a token, with what its page shows.
pub async fn view(state: &AppState, token: &str) -> Result<CheckoutView, CheckoutError> {
    let token_hash = session_token::hash_if_well_formed(token).ok_or(CheckoutError::NotFound)?;
    let now = naive(state.clock.now());
    let view = run_db(
        &state.pool,
        move |conn| match checkout_sessions::find_by_token_hash(conn, &token_hash)? {
            Some(session) => load_view(conn, session, now),
            None => Ok(None),
        },
    )
    .await
    .map_err(|e| CheckoutError::Failed(Lang::En, e))?
    .ok_or(CheckoutError::NotFound)?;
    let lang = view.lang;
    match view.session.status.as_str() {
        checkout_sessions::COMPLETED => Err(CheckoutError::Used(lang)),
        _ if view.session.expires_at <= now => Err(CheckoutError::Expired(lang)),
        checkout_sessions::PROCESSING => Err(CheckoutError::InProgress(lang)),
        _ if view.session.payment_attempts >= state.settings.checkout_max_failed_attempts => {
            Err(CheckoutError::Spent(lang))
        }
        _ => Ok(view),
    }
}

/// What a session sells, whatever its status. `Ok(None)` when its plan was deleted after the link
/// was issued (nothing can be sold on it).
pub(crate) fn load_view(
    conn: &mut crate::db::AnyConnection,
    session: CheckoutSession,
    now: chrono::NaiveDateTime,
) -> Result<Option<CheckoutView>, ApiError> {
    let Some(plan) = plans::find(conn, session.plan_id)? else {
        return Ok(None);
    };
    let promo = match session.promo_code_id {
        Some(id) => promo_codes::find(conn, id)?,
        None => None,
    };
    // A switch is offered only to a subscriber who is not this session's own new subscription.
    let switch = match subscriptions::find_live_for_user(conn, &session.user_id)? {
        Some(live) if Some(live.id) != session.subscription_id => {
            let current_plan_name = plans::find(conn, live.plan_id)?
                .map_or_else(|| format!("#{}", live.plan_id), |p| p.name);
            let starts_at = live.next_action_at.unwrap_or(live.current_period_ends_at);
            Some(SwitchView {
                subscription: live,
                current_plan_name,
                starts_at,
            })
        }
        _ => None,
    };
    let lang = Lang::negotiate(&session.locale);
    let price = plan.price();
    let discounted = promo
        .as_ref()
        .and_then(|p| price.discounted(&p.discount()))
        .map_or_else(|| price.clone(), |(d, _)| d);
    // Trials are for first subscriptions; a switch starts paid at the end of the current period.
    // A trial counts from the moment the link was claimed, so a late settlement ends it no later.
    let trial_from = session
        .claimed_at
        .filter(|_| session.status != checkout_sessions::OPEN);
    let trial_ends_at = (plan.trial_days > 0 && switch.is_none())
        .then(|| trial_end(utc(trial_from.unwrap_or(now).min(now)), plan.trial_days));
    Ok(Some(CheckoutView {
        session,
        plan,
        promo,
        lang,
        price,
        discounted,
        trial_ends_at,
        switch,
    }))
}

/// For the "activating" page: where the shopper stands after paying.
pub async fn activation(state: &AppState, token: &str) -> Result<PayOutcome, CheckoutError> {
    let token_hash = session_token::hash_if_well_formed(token).ok_or(CheckoutError::NotFound)?;
    let session = run_db(&state.pool, move |conn| {
        Ok(checkout_sessions::find_by_token_hash(conn, &token_hash)?)
    })
    .await
    .map_err(|e| CheckoutError::Failed(Lang::En, e))?
    .ok_or(CheckoutError::NotFound)?;
    let lang = Lang::negotiate(&session.locale);
    let Some(subscription_id) = session
        .subscription_id
        .filter(|_| session.status == checkout_sessions::COMPLETED)
    else {
        // Still being settled with the gateway: wait; given back without a payment: pay again.
        return match session.status.as_str() {
            checkout_sessions::PROCESSING => Ok(PayOutcome::Activating(lang)),
            _ => Ok(PayOutcome::BackToCheckout),
        };
    };
    let created = outbox::is_in_step_with_treefort(state, subscription_id)
        .await
        .map_err(|e| CheckoutError::Failed(lang, e))?;
    Ok(if created {
        PayOutcome::Redirect(session.success_url)
    } else {
        PayOutcome::Activating(lang)
    })
}
