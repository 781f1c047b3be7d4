//! The Stripe gateway end to end against localstripe: checkout with a SetupIntent confirmed the
//! way Stripe.js does it, charges, 3-D Secure, renewals, card changes, webhooks, reconciliation
//! and refunds. What localstripe cannot send (setup, refund and dispute events) is POSTed here,
//! signed as Stripe signs.

use std::time::Duration;

use chrono::TimeDelta;
use diesel::prelude::*;
use serde_json::{json, Value};
use treefort_webpay::models::payments::Payment;

use crate::helpers::{TestApp, API_KEY};
use crate::localstripe::*;

pub(crate) fn payments_of(app: &TestApp) -> Vec<Payment> {
    use treefort_webpay::schema::payments;
    payments::table
        .order(payments::id.asc())
        .load(&mut *app.conn())
        .unwrap()
}

/// The checkout page, and the client secret of the SetupIntent its card field confirms: asked
/// for at the page's card-setup URL, as card.js does when the shopper presses the button.
pub(crate) async fn checkout_page(app: &TestApp, url: &str) -> (String, String) {
    let response = app.get(url).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    assert!(
        csp.contains("script-src 'self' http://127.0.0.1:"),
        "Stripe.js may load from STRIPE_JS_URL: {csp}"
    );
    let secret = press(app, &html).await;
    (html, secret)
}

/// The answer to the press of a page's card form, whatever it is.
pub(crate) async fn press_answer(app: &TestApp, html: &str) -> reqwest::Response {
    let setup_url =
        attribute(html, "data-stripe-setup-url").expect("the page offers Stripe's card field");
    app.client
        .post(format!("{}{setup_url}", app.address))
        .send()
        .await
        .unwrap()
}

/// What card.js does on the press of a page's card form: asks the form's card-setup URL for
/// the client secret of a fresh SetupIntent.
pub(crate) async fn press(app: &TestApp, html: &str) -> String {
    let response = press_answer(app, html).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    body["clientSecret"]
        .as_str()
        .expect("a client secret")
        .to_string()
}

/// The shopper types `card` into Stripe's card field and presses pay: Stripe.js confirms the
/// SetupIntent with Stripe, then the form posts only its id.
pub(crate) async fn pay_with(
    app: &TestApp,
    stripe: &LocalStripe,
    url: &str,
    card: &str,
) -> reqwest::Response {
    let (_, secret) = checkout_page(app, url).await;
    let setup = stripe
        .confirm_card_setup(&secret, card)
        .await
        .expect("the card is saved");
    assert_eq!(setup["status"], "succeeded");
    post_setup(app, url, setup["id"].as_str().unwrap()).await
}

pub(crate) async fn post_setup(app: &TestApp, url: &str, setup_id: &str) -> reqwest::Response {
    app.client
        .post(url)
        .form(&[("setup_intent", setup_id)])
        .send()
        .await
        .unwrap()
}

fn customer_ref(app: &TestApp, user: &str) -> String {
    treefort_webpay::models::customers::find_by_user_id(&mut app.conn(), user)
        .unwrap()
        .unwrap()
        .gateway_customer_ref
        .unwrap()
}

