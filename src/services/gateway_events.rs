//! Events from the payment gateway (Stripe's webhooks). Each is stored under the gateway's event id
//! before anything is done with it, so a duplicate or replayed event finds its id taken and changes
//! nothing; then it is processed from the stored row, at once and again by the worker if that
//! failed. What an event means is decided by the same code the shopper's own requests use.

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeDelta};

use crate::domain::money::Money;
use crate::error::ApiError;
use crate::gateway::{GatewayNotice, PaymentState};
use crate::models::checkout_sessions;
use crate::models::gateway_events::{self, NewGatewayEvent};
use crate::models::payments;
use crate::models::unrecorded_charges;
use crate::state::AppState;

use crate::clock::naive;
use crate::db::run_db;
use crate::services::{checkout, portal, renewal};

/// A confirmed card setup is acted on only after this: the browser normally posts it first.
const SETUP_GRACE: TimeDelta = TimeDelta::seconds(60);
/// A failed processing is tried again after this.
const RETRY_AFTER: TimeDelta = TimeDelta::minutes(1);

/// A webhook POSTed to `/webhooks/{route}`: verified, stored, answered. Processing follows from
/// the stored row (`process`), so the sender gets its 2xx at once. Returns the stored row's id,
/// or `None` for an event seen before.
pub async fn receive(
    state: &AppState,
    route: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Option<i64>, ApiError> {
    use crate::gateway::stripe::WebhookError;
    // An unsigned request is refused before anything else is said about this endpoint.
    if signature.is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "invalid_signature",
            WebhookError::MissingSignature.to_string(),
        ));
    }
    let event = state
        .gateway
        .verify_webhook(route, signature, body)
        .map_err(|e| match e {
            WebhookError::NotConfigured => {
                ApiError::not_found("webhook_not_configured", e.to_string())
            }
            WebhookError::Malformed => ApiError::bad_request("invalid_event", e.to_string()),
            WebhookError::Stale => ApiError::bad_request("stale_signature", e.to_string()),
            WebhookError::MissingSignature | WebhookError::BadSignature => {
                ApiError::bad_request("invalid_signature", e.to_string())
            }
        })?;
    state
        .metrics
        .counters
        .gateway_events
        .inc([&event.event_type]);
    store(
        state,
        Received {
            gateway: state.gateway.name(),
            event_id: event.id,
            event_type: event.event_type,
            object_id: event.object_id,
            payload: without_client_secrets(body),
        },
    )
    .await
}

