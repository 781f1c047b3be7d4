//! Dead letters: an update Treefort rejects for good stops being retried, holds back the later
//! updates of its subscription, and is shown to operators, who retry or skip it.

use chrono::TimeDelta;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_app, TestApp};

fn dead_entries(app: &TestApp) -> Vec<Value> {
    let out = app.cli(&["outbox", "list", "--dead", "--json"]);
    assert!(out.status.success());
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Treefort creates subscriptions, rejects the first PATCH with 422, accepts the later ones.
async fn treefort_rejecting_one_patch(app: &TestApp) {
    app.mount_token().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "tf_sub_1"})))
        .mount(&app.treefort)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/v1/subscriptions/[^/]+$"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"error": "currentPeriodEndsAt is before the previous one"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.treefort)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/v1/subscriptions/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "tf_sub_1"})))
        .mount(&app.treefort)
        .await;
}

#[tokio::test]
async fn a_rejected_update_is_a_dead_letter_that_holds_its_queue_until_skipped() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    treefort_rejecting_one_patch(&app).await;
    app.subscribed_user("u1", 1).await;

    // The first renewal's PATCH is rejected for good: tried once, never again.
    app.advance(TimeDelta::days(32));
    app.run_worker().await;
    assert_eq!(app.patches().await.len(), 1);
    app.advance(TimeDelta::hours(3));
    app.run_worker().await;
    assert_eq!(app.patches().await.len(), 1, "a 4xx is not retried");
    let dead = dead_entries(&app);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["status"], "dead");
    assert!(
        dead[0]["lastError"].as_str().unwrap().contains("422"),
        "{dead:?}"
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("treefort_webpay_outbox_dead 1"),
        "{metrics}"
    );

    // The next renewal's PATCH must not overtake the dead one.
    app.advance(TimeDelta::days(31));
    app.run_worker().await;
    app.run_worker().await;
    assert_eq!(app.patches().await.len(), 1, "held behind the dead letter");

    let id = dead[0]["id"].as_i64().unwrap().to_string();
    let refused = app.cli(&["outbox", "skip", &id]);
    assert!(!refused.status.success(), "a reason is required");
    let skipped = app.cli(&[
        "outbox",
        "skip",
        &id,
        "--reason",
        "fixed in Treefort by hand",
        "--by",
        "alice",
    ]);
    assert!(
        skipped.status.success(),
        "{}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    app.run_worker().await;
    let patches = app.patches().await;
    assert_eq!(patches.len(), 2, "the later update went");
    assert!(patches[1]["currentPeriodEndsAt"].is_string());
    assert!(dead_entries(&app).is_empty());
    let all = app.cli(&["outbox", "list", "--all", "--json"]);
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"].as_i64().unwrap().to_string() == id)
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "skipped");
    assert_eq!(entry["skippedBy"], "alice");
    assert_eq!(entry["skipReason"], "fixed in Treefort by hand");
}

#[tokio::test]
async fn a_dead_letter_retried_by_an_operator_is_delivered_in_order() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    treefort_rejecting_one_patch(&app).await;
    app.subscribed_user("u1", 1).await;
    app.advance(TimeDelta::days(32));
    app.run_worker().await;
    let dead = dead_entries(&app);
    assert_eq!(dead.len(), 1);
    // Cancel goes to Treefort synchronously: it refuses to overtake the dead update.
    let cancel = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u1", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(
        crate::helpers::error_code(cancel).await,
        (502, "treefort_update_rejected".into())
    );
    let id = dead[0]["id"].as_i64().unwrap().to_string();
    assert!(app.cli(&["outbox", "retry", &id]).status.success());
    app.run_worker().await;
    assert_eq!(
        app.patches().await.len(),
        2,
        "rejected once, then delivered"
    );
    assert!(dead_entries(&app).is_empty());
    let cancel = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u1", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(cancel.status(), 200);
}

#[tokio::test]
async fn a_create_answered_without_an_id_is_a_dead_letter_not_a_second_post() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.mount_token().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&app.treefort)
        .await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, crate::helpers::GOOD_CARD).await.status(), 202);
    app.advance(TimeDelta::hours(2));
    app.run_worker().await;
    assert_eq!(
        app.treefort_requests("POST", "/v1/subscriptions")
            .await
            .len(),
        1,
        "never POSTed again"
    );
    let dead = dead_entries(&app);
    assert_eq!(dead.len(), 1);
    assert!(dead[0]["lastError"].as_str().unwrap().contains("no id"));
}
