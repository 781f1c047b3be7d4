//! `/v1` writes: `Idempotency-Key` (a repeat answers the first answer, another request with the
//! key is refused, a failure keeps nothing, keys last 24 hours), promo codes sharing the CLI's
//! rules, and webhook endpoints managed from the API and the CLI alike.

use chrono::TimeDelta;
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{at, error_code, spawn_app_with, TestApp, GOOD_CARD};
use crate::v1_support::{add_endpoint, v1_get, v1_json, v1_key, v1_post};

async fn app() -> TestApp {
    spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await
}

async fn post_with_key(
    app: &TestApp,
    key: &str,
    idempotency_key: &str,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn plan(id: i64, amount: i64) -> Value {
    json!({"id": id, "name": "Monthly", "interval": "month",
           "price": {"currency": "USD", "amount": amount, "divisor": 100}})
}

#[tokio::test]
async fn a_repeated_write_with_its_idempotency_key_answers_the_first_answer_and_does_nothing_again()
{
    let app = app().await;
    let key = v1_key(&app, "write");
    let first = post_with_key(&app, &key, "k-1", "/v1/plans", &plan(7, 999)).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    // A client retrying after a lost answer gets the same answer, and no second plan.
    let again = post_with_key(&app, &key, "k-1", "/v1/plans", &plan(7, 999)).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.count("plans"), 1);
    // The same key for another request is a client bug: refused, nothing done.
    let other = post_with_key(&app, &key, "k-1", "/v1/plans", &plan(8, 999)).await;
    assert_eq!(
        error_code(other).await,
        (409, "idempotency_key_reused".into())
    );
    assert_eq!(app.count("plans"), 1);
    // Without the key the plain rules apply (the plan exists).
    let plain = v1_post(&app, &key, "/v1/plans", Some(&plan(7, 999))).await;
    assert_eq!(error_code(plain).await, (409, "plan_exists".into()));
    // Keys are per API key: another key's k-1 is its own.
    let key2 = v1_key(&app, "write");
    let theirs = post_with_key(&app, &key2, "k-1", "/v1/plans", &plan(8, 999)).await;
    assert_eq!(theirs.status(), 201);
    // A refused request is remembered too (the same answer again).
    let bad = post_with_key(&app, &key, "k-2", "/v1/plans", &plan(9, -1)).await;
    assert_eq!(bad.status(), 400);
    let bad_again = post_with_key(&app, &key, "k-2", "/v1/plans", &plan(9, -1)).await;
    assert_eq!(bad_again.headers()["idempotent-replayed"], "true");
    assert_eq!(error_code(bad_again).await, (400, "invalid_plan".into()));
    // After 24 hours a key is forgotten.
    app.advance(TimeDelta::hours(25));
    app.run_worker().await;
    let later = post_with_key(&app, &key, "k-1", "/v1/plans", &plan(10, 999)).await;
    assert_eq!(later.status(), 201);
    // A malformed key is refused before anything runs.
    let malformed = post_with_key(&app, &key, "k 1", "/v1/plans", &plan(11, 1)).await;
    assert_eq!(malformed.status(), 400);
    let long = post_with_key(&app, &key, &"k".repeat(256), "/v1/plans", &plan(11, 1)).await;
    assert_eq!(
        error_code(long).await,
        (400, "invalid_idempotency_key".into())
    );
    assert_eq!(app.count("plans"), 3);
    // A first request whose process died keeps its key busy for 15 minutes, not a day.
    {
        use treefort_webpay::models::api_keys;
        use treefort_webpay::models::idempotency_keys::{self, NewIdempotencyKey};
        let key_id = treefort_webpay::domain::api_key::parse(&key)
            .unwrap()
            .0
            .to_string();
        let api_key = api_keys::find_by_key_id(&mut app.conn(), &key_id)
            .unwrap()
            .unwrap();
        idempotency_keys::insert(
            &mut app.conn(),
            &NewIdempotencyKey {
                api_key_id: api_key.id,
                idem_key: "died".into(),
                request_hash: "whatever".into(),
                created_at: app.now().naive_utc(),
            },
        )
        .unwrap();
    }
    let busy = post_with_key(&app, &key, "died", "/v1/plans", &plan(12, 1)).await;
    assert_eq!(
        error_code(busy).await,
        (409, "idempotency_key_reused".into())
    );
    app.advance(TimeDelta::minutes(16));
    let freed = post_with_key(&app, &key, "died", "/v1/plans", &plan(12, 1)).await;
    assert_eq!(freed.status(), 201);
}

