//! The Stripe path under faults, one hole at a time: answers lost, cut off or late, payments that
//! stay `processing`, and a charge refunded while a renewal could still record it. The service
//! talks to localstripe through `stripe_proxy`, which breaks the call a test names and replays
//! answers per idempotency key as Stripe does. Webhooks localstripe cannot send are POSTed here,
//! signed as Stripe signs.

use std::time::Duration;

use chrono::TimeDelta;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::localstripe::*;
use crate::stripe::{handled, pay_with, payments_of, post_event};
use crate::stripe_proxy::{Fault, StripeProxy};

/// Longer than the service's timeout for Stripe calls below.
const PAST_THE_TIMEOUT: Duration = Duration::from_millis(2500);

/// The service behind the proxy. With no retries, a fault reaches what lies behind the client's
/// own retries (as when every retry fails too).
async fn spawn_behind_proxy_with(
    configure: impl FnOnce(&mut crate::helpers::Options),
) -> (TestApp, LocalStripe, StripeProxy) {
    let stripe = LocalStripe::start().await;
    let proxy = StripeProxy::start(&stripe.url).await;
    let app = spawn_app_through(&stripe, &proxy.url, |o| {
        o.set("STRIPE_TIMEOUT_MS", "1500")
            .set("STRIPE_MAX_NETWORK_RETRIES", "0");
        configure(o);
    })
    .await;
    (app, stripe, proxy)
}

async fn spawn_behind_proxy() -> (TestApp, LocalStripe, StripeProxy) {
    spawn_behind_proxy_with(|_| {}).await
}

/// Behind the proxy, with the client's retries on (the default, 2).
async fn spawn_retrying() -> (TestApp, LocalStripe, StripeProxy) {
    spawn_behind_proxy_with(|o| {
        // A try that times out under a loaded machine would be one more try than the test names.
        o.unset("STRIPE_MAX_NETWORK_RETRIES")
            .set("STRIPE_TIMEOUT_MS", "10000");
    })
    .await
}

/// A user on a 14-day trial with a saved card, at the trial's end, before the worker's round.
async fn at_trial_end(app: &TestApp, stripe: &LocalStripe) {
    app.add_plan(1, 14);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(pay_with(app, stripe, &url, CARD_OK).await.status(), 303);
    app.advance(TimeDelta::days(14) + TimeDelta::hours(1));
}

/// Stripe's event of type `event_type` about the PaymentIntent `intent`, signed and POSTed.
async fn webhook(app: &TestApp, id: &str, event_type: &str, intent: &Value) {
    let now = chrono::Utc::now().timestamp();
    let event = json!({"id": id, "object": "event", "type": event_type, "created": now,
                       "data": {"object": intent}});
    let (signature, body) = signed(WEBHOOK_SECRET, now, &event);
    assert_eq!(post_event(app, Some(&signature), &body).await.status(), 200);
    handled(app, id).await;
}

