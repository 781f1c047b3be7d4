//! Shopper pages: the hosted checkout and the billing portal. HTML comes from askama templates
//! (`templates/`, checked at compile time, every value escaped); texts from the Fluent files of
//! the shopper's language. Pages carry the token in their URL, so they are never cached and never leak it through
//! a Referer header to another site (`Referrer-Policy: same-origin`: our own forms still carry
//! our origin, which is how a cross-site form post is told apart and refused).

pub mod billing;
pub mod checkout;
pub mod email_links;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::domain::locale::Lang;

use askama::Template;

/// What every shopper page shows around its content: its language and the test-mode banner.
pub struct Chrome {
    pub lang: Lang,
    pub test_mode: bool,
}

/// A page that only says something (expired, not found, error, activating).
#[derive(Template)]
#[template(path = "pages/message.html")]
struct MessagePage<'a> {
    lang: Lang,
    test_mode: bool,
    title: &'a str,
    text: &'a str,
    /// Reload to this URL after 2 s (the activation wait).
    refresh: Option<&'a str>,
}

/// The rendered page, or the error page when a template fails to render (it cannot in practice:
/// templates are checked at compile time and only `fmt` errors remain).
pub fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page template failed to render");
        "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()
    })
}

/// Sends a page with the headers every token-bearing page needs.
pub fn respond(status: StatusCode, html: String) -> HttpResponse {
    respond_allowing(status, html, &[])
}

/// `respond`, for a page that runs the payment gateway's script: scripts from this origin (our
/// card.js) and from `origins`, which may also be framed and called (Stripe.js, 3-D Secure).
/// card.js calls this origin too, for the card setup it confirms.
pub fn respond_allowing(status: StatusCode, html: String, origins: &[String]) -> HttpResponse {
    let csp = if origins.is_empty() {
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
            .to_string()
    } else {
        let o = origins.join(" ");
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self' {o}; frame-src {o}; \
             connect-src 'self' {o}; img-src {o}; frame-ancestors 'none'; base-uri 'none'"
        )
    };
    respond_with_policy(status, html, csp)
}

/// A page with the headers of every page that may carry a token (never cached, no referrer to
/// other sites, no sniffing) and the given content security policy.
pub fn respond_with_policy(status: StatusCode, html: String, csp: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .body(html)
}

/// Whether a form post to a page comes from another site: its `Origin` (or, without one, its
/// `Referer`) names another origin than `ours`, or `null` (an opaque origin: a sandboxed frame,
/// a page that hides its referrer). Clients that are not browsers send neither and pass: only a
/// browser can be made to post for someone else.
pub fn is_cross_site(headers: &actix_web::http::header::HeaderMap, ours: &str) -> bool {
    let origin_of = |value: &str| {
        reqwest::Url::parse(value)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    };
    let ours = origin_of(ours);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        return origin == "null" || origin_of(origin) != ours;
    }
    match headers.get(header::REFERER).and_then(|r| r.to_str().ok()) {
        Some(referer) => origin_of(referer) != ours,
        None => false,
    }
}

/// 429 for a client over the pages' rate limit.
pub fn rate_limited_page(test_mode: bool) -> HttpResponse {
    let lang = Lang::En;
    message_page(
        StatusCode::TOO_MANY_REQUESTS,
        Chrome { lang, test_mode },
        &lang.t("error-title"),
        &lang.t("too-many-requests"),
    )
}

/// 403 for a cross-site form post: nothing was done.
pub fn cross_site_page(test_mode: bool) -> HttpResponse {
    let lang = Lang::En;
    message_page(
        StatusCode::FORBIDDEN,
        Chrome { lang, test_mode },
        &lang.t("error-title"),
        &lang.t("cross-site"),
    )
}

/// Our card script (Stripe.js card entry and 3-D Secure), served at `/assets/card.js`.
pub const CARD_JS: &str = include_str!("card.js");

pub async fn card_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(CARD_JS)
}

/// The answer of a card-setup request: the client secret Stripe.js confirms, never cached.
pub fn client_secret(secret: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "clientSecret": secret }))
}

/// The card entry a form shows: our own fields (the sandbox), or the gateway's card field with
/// the setup it confirms (Stripe).
pub struct CardView {
    pub stripe: Option<StripeCard>,
}

pub struct StripeCard {
    pub publishable_key: String,
    /// Where the form asks for its SetupIntent when the shopper presses the button.
    pub setup_url: String,
}

impl CardView {
    pub fn of(entry: &crate::gateway::CardEntry, setup_url: &str) -> Self {
        match entry {
            crate::gateway::CardEntry::Fields => CardView { stripe: None },
            crate::gateway::CardEntry::StripeElement {
                publishable_key, ..
            } => CardView {
                stripe: Some(StripeCard {
                    publishable_key: publishable_key.clone(),
                    setup_url: setup_url.to_string(),
                }),
            },
        }
    }
}

#[derive(askama::Template)]
#[template(path = "home.html")]
struct HomePage {
    version: &'static str,
}

/// `GET /` outside local mode: the service's name and version, and where its contract is.
pub fn home_page() -> HttpResponse {
    use askama::Template;
    let page = HomePage {
        version: env!("CARGO_PKG_VERSION"),
    };
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ))
            .body(html),
        Err(e) => {
            use actix_web::ResponseError;
            crate::error::ApiError::internal(format!("home page: {e}")).error_response()
        }
    }
}

/// 303 to `location` (after a form POST, the browser follows with GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

/// A page that only says something (expired, not found, error), showing no one's data.
pub fn message_page(status: StatusCode, chrome: Chrome, title: &str, text: &str) -> HttpResponse {
    respond(status, message_html(&chrome, title, text, None))
}

/// The HTML of a message page; `refresh` reloads it to that URL after 2 s.
pub fn message_html(chrome: &Chrome, title: &str, text: &str, refresh: Option<&str>) -> String {
    render(&MessagePage {
        lang: chrome.lang,
        test_mode: chrome.test_mode,
        title,
        text,
        refresh,
    })
}

pub fn expired_page(lang: Lang, test_mode: bool) -> HttpResponse {
    message_page(
        StatusCode::GONE,
        Chrome { lang, test_mode },
        &lang.t("expired-title"),
        &lang.t("expired-body"),
    )
}

pub fn not_found_page(test_mode: bool) -> HttpResponse {
    let lang = Lang::En;
    message_page(
        StatusCode::NOT_FOUND,
        Chrome { lang, test_mode },
        &lang.t("not-found-title"),
        &lang.t("expired-body"),
    )
}

pub fn error_page(lang: Lang, test_mode: bool, error: &crate::error::ApiError) -> HttpResponse {
    message_page(
        error.status,
        Chrome { lang, test_mode },
        &lang.t("error-title"),
        &lang.t("error-body"),
    )
}