#[tokio::test]
async fn a_write_that_failed_at_treefort_keeps_nothing_so_its_key_may_be_retried() {
    let app = app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let key = v1_key(&app, "write");
    let id = app.subscription("u1").id;
    app.treefort.reset().await;
    app.mount_token().await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/v1/subscriptions/[^/]+$"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.treefort)
        .await;
    let path = format!("/v1/subscriptions/{id}/cancel");
    let failed = post_with_key(&app, &key, "cancel-1", &path, &Value::Null).await;
    assert_eq!(failed.status(), 502);
    app.treefort.reset().await;
    app.treefort_ok().await;
    let retried = post_with_key(&app, &key, "cancel-1", &path, &Value::Null).await;
    let status = retried.status();
    let retried_body = retried.text().await.unwrap();
    assert_eq!(status, 200, "{retried_body}");
    let canceled: Value = serde_json::from_str(&retried_body).unwrap();
    assert!(canceled["canceledAt"].is_string());
    let replay = post_with_key(&app, &key, "cancel-1", &path, &Value::Null).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), canceled);
}

#[tokio::test]
async fn promo_codes_through_v1_follow_the_cli_rules_and_show_their_redemptions() {
    let app = app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let key = v1_key(&app, "write");
    let created = v1_post(
        &app,
        &key,
        "/v1/promo-codes",
        Some(
            &json!({"code": "Spring25", "percentOff": 25, "eligibleSubscriptionPlanIds": [1],
                     "maxRedemptions": 10, "duration": "repeating", "durationPeriods": 3}),
        ),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["code"], "Spring25");
    assert_eq!(created["eligibleSubscriptionPlanIds"], json!([1]));
    let twice = v1_post(
        &app,
        &key,
        "/v1/promo-codes",
        Some(&json!({"code": "SPRING25", "percentOff": 5})),
    )
    .await;
    assert_eq!(error_code(twice).await, (409, "promo_code_exists".into()));
    for (body, word) in [
        (json!({"code": "BAD-CODE", "percentOff": 5}), "letters"),
        (json!({"code": "X1", "percentOff": 101}), "percentOff"),
        (
            json!({"code": "X2", "amountOff": {"amount": 100, "currency": "usd!"}}),
            "currency",
        ),
        (json!({"code": "X3"}), "percentOff or amountOff"),
        (
            json!({"code": "X4", "percentOff": 5, "expiresAt": "2020-01-01T00:00:00Z"}),
            "expiresAt",
        ),
    ] {
        let refused = v1_post(&app, &key, "/v1/promo-codes", Some(&body)).await;
        assert_eq!(refused.status(), 400, "{body}");
        let message = refused.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains(word) && !message.contains("--"),
            "{message}"
        );
    }
    // The CLI sees the API's code and the API the CLI's.
    let shown = app.cli_ok(&["promo", "show", "spring25"]);
    assert!(shown.contains("\"percentOff\": 25"), "{shown}");
    app.cli_ok(&["promo", "create", "--code", "CLI10", "--percent-off", "10"]);
    let listed = v1_json(&app, &key, "/v1/promo-codes").await;
    let codes: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(codes.contains(&"CLI10"));

    let url = app.checkout_url("u1", 1, Some("spring25")).await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    let one = v1_json(&app, &key, "/v1/promo-codes/SPRING25").await;
    assert_eq!(one["timesRedeemed"], 1);
    assert_eq!(one["redemptions"][0]["userId"], "u1");
    assert_eq!(
        one["redemptions"][0]["subscriptionId"],
        app.subscription("u1").id
    );
    let disabled = v1_post(&app, &key, "/v1/promo-codes/spring25/disable", None).await;
    assert_eq!(disabled.json::<Value>().await.unwrap()["active"], false);
    let check = app
        .post_treefort(
            "/treefort/validate-promo-code",
            &json!({"code": "SPRING25", "subscriptionPlanIds": [1]}),
        )
        .await;
    assert_eq!(
        check.json::<Value>().await.unwrap(),
        json!({"type": "invalid"})
    );
    assert_eq!(
        error_code(v1_get(&app, &key, "/v1/promo-codes/NOPE").await).await,
        (404, "promo_code_not_found".into())
    );
    let read = v1_key(&app, "read");
    let denied = v1_post(&app, &read, "/v1/promo-codes/CLI10/disable", None).await;
    assert_eq!(error_code(denied).await, (403, "insufficient_scope".into()));
}