async fn refunds_of(stripe: &LocalStripe, pi: &str) -> Vec<Value> {
    stripe
        .get(&format!("/v1/refunds?payment_intent={pi}"))
        .await["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn succeeded_renewals(app: &TestApp) -> Vec<String> {
    payments_of(app)
        .into_iter()
        .filter(|p| p.kind == "renewal" && p.status == "succeeded")
        .filter_map(|p| p.gateway_reference)
        .collect()
}

/// The renewal charge Stripe made: the only PaymentIntent of the account after a trial.
async fn the_only_intent(stripe: &LocalStripe) -> Value {
    let intents = stripe.payment_intents().await;
    assert_eq!(intents.len(), 1, "one charge at Stripe: {intents:?}");
    intents[0].clone()
}

#[tokio::test]
async fn a_renewal_whose_answer_was_lost_is_recorded_once_and_never_refunded() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    at_trial_end(&app, &stripe).await;
    // Stripe takes the renewal's money; its answer comes after the service gave up waiting.
    proxy.fail_next(
        "POST",
        "/v1/payment_intents",
        Fault::DelayAnswer(PAST_THE_TIMEOUT),
    );
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert_eq!(sub.periods_paid, 0, "not renewed on an answer never read");
    assert!(
        sub.past_due_since.is_none(),
        "a lost answer is not a decline"
    );
    let intent = the_only_intent(&stripe).await;
    assert_eq!(intent["status"], "succeeded");
    // Stripe's webhook about that charge arrives; then the minutes pass in which the old rule
    // refunded it before the retry recorded it.
    webhook(
        &app,
        "evt_renewal_lost_1",
        "payment_intent.succeeded",
        &intent,
    )
    .await;
    for _ in 0..3 {
        app.advance(TimeDelta::minutes(11));
        app.run_worker().await;
    }
    let pi = intent["id"].as_str().unwrap();
    assert!(refunds_of(&stripe, pi).await.is_empty(), "never refunded");
    assert_eq!(succeeded_renewals(&app), vec![pi.to_string()]);
    assert_eq!(app.subscription("u1").periods_paid, 1);
    assert_eq!(
        stripe.payment_intents().await.len(),
        1,
        "the retry was answered with the same charge"
    );
    let charges: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path == "/v1/payment_intents")
        .collect();
    assert_eq!(charges.len(), 2, "charged, then retried once");
    assert_eq!(charges[0].fault, Some("delay_answer"));
    assert_eq!(charges[1].idempotency_key, charges[0].idempotency_key);
    assert!(charges[1].replayed, "under the same key");
    assert_eq!(app.count("unrecorded_charges"), 0);
    handled(&app, "evt_renewal_lost_1").await;
}

#[tokio::test]
async fn a_renewal_charge_no_renewal_can_record_is_refunded_and_never_recorded() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    at_trial_end(&app, &stripe).await;
    proxy.fail_next(
        "POST",
        "/v1/payment_intents",
        Fault::DelayAnswer(PAST_THE_TIMEOUT),
    );
    app.run_worker().await;
    // The user cancels before the retry: no renewal will ever record that charge.
    let canceled = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u1", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(canceled.status(), 200);
    let intent = the_only_intent(&stripe).await;
    webhook(
        &app,
        "evt_renewal_orphan_1",
        "payment_intent.succeeded",
        &intent,
    )
    .await;
    for _ in 0..2 {
        app.advance(TimeDelta::minutes(11));
        app.run_worker().await;
    }
    let pi = intent["id"].as_str().unwrap();
    let refunds = refunds_of(&stripe, pi).await;
    assert_eq!(refunds.len(), 1, "refunded once");
    assert_eq!(refunds[0]["amount"], 999);
    assert!(succeeded_renewals(&app).is_empty());
    let sub = app.subscription("u1");
    assert!(sub.deactivated_at.is_some(), "ended with its paid time");
    assert_eq!(sub.periods_paid, 0);
    use treefort_webpay::schema::unrecorded_charges as uc;
    let (reference, refunded_at): (String, Option<chrono::NaiveDateTime>) = uc::table
        .select((uc::gateway_reference, uc::refunded_at))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(reference, pi);
    assert!(
        refunded_at.is_some(),
        "support staff see the refund went through"
    );
}

#[tokio::test]
async fn a_charge_written_down_as_refunded_is_never_recorded_as_paid() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    at_trial_end(&app, &stripe).await;
    proxy.fail_next(
        "POST",
        "/v1/payment_intents",
        Fault::DelayAnswer(PAST_THE_TIMEOUT),
    );
    app.run_worker().await;
    let first = the_only_intent(&stripe).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The verdict another instance wrote before refunding it.
    diesel::sql_query(format!(
        "INSERT INTO unrecorded_charges (gateway, gateway_reference, amount, currency, divisor, reason, created_at) \
         VALUES ('stripe', '{first}', 999, 'USD', 100, 'test', '2026-01-01 00:00:00')"
    ))
    .execute(&mut *app.conn())
    .unwrap();
    // The retry is answered with that same charge: it must not count.
    for _ in 0..2 {
        app.advance(TimeDelta::minutes(11));
        app.run_worker().await;
    }
    let recorded = succeeded_renewals(&app);
    assert_eq!(recorded.len(), 1, "renewed once, by a charge of its own");
    assert_ne!(recorded[0], first);
    assert_eq!(app.subscription("u1").periods_paid, 1);
}