pub(crate) async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_paid_checkout_saves_the_card_in_stripe_and_charges_it_once() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;

    let (html, _) = checkout_page(&app, &url).await;
    assert!(
        !html.contains("name=\"card_number\""),
        "the card is typed into Stripe's field, not ours"
    );
    assert!(html.contains(&stripe.js_url()) && html.contains("/assets/card.js"));
    assert!(html.contains("Test mode"), "sk_test_ keys keep the banner");

    let paid = pay_with(&app, &stripe, &url, CARD_OK).await;
    assert_eq!(paid.status(), 303);
    assert_eq!(
        paid.headers()["location"],
        "https://app.example.com/success"
    );
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );

    let intents = stripe.payment_intents().await;
    assert_eq!(intents.len(), 1, "one charge");
    let intent = &intents[0];
    let customer = customer_ref(&app, "u1");
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 999);
    assert_eq!(intent["currency"], "usd");
    assert_eq!(intent["customer"], customer.as_str());
    let payments = payments_of(&app);
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].gateway, "stripe");
    assert_eq!(
        payments[0].gateway_reference.as_deref(),
        intent["id"].as_str()
    );
    let stored = treefort_webpay::models::customers::find_by_user_id(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    assert_eq!(stored.card_last4.as_deref(), Some("4242"));
    assert_eq!(stored.card_brand.as_deref(), Some("Visa"));
    assert!(stored.payment_method_ref.unwrap().starts_with("pm_"));
    let in_stripe = stripe.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(in_stripe["email"], "u1@example.com");

    // The same user's next checkout reuses the Stripe customer.
    app.add_plan(2, 0);
    let second = app.checkout_url("u1", 2, None).await;
    let _ = app.get(&second).await;
    assert_eq!(customer_ref(&app, "u1"), customer);
    let customers = stripe.get("/v1/customers?limit=100").await;
    assert_eq!(customers["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_zero_decimal_currency_is_charged_in_whole_yen() {
    let (app, stripe) = spawn_stripe_app().await;
    app.add_plan_priced(1, 0, "JPY", 1500, 1);
    app.add_plan_priced(2, 0, "JPY", 150000, 100);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let url = app.checkout_url("u2", 2, None).await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let amounts: Vec<(Value, Value)> = stripe
        .payment_intents()
        .await
        .iter()
        .map(|pi| (pi["amount"].clone(), pi["currency"].clone()))
        .collect();
    assert_eq!(
        amounts,
        [(json!(1500), json!("jpy")), (json!(1500), json!("jpy"))],
        "¥1,500 is 1500 in Stripe's units, whatever our divisor"
    );
}

#[tokio::test]
async fn a_declined_charge_keeps_the_link_and_the_next_attempt_is_a_new_charge() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;

    let declined = pay_with(&app, &stripe, &url, CARD_CHARGE_DECLINED).await;
    assert_eq!(declined.status(), 402);
    let html = declined.text().await.unwrap();
    assert!(html.contains("declined"), "{html}");
    assert!(
        attribute(&html, "data-stripe-setup-url").is_some(),
        "a new card can be entered on the same page"
    );
    assert_eq!(app.count("subscriptions"), 0);

    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let intents = stripe.payment_intents().await;
    assert_eq!(intents.len(), 2);
    assert_ne!(
        intents[0]["metadata"]["attempt_key"], intents[1]["metadata"]["attempt_key"],
        "each attempt has its own idempotency key"
    );
    assert_eq!(intents[1]["status"], "succeeded");
    assert_eq!(app.count("payments"), 1);
}

#[tokio::test]
async fn the_server_never_trusts_a_setup_the_browser_names() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;

    // A card refused when saved: Stripe.js reports the error, but a hand-made post names it.
    let (_, secret) = checkout_page(&app, &url).await;
    let refused = stripe.confirm_card_setup(&secret, CARD_DECLINED).await;
    assert!(
        refused.is_err(),
        "localstripe declines 0002 when it is saved"
    );
    let seti = secret.split("_secret_").next().unwrap();
    assert_eq!(post_setup(&app, &url, seti).await.status(), 402);

    // A setup made for another checkout (another user) is not this page's.
    let other = app.checkout_url("u2", 1, None).await;
    let (_, other_secret) = checkout_page(&app, &other).await;
    let setup = stripe
        .confirm_card_setup(&other_secret, CARD_OK)
        .await
        .unwrap();
    let posted = post_setup(&app, &url, setup["id"].as_str().unwrap()).await;
    assert_eq!(posted.status(), 400);
    // Not an id at all.
    assert_eq!(
        post_setup(&app, &url, "seti_../../v1/customers")
            .await
            .status(),
        400
    );

    assert!(
        stripe.payment_intents().await.is_empty(),
        "nothing was charged"
    );
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
}