#[tokio::test]
async fn webhook_endpoints_are_managed_from_the_api_and_the_cli_alike() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let (id, _) = add_endpoint(
        &app,
        &key,
        "http://127.0.0.1:9/hooks",
        Some(&["payment.succeeded", "payment.failed"]),
    )
    .await;
    let added = app.cli_ok(&[
        "webhooks",
        "add",
        "--url",
        "http://127.0.0.1:9/other",
        "--events",
        "subscription.created",
    ]);
    let secret = added.lines().next().unwrap();
    assert!(secret.starts_with("whsec_"), "{added}");
    let listed = v1_json(&app, &key, "/v1/webhook-endpoints").await;
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0]["events"],
        json!(["payment.failed", "payment.succeeded"])
    );
    assert_eq!(listed[1]["events"], json!(["subscription.created"]));
    assert!(listed
        .iter()
        .all(|e| e.get("secret").is_none() && e["status"] == "enabled"));
    let cli_list = app.cli_ok(&["webhooks", "list"]);
    assert!(cli_list.contains("http://127.0.0.1:9/hooks") && !cli_list.contains("whsec_"));

    let disabled = v1_post(
        &app,
        &key,
        &format!("/v1/webhook-endpoints/{id}/disable"),
        None,
    )
    .await;
    let disabled: Value = disabled.json().await.unwrap();
    assert_eq!(
        (
            disabled["status"].as_str(),
            disabled["disabledReason"].as_str()
        ),
        (Some("disabled"), Some("disabled by an operator"))
    );
    app.cli_ok(&["webhooks", "enable", &id.to_string()]);
    assert_eq!(
        v1_json(&app, &key, &format!("/v1/webhook-endpoints/{id}")).await["status"],
        "enabled"
    );
    let deleted = app
        .client
        .delete(format!("{}/v1/webhook-endpoints/{id}", app.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.json::<Value>().await.unwrap(),
        json!({"id": id, "deleted": true})
    );
    assert_eq!(
        error_code(v1_get(&app, &key, &format!("/v1/webhook-endpoints/{id}")).await).await,
        (404, "webhook_endpoint_not_found".into())
    );
    for bad in [
        json!({"url": "http://127.0.0.1/x", "events": []}),
        json!({"url": "http://127.0.0.1/x", "events": ["subscription.exploded"]}),
        json!({"url": "not a url"}),
        json!({"url": "http://127.0.0.1/x", "secret": "mine"}),
    ] {
        let refused = v1_post(&app, &key, "/v1/webhook-endpoints", Some(&bad)).await;
        assert_eq!(refused.status(), 400, "{bad}");
    }
    let read = v1_key(&app, "read");
    let denied = v1_post(
        &app,
        &read,
        "/v1/webhook-endpoints",
        Some(&json!({"url": "http://127.0.0.1/x"})),
    )
    .await;
    assert_eq!(error_code(denied).await, (403, "insufficient_scope".into()));

    // Without a signing key there are no secrets to make: 503, and the CLI says what to set.
    let unkeyed = spawn_app_with(|o| {
        o.unset("WEBHOOK_SIGNING_KEY");
    })
    .await;
    let key = v1_key(&unkeyed, "write");
    let refused = v1_post(
        &unkeyed,
        &key,
        "/v1/webhook-endpoints",
        Some(&json!({"url": "http://127.0.0.1/x"})),
    )
    .await;
    assert_eq!(error_code(refused).await, (503, "not_configured".into()));
    let cli = unkeyed.cli(&["webhooks", "add", "--url", "http://127.0.0.1/x"]);
    assert!(String::from_utf8_lossy(&cli.stderr).contains("WEBHOOK_SIGNING_KEY"));
}

#[tokio::test]
async fn a_replayed_endpoint_creation_answers_its_secret_again_without_keeping_it() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let body = json!({"url": "http://127.0.0.1:9/hooks"});
    let first = post_with_key(&app, &key, "endpoint-1", "/v1/webhook-endpoints", &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let secret = first["secret"].as_str().unwrap().to_string();
    assert!(
        first.get("_secretSalt").is_none(),
        "the salt is never shown"
    );
    let again = post_with_key(&app, &key, "endpoint-1", "/v1/webhook-endpoints", &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first,
        "the same answer, secret included"
    );
    assert_eq!(
        v1_json(&app, &key, "/v1/webhook-endpoints").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // What is kept for the replay holds no secret.
    let kept: Vec<Option<String>> = {
        use diesel::prelude::*;
        use treefort_webpay::schema::idempotency_keys;
        idempotency_keys::table
            .select(idempotency_keys::response_body)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(kept.len(), 1);
    let kept = kept[0].clone().unwrap();
    assert!(
        !kept.contains("whsec_") && !kept.contains(&secret[6..]),
        "{kept}"
    );
    // Without a key, the answer carries no salt either.
    let plain = v1_post(&app, &key, "/v1/webhook-endpoints", Some(&body)).await;
    assert!(plain
        .json::<Value>()
        .await
        .unwrap()
        .get("_secretSalt")
        .is_none());
}
