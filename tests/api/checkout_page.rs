use chrono::TimeDelta;
use serde_json::json;
use treefort_webpay::services::promo::PromoInput;

use crate::helpers::*;

#[tokio::test]
async fn the_page_shows_plan_price_interval_and_email_in_the_shoppers_language() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    let mut body = checkout_body("u1", 1);
    body["locale"] = json!("de-DE");
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    let url = response.json::<serde_json::Value>().await.unwrap()["sessionUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let page = app.get(&url).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<html lang="de">"#));
    assert!(html.contains("Plan 1 abonnieren"));
    assert!(html.contains("9,99\u{a0}$"));
    assert!(html.contains("monatlich"));
    assert!(html.contains("u1@example.com"));
    assert!(html.contains(r#"href="https://app.example.com/cancel""#));
    assert!(
        html.contains(r#"name="card_number""#)
            && html.contains(r#"name="card_expiry""#)
            && html.contains(r#"name="card_cvc""#)
    );
    assert!(html.contains("Testmodus"), "the sandbox banner is shown");
}

#[tokio::test]
async fn unknown_locales_fall_back_to_english_and_trials_are_shown() {
    let app = spawn_app().await;
    app.add_plan(1, 7);
    let html = checkout_page_in(&app, "u1", "zh-Hant-TW").await;
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains("7-day free trial"));
    assert!(html.contains("Due today: <strong>$0.00</strong>"), "{html}");
    assert!(html.contains("Test mode: no real payment"));
}

#[tokio::test]
async fn a_promo_code_shows_the_original_and_the_discounted_price() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    app.add_promo(PromoInput {
        code: "Spring25".into(),
        percent_off: Some(25),
        ..Default::default()
    });
    let url = app.checkout_url("u1", 1, Some("SPRING25")).await;
    let html = app.get(&url).await.text().await.unwrap();
    assert!(html.contains("Promo code Spring25"));
    assert!(html.contains("<s>$9.99</s>"));
    assert!(html.contains("<strong>$7.49</strong>"));
    assert!(
        html.contains(r#"<p class="price">$9.99 <span class="muted">every month"#),
        "the headline is what recurs"
    );
    assert!(
        html.contains("From charge 2 on: $9.99 every month"),
        "a first-charge code says what follows"
    );
}

#[tokio::test]
async fn unknown_and_malformed_tokens_get_a_404_page() {
    let app = spawn_app().await;
    for token in [
        "x",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "%3Cscript%3E",
    ] {
        let page = app.get(&format!("{}/checkout/{token}", app.address)).await;
        assert_eq!(page.status(), 404, "{token}");
        assert!(page.text().await.unwrap().contains("Link not found"));
    }
}

#[tokio::test]
async fn an_expired_link_shows_a_410_page_without_anyones_data() {
    let app = spawn_app().await;
    app.add_plan(1, 0);
    let url = app.checkout_url("u1", 1, None).await;
    app.advance(TimeDelta::seconds(3601));
    let page = app.get(&url).await;
    assert_eq!(page.status(), 410);
    let html = page.text().await.unwrap();
    assert!(html.contains("This link has expired"));
    assert!(!html.contains("u1@example.com") && !html.contains("Plan 1"));
    let paid = app.pay(&url, GOOD_CARD).await;
    assert_eq!(paid.status(), 410);
    assert_eq!(app.count("payments"), 0);
}

#[tokio::test]
async fn each_language_shows_its_texts_money_and_dates() {
    let app = spawn_app().await;
    app.add_plan_priced(1, 7, "EUR", 123_450, 100);
    for (locale, lang, title, price) in [
        ("pt-BR", "pt-BR", "Assinar Plan 1", "€\u{a0}1.234,50"),
        ("pl-PL", "pl", "Subskrypcja Plan 1", "1234,50\u{a0}€"),
        ("ja-JP", "ja", "Plan 1のお申し込み", "€1,234.50"),
        (
            "sv-SE",
            "sv",
            "Prenumerera på Plan 1",
            "1\u{a0}234,50\u{a0}€",
        ),
        ("de-AT", "de", "Plan 1 abonnieren", "1.234,50\u{a0}€"),
    ] {
        let html = checkout_page_in(&app, &format!("user-{lang}"), locale).await;
        assert!(
            html.contains(&format!(r#"<html lang="{lang}">"#)),
            "{locale}"
        );
        assert!(html.contains(title), "{locale}: {html}");
        assert!(html.contains(price), "{locale}: {html}");
        assert!(
            !html.contains("{ $"),
            "{locale}: a placeholder was left unfilled"
        );
    }
}

/// The checkout page of plan 1 for `user`, as Treefort asks for it in `locale`.
async fn checkout_page_in(app: &TestApp, user: &str, locale: &str) -> String {
    let mut body = checkout_body(user, 1);
    body["locale"] = json!(locale);
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    let url = response.json::<serde_json::Value>().await.unwrap()["sessionUrl"]
        .as_str()
        .unwrap()
        .to_string();
    app.get(&url).await.text().await.unwrap()
}
