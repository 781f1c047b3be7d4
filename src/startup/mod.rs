//! Building and running the service: pool and migrations, clients, the HTTP routes with their
//! middleware, and the background worker. `Application::build` binds the port (0 in tests) so the
//! caller can learn it before `run_until_stopped`.

mod routes;
mod server;

pub use routes::ROUTES;
use server::http_server;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;

use crate::clock::Clock;
use crate::config::{GatewayKind, Settings};
use crate::db;
use crate::db::run_db;
use crate::error::ApiError;
use crate::gateway::{sandbox::SandboxGateway, stripe::StripeGateway, Gateway};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::treefort::TreefortClient;
use crate::worker::{self, WorkerHandle};

/// The OpenAPI contract, served as written.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

pub struct Application {
    port: u16,
    server: Server,
    worker: Option<WorkerHandle>,
    catalog_poll: tokio::task::JoinHandle<()>,
    subscription_poll: tokio::task::JoinHandle<()>,
    limits_prune: tokio::task::JoinHandle<()>,
    state: web::Data<AppState>,
    /// Local mode's Treefort simulator (`None` outside local mode): app data of its own routes.
    simulator: Option<web::Data<crate::simulator::Simulator>>,
}

/// How the process runs: with the web server, the worker, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub web: bool,
    pub worker: bool,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, String> {
        Self::build_with_clock(settings, Clock::System).await
    }

    pub async fn build_with_clock(settings: Settings, clock: Clock) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut settings = settings;
        let mut clock = clock;
        let listener = TcpListener::bind(settings.listen_addr)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen_addr))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        // Local mode is reached over loopback, whatever address it listens on.
        let loopback = match settings.listen_addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        // The default origin names LISTEN_ADDR; with port 0 it must name the port actually bound
        // (and in local mode a browser's address, never 0.0.0.0).
        if settings.public_base_url == format!("http://{}", settings.listen_addr) {
            settings.listen_addr.set_port(port);
            let host = if settings.local_mode {
                std::net::SocketAddr::new(loopback, port)
            } else {
                settings.listen_addr
            };
            settings.public_base_url = format!("http://{host}");
        }
        let simulator = if settings.local_mode {
            let sim = crate::simulator::Simulator::new(&format!(
                "http://{}",
                std::net::SocketAddr::new(loopback, port)
            ))?;
            settings.provider_api_keys = vec![crate::config::ProviderKey::new(
                sim.provider_key().clone(),
                0,
            )];
            settings.treefort = Some(sim.treefort_settings());
            // Time travel: the system clock, movable forward.
            if !clock.is_movable() {
                clock = Clock::offset();
            }
            Some(web::Data::new(sim))
        } else {
            None
        };
        let state = build_state_with(settings, clock, simulator.is_some()).await?;
        if let Some(sim) = &simulator {
            sim.restore(&state).await?;
            let now = state.clock.now().naive_utc();
            let seeded = run_db(&state.pool, move |conn| {
                crate::simulator::seed_demo(conn, now).map_err(ApiError::internal)
            })
            .await
            .map_err(|e| e.to_string())?;
            if !seeded.is_empty() {
                state
                    .catalog
                    .reload(&state.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(made = %seeded.join(", "), "local mode: demo data created");
            }
        }
        let data = web::Data::new(state);
        let server = http_server(data.clone(), simulator.clone(), listener)?;
        let worker = Some(worker::spawn(data.clone()));
        let catalog_poll = tokio::spawn(poll_catalog(data.clone()));
        let subscription_poll = tokio::spawn(poll_subscription_changes(data.clone()));
        let limits_prune = tokio::spawn(forget_idle_callers(data.limits.clone()));
        Ok(Self {
            port,
            server,
            worker,
            catalog_poll,
            subscription_poll,
            limits_prune,
            state: data,
            simulator,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Local mode's simulator, when this process runs one.
    pub fn simulator(&self) -> Option<web::Data<crate::simulator::Simulator>> {
        self.simulator.clone()
    }

    /// Serves until SIGINT/SIGTERM (actix stops gracefully), then lets the worker finish what it
    /// claimed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.catalog_poll.abort();
        self.subscription_poll.abort();
        self.limits_prune.abort();
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        result
    }
}

/// Forgets idle callers of the rate limits once a minute, on the limiter's own clock (whatever
/// the worker is doing, and with the worker off).
async fn forget_idle_callers(limits: Arc<crate::limits::RateLimits>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        limits.forget_idle();
        tracing::debug!(
            callers = limits.callers(),
            "idle rate-limit callers forgotten"
        );
    }
}

