//! The catalog in memory: every plan and promo code (and the `/v1` API keys not revoked), read
//! from one snapshot (`arc-swap`) so the
//! plan endpoint and promo validation answer without a database round trip. A change raises
//! `catalog_version` in its own transaction; this process notices its own changes at once
//! (`db::Commits::catalog_changes`); on PostgreSQL every instance hears of it at commit (`LISTEN`/`NOTIFY`); and
//! every instance compares the stored version every 250 ms (`CATALOG_CHECK_MS`) as a safety
//! net, so a change made by another instance or by the CLI shows within a second on either
//! backend. Checkout and renewals do not read it: what decides money (redemption limits,
//! first-time-only) is checked in their transactions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use diesel::QueryResult;

use crate::db::{AnyConnection, DbPool};
use crate::error::ApiError;
use crate::models::catalog_version;
use crate::models::plans::{self, Plan};
use crate::models::promo_codes::{self, PromoCode};

/// A promo code with the plans it is limited to (empty: every plan).
#[derive(Debug, Clone)]
pub struct CatalogPromo {
    pub code: PromoCode,
    pub plan_ids: Vec<i64>,
}

/// Everything at one version.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: i64,
    pub plans: HashMap<i64, Plan>,
    /// By the code's normalised form.
    pub promos: HashMap<String, CatalogPromo>,
    /// The `/v1` API keys not revoked, by public id (a key made since is looked up in the
    /// database; a revocation is seen at the next version check).
    pub api_keys: HashMap<String, crate::models::api_keys::ApiKey>,
    /// The launch-token signing keys, newest first (the first signs; those not retired are in
    /// the JWKS).
    pub signing_keys: Vec<crate::models::signing_keys::SigningKey>,
}

impl Snapshot {
    /// Reads the version first: data read after it is at least as new, so a change committed
    /// between the two reads is seen again at the next comparison, never missed.
    pub fn load(conn: &mut AnyConnection) -> QueryResult<Self> {
        let version = catalog_version::current(conn)?;
        let plans = plans::list(conn)?.into_iter().map(|p| (p.id, p)).collect();
        let mut limits: HashMap<i64, Vec<i64>> = HashMap::new();
        for (code_id, plan_id) in promo_codes::all_plan_limits(conn)? {
            limits.entry(code_id).or_default().push(plan_id);
        }
        let promos = promo_codes::list(conn)?
            .into_iter()
            .map(|code| {
                let plan_ids = limits.remove(&code.id).unwrap_or_default();
                (
                    code.code_normalized.clone(),
                    CatalogPromo { code, plan_ids },
                )
            })
            .collect();
        let api_keys = crate::models::api_keys::list_usable(conn)?
            .into_iter()
            .map(|k| (k.key_id.clone(), k))
            .collect();
        let signing_keys = crate::models::signing_keys::list(conn)?;
        Ok(Self {
            version,
            plans,
            promos,
            api_keys,
            signing_keys,
        })
    }

    pub fn plans_among(&self, ids: &[i64]) -> Vec<&Plan> {
        ids.iter().filter_map(|id| self.plans.get(id)).collect()
    }
}

pub struct Catalog {
    current: ArcSwap<Snapshot>,
    /// Woken by the PostgreSQL listener when another instance announces a change.
    pub announced: tokio::sync::Notify,
    /// The commits of this app's pool, and `catalog_changes` as it was before the current
    /// snapshot was read.
    commits: Arc<crate::db::Commits>,
    seen_changes: AtomicU64,
    reloading: tokio::sync::Mutex<()>,
}

impl Catalog {
    /// Loads the first snapshot (at start-up).
    pub fn load(conn: &mut AnyConnection) -> QueryResult<Self> {
        let commits = crate::db::commits_of(conn);
        let before = commits.catalog_changes();
        Ok(Self {
            commits,
            current: ArcSwap::from_pointee(Snapshot::load(conn)?),
            announced: tokio::sync::Notify::new(),
            seen_changes: AtomicU64::new(before),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The commits of the pool this catalog was read from (the subscription memory shares them).
    pub fn commits(&self) -> Arc<crate::db::Commits> {
        self.commits.clone()
    }

    /// The snapshot as it is now, without looking for changes.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot, read again first if this process changed the catalog since.
    pub async fn get(&self, pool: &DbPool) -> Result<Arc<Snapshot>, ApiError> {
        if self.commits.catalog_changes() != self.seen_changes.load(Ordering::SeqCst) {
            self.reload(pool).await?;
        }
        Ok(self.current.load_full())
    }

    /// Reads the catalog again (one reload at a time; a waiter finding it done returns).
    pub async fn reload(&self, pool: &DbPool) -> Result<(), ApiError> {
        let before = self.commits.catalog_changes();
        let _one = self.reloading.lock().await;
        // Another reload that began after `before` was read has done the work.
        if self.seen_changes.load(Ordering::SeqCst) >= before {
            return Ok(());
        }
        self.install(pool, before).await
    }

    /// Reads a snapshot and makes it current; `changes_before` is `catalog_changes` as read before.
    /// Call with `reloading` held.
    async fn install(&self, pool: &DbPool, changes_before: u64) -> Result<(), ApiError> {
        let snapshot = crate::db::run_db(pool, |conn| Ok(Snapshot::load(conn)?)).await?;
        self.current.store(Arc::new(snapshot));
        self.seen_changes.store(changes_before, Ordering::SeqCst);
        Ok(())
    }

    /// Compares the stored version with the snapshot's; reads again if they differ. Answers
    /// whether it did.
    pub async fn refresh_if_stale(&self, pool: &DbPool) -> Result<bool, ApiError> {
        let stored = crate::db::run_db(pool, |conn| Ok(catalog_version::current(conn)?)).await?;
        if stored == self.current.load().version {
            return Ok(false);
        }
        let _one = self.reloading.lock().await;
        if stored == self.current.load().version {
            return Ok(false);
        }
        self.install(pool, self.commits.catalog_changes()).await?;
        Ok(true)
    }
}
