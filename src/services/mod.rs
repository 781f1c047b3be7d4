//! The business rules. Each public function is one thing a user does (fetch a plan, open a
//! checkout, pay, cancel, validate a code) and owns its transactions. Database work runs on the
//! blocking pool; no transaction is held open across a call to Treefort or the gateway.

pub mod cancel;
pub mod checkout;
pub mod customers;
pub mod emails;
pub mod entitlement;
pub mod events;
pub mod gateway_events;
pub mod idempotency;
pub mod launch_tokens;
pub mod management;
pub mod outbox;
pub mod payments;
pub mod plans;
pub mod portal;
pub mod promo;
pub mod promo_codes;
pub mod renewal;
pub mod webhooks;

use crate::error::ApiError;

/// Checks the user fields every session endpoint receives.
pub(crate) fn check_user(user: &crate::treefort::provider::TreefortUser) -> Result<(), ApiError> {
    check_user_id(&user.id)?;
    let texts = [
        Some(&user.email),
        Some(&user.created_at),
        user.first_name.as_ref(),
        user.last_name.as_ref(),
        user.full_name.as_ref(),
    ];
    if texts
        .into_iter()
        .flatten()
        .any(|t| crate::domain::text::has_control(t) || t.len() > 1024)
    {
        return Err(ApiError::bad_request(
            "invalid_user",
            "user fields must be text of at most 1024 characters without control characters",
        ));
    }
    if !is_date(&user.created_at) {
        return Err(ApiError::bad_request(
            "invalid_user",
            "user.createdAt must be a date (2026-01-31) or an RFC 3339 date-time",
        ));
    }
    let email = user.email.trim();
    if email.len() > 320 || !email.contains('@') {
        return Err(ApiError::bad_request(
            "invalid_user",
            "user.email must be an email address",
        ));
    }
    Ok(())
}

/// Treefort's `createdAt`: an RFC 3339 date-time or a plain date.
fn is_date(value: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(value).is_ok()
        || chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

/// A Treefort user id: 1 to 255 characters, not blank, no control characters.
pub(crate) fn check_user_id(id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() || id.len() > 255 || crate::domain::text::has_control(id) {
        return Err(ApiError::bad_request(
            "invalid_user",
            "the user id must be a non-empty string of at most 255 characters without control characters",
        ));
    }
    Ok(())
}

pub(crate) fn check_locale(locale: &str) -> Result<(), ApiError> {
    if crate::domain::locale::is_valid_locale(locale) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_locale",
            "locale must be a language tag such as \"fr\" or \"de-DE\"",
        ))
    }
}

pub(crate) fn check_redirect_url(field: &str, value: &str) -> Result<String, ApiError> {
    crate::domain::url::parse_redirect_url(field, value)
        .map_err(|message| ApiError::bad_request("invalid_url", message))
}
