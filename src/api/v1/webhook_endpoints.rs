//! `/v1/webhook-endpoints`: the same endpoints and checks as `treefort-webpay webhooks` (one code
//! path, `services::webhooks`). A secret is in the answer of a create or a roll, never again.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::{ReadKey, Write};
use crate::clock::naive;
use crate::db::run_db;
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::services::webhooks::{self, EndpointInput, EndpointView};
use crate::state::AppState;

fn to_json(value: impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// Runs `f` on a connection with the settings and the current time.
async fn with_conn<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(
            &mut AnyConnection,
            &crate::config::Settings,
            chrono::NaiveDateTime,
        ) -> Result<T, ApiError>
        + Send
        + 'static,
{
    let shared = state.clone();
    let now = naive(state.clock.now());
    run_db(&state.pool, move |conn| f(conn, &shared.settings, now)).await
}

pub async fn list(_key: ReadKey, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = with_conn(&state, |conn, _, now| webhooks::list(conn, now)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": all })))
}

pub async fn show(
    _key: ReadKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let found = with_conn(&state, move |conn, _, now| {
        Ok(EndpointView::of(&webhooks::find(conn, id)?, now))
    })
    .await?;
    Ok(HttpResponse::Ok().json(found))
}

pub async fn create(
    write: Write,
    state: web::Data<AppState>,
    body: web::Json<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    write
        .run(&state, &input.clone(), || async {
            let added = with_conn(&state, move |conn, settings, now| {
                webhooks::add(conn, settings, input, now)
            })
            .await?;
            Ok((StatusCode::CREATED, to_json(added)?))
        })
        .await
}

/// A change to one endpoint: `f` on a connection, once per `Idempotency-Key`.
async fn change(
    write: Write,
    state: web::Data<AppState>,
    id: i64,
    f: fn(
        &mut AnyConnection,
        &crate::config::Settings,
        i64,
        chrono::NaiveDateTime,
    ) -> Result<serde_json::Value, ApiError>,
) -> Result<HttpResponse, ApiError> {
    write
        .run(&state, &(), || async {
            let answer = with_conn(&state, move |conn, settings, now| {
                f(conn, settings, id, now)
            })
            .await?;
            Ok((StatusCode::OK, answer))
        })
        .await
}

pub async fn delete(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    change(write, state, id.into_inner(), |conn, _, id, now| {
        webhooks::delete(conn, id, now)?;
        Ok(serde_json::json!({ "id": id, "deleted": true }))
    })
    .await
}

pub async fn disable(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    change(write, state, id.into_inner(), |conn, _, id, now| {
        to_json(webhooks::disable(conn, id, now)?)
    })
    .await
}

pub async fn enable(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    change(write, state, id.into_inner(), |conn, _, id, now| {
        to_json(webhooks::enable(conn, id, now)?)
    })
    .await
}

pub async fn roll_secret(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    change(write, state, id.into_inner(), |conn, settings, id, now| {
        to_json(webhooks::roll_secret(conn, settings, id, now)?)
    })
    .await
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttemptsQuery {
    limit: Option<i64>,
    starting_after: Option<i64>,
}

pub async fn attempts(
    _key: ReadKey,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<AttemptsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, q) = (id.into_inner(), query.into_inner());
    let limit = crate::views::page_size(q.limit)?;
    let rows = with_conn(&state, move |conn, _, _| {
        webhooks::attempts(conn, id, q.starting_after, limit + 1)
    })
    .await?;
    let page = crate::views::paged(rows, limit, |a: &webhooks::AttemptView| a.id);
    Ok(HttpResponse::Ok().json(page))
}
