//! `GET /billing/{token}` (the billing portal) and its forms: `POST /billing/{token}/cancel`,
//! `/resume`, `/card` (replace the card) and `/confirm-payment` (after the bank's 3-D Secure).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use serde::Deserialize;

use askama::Template;

use super::{error_page, expired_page, not_found_page, render as html, respond_allowing, CardView};
use crate::clock::naive;
use crate::domain::locale::Lang;
use crate::gateway::{BrowserAuthentication, CardEntry};
use crate::models::payments::{self, Payment};
use crate::models::subscriptions::Status;
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
    notice: Option<Result<String, String>>,
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
        ("payment-confirmed", "declined"),
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
        ("canceled-ok", "cancel-failed"),
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
        ("resumed-ok", "error-body"),
    )
    .await
}

/// `POST /billing/{token}/card-setup`, from the card script when the card holder presses "save
/// card" (Stripe): `{"clientSecret": …}` of a SetupIntent made for this press, or a JSON refusal.
pub async fn card_setup(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    use actix_web::ResponseError;
    match portal::setup_card(&state, &token).await {
        Ok(secret) => super::client_secret(&secret),
        Err(PortalError::NotFound) => {
            crate::error::ApiError::not_found("portal_not_found", "no such billing link")
                .error_response()
        }
        Err(PortalError::Expired(_)) => {
            crate::error::ApiError::gone("portal_expired", "this billing link has expired")
                .error_response()
        }
        Err(PortalError::Failed(_, e)) => e.error_response(),
    }
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
        ("card-replaced", "invalid-card"),
    )
    .await
}

