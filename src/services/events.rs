//! Lifecycle events: written by the code that makes a change, inside its transaction, so an
//! event exists exactly when its change does. Each event is also queued, in the same
//! transaction, for every enabled webhook endpoint that wants its type.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde_json::{json, Value};

use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::models::events::{self, Event, Listing, NewEvent};
use crate::models::plans::{self, Plan};
use crate::models::webhooks::{self, NewDelivery};
use crate::models::{customers, payments, subscriptions};
use crate::state::AppState;

use crate::db::run_db;
use crate::services::check_user_id;
use crate::views::{page_size, paged, EventView, Page, PaymentView, SubscriptionView};

pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const SUBSCRIPTION_RENEWED: &str = "subscription.renewed";
pub const SUBSCRIPTION_PAST_DUE: &str = "subscription.past_due";
pub const SUBSCRIPTION_CANCELED: &str = "subscription.canceled";
pub const SUBSCRIPTION_RESUMED: &str = "subscription.resumed";
pub const SUBSCRIPTION_PLAN_CHANGED: &str = "subscription.plan_changed";
pub const SUBSCRIPTION_DEACTIVATED: &str = "subscription.deactivated";
/// What the subscription gives changed without a change of its own: its plan's features.
pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
pub const PAYMENT_FAILED: &str = "payment.failed";
pub const PAYMENT_REFUNDED: &str = "payment.refunded";
/// A launch token was minted for a user (the user and audience only, never the token).
pub const LAUNCH_TOKEN_CREATED: &str = "launch_token.created";

pub const TYPES: [&str; 12] = [
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_RENEWED,
    SUBSCRIPTION_PAST_DUE,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_RESUMED,
    SUBSCRIPTION_PLAN_CHANGED,
    SUBSCRIPTION_DEACTIVATED,
    SUBSCRIPTION_UPDATED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    LAUNCH_TOKEN_CREATED,
];

fn db_error(e: impl std::error::Error + Send + Sync + 'static) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(Box::new(e))
}

/// Records `event_type` for a subscription as it now is. `extra` fields join the data (a plan
/// change names the plan before). Call inside the transaction that made the change.
pub fn subscription(
    conn: &mut AnyConnection,
    event_type: &'static str,
    subscription_id: i64,
    now: NaiveDateTime,
    extra: Option<(&str, Value)>,
) -> QueryResult<Event> {
    let sub = subscriptions::find(conn, subscription_id)?.ok_or(diesel::NotFound)?;
    let plan = plans::find(conn, sub.plan_id)?;
    let new = of_subscription(event_type, &sub, plan.as_ref(), now, extra)?;
    record(conn, new, now)
}

/// The event `event_type` of `sub`, which is the row as the change left it (not yet recorded),
/// on `plan` (`sub.plan_id`'s).
pub fn of_subscription(
    event_type: &'static str,
    sub: &subscriptions::Subscription,
    plan: Option<&Plan>,
    now: NaiveDateTime,
    extra: Option<(&str, Value)>,
) -> QueryResult<NewEvent> {
    let mut data = json!({ "subscription": SubscriptionView::of(sub, plan, now) });
    if let Some((key, value)) = extra {
        data[key] = value;
    }
    new_event(event_type, &sub.user_id, Some(sub.id), None, data, now)
}

