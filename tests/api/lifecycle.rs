use chrono::TimeDelta;
use diesel::prelude::*;
use serde_json::{json, Value};
use treefort_webpay::models::payments::Payment;
use treefort_webpay::schema::payments;
use treefort_webpay::services::promo::PromoInput;

use crate::helpers::*;

const RENEWAL_DECLINES: &str = "4000000000000341";

fn payments_of(app: &TestApp) -> Vec<Payment> {
    payments::table
        .order(payments::id)
        .load(&mut *app.conn())
        .unwrap()
}

/// A user with a paid subscription to plan 1 that they canceled (paid time left).
async fn canceled_subscriber(app: &TestApp, user: &str) {
    app.subscribed_user(user, 1).await;
    let canceled = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": user, "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(canceled.status(), 200);
}

async fn app_at(start: &str) -> TestApp {
    let start = at(start);
    let app = spawn_app_with(|o| o.clock_start = Some(start)).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app
}

#[tokio::test]
async fn renewals_follow_calendar_months_and_patch_each_new_period_end() {
    let app = app_at("2027-01-31T12:00:00Z").await;
    app.subscribed_user("u1", 1).await;
    assert_eq!(
        app.subscription("u1").current_period_ends_at,
        at("2027-02-28T12:00:00Z").naive_utc()
    );

    app.advance_to(at("2027-02-28T11:59:59Z"));
    app.run_worker().await;
    assert!(
        app.patches().await.is_empty(),
        "nothing before the period ends"
    );

    app.advance_to(at("2027-02-28T12:00:00Z"));
    app.run_worker().await;
    app.advance_to(at("2027-03-31T12:00:00Z"));
    app.run_worker().await;
    let patches = app.patches().await;
    assert_eq!(
        patches,
        [
            json!({"provider": "webPayment", "currentPeriodEndsAt": "2027-03-31T12:00:00.000Z"}),
            json!({"provider": "webPayment", "currentPeriodEndsAt": "2027-04-30T12:00:00.000Z"}),
        ]
    );
    let paid: Vec<(String, i64)> = payments_of(&app)
        .into_iter()
        .map(|p| (p.kind, p.amount))
        .collect();
    assert_eq!(
        paid,
        [
            ("checkout".into(), 999),
            ("renewal".into(), 999),
            ("renewal".into(), 999)
        ]
    );
    assert_eq!(app.gateway_charges(), (3, 0));
}

#[tokio::test]
async fn a_trial_ends_with_the_first_charge_and_trial_ends_at_null() {
    let app = app_at("2027-01-10T08:00:00Z").await;
    app.add_plan(2, 7);
    app.subscribed_user("u1", 2).await;
    assert_eq!(app.gateway_charges(), (0, 0));
    app.advance_to(at("2027-01-17T08:00:00Z"));
    app.run_worker().await;
    assert_eq!(
        app.patches().await,
        [
            json!({"provider": "webPayment", "currentPeriodEndsAt": "2027-02-17T08:00:00.000Z", "trialEndsAt": null})
        ]
    );
    assert_eq!(app.gateway_charges(), (1, 0));
    assert_eq!(app.subscription("u1").trial_ends_at, None);
}

