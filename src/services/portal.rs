//! The billing portal: issuing its URL for Treefort, and what the portal shows and does for the
//! user behind it (their subscriptions, payments, card, and cancel).

use chrono::{NaiveDateTime, TimeDelta};

use crate::domain::locale::Lang;
use crate::domain::money::Money;
use crate::domain::session_token::{self, SessionToken};
use crate::error::ApiError;
use crate::gateway::{BrowserAuthentication, CardEntry, CardSubmission, PaymentStatus, Purpose};
use crate::models::customers::{self, Customer};
use crate::models::payments::{self, Payment};
use crate::models::plans::{self, Plan};
use crate::models::portal_sessions::{self, NewPortalSession, PortalSession};
use crate::models::promo_codes;
use crate::models::subscriptions::{self, Subscription};
use crate::state::AppState;
use crate::treefort::provider::BillingPortalSessionRequest;

use super::renewal::renewal_price;
use crate::clock::naive;
use crate::db::run_db;
use crate::services::{check_locale, check_redirect_url, check_user};

pub async fn create_session(
    state: &AppState,
    request: BillingPortalSessionRequest,
) -> Result<String, ApiError> {
    check_user(&request.user)?;
    check_locale(&request.locale)?;
    let back_url = check_redirect_url("backUrl", &request.back_url)?;
    let holder = SessionHolder {
        user_id: request.user.id,
        user_email: request.user.email.trim().to_string(),
        locale: request.locale,
        back_url,
    };
    open_session(state, holder, "billing_portal").await
}

/// Whose a billing-portal session is, and where its back link goes.
pub struct SessionHolder {
    pub user_id: String,
    pub user_email: String,
    pub locale: String,
    pub back_url: String,
}

/// Mints a billing-portal session for `holder`, valid `PORTAL_SESSION_TTL_SECS`, and returns its
/// URL; `kind` labels it in `sessions_created_total` (Treefort's request, or an email's link).
pub async fn open_session(
    state: &AppState,
    holder: SessionHolder,
    kind: &'static str,
) -> Result<String, ApiError> {
    let now = state.clock.now();
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let new = NewPortalSession {
        token_hash: token.hash,
        user_id: holder.user_id,
        user_email: holder.user_email,
        locale: holder.locale,
        back_url: holder.back_url,
        created_at: naive(now),
        expires_at: naive(now + TimeDelta::seconds(state.settings.portal_session_ttl_secs)),
    };
    run_db(&state.pool, move |conn| {
        portal_sessions::insert(conn, &new)?;
        Ok(())
    })
    .await?;
    state.metrics.counters.sessions_created.inc([kind]);
    Ok(format!(
        "{}/billing/{}",
        state.settings.public_base_url, token.token
    ))
}

/// Everything the portal page shows.
#[derive(Debug)]
pub struct PortalView {
    pub session: PortalSession,
    pub lang: Lang,
    pub customer: Option<Customer>,
    pub subscriptions: Vec<PortalSubscription>,
    pub payments: Vec<Payment>,
}

#[derive(Debug, Clone)]
pub struct PortalSubscription {
    pub subscription: Subscription,
    pub plan: Option<Plan>,
    /// What the next renewal charges, when, and on which plan (a pending switch shows here).
    pub next_charge: Option<(Money, NaiveDateTime, Plan)>,
}

#[derive(Debug)]
pub enum PortalError {
    NotFound,
    Expired(Lang),
    Failed(Lang, ApiError),
}

pub async fn view(state: &AppState, token: &str) -> Result<PortalView, PortalError> {
    let token_hash = session_token::hash_if_well_formed(token).ok_or(PortalError::NotFound)?;
    let now = naive(state.clock.now());
    run_db(&state.pool, move |conn| {
        let Some(session) = portal_sessions::find_by_token_hash(conn, &token_hash)? else {
            return Ok(Err(PortalError::NotFound));
        };
        let lang = Lang::negotiate(&session.locale);
        if session.expires_at <= now {
            return Ok(Err(PortalError::Expired(lang)));
        }
        let customer = customers::find_by_user_id(conn, &session.user_id)?;
        let subs = subscriptions::list_for_user(conn, &session.user_id)?;
        let plan_ids: Vec<i64> = subs
            .iter()
            .flat_map(|s| [Some(s.plan_id), s.pending_plan_id])
            .flatten()
            .collect();
        let known = plans::find_many(conn, &plan_ids)?;
        let find_plan = |id: i64| known.iter().find(|p| p.id == id).cloned();
        let mut subscriptions = Vec::new();
        for s in subs {
            let plan = find_plan(s.plan_id);
            let renews = s.deactivated_at.is_none() && s.canceled_at.is_none();
            let next_plan = s
                .pending_plan_id
                .and_then(find_plan)
                .or_else(|| plan.clone())
                .filter(|_| renews);
            let next_charge = match next_plan {
                Some(next_plan) => {
                    let promo = match s.promo_code_id {
                        Some(id) => promo_codes::find(conn, id)?,
                        None => None,
                    };
                    let terms = match &plan {
                        Some(current) => s.next_terms(current, &next_plan),
                        None => next_plan.terms(),
                    };
                    let (amount, _) =
                        renewal_price(terms.price, promo.as_ref(), s.promo_periods_left);
                    Some((
                        amount,
                        s.next_action_at.unwrap_or(s.current_period_ends_at),
                        next_plan,
                    ))
                }
                None => None,
            };
            subscriptions.push(PortalSubscription {
                subscription: s,
                plan,
                next_charge,
            });
        }
        let payments = match &customer {
            Some(c) => payments::list_for_customer(conn, c.id)?,
            None => Vec::new(),
        };
        Ok(Ok(PortalView {
            session,
            lang,
            customer,
            subscriptions,
            payments,
        }))
    })
    .await
    .map_err(|e| PortalError::Failed(Lang::En, e))?
}

