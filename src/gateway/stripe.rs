//! The Stripe gateway: Customers, SetupIntents confirmed in the browser with Stripe.js (the card
//! number never reaches this server), PaymentIntents charged by payment-method reference, refunds,
//! and signed webhooks.
//!
//! Every POST carries an `Idempotency-Key` of ours; every call has a timeout. Ids that come from a
//! browser are checked against Stripe's id shape before they go into a URL, and every object is
//! read back from Stripe and checked (status, customer, amount, our metadata) before it counts.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use hmac::{Hmac, Mac};
use regex::Regex;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{
    CardEntry, ChargeKind, ChargeOutcome, ChargeRequest, GatewayError, GatewayNotice, PaymentState,
    PaymentStatus, Purpose, SavedCard,
};
use crate::config::{StripeSettings, STRIPE_JS_URL, STRIPE_MAX_BACKOFF};
use crate::domain::backoff;
use crate::domain::money::Money;
use crate::metrics::Metrics;

/// The API version this code was written against; Stripe answers in its shapes whatever the
/// account's default is.
pub const STRIPE_VERSION: &str = "2024-06-20";
/// How far a webhook's signed timestamp may be from now (Stripe's own libraries use 300 s).
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// A Stripe object id: a short lowercase prefix, `_`, then letters and digits.
static STRIPE_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2,6}_[A-Za-z0-9]{6,250}$").expect("valid pattern"));

pub fn is_stripe_id(id: &str, prefix: &str) -> bool {
    STRIPE_ID.is_match(id)
        && id.starts_with(prefix)
        && id.as_bytes().get(prefix.len()) == Some(&b'_')
}

#[derive(Clone)]
pub struct StripeGateway {
    http: reqwest::Client,
    settings: StripeSettings,
    /// This installation's id: in the metadata of every object it creates (`tfw_install`) and in
    /// every idempotency key, so that other systems on the same Stripe account (or another
    /// installation) never collide with ours, and their events are never taken for ours.
    install_id: String,
    /// Every call of this instance waits here for its turn: `max_requests_per_second`, evenly
    /// spaced, so a backlog goes out at that pace and never meets Stripe's rate limit.
    pace: Arc<DefaultDirectRateLimiter>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("api_url", &self.settings.api_url)
            .field("install_id", &self.install_id)
            .finish_non_exhaustive()
    }
}

/// The metadata key naming the installation that created a Stripe object.
pub const INSTALL_METADATA: &str = "tfw_install";

/// How a Stripe call failed.
#[derive(Debug)]
enum Failure {
    /// A card error (HTTP 402): Stripe's `code`, `decline_code`, and the PaymentIntent if any.
    Card {
        code: String,
        decline_code: Option<String>,
        payment_intent: Option<Value>,
    },
    /// Stripe refused the request itself (400/404): the same request would fail again.
    Invalid {
        code: String,
    },
    Timeout,
    Other(String),
}

impl From<Failure> for GatewayError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Card {
                code, decline_code, ..
            } => GatewayError::Declined(decline_code.unwrap_or(code)),
            Failure::Timeout => GatewayError::Timeout,
            Failure::Invalid { code } => {
                GatewayError::Unavailable(format!("Stripe refused the request: {code}"))
            }
            Failure::Other(message) => GatewayError::Unavailable(message),
        }
    }
}