/// Keeps the in-memory catalog current with changes other instances and the CLI make: at once
/// when PostgreSQL announces one, else at the next version check.
async fn poll_catalog(state: web::Data<AppState>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(state.settings.catalog_check_interval) => {}
            _ = state.catalog.announced.notified() => {}
        }
        match state.catalog.refresh_if_stale(&state.pool).await {
            Ok(true) => tracing::debug!("catalog read again after a change elsewhere"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "checking the catalog version failed"),
        }
    }
}

/// Keeps the entitlement memory current with subscription changes (see `cache::subscriptions`): at
/// once when PostgreSQL announces one, else every `CATALOG_CHECK_MS`.
async fn poll_subscription_changes(state: web::Data<AppState>) {
    loop {
        if let Err(e) = state.subscription_cache.read_feed(&state.pool, false).await {
            tracing::warn!(error = %e, "reading the subscription change feed failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(state.settings.catalog_check_interval) => {}
            _ = state.subscription_cache.announced.notified() => {}
        }
    }
}

/// Everything the web server and the worker share. Migrations run before the pool is used.
pub async fn build_state(settings: Settings, clock: Clock) -> Result<AppState, String> {
    build_state_with(settings, clock, false).await
}

/// `build_state`; `simulated` when local mode's simulator plays Treefort's part.
pub async fn build_state_with(
    settings: Settings,
    clock: Clock,
    simulated: bool,
) -> Result<AppState, String> {
    // reqwest is built without a default TLS provider (no C build of aws-lc); use ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = settings.database_url.clone();
    let (pool, checkpointer, install_id, catalog) =
        tokio::task::spawn_blocking(move || open_database(&url))
            .await
            .map_err(|e| e.to_string())??;
    let treefort = settings
        .treefort
        .clone()
        .map(|t| TreefortClient::new(t, clock.clone()))
        .transpose()?
        .map(Arc::new);
    if treefort.is_none() && !simulated {
        tracing::warn!(
            "TREEFORT_API_URL is not set: checkouts and cancellations answer 503 until it is"
        );
    }
    if settings.local_mode && !simulated {
        tracing::warn!("local mode runs its Treefort simulator and worker inside `serve`; this process has no Treefort to talk to (set the TREEFORT_* variables, or LOCAL_MODE=0)");
    }
    if settings.provider_api_keys.is_empty() {
        tracing::warn!("PROVIDER_API_KEYS is not set: the /treefort routes answer 503 until it is");
    }
    let metrics = Arc::new(Metrics::default());
    let gateway = build_gateway(&settings.gateway, &install_id, &metrics)?;
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).map_err(|e| e.to_string())?;
    let instance_id = format!("{}-{}", std::process::id(), hex::encode(id));
    let limits = Arc::new(crate::limits::RateLimits::new(crate::limits::Budgets {
        per_key: settings.rate_limit_treefort_per_minute,
        failed_auth_per_address: settings.rate_limit_failed_auth_per_minute,
        pages_per_address: settings.rate_limit_pages_per_minute,
    }));
    let webhooks = Arc::new(crate::webhook_client::Sender::new(&settings)?);
    let mailer = crate::mailer::Mailer::new(&settings.email)?;
    match &mailer {
        Some(m) => tracing::info!(server = %m.server, "shoppers' emails go through SMTP"),
        None if settings.local_mode => tracing::info!("shoppers' emails go to the simulator's Inbox (local mode; no SMTP)"),
        None if !simulated => tracing::warn!("SMTP_URL is not set: no email is sent to shoppers (receipts, reminders, failed payments)"),
        None => {}
    }
    if !simulated {
        for code in crate::simulator::active_demo_codes(&catalog.snapshot()) {
            tracing::warn!(code, "the local-mode demo promo code is still active in this database: disable it with `treefort-webpay promo disable {code}` before taking real payments");
        }
    }
    let catalog = Arc::new(catalog);
    let subscription_cache = Arc::new(crate::cache::subscriptions::SubscriptionCache::new(
        catalog.commits(),
    ));
    crate::cache::listen(&settings.database_url, &catalog, &subscription_cache);
    let checkout_writer =
        crate::models::checkout_session_writer::SessionWriter::start(pool.clone())?;
    Ok(AppState {
        pool,
        checkpointer,
        checkout_writer,
        limits,
        catalog,
        subscription_cache,
        webhooks,
        webhook_records: crate::db::group::GroupWriter::new(
            crate::services::webhooks::delivery::RECORDS_PER_COMMIT,
        ),
        mailer,
        settings,
        treefort,
        gateway,
        clock,
        metrics,
        instance_id,
        worker_round: tokio::sync::Mutex::new(()),
        stopping: std::sync::atomic::AtomicBool::new(false),
        housekeeping_minute: std::sync::atomic::AtomicI64::new(i64::MIN),
        api_key_uses: moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(std::time::Duration::from_secs(300))
            .build(),
    })
}