/// What the portal page needs from the gateway: how to enter a new card, and a payment the
/// card holder must authenticate (3-D Secure) if a renewal is waiting for that.
#[derive(Debug, Default)]
pub struct PortalBrowser {
    pub card_entry: Option<CardEntry>,
    /// (our payment id, what Stripe.js needs to authenticate it)
    pub confirm_payment: Option<(i64, BrowserAuthentication)>,
}

pub async fn browser_steps(state: &AppState, view: &PortalView) -> PortalBrowser {
    let mut steps = PortalBrowser::default();
    if view.customer.is_none() {
        return steps;
    }
    // Showing the card field costs nothing at the gateway: the setup is made on the press.
    steps.card_entry = Some(state.gateway.card_entry());
    if let Some(payment) = awaiting_authentication(view) {
        if let Some(reference) = &payment.gateway_reference {
            if let Ok(Some(step)) = state.gateway.authentication(reference).await {
                steps.confirm_payment = Some((payment.id, step));
            }
        }
    }
    steps
}

/// A card setup for the card holder who pressed "replace card" (Stripe): the client secret the
/// browser confirms. Made on that press, never on a page view; one per press.
pub async fn setup_card(state: &AppState, token: &str) -> Result<String, PortalError> {
    let view = view(state, token).await?;
    let lang = view.lang;
    let Some(customer) = &view.customer else {
        return Err(PortalError::Failed(
            lang,
            ApiError::conflict("no_card_on_file", "there is no card on file to replace"),
        ));
    };
    let purpose = Purpose::Portal {
        user_id: customer.user_id.clone(),
    };
    let nonce = crate::domain::session_token::nonce()
        .map_err(|e| PortalError::Failed(lang, ApiError::internal(e)))?;
    let key = format!("portal-{}-{nonce}", customer.id);
    let customer_ref = super::customers::gateway_customer(state, customer)
        .await
        .map_err(|e| PortalError::Failed(lang, e))?;
    state
        .gateway
        .setup_card(&customer_ref, &purpose, &key)
        .await
        .map_err(|e| PortalError::Failed(lang, ApiError::from(e)))
}

/// The newest renewal of a past-due subscription that waits for the card holder's authentication.
fn awaiting_authentication(view: &PortalView) -> Option<&Payment> {
    let past_due: Vec<i64> = view
        .subscriptions
        .iter()
        .map(|p| &p.subscription)
        .filter(|s| s.past_due_since.is_some() && s.deactivated_at.is_none())
        .map(|s| s.id)
        .collect();
    view.payments.iter().find(|p| {
        p.failure_reason.as_deref() == Some(payments::AUTHENTICATION_REQUIRED)
            && p.subscription_id.is_some_and(|id| past_due.contains(&id))
    })
}

/// What a portal form did.
pub enum PortalAction {
    Cancel(i64),
    Resume(i64),
    ReplaceCard(CardSubmission),
    /// The card holder authenticated the payment (our id) in the browser.
    ConfirmPayment(i64),
}

