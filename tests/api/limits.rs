//! Rate limits and the spending of a checkout link by failed attempts.

use crate::helpers::{spawn_app_with, DECLINED_CARD, GOOD_CARD};

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