#[tokio::test]
async fn a_checkout_that_needs_3d_secure_completes_after_the_shopper_authenticates() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;

    let asked = pay_with(&app, &stripe, &url, CARD_3DS).await;
    assert_eq!(asked.status(), 200);
    let html = asked.text().await.unwrap();
    let secret = attribute(&html, "data-stripe-payment").expect("the page runs confirmCardPayment");
    assert!(html.contains("/confirm\""), "{html}");
    assert!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .is_empty(),
        "nothing is recorded before the bank says yes"
    );

    // A failed authentication: the decline, and the link can be paid again.
    let failed = stripe.authenticate_payment(&secret, false).await;
    assert_eq!(failed["status"], "requires_payment_method");
    let failed_id = failed["id"].as_str().unwrap().to_string();
    let confirm = |app: &TestApp| {
        app.client
            .post(format!("{url}/confirm"))
            .form(&[("payment_intent", "ignored")])
            .send()
    };
    assert_eq!(confirm(&app).await.unwrap().status(), 402);
    let given_up = stripe
        .get(&format!("/v1/payment_intents/{failed_id}"))
        .await;
    assert_eq!(
        given_up["status"], "canceled",
        "a failed payment is canceled before the link is given back"
    );

    let asked = pay_with(&app, &stripe, &url, CARD_3DS).await;
    let secret = attribute(&asked.text().await.unwrap(), "data-stripe-payment").unwrap();
    // A reload while the bank waits shows the bank's step again, not "in progress".
    let reloaded = app.get(&url).await;
    assert_eq!(reloaded.status(), 200);
    assert_eq!(
        attribute(&reloaded.text().await.unwrap(), "data-stripe-payment").as_deref(),
        Some(secret.as_str())
    );
    let authenticated = stripe.authenticate_payment(&secret, true).await;
    assert_eq!(authenticated["status"], "succeeded");
    let done = confirm(&app).await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"],
        "https://app.example.com/success"
    );
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );
    assert_eq!(app.count("payments"), 1);
    // Posting the confirmation again changes nothing.
    assert_eq!(confirm(&app).await.unwrap().status(), 303);
    assert_eq!(app.count("payments"), 1);
}

#[tokio::test]
async fn a_trial_only_saves_the_card() {
    let (app, stripe) = spawn_stripe_app().await;
    app.add_plan(1, 14);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    assert!(stripe.payment_intents().await.is_empty(), "nothing charged");
    let posted = app.treefort_requests("POST", "/v1/subscriptions").await;
    let body: Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert!(body["trialEndsAt"].is_string());
    assert_eq!(app.count("payments"), 0);
}

/// A user on a 14-day trial who saved `card`; the clock then moves past the trial's end.
async fn trial_ended(app: &TestApp, stripe: &LocalStripe, card: &str) {
    app.add_plan(1, 14);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(pay_with(app, stripe, &url, card).await.status(), 303);
    app.advance(TimeDelta::days(14) + TimeDelta::hours(1));
    app.run_worker().await;
}

#[tokio::test]
async fn renewals_charge_the_saved_card_off_session() {
    let (app, stripe) = spawn_stripe_app().await;
    trial_ended(&app, &stripe, CARD_OK).await;
    let intents = stripe.payment_intents().await;
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["status"], "succeeded");
    assert_eq!(intents[0]["metadata"]["kind"], "renewal");
    let patches = app.patches().await;
    assert_eq!(patches.len(), 1);
    assert!(patches[0]["currentPeriodEndsAt"].is_string());
    assert!(patches[0]["trialEndsAt"].is_null());
    let payment = payments_of(&app).pop().unwrap();
    assert_eq!(
        (payment.kind.as_str(), payment.status.as_str()),
        ("renewal", "succeeded")
    );
}

