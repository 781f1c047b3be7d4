//! Outbound webhooks: signed per Standard Webhooks (checked by a verifier written from the
//! specification), retried with backoff and the endpoint disabled after 3 days of failures (on
//! the manual clock), in order per subscription while an endpoint is down, a dead endpoint
//! delaying no healthy one, and never one event sent twice at once by two instances.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{at, spawn_app_with, TestApp};
use crate::v1_support::{
    add_endpoint, all_events, deliver_webhooks, receiver, v1_json, v1_key, v1_post,
    verify_standard_webhook,
};

async fn app() -> TestApp {
    let app = spawn_app_with(|o| o.clock_start = Some(at("2027-01-01T00:00:00Z"))).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn header<'a>(r: &'a Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// Event types of the deliveries a receiver got, in the order it got them.
async fn received_types(server: &MockServer) -> Vec<String> {
    received(server)
        .await
        .iter()
        .map(|r| body(r)["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn deliveries_are_signed_per_standard_webhooks_and_a_rolled_secret_signs_for_a_day() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let hooks = receiver(200).await;
    let (id, secret) = add_endpoint(&app, &key, &format!("{}/hook", hooks.uri()), None).await;
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once: neither the listing nor the database has it.
    let listed = v1_json(&app, &key, "/v1/webhook-endpoints").await;
    assert!(!listed.to_string().contains(&secret[6..]));
    let salt: String = {
        use diesel::prelude::*;
        use treefort_webpay::schema::webhook_endpoints;
        webhook_endpoints::table
            .select(webhook_endpoints::secret_salt)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert!(!secret.contains(&salt) && !salt.contains(&secret[6..]));

    app.subscribed_user("u1", 1).await;
    deliver_webhooks(&app).await;
    let got = received(&hooks).await;
    assert_eq!(got.len(), 2, "subscription.created and payment.succeeded");
    let events = all_events(&app, &key).await;
    for (request, event) in got.iter().zip(&events) {
        assert_eq!(header(request, "webhook-id"), event["id"].as_str().unwrap());
        assert_eq!(header(request, "content-type"), "application/json");
        let timestamp = header(request, "webhook-timestamp");
        assert_eq!(
            timestamp,
            at("2027-01-01T00:00:00Z").timestamp().to_string()
        );
        let now = app.now().timestamp();
        assert!(verify_standard_webhook(
            &secret,
            header(request, "webhook-id"),
            timestamp,
            &request.body,
            header(request, "webhook-signature"),
            now,
        ));
        assert!(
            !verify_standard_webhook(
                &secret,
                header(request, "webhook-id"),
                timestamp,
                &request.body,
                header(request, "webhook-signature"),
                now + 301,
            ),
            "a delivery replayed after 5 minutes is refused"
        );
        // Any change to what was signed breaks it.
        let mut tampered = request.body.clone();
        tampered[0] = b' ';
        assert!(!verify_standard_webhook(
            &secret,
            header(request, "webhook-id"),
            timestamp,
            &tampered,
            header(request, "webhook-signature"),
            now,
        ));
        assert_eq!(
            &body(request),
            event,
            "the body is the event as /v1/events has it"
        );
    }
    // Attempts are on record.
    let attempts = v1_json(&app, &key, &format!("/v1/webhook-endpoints/{id}/attempts")).await;
    let attempts = attempts["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["statusCode"], 200);
    assert_eq!(attempts[0]["responseExcerpt"], "thanks");

    // A rolled secret: both sign for 24 hours, then only the new one.
    let rolled = v1_post(
        &app,
        &key,
        &format!("/v1/webhook-endpoints/{id}/roll-secret"),
        None,
    )
    .await;
    assert_eq!(rolled.status(), 200);
    let new_secret = rolled.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_secret, secret);
    let sub = app.subscription("u1").id;
    let cancel = v1_post(&app, &key, &format!("/v1/subscriptions/{sub}/cancel"), None).await;
    assert_eq!(cancel.status(), 200);
    deliver_webhooks(&app).await;
    let during = received(&hooks).await.pop().unwrap();
    let sign = |r: &Request, s: &str| {
        verify_standard_webhook(
            s,
            header(r, "webhook-id"),
            header(r, "webhook-timestamp"),
            &r.body,
            header(r, "webhook-signature"),
            app.now().timestamp(),
        )
    };
    assert!(sign(&during, &secret) && sign(&during, &new_secret));
    app.advance(TimeDelta::hours(25));
    let resume = v1_post(&app, &key, &format!("/v1/subscriptions/{sub}/resume"), None).await;
    assert_eq!(resume.status(), 200);
    deliver_webhooks(&app).await;
    let after = received(&hooks).await.pop().unwrap();
    assert_eq!(body(&after)["type"], "subscription.resumed");
    assert!(sign(&after, &new_secret) && !sign(&after, &secret));
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_backoff_and_disabled_after_three_days() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let hooks = receiver(500).await;
    let (id, _) = add_endpoint(
        &app,
        &key,
        &format!("{}/hook", hooks.uri()),
        Some(&["subscription.created"]),
    )
    .await;
    app.subscribed_user("u1", 1).await;
    deliver_webhooks(&app).await;
    assert_eq!(
        received(&hooks).await.len(),
        1,
        "only the type it asked for"
    );
    deliver_webhooks(&app).await;
    assert_eq!(
        received(&hooks).await.len(),
        1,
        "not again before its backoff"
    );
    app.advance(TimeDelta::seconds(31));
    deliver_webhooks(&app).await;
    assert_eq!(received(&hooks).await.len(), 2, "again after 30 s");
    app.advance(TimeDelta::seconds(31));
    deliver_webhooks(&app).await;
    assert_eq!(
        received(&hooks).await.len(),
        2,
        "the second wait is a minute"
    );
    app.advance(TimeDelta::seconds(30));
    deliver_webhooks(&app).await;
    assert_eq!(received(&hooks).await.len(), 3);

    let endpoint = v1_json(&app, &key, &format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(endpoint["status"], "enabled");
    assert_eq!(endpoint["failingSince"], "2027-01-01T00:00:00.000Z");
    let attempts = v1_json(&app, &key, &format!("/v1/webhook-endpoints/{id}/attempts")).await;
    assert_eq!(attempts["data"][0]["statusCode"], 500);
    assert_eq!(attempts["data"][0]["error"], "answered 500");

    // Tried every few hours at most, for three days; then given up and the endpoint disabled.
    let mut tries = 3;
    while app.now() < at("2027-01-04T07:00:00Z") {
        app.advance(TimeDelta::hours(1));
        deliver_webhooks(&app).await;
        let now_tries = received(&hooks).await.len();
        assert!(now_tries - tries <= 1);
        tries = now_tries;
    }
    assert!((12..=25).contains(&tries), "{tries} attempts in 3 days");
    let endpoint = v1_json(&app, &key, &format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(endpoint["status"], "disabled");
    assert_eq!(endpoint["disabledReason"], "failing for 3 days");
    let listed = app.cli_ok(&["webhooks", "list"]);
    assert!(listed.contains("DISABLED (failing for 3 days)"), "{listed}");
    // Disabled: nothing more is sent, new events are not queued for it.
    app.subscribed_user("u2", 1).await;
    app.advance(TimeDelta::days(1));
    deliver_webhooks(&app).await;
    assert_eq!(received(&hooks).await.len(), tries);

    // Fixed and enabled again, the given-up event goes when redelivered by hand.
    hooks.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    assert_eq!(
        v1_post(
            &app,
            &key,
            &format!("/v1/webhook-endpoints/{id}/enable"),
            None
        )
        .await
        .status(),
        200
    );
    let event = all_events(&app, &key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let redelivered = app.cli_ok(&["webhooks", "redeliver", &event]);
    assert!(
        redelivered.contains("queued for 1 endpoint"),
        "{redelivered}"
    );
    deliver_webhooks(&app).await;
    assert_eq!(received_types(&hooks).await, ["subscription.created"]);
    let endpoint = v1_json(&app, &key, &format!("/v1/webhook-endpoints/{id}")).await;
    assert!(endpoint["failingSince"].is_null() && endpoint["lastSuccessAt"].is_string());
    let attempts = app.cli_ok(&["webhooks", "attempts", &id.to_string()]);
    assert!(
        attempts.lines().next().unwrap().contains(" 204 "),
        "{attempts}"
    );
}

#[tokio::test]
async fn order_per_subscription_is_kept_while_an_endpoint_is_down_and_others_go_on() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let down = receiver(503).await;
    let up = receiver(200).await;
    add_endpoint(&app, &key, &format!("{}/hook", down.uri()), None).await;
    add_endpoint(&app, &key, &format!("{}/hook", up.uri()), None).await;
    app.subscribed_user("u1", 1).await;
    let sub = app.subscription("u1").id;
    deliver_webhooks(&app).await;
    for change in ["cancel", "resume", "cancel"] {
        let path = format!("/v1/subscriptions/{sub}/{change}");
        assert_eq!(v1_post(&app, &key, &path, None).await.status(), 200);
        deliver_webhooks(&app).await;
    }
    let expected = [
        "subscription.created",
        "payment.succeeded",
        "subscription.canceled",
        "subscription.resumed",
        "subscription.canceled",
    ];
    assert_eq!(
        received_types(&up).await,
        expected,
        "the healthy endpoint got all, in order"
    );
    // The endpoint that is down got only the first, again and again: the rest wait behind it.
    let tried = received_types(&down).await;
    assert!(
        tried.iter().all(|t| t == "subscription.created"),
        "{tried:?}"
    );

    down.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&down)
        .await;
    app.advance(TimeDelta::minutes(10));
    deliver_webhooks(&app).await;
    assert_eq!(
        received_types(&down).await,
        expected,
        "in order once it is back"
    );
    assert_eq!(
        received(&up).await.len(),
        5,
        "nothing twice to the healthy one"
    );
}

/// A server that takes connections and never answers; counts them.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_dead_endpoint_does_not_delay_a_healthy_one() {
    let app = spawn_app_with(|o| {
        o.clock_start = Some(at("2027-01-01T00:00:00Z"));
        o.set("WEBHOOK_TIMEOUT_MS", "60000");
    })
    .await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let key = v1_key(&app, "write");
    let (dead_url, accepted) = black_hole().await;
    let healthy = receiver(200).await;
    let (dead, _) = add_endpoint(&app, &key, &dead_url, None).await;
    add_endpoint(&app, &key, &format!("{}/hook", healthy.uri()), None).await;
    for n in 0..6 {
        app.subscribed_user(&format!("u{n}"), 1).await;
    }
    // The background worker sends them; the dead endpoint holds its requests for a minute.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while received(&healthy).await.len() < 12 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        received(&healthy).await.len(),
        12,
        "every event reached the healthy endpoint"
    );
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the dead one was tried"
    );
    let dead_attempts = v1_json(
        &app,
        &key,
        &format!("/v1/webhook-endpoints/{dead}/attempts"),
    )
    .await;
    assert_eq!(
        dead_attempts["data"].as_array().unwrap().len(),
        0,
        "while its requests still hang"
    );
    assert!(
        accepted.load(Ordering::SeqCst) <= treefort_webpay::webhook_client::SLOTS_PER_ENDPOINT,
        "it holds only its own slots"
    );
}

#[tokio::test]
async fn two_instances_never_send_one_event_twice() {
    let app = app().await;
    let key = v1_key(&app, "write");
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_millis(150)))
        .mount(&hooks)
        .await;
    add_endpoint(&app, &key, &format!("{}/hook", hooks.uri()), None).await;
    for n in 0..8 {
        app.subscribed_user(&format!("u{n}"), 1).await;
    }
    let other = actix_web::web::Data::new(app.worker_state(app.clock.clone(), &[]).await);
    tokio::join!(
        treefort_webpay::worker::deliver_webhooks(&app.state),
        treefort_webpay::worker::deliver_webhooks(&other),
        treefort_webpay::worker::deliver_webhooks(&app.state),
    );
    let got = received(&hooks).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_id
            .entry(header(r, "webhook-id").to_string())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), 16, "every event");
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    // Each subscription's created came before its payment.
    let mut seen_created = std::collections::HashSet::new();
    for r in &got {
        let event = body(r);
        match event["type"].as_str().unwrap() {
            "subscription.created" => {
                seen_created.insert(event["data"]["subscription"]["id"].as_i64().unwrap());
            }
            _ => assert!(seen_created
                .contains(&event["data"]["payment"]["subscriptionId"].as_i64().unwrap())),
        }
    }
}

