//! The simulator's pages: Treefort's part played by a person. Every action calls the provider's
//! real `/treefort/*` routes over HTTP with the provider key, exactly as Treefort would (the
//! simulator is a client, not a shortcut into the services). Time travel moves the service's
//! clock and runs the work that became due, so renewals and ends happen while you watch.

pub mod inbox;
mod view;

pub use view::*;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::store::{Received, Record};
use super::{Reply, Simulator};
use crate::domain::url::path_segment;
use crate::state::AppState;

/// `GET /simulator`.
pub async fn index(state: web::Data<AppState>, sim: web::Data<Simulator>) -> HttpResponse {
    render_index(&state, &sim, None).await
}

#[derive(Deserialize)]
pub struct SubscribeForm {
    user_id: String,
    #[serde(default)]
    email: String,
    plan_id: i64,
    #[serde(default)]
    promo_code: String,
    #[serde(default)]
    locale: String,
}

/// `POST /simulator/subscribe`: the checkout-session endpoint, then the browser goes to the
/// checkout page; it comes back to the user's page as `successUrl` (or `cancelUrl`).
pub async fn subscribe(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    form: web::Form<SubscribeForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let user_id = form.user_id.trim().to_string();
    let email = match form.email.trim() {
        "" => format!("{}@example.com", slug(&user_id)),
        email => email.to_string(),
    };
    let user_page = format!(
        "{}/simulator/users/{}",
        state.settings.public_base_url,
        path_segment(&user_id)
    );
    let promo = form.promo_code.trim();
    let body = json!({
        "user": {
            "id": user_id,
            "email": email,
            "createdAt": crate::clock::rfc3339(state.clock.now()),
            "fullName": null,
        },
        "locale": locale_or_default(&form.locale),
        "subscriptionPlanId": form.plan_id,
        "promoCode": if promo.is_empty() { Value::Null } else { json!(promo) },
        "successUrl": format!("{user_page}?checkout=success"),
        "cancelUrl": format!("{user_page}?checkout=canceled"),
    });
    match sim.call("/treefort/checkout-session", &body).await {
        Ok(Reply { status: 200, body }) => match body.get("sessionUrl").and_then(Value::as_str) {
            Some(url) => crate::pages::see_other(url),
            None => render_index(&state, &sim, Some(failed("Checkout session", 200, &body))).await,
        },
        Ok(reply) => {
            render_index(
                &state,
                &sim,
                Some(failed("Checkout session", reply.status, &reply.body)),
            )
            .await
        }
        Err(e) => render_index(&state, &sim, Some(unreachable_outcome(&e))).await,
    }
}

#[derive(Deserialize)]
pub struct ValidateForm {
    code: String,
    #[serde(default)]
    user_id: String,
}

/// `POST /simulator/validate`: the promo-code endpoint, for every plan, as Treefort's
/// subscriptions page asks it.
pub async fn validate(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    form: web::Form<ValidateForm>,
) -> HttpResponse {
    let plan_ids: Vec<i64> = plan_ids(&state).await;
    let user = form.user_id.trim();
    let body = json!({
        "userId": if user.is_empty() { Value::Null } else { json!(user) },
        "subscriptionPlanIds": plan_ids,
        "code": form.code.trim(),
    });
    let outcome = match sim.call("/treefort/validate-promo-code", &body).await {
        Ok(reply) => Outcome {
            ok: reply.status == 200 && reply.body.get("status") == Some(&json!("valid")),
            title: format!(
                "Promo code {:?}: {} (HTTP {})",
                form.code.trim(),
                reply
                    .body
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("refused"),
                reply.status
            ),
            detail: pretty(&reply.body),
        },
        Err(e) => unreachable_outcome(&e),
    };
    render_index(&state, &sim, Some(outcome)).await
}

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    checkout: Option<String>,
}

/// `GET /simulator/users/{user}`: what Treefort has been told about the user.
pub async fn user(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    user_id: web::Path<String>,
    query: web::Query<UserQuery>,
) -> HttpResponse {
    let outcome = match query.checkout.as_deref() {
        Some("success") => Some(Outcome {
            ok: true,
            title: "Back from checkout: the provider sent the shopper to successUrl".into(),
            detail: String::new(),
        }),
        Some("canceled") => Some(Outcome {
            ok: false,
            title: "Back from checkout: the shopper left it (cancelUrl)".into(),
            detail: String::new(),
        }),
        _ => None,
    };
    render_user(&state, &sim, &user_id, outcome).await
}

#[derive(Deserialize)]
pub struct PortalForm {
    #[serde(default)]
    locale: String,
}

