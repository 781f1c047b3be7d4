//! The links in emails ("how to cancel", "update your card", "keep my subscription"): each opens
//! a fresh billing-portal session for its email's user, until it expires
//! (`EMAIL_LINK_TTL_HOURS`). The token is 256 random bits; only its SHA-256 is kept.

use chrono::{NaiveDateTime, TimeDelta};

use crate::clock::naive;
use crate::db::{run_db, AnyConnection};
use crate::domain::locale::Lang;
use crate::domain::session_token::{self, SessionToken};
use crate::error::ApiError;
use crate::models::emails::{self, Email, NewEmailLink};
use crate::services::portal::{self, SessionHolder};
use crate::state::AppState;

/// Mints a link for `email`'s user, valid `ttl` from `now`: its address.
pub fn mint(
    conn: &mut AnyConnection,
    base_url: &str,
    email: &Email,
    ttl: TimeDelta,
    now: NaiveDateTime,
) -> diesel::QueryResult<String> {
    let token = SessionToken::generate()
        .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
    emails::insert_link(
        conn,
        &NewEmailLink {
            token_hash: token.hash,
            email_id: email.id,
            user_id: email.user_id.clone(),
            created_at: now,
            expires_at: now + ttl,
        },
    )?;
    Ok(format!("{base_url}/email-links/{}", token.token))
}

#[derive(Debug)]
pub enum LinkError {
    NotFound,
    /// Expired: the page says so in the email's language.
    Expired(Lang),
    Failed(ApiError),
}

/// Opens a link: a new billing-portal session for its user, whose address is returned.
pub async fn open(state: &AppState, token: &str) -> Result<String, LinkError> {
    let hash = session_token::hash_if_well_formed(token).ok_or(LinkError::NotFound)?;
    let now = naive(state.clock.now());
    let found = run_db(&state.pool, move |conn| {
        let Some(link) = emails::find_link(conn, &hash)? else {
            return Ok(None);
        };
        Ok(emails::find(conn, link.email_id)?.map(|email| (link, email)))
    })
    .await
    .map_err(LinkError::Failed)?;
    let (link, email) = found.ok_or(LinkError::NotFound)?;
    if link.expires_at <= now {
        return Err(LinkError::Expired(Lang::negotiate(&email.locale)));
    }
    let holder = SessionHolder {
        user_id: link.user_id,
        user_email: email.to_address,
        locale: email.locale,
        back_url: state.settings.public_base_url.clone(),
    };
    portal::open_session(state, holder, "email_link")
        .await
        .map_err(LinkError::Failed)
}
