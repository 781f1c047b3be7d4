//! Plan features: set by the CLI and `/v1`, shown in plans, the entitlement answer, subscriptions
//! and events; in effect for current subscribers at once, each told by `subscription.updated`
//! through its webhook endpoint; bad keys and values refused with 400 `invalid_feature`.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{at, error_code, eventually, plan_upsert_args, spawn_app_with, TestApp};
use crate::v1_support::{add_endpoint, all_events, deliver_webhooks, receiver, v1_json, v1_key};

async fn app() -> TestApp {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.treefort_ok().await;
    app
}

fn upsert(app: &TestApp, id: &str, name: &str, extra: &[&str]) -> String {
    app.cli_ok(&plan_upsert_args(id, name, extra))
}

async fn send(
    app: &TestApp,
    verb: reqwest::Method,
    key: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .request(verb, format!("{}{path}", app.address))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn entitlement(app: &TestApp, key: &str, user: &str) -> Value {
    v1_json(app, key, &format!("/v1/users/{user}/entitlement")).await
}

/// The entitlement of `user` once its features are `want` (a change made by the CLI, another
/// process, reaches this instance's memory within a second).
async fn entitlement_with(app: &TestApp, key: &str, user: &str, want: &Value) -> Value {
    eventually(
        &format!("{user}'s features becoming {want}"),
        || async move {
            let e = entitlement(app, key, user).await;
            (&e["features"] == want).then_some(e)
        },
    )
    .await
}

#[tokio::test]
async fn features_set_by_the_cli_and_v1_show_in_plans_entitlement_subscriptions_and_events() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let out = upsert(
        &app,
        "1",
        "Pro",
        &[
            "--feature",
            "advancedReporting=true",
            "--feature",
            "maxEmployees=50",
            "--feature",
            "tier=pro",
        ],
    );
    assert!(
        out.contains(r#"features: {"advancedReporting":true,"maxEmployees":50,"tier":"pro"}"#),
        "{out}"
    );
    let pro = json!({"advancedReporting": true, "maxEmployees": 50, "tier": "pro"});
    let basic = json!({"maxEmployees": 5, "tier": "basic"});
    let created = send(
        &app,
        reqwest::Method::POST,
        &key,
        "/v1/plans",
        json!({
            "id": 2, "name": "Basic", "interval": "month", "graceDays": 3,
            "price": {"currency": "USD", "amount": 499}, "features": basic,
        }),
    )
    .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["features"], basic);
    assert_eq!(v1_json(&app, &key, "/v1/plans/1").await["features"], pro);
    let listed = app.cli_ok(&["plans", "list", "--json"]);
    assert!(listed.contains("\"tier\": \"basic\""), "{listed}");

    // Nobody: not entitled, no features.
    let nobody = entitlement(&app, &key, "nobody").await;
    assert_eq!(
        (nobody["active"].clone(), nobody["features"].clone()),
        (json!(false), json!({}))
    );

    // A subscriber has the plan's features, in the entitlement, the subscription and its events.
    app.subscribed_user("u1", 1).await;
    let e = entitlement_with(&app, &key, "u1", &pro).await;
    assert_eq!(
        (e["planId"].clone(), e["planName"].clone()),
        (json!(1), json!("Pro"))
    );
    let subs = v1_json(&app, &key, "/v1/subscriptions?userId=u1").await;
    assert_eq!(subs["data"][0]["features"], pro);
    assert_eq!(subs["data"][0]["planName"], "Pro");
    let id = subs["data"][0]["id"].as_i64().unwrap();
    assert_eq!(
        v1_json(&app, &key, &format!("/v1/subscriptions/{id}")).await["features"],
        pro
    );
    let events = all_events(&app, &key).await;
    let created = events
        .iter()
        .find(|e| e["type"] == "subscription.created")
        .unwrap();
    assert_eq!(created["data"]["subscription"]["features"], pro);
    assert_eq!(created["data"]["subscription"]["planName"], "Pro");

    // A switch to Basic: Pro's features until it takes effect at the period end, then Basic's.
    let switch = app.checkout_url("u1", 2, None).await;
    app.confirm_switch(&switch).await;
    assert_eq!(entitlement(&app, &key, "u1").await["features"], pro);
    app.advance_to(at("2027-02-01T00:00:01Z"));
    app.run_worker().await;
    let switched = entitlement(&app, &key, "u1").await;
    assert_eq!(
        (switched["planId"].clone(), switched["features"].clone()),
        (json!(2), basic.clone())
    );

    // Canceled: the features last to the period end, then there are none.
    app.subscribed_user("u2", 2).await;
    let u2 = app.subscription("u2").id;
    let canceled = send(
        &app,
        reqwest::Method::POST,
        &key,
        &format!("/v1/subscriptions/{u2}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(canceled.status(), 200);
    assert_eq!(canceled.json::<Value>().await.unwrap()["features"], basic);
    assert_eq!(entitlement(&app, &key, "u2").await["features"], basic);
    app.advance(TimeDelta::days(32));
    app.run_worker().await;
    let ended = entitlement(&app, &key, "u2").await;
    assert_eq!(
        (ended["status"].clone(), ended["features"].clone()),
        (json!("ended"), json!({}))
    );
    assert_eq!(ended["planName"], "Basic", "the plan is still named");
}

#[tokio::test]
async fn a_feature_change_reaches_each_current_subscriber_at_once_and_through_its_webhooks() {
    let app = app().await;
    let key = v1_key(&app, "write");
    upsert(
        &app,
        "1",
        "Team",
        &["--feature", "maxEmployees=10", "--feature", "tier=team"],
    );
    upsert(&app, "2", "Solo", &[]);
    let hooks = receiver(200).await;
    add_endpoint(
        &app,
        &key,
        &format!("{}/hook", hooks.uri()),
        Some(&["subscription.updated"]),
    )
    .await;
    app.subscribed_user("u1", 1).await;
    app.subscribed_user("u2", 1).await;
    app.subscribed_user("u3", 2).await;

    let more = json!({"maxEmployees": 25, "tier": "team", "sso": true});
    let changed = send(
        &app,
        reqwest::Method::PATCH,
        &key,
        "/v1/plans/1",
        json!({"features": more}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    // At once for current subscribers (no renewal needed), and the price stays theirs.
    assert_eq!(entitlement(&app, &key, "u1").await["features"], more);
    deliver_webhooks(&app).await;
    let mut told: Vec<(String, Value)> = hooks
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["type"], "subscription.updated");
            let sub = &body["data"]["subscription"];
            (
                sub["userId"].as_str().unwrap().to_string(),
                sub["features"].clone(),
            )
        })
        .collect();
    // Two subscriptions are two lines of delivery, sent side by side: in either order.
    told.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        told,
        [
            ("u1".to_string(), more.clone()),
            ("u2".to_string(), more.clone())
        ]
    );

    // Saving the same features again tells nobody; a price change alone tells nobody either.
    let same = send(
        &app,
        reqwest::Method::PATCH,
        &key,
        "/v1/plans/1",
        json!({"features": more, "price": {"currency": "USD", "amount": 1299}}),
    )
    .await;
    assert_eq!(same.status(), 200);
    deliver_webhooks(&app).await;
    assert_eq!(hooks.received_requests().await.unwrap().len(), 2);

    // The CLI sets one key over the others, and the subscribers hear of it too.
    let out = upsert(&app, "1", "Team", &["--feature", "maxEmployees=100"]);
    assert!(
        out.contains("2 current subscriber(s) have the new features now"),
        "{out}"
    );
    let after = json!({"maxEmployees": 100, "tier": "team", "sso": true});
    entitlement_with(&app, &key, "u2", &after).await;
    deliver_webhooks(&app).await;
    assert_eq!(hooks.received_requests().await.unwrap().len(), 4);
    // --clear-features empties the set.
    upsert(&app, "1", "Team", &["--clear-features"]);
    entitlement_with(&app, &key, "u1", &json!({})).await;
    assert_eq!(
        v1_json(&app, &key, "/v1/plans/1").await["features"],
        json!({})
    );
}