#[tokio::test]
async fn a_declined_renewal_keeps_access_is_retried_and_a_new_card_recovers_it() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, RENEWAL_DECLINES).await.status(), 303);

    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert!(sub.past_due_since.is_some() && sub.deactivated_at.is_none());
    assert_eq!(
        sub.next_action_at,
        Some(at("2027-02-02T00:00:00Z").naive_utc()),
        "retried after a day"
    );
    assert!(
        app.patches().await.is_empty(),
        "Treefort keeps the old period end inside grace"
    );

    app.advance_to(at("2027-02-02T00:00:00Z"));
    app.run_worker().await;
    assert_eq!(app.subscription("u1").renewal_attempts, 2);

    let portal = app.portal_url("u1", "en").await;
    let page = app.get(&portal).await.text().await.unwrap();
    assert!(page.contains("Payment failed"), "{page}");
    let token = portal.rsplit('/').next().unwrap();
    assert!(
        page.contains(&format!(r#"action="/billing/{token}/card""#)),
        "the page offers the card form"
    );
    let replaced = app.pay(&format!("{portal}/card"), GOOD_CARD).await;
    assert_eq!(replaced.status(), 200);
    assert!(replaced
        .text()
        .await
        .unwrap()
        .contains("Your card was updated"));
    app.run_worker().await;

    assert_eq!(
        app.patches().await,
        [json!({"provider": "webPayment", "currentPeriodEndsAt": "2027-03-01T00:00:00.000Z"})]
    );
    let statuses: Vec<String> = payments_of(&app).into_iter().map(|p| p.status).collect();
    assert_eq!(statuses, ["succeeded", "declined", "declined", "succeeded"]);
    assert!(app.subscription("u1").past_due_since.is_none());
}

#[tokio::test]
async fn when_grace_runs_out_treefort_gets_deactivated_at() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, RENEWAL_DECLINES).await.status(), 303);
    app.advance_to(at("2027-02-01T00:00:00Z"));
    let mut attempts_at = Vec::new();
    for _ in 0..6 {
        app.run_worker().await;
        let sub = app.subscription("u1");
        if sub.deactivated_at.is_some() {
            break;
        }
        attempts_at.push(app.now());
        app.advance_to(sub.next_action_at.unwrap().and_utc());
    }
    // Grace is 3 days: tries at the period end, after a day, on the last day; ends at grace's end.
    assert_eq!(
        attempts_at,
        [
            at("2027-02-01T00:00:00Z"),
            at("2027-02-02T00:00:00Z"),
            at("2027-02-03T12:00:00Z")
        ]
    );
    let sub = app.subscription("u1");
    assert_eq!(
        sub.deactivated_at,
        Some(at("2027-02-04T00:00:00Z").naive_utc())
    );
    assert_eq!(
        app.patches().await,
        [json!({"provider": "webPayment", "deactivatedAt": "2027-02-04T00:00:00.000Z"})]
    );
}

#[tokio::test]
async fn a_canceled_subscription_is_not_charged_again_and_ends_with_its_period() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    canceled_subscriber(&app, "u1").await;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    assert_eq!(
        app.gateway_charges(),
        (1, 0),
        "only the checkout was charged"
    );
    let patches = app.patches().await;
    assert_eq!(patches.len(), 2);
    assert_eq!(
        patches[1],
        json!({"provider": "webPayment", "deactivatedAt": "2027-02-01T00:00:00.000Z"})
    );
    assert!(app.subscription("u1").deactivated_at.is_some());
}

#[tokio::test]
async fn a_canceled_subscription_can_be_resumed_from_the_portal_and_renews() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    canceled_subscriber(&app, "u1").await;
    let portal = app.portal_url("u1", "en").await;
    assert!(app
        .get(&portal)
        .await
        .text()
        .await
        .unwrap()
        .contains("Resume subscription"));
    let id = app.subscription("u1").id.to_string();
    let resumed = app
        .client
        .post(format!("{portal}/resume"))
        .form(&[("subscription_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    assert!(resumed
        .text()
        .await
        .unwrap()
        .contains("Your subscription continues"));
    let patches = app.patches().await;
    assert_eq!(
        patches[1],
        json!({"provider": "webPayment", "canceledAt": null})
    );
    assert!(app.subscription("u1").canceled_at.is_none());
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    assert_eq!(app.gateway_charges(), (2, 0));
}

#[tokio::test]
async fn promo_durations_decide_how_many_charges_are_discounted() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.add_promo(PromoInput {
        code: "TWICE".into(),
        percent_off: Some(50),
        duration: Some("repeating".into()),
        duration_periods: Some(2),
        ..Default::default()
    });
    app.add_promo(PromoInput {
        code: "FIRST".into(),
        percent_off: Some(50),
        ..Default::default()
    });
    for (user, code) in [("u1", "TWICE"), ("u2", "FIRST")] {
        let url = app.checkout_url(user, 1, Some(code)).await;
        assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    }
    let portal = app.portal_url("u1", "en").await;
    let page = app.get(&portal).await.text().await.unwrap();
    assert!(page.contains("Next charge: $4.99 on Feb 1, 2027"), "{page}");
    for month in ["2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"] {
        app.advance_to(at(month));
        app.run_worker().await;
    }
    let amounts = |user: &str| -> Vec<i64> {
        let sub = app.subscription(user);
        payments_of(&app)
            .into_iter()
            .filter(|p| p.subscription_id == Some(sub.id))
            .map(|p| p.amount)
            .collect()
    };
    assert_eq!(amounts("u1"), [499, 499, 999]);
    assert_eq!(amounts("u2"), [499, 999, 999]);
}

