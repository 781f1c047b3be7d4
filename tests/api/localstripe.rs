//! localstripe (PyPI), a third-party fake of Stripe's API and Stripe.js, started for one test on a
//! free port and stopped with it; and what a browser would do with Stripe.js against it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

pub const SECRET_KEY: &str = "sk_test_treefortwebpay";
pub const PUBLISHABLE_KEY: &str = "pk_test_treefortwebpay";
pub const WEBHOOK_SECRET: &str = "whsec_test_current";
pub const OLD_WEBHOOK_SECRET: &str = "whsec_test_previous";

pub const CARD_OK: &str = "4242424242424242";
/// Declined when the card is saved (SetupIntent).
pub const CARD_DECLINED: &str = "4000000000000002";
/// Saved fine, declined whenever it is charged.
pub const CARD_CHARGE_DECLINED: &str = "4000000000000341";
/// Needs 3-D Secure, when saved and when charged.
pub const CARD_3DS: &str = "4000002760003184";

pub struct LocalStripe {
    pub url: String,
    child: Child,
    pub http: reqwest::Client,
}

impl LocalStripe {
    pub async fn start() -> LocalStripe {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("localstripe")
            .args(["--port", &port.to_string(), "--from-scratch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("localstripe is installed (pip install localstripe; .ci/run does it)");
        // Owned at once: dropping it (a panic below included) stops the process.
        let stripe = LocalStripe {
            url: format!("http://127.0.0.1:{port}"),
            child,
            http: reqwest::Client::new(),
        };
        // Up to 30 s: a busy machine starting many at once (tests/fault_campaign.sh) takes long
        // to import localstripe's Python.
        for _ in 0..600 {
            let up = stripe
                .http
                .get(format!("{}/v1/customers", stripe.url))
                .bearer_auth(SECRET_KEY)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return stripe;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("localstripe did not start on port {port}");
    }

    pub fn js_url(&self) -> String {
        format!("{}/js.stripe.com/v3/", self.url)
    }

    /// Sends Stripe's events to the app's webhook route, signed with `secret`.
    pub async fn send_webhooks_to(&self, app: &TestApp, secret: &str) {
        self.send_webhooks_to_url(&format!("{}/webhooks/stripe", app.address), secret)
            .await;
    }

    /// Sends Stripe's events to `url`, signed with `secret`.
    pub async fn send_webhooks_to_url(&self, url: &str, secret: &str) {
        let response = self
            .http
            .post(format!("{}/_config/webhooks/treefort-webpay", self.url))
            .json(&json!({"url": url, "secret": secret}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "GET {path}");
        response.json().await.unwrap()
    }

    /// Every PaymentIntent localstripe holds (oldest first).
    pub async fn payment_intents(&self) -> Vec<Value> {
        self.get("/v1/payment_intents?limit=100").await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// What Stripe.js's `confirmCardSetup` sends for a card typed into the card field, then the
    /// 3-D Secure step completed if the bank asks for it. Returns the SetupIntent as confirmed, or
    /// the error.
    pub async fn confirm_card_setup(
        &self,
        client_secret: &str,
        card: &str,
    ) -> Result<Value, Value> {
        let id = client_secret.split("_secret_").next().unwrap();
        let confirm = |body: Value| {
            self.http
                .post(format!("{}/v1/setup_intents/{id}/confirm", self.url))
                .body(body.to_string())
                .send()
        };
        let response = confirm(json!({
            "key": PUBLISHABLE_KEY, "use_stripe_sdk": true, "client_secret": client_secret,
            "payment_method_data": {"type": "card", "card": {"number": card, "exp_month": "12", "exp_year": "34", "cvc": "123"}},
        }))
        .await
        .unwrap();
        let ok = response.status().is_success();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !ok {
            return Err(body);
        }
        if body["status"] == "requires_action" {
            // The shopper completes the bank's 3-D Secure window.
            let done: Value = confirm(
                json!({"key": PUBLISHABLE_KEY, "use_stripe_sdk": true, "client_secret": client_secret}),
            )
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            return Ok(done);
        }
        Ok(body)
    }

    /// What Stripe.js's `confirmCardPayment` does once the shopper completes (or fails) the
    /// bank's 3-D Secure window.
    pub async fn authenticate_payment(&self, client_secret: &str, success: bool) -> Value {
        let id = client_secret.split("_secret_").next().unwrap();
        self.http
            .post(format!(
                "{}/v1/payment_intents/{id}/_authenticate?success={success}",
                self.url
            ))
            .body(json!({"key": PUBLISHABLE_KEY, "client_secret": client_secret}).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service with `PAYMENT_GATEWAY=stripe` against its own localstripe.
pub async fn spawn_stripe_app() -> (TestApp, LocalStripe) {
    spawn_stripe_app_with(|_| {}).await
}

pub async fn spawn_stripe_app_with(
    configure: impl FnOnce(&mut crate::helpers::Options),
) -> (TestApp, LocalStripe) {
    let stripe = LocalStripe::start().await;
    let api = stripe.url.clone();
    let app = spawn_app_through(&stripe, &api, configure).await;
    (app, stripe)
}

/// The service with `PAYMENT_GATEWAY=stripe`, calling Stripe's API at `api` (localstripe itself,
/// or a proxy in front of it); Stripe.js comes from localstripe.
pub async fn spawn_app_through(
    stripe: &LocalStripe,
    api: &str,
    configure: impl FnOnce(&mut crate::helpers::Options),
) -> TestApp {
    let (api, js) = (api.to_string(), stripe.js_url());
    spawn_app_with(|o| {
        o.set("PAYMENT_GATEWAY", "stripe")
            .set("STRIPE_SECRET_KEY", SECRET_KEY)
            .set("STRIPE_PUBLISHABLE_KEY", PUBLISHABLE_KEY)
            .set(
                "STRIPE_WEBHOOK_SECRETS",
                format!("{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}"),
            )
            .set("STRIPE_API_URL", api)
            .set("STRIPE_JS_URL", js)
            .set("STRIPE_TIMEOUT_MS", "20000")
            // Not paced in tests (one test checks the pace).
            .set("STRIPE_MAX_REQUESTS_PER_SECOND", "10000");
        configure(o);
    })
    .await
}

/// The value of `attribute` on the page's first element that has it.
pub fn attribute(html: &str, attribute: &str) -> Option<String> {
    let marker = format!("{attribute}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// A Stripe-signed webhook delivery of `event`, as Stripe sends it.
/// Stripe's scheme written again here, independently of the service's code.
pub fn signed(secret: &str, timestamp: i64, event: &Value) -> (String, String) {
    use hmac::{Hmac, Mac};
    let body = serde_json::to_string_pretty(event).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (format!("t={timestamp},v1={hex}"), body)
}
