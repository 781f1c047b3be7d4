//! Payment gateways: what the services need from one, in one shape whichever is active.
//!
//! The order is the same on every gateway: the gateway's customer exists once per user; a card is
//! saved first (on Stripe, a SetupIntent that the browser confirms with the card field, so the
//! card number never reaches this server), then charged by reference with an idempotency key of
//! ours. Services never ask which gateway is active: the page shows the card entry the gateway
//! asks for ([`CardEntry`]) and passes back what the browser submitted ([`CardSubmission`]).
//!
//! `sandbox` moves no money and takes test card numbers in our own form; `stripe` is the real one.

pub mod sandbox;
pub mod stripe;

use std::collections::HashMap;

use crate::domain::money::Money;
use crate::error::ApiError;

/// Card details as the shopper typed them into our own form (sandbox only). Never stored, never
/// logged.
pub struct CardInput {
    pub number: String,
    pub expiry: String,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput([redacted])")
    }
}

/// What the browser sent back after the shopper entered a card.
#[derive(Debug)]
pub enum CardSubmission {
    /// The fields of our own form (the sandbox's).
    Fields(CardInput),
    /// The id of a card setup the browser confirmed with the gateway (Stripe: `seti_…`).
    Setup(String),
}

/// How the page collects a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEntry {
    /// Our own number/expiry/CVC fields, posted to us (the sandbox: test cards, no money).
    Fields,
    /// Stripe's Card Element: the page loads Stripe.js and, when the shopper presses the button,
    /// asks us for a SetupIntent ([`Gateway::setup_card`]), confirms it in the browser with
    /// `confirmCardSetup` and posts only its id. Showing the page costs no call to Stripe.
    StripeElement {
        publishable_key: String,
        js_url: String,
    },
}

/// Stripe.js finishing a payment's authentication in the browser (`confirmCardPayment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserAuthentication {
    pub publishable_key: String,
    pub js_url: String,
    pub client_secret: String,
    /// The card to authenticate with, when the payment no longer names one (Stripe's off-session
    /// `authentication_required` leaves it in the last error).
    pub payment_method: Option<String>,
}

/// Why a card is saved: written on the gateway's objects so a confirmation coming back from a
/// browser can be checked against the page that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The payment attempt `attempt` of a checkout link: a card set up for one attempt cannot be
    /// used by another (or by a webhook after the shopper moved on).
    Checkout {
        session_id: i64,
        attempt: i32,
    },
    Portal {
        user_id: String,
    },
}

impl Purpose {
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Purpose::Checkout {
                session_id,
                attempt,
            } => vec![
                ("purpose", "checkout".into()),
                ("checkout_session_id", session_id.to_string()),
                ("checkout_attempt", attempt.to_string()),
            ],
            Purpose::Portal { user_id } => {
                vec![("purpose", "portal".into()), ("user_id", user_id.clone())]
            }
        }
    }
}

/// A card the gateway keeps for us: its reference and what a person may see of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub reference: String,
    pub brand: String,
    pub last4: String,
}

/// Why the money is taken: gateways (and the sandbox's test cards) may treat renewals differently.
/// A renewal is charged with the shopper absent (`off_session` on Stripe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeKind {
    Checkout,
    Renewal,
}

/// One charge to make.
#[derive(Debug, Clone)]
pub struct ChargeRequest<'a> {
    pub customer_ref: &'a str,
    pub card_ref: &'a str,
    pub amount: &'a Money,
    pub kind: ChargeKind,
    /// Ours, derived from the attempt: the same key never charges twice.
    pub idempotency_key: &'a str,
    /// What the charge is for (checkout session or subscription id), stored on the gateway's
    /// object so an event about it can be matched to our records.
    pub metadata: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        reference: String,
    },
    Declined {
        reason: String,
    },
    /// The bank wants the card holder to authenticate (3-D Secure). The payment stays open under
    /// `reference` until they do it in the browser.
    RequiresAction {
        reference: String,
    },
    /// Neither taken nor failed yet: the gateway is still working on it (Stripe's `processing`).
    /// Never counted as paid; the payment is read again under `reference` until it settles.
    Processing {
        reference: String,
    },
}

