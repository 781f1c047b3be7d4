//! `GET /v1/events`: one event per change, of the change's type, holding the state after it,
//! written with the change (a change that did not happen has none); newest first, with a cursor
//! that rows added meanwhile never shift.

use std::collections::HashSet;

use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{at, error_code, spawn_app_with, TestApp};
use crate::v1_support::{all_events, event_types, v1_get, v1_json, v1_key, v1_post};

const RENEWAL_DECLINES: &str = "4000000000000341";

async fn app_at(start: &str) -> TestApp {
    let app = spawn_app_with(|o| o.clock_start = Some(at(start))).await;
    app.add_plan(1, 0);
    app.add_plan_priced(2, 0, "USD", 1999, 100);
    app.treefort_ok().await;
    app
}

fn of_subscription(events: &[Value], id: i64) -> Vec<&str> {
    events
        .iter()
        .filter(|e| {
            let data = &e["data"];
            data["subscription"]["id"] == id || data["payment"]["subscriptionId"] == id
        })
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

fn last_of<'a>(events: &'a [Value], event_type: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} event"))
}

#[tokio::test]
async fn each_change_records_one_event_of_its_type_with_the_state_after_it() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    let key = v1_key(&app, "write");
    app.subscribed_user("u1", 1).await;
    let u1 = app.subscription("u1").id;
    app.advance_to(at("2027-02-01T00:00:00Z"));
    app.run_worker().await;
    let canceled = v1_post(&app, &key, &format!("/v1/subscriptions/{u1}/cancel"), None).await;
    assert_eq!(canceled.status(), 200);
    let resumed = v1_post(&app, &key, &format!("/v1/subscriptions/{u1}/resume"), None).await;
    assert_eq!(resumed.status(), 200);
    let switch = app.checkout_url("u1", 2, None).await;
    app.confirm_switch(&switch).await;
    let first_payment = v1_json(&app, &key, &format!("/v1/payments?subscriptionId={u1}")).await
        ["data"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let refunded = v1_post(
        &app,
        &key,
        &format!("/v1/payments/{first_payment}/refund"),
        None,
    )
    .await;
    assert_eq!(refunded.status(), 200);

    let url = app.checkout_url("u2", 1, None).await;
    assert_eq!(app.pay(&url, RENEWAL_DECLINES).await.status(), 303);
    let u2 = app.subscription("u2").id;
    for day in [
        "2027-03-01T00:00:00Z",
        "2027-03-02T00:00:00Z",
        "2027-03-03T12:00:00Z",
        "2027-03-04T00:00:00Z",
    ] {
        app.advance_to(at(day));
        app.run_worker().await;
    }

    let events = all_events(&app, &key).await;
    assert_eq!(
        of_subscription(&events, u1),
        [
            "subscription.created",
            "payment.succeeded",
            "payment.succeeded",
            "subscription.renewed",
            "subscription.canceled",
            "subscription.resumed",
            "subscription.plan_changed",
            "payment.refunded",
            "payment.succeeded",
            "subscription.renewed",
        ]
    );
    assert_eq!(
        of_subscription(&events, u2),
        [
            "subscription.created",
            "payment.succeeded",
            "payment.failed",
            "subscription.past_due",
            "payment.failed",
            "payment.failed",
            "subscription.deactivated",
        ]
    );
    // Each holds the subscription or payment as the change left it.
    let renewed = &events[3]["data"]["subscription"];
    assert_eq!(renewed["currentPeriodEndsAt"], "2027-03-01T00:00:00.000Z");
    assert!(
        last_of(&events, "subscription.canceled")["data"]["subscription"]["canceledAt"].is_string()
    );
    assert!(
        last_of(&events, "subscription.resumed")["data"]["subscription"]["canceledAt"].is_null()
    );
    let switched = last_of(&events, "subscription.plan_changed");
    assert_eq!(switched["data"]["subscription"]["pendingPlanId"], 2);
    assert_eq!(
        switched["data"]["planChange"],
        json!({"fromPlanId": 1, "toPlanId": 2, "effectiveAt": "2027-03-01T00:00:00.000Z"})
    );
    let refund = last_of(&events, "payment.refunded");
    assert_eq!(refund["data"]["payment"]["id"], first_payment);
    assert_eq!(refund["data"]["payment"]["refundedAmount"], 999);
    let declined = last_of(&events, "payment.failed");
    assert_eq!(declined["data"]["payment"]["status"], "declined");
    assert_eq!(declined["data"]["payment"]["userId"], "u2");
    let ended = last_of(&events, "subscription.deactivated");
    assert_eq!(ended["data"]["subscription"]["status"], "ended");
    assert!(ended["data"]["subscription"]["deactivatedAt"].is_string());
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
        assert!(e["createdAt"].is_string());
    }
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    // One event by id, and the filters.
    let one = v1_json(
        &app,
        &key,
        &format!("/v1/events/{}", events[0]["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one, events[0]);
    let paid = v1_json(&app, &key, "/v1/events?type=payment.succeeded").await;
    assert_eq!(paid["data"].as_array().unwrap().len(), 4);
    let of_u2 = v1_json(&app, &key, "/v1/events?userId=u2&limit=100").await;
    assert_eq!(of_u2["data"].as_array().unwrap().len(), 7);
    let by_sub = v1_json(
        &app,
        &key,
        &format!("/v1/events?subscriptionId={u2}&limit=100"),
    )
    .await;
    assert_eq!(by_sub["data"], of_u2["data"]);
    assert_eq!(
        error_code(v1_get(&app, &key, "/v1/events?type=subscription.exploded").await).await,
        (400, "invalid_query".into())
    );
    assert_eq!(
        error_code(v1_get(&app, &key, "/v1/events/evt_nope").await).await,
        (404, "event_not_found".into())
    );
}

#[tokio::test]
async fn a_change_that_did_not_happen_records_no_event() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    let key = v1_key(&app, "write");
    app.subscribed_user("u1", 1).await;
    let id = app.subscription("u1").id;
    let before = event_types(&app, &key).await;
    // Treefort refuses the cancel: nothing changes, so there is nothing to tell.
    Mock::given(method("PATCH"))
        .and(path_regex("^/v1/subscriptions/[^/]+$"))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&app.treefort)
        .await;
    let refused = v1_post(&app, &key, &format!("/v1/subscriptions/{id}/cancel"), None).await;
    assert_eq!(refused.status(), 502);
    assert_eq!(event_types(&app, &key).await, before);
    // A declined first payment makes no subscription, so no subscription event either.
    let url = app.checkout_url("u2", 1, None).await;
    assert_eq!(
        app.pay(&url, crate::helpers::DECLINED_CARD).await.status(),
        402
    );
    assert_eq!(event_types(&app, &key).await, before);
}

#[tokio::test]
async fn event_pages_neither_skip_nor_repeat_when_events_arrive_between_them() {
    let app = app_at("2027-01-01T00:00:00Z").await;
    let key = v1_key(&app, "read");
    for n in 0..5 {
        app.subscribed_user(&format!("u{n}"), 1).await;
    }
    let first = v1_json(&app, &key, "/v1/events?limit=3").await;
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first["hasMore"], true);
    let mut after = first["nextStartingAfter"].as_str().unwrap().to_string();
    let mut late = 0;
    loop {
        // Newer events arrive between pages; they are not on later pages (those go back in time).
        app.subscribed_user(&format!("late{late}"), 1).await;
        late += 1;
        let page = v1_json(
            &app,
            &key,
            &format!("/v1/events?limit=3&startingAfter={after}"),
        )
        .await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match page["nextStartingAfter"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert_eq!(
        seen.len(),
        10,
        "the 10 events there were when paging began, each once"
    );
    assert!(late > 1);
    assert_eq!(
        error_code(v1_get(&app, &key, "/v1/events?startingAfter=evt_0000").await).await,
        (400, "invalid_query".into())
    );
}
