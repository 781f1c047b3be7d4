//! Checkout: issuing a checkout URL for Treefort, showing what it sells, and paying. A payment is
//! claimed (one attempt per link at a time), charged through the gateway outside any transaction,
//! then recorded in one transaction with the Treefort update it queues; the shopper is sent to
//! `successUrl` only once Treefort has answered 2xx.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::api::types::CheckoutSessionRequest;
use crate::db::write_transaction;
use crate::domain::billing_period::{period_end, trial_end};
use crate::domain::locale::Lang;
use crate::domain::money::Money;
use crate::domain::session_token::{self, SessionToken};
use crate::error::ApiError;
use crate::gateway::{CardInput, ChargeKind, ChargeOutcome, GatewayError};
use crate::metrics::label;
use crate::models::checkout_sessions::{self, CheckoutSession, NewCheckoutSession};
use crate::models::customers::{self, CustomerValues};
use crate::models::outbox as outbox_rows;
use crate::models::payments::{self, NewPayment};
use crate::models::plans::{self, Plan};
use crate::models::promo_codes::{self, PromoCode};
use crate::models::subscriptions::{self, NewSubscription, Subscription, SubscriptionChanges};
use crate::state::AppState;
use crate::treefort::CreateSubscription;

use super::outbox::{self, Delivery};
use super::{check_locale, check_redirect_url, check_user, naive, run_db, run_db_as, utc};

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
    let token_hash = token.hash;
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| {
            plans::find(conn, plan_id)?.ok_or_else(|| super::plans::plan_not_found(plan_id))?;
            if let Some(live) = subscriptions::find_live_for_user(conn, &request.user.id)? {
                if is_already_on(&live, plan_id) {
                    return Err(already_subscribed());
                }
            }
            let promo_code_id = match request.promo_code.as_deref().filter(|c| !c.is_empty()) {
                None => None,
                Some(code) => {
                    let valid = super::promo::evaluate(
                        conn,
                        code,
                        &[plan_id],
                        Some(&request.user.id),
                        naive(now),
                    )?
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_promo_code",
                            "the promo code is not valid for this plan and user",
                        )
                    })?;
                    Some(valid.promo.id)
                }
            };
            checkout_sessions::insert(
                conn,
                &NewCheckoutSession {
                    token_hash,
                    user_id: request.user.id.clone(),
                    user_email: request.user.email.trim().to_string(),
                    user_full_name: request.user.display_name(),
                    locale: request.locale.clone(),
                    plan_id,
                    promo_code_id,
                    success_url,
                    cancel_url,
                    status: checkout_sessions::OPEN.to_string(),
                    created_at: naive(now),
                    expires_at: naive(expires_at),
                },
            )?;
            Ok(())
        })
    })
    .await?;
    state
        .metrics
        .incr("sessions_created_total", label("kind", "checkout"));
    Ok(format!(
        "{}/checkout/{}",
        state.settings.public_base_url, token.token
    ))
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
    /// Paid, but Treefort has not confirmed yet: show "activating", which moves on by itself.
    Activating(Lang),
}

