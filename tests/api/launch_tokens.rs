//! Launch tokens: minted with a write key, verified by PyJWT (another implementation than the one
//! that signs) from the JWKS (EdDSA) or with the shared secret (HS256); tampered, expired,
//! wrong-audience and wrong-issuer tokens refused by it; rotation keeps tokens in flight
//! verifying until the old key leaves the JWKS; bad requests get a 400 with a stable code.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{error_code, eventually, plan_upsert_args, spawn_app_with, TestApp};
use crate::v1_support::{all_events, v1_key, v1_post};

const SECRET: &str = "launch-token-secret-for-tests-0123456789";

async fn app_with(configure: impl FnOnce(&mut crate::helpers::Options)) -> TestApp {
    let app = spawn_app_with(configure).await;
    app.treefort_ok().await;
    app.cli_ok(&plan_upsert_args(
        "1",
        "Pro",
        &[
            "--feature",
            "advancedReporting=true",
            "--feature",
            "maxEmployees=50",
        ],
    ));
    app
}

async fn mint(app: &TestApp, key: &str, user: &str, body: Value) -> reqwest::Response {
    v1_post(
        app,
        key,
        &format!("/v1/users/{user}/launch-tokens"),
        Some(&body),
    )
    .await
}

/// A token that must be minted: (token, the answer).
async fn minted(app: &TestApp, key: &str, user: &str, body: Value) -> (String, Value) {
    let response = mint(app, key, user, body).await;
    let (status, cache) = (
        response.status(),
        response.headers().get("cache-control").cloned(),
    );
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    assert_eq!(cache.unwrap(), "no-store");
    let answer: Value = serde_json::from_str(&text).unwrap();
    (answer["token"].as_str().unwrap().to_string(), answer)
}

/// PyJWT's verdict on `request` (see verify_launch_token.py).
async fn pyjwt(request: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/verify_launch_token.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "the verifier answered nothing readable: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    })
    .await
    .unwrap()
}

/// `token` as a product that knows this service's JWKS checks it (with `extra` fields).
async fn verify_eddsa(app: &TestApp, token: &str, extra: Value) -> Value {
    let mut request = json!({
        "token": token,
        "age": 0,
        "issuer": app.state.settings.public_base_url,
        "jwks_url": format!("{}/.well-known/jwks.json", app.address),
    });
    request
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    pyjwt(request).await
}

async fn jwks(app: &TestApp) -> Value {
    let response = app
        .get(&format!("{}/.well-known/jwks.json", app.address))
        .await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    let want = match body["keys"].as_array().unwrap().is_empty() {
        true => "no-store",
        false => "public, max-age=300",
    };
    assert_eq!(cache, want);
    body
}

