//! The in-memory catalog behind the plan endpoint and promo validation: this process's changes
//! show at once, another process's (the CLI) within a second, and a code used up at checkout is
//! invalid at once.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, GOOD_CARD};
use treefort_webpay::services::promo::PromoInput;

async fn plan(app: &TestApp, id: i64) -> reqwest::Response {
    app.post_treefort(
        "/treefort/subscription-plan",
        &json!({"subscriptionPlanId": id}),
    )
    .await
}

async fn validate(app: &TestApp, code: &str) -> Value {
    app.post_treefort(
        "/treefort/validate-promo-code",
        &json!({"code": code, "subscriptionPlanIds": [1]}),
    )
    .await
    .json()
    .await
    .unwrap()
}

/// `plans upsert` from another process: the CLI.
fn cli_plan(app: &TestApp, id: &str, interval: &str, amount: &str) {
    app.cli_ok(&[
        "plans",
        "upsert",
        "--id",
        id,
        "--name",
        "Plan",
        "--interval",
        interval,
        "--currency",
        "USD",
        "--amount",
        amount,
    ]);
}

/// Asks until `done` holds, for at most 5 seconds; answers whether it did.
async fn eventually<F, Fut>(mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn changes_from_this_process_show_at_once_and_from_the_cli_soon_after() {
    let app = spawn_app().await;
    assert_eq!(plan(&app, 1).await.status(), 404);
    app.add_plan(1, 0);
    assert_eq!(plan(&app, 1).await.status(), 200, "at once");

    // Another process (the CLI) changes the price and adds a plan and a code.
    cli_plan(&app, "1", "month", "1234");
    cli_plan(&app, "2", "year", "9999");
    app.cli_ok(&[
        "promo",
        "create",
        "--code",
        "FROMCLI",
        "--percent-off",
        "10",
    ]);
    assert!(
        eventually(|| async {
            let answer: Value = plan(&app, 1).await.json().await.unwrap();
            answer["price"]["amount"] == 1234
        })
        .await,
        "the new price is served"
    );
    assert_eq!(plan(&app, 2).await.status(), 200);
    assert_eq!(validate(&app, "fromcli").await["type"], "percent");
    app.cli_ok(&["promo", "disable", "FROMCLI"]);
    assert!(
        eventually(|| async { validate(&app, "FROMCLI").await["type"] == "invalid" }).await,
        "a code disabled elsewhere stops being valid"
    );
}

#[tokio::test]
async fn a_code_used_up_at_checkout_is_invalid_at_once() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.add_promo(PromoInput {
        code: "ONCE".into(),
        percent_off: Some(50),
        max_redemptions: Some(1),
        ..Default::default()
    });
    assert_eq!(validate(&app, "ONCE").await["type"], "percent");
    let url = app.checkout_url("u1", 1, Some("ONCE")).await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    assert_eq!(validate(&app, "ONCE").await, json!({"type": "invalid"}));
}

#[tokio::test]
async fn on_postgresql_another_process_s_change_is_announced_at_commit() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        return; // LISTEN/NOTIFY is PostgreSQL's; SQLite relies on the version check above.
    }
    // A version check once a minute: only the announcement can make the change show in time.
    let app = spawn_app_with(|o| {
        o.set("CATALOG_CHECK_MS", "60000");
    })
    .await;
    app.add_plan(1, 0);
    let before: Value = plan(&app, 1).await.json().await.unwrap();
    assert_eq!(
        before["price"]["amount"], 999,
        "this process's own change, read at once"
    );
    // Let the listener connect before the change.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cli_plan(&app, "1", "month", "4321");
    assert!(
        eventually(|| async {
            let answer: Value = plan(&app, 1).await.json().await.unwrap();
            answer["price"]["amount"] == 4321
        })
        .await,
        "the CLI's change was announced and read"
    );
}
