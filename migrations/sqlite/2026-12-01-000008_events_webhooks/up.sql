-- Lifecycle events (the source of GET /v1/events and of outbound webhooks), written in the same
-- transaction as the change they report; the app owner's webhook endpoints, one delivery per event
-- and endpoint, every attempt; and the Idempotency-Key records of /v1 writes.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY NOT NULL,
    public_id       TEXT NOT NULL UNIQUE,            -- evt_…, the webhook-id of its deliveries
    event_type      TEXT NOT NULL,                   -- subscription.created, payment.succeeded, …
    user_id         TEXT NOT NULL,
    subscription_id BIGINT,
    payment_id      BIGINT,
    data            TEXT NOT NULL,                   -- JSON: the subscription or payment after the change
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX events_by_subscription ON events (subscription_id, id);

CREATE TABLE webhook_endpoints (
    id                    INTEGER PRIMARY KEY NOT NULL,
    url                   TEXT NOT NULL,
    description           TEXT,
    event_types           TEXT,                      -- comma-separated; NULL: every type
    -- The signing secret is HMAC(WEBHOOK_SIGNING_KEY, salt): the database alone cannot sign.
    secret_salt           TEXT NOT NULL,
    previous_secret_salt  TEXT,                      -- still signs until previous_secret_expires_at
    previous_secret_expires_at TIMESTAMP,
    created_at            TIMESTAMP NOT NULL,
    disabled_at           TIMESTAMP,
    disabled_reason       TEXT,                      -- 'by operator' or why it was disabled
    failing_since         TIMESTAMP,                 -- first failed attempt since the last success
    last_success_at       TIMESTAMP,
    deleted_at            TIMESTAMP                  -- deleted: hidden, nothing sent; history kept
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY NOT NULL,
    endpoint_id     BIGINT NOT NULL REFERENCES webhook_endpoints (id),
    event_id        BIGINT NOT NULL REFERENCES events (id),
    ordering_key    TEXT NOT NULL,                   -- the subscription: delivered in order within it
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_by       TEXT,
    locked_until    TIMESTAMP,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, status, id);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id               INTEGER PRIMARY KEY NOT NULL,
    delivery_id      BIGINT NOT NULL REFERENCES webhook_deliveries (id),
    endpoint_id      BIGINT NOT NULL REFERENCES webhook_endpoints (id),
    event_id         BIGINT NOT NULL REFERENCES events (id),
    attempted_at     TIMESTAMP NOT NULL,
    status_code      INTEGER,                        -- NULL: no HTTP answer (timeout, refused)
    duration_ms      BIGINT NOT NULL,
    error            TEXT,
    response_excerpt TEXT                            -- the first 200 characters of the answer
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, id);

CREATE TABLE idempotency_keys (
    id            INTEGER PRIMARY KEY NOT NULL,
    api_key_id    BIGINT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,                     -- SHA-256 of method, path and body
    status_code   INTEGER,                           -- NULL while the first request runs
    response_body TEXT,
    created_at    TIMESTAMP NOT NULL,
    UNIQUE (api_key_id, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