/// Runs the portal action a readable form asks for; an unreadable one gets `malformed`.
async fn act_on<T>(
    state: &AppState,
    token: &str,
    form: FormResult<T>,
    action: impl FnOnce(T) -> PortalAction,
    messages: (&'static str, &'static str),
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
            let message = view.lang.t("error-body");
            page(
                state,
                &view,
                token,
                StatusCode::BAD_REQUEST,
                Some(Err(message)),
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
    (ok, failed): (&'static str, &'static str),
) -> HttpResponse {
    match portal::act(state, token, action).await {
        Ok((view, result)) => match result {
            Ok(()) => {
                let message = view.lang.t(ok);
                page(state, &view, token, StatusCode::OK, Some(Ok(message))).await
            }
            Err(e) => {
                let id = if e.code == "card_declined" {
                    "declined"
                } else {
                    failed
                };
                let message = view.lang.t(id);
                page(state, &view, token, e.status, Some(Err(message))).await
            }
        },
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

struct Notice {
    ok: bool,
    text: String,
}

struct Action {
    path: &'static str,
    label: String,
    class: &'static str,
}

struct SubscriptionRow {
    id: i64,
    name: String,
    price: String,
    label: String,
    detail: String,
    next: Option<String>,
    action: Option<Action>,
}

struct Confirm<'a> {
    payment_id: i64,
    step: &'a BrowserAuthentication,
}

struct PaymentRow {
    date: String,
    amount: String,
    status: String,
}

#[derive(Template)]
#[template(path = "pages/portal.html")]
struct PortalPage<'a> {
    lang: Lang,
    test_mode: bool,
    token: &'a str,
    email: &'a str,
    notice: Option<Notice>,
    confirm: Option<Confirm<'a>>,
    subscriptions: Vec<SubscriptionRow>,
    card_on_file: Option<String>,
    replace: Option<CardView>,
    payments: Vec<PaymentRow>,
    back_url: &'a str,
    gateway_js: Option<&'a str>,
}

fn render(
    view: &PortalView,
    browser: &PortalBrowser,
    state: &AppState,
    token: &str,
    notice: Option<Result<String, String>>,
) -> String {
    let lang = view.lang;
    let now = naive(state.clock.now());
    let subscriptions = view
        .subscriptions
        .iter()
        .map(|row| subscription_row(row, lang, now))
        .collect();
    let card_on_file = view.customer.as_ref().and_then(|c| {
        Some(format!(
            "{} •••• {}",
            c.card_brand.as_deref().filter(|b| !b.is_empty())?,
            c.card_last4.as_deref().filter(|l| !l.is_empty())?
        ))
    });
    let replace = card_on_file
        .as_ref()
        .and(browser.card_entry.as_ref())
        .map(|entry| CardView::of(entry, &format!("/billing/{token}/card-setup")));
    let mut gateway_js = match &browser.card_entry {
        Some(CardEntry::StripeElement { js_url, .. }) if card_on_file.is_some() => {
            Some(js_url.as_str())
        }
        _ => None,
    };
    let confirm = browser.confirm_payment.as_ref().map(|(payment_id, step)| {
        gateway_js = Some(&step.js_url);
        Confirm {
            payment_id: *payment_id,
            step,
        }
    });
    let payments = view.payments.iter().map(|p| payment_row(p, lang)).collect();
    html(&PortalPage {
        lang,
        test_mode: state.gateway.is_test_mode(),
        token,
        email: &view.session.user_email,
        notice: notice.map(|n| match n {
            Ok(text) => Notice { ok: true, text },
            Err(text) => Notice { ok: false, text },
        }),
        confirm,
        subscriptions,
        card_on_file,
        replace,
        payments,
        back_url: &view.session.back_url,
        gateway_js,
    })
}

/// One subscription as the portal lists it: its plan and price (the subscriber's own terms), its
/// status in words, the next charge, and what the shopper may do.
fn subscription_row(row: &PortalSubscription, lang: Lang, now: NaiveDateTime) -> SubscriptionRow {
    let PortalSubscription {
        subscription: sub,
        plan,
        next_charge,
    } = row;
    let date = |at: NaiveDateTime| lang.date(at);
    let with_date = |id: &str, at: NaiveDateTime| lang.t_with(id, &[("date", (&date(at)).into())]);
    let name = plan
        .as_ref()
        .map_or_else(|| format!("#{}", sub.plan_id), |p| p.name.clone());
    // What this subscriber pays: their own terms, kept when the plan was edited since.
    let price = plan.as_ref().map(|p| {
        let terms = sub.terms(p);
        format!(
            "{} {}",
            lang.money(&terms.price),
            lang.interval(&terms.billing_interval, terms.interval_count)
        )
    });
    let status = sub.status(now);
    let grace_days = plan.as_ref().map_or(0, |p| p.grace_days);
    let period_end = sub.current_period_ends_at;
    let (label, detail) = match status {
        Status::Trialing => ("status-trialing", with_date("trial-ends", period_end)),
        Status::Active => ("status-active", with_date("paid-until", period_end)),
        Status::PastDue => (
            "status-past-due",
            with_date(
                "past-due-detail",
                period_end + chrono::TimeDelta::days(grace_days.into()),
            ),
        ),
        Status::Canceled => ("status-canceled", with_date("access-until", period_end)),
        Status::Ended => (
            "status-ended",
            sub.deactivated_at.map(date).unwrap_or_default(),
        ),
    };
    let next = next_charge.as_ref().map(|(amount, at, next_plan)| {
        let day = date(*at);
        let mut line = lang.t_with(
            "next-charge",
            &[
                ("amount", (&lang.money(amount)).into()),
                ("date", (&day).into()),
            ],
        );
        if next_plan.id != sub.plan_id {
            let change = lang.t_with(
                "plan-change",
                &[("plan", (&next_plan.name).into()), ("date", (&day).into())],
            );
            line = format!("{line} — {change}");
        }
        line
    });
    let action = match status {
        Status::Trialing | Status::Active | Status::PastDue => Some(Action {
            path: "cancel",
            label: lang.t("cancel-subscription"),
            class: "secondary",
        }),
        Status::Canceled if period_end > now => Some(Action {
            path: "resume",
            label: lang.t("resume"),
            class: "secondary resume",
        }),
        _ => None,
    };
    SubscriptionRow {
        id: sub.id,
        name,
        price: price.unwrap_or_default(),
        label: lang.t(label),
        detail,
        next,
        action,
    }
}

/// One payment as the portal lists it: its date, amount and what became of it.
fn payment_row(p: &Payment, lang: Lang) -> PaymentRow {
    let status = if p.disputed_at.is_some() {
        "disputed"
    } else if p.refunded_amount > 0 && p.refunded_amount >= p.amount {
        "refunded"
    } else if p.refunded_amount > 0 {
        "partially-refunded"
    } else if p.status == payments::SUCCEEDED {
        "paid"
    } else {
        "payment-declined"
    };
    PaymentRow {
        date: lang.date(p.created_at),
        amount: lang.money(&p.money()),
        status: lang.t(status),
    }
}
