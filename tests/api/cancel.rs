use std::time::Duration;

use serde_json::{json, Value};
use treefort_webpay::models::subscriptions;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn cancel(app: &TestApp, user: &str, plan: i64) -> reqwest::Response {
    app.post_treefort(
        "/treefort/cancel-subscription",
        &json!({"userId": user, "subscriptionPlanId": plan}),
    )
    .await
}

/// A subscribed user on a Treefort whose PATCH answers with `patch`.
async fn subscribed_with_patch(patch: ResponseTemplate) -> TestApp {
    let app = spawn_app_with(|o| {
        o.set("TREEFORT_TIMEOUT_MS", "500");
    })
    .await;
    app.add_plan(1, 0);
    app.mount_token().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "tf_sub_1"})))
        .mount(&app.treefort)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/v1/subscriptions/"))
        .respond_with(patch)
        .mount(&app.treefort)
        .await;
    app.subscribed_user("u1", 1).await;
    app
}

#[tokio::test]
async fn cancel_patches_canceled_at_and_answers_after_treeforts_2xx() {
    let app = subscribed_with_patch(ResponseTemplate::new(200)).await;
    let now = app.now();
    let response = cancel(&app, "u1", 1).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["userId"], "u1");
    assert_eq!(body["subscriptionPlanId"], 1);
    let patches = app
        .treefort_requests("PATCH", "/v1/subscriptions/tf_sub_1")
        .await;
    assert_eq!(patches.len(), 1);
    let sent: Value = serde_json::from_slice(&patches[0].body).unwrap();
    assert_eq!(sent["provider"], "webPayment");
    assert_eq!(sent["canceledAt"], body["canceledAt"]);
    assert_eq!(
        treefort_webpay::clock::rfc3339(now),
        sent["canceledAt"].as_str().unwrap()
    );
    assert_eq!(patches[0].headers["x-treefort-version"], API_VERSION);
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    assert!(sub.canceled_at.is_some(), "recorded locally");
    assert!(
        sub.deactivated_at.is_none(),
        "access lasts until the period ends"
    );
}

#[tokio::test]
async fn a_repeated_cancel_succeeds_without_a_second_patch() {
    let app = subscribed_with_patch(ResponseTemplate::new(200)).await;
    assert_eq!(cancel(&app, "u1", 1).await.status(), 200);
    assert_eq!(cancel(&app, "u1", 1).await.status(), 200);
    assert_eq!(
        app.treefort_requests("PATCH", "/v1/subscriptions/")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_treefort_error_is_502_and_changes_nothing() {
    let app = subscribed_with_patch(ResponseTemplate::new(500)).await;
    let (status, code) = error_code(cancel(&app, "u1", 1).await).await;
    assert_eq!((status, code.as_str()), (502, "treefort_error"));
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    assert!(sub.canceled_at.is_none());
}

#[tokio::test]
async fn a_treefort_timeout_is_504_and_changes_nothing() {
    let app =
        subscribed_with_patch(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
            .await;
    let (status, code) = error_code(cancel(&app, "u1", 1).await).await;
    assert_eq!((status, code.as_str()), (504, "treefort_timeout"));
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    assert!(sub.canceled_at.is_none());
}

#[tokio::test]
async fn an_unknown_subscription_is_404() {
    let app = subscribed_with_patch(ResponseTemplate::new(200)).await;
    assert_eq!(
        error_code(cancel(&app, "u2", 1).await).await,
        (404, "subscription_not_found".into())
    );
    assert_eq!(
        error_code(cancel(&app, "u1", 2).await).await,
        (404, "subscription_not_found".into())
    );
}

#[tokio::test]
async fn a_cancel_first_delivers_a_creation_that_is_still_queued() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.mount_token().await;
    let down = Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&app.treefort)
        .await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 202);
    drop(down);
    app.treefort_ok().await;
    app.advance(chrono::TimeDelta::seconds(5));
    assert_eq!(cancel(&app, "u1", 1).await.status(), 200);
    let requests = app.treefort.received_requests().await.unwrap();
    let order: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path().starts_with("/v1/"))
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        order,
        [
            "POST /v1/subscriptions",
            "POST /v1/subscriptions",
            "PATCH /v1/subscriptions/tf_sub_1"
        ]
    );
}
