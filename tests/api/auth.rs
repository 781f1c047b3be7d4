use serde_json::json;

use crate::helpers::*;

const ROUTES: [&str; 5] = [
    "/treefort/subscription-plan",
    "/treefort/checkout-session",
    "/treefort/billing-portal-session",
    "/treefort/cancel-subscription",
    "/treefort/validate-promo-code",
];

#[tokio::test]
async fn every_treefort_route_rejects_a_missing_or_wrong_key() {
    let app = spawn_app().await;
    for route in ROUTES {
        let url = format!("{}{route}", app.address);
        let missing = app.client.post(&url).json(&json!({})).send().await.unwrap();
        assert_eq!(
            error_code(missing).await,
            (401, "unauthorized".into()),
            "{route}"
        );
        let wrong = app
            .client
            .post(&url)
            .bearer_auth("not-the-key")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(wrong).await,
            (401, "unauthorized".into()),
            "{route}"
        );
        let basic = app
            .client
            .post(&url)
            .basic_auth(API_KEY, None::<&str>)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401, "{route}");
    }
}

#[tokio::test]
async fn either_of_two_keys_is_accepted_during_rotation() {
    let app = spawn_app_with(|o| {
        o.set("PROVIDER_API_KEYS", "old-key,new-key");
    })
    .await;
    app.add_plan(1, 0);
    for key in ["old-key", "new-key"] {
        let response = app
            .client
            .post(format!("{}/treefort/subscription-plan", app.address))
            .bearer_auth(key)
            .json(&json!({"subscriptionPlanId": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{key}");
    }
}

#[tokio::test]
async fn without_configured_keys_the_routes_answer_503() {
    let app = spawn_app_with(|o| {
        o.unset("PROVIDER_API_KEYS");
    })
    .await;
    let response = app
        .post_treefort(
            "/treefort/subscription-plan",
            &json!({"subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(error_code(response).await, (503, "not_configured".into()));
}
