//! treefort-webpay: the payment provider behind Treefort's Web Payment integration.
#![forbid(unsafe_code)]

#[rustfmt::skip]
#[path = "../schema.rs"]
pub mod schema;

pub mod api;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod limits;
pub mod mailer;
pub mod metrics;
pub mod models;
pub mod pages;
pub mod services;
pub mod simulator;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod treefort;
pub mod views;
pub mod webhook_client;
pub mod worker;