/// The open session behind a token, with what its page shows.
pub async fn view(state: &AppState, token: &str) -> Result<CheckoutView, CheckoutError> {
    let token_hash = session_token::hash_if_well_formed(token).ok_or(CheckoutError::NotFound)?;
    let now = naive(state.clock.now());
    let found = run_db(&state.pool, move |conn| {
        let Some(session) = checkout_sessions::find_by_token_hash(conn, &token_hash)? else {
            return Ok(None);
        };
        let plan = plans::find(conn, session.plan_id)?;
        let promo = match session.promo_code_id {
            Some(id) => promo_codes::find(conn, id)?,
            None => None,
        };
        let switch = match subscriptions::find_live_for_user(conn, &session.user_id)? {
            Some(live) => {
                let current_plan_name = plans::find(conn, live.plan_id)?
                    .map_or_else(|| format!("#{}", live.plan_id), |p| p.name);
                let starts_at = live.next_action_at.unwrap_or(live.current_period_ends_at);
                Some(SwitchView {
                    subscription: live,
                    current_plan_name,
                    starts_at,
                })
            }
            None => None,
        };
        Ok(Some((session, plan, promo, switch)))
    })
    .await
    .map_err(|e| CheckoutError::Failed(Lang::En, e))?;
    let (session, plan, promo, switch) = found.ok_or(CheckoutError::NotFound)?;
    let lang = Lang::negotiate(&session.locale);
    match session.status.as_str() {
        checkout_sessions::COMPLETED => return Err(CheckoutError::Used(lang)),
        _ if session.expires_at <= now => return Err(CheckoutError::Expired(lang)),
        checkout_sessions::PROCESSING => return Err(CheckoutError::InProgress(lang)),
        _ => {}
    }
    // A plan deleted after the link was issued: nothing can be sold on it.
    let plan = plan.ok_or(CheckoutError::Expired(lang))?;
    let price = plan.price();
    let discounted = promo
        .as_ref()
        .and_then(|p| price.discounted(&p.discount()))
        .map_or_else(|| price.clone(), |(d, _)| d);
    // Trials are for first subscriptions; a switch starts paid at the end of the current period.
    let trial_ends_at =
        (plan.trial_days > 0 && switch.is_none()).then(|| trial_end(utc(now), plan.trial_days));
    Ok(CheckoutView {
        session,
        plan,
        promo,
        lang,
        price,
        discounted,
        trial_ends_at,
        switch,
    })
}

/// Pays a checkout link with `card`.
pub async fn pay(
    state: &AppState,
    token: &str,
    card: CardInput,
) -> Result<PayOutcome, CheckoutError> {
    let view = view(state, token).await?;
    let lang = view.lang;
    let fail = move |e: ApiError| CheckoutError::Failed(lang, e);
    let retry = |view: &CheckoutView, reason| CheckoutError::Retry(Box::new(view.clone()), reason);

    // 1. Claim the link (and the promo redemption) so no second submission can pay it.
    let now = state.clock.now();
    let (session_id, user_id, promo_id) = (
        view.session.id,
        view.session.user_id.clone(),
        view.session.promo_code_id,
    );
    let (plan_id, expects_switch) = (view.plan.id, view.switch.is_some());
    let claim = run_db_as(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<_, RecordError> {
            // Claim first: while another payment of this user is in progress the one-payment-per-
            // user index refuses the claim, and once it completed, the check below sees its
            // subscription (checking first left a window on PostgreSQL's READ COMMITTED).
            if !checkout_sessions::claim_for_payment(conn, session_id, naive(now))? {
                return Ok(Ok(false));
            }
            // A switch only if the page offered one: never switch a plan behind a payment form.
            let live = subscriptions::find_live_for_user(conn, &user_id)?;
            let unchanged = live.as_ref().is_some_and(|l| is_already_on(l, plan_id));
            if unchanged || live.is_some() != expects_switch {
                checkout_sessions::release_claim(conn, session_id)?;
                return Ok(Err(RetryReason::AlreadySubscribed));
            }
            if let Some(promo_id) = promo_id {
                if !promo_codes::take_redemption(conn, promo_id, naive(now))? {
                    checkout_sessions::release_claim(conn, session_id)?;
                    return Ok(Err(RetryReason::PromoExhausted));
                }
            }
            Ok(Ok(true))
        })
    })
    .await;
    match claim {
        Ok(Ok(true)) => {}
        // Another submission of this link, or another link of this user, is being paid.
        Ok(Ok(false)) | Err(RecordError::AlreadySubscribed) => {
            return Err(CheckoutError::InProgress(lang))
        }
        Ok(Err(reason)) => {
            record_attempt(state, &reason);
            return Err(retry(&view, reason));
        }
        Err(RecordError::Other(e)) => return Err(fail(e)),
    }

    if let Some(switch) = &view.switch {
        return switch_plan(state, &view, switch, now)
            .await
            .map_err(|e| match e {
                RecordError::AlreadySubscribed => CheckoutError::InProgress(lang),
                RecordError::Other(e) => fail(e),
            });
    }

    // 2. Take the money (outside any transaction).
    let charged = match take_payment(state, &view, card).await {
        Ok(charged) => charged,
        Err(reason) => {
            release(state, &view).await.map_err(fail)?;
            record_attempt(state, &reason);
            return Err(retry(&view, reason));
        }
    };

    // 3. Record everything, with the Treefort update, in one transaction.
    let entry_id = match record_paid_checkout(state, &view, &charged, now).await {
        Ok(entry_id) => entry_id,
        Err(error) => {
            // The money was taken but cannot be recorded: give it back, then free the link.
            if let Some(reference) = &charged.charge_reference {
                if let Err(e) = state.gateway.refund(reference).await {
                    tracing::error!(checkout_session_id = view.session.id, error = %e, "refund after a failed checkout did not go through; refund by hand");
                }
            }
            release(state, &view).await.map_err(fail)?;
            return match error {
                RecordError::AlreadySubscribed => {
                    record_attempt(state, &RetryReason::AlreadySubscribed);
                    Err(retry(&view, RetryReason::AlreadySubscribed))
                }
                RecordError::Other(e) => Err(fail(e)),
            };
        }
    };
    state
        .metrics
        .incr("checkout_payments_total", label("outcome", "paid"));

    // 4. Tell Treefort now; if it fails, the worker retries and the page waits for it.
    Ok(match outbox::deliver(state, entry_id).await {
        Ok(Delivery::Delivered) => PayOutcome::Redirect(view.session.success_url.clone()),
        Ok(Delivery::NotReady) | Err(_) => PayOutcome::Activating(lang),
    })
}