#[tokio::test]
async fn a_declined_renewal_is_past_due_and_a_replaced_card_recovers_it() {
    let (app, stripe) = spawn_stripe_app().await;
    trial_ended(&app, &stripe, CARD_CHARGE_DECLINED).await;
    let sub = app.subscription("u1");
    assert!(sub.past_due_since.is_some());
    assert!(app.patches().await.is_empty(), "access lasts through grace");
    assert_eq!(payments_of(&app)[0].status, "declined");

    // Replace the card in the portal: Stripe's field, a SetupIntent, its id posted.
    let portal = app.portal_url("u1", "en").await;
    let html = app.get(&portal).await.text().await.unwrap();
    let secret = press(&app, &html).await;
    let setup = stripe.confirm_card_setup(&secret, CARD_OK).await.unwrap();
    let replaced = app
        .client
        .post(format!("{portal}/card"))
        .form(&[("setup_intent", setup["id"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    assert!(replaced
        .text()
        .await
        .unwrap()
        .contains("Your card was updated."));
    let new_card = setup["payment_method"].as_str().unwrap().to_string();
    let customer = customer_ref(&app, "u1");
    let in_stripe = stripe.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(
        in_stripe["invoice_settings"]["default_payment_method"], new_card,
        "the new card is the customer's default in Stripe"
    );

    app.run_worker().await;
    let last = stripe.payment_intents().await.pop().unwrap();
    assert_eq!(last["payment_method"], new_card.as_str());
    assert_eq!(last["status"], "succeeded");
    assert_eq!(app.patches().await.len(), 1, "the renewal reached Treefort");
    assert!(app.subscription("u1").past_due_since.is_none());
}

#[tokio::test]
async fn a_renewal_that_needs_authentication_is_recovered_in_the_portal() {
    let (app, stripe) = spawn_stripe_app().await;
    trial_ended(&app, &stripe, CARD_3DS).await;
    let sub = app.subscription("u1");
    assert!(sub.past_due_since.is_some(), "past due inside grace");
    let waiting = payments_of(&app).pop().unwrap();
    assert_eq!(
        waiting.failure_reason.as_deref(),
        Some("authentication_required")
    );

    let portal = app.portal_url("u1", "en").await;
    let html = app.get(&portal).await.text().await.unwrap();
    assert!(html.contains("Confirm your payment"), "{html}");
    let secret = attribute(&html, "data-stripe-payment").unwrap();
    assert_eq!(
        stripe.authenticate_payment(&secret, true).await["status"],
        "succeeded"
    );
    let confirmed = app
        .client
        .post(format!("{portal}/confirm-payment"))
        .form(&[("payment_id", waiting.id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);

    app.run_worker().await;
    assert_eq!(stripe.payment_intents().await.len(), 1, "no second charge");
    assert_eq!(app.patches().await.len(), 1);
    let sub = app.subscription("u1");
    assert!(sub.past_due_since.is_none());
    assert_eq!(sub.periods_paid, 1);
    let renewed = payments_of(&app).pop().unwrap();
    assert_eq!(renewed.status, "succeeded");
    assert_eq!(renewed.gateway_reference, waiting.gateway_reference);
}

/// Waits until the processing started by the webhook route is over (done, or put off).
pub(crate) async fn handled(app: &TestApp, event_id: &str) {
    wait_for("the webhook's own processing", async || {
        use treefort_webpay::schema::gateway_events;
        let (processed, error): (Option<chrono::NaiveDateTime>, Option<String>) =
            gateway_events::table
                .filter(gateway_events::event_id.eq(event_id))
                .select((gateway_events::processed_at, gateway_events::last_error))
                .first(&mut *app.conn())
                .unwrap();
        processed.is_some() || error.is_some()
    })
    .await;
}

/// POSTs `event` to the webhook route with a `Stripe-Signature` header.
pub(crate) async fn post_event(
    app: &TestApp,
    signature: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    request.send().await.unwrap()
}

fn refund_event(id: &str, payment_intent: &str, refunded: i64) -> Value {
    json!({"id": id, "object": "event", "type": "charge.refunded", "created": 1,
           "data": {"object": {"id": "ch_test1234567", "object": "charge", "payment_intent": payment_intent,
                               "client_secret": "pi_test1234567_secret_abcdef",
                               "currency": "usd", "amount": 999, "amount_refunded": refunded, "refunded": true}}})
}

#[tokio::test]
async fn webhooks_need_a_fresh_signature_of_a_configured_secret_and_count_once() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let pi = payments_of(&app)[0].gateway_reference.clone().unwrap();
    let now = chrono::Utc::now().timestamp();
    let event = refund_event("evt_refund000001", &pi, 300);

    let (_, body) = signed(WEBHOOK_SECRET, now, &event);
    let (bad, _) = signed("whsec_someone_else", now, &event);
    let (stale, _) = signed(WEBHOOK_SECRET, now - 301, &event);
    for (signature, why) in [
        (None, "missing"),
        (Some(bad.as_str()), "another secret"),
        (Some(stale.as_str()), "older than 300 s"),
        (Some("t=1,v1=zz"), "malformed"),
    ] {
        let response = post_event(&app, signature, &body).await;
        assert_eq!(response.status(), 400, "{why}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["code"]
                .as_str()
                .unwrap()
                .ends_with("signature"),
            "{why}"
        );
    }
    assert_eq!(app.count("gateway_events"), 0, "nothing stored");
    assert_eq!(payments_of(&app)[0].refunded_amount, 0);

    // A tampered body with a good header.
    let (good, body) = signed(WEBHOOK_SECRET, now, &event);
    let tampered = body.replace("300", "999");
    assert_eq!(post_event(&app, Some(&good), &tampered).await.status(), 400);

    // The previous secret still verifies while it is being rolled.
    let (rolled, body) = signed(OLD_WEBHOOK_SECRET, now, &event);
    let first = post_event(&app, Some(&rolled), &body).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap()["duplicate"], false);
    wait_for("the refund to be recorded", async || {
        payments_of(&app)[0].refunded_amount == 300
    })
    .await;

    // The same event again (a replay, or Stripe retrying): answered, changes nothing.
    let (good, body) = signed(WEBHOOK_SECRET, now, &event);
    let again = post_event(&app, Some(&good), &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);
    assert_eq!(app.count("gateway_events"), 1);
    let stored: String = {
        use treefort_webpay::schema::gateway_events;
        gateway_events::table
            .select(gateway_events::payload)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert!(stored.contains(&pi), "the event is kept for support staff");
    assert!(
        !stored.contains("_secret_"),
        "client secrets are not kept in the database"
    );

    // Unknown types are accepted and ignored.
    let other = json!({"id": "evt_other0000001", "type": "customer.updated", "data": {"object": {"id": "cus_x"}}});
    let (sig, body) = signed(WEBHOOK_SECRET, now, &other);
    assert_eq!(post_event(&app, Some(&sig), &body).await.status(), 200);
}

#[tokio::test]
async fn refunds_and_disputes_reported_by_stripe_show_in_the_records_and_the_portal() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let pi = payments_of(&app)[0].gateway_reference.clone().unwrap();
    let now = chrono::Utc::now().timestamp();
    let (sig, body) = signed(
        WEBHOOK_SECRET,
        now,
        &refund_event("evt_refund000002", &pi, 999),
    );
    assert_eq!(post_event(&app, Some(&sig), &body).await.status(), 200);
    let dispute = json!({"id": "evt_dispute00001", "type": "charge.dispute.created", "created": now,
        "data": {"object": {"id": "dp_test1234567", "object": "dispute", "charge": "ch_test1234567",
                            "payment_intent": pi, "amount": 999, "currency": "usd", "reason": "fraudulent"}}});
    let (sig, body) = signed(WEBHOOK_SECRET, now, &dispute);
    assert_eq!(post_event(&app, Some(&sig), &body).await.status(), 200);
    // Events are processed in the background, not necessarily in the order they arrived.
    wait_for("the refunds and the dispute to be recorded", async || {
        let payment = &payments_of(&app)[0];
        payment.disputed_at.is_some() && payment.refunded_amount == 999
    })
    .await;
    let payment = payments_of(&app).remove(0);
    assert_eq!(payment.refunded_amount, 999);
    assert_eq!(payment.dispute_reason.as_deref(), Some("fraudulent"));
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("treefort_webpay_payment_disputes_total{reason=\"fraudulent\"} 1"),
        "{metrics}"
    );
    let portal = app.portal_url("u1", "en").await;
    let html = app.get(&portal).await.text().await.unwrap();
    assert!(html.contains("Disputed"), "{html}");
}

/// A shopper who authenticated the bank's 3-D Secure step and closed the tab.
async fn authenticated_and_gone(app: &TestApp, stripe: &LocalStripe) {
    let url = app.link_to_paid_plan("u1").await;
    let asked = pay_with(app, stripe, &url, CARD_3DS).await;
    let secret = attribute(&asked.text().await.unwrap(), "data-stripe-payment").unwrap();
    assert_eq!(
        stripe.authenticate_payment(&secret, true).await["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn a_shopper_who_never_comes_back_is_completed_by_the_webhook() {
    let (app, stripe) = spawn_stripe_app().await;
    stripe.send_webhooks_to(&app, WEBHOOK_SECRET).await;
    authenticated_and_gone(&app, &stripe).await;
    // localstripe sends payment_intent.succeeded about a second later, signed.
    wait_for("Treefort to get the subscription", async || {
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len()
            == 1
    })
    .await;
    assert_eq!(app.count("payments"), 1);
    assert_eq!(stripe.payment_intents().await.len(), 1);
}

#[tokio::test]
async fn with_webhooks_off_reconciliation_completes_a_shopper_who_never_came_back() {
    let (app, stripe) = spawn_stripe_app().await;
    authenticated_and_gone(&app, &stripe).await;
    app.run_worker().await;
    assert!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .is_empty(),
        "a fresh attempt is left to its shopper"
    );
    app.advance(TimeDelta::minutes(4));
    app.run_worker().await;
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );
    assert_eq!(app.count("payments"), 1);
}

#[tokio::test]
async fn reconciliation_cancels_an_abandoned_authentication_and_frees_the_link() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_3DS).await.status(), 200);
    app.advance(TimeDelta::minutes(31));
    app.run_worker().await;
    let intents = stripe.payment_intents().await;
    assert_eq!(
        intents[0]["status"], "canceled",
        "it can never be taken later"
    );
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
}

