//! The one lease rule (`db::lease`, `leased!`), tested once on the backend the suite runs on:
//! one holder at a time, a lease that runs out can be taken over, only the holder can mark the
//! row, and a row that is not available is never taken. Shown on gateway events; the outbox,
//! webhook deliveries and subscriptions use the same generated code.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use treefort_webpay::models::gateway_events::{self, NewGatewayEvent};
use treefort_webpay::schema::gateway_events as table;

use crate::helpers::spawn_app;

fn event(conn: &mut treefort_webpay::db::AnyConnection, now: NaiveDateTime) -> i64 {
    let new = NewGatewayEvent {
        gateway: "stripe".into(),
        event_id: "evt_lease".into(),
        event_type: "payment_intent.succeeded".into(),
        object_id: None,
        payload: "{}".into(),
        received_at: now,
    };
    gateway_events::insert_new(conn, &new).unwrap().unwrap()
}

fn holder(conn: &mut treefort_webpay::db::AnyConnection, id: i64) -> Option<String> {
    table::table
        .find(id)
        .select(table::locked_by)
        .first(conn)
        .unwrap()
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_runs_out_and_only_the_holder_marks_the_row() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let now = app.now().naive_utc();
    let until = now + TimeDelta::minutes(5);
    let id = event(&mut conn, now);
    assert_eq!(gateway_events::list_due(&mut conn, now, 10).unwrap(), [id]);

    assert!(gateway_events::take_lease(&mut conn, id, "a", now, until).unwrap());
    assert!(
        !gateway_events::take_lease(&mut conn, id, "b", now, until).unwrap(),
        "a held lease is not taken"
    );
    assert_eq!(holder(&mut conn, id).as_deref(), Some("a"));
    assert!(
        gateway_events::list_due(&mut conn, now, 10)
            .unwrap()
            .is_empty(),
        "a held row is not due work"
    );

    // Up to its end the lease holds; past it the row is free again, and another worker takes
    // it over.
    assert!(gateway_events::list_due(&mut conn, until, 10)
        .unwrap()
        .is_empty());
    assert!(!gateway_events::take_lease(&mut conn, id, "b", until, until).unwrap());
    let later = until + TimeDelta::seconds(1);
    assert_eq!(
        gateway_events::list_due(&mut conn, later, 10).unwrap(),
        [id]
    );
    assert!(
        gateway_events::take_lease(&mut conn, id, "b", later, later + TimeDelta::minutes(5))
            .unwrap()
    );
    assert_eq!(holder(&mut conn, id).as_deref(), Some("b"));

    // The worker whose lease ran out can no longer write; the holder can, and ends the lease.
    let mark = || {
        (
            table::processed_at.eq(Some(later)),
            gateway_events::lease_cleared(),
        )
    };
    assert!(!gateway_events::update_held(&mut conn, id, "a", mark()).unwrap());
    assert_eq!(holder(&mut conn, id).as_deref(), Some("b"));
    assert!(gateway_events::update_held(&mut conn, id, "b", mark()).unwrap());
    assert_eq!(holder(&mut conn, id), None);

    // Processed, it is no longer available: nobody takes it, lease or no lease.
    let much_later = later + TimeDelta::days(1);
    assert!(!gateway_events::take_lease(&mut conn, id, "c", much_later, much_later).unwrap());
    assert!(gateway_events::list_due(&mut conn, much_later, 10)
        .unwrap()
        .is_empty());
}
