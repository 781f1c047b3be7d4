use diesel::prelude::*;
use serde_json::json;
use treefort_webpay::schema::checkout_sessions;
use treefort_webpay::services::promo::PromoInput;

use crate::helpers::*;

#[tokio::test]
async fn a_checkout_url_is_unique_unguessable_and_stored_only_as_a_hash() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    let first = app.checkout_url("u1", 1, None).await;
    let second = app.checkout_url("u1", 1, None).await;
    assert_ne!(first, second);
    let prefix = format!("{}/checkout/", app.address);
    let token = first
        .strip_prefix(&prefix)
        .expect("URL under PUBLIC_BASE_URL");
    assert_eq!(token.len(), 43);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let rows: Vec<(String, chrono::NaiveDateTime, chrono::NaiveDateTime)> =
        checkout_sessions::table
            .select((
                checkout_sessions::token_hash,
                checkout_sessions::created_at,
                checkout_sessions::expires_at,
            ))
            .load(&mut *app.conn())
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (hash, created, expires) in rows {
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(token));
        assert_eq!((expires - created).num_seconds(), 3600);
    }
}

#[tokio::test]
async fn the_lifetime_follows_the_setting() {
    let app = spawn_app_with(|o| {
        o.set("CHECKOUT_SESSION_TTL_SECS", "600");
    })
    .await;
    app.add_plan(1, 0);
    app.checkout_url("u1", 1, None).await;
    let (created, expires): (chrono::NaiveDateTime, chrono::NaiveDateTime) =
        checkout_sessions::table
            .select((checkout_sessions::created_at, checkout_sessions::expires_at))
            .first(&mut *app.conn())
            .unwrap();
    assert_eq!((expires - created).num_seconds(), 600);
}

#[tokio::test]
async fn bad_urls_locales_and_users_are_refused_before_a_url_is_issued() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    let cases = [
        ("successUrl", json!("/relative"), "invalid_url"),
        ("cancelUrl", json!("javascript:alert(1)"), "invalid_url"),
        ("locale", json!("de DE"), "invalid_locale"),
        ("locale", json!(""), "invalid_locale"),
    ];
    for (field, value, code) in cases {
        let mut body = checkout_body("u1", 1);
        body[field] = value;
        let response = app.post_treefort("/treefort/checkout-session", &body).await;
        assert_eq!(error_code(response).await, (400, code.into()), "{field}");
    }
    let mut body = checkout_body("u1", 1);
    body["user"]["email"] = json!("not-an-email");
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    assert_eq!(error_code(response).await, (400, "invalid_user".into()));
    let mut body = checkout_body("u1", 1);
    body["user"].as_object_mut().unwrap().remove("createdAt");
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    assert_eq!(error_code(response).await, (400, "invalid_body".into()));
    assert_eq!(app.count("checkout_sessions"), 0);
}

#[tokio::test]
async fn control_characters_are_refused_with_400_and_nothing_is_stored() {
    // Found by an outside attack: a CR/LF in successUrl was stored, the card charged, and the
    // redirect then failed with 500; a NUL byte was a 500 on PostgreSQL.
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let cases = [
        (
            "successUrl",
            "https://app.example.com/ok\r\nSet-Cookie: a=b",
            "invalid_url",
        ),
        ("cancelUrl", "https://app.example.com/\u{0}", "invalid_url"),
        ("successUrl", "https://app.example.com/\nx", "invalid_url"),
    ];
    for (field, value, code) in cases {
        let mut body = checkout_body("u1", 1);
        body[field] = json!(value);
        let response = app.post_treefort("/treefort/checkout-session", &body).await;
        assert_eq!(error_code(response).await, (400, code.into()), "{value:?}");
    }
    for (field, value) in [
        ("id", "u\u{0}1"),
        ("id", "u1\r\n"),
        ("email", "a\u{0}@example.com"),
        ("firstName", "Ada\u{0}"),
        ("fullName", "Ada\nLovelace"),
        ("createdAt", "2026\u{0}"),
    ] {
        let mut body = checkout_body("u1", 1);
        body["user"][field] = json!(value);
        let response = app.post_treefort("/treefort/checkout-session", &body).await;
        assert_eq!(
            error_code(response).await,
            (400, "invalid_user".into()),
            "{field}: {value:?}"
        );
        let portal = app
            .post_treefort(
                "/treefort/billing-portal-session",
                &json!({"user": body["user"], "locale": "en", "backUrl": "https://app.example.com/"}),
            )
            .await;
        assert_eq!(error_code(portal).await, (400, "invalid_user".into()));
    }
    let cancel = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u\u{0}1", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(error_code(cancel).await, (400, "invalid_user".into()));
    let validate = app
        .post_treefort(
            "/treefort/validate-promo-code",
            &json!({"userId": "u\u{0}1", "subscriptionPlanIds": [1], "code": "X"}),
        )
        .await;
    assert_eq!(error_code(validate).await, (400, "invalid_user".into()));
    assert_eq!(app.count("checkout_sessions"), 0);
    assert_eq!(app.count("portal_sessions"), 0);
}

#[tokio::test]
async fn the_redirect_goes_to_the_url_as_checked() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let mut body = checkout_body("u1", 1);
    body["successUrl"] = json!("HTTPS://App.Example.com/done?next=/home%20page");
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    let url = response.json::<serde_json::Value>().await.unwrap()["sessionUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let paid = app.pay(&url, crate::helpers::GOOD_CARD).await;
    assert_eq!(paid.status(), 303);
    assert_eq!(
        paid.headers()["location"],
        "https://app.example.com/done?next=/home%20page"
    );
}

#[tokio::test]
async fn an_unknown_plan_is_404() {
    let app = spawn_app().await;
    let response = app.checkout_session("u1", 5, None).await;
    assert_eq!(error_code(response).await, (404, "plan_not_found".into()));
}

#[tokio::test]
async fn an_invalid_promo_code_is_400() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.add_plan(2, 0);
    app.add_promo(PromoInput {
        code: "ONLYTWO".into(),
        percent_off: Some(10),
        plan_ids: vec![2],
        ..Default::default()
    });
    for code in ["NOPE", "spring-25", "ONLYTWO"] {
        let response = app.checkout_session("u1", 1, Some(code)).await;
        assert_eq!(
            error_code(response).await,
            (400, "invalid_promo_code".into()),
            "{code}"
        );
    }
    assert_eq!(
        app.checkout_session("u1", 2, Some("onlytwo"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_user_already_on_the_plan_gets_409_but_may_switch_to_another() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.add_plan(2, 0);
    app.treefort_ok().await;
    app.subscribed_user("u1", 1).await;
    let response = app.checkout_session("u1", 1, None).await;
    assert_eq!(
        error_code(response).await,
        (409, "subscription_exists".into())
    );
    assert_eq!(app.checkout_session("u1", 2, None).await.status(), 200);
}

#[tokio::test]
async fn without_treefort_settings_checkout_is_503() {
    let app = spawn_app_with(|o| {
        for key in [
            "TREEFORT_API_URL",
            "TREEFORT_TOKEN_URL",
            "TREEFORT_CLIENT_ID",
            "TREEFORT_CLIENT_SECRET",
            "TREEFORT_API_VERSION",
            "TREEFORT_SCOPE",
        ] {
            o.unset(key);
        }
    })
    .await;
    app.add_plan(1, 0);
    let response = app.checkout_session("u1", 1, None).await;
    assert_eq!(error_code(response).await, (503, "not_configured".into()));
}
