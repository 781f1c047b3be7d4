//! Integration tests over real HTTP: each test starts the service on a random port with its own
//! database (SQLite file, or a fresh PostgreSQL database when TEST_DATABASE_URL is set) and its own
//! fake Treefort (wiremock).

mod auth;
mod billing_portal;
mod browser;
mod campaign_invariants;
mod cancel;
mod catalog;
mod checkout_page;
mod checkout_session;
mod cli;
mod conformance;
mod due_work;
mod emails;
mod faults;
mod features;
mod forms;
mod health;
mod helpers;
mod launch_tokens;
mod lease;
mod lifecycle;
mod limits;
mod local_mode;
mod localstripe;
mod migrations;
mod openapi;
mod outbox;
mod payment;
mod pool;
mod promo_validation;
mod properties;
mod readme_launch_token;
mod smtp;
mod stripe;
mod stripe_campaign;
mod stripe_faults;
mod stripe_proxy;
mod subscription_plan;
mod v1;
mod v1_events;
mod v1_support;
mod v1_writes;
mod webhooks;
