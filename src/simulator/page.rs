//! The simulator's pages: Treefort's part played by a person. Every action calls the provider's
//! real `/treefort/*` routes over HTTP with the provider key, exactly as Treefort would (the
//! simulator is a client, not a shortcut into the services). Time travel moves the service's
//! clock and runs the work that became due, so renewals and ends happen while you watch.

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

/// The locales offered on the simulator's forms (Treefort sends the app user's locale), with
/// each language's name in that language.
pub const LOCALES: [(&str, &str); 10] = [
    ("en-US", "English"),
    ("de-DE", "Deutsch"),
    ("fr-FR", "Français"),
    ("es-ES", "Español"),
    ("it-IT", "Italiano"),
    ("nl-NL", "Nederlands"),
    ("pt-BR", "Português (Brasil)"),
    ("pl-PL", "Polski"),
    ("sv-SE", "Svenska"),
    ("ja-JP", "日本語"),
];

/// A plan as the plan endpoint describes it.
pub struct PlanRow {
    pub id: i64,
    pub summary: String,
}

/// A box above the page: what the last action gave.
pub struct Outcome {
    pub ok: bool,
    pub title: String,
    /// The provider's answer, as JSON.
    pub detail: String,
}

pub struct UserRow {
    pub user_id: String,
    /// The user id as a path segment.
    pub user_path: String,
    pub plan_id: String,
    pub state: String,
    pub period_ends: String,
}

pub struct Clock {
    pub now: String,
    pub ahead: String,
    pub next_due: Option<String>,
    /// Where the time-travel form comes back to.
    pub back: String,
}

#[derive(Template)]
#[template(path = "simulator/index.html")]
pub struct IndexPage {
    pub clock: Clock,
    pub plans: Vec<PlanRow>,
    pub users: Vec<UserRow>,
    pub refused: Vec<ReceivedRow>,
    pub outcome: Option<Outcome>,
    pub locales: &'static [(&'static str, &'static str)],
    pub suggested_user: String,
}

pub struct RecordRow {
    pub name: &'static str,
    pub value: String,
}

pub struct ReceivedRow {
    pub at: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: String,
}

#[derive(Template)]
#[template(path = "simulator/user.html")]
pub struct UserPage {
    pub clock: Clock,
    pub user_id: String,
    pub user_path: String,
    pub record: Option<Vec<RecordRow>>,
    pub state: Option<String>,
    pub plans: Vec<PlanRow>,
    pub current_plan: Option<i64>,
    pub received: Vec<ReceivedRow>,
    pub outcome: Option<Outcome>,
    pub locales: &'static [(&'static str, &'static str)],
}

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

fn with_status(status: StatusCode, mut response: HttpResponse) -> HttpResponse {
    *response.status_mut() = status;
    response
}

async fn render_index(state: &AppState, sim: &Simulator, outcome: Option<Outcome>) -> HttpResponse {
    let plans = plan_rows(state, sim).await;
    let (users, refused) = {
        let store = sim.store();
        let users = store
            .users()
            .iter()
            .map(|r| UserRow {
                user_id: r.user_id.clone(),
                user_path: path_segment(&r.user_id),
                plan_id: r.plan_id().map(|p| p.to_string()).unwrap_or_default(),
                state: treefort_state(r, state.clock.now()),
                period_ends: r.field("currentPeriodEndsAt").unwrap_or("").to_string(),
            })
            .collect::<Vec<_>>();
        let refused = store.refused().iter().map(received_row).collect();
        (users, refused)
    };
    let suggested_user = format!("user-{}", users.len() + 1);
    let page = IndexPage {
        clock: clock(state, "/simulator").await,
        plans,
        users,
        refused,
        outcome,
        locales: &LOCALES,
        suggested_user,
    };
    html(page.render())
}

async fn render_user(
    state: &AppState,
    sim: &Simulator,
    user_id: &str,
    outcome: Option<Outcome>,
) -> HttpResponse {
    let now = state.clock.now();
    let (record, received) = {
        let store = sim.store();
        (
            store.current(user_id).cloned(),
            store
                .received_for(user_id)
                .iter()
                .map(received_row)
                .collect(),
        )
    };
    let page = UserPage {
        clock: clock(
            state,
            &format!("/simulator/users/{}", path_segment(user_id)),
        )
        .await,
        user_id: user_id.to_string(),
        user_path: path_segment(user_id),
        state: record.as_ref().map(|r| treefort_state(r, now)),
        current_plan: record.as_ref().and_then(Record::plan_id),
        record: record.as_ref().map(record_rows),
        plans: plan_rows(state, sim).await,
        received,
        outcome,
        locales: &LOCALES,
    };
    html(page.render())
}

fn html(rendered: Result<String, askama::Error>) -> HttpResponse {
    match rendered {
        Ok(body) => crate::pages::respond_with_policy(
            StatusCode::OK,
            body,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
                .to_string(),
        ),
        Err(e) => {
            use actix_web::ResponseError;
            crate::error::ApiError::internal(format!("simulator page: {e}")).error_response()
        }
    }
}

