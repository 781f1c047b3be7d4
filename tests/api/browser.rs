//! The checkout page in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver, fantoccini), with localstripe's Stripe.js stand-in in the page.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{checkout_body, TestApp};
use crate::localstripe::spawn_stripe_app;

/// chromedriver on a free port, with one headless Chromium session; both stop when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium-driver; .ci/run does it)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut up = false;
        for _ in 0..200 {
            if http
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !up {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver did not start");
        }
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).unwrap();
        let profile = std::env::temp_dir().join(format!(
            "treefort-webpay-chromium-{}",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client =
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
            {
                Ok(client) => client,
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    panic!("no Chromium session: {e}");
                }
            };
        Browser {
            client,
            driver,
            _profile: TempDir(profile),
        }
    }

    /// Writes a screenshot under `target/screenshots/` for people to review.
    pub async fn screenshot(&self, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
        field.send_keys(text).await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A checkout whose `successUrl` is a page the browser can reach (served by the fake Treefort).
async fn checkout_returning_to(app: &TestApp) -> (String, String) {
    let success = format!("{}/app/welcome", app.treefort.uri());
    Mock::given(method("GET"))
        .and(path("/app/welcome"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><title>Welcome back</title><h1>Welcome back</h1>",
            "text/html",
        ))
        .mount(&app.treefort)
        .await;
    let mut body = checkout_body("shopper", 1);
    body["successUrl"] = success.clone().into();
    let response = app.post_treefort("/treefort/checkout-session", &body).await;
    assert_eq!(response.status(), 200);
    let session: serde_json::Value = response.json().await.unwrap();
    (session["sessionUrl"].as_str().unwrap().to_string(), success)
}

#[tokio::test]
async fn a_shopper_pays_in_stripes_card_field_and_lands_on_the_success_url() {
    let (app, stripe) = spawn_stripe_app().await;
    app.add_plan(1, 0);
    app.treefort_ok().await;
    let (url, success) = checkout_returning_to(&app).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&url).await.unwrap();
    // localstripe's Card Element: plain inputs named by placeholder (Stripe's is an iframe).
    browser
        .type_into("input[placeholder=number]", "4242424242424242")
        .await;
    browser
        .type_into("input[placeholder=exp_month]", "12")
        .await;
    browser.type_into("input[placeholder=exp_year]", "34").await;
    browser.type_into("input[placeholder=cvc]", "123").await;
    browser
        .type_into("input[placeholder=postal_code]", "10001")
        .await;
    browser.screenshot("stripe-checkout-1280").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let mut landed = String::new();
    for _ in 0..200 {
        landed = c.current_url().await.unwrap().to_string();
        if landed == success {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(landed, success, "the browser lands on successUrl");
    let posts = app.treefort_requests("POST", "/v1/subscriptions").await;
    assert_eq!(posts.len(), 1, "Treefort has the subscription");
    let intents = stripe.payment_intents().await;
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["status"], "succeeded");
    let card = treefort_webpay::models::customers::find_by_user_id(&mut app.conn(), "shopper")
        .unwrap()
        .unwrap();
    assert_eq!(card.card_last4.as_deref(), Some("4242"));
    browser.client.clone().close().await.unwrap();
}
