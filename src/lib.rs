//! treefort-webpay: the payment provider behind Treefort's Web Payment integration.
#![forbid(unsafe_code)]

#[rustfmt::skip]
#[path = "../schema.rs"]
pub mod schema;

pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod models;