/// Where a payment stands at the gateway, read back from it (never from the browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub reference: String,
    pub status: PaymentStatus,
    pub amount: Money,
    pub customer_ref: Option<String>,
    pub card_ref: Option<String>,
    pub metadata: HashMap<String, String>,
    /// For the browser to finish an authentication (Stripe's `client_secret`).
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Succeeded,
    RequiresAction,
    /// Started and never confirmed: no money moved, and none will until it is confirmed.
    RequiresConfirmation,
    /// Neither taken nor failed yet (the gateway is still working on it).
    Processing,
    /// Declined, failed authentication, or canceled: no money was taken.
    Failed,
}

impl PaymentStatus {
    /// What a payment read back in this state means for the charge that made it. A payment still
    /// waiting for its confirmation has taken nothing: it is no outcome yet, and reads as in
    /// progress.
    pub fn outcome(self, reference: String) -> ChargeOutcome {
        match self {
            PaymentStatus::Succeeded => ChargeOutcome::Succeeded { reference },
            PaymentStatus::RequiresAction => ChargeOutcome::RequiresAction { reference },
            PaymentStatus::RequiresConfirmation | PaymentStatus::Processing => {
                ChargeOutcome::Processing { reference }
            }
            PaymentStatus::Failed => ChargeOutcome::Declined {
                reason: "card_declined".into(),
            },
        }
    }
}

impl PaymentState {
    /// Whether this is the charge we asked for: our customer, the amount and currency expected,
    /// and our key in its metadata.
    pub fn is_ours(&self, customer_ref: &str, amount: &Money, idempotency_key: &str) -> bool {
        self.customer_ref.as_deref() == Some(customer_ref)
            && self.amount.same_value(amount)
            && self.metadata.get("attempt_key").map(String::as_str) == Some(idempotency_key)
    }
}

/// What the gateway told us through a webhook, in the services' words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayNotice {
    PaymentSucceeded(PaymentState),
    PaymentFailed(PaymentState),
    /// A card setup the browser confirmed (its id, and our metadata on it).
    SetupSucceeded {
        reference: String,
        metadata: HashMap<String, String>,
    },
    /// `refunded` of the payment `payment_reference` has been given back in total.
    Refunded {
        payment_reference: String,
        refunded: Money,
    },
    Disputed {
        payment_reference: String,
        reason: String,
    },
    /// An event type we do not act on.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The card details are malformed (which field, for the shopper).
    #[error("invalid card details: {0}")]
    InvalidCard(&'static str),
    /// The card was refused when it was saved.
    #[error("card declined: {0}")]
    Declined(String),
    /// What the browser sent does not match what this page asked the gateway for.
    #[error("the card confirmation does not belong to this page")]
    Mismatch,
    #[error("the payment gateway did not answer in time")]
    Timeout,
    #[error("the payment gateway failed: {0}")]
    Unavailable(String),
}

/// The active payment gateway.
#[derive(Debug, Clone)]
pub enum Gateway {
    Sandbox(sandbox::SandboxGateway),
    Stripe(stripe::StripeGateway),
}

