//! Building and running the service: pool and migrations, clients, the HTTP routes with their
//! middleware, and the background worker. `Application::build` binds the port (0 in tests) so the
//! caller can learn it before `run_until_stopped`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service};
use actix_web::http::StatusCode;
use actix_web::{error::InternalError, web, App, HttpMessage, HttpResponse, HttpServer};

use crate::api;
use crate::clock::Clock;
use crate::config::{GatewayKind, Settings};
use crate::db;
use crate::db::run_db;
use crate::error::ApiError;
use crate::gateway::{sandbox::SandboxGateway, stripe::StripeGateway, Gateway};
use crate::metrics::Metrics;
use crate::pages;
use crate::state::AppState;
use crate::treefort::TreefortClient;
use crate::worker::{self, WorkerHandle};

/// The OpenAPI contract, served as written.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

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
            settings.provider_api_keys = vec![sim.provider_key().clone()];
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
    let (pool, checkpointer, install_id, catalog) = tokio::task::spawn_blocking(
        move || -> Result<(db::DbPool, _, String, crate::cache::catalog::Catalog), String> {
            let (pool, checkpointer) = db::connect_service_pool(&url, 8)?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let applied =
                db::run_migrations(&mut conn).map_err(|e| format!("migrations failed: {e}"))?;
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
        },
    )
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

fn http_server(
    state: web::Data<AppState>,
    simulator: Option<web::Data<crate::simulator::Simulator>>,
    listener: TcpListener,
) -> Result<Server, String> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(api::json_config())
            .app_data(form_config())
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::bad_request("invalid_query", format!("the query is not valid here: {e}"))
                    .into()
            }))
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                ApiError::not_found("not_found", "no such resource (the path is malformed)").into()
            }))
            // Bodies are read whole, within BODY_READ_TIMEOUT_MS, before any handler sees them: a
            // client that declares a body and sends it slowly (or never) gets 408 instead of
            // holding a connection. Innermost: limits and the CSRF check come first.
            .wrap(actix_web::middleware::from_fn(read_body_in_time))
            // Shopper forms are refused when another site posts them (CSRF).
            .wrap_fn(|req, srv| {
                let page_form = req.method() == actix_web::http::Method::POST
                    && (req.path().starts_with("/checkout/")
                        || req.path().starts_with("/billing/")
                        || req.path().starts_with("/simulator/"));
                let refused = req.app_data::<web::Data<AppState>>().and_then(|state| {
                    if let Some(refused) = rate_limited(&req, state) {
                        return Some(refused);
                    }
                    if req.path().starts_with("/treefort/") && api::declares_other_charset(&req) {
                        use actix_web::ResponseError;
                        return Some(ApiError::unsupported_media_type().error_response());
                    }
                    (page_form
                        && pages::is_cross_site(req.headers(), &state.settings.public_base_url))
                    .then(|| pages::cross_site_page(state.gateway.is_test_mode()))
                });
                let (call, refused) = match refused {
                    None => (Some(srv.call(req)), None),
                    Some(page) => (None, Some(req.into_response(page))),
                };
                async move {
                    match (call, refused) {
                        (Some(call), _) => Ok(call.await?.map_into_left_body()),
                        (None, Some(page)) => Ok(page.map_into_right_body()),
                        (None, None) => unreachable!("a request is either served or refused"),
                    }
                }
            })
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let metrics = req
                    .app_data::<web::Data<AppState>>()
                    .map(|s| s.metrics.clone());
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    let status = res.status().as_u16();
                    let elapsed = started.elapsed();
                    // Method, route and request id are the span's (telemetry::RequestSpan).
                    tracing::info!(status, elapsed_ms = elapsed.as_millis() as u64, "request");
                    // Matched once, by the request's span (never the path: it carries tokens).
                    let info = res
                        .request()
                        .extensions()
                        .get::<crate::telemetry::RequestInfo>()
                        .cloned();
                    if let Some(metrics) = metrics {
                        let route = info.as_ref().map_or("unmatched", |i| i.route.as_str());
                        let method = res.request().method().as_str();
                        metrics.observe_request(method, route, status, elapsed);
                    }
                    if let Some(value) = info
                        .and_then(|i| actix_web::http::header::HeaderValue::from_str(&i.id).ok())
                    {
                        res.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static("x-request-id"),
                            value,
                        );
                    }
                    Ok(res)
                }
            })
            .wrap(tracing_actix_web::TracingLogger::<
                crate::telemetry::RequestSpan,
            >::new())
            .configure(|cfg| {
                if let Some(sim) = &simulator {
                    cfg.app_data(sim.clone());
                    crate::simulator::routes(cfg);
                }
            })
            .configure(routes)
    })
    // Bounded connections: slow or idle clients cannot pile up without end.
    .max_connections(1024)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .listen(listener)
    .map_err(|e| e.to_string())?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}

