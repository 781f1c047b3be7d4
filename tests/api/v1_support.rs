//! What the `/v1` tests share: keys made in process, requests with them, webhook rounds, and a
//! Standard Webhooks verifier written again from the specification (not the service's code).

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use treefort_webpay::domain::api_key;
use treefort_webpay::models::api_keys::{self, NewApiKey};

use crate::helpers::TestApp;

/// A new `/v1` key of `scope` (`read` or `write`).
pub fn v1_key(app: &TestApp, scope: &str) -> String {
    let made = api_key::generate().unwrap();
    api_keys::insert(
        &mut app.conn(),
        &NewApiKey {
            key_id: made.key_id,
            name: format!("{scope} test key"),
            scope: scope.to_string(),
            secret_hash: made.secret_hash,
            created_at: app.now().naive_utc(),
        },
    )
    .unwrap();
    made.key
}

pub async fn v1_get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

pub async fn v1_post(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let request = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(key);
    match body {
        Some(body) => request.json(body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// `GET` that must answer 200: its JSON.
pub async fn v1_json(app: &TestApp, key: &str, path: &str) -> Value {
    let response = v1_get(app, key, path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// Every event, oldest first, through the API's pages.
pub async fn all_events(app: &TestApp, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => "/v1/events?limit=100".to_string(),
            Some(a) => format!("/v1/events?limit=100&startingAfter={a}"),
        };
        let page = v1_json(app, key, &path).await;
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["nextStartingAfter"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    events.reverse();
    events
}

/// The event types, oldest first.
pub async fn event_types(app: &TestApp, key: &str) -> Vec<String> {
    all_events(app, key)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// Runs webhook deliveries until none is due or in flight.
pub async fn deliver_webhooks(app: &TestApp) {
    treefort_webpay::worker::deliver_webhooks(&app.state).await;
}

/// A webhook receiver answering every POST to `/hook` with `status`.
pub async fn receiver(status: u16) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status).set_body_string("thanks"))
        .mount(&server)
        .await;
    server
}

/// Registers an endpoint through the API; answers (id, secret).
pub async fn add_endpoint(
    app: &TestApp,
    key: &str,
    url: &str,
    events: Option<&[&str]>,
) -> (i64, String) {
    let mut body = serde_json::json!({ "url": url });
    if let Some(events) = events {
        body["events"] = events.into();
    }
    let response = v1_post(app, key, "/v1/webhook-endpoints", Some(&body)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let added: Value = response.json().await.unwrap();
    (
        added["id"].as_i64().unwrap(),
        added["secret"].as_str().unwrap().to_string(),
    )
}

/// Standard Webhooks verification, as the specification describes it (not the service's code):
/// the receiver example of docs/integration.md in `verify` (as rustfmt lays it out).
pub fn verify_standard_webhook(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
    now: i64,
) -> bool {
    verify(secret, id, timestamp, signatures, body, now)
}

// From docs/integration.md, "Verifying a delivery, in Rust".
/// `secret` is the endpoint's `whsec_…`; the others are the webhook-* headers, the raw body and
/// the current Unix time.
fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    // More than 5 minutes away: a replay (or a wrong clock).
    if !timestamp
        .parse::<i64>()
        .is_ok_and(|t| t.abs_diff(now) <= 300)
    {
        return false;
    }
    signatures.split(' ').any(|s| {
        let Some(given) = s.strip_prefix("v1,").and_then(|b| STANDARD.decode(b).ok()) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&given).is_ok() // constant-time
    })
}
