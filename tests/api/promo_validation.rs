use chrono::TimeDelta;
use serde_json::{json, Value};
use treefort_webpay::services::promo::PromoInput;

use crate::helpers::*;

async fn validate(app: &TestApp, body: Value) -> Value {
    let response = app
        .post_treefort("/treefort/validate-promo-code", &body)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn setup(app: &TestApp) {
    app.add_plan(1, 0);
    app.add_plan(2, 0);
    app.add_plan_priced(3, 0, "EUR", 899, 100);
}

#[tokio::test]
async fn a_percent_code_answers_in_treeforts_shape_case_insensitively() {
    let app = spawn_app().await;
    setup(&app);
    app.add_promo(PromoInput {
        code: "Spring25".into(),
        percent_off: Some(25),
        plan_ids: vec![1, 2],
        ..Default::default()
    });
    let answer = validate(
        &app,
        json!({"subscriptionPlanIds": [1, 2, 3], "code": "sPrInG25"}),
    )
    .await;
    assert_eq!(
        answer,
        json!({"code": "Spring25", "type": "percent", "eligibleSubscriptionPlanIds": [1, 2],
               "firstTimeSubscribersOnly": false, "percentOff": 25})
    );
}

#[tokio::test]
async fn an_amount_code_applies_only_to_plans_in_its_currency() {
    let app = spawn_app().await;
    setup(&app);
    app.add_promo(PromoInput {
        code: "FIVE".into(),
        amount_off: Some(500),
        currency: Some("USD".into()),
        divisor: Some(100),
        first_time_only: true,
        ..Default::default()
    });
    let answer = validate(&app, json!({"subscriptionPlanIds": [1, 3], "code": "five"})).await;
    assert_eq!(
        answer,
        json!({"code": "FIVE", "type": "amount", "amountOff": {"amount": 500, "currency": "USD", "divisor": 100},
               "eligibleSubscriptionPlanIds": [1], "firstTimeSubscribersOnly": true})
    );
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [3], "code": "FIVE"})).await,
        json!({"type": "invalid"})
    );
}

#[tokio::test]
async fn codes_with_other_characters_or_unknown_are_invalid() {
    let app = spawn_app().await;
    setup(&app);
    app.add_promo(PromoInput {
        code: "SPRING25".into(),
        percent_off: Some(25),
        ..Default::default()
    });
    for code in [
        "SPRING-25",
        "spring 25",
        "ＳＰＲＩＮＧ25",
        "",
        "NOPE",
        "SPRING25 ",
    ] {
        let answer = validate(&app, json!({"subscriptionPlanIds": [1], "code": code})).await;
        assert_eq!(answer, json!({"type": "invalid"}), "{code:?}");
    }
}

#[tokio::test]
async fn disabled_expired_and_exhausted_codes_are_invalid() {
    let app = spawn_app().await;
    setup(&app);
    app.treefort_ok().await;
    let expires = app.now() + TimeDelta::days(1);
    app.add_promo(PromoInput {
        code: "SOON".into(),
        percent_off: Some(10),
        expires_at: Some(expires.naive_utc()),
        ..Default::default()
    });
    app.add_promo(PromoInput {
        code: "ONCE".into(),
        percent_off: Some(10),
        max_redemptions: Some(1),
        ..Default::default()
    });
    app.add_promo(PromoInput {
        code: "OFF".into(),
        percent_off: Some(10),
        ..Default::default()
    });
    app.disable_promo("off");
    let invalid = json!({"type": "invalid"});
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [1], "code": "OFF"})).await,
        invalid
    );
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [1], "code": "ONCE"})).await["type"],
        "percent"
    );
    let url = app.checkout_url("u1", 1, Some("ONCE")).await;
    assert_eq!(app.pay(&url, GOOD_CARD).await.status(), 303);
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [1], "code": "ONCE"})).await,
        invalid
    );
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [1], "code": "SOON"})).await["type"],
        "percent"
    );
    app.advance(TimeDelta::days(1));
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [1], "code": "SOON"})).await,
        invalid
    );
}

#[tokio::test]
async fn first_time_codes_are_invalid_for_a_user_who_subscribed_before() {
    let app = spawn_app().await;
    setup(&app);
    app.treefort_ok().await;
    app.add_promo(PromoInput {
        code: "WELCOME".into(),
        percent_off: Some(50),
        first_time_only: true,
        ..Default::default()
    });
    app.subscribed_user("old", 1).await;
    let invalid = json!({"type": "invalid"});
    assert_eq!(
        validate(
            &app,
            json!({"userId": "old", "subscriptionPlanIds": [2], "code": "WELCOME"})
        )
        .await,
        invalid
    );
    let new_user = validate(
        &app,
        json!({"userId": "new", "subscriptionPlanIds": [2], "code": "WELCOME"}),
    )
    .await;
    assert_eq!(new_user["firstTimeSubscribersOnly"], true);
    let anonymous = validate(&app, json!({"subscriptionPlanIds": [2], "code": "WELCOME"})).await;
    assert_eq!(anonymous["type"], "percent");
}

#[tokio::test]
async fn no_eligible_plan_left_means_invalid() {
    let app = spawn_app().await;
    setup(&app);
    app.add_promo(PromoInput {
        code: "TWO".into(),
        percent_off: Some(10),
        plan_ids: vec![2],
        ..Default::default()
    });
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [1, 3], "code": "TWO"})).await,
        json!({"type": "invalid"})
    );
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [], "code": "TWO"})).await,
        json!({"type": "invalid"})
    );
    assert_eq!(
        validate(&app, json!({"subscriptionPlanIds": [99], "code": "TWO"})).await,
        json!({"type": "invalid"})
    );
}

#[tokio::test]
async fn a_code_that_is_not_a_string_is_a_400() {
    let app = spawn_app().await;
    let response = app
        .post_treefort(
            "/treefort/validate-promo-code",
            &json!({"subscriptionPlanIds": [1], "code": 25}),
        )
        .await;
    assert_eq!(error_code(response).await, (400, "invalid_body".into()));
}
