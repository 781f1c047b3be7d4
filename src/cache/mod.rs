//! In-memory copies of what the read endpoints answer from, kept current from the database: the
//! catalog (plans, promo codes, `/v1` keys) and the subscriptions of users asked about, with the
//! PostgreSQL `LISTEN` loop that wakes both when another instance commits a change.

pub mod catalog;
pub mod subscriptions;

use std::sync::Arc;

use catalog::Catalog;
use subscriptions::SubscriptionCache;

/// Starts the PostgreSQL listener of `catalog` and `subscriptions` on a thread of its own; it
/// stops when either is dropped.
pub fn listen(
    url: &crate::db::DatabaseUrl,
    catalog: &Arc<Catalog>,
    subscriptions: &Arc<SubscriptionCache>,
) {
    if url.backend() != crate::db::Backend::Postgres {
        return;
    }
    let url = url.clone();
    let (catalog, subscriptions) = (Arc::downgrade(catalog), Arc::downgrade(subscriptions));
    let spawned = std::thread::Builder::new()
        .name("change-listener".into())
        .spawn(move || {
            crate::db::listen_for_changes(&url, |arrived| {
                let (Some(catalog), Some(subscriptions)) =
                    (catalog.upgrade(), subscriptions.upgrade())
                else {
                    return false;
                };
                if arrived.catalog {
                    catalog.announced.notify_one();
                }
                if arrived.subscriptions {
                    subscriptions.announced.notify_one();
                }
                true
            })
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the change listener; the periodic checks remain");
    }
}
