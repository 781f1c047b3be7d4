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

/// A session with a promo code takes the same one-statement path as one without: the code is
/// judged from the catalog in memory, the user's history by the insert. Each reason a code is
/// refused gets 400 `invalid_promo_code`, a user already on the plan 409 whatever the code, and a
/// refused session is not stored.
#[tokio::test]
async fn each_reason_a_promo_code_is_refused_gets_the_same_answer_as_before() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.add_plan(2, 0);
    app.add_plan_priced(3, 0, "EUR", 999, 100);
    app.treefort_ok().await;
    let code = |code: &str| PromoInput {
        code: code.into(),
        percent_off: Some(10),
        ..Default::default()
    };
    app.add_promo(PromoInput {
        plan_ids: vec![2],
        ..code("ONLYTWO")
    });
    app.add_promo(PromoInput {
        expires_at: Some((app.now() + chrono::TimeDelta::days(1)).naive_utc()),
        ..code("SOON")
    });
    app.add_promo(PromoInput {
        max_redemptions: Some(1),
        ..code("ONCE")
    });
    app.add_promo(PromoInput {
        first_time_only: true,
        ..code("WELCOME")
    });
    app.add_promo(PromoInput {
        percent_off: None,
        amount_off: Some(100),
        currency: Some("USD".into()),
        ..code("DOLLAR")
    });
    app.add_promo(code("OFF"));
    app.disable_promo("off");
    // "old" subscribes to plan 1, using up ONCE.
    let url = app.checkout_url("old", 1, Some("ONCE")).await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    let stored = app.count("checkout_sessions");

    let invalid = (400, "invalid_promo_code".to_string());
    let exists = (409, "subscription_exists".to_string());
    let cases: [(&str, i64, &str, &(u16, String)); 9] = [
        ("new", 1, "NOPE", &invalid),      // unknown
        ("new", 1, "spring-25", &invalid), // not letters and digits
        ("new", 1, "ONLYTWO", &invalid),   // limited to another plan
        ("new", 1, "OFF", &invalid),       // disabled
        ("new", 1, "ONCE", &invalid),      // redemption limit reached
        ("new", 3, "DOLLAR", &invalid),    // an amount in another currency
        ("old", 2, "WELCOME", &invalid),   // first-time only, and "old" subscribes
        ("old", 1, "WELCOME", &exists),    // already on the plan: 409 whatever the code
        ("old", 1, "NOPE", &exists),
    ];
    for (user, plan, promo, expected) in cases {
        let response = app.checkout_session(user, plan, Some(promo)).await;
        assert_eq!(
            &error_code(response).await,
            expected,
            "{user} {plan} {promo}"
        );
    }
    app.advance(chrono::TimeDelta::days(1));
    let expired = app.checkout_session("new", 1, Some("SOON")).await;
    assert_eq!(error_code(expired).await, invalid, "expired");
    assert_eq!(
        app.count("checkout_sessions"),
        stored,
        "a refused session is stored"
    );

    // Asked for at once, the refused and the accepted share the statement and keep their answers.
    let asks = [
        ("old", 2, "WELCOME"),
        ("new", 2, "WELCOME"),
        ("new2", 2, "onlytwo"),
        ("old", 2, "DOLLAR"),
    ];
    let answers = futures_util::future::join_all(
        asks.iter()
            .map(|(user, plan, promo)| app.checkout_session(user, *plan, Some(promo))),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [400, 200, 200, 200]);
    let with_codes: Vec<(String, Option<i64>)> = checkout_sessions::table
        .filter(checkout_sessions::plan_id.eq(2))
        .select((checkout_sessions::user_id, checkout_sessions::promo_code_id))
        .order(checkout_sessions::user_id)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(with_codes.len(), 3);
    assert!(
        with_codes.iter().all(|(_, code)| code.is_some()),
        "{with_codes:?}"
    );
}

/// A code made a moment ago by another process (the command line here) is valid at once: a code
/// or plan the catalog in memory does not know makes it compare its version first.
#[tokio::test]
async fn a_code_made_a_moment_ago_elsewhere_is_valid_at_once() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    assert_eq!(app.checkout_session("u1", 1, None).await.status(), 200);
    app.cli_ok(&["promo", "create", "--code", "FRESH", "--percent-off", "10"]);
    app.cli_ok(&plan_upsert_args("2", "Fresh", &[]));
    assert_eq!(
        app.checkout_session("u1", 1, Some("FRESH")).await.status(),
        200
    );
    assert_eq!(app.checkout_session("u2", 2, None).await.status(), 200);
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

/// Sessions asked for at the same moment are written together (one statement): each request is
/// still answered for its own user, a subscriber's refusal does not refuse the others, and every
/// URL leads to the session of the user it was issued for.
#[tokio::test]
async fn sessions_asked_for_at_once_are_each_answered_for_their_own_user() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("subscriber", 1).await;
    let users: Vec<String> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                "subscriber".to_string()
            } else {
                format!("u{i}")
            }
        })
        .collect();
    let responses =
        futures_util::future::join_all(users.iter().map(|u| app.checkout_session(u, 1, None)))
            .await;
    let prefix = format!("{}/checkout/", app.address);
    for (user, response) in users.iter().zip(responses) {
        if user == "subscriber" {
            assert_eq!(
                error_code(response).await,
                (409, "subscription_exists".into())
            );
            continue;
        }
        assert_eq!(response.status(), 200, "{user}");
        let body: serde_json::Value = response.json().await.unwrap();
        let url = body["sessionUrl"].as_str().unwrap();
        let token = url.strip_prefix(&prefix).unwrap();
        let hash = treefort_webpay::domain::session_token::hash_if_well_formed(token).unwrap();
        let owner: String = checkout_sessions::table
            .filter(checkout_sessions::token_hash.eq(&hash))
            .select(checkout_sessions::user_id)
            .first(&mut *app.conn())
            .unwrap();
        assert_eq!(&owner, user);
    }
    // 30 new sessions, and the subscriber's one paid session only.
    assert_eq!(app.count("checkout_sessions"), 31);
}

/// On SQLite the service's commits leave the WAL to a checkpoint thread of their own (a commit
/// that copies it waits for the disk, and so does every writer behind it): what was written still
/// reaches the database file itself, within a second. (On PostgreSQL there is nothing to check.)
#[tokio::test]
async fn on_sqlite_what_was_written_reaches_the_database_file_within_a_second() {
    let app = spawn_app().await;
    let Some(path) = app.vars["DATABASE_URL"].strip_prefix("sqlite://") else {
        return;
    };
    app.add_plan(1, 0);
    for i in 0..5 {
        app.checkout_url(&format!("u{i}"), 1, None).await;
    }
    let copy = format!("{path}.copy");
    let mut in_file = 0;
    for _ in 0..30 {
        // The database file alone, without its WAL: what has been checkpointed.
        if std::fs::copy(path, &copy).is_ok() {
            if let Ok(mut conn) = diesel::SqliteConnection::establish(&copy) {
                in_file = checkout_sessions::table
                    .count()
                    .get_result(&mut conn)
                    .unwrap_or(0);
            }
        }
        let _ = std::fs::remove_file(&copy);
        if in_file == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(in_file, 5, "sessions in the database file itself");
}
