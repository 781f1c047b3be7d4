//! The floor of `bench/api.sh`: a bare actix-web server of the same version and worker count as
//! the service (actix's default, one worker a core), with one route answering a constant JSON body
//! and no middleware at all. Whatever the service adds to every request (its span and request id,
//! its log line, metrics, limits, the CSRF and charset checks, the body read) is measured against
//! this, in the same run.
//!
//!   cargo run --release --example bare_server -- 127.0.0.1:8090
//!
//! It prints the address it listens on, then serves `GET /healthz` until it is stopped.

use actix_web::{web, App, HttpResponse, HttpServer};

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string());
    let server = HttpServer::new(|| App::new().route("/healthz", web::get().to(healthz)))
        // The service's own bounds, so that only the middleware and handlers differ.
        .max_connections(1024)
        .client_request_timeout(std::time::Duration::from_secs(5))
        .bind(&address)?;
    println!("bare server listening on {address}");
    server.run().await
}
