-- The Ed25519 keys that sign launch tokens. The private key is never stored: it is derived from
-- the service's WEBHOOK_SIGNING_KEY and this row's salt (so every instance has the same one),
-- and the public key kept here checks that the derivation still gives it. The id is the key's
-- generation: the first is 1 (two instances making it at once make one), each rotation adds one.
-- A rotated key stays in the JWKS until retires_at, so tokens in flight still verify.
CREATE TABLE signing_keys (
    id BIGINT PRIMARY KEY NOT NULL,
    kid TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    salt TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retires_at TIMESTAMP
);
