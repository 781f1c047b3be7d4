use base64::Engine;
use chrono::{DateTime, TimeDelta};
use diesel::prelude::*;
use serde_json::{json, Value};
use treefort_webpay::models::{outbox, payments, subscriptions};
use treefort_webpay::schema::{promo_codes, treefort_outbox};
use treefort_webpay::services::promo::PromoInput;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn body_of(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn parse_time(v: &Value) -> DateTime<chrono::Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a date string"))
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn paying_posts_the_subscription_to_treefort_then_redirects_to_success() {
    let app = spawn_app_with(|o| {
        o.set("TREEFORT_TENANT", "tenant-9");
    })
    .await;
    let url = app.link_to_paid_plan("u1").await;
    let paid_at = app.now();
    let response = app.pay(&url, GOOD_CARD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://app.example.com/success"
    );

    let posts = app.treefort_requests("POST", "/v1/subscriptions").await;
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(
        post.headers["authorization"],
        format!("Bearer {TREEFORT_TOKEN}")
    );
    assert_eq!(post.headers["x-treefort-version"], API_VERSION);
    assert_eq!(post.headers["x-treefort-tenant"], "tenant-9");
    let sub_id = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        post.headers["idempotency-key"],
        format!("treefort-webpay-subscription-{sub_id}")
    );
    let body = body_of(post);
    assert_eq!(body["provider"], "webPayment");
    assert_eq!(body["userId"], "u1");
    assert_eq!(body["subscriptionPlanId"], 1);
    assert_eq!(body["trialEndsAt"], Value::Null);
    let period_end = parse_time(&body["currentPeriodEndsAt"]);
    assert_eq!(
        period_end,
        paid_at
            .checked_add_months(chrono::Months::new(1))
            .unwrap()
            .duration_trunc_ms()
    );

    // The token came from the client-credentials grant with Basic auth and the scope.
    let token_requests = app.treefort_requests("POST", "/oauth2/token").await;
    assert_eq!(token_requests.len(), 1);
    let basic = base64::engine::general_purpose::STANDARD.encode("client-id:client-secret");
    assert_eq!(
        token_requests[0].headers["authorization"],
        format!("Basic {basic}")
    );
    let form = String::from_utf8(token_requests[0].body.clone()).unwrap();
    assert!(
        form.contains("grant_type=client_credentials")
            && form.contains("scope=target-entity%3A1234"),
        "{form}"
    );

    let mut conn = app.conn();
    let sub = subscriptions::find_live_for_user(&mut conn, "u1")
        .unwrap()
        .unwrap();
    assert_eq!(sub.treefort_subscription_id.as_deref(), Some("tf_sub_1"));
    assert_eq!(sub.trial_ends_at, None);
    let customer = sub.customer_id;
    let paid = payments::list_for_customer(&mut conn, customer).unwrap();
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (paid[0].amount, paid[0].currency.as_str(), paid[0].divisor),
        (999, "USD", 100)
    );
    assert_eq!(outbox::count_pending(&mut conn).unwrap(), 0);
}

trait TruncMs {
    fn duration_trunc_ms(self) -> Self;
}

impl TruncMs for DateTime<chrono::Utc> {
    fn duration_trunc_ms(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(TimeDelta::milliseconds(1)).unwrap()
    }
}

#[tokio::test]
async fn a_trial_posts_trial_end_as_the_period_end_and_charges_nothing() {
    let app = spawn_app().await;
    app.add_plan(1, 7);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    let start = app.now();
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    let body = body_of(&app.treefort_requests("POST", "/v1/subscriptions").await[0]);
    assert_eq!(body["trialEndsAt"], body["currentPeriodEndsAt"]);
    assert_eq!(
        parse_time(&body["trialEndsAt"]),
        (start + TimeDelta::days(7)).duration_trunc_ms()
    );
    assert_eq!(app.count("payments"), 0);
}

#[tokio::test]
async fn a_declined_card_shows_why_and_the_link_stays_usable() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    let declined = app.pay(&url, DECLINED_CARD).await;
    assert_eq!(declined.status(), 402);
    assert_eq!(app.gateway_charges(), (0, 0));
    assert!(declined
        .text()
        .await
        .unwrap()
        .contains("Your card was declined"));
    assert_eq!(app.count("subscriptions"), 0);
    assert!(app
        .treefort_requests("POST", "/v1/subscriptions")
        .await
        .is_empty());

    let invalid = app.pay(&url, "4242424242424241").await;
    assert_eq!(invalid.status(), 400);
    assert!(invalid
        .text()
        .await
        .unwrap()
        .contains("check the card details"));

    assert_eq!(app.get(&url).await.status(), 200);
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
}