async fn clock(state: &AppState, back: &str) -> Clock {
    let now = state.clock.now();
    let ahead = now - Utc::now();
    Clock {
        now: now.format("%Y-%m-%d %H:%M UTC").to_string(),
        ahead: if ahead.num_hours() >= 1 {
            format!(
                "{} days {} hours ahead of real time",
                ahead.num_days(),
                ahead.num_hours() % 24
            )
        } else {
            "real time".into()
        },
        next_due: next_due(state)
            .await
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        back: back.to_string(),
    }
}

async fn next_due(state: &AppState) -> Option<DateTime<Utc>> {
    crate::db::run_db(&state.pool, |conn| {
        Ok(crate::models::subscriptions::next_action_at(conn)?)
    })
    .await
    .ok()
    .flatten()
    .map(|t| t.and_utc())
}

async fn plan_ids(state: &AppState) -> Vec<i64> {
    // Treefort's app is configured with its plan ids; here they are the plans the service has.
    let mut ids: Vec<i64> = match state.catalog.get(&state.pool).await {
        Ok(snapshot) => snapshot.plans.keys().copied().collect(),
        Err(_) => Vec::new(),
    };
    ids.sort_unstable();
    ids
}

/// Each plan as the plan endpoint describes it to Treefort.
async fn plan_rows(state: &AppState, sim: &Simulator) -> Vec<PlanRow> {
    let mut rows = Vec::new();
    for id in plan_ids(state).await {
        let summary = match sim
            .call(
                "/treefort/subscription-plan",
                &json!({"subscriptionPlanId": id}),
            )
            .await
        {
            Ok(Reply { status: 200, body }) => describe_plan(&body),
            Ok(reply) => format!("the plan endpoint answered {}", reply.status),
            Err(e) => e,
        };
        rows.push(PlanRow { id, summary });
    }
    rows
}

fn describe_plan(plan: &Value) -> String {
    let price = &plan["price"];
    let (amount, divisor) = (
        price["amount"].as_i64().unwrap_or(0),
        price["divisor"].as_i64().unwrap_or(1).max(1),
    );
    let money = crate::domain::money::Money {
        amount,
        currency: price["currency"].as_str().unwrap_or("").to_string(),
        divisor,
    };
    let count = plan["intervalCount"].as_i64().unwrap_or(1);
    let interval = plan["interval"].as_str().unwrap_or("month");
    let every = if count == 1 {
        format!("every {interval}")
    } else {
        format!("every {count} {interval}s")
    };
    format!(
        "{} {every}; trial {} days; grace {} days",
        crate::domain::locale::Lang::En.money(&money),
        plan["trialLengthDays"].as_i64().unwrap_or(0),
        plan["gracePeriodDays"].as_i64().unwrap_or(0),
    )
}

/// The state Treefort derives from the four dates (its dashboard's words where published).
fn treefort_state(record: &Record, now: DateTime<Utc>) -> String {
    let at = |name: &str| {
        record
            .field(name)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    if at("deactivatedAt").is_some_and(|t| t <= now) {
        return "deactivated: no access".into();
    }
    let period_end = at("currentPeriodEndsAt");
    if at("canceledAt").is_some() {
        return "canceled with time left: access until the period ends".into();
    }
    if period_end.is_some_and(|t| t < now) {
        return "period ended: waiting for a renewal (Treefort lapses it after the grace days)"
            .into();
    }
    if at("trialEndsAt").is_some_and(|t| t > now) {
        return "in trial".into();
    }
    "active".into()
}

fn record_rows(record: &Record) -> Vec<RecordRow> {
    let mut rows = vec![RecordRow {
        name: "id",
        value: record.id.clone(),
    }];
    for name in [
        "subscriptionPlanId",
        "currentPeriodEndsAt",
        "trialEndsAt",
        "canceledAt",
        "deactivatedAt",
    ] {
        let value = match record.fields.get(name) {
            None | Some(Value::Null) => "null".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        rows.push(RecordRow { name, value });
    }
    rows
}

fn received_row(r: &Received) -> ReceivedRow {
    ReceivedRow {
        at: r.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        method: r.method.clone(),
        path: r.path.clone(),
        status: r.status,
        body: pretty(&r.body),
    }
}

fn failed(what: &str, status: u16, body: &Value) -> Outcome {
    Outcome {
        ok: false,
        title: format!(
            "{what}: the provider answered {status} {}",
            body.get("code").and_then(Value::as_str).unwrap_or("")
        ),
        detail: pretty(body),
    }
}

fn unreachable_outcome(error: &str) -> Outcome {
    Outcome {
        ok: false,
        title: "The provider could not be reached".into(),
        detail: error.to_string(),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn locale_or_default(locale: &str) -> &str {
    LOCALES
        .iter()
        .map(|(code, _)| *code)
        .find(|code| *code == locale)
        .unwrap_or("en-US")
}

/// A user id as something an e-mail address can start with.
fn slug(user_id: &str) -> String {
    let s: String = user_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if s.is_empty() {
        "user".into()
    } else {
        s
    }
}