/// The shopper pays while Stripe confirms the payment and `fault` hides its answer.
async fn a_checkout_is_paid_once_after(fault: Fault) {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    let url = app.link_to_paid_plan("u1").await;
    proxy.fail_next("POST", "/v1/payment_intents/", fault);
    let paid = pay_with(&app, &stripe, &url, CARD_OK).await;
    assert_eq!(paid.status(), 303, "the shopper is told the truth: paid");
    assert_eq!(proxy.faults_left(), 0);
    let intent = the_only_intent(&stripe).await;
    assert_eq!(intent["status"], "succeeded");
    let payments = payments_of(&app);
    assert_eq!(payments.len(), 1);
    assert_eq!(
        payments[0].gateway_reference.as_deref(),
        intent["id"].as_str()
    );
    assert!(refunds_of(&stripe, intent["id"].as_str().unwrap())
        .await
        .is_empty());
}

#[tokio::test]
async fn a_checkout_whose_confirmation_answer_was_cut_off_is_paid_once() {
    a_checkout_is_paid_once_after(Fault::CutAnswer).await;
}

#[tokio::test]
async fn a_checkout_whose_confirmation_answer_was_lost_is_paid_once() {
    a_checkout_is_paid_once_after(Fault::LoseAnswer).await;
}

#[tokio::test]
async fn a_confirmation_that_never_reached_stripe_is_confirmed_not_sent_to_3d_secure() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    let url = app.link_to_paid_plan("u1").await;
    proxy.fail_next("POST", "/v1/payment_intents/", Fault::DropRequest);
    let paid = pay_with(&app, &stripe, &url, CARD_OK).await;
    assert_eq!(
        paid.status(),
        303,
        "a card without 3-D Secure is simply paid"
    );
    let confirms = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/confirm"))
        .count();
    assert_eq!(confirms, 2, "confirmed once more after reading it back");
    assert_eq!(the_only_intent(&stripe).await["status"], "succeeded");
    assert_eq!(payments_of(&app).len(), 1);
}