/// `POST /simulator/users/{user}/portal`: the billing-portal endpoint, then the browser goes there.
pub async fn portal(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    user_id: web::Path<String>,
    form: web::Form<PortalForm>,
) -> HttpResponse {
    let back = format!(
        "{}/simulator/users/{}",
        state.settings.public_base_url,
        path_segment(&user_id)
    );
    let body = json!({
        "user": {
            "id": user_id.as_str(),
            "email": format!("{}@example.com", slug(&user_id)),
            "createdAt": crate::clock::rfc3339(state.clock.now()),
        },
        "locale": locale_or_default(&form.locale),
        "backUrl": back,
    });
    match sim.call("/treefort/billing-portal-session", &body).await {
        Ok(Reply { status: 200, body }) => match body.get("sessionUrl").and_then(Value::as_str) {
            Some(url) => crate::pages::see_other(url),
            None => {
                render_user(
                    &state,
                    &sim,
                    &user_id,
                    Some(failed("Billing portal", 200, &body)),
                )
                .await
            }
        },
        Ok(reply) => {
            let outcome = failed("Billing portal", reply.status, &reply.body);
            render_user(&state, &sim, &user_id, Some(outcome)).await
        }
        Err(e) => render_user(&state, &sim, &user_id, Some(unreachable_outcome(&e))).await,
    }
}

/// `POST /simulator/users/{user}/cancel`: the cancel endpoint, for the plan Treefort holds.
pub async fn cancel(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    user_id: web::Path<String>,
) -> HttpResponse {
    let plan_id = sim.store().current(&user_id).and_then(Record::plan_id);
    let Some(plan_id) = plan_id else {
        let outcome = Outcome {
            ok: false,
            title: "Treefort holds no subscription of this user to cancel".into(),
            detail: String::new(),
        };
        return render_user(&state, &sim, &user_id, Some(outcome)).await;
    };
    let body = json!({"userId": user_id.as_str(), "subscriptionPlanId": plan_id});
    let outcome = match sim.call("/treefort/cancel-subscription", &body).await {
        Ok(reply) if reply.status == 200 => Outcome {
            ok: true,
            title: "Canceled as Treefort: the provider answered after Treefort's PATCH".into(),
            detail: pretty(&reply.body),
        },
        Ok(reply) => failed("Cancel", reply.status, &reply.body),
        Err(e) => unreachable_outcome(&e),
    };
    render_user(&state, &sim, &user_id, Some(outcome)).await
}

#[derive(Deserialize)]
pub struct TravelForm {
    step: String,
    #[serde(default)]
    back: String,
}

/// `POST /simulator/clock`: moves the service's clock forward (a day, a month, or to the next
/// thing due) and runs the work that became due, then goes back to the page it came from.
pub async fn travel(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    form: web::Form<TravelForm>,
) -> HttpResponse {
    let now = state.clock.now();
    let by = match form.step.as_str() {
        "day" => TimeDelta::days(1),
        "month" => now
            .checked_add_months(Months::new(1))
            .map_or(TimeDelta::days(30), |later| later - now),
        "next" => match next_due(&state).await {
            // Due work is what is due at or before now.
            Some(at) if at > now => at - now,
            _ => TimeDelta::zero(),
        },
        _ => {
            let outcome = Outcome {
                ok: false,
                title: "Unknown time step: day, month or next".into(),
                detail: String::new(),
            };
            return with_status(
                StatusCode::BAD_REQUEST,
                render_index(&state, &sim, Some(outcome)).await,
            );
        }
    };
    state.clock.advance(by);
    sim.save_clock(&state).await;
    tracing::info!(
        now = %crate::clock::rfc3339(state.clock.now()),
        "local mode: the clock moved forward"
    );
    settle(&state).await;
    let back = if form.back.starts_with("/simulator") && !form.back.starts_with("//") {
        form.back.as_str()
    } else {
        "/simulator"
    };
    crate::pages::see_other(back)
}

/// Runs the work that became due, and waits (up to 5 s) until none is left and every Treefort
/// update that is due is delivered, so the page shows the result on return. Rounds of this
/// process never overlap (`AppState::worker_round`), so the background worker's claims, whose
/// leases the jump in time may have made look expired, are never taken a second time.
async fn settle(state: &AppState) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        while crate::worker::run_once(state).await && tokio::time::Instant::now() < deadline {}
        // Into the Inbox: what the moved clock made due.
        crate::worker::send_emails(state).await;
        let now = state.clock.now();
        let naive_now = now.naive_utc();
        let pending = crate::db::run_db(&state.pool, move |conn| {
            Ok(crate::models::outbox::count_due(conn, naive_now)?)
        })
        .await
        .unwrap_or(0);
        let due = next_due(state).await.is_some_and(|at| at <= now);
        if (pending == 0 && !due) || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
