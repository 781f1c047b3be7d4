//! The Stripe gateway: Customers, SetupIntents confirmed in the browser with Stripe.js (the card
//! number never reaches this server), PaymentIntents charged by payment-method reference, refunds,
//! and signed webhooks.
//!
//! Every POST carries an `Idempotency-Key` of ours; every call has a timeout. Ids that come from a
//! browser are checked against Stripe's id shape before they go into a URL, and every object is
//! read back from Stripe and checked (status, customer, amount, our metadata) before it counts.

mod answers;
mod http;
mod webhook;

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

use answers::*;
pub use webhook::*;

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
}

impl StripeSettings {
    fn webhook_secrets_exposed(&self) -> Vec<&str> {
        self.webhook_secrets.iter().map(|s| s.expose()).collect()
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
