//! Stripe's webhooks: the signature scheme (`Stripe-Signature`, HMAC-SHA256 over the timestamp
//! and body, within a tolerance) and events read into the notices the services act on.

use super::*;

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
