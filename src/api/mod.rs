//! The Treefort-facing JSON routes: each handler checks the provider key, parses the body, calls
//! one service function and maps its answer. Rules live in `services`.

pub mod auth;
pub mod billing_portal_session;
pub mod cancel_subscription;
pub mod checkout_session;
pub mod subscription_plan;
pub mod v1;
pub mod validate_promo_code;
pub mod webhooks;

use actix_web::{error::JsonPayloadError, web, HttpRequest};

use crate::error::ApiError;

/// Whether a request's declared charset is one JSON may come in: none, or UTF-8 (RFC 8259). A
/// body declared in another charset is refused with 415 rather than read as UTF-8.
pub fn declares_other_charset(req: &actix_web::dev::ServiceRequest) -> bool {
    use actix_web::HttpMessage;
    req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.get_param(actix_web::mime::CHARSET)
            .is_some_and(|c| !c.as_str().eq_ignore_ascii_case("utf-8"))
    })
}

/// Largest JSON body accepted from Treefort.
pub const JSON_LIMIT: usize = 64 * 1024;

/// JSON extraction errors as API errors: 413 too large, 415 wrong content type, 400 otherwise.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .content_type_required(true)
        .error_handler(|err, _req: &HttpRequest| {
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::payload_too_large(JSON_LIMIT)
                }
                JsonPayloadError::ContentType => ApiError::unsupported_media_type(),
                JsonPayloadError::Deserialize(e) => ApiError::invalid_body(format!(
                    "the body does not match the documented schema: {e}"
                )),
                other => ApiError::invalid_body(format!("the body could not be read: {other}")),
            }
            .into()
        })
}