#[tokio::test]
async fn a_used_link_can_never_pay_again() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    let again = app.pay(&url, GOOD_CARD).await;
    assert_eq!(again.status(), 410);
    let page = app.get(&url).await;
    assert_eq!(page.status(), 410);
    assert!(!page.text().await.unwrap().contains("u1@example.com"));
    assert_eq!(app.count("payments"), 1);
}

#[tokio::test]
async fn racing_submissions_of_one_link_pay_exactly_once() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    let urls = vec![url.clone(); 6];
    let statuses: Vec<u16> = app
        .pay_concurrently(&urls)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [303, 409, 410].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.count("payments"), 1);
    assert_eq!(
        app.gateway_charges(),
        (1, 0),
        "one charge, nothing to refund"
    );
    assert_eq!(app.count("subscriptions"), 1);
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn two_links_of_one_user_never_make_two_subscriptions() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let first = app.checkout_url("u1", 1, None).await;
    let second = app.checkout_url("u1", 1, None).await;
    let (a, b) = tokio::join!(app.pay(&first, GOOD_CARD), app.pay(&second, GOOD_CARD));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 409]);
    assert_eq!(app.count("subscriptions"), 1);
    assert_eq!(app.count("payments"), 1);
    assert_eq!(
        app.gateway_charges(),
        (1, 0),
        "the second link never charged"
    );
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn when_treefort_fails_the_payment_is_kept_and_the_page_waits_for_delivery() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.mount_token().await;
    let failing = Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&app.treefort)
        .await;
    let url = app.checkout_url("u1", 1, None).await;
    let response = app.pay(&url, GOOD_CARD).await;
    assert_eq!(response.status(), 202);
    let html = response.text().await.unwrap();
    assert!(html.contains("Payment received"));
    let token = url.rsplit('/').next().unwrap();
    assert!(html.contains(&format!("url=/checkout/{token}/activation")));
    assert_eq!(app.count("payments"), 1);
    let activation = format!("{url}/activation");
    assert_eq!(app.get(&activation).await.status(), 202);
    let (attempts, error): (i32, Option<String>) = treefort_outbox::table
        .select((treefort_outbox::attempts, treefort_outbox::last_error))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("503"));

    // Operators see it waiting.
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_treefort-webpay"))
        .args(["outbox", "list", "--json"])
        .env("DATABASE_URL", &app.vars["DATABASE_URL"])
        .output()
        .unwrap();
    assert!(listed.status.success());
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["operation"], "create");
    assert!(listed[0]["lastError"].as_str().unwrap().contains("503"));

    // Treefort recovers; once the retry is due the worker delivers it and the page moves on.
    drop(failing);
    app.treefort_ok().await;
    app.advance(TimeDelta::seconds(5));
    treefort_webpay::worker::run_once(&app.state).await;
    let moved_on = app.get(&activation).await;
    assert_eq!(moved_on.status(), 303);
    assert_eq!(
        moved_on.headers()["location"],
        "https://app.example.com/success"
    );
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    assert_eq!(sub.treefort_subscription_id.as_deref(), Some("tf_sub_1"));
}

#[tokio::test]
async fn a_rejected_token_is_renewed_once_and_cached_otherwise() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.mount_token().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&app.treefort)
        .await;
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    assert_eq!(
        app.treefort_requests("POST", "/oauth2/token").await.len(),
        2
    );
    app.subscribed_user("u2", 1).await;
    assert_eq!(
        app.treefort_requests("POST", "/oauth2/token").await.len(),
        2,
        "the token is cached"
    );
}

#[tokio::test]
async fn a_token_is_fetched_again_shortly_before_it_expires() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    // expires_in is 3600 s; the client renews a minute early.
    app.advance(TimeDelta::seconds(3600 - 61));
    app.subscribed_user("u2", 1).await;
    assert_eq!(
        app.treefort_requests("POST", "/oauth2/token").await.len(),
        1
    );
    app.advance(TimeDelta::seconds(2));
    app.subscribed_user("u3", 1).await;
    assert_eq!(
        app.treefort_requests("POST", "/oauth2/token").await.len(),
        2
    );
}

#[tokio::test]
async fn a_promo_code_discounts_the_charge_and_is_redeemed_once() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.add_promo(PromoInput {
        code: "Spring25".into(),
        percent_off: Some(25),
        ..Default::default()
    });
    let url = app.checkout_url("u1", 1, Some("spring25")).await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    let mut conn = app.conn();
    let sub = subscriptions::find_live_for_user(&mut conn, "u1")
        .unwrap()
        .unwrap();
    let paid = payments::list_for_customer(&mut conn, sub.customer_id).unwrap();
    assert_eq!((paid[0].amount, paid[0].discount_amount), (749, 250));
    let redeemed: i32 = promo_codes::table
        .select(promo_codes::times_redeemed)
        .first(&mut *conn)
        .unwrap();
    assert_eq!(redeemed, 1);
    assert_eq!(app.count("promo_redemptions"), 1);
}