#[tokio::test]
async fn a_confirmed_trial_setup_whose_page_never_posted_is_completed_by_its_webhook() {
    let (app, stripe) = spawn_stripe_app().await;
    app.add_plan(1, 14);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    let (_, secret) = checkout_page(&app, &url).await;
    let setup = stripe.confirm_card_setup(&secret, CARD_OK).await.unwrap();
    // localstripe sends no setup_intent events; Stripe would send this one.
    let now = chrono::Utc::now().timestamp();
    let event = json!({"id": "evt_setup0000001", "type": "setup_intent.succeeded", "created": now,
                       "data": {"object": setup}});
    let (sig, body) = signed(WEBHOOK_SECRET, now, &event);
    assert_eq!(post_event(&app, Some(&sig), &body).await.status(), 200);
    handled(&app, "evt_setup0000001").await;
    assert_eq!(
        app.count("subscriptions"),
        0,
        "the browser gets a minute to post first"
    );
    app.advance(TimeDelta::minutes(2));
    app.run_worker().await;
    assert_eq!(app.count("subscriptions"), 1);
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn support_staff_refund_a_payment_from_the_command_line() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let payment = payments_of(&app).remove(0);
    let cli = |args: &[&str]| app.cli(args);
    let listed = cli(&["payments", "list", "--user", "u1", "--json"]);
    assert!(listed.status.success());
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["id"], payment.id);

    let too_much = cli(&[
        "payments",
        "refund",
        &payment.id.to_string(),
        "--amount",
        "1000",
    ]);
    assert!(!too_much.status.success());
    let refunded = cli(&[
        "payments",
        "refund",
        &payment.id.to_string(),
        "--amount",
        "500",
    ]);
    assert!(
        refunded.status.success(),
        "{}",
        String::from_utf8_lossy(&refunded.stderr)
    );
    let pi = payment.gateway_reference.unwrap();
    let refunds = stripe
        .get(&format!("/v1/refunds?payment_intent={pi}"))
        .await;
    let amounts: Vec<&Value> = refunds["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["amount"])
        .collect();
    assert_eq!(amounts, [&json!(500)]);
    assert_eq!(payments_of(&app)[0].refunded_amount, 500);
    let rest = cli(&["payments", "refund", &payment.id.to_string()]);
    assert!(rest.status.success());
    assert_eq!(payments_of(&app)[0].refunded_amount, 999);
    let portal = app.portal_url("u1", "en").await;
    assert!(app
        .get(&portal)
        .await
        .text()
        .await
        .unwrap()
        .contains("Refunded"));
    let _ = API_KEY;
}

