//! Payments for support staff: listing them, and refunding one through the active gateway. A
//! refund is recorded only after the gateway accepted it, and never for more than is left.

use crate::domain::money::Money;
use crate::error::ApiError;
use crate::models::payments::{self, Payment};
use crate::state::AppState;

use crate::clock::naive;
use crate::db::run_db;

/// Gives back `amount` (in the payment's own units; all that is left when `None`) of a payment.
/// Returns the payment as recorded afterwards.
/// `request_key` names the request when its sender gave one (`/v1`'s `Idempotency-Key`, with its
/// API key): the gateway then takes a repeat of the request as the same refund, whatever was
/// refunded meanwhile.
pub async fn refund(
    state: &AppState,
    payment_id: i64,
    amount: Option<i64>,
    request_key: Option<String>,
) -> Result<Payment, ApiError> {
    let payment = run_db(&state.pool, move |conn| {
        Ok(payments::find(conn, payment_id)?)
    })
    .await?
    .ok_or_else(|| ApiError::not_found("payment_not_found", "no such payment"))?;
    let reference = match (&payment.gateway_reference, payment.status.as_str()) {
        (Some(reference), payments::SUCCEEDED) => reference.clone(),
        _ => {
            return Err(ApiError::conflict(
                "not_refundable",
                "only a succeeded charge can be refunded",
            ))
        }
    };
    let left = payment.amount - payment.refunded_amount;
    let amount = amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(ApiError::bad_request(
            "invalid_amount",
            format!("the amount must be from 1 to {left} (what is left of the payment)"),
        ));
    }
    let money = Money {
        amount,
        currency: payment.currency.clone(),
        divisor: payment.divisor,
    };
    // The key names the payment and what was refunded before: repeating this refund is a no-op
    // at the gateway, and a later, second partial refund is a new one.
    let key = match request_key {
        Some(request) => {
            let named = &crate::domain::sha256_hex(request)[..32];
            format!("refund-{}-request-{named}", payment.id)
        }
        None => format!(
            "refund-{}-{}-{}",
            payment.id, payment.refunded_amount, amount
        ),
    };
    state
        .gateway
        .refund(&reference, &money, &key)
        .await
        .map_err(ApiError::from)?;
    let (total, now) = (payment.refunded_amount + amount, naive(state.clock.now()));
    run_db(&state.pool, move |conn| {
        record_refund(conn, payment_id, total, now)?;
        payments::find(conn, payment_id)?
            .ok_or_else(|| ApiError::internal("refunded payment vanished"))
    })
    .await
}

/// Records that `total` of a payment has been refunded, with its `payment.refunded` event, if
/// that is more than was known (the gateway's event about our own refund changes nothing).
pub fn record_refund(
    conn: &mut crate::db::AnyConnection,
    payment_id: i64,
    total: i64,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<bool> {
    crate::db::write_transaction(conn, |conn| {
        let changed = payments::record_refund(conn, payment_id, total, now)?;
        if changed {
            super::events::payment(conn, super::events::PAYMENT_REFUNDED, payment_id, now)?;
        }
        Ok(changed)
    })
}