/// Records a switch: the new plan is pending until the current period ends (nothing is charged
/// now); a canceled subscription is resumed, which Treefort must confirm before the redirect.
async fn switch_plan(
    state: &AppState,
    view: &CheckoutView,
    switch: &SwitchView,
    now: DateTime<Utc>,
) -> Result<PayOutcome, RecordError> {
    let current = switch.subscription.clone();
    let session = view.session.clone();
    let new_plan = view.plan.id;
    let promo = view.promo.clone();
    let resumes = current.canceled_at.is_some();
    let entry = run_db_as(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<Option<i64>, RecordError> {
            let mut changes = SubscriptionChanges {
                pending_plan_id: Some((new_plan != current.plan_id).then_some(new_plan)),
                canceled_at: resumes.then_some(None),
                updated_at: Some(naive(now)),
                ..Default::default()
            };
            if let Some(promo) = &promo {
                // A code given at a switch discounts the new plan's charges, from the first one.
                changes.promo_code_id = Some(Some(promo.id));
                changes.promo_periods_left = Some(promo.discounted_charges());
                promo_codes::record_redemption(
                    conn,
                    promo.id,
                    &session.user_id,
                    current.id,
                    naive(now),
                )?;
            }
            subscriptions::update(conn, current.id, &changes)?;
            checkout_sessions::mark_completed(conn, session.id, current.id, naive(now))?;
            if resumes {
                let body = crate::treefort::UpdateSubscription::resume();
                return Ok(Some(
                    outbox::enqueue(conn, current.id, outbox_rows::UPDATE, &body, naive(now))?.id,
                ));
            }
            Ok(None)
        })
    })
    .await?;
    state
        .metrics
        .incr("checkout_payments_total", label("outcome", "switched"));
    let delivered = match entry {
        None => true,
        Some(id) => matches!(outbox::deliver(state, id).await, Ok(Delivery::Delivered)),
    };
    Ok(if delivered {
        PayOutcome::Redirect(view.session.success_url.clone())
    } else {
        PayOutcome::Activating(view.lang)
    })
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
        return Err(CheckoutError::NotFound);
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

