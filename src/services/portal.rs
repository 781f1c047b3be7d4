//! The billing portal: issuing its URL for Treefort, and what the portal shows and does for the
//! user behind it (their subscriptions, payments, card, and cancel).

use chrono::TimeDelta;

use crate::api::types::BillingPortalSessionRequest;
use crate::domain::locale::Lang;
use crate::domain::session_token::{self, SessionToken};
use crate::error::ApiError;
use crate::metrics::label;
use crate::models::customers::{self, Customer};
use crate::models::payments::{self, Payment};
use crate::models::plans::{self, Plan};
use crate::models::portal_sessions::{self, NewPortalSession, PortalSession};
use crate::models::subscriptions::{self, Subscription};
use crate::state::AppState;

use super::{check_locale, check_redirect_url, check_user, naive, run_db};

pub async fn create_session(
    state: &AppState,
    request: BillingPortalSessionRequest,
) -> Result<String, ApiError> {
    check_user(&request.user)?;
    check_locale(&request.locale)?;
    let back_url = check_redirect_url("backUrl", &request.back_url)?;
    let now = state.clock.now();
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let new = NewPortalSession {
        token_hash: token.hash,
        user_id: request.user.id,
        user_email: request.user.email.trim().to_string(),
        locale: request.locale,
        back_url,
        created_at: naive(now),
        expires_at: naive(now + TimeDelta::seconds(state.settings.portal_session_ttl_secs)),
    };
    run_db(&state.pool, move |conn| {
        portal_sessions::insert(conn, &new)?;
        Ok(())
    })
    .await?;
    state
        .metrics
        .incr("sessions_created_total", label("kind", "billing_portal"));
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
    pub subscriptions: Vec<(Subscription, Option<Plan>)>,
    pub payments: Vec<Payment>,
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
        let plan_ids: Vec<i64> = subs.iter().map(|s| s.plan_id).collect();
        let known = plans::find_many(conn, &plan_ids)?;
        let subscriptions = subs
            .into_iter()
            .map(|s| {
                let plan = known.iter().find(|p| p.id == s.plan_id).cloned();
                (s, plan)
            })
            .collect();
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

/// Cancels one of the portal user's subscriptions through the same flow as Treefort's endpoint.
/// Returns the view to show and whether the cancel went through.
pub async fn cancel(
    state: &AppState,
    token: &str,
    subscription_id: i64,
) -> Result<(PortalView, Result<(), ApiError>), PortalError> {
    let before = view(state, token).await?;
    let target = before
        .subscriptions
        .iter()
        .find(|(s, _)| s.id == subscription_id && s.deactivated_at.is_none())
        .map(|(s, _)| (s.user_id.clone(), s.plan_id));
    let result = match target {
        Some((user_id, plan_id)) => super::cancel::cancel(state, user_id, plan_id)
            .await
            .map(|_| ()),
        None => Err(ApiError::not_found(
            "subscription_not_found",
            "no such subscription",
        )),
    };
    let after = view(state, token).await?;
    Ok((after, result))
}