#[tokio::test]
async fn two_instances_never_charge_or_patch_a_subscription_twice() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    let users: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    for user in &users {
        app.subscribed_user(user, 1).await;
    }
    let other = app.second_instance().await;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    tokio::join!(
        treefort_webpay::worker::run_once(&app.state),
        treefort_webpay::worker::run_once(&other)
    );
    let (mine, _) = app.gateway_charges();
    let (theirs, _) = charges_of(&other);
    assert_eq!(
        mine - users.len() + theirs,
        users.len(),
        "each renewal charged once ({mine} + {theirs})"
    );
    let patches = app.patches().await;
    assert_eq!(patches.len(), users.len());
    for user in &users {
        assert_eq!(app.subscription(user).periods_paid, 2, "{user}");
    }
    let renewals = payments_of(&app)
        .into_iter()
        .filter(|p| p.kind == "renewal")
        .count();
    assert_eq!(renewals, users.len());
}

#[tokio::test]
async fn a_charge_taken_before_a_crash_is_not_taken_again() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.subscribed_user("u1", 1).await;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    // A worker claimed the subscription, charged it, and was killed before recording anything.
    let sub = app.subscription("u1");
    let now = app.now().naive_utc();
    treefort_webpay::models::subscriptions::take_lease(
        &mut app.conn(),
        sub.id,
        "killed-worker",
        now,
        now + TimeDelta::minutes(5),
    )
    .unwrap();
    let customer = treefort_webpay::models::customers::find_by_id(&mut app.conn(), sub.customer_id)
        .unwrap()
        .unwrap();
    let card = customer.payment_method_ref.unwrap();
    let customer_ref = customer.gateway_customer_ref.unwrap();
    let price = treefort_webpay::domain::money::Money {
        amount: 999,
        currency: "USD".into(),
        divisor: 100,
    };
    let key = treefort_webpay::services::renewal::renewal_key(&sub);
    app.state
        .gateway
        .charge(&treefort_webpay::gateway::ChargeRequest {
            customer_ref: &customer_ref,
            card_ref: &card,
            amount: &price,
            kind: treefort_webpay::gateway::ChargeKind::Renewal,
            idempotency_key: &key,
            metadata: vec![],
        })
        .await
        .unwrap();
    assert_eq!(app.gateway_charges(), (2, 0));

    app.run_worker().await;
    assert!(
        app.patches().await.is_empty(),
        "the lease of the dead worker is respected"
    );
    app.advance(TimeDelta::minutes(6));
    app.run_worker().await;
    assert_eq!(
        app.gateway_charges(),
        (2, 0),
        "the same charge, not a second one"
    );
    assert_eq!(app.patches().await.len(), 1);
    let renewals: Vec<Value> = payments_of(&app)
        .into_iter()
        .filter(|p| p.kind == "renewal")
        .map(|p| json!(p.amount))
        .collect();
    assert_eq!(renewals, [json!(999)]);
}

