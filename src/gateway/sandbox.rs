//! The sandbox gateway: checks card details like a real one and answers by test card number, but
//! moves no money. Test cards: `4242424242424242` pays; `4000000000000002` is declined;
//! `4000000000000341` pays at checkout and is declined on renewal. Any other valid card number pays.
//! The sandbox has no 3-D Secure step and sends no webhooks.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{
    CardInput, ChargeKind, ChargeOutcome, ChargeRequest, GatewayError, PaymentState, PaymentStatus,
    SavedCard,
};
use crate::domain::money::Money;

pub const CARD_PAYS: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_DECLINES_RENEWAL: &str = "4000000000000341";

#[derive(Debug, Clone)]
pub struct SandboxGateway {
    /// The current month, as (year, month), for expiry checks; `None`: the real calendar.
    today: Option<(i32, u32)>,
    /// The charges this process made, as a real gateway's dashboard would list them.
    ledger: Arc<Mutex<Ledger>>,
    /// Checkout payments started and not confirmed yet, by reference.
    pending: Arc<Mutex<HashMap<String, PendingCharge>>>,
    /// How long each charge takes (a slow bank); zero by default.
    pub charge_delay: std::time::Duration,
}

#[derive(Debug, Clone)]
struct PendingCharge {
    card_ref: String,
    customer_ref: String,
    amount: Money,
    kind: ChargeKind,
    idempotency_key: String,
}

/// One sandbox charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub reference: String,
    pub idempotency_key: String,
    pub customer_ref: String,
    pub amount: Money,
    pub refunded: bool,
    pub refunded_amount: i64,
}

/// The last `LEDGER_SIZE` charges, by reference and in order. Older ones are forgotten, as after
/// a restart: the sandbox never took real money, and what reads a payment back (reconciliation,
/// refunds) concerns recent ones.
#[derive(Debug, Default)]
struct Ledger {
    order: VecDeque<String>,
    by_reference: HashMap<String, LedgerEntry>,
}

const LEDGER_SIZE: usize = 10_000;

impl Ledger {
    fn get_mut(&mut self, reference: &str) -> Option<&mut LedgerEntry> {
        self.by_reference.get_mut(reference)
    }

    /// Adds a charge unless its reference is known (the same key is the same charge).
    fn add(&mut self, entry: LedgerEntry) {
        if self.by_reference.contains_key(&entry.reference) {
            return;
        }
        if self.order.len() >= LEDGER_SIZE {
            if let Some(oldest) = self.order.pop_front() {
                self.by_reference.remove(&oldest);
            }
        }
        self.order.push_back(entry.reference.clone());
        self.by_reference.insert(entry.reference.clone(), entry);
    }
}

impl LedgerEntry {
    fn state(&self) -> PaymentState {
        PaymentState {
            reference: self.reference.clone(),
            status: PaymentStatus::Succeeded,
            amount: self.amount.clone(),
            customer_ref: Some(self.customer_ref.clone()),
            card_ref: None,
            metadata: HashMap::from([("attempt_key".to_string(), self.idempotency_key.clone())]),
            client_secret: None,
        }
    }
}

impl Default for SandboxGateway {
    fn default() -> Self {
        Self::new()
    }
}

impl SandboxGateway {
    pub fn new() -> Self {
        Self {
            today: None,
            ledger: Arc::default(),
            pending: Arc::default(),
            charge_delay: std::time::Duration::ZERO,
        }
    }

    pub fn with_charge_delay(mut self, delay: std::time::Duration) -> Self {
        self.charge_delay = delay;
        self
    }