#[tokio::test]
async fn racing_checkouts_never_exceed_max_redemptions() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.add_promo(PromoInput {
        code: "ONCE".into(),
        percent_off: Some(50),
        max_redemptions: Some(1),
        ..Default::default()
    });
    let mut urls = Vec::new();
    for user in ["u1", "u2", "u3", "u4"] {
        urls.push(app.checkout_url(user, 1, Some("once")).await);
    }
    let results = app.pay_concurrently(&urls).await;
    let mut statuses: Vec<u16> = Vec::new();
    for r in results {
        let status = r.status().as_u16();
        if status == 409 {
            assert!(r
                .text()
                .await
                .unwrap()
                .contains("promo code can no longer be used"));
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(app.count("payments"), 1);
    assert_eq!(app.gateway_charges(), (1, 0), "only the winner was charged");
    let redeemed: i32 = promo_codes::table
        .select(promo_codes::times_redeemed)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(redeemed, 1);
}

#[tokio::test]
async fn card_numbers_never_reach_the_database() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let dump = json!([app.count("customers"),]);
    assert_eq!(dump, json!([1]));
    let mut conn = app.conn();
    use treefort_webpay::schema::customers;
    let (reference, last4): (Option<String>, Option<String>) = customers::table
        .select((customers::payment_method_ref, customers::card_last4))
        .first(&mut *conn)
        .unwrap();
    assert_eq!(last4.as_deref(), Some("4242"));
    assert!(!reference.unwrap().contains("4242424242424242"));
}

#[tokio::test]
async fn a_charge_taken_by_a_killed_process_is_completed_by_reconciliation() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    // The page was shown; then a process made the gateway customer, claimed the link, saved
    // the card, started and confirmed the charge, and was killed before recording anything.
    assert_eq!(app.get(&url).await.status(), 200);
    use treefort_webpay::models::{checkout_sessions, customers};
    let session = app.first_checkout_session();
    let now = app.now().naive_utc();
    let attempt = checkout_sessions::claim_for_payment(&mut app.conn(), session.id, now, 5)
        .unwrap()
        .expect("the link is claimed");
    let customer =
        customers::ensure(&mut app.conn(), "u1", &session.user_email, None, now).unwrap();
    let customer_ref =
        treefort_webpay::services::customers::gateway_customer(&app.state, &customer)
            .await
            .unwrap();
    let card = app
        .state
        .gateway
        .save_card(
            &customer_ref,
            &treefort_webpay::gateway::Purpose::Checkout {
                session_id: session.id,
                attempt,
            },
            treefort_webpay::gateway::CardSubmission::Fields(treefort_webpay::gateway::CardInput {
                number: GOOD_CARD.into(),
                expiry: "12/40".into(),
                cvc: "123".into(),
            }),
        )
        .await
        .unwrap();
    customers::set_payment_method(
        &mut app.conn(),
        customer.id,
        &card.reference,
        &card.brand,
        &card.last4,
        now,
    )
    .unwrap();
    let price = treefort_webpay::domain::money::Money {
        amount: 999,
        currency: "USD".into(),
        divisor: 100,
    };
    let key = format!("checkout-{}-{attempt}", session.id);
    let request = treefort_webpay::gateway::ChargeRequest {
        customer_ref: &customer_ref,
        card_ref: &card.reference,
        amount: &price,
        kind: treefort_webpay::gateway::ChargeKind::Checkout,
        idempotency_key: &key,
        metadata: vec![],
    };
    let reference = app.state.gateway.start_charge(&request).await.unwrap();
    checkout_sessions::set_gateway_payment_ref(&mut app.conn(), session.id, attempt, &reference)
        .unwrap();
    app.state.gateway.confirm_charge(&reference).await.unwrap();
    assert_eq!(
        app.pay(&url, GOOD_CARD).await.status(),
        409,
        "in progress while the attempt is fresh"
    );

    app.advance(TimeDelta::minutes(4));
    app.run_worker().await;
    assert_eq!(
        app.gateway_charges(),
        (1, 0),
        "the charge taken before the crash, not a second one"
    );
    assert_eq!(app.count("payments"), 1);
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1
    );
    assert_eq!(
        app.pay(&url, GOOD_CARD).await.status(),
        410,
        "the link is used: the shopper sees it is complete"
    );
}