async fn confirm(app: &TestApp, url: &str) -> reqwest::Response {
    app.client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_plan_switch_starts_at_the_period_end_and_patches_the_one_subscription() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.add_plan_priced(2, 7, "USD", 1999, 100);
    app.subscribed_user("u1", 1).await;
    let url = app.checkout_url("u1", 2, None).await;
    let page = app.get(&url).await.text().await.unwrap();
    assert!(page.contains("Switch to Plan 2"), "{page}");
    assert!(
        page.contains("Plan 1 continues until Feb 1, 2027")
            && page.contains("Nothing is charged today")
    );
    assert!(!page.contains("card_number"), "no card needed to switch");
    let confirmed = confirm(&app, &url).await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(
        confirmed.headers()["location"],
        "https://app.example.com/success"
    );
    assert_eq!(
        app.gateway_charges(),
        (1, 0),
        "nothing charged at the switch"
    );
    assert_eq!(app.subscription("u1").pending_plan_id, Some(2));
    let portal = app.portal_url("u1", "en").await;
    let html = app.get(&portal).await.text().await.unwrap();
    assert!(
        html.contains("Next charge: $19.99 on Feb 1, 2027 — Changes to Plan 2 on Feb 1, 2027"),
        "{html}"
    );

    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    assert_eq!(
        app.patches().await,
        [
            json!({"provider": "webPayment", "subscriptionPlanId": 2, "currentPeriodEndsAt": "2027-03-01T00:00:00.000Z"})
        ]
    );
    let sub = app.subscription("u1");
    assert_eq!((sub.plan_id, sub.pending_plan_id), (2, None));
    let renewal = payments_of(&app).into_iter().last().unwrap();
    assert_eq!((renewal.kind.as_str(), renewal.amount), ("renewal", 1999));
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1,
        "never a second subscription"
    );
    assert_eq!(app.count("subscriptions"), 1);
    // The renewal after the switch is a charge of its own (its key names its period).
    app.advance_to(at("2027-03-01T00:00:00Z"));
    app.run_worker().await;
    assert_eq!(app.gateway_charges(), (3, 0), "checkout and two renewals");
    let amounts: Vec<i64> = payments_of(&app).iter().map(|p| p.amount).collect();
    assert_eq!(amounts, [999, 1999, 1999]);
}

#[tokio::test]
async fn checking_out_again_after_a_cancel_resumes_before_sending_the_user_on() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    canceled_subscriber(&app, "u1").await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(confirm(&app, &url).await.status(), 303);
    assert_eq!(
        app.patches().await[1],
        json!({"provider": "webPayment", "canceledAt": null})
    );
    let sub = app.subscription("u1");
    assert!(sub.canceled_at.is_none());
    assert_eq!(app.gateway_charges(), (1, 0));
}

#[tokio::test]
async fn a_renewal_made_while_treefort_is_down_reaches_it_later_in_order() {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.add_plan(1, 0);
    app.mount_token().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_json(json!({"id": "tf_sub_1"})))
        .mount(&app.treefort)
        .await;
    let down = wiremock::Mock::given(wiremock::matchers::method("PATCH"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount_as_scoped(&app.treefort)
        .await;
    app.subscribed_user("u1", 1).await;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    app.advance_to(at("2027-03-01T00:00:00Z"));
    app.run_worker().await;
    assert_eq!(
        app.gateway_charges(),
        (3, 0),
        "renewals go on while Treefort is down"
    );
    assert_eq!(app.count("treefort_outbox") - 1, 2);
    drop(down);
    app.treefort_ok().await;
    for _ in 0..4 {
        app.advance(TimeDelta::hours(2));
        app.run_worker().await;
    }
    let delivered: Vec<Value> = app
        .treefort_requests("PATCH", "/v1/subscriptions/")
        .await
        .iter()
        .filter(|r| r.url.path() == "/v1/subscriptions/tf_sub_1")
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|b| b.get("currentPeriodEndsAt").is_some())
        .collect();
    // Failed attempts are in the log too; the last two sent are the two renewals, oldest first.
    let last_two: Vec<&Value> = delivered.iter().rev().take(2).rev().collect();
    assert_eq!(
        last_two[0]["currentPeriodEndsAt"],
        "2027-03-01T00:00:00.000Z"
    );
    assert_eq!(
        last_two[1]["currentPeriodEndsAt"],
        "2027-04-01T00:00:00.000Z"
    );
    let pending = treefort_webpay::models::outbox::count_pending(&mut app.conn()).unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn without_grace_days_a_declined_renewal_ends_the_subscription_at_once() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    helpers_exec(&app, "UPDATE plans SET grace_days = 0");
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, RENEWAL_DECLINES).await.status(), 303);
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert_eq!(
        sub.deactivated_at,
        Some(at("2027-02-01T00:00:00Z").naive_utc())
    );
    assert_eq!(sub.next_action_at, None);
    assert_eq!(
        app.patches().await,
        [json!({"provider": "webPayment", "deactivatedAt": "2027-02-01T00:00:00.000Z"})]
    );
    let statuses: Vec<String> = payments_of(&app).into_iter().map(|p| p.status).collect();
    assert_eq!(statuses, ["succeeded", "declined"]);
}