#[tokio::test]
async fn live_keys_show_no_test_banner() {
    let (app, _stripe) = spawn_stripe_app_with(|o| {
        o.set("STRIPE_SECRET_KEY", "sk_live_treefortwebpay")
            .set("STRIPE_PUBLISHABLE_KEY", "pk_live_treefortwebpay");
    })
    .await;
    let url = app.link_to_paid_plan("u1").await;
    let html = app.get(&url).await.text().await.unwrap();
    assert!(attribute(&html, "data-stripe-setup-url").is_some());
    assert!(!html.contains("Test mode"));
}

#[tokio::test]
async fn a_charge_no_attempt_can_record_is_refunded() {
    let (app, stripe) = spawn_stripe_app().await;
    stripe.send_webhooks_to(&app, WEBHOOK_SECRET).await;
    let url = app.link_to_paid_plan("u1").await;
    let asked = pay_with(&app, &stripe, &url, CARD_3DS).await;
    let secret = attribute(&asked.text().await.unwrap(), "data-stripe-payment").unwrap();
    // The attempt lost its link meanwhile (given back, as after a lost answer).
    {
        use treefort_webpay::models::checkout_sessions;
        use treefort_webpay::schema::checkout_sessions as table;
        let session: checkout_sessions::CheckoutSession =
            table::table.first(&mut *app.conn()).unwrap();
        checkout_sessions::release_claim(&mut app.conn(), session.id, session.payment_attempts)
            .unwrap();
    }
    // The bank's step is completed late; Stripe reports the payment as taken.
    assert_eq!(
        stripe.authenticate_payment(&secret, true).await["status"],
        "succeeded"
    );
    let pi = secret.split("_secret_").next().unwrap().to_string();
    wait_for("the orphan charge to be refunded", async || {
        let refunds = stripe
            .get(&format!("/v1/refunds?payment_intent={pi}"))
            .await;
        refunds["data"].as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    let refunds = stripe
        .get(&format!("/v1/refunds?payment_intent={pi}"))
        .await;
    assert_eq!(refunds["data"][0]["amount"], 999, "in full");
    assert_eq!(app.count("subscriptions"), 0);
    assert!(app
        .treefort_requests("POST", "/v1/subscriptions")
        .await
        .is_empty());
    // The link is still usable for a real attempt.
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
}

/// What localstripe cannot play: Stripe's real answer to an off-session charge the bank wants
/// authenticated is a 402 error carrying the PaymentIntent, and a decline carries `decline_code`.
#[tokio::test]
async fn stripes_own_error_shapes_for_off_session_charges_are_understood() {
    use treefort_webpay::config::{Secret, StripeSettings};
    use treefort_webpay::gateway::stripe::StripeGateway;
    use treefort_webpay::gateway::{ChargeKind, ChargeOutcome, ChargeRequest};
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("Idempotency-Key", "tfw-install1-renewal-1-2-0"))
        .and(body_string_contains("off_session=true"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error", "code": "authentication_required",
            "message": "This payment required an authentication action to complete, but `error_on_requires_action` was set.",
            "payment_intent": {"id": "pi_3Auth0000000001", "object": "payment_intent", "status": "requires_payment_method"}
        }})))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("Idempotency-Key", "tfw-install1-renewal-1-2-1"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "payment_intent": {"id": "pi_3Decl0000000001", "object": "payment_intent"}
        }})))
        .mount(&stripe)
        .await;
    let gateway = StripeGateway::new(
        StripeSettings {
            secret_key: Secret::new("sk_test_x"),
            publishable_key: "pk_test_x".into(),
            webhook_secrets: vec![Secret::new("whsec_x")],
            api_url: stripe.uri(),
            js_url: format!("{}/v3/", stripe.uri()),
            timeout: Duration::from_secs(2),
            max_requests_per_second: 20,
            max_network_retries: 2,
        },
        "install1",
        Default::default(),
    )
    .unwrap();
    let amount = treefort_webpay::domain::money::Money {
        amount: 999,
        currency: "USD".into(),
        divisor: 100,
    };
    let request = |key: &'static str| ChargeRequest {
        customer_ref: "cus_Test00000001",
        card_ref: "pm_Test00000001",
        amount: &amount,
        kind: ChargeKind::Renewal,
        idempotency_key: key,
        metadata: vec![("subscription_id", "1".into())],
    };
    assert_eq!(
        gateway.charge(&request("renewal-1-2-0")).await.unwrap(),
        ChargeOutcome::RequiresAction {
            reference: "pi_3Auth0000000001".into()
        }
    );
    assert_eq!(
        gateway.charge(&request("renewal-1-2-1")).await.unwrap(),
        ChargeOutcome::Declined {
            reason: "insufficient_funds".into()
        }
    );
    let sent = stripe.received_requests().await.unwrap();
    assert!(sent
        .iter()
        .all(|r| r.headers["authorization"] == "Bearer sk_test_x"));
    assert!(sent
        .iter()
        .all(|r| r.headers.contains_key("stripe-version")));
}

