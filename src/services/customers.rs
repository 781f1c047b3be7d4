//! The payment gateway's customer of each of our customers: created once, stored, and reused;
//! replaced when the stored one belongs to another gateway (a switch from the sandbox to Stripe).

use crate::error::ApiError;
use crate::models::customers::{self, Customer};
use crate::state::AppState;

use crate::db::run_db;

/// The active gateway's customer reference for `customer`, created and stored if needed.
pub async fn gateway_customer(state: &AppState, customer: &Customer) -> Result<String, ApiError> {
    let stored = customer.gateway_customer_ref.clone();
    if let Some(owned) = stored.as_deref().filter(|r| state.gateway.owns_customer(r)) {
        return Ok(owned.to_string());
    }
    let created = state
        .gateway
        .ensure_customer(
            None,
            customer.id,
            &customer.email,
            customer.full_name.as_deref(),
        )
        .await
        .map_err(ApiError::from)?;
    let id = customer.id;
    run_db(&state.pool, move |conn| {
        Ok(customers::set_gateway_customer_ref(
            conn,
            id,
            stored.as_deref(),
            &created,
        )?)
    })
    .await
}