impl StripeGateway {
    pub fn new(
        settings: StripeSettings,
        install_id: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("cannot build the Stripe client: {e}"))?;
        let rate = NonZeroU32::new(settings.max_requests_per_second).unwrap_or(NonZeroU32::MIN);
        let pace = RateLimiter::direct(Quota::per_second(rate).allow_burst(NonZeroU32::MIN));
        Ok(Self {
            http,
            settings,
            install_id: install_id.to_string(),
            pace: Arc::new(pace),
            metrics,
        })
    }

    pub fn is_test_mode(&self) -> bool {
        self.settings.is_test_mode()
    }

    pub fn publishable_key(&self) -> &str {
        &self.settings.publishable_key
    }

    pub fn js_url(&self) -> &str {
        &self.settings.js_url
    }

    /// Stripe.js is loaded from `STRIPE_JS_URL`, talks to the API and opens 3-D Secure frames.
    pub fn page_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = [&self.settings.js_url, &self.settings.api_url]
            .iter()
            .filter_map(|u| origin_of(u))
            .collect();
        if self.settings.js_url == STRIPE_JS_URL {
            origins.extend([
                "https://*.js.stripe.com".into(),
                "https://hooks.stripe.com".into(),
            ]);
        }
        origins.dedup();
        origins
    }

    pub async fn create_customer(
        &self,
        local_id: i64,
        email: &str,
        name: Option<&str>,
    ) -> Result<String, GatewayError> {
        let mut params = vec![
            ("email".to_string(), email.to_string()),
            ("metadata[customer_id]".to_string(), local_id.to_string()),
            (
                format!("metadata[{INSTALL_METADATA}]"),
                self.install_id.clone(),
            ),
        ];
        if let Some(name) = name {
            params.push(("name".into(), name.into()));
        }
        let customer = self
            .post("/v1/customers", params, &format!("customer-{local_id}"))
            .await?;
        str_field(&customer, "id")
            .filter(|id| is_stripe_id(id, "cus"))
            .map(str::to_string)
            .ok_or_else(|| {
                GatewayError::Unavailable("Stripe answered a customer without id".into())
            })
    }

    pub fn card_entry(&self) -> CardEntry {
        CardEntry::StripeElement {
            publishable_key: self.settings.publishable_key.clone(),
            js_url: self.settings.js_url.clone(),
        }
    }

    pub async fn setup_card(
        &self,
        customer_ref: &str,
        purpose: &Purpose,
        key: &str,
    ) -> Result<String, GatewayError> {
        let mut params = vec![
            ("customer".to_string(), customer_ref.to_string()),
            ("usage".to_string(), "off_session".to_string()),
            ("payment_method_types[]".to_string(), "card".to_string()),
        ];
        params.extend(metadata_params(&purpose.metadata()));
        params.push((
            format!("metadata[{INSTALL_METADATA}]"),
            self.install_id.clone(),
        ));
        let setup = self
            .post("/v1/setup_intents", params, &format!("setup-{key}"))
            .await?;
        str_field(&setup, "client_secret")
            .map(str::to_string)
            .ok_or_else(|| GatewayError::Unavailable("Stripe answered no client_secret".into()))
    }

    /// Reads the SetupIntent the browser confirmed back from Stripe, checks it was ours, and makes
    /// its card the customer's default.
    pub async fn save_card(
        &self,
        customer_ref: &str,
        purpose: &Purpose,
        setup_id: &str,
    ) -> Result<SavedCard, GatewayError> {
        if !is_stripe_id(setup_id, "seti") {
            return Err(GatewayError::Mismatch);
        }
        let setup = self.get(&format!("/v1/setup_intents/{setup_id}")).await?;
        if id_of(&setup["customer"]) != Some(customer_ref)
            || !metadata_matches(&setup["metadata"], &purpose.metadata())
        {
            return Err(GatewayError::Mismatch);
        }
        match str_field(&setup, "status") {
            Some("succeeded") => {}
            Some("requires_payment_method") => {
                let code = setup["last_setup_error"]["decline_code"]
                    .as_str()
                    .or(setup["last_setup_error"]["code"].as_str())
                    .unwrap_or("card_declined");
                return Err(GatewayError::Declined(code.to_string()));
            }
            _ => return Err(GatewayError::Declined("setup_incomplete".into())),
        }
        let method_id = id_of(&setup["payment_method"])
            .filter(|id| {
                is_stripe_id(id, "pm") || is_stripe_id(id, "card") || is_stripe_id(id, "src")
            })
            .ok_or(GatewayError::Mismatch)?
            .to_string();
        let method = match &setup["payment_method"] {
            Value::Object(_) if setup["payment_method"]["card"].is_object() => {
                setup["payment_method"].clone()
            }
            _ => {
                self.get(&format!("/v1/payment_methods/{method_id}"))
                    .await?
            }
        };
        let card = &method["card"];
        let brand = card["brand"].as_str().unwrap_or("card");
        let last4 = card["last4"].as_str().unwrap_or("????");
        // The new card is the one renewals charge; Stripe's dashboard shows it as the default.
        self.post(
            &format!("/v1/customers/{customer_ref}"),
            vec![(
                "invoice_settings[default_payment_method]".into(),
                method_id.clone(),
            )],
            &format!("default-card-{setup_id}"),
        )
        .await?;
        Ok(SavedCard {
            reference: method_id,
            brand: display_brand(brand),
            last4: last4.to_string(),
        })
    }

    /// A PaymentIntent created and confirmed in one call (renewals: `off_session=true`).
    pub async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError> {
        let mut params = intent_params(request, &self.install_id)?;
        params.push(("confirm".to_string(), "true".to_string()));
        if request.kind == ChargeKind::Renewal {
            params.push(("off_session".into(), "true".into()));
        }
        let answer = self
            .post_raw("/v1/payment_intents", params, request.idempotency_key)
            .await;
        charge_answer(answer)
    }

    /// A PaymentIntent created unconfirmed (`requires_confirmation`): no money moves yet.
    pub async fn start_charge(&self, request: &ChargeRequest<'_>) -> Result<String, GatewayError> {
        let intent = self
            .post(
                "/v1/payment_intents",
                intent_params(request, &self.install_id)?,
                request.idempotency_key,
            )
            .await?;
        str_field(&intent, "id")
            .filter(|id| is_stripe_id(id, "pi"))
            .map(str::to_string)
            .ok_or_else(|| {
                GatewayError::Unavailable("Stripe answered a PaymentIntent without id".into())
            })
    }

    pub async fn confirm_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        if !is_stripe_id(reference, "pi") {
            return Err(GatewayError::Mismatch);
        }
        let answer = self
            .post_raw(
                &format!("/v1/payment_intents/{reference}/confirm"),
                Vec::new(),
                &format!("confirm-{reference}"),
            )
            .await;
        charge_answer(answer).map(|outcome| match outcome {
            // A decline's error may not name the PaymentIntent; we know it.
            ChargeOutcome::RequiresAction { .. } => ChargeOutcome::RequiresAction {
                reference: reference.to_string(),
            },
            other => other,
        })
    }

    pub async fn payment(&self, reference: &str) -> Result<PaymentState, GatewayError> {
        if !is_stripe_id(reference, "pi") {
            return Err(GatewayError::Mismatch);
        }
        let intent = self
            .get(&format!("/v1/payment_intents/{reference}"))
            .await?;
        state_of(&intent)
            .ok_or_else(|| GatewayError::Unavailable("unreadable PaymentIntent".into()))
    }

    pub async fn cancel_payment(&self, reference: &str) -> Result<(), GatewayError> {
        if !is_stripe_id(reference, "pi") {
            return Err(GatewayError::Mismatch);
        }
        self.post(
            &format!("/v1/payment_intents/{reference}/cancel"),
            Vec::new(),
            &format!("cancel-{reference}"),
        )
        .await
        .map(|_| ())
    }

    pub async fn refund(
        &self,
        reference: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        let minor = amount.to_minor_units().ok_or_else(|| {
            GatewayError::Unavailable("refund amount is not a whole minor unit".into())
        })?;
        let target = if is_stripe_id(reference, "pi") {
            "payment_intent"
        } else if is_stripe_id(reference, "ch") || is_stripe_id(reference, "py") {
            "charge"
        } else {
            return Err(GatewayError::Mismatch);
        };
        self.post(
            "/v1/refunds",
            vec![
                (target.to_string(), reference.to_string()),
                ("amount".to_string(), minor.to_string()),
            ],
            idempotency_key,
        )
        .await
        .map(|_| ())
    }

    /// What an event means for this installation: payments and setups another system (or
    /// installation) created on the same account are not ours and are ignored. Refunds and
    /// disputes are matched to our payments by reference, so they need no mark.
    pub fn notice(&self, event_type: &str, object: &Value) -> GatewayNotice {
        let ours = object["metadata"][INSTALL_METADATA].as_str() == Some(&self.install_id);
        match notice_of(event_type, object) {
            GatewayNotice::PaymentSucceeded(_)
            | GatewayNotice::PaymentFailed(_)
            | GatewayNotice::SetupSucceeded { .. }
                if !ours =>
            {
                GatewayNotice::Ignored
            }
            notice => notice,
        }
    }

    /// Checks `Stripe-Signature` against every configured secret and reads the event.
    pub fn verify_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<StripeEvent, WebhookError> {
        verify_signature(
            &self.settings.webhook_secrets_exposed(),
            signature,
            body,
            now_unix,
        )?;
        let event: Value = serde_json::from_slice(body).map_err(|_| WebhookError::Malformed)?;
        StripeEvent::from_json(&event).ok_or(WebhookError::Malformed)
    }

    async fn get(&self, path: &str) -> Result<Value, GatewayError> {
        let request = self.http.get(format!("{}{path}", self.settings.api_url));
        self.send(request).await.map_err(GatewayError::from)
    }

    async fn post(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        idempotency_key: &str,
    ) -> Result<Value, GatewayError> {
        self.post_raw(path, params, idempotency_key)
            .await
            .map_err(GatewayError::from)
    }

    async fn post_raw(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        idempotency_key: &str,
    ) -> Result<Value, Failure> {
        let request = self
            .http
            .post(format!("{}{path}", self.settings.api_url))
            .header(
                "Idempotency-Key",
                format!("tfw-{}-{idempotency_key}", self.install_id),
            )
            .form(&params);
        self.send(request).await
    }

    /// Sends a call at this instance's pace, and tries it again under the same idempotency key as
    /// Stripe's own libraries do: after a 429, a 409 (`lock_timeout`, or the same key still in
    /// progress), a 5xx, or an answer lost on the way (a timeout, a reset, a body that cannot be
    /// read), with exponential backoff and jitter, `Retry-After` honoured, and never when Stripe
    /// says `Stripe-Should-Retry: false`.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let request = request
            .bearer_auth(self.settings.secret_key.expose())
            .header("Stripe-Version", STRIPE_VERSION);
        let mut tries = 0;
        loop {
            let Some(this_try) = request.try_clone() else {
                return Err(Failure::Other("a Stripe call could not be repeated".into()));
            };
            let queued = Instant::now();
            self.pace.until_ready().await;
            self.metrics.observe_stripe_wait(queued.elapsed());
            let started = Instant::now();
            let answer = try_once(this_try).await;
            self.metrics
                .observe_stripe_call(answer.outcome, started.elapsed());
            match answer.retry {
                Some(hint) if tries < self.settings.max_network_retries => {
                    tries += 1;
                    self.metrics.counters.stripe_retries.inc([answer.outcome]);
                    let wait = backoff::jittered(backoff::exponential(
                        Duration::from_millis(500),
                        tries,
                        STRIPE_MAX_BACKOFF,
                    ))
                    .max(hint.unwrap_or_default().min(STRIPE_MAX_BACKOFF));
                    tracing::warn!(
                        outcome = answer.outcome,
                        tries,
                        wait_ms = wait.as_millis() as u64,
                        "a Stripe call failed; trying again under the same idempotency key"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => return answer.result,
            }
        }
    }
}

