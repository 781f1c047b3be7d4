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
    let text = app
        .get(&format!("{}/metrics", app.address))
        .await
        .text()
        .await
        .unwrap();
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
