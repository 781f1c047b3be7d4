//! The app owner's webhook endpoints: added, listed, disabled, enabled, deleted and their secrets
//! rolled, by the CLI and `/v1/webhook-endpoints` alike (one code path). A secret is shown once;
//! the database keeps only a salt it is derived from with `WEBHOOK_SIGNING_KEY`.
//! `delivery` sends the events.

pub mod delivery;

use chrono::{NaiveDateTime, TimeDelta};
use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::Settings;
use crate::db::{write_transaction, AnyConnection};
use crate::domain::webhook;
use crate::error::ApiError;
use crate::models::events;
use crate::models::webhooks::{self, Endpoint, NewEndpoint};

use super::events::TYPES;

/// How long a rolled secret keeps signing beside the new one.
pub const PREVIOUS_SECRET_LIFETIME: TimeDelta = TimeDelta::hours(24);
/// After this long without a success, a delivery is given up and its endpoint disabled.
pub const RETRY_WINDOW: TimeDelta = TimeDelta::days(3);
pub const FAILING_REASON: &str = "failing for 3 days";
pub const OPERATOR_REASON: &str = "disabled by an operator";

/// A new endpoint as the operator or the app owner's backend describes it.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointInput {
    pub url: String,
    /// Event types to send; absent: every type.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

/// An endpoint as the CLI's `--json` and `/v1` show it (never its secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: i64,
    pub url: String,
    pub description: Option<String>,
    /// `null`: every event type.
    pub events: Option<Vec<String>>,
    /// `enabled` or `disabled`.
    pub status: &'static str,
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// Deliveries have been failing since then (no success after it).
    pub failing_since: Option<String>,
    pub last_success_at: Option<String>,
    /// Until then the secret before the last roll also signs.
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
}

fn time(t: NaiveDateTime) -> String {
    rfc3339(t.and_utc())
}

impl EndpointView {
    pub fn of(e: &Endpoint, now: NaiveDateTime) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e
                .event_types
                .as_ref()
                .map(|t| t.split(',').map(str::to_string).collect()),
            status: if e.disabled_at.is_some() {
                "disabled"
            } else {
                "enabled"
            },
            disabled_at: e.disabled_at.map(time),
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(time),
            last_success_at: e.last_success_at.map(time),
            previous_secret_expires_at: e.previous_secret_expires_at.filter(|t| *t > now).map(time),
            created_at: time(e.created_at),
        }
    }
}

/// An endpoint with its secret, the one time it is shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: configure it in the receiver; it is not shown again.
    pub secret: String,
    /// What the secret is derived from: kept instead of the secret where an answer is kept (an
    /// `Idempotency-Key` replay derives it again), never shown.
    #[serde(rename = "_secretSalt")]
    pub secret_salt: String,
}

/// The secret derived from `salt` with this service's signing key.
pub fn secret_from_salt(settings: &Settings, salt: &str) -> Result<String, ApiError> {
    Ok(webhook::display_secret(&webhook::secret_bytes(
        signing_key(settings)?,
        salt,
    )))
}

fn signing_key(settings: &Settings) -> Result<&str, ApiError> {
    settings
        .webhook_signing_key
        .as_ref()
        .map(|k| k.expose())
        .ok_or_else(|| {
            ApiError::not_configured(
                "webhooks need WEBHOOK_SIGNING_KEY (at least 32 random characters, e.g. openssl rand -hex 32, the same on every instance)",
            )
        })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_webhook_endpoint", message)
}

fn new_salt() -> Result<String, ApiError> {
    webhook::new_salt().map_err(ApiError::internal)
}

pub fn not_found() -> ApiError {
    ApiError::not_found("webhook_endpoint_not_found", "no such webhook endpoint")
}

/// Checks and stores a new endpoint; answers its secret once.
pub fn add(
    conn: &mut AnyConnection,
    settings: &Settings,
    input: EndpointInput,
    now: NaiveDateTime,
) -> Result<EndpointWithSecret, ApiError> {
    // Before anything else: without the key there is no secret to make.
    signing_key(settings)?;
    let url =
        webhook::check_url(input.url.trim(), settings.allow_private_webhooks()).map_err(invalid)?;
    let event_types = match input.events {
        None => None,
        Some(list) => {
            let mut list: Vec<String> = list.into_iter().map(|t| t.trim().to_string()).collect();
            if list.is_empty() {
                return Err(invalid(
                    "events must name at least one event type (leave it out for every type)",
                ));
            }
            if let Some(bad) = list.iter().find(|t| !TYPES.contains(&t.as_str())) {
                return Err(invalid(format!(
                    "unknown event type {bad:?}: use {}",
                    TYPES.join(", ")
                )));
            }
            list.sort();
            list.dedup();
            Some(list.join(","))
        }
    };
    let description = input.description.map(|d| d.trim().to_string());
    if description
        .as_deref()
        .is_some_and(|d| d.chars().count() > 500 || crate::domain::text::has_control(d))
    {
        return Err(invalid(
            "description must be at most 500 characters without control characters",
        ));
    }
    let salt = new_salt()?;
    let secret = secret_from_salt(settings, &salt)?;
    let endpoint = webhooks::insert_endpoint(
        conn,
        &NewEndpoint {
            url: url.to_string(),
            description: description.filter(|d| !d.is_empty()),
            event_types,
            secret_salt: salt,
            created_at: now,
        },
    )?;
    tracing::info!(endpoint_id = endpoint.id, "webhook endpoint added");
    Ok(EndpointWithSecret {
        endpoint: EndpointView::of(&endpoint, now),
        secret,
        secret_salt: endpoint.secret_salt.clone(),
    })
}