/// One try of a Stripe call: what it answered, its outcome's name in metrics, and whether (and
/// after how long, by Stripe's advice) it may be tried again.
struct Try {
    result: Result<Value, Failure>,
    outcome: &'static str,
    retry: Option<Option<Duration>>,
}

async fn try_once(request: reqwest::RequestBuilder) -> Try {
    let lost = |outcome, failure| Try {
        result: Err(failure),
        outcome,
        retry: Some(None),
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return lost("timeout", Failure::Timeout),
        // Without the URL: it is ours, but keep logs about the failure itself.
        Err(e) => {
            let failure = Failure::Other(format!("Stripe unreachable: {}", e.without_url()));
            return lost("network", failure);
        }
    };
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let should_retry = header("Stripe-Should-Retry");
    let retry_after = header("Retry-After")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.json::<Value>().await;
    if status.is_success() {
        // Stripe did what was asked, but what it says is lost (a timeout or a reset after the
        // headers): the outcome is unknown, never a decline; the same key repeats the answer.
        return match body {
            Ok(value) => Try {
                result: Ok(value),
                outcome: "ok",
                retry: None,
            },
            Err(e) if e.is_timeout() => lost("timeout", Failure::Timeout),
            Err(e) => lost(
                "unreadable",
                Failure::Other(format!(
                    "Stripe's answer {} could not be read: {}",
                    status.as_u16(),
                    e.without_url()
                )),
            ),
        };
    }
    let (failure, outcome) = failure_of(status, &body.unwrap_or(Value::Null));
    let retry = match should_retry.as_deref() {
        Some("false") => false,
        Some("true") => true,
        _ => matches!(outcome, "rate_limited" | "conflict" | "server_error"),
    };
    Try {
        result: Err(failure),
        outcome,
        retry: retry.then_some(retry_after),
    }
}

