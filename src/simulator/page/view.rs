//! What the simulator's pages show: the templates' rows, and how Treefort's record, the calls it
//! received and the plans are put into words.

use super::*;

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

pub(super) fn with_status(status: StatusCode, mut response: HttpResponse) -> HttpResponse {
    *response.status_mut() = status;
    response
}

pub(super) async fn render_index(
    state: &AppState,
    sim: &Simulator,
    outcome: Option<Outcome>,
) -> HttpResponse {
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

pub(super) async fn render_user(
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

pub(super) fn html(rendered: Result<String, askama::Error>) -> HttpResponse {
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

pub(super) async fn clock(state: &AppState, back: &str) -> Clock {
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

pub(super) async fn next_due(state: &AppState) -> Option<DateTime<Utc>> {
    crate::db::run_db(&state.pool, |conn| {
        Ok(crate::models::subscriptions::next_action_at(conn)?)
    })
    .await
    .ok()
    .flatten()
    .map(|t| t.and_utc())
}

pub(super) async fn plan_ids(state: &AppState) -> Vec<i64> {
    // Treefort's app is configured with its plan ids; here they are the plans the service has.
    let mut ids: Vec<i64> = match state.catalog.get(&state.pool).await {
        Ok(snapshot) => snapshot.plans.keys().copied().collect(),
        Err(_) => Vec::new(),
    };
    ids.sort_unstable();
    ids
}

/// Each plan as the plan endpoint describes it to Treefort.
pub(super) async fn plan_rows(state: &AppState, sim: &Simulator) -> Vec<PlanRow> {
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

pub(super) fn describe_plan(plan: &Value) -> String {
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
pub(super) fn treefort_state(record: &Record, now: DateTime<Utc>) -> String {
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

pub(super) fn record_rows(record: &Record) -> Vec<RecordRow> {
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

pub(super) fn received_row(r: &Received) -> ReceivedRow {
    ReceivedRow {
        at: r.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        method: r.method.clone(),
        path: r.path.clone(),
        status: r.status,
        body: pretty(&r.body),
    }
}

pub(super) fn failed(what: &str, status: u16, body: &Value) -> Outcome {
    Outcome {
        ok: false,
        title: format!(
            "{what}: the provider answered {status} {}",
            body.get("code").and_then(Value::as_str).unwrap_or("")
        ),
        detail: pretty(body),
    }
}

pub(super) fn unreachable_outcome(error: &str) -> Outcome {
    Outcome {
        ok: false,
        title: "The provider could not be reached".into(),
        detail: error.to_string(),
    }
}

pub(super) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub(super) fn locale_or_default(locale: &str) -> &str {
    LOCALES
        .iter()
        .map(|(code, _)| *code)
        .find(|code| *code == locale)
        .unwrap_or("en-US")
}

/// A user id as something an e-mail address can start with.
pub(super) fn slug(user_id: &str) -> String {
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
