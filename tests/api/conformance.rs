//! What the outside attack and schemathesis found at the edges of the protocol.

use serde_json::json;

use crate::helpers::{checkout_body, error_code, spawn_app, spawn_app_with, API_KEY};

#[tokio::test]
async fn session_urls_are_never_cached() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let checkout = app.checkout_session("u1", 1, None).await;
    assert_eq!(checkout.headers()["cache-control"], "no-store");
    let portal = app
        .post_treefort(
            "/treefort/billing-portal-session",
            &json!({"user": crate::helpers::user("u1"), "locale": "en", "backUrl": "https://app.example.com/"}),
        )
        .await;
    assert_eq!(portal.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn dates_and_locales_must_be_what_they_claim() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    for (field, value, code) in [
        ("locale", json!("1"), "invalid_locale"),
        ("locale", json!("e"), "invalid_locale"),
        ("locale", json!("en--US"), "invalid_locale"),
    ] {
        let mut body = checkout_body("u1", 1);
        body[field] = value.clone();
        let response = app.post_treefort("/treefort/checkout-session", &body).await;
        assert_eq!(error_code(response).await, (400, code.into()), "{value}");
    }
    let mut body = checkout_body("u1", 1);
    body["user"]["createdAt"] = json!("yesterday");
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    assert_eq!(error_code(response).await, (400, "invalid_user".into()));
    for (locale, created) in [
        ("zh-Hant-TW", "2026-01-31"),
        ("pt_BR", "2026-01-31T10:00:00+02:00"),
    ] {
        let mut body = checkout_body("u1", 1);
        body["locale"] = json!(locale);
        body["user"]["createdAt"] = json!(created);
        let response = app.post_treefort("/treefort/checkout-session", &body).await;
        assert_eq!(response.status(), 200, "{locale} {created}");
    }
}

#[tokio::test]
async fn json_in_another_charset_is_415() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    let response = app
        .client
        .post(format!("{}/treefort/subscription-plan", app.address))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json; charset=utf-16")
        .body(r#"{"subscriptionPlanId": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (415, "unsupported_media_type".into())
    );
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = spawn_app_with(|o| {
        o.set("METRICS_TOKEN", "scrape-secret");
    })
    .await;
    let url = format!("{}/metrics", app.address);
    assert_eq!(app.get(&url).await.status(), 401);
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = app
        .client
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn a_malformed_form_keeps_the_test_mode_banner() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    let response = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("card_number=4242")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Test mode"));
}

#[tokio::test]
async fn a_deleted_sqlite_file_makes_the_service_unready() {
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        return; // a SQLite matter
    }
    let app = spawn_app().await;
    let url = format!("{}/readyz", app.address);
    assert_eq!(app.get(&url).await.status(), 200);
    let path = app.vars["DATABASE_URL"]
        .trim_start_matches("sqlite://")
        .to_string();
    std::fs::remove_file(&path).unwrap();
    let response = app.get(&url).await;
    assert_eq!(
        error_code(response).await,
        (503, "database_unavailable".into())
    );
}

#[tokio::test]
async fn every_route_answers_other_methods_with_405_and_allow() {
    let app = spawn_app().await;
    let token = "A".repeat(43);
    for (method, path) in treefort_webpay::startup::ROUTES {
        let url = format!("{}{}", app.address, path.replace("{token}", &token));
        for other in ["TRACE", "PUT", "DELETE"] {
            let served = treefort_webpay::startup::ROUTES
                .iter()
                .any(|(m, p)| *m == other && *p == path);
            if served {
                continue;
            }
            let response = app
                .client
                .request(reqwest::Method::from_bytes(other.as_bytes()).unwrap(), &url)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 405, "{other} {path}");
            let allow = response.headers()["allow"].to_str().unwrap().to_string();
            assert!(allow.contains(method), "{path}: Allow: {allow}");
            assert_eq!(
                error_code(response).await,
                (405, "method_not_allowed".into())
            );
        }
    }
}

#[tokio::test]
async fn a_bad_link_is_checked_before_the_form_it_carries() {
    let app = spawn_app().await;
    let token = "A".repeat(43);
    for path in ["cancel", "resume", "card", "confirm-payment"] {
        let response = app
            .client
            .post(format!("{}/billing/{token}/{path}", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("garbage=%%%")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = app
        .client
        .post(format!("{}/checkout/{token}", app.address))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|o| {
        o.set("BODY_READ_TIMEOUT_MS", "300");
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    for path in [
        "/treefort/subscription-plan",
        "/checkout/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"sub"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 64];
        // The server answers on its own; the test only refuses to wait forever.
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut answer))
            .await
            .expect("an answer, not a held connection")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
    }
}