#[tokio::test]
async fn payments_and_setups_of_other_systems_on_the_account_are_ignored() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(pay_with(&app, &stripe, &url, CARD_OK).await.status(), 303);
    let ours = stripe.payment_intents().await.remove(0);
    // Another system's payment on the same Stripe account, with metadata that looks like ours.
    let mut theirs = ours.clone();
    theirs["id"] = json!("pi_Theirs0000000001");
    theirs["metadata"]["tfw_install"] = json!("another-installation");
    theirs["metadata"]["checkout_session_id"] = json!("1");
    let now = chrono::Utc::now().timestamp();
    let event = json!({"id": "evt_theirs0000001", "type": "payment_intent.succeeded", "created": now,
                       "data": {"object": theirs}});
    let (sig, body) = signed(WEBHOOK_SECRET, now, &event);
    assert_eq!(post_event(&app, Some(&sig), &body).await.status(), 200);
    wait_for("the event to be processed", async || {
        use treefort_webpay::schema::gateway_events;
        let processed: Option<chrono::NaiveDateTime> = gateway_events::table
            .filter(gateway_events::event_id.eq("evt_theirs0000001"))
            .select(gateway_events::processed_at)
            .first(&mut *app.conn())
            .unwrap();
        processed.is_some()
    })
    .await;
    let refunds = stripe.get("/v1/refunds?limit=100").await;
    assert!(
        refunds["data"].as_array().unwrap().is_empty(),
        "nobody's payment was refunded"
    );
    assert_eq!(app.count("payments"), 1);
}

