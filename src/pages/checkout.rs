//! `GET /checkout/{token}` (the hosted checkout page), `POST /checkout/{token}` (pay),
//! `POST /checkout/{token}/confirm` (after the bank's 3-D Secure step) and
//! `GET /checkout/{token}/activation` (where a paid shopper waits for Treefort).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use askama::Template;

use super::{
    error_page, expired_page, message_html, message_page, not_found_page, render as html, respond,
    respond_allowing, see_other, CardView, Chrome,
};
use crate::clock::naive;
use crate::domain::locale::Lang;
use crate::gateway::{BrowserAuthentication, CardEntry, CardInput, CardSubmission};
use crate::services::checkout::{
    self, CheckoutError, CheckoutView, PayOutcome, RetryReason, SwitchView,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CardForm {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    card_expiry: String,
    #[serde(default)]
    card_cvc: String,
    /// Stripe: the SetupIntent the browser confirmed (the card itself never comes here).
    #[serde(default)]
    setup_intent: String,
}

pub async fn show(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match checkout::view(&state, &token).await {
        Ok(view) => checkout_page(&state, &token, &view, StatusCode::OK, None).await,
        Err(e) => error_response(&state, &token, e).await,
    }
}

impl CardForm {
    /// What the browser submitted: the id of a card setup confirmed with the gateway, or our
    /// own card fields (the sandbox's).
    pub fn into_submission(self) -> CardSubmission {
        let setup = self.setup_intent.trim();
        if setup.is_empty() {
            CardSubmission::Fields(CardInput {
                number: self.card_number,
                expiry: self.card_expiry,
                cvc: self.card_cvc,
            })
        } else {
            CardSubmission::Setup(setup.to_string())
        }
    }
}

/// The checkout page with the card entry the gateway asks for (Stripe's card field: its setup is
/// made when the shopper presses the button, at `/checkout/{token}/card-setup`).
async fn checkout_page(
    state: &AppState,
    token: &str,
    view: &CheckoutView,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    if view.switch.is_some() {
        return respond(
            status,
            render(view, state, token, &CardEntry::Fields, error),
        );
    }
    let entry = state.gateway.card_entry();
    respond_allowing(
        status,
        render(view, state, token, &entry, error),
        &origins_for(state, &entry),
    )
}

fn origins_for(state: &AppState, entry: &CardEntry) -> Vec<String> {
    match entry {
        CardEntry::Fields => Vec::new(),
        CardEntry::StripeElement { .. } => state.gateway.page_origins(),
    }
}

pub async fn pay(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: Result<web::Form<CardForm>, actix_web::Error>,
) -> HttpResponse {
    // The link is checked before the body: an unknown or used link shows that page whatever
    // was posted.
    let card = match form {
        Ok(form) => form.into_inner().into_submission(),
        Err(_) => {
            return match checkout::view(&state, &token).await {
                Ok(view) => {
                    let message = view.lang.t("invalid-card");
                    checkout_page(
                        &state,
                        &token,
                        &view,
                        StatusCode::BAD_REQUEST,
                        Some(&message),
                    )
                    .await
                }
                Err(e) => error_response(&state, &token, e).await,
            }
        }
    };
    match checkout::pay(&state, &token, card).await {
        Ok(outcome) => outcome_response(&state, &token, outcome),
        Err(e) => error_response(&state, &token, e).await,
    }
}

/// `POST /checkout/{token}/card-setup`, from the card script when the shopper presses the button
/// (Stripe): `{"clientSecret": …}` of a SetupIntent made for this press, or a JSON refusal with a
/// stable code. Page views never reach the gateway; only this does.
pub async fn card_setup(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    use actix_web::ResponseError;
    match checkout::setup_card(&state, &token).await {
        Ok(secret) => super::client_secret(&secret),
        Err(e) => setup_refusal(e).error_response(),
    }
}

fn setup_refusal(e: CheckoutError) -> crate::error::ApiError {
    use crate::error::ApiError;
    match e {
        CheckoutError::NotFound => {
            ApiError::not_found("checkout_not_found", "no such checkout link")
        }
        CheckoutError::Expired(_) | CheckoutError::Spent(_) => ApiError::gone(
            "checkout_expired",
            "this checkout link can no longer be paid",
        ),
        CheckoutError::Used(_) => ApiError::gone("checkout_completed", "this checkout is paid"),
        CheckoutError::InProgress(_) => ApiError::conflict(
            "payment_in_progress",
            "a payment on this link is in progress",
        ),
        CheckoutError::Retry(..) => {
            ApiError::conflict("checkout_changed", "reload the page and try again")
        }
        CheckoutError::Failed(_, e) => e,
    }
}

/// After the browser's 3-D Secure step: the server reads the payment back from the gateway.
pub async fn confirm(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match checkout::confirm(&state, &token).await {
        Ok(outcome) => outcome_response(&state, &token, outcome),
        Err(e) => error_response(&state, &token, e).await,
    }
}

pub async fn activation(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match checkout::activation(&state, &token).await {
        Ok(outcome) => outcome_response(&state, &token, outcome),
        Err(e) => error_response(&state, &token, e).await,
    }
}

fn outcome_response(state: &AppState, token: &str, outcome: PayOutcome) -> HttpResponse {
    let test_mode = state.gateway.is_test_mode();
    match outcome {
        PayOutcome::Redirect(url) => see_other(&url),
        PayOutcome::BackToCheckout => see_other(&format!("/checkout/{token}")),
        PayOutcome::Authenticate(lang, step) => authenticate_page(state, token, lang, &step),
        PayOutcome::Activating(lang) => {
            // Reload until Treefort has the subscription; the activation route then redirects.
            let refresh = format!("/checkout/{token}/activation");
            respond(
                StatusCode::ACCEPTED,
                message_html(
                    &Chrome { lang, test_mode },
                    &lang.t("activating-title"),
                    &lang.t("activating-body"),
                    Some(&refresh),
                ),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "pages/authenticate.html")]
struct AuthenticatePage<'a> {
    lang: Lang,
    test_mode: bool,
    action: String,
    step: &'a BrowserAuthentication,
    gateway_js: Option<&'a str>,
}

/// "Confirm your payment": runs Stripe.js's 3-D Secure step at once, then posts to `confirm`.
fn authenticate_page(
    state: &AppState,
    token: &str,
    lang: Lang,
    step: &BrowserAuthentication,
) -> HttpResponse {
    let page = AuthenticatePage {
        lang,
        test_mode: state.gateway.is_test_mode(),
        action: format!("/checkout/{token}/confirm"),
        step,
        gateway_js: Some(&step.js_url),
    };
    respond_allowing(StatusCode::OK, html(&page), &state.gateway.page_origins())
}

async fn error_response(state: &AppState, token: &str, error: CheckoutError) -> HttpResponse {
    if let CheckoutError::InProgress(_) = &error {
        if let Some(step) = checkout::pending_authentication(state, token).await {
            return outcome_response(state, token, step);
        }
    }
    let test_mode = state.gateway.is_test_mode();
    let message = |status, lang: Lang, title: &str, text: &str| {
        message_page(
            status,
            Chrome { lang, test_mode },
            &lang.t(title),
            &lang.t(text),
        )
    };
    match error {
        CheckoutError::NotFound => not_found_page(test_mode),
        CheckoutError::Expired(lang) => expired_page(lang, test_mode),
        CheckoutError::Spent(lang) => {
            message(StatusCode::GONE, lang, "expired-title", "too-many-attempts")
        }
        CheckoutError::Used(lang) => message(StatusCode::GONE, lang, "used-title", "used-body"),
        CheckoutError::InProgress(lang) => {
            message(StatusCode::CONFLICT, lang, "error-title", "in-progress")
        }
        CheckoutError::Failed(lang, e) => error_page(lang, test_mode, &e),
        CheckoutError::Retry(view, reason) => {
            let (status, id) = match reason {
                RetryReason::Declined => (StatusCode::PAYMENT_REQUIRED, "declined"),
                RetryReason::InvalidCard(_) => (StatusCode::BAD_REQUEST, "invalid-card"),
                RetryReason::PromoExhausted => (StatusCode::CONFLICT, "promo-exhausted"),
                RetryReason::AlreadySubscribed => (StatusCode::CONFLICT, "already-subscribed"),
                RetryReason::GatewayFailed => (StatusCode::BAD_GATEWAY, "error-body"),
            };
            let text = view.lang.t(id);
            checkout_page(state, token, &view, status, Some(&text)).await
        }
    }
}

struct PromoLine {
    label: String,
    was: String,
    now: String,
}

struct TrialLines {
    length: String,
    ends: String,
    date: String,
    then_price: String,
}

#[derive(Template)]
#[template(path = "pages/checkout.html")]
struct CheckoutPage<'a> {
    lang: Lang,
    test_mode: bool,
    title: String,
    email: &'a str,
    price: String,
    interval: String,
    promo: Option<PromoLine>,
    trial: Option<TrialLines>,
    due_today: String,
    promo_then: Option<String>,
    error: Option<&'a str>,
    card: CardView,
    button: String,
    cancel_url: &'a str,
    gateway_js: Option<&'a str>,
}

fn render(
    view: &CheckoutView,
    state: &AppState,
    token: &str,
    entry: &CardEntry,
    error: Option<&str>,
) -> String {
    if let Some(switch) = &view.switch {
        return render_switch(view, switch, state, error);
    }
    let lang: Lang = view.lang;
    let interval = lang.interval(&view.plan.billing_interval, view.plan.interval_count);
    // The headline is what recurs: the discounted price only if the code discounts every charge.
    let discount_recurs = view
        .promo
        .as_ref()
        .is_some_and(|p| p.discounted_charges().is_none());
    let recurring = if discount_recurs {
        &view.discounted
    } else {
        &view.price
    };
    let promo = view.promo.as_ref().map(|promo| PromoLine {
        label: lang.t_with("promo", &[("code", (&promo.code).into())]),
        was: lang.money(&view.price),
        now: lang.money(&view.discounted),
    });
    let trial = view.trial_ends_at.map(|trial_end| {
        let day = lang.date(naive(trial_end));
        TrialLines {
            length: lang.t_with("trial", &[("n", view.plan.trial_days.into())]),
            ends: lang.t_with("trial-ends", &[("date", (&day).into())]),
            date: day,
            then_price: lang.money(&view.discounted),
        }
    });
    // A code that discounts only some charges: say what the later ones cost. Charges count
    // from the first paid one (today, or at the trial's end).
    let promo_then = view
        .promo
        .as_ref()
        .and_then(|p| p.discounted_charges())
        .filter(|_| view.discounted != view.price)
        .map(|charges| {
            let from = lang.t_with("promo-then", &[("n", (i64::from(charges) + 1).into())]);
            format!(
                "{from}{}{} {interval}",
                lang.t("label-separator"),
                lang.money(&view.price)
            )
        });
    let page = CheckoutPage {
        lang,
        test_mode: state.gateway.is_test_mode(),
        title: lang.t_with("checkout-title", &[("plan", (&view.plan.name).into())]),
        email: &view.session.user_email,
        price: lang.money(recurring),
        interval,
        promo,
        trial,
        due_today: lang.money(&view.due_today()),
        promo_then,
        error,
        card: CardView::of(entry, &format!("/checkout/{token}/card-setup")),
        button: lang.t(if view.trial_ends_at.is_some() {
            "start-trial"
        } else {
            "pay"
        }),
        cancel_url: &view.session.cancel_url,
        gateway_js: match entry {
            CardEntry::StripeElement { js_url, .. } => Some(js_url),
            CardEntry::Fields => None,
        },
    };
    html(&page)
}

#[derive(Template)]
#[template(path = "pages/switch.html")]
struct SwitchPage<'a> {
    lang: Lang,
    test_mode: bool,
    title: String,
    email: &'a str,
    body: String,
    error: Option<&'a str>,
    cancel_url: &'a str,
}

/// The page of a plan switch: what changes and when; nothing to pay today, so no card form.
fn render_switch(
    view: &CheckoutView,
    switch: &SwitchView,
    state: &AppState,
    error: Option<&str>,
) -> String {
    let lang = view.lang;
    let price = format!(
        "{} {}",
        lang.money(&view.discounted),
        lang.interval(&view.plan.billing_interval, view.plan.interval_count)
    );
    let date = lang.date(switch.starts_at);
    let body = lang.t_with(
        "switch-body",
        &[
            ("current", (&switch.current_plan_name).into()),
            ("date", (&date).into()),
            ("plan", (&view.plan.name).into()),
            ("price", (&price).into()),
        ],
    );
    html(&SwitchPage {
        lang,
        test_mode: state.gateway.is_test_mode(),
        title: lang.t_with("switch-title", &[("plan", (&view.plan.name).into())]),
        email: &view.session.user_email,
        body,
        error,
        cancel_url: &view.session.cancel_url,
    })
}
