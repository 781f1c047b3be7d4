//! `GET /v1/events` (newest first, cursor-paginated), `GET /v1/events/{id}`, and
//! `POST /v1/events/{id}/redeliver` (send it to the webhook endpoints again).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::{ReadKey, Write};
use crate::clock::naive;
use crate::db::run_db;
use crate::error::ApiError;
use crate::services::events::{self, EventQuery};
use crate::services::webhooks;
use crate::state::AppState;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    user_id: Option<String>,
    subscription_id: Option<i64>,
    limit: Option<i64>,
    starting_after: Option<String>,
}

pub async fn list(
    _key: ReadKey,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let query = EventQuery {
        event_type: q.event_type,
        user_id: q.user_id,
        subscription_id: q.subscription_id,
        starting_after: q.starting_after,
        limit: q.limit,
    };
    Ok(HttpResponse::Ok().json(events::list(&state, query).await?))
}

pub async fn show(
    _key: ReadKey,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(events::show(&state, id.into_inner()).await?))
}

#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedeliverBody {
    /// Only to this endpoint (which need not have had the event); absent: every endpoint that had it.
    endpoint_id: Option<i64>,
}

pub async fn redeliver(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request = super::optional_body::<RedeliverBody>(&body, r#"{"endpointId": N}"#)?;
    let endpoint_id = request.endpoint_id;
    write
        .run(&state, &request, || async {
            let (event, now) = (id.into_inner(), naive(state.clock.now()));
            let queued = run_db(&state.pool, move |conn| {
                webhooks::redeliver(conn, &event, endpoint_id, now)
            })
            .await?;
            Ok((
                StatusCode::ACCEPTED,
                serde_json::json!({ "queued": queued }),
            ))
        })
        .await
}