pub fn find(conn: &mut AnyConnection, id: i64) -> Result<Endpoint, ApiError> {
    webhooks::find_endpoint(conn, id)?.ok_or_else(not_found)
}

pub fn list(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<Vec<EndpointView>, ApiError> {
    Ok(webhooks::list_endpoints(conn)?
        .iter()
        .map(|e| EndpointView::of(e, now))
        .collect())
}

/// Stops deliveries to an endpoint; what is queued waits until it is enabled again.
pub fn disable(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> Result<EndpointView, ApiError> {
    find(conn, id)?;
    webhooks::disable_endpoint(conn, id, OPERATOR_REASON, now)?;
    Ok(EndpointView::of(&find(conn, id)?, now))
}

/// Resumes deliveries: what was queued goes now, in order; given-up deliveries need `redeliver`.
pub fn enable(
    conn: &mut AnyConnection,
    id: i64,
    now: NaiveDateTime,
) -> Result<EndpointView, ApiError> {
    find(conn, id)?;
    webhooks::enable_endpoint(conn, id)?;
    Ok(EndpointView::of(&find(conn, id)?, now))
}

/// Deletes an endpoint: nothing more is sent to it and it is no longer listed (its history stays
/// in the database).
pub fn delete(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> Result<(), ApiError> {
    write_transaction(conn, |conn| {
        if webhooks::delete_endpoint(conn, id, now)? == 0 {
            return Err(not_found());
        }
        Ok(())
    })
}

/// A new secret, shown once; the old one keeps signing for 24 hours so receivers can switch.
pub fn roll_secret(
    conn: &mut AnyConnection,
    settings: &Settings,
    id: i64,
    now: NaiveDateTime,
) -> Result<EndpointWithSecret, ApiError> {
    signing_key(settings)?;
    let current = find(conn, id)?;
    let salt = new_salt()?;
    if webhooks::roll_secret(
        conn,
        id,
        &current.secret_salt,
        &salt,
        now + PREVIOUS_SECRET_LIFETIME,
    )? == 0
    {
        return Err(ApiError::conflict(
            "secret_rolled_meanwhile",
            "the secret was rolled by another request meanwhile; roll again if needed",
        ));
    }
    tracing::info!(endpoint_id = id, "webhook secret rolled");
    Ok(EndpointWithSecret {
        endpoint: EndpointView::of(&find(conn, id)?, now),
        secret: secret_from_salt(settings, &salt)?,
        secret_salt: salt,
    })
}

/// Makes a delivery due again now, unless it is being sent right now (that attempt would
/// decide over ours).
fn requeue(
    conn: &mut AnyConnection,
    d: &webhooks::Delivery,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    if d.locked_until.is_some_and(|until| until > now) {
        return Err(ApiError::conflict(
            "delivery_in_progress",
            "this event is being sent to that endpoint right now; look at its attempts first",
        ));
    }
    webhooks::make_due(conn, d.id, now)?;
    Ok(())
}

/// One delivery attempt as the CLI and `/v1` show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub id: i64,
    pub event_id: String,
    pub attempted_at: String,
    /// The HTTP status answered; `null`: none (timeout, refused connection).
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// An endpoint's attempts, newest first.
pub fn attempts(
    conn: &mut AnyConnection,
    id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AttemptView>, ApiError> {
    find(conn, id)?;
    Ok(webhooks::list_attempts(conn, id, before, limit)?
        .into_iter()
        .map(|(a, event_id)| AttemptView {
            id: a.id,
            event_id,
            attempted_at: time(a.attempted_at),
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            error: a.error,
            response_excerpt: a.response_excerpt,
        })
        .collect())
}

/// Sends an event again, now: to one endpoint (which need not have had it), or to every endpoint
/// that had it. Returns how many deliveries were queued.
pub fn redeliver(
    conn: &mut AnyConnection,
    event_public_id: &str,
    endpoint_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<usize, ApiError> {
    write_transaction(conn, |conn| {
        let event = events::find_by_public_id(conn, event_public_id)?
            .ok_or_else(|| ApiError::not_found("event_not_found", "no such event"))?;
        let deliveries = webhooks::list_deliveries_of_event(conn, event.id)?;
        let Some(endpoint_id) = endpoint_id else {
            if deliveries.is_empty() {
                return Err(ApiError::conflict(
                    "no_deliveries",
                    "this event was sent to no endpoint; name one to send it to",
                ));
            }
            let mut queued = 0;
            for d in &deliveries {
                let enabled = webhooks::find_endpoint(conn, d.endpoint_id)?
                    .is_some_and(|e| e.disabled_at.is_none());
                if enabled {
                    requeue(conn, d, now)?;
                    queued += 1;
                }
            }
            return Ok(queued);
        };
        let endpoint = find(conn, endpoint_id)?;
        if endpoint.disabled_at.is_some() {
            return Err(ApiError::conflict(
                "webhook_endpoint_disabled",
                "this endpoint is disabled; enable it first",
            ));
        }
        match webhooks::find_delivery_of(conn, event.id, endpoint_id)? {
            Some(d) => requeue(conn, &d, now)?,
            None => {
                super::events::queue(conn, endpoint_id, &event, now)?;
            }
        }
        Ok(1)
    })
}