/// Runs a portal form for the user behind `token`; returns the page to show and the result.
pub async fn act(
    state: &AppState,
    token: &str,
    action: PortalAction,
) -> Result<(PortalView, Result<(), ApiError>), PortalError> {
    let before = view(state, token).await?;
    let owned = |id: i64| {
        before
            .subscriptions
            .iter()
            .map(|p| &p.subscription)
            .find(|s| s.id == id && s.deactivated_at.is_none())
            .cloned()
    };
    let not_found = || ApiError::not_found("subscription_not_found", "no such subscription");
    let result = match action {
        PortalAction::Cancel(id) => match owned(id) {
            Some(s) => super::cancel::cancel(state, s.user_id, s.plan_id)
                .await
                .map(|_| ()),
            None => Err(not_found()),
        },
        PortalAction::Resume(id) => match owned(id) {
            Some(s) => super::cancel::resume(state, s.id).await.map(|_| ()),
            None => Err(not_found()),
        },
        PortalAction::ReplaceCard(card) => replace_card(state, &before, card).await,
        PortalAction::ConfirmPayment(payment_id) => {
            confirm_payment(state, &before, payment_id).await
        }
    };
    let after = view(state, token).await?;
    Ok((after, result))
}

/// After the browser's authentication of a renewal: reads the payment back and, once taken, lets
/// the worker record the renewal at once.
async fn confirm_payment(
    state: &AppState,
    view: &PortalView,
    payment_id: i64,
) -> Result<(), ApiError> {
    let payment = view
        .payments
        .iter()
        .find(|p| p.id == payment_id)
        .filter(|p| p.failure_reason.as_deref() == Some(payments::AUTHENTICATION_REQUIRED))
        .ok_or_else(|| ApiError::not_found("payment_not_found", "no such payment to confirm"))?;
    let (Some(reference), Some(subscription_id)) =
        (&payment.gateway_reference, payment.subscription_id)
    else {
        return Err(ApiError::not_found(
            "payment_not_found",
            "no such payment to confirm",
        ));
    };
    let state_now = state
        .gateway
        .payment(reference)
        .await
        .map_err(ApiError::from)?;
    match state_now.status {
        PaymentStatus::Succeeded | PaymentStatus::Processing => {
            super::renewal::retry_now(state, subscription_id).await
        }
        _ => Err(ApiError::new_payment_required()),
    }
}

/// A card the card holder confirmed in the portal whose page never came back (the webhook).
pub async fn save_confirmed_card(
    state: &AppState,
    user_id: &str,
    setup_reference: &str,
    confirmed_at: NaiveDateTime,
) -> Result<(), ApiError> {
    let user = user_id.to_string();
    let customer = run_db(&state.pool, move |conn| {
        Ok(customers::find_by_user_id(conn, &user)?)
    })
    .await?;
    let Some(customer) = customer else {
        return Ok(());
    };
    // A card changed since (by the page itself, say) is newer than this one.
    if customer.updated_at >= confirmed_at {
        return Ok(());
    }
    let subs = {
        let user = user_id.to_string();
        run_db(&state.pool, move |conn| {
            Ok(subscriptions::list_for_user(conn, &user)?)
        })
        .await?
    };
    store_card(
        state,
        &customer,
        &subs,
        CardSubmission::Setup(setup_reference.to_string()),
    )
    .await
}

/// Saves a new card; a subscription waiting for a retry is retried in the next worker round.
async fn replace_card(
    state: &AppState,
    view: &PortalView,
    card: CardSubmission,
) -> Result<(), ApiError> {
    let customer = view.customer.clone().ok_or_else(|| {
        ApiError::not_found("customer_not_found", "there is no card to replace yet")
    })?;
    let subs: Vec<Subscription> = view
        .subscriptions
        .iter()
        .map(|p| p.subscription.clone())
        .collect();
    store_card(state, &customer, &subs, card).await
}

async fn store_card(
    state: &AppState,
    customer: &Customer,
    subscriptions_of_user: &[Subscription],
    card: CardSubmission,
) -> Result<(), ApiError> {
    let customer_ref = super::customers::gateway_customer(state, customer).await?;
    let purpose = Purpose::Portal {
        user_id: customer.user_id.clone(),
    };
    let saved = state
        .gateway
        .save_card(&customer_ref, &purpose, card)
        .await
        .map_err(ApiError::from)?;
    let customer = customer.clone();
    let now = naive(state.clock.now());
    let past_due: Vec<i64> = subscriptions_of_user
        .iter()
        .filter(|s| {
            s.deactivated_at.is_none() && s.past_due_since.is_some() && s.canceled_at.is_none()
        })
        .map(|s| s.id)
        .collect();
    run_db(&state.pool, move |conn| {
        crate::db::write_transaction(conn, |conn| -> Result<(), ApiError> {
            customers::set_payment_method(
                conn,
                customer.id,
                &saved.reference,
                &saved.brand,
                &saved.last4,
                now,
            )?;
            for id in past_due {
                let retry_now = subscriptions::SubscriptionChanges {
                    next_action_at: Some(Some(now)),
                    updated_at: Some(now),
                    ..Default::default()
                };
                subscriptions::update(conn, id, &retry_now)?;
            }
            Ok(())
        })
    })
    .await
}
