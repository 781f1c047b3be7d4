//! Every route the service answers, by group (Treefort's, the shopper pages, `/v1`, operations),
//! each answering other methods with 405 and `Allow`, and the small handlers of the operations
//! routes.

use actix_web::{web, HttpResponse, Route};

use super::OPENAPI_YAML;
use crate::db::run_db;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{api, pages};

/// Every route the service answers. `tests/api/openapi.rs` checks this list against openapi.yaml.
pub const ROUTES: [(&str, &str); 51] = [
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
    ("GET", "/email-links/{token}"),
    ("POST", "/webhooks/stripe"),
    ("GET", "/assets/card.js"),
    ("GET", "/v1/users/{userId}/entitlement"),
    ("POST", "/v1/users/{userId}/launch-tokens"),
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
    ("GET", "/.well-known/jwks.json"),
];

/// Mounts every route; anything else is 404. Each group with a dynamic segment is a scope under
/// its static prefix, so a request is matched only against its own group's patterns (actix's
/// router tries a pattern with `{…}` by regular expression, one after another in mounting order:
/// unscoped, `/healthz` paid for 35 of them). The static routes come first.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    operations(cfg);
    gateway_and_assets(cfg);
    cfg.service(web::scope("/treefort").configure(treefort))
        .service(web::scope("/v1").configure(v1).configure(v1_events))
        .service(web::scope("/checkout").configure(checkout_pages))
        .service(web::scope("/billing").configure(billing_pages))
        .service(
            web::scope("/email-links")
                .service(get("/{token}", web::get().to(pages::email_links::open))),
        )
        .default_service(web::to(not_found));
}

/// A resource answering `routes` by method, and every other method with 405 and the `Allow`
/// header (RFC 9110).
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

fn get(path: &'static str, route: Route) -> actix_web::Resource {
    resource(path, vec![("GET", route)])
}

fn post(path: &'static str, route: Route) -> actix_web::Resource {
    resource(path, vec![("POST", route)])
}

/// The five routes Treefort calls.
fn treefort(cfg: &mut web::ServiceConfig) {
    cfg.service(post(
        "/subscription-plan",
        web::post().to(api::subscription_plan::handle),
    ))
    .service(post(
        "/checkout-session",
        web::post().to(api::checkout_session::handle),
    ))
    .service(post(
        "/billing-portal-session",
        web::post().to(api::billing_portal_session::handle),
    ))
    .service(post(
        "/cancel-subscription",
        web::post().to(api::cancel_subscription::handle),
    ))
    .service(post(
        "/validate-promo-code",
        web::post().to(api::validate_promo_code::handle),
    ));
}

/// The shopper's checkout pages (under `/checkout`).
fn checkout_pages(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/{token}",
        vec![
            ("GET", web::get().to(pages::checkout::show)),
            ("POST", web::post().to(pages::checkout::pay)),
        ],
    ))
    .service(post(
        "/{token}/card-setup",
        web::post().to(pages::checkout::card_setup),
    ))
    .service(post(
        "/{token}/confirm",
        web::post().to(pages::checkout::confirm),
    ))
    .service(get(
        "/{token}/activation",
        web::get().to(pages::checkout::activation),
    ));
}

/// The shopper's billing portal (under `/billing`).
fn billing_pages(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/{token}", web::get().to(pages::billing::show)))
        .service(post(
            "/{token}/cancel",
            web::post().to(pages::billing::cancel),
        ))
        .service(post(
            "/{token}/resume",
            web::post().to(pages::billing::resume),
        ))
        .service(post(
            "/{token}/card-setup",
            web::post().to(pages::billing::card_setup),
        ))
        .service(post(
            "/{token}/card",
            web::post().to(pages::billing::replace_card),
        ))
        .service(post(
            "/{token}/confirm-payment",
            web::post().to(pages::billing::confirm_payment),
        ));
}

