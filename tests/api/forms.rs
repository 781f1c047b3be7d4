//! Shopper forms refuse posts made by another site (cross-site request forgery).

use crate::helpers::{spawn_app, GOOD_CARD};

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let url = app.link_to_paid_plan("u1").await;
    let post = |origin: Option<&'static str>, referer: Option<String>| {
        let mut request = app.client.post(&url).form(&[
            ("card_number", GOOD_CARD),
            ("card_expiry", "12/40"),
            ("card_cvc", "123"),
        ]);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        if let Some(referer) = referer {
            request = request.header("Referer", referer);
        }
        request.send()
    };
    for (origin, referer) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("https://evil.example/page".to_string())),
    ] {
        let refused = post(origin, referer.clone()).await.unwrap();
        assert_eq!(refused.status(), 403, "{origin:?} {referer:?}");
    }
    assert_eq!(app.gateway_charges(), (0, 0), "nothing was charged");
    assert_eq!(app.count("subscriptions"), 0);
    let portal = app.portal_url("u1", "en").await;
    let cancel = app
        .client
        .post(format!("{portal}/cancel"))
        .header("Origin", "https://evil.example")
        .form(&[("subscription_id", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 403);

    // Our own page's form carries our origin.
    let ours = app.address.clone();
    let paid = app
        .client
        .post(&url)
        .header("Origin", ours.as_str())
        .header("Referer", url.as_str())
        .form(&[
            ("card_number", GOOD_CARD),
            ("card_expiry", "12/40"),
            ("card_cvc", "123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
}
