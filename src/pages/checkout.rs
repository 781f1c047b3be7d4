//! `GET /checkout/{token}` (the hosted checkout page), `POST /checkout/{token}` (pay),
//! `POST /checkout/{token}/confirm` (after the bank's 3-D Secure step) and
//! `GET /checkout/{token}/activation` (where a paid shopper waits for Treefort).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{
    card_form_parts, date, error_page, escape, expired_page, gateway_scripts, layout, message_page,
    not_found_page, notice, respond, respond_allowing, see_other,
};
use crate::domain::locale::Lang;
use crate::gateway::{BrowserAuthentication, CardEntry, CardInput, CardSubmission};
use crate::services::checkout::{
    self, CheckoutError, CheckoutView, PayOutcome, RetryReason, SwitchView,
};
use crate::services::naive;
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
        Ok(view) => checkout_page(&state, &view, StatusCode::OK, None).await,
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

/// The checkout page with the card entry the gateway asks for (a fresh Stripe SetupIntent).
async fn checkout_page(
    state: &AppState,
    view: &CheckoutView,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    if view.switch.is_some() {
        return respond(status, render(view, state, &CardEntry::Fields, error));
    }
    match checkout::card_entry(state, view).await {
        Ok(entry) => respond_allowing(
            status,
            render(view, state, &entry, error),
            &origins_for(state, &entry),
        ),
        Err(e) => error_page(view.lang, state.gateway.is_test_mode(), &e),
    }
}

fn origins_for(state: &AppState, entry: &CardEntry) -> Vec<String> {
    match entry {
        CardEntry::Fields => Vec::new(),
        CardEntry::StripeElement { .. } => state.gateway.page_origins(),
    }
}

/// The three card inputs, shared by checkout and the portal's "replace card".
pub fn card_fields(t: &crate::domain::locale::Texts) -> String {
    format!(
        "<label for=\"card_number\">{}</label>\
         <input id=\"card_number\" name=\"card_number\" inputmode=\"numeric\" autocomplete=\"cc-number\" required maxlength=\"23\">\
         <div class=\"row\"><div><label for=\"card_expiry\">{}</label>\
         <input id=\"card_expiry\" name=\"card_expiry\" autocomplete=\"cc-exp\" placeholder=\"MM/YY\" required maxlength=\"7\"></div>\
         <div><label for=\"card_cvc\">{}</label>\
         <input id=\"card_cvc\" name=\"card_cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" required maxlength=\"4\"></div></div>",
        escape(t.card_number),
        escape(t.card_expiry),
        escape(t.card_cvc)
    )
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
                    let t = view.lang.texts();
                    checkout_page(&state, &view, StatusCode::BAD_REQUEST, Some(t.invalid_card))
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
    match outcome {
        PayOutcome::Redirect(url) => see_other(&url),
        PayOutcome::BackToCheckout => see_other(&format!("/checkout/{}", escape(token))),
        PayOutcome::Authenticate(lang, step) => authenticate_page(state, token, lang, &step),
        PayOutcome::Activating(lang) => {
            let t = lang.texts();
            // Reload until Treefort has the subscription; the activation route then redirects.
            let refresh = format!(
                "<meta http-equiv=\"refresh\" content=\"2;url=/checkout/{}/activation\">",
                escape(token)
            );
            let body = format!(
                "<div class=\"card\"><h1>{}</h1><p>{}</p></div>",
                escape(t.activating_title),
                escape(t.activating_body)
            );
            respond(
                StatusCode::ACCEPTED,
                layout(
                    lang,
                    t.activating_title,
                    state.gateway.is_test_mode(),
                    &refresh,
                    &body,
                ),
            )
        }
    }
}

/// "Confirm your payment": runs Stripe.js's 3-D Secure step at once, then posts to `confirm`.
fn authenticate_page(
    state: &AppState,
    token: &str,
    lang: Lang,
    step: &BrowserAuthentication,
) -> HttpResponse {
    let t = lang.texts();
    let body = format!(
        "<div class=\"card\"><h1>{title}</h1><p>{text}</p>\
         <form method=\"post\" action=\"/checkout/{token}/confirm\"{attributes} data-auto=\"yes\">\
         <button type=\"submit\">{button}</button></form></div>",
        title = escape(t.authenticate_title),
        text = escape(t.authenticate_body),
        token = escape(token),
        attributes = super::authentication_attributes(step),
        button = escape(t.confirm_payment),
    );
    respond_allowing(
        StatusCode::OK,
        layout(
            lang,
            t.authenticate_title,
            state.gateway.is_test_mode(),
            &gateway_scripts(&step.js_url),
            &body,
        ),
        &state.gateway.page_origins(),
    )
}

async fn error_response(state: &AppState, token: &str, error: CheckoutError) -> HttpResponse {
    if let CheckoutError::InProgress(_) = &error {
        if let Some(step) = checkout::pending_authentication(state, token).await {
            return outcome_response(state, token, step);
        }
    }
    let test_mode = state.gateway.is_test_mode();
    match error {
        CheckoutError::NotFound => not_found_page(test_mode),
        CheckoutError::Expired(lang) => expired_page(lang, test_mode),
        CheckoutError::Spent(lang) => {
            let t = lang.texts();
            message_page(
                StatusCode::GONE,
                lang,
                test_mode,
                t.expired_title,
                t.too_many_attempts,
            )
        }
        CheckoutError::Used(lang) => {
            let t = lang.texts();
            message_page(StatusCode::GONE, lang, test_mode, t.used_title, t.used_body)
        }
        CheckoutError::InProgress(lang) => {
            let t = lang.texts();
            message_page(
                StatusCode::CONFLICT,
                lang,
                test_mode,
                t.error_title,
                t.in_progress,
            )
        }
        CheckoutError::Failed(lang, e) => error_page(lang, test_mode, &e),
        CheckoutError::Retry(view, reason) => {
            let t = view.lang.texts();
            let (status, message) = match reason {
                RetryReason::Declined => (StatusCode::PAYMENT_REQUIRED, t.declined),
                RetryReason::InvalidCard(_) => (StatusCode::BAD_REQUEST, t.invalid_card),
                RetryReason::PromoExhausted => (StatusCode::CONFLICT, t.promo_exhausted),
                RetryReason::AlreadySubscribed => (StatusCode::CONFLICT, t.already_subscribed),
                RetryReason::GatewayFailed => (StatusCode::BAD_GATEWAY, t.error_body),
            };
            checkout_page(state, &view, status, Some(message)).await
        }
    }
}