/// The gateway's webhook and the pages' script (static paths).
fn gateway_and_assets(cfg: &mut web::ServiceConfig) {
    cfg.service(
        post("/webhooks/stripe", web::post().to(api::webhooks::stripe))
            .app_data(web::PayloadConfig::new(api::webhooks::WEBHOOK_LIMIT)),
    )
    .service(get("/assets/card.js", web::get().to(pages::card_js)));
}

/// The app owner's `/v1` API: entitlement, subscriptions, payments, plans and promo codes.
fn v1(cfg: &mut web::ServiceConfig) {
    cfg.service(get(
        "/users/{userId}/entitlement",
        web::get().to(api::v1::entitlement::show),
    ))
    .service(post(
        "/users/{userId}/launch-tokens",
        web::post().to(api::v1::launch_tokens::create),
    ))
    .service(post(
        "/subscriptions/{id}/cancel",
        web::post().to(api::v1::subscriptions::cancel),
    ))
    .service(post(
        "/subscriptions/{id}/resume",
        web::post().to(api::v1::subscriptions::resume),
    ))
    .service(get(
        "/subscriptions",
        web::get().to(api::v1::subscriptions::list),
    ))
    .service(get(
        "/subscriptions/{id}",
        web::get().to(api::v1::subscriptions::show),
    ))
    .service(get("/payments", web::get().to(api::v1::payments::list)))
    .service(post(
        "/payments/{id}/refund",
        web::post().to(api::v1::payments::refund),
    ))
    .service(resource(
        "/plans",
        vec![
            ("GET", web::get().to(api::v1::plans::list)),
            ("POST", web::post().to(api::v1::plans::create)),
        ],
    ))
    .service(resource(
        "/plans/{id}",
        vec![
            ("GET", web::get().to(api::v1::plans::show)),
            ("PATCH", web::patch().to(api::v1::plans::update)),
        ],
    ))
    .service(resource(
        "/promo-codes",
        vec![
            ("GET", web::get().to(api::v1::promo_codes::list)),
            ("POST", web::post().to(api::v1::promo_codes::create)),
        ],
    ))
    .service(get(
        "/promo-codes/{code}",
        web::get().to(api::v1::promo_codes::show),
    ))
    .service(post(
        "/promo-codes/{code}/disable",
        web::post().to(api::v1::promo_codes::disable),
    ));
}

/// The app owner's events and webhook endpoints (`/v1`).
fn v1_events(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/events", web::get().to(api::v1::events::list)))
        .service(get("/events/{id}", web::get().to(api::v1::events::show)))
        .service(post(
            "/events/{id}/redeliver",
            web::post().to(api::v1::events::redeliver),
        ))
        .service(resource(
            "/webhook-endpoints",
            vec![
                ("GET", web::get().to(api::v1::webhook_endpoints::list)),
                ("POST", web::post().to(api::v1::webhook_endpoints::create)),
            ],
        ))
        .service(resource(
            "/webhook-endpoints/{id}",
            vec![
                ("GET", web::get().to(api::v1::webhook_endpoints::show)),
                (
                    "DELETE",
                    web::delete().to(api::v1::webhook_endpoints::delete),
                ),
            ],
        ))
        .service(post(
            "/webhook-endpoints/{id}/disable",
            web::post().to(api::v1::webhook_endpoints::disable),
        ))
        .service(post(
            "/webhook-endpoints/{id}/enable",
            web::post().to(api::v1::webhook_endpoints::enable),
        ))
        .service(post(
            "/webhook-endpoints/{id}/roll-secret",
            web::post().to(api::v1::webhook_endpoints::roll_secret),
        ))
        .service(get(
            "/webhook-endpoints/{id}/attempts",
            web::get().to(api::v1::webhook_endpoints::attempts),
        ));
}

/// The home page, health, metrics and the contract.
fn operations(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/", web::get().to(home)))
        .service(get("/healthz", web::get().to(healthz)))
        .service(get("/readyz", web::get().to(readyz)))
        .service(get("/metrics", web::get().to(metrics)))
        .service(get("/openapi.yaml", web::get().to(openapi)))
        .service(get(
            "/.well-known/jwks.json",
            web::get().to(api::v1::launch_tokens::jwks),
        ));
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
