//! Shopper pages: the hosted checkout and the billing portal. HTML is built here with every value
//! escaped; pages carry the token in their URL, so they are never cached and never leak it through
//! a Referer header to another site (`Referrer-Policy: same-origin`: our own forms still carry
//! our origin, which is how a cross-site form post is told apart and refused).

pub mod billing;
pub mod checkout;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::domain::locale::{Lang, Texts};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}\
main{max-width:32rem;margin:0 auto;padding:1.5rem 1rem}\
.card{background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.08);margin-bottom:1rem}\
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:0 0 .6rem}\
.test-mode{background:#fff4d6;border:1px solid #e8c15a;color:#5c4400;padding:.6rem .8rem;border-radius:8px;margin-bottom:1rem;font-weight:600}\
.price{font-size:1.6rem;font-weight:700;margin:.2rem 0}.muted{color:#5f6675}s{color:#8a909c}\
.notice{padding:.7rem .8rem;border-radius:8px;margin-bottom:1rem}.error{background:#fde8e8;color:#8a1c1c}.ok{background:#e4f6ea;color:#17572f}\
label{display:block;font-size:.9rem;margin:.8rem 0 .3rem}\
input{width:100%;box-sizing:border-box;font-size:1rem;padding:.65rem;border:1px solid #c9ced8;border-radius:8px}\
.row{display:flex;gap:.8rem}.row>div{flex:1}\
button{width:100%;margin-top:1.2rem;padding:.8rem;font-size:1rem;font-weight:600;border:0;border-radius:8px;background:#2f5bea;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#a02020;border:1px solid #a02020;width:auto;padding:.5rem .9rem;margin-top:.6rem}\
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.4rem .2rem;border-bottom:1px solid #eceef2;font-size:.95rem}\
a{color:#2f5bea}dl{margin:.4rem 0}dt{font-weight:600}dd{margin:0 0 .4rem}\
.card-element{padding:.65rem;border:1px solid #c9ced8;border-radius:8px;background:#fff}.card-element input{width:auto;border:0;padding:.2rem}\
button:disabled{opacity:.6;cursor:wait}";

/// A whole page. `extra_head` is trusted markup (e.g. a meta refresh built from escaped parts).
pub fn layout(lang: Lang, title: &str, test_mode: bool, extra_head: &str, body: &str) -> String {
    let banner = if test_mode {
        format!(
            "<div class=\"test-mode\" role=\"status\">{}</div>",
            escape(lang.texts().test_mode)
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex,nofollow\"><title>{title}</title>{extra_head}\
         <style>{CSS}</style></head><body><main>{banner}{body}</main></body></html>",
        lang = lang.code(),
        title = escape(title),
    )
}

/// Sends a page with the headers every token-bearing page needs.
pub fn respond(status: StatusCode, html: String) -> HttpResponse {
    respond_allowing(status, html, &[])
}

/// `respond`, for a page that runs the payment gateway's script: scripts from this origin (our
/// card.js) and from `origins`, which may also be framed and called (Stripe.js, 3-D Secure).
pub fn respond_allowing(status: StatusCode, html: String, origins: &[String]) -> HttpResponse {
    let csp = if origins.is_empty() {
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
            .to_string()
    } else {
        let o = origins.join(" ");
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self' {o}; frame-src {o}; \
             connect-src {o}; img-src {o}; frame-ancestors 'none'; base-uri 'none'"
        )
    };
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
    let t = Lang::En.texts();
    message_page(
        StatusCode::TOO_MANY_REQUESTS,
        Lang::En,
        test_mode,
        t.error_title,
        "Too many requests from your network. Please wait a moment and try again.",
    )
}

/// 403 for a cross-site form post: nothing was done.
pub fn cross_site_page(test_mode: bool) -> HttpResponse {
    let t = Lang::En.texts();
    message_page(
        StatusCode::FORBIDDEN,
        Lang::En,
        test_mode,
        t.error_title,
        "This form was sent from another site, so nothing was done. Open the link from the app again.",
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

/// The scripts a page with the gateway's own card field or 3-D Secure step loads.
pub fn gateway_scripts(js_url: &str) -> String {
    format!(
        "<script src=\"{}\"></script><script src=\"/assets/card.js\" defer></script>",
        escape(js_url)
    )
}

/// The attributes that make a form run Stripe.js's 3-D Secure step before it posts.
pub fn authentication_attributes(step: &crate::gateway::BrowserAuthentication) -> String {
    let card = step
        .payment_method
        .as_deref()
        .map(|pm| format!(" data-payment-method=\"{}\"", escape(pm)))
        .unwrap_or_default();
    format!(
        " data-stripe-key=\"{}\" data-stripe-payment=\"{}\"{card}",
        escape(&step.publishable_key),
        escape(&step.client_secret)
    )
}

/// A card form's inputs, as the gateway asks for them: our own fields (the sandbox), or the
/// gateway's card field with the setup it confirms (Stripe). `data` is extra markup for the form
/// element itself, `fields` the markup inside it.
pub fn card_form_parts(entry: &crate::gateway::CardEntry, t: &Texts) -> (String, String) {
    match entry {
        crate::gateway::CardEntry::Fields => (String::new(), checkout::card_fields(t)),
        crate::gateway::CardEntry::StripeElement {
            publishable_key,
            client_secret,
            ..
        } => (
            format!(
                " data-stripe-key=\"{}\" data-stripe-setup=\"{}\" data-error-text=\"{}\"",
                escape(publishable_key),
                escape(client_secret),
                escape(t.invalid_card)
            ),
            format!(
                "<label for=\"card-element\">{}</label><div id=\"card-element\" class=\"card-element\" data-card-element></div>\
                 <input type=\"hidden\" name=\"setup_intent\" value=\"\">\
                 <div class=\"notice error\" role=\"alert\" data-card-error hidden></div>",
                escape(t.card)
            ),
        ),
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
pub fn message_page(
    status: StatusCode,
    lang: Lang,
    test_mode: bool,
    title: &str,
    text: &str,
) -> HttpResponse {
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{}</p></div>",
        escape(title),
        escape(text)
    );
    respond(status, layout(lang, title, test_mode, "", &body))
}

pub fn expired_page(lang: Lang, test_mode: bool) -> HttpResponse {
    let t = lang.texts();
    message_page(
        StatusCode::GONE,
        lang,
        test_mode,
        t.expired_title,
        t.expired_body,
    )
}

pub fn not_found_page(test_mode: bool) -> HttpResponse {
    let t = Lang::En.texts();
    message_page(
        StatusCode::NOT_FOUND,
        Lang::En,
        test_mode,
        t.not_found_title,
        t.expired_body,
    )
}

pub fn error_page(lang: Lang, test_mode: bool, error: &crate::error::ApiError) -> HttpResponse {
    let t: &Texts = lang.texts();
    message_page(error.status, lang, test_mode, t.error_title, t.error_body)
}

/// A confirmation (`Ok`) or error (`Err`) box above a page's content.
pub fn notice(message: Result<&str, &str>) -> String {
    match message {
        Ok(m) => format!(
            "<div class=\"notice ok\" role=\"status\">{}</div>",
            escape(m)
        ),
        Err(m) => format!(
            "<div class=\"notice error\" role=\"alert\">{}</div>",
            escape(m)
        ),
    }
}

/// Dates on pages: ISO 8601 (YYYY-MM-DD), unambiguous in every locale.
pub fn date(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d").to_string()
}