fn helpers_exec(app: &TestApp, sql: &str) {
    use diesel::connection::SimpleConnection;
    app.conn().batch_execute(sql).unwrap();
}

#[tokio::test]
async fn a_lease_counts_from_its_claim_even_after_slow_charges() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.subscribed_user("first", 1).await;
    app.subscribed_user("second", 1).await;
    // Two workers whose clock is at the renewals; the bank takes 1.5 s per charge. Waves of one
    // subscription: the second is claimed after the first charge (each wave's leases count from
    // its own claim).
    let clock = treefort_webpay::clock::Clock::manual(at("2027-02-01T00:00:00Z"));
    let slow = [
        ("SANDBOX_CHARGE_DELAY_MS", "1500"),
        ("WORKER_CONCURRENCY", "1"),
        ("WORKER_BATCH", "1"),
    ];
    let one = std::sync::Arc::new(app.worker_state(clock.clone(), &slow).await);
    let two = app.worker_state(clock.clone(), &slow).await;

    let round = {
        let one = one.clone();
        tokio::spawn(async move {
            treefort_webpay::services::renewal::process_due(&one, 10)
                .await
                .unwrap()
        })
    };
    // While the first charge is at the bank, six minutes pass (more than a lease).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    clock.advance(TimeDelta::minutes(6));
    // The first worker takes the second subscription after the first charge...
    let mut claimed = false;
    for _ in 0..100 {
        let sub = app.subscription("second");
        if sub.locked_by.as_deref() == Some(one.instance_id.as_str()) {
            claimed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(claimed, "the first worker claims the second subscription");
    // ...and the other worker, running now, must find it leased.
    let theirs = treefort_webpay::services::renewal::process_due(&two, 10)
        .await
        .unwrap();
    let mine = round.await.unwrap();
    assert_eq!(mine.renewed, 2);
    assert_eq!(theirs.renewed, 0);
    assert_eq!(
        charges_of(&one).0 + charges_of(&two).0,
        2,
        "each renewal charged once"
    );
}

#[tokio::test]
async fn a_cancel_arriving_mid_renewal_waits_for_it_and_reaches_treefort_after_it() {
    let app = spawn_app_with(|o| {
        o.clock_start = Some(at("2027-01-01T00:00:00Z"));
        o.set("SANDBOX_CHARGE_DELAY_MS", "1500");
    })
    .await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    let renewal = {
        let state = app.state.clone();
        tokio::spawn(async move { treefort_webpay::worker::run_once(&state).await })
    };
    // The renewal is at the (slow) bank when the user cancels.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let canceled = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u1", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(canceled.status(), 200);
    renewal.await.unwrap();
    let patches = app.patches().await;
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(
        patches[0]["currentPeriodEndsAt"].is_string() && patches[1]["canceledAt"].is_string(),
        "Treefort hears of the renewal, then of the cancel: {patches:?}"
    );
    // Nothing more is charged: the next period end deactivates.
    app.advance_to(at("2027-03-01T00:00:01Z"));
    app.run_worker().await;
    let renewals = payments_of(&app)
        .into_iter()
        .filter(|p| p.kind == "renewal")
        .count();
    assert_eq!(renewals, 1);
    assert!(app.patches().await.last().unwrap()["deactivatedAt"].is_string());
}

#[tokio::test]
async fn a_cancellation_whose_record_was_lost_is_finished_by_the_worker() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.subscribed_user("u1", 1).await;
    // Half a minute before the period end, Treefort accepted the cancel PATCH; the process died
    // before recording it.
    app.advance_to(at("2027-01-31T23:59:30Z"));
    let intent = app.now().naive_utc();
    {
        use treefort_webpay::schema::subscriptions;
        diesel::update(subscriptions::table)
            .set(subscriptions::cancel_requested_at.eq(intent))
            .execute(&mut *app.conn())
            .unwrap();
    }
    // At the period end the subscription is not charged while the cancel is unfinished.
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    assert!(
        app.subscription("u1").canceled_at.is_none(),
        "not finished yet"
    );
    assert!(app.patches().await.is_empty());
    app.advance(TimeDelta::minutes(3));
    app.run_worker().await;
    app.run_worker().await;
    let sub = app.subscription("u1");
    assert_eq!(sub.canceled_at, Some(intent), "finished with its own time");
    assert!(sub.cancel_requested_at.is_none());
    let patches = app.patches().await;
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(
        patches[0]["canceledAt"].is_string(),
        "Treefort is told again"
    );
    assert!(
        patches[1]["deactivatedAt"].is_string(),
        "and the paid period has ended"
    );
    assert_eq!(
        payments_of(&app)
            .into_iter()
            .filter(|p| p.kind == "renewal")
            .count(),
        0,
        "never charged"
    );
}

