//! openapi.yaml is in step with the server: it documents exactly the routes the server has, and
//! every JSON answer the Treefort routes give validates against the schema documented for its
//! status.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use treefort_webpay::services::promo::PromoInput;
use treefort_webpay::startup::{OPENAPI_YAML, ROUTES};

use crate::helpers::*;

fn spec() -> Value {
    serde_norway::from_str(OPENAPI_YAML).expect("openapi.yaml is valid YAML")
}

fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            let target = spec
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(spec, target)
        }
        None => node,
    }
}

/// Checks `value` against a schema (the subset of OpenAPI 3.0 this document uses).
fn check(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| check(spec, o, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {matching} oneOf branches match {value}"))
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let object = value
                .as_object()
                .ok_or(format!("{at}: expected an object, got {value}"))?;
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap();
                if !object.contains_key(name) {
                    return Err(format!("{at}: missing required {name}"));
                }
            }
            for (name, field) in object {
                match properties.and_then(|p| p.get(name)) {
                    Some(field_schema) => {
                        check(spec, field_schema, field, &format!("{at}.{name}"))?
                    }
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{at}: undocumented field {name}"));
                    }
                    None => {}
                }
            }
            Ok(())
        }
        Some("array") => {
            let items = value.as_array().ok_or(format!("{at}: expected an array"))?;
            for (i, item) in items.iter().enumerate() {
                check(spec, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        Some("string") if !value.is_string() => {
            Err(format!("{at}: expected a string, got {value}"))
        }
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            Err(format!("{at}: expected an integer, got {value}"))
        }
        Some("boolean") if !value.is_boolean() => {
            Err(format!("{at}: expected a boolean, got {value}"))
        }
        _ => Ok(()),
    }
}

#[test]
fn the_document_lists_exactly_the_routes_the_server_has() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let mut served: BTreeSet<String> = ROUTES.iter().map(|(m, p)| format!("{m} {p}")).collect();
    served.insert("GET /openapi.yaml".into());
    assert_eq!(documented, served);
    for (m, p) in ROUTES.iter().filter(|(_, p)| p.starts_with("/treefort/")) {
        let operation = &spec["paths"][p][m.to_lowercase()];
        assert_eq!(operation["security"], json!([{"providerKey": []}]), "{p}");
        assert!(
            operation["responses"]["401"].is_object(),
            "{p} documents 401"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["providerKey"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn every_treefort_answer_matches_its_documented_schema() {
    let app = spawn_app_with(|o| {
        o.set("TREEFORT_TIMEOUT_MS", "1000");
    })
    .await;
    let spec = spec();
    app.add_plan(1, 0);
    app.add_plan(2, 0);
    app.treefort_ok().await;
    app.add_promo(PromoInput {
        code: "PCT".into(),
        percent_off: Some(10),
        ..Default::default()
    });
    app.add_promo(PromoInput {
        code: "AMT".into(),
        amount_off: Some(100),
        currency: Some("USD".into()),
        divisor: Some(100),
        ..Default::default()
    });
    app.subscribed_user("subscribed", 1).await;

    let checkout = checkout_body("new", 1);
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "/treefort/subscription-plan",
            json!({"subscriptionPlanId": 1}),
            200,
        ),
        (
            "/treefort/subscription-plan",
            json!({"subscriptionPlanId": 404}),
            404,
        ),
        ("/treefort/subscription-plan", json!({}), 400),
        ("/treefort/checkout-session", checkout.clone(), 200),
        (
            "/treefort/checkout-session",
            checkout_body("subscribed", 1),
            409,
        ),
        (
            "/treefort/checkout-session",
            json!({"user": user("x"), "locale": "en", "subscriptionPlanId": 1, "successUrl": "x", "cancelUrl": "y"}),
            400,
        ),
        (
            "/treefort/billing-portal-session",
            json!({"user": user("x"), "locale": "en", "backUrl": "https://a.example/"}),
            200,
        ),
        (
            "/treefort/validate-promo-code",
            json!({"subscriptionPlanIds": [1], "code": "pct"}),
            200,
        ),
        (
            "/treefort/validate-promo-code",
            json!({"subscriptionPlanIds": [1], "code": "amt"}),
            200,
        ),
        (
            "/treefort/validate-promo-code",
            json!({"subscriptionPlanIds": [1], "code": "no-pe"}),
            200,
        ),
        (
            "/treefort/cancel-subscription",
            json!({"userId": "subscribed", "subscriptionPlanId": 1}),
            200,
        ),
        (
            "/treefort/cancel-subscription",
            json!({"userId": "nobody", "subscriptionPlanId": 1}),
            404,
        ),
    ];
    for (route, body, expected) in cases {
        let response = app.post_treefort(route, &body).await;
        let status = response.status().as_u16();
        assert_eq!(status, expected, "{route} {body}");
        let answer: Value = response.json().await.unwrap();
        let documented = &spec["paths"][route]["post"]["responses"][status.to_string()];
        assert!(documented.is_object(), "{route} does not document {status}");
        let schema = &resolve(&spec, documented)["content"]["application/json"]["schema"];
        check(&spec, schema, &answer, route).unwrap_or_else(|e| panic!("{route} {status}: {e}"));
    }
    // The checker itself rejects what breaks the contract.
    let plan_schema = json!({"$ref": "#/components/schemas/SubscriptionPlanResponse"});
    assert!(check(&spec, &plan_schema, &json!({"subscriptionPlanId": 1}), "x").is_err());
    let promo_schema = json!({"$ref": "#/components/schemas/ValidatePromoCodeResponse"});
    assert!(check(
        &spec,
        &promo_schema,
        &json!({"type": "invalid", "extra": 1}),
        "x"
    )
    .is_err());
}

#[tokio::test]
async fn the_server_serves_the_document_it_was_built_with() {
    let app = spawn_app().await;
    let served = app
        .get(&format!("{}/openapi.yaml", app.address))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(served, OPENAPI_YAML);
}

#[tokio::test]
async fn every_listed_route_is_really_served() {
    let app = spawn_app().await;
    let token = "A".repeat(43);
    for (method, path) in ROUTES {
        let url = format!("{}{}", app.address, path.replace("{token}", &token));
        let request = match method {
            "GET" => app.client.get(&url),
            other => app
                .client
                .request(reqwest::Method::from_bytes(other.as_bytes()).unwrap(), &url)
                .bearer_auth(API_KEY)
                .json(&json!({})),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("route_not_found"),
            "{method} {path} is not routed ({status})"
        );
        assert_ne!(status, 405, "{method} {path}");
    }
}
