-- Shoppers' emails: written in the transaction of their cause (or by the worker's reminder scan),
-- sent by a leased loop. `about` names the cause, so one cause never makes two emails.
CREATE TABLE emails (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    about TEXT NOT NULL,
    user_id TEXT NOT NULL,
    subscription_id BIGINT,
    payment_id BIGINT,
    to_address TEXT NOT NULL,
    locale TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    locked_by TEXT,
    locked_until TIMESTAMP,
    last_error TEXT,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX emails_about ON emails (about);
CREATE INDEX emails_due ON emails (status, next_attempt_at, id);
CREATE INDEX emails_user ON emails (user_id, id);

-- The links in emails: each mints a billing-portal session for its user until it expires. Only
-- the token's SHA-256 is kept.
CREATE TABLE email_links (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    email_id BIGINT NOT NULL REFERENCES emails (id),
    user_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
