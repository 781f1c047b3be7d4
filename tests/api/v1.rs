//! The app owner's `/v1` API: its own keys and scopes, the entitlement check, cancel and resume.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{at, error_code, spawn_app_with, TestApp, API_KEY};

fn apikey(app: &TestApp, args: &[&str]) -> String {
    app.cli_ok(&[&["apikeys"], args].concat())
}

fn new_key(app: &TestApp, scope: &str) -> String {
    let out = apikey(
        app,
        &[
            "create",
            "--name",
            &format!("{scope} backend"),
            "--scope",
            scope,
        ],
    );
    out.lines().next().unwrap().to_string()
}

async fn entitlement(app: &TestApp, key: &str, user: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/v1/users/{user}/entitlement", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_are_shown_once_kept_hashed_scoped_and_revocable() {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let read = new_key(&app, "read");
    let write = new_key(&app, "write");
    assert!(read.starts_with("tfw_") && read.len() > 50, "{read}");
    // Only a hash is kept.
    let stored: Vec<String> = {
        use diesel::prelude::*;
        use treefort_webpay::schema::api_keys;
        api_keys::table
            .select(api_keys::secret_hash)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert!(stored
        .iter()
        .all(|h| !read.contains(h.as_str()) && !write.contains(h.as_str())));
    // tfw_<hex id>_<secret>; the secret itself may hold '_'.
    let secret = read.splitn(3, '_').nth(2).unwrap();
    assert!(secret.len() >= 40, "{read}");
    assert!(stored.iter().all(|h| h != secret));

    assert_eq!(entitlement(&app, &read, "u1").await.status(), 200);
    // Missing, wrong, provider keys: 401; our keys on Treefort's routes: 401.
    let none = app
        .client
        .get(format!("{}/v1/users/u1/entitlement", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(none).await, (401, "unauthorized".into()));
    let forged = format!("{}x", &read[..read.len() - 1]);
    assert_eq!(
        error_code(entitlement(&app, &forged, "u1").await).await.0,
        401
    );
    assert_eq!(
        error_code(entitlement(&app, API_KEY, "u1").await).await.0,
        401
    );
    let on_treefort = app
        .client
        .post(format!("{}/treefort/subscription-plan", app.address))
        .bearer_auth(&write)
        .json(&json!({"subscriptionPlanId": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(on_treefort).await.0, 401);

    // A read key on a write route: 403.
    let sub = app.subscription("u1");
    let cancel_with = |key: String| {
        let url = format!("{}/v1/subscriptions/{}/cancel", app.address, sub.id);
        let client = app.client.clone();
        async move { client.post(url).bearer_auth(key).send().await.unwrap() }
    };
    assert_eq!(
        error_code(cancel_with(read.clone()).await).await,
        (403, "insufficient_scope".into())
    );
    assert!(app.subscription("u1").canceled_at.is_none());

    // Listed with last use (noted off the request's path, so within moments).
    let mut listed = Value::Null;
    for _ in 0..250 {
        listed = serde_json::from_str(&apikey(&app, &["list", "--json"])).unwrap();
        if listed[0]["lastUsedAt"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(listed[0]["lastUsedAt"].is_string(), "{listed}");
    assert!(!listed.to_string().contains(secret));
    // Revoked from another process (the CLI): refused within a second, although the key was
    // answered from memory just before.
    assert_eq!(entitlement(&app, &read, "u1").await.status(), 200);
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    apikey(&app, &["revoke", &id]);
    let revoked_at = std::time::Instant::now();
    let mut status = 200;
    while status != 401 && revoked_at.elapsed() < std::time::Duration::from_secs(1) {
        status = entitlement(&app, &read, "u1").await.status().as_u16();
    }
    assert_eq!(status, 401, "a revoked key still answered after a second");
}

#[tokio::test]
async fn the_entitlement_follows_the_subscription_through_its_life() {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.add_plan(1, 7); // 7-day trial, 3 grace days
    app.treefort_ok().await;
    let key = new_key(&app, "write");
    let check = |user: &'static str| {
        let (app, key) = (&app, key.clone());
        async move {
            let r = entitlement(app, &key, user).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let none = check("u1").await;
    assert_eq!(
        (none["active"].clone(), none["status"].clone()),
        (json!(false), json!("none"))
    );

    // Trial.
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, "4000000000000341").await.status(), 303);
    let trial = check("u1").await;
    assert_eq!(
        (trial["active"].clone(), trial["status"].clone()),
        (json!(true), json!("trialing"))
    );
    assert_eq!(trial["planId"], 1);
    assert!(trial["trialEndsAt"].is_string());

    // The first charge after the trial is declined (card 0341): past due inside grace.
    app.advance(TimeDelta::days(7) + TimeDelta::hours(1));
    app.run_worker().await;
    let past_due = check("u1").await;
    assert_eq!(
        (past_due["active"].clone(), past_due["status"].clone()),
        (json!(true), json!("past_due"))
    );
    assert!(past_due["graceEndsAt"].is_string());

    // Grace runs out: ended, not active.
    app.advance(TimeDelta::days(4));
    app.run_worker().await;
    app.run_worker().await;
    let ended = check("u1").await;
    assert_eq!(
        (ended["active"].clone(), ended["status"].clone()),
        (json!(false), json!("ended"))
    );

    // A paid subscriber canceled through /v1: active to the period end, then ended.
    app.subscribed_user("u2", 1).await;
    let sub = app.subscription("u2");
    let canceled = app
        .client
        .post(format!(
            "{}/v1/subscriptions/{}/cancel",
            app.address, sub.id
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 200);
    let body: Value = canceled.json().await.unwrap();
    assert_eq!(body["status"], "canceled");
    assert!(app
        .patches()
        .await
        .iter()
        .any(|p| p["canceledAt"].is_string()));
    let paid_up = check("u2").await;
    assert_eq!(
        (
            paid_up["active"].clone(),
            paid_up["cancelAtPeriodEnd"].clone()
        ),
        (json!(true), json!(true))
    );
    // Resumed through /v1, Treefort first.
    let resumed = app
        .client
        .post(format!(
            "{}/v1/subscriptions/{}/resume",
            app.address, sub.id
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    assert_eq!(check("u2").await["cancelAtPeriodEnd"], false);
    let missing = app
        .client
        .post(format!("{}/v1/subscriptions/999999/cancel", app.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(missing).await,
        (404, "subscription_not_found".into())
    );
}

#[tokio::test]
async fn subscriptions_and_payments_are_listed_newest_first_without_skips_or_repeats() {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.add_plan(1, 0);
    app.add_plan(2, 0);
    app.treefort_ok().await;
    let key = new_key(&app, "write");
    for i in 0..5 {
        app.subscribed_user(&format!("u{i}"), 1 + (i % 2)).await;
    }
    let get = |path: String| {
        let (client, key, address) = (app.client.clone(), key.clone(), app.address.clone());
        async move {
            let r = client
                .get(format!("{address}{path}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // Page through two at a time while a new subscriber arrives between pages.
    let (status, first) = get("/v1/subscriptions?limit=2".into()).await;
    assert_eq!(status, 200);
    let mut seen: Vec<i64> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    let mut cursor = first["nextStartingAfter"].as_i64();
    app.subscribed_user("late", 1).await;
    while let Some(after) = cursor {
        let (_, page) = get(format!("/v1/subscriptions?limit=2&startingAfter={after}")).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_i64().unwrap()),
        );
        cursor = page["nextStartingAfter"].as_i64();
    }
    let mut expected = seen.clone();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    expected.dedup();
    assert_eq!(seen, expected, "newest first, no repeats");
    assert_eq!(
        seen.len(),
        5,
        "all that existed when paging began, none skipped"
    );

    let (_, on_two) = get("/v1/subscriptions?planId=2".into()).await;
    assert_eq!(on_two["data"].as_array().unwrap().len(), 2);
    let (_, mine) = get("/v1/subscriptions?userId=u3&status=active".into()).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    let (status, _) = get("/v1/subscriptions?status=sleeping".into()).await;
    assert_eq!(status, 400);
    let (status, _) = get("/v1/subscriptions?limit=0".into()).await;
    assert_eq!(status, 400);

    let id = mine["data"][0]["id"].as_i64().unwrap();
    let (status, detail) = get(format!("/v1/subscriptions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["payments"].as_array().unwrap().len(), 1);
    let payment = detail["payments"][0]["id"].as_i64().unwrap();
    let (_, pays) = get("/v1/payments?userId=u3".into()).await;
    assert_eq!(pays["data"][0]["id"], payment);

    // A refund through /v1: part of it, then a malformed body refunds nothing.
    let refund = |body: &'static str| {
        let (client, key, address) = (app.client.clone(), key.clone(), app.address.clone());
        async move {
            client
                .post(format!("{address}/v1/payments/{payment}/refund"))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let part = refund(r#"{"amount": 300}"#).await;
    assert_eq!(part.status(), 200);
    assert_eq!(part.json::<Value>().await.unwrap()["refundedAmount"], 300);
    assert_eq!(
        error_code(refund(r#"{"amount": "all"}"#).await).await.0,
        400
    );
    assert_eq!(error_code(refund(r#"{"amount": 5000}"#).await).await.0, 400);
    let (_, after) = get(format!("/v1/subscriptions/{id}")).await;
    assert_eq!(after["payments"][0]["refundedAmount"], 300);
}

#[tokio::test]
async fn plans_are_managed_through_v1_with_the_clis_rules() {
    let app = spawn_app_with(|_| {}).await;
    app.treefort_ok().await;
    let write = new_key(&app, "write");
    let read = new_key(&app, "read");
    let send = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let plan = json!({"id": 7, "name": "Monthly", "interval": "month", "trialDays": 0, "graceDays": 3,
                      "price": {"currency": "usd", "amount": 999, "divisor": 100}});
    let refused = send(
        reqwest::Method::POST,
        "/v1/plans",
        &read,
        Some(plan.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(refused).await,
        (403, "insufficient_scope".into())
    );
    let created = send(
        reqwest::Method::POST,
        "/v1/plans",
        &write,
        Some(plan.clone()),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.json::<Value>().await.unwrap()["price"]["currency"],
        "USD"
    );
    let again = send(reqwest::Method::POST, "/v1/plans", &write, Some(plan))
        .await
        .unwrap();
    assert_eq!(error_code(again).await, (409, "plan_exists".into()));
    let bad = send(
        reqwest::Method::POST,
        "/v1/plans",
        &write,
        Some(json!({"id": 8, "name": "X", "interval": "week", "price": {"currency": "USD", "amount": 1}})),
    )
    .await
    .unwrap();
    assert_eq!(error_code(bad).await, (400, "invalid_plan".into()));

    app.subscribed_user("u1", 7).await;
    let changed = send(
        reqwest::Method::PATCH,
        "/v1/plans/7",
        &write,
        Some(json!({"price": {"currency": "USD", "amount": 1299}})),
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["price"]["amount"], 1299);
    assert_eq!(changed["subscribersKeepingOtherTerms"], 1);
    let listed: Value = send(reqwest::Method::GET, "/v1/plans", &read, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["name"], "Monthly");
    let missing = send(reqwest::Method::GET, "/v1/plans/99", &read, None)
        .await
        .unwrap();
    assert_eq!(error_code(missing).await, (404, "plan_not_found".into()));
    // What Treefort reads is the same plan.
    let treefort = app
        .post_treefort(
            "/treefort/subscription-plan",
            &json!({"subscriptionPlanId": 7}),
        )
        .await;
    assert_eq!(
        treefort.json::<Value>().await.unwrap()["price"]["amount"],
        1299
    );
}

/// How many entitlement checks were answered from `source` (memory or database).
async fn entitlement_reads(app: &TestApp, source: &str) -> u64 {
    let text = app.metrics_text().await;
    let series = format!("treefort_webpay_entitlement_reads_total{{source=\"{source}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn the_entitlement_is_answered_from_memory_and_follows_changes_made_elsewhere() {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let key = new_key(&app, "read");
    let check = || async {
        let r = entitlement(&app, &key, "u1").await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    assert_eq!(check().await["cancelAtPeriodEnd"], false);
    // Asked again and again: memory answers, not the database.
    let before = entitlement_reads(&app, "memory").await;
    for _ in 0..20 {
        assert_eq!(check().await["status"], "active");
    }
    let from_memory = entitlement_reads(&app, "memory").await - before;
    assert!(from_memory >= 15, "only {from_memory} of 20 from memory");

    // A support engineer cancels in a SQL shell (no code of this service runs): seen within a
    // second.
    {
        use diesel::prelude::*;
        use treefort_webpay::schema::subscriptions;
        diesel::update(subscriptions::table.filter(subscriptions::user_id.eq("u1")))
            .set(subscriptions::canceled_at.eq(app.now().naive_utc()))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let changed_at = std::time::Instant::now();
    let mut seen = check().await;
    while seen["cancelAtPeriodEnd"] != true
        && changed_at.elapsed() < std::time::Duration::from_secs(1)
    {
        seen = check().await;
    }
    assert_eq!(seen["status"], "canceled", "{seen}");
    assert_eq!(seen["cancelAtPeriodEnd"], true);

    // A change this service makes is seen by its next request at once: resume through /v1.
    for _ in 0..5 {
        assert_eq!(check().await["status"], "canceled");
    }
    let sub = app.subscription("u1");
    let write = new_key(&app, "write");
    let resumed = app
        .client
        .post(format!(
            "{}/v1/subscriptions/{}/resume",
            app.address, sub.id
        ))
        .bearer_auth(&write)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let after = check().await;
    assert_eq!(
        (after["status"].clone(), after["cancelAtPeriodEnd"].clone()),
        (json!("active"), json!(false))
    );

    // A user asked about before they subscribed is not left "none" once they have.
    assert_eq!(
        entitlement(&app, &key, "u2")
            .await
            .json::<Value>()
            .await
            .unwrap()["status"],
        "none"
    );
    app.subscribed_user("u2", 1).await;
    assert_eq!(
        entitlement(&app, &key, "u2")
            .await
            .json::<Value>()
            .await
            .unwrap()["status"],
        "active"
    );
}
