//! What goes into Stripe's objects and what is read back out of them: the parameters of a
//! PaymentIntent, an intent read into an outcome or a payment's state, our metadata, and the small
//! readers of Stripe's JSON.

use super::*;

/// The parameters of a PaymentIntent for `request` (only those localstripe knows as well).
pub(super) fn intent_params(
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
pub(super) fn charge_answer(answer: Result<Value, Failure>) -> Result<ChargeOutcome, GatewayError> {
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
pub(super) fn outcome_of(intent: &Value) -> Result<ChargeOutcome, GatewayError> {
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

pub(super) fn state_of(intent: &Value) -> Option<PaymentState> {
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

pub(super) fn metadata_params(metadata: &[(&'static str, String)]) -> Vec<(String, String)> {
    metadata
        .iter()
        .map(|(k, v)| (format!("metadata[{k}]"), v.clone()))
        .collect()
}

pub(super) fn metadata_of(value: &Value) -> HashMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

pub(super) fn metadata_matches(value: &Value, expected: &[(&'static str, String)]) -> bool {
    let metadata = metadata_of(value);
    expected
        .iter()
        .all(|(k, v)| metadata.get(*k).map(String::as_str) == Some(v.as_str()))
}

pub(super) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// An expandable field: the id itself, or the object with its id.
pub(super) fn id_of(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value.get("id")?.as_str())
}

pub(super) fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

pub(super) fn display_brand(brand: &str) -> String {
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