/// What a refusal of Stripe's means, and its outcome's name in metrics.
fn failure_of(status: reqwest::StatusCode, body: &Value) -> (Failure, &'static str) {
    let error = &body["error"];
    let code = error["code"].as_str().unwrap_or_default().to_string();
    if status.as_u16() == 402 || error["type"].as_str() == Some("card_error") {
        let failure = Failure::Card {
            code: if code.is_empty() {
                "card_declined".into()
            } else {
                code
            },
            decline_code: error["decline_code"].as_str().map(str::to_string),
            payment_intent: error
                .get("payment_intent")
                .filter(|v| v.is_object())
                .cloned(),
        };
        return (failure, "card_error");
    }
    // Stripe's own message is not logged: for a wrong key it quotes part of the key.
    let kind = error["type"].as_str().unwrap_or("unknown");
    if matches!(status.as_u16(), 400 | 404)
        && kind == "invalid_request_error"
        && code != "idempotency_error"
    {
        let code = if code.is_empty() {
            "invalid_request".into()
        } else {
            code
        };
        return (Failure::Invalid { code }, "invalid");
    }
    let outcome = match status.as_u16() {
        429 => "rate_limited",
        409 => "conflict",
        500..=599 => "server_error",
        _ => "invalid",
    };
    let failure = Failure::Other(format!(
        "Stripe answered {}: {kind} {code}",
        status.as_u16()
    ));
    (failure, outcome)
}