struct Charged {
    card: crate::gateway::SavedCard,
    /// `None` when nothing was charged (a trial, or a 100 % discount).
    charge_reference: Option<String>,
    amount: Money,
    discount_amount: i64,
}

async fn take_payment(
    state: &AppState,
    view: &CheckoutView,
    card: CardInput,
) -> Result<Charged, RetryReason> {
    let saved = state.gateway.save_card(&card).await.map_err(|e| match e {
        GatewayError::InvalidCard(field) => RetryReason::InvalidCard(field),
        GatewayError::Declined(_) => RetryReason::Declined,
        GatewayError::Timeout | GatewayError::Unavailable(_) => {
            tracing::warn!(error = %e, "gateway failed while saving a card");
            RetryReason::GatewayFailed
        }
    })?;
    let amount = view.due_today();
    let discount_amount = if view.trial_ends_at.is_some() {
        0
    } else {
        view.price.amount - view.discounted.amount
    };
    if amount.amount == 0 {
        return Ok(Charged {
            card: saved,
            charge_reference: None,
            amount,
            discount_amount,
        });
    }
    let key = format!("checkout-{}", view.session.id);
    match state
        .gateway
        .charge(&saved.reference, &amount, ChargeKind::Checkout, &key)
        .await
    {
        Ok(ChargeOutcome::Succeeded { reference }) => Ok(Charged {
            card: saved,
            charge_reference: Some(reference),
            amount,
            discount_amount,
        }),
        Ok(ChargeOutcome::Declined { .. }) => Err(RetryReason::Declined),
        Err(e) => {
            tracing::warn!(error = %e, "gateway failed while charging");
            Err(RetryReason::GatewayFailed)
        }
    }
}

enum RecordError {
    AlreadySubscribed,
    Other(ApiError),
}

impl From<DieselError> for RecordError {
    fn from(e: DieselError) -> Self {
        match e {
            // The one-live-subscription-per-user index: another checkout of this user won the race.
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                RecordError::AlreadySubscribed
            }
            other => RecordError::Other(other.into()),
        }
    }
}

impl From<ApiError> for RecordError {
    fn from(e: ApiError) -> Self {
        RecordError::Other(e)
    }
}