/// The event as stored: Stripe's objects carry `client_secret`s (they let a browser confirm a
/// payment); nothing here needs them after the event, so they are not kept.
fn without_client_secrets(body: &[u8]) -> String {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("client_secret");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut event) => {
            strip(&mut event);
            event.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// One event as received, before it is read.
pub struct Received {
    pub gateway: &'static str,
    pub event_id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub payload: String,
}

/// Stores an event. Returns its row id, or `None` when the event id was seen before.
pub async fn store(state: &AppState, event: Received) -> Result<Option<i64>, ApiError> {
    let new = NewGatewayEvent {
        gateway: event.gateway.to_string(),
        event_id: event.event_id,
        event_type: event.event_type,
        object_id: event.object_id,
        payload: event.payload,
        received_at: naive(state.clock.now()),
    };
    run_db(&state.pool, move |conn| {
        Ok(gateway_events::insert_new(conn, &new)?)
    })
    .await
}

/// Processes stored events that are due (new, or failed and due again). Returns how many were
/// processed.
pub async fn process_due(state: &AppState, limit: i64) -> Result<usize, ApiError> {
    let now = naive(state.clock.now());
    let due = run_db(&state.pool, move |conn| {
        Ok(gateway_events::list_due(conn, now, limit)?)
    })
    .await?;
    let mut processed = 0;
    for id in due {
        if process(state, id).await? {
            processed += 1;
        }
    }
    Ok(processed)
}

/// Processes one stored event if no one else is. Returns whether it is done.
pub async fn process(state: &AppState, id: i64) -> Result<bool, ApiError> {
    let now = naive(state.clock.now());
    let owner = state.instance_id.clone();
    let Some(event) = run_db(&state.pool, move |conn| {
        crate::db::write_transaction(conn, |conn| {
            Ok(gateway_events::claim(
                conn,
                id,
                &owner,
                now,
                now + RETRY_AFTER,
            )?)
        })
    })
    .await?
    else {
        return Ok(false);
    };
    let notice = state
        .gateway
        .notice(&event.gateway, &event.event_type, &event.payload);
    if let GatewayNotice::SetupSucceeded { .. } = &notice {
        if event.received_at + SETUP_GRACE > now {
            let retry_at = event.received_at + SETUP_GRACE;
            run_db(&state.pool, move |conn| {
                Ok(gateway_events::mark_failed(
                    conn,
                    id,
                    "waiting for the browser to finish first",
                    retry_at,
                )?)
            })
            .await?;
            return Ok(false);
        }
    }
    let outcome = act(state, notice, event.received_at).await;
    let now = naive(state.clock.now());
    match outcome {
        Ok(()) => {
            run_db(&state.pool, move |conn| {
                Ok(gateway_events::mark_processed(conn, id, now)?)
            })
            .await?;
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(event_id = %event.event_id, event_type = %event.event_type, error = %e, "processing a gateway event failed; will try again");
            let message = e.to_string();
            run_db(&state.pool, move |conn| {
                Ok(gateway_events::mark_failed(
                    conn,
                    id,
                    &message,
                    now + RETRY_AFTER,
                )?)
            })
            .await?;
            Ok(false)
        }
    }
}

async fn act(
    state: &AppState,
    notice: GatewayNotice,
    received_at: NaiveDateTime,
) -> Result<(), ApiError> {
    match notice {
        GatewayNotice::PaymentSucceeded(payment) => {
            if let Some(session_id) = checkout_session_of(&payment) {
                checkout::settle(state, session_id, &payment).await?;
            } else if let Some(subscription_id) = subscription_of(&payment) {
                renewal_payment_taken(state, subscription_id, &payment).await?;
            }
            Ok(())
        }
        GatewayNotice::PaymentFailed(payment) => payment_failed(state, &payment).await,
        GatewayNotice::SetupSucceeded {
            reference,
            metadata,
        } => card_saved(state, &reference, &metadata, received_at).await,
        GatewayNotice::Refunded {
            payment_reference,
            refunded,
        } => refunded_payment(state, payment_reference, refunded).await,
        GatewayNotice::Disputed {
            payment_reference,
            reason,
        } => disputed(state, payment_reference, reason).await,
        GatewayNotice::Ignored => Ok(()),
    }
}

/// A payment that failed: a checkout attempt waiting on this very payment is given back; a
/// renewal charge that was processing is read by the next round.
async fn payment_failed(state: &AppState, payment: &PaymentState) -> Result<(), ApiError> {
    let Some(session_id) = checkout_session_of(payment) else {
        if let Some(subscription_id) = subscription_of(payment) {
            renewal::payment_failed(state, subscription_id, &payment.reference).await?;
        }
        return Ok(());
    };
    let reference = payment.reference.clone();
    let session = run_db(&state.pool, move |conn| {
        Ok(checkout_sessions::find(conn, session_id)?)
    })
    .await?;
    if let Some(s) = session.filter(|s| {
        s.status == checkout_sessions::PROCESSING
            && s.gateway_payment_ref.as_deref() == Some(reference.as_str())
    }) {
        checkout::abandon(state, &s).await?;
    }
    Ok(())
}

/// A card the shopper confirmed (3-D Secure) for a checkout attempt or in the portal.
async fn card_saved(
    state: &AppState,
    reference: &str,
    metadata: &HashMap<String, String>,
    received_at: NaiveDateTime,
) -> Result<(), ApiError> {
    match metadata.get("purpose").map(String::as_str) {
        Some("checkout") => {
            let number = |key: &str| metadata.get(key).and_then(|v| v.parse().ok());
            if let (Some(id), Some(attempt)) =
                (number("checkout_session_id"), number("checkout_attempt"))
            {
                checkout::settle_setup(state, id, attempt as i32, reference).await?;
            }
        }
        Some("portal") => {
            if let Some(user_id) = metadata.get("user_id") {
                portal::save_confirmed_card(state, user_id, reference, received_at).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A refund the gateway made: the payment's refunded total, or an unrecorded charge given back.
async fn refunded_payment(
    state: &AppState,
    payment_reference: String,
    refunded: Money,
) -> Result<(), ApiError> {
    let now = naive(state.clock.now());
    run_db(&state.pool, move |conn| {
        let Some(payment) = payments::find_by_reference(conn, &payment_reference)? else {
            // A charge no subscription records: its refund has gone through.
            unrecorded_charges::mark_refunded(conn, &payment_reference, now)?;
            return Ok(());
        };
        match refunded.rescaled(payment.divisor) {
            Some(total) if total.currency.eq_ignore_ascii_case(&payment.currency) => {
                super::payments::record_refund(conn, payment.id, total.amount, now)?;
            }
            _ => tracing::warn!(
                payment_id = payment.id,
                "a refund event in another currency or unit was not recorded"
            ),
        }
        Ok(())
    })
    .await
}

/// A card holder's dispute (chargeback): recorded on the payment, counted and logged for the
/// operator, who answers it in the gateway's dashboard.
async fn disputed(
    state: &AppState,
    payment_reference: String,
    reason: String,
) -> Result<(), ApiError> {
    let now = naive(state.clock.now());
    let recorded = run_db(&state.pool, move |conn| {
        let Some(payment) = payments::find_by_reference(conn, &payment_reference)? else {
            return Ok(None);
        };
        payments::record_dispute(conn, payment.id, &reason, now)?;
        Ok(Some((payment.id, reason)))
    })
    .await?;
    if let Some((payment_id, reason)) = recorded {
        state.metrics.counters.payment_disputes.inc([&reason]);
        tracing::warn!(
            payment_id,
            reason = %reason,
            "a card holder disputed a payment: respond in the gateway's dashboard before its deadline"
        );
    }
    Ok(())
}

/// A renewal payment the gateway took: recorded already, to be recorded by the next round, or
/// refunded, as `renewal::settle_taken_charge` decides; an event waiting for the renewal is
/// processed again until it is one of the first or the last.
async fn renewal_payment_taken(
    state: &AppState,
    subscription_id: i64,
    payment: &PaymentState,
) -> Result<(), ApiError> {
    match renewal::settle_taken_charge(state, subscription_id, payment).await? {
        renewal::TakenCharge::Recorded => Ok(()),
        renewal::TakenCharge::Pending => Err(ApiError::conflict(
            "renewal_pending",
            "waiting for the renewal to record this payment",
        )),
        renewal::TakenCharge::Refund => {
            tracing::warn!(subscription_id, payment = %payment.reference, "a renewal payment no renewal can record; refunding it");
            checkout::refund_unrecorded(
                state,
                &payment.reference,
                &payment.amount,
                "its subscription no longer renews the period it paid",
            )
            .await
        }
    }
}

fn checkout_session_of(payment: &PaymentState) -> Option<i64> {
    payment.metadata.get("checkout_session_id")?.parse().ok()
}

fn subscription_of(payment: &PaymentState) -> Option<i64> {
    payment.metadata.get("subscription_id")?.parse().ok()
}