/// Reads a request's body whole within BODY_READ_TIMEOUT_MS before any handler sees it: a client
/// that declares a body and sends it slowly (or never) gets 408 instead of holding a connection.
async fn read_body_in_time(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use futures_util::StreamExt;
    // Past every limit of the routes (they answer 413 on what they get).
    const MAX: usize = 1024 * 1024;
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.body_read_timeout)
        .unwrap_or(std::time::Duration::from_secs(10));
    let mut payload = actix_web::HttpMessage::take_payload(&mut req);
    let read = tokio::time::timeout(timeout, async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() > MAX {
                break;
            }
        }
        Ok::<_, actix_web::error::PayloadError>(body.freeze())
    })
    .await;
    match read {
        Ok(Ok(body)) => {
            req.set_payload(actix_web::dev::Payload::from(body));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Ok(Err(_)) | Err(_) => {
            use actix_web::ResponseError;
            let response = ApiError::request_timeout().error_response();
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// 429 with `Retry-After` for a client over its limit before anything else is done: an address
/// refused for failed authentications on `/treefort/*` and `/v1/*`, an address over the pages'
/// limit on the pages.
fn rate_limited(req: &actix_web::dev::ServiceRequest, state: &AppState) -> Option<HttpResponse> {
    let path = req.path();
    let client =
        || crate::limits::client_address(req.request(), state.settings.trust_proxy_headers);
    // The keyed routes: an address refused for its failed authentications is turned away before
    // its key is looked at. A proven key's own limit is counted once it is proven (api::auth,
    // api::v1).
    let keyed = path.starts_with("/treefort/") || path.starts_with("/v1/");
    let wait = if keyed {
        client().and_then(|ip| state.limits.check_refused(ip).err())
    } else if path.starts_with("/checkout/") || path.starts_with("/billing/") {
        client().and_then(|ip| state.limits.check_pages(ip).err())
    } else {
        None
    }?;
    let seconds = crate::limits::retry_after_secs(wait);
    state
        .metrics
        .counters
        .rate_limited
        .inc([if keyed { "failed_auth" } else { "pages" }]);
    if keyed {
        use actix_web::ResponseError;
        return Some(ApiError::rate_limited(seconds).error_response());
    }
    let mut response = pages::rate_limited_page(state.gateway.is_test_mode());
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(seconds),
    );
    Some(response)
}

/// Every route the service answers. `tests/api/openapi.rs` checks this list against openapi.yaml.
pub const ROUTES: [(&str, &str); 48] = [
    ("GET", "/"),
    ("POST", "/treefort/subscription-plan"),
    ("POST", "/treefort/checkout-session"),
    ("POST", "/treefort/billing-portal-session"),
    ("POST", "/treefort/cancel-subscription"),
    ("POST", "/treefort/validate-promo-code"),
    ("GET", "/checkout/{token}"),
    ("POST", "/checkout/{token}"),
    ("POST", "/checkout/{token}/card-setup"),
    ("POST", "/checkout/{token}/confirm"),
    ("GET", "/checkout/{token}/activation"),
    ("GET", "/billing/{token}"),
    ("POST", "/billing/{token}/cancel"),
    ("POST", "/billing/{token}/resume"),
    ("POST", "/billing/{token}/card-setup"),
    ("POST", "/billing/{token}/card"),
    ("POST", "/billing/{token}/confirm-payment"),
    ("POST", "/webhooks/stripe"),
    ("GET", "/assets/card.js"),
    ("GET", "/v1/users/{userId}/entitlement"),
    ("POST", "/v1/subscriptions/{id}/cancel"),
    ("POST", "/v1/subscriptions/{id}/resume"),
    ("GET", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{id}"),
    ("GET", "/v1/payments"),
    ("POST", "/v1/payments/{id}/refund"),
    ("GET", "/v1/plans"),
    ("POST", "/v1/plans"),
    ("GET", "/v1/plans/{id}"),
    ("PATCH", "/v1/plans/{id}"),
    ("GET", "/v1/promo-codes"),
    ("POST", "/v1/promo-codes"),
    ("GET", "/v1/promo-codes/{code}"),
    ("POST", "/v1/promo-codes/{code}/disable"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{id}"),
    ("POST", "/v1/events/{id}/redeliver"),
    ("GET", "/v1/webhook-endpoints"),
    ("POST", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints/{id}"),
    ("DELETE", "/v1/webhook-endpoints/{id}"),
    ("POST", "/v1/webhook-endpoints/{id}/disable"),
    ("POST", "/v1/webhook-endpoints/{id}/enable"),
    ("POST", "/v1/webhook-endpoints/{id}/roll-secret"),
    ("GET", "/v1/webhook-endpoints/{id}/attempts"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::Route;
    // Every route answers other methods with 405 and the `Allow` header (RFC 9110).
    fn resource(path: &'static str, routes: Vec<(&'static str, Route)>) -> actix_web::Resource {
        let allow: Vec<&str> = routes.iter().map(|(m, _)| *m).collect();
        let allow = allow.join(", ");
        routes
            .into_iter()
            .fold(web::resource(path), |r, (_, route)| r.route(route))
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(&allow) }
            }))
    }
    let get = |path, route| resource(path, vec![("GET", route)]);
    let post = |path, route| resource(path, vec![("POST", route)]);
    cfg.service(post(
        "/treefort/subscription-plan",
        web::post().to(api::subscription_plan::handle),
    ))
    .service(post(
        "/treefort/checkout-session",
        web::post().to(api::checkout_session::handle),
    ))
    .service(post(
        "/treefort/billing-portal-session",
        web::post().to(api::billing_portal_session::handle),
    ))
    .service(post(
        "/treefort/cancel-subscription",
        web::post().to(api::cancel_subscription::handle),
    ))
    .service(post(
        "/treefort/validate-promo-code",
        web::post().to(api::validate_promo_code::handle),
    ))
    .service(resource(
        "/checkout/{token}",
        vec![
            ("GET", web::get().to(pages::checkout::show)),
            ("POST", web::post().to(pages::checkout::pay)),
        ],
    ))
    .service(post(
        "/checkout/{token}/card-setup",
        web::post().to(pages::checkout::card_setup),
    ))
    .service(post(
        "/checkout/{token}/confirm",
        web::post().to(pages::checkout::confirm),
    ))
    .service(get(
        "/checkout/{token}/activation",
        web::get().to(pages::checkout::activation),
    ))
    .service(get("/billing/{token}", web::get().to(pages::billing::show)))
    .service(post(
        "/billing/{token}/cancel",
        web::post().to(pages::billing::cancel),
    ))
    .service(post(
        "/billing/{token}/resume",
        web::post().to(pages::billing::resume),
    ))
    .service(post(
        "/billing/{token}/card-setup",
        web::post().to(pages::billing::card_setup),
    ))
    .service(post(
        "/billing/{token}/card",
        web::post().to(pages::billing::replace_card),
    ))
    .service(post(
        "/billing/{token}/confirm-payment",
        web::post().to(pages::billing::confirm_payment),
    ))
    .service(
        post("/webhooks/stripe", web::post().to(api::webhooks::stripe))
            .app_data(web::PayloadConfig::new(api::webhooks::WEBHOOK_LIMIT)),
    )
    .service(get("/assets/card.js", web::get().to(pages::card_js)))
    .service(get(
        "/v1/users/{userId}/entitlement",
        web::get().to(api::v1::entitlement::show),
    ))
    .service(post(
        "/v1/subscriptions/{id}/cancel",
        web::post().to(api::v1::subscriptions::cancel),
    ))
    .service(post(
        "/v1/subscriptions/{id}/resume",
        web::post().to(api::v1::subscriptions::resume),
    ))
    .service(get(
        "/v1/subscriptions",
        web::get().to(api::v1::subscriptions::list),
    ))
    .service(get(
        "/v1/subscriptions/{id}",
        web::get().to(api::v1::subscriptions::show),
    ))
    .service(get("/v1/payments", web::get().to(api::v1::payments::list)))
    .service(post(
        "/v1/payments/{id}/refund",
        web::post().to(api::v1::payments::refund),
    ))
    .service(resource(
        "/v1/plans",
        vec![
            ("GET", web::get().to(api::v1::plans::list)),
            ("POST", web::post().to(api::v1::plans::create)),
        ],
    ))
    .service(resource(
        "/v1/plans/{id}",
        vec![
            ("GET", web::get().to(api::v1::plans::show)),
            ("PATCH", web::patch().to(api::v1::plans::update)),
        ],
    ))
    .service(resource(
        "/v1/promo-codes",
        vec![
            ("GET", web::get().to(api::v1::promo_codes::list)),
            ("POST", web::post().to(api::v1::promo_codes::create)),
        ],
    ))
    .service(get(
        "/v1/promo-codes/{code}",
        web::get().to(api::v1::promo_codes::show),
    ))
    .service(post(
        "/v1/promo-codes/{code}/disable",
        web::post().to(api::v1::promo_codes::disable),
    ))
    .service(get("/v1/events", web::get().to(api::v1::events::list)))
    .service(get("/v1/events/{id}", web::get().to(api::v1::events::show)))
    .service(post(
        "/v1/events/{id}/redeliver",
        web::post().to(api::v1::events::redeliver),
    ))
    .service(resource(
        "/v1/webhook-endpoints",
        vec![
            ("GET", web::get().to(api::v1::webhook_endpoints::list)),
            ("POST", web::post().to(api::v1::webhook_endpoints::create)),
        ],
    ))
    .service(resource(
        "/v1/webhook-endpoints/{id}",
        vec![
            ("GET", web::get().to(api::v1::webhook_endpoints::show)),
            (
                "DELETE",
                web::delete().to(api::v1::webhook_endpoints::delete),
            ),
        ],
    ))
    .service(post(
        "/v1/webhook-endpoints/{id}/disable",
        web::post().to(api::v1::webhook_endpoints::disable),
    ))
    .service(post(
        "/v1/webhook-endpoints/{id}/enable",
        web::post().to(api::v1::webhook_endpoints::enable),
    ))
    .service(post(
        "/v1/webhook-endpoints/{id}/roll-secret",
        web::post().to(api::v1::webhook_endpoints::roll_secret),
    ))
    .service(get(
        "/v1/webhook-endpoints/{id}/attempts",
        web::get().to(api::v1::webhook_endpoints::attempts),
    ))
    .service(get("/", web::get().to(home)))
    .service(get("/healthz", web::get().to(healthz)))
    .service(get("/readyz", web::get().to(readyz)))
    .service(get("/metrics", web::get().to(metrics)))
    .service(get("/openapi.yaml", web::get().to(openapi)))
    .default_service(web::to(not_found));
}

fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|err, req| {
            let lang = crate::domain::locale::Lang::En;
            let test_mode = req
                .app_data::<web::Data<AppState>>()
                .is_some_and(|s| s.gateway.is_test_mode());
            let page = pages::message_page(
                StatusCode::BAD_REQUEST,
                pages::Chrome { lang, test_mode },
                &lang.t("error-title"),
                &lang.t("invalid-card"),
            );
            InternalError::from_response(err, page).into()
        })
}