    /// The charges made so far (in this process, the last 10 000), oldest first.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        let ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger
            .order
            .iter()
            .filter_map(|r| ledger.by_reference.get(r).cloned())
            .collect()
    }

    pub fn save_card(&self, card: &CardInput) -> Result<SavedCard, GatewayError> {
        let number: String = card
            .number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if !(12..=19).contains(&number.len())
            || !number.chars().all(|c| c.is_ascii_digit())
            || !luhn_valid(&number)
        {
            return Err(GatewayError::InvalidCard("card_number"));
        }
        self.check_expiry(&card.expiry)?;
        let cvc = card.cvc.trim();
        if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
            return Err(GatewayError::InvalidCard("card_cvc"));
        }
        if number == CARD_DECLINED {
            return Err(GatewayError::Declined("card_declined".into()));
        }
        let behaviour = if number == CARD_DECLINES_RENEWAL {
            "renewaldecline"
        } else {
            "ok"
        };
        // The reference says how the card behaves; the number itself is not kept.
        let nonce = short_hash(&format!(
            "{number}{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        Ok(SavedCard {
            reference: format!("pm_sandbox_{behaviour}_{nonce}"),
            brand: brand_of(&number).to_string(),
            last4: number[number.len() - 4..].to_string(),
        })
    }

    pub fn charge(&self, request: &ChargeRequest<'_>) -> ChargeOutcome {
        if request.kind == ChargeKind::Renewal
            && request.card_ref.starts_with("pm_sandbox_renewaldecline_")
        {
            return ChargeOutcome::Declined {
                reason: "card_declined".into(),
            };
        }
        let reference = format!("ch_sandbox_{}", short_hash(request.idempotency_key));
        // The same idempotency key is the same charge, never a second one.
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(LedgerEntry {
                reference: reference.clone(),
                idempotency_key: request.idempotency_key.to_string(),
                customer_ref: request.customer_ref.to_string(),
                amount: request.amount.clone(),
                refunded: false,
                refunded_amount: 0,
            });
        ChargeOutcome::Succeeded { reference }
    }

    /// Records a payment to confirm later (its reference follows from the key, as a charge's).
    pub fn start_charge(&self, request: &ChargeRequest<'_>) -> String {
        let reference = format!("ch_sandbox_{}", short_hash(request.idempotency_key));
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .entry(reference.clone())
            .or_insert_with(|| PendingCharge {
                card_ref: request.card_ref.to_string(),
                customer_ref: request.customer_ref.to_string(),
                amount: request.amount.clone(),
                kind: request.kind,
                idempotency_key: request.idempotency_key.to_string(),
            });
        reference
    }

    pub fn confirm_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        if let Some(done) = self
            .payment(reference)
            .ok()
            .filter(|p| p.status == PaymentStatus::Succeeded)
        {
            return Ok(ChargeOutcome::Succeeded {
                reference: done.reference,
            });
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(reference)
            .cloned();
        let Some(p) = pending else {
            return Err(GatewayError::Unavailable("no such sandbox payment".into()));
        };
        Ok(self.charge(&ChargeRequest {
            customer_ref: &p.customer_ref,
            card_ref: &p.card_ref,
            amount: &p.amount,
            kind: p.kind,
            idempotency_key: &p.idempotency_key,
            metadata: Vec::new(),
        }))
    }

    /// Gives up a started payment: it can no longer be confirmed.
    pub fn cancel(&self, reference: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(reference);
    }

    /// A payment of this process, read back. The ledger lives in this process: after a restart
    /// the sandbox knows nothing, which is safe because it never took real money.
    pub fn payment(&self, reference: &str) -> Result<PaymentState, GatewayError> {
        if let Some(charge) = self
            .ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(reference)
        {
            return Ok(charge.state());
        }
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get(reference) {
            // Started, not confirmed: the sandbox's "requires_confirmation".
            Some(p) => Ok(PaymentState {
                status: PaymentStatus::RequiresConfirmation,
                ..LedgerEntry {
                    reference: reference.to_string(),
                    idempotency_key: p.idempotency_key.clone(),
                    customer_ref: p.customer_ref.clone(),
                    amount: p.amount.clone(),
                    refunded: false,
                    refunded_amount: 0,
                }
                .state()
            }),
            // Started by a process that has stopped since: the sandbox took no money for it.
            None => Ok(PaymentState {
                reference: reference.to_string(),
                status: PaymentStatus::Failed,
                amount: Money {
                    amount: 0,
                    currency: "USD".into(),
                    divisor: 100,
                },
                customer_ref: None,
                card_ref: None,
                metadata: HashMap::new(),
                client_secret: None,
            }),
        }
    }

    /// Gives back `amount` of a sandbox charge. A charge made by another process (the CLI refunds
    /// what `serve` charged) is not in this ledger; any sandbox reference is accepted, since no
    /// real money moved.
    pub fn refund(&self, charge_reference: &str, amount: &Money) -> Result<(), GatewayError> {
        if !charge_reference.starts_with("ch_sandbox_") {
            return Err(GatewayError::Unavailable(
                "not a sandbox charge".to_string(),
            ));
        }
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(charge) = ledger.get_mut(charge_reference) {
            if charge.refunded_amount + amount.amount > charge.amount.amount {
                return Err(GatewayError::Unavailable(
                    "refund larger than the charge".into(),
                ));
            }
            charge.refunded_amount += amount.amount;
            charge.refunded = true;
        }
        Ok(())
    }

    fn check_expiry(&self, expiry: &str) -> Result<(), GatewayError> {
        let invalid = GatewayError::InvalidCard("card_expiry");
        let compact: String = expiry.chars().filter(|c| !c.is_whitespace()).collect();
        let (mm, yy) = compact.split_once('/').ok_or(invalid.clone())?;
        let month: u32 = mm.parse().map_err(|_| invalid.clone())?;
        let year: i32 = match yy.len() {
            2 => 2000 + yy.parse::<i32>().map_err(|_| invalid.clone())?,
            4 => yy.parse().map_err(|_| invalid.clone())?,
            _ => return Err(invalid),
        };
        if !(1..=12).contains(&month) {
            return Err(invalid);
        }
        let (this_year, this_month) = self.today.unwrap_or_else(|| {
            use chrono::Datelike;
            let now = chrono::Utc::now();
            (now.year(), now.month())
        });
        if (year, month) < (this_year, this_month) {
            return Err(invalid);
        }
        Ok(())
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32;
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn brand_of(number: &str) -> &'static str {
    match number.as_bytes()[0] {
        b'4' => "Visa",
        b'5' => "Mastercard",
        b'3' => "American Express",
        _ => "Card",
    }
}

