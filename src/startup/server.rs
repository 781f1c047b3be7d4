//! The HTTP server: its middleware (limits, the CSRF check, bodies read in time, request metrics
//! and logs) around the routes, with bounded connections and timeouts.

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::http::StatusCode;
use actix_web::{error::InternalError, web, App, HttpResponse, HttpServer};

use super::routes::routes;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{api, pages};

pub(super) fn http_server(
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
                let refused = refusal(&req);
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
            // Outermost: the request's id and span, and once answered its log line and metrics.
            .wrap(actix_web::middleware::from_fn(trace_request))
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

/// The answer a request gets before any handler: 429 over a rate limit, 415 for a Treefort body
/// in another charset, or the refusal of a shopper form another site posted (CSRF).
fn refusal(req: &actix_web::dev::ServiceRequest) -> Option<HttpResponse> {
    let state = req.app_data::<web::Data<AppState>>()?;
    if let Some(refused) = rate_limited(req, state) {
        return Some(refused);
    }
    if req.path().starts_with("/treefort/") && api::declares_other_charset(req) {
        use actix_web::ResponseError;
        return Some(ApiError::unsupported_media_type().error_response());
    }
    let page_form = req.method() == actix_web::http::Method::POST
        && (req.path().starts_with("/checkout/")
            || req.path().starts_with("/billing/")
            || req.path().starts_with("/simulator/"));
    (page_form && pages::is_cross_site(req.headers(), &state.settings.public_base_url))
        .then(|| pages::cross_site_page(state.gateway.is_test_mode()))
}

/// Every request's telemetry, in one middleware: its id (`telemetry::request_id`), a span that
/// names it with the method and the route pattern (never the path: it carries tokens), and once
/// it is answered one log line, its metrics and the id sent back in `X-Request-Id`.
async fn trace_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let started = Instant::now();
    let id = crate::telemetry::request_id(req.headers());
    let route = req.match_pattern();
    let route = route.as_deref().unwrap_or("unmatched");
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route,
    );
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed.as_millis() as u64, "request"));
    if let Some(metrics) = metrics {
        metrics.observe_request(res.request().method().as_str(), route, status, elapsed);
    }
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    Ok(res)
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
    } else if path.starts_with("/checkout/")
        || path.starts_with("/billing/")
        || path.starts_with("/email-links/")
    {
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
