//! The simulated Treefort's own API, which the service calls as it calls the real one: the OAuth
//! token endpoint (client credentials, HTTP Basic) and `POST /subscriptions`,
//! `PATCH /subscriptions/{id}`. It checks what the real one is documented to need (the token,
//! `X-Treefort-Version`, `provider: "webPayment"`, RFC 3339 dates) and keeps what it receives.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::store::{Answer, Received};
use super::Simulator;
use crate::state::AppState;

/// `POST /simulator/oauth/token`: `grant_type=client_credentials` with the client id and secret
/// as HTTP Basic auth.
pub async fn token(sim: web::Data<Simulator>, req: HttpRequest, body: String) -> HttpResponse {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if !basic.is_some_and(|b| sim.is_client(b)) {
        return refuse(401, "invalid_client", "wrong client id or secret");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if !form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    {
        return refuse(
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    match sim.issue_token() {
        Some(token) => HttpResponse::Ok().json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
        })),
        None => refuse(500, "server_error", "no randomness for a token"),
    }
}

/// `POST /simulator/api/v1/subscriptions`.
pub async fn create(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let now = state.clock.now();
    let path = req.path().to_string();
    let parsed = checked(&sim, &req, &body, true);
    let user_id = parsed
        .as_ref()
        .ok()
        .and_then(|f| f.get("userId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (status, answer) = match parsed {
        Err((status, code, message)) => (status, json!({"code": code, "message": message})),
        Ok(fields) => {
            let key = req
                .headers()
                .get("Idempotency-Key")
                .and_then(|v| v.to_str().ok());
            let user = user_id.clone().unwrap_or_default();
            let mut store = sim.store();
            match store.create(now, key, &user, fields) {
                Answer::Created(id) => (201, json!({"id": id})),
                Answer::Replayed(id) => (200, json!({"id": id})),
                _ => (500, json!({"code": "server_error"})),
            }
        }
    };
    let call = Received {
        at: now,
        method: "POST".into(),
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
        user_id,
    };
    sim.receive(&state, call).await;
    respond(status, answer)
}

/// `PATCH /simulator/api/v1/subscriptions/{id}`.
pub async fn update(
    state: web::Data<AppState>,
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let now = state.clock.now();
    let (status, answer, user_id) = match checked(&sim, &req, &body, false) {
        Err((status, code, message)) => (status, json!({"code": code, "message": message}), None),
        Ok(fields) => match sim.store().update(&id, fields) {
            (Answer::NotFound, _) => (
                404,
                json!({"code": "not_found", "message": "no such subscription"}),
                None,
            ),
            (_, user) => (200, json!({"id": id.as_str()}), user),
        },
    };
    let call = Received {
        at: now,
        method: "PATCH".into(),
        path: req.path().to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
        user_id,
    };
    sim.receive(&state, call).await;
    respond(status, answer)
}

type Refusal = (u16, &'static str, String);

/// The body's fields, once the call is shown to be one the real Treefort would take.
fn checked(
    sim: &super::Simulator,
    req: &HttpRequest,
    body: &[u8],
    create: bool,
) -> Result<Map<String, Value>, Refusal> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| sim.is_token(t)) {
        return Err((
            401,
            "unauthorized",
            "missing or unknown access token".into(),
        ));
    }
    let version = req
        .headers()
        .get("X-Treefort-Version")
        .and_then(|v| v.to_str().ok());
    if version != Some(super::API_VERSION) {
        return Err((
            400,
            "invalid_version",
            format!("X-Treefort-Version must be {}", super::API_VERSION),
        ));
    }
    let fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields,
        _ => return Err((400, "invalid_body", "the body must be a JSON object".into())),
    };
    if fields.get("provider").and_then(Value::as_str) != Some("webPayment") {
        return Err((
            400,
            "invalid_provider",
            "provider must be \"webPayment\"".into(),
        ));
    }
    for date in [
        "currentPeriodEndsAt",
        "trialEndsAt",
        "canceledAt",
        "deactivatedAt",
    ] {
        match fields.get(date) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {}
            Some(_) => {
                return Err((
                    400,
                    "invalid_date",
                    format!("{date} must be an RFC 3339 date or null"),
                ))
            }
        }
    }
    if create {
        let has = |name: &str, ok: fn(&Value) -> bool| fields.get(name).is_some_and(ok);
        if !has("userId", |v| v.as_str().is_some_and(|s| !s.is_empty()))
            || !has("subscriptionPlanId", Value::is_i64)
            || !has("currentPeriodEndsAt", Value::is_string)
        {
            return Err((
                400,
                "invalid_body",
                "userId, subscriptionPlanId and currentPeriodEndsAt are required".into(),
            ));
        }
    }
    Ok(fields)
}

fn refuse(status: u16, code: &str, message: &str) -> HttpResponse {
    respond(status, json!({"code": code, "message": message}))
}

fn respond(status: u16, body: Value) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(body)
}