#[tokio::test]
async fn private_addresses_are_refused_in_production_and_rechecked_at_delivery() {
    let strict = spawn_app_with(|o| {
        o.set("WEBHOOKS_ALLOW_PRIVATE", "0");
    })
    .await;
    let key = v1_key(&strict, "write");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://localhost/",
        "ftp://example.com/",
        "https://user:secret@example.com/",
    ] {
        let refused = v1_post(
            &strict,
            &key,
            "/v1/webhook-endpoints",
            Some(&serde_json::json!({"url": url})),
        )
        .await;
        assert_eq!(
            crate::helpers::error_code(refused).await,
            (400, "invalid_webhook_endpoint".into()),
            "{url}"
        );
    }
    let cli = strict.cli(&["webhooks", "add", "--url", "http://192.168.0.1/x"]);
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("public address"));

    // Added while it was allowed, sent now that it is not: refused at delivery, without a
    // connection.
    strict.add_plan(1, 0);
    strict.treefort_ok().await;
    let hooks = receiver(200).await;
    let endpoint = treefort_webpay::models::webhooks::insert_endpoint(
        &mut strict.conn(),
        &treefort_webpay::models::webhooks::NewEndpoint {
            url: format!("{}/hook", hooks.uri()),
            description: None,
            event_types: None,
            secret_salt: "salt".into(),
            created_at: strict.now().naive_utc(),
        },
    )
    .unwrap();
    strict.subscribed_user("u1", 1).await;
    deliver_webhooks(&strict).await;
    assert!(received(&hooks).await.is_empty());
    let attempts = v1_json(
        &strict,
        &key,
        &format!("/v1/webhook-endpoints/{}/attempts", endpoint.id),
    )
    .await;
    let error = attempts["data"][0]["error"].as_str().unwrap();
    assert!(error.contains("public address"), "{error}");
    assert!(attempts["data"][0]["statusCode"].is_null());
}
