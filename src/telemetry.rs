//! Request telemetry: every request runs in a span (`tracing-actix-web`) that carries its request
//! id, method and route pattern, so every log line written while serving it names the request;
//! the id is sent back in `X-Request-Id`. Never the path or query: those carry session tokens.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// What the span of a request names, kept in the request's extensions for the request line,
/// the metrics and `X-Request-Id` (the route pattern is matched once per request).
#[derive(Clone)]
pub struct RequestInfo {
    /// As logged and sent back in `X-Request-Id`.
    pub id: String,
    /// The route pattern (`/checkout/{token}`), or `unmatched`: never the path.
    pub route: String,
}

/// A caller's own `X-Request-Id` (a proxy's, a client's) is kept when it is a plain token, so
/// the same id follows a request through every system; anything else is replaced.
static CALLER_ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^[A-Za-z0-9._:-]{8,64}$").expect("valid pattern")
});

/// The span of one request: `request{request_id=… method=… route=…}`.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let from_caller = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| CALLER_ID.is_match(v))
            .map(str::to_string);
        let id = from_caller.unwrap_or_else(|| {
            request
                .extensions()
                .get::<RequestId>()
                .map(|id| id.to_string())
                .unwrap_or_default()
        });
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = %route,
        );
        request.extensions_mut().insert(RequestInfo { id, route });
        span
    }

    fn on_request_end<B: MessageBody>(
        _span: Span,
        _outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        // One line per request is written by the service's own middleware, inside this span.
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_caller_ids_are_kept() {
        for good in [
            "0b6a3c5e-1f2d-4c3b-9a8e-7d6c5b4a3f21",
            "req_12345678",
            "abc.def:12",
        ] {
            assert!(super::CALLER_ID.is_match(good), "{good}");
        }
        for bad in [
            "short",
            "has space here",
            "a\nb-injected-line",
            &"x".repeat(65),
        ] {
            assert!(!super::CALLER_ID.is_match(bad), "{bad}");
        }
    }
}