#[tokio::test]
async fn bad_feature_keys_and_values_are_refused_with_invalid_feature_and_change_nothing() {
    let app = app().await;
    let key = v1_key(&app, "write");
    upsert(&app, "1", "Pro", &["--feature", "tier=pro"]);
    for bad in [
        json!({"Tier": "x"}),
        json!({"max-seats": 1}),
        json!({"ratio": 0.5}),
        json!({"list": ["a"]}),
        json!({"none": null}),
        json!({"long": "x".repeat(201)}),
        json!(["tier"]),
        json!("tier=pro"),
        Value::Object((0..65).map(|i| (format!("k{i}"), json!(true))).collect()),
    ] {
        let patched = send(
            &app,
            reqwest::Method::PATCH,
            &key,
            "/v1/plans/1",
            json!({"features": bad}),
        )
        .await;
        assert_eq!(
            error_code(patched).await,
            (400, "invalid_feature".into()),
            "{bad}"
        );
        let created = send(
            &app,
            reqwest::Method::POST,
            &key,
            "/v1/plans",
            json!({
                "id": 9, "name": "X", "interval": "month",
                "price": {"currency": "USD", "amount": 1}, "features": bad,
            }),
        )
        .await;
        assert_eq!(
            error_code(created).await,
            (400, "invalid_feature".into()),
            "{bad}"
        );
    }
    let unknown = send(
        &app,
        reqwest::Method::PATCH,
        &key,
        "/v1/plans/1",
        json!({"feature": {"a": 1}}),
    )
    .await;
    assert_eq!(unknown.status(), 400);
    let out = app.cli(&plan_upsert_args("1", "Pro", &["--feature", "Bad=1"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"Bad\""), "{err}");
    let out = app.cli(&plan_upsert_args("1", "Pro", &["--feature", "novalue"]));
    assert!(!out.status.success());
    // Nothing changed, and no plan 9 was made.
    assert_eq!(
        v1_json(&app, &key, "/v1/plans/1").await["features"],
        json!({"tier": "pro"})
    );
    assert_eq!(app.count("plans"), 1);
}

#[tokio::test]
async fn a_trial_and_grace_give_the_features_and_their_end_takes_them_away() {
    let app = app().await;
    let key = v1_key(&app, "write");
    upsert(
        &app,
        "1",
        "Pro",
        &["--trial-days", "7", "--feature", "advancedReporting=true"],
    );
    let pro = json!({"advancedReporting": true});
    // Card 0341 starts the trial and is declined when the trial ends.
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, "4000000000000341").await.status(), 303);
    let trial = entitlement_with(&app, &key, "u1", &pro).await;
    assert_eq!(trial["status"], "trialing");
    app.advance(TimeDelta::days(7) + TimeDelta::hours(1));
    app.run_worker().await;
    let grace = entitlement(&app, &key, "u1").await;
    assert_eq!(
        (grace["status"].clone(), grace["features"].clone()),
        (json!("past_due"), pro)
    );
    // Grace (3 days) runs out: nothing is given any more.
    app.advance(TimeDelta::days(4));
    app.run_worker().await;
    app.run_worker().await;
    let ended = entitlement(&app, &key, "u1").await;
    assert_eq!(
        (ended["active"].clone(), ended["features"].clone()),
        (json!(false), json!({}))
    );
}