/// Records `launch_token.created`: the user and the audience, never the token.
pub fn launch_token(
    conn: &mut AnyConnection,
    user_id: &str,
    audience: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Event> {
    let data = json!({ "launchToken": { "userId": user_id, "audience": audience } });
    record(
        conn,
        new_event(LAUNCH_TOKEN_CREATED, user_id, None, None, data, now)?,
        now,
    )
}

/// Records `event_type` for a payment as it now is. Call inside the transaction that made it.
pub fn payment(
    conn: &mut AnyConnection,
    event_type: &'static str,
    payment_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Event> {
    let payment = payments::find(conn, payment_id)?.ok_or(diesel::NotFound)?;
    payment_as_it_is(conn, event_type, &payment, now)
}

/// `payment.succeeded` or `payment.failed`, as the payment just recorded says.
pub fn payment_recorded(
    conn: &mut AnyConnection,
    payment: &payments::Payment,
    now: NaiveDateTime,
) -> QueryResult<Event> {
    payment_as_it_is(conn, recorded_type(payment), payment, now)
}

fn recorded_type(payment: &payments::Payment) -> &'static str {
    if payment.status == payments::SUCCEEDED {
        PAYMENT_SUCCEEDED
    } else {
        PAYMENT_FAILED
    }
}

/// Records `event_type` for `payment`, which is the row as the change left it.
fn payment_as_it_is(
    conn: &mut AnyConnection,
    event_type: &'static str,
    payment: &payments::Payment,
    now: NaiveDateTime,
) -> QueryResult<Event> {
    let user_id = customers::find_by_id(conn, payment.customer_id)?
        .ok_or(diesel::NotFound)?
        .user_id;
    record(conn, of_payment(event_type, payment, &user_id, now)?, now)
}

/// The event of a payment just recorded (`payment.succeeded` or `payment.failed`) of `user_id`.
pub fn of_recorded_payment(
    payment: &payments::Payment,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<NewEvent> {
    of_payment(recorded_type(payment), payment, user_id, now)
}

fn of_payment(
    event_type: &'static str,
    payment: &payments::Payment,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<NewEvent> {
    let data = json!({ "payment": PaymentView::of(payment, user_id) });
    new_event(
        event_type,
        user_id,
        payment.subscription_id,
        Some(payment.id),
        data,
        now,
    )
}

fn new_event(
    event_type: &'static str,
    user_id: &str,
    subscription_id: Option<i64>,
    payment_id: Option<i64>,
    data: Value,
    now: NaiveDateTime,
) -> QueryResult<NewEvent> {
    let mut id = [0u8; 12];
    getrandom::fill(&mut id).map_err(db_error)?;
    Ok(NewEvent {
        public_id: format!("evt_{}", hex::encode(id)),
        event_type: event_type.to_string(),
        user_id: user_id.to_string(),
        subscription_id,
        payment_id,
        data: serde_json::to_string(&data).map_err(db_error)?,
        created_at: now,
    })
}

fn record(conn: &mut AnyConnection, new: NewEvent, now: NaiveDateTime) -> QueryResult<Event> {
    if let Some(subscription_id) = new.subscription_id {
        // Ids in commit order within a subscription (a refund does not hold its row otherwise).
        crate::db::lock_subscription(conn, subscription_id)?;
    }
    record_all(conn, vec![new], now)?
        .pop()
        .ok_or(diesel::NotFound)
}

/// Records events in one statement and queues each, in one more, for every enabled endpoint that
/// wants its type; returned in the order given. The caller holds the rows of the subscriptions
/// they name (so their ids follow commit order). Call inside the transaction of the changes.
pub fn record_all(
    conn: &mut AnyConnection,
    news: Vec<NewEvent>,
    now: NaiveDateTime,
) -> QueryResult<Vec<Event>> {
    let order: std::collections::HashMap<String, usize> = news
        .iter()
        .enumerate()
        .map(|(i, n)| (n.public_id.clone(), i))
        .collect();
    let mut inserted = events::insert_all(conn, &news)?;
    // RETURNING's row order is not promised: put them back in the order given.
    inserted.sort_by_key(|e| order.get(&e.public_id).copied());
    let endpoints = webhooks::list_enabled_endpoints(conn)?;
    let deliveries: Vec<NewDelivery> = inserted
        .iter()
        .flat_map(|event| {
            endpoints
                .iter()
                .filter(|e| e.wants(&event.event_type))
                .map(|endpoint| delivery(endpoint.id, event, now))
        })
        .collect();
    webhooks::insert_deliveries(conn, &deliveries)?;
    // The shopper's emails these events make, in the same transaction.
    let emails: Vec<_> = inserted
        .iter()
        .filter_map(|e| email_of(&e.event_type).map(|kind| (e, kind)))
        .collect();
    crate::services::emails::for_events(conn, &emails, now)?;
    for event in &inserted {
        tracing::debug!(event_type = %event.event_type, event_id = %event.public_id, "event recorded");
    }
    Ok(inserted)
}

/// The email to the shopper an event makes, if any.
fn email_of(event_type: &str) -> Option<crate::services::emails::Kind> {
    use crate::services::emails::Kind;
    match event_type {
        PAYMENT_SUCCEEDED => Some(Kind::Receipt),
        PAYMENT_FAILED => Some(Kind::PaymentFailed),
        PAYMENT_REFUNDED => Some(Kind::Refund),
        SUBSCRIPTION_CANCELED => Some(Kind::Canceled),
        SUBSCRIPTION_DEACTIVATED => Some(Kind::Ended),
        _ => None,
    }
}

fn delivery(endpoint_id: i64, event: &Event, now: NaiveDateTime) -> NewDelivery {
    NewDelivery {
        endpoint_id,
        event_id: event.id,
        ordering_key: ordering_key(event),
        status: webhooks::PENDING.to_string(),
        next_attempt_at: now,
        created_at: now,
    }
}

/// Queues `event` for one endpoint, due now, in its subscription's line.
pub fn queue(
    conn: &mut AnyConnection,
    endpoint_id: i64,
    event: &Event,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    webhooks::insert_delivery(conn, &delivery(endpoint_id, event, now))
}

/// The line an event's deliveries keep their order in: its subscription's (an event of no
/// subscription is a line of its own).
fn ordering_key(event: &Event) -> String {
    event.subscription_id.map_or_else(
        || format!("event-{}", event.id),
        |s| format!("subscription-{s}"),
    )
}

/// Filters of `GET /v1/events`, as the query string gives them.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<String>,
    pub user_id: Option<String>,
    pub subscription_id: Option<i64>,
    pub starting_after: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /v1/events`: newest first; `startingAfter` is the last event id of the previous page.
pub async fn list(
    state: &AppState,
    query: EventQuery,
) -> Result<Page<EventView, String>, ApiError> {
    if let Some(user) = &query.user_id {
        check_user_id(user)?;
    }
    if let Some(t) = &query.event_type {
        if !TYPES.contains(&t.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("type must be one of {}", TYPES.join(", ")),
            ));
        }
    }
    let limit = page_size(query.limit)?;
    let rows = run_db(&state.pool, move |conn| {
        let before = match &query.starting_after {
            None => None,
            Some(public_id) => Some(
                events::find_by_public_id(conn, public_id)?
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_query",
                            "startingAfter must be the id of an event (evt_…)",
                        )
                    })?
                    .id,
            ),
        };
        let listing = Listing {
            event_type: query.event_type,
            user_id: query.user_id,
            subscription_id: query.subscription_id,
            before,
        };
        Ok(events::list(conn, &listing, limit + 1)?)
    })
    .await?;
    let views = rows.iter().map(EventView::of).collect();
    Ok(paged(views, limit, |e: &EventView| e.id.clone()))
}

/// `GET /v1/events/{id}`.
pub async fn show(state: &AppState, public_id: String) -> Result<EventView, ApiError> {
    run_db(&state.pool, move |conn| {
        events::find_by_public_id(conn, &public_id)?
            .map(|e| EventView::of(&e))
            .ok_or_else(|| ApiError::not_found("event_not_found", "no such event"))
    })
    .await
}
