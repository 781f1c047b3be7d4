use chrono::TimeDelta;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;
use treefort_webpay::models::subscriptions;

async fn cancel_in_portal(
    app: &TestApp,
    portal_url: &str,
    subscription_id: i64,
) -> reqwest::Response {
    app.client
        .post(format!("{portal_url}/cancel"))
        .form(&[("subscription_id", subscription_id.to_string())])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_portal_shows_subscriptions_payments_card_and_back_link() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let url = app.portal_url("u1", "fr-FR").await;
    assert!(url.starts_with(&format!("{}/billing/", app.address)));
    let page = app.get(&url).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<html lang="fr">"#));
    assert!(html.contains("Facturation"));
    assert!(html.contains("Plan 1"));
    assert!(html.contains("Actif"));
    assert!(html.contains("9,99\u{a0}$"));
    assert!(html.contains("Visa •••• 4242"));
    assert!(html.contains("Payé"));
    assert!(html.contains(r#"href="https://app.example.com/account""#));
    assert!(html.contains("Résilier l&#39;abonnement"));
}

#[tokio::test]
async fn a_portal_link_is_unique_and_expires() {
    let app = spawn_app().await;
    let first = app.portal_url("u1", "en").await;
    let second = app.portal_url("u1", "en").await;
    assert_ne!(first, second);
    let html = app.get(&first).await.text().await.unwrap();
    assert!(html.contains("You have no subscriptions."));
    app.advance(TimeDelta::seconds(901));
    let expired = app.get(&first).await;
    assert_eq!(expired.status(), 410);
    assert!(!expired.text().await.unwrap().contains("u1@example.com"));
}

#[tokio::test]
async fn cancel_from_the_portal_runs_the_same_flow_and_confirms_after_treefort() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let url = app.portal_url("u1", "en").await;
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    let response = cancel_in_portal(&app, &url, sub.id).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Your subscription is canceled"));
    assert!(html.contains("Canceled: access until"));
    assert_eq!(
        app.treefort_requests("PATCH", "/v1/subscriptions/tf_sub_1")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_failed_portal_cancel_says_so_and_changes_nothing() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.mount_token().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "tf_sub_1"})),
        )
        .mount(&app.treefort)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/v1/subscriptions/"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&app.treefort)
        .await;
    app.subscribed_user("u1", 1).await;
    let url = app.portal_url("u1", "en").await;
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    let response = cancel_in_portal(&app, &url, sub.id).await;
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("could not cancel"));
    let sub = subscriptions::find_live_for_user(&mut app.conn(), "u1")
        .unwrap()
        .unwrap();
    assert!(sub.canceled_at.is_none());
}

#[tokio::test]
async fn a_portal_cannot_cancel_another_users_subscription() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("victim", 1).await;
    let theirs = subscriptions::find_live_for_user(&mut app.conn(), "victim")
        .unwrap()
        .unwrap();
    let url = app.portal_url("attacker", "en").await;
    let response = cancel_in_portal(&app, &url, theirs.id).await;
    assert_eq!(response.status(), 404);
    assert!(app.treefort_requests("PATCH", "/v1/").await.is_empty());
}
