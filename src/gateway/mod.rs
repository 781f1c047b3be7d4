//! Payment gateways: what the services need from one (save a card, charge it, refund a charge),
//! and the built-in `sandbox` that moves no money. A real gateway (Stripe) is another variant of
//! `Gateway`; services never see which one is active.

pub mod sandbox;

use crate::domain::money::Money;

/// Card details as the shopper typed them. Never stored, never logged.
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

/// A card the gateway keeps for us: its reference and what a person may see of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub reference: String,
    pub brand: String,
    pub last4: String,
}

/// Why the money is taken: gateways (and the sandbox's test cards) may treat renewals differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeKind {
    Checkout,
    Renewal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded { reference: String },
    Declined { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The card details are malformed (which field, for the shopper).
    #[error("invalid card details: {0}")]
    InvalidCard(&'static str),
    /// The card was refused when it was saved.
    #[error("card declined: {0}")]
    Declined(String),
    #[error("the payment gateway did not answer in time")]
    Timeout,
    #[error("the payment gateway failed: {0}")]
    Unavailable(String),
}

/// The active payment gateway.
#[derive(Debug, Clone)]
pub enum Gateway {
    Sandbox(sandbox::SandboxGateway),
}

impl Gateway {
    /// Name stored with each payment.
    pub fn name(&self) -> &'static str {
        match self {
            Gateway::Sandbox(_) => "sandbox",
        }
    }

    /// Whether no real money moves (pages then show a test-mode banner).
    pub fn is_test_mode(&self) -> bool {
        matches!(self, Gateway::Sandbox(_))
    }

    /// Checks and stores a card for later charges.
    pub async fn save_card(&self, card: &CardInput) -> Result<SavedCard, GatewayError> {
        match self {
            Gateway::Sandbox(g) => g.save_card(card),
        }
    }

    /// Charges a saved card. The same `idempotency_key` never charges twice.
    pub async fn charge(
        &self,
        card_reference: &str,
        amount: &Money,
        kind: ChargeKind,
        idempotency_key: &str,
    ) -> Result<ChargeOutcome, GatewayError> {
        match self {
            Gateway::Sandbox(g) => Ok(g.charge(card_reference, amount, kind, idempotency_key)),
        }
    }

    /// Gives a charge back in full (a checkout that could not be recorded).
    pub async fn refund(&self, charge_reference: &str) -> Result<(), GatewayError> {
        match self {
            Gateway::Sandbox(g) => g.refund(charge_reference),
        }
    }
}
