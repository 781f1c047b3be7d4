//! What every request handler and the worker share: the pool, settings, clients, clock, metrics.
//! Nothing here is state another instance would need: all of that lives in the database.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::DbPool;
use crate::error::ApiError;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::treefort::TreefortClient;

pub struct AppState {
    pub pool: DbPool,
    /// SQLite's WAL checkpoints, on a thread of their own while the state lives.
    pub checkpointer: Option<crate::db::checkpoint::Checkpointer>,
    pub settings: Settings,
    pub treefort: Option<Arc<TreefortClient>>,
    pub gateway: Gateway,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<crate::limits::RateLimits>,
    /// Plans and promo codes in memory, for the read endpoints.
    pub catalog: Arc<crate::cache::catalog::Catalog>,
    /// The subscriptions of users the entitlement check was asked about (see `cache::subscriptions`).
    pub subscription_cache: Arc<crate::cache::subscriptions::SubscriptionCache>,
    /// Writes the checkout-session endpoint's sessions, in batches.
    pub checkout_writer: crate::models::checkout_session_writer::SessionWriter,
    /// The client of outbound webhooks and what this instance has in flight.
    pub webhooks: Arc<crate::webhook_client::Sender>,
    /// Records webhook attempts that finish together in one transaction.
    pub webhook_records: crate::db::group::GroupWriter<
        crate::models::webhooks::Finished,
        Result<&'static str, ApiError>,
    >,
    /// The SMTP client of shoppers' emails (`None`: no `SMTP_URL`).
    pub mailer: Option<crate::mailer::Mailer>,
    /// Names this process in outbox leases (`locked_by`), so operators can tell instances apart.
    pub instance_id: String,
    /// Held through each worker round: the background loop and local mode's time travel never run
    /// two rounds of this process at once (they share one lease owner, `instance_id`).
    pub worker_round: tokio::sync::Mutex<()>,
    /// Set when the worker is asked to stop: a round in progress ends after the wave it is in
    /// (what a wave claimed is always finished and recorded).
    pub stopping: std::sync::atomic::AtomicBool,
    /// The minute old idempotency keys and change-feed rows were last forgotten in (once a
    /// minute is enough).
    pub housekeeping_minute: std::sync::atomic::AtomicI64,
    /// When this instance last noted each `/v1` key's use (by public id), so a key is written
    /// at most once a minute.
    pub api_key_uses: moka::sync::Cache<String, chrono::NaiveDateTime>,
}

impl AppState {
    /// The Treefort client, or 503 `not_configured` when the Treefort settings are absent.
    pub fn treefort(&self) -> Result<&TreefortClient, ApiError> {
        self.treefort.as_deref().ok_or_else(|| {
            ApiError::not_configured(
                "the Treefort API is not configured (set TREEFORT_API_URL, TREEFORT_TOKEN_URL, TREEFORT_CLIENT_ID, TREEFORT_CLIENT_SECRET, TREEFORT_API_VERSION)",
            )
        })
    }
}