#[tokio::test]
async fn a_renewal_whose_answer_was_cut_off_is_not_a_decline() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    at_trial_end(&app, &stripe).await;
    proxy.fail_next("POST", "/v1/payment_intents", Fault::CutAnswer);
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert!(
        sub.past_due_since.is_none(),
        "not past due on an unread answer"
    );
    assert!(
        payments_of(&app).iter().all(|p| p.status != "declined"),
        "no decline recorded"
    );
    assert!(app.patches().await.is_empty());
    app.advance(TimeDelta::minutes(11));
    app.run_worker().await;
    let intent = the_only_intent(&stripe).await;
    assert_eq!(
        succeeded_renewals(&app),
        vec![intent["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(app.subscription("u1").renewal_attempts, 0);
}

#[tokio::test]
async fn a_renewal_payment_still_processing_is_not_paid_until_it_settles() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    at_trial_end(&app, &stripe).await;
    let processing = json!({"status": "processing"});
    proxy.fail_next(
        "POST",
        "/v1/payment_intents",
        Fault::Rewrite(processing.clone()),
    );
    proxy.fail_next("GET", "/v1/payment_intents/", Fault::Rewrite(processing));
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert_eq!(sub.periods_paid, 0, "processing is not paid");
    assert!(sub.past_due_since.is_none(), "nor declined");
    assert!(succeeded_renewals(&app).is_empty());
    assert!(app.patches().await.is_empty(), "Treefort hears nothing yet");
    // The bank refuses it after all: Stripe says so by webhook and when asked.
    let mut failed = the_only_intent(&stripe).await;
    let refusal = json!({"status": "requires_payment_method",
        "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}});
    for (k, v) in refusal.as_object().unwrap() {
        failed[k] = v.clone();
    }
    proxy.fail_next("GET", "/v1/payment_intents/", Fault::Rewrite(refusal));
    webhook(
        &app,
        "evt_processing_failed",
        "payment_intent.payment_failed",
        &failed,
    )
    .await;
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert!(sub.past_due_since.is_some(), "the failure is a decline");
    assert_eq!(sub.periods_paid, 0);
    assert!(succeeded_renewals(&app).is_empty());
    assert_eq!(
        payments_of(&app)
            .iter()
            .filter(|p| p.status == "declined")
            .count(),
        1
    );
}

/// The tries the proxy saw of calls to `path` (exactly), oldest first.
fn tries_of(proxy: &StripeProxy, method: &str, path: &str) -> Vec<crate::stripe_proxy::Seen> {
    proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == method && s.path == path)
        .collect()
}

#[tokio::test]
async fn stripes_rate_limit_and_lock_timeouts_are_tried_again_under_the_same_key() {
    let (app, stripe, proxy) = spawn_retrying().await;
    let url = app.link_to_paid_plan("u1").await;
    proxy.fail_next("POST", "/v1/payment_intents/", Fault::rate_limited(None));
    proxy.fail_next("POST", "/v1/payment_intents/", Fault::lock_timeout());
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let confirms: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/confirm"))
        .collect();
    let faults: Vec<_> = confirms.iter().map(|s| s.fault).collect();
    assert_eq!(faults, vec![Some("answer_429"), Some("answer_409"), None]);
    assert!(confirms
        .iter()
        .all(|s| s.idempotency_key == confirms[0].idempotency_key));
    assert_eq!(payments_of(&app).len(), 1);
    let metrics = app.metrics_text().await;
    for line in [
        "treefort_webpay_stripe_retries_total{reason=\"rate_limited\"} 1",
        "treefort_webpay_stripe_retries_total{reason=\"conflict\"} 1",
        "treefort_webpay_stripe_requests_total{outcome=\"rate_limited\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_server_error_and_a_lost_connection_are_tried_again_and_charge_once() {
    let (app, stripe, proxy) = spawn_retrying().await;
    at_trial_end(&app, &stripe).await;
    proxy.fail_next("POST", "/v1/payment_intents", Fault::server_error(503));
    proxy.fail_next("POST", "/v1/payment_intents", Fault::CutAnswer);
    app.run_worker().await;
    let charges = tries_of(&proxy, "POST", "/v1/payment_intents");
    assert_eq!(charges.len(), 3, "503, an answer cut off, then its replay");
    assert!(charges
        .iter()
        .all(|s| s.idempotency_key == charges[0].idempotency_key));
    assert!(
        charges[2].replayed,
        "the third try is answered with the charge the second made"
    );
    let intent = the_only_intent(&stripe).await;
    assert_eq!(
        succeeded_renewals(&app),
        vec![intent["id"].as_str().unwrap().to_string()]
    );
}

#[tokio::test]
async fn stripes_advice_not_to_retry_is_followed() {
    let (app, stripe, proxy) = spawn_retrying().await;
    at_trial_end(&app, &stripe).await;
    proxy.fail_next(
        "POST",
        "/v1/payment_intents",
        Fault::rate_limited(Some(false)),
    );
    app.run_worker().await;
    assert_eq!(tries_of(&proxy, "POST", "/v1/payment_intents").len(), 1);
    let sub = app.subscription("u1");
    assert_eq!(sub.periods_paid, 0, "not renewed yet");
    assert!(
        sub.past_due_since.is_none(),
        "a refusal to serve is not a decline"
    );
    assert!(stripe.payment_intents().await.is_empty());
    // The turn comes again later and goes through.
    app.advance(TimeDelta::minutes(11));
    app.run_worker().await;
    assert_eq!(succeeded_renewals(&app).len(), 1);
}

#[tokio::test]
async fn every_stripe_call_waits_its_turn_under_the_configured_rate() {
    let (app, stripe, proxy) = spawn_behind_proxy_with(|o| {
        o.set("STRIPE_MAX_REQUESTS_PER_SECOND", "4");
    })
    .await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let seen = proxy.seen();
    assert!(
        seen.len() >= 5,
        "a paid checkout makes several calls: {seen:?}"
    );
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // 4 a second: a quarter of a second apart at least (less a little for the clock).
        assert!(
            gap >= Duration::from_millis(240),
            "{gap:?} between {pair:?}"
        );
    }
    assert!(app
        .metrics_text()
        .await
        .contains("treefort_webpay_stripe_pacing_wait_seconds_count"));
}

/// How often the service has read the PaymentIntent `pi` from Stripe.
fn reads_of(proxy: &StripeProxy, pi: &str) -> usize {
    let path = format!("/v1/payment_intents/{pi}");
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.starts_with(&path))
        .count()
}

#[tokio::test]
async fn an_abandoned_authentication_is_read_from_stripe_with_backoff_not_every_round() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_3DS).await.status(), 200);
    let pi = stripe.payment_intents().await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = reads_of(&proxy, &pi);
    // The shopper left at their bank's step. After 3 minutes the attempt is read once, and the
    // rounds of the next minute (one a second) leave Stripe alone.
    app.advance(TimeDelta::minutes(3) + TimeDelta::seconds(1));
    let first_read = app.now();
    for _ in 0..5 {
        app.run_worker().await;
        app.advance(TimeDelta::seconds(10));
    }
    assert_eq!(
        reads_of(&proxy, &pi) - before,
        1,
        "one read in the first minute"
    );
    // Then again after 1 minute, after 2 more, after 4 more.
    let mut reads_at = Vec::new();
    for minute in 1..=8 {
        app.advance_to(first_read + TimeDelta::minutes(minute) + TimeDelta::seconds(1));
        let was = reads_of(&proxy, &pi);
        app.run_worker().await;
        app.run_worker().await;
        if reads_of(&proxy, &pi) > was {
            reads_at.push(minute);
        }
    }
    assert_eq!(reads_at, [1, 3, 7], "read again after 1, 2 and 4 minutes");
    assert_eq!(app.count("payments"), 0);
    // The authentication window still ends on time: canceled, the link free again.
    app.advance(TimeDelta::minutes(25));
    app.run_worker().await;
    assert_eq!(stripe.payment_intents().await[0]["status"], "canceled");
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
}