impl Gateway {
    /// Name stored with each payment.
    pub fn name(&self) -> &'static str {
        match self {
            Gateway::Sandbox(_) => "sandbox",
            Gateway::Stripe(_) => "stripe",
        }
    }

    /// Whether no real money moves (pages then show a test-mode banner).
    pub fn is_test_mode(&self) -> bool {
        match self {
            Gateway::Sandbox(_) => true,
            Gateway::Stripe(g) => g.is_test_mode(),
        }
    }

    /// Origins the pages must allow scripts, frames and requests from (the CSP).
    pub fn page_origins(&self) -> Vec<String> {
        match self {
            Gateway::Sandbox(_) => Vec::new(),
            Gateway::Stripe(g) => g.page_origins(),
        }
    }

    /// Whether a stored customer reference is this gateway's (after a switch from the sandbox to
    /// Stripe, the sandbox's references are not).
    pub fn owns_customer(&self, reference: &str) -> bool {
        match self {
            Gateway::Sandbox(_) => reference.starts_with("cus_sandbox_"),
            Gateway::Stripe(_) => stripe::is_stripe_id(reference, "cus"),
        }
    }

    /// Whether a stored card reference is this gateway's.
    pub fn owns_card(&self, reference: &str) -> bool {
        match self {
            Gateway::Sandbox(_) => reference.starts_with("pm_sandbox_"),
            Gateway::Stripe(_) => !reference.starts_with("pm_sandbox_"),
        }
    }

    /// The gateway's customer for our customer `local_id`: `existing` if it is this gateway's,
    /// else a new one (created once: the key is derived from `local_id`). The caller stores it.
    pub async fn ensure_customer(
        &self,
        existing: Option<&str>,
        local_id: i64,
        email: &str,
        name: Option<&str>,
    ) -> Result<String, GatewayError> {
        if let Some(existing) = existing.filter(|e| self.owns_customer(e)) {
            return Ok(existing.to_string());
        }
        match self {
            Gateway::Sandbox(_) => Ok(format!("cus_sandbox_{local_id}")),
            Gateway::Stripe(g) => g.create_customer(local_id, email, name).await,
        }
    }

    /// How a page collects a card. No call to the gateway: a page view creates nothing there.
    pub fn card_entry(&self) -> CardEntry {
        match self {
            Gateway::Sandbox(_) => CardEntry::Fields,
            Gateway::Stripe(g) => g.card_entry(),
        }
    }

    /// A card setup for `customer_ref`, created when the shopper submits the card field: the
    /// client secret Stripe.js confirms. `key` names the submission (one setup per key).
    pub async fn setup_card(
        &self,
        customer_ref: &str,
        purpose: &Purpose,
        key: &str,
    ) -> Result<String, GatewayError> {
        match self {
            // The sandbox's page posts its own fields; it never asks for a setup.
            Gateway::Sandbox(_) => Err(GatewayError::Mismatch),
            Gateway::Stripe(g) => g.setup_card(customer_ref, purpose, key).await,
        }
    }

    /// Saves the card the browser submitted, after checking with the gateway that it was set up
    /// for `customer_ref` and `purpose`. The card becomes the customer's default.
    pub async fn save_card(
        &self,
        customer_ref: &str,
        purpose: &Purpose,
        submission: CardSubmission,
    ) -> Result<SavedCard, GatewayError> {
        match (self, submission) {
            (Gateway::Sandbox(g), CardSubmission::Fields(card)) => g.save_card(&card),
            (Gateway::Stripe(g), CardSubmission::Setup(id)) => {
                g.save_card(customer_ref, purpose, &id).await
            }
            // A form of the other gateway (say, posted by hand): nothing to save.
            (Gateway::Sandbox(_), CardSubmission::Setup(_)) => {
                Err(GatewayError::InvalidCard("card_number"))
            }
            (Gateway::Stripe(_), CardSubmission::Fields(_)) => Err(GatewayError::Mismatch),
        }
    }

    /// Charges a saved card at once (renewals: the card holder is absent). The same
    /// `idempotency_key` never charges twice.
    pub async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError> {
        match self {
            Gateway::Sandbox(g) => {
                if !g.charge_delay.is_zero() {
                    tokio::time::sleep(g.charge_delay).await;
                }
                Ok(g.charge(request))
            }
            Gateway::Stripe(g) => g.charge(request).await,
        }
    }

    /// First half of a checkout charge: the gateway records the payment without taking money and
    /// answers its reference, which the caller stores before [`Gateway::confirm_charge`]. Whatever
    /// happens after that, the payment can be looked up by that reference.
    pub async fn start_charge(&self, request: &ChargeRequest<'_>) -> Result<String, GatewayError> {
        match self {
            Gateway::Sandbox(g) => Ok(g.start_charge(request)),
            Gateway::Stripe(g) => g.start_charge(request).await,
        }
    }

    /// Second half: takes the money of a started payment (or asks for authentication). An answer
    /// that is lost (a timeout, a reset, a body that cannot be read) is never taken for a decline:
    /// the payment is read back by its reference, and confirmed once more if the confirmation
    /// never reached the gateway. An error means that, too, could not be learned.
    pub async fn confirm_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        let answered = self.confirm_once(reference).await;
        let Err(lost) = answered else {
            return answered;
        };
        tracing::warn!(payment = %reference, error = %lost, "a confirmation's answer was lost; reading the payment back");
        let payment = self.payment(reference).await?;
        match payment.status {
            PaymentStatus::RequiresConfirmation => self.confirm_once(reference).await,
            status => Ok(status.outcome(payment.reference)),
        }
    }

    async fn confirm_once(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        match self {
            Gateway::Sandbox(g) => g.confirm_charge(reference),
            Gateway::Stripe(g) => g.confirm_charge(reference).await,
        }
    }

    /// Reads a payment back from the gateway.
    pub async fn payment(&self, reference: &str) -> Result<PaymentState, GatewayError> {
        match self {
            Gateway::Sandbox(g) => g.payment(reference),
            Gateway::Stripe(g) => g.payment(reference).await,
        }
    }

    /// What the browser needs to let the card holder authenticate `reference` (3-D Secure).
    pub async fn authentication(
        &self,
        reference: &str,
    ) -> Result<Option<BrowserAuthentication>, GatewayError> {
        match self {
            Gateway::Sandbox(_) => Ok(None),
            Gateway::Stripe(g) => {
                let payment = g.payment(reference).await?;
                let card = payment.card_ref.clone();
                Ok(payment
                    .client_secret
                    .filter(|_| payment.status == PaymentStatus::RequiresAction)
                    .map(|client_secret| BrowserAuthentication {
                        publishable_key: g.publishable_key().to_string(),
                        js_url: g.js_url().to_string(),
                        client_secret,
                        payment_method: card,
                    }))
            }
        }
    }

    /// Gives up a payment still waiting for authentication, so it can never be taken later.
    pub async fn cancel_payment(&self, reference: &str) -> Result<(), GatewayError> {
        match self {
            Gateway::Sandbox(g) => {
                g.cancel(reference);
                Ok(())
            }
            Gateway::Stripe(g) => g.cancel_payment(reference).await,
        }
    }

    /// What a stored event of `gateway` means for us (events of another gateway: nothing).
    pub fn notice(&self, gateway: &str, event_type: &str, payload: &str) -> GatewayNotice {
        match (
            self,
            gateway,
            serde_json::from_str::<serde_json::Value>(payload),
        ) {
            (Gateway::Stripe(g), "stripe", Ok(event)) => {
                g.notice(event_type, &event["data"]["object"])
            }
            _ => GatewayNotice::Ignored,
        }
    }

    /// Checks a webhook the gateway `route` (`/webhooks/{route}`) received, and reads it.
    pub fn verify_webhook(
        &self,
        route: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<stripe::StripeEvent, stripe::WebhookError> {
        match self {
            Gateway::Stripe(g) if route == "stripe" => {
                g.verify_webhook(signature, body, chrono::Utc::now().timestamp())
            }
            _ => Err(stripe::WebhookError::NotConfigured),
        }
    }

    /// Gives `amount` of a charge back. `idempotency_key` is ours: repeating it refunds once.
    pub async fn refund(
        &self,
        charge_reference: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        match self {
            Gateway::Sandbox(g) => g.refund(charge_reference, amount),
            Gateway::Stripe(g) => g.refund(charge_reference, amount, idempotency_key).await,
        }
    }
}

/// A gateway failure as the API reports it (the cause is logged, not shown).
impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Timeout => ApiError::gateway_timeout(
                "gateway_timeout",
                "the payment gateway did not answer in time",
            ),
            GatewayError::InvalidCard(_) | GatewayError::Mismatch => {
                ApiError::bad_request("invalid_card", "check the card details")
            }
            GatewayError::Declined(_) => ApiError::new_payment_required(),
            GatewayError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "payment gateway failed");
                ApiError::bad_gateway("gateway_error", "the payment gateway failed; try again")
            }
        }
    }
}
