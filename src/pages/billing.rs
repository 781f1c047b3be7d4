//! `GET /billing/{token}` (the billing portal) and its forms: `POST /billing/{token}/cancel`,
//! `/resume`, `/card` (replace the card) and `/confirm-payment` (after the bank's 3-D Secure).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{
    card_form_parts, date, error_page, escape, expired_page, gateway_scripts, layout,
    not_found_page, respond_allowing,
};
use crate::domain::locale::Texts;
use crate::gateway::CardEntry;
use crate::models::payments;
use crate::models::subscriptions::Status;
use crate::services::naive;
use crate::services::portal::{
    self, PortalAction, PortalBrowser, PortalError, PortalSubscription, PortalView,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SubscriptionForm {
    subscription_id: i64,
}

#[derive(Deserialize)]
pub struct PaymentForm {
    payment_id: i64,
}

pub async fn show(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match portal::view(&state, &token).await {
        Ok(view) => page(&state, &view, &token, StatusCode::OK, None).await,
        Err(e) => error_response(&state, e),
    }
}

/// The portal page, with what the gateway needs in the browser (card field, 3-D Secure).
async fn page(
    state: &AppState,
    view: &PortalView,
    token: &str,
    status: StatusCode,
    notice: Option<Result<&str, &str>>,
) -> HttpResponse {
    let browser = portal::browser_steps(state, view).await;
    let uses_gateway_js = browser.confirm_payment.is_some()
        || matches!(browser.card_entry, Some(CardEntry::StripeElement { .. }));
    let origins = if uses_gateway_js {
        state.gateway.page_origins()
    } else {
        Vec::new()
    };
    respond_allowing(
        status,
        render(view, &browser, state, token, notice),
        &origins,
    )
}

pub async fn confirm_payment(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: FormResult<PaymentForm>,
) -> HttpResponse {
    act_on(
        &state,
        &token,
        form,
        |f| PortalAction::ConfirmPayment(f.payment_id),
        |t| (t.payment_confirmed, t.declined),
    )
    .await
}

pub async fn cancel(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: FormResult<SubscriptionForm>,
) -> HttpResponse {
    act_on(
        &state,
        &token,
        form,
        |f| PortalAction::Cancel(f.subscription_id),
        |t| (t.canceled_ok, t.cancel_failed),
    )
    .await
}

pub async fn resume(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: FormResult<SubscriptionForm>,
) -> HttpResponse {
    act_on(
        &state,
        &token,
        form,
        |f| PortalAction::Resume(f.subscription_id),
        |t| (t.resumed_ok, t.error_body),
    )
    .await
}

pub async fn replace_card(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: FormResult<super::checkout::CardForm>,
) -> HttpResponse {
    act_on(
        &state,
        &token,
        form,
        |f| PortalAction::ReplaceCard(f.into_submission()),
        |t| (t.card_replaced, t.invalid_card),
    )
    .await
}

/// Runs the portal action a readable form asks for; an unreadable one gets `malformed`.
async fn act_on<T>(
    state: &AppState,
    token: &str,
    form: FormResult<T>,
    action: impl FnOnce(T) -> PortalAction,
    messages: fn(&Texts) -> (&'static str, &'static str),
) -> HttpResponse {
    match form {
        Ok(form) => act(state, token, action(form.into_inner()), messages).await,
        Err(_) => malformed(state, token).await,
    }
}

/// A form whose body could not be read as the form: the token is checked first (an unknown or
/// expired link shows that page, whatever was posted), then 400.
type FormResult<T> = Result<web::Form<T>, actix_web::Error>;

async fn malformed(state: &AppState, token: &str) -> HttpResponse {
    match portal::view(state, token).await {
        Ok(view) => {
            let t = view.lang.texts();
            page(
                state,
                &view,
                token,
                StatusCode::BAD_REQUEST,
                Some(Err(t.error_body)),
            )
            .await
        }
        Err(e) => error_response(state, e),
    }
}

/// Runs a portal form and shows the portal with what happened: confirmed only after Treefort's 2xx.
async fn act(
    state: &AppState,
    token: &str,
    action: PortalAction,
    messages: fn(&Texts) -> (&'static str, &'static str),
) -> HttpResponse {
    match portal::act(state, token, action).await {
        Ok((view, result)) => {
            let (ok, failed) = messages(view.lang.texts());
            match result {
                Ok(()) => page(state, &view, token, StatusCode::OK, Some(Ok(ok))).await,
                Err(e) => {
                    let message = if e.code == "card_declined" {
                        view.lang.texts().declined
                    } else {
                        failed
                    };
                    page(state, &view, token, e.status, Some(Err(message))).await
                }
            }
        }
        Err(e) => error_response(state, e),
    }
}

fn error_response(state: &AppState, error: PortalError) -> HttpResponse {
    let test_mode = state.gateway.is_test_mode();
    match error {
        PortalError::NotFound => not_found_page(test_mode),
        PortalError::Expired(lang) => expired_page(lang, test_mode),
        PortalError::Failed(lang, e) => error_page(lang, test_mode, &e),
    }
}

fn render(
    view: &PortalView,
    browser: &PortalBrowser,
    state: &AppState,
    token: &str,
    notice: Option<Result<&str, &str>>,
) -> String {
    let lang = view.lang;
    let t = lang.texts();
    let fmt = lang.number_format();
    let now = naive(state.clock.now());
    let notice = notice.map(super::notice).unwrap_or_default();
    let mut subs = String::new();
    for PortalSubscription {
        subscription: sub,
        plan,
        next_charge,
    } in &view.subscriptions
    {
        let name = plan
            .as_ref()
            .map_or_else(|| format!("#{}", sub.plan_id), |p| p.name.clone());
        // What this subscriber pays: their own terms, kept when the plan was edited since.
        let price = plan.as_ref().map(|p| {
            let terms = sub.terms(p);
            format!(
                "{} {}",
                terms.price.format(&fmt),
                lang.interval(&terms.billing_interval, terms.interval_count)
            )
        });
        let status = sub.status(now);
        let grace_days = plan.as_ref().map_or(0, |p| p.grace_days);
        let (label, detail) = match status {
            Status::Trialing => (
                t.status_trialing,
                t.trial_ends
                    .replace("{date}", &date(sub.current_period_ends_at)),
            ),
            Status::Active => (
                t.status_active,
                t.paid_until
                    .replace("{date}", &date(sub.current_period_ends_at)),
            ),
            Status::PastDue => (
                t.status_past_due,
                t.past_due_detail.replace(
                    "{date}",
                    &date(sub.current_period_ends_at + chrono::TimeDelta::days(grace_days.into())),
                ),
            ),
            Status::Canceled => (
                t.status_canceled,
                t.access_until
                    .replace("{date}", &date(sub.current_period_ends_at)),
            ),
            Status::Ended => (
                t.status_ended,
                sub.deactivated_at.map(date).unwrap_or_default(),
            ),
        };
        let next = match next_charge {
            Some((amount, at, next_plan)) => {
                let mut line = t
                    .next_charge
                    .replace("{amount}", &amount.format(&fmt))
                    .replace("{date}", &date(*at));
                if next_plan.id != sub.plan_id {
                    line = format!(
                        "{line} — {}",
                        t.plan_change
                            .replace("{plan}", &next_plan.name)
                            .replace("{date}", &date(*at))
                    );
                }
                format!("<p class=\"muted\">{}</p>", escape(&line))
            }
            None => String::new(),
        };
        let form = |path: &str, label: &str, class: &str| {
            format!(
                "<form method=\"post\" action=\"/billing/{}/{path}\"><input type=\"hidden\" name=\"subscription_id\" value=\"{}\">\
                 <button class=\"{class}\" type=\"submit\">{}</button></form>",
                escape(token),
                sub.id,
                escape(label)
            )
        };
        let button = match status {
            Status::Trialing | Status::Active | Status::PastDue => {
                form("cancel", t.cancel_subscription, "secondary")
            }
            Status::Canceled if sub.current_period_ends_at > now => {
                form("resume", t.resume, "secondary resume")
            }
            _ => String::new(),
        };
        subs.push_str(&format!(
            "<div class=\"subscription\"><h2>{}</h2><p>{}</p><p><strong>{}</strong> — {}</p>{}{}</div>",
            escape(&name),
            escape(&price.unwrap_or_default()),
            escape(label),
            escape(&detail),
            next,
            button
        ));
    }
    if subs.is_empty() {
        subs = format!("<p>{}</p>", escape(t.no_subscriptions));
    }
    let mut scripts = String::new();
    let card = match (
        view.customer.as_ref().and_then(|c| {
            Some(format!(
                "{} •••• {}",
                c.card_brand.as_deref().filter(|b| !b.is_empty())?,
                c.card_last4.as_deref().filter(|l| !l.is_empty())?
            ))
        }),
        &browser.card_entry,
    ) {
        (Some(current), Some(entry)) => {
            let (form_data, fields) = card_form_parts(entry, t);
            if let CardEntry::StripeElement { js_url, .. } = entry {
                scripts = gateway_scripts(js_url);
            }
            format!(
                "<div class=\"card\"><h2>{}</h2><p>{}</p><details><summary>{}</summary>\
                 <form method=\"post\" action=\"/billing/{}/card\"{form_data}>{fields}<button type=\"submit\">{}</button></form></details></div>",
                escape(t.payment_method),
                escape(&current),
                escape(t.replace_card),
                escape(token),
                escape(t.save_card)
            )
        }
        (Some(current), None) => format!(
            "<div class=\"card\"><h2>{}</h2><p>{}</p></div>",
            escape(t.payment_method),
            escape(&current)
        ),
        (None, _) => String::new(),
    };
    let confirm = match &browser.confirm_payment {
        Some((payment_id, step)) => {
            scripts = gateway_scripts(&step.js_url);
            format!(
                "<div class=\"notice error\" role=\"alert\"><p>{}</p>\
                 <form method=\"post\" action=\"/billing/{}/confirm-payment\"{}>\
                 <input type=\"hidden\" name=\"payment_id\" value=\"{}\"><button type=\"submit\">{}</button></form></div>",
                escape(t.confirm_payment_needed),
                escape(token),
                super::authentication_attributes(step),
                payment_id,
                escape(t.confirm_payment)
            )
        }
        None => String::new(),
    };
    let rows: String = view
        .payments
        .iter()
        .map(|p| {
            let status = if p.disputed_at.is_some() {
                t.disputed
            } else if p.refunded_amount > 0 && p.refunded_amount >= p.amount {
                t.refunded
            } else if p.refunded_amount > 0 {
                t.partially_refunded
            } else if p.status == payments::SUCCEEDED {
                t.paid
            } else {
                t.payment_declined
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&date(p.created_at)),
                escape(&p.money().format(&fmt)),
                escape(status)
            )
        })
        .collect();
    let payments = if rows.is_empty() {
        format!("<p>{}</p>", escape(t.no_payments))
    } else {
        format!(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table>",
            escape(t.date),
            escape(t.amount),
            escape(t.status)
        )
    };
    let body = format!(
        "<div class=\"card\"><h1>{title}</h1><p class=\"muted\">{account}: {email}</p></div>{notice}{confirm}\
         <div class=\"card\">{subs}</div>{card}<div class=\"card\"><h2>{payments_title}</h2>{payments}</div>\
         <p><a href=\"{back}\">{back_label}</a></p>",
        title = escape(t.portal_title),
        account = escape(t.account),
        email = escape(&view.session.user_email),
        payments_title = escape(t.payments),
        back = escape(&view.session.back_url),
        back_label = escape(t.continue_),
    );
    layout(
        lang,
        t.portal_title,
        state.gateway.is_test_mode(),
        &scripts,
        &body,
    )
}