#[tokio::test]
async fn an_attempt_killed_before_any_charge_frees_the_link_within_seconds() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    use treefort_webpay::models::checkout_sessions;
    let session = app.first_checkout_session();
    let now = app.now().naive_utc();
    checkout_sessions::claim_for_payment(&mut app.conn(), session.id, now, 5)
        .unwrap()
        .expect("the link is claimed");
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 409);
    // Freed within seconds, for this link and any other of the user.
    app.advance(TimeDelta::seconds(20));
    app.run_worker().await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    assert_eq!(app.gateway_charges(), (1, 0));
}

#[tokio::test]
async fn a_new_attempt_after_a_refunded_one_is_a_new_charge() {
    // The sandbox's charge key used to be the same for every attempt of a link, so a second try
    // after a refunded first one was answered with the old, refunded charge as a success.
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    use treefort_webpay::models::checkout_sessions;
    let session = app.first_checkout_session();
    // The first attempt charged, and that charge was refunded (say, it could not be recorded).
    assert_eq!(app.get(&url).await.status(), 200);
    let now = app.now().naive_utc();
    let first = checkout_sessions::claim_for_payment(&mut app.conn(), session.id, now, 5)
        .unwrap()
        .unwrap();
    let price = treefort_webpay::domain::money::Money {
        amount: 999,
        currency: "USD".into(),
        divisor: 100,
    };
    let first_key = format!("checkout-{}-{first}", session.id);
    let outcome = app
        .state
        .gateway
        .charge(&treefort_webpay::gateway::ChargeRequest {
            customer_ref: "cus_x",
            card_ref: "pm_sandbox_ok_x",
            amount: &price,
            kind: treefort_webpay::gateway::ChargeKind::Checkout,
            idempotency_key: &first_key,
            metadata: vec![],
        })
        .await
        .unwrap();
    let treefort_webpay::gateway::ChargeOutcome::Succeeded { reference } = outcome else {
        panic!("charged")
    };
    app.state
        .gateway
        .refund(&reference, &price, "refund-test")
        .await
        .unwrap();
    checkout_sessions::release_claim(&mut app.conn(), session.id, first).unwrap();

    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    assert_eq!(
        app.gateway_charges(),
        (2, 1),
        "the second attempt took its own money; the refunded charge does not count"
    );
    let recorded: Option<String> = {
        use treefort_webpay::schema::payments;
        payments::table
            .select(payments::gateway_reference)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert_ne!(recorded.as_deref(), Some(reference.as_str()));
}

#[tokio::test]
async fn a_crowd_of_attempts_at_the_gateway_never_holds_up_an_uncharged_one() {
    use diesel::prelude::*;
    use treefort_webpay::models::checkout_sessions::{self, CheckoutSession};
    use treefort_webpay::schema::checkout_sessions as cs;
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let sessions_of = |user: &str| -> Vec<CheckoutSession> {
        cs::table
            .filter(cs::user_id.like(user))
            .load(&mut *app.conn())
            .unwrap()
    };
    // 60 shoppers sent to their bank's 3-D Secure step (each attempt's payment started), none of
    // them back yet: reconciliation leaves them alone for 3 minutes.
    for n in 0..60 {
        app.checkout_url(&format!("at-bank-{n}"), 1, None).await;
    }
    let now = app.now().naive_utc();
    for session in sessions_of("at-bank-%") {
        let attempt = checkout_sessions::claim_for_payment(&mut app.conn(), session.id, now, 5)
            .unwrap()
            .unwrap();
        let reference = format!("pay_at_bank_{}", session.id);
        checkout_sessions::set_gateway_payment_ref(
            &mut app.conn(),
            session.id,
            attempt,
            &reference,
        )
        .unwrap();
    }
    // A minute later another shopper's process dies after claiming the link, before any charge.
    app.advance(TimeDelta::minutes(1));
    let url = app.checkout_url("u1", 1, None).await;
    let mine = sessions_of("u1").remove(0);
    checkout_sessions::claim_for_payment(&mut app.conn(), mine.id, app.now().naive_utc(), 5)
        .unwrap()
        .unwrap();
    app.advance(TimeDelta::seconds(20));
    app.run_worker().await;
    assert_eq!(
        app.pay(&url, GOOD_CARD).await.status(),
        303,
        "the link is free again within seconds, whatever waits at the gateway"
    );
    // Once they are old enough, all 60 are looked up (the sandbox knows none of them: nothing
    // taken, each link given back), the last ten in the round after the first fifty.
    app.advance(TimeDelta::minutes(3));
    app.run_worker().await;
    app.run_worker().await;
    let processing: i64 = cs::table
        .filter(cs::status.eq("processing"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(processing, 0);
}
