//! The simulator's Inbox: every email the service would send to shoppers, as they would see it,
//! with working links (each view mints a fresh one). Local mode sends nothing over SMTP.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::view::{clock, html, Clock};
use crate::clock::naive;
use crate::db::run_db;
use crate::models::emails;
use crate::services::emails::send;
use crate::state::AppState;

pub struct InboxRow {
    pub id: i64,
    pub at: String,
    pub to: String,
    pub subject: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "simulator/inbox.html")]
pub struct InboxPage {
    pub clock: Clock,
    pub rows: Vec<InboxRow>,
}

/// `GET /simulator/inbox`: the latest 200 emails, newest first.
pub async fn inbox(state: web::Data<AppState>) -> HttpResponse {
    let found = run_db(&state.pool, |conn| Ok(emails::list(conn, None, None, 200)?)).await;
    let merchant = state.settings.email.merchant_name.clone();
    let rows = found
        .unwrap_or_default()
        .iter()
        .map(|e| InboxRow {
            id: e.id,
            at: crate::clock::rfc3339(e.created_at.and_utc()),
            to: e.to_address.clone(),
            subject: send::rendered(e, &merchant, None).subject,
            kind: e.kind.clone(),
        })
        .collect();
    html(
        InboxPage {
            clock: clock(&state, "/simulator/inbox").await,
            rows,
        }
        .render(),
    )
}

/// `GET /simulator/inbox/{id}`: one email's HTML part, as the shopper would see it.
pub async fn message(state: web::Data<AppState>, id: web::Path<i64>) -> HttpResponse {
    let id = id.into_inner();
    let found = run_db(&state.pool, move |conn| Ok(emails::find(conn, id)?)).await;
    let now = naive(state.clock.now());
    let found = match found {
        Ok(Some(email)) => send::link_of(&state, &email, now)
            .await
            .map(|link| Some((email, link))),
        other => other.map(|_| None),
    };
    match found {
        Ok(Some((email, link))) => {
            let r = send::rendered(&email, &state.settings.email.merchant_name, link.as_deref());
            crate::pages::respond_with_policy(
                StatusCode::OK,
                r.html,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'".into(),
            )
        }
        Ok(None) => HttpResponse::NotFound().body("no such email"),
        Err(e) => HttpResponse::InternalServerError().body(e.message),
    }
}