/// Customer, subscription, payment, redemption, completed session and queued Treefort POST, all
/// or nothing. Returns the outbox entry to deliver.
async fn record_paid_checkout(
    state: &AppState,
    view: &CheckoutView,
    charged: &Charged,
    now: DateTime<Utc>,
) -> Result<i64, RecordError> {
    let view = view.clone();
    let gateway = state.gateway.name();
    let (card, charge_reference, amount, discount_amount) = (
        charged.card.clone(),
        charged.charge_reference.clone(),
        charged.amount.clone(),
        charged.discount_amount,
    );
    run_db_as(&state.pool, move |conn| {
        write_transaction(conn, |conn| {
            let session = &view.session;
            let customer = customers::upsert(
                conn,
                &session.user_id,
                &CustomerValues {
                    email: session.user_email.clone(),
                    full_name: session.user_full_name.clone(),
                    payment_method_ref: Some(card.reference.clone()),
                    card_brand: Some(card.brand.clone()),
                    card_last4: Some(card.last4.clone()),
                    updated_at: naive(now),
                },
                naive(now),
            )?;
            // Trials: the period ends with the trial, so Treefort's grace rule cannot lapse it early.
            let period_ends_at = view.trial_ends_at.unwrap_or_else(|| {
                period_end(
                    now,
                    &view.plan.billing_interval,
                    view.plan.interval_count,
                    1,
                )
            });
            let subscription = subscriptions::insert(
                conn,
                &NewSubscription {
                    user_id: session.user_id.clone(),
                    customer_id: customer.id,
                    plan_id: view.plan.id,
                    promo_code_id: session.promo_code_id,
                    current_period_started_at: naive(now),
                    current_period_ends_at: naive(period_ends_at),
                    trial_ends_at: view.trial_ends_at.map(naive),
                    created_at: naive(now),
                    updated_at: naive(now),
                    // Paid periods count from the trial's end, or from now.
                    billing_anchor_at: Some(naive(view.trial_ends_at.unwrap_or(now))),
                    periods_paid: if view.trial_ends_at.is_some() { 0 } else { 1 },
                    next_action_at: Some(naive(period_ends_at)),
                    promo_periods_left: view.promo.as_ref().and_then(|p| {
                        let charges = p.discounted_charges()?;
                        // Without a trial, today's charge used one of them.
                        Some(if view.trial_ends_at.is_some() {
                            charges
                        } else {
                            charges - 1
                        })
                    }),
                },
            )?;
            if view.trial_ends_at.is_none() {
                payments::insert(
                    conn,
                    &NewPayment {
                        customer_id: customer.id,
                        subscription_id: Some(subscription.id),
                        checkout_session_id: Some(session.id),
                        kind: "checkout".into(),
                        status: payments::SUCCEEDED.into(),
                        amount: amount.amount,
                        discount_amount,
                        currency: amount.currency.clone(),
                        divisor: amount.divisor,
                        gateway: gateway.into(),
                        gateway_reference: charge_reference.clone(),
                        failure_reason: None,
                        created_at: naive(now),
                    },
                )?;
            }
            if let Some(promo_id) = session.promo_code_id {
                promo_codes::record_redemption(
                    conn,
                    promo_id,
                    &session.user_id,
                    subscription.id,
                    naive(now),
                )?;
            }
            checkout_sessions::mark_completed(conn, session.id, subscription.id, naive(now))?;
            let body = CreateSubscription::new(
                &session.user_id,
                view.plan.id,
                period_ends_at,
                view.trial_ends_at,
            );
            let entry = outbox::enqueue(
                conn,
                subscription.id,
                outbox_rows::CREATE,
                &body,
                naive(now),
            )?;
            Ok(entry.id)
        })
    })
    .await
}

/// Gives back links claimed by a payment attempt whose process died (no attempt takes longer than
/// the gateway and Treefort timeouts). Safe for money: paying the link again uses the same charge
/// key, so a charge taken before the crash is found, not repeated. Returns how many were freed.
pub async fn release_stale_claims(state: &AppState) -> Result<usize, ApiError> {
    let before = naive(state.clock.now() - TimeDelta::minutes(10));
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<usize, ApiError> {
            let stale = checkout_sessions::list_stale_claims(conn, before)?;
            for (session_id, promo_id) in &stale {
                if checkout_sessions::release_claim(conn, *session_id)? == 1 {
                    if let Some(promo_id) = promo_id {
                        promo_codes::release_redemption(conn, *promo_id)?;
                    }
                }
            }
            Ok(stale.len())
        })
    })
    .await
}

/// Frees a claimed link and its promo redemption after an attempt that took no money.
async fn release(state: &AppState, view: &CheckoutView) -> Result<(), ApiError> {
    let (session_id, promo_id) = (view.session.id, view.session.promo_code_id);
    run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<(), ApiError> {
            if checkout_sessions::release_claim(conn, session_id)? == 1 {
                if let Some(promo_id) = promo_id {
                    promo_codes::release_redemption(conn, promo_id)?;
                }
            }
            Ok(())
        })
    })
    .await
}

fn record_attempt(state: &AppState, reason: &RetryReason) {
    let outcome = match reason {
        RetryReason::Declined => "declined",
        RetryReason::InvalidCard(_) => "invalid_card",
        RetryReason::PromoExhausted => "promo_exhausted",
        RetryReason::AlreadySubscribed => "already_subscribed",
        RetryReason::GatewayFailed => "gateway_failed",
    };
    state
        .metrics
        .incr("checkout_payments_total", label("outcome", outcome));
}