impl StripeSettings {
    fn webhook_secrets_exposed(&self) -> Vec<&str> {
        self.webhook_secrets.iter().map(|s| s.expose()).collect()
    }
}

/// A webhook event as Stripe sent it, read into what the services act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub notice: GatewayNotice,
}

impl StripeEvent {
    pub fn from_json(event: &Value) -> Option<StripeEvent> {
        let id = str_field(event, "id")?.to_string();
        let event_type = str_field(event, "type")?.to_string();
        let object = &event["data"]["object"];
        let object_id = str_field(object, "id").map(str::to_string);
        let notice = notice_of(&event_type, object);
        Some(StripeEvent {
            id,
            event_type,
            object_id,
            notice,
        })
    }
}

/// The services' reading of one Stripe event type.
pub fn notice_of(event_type: &str, object: &Value) -> GatewayNotice {
    let ignored = GatewayNotice::Ignored;
    match event_type {
        "payment_intent.succeeded" => {
            state_of(object).map_or(ignored, GatewayNotice::PaymentSucceeded)
        }
        "payment_intent.payment_failed" => {
            state_of(object).map_or(ignored, GatewayNotice::PaymentFailed)
        }
        "setup_intent.succeeded" => match str_field(object, "id") {
            Some(id) => GatewayNotice::SetupSucceeded {
                reference: id.to_string(),
                metadata: metadata_of(&object["metadata"]),
            },
            None => ignored,
        },
        "charge.refunded" => {
            let reference = id_of(&object["payment_intent"]).or(str_field(object, "id"));
            let currency = str_field(object, "currency");
            match (reference, currency, object["amount_refunded"].as_i64()) {
                (Some(reference), Some(currency), Some(refunded)) => GatewayNotice::Refunded {
                    payment_reference: reference.to_string(),
                    refunded: Money::from_minor_units(refunded, currency),
                },
                _ => ignored,
            }
        }
        "charge.dispute.created" => {
            let reference = id_of(&object["payment_intent"]).or(id_of(&object["charge"]));
            match reference {
                Some(reference) => GatewayNotice::Disputed {
                    payment_reference: reference.to_string(),
                    reason: str_field(object, "reason").unwrap_or("unknown").to_string(),
                },
                None => ignored,
            }
        }
        _ => ignored,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("this gateway's webhooks are not configured (PAYMENT_GATEWAY)")]
    NotConfigured,
    #[error("the Stripe-Signature header is missing or malformed")]
    MissingSignature,
    #[error("no signature matches a configured webhook secret")]
    BadSignature,
    #[error("the signature's timestamp is outside the 300 s tolerance")]
    Stale,
    #[error("the body is not a Stripe event")]
    Malformed,
}

