//! Shoppers' emails through a real SMTP server (aiosmtpd, started per test): what arrives, in
//! which language, with links that open the billing portal; retries after a 4xx, the dead letter
//! after a 5xx, and reminders written once.

use chrono::TimeDelta;
use serde_json::{json, Value};
use treefort_webpay::clock::Clock;

use crate::helpers::{at, checkout_body, eventually, spawn_app_with, TestApp};
use crate::smtp::SmtpServer;
use crate::v1_support::{v1_json, v1_key, v1_post};

const CARD_OK: &str = "4242424242424242";
const CARD_CHARGE_DECLINED: &str = "4000000000000341";

async fn app_with(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    spawn_app_with(move |o| {
        o.clock_start = Some(at("2027-01-01T00:00:00Z"));
        o.vars.insert("SMTP_URL", url);
        o.vars
            .insert("EMAIL_FROM", "Acme <billing@acme.example>".into());
        o.vars.insert("EMAIL_REPLY_TO", "help@acme.example".into());
    })
    .await
}

impl TestApp {
    pub async fn send_emails(&self) {
        treefort_webpay::worker::send_emails(&self.state).await;
    }

    /// A checkout link of `user_id` for `plan_id` in `locale`.
    async fn checkout_in(&self, user_id: &str, plan_id: i64, locale: &str) -> String {
        let mut body = checkout_body(user_id, plan_id);
        body["locale"] = locale.into();
        let response = self
            .post_treefort("/treefort/checkout-session", &body)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["sessionUrl"].as_str().unwrap().to_string()
    }
}

/// The messages the server accepted, once there are `n`.
async fn arrived(smtp: &SmtpServer, n: usize) -> Vec<Value> {
    eventually(&format!("{n} messages at the SMTP server"), || async {
        let m = smtp.messages();
        (m.len() >= n).then_some(m)
    })
    .await
}

/// The email link in a text part.
fn link_in(text: &str) -> String {
    let at = text.find("/email-links/").expect("a link in the email");
    let start = text[..at].rfind("http").unwrap();
    let end = text[at..]
        .find(|c: char| c.is_whitespace())
        .map_or(text.len(), |e| at + e);
    text[start..end].to_string()
}