fn short_hash(input: &str) -> String {
    hex::encode(&Sha256::digest(input.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, expiry: &str, cvc: &str) -> CardInput {
        CardInput {
            number: number.into(),
            expiry: expiry.into(),
            cvc: cvc.into(),
        }
    }

    fn gateway() -> SandboxGateway {
        SandboxGateway {
            today: Some((2026, 11)),
            ..SandboxGateway::new()
        }
    }

    #[test]
    fn test_cards_behave_as_documented() {
        let g = gateway();
        let ok = g
            .save_card(&card("4242 4242 4242 4242", "12/30", "123"))
            .unwrap();
        assert_eq!((ok.brand.as_str(), ok.last4.as_str()), ("Visa", "4242"));
        assert!(!ok.reference.contains("4242424242424242"));
        assert_eq!(
            g.save_card(&card(CARD_DECLINED, "12/30", "123")),
            Err(GatewayError::Declined("card_declined".into()))
        );
        let late = g
            .save_card(&card(CARD_DECLINES_RENEWAL, "12/30", "123"))
            .unwrap();
        let usd = Money {
            amount: 999,
            currency: "USD".into(),
            divisor: 100,
        };
        assert!(matches!(
            g.charge(&request(&late.reference, &usd, ChargeKind::Checkout, "k")),
            ChargeOutcome::Succeeded { .. }
        ));
        assert!(matches!(
            g.charge(&request(&late.reference, &usd, ChargeKind::Renewal, "k2")),
            ChargeOutcome::Declined { .. }
        ));
    }

    #[test]
    fn malformed_cards_name_the_wrong_field() {
        let g = gateway();
        assert_eq!(
            g.save_card(&card("4242424242424241", "12/30", "123")),
            Err(GatewayError::InvalidCard("card_number"))
        );
        assert_eq!(
            g.save_card(&card("4242424242424242", "10/26", "123")),
            Err(GatewayError::InvalidCard("card_expiry"))
        );
        assert_eq!(
            g.save_card(&card("4242424242424242", "13/30", "123")),
            Err(GatewayError::InvalidCard("card_expiry"))
        );
        assert!(g
            .save_card(&card("4242424242424242", "11/26", "123"))
            .is_ok());
        assert_eq!(
            g.save_card(&card("4242424242424242", "12/2030", "12")),
            Err(GatewayError::InvalidCard("card_cvc"))
        );
    }

    #[test]
    fn charges_are_idempotent_by_key() {
        let g = gateway();
        let usd = Money {
            amount: 1,
            currency: "USD".into(),
            divisor: 100,
        };
        let first = g.charge(&request(
            "pm_sandbox_ok_1",
            &usd,
            ChargeKind::Checkout,
            "checkout-1-1",
        ));
        assert_eq!(
            first,
            g.charge(&request(
                "pm_sandbox_ok_1",
                &usd,
                ChargeKind::Checkout,
                "checkout-1-1"
            ))
        );
        let second = g.charge(&request(
            "pm_sandbox_ok_1",
            &usd,
            ChargeKind::Checkout,
            "checkout-1-2",
        ));
        assert_ne!(first, second, "a new attempt is a new charge");
        assert_eq!(g.ledger().len(), 2);
        let ChargeOutcome::Succeeded { reference } = first else {
            panic!("paid")
        };
        assert!(g
            .payment(&reference)
            .unwrap()
            .is_ours("cus_1", &usd, "checkout-1-1"));
    }

    #[test]
    fn a_started_charge_takes_money_only_when_confirmed() {
        let g = gateway();
        let usd = Money {
            amount: 500,
            currency: "USD".into(),
            divisor: 100,
        };
        let reference = g.start_charge(&request(
            "pm_sandbox_ok_1",
            &usd,
            ChargeKind::Checkout,
            "checkout-7-1",
        ));
        assert!(g.ledger().is_empty());
        assert_eq!(
            g.payment(&reference).unwrap().status,
            PaymentStatus::RequiresConfirmation
        );
        assert_eq!(
            g.confirm_charge(&reference).unwrap(),
            ChargeOutcome::Succeeded {
                reference: reference.clone()
            }
        );
        g.confirm_charge(&reference).unwrap();
        assert_eq!(g.ledger().len(), 1, "confirming twice charges once");
        assert_eq!(
            g.payment(&reference).unwrap().status,
            PaymentStatus::Succeeded
        );
    }

    fn request<'a>(
        card: &'a str,
        amount: &'a Money,
        kind: ChargeKind,
        key: &'a str,
    ) -> ChargeRequest<'a> {
        ChargeRequest {
            customer_ref: "cus_1",
            card_ref: card,
            amount,
            kind,
            idempotency_key: key,
            metadata: Vec::new(),
        }
    }
}