/// Stripe's scheme: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, where each `v1` is the
/// HMAC-SHA256 of `"{t}.{raw body}"` under a webhook secret. Compared in constant time.
pub fn verify_signature(
    secrets: &[&str],
    header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MissingSignature)?;
    if signatures.is_empty() {
        return Err(WebhookError::MissingSignature);
    }
    let matches = secrets.iter().any(|secret| {
        let expected = hex::encode(sign(secret, timestamp, body));
        signatures
            .iter()
            .any(|sig| bool::from(sig.as_bytes().ct_eq(expected.as_bytes())))
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    if (now_unix - timestamp).abs() > WEBHOOK_TOLERANCE_SECS {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// HMAC-SHA256 of `"{timestamp}.{body}"` (what a `v1` signature is the hex of).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The parameters of a PaymentIntent for `request` (only those localstripe knows as well).
fn intent_params(
    request: &ChargeRequest<'_>,
    install_id: &str,
) -> Result<Vec<(String, String)>, GatewayError> {
    let amount = request.amount.to_minor_units().ok_or_else(|| {
        GatewayError::Unavailable(format!(
            "{} {}/{} is not a whole number of the currency's smallest unit",
            request.amount.amount, request.amount.currency, request.amount.divisor
        ))
    })?;
    // Stripe takes three-decimal currencies (KWD, BHD, …) only in whole hundredths.
    if crate::domain::money::minor_unit_exponent(&request.amount.currency) == 3 && amount % 10 != 0
    {
        return Err(GatewayError::Unavailable(format!(
            "Stripe charges {} only in multiples of 10 of its smallest unit",
            request.amount.currency
        )));
    }
    let mut params = vec![
        ("amount".to_string(), amount.to_string()),
        (
            "currency".to_string(),
            request.amount.currency.to_ascii_lowercase(),
        ),
        ("customer".to_string(), request.customer_ref.to_string()),
        ("payment_method".to_string(), request.card_ref.to_string()),
        ("payment_method_types[]".to_string(), "card".to_string()),
    ];
    let mut metadata = request.metadata.clone();
    metadata.push(("attempt_key", request.idempotency_key.to_string()));
    metadata.push((INSTALL_METADATA, install_id.to_string()));
    metadata.push((
        "kind",
        match request.kind {
            ChargeKind::Checkout => "checkout",
            ChargeKind::Renewal => "renewal",
        }
        .into(),
    ));
    params.extend(metadata_params(&metadata));
    Ok(params)
}

/// What a confirming call's answer means for the charge.
fn charge_answer(answer: Result<Value, Failure>) -> Result<ChargeOutcome, GatewayError> {
    match answer {
        Ok(intent) => outcome_of(&intent),
        // Off-session, Stripe answers a charge the bank wants authenticated with an error that
        // carries the PaymentIntent (localstripe answers requires_action instead).
        Err(Failure::Card {
            code,
            decline_code,
            payment_intent,
        }) => {
            let intent_id = payment_intent
                .as_ref()
                .and_then(|pi| str_field(pi, "id"))
                .map(str::to_string);
            match (code.as_str(), intent_id) {
                ("authentication_required", Some(reference)) => {
                    Ok(ChargeOutcome::RequiresAction { reference })
                }
                _ => Ok(ChargeOutcome::Declined {
                    reason: decline_code.unwrap_or(code),
                }),
            }
        }
        // A charge Stripe refuses outright (a detached card, a deleted customer, an amount below
        // its minimum) will not succeed when repeated: a decline, so grace and "replace card"
        // apply instead of endless retries.
        Err(Failure::Invalid { code }) => Ok(ChargeOutcome::Declined { reason: code }),
        Err(other) => Err(other.into()),
    }
}

/// What a confirmed PaymentIntent says of its charge. Only a status that says so is a decline: an
/// answer without an id or a known status is unknown, and so is an error.
fn outcome_of(intent: &Value) -> Result<ChargeOutcome, GatewayError> {
    let unreadable =
        || GatewayError::Unavailable("Stripe answered an unreadable PaymentIntent".into());
    let reference = str_field(intent, "id")
        .filter(|id| is_stripe_id(id, "pi"))
        .ok_or_else(unreadable)?
        .to_string();
    Ok(match str_field(intent, "status").ok_or_else(unreadable)? {
        "succeeded" => ChargeOutcome::Succeeded { reference },
        "requires_action" | "requires_source_action" => ChargeOutcome::RequiresAction { reference },
        // Stripe's delayed settlement: neither paid nor failed yet (read again later).
        "processing" | "requires_capture" | "requires_confirmation" => {
            ChargeOutcome::Processing { reference }
        }
        "requires_payment_method" | "canceled" => ChargeOutcome::Declined {
            reason: intent["last_payment_error"]["decline_code"]
                .as_str()
                .or(intent["last_payment_error"]["code"].as_str())
                .unwrap_or("card_declined")
                .to_string(),
        },
        _ => return Err(unreadable()),
    })
}

fn state_of(intent: &Value) -> Option<PaymentState> {
    let reference = str_field(intent, "id")?.to_string();
    let error = &intent["last_payment_error"];
    // Off-session, Stripe leaves a payment the bank wants authenticated as
    // `requires_payment_method` with the error `authentication_required` (localstripe answers
    // `requires_action`): both wait for the card holder.
    let awaiting_authentication = error["code"].as_str() == Some("authentication_required");
    let status = match str_field(intent, "status")? {
        "succeeded" => PaymentStatus::Succeeded,
        "requires_action" | "requires_source_action" => PaymentStatus::RequiresAction,
        "requires_confirmation" => PaymentStatus::RequiresConfirmation,
        "requires_payment_method" if awaiting_authentication => PaymentStatus::RequiresAction,
        "processing" | "requires_capture" => PaymentStatus::Processing,
        _ => PaymentStatus::Failed,
    };
    Some(PaymentState {
        reference,
        status,
        amount: Money::from_minor_units(intent["amount"].as_i64()?, str_field(intent, "currency")?),
        customer_ref: id_of(&intent["customer"]).map(str::to_string),
        card_ref: id_of(&intent["payment_method"])
            .or_else(|| id_of(&error["payment_method"]))
            .map(str::to_string),
        metadata: metadata_of(&intent["metadata"]),
        client_secret: str_field(intent, "client_secret").map(str::to_string),
    })
}

fn metadata_params(metadata: &[(&'static str, String)]) -> Vec<(String, String)> {
    metadata
        .iter()
        .map(|(k, v)| (format!("metadata[{k}]"), v.clone()))
        .collect()
}

fn metadata_of(value: &Value) -> HashMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

fn metadata_matches(value: &Value, expected: &[(&'static str, String)]) -> bool {
    let metadata = metadata_of(value);
    expected
        .iter()
        .all(|(k, v)| metadata.get(*k).map(String::as_str) == Some(v.as_str()))
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// An expandable field: the id itself, or the object with its id.
fn id_of(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value.get("id")?.as_str())
}

fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

fn display_brand(brand: &str) -> String {
    match brand {
        "visa" => "Visa".into(),
        "mastercard" => "Mastercard".into(),
        "amex" => "American Express".into(),
        "discover" => "Discover".into(),
        "jcb" => "JCB".into(),
        "diners" => "Diners Club".into(),
        "unionpay" => "UnionPay".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_browsers_must_look_like_stripe_ids() {
        assert!(is_stripe_id("seti_1AbCdEf2GhIjKl", "seti"));
        assert!(is_stripe_id("pi_3MtwBwLkdIwHu7ix28a3tqPa", "pi"));
        assert!(!is_stripe_id("pi_3MtwBwLkdIwHu7ix28a3tqPa", "seti"));
        assert!(!is_stripe_id("seti_../../v1/customers", "seti"));
        assert!(!is_stripe_id("seti_abc?x=1", "seti"));
        assert!(!is_stripe_id("", "pi"));
    }

    #[test]
    fn signatures_follow_stripes_scheme() {
        let body = br#"{"id":"evt_1","type":"x"}"#;
        let t = 1_700_000_000;
        let good = hex::encode(sign("whsec_a", t, body));
        let header = format!("t={t},v1=deadbeef,v1={good}");
        assert_eq!(
            verify_signature(&["whsec_a"], Some(&header), body, t + 10),
            Ok(())
        );
        // A rolled secret: either one verifies.
        assert_eq!(
            verify_signature(&["whsec_new", "whsec_a"], Some(&header), body, t),
            Ok(())
        );
        assert_eq!(
            verify_signature(&["whsec_b"], Some(&header), body, t),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(&["whsec_a"], Some(&header), b"{}", t),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(&["whsec_a"], Some(&header), body, t + 301),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            verify_signature(&["whsec_a"], None, body, t),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            verify_signature(&["whsec_a"], Some("v1=abc"), body, t),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn an_off_session_charge_stripe_wants_authenticated_waits_for_the_card_holder() {
        let intent = serde_json::json!({
            "id": "pi_3Auth0000000001", "object": "payment_intent", "status": "requires_payment_method",
            "amount": 999, "currency": "usd", "customer": "cus_Test00000001", "payment_method": null,
            "client_secret": "pi_3Auth0000000001_secret_x",
            "last_payment_error": {"code": "authentication_required", "type": "card_error",
                                   "payment_method": {"id": "pm_Card00000001", "object": "payment_method"}},
            "metadata": {"subscription_id": "7"}
        });
        let state = state_of(&intent).unwrap();
        assert_eq!(state.status, PaymentStatus::RequiresAction);
        assert_eq!(state.card_ref.as_deref(), Some("pm_Card00000001"));
        let declined = serde_json::json!({
            "id": "pi_3Decl0000000001", "status": "requires_payment_method", "amount": 999, "currency": "usd",
            "last_payment_error": {"code": "card_declined"}
        });
        assert_eq!(state_of(&declined).unwrap().status, PaymentStatus::Failed);
    }

    #[test]
    fn events_are_read_into_notices() {
        let event = serde_json::json!({
            "id": "evt_1", "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "payment_intent": "pi_1", "currency": "jpy", "amount_refunded": 500}}
        });
        let read = StripeEvent::from_json(&event).unwrap();
        assert_eq!(
            read.notice,
            GatewayNotice::Refunded {
                payment_reference: "pi_1".into(),
                refunded: Money {
                    amount: 500,
                    currency: "JPY".into(),
                    divisor: 1
                }
            }
        );
        let unknown = serde_json::json!({"id": "evt_2", "type": "customer.created", "data": {"object": {"id": "cus_1"}}});
        assert_eq!(
            StripeEvent::from_json(&unknown).unwrap().notice,
            GatewayNotice::Ignored
        );
    }
}