/// `GET /`: local mode goes to the simulator; otherwise a small page that names the service.
async fn home(simulator: Option<web::Data<crate::simulator::Simulator>>) -> HttpResponse {
    if simulator.is_some() {
        return pages::see_other("/simulator");
    }
    pages::home_page()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // A SQLite file deleted under a running process still answers through the open handles,
    // while everything written from then on is lost: not ready.
    if let Some(path) = state.settings.database_url.sqlite_path() {
        if !std::path::Path::new(path).exists() {
            tracing::error!(path, "the SQLite database file is gone");
            return Err(ApiError::database_unavailable());
        }
    }
    let pending = run_db(&state.pool, |conn| {
        crate::db::has_pending_migrations(conn).map_err(|e| {
            tracing::error!(error = %e, "the database cannot be read");
            ApiError::database_unavailable()
        })
    })
    .await?;
    if pending {
        tracing::warn!("database migrations are pending: not ready");
        return Err(ApiError::migrations_pending());
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

use sha2::Digest;

async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = &state.settings.metrics_token {
        use subtle::ConstantTimeEq;
        let sent = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let ok: bool = sha2::Sha256::digest(sent.as_bytes())
            .ct_eq(&sha2::Sha256::digest(token.expose().as_bytes()))
            .into();
        if !ok {
            use actix_web::ResponseError;
            return ApiError::unauthorized().error_response();
        }
    }
    let now = state.clock.now().naive_utc();
    let outbox = run_db(&state.pool, move |conn| {
        let oldest = crate::models::outbox::oldest_pending_at(conn)?;
        Ok(crate::metrics::OutboxStats {
            pending: crate::models::outbox::count_pending(conn)?,
            dead: crate::models::outbox::count_dead(conn)?,
            oldest_pending_age_secs: oldest.map_or(0.0, |at| {
                ((now - at).num_milliseconds().max(0) as f64) / 1000.0
            }),
        })
    })
    .await
    .ok();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body({
            let syncs = state.checkpointer.as_ref().map(|c| c.syncs_given_up());
            state
                .metrics
                .observe_process(crate::telemetry::dropped_log_lines(), syncs.unwrap_or(0));
            state.metrics.render(outbox)
        })
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI_YAML)
}

async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found("route_not_found", "no such route").error_response()
}

fn method_not_allowed(allow: &str) -> HttpResponse {
    use actix_web::ResponseError;
    let mut response = ApiError::method_not_allowed().error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}
