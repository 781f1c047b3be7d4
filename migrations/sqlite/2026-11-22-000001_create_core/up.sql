-- Core tables of treefort-webpay (SQLite). Keep in step with migrations/postgres and schema.rs.
-- Timestamps are UTC, stored as TIMESTAMP text with microseconds.

CREATE TABLE plans (
    id               BIGINT PRIMARY KEY NOT NULL,   -- Treefort's subscription plan id, set by the operator
    name             TEXT NOT NULL,
    billing_interval TEXT NOT NULL CHECK (billing_interval IN ('month', 'year')),
    interval_count   INTEGER NOT NULL CHECK (interval_count > 0),
    trial_days       INTEGER NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    grace_days       INTEGER NOT NULL DEFAULT 0 CHECK (grace_days >= 0),
    currency         TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount >= 0),
    divisor          BIGINT NOT NULL CHECK (divisor > 0),
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE promo_codes (
    id               INTEGER PRIMARY KEY NOT NULL,
    code             TEXT NOT NULL,                 -- as the operator typed it
    code_normalized  TEXT NOT NULL UNIQUE,          -- lowercase, what lookups compare
    discount_type    TEXT NOT NULL CHECK (discount_type IN ('percent', 'amount')),
    percent_off      INTEGER CHECK (percent_off BETWEEN 1 AND 100),
    amount_off       BIGINT CHECK (amount_off > 0),
    currency         TEXT,
    divisor          BIGINT CHECK (divisor > 0),
    first_time_only  BOOLEAN NOT NULL DEFAULT FALSE,
    max_redemptions  INTEGER CHECK (max_redemptions > 0),
    times_redeemed   INTEGER NOT NULL DEFAULT 0,
    expires_at       TIMESTAMP,
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    note             TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    CHECK ((discount_type = 'percent' AND percent_off IS NOT NULL AND amount_off IS NULL)
        OR (discount_type = 'amount' AND amount_off IS NOT NULL AND currency IS NOT NULL AND divisor IS NOT NULL AND percent_off IS NULL))
);

-- No rows for a code means: valid for every plan.
CREATE TABLE promo_code_plans (
    promo_code_id BIGINT NOT NULL REFERENCES promo_codes (id) ON DELETE CASCADE,
    plan_id       BIGINT NOT NULL,
    PRIMARY KEY (promo_code_id, plan_id)
);

CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL UNIQUE,        -- Treefort's user id
    email              TEXT NOT NULL,
    full_name          TEXT,
    payment_method_ref TEXT,                        -- the gateway's reference, never a card number
    card_brand         TEXT,
    card_last4         TEXT,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);

CREATE TABLE subscriptions (
    id                        INTEGER PRIMARY KEY NOT NULL,
    user_id                   TEXT NOT NULL,
    customer_id               BIGINT NOT NULL REFERENCES customers (id),
    plan_id                   BIGINT NOT NULL REFERENCES plans (id),
    promo_code_id             BIGINT REFERENCES promo_codes (id),
    treefort_subscription_id  TEXT,                 -- set once Treefort answered the POST
    current_period_started_at TIMESTAMP NOT NULL,
    current_period_ends_at    TIMESTAMP NOT NULL,
    trial_ends_at             TIMESTAMP,
    canceled_at               TIMESTAMP,
    deactivated_at            TIMESTAMP,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL
);
-- Treefort allows one subscription per user: at most one that is not deactivated.
CREATE UNIQUE INDEX subscriptions_one_live_per_user ON subscriptions (user_id) WHERE deactivated_at IS NULL;
CREATE INDEX subscriptions_user_id ON subscriptions (user_id);

CREATE TABLE checkout_sessions (
    id              INTEGER PRIMARY KEY NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,           -- SHA-256 of the URL token, hex; the token itself is never stored
    user_id         TEXT NOT NULL,
    user_email      TEXT NOT NULL,
    user_full_name  TEXT,
    locale          TEXT NOT NULL,
    plan_id         BIGINT NOT NULL REFERENCES plans (id),
    promo_code_id   BIGINT REFERENCES promo_codes (id),
    success_url     TEXT NOT NULL,
    cancel_url      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'processing', 'completed')),
    subscription_id BIGINT REFERENCES subscriptions (id),
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    completed_at    TIMESTAMP
);

-- One payment attempt at a time per user: a second link of the same user cannot charge while the
-- first is being paid (the loser is told to wait), on both backends and across instances.
CREATE UNIQUE INDEX checkout_sessions_one_payment_per_user ON checkout_sessions (user_id) WHERE status = 'processing';

CREATE TABLE portal_sessions (
    id         INTEGER PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    user_email TEXT NOT NULL,
    locale     TEXT NOT NULL,
    back_url   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE payments (
    id                  INTEGER PRIMARY KEY NOT NULL,
    customer_id         BIGINT NOT NULL REFERENCES customers (id),
    subscription_id     BIGINT REFERENCES subscriptions (id),
    checkout_session_id BIGINT REFERENCES checkout_sessions (id),
    kind                TEXT NOT NULL CHECK (kind IN ('checkout', 'renewal')),
    status              TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
    amount              BIGINT NOT NULL,            -- what was charged, after discount
    discount_amount     BIGINT NOT NULL DEFAULT 0,
    currency            TEXT NOT NULL,
    divisor             BIGINT NOT NULL,
    gateway             TEXT NOT NULL,
    gateway_reference   TEXT,
    failure_reason      TEXT,
    created_at          TIMESTAMP NOT NULL
);
CREATE INDEX payments_subscription_id ON payments (subscription_id);

CREATE TABLE promo_redemptions (
    id              INTEGER PRIMARY KEY NOT NULL,
    promo_code_id   BIGINT NOT NULL REFERENCES promo_codes (id),
    user_id         TEXT NOT NULL,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    redeemed_at     TIMESTAMP NOT NULL
);

-- Durable queue of Treefort subscription updates, written in the same transaction as the change.
CREATE TABLE treefort_outbox (
    id              INTEGER PRIMARY KEY NOT NULL,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    operation       TEXT NOT NULL CHECK (operation IN ('create', 'update')),
    body            TEXT NOT NULL,                  -- the JSON sent to Treefort
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_by       TEXT,
    locked_until    TIMESTAMP,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP
);
CREATE INDEX treefort_outbox_due ON treefort_outbox (status, next_attempt_at);
CREATE INDEX treefort_outbox_subscription ON treefort_outbox (subscription_id, id);

-- For support staff: one readable row per promo code.
CREATE VIEW promo_codes_overview AS
SELECT p.code, p.discount_type, p.percent_off, p.amount_off, p.currency, p.divisor,
       (SELECT group_concat(plan_id, ',') FROM (SELECT plan_id FROM promo_code_plans pp WHERE pp.promo_code_id = p.id ORDER BY plan_id)) AS eligible_plan_ids,
       p.first_time_only, p.max_redemptions, p.times_redeemed, p.expires_at, p.active, p.note, p.created_at
FROM promo_codes p;

CREATE VIEW promo_redemptions_overview AS
SELECT r.redeemed_at, c.code, r.user_id, r.subscription_id, s.plan_id
FROM promo_redemptions r
JOIN promo_codes c ON c.id = r.promo_code_id
JOIN subscriptions s ON s.id = r.subscription_id;
