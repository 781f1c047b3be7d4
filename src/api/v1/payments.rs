//! `GET /v1/payments` and `POST /v1/payments/{id}/refund` (through the active gateway, the same
//! code as the CLI's `payments refund`).

use actix_web::{web, HttpResponse};

use actix_web::http::StatusCode;

use super::{ReadKey, Write};
use crate::error::ApiError;
use crate::services::management;
use crate::state::AppState;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    user_id: Option<String>,
    subscription_id: Option<i64>,
    limit: Option<i64>,
    starting_after: Option<i64>,
}

pub async fn list(
    _key: ReadKey,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = management::payments(
        &state,
        q.user_id,
        q.subscription_id,
        q.starting_after,
        q.limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundBody {
    /// In the payment's minor units; all that is left when absent.
    amount: Option<i64>,
}

pub async fn refund(
    write: Write,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // No body: refund all that is left. A body must say exactly how much (a malformed one must
    // never become "everything").
    let amount = super::optional_body::<RefundBody>(&body, r#"{"amount": N}"#)?.amount;
    let request_key = write.request_name();
    write
        .run(&state, &RefundBody { amount }, || async {
            let refunded = management::refund(&state, id.into_inner(), amount, request_key).await?;
            Ok((
                StatusCode::OK,
                serde_json::to_value(refunded).map_err(ApiError::internal)?,
            ))
        })
        .await
}
