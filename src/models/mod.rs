//! One module per table: the row as read, the row to insert, and connection-first query functions
//! named for what they answer. No business rule lives here, only how rows are stored and found.
//! Times are UTC `NaiveDateTime`s.

pub mod api_keys;
pub mod catalog_version;
pub mod checkout_session_writer;
pub mod checkout_sessions;
pub mod customers;
pub mod emails;
pub mod events;
pub mod gateway_events;
pub mod idempotency_keys;
pub mod outbox;
pub mod payments;
pub mod plans;
pub mod portal_sessions;
pub mod promo_codes;
pub mod service_settings;
pub mod signing_keys;
pub mod subscription_changes;
pub mod subscriptions;
mod unnest;
pub mod unrecorded_charges;
pub mod webhooks;
