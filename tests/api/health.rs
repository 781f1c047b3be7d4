use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;
    assert_eq!(
        app.get(&format!("{}/healthz", app.address)).await.status(),
        200
    );
    let ready = app.get(&format!("{}/readyz", app.address)).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_errors() {
    let app = spawn_app().await;
    let (status, code) = error_code(app.get(&format!("{}/nope", app.address)).await).await;
    assert_eq!((status, code.as_str()), (404, "route_not_found"));
    let wrong_method = app
        .get(&format!("{}/treefort/subscription-plan", app.address))
        .await;
    let (status, code) = error_code(wrong_method).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_without_tokens() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    app.get(&url).await;
    let text = app.metrics_text().await;
    assert!(
        text.contains(
            r#"treefort_webpay_http_requests_total{route="/checkout/{token}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"treefort_webpay_sessions_created_total{kind="checkout"} 1"#),
        "{text}"
    );
    assert!(text.contains("treefort_webpay_outbox_pending 0"), "{text}");
    let token = url.rsplit('/').next().unwrap();
    assert!(!text.contains(token));
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_callers_plain_id_is_kept() {
    let app = spawn_app().await;
    let first = app.get(&format!("{}/healthz", app.address)).await;
    let generated = first.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let second = app.get(&format!("{}/healthz", app.address)).await;
    assert_ne!(second.headers()["x-request-id"], generated.as_str());
    // Errors carry it too, and a proxy's own id follows the request.
    let with_id = |path: &str, id: &'static str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("X-Request-Id", id)
            .send()
    };
    let kept = with_id("/nope", "edge-4f1c2a9b").await.unwrap();
    assert_eq!(kept.status(), 404);
    assert_eq!(kept.headers()["x-request-id"], "edge-4f1c2a9b");
    let replaced = with_id("/healthz", "not a plain id").await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "not a plain id");
}

#[tokio::test]
async fn metrics_time_requests_and_worker_rounds_and_count_renewals() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let subscription = app.subscription("u1");
    app.advance_to(subscription.current_period_ends_at.and_utc() + chrono::TimeDelta::seconds(1));
    app.run_worker().await;
    let text = app.metrics_text().await;
    for line in [
        r#"treefort_webpay_renewals_total{outcome="renewed"} 1"#,
        "# TYPE treefort_webpay_http_request_duration_seconds histogram",
        r#"treefort_webpay_http_request_duration_seconds_count{method="POST",route="/treefort/checkout-session"} 1"#,
        "# TYPE treefort_webpay_worker_round_duration_seconds histogram",
        "treefort_webpay_outbox_oldest_pending_age_seconds 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn the_outbox_age_shows_how_long_the_oldest_update_has_waited() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    // Treefort is down: the update stays queued while time passes.
    let url = app.checkout_url("u1", 1, None).await;
    app.pay(&url, GOOD_CARD).await;
    app.advance(chrono::TimeDelta::seconds(90));
    let text = app.metrics_text().await;
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("treefort_webpay_outbox_oldest_pending_age_seconds "))
        .expect("the gauge is there")
        .parse()
        .unwrap();
    assert!((90.0..100.0).contains(&age), "{age}");
    assert!(text.contains("treefort_webpay_outbox_pending 1"), "{text}");
}

#[tokio::test]
async fn readiness_fails_while_migrations_are_pending() {
    let app = spawn_app().await;
    let mut conn = app.state.pool.get().unwrap();
    use diesel::connection::SimpleConnection;
    // The newest migration forgotten, as a database an older version left would be.
    conn.batch_execute(
        "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)",
    )
    .unwrap();
    drop(conn);
    let (status, code) = error_code(app.get(&format!("{}/readyz", app.address)).await).await;
    assert_eq!((status, code.as_str()), (503, "migrations_pending"));
    assert_eq!(
        app.get(&format!("{}/healthz", app.address)).await.status(),
        200
    );
}

/// The binary's log, as operators read it: one JSON line per request at `info`, naming its
/// request id, method, route pattern, status and duration, and never the path (it carries the
/// session token).
#[tokio::test]
async fn the_binary_logs_one_json_line_per_request_and_never_the_path() {
    use std::io::Read;
    let app = spawn_app().await;
    app.add_plan(1, 0);
    let url = app.checkout_url("u1", 1, None).await;
    let token = url.rsplit('/').next().unwrap().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_treefort-webpay"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in &app.vars {
        command.env(k, v);
    }
    command
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page = app
        .client
        .get(format!("{base}/checkout/{token}"))
        .header("X-Request-Id", "edge-12345678")
        .send()
        .await;
    // The writer thread writes whenever its queue empties.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(ready, "the service did not start: {log}");
    assert_eq!(page.unwrap().status(), 200);
    assert!(!log.contains(&token), "the token is in the log:\n{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of_page: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "edge-12345678")
        .collect();
    let [line] = of_page[..] else {
        panic!("one line for the request:\n{log}");
    };
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["message"], "request");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["elapsed_ms"].is_u64(), "{line}");
    assert_eq!(line["span"]["method"], "GET");
    assert_eq!(line["span"]["route"], "/checkout/{token}");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
}