#[tokio::test]
async fn a_plan_edit_applies_to_new_checkouts_and_subscribers_move_only_when_told() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.subscribed_user("early", 1).await;
    let cli = |args: &[&str]| app.cli_ok(args);
    let said = cli(&[
        "plans",
        "upsert",
        "--id",
        "1",
        "--name",
        "Monthly",
        "--interval",
        "year",
        "--currency",
        "USD",
        "--amount",
        "1499",
        "--grace-days",
        "3",
    ]);
    assert!(
        said.contains("1 current subscriber(s) keep the price and interval"),
        "{said}"
    );
    app.subscribed_user("late", 1).await;

    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    let paid: Vec<(i64, i64)> = payments_of(&app)
        .iter()
        .map(|p| (p.subscription_id.unwrap(), p.amount))
        .collect();
    let early = app.subscription("early");
    let late = app.subscription("late");
    assert_eq!(
        paid,
        [(early.id, 999), (late.id, 1499), (early.id, 999)],
        "the early subscriber renews at their own price"
    );
    assert_eq!(
        early.current_period_ends_at,
        at("2027-03-01T00:00:00Z").naive_utc(),
        "and on their own interval"
    );
    let portal = app.portal_url("early", "en").await;
    let html = app.get(&portal).await.text().await.unwrap();
    assert!(html.contains("$9.99 every month"), "{html}");

    let moved = cli(&["plans", "migrate-subscribers", "--id", "1"]);
    assert!(moved.contains("1 subscriber(s)"), "{moved}");
    app.advance_to(at("2027-03-01T00:00:00Z"));
    app.run_worker().await;
    let last = payments_of(&app).pop().unwrap();
    assert_eq!((last.subscription_id, last.amount), (Some(early.id), 1499));
    assert_eq!(
        app.subscription("early").current_period_ends_at,
        at("2027-04-01T00:00:00Z").naive_utc(),
        "the new price, on the interval they have"
    );
}

#[tokio::test]
async fn a_stopping_worker_claims_no_new_wave_and_nothing_is_lost() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    app.subscribed_user("u1", 1).await;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.state
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    app.run_worker().await;
    let waiting = app.subscription("u1");
    assert_eq!(
        waiting.current_period_ends_at,
        at("2027-02-01T00:00:00Z").naive_utc(),
        "nothing renewed while stopping"
    );
    assert!(waiting.locked_by.is_none(), "and nothing left claimed");
    // The next worker (here the same state, restarted) takes it.
    app.state
        .stopping
        .store(false, std::sync::atomic::Ordering::SeqCst);
    app.run_worker().await;
    assert_eq!(
        app.subscription("u1").current_period_ends_at,
        at("2027-03-01T00:00:00Z").naive_utc()
    );
}