fn render(view: &CheckoutView, state: &AppState, entry: &CardEntry, error: Option<&str>) -> String {
    if let Some(switch) = &view.switch {
        return render_switch(view, switch, state, error);
    }
    let lang: Lang = view.lang;
    let t = lang.texts();
    let fmt = lang.number_format();
    let title = t.checkout_title.replace("{plan}", &view.plan.name);
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
    let mut summary = format!(
        "<p class=\"price\">{} <span class=\"muted\">{}</span></p>",
        escape(&recurring.format(&fmt)),
        escape(&interval)
    );
    if let Some(promo) = &view.promo {
        summary.push_str(&format!(
            "<p class=\"promo\">{}: <s>{}</s> → <strong>{}</strong></p>",
            escape(&t.promo.replace("{code}", &promo.code)),
            escape(&view.price.format(&fmt)),
            escape(&view.discounted.format(&fmt)),
        ));
    }
    if let Some(trial_end) = view.trial_ends_at {
        summary.push_str(&format!(
            "<p class=\"trial\">{} — {}</p><p>{}: <strong>{}</strong></p><p class=\"muted\">{} ({}): {} {}</p>",
            escape(&t.trial.replace("{n}", &view.plan.trial_days.to_string())),
            escape(&t.trial_ends.replace("{date}", &date(naive(trial_end)))),
            escape(t.due_today),
            escape(&view.due_today().format(&fmt)),
            escape(t.then),
            escape(&date(naive(trial_end))),
            escape(&view.discounted.format(&fmt)),
            escape(&interval),
        ));
    } else {
        summary.push_str(&format!(
            "<p>{}: <strong>{}</strong></p>",
            escape(t.due_today),
            escape(&view.due_today().format(&fmt))
        ));
    }
    // A code that discounts only some charges: say what the later ones cost.
    if let Some(charges) = view.promo.as_ref().and_then(|p| p.discounted_charges()) {
        // Charges count from the first paid one (today, or at the trial's end).
        let full_from = charges + 1;
        if view.discounted != view.price {
            let later = t.promo_then.replace("{n}", &full_from.to_string());
            summary.push_str(&format!(
                "<p class=\"muted\">{}: {} {}</p>",
                escape(&later),
                escape(&view.price.format(&fmt)),
                escape(&interval)
            ));
        }
    }
    let notice = error.map(|m| notice(Err(m))).unwrap_or_default();
    let sandbox_hint = if state.gateway.is_test_mode() {
        format!("<p class=\"muted\">{}</p>", escape(t.sandbox_cards))
    } else {
        String::new()
    };
    let (form_data, fields) = card_form_parts(entry, t);
    let scripts = match entry {
        CardEntry::StripeElement { js_url, .. } => gateway_scripts(js_url),
        CardEntry::Fields => String::new(),
    };
    let button = if view.trial_ends_at.is_some() {
        t.start_trial
    } else {
        t.pay
    };
    let body = format!(
        "<div class=\"card\"><h1>{title}</h1><p class=\"muted\">{account}: {email}</p>{summary}</div>\
         {notice}<form class=\"card\" method=\"post\" action=\"\" autocomplete=\"on\"{form_data}>{fields}\
         <button type=\"submit\">{button}</button>{sandbox_hint}</form>\
         <p><a href=\"{cancel}\">{back}</a></p>",
        title = escape(&title),
        account = escape(t.account),
        email = escape(&view.session.user_email),
        button = escape(button),
        cancel = escape(&view.session.cancel_url),
        back = escape(t.back_to_app),
    );
    layout(lang, &title, state.gateway.is_test_mode(), &scripts, &body)
}

/// The page of a plan switch: what changes and when; nothing to pay today, so no card form.
fn render_switch(
    view: &CheckoutView,
    switch: &SwitchView,
    state: &AppState,
    error: Option<&str>,
) -> String {
    let lang = view.lang;
    let t = lang.texts();
    let fmt = lang.number_format();
    let title = t.switch_title.replace("{plan}", &view.plan.name);
    let price = format!(
        "{} {}",
        view.discounted.format(&fmt),
        lang.interval(&view.plan.billing_interval, view.plan.interval_count)
    );
    let body_text = t
        .switch_body
        .replace("{current}", &switch.current_plan_name)
        .replace("{date}", &date(switch.starts_at))
        .replace("{plan}", &view.plan.name)
        .replace("{price}", &price);
    let notice = error.map(|m| notice(Err(m))).unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p class=\"muted\">{}: {}</p><p>{}</p></div>{notice}\
         <form class=\"card\" method=\"post\" action=\"\"><button type=\"submit\">{}</button></form>\
         <p><a href=\"{}\">{}</a></p>",
        escape(&title),
        escape(t.account),
        escape(&view.session.user_email),
        escape(&body_text),
        escape(t.switch_button),
        escape(&view.session.cancel_url),
        escape(t.back_to_app),
    );
    layout(lang, &title, state.gateway.is_test_mode(), "", &body)
}