fn header_of(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

#[tokio::test]
async fn an_eddsa_token_verifies_with_pyjwt_from_the_jwks_and_says_what_the_subscription_gives() {
    let app = app_with(|_| {}).await;
    let key = v1_key(&app, "write");
    assert_eq!(
        jwks(&app).await,
        json!({"keys": []}),
        "no key before the first token"
    );
    app.subscribed_user("u1", 1).await;
    let before = chrono::Utc::now().timestamp();
    let (token, answer) = minted(
        &app,
        &key,
        "u1",
        json!({"audience": "reports", "ttlSeconds": 120}),
    )
    .await;

    let published = jwks(&app).await;
    let keys = published["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (
            keys[0]["kty"].clone(),
            keys[0]["crv"].clone(),
            keys[0]["alg"].clone()
        ),
        (json!("OKP"), json!("Ed25519"), json!("EdDSA"))
    );
    let verdict = verify_eddsa(&app, &token, json!({"audience": "reports"})).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["header"]["alg"], "EdDSA");
    assert_eq!(verdict["header"]["kid"], keys[0]["kid"]);
    let claims = &verdict["claims"];
    assert_eq!(claims["iss"], app.state.settings.public_base_url.as_str());
    assert_eq!(
        (claims["sub"].clone(), claims["aud"].clone()),
        (json!("u1"), json!("reports"))
    );
    assert_eq!(claims["email"], "u1@example.com", "known from the checkout");
    assert!(claims["name"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert!(
        (before - 5..=before + 60).contains(&iat),
        "real time: {iat} vs {before}"
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 120);
    assert_eq!(
        claims["nbf"].as_i64().unwrap(),
        iat - 30,
        "a little slack for slow clocks"
    );
    assert_eq!(
        answer["expiresAt"].as_str().unwrap(),
        chrono::DateTime::from_timestamp(iat + 120, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    );
    let subscription = &claims["subscription"];
    assert_eq!(
        (
            subscription["active"].clone(),
            subscription["status"].clone()
        ),
        (json!(true), json!("active"))
    );
    assert_eq!(
        (
            subscription["planId"].clone(),
            subscription["planName"].clone()
        ),
        (json!(1), json!("Pro"))
    );
    assert_eq!(
        subscription["features"],
        json!({"advancedReporting": true, "maxEmployees": 50})
    );
    assert_eq!(subscription["cancelAtPeriodEnd"], false);
    assert!(subscription["currentPeriodEndsAt"].is_string());

    // Given fields win over known ones; each token is its own (jti).
    let (other, _) = minted(
        &app,
        &key,
        "u1",
        json!({"email": "ada@work.example", "name": "Ada L."}),
    )
    .await;
    let other = verify_eddsa(&app, &other, json!({})).await;
    assert_eq!(
        (
            other["claims"]["email"].clone(),
            other["claims"]["name"].clone()
        ),
        (json!("ada@work.example"), json!("Ada L."))
    );
    assert!(other["claims"].get("aud").is_none());
    assert_ne!(other["claims"]["jti"], claims["jti"]);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);

    // An Idempotency-Key is not replayed: a retry gets a token of its own, and none is kept.
    let keyed = |n: u8| {
        app.client
            .post(format!("{}/v1/users/u1/launch-tokens", app.address))
            .bearer_auth(&key)
            .header("idempotency-key", "same-key")
            .json(&json!({"audience": format!("a{n}")}))
            .send()
    };
    let (a, b) = (keyed(1).await.unwrap(), keyed(2).await.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_ne!(a["token"], b["token"]);

    // A user never seen: a token saying so, for the product's upsell page. An empty body is fine.
    let empty = v1_post(&app, &key, "/v1/users/ghost/launch-tokens", None).await;
    assert_eq!(empty.status(), 201);
    let ghost: Value = empty.json().await.unwrap();
    let ghost = verify_eddsa(&app, ghost["token"].as_str().unwrap(), json!({})).await;
    assert_eq!(ghost["claims"]["subscription"]["status"], "none");
    assert_eq!(ghost["claims"]["subscription"]["active"], false);
    assert_eq!(ghost["claims"]["subscription"]["features"], json!({}));
    assert!(ghost["claims"].get("email").is_none());

    // Each is an event (user and audience only) and a count; no token is kept anywhere.
    let events: Vec<Value> = all_events(&app, &key)
        .await
        .into_iter()
        .filter(|e| e["type"] == "launch_token.created")
        .collect();
    assert_eq!(events.len(), 5);
    assert_eq!(
        events[0]["data"],
        json!({"launchToken": {"userId": "u1", "audience": "reports"}})
    );
    assert!(app
        .metrics_text()
        .await
        .contains("treefort_webpay_launch_tokens_total{algorithm=\"EdDSA\"} 5"));
    let signature = token.rsplit('.').next().unwrap();
    let stored: Vec<String> = {
        use diesel::prelude::*;
        use treefort_webpay::schema::events;
        events::table
            .select(events::data)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert!(
        !stored.concat().contains(signature),
        "an event holds the token"
    );
    assert_eq!(
        app.count("idempotency_keys"),
        0,
        "no answer kept for a replay"
    );
}

#[tokio::test]
async fn tampered_expired_wrong_audience_and_wrong_issuer_tokens_are_refused_by_pyjwt() {
    let app = app_with(|_| {}).await;
    let key = v1_key(&app, "write");
    app.subscribed_user("u1", 1).await;
    let (token, _) = minted(
        &app,
        &key,
        "u1",
        json!({"audience": "reports", "ttlSeconds": 30}),
    )
    .await;
    assert_eq!(
        verify_eddsa(&app, &token, json!({"audience": "reports"})).await["ok"],
        true
    );

    // The claims changed (another user), the signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let refused = |v: Value| v["error"].as_str().unwrap_or("accepted").to_string();
    assert_eq!(
        refused(verify_eddsa(&app, &forged, json!({"audience": "reports"})).await),
        "InvalidSignatureError"
    );
    // 31 seconds on: the 30-second token has expired.
    assert_eq!(
        refused(verify_eddsa(&app, &token, json!({"audience": "reports", "age": 31})).await),
        "ExpiredSignatureError"
    );
    assert_eq!(
        refused(verify_eddsa(&app, &token, json!({"audience": "billing"})).await),
        "InvalidAudienceError"
    );
    assert_eq!(
        refused(
            verify_eddsa(
                &app,
                &token,
                json!({"audience": "reports", "issuer": "https://evil.example"})
            )
            .await
        ),
        "InvalidIssuerError"
    );
    // Not an HS256 token: the public key as a shared secret verifies nothing.
    let x = jwks(&app).await["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(refused(pyjwt(json!({"token": token, "issuer": app.state.settings.public_base_url, "secret": x, "audience": "reports"})).await), "InvalidAlgorithmError");
}

#[tokio::test]
async fn with_launch_token_secret_tokens_are_hs256_and_verify_with_that_secret_only() {
    let app = app_with(|o| {
        o.set("LAUNCH_TOKEN_SECRET", SECRET);
    })
    .await;
    let key = v1_key(&app, "write");
    app.subscribed_user("u1", 1).await;
    let (token, _) = minted(&app, &key, "u1", json!({"audience": "reports"})).await;
    let header = header_of(&token);
    assert_eq!(header["alg"], "HS256");
    assert!(header.get("kid").is_none());
    let check = |secret: &str, audience: &str| {
        pyjwt(
            json!({"token": token, "issuer": app.state.settings.public_base_url, "secret": secret, "audience": audience}),
        )
    };
    let verdict = check(SECRET, "reports").await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(
        verdict["claims"]["exp"].as_i64().unwrap() - verdict["claims"]["iat"].as_i64().unwrap(),
        300,
        "default ttl"
    );
    assert_eq!(
        verdict["claims"]["subscription"]["features"]["maxEmployees"],
        50
    );
    assert_eq!(
        check("another-secret-of-enough-length-0123456789", "reports").await["error"],
        "InvalidSignatureError"
    );
    assert_eq!(
        check(SECRET, "billing").await["error"],
        "InvalidAudienceError"
    );
    assert!(app
        .metrics_text()
        .await
        .contains("treefort_webpay_launch_tokens_total{algorithm=\"HS256\"} 1"));
    assert_eq!(
        jwks(&app).await,
        json!({"keys": []}),
        "no EdDSA key was needed"
    );
}

/// The kid the service signs with now (a rotation by the CLI, another process, is seen within a
/// second).
async fn signing_kid(app: &TestApp, key: &str, not: &str) -> (String, String) {
    eventually(
        &format!("a signing key other than {not:?}"),
        || async move {
            let (token, _) = minted(app, key, "u1", json!({})).await;
            let kid = header_of(&token)["kid"].as_str().unwrap().to_string();
            (kid != not).then_some((kid, token))
        },
    )
    .await
}

/// Moves key `id`'s times back by `by` (key times are the real time, so a test moves them rather
/// than wait), and tells the catalog, as any change to the keys does.
fn age_key(app: &TestApp, id: i64, by: chrono::TimeDelta) {
    use diesel::prelude::*;
    use treefort_webpay::schema::{catalog_version, signing_keys};
    let mut conn = app.conn();
    let key = signing_keys::table.filter(signing_keys::id.eq(id));
    let (made, retires): (chrono::NaiveDateTime, Option<chrono::NaiveDateTime>) = key
        .select((signing_keys::created_at, signing_keys::retires_at))
        .first(&mut *conn)
        .unwrap();
    diesel::update(key)
        .set((
            signing_keys::created_at.eq(made - by),
            signing_keys::retires_at.eq(retires.map(|t| t - by)),
        ))
        .execute(&mut *conn)
        .unwrap();
    diesel::update(catalog_version::table)
        .set(catalog_version::version.eq(catalog_version::version + 1))
        .execute(&mut *conn)
        .unwrap();
}

/// Mints until the answer has `status` (a change by the CLI, another process, or by `age_key`
/// reaches this instance's catalog within a second); answers its body.
async fn mint_until(app: &TestApp, key: &str, status: u16) -> Value {
    eventually(&format!("minting answering {status}"), || async move {
        let response = mint(app, key, "u1", json!({})).await;
        match response.status() == status {
            true => Some(response.json().await.unwrap()),
            false => None,
        }
    })
    .await
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_verifies_for_a_day() {
    let app = app_with(|_| {}).await;
    let key = v1_key(&app, "write");
    let (first, old_token) = signing_kid(&app, &key, "").await;
    let rotated = app.cli_ok(&["signing-keys", "rotate"]);
    assert!(
        rotated.contains("is in /.well-known/jwks.json now and signs launch tokens from"),
        "{rotated}"
    );
    let listed = app.cli_ok(&["signing-keys", "list"]);
    assert!(
        listed.contains("published, signs from") && listed.contains("signing"),
        "{listed}"
    );
    // Published at once, but the old key signs until every cached JWKS (5 minutes) has the new one.
    let published = eventually("the new key published at once", || async {
        let published = kids(&jwks(&app).await);
        (published.len() == 2).then_some(published)
    })
    .await;
    let second = published[0].clone();
    let (still, _) = minted(&app, &key, "u1", json!({})).await;
    assert_eq!(header_of(&still)["kid"], first.as_str());
    // 5 minutes on: the new key signs.
    age_key(&app, 2, chrono::TimeDelta::minutes(6));
    let (now_kid, new_token) = signing_kid(&app, &key, &first).await;
    assert_eq!(now_kid, second);
    assert_eq!(verify_eddsa(&app, &old_token, json!({})).await["ok"], true);
    assert_eq!(verify_eddsa(&app, &new_token, json!({})).await["ok"], true);
    let listed = app.cli_ok(&["signing-keys", "list"]);
    assert!(
        listed.contains(&format!("#2   {second}  EdDSA")) && listed.contains("signing"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("#1   {first}  EdDSA")) && listed.contains("published until"),
        "{listed}"
    );

    // 24 hours on: the old key leaves the JWKS, and its tokens no longer verify.
    age_key(&app, 1, chrono::TimeDelta::hours(24));
    eventually("the retired key leaving the JWKS", || async {
        (kids(&jwks(&app).await) == [second.clone()]).then_some(())
    })
    .await;
    assert_eq!(
        verify_eddsa(&app, &old_token, json!({})).await["error"],
        "PyJWKClientError"
    );
    assert_eq!(verify_eddsa(&app, &new_token, json!({})).await["ok"], true);
    assert!(app.cli_ok(&["signing-keys", "list"]).contains("retired"));
}

#[tokio::test]
async fn a_key_made_from_another_signing_key_is_refused_until_a_rotation_mends_it() {
    let app = app_with(|_| {}).await;
    let key = v1_key(&app, "write");
    signing_kid(&app, &key, "").await;
    let mut other = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"));
    other
        .args(["signing-keys", "rotate"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in &app.vars {
        other.env(k, v);
    }
    let made = other
        .env(
            "WEBHOOK_SIGNING_KEY",
            "a-different-signing-key-0123456789abcdef",
        )
        .output()
        .unwrap();
    assert!(made.status.success());
    // Once it would sign: 503, naming the fix.
    age_key(&app, 2, chrono::TimeDelta::minutes(6));
    let refused = mint_until(&app, &key, 503).await;
    assert_eq!(refused["error"]["code"], "not_configured");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("signing-keys rotate"));
    // A rotation with the service's own key mends it at once.
    app.cli_ok(&["signing-keys", "rotate"]);
    let mended = mint_until(&app, &key, 201).await;
    let token = mended["token"].as_str().unwrap();
    assert_eq!(header_of(token)["kid"], kids(&jwks(&app).await)[0].as_str());
    assert_eq!(verify_eddsa(&app, token, json!({})).await["ok"], true);
}

#[tokio::test]
async fn a_read_key_is_refused_and_bad_requests_get_a_400_with_a_stable_code() {
    let app = app_with(|_| {}).await;
    let read = v1_key(&app, "read");
    let write = v1_key(&app, "write");
    assert_eq!(
        error_code(mint(&app, &read, "u1", json!({})).await).await,
        (403, "insufficient_scope".into())
    );
    for (body, code) in [
        (json!({"ttlSeconds": 29}), "invalid_launch_token"),
        (json!({"ttlSeconds": 901}), "invalid_launch_token"),
        (json!({"audience": ""}), "invalid_launch_token"),
        (json!({"audience": "a\u{0}b"}), "invalid_launch_token"),
        (json!({"audience": "x".repeat(201)}), "invalid_launch_token"),
        (json!({"email": "not-an-address"}), "invalid_launch_token"),
        (json!({"name": "  "}), "invalid_launch_token"),
        (json!({"ttl": 60}), "invalid_body"),
        (json!({"ttlSeconds": "60"}), "invalid_body"),
        (json!([]), "invalid_body"),
    ] {
        assert_eq!(
            error_code(mint(&app, &write, "u1", body.clone()).await).await,
            (400, code.into()),
            "{body}"
        );
    }
    let garbage = app
        .client
        .post(format!("{}/v1/users/u1/launch-tokens", app.address))
        .bearer_auth(&write)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(garbage).await, (400, "invalid_body".into()));
    assert_eq!(app.count("events"), 0, "nothing minted, nothing recorded");

    // Neither a key to derive from nor a shared secret: 503, and it says which settings.
    let bare = app_with(|o| {
        o.unset("WEBHOOK_SIGNING_KEY");
    })
    .await;
    let key = v1_key(&bare, "write");
    let response = mint(&bare, &key, "u1", json!({})).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_configured");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("LAUNCH_TOKEN_SECRET"));
}

#[tokio::test]
async fn the_readmes_rust_example_is_printed_verbatim_and_gates_on_a_real_token() {
    let example = include_str!("readme_launch_token.rs");
    let code: String = example
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(code.trim()),
        "README.md must print tests/api/readme_launch_token.rs's code as it is"
    );

    let app = app_with(|_| {}).await;
    let key = v1_key(&app, "write");
    app.subscribed_user("u1", 1).await;
    let (token, _) = minted(&app, &key, "u1", json!({"audience": "reports"})).await;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks(&app).await).unwrap();
    let issuer = &app.state.settings.public_base_url;
    let launch =
        crate::readme_launch_token::verify_launch_token(&token, &jwks, issuer, "reports").unwrap();
    assert_eq!(launch.sub, "u1");
    assert_eq!(launch.email.as_deref(), Some("u1@example.com"));
    assert!(launch.name.is_some());
    let plan = &launch.subscription;
    assert!(plan.require_feature("advancedReporting"));
    assert!(!plan.require_feature("sso"));
    assert!(plan.check_limit("maxEmployees", 49));
    assert!(!plan.check_limit("maxEmployees", 50));
    assert!(
        !plan.check_limit("advancedReporting", 0),
        "a boolean is no limit"
    );
    assert!(
        crate::readme_launch_token::verify_launch_token(&token, &jwks, issuer, "billing").is_err()
    );
    let ghost = minted(&app, &key, "ghost", json!({"audience": "reports"}))
        .await
        .0;
    let ghost =
        crate::readme_launch_token::verify_launch_token(&ghost, &jwks, issuer, "reports").unwrap();
    assert!(!ghost.subscription.active && !ghost.subscription.require_feature("advancedReporting"));
}

#[tokio::test]
async fn launch_token_events_go_only_to_endpoints_that_list_them() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let app = app_with(|_| {}).await;
    let key = v1_key(&app, "write");
    let hooks = MockServer::start().await;
    for hook in ["/every", "/audit"] {
        Mock::given(method("POST"))
            .and(path(hook))
            .respond_with(ResponseTemplate::new(200))
            .mount(&hooks)
            .await;
    }
    let base = hooks.uri();
    crate::v1_support::add_endpoint(&app, &key, &format!("{base}/every"), None).await;
    crate::v1_support::add_endpoint(
        &app,
        &key,
        &format!("{base}/audit"),
        Some(&["launch_token.created"]),
    )
    .await;
    minted(&app, &key, "u1", json!({"audience": "reports"})).await;
    crate::v1_support::deliver_webhooks(&app).await;
    let got: Vec<(String, Value)> = hooks
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (r.url.path().to_string(), body["type"].clone())
        })
        .collect();
    assert_eq!(got, [("/audit".to_string(), json!("launch_token.created"))]);
}
