-- Payment gateways (sandbox and Stripe): the gateway's customer, checkout attempts with their own
-- idempotency keys, 3-D Secure and refunds on payments, and the gateway's events (webhooks).
-- Keep in step with migrations/postgres and schema.rs.

-- Facts about this installation, by name. `install_id` (random, set at first start) marks what this
-- installation creates at the payment gateway, so a gateway account shared with other systems (or
-- another installation) never has its objects taken for ours.
CREATE TABLE service_settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- The gateway's customer of this user (Stripe: cus_…), created once and reused.
ALTER TABLE customers ADD COLUMN gateway_customer_ref TEXT;

-- Each payment attempt of a link is numbered: its charge key is checkout-{id}-{attempt}, so a new
-- attempt after a decline or a refund is a new charge, and a repeated attempt is the same one.
ALTER TABLE checkout_sessions ADD COLUMN payment_attempts INTEGER NOT NULL DEFAULT 0;
-- The gateway's payment of the attempt in progress, while the bank asks the shopper to authenticate.
ALTER TABLE checkout_sessions ADD COLUMN gateway_payment_ref TEXT;

-- Refunds and disputes, as the gateway reports them (amounts in the payment's own units).
ALTER TABLE payments ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN refunded_at TIMESTAMP;
ALTER TABLE payments ADD COLUMN disputed_at TIMESTAMP;
ALTER TABLE payments ADD COLUMN dispute_reason TEXT;
CREATE INDEX payments_gateway_reference ON payments (gateway_reference);

-- Events the gateway sent (Stripe webhooks), stored before they are acted on: a duplicate event id
-- is recognised and changes nothing.
CREATE TABLE gateway_events (
    id           INTEGER PRIMARY KEY NOT NULL,
    gateway      TEXT NOT NULL,
    event_id     TEXT NOT NULL UNIQUE,      -- the gateway's id (evt_…)
    event_type   TEXT NOT NULL,             -- e.g. payment_intent.succeeded
    object_id    TEXT,                      -- the id of the object it is about (pi_…, ch_…)
    payload      TEXT NOT NULL,             -- the event as received (JSON)
    received_at  TIMESTAMP NOT NULL,
    processed_at TIMESTAMP,                 -- NULL until acted on
    attempts     INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    last_error   TEXT
);
CREATE INDEX gateway_events_unprocessed ON gateway_events (processed_at, received_at);