/// Opens the pool (and SQLite's checkpoints), applies pending migrations, and reads this
/// installation's id and the catalog.
#[allow(clippy::type_complexity)]
fn open_database(
    url: &db::DatabaseUrl,
) -> Result<
    (
        db::DbPool,
        Option<db::checkpoint::Checkpointer>,
        String,
        crate::cache::catalog::Catalog,
    ),
    String,
> {
    let (pool, checkpointer) = db::connect_service_pool(url, 8)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let applied = db::run_migrations(&mut conn).map_err(|e| format!("migrations failed: {e}"))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    let fresh = crate::domain::session_token::nonce().map_err(|e| e.to_string())?;
    let install_id = crate::models::service_settings::get_or_insert(
        &mut conn,
        crate::models::service_settings::INSTALL_ID,
        &fresh,
    )
    .map_err(|e| format!("cannot read this installation's id: {e}"))?;
    let catalog = crate::cache::catalog::Catalog::load(&mut conn)
        .map_err(|e| format!("cannot read the plans and promo codes: {e}"))?;
    drop(conn);
    Ok((pool, checkpointer, install_id, catalog))
}

/// The payment gateway the settings name. `install_id` marks this installation's objects there.
pub fn build_gateway(
    kind: &GatewayKind,
    install_id: &str,
    metrics: &Arc<Metrics>,
) -> Result<Gateway, String> {
    Ok(match kind {
        GatewayKind::Sandbox { charge_delay } => {
            tracing::warn!("PAYMENT_GATEWAY=sandbox: TEST MODE, no real payment is taken. Do not use in production.");
            Gateway::Sandbox(SandboxGateway::new().with_charge_delay(*charge_delay))
        }
        GatewayKind::Stripe(stripe) => {
            if stripe.is_test_mode() {
                tracing::warn!(
                    "PAYMENT_GATEWAY=stripe with test keys: TEST MODE, no real payment is taken."
                );
            } else {
                tracing::info!("PAYMENT_GATEWAY=stripe with live keys: real payments are taken.");
            }
            Gateway::Stripe(StripeGateway::new(
                stripe.clone(),
                install_id,
                metrics.clone(),
            )?)
        }
    })
}
