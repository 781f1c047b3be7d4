//! Rate limits and the spending of a checkout link by failed attempts.

use crate::helpers::{error_code, spawn_app_with, API_KEY, DECLINED_CARD, GOOD_CARD};

#[tokio::test]
async fn a_provider_key_over_its_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(|o| {
        o.set("RATE_LIMIT_TREEFORT_PER_MINUTE", "3");
    })
    .await;
    app.add_plan(1, 0);
    let body = serde_json::json!({"subscriptionPlanId": 1});
    let ask = || app.post_treefort("/treefort/subscription-plan", &body);
    for _ in 0..3 {
        assert_eq!(ask().await.status(), 200);
    }
    let limited = ask().await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        crate::helpers::error_code(limited).await,
        (429, "rate_limited".into())
    );
}

#[tokio::test]
async fn a_client_over_the_pages_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(|o| {
        o.set("RATE_LIMIT_PAGES_PER_MINUTE", "2");
    })
    .await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(app.get(&url).await.status(), 200);
    assert_eq!(app.get(&url).await.status(), 200);
    let limited = app.get(&url).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The Treefort routes count separately.
    assert_eq!(app.checkout_session("u2", 1, None).await.status(), 200);
}

#[tokio::test]
async fn a_link_is_spent_after_its_failed_attempts_and_the_page_says_so() {
    let app = spawn_app_with(|o| {
        o.set("CHECKOUT_MAX_FAILED_ATTEMPTS", "2");
    })
    .await;
    let url = app.link_to_paid_plan("u1").await;
    assert_eq!(app.pay(&url, DECLINED_CARD).await.status(), 402);
    assert_eq!(app.pay(&url, DECLINED_CARD).await.status(), 402);
    let spent = app.pay(&url, GOOD_CARD).await;
    assert_eq!(spent.status(), 410);
    assert!(spent
        .text()
        .await
        .unwrap()
        .contains("too many failed payment attempts"));
    assert_eq!(app.get(&url).await.status(), 410);
    assert_eq!(app.gateway_charges(), (0, 0), "no card testing through it");
}

/// A key that looks like ours (`tfw_<12 hex>_<43 chars>`), never made.
fn made_up_key(n: u32) -> String {
    format!("tfw_{n:012x}_{}", "A".repeat(43))
}

async fn entitlement_from(app: &crate::helpers::TestApp, key: &str, from: &str) -> u16 {
    app.client
        .get(format!("{}/v1/users/u1/entitlement", app.address))
        .bearer_auth(key)
        .header("X-Forwarded-For", from)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_client_that_sends_a_new_key_each_time_is_refused_after_its_failures() {
    let app = spawn_app_with(|o| {
        o.set("RATE_LIMIT_FAILED_AUTH_PER_MINUTE", "5")
            .set("TRUST_PROXY_HEADERS", "1");
    })
    .await;
    let good = app.cli_ok(&["apikeys", "create", "--name", "backend", "--scope", "read"]);
    let good = good.lines().next().unwrap().to_string();
    for n in 0..5 {
        assert_eq!(
            entitlement_from(&app, &made_up_key(n), "198.51.100.7").await,
            401
        );
    }
    // The sixth failure uses the budget up; from then the address is turned away at the door,
    // whatever key it sends, with a time to come back.
    assert_eq!(
        entitlement_from(&app, &made_up_key(5), "198.51.100.7").await,
        401
    );
    let refused = app
        .client
        .get(format!("{}/v1/users/u1/entitlement", app.address))
        .bearer_auth(made_up_key(6))
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(error_code(refused).await, (429, "rate_limited".into()));
    assert_eq!(entitlement_from(&app, &good, "198.51.100.7").await, 429);
    // The Treefort routes count failures of the same address too.
    let treefort = app
        .client
        .post(format!("{}/treefort/subscription-plan", app.address))
        .bearer_auth("wrong")
        .header("X-Forwarded-For", "198.51.100.7")
        .json(&serde_json::json!({"subscriptionPlanId": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(treefort.status(), 429);
    // Another address, and the right key, are not held back.
    assert_eq!(entitlement_from(&app, &good, "198.51.100.8").await, 200);
}

#[tokio::test]
async fn a_failing_provider_key_counts_against_its_address_and_a_good_one_does_not() {
    let app = spawn_app_with(|o| {
        o.set("RATE_LIMIT_FAILED_AUTH_PER_MINUTE", "2")
            .set("TRUST_PROXY_HEADERS", "1");
    })
    .await;
    app.add_plan(1, 0);
    let ask = |key: &'static str| {
        app.client
            .post(format!("{}/treefort/subscription-plan", app.address))
            .bearer_auth(key)
            .header("X-Forwarded-For", "198.51.100.9")
            .json(&serde_json::json!({"subscriptionPlanId": 1}))
            .send()
    };
    for _ in 0..20 {
        assert_eq!(
            ask(API_KEY).await.unwrap().status(),
            200,
            "successes cost nothing"
        );
    }
    for _ in 0..3 {
        assert_eq!(ask("not-the-key").await.unwrap().status(), 401);
    }
    assert_eq!(ask(API_KEY).await.unwrap().status(), 429);
}

#[tokio::test]
async fn an_unknown_api_key_id_is_remembered_and_not_looked_up_again() {
    use diesel::prelude::*;
    use treefort_webpay::schema::api_keys;
    let app = spawn_app_with(|_| {}).await;
    let secret = "A".repeat(43);
    let key = made_up_key(0xabc);
    assert_eq!(entitlement_from(&app, &key, "198.51.100.1").await, 401);
    // The key's row appears behind the service's back (no catalog version change): a lookup
    // would find it. Refused from memory, it was not looked up.
    let insert = |key_id: &str| {
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::key_id.eq(key_id),
                api_keys::name.eq("direct"),
                api_keys::scope.eq("read"),
                api_keys::secret_hash.eq(treefort_webpay::domain::api_key::hash(&secret)),
                api_keys::created_at.eq(chrono::Utc::now().naive_utc()),
            ))
            .execute(&mut *app.conn())
            .unwrap();
    };
    insert(&format!("{:012x}", 0xabc));
    assert_eq!(entitlement_from(&app, &key, "198.51.100.1").await, 401);
    // A key id never presented before is looked up, and found.
    insert(&format!("{:012x}", 0xabd));
    assert_eq!(
        entitlement_from(&app, &made_up_key(0xabd), "198.51.100.1").await,
        200
    );
}