#[tokio::test]
async fn a_card_setup_of_a_declined_attempt_is_never_charged_by_its_webhook() {
    let (app, stripe) = spawn_stripe_app().await;
    let url = app.link_to_paid_plan("u1").await;
    let (_, secret) = checkout_page(&app, &url).await;
    let setup = stripe
        .confirm_card_setup(&secret, CARD_CHARGE_DECLINED)
        .await
        .unwrap();
    let declined = post_setup(&app, &url, setup["id"].as_str().unwrap()).await;
    assert_eq!(declined.status(), 402);
    let retry_secret = press(&app, &declined.text().await.unwrap()).await;
    // Stripe's setup_intent.succeeded for that card arrives after the shopper saw the decline.
    let now = chrono::Utc::now().timestamp();
    let event = json!({"id": "evt_setup0000002", "type": "setup_intent.succeeded", "created": now,
                       "data": {"object": setup}});
    let (sig, body) = signed(WEBHOOK_SECRET, now, &event);
    assert_eq!(post_event(&app, Some(&sig), &body).await.status(), 200);
    handled(&app, "evt_setup0000002").await;
    app.advance(TimeDelta::minutes(2));
    app.run_worker().await;
    assert_eq!(
        stripe.payment_intents().await.len(),
        1,
        "only the shopper's own, declined attempt"
    );
    assert_eq!(app.count("subscriptions"), 0);
    // The page the shopper is looking at still works.
    let setup = stripe
        .confirm_card_setup(&retry_secret, CARD_OK)
        .await
        .unwrap();
    let paid = post_setup(&app, &url, setup["id"].as_str().unwrap()).await;
    assert_eq!(paid.status(), 303);
}

#[tokio::test]
async fn a_renewal_payment_that_no_renewal_records_is_refunded() {
    let (app, stripe) = spawn_stripe_app().await;
    stripe.send_webhooks_to(&app, WEBHOOK_SECRET).await;
    trial_ended(&app, &stripe, CARD_3DS).await;
    assert!(app.subscription("u1").past_due_since.is_some());
    // The user cancels; later the bank's step for the old renewal is completed anyway.
    let canceled = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u1", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(canceled.status(), 200);
    let portal_payment = payments_of(&app).pop().unwrap();
    let pi = portal_payment.gateway_reference.unwrap();
    let intent = stripe.get(&format!("/v1/payment_intents/{pi}")).await;
    let secret = intent["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        stripe.authenticate_payment(&secret, true).await["status"],
        "succeeded"
    );
    // No renewal can record it (the subscription was canceled): refunded as soon as its webhook
    // is handled, without waiting for a renewal that will never come.
    let refunds_path = format!("/v1/refunds?payment_intent={pi}");
    let refunds = || stripe.get(&refunds_path);
    wait_for("the refund", async || {
        !refunds().await["data"].as_array().unwrap().is_empty()
    })
    .await;
    app.advance(TimeDelta::minutes(11));
    app.run_worker().await;
    let refunded = refunds().await;
    assert_eq!(
        refunded["data"].as_array().unwrap().len(),
        1,
        "refunded once"
    );
    assert_eq!(refunded["data"][0]["amount"], 999);
    assert!(payments_of(&app)
        .iter()
        .all(|p| p.status != "succeeded" || p.kind != "renewal"));
    assert_eq!(
        app.patches().await.len(),
        1,
        "only the cancel reached Treefort"
    );
}
