use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_plan_is_returned_in_treeforts_exact_shape() {
    let app = spawn_app().await;
    app.add_plan(7, 14);
    let response = app
        .post_treefort(
            "/treefort/subscription-plan",
            &json!({"subscriptionPlanId": 7, "extra": "ignored"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "subscriptionPlanId": 7, "interval": "month", "intervalCount": 1,
            "trialLengthDays": 14, "gracePeriodDays": 3,
            "price": {"currency": "USD", "amount": 999, "divisor": 100}
        })
    );
}

#[tokio::test]
async fn an_unknown_plan_is_404() {
    let app = spawn_app().await;
    let response = app
        .post_treefort(
            "/treefort/subscription-plan",
            &json!({"subscriptionPlanId": 99}),
        )
        .await;
    assert_eq!(error_code(response).await, (404, "plan_not_found".into()));
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_stable_code() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"subscriptionPlanId": "7"}),
        json!({"subscriptionPlanId": 1.5}),
    ] {
        let response = app
            .post_treefort("/treefort/subscription-plan", &body)
            .await;
        assert_eq!(
            error_code(response).await,
            (400, "invalid_body".into()),
            "{body}"
        );
    }
    let not_json = app
        .client
        .post(format!("{}/treefort/subscription-plan", app.address))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(not_json).await, (400, "invalid_body".into()));
}

#[tokio::test]
async fn oversized_bodies_are_413_and_wrong_content_types_415() {
    let app = spawn_app().await;
    let big = json!({"subscriptionPlanId": 1, "padding": "x".repeat(70 * 1024)});
    let response = app.post_treefort("/treefort/subscription-plan", &big).await;
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".into())
    );
    let text = app
        .client
        .post(format!("{}/treefort/subscription-plan", app.address))
        .bearer_auth(API_KEY)
        .header("content-type", "text/plain")
        .body(r#"{"subscriptionPlanId": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(text).await,
        (415, "unsupported_media_type".into())
    );
}
