//! `GET /email-links/{token}`: a link from an email opens a fresh billing-portal session for its
//! user (303 to it); an expired one shows the expired-link page in the email's language.

use actix_web::{http::header, web, HttpResponse};

use super::{error_page, expired_page, not_found_page};
use crate::domain::locale::Lang;
use crate::services::emails::links::{self, LinkError};
use crate::state::AppState;

pub async fn open(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let test_mode = state.gateway.is_test_mode();
    match links::open(&state, &token).await {
        Ok(portal) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, portal))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .finish(),
        Err(LinkError::NotFound) => not_found_page(test_mode),
        Err(LinkError::Expired(lang)) => expired_page(lang, test_mode),
        Err(LinkError::Failed(e)) => error_page(Lang::En, test_mode, &e),
    }
}