#[tokio::test]
async fn a_paid_checkout_sends_a_receipt_whose_link_opens_the_portal_of_that_user_until_it_expires()
{
    let smtp = SmtpServer::start("ok");
    let app = app_with(&smtp).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, CARD_OK).await.status(), 303);
    app.send_emails().await;
    let messages = arrived(&smtp, 1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let receipt = &messages[0];
    assert_eq!(receipt["rcptTos"], json!(["u1@example.com"]));
    assert_eq!(receipt["from"], "Acme <billing@acme.example>");
    assert_eq!(receipt["replyTo"], "help@acme.example");
    assert_eq!(receipt["subject"], "Your Acme receipt");
    let message_id = receipt["messageId"].as_str().unwrap();
    assert!(
        message_id.starts_with("<email-") && message_id.ends_with("@acme.example>"),
        "{message_id}"
    );
    let text = receipt["text"].as_str().unwrap();
    for needle in [
        "Hello Ada Lovelace,",
        "$9.99",
        "Plan 1",
        "Receipt number: R-",
        "Jan 1, 2027 – Feb 1, 2027",
        "Visa •••• 4242",
        "Manage or cancel your subscription: ",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let html = receipt["html"].as_str().unwrap();
    assert!(
        html.contains("$9.99") && html.contains("<a href=\"http"),
        "{html}"
    );
    assert!(!html.contains("<img"), "no remote images");

    // The link mints a billing-portal session for u1 (the token is kept hashed).
    let link = link_in(text);
    let token = link.rsplit('/').next().unwrap().to_string();
    let opened = app.get(&link).await;
    assert_eq!(opened.status(), 303);
    let portal = opened.headers()["location"].to_str().unwrap().to_string();
    assert!(
        portal.starts_with(&format!("{}/billing/", app.address)),
        "{portal}"
    );
    let page = app.get(&portal).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Plan 1"));
    let (user, hashes): (String, Vec<String>) = {
        use diesel::prelude::*;
        use treefort_webpay::schema::{email_links, portal_sessions};
        let mut conn = app.conn();
        let user = portal_sessions::table
            .order(portal_sessions::id.desc())
            .select(portal_sessions::user_id)
            .first(&mut *conn)
            .unwrap();
        let hashes = email_links::table
            .select(email_links::token_hash)
            .load(&mut *conn)
            .unwrap();
        (user, hashes)
    };
    assert_eq!(user, "u1");
    assert!(
        !hashes.iter().any(|h| h.contains(&token)),
        "links are kept hashed"
    );
    // A second visit mints another session; an unknown token is 404; after 72 h, 410.
    assert_eq!(app.get(&link).await.status(), 303);
    let unknown = format!("{}/email-links/{}", app.address, "A".repeat(43));
    assert_eq!(app.get(&unknown).await.status(), 404);
    app.advance(TimeDelta::hours(73));
    assert_eq!(app.get(&link).await.status(), 410);

    // Support sees it, never the shopper's link.
    let listed = app.cli_ok(&["emails", "list", "--user", "u1"]);
    assert!(
        listed.contains("receipt") && listed.contains("sent"),
        "{listed}"
    );
    let id = listed
        .trim_start_matches('#')
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let shown = app.cli_ok(&["emails", "show", &id]);
    assert!(shown.contains("Subject: Your Acme receipt"), "{shown}");
    assert!(
        shown.contains(&format!("Message-ID: {message_id}")),
        "{shown}"
    );
    assert!(!shown.contains("/email-links/"), "{shown}");
    // A resend goes again, with the same Message-ID.
    app.cli_ok(&["emails", "resend", &id]);
    app.send_emails().await;
    let again = arrived(&smtp, 2).await;
    assert_eq!(again[1]["messageId"], message_id);
}

#[tokio::test]
async fn a_declined_renewal_is_told_in_german_once_after_the_server_refused_it_twice_for_now() {
    let smtp = SmtpServer::start("refuse-2");
    let app = app_with(&smtp).await;
    app.add_plan(1, 7);
    app.treefort_ok().await;
    let url = app.checkout_in("u1", 1, "de-DE").await;
    assert_eq!(app.pay(&url, CARD_CHARGE_DECLINED).await.status(), 303);
    app.advance(TimeDelta::days(7) + TimeDelta::hours(1));
    app.run_worker().await;
    // Two 451s, each retried later with backoff; then the server takes it, once.
    for _ in 0..6 {
        app.send_emails().await;
        app.advance(TimeDelta::minutes(30));
    }
    app.send_emails().await;
    let messages = arrived(&smtp, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1, "sent once");
    let failed = &messages[0];
    assert_eq!(failed["subject"], "Ihre Zahlung an Acme ist fehlgeschlagen");
    // Kept for people to look at (docs/screenshots shows it).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("email-payment-failed-de.html"),
        failed["html"].as_str().unwrap(),
    )
    .unwrap();
    let text = failed["text"].as_str().unwrap();
    for needle in [
        "Hallo Ada Lovelace,",
        "9,99\u{a0}$",
        "11.01.2027",
        "Karte aktualisieren: ",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let listed = app.cli_ok(&["emails", "list", "--json"]);
    let emails: Value = serde_json::from_str(&listed).unwrap();
    let row = &emails[0];
    assert_eq!(
        (row["kind"].as_str(), row["status"].as_str()),
        (Some("payment_failed"), Some("sent"))
    );
    assert_eq!(row["attempts"], 3, "two refusals, then sent");
    // Its button opens the portal of that user, in German.
    let opened = app.get(&link_in(text)).await;
    assert_eq!(opened.status(), 303);
    let portal = opened.headers()["location"].to_str().unwrap().to_string();
    let page = app.get(&portal).await.text().await.unwrap();
    assert!(page.contains("lang=\"de\""), "{page}");
}

#[tokio::test]
async fn an_email_refused_for_good_is_dead_and_listed() {
    let smtp = SmtpServer::start("reject");
    let app = app_with(&smtp).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let url = app.checkout_url("u1", 1, None).await;
    assert_eq!(app.pay(&url, CARD_OK).await.status(), 303);
    app.send_emails().await;
    let dead = eventually("the receipt is dead", || async {
        let out = app.cli_ok(&["emails", "list", "--status", "dead"]);
        out.contains("receipt").then_some(out)
    })
    .await;
    assert!(dead.contains("550"), "the server's answer is kept: {dead}");
    app.advance(TimeDelta::hours(1));
    app.send_emails().await;
    assert!(smtp.messages().is_empty());
    let bad = app.cli(&["emails", "list", "--status", "lost"]);
    assert!(!bad.status.success());
}

#[tokio::test]
async fn a_trial_reminder_goes_once_in_japanese_whichever_instance_finds_it() {
    let smtp = SmtpServer::start("ok");
    let app = app_with(&smtp).await;
    app.add_plan(1, 14);
    app.treefort_ok().await;
    let url = app.checkout_in("u1", 1, "ja-JP").await;
    assert_eq!(app.pay(&url, CARD_OK).await.status(), 303);
    // Not yet: the reminder is 7 days before the charge (Jan 15).
    app.advance(TimeDelta::days(6));
    app.run_worker().await;
    app.send_emails().await;
    assert!(smtp.messages().is_empty());
    // Jan 8: due. Two instances scan; one email.
    app.advance(TimeDelta::days(2));
    let other = app.worker_state(Clock::manual(app.now()), &[]).await;
    treefort_webpay::worker::run_once(&other).await;
    app.run_worker().await;
    app.run_worker().await;
    app.send_emails().await;
    let messages = arrived(&smtp, 1).await;
    app.advance(TimeDelta::hours(1));
    app.run_worker().await;
    treefort_webpay::worker::run_once(&other).await;
    app.send_emails().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1, "one reminder");
    let reminder = &messages[0];
    assert!(
        reminder["subject"].as_str().unwrap().contains("2027/01/15"),
        "{}",
        reminder["subject"]
    );
    let text = reminder["text"].as_str().unwrap();
    assert!(
        text.contains("$9.99") && text.contains("/email-links/"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cancellation_is_told_with_a_button_that_undoes_it() {
    let smtp = SmtpServer::start("ok");
    let app = app_with(&smtp).await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    app.subscribed_user("u2", 1).await;
    let canceled = app
        .post_treefort(
            "/treefort/cancel-subscription",
            &json!({"userId": "u2", "subscriptionPlanId": 1}),
        )
        .await;
    assert_eq!(canceled.status(), 200);
    app.send_emails().await;
    let messages = arrived(&smtp, 2).await;
    let notice = messages
        .iter()
        .find(|m| m["subject"] == "Your Acme subscription is canceled")
        .expect("the canceled email");
    let text = notice["text"].as_str().unwrap();
    assert!(
        text.contains("Feb 1, 2027"),
        "access until the period end: {text}"
    );
    assert!(text.contains("Keep my subscription: "), "{text}");
    let portal = app.get(&link_in(text)).await;
    let page = app
        .get(portal.headers()["location"].to_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/resume"),
        "the portal offers the undo: {page}"
    );

    // A refund is told with the payment it belongs to; the end with a goodbye.
    let key = v1_key(&app, "write");
    let payments = v1_json(&app, &key, "/v1/payments").await;
    let payment = payments["data"][0]["id"].as_i64().unwrap();
    let refunded = v1_post(&app, &key, &format!("/v1/payments/{payment}/refund"), None).await;
    assert_eq!(refunded.status(), 200);
    app.advance(TimeDelta::days(32));
    app.run_worker().await;
    app.run_worker().await;
    app.send_emails().await;
    let messages = arrived(&smtp, 4).await;
    let subjects: Vec<&str> = messages
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "Your Acme receipt",
            "Your Acme subscription is canceled",
            "Your Acme refund",
            "Your Acme subscription has ended"
        ]
    );
    let refund = messages[2]["text"].as_str().unwrap();
    assert!(
        refund.contains("We refunded $9.99 of payment R-"),
        "{refund}"
    );
    assert!(!refund.contains("/email-links/"), "no button: {refund}");
}