fn creations_at(proxy: &StripeProxy, path: &str) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path == path)
        .count()
}

#[tokio::test]
async fn page_views_create_nothing_at_stripe_only_the_shoppers_press_does() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    let url = app.link_to_paid_plan("u1").await;
    // Many views of one link, as from many addresses: nothing is made at Stripe.
    for _ in 0..20 {
        assert_eq!(app.get(&url).await.status(), 200);
    }
    assert_eq!(creations_at(&proxy, "/v1/setup_intents"), 0);
    assert_eq!(creations_at(&proxy, "/v1/customers"), 0);

    // The press makes the customer and one setup; the shopper pays with it.
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    assert_eq!(creations_at(&proxy, "/v1/setup_intents"), 1);
    assert_eq!(creations_at(&proxy, "/v1/customers"), 1);

    // The portal's card field likewise: views are free, a press makes one setup.
    let portal = app.portal_url("u1", "en").await;
    let mut html = String::new();
    for _ in 0..20 {
        let page = app.get(&portal).await;
        assert_eq!(page.status(), 200);
        html = page.text().await.unwrap();
    }
    assert_eq!(creations_at(&proxy, "/v1/setup_intents"), 1);
    crate::stripe::press(&app, &html).await;
    assert_eq!(creations_at(&proxy, "/v1/setup_intents"), 2);
    assert_eq!(
        creations_at(&proxy, "/v1/customers"),
        1,
        "one customer per user"
    );
}

#[tokio::test]
async fn a_press_on_a_link_that_cannot_be_paid_gets_a_json_refusal_and_makes_nothing() {
    let (app, stripe, proxy) = spawn_behind_proxy().await;
    let url = app.link_to_paid_plan("u1").await;
    let html = app.get(&url).await.text().await.unwrap();
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let made = creations_at(&proxy, "/v1/setup_intents");

    let paid = crate::stripe::press_answer(&app, &html).await;
    assert_eq!(paid.status(), 410);
    let body: Value = paid.json().await.unwrap();
    assert_eq!(body["error"]["code"], "checkout_completed", "{body}");

    let unknown = app
        .client
        .post(format!(
            "{}/checkout/{}/card-setup",
            app.address,
            "x".repeat(43)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "checkout_not_found", "{body}");

    // Another site cannot make setups on a shopper's link.
    let url = app.link_to_paid_plan("u2").await;
    let html = app.get(&url).await.text().await.unwrap();
    let setup_url = attribute(&html, "data-stripe-setup-url").unwrap();
    let cross = app
        .client
        .post(format!("{}{setup_url}", app.address))
        .header("Origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(creations_at(&proxy, "/v1/setup_intents"), made);
}
